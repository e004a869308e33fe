#include "safetensors.h"
#include "json.h"
#include "outfile.h"

#include "strindex.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A header larger than this is not a checkpoint but an attack or a bug. */
#define MAX_HEADER TL_ST_MAX_HEADER

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

/* The numbers of a short array (shape, data_offsets) that must be whole
 * and within [0, hi]: the first max kept, *n counts them all; *bad is 1
 * for a value out of range, 2 when the value is not a list. */
static int whole_numbers(tl_jscan *j, double *out, int max, int *n, double hi, int *bad)
{
    int r;
    *n = 0;
    *bad = 0;
    if (tl_jscan_type(j) != TL_JSON_ARRAY) {
        *bad = 2; /* not a list at all */
        return tl_jscan_skip(j);
    }
    tl_jscan_array(j);
    while ((r = tl_jscan_item(j)) > 0) {
        double d = 0;
        if (tl_jscan_type(j) != TL_JSON_NUMBER) {
            *bad = 1;
            if (tl_jscan_skip(j))
                return -1;
        } else if (tl_jscan_number(j, &d)) {
            return -1;
        }
        /* range first: converting an out-of-range double is undefined */
        if (!(d >= 0 && d <= hi) || d != floor(d))
            *bad = *bad ? *bad : 1;
        if (*n < max)
            out[*n] = d;
        if (*n < 0x7fffffff)
            (*n)++;
    }
    return r;
}

/* One tensor entry, read as it is scanned: only its dtype, shape and
 * offsets are kept (other keys are skipped, as the reference reader does). */
static int parse_tensor(tl_jscan *j, const char *name, const uint8_t *data, uint64_t data_size, tl_st_tensor *t,
                        tl_err *e)
{
    double shape[TL_MAX_DIMS + 1], off[3];
    int nshape = -1, noff = -1, bad_shape = 0, bad_off = 0, have_dtype = 0, r;
    char dtype_name[16] = "";
    const char *key, *s;
    size_t len;
    if (tl_jscan_type(j) != TL_JSON_OBJECT)
        return tl_jscan_skip(j) ? -1 : tl_fail(e, "tensor '%s': needs dtype, shape and data_offsets", name);
    tl_jscan_object(j);
    while ((r = tl_jscan_member(j, &key, &len)) > 0) {
        if (!strcmp(key, "dtype") && tl_jscan_type(j) == TL_JSON_STRING) {
            if (tl_jscan_string(j, &s, &len))
                return -1;
            snprintf(dtype_name, sizeof dtype_name, "%s", s);
            if (len >= sizeof dtype_name || dtype_from_name(dtype_name, &t->dtype))
                return tl_fail(e, "tensor '%s': unsupported dtype '%.40s'", name, s);
            have_dtype = 1;
        } else if (!strcmp(key, "shape")) {
            if (whole_numbers(j, shape, TL_MAX_DIMS, &nshape, 1e15, &bad_shape))
                return -1;
        } else if (!strcmp(key, "data_offsets")) {
            if (whole_numbers(j, off, 2, &noff, (double)data_size, &bad_off))
                return -1;
        } else if (tl_jscan_skip(j)) {
            return -1;
        }
    }
    if (r < 0)
        return -1;
    if (!have_dtype || nshape < 0 || bad_shape == 2 || noff < 0 || bad_off == 2 || noff != 2)
        return tl_fail(e, "tensor '%s': needs dtype, shape and data_offsets", name);
    if (nshape > TL_MAX_DIMS)
        return tl_fail(e, "tensor '%s': %d dimensions (at most %d)", name, nshape, TL_MAX_DIMS);
    if (bad_shape)
        return tl_fail(e, "tensor '%s': bad shape", name);
    t->ndim = nshape;
    uint64_t numel = 1;
    for (int i = 0; i < nshape; i++) {
        t->shape[i] = (int64_t)shape[i];
        if (t->shape[i] && numel > UINT64_MAX / (uint64_t)t->shape[i] / 8)
            return tl_fail(e, "tensor '%s': shape too large", name);
        numel *= (uint64_t)t->shape[i];
    }
    if (bad_off || off[1] < off[0])
        return tl_fail(e, "tensor '%s': data_offsets [%.0f, %.0f] outside the %llu data bytes", name, off[0], off[1],
                       (unsigned long long)data_size);
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)(numel * tl_dtype_size(t->dtype));
    uint64_t b = (uint64_t)off[0], en = (uint64_t)off[1];
    if (en - b != t->nbytes)
        return tl_fail(e, "tensor '%s': %llu bytes for shape x %s = %zu bytes", name, (unsigned long long)(en - b),
                       dtype_name, t->nbytes);
    t->data = data + b;
    t->name = tl_strdup(name);
    return t->name ? 0 : tl_fail(e, "out of memory");
}

static int parse_metadata(tl_jscan *j, tl_st_file *f, tl_err *e)
{
    const char *key, *val;
    size_t klen, vlen;
    int r, cap = 0;
    if (tl_jscan_type(j) != TL_JSON_OBJECT)
        return tl_jscan_skip(j) ? -1 : tl_fail(e, "__metadata__ is not an object");
    tl_jscan_object(j);
    while ((r = tl_jscan_member(j, &key, &klen)) > 0) {
        if (tl_jscan_type(j) != TL_JSON_STRING)
            return tl_fail(e, "__metadata__ value '%.80s' is not a string", key);
        if (f->nmeta == TL_ST_MAX_META)
            return tl_fail(e, "__metadata__ has more than %d entries", TL_ST_MAX_META);
        char *k = tl_strdup(key);
        if (!k || tl_jscan_string(j, &val, &vlen)) {
            free(k);
            return k ? -1 : tl_fail(e, "out of memory");
        }
        if (memchr(val, '\0', vlen)) {
            free(k);
            return tl_fail(e, "__metadata__ value '%.80s' holds a NUL character", key);
        }
        if (f->nmeta == cap) {
            int nc = cap ? 2 * cap : 16;
            char **nk = realloc(f->meta_keys, ((size_t)nc + 1) * sizeof *nk);
            if (nk)
                f->meta_keys = nk;
            char **nv = nk ? realloc(f->meta_values, ((size_t)nc + 1) * sizeof *nv) : NULL;
            if (nv)
                f->meta_values = nv;
            if (!nv) {
                free(k);
                return tl_fail(e, "out of memory");
            }
            cap = nc;
        }
        f->meta_keys[f->nmeta] = k;
        if (!(f->meta_values[f->nmeta] = malloc(vlen + 1))) {
            free(k);
            return tl_fail(e, "out of memory");
        }
        memcpy(f->meta_values[f->nmeta], val, vlen + 1);
        f->nmeta++;
    }
    return r;
}

static const char *tensor_name(const void *ctx, int i) { return ((const tl_st_tensor *)ctx)[i].name; }

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

/* Streamed: what is kept is the tensor table, the names and the metadata,
 * never a tree of the header, so memory follows the number of tensors and
 * the metadata's size (at most about 4 bytes per header byte). */
static int parse_header(tl_st_file *f, const char *hdr, size_t hlen, const uint8_t *data, uint64_t data_size,
                        tl_err *e)
{
    /* The format's header is UTF-8 JSON, as the reference implementation
     * insists; stray bytes in a name would never match a parameter. */
    size_t bad = utf8_bad_at((const unsigned char *)hdr, hlen);
    if (bad < hlen)
        return tl_fail(e, "header is not valid UTF-8 (byte %zu)", bad + 8);
    tl_jscan j;
    const char *key;
    size_t klen;
    int r, cap = 0, rc = -1;
    if (tl_jscan_init(&j, hdr, hlen, e))
        goto out;
    if (tl_jscan_type(&j) != TL_JSON_OBJECT) {
        if (!tl_jscan_skip(&j))
            tl_fail(e, "header is not a JSON object");
        goto out;
    }
    tl_jscan_object(&j);
    while ((r = tl_jscan_member(&j, &key, &klen)) > 0) {
        if (!strcmp(key, "__metadata__")) {
            if (parse_metadata(&j, f, e))
                goto out;
            continue;
        }
        if (f->ntensors == cap) {
            int nc = cap ? 2 * cap : 64;
            tl_st_tensor *nt = realloc(f->tensors, ((size_t)nc + 1) * sizeof *nt);
            if (!nt) {
                tl_fail(e, "out of memory");
                goto out;
            }
            f->tensors = nt;
            cap = nc;
        }
        tl_st_tensor *t = &f->tensors[f->ntensors];
        memset(t, 0, sizeof *t);
        char *name = tl_strdup(key);
        if (!name) {
            tl_fail(e, "out of memory");
            goto out;
        }
        int bad_tensor = parse_tensor(&j, name, data, data_size, t, e);
        free(name);
        if (bad_tensor)
            goto out;
        f->ntensors++;
    }
    if (r < 0 || tl_jscan_finish(&j))
        goto out;
    /* The scanner refused repeated keys; the indexes make lookups
     * logarithmic (a loader asks for every parameter by name). */
    if (tl_strindex_build(&f->tensor_index, f->ntensors, tensor_name, f->tensors, NULL, e) < 0 ||
        tl_strindex_build_strings(&f->meta_index, (const char *const *)f->meta_keys, f->nmeta, NULL, e) < 0)
        goto out;
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
    tl_jscan_free(&j);
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
    tl_strindex_free(&f->tensor_index);
    tl_strindex_free(&f->meta_index);
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
    int i = tl_strindex_find(&f->tensor_index, name);
    return i < 0 ? NULL : &f->tensors[i];
}

const char *tl_st_meta(const tl_st_file *f, const char *key)
{
    int i = tl_strindex_find(&f->meta_index, key);
    return i < 0 ? NULL : f->meta_values[i];
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

/* Every tensor a network, head or resume state loads comes through here:
 * a NaN or infinity would only make garbage (predictions printing nan with
 * exit 0), so it is refused, naming the tensor. */
int tl_st_load_f32(const tl_st_tensor *t, float *dst, tl_err *e)
{
    if (tl_st_to_f32(t, dst, e))
        return -1;
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(dst[i]))
            return tl_fail(e, "tensor '%s': value %lld of %lld is not finite (%g)", t->name, (long long)i,
                           (long long)t->numel, (double)dst[i]);
    return 0;
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
    if (!w->mk[w->nm] || !w->mv[w->nm]) {
        free(w->mk[w->nm]);
        free(w->mv[w->nm]);
        return tl_fail(e, "out of memory");
    }
    w->nm++;
    return 0;
}

static const char *writer_tensor_name(const void *ctx, int i) { return ((const tl_st_tensor *)ctx)[i].name; }

/* Names are checked and metadata resolved when writing, through sorted
 * indexes (O(n log n)), not on every add: a key set again keeps its first
 * place and takes the last value (meta_value[i] = index of the value for
 * key i, -1 for a key that is a repeat). */
static int resolve(const tl_st_writer *w, int *meta_value, tl_err *e)
{
    tl_strindex ix;
    int dup[2];
    int d = tl_strindex_build(&ix, w->n, writer_tensor_name, w->t, dup, e);
    tl_strindex_free(&ix);
    if (d)
        return d < 0 ? -1 : tl_fail(e, "tensor '%s' added twice", w->t[dup[1]].name);
    if (tl_strindex_build_strings(&ix, (const char *const *)w->mk, w->nm, NULL, e) < 0)
        return -1;
    for (int a = 0; a < ix.n;) {
        int b = a + 1;
        while (b < ix.n && !strcmp(w->mk[ix.order[b]], w->mk[ix.order[a]]))
            b++;
        meta_value[ix.order[a]] = ix.order[b - 1];
        for (int k = a + 1; k < b; k++)
            meta_value[ix.order[k]] = -1;
        a = b;
    }
    tl_strindex_free(&ix);
    return 0;
}

static int build_header(const tl_st_writer *w, const int *meta_value, tl_strbuf *b)
{
    int bad = tl_strbuf_add(b, "{", 1);
    if (w->nm) {
        bad |= tl_strbuf_add(b, "\"__metadata__\":{", 16);
        for (int i = 0, first = 1; i < w->nm; i++) {
            if (meta_value[i] < 0)
                continue;
            bad |= first ? 0 : tl_strbuf_add(b, ",", 1);
            first = 0;
            bad |= tl_strbuf_json_string(b, w->mk[i]);
            bad |= tl_strbuf_add(b, ":", 1);
            bad |= tl_strbuf_json_string(b, w->mv[meta_value[i]]);
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
    int *meta_value = malloc(((size_t)w->nm + 1) * sizeof *meta_value);
    if (!meta_value)
        return tl_fail(e, "out of memory");
    if (resolve(w, meta_value, e)) {
        free(meta_value);
        return -1;
    }
    int bad = build_header(w, meta_value, &hdr);
    free(meta_value);
    if (bad) {
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
