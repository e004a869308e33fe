/* Unlabelled target images in training: self-training by pseudo-labels.
 * The model trained so far predicts the unlabelled images; the confident
 * predictions join the training set with the predicted class as their
 * label, a growing share at a time (the ramp), and training goes on.
 *
 * Plain self-training (Lee 2013's pseudo-label, with a confidence
 * threshold as FixMatch uses and a curriculum ramp as Cascante-Bonilla et
 * al. 2021's curriculum labelling), not a consistency loss: it works the
 * same for a linear head on fixed features and for a fine-tuned network,
 * and the network path's augmentation of the pseudo-labelled images gives
 * part of what consistency regularisation would.
 *
 * Which images join: for each class c, among the unlabelled images
 * predicted as c, the most confident share `frac` of them, and of those
 * only the ones whose confidence reaches the threshold. Per class, so a
 * class the model is sure of cannot crowd out the others (the usual
 * failure of self-training); confidences are compared with
 * threshold * (1 - s + s/k), the most a loss with label smoothing s over
 * k classes asks for (plain threshold without smoothing). */
#ifndef TL_TRAIN_PSEUDO_H
#define TL_TRAIN_PSEUDO_H

#include "batch_loader.h"
#include "head_fit.h"
#include "nn/model.h"

typedef struct tl_pseudo_opts {
    double threshold;   /* default 0.9 */
    int rounds;         /* heads: refits; round r admits frac = r / rounds (default 5) */
    int ramp;           /* networks: epochs over which frac grows from 0 to 1 (0: half the epochs) */
} tl_pseudo_opts;

void tl_pseudo_opts_default(tl_pseudo_opts *o);

/* probs: n x k class probabilities. labels[i] becomes the class of each
 * admitted image, -1 for the rest; ties in confidence go to the lower
 * index, so the choice is a function of probs alone. Returns how many
 * were admitted. scale: 1 - s + s/k for a loss with label smoothing s,
 * else 1. */
int64_t tl_pseudo_select(const float *probs, int64_t n, int k, double threshold, double scale, double frac,
                         int *labels, tl_err *e);

/* One round of a head's self-training, for the report. */
typedef struct tl_pseudo_round {
    int round, rounds;
    double frac;             /* the share admitted per class */
    int64_t admitted, total; /* unlabelled vectors that joined, of all */
    int64_t known, right;    /* of the admitted, those whose true label the file carried, and right */
    double train_accuracy;   /* on the labelled vectors */
    double val_accuracy;     /* NAN without validation data */
} tl_pseudo_round;

typedef void (*tl_pseudo_report_fn)(void *user, const tl_pseudo_round *r);

/* Self-training of a linear head: fit on train; then for round 1..rounds,
 * pseudo-label unl (its labels, when it has any, are never used to train:
 * they only count how many pseudo-labels were right), refit on train plus
 * the admitted vectors; val (may be NULL) is scored after each fit. out
 * is the last round's head. Single-label only. */
int tl_pseudo_head(const tl_featset *train, const tl_featset *unl, const tl_featset *val, const tl_linear_opts *lo,
                   const tl_pseudo_opts *po, tl_pool *pool, tl_pseudo_report_fn report, void *user,
                   tl_linear_model *out, tl_err *e);

/* An unlabelled feature file for a head trained on train: same dimension,
 * labels (if any) renumbered to train's classes, those it lacks unlabelled. */
int tl_pseudo_unlabelled_data(const char *path, const tl_featset *train, tl_featset *u, tl_err *e);

/* ---- fine-tuning a network ----
 *
 * The training source holds the labelled images first and the unlabelled
 * ones after them (ids unl_first .. unl_first+nunl-1). Every epoch has the
 * same length, nlab + nunl images, so the schedule is what it would be
 * with every image labelled: the labelled images, the pseudo-labelled
 * ones, and the labelled ones again (a seeded cycle) for the rest. After
 * each epoch the network in inference mode predicts the unlabelled
 * images and the share frac = min(1, epochs done / ramp) of each class
 * joins for the next epoch (none in the first). */
typedef struct tl_pseudo_net tl_pseudo_net;

typedef struct tl_pseudo_net_setup {
    const tl_source *src;        /* labelled, then unlabelled */
    const tl_preproc *pp;        /* the network's preprocessing (no augmentation for predicting) */
    const int64_t *lab_ids;      /* the labelled training ids */
    int64_t nlab, unl_first, nunl;
    const int *truth;            /* per unlabelled image: its class when known (reports only), else -1 */
    double scale;                /* 1 - s + s/k for label smoothing s (tl_pseudo_select) */
    int epochs, batch, threads;
    size_t max_pixels;
    uint64_t seed;
} tl_pseudo_net_setup;

tl_pseudo_net *tl_pseudo_net_new(tl_model *m, const tl_pseudo_net_setup *s, const tl_pseudo_opts *o, tl_log_fn log,
                                 void *log_user, tl_err *e);
void tl_pseudo_net_free(tl_pseudo_net *p);
/* Per source id: the pseudo-label the loader must use, -1 for its own. */
const int *tl_pseudo_net_labels(const tl_pseudo_net *p);
/* Images per epoch: nlab + nunl. */
int64_t tl_pseudo_net_epoch_size(const tl_pseudo_net *p);
/* tl_fit_relabel's callbacks (user = the tl_pseudo_net). */
int tl_pseudo_net_epoch_ids(void *user, int epoch, int64_t *ids, int64_t n, tl_err *e);
int tl_pseudo_net_after_epoch(void *user, tl_pool *pool, int epochs_done, tl_err *e);
/* The state that decides an epoch's images: one int per unlabelled image. */
int *tl_pseudo_net_state(tl_pseudo_net *p, int64_t *n);

#endif
