/* Internal to lib/nn: the training tape's state, shared by its planning
 * (tape_plan.c: which values and gradients exist and where they live) and
 * its execution (tape.c: the forward and backward passes over a batch). */
#ifndef TL_NN_TAPE_INTERNAL_H
#define TL_NN_TAPE_INTERNAL_H

#include "comm.h"
#include "infer.h"
#include "tape.h"

typedef struct {
    float *value;       /* batch x size */
    float *grad;        /* batch x size, for nodes whose gradient matters */
    float *mean, *var, *invstd; /* BN: per channel; LAYERNORM: per row of the batch */
    float *probs;       /* ATTENTION: batch x heads x t x t */
    uint8_t *mask;      /* DROPOUT: batch x size */
    int rg;             /* requires grad */
    int pre;            /* in the frozen prefix: computed by inference */
    int keep;           /* its value is stored (the tape computes it, or reads it) */
    int bn_train;       /* BN ran on batch statistics in the last forward */
    int from_bn;        /* ACT (relu/relu6): the last forward wrote its value from the batch norm before
                           it (tl_batchnorm_train_forward_act), whose own value was left unwritten */
    int written;        /* backward: grad holds a contribution */
    int uses;           /* nodes that read its value */
    const float *act_dy; /* backward, BN: the gradient of the relu/relu6 after it, which its
                            own backward applies (NULL: grad holds its gradient already) */
} slot;

typedef struct {
    tl_kws *kws;
    float *scratch;
} tape_worker;

struct tl_tape {
    tl_model *m;
    int max_batch;
    slot *s;
    tape_worker *w;
    int nw;
    size_t scratch_floats;
    float *tmp;         /* batch x largest node: a second contribution to a gradient */
    /* Convolution weight gradients: the batch is cut into `parts` fixed
     * runs of images, each summed into its own (transposed) accumulator,
     * then the parts are added in order: results do not depend on which
     * thread ran a part, nor on the thread count up to `parts`. */
    int parts;
    float **wacc;       /* parts x wacc_floats */
    double *bacc;       /* parts x bacc_floats */
    size_t wacc_floats, bacc_floats;
    /* Gradient buffers are shared by nodes whose gradients are never live
     * at the same time (a node's gradient lives from its last consumer's
     * backward step to its own). */
    float **gslot;
    size_t *gslot_floats;
    int ngslots;
    /* The frozen prefix (nodes that need no gradient and run the same in
     * training as in inference) runs through the fused inference engine,
     * one image per thread, on a view of the model cut after its last
     * needed node; only the values the rest of the graph reads are kept. */
    tl_model sub;
    tl_infer *prefix;
    int *pre_nodes;
    float **pre_dst;
    int npre;
    /* The weights of the convolution being run, packed once for the GEMM
     * micro-kernel (forward: W; backward data: W^T) and shared by every
     * image: weights do not change within a step, and re-packing them per
     * image and tile cost as much as a quarter of a ResNet step. */
    float *wpack;
    int exact;          /* direct convolutions only (tl_tape_set_exact) */
    size_t bytes;
    int train;
    uint64_t seed;
    /* data parallelism (tape_sync.c): this pass's images start at
     * first_image of the step's batch; batch norm synchronised over sync */
    int first_image;
    tl_comm *sync;
    double *sync_buf;      /* 2 x (largest BN's channels + 1) */
    double sync_images;    /* the last forward pass's images over every process */
    int sync_failed;
    tl_err sync_err;
};

void tl_tape_bn_forward_sync(tl_tape *t, tl_pool *pool, int node, int images);
void tl_tape_bn_backward_sync(tl_tape *t, tl_pool *pool, int node, int images, float *dx);

static inline int param_trains(const tl_model *m, int p) { return p >= 0 && !m->params[p].frozen && !m->params[p].is_buffer; }

static inline int node_trains(const tl_model *m, const tl_node *n)
{
    return param_trains(m, n->weight) || param_trains(m, n->bias) || param_trains(m, n->extra[0]) ||
           param_trains(m, n->extra[1]);
}

/* Weight gradients of these convolutions are summed per part of the batch
 * (one GEMM over tiles spanning images); others go by channel ranges. */
static inline int conv_by_parts(const tl_model *m, const tl_node *n)
{
    return n->op == TL_OP_CONV && n->geom.groups == 1 && param_trains(m, n->weight);
}

#endif
