/* Pooling backward: finite differences through the forward kernels,
 * the adjoint identity for the linear (average) pools, PyTorch's tie and
 * NaN rules for max pooling, and PyTorch autograd. */
#include "test_backward_util.h"

typedef struct {
    const char *name;
    int max, torch; /* torch: symmetric padding that PyTorch can express */
    tl_pool_geom g;
} pool_case;

#define P(...) ((tl_pool_geom){__VA_ARGS__})
static const pool_case CASES[] = {
    {"max_k3s2p1", 1, 1, P(.c = 2, .h = 7, .w = 8, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1)},
    {"max_k2s2ceil", 1, 1, P(.c = 2, .h = 7, .w = 7, .kh = 2, .kw = 2, .stride_h = 2, .stride_w = 2, .ceil_mode = 1)},
    {"max_k3s2ceil", 1, 1, P(.c = 3, .h = 6, .w = 8, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .ceil_mode = 1)},
    {"max_k3s2p1ceil", 1, 1, P(.c = 2, .h = 6, .w = 6, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .ceil_mode = 1)},
    {"max_k3x2s1", 1, 1, P(.c = 2, .h = 5, .w = 6, .kh = 3, .kw = 2, .stride_h = 1, .stride_w = 1)},
    /* wide enough for the four-window path (stride 1, 2 and 3) */
    {"max_k3s2p1_wide", 1, 1, P(.c = 2, .h = 9, .w = 23, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1)},
    {"max_k2s1_wide", 1, 1, P(.c = 1, .h = 4, .w = 19, .kh = 2, .kw = 2, .stride_h = 1, .stride_w = 1)},
    {"max_k3s3ceil_wide", 1, 1, P(.c = 1, .h = 7, .w = 29, .kh = 3, .kw = 3, .stride_h = 3, .stride_w = 3, .ceil_mode = 1)},
    {"max_asym", 1, 0, P(.c = 2, .h = 7, .w = 6, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_b = 1, .pad_r = 2)},
    {"avg_k3s1p1_cip", 0, 1, P(.c = 2, .h = 5, .w = 6, .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .count_include_pad = 1)},
    {"avg_k3s1p1", 0, 1, P(.c = 2, .h = 5, .w = 6, .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1)},
    {"avg_k2s2ceil_cip", 0, 1, P(.c = 2, .h = 5, .w = 7, .kh = 2, .kw = 2, .stride_h = 2, .stride_w = 2, .ceil_mode = 1, .count_include_pad = 1)},
    {"avg_k2s2ceil", 0, 1, P(.c = 2, .h = 5, .w = 7, .kh = 2, .kw = 2, .stride_h = 2, .stride_w = 2, .ceil_mode = 1)},
    {"avg_k3s2p1ceil_cip", 0, 1, P(.c = 2, .h = 6, .w = 6, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .ceil_mode = 1, .count_include_pad = 1)},
    {"avg_k3s2p1ceil", 0, 1, P(.c = 1, .h = 7, .w = 6, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .ceil_mode = 1)},
    {"avg_asym_cip", 0, 0, P(.c = 2, .h = 7, .w = 6, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_b = 1, .pad_r = 2, .count_include_pad = 1)},
    {"avg_asym", 0, 0, P(.c = 2, .h = 7, .w = 6, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_r = 1)},
};
#define NCASES (sizeof CASES / sizeof CASES[0])

static const int ADAPT[][4] = {{7, 5, 3, 2}, {6, 6, 4, 4}, {5, 5, 1, 1}, {3, 4, 5, 7}, {9, 7, 7, 7}};
#define NADAPT (sizeof ADAPT / sizeof ADAPT[0])

static double worst_fd, worst_adj;

static void forward(const pool_case *pc, const float *x, float *y)
{
    if (pc->max)
        tl_maxpool2d(&pc->g, x, y);
    else
        tl_avgpool2d(&pc->g, x, y);
}

/* distinct values at least 0.05 apart, so a step of 1e-3 never changes a window's maximum */
static float *distinct(uint64_t *s, size_t n)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)i * 0.05f - (float)n * 0.025f;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)((bw_uniform(s) + 1.0f) * 0.5f * (float)(i + 1)) % (i + 1);
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
    return x;
}

static void test_fd(void)
{
    uint64_t s = 5;
    for (size_t c = 0; c < NCASES; c++) {
        pool_case pc = CASES[c];
        tl_pool_geom_finish(&pc.g);
        tl_err e = {0};
        CHECK_MSG(tl_pool_geom_check(&pc.g, &e) == 0, "%s: %s", pc.name, e.msg);
        size_t nx = (size_t)pc.g.c * pc.g.h * pc.g.w, ny = (size_t)pc.g.c * pc.g.oh * pc.g.ow;
        float *x = distinct(&s, nx), *dy = bw_rand(&s, ny, 1.0f), *dx = malloc(nx * sizeof *dx);
        float *y = malloc(ny * sizeof *y);
        for (size_t i = 0; i < nx; i++)
            dx[i] = NAN;
        if (pc.max)
            tl_maxpool2d_backward(&pc.g, x, dy, dx);
        else
            tl_avgpool2d_backward(&pc.g, dy, dx);
        double worst = 0;
        for (size_t i = 0; i < nx; i++) {
            float x0 = x[i], h = 1e-3f;
            x[i] = x0 + h;
            forward(&pc, x, y);
            double lp = bw_dot(y, dy, ny);
            x[i] = x0 - h;
            forward(&pc, x, y);
            double lm = bw_dot(y, dy, ny);
            x[i] = x0;
            double fd = (lp - lm) / ((double)(x0 + h) - (double)(x0 - h));
            worst = fmax(worst, fabs(fd - dx[i]));
        }
        worst_fd = fmax(worst_fd, worst);
        CHECK_MSG(worst < 1e-2, "%s: finite differences off by %g", pc.name, worst);
        if (!pc.max) {
            forward(&pc, x, y);
            double a = bw_dot(y, dy, ny), b = bw_dot(x, dx, nx), err = fabs(a - b) / fmax(1.0, fabs(a));
            worst_adj = fmax(worst_adj, err);
            CHECK_MSG(err < 1e-5, "%s: adjoint identity off by %g", pc.name, err);
        }
        free(x), free(dy), free(dx), free(y);
    }
    for (size_t c = 0; c < NADAPT; c++) {
        int h = ADAPT[c][0], w = ADAPT[c][1], oh = ADAPT[c][2], ow = ADAPT[c][3], ch = 2;
        size_t nx = (size_t)ch * h * w, ny = (size_t)ch * oh * ow;
        float *x = bw_rand(&s, nx, 1.0f), *dy = bw_rand(&s, ny, 1.0f), *dx = malloc(nx * sizeof *dx);
        float *y = malloc(ny * sizeof *y);
        for (size_t i = 0; i < nx; i++)
            dx[i] = NAN;
        tl_adaptive_avgpool_backward(ch, h, w, oh, ow, dy, dx);
        tl_adaptive_avgpool(ch, h, w, oh, ow, x, y);
        double a = bw_dot(y, dy, ny), b = bw_dot(x, dx, nx), err = fabs(a - b) / fmax(1.0, fabs(a));
        worst_adj = fmax(worst_adj, err);
        CHECK_MSG(err < 1e-5, "adaptive %dx%d -> %dx%d: adjoint identity off by %g", h, w, oh, ow, err);
        /* and one finite difference per input cell along the gradient direction */
        double fd_err = 0;
        for (size_t i = 0; i < nx; i += 3) {
            float x0 = x[i];
            x[i] = x0 + 1e-2f;
            tl_adaptive_avgpool(ch, h, w, oh, ow, x, y);
            double lp = bw_dot(y, dy, ny);
            x[i] = x0 - 1e-2f;
            tl_adaptive_avgpool(ch, h, w, oh, ow, x, y);
            double lm = bw_dot(y, dy, ny);
            x[i] = x0;
            fd_err = fmax(fd_err, fabs((lp - lm) / ((double)(x0 + 1e-2f) - (double)(x0 - 1e-2f)) - dx[i]));
        }
        worst_fd = fmax(worst_fd, fd_err);
        CHECK_MSG(fd_err < 1e-3, "adaptive %dx%d -> %dx%d: finite differences off by %g", h, w, oh, ow, fd_err);
        free(x), free(dy), free(dx), free(y);
    }
}

/* ties go to the first maximum in row-major order, NaN wins (the last
 * one), padding never receives anything */
static void test_max_rules(void)
{
    tl_pool_geom g = {.c = 1, .h = 4, .w = 4, .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1};
    tl_pool_geom_finish(&g);
    float x[16] = {0}, dy[4] = {1, 2, 4, 8}, dx[16];
    tl_maxpool2d_backward(&g, x, dy, dx);
    /* windows start at (0,0) (0,1) (1,0) (1,1): each sends to its top-left */
    CHECK(dx[0] == 1 && dx[1] == 2 && dx[4] == 4 && dx[5] == 8);
    double s = 0;
    for (int i = 0; i < 16; i++)
        s += dx[i];
    CHECK(s == 15);

    x[9] = 3, x[6] = 3; /* (2,1) and (1,2): row-major first is (1,2) for windows holding both */
    tl_maxpool2d_backward(&g, x, dy, dx);
    CHECK(dx[6] == 1 + 2 + 4 + 8 && dx[9] == 0);

    x[10] = NAN, x[5] = NAN; /* the last NaN in scan order wins */
    tl_maxpool2d_backward(&g, x, dy, dx);
    CHECK(dx[10] == 15 && dx[5] == 0);

    tl_pool_geom gp = {.c = 1, .h = 3, .w = 3, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1};
    tl_pool_geom_finish(&gp);
    float xn[9], dyn[4] = {1, 1, 1, 1}, dxn[9];
    for (int i = 0; i < 9; i++)
        xn[i] = -5.0f; /* below the implicit padding value of PyTorch's -inf and of 0 */
    tl_maxpool2d_backward(&gp, xn, dyn, dxn);
    /* windows (-1..1, -1..1), (-1..1, 1..3), ...: first valid cells (0,0) (0,1) (1,0) (1,1) */
    CHECK(dxn[0] == 1 && dxn[1] == 1 && dxn[3] == 1 && dxn[4] == 1);
    s = 0;
    for (int i = 0; i < 9; i++)
        s += dxn[i];
    CHECK(s == 4);
}

/* The plain scan, one window after the other: the vectorised kernel must
 * pick the same cells (ties, NaN, -inf, clipped windows) and sum the same
 * way, bit for bit, for every geometry around the four-window blocks. */
static void ref_max_backward(const tl_pool_geom *g, const float *x, const float *dy, float *dx)
{
    memset(dx, 0, sizeof(float) * (size_t)g->c * g->h * g->w);
    for (int c = 0; c < g->c; c++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                int y0 = oy * g->stride_h - g->pad_t, x0 = ox * g->stride_w - g->pad_l;
                int y1 = y0 + g->kh < g->h ? y0 + g->kh : g->h, x1 = x0 + g->kw < g->w ? x0 + g->kw : g->w;
                y0 = y0 < 0 ? 0 : y0, x0 = x0 < 0 ? 0 : x0;
                if (y1 <= y0 || x1 <= x0)
                    continue;
                size_t best = ((size_t)c * g->h + y0) * g->w + x0;
                float m = -INFINITY;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        size_t at = ((size_t)c * g->h + iy) * g->w + ix;
                        if (x[at] > m || x[at] != x[at])
                            m = x[at], best = at;
                    }
                dx[best] += dy[((size_t)c * g->oh + oy) * g->ow + ox];
            }
}

static void test_max_blocks(void)
{
    uint64_t s = 11;
    int n = 0;
    for (int k = 1; k <= 5; k++)
        for (int st = 1; st <= 3; st++)
            for (int p = 0; p < k; p++)
                for (int ceil = 0; ceil < 2; ceil++)
                    for (int w = k; w <= 26; w += 5)
                        for (int kind = 0; kind < 3; kind++) {
                            tl_pool_geom g = {.c = 2, .h = k + 3, .w = w, .kh = k, .kw = k, .stride_h = st, .stride_w = st,
                                              .pad_t = p, .pad_l = p, .pad_b = p, .pad_r = p, .ceil_mode = ceil};
                            tl_pool_geom_finish(&g);
                            tl_err e = {0};
                            if (tl_pool_geom_check(&g, &e))
                                continue;
                            size_t nx = (size_t)g.c * g.h * g.w, ny = (size_t)g.c * g.oh * g.ow;
                            float *x = bw_rand(&s, nx, 1.0f), *dy = bw_rand(&s, ny, 1.0f);
                            float *dx = malloc(nx * sizeof *dx), *rx = malloc(nx * sizeof *rx);
                            for (size_t i = 0; i < nx; i++) {
                                if (kind >= 1) /* ties: a few values, as after a ReLU */
                                    x[i] = x[i] > 0 ? floorf(x[i] * 3) : 0;
                                if (kind == 2 && i % 7 == 3)
                                    x[i] = i % 2 ? NAN : -INFINITY;
                            }
                            tl_maxpool2d_backward(&g, x, dy, dx);
                            ref_max_backward(&g, x, dy, rx);
                            CHECK_MSG(!memcmp(dx, rx, nx * sizeof *dx), "max k%d s%d p%d ceil %d w %d kind %d: not the plain scan",
                                      k, st, p, ceil, w, kind);
                            n++;
                            free(x), free(dy), free(dx), free(rx);
                        }
    printf("test_backward_pool: max pooling backward = the plain scan in %d geometries\n", n);
}

static void test_torch(void)
{
    bw_ref r;
    if (bw_ref_start(&r, "test_backward_pool") <= 0)
        return;
    for (size_t c = 0; c < NCASES; c++) {
        const tl_pool_geom *g = &CASES[c].g;
        if (!CASES[c].torch)
            continue;
        if (CASES[c].max)
            fprintf(r.cases, "%s maxpool %d %d %d %d %d %d %d %d %d\n", CASES[c].name, g->c, g->h, g->w, g->kh, g->kw,
                    g->stride_h, g->stride_w, g->pad_t, g->ceil_mode);
        else
            fprintf(r.cases, "%s avgpool %d %d %d %d %d %d %d %d %d %d\n", CASES[c].name, g->c, g->h, g->w, g->kh,
                    g->kw, g->stride_h, g->stride_w, g->pad_t, g->ceil_mode, g->count_include_pad);
    }
    for (size_t c = 0; c < NADAPT; c++)
        fprintf(r.cases, "adaptive%zu adaptive 3 %d %d %d %d\n", c, ADAPT[c][0], ADAPT[c][1], ADAPT[c][2], ADAPT[c][3]);
    double worst = 0;
    if (bw_ref_run(&r, "test_backward_pool") == 1) {
        for (size_t c = 0; c < NCASES + NADAPT; c++) {
            char name[32];
            size_t nx, ny;
            pool_case pc = {0};
            if (c < NCASES) {
                pc = CASES[c];
                if (!pc.torch)
                    continue;
                tl_pool_geom_finish(&pc.g);
                snprintf(name, sizeof name, "%s", pc.name);
                nx = (size_t)pc.g.c * pc.g.h * pc.g.w, ny = (size_t)pc.g.c * pc.g.oh * pc.g.ow;
            } else {
                const int *a = ADAPT[c - NCASES];
                snprintf(name, sizeof name, "adaptive%zu", c - NCASES);
                nx = (size_t)3 * a[0] * a[1], ny = (size_t)3 * a[2] * a[3];
            }
            float *x = bw_ref_read(&r, name, "x", nx), *dy = bw_ref_read(&r, name, "dy", ny);
            float *ty = bw_ref_read(&r, name, "y", ny), *tdx = bw_ref_read(&r, name, "dx", nx);
            if (x && dy && ty && tdx) {
                float *y = malloc(ny * sizeof *y), *dx = malloc(nx * sizeof *dx);
                if (c < NCASES) {
                    forward(&pc, x, y);
                    if (pc.max)
                        tl_maxpool2d_backward(&pc.g, x, dy, dx);
                    else
                        tl_avgpool2d_backward(&pc.g, dy, dx);
                } else {
                    const int *a = ADAPT[c - NCASES];
                    tl_adaptive_avgpool(3, a[0], a[1], a[2], a[3], x, y);
                    tl_adaptive_avgpool_backward(3, a[0], a[1], a[2], a[3], dy, dx);
                }
                double ey = bw_relerr(y, ty, ny), ex = bw_relerr(dx, tdx, nx);
                worst = fmax(worst, fmax(ey, ex));
                CHECK_MSG(ey <= 1e-4 && ex <= 1e-4, "%s vs pytorch: y %g dx %g", name, ey, ex);
                free(y), free(dx);
            }
            free(x), free(dy), free(ty), free(tdx);
        }
        printf("test_backward_pool: vs pytorch, max relative error %.3g\n", worst);
    }
    bw_ref_done(&r);
}

int main(void)
{
    test_fd();
    test_max_rules();
    test_max_blocks();
    test_torch();
    printf("test_backward_pool: finite differences max abs error %.3g, adjoint %.3g\n", worst_fd, worst_adj);
    return check_finish("test_backward_pool");
}
