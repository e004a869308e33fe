/* The model zoo: a registry from architecture name to graph builder. */
#ifndef TL_MODELS_H
#define TL_MODELS_H

#include "nn/model.h"

typedef struct tl_arch_opts {
    int num_classes;   /* 0: a backbone without classifier */
    float width_mult;  /* MobileNets; 1.0 elsewhere */
    int input_w, input_h; /* the input image (any aspect ratio the graph allows) */
    int in_channels;
    int tf_same;       /* TensorFlow SAME padding (TFLite imports) */
    float dropout;     /* before the classifier; < 0: the architecture's default */
    float bn_eps;      /* 0: the architecture's default (torchvision's) */
} tl_arch_opts;

void tl_arch_opts_default(tl_arch_opts *o);
/* Builds and finalises the graph; parameters are zero until loaded or
 * initialised. */
tl_model *tl_arch_build(const char *arch, const tl_arch_opts *o, tl_err *e);
/* The known architectures, in the registry's order: i in 0..count-1. */
int tl_arch_count(void);
const char *tl_arch_name(int i);

/* How torchvision initialises a family from scratch (init.c). */
typedef enum tl_init_policy {
    TL_INIT_RESNET,     /* Kaiming normal fan-out; classifier PyTorch's default uniform */
    TL_INIT_MOBILE,     /* Kaiming normal fan-out; classifier normal(0, 0.01) (MobileNets, small CNN) */
    TL_INIT_VGG,        /* as MobileNets */
    TL_INIT_EFFICIENT,  /* Kaiming normal fan-out; classifier uniform(+-1/sqrt(classes)) */
    TL_INIT_SQUEEZE,    /* Kaiming uniform fan-in; final convolution normal(0, 0.01) */
    TL_INIT_VIT,        /* trunc-normal patch projection, Xavier encoder, zero head */
    TL_INIT_OTHER,      /* not in the registry: PyTorch's defaults */
} tl_init_policy;
tl_init_policy tl_arch_init_policy(const char *arch);

/* One builder per family; arch names the member (e.g. "resnet50"). */
tl_model *tl_build_mobilenet_v2(const char *arch, const tl_arch_opts *o, tl_err *e);
tl_model *tl_build_mobilenet_v1(const char *arch, const tl_arch_opts *o, tl_err *e);
tl_model *tl_build_resnet(const char *arch, const tl_arch_opts *o, tl_err *e);
tl_model *tl_build_vgg(const char *arch, const tl_arch_opts *o, tl_err *e);
tl_model *tl_build_squeezenet(const char *arch, const tl_arch_opts *o, tl_err *e);
tl_model *tl_build_mobilenet_v3(const char *arch, const tl_arch_opts *o, tl_err *e);
tl_model *tl_build_efficientnet(const char *arch, const tl_arch_opts *o, tl_err *e);
tl_model *tl_build_vit(const char *arch, const tl_arch_opts *o, tl_err *e);
tl_model *tl_build_small_cnn(const char *arch, const tl_arch_opts *o, tl_err *e);

/* An option's value, or the architecture's default when the option says
 * "default" (dropout < 0, bn_eps == 0). */
float tl_arch_dropout(const tl_arch_opts *o, float arch_default);
float tl_arch_bn_eps(const tl_arch_opts *o, float arch_default);

/* timm publishes the same networks under other parameter names. For a
 * torchvision parameter name of arch, writes timm's name into out and
 * returns 1; returns 0 when timm uses the same name, -1 when arch has no
 * timm mapping. Per family: tl_timm_name_<family>, same contract. */
int tl_timm_name(const char *arch, const char *tv_name, char *out, size_t n);
int tl_timm_name_resnet(const char *arch, const char *tv_name, char *out, size_t n);
int tl_timm_name_vgg(const char *arch, const char *tv_name, char *out, size_t n);
int tl_timm_name_mobilenet(const char *arch, const char *tv_name, char *out, size_t n);
int tl_timm_name_efficientnet(const char *arch, const char *tv_name, char *out, size_t n);
int tl_timm_name_vit(const char *arch, const char *tv_name, char *out, size_t n);

/* Adds global average pooling named pool_name (the default features),
 * dropout (o->dropout, or default_dropout when that is < 0; none if 0) and
 * a linear classifier named fc_name when o->num_classes > 0, then
 * finalises the model. */
int tl_models_pool_classifier(tl_model *m, int x, const char *pool_name, const char *fc_name, const tl_arch_opts *o,
                              float default_dropout, tl_err *e);

/* Initialises every parameter as torchvision does for the family (see
 * init.c), reproducibly from seed. */
void tl_model_init(tl_model *m, uint64_t seed);
/* The same for one node's parameters (a new classifier head). */
void tl_model_init_node(tl_model *m, int node, uint64_t seed);
/* The classifier (tl_model_classifier_node) alone, as tl_model_init would. */
void tl_model_init_classifier(tl_model *m, uint64_t seed);

/* Conv (no bias) + BN (prefix.0, prefix.1) + activation (none: TL_ACT_NONE),
 * as torchvision's Conv2dNormActivation. */
int tl_block_conv_bn_act(tl_model *m, int x, const char *prefix, int cout, int k, int stride, int groups, int act,
                         float eps, tl_err *e);
/* Squeeze-excitation: pool, prefix.fc1 (1x1 conv with bias), inner_act,
 * prefix.fc2, gate_act, then x scaled channel by channel. */
int tl_block_squeeze_excite(tl_model *m, int x, const char *prefix, int squeeze, int inner_act, int gate_act,
                            tl_err *e);

/* torchvision's _make_divisible: channels rounded to a multiple of 8
 * without dropping more than 10 %. */
int tl_make_divisible(double v, int divisor);

#endif
