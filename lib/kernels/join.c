/* Joining two values: the residual add and the channel concatenation,
 * forward and backward (the add's gradient is dy for both inputs, a copy
 * the caller makes). */
#include "kernels.h"

#include <string.h>

void tl_add(size_t n, const float *a, const float *b, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

void tl_concat_forward(size_t na, size_t nb, const float *a, const float *b, float *y)
{
    memcpy(y, a, na * sizeof(float));
    memcpy(y + na, b, nb * sizeof(float));
}

void tl_concat_backward(size_t na, size_t nb, const float *dy, float *da, float *db)
{
    if (da)
        memcpy(da, dy, na * sizeof(float));
    if (db)
        memcpy(db, dy + na, nb * sizeof(float));
}
