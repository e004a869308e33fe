/* io/image: decoding (JPEG, PNG, BMP, PPM/PGM), writing (PNG, JPEG),
 * PIL-compatible resizing and the torchvision-style preprocessing pipeline.
 *
 * Every decoded image is 8-bit RGB, interleaved. Buffers grow when needed
 * and are reused across calls: keep one tl_image and one tl_preproc_ws per
 * worker thread and free them once at the end. */
#ifndef TL_IO_IMAGE_H
#define TL_IO_IMAGE_H

#include "core.h"

typedef struct tl_image {
    int w, h;
    uint8_t *px;  /* RGB interleaved, w*h*3 bytes */
    size_t cap;   /* bytes allocated in px, reused across decodes */
    uint8_t *file;     /* the encoded file, read here (not mapped: a file cut */
    size_t file_cap;   /* while being read must not crash the process) */
    /* Set by the caller, kept across decodes: when > 0, a JPEG at least
     * twice this size in both directions is decoded reduced by 1/2, 1/4 or
     * 1/8 in libjpeg's DCT (far less work), by the largest factor that keeps
     * it at least this size, as PIL's Image.draft() chooses it. */
    int draft_w, draft_h;
} tl_image;

/* Default decode limit when max_pixels is 0: 100 megapixels. */
#define TL_IMAGE_MAX_PIXELS ((size_t)100 * 1000 * 1000)

/* The format is chosen by magic bytes, never by extension. An image with
 * more than max_pixels pixels (0 = TL_IMAGE_MAX_PIXELS) is refused before
 * any pixel buffer is allocated. A JPEG's EXIF orientation is applied, as
 * PIL's ImageOps.exif_transpose does (plain Image.open, and so torchvision,
 * does not: only images tagged with an orientation other than 1 differ;
 * none in ../shared's data sets is). A file's errors are prefixed
 * with its path; "-" reads standard input. */
int tl_image_decode_file(const char *path, tl_image *img, size_t max_pixels, tl_err *e);
int tl_image_decode_mem(const uint8_t *buf, size_t n, tl_image *img, size_t max_pixels, tl_err *e);
void tl_image_free(tl_image *img);
/* Makes img hold a w x h image (contents undefined), growing px if needed. */
int tl_image_alloc(tl_image *img, int w, int h, tl_err *e);

/* Writers go through a temporary file in the same folder and rename it,
 * so a failed write never leaves a truncated file under the final name. */
int tl_image_write_png(const char *path, const tl_image *img, tl_err *e);
int tl_image_write_jpeg(const char *path, const tl_image *img, int quality, tl_err *e);

/* tl_preproc (input_w, input_h, resize_size, resize_mode: TL_RESIZE_*, mean, std, bgr, interp: TL_INTERP_*)
 * and tl_preproc_default (torchvision's ImageNet settings) are public:
 * lib/tl.h, included by core.h. */

/* "crop", "squash", "pad" <-> TL_RESIZE_*; parse returns -1 when unknown. */
const char *tl_resize_mode_name(int mode);
int tl_resize_mode_parse(const char *name);
/* "224" (square) or "320x224" (width x height), each side 1..max.
 * Returns 0, or -1 when s is not of that form. */
int tl_input_size_parse(const char *s, int max, int *w, int *h);
/* Writes "224" or "320x224" into buf. */
void tl_input_size_format(int w, int h, char *buf, size_t n);

/* The geometry as one word list, "320x224 crop 256" (input, mode, resize
 * size): what feature files and heads record about their extraction.
 * parse sets those three fields of pp and returns 0, or -1 when s is not
 * of that form. */
void tl_preproc_geometry_format(const tl_preproc *pp, char *buf, size_t n);
int tl_preproc_geometry_parse(const char *s, tl_preproc *pp);

/* The same preprocessing for another network input (w x h): the box keeps
 * the ratio of resize_size to the input's shorter side (256/224 stays
 * 256/224), rounded to whole pixels; resize_mode >= 0 replaces the mode. */
void tl_preproc_resize_input(tl_preproc *p, int w, int h, int resize_mode);

/* The geometry in words, e.g. "shorter side to 256 (bilinear), centre
 * crop 224" or "fit inside 320x224 (bilinear), padded with the mean
 * colour". */
void tl_preproc_describe(const tl_preproc *pp, char *buf, size_t n);

/* Where an image of w x h goes: resized to *rw x *rh, then the network's
 * window starts at (*left, *top) of it (negative: padding). */
int tl_preproc_plan(const tl_preproc *pp, int w, int h, int *rw, int *rh, int *left, int *top, tl_err *e);

/* Reusable scratch for resizing and preprocessing; zero-initialise it,
 * release it with tl_preproc_ws_free. One per thread. */
typedef struct tl_preproc_ws {
    tl_image resized;             /* resized (cropped) image */
    uint8_t *tmp; size_t tmp_cap; /* horizontal-pass result */
    int32_t *coef; size_t coef_cap;   /* fixed-point filter taps */
    double *dcoef; size_t dcoef_cap;  /* one row of taps before rounding */
    int *bounds; size_t bounds_cap;   /* first tap and tap count per output */
} tl_preproc_ws;

void tl_preproc_ws_free(tl_preproc_ws *ws);

/* Resizes src to w x h the way PIL 9.4's Image.resize((w, h), filter)
 * does (antialiased when downscaling; bit-exact on uint8). dst must not be
 * src. ws may be NULL (then scratch is allocated and freed in the call). */
int tl_image_resize(const tl_image *src, int w, int h, int interp, tl_image *dst,
                    tl_preproc_ws *ws, tl_err *e);

/* The same, but computes only the window [x0, x0+cw) x [y0, y0+ch) of the
 * w x h result into dst (cw x ch): identical pixels to a full resize
 * followed by a crop, for less work. */
int tl_image_resize_window(const tl_image *src, int w, int h, int x0, int y0, int cw, int ch,
                           int interp, tl_image *dst, tl_preproc_ws *ws, tl_err *e);

/* Full pipeline: the geometry of pp->resize_mode (above), then
 * (p/255 - mean)/std per RGB channel, in float32 as torchvision does.
 * Output planar CHW: out[c*H*W + y*W + x], W x H = input_w x input_h. */
int tl_preprocess(const tl_image *src, const tl_preproc *pp, float *out, tl_preproc_ws *ws,
                  tl_err *e);
/* Only the geometry: dst becomes the input_w x input_h RGB image that
 * tl_preprocess would normalise (dst must not be src). */
int tl_preprocess_image(const tl_image *src, const tl_preproc *pp, tl_image *dst, tl_preproc_ws *ws,
                        tl_err *e);
/* The same geometry as interleaved pixels into a caller's buffer of
 * input_w x input_h x 3 bytes (out[(y*W + x)*3 + c]): what an ONNX graph
 * exported with in-graph preprocessing takes. */
int tl_preprocess_crop(const tl_image *src, const tl_preproc *pp, uint8_t *out, tl_preproc_ws *ws, tl_err *e);

#endif
