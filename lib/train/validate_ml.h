/* Validation of a multi-label network during fine-tuning: mAP (what the
 * loop keeps the best epoch by), the mean binary cross-entropy, and each
 * class's decision threshold with the best F1 on these images
 * (tl_pr_summary's rule), stored with the best checkpoint. */
#ifndef TL_TRAIN_VALIDATE_ML_H
#define TL_TRAIN_VALIDATE_ML_H

#include "batch_loader.h"
#include "nn/infer.h"

typedef struct tl_ml_val {
    int k;
    int64_t n;
    float *probs;          /* n x k sigmoid outputs */
    unsigned char *truth;  /* n x k */
    float *thresholds;     /* k: chosen on the last validation run */
    float *targets;        /* k scratch */
} tl_ml_val;

int tl_ml_val_init(tl_ml_val *v, int64_t n, int k, tl_err *e);
void tl_ml_val_free(tl_ml_val *v);

/* Runs the n validation ids through inf (batch images at a time, x and y
 * the loop's buffers, logits batch x k) and fills *loss, *map (mAP over the
 * classes with a positive; 0 when none has) and v->thresholds (a class
 * without a positive keeps 0.5). */
int tl_ml_validate(tl_ml_val *v, tl_infer *inf, tl_batch_loader *L, tl_pool *pool, const int64_t *ids, int batch,
                   float *x, int *y, float *logits, double *loss, double *map, tl_err *e);

/* Fills t (n x k) with image ids[i]'s 0/1 targets. */
void tl_ml_targets(const tl_source *src, const int64_t *ids, int n, int k, float *t);

#endif
