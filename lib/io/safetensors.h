/* safetensors checkpoints: 8-byte little-endian header length, a JSON
 * header naming each tensor's dtype, shape and byte range, raw tensors.
 * Reading maps the file; writing goes to a temporary file that is fsync'd
 * and renamed, so a reader never sees a half-written checkpoint. */
#ifndef TL_SAFETENSORS_H
#define TL_SAFETENSORS_H

#include "core.h"
#include "strindex.h"

typedef enum { TL_F32, TL_F16, TL_BF16, TL_F64, TL_I64, TL_I32, TL_I16, TL_I8, TL_U8, TL_BOOL } tl_dtype;

const char *tl_dtype_name(tl_dtype t);
size_t tl_dtype_size(tl_dtype t);

#define TL_MAX_DIMS 8

typedef struct tl_st_tensor {
    char *name;
    tl_dtype dtype;
    int ndim;
    int64_t shape[TL_MAX_DIMS];
    int64_t numel;
    size_t nbytes;
    const void *data; /* inside the mapping (reader) or the caller's buffer (writer) */
} tl_st_tensor;

typedef struct tl_st_file {
    tl_st_tensor *tensors;
    int ntensors;
    char **meta_keys, **meta_values;
    int nmeta;
    tl_strindex tensor_index, meta_index; /* lookups by name */
    void *map;
    size_t map_size;
} tl_st_file;

/* Reading parses the header as it is scanned: time and memory are linear
 * in its size (O(n log n) to index n names), at most about 4 bytes per
 * header byte besides the mapping. Repeated keys anywhere in the header
 * (tensor names, metadata keys, fields), "\u0000" in a name, metadata
 * values that are not strings or hold NUL, more than TL_ST_MAX_META
 * metadata entries and headers over TL_ST_MAX_HEADER bytes are refused. */
#define TL_ST_MAX_HEADER (100u << 20)
#define TL_ST_MAX_META 65536
int tl_st_open(const char *path, tl_st_file *f, tl_err *e);
void tl_st_close(tl_st_file *f);
const tl_st_tensor *tl_st_find(const tl_st_file *f, const char *name);
/* NULL when absent. */
const char *tl_st_meta(const tl_st_file *f, const char *key);
/* Converts any floating dtype to float32 (count = numel). */
int tl_st_to_f32(const tl_st_tensor *t, float *dst, tl_err *e);
/* The same for loading weights: a value that is not finite (also one that
 * overflows float32) is an error naming the tensor. */
int tl_st_load_f32(const tl_st_tensor *t, float *dst, tl_err *e);

typedef struct tl_st_writer tl_st_writer;
tl_st_writer *tl_st_writer_new(void);
/* The data pointer is borrowed: it must stay valid until tl_st_write.
 * A name added twice, and a metadata key set twice (the last value wins,
 * in the first one's place), are resolved by tl_st_write. */
int tl_st_add(tl_st_writer *w, const char *name, tl_dtype dtype, int ndim, const int64_t *shape,
              const void *data, tl_err *e);
int tl_st_set_meta(tl_st_writer *w, const char *key, const char *value, tl_err *e);
/* path "-" writes to standard output. */
int tl_st_write(tl_st_writer *w, const char *path, tl_err *e);
void tl_st_writer_free(tl_st_writer *w);

#endif
