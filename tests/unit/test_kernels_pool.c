/* Max / average / global pooling against a naive reference and, when
 * /usr/bin/python3 has torch, against F.max_pool2d / F.avg_pool2d
 * (ceil_mode, count_include_pad). */
#include "check.h"
#include "kernels/kernels.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* like fmax, but a NaN difference wins so it cannot hide */
static double worse(double a, double b) { return isnan(a) || a >= b ? a : b; }

static float *rand_buf(tl_rng *r, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = tl_rng_uniform(r) * 4.0f - 2.0f;
    return p;
}

/* Straight from PyTorch's documented rules, one output at a time. */
static double pool_ref(const tl_pool_geom *g, const float *x, int c, int oy, int ox, int is_max)
{
    int hs = oy * g->stride_h - g->pad_t, ws = ox * g->stride_w - g->pad_l;
    int he = hs + g->kh, we = ws + g->kw;
    int phe = he < g->h + g->pad_b ? he : g->h + g->pad_b, pwe = we < g->w + g->pad_r ? we : g->w + g->pad_r;
    int padded = (phe - hs) * (pwe - ws), count = 0;
    double s = 0, m = -INFINITY;
    for (int iy = hs; iy < he; iy++)
        for (int ix = ws; ix < we; ix++) {
            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                continue;
            double v = x[((size_t)c * g->h + iy) * g->w + ix];
            s += v;
            m = v > m ? v : m;
            count++;
        }
    if (is_max)
        return m;
    return s / (g->count_include_pad ? padded : count);
}

static void check_pool(tl_rng *r, tl_pool_geom g)
{
    tl_err e;
    tl_pool_geom_finish(&g);
    CHECK_MSG(tl_pool_geom_check(&g, &e) == 0, "%s", e.msg);
    size_t nx = (size_t)g.c * g.h * g.w, ny = (size_t)g.c * g.oh * g.ow;
    float *x = rand_buf(r, nx), *y = malloc(ny * sizeof *y);
    for (int is_max = 0; is_max <= 1; is_max++) {
        if (is_max)
            tl_maxpool2d(&g, x, y);
        else
            tl_avgpool2d(&g, x, y);
        int bad = 0;
        for (int c = 0; c < g.c; c++)
            for (int oy = 0; oy < g.oh; oy++)
                for (int ox = 0; ox < g.ow; ox++) {
                    double ref = pool_ref(&g, x, c, oy, ox, is_max);
                    bad += !(fabs(y[((size_t)c * g.oh + oy) * g.ow + ox] - ref) <= 1e-5);
                }
        CHECK_MSG(bad == 0, "%s pool %dx%d k%dx%d s%d pad %d,%d,%d,%d ceil %d incl %d: %d bad",
                  is_max ? "max" : "avg", g.h, g.w, g.kh, g.kw, g.stride_h, g.pad_t, g.pad_l,
                  g.pad_b, g.pad_r, g.ceil_mode, g.count_include_pad, bad);
    }
    free(x);
    free(y);
}

static const char *torch_script =
    "import sys, numpy as np, torch, torch.nn.functional as F\n"
    "d = sys.argv[1]; c, h, w, k, s, p, ceil, incl = [int(v) for v in sys.argv[2:]]\n"
    "x = torch.from_numpy(np.fromfile(d + '/x', '<f4').reshape(1, c, h, w))\n"
    "a = F.avg_pool2d(x, k, s, p, ceil_mode=bool(ceil), count_include_pad=bool(incl))\n"
    "m = F.max_pool2d(x, k, s, p, ceil_mode=bool(ceil))\n"
    "torch.cat([a.flatten(), m.flatten()]).numpy().astype('<f4').tofile(d + '/y')\n";

static void torch_pool(tl_rng *r, const char *dir, int c, int h, int w, int k, int s, int p,
                       int ceil_mode, int incl)
{
    tl_pool_geom g = {.c = c, .h = h, .w = w, .kh = k, .kw = k, .stride_h = s, .stride_w = s,
                      .pad_t = p, .pad_l = p, .pad_b = p, .pad_r = p, .ceil_mode = ceil_mode,
                      .count_include_pad = incl};
    tl_pool_geom_finish(&g);
    size_t nx = (size_t)c * h * w, ny = (size_t)c * g.oh * g.ow;
    float *x = rand_buf(r, nx), *y = malloc(2 * ny * sizeof *y), *yt = malloc(2 * ny * sizeof *yt);
    char path[512], cmd[1024];
    snprintf(path, sizeof path, "%s/x", dir);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(x, sizeof *x, nx, f) == nx;
    if (f)
        ok = fclose(f) == 0 && ok;
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/pool.py %s %d %d %d %d %d %d %d %d", dir, dir,
             c, h, w, k, s, p, ceil_mode, incl);
    ok = ok && system(cmd) == 0;
    snprintf(path, sizeof path, "%s/y", dir);
    f = ok ? fopen(path, "rb") : NULL;
    ok = f && fread(yt, sizeof *yt, 2 * ny, f) == 2 * ny && fgetc(f) == EOF;
    if (f)
        fclose(f);
    CHECK_MSG(ok, "pytorch pooling reference failed (output size mismatch?): %s", cmd);
    if (ok) {
        tl_avgpool2d(&g, x, y);
        tl_maxpool2d(&g, x, y + ny);
        double worst = 0;
        for (size_t i = 0; i < 2 * ny; i++)
            worst = worse(worst, fabs(y[i] - yt[i]));
        CHECK_MSG(worst < 1e-5, "vs pytorch: max difference %g (%s)", worst, cmd);
    }
    free(x); free(y); free(yt);
}

static void test_torch(tl_rng *r)
{
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") != 0) {
        printf("test_kernels_pool: /usr/bin/python3 with torch not available, pytorch comparison skipped\n");
        return;
    }
    char dir[] = "/tmp/tl_test_pool_XXXXXX", path[512];
    if (!mkdtemp(dir)) {
        CHECK_MSG(0, "mkdtemp failed");
        return;
    }
    snprintf(path, sizeof path, "%s/pool.py", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(torch_script, f);
        fclose(f);
        torch_pool(r, dir, 3, 112, 112, 3, 2, 1, 0, 1); /* ResNet stem */
        torch_pool(r, dir, 2, 13, 13, 3, 2, 0, 1, 1);   /* SqueezeNet ceil_mode */
        torch_pool(r, dir, 2, 14, 15, 3, 2, 1, 1, 0);
        torch_pool(r, dir, 2, 10, 11, 3, 2, 1, 1, 1);
        torch_pool(r, dir, 2, 7, 9, 2, 2, 0, 0, 1);     /* VGG */
        torch_pool(r, dir, 2, 8, 8, 3, 1, 1, 0, 0);
    }
    const char *names[] = {"x", "y", "pool.py"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
    }
    rmdir(dir);
}

/* NaN anywhere in a window gives NaN, wherever it sits among the rows and
 * columns (the row-maximum pass must not drop it); rows wider than that
 * pass's buffer take the plain path. */
static void test_max_nan_and_wide(tl_rng *r)
{
    tl_pool_geom g = {.c = 2, .h = 9, .w = 21, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1,
                      .pad_b = 1, .pad_r = 1};
    tl_pool_geom_finish(&g);
    size_t nx = (size_t)g.c * g.h * g.w, ny = (size_t)g.c * g.oh * g.ow;
    float *x = rand_buf(r, nx), *y = malloc(ny * sizeof *y);
    int cells[][3] = {{0, 0, 0}, {0, 1, 5}, {0, 4, 20}, {1, 8, 7}, {1, 3, 3}, {1, 4, 12}};
    for (int k = 0; k < 6; k++)
        x[((size_t)cells[k][0] * g.h + cells[k][1]) * g.w + cells[k][2]] = NAN;
    tl_maxpool2d(&g, x, y);
    int bad = 0;
    for (int c = 0; c < g.c; c++)
        for (int oy = 0; oy < g.oh; oy++)
            for (int ox = 0; ox < g.ow; ox++) {
                int has_nan = 0;
                for (int k = 0; k < 6; k++) {
                    int dy = cells[k][1] - (oy * 2 - 1), dx = cells[k][2] - (ox * 2 - 1);
                    has_nan |= cells[k][0] == c && dy >= 0 && dy < 3 && dx >= 0 && dx < 3;
                }
                float v = y[((size_t)c * g.oh + oy) * g.ow + ox];
                if (has_nan)
                    bad += !isnan(v);
                else
                    bad += !(fabs(v - pool_ref(&g, x, c, oy, ox, 1)) <= 0);
            }
    CHECK_MSG(bad == 0, "max pool with NaN inputs: %d bad outputs", bad);
    free(x);
    free(y);
    check_pool(r, (tl_pool_geom){.c = 1, .h = 3, .w = 2100, .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 2, .pad_t = 1, .pad_l = 1});
}

int main(void)
{
    tl_rng r;
    tl_rng_seed(&r, 3);
    tl_pool_geom g = {.c = 1, .h = 112, .w = 112, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2,
                      .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1};
    tl_pool_geom_finish(&g);
    CHECK(g.oh == 56 && g.ow == 56);
    tl_pool_geom sq = {.c = 1, .h = 13, .w = 13, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .ceil_mode = 1};
    tl_pool_geom_finish(&sq);
    CHECK(sq.oh == 6); /* floor would give 6 too; 14 below differs */
    tl_pool_geom sq2 = {.c = 1, .h = 14, .w = 14, .kh = 3, .kw = 3, .ceil_mode = 1, .stride_h = 2, .stride_w = 2};
    tl_pool_geom_finish(&sq2);
    CHECK(sq2.oh == 7);
    tl_pool_geom d = {.c = 1, .h = 4, .w = 4, .kh = 2, .kw = 2};
    tl_pool_geom_finish(&d);
    CHECK(d.stride_h == 2 && d.oh == 2);
    tl_err e;
    tl_pool_geom badp = {.c = 1, .h = 4, .w = 4, .kh = 2, .kw = 2, .pad_t = 2};
    tl_pool_geom_finish(&badp);
    CHECK(tl_pool_geom_check(&badp, &e) < 0);

    for (int t = 0; t < 60; t++) {
        tl_pool_geom p = {0};
        p.c = 1 + (int)tl_rng_below(&r, 3);
        p.h = 1 + (int)tl_rng_below(&r, 15);
        p.w = 1 + (int)tl_rng_below(&r, 15);
        p.kh = 1 + (int)tl_rng_below(&r, 4);
        p.kw = 1 + (int)tl_rng_below(&r, 4);
        p.stride_h = 1 + (int)tl_rng_below(&r, 3);
        p.stride_w = 1 + (int)tl_rng_below(&r, 3);
        p.pad_t = (int)tl_rng_below(&r, (uint64_t)p.kh);
        p.pad_b = (int)tl_rng_below(&r, (uint64_t)p.kh);
        p.pad_l = (int)tl_rng_below(&r, (uint64_t)p.kw);
        p.pad_r = (int)tl_rng_below(&r, (uint64_t)p.kw);
        p.ceil_mode = (int)tl_rng_below(&r, 2);
        p.count_include_pad = (int)tl_rng_below(&r, 2);
        tl_pool_geom_finish(&p);
        if (p.oh > 0 && p.ow > 0)
            check_pool(&r, p);
    }

    float x[6] = {1, 2, 3, 4, 5, 6}, y[2];
    tl_global_avgpool(2, 3, x, y);
    CHECK_NEAR(y[0], 2.0, 1e-6);
    CHECK_NEAR(y[1], 5.0, 1e-6);
    test_max_nan_and_wide(&r);
    test_torch(&r);
    return check_finish("test_kernels_pool");
}
