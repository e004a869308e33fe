/* Internal to lib/io's TFLite importer: the recognised network (one record
 * per convolution or classifier, with the tensors it reads and writes) that
 * tflite_convert.c builds and both writers (float, tflite_convert.c; int8,
 * tflite_int8.c) emit. */
#ifndef TL_IO_TFLITE_INTERNAL_H
#define TL_IO_TFLITE_INTERNAL_H

#include "safetensors.h"
#include "tflite.h"

#define TL_TFL_MAX_CONVS 64

typedef struct tl_tfl_conv {
    int op, pad_op;     /* pad_op: a PAD folded into this conv, or -1 */
    int dw;             /* depthwise */
    int w, b;           /* weight and bias tensors (b -1: none) */
    int in;             /* activation tensor read (after any PAD: before it) */
    int out;            /* activation tensor written */
    int cin, cout, k, stride;
    int pad[4];         /* top, bottom, left, right */
    char wname[48];     /* checkpoint name of the weight */
    char bn[48];        /* BN prefix; "" for the classifier (weight + bias) */
} tl_tfl_conv;

typedef struct tl_tfl_plan {
    int arch;
    double width;
    int input, size;
    int nconv;
    tl_tfl_conv conv[TL_TFL_MAX_CONVS];
    int has_fc;         /* the last conv record is the classifier */
    int num_classes;
    int pool_op;        /* the global average pooling (AVERAGE_POOL_2D or MEAN) */
    int pool_in, pool_out;
} tl_tfl_plan;

static inline const tl_tfl_tensor *tl_tfl_t(const tl_tflite *m, int i) { return &m->tensors[i]; }

static inline int64_t tl_tfl_numel(const tl_tfl_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

/* The tensor holding the constant data of t (t, or the input of the
 * DEQUANTIZE that makes it); -1 when t is not a numeric constant. */
int tl_tfl_const_source(const tl_tflite *m, int t);

/* int8 export (tflite_int8.c). A layer's weight as the integers TFLite
 * multiplies (q - zero point), in PyTorch's layout, with its per-output-
 * channel scales, int32 bias and activation parameters. */
int tl_tfl_int8_check(const tl_tflite *m, const tl_tfl_plan *p, tl_err *e);
/* Adds P.weight (I8, or I16 when an asymmetric uint8 weight needs it) and
 * the tensors tl-formats(5) lists for an int8 layer. Buffers are kept on
 * *keep (tl_free each) until the writer has written. */
int tl_tfl_int8_emit(const tl_tflite *m, const tl_tfl_conv *c, tl_st_writer *wr, void **keep, int *nkeep,
                     tl_err *e);
/* The metadata value of tl.quant.multiplier: how TFLite's kernels form
 * each layer's real multiplier for this file's activation type. */
const char *tl_tfl_int8_multiplier(const tl_tflite *m, const tl_tfl_plan *p);
/* The metadata value of tl.quant.pooling (JSON), written into buf. */
int tl_tfl_int8_pooling(const tl_tflite *m, const tl_tfl_plan *p, char *buf, size_t n, tl_err *e);

#endif
