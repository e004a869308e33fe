#include "runlog.h"
#include "format_version.h"
#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One train or val line, before repeated epochs are resolved. */
typedef struct {
    int epoch, is_val, seq;
    tl_runlog_phase ph;
    int64_t trainable;
} record;

typedef struct {
    tl_runlog *r;
    record *recs;
    int nrec, caprec;
    int line;
    tl_err *e;
} reader;

static int lfail(reader *rd, const char *fmt, const char *key)
{
    char what[160];
    snprintf(what, sizeof what, fmt, key);
    return tl_fail(rd->e, "line %d: %s", rd->line, what);
}

/* Absent or null: NAN. */
static int get_num(reader *rd, const tl_json *o, const char *key, double *out)
{
    const tl_json *v = tl_json_get(o, key);
    *out = NAN;
    if (!v || v->type == TL_JSON_NULL)
        return 0;
    if (v->type != TL_JSON_NUMBER)
        return lfail(rd, "\"%s\" is not a number", key);
    if (isfinite(v->number))
        *out = v->number;
    return 0;
}

/* Absent or null: -1. Counts in a log are whole and non-negative. */
static int get_count(reader *rd, const tl_json *o, const char *key, int64_t *out)
{
    const tl_json *v = tl_json_get(o, key);
    *out = -1;
    if (!v || v->type == TL_JSON_NULL)
        return 0;
    if (v->type != TL_JSON_NUMBER || !(v->number >= 0 && v->number <= 9007199254740992.0) ||
        v->number != floor(v->number))
        return lfail(rd, "\"%s\" is not a whole number", key);
    *out = (int64_t)v->number;
    return 0;
}

static int get_bool(reader *rd, const tl_json *o, const char *key, int *out)
{
    const tl_json *v = tl_json_get(o, key);
    *out = 0;
    if (!v || v->type == TL_JSON_NULL)
        return 0;
    if (v->type != TL_JSON_BOOL)
        return lfail(rd, "\"%s\" is not true or false", key);
    *out = v->number != 0;
    return 0;
}

/* Replaces *out (a later start line wins). */
static int get_str(reader *rd, const tl_json *o, const char *key, char **out)
{
    const tl_json *v = tl_json_get(o, key);
    if (!v || v->type == TL_JSON_NULL)
        return 0;
    if (v->type != TL_JSON_STRING)
        return lfail(rd, "\"%s\" is not a string", key);
    char *s = tl_strdup(v->string);
    if (!s)
        return tl_fail(rd->e, "out of memory");
    free(*out);
    *out = s;
    return 0;
}

static int get_epoch(reader *rd, const tl_json *o, int *out)
{
    int64_t ep;
    if (get_count(rd, o, "epoch", &ep))
        return -1;
    if (ep < 0)
        return lfail(rd, "%s record without an epoch", tl_json_get(o, "phase")->string);
    if (ep > TL_RUNLOG_MAX_EPOCH)
        return tl_fail(rd->e, "line %d: epoch %lld is implausibly large", rd->line, (long long)ep);
    *out = (int)ep;
    return 0;
}

/* A start or extract line may say its log's format version: checked
 * before the line is read, so that a newer log is refused rather than
 * misread. */
static int check_format(reader *rd, const tl_json *o)
{
    const tl_json *fv = tl_json_get(o, "format");
    if (!fv || fv->type == TL_JSON_NULL)
        return 0;
    char where[32];
    snprintf(where, sizeof where, "line %d", rd->line);
    return tl_format_check(where, "log", fv->type == TL_JSON_NUMBER ? fv->number : NAN, TL_FORMAT_LOG, rd->e);
}

static int on_start(reader *rd, const tl_json *o)
{
    tl_runlog *r = rd->r;
    r->has_start = 1;
    if (get_str(rd, o, "run", &r->name) || get_str(rd, o, "tool", &r->tool) || get_str(rd, o, "init", &r->init) ||
        get_str(rd, o, "model", &r->model) || get_str(rd, o, "arch", &r->arch) ||
        get_str(rd, o, "strategy", &r->strategy) || get_str(rd, o, "train", &r->train_path) ||
        get_str(rd, o, "val", &r->val_path))
        return -1;
    struct {
        const char *key;
        int64_t *dst;
    } counts[] = {{"train_images", &r->train_images}, {"val_images", &r->val_images},
                  {"classes", &r->classes},           {"epochs", &r->epochs_planned},
                  {"batch", &r->batch},               {"seed", &r->seed},
                  {"threads", &r->threads},           {"params", &r->params},
                  {"trainable_params", &r->trainable_params}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        int64_t v;
        if (get_count(rd, o, counts[i].key, &v))
            return -1;
        if (v >= 0)
            *counts[i].dst = v;
    }
    return 0;
}

static int on_epoch(reader *rd, const tl_json *o, int is_val, int nonfinite)
{
    record rec = {0};
    rec.is_val = is_val;
    rec.ph.present = 1;
    if (get_epoch(rd, o, &rec.epoch) || get_num(rd, o, "loss", &rec.ph.loss) ||
        get_num(rd, o, "accuracy", &rec.ph.accuracy) || get_num(rd, o, "seconds", &rec.ph.seconds) ||
        get_num(rd, o, "images_per_s", &rec.ph.images_per_s) || get_count(rd, o, "trainable_params", &rec.trainable))
        return -1;
    /* A loss the writer printed as nan or inf (now null), not one left out. */
    const tl_json *lv = tl_json_get(o, "loss");
    if (nonfinite && lv && lv->type == TL_JSON_NULL &&
        (rd->r->diverged_epoch < 0 || rec.epoch < rd->r->diverged_epoch))
        rd->r->diverged_epoch = rec.epoch;
    if (rd->nrec == TL_RUNLOG_MAX_RECORDS)
        return tl_fail(rd->e, "line %d: more than %d epoch records", rd->line, TL_RUNLOG_MAX_RECORDS);
    if (rd->nrec == rd->caprec) {
        int nc = rd->caprec ? rd->caprec * 2 : 64;
        if (nc > TL_RUNLOG_MAX_RECORDS)
            nc = TL_RUNLOG_MAX_RECORDS;
        record *n = realloc(rd->recs, (size_t)nc * sizeof *n);
        if (!n)
            return tl_fail(rd->e, "out of memory");
        rd->recs = n;
        rd->caprec = nc;
    }
    rec.seq = rd->nrec;
    rd->recs[rd->nrec++] = rec;
    return 0;
}

static int on_extract(reader *rd, const tl_json *o)
{
    double s;
    if (get_num(rd, o, "seconds", &s))
        return -1;
    rd->r->nextract++;
    if (s > 0)
        rd->r->extract_seconds += s;
    return 0;
}

static int on_best(reader *rd, const tl_json *o)
{
    tl_runlog *r = rd->r;
    int64_t ep, run;
    if (get_count(rd, o, "epoch", &ep) || get_count(rd, o, "epochs_run", &run) ||
        get_num(rd, o, "loss", &r->best_loss) || get_num(rd, o, "accuracy", &r->best_accuracy) ||
        get_num(rd, o, "seconds", &r->best_seconds) || get_bool(rd, o, "stopped_early", &r->stopped_early))
        return -1;
    r->has_best = 1;
    r->best_epoch = ep >= 0 && ep <= TL_RUNLOG_MAX_EPOCH ? (int)ep : -1;
    r->epochs_run = run >= 0 && run <= TL_RUNLOG_MAX_EPOCH ? (int)run : -1;
    return 0;
}

static int is_word(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* C's printf writes a diverged loss as nan, -nan or inf, which JSON has no
 * word for; Python's json writes NaN and Infinity. Outside strings these
 * become null, so the line still parses and the value reads as missing.
 * dst has room for 2 * n bytes. */
static size_t nonfinite_to_null(const char *src, size_t n, char *dst, int *replaced)
{
    static const char *const words[] = {"infinity", "nan", "inf"};
    size_t o = 0;
    int in_str = 0;
    for (size_t i = 0; i < n;) {
        char c = src[i];
        if (in_str) {
            dst[o++] = c;
            i++;
            if (c == '\\' && i < n)
                dst[o++] = src[i++];
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
            dst[o++] = src[i++];
            continue;
        }
        if ((i == 0 || !is_word(src[i - 1])) && (c == '-' || c == '+' || c == 'n' || c == 'N' || c == 'i' || c == 'I')) {
            size_t j = i + (c == '-' || c == '+');
            int hit = 0;
            for (size_t w = 0; w < sizeof words / sizeof words[0] && !hit; w++) {
                size_t wl = strlen(words[w]);
                if (n - j >= wl && !strncasecmp(src + j, words[w], wl) && (j + wl == n || !is_word(src[j + wl]))) {
                    memcpy(dst + o, "null", 4);
                    (*replaced)++;
                    o += 4;
                    i = j + wl;
                    hit = 1;
                }
            }
            if (hit)
                continue;
        }
        dst[o++] = src[i++];
    }
    return o;
}

static int parse_line(reader *rd, const char *s, size_t n, char *buf)
{
    int replaced = 0;
    size_t m = nonfinite_to_null(s, n, buf, &replaced);
    tl_json v;
    tl_err je;
    if (tl_json_parse(buf, m, &v, &je) < 0) {
        const char *why = strncmp(je.msg, "json: ", 6) ? je.msg : je.msg + 6;
        return tl_fail(rd->e, "line %d: not JSON (%s)", rd->line, why);
    }
    int rc = 0;
    const tl_json *ph = tl_json_get(&v, "phase");
    if (v.type != TL_JSON_OBJECT)
        rc = tl_fail(rd->e, "line %d: not a JSON object", rd->line);
    else if (check_format(rd, &v))
        rc = -1;
    else if (!ph || ph->type != TL_JSON_STRING)
        rc = 0; /* not a record we know: ignored, like unknown phases */
    else if (!strcmp(ph->string, "start"))
        rc = on_start(rd, &v);
    else if (!strcmp(ph->string, "train") || !strcmp(ph->string, "val"))
        rc = on_epoch(rd, &v, ph->string[0] == 'v', replaced);
    else if (!strcmp(ph->string, "extract"))
        rc = on_extract(rd, &v);
    else if (!strcmp(ph->string, "best"))
        rc = on_best(rd, &v);
    tl_json_free(&v);
    return rc;
}

static int cmp_record(const void *a, const void *b)
{
    const record *x = a, *y = b;
    if (x->epoch != y->epoch)
        return x->epoch < y->epoch ? -1 : 1;
    if (x->is_val != y->is_val)
        return x->is_val - y->is_val;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Sorted by (epoch, phase, order in the file), the last record of each
 * (epoch, phase) is the one that counts. */
static int collect_epochs(reader *rd)
{
    tl_runlog *r = rd->r;
    if (!rd->nrec)
        return 0;
    qsort(rd->recs, (size_t)rd->nrec, sizeof *rd->recs, cmp_record);
    r->epochs = calloc((size_t)rd->nrec, sizeof *r->epochs);
    if (!r->epochs)
        return tl_fail(rd->e, "out of memory");
    for (int i = 0; i < rd->nrec; i++) {
        const record *c = &rd->recs[i];
        if (i + 1 < rd->nrec && rd->recs[i + 1].epoch == c->epoch && rd->recs[i + 1].is_val == c->is_val) {
            r->repeated++;
            continue;
        }
        if (!r->nepochs || r->epochs[r->nepochs - 1].epoch != c->epoch) {
            tl_runlog_epoch *ep = &r->epochs[r->nepochs++];
            ep->epoch = c->epoch;
            ep->trainable_params = -1;
            ep->train.loss = ep->train.accuracy = ep->train.seconds = ep->train.images_per_s = NAN;
            ep->val = ep->train;
        }
        tl_runlog_epoch *ep = &r->epochs[r->nepochs - 1];
        *(c->is_val ? &ep->val : &ep->train) = c->ph;
        if (c->trainable >= 0 && (!c->is_val || ep->trainable_params < 0))
            ep->trainable_params = c->trainable;
    }
    return 0;
}

static void init_run(tl_runlog *r)
{
    memset(r, 0, sizeof *r);
    r->train_images = r->val_images = r->classes = r->epochs_planned = r->batch = r->seed = r->threads = r->params =
        r->trainable_params = -1;
    r->best_epoch = r->epochs_run = r->diverged_epoch = -1;
    r->best_loss = r->best_accuracy = r->best_seconds = NAN;
}

int tl_runlog_parse(const char *text, size_t len, const char *fallback_name, tl_runlog *out, tl_err *e)
{
    init_run(out);
    reader rd = {out, NULL, 0, 0, 0, e};
    char *buf = malloc(2 * (size_t)TL_RUNLOG_MAX_LINE);
    int rc = buf ? 0 : tl_fail(e, "out of memory");
    size_t pos = 0;
    while (!rc && pos < len) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl != NULL);
        rd.line++;
        if (n && s[n - 1] == '\r')
            n--;
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t'))
            k++;
        if (k == n)
            continue;
        if (n > TL_RUNLOG_MAX_LINE)
            rc = tl_fail(e, "line %d: longer than %d bytes", rd.line, TL_RUNLOG_MAX_LINE);
        else
            rc = parse_line(&rd, s, n, buf);
    }
    free(buf);
    if (!rc)
        rc = collect_epochs(&rd);
    free(rd.recs);
    /* tl-finetune names a run after its output file: "runs/full.safetensors"
     * reads better as "full". */
    if (!rc && out->name) {
        const char *b = strrchr(out->name, '/');
        if (b && b[1])
            memmove(out->name, b + 1, strlen(b + 1) + 1);
        size_t n = strlen(out->name), m = strlen(".safetensors");
        if (n > m && !strcmp(out->name + n - m, ".safetensors"))
            out->name[n - m] = '\0';
    }
    if (!rc && out->name && !*out->name) {
        free(out->name);
        out->name = NULL;
    }
    if (!rc && !out->name) {
        const char *nm = fallback_name && *fallback_name ? fallback_name : "run";
        if (!(out->name = tl_strdup(nm)))
            rc = tl_fail(e, "out of memory");
    }
    if (rc) {
        tl_runlog_free(out);
        return -1;
    }
    return 0;
}

/* The base name without a log-like extension: runs/full.jsonl -> full. */
static char *run_name_of(const char *path)
{
    if (!strcmp(path, "-"))
        return tl_strdup("stdin");
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char *s = tl_strdup(*b ? b : path);
    if (!s)
        return NULL;
    static const char *const exts[] = {".jsonl", ".json", ".log"};
    size_t n = strlen(s);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t m = strlen(exts[i]);
        if (n > m && !strcmp(s + n - m, exts[i])) {
            s[n - m] = '\0';
            break;
        }
    }
    return s;
}

static int slurp(const char *path, char **out, size_t *len, tl_err *e)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return tl_fail(e, "%s", strerror(errno));
    size_t cap = 0, n = 0;
    char *b = NULL;
    int rc = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= TL_RUNLOG_MAX_FILE) {
                rc = tl_fail(e, "larger than %d MiB; not a training log", TL_RUNLOG_MAX_FILE >> 20);
                break;
            }
            size_t nc = cap ? cap * 2 : 64 * 1024;
            char *nb = realloc(b, nc);
            if (!nb) {
                rc = tl_fail(e, "out of memory");
                break;
            }
            b = nb;
            cap = nc;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = tl_fail(e, "read error: %s", strerror(errno));
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (rc) {
        free(b);
        return -1;
    }
    *out = b;
    *len = n;
    return 0;
}

int tl_runlog_read(const char *path, tl_runlog *out, tl_err *e)
{
    init_run(out);
    char *text = NULL, *name = run_name_of(path);
    size_t len = 0;
    if (!name)
        return tl_fail(e, "out of memory");
    int rc = slurp(path, &text, &len, e);
    if (!rc)
        rc = tl_runlog_parse(text, len, name, out, e);
    free(text);
    free(name);
    if (rc)
        return tl_fail_prefix(e, "%s", strcmp(path, "-") ? path : "standard input");
    return 0;
}

int tl_runlog_rename(tl_runlog *r, const char *name, tl_err *e)
{
    char *s = tl_strdup(name);
    if (!s)
        return tl_fail(e, "out of memory");
    free(r->name);
    r->name = s;
    return 0;
}

void tl_runlog_free(tl_runlog *r)
{
    if (!r)
        return;
    free(r->name);
    free(r->tool);
    free(r->init);
    free(r->model);
    free(r->arch);
    free(r->strategy);
    free(r->train_path);
    free(r->val_path);
    free(r->epochs);
    init_run(r);
}
