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
} tl_op;

#define TL_NAME_MAX 96

typedef struct tl_param {
    char name[TL_NAME_MAX];
    int ndim;
    int64_t shape[4];
    int64_t numel;
    size_t offset;  /* into tl_model.storage, in floats */
    float *data;    /* set by tl_model_finalize */
    int is_buffer;  /* running statistics: saved, not trained */
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
    float eps;                /* BN */
    float p;                  /* DROPOUT */
} tl_node;

typedef struct tl_model {
    char arch[32];
    tl_node *nodes;
    int nnodes, cap_nodes;
    tl_param *params;
    int nparams, cap_params;
    float *storage;
    size_t storage_floats;
    int in_c, in_h, in_w;
    int num_classes;
    int tf_same;       /* convolutions pad as TensorFlow's SAME does */
    int features_node; /* default output of tl-extract: pooled penultimate features */
    int logits_node;   /* -1 for a backbone without classifier */
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
/* Marks node as the end of a named stage (for --layer). */
int tl_model_name(tl_model *m, int node, const char *name, tl_err *e);
/* Allocates parameter storage once the graph is complete. */
int tl_model_finalize(tl_model *m, tl_err *e);

int tl_model_find_param(const tl_model *m, const char *name);
/* Node whose stage name matches, or -1. "logits" and "features" are aliases
 * for the classifier output and the pooled penultimate features. */
int tl_model_find_node(const tl_model *m, const char *name);
int64_t tl_node_size(const tl_node *n);
int64_t tl_model_param_count(const tl_model *m, int include_buffers);
/* Multiply-adds for one image. */
int64_t tl_model_macs(const tl_model *m);

#endif
