/* Internal to lib/io: the row passes of the filtered resize, one set per
 * SIMD path, all giving the same bytes (resize_rows.c). */
#ifndef TL_IO_RESIZE_ROWS_H
#define TL_IO_RESIZE_ROWS_H

#include <stddef.h>
#include <stdint.h>

/* 32 - 8 bits of pixel - 2 bits of headroom for overshoot */
#define TL_RESIZE_PREC 22

typedef struct tl_resize_rows {
    /* out pixels [x0, x1) (RGB) = horizontal taps over the in_px pixels of
     * the source row in: taps kk[xx*ksize ..] (zero past a pixel's count),
     * first source pixel bounds[2xx], count bounds[2xx+1] */
    void (*hpass)(const uint8_t *restrict in, int in_px, uint8_t *restrict out, int x0, int x1, int ksize,
                  const int32_t *kk, const int *bounds);
    /* out bytes [i0, n) = vertical taps k[0..taps) over rows of in,
     * stride bytes apart */
    void (*vpass)(const uint8_t *restrict in, size_t stride, uint8_t *restrict out, int i0, int n,
                  const int32_t *k, int taps);
} tl_resize_rows;

/* The passes of a TL_SIMD_* level (the best the build has up to it). */
tl_resize_rows tl_resize_rows_for(int level);

#endif
