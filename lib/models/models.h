/* The model zoo: a registry from architecture name to graph builder. */
#ifndef TL_MODELS_H
#define TL_MODELS_H

#include "nn/model.h"

typedef struct tl_arch_opts {
    int num_classes;   /* 0: a backbone without classifier */
    float width_mult;  /* MobileNets; 1.0 elsewhere */
    int input_size;    /* square input */
    int in_channels;
    int tf_same;       /* TensorFlow SAME padding (TFLite imports) */
    float dropout;     /* before the classifier */
    float bn_eps;
} tl_arch_opts;

void tl_arch_opts_default(tl_arch_opts *o);
/* Builds and finalises the graph; parameters are zero until loaded or
 * initialised. */
tl_model *tl_arch_build(const char *arch, const tl_arch_opts *o, tl_err *e);
/* Names of the known architectures, NULL-terminated. */
const char *const *tl_arch_names(void);

tl_model *tl_build_mobilenet_v2(const tl_arch_opts *o, tl_err *e);
tl_model *tl_build_mobilenet_v1(const tl_arch_opts *o, tl_err *e);

/* Adds global average pooling named pool_name (the default features),
 * dropout (o->dropout > 0) and a linear classifier named fc_name when
 * o->num_classes > 0, then finalises the model. */
int tl_models_pool_classifier(tl_model *m, int x, const char *pool_name, const char *fc_name, const tl_arch_opts *o,
                              tl_err *e);

/* torchvision's _make_divisible: channels rounded to a multiple of 8
 * without dropping more than 10 %. */
int tl_make_divisible(double v, int divisor);

#endif
