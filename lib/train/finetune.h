/* Training a network on images, as tl-finetune does: fine-tuning a
 * pretrained network whose classifier is replaced, or training an
 * architecture from scratch. This file puts the pieces together — the
 * data (train_data.h), the network and its starting weights, what is
 * frozen and how fast each group learns (transfer.h), the optimiser and
 * schedule (trainer.h), augmentation and loading (batch_loader.h), the
 * provenance stored in every checkpoint — and runs the loop (loop.h).
 *
 * A front end fills tl_finetune_opts (checking only how its options
 * combine), calls tl_finetune_setup, reports what it set up, then
 * tl_finetune_run; the library prints nothing (notes go to the log hook). */
#ifndef TL_TRAIN_FINETUNE_H
#define TL_TRAIN_FINETUNE_H

#include "loop.h"
#include "pseudo.h"
#include "train_data.h"

#define TL_FINETUNE_MAX_GROUPS 64

typedef struct tl_finetune_opts {
    /* the data */
    const char *train;          /* tl_train_data_open's spec */
    const char *val;            /* validation data, or NULL: hold out val_split of train */
    double val_split;           /* fraction of each class (default 0.2); 0: no validation */
    const char *unlabelled;     /* images that join with pseudo-labels (pseudo.h), or NULL */
    tl_pseudo_opts pseudo;      /* their threshold and ramp */
    /* the network */
    const char *model;          /* a pretrained checkpoint (path or name in $TL_MODEL_PATH), or NULL */
    const char *arch;           /* without model: a zoo architecture (with scratch) */
    int scratch;                /* initialise every weight; with model, only its architecture and
                                 * preprocessing are used */
    int input_w, input_h;       /* the network's input (0: the model's; with arch 224 x 224) */
    int resize_mode;            /* TL_RESIZE_* (-1: the model's; with arch: squash, straight to the input) */
    int keep_head;              /* keep model's classifier when its size fits the classes */
    double dropout;             /* before the classifier; < 0: the architecture's */
    /* what trains */
    const char *freeze_until;   /* freeze this layer and every one before it */
    int head_only;              /* train only the classifier */
    int freeze_bn;              /* every batch norm on its running statistics */
    int unfreeze_every;         /* progressive unfreezing: one more group every K epochs (0: off) */
    int groups;                 /* backbone groups (default 4), plus the head */
    /* how fast */
    double lr;                  /* the head's rate; < 0: 0.01 (SGD) or 1e-3 (AdamW) */
    double lr_mult;             /* each earlier group: this times the next; < 0: tl_lr_spread for a
                                 * pretrained network, 1 from scratch */
    const double *group_lrs;    /* or the rate of every group, earliest first (ngroup_lrs of them) */
    int ngroup_lrs;
    int optimizer;              /* TL_OPT_SGD (default) or TL_OPT_ADAMW */
    double momentum;            /* < 0: the optimiser's default (0.9) */
    double weight_decay;        /* < 0: 1e-4 (SGD) or 0.01 (AdamW) */
    double label_smoothing;     /* < 0: 0.1, or 0 with multilabel */
    double clip_norm;           /* 0: no clipping */
    const char *schedule;       /* tl_schedule_parse spec; NULL: cosine with a 5% linear warm-up */
    int epochs, batch, patience; /* 10, 32, 0 (no early stopping) */
    uint64_t seed;              /* 1 */
    const char *augment;        /* augmentation spec or policy; NULL: none */
    size_t max_pixels;          /* decode limit, 0: the default */
    int threads;
    int exact;                  /* every convolution direct, never Winograd (training and validation) */
    /* the output */
    const char *out;            /* the best (or last) checkpoint */
    int resume;                 /* continue from OUT.resume.safetensors */
    /* more than one process, or more than one batch per step */
    int accumulate;             /* a step sums the gradients of this many batches (default 1) */
    tl_comm *comm;              /* processes training together (tl_fit_opts.comm), or NULL */
    int sync_bn;                /* with comm: batch-norm statistics over every process's share */
    /* labels (issue 18.1, 18.2) */
    int multilabel;             /* the data has label sets (manifest path<TAB>a,b): sigmoid outputs, binary
                                 * cross-entropy, validation by mAP, per-class thresholds */
    const char *class_weights;  /* NULL, "auto" (balanced over the training ids) or a CLASS<TAB>WEIGHT file */
    int sampler;                /* TL_SAMPLER_SHUFFLE (default) or TL_SAMPLER_BALANCED */
} tl_finetune_opts;

void tl_finetune_opts_default(tl_finetune_opts *o);

typedef struct tl_finetune {
    tl_finetune_opts o;         /* as given, with lr, lr_mult and the schedule resolved */

    /* What setup decided, for the front end to report and log. */
    const char *arch;           /* the architecture's name */
    tl_train_data train, val;   /* val used only when o.val is set */
    int64_t *train_ids, *val_ids, ntrain, nval;
    tl_split_report split;      /* what --val-split did (without o.val) */
    int val_batch;              /* validation images a pass: min(batch, validation images) */
    int ngroups;
    int64_t steps;              /* optimiser steps over the whole run */
    int bn_folded;              /* batch norm kept on stored statistics: it is folded (a TFLite import) */
    int kept_head;              /* the classifier came from the model (keep_head) */
    int64_t params, trainable_params;
    char strategy[300];         /* "full", "head-only", "partial (LAYER)", "progressive (every K)" */
    char resume_path[4096];     /* "" when the output is a device (no resume state beside it) */
    char lock_path[4096];       /* OUT.lock, held (flock) for the whole run; "" for a device */
    int lock_fd;
    int device_out;
    double rates[TL_FINETUNE_MAX_GROUPS]; /* the rate of every group, earliest first (before the schedule) */

    /* The pieces. */
    tl_net src, net;
    tl_trainer *trainer;
    tl_pool *pool;
    tl_aug_pipeline *aug;
    tl_batch_loader *train_loader, *val_loader;
    /* --unlabelled: the labelled images then the unlabelled ones, and the pseudo-labeller */
    tl_dataset merged;
    tl_source merged_src;
    int64_t nunl, epoch_size;   /* unlabelled images; images per epoch (ntrain, or nlab + nunl) */
    int *unl_truth;             /* their classes where the data says, for reports only */
    tl_pseudo_net *pseudo;
    tl_fit_relabel relabel;
    unsigned char *frozen;
    int spread;                 /* rates from tl_lr_spread */
    char *sched_spec, *classes_json, *from;
    char meta_text[24][320];
    float *class_w, *pos_w, *neg_w; /* the loss weights (class_weights), num_classes each, or NULL */
    float *weights_mem;
    const char *meta[72];       /* provenance, key, value, ..., NULL (tl-formats(5)) */
    char run_id[3][400];        /* what identifies the run for --resume: data, network, settings */
    const char *resume_meta[8];
} tl_finetune;

/* Opens the data, builds the network and its starting weights, freezes,
 * sets rates, schedule, optimiser, augmentation and loaders. A value that
 * does not fit (an unknown layer, a bad schedule or augmentation spec, a
 * layer that would freeze the classifier, rates for the wrong number of
 * groups) fails with kind TL_ERR_ARG and a message that starts with the
 * setting's tl-finetune option, the vocabulary of tl-finetune(1)
 * ("--freeze-until: no layer 'x' in resnet18 ..."); bad data fails with
 * TL_ERR_FAIL. Notes
 * (the classifier kept, batch norm folded) go to log. On failure f is
 * freed. */
int tl_finetune_setup(tl_finetune *f, const tl_finetune_opts *o, tl_log_fn log, void *log_user, tl_err *e);

/* What the loop reports to the front end, and when to stop. */
typedef struct tl_finetune_hooks {
    volatile sig_atomic_t *stop; /* set (e.g. by SIGINT): finish the batch, save, return TL_FIT_INTERRUPTED */
    void (*report)(void *user, const tl_epoch_report *r);
    void (*progress)(void *user, int64_t done, int64_t total);
    void *user;
} tl_finetune_hooks;

/* Trains (tl_fit): TL_FIT_DONE, TL_FIT_INTERRUPTED or -1. */
int tl_finetune_run(tl_finetune *f, const tl_finetune_hooks *h, tl_fit_result *res, tl_err *e);

void tl_finetune_free(tl_finetune *f);

#endif
