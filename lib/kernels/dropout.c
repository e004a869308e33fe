/* Dropout in training mode, forward and backward: the mask drawn in the
 * forward pass (from a stream the caller seeds, so a run is reproducible
 * whatever thread draws it) is kept and applied again to the gradient. */
#include "kernels.h"

void tl_dropout_forward(size_t n, float p, tl_rng *r, const float *x, uint8_t *mask, float *y)
{
    float keep = 1.0f - p, scale = 1.0f / keep;
    for (size_t k = 0; k < n; k++) {
        mask[k] = tl_rng_uniform(r) < keep;
        y[k] = mask[k] ? x[k] * scale : 0.0f;
    }
}

void tl_dropout_backward(size_t n, float p, const uint8_t *mask, const float *dy, float *dx)
{
    float scale = 1.0f / (1.0f - p);
    for (size_t k = 0; k < n; k++)
        dx[k] = mask[k] ? dy[k] * scale : 0.0f;
}
