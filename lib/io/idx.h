/* IDX files (the MNIST / Fashion-MNIST format): an images file (magic 2051:
 * count, rows, cols, then uint8 pixels) and a labels file (magic 2049:
 * count, then uint8 labels), big-endian headers, read plain or gzip'ed. */
#ifndef TL_IO_IDX_H
#define TL_IO_IDX_H

#include "core.h"
#include "image.h"

typedef struct tl_idx {
    int64_t n;
    int rows, cols;
    uint8_t *pixels;   /* n * rows * cols, grey */
    int *labels;       /* n, 0..nclasses-1 */
    int nclasses;      /* max label + 1 */
} tl_idx;

/* Refuses wrong magic numbers, images larger than 4096x4096, more than
 * 2^28 items, label/image count mismatches and truncated data. */
int tl_idx_load(const char *images_path, const char *labels_path, tl_idx *d, tl_err *e);
void tl_idx_free(tl_idx *d);

/* "idx:PREFIX" names PREFIX-images-idx3-ubyte[.gz] and
 * PREFIX-labels-idx1-ubyte[.gz]; "idx:IMAGES,LABELS" names both files.
 * Returns 1 if spec starts with "idx:" (and fills the paths), else 0. */
int tl_idx_spec(const char *spec, char *images, char *labels, size_t n);

/* Fashion-MNIST's class names when nclasses is 10 and the file names say
 * fashion; else NULL (callers use "0".."9"). */
const char *const *tl_idx_fashion_names(void);

/* Grey pixels of item i into an RGB image (R = G = B). */
int tl_idx_image(const tl_idx *d, int64_t i, tl_image *img, tl_err *e);

#endif
