#include "features.h"
#include "dataset.h"
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct tl_featr {
    FILE *f;
    int own;
    const char *name;
    int format;
    tl_feat_info info;
    uint8_t peek[16];     /* bytes read while detecting the format */
    size_t npeek, peek_pos;
    int ended;
    int64_t count, npy_rows;
    char *path;           /* current record's path */
    size_t path_cap;
    char *line;           /* TSV line */
    size_t line_cap;
    uint8_t *rec;         /* TLF record bytes for the CRC */
    size_t rec_cap;
    int tsv_pending;      /* TSV: `line` holds the first data line already */
    int *labels;          /* the current record's label set */
    int nlabels, labels_cap;
    char *label_text;     /* multi-label TLF: the names joined by ',' */
    size_t label_text_cap;
};

static int grow_labels(tl_featr *r, int n, tl_err *e)
{
    if (n <= r->labels_cap)
        return 0;
    int *nl = realloc(r->labels, (size_t)n * sizeof *nl);
    if (!nl)
        return tl_fail(e, "out of memory");
    r->labels = nl;
    r->labels_cap = n;
    return 0;
}

static size_t rd(tl_featr *r, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n && r->peek_pos < r->npeek)
        ((uint8_t *)buf)[got++] = r->peek[r->peek_pos++];
    if (got < n)
        got += fread((uint8_t *)buf + got, 1, n - got, r->f);
    return got;
}

static uint32_t get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static int info_from_json(tl_feat_info *info, const tl_json *h, const char *name, tl_err *e)
{
    const tl_json *dim = tl_json_get(h, "dim"), *cls = tl_json_get(h, "classes"), *model = tl_json_get(h, "model"),
                  *layer = tl_json_get(h, "layer"), *dtype = tl_json_get(h, "dtype"),
                  *version = tl_json_get(h, "version"), *ml = tl_json_get(h, "multilabel"),
                  *input = tl_json_get(h, "input");
    if (!dim || dim->type != TL_JSON_NUMBER || dim->number < 1 || dim->number > TL_FEAT_MAX_DIM)
        return tl_fail(e, "%s: feature header has no valid dim", name);
    if (version && version->type == TL_JSON_NUMBER && version->number > 2)
        return tl_fail(e, "%s: feature file version %g is newer than this reader (2)", name, version->number);
    info->multilabel = ml && ml->type == TL_JSON_BOOL && ml->number != 0;
    if (info->multilabel && (!version || version->type != TL_JSON_NUMBER || version->number != 2))
        return tl_fail(e, "%s: a multi-label feature header must say version 2", name);
    if (dtype && (dtype->type != TL_JSON_STRING || strcmp(dtype->string, "f32")))
        return tl_fail(e, "%s: unsupported feature dtype", name);
    info->dim = (int)dim->number;
    if (cls && cls->type == TL_JSON_ARRAY) {
        info->classes = calloc((size_t)cls->count + 1, sizeof(char *));
        if (!info->classes)
            return tl_fail(e, "out of memory");
        for (int i = 0; i < cls->count; i++) {
            if (cls->items[i].type != TL_JSON_STRING)
                return tl_fail(e, "%s: class %d is not a string", name, i);
            info->classes[i] = tl_strdup(cls->items[i].string);
            info->nclasses = i + 1;
        }
    }
    if (model && model->type == TL_JSON_STRING && *model->string)
        info->model = tl_strdup(model->string);
    if (layer && layer->type == TL_JSON_STRING && *layer->string)
        info->layer = tl_strdup(layer->string);
    if (input && input->type == TL_JSON_STRING && *input->string)
        info->input = tl_strdup(input->string);
    return 0;
}

static int open_tlf(tl_featr *r, tl_err *e)
{
    uint8_t head[8];
    if (rd(r, head, 8) != 8)
        return tl_fail(e, "%s: truncated feature header", r->name);
    uint32_t hlen = get_u32(head + 4);
    if (hlen > (64u << 20))
        return tl_fail(e, "%s: feature header length %u is implausible", r->name, hlen);
    char *json = malloc((size_t)hlen + 1);
    if (!json)
        return tl_fail(e, "out of memory");
    uint8_t c[4];
    if (rd(r, json, hlen) != hlen || rd(r, c, 4) != 4) {
        free(json);
        return tl_fail(e, "%s: truncated feature header", r->name);
    }
    uLong crc = crc32(crc32(0L, head, 8), (const Bytef *)json, hlen);
    if ((uint32_t)crc != get_u32(c)) {
        free(json);
        return tl_fail(e, "%s: feature header is corrupt (CRC mismatch)", r->name);
    }
    tl_json h;
    int rc = tl_json_parse(json, hlen, &h, e);
    free(json);
    if (rc)
        return tl_fail_prefix(e, "%s: feature header", r->name);
    rc = info_from_json(&r->info, &h, r->name, e);
    tl_json_free(&h);
    return rc;
}

static int next_tlf(tl_featr *r, int *label, float *v, tl_err *e)
{
    uint8_t tag;
    if (rd(r, &tag, 1) != 1)
        return tl_fail(e, "%s: feature stream ends without its end record (truncated after %lld records)", r->name,
                       (long long)r->count);
    if (tag == 'E') {
        uint8_t end[13];
        end[0] = 'E';
        if (rd(r, end + 1, 12) != 12)
            return tl_fail(e, "%s: truncated end record", r->name);
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--)
            n = n << 8 | end[1 + i];
        if ((uint32_t)crc32(0L, end, 9) != get_u32(end + 9))
            return tl_fail(e, "%s: end record is corrupt (CRC mismatch)", r->name);
        if (n != (uint64_t)r->count)
            return tl_fail(e, "%s: end record counts %llu records, stream had %lld", r->name, (unsigned long long)n,
                           (long long)r->count);
        r->ended = 1;
        return 0;
    }
    if (tag != 'R')
        return tl_fail(e, "%s: corrupt feature stream (bad record tag after %lld records)", r->name,
                       (long long)r->count);
    uint8_t fixed[8];
    if (rd(r, fixed, 8) != 8)
        return tl_fail(e, "%s: truncated feature record %lld", r->name, (long long)r->count + 1);
    uint32_t plen = get_u32(fixed + 4);
    if (plen > TL_FEAT_MAX_PATH)
        return tl_fail(e, "%s: corrupt feature record %lld (path length %u)", r->name, (long long)r->count + 1, plen);
    int32_t lab = (int32_t)get_u32(fixed);
    size_t nl = 0;
    if (r->info.multilabel) {
        if (lab < -1 || lab > r->info.nclasses)
            return tl_fail(e, "%s: corrupt feature record %lld (%d labels, %d classes)", r->name,
                           (long long)r->count + 1, lab, r->info.nclasses);
        nl = lab > 0 ? (size_t)lab : 0;
        if (grow_labels(r, (int)nl + 1, e))
            return -1;
    }
    size_t vbytes = (size_t)r->info.dim * 4, need = 1 + 8 + plen + 4 * nl + vbytes;
    if (need > r->rec_cap) {
        uint8_t *nr = realloc(r->rec, need);
        if (!nr)
            return tl_fail(e, "out of memory");
        r->rec = nr;
        r->rec_cap = need;
    }
    if (plen + 1 > r->path_cap) {
        char *np = realloc(r->path, plen + 1);
        if (!np)
            return tl_fail(e, "out of memory");
        r->path = np;
        r->path_cap = plen + 1;
    }
    r->rec[0] = tag;
    memcpy(r->rec + 1, fixed, 8);
    uint8_t c[4];
    if (rd(r, r->rec + 9, need - 9) != need - 9 || rd(r, c, 4) != 4)
        return tl_fail(e, "%s: truncated feature record %lld", r->name, (long long)r->count + 1);
    if ((uint32_t)crc32(0L, r->rec, (uInt)need) != get_u32(c))
        return tl_fail(e, "%s: feature record %lld is corrupt (CRC mismatch)", r->name, (long long)r->count + 1);
    memcpy(r->path, r->rec + 9, plen);
    r->path[plen] = '\0';
    memcpy(v, r->rec + 9 + plen + 4 * nl, vbytes);
    if (r->info.multilabel) {
        for (size_t i = 0; i < nl; i++) {
            int32_t li = (int32_t)get_u32(r->rec + 9 + plen + 4 * i);
            if (li < 0 || li >= r->info.nclasses || (i && li <= r->labels[i - 1]))
                return tl_fail(e, "%s: feature record %lld: label %d out of range or order", r->name,
                               (long long)r->count + 1, li);
            r->labels[i] = li;
        }
        r->nlabels = lab;
        *label = lab;
    } else {
        *label = (lab >= 0 && lab < r->info.nclasses) ? lab : -1;
    }
    r->count++;
    return 1;
}

static ssize_t read_line(tl_featr *r)
{
    /* The format detection may have consumed the start of the first line. */
    size_t len = 0;
    int ch;
    for (;;) {
        if (r->peek_pos < r->npeek)
            ch = r->peek[r->peek_pos++];
        else if ((ch = getc(r->f)) == EOF)
            break;
        if (len + 2 > r->line_cap) {
            size_t nc = r->line_cap ? r->line_cap * 2 : 4096;
            char *nl = realloc(r->line, nc);
            if (!nl)
                return -2;
            r->line = nl;
            r->line_cap = nc;
        }
        if (ch == '\n')
            break;
        r->line[len++] = (char)ch;
    }
    if (len == 0 && ch == EOF)
        return -1;
    if (len && r->line[len - 1] == '\r')
        len--;
    r->line[len] = '\0';
    return (ssize_t)len;
}

static int count_columns(const char *s)
{
    int n = 1;
    for (; *s; s++)
        n += *s == '\t';
    return n;
}

static int open_tsv(tl_featr *r, tl_err *e)
{
    ssize_t len;
    while ((len = read_line(r)) >= 0) {
        if (len == 0)
            continue;
        if (r->line[0] != '#') {
            r->tsv_pending = 1;
            if (!r->info.dim) {
                int cols = count_columns(r->line) - 2;
                if (cols < 1)
                    return tl_fail(e, "%s: TSV line has no feature columns", r->name);
                r->info.dim = cols;
            }
            return 0;
        }
        char *tab = strchr(r->line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        const char *key = r->line + 1, *val = tab + 1;
        if (!strcmp(key, "dim")) {
            long d = strtol(val, NULL, 10);
            if (d < 1 || d > TL_FEAT_MAX_DIM)
                return tl_fail(e, "%s: bad #dim line", r->name);
            r->info.dim = (int)d;
        } else if (!strcmp(key, "classes")) {
            tl_strings_free(r->info.classes, r->info.nclasses);
            if (tl_json_parse_strings(val, &r->info.classes, &r->info.nclasses, e))
                return tl_fail_prefix(e, "%s: #classes", r->name);
        } else if (!strcmp(key, "model")) {
            free(r->info.model);
            r->info.model = tl_strdup(val);
        } else if (!strcmp(key, "layer")) {
            free(r->info.layer);
            r->info.layer = tl_strdup(val);
        } else if (!strcmp(key, "multilabel")) {
            r->info.multilabel = !strcmp(val, "1");
        } else if (!strcmp(key, "input")) {
            free(r->info.input);
            r->info.input = tl_strdup(val);
        }
    }
    if (len == -2)
        return tl_fail(e, "out of memory");
    if (!r->info.dim)
        return tl_fail(e, "%s: empty feature file", r->name);
    return 0;
}

static int cmp_int(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

/* A multi-label TSV column: "-" unlabelled, "" none, else "a,b,...". */
static int tsv_label_set(tl_featr *r, const char *text, int *label, tl_err *e)
{
    r->nlabels = 0;
    if (!strcmp(text, "-")) {
        r->nlabels = *label = -1;
        return 1;
    }
    if (tl_labels_check(text, e))
        return tl_fail_prefix(e, "%s: record %lld", r->name, (long long)r->count);
    int n = *text ? 1 : 0;
    for (const char *p = text; *p; p++)
        n += *p == ',';
    if (grow_labels(r, n + 1, e))
        return -1;
    for (const char *p = text; n && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int c = -1;
        for (int k = 0; k < r->info.nclasses; k++)
            if (strlen(r->info.classes[k]) == len && !memcmp(r->info.classes[k], p, len))
                c = k;
        if (r->info.nclasses && c < 0)
            return tl_fail(e, "%s: record %lld: label '%.*s' is not among the #classes", r->name,
                           (long long)r->count, (int)len, p);
        r->labels[r->nlabels++] = c;
        p += len + (end != NULL);
    }
    if (r->info.nclasses) { /* ascending, each once */
        qsort(r->labels, (size_t)r->nlabels, sizeof *r->labels, cmp_int);
        int k = 0;
        for (int i = 0; i < r->nlabels; i++)
            if (k == 0 || r->labels[i] != r->labels[k - 1])
                r->labels[k++] = r->labels[i];
        r->nlabels = k;
    }
    *label = r->nlabels;
    return 1;
}

static int next_tsv(tl_featr *r, const char **label_name, int *label, float *v, tl_err *e)
{
    ssize_t len;
    if (r->tsv_pending) {
        r->tsv_pending = 0;
        len = (ssize_t)strlen(r->line);
    } else {
        do
            len = read_line(r);
        while (len == 0 || (len > 0 && r->line[0] == '#'));
        if (len == -2)
            return tl_fail(e, "out of memory");
        if (len < 0)
            return 0;
    }
    r->count++;
    char *s = r->line, *tab = strchr(s, '\t');
    if (!tab)
        return tl_fail(e, "%s: record %lld has no label column", r->name, (long long)r->count);
    *tab = '\0';
    char *lab = tab + 1;
    tab = strchr(lab, '\t');
    if (!tab)
        return tl_fail(e, "%s: record %lld has no features", r->name, (long long)r->count);
    *tab = '\0';
    char *p = tab + 1;
    for (int i = 0; i < r->info.dim; i++) {
        char *end = p;
        /* strtof skips leading white space, tabs included: an empty column
         * would silently shift the rest */
        if (*p != '\t' && *p != ' ')
            v[i] = strtof(p, &end);
        if (end == p || (*end && *end != '\t'))
            return tl_fail(e, "%s: record %lld: column %d is not a number", r->name, (long long)r->count, i + 3);
        if (*end == '\0' && i + 1 < r->info.dim)
            return tl_fail(e, "%s: record %lld has %d features, expected %d", r->name, (long long)r->count, i + 1,
                           r->info.dim);
        p = end + (*end == '\t');
    }
    if (*p)
        return tl_fail(e, "%s: record %lld has more than %d features", r->name, (long long)r->count, r->info.dim);
    size_t plen = strlen(s);
    if (plen + 1 > r->path_cap) {
        char *np = realloc(r->path, plen + 1);
        if (!np)
            return tl_fail(e, "out of memory");
        r->path = np;
        r->path_cap = plen + 1;
    }
    memcpy(r->path, s, plen + 1);
    *label_name = lab;
    if (r->info.multilabel)
        return tsv_label_set(r, lab, label, e);
    *label = -1;
    for (int c = 0; *lab && c < r->info.nclasses; c++)
        if (!strcmp(r->info.classes[c], lab))
            *label = c;
    if (*lab && r->info.nclasses && *label < 0)
        return tl_fail(e, "%s: record %lld: label '%s' is not among the #classes", r->name, (long long)r->count, lab);
    return 1;
}

static int open_npy(tl_featr *r, tl_err *e)
{
    uint8_t pre[10];
    if (rd(r, pre, 10) != 10 || pre[6] != 1)
        return tl_fail(e, "%s: unsupported NPY version", r->name);
    size_t hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    char hdr[65536];
    if (rd(r, hdr, hlen) != hlen)
        return tl_fail(e, "%s: truncated NPY header", r->name);
    hdr[hlen] = '\0';
    if (!strstr(hdr, "'descr': '<f4'") || !strstr(hdr, "'fortran_order': False"))
        return tl_fail(e, "%s: NPY must be little-endian float32 in C order", r->name);
    const char *sh = strstr(hdr, "'shape': (");
    long long n, d;
    int used = 0;
    /* exactly two dimensions: "(n, d)", not "(n, d, k)" */
    if (!sh || sscanf(sh, "'shape': (%lld, %lld)%n", &n, &d, &used) != 2 || !used || n < 0 || d < 1 ||
        d > TL_FEAT_MAX_DIM)
        return tl_fail(e, "%s: NPY shape must be (rows, dim)", r->name);
    r->info.dim = (int)d;
    r->npy_rows = n;
    return 0;
}

static int next_npy(tl_featr *r, int *label, float *v, tl_err *e)
{
    if (r->count == r->npy_rows)
        return 0;
    if (rd(r, v, (size_t)r->info.dim * 4) != (size_t)r->info.dim * 4)
        return tl_fail(e, "%s: NPY data truncated at row %lld", r->name, (long long)r->count);
    r->count++;
    if (r->path_cap < 32) {
        char *np = realloc(r->path, 32);
        if (!np)
            return tl_fail(e, "out of memory");
        r->path = np;
        r->path_cap = 32;
    }
    snprintf(r->path, r->path_cap, "row%lld", (long long)r->count);
    *label = -1;
    return 1;
}

int tl_featr_open(tl_featr **rp, const char *path, tl_err *e)
{
    *rp = NULL;
    tl_featr *r = calloc(1, sizeof *r);
    if (!r)
        return tl_fail(e, "out of memory");
    if (!strcmp(path, "-")) {
        r->f = stdin;
        r->name = "standard input";
    } else {
        r->f = fopen(path, "rb");
        if (!r->f) {
            free(r);
            return tl_fail(e, "%s: %s", path, strerror(errno));
        }
        r->own = 1;
        r->name = path;
    }
    r->npeek = fread(r->peek, 1, 6, r->f);
    int rc;
    if (r->npeek >= 4 && !memcmp(r->peek, "TLF1", 4)) {
        r->format = TL_FEAT_TLF;
        rc = open_tlf(r, e);
    } else if (r->npeek == 6 && !memcmp(r->peek, "\x93NUMPY", 6)) {
        r->format = TL_FEAT_NPY;
        rc = open_npy(r, e);
    } else if (r->npeek == 0) {
        rc = tl_fail(e, "%s: empty input (no feature header)", r->name);
    } else if ((r->npeek < 4 && !memcmp(r->peek, "TLF1", r->npeek)) ||
               (r->npeek < 6 && !memcmp(r->peek, "\x93NUMPY", r->npeek))) {
        /* a whole file that is only the start of a magic number was cut */
        rc = tl_fail(e, "%s: truncated feature header", r->name);
    } else {
        r->format = TL_FEAT_TSV;
        rc = open_tsv(r, e);
    }
    if (rc) {
        tl_featr_close(r);
        return -1;
    }
    *rp = r;
    return 0;
}

const tl_feat_info *tl_featr_info(const tl_featr *r) { return &r->info; }

/* The current multi-label record's names joined by ',' ("-": unlabelled). */
static int join_labels(tl_featr *r, tl_err *e)
{
    size_t need = 2;
    for (int i = 0; i < r->nlabels; i++)
        need += strlen(r->info.classes[r->labels[i]]) + 1;
    if (need > r->label_text_cap) {
        char *nt = realloc(r->label_text, need);
        if (!nt)
            return tl_fail(e, "out of memory");
        r->label_text = nt;
        r->label_text_cap = need;
    }
    char *p = r->label_text;
    if (r->nlabels < 0)
        *p++ = '-';
    for (int i = 0; i < r->nlabels; i++) {
        size_t len = strlen(r->info.classes[r->labels[i]]);
        if (i)
            *p++ = ',';
        memcpy(p, r->info.classes[r->labels[i]], len);
        p += len;
    }
    *p = '\0';
    return 0;
}

const int *tl_featr_labels(const tl_featr *r, int *n)
{
    *n = r->nlabels;
    return r->labels;
}

int tl_featr_next(tl_featr *r, const char **path, const char **label_name, int *label, float *v, tl_err *e)
{
    static const char empty[] = "";
    const char *ln = empty;
    int rc;
    if (r->ended)
        return 0;
    if (r->format == TL_FEAT_TLF)
        rc = next_tlf(r, label, v, e);
    else if (r->format == TL_FEAT_TSV)
        rc = next_tsv(r, &ln, label, v, e);
    else
        rc = next_npy(r, label, v, e);
    if (rc == 1) {
        *path = r->path;
        if (r->format == TL_FEAT_TLF && r->info.multilabel) {
            if (join_labels(r, e))
                return -1;
            ln = r->label_text;
        } else if (r->format == TL_FEAT_TLF && *label >= 0) {
            ln = r->info.classes[*label];
        }
        if (!r->info.multilabel) {
            r->nlabels = *label >= 0 ? 1 : -1;
            if (grow_labels(r, 1, e))
                return -1;
            r->labels[0] = *label;
        }
        if (label_name)
            *label_name = ln;
    }
    if (rc == 0)
        r->ended = 1;
    return rc;
}

void tl_feat_info_free(tl_feat_info *info)
{
    tl_strings_free(info->classes, info->nclasses);
    free(info->model);
    free(info->layer);
    free(info->input);
    memset(info, 0, sizeof *info);
}

int tl_feat_info_copy(tl_feat_info *dst, const tl_feat_info *src, tl_err *e)
{
    memset(dst, 0, sizeof *dst);
    dst->dim = src->dim;
    dst->classes = calloc((size_t)src->nclasses + 1, sizeof(char *));
    if (!dst->classes)
        return tl_fail(e, "out of memory");
    for (int i = 0; i < src->nclasses; i++) {
        dst->classes[i] = tl_strdup(src->classes[i]);
        if (!dst->classes[i]) {
            tl_feat_info_free(dst);
            return tl_fail(e, "out of memory");
        }
        dst->nclasses = i + 1;
    }
    dst->model = src->model ? tl_strdup(src->model) : NULL;
    dst->layer = src->layer ? tl_strdup(src->layer) : NULL;
    dst->multilabel = src->multilabel;
    dst->input = src->input ? tl_strdup(src->input) : NULL;
    return 0;
}

void tl_featr_close(tl_featr *r)
{
    if (!r)
        return;
    if (r->own && r->f)
        fclose(r->f);
    tl_feat_info_free(&r->info);
    free(r->path);
    free(r->line);
    free(r->rec);
    free(r->labels);
    free(r->label_text);
    free(r);
}
