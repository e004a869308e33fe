/* Comparing training runs: per-run summaries (best validation figure,
 * epochs and seconds to a target, overfitting gap, speed) and a verdict
 * in plain words (does transfer beat scratch, which strategy to pick,
 * which runs overfit or had not converged).
 *
 * Pure functions over parsed logs (runlog.h); the printing lives in
 * compare_print.c and the learning-curve figure in compare_plot.c.
 *
 * The verdict compares best validation accuracies, whose sampling noise
 * is known: a difference counts only when it exceeds two standard errors
 * of the difference of two binomial proportions (tl_acc_noise). The
 * --metric choice moves the table's "best" column, the target and the
 * plots, not that test. */
#ifndef TL_REPORT_COMPARE_H
#define TL_REPORT_COMPARE_H

#include "core.h"
#include "runlog.h"

#include <stdio.h>

typedef enum { TL_METRIC_ACCURACY, TL_METRIC_LOSS } tl_metric;
typedef enum { TL_RUN_TRANSFER, TL_RUN_SCRATCH } tl_run_kind;

/* Above this train-minus-validation accuracy gap a run is said to overfit. */
#define TL_OVERFIT_GAP 0.1

typedef struct tl_run_summary {
    const tl_runlog *run;
    char label[48];   /* strategy, or "scratch", or "-" */
    tl_run_kind kind; /* from "init"; without it, a name containing "scratch" */
    int nval;         /* epochs with a validation figure of the metric */
    int best_epoch;   /* by the metric; -1 without validation */
    double best;      /* the metric there */
    double best_val_accuracy, best_val_loss, best_train_accuracy; /* at best_epoch */
    double seconds_to_best;
    int max_acc_epoch; /* best validation accuracy, what the verdict compares */
    double max_acc;
    int target_epoch; /* first epoch meeting the target; -1 = not reached */
    double target_seconds;
    double final_gap;  /* train - val accuracy at the last epoch having both */
    double best_gap;   /* the same at best_epoch */
    double train_ips;  /* median training images/s over epochs */
    double total_seconds; /* train + val of every epoch, plus extraction */
    int last_epoch;
    int64_t val_images; /* from the start line, else inferred; -1 unknown */
    int val_images_inferred;
    int still_improving; /* best at the last epoch of several, not stopped early */
    int stopped_early;
} tl_run_summary;

typedef struct tl_comparison {
    tl_metric metric;
    double target;      /* NAN when no run has validation figures */
    int target_derived; /* 1: 95 % of the best accuracy (loss: 105 % of the best) */
    int nruns;
    tl_run_summary *runs;
    int best;           /* index of the best run by the metric, -1 if none */
    int nverdict;
    char **verdict;
} tl_comparison;

/* target NAN = derived from the best run. runs must outlive out. */
int tl_compare_runs(const tl_runlog *runs, int n, tl_metric metric, double target, tl_comparison *out, tl_err *e);
void tl_comparison_free(tl_comparison *c);

/* Two standard errors of the difference between accuracies a (on na
 * images) and b (on nb), with Laplace-smoothed proportions so a perfect
 * score still has a spread; NAN when either count is unknown. */
double tl_acc_noise(double a, int64_t na, double b, int64_t nb);

/* cum[i] = seconds spent up to the end of epoch i of r (extraction, then
 * the train and validation seconds of epochs 0..i). */
void tl_run_cumulative_seconds(const tl_runlog *r, double *cum);

const char *tl_metric_name(tl_metric m);

/* Printing (compare_print.c). The table fits 100 columns for run names up
 * to 16 characters; --tsv and --json are for machines. */
void tl_comparison_print_table(FILE *f, const tl_comparison *c);
/* A text field that breaks io/tsv.h's rule fails before anything is written. */
int tl_comparison_print_tsv(FILE *f, const tl_comparison *c, tl_err *e);
void tl_comparison_print_json(FILE *f, const tl_comparison *c);

/* A 2x2 figure of learning curves (compare_plot.c): validation metric
 * vs epoch (training dashed), validation loss (or accuracy) vs epoch,
 * validation metric vs seconds, training loss vs epoch; the target as a
 * reference line. SVG or PNG by the file name's extension. */
int tl_comparison_plot(const tl_comparison *c, const char *path, tl_err *e);

#endif
