/* Vision Transformer token sequences (t tokens of d values, each token
 * contiguous): the patch map turned into tokens behind a class token with
 * the position embedding added, and the class token picked out at the
 * end; forward and backward. */
#include "kernels.h"

#include <string.h>

void tl_tokens_forward(int d, int np, const float *x, const float *cls, const float *pos, float *y)
{
    for (int j = 0; j < d; j++)
        y[j] = cls[j] + pos[j];
    for (int p = 0; p < np; p++)
        for (int j = 0; j < d; j++)
            y[(size_t)(p + 1) * d + j] = x[(size_t)j * np + p] + pos[(size_t)(p + 1) * d + j];
}

void tl_tokens_backward_data(int d, int np, const float *dy, float *dx)
{
    for (int p = 0; p < np; p++)
        for (int j = 0; j < d; j++)
            dx[(size_t)j * np + p] = dy[(size_t)(p + 1) * d + j];
}

void tl_tokens_backward_params(int n, int t, int d, const float *dy, float *dcls, float *dpos, int j0, int j1)
{
    size_t size = (size_t)t * d;
    for (int b = 0; b < n; b++)
        for (int tok = 0; tok < t; tok++)
            for (int k = j0; k < j1; k++) {
                float v = dy[(size_t)b * size + (size_t)tok * d + k];
                if (dpos)
                    dpos[(size_t)tok * d + k] += v;
                if (dcls && tok == 0)
                    dcls[k] += v;
            }
}

void tl_select_token_backward(int t, int d, const float *dy, float *dx)
{
    memset(dx, 0, (size_t)t * d * sizeof(float));
    memcpy(dx, dy, (size_t)d * sizeof(float));
}
