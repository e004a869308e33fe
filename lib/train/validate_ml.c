#include "validate_ml.h"
#include "bce.h"
#include "pr_curve.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int tl_ml_val_init(tl_ml_val *v, int64_t n, int k, tl_err *e)
{
    memset(v, 0, sizeof *v);
    v->k = k;
    v->n = n;
    v->probs = tl_xalloc((size_t)n * (size_t)k + 1, sizeof(float), e);
    v->truth = v->probs ? calloc((size_t)n * (size_t)k + 1, 1) : NULL;
    v->thresholds = v->truth ? tl_xalloc((size_t)k, sizeof(float), e) : NULL;
    v->targets = v->thresholds ? tl_xalloc((size_t)k, sizeof(float), e) : NULL;
    if (!v->targets) {
        tl_ml_val_free(v);
        return tl_fail(e, "out of memory for validating %lld images of %d labels", (long long)n, k);
    }
    for (int c = 0; c < k; c++)
        v->thresholds[c] = 0.5f;
    return 0;
}

void tl_ml_val_free(tl_ml_val *v)
{
    tl_free(v->probs);
    free(v->truth);
    tl_free(v->thresholds);
    tl_free(v->targets);
    memset(v, 0, sizeof *v);
}

void tl_ml_targets(const tl_source *src, const int64_t *ids, int n, int k, float *t)
{
    memset(t, 0, (size_t)n * (size_t)k * sizeof *t);
    for (int i = 0; i < n; i++) {
        int nl;
        const int *ls = tl_source_labels(src, ids[i], &nl);
        for (int j = 0; j < nl; j++)
            t[(size_t)i * k + ls[j]] = 1.0f;
    }
}

int tl_ml_validate(tl_ml_val *v, tl_infer *inf, tl_batch_loader *L, tl_pool *pool, const int64_t *ids, int batch,
                   float *x, int *y, float *logits, double *loss, double *map, tl_err *e)
{
    int k = v->k;
    const tl_source *src = tl_batch_loader_source(L);
    double total = 0;
    for (int64_t b = 0; b < v->n; b += batch) {
        int nb = (int)(v->n - b < batch ? v->n - b : batch);
        if (tl_batch_load(L, pool, ids + b, nb, 0, 0, x, y, e))
            return -1;
        float *outs[1] = {logits};
        tl_infer_run(inf, pool, nb, x, outs);
        for (int i = 0; i < nb; i++) {
            const float *z = logits + (size_t)i * k;
            tl_ml_targets(src, ids + b + i, 1, k, v->targets);
            total += tl_sigmoid_bce(k, z, v->targets, NULL, NULL, NULL);
            tl_sigmoid_probs(z, v->probs + (size_t)(b + i) * k, k);
            for (int c = 0; c < k; c++)
                v->truth[(size_t)(b + i) * k + c] = v->targets[c] > 0.5f;
        }
    }
    double apsum = 0;
    int nap = 0;
    for (int c = 0; c < k; c++) {
        tl_pr_summary ps;
        if (tl_pr_summarise(v->probs + c, k, v->truth + c, k, v->n, &ps, e))
            return -1;
        v->thresholds[c] = 0.5f;
        if (ps.npos) {
            apsum += ps.ap;
            nap++;
            v->thresholds[c] = (float)ps.threshold;
        }
    }
    *loss = total / (double)v->n;
    *map = nap ? apsum / nap : 0.0;
    return 0;
}
