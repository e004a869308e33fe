/* Reading a NumPy archive front to back (so it also comes through a pipe,
 * and archives may follow one another): the local entries, stored or
 * deflated, each checked against its CRC32, then the central directory
 * and its end records, which are skipped. numpy.savez and
 * savez_compressed write this on a file; an archive streamed with data
 * descriptors (sizes after the data) is refused. */
#include "npz.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t u16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t u32(const uint8_t *p) { return u16(p) | u16(p + 2) << 16; }
static uint64_t u64(const uint8_t *p) { return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32; }

void tl_npz_archive_free(tl_npz_archive *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->entry[i].data);
    memset(a, 0, sizeof *a);
}

static int skip(tl_npz_read_fn rd, void *user, uint64_t n, tl_err *e)
{
    uint8_t buf[4096];
    while (n) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
        if (rd(user, buf, k) != k)
            return tl_fail(e, "truncated NPZ archive");
        n -= k;
    }
    return 0;
}

/* n bytes into a buffer grown as they arrive, so a size the archive only
 * claims reserves no memory (NULL: truncated or out of memory, *short_read
 * says which). */
static uint8_t *read_bytes(tl_npz_read_fn rd, void *user, uint64_t n, int *short_read)
{
    size_t cap = n < ((size_t)1 << 20) ? (size_t)n + 1 : (size_t)1 << 20, got = 0;
    uint8_t *b = malloc(cap);
    *short_read = 0;
    while (b && got < n) {
        if (got == cap) {
            size_t nc = cap * 2 > n + 1 ? (size_t)n + 1 : cap * 2;
            uint8_t *nb = realloc(b, nc);
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
            cap = nc;
        }
        size_t want = (size_t)(n - got) < cap - got ? (size_t)(n - got) : cap - got, k = rd(user, b + got, want);
        got += k;
        if (k < want) {
            *short_read = 1;
            free(b);
            return NULL;
        }
    }
    return b;
}

static int local_entry(tl_npz_archive *a, tl_npz_read_fn rd, void *user, tl_err *e)
{
    uint8_t h[26];
    if (rd(user, h, 26) != 26)
        return tl_fail(e, "truncated NPZ entry header");
    unsigned flags = u16(h + 2), method = u16(h + 4), nlen = u16(h + 22), xlen = u16(h + 24);
    uint32_t crc = u32(h + 10);
    uint64_t csize = u32(h + 14), usize = u32(h + 18);
    char name[256];
    if (flags & 1)
        return tl_fail(e, "encrypted NPZ entry");
    if (flags & 8)
        return tl_fail(e, "NPZ entry with a data descriptor (an archive streamed by its writer) is not supported");
    if (method != 0 && method != 8)
        return tl_fail(e, "NPZ entry compressed with method %u (only stored and deflated)", method);
    if (nlen >= sizeof name)
        return tl_fail(e, "NPZ entry name too long");
    uint8_t extra[65536];
    if (rd(user, name, nlen) != nlen || rd(user, extra, xlen) != xlen)
        return tl_fail(e, "truncated NPZ entry header");
    name[nlen] = '\0';
    /* the ZIP64 extra field holds the sizes that do not fit (usize first) */
    for (unsigned at = 0; at + 4 <= xlen;) {
        unsigned id = u16(extra + at), len = u16(extra + at + 2), k = at + 4;
        if (k + len > xlen)
            break;
        if (id == 1) {
            if (usize == 0xFFFFFFFFu && k + 8 <= at + 4 + len)
                usize = u64(extra + k), k += 8;
            if (csize == 0xFFFFFFFFu && k + 8 <= at + 4 + len)
                csize = u64(extra + k);
        }
        at += 4 + len;
    }
    if (a->n == TL_NPZ_MAX_ENTRIES)
        return tl_fail(e, "NPZ archive with more than %d arrays", TL_NPZ_MAX_ENTRIES);
    if (method == 0 && csize != usize)
        return tl_fail(e, "%s: stored NPZ entry with two sizes", name);
    /* deflate shrinks at most about 1032 to 1: a larger claim is a lie */
    if (usize > ((uint64_t)1 << 40) || (method == 8 && usize > csize * 1100 + 4096))
        return tl_fail(e, "%s: implausible NPZ entry size", name);
    uint8_t *data = NULL, *comp = NULL;
    int rc = 0, cut = 0;
    if (method == 0) {
        if (!(data = read_bytes(rd, user, usize, &cut)))
            rc = cut ? tl_fail(e, "%s: truncated NPZ entry", name) : tl_fail(e, "out of memory");
    } else if (!(comp = read_bytes(rd, user, csize, &cut))) {
        rc = cut ? tl_fail(e, "%s: truncated NPZ entry", name) : tl_fail(e, "out of memory");
    } else if (!(data = malloc((size_t)usize + 1))) {
        rc = tl_fail(e, "out of memory for NPZ entry %s (%llu bytes)", name, (unsigned long long)usize);
    } else {
        z_stream z = {0};
        if (inflateInit2(&z, -15) != Z_OK) {
            rc = tl_fail(e, "out of memory");
        } else {
            uint64_t in_done = 0, out_done = 0;
            int zr = Z_OK;
            while (zr == Z_OK) {
                uInt in_n = (uInt)(csize - in_done > (1u << 30) ? (1u << 30) : csize - in_done);
                uInt out_n = (uInt)(usize - out_done > (1u << 30) ? (1u << 30) : usize - out_done);
                z.next_in = comp + in_done, z.avail_in = in_n;
                z.next_out = data + out_done, z.avail_out = out_n;
                zr = inflate(&z, Z_NO_FLUSH);
                in_done += in_n - z.avail_in;
                out_done += out_n - z.avail_out;
                if (zr == Z_OK && !(in_n - z.avail_in) && !(out_n - z.avail_out))
                    zr = Z_DATA_ERROR;
            }
            inflateEnd(&z);
            if (zr != Z_STREAM_END || out_done != usize)
                rc = tl_fail(e, "%s: corrupt deflated NPZ entry", name);
        }
    }
    free(comp);
    uLong c = crc32(0L, Z_NULL, 0);
    for (uint64_t at = 0; !rc && at < usize;) {
        uInt k = (uInt)(usize - at > (1u << 30) ? (1u << 30) : usize - at);
        c = crc32(c, data + at, k);
        at += k;
    }
    if (!rc && (uint32_t)c != crc)
        rc = tl_fail(e, "%s: NPZ entry is corrupt (CRC mismatch)", name);
    if (rc) {
        free(data);
        return -1;
    }
    tl_npz_array *en = &a->entry[a->n++];
    snprintf(en->name, sizeof en->name, "%s", name);
    en->data = data;
    en->size = (size_t)usize;
    return 0;
}

int tl_npz_read_archive(tl_npz_archive *a, tl_npz_read_fn rd, void *user, tl_err *e)
{
    memset(a, 0, sizeof *a);
    /* the caller has read the first local header's signature */
    uint32_t sig = 0x04034b50;
    for (;;) {
        int rc = 0;
        uint8_t h[60];
        if (sig == 0x04034b50) {
            rc = local_entry(a, rd, user, e);
        } else if (sig == 0x02014b50) { /* central directory entry */
            rc = rd(user, h, 42) != 42 ? tl_fail(e, "truncated NPZ directory")
                                       : skip(rd, user, (uint64_t)u16(h + 24) + u16(h + 26) + u16(h + 28), e);
        } else if (sig == 0x06064b50) { /* ZIP64 end of directory */
            rc = rd(user, h, 8) != 8 ? tl_fail(e, "truncated NPZ directory") : skip(rd, user, u64(h), e);
        } else if (sig == 0x07064b50) { /* ZIP64 locator */
            rc = skip(rd, user, 16, e);
        } else if (sig == 0x06054b50) { /* end of directory: the archive ends */
            rc = rd(user, h, 18) != 18 ? tl_fail(e, "truncated NPZ directory") : skip(rd, user, u16(h + 16), e);
            if (!rc)
                return 0;
        } else {
            rc = tl_fail(e, "not an NPZ archive (zip record 0x%08x)", (unsigned)sig);
        }
        uint8_t s[4];
        if (!rc && rd(user, s, 4) != 4)
            rc = tl_fail(e, "truncated NPZ archive (no end of directory)");
        if (rc) {
            tl_npz_archive_free(a);
            return -1;
        }
        sig = u32(s);
    }
}

const tl_npz_array *tl_npz_find(const tl_npz_archive *a, const char *name)
{
    for (int i = 0; i < a->n; i++)
        if (!strncmp(a->entry[i].name, name, strlen(name)) && !strcmp(a->entry[i].name + strlen(name), ".npy"))
            return &a->entry[i];
    return NULL;
}

int tl_npy_parse(const tl_npz_array *x, tl_npy_view *v, tl_err *e)
{
    memset(v, 0, sizeof *v);
    const uint8_t *p = x->data;
    if (x->size < 10 || memcmp(p, "\x93NUMPY", 6) || (p[6] != 1 && p[6] != 2))
        return tl_fail(e, "%s: not an NPY array", x->name);
    size_t hl = p[6] == 1 ? u16(p + 8) : u32(p + 8), off = p[6] == 1 ? 10 : 12;
    if (off + hl > x->size || hl >= 4096)
        return tl_fail(e, "%s: bad NPY header", x->name);
    char h[4096];
    memcpy(h, p + off, hl);
    h[hl] = '\0';
    const char *d = strstr(h, "'descr': '"), *s = strstr(h, "'shape': (");
    if (!d || !s || !strstr(h, "'fortran_order': False"))
        return tl_fail(e, "%s: NPY array must be in C order with a descr and a shape", x->name);
    d += 10;
    size_t dl = strcspn(d, "'");
    if (dl >= sizeof v->descr)
        return tl_fail(e, "%s: NPY descr too long", x->name);
    memcpy(v->descr, d, dl);
    s += 10;
    while (*s != ')') {
        char *end;
        long long k = strtoll(s, &end, 10);
        if (end == s || k < 0 || v->ndim == 2)
            return tl_fail(e, "%s: NPY shape must have at most 2 dimensions", x->name);
        v->shape[v->ndim++] = k;
        s = end;
        while (*s == ',' || *s == ' ')
            s++;
    }
    v->data = p + off + hl;
    v->size = x->size - off - hl;
    return 0;
}
