/* The pieces of a Vision Transformer block that are not plain GEMMs:
 * layer norm and multi-head self-attention (whose projections are). */
#include "kernels.h"
#include "pool_window.h"

#include <math.h>
#include <string.h>

void tl_layernorm(int rows, int d, const float *x, const float *gamma, const float *beta, float eps, float *y)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * d;
        float *yr = y + (size_t)r * d;
        /* Two passes in double: the mean first, then the centred squares,
         * which stays accurate when |mean| >> std. */
        double sum = 0;
        for (int i = 0; i < d; i++)
            sum += xr[i];
        double mean = sum / d, sq = 0;
        for (int i = 0; i < d; i++) {
            double c = xr[i] - mean;
            sq += c * c;
        }
        float inv = (float)(1.0 / sqrt(sq / d + eps)), m = (float)mean;
        for (int i = 0; i < d; i++)
            yr[i] = (xr[i] - m) * inv * gamma[i] + beta[i];
    }
}

size_t tl_attention_scratch_floats(int t, int d) { return (size_t)t * d * 4 + (size_t)t * t; }

void tl_attention_heads_range(tl_kws *ws, int t, int d, int heads, int h0, int h1, const float *qkv, float *ctx,
                              float *att)
{
    int dh = d / heads;
    float scale = 1.0f / sqrtf((float)dh);
    for (int h = h0; h < h1; h++) {
        const float *q = qkv + (size_t)h * dh, *k = qkv + d + (size_t)h * dh, *v = qkv + 2 * d + (size_t)h * dh;
        /* att = scale * Q K^T, then row softmax, then ctx_h = att V. */
        tl_sgemm(ws, 0, 1, t, t, dh, scale, q, 3 * d, k, 3 * d, 0.0f, att, t);
        for (int i = 0; i < t; i++)
            tl_softmax(att + (size_t)i * t, att + (size_t)i * t, t);
        tl_sgemm(ws, 0, 0, t, dh, t, 1.0f, att, t, v, 3 * d, 0.0f, ctx + (size_t)h * dh, d);
    }
}

void tl_attention_heads(tl_kws *ws, int t, int d, int heads, const float *qkv, float *ctx, float *att)
{
    tl_attention_heads_range(ws, t, d, heads, 0, heads, qkv, ctx, att);
}

void tl_attention_forward(tl_kws *ws, int t, int d, int heads, const float *x, const float *w_in, const float *b_in,
                          const float *w_out, const float *b_out, float *y, float *scratch)
{
    float *qkv = scratch;                  /* t x 3d */
    float *ctx = qkv + (size_t)t * d * 3;  /* t x d */
    float *att = ctx + (size_t)t * d;      /* t x t */
    tl_linear_forward(ws, t, d, 3 * d, x, w_in, b_in, qkv);
    tl_attention_heads(ws, t, d, heads, qkv, ctx, att);
    tl_linear_forward(ws, t, d, d, ctx, w_out, b_out, y);
}

void tl_adaptive_avgpool(int c, int h, int w, int oh, int ow, const float *x, float *y)
{
    for (int ch = 0; ch < c; ch++) {
        const float *xc = x + (size_t)ch * h * w;
        for (int i = 0; i < oh; i++) {
            int y0, y1;
            tl_adaptive_cell(i, oh, h, &y0, &y1);
            for (int j = 0; j < ow; j++) {
                int x0, x1;
                tl_adaptive_cell(j, ow, w, &x0, &x1);
                double s = 0;
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++)
                        s += xc[(size_t)yy * w + xx];
                y[((size_t)ch * oh + i) * ow + j] = (float)(s / ((y1 - y0) * (x1 - x0)));
            }
        }
    }
}
