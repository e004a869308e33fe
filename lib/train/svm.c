/* One-vs-rest linear SVM: L2-regularised squared hinge loss solved in the
 * dual by coordinate descent (Hsieh et al. 2008; liblinear's
 * L2R_L2LOSS_SVC_DUAL, the default solver), with liblinear's shrinking.
 *
 * Per class c:  min_w 0.5 ||w||^2 + C sum_i max(0, 1 - y_i w.x_i)^2,
 * y_i = +1 for class c and -1 otherwise. The intercept follows liblinear:
 * an appended constant feature 1 whose weight is b, so b is regularised
 * like the rest of w (lightly: it is one coordinate among d+1).
 * Two classes train a single classifier (class 1 positive), as liblinear
 * does; class 0 gets the negated decision value.
 *
 * Class weights follow liblinear's -wi: in class c's problem the positives
 * get C * w_c and the negatives C (two classes: C * w_1 and C * w_0).
 * Multi-label data train one problem per class, positives being the
 * samples with the label, C * pos_weight[c] and C * neg_weight[c].
 *
 * Classes are independent problems run in parallel; each visits samples in
 * an order drawn from its own fixed-seed stream, so results do not depend
 * on the thread count. */
#include "linear_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SVM_SEED 0x5356u /* fixed: the visiting order is part of the result */
#define SVM_BIAS 1.0     /* value of the appended constant feature */

typedef struct {
    const float *X;
    const int *y;
    const unsigned char *Y;  /* multi-label: n x k */
    const double *cw, *pw, *nw; /* class weights; multi-label positive / negative weights (NULL: 1) */
    int64_t n;
    int d, k, fit_intercept, max_iter;
    double C, eps;
    const double *QD; /* n: x_i.x_i + bias^2 (the diagonal term is added per solve) */
    double *w;        /* problems x (d+1): weights then bias weight */
    int *iters;       /* passes used per problem */
    double *alpha;    /* workers x n */
    int64_t *index;   /* workers x n */
} svm_work;

static void qd_rows(void *vctx, int64_t b, int64_t end, int worker)
{
    (void)worker;
    svm_work *c = vctx;
    double *QD = (double *)c->QD;
    for (int64_t i = b; i < end; i++) {
        const float *x = c->X + i * c->d;
        double s = 0;
        for (int j = 0; j < c->d; j++)
            s += (double)x[j] * x[j];
        QD[i] = s + (c->fit_intercept ? SVM_BIAS * SVM_BIAS : 0.0);
    }
}

/* Sample i in problem p: its side (+1/-1) and the C it weighs with. */
static double side(const svm_work *c, int p, int64_t i, double *Ci)
{
    if (c->Y) {
        int t = c->Y[(size_t)i * c->k + p];
        *Ci = c->C * (t ? (c->pw ? c->pw[p] : 1.0) : (c->nw ? c->nw[p] : 1.0));
        return t ? 1.0 : -1.0;
    }
    int pos = c->k == 2 ? 1 : p, t = c->y[i] == pos;
    double w = !c->cw ? 1.0 : t ? c->cw[pos] : c->k == 2 ? c->cw[0] : 1.0;
    *Ci = c->C * w;
    return t ? 1.0 : -1.0;
}

static void solve_one(svm_work *c, int p, int worker)
{
    int64_t n = c->n;
    int d = c->d;
    double *w = c->w + (size_t)p * (d + 1);
    double *alpha = c->alpha + (size_t)worker * n;
    int64_t *index = c->index + (size_t)worker * n;
    double bias = c->fit_intercept ? SVM_BIAS : 0.0;
    tl_rng rng;
    tl_rng_seed_stream(&rng, SVM_SEED, (uint64_t)p);
    memset(w, 0, (size_t)(d + 1) * sizeof *w);
    for (int64_t i = 0; i < n; i++) {
        alpha[i] = 0;
        index[i] = i;
    }
    int64_t active = n;
    double pgmax_old = INFINITY;
    int iter = 0;
    while (iter < c->max_iter) {
        double pgmax = -INFINITY, pgmin = INFINITY;
        for (int64_t s = 0; s < active; s++) {
            int64_t j = s + (int64_t)tl_rng_below(&rng, (uint64_t)(active - s));
            int64_t t = index[s];
            index[s] = index[j];
            index[j] = t;
        }
        for (int64_t s = 0; s < active; s++) {
            int64_t i = index[s];
            const float *x = c->X + i * d;
            double Ci, yi = side(c, p, i, &Ci);
            if (!(Ci > 0))
                continue; /* weight 0: the sample does not count (its alpha stays 0) */
            double diag = 0.5 / Ci; /* squared hinge: the dual gains 1/(2C_i) on the diagonal, no upper bound */
            double G = yi * (tl_dot_fd(x, w, d) + w[d] * bias) - 1.0 + alpha[i] * diag;
            double PG = 0;
            if (alpha[i] == 0) {
                if (G > pgmax_old) { /* at the bound and likely to stay there: shrink */
                    active--;
                    index[s] = index[active];
                    index[active] = i;
                    s--;
                    continue;
                }
                if (G < 0)
                    PG = G;
            } else {
                PG = G;
            }
            pgmax = PG > pgmax ? PG : pgmax;
            pgmin = PG < pgmin ? PG : pgmin;
            if (fabs(PG) > 1e-12) {
                double old = alpha[i];
                double a = old - G / (c->QD[i] + diag);
                alpha[i] = a > 0 ? a : 0;
                double delta = (alpha[i] - old) * yi;
                for (int jj = 0; jj < d; jj++)
                    w[jj] += delta * x[jj];
                w[d] += delta * bias;
            }
        }
        iter++;
        if (pgmax - pgmin <= c->eps || active == 0) {
            if (active == n)
                break;
            /* Converged on the active set: check again on everything. */
            active = n;
            pgmax_old = INFINITY;
            continue;
        }
        pgmax_old = pgmax <= 0 ? INFINITY : pgmax;
    }
    c->iters[p] = iter;
}

static void solve_range(void *vctx, int64_t b, int64_t end, int worker)
{
    for (int64_t p = b; p < end; p++)
        solve_one(vctx, (int)p, worker);
}

int tl_svm_fit(const tl_linear_problem *pb, const tl_linear_opts *o, tl_pool *pool, tl_log_fn log, void *log_user,
               double *W, double *b, tl_err *e)
{
    int64_t n = pb->n;
    int d = pb->d, k = pb->k, multi = pb->Y != NULL;
    if (n < 1 || d < 1 || k < (multi ? 1 : 2))
        return tl_fail(e, "svm: bad problem size (n %lld, d %d, k %d)", (long long)n, d, k);
    if (!(o->C > 0) || !isfinite(o->C))
        return tl_fail(e, "svm: C must be positive and finite (got %g)", o->C);
    int nprob = k == 2 && !multi ? 1 : k;
    int workers = tl_pool_size(pool);
    svm_work c = {.X = pb->Xs, .y = pb->y, .Y = pb->Y, .cw = pb->class_w, .pw = pb->pos_w, .nw = pb->neg_w,
                  .n = n, .d = d, .k = k, .fit_intercept = o->fit_intercept,
                  .max_iter = o->max_iter, .C = o->C, .eps = o->tol > 0 ? o->tol : 0.1};
    double *QD = tl_alloc_array((size_t)n, sizeof(double));
    c.w = tl_alloc_array((size_t)nprob * (d + 1), sizeof(double));
    c.iters = tl_alloc_array((size_t)nprob, sizeof(int));
    c.alpha = tl_alloc_array((size_t)workers * n, sizeof(double));
    c.index = tl_alloc_array((size_t)workers * n, sizeof(int64_t));
    int rc = 0;
    if (!QD || !c.w || !c.iters || !c.alpha || !c.index) {
        rc = tl_fail(e, "svm: out of memory (%lld samples, %d workers)", (long long)n, workers);
        goto out;
    }
    c.QD = QD;
    tl_parallel_for(pool, n, 256, qd_rows, &c);
    tl_parallel_for(pool, nprob, 1, solve_range, &c);
    if (nprob == 1 && !multi) {
        for (int j = 0; j < d; j++) {
            W[d + j] = c.w[j];
            W[j] = -c.w[j];
        }
        b[1] = c.w[d] * (o->fit_intercept ? SVM_BIAS : 0.0);
        b[0] = -b[1];
    } else {
        for (int p = 0; p < k; p++) {
            memcpy(W + (size_t)p * d, c.w + (size_t)p * (d + 1), (size_t)d * sizeof *W);
            b[p] = c.w[(size_t)p * (d + 1) + d] * (o->fit_intercept ? SVM_BIAS : 0.0);
        }
    }
    if (log) {
        int worst = 0;
        for (int p = 0; p < nprob; p++)
            worst = c.iters[p] > c.iters[worst] ? p : worst;
        char line[160];
        snprintf(line, sizeof line, "svm: %d one-vs-rest problem%s, at most %d passes (class %d)%s", nprob,
                 nprob == 1 ? "" : "s", c.iters[worst], nprob == 1 ? 1 : worst,
                 c.iters[worst] >= o->max_iter ? "; iteration limit reached, consider a larger max_iter or tol" : "");
        log(log_user, line);
    }
out:
    tl_free(QD);
    tl_free(c.w);
    tl_free(c.iters);
    tl_free(c.alpha);
    tl_free(c.index);
    return rc;
}
