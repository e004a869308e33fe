/* JPEG re-compression in memory: encode with libjpeg at a given quality
 * (its default 4:2:0 chroma subsampling, as PIL and most cameras) and
 * decode back, to put real block and ringing artefacts into an image. */
#include "aug_internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

typedef struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jerr;

static void on_error(j_common_ptr cinfo)
{
    jerr *je = (jerr *)cinfo->err;
    cinfo->err->format_message(cinfo, je->msg);
    longjmp(je->jump, 1);
}

static void on_output(j_common_ptr cinfo) { (void)cinfo; }

int tl_aug_jpeg(const tl_image *src, int quality, tl_image *dst, tl_aug_ws *ws, tl_err *e)
{
    if (quality < 1 || quality > 100)
        return tl_fail(e, "JPEG quality %d is not in 1..100", quality);
    if (src->w > 65500 || src->h > 65500)
        return tl_fail(e, "image %dx%d is too large for JPEG", src->w, src->h);
    /* Room for any quality, so libjpeg never has to grow the buffer. */
    unsigned long need = (unsigned long)src->w * src->h * 4 + 65536;
    if (ws->jcap < need) {
        free(ws->jbuf);
        ws->jbuf = malloc(need);
        ws->jcap = ws->jbuf ? need : 0;
        if (!ws->jbuf)
            return tl_fail(e, "out of memory");
    }
    struct jpeg_compress_struct c;
    jerr je;
    memset(&c, 0, sizeof c);
    c.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = on_error;
    je.pub.output_message = on_output;
    unsigned long size = ws->jcap;
    if (setjmp(je.jump)) {
        jpeg_destroy_compress(&c);
        return tl_fail(e, "JPEG encoding failed: %s", je.msg);
    }
    jpeg_create_compress(&c);
    unsigned char *b = ws->jbuf;
    jpeg_mem_dest(&c, &b, &size);
    c.image_width = (JDIMENSION)src->w;
    c.image_height = (JDIMENSION)src->h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = src->px + (size_t)c.next_scanline * src->w * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    if (b != ws->jbuf) { /* libjpeg grew it: keep the bigger buffer */
        free(ws->jbuf);
        ws->jbuf = b;
        ws->jcap = size;
    }
    return tl_image_decode_mem(b, size, dst, 0, e);
}
