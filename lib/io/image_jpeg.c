/* JPEG decoding through libjpeg-turbo, with the settings PIL uses (ISLOW
 * DCT, fancy upsampling, full size) so pixels match PIL bit for bit.
 * libjpeg reports fatal errors through error_exit, which must not return:
 * ours longjmps back. Premature end of data is only a warning in libjpeg;
 * we make it an error, since a silently grey-padded image is worse. */
#include "image_internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX + 64];
} jerr;

static void jerr_format(j_common_ptr cinfo, char *out, size_t n)
{
    char buf[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, buf);
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
    if (strstr(buf, "JPEG"))
        snprintf(out, n, "%s", buf);
    else
        snprintf(out, n, "corrupt JPEG data: %s", buf);
}

static void jerr_exit(j_common_ptr cinfo)
{
    jerr *je = (jerr *)cinfo->err;
    if (cinfo->err->msg_code == JERR_NO_SOI)
        snprintf(je->msg, sizeof je->msg, "not a JPEG file");
    else
        jerr_format(cinfo, je->msg, sizeof je->msg);
    longjmp(je->jump, 1);
}

static void jerr_emit(j_common_ptr cinfo, int level)
{
    jerr *je = (jerr *)cinfo->err;
    if (level >= 0)
        return; /* trace messages */
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
        snprintf(je->msg, sizeof je->msg, "truncated JPEG data");
        longjmp(je->jump, 1);
    }
    /* Other corrupt-data warnings: libjpeg recovers and so does PIL. */
}

static void jerr_output(j_common_ptr cinfo)
{
    (void)cinfo; /* never print */
}

/* Adobe CMYK as PIL reads it: stored inverted ("CMYK;I"), then
 * r = nk - c*nk/255 with nk = 255 - k, in PIL's rounding. Works in place
 * on a row whose 4-byte pixels start where the 3-byte output starts. */
static void cmyk_row_to_rgb(uint8_t *row, int w)
{
    for (int x = 0; x < w; x++) {
        int c = 255 - row[4 * x + 0], m = 255 - row[4 * x + 1];
        int y = 255 - row[4 * x + 2], nk = row[4 * x + 3];
        int t;
        t = c * nk + 128; int r = nk - (((t >> 8) + t) >> 8);
        t = m * nk + 128; int g = nk - (((t >> 8) + t) >> 8);
        t = y * nk + 128; int b = nk - (((t >> 8) + t) >> 8);
        row[3 * x + 0] = (uint8_t)(r < 0 ? 0 : r);
        row[3 * x + 1] = (uint8_t)(g < 0 ? 0 : g);
        row[3 * x + 2] = (uint8_t)(b < 0 ? 0 : b);
    }
}

int tl__decode_jpeg(const uint8_t *buf, size_t n, tl_image *img, size_t max_pixels, tl_err *e)
{
    struct jpeg_decompress_struct cinfo;
    jerr je;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jerr_exit;
    je.pub.emit_message = jerr_emit;
    je.pub.output_message = jerr_output;
    je.msg[0] = '\0';
    if (setjmp(je.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return tl_fail(e, "%s", je.msg[0] ? je.msg : "corrupt JPEG data");
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, buf, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);

    int cmyk = 0;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo.out_color_space = JCS_RGB;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        cinfo.out_color_space = JCS_CMYK;
        cmyk = 1;
        break;
    default:
        jpeg_destroy_decompress(&cinfo);
        return tl_fail(e, "unsupported JPEG colour space (%d components)", cinfo.num_components);
    }
    if (tl__image_prepare(img, cinfo.image_width, cinfo.image_height, max_pixels, "JPEG", e) < 0) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    if (cmyk) {
        /* CMYK rows are decoded in place, so the last one overhangs by w. */
        void *p = img->px;
        size_t need = (size_t)img->w * img->h * 3 + (size_t)img->w;
        if (tl__grow(&p, &img->cap, need, e) < 0) {
            jpeg_destroy_decompress(&cinfo);
            return -1;
        }
        img->px = p;
    }
    jpeg_start_decompress(&cinfo);
    if ((int)cinfo.output_width != img->w || (int)cinfo.output_height != img->h ||
        cinfo.output_components != (cmyk ? 4 : 3)) {
        jpeg_destroy_decompress(&cinfo);
        return tl_fail(e, "unexpected JPEG output layout");
    }
    size_t stride = (size_t)img->w * 3;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[8];
        int y0 = (int)cinfo.output_scanline;
        int want = (int)(cinfo.output_height - cinfo.output_scanline);
        if (cmyk || want > 8)
            want = cmyk ? 1 : 8;
        for (int i = 0; i < want; i++)
            rows[i] = img->px + (size_t)(y0 + i) * stride;
        int got = (int)jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)want);
        if (got <= 0) {
            jpeg_destroy_decompress(&cinfo);
            return tl_fail(e, "truncated JPEG data");
        }
        if (cmyk)
            cmyk_row_to_rgb(rows[0], img->w);
    }
    /* Not jpeg_finish_decompress: every pixel is in, and a missing EOI
     * after the last scan should not fail an otherwise complete image. */
    jpeg_destroy_decompress(&cinfo);
    return 0;
}
