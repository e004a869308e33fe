/* Running the training tape: the forward pass over a batch (frozen prefix
 * through inference, then node by node over images, channels or columns)
 * and the backward pass from a node's gradient to every trainable
 * parameter. The maths is in lib/kernels; this file only decides what runs
 * where, in which order, on which buffers. */
#include "tape_internal.h"
#include "kernels/kernels.h"
#include "node_forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const float *P(const tl_model *m, int p) { return p >= 0 ? m->params[p].data : NULL; }
static float *G(const tl_model *m, int p) { return param_trains(m, p) ? m->params[p].grad : NULL; }

/* ---------------------------------------------------------------- forward */

typedef struct {
    tl_tape *t;
    int node, n;
    int act;  /* BN forward: the relu/relu6 it applies as it writes y */
    float *y; /* BN forward: its output (the activation's value when act is set) */
} job;

static void forward_image(tl_tape *t, int i, int64_t b, tape_worker *wk)
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
    if (tl_node_forward_plain(m, n, x, x2, y))
        return;
    switch (n->op) {
    case TL_OP_CONV:
        tl_conv_forward_packed(wk->kws, &n->geom, x, t->wpack, P(m, n->bias), TL_ACT_NONE, y, 0, 1, wk->scratch);
        break;
    case TL_OP_BN: /* inference mode: running statistics */
        tl_batchnorm_eval_forward(n->c, n->h * n->w, x, P(m, n->weight), P(m, n->bias), P(m, n->running_mean),
                                  P(m, n->running_var), n->eps, y);
        break;
    case TL_OP_ACT: tl_activation_copy(n->act, x, y, size); break;
    case TL_OP_ADD: tl_add(size, x, x2, y); break;
    case TL_OP_DROPOUT:
        if (t->train && n->p > 0) {
            /* the mask's stream depends on (seed, node, image) only */
            tl_rng r;
            tl_rng_seed_stream(&r, t->seed + (uint64_t)i * 0x9e3779b97f4a7c15ULL, (uint64_t)(t->first_image + b));
            tl_dropout_forward(size, n->p, &r, x, s->mask + (size_t)b * size, y);
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
    tl_batchnorm_train_forward_act(j->t->w[w].kws, j->act, j->n, n->c, n->h * n->w, j->t->s[n->in[0]].value,
                                   P(m, n->weight), P(m, n->bias), n->eps, j->y, s->mean, s->var, s->invstd, (int)c0,
                                   (int)c1);
}

/* Node i, a batch norm on batch statistics, hands its output to a relu or
 * relu6 right after it and to nothing else: the pair runs as one pass that
 * writes the activation's value only (the batch norm's own value is read
 * by nobody then: its backward reads its input, and a relu's or relu6's
 * mask is the same from its output as from its input, including -0, NaN
 * and the kinks). Saves a write and a read of the tensor per pair. */
static int bn_act_forward(const tl_tape *t, int i)
{
    const tl_model *m = t->m;
    if (i + 1 >= m->nnodes || t->sync || t->s[i].uses != 1)
        return 0;
    const tl_node *a = &m->nodes[i + 1];
    return a->op == TL_OP_ACT && (a->act == TL_ACT_RELU || a->act == TL_ACT_RELU6) && a->in[0] == i &&
           a->in[1] < 0 && !t->s[i + 1].pre && t->s[i + 1].value;
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
    tl_linear_forward(j->t->w[w].kws, j->rows, j->in, j->out, j->x, P(m, j->n->weight), P(m, j->n->bias), j->y,
                      (int)o0, (int)o1);
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

/* The convolution's weights packed by the team (PACK_PARTS shares). */
#define PACK_PARTS 8
static void pack_w_range(void *ctx, int64_t k0, int64_t k1, int w)
{
    job *j = ctx;
    const tl_node *n = &j->t->m->nodes[j->node];
    (void)w;
    for (int64_t k = k0; k < k1; k++)
        tl_conv_pack_part(j->t->w[0].kws, &n->geom, P(j->t->m, n->weight), j->t->wpack, (int)k, PACK_PARTS);
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
        job j = {t, i, n, TL_ACT_NONE, s->value};
        s->bn_train = 0;
        s->from_bn = 0;
        if (nd->op == TL_OP_BN && train && !m->freeze_bn && param_trains(m, nd->weight)) {
            s->bn_train = 1;
            if (t->sync) {
                tl_tape_bn_forward_sync(t, pool, i, n);
                continue;
            }
            int fuse = bn_act_forward(t, i);
            if (fuse) {
                j.act = m->nodes[i + 1].act;
                j.y = t->s[i + 1].value;
            }
            tl_parallel_for(pool, nd->c, 1, bn_forward_range, &j);
            int64_t count = (int64_t)n * nd->h * nd->w;
            if (count > 1)
                tl_bn_update_running(nd->c, count, nd->momentum, s->mean, s->var, m->params[nd->running_mean].data,
                                     m->params[nd->running_var].data);
            if (fuse) {
                t->s[i + 1].bn_train = 0;
                t->s[i + 1].from_bn = 1;
                i++;
            }
        } else if (nd->op == TL_OP_LINEAR || nd->op == TL_OP_TOKEN_LINEAR) {
            linear_job lj = {t, nd, 0, 0, 0, t->s[nd->in[0]].value, NULL, s->value, NULL};
            linear_dims(m, nd, n, &lj.rows, &lj.in, &lj.out);
            tl_parallel_for(pool, lj.out, grain_for(lj.out, t->nw), linear_forward_range, &lj);
        } else {
            if (nd->op == TL_OP_CONV)
                tl_parallel_for(pool, PACK_PARTS, 1, pack_w_range, &j);
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
static void conv_data(tl_tape *t, const tl_node *n, tape_worker *wk, const float *dy, float *dx)
{
    if (tl_conv_backward_packable(&n->geom))
        tl_conv_backward_data_packed(wk->kws, &n->geom, dy, t->wpack, dx, wk->scratch);
    else
        tl_conv_backward_data(wk->kws, &n->geom, dy, P(t->m, n->weight), dx, wk->scratch);
}

static void backward_image(tl_tape *t, int i, int64_t b, tape_worker *wk, float *dx0, float *dx1)
{
    const tl_model *m = t->m;
    const tl_node *n = &m->nodes[i];
    slot *s = &t->s[i];
    size_t size = (size_t)tl_node_size(n);
    const float *dy = s->grad + (size_t)b * size;
    const tl_node *src = &m->nodes[n->in[0]];
    size_t in_size = (size_t)tl_node_size(src);
    const float *x = t->s[n->in[0]].value + (size_t)b * in_size;
    float *dx = dx0 ? dx0 + (size_t)b * in_size : NULL;
    size_t in2_size = n->in[1] >= 0 ? (size_t)tl_node_size(&m->nodes[n->in[1]]) : 0;
    const float *x2 = n->in[1] >= 0 ? t->s[n->in[1]].value + (size_t)b * in2_size : NULL;
    float *dx2 = dx1 ? dx1 + (size_t)b * in2_size : NULL;
    int hw = n->h * n->w;
    if (n->op == TL_OP_SCALE) { /* the one operation whose second input may need a gradient alone */
        tl_scale_backward(n->c, hw, x, x2, dy, dx, dx2);
        return;
    }
    if (n->op == TL_OP_ADD) { /* dy to both inputs */
        if (dx)
            memcpy(dx, dy, size * sizeof(float));
        if (dx2)
            memcpy(dx2, dy, size * sizeof(float));
        return;
    }
    if (n->op == TL_OP_CONCAT) {
        tl_concat_backward(in_size, in2_size, dy, dx, dx2);
        return;
    }
    if (!dx)
        return;
    switch (n->op) {
    case TL_OP_CONV: conv_data(t, n, wk, dy, dx); break;
    case TL_OP_BN: /* inference mode: a per-channel affine map */
        tl_batchnorm_eval_backward_data(n->c, hw, dy, P(m, n->weight), P(m, n->running_var), n->eps, dx);
        break;
    case TL_OP_ACT: /* its input unwritten: the mask from its output (bn_act_forward) */
        tl_activation_backward(n->act, s->from_bn ? s->value + (size_t)b * size : x, dy, dx, size);
        break;
    case TL_OP_GAP: tl_global_avgpool_backward(src->c, src->h * src->w, dy, dx); break;
    case TL_OP_DROPOUT:
        if (t->train && n->p > 0)
            tl_dropout_backward(size, n->p, s->mask + (size_t)b * size, dy, dx);
        else
            memcpy(dx, dy, size * sizeof(float));
        break;
    case TL_OP_MAXPOOL: tl_maxpool2d_backward(&n->pool, x, dy, dx); break;
    case TL_OP_AVGPOOL: tl_avgpool2d_backward(&n->pool, dy, dx); break;
    case TL_OP_ADAPTIVE_AVGPOOL: tl_adaptive_avgpool_backward(src->c, src->h, src->w, n->h, n->w, dy, dx); break;
    case TL_OP_TOKENS: tl_tokens_backward_data(n->w, n->c - 1, dy, dx); break;
    case TL_OP_LAYERNORM:
        tl_layernorm_backward_data(n->c, n->w, x, P(m, n->weight), s->mean + (size_t)b * n->c,
                                   s->invstd + (size_t)b * n->c, dy, dx);
        break;
    case TL_OP_ATTENTION:
        tl_attention_core_backward(wk->kws, n->c, n->w, n->heads, x, s->probs + (size_t)b * n->heads * n->c * n->c,
                                   dy, dx, wk->scratch);
        break;
    case TL_OP_SELECT_TOKEN: tl_select_token_backward(src->c, src->w, dy, dx); break;
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
        if (dw)
            tl_conv_backward_weight(j->t->w[w].kws, &n->geom, x, dy, dw, db, (int)c0, (int)c1, j->t->w[w].scratch);
        else if (db)
            tl_conv_backward_bias(&n->geom, dy, db, (int)c0, (int)c1);
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
    tape_worker *wk = &t->w[w];
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
    if (s->bn_train) {
        /* dx is needed even when nothing upstream trains: the kernel
         * writes it, so give it the scratch copy. */
        float *dx = j->dx0 ? j->dx0 : j->t->tmp;
        if (s->act_dy) {
            const tl_node *a = &m->nodes[j->node + 1];
            const slot *sa = &j->t->s[j->node + 1];
            tl_batchnorm_train_backward_act(j->t->w[w].kws, a->act, j->n, n->c, hw, j->t->s[n->in[0]].value,
                                            sa->from_bn ? sa->value : s->value, s->act_dy, NULL, P(m, n->weight),
                                            s->mean, s->invstd, dx, G(m, n->weight), G(m, n->bias), (int)c0, (int)c1);
            return;
        }
        tl_batchnorm_train_backward(j->t->w[w].kws, j->n, n->c, hw, j->t->s[n->in[0]].value, s->grad, P(m, n->weight),
                                    s->mean, s->invstd, dx, G(m, n->weight), G(m, n->bias), (int)c0, (int)c1);
        return;
    }
    /* Inference-mode BN with trainable affine parameters (--freeze-bn). */
    tl_batchnorm_eval_backward_params(j->n, n->c, hw, j->t->s[n->in[0]].value, s->grad, P(m, n->running_mean),
                                      P(m, n->running_var), n->eps, G(m, n->weight), G(m, n->bias), (int)c0, (int)c1);
}

/* Node i is a relu/relu6 whose input is a batch norm in training mode
 * right before it that nothing else reads: its backward is left to the
 * batch norm's, which then reads x, dy and y once where the two passes
 * read them twice (same bits). Adjacent nodes, so no gradient buffer
 * planned to outlive one of them is needed longer. Planes of 16x16 and
 * up: on 14x14 and 7x7 ones the two passes measured as fast or faster
 * (Zen 5), on 56x56 and larger the fused one 15-35 % faster. */
static int act_fuses(const tl_tape *t, int i)
{
    const tl_model *m = t->m;
    const tl_node *a = &m->nodes[i];
    int b = a->in[0];
    if (a->op != TL_OP_ACT || (a->act != TL_ACT_RELU && a->act != TL_ACT_RELU6) || b != i - 1 || b <= 0 ||
        a->in[1] >= 0)
        return 0;
    const slot *sb = &t->s[b];
    return m->nodes[b].op == TL_OP_BN && m->nodes[b].h * m->nodes[b].w >= 256 && sb->bn_train && !t->sync &&
           sb->rg && sb->grad && sb->uses == 1 && !sb->written;
}

static void linear_data_range(void *ctx, int64_t r0, int64_t r1, int w)
{
    linear_job *j = ctx;
    tl_linear_backward_data(j->t->w[w].kws, j->in, j->out, j->dy, P(j->t->m, j->n->weight), j->dx, (int)r0, (int)r1);
}

static void linear_weight_range(void *ctx, int64_t o0, int64_t o1, int w)
{
    linear_job *j = ctx;
    const tl_model *m = j->t->m;
    tl_linear_backward_params(j->t->w[w].kws, j->rows, j->in, j->out, j->x, j->dy, G(m, j->n->weight),
                              G(m, j->n->bias), (int)o0, (int)o1);
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
    (void)w;
    tl_tokens_backward_params(j->n, n->c, n->w, j->t->s[j->node].grad, G(m, n->extra[0]), G(m, n->extra[1]), (int)j0,
                              (int)j1);
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
    for (int i = 0; i < m->nnodes; i++) {
        t->s[i].written = 0;
        t->s[i].act_dy = NULL;
    }
    t->s[from].written = 1;
    for (int i = from; i > 0; i--) {
        if (!t->s[i].grad)
            continue;
        const tl_node *nd = &m->nodes[i];
        slot *s = &t->s[i];
        if (!s->rg || !s->written)
            continue;
        if (act_fuses(t, i)) {
            t->s[i - 1].act_dy = s->grad;
            t->s[i - 1].written = 1;
            continue;
        }
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
        } else if (nd->op == TL_OP_BN && s->bn_train && t->sync) {
            tl_tape_bn_backward_sync(t, pool, i, n, j.dx0 ? j.dx0 : t->tmp);
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
