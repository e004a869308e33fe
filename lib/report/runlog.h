/* Training logs (JSON lines from tl-finetune --log and tl-extract --log)
 * read back into one run: the header of the "start" line, one record per
 * epoch with its train and validation figures, the seconds spent on
 * feature extraction, and the closing "best" line.
 *
 * The reader is forward compatible and forgiving where a log can
 * legitimately differ: unknown keys and unknown phases are ignored; a
 * log without a start line (older tl-finetune), without validation
 * records or without a best line (an interrupted run) is still a run.
 * A resumed run repeats epochs: the later record of an epoch and phase
 * wins. Bare nan/inf tokens (a diverged loss printed with %g) are read as
 * missing values rather than rejected. Anything else that is not a JSON
 * object is an error naming the line.
 *
 * Logs are untrusted input: lines are limited to TL_RUNLOG_MAX_LINE bytes
 * and epoch records to TL_RUNLOG_MAX_RECORDS, so no input can make the
 * reader allocate without bound, recurse deeply or take quadratic time. */
#ifndef TL_REPORT_RUNLOG_H
#define TL_REPORT_RUNLOG_H

#include "core.h"

#include <stdint.h>

#define TL_RUNLOG_MAX_LINE (64 * 1024)
#define TL_RUNLOG_MAX_RECORDS 100000
#define TL_RUNLOG_MAX_EPOCH 1000000
#define TL_RUNLOG_MAX_FILE (64 * 1024 * 1024)

/* One phase of one epoch; every double is NAN when the log lacks it. */
typedef struct tl_runlog_phase {
    int present;
    double loss, accuracy, seconds, images_per_s;
} tl_runlog_phase;

typedef struct tl_runlog_epoch {
    int epoch;
    tl_runlog_phase train, val;
    int64_t trainable_params; /* -1: not logged */
} tl_runlog_epoch;

typedef struct tl_runlog {
    char *name; /* the "run" field, else the fallback name, else "run" */
    int has_start;
    /* From the start line; NULL / -1 when absent. */
    char *tool, *init, *model, *arch, *strategy, *train_path, *val_path;
    int64_t train_images, val_images, classes, epochs_planned, batch, seed, threads, params, trainable_params;

    /* Feature extraction that preceded the run (tl-extract --log lines). */
    int nextract;
    double extract_seconds;

    /* Epochs in increasing order, each at most once. */
    int nepochs;
    tl_runlog_epoch *epochs;
    int repeated; /* records overridden by later ones (a resumed run) */
    int diverged_epoch; /* first epoch logged with a nan/inf loss; -1 none */

    /* The closing "best" line (NAN / -1 when absent). */
    int has_best;
    int best_epoch, epochs_run, stopped_early;
    double best_loss, best_accuracy, best_seconds;
} tl_runlog;

/* Parses len bytes of JSON lines. fallback_name (may be NULL) names the
 * run when it has no "run" field. On error out is left empty (safe to
 * free) and e says "line N: why". */
int tl_runlog_parse(const char *text, size_t len, const char *fallback_name, tl_runlog *out, tl_err *e);

/* Reads a log file ("-" = standard input). The fallback name is the
 * file's base name without ".jsonl" (or ".json", ".log"); errors are
 * prefixed with the path. */
int tl_runlog_read(const char *path, tl_runlog *out, tl_err *e);

void tl_runlog_free(tl_runlog *r);

/* Replaces the run's name (a NAME=FILE argument); -1 on out of memory. */
int tl_runlog_rename(tl_runlog *r, const char *name, tl_err *e);

/* ---- Writing logs: the lines tl-finetune --log and tl-extract --log
 * write, one JSON object per line (tl-formats(5)). A string that is NULL,
 * an integer that is negative and a number that is NAN are left out; a
 * non-finite loss or accuracy prints as null (JSON has no NaN). */

#include <stdio.h>

typedef struct tl_runlog_start {
    const char *run, *tool, *init, *model, *arch, *layer, *strategy, *train, *val, *augment, *optimizer;
    const char *metric;       /* what the accuracy fields hold: NULL (top-1 accuracy) or "mAP" (multi-label) */
    double lr;
    int64_t train_images, val_images, classes, epochs, batch, seed, threads, params, trainable_params;
    int64_t processes, accumulate; /* data parallelism, gradient accumulation (absent: 1) */
} tl_runlog_start;

/* The fields of a start line, all absent. */
void tl_runlog_start_init(tl_runlog_start *s);
void tl_runlog_write_start(FILE *f, const tl_runlog_start *s);

typedef struct tl_runlog_phase_line {
    int epoch;
    const char *phase;        /* "train" or "val" */
    double loss, accuracy, seconds, images_per_s; /* images_per_s NAN: left out */
    const double *lr;         /* per group, or NULL */
    int ngroups;
    int64_t trainable_params;
    int best;                 /* val lines: -1 absent, 0 or 1 */
    int processes;            /* train lines of a data-parallel run (> 1): the allreduce per step */
    double allreduce_ms;
    int64_t allreduce_bytes;
} tl_runlog_phase_line;
void tl_runlog_write_phase(FILE *f, const tl_runlog_phase_line *p);

void tl_runlog_write_best(FILE *f, int epoch, double loss, double accuracy, int epochs_run, int stopped_early,
                          double seconds);

/* tl-extract --log: one line per extraction. */
void tl_runlog_write_extract(FILE *f, const char *data, const char *model, const char *layer, int64_t images,
                             int64_t skipped, int threads, double seconds);

#endif
