/* NumPy archives (.npz): a zip file of .npy arrays, as numpy.savez writes
 * it, readable by numpy.load without pickle (numbers and fixed-width
 * unicode strings only). Written in one pass to any stream (standard
 * output too): each array's bytes are produced twice, once for the CRC
 * the zip header needs and once for the file, so nothing is held twice in
 * memory. Entries are stored (not compressed) with ZIP64 sizes, so an
 * archive may exceed 4 GB; the date is fixed, so the same data gives the
 * same bytes. */
#ifndef TL_IO_NPZ_H
#define TL_IO_NPZ_H

#include "core.h"

#include <stdio.h>

#define TL_NPZ_MAX_ENTRIES 16

typedef struct tl_npz_entry {
    char name[40];
    uint32_t crc;
    uint64_t size, at;
} tl_npz_entry;

typedef struct tl_npz_writer {
    FILE *f;
    uint64_t offset;
    int n;
    tl_npz_entry entry[TL_NPZ_MAX_ENTRIES];
} tl_npz_writer;

void tl_npz_begin(tl_npz_writer *z, FILE *f);
/* name without ".npy". */
int tl_npz_add_f32(tl_npz_writer *z, const char *name, int64_t rows, int cols, const float *x, tl_err *e);
/* (n,) when cols is 0, else (n, cols). */
int tl_npz_add_i32(tl_npz_writer *z, const char *name, int64_t n, int cols, const int *v, tl_err *e);
/* n UTF-8 strings as a '<U' array (shape (n,)), or one string as a 0-d
 * array (n < 0, s[0]). Bytes that are not UTF-8 become U+DC80..U+DCFF, as
 * Python's os.fsdecode maps them (os.fsencode gives the bytes back). */
int tl_npz_add_str(tl_npz_writer *z, const char *name, int64_t n, const char *const *s, tl_err *e);
/* The central directory; the caller flushes and closes the stream. */
int tl_npz_end(tl_npz_writer *z, tl_err *e);

/* Reading an archive (npz_read.c): rd reads n bytes (short at the end). */
typedef size_t (*tl_npz_read_fn)(void *user, void *buf, size_t n);
typedef struct tl_npz_array {
    char name[256];
    uint8_t *data;   /* the whole .npy file */
    size_t size;
} tl_npz_array;
typedef struct tl_npz_archive {
    int n;
    tl_npz_array entry[TL_NPZ_MAX_ENTRIES];
} tl_npz_archive;
/* From just after the first local header's signature "PK\3\4" to the end
 * of its central directory. */
int tl_npz_read_archive(tl_npz_archive *a, tl_npz_read_fn rd, void *user, tl_err *e);
void tl_npz_archive_free(tl_npz_archive *a);
/* The array NAME.npy, or NULL. */
const tl_npz_array *tl_npz_find(const tl_npz_archive *a, const char *name);
/* An array's descr ("<f4"), shape (ndim 0..2) and data. */
typedef struct tl_npy_view {
    char descr[16];
    int ndim;
    long long shape[2];
    const uint8_t *data;
    size_t size;
} tl_npy_view;
int tl_npy_parse(const tl_npz_array *x, tl_npy_view *v, tl_err *e);

/* Code points of a UTF-8 string under the rule above (for widths). */
size_t tl_utf8_codepoints(const char *s);

#endif
