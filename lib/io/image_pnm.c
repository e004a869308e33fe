/* Netpbm decoding: P1/P4 bitmaps, P2/P5 grey, P3/P6 colour, maxval up to
 * 65535 (two bytes big-endian when above 255), '#' comments in the header.
 * Samples are scaled to 0..255 as round(v*255/maxval), which is what PIL
 * gives. Lengths are checked before the pixel buffer is allocated. */
#include "image_internal.h"

#include <string.h>

typedef struct pnm_rd {
    const uint8_t *p;
    size_t n, off;
} pnm_rd;

static int is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Skips whitespace and comments; returns the next character or -1. */
static int skip_ws(pnm_rd *r)
{
    while (r->off < r->n) {
        int c = r->p[r->off];
        if (c == '#') {
            while (r->off < r->n && r->p[r->off] != '\n' && r->p[r->off] != '\r')
                r->off++;
        } else if (is_space(c)) {
            r->off++;
        } else {
            return c;
        }
    }
    return -1;
}

/* Reads an unsigned decimal number; -1 if absent or above limit. */
static long read_uint(pnm_rd *r, long limit)
{
    int c = skip_ws(r);
    if (c < '0' || c > '9')
        return -1;
    long v = 0;
    while (r->off < r->n && r->p[r->off] >= '0' && r->p[r->off] <= '9') {
        v = v * 10 + (r->p[r->off] - '0');
        if (v > limit)
            return -1;
        r->off++;
    }
    return v;
}

int tl__pnm_probe(const uint8_t *buf, size_t n, long long *w, long long *h)
{
    pnm_rd r = {buf, n, 2};
    long v[2];
    for (int i = 0; i < 2; i++) {
        v[i] = read_uint(&r, 0x7fffffffL);
        /* the end of what was read: a number (or a comment) may go on */
        if (r.off >= n)
            return 0;
        if (v[i] < 0)
            return -1;
    }
    *w = v[0];
    *h = v[1];
    return 1;
}

int tl__decode_pnm(const uint8_t *buf, size_t n, tl_image *img, size_t max_pixels, tl_err *e)
{
    pnm_rd r = { buf, n, 2 };
    int kind = buf[1] - '0';
    int bitmap = kind == 1 || kind == 4, ascii = kind <= 3;
    int chans = (kind == 3 || kind == 6) ? 3 : 1;
    long w = read_uint(&r, 0x7fffffffL), h = read_uint(&r, 0x7fffffffL);
    if (w < 0 || h < 0)
        return tl_fail(e, r.off >= n ? "truncated PNM header" : "bad PNM header");
    long maxval = 1;
    if (!bitmap) {
        maxval = read_uint(&r, 65535);
        if (maxval < 1)
            return tl_fail(e, r.off >= n ? "truncated PNM header" : "bad PNM maxval");
    }
    if (tl__check_size(w, h, max_pixels, "PNM", e) < 0)
        return -1;
    size_t samples = (size_t)w * (size_t)h * (size_t)chans;
    if (!ascii) {
        /* exactly one whitespace character ends the header */
        if (r.off >= n || !is_space(r.p[r.off]))
            return tl_fail(e, r.off >= n ? "truncated PNM data" : "bad PNM header");
        r.off++;
        size_t need = bitmap ? (size_t)h * (((size_t)w + 7) / 8)
                             : samples * (maxval > 255 ? 2 : 1);
        if (need > n - r.off)
            return tl_fail(e, "truncated PNM data");
    } else if (samples > n - r.off) {
        return tl_fail(e, "truncated PNM data"); /* every sample takes a character */
    }
    if (tl__image_prepare(img, w, h, max_pixels, "PNM", e) < 0)
        return -1;

    /* scale table for the common one-byte case */
    uint8_t lut[256];
    for (int v = 0; v < 256; v++) {
        long c = v > maxval ? maxval : v;
        lut[v] = (uint8_t)((c * 255 + maxval / 2) / maxval);
    }
    uint8_t *d = img->px;
    const uint8_t *s = buf + r.off;
    int W = img->w, H = img->h;
    if (kind == 4) {
        size_t stride = ((size_t)W + 7) / 8;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++, d += 3)
                d[0] = d[1] = d[2] = (s[(size_t)y * stride + x / 8] >> (7 - x % 8)) & 1 ? 0 : 255;
    } else if (!ascii && maxval <= 255) {
        if (chans == 3) {
            for (size_t i = 0; i < samples; i++)
                d[i] = lut[s[i]];
        } else {
            for (size_t i = 0; i < samples; i++, d += 3)
                d[0] = d[1] = d[2] = lut[s[i]];
        }
    } else if (!ascii) {
        for (size_t i = 0; i < samples; i++) {
            long v = (long)s[2 * i] << 8 | s[2 * i + 1];
            if (v > maxval)
                v = maxval;
            uint8_t q = (uint8_t)((v * 255 + maxval / 2) / maxval);
            if (chans == 3) {
                d[i] = q;
            } else {
                d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = q;
            }
        }
    } else {
        for (size_t i = 0; i < samples; i++) {
            long v;
            if (kind == 1) {
                /* bitmap digits need no separators */
                int c = skip_ws(&r);
                if (c != '0' && c != '1')
                    return tl_fail(e, c < 0 ? "truncated PNM data" : "bad PNM sample");
                r.off++;
                v = c == '1' ? 0 : 255;
            } else {
                v = read_uint(&r, 65535);
                if (v < 0)
                    return tl_fail(e, r.off >= n ? "truncated PNM data" : "bad PNM sample");
                if (v > maxval)
                    v = maxval;
                v = (v * 255 + maxval / 2) / maxval;
            }
            if (chans == 3) {
                d[i] = (uint8_t)v;
            } else {
                d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = (uint8_t)v;
            }
        }
    }
    return 0;
}
