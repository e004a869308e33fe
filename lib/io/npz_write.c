#include "npz.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

/* 1980-01-01 00:00 in MS-DOS form: the same bytes for the same data. */
#define DOS_TIME 0
#define DOS_DATE ((0 << 9) | (1 << 5) | 1)

typedef void (*sink_fn)(void *user, const void *p, size_t n);
/* Produces an array's body, in order, through sink. */
typedef void (*body_fn)(const void *ctx, sink_fn sink, void *user);

typedef struct {
    uLong crc;
} crc_sink;

static void to_crc(void *user, const void *p, size_t n)
{
    crc_sink *c = user;
    const Bytef *b = p;
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c->crc = crc32(c->crc, b, k);
        b += k;
        n -= k;
    }
}

static void to_file(void *user, const void *p, size_t n) { fwrite(p, 1, n, (FILE *)user); }

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void tl_npz_begin(tl_npz_writer *z, FILE *f)
{
    memset(z, 0, sizeof *z);
    z->f = f;
}

/* The .npy header: magic, version 1.0, a dict padded with spaces so the
 * data starts at a multiple of 64 bytes. */
static size_t npy_header(char *h, size_t cap, const char *descr, const char *shape)
{
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    size_t total = 10 + (size_t)n + 1, pad = (64 - total % 64) % 64, hlen = (size_t)n + pad + 1;
    if (10 + hlen > cap)
        return 0;
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    h[8] = (char)(hlen & 0xFF);
    h[9] = (char)(hlen >> 8);
    memcpy(h + 10, dict, (size_t)n);
    memset(h + 10 + n, ' ', pad);
    h[10 + hlen - 1] = '\n';
    return 10 + hlen;
}

static int add_entry(tl_npz_writer *z, const char *name, const char *descr, const char *shape, uint64_t body_size,
                     body_fn body, const void *ctx, tl_err *e)
{
    if (z->n == TL_NPZ_MAX_ENTRIES)
        return tl_fail(e, "npz: too many arrays");
    char head[512];
    size_t hl = npy_header(head, sizeof head, descr, shape);
    if (!hl)
        return tl_fail(e, "npz: array header too long");
    crc_sink c = {crc32(0L, Z_NULL, 0)};
    to_crc(&c, head, hl);
    body(ctx, to_crc, &c);
    char fname[40];
    int nl = snprintf(fname, sizeof fname, "%s.npy", name);
    uint64_t size = hl + body_size;
    /* local file header with a ZIP64 extra field holding both sizes */
    uint8_t lh[30 + 20];
    put32(lh, 0x04034b50);
    put16(lh + 4, 45);
    put16(lh + 6, 0);
    put16(lh + 8, 0); /* stored */
    put16(lh + 10, DOS_TIME);
    put16(lh + 12, DOS_DATE);
    put32(lh + 14, (uint32_t)c.crc);
    put32(lh + 18, 0xFFFFFFFFu);
    put32(lh + 22, 0xFFFFFFFFu);
    put16(lh + 26, (unsigned)nl);
    put16(lh + 28, 20);
    put16(lh + 30, 0x0001);
    put16(lh + 32, 16);
    put64(lh + 34, size);
    put64(lh + 42, size);
    tl_npz_entry *en = &z->entry[z->n++];
    snprintf(en->name, sizeof en->name, "%s", fname);
    en->crc = (uint32_t)c.crc;
    en->size = size;
    en->at = z->offset;
    fwrite(lh, 1, 30, z->f);
    fwrite(fname, 1, (size_t)nl, z->f);
    fwrite(lh + 30, 1, 20, z->f);
    fwrite(head, 1, hl, z->f);
    body(ctx, to_file, z->f);
    z->offset += 30 + (uint64_t)nl + 20 + size;
    if (ferror(z->f))
        return tl_fail(e, "write failed: %s", strerror(errno ? errno : EIO));
    return 0;
}

typedef struct {
    const void *p;
    size_t n;
} raw_body;

static void raw(const void *ctx, sink_fn sink, void *user)
{
    const raw_body *r = ctx;
    if (r->n)
        sink(user, r->p, r->n);
}

int tl_npz_add_f32(tl_npz_writer *z, const char *name, int64_t rows, int cols, const float *x, tl_err *e)
{
    char shape[64];
    snprintf(shape, sizeof shape, "(%lld, %d)", (long long)rows, cols);
    raw_body r = {x, (size_t)rows * (size_t)cols * sizeof(float)}; /* little-endian host */
    return add_entry(z, name, "<f4", shape, r.n, raw, &r, e);
}

int tl_npz_add_i32(tl_npz_writer *z, const char *name, int64_t n, int cols, const int *v, tl_err *e)
{
    char shape[64];
    if (cols)
        snprintf(shape, sizeof shape, "(%lld, %d)", (long long)n, cols);
    else
        snprintf(shape, sizeof shape, "(%lld,)", (long long)n);
    _Static_assert(sizeof(int) == 4, "int32 labels");
    raw_body r = {v, (size_t)n * (size_t)(cols ? cols : 1) * sizeof(int)};
    return add_entry(z, name, "<i4", shape, r.n, raw, &r, e);
}

/* Decodes one code point (advancing *s); a byte that does not start a
 * valid sequence becomes U+DC00 + byte. */
static uint32_t next_cp(const unsigned char **s)
{
    const unsigned char *p = *s;
    uint32_t c = p[0];
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (len > 1) {
        uint32_t v = c & (0x7F >> len);
        int k = 1;
        for (; k < len && (p[k] & 0xC0) == 0x80; k++)
            v = v << 6 | (p[k] & 0x3F);
        if (k == len && v >= min[len] && v <= 0x10FFFF && !(v >= 0xD800 && v <= 0xDFFF)) {
            *s = p + len;
            return v;
        }
    } else if (len == 1) {
        *s = p + 1;
        return c;
    }
    *s = p + 1;
    return 0xDC00 + c;
}

size_t tl_utf8_codepoints(const char *s)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        next_cp(&p);
        n++;
    }
    return n;
}

typedef struct {
    const char *const *s;
    size_t n, width;
} str_body;

static void strings(const void *ctx, sink_fn sink, void *user)
{
    const str_body *b = ctx;
    uint8_t buf[4096];
    size_t used = 0;
    for (size_t i = 0; i < b->n; i++) {
        const unsigned char *p = (const unsigned char *)b->s[i];
        for (size_t k = 0; k < b->width; k++) {
            uint32_t cp = *p ? next_cp(&p) : 0;
            put32(buf + used, cp);
            used += 4;
            if (used == sizeof buf) {
                sink(user, buf, used);
                used = 0;
            }
        }
    }
    if (used)
        sink(user, buf, used);
}

int tl_npz_add_str(tl_npz_writer *z, const char *name, int64_t n, const char *const *s, tl_err *e)
{
    size_t count = n < 0 ? 1 : (size_t)n, width = 1;
    for (size_t i = 0; i < count; i++) {
        size_t w = tl_utf8_codepoints(s[i]);
        width = w > width ? w : width;
    }
    char descr[32], shape[64];
    snprintf(descr, sizeof descr, "<U%zu", width);
    if (n < 0)
        snprintf(shape, sizeof shape, "()");
    else
        snprintf(shape, sizeof shape, "(%lld,)", (long long)n);
    str_body b = {s, count, width};
    return add_entry(z, name, descr, shape, (uint64_t)count * width * 4, strings, &b, e);
}

int tl_npz_end(tl_npz_writer *z, tl_err *e)
{
    uint64_t cd_at = z->offset, cd_size = 0;
    for (int i = 0; i < z->n; i++) {
        uint8_t h[46 + 28];
        size_t nl = strlen(z->entry[i].name);
        put32(h, 0x02014b50);
        put16(h + 4, 45 | (3 << 8)); /* made by: Unix */
        put16(h + 6, 45);
        put16(h + 8, 0);
        put16(h + 10, 0);
        put16(h + 12, DOS_TIME);
        put16(h + 14, DOS_DATE);
        put32(h + 16, z->entry[i].crc);
        put32(h + 20, 0xFFFFFFFFu);
        put32(h + 24, 0xFFFFFFFFu);
        put16(h + 28, (unsigned)nl);
        put16(h + 30, 28);
        put16(h + 32, 0);
        put16(h + 34, 0);
        put16(h + 36, 0);
        put32(h + 38, 0644u << 16);
        put32(h + 42, 0xFFFFFFFFu);
        /* ZIP64 extra: the sizes and the header's offset */
        put16(h + 46, 0x0001);
        put16(h + 48, 24);
        put64(h + 50, z->entry[i].size);
        put64(h + 58, z->entry[i].size);
        put64(h + 66, z->entry[i].at);
        fwrite(h, 1, 46, z->f);
        fwrite(z->entry[i].name, 1, nl, z->f);
        fwrite(h + 46, 1, 28, z->f);
        cd_size += 46 + nl + 28;
    }
    uint64_t eocd64_at = cd_at + cd_size;
    uint8_t t[56 + 20 + 22];
    put32(t, 0x06064b50);
    put64(t + 4, 44);
    put16(t + 12, 45 | (3 << 8));
    put16(t + 14, 45);
    put32(t + 16, 0);
    put32(t + 20, 0);
    put64(t + 24, (uint64_t)z->n);
    put64(t + 32, (uint64_t)z->n);
    put64(t + 40, cd_size);
    put64(t + 48, cd_at);
    uint8_t *loc = t + 56;
    put32(loc, 0x07064b50);
    put32(loc + 4, 0);
    put64(loc + 8, eocd64_at);
    put32(loc + 16, 1);
    uint8_t *end = loc + 20;
    put32(end, 0x06054b50);
    put16(end + 4, 0);
    put16(end + 6, 0);
    put16(end + 8, 0xFFFF);
    put16(end + 10, 0xFFFF);
    put32(end + 12, 0xFFFFFFFFu);
    put32(end + 16, 0xFFFFFFFFu);
    put16(end + 20, 0);
    fwrite(t, 1, sizeof t, z->f);
    z->offset = eocd64_at + sizeof t;
    if (ferror(z->f))
        return tl_fail(e, "write failed: %s", strerror(errno ? errno : EIO));
    return 0;
}
