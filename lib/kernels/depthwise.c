/* Depthwise convolution (groups == cin == cout): one channel plane at a
 * time through the workspace's SIMD path; the borders and the portable
 * path share the scalar pieces here. */
#include "simd.h"

#include <string.h>

float tl_dw_point(const tl_conv_geom *g, const float *x, const float *w, int oy, int ox)
{
    float s = 0.0f;
    for (int ky = 0; ky < g->kh; ky++) {
        int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
        if (iy < 0 || iy >= g->h)
            continue;
        for (int kx = 0; kx < g->kw; kx++) {
            int ix = ox * g->stride_w - g->pad_l + kx * g->dil_w;
            if (ix >= 0 && ix < g->w)
                s += w[ky * g->kw + kx] * x[(size_t)iy * g->w + ix];
        }
    }
    return s;
}

/* smallest ox with ox * s + off >= 0 (off may be negative) */
static int first_inside(int off, int s)
{
    if (off >= 0)
        return 0;
    return (-off + s - 1) / s;
}

/* one past the largest ox with ox * s + off <= last */
static int end_inside(int off, int last, int s)
{
    if (off > last)
        return 0;
    return (last - off) / s + 1;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void tl_dw_interior(const tl_conv_geom *g, int *ox_lo, int *ox_hi)
{
    int lo = clampi(first_inside(-g->pad_l, g->stride_w), 0, g->ow);
    int hi = clampi(end_inside(-g->pad_l + (g->kw - 1) * g->dil_w, g->w - 1, g->stride_w), 0, g->ow);
    *ox_lo = lo;
    *ox_hi = hi > lo ? hi : lo;
}

/* Each tap is a strided axpy over the output columns that see the input. */
void tl_dw_plane_scalar(const tl_conv_geom *g, const float *x, const float *w, float bias, int act,
                        float *y)
{
    const int s = g->stride_w;
    for (int oy = 0; oy < g->oh; oy++) {
        float *yr = y + (size_t)oy * g->ow;
        for (int ox = 0; ox < g->ow; ox++)
            yr[ox] = bias;
        for (int ky = 0; ky < g->kh; ky++) {
            int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
            if (iy < 0 || iy >= g->h)
                continue;
            const float *xr = x + (size_t)iy * g->w;
            for (int kx = 0; kx < g->kw; kx++) {
                int off = kx * g->dil_w - g->pad_l;
                int lo = clampi(first_inside(off, s), 0, g->ow);
                int hi = clampi(end_inside(off, g->w - 1, s), 0, g->ow);
                float wv = w[ky * g->kw + kx];
                if (s == 1)
                    for (int ox = lo; ox < hi; ox++)
                        yr[ox] += wv * xr[ox + off];
                else
                    for (int ox = lo; ox < hi; ox++)
                        yr[ox] += wv * xr[ox * s + off];
            }
        }
        if (act == TL_ACT_RELU || act == TL_ACT_RELU6)
            for (int ox = 0; ox < g->ow; ox++)
                yr[ox] = tl_clamp_act(act, yr[ox]);
    }
}

void tl_depthwise_forward(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w,
                          const float *bias, int act, float *y)
{
    size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow;
    size_t taps = (size_t)g->kh * g->kw;
    int post = act != TL_ACT_NONE && act != TL_ACT_RELU && act != TL_ACT_RELU6;
    for (int c = 0; c < g->cout; c++) {
        float *yc = y + c * out_plane;
        ws->impl->dw_plane(g, x + c * in_plane, w + c * taps, bias ? bias[c] : 0.0f, act, yc);
        if (post)
            tl_activation(act, yc, out_plane);
    }
}
