/* BMP decoding: 1/4/8-bit palettised, 16-bit 555/565, 24-bit, and 32-bit
 * (BI_RGB or byte-aligned bit fields), bottom-up or top-down, no RLE.
 * Every length is checked against the buffer before it is read. Pixel
 * conversions follow PIL (BGRX for 32-bit BI_RGB, v*255/max truncated for
 * 5- and 6-bit fields). */
#include "image_internal.h"

#include <string.h>

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

enum { BI_RGB = 0, BI_RLE8 = 1, BI_RLE4 = 2, BI_BITFIELDS = 3, BI_ALPHABITFIELDS = 6 };

/* Position of an 8-bit contiguous mask, or -1. */
static int byte_mask_shift(uint32_t m)
{
    for (int s = 0; s <= 24; s += 8)
        if (m == (uint32_t)0xff << s)
            return s;
    return -1;
}

int tl__decode_bmp(const uint8_t *buf, size_t n, tl_image *img, size_t max_pixels, tl_err *e)
{
    if (n < 14 + 12)
        return tl_fail(e, "truncated BMP header");
    uint32_t data_off = rd32(buf + 10);
    uint32_t hsize = rd32(buf + 14);
    if (hsize != 12 && hsize < 40)
        return tl_fail(e, "unsupported BMP header size %u", hsize);
    if ((size_t)14 + hsize > n)
        return tl_fail(e, "truncated BMP header");
    long long w, h;
    int bpp, topdown = 0, pal_entry = 4;
    uint32_t comp = BI_RGB, ncolors = 0;
    if (hsize == 12) {
        w = rd16(buf + 18);
        h = rd16(buf + 20);
        bpp = (int)rd16(buf + 24);
        pal_entry = 3;
    } else {
        w = (int32_t)rd32(buf + 18);
        h = (int32_t)rd32(buf + 22);
        bpp = (int)rd16(buf + 28);
        comp = rd32(buf + 30);
        ncolors = rd32(buf + 46);
        if (h < 0) {
            topdown = 1;
            h = -h;
        }
    }
    /* masks: inside a v2+ header, or right after a 40-byte one */
    uint32_t mask[3] = { 0, 0, 0 };
    size_t pal_off = 14 + (size_t)hsize;
    if (comp == BI_BITFIELDS || comp == BI_ALPHABITFIELDS) {
        size_t moff = 14 + 40;
        if (hsize == 40)
            pal_off += comp == BI_ALPHABITFIELDS ? 16 : 12;
        if (moff + 12 > n)
            return tl_fail(e, "truncated BMP header");
        for (int i = 0; i < 3; i++)
            mask[i] = rd32(buf + moff + 4 * i);
    } else if (comp == BI_RLE8 || comp == BI_RLE4) {
        return tl_fail(e, "unsupported BMP compression (RLE)");
    } else if (comp != BI_RGB) {
        return tl_fail(e, "unsupported BMP compression %u", comp);
    }
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
        return tl_fail(e, "unsupported BMP bit depth %d", bpp);
    if (bpp == 24 && comp != BI_RGB)
        return tl_fail(e, "unsupported BMP bit fields for 24-bit pixels");
    if (bpp <= 8 && comp != BI_RGB)
        return tl_fail(e, "unsupported BMP bit fields for palettised pixels");

    /* Layout of the pixel fields, PIL-style when masks are absent. */
    int sh[3] = { 16, 8, 0 }, bits16[3] = { 5, 5, 5 };
    if (bpp == 32 && comp != BI_RGB) {
        for (int i = 0; i < 3; i++)
            if ((sh[i] = byte_mask_shift(mask[i])) < 0)
                return tl_fail(e, "unsupported BMP bit fields %08x/%08x/%08x", mask[0], mask[1],
                               mask[2]);
    }
    if (bpp == 16) {
        if (comp == BI_RGB || (mask[0] == 0x7c00 && mask[1] == 0x3e0 && mask[2] == 0x1f)) {
            sh[0] = 10; sh[1] = 5; sh[2] = 0;
        } else if (mask[0] == 0xf800 && mask[1] == 0x7e0 && mask[2] == 0x1f) {
            sh[0] = 11; sh[1] = 5; sh[2] = 0;
            bits16[1] = 6;
        } else {
            return tl_fail(e, "unsupported BMP bit fields %08x/%08x/%08x", mask[0], mask[1],
                           mask[2]);
        }
    }
    if (tl__check_size(w, h, max_pixels, "BMP", e) < 0)
        return -1;

    /* Check the data fits before allocating anything. */
    size_t stride = (((size_t)w * (size_t)bpp + 31) / 32) * 4;
    size_t rowbytes = ((size_t)w * (size_t)bpp + 7) / 8;
    if (data_off > n || (size_t)h - 1 > (n - data_off) / stride ||
        (size_t)(h - 1) * stride + rowbytes > n - data_off)
        return tl_fail(e, "truncated BMP data");

    uint8_t pal[256][3];
    memset(pal, 0, sizeof pal);
    if (bpp <= 8) {
        uint32_t maxc = 1u << bpp;
        if (ncolors == 0 || ncolors > maxc)
            ncolors = maxc;
        if (pal_off > n || (size_t)ncolors * pal_entry > n - pal_off)
            return tl_fail(e, "truncated BMP palette");
        for (uint32_t i = 0; i < ncolors; i++) {
            const uint8_t *p = buf + pal_off + (size_t)i * pal_entry;
            pal[i][0] = p[2];
            pal[i][1] = p[1];
            pal[i][2] = p[0];
        }
    }
    if (tl__image_prepare(img, w, h, max_pixels, "BMP", e) < 0)
        return -1;

    int W = img->w, H = img->h;
    for (int y = 0; y < H; y++) {
        const uint8_t *s = buf + data_off + (size_t)(topdown ? y : H - 1 - y) * stride;
        uint8_t *d = img->px + (size_t)y * W * 3;
        switch (bpp) {
        case 24:
            for (int x = 0; x < W; x++, s += 3, d += 3) {
                d[0] = s[2];
                d[1] = s[1];
                d[2] = s[0];
            }
            break;
        case 32:
            for (int x = 0; x < W; x++, s += 4, d += 3) {
                uint32_t v = rd32(s);
                d[0] = (uint8_t)(v >> sh[0]);
                d[1] = (uint8_t)(v >> sh[1]);
                d[2] = (uint8_t)(v >> sh[2]);
            }
            break;
        case 16:
            for (int x = 0; x < W; x++, s += 2, d += 3) {
                uint32_t v = rd16(s);
                for (int c = 0; c < 3; c++) {
                    uint32_t mx = (1u << bits16[c]) - 1;
                    d[c] = (uint8_t)(((v >> sh[c]) & mx) * 255 / mx);
                }
            }
            break;
        default: { /* 1, 4, 8: palette indices, most significant bits first */
            int per = 8 / bpp;
            uint32_t m = (1u << bpp) - 1;
            for (int x = 0; x < W; x++, d += 3) {
                int shift = 8 - bpp * (x % per + 1);
                uint32_t idx = (uint32_t)(s[x / per] >> shift) & m;
                d[0] = pal[idx][0];
                d[1] = pal[idx][1];
                d[2] = pal[idx][2];
            }
        }
        }
    }
    return 0;
}
