/* Anything that turns inputs into class scores: a full network (softmax
 * of its logits), or a head trained on features (on feature vectors, or on
 * images through the backbone its features came from). tl-eval and
 * tl-predict use this so they accept either. */
#ifndef TL_TRAIN_CLASSIFIER_H
#define TL_TRAIN_CLASSIFIER_H

#include "head.h"
#include "io/extract.h"

typedef struct tl_classifier {
    tl_net net;
    int has_net;
    tl_head head;
    int has_head;
    char *const *classes;
    int nclasses;
    int probabilities;  /* outputs are probabilities (else decision values) */
    int multilabel;     /* each class scored on its own (sigmoid probabilities or decision values) */
    float *thresholds;  /* multi-label: a class is predicted when its output >= its threshold */
    tl_extractor *x;
    float *tmp;
} tl_classifier;

int tl_classifier_load(tl_classifier *c, const char *model, tl_err *e);
void tl_classifier_free(tl_classifier *c);
/* Class outputs for one feature vector (heads only). */
void tl_classifier_on_features(const tl_classifier *c, const float *v, float *out);

/* Heads only: loads the backbone the head names (tl.feature_model, looked
 * up as stored, beside the head file, then in $TL_MODEL_PATH by base
 * name) into c->net. */
int tl_classifier_load_backbone(tl_classifier *c, const char *head_path, tl_err *e);

/* Prepares image input: loads the backbone a head names (tl.feature_model,
 * looked up as stored, beside the head file, then in $TL_MODEL_PATH). */
int tl_classifier_prepare_images(tl_classifier *c, const char *model_path, int nthreads, const tl_extract_opts *o,
                                 tl_err *e);

typedef int (*tl_scores_fn)(void *user, int64_t index, const float *out, tl_err *e);
int tl_classifier_run_images(tl_classifier *c, tl_pool *pool, const tl_dataset *d, tl_scores_fn fn, void *user,
                             tl_progress_fn progress, void *progress_user, tl_log_fn log, void *log_user,
                             tl_extract_stats *stats, tl_err *e);


/* ---- classifying an input given on the command line ---- */

typedef struct tl_classify_opts {
    int nthreads;
    int numeric_labels;   /* labels are class indices ... */
    int label_offset;     /* ... plus this (1 for 1001-output TFLite models) */
    int force_images;     /* '-' is a list of images, not features */
    int ignore_labels;    /* predicting: labels in the data are not checked */
    int tsv_paths;        /* the caller writes paths into TSV: refuse one that cannot be a field
                           * (tsv.h), for images before any is scored */
    int force_origin;     /* take feature vectors whose backbone, layer or preprocessing differ from
                           * the head's training features (io/feature_origin.h; refused by default) */
    tl_extract_opts x;
} tl_classify_opts;

void tl_classify_opts_default(tl_classify_opts *o);

typedef struct tl_scored {
    const char *path;
    int truth;            /* class index of the model, -1 when unlabelled; multi-label: the number of labels */
    const float *out;     /* nclasses outputs */
    const unsigned char *truth_set; /* multi-label and labelled: nclasses 0/1, else NULL */
} tl_scored;

typedef int (*tl_scored_fn)(void *user, const tl_scored *s, tl_err *e);

/* input: a feature file (heads only), an image folder, manifest, single
 * image, or '-'. Data labels are matched to the model's classes by name
 * (or as numbers with numeric_labels); an unknown label is an error. With
 * a multi-label model, manifests are read as multi-label (path<TAB>a,b)
 * and feature files must be multi-label. */
int tl_classify_input(tl_classifier *c, const char *model_path, const char *input, const tl_classify_opts *o,
                      tl_pool *pool, tl_scored_fn fn, void *user, tl_progress_fn progress, void *progress_user,
                      tl_log_fn log, void *log_user, tl_extract_stats *stats, tl_err *e);

#endif
