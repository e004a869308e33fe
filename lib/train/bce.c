#include "bce.h"

#include <math.h>

/* log(1 + e^z) without overflow or loss of precision for large |z|. */
static double softplus(double z) { return (z > 0 ? z : 0) + log1p(exp(-fabs(z))); }

static double sigmoid(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double ez = exp(z);
    return ez / (1.0 + ez);
}

double tl_sigmoid_bce(int k, const float *logits, const float *targets, const float *pos_w, const float *neg_w,
                      float *dlogits)
{
    int bad = k <= 0;
    for (int c = 0; c < k && !bad; c++)
        bad = !isfinite(logits[c]);
    if (bad) {
        if (dlogits)
            for (int c = 0; c < k; c++)
                dlogits[c] = NAN;
        return NAN;
    }
    double total = 0, inv_k = 1.0 / k;
    for (int c = 0; c < k; c++) {
        double z = logits[c], t = targets[c];
        double pw = pos_w ? pos_w[c] : 1.0, nw = neg_w ? neg_w[c] : 1.0;
        total += pw * t * softplus(-z) + nw * (1.0 - t) * softplus(z);
        if (dlogits)
            dlogits[c] = (float)((nw * (1.0 - t) * sigmoid(z) - pw * t * sigmoid(-z)) * inv_k);
    }
    return total * inv_k;
}

void tl_sigmoid_probs(const float *z, float *p, int k)
{
    for (int c = 0; c < k; c++)
        p[c] = z[c] >= 0 ? 1.0f / (1.0f + expf(-z[c])) : expf(z[c]) / (1.0f + expf(z[c]));
}
