/* Derivatives of the element-wise activations, with PyTorch's values at
 * the kinks (its *_backward kernels), so gradients match it exactly there. */
#include "backward.h"

#include <math.h>
#include <string.h>

static float sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }

static float silu_grad(float v)
{
    float s = sigmoidf(v);
    return s * (1.0f + v * (1.0f - s));
}

static float gelu_grad(float v)
{
    float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
    float pdf = expf(-0.5f * v * v) * 0.39894228040143268f;
    return cdf + v * pdf;
}

/* x/3 + 1/2 on [-3, 3): PyTorch's vectorised kernel, which handles all but
 * a tensor's last few elements (its scalar tail uses [-3, 3], giving 1.5 at 3) */
static float hardswish_grad(float v) { return v < -3.0f ? 0.0f : v < 3.0f ? v * (1.0f / 3.0f) + 0.5f : 1.0f; }

#define EACH(expr)                                                                                 \
    for (size_t i = 0; i < n; i++) {                                                               \
        float v = x[i];                                                                            \
        dx[i] = dy[i] * (expr);                                                                    \
    }

void tl_activation_backward(int act, const float *x, const float *dy, float *dx, size_t n)
{
    switch (act) {
    case TL_ACT_RELU: /* masks rather than multiplies so that inf * 0 never makes a NaN */
        for (size_t i = 0; i < n; i++)
            dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case TL_ACT_RELU6:
        for (size_t i = 0; i < n; i++)
            dx[i] = x[i] > 0.0f && x[i] < 6.0f ? dy[i] : 0.0f;
        break;
    case TL_ACT_HARDSIGMOID:
        for (size_t i = 0; i < n; i++)
            dx[i] = x[i] > -3.0f && x[i] < 3.0f ? dy[i] * (1.0f / 6.0f) : 0.0f;
        break;
    case TL_ACT_SIGMOID:
        EACH(sigmoidf(v) * (1.0f - sigmoidf(v)));
        break;
    case TL_ACT_SILU:
        EACH(silu_grad(v));
        break;
    case TL_ACT_HARDSWISH:
        EACH(hardswish_grad(v));
        break;
    case TL_ACT_GELU:
        EACH(gelu_grad(v));
        break;
    default:
        if (dx != dy)
            memmove(dx, dy, sizeof(float) * n);
        break;
    }
}
