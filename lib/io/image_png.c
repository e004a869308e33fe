/* PNG decoding through libpng's low-level API (the simplified API
 * composites alpha and gamma-converts 16-bit data; PIL does neither).
 * Every layout ends up as 8-bit RGB: 16-bit keeps the high byte (as PIL
 * does for RGB), palettes are expanded, alpha and tRNS are dropped (as
 * PIL's convert("RGB") does). Rows are decoded straight into the image,
 * interlaced ones by letting libpng merge each pass into them. */
#include "image_internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <png.h>

typedef struct png_src {
    const uint8_t *p;
    size_t n, off;
    char msg[256];
} png_src;

static void png_read_mem(png_structp png, png_bytep out, size_t len)
{
    png_src *s = png_get_io_ptr(png);
    if (len > s->n - s->off)
        png_error(png, "truncated PNG data");
    memcpy(out, s->p + s->off, len);
    s->off += len;
}

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_src *s = png_get_error_ptr(png);
    if (strstr(msg, "PNG"))
        snprintf(s->msg, sizeof s->msg, "%s", msg);
    else
        snprintf(s->msg, sizeof s->msg, "corrupt PNG data: %s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* the library never prints; recoverable issues are ignored */
}

int tl__decode_png(const uint8_t *buf, size_t n, tl_image *img, size_t max_pixels, tl_err *e)
{
    /* IHDR must come first: check the claimed size before libpng reads on
     * (it would otherwise report missing data for a header-only file). */
    if (n >= 8 + 8 + 8 && !memcmp(buf + 12, "IHDR", 4)) {
        long long w = (long long)buf[16] << 24 | buf[17] << 16 | buf[18] << 8 | buf[19];
        long long h = (long long)buf[20] << 24 | buf[21] << 16 | buf[22] << 8 | buf[23];
        if (tl__check_size(w, h, max_pixels, "PNG", e) < 0)
            return -1;
    }
    png_src src = { buf, n, 0, "" };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error,
                                             png_on_warning);
    if (!png)
        return tl_fail(e, "out of memory");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return tl_fail(e, "out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return tl_fail(e, "%s", src.msg[0] ? src.msg : "corrupt PNG data");
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_read_info(png, info);

    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), ctype = png_get_color_type(png, info);
    if (tl__image_prepare(img, w, h, max_pixels, "PNG", e) < 0) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    if (depth == 16)
        png_set_strip_16(png);
    if (ctype == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if ((ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA) && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)img->w * 3) {
        png_destroy_read_struct(&png, &info, NULL);
        return tl_fail(e, "unsupported PNG layout (colour type %d, %d-bit)", ctype, depth);
    }
    size_t stride = (size_t)img->w * 3;
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < img->h; y++)
            png_read_row(png, img->px + (size_t)y * stride, NULL);
    /* Not png_read_end: chunks after the image data do not change pixels. */
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}
