/* An ONNX graph being built in memory (only what tl writes): nodes with
 * their attributes, initializers that point at the model's parameters
 * instead of copying them, one input, one output and the model's
 * metadata. onnx_write.c serialises it as an ONNX ModelProto.
 *
 * Building never fails half-way: an allocation failure sets g->oom and
 * later calls do nothing; the caller checks it once at the end. */
#ifndef TL_IO_ONNX_GRAPH_H
#define TL_IO_ONNX_GRAPH_H

#include "core.h"

#include <signal.h>

/* TensorProto.DataType values */
enum { OX_FLOAT = 1, OX_UINT8 = 2, OX_INT64 = 7 };
/* AttributeProto.AttributeType values */
enum { OXA_FLOAT = 1, OXA_INT = 2, OXA_INTS = 7 };

#define OX_MAX_IN 5
#define OX_MAX_OUT 3
#define OX_MAX_ATTR 6
#define OX_MAX_INTS 8
#define OX_MAX_DIMS 4

typedef struct ox_attr {
    const char *name; /* a literal */
    int type;
    float f;
    int64_t i;
    int64_t ints[OX_MAX_INTS];
    int nints;
} ox_attr;

typedef struct ox_node {
    const char *op; /* a literal */
    char *name;
    char *in[OX_MAX_IN];
    int nin;
    char *out[OX_MAX_OUT];
    int nout;
    ox_attr attr[OX_MAX_ATTR];
    int nattr;
} ox_node;

typedef struct ox_tensor {
    char *name;
    int dtype;
    int ndim;
    int64_t dims[OX_MAX_DIMS];
    const void *data; /* borrowed, or owned below */
    void *owned;
    /* A 2-D float tensor stored transposed: data holds dims[1] rows of
     * dims[0] values, written out as dims[0] rows of dims[1]. */
    int transposed;
} ox_tensor;

/* A graph input or output; a dimension of -1 is the symbolic batch. */
typedef struct ox_io {
    char *name;
    int dtype;
    int ndim;
    int64_t dims[OX_MAX_DIMS];
} ox_io;

typedef struct ox_graph {
    char *name;
    ox_node *nodes;
    int nnodes, cap_nodes;
    ox_tensor *inits;
    int ninits, cap_inits;
    ox_io input, output;
    char **meta_keys, **meta_values;
    int nmeta, cap_meta;
    int oom;
} ox_graph;

void ox_graph_free(ox_graph *g);

/* Appends a node reading `in` (nin names) and writing the one output
 * `out`; returns it (NULL after an allocation failure) so attributes can
 * be added. The names are copied. */
ox_node *ox_node_add(ox_graph *g, const char *op, const char *name, const char *const *in, int nin, const char *out);
/* A second or third output (Split). */
void ox_node_output(ox_graph *g, ox_node *n, const char *out);
void ox_attr_int(ox_node *n, const char *name, int64_t v);
void ox_attr_float(ox_node *n, const char *name, float v);
void ox_attr_ints(ox_node *n, const char *name, const int64_t *v, int count);

/* An initializer over borrowed float data. */
void ox_init_borrow(ox_graph *g, const char *name, int ndim, const int64_t *dims, const float *data, int transposed);
/* An initializer owning a copy of count values of dtype (OX_FLOAT or
 * OX_INT64); ndim may be 0 (a scalar). */
void ox_init_copy(ox_graph *g, const char *name, int dtype, int ndim, const int64_t *dims, const void *data);
/* 1 if an initializer of this name exists. */
int ox_init_exists(const ox_graph *g, const char *name);

void ox_meta(ox_graph *g, const char *key, const char *value);
void ox_set_io(ox_graph *g, ox_io *io, const char *name, int dtype, int ndim, const int64_t *dims);

/* Serialises the graph as an ONNX ModelProto (IR version 8, default
 * domain at `opset`) to path ("-": standard output) through a temporary
 * file renamed at the end. Fails before writing anything when the model
 * would exceed protobuf's 2 GB message limit. *bytes gets the size. A
 * non-zero *stop (may be NULL) abandons the file: nothing is left. */
int ox_write(const ox_graph *g, int opset, const char *producer_version, const char *path,
             const volatile sig_atomic_t *stop, int64_t *bytes, tl_err *e);

#endif
