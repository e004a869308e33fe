/* The int8 inference engine: a quantised model compiled into steps over
 * uint8 NHWC activations (convolutions with requantisation, bias and
 * ReLU/ReLU6 fused; TFLite's ADD; max pooling; global averages), with any
 * layer left in float (the first convolution and the classifier by
 * default, or what tl-quantize --keep-float named) run on the float
 * kernels between quantise/dequantise steps. Steps nobody needs for the
 * requested outputs are dropped; buffers share memory by liveness; each
 * worker thread runs whole images on its own arena, so the bytes do not
 * depend on the thread count. */
#include "infer_q8.h"
#include "kernels/quant.h"
#include "node_forward.h"
#include "quant.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t bytes;
    int value;       /* node whose value it holds */
    int q;           /* uint8 NHWC (else float CHW) */
    float scale;     /* q: real = scale * (byte - zero) */
    int zero;
    int cs;          /* q: channel stride */
} buf;

typedef enum {
    S_QCONV, S_QADD, S_QMAXPOOL, S_QGAP, S_QAVG, S_QGAPF, S_QCONCAT, S_QUANT, S_DEQUANT, S_REQUANT,
    S_FCONV, S_FLINEAR, S_FBN, S_FACT, S_FADD, S_FPLAIN
} skind;

typedef struct {
    skind kind;
    int node;         /* node whose value this step writes */
    int src;          /* node holding geometry and parameters */
    int in[2], out;   /* buffer ids */
    int act;
    tl_q8_conv *qc;
    tl_q8_add add;
    int32_t mult;     /* S_QGAP, S_REQUANT: fixed-point rescale */
    int shift;
    float *w, *b, *packed; /* float steps: folded (owned) */
    int fq;           /* S_FCONV: quantised as stored (tl_q8_fconv; out is uint8) */
    int keep;
} step;

typedef struct {
    tl_kws *kws;
    uint8_t *arena;
    int32_t *sums;
    float *fscratch; /* float convolutions' scratch (tl_conv_forward_scratch_floats) */
    void *qscratch;  /* int8 convolutions' scratch (tl_q8_conv_scratch_bytes) */
} worker;

struct tl_q8_infer {
    const tl_model *m;
    const tl_quant *qt;
    buf *bufs;
    int nbufs, capbufs;
    int *fbuf, *qbuf;    /* per node: buffer of its float / uint8 form, -1 */
    int *alias;          /* per node: node whose value it shares (dropout) */
    int *qp_set;         /* per node: the value has quantisation parameters */
    float *qp_scale;
    int *qp_zero;
    step *steps;
    int nsteps, capsteps;
    size_t *off;
    size_t arena_bytes, max_c;
    size_t worker_bytes; /* arena, sums and both scratches of one worker */
    int *outputs, *out_buf, noutputs;
    worker *workers;
    int nworkers;
    /* The classifier (float linear layers and activations at the end) runs
     * on TAIL rows at once, so its weights are read once per batch. */
    int tail;            /* first step of the tail; nsteps when none */
    size_t *tail_off;    /* per buffer: floats into tail_buf, or SIZE_MAX */
    float *tail_buf;
};

#define TAIL 32
/* Float linear layers up to this many floats keep a packed copy (the float
 * engine's cap, infer.c: only VGG-16's first classifier layer is over). */
#define Q8_LINEAR_PACK_MAX ((size_t)1 << 24)

static int stride_of(int c) { return c <= 4 ? 4 : tl_q8_stride(c); }

static int resolve(const tl_q8_infer *q, int v)
{
    while (q->alias[v] != v)
        v = q->alias[v];
    return v;
}

static int new_buf(tl_q8_infer *q, int value, int isq, float scale, int zero, tl_err *e)
{
    if (q->nbufs == q->capbufs) {
        int cap = q->capbufs ? q->capbufs * 2 : 64;
        buf *nb = realloc(q->bufs, (size_t)cap * sizeof *nb);
        if (!nb)
            return tl_fail(e, "out of memory"), -1;
        q->bufs = nb;
        q->capbufs = cap;
    }
    const tl_node *n = &q->m->nodes[value];
    buf *b = &q->bufs[q->nbufs];
    b->value = value;
    b->q = isq;
    b->scale = scale;
    b->zero = zero;
    b->cs = stride_of(n->c);
    b->bytes = isq ? (size_t)n->h * n->w * b->cs : (size_t)tl_node_size(n) * sizeof(float);
    return q->nbufs++;
}

static step *new_step(tl_q8_infer *q, skind kind, int node, tl_err *e)
{
    if (q->nsteps == q->capsteps) {
        int cap = q->capsteps ? q->capsteps * 2 : 64;
        step *ns = realloc(q->steps, (size_t)cap * sizeof *ns);
        if (!ns) {
            tl_fail(e, "out of memory");
            return NULL;
        }
        q->steps = ns;
        q->capsteps = cap;
    }
    step *s = &q->steps[q->nsteps++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->node = s->src = node;
    s->in[0] = s->in[1] = -1;
    return s;
}

/* The float form of value v, dequantising its uint8 form if needed. */
static int ensure_f(tl_q8_infer *q, int v, tl_err *e)
{
    if (q->fbuf[v] >= 0)
        return q->fbuf[v];
    int from = q->qbuf[v];
    int b = new_buf(q, v, 0, 0, 0, e);
    step *s = b >= 0 ? new_step(q, S_DEQUANT, v, e) : NULL;
    if (!s)
        return -1;
    s->in[0] = from;
    s->out = b;
    return q->fbuf[v] = b;
}

/* The uint8 form of value v with these parameters: quantised from its
 * float form, or rescaled from a uint8 form with other parameters. */
static int ensure_q(tl_q8_infer *q, int v, float scale, int zero, tl_err *e)
{
    int have = q->qbuf[v];
    if (have >= 0 && q->bufs[have].scale == scale && q->bufs[have].zero == zero)
        return have;
    int b = new_buf(q, v, 1, scale, zero, e);
    if (b < 0)
        return -1;
    step *s;
    if (have >= 0) {
        s = new_step(q, S_REQUANT, v, e);
        if (!s)
            return -1;
        s->in[0] = have;
        tl_q8_quantize_multiplier((double)q->bufs[have].scale / scale, &s->mult, &s->shift);
    } else {
        s = new_step(q, S_QUANT, v, e);
        if (!s)
            return -1;
        s->in[0] = q->fbuf[v];
    }
    s->out = b;
    if (have < 0)
        q->qbuf[v] = b;
    return b;
}

/* The activation range of a uint8 value (TFLite's rule). */
void tl_q8_act_range(int act, float scale, int zero, int *qmin, int *qmax)
{
    *qmin = 0;
    *qmax = 255;
    if (act == TL_ACT_RELU || act == TL_ACT_RELU6)
        *qmin = zero > 0 ? zero : 0;
    if (act == TL_ACT_RELU6) {
        /* compared as a float: a layer calibrated (nearly) dead has a scale so small that 6 / scale
         * is past INT_MAX (or infinite), which the int conversion would turn into INT_MIN */
        float steps = roundf(6.0f / scale);
        if (steps < (float)(255 - zero))
            *qmax = zero + (int)steps;
    }
}

static const float *pdata(const tl_model *m, int i) { return i >= 0 ? m->params[i].data : NULL; }

/* A float convolution (+ batch norm + activation) folded and packed. */
static int plan_fconv(tl_q8_infer *q, int i, int *last, tl_err *e)
{
    const tl_model *m = q->m;
    const tl_node *n = &m->nodes[i];
    int end = i, bn = -1, act = TL_ACT_NONE;
    int uses_bn = i + 1 < m->nnodes && m->nodes[i + 1].op == TL_OP_BN && m->nodes[i + 1].in[0] == i;
    for (int k = i + 2; uses_bn && k < m->nnodes; k++)
        if (m->nodes[k].in[0] == i || m->nodes[k].in[1] == i)
            uses_bn = 0;
    if (uses_bn)
        bn = end = i + 1;
    if (end + 1 < m->nnodes && m->nodes[end + 1].op == TL_OP_ACT && m->nodes[end + 1].in[0] == end) {
        int sole = 1;
        for (int k = end + 2; k < m->nnodes; k++)
            if (m->nodes[k].in[0] == end || m->nodes[k].in[1] == end)
                sole = 0;
        for (int k = 0; k < q->noutputs; k++)
            if (q->outputs[k] == end || q->outputs[k] == i)
                sole = 0;
        if (sole)
            act = m->nodes[++end].act;
    }
    int in = ensure_f(q, resolve(q, n->in[0]), e);
    int out = in >= 0 ? new_buf(q, end, 0, 0, 0, e) : -1;
    step *s = out >= 0 ? new_step(q, S_FCONV, end, e) : NULL;
    if (!s)
        return -1;
    s->src = i;
    s->in[0] = in;
    s->out = out;
    s->act = act;
    q->fbuf[end] = out;
    int cout = n->c;
    size_t per = (size_t)(m->params[n->weight].numel / cout);
    float *w = tl_alloc_array((size_t)cout * per, sizeof(float));
    s->b = tl_alloc_array((size_t)cout, sizeof(float));
    if (!w || !s->b) {
        tl_free(w);
        return tl_fail(e, "out of memory folding a convolution");
    }
    const float *cw = m->params[n->weight].data, *cb = pdata(m, n->bias);
    const tl_node *bnn = bn >= 0 ? &m->nodes[bn] : NULL;
    for (int o = 0; o < cout; o++) {
        double scale = 1, shift = cb ? cb[o] : 0;
        if (bnn) {
            double g = m->params[bnn->weight].data[o], beta = m->params[bnn->bias].data[o];
            double mu = m->params[bnn->running_mean].data[o], var = m->params[bnn->running_var].data[o];
            scale = g / sqrt(var + bnn->eps);
            shift = (shift - mu) * scale + beta;
        }
        for (size_t j = 0; j < per; j++)
            w[o * per + j] = (float)(cw[o * per + j] * scale);
        s->b[o] = (float)shift;
    }
    const tl_kws *ws = q->workers[0].kws;
    s->packed = tl_alloc_array(tl_conv_packed_floats(ws, &n->geom), sizeof(float));
    if (!s->packed) {
        tl_free(w);
        return tl_fail(e, "out of memory packing a convolution");
    }
    tl_conv_pack(ws, &n->geom, w, s->packed);
    s->w = w; /* until fuse_quant: the unpacked weights, for tl_q8_fconv_pack */
    *last = end;
    return 0;
}

/* A float convolution whose output is only quantised (the stem an int8
 * checkpoint keeps in float, before its uint8 max pool) stores uint8
 * itself: the float map and the QUANT pass over it go away. */
static int fuse_quant(tl_q8_infer *q, tl_err *e)
{
    for (int s = 0; s < q->nsteps; s++) {
        step *st = &q->steps[s];
        if (st->kind != S_FCONV)
            continue;
        const tl_conv_geom *g = &q->m->nodes[st->src].geom;
        int ok = s + 1 < q->nsteps && q->steps[s + 1].kind == S_QUANT && q->steps[s + 1].in[0] == st->out &&
                 (st->act == TL_ACT_NONE || st->act == TL_ACT_RELU || st->act == TL_ACT_RELU6) &&
                 tl_q8_fconv_fits(q->workers[0].kws, g);
        for (int t = 0; ok && t < q->nsteps; t++)
            if (t != s + 1 && (q->steps[t].in[0] == st->out || q->steps[t].in[1] == st->out))
                ok = 0;
        for (int k = 0; ok && k < q->noutputs; k++)
            if (q->out_buf[k] == st->out)
                ok = 0;
        if (ok) {
            float *pw = tl_alloc_array(tl_q8_fconv_weights_floats(g), sizeof(float));
            if (!pw)
                return tl_fail(e, "out of memory packing a convolution");
            tl_q8_fconv_pack(g, st->w, pw);
            tl_free(st->packed);
            st->packed = pw;
            st->fq = 1;
            st->out = q->steps[s + 1].out;
            memmove(&q->steps[s + 1], &q->steps[s + 2], (size_t)(q->nsteps - s - 2) * sizeof *q->steps);
            q->nsteps--;
        }
        tl_free(st->w);
        st->w = NULL;
    }
    return 0;
}

/* A quantised convolution or linear layer. */
static int plan_qconv(tl_q8_infer *q, int i, const tl_qlayer *L, int *last, tl_err *e)
{
    const tl_model *m = q->m;
    const tl_node *n = &m->nodes[i];
    int end = tl_quant_fused_end(m, i);
    int act = m->nodes[end].op == TL_OP_ACT ? m->nodes[end].act : TL_ACT_NONE;
    int v = resolve(q, n->in[0]);
    int in = ensure_q(q, v, L->in_scale, L->in_zero, e);
    int out = in >= 0 ? new_buf(q, end, 1, L->out_scale, L->out_zero, e) : -1;
    step *s = out >= 0 ? new_step(q, S_QCONV, end, e) : NULL;
    if (!s)
        return -1;
    s->src = i;
    s->in[0] = in;
    s->out = out;
    q->qbuf[end] = out;
    tl_conv_geom g;
    if (n->op == TL_OP_CONV) {
        g = n->geom;
    } else {
        const tl_node *src = &m->nodes[v];
        memset(&g, 0, sizeof g);
        g.cin = (int)tl_node_size(src);
        g.h = g.w = g.kh = g.kw = 1;
        g.cout = n->c;
        tl_conv_geom_finish(&g);
    }
    double *mult = malloc((size_t)g.cout * sizeof *mult);
    if (!mult)
        return tl_fail(e, "out of memory");
    for (int o = 0; o < g.cout; o++) {
        /* TFLite's uint8 kernels round the product of the scales to float first */
        double prod = q->qt->mult_f32 ? (double)(float)(L->in_scale * L->wscale[o])
                                      : (double)L->in_scale * (double)L->wscale[o];
        mult[o] = prod / (double)L->out_scale;
    }
    tl_q8_out oq = {.zin = L->in_zero, .zout = L->out_zero};
    tl_q8_act_range(act, L->out_scale, L->out_zero, &oq.qmin, &oq.qmax);
    s->qc = tl_q8_conv_new(&g, q->bufs[in].cs, q->bufs[out].cs, L->w, L->bias, mult, &oq, e);
    free(mult);
    if (!s->qc)
        return tl_fail_prefix(e, "layer %s", m->params[n->weight].name);
    *last = end;
    return 0;
}

/* Has value v, or can it cheaply have, a uint8 form? */
static int q_params(const tl_q8_infer *q, int v, float *scale, int *zero)
{
    if (q->qbuf[v] >= 0) {
        *scale = q->bufs[q->qbuf[v]].scale;
        *zero = q->bufs[q->qbuf[v]].zero;
        return 1;
    }
    if (q->qp_set[v]) {
        *scale = q->qp_scale[v];
        *zero = q->qp_zero[v];
        return 1;
    }
    return 0;
}

static int plan_node(tl_q8_infer *q, int i, int *last, tl_err *e)
{
    const tl_model *m = q->m;
    const tl_node *n = &m->nodes[i];
    int a = n->in[0] >= 0 ? resolve(q, n->in[0]) : -1, b2 = n->in[1] >= 0 ? resolve(q, n->in[1]) : -1;
    int L = q->qt->layer_of_node[i];
    *last = i;
    switch (n->op) {
    case TL_OP_DROPOUT:
        q->alias[i] = a;
        return 0;
    case TL_OP_CONV:
        return L >= 0 ? plan_qconv(q, i, &q->qt->layers[L], last, e) : plan_fconv(q, i, last, e);
    case TL_OP_LINEAR:
        if (L >= 0)
            return plan_qconv(q, i, &q->qt->layers[L], last, e);
        break;
    case TL_OP_ADD: {
        int end = i, act = TL_ACT_NONE;
        if (i + 1 < m->nnodes && m->nodes[i + 1].op == TL_OP_ACT && tl_quant_fused_end(m, i) == i + 1)
            act = m->nodes[end = i + 1].act;
        float s1, s2;
        int z1, z2;
        if (q->qp_set[end] && q_params(q, a, &s1, &z1) && q_params(q, b2, &s2, &z2)) {
            int in1 = ensure_q(q, a, s1, z1, e), in2 = in1 >= 0 ? ensure_q(q, b2, s2, z2, e) : -1;
            int out = in2 >= 0 ? new_buf(q, end, 1, q->qp_scale[end], q->qp_zero[end], e) : -1;
            step *s = out >= 0 ? new_step(q, S_QADD, end, e) : NULL;
            if (!s)
                return -1;
            int qmin, qmax;
            tl_q8_act_range(act, q->qp_scale[end], q->qp_zero[end], &qmin, &qmax);
            tl_q8_add_init(&s->add, s1, z1, s2, z2, q->qp_scale[end], q->qp_zero[end], qmin, qmax);
            s->in[0] = in1;
            s->in[1] = in2;
            s->out = out;
            q->qbuf[end] = out;
            *last = end;
            return 0;
        }
        break;
    }
    case TL_OP_MAXPOOL:
        /* A float input whose pooled value has parameters (a float first
         * convolution before ResNet's max pool) is quantised first and
         * pooled in uint8: rounding is monotone (non-decreasing), so the
         * maximum of the quantised values is the quantised maximum, the
         * same bytes as pooling in float and then quantising, on a quarter
         * of the bytes of float. Not when the pooled value is an output:
         * its float form would come back dequantised. */
        if (q->qbuf[a] < 0 && q->qp_set[i]) {
            int is_out = 0;
            for (int k = 0; k < q->noutputs; k++)
                is_out |= resolve(q, q->outputs[k]) == i;
            if (!is_out && ensure_q(q, a, q->qp_scale[i], q->qp_zero[i], e) < 0)
                return -1;
        }
        if (q->qbuf[a] >= 0) {
            const buf *ib = &q->bufs[q->qbuf[a]];
            int out = new_buf(q, i, 1, ib->scale, ib->zero, e);
            step *s = out >= 0 ? new_step(q, S_QMAXPOOL, i, e) : NULL;
            if (!s)
                return -1;
            s->in[0] = q->qbuf[a];
            s->out = out;
            q->qbuf[i] = out;
            return 0;
        }
        break;
    case TL_OP_GAP:
        if (q->qbuf[a] >= 0) {
            float in_scale = q->bufs[q->qbuf[a]].scale; /* new_buf may move q->bufs */
            int isq = q->qp_set[i];
            int out = new_buf(q, i, isq, isq ? q->qp_scale[i] : 0, isq ? q->qp_zero[i] : 0, e);
            skind k = !isq ? S_QGAPF : q->qt->pool_rule == TL_QPOOL_AVERAGE ? S_QAVG : S_QGAP;
            step *s = out >= 0 ? new_step(q, k, i, e) : NULL;
            if (!s)
                return -1;
            s->in[0] = q->qbuf[a];
            s->out = out;
            if (isq) {
                tl_q8_quantize_multiplier((double)in_scale / q->qp_scale[i], &s->mult, &s->shift);
                q->qbuf[i] = out;
            } else {
                q->fbuf[i] = out;
            }
            return 0;
        }
        break;
    case TL_OP_CONCAT: {
        float s1, s2;
        int z1, z2;
        if (q->qp_set[i] && q->qbuf[a] >= 0 && q->qbuf[b2] >= 0 && q_params(q, a, &s1, &z1) &&
            q_params(q, b2, &s2, &z2) && s1 == q->qp_scale[i] && s2 == s1 && z1 == q->qp_zero[i] && z2 == z1) {
            int out = new_buf(q, i, 1, s1, z1, e);
            step *s = out >= 0 ? new_step(q, S_QCONCAT, i, e) : NULL;
            if (!s)
                return -1;
            s->in[0] = q->qbuf[a];
            s->in[1] = q->qbuf[b2];
            s->out = out;
            q->qbuf[i] = out;
            return 0;
        }
        break;
    }
    default:
        if (!tl_quant_op_supported(n->op))
            return tl_fail(e, "model %s: node %d has an operation the int8 engine does not run", m->arch, i);
        break;
    }
    /* float: the value's inputs in float, the operation as it stands */
    int in1 = a >= 0 ? ensure_f(q, a, e) : -1, in2 = b2 >= 0 ? ensure_f(q, b2, e) : -1;
    if ((a >= 0 && in1 < 0) || (b2 >= 0 && in2 < 0))
        return -1;
    int out = new_buf(q, i, 0, 0, 0, e);
    skind k = n->op == TL_OP_LINEAR ? S_FLINEAR : n->op == TL_OP_BN ? S_FBN : n->op == TL_OP_ACT ? S_FACT
            : n->op == TL_OP_ADD ? S_FADD : S_FPLAIN;
    step *s = out >= 0 ? new_step(q, k, i, e) : NULL;
    if (!s)
        return -1;
    s->in[0] = in1;
    s->in[1] = in2;
    s->out = out;
    s->act = n->act;
    q->fbuf[i] = out;
    if (k == S_FLINEAR) {
        /* packed once, as the float engine does (tl_sgemm would pack the
         * whole weight on every call); a layer over the cap packs per run */
        const tl_kws *ws = q->workers[0].kws;
        int len = (int)tl_node_size(&m->nodes[a]);
        size_t floats = tl_gemm_packed_bt_floats(ws, n->c, len);
        if (floats <= Q8_LINEAR_PACK_MAX) {
            if (!(s->packed = tl_alloc_array(floats, sizeof(float))))
                return tl_fail(e, "out of memory packing linear weights");
            tl_gemm_pack_bt(ws, n->c, len, m->params[n->weight].data, len, s->packed);
        }
    }
    if (k == S_FBN) {
        s->w = tl_alloc_array((size_t)n->c, sizeof(float));
        s->b = tl_alloc_array((size_t)n->c, sizeof(float));
        if (!s->w || !s->b)
            return tl_fail(e, "out of memory");
        for (int c = 0; c < n->c; c++) {
            double g = m->params[n->weight].data[c] / sqrt(m->params[n->running_var].data[c] + n->eps);
            s->w[c] = (float)g;
            s->b[c] = (float)(m->params[n->bias].data[c] - m->params[n->running_mean].data[c] * g);
        }
    }
    return 0;
}

/* The value a node reads through any dropouts (identities at inference;
 * plan_node aliases them, but only as it reaches them). */
static int through_dropout(const tl_model *m, int v)
{
    while (v > 0 && m->nodes[v].op == TL_OP_DROPOUT)
        v = m->nodes[v].in[0];
    return v;
}

/* Which values have quantisation parameters: a global average pooling
 * whose rule the checkpoint gives (its own), a quantised layer's output
 * (its own), and the value a quantised layer reads (its input's, on the
 * value behind a dropout: a ResNet stage's last block feeds the next stage
 * through one, and its residual add must find them to run in int8). */
static void assign_params(tl_q8_infer *q)
{
    const tl_model *m = q->m;
    if (q->qt->pool_rule != TL_QPOOL_NONE)
        for (int i = 0; i < m->nnodes; i++)
            if (m->nodes[i].op == TL_OP_GAP) {
                q->qp_set[i] = 1;
                q->qp_scale[i] = q->qt->pool_scale;
                q->qp_zero[i] = q->qt->pool_zero;
            }
    for (int k = 0; k < q->qt->nlayers; k++) {
        const tl_qlayer *L = &q->qt->layers[k];
        int end = tl_quant_fused_end(m, L->node), in = through_dropout(m, m->nodes[L->node].in[0]);
        int vs[2] = {end, in};
        float sc[2] = {L->out_scale, L->in_scale};
        int zp[2] = {L->out_zero, L->in_zero};
        for (int j = 0; j < 2; j++)
            if (!q->qp_set[vs[j]]) {
                q->qp_set[vs[j]] = 1;
                q->qp_scale[vs[j]] = sc[j];
                q->qp_zero[vs[j]] = zp[j];
            }
    }
}

/* Drops steps whose results nobody needs, then places the buffers by
 * liveness in one arena per worker. */
static int prune_and_place(tl_q8_infer *q, tl_err *e)
{
    int nb = q->nbufs, ns = q->nsteps;
    char *need = calloc((size_t)nb, 1);
    int *last = malloc((size_t)nb * sizeof *last), *slot_of = malloc((size_t)nb * sizeof *slot_of);
    int *slot_buf = malloc((size_t)nb * sizeof *slot_buf);
    size_t *slot_size = calloc((size_t)nb, sizeof *slot_size);
    q->off = calloc((size_t)nb, sizeof *q->off);
    if (!need || !last || !slot_of || !slot_buf || !slot_size || !q->off) {
        free(need), free(last), free(slot_of), free(slot_buf), free(slot_size);
        return tl_fail(e, "out of memory");
    }
    for (int k = 0; k < q->noutputs; k++)
        need[q->out_buf[k]] = 1;
    for (int s = ns - 1; s >= 0; s--) {
        step *st = &q->steps[s];
        st->keep = need[st->out];
        if (st->keep)
            for (int j = 0; j < 2; j++)
                if (st->in[j] >= 0)
                    need[st->in[j]] = 1;
    }
    for (int b = 0; b < nb; b++)
        last[b] = -1;
    for (int s = 0; s < ns; s++)
        if (q->steps[s].keep)
            for (int j = 0; j < 2; j++)
                if (q->steps[s].in[j] >= 0)
                    last[q->steps[s].in[j]] = s;
    for (int k = 0; k < q->noutputs; k++)
        last[q->out_buf[k]] = ns;
    int nslots = 0;
    for (int s = 0; s < ns; s++) {
        if (!q->steps[s].keep)
            continue;
        int b = q->steps[s].out;
        size_t want = (q->bufs[b].bytes + 63) / 64 * 64;
        int chosen = -1;
        for (int k = 0; k < nslots; k++) {
            int held = slot_buf[k];
            if (held < 0 || last[held] < s) {
                if (chosen < 0 || slot_size[k] >= want)
                    chosen = k;
                if (slot_size[k] >= want)
                    break;
            }
        }
        if (chosen < 0)
            chosen = nslots++;
        if (slot_size[chosen] < want)
            slot_size[chosen] = want;
        slot_buf[chosen] = b;
        slot_of[b] = chosen;
    }
    size_t off = 0;
    size_t *slot_off = calloc((size_t)nslots + 1, sizeof *slot_off);
    if (!slot_off) {
        free(need), free(last), free(slot_of), free(slot_buf), free(slot_size);
        return tl_fail(e, "out of memory");
    }
    for (int k = 0; k < nslots; k++) {
        slot_off[k] = off;
        off += slot_size[k];
    }
    for (int s = 0; s < ns; s++)
        if (q->steps[s].keep)
            q->off[q->steps[s].out] = slot_off[slot_of[q->steps[s].out]];
    q->arena_bytes = off + 64;
    free(slot_off);
    free(need), free(last), free(slot_of), free(slot_buf), free(slot_size);
    return 0;
}

static int find_tail(tl_q8_infer *q, tl_err *e);

void tl_q8_infer_free(tl_q8_infer *q)
{
    if (!q)
        return;
    for (int s = 0; s < q->nsteps; s++) {
        tl_q8_conv_free(q->steps[s].qc);
        tl_free(q->steps[s].w);
        tl_free(q->steps[s].b);
        tl_free(q->steps[s].packed);
    }
    for (int w = 0; w < q->nworkers; w++) {
        tl_kws_free(q->workers[w].kws);
        tl_free(q->workers[w].arena);
        free(q->workers[w].sums);
        tl_free(q->workers[w].fscratch);
        tl_free(q->workers[w].qscratch);
    }
    free(q->workers);
    free(q->steps);
    free(q->bufs);
    free(q->fbuf);
    free(q->qbuf);
    free(q->alias);
    free(q->qp_set);
    free(q->qp_scale);
    free(q->qp_zero);
    free(q->off);
    free(q->outputs);
    free(q->out_buf);
    free(q->tail_off);
    tl_free(q->tail_buf);
    free(q);
}

tl_q8_infer *tl_q8_infer_new(const tl_model *m, int nthreads, const int *outputs, int noutputs, int exact,
                             tl_err *e)
{
    tl_q8_infer *q = calloc(1, sizeof *q);
    if (!q) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    int n = m->nnodes;
    q->m = m;
    q->qt = m->quant;
    q->fbuf = malloc((size_t)n * sizeof *q->fbuf);
    q->qbuf = malloc((size_t)n * sizeof *q->qbuf);
    q->alias = malloc((size_t)n * sizeof *q->alias);
    q->qp_set = calloc((size_t)n, sizeof *q->qp_set);
    q->qp_scale = calloc((size_t)n, sizeof *q->qp_scale);
    q->qp_zero = calloc((size_t)n, sizeof *q->qp_zero);
    q->outputs = calloc((size_t)noutputs + 1, sizeof *q->outputs);
    q->out_buf = calloc((size_t)noutputs + 1, sizeof *q->out_buf);
    q->nworkers = nthreads < 1 ? 1 : nthreads;
    q->workers = calloc((size_t)q->nworkers, sizeof *q->workers);
    if (!q->fbuf || !q->qbuf || !q->alias || !q->qp_set || !q->qp_scale || !q->qp_zero || !q->outputs ||
        !q->out_buf || !q->workers) {
        tl_fail(e, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        q->fbuf[i] = q->qbuf[i] = -1;
        q->alias[i] = i;
        if (m->nodes[i].c > (int)q->max_c)
            q->max_c = (size_t)m->nodes[i].c;
    }
    for (int k = 0; k < noutputs; k++) {
        if (outputs[k] < 1 || outputs[k] >= n) {
            tl_fail(e, "model %s: requested output node %d out of range", m->arch, outputs[k]);
            goto fail;
        }
        q->outputs[k] = outputs[k];
    }
    q->noutputs = noutputs;
    for (int w = 0; w < q->nworkers; w++) {
        if (!(q->workers[w].kws = tl_kws_new(e)))
            goto fail;
        tl_kws_set_exact(q->workers[w].kws, exact);
    }
    /* the image: a float buffer living outside the arena */
    if (new_buf(q, 0, 0, 0, 0, e) < 0)
        goto fail;
    q->fbuf[0] = 0;
    assign_params(q);
    for (int i = 1; i < n; i++) {
        int last;
        if (plan_node(q, i, &last, e))
            goto fail;
        /* the nodes a fused step swallowed share its value */
        for (int k = i + 1; k <= last; k++)
            q->alias[k] = k;
        i = last;
    }
    for (int k = 0; k < noutputs; k++) {
        int v = resolve(q, outputs[k]);
        if (q->fbuf[v] < 0 && q->qbuf[v] < 0) {
            tl_fail(e, "model %s: layer '%s' is not produced by the int8 engine (it is fused into a step)", m->arch,
                    m->nodes[outputs[k]].name);
            goto fail;
        }
        if ((q->out_buf[k] = ensure_f(q, v, e)) < 0)
            goto fail;
    }
    if (fuse_quant(q, e) || prune_and_place(q, e) || find_tail(q, e))
        goto fail;
    size_t fscratch = 1, qscratch = 64;
    for (int s = 0; s < q->nsteps; s++)
        if (q->steps[s].kind == S_QCONV) {
            size_t b = tl_q8_conv_scratch_bytes(q->steps[s].qc);
            qscratch = b > qscratch ? b : qscratch;
        } else if (q->steps[s].kind == S_FCONV) {
            const tl_conv_geom *g = &m->nodes[q->steps[s].src].geom;
            size_t f = q->steps[s].fq ? tl_q8_fconv_scratch_floats(g)
                                      : tl_conv_forward_scratch_floats(q->workers[0].kws, g);
            fscratch = f > fscratch ? f : fscratch;
        }
    for (int w = 0; w < q->nworkers; w++) {
        q->workers[w].arena = tl_alloc_array(q->arena_bytes, 1);
        q->workers[w].sums = malloc((q->max_c + 16) * sizeof(int32_t));
        q->workers[w].fscratch = tl_alloc_array(fscratch, sizeof(float));
        q->workers[w].qscratch = tl_alloc_array(qscratch, 1);
        if (!q->workers[w].arena || !q->workers[w].sums || !q->workers[w].fscratch || !q->workers[w].qscratch) {
            tl_fail(e, "out of memory for activations (%zu bytes per worker)", q->arena_bytes);
            goto fail;
        }
    }
    q->worker_bytes = q->arena_bytes + (q->max_c + 16) * sizeof(int32_t) + fscratch * sizeof(float) + qscratch;
    return q;
fail:
    tl_q8_infer_free(q);
    return NULL;
}

/* The tail: the kept steps at the end that are float linear layers or
 * activations, starting with a linear layer, reading only each other and
 * the value just before them. */
static int find_tail(tl_q8_infer *q, tl_err *e)
{
    q->tail = q->nsteps;
    q->tail_off = malloc((size_t)q->nbufs * sizeof *q->tail_off);
    if (!q->tail_off)
        return tl_fail(e, "out of memory");
    for (int b = 0; b < q->nbufs; b++)
        q->tail_off[b] = SIZE_MAX;
    int t = q->nsteps;
    while (t > 0 && (!q->steps[t - 1].keep || q->steps[t - 1].kind == S_FLINEAR || q->steps[t - 1].kind == S_FACT))
        t--;
    while (t < q->nsteps && (!q->steps[t].keep || q->steps[t].kind != S_FLINEAR))
        t++;
    if (t >= q->nsteps)
        return 0;
    int first_in = q->steps[t].in[0];
    size_t off = 0;
    q->tail_off[first_in] = off;
    off += (size_t)TAIL * (q->bufs[first_in].bytes / sizeof(float));
    for (int s = t; s < q->nsteps; s++) {
        if (!q->steps[s].keep)
            continue;
        if (q->tail_off[q->steps[s].in[0]] == SIZE_MAX)
            return 0; /* reads something else: no tail */
        q->tail_off[q->steps[s].out] = off;
        off += (size_t)TAIL * (q->bufs[q->steps[s].out].bytes / sizeof(float));
    }
    q->tail_buf = tl_alloc_array(off, sizeof(float));
    if (!q->tail_buf)
        return tl_fail(e, "out of memory for the classifier's batch");
    q->tail = t;
    return 0;
}

size_t tl_q8_infer_worker_bytes(const tl_q8_infer *q) { return q->worker_bytes; }

void tl_q8_infer_set_linear_pack_max(tl_q8_infer *q, size_t floats)
{
    for (int s = 0; s < q->nsteps; s++) {
        step *st = &q->steps[s];
        if (st->kind != S_FLINEAR || !st->packed)
            continue;
        const tl_node *n = &q->m->nodes[st->node];
        if (tl_gemm_packed_bt_floats(q->workers[0].kws, n->c, (int)(q->bufs[st->in[0]].bytes / sizeof(float))) >
            floats) {
            tl_free(st->packed);
            st->packed = NULL;
        }
    }
}

int tl_q8_infer_float_steps(const tl_q8_infer *q)
{
    int k = 0;
    for (int s = 0; s < q->nsteps; s++)
        k += q->steps[s].keep && q->steps[s].kind >= S_FCONV;
    return k;
}

int tl_q8_infer_int8_steps(const tl_q8_infer *q)
{
    int k = 0;
    for (int s = 0; s < q->nsteps; s++)
        k += q->steps[s].keep && q->steps[s].kind == S_QCONV;
    return k;
}

static void *bptr(const tl_q8_infer *q, const worker *wk, const float *image, int b)
{
    return b == 0 ? (void *)image : wk->arena + q->off[b];
}

static void run_step(const tl_q8_infer *q, worker *wk, const step *st, const float *image)
{
    const tl_model *m = q->m;
    const tl_node *n = &m->nodes[st->node], *src = &m->nodes[st->src];
    const buf *ob = &q->bufs[st->out], *ib = st->in[0] >= 0 ? &q->bufs[st->in[0]] : NULL;
    void *x = st->in[0] >= 0 ? bptr(q, wk, image, st->in[0]) : NULL;
    void *x2 = st->in[1] >= 0 ? bptr(q, wk, image, st->in[1]) : NULL;
    void *y = bptr(q, wk, image, st->out);
    const tl_node *in0 = ib ? &m->nodes[ib->value] : NULL;
    size_t hw = (size_t)n->h * n->w;
    switch (st->kind) {
    case S_QCONV: tl_q8_conv_forward(st->qc, x, y, 0, 1, wk->qscratch); break;
    case S_QADD: tl_q8_add_forward(&st->add, n->c, ob->cs, hw, x, x2, y); break;
    case S_QMAXPOOL: tl_q8_maxpool(&n->pool, ob->cs, x, y); break;
    case S_QGAP:
    case S_QAVG:
    case S_QGAPF: {
        int count = in0->h * in0->w, c = in0->c;
        tl_q8_channel_sums(c, ib->cs, count, x, wk->sums);
        if (st->kind == S_QAVG) {
            /* TFLite's AVERAGE_POOL_2D: the mean of the values, ties up for
             * uint8, away from zero for int8 (here stored + 128) */
            uint8_t *o = y;
            int off = q->qt->pool_int8 ? 128 : 0;
            for (int ch = 0; ch < c; ch++) {
                int32_t s = wk->sums[ch] - off * count;
                int32_t v = (s >= 0 ? (s + count / 2) / count : (s - count / 2) / count) + off;
                o[ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
            memset(o + c, ob->zero, (size_t)(ob->cs - c));
        } else if (st->kind == S_QGAPF) {
            float *f = y;
            for (int ch = 0; ch < c; ch++)
                f[ch] = (float)(wk->sums[ch] - count * ib->zero) / (float)count * ib->scale;
        } else {
            /* TFLite's integer MEAN over height and width */
            uint8_t *o = y;
            for (int ch = 0; ch < c; ch++) {
                int32_t acc = tl_q8_mul(wk->sums[ch] - count * ib->zero, st->mult, st->shift);
                acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                acc += ob->zero;
                o[ch] = (uint8_t)(acc < 0 ? 0 : acc > 255 ? 255 : acc);
            }
            memset(o + c, ob->zero, (size_t)(ob->cs - c));
        }
        break;
    }
    case S_QCONCAT: {
        const buf *b2 = &q->bufs[st->in[1]];
        int c1 = in0->c, c2 = n->c - c1;
        for (size_t p = 0; p < hw; p++) {
            uint8_t *o = (uint8_t *)y + p * ob->cs;
            memcpy(o, (const uint8_t *)x + p * ib->cs, (size_t)c1);
            memcpy(o + c1, (const uint8_t *)x2 + p * b2->cs, (size_t)c2);
            memset(o + n->c, ob->zero, (size_t)(ob->cs - n->c));
        }
        break;
    }
    case S_QUANT: tl_q8_quantize_chw(n->c, hw, x, ob->scale, ob->zero, ob->cs, y); break;
    case S_DEQUANT: tl_q8_dequantize_chw(n->c, hw, ib->cs, x, ib->scale, ib->zero, y); break;
    case S_REQUANT:
        for (size_t p = 0; p < hw; p++) {
            const uint8_t *u = (const uint8_t *)x + p * ib->cs;
            uint8_t *o = (uint8_t *)y + p * ob->cs;
            for (int ch = 0; ch < ob->cs; ch++) {
                int32_t v = ch < n->c ? tl_q8_mul(u[ch] - ib->zero, st->mult, st->shift) + ob->zero : ob->zero;
                o[ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
        break;
    case S_FCONV:
        if (st->fq) {
            tl_q8_fconv(wk->kws, &src->geom, x, st->packed, st->b, st->act, ob->scale, ob->zero, ob->cs, y,
                        wk->fscratch);
            break;
        }
        tl_conv_forward_packed(wk->kws, &src->geom, x, st->packed, st->b, st->act, y, 0, 1, wk->fscratch);
        break;
    case S_FLINEAR:
        if (st->packed) {
            tl_sgemm_pb(wk->kws, 1, n->c, (int)tl_node_size(in0), x, (int)tl_node_size(in0), st->packed, y, n->c,
                        pdata(m, n->bias), TL_ACT_NONE, 0, 1);
            break;
        }
        tl_linear_forward(wk->kws, 1, (int)tl_node_size(in0), n->c, x, m->params[n->weight].data, pdata(m, n->bias),
                          y, 0, n->c);
        break;
    case S_FBN:
        for (int c = 0; c < n->c; c++)
            for (size_t i = 0; i < hw; i++)
                ((float *)y)[c * hw + i] = ((const float *)x)[c * hw + i] * st->w[c] + st->b[c];
        break;
    case S_FACT:
        memcpy(y, x, tl_node_size(n) * sizeof(float));
        tl_activation(st->act, y, (size_t)tl_node_size(n));
        break;
    case S_FADD: {
        size_t len = (size_t)tl_node_size(n);
        for (size_t i = 0; i < len; i++)
            ((float *)y)[i] = ((const float *)x)[i] + ((const float *)x2)[i];
        break;
    }
    case S_FPLAIN: tl_node_forward_plain(m, n, x, x2, y); break;
    }
}

typedef struct {
    tl_q8_infer *q;
    const float *input;
    float *const *out;
    int64_t first;     /* the chunk's first image */
    int rows;
    int step;          /* run_tail: the tail step to run */
} run_ctx;

static size_t floats_of(const tl_q8_infer *q, int b) { return q->bufs[b].bytes / sizeof(float); }

static void run_images(void *ctx, int64_t begin, int64_t end, int w)
{
    run_ctx *rc = ctx;
    tl_q8_infer *q = rc->q;
    worker *wk = &q->workers[w];
    size_t in_len = (size_t)q->m->in_c * q->m->in_h * q->m->in_w;
    for (int64_t r = begin; r < end; r++) {
        int64_t i = rc->first + r;
        const float *image = rc->input + (size_t)i * in_len;
        for (int s = 0; s < q->tail; s++)
            if (q->steps[s].keep)
                run_step(q, wk, &q->steps[s], image);
        if (q->tail < q->nsteps) {
            int b = q->steps[q->tail].in[0];
            memcpy(q->tail_buf + q->tail_off[b] + (size_t)r * floats_of(q, b), bptr(q, wk, image, b),
                   floats_of(q, b) * sizeof(float));
        }
        for (int k = 0; k < q->noutputs; k++) {
            int b = q->out_buf[k];
            if (q->tail_off[b] != SIZE_MAX && b != q->steps[q->tail].in[0])
                continue;
            memcpy(rc->out[k] + (size_t)i * floats_of(q, b), bptr(q, wk, image, b), floats_of(q, b) * sizeof(float));
        }
    }
}

/* Share `part` of one tail step's columns (every part of a step finishes
 * before the next step starts: a linear layer reads all of its input's
 * columns, and the packed product cuts its own). */
static void run_tail(void *ctx, int64_t begin, int64_t end, int w)
{
    run_ctx *rc = ctx;
    tl_q8_infer *q = rc->q;
    const tl_model *m = q->m;
    const step *st = &q->steps[rc->step];
    for (int64_t part = begin; part < end; part++) {
        const tl_node *n = &m->nodes[st->node];
        int in = (int)floats_of(q, st->in[0]), out = n->c;
        const float *x = q->tail_buf + q->tail_off[st->in[0]];
        float *y = q->tail_buf + q->tail_off[st->out];
        if (st->kind == S_FLINEAR && st->packed) {
            /* whole nr-column slivers; each element summed in the same
             * order for any cut, as below: the same bits */
            tl_sgemm_pb(q->workers[w].kws, rc->rows, out, in, x, in, st->packed, y, out, pdata(m, n->bias),
                        TL_ACT_NONE, (int)part, 2);
            continue;
        }
        /* columns in blocks of 32, the same cut for any number of parts */
        int units = (out + 31) / 32, c0 = (int)(units * part / 2) * 32, c1 = (int)(units * (part + 1) / 2) * 32;
        c1 = c1 < out ? c1 : out;
        if (c0 >= c1)
            continue;
        if (st->kind == S_FLINEAR) {
            const float *wt = m->params[n->weight].data, *b = n->bias >= 0 ? m->params[n->bias].data : NULL;
            tl_sgemm(q->workers[w].kws, 0, 1, rc->rows, c1 - c0, in, 1.0f, x, in, wt + (size_t)c0 * in, in, 0.0f,
                     y + c0, out);
            if (b)
                for (int r = 0; r < rc->rows; r++)
                    for (int j = c0; j < c1; j++)
                        y[(size_t)r * out + j] += b[j];
        } else {
            for (int r = 0; r < rc->rows; r++) {
                memcpy(y + (size_t)r * out + c0, x + (size_t)r * out + c0, (size_t)(c1 - c0) * sizeof(float));
                tl_activation(st->act, y + (size_t)r * out + c0, (size_t)(c1 - c0));
            }
        }
    }
}

void tl_q8_infer_run(tl_q8_infer *q, tl_pool *pool, int nimg, const float *input, float *const *out)
{
    if (pool && tl_pool_size(pool) > q->nworkers)
        pool = NULL;
    int chunk = q->tail < q->nsteps ? TAIL : (nimg > 0 ? nimg : 1);
    for (int first = 0; first < nimg; first += chunk) {
        run_ctx rc = {q, input, out, first, nimg - first < chunk ? nimg - first : chunk, 0};
        tl_parallel_for(pool, rc.rows, 1, run_images, &rc);
        if (q->tail < q->nsteps) {
            for (rc.step = q->tail; rc.step < q->nsteps; rc.step++)
                if (q->steps[rc.step].keep)
                    tl_parallel_for(pool, 2, 1, run_tail, &rc);
            for (int k = 0; k < q->noutputs; k++) {
                int b = q->out_buf[k];
                if (q->tail_off[b] == SIZE_MAX || b == q->steps[q->tail].in[0])
                    continue;
                memcpy(out[k] + (size_t)first * floats_of(q, b), q->tail_buf + q->tail_off[b],
                       (size_t)rc.rows * floats_of(q, b) * sizeof(float));
            }
        }
    }
}
