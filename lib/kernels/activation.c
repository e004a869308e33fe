/* Element-wise activations and the per-channel bias + activation epilogue
 * (plain loops: memory bound, and the compiler vectorises the simple ones). */
#include "kernels.h"

#include <math.h>

static float sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }
static float hardsigf(float v) { return fminf(fmaxf(v + 3.0f, 0.0f), 6.0f) * (1.0f / 6.0f); }

/* Blocks of 16 with a fixed inner trip count let -O2 vectorise these loops
 * (and keep them branch-free: random signs make a branchy ReLU slow). */
#define BLOCK 16
#define BLOCKED(p, n, expr)                                                                        \
    do {                                                                                           \
        size_t i_ = 0;                                                                             \
        for (; i_ + BLOCK <= (n); i_ += BLOCK)                                                     \
            for (size_t j_ = i_; j_ < i_ + BLOCK; j_++) {                                          \
                float v = (p)[j_];                                                                 \
                (p)[j_] = (expr);                                                                  \
            }                                                                                      \
        for (; i_ < (n); i_++) {                                                                   \
            float v = (p)[i_];                                                                     \
            (p)[i_] = (expr);                                                                      \
        }                                                                                          \
    } while (0)

void tl_activation(int act, float *x, size_t n)
{
    switch (act) {
    case TL_ACT_RELU:
        BLOCKED(x, n, v > 0.0f ? v : 0.0f);
        break;
    case TL_ACT_RELU6:
        BLOCKED(x, n, v < 0.0f ? 0.0f : v > 6.0f ? 6.0f : v);
        break;
    case TL_ACT_SIGMOID:
        BLOCKED(x, n, sigmoidf(v));
        break;
    case TL_ACT_SILU:
        BLOCKED(x, n, v * sigmoidf(v));
        break;
    case TL_ACT_HARDSIGMOID:
        BLOCKED(x, n, hardsigf(v));
        break;
    case TL_ACT_HARDSWISH:
        BLOCKED(x, n, v * hardsigf(v));
        break;
    case TL_ACT_GELU:
        BLOCKED(x, n, 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)));
        break;
    default:
        break;
    }
}

void tl_bias_act_2d(int act, float *x, size_t ld, const float *bias, int rows, size_t cols)
{
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * ld;
        if (bias) {
            float b = bias[r];
            BLOCKED(xr, cols, v + b);
        }
        tl_activation(act, xr, cols);
    }
}

void tl_bias_act(int act, float *x, const float *bias, int channels, size_t hw)
{
    tl_bias_act_2d(act, x, hw, bias, channels, hw);
}
