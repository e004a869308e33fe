/* Reading and writing the predictions TSV (see predictions.h). */
#include "predictions.h"
#include "tsv.h"

#include "strindex.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static const char HEADER[] = "#path\ttrue\tpred";

int tl_pred_is_header(const char *line)
{
    size_t n = sizeof HEADER - 1;
    if (strncmp(line, HEADER, n))
        return 0;
    if (!strncmp(line + n, ":multilabel", 11))
        n += 11;
    if (!strncmp(line + n, ":decision", 9))
        n += 9;
    return strchr("\t\r\n", line[n]) != NULL; /* also the terminating NUL */
}

int tl_pred_sniff_file(const char *path)
{
    if (!strcmp(path, "-"))
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char buf[48] = {0};
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = '\0';
    return tl_pred_is_header(buf);
}

/* Reads the next line into r->line without its line ending; skips blank
 * lines. 1: a line, 0: end of input, -1: an error naming the line (too
 * long, a NUL byte, a read error, out of memory: never taken for the end). */
static int read_line(tl_pred_reader *r, tl_err *e)
{
    for (;;) {
        size_t len;
        int got = tl_lines_next(&r->lines, &r->line, &len, e);
        if (got <= 0)
            return got;
        r->lineno = r->lines.lineno;
        while (len > 0 && r->line[len - 1] == '\r')
            r->line[--len] = '\0';
        if (len > 0)
            return 1;
    }
}

static int count_fields(const char *s)
{
    int n = 1;
    for (; *s; s++)
        n += *s == '\t';
    return n;
}

/* The class names live in one block (r->names), r->classes pointing into
 * it: memory is the names' bytes and 16 bytes a class (pointer, score,
 * index entry), not an allocation each. */
static int setup_classes(tl_pred_reader *r, int k, size_t name_bytes, tl_err *e)
{
    r->k = k;
    r->classes = calloc((size_t)k + 1, sizeof *r->classes);
    r->names = malloc(name_bytes ? name_bytes : 1);
    r->scores = tl_alloc_array((size_t)k, sizeof *r->scores);
    if (!r->classes || !r->names || !r->scores)
        return tl_fail(e, "out of memory for %d classes", k);
    return 0;
}

/* Class names are looked up through a sorted index: a header of K names
 * costs O(K log K) and each row O(log K), never O(K) per name. */
static int index_classes(tl_pred_reader *r, const char *twice_fmt, tl_err *e)
{
    int dup[2];
    int d = tl_strindex_build_strings(&r->index, (const char *const *)r->classes, r->k, dup, e);
    if (d > 0)
        return tl_fail(e, twice_fmt, r->name, r->classes[dup[1]]);
    return d;
}

static int check_name(const tl_pred_reader *r, const char *name, const char *what, tl_err *e)
{
    if (!*name)
        return tl_fail(e, "%s: line %lld: %s is empty (a class name)", r->name, (long long)r->lineno, what);
    if (!strcmp(name, "-"))
        return tl_fail(e, "%s: line %lld: %s is '-', which marks an unknown class, not a class name", r->name,
                       (long long)r->lineno, what);
    return 0;
}

/* The next tab-separated field of *s, terminated in place; NULL after the last. */
static char *next_field(char **s)
{
    char *f = *s;
    if (!f)
        return NULL;
    char *tab = strchr(f, '\t');
    if (tab)
        *tab = '\0';
    *s = tab ? tab + 1 : NULL;
    return f;
}

static int parse_header(tl_pred_reader *r, tl_err *e)
{
    int n = count_fields(r->line);
    if (n < 4)
        return tl_fail(e, "%s: line 1: the header names no classes after '#path<TAB>true<TAB>pred'", r->name);
    char *s = r->line;
    next_field(&s);
    next_field(&s);
    const char *third = next_field(&s);
    if (strcmp(third, "pred") && strcmp(third, TL_PRED_DECISION) && strcmp(third, TL_PRED_MULTILABEL) &&
        strcmp(third, TL_PRED_MULTILABEL_DECISION))
        return tl_fail(e, "%s: line 1: third header column is '%s', not 'pred', '%s', '%s' or '%s'", r->name, third,
                       TL_PRED_DECISION, TL_PRED_MULTILABEL, TL_PRED_MULTILABEL_DECISION);
    r->probabilities = !strcmp(third, "pred") || !strcmp(third, TL_PRED_MULTILABEL);
    r->multilabel = !strncmp(third, TL_PRED_MULTILABEL, strlen(TL_PRED_MULTILABEL));
    if (setup_classes(r, n - 3, strlen(s) + 1, e))
        return -1;
    if (r->multilabel && !(r->sets = calloc((size_t)r->k * 2 + 1, 1)))
        return tl_fail(e, "out of memory");
    memcpy(r->names, s, strlen(s) + 1);
    s = r->names;
    for (int i = 0; i < r->k; i++) {
        const char *name = next_field(&s);
        char what[48];
        snprintf(what, sizeof what, "header column %d", i + 4);
        if (check_name(r, name, what, e))
            return -1;
        if (r->multilabel && strchr(name, ','))
            return tl_fail(e, "%s: line 1: class '%s' holds ',', which separates the labels of a multi-label file",
                           r->name, name);
        r->classes[i] = (char *)name;
    }
    return index_classes(r, "%s: line 1: class '%s' appears twice in the header", e);
}

/* Without a header: the caller's names, or indices from the first line. */
static int infer_classes(tl_pred_reader *r, const char *const *classes, int nclasses, tl_err *e)
{
    int n = count_fields(r->line);
    if (classes && nclasses > 0) {
        size_t bytes = 0;
        for (int i = 0; i < nclasses; i++)
            bytes += strlen(classes[i]) + 1;
        if (setup_classes(r, nclasses, bytes, e))
            return -1;
        char *d = r->names;
        for (int i = 0; i < nclasses; i++) {
            char what[48];
            snprintf(what, sizeof what, "given class %d", i + 1);
            if (check_name(r, classes[i], what, e))
                return -1;
            size_t len = strlen(classes[i]) + 1;
            memcpy(d, classes[i], len);
            r->classes[i] = d;
            d += len;
        }
        return index_classes(r, "%s: class '%s' given twice", e);
    }
    if (n < 4)
        return tl_fail(e, "%s: line %lld: %d columns, expected path, true, pred and a score per class", r->name,
                       (long long)r->lineno, n);
    size_t bytes = 0;
    for (int i = 0; i < n - 3; i++)
        bytes += (size_t)snprintf(NULL, 0, "%d", i) + 1;
    if (setup_classes(r, n - 3, bytes, e))
        return -1;
    char *d = r->names;
    for (int i = 0; i < r->k; i++) {
        r->classes[i] = d;
        d += sprintf(d, "%d", i) + 1;
    }
    if (index_classes(r, "%s: class '%s' twice", e))
        return -1;
    /* Indices must really be indices: check the first line now, so a file
     * of names without a header fails with advice rather than "unknown class". */
    const char *s = r->line;
    int bad = 0;
    for (int c = 0; c < 3 && !bad; c++) {
        size_t len = strcspn(s, "\t");
        char buf[24];
        if (c > 0 && len && !(len == 1 && *s == '-')) {
            char *end;
            snprintf(buf, sizeof buf, "%.*s", len < sizeof buf ? (int)len : (int)sizeof buf - 1, s);
            errno = 0;
            long v = strtol(buf, &end, 10);
            bad = len >= sizeof buf || *end || errno || v < 0;
        }
        s += len + (s[len] == '\t');
    }
    if (bad)
        return tl_fail(e, "%s: line %lld: no '#path<TAB>true<TAB>pred<TAB>CLASS...' header, and the classes are not "
                       "indices 0..%d: add the header or name the classes",
                       r->name, (long long)r->lineno, r->k - 1);
    return 0;
}

int tl_pred_open(tl_pred_reader *r, const char *path, const char *const *classes, int nclasses, tl_err *e)
{
    memset(r, 0, sizeof *r);
    r->probabilities = 1;
    int is_stdin = !strcmp(path, "-");
    r->name = tl_strdup(is_stdin ? "standard input" : path);
    if (!r->name)
        return tl_fail(e, "out of memory");
    r->fp = is_stdin ? stdin : fopen(path, "rb");
    if (!r->fp) {
        int err = errno;
        tl_fail(e, "%s: %s", path, strerror(err));
        tl_pred_close(r);
        return -1;
    }
    r->owns_fp = !is_stdin;
    tl_lines_init(&r->lines, r->fp, r->name, TL_PRED_MAX_LINE);
    int got = read_line(r, e);
    if (got <= 0) {
        if (got == 0)
            tl_fail(e, "%s: empty file (no header and no predictions)", r->name);
        tl_pred_close(r);
        return -1;
    }
    int rc;
    if (r->line[0] == '#') {
        if (r->lineno != 1 || !tl_pred_is_header(r->line))
            rc = tl_fail(e, "%s: line %lld: not a predictions header ('#path<TAB>true<TAB>pred<TAB>CLASS...')",
                         r->name, (long long)r->lineno);
        else
            rc = parse_header(r, e);
        r->has_header = 1;
    } else {
        rc = infer_classes(r, classes, nclasses, e);
        r->pending = 1;
    }
    if (rc) {
        tl_pred_close(r);
        return -1;
    }
    return 0;
}

/* A multi-label TRUE or PRED column into set; *count = the labels, or -1 for "-". */
static int parse_set(tl_pred_reader *r, char *s, const char *what, unsigned char *set, int *count, tl_err *e)
{
    memset(set, 0, (size_t)r->k);
    *count = -1;
    if (!strcmp(s, "-"))
        return 0;
    *count = 0;
    for (char *p = s; *p;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        int c = tl_strindex_find(&r->index, p);
        if (c < 0)
            return tl_fail(e, "%s: line %lld: %s label '%s' is not one of the %d classes of the header", r->name,
                           (long long)r->lineno, what, p, r->k);
        *count += !set[c];
        set[c] = 1;
        if (!comma)
            break;
        p = comma + 1;
        if (!*p)
            return tl_fail(e, "%s: line %lld: %s labels end with ','", r->name, (long long)r->lineno, what);
    }
    return 0;
}

/* s: the row's fields after the path. */
static int next_multilabel(tl_pred_reader *r, tl_pred_row *row, const char *path, char *s, tl_err *e)
{
    long long ln = (long long)r->lineno;
    if (parse_set(r, next_field(&s), "true", r->sets, &row->truth, e) ||
        parse_set(r, next_field(&s), "predicted", r->sets + r->k, &row->pred, e))
        return -1;
    for (int i = 0; i < r->k; i++) {
        const char *f = next_field(&s);
        char *end;
        double v = strtod(f, &end);
        if (end == f || *end || !isfinite(v))
            return tl_fail(e, "%s: line %lld: column %d ('%.40s') is not a finite number", r->name, ln, i + 4, f);
        if (r->probabilities && (v < 0 || v > 1))
            return tl_fail(e, "%s: line %lld: probability %s of class '%s' is outside [0, 1] (scores? then write '%s' "
                           "in the header)", r->name, ln, f, r->classes[i], TL_PRED_MULTILABEL_DECISION);
        r->scores[i] = (float)v;
    }
    row->path = path;
    row->scores = r->scores;
    row->line = r->lineno;
    row->truth_set = row->truth >= 0 ? r->sets : NULL;
    row->pred_set = row->pred >= 0 ? r->sets + r->k : NULL;
    return 1;
}

int tl_pred_next(tl_pred_reader *r, tl_pred_row *row, tl_err *e)
{
    memset(row, 0, sizeof *row);
    if (r->pending) {
        r->pending = 0;
    } else {
        int got = read_line(r, e);
        if (got <= 0)
            return got;
    }
    long long ln = (long long)r->lineno;
    int want = r->k + 3, n = count_fields(r->line);
    if (n != want)
        return tl_fail(e, "%s: line %lld: %d columns, expected %d (path, true, pred and %d class %s)", r->name, ln, n,
                       want, r->k, r->probabilities ? "probabilities" : "scores");
    char *s = r->line;
    const char *path = next_field(&s);
    if (r->multilabel)
        return next_multilabel(r, row, path, s, e);
    int cls[2];
    for (int c = 0; c < 2; c++) {
        const char *f = next_field(&s);
        cls[c] = -1;
        if (!*f || !strcmp(f, "-"))
            continue;
        if ((cls[c] = tl_strindex_find(&r->index, f)) < 0)
            return tl_fail(e, "%s: line %lld: %s class '%s' is not one of the %d classes%s", r->name, ln,
                           c ? "predicted" : "true", f, r->k, r->has_header ? " of the header" : "");
    }
    double sum = 0;
    for (int i = 0; i < r->k; i++) {
        const char *f = next_field(&s);
        char *end;
        double v = strtod(f, &end);
        if (end == f || *end || !isfinite(v))
            return tl_fail(e, "%s: line %lld: column %d ('%.40s') is not a finite number", r->name, ln, i + 4, f);
        if (r->probabilities && (v < 0 || v > 1 + TL_PRED_SUM_TOL))
            return tl_fail(e, "%s: line %lld: probability %s of class '%s' is outside [0, 1]", r->name, ln, f,
                           r->classes[i]);
        r->scores[i] = (float)v;
        sum += v;
    }
    if (r->probabilities && fabs(sum - 1) > TL_PRED_SUM_TOL)
        return tl_fail(e, "%s: line %lld: probabilities sum to %.6g, not 1 (decision values or logits? then write "
                       "'%s' in the header)", r->name, ln, sum, TL_PRED_DECISION);
    if (cls[1] < 0) {
        cls[1] = 0;
        for (int i = 1; i < r->k; i++)
            if (r->scores[i] > r->scores[cls[1]])
                cls[1] = i;
    }
    row->path = path;
    row->truth = cls[0];
    row->pred = cls[1];
    row->scores = r->scores;
    row->line = r->lineno;
    return 1;
}

void tl_pred_close(tl_pred_reader *r)
{
    if (!r)
        return;
    if (r->fp && r->owns_fp)
        fclose(r->fp);
    free(r->classes);
    free(r->names);
    free(r->sets);
    tl_free(r->scores);
    tl_strindex_free(&r->index);
    tl_lines_free(&r->lines);
    free(r->name);
    memset(r, 0, sizeof *r);
}

/* ---- writing ---- */


void tl_pred_writer_free(tl_pred_writer *w)
{
    if (!w)
        return;
    if (w->names)
        for (int i = 0; i < w->k; i++)
            free(w->names[i]);
    free(w->names);
    memset(w, 0, sizeof *w);
}

static int writer_init(tl_pred_writer *w, FILE *fp, const char *const *classes, int k, int probabilities,
                       int multilabel, tl_err *e);

int tl_pred_writer_init(tl_pred_writer *w, FILE *fp, const char *const *classes, int k, int probabilities,
                        tl_err *e)
{
    return writer_init(w, fp, classes, k, probabilities, 0, e);
}

int tl_pred_writer_init_multilabel(tl_pred_writer *w, FILE *fp, const char *const *classes, int k, int probabilities,
                                   tl_err *e)
{
    for (int i = 0; classes && i < k; i++)
        if (classes[i] && strchr(classes[i], ','))
            return tl_fail(e, "class '%s' holds ',', which separates the labels of a multi-label predictions file",
                           classes[i]);
    return writer_init(w, fp, classes, k, probabilities, 1, e);
}

static int writer_init(tl_pred_writer *w, FILE *fp, const char *const *classes, int k, int probabilities,
                       int multilabel, tl_err *e)
{
    memset(w, 0, sizeof *w);
    w->multilabel = multilabel;
    if (k < 1 || !classes)
        return tl_fail(e, "predictions need class names");
    w->names = calloc((size_t)k, sizeof *w->names);
    if (!w->names)
        return tl_fail(e, "out of memory for %d class names", k);
    w->fp = fp;
    w->k = k;
    for (int i = 0; i < k; i++) {
        if (!classes[i] || !*classes[i] || !strcmp(classes[i], "-")) {
            tl_pred_writer_free(w);
            return tl_fail(e, "class %d has no usable name for a predictions header", i);
        }
        if (tl_tsv_check(classes[i], "class name", 0, e)) {
            tl_pred_writer_free(w);
            return -1;
        }
    }
    /* A name repeating an earlier one gets its index; then every name must
     * differ. Both checks go through sorted indexes: O(K log K). */
    tl_strindex ix;
    int dup[2];
    if (tl_strindex_build_strings(&ix, classes, k, NULL, e) < 0) {
        tl_pred_writer_free(w);
        return -1;
    }
    for (int i = 0; i < k; i++) {
        int repeat = tl_strindex_find(&ix, classes[i]) != i;
        size_t n = strlen(classes[i]) + 16;
        if (!(w->names[i] = malloc(n))) {
            tl_strindex_free(&ix);
            tl_pred_writer_free(w);
            return tl_fail(e, "out of memory");
        }
        snprintf(w->names[i], n, repeat ? "%s (%d)" : "%s", classes[i], i);
    }
    tl_strindex_free(&ix);
    int d = tl_strindex_build_strings(&ix, (const char *const *)w->names, k, dup, e);
    tl_strindex_free(&ix);
    if (d) {
        if (d > 0)
            tl_fail(e, "class names '%s' collide even with indices added", w->names[dup[1]]);
        tl_pred_writer_free(w);
        return -1;
    }
    if (w->multilabel)
        fputs(probabilities ? "#path\ttrue\t" TL_PRED_MULTILABEL : "#path\ttrue\t" TL_PRED_MULTILABEL_DECISION, fp);
    else
        fputs(probabilities ? "#path\ttrue\tpred" : "#path\ttrue\t" TL_PRED_DECISION, fp);
    for (int i = 0; i < k; i++) {
        fputc('\t', fp);
        fputs(w->names[i], fp);
    }
    fputc('\n', fp);
    return ferror(fp) ? tl_fail(e, "write failed") : 0;
}

int tl_pred_write(tl_pred_writer *w, const char *path, int truth, int pred, const float *scores, tl_err *e)
{
    if (tl_tsv_check(path, "path", 1, e))
        return -1;
    if (truth >= w->k || pred < 0 || pred >= w->k)
        return tl_fail(e, "class index out of range (%d, %d of %d)", truth, pred, w->k);
    fprintf(w->fp, "%s\t%s\t%s", path, truth >= 0 ? w->names[truth] : "-", w->names[pred]);
    for (int i = 0; i < w->k; i++)
        fprintf(w->fp, "\t%.9g", (double)scores[i]);
    fputc('\n', w->fp);
    return ferror(w->fp) ? tl_fail(e, "write failed") : 0;
}

static void put_set(FILE *fp, char *const *names, int k, const unsigned char *set)
{
    int first = 1;
    for (int i = 0; i < k; i++)
        if (set[i]) {
            fprintf(fp, "%s%s", first ? "" : ",", names[i]);
            first = 0;
        }
}

int tl_pred_write_sets(tl_pred_writer *w, const char *path, const unsigned char *truth, const unsigned char *pred,
                       const float *scores, tl_err *e)
{
    if (tl_tsv_check(path, "path", 1, e))
        return -1;
    fprintf(w->fp, "%s\t", path);
    if (truth)
        put_set(w->fp, w->names, w->k, truth);
    else
        fputc('-', w->fp);
    fputc('\t', w->fp);
    put_set(w->fp, w->names, w->k, pred);
    for (int i = 0; i < w->k; i++)
        fprintf(w->fp, "\t%.9g", (double)scores[i]);
    fputc('\n', w->fp);
    return ferror(w->fp) ? tl_fail(e, "write failed") : 0;
}
