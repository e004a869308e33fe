/* Softmax over one vector, shifted by the maximum so exp never overflows. */
#include "kernels.h"

#include <math.h>

void tl_softmax(const float *x, float *y, int n)
{
    if (n <= 0)
        return;
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        y[i] = expf(x[i] - mx);
        sum += y[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++)
        y[i] *= inv;
}
