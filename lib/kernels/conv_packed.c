/* Inference convolution over pre-packed weights: the GEMM's B operand
 * (the im2col matrix) is packed straight from the image, one kc x nc block
 * at a time, so the matrix is never materialised and no copy is made twice;
 * 1x1 stride-1 layers pack the image itself. Depthwise layers split their
 * channels between the parts. */
#include "simd.h"

#include <string.h>

static int is_depthwise(const tl_conv_geom *g) { return g->groups == g->cin && g->cout == g->cin; }

static int is_direct(const tl_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_t == 0 && g->pad_l == 0 &&
           g->pad_b == 0 && g->pad_r == 0;
}

static int group_k(const tl_conv_geom *g) { return g->cin / g->groups * g->kh * g->kw; }
static int imin(int a, int b) { return a < b ? a : b; }
static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

size_t tl_conv_packed_floats(const tl_kws *ws, const tl_conv_geom *g)
{
    if (is_depthwise(g))
        return (size_t)g->cout * g->kh * g->kw;
    return (size_t)g->groups * tl_gemm_packed_a_floats(ws, g->cout / g->groups, group_k(g));
}

void tl_conv_pack(const tl_kws *ws, const tl_conv_geom *g, const float *w, float *packed)
{
    if (is_depthwise(g)) {
        memcpy(packed, w, sizeof(float) * g->cout * g->kh * g->kw);
        return;
    }
    int cout_g = g->cout / g->groups, K = group_k(g);
    size_t per = tl_gemm_packed_a_floats(ws, cout_g, K);
    for (int grp = 0; grp < g->groups; grp++)
        tl_gemm_pack_a(ws, cout_g, K, w + (size_t)grp * cout_g * K, K, packed + grp * per);
}

typedef struct {
    const tl_conv_geom *g;
    const float *x; /* the group's first input channel */
} im2col_src;

/* smallest o with o * s + off >= 0, and one past the largest with o * s + off <= last */
static int first_inside(int off, int s) { return off >= 0 ? 0 : (-off + s - 1) / s; }
static int end_inside(int off, int last, int s) { return off > last ? 0 : (last - off) / s + 1; }

/* Largest N-block of any SIMD path (the avx2 one). */
#define NC_MAX 1024

/* Row q of the im2col matrix is (input channel, ky, kx); column j is the
 * output pixel j. Each row of the block is gathered contiguously (a few
 * copies per output row) and then cut into the slivers. */
static void pack_b_im2col(const void *ctx, int p0, int kc, int j0, int nc, int nr, float *dst)
{
    const im2col_src *src = ctx;
    const tl_conv_geom *g = src->g;
    const int ow = g->ow, sw = g->stride_w, khw = g->kh * g->kw, ncpad = (nc + nr - 1) / nr * nr;
    const size_t sliver = (size_t)kc * nr;
    float row[NC_MAX + 64];
    for (int j = nc; j < ncpad; j++)
        row[j] = 0.0f;
    for (int p = 0; p < kc; p++) {
        int q = p0 + p, ci = q / khw, ky = q % khw / g->kw, kx = q % g->kw;
        const float *xc = src->x + (size_t)ci * g->h * g->w;
        int off = kx * g->dil_w - g->pad_l;
        int vlo = clampi(first_inside(off, sw), 0, ow), vhi = clampi(end_inside(off, g->w - 1, sw), 0, ow);
        if (vhi < vlo)
            vhi = vlo;
        int oy = j0 / ow, ox = j0 % ow;
        for (int j = 0; j < nc; oy++, ox = 0) {
            int len = imin(ow - ox, nc - j), b = ox + len;
            int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
            float *d = row + j - ox; /* indexed by output column */
            if (iy < 0 || iy >= g->h) {
                memset(d + ox, 0, sizeof(float) * len);
            } else {
                const float *xr = xc + (size_t)iy * g->w;
                int lo = clampi(vlo, ox, b), hi = clampi(vhi, lo, b);
                if (lo > ox)
                    memset(d + ox, 0, sizeof(float) * (lo - ox));
                if (sw == 1)
                    memcpy(d + lo, xr + lo + off, sizeof(float) * (hi - lo));
                else
                    for (int o = lo; o < hi; o++)
                        d[o] = xr[o * sw + off];
                if (b > hi)
                    memset(d + hi, 0, sizeof(float) * (b - hi));
            }
            j += len;
        }
        float *out = dst + (size_t)p * nr;
        if (nr == 32)
            for (int j = 0; j < ncpad; j += 32)
                memcpy(out + (size_t)(j / 32) * sliver, row + j, 32 * sizeof(float));
        else
            for (int j = 0; j < ncpad; j += nr)
                memcpy(out + (size_t)(j / nr) * sliver, row + j, (size_t)nr * sizeof(float));
    }
}

void tl_conv_forward_packed(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *packed,
                            const float *bias, int act, float *y, int part, int nparts)
{
    size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow;
    if (is_depthwise(g)) {
        int c0 = (int)((long)g->cout * part / nparts), c1 = (int)((long)g->cout * (part + 1) / nparts);
        if (c0 >= c1)
            return;
        tl_conv_geom sub = *g;
        sub.cin = sub.cout = sub.groups = c1 - c0;
        size_t taps = (size_t)g->kh * g->kw;
        tl_depthwise_forward(ws, &sub, x + c0 * in_plane, packed + c0 * taps, bias ? bias + c0 : NULL, act,
                             y + c0 * out_plane);
        return;
    }
    const int cin_g = g->cin / g->groups, cout_g = g->cout / g->groups, K = group_k(g);
    const size_t per = tl_gemm_packed_a_floats(ws, cout_g, K);
    for (int grp = 0; grp < g->groups; grp++) {
        const float *xg = x + (size_t)grp * cin_g * in_plane;
        float *yg = y + (size_t)grp * cout_g * out_plane;
        const float *bg = bias ? bias + (size_t)grp * cout_g : NULL;
        if (is_direct(g)) {
            tl_plain_b src = {xg, (int)in_plane};
            tl_gemm_pa(ws, cout_g, (int)out_plane, K, packed + grp * per, tl_pack_b_plain, &src, yg, (int)out_plane,
                       bg, act, part, nparts);
        } else {
            im2col_src src = {g, xg};
            tl_gemm_pa(ws, cout_g, (int)out_plane, K, packed + grp * per, pack_b_im2col, &src, yg, (int)out_plane,
                       bg, act, part, nparts);
        }
    }
}
