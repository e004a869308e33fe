/* Shared by the image decoders in lib/io: not part of the public API. */
#ifndef TL_IO_IMAGE_INTERNAL_H
#define TL_IO_IMAGE_INTERNAL_H

#include "image.h"

/* Grows *p (tl_alloc'ed, contents not kept) to at least need bytes. */
int tl__grow(void **p, size_t *cap, size_t need, tl_err *e);

/* Checks the claimed size against max_pixels (0 = default) and makes img
 * hold w x h RGB pixels. what names the format in messages. */
int tl__check_size(long long w, long long h, size_t max_pixels, const char *what, tl_err *e);
int tl__image_prepare(tl_image *img, long long w, long long h, size_t max_pixels,
                      const char *what, tl_err *e);

/* strerror(err) with a lower-case first letter, as our messages are. */
const char *tl__strerror(int err, char *buf, size_t n);

/* The size an image's header claims, from its first n bytes: 1 when known
 * (*w, *h, and *per_px the most encoded bytes a pixel of that format can
 * take), 0 when more bytes are needed, -1 when the bytes are no header we
 * can read (the decoder will say why). *what names the format. */
int tl__image_probe(const uint8_t *buf, size_t n, long long *w, long long *h, int *per_px, const char **what);
int tl__pnm_probe(const uint8_t *buf, size_t n, long long *w, long long *h);

int tl__decode_jpeg(const uint8_t *buf, size_t n, tl_image *img, size_t max_pixels, tl_err *e);
int tl__decode_png(const uint8_t *buf, size_t n, tl_image *img, size_t max_pixels, tl_err *e);
int tl__decode_bmp(const uint8_t *buf, size_t n, tl_image *img, size_t max_pixels, tl_err *e);
int tl__decode_pnm(const uint8_t *buf, size_t n, tl_image *img, size_t max_pixels, tl_err *e);

#endif
