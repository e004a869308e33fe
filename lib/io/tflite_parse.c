/* .tflite flatbuffer → tl_tflite: tensors, buffers, operators and the
 * builtin options the importer needs. Field ids follow schema.fbs; a union
 * field takes two ids (its type, then its value). */
#include "tflite.h"
#include "flatbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Model */
enum { F_MODEL_VERSION = 0, F_MODEL_OPCODES = 1, F_MODEL_SUBGRAPHS = 2, F_MODEL_BUFFERS = 4 };
/* OperatorCode */
enum { F_OPCODE_DEPRECATED = 0, F_OPCODE_BUILTIN = 3 };
/* SubGraph */
enum { F_SG_TENSORS = 0, F_SG_INPUTS = 1, F_SG_OUTPUTS = 2, F_SG_OPERATORS = 3 };
/* Buffer: data inside the flatbuffer, or (large models) offset/size from the file start */
enum { F_BUF_DATA = 0, F_BUF_OFFSET = 1, F_BUF_SIZE = 2 };
/* Tensor */
enum { F_T_SHAPE = 0, F_T_TYPE = 1, F_T_BUFFER = 2, F_T_NAME = 3, F_T_QUANT = 4 };
/* QuantizationParameters (details is a union: ids 4 and 5) */
enum { F_Q_SCALE = 2, F_Q_ZERO = 3, F_Q_DIM = 6 };
/* Operator (builtin_options is a union: ids 3 and 4) */
enum { F_OP_OPCODE = 0, F_OP_INPUTS = 1, F_OP_OUTPUTS = 2, F_OP_OPT_TYPE = 3, F_OP_OPT = 4 };

/* BuiltinOptions union member numbers. */
enum { U_CONV2D = 1, U_DEPTHWISE = 2, U_POOL2D = 5, U_FULLY_CONNECTED = 8, U_ADD = 11, U_RESHAPE = 17,
       U_REDUCER = 27 };

#define SCHEMA_VERSION 3

static const char *const op_names[] = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE",
    "DEQUANTIZE", "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP", "L2_NORMALIZATION",
    "L2_POOL_2D", "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D",
    "MUL", "RELU", "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX",
    "SPACE_TO_DEPTH", "SVDF", "TANH", "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM",
    "EMBEDDING_LOOKUP_SPARSE", "PAD", "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND",
    "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN", "SUB", "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP", "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE",
    "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM", "ARG_MAX", "MINIMUM", "LESS", "NEG",
    "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE", "SIN", "TRANSPOSE_CONV",
    "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG", "SUM", "SQRT", "RSQRT",
    "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX", "PACK", "LOGICAL_OR",
    "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT", "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY", "SQUARE",
    "ZEROS_LIKE", "FILL", "FLOOR_MOD", "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU",
    "SQUARED_DIFFERENCE", "MIRROR_PAD", "ABS", "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N",
    "GATHER_ND", "COS", "WHERE", "RANK", "ELU", "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE",
    "MATRIX_SET_DIAG", "ROUND", "HARD_SWISH",
};

const char *tl_tflite_op_name(int code, char tmp[24])
{
    if (code >= 0 && code < (int)(sizeof op_names / sizeof op_names[0]))
        return op_names[code];
    snprintf(tmp, 24, "BUILTIN_%d", code);
    return tmp;
}

static const char *const type_names[] = {"FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "STRING",
                                         "BOOL", "INT16", "COMPLEX64", "INT8", "FLOAT64"};

const char *tl_tflite_type_name(int type)
{
    if (type >= 0 && type < (int)(sizeof type_names / sizeof type_names[0]))
        return type_names[type];
    return "UNKNOWN";
}

/* Bytes per element, 0 for types without a fixed size. */
static size_t type_size(int type)
{
    static const size_t sizes[] = {4, 2, 4, 1, 8, 0, 1, 2, 8, 1, 8};
    return type >= 0 && type < (int)(sizeof sizes / sizeof sizes[0]) ? sizes[type] : 0;
}

int tl_tflite_count_ops(const tl_tflite *m, int code)
{
    int k = 0;
    for (int i = 0; i < m->nops; i++)
        k += m->ops[i].code == code;
    return k;
}

void tl_tflite_free(tl_tflite *m)
{
    if (!m)
        return;
    if (m->tensors)
        for (int i = 0; i < m->ntensors; i++) {
            tl_free(m->tensors[i].scale);
            tl_free(m->tensors[i].zero_point);
        }
    if (m->ops)
        for (int i = 0; i < m->nops; i++) {
            tl_free(m->ops[i].inputs);
            tl_free(m->ops[i].outputs);
        }
    tl_free(m->tensors);
    tl_free(m->buffers);
    tl_free(m->ops);
    tl_free(m->inputs);
    tl_free(m->outputs);
    if (m->map)
        munmap(m->map, m->map_size);
    tl_free(m);
}

/* A flatbuffer may point many table entries at one shared table or vector,
 * so a small file could describe millions of tensors or operators, each
 * copied here: everything the parse allocates is charged to a budget of
 * TL_TFLITE_MEM_PER_BYTE bytes per file byte (plus 64 KiB), far above
 * what any real model needs (its weights dominate its size). */
static void *budget_alloc(tl_tflite *m, size_t count, size_t size, tl_err *e)
{
    if (count == 0)
        count = 1;
    /* charged as malloc spends it: 16-byte granules, 32 at least */
    size_t cost = count > SIZE_MAX / size - 32 ? SIZE_MAX : (count * size + 8 + 15) / 16 * 16;
    if (cost < 32)
        cost = 32;
    if (cost > m->budget) {
        tl_fail(e, "its tables would take more than %zu bytes of memory for a %zu-byte file (shared tables?)",
                (size_t)TL_TFLITE_MEM_PER_BYTE * m->n + 65536, m->n);
        return NULL;
    }
    m->budget -= cost;
    /* calloc, not the 64-byte aligned tl_alloc: these are many small arrays
     * (two per operator), and tl_free is free */
    void *p = calloc(count, size);
    if (!p)
        tl_fail(e, "out of memory (%zu x %zu bytes)", count, size);
    return p;
}

/* An [int] field as tensor indices: each -1 (when allow_absent) or < ntensors. */
static int read_indices(tl_tflite *m, const tl_fb *fb, const tl_fb_table *t, int id, int ntensors, int allow_absent,
                        int32_t **out, int *count, const char *what, tl_err *e)
{
    tl_fb_vec v;
    if (tl_fb_get_vec(fb, t, id, 4, &v, e))
        return tl_fail_prefix(e, "%s", what);
    *out = budget_alloc(m, v.len, sizeof(int32_t), e);
    if (!*out)
        return -1;
    *count = (int)v.len;
    for (uint32_t k = 0; k < v.len; k++) {
        int32_t x = tl_fb_i32(fb, v.start + 4 * (size_t)k);
        if ((x == -1 && allow_absent) || (x >= 0 && x < ntensors))
            (*out)[k] = x;
        else
            return tl_fail(e, "%s index %d out of range (%d tensors)", what, x, ntensors);
    }
    return 0;
}

static int parse_buffers(tl_tflite *m, const tl_fb *fb, const tl_fb_table *model, tl_err *e)
{
    tl_fb_vec v;
    if (tl_fb_get_vec(fb, model, F_MODEL_BUFFERS, 4, &v, e))
        return tl_fail_prefix(e, "buffers");
    m->nbuffers = (int)v.len;
    m->buffers = budget_alloc(m, v.len, sizeof *m->buffers, e);
    if (!m->buffers)
        return -1;
    for (uint32_t k = 0; k < v.len; k++) {
        tl_fb_table b;
        tl_fb_vec d;
        uint64_t off, size;
        if (tl_fb_vec_table(fb, &v, k, &b, e) || tl_fb_get_vec(fb, &b, F_BUF_DATA, 1, &d, e) ||
            tl_fb_get_u64(fb, &b, F_BUF_OFFSET, 0, &off, e) || tl_fb_get_u64(fb, &b, F_BUF_SIZE, 0, &size, e))
            return tl_fail_prefix(e, "buffer %u", k);
        if (d.len) {
            m->buffers[k].data = fb->buf + d.start;
            m->buffers[k].size = d.len;
        } else if (off > 1) { /* stored after the flatbuffer; offset 1 marks "none" */
            if (off > fb->n || size > fb->n - off)
                return tl_fail(e, "buffer %u: data at %llu+%llu lies outside the %zu-byte file", k,
                               (unsigned long long)off, (unsigned long long)size, fb->n);
            m->buffers[k].data = size ? fb->buf + off : NULL;
            m->buffers[k].size = (size_t)size;
        }
    }
    return 0;
}

static int parse_quant(tl_tflite *m, const tl_fb *fb, const tl_fb_table *q, tl_tfl_tensor *t, tl_err *e)
{
    tl_fb_vec s, z;
    int32_t qdim;
    if (tl_fb_get_vec(fb, q, F_Q_SCALE, 4, &s, e) || tl_fb_get_vec(fb, q, F_Q_ZERO, 8, &z, e) ||
        tl_fb_get_i32(fb, q, F_Q_DIM, 0, &qdim, e))
        return tl_fail_prefix(e, "quantization");
    if (s.len == 0)
        return 0; /* min/max only, or custom details: not a usable scale */
    if (s.len > 1) {
        if (qdim < 0 || qdim >= t->ndim)
            return tl_fail(e, "quantized_dimension %d out of range (%d dims)", qdim, t->ndim);
        if ((int64_t)s.len != t->shape[qdim])
            return tl_fail(e, "%u scales for dimension %d of size %d", s.len, qdim, t->shape[qdim]);
    }
    if (z.len && z.len != s.len)
        return tl_fail(e, "%u zero points for %u scales", z.len, s.len);
    t->qdim = s.len > 1 ? qdim : 0;
    t->nscale = (int)s.len;
    t->nzero = (int)z.len;
    t->scale = budget_alloc(m, s.len, sizeof(float), e);
    t->zero_point = t->scale ? budget_alloc(m, z.len, sizeof(int64_t), e) : NULL;
    if (!t->scale || !t->zero_point)
        return -1;
    for (uint32_t k = 0; k < s.len; k++) {
        t->scale[k] = tl_fb_f32(fb, s.start + 4 * (size_t)k);
        if (!(t->scale[k] > 0) || t->scale[k] > 1e30f) /* also rejects NaN */
            return tl_fail(e, "scale %u is %g", k, (double)t->scale[k]);
    }
    for (uint32_t k = 0; k < z.len; k++)
        t->zero_point[k] = (int64_t)tl_fb_u64(fb, z.start + 8 * (size_t)k);
    return 0;
}

static int parse_tensor(tl_tflite *m, const tl_fb *fb, const tl_fb_table *tt, tl_tfl_tensor *t, tl_err *e)
{
    tl_fb_vec shape;
    int8_t type;
    tl_fb_table q;
    if (tl_fb_get_vec(fb, tt, F_T_SHAPE, 4, &shape, e) || tl_fb_get_i8(fb, tt, F_T_TYPE, 0, &type, e) ||
        tl_fb_get_u32(fb, tt, F_T_BUFFER, 0, &t->buffer, e) ||
        tl_fb_get_str(fb, tt, F_T_NAME, &t->name, &t->name_len, e))
        return -1;
    if (shape.len > TL_TFL_MAX_DIMS)
        return tl_fail(e, "%u dimensions (at most %d)", shape.len, TL_TFL_MAX_DIMS);
    t->ndim = (int)shape.len;
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        t->shape[d] = tl_fb_i32(fb, shape.start + 4 * (size_t)d);
        if (t->shape[d] < 0)
            return tl_fail(e, "negative dimension %d", t->shape[d]);
        numel *= (uint64_t)t->shape[d]; /* <= (2^31)^8 would overflow: cap below */
        if (numel > ((uint64_t)1 << 40))
            return tl_fail(e, "shape too large");
    }
    t->type = type;
    if (type < 0 || type > TL_TFL_FLOAT64)
        return tl_fail(e, "unknown type %d", type);
    if (t->buffer >= (uint32_t)m->nbuffers)
        return tl_fail(e, "buffer index %u out of range (%d buffers)", t->buffer, m->nbuffers);
    const tl_tfl_buffer *b = &m->buffers[t->buffer];
    size_t es = type_size(type);
    if (b->size && es && numel * es != b->size)
        return tl_fail(e, "%zu data bytes for %llu %s elements", b->size, (unsigned long long)numel,
                       tl_tflite_type_name(type));
    int r = tl_fb_get_table(fb, tt, F_T_QUANT, &q, e);
    if (r < 0 || (r > 0 && parse_quant(m, fb, &q, t, e)))
        return -1;
    return 0;
}

/* Options of the op types the converter reads. */
static int parse_options(const tl_fb *fb, const tl_fb_table *o, tl_tfl_op *op, tl_err *e)
{
    int8_t i8a = 0, i8b = 0;
    int32_t a = 0, b = 0, c = 0, d = 0, f = 0;
    uint8_t u8 = 0;
    switch (op->opt_type) {
    case U_CONV2D: /* padding, stride_w, stride_h, activation, dilation_w, dilation_h */
        if (tl_fb_get_i8(fb, o, 0, 0, &i8a, e) || tl_fb_get_i32(fb, o, 1, 0, &a, e) ||
            tl_fb_get_i32(fb, o, 2, 0, &b, e) || tl_fb_get_i8(fb, o, 3, 0, &i8b, e) ||
            tl_fb_get_i32(fb, o, 4, 1, &c, e) || tl_fb_get_i32(fb, o, 5, 1, &d, e))
            return -1;
        op->padding = i8a, op->stride_w = a, op->stride_h = b, op->activation = i8b;
        op->dilation_w = c, op->dilation_h = d;
        break;
    case U_DEPTHWISE: /* padding, stride_w, stride_h, depth_multiplier, activation, dilations */
        if (tl_fb_get_i8(fb, o, 0, 0, &i8a, e) || tl_fb_get_i32(fb, o, 1, 0, &a, e) ||
            tl_fb_get_i32(fb, o, 2, 0, &b, e) || tl_fb_get_i32(fb, o, 3, 0, &f, e) ||
            tl_fb_get_i8(fb, o, 4, 0, &i8b, e) || tl_fb_get_i32(fb, o, 5, 1, &c, e) ||
            tl_fb_get_i32(fb, o, 6, 1, &d, e))
            return -1;
        op->padding = i8a, op->stride_w = a, op->stride_h = b, op->depth_multiplier = f;
        op->activation = i8b, op->dilation_w = c, op->dilation_h = d;
        break;
    case U_POOL2D: /* padding, stride_w, stride_h, filter_width, filter_height, activation */
        if (tl_fb_get_i8(fb, o, 0, 0, &i8a, e) || tl_fb_get_i32(fb, o, 1, 0, &a, e) ||
            tl_fb_get_i32(fb, o, 2, 0, &b, e) || tl_fb_get_i32(fb, o, 3, 0, &c, e) ||
            tl_fb_get_i32(fb, o, 4, 0, &d, e) || tl_fb_get_i8(fb, o, 5, 0, &i8b, e))
            return -1;
        op->padding = i8a, op->stride_w = a, op->stride_h = b, op->filter_w = c, op->filter_h = d;
        op->activation = i8b;
        break;
    case U_FULLY_CONNECTED: /* activation, weights_format */
        if (tl_fb_get_i8(fb, o, 0, 0, &i8a, e) || tl_fb_get_i8(fb, o, 1, 0, &i8b, e))
            return -1;
        op->activation = i8a, op->weights_format = i8b;
        break;
    case U_ADD: /* activation */
        if (tl_fb_get_i8(fb, o, 0, 0, &i8a, e))
            return -1;
        op->activation = i8a;
        break;
    case U_REDUCER: /* keep_dims */
        if (tl_fb_get_u8(fb, o, 0, 0, &u8, e))
            return -1;
        op->keep_dims = u8;
        break;
    default:
        break;
    }
    return 0;
}

/* The options union member an op code must carry, 0 when we do not care. */
static int expected_options(int code)
{
    switch (code) {
    case TL_TFL_CONV_2D: return U_CONV2D;
    case TL_TFL_DEPTHWISE_CONV_2D: return U_DEPTHWISE;
    case TL_TFL_AVERAGE_POOL_2D: return U_POOL2D;
    case TL_TFL_FULLY_CONNECTED: return U_FULLY_CONNECTED;
    case TL_TFL_ADD: return U_ADD;
    case TL_TFL_MEAN: return U_REDUCER;
    default: return 0;
    }
}

static int parse_operator(tl_tflite *m, const tl_fb *fb, const tl_fb_table *ot, const int32_t *codes, int ncodes,
                          int index, tl_tfl_op *op, tl_err *e)
{
    uint32_t opcode;
    uint8_t opt_type;
    char tmp[24];
    if (tl_fb_get_u32(fb, ot, F_OP_OPCODE, 0, &opcode, e) || tl_fb_get_u8(fb, ot, F_OP_OPT_TYPE, 0, &opt_type, e))
        return tl_fail_prefix(e, "operator %d", index);
    if (opcode >= (uint32_t)ncodes)
        return tl_fail(e, "operator %d opcode index %u out of range (%d operator codes)", index, opcode, ncodes);
    op->code = codes[opcode];
    op->opt_type = opt_type;
    op->stride_w = op->stride_h = op->dilation_w = op->dilation_h = op->depth_multiplier = 1;
    for (int io = 0; io < 2; io++) {
        int32_t **dst = io ? &op->outputs : &op->inputs;
        int *count = io ? &op->noutputs : &op->ninputs;
        char what[48];
        snprintf(what, sizeof what, "operator %d %s", index, io ? "output" : "input");
        if (read_indices(m, fb, ot, io ? F_OP_OUTPUTS : F_OP_INPUTS, m->ntensors, !io, dst, count, what, e))
            return -1;
    }
    int want = expected_options(op->code);
    if (want && opt_type != want && opt_type != 0)
        return tl_fail(e, "operator %d (%s) carries options of union type %d, expected %d", index,
                       tl_tflite_op_name(op->code, tmp), opt_type, want);
    if (!want)
        op->opt_type = opt_type = 0; /* options we do not decode */
    tl_fb_table o;
    int r = opt_type ? tl_fb_get_table(fb, ot, F_OP_OPT, &o, e) : 0;
    if (r < 0 || (r > 0 && parse_options(fb, &o, op, e)))
        return tl_fail_prefix(e, "operator %d options", index);
    return 0;
}

static int parse_model(tl_tflite *m, tl_err *e)
{
    const tl_fb fb = {m->buf, m->n};
    tl_fb_table model, sg;
    tl_fb_vec v;
    if (tl_fb_root(&fb, "TFL3", &model, e) || tl_fb_get_u32(&fb, &model, F_MODEL_VERSION, 0, &m->version, e))
        return -1;
    if (m->version != SCHEMA_VERSION)
        return tl_fail(e, "unsupported schema version %u (expected %d)", m->version, SCHEMA_VERSION);

    if (tl_fb_get_vec(&fb, &model, F_MODEL_OPCODES, 4, &v, e))
        return tl_fail_prefix(e, "operator codes");
    int ncodes = (int)v.len;
    int32_t *codes = budget_alloc(m, v.len, sizeof(int32_t), e);
    if (!codes)
        return -1;
    for (uint32_t k = 0; k < v.len; k++) {
        tl_fb_table oc;
        int8_t dep;
        int32_t code;
        if (tl_fb_vec_table(&fb, &v, k, &oc, e) || tl_fb_get_i8(&fb, &oc, F_OPCODE_DEPRECATED, 0, &dep, e) ||
            tl_fb_get_i32(&fb, &oc, F_OPCODE_BUILTIN, 0, &code, e)) {
            tl_free(codes);
            return tl_fail_prefix(e, "operator code %u", k);
        }
        /* Old files fill only the byte field, new ones both (the byte one is
         * capped at 127): the larger value is the real code. */
        codes[k] = code > dep ? code : dep;
        if (codes[k] < 0) {
            int32_t bad = codes[k]; /* read before the free */
            tl_free(codes);
            return tl_fail(e, "operator code %u is negative (%d)", k, bad);
        }
    }

    int rc = -1;
    if (parse_buffers(m, &fb, &model, e))
        goto out;
    if (tl_fb_get_vec(&fb, &model, F_MODEL_SUBGRAPHS, 4, &v, e)) {
        tl_fail_prefix(e, "subgraphs");
        goto out;
    }
    m->nsubgraphs = (int)v.len;
    if (v.len == 0) {
        tl_fail(e, "model has no subgraph");
        goto out;
    }
    if (tl_fb_vec_table(&fb, &v, 0, &sg, e)) {
        tl_fail_prefix(e, "subgraph 0");
        goto out;
    }

    if (tl_fb_get_vec(&fb, &sg, F_SG_TENSORS, 4, &v, e)) {
        tl_fail_prefix(e, "tensors");
        goto out;
    }
    m->ntensors = (int)v.len;
    m->tensors = budget_alloc(m, v.len, sizeof *m->tensors, e);
    if (!m->tensors)
        goto out;
    for (uint32_t k = 0; k < v.len; k++) {
        tl_fb_table tt;
        if (tl_fb_vec_table(&fb, &v, k, &tt, e) || parse_tensor(m, &fb, &tt, &m->tensors[k], e)) {
            tl_fail_prefix(e, "tensor %u", k);
            goto out;
        }
    }
    if (read_indices(m, &fb, &sg, F_SG_INPUTS, m->ntensors, 0, &m->inputs, &m->ninputs, "subgraph input", e) ||
        read_indices(m, &fb, &sg, F_SG_OUTPUTS, m->ntensors, 0, &m->outputs, &m->noutputs, "subgraph output", e))
        goto out;

    if (tl_fb_get_vec(&fb, &sg, F_SG_OPERATORS, 4, &v, e)) {
        tl_fail_prefix(e, "operators");
        goto out;
    }
    m->nops = (int)v.len;
    m->ops = budget_alloc(m, v.len, sizeof *m->ops, e);
    if (!m->ops)
        goto out;
    for (uint32_t k = 0; k < v.len; k++) {
        tl_fb_table ot;
        if (tl_fb_vec_table(&fb, &v, k, &ot, e)) {
            tl_fail_prefix(e, "operator %u", k);
            goto out;
        }
        if (parse_operator(m, &fb, &ot, codes, ncodes, (int)k, &m->ops[k], e))
            goto out;
    }
    rc = 0;
out:
    tl_free(codes);
    return rc;
}

int tl_tflite_open_mem(const uint8_t *buf, size_t n, tl_tflite **out, tl_err *e)
{
    *out = NULL;
    tl_tflite *m = tl_xalloc(1, sizeof *m, e);
    if (!m)
        return -1;
    m->buf = buf;
    m->n = buf ? n : 0;
    m->budget = m->n > (SIZE_MAX - 65536) / TL_TFLITE_MEM_PER_BYTE ? SIZE_MAX : TL_TFLITE_MEM_PER_BYTE * m->n + 65536;
    if (parse_model(m, e)) {
        tl_tflite_free(m);
        return tl_fail_prefix(e, "tflite");
    }
    *out = m;
    return 0;
}

int tl_tflite_open(const char *path, tl_tflite **out, tl_err *e)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tl_fail(e, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int err = errno;
        close(fd);
        return tl_fail(e, "%s: %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return tl_fail(e, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return tl_fail(e, "tflite: empty file");
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (map == MAP_FAILED)
        return tl_fail(e, "%s: %s", path, strerror(err));
    if (tl_tflite_open_mem(map, size, out, e)) {
        munmap(map, size);
        return -1;
    }
    (*out)->map = map;
    (*out)->map_size = size;
    const char *base = strrchr(path, '/');
    snprintf((*out)->source, sizeof (*out)->source, "%s", base ? base + 1 : path);
    return 0;
}
