/* PNG and JPEG writers, through tl_outfile (temporary file renamed into
 * place on success), so readers never see a half-written image; "-" writes
 * to standard output. */
#include "image_internal.h"
#include "outfile.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

static int check_image(const tl_image *img, tl_err *e)
{
    if (!img || !img->px || img->w <= 0 || img->h <= 0)
        return tl_fail(e, "cannot write an empty image");
    return 0;
}

typedef struct png_werr {
    char msg[256];
} png_werr;

static void pngw_error(png_structp png, png_const_charp msg)
{
    png_werr *w = png_get_error_ptr(png);
    snprintf(w->msg, sizeof w->msg, "PNG write error: %s", msg);
    png_longjmp(png, 1);
}

static void pngw_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

int tl_image_write_png(const char *path, const tl_image *img, tl_err *e)
{
    if (check_image(img, e) < 0)
        return -1;
    tl_outfile t;
    if (tl_outfile_open(&t, path, e) < 0)
        return -1;
    png_werr w = { "" };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w, pngw_error, pngw_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        tl_outfile_abort(&t);
        return tl_fail(e, "out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        tl_outfile_abort(&t);
        return tl_fail(e, "%s: %s", path, w.msg);
    }
    png_init_io(png, t.fp);
    png_set_IHDR(png, info, (png_uint_32)img->w, (png_uint_32)img->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < img->h; y++)
        png_write_row(png, img->px + (size_t)y * img->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return tl_outfile_commit(&t, e);
}

typedef struct jpeg_werr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_werr;

static void jpegw_exit(j_common_ptr cinfo)
{
    jpeg_werr *w = (jpeg_werr *)cinfo->err;
    cinfo->err->format_message(cinfo, w->msg);
    longjmp(w->jump, 1);
}

static void jpegw_output(j_common_ptr cinfo) { (void)cinfo; }

int tl_image_write_jpeg(const char *path, const tl_image *img, int quality, tl_err *e)
{
    if (check_image(img, e) < 0)
        return -1;
    if (quality < 1 || quality > 100)
        return tl_fail(e, "JPEG quality %d is not in 1..100", quality);
    if (img->w > 65500 || img->h > 65500)
        return tl_fail(e, "image %dx%d is too large for JPEG", img->w, img->h);
    tl_outfile t;
    if (tl_outfile_open(&t, path, e) < 0)
        return -1;
    struct jpeg_compress_struct cinfo;
    jpeg_werr w;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&w.pub);
    w.pub.error_exit = jpegw_exit;
    w.pub.output_message = jpegw_output;
    w.msg[0] = '\0';
    if (setjmp(w.jump)) {
        jpeg_destroy_compress(&cinfo);
        tl_outfile_abort(&t);
        return tl_fail(e, "%s: JPEG write error: %s", path, w.msg);
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, t.fp);
    cinfo.image_width = (JDIMENSION)img->w;
    cinfo.image_height = (JDIMENSION)img->h;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = img->px + (size_t)cinfo.next_scanline * img->w * 3;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return tl_outfile_commit(&t, e);
}
