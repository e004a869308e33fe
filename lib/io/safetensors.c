#include "safetensors.h"
#include "json.h"
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A header larger than this is not a checkpoint but an attack or a bug. */
#define MAX_HEADER (100u << 20)

static const struct { const char *name; size_t size; } dtypes[] = {
    [TL_F32] = {"F32", 4}, [TL_F16] = {"F16", 2}, [TL_BF16] = {"BF16", 2}, [TL_F64] = {"F64", 8},
    [TL_I64] = {"I64", 8}, [TL_I32] = {"I32", 4}, [TL_I16] = {"I16", 2},  [TL_I8] = {"I8", 1},
    [TL_U8] = {"U8", 1},   [TL_BOOL] = {"BOOL", 1},
};

const char *tl_dtype_name(tl_dtype t) { return dtypes[t].name; }
size_t tl_dtype_size(tl_dtype t) { return dtypes[t].size; }

static int dtype_from_name(const char *s, tl_dtype *out)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(s, dtypes[i].name)) {
            *out = (tl_dtype)i;
            return 0;
        }
    return -1;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const tl_st_tensor *x = *(const tl_st_tensor *const *)a, *y = *(const tl_st_tensor *const *)b;
    const char *px = x->data, *py = y->data;
    return px < py ? -1 : px > py;
}

static int parse_tensor(const char *name, const tl_json *v, const uint8_t *data, uint64_t data_size,
                        tl_st_tensor *t, tl_err *e)
{
    const tl_json *dt = tl_json_get(v, "dtype"), *sh = tl_json_get(v, "shape"),
                  *off = tl_json_get(v, "data_offsets");
    if (v->type != TL_JSON_OBJECT || !dt || dt->type != TL_JSON_STRING || !sh || sh->type != TL_JSON_ARRAY || !off ||
        off->type != TL_JSON_ARRAY || off->count != 2)
        return tl_fail(e, "tensor '%s': needs dtype, shape and data_offsets", name);
    if (dtype_from_name(dt->string, &t->dtype))
        return tl_fail(e, "tensor '%s': unsupported dtype '%s'", name, dt->string);
    if (sh->count > TL_MAX_DIMS)
        return tl_fail(e, "tensor '%s': %d dimensions (at most %d)", name, sh->count, TL_MAX_DIMS);
    t->ndim = sh->count;
    uint64_t numel = 1;
    for (int i = 0; i < sh->count; i++) {
        double d = sh->items[i].number;
        /* range first: converting an out-of-range double is undefined */
        if (sh->items[i].type != TL_JSON_NUMBER || !(d >= 0 && d <= 1e15) || d != (double)(int64_t)d)
            return tl_fail(e, "tensor '%s': bad shape", name);
        t->shape[i] = (int64_t)d;
        if (t->shape[i] && numel > UINT64_MAX / (uint64_t)t->shape[i] / 8)
            return tl_fail(e, "tensor '%s': shape too large", name);
        numel *= (uint64_t)t->shape[i];
    }
    double b = off->items[0].number, en = off->items[1].number;
    if (off->items[0].type != TL_JSON_NUMBER || off->items[1].type != TL_JSON_NUMBER || b < 0 || en < b ||
        en > (double)data_size || b != (double)(uint64_t)b || en != (double)(uint64_t)en)
        return tl_fail(e, "tensor '%s': data_offsets [%.0f, %.0f] outside the %llu data bytes", name, b, en,
                       (unsigned long long)data_size);
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)(numel * tl_dtype_size(t->dtype));
    if ((uint64_t)en - (uint64_t)b != t->nbytes)
        return tl_fail(e, "tensor '%s': %llu bytes for shape x %s = %zu bytes", name,
                       (unsigned long long)((uint64_t)en - (uint64_t)b), dt->string, t->nbytes);
    t->data = data + (uint64_t)b;
    t->name = tl_strdup(name);
    return t->name ? 0 : tl_fail(e, "out of memory");
}

/* Offset of the first byte that is not valid UTF-8 (overlong forms and
 * surrogates included), or n. */
static size_t utf8_bad_at(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || len > n - i)
            return i;
        unsigned cp = len == 1 ? c : c & (0x7Fu >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += len;
    }
    return n;
}

static int parse_header(tl_st_file *f, const char *hdr, size_t hlen, const uint8_t *data, uint64_t data_size,
                        tl_err *e)
{
    /* The format's header is UTF-8 JSON, as the reference implementation
     * insists; stray bytes in a name would never match a parameter. */
    size_t bad = utf8_bad_at((const unsigned char *)hdr, hlen);
    if (bad < hlen)
        return tl_fail(e, "header is not valid UTF-8 (byte %zu)", bad + 8);
    tl_json root;
    if (tl_json_parse(hdr, hlen, &root, e))
        return -1;
    int rc = -1;
    if (root.type != TL_JSON_OBJECT) {
        tl_fail(e, "header is not a JSON object");
        goto out;
    }
    f->tensors = calloc((size_t)root.count + 1, sizeof *f->tensors);
    if (!f->tensors) {
        tl_fail(e, "out of memory");
        goto out;
    }
    for (int i = 0; i < root.count; i++) {
        const char *key = root.keys[i];
        for (int j = 0; j < i; j++)
            if (!strcmp(root.keys[j], key)) {
                tl_fail(e, "duplicate entry '%s' in header", key);
                goto out;
            }
        if (!strcmp(key, "__metadata__")) {
            const tl_json *m = &root.items[i];
            if (m->type != TL_JSON_OBJECT) {
                tl_fail(e, "__metadata__ is not an object");
                goto out;
            }
            f->meta_keys = calloc((size_t)m->count + 1, sizeof *f->meta_keys);
            f->meta_values = calloc((size_t)m->count + 1, sizeof *f->meta_values);
            if (!f->meta_keys || !f->meta_values) {
                tl_fail(e, "out of memory");
                goto out;
            }
            for (int k = 0; k < m->count; k++) {
                if (m->items[k].type != TL_JSON_STRING) {
                    tl_fail(e, "__metadata__ value '%s' is not a string", m->keys[k]);
                    goto out;
                }
                f->meta_keys[f->nmeta] = tl_strdup(m->keys[k]);
                f->meta_values[f->nmeta] = tl_strdup(m->items[k].string);
                f->nmeta++;
            }
            continue;
        }
        if (parse_tensor(key, &root.items[i], data, data_size, &f->tensors[f->ntensors], e))
            goto out;
        f->ntensors++;
    }
    /* Overlapping byte ranges would let one tensor alias another. Empty
     * tensors own no bytes, so they may sit anywhere. */
    tl_st_tensor **order = malloc(((size_t)f->ntensors + 1) * sizeof *order);
    if (!order) {
        tl_fail(e, "out of memory");
        goto out;
    }
    int nonempty = 0;
    for (int i = 0; i < f->ntensors; i++)
        if (f->tensors[i].nbytes)
            order[nonempty++] = &f->tensors[i];
    qsort(order, (size_t)nonempty, sizeof *order, cmp_by_offset);
    for (int i = 1; i < nonempty; i++) {
        const char *prev_end = (const char *)order[i - 1]->data + order[i - 1]->nbytes;
        if ((const char *)order[i]->data < prev_end) {
            tl_fail(e, "tensors '%s' and '%s' overlap", order[i - 1]->name, order[i]->name);
            free(order);
            goto out;
        }
    }
    free(order);
    rc = 0;
out:
    tl_json_free(&root);
    return rc;
}

int tl_st_open(const char *path, tl_st_file *f, tl_err *e)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return tl_fail(e, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tl_fail(e, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        close(fd);
        return tl_fail(e, "%s: not a safetensors file (only %zu bytes)", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return tl_fail(e, "%s: cannot map: %s", path, strerror(errno));
    f->map = map;
    f->map_size = size;
    const uint8_t *p = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | p[i];
    if (hlen > MAX_HEADER || hlen > size - 8) {
        tl_st_close(f);
        return tl_fail(e, "%s: not a safetensors file (header length %llu, file size %zu)", path,
                       (unsigned long long)hlen, size);
    }
    if (parse_header(f, (const char *)p + 8, (size_t)hlen, p + 8 + hlen, size - 8 - hlen, e)) {
        tl_st_close(f);
        return tl_fail_prefix(e, "%s", path);
    }
    return 0;
}

void tl_st_close(tl_st_file *f)
{
    for (int i = 0; i < f->ntensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    if (f->map)
        munmap(f->map, f->map_size);
    memset(f, 0, sizeof *f);
}

const tl_st_tensor *tl_st_find(const tl_st_file *f, const char *name)
{
    for (int i = 0; i < f->ntensors; i++)
        if (!strcmp(f->tensors[i].name, name))
            return &f->tensors[i];
    return NULL;
}

const char *tl_st_meta(const tl_st_file *f, const char *key)
{
    for (int i = 0; i < f->nmeta; i++)
        if (!strcmp(f->meta_keys[i], key))
            return f->meta_values[i];
    return NULL;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            bits = sign | exp << 23 | (mant & 0x3FF) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | mant << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int tl_st_to_f32(const tl_st_tensor *t, float *dst, tl_err *e)
{
    const uint8_t *s = t->data;
    int64_t n = t->numel;
    switch (t->dtype) {
    case TL_F32: memcpy(dst, s, (size_t)n * 4); return 0;
    case TL_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, s + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 0;
    case TL_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = half_to_float(h);
        }
        return 0;
    case TL_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return 0;
    default: return tl_fail(e, "tensor '%s': dtype %s is not floating point", t->name, tl_dtype_name(t->dtype));
    }
}

/* ---- writer ---- */

struct tl_st_writer {
    tl_st_tensor *t;
    int n, cap;
    char **mk, **mv;
    int nm, mcap;
};

tl_st_writer *tl_st_writer_new(void) { return calloc(1, sizeof(tl_st_writer)); }

int tl_st_add(tl_st_writer *w, const char *name, tl_dtype dtype, int ndim, const int64_t *shape, const void *data,
              tl_err *e)
{
    if (ndim < 0 || ndim > TL_MAX_DIMS)
        return tl_fail(e, "tensor '%s': %d dimensions", name, ndim);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name))
            return tl_fail(e, "tensor '%s' added twice", name);
    if (w->n == w->cap) {
        int nc = w->cap ? 2 * w->cap : 64;
        tl_st_tensor *nt = realloc(w->t, (size_t)nc * sizeof *nt);
        if (!nt)
            return tl_fail(e, "out of memory");
        w->t = nt;
        w->cap = nc;
    }
    tl_st_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = tl_strdup(name);
    if (!t->name)
        return tl_fail(e, "out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= shape[i];
    }
    t->nbytes = (size_t)t->numel * tl_dtype_size(dtype);
    t->data = data;
    w->n++;
    return 0;
}

int tl_st_set_meta(tl_st_writer *w, const char *key, const char *value, tl_err *e)
{
    for (int i = 0; i < w->nm; i++)
        if (!strcmp(w->mk[i], key)) {
            char *v = tl_strdup(value);
            if (!v)
                return tl_fail(e, "out of memory");
            free(w->mv[i]);
            w->mv[i] = v;
            return 0;
        }
    if (w->nm == w->mcap) {
        int nc = w->mcap ? 2 * w->mcap : 16;
        char **nk = realloc(w->mk, (size_t)nc * sizeof *nk);
        if (!nk)
            return tl_fail(e, "out of memory");
        w->mk = nk;
        char **nv = realloc(w->mv, (size_t)nc * sizeof *nv);
        if (!nv)
            return tl_fail(e, "out of memory");
        w->mv = nv;
        w->mcap = nc;
    }
    w->mk[w->nm] = tl_strdup(key);
    w->mv[w->nm] = tl_strdup(value);
    if (!w->mk[w->nm] || !w->mv[w->nm])
        return tl_fail(e, "out of memory");
    w->nm++;
    return 0;
}

static int build_header(const tl_st_writer *w, tl_strbuf *b)
{
    int bad = tl_strbuf_add(b, "{", 1);
    if (w->nm) {
        bad |= tl_strbuf_add(b, "\"__metadata__\":{", 16);
        for (int i = 0; i < w->nm; i++) {
            bad |= i ? tl_strbuf_add(b, ",", 1) : 0;
            bad |= tl_strbuf_json_string(b, w->mk[i]);
            bad |= tl_strbuf_add(b, ":", 1);
            bad |= tl_strbuf_json_string(b, w->mv[i]);
        }
        bad |= tl_strbuf_add(b, "}", 1);
    }
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const tl_st_tensor *t = &w->t[i];
        bad |= (w->nm || i) ? tl_strbuf_add(b, ",", 1) : 0;
        bad |= tl_strbuf_json_string(b, t->name);
        bad |= tl_strbuf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", tl_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            bad |= tl_strbuf_printf(b, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        bad |= tl_strbuf_printf(b, "],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
        off += t->nbytes;
    }
    bad |= tl_strbuf_add(b, "}", 1);
    /* Pad with spaces so the data starts 8-byte aligned, as the format allows. */
    while (!bad && (b->len + 8) % 8)
        bad |= tl_strbuf_add(b, " ", 1);
    return bad ? -1 : 0;
}

int tl_st_write(tl_st_writer *w, const char *path, tl_err *e)
{
    tl_strbuf hdr = {0};
    if (build_header(w, &hdr)) {
        tl_strbuf_free(&hdr);
        return tl_fail(e, "out of memory");
    }
    tl_outfile o;
    if (tl_outfile_open(&o, path, e)) {
        tl_strbuf_free(&hdr);
        return -1;
    }
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)hdr.len >> (8 * i));
    fwrite(len, 1, 8, o.fp);
    fwrite(hdr.s, 1, hdr.len, o.fp);
    tl_strbuf_free(&hdr);
    for (int i = 0; i < w->n; i++)
        if (w->t[i].nbytes)
            fwrite(w->t[i].data, 1, w->t[i].nbytes, o.fp);
    return tl_outfile_commit(&o, e);
}

void tl_st_writer_free(tl_st_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        free(w->t[i].name);
    free(w->t);
    for (int i = 0; i < w->nm; i++) {
        free(w->mk[i]);
        free(w->mv[i]);
    }
    free(w->mk);
    free(w->mv);
    free(w);
}
