/* The training log of tl-finetune --log (JSON lines, tl-formats(5)), from
 * the training library's own records: a start line with the run's
 * settings, a line per epoch and phase, a closing best line. A feature
 * head's run takes the same form (one epoch) so tl-compare puts it beside
 * fine-tuned networks. The lines are written by runlog.h's writers. */
#ifndef TL_REPORT_TRAIN_LOG_H
#define TL_REPORT_TRAIN_LOG_H

#include "runlog.h"
#include "train/finetune.h"

/* run: the run's name (NULL: the output file). */
void tl_train_log_start(FILE *f, const tl_finetune *ft, const char *run);
void tl_train_log_epoch(FILE *f, const tl_epoch_report *r);
void tl_train_log_best(FILE *f, const tl_fit_result *res, double seconds);

typedef struct tl_head_run {
    const char *run, *model, *layer, *strategy, *train, *val; /* val NULL: none */
    const char *metric;       /* NULL: accuracy; "mAP": the accuracy fields hold mAP (multi-label) */
    int64_t ntrain, nval, params;
    int classes, threads;
    double seconds, train_loss, train_accuracy, val_loss, val_accuracy;
} tl_head_run;
void tl_train_log_head(FILE *f, const tl_head_run *h);

#endif
