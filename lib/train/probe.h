/* Which layer transfers: a layer sweep. The backbone runs once over the
 * training and validation images and keeps the (pooled) vectors of many
 * layers at once; the same linear head is trained on each layer's vectors
 * and scored on the validation images, so accuracy can be read against
 * depth. tl-probe prints, plots and judges the result (report/probe_report.h). */
#ifndef TL_TRAIN_PROBE_H
#define TL_TRAIN_PROBE_H

#include "io/extract.h"
#include "linear.h"

typedef struct tl_probe_opts {
    const char *const *layers; /* names to probe, in any order (sorted by depth); NULL: tl_probe_all_layers */
    int nlayers;
    tl_linear_opts lin;        /* the head trained on every layer */
    int threads, batch;
    size_t max_pixels;
    int exact;                 /* extraction on the direct convolutions (tl_extract_opts.exact) */
} tl_probe_opts;

void tl_probe_opts_default(tl_probe_opts *o);

/* Every named stage from the first layer to the default features, in
 * execution order: the layers tl-probe --layers all sweeps. A stage whose
 * only use is a named global pooling (MobileNetV2's features.18 before
 * avgpool) is left out: pooled, it gives the same vector. Writes up to
 * cap node indices into nodes and returns how many there are. */
int tl_probe_all_layers(const tl_model *m, int *nodes, int cap);

typedef struct tl_probe_layer {
    char name[TL_NAME_MAX];
    int node, dim;
    int depth;                  /* 1-based position among the probed layers */
    double train_acc, val_acc, val_loss;
    int64_t correct;
    double seconds;             /* training the head */
    unsigned char *right;       /* per validation image: the head got it right */
} tl_probe_layer;

typedef struct tl_probe {
    tl_probe_layer *layers;
    int nlayers;
    int best;                   /* highest validation accuracy; ties: lower loss, then the deeper layer */
    int default_layer;          /* the model's default features among the layers, or -1 */
    int64_t ntrain, nval;
    int nclasses;
    double extract_seconds, fit_seconds;
} tl_probe;

/* Extracts every layer of opts (train and val: images; their labels must
 * be class names of train's classes), fits o->lin on each and scores it.
 * train_ids/val_ids select images of train and val (val may be train:
 * a split). log gets one line per layer as it finishes. */
int tl_probe_run(const tl_net *net, const tl_dataset *train, const int64_t *train_ids, int64_t ntrain,
                 const tl_dataset *val, const int64_t *val_ids, int64_t nval, const tl_probe_opts *o, tl_pool *pool,
                 tl_progress_fn progress, void *progress_user, tl_log_fn log, void *log_user, tl_probe *out,
                 tl_err *e);

/* Twice the standard error of the difference in validation accuracy
 * between layers a and b, paired over the same images (the images only
 * one of them gets right decide it): a difference above this is beyond
 * noise. */
double tl_probe_noise(const tl_probe *p, int a, int b);

void tl_probe_free(tl_probe *p);

#endif
