/* JPEG decoding through libjpeg-turbo, with the settings PIL uses (ISLOW
 * DCT, fancy upsampling, full size) so pixels match PIL bit for bit.
 * libjpeg reports fatal errors through error_exit, which must not return:
 * ours longjmps back. Premature end of data is only a warning in libjpeg,
 * which then pads the image with grey; we make it an error, except when
 * nothing but the closing EOI marker is missing: every pixel is then
 * exactly as in the complete file. (PIL 9.4 is no guide here: it refuses
 * most such files as "truncated" and decodes some, depending on where its
 * read buffer ends.) Data is missing when the entropy decoder needed bits
 * past the end (libjpeg's "hit marker" warning after the end), or when a
 * multi-scan image ends before every coefficient is complete (a
 * progressive file cut between scans would otherwise come out blurred).
 * The EXIF orientation tag is honoured, as PIL's ImageOps.exif_transpose
 * does: a phone photo stored on its side comes out upright. Plain
 * Image.open (and so torchvision) does not; images without the tag, or
 * with orientation 1, decode identically either way. */
#include "image_internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int eof; /* the data ended without an EOI marker */
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
    else if (je->eof) /* whatever failed, it failed for want of data */
        snprintf(je->msg, sizeof je->msg, "truncated JPEG data");
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
        je->eof = 1; /* fatal only if bits past the end are needed */
        return;
    }
    if (cinfo->err->msg_code == JWRN_HIT_MARKER && je->eof) {
        snprintf(je->msg, sizeof je->msg, "truncated JPEG data");
        longjmp(je->jump, 1);
    }
    /* Other corrupt-data warnings: libjpeg recovers and so does PIL. */
}

static void jerr_output(j_common_ptr cinfo)
{
    (void)cinfo; /* never print */
}

/* The Orientation tag (0x0112) of IFD0 in an APP1 "Exif" segment: 1..8,
 * or 1 when absent or malformed. Every offset is checked against the
 * segment before it is read. */
static int exif_orientation(const uint8_t *p, size_t n)
{
    if (n < 6 + 8 || memcmp(p, "Exif\0\0", 6))
        return 1;
    const uint8_t *t = p + 6; /* the TIFF header; offsets count from here */
    size_t tn = n - 6;
    int le;
    if (!memcmp(t, "II*\0", 4))
        le = 1;
    else if (!memcmp(t, "MM\0*", 4))
        le = 0;
    else
        return 1;
#define U16(q) (le ? (unsigned)((q)[0] | (q)[1] << 8) : (unsigned)((q)[0] << 8 | (q)[1]))
#define U32(q) (le ? ((uint32_t)(q)[0] | (uint32_t)(q)[1] << 8 | (uint32_t)(q)[2] << 16 | (uint32_t)(q)[3] << 24) \
                   : ((uint32_t)(q)[0] << 24 | (uint32_t)(q)[1] << 16 | (uint32_t)(q)[2] << 8 | (uint32_t)(q)[3]))
    uint32_t ifd = U32(t + 4);
    if (ifd < 8 || ifd > tn || tn - ifd < 2)
        return 1;
    unsigned count = U16(t + ifd);
    if ((tn - ifd - 2) / 12 < count)
        return 1;
    int orient = 1;
    for (unsigned i = 0; i < count; i++) {
        const uint8_t *ent = t + ifd + 2 + 12 * (size_t)i;
        /* type 3 = SHORT, one value, stored in the first two bytes of the value field */
        if (U16(ent) == 0x0112 && U16(ent + 2) == 3 && U32(ent + 4) == 1) {
            unsigned v = U16(ent + 8);
            orient = v >= 1 && v <= 8 ? (int)v : 1;
            break;
        }
    }
#undef U16
#undef U32
    return orient;
}

/* dst (w x h for orientations 2..4, h x w for 5..8) from the w x h src,
 * as PIL's exif_transpose: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
 * 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise. */
static void orient_pixels(const uint8_t *src, int w, int h, int orient, uint8_t *dst)
{
    int swap = orient >= 5, ow = swap ? h : w, oh = swap ? w : h;
    for (int y = 0; y < oh; y++) {
        uint8_t *d = dst + (size_t)y * ow * 3;
        for (int x = 0; x < ow; x++, d += 3) {
            int sx, sy;
            switch (orient) {
            case 2: sx = w - 1 - x; sy = y; break;
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;
            case 4: sx = x; sy = h - 1 - y; break;
            case 5: sx = y; sy = x; break;
            case 6: sx = y; sy = h - 1 - x; break;
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;
            default: sx = w - 1 - y; sy = x; break; /* 8 */
            }
            const uint8_t *s = src + ((size_t)sy * w + sx) * 3;
            d[0] = s[0];
            d[1] = s[1];
            d[2] = s[2];
        }
    }
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

/* A progressive image whose scans brought every coefficient of every
 * component to full precision (coef_bits 0); any other multi-scan image
 * that ended early is incomplete. */
static int coefficients_complete(j_decompress_ptr c)
{
    if (!c->progressive_mode || !c->coef_bits)
        return 0;
    for (int ci = 0; ci < c->num_components; ci++)
        for (int k = 0; k < DCTSIZE2; k++)
            if (c->coef_bits[ci][k] != 0)
                return 0;
    return 1;
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
    je.eof = 0;
    if (setjmp(je.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return tl_fail(e, "%s", je.msg[0] ? je.msg : "corrupt JPEG data");
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, buf, (unsigned long)n);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    int orient = 1;
    for (jpeg_saved_marker_ptr mk = cinfo.marker_list; mk && orient == 1; mk = mk->next)
        if (mk->marker == JPEG_APP0 + 1)
            orient = exif_orientation(mk->data, mk->data_length);

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
    long long ow = cinfo.image_width, oh = cinfo.image_height;
    if (img->draft_w > 0 && img->draft_h > 0) {
        long long scale = ow / img->draft_w < oh / img->draft_h ? ow / img->draft_w : oh / img->draft_h;
        int d = scale >= 8 ? 8 : scale >= 4 ? 4 : scale >= 2 ? 2 : 1;
        if (d > 1) {
            cinfo.scale_num = 1;
            cinfo.scale_denom = (unsigned)d;
            jpeg_calc_output_dimensions(&cinfo);
            ow = cinfo.output_width;
            oh = cinfo.output_height;
        }
    }
    if (tl__image_prepare(img, ow, oh, max_pixels, "JPEG", e) < 0) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    /* A reoriented image is decoded after the first w*h*3 bytes and
     * transposed into them; CMYK rows are decoded in place, so the last one
     * overhangs by w. The buffer keeps its size for the next image. */
    size_t plane = (size_t)img->w * img->h * 3, at = orient != 1 ? plane : 0;
    if (cmyk || orient != 1) {
        void *p = img->px;
        size_t need = at + plane + (cmyk ? (size_t)img->w : 0);
        if (tl__grow(&p, &img->cap, need, e) < 0) {
            jpeg_destroy_decompress(&cinfo);
            return -1;
        }
        img->px = p;
    }
    jpeg_start_decompress(&cinfo);
    /* a multi-scan image has been read whole by now */
    if (je.eof && jpeg_has_multiple_scans(&cinfo) && !coefficients_complete(&cinfo)) {
        jpeg_destroy_decompress(&cinfo);
        return tl_fail(e, "truncated JPEG data");
    }
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
            rows[i] = img->px + at + (size_t)(y0 + i) * stride;
        int got = (int)jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)want);
        if (got <= 0) {
            jpeg_destroy_decompress(&cinfo);
            return tl_fail(e, "truncated JPEG data");
        }
        if (cmyk)
            cmyk_row_to_rgb(rows[0], img->w);
    }
    /* Not jpeg_finish_decompress: every pixel is in, and a missing EOI
     * after the last scan does not fail an otherwise complete image. */
    jpeg_destroy_decompress(&cinfo);
    if (orient != 1) {
        orient_pixels(img->px + at, img->w, img->h, orient, img->px);
        if (orient >= 5) {
            int t = img->w;
            img->w = img->h;
            img->h = t;
        }
    }
    return 0;
}
