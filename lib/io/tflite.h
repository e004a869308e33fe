/* TFLite import: parse a .tflite flatbuffer (schema tensorflow/lite/schema/
 * schema.fbs, subgraph 0 only) and convert the MobileNets it recognises into
 * a float checkpoint with torchvision parameter names. Everything read from
 * the file is validated: a malformed file gives a one-line error. */
#ifndef TL_TFLITE_H
#define TL_TFLITE_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

/* TensorType values from the schema. */
enum {
    TL_TFL_FLOAT32 = 0, TL_TFL_FLOAT16 = 1, TL_TFL_INT32 = 2, TL_TFL_UINT8 = 3, TL_TFL_INT64 = 4,
    TL_TFL_STRING = 5, TL_TFL_BOOL = 6, TL_TFL_INT16 = 7, TL_TFL_COMPLEX64 = 8, TL_TFL_INT8 = 9,
    TL_TFL_FLOAT64 = 10
};

/* BuiltinOperator values used by the importer. */
enum {
    TL_TFL_ADD = 0, TL_TFL_AVERAGE_POOL_2D = 1, TL_TFL_CONV_2D = 3, TL_TFL_DEPTHWISE_CONV_2D = 4,
    TL_TFL_DEQUANTIZE = 6, TL_TFL_FULLY_CONNECTED = 9, TL_TFL_RESHAPE = 22, TL_TFL_SOFTMAX = 25,
    TL_TFL_PAD = 34, TL_TFL_MEAN = 40, TL_TFL_SQUEEZE = 43, TL_TFL_PADV2 = 60, TL_TFL_QUANTIZE = 114
};

/* Padding and ActivationFunctionType enums. */
enum { TL_TFL_SAME = 0, TL_TFL_VALID = 1 };
enum { TL_TFL_ACT_NONE = 0, TL_TFL_ACT_RELU = 1, TL_TFL_ACT_RELU_N1_TO_1 = 2, TL_TFL_ACT_RELU6 = 3,
       TL_TFL_ACT_TANH = 4, TL_TFL_ACT_SIGN_BIT = 5 };

#define TL_TFL_MAX_DIMS 8

typedef struct tl_tfl_tensor {
    int ndim;
    int32_t shape[TL_TFL_MAX_DIMS]; /* all >= 0 */
    int type;                       /* TL_TFL_* */
    uint32_t buffer;                /* < nbuffers */
    const char *name;               /* inside the file, not NUL-terminated */
    uint32_t name_len;
    int nscale, nzero;              /* quantisation: counts are 0, 1 or shape[qdim] */
    float *scale;
    int64_t *zero_point;
    int qdim;
} tl_tfl_tensor;

typedef struct tl_tfl_buffer {
    const uint8_t *data; /* NULL when empty */
    size_t size;
} tl_tfl_buffer;

typedef struct tl_tfl_op {
    int code;       /* BuiltinOperator: max(deprecated_builtin_code, builtin_code) */
    int ninputs, noutputs;
    int32_t *inputs, *outputs; /* each -1 (optional, absent) or a valid tensor index */
    int opt_type;   /* BuiltinOptions union type, 0 = none */
    /* Decoded options of the ops we know; schema defaults otherwise. */
    int padding, stride_w, stride_h, dilation_w, dilation_h, depth_multiplier;
    int activation, filter_w, filter_h, keep_dims, weights_format;
} tl_tfl_op;

/* A parsed model: a read-only view for the converter and for tests. */
typedef struct tl_tflite {
    const uint8_t *buf;
    size_t n;
    void *map; /* owned mapping (tl_tflite_open), NULL for open_mem */
    size_t map_size;
    char source[256]; /* basename of the file (tl_tflite_open), "" otherwise */
    uint32_t version;
    int nsubgraphs;
    int ntensors, nbuffers, nops, ninputs, noutputs;
    tl_tfl_tensor *tensors;
    tl_tfl_buffer *buffers;
    tl_tfl_op *ops;
    int32_t *inputs, *outputs;
    size_t budget; /* bytes the parse may still allocate */
} tl_tflite;

/* Parsing allocates at most this many bytes per byte of the file (plus
 * 64 KiB), and takes time linear in what it allocates. */
#define TL_TFLITE_MEM_PER_BYTE 4

int tl_tflite_open(const char *path, tl_tflite **out, tl_err *e);
/* For tests and fuzzing; buf must outlive the model. */
int tl_tflite_open_mem(const uint8_t *buf, size_t n, tl_tflite **out, tl_err *e);
void tl_tflite_free(tl_tflite *m);

/* "CONV_2D", ... or "BUILTIN_<n>" for codes the table does not name. */
const char *tl_tflite_op_name(int code, char tmp[24]);
const char *tl_tflite_type_name(int type);
/* Number of operators with this builtin code. */
int tl_tflite_count_ops(const tl_tflite *m, int code);

/* Summary for humans and tests: arch guess, input shape, ops by type.
 * Returns the length written (truncated to n-1), like snprintf. */
int tl_tflite_describe(const tl_tflite *m, char *buf, size_t n);

/* Converts a recognised MobileNet (V1, V2) into a torchvision-named float
 * checkpoint at out_path (safetensors). labels_path may be NULL: classes
 * are then "0", "1", ... . log (may be NULL) receives one-line notes. */
int tl_tflite_convert(const tl_tflite *m, const char *labels_path, const char *out_path, tl_log_fn log,
                      void *log_user, tl_err *e);
/* The same network as an int8 checkpoint (tl-formats(5)) that keeps the
 * file's integers and scales: the int8 engine then computes what TFLite's
 * integer kernels compute, byte for byte. Only for quantised files (uint8,
 * or int8 with per-channel weights); a float one is refused. */
int tl_tflite_convert_int8(const tl_tflite *m, const char *labels_path, const char *out_path, tl_log_fn log,
                           void *log_user, tl_err *e);

#endif
