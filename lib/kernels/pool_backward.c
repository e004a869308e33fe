/* Pooling backward over one image: each output's gradient goes back to the
 * input cells its window read, with the forward pass's windows and
 * divisors (see pool.c); sums into dx run in output order. */
#include "backward.h"

#include <string.h>

#include "pool_window.h"


void tl_maxpool2d_backward(const tl_pool_geom *g, const float *x, const float *dy, float *dx)
{
    memset(dx, 0, sizeof(float) * (size_t)g->c * g->h * g->w);
    for (int c = 0; c < g->c; c++) {
        const float *xc = x + (size_t)c * g->h * g->w, *dyc = dy + (size_t)c * g->oh * g->ow;
        float *dxc = dx + (size_t)c * g->h * g->w;
        for (int oy = 0; oy < g->oh; oy++) {
            int y0, y1, py;
            tl_pool_window(oy, g->kh, g->stride_h, g->pad_t, g->pad_b, g->h, &y0, &y1, &py);
            for (int ox = 0; ox < g->ow; ox++) {
                int x0, x1, px;
                tl_pool_window(ox, g->kw, g->stride_w, g->pad_l, g->pad_r, g->w, &x0, &x1, &px);
                if (y1 <= y0 || x1 <= x0)
                    continue;
                /* PyTorch's scan: start at the first cell, take strictly larger values or any NaN */
                size_t best = (size_t)y0 * g->w + x0;
                float m = -__builtin_inff();
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        size_t at = (size_t)iy * g->w + ix;
                        float v = xc[at];
                        if (v > m || v != v) {
                            m = v;
                            best = at;
                        }
                    }
                dxc[best] += dyc[(size_t)oy * g->ow + ox];
            }
        }
    }
}

void tl_avgpool2d_backward(const tl_pool_geom *g, const float *dy, float *dx)
{
    memset(dx, 0, sizeof(float) * (size_t)g->c * g->h * g->w);
    for (int c = 0; c < g->c; c++) {
        const float *dyc = dy + (size_t)c * g->oh * g->ow;
        float *dxc = dx + (size_t)c * g->h * g->w;
        for (int oy = 0; oy < g->oh; oy++) {
            int y0, y1, py;
            tl_pool_window(oy, g->kh, g->stride_h, g->pad_t, g->pad_b, g->h, &y0, &y1, &py);
            for (int ox = 0; ox < g->ow; ox++) {
                int x0, x1, px;
                tl_pool_window(ox, g->kw, g->stride_w, g->pad_l, g->pad_r, g->w, &x0, &x1, &px);
                int n = g->count_include_pad ? py * px : (y1 - y0) * (x1 - x0);
                if (n <= 0)
                    continue;
                float v = dyc[(size_t)oy * g->ow + ox] / (float)n;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        dxc[(size_t)iy * g->w + ix] += v;
            }
        }
    }
}

void tl_adaptive_avgpool_backward(int c, int h, int w, int oh, int ow, const float *dy, float *dx)
{
    memset(dx, 0, sizeof(float) * (size_t)c * h * w);
    for (int ch = 0; ch < c; ch++) {
        float *dxc = dx + (size_t)ch * h * w;
        for (int i = 0; i < oh; i++) {
            int y0, y1;
            tl_adaptive_cell(i, oh, h, &y0, &y1);
            for (int j = 0; j < ow; j++) {
                int x0, x1;
                tl_adaptive_cell(j, ow, w, &x0, &x1);
                float v = dy[((size_t)ch * oh + i) * ow + j] / (float)((y1 - y0) * (x1 - x0));
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++)
                        dxc[(size_t)yy * w + xx] += v;
            }
        }
    }
}
