/* Label-smoothed softmax cross-entropy: closed-form values, finite
 * differences of the loss, the gradient's structure, huge logits, NaN/Inf
 * and bad labels, and PyTorch's F.cross_entropy(label_smoothing=).
 * The sigmoid binary cross-entropy of multi-label training (train/bce.h):
 * closed forms, finite differences with positive and negative weights and
 * soft targets, huge logits, and PyTorch's
 * F.binary_cross_entropy_with_logits(pos_weight=). */
#include "test_backward_util.h"
#include "train/bce.h"

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

static void test_bce(void)
{
    /* z = 0: log 2 whatever the targets; gradient (sigmoid - t) / k */
    float z[4] = {0}, t[4] = {1, 0, 1, 0}, g[4];
    CHECK_NEAR(tl_sigmoid_bce(4, z, t, NULL, NULL, g), log(2.0), 1e-12);
    CHECK_NEAR(g[0], -0.5 / 4, 1e-7);
    CHECK_NEAR(g[1], 0.5 / 4, 1e-7);
    /* one output: log(1 + e^-z) for a positive, log(1 + e^z) for a negative */
    float z1 = 2.0f, one = 1.0f, zero = 0.0f;
    CHECK_NEAR(tl_sigmoid_bce(1, &z1, &one, NULL, NULL, NULL), log1p(exp(-2.0)), 1e-12);
    CHECK_NEAR(tl_sigmoid_bce(1, &z1, &zero, NULL, NULL, NULL), log1p(exp(2.0)), 1e-12);
    /* weights scale their own term only */
    float pw = 3.0f, nw = 0.25f;
    CHECK_NEAR(tl_sigmoid_bce(1, &z1, &one, &pw, &nw, NULL), 3 * log1p(exp(-2.0)), 1e-12);
    CHECK_NEAR(tl_sigmoid_bce(1, &z1, &zero, &pw, &nw, NULL), 0.25 * log1p(exp(2.0)), 1e-12);
    /* huge logits: no overflow, exact linear tails */
    float big[2] = {1e4f, -1e4f}, tb[2] = {0, 1};
    CHECK_NEAR(tl_sigmoid_bce(2, big, tb, NULL, NULL, g), 1e4, 1e-6);
    CHECK(fabsf(g[0] - 0.5f) < 1e-7f && fabsf(g[1] + 0.5f) < 1e-7f);
    float bad[2] = {0.0f, NAN};
    CHECK(isnan(tl_sigmoid_bce(2, bad, tb, NULL, NULL, g)) && isnan(g[0]));
    bad[1] = INFINITY;
    CHECK(isnan(tl_sigmoid_bce(2, bad, tb, NULL, NULL, NULL)));
    /* finite differences: soft targets, both weights */
    uint64_t s = 29;
    double worst = 0;
    for (int r = 0; r < 8; r++) {
        int k = 1 + r * 3;
        float *zz = bw_rand(&s, k, 4.0f), *tt = bw_rand(&s, k, 1.0f), *pp = bw_rand(&s, k, 1.0f),
              *nn = bw_rand(&s, k, 1.0f), *gg = malloc(k * sizeof *gg);
        for (int i = 0; i < k; i++) {
            tt[i] = r % 2 ? (tt[i] > 0) : 0.5f + 0.4f * tanhf(tt[i]);
            pp[i] = 0.2f + fabsf(pp[i]);
            nn[i] = 0.2f + fabsf(nn[i]);
        }
        tl_sigmoid_bce(k, zz, tt, pp, r % 3 ? nn : NULL, gg);
        for (int i = 0; i < k; i++) {
            float z0 = zz[i], h = 1e-2f;
            zz[i] = z0 + h;
            double lp = tl_sigmoid_bce(k, zz, tt, pp, r % 3 ? nn : NULL, NULL);
            zz[i] = z0 - h;
            double lm = tl_sigmoid_bce(k, zz, tt, pp, r % 3 ? nn : NULL, NULL);
            zz[i] = z0;
            worst = fmax(worst, fabs((lp - lm) / ((double)(z0 + h) - (double)(z0 - h)) - gg[i]));
        }
        free(zz), free(tt), free(pp), free(nn), free(gg);
    }
    CHECK_MSG(worst < 1e-4, "bce: finite differences off by %g", worst);
    printf("test_backward_loss: bce finite differences max abs error %.3g\n", worst);
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
    fprintf(r.cases, "bce0 bce 6 7\nbce1 bce 3 300\n");
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
        const int bces[][2] = {{6, 7}, {3, 300}};
        for (int k = 0; k < 2; k++) {
            char nm[32];
            snprintf(nm, sizeof nm, "bce%d", k);
            int b = bces[k][0], n = bces[k][1];
            float *z = bw_ref_read(&r, nm, "logits", (size_t)b * n), *t = bw_ref_read(&r, nm, "targets", (size_t)b * n);
            float *pw = bw_ref_read(&r, nm, "posw", n), *tl = bw_ref_read(&r, nm, "loss", b);
            float *tg = bw_ref_read(&r, nm, "dlogits", (size_t)b * n);
            if (z && t && pw && tl && tg) {
                float *loss = malloc(b * sizeof *loss), *g = malloc((size_t)b * n * sizeof *g);
                for (int i = 0; i < b; i++)
                    loss[i] = (float)tl_sigmoid_bce(n, z + (size_t)i * n, t + (size_t)i * n, pw, NULL, g + (size_t)i * n);
                double el = bw_relerr(loss, tl, b), eg = bw_relerr(g, tg, (size_t)b * n);
                worst = fmax(worst, fmax(el, eg));
                CHECK_MSG(el <= 1e-5 && eg <= 1e-5, "%s vs pytorch: loss %g dlogits %g", nm, el, eg);
                free(loss), free(g);
            }
            free(z), free(t), free(pw), free(tl), free(tg);
        }
        printf("test_backward_loss: vs pytorch, max relative error %.3g\n", worst);
    }
    bw_ref_done(&r);
}

int main(void)
{
    test_values();
    test_fd();
    test_bce();
    test_torch();
    return check_finish("test_backward_loss");
}
