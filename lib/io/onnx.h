/* ONNX export: a network (or a feature head fused with its backbone) as
 * one ONNX graph (IR version 8, opset 17, the version Debian's ONNX 1.12
 * checks) that ONNX Runtime and OpenCV's dnn module run with the logits
 * tl computes. The batch dimension is symbolic ("batch"). Weights are
 * written as they are (batch norm stays a BatchNormalization node, so the
 * graph is the network, not tl's folded inference plan).
 *
 * Input "input": float [batch, 3, S, S], preprocessed as tl does (resized,
 * cropped, (x/255 - mean)/std, channel order). With preprocess set, input
 * "image": uint8 [batch, S, S, 3], RGB pixels of the resized and cropped
 * image (the layout decoders produce); the graph scales, normalises and
 * reorders channels itself. Resizing stays the caller's.
 *
 * Output: "logits" (a network's classifier, or a fused head's scores),
 * "probabilities" (a softmax, or per-class sigmoids for a multi-label
 * head), or "features" (a named layer, pooled
 * over space or tokens as tl-extract pools it). The model's metadata
 * (tl.classes, tl.mean, tl.std, tl.input_size, ...) goes into
 * metadata_props, with tl.output and tl.preprocessing saying how to feed
 * and read the graph. */
#ifndef TL_IO_ONNX_H
#define TL_IO_ONNX_H

#include "checkpoint.h"

#include <signal.h>

#define TL_ONNX_OPSET 17

typedef struct tl_onnx_opts {
    const char *layer;   /* NULL: logits (a network with a classifier) or the default features */
    int spatial_pool;    /* a spatial or token layer is averaged to one vector (default 1) */
    int preprocess;      /* uint8 NHWC RGB input, normalisation in the graph */
    int probabilities;   /* append a softmax (a sigmoid per class with multilabel) */
    int multilabel;      /* the head scores each class on its own */
    /* A linear head on the layer's vectors (head_k x head_d, bias head_k),
     * with its class names; NULL: none. */
    const float *head_w, *head_b;
    int head_k, head_d;
    char *const *head_classes;
    /* More metadata, NULL-terminated key, value pairs (override the
     * checkpoint's). */
    const char *const *meta;
    const char *producer_version;
    /* Set (by a signal handler) to abandon the write: no file is left. */
    const volatile sig_atomic_t *stop;
} tl_onnx_opts;

void tl_onnx_opts_default(tl_onnx_opts *o);

typedef struct tl_onnx_info {
    int nodes, initializers;
    int64_t bytes;
    const char *input, *output; /* graph input and output names */
    int dim;                    /* values per image in the output */
} tl_onnx_info;

/* Writes the graph to path ("-": standard output) through a temporary file;
 * an operation ONNX cannot express fails with a one-line error naming the
 * layer, before anything is written. info may be NULL. */
int tl_onnx_export(const tl_net *net, const tl_onnx_opts *o, const char *path, tl_onnx_info *info, tl_err *e);

#endif
