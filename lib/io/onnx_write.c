/* The ONNX graph as protobuf bytes (field numbers from onnx.proto, the
 * schema Debian's libonnx-dev ships). Protobuf prefixes every embedded
 * message with its length, so each message is encoded twice: once into a
 * counting sink for its length, then for real. Counting never touches the
 * tensors' bytes, so the weights are read once, streamed to the file
 * without a copy (a transposed initializer goes through one row buffer). */
#include "onnx_graph.h"
#include "outfile.h"

#include <string.h>

typedef struct pb {
    FILE *f;      /* NULL: only count */
    uint64_t n;   /* bytes emitted (or counted) */
    const volatile sig_atomic_t *stop;
    int stopped;
} pb;

enum { WT_VARINT = 0, WT_I32 = 5, WT_LEN = 2 };

static void put(pb *p, const void *d, size_t n)
{
    p->n += n;
    if (p->stop && *p->stop)
        p->stopped = 1;
    if (p->f && n && !p->stopped)
        (void)fwrite(d, 1, n, p->f);
}

static void varint(pb *p, uint64_t v)
{
    unsigned char b[10];
    int k = 0;
    do {
        b[k] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v)
            b[k] |= 0x80;
        k++;
    } while (v);
    put(p, b, (size_t)k);
}

static void tag(pb *p, int field, int wt) { varint(p, (uint64_t)field << 3 | (uint64_t)wt); }

/* int64 fields: negative values are ten-byte two's complement varints. */
static void f_int(pb *p, int field, int64_t v)
{
    tag(p, field, WT_VARINT);
    varint(p, (uint64_t)v);
}

static void f_bytes(pb *p, int field, const void *d, size_t n)
{
    tag(p, field, WT_LEN);
    varint(p, n);
    put(p, d, n);
}

static void f_str(pb *p, int field, const char *s) { f_bytes(p, field, s, strlen(s)); }

static void f_float(pb *p, int field, float v)
{
    unsigned char b[4];
    uint32_t u;
    memcpy(&u, &v, 4);
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(u >> (8 * i));
    tag(p, field, WT_I32);
    put(p, b, 4);
}

typedef void (*enc_fn)(pb *p, const void *msg);

/* An embedded message: its length (counted first), then its bytes. */
static void f_msg(pb *p, int field, enc_fn fn, const void *msg)
{
    pb count = {0};
    fn(&count, msg);
    tag(p, field, WT_LEN);
    varint(p, count.n);
    if (p->f) {
        fn(p, msg);
    } else {
        p->n += count.n;
    }
}

/* ---- messages ---- */

static size_t dtype_size(int dtype) { return dtype == OX_INT64 ? 8 : dtype == OX_UINT8 ? 1 : 4; }

static size_t tensor_bytes(const ox_tensor *t)
{
    size_t n = dtype_size(t->dtype);
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->dims[i];
    return n;
}

/* Tensor data little-endian (x86 and every target we build for are). */
static void raw_data(pb *p, const ox_tensor *t)
{
    size_t bytes = tensor_bytes(t);
    tag(p, 9, WT_LEN);
    varint(p, bytes);
    if (!p->f || !t->transposed) {
        put(p, t->data, bytes);
        return;
    }
    /* dims[0] rows of dims[1]; the source holds dims[1] rows of dims[0]. */
    int64_t rows = t->dims[0], cols = t->dims[1];
    const float *src = t->data;
    float buf[1024];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c0 = 0; c0 < cols; c0 += 1024) {
            int64_t m = cols - c0 < 1024 ? cols - c0 : 1024;
            for (int64_t c = 0; c < m; c++)
                buf[c] = src[(c0 + c) * rows + r];
            put(p, buf, (size_t)m * sizeof(float));
        }
}

static void enc_tensor(pb *p, const void *msg)
{
    const ox_tensor *t = msg;
    for (int i = 0; i < t->ndim; i++)
        f_int(p, 1, t->dims[i]);
    f_int(p, 2, t->dtype);
    f_str(p, 8, t->name);
    raw_data(p, t);
}

static void enc_attr(pb *p, const void *msg)
{
    const ox_attr *a = msg;
    f_str(p, 1, a->name);
    switch (a->type) {
    case OXA_FLOAT: f_float(p, 2, a->f); break;
    case OXA_INT: f_int(p, 3, a->i); break;
    case OXA_INTS:
        for (int i = 0; i < a->nints; i++)
            f_int(p, 8, a->ints[i]);
        break;
    }
    f_int(p, 20, a->type);
}

static void enc_node(pb *p, const void *msg)
{
    const ox_node *n = msg;
    for (int i = 0; i < n->nin; i++)
        f_str(p, 1, n->in[i]);
    for (int i = 0; i < n->nout; i++)
        f_str(p, 2, n->out[i]);
    f_str(p, 3, n->name);
    f_str(p, 4, n->op);
    for (int i = 0; i < n->nattr; i++)
        f_msg(p, 5, enc_attr, &n->attr[i]);
}

static void enc_dim(pb *p, const void *msg)
{
    int64_t d = *(const int64_t *)msg;
    if (d < 0)
        f_str(p, 2, "batch"); /* dim_param */
    else
        f_int(p, 1, d); /* dim_value */
}

static void enc_shape(pb *p, const void *msg)
{
    const ox_io *io = msg;
    for (int i = 0; i < io->ndim; i++)
        f_msg(p, 1, enc_dim, &io->dims[i]);
}

static void enc_tensor_type(pb *p, const void *msg)
{
    const ox_io *io = msg;
    f_int(p, 1, io->dtype);
    f_msg(p, 2, enc_shape, io);
}

static void enc_type(pb *p, const void *msg) { f_msg(p, 1, enc_tensor_type, msg); }

static void enc_value_info(pb *p, const void *msg)
{
    const ox_io *io = msg;
    f_str(p, 1, io->name);
    f_msg(p, 2, enc_type, io);
}

static void enc_graph(pb *p, const void *msg)
{
    const ox_graph *g = msg;
    for (int i = 0; i < g->nnodes; i++)
        f_msg(p, 1, enc_node, &g->nodes[i]);
    f_str(p, 2, g->name);
    for (int i = 0; i < g->ninits; i++)
        f_msg(p, 5, enc_tensor, &g->inits[i]);
    f_msg(p, 11, enc_value_info, &g->input);
    f_msg(p, 12, enc_value_info, &g->output);
}

typedef struct {
    const char *key, *value;
} kv;

static void enc_kv(pb *p, const void *msg)
{
    const kv *e = msg;
    f_str(p, 1, e->key);
    f_str(p, 2, e->value);
}

static void enc_opset(pb *p, const void *msg)
{
    f_str(p, 1, "");
    f_int(p, 2, *(const int *)msg);
}

typedef struct {
    const ox_graph *g;
    int opset;
    const char *producer_version;
} model;

static void enc_model(pb *p, const void *msg)
{
    const model *m = msg;
    f_int(p, 1, 8); /* IR version 8: ONNX 1.10 to 1.12 */
    f_str(p, 2, "tl");
    f_str(p, 3, m->producer_version);
    f_msg(p, 7, enc_graph, m->g);
    f_msg(p, 8, enc_opset, &m->opset);
    for (int i = 0; i < m->g->nmeta; i++) {
        kv e = {m->g->meta_keys[i], m->g->meta_values[i]};
        f_msg(p, 14, enc_kv, &e);
    }
}

/* protobuf refuses messages of 2 GiB and more. */
#define PB_LIMIT ((uint64_t)INT32_MAX)

int ox_write(const ox_graph *g, int opset, const char *producer_version, const char *path,
             const volatile sig_atomic_t *stop, int64_t *bytes, tl_err *e)
{
    model m = {g, opset, producer_version};
    pb count = {0};
    enc_model(&count, &m);
    if (count.n > PB_LIMIT)
        return tl_fail(e, "%s: the model needs %.2f GB, over the 2 GB limit of one ONNX file", path,
                       (double)count.n / 1e9);
    tl_outfile out;
    if (tl_outfile_open(&out, path, e))
        return -1;
    pb p = {out.fp, 0, stop, 0};
    enc_model(&p, &m);
    if (p.stopped) {
        tl_outfile_abort(&out);
        return tl_fail(e, "%s: interrupted", path);
    }
    if (p.n != count.n) {
        tl_outfile_abort(&out);
        return tl_fail(e, "%s: internal error: %llu bytes written, %llu counted", path, (unsigned long long)p.n,
                       (unsigned long long)count.n);
    }
    /* A failed write left the stream's error flag set: commit reports it
     * and removes the temporary file. */
    if (tl_outfile_commit(&out, e))
        return -1;
    if (bytes)
        *bytes = (int64_t)count.n;
    return 0;
}
