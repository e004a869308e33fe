/* A network is a list of nodes in execution order. Each node reads the
 * outputs of earlier nodes and owns named parameters, whose names are
 * torchvision state_dict names, so a torchvision checkpoint maps one to
 * one. All parameters live in one allocation (views by offset). */
#ifndef TL_NN_MODEL_H
#define TL_NN_MODEL_H

#include "core.h"
#include "kernels/kernels.h"

typedef enum {
    TL_OP_INPUT,
    TL_OP_CONV,    /* weight OIHW, optional bias */
    TL_OP_BN,      /* batch norm: weight, bias, running_mean, running_var */
    TL_OP_ACT,     /* activation in `act` */
    TL_OP_ADD,     /* residual: in[0] + in[1] */
    TL_OP_GAP,     /* global average pool -> c x 1 x 1 */
    TL_OP_LINEAR,  /* weight [out, in], bias */
    TL_OP_DROPOUT, /* identity at inference */
    TL_OP_MAXPOOL, /* geometry in `pool` */
    TL_OP_AVGPOOL,
    TL_OP_ADAPTIVE_AVGPOOL, /* to the node's h x w, PyTorch's cell bounds */
    TL_OP_CONCAT,  /* channels of in[0], then of in[1] */
    TL_OP_SCALE,   /* squeeze-excitation: in[0] (c,h,w) times in[1] (c,1,1) */
    /* Token sequences (Vision Transformers) are stored as (c = tokens, h = 1,
     * w = width): each token's values are contiguous. */
    TL_OP_TOKENS,       /* conv map (d,gh,gw) -> class token + patches, + position embedding */
    TL_OP_LAYERNORM,    /* over w, per token */
    TL_OP_ATTENTION,    /* scaled dot-product attention of `heads` heads: (t,1,3w) q|k|v -> (t,1,w) */
    TL_OP_TOKEN_LINEAR, /* the same linear map on every token */
    TL_OP_SELECT_TOKEN, /* token 0 -> (w,1,1) */
} tl_op;

#define TL_NAME_MAX 96

typedef struct tl_param {
    char name[TL_NAME_MAX];
    int ndim;
    int64_t shape[4];
    int64_t numel;
    size_t offset;  /* into tl_model.storage, in floats */
    float *data;    /* set by tl_model_finalize */
    float *grad;    /* set by tl_model_alloc_grads; NULL for buffers */
    int is_buffer;  /* running statistics: saved, not trained */
    int frozen;     /* not updated by training, and no gradient computed */
    int group;      /* learning-rate group (stage), 0 = earliest */
} tl_param;

typedef struct tl_node {
    tl_op op;
    int in[2];
    int c, h, w;              /* output shape of one image */
    char name[TL_NAME_MAX];   /* a named stage ends here, e.g. "features.3"; else "" */
    tl_conv_geom geom;        /* CONV */
    int act;                  /* ACT */
    int weight, bias;         /* CONV, LINEAR, BN: parameter indices or -1 */
    int running_mean, running_var;
    float eps;                /* BN, LAYERNORM */
    float momentum;           /* BN running statistics, PyTorch's convention (0.1) */
    float p;                  /* DROPOUT */
    tl_pool_geom pool;        /* MAXPOOL, AVGPOOL */
    int heads;                /* ATTENTION */
    int extra[2];             /* TOKENS: class token and position embedding */
    int tokens;               /* the value is a token sequence (c tokens of w values) */
} tl_node;

typedef struct tl_quant tl_quant; /* quant.h: int8 quantisation of a loaded int8 checkpoint */

typedef struct tl_model {
    char arch[32];
    tl_node *nodes;
    int nnodes, cap_nodes;
    tl_param *params;
    int nparams, cap_params;
    float *storage;
    size_t storage_floats;
    float *grad_storage;      /* parallel to storage, once training starts */
    int freeze_bn;            /* every BN runs on its running statistics */
    int in_c, in_h, in_w;
    int num_classes;
    int tf_same;       /* convolutions pad as TensorFlow's SAME does */
    int features_node; /* default output of tl-extract: pooled penultimate features */
    int logits_node;   /* -1 for a backbone without classifier */
    tl_quant *quant;   /* NULL for a float model; owned */
} tl_model;

tl_model *tl_model_new(const char *arch, int c, int h, int w, tl_err *e);
void tl_model_free(tl_model *m);

/* Builders return the new node's index, or -1 with e set. */
int tl_model_conv(tl_model *m, int in, const char *prefix, int cout, int k, int stride, int groups, int bias,
                  tl_err *e);
int tl_model_bn(tl_model *m, int in, const char *prefix, float eps, tl_err *e);
int tl_model_act(tl_model *m, int in, int act, tl_err *e);
int tl_model_add(tl_model *m, int a, int b, tl_err *e);
int tl_model_gap(tl_model *m, int in, tl_err *e);
int tl_model_linear(tl_model *m, int in, const char *prefix, int out, tl_err *e);
int tl_model_dropout(tl_model *m, int in, float p, tl_err *e);
int tl_model_pool(tl_model *m, int in, int max, int k, int stride, int pad, int ceil_mode, tl_err *e);
int tl_model_adaptive_avgpool(tl_model *m, int in, int oh, int ow, tl_err *e);
int tl_model_concat(tl_model *m, int a, int b, tl_err *e);
int tl_model_scale(tl_model *m, int x, int s, tl_err *e);
/* conv output (d, gh, gw) -> (1 + gh*gw tokens, 1, d); parameters named
 * class_token [1,1,d] and pos_embedding [1,1+gh*gw,d]. */
int tl_model_tokens(tl_model *m, int in, const char *class_token, const char *pos_embedding, tl_err *e);
int tl_model_layernorm(tl_model *m, int in, const char *prefix, float eps, tl_err *e);
/* Multi-head self-attention with parameters prefix.in_proj_weight/bias and
 * prefix.out_proj.weight/bias, as torch.nn.MultiheadAttention names them. */
int tl_model_attention(tl_model *m, int in, const char *prefix, int heads, tl_err *e);
int tl_model_token_linear(tl_model *m, int in, const char *prefix, int out, tl_err *e);
int tl_model_select_token(tl_model *m, int in, tl_err *e);
/* Marks node as the end of a named stage (for --layer). */
int tl_model_name(tl_model *m, int node, const char *name, tl_err *e);
/* Allocates parameter storage once the graph is complete. */
int tl_model_finalize(tl_model *m, tl_err *e);
/* Sets every parameter's learning-rate group: the named stages before the
 * classifier cut into `parts` runs, then the classifier alone. Returns the
 * number of groups (-1: out of memory). */
int tl_model_assign_groups(tl_model *m, int parts);
/* True when every batch norm is the identity-with-bias a TFLite import
 * writes (weight 1, mean 0, variance 1 - eps): the real statistics were
 * folded into the convolutions and are unknown. */
int tl_model_bn_folded(const tl_model *m);
/* Gradient storage for training (zeroed), one float per parameter float. */
int tl_model_alloc_grads(tl_model *m, tl_err *e);

int tl_model_find_param(const tl_model *m, const char *name);
/* Node whose stage name matches, or -1. "logits" and "features" are aliases
 * for the classifier output and the pooled penultimate features. */
int tl_model_find_node(const tl_model *m, const char *name);
/* The node holding the classifier's weights: the logits node itself (a
 * linear layer), or the nearest node with weights on its input chain
 * (SqueezeNet: a 1x1 convolution, then ReLU and average pooling to the
 * logits); -1 for a backbone without classifier. A new number of classes
 * replaces this node's parameters, and it starts the head group. */
int tl_model_classifier_node(const tl_model *m);
int64_t tl_node_size(const tl_node *n);
int64_t tl_model_param_count(const tl_model *m, int include_buffers);
/* Multiply-adds for one image. */
int64_t tl_model_macs(const tl_model *m);

#endif
