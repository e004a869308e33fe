/* Reliability bins, expected/maximum calibration error, log loss and
 * Brier score, accumulated one input at a time. */
#include "calibration.h"

#include <math.h>
#include <string.h>

int tl_calibration_init(tl_calibration *c, int nbins, tl_err *e)
{
    memset(c, 0, sizeof *c);
    if (nbins < 1 || nbins > TL_CALIBRATION_MAX_BINS)
        return tl_fail(e, "calibration needs 1..%d bins, got %d", TL_CALIBRATION_MAX_BINS, nbins);
    size_t n = (size_t)nbins;
    c->bin_count = tl_alloc_array(n, sizeof *c->bin_count);
    c->bin_correct = tl_alloc_array(n, sizeof *c->bin_correct);
    c->bin_conf_sum = tl_alloc_array(n, sizeof *c->bin_conf_sum);
    c->bin_confidence = tl_alloc_array(n, sizeof *c->bin_confidence);
    c->bin_accuracy = tl_alloc_array(n, sizeof *c->bin_accuracy);
    if (!c->bin_count || !c->bin_correct || !c->bin_conf_sum || !c->bin_confidence || !c->bin_accuracy) {
        tl_calibration_free(c);
        return tl_fail(e, "out of memory for %d calibration bins", nbins);
    }
    c->nbins = nbins;
    return 0;
}

void tl_calibration_free(tl_calibration *c)
{
    if (!c)
        return;
    tl_free(c->bin_count);
    tl_free(c->bin_correct);
    tl_free(c->bin_conf_sum);
    tl_free(c->bin_confidence);
    tl_free(c->bin_accuracy);
    memset(c, 0, sizeof *c);
}

int tl_calibration_bin(double confidence, int nbins)
{
    /* Right-closed bins (b/B, (b+1)/B], compared against the edges b/B as
     * computed here, so an input exactly on an edge lands where a reference
     * written with `lo < conf <= hi` puts it (0.2 of 5 bins is in bin 0).
     * floor(conf * B) is the guess; rounding may leave it one off. */
    if (!(confidence > 0))
        return 0;
    if (confidence >= 1)
        return nbins - 1;
    int b = (int)floor(confidence * nbins);
    if (b > nbins - 1)
        b = nbins - 1;
    while (b > 0 && confidence <= (double)b / nbins)
        b--;
    while (b < nbins - 1 && confidence > (double)(b + 1) / nbins)
        b++;
    return b;
}

void tl_calibration_add_confidence(tl_calibration *c, double confidence, int correct)
{
    int b = tl_calibration_bin(confidence, c->nbins);
    c->n++;
    c->correct += correct != 0;
    c->bin_count[b]++;
    c->bin_correct[b] += correct != 0;
    c->bin_conf_sum[b] += confidence;
}

void tl_calibration_add(tl_calibration *c, const float *p, int k, int truth, int pred)
{
    if (truth < 0 || truth >= k || pred < 0 || pred >= k)
        return;
    tl_calibration_add_confidence(c, (double)p[pred], truth == pred);
    double pt = (double)p[truth];
    c->nll_sum -= log(pt > TL_CALIBRATION_EPS ? pt : TL_CALIBRATION_EPS);
    double b = 0;
    for (int i = 0; i < k; i++) {
        double d = (double)p[i] - (i == truth);
        b += d * d;
    }
    c->brier_sum += b;
    c->nprob++;
}

void tl_calibration_finish(tl_calibration *c)
{
    c->ece = c->mce = c->nll = c->brier = c->mean_confidence = 0;
    double conf_total = 0;
    for (int b = 0; b < c->nbins; b++) {
        c->bin_confidence[b] = c->bin_accuracy[b] = 0;
        if (c->bin_count[b] == 0)
            continue;
        double nb = (double)c->bin_count[b];
        c->bin_confidence[b] = c->bin_conf_sum[b] / nb;
        c->bin_accuracy[b] = (double)c->bin_correct[b] / nb;
        double gap = fabs(c->bin_accuracy[b] - c->bin_confidence[b]);
        c->ece += nb * gap;
        if (gap > c->mce)
            c->mce = gap;
        conf_total += c->bin_conf_sum[b];
    }
    if (c->n == 0)
        return;
    double n = (double)c->n;
    c->ece /= n;
    c->mean_confidence = conf_total / n;
    if (c->nprob > 0) {
        c->nll = c->nll_sum / (double)c->nprob;
        c->brier = c->brier_sum / (double)c->nprob;
    }
}
