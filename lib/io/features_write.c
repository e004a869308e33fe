#include "features.h"
#include "format_version.h"
#include "json.h"
#include "npz.h"
#include "outfile.h"
#include "tsv.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct tl_featw {
    tl_outfile out;
    int format;
    int dim;
    int64_t count;
    char **classes;
    int nclasses;
    int multilabel;
    uint8_t *rec;       /* one TLF record, reused */
    size_t rec_cap;
    float *npy_rows;    /* NPY and NPZ need the row count before the data */
    int64_t npy_cap;
    int *npz_labels;    /* NPZ: the labels (multi-label: k 0/1 per row, -1s when unlabelled) */
    char **npz_paths;   /* and the paths */
    char *header;       /* NPZ: the TLF header's JSON, kept as an array */
    char *model, *layer;
};

static void free_buffers(tl_featw *w);

static const char *const format_names[] = {"tlf", "tsv", "npy", "npz"};

int tl_feat_format_parse(const char *name, int *format)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, format_names[i])) {
            *format = i;
            return 0;
        }
    return -1;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int header_json(const tl_feat_info *info, tl_strbuf *b)
{
    int bad = tl_strbuf_printf(b, "{\"version\":%d,\"dim\":%d,%s\"dtype\":\"f32\",\"classes\":[",
                               info->multilabel ? 2 : 1, info->dim, info->multilabel ? "\"multilabel\":true," : "");
    for (int i = 0; i < info->nclasses; i++) {
        bad |= i ? tl_strbuf_add(b, ",", 1) : 0;
        bad |= tl_strbuf_json_string(b, info->classes[i]);
    }
    bad |= tl_strbuf_add(b, "],\"model\":", 10);
    bad |= tl_strbuf_json_string(b, info->model ? info->model : "");
    bad |= tl_strbuf_add(b, ",\"layer\":", 9);
    bad |= tl_strbuf_json_string(b, info->layer ? info->layer : "");
    if (info->input) {
        bad |= tl_strbuf_add(b, ",\"input\":", 9);
        bad |= tl_strbuf_json_string(b, info->input);
    }
    if (info->nshards)
        bad |= tl_strbuf_printf(b, ",\"shard\":\"%d/%d\"", info->shard, info->nshards);
    if (info->exact)
        bad |= tl_strbuf_add(b, ",\"exact\":true", 13);
    if (info->fast_decode)
        bad |= tl_strbuf_add(b, ",\"fast_decode\":true", 19);
    bad |= tl_strbuf_add(b, "}", 1);
    return bad;
}

static int write_header(tl_featw *w, const tl_feat_info *info, tl_err *e)
{
    FILE *f = w->out.fp;
    if (w->format == TL_FEAT_TLF) {
        tl_strbuf b = {0};
        if (header_json(info, &b)) {
            tl_strbuf_free(&b);
            return tl_fail(e, "out of memory");
        }
        uint8_t head[8];
        memcpy(head, "TLF1", 4);
        put_u32(head + 4, (uint32_t)b.len);
        uLong crc = crc32(0L, head, 8);
        crc = crc32(crc, (const Bytef *)b.s, (uInt)b.len);
        uint8_t c[4];
        put_u32(c, (uint32_t)crc);
        fwrite(head, 1, 8, f);
        fwrite(b.s, 1, b.len, f);
        fwrite(c, 1, 4, f);
        tl_strbuf_free(&b);
    } else if (w->format == TL_FEAT_TSV) {
        fprintf(f, "#tl-features\t%d\n#dim\t%d\n", TL_FORMAT_FEATURES_TSV, info->dim);
        if (info->multilabel)
            fprintf(f, "#multilabel\t1\n");
        if (info->model)
            fprintf(f, "#model\t%s\n", info->model);
        if (info->layer)
            fprintf(f, "#layer\t%s\n", info->layer);
        if (info->input)
            fprintf(f, "#input\t%s\n", info->input);
        if (info->nshards)
            fprintf(f, "#shard\t%d/%d\n", info->shard, info->nshards);
        if (info->exact)
            fprintf(f, "#exact\t1\n");
        if (info->fast_decode)
            fprintf(f, "#fast_decode\t1\n");
        if (info->nclasses) {
            tl_strbuf b = {0};
            int bad = tl_strbuf_add(&b, "[", 1);
            for (int i = 0; i < info->nclasses; i++) {
                bad |= i ? tl_strbuf_add(&b, ",", 1) : 0;
                bad |= tl_strbuf_json_string(&b, info->classes[i]);
            }
            bad |= tl_strbuf_add(&b, "]", 1);
            if (bad) {
                tl_strbuf_free(&b);
                return tl_fail(e, "out of memory");
            }
            fprintf(f, "#classes\t%s\n", b.s);
            tl_strbuf_free(&b);
        }
    } else if (w->format == TL_FEAT_NPZ) {
        tl_strbuf b = {0};
        if (header_json(info, &b)) {
            tl_strbuf_free(&b);
            return tl_fail(e, "out of memory");
        }
        w->header = b.s;
    }
    return 0;
}

int tl_featw_open(tl_featw **wp, const char *path, int format, const tl_feat_info *info, tl_err *e)
{
    *wp = NULL;
    if (info->dim <= 0 || info->dim > TL_FEAT_MAX_DIM)
        return tl_fail(e, "feature dimension %d out of range", info->dim);
    /* TSV rows carry the class name: check them before any output exists */
    for (int c = 0; format == TL_FEAT_TSV && c < info->nclasses; c++)
        if (tl_tsv_check(info->classes[c], "class name", 0, e))
            return -1;
    tl_featw *w = calloc(1, sizeof *w);
    if (!w)
        return tl_fail(e, "out of memory");
    w->format = format;
    w->dim = info->dim;
    w->classes = info->classes;
    w->nclasses = info->nclasses;
    w->multilabel = info->multilabel;
    for (int c = 0; c < info->nclasses && info->multilabel; c++)
        if (strchr(info->classes[c], ',') || !strcmp(info->classes[c], "-") || !info->classes[c][0]) {
            free(w);
            return tl_fail(e, "class '%s' cannot be named in multi-label features (',' separates labels, '-' means "
                              "unlabelled)", info->classes[c]);
        }
    if ((info->model && !(w->model = tl_strdup(info->model))) || (info->layer && !(w->layer = tl_strdup(info->layer)))) {
        free_buffers(w);
        free(w);
        return tl_fail(e, "out of memory");
    }
    if (tl_outfile_open(&w->out, path, e)) {
        free_buffers(w);
        free(w);
        return -1;
    }
    if (write_header(w, info, e)) {
        tl_featw_abort(w);
        return -1;
    }
    *wp = w;
    return 0;
}

int tl_featw_resume(tl_featw **wp, const char *path, const char *partial, uint64_t keep, int64_t count,
                    const tl_feat_info *info, tl_err *e)
{
    *wp = NULL;
    if (info->dim <= 0 || info->dim > TL_FEAT_MAX_DIM)
        return tl_fail(e, "feature dimension %d out of range", info->dim);
    tl_featw *w = calloc(1, sizeof *w);
    if (!w)
        return tl_fail(e, "out of memory");
    w->format = TL_FEAT_TLF;
    w->dim = info->dim;
    w->classes = info->classes;
    w->nclasses = info->nclasses;
    w->multilabel = info->multilabel;
    w->count = keep ? count : 0;
    if (tl_outfile_open_partial(&w->out, path, partial, keep, e)) {
        free(w);
        return -1;
    }
    if (!keep && write_header(w, info, e)) {
        tl_featw_abort(w);
        return -1;
    }
    *wp = w;
    return 0;
}

/* Single-label: label (-1 none). Multi-label: nlab labels (-1 unlabelled). */
static int add_tlf(tl_featw *w, const char *path, int label, const int *labs, int nlab, const float *v, tl_err *e)
{
    size_t plen = strlen(path);
    if (plen > TL_FEAT_MAX_PATH)
        return tl_fail(e, "%.60s...: path too long for a feature record", path);
    size_t nl = w->multilabel && nlab > 0 ? (size_t)nlab : 0;
    size_t need = 1 + 4 + 4 + plen + 4 * nl + (size_t)w->dim * 4 + 4;
    if (need > w->rec_cap) {
        uint8_t *nr = realloc(w->rec, need);
        if (!nr)
            return tl_fail(e, "out of memory");
        w->rec = nr;
        w->rec_cap = need;
    }
    uint8_t *p = w->rec;
    *p++ = 'R';
    put_u32(p, (uint32_t)(w->multilabel ? nlab : label));
    p += 4;
    put_u32(p, (uint32_t)plen);
    p += 4;
    memcpy(p, path, plen);
    p += plen;
    for (size_t i = 0; i < nl; i++, p += 4)
        put_u32(p, (uint32_t)labs[i]);
    memcpy(p, v, (size_t)w->dim * 4); /* little-endian host */
    p += (size_t)w->dim * 4;
    put_u32(p, (uint32_t)crc32(0L, w->rec, (uInt)(p - w->rec)));
    fwrite(w->rec, 1, need, w->out.fp);
    return 0;
}

static int add_record(tl_featw *w, const char *path, int label, const int *labels, int nlabels, const float *v,
                      tl_err *e);

static int cmp_int(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

int tl_featw_add(tl_featw *w, const char *path, int label, const float *v, tl_err *e)
{
    if (label >= w->nclasses || label < -1)
        label = -1;
    return tl_featw_add_labels(w, path, &label, label < 0 ? -1 : 1, v, e);
}

int tl_featw_add_labels(tl_featw *w, const char *path, const int *labels, int nlabels, const float *v, tl_err *e)
{
    int label = nlabels == 1 ? labels[0] : -1;
    if (!w->multilabel && nlabels > 1)
        return tl_fail(e, "%s: %d labels for a single-label feature file", path, nlabels);
    int *sorted = NULL;
    if (w->multilabel && nlabels > 0) {
        /* kept ascending and unique, as readers expect */
        if (!(sorted = malloc((size_t)nlabels * sizeof *sorted)))
            return tl_fail(e, "out of memory");
        memcpy(sorted, labels, (size_t)nlabels * sizeof *sorted);
        qsort(sorted, (size_t)nlabels, sizeof *sorted, cmp_int);
        int k = 0;
        for (int i = 0; i < nlabels; i++) {
            if (sorted[i] < 0 || sorted[i] >= w->nclasses) {
                int bad = sorted[i];
                free(sorted);
                return tl_fail(e, "%s: label %d is not a class index (0..%d)", path, bad, w->nclasses - 1);
            }
            if (k == 0 || sorted[i] != sorted[k - 1])
                sorted[k++] = sorted[i];
        }
        nlabels = k;
        labels = sorted;
    }
    int rc = add_record(w, path, label, labels, nlabels, v, e);
    free(sorted);
    return rc;
}

static int add_record(tl_featw *w, const char *path, int label, const int *labels, int nlabels, const float *v,
                      tl_err *e)
{
    if (w->format == TL_FEAT_TSV && tl_tsv_check(path, "path", 1, e))
        return -1;
    /* readers refuse them: a feature file never holds NaN or infinity */
    for (int i = 0; i < w->dim; i++)
        if (!isfinite(v[i]))
            return tl_fail(e, "%s: feature %d is not finite (%g)", path, i + 1, (double)v[i]);
    int rc = 0;
    if (w->format == TL_FEAT_TLF) {
        rc = add_tlf(w, path, label, labels, nlabels, v, e);
    } else if (w->format == TL_FEAT_TSV) {
        FILE *f = w->out.fp;
        fputs(path, f);
        fputc('\t', f);
        if (w->multilabel && nlabels < 0)
            fputc('-', f);
        for (int i = 0; w->multilabel && i < nlabels; i++)
            fprintf(f, "%s%s", i ? "," : "", w->classes[labels[i]]);
        if (!w->multilabel && label >= 0)
            fputs(w->classes[label], f);
        for (int i = 0; i < w->dim; i++)
            fprintf(f, "\t%.9g", (double)v[i]);
        fputc('\n', f);
    } else {
        if (w->count == w->npy_cap) {
            int64_t nc = w->npy_cap ? w->npy_cap * 2 : 1024;
            float *nr = realloc(w->npy_rows, (size_t)nc * (size_t)w->dim * sizeof(float));
            if (!nr)
                return tl_fail(e, "out of memory buffering %s rows", w->format == TL_FEAT_NPZ ? "NPZ" : "NPY");
            w->npy_rows = nr;
            if (w->format == TL_FEAT_NPZ) {
                size_t per = w->multilabel ? (size_t)w->nclasses : 1;
                int *nl = realloc(w->npz_labels, (size_t)nc * per * sizeof(int) + 1);
                if (nl)
                    w->npz_labels = nl;
                char **np = nl ? realloc(w->npz_paths, (size_t)nc * sizeof(char *)) : NULL;
                if (!np)
                    return tl_fail(e, "out of memory buffering NPZ rows");
                w->npz_paths = np;
            }
            w->npy_cap = nc;
        }
        if (w->format == TL_FEAT_NPZ) {
            if (!(w->npz_paths[w->count] = tl_strdup(path)))
                return tl_fail(e, "out of memory");
            if (w->multilabel) {
                int *row = w->npz_labels + (size_t)w->count * (size_t)w->nclasses;
                for (int c = 0; c < w->nclasses; c++)
                    row[c] = nlabels < 0 ? -1 : 0;
                for (int i = 0; i < nlabels; i++)
                    row[labels[i]] = 1;
            } else {
                w->npz_labels[w->count] = label;
            }
        }
        memcpy(w->npy_rows + (size_t)w->count * (size_t)w->dim, v, (size_t)w->dim * sizeof(float));
    }
    if (!rc)
        w->count++;
    if (!rc && ferror(w->out.fp))
        rc = tl_fail(e, "%s: write failed: %s", w->out.is_stdout ? "standard output" : w->out.path,
                     strerror(errno ? errno : EIO));
    return rc;
}

static void write_npy(tl_featw *w)
{
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %d), }",
                     (long long)w->count, w->dim);
    /* Header padded with spaces to a multiple of 64 bytes, ending in '\n'. */
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    int hlen = n + pad + 1;
    pre[8] = (uint8_t)(hlen & 0xFF);
    pre[9] = (uint8_t)(hlen >> 8);
    fwrite(pre, 1, 10, w->out.fp);
    fwrite(dict, 1, (size_t)n, w->out.fp);
    for (int i = 0; i < pad; i++)
        fputc(' ', w->out.fp);
    fputc('\n', w->out.fp);
    if (w->count)
        fwrite(w->npy_rows, sizeof(float), (size_t)w->count * (size_t)w->dim, w->out.fp);
}

/* features (n, dim) float32, labels int32 ((n,), -1 for none; multi-label
 * (n, k) of 0/1, a row of -1 when unlabelled), paths (n,) and classes (k,)
 * unicode, model, layer and header (the TLF header's JSON) as 0-d
 * unicode arrays. */
static int write_npz(tl_featw *w, tl_err *e)
{
    tl_npz_writer z;
    tl_npz_begin(&z, w->out.fp);
    const char *one[1];
    int rc = tl_npz_add_f32(&z, "features", w->count, w->dim, w->npy_rows, e) ||
             tl_npz_add_i32(&z, "labels", w->count, w->multilabel ? w->nclasses : 0, w->npz_labels, e) ||
             tl_npz_add_str(&z, "paths", w->count, (const char *const *)w->npz_paths, e) ||
             tl_npz_add_str(&z, "classes", w->nclasses, (const char *const *)w->classes, e);
    if (!rc) {
        one[0] = w->model ? w->model : "";
        rc = tl_npz_add_str(&z, "model", -1, one, e);
    }
    if (!rc) {
        one[0] = w->layer ? w->layer : "";
        rc = tl_npz_add_str(&z, "layer", -1, one, e);
    }
    if (!rc) {
        one[0] = w->header;
        rc = tl_npz_add_str(&z, "header", -1, one, e) || tl_npz_end(&z, e);
    }
    if (rc)
        return tl_fail_prefix(e, "%s", w->out.is_stdout ? "standard output" : w->out.path);
    return 0;
}

static void free_buffers(tl_featw *w)
{
    free(w->rec);
    free(w->npy_rows);
    free(w->npz_labels);
    for (int64_t i = 0; w->npz_paths && i < w->count; i++)
        free(w->npz_paths[i]);
    free(w->npz_paths);
    free(w->header);
    free(w->model);
    free(w->layer);
}

int tl_featw_close(tl_featw *w, tl_err *e)
{
    if (w->format == TL_FEAT_TLF) {
        uint8_t end[1 + 8 + 4];
        end[0] = 'E';
        for (int i = 0; i < 8; i++)
            end[1 + i] = (uint8_t)((uint64_t)w->count >> (8 * i));
        put_u32(end + 9, (uint32_t)crc32(0L, end, 9));
        fwrite(end, 1, sizeof end, w->out.fp);
    } else if (w->format == TL_FEAT_NPY) {
        write_npy(w);
    } else if (w->format == TL_FEAT_NPZ && write_npz(w, e)) {
        tl_featw_abort(w);
        return -1;
    }
    int rc = tl_outfile_commit(&w->out, e);
    free_buffers(w);
    free(w);
    return rc;
}

void tl_featw_abort(tl_featw *w)
{
    if (!w)
        return;
    tl_outfile_abort(&w->out);
    free_buffers(w);
    free(w);
}
