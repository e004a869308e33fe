/* Reading feature files (see features.h and tl-formats(5)). A file may be
 * several streams one after the other (cat a.tlf b.tlf): their headers
 * must describe the same data set (dimension, classes, model, layer), and
 * nothing else may follow an end record, so no data is silently dropped
 * or ignored. */
#include "features.h"
#include "dataset.h"
#include "format_version.h"
#include "json.h"
#include "lines.h"
#include "npz.h"
#include "shard.h"
#include "strindex.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct tl_featr {
    FILE *f;
    int own;
    const char *name;
    int format;
    tl_feat_info info;        /* the first stream's: the data set */
    tl_strindex classes;      /* TSV labels are looked up by name */
    tl_featr_stream_fn on_stream;
    void *user;
    int nstreams;
    uint64_t offset;          /* bytes consumed (binary formats) */
    uint8_t peek[16];         /* bytes read while detecting the format */
    size_t npeek, peek_pos;
    int ended;
    int64_t count;            /* records read, all streams */
    int64_t stream_count;     /* records of the current stream */
    int64_t npy_rows;         /* rows the current NPY header declares */
    char *path;               /* current record's path */
    size_t path_cap;
    uint8_t *rec;             /* TLF record bytes for the CRC */
    size_t rec_cap;
    tl_lines lines;           /* TSV */
    char *line;               /* TSV: the line being parsed */
    size_t line_len;
    int tsv_pending;          /* TSV: `line` holds a data line not yet returned */
    int *labels;              /* the current record's label set */
    int nlabels, labels_cap;
    char *label_text;         /* multi-label: the names joined by ',' */
    size_t label_text_cap;
    int shard;                /* the current stream's shard (K), 0 when not sharded */
    int *shard_stream;        /* sharded input: the stream (1-based) holding shard K at [K - 1], 0 not yet */
    int one_shard;            /* tl_featr_one_shard */
    tl_npz_archive npz;       /* NPZ: the current archive, whole */
    tl_npy_view npz_x, npz_y, npz_p; /* its features, labels, paths (size 0 when absent) */
    int64_t npz_n;            /* its rows */
    char *npz_s;              /* a decoded string */
    size_t npz_s_cap;
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

static int grow_label_text(tl_featr *r, size_t n, tl_err *e)
{
    if (n <= r->label_text_cap)
        return 0;
    char *nt = realloc(r->label_text, n);
    if (!nt)
        return tl_fail(e, "out of memory");
    r->label_text = nt;
    r->label_text_cap = n;
    return 0;
}

/* ---- bytes ---- */

static size_t rd(tl_featr *r, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n && r->peek_pos < r->npeek)
        ((uint8_t *)buf)[got++] = r->peek[r->peek_pos++];
    if (got < n)
        got += fread((uint8_t *)buf + got, 1, n - got, r->f);
    r->offset += got;
    return got;
}

/* A short read: a read error, or the input ended in the middle of `what`. */
static int short_read(tl_featr *r, const char *what, tl_err *e)
{
    if (ferror(r->f))
        return tl_fail(e, "%s: read error in %s: %s", r->name, what, strerror(errno ? errno : EIO));
    return tl_fail(e, "%s: truncated %s", r->name, what);
}

static uint32_t get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static int set_path(tl_featr *r, const char *s, size_t n, tl_err *e)
{
    if (n + 1 > r->path_cap) {
        char *np = realloc(r->path, n + 1);
        if (!np)
            return tl_fail(e, "out of memory");
        r->path = np;
        r->path_cap = n + 1;
    }
    memcpy(r->path, s, n);
    r->path[n] = '\0';
    return 0;
}

/* ---- streams ---- */

/* Stream k (k >= 2) must describe the first stream's data set (its shard
 * is checked by the caller); the input geometry only when both say it
 * (older files do not). */
static int same_dataset(tl_featr *r, const tl_feat_info *b, const char *where, tl_err *e)
{
    const tl_feat_info *a = &r->info;
    const char *p = r->name;
    int c;
    switch (tl_feat_info_compare(a, b, TL_FEAT_CMP_INPUT_IF_BOTH, &c)) {
    case TL_FEAT_SAME:
        return 0;
    case TL_FEAT_DIM:
        return tl_fail(e, "%s: %s: dim %d, the first stream's is %d", p, where, b->dim, a->dim);
    case TL_FEAT_MULTILABEL:
        return tl_fail(e, "%s: %s: %s, the first stream is %s", p, where, b->multilabel ? "multi-label" : "single-label",
                       a->multilabel ? "multi-label" : "single-label");
    case TL_FEAT_NCLASSES:
        return tl_fail(e, "%s: %s: %d classes, the first stream has %d", p, where, b->nclasses, a->nclasses);
    case TL_FEAT_CLASS:
        return tl_fail(e, "%s: %s: class %d is '%.60s', the first stream's is '%.60s'", p, where, c, b->classes[c],
                       a->classes[c]);
    case TL_FEAT_MODEL:
        return tl_fail(e, "%s: %s: model '%.80s', the first stream's is '%.80s'", p, where, b->model ? b->model : "",
                       a->model ? a->model : "");
    case TL_FEAT_LAYER:
        return tl_fail(e, "%s: %s: layer '%.80s', the first stream's is '%.80s'", p, where, b->layer ? b->layer : "",
                       a->layer ? a->layer : "");
    case TL_FEAT_INPUT:
        return tl_fail(e, "%s: %s: input '%.80s', the first stream's is '%.80s'", p, where, b->input, a->input);
    case TL_FEAT_EXACT:
        return tl_fail(e, "%s: %s: extracted %s --exact, the first stream %s", p, where,
                       b->exact ? "with" : "without", b->exact ? "without" : "with it");
    case TL_FEAT_FAST_DECODE:
        return tl_fail(e, "%s: %s: extracted %s --fast-decode, the first stream %s", p, where,
                       b->fast_decode ? "with" : "without", b->fast_decode ? "without" : "with it");
    case TL_FEAT_SHARD: /* not asked for */
        break;
    }
    return 0;
}

/* A new stream's header (already parsed into info): the first becomes the
 * data set's, the others must agree with it; the caller's hook sees each. */
static int begin_stream(tl_featr *r, tl_feat_info *info, uint64_t at, const char *header, size_t len, tl_err *e)
{
    int index = r->nstreams;
    r->shard = 0; /* errors below name the new stream, not the last one's shard */
    /* a later TSV stream without #dim has its rows checked against the
     * data set's: the hook sees that dimension */
    if (index > 0 && info->dim == 0)
        info->dim = r->info.dim;
    char where[128];
    int n = snprintf(where, sizeof where, "stream %d (%s %llu)", index + 1, r->format == TL_FEAT_TSV ? "line" : "byte",
                     (unsigned long long)at);
    if (info->nshards)
        snprintf(where + n, sizeof where - (size_t)n, ", shard %d/%d", info->shard, info->nshards);
    if (index > 0 && same_dataset(r, info, where, e))
        return -1;
    if (index > 0 && info->nshards != r->info.nshards) {
        if (!r->info.nshards)
            return tl_fail(e, "%s: %s: a shard after an unsharded stream", r->name, where);
        if (!info->nshards)
            return tl_fail(e, "%s: %s: not a shard, the first stream is shard %d/%d", r->name, where, r->info.shard,
                           r->info.nshards);
        return tl_fail(e, "%s: %s: sharded %d ways, the first stream %d ways (shard %d/%d)", r->name, where,
                       info->nshards, r->info.nshards, r->info.shard, r->info.nshards);
    }
    if (info->nshards) {
        if (!r->shard_stream && !(r->shard_stream = calloc((size_t)info->nshards, sizeof *r->shard_stream)))
            return tl_fail(e, "out of memory");
        int *seen = &r->shard_stream[info->shard - 1];
        if (*seen)
            return tl_fail(e, "%s: %s: shard %d/%d appears twice (streams %d and %d)", r->name, where, info->shard,
                           info->nshards, *seen, index + 1);
        *seen = index + 1;
    }
    r->shard = info->shard;
    r->nstreams++;
    r->stream_count = 0;
    if (r->on_stream && r->on_stream(r->user, index, at, header, len, info, e))
        return tl_fail_prefix(e, "%s: stream %d", r->name, index + 1);
    return 0;
}

/* ---- header keys ---- */

/* The keys of a header, TLF's JSON and TSV's '#' lines alike, and the
 * field each one fills: a key is found by its whole name, never by part of
 * it, so a key added later cannot land in another's field. */
typedef enum { KEY_DIM, KEY_CLASSES, KEY_STRING, KEY_FLAG, KEY_SHARD } key_kind;
typedef struct {
    const char *name;
    key_kind kind;
    size_t at; /* KEY_STRING: offset of a char * in tl_feat_info; KEY_FLAG: of an int */
} header_key;

static const header_key header_keys[] = {
    {"dim", KEY_DIM, 0},
    {"classes", KEY_CLASSES, 0},
    {"model", KEY_STRING, offsetof(tl_feat_info, model)},
    {"layer", KEY_STRING, offsetof(tl_feat_info, layer)},
    {"input", KEY_STRING, offsetof(tl_feat_info, input)},
    {"multilabel", KEY_FLAG, offsetof(tl_feat_info, multilabel)},
    {"exact", KEY_FLAG, offsetof(tl_feat_info, exact)},
    {"fast_decode", KEY_FLAG, offsetof(tl_feat_info, fast_decode)},
    {"shard", KEY_SHARD, 0},
};
enum { NKEYS = sizeof header_keys / sizeof header_keys[0] };

static const header_key *find_key(const char *name)
{
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(header_keys[i].name, name))
            return &header_keys[i];
    return NULL;
}

static char **key_string(tl_feat_info *info, const header_key *k) { return (char **)((char *)info + k->at); }
static int *key_flag(tl_feat_info *info, const header_key *k) { return (int *)((char *)info + k->at); }

/* ---- TLF ---- */

/* The JSON header, as it is scanned: repeated keys are refused, unknown
 * ones skipped (a later writer may add some). */
static int info_from_json(tl_feat_info *info, const char *json, size_t len, const char *name, tl_err *e)
{
    tl_jscan j;
    const char *key, *s;
    size_t n;
    int r, cap = 0, rc = -1, version = 1;
    if (tl_jscan_init(&j, json, len, e) || tl_jscan_object(&j))
        goto json_error;
    while ((r = tl_jscan_member(&j, &key, &n)) > 0) {
        int t = tl_jscan_type(&j);
        if (t < 0)
            goto json_error;
        const header_key *k = find_key(key);
        if (!strcmp(key, "version")) {
            double d;
            if (t != TL_JSON_NUMBER || tl_jscan_number(&j, &d)) {
                tl_fail(e, "%s: feature header: version is not a number", name);
                goto out;
            }
            if (tl_format_check(name, "feature file", d, TL_FORMAT_FEATURES, e))
                goto out;
            version = (int)d;
        } else if (!strcmp(key, "dtype")) {
            if (t != TL_JSON_STRING || tl_jscan_string(&j, &s, &n) || strcmp(s, "f32")) {
                tl_fail(e, "%s: unsupported feature dtype", name);
                goto out;
            }
        } else if (k && k->kind == KEY_DIM) {
            double d;
            if (t != TL_JSON_NUMBER || tl_jscan_number(&j, &d) || !(d >= 1 && d <= TL_FEAT_MAX_DIM) || d != floor(d)) {
                tl_fail(e, "%s: feature header has no valid dim (a whole number in 1..%d)", name, TL_FEAT_MAX_DIM);
                goto out;
            }
            info->dim = (int)d;
        } else if (k && k->kind == KEY_FLAG) {
            if (t != TL_JSON_BOOL || tl_jscan_bool(&j, key_flag(info, k))) {
                tl_fail(e, "%s: feature header: %s is not true or false", name, k->name);
                goto out;
            }
        } else if (k && k->kind == KEY_CLASSES) {
            if (t != TL_JSON_ARRAY) {
                tl_fail(e, "%s: feature header: classes is not a list", name);
                goto out;
            }
            tl_jscan_array(&j);
            while ((r = tl_jscan_item(&j)) > 0) {
                if (tl_jscan_type(&j) != TL_JSON_STRING) {
                    tl_fail(e, "%s: class %d is not a string", name, info->nclasses);
                    goto out;
                }
                if (tl_jscan_string(&j, &s, &n))
                    goto json_error;
                if (memchr(s, '\0', n)) {
                    tl_fail(e, "%s: class %d holds a NUL character", name, info->nclasses);
                    goto out;
                }
                if (info->nclasses + 1 >= cap) {
                    int nc = cap ? 2 * cap : 16;
                    char **ncl = realloc(info->classes, (size_t)nc * sizeof *ncl);
                    if (!ncl) {
                        tl_fail(e, "out of memory");
                        goto out;
                    }
                    info->classes = ncl;
                    cap = nc;
                }
                if (!(info->classes[info->nclasses] = malloc(n + 1))) {
                    tl_fail(e, "out of memory");
                    goto out;
                }
                memcpy(info->classes[info->nclasses++], s, n + 1);
                info->classes[info->nclasses] = NULL;
            }
            if (r < 0)
                goto json_error;
        } else if (k && k->kind == KEY_STRING) {
            char **dst = key_string(info, k);
            if (t != TL_JSON_STRING) {
                tl_fail(e, "%s: feature header: %s is not a string", name, k->name);
                goto out;
            }
            if (tl_jscan_string(&j, &s, &n))
                goto json_error;
            if (memchr(s, '\0', n)) {
                tl_fail(e, "%s: feature header: %s holds a NUL character", name, k->name);
                goto out;
            }
            if (*s && !(*dst = tl_strdup(s))) {
                tl_fail(e, "out of memory");
                goto out;
            }
        } else if (k && k->kind == KEY_SHARD) {
            if (t != TL_JSON_STRING || tl_jscan_string(&j, &s, &n) || memchr(s, '\0', n) ||
                tl_shard_parse(s, &info->shard, &info->nshards)) {
                tl_fail(e, "%s: feature header: shard is not \"K/N\" (1 <= K <= N <= %d)", name, TL_SHARD_MAX);
                goto out;
            }
        } else if (tl_jscan_skip(&j)) {
            goto json_error;
        }
    }
    if (r < 0 || tl_jscan_finish(&j))
        goto json_error;
    if (!info->dim) {
        tl_fail(e, "%s: feature header has no valid dim", name);
        goto out;
    }
    if (info->multilabel && version != 2) {
        tl_fail(e, "%s: a multi-label feature header must say version 2", name);
        goto out;
    }
    rc = 0;
    goto out;
json_error:
    tl_fail_prefix(e, "%s: feature header", name);
out:
    tl_jscan_free(&j);
    return rc;
}

/* The header whose magic was just read (at byte `at`). */
static int read_tlf_header(tl_featr *r, uint64_t at, tl_err *e)
{
    uint8_t head[8];
    memcpy(head, "TLF1", 4);
    if (rd(r, head + 4, 4) != 4)
        return short_read(r, "feature header", e);
    uint32_t hlen = get_u32(head + 4);
    if (hlen > TL_FEAT_MAX_HEADER)
        return tl_fail(e, "%s: feature header length %u is implausible", r->name, hlen);
    char *json = malloc((size_t)hlen + 1);
    if (!json)
        return tl_fail(e, "out of memory");
    uint8_t c[4];
    if (rd(r, json, hlen) != hlen || rd(r, c, 4) != 4) {
        free(json);
        return short_read(r, "feature header", e);
    }
    uLong crc = crc32(crc32(0L, head, 8), (const Bytef *)json, hlen);
    if ((uint32_t)crc != get_u32(c)) {
        free(json);
        return tl_fail(e, "%s: feature header is corrupt (CRC mismatch)", r->name);
    }
    tl_feat_info info = {0};
    int rc = info_from_json(r->nstreams ? &info : &r->info, json, hlen, r->name, e);
    if (!rc)
        rc = begin_stream(r, r->nstreams ? &info : &r->info, at, json, hlen, e);
    tl_feat_info_free(&info);
    free(json);
    return rc;
}

/* After an end record: the end of the input, or another stream. */
static int after_end_tlf(tl_featr *r, tl_err *e)
{
    uint64_t at = r->offset;
    uint8_t m[4];
    size_t got = rd(r, m, 4);
    if (got == 0)
        return ferror(r->f) ? short_read(r, "feature stream", e) : 0;
    if (got < 4 || memcmp(m, "TLF1", 4)) {
        if (ferror(r->f))
            return short_read(r, "feature stream", e);
        return tl_fail(e, "%s: %s after the end record at byte %llu (not another feature stream)", r->name,
                       got < 4 && !memcmp(m, "TLF1", got) ? "a truncated stream" : "unexpected bytes",
                       (unsigned long long)at);
    }
    return read_tlf_header(r, at, e) ? -1 : 1;
}

static int next_tlf(tl_featr *r, int *label, float *v, tl_err *e)
{
    for (;;) {
        uint8_t tag;
        if (rd(r, &tag, 1) != 1) {
            if (ferror(r->f))
                return short_read(r, "feature stream", e);
            return tl_fail(e, "%s: feature stream ends without its end record (truncated after %lld records)",
                           r->name, (long long)r->count);
        }
        if (tag == 'E') {
            uint8_t end[13];
            end[0] = 'E';
            if (rd(r, end + 1, 12) != 12)
                return short_read(r, "end record", e);
            uint64_t n = 0;
            for (int i = 7; i >= 0; i--)
                n = n << 8 | end[1 + i];
            if ((uint32_t)crc32(0L, end, 9) != get_u32(end + 9))
                return tl_fail(e, "%s: end record is corrupt (CRC mismatch)", r->name);
            if (n != (uint64_t)r->stream_count)
                return tl_fail(e, "%s: end record counts %llu records, stream had %lld", r->name,
                               (unsigned long long)n, (long long)r->stream_count);
            int more = after_end_tlf(r, e);
            if (more <= 0)
                return more;
            continue;
        }
        if (tag != 'R')
            return tl_fail(e, "%s: corrupt feature stream (bad record tag after %lld records)", r->name,
                           (long long)r->count);
        long long recno = (long long)r->count + 1;
        uint8_t fixed[8];
        if (rd(r, fixed, 8) != 8) {
            if (ferror(r->f))
                return short_read(r, "feature record", e);
            return tl_fail(e, "%s: truncated feature record %lld", r->name, recno);
        }
        uint32_t plen = get_u32(fixed + 4);
        if (plen > TL_FEAT_MAX_PATH)
            return tl_fail(e, "%s: corrupt feature record %lld (path length %u)", r->name, recno, plen);
        int32_t lab = (int32_t)get_u32(fixed);
        size_t nl = 0; /* multi-label: lab counts the labels listed before the values */
        if (r->info.multilabel) {
            if (lab < -1 || lab > r->info.nclasses)
                return tl_fail(e, "%s: corrupt feature record %lld (%d labels, %d classes)", r->name, recno, lab,
                               r->info.nclasses);
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
        r->rec[0] = tag;
        memcpy(r->rec + 1, fixed, 8);
        uint8_t c[4];
        if (rd(r, r->rec + 9, need - 9) != need - 9 || rd(r, c, 4) != 4) {
            if (ferror(r->f))
                return short_read(r, "feature record", e);
            return tl_fail(e, "%s: truncated feature record %lld", r->name, recno);
        }
        if ((uint32_t)crc32(0L, r->rec, (uInt)need) != get_u32(c))
            return tl_fail(e, "%s: feature record %lld is corrupt (CRC mismatch)", r->name, recno);
        if (memchr(r->rec + 9, '\0', plen))
            return tl_fail(e, "%s: feature record %lld: the path holds a NUL byte", r->name, recno);
        if (set_path(r, (const char *)r->rec + 9, plen, e))
            return -1;
        memcpy(v, r->rec + 9 + plen + 4 * nl, vbytes);
        if (r->info.multilabel) {
            for (size_t i = 0; i < nl; i++) {
                int32_t li = (int32_t)get_u32(r->rec + 9 + plen + 4 * i);
                if (li < 0 || li >= r->info.nclasses || (i && li <= r->labels[i - 1]))
                    return tl_fail(e, "%s: feature record %lld (%.80s): label %d out of range or order", r->name,
                                   recno, r->path, li);
                r->labels[i] = li;
            }
            r->nlabels = lab;
        } else if (lab < -1 || lab >= r->info.nclasses) {
            return tl_fail(e, "%s: feature record %lld (%.80s): label %d is not one of the %d classes", r->name, recno,
                           r->path, lab, r->info.nclasses);
        }
        *label = lab;
        r->count++;
        r->stream_count++;
        return 1;
    }
}

/* ---- TSV ---- */

typedef struct {
    unsigned char given[NKEYS]; /* header_keys given already */
} tsv_seen;

/* "#dim" must be a whole number, written once. */
static int tsv_dim(const char *val, int *out)
{
    char *end;
    errno = 0;
    long d = strtol(val, &end, 10);
    if (end == val || *end || errno || d < 1 || d > TL_FEAT_MAX_DIM || !(*val >= '0' && *val <= '9'))
        return -1;
    *out = (int)d;
    return 0;
}

/* One '#' line of a stream's header (a comment when it is no key we know). */
static int tsv_header_line(tl_featr *r, tl_feat_info *info, tsv_seen *seen, char *line, tl_err *e)
{
    long long ln = (long long)r->lines.lineno;
    char *tab = strchr(line, '\t');
    if (!tab)
        return 0;
    *tab = '\0';
    const char *key = line + 1, *val = tab + 1;
    if (!strcmp(key, "tl-features")) {
        char *end;
        double v = strtod(val, &end);
        if (end == val || *end)
            v = NAN;
        return tl_format_check(r->name, "TSV feature", v, TL_FORMAT_FEATURES_TSV, e);
    }
    const header_key *k = find_key(key);
    if (!k)
        return 0;
    if (seen->given[k - header_keys]++)
        return tl_fail(e, "%s: line %lld: #%s given twice", r->name, ln, key);
    switch (k->kind) {
    case KEY_DIM:
        if (tsv_dim(val, &info->dim))
            return tl_fail(e, "%s: line %lld: #dim '%.40s' is not a whole number in 1..%d", r->name, ln, val,
                           TL_FEAT_MAX_DIM);
        break;
    case KEY_CLASSES:
        if (tl_json_parse_strings(val, &info->classes, &info->nclasses, e))
            return tl_fail_prefix(e, "%s: line %lld: #classes", r->name, ln);
        break;
    case KEY_FLAG:
        if (strcmp(val, "0") && strcmp(val, "1"))
            return tl_fail(e, "%s: line %lld: #%s '%.40s' is not 0 or 1", r->name, ln, key, val);
        *key_flag(info, k) = val[0] == '1';
        break;
    case KEY_SHARD:
        if (tl_shard_parse(val, &info->shard, &info->nshards))
            return tl_fail(e, "%s: line %lld: #shard '%.40s' is not K/N (1 <= K <= N <= %d)", r->name, ln, val,
                           TL_SHARD_MAX);
        break;
    case KEY_STRING:
        if (*val && !(*key_string(info, k) = tl_strdup(val)))
            return tl_fail(e, "out of memory");
        break;
    }
    return 0;
}

static int is_stream_start(const char *line) { return !strncmp(line, "#tl-features", 12) && (!line[12] || line[12] == '\t'); }

static int count_columns(const char *s)
{
    int n = 1;
    for (; *s; s++)
        n += *s == '\t';
    return n;
}

/* Reads one stream's header lines up to its first data line (left pending
 * in r->line), the end of the input, or the start of the next stream
 * (*next_start: r->line holds its "#tl-features" line). When have_line,
 * r->line already holds the stream's first line. */
static int read_tsv_header(tl_featr *r, int have_line, int *next_start, tl_err *e)
{
    tl_feat_info tmp = {0}, *info = r->nstreams ? &tmp : &r->info;
    tsv_seen seen = {0};
    tl_strbuf raw = {0};
    int64_t first_line = r->lines.lineno + !have_line;
    int rc = 0, got = 1;
    *next_start = 0;
    for (;;) {
        if (!have_line) {
            got = tl_lines_next(&r->lines, &r->line, &r->line_len, e);
            if (got <= 0)
                break;
        }
        have_line = 0;
        if (r->line_len == 0)
            continue;
        if (r->line[0] != '#') {
            r->tsv_pending = 1;
            break;
        }
        if (r->nstreams && is_stream_start(r->line) && raw.len) {
            *next_start = 1; /* this stream was empty */
            break;
        }
        if (tl_strbuf_add(&raw, r->line, r->line_len) || tl_strbuf_add(&raw, "\n", 1)) {
            rc = tl_fail(e, "out of memory");
            break;
        }
        if ((rc = tsv_header_line(r, info, &seen, r->line, e)))
            break;
    }
    if (!rc && got < 0)
        rc = -1;
    if (!rc && !info->dim && r->tsv_pending) {
        int cols = count_columns(r->line) - 2;
        if (cols < 1)
            rc = tl_fail(e, "%s: line %lld: TSV line has no feature columns", r->name, (long long)r->lines.lineno);
        else if (!r->nstreams)
            info->dim = cols;
    }
    if (!rc && !r->nstreams && !info->dim)
        rc = tl_fail(e, "%s: empty feature file", r->name);
    if (!rc && !r->nstreams && info->nclasses) {
        int dup[2];
        int d = tl_strindex_build_strings(&r->classes, (const char *const *)info->classes, info->nclasses, dup, e);
        if (d < 0)
            rc = -1;
        else if (d > 0)
            rc = tl_fail(e, "%s: #classes names '%.60s' twice (classes %d and %d)", r->name,
                         info->classes[dup[0]], dup[0], dup[1]);
    }
    if (!rc)
        rc = begin_stream(r, info, (uint64_t)first_line, raw.s ? raw.s : "", raw.len, e);
    tl_strbuf_free(&raw);
    tl_feat_info_free(&tmp);
    return rc;
}

/* Headers of streams starting at r->line, until one has a data line or the
 * input ends (empty streams are allowed). */
static int read_tsv_headers(tl_featr *r, int have_line, tl_err *e)
{
    int next_start = 1;
    while (next_start) {
        if (read_tsv_header(r, have_line, &next_start, e))
            return -1;
        have_line = 1;
    }
    return 0;
}

static int cmp_int(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

/* A multi-label TSV column: "-" unlabelled, "" none, else "a,b,...";
 * names looked up in the class index (ascending, each once). */
static int tsv_label_set(tl_featr *r, const char *text, long long ln, long long rn, tl_err *e)
{
    r->nlabels = 0;
    if (!strcmp(text, "-")) {
        r->nlabels = -1;
        return 0;
    }
    if (tl_labels_check(text, e))
        return tl_fail_prefix(e, "%s: line %lld, record %lld", r->name, ln, rn);
    int n = *text ? 1 : 0;
    for (const char *p = text; *p; p++)
        n += *p == ',';
    size_t len = strlen(text);
    if (grow_labels(r, n + 1, e) || grow_label_text(r, len + 1, e))
        return -1;
    char *copy = r->label_text; /* split in place: the column stays whole for the caller */
    memcpy(copy, text, len + 1);
    for (char *p = copy; n && p;) {
        char *end = strchr(p, ',');
        if (end)
            *end = '\0';
        int c = r->info.nclasses ? tl_strindex_find(&r->classes, p) : -1;
        if (r->info.nclasses && c < 0)
            return tl_fail(e, "%s: line %lld, record %lld: label '%.80s' is not among the #classes", r->name, ln, rn,
                           p);
        r->labels[r->nlabels++] = c;
        p = end ? end + 1 : NULL;
    }
    if (r->info.nclasses) {
        qsort(r->labels, (size_t)r->nlabels, sizeof *r->labels, cmp_int);
        int k = 0;
        for (int i = 0; i < r->nlabels; i++)
            if (k == 0 || r->labels[i] != r->labels[k - 1])
                r->labels[k++] = r->labels[i];
        r->nlabels = k;
    }
    return 0;
}

static int next_tsv(tl_featr *r, const char **label_name, int *label, float *v, tl_err *e)
{
    if (!r->tsv_pending) {
        for (;;) {
            int got = tl_lines_next(&r->lines, &r->line, &r->line_len, e);
            if (got <= 0)
                return got;
            if (r->line_len == 0)
                continue;
            if (is_stream_start(r->line)) {
                if (read_tsv_headers(r, 1, e))
                    return -1;
                if (r->tsv_pending)
                    break;
                return 0;
            }
            if (r->line[0] != '#')
                break;
        }
    }
    r->tsv_pending = 0;
    long long ln = (long long)r->lines.lineno, rn = (long long)++r->count;
    char *s = r->line, *tab = strchr(s, '\t');
    if (!tab)
        return tl_fail(e, "%s: line %lld, record %lld: no label column", r->name, ln, rn);
    *tab = '\0';
    char *lab = tab + 1;
    tab = strchr(lab, '\t');
    if (!tab)
        return tl_fail(e, "%s: line %lld, record %lld: no features", r->name, ln, rn);
    *tab = '\0';
    char *p = tab + 1;
    for (int i = 0; i < r->info.dim; i++) {
        char *end = p;
        /* strtof skips leading white space, tabs included: an empty column
         * would silently shift the rest */
        if (*p != '\t' && *p != ' ')
            v[i] = strtof(p, &end);
        if (end == p || (*end && *end != '\t'))
            return tl_fail(e, "%s: line %lld, record %lld: column %d is not a number", r->name, ln, rn, i + 3);
        if (!isfinite(v[i]))
            return tl_fail(e, "%s: line %lld, record %lld: column %d ('%.20s') is not a finite number", r->name, ln,
                           rn, i + 3, p);
        if (*end == '\0' && i + 1 < r->info.dim)
            return tl_fail(e, "%s: line %lld, record %lld: %d features, expected %d", r->name, ln, rn, i + 1,
                           r->info.dim);
        p = end + (*end == '\t');
    }
    if (*p)
        return tl_fail(e, "%s: line %lld, record %lld: more than %d features", r->name, ln, rn, r->info.dim);
    if (set_path(r, s, strlen(s), e))
        return -1;
    *label_name = lab;
    *label = -1;
    if (r->info.multilabel) {
        if (tsv_label_set(r, lab, ln, rn, e))
            return -1;
        *label = r->nlabels;
    } else if (*lab && r->info.nclasses) {
        *label = tl_strindex_find(&r->classes, lab);
        if (*label < 0)
            return tl_fail(e, "%s: line %lld, record %lld: label '%.80s' is not among the #classes", r->name, ln, rn,
                           lab);
    }
    r->stream_count++;
    return 1;
}

/* ---- NPY ---- */

/* The header after the 6-byte magic (at byte `at`). */
static int read_npy_header(tl_featr *r, uint64_t at, tl_err *e)
{
    uint8_t pre[4];
    if (rd(r, pre, 4) != 4 || pre[0] != 1)
        return ferror(r->f) ? short_read(r, "NPY header", e) : tl_fail(e, "%s: unsupported NPY version", r->name);
    size_t hlen = (size_t)pre[2] | (size_t)pre[3] << 8;
    char hdr[65536];
    if (rd(r, hdr, hlen) != hlen)
        return short_read(r, "NPY header", e);
    hdr[hlen] = '\0';
    if (memchr(hdr, '\0', hlen) || !strstr(hdr, "'descr': '<f4'") || !strstr(hdr, "'fortran_order': False"))
        return tl_fail(e, "%s: NPY must be little-endian float32 in C order", r->name);
    const char *sh = strstr(hdr, "'shape': (");
    long long n, d;
    int used = 0;
    /* exactly two dimensions: "(n, d)", not "(n, d, k)" */
    if (!sh || sscanf(sh, "'shape': (%lld, %lld)%n", &n, &d, &used) != 2 || !used || n < 0 || d < 1 ||
        d > TL_FEAT_MAX_DIM)
        return tl_fail(e, "%s: NPY shape must be (rows, dim)", r->name);
    tl_feat_info info = {0};
    info.dim = (int)d;
    if (!r->nstreams)
        r->info.dim = (int)d;
    r->npy_rows = n;
    int rc = begin_stream(r, r->nstreams ? &info : &r->info, at, hdr, hlen, e);
    tl_feat_info_free(&info);
    return rc;
}

static int next_npy(tl_featr *r, int *label, float *v, tl_err *e)
{
    while (r->stream_count == r->npy_rows) {
        uint64_t at = r->offset;
        uint8_t m[6];
        size_t got = rd(r, m, 6);
        if (got == 0)
            return ferror(r->f) ? short_read(r, "NPY data", e) : 0;
        if (got < 6 || memcmp(m, "\x93NUMPY", 6))
            return ferror(r->f) ? short_read(r, "NPY data", e)
                                : tl_fail(e, "%s: unexpected bytes after the last row at byte %llu (not another NPY "
                                             "matrix)", r->name, (unsigned long long)at);
        if (read_npy_header(r, at, e))
            return -1;
    }
    size_t vbytes = (size_t)r->info.dim * 4;
    if (rd(r, v, vbytes) != vbytes) {
        if (ferror(r->f))
            return short_read(r, "NPY data", e);
        return tl_fail(e, "%s: NPY data truncated at row %lld", r->name, (long long)r->count);
    }
    r->count++;
    r->stream_count++;
    char buf[32];
    snprintf(buf, sizeof buf, "row%lld", (long long)r->count);
    *label = -1;
    return set_path(r, buf, strlen(buf), e) ? -1 : 1;
}

/* ---- NPZ ---- */

static size_t npz_rd(void *user, void *buf, size_t n) { return rd(user, buf, n); }

/* Element i of a '<U' array as UTF-8 in r->npz_s (U+DC80..U+DCFF: the
 * byte they stand for, as tl's writer and os.fsencode). */
static int npz_string(tl_featr *r, const tl_npy_view *v, int64_t i, tl_err *e)
{
    int w = atoi(v->descr + 2);
    if (strncmp(v->descr, "<U", 2) || w < 0 || (size_t)(i + 1) * (size_t)w * 4 > v->size)
        return tl_fail(e, "%s: NPZ strings must be '<U' arrays", r->name);
    size_t need = (size_t)w * 4 + 1;
    if (need > r->npz_s_cap) {
        char *ns = realloc(r->npz_s, need);
        if (!ns)
            return tl_fail(e, "out of memory");
        r->npz_s = ns;
        r->npz_s_cap = need;
    }
    const uint8_t *p = v->data + (size_t)i * (size_t)w * 4;
    char *o = r->npz_s;
    for (int k = 0; k < w; k++) {
        uint32_t c = get_u32(p + 4 * k);
        if (!c)
            break;
        if (c >= 0xDC80 && c <= 0xDCFF) {
            *o++ = (char)(c - 0xDC00);
        } else if (c < 0x80) {
            *o++ = (char)c;
        } else if (c < 0x800) {
            *o++ = (char)(0xC0 | c >> 6), *o++ = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            *o++ = (char)(0xE0 | c >> 12), *o++ = (char)(0x80 | (c >> 6 & 0x3F)), *o++ = (char)(0x80 | (c & 0x3F));
        } else if (c <= 0x10FFFF) {
            *o++ = (char)(0xF0 | c >> 18), *o++ = (char)(0x80 | (c >> 12 & 0x3F));
            *o++ = (char)(0x80 | (c >> 6 & 0x3F)), *o++ = (char)(0x80 | (c & 0x3F));
        } else {
            return tl_fail(e, "%s: NPZ string holds an invalid code point", r->name);
        }
    }
    *o = '\0';
    return 0;
}

static int npz_view(tl_featr *r, const char *name, tl_npy_view *v, tl_err *e)
{
    const tl_npz_array *x = tl_npz_find(&r->npz, name);
    memset(v, 0, sizeof *v);
    if (!x)
        return 0;
    if (tl_npy_parse(x, v, e))
        return tl_fail_prefix(e, "%s", r->name);
    return 0;
}

/* A 0-d string array (model, layer, header) as a new string, NULL when absent. */
static int npz_scalar(tl_featr *r, const char *name, char **out, tl_err *e)
{
    tl_npy_view v;
    *out = NULL;
    if (npz_view(r, name, &v, e))
        return -1;
    if (!v.data)
        return 0;
    if (v.ndim != 0 || npz_string(r, &v, 0, e))
        return tl_fail(e, "%s: NPZ '%s' is not one string", r->name, name);
    if (*r->npz_s && !(*out = tl_strdup(r->npz_s)))
        return tl_fail(e, "out of memory");
    return 0;
}

/* The archive whose first signature was just read (at byte `at`). */
static int read_npz_stream(tl_featr *r, uint64_t at, tl_err *e)
{
    tl_npz_archive_free(&r->npz);
    if (tl_npz_read_archive(&r->npz, npz_rd, r, e))
        return tl_fail_prefix(e, "%s", r->name);
    tl_feat_info tmp = {0}, *info = r->nstreams ? &tmp : &r->info;
    char *header = NULL;
    int rc = npz_view(r, "features", &r->npz_x, e) || npz_view(r, "labels", &r->npz_y, e) ||
             npz_view(r, "paths", &r->npz_p, e) || npz_scalar(r, "header", &header, e);
    const tl_npy_view *x = &r->npz_x, *y = &r->npz_y, *p = &r->npz_p;
    if (!rc && (!x->data || x->ndim != 2 || (strcmp(x->descr, "<f4") && strcmp(x->descr, "<f8")) ||
                x->shape[1] < 1 || x->shape[1] > TL_FEAT_MAX_DIM))
        rc = tl_fail(e, "%s: NPZ needs 'features', a float32 or float64 (rows, dim) array", r->name);
    int64_t n = rc ? 0 : x->shape[0];
    if (!rc && (uint64_t)n * (uint64_t)x->shape[1] * (x->descr[2] == '4' ? 4u : 8u) > x->size)
        rc = tl_fail(e, "%s: NPZ 'features' is shorter than its shape", r->name);
    if (!rc && header)
        rc = info_from_json(info, header, strlen(header), r->name, e);
    if (!rc && !header) {
        /* an archive from elsewhere: the arrays say what they can */
        tl_npy_view c;
        rc = npz_scalar(r, "model", &info->model, e) || npz_scalar(r, "layer", &info->layer, e) ||
             npz_view(r, "classes", &c, e);
        if (!rc && c.data && c.ndim == 1) {
            if (!(info->classes = calloc((size_t)c.shape[0] + 1, sizeof(char *))))
                rc = tl_fail(e, "out of memory");
            for (long long i = 0; !rc && i < c.shape[0]; i++) {
                rc = npz_string(r, &c, i, e);
                if (!rc && !(info->classes[i] = tl_strdup(r->npz_s)))
                    rc = tl_fail(e, "out of memory");
                if (!rc)
                    info->nclasses = (int)i + 1;
            }
        }
        info->dim = rc ? 0 : (int)x->shape[1];
        info->multilabel = y->ndim == 2;
    }
    if (!rc && info->dim != x->shape[1])
        rc = tl_fail(e, "%s: NPZ 'features' has %lld columns, its header says dim %d", r->name, x->shape[1], info->dim);
    int k = info->multilabel ? info->nclasses : 0;
    if (!rc && y->data &&
        (y->ndim != (k ? 2 : 1) || y->shape[0] != n || (k && y->shape[1] != k) ||
         (strcmp(y->descr, "<i4") && strcmp(y->descr, "<i8")) ||
         (uint64_t)n * (uint64_t)(k ? k : 1) * (y->descr[2] == '4' ? 4u : 8u) > y->size))
        rc = tl_fail(e, "%s: NPZ 'labels' must be int32 or int64 of shape (%lld%s)", r->name, (long long)n,
                     k ? ", classes" : ",");
    if (!rc && p->data && (p->ndim != 1 || p->shape[0] != n))
        rc = tl_fail(e, "%s: NPZ 'paths' must hold %lld strings", r->name, (long long)n);
    r->npz_n = n;
    if (!rc)
        rc = begin_stream(r, info, at, header ? header : "", header ? strlen(header) : 0, e);
    free(header);
    tl_feat_info_free(&tmp);
    return rc;
}

static int64_t npz_int(const tl_npy_view *v, int64_t i)
{
    const uint8_t *q = v->data + (size_t)i * (v->descr[2] == '4' ? 4 : 8);
    return v->descr[2] == '4' ? (int64_t)(int32_t)get_u32(q) : (int64_t)(get_u32(q) | (uint64_t)get_u32(q + 4) << 32);
}

static int next_npz(tl_featr *r, int *label, float *v, tl_err *e)
{
    while (r->stream_count == r->npz_n) {
        uint64_t at = r->offset;
        uint8_t m[4];
        size_t got = rd(r, m, 4);
        if (got == 0)
            return ferror(r->f) ? short_read(r, "NPZ archive", e) : 0;
        if (got < 4 || memcmp(m, "PK\3\4", 4))
            return ferror(r->f) ? short_read(r, "NPZ archive", e)
                                : tl_fail(e, "%s: unexpected bytes after the NPZ archive at byte %llu", r->name,
                                          (unsigned long long)at);
        if (read_npz_stream(r, at, e))
            return -1;
    }
    int64_t i = r->stream_count, dim = r->info.dim;
    const tl_npy_view *x = &r->npz_x, *y = &r->npz_y;
    if (x->descr[2] == '4') {
        memcpy(v, x->data + (size_t)i * (size_t)dim * 4, (size_t)dim * 4);
    } else {
        for (int64_t j = 0; j < dim; j++) {
            double d;
            memcpy(&d, x->data + ((size_t)i * (size_t)dim + (size_t)j) * 8, 8);
            v[j] = (float)d;
        }
    }
    r->count++;
    r->stream_count++;
    int k = r->info.multilabel ? r->info.nclasses : 0;
    *label = -1;
    if (k && y->data) {
        if (grow_labels(r, k + 1, e))
            return -1;
        r->nlabels = 0;
        for (int c = 0; c < k; c++) {
            int64_t b = npz_int(y, i * k + c);
            if (b == -1 && c == 0) {
                r->nlabels = -1;
                break;
            }
            if (b != 0 && b != 1)
                return tl_fail(e, "%s: NPZ row %lld: label column %d is %lld, not 0 or 1", r->name, (long long)i, c,
                               (long long)b);
            if (b)
                r->labels[r->nlabels++] = c;
        }
        *label = r->nlabels;
    } else if (y->data) {
        int64_t l = npz_int(y, i);
        if (l < -1 || l >= r->info.nclasses)
            return tl_fail(e, "%s: NPZ row %lld: label %lld is not one of the %d classes", r->name, (long long)i,
                           (long long)l, r->info.nclasses);
        *label = (int)l;
    }
    if (r->npz_p.data) {
        if (npz_string(r, &r->npz_p, i, e))
            return -1;
        return set_path(r, r->npz_s, strlen(r->npz_s), e) ? -1 : 1;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "row%lld", (long long)r->count);
    return set_path(r, buf, strlen(buf), e) ? -1 : 1;
}

/* ---- the reader ---- */

int tl_featr_open_ex(tl_featr **rp, const char *path, tl_featr_stream_fn on_stream, void *user, tl_err *e)
{
    *rp = NULL;
    tl_featr *r = calloc(1, sizeof *r);
    if (!r)
        return tl_fail(e, "out of memory");
    r->on_stream = on_stream;
    r->user = user;
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
    if (ferror(r->f)) {
        rc = tl_fail(e, "%s: read error: %s", r->name, strerror(errno ? errno : EIO));
    } else if (r->npeek >= 4 && !memcmp(r->peek, "TLF1", 4)) {
        r->format = TL_FEAT_TLF;
        uint8_t m[4];
        rd(r, m, 4);
        rc = read_tlf_header(r, 0, e);
    } else if (r->npeek >= 4 && !memcmp(r->peek, "PK\3\4", 4)) {
        r->format = TL_FEAT_NPZ;
        uint8_t m[4];
        rd(r, m, 4);
        rc = read_npz_stream(r, 0, e);
    } else if (r->npeek == 6 && !memcmp(r->peek, "\x93NUMPY", 6)) {
        r->format = TL_FEAT_NPY;
        uint8_t m[6];
        rd(r, m, 6);
        rc = read_npy_header(r, 0, e);
    } else if (r->npeek == 0) {
        rc = tl_fail(e, "%s: empty input (no feature header)", r->name);
    } else if ((r->npeek < 4 && !memcmp(r->peek, "TLF1", r->npeek)) ||
               (r->npeek < 6 && !memcmp(r->peek, "\x93NUMPY", r->npeek))) {
        /* a whole file that is only the start of a magic number was cut */
        rc = tl_fail(e, "%s: truncated feature header", r->name);
    } else {
        r->format = TL_FEAT_TSV;
        tl_lines_init(&r->lines, r->f, r->name, TL_LINE_MAX_BIG);
        tl_lines_unread(&r->lines, r->peek, r->npeek);
        rc = read_tsv_headers(r, 0, e);
        /* data lines grow with the dimension: 32 bytes per number is
         * twice what the writer prints */
        if (!rc)
            r->lines.max = TL_LINE_MAX_BIG + (size_t)r->info.dim * 32;
    }
    if (rc) {
        tl_featr_close(r);
        return -1;
    }
    *rp = r;
    return 0;
}

int tl_featr_open(tl_featr **rp, const char *path, tl_err *e) { return tl_featr_open_ex(rp, path, NULL, NULL, e); }

const tl_feat_info *tl_featr_info(const tl_featr *r) { return &r->info; }
int tl_featr_format(const tl_featr *r) { return r->format; }
int tl_featr_streams(const tl_featr *r) { return r->nstreams; }
int tl_featr_shard(const tl_featr *r) { return r->shard; }
void tl_featr_one_shard(tl_featr *r) { r->one_shard = 1; }
uint64_t tl_featr_offset(const tl_featr *r) { return r->offset; }

/* The end of a sharded input: every shard seen. */
static int all_shards(tl_featr *r, tl_err *e)
{
    int n = r->info.nshards, missing = 0, first = 0;
    for (int k = 1; k <= n; k++)
        if (!r->shard_stream[k - 1] && !missing++)
            first = k;
    if (!missing)
        return 0;
    if (missing == 1)
        return tl_fail(e, "%s: shard %d/%d is missing (%d of %d shards read)", r->name, first, n, n - 1, n);
    return tl_fail(e, "%s: %d of %d shards are missing, shard %d/%d the first (%d read)", r->name, missing, n, first,
                   n, n - missing);
}

/* An error inside a shard names it. */
static int in_shard(tl_featr *r, tl_err *e)
{
    if (r->shard && e) {
        size_t len = strlen(e->msg);
        snprintf(e->msg + len, sizeof e->msg - len, " (shard %d/%d)", r->shard, r->info.nshards);
    }
    return -1;
}

/* The current multi-label record's names joined by ',' ("-": unlabelled). */
static int join_labels(tl_featr *r, tl_err *e)
{
    size_t need = 2;
    for (int i = 0; i < r->nlabels; i++)
        need += strlen(r->info.classes[r->labels[i]]) + 1;
    if (grow_label_text(r, need, e))
        return -1;
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
    else if (r->format == TL_FEAT_NPZ)
        rc = next_npz(r, label, v, e);
    else
        rc = next_npy(r, label, v, e);
    if (rc < 0)
        return in_shard(r, e);
    if (rc == 1 && r->format != TL_FEAT_TSV) {
        /* TSV values were checked as they were parsed */
        for (int i = 0; i < r->info.dim; i++)
            if (!isfinite(v[i])) {
                tl_fail(e, "%s: feature record %lld (%.80s): value %d is not finite (%g)", r->name,
                        (long long)r->count, r->path, i + 1, (double)v[i]);
                return in_shard(r, e);
            }
    }
    if (rc == 1) {
        *path = r->path;
        if ((r->format == TL_FEAT_TLF || r->format == TL_FEAT_NPZ) && r->info.multilabel) {
            if (join_labels(r, e))
                return -1;
            ln = r->label_text;
        } else if ((r->format == TL_FEAT_TLF || r->format == TL_FEAT_NPZ) && *label >= 0) {
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
    if (rc == 0 && r->info.nshards && !r->one_shard && all_shards(r, e))
        return -1;
    if (rc == 0)
        r->ended = 1;
    return rc;
}

void tl_featr_close(tl_featr *r)
{
    if (!r)
        return;
    if (r->own && r->f)
        fclose(r->f);
    tl_feat_info_free(&r->info);
    tl_strindex_free(&r->classes);
    tl_lines_free(&r->lines);
    free(r->path);
    free(r->rec);
    free(r->labels);
    free(r->label_text);
    free(r->shard_stream);
    tl_npz_archive_free(&r->npz);
    free(r->npz_s);
    free(r);
}
