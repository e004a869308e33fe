/* Fully connected layer as one GEMM against the PyTorch (out x in) weight. */
#include "kernels.h"

void tl_linear_forward(tl_kws *ws, int batch, int in, int out, const float *x, const float *w,
                       const float *bias, float *y)
{
    tl_sgemm(ws, 0, 1, batch, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    if (!bias)
        return;
    for (int b = 0; b < batch; b++) {
        float *yb = y + (size_t)b * out;
        for (int o = 0; o < out; o++)
            yb[o] += bias[o];
    }
}
