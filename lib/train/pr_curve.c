#include "pr_curve.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    float s;
    int64_t i; /* original index: ties broken by it, so the order is total */
} ranked;

static int by_score_desc(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* The samples by score, highest first (NaN scores count as lowest). */
static ranked *rank(const float *scores, int sstride, int64_t n, tl_err *e)
{
    ranked *r = malloc(((size_t)n + 1) * sizeof *r);
    if (!r) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        float s = scores[i * sstride];
        r[i].s = isnan(s) ? -INFINITY : s;
        r[i].i = i;
    }
    qsort(r, (size_t)n, sizeof *r, by_score_desc);
    return r;
}

/* Walks the groups of equal scores: calls fn after each with the counts so far. */
typedef void (*group_fn)(void *u, float s, float next, int64_t tp, int64_t fp, int64_t npos);

static int64_t walk(const ranked *r, const unsigned char *truth, int tstride, int64_t n, int64_t npos, group_fn fn,
                    void *u)
{
    int64_t tp = 0, fp = 0, groups = 0;
    for (int64_t j = 0; j < n;) {
        float s = r[j].s;
        for (; j < n && r[j].s == s; j++) {
            if (truth[r[j].i * tstride])
                tp++;
            else
                fp++;
        }
        fn(u, s, j < n ? r[j].s : NAN, tp, fp, npos);
        groups++;
    }
    return groups;
}

typedef struct {
    double ap, prev_recall, best_f1, threshold;
} summary_acc;

static void summary_step(void *u, float s, float next, int64_t tp, int64_t fp, int64_t npos)
{
    summary_acc *a = u;
    double p = (double)tp / (double)(tp + fp), rc = (double)tp / (double)npos;
    a->ap += (rc - a->prev_recall) * p;
    a->prev_recall = rc;
    double f1 = 2.0 * (double)tp / (double)(2 * tp + fp + (npos - tp));
    if (f1 > a->best_f1) { /* strictly better: a tie keeps the higher threshold seen first */
        a->best_f1 = f1;
        a->threshold = isnan(next) ? (double)s : 0.5 * ((double)s + (double)next);
    }
}

int tl_pr_summarise(const float *scores, int sstride, const unsigned char *truth, int tstride, int64_t n,
                    tl_pr_summary *out, tl_err *e)
{
    out->n = n;
    out->npos = 0;
    for (int64_t i = 0; i < n; i++)
        out->npos += truth[i * tstride] != 0;
    out->ap = out->threshold = out->best_f1 = NAN;
    if (!out->npos)
        return 0;
    ranked *r = rank(scores, sstride, n, e);
    if (!r)
        return -1;
    summary_acc a = {0, 0, -1, NAN};
    walk(r, truth, tstride, n, out->npos, summary_step, &a);
    free(r);
    out->ap = a.ap;
    out->best_f1 = a.best_f1;
    out->threshold = a.threshold;
    return 0;
}

typedef struct {
    float *p, *r;
    int64_t k;
} curve_acc;

static void curve_step(void *u, float s, float next, int64_t tp, int64_t fp, int64_t npos)
{
    (void)s, (void)next;
    curve_acc *a = u;
    a->p[a->k] = (float)((double)tp / (double)(tp + fp));
    a->r[a->k] = npos ? (float)((double)tp / (double)npos) : 0.0f;
    a->k++;
}

int tl_pr_curve(const float *scores, int sstride, const unsigned char *truth, int tstride, int64_t n,
                float **precision, float **recall, int64_t *npts, tl_err *e)
{
    *precision = *recall = NULL;
    *npts = 0;
    int64_t npos = 0;
    for (int64_t i = 0; i < n; i++)
        npos += truth[i * tstride] != 0;
    ranked *r = rank(scores, sstride, n, e);
    if (!r)
        return -1;
    curve_acc a = {malloc(((size_t)n + 1) * sizeof(float)), malloc(((size_t)n + 1) * sizeof(float)), 0};
    if (!a.p || !a.r) {
        free(a.p), free(a.r), free(r);
        return tl_fail(e, "out of memory");
    }
    walk(r, truth, tstride, n, npos, curve_step, &a);
    free(r);
    *precision = a.p;
    *recall = a.r;
    *npts = a.k;
    return 0;
}
