/* L-BFGS (Nocedal & Wright, algorithm 7.5) with the two-loop recursion and
 * a strong-Wolfe line search (algorithms 3.5/3.6). Everything runs in the
 * calling thread in a fixed order, so the result is deterministic given a
 * deterministic objective. */
#include "lbfgs.h"

#include <math.h>
#include <string.h>

/* Armijo and curvature constants: the usual pair for quasi-Newton methods. */
#define LS_C1 1e-4
#define LS_C2 0.9

void tl_lbfgs_opts_default(tl_lbfgs_opts *o)
{
    o->m = 10;
    o->max_iter = 1000;
    o->max_ls = 25;
    o->gtol = 1e-5;
    o->ftol = 1e-12;
}

const char *tl_lbfgs_status_name(int status)
{
    switch (status) {
    case TL_LBFGS_GTOL: return "gradient below tolerance";
    case TL_LBFGS_FTOL: return "objective change below tolerance";
    case TL_LBFGS_MAX_ITER: return "iteration limit reached";
    case TL_LBFGS_LS_FAIL: return "line search found no decrease";
    }
    return "unknown";
}

typedef struct {
    int64_t n;
    tl_lbfgs_eval_fn fn;
    void *ctx;
    int max_ls;
    const double *x, *d; /* current point and search direction */
    double *xt, *gt;     /* trial point and its gradient */
    double *gb;          /* gradient at the best acceptable step so far */
    int evals;
} searcher;

static double dot(const double *a, const double *b, int64_t n)
{
    /* Four fixed lanes: more instruction-level parallelism, same order every run. */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static double norm_inf(const double *a, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(a[i]) > m)
            m = fabs(a[i]);
    return m;
}

static double eval_step(searcher *s, double a, double *dg)
{
    for (int64_t i = 0; i < s->n; i++)
        s->xt[i] = s->x[i] + a * s->d[i];
    double f = s->fn(s->ctx, s->xt, s->gt);
    s->evals++;
    *dg = dot(s->gt, s->d, s->n);
    return f;
}

/* Minimiser of the cubic through (a1, f1, g1) and (a2, f2, g2), clamped to
 * [lo, hi]; the midpoint when the cubic has no minimiser or data is bad. */
static double cubic_min(double a1, double f1, double g1, double a2, double f2, double g2, double lo, double hi)
{
    double d1 = g1 + g2 - 3 * (f1 - f2) / (a1 - a2);
    double d2sq = d1 * d1 - g1 * g2;
    double t = 0.5 * (lo + hi);
    if (isfinite(d1) && isfinite(d2sq) && d2sq >= 0) {
        double d2 = sqrt(d2sq);
        if (a2 < a1)
            d2 = -d2;
        double den = g2 - g1 + 2 * d2;
        if (den != 0) {
            double c = a2 - (a2 - a1) * (g2 + d2 - d1) / den;
            if (isfinite(c))
                t = c;
        }
    }
    return t < lo ? lo : t > hi ? hi : t;
}

typedef struct {
    double a, f, dg;
} point;

/* Returns 0 with the accepted step in *acc (gradient in s->gb), or -1 when
 * no step decreased f. */
static int zoom(searcher *s, double f0, double dg0, point lo, point hi, point *acc)
{
    while (s->evals < s->max_ls) {
        double w = fabs(hi.a - lo.a);
        if (w <= 1e-16 * fmax(lo.a, hi.a))
            break;
        double a;
        double mn = fmin(lo.a, hi.a), mx = fmax(lo.a, hi.a);
        if (isfinite(hi.f))
            a = cubic_min(lo.a, lo.f, lo.dg, hi.a, hi.f, hi.dg, mn, mx);
        else
            a = 0.5 * (mn + mx);
        /* Insist on progress: a step hugging an end of the interval bisects instead. */
        if (a < mn + 0.1 * w || a > mx - 0.1 * w)
            a = 0.5 * (mn + mx);
        double dg;
        double f = eval_step(s, a, &dg);
        if (!isfinite(f) || f > f0 + LS_C1 * a * dg0 || f >= lo.f) {
            hi = (point){a, f, dg};
        } else {
            if (fabs(dg) <= -LS_C2 * dg0) {
                memcpy(s->gb, s->gt, (size_t)s->n * sizeof *s->gb);
                *acc = (point){a, f, dg};
                return 0;
            }
            if (dg * (hi.a - lo.a) >= 0)
                hi = lo;
            lo = (point){a, f, dg};
            memcpy(s->gb, s->gt, (size_t)s->n * sizeof *s->gb);
        }
    }
    /* Out of budget: a step with sufficient decrease is still progress. */
    if (lo.a > 0) {
        *acc = lo;
        return 0;
    }
    return -1;
}

static int line_search(searcher *s, double f0, double dg0, double a, point *acc)
{
    point prev = {0, f0, dg0};
    for (int it = 0; s->evals < s->max_ls; it++) {
        double dg;
        double f = eval_step(s, a, &dg);
        point cur = {a, f, dg};
        if (!isfinite(f) || f > f0 + LS_C1 * a * dg0 || (it > 0 && f >= prev.f))
            return zoom(s, f0, dg0, prev, cur, acc);
        memcpy(s->gb, s->gt, (size_t)s->n * sizeof *s->gb);
        if (fabs(dg) <= -LS_C2 * dg0) {
            *acc = cur;
            return 0;
        }
        if (dg >= 0)
            return zoom(s, f0, dg0, cur, prev, acc);
        double na = cubic_min(prev.a, prev.f, prev.dg, a, f, dg, a + 0.01 * (a - prev.a), 10 * a);
        prev = cur;
        a = na;
    }
    if (prev.a > 0) {
        *acc = prev;
        return 0;
    }
    return -1;
}

int tl_lbfgs_minimize(int64_t n, double *x, tl_lbfgs_eval_fn fn, void *ctx, const tl_lbfgs_opts *o,
                      tl_lbfgs_progress_fn progress, void *progress_user, tl_lbfgs_result *res, tl_err *e)
{
    tl_lbfgs_opts def;
    if (!o) {
        tl_lbfgs_opts_default(&def);
        o = &def;
    }
    if (n <= 0)
        return tl_fail(e, "lbfgs: no variables");
    if (o->m < 1 || o->max_iter < 0 || o->max_ls < 1 || !(o->gtol >= 0) || !(o->ftol >= 0))
        return tl_fail(e, "lbfgs: invalid options");
    int m = o->m;
    size_t nn = (size_t)n;
    double *buf = tl_alloc_array(nn * (5 + 2 * (size_t)m) + 2 * (size_t)m, sizeof(double));
    if (!buf)
        return tl_fail(e, "out of memory for lbfgs (%lld variables)", (long long)n);
    double *g = buf, *d = g + nn, *xt = d + nn, *gt = xt + nn, *gb = gt + nn;
    double *S = gb + nn, *Y = S + nn * m, *rho = Y + nn * m, *alpha = rho + m;

    searcher s = {n, fn, ctx, o->max_ls, x, d, xt, gt, gb, 0};
    double f = fn(ctx, x, g);
    int evals = 1;
    double gn = norm_inf(g, n);
    int status = TL_LBFGS_MAX_ITER, iter = 0;
    int hist = 0, head = 0; /* pairs stored, slot of the next pair */
    int retried = 0;
    if (!isfinite(f)) {
        tl_free(buf);
        return tl_fail(e, "lbfgs: objective is not finite at the starting point");
    }
    if (gn <= o->gtol)
        status = TL_LBFGS_GTOL;
    while (status == TL_LBFGS_MAX_ITER && iter < o->max_iter) {
        for (int64_t i = 0; i < n; i++)
            d[i] = -g[i];
        int newest = (head - 1 + m) % m;
        for (int j = 0; j < hist; j++) {
            int slot = (newest - j + m) % m;
            alpha[slot] = rho[slot] * dot(S + (size_t)slot * nn, d, n);
            const double *y = Y + (size_t)slot * nn;
            for (int64_t i = 0; i < n; i++)
                d[i] -= alpha[slot] * y[i];
        }
        if (hist > 0) {
            const double *sn = S + (size_t)newest * nn, *yn = Y + (size_t)newest * nn;
            double gamma = dot(sn, yn, n) / dot(yn, yn, n);
            for (int64_t i = 0; i < n; i++)
                d[i] *= gamma;
        }
        for (int j = hist - 1; j >= 0; j--) {
            int slot = (newest - j + m) % m;
            double beta = rho[slot] * dot(Y + (size_t)slot * nn, d, n);
            const double *sv = S + (size_t)slot * nn;
            for (int64_t i = 0; i < n; i++)
                d[i] += (alpha[slot] - beta) * sv[i];
        }
        double dg = dot(g, d, n);
        if (!(dg < 0)) { /* lost descent (rounding): start the model afresh */
            hist = head = 0;
            for (int64_t i = 0; i < n; i++)
                d[i] = -g[i];
            dg = dot(g, d, n);
        }
        double a0 = 1.0;
        if (hist == 0) { /* no curvature yet: a cautious first step */
            double g1 = 0;
            for (int64_t i = 0; i < n; i++)
                g1 += fabs(g[i]);
            a0 = fmin(1.0, 1.0 / g1);
        }
        point acc;
        s.evals = 0;
        int rc = line_search(&s, f, dg, a0, &acc);
        evals += s.evals;
        if (rc < 0) {
            if (hist > 0 && !retried) {
                hist = head = 0;
                retried = 1;
                continue;
            }
            status = TL_LBFGS_LS_FAIL;
            break;
        }
        retried = 0;
        iter++;
        double *sv = S + (size_t)head * nn, *yv = Y + (size_t)head * nn;
        for (int64_t i = 0; i < n; i++) {
            double xi = x[i] + acc.a * d[i];
            sv[i] = xi - x[i];
            x[i] = xi;
            yv[i] = gb[i] - g[i];
            g[i] = gb[i];
        }
        double sy = dot(sv, yv, n), yy = dot(yv, yv, n);
        if (sy > 1e-10 * yy && yy > 0) { /* keep only pairs with positive curvature */
            rho[head] = 1.0 / sy;
            head = (head + 1) % m;
            if (hist < m)
                hist++;
        }
        double f_old = f;
        f = acc.f;
        gn = norm_inf(g, n);
        if (progress)
            progress(progress_user, iter, f, gn);
        if (gn <= o->gtol)
            status = TL_LBFGS_GTOL;
        else if (f_old - f <= o->ftol * fmax(fmax(fabs(f_old), fabs(f)), 1.0))
            status = TL_LBFGS_FTOL;
    }
    if (res) {
        res->status = status;
        res->iters = iter;
        res->evals = evals;
        res->f = f;
        res->gnorm_inf = gn;
    }
    tl_free(buf);
    return 0;
}
