/* The im2col walker: which input cells row (channel, ky, kx) of the
 * im2col matrix reads for a run of output pixels, worked out once per
 * output row: a copy (or a strided gather) of the cells inside the image
 * and zeros for the padding. The forward packing, the backward data
 * gradient (col2im) and the weight gradient all walk it the same way. */
#include "conv_internal.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* y += x in fixed 16-wide blocks over restrict pointers, which GCC
 * vectorises at -O2 (the indexed scatter loop it leaves scalar). */
static void add_to(float *restrict y, const float *restrict x, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (size_t j = i; j < i + 16; j++)
            y[j] += x[j];
    for (; i < n; i++)
        y[i] += x[i];
}

/* d[ox] = xr[2 ox + off] for ox in [a, b): the even lanes of pairs of
 * vectors, as long as the loads stay inside the row of w floats. Also the
 * stem's split of a row into its stride-2 phases (conv_stem.c). */
void tl_gather2(const float *xr, int off, int a, int b, int w, float *d)
{
    int ox = a;
#if defined(__SSE2__)
    for (; ox + 4 <= b && 2 * ox + off + 8 <= w; ox += 4) {
        __m128 lo = _mm_loadu_ps(xr + 2 * ox + off), hi = _mm_loadu_ps(xr + 2 * ox + off + 4);
        _mm_storeu_ps(d + ox, _mm_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)));
    }
#endif
    for (; ox < b; ox++)
        d[ox] = xr[2 * ox + off];
}

static inline __attribute__((always_inline)) void walk(const tl_conv_geom *g, float *x, size_t cs, int q0, int nq,
                                                       int c0, int nc, float *col, size_t ld, int scatter)
{
    const int ow = g->ow, sw = g->stride_w, khw = g->kh * g->kw;
    float *row = col;
    for (int q = q0; q < q0 + nq; q++, row += ld) {
        int ci = q / khw, ky = q % khw / g->kw, kx = q % g->kw;
        float *xc = x + (size_t)ci * cs;
        int off = kx * g->dil_w - g->pad_l;
        int vlo = tl_clampi(tl_first_inside(off, sw), 0, ow), vhi = tl_clampi(tl_end_inside(off, g->w - 1, sw), 0, ow);
        if (vhi < vlo)
            vhi = vlo;
        for (int p = c0; p < c0 + nc;) {
            int oy = p / ow, ox0 = p % ow;
            int ox1 = ox0 + (c0 + nc - p) < ow ? ox0 + (c0 + nc - p) : ow;
            float *d = row + (p - c0); /* d[ox - ox0] is column (oy, ox) */
            int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
            int inside = iy >= 0 && iy < g->h;
            int a = inside ? tl_clampi(vlo, ox0, ox1) : ox1, b = inside ? tl_clampi(vhi, a, ox1) : ox1;
            float *xr = xc + (size_t)(inside ? iy : 0) * g->w;
            if (scatter) {
                if (sw == 1 && b > a)
                    add_to(xr + a + off, d + (a - ox0), (size_t)(b - a));
                else
                    for (int ox = a; ox < b; ox++)
                        xr[ox * sw + off] += d[ox - ox0];
            } else {
                if (a > ox0)
                    memset(d, 0, sizeof(float) * (size_t)(a - ox0));
                if (sw == 1 && b > a)
                    memcpy(d + (a - ox0), xr + a + off, sizeof(float) * (size_t)(b - a));
                else if (sw == 2)
                    tl_gather2(xr, off, a, b, g->w, d - ox0);
                else
                    for (int ox = a; ox < b; ox++)
                        d[ox - ox0] = xr[ox * sw + off];
                if (ox1 > b)
                    memset(d + (b - ox0), 0, sizeof(float) * (size_t)(ox1 - b));
            }
            p += ox1 - ox0;
        }
    }
}

void tl_im2col_gather(const tl_conv_geom *g, const float *x, int q0, int nq, int c0, int nc, float *col, size_t ld)
{
    walk(g, (float *)x, (size_t)g->h * g->w, q0, nq, c0, nc, col, ld, 0); /* gather never writes x */
}

void tl_im2col_gather_cs(const tl_conv_geom *g, const float *x, size_t cs, int q0, int nq, int c0, int nc,
                         float *col, size_t ld)
{
    walk(g, (float *)x, cs, q0, nq, c0, nc, col, ld, 0);
}

void tl_col2im_add(const tl_conv_geom *g, float *x, int q0, int nq, int c0, int nc, const float *col, size_t ld)
{
    walk(g, x, (size_t)g->h * g->w, q0, nq, c0, nc, (float *)col, ld, 1); /* scatter never writes col */
}
