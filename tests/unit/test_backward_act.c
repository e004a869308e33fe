/* Activation derivatives: finite differences through tl_activation away
 * from the kinks, PyTorch's values at the kinks, in-place use, and PyTorch
 * autograd (the reference inputs include the kinks). */
#include "test_backward_util.h"

static const char *NAMES[] = {"none", "relu", "relu6", "sigmoid", "silu", "hardsigmoid", "hardswish", "gelu"};
#define NACT 8

static float act1(int act, float v)
{
    tl_activation(act, &v, 1);
    return v;
}

static int near_kink(int act, float v)
{
    static const float kinks[] = {0.0f, 6.0f, -3.0f, 3.0f};
    for (int i = 0; i < 4; i++)
        if (fabsf(v - kinks[i]) < 0.05f)
            return act == TL_ACT_RELU || act == TL_ACT_RELU6 || act == TL_ACT_HARDSIGMOID || act == TL_ACT_HARDSWISH;
    return 0;
}

static void test_fd(void)
{
    uint64_t s = 3;
    double worst_all = 0;
    for (int act = 0; act < NACT; act++) {
        enum { N = 400 };
        float x[N], ones[N], dx[N];
        for (int i = 0; i < N; i++) {
            do
                x[i] = bw_uniform(&s) * 8.0f;
            while (near_kink(act, x[i]));
            ones[i] = 1.0f;
        }
        tl_activation_backward(act, x, ones, dx, N);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            float h = 1e-2f;
            double fd = ((double)act1(act, x[i] + h) - act1(act, x[i] - h)) / ((double)(x[i] + h) - (x[i] - h));
            worst = fmax(worst, fabs(fd - dx[i]) / fmax(1.0, fabs(fd)));
        }
        worst_all = fmax(worst_all, worst);
        CHECK_MSG(worst < 1e-3, "%s: finite differences off by %g", NAMES[act], worst);

        /* dx may alias dy, and dy scales the result */
        float dy[N], d2[N];
        for (int i = 0; i < N; i++)
            dy[i] = d2[i] = bw_uniform(&s);
        tl_activation_backward(act, x, dy, dx, N);
        tl_activation_backward(act, x, d2, d2, N);
        int same = !memcmp(dx, d2, sizeof dx);
        CHECK_MSG(same, "%s: in-place result differs", NAMES[act]);
    }
    printf("test_backward_act: finite differences max relative error %.3g\n", worst_all);
}

static void test_kinks(void)
{
    const float x[] = {-3.0f, 0.0f, 3.0f, 6.0f, 1e30f, -1e30f};
    const float want[][6] = {
        [TL_ACT_RELU] = {0, 0, 1, 1, 1, 0},
        [TL_ACT_RELU6] = {0, 0, 1, 0, 0, 0},
        [TL_ACT_HARDSIGMOID] = {0, 1.0f / 6.0f, 0, 0, 0, 0},
        [TL_ACT_HARDSWISH] = {-0.5f, 0.5f, 1, 1, 1, 0},
    };
    const int acts[] = {TL_ACT_RELU, TL_ACT_RELU6, TL_ACT_HARDSIGMOID, TL_ACT_HARDSWISH};
    float dy[6] = {1, 1, 1, 1, 1, 1}, dx[6];
    for (int k = 0; k < 4; k++) {
        tl_activation_backward(acts[k], x, dy, dx, 6);
        for (int i = 0; i < 6; i++)
            CHECK_MSG(fabsf(dx[i] - want[acts[k]][i]) < 1e-7f, "%s'(%g) = %g, expected %g", NAMES[acts[k]], x[i], dx[i],
                      want[acts[k]][i]);
    }
    /* the smooth ones stay finite at the extremes */
    for (int act = TL_ACT_SIGMOID; act < NACT; act++) {
        tl_activation_backward(act, x, dy, dx, 6);
        for (int i = 0; i < 6; i++)
            CHECK_MSG(isfinite(dx[i]), "%s'(%g) = %g", NAMES[act], x[i], dx[i]);
    }
    tl_activation_backward(TL_ACT_GELU, x, dy, dx, 2);
    CHECK_NEAR(dx[1], 0.5, 1e-7); /* gelu'(0) = Phi(0) */
}

static void test_torch(void)
{
    bw_ref r;
    if (bw_ref_start(&r, "test_backward_act") <= 0)
        return;
    enum { N = 1000 };
    for (int act = 0; act < NACT; act++)
        fprintf(r.cases, "%s act %d %d\n", NAMES[act], act, N);
    double worst = 0;
    if (bw_ref_run(&r, "test_backward_act") == 1) {
        for (int act = 0; act < NACT; act++) {
            float *x = bw_ref_read(&r, NAMES[act], "x", N), *dy = bw_ref_read(&r, NAMES[act], "dy", N);
            float *ty = bw_ref_read(&r, NAMES[act], "y", N), *tdx = bw_ref_read(&r, NAMES[act], "dx", N);
            if (x && dy && ty && tdx) {
                float y[N], dx[N];
                memcpy(y, x, sizeof y);
                tl_activation(act, y, N);
                tl_activation_backward(act, x, dy, dx, N);
                double ey = bw_relerr(y, ty, N), ex = bw_relerr(dx, tdx, N);
                worst = fmax(worst, fmax(ey, ex));
                CHECK_MSG(ey <= 1e-4 && ex <= 1e-4, "%s vs pytorch: y %g dx %g", NAMES[act], ey, ex);
                /* and exactly at the kinks (the first 7 inputs) */
                for (int i = 0; i < 7; i++)
                    CHECK_MSG(fabsf(dx[i] - tdx[i]) <= 1e-6f * fabsf(tdx[i]) + 1e-7f, "%s at x = %g: %g vs pytorch %g",
                              NAMES[act], x[i], dx[i], tdx[i]);
            }
            free(x), free(dy), free(ty), free(tdx);
        }
        printf("test_backward_act: vs pytorch, max relative error %.3g\n", worst);
    }
    bw_ref_done(&r);
}

/* The masked derivatives (ReLU, ReLU6, hard-sigmoid) run 4, 8 or 16 lanes a
 * step by path: the same bits on every path, tails included, dx == dy too. */
static void test_paths(void)
{
    const int acts[] = {TL_ACT_RELU, TL_ACT_RELU6, TL_ACT_HARDSIGMOID};
    const size_t N = 16 * 9 + 7;
    uint64_t s = 17;
    float *x = bw_rand(&s, N, 8.0f), *dy = bw_rand(&s, N, 1.0f);
    x[0] = 0.0f, x[1] = 6.0f, x[2] = -3.0f, x[3] = 3.0f; /* kinks */
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        float *ref = bw_zeros(N), *dx = bw_zeros(N), *inplace = bw_zeros(N);
        setenv("TL_SIMD", "scalar", 1);
        tl_activation_backward(acts[a], x, dy, ref, N);
        for (int k = 1; k < BW_NPATHS; k++) {
            if (!bw_use_path(k))
                continue;
            tl_activation_backward(acts[a], x, dy, dx, N);
            memcpy(inplace, dy, N * sizeof(float));
            tl_activation_backward(acts[a], x, inplace, inplace, N);
            CHECK_MSG(!memcmp(dx, ref, N * sizeof(float)) && !memcmp(inplace, ref, N * sizeof(float)),
                      "activation %d: %s backward differs from scalar", acts[a], BW_PATHS[k]);
        }
        unsetenv("TL_SIMD");
        free(ref), free(dx), free(inplace);
    }
    free(x), free(dy);
}

int main(void)
{
    test_paths();
    test_fd();
    test_kinks();
    test_torch();
    return check_finish("test_backward_act");
}
