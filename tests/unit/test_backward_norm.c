/* Batch norm (training mode) and layer norm: finite differences of
 * <dy, y> through the forward functions, split ranges equal whole ranges,
 * statistics accurate under a large offset, the running-statistics update,
 * and PyTorch autograd. */
#include "test_backward_util.h"

static double worst_fd;

/* L = <dy, y> for the batch-norm forward in float, summed in double */
static double bn_loss(int n, int c, int hw, const float *x, const float *gamma, const float *beta, const float *dy)
{
    size_t nx = (size_t)n * c * hw;
    float *y = malloc(nx * sizeof *y), *mean = malloc(c * sizeof *mean), *var = malloc(c * sizeof *var),
          *inv = malloc(c * sizeof *inv);
    tl_bn_train_forward_ref(n, c, hw, x, gamma, beta, 1e-5f, y, mean, var, inv, 0, c);
    double l = bw_dot(y, dy, nx);
    free(y), free(mean), free(var), free(inv);
    return l;
}

/* max |fd - analytic| / max |analytic| over every element of p */
static double fd_check(float *p, size_t np, const float *grad, double (*loss)(void *), void *ctx, float h)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < np; i++) {
        float p0 = p[i];
        p[i] = p0 + h;
        double lp = loss(ctx);
        p[i] = p0 - h;
        double lm = loss(ctx);
        p[i] = p0;
        double fd = (lp - lm) / ((double)(p0 + h) - (double)(p0 - h));
        d = fmax(d, fabs(fd - grad[i]));
        m = fmax(m, fabs(grad[i]));
    }
    return m > 0 ? d / m : d;
}

typedef struct {
    int n, c, hw;
    float *x, *gamma, *beta, *dy;
} bn_ctx;

static double bn_loss_ctx(void *p)
{
    bn_ctx *b = p;
    return bn_loss(b->n, b->c, b->hw, b->x, b->gamma, b->beta, b->dy);
}

static void test_bn(void)
{
    uint64_t s = 11;
    const int shapes[][3] = {{3, 4, 5}, {4, 3, 1}, {1, 2, 9}};
    for (int k = 0; k < 3; k++) {
        int n = shapes[k][0], c = shapes[k][1], hw = shapes[k][2];
        size_t nx = (size_t)n * c * hw;
        bn_ctx b = {n, c, hw, bw_rand(&s, nx, 2.0f), bw_rand(&s, c, 1.5f), bw_rand(&s, c, 1.0f), bw_rand(&s, nx, 1.0f)};
        float *y = malloc(nx * sizeof *y), *mean = malloc(c * sizeof *mean), *var = malloc(c * sizeof *var),
              *inv = malloc(c * sizeof *inv), *dx = malloc(nx * sizeof *dx), *dg = bw_zeros(c), *db = bw_zeros(c);
        tl_bn_train_forward_ref(n, c, hw, b.x, b.gamma, b.beta, 1e-5f, y, mean, var, inv, 0, c);
        tl_bn_train_backward_ref(n, c, hw, b.x, b.dy, b.gamma, mean, inv, dx, dg, db, 0, c);
        double ex = fd_check(b.x, nx, dx, bn_loss_ctx, &b, 1e-2f);
        double eg = fd_check(b.gamma, c, dg, bn_loss_ctx, &b, 1e-2f);
        double eb = fd_check(b.beta, c, db, bn_loss_ctx, &b, 1e-2f);
        worst_fd = fmax(worst_fd, fmax(ex, fmax(eg, eb)));
        CHECK_MSG(ex < 1e-2 && eg < 1e-2 && eb < 1e-2, "bn %dx%dx%d: finite differences dx %g dgamma %g dbeta %g", n, c,
                  hw, ex, eg, eb);
        /* the normalised output has zero mean and unit biased variance per channel */
        for (int ch = 0; ch < c && hw * n > 1; ch++) {
            double m = 0, v = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < hw; j++)
                    m += (y[((size_t)i * c + ch) * hw + j] - b.beta[ch]) / b.gamma[ch];
            m /= n * hw;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < hw; j++) {
                    double z = (y[((size_t)i * c + ch) * hw + j] - b.beta[ch]) / b.gamma[ch] - m;
                    v += z * z;
                }
            v /= n * hw;
            CHECK_MSG(fabs(m) < 1e-5 && fabs(v * (var[ch] + 1e-5) / var[ch] - 1) < 1e-4, "bn channel %d: mean %g var %g",
                      ch, m, v);
        }
        /* channel ranges, frozen affine (NULL dgamma / dbeta) */
        float *dx2 = malloc(nx * sizeof *dx2), *dg2 = bw_zeros(c), *db2 = bw_zeros(c), *y2 = malloc(nx * sizeof *y2);
        float *mean2 = malloc(c * sizeof *mean2), *var2 = malloc(c * sizeof *var2), *inv2 = malloc(c * sizeof *inv2);
        int cut = c / 2;
        tl_bn_train_forward_ref(n, c, hw, b.x, b.gamma, b.beta, 1e-5f, y2, mean2, var2, inv2, 0, cut);
        tl_bn_train_forward_ref(n, c, hw, b.x, b.gamma, b.beta, 1e-5f, y2, mean2, var2, inv2, cut, c);
        tl_bn_train_backward_ref(n, c, hw, b.x, b.dy, b.gamma, mean2, inv2, dx2, dg2, db2, cut, c);
        tl_bn_train_backward_ref(n, c, hw, b.x, b.dy, b.gamma, mean2, inv2, dx2, dg2, db2, 0, cut);
        CHECK(!memcmp(y, y2, nx * sizeof *y) && !memcmp(mean, mean2, c * sizeof *mean) &&
              !memcmp(inv, inv2, c * sizeof *inv) && !memcmp(var, var2, c * sizeof *var));
        CHECK(!memcmp(dx, dx2, nx * sizeof *dx) && !memcmp(dg, dg2, c * sizeof *dg) && !memcmp(db, db2, c * sizeof *db));
        tl_bn_train_backward_ref(n, c, hw, b.x, b.dy, b.gamma, mean, inv, dx2, NULL, NULL, 0, c);
        CHECK(!memcmp(dx, dx2, nx * sizeof *dx));
        free(dx2), free(dg2), free(db2), free(y2), free(mean2), free(var2), free(inv2);
        free(b.x), free(b.gamma), free(b.beta), free(b.dy);
        free(y), free(mean), free(var), free(inv), free(dx), free(dg), free(db);
    }

    /* statistics over many values with |mean| >> std stay accurate */
    int n = 8, c = 2, hw = 4096;
    size_t nx = (size_t)n * c * hw;
    float *x = bw_rand(&s, nx, 1.0f), *y = malloc(nx * sizeof *y);
    for (size_t i = 0; i < nx; i++)
        x[i] += 1000.0f;
    float mean[2], var[2], inv[2];
    tl_bn_train_forward_ref(n, c, hw, x, NULL, NULL, 1e-5f, y, mean, var, inv, 0, c);
    for (int ch = 0; ch < c; ch++) {
        double m = 0, v = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++)
                m += x[((size_t)i * c + ch) * hw + j];
        m /= (double)n * hw;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                double z = x[((size_t)i * c + ch) * hw + j] - m;
                v += z * z;
            }
        v /= (double)n * hw;
        CHECK_MSG(fabs(mean[ch] - m) <= 1e-7 * fabs(m) && fabs(var[ch] - v) <= 1e-6 * v, "offset channel %d: mean %.9g vs %.9g, var %.9g vs %.9g", ch,
                  mean[ch], m, var[ch], v);
    }
    free(x), free(y);

    /* running statistics: unbiased variance, momentum as PyTorch */
    float rm[2] = {0.5f, -1.0f}, rv[2] = {1.0f, 2.0f}, bm[2] = {2.0f, 3.0f}, bv[2] = {4.0f, 0.5f};
    tl_bn_update_running(2, 10, 0.1f, bm, bv, rm, rv);
    CHECK_NEAR(rm[0], 0.9 * 0.5 + 0.1 * 2.0, 1e-7);
    CHECK_NEAR(rm[1], 0.9 * -1.0 + 0.1 * 3.0, 1e-7);
    CHECK_NEAR(rv[0], 0.9 * 1.0 + 0.1 * 4.0 * 10 / 9, 1e-6);
    CHECK_NEAR(rv[1], 0.9 * 2.0 + 0.1 * 0.5 * 10 / 9, 1e-6);
    tl_bn_update_running(1, 1, 0.5f, bm, bv, rm, rv); /* m = 1: no division by zero */
    CHECK(isfinite(rv[0]));
}

typedef struct {
    int rows, d;
    float *x, *gamma, *beta, *dy;
} ln_ctx;

static double ln_loss(void *p)
{
    ln_ctx *l = p;
    size_t nx = (size_t)l->rows * l->d;
    float *y = malloc(nx * sizeof *y), *mean = malloc(l->rows * sizeof *mean), *inv = malloc(l->rows * sizeof *inv);
    tl_layernorm_forward_save(l->rows, l->d, l->x, l->gamma, l->beta, 1e-5f, y, mean, inv);
    double r = bw_dot(y, l->dy, nx);
    free(y), free(mean), free(inv);
    return r;
}

static void test_ln(void)
{
    uint64_t s = 13;
    const int shapes[][2] = {{3, 7}, {4, 150}, {1, 3}};
    for (int k = 0; k < 3; k++) {
        int rows = shapes[k][0], d = shapes[k][1];
        size_t nx = (size_t)rows * d;
        ln_ctx l = {rows, d, bw_rand(&s, nx, 2.0f), bw_rand(&s, d, 1.5f), bw_rand(&s, d, 1.0f), bw_rand(&s, nx, 1.0f)};
        for (size_t i = 0; i < nx; i++)
            l.x[i] += 3.0f;
        float *y = malloc(nx * sizeof *y), *y0 = malloc(nx * sizeof *y0), *mean = malloc(rows * sizeof *mean),
              *inv = malloc(rows * sizeof *inv), *dx = malloc(nx * sizeof *dx), *dg = bw_zeros(d), *db = bw_zeros(d);
        tl_layernorm_forward_save(rows, d, l.x, l.gamma, l.beta, 1e-5f, y, mean, inv);
        tl_layernorm(rows, d, l.x, l.gamma, l.beta, 1e-5f, y0);
        CHECK_MSG(bw_relerr(y, y0, nx) < 1e-6, "layernorm %dx%d: forward_save differs from tl_layernorm", rows, d);
        tl_layernorm_backward_data(rows, d, l.x, l.gamma, mean, inv, l.dy, dx);
        tl_layernorm_backward_params(rows, d, l.x, mean, inv, l.dy, dg, db, 0, d);
        double ex = fd_check(l.x, nx, dx, ln_loss, &l, 1e-2f);
        double eg = fd_check(l.gamma, d, dg, ln_loss, &l, 1e-2f);
        double eb = fd_check(l.beta, d, db, ln_loss, &l, 1e-2f);
        worst_fd = fmax(worst_fd, fmax(ex, fmax(eg, eb)));
        CHECK_MSG(ex < 1e-2 && eg < 1e-2 && eb < 1e-2, "layernorm %dx%d: finite differences dx %g dgamma %g dbeta %g",
                  rows, d, ex, eg, eb);
        float *dg2 = bw_zeros(d), *db2 = bw_zeros(d);
        int cut = d * 7 / 15;
        tl_layernorm_backward_params(rows, d, l.x, mean, inv, l.dy, dg2, db2, cut, d);
        tl_layernorm_backward_params(rows, d, l.x, mean, inv, l.dy, dg2, db2, 0, cut);
        CHECK(!memcmp(dg, dg2, d * sizeof *dg) && !memcmp(db, db2, d * sizeof *db));
        tl_layernorm_backward_params(rows, d, l.x, mean, inv, l.dy, NULL, db2, 0, d); /* accumulates */
        for (int j = 0; j < d; j++)
            CHECK_NEAR(db2[j], 2.0 * db[j], 1e-5 * (1 + fabs(db[j])));
        free(dg2), free(db2);
        free(l.x), free(l.gamma), free(l.beta), free(l.dy);
        free(y), free(y0), free(mean), free(inv), free(dx), free(dg), free(db);
    }
}

static void test_torch(void)
{
    bw_ref r;
    if (bw_ref_start(&r, "test_backward_norm") <= 0)
        return;
    const int bn[][3] = {{4, 3, 25}, {6, 5, 1}, {8, 2, 49}};
    const float bn_eps[] = {1e-5f, 1e-3f, 1e-5f};
    const int ln[][2] = {{5, 16}, {10, 200}};
    const float ln_eps[] = {1e-6f, 1e-5f};
    for (int k = 0; k < 3; k++)
        fprintf(r.cases, "bn%d bn %d %d %d %.9g 0.1\n", k, bn[k][0], bn[k][1], bn[k][2], bn_eps[k]);
    for (int k = 0; k < 2; k++)
        fprintf(r.cases, "ln%d ln %d %d %.9g\n", k, ln[k][0], ln[k][1], ln_eps[k]);
    if (bw_ref_run(&r, "test_backward_norm") == 1) {
        double worst = 0;
        for (int k = 0; k < 3; k++) {
            char nm[32];
            snprintf(nm, sizeof nm, "bn%d", k);
            int n = bn[k][0], c = bn[k][1], hw = bn[k][2];
            size_t nx = (size_t)n * c * hw;
            const char *keys[] = {"x", "gamma", "beta", "dy", "rm", "rv", "y", "dx", "dgamma", "dbeta", "mean", "var", "rm_out", "rv_out"};
            float *t[14];
            int ok = 1;
            for (int i = 0; i < 14; i++) {
                size_t len = (i == 0 || i == 3 || i == 6 || i == 7) ? nx : (size_t)c;
                t[i] = bw_ref_read(&r, nm, keys[i], len);
                ok = ok && t[i];
            }
            if (ok) {
                float *y = malloc(nx * sizeof *y), *dx = malloc(nx * sizeof *dx), *mean = malloc(c * sizeof *mean),
                      *var = malloc(c * sizeof *var), *inv = malloc(c * sizeof *inv), *dg = bw_zeros(c), *db = bw_zeros(c);
                tl_bn_train_forward_ref(n, c, hw, t[0], t[1], t[2], bn_eps[k], y, mean, var, inv, 0, c);
                tl_bn_train_backward_ref(n, c, hw, t[0], t[3], t[1], mean, inv, dx, dg, db, 0, c);
                tl_bn_update_running(c, (int64_t)n * hw, 0.1f, mean, var, t[4], t[5]);
                double e[] = {bw_relerr(y, t[6], nx), bw_relerr(dx, t[7], nx), bw_relerr(dg, t[8], c),
                              bw_relerr(db, t[9], c), bw_relerr(mean, t[10], c), bw_relerr(var, t[11], c),
                              bw_relerr(t[4], t[12], c), bw_relerr(t[5], t[13], c)};
                double m = 0;
                for (int i = 0; i < 8; i++)
                    m = fmax(m, e[i]);
                worst = fmax(worst, m);
                CHECK_MSG(m <= 1e-4, "%s vs pytorch: y %g dx %g dgamma %g dbeta %g mean %g var %g running mean %g running var %g",
                          nm, e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]);
                free(y), free(dx), free(mean), free(var), free(inv), free(dg), free(db);
            }
            for (int i = 0; i < 14; i++)
                free(t[i]);
        }
        for (int k = 0; k < 2; k++) {
            char nm[32];
            snprintf(nm, sizeof nm, "ln%d", k);
            int rows = ln[k][0], d = ln[k][1];
            size_t nx = (size_t)rows * d;
            const char *keys[] = {"x", "gamma", "beta", "dy", "y", "dx", "dgamma", "dbeta"};
            float *t[8];
            int ok = 1;
            for (int i = 0; i < 8; i++) {
                size_t len = (i == 1 || i == 2 || i == 6 || i == 7) ? (size_t)d : nx;
                t[i] = bw_ref_read(&r, nm, keys[i], len);
                ok = ok && t[i];
            }
            if (ok) {
                float *y = malloc(nx * sizeof *y), *dx = malloc(nx * sizeof *dx), *mean = malloc(rows * sizeof *mean),
                      *inv = malloc(rows * sizeof *inv), *dg = bw_zeros(d), *db = bw_zeros(d);
                tl_layernorm_forward_save(rows, d, t[0], t[1], t[2], ln_eps[k], y, mean, inv);
                tl_layernorm_backward_data(rows, d, t[0], t[1], mean, inv, t[3], dx);
                tl_layernorm_backward_params(rows, d, t[0], mean, inv, t[3], dg, db, 0, d);
                double e[] = {bw_relerr(y, t[4], nx), bw_relerr(dx, t[5], nx), bw_relerr(dg, t[6], d), bw_relerr(db, t[7], d)};
                double m = fmax(fmax(e[0], e[1]), fmax(e[2], e[3]));
                worst = fmax(worst, m);
                CHECK_MSG(m <= 1e-4, "%s vs pytorch: y %g dx %g dgamma %g dbeta %g", nm, e[0], e[1], e[2], e[3]);
                free(y), free(dx), free(mean), free(inv), free(dg), free(db);
            }
            for (int i = 0; i < 8; i++)
                free(t[i]);
        }
        printf("test_backward_norm: vs pytorch, max relative error %.3g\n", worst);
    }
    bw_ref_done(&r);
}

/* The vectorised versions the tape runs (float lanes per plane) agree with
 * the double two-pass ones: shapes with and without a tail of 16, a mean
 * far from zero (the variance's correction for a rounded mean), channel
 * ranges, NULL affine parameters and outputs. */
static void test_bn_fast(void)
{
    const int shapes[][3] = {{4, 3, 49}, {3, 5, 112 * 112}, {2, 4, 17}, {5, 2, 1}, {1, 3, 3}};
    uint64_t s = 21;
    double worst = 0;
    tl_err err;
    tl_kws *ws = tl_kws_new(&err);
    CHECK(ws != NULL);
    for (size_t k = 0; ws && k < sizeof shapes / sizeof shapes[0]; k++) {
        int n = shapes[k][0], c = shapes[k][1], hw = shapes[k][2];
        size_t len = (size_t)n * c * hw;
        float *x = bw_rand(&s, len, 1.0f), *dy = bw_rand(&s, len, 1.0f), *g = bw_rand(&s, c, 1.0f);
        float *b = bw_rand(&s, c, 1.0f);
        for (size_t i = 0; i < len; i++)
            x[i] = x[i] * 0.5f + (k == 1 ? 40.0f : 0.0f);
        float *y[2], *dx[2], *st[2][3], *dg[2], *db[2];
        for (int v = 0; v < 2; v++) {
            y[v] = bw_zeros(len), dx[v] = bw_zeros(len), dg[v] = bw_zeros(c), db[v] = bw_zeros(c);
            for (int q = 0; q < 3; q++)
                st[v][q] = bw_zeros(c);
        }
        const float *gg = k == 3 ? NULL : g, *bb = k == 3 ? NULL : b;
        tl_bn_train_forward_ref(n, c, hw, x, gg, bb, 1e-5f, y[0], st[0][0], st[0][1], st[0][2], 0, c);
        tl_bn_train_backward_ref(n, c, hw, x, dy, gg, st[0][0], st[0][2], dx[0], dg[0], db[0], 0, c);
        int cut = c / 2;
        tl_batchnorm_train_forward(ws, n, c, hw, x, gg, bb, 1e-5f, y[1], st[1][0], st[1][1], st[1][2], cut, c);
        tl_batchnorm_train_forward(ws, n, c, hw, x, gg, bb, 1e-5f, y[1], st[1][0], k == 4 ? NULL : st[1][1],
                                   st[1][2], 0, cut);
        tl_batchnorm_train_backward(ws, n, c, hw, x, dy, gg, st[1][0], st[1][2], dx[1], dg[1], db[1], 0, cut);
        tl_batchnorm_train_backward(ws, n, c, hw, x, dy, gg, st[1][0], st[1][2], dx[1], k == 2 ? NULL : dg[1], db[1],
                                    cut, c);
        double e = fmax(bw_relerr(y[1], y[0], len), bw_relerr(dx[1], dx[0], len));
        e = fmax(e, fmax(bw_relerr(st[1][0], st[0][0], c), bw_relerr(st[1][2], st[0][2], c)));
        e = fmax(e, fmax(bw_relerr(dg[1], dg[0], cut), bw_relerr(db[1], db[0], c)));
        if (k != 4)
            e = fmax(e, bw_relerr(st[1][1], st[0][1], c));
        worst = fmax(worst, e);
        CHECK_MSG(e < 2e-5, "vectorised batch norm n=%d c=%d hw=%d: relative error %.3g", n, c, hw, e);
        for (int v = 0; v < 2; v++) {
            free(y[v]), free(dx[v]), free(dg[v]), free(db[v]);
            for (int q = 0; q < 3; q++)
                free(st[v][q]);
        }
        free(x), free(dy), free(g), free(b);
    }
    tl_kws_free(ws);
    printf("test_backward_norm: vectorised batch norm, max relative error %.3g\n", worst);
}

/* The SSE2, AVX2 and AVX-512 copies of the tape's batch norm give the same
 * bits (same lanes, same order, no contraction), on a tail and no tail. */
static void test_bn_paths(void)
{
    const int n = 3, c = 4, hw = 16 * 13 + 5;
    const size_t len = (size_t)n * c * hw;
    uint64_t s = 5;
    float *x = bw_rand(&s, len, 2.0f), *dy = bw_rand(&s, len, 1.0f), *g = bw_rand(&s, c, 1.0f), *b = bw_rand(&s, c, 1.0f);
    float *out[BW_NPATHS][6] = {{0}};
    const size_t sizes[6] = {len, c, c, c, len, 2 * (size_t)c};
    for (int k = 0; k < BW_NPATHS; k++) {
        if (!bw_use_path(k)) {
            printf("test_backward_norm: %s not supported here, its batch norm copy not run\n", BW_PATHS[k]);
            continue;
        }
        for (int q = 0; q < 6; q++)
            out[k][q] = bw_zeros(sizes[q]);
        tl_err err;
        tl_kws *ws = tl_kws_new(&err); /* the path TL_SIMD names now */
        CHECK(ws != NULL);
        if (!ws)
            continue;
        tl_batchnorm_train_forward(ws, n, c, hw, x, g, b, 1e-5f, out[k][0], out[k][1], out[k][2], out[k][3], 0, c);
        tl_batchnorm_train_backward(ws, n, c, hw, x, dy, g, out[k][1], out[k][3], out[k][4], out[k][5], out[k][5] + c,
                                    0, c);
        tl_kws_free(ws);
        for (int q = 0; k > 0 && q < 6; q++)
            CHECK_MSG(!memcmp(out[k][q], out[0][q], sizes[q] * sizeof(float)),
                      "batch norm output %d differs between %s and scalar", q, BW_PATHS[k]);
    }
    unsetenv("TL_SIMD");
    for (int k = 0; k < BW_NPATHS; k++)
        for (int q = 0; q < 6; q++)
            free(out[k][q]);
    free(x), free(dy), free(g), free(b);
}

/* Layer norm on every path gives the scalar path's bits (the row sums in
 * vectors of doubles, lane j = sum j): widths with and without a tail
 * past 8 and 16 lanes (ViT-B's 768, ViT-Ti's 192), a large mean, without
 * gamma/beta, and checked against a double reference. */
static void test_ln_paths(void)
{
    const int widths[] = {768, 192, 37, 5, 16};
    uint64_t s = 21;
    for (int w = 0; w < 5; w++) {
        const int rows = 7, d = widths[w];
        const size_t nx = (size_t)rows * d;
        float *x = bw_rand(&s, nx, 2.0f), *g = bw_rand(&s, d, 1.0f), *b = bw_rand(&s, d, 1.0f);
        for (int i = 0; i < d; i++)
            x[(size_t)2 * d + i] += 1000.0f; /* |mean| >> std */
        float *y[BW_NPATHS][2] = {{0}}, *st[BW_NPATHS][2] = {{0}};
        for (int k = 0; k < BW_NPATHS; k++) {
            if (!bw_use_path(k))
                continue;
            for (int q = 0; q < 2; q++) {
                y[k][q] = bw_zeros(nx);
                st[k][q] = bw_zeros(2 * (size_t)rows);
            }
            tl_layernorm_forward_save(rows, d, x, g, b, 1e-6f, y[k][0], st[k][0], st[k][0] + rows);
            tl_layernorm_forward_save(rows, d, x, NULL, NULL, 1e-6f, y[k][1], st[k][1], st[k][1] + rows);
            for (int q = 0; k > 0 && y[0][0] && q < 2; q++)
                CHECK_MSG(!memcmp(y[k][q], y[0][q], nx * sizeof(float)) &&
                              !memcmp(st[k][q], st[0][q], 2 * (size_t)rows * sizeof(float)),
                          "layer norm %dx%d (%s gamma/beta): %s differs from scalar", rows, d, q ? "without" : "with",
                          BW_PATHS[k]);
            double worst = 0;
            for (int r = 0; r < rows; r++) {
                const float *xr = x + (size_t)r * d;
                double m = 0, v = 0;
                for (int i = 0; i < d; i++)
                    m += xr[i];
                m /= d;
                for (int i = 0; i < d; i++)
                    v += (xr[i] - m) * (xr[i] - m);
                double inv = 1.0 / sqrt(v / d + 1e-6);
                for (int i = 0; i < d; i++) {
                    double ref = (xr[i] - m) * inv * g[i] + b[i];
                    double e = fabs(y[k][0][(size_t)r * d + i] - ref) / (fabs(ref) + 1.0);
                    worst = e > worst ? e : worst;
                }
            }
            CHECK_MSG(worst < 1e-4, "layer norm %dx%d on %s: %g from the double reference", rows, d, BW_PATHS[k],
                      worst);
        }
        unsetenv("TL_SIMD");
        for (int k = 0; k < BW_NPATHS; k++)
            for (int q = 0; q < 2; q++)
                free(y[k][q]), free(st[k][q]);
        free(x), free(g), free(b);
    }
}

/* The batch norm's backward fused with the relu / relu6 after it gives the
 * bits of the two backward passes it replaces, on every path: outputs at
 * the kinks (exactly 0 and 6), negative and above 6, a tail past the
 * 16 lanes, channel ranges, and dx written over the activation's
 * gradient (as the tape may). */
static void test_bn_act(void)
{
    const int n = 3, c = 5, hw = 16 * 7 + 9;
    const size_t len = (size_t)n * c * hw;
    uint64_t s = 9;
    float *x = bw_rand(&s, len, 3.0f), *dya = bw_rand(&s, len, 1.0f), *g = bw_rand(&s, c, 1.0f);
    float *b = bw_rand(&s, c, 2.0f), *y = bw_zeros(len), *st[3];
    for (int q = 0; q < 3; q++)
        st[q] = bw_zeros(c);
    tl_err err;
    tl_kws *ws0 = tl_kws_new(&err);
    CHECK(ws0 != NULL);
    if (ws0)
        tl_batchnorm_train_forward(ws0, n, c, hw, x, g, b, 1e-5f, y, st[0], st[1], st[2], 0, c);
    tl_kws_free(ws0);
    const float edges[4] = {0.0f, 6.0f, 7.5f, -0.0f}; /* the kinks and beyond */
    for (size_t i = 0; i < len; i += 7)
        y[i] = edges[i / 7 % 4];
    dya[1] = -0.0f;
    const int acts[2] = {TL_ACT_RELU, TL_ACT_RELU6};
    for (int k = 0; k < BW_NPATHS; k++) {
        if (!bw_use_path(k))
            continue;
        tl_err e;
        tl_kws *ws = tl_kws_new(&e);
        CHECK(ws != NULL);
        for (int a = 0; a < 2 && ws; a++) {
            float *gy[2] = {bw_zeros(len), bw_zeros(len)}, *dx[2] = {bw_zeros(len), bw_zeros(len)};
            float *dg[2] = {bw_zeros(c), bw_zeros(c)}, *db[2] = {bw_zeros(c), bw_zeros(c)};
            tl_activation_backward(acts[a], y, dya, gy[0], len);
            tl_batchnorm_train_backward(ws, n, c, hw, x, gy[0], g, st[0], st[2], dx[0], dg[0], db[0], 0, c);
            /* dx over a copy of dya, in two channel ranges */
            memcpy(dx[1], dya, len * sizeof(float));
            tl_batchnorm_train_backward_act(ws, acts[a], n, c, hw, x, y, dx[1], gy[1], g, st[0], st[2], dx[1], dg[1],
                                            db[1], 0, 2);
            tl_batchnorm_train_backward_act(ws, acts[a], n, c, hw, x, y, dx[1], gy[1], g, st[0], st[2], dx[1], dg[1],
                                            db[1], 2, c);
            CHECK_MSG(!memcmp(gy[0], gy[1], len * sizeof(float)), "bn+act %s act %d: dy of the batch norm differs",
                      BW_PATHS[k], acts[a]);
            CHECK_MSG(!memcmp(dx[0], dx[1], len * sizeof(float)), "bn+act %s act %d: dx differs", BW_PATHS[k],
                      acts[a]);
            CHECK_MSG(!memcmp(dg[0], dg[1], c * sizeof(float)) && !memcmp(db[0], db[1], c * sizeof(float)),
                      "bn+act %s act %d: dgamma/dbeta differ", BW_PATHS[k], acts[a]);
            /* without g (the tape's call): dx from y and dya again */
            memcpy(dx[1], dya, len * sizeof(float));
            memset(dg[1], 0, c * sizeof(float));
            memset(db[1], 0, c * sizeof(float));
            tl_batchnorm_train_backward_act(ws, acts[a], n, c, hw, x, y, dx[1], NULL, g, st[0], st[2], dx[1], dg[1],
                                            db[1], 0, 3);
            tl_batchnorm_train_backward_act(ws, acts[a], n, c, hw, x, y, dx[1], NULL, g, st[0], st[2], dx[1], dg[1],
                                            db[1], 3, c);
            CHECK_MSG(!memcmp(dx[0], dx[1], len * sizeof(float)), "bn+act %s act %d, no g: dx differs", BW_PATHS[k],
                      acts[a]);
            CHECK_MSG(!memcmp(dg[0], dg[1], c * sizeof(float)) && !memcmp(db[0], db[1], c * sizeof(float)),
                      "bn+act %s act %d, no g: dgamma/dbeta differ", BW_PATHS[k], acts[a]);
            for (int v = 0; v < 2; v++)
                free(gy[v]), free(dx[v]), free(dg[v]), free(db[v]);
        }
        tl_kws_free(ws);
    }
    unsetenv("TL_SIMD");
    for (int q = 0; q < 3; q++)
        free(st[q]);
    free(x), free(dya), free(g), free(b), free(y);
}

/* The batch norm's forward with the relu / relu6 after it applied as it
 * writes gives the bits of the forward then the activation, on every path:
 * outputs below 0 and above 6 (gamma up to 6 on inputs of up to 3 standard
 * deviations), a tail past the 16 lanes, channel ranges. */
static void test_bn_act_forward(void)
{
    const int n = 3, c = 5, hw = 16 * 7 + 9;
    const size_t len = (size_t)n * c * hw;
    uint64_t s = 21;
    float *x = bw_rand(&s, len, 3.0f), *g = bw_rand(&s, c, 6.0f), *b = bw_rand(&s, c, 2.0f);
    float *y = bw_zeros(len), *z[2] = {bw_zeros(len), bw_zeros(len)}, *st[2][3];
    for (int v = 0; v < 2; v++)
        for (int q = 0; q < 3; q++)
            st[v][q] = bw_zeros(c);
    const int acts[2] = {TL_ACT_RELU, TL_ACT_RELU6};
    for (int k = 0; k < BW_NPATHS; k++) {
        if (!bw_use_path(k))
            continue;
        tl_err e;
        tl_kws *ws = tl_kws_new(&e);
        CHECK(ws != NULL);
        for (int a = 0; a < 2 && ws; a++) {
            tl_batchnorm_train_forward(ws, n, c, hw, x, g, b, 1e-5f, y, st[0][0], st[0][1], st[0][2], 0, c);
            tl_activation_copy(acts[a], y, z[0], len);
            tl_batchnorm_train_forward_act(ws, acts[a], n, c, hw, x, g, b, 1e-5f, z[1], st[1][0], st[1][1], st[1][2],
                                           0, 2);
            tl_batchnorm_train_forward_act(ws, acts[a], n, c, hw, x, g, b, 1e-5f, z[1], st[1][0], st[1][1], st[1][2],
                                           2, c);
            int low = 0, high = 0;
            for (size_t i = 0; i < len; i++)
                low += y[i] < 0.0f, high += y[i] > 6.0f;
            CHECK_MSG(low > 0 && high > 0, "bn+act forward: no outputs beyond the kinks (%d, %d)", low, high);
            CHECK_MSG(!memcmp(z[0], z[1], len * sizeof(float)), "bn+act forward %s act %d: outputs differ",
                      BW_PATHS[k], acts[a]);
            for (int q = 0; q < 3; q++)
                CHECK_MSG(!memcmp(st[0][q], st[1][q], c * sizeof(float)), "bn+act forward %s: statistics differ",
                          BW_PATHS[k]);
        }
        tl_kws_free(ws);
    }
    unsetenv("TL_SIMD");
    for (int v = 0; v < 2; v++) {
        free(z[v]);
        for (int q = 0; q < 3; q++)
            free(st[v][q]);
    }
    free(x), free(g), free(b), free(y);
}

int main(void)
{
    test_bn();
    test_bn_fast();
    test_bn_paths();
    test_bn_act();
    test_bn_act_forward();
    test_ln();
    test_ln_paths();
    test_torch();
    printf("test_backward_norm: finite differences max relative error %.3g\n", worst_fd);
    return check_finish("test_backward_norm");
}
