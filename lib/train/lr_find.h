/* The learning-rate range test (Smith 2015, as fastai's lr_find runs it):
 * train from the starting weights for a number of steps while the rate
 * grows exponentially from `start` to `end`, record the loss smoothed
 * by an exponential moving average (bias-corrected), stop early when it
 * diverges, and suggest a rate from the curve. The network's weights are
 * changed by the test: it is run instead of training, never before it. */
#ifndef TL_TRAIN_LR_FIND_H
#define TL_TRAIN_LR_FIND_H

#include "finetune.h"

typedef struct tl_lr_find_opts {
    double start, end;   /* the head's rate grows from start towards end: start * (end/start)^(i/steps)
                          * at step i, as fastai's SchedExp (1e-7, 10) */
    int steps;           /* 100 */
    double beta;         /* smoothing of the loss (0.98) */
    double diverge;      /* stop when the smoothed loss exceeds this times its minimum (4) */
} tl_lr_find_opts;

void tl_lr_find_opts_default(tl_lr_find_opts *o);

typedef struct tl_lr_find_result {
    int n;                   /* steps taken (fewer than asked when the loss diverged) */
    int asked;               /* steps asked for */
    double *lr;              /* the head's rate at each step; earlier groups keep their ratio to it */
    double *loss, *smoothed; /* the batch loss and its smoothed curve */
    int diverged;            /* stopped because the smoothed loss blew up (or became non-finite) */
    /* Suggestions: valley (fastai's default since 2.4, the one tl uses):
     * the longest stretch over which the smoothed loss keeps falling, and
     * the rate halfway along it; minimum: a tenth of the rate at the lowest
     * smoothed loss; steep: the steepest fall of the smoothed loss. All
     * computed, as fastai does, without the first tenth of the steps asked
     * for and the last five taken. -1 when the curve is too short. */
    int valley, minimum, steep;
    double valley_lr, minimum_lr, steep_lr;
} tl_lr_find_result;

/* Runs the test on f's training data (its augmentation, batch, freezing
 * and the ratios between group rates), seeded by f's seed. */
int tl_lr_find(tl_finetune *f, const tl_lr_find_opts *o, volatile sig_atomic_t *stop,
               void (*progress)(void *user, int64_t done, int64_t total), void *user, tl_lr_find_result *r,
               tl_err *e);

/* The suggestions of an existing curve (n points), as tl_lr_find fills them. */
void tl_lr_find_suggest(tl_lr_find_result *r);

void tl_lr_find_result_free(tl_lr_find_result *r);

#endif
