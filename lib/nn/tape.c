#include "tape.h"
#include "infer.h"
#include "kernels/backward.h"
#include "node_forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    int written;        /* backward: grad holds a contribution */
} slot;

typedef struct {
    tl_kws *kws;
    float *scratch;
} worker;

struct tl_tape {
    tl_model *m;
    int max_batch;
    slot *s;
    worker *w;
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
    size_t bytes;
    int train;
    uint64_t seed;
};

static int param_trains(const tl_model *m, int p) { return p >= 0 && !m->params[p].frozen && !m->params[p].is_buffer; }

static int node_trains(const tl_model *m, const tl_node *n)
{
    return param_trains(m, n->weight) || param_trains(m, n->bias) || param_trains(m, n->extra[0]) ||
           param_trains(m, n->extra[1]);
}

/* Weight gradients of these convolutions are summed per part of the batch
 * (one GEMM over tiles spanning images); others go by channel ranges. */
static int conv_by_parts(const tl_model *m, const tl_node *n)
{
    return n->op == TL_OP_CONV && n->geom.groups == 1 && param_trains(m, n->weight);
}

static int grow_accumulators(tl_tape *t, tl_err *e)
{
    size_t wf = 0, bf = 0;
    for (int i = 0; i < t->m->nnodes; i++) {
        const tl_node *n = &t->m->nodes[i];
        if (!conv_by_parts(t->m, n))
            continue;
        size_t f = (size_t)t->m->params[n->weight].numel;
        wf = f > wf ? f : wf;
        bf = (size_t)n->c > bf ? (size_t)n->c : bf;
    }
    if (wf <= t->wacc_floats && bf <= t->bacc_floats)
        return 0;
    wf = wf > t->wacc_floats ? wf : t->wacc_floats;
    bf = bf > t->bacc_floats ? bf : t->bacc_floats;
    for (int k = 0; k < t->parts; k++) {
        tl_free(t->wacc[k]);
        t->bytes -= t->wacc_floats * sizeof(float);
        if (!(t->wacc[k] = tl_alloc_array(wf, sizeof(float))))
            return tl_fail(e, "out of memory for weight gradients");
        t->bytes += wf * sizeof(float);
    }
    tl_free(t->bacc);
    if (!(t->bacc = tl_alloc_array((size_t)t->parts * bf, sizeof(double))))
        return tl_fail(e, "out of memory for weight gradients");
    t->wacc_floats = wf;
    t->bacc_floats = bf;
    return 0;
}

static void free_grads(tl_tape *t)
{
    for (int k = 0; k < t->ngslots; k++) {
        tl_free(t->gslot[k]);
        t->bytes -= t->gslot_floats[k] * sizeof(float);
    }
    t->ngslots = 0;
    for (int i = 0; t->s && i < t->m->nnodes; i++)
        t->s[i].grad = NULL;
}

/* Interval partitioning in backward order: node i's gradient is live while
 * nodes end[i] down to i run backward (end: its last consumer, or beyond
 * the graph for the loss's input). A slot is reused once its occupant's
 * interval is over; the best-fitting free slot is taken, else the largest
 * free one grows, else a new one is made. */
static int plan_grads(tl_tape *t, tl_err *e)
{
    const tl_model *m = t->m;
    int n = m->nnodes, cnt = 0, rc = 0;
    int *end = malloc((size_t)n * sizeof *end), *order = malloc((size_t)n * sizeof *order);
    int *occupant = malloc((size_t)n * sizeof *occupant), *slot_of = malloc((size_t)n * sizeof *slot_of);
    size_t *need = calloc((size_t)n, sizeof *need);
    if (!end || !order || !occupant || !slot_of || !need) {
        rc = tl_fail(e, "out of memory");
        goto out;
    }
    free_grads(t);
    for (int i = 0; i < n; i++)
        end[i] = -1;
    for (int c = 0; c < n; c++)
        for (int k = 0; k < 2; k++) {
            int in = m->nodes[c].in[k];
            if (in >= 0 && t->s[c].rg && end[in] < c)
                end[in] = c;
        }
    for (int i = n - 1; i > 0; i--) {
        if (!t->s[i].rg)
            continue;
        if (end[i] < 0)
            end[i] = n;
        int at = cnt++; /* insertion by end, latest first */
        while (at > 0 && end[order[at - 1]] < end[i]) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = i;
    }
    int nslots = 0;
    for (int q = 0; q < cnt; q++) {
        int i = order[q], best = -1;
        size_t want = (size_t)t->max_batch * (size_t)tl_node_size(&m->nodes[i]);
        for (int k = 0; k < nslots; k++) {
            if (occupant[k] <= end[i])
                continue;
            int fits = need[k] >= want, bfits = best >= 0 && need[best] >= want;
            if (best < 0 || (fits && (!bfits || need[k] < need[best])) || (!fits && !bfits && need[k] > need[best]))
                best = k;
        }
        if (best < 0)
            best = nslots++;
        if (need[best] < want)
            need[best] = want;
        occupant[best] = i;
        slot_of[i] = best;
    }
    if (nslots > 0 && (!(t->gslot = realloc(t->gslot, (size_t)nslots * sizeof *t->gslot)) ||
                       !(t->gslot_floats = realloc(t->gslot_floats, (size_t)nslots * sizeof *t->gslot_floats)))) {
        rc = tl_fail(e, "out of memory");
        goto out;
    }
    for (int k = 0; k < nslots; k++) {
        if (!(t->gslot[k] = tl_alloc_array(need[k], sizeof(float)))) {
            rc = tl_fail(e, "out of memory for gradients (%zu MiB in one buffer)", need[k] * sizeof(float) >> 20);
            goto out;
        }
        t->gslot_floats[k] = need[k];
        t->bytes += need[k] * sizeof(float);
        t->ngslots = k + 1;
    }
    for (int q = 0; q < cnt; q++)
        t->s[order[q]].grad = t->gslot[slot_of[order[q]]];
out:
    free(end);
    free(order);
    free(occupant);
    free(slot_of);
    free(need);
    return rc;
}

/* A node belongs to the prefix when nothing upstream trains, it is not
 * random in training (active dropout) and its inputs are in the prefix;
 * it is kept when a node outside the prefix reads it. Values are
 * allocated as nodes first need them and kept from then on. */
static int plan_prefix(tl_tape *t, tl_err *e)
{
    const tl_model *m = t->m;
    size_t b = (size_t)t->max_batch;
    int last = 0, npre = 0;
    t->s[0].pre = 1;
    t->s[0].keep = 0;
    for (int i = 1; i < m->nnodes; i++) {
        const tl_node *n = &m->nodes[i];
        int pre = !t->s[i].rg && !(n->op == TL_OP_DROPOUT && n->p > 0);
        for (int k = 0; k < 2; k++)
            if (n->in[k] >= 0 && !t->s[n->in[k]].pre)
                pre = 0;
        t->s[i].pre = pre;
        t->s[i].keep = !pre;
        if (!pre)
            for (int k = 0; k < 2; k++)
                if (n->in[k] >= 0 && t->s[n->in[k]].pre) {
                    t->s[n->in[k]].keep = 1;
                    last = n->in[k] > last ? n->in[k] : last;
                }
    }
    for (int i = 0; i < m->nnodes; i++) {
        slot *s = &t->s[i];
        npre += i > 0 && s->pre && s->keep;
        if (s->keep && !s->value) {
            size_t floats = b * (size_t)tl_node_size(&m->nodes[i]);
            if (!(s->value = tl_alloc_array(floats, sizeof(float))))
                return tl_fail(e, "out of memory for the activations of %s",
                               m->nodes[i].name[0] ? m->nodes[i].name : "a layer");
            t->bytes += floats * sizeof(float);
        }
    }
    tl_infer_free(t->prefix);
    t->prefix = NULL;
    t->npre = 0;
    if (npre == 0)
        return 0;
    t->sub = *m;
    t->sub.nnodes = last + 1;
    for (int i = 1; i <= last; i++)
        if (t->s[i].pre && t->s[i].keep) {
            t->pre_nodes[t->npre] = i;
            t->pre_dst[t->npre++] = t->s[i].value;
        }
    t->prefix = tl_infer_new(&t->sub, t->nw, t->pre_nodes, t->npre, e);
    return t->prefix ? 0 : -1;
}

/* Gradient buffers exist only for nodes whose gradient matters: a frozen
 * backbone costs no gradient memory. They are allocated when a node first
 * needs one (progressive unfreezing) and kept from then on. */
int tl_tape_refresh(tl_tape *t, tl_err *e)
{
    const tl_model *m = t->m;
    for (int i = 0; i < m->nnodes; i++) {
        const tl_node *n = &m->nodes[i];
        int rg = i > 0 && node_trains(m, n);
        for (int k = 0; k < 2; k++)
            if (n->in[k] >= 0 && t->s[n->in[k]].rg)
                rg = 1;
        t->s[i].rg = rg;
    }
    if (plan_grads(t, e) || plan_prefix(t, e))
        return -1;
    return grow_accumulators(t, e);
}

int tl_tape_requires_grad(const tl_tape *t, int node) { return t->s[node].rg; }

static float *grab(tl_tape *t, size_t floats, int *bad)
{
    float *p = tl_alloc_array(floats ? floats : 1, sizeof(float));
    if (!p)
        *bad = 1;
    t->bytes += floats * sizeof(float);
    return p;
}

void tl_tape_free(tl_tape *t)
{
    if (!t)
        return;
    for (int i = 0; t->s && i < t->m->nnodes; i++) {
        slot *s = &t->s[i];
        tl_free(s->value);
        tl_free(s->mean);
        tl_free(s->var);
        tl_free(s->invstd);
        tl_free(s->probs);
        tl_free(s->mask);
    }
    for (int w = 0; t->w && w < t->nw; w++) {
        tl_kws_free(t->w[w].kws);
        tl_free(t->w[w].scratch);
    }
    for (int k = 0; t->wacc && k < t->parts; k++)
        tl_free(t->wacc[k]);
    free(t->wacc);
    tl_free(t->bacc);
    free_grads(t);
    free(t->gslot);
    free(t->gslot_floats);
    tl_infer_free(t->prefix);
    free(t->pre_nodes);
    free(t->pre_dst);
    free(t->w);
    free(t->s);
    tl_free(t->tmp);
    tl_free(t->wpack);
    free(t);
}

tl_tape *tl_tape_new(tl_model *m, int max_batch, int nthreads, tl_err *e)
{
    if (tl_model_alloc_grads(m, e))
        return NULL;
    tl_tape *t = calloc(1, sizeof *t);
    if (!t) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    t->m = m;
    t->max_batch = max_batch < 1 ? 1 : max_batch;
    t->nw = nthreads < 1 ? 1 : nthreads;
    t->parts = t->nw < 4 ? 4 : t->nw;
    t->s = calloc((size_t)m->nnodes, sizeof *t->s);
    t->w = calloc((size_t)t->nw, sizeof *t->w);
    t->wacc = calloc((size_t)t->parts, sizeof *t->wacc);
    t->pre_nodes = calloc((size_t)m->nnodes, sizeof *t->pre_nodes);
    t->pre_dst = calloc((size_t)m->nnodes, sizeof *t->pre_dst);
    if (!t->s || !t->w || !t->wacc || !t->pre_nodes || !t->pre_dst) {
        tl_tape_free(t);
        tl_fail(e, "out of memory");
        return NULL;
    }
    int bad = 0;
    size_t b = (size_t)t->max_batch, largest = 1;
    for (int i = 0; i < m->nnodes && !bad; i++) {
        const tl_node *n = &m->nodes[i];
        slot *s = &t->s[i];
        size_t size = (size_t)tl_node_size(n);
        if (size > largest)
            largest = size;
        if (n->op == TL_OP_BN) {
            s->mean = grab(t, (size_t)n->c, &bad);
            s->var = grab(t, (size_t)n->c, &bad);
            s->invstd = grab(t, (size_t)n->c, &bad);
        } else if (n->op == TL_OP_LAYERNORM) {
            s->mean = grab(t, b * (size_t)n->c, &bad);
            s->invstd = grab(t, b * (size_t)n->c, &bad);
        } else if (n->op == TL_OP_ATTENTION) {
            s->probs = grab(t, b * (size_t)n->heads * n->c * n->c, &bad);
        } else if (n->op == TL_OP_DROPOUT) {
            s->mask = calloc(b * size + 1, 1);
            bad |= !s->mask;
        }
        size_t need = 0;
        if (n->op == TL_OP_CONV) {
            size_t f = tl_conv_scratch_floats(&n->geom), bw = tl_conv_backward_scratch_floats(&n->geom);
            need = f > bw ? f : bw;
            if (n->geom.groups == 1 && tl_conv_wgrad_scratch_floats(&n->geom) > need)
                need = tl_conv_wgrad_scratch_floats(&n->geom);
        } else if (n->op == TL_OP_ATTENTION) {
            need = tl_attention_core_scratch_floats(n->c, n->w, n->heads);
        }
        if (need > t->scratch_floats)
            t->scratch_floats = need;
    }
    t->tmp = bad ? NULL : grab(t, b * largest, &bad);
    for (int w = 0; w < t->nw && !bad; w++) {
        t->w[w].kws = tl_kws_new(e);
        t->w[w].scratch = grab(t, t->scratch_floats + 16, &bad);
        if (!t->w[w].kws) {
            tl_tape_free(t);
            return NULL;
        }
    }
    size_t wp = 0;
    for (int i = 0; i < m->nnodes && !bad; i++) {
        const tl_conv_geom *g = &m->nodes[i].geom;
        if (m->nodes[i].op != TL_OP_CONV)
            continue;
        size_t f = tl_conv_packed_floats(t->w[0].kws, g);
        size_t bw = tl_conv_backward_packable(g) ? tl_conv_backward_packed_floats(t->w[0].kws, g) : 0;
        f = f > bw ? f : bw;
        wp = f > wp ? f : wp;
    }
    if (wp && !bad)
        t->wpack = grab(t, wp, &bad);
    if (bad) {
        size_t mb = t->bytes >> 20;
        tl_tape_free(t);
        tl_fail(e, "out of memory for training at batch %d (%zu MiB of activations and gradients)", max_batch, mb);
        return NULL;
    }
    if (tl_tape_refresh(t, e)) {
        tl_tape_free(t);
        return NULL;
    }
    return t;
}

float *tl_tape_value(tl_tape *t, int node) { return t->s[node].value; }
float *tl_tape_grad(tl_tape *t, int node) { return t->s[node].grad; }
size_t tl_tape_bytes(const tl_tape *t) { return t->bytes; }

static const float *P(const tl_model *m, int p) { return p >= 0 ? m->params[p].data : NULL; }
static float *G(const tl_model *m, int p) { return param_trains(m, p) ? m->params[p].grad : NULL; }

/* ---------------------------------------------------------------- forward */

typedef struct {
    tl_tape *t;
    int node, n;
} job;

/* y = act(x) in one pass for ReLU and ReLU6 (the values tl_activation
 * gives, NaN included); a copy and an in-place pass otherwise. Blocks of 16
 * over restrict pointers: the shape GCC vectorises at -O2. */
static void act_copy(int act, const float *restrict x, float *restrict y, size_t n)
{
    if (act != TL_ACT_RELU && act != TL_ACT_RELU6) {
        memcpy(y, x, n * sizeof(float));
        tl_activation(act, y, n);
        return;
    }
    size_t i = 0;
    if (act == TL_ACT_RELU) {
        for (; i + 16 <= n; i += 16)
            for (size_t k = i; k < i + 16; k++)
                y[k] = x[k] > 0.0f ? x[k] : 0.0f;
        for (; i < n; i++)
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        return;
    }
    for (; i + 16 <= n; i += 16)
        for (size_t k = i; k < i + 16; k++)
            y[k] = x[k] < 0.0f ? 0.0f : x[k] > 6.0f ? 6.0f : x[k];
    for (; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i] > 6.0f ? 6.0f : x[i];
}

static void forward_image(tl_tape *t, int i, int64_t b, worker *wk)
{
    const tl_model *m = t->m;
    const tl_node *n = &m->nodes[i];
    slot *s = &t->s[i];
    size_t size = (size_t)tl_node_size(n);
    float *y = s->value + (size_t)b * size;
    const tl_node *src = n->in[0] >= 0 ? &m->nodes[n->in[0]] : NULL;
    size_t in_size = src ? (size_t)tl_node_size(src) : 0;
    const float *x = src ? t->s[n->in[0]].value + (size_t)b * in_size : NULL;
    const float *x2 = NULL;
    if (n->in[1] >= 0)
        x2 = t->s[n->in[1]].value + (size_t)b * (size_t)tl_node_size(&m->nodes[n->in[1]]);
    size_t hw = (size_t)n->h * n->w;
    if (tl_node_forward_plain(m, n, x, x2, y))
        return;
    switch (n->op) {
    case TL_OP_CONV: tl_conv_forward_packed(wk->kws, &n->geom, x, t->wpack, P(m, n->bias), TL_ACT_NONE, y, 0, 1); break;
    case TL_OP_BN: /* inference mode: running statistics */
        for (int c = 0; c < n->c; c++) {
            float sc = P(m, n->weight)[c] / sqrtf(P(m, n->running_var)[c] + n->eps);
            float sh = P(m, n->bias)[c] - P(m, n->running_mean)[c] * sc;
            for (size_t k = 0; k < hw; k++)
                y[c * hw + k] = x[c * hw + k] * sc + sh;
        }
        break;
    case TL_OP_ACT:
        act_copy(n->act, x, y, size);
        break;
    case TL_OP_ADD:
        for (size_t k = 0; k < size; k++)
            y[k] = x[k] + x2[k];
        break;
    case TL_OP_DROPOUT:
        if (t->train && n->p > 0) {
            uint8_t *mask = s->mask + (size_t)b * size;
            tl_rng r;
            tl_rng_seed_stream(&r, t->seed + (uint64_t)i * 0x9e3779b97f4a7c15ULL, (uint64_t)b);
            float keep = 1.0f - n->p, scale = 1.0f / keep;
            for (size_t k = 0; k < size; k++) {
                mask[k] = tl_rng_uniform(&r) < keep;
                y[k] = mask[k] ? x[k] * scale : 0.0f;
            }
        } else {
            memcpy(y, x, size * sizeof(float));
        }
        break;
    case TL_OP_LAYERNORM:
        tl_layernorm_forward_save(n->c, n->w, x, P(m, n->weight), P(m, n->bias), n->eps, y,
                                  s->mean + (size_t)b * n->c, s->invstd + (size_t)b * n->c);
        break;
    case TL_OP_ATTENTION:
        tl_attention_core_forward(wk->kws, n->c, n->w, n->heads, x, y,
                                  s->probs + (size_t)b * n->heads * n->c * n->c);
        break;
    default: break;
    }
}

static void forward_range(void *ctx, int64_t b0, int64_t b1, int w)
{
    job *j = ctx;
    for (int64_t b = b0; b < b1; b++)
        forward_image(j->t, j->node, b, &j->t->w[w]);
}

/* Batch-norm statistics are per channel over the whole batch. */
static void bn_forward_range(void *ctx, int64_t c0, int64_t c1, int w)
{
    job *j = ctx;
    const tl_model *m = j->t->m;
    const tl_node *n = &m->nodes[j->node];
    slot *s = &j->t->s[j->node];
    (void)w;
    tl_batchnorm_train_forward(j->n, n->c, n->h * n->w, j->t->s[n->in[0]].value, P(m, n->weight), P(m, n->bias), n->eps,
                        s->value, s->mean, s->var, s->invstd, (int)c0, (int)c1);
}

/* Linear layers over all rows of the batch at once (rows = images, or
 * images x tokens), split by output columns. */
typedef struct {
    tl_tape *t;
    const tl_node *n;
    int rows, in, out;
    const float *x, *dy;
    float *y, *dx;
} linear_job;

static void linear_forward_range(void *ctx, int64_t o0, int64_t o1, int w)
{
    linear_job *j = ctx;
    const tl_model *m = j->t->m;
    const float *W = P(m, j->n->weight), *bias = P(m, j->n->bias);
    int cols = (int)(o1 - o0);
    tl_sgemm(j->t->w[w].kws, 0, 1, j->rows, cols, j->in, 1.0f, j->x, j->in, W + (size_t)o0 * j->in, j->in, 0.0f,
             j->y + o0, j->out);
    if (bias)
        for (int r = 0; r < j->rows; r++)
            for (int64_t o = o0; o < o1; o++)
                j->y[(size_t)r * j->out + o] += bias[o];
}

static void linear_dims(const tl_model *m, const tl_node *n, int nimg, int *rows, int *in, int *out)
{
    const tl_node *src = &m->nodes[n->in[0]];
    if (n->op == TL_OP_TOKEN_LINEAR) {
        *rows = nimg * n->c;
        *in = src->w;
        *out = n->w;
    } else {
        *rows = nimg;
        *in = (int)tl_node_size(src);
        *out = n->c;
    }
}

static int64_t grain_for(int64_t total, int nw)
{
    int64_t g = total / (nw * 4);
    return g < 1 ? 1 : g;
}

void tl_tape_forward(tl_tape *t, tl_pool *pool, int n, const float *x, int train, uint64_t seed)
{
    tl_model *m = t->m;
    if (n > t->max_batch)
        n = t->max_batch;
    if (pool && tl_pool_size(pool) > t->nw)
        pool = NULL;
    t->train = train;
    t->seed = seed;
    if (t->prefix)
        tl_infer_run(t->prefix, pool, n, x, t->pre_dst);
    if (t->s[0].value)
        memcpy(t->s[0].value, x, (size_t)n * (size_t)tl_node_size(&m->nodes[0]) * sizeof(float));
    for (int i = 1; i < m->nnodes; i++) {
        const tl_node *nd = &m->nodes[i];
        slot *s = &t->s[i];
        if (s->pre)
            continue;
        job j = {t, i, n};
        s->bn_train = 0;
        if (nd->op == TL_OP_BN && train && !m->freeze_bn && param_trains(m, nd->weight)) {
            s->bn_train = 1;
            tl_parallel_for(pool, nd->c, 1, bn_forward_range, &j);
            int64_t count = (int64_t)n * nd->h * nd->w;
            if (count > 1)
                tl_bn_update_running(nd->c, count, nd->momentum, s->mean, s->var, m->params[nd->running_mean].data,
                                     m->params[nd->running_var].data);
        } else if (nd->op == TL_OP_LINEAR || nd->op == TL_OP_TOKEN_LINEAR) {
            linear_job lj = {t, nd, 0, 0, 0, t->s[nd->in[0]].value, NULL, s->value, NULL};
            linear_dims(m, nd, n, &lj.rows, &lj.in, &lj.out);
            tl_parallel_for(pool, lj.out, grain_for(lj.out, t->nw), linear_forward_range, &lj);
        } else {
            if (nd->op == TL_OP_CONV)
                tl_conv_pack(t->w[0].kws, &nd->geom, P(m, nd->weight), t->wpack);
            tl_parallel_for(pool, n, 1, forward_range, &j);
        }
    }
}

/* --------------------------------------------------------------- backward */

/* Where input k's gradient contribution goes: straight into its gradient
 * buffer on the first contribution, into tmp (added afterwards) on later
 * ones, since a value read by several nodes sums their gradients. */
static float *target(tl_tape *t, int in)
{
    return t->s[in].written ? t->tmp : t->s[in].grad;
}

static void settle(tl_tape *t, tl_pool *pool, int in, size_t count);

/* Only while tl_tape_backward runs a convolution's data gradients: wpack
 * then holds its W^T when the layer is packable. */
static void conv_data(tl_tape *t, const tl_node *n, worker *wk, const float *dy, float *dx)
{
    if (tl_conv_backward_packable(&n->geom))
        tl_conv_backward_data_packed(wk->kws, &n->geom, dy, t->wpack, dx, wk->scratch);
    else
        tl_conv_backward_data(wk->kws, &n->geom, dy, P(t->m, n->weight), dx, wk->scratch);
}

static void backward_image(tl_tape *t, int i, int64_t b, worker *wk, float *dx0, float *dx1)
{
    const tl_model *m = t->m;
    const tl_node *n = &m->nodes[i];
    slot *s = &t->s[i];
    size_t size = (size_t)tl_node_size(n), hw = (size_t)n->h * n->w;
    const float *dy = s->grad + (size_t)b * size;
    const tl_node *src = &m->nodes[n->in[0]];
    size_t in_size = (size_t)tl_node_size(src);
    const float *x = t->s[n->in[0]].value + (size_t)b * in_size;
    float *dx = dx0 ? dx0 + (size_t)b * in_size : NULL;
    size_t in2_size = n->in[1] >= 0 ? (size_t)tl_node_size(&m->nodes[n->in[1]]) : 0;
    const float *x2 = n->in[1] >= 0 ? t->s[n->in[1]].value + (size_t)b * in2_size : NULL;
    float *dx2 = dx1 ? dx1 + (size_t)b * in2_size : NULL;
    switch (n->op) {
    case TL_OP_CONV:
        if (dx)
            conv_data(t, n, wk, dy, dx);
        break;
    case TL_OP_BN: /* inference-mode BN: a per-channel affine map */
        if (dx)
            for (int c = 0; c < n->c; c++) {
                float sc = P(m, n->weight)[c] / sqrtf(P(m, n->running_var)[c] + n->eps);
                for (size_t k = 0; k < hw; k++)
                    dx[c * hw + k] = dy[c * hw + k] * sc;
            }
        break;
    case TL_OP_ACT:
        if (dx)
            tl_activation_backward(n->act, x, dy, dx, size);
        break;
    case TL_OP_ADD:
        if (dx)
            memcpy(dx, dy, size * sizeof(float));
        if (dx2)
            memcpy(dx2, dy, size * sizeof(float));
        break;
    case TL_OP_GAP:
        if (dx) {
            size_t shw = (size_t)src->h * src->w;
            for (int c = 0; c < src->c; c++)
                for (size_t k = 0; k < shw; k++)
                    dx[c * shw + k] = dy[c] / (float)shw;
        }
        break;
    case TL_OP_DROPOUT:
        if (dx) {
            if (t->train && n->p > 0) {
                const uint8_t *mask = s->mask + (size_t)b * size;
                float scale = 1.0f / (1.0f - n->p);
                for (size_t k = 0; k < size; k++)
                    dx[k] = mask[k] ? dy[k] * scale : 0.0f;
            } else {
                memcpy(dx, dy, size * sizeof(float));
            }
        }
        break;
    case TL_OP_MAXPOOL:
        if (dx)
            tl_maxpool2d_backward(&n->pool, x, dy, dx);
        break;
    case TL_OP_AVGPOOL:
        if (dx)
            tl_avgpool2d_backward(&n->pool, dy, dx);
        break;
    case TL_OP_ADAPTIVE_AVGPOOL:
        if (dx)
            tl_adaptive_avgpool_backward(src->c, src->h, src->w, n->h, n->w, dy, dx);
        break;
    case TL_OP_CONCAT:
        if (dx)
            memcpy(dx, dy, in_size * sizeof(float));
        if (dx2)
            memcpy(dx2, dy + in_size, in2_size * sizeof(float));
        break;
    case TL_OP_SCALE:
        if (dx)
            for (int c = 0; c < n->c; c++)
                for (size_t k = 0; k < hw; k++)
                    dx[c * hw + k] = dy[c * hw + k] * x2[c];
        if (dx2)
            for (int c = 0; c < n->c; c++) {
                double acc = 0;
                for (size_t k = 0; k < hw; k++)
                    acc += (double)dy[c * hw + k] * x[c * hw + k];
                dx2[c] = (float)acc;
            }
        break;
    case TL_OP_TOKENS:
        if (dx) {
            int d = n->w, np = n->c - 1;
            for (int p = 0; p < np; p++)
                for (int j = 0; j < d; j++)
                    dx[(size_t)j * np + p] = dy[(size_t)(p + 1) * d + j];
        }
        break;
    case TL_OP_LAYERNORM:
        if (dx)
            tl_layernorm_backward_data(n->c, n->w, x, P(m, n->weight), s->mean + (size_t)b * n->c,
                                       s->invstd + (size_t)b * n->c, dy, dx);
        break;
    case TL_OP_ATTENTION:
        if (dx)
            tl_attention_core_backward(wk->kws, n->c, n->w, n->heads, x,
                                       s->probs + (size_t)b * n->heads * n->c * n->c, dy, dx, wk->scratch);
        break;
    case TL_OP_SELECT_TOKEN:
        if (dx) {
            memset(dx, 0, in_size * sizeof(float));
            memcpy(dx, dy, size * sizeof(float));
        }
        break;
    default: break;
    }
}

typedef struct {
    tl_tape *t;
    int node, n;
    float *dx0, *dx1;
} bjob;

static void backward_range(void *ctx, int64_t b0, int64_t b1, int w)
{
    bjob *j = ctx;
    for (int64_t b = b0; b < b1; b++)
        backward_image(j->t, j->node, b, &j->t->w[w], j->dx0, j->dx1);
}

/* Parameter gradients, split so that each range sums over all images in
 * order. */
static void conv_weight_range(void *ctx, int64_t c0, int64_t c1, int w)
{
    bjob *j = ctx;
    const tl_model *m = j->t->m;
    const tl_node *n = &m->nodes[j->node];
    size_t in_size = (size_t)tl_node_size(&m->nodes[n->in[0]]), size = (size_t)tl_node_size(n);
    float *dw = G(m, n->weight), *db = G(m, n->bias);
    for (int b = 0; b < j->n; b++) {
        const float *x = j->t->s[n->in[0]].value + (size_t)b * in_size;
        const float *dy = j->t->s[j->node].grad + (size_t)b * size;
        if (dw) {
            tl_conv_backward_weight(j->t->w[w].kws, &n->geom, x, dy, dw, db, (int)c0, (int)c1, j->t->w[w].scratch);
        } else if (db) {
            size_t ohw = (size_t)n->h * n->w;
            for (int64_t c = c0; c < c1; c++)
                for (size_t k = 0; k < ohw; k++)
                    db[c] += dy[c * ohw + k];
        }
    }
}

/* Part k of the batch: its weight-gradient sum, then its images' data
 * gradients while dy is still warm in cache. */
static void conv_part_range(void *ctx, int64_t k0, int64_t k1, int w)
{
    bjob *j = ctx;
    tl_tape *t = j->t;
    const tl_model *m = t->m;
    const tl_node *n = &m->nodes[j->node];
    size_t in_size = (size_t)tl_node_size(&m->nodes[n->in[0]]), size = (size_t)tl_node_size(n);
    worker *wk = &t->w[w];
    for (int64_t k = k0; k < k1; k++) {
        int b0 = (int)(k * j->n / t->parts), b1 = (int)((k + 1) * j->n / t->parts);
        double *db = NULL;
        if (G(m, n->bias)) {
            db = t->bacc + (size_t)k * t->bacc_floats;
            memset(db, 0, sizeof(double) * (size_t)n->c);
        }
        tl_conv_wgrad_images(wk->kws, &n->geom, b1 - b0, t->s[n->in[0]].value + (size_t)b0 * in_size,
                             t->s[j->node].grad + (size_t)b0 * size, t->wacc[k], 0, db, wk->scratch);
        if (j->dx0)
            for (int b = b0; b < b1; b++)
                conv_data(t, n, wk, t->s[j->node].grad + (size_t)b * size, j->dx0 + (size_t)b * in_size);
    }
}

/* dw[co][r] += sum over parts of acc[r][co], rows r of K in blocks that
 * keep the strided side in cache. */
#define REDUCE_ROWS 16
static void conv_reduce_range(void *ctx, int64_t r0, int64_t r1, int w)
{
    bjob *j = ctx;
    tl_tape *t = j->t;
    const tl_model *m = t->m;
    const tl_node *n = &m->nodes[j->node];
    float *dw = G(m, n->weight), *dbias = G(m, n->bias);
    const int cout = n->c;
    const int64_t K = m->params[n->weight].numel / cout;
    (void)w;
    for (int64_t blk = r0; blk < r1; blk++) {
        int64_t a = blk * REDUCE_ROWS, b = a + REDUCE_ROWS < K ? a + REDUCE_ROWS : K;
        for (int co = 0; co < cout; co++)
            for (int64_t r = a; r < b; r++) {
                float s = t->wacc[0][r * cout + co];
                for (int k = 1; k < t->parts; k++)
                    s += t->wacc[k][r * cout + co];
                dw[co * K + r] += s;
            }
        if (dbias && blk == 0)
            for (int co = 0; co < cout; co++) {
                double s = 0;
                for (int k = 0; k < t->parts; k++)
                    s += t->bacc[(size_t)k * t->bacc_floats + co];
                dbias[co] += (float)s;
            }
    }
}

#define PACK_PARTS 8
static void pack_wt_range(void *ctx, int64_t k0, int64_t k1, int w)
{
    bjob *j = ctx;
    const tl_node *n = &j->t->m->nodes[j->node];
    (void)w;
    for (int64_t k = k0; k < k1; k++)
        tl_conv_backward_pack(j->t->w[0].kws, &n->geom, P(j->t->m, n->weight), j->t->wpack, (int)k, PACK_PARTS);
}

static void bn_backward_range(void *ctx, int64_t c0, int64_t c1, int w)
{
    bjob *j = ctx;
    const tl_model *m = j->t->m;
    const tl_node *n = &m->nodes[j->node];
    slot *s = &j->t->s[j->node];
    int hw = n->h * n->w;
    (void)w;
    if (s->bn_train) {
        /* dx is needed even when nothing upstream trains: the kernel
         * writes it, so give it the scratch copy. */
        float *dx = j->dx0 ? j->dx0 : j->t->tmp;
        tl_batchnorm_train_backward(j->n, n->c, hw, j->t->s[n->in[0]].value, s->grad, P(m, n->weight), s->mean, s->invstd,
                             dx, G(m, n->weight), G(m, n->bias), (int)c0, (int)c1);
        return;
    }
    /* Inference-mode BN with trainable affine parameters (--freeze-bn). */
    float *dg = G(m, n->weight), *dbeta = G(m, n->bias);
    const float *x = j->t->s[n->in[0]].value;
    for (int64_t c = c0; c < c1; c++) {
        float is = 1.0f / sqrtf(P(m, n->running_var)[c] + n->eps), mu = P(m, n->running_mean)[c];
        double sg = 0, sb = 0;
        for (int b = 0; b < j->n; b++) {
            const float *xb = x + ((size_t)b * n->c + c) * hw, *dyb = s->grad + ((size_t)b * n->c + c) * hw;
            for (int k = 0; k < hw; k++) {
                sg += (double)dyb[k] * (xb[k] - mu) * is;
                sb += dyb[k];
            }
        }
        if (dg)
            dg[c] += (float)sg;
        if (dbeta)
            dbeta[c] += (float)sb;
    }
}

static void linear_data_range(void *ctx, int64_t r0, int64_t r1, int w)
{
    linear_job *j = ctx;
    const float *W = P(j->t->m, j->n->weight);
    tl_sgemm(j->t->w[w].kws, 0, 0, (int)(r1 - r0), j->in, j->out, 1.0f, j->dy + (size_t)r0 * j->out, j->out, W, j->in,
             0.0f, j->dx + (size_t)r0 * j->in, j->in);
}

static void linear_weight_range(void *ctx, int64_t o0, int64_t o1, int w)
{
    linear_job *j = ctx;
    const tl_model *m = j->t->m;
    float *dW = G(m, j->n->weight), *db = G(m, j->n->bias);
    int cols = (int)(o1 - o0);
    if (dW)
        tl_sgemm(j->t->w[w].kws, 1, 0, cols, j->in, j->rows, 1.0f, j->dy + o0, j->out, j->x, j->in, 1.0f,
                 dW + (size_t)o0 * j->in, j->in);
    if (db)
        for (int64_t o = o0; o < o1; o++) {
            double acc = 0;
            for (int r = 0; r < j->rows; r++)
                acc += j->dy[(size_t)r * j->out + o];
            db[o] += (float)acc;
        }
}

static void layernorm_param_range(void *ctx, int64_t d0, int64_t d1, int w)
{
    bjob *j = ctx;
    const tl_model *m = j->t->m;
    const tl_node *n = &m->nodes[j->node];
    slot *s = &j->t->s[j->node];
    float *dg = G(m, n->weight), *db = G(m, n->bias);
    (void)w;
    if (dg || db) {
        /* The kernel wants both outputs; a frozen one goes to scratch. */
        float *sg = dg ? dg : j->t->tmp, *sb = db ? db : j->t->tmp + n->w;
        tl_layernorm_backward_params(j->n * n->c, n->w, j->t->s[n->in[0]].value, s->mean, s->invstd, s->grad, sg, sb,
                                     (int)d0, (int)d1);
    }
}

static void tokens_param_range(void *ctx, int64_t j0, int64_t j1, int w)
{
    bjob *j = ctx;
    const tl_model *m = j->t->m;
    const tl_node *n = &m->nodes[j->node];
    const float *g = j->t->s[j->node].grad;
    float *dcls = G(m, n->extra[0]), *dpos = G(m, n->extra[1]);
    size_t size = (size_t)tl_node_size(n);
    (void)w;
    for (int b = 0; b < j->n; b++)
        for (int tok = 0; tok < n->c; tok++)
            for (int64_t k = j0; k < j1; k++) {
                float v = g[(size_t)b * size + (size_t)tok * n->w + k];
                if (dpos)
                    dpos[(size_t)tok * n->w + k] += v;
                if (dcls && tok == 0)
                    dcls[k] += v;
            }
}

typedef struct {
    float *dst;
    const float *src;
} add_job;

static void add_range(void *ctx, int64_t a, int64_t b, int w)
{
    add_job *j = ctx;
    (void)w;
    for (int64_t k = a; k < b; k++)
        j->dst[k] += j->src[k];
}

static void settle(tl_tape *t, tl_pool *pool, int in, size_t count)
{
    if (t->s[in].written) {
        add_job aj = {t->s[in].grad, t->tmp};
        tl_parallel_for(pool, (int64_t)count, 65536, add_range, &aj);
    }
    t->s[in].written = 1;
}

void tl_tape_backward(tl_tape *t, tl_pool *pool, int n, int from)
{
    tl_model *m = t->m;
    if (n > t->max_batch)
        n = t->max_batch;
    if (pool && tl_pool_size(pool) > t->nw)
        pool = NULL;
    memset(m->grad_storage, 0, m->storage_floats * sizeof(float));
    for (int i = 0; i < m->nnodes; i++)
        t->s[i].written = 0;
    t->s[from].written = 1;
    for (int i = from; i > 0; i--) {
        if (!t->s[i].grad)
            continue;
        const tl_node *nd = &m->nodes[i];
        slot *s = &t->s[i];
        if (!s->rg || !s->written)
            continue;
        int in0 = nd->in[0], in1 = nd->in[1];
        int want0 = in0 > 0 && t->s[in0].rg, want1 = in1 > 0 && t->s[in1].rg;
        /* ADD and CONCAT may send both contributions through tmp: give the
         * second one its own region when both need it. */
        bjob j = {t, i, n, want0 ? target(t, in0) : NULL, NULL};
        if (want1) {
            if (!t->s[in1].written)
                j.dx1 = t->s[in1].grad;
            else if (j.dx0 == t->tmp)
                j.dx1 = NULL; /* handled below, after in0 settles */
            else
                j.dx1 = t->tmp;
        }
        if (nd->op == TL_OP_CONV && j.dx0 && tl_conv_backward_packable(&nd->geom))
            tl_parallel_for(pool, PACK_PARTS, 1, pack_wt_range, &j);
        if (nd->op == TL_OP_LINEAR || nd->op == TL_OP_TOKEN_LINEAR) {
            linear_job lj = {t, nd, 0, 0, 0, t->s[in0].value, s->grad, NULL, j.dx0};
            linear_dims(m, nd, n, &lj.rows, &lj.in, &lj.out);
            if (param_trains(m, nd->weight) || param_trains(m, nd->bias))
                tl_parallel_for(pool, lj.out, grain_for(lj.out, t->nw), linear_weight_range, &lj);
            if (j.dx0)
                tl_parallel_for(pool, lj.rows, grain_for(lj.rows, t->nw), linear_data_range, &lj);
        } else if (nd->op == TL_OP_BN && (s->bn_train || node_trains(m, nd))) {
            tl_parallel_for(pool, nd->c, 1, bn_backward_range, &j);
            if (!s->bn_train && j.dx0)
                tl_parallel_for(pool, n, 1, backward_range, &j);
        } else if (conv_by_parts(m, nd)) {
            int64_t K = m->params[nd->weight].numel / nd->c;
            tl_parallel_for(pool, t->parts, 1, conv_part_range, &j);
            tl_parallel_for(pool, (K + REDUCE_ROWS - 1) / REDUCE_ROWS, 1, conv_reduce_range, &j);
        } else {
            if (nd->op == TL_OP_CONV && node_trains(m, nd))
                tl_parallel_for(pool, nd->c, 1, conv_weight_range, &j);
            else if (nd->op == TL_OP_LAYERNORM && node_trains(m, nd))
                tl_parallel_for(pool, nd->w, grain_for(nd->w, t->nw), layernorm_param_range, &j);
            else if (nd->op == TL_OP_TOKENS && node_trains(m, nd))
                tl_parallel_for(pool, nd->w, grain_for(nd->w, t->nw), tokens_param_range, &j);
            if (j.dx0 || j.dx1)
                tl_parallel_for(pool, n, 1, backward_range, &j);
        }
        if (want0)
            settle(t, pool, in0, (size_t)n * (size_t)tl_node_size(&m->nodes[in0]));
        if (want1) {
            size_t count = (size_t)n * (size_t)tl_node_size(&m->nodes[in1]);
            if (j.dx1 == NULL) {
                /* Both inputs were already written: run again for in1 alone. */
                bjob j2 = {t, i, n, NULL, t->tmp};
                tl_parallel_for(pool, n, 1, backward_range, &j2);
            }
            settle(t, pool, in1, count);
        }
    }
}
