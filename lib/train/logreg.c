/* Multinomial logistic regression with L2 penalty, minimised by L-BFGS.
 *
 * Objective (scikit-learn's LogisticRegression(multi_class='multinomial'),
 * divided by C*n so tolerances do not depend on the data size):
 *   f(W, b) = (1/n) sum_i s_i [logsumexp(W x_i + b) - (W x_i + b)_{y_i}] + ||W||^2 / (2 C n)
 * Gradient: dW = (1/n) R^T X + W / (C n), db = (1/n) sum_i R_i, with the
 * residual R_i = s_i (softmax(W x_i + b) - onehot(y_i)); s_i is the
 * sample's weight (its class's, class_weight), 1 without weights.
 *
 * Multi-label (one-vs-rest, Y given): k independent binary logistic
 * regressions, scikit-learn's OneVsRestClassifier(LogisticRegression), as
 * one objective, their sum:
 *   f(W, b) = (1/n) sum_i sum_c a_ic softplus(-(2Y_ic - 1)(W x_i + b)_c) + ||W||^2 / (2 C n)
 * with a_ic = pos_weight[c] where Y_ic = 1 and neg_weight[c] where 0, and
 * residual R_ic = a_ic (sigmoid((W x_i + b)_c) - Y_ic). The problems share
 * nothing, so their joint minimum is each one's own.
 *
 * Samples are processed in blocks of fixed size. Per block, residuals are
 * computed in parallel over samples, then R^T X is accumulated in parallel
 * over tiles of feature columns, each thread owning its tile of the
 * gradient and adding samples in order. Nothing depends on the thread
 * count, so the result is bit-identical for any pool. */
#include "lbfgs.h"
#include "linear_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define LR_BLOCK 1024 /* samples per block: bounds the residual buffer to LR_BLOCK x k */

typedef struct {
    const float *X;
    const int *y;
    const unsigned char *Y;  /* multi-label targets, n x k (sigmoid mode) */
    const double *sw;        /* softmax: n sample weights, or NULL */
    const double *pw, *nw;   /* sigmoid: k positive / negative weights, or NULL */
    int64_t n;
    int d, k, fit_intercept, tile;
    double C;
    tl_pool *pool;
    double *R;    /* LR_BLOCK x k residuals */
    double *loss; /* LR_BLOCK per-sample losses */
    /* the evaluation in progress */
    const double *w;
    double *g;
    int64_t i0, nb;
} lr_work;

static void residual_rows(void *vctx, int64_t b, int64_t end, int worker)
{
    (void)worker;
    lr_work *c = vctx;
    int d = c->d, k = c->k;
    const double *W = c->w, *bias = c->fit_intercept ? c->w + (size_t)k * d : NULL;
    for (int64_t i = b; i < end; i++) {
        const float *x = c->X + (c->i0 + i) * d;
        double *r = c->R + i * k;
        if (c->Y) {
            const unsigned char *t = c->Y + (size_t)(c->i0 + i) * k;
            double l = 0;
            for (int j = 0; j < k; j++) {
                double z = tl_dot_fd(x, W + (size_t)j * d, d) + (bias ? bias[j] : 0.0);
                double a = t[j] ? (c->pw ? c->pw[j] : 1.0) : (c->nw ? c->nw[j] : 1.0);
                double m = t[j] ? -z : z; /* the loss is softplus(m) */
                l += a * ((m > 0 ? m : 0) + log1p(exp(-fabs(m))));
                double sg = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
                r[j] = a * (sg - (t[j] ? 1.0 : 0.0));
            }
            c->loss[i] = l;
            continue;
        }
        double mx = -INFINITY;
        for (int j = 0; j < k; j++) {
            r[j] = tl_dot_fd(x, W + (size_t)j * d, d) + (bias ? bias[j] : 0.0);
            if (r[j] > mx)
                mx = r[j];
        }
        double se = 0;
        for (int j = 0; j < k; j++)
            se += exp(r[j] - mx);
        double lse = mx + log(se);
        int yi = c->y[c->i0 + i];
        c->loss[i] = lse - r[yi];
        for (int j = 0; j < k; j++)
            r[j] = exp(r[j] - lse);
        r[yi] -= 1.0;
        if (c->sw) {
            double s = c->sw[c->i0 + i];
            c->loss[i] *= s;
            for (int j = 0; j < k; j++)
                r[j] *= s;
        }
    }
}

static void grad_tiles(void *vctx, int64_t b, int64_t end, int worker)
{
    (void)worker;
    lr_work *c = vctx;
    int d = c->d, k = c->k;
    for (int64_t t = b; t < end; t++) {
        int j0 = (int)t * c->tile, j1 = j0 + c->tile < d ? j0 + c->tile : d;
        for (int64_t i = 0; i < c->nb; i++) {
            const float *x = c->X + (c->i0 + i) * d;
            const double *r = c->R + i * k;
            for (int cl = 0; cl < k; cl++) {
                double rc = r[cl];
                double *gc = c->g + (size_t)cl * d;
                for (int j = j0; j < j1; j++)
                    gc[j] += rc * x[j];
            }
        }
    }
}

static double lr_eval(void *vctx, const double *w, double *g)
{
    lr_work *c = vctx;
    int d = c->d, k = c->k;
    size_t nw = (size_t)k * d, nv = nw + (c->fit_intercept ? (size_t)k : 0);
    memset(g, 0, nv * sizeof *g);
    c->w = w;
    c->g = g;
    int64_t ntiles = (d + c->tile - 1) / c->tile;
    double loss = 0;
    double *gb = c->fit_intercept ? g + nw : NULL;
    for (int64_t i0 = 0; i0 < c->n; i0 += LR_BLOCK) {
        c->i0 = i0;
        c->nb = c->n - i0 < LR_BLOCK ? c->n - i0 : LR_BLOCK;
        tl_parallel_for(c->pool, c->nb, 16, residual_rows, c);
        tl_parallel_for(c->pool, ntiles, 1, grad_tiles, c);
        for (int64_t i = 0; i < c->nb; i++) {
            loss += c->loss[i];
            if (gb)
                for (int j = 0; j < k; j++)
                    gb[j] += c->R[i * k + j];
        }
    }
    double inv_n = 1.0 / (double)c->n, lam = 1.0 / (c->C * (double)c->n);
    double ww = 0;
    for (size_t i = 0; i < nw; i++) {
        ww += w[i] * w[i];
        g[i] = g[i] * inv_n + lam * w[i];
    }
    for (size_t i = nw; i < nv; i++)
        g[i] *= inv_n;
    return loss * inv_n + 0.5 * lam * ww;
}

static int lr_setup(lr_work *c, const float *X, const int *y, const unsigned char *Y, int64_t n, int d, int k,
                    double C, int fit_intercept, tl_pool *pool, tl_err *e)
{
    memset(c, 0, sizeof *c);
    if (n < 1 || d < 1 || k < (Y ? 1 : 2))
        return tl_fail(e, "logreg: bad problem size (n %lld, d %d, k %d)", (long long)n, d, k);
    if (!(C > 0) || !isfinite(C))
        return tl_fail(e, "logreg: C must be positive and finite (got %g)", C);
    for (int64_t i = 0; !Y && i < n; i++)
        if (y[i] < 0 || y[i] >= k)
            return tl_fail(e, "logreg: label y[%lld] = %d out of range [0, %d)", (long long)i, y[i], k);
    *c = (lr_work){.X = X, .y = y, .Y = Y, .n = n, .d = d, .k = k, .fit_intercept = fit_intercept, .C = C,
                   .pool = pool};
    /* Keep a tile of the gradient (k x tile doubles) within L1/L2 reach. */
    c->tile = k <= 32 ? 64 : k <= 128 ? 32 : 16;
    int64_t bl = n < LR_BLOCK ? n : LR_BLOCK;
    c->R = tl_alloc_array((size_t)bl * ((size_t)k + 1), sizeof(double));
    if (!c->R)
        return tl_fail(e, "logreg: out of memory (%lld x %d residuals)", (long long)bl, k);
    c->loss = c->R + (size_t)bl * k;
    return 0;
}

int tl_logreg_objective(const float *X, const int *y, int64_t n, int d, int k, double C, int fit_intercept,
                        const double *w, double *f, double *grad, tl_pool *pool, tl_err *e)
{
    lr_work c;
    if (lr_setup(&c, X, y, NULL, n, d, k, C, fit_intercept, pool, e) < 0)
        return -1;
    size_t nv = (size_t)k * d + (fit_intercept ? (size_t)k : 0);
    double *g = grad ? grad : tl_alloc_array(nv, sizeof(double));
    if (!g) {
        tl_free(c.R);
        return tl_fail(e, "logreg: out of memory");
    }
    double v = lr_eval(&c, w, g);
    if (f)
        *f = v;
    if (!grad)
        tl_free(g);
    tl_free(c.R);
    return 0;
}

typedef struct {
    tl_log_fn log;
    void *user;
} lr_progress;

static void lr_progress_line(void *vp, int iter, double f, double gn)
{
    lr_progress *p = vp;
    if (!p->log || (iter != 1 && iter % 10 != 0))
        return;
    char line[128];
    snprintf(line, sizeof line, "logreg: iter %d loss %.6g |g| %.3g", iter, f, gn);
    p->log(p->user, line);
}

int tl_logreg_fit(const tl_linear_problem *pb, const tl_linear_opts *o, tl_pool *pool, tl_log_fn log,
                  void *log_user, double *W, double *b, tl_err *e)
{
    lr_work c;
    const float *Xs = pb->Xs;
    int64_t n = pb->n;
    int d = pb->d, k = pb->k;
    if (lr_setup(&c, Xs, pb->y, pb->Y, n, d, k, o->C, o->fit_intercept, pool, e) < 0)
        return -1;
    c.sw = pb->sample_w;
    c.pw = pb->pos_w;
    c.nw = pb->neg_w;
    size_t nw = (size_t)k * d, nv = nw + (o->fit_intercept ? (size_t)k : 0);
    double *w = tl_alloc_array(nv, sizeof(double)); /* zeros: uniform probabilities */
    if (!w) {
        tl_free(c.R);
        return tl_fail(e, "logreg: out of memory for %zu weights", nv);
    }
    tl_lbfgs_opts lo;
    tl_lbfgs_opts_default(&lo);
    lo.max_iter = o->max_iter;
    if (o->tol > 0)
        lo.gtol = o->tol;
    lr_progress prog = {log, log_user};
    tl_lbfgs_result res;
    int rc = tl_lbfgs_minimize((int64_t)nv, w, lr_eval, &c, &lo, lr_progress_line, &prog, &res, e);
    if (rc == 0) {
        memcpy(W, w, nw * sizeof *W);
        for (int j = 0; j < k; j++)
            b[j] = o->fit_intercept ? w[nw + j] : 0.0;
        if (log) {
            char line[160];
            snprintf(line, sizeof line, "logreg: stopped after %d iterations (%s), loss %.6g |g| %.3g",
                     res.iters, tl_lbfgs_status_name(res.status), res.f, res.gnorm_inf);
            log(log_user, line);
        }
    } else {
        tl_fail_prefix(e, "logreg");
    }
    tl_free(w);
    tl_free(c.R);
    return rc;
}
