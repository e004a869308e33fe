/* The squeeze-excitation scale: each channel of a map times one gate
 * value, forward and backward (the gate's gradient sums over the plane in
 * double). */
#include "kernels.h"

void tl_scale_forward(int c, int hw, const float *x, const float *s, float *y)
{
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < hw; i++)
            y[(size_t)ch * hw + i] = x[(size_t)ch * hw + i] * s[ch];
}

void tl_scale_backward(int c, int hw, const float *x, const float *s, const float *dy, float *dx, float *ds)
{
    if (dx)
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < hw; i++)
                dx[(size_t)ch * hw + i] = dy[(size_t)ch * hw + i] * s[ch];
    if (ds)
        for (int ch = 0; ch < c; ch++) {
            double acc = 0;
            for (int i = 0; i < hw; i++)
                acc += (double)dy[(size_t)ch * hw + i] * x[(size_t)ch * hw + i];
            ds[ch] = (float)acc;
        }
}
