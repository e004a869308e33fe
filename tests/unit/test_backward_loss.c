/* Label-smoothed softmax cross-entropy: closed-form values, finite
 * differences of the loss, the gradient's structure, huge logits, NaN/Inf
 * and bad labels, and PyTorch's F.cross_entropy(label_smoothing=). */
#include "test_backward_util.h"

static void test_values(void)
{
    float z[10] = {0}, g[10];
    /* equal logits: log k whatever the smoothing */
    CHECK_NEAR(tl_softmax_xent(10, z, 3, 0.0f, g), log(10.0), 1e-12);
    CHECK_NEAR(tl_softmax_xent(10, z, 3, 0.3f, g), log(10.0), 1e-12);
    CHECK_NEAR(g[3], 0.1 - (0.7 + 0.03), 1e-7);
    CHECK_NEAR(g[0], 0.1 - 0.03, 1e-7);
    /* two classes, no smoothing: log(1 + e^-(z_y - z_other)) */
    float z2[2] = {2.0f, -1.0f};
    CHECK_NEAR(tl_softmax_xent(2, z2, 0, 0.0f, NULL), log1p(exp(-3.0)), 1e-12);
    CHECK_NEAR(tl_softmax_xent(2, z2, 1, 0.0f, NULL), log1p(exp(3.0)), 1e-12);
    /* huge, nearly equal logits: no overflow, no cancellation */
    float big[3] = {1e30f, 1e30f, -1e30f};
    double l = tl_softmax_xent(3, big, 0, 0.0f, g);
    CHECK_NEAR(l, log(2.0), 1e-12);
    CHECK(isfinite(g[0]) && isfinite(g[2]) && fabsf(g[2]) < 1e-30f);
    float far[3] = {1e4f, -1e4f, 0.0f};
    CHECK_NEAR(tl_softmax_xent(3, far, 1, 0.0f, g), 2e4, 1e-6);
    CHECK(isfinite(tl_softmax_xent(3, far, 1, 0.1f, g)));
    /* non-finite logits and bad labels give NaN */
    float bad[3] = {0.0f, NAN, 1.0f};
    CHECK(isnan(tl_softmax_xent(3, bad, 0, 0.0f, g)) && isnan(g[0]));
    bad[1] = INFINITY;
    CHECK(isnan(tl_softmax_xent(3, bad, 0, 0.1f, g)));
    bad[1] = -INFINITY;
    CHECK(isnan(tl_softmax_xent(3, bad, 0, 0.1f, NULL)));
    CHECK(isnan(tl_softmax_xent(3, z, 3, 0.0f, NULL)) && isnan(tl_softmax_xent(3, z, -1, 0.0f, NULL)));
}

static void test_fd(void)
{
    uint64_t s = 23;
    double worst = 0;
    const float smooth[] = {0.0f, 0.1f, 0.5f};
    for (int k = 0; k < 12; k++) {
        int n = 2 + k * 3, label = k % n;
        float sm = smooth[k % 3];
        float *z = bw_rand(&s, n, 4.0f), *g = malloc(n * sizeof *g);
        tl_softmax_xent(n, z, label, sm, g);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float z0 = z[i], h = 1e-2f;
            z[i] = z0 + h;
            double lp = tl_softmax_xent(n, z, label, sm, NULL);
            z[i] = z0 - h;
            double lm = tl_softmax_xent(n, z, label, sm, NULL);
            z[i] = z0;
            double fd = (lp - lm) / ((double)(z0 + h) - (double)(z0 - h));
            worst = fmax(worst, fabs(fd - g[i]));
            sum += g[i];
        }
        CHECK_MSG(fabs(sum) < 1e-6, "gradient sums to %g, expected 0", sum);
        free(z), free(g);
    }
    CHECK_MSG(worst < 1e-4, "finite differences off by %g", worst);
    printf("test_backward_loss: finite differences max abs error %.3g\n", worst);
}

static void test_torch(void)
{
    bw_ref r;
    if (bw_ref_start(&r, "test_backward_loss") <= 0)
        return;
    const int cases[][2] = {{8, 10}, {5, 1000}, {16, 2}};
    const float smooth[] = {0.1f, 0.0f, 0.2f};
    for (int k = 0; k < 3; k++)
        fprintf(r.cases, "xent%d xent %d %d %.9g\n", k, cases[k][0], cases[k][1], smooth[k]);
    if (bw_ref_run(&r, "test_backward_loss") == 1) {
        double worst = 0;
        for (int k = 0; k < 3; k++) {
            char nm[32];
            snprintf(nm, sizeof nm, "xent%d", k);
            int b = cases[k][0], n = cases[k][1];
            float *z = bw_ref_read(&r, nm, "logits", (size_t)b * n), *lab = bw_ref_read(&r, nm, "labels", b);
            float *tl = bw_ref_read(&r, nm, "loss", b), *tg = bw_ref_read(&r, nm, "dlogits", (size_t)b * n);
            if (z && lab && tl && tg) {
                float *loss = malloc(b * sizeof *loss), *g = malloc((size_t)b * n * sizeof *g);
                for (int i = 0; i < b; i++)
                    loss[i] = (float)tl_softmax_xent(n, z + (size_t)i * n, (int)lab[i], smooth[k], g + (size_t)i * n);
                double el = bw_relerr(loss, tl, b), eg = bw_relerr(g, tg, (size_t)b * n);
                worst = fmax(worst, fmax(el, eg));
                CHECK_MSG(el <= 1e-4 && eg <= 1e-4, "%s vs pytorch: loss %g dlogits %g", nm, el, eg);
                free(loss), free(g);
            }
            free(z), free(lab), free(tl), free(tg);
        }
        printf("test_backward_loss: vs pytorch, max relative error %.3g\n", worst);
    }
    bw_ref_done(&r);
}

int main(void)
{
    test_values();
    test_fd();
    test_torch();
    return check_finish("test_backward_loss");
}
