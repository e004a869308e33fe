/* A classifier head trained on feature vectors, saved as a checkpoint:
 * tensors `weight` [k, d] and `bias` [k] (a torch.nn.Linear state_dict),
 * metadata tl.arch = "linear" plus the classes and the model and layer
 * the features came from, so images can later be classified end to end.
 * A multi-label head (tl.multilabel) scores each class on its own and
 * keeps a decision threshold per class (tl.thresholds). */
#ifndef TL_TRAIN_HEAD_H
#define TL_TRAIN_HEAD_H

#include "linear.h"
#include "prototype.h"
#include "io/feature_origin.h"
#include "io/features.h"
#include "json.h"

typedef struct tl_head {
    tl_linear_model lin;   /* logreg, svm; for the prototype heads only kind, d and k */
    tl_proto proto;        /* lin.kind TL_HEAD_NCM or TL_HEAD_KNN */
    char **classes;
    int nclasses;
    float *thresholds;     /* multi-label: per class (NULL otherwise) */
    char *feature_model;   /* backbone checkpoint the features came from, may be NULL */
    char *feature_layer;
    char *feature_input;   /* the backbone's input geometry at extraction (tl_preproc_geometry_parse), may be NULL */
} tl_head;

/* extra_meta: NULL-terminated key, value pairs (training provenance). */
int tl_head_save(const tl_linear_model *m, const tl_feat_info *info, const char *const *extra_meta,
                 const char *path, tl_err *e);
/* A prototype head: NCM as weight [k, d] (the class means) and bias [k]
 * (zeros), kNN as vectors [n, d] and labels [n] (I64); tl.head ncm or knn,
 * tl.metric, tl.neighbours (kNN). */
int tl_head_save_proto(const tl_proto *p, const tl_feat_info *info, const char *const *extra_meta, const char *path,
                       tl_err *e);
int tl_head_load(const char *path, tl_head *h, tl_err *e);
void tl_head_free(tl_head *h);
/* Where the head's training features came from, to check the features it
 * is given against (io/feature_origin.h); the strings are h's. */
tl_feat_origin tl_head_origin(const tl_head *h);
/* Scores to what the tools print: probabilities for logistic regression
 * (softmax; multi-label: each class's sigmoid) and kNN (vote fractions),
 * decision values for the SVM and NCM. */
void tl_head_outputs(const tl_head *h, const float *x, float *out);

/* "[t1,t2,...]" with the digits that read back as the same floats. */
int tl_thresholds_json(const float *t, int k, tl_strbuf *b);
/* Reads tl.thresholds text: k finite numbers. */
int tl_thresholds_parse(const char *text, int k, float *t, tl_err *e);
/* The threshold of a class with none chosen: 0.5 for probabilities, 0
 * for decision values. */
float tl_threshold_default(int probabilities);

#endif
