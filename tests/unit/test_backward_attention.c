/* Attention core: forward against a direct double computation, backward
 * by finite differences of <dctx, ctx>, across SIMD paths, and against
 * PyTorch autograd. */
#include "test_backward_util.h"

static const int SHAPES[][3] = {{5, 8, 2}, {7, 12, 3}, {1, 4, 1}, {4, 6, 1}};
#define NSHAPES (sizeof SHAPES / sizeof SHAPES[0])

typedef struct {
    tl_kws *ws;
    int t, d, heads;
    float *qkv, *dctx;
} attn_ctx;

static double attn_loss(void *p)
{
    attn_ctx *a = p;
    size_t nc = (size_t)a->t * a->d;
    float *ctx = malloc(nc * sizeof *ctx), *probs = malloc((size_t)a->heads * a->t * a->t * sizeof *probs);
    tl_attention_core_forward(a->ws, a->t, a->d, a->heads, a->qkv, ctx, probs);
    double l = bw_dot(ctx, a->dctx, nc);
    free(ctx), free(probs);
    return l;
}

static void naive_forward(int t, int d, int heads, const float *qkv, double *ctx, double *probs)
{
    int dh = d / heads;
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < t; i++) {
            double *p = probs + ((size_t)h * t + i) * t, mx = -INFINITY, sum = 0;
            for (int j = 0; j < t; j++) {
                double s = 0;
                for (int e = 0; e < dh; e++)
                    s += (double)qkv[(size_t)i * 3 * d + h * dh + e] * qkv[(size_t)j * 3 * d + d + h * dh + e];
                p[j] = s / sqrt(dh);
                mx = fmax(mx, p[j]);
            }
            for (int j = 0; j < t; j++)
                sum += p[j] = exp(p[j] - mx);
            for (int j = 0; j < t; j++)
                p[j] /= sum;
            for (int e = 0; e < dh; e++) {
                double s = 0;
                for (int j = 0; j < t; j++)
                    s += p[j] * qkv[(size_t)j * 3 * d + 2 * d + h * dh + e];
                ctx[(size_t)i * d + h * dh + e] = s;
            }
        }
}

static void test_fd(tl_kws *ws)
{
    uint64_t s = 17;
    double worst_fd = 0, worst_fwd = 0, worst_simd = 0;
    tl_err e = {0};
    tl_kws *scalar = tl_kws_new_simd("scalar", &e);
    CHECK(scalar != NULL);
    for (size_t k = 0; k < NSHAPES; k++) {
        int t = SHAPES[k][0], d = SHAPES[k][1], heads = SHAPES[k][2];
        size_t nq = (size_t)t * 3 * d, nc = (size_t)t * d, np = (size_t)heads * t * t;
        attn_ctx a = {ws, t, d, heads, bw_rand(&s, nq, 1.5f), bw_rand(&s, nc, 1.0f)};
        float *ctx = malloc(nc * sizeof *ctx), *probs = malloc(np * sizeof *probs), *dqkv = malloc(nq * sizeof *dqkv);
        float *scratch = malloc(tl_attention_core_scratch_floats(t, d, heads) * sizeof *scratch);
        double *rc = malloc(nc * sizeof *rc), *rp = malloc(np * sizeof *rp);
        tl_attention_core_forward(ws, t, d, heads, a.qkv, ctx, probs);
        naive_forward(t, d, heads, a.qkv, rc, rp);
        double ef = fmax(bw_relerr_d(ctx, rc, nc), bw_relerr_d(probs, rp, np));
        worst_fwd = fmax(worst_fwd, ef);
        CHECK_MSG(ef < 1e-5, "attention %d %d %d: forward off by %g", t, d, heads, ef);
        for (size_t i = 0; i < nq; i++)
            dqkv[i] = NAN;
        tl_attention_core_backward(ws, t, d, heads, a.qkv, probs, a.dctx, dqkv, scratch);
        double dd = 0, m = 0;
        for (size_t i = 0; i < nq; i++) {
            float p0 = a.qkv[i], h = 1e-2f;
            a.qkv[i] = p0 + h;
            double lp = attn_loss(&a);
            a.qkv[i] = p0 - h;
            double lm = attn_loss(&a);
            a.qkv[i] = p0;
            double fd = (lp - lm) / ((double)(p0 + h) - (double)(p0 - h));
            dd = fmax(dd, fabs(fd - dqkv[i]));
            m = fmax(m, fabs(dqkv[i]));
        }
        double efd = m > 0 ? dd / m : dd;
        worst_fd = fmax(worst_fd, efd);
        CHECK_MSG(efd < 1e-2, "attention %d %d %d: finite differences off by %g", t, d, heads, efd);
        if (scalar) {
            float *d2 = malloc(nq * sizeof *d2), *p2 = malloc(np * sizeof *p2), *c2 = malloc(nc * sizeof *c2);
            tl_attention_core_forward(scalar, t, d, heads, a.qkv, c2, p2);
            tl_attention_core_backward(scalar, t, d, heads, a.qkv, p2, a.dctx, d2, scratch);
            double es = fmax(bw_relerr(d2, dqkv, nq), bw_relerr(c2, ctx, nc));
            worst_simd = fmax(worst_simd, es);
            CHECK_MSG(es < 1e-5, "attention %d %d %d: scalar path differs by %g", t, d, heads, es);
            free(d2), free(p2), free(c2);
        }
        free(a.qkv), free(a.dctx), free(ctx), free(probs), free(dqkv), free(scratch), free(rc), free(rp);
    }
    tl_kws_free(scalar);
    printf("test_backward_attention: forward vs double %.3g, finite differences %.3g, scalar vs %s %.3g\n", worst_fwd,
           worst_fd, tl_kws_simd_name(ws), worst_simd);
}

static void test_torch(tl_kws *ws)
{
    bw_ref r;
    if (bw_ref_start(&r, "test_backward_attention") <= 0)
        return;
    const int cases[][3] = {{17, 32, 4}, {50, 48, 3}, {9, 16, 1}};
    for (int k = 0; k < 3; k++)
        fprintf(r.cases, "attn%d attn %d %d %d\n", k, cases[k][0], cases[k][1], cases[k][2]);
    if (bw_ref_run(&r, "test_backward_attention") == 1) {
        double worst = 0;
        for (int k = 0; k < 3; k++) {
            char nm[32];
            snprintf(nm, sizeof nm, "attn%d", k);
            int t = cases[k][0], d = cases[k][1], heads = cases[k][2];
            size_t nq = (size_t)t * 3 * d, nc = (size_t)t * d, np = (size_t)heads * t * t;
            float *qkv = bw_ref_read(&r, nm, "qkv", nq), *dctx = bw_ref_read(&r, nm, "dctx", nc);
            float *tc = bw_ref_read(&r, nm, "ctx", nc), *tp = bw_ref_read(&r, nm, "probs", np);
            float *tdq = bw_ref_read(&r, nm, "dqkv", nq);
            if (qkv && dctx && tc && tp && tdq) {
                float *ctx = malloc(nc * sizeof *ctx), *probs = malloc(np * sizeof *probs), *dqkv = malloc(nq * sizeof *dqkv);
                float *scratch = malloc(tl_attention_core_scratch_floats(t, d, heads) * sizeof *scratch);
                tl_attention_core_forward(ws, t, d, heads, qkv, ctx, probs);
                tl_attention_core_backward(ws, t, d, heads, qkv, probs, dctx, dqkv, scratch);
                double ec = bw_relerr(ctx, tc, nc), ep = bw_relerr(probs, tp, np), ed = bw_relerr(dqkv, tdq, nq);
                double m = fmax(ec, fmax(ep, ed));
                worst = fmax(worst, m);
                CHECK_MSG(m <= 1e-4, "%s vs pytorch: ctx %g probs %g dqkv %g", nm, ec, ep, ed);
                free(ctx), free(probs), free(dqkv), free(scratch);
            }
            free(qkv), free(dctx), free(tc), free(tp), free(tdq);
        }
        printf("test_backward_attention: vs pytorch, max relative error %.3g\n", worst);
    }
    bw_ref_done(&r);
}

int main(void)
{
    tl_err e = {0};
    tl_kws *ws = tl_kws_new(&e);
    CHECK(ws != NULL);
    if (!ws)
        return check_finish("test_backward_attention");
    test_fd(ws);
    test_torch(ws);
    tl_kws_free(ws);
    return check_finish("test_backward_attention");
}
