/* Scaled dot-product self-attention of one sequence, the projections
 * excluded (they are linear layers), forward and backward:
 *   S = scale Q K^T, P = softmax_rows(S), C = P V;
 *   dV = P^T dC, dP = dC V^T, dS = P o (dP - rowsum(P o dP)),
 *   dQ = scale dS K, dK = scale dS^T Q. */
#include "act_internal.h"
#include "simd.h"

#include <math.h>

/* Head h: p (t x t) = softmax(scale q k^T), ctx's columns of the head = p v. */
static void head_forward(tl_kws *ws, int t, int d, int heads, int h, const float *qkv, float *ctx, float *p)
{
    const int dh = d / heads, ld = 3 * d;
    const float scale = 1.0f / sqrtf((float)dh);
    const float *q = qkv + (size_t)h * dh, *k = q + d, *v = q + 2 * d;
    tl_sgemm(ws, 0, 1, t, t, dh, scale, q, ld, k, ld, 0.0f, p, t);
    tl_softmax_rows_for(ws->impl->level)(p, t, t);
    tl_sgemm(ws, 0, 0, t, dh, t, 1.0f, p, t, v, ld, 0.0f, ctx + (size_t)h * dh, d);
}

void tl_attention_heads_range(tl_kws *ws, int t, int d, int heads, int h0, int h1, const float *qkv, float *ctx,
                              float *scratch)
{
    for (int h = h0; h < h1; h++)
        head_forward(ws, t, d, heads, h, qkv, ctx, scratch);
}

size_t tl_attention_core_scratch_floats(int t, int d, int heads) { return (size_t)t * t; }

void tl_attention_core_forward(tl_kws *ws, int t, int d, int heads, const float *qkv, float *ctx, float *probs)
{
    for (int h = 0; h < heads; h++)
        head_forward(ws, t, d, heads, h, qkv, ctx, probs + (size_t)h * t * t);
}

void tl_attention_core_backward(tl_kws *ws, int t, int d, int heads, const float *qkv, const float *probs,
                                const float *dctx, float *dqkv, float *scratch)
{
    const int dh = d / heads, ld = 3 * d;
    const float scale = 1.0f / sqrtf((float)dh);
    float *ds = scratch; /* t x t: dP, then dS in place */
    for (int h = 0; h < heads; h++) {
        const float *q = qkv + (size_t)h * dh, *k = q + d, *v = q + 2 * d;
        const float *p = probs + (size_t)h * t * t, *dc = dctx + (size_t)h * dh;
        float *dq = dqkv + (size_t)h * dh, *dk = dq + d, *dv = dq + 2 * d;
        tl_sgemm(ws, 1, 0, t, dh, t, 1.0f, p, t, dc, d, 0.0f, dv, ld);
        tl_sgemm(ws, 0, 1, t, t, dh, 1.0f, dc, d, v, ld, 0.0f, ds, t);
        for (int i = 0; i < t; i++) {
            const float *pr = p + (size_t)i * t;
            float *sr = ds + (size_t)i * t;
            double dot = 0;
            for (int j = 0; j < t; j++)
                dot += (double)pr[j] * sr[j];
            float fd = (float)dot;
            for (int j = 0; j < t; j++)
                sr[j] = pr[j] * (sr[j] - fd);
        }
        tl_sgemm(ws, 0, 0, t, dh, t, scale, ds, t, k, ld, 0.0f, dq, ld);
        tl_sgemm(ws, 1, 0, t, dh, t, scale, ds, t, q, ld, 0.0f, dk, ld);
    }
}
