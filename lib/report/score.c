/* Accumulates confusion, top-k and calibration for tl-eval. */
#include "score.h"
#include "rank.h"

#include <string.h>

int tl_scorer_init(tl_scorer *s, int k, int top_k, int probabilities, int nbins, tl_err *e)
{
    memset(s, 0, sizeof *s);
    if (top_k < 0)
        return tl_fail(e, "top-k needs k >= 1, got %d", top_k);
    /* a k of the class count or more counts every input as a hit: asked
     * for, it is a mistake, not silently top-5 */
    if (top_k >= k && k >= 1)
        return tl_fail_arg(e, "--top-k %d: the model has %d classes, so top-%d would always be 1; give a K below %d",
                           top_k, k, top_k, k);
    if (top_k == 0)
        top_k = 5;
    if (tl_confusion_init(&s->conf, k, e))
        return -1;
    if (probabilities && tl_calibration_init(&s->cal, nbins, e)) {
        tl_confusion_free(&s->conf);
        return -1;
    }
    s->k = k;
    s->top_k = top_k;
    s->probabilities = probabilities != 0;
    return 0;
}

void tl_scorer_free(tl_scorer *s)
{
    if (!s)
        return;
    tl_confusion_free(&s->conf);
    tl_calibration_free(&s->cal);
    memset(s, 0, sizeof *s);
}

void tl_scorer_add(tl_scorer *s, int truth, int pred, const float *scores)
{
    if (truth < 0 || truth >= s->k) {
        s->unlabelled++;
        return;
    }
    if (pred < 0 || pred >= s->k)
        tl_top_k(scores, s->k, 1, &pred);
    int rank = tl_rank_of(scores, s->k, truth);
    s->top_k_hits += rank < s->top_k;
    s->top5_hits += rank < 5;
    tl_confusion_add(&s->conf, truth, pred);
    if (s->probabilities)
        tl_calibration_add(&s->cal, scores, s->k, truth, pred);
}

int64_t tl_scorer_count(const tl_scorer *s)
{
    int64_t n = 0;
    for (int i = 0; i < s->k; i++)
        n += s->conf.support[i];
    return n;
}
