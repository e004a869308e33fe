/* A network's int8 quantisation, attached to a model loaded from an int8
 * checkpoint (man tl-formats(5)): for each quantised layer (convolution or
 * linear node) its integer weights, per-output-channel weight scales, the
 * int32 bias and the scale and zero point of the values it reads and
 * writes. The model's float parameters hold the dequantised weights, so
 * anything that reads parameters still works; tl_infer_new runs such a
 * model on the int8 engine (infer_q8.c). */
#ifndef TL_NN_QUANT_H
#define TL_NN_QUANT_H

#include <stdint.h>

#include "model.h"

typedef struct tl_qlayer {
    int node;              /* the TL_OP_CONV or TL_OP_LINEAR node */
    int16_t *w;            /* integer weights, laid out as the node's weight */
    float *wscale;         /* per output channel: real weight = w * wscale */
    int32_t *bias;         /* per output channel, in units of in_scale * wscale */
    float in_scale, out_scale;
    int in_zero, out_zero; /* uint8 zero points */
} tl_qlayer;

/* How a global average pooling is computed when its result is uint8
 * (tl.quant.pooling): TFLite's MEAN (rescaled by in/out scale, rounded
 * half away from zero) or its AVERAGE_POOL_2D (the rounded mean of the
 * bytes, the output taking its own parameters). */
enum { TL_QPOOL_NONE, TL_QPOOL_MEAN, TL_QPOOL_AVERAGE };

struct tl_quant {
    tl_qlayer *layers;
    int nlayers;
    int *layer_of_node;    /* per node: index into layers, or -1 */
    int pool_rule;         /* TL_QPOOL_*: NONE = the pooled value takes the parameters of its reader, if any */
    float pool_scale;
    int pool_zero;
    int pool_int8;         /* the source's values were int8 (stored + 128): its rounding works on them */
    int mult_f32;          /* tl.quant.multiplier = float_product: in_scale x weight_scale rounded to float
                              before dividing by out_scale, as TFLite's uint8 kernels compute it */
};

void tl_quant_free(tl_quant *q);
/* The node whose value a convolution or linear node's step produces: the
 * node itself, or a batch norm and then a ReLU/ReLU6 that only it feeds
 * (what inference folds into one step). */
int tl_quant_fused_end(const tl_model *m, int node);
/* Whether the int8 engine can run this operation at all (anything it
 * cannot quantise runs in float inside it). */
int tl_quant_op_supported(tl_op op);

#endif
