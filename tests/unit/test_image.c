/* Image decoding and writing: every supported format and depth is
 * generated here (PNG and JPEG through libpng/libjpeg, BMP and PPM by
 * hand), decoded and compared with the pixels we meant; the same files and
 * the shared photos are compared with PIL when /usr/bin/python3 has it;
 * broken, truncated and oversized inputs must fail cleanly and quickly. */
#include "check.h"
#include "test_image_util.h"

#include <dirent.h>
#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

static char dir[64];

/* ---- small utilities ---- */

static unsigned lcg_state = 12345;
static unsigned rnd(void)
{
    lcg_state = lcg_state * 1103515245u + 12345u;
    return lcg_state >> 8;
}

static void put_file(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(buf, 1, n, f) == n);
    if (f)
        fclose(f);
}

static uint8_t *get_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

static void tpath(char *out, size_t n, const char *name)
{
    if (snprintf(out, n, "%s/%s", dir, name) >= (int)n)
        out[0] = 0;
}

/* Files that PIL should decode to exactly what we decode. */
static char pil_files[64][4096 + 256 + 2];
static int npil;
static void want_pil(const char *path)
{
    if (npil < 64)
        snprintf(pil_files[npil++], sizeof pil_files[0], "%s", path);
}

/* Decodes path and compares with the expected RGB; reports the format. */
static void expect_decode(const char *path, const uint8_t *want, int w, int h, int tol,
                          const char *what)
{
    tl_image img = { 0 };
    tl_err e;
    int rc = tl_image_decode_file(path, &img, 0, &e);
    CHECK_MSG(rc == 0, "%s: %s", what, e.msg);
    if (rc == 0) {
        CHECK_MSG(img.w == w && img.h == h, "%s: size %dx%d, want %dx%d", what, img.w, img.h, w, h);
        if (img.w == w && img.h == h) {
            int maxd = 0;
            for (size_t i = 0; i < (size_t)w * h * 3; i++) {
                int d = abs((int)img.px[i] - (int)want[i]);
                if (d > maxd)
                    maxd = d;
            }
            CHECK_MSG(maxd <= tol, "%s: max diff %d (tolerance %d)", what, maxd, tol);
        }
    }
    tl_image_free(&img);
}

/* Truncations and byte flips must never crash (ASan watches) and a
 * truncation of the pixel data must fail. */
static void abuse(const char *what, const uint8_t *buf, size_t n, int truncation_fails)
{
    tl_image img = { 0 };
    tl_err e;
    uint8_t *copy = malloc(n);
    int bad_ok = 0;
    for (int i = 1; i <= 24; i++) {
        size_t cut = n * (size_t)i / 25;
        memcpy(copy, buf, cut);
        int rc = tl_image_decode_mem(copy, cut, &img, 0, &e);
        if (rc == 0 && truncation_fails && cut < n * 9 / 10)
            bad_ok++;
        if (rc < 0)
            CHECK_MSG(e.msg[0] && !strchr(e.msg, '\n'), "%s: empty or multi-line message", what);
    }
    CHECK_MSG(bad_ok == 0, "%s: %d truncated copies decoded without error", what, bad_ok);
    for (int i = 0; i < 200; i++) {
        memcpy(copy, buf, n);
        for (int k = 0; k < 3; k++)
            copy[rnd() % n] ^= (uint8_t)(1 + rnd() % 255);
        (void)tl_image_decode_mem(copy, n, &img, 0, &e);
    }
    free(copy);
    tl_image_free(&img);
}

static void abuse_file(const char *path, int truncation_fails)
{
    size_t n;
    uint8_t *b = get_file(path, &n);
    CHECK(b != NULL);
    if (b)
        abuse(path, b, n, truncation_fails);
    free(b);
}

/* ---- PNG ---- */

/* libpng's error handling longjmps: keep it in a function of its own. */
static int png_write_file(const char *path, int w, int h, int depth, int ctype, int interlace,
                          png_color *pal, int npal, png_byte *palt, png_color_16 *tc,
                          uint8_t *rows, size_t rowbytes)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, depth, ctype, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal)
        png_set_PLTE(png, info, pal, npal);
    if (palt)
        png_set_tRNS(png, info, palt, npal, NULL);
    if (tc)
        png_set_tRNS(png, info, NULL, 0, tc);
    png_write_info(png, info);
    png_set_interlace_handling(png);
    for (int pass = 0; pass < (interlace ? 7 : 1); pass++)
        for (int y = 0; y < h; y++)
            png_write_row(png, rows + (size_t)y * rowbytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    return 0;
}

/* Writes a w x h PNG of the given type from native samples v (channels per
 * pixel as the colour type says, palette index for palette images) and
 * returns the RGB we expect back. */
static void png_case(int ctype, int depth, int interlace, int trns, int w, int h, int pil)
{
    int ch = ctype == PNG_COLOR_TYPE_GRAY ? 1 : ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
           : ctype == PNG_COLOR_TYPE_RGB ? 3 : ctype == PNG_COLOR_TYPE_RGBA ? 4 : 1;
    unsigned maxv = (1u << depth) - 1;
    uint16_t *v = malloc(sizeof(uint16_t) * w * h * ch);
    uint8_t *want = malloc((size_t)w * h * 3);
    png_color pal[256];
    png_byte palt[256];
    int npal = ctype == PNG_COLOR_TYPE_PALETTE ? (int)maxv + 1 : 0;
    if (npal > 200)
        npal = 200; /* not all entries: indices stay below it */
    for (int i = 0; i < npal; i++) {
        pal[i].red = (png_byte)rnd();
        pal[i].green = (png_byte)rnd();
        pal[i].blue = (png_byte)rnd();
        palt[i] = (png_byte)rnd();
    }
    for (int i = 0; i < w * h; i++) {
        for (int c = 0; c < ch; c++)
            v[i * ch + c] = (uint16_t)(npal ? rnd() % npal : rnd() % (maxv + 1));
        uint8_t *o = want + 3 * i;
        if (npal) {
            o[0] = pal[v[i]].red;
            o[1] = pal[v[i]].green;
            o[2] = pal[v[i]].blue;
        } else {
            for (int c = 0; c < 3; c++) {
                unsigned s = v[i * ch + (ch >= 3 ? c : 0)];
                o[c] = (uint8_t)(depth == 16 ? s >> 8 : depth == 8 ? s : s * 255 / maxv);
            }
        }
    }
    char name[128], path[256];
    snprintf(name, sizeof name, "png_t%d_d%d_i%d_r%d.png", ctype, depth, interlace, trns);
    tpath(path, sizeof path, name);
    size_t rowbytes = ((size_t)w * ch * depth + 7) / 8;
    uint8_t *rows = calloc((size_t)h, rowbytes);
    for (int y = 0; y < h; y++) {
        uint8_t *r = rows + (size_t)y * rowbytes;
        for (int i = 0; i < w * ch; i++) {
            unsigned s = v[(size_t)y * w * ch + i];
            if (depth == 16) {
                r[2 * i] = (uint8_t)(s >> 8);
                r[2 * i + 1] = (uint8_t)s;
            } else if (depth == 8) {
                r[i] = (uint8_t)s;
            } else {
                int per = 8 / depth;
                r[i / per] |= (uint8_t)(s << (8 - depth * (i % per + 1)));
            }
        }
    }
    png_color_16 tc = { 0, (png_uint_16)v[0], (png_uint_16)v[0], (png_uint_16)v[0], (png_uint_16)v[0] };
    CHECK_MSG(png_write_file(path, w, h, depth, ctype, interlace, npal ? pal : NULL, npal,
                             trns && npal ? palt : NULL, trns && !npal && (ch == 1 || ch == 3) ? &tc : NULL,
                             rows, rowbytes) == 0, "libpng failed writing %s", name);
    expect_decode(path, want, w, h, 0, name);
    /* PIL opens 16-bit grey as 32-bit integers and clips them on
     * convert("RGB"); we keep the high byte instead, so skip those. */
    int pil_differs = depth == 16 && (ctype == PNG_COLOR_TYPE_GRAY);
    if (pil && !pil_differs)
        want_pil(path);
    free(rows);
    free(v);
    free(want);
}

static void test_png(void)
{
    struct { int ctype, depth; } t[] = {
        { PNG_COLOR_TYPE_GRAY, 1 }, { PNG_COLOR_TYPE_GRAY, 2 }, { PNG_COLOR_TYPE_GRAY, 4 },
        { PNG_COLOR_TYPE_GRAY, 8 }, { PNG_COLOR_TYPE_GRAY, 16 },
        { PNG_COLOR_TYPE_GRAY_ALPHA, 8 }, { PNG_COLOR_TYPE_GRAY_ALPHA, 16 },
        { PNG_COLOR_TYPE_PALETTE, 1 }, { PNG_COLOR_TYPE_PALETTE, 2 }, { PNG_COLOR_TYPE_PALETTE, 4 },
        { PNG_COLOR_TYPE_PALETTE, 8 }, { PNG_COLOR_TYPE_RGB, 8 }, { PNG_COLOR_TYPE_RGB, 16 },
        { PNG_COLOR_TYPE_RGBA, 8 }, { PNG_COLOR_TYPE_RGBA, 16 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        for (int il = 0; il < 2; il++)
            png_case(t[i].ctype, t[i].depth, il, 0, 13, 7, 1);
    png_case(PNG_COLOR_TYPE_PALETTE, 8, 0, 1, 31, 17, 1); /* palette + tRNS */
    png_case(PNG_COLOR_TYPE_GRAY, 8, 1, 1, 9, 33, 1);     /* grey + tRNS */
    png_case(PNG_COLOR_TYPE_RGB, 8, 0, 1, 1, 1, 1);       /* 1x1 RGB + tRNS */
    char path[256];
    tpath(path, sizeof path, "png_t6_d8_i1_r0.png");
    abuse_file(path, 1);
    tpath(path, sizeof path, "png_t3_d8_i0_r1.png");
    abuse_file(path, 1);
}

/* PNG whose IHDR claims w x h (valid CRC), with no image data. */
static size_t png_header_only(uint8_t *b, uint32_t w, uint32_t h)
{
    memcpy(b, "\x89PNG\r\n\x1a\n", 8);
    uint8_t *c = b + 8;
    c[0] = 0; c[1] = 0; c[2] = 0; c[3] = 13;
    memcpy(c + 4, "IHDR", 4);
    uint8_t *d = c + 8;
    d[0] = (uint8_t)(w >> 24); d[1] = (uint8_t)(w >> 16); d[2] = (uint8_t)(w >> 8); d[3] = (uint8_t)w;
    d[4] = (uint8_t)(h >> 24); d[5] = (uint8_t)(h >> 16); d[6] = (uint8_t)(h >> 8); d[7] = (uint8_t)h;
    d[8] = 8; d[9] = 2; d[10] = 0; d[11] = 0; d[12] = 0;
    uint32_t crc = (uint32_t)crc32(0, c + 4, 17);
    uint8_t *k = d + 13;
    k[0] = (uint8_t)(crc >> 24); k[1] = (uint8_t)(crc >> 16); k[2] = (uint8_t)(crc >> 8); k[3] = (uint8_t)crc;
    return 8 + 25;
}

/* ---- JPEG ---- */

static void jpeg_write_raw(const char *path, int w, int h, int comps, J_COLOR_SPACE cs,
                           const uint8_t *px, int quality)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    FILE *f = fopen(path, "wb");
    jpeg_stdio_dest(&c, f);
    c.image_width = w;
    c.image_height = h;
    c.input_components = comps;
    c.in_color_space = cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = (JSAMPROW)(px + (size_t)c.next_scanline * w * comps);
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

static void test_jpeg(void)
{
    char path[256];
    tl_err e;
    int w = 67, h = 45;
    tl_image img = { 0 };
    CHECK(tl_image_alloc(&img, w, h, &e) == 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = img.px + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 255 / (w - 1));
            p[1] = (uint8_t)(y * 255 / (h - 1));
            p[2] = (uint8_t)(128 + (x - y) / 2);
        }
    tpath(path, sizeof path, "rgb.jpg");
    CHECK_MSG(tl_image_write_jpeg(path, &img, 95, &e) == 0, "%s", e.msg);
    expect_decode(path, img.px, w, h, 24, "RGB JPEG q95");
    want_pil(path);
    abuse_file(path, 1);

    /* truncated: a clear message, not grey padding */
    size_t n;
    uint8_t *b = get_file(path, &n);
    tl_image out = { 0 };
    CHECK(tl_image_decode_mem(b, n * 2 / 3, &out, 0, &e) < 0);
    CHECK_MSG(strstr(e.msg, "truncated JPEG data") != NULL, "message: %s", e.msg);
    CHECK(tl_image_decode_mem(b, 40, &out, 0, &e) < 0);
    /* huge claimed size in SOF: refused before allocation, quickly */
    for (size_t i = 2; i + 9 < n; i++)
        if (b[i] == 0xFF && (b[i + 1] == 0xC0 || b[i + 1] == 0xC2)) {
            b[i + 5] = 0xEA; b[i + 6] = 0x60; /* height 60000 */
            b[i + 7] = 0xEA; b[i + 8] = 0x60; /* width 60000 */
            break;
        }
    double t0 = tl_now();
    CHECK(tl_image_decode_mem(b, n, &out, 0, &e) < 0);
    CHECK_MSG(strstr(e.msg, "limit") != NULL, "message: %s", e.msg);
    CHECK(tl_now() - t0 < 0.5);
    free(b);

    /* greyscale JPEG becomes R = G = B */
    uint8_t *g = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++)
        g[i] = img.px[3 * i];
    tpath(path, sizeof path, "grey.jpg");
    jpeg_write_raw(path, w, h, 1, JCS_GRAYSCALE, g, 100);
    CHECK(tl_image_decode_file(path, &out, 0, &e) == 0);
    int ok = out.w == w && out.h == h, maxd = 0;
    for (int i = 0; ok && i < w * h; i++) {
        ok = out.px[3 * i] == out.px[3 * i + 1] && out.px[3 * i] == out.px[3 * i + 2];
        int d = abs(out.px[3 * i] - g[i]);
        if (d > maxd)
            maxd = d;
    }
    CHECK(ok);
    CHECK_MSG(maxd <= 2, "grey JPEG q100 max diff %d", maxd);
    want_pil(path);
    free(g);

    /* Adobe CMYK (stored inverted): flat 16x16 tiles survive q100 */
    int cw = 32, ch = 16;
    uint8_t cmyk[32 * 16 * 4], want[32 * 16 * 3];
    int tiles[2][4] = { { 20, 200, 90, 30 }, { 250, 5, 128, 100 } }; /* C M Y K */
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++) {
            const int *t = tiles[x / 16];
            uint8_t *p = cmyk + (y * cw + x) * 4, *q = want + (y * cw + x) * 3;
            int nk = 255 - t[3];
            for (int c = 0; c < 4; c++)
                p[c] = (uint8_t)(255 - t[c]);
            for (int c = 0; c < 3; c++) {
                int tt = t[c] * nk + 128;
                q[c] = (uint8_t)(nk - (((tt >> 8) + tt) >> 8));
            }
        }
    tpath(path, sizeof path, "cmyk.jpg");
    jpeg_write_raw(path, cw, ch, 4, JCS_CMYK, cmyk, 100);
    expect_decode(path, want, cw, ch, 2, "CMYK JPEG");
    want_pil(path);

    tl_image_free(&img);
    tl_image_free(&out);
}

/* ---- BMP ---- */

static void le16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void le32(uint8_t *p, uint32_t v) { le16(p, v & 0xffff); le16(p + 2, v >> 16); }

/* Writes a BMP of the RGB image (bpp 1/4/8 use a palette built from the
 * image's first colours, quantised by index) and returns the expected RGB
 * in want. */
static size_t bmp_build(uint8_t *out, const tl_image *im, int bpp, int topdown, int bitfields,
                        uint8_t *want)
{
    int w = im->w, h = im->h;
    int npal = bpp <= 8 ? 1 << bpp : 0;
    uint8_t pal[256][3];
    for (int i = 0; i < npal; i++)
        for (int c = 0; c < 3; c++)
            pal[i][c] = (uint8_t)rnd();
    size_t stride = (((size_t)w * bpp + 31) / 32) * 4;
    size_t hdr = 14 + 40 + (bitfields ? 12 : 0) + (size_t)npal * 4;
    size_t total = hdr + stride * h;
    memset(out, 0, total);
    out[0] = 'B'; out[1] = 'M';
    le32(out + 2, (uint32_t)total);
    le32(out + 10, (uint32_t)hdr);
    le32(out + 14, 40);
    le32(out + 18, (uint32_t)w);
    le32(out + 22, (uint32_t)(topdown ? -h : h));
    le16(out + 26, 1);
    le16(out + 28, (unsigned)bpp);
    le32(out + 30, bitfields ? 3 : 0);
    le32(out + 46, (uint32_t)npal);
    if (bitfields) {
        if (bpp == 32) {
            le32(out + 54, 0xff0000); le32(out + 58, 0xff00); le32(out + 62, 0xff);
        } else {
            le32(out + 54, 0xf800); le32(out + 58, 0x7e0); le32(out + 62, 0x1f);
        }
    }
    uint8_t *pp = out + 14 + 40 + (bitfields ? 12 : 0);
    for (int i = 0; i < npal; i++) {
        pp[4 * i] = pal[i][2]; pp[4 * i + 1] = pal[i][1]; pp[4 * i + 2] = pal[i][0];
    }
    for (int y = 0; y < h; y++) {
        uint8_t *row = out + hdr + (size_t)(topdown ? y : h - 1 - y) * stride;
        for (int x = 0; x < w; x++) {
            const uint8_t *s = im->px + ((size_t)y * w + x) * 3;
            uint8_t *q = want + ((size_t)y * w + x) * 3;
            if (bpp == 24) {
                row[3 * x] = s[2]; row[3 * x + 1] = s[1]; row[3 * x + 2] = s[0];
                memcpy(q, s, 3);
            } else if (bpp == 32) {
                row[4 * x] = s[2]; row[4 * x + 1] = s[1]; row[4 * x + 2] = s[0]; row[4 * x + 3] = 0x7f;
                memcpy(q, s, 3);
            } else if (bpp == 16) {
                unsigned r, g, b, v;
                if (bitfields) { /* 565 */
                    r = s[0] >> 3; g = s[1] >> 2; b = s[2] >> 3;
                    v = r << 11 | g << 5 | b;
                    q[0] = (uint8_t)(r * 255 / 31); q[1] = (uint8_t)(g * 255 / 63); q[2] = (uint8_t)(b * 255 / 31);
                } else { /* 555 */
                    r = s[0] >> 3; g = s[1] >> 3; b = s[2] >> 3;
                    v = r << 10 | g << 5 | b;
                    q[0] = (uint8_t)(r * 255 / 31); q[1] = (uint8_t)(g * 255 / 31); q[2] = (uint8_t)(b * 255 / 31);
                }
                le16(row + 2 * x, v);
            } else {
                unsigned idx = s[0] % (unsigned)npal;
                int per = 8 / bpp;
                row[x / per] |= (uint8_t)(idx << (8 - bpp * (x % per + 1)));
                memcpy(q, pal[idx], 3);
            }
        }
    }
    return total;
}

static void test_bmp(void)
{
    tl_image im = { 0 };
    tl_err e;
    int w = 13, h = 9; /* 13*3 = 39 bytes: padded rows */
    CHECK(tl_image_alloc(&im, w, h, &e) == 0);
    for (int i = 0; i < w * h * 3; i++)
        im.px[i] = (uint8_t)rnd();
    struct { int bpp, topdown, bitfields; } t[] = {
        { 24, 0, 0 }, { 24, 1, 0 }, { 32, 0, 0 }, { 32, 1, 1 }, { 16, 0, 0 }, { 16, 1, 1 },
        { 8, 0, 0 }, { 8, 1, 0 }, { 4, 0, 0 }, { 1, 0, 0 },
    };
    uint8_t *buf = malloc(65536), *want = malloc((size_t)w * h * 3);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t n = bmp_build(buf, &im, t[i].bpp, t[i].topdown, t[i].bitfields, want);
        char name[64], path[256];
        snprintf(name, sizeof name, "bmp_%d_%s%s.bmp", t[i].bpp, t[i].topdown ? "td" : "bu",
                 t[i].bitfields ? "_bf" : "");
        tpath(path, sizeof path, name);
        put_file(path, buf, n);
        expect_decode(path, want, w, h, 0, name);
        want_pil(path);
        abuse(name, buf, n, 1);
    }
    /* huge claimed size: refused on the limit, before reading */
    size_t n = bmp_build(buf, &im, 24, 0, 0, want);
    le32(buf + 18, 200000);
    le32(buf + 22, 200000);
    tl_image out = { 0 };
    double t0 = tl_now();
    CHECK(tl_image_decode_mem(buf, n, &out, 0, &e) < 0);
    CHECK_MSG(strstr(e.msg, "limit") != NULL, "message: %s", e.msg);
    CHECK(tl_now() - t0 < 0.5);
    /* within the limit but larger than the file: truncated */
    le32(buf + 18, 3000);
    le32(buf + 22, 3000);
    CHECK(tl_image_decode_mem(buf, n, &out, 0, &e) < 0);
    CHECK_MSG(strstr(e.msg, "truncated") != NULL, "message: %s", e.msg);
    le32(buf + 18, 0);
    CHECK(tl_image_decode_mem(buf, n, &out, 0, &e) < 0);
    /* RLE is refused by name */
    n = bmp_build(buf, &im, 8, 0, 0, want);
    le32(buf + 30, 1);
    CHECK(tl_image_decode_mem(buf, n, &out, 0, &e) < 0);
    CHECK_MSG(strstr(e.msg, "RLE") != NULL, "message: %s", e.msg);
    free(buf);
    free(want);
    tl_image_free(&im);
    tl_image_free(&out);
}

/* ---- PNM ---- */

static void test_pnm(void)
{
    char path[256];
    tl_err e;
    int w = 5, h = 3;
    uint8_t want[5 * 3 * 3], buf[4096];
    size_t n;

    /* P6, maxval 255 */
    n = (size_t)sprintf((char *)buf, "P6\n# a comment\n%d %d\n255\n", w, h);
    for (int i = 0; i < w * h * 3; i++)
        buf[n + i] = want[i] = (uint8_t)rnd();
    tpath(path, sizeof path, "p6.ppm");
    put_file(path, buf, n + (size_t)w * h * 3);
    expect_decode(path, want, w, h, 0, "P6");
    want_pil(path);
    abuse("P6", buf, n + (size_t)w * h * 3, 1);

    /* P5, maxval 1000, two bytes per sample */
    n = (size_t)sprintf((char *)buf, "P5 %d %d 1000\n", w, h);
    for (int i = 0; i < w * h; i++) {
        unsigned v = rnd() % 1001;
        buf[n + 2 * i] = (uint8_t)(v >> 8);
        buf[n + 2 * i + 1] = (uint8_t)v;
        want[3 * i] = want[3 * i + 1] = want[3 * i + 2] = (uint8_t)((v * 255 + 500) / 1000);
    }
    tpath(path, sizeof path, "p5_1000.pgm");
    put_file(path, buf, n + (size_t)w * h * 2);
    expect_decode(path, want, w, h, 0, "P5 maxval 1000");

    /* P6, maxval 65535 */
    n = (size_t)sprintf((char *)buf, "P6\n%d %d\n65535\n", w, h);
    for (int i = 0; i < w * h * 3; i++) {
        unsigned v = rnd() % 65536;
        buf[n + 2 * i] = (uint8_t)(v >> 8);
        buf[n + 2 * i + 1] = (uint8_t)v;
        want[i] = (uint8_t)((v * 255 + 32767) / 65535);
    }
    tpath(path, sizeof path, "p6_16.ppm");
    put_file(path, buf, n + (size_t)w * h * 6);
    expect_decode(path, want, w, h, 0, "P6 maxval 65535");
    want_pil(path);

    /* P5, maxval 7 */
    n = (size_t)sprintf((char *)buf, "P5\n%d %d\n7\n", w, h);
    for (int i = 0; i < w * h; i++) {
        unsigned v = rnd() % 8;
        buf[n + i] = (uint8_t)v;
        want[3 * i] = want[3 * i + 1] = want[3 * i + 2] = (uint8_t)((v * 255 + 3) / 7);
    }
    tpath(path, sizeof path, "p5_7.pgm");
    put_file(path, buf, n + (size_t)w * h);
    expect_decode(path, want, w, h, 0, "P5 maxval 7");
    want_pil(path);

    /* P3 ASCII with comments between samples */
    n = (size_t)sprintf((char *)buf, "P3\n# comment\n%d %d\n# another\n255\n", w, h);
    for (int i = 0; i < w * h * 3; i++) {
        want[i] = (uint8_t)rnd();
        n += (size_t)sprintf((char *)buf + n, "%d%s", want[i], i % 7 == 6 ? "\n# c\n" : " ");
    }
    tpath(path, sizeof path, "p3.ppm");
    put_file(path, buf, n);
    expect_decode(path, want, w, h, 0, "P3");
    want_pil(path);
    abuse("P3", buf, n, 1);

    /* P2 ASCII grey, maxval 100 */
    n = (size_t)sprintf((char *)buf, "P2 %d %d 100\n", w, h);
    for (int i = 0; i < w * h; i++) {
        unsigned v = rnd() % 101;
        n += (size_t)sprintf((char *)buf + n, "%u\n", v);
        want[3 * i] = want[3 * i + 1] = want[3 * i + 2] = (uint8_t)((v * 255 + 50) / 100);
    }
    tpath(path, sizeof path, "p2.pgm");
    put_file(path, buf, n);
    expect_decode(path, want, w, h, 0, "P2");
    want_pil(path);

    /* P1 and P4 bitmaps: 1 is black */
    unsigned bits[15];
    n = (size_t)sprintf((char *)buf, "P1\n%d %d\n", w, h);
    for (int i = 0; i < w * h; i++) {
        bits[i] = rnd() & 1;
        n += (size_t)sprintf((char *)buf + n, "%u", bits[i]);
        want[3 * i] = want[3 * i + 1] = want[3 * i + 2] = bits[i] ? 0 : 255;
    }
    tpath(path, sizeof path, "p1.pbm");
    put_file(path, buf, n);
    expect_decode(path, want, w, h, 0, "P1");
    n = (size_t)sprintf((char *)buf, "P4\n%d %d\n", w, h);
    for (int y = 0; y < h; y++) {
        uint8_t byte = 0;
        for (int x = 0; x < w; x++)
            byte |= (uint8_t)(bits[y * w + x] << (7 - x));
        buf[n++] = byte;
    }
    tpath(path, sizeof path, "p4.pbm");
    put_file(path, buf, n);
    expect_decode(path, want, w, h, 0, "P4");
    want_pil(path);

    /* broken headers and data */
    tl_image out = { 0 };
    const char *bad[] = { "P6", "P6\n", "P6 5", "P6 5 3", "P6 5 3 255", "P6 5 3 255\n\x01\x02",
                          "P6 -5 3 255\n", "P6 5 3 0\n", "P6 5 3 70000\n", "P3 2 1 255\n1 2 3 4 x 6",
                          "P6 99999999999 3 255\n", "P5 0 3 255\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(tl_image_decode_mem((const uint8_t *)bad[i], strlen(bad[i]), &out, 0, &e) < 0,
                  "accepted %s", bad[i]);
    }
    n = (size_t)sprintf((char *)buf, "P6 100000 100000 255\n");
    CHECK(tl_image_decode_mem(buf, n, &out, 0, &e) < 0);
    CHECK_MSG(strstr(e.msg, "limit") != NULL, "message: %s", e.msg);
    tl_image_free(&out);
}

/* ---- generic failures, limits, writers, reuse ---- */

static void test_errors(void)
{
    tl_image out = { 0 };
    tl_err e;
    char path[256];
    uint8_t junk[512];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)rnd();
    junk[0] = 'x';
    CHECK(tl_image_decode_mem(junk, sizeof junk, &out, 0, &e) < 0);
    CHECK_MSG(strstr(e.msg, "unknown image format") != NULL, "message: %s", e.msg);
    CHECK(tl_image_decode_mem(junk, 0, &out, 0, &e) < 0);
    CHECK(tl_image_decode_mem((const uint8_t *)"GIF89a\1\0\1\0", 10, &out, 0, &e) < 0);
    CHECK_MSG(strstr(e.msg, "GIF") != NULL, "message: %s", e.msg);

    tpath(path, sizeof path, "empty.png");
    put_file(path, "", 0);
    CHECK(tl_image_decode_file(path, &out, 0, &e) < 0);
    CHECK_MSG(strstr(e.msg, "empty.png: empty file") != NULL, "message: %s", e.msg);
    tpath(path, sizeof path, "does-not-exist.jpg");
    CHECK(tl_image_decode_file(path, &out, 0, &e) < 0);
    CHECK_MSG(strstr(e.msg, "does-not-exist.jpg: no such file") != NULL, "message: %s", e.msg);
    CHECK(tl_image_decode_file(dir, &out, 0, &e) < 0);

    /* PNG: signature then garbage; huge IHDR; truncated */
    uint8_t b[128];
    memcpy(b, "\x89PNG\r\n\x1a\n", 8);
    memcpy(b + 8, junk, 100);
    CHECK(tl_image_decode_mem(b, 108, &out, 0, &e) < 0);
    size_t n = png_header_only(b, 100000, 100000);
    double t0 = tl_now();
    CHECK(tl_image_decode_mem(b, n, &out, 0, &e) < 0);
    CHECK_MSG(strstr(e.msg, "limit") != NULL, "message: %s", e.msg);
    CHECK(tl_now() - t0 < 0.5);
    n = png_header_only(b, 16, 16);
    CHECK(tl_image_decode_mem(b, n, &out, 0, &e) < 0);
    CHECK_MSG(strstr(e.msg, "truncated PNG data") != NULL, "message: %s", e.msg);
    n = png_header_only(b, 0, 16);
    CHECK(tl_image_decode_mem(b, n, &out, 0, &e) < 0);

    /* a caller-chosen limit */
    tpath(path, sizeof path, "png_t2_d8_i0_r0.png");
    CHECK(tl_image_decode_file(path, &out, 50, &e) < 0);
    CHECK_MSG(strstr(e.msg, "limit of 50 pixels") != NULL, "message: %s", e.msg);
    CHECK(tl_image_decode_file(path, &out, 91, &e) == 0);
    tl_image_free(&out);
    tl_image_free(&out); /* freeing twice is harmless */
}

static void test_write_and_reuse(void)
{
    tl_image a = { 0 }, b = { 0 };
    tl_err e;
    char path[256];
    CHECK(tl_image_alloc(&a, 40, 30, &e) == 0);
    for (int i = 0; i < 40 * 30 * 3; i++)
        a.px[i] = (uint8_t)rnd();
    tpath(path, sizeof path, "written.png");
    CHECK(tl_image_write_png(path, &a, &e) == 0);
    CHECK(tl_image_decode_file(path, &b, 0, &e) == 0);
    CHECK(b.w == 40 && b.h == 30 && !memcmp(a.px, b.px, 40 * 30 * 3));
    /* no temporary file left behind */
    DIR *d = opendir(dir);
    int tmp = 0;
    for (struct dirent *de; d && (de = readdir(d));)
        tmp += strstr(de->d_name, ".tmp") != NULL;
    if (d)
        closedir(d);
    CHECK(tmp == 0);
    CHECK(tl_image_write_jpeg(path, &a, 0, &e) < 0);
    CHECK(tl_image_write_png("/nonexistent-dir/x.png", &a, &e) < 0);

    /* one image buffer across decodes: grows, never shrinks */
    tpath(path, sizeof path, "rgb.jpg");
    CHECK(tl_image_decode_file(path, &b, 0, &e) == 0);
    size_t cap = b.cap;
    uint8_t *px = b.px;
    tpath(path, sizeof path, "p6.ppm");
    CHECK(tl_image_decode_file(path, &b, 0, &e) == 0);
    CHECK(b.w == 5 && b.h == 3 && b.px == px && b.cap == cap);
    tl_image_free(&a);
    tl_image_free(&b);
}

/* ---- against PIL ---- */

static void test_against_pil(void)
{
    char sbuf[4096], ibuf[4096];
    const char *script = tu_script(sbuf, sizeof sbuf);
    const char *images = tu_shared_images(ibuf, sizeof ibuf);
    if (images) {
        DIR *d = opendir(images);
        for (struct dirent *de; d && (de = readdir(d));) {
            const char *dot = strrchr(de->d_name, '.');
            if (dot && (!strcmp(dot, ".bmp") || !strcmp(dot, ".jpg"))) {
                char p[4096 + 256 + 2];
                snprintf(p, sizeof p, "%s/%s", images, de->d_name);
                want_pil(p);
            }
        }
        if (d)
            closedir(d);
    } else {
        printf("test_image: no shared images folder, photo comparisons skipped\n");
    }
    if (!script || access(TU_PYTHON, X_OK) != 0) {
        printf("test_image: PIL comparison skipped (no %s or no reference script)\n", TU_PYTHON);
        return;
    }
    const char *args[70];
    int na = 0;
    args[na++] = "decode";
    args[na++] = dir;
    for (int i = 0; i < npil; i++)
        args[na++] = pil_files[i];
    args[na] = NULL;
    int rc = tu_run_python(script, args);
    if (rc != 0) {
        printf("test_image: PIL comparison skipped (python reference exited %d)\n", rc);
        return;
    }
    char path[4200], src[4096], ref[4096];
    snprintf(path, sizeof path, "%s/decode.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    tl_image a = { 0 }, b = { 0 };
    tl_err e;
    int count = 0, worst = 0;
    while (f && fscanf(f, "%4095s %4095s", src, ref) == 2) {
        int ok = tl_image_decode_file(src, &a, 0, &e) == 0;
        CHECK_MSG(ok, "%s", e.msg);
        if (ok) {
            ok = tl_image_decode_file(ref, &b, 0, &e) == 0;
            CHECK_MSG(ok, "PIL's version: %s", e.msg);
        }
        if (!ok)
            continue;
        tu_diff d = tu_compare(&a, &b);
        CHECK_MSG(d.max == 0, "%s differs from PIL: max %d, %.4f%% of samples", src, d.max,
                  100 * d.frac);
        if (d.max > worst)
            worst = d.max;
        count++;
    }
    if (f)
        fclose(f);
    CHECK_MSG(count == npil, "%d of %d files compared", count, npil);
    printf("test_image: %d files decoded identically to PIL (max |diff| %d)\n", count, worst);
    tl_image_free(&a);
    tl_image_free(&b);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/tl_image_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_png();
    test_jpeg();
    test_bmp();
    test_pnm();
    test_errors();
    test_write_and_reuse();
    test_against_pil();
    tu_rmtree(dir);
    return check_finish("test_image");
}
