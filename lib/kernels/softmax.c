/* Softmax over one vector, shifted by the maximum so exp never overflows,
 * and the softmax cross-entropy of one sample with label smoothing (the
 * loss and its gradient), in double:
 * loss = logsumexp(z) - sum_i target_i z_i, target = (1 - s) onehot + s / k,
 * and its gradient softmax(z) - target. */
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

double tl_softmax_xent(int k, const float *logits, int label, float smoothing, float *dlogits)
{
    int bad = k <= 0 || label < 0 || label >= k;
    double mx = -INFINITY, zsum = 0;
    for (int i = 0; i < k && !bad; i++) {
        if (!isfinite(logits[i]))
            bad = 1;
        mx = logits[i] > mx ? logits[i] : mx;
        zsum += logits[i];
    }
    if (bad) {
        if (dlogits)
            for (int i = 0; i < k; i++)
                dlogits[i] = NAN;
        return NAN;
    }
    double se = 0;
    for (int i = 0; i < k; i++)
        se += exp(logits[i] - mx);
    double lse0 = log(se), s = smoothing, off = s / k; /* logsumexp(z) - max(z) */
    if (dlogits)
        for (int i = 0; i < k; i++)
            dlogits[i] = (float)(exp(logits[i] - mx) / se - off - (i == label ? 1.0 - s : 0.0));
    /* lse - z_label and lse - mean(z) taken relative to the maximum stay
     * exact when the logits are huge and nearly equal */
    return (1.0 - s) * ((mx - logits[label]) + lse0) + s * ((mx - zsum / k) + lse0);
}
