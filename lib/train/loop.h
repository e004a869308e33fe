/* The fine-tuning loop: epochs of seeded shuffled batches through a
 * tl_trainer, progressive unfreezing, validation through the fused
 * inference engine, early stopping, the best checkpoint kept on disk,
 * resume state, and cooperative interruption (a flag polled between
 * batches). The library never prints: each epoch is reported through a
 * callback. */
#ifndef TL_TRAIN_LOOP_H
#define TL_TRAIN_LOOP_H

#include "batch_loader.h"
#include "io/checkpoint.h"
#include "trainer.h"

#include <signal.h>

typedef struct tl_epoch_report {
    int epoch, epochs;        /* 1-based */
    const char *phase;        /* "train", "val" or "best" */
    double loss, accuracy;
    double seconds, images_per_s;
    const double *lr;         /* per group, at the epoch's last step */
    int ngroups;
    int64_t trainable_params;
    int improved;             /* val: a new best checkpoint was written */
    int best_epoch;
    double best_accuracy, best_loss;
    int processes;            /* training together (data parallelism) */
    double comm_seconds;      /* train, several processes: mean time of a step's allreduce */
    size_t comm_bytes;        /* and the bytes of the buffer it sums */
} tl_epoch_report;

/* A training set that changes between epochs (pseudo-labels, pseudo.h).
 * epoch_ids fills the n = ntrain ids of epoch `epoch` (0-based) before
 * they are shuffled; after_epoch, called after each epoch's validation
 * with the number of epochs done, prepares the next. What decides the
 * epochs (state, nstate ints) is kept in the resume state, so a resumed
 * run sees the same images with the same labels. */
typedef struct tl_fit_relabel {
    int (*epoch_ids)(void *user, int epoch, int64_t *ids, int64_t n, tl_err *e);
    int (*after_epoch)(void *user, tl_pool *pool, int epochs_done, tl_err *e);
    int *state;
    int64_t nstate;
    void *user;
} tl_fit_relabel;

typedef struct tl_fit_opts {
    int epochs;
    int batch;                    /* training images a step (at most the training set's size) */
    int val_batch;                /* validation images a pass (0: batch) */
    uint64_t seed;
    int unfreeze_every;           /* 0: no progressive unfreezing */
    int patience;                 /* 0: no early stopping */
    const unsigned char *frozen;  /* per parameter: kept frozen throughout (--freeze-until), or NULL */
    const char *out;              /* best (or last) checkpoint */
    const char *resume_path;      /* resume state written here on interrupt and after each epoch */
    int resume;                   /* continue from resume_path */
    const char *const *meta;      /* key, value, ..., NULL: written into every checkpoint */
    /* key, value, ..., NULL: what identifies the run (its data, starting
     * network, settings), written into the resume state only; --resume
     * refuses a state whose values differ, or that lacks them, and one
     * whose meta (above) differ except tl.train_data, tl.val_data and
     * tl.trained_from (paths: the identities above decide). */
    const char *const *resume_meta;
    const tl_fit_relabel *relabel; /* NULL: train_ids every epoch */
    volatile sig_atomic_t *stop;  /* set (e.g. by SIGINT): finish the batch, save, return TL_FIT_INTERRUPTED */
    int accumulate;               /* a step sums the gradients of this many batches (0 or 1: one) */
    /* Data parallelism: processes training together (NULL or one: alone).
     * Each takes its share of every batch; the gradients are summed with
     * one allreduce per step; rank 0 broadcasts the starting parameters
     * (or the resume state it reads), writes checkpoints and the resume
     * state; validation is shared and its sums added up. Batch norm is
     * per process unless the tape synchronises it. Every process calls
     * tl_fit with the same data and options. */
    tl_comm *comm;
    int sampler;                  /* TL_SAMPLER_SHUFFLE (0, default) or TL_SAMPLER_BALANCED (sampler.h) */
    int multilabel;               /* label sets (trainer loss TL_LOSS_SIGMOID): validation by mAP, which the
                                   * reports' accuracy then holds; the best epoch's per-class thresholds
                                   * (best F1 on the validation images) go into its checkpoint */
    void (*report)(void *user, const tl_epoch_report *r);
    void (*progress)(void *user, int64_t done, int64_t total);
    void *user;
} tl_fit_opts;

enum { TL_FIT_DONE = 0, TL_FIT_INTERRUPTED = 1 };

typedef struct tl_fit_result {
    int epochs_run;
    int best_epoch;               /* 0: no validation */
    double best_accuracy, best_loss;
    int stopped_early;
    double seconds;               /* the whole run, parts before a --resume included */
} tl_fit_result;

/* Optimiser steps in an epoch of ntrain images: batch * accumulate
 * images each, the last one shorter (whole batches plus a remainder of at
 * least max(2, nprocs) images; fewer are left out, as drop_last would). */
int64_t tl_fit_steps_per_epoch(int64_t ntrain, int batch, int accumulate, int nprocs);

/* Trains net->model (already wrapped by t) on train_ids of train, and
 * validates on val_ids of val (val NULL or nval 0: none; the checkpoint
 * is then written after every epoch). Returns TL_FIT_DONE,
 * TL_FIT_INTERRUPTED (resume state written) or -1 (e.g. a non-finite
 * loss: the best checkpoint on disk is left as it was). */
int tl_fit(tl_net *net, tl_trainer *t, tl_batch_loader *train, const int64_t *train_ids, int64_t ntrain,
           tl_batch_loader *val, const int64_t *val_ids, int64_t nval, tl_pool *pool, const tl_fit_opts *o,
           tl_fit_result *res, tl_err *e);

/* Stratified split of a source into train and validation indices: in each
 * class (multi-label: tl_source_group, each image's first label), a
 * seeded shuffle and the first round(frac * count) go to validation, but
 * never every image of a class: at least one stays in training (a class of
 * one image, or of five at 0.9, would otherwise be trained without). rep
 * (may be NULL) says what was done. Arrays are malloc'ed. Time O(images +
 * classes). */
typedef struct tl_split_report {
    int classes;     /* classes with images */
    int kept_whole;  /* too small to give validation any image: all train */
    int capped;      /* round(frac * count) was every image: one trains */
} tl_split_report;

int tl_split_stratified(const tl_source *s, double frac, uint64_t seed, int64_t **train, int64_t *ntrain,
                        int64_t **val, int64_t *nval, tl_split_report *rep, tl_err *e);

#endif
