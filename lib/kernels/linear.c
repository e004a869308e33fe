/* Fully connected layer against the PyTorch (out x in) weight, forward and
 * backward, each a GEMM over all rows at once (images, or images x tokens)
 * restricted to a range of output columns or rows, so a team of threads
 * splits the work without changing any sum's order. */
#include "kernels.h"

void tl_linear_forward(tl_kws *ws, int rows, int in, int out, const float *x, const float *w, const float *bias,
                       float *y, int o0, int o1)
{
    if (o0 >= o1)
        return;
    tl_sgemm(ws, 0, 1, rows, o1 - o0, in, 1.0f, x, in, w + (size_t)o0 * in, in, 0.0f, y + o0, out);
    if (bias)
        for (int r = 0; r < rows; r++)
            for (int o = o0; o < o1; o++)
                y[(size_t)r * out + o] += bias[o];
}

void tl_linear_backward_data(tl_kws *ws, int in, int out, const float *dy, const float *w, float *dx, int r0, int r1)
{
    tl_sgemm(ws, 0, 0, r1 - r0, in, out, 1.0f, dy + (size_t)r0 * out, out, w, in, 0.0f, dx + (size_t)r0 * in, in);
}

void tl_linear_backward_params(tl_kws *ws, int rows, int in, int out, const float *x, const float *dy, float *dw,
                               float *db, int o0, int o1)
{
    if (dw)
        tl_sgemm(ws, 1, 0, o1 - o0, in, rows, 1.0f, dy + o0, out, x, in, 1.0f, dw + (size_t)o0 * in, in);
    if (db)
        for (int o = o0; o < o1; o++) {
            double acc = 0;
            for (int r = 0; r < rows; r++)
                acc += dy[(size_t)r * out + o];
            db[o] += (float)acc;
        }
}
