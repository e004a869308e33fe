#include "infer.h"
#include "infer_q8.h"
#include "node_forward.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* STEP_OP runs its node's operation as it stands (no folding); STEP_DONE
 * holds the place of a value the step before it produced too. */
typedef enum { STEP_CONV, STEP_ACT, STEP_ADD, STEP_GAP, STEP_LINEAR, STEP_BN, STEP_OP, STEP_DONE } step_kind;

typedef struct {
    step_kind kind;
    int node;       /* the graph node whose value this step produces */
    int conv_node;  /* the node of the step's operation: STEP_CONV's geometry, a token linear's
                     * weights (node is then a fused activation's or residual add's) */
    int bn_node;    /* STEP_CONV with folded BN, or STEP_BN; -1 otherwise */
    int act;
    int in[3];      /* value ids (= node ids) read, -1 = none; STEP_CONV: input, residual, input gate */
    int pool;       /* STEP_CONV, depthwise: the global average pool it also produces, or -1 */
    float *w, *b;   /* folded weights (owned) or the model's */
    int owns_w;
    float *packed;  /* STEP_CONV, STEP_LINEAR, token linear: weights packed for the GEMM (owned);
                     * NULL for a linear layer over LINEAR_PACK_MAX */
    int noutputs;   /* requested outputs produced by this step */
    int mine;       /* every member of a team computes it whole into its own worker's values (see mark_mine) */
} step;

typedef struct {
    tl_kws *kws;
    float *arena;   /* all slots of this worker, then conv scratch */
    float *scratch;
    float *garena;  /* the values of the grouped steps, GROUP_MAX images each */
} worker;

struct tl_infer {
    const tl_model *m;
    step *steps;
    int nsteps;
    int *value_slot;     /* per node: slot index, -2 = the input image, -1 = none */
    int *value_alias;    /* per node: node whose value this one shares (dropout) */
    unsigned char *value_mine; /* per node: produced by a `mine` step, read from the reader's own worker */
    size_t *slot_offset; /* floats into a worker arena */
    int nslots;
    size_t arena_floats, scratch_floats;
    size_t linear_pack_max; /* linear layers up to this many floats keep a packed copy */
    int *outputs, noutputs;
    int *output_step;    /* step after which output k is copied out */
    worker *workers;
    int nworkers;
    /* The classifier head (linear layers and their activations after the
     * last per-image step) runs on TAIL_BATCH images at once, so its large
     * weights are read once per batch rather than once per image. */
    int tail;            /* first step of the tail; nsteps when there is none */
    size_t *tail_off;    /* per node: floats into tail_buf of TAIL_BATCH rows, or SIZE_MAX */
    float *tail_buf;
    tl_q8_infer *q8;     /* a quantised model runs on the int8 engine */
    /* The steps from `group` to the tail run on groups of up to GROUP_MAX
     * images at once (small maps: each layer's packed weights are read
     * once per group, and its GEMM gets the group's pixels as columns).
     * Their values are channel-major over the group (c x n x h x w), at
     * group_off floats into a worker's garena (SIZE_MAX: not a grouped
     * value); the values they read from before are copied in as each
     * image reaches `group` (the `cross` list). */
    int group;
    size_t *group_off;
    size_t group_floats;
    int *cross, ncross;
};

#define TAIL_BATCH 32
/* Linear layers up to this many floats (64 MB) keep a packed copy of their
 * weights. VGG-16's first classifier layer (25088 x 4096, 411 MB) would
 * raise its inference memory by 40 % for a copy that saves one packing
 * pass a batch (~5 % of a batch of 32; at batch 1 that layer reads 411 MB
 * either way); it packs per run instead, as the other large ones. */
#define LINEAR_PACK_MAX ((size_t)1 << 24)
#define GROUP_MAX 4
/* largest output map (pixels) of a convolution run on groups */
#define GROUP_PLANE 196

static int resolve(const tl_infer *inf, int node)
{
    while (inf->value_alias[node] != node)
        node = inf->value_alias[node];
    return node;
}

/* Counts the consumers of each node, to know when a conv's output may be
 * folded into the following BN/activation. */
static int *consumer_counts(const tl_model *m, tl_err *e)
{
    int *c = calloc((size_t)m->nnodes, sizeof *c);
    if (!c) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    for (int i = 0; i < m->nnodes; i++)
        for (int k = 0; k < 2; k++)
            if (m->nodes[i].in[k] >= 0)
                c[m->nodes[i].in[k]]++;
    return c;
}

static int is_requested(const tl_infer *inf, int node)
{
    for (int k = 0; k < inf->noutputs; k++)
        if (inf->outputs[k] == node)
            return 1;
    return 0;
}

static int build_steps(tl_infer *inf, tl_err *e)
{
    const tl_model *m = inf->m;
    int *uses = consumer_counts(m, e);
    if (!uses)
        return -1;
    inf->steps = calloc((size_t)m->nnodes, sizeof *inf->steps);
    if (!inf->steps) {
        free(uses);
        return tl_fail(e, "out of memory");
    }
    for (int i = 0; i < m->nnodes; i++)
        inf->value_alias[i] = i;
    for (int i = 1; i < m->nnodes; i++) {
        const tl_node *n = &m->nodes[i];
        step *s = &inf->steps[inf->nsteps];
        memset(s, 0, sizeof *s);
        s->node = s->conv_node = i;
        s->bn_node = -1;
        s->in[0] = n->in[0] >= 0 ? resolve(inf, n->in[0]) : -1;
        s->in[1] = n->in[1] >= 0 ? resolve(inf, n->in[1]) : -1;
        s->in[2] = s->pool = -1;
        switch (n->op) {
        case TL_OP_DROPOUT:
            inf->value_alias[i] = s->in[0];
            continue;
        case TL_OP_CONV: {
            s->kind = STEP_CONV;
            s->conv_node = i;
            s->act = TL_ACT_NONE;
            /* Swallow a following BN and activation when nobody else reads the
             * intermediate values. */
            int last = i;
            if (i + 1 < m->nnodes && m->nodes[i + 1].op == TL_OP_BN && m->nodes[i + 1].in[0] == i && uses[i] == 1 &&
                !is_requested(inf, i)) {
                s->bn_node = i + 1;
                last = i + 1;
            }
            if (last + 1 < m->nnodes && m->nodes[last + 1].op == TL_OP_ACT && m->nodes[last + 1].in[0] == last &&
                uses[last] == 1 && !is_requested(inf, last)) {
                s->act = m->nodes[last + 1].act;
                last++;
            }
            s->node = last;
            i = last;
            break;
        }
        case TL_OP_BN: s->kind = STEP_BN; s->bn_node = i; break;
        case TL_OP_ACT: s->kind = STEP_ACT; s->act = n->act; break;
        case TL_OP_ADD: s->kind = STEP_ADD; break;
        case TL_OP_GAP: s->kind = STEP_GAP; break;
        case TL_OP_LINEAR: s->kind = STEP_LINEAR; break;
        case TL_OP_MAXPOOL:
        case TL_OP_AVGPOOL:
        case TL_OP_ADAPTIVE_AVGPOOL:
        case TL_OP_CONCAT:
        case TL_OP_SCALE:
        case TL_OP_TOKENS:
        case TL_OP_LAYERNORM:
        case TL_OP_ATTENTION:
        case TL_OP_TOKEN_LINEAR:
        case TL_OP_SELECT_TOKEN: s->kind = STEP_OP; break;
        default:
            free(uses);
            return tl_fail(e, "model %s: node %d has an operation inference does not support", m->arch, i);
        }
        inf->nsteps++;
    }
    free(uses);
    return 0;
}

/* Whether a requested output is value v (directly or through dropout). */
static int wanted(const tl_infer *inf, int v)
{
    for (int k = 0; k < inf->noutputs; k++)
        if (resolve(inf, inf->outputs[k]) == v)
            return 1;
    return 0;
}

/* The fusions of tl_conv_fuse, where no one else reads the value skipped:
 * a depthwise step followed by a global average pool of its output makes
 * the pool too (the squeeze of squeeze-excitation; the pool's step stays,
 * as STEP_DONE, to hold its value's place); a scale (the excitation) read
 * only by the next 1x1 convolution is applied as that one packs its input;
 * an add of a convolution's output to another value is that convolution's
 * epilogue. Each saves a pass over a whole map. */
static int fuse_steps(tl_infer *inf, tl_err *e)
{
    const tl_model *m = inf->m;
    const tl_kws *ws = inf->workers[0].kws;
    int *uses = consumer_counts(m, e);
    if (!uses)
        return -1;
    int kept = 0;
    for (int s = 0; s < inf->nsteps; s++) {
        step *st = &inf->steps[s], *next = s + 1 < inf->nsteps ? &inf->steps[s + 1] : NULL;
        int fusable = st->kind == STEP_CONV ? tl_conv_fusable(ws, &m->nodes[st->conv_node].geom) : 0;
        if (st->kind == STEP_OP && m->nodes[st->conv_node].op == TL_OP_TOKEN_LINEAR) {
            /* a ViT's GELU after its first MLP linear and the residual add
             * after the attention's and the MLP's last linear, in the
             * GEMM's epilogue (a pass over the tokens and a barrier each) */
            if (next && next->kind == STEP_ACT && next->in[0] == st->node && uses[st->node] == 1 &&
                !wanted(inf, st->node)) {
                st->act = next->act;
                st->node = next->node;
                s++;
                next = s + 1 < inf->nsteps ? &inf->steps[s + 1] : NULL;
            }
            if (next && next->kind == STEP_ADD && st->in[1] < 0 &&
                (next->in[0] == st->node) != (next->in[1] == st->node) && uses[st->node] == 1 &&
                !wanted(inf, st->node)) {
                st->in[1] = next->in[0] == st->node ? next->in[1] : next->in[0];
                st->node = next->node;
                s++;
            }
            inf->steps[kept++] = *st;
            continue;
        }
        if (next && next->kind == STEP_CONV && st->kind == STEP_OP && m->nodes[st->node].op == TL_OP_SCALE &&
            next->in[0] == st->node && uses[st->node] == 1 && !wanted(inf, st->node) &&
            (tl_conv_fusable(ws, &m->nodes[next->conv_node].geom) & TL_FUSE_IN_SCALE)) {
            next->in[0] = st->in[0];
            next->in[2] = st->in[1];
            continue; /* the scale step goes */
        }
        if (next && next->kind == STEP_ADD && (fusable & TL_FUSE_RESIDUAL) &&
            st->in[1] < 0 && (next->in[0] == st->node) != (next->in[1] == st->node) && uses[st->node] == 1 &&
            !wanted(inf, st->node)) {
            st->in[1] = next->in[0] == st->node ? next->in[1] : next->in[0];
            st->node = next->node;
            inf->steps[kept++] = *st;
            s++; /* the add step goes */
            continue;
        }
        if (next && next->kind == STEP_GAP && (fusable & TL_FUSE_MEANS) && next->in[0] == st->node) {
            st->pool = next->node;
            next->kind = STEP_DONE;
        }
        inf->steps[kept++] = *st;
    }
    inf->nsteps = kept;
    free(uses);
    return 0;
}

/* Squeeze-excitation's layers, 1x1 convolutions on a 1x1 map (a few
 * thousand products), run whole on every member of a team, each into its
 * own worker's slot of the value, and whoever reads the value reads its
 * own copy (in[0] or in[2] of a convolution): no barrier after them (at
 * batch 1 EfficientNet-B0 waited at two of each block's five). Whole or
 * split, a step gives the same bits. assign_slots keeps what a `mine` step
 * reads or writes live to the first step after it that is not `mine` (a
 * faster member may reach that step while the others still read); the
 * grouped steps (run_group) do not take it (find_group clears it). */
static void mark_mine(tl_infer *inf)
{
    const tl_model *m = inf->m;
    for (int s = 0; s < inf->nsteps; s++) {
        step *st = &inf->steps[s];
        if (st->kind != STEP_CONV || st->pool >= 0 || st->in[1] >= 0 || st->in[2] >= 0 || wanted(inf, st->node))
            continue;
        const tl_conv_geom *g = &m->nodes[st->conv_node].geom;
        if (g->oh * g->ow != 1 || g->kh != 1 || g->kw != 1)
            continue;
        int readers = 0, ok = 1;
        for (int q = s + 1; q < inf->nsteps; q++)
            for (int k = 0; k < 3; k++)
                if (inf->steps[q].in[k] == st->node) {
                    readers++;
                    ok &= inf->steps[q].kind == STEP_CONV && k != 1;
                }
        if (ok && readers) {
            st->mine = 1;
            inf->value_mine[st->node] = 1;
        }
    }
}

/* Greedy slot assignment by liveness: a slot is reused once the last step
 * reading its value has run. */
/* A slot for value v, born at step `born` and needing `need` floats: the
 * first free slot (its value last used before `born`) that is big enough,
 * else the first free one (grown), else a new one. */
static int take_slot(int *slot_value, size_t *slot_size, int *nslots, const int *last_use, int born, int v,
                     size_t need)
{
    int chosen = -1;
    for (int k = 0; k < *nslots; k++) {
        int held = slot_value[k];
        if (held < 0 || last_use[held] < born) {
            if (chosen < 0 || slot_size[k] >= need)
                chosen = k;
            if (slot_size[k] >= need)
                break;
        }
    }
    if (chosen < 0)
        chosen = (*nslots)++;
    if (slot_size[chosen] < need)
        slot_size[chosen] = need;
    slot_value[chosen] = v;
    return chosen;
}

static int assign_slots(tl_infer *inf, tl_err *e)
{
    const tl_model *m = inf->m;
    int n = m->nnodes;
    int *last_use = malloc((size_t)n * sizeof *last_use);
    int *slot_value = malloc((size_t)n * sizeof *slot_value);
    size_t *slot_size = calloc((size_t)n, sizeof *slot_size);
    if (!last_use || !slot_value || !slot_size) {
        free(last_use);
        free(slot_value);
        free(slot_size);
        return tl_fail(e, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        last_use[i] = -1;
        inf->value_slot[i] = -1;
    }
    for (int s = 0; s < inf->nsteps; s++) {
        int until = s; /* past a `mine` step: the first after it that is not */
        while (until + 1 < inf->nsteps && inf->steps[until].mine)
            until++;
        for (int k = 0; k < 3; k++)
            if (inf->steps[s].in[k] >= 0)
                last_use[inf->steps[s].in[k]] = until;
    }
    inf->value_slot[0] = -2;
    int nslots = 0;
    for (int s = 0; s < inf->nsteps; s++) {
        int v = inf->steps[s].node;
        /* a STEP_DONE value is written by the step before, with its inputs live */
        int born = inf->steps[s].kind == STEP_DONE ? s - 1 : s;
        inf->value_slot[v] =
            take_slot(slot_value, slot_size, &nslots, last_use, born, v, (size_t)tl_node_size(&m->nodes[v]));
    }
    inf->nslots = nslots;
    inf->slot_offset = calloc((size_t)nslots + 1, sizeof *inf->slot_offset);
    if (!inf->slot_offset) {
        free(last_use);
        free(slot_value);
        free(slot_size);
        return tl_fail(e, "out of memory");
    }
    size_t off = 0;
    for (int k = 0; k < nslots; k++) {
        inf->slot_offset[k] = off;
        off += (slot_size[k] + 15) / 16 * 16;
    }
    inf->arena_floats = off;
    free(last_use);
    free(slot_value);
    free(slot_size);
    return 0;
}

static void free_folded(tl_infer *inf)
{
    for (int s = 0; s < inf->nsteps; s++) {
        step *st = &inf->steps[s];
        if (st->owns_w) {
            tl_free(st->w);
            tl_free(st->b);
            st->w = st->b = NULL;
            st->owns_w = 0;
        }
        tl_free(st->packed);
        st->packed = NULL;
    }
}

static const float *pdata(const tl_model *m, int index) { return index >= 0 ? m->params[index].data : NULL; }

/* One step's preparation shared out between the threads of a pool: its
 * output channels folded, then its packing, `nparts` parts each (more parts
 * than threads, so a thread slowed by another job's does not hold the rest
 * back). Every element is computed the same way whatever the split, so the
 * bytes do not depend on the thread count. */
typedef struct {
    const tl_kws *ws;
    const tl_conv_geom *g;
    step *st;
    const float *cw, *cb; /* the convolution's weight and bias (bias may be NULL) */
    const tl_model *m;
    const tl_node *bn;    /* the folded batch norm, or NULL */
    size_t per_out;       /* weights an output channel (0: a batch-norm step) */
    int cout, nparts;
} prep_ctx;

static void fold_parts(void *ctx, int64_t begin, int64_t end, int thread)
{
    const prep_ctx *c = ctx;
    step *st = c->st;
    const tl_model *m = c->m;
    const tl_node *bn = c->bn;
    for (int64_t part = begin; part < end; part++) {
        int o0 = (int)((long)c->cout * part / c->nparts), o1 = (int)((long)c->cout * (part + 1) / c->nparts);
        for (int o = o0; o < o1; o++) {
            double scale = 1, shift = c->cb ? c->cb[o] : 0;
            if (bn) {
                double g = m->params[bn->weight].data[o], beta = m->params[bn->bias].data[o];
                double mu = m->params[bn->running_mean].data[o], var = m->params[bn->running_var].data[o];
                scale = g / sqrt(var + bn->eps);
                shift = (shift - mu) * scale + beta;
            }
            if (c->per_out)
                for (size_t j = 0; j < c->per_out; j++)
                    st->w[(size_t)o * c->per_out + j] = (float)(c->cw[(size_t)o * c->per_out + j] * scale);
            else
                st->w[o] = (float)scale;
            st->b[o] = (float)shift;
        }
    }
}

static void pack_parts(void *ctx, int64_t begin, int64_t end, int thread)
{
    const prep_ctx *c = ctx;
    for (int64_t part = begin; part < end; part++)
        tl_conv_pack_part(c->ws, c->g, c->st->w, c->st->packed, (int)part, c->nparts);
}

static int prep_parts(tl_pool *pool) { return pool ? 4 * tl_pool_size(pool) : 1; }

/* Packs a step's weights for the GEMM of the workers' SIMD path; a
 * convolution's on the pool (NULL: serially). */
static int pack_step(tl_infer *inf, tl_pool *pool, step *st, tl_err *e)
{
    const tl_model *m = inf->m;
    const tl_kws *ws = inf->workers[0].kws;
    const tl_node *n = &m->nodes[st->kind == STEP_OP ? st->conv_node : st->node];
    if (st->kind == STEP_CONV) {
        const tl_conv_geom *g = &m->nodes[st->conv_node].geom;
        /* every float is written by the parts (padding included), so the
         * pages are first touched on the pool, not zero-filled here */
        st->packed = tl_alloc_array_raw(tl_conv_packed_floats(ws, g), sizeof(float));
        if (!st->packed)
            return tl_fail(e, "out of memory packing convolution weights");
        prep_ctx c = {.ws = ws, .g = g, .st = st, .nparts = prep_parts(pool)};
        tl_parallel_for(pool, c.nparts, 1, pack_parts, &c);
        /* the folded copy served only to pack */
        tl_free(st->w);
        st->w = NULL;
    } else if (st->kind == STEP_LINEAR) {
        /* packed once: tl_sgemm would pack the whole weight again on every
         * call, which at batch 1 cost more than the product (MobileNetV2's
         * 1280 x 1000 classifier: 15 % of an image's time); but not a layer
         * whose copy would add more than the cap to the model's memory */
        int in = (int)tl_node_size(&m->nodes[st->in[0]]);
        size_t floats = tl_gemm_packed_bt_floats(ws, n->c, in);
        if (floats > inf->linear_pack_max)
            return 0;
        st->packed = tl_alloc_array(floats, sizeof(float));
        if (!st->packed)
            return tl_fail(e, "out of memory packing linear weights");
        tl_gemm_pack_bt(ws, n->c, in, st->w, in, st->packed);
    } else if (st->kind == STEP_OP && n->op == TL_OP_TOKEN_LINEAR) {
        int in = m->nodes[n->in[0]].w;
        st->packed = tl_alloc_array(tl_gemm_packed_bt_floats(ws, n->w, in), sizeof(float));
        if (!st->packed)
            return tl_fail(e, "out of memory packing linear weights");
        tl_gemm_pack_bt(ws, n->w, in, pdata(m, n->weight), in, st->packed);
    }
    return 0;
}

void tl_infer_set_linear_pack_max(tl_infer *inf, size_t floats)
{
    inf->linear_pack_max = floats;
    if (inf->q8)
        tl_q8_infer_set_linear_pack_max(inf->q8, floats);
}

int tl_infer_refresh(tl_infer *inf, tl_err *e) { return tl_infer_refresh_pool(inf, NULL, e); }

int tl_infer_refresh_pool(tl_infer *inf, tl_pool *pool, tl_err *e)
{
    if (inf->q8)
        return tl_fail(e, "an int8 model cannot change its weights");
    const tl_model *m = inf->m;
    free_folded(inf);
    for (int s = 0; s < inf->nsteps; s++) {
        step *st = &inf->steps[s];
        const tl_node *n = &m->nodes[st->kind == STEP_CONV ? st->conv_node : st->node];
        if (st->kind == STEP_LINEAR) {
            st->w = m->params[n->weight].data;
            st->b = (float *)pdata(m, n->bias);
            if (pack_step(inf, pool, st, e))
                return -1;
            continue;
        }
        if (st->kind == STEP_OP && pack_step(inf, pool, st, e))
            return -1;
        if (st->kind != STEP_CONV && st->kind != STEP_BN)
            continue;
        int cout = n->c;
        size_t per_out = st->kind == STEP_CONV ? (size_t)(m->params[n->weight].numel / cout) : 0;
        st->b = tl_alloc_array((size_t)cout, sizeof(float));
        st->w = tl_alloc_array(st->kind == STEP_CONV ? (size_t)cout * per_out : (size_t)cout, sizeof(float));
        st->owns_w = 1;
        if (!st->w || !st->b)
            return tl_fail(e, "out of memory folding batch norm");
        prep_ctx c = {.st = st,
                      .cw = st->kind == STEP_CONV ? m->params[n->weight].data : NULL,
                      .cb = (st->kind == STEP_CONV && n->bias >= 0) ? m->params[n->bias].data : NULL,
                      .m = m,
                      .bn = st->bn_node >= 0 ? &m->nodes[st->bn_node] : NULL,
                      .per_out = per_out,
                      .cout = cout,
                      .nparts = prep_parts(pool)};
        tl_parallel_for(pool, c.nparts, 1, fold_parts, &c);
        if (st->kind == STEP_CONV && pack_step(inf, pool, st, e))
            return -1;
    }
    return 0;
}

void tl_infer_free(tl_infer *inf)
{
    if (!inf)
        return;
    tl_q8_infer_free(inf->q8);
    if (inf->steps)
        free_folded(inf);
    for (int w = 0; w < inf->nworkers; w++) {
        tl_kws_free(inf->workers[w].kws);
        tl_free(inf->workers[w].arena);
        tl_free(inf->workers[w].garena);
    }
    free(inf->workers);
    free(inf->steps);
    free(inf->value_slot);
    free(inf->value_alias);
    free(inf->value_mine);
    free(inf->slot_offset);
    free(inf->outputs);
    free(inf->output_step);
    free(inf->tail_off);
    free(inf->group_off);
    free(inf->cross);
    tl_free(inf->tail_buf);
    free(inf);
}

/* The tail: the longest run of final steps that are linear layers or
 * activations, starting with a linear layer, reading only its own values
 * and the value just before it. */
static int find_tail(tl_infer *inf, tl_err *e)
{
    const tl_model *m = inf->m;
    inf->tail = inf->nsteps;
    inf->tail_off = malloc((size_t)m->nnodes * sizeof *inf->tail_off);
    if (!inf->tail_off)
        return tl_fail(e, "out of memory");
    for (int i = 0; i < m->nnodes; i++)
        inf->tail_off[i] = SIZE_MAX;
    int t = inf->nsteps;
    while (t > 0 && (inf->steps[t - 1].kind == STEP_LINEAR || inf->steps[t - 1].kind == STEP_ACT))
        t--;
    while (t < inf->nsteps && inf->steps[t].kind != STEP_LINEAR)
        t++;
    if (t >= inf->nsteps || inf->steps[t].in[0] < 1)
        return 0;
    int first_in = inf->steps[t].in[0];
    for (int s = t; s < inf->nsteps; s++) {
        int v = inf->steps[s].in[0], inside = v == first_in;
        for (int q = t; q < s && !inside; q++)
            inside = inf->steps[q].node == v;
        if (!inside)
            return 0;
    }
    size_t off = 0;
    inf->tail_off[first_in] = off;
    off += (size_t)TAIL_BATCH * tl_node_size(&m->nodes[first_in]);
    for (int s = t; s < inf->nsteps; s++) {
        inf->tail_off[inf->steps[s].node] = off;
        off += (size_t)TAIL_BATCH * tl_node_size(&m->nodes[inf->steps[s].node]);
    }
    inf->tail_buf = tl_alloc_array(off, sizeof(float));
    if (!inf->tail_buf)
        return tl_fail(e, "out of memory for the classifier's batch");
    inf->tail = t;
    return 0;
}

/* Whether a step runs the same on a group (each image's values summed
 * as alone, in the same order); activations only those exact at every
 * position of a vector (the group shifts each image's columns). */
static int exact_act(int act) { return act == TL_ACT_NONE || act == TL_ACT_RELU || act == TL_ACT_RELU6; }

static int groupable(const tl_infer *inf, const step *st)
{
    const tl_model *m = inf->m;
    const tl_node *n = &m->nodes[st->node];
    switch (st->kind) {
    case STEP_CONV: {
        const tl_conv_geom *g = &m->nodes[st->conv_node].geom;
        return tl_conv_images_applies(inf->workers[0].kws, g) && st->in[2] < 0 && st->pool < 0 &&
               exact_act(st->act) && g->oh * g->ow <= GROUP_PLANE;
    }
    case STEP_ACT: return exact_act(st->act);
    case STEP_ADD:
    case STEP_BN:
    case STEP_GAP: return 1;
    case STEP_OP: return n->op == TL_OP_MAXPOOL || n->op == TL_OP_AVGPOOL;
    default: return 0;
    }
}

/* The grouped steps: the longest run of groupable steps before the tail,
 * from its first convolution; their values get slots (liveness as in
 * assign_slots) of GROUP_MAX images each. */
static int find_group(tl_infer *inf, tl_err *e)
{
    const tl_model *m = inf->m;
    int n = m->nnodes, t = inf->tail, s0 = t;
    inf->group = t;
    while (s0 > 0 && groupable(inf, &inf->steps[s0 - 1]))
        s0--;
    while (s0 < t && inf->steps[s0].kind != STEP_CONV)
        s0++;
    if (s0 >= t)
        return 0;
    int *last_use = malloc((size_t)n * sizeof *last_use), *slot_value = malloc((size_t)n * sizeof *slot_value);
    int *slot_of = malloc((size_t)n * sizeof *slot_of);
    size_t *slot_size = calloc((size_t)n, sizeof *slot_size);
    inf->group_off = malloc((size_t)n * sizeof *inf->group_off);
    inf->cross = malloc((size_t)n * sizeof *inf->cross);
    if (!last_use || !slot_value || !slot_of || !slot_size || !inf->group_off || !inf->cross) {
        free(last_use);
        free(slot_value);
        free(slot_of);
        free(slot_size);
        return tl_fail(e, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        last_use[i] = -1;
        slot_of[i] = -1;
        inf->group_off[i] = SIZE_MAX;
    }
    for (int s = s0; s < t; s++)
        for (int k = 0; k < 3; k++)
            if (inf->steps[s].in[k] >= 0)
                last_use[inf->steps[s].in[k]] = s;
    if (t < inf->nsteps)
        last_use[inf->steps[t].in[0]] = t; /* copied out to the tail's batch at the end */
    int nslots = 0;
    inf->ncross = 0;
    /* values from before the group first (live from its start), then each step's */
    for (int pass = 0; pass < 2; pass++)
        for (int s = pass ? s0 : 0; s < (pass ? t : n); s++) {
            int v = pass ? inf->steps[s].node : s, born = pass ? s : s0 - 1;
            if (!pass) {
                int produced_inside = 0;
                for (int q = s0; q < t && !produced_inside; q++)
                    produced_inside = inf->steps[q].node == v;
                if (last_use[v] < s0 || produced_inside || inf->value_slot[v] == -1)
                    continue;
                inf->cross[inf->ncross++] = v;
            }
            slot_of[v] = take_slot(slot_value, slot_size, &nslots, last_use, born, v,
                                   (size_t)tl_node_size(&m->nodes[v]) * GROUP_MAX);
        }
    size_t off = 0, *slot_off = malloc(((size_t)nslots + 1) * sizeof *slot_off);
    if (!slot_off) {
        free(last_use);
        free(slot_value);
        free(slot_of);
        free(slot_size);
        return tl_fail(e, "out of memory");
    }
    for (int k = 0; k < nslots; k++) {
        slot_off[k] = off;
        off += (slot_size[k] + 15) / 16 * 16;
    }
    for (int v = 0; v < n; v++)
        if (slot_of[v] >= 0)
            inf->group_off[v] = slot_off[slot_of[v]];
    inf->group_floats = off;
    inf->group = s0;
    for (int s = 0; s < inf->nsteps; s++) /* run_group and the values crossing into the group: shared */
        if (inf->steps[s].mine && last_use[inf->steps[s].node] >= s0) {
            inf->steps[s].mine = 0;
            inf->value_mine[inf->steps[s].node] = 0;
        }
    free(slot_off);
    free(last_use);
    free(slot_value);
    free(slot_of);
    free(slot_size);
    return 0;
}

tl_infer *tl_infer_new(const tl_model *m, int nthreads, const int *outputs, int noutputs, tl_err *e)
{
    return tl_infer_new_exact(m, nthreads, outputs, noutputs, 0, e);
}

tl_infer *tl_infer_new_exact(const tl_model *m, int nthreads, const int *outputs, int noutputs, int exact,
                             tl_err *e)
{
    return tl_infer_new_pool(m, NULL, nthreads, outputs, noutputs, exact, e);
}

tl_infer *tl_infer_new_pool(const tl_model *m, tl_pool *pool, int nthreads, const int *outputs, int noutputs,
                            int exact, tl_err *e)
{
    tl_infer *inf = calloc(1, sizeof *inf);
    if (!inf) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    inf->m = m;
    inf->linear_pack_max = LINEAR_PACK_MAX;
    if (m->quant) {
        if (!(inf->q8 = tl_q8_infer_new(m, nthreads, outputs, noutputs, exact, e)))
            goto fail;
        return inf;
    }
    inf->value_slot = calloc((size_t)m->nnodes, sizeof *inf->value_slot);
    inf->value_alias = calloc((size_t)m->nnodes, sizeof *inf->value_alias);
    inf->value_mine = calloc((size_t)m->nnodes, sizeof *inf->value_mine);
    inf->outputs = calloc((size_t)noutputs + 1, sizeof *inf->outputs);
    inf->output_step = calloc((size_t)noutputs + 1, sizeof *inf->output_step);
    if (!inf->value_slot || !inf->value_alias || !inf->value_mine || !inf->outputs || !inf->output_step) {
        tl_fail(e, "out of memory");
        goto fail;
    }
    for (int k = 0; k < noutputs; k++) {
        if (outputs[k] < 1 || outputs[k] >= m->nnodes) {
            tl_fail(e, "model %s: requested output node %d out of range", m->arch, outputs[k]);
            goto fail;
        }
        inf->outputs[k] = outputs[k];
    }
    inf->noutputs = noutputs;
    inf->nworkers = nthreads < 1 ? 1 : nthreads;
    inf->workers = calloc((size_t)inf->nworkers, sizeof *inf->workers);
    if (!inf->workers) {
        tl_fail(e, "out of memory");
        goto fail;
    }
    for (int w = 0; w < inf->nworkers; w++) {
        if (!(inf->workers[w].kws = tl_kws_new(e)))
            goto fail;
        tl_kws_set_exact(inf->workers[w].kws, exact); /* it decides the packing and the fusions */
        tl_kws_set_images(inf->workers[w].kws, GROUP_MAX); /* so does the grouping of small maps */
    }
    if (build_steps(inf, e) || fuse_steps(inf, e))
        goto fail;
    mark_mine(inf);
    if (assign_slots(inf, e) || find_tail(inf, e) || find_group(inf, e))
        goto fail;
    for (int k = 0; k < noutputs; k++) {
        int v = resolve(inf, outputs[k]);
        inf->outputs[k] = v;
        inf->output_step[k] = -1;
        for (int s = 0; s < inf->nsteps; s++)
            if (inf->steps[s].node == v)
                inf->output_step[k] = s;
        if (inf->output_step[k] < 0) {
            tl_fail(e, "model %s: layer '%s' is not produced at inference", m->arch, m->nodes[outputs[k]].name);
            goto fail;
        }
        inf->steps[inf->output_step[k]].noutputs++;
    }
    for (int s = 0; s < inf->nsteps; s++) { /* the largest scratch any step needs */
        const step *st = &inf->steps[s];
        const tl_node *n = &m->nodes[st->node];
        size_t need = 0;
        if (st->kind == STEP_OP && n->op == TL_OP_ATTENTION)
            need = (size_t)n->c * n->c;
        else if (st->kind == STEP_CONV)
            need = tl_conv_forward_scratch_floats(inf->workers[0].kws, &m->nodes[st->conv_node].geom);
        inf->scratch_floats = need > inf->scratch_floats ? need : inf->scratch_floats;
    }
    for (int w = 0; w < inf->nworkers; w++) {
        worker *wk = &inf->workers[w];
        wk->arena = tl_alloc_array(inf->arena_floats + inf->scratch_floats + 16, sizeof(float));
        if (!wk->arena) {
            tl_fail(e, "out of memory for activations (%zu floats per worker)", inf->arena_floats + inf->scratch_floats);
            goto fail;
        }
        wk->scratch = wk->arena + inf->arena_floats;
        if (inf->group_floats && !(wk->garena = tl_alloc_array(inf->group_floats, sizeof(float)))) {
            tl_fail(e, "out of memory for activations (%zu floats per worker)", inf->group_floats);
            goto fail;
        }
    }
    if (tl_infer_refresh_pool(inf, pool, e))
        goto fail;
    return inf;
fail:
    tl_infer_free(inf);
    return NULL;
}

size_t tl_infer_worker_bytes(const tl_infer *inf)
{
    if (inf->q8)
        return tl_q8_infer_worker_bytes(inf->q8);
    return (inf->arena_floats + inf->scratch_floats + inf->group_floats) * sizeof(float);
}

int tl_infer_passes(const tl_infer *inf)
{
    int n = 0;
    for (int s = 0; !inf->q8 && s < inf->nsteps; s++)
        n += inf->steps[s].kind != STEP_DONE;
    return n;
}

static float *value_ptr(const tl_infer *inf, const worker *wk, const float *image, int v)
{
    int slot = inf->value_slot[v];
    if (slot == -2)
        return (float *)image;
    return wk->arena + inf->slot_offset[slot];
}

/* [*lo, *hi) of n items for part of nparts, cut at multiples of align */
static void share(size_t n, size_t align, int part, int nparts, size_t *lo, size_t *hi)
{
    size_t units = (n + align - 1) / align;
    *lo = units * part / nparts * align;
    *hi = units * (part + 1) / nparts * align;
    if (*lo > n)
        *lo = n;
    if (*hi > n)
        *hi = n;
}

/* y = x W^T + b for `rows` rows, columns split between the parts, from
 * the packed copy (one row: by tl_gemv_pb, not a micro-tile of mostly
 * padding rows) or (a layer too large to keep one) packing on the fly:
 * the same K blocks, sums and bias add, so the same bits. */
static void linear_part(tl_kws *ws, const step *st, int rows, int in, int out, const float *x, float *y, int part,
                        int nparts)
{
    if (st->packed && rows == 1) {
        tl_gemv_pb(ws, out, in, x, st->packed, y, st->b, TL_ACT_NONE, part, nparts);
        return;
    }
    if (st->packed) {
        tl_sgemm_pb(ws, rows, out, in, x, in, st->packed, y, out, st->b, TL_ACT_NONE, part, nparts);
        return;
    }
    size_t c0, c1;
    share((size_t)out, 32, part, nparts, &c0, &c1);
    tl_linear_forward(ws, rows, in, out, x, st->w, st->b, y, (int)c0, (int)c1);
}

/* The operations inference runs as they are; part 0 runs those that are
 * not worth splitting. */
static void run_op(const tl_model *m, worker *wk, const step *st, const tl_node *n, const float *x, const float *x2,
                   float *y, int part, int nparts)
{
    const tl_node *src = &m->nodes[n->in[0]];
    size_t lo, hi;
    switch (n->op) {
    case TL_OP_MAXPOOL:
    case TL_OP_AVGPOOL: {
        share((size_t)n->pool.c, 1, part, nparts, &lo, &hi);
        if (lo >= hi)
            return;
        tl_pool_geom g = n->pool;
        g.c = (int)(hi - lo);
        size_t in_plane = (size_t)g.h * g.w, out_plane = (size_t)g.oh * g.ow;
        (n->op == TL_OP_MAXPOOL ? tl_maxpool2d : tl_avgpool2d)(&g, x + lo * in_plane, y + lo * out_plane);
        return;
    }
    case TL_OP_LAYERNORM:
        share((size_t)n->c, 1, part, nparts, &lo, &hi);
        if (lo < hi)
            tl_layernorm((int)(hi - lo), n->w, x + lo * n->w, pdata(m, n->weight), pdata(m, n->bias), n->eps,
                         y + lo * n->w);
        return;
    case TL_OP_ATTENTION:
        share((size_t)n->heads, 1, part, nparts, &lo, &hi);
        if (lo < hi)
            tl_attention_heads_range(wk->kws, n->c, n->w, n->heads, (int)lo, (int)hi, x, y, wk->scratch);
        return;
    case TL_OP_TOKEN_LINEAR: /* x2: the residual of a fused add */
        tl_sgemm_pb_res(wk->kws, n->c, n->w, src->w, x, src->w, st->packed, y, n->w, pdata(m, n->bias), st->act, x2,
                        part, nparts);
        return;
    default:
        if (part == 0)
            tl_node_forward_plain(m, n, x, x2, y);
        return;
    }
}

/* Share `part` of `nparts` of one step on one image. */
static void run_step(tl_infer *inf, worker *wk, const worker *vals, const step *st, const float *image, int part,
                     int nparts)
{
    const tl_model *m = inf->m;
    const tl_node *n = &m->nodes[st->node];
    const float *x = value_ptr(inf, inf->value_mine[st->in[0]] ? wk : vals, image, st->in[0]);
    float *y = value_ptr(inf, st->mine ? wk : vals, image, st->node);
    size_t hw = (size_t)n->h * n->w, len = (size_t)tl_node_size(n), lo, hi;
    if (st->mine) /* whole, on every part (mark_mine) */
        part = 0, nparts = 1;
    switch (st->kind) {
    case STEP_CONV: {
        tl_conv_fuse f = {
            .in_scale = st->in[2] >= 0 ? value_ptr(inf, inf->value_mine[st->in[2]] ? wk : vals, image, st->in[2])
                                       : NULL,
            .residual = st->in[1] >= 0 ? value_ptr(inf, vals, image, st->in[1]) : NULL,
            .means = st->pool >= 0 ? value_ptr(inf, vals, image, st->pool) : NULL,
        };
        tl_conv_forward_fused(wk->kws, &m->nodes[st->conv_node].geom, x, st->packed, st->b, st->act, &f, y, part,
                              nparts, wk->scratch);
        break;
    }
    case STEP_BN:
        share((size_t)n->c, 1, part, nparts, &lo, &hi);
        tl_channel_affine((int)hw, x, st->w, st->b, y, (int)lo, (int)hi);
        break;
    case STEP_ACT:
        share(len, 16, part, nparts, &lo, &hi);
        if (lo < hi)
            tl_activation_copy(st->act, x + lo, y + lo, hi - lo);
        break;
    case STEP_ADD:
        share(len, 16, part, nparts, &lo, &hi);
        if (lo < hi)
            tl_add(hi - lo, x + lo, value_ptr(inf, vals, image, st->in[1]) + lo, y + lo);
        break;
    case STEP_GAP: {
        const tl_node *src = &m->nodes[st->in[0]];
        share((size_t)src->c, 1, part, nparts, &lo, &hi);
        if (lo < hi)
            tl_global_avgpool((int)(hi - lo), src->h * src->w, x + lo * src->h * src->w, y + lo);
        break;
    }
    case STEP_LINEAR: {
        const tl_node *src = &m->nodes[st->in[0]];
        linear_part(wk->kws, st, 1, (int)tl_node_size(src), n->c, x, y, part, nparts);
        break;
    }
    case STEP_OP:
        run_op(m, wk, st, &m->nodes[st->conv_node], x, st->in[1] >= 0 ? value_ptr(inf, vals, image, st->in[1]) : NULL,
               y, part, nparts);
        break;
    case STEP_DONE:
        break;
    }
}

static void copy_outputs(const tl_infer *inf, int s, const float *y, int64_t index, float *const *out)
{
    size_t len = (size_t)tl_node_size(&inf->m->nodes[inf->steps[s].node]);
    for (int k = 0; k < inf->noutputs; k++)
        if (inf->output_step[k] == s)
            memcpy(out[k] + (size_t)index * len, y, len * sizeof(float));
}

/* Image k of a group of n (channel-major, c x n x hw) from or to its own
 * c x hw planes. */
static void to_group(const float *src, float *dst, int c, size_t hw, int k, int n)
{
    for (int ch = 0; ch < c; ch++)
        memcpy(dst + ((size_t)ch * n + k) * hw, src + (size_t)ch * hw, hw * sizeof(float));
}

static void from_group(const float *src, float *dst, int c, size_t hw, int k, int n)
{
    for (int ch = 0; ch < c; ch++)
        memcpy(dst + (size_t)ch * hw, src + ((size_t)ch * n + k) * hw, hw * sizeof(float));
}

/* The steps before the group on one image, by one thread or split across
 * a team sharing the activations of `vals`; then the values the group
 * reads go to its place k of n in the group (or, without a group, the
 * tail's input to its batch row). */
static void run_image(tl_infer *inf, worker *wk, const worker *vals, const float *image, int64_t index, int row,
                      int k, int n, float *const *out, int part, int nparts, tl_barrier *bar)
{
    const tl_model *m = inf->m;
    for (int s = 0; s < inf->group; s++) {
        const step *st = &inf->steps[s];
        if (st->kind != STEP_DONE) {
            run_step(inf, wk, vals, st, image, part, nparts);
            if (!st->mine)
                tl_barrier_wait(bar);
        }
        if (st->noutputs) {
            if (part == 0)
                copy_outputs(inf, s, value_ptr(inf, vals, image, st->node), index, out);
            tl_barrier_wait(bar); /* before a later step reuses the slot */
        }
    }
    if (part != 0)
        return;
    for (int q = 0; q < inf->ncross; q++) {
        const tl_node *nd = &m->nodes[inf->cross[q]];
        to_group(value_ptr(inf, vals, image, inf->cross[q]), vals->garena + inf->group_off[inf->cross[q]], nd->c,
                 (size_t)nd->h * nd->w, k, n);
    }
    if (inf->group == inf->tail && inf->tail < inf->nsteps) {
        int v = inf->steps[inf->tail].in[0];
        size_t len = (size_t)tl_node_size(&m->nodes[v]);
        memcpy(inf->tail_buf + inf->tail_off[v] + (size_t)row * len, value_ptr(inf, vals, image, v), len * sizeof(float));
    }
}

/* Share `part` of `nparts` of one grouped step on n images. */
static void run_group_step(tl_infer *inf, worker *wk, const worker *vals, const step *st, int n, int part, int nparts)
{
    const tl_model *m = inf->m;
    const tl_node *nd = &m->nodes[st->node];
    const float *x = vals->garena + inf->group_off[st->in[0]];
    float *y = vals->garena + inf->group_off[st->node];
    size_t hw = (size_t)nd->h * nd->w, len = (size_t)tl_node_size(nd) * n, lo, hi;
    switch (st->kind) {
    case STEP_CONV:
        tl_conv_forward_images(wk->kws, &m->nodes[st->conv_node].geom, n, x, st->packed, st->b, st->act,
                               st->in[1] >= 0 ? vals->garena + inf->group_off[st->in[1]] : NULL, y, part, nparts,
                               wk->scratch);
        break;
    case STEP_BN:
        share((size_t)nd->c, 1, part, nparts, &lo, &hi);
        tl_channel_affine((int)hw * n, x, st->w, st->b, y, (int)lo, (int)hi);
        break;
    case STEP_ACT:
        share(len, 16, part, nparts, &lo, &hi);
        if (lo < hi)
            tl_activation_copy(st->act, x + lo, y + lo, hi - lo);
        break;
    case STEP_ADD:
        share(len, 16, part, nparts, &lo, &hi);
        if (lo < hi)
            tl_add(hi - lo, x + lo, vals->garena + inf->group_off[st->in[1]] + lo, y + lo);
        break;
    case STEP_GAP: { /* the planes of all images, in their order */
        const tl_node *src = &m->nodes[st->in[0]];
        size_t planes = (size_t)src->c * n, shw = (size_t)src->h * src->w;
        share(planes, 1, part, nparts, &lo, &hi);
        if (lo < hi)
            tl_global_avgpool((int)(hi - lo), (int)shw, x + lo * shw, y + lo);
        break;
    }
    case STEP_OP: { /* pooling, plane by plane */
        share((size_t)nd->pool.c * n, 1, part, nparts, &lo, &hi);
        if (lo >= hi)
            break;
        tl_pool_geom g = nd->pool;
        g.c = (int)(hi - lo);
        size_t in_plane = (size_t)g.h * g.w, out_plane = (size_t)g.oh * g.ow;
        (nd->op == TL_OP_MAXPOOL ? tl_maxpool2d : tl_avgpool2d)(&g, x + lo * in_plane, y + lo * out_plane);
        break;
    }
    default:
        break;
    }
}

/* The grouped steps on n images (indices index0.., batch rows row0..),
 * whose values run_image put in place. */
static void run_group(tl_infer *inf, worker *wk, const worker *vals, int n, int64_t index0, int row0,
                      float *const *out, int part, int nparts, tl_barrier *bar)
{
    const tl_model *m = inf->m;
    if (inf->group >= inf->tail)
        return;
    tl_barrier_wait(bar); /* every image in place */
    for (int s = inf->group; s < inf->tail; s++) {
        const step *st = &inf->steps[s];
        run_group_step(inf, wk, vals, st, n, part, nparts);
        tl_barrier_wait(bar);
        if (st->noutputs) {
            const tl_node *nd = &m->nodes[st->node];
            size_t len = (size_t)tl_node_size(nd);
            for (int q = 0; part == 0 && q < inf->noutputs; q++)
                if (inf->output_step[q] == s)
                    for (int k = 0; k < n; k++)
                        from_group(vals->garena + inf->group_off[st->node], out[q] + (size_t)(index0 + k) * len,
                                   nd->c, (size_t)nd->h * nd->w, k, n);
            tl_barrier_wait(bar);
        }
    }
    if (inf->tail < inf->nsteps && part == 0) {
        int v = inf->steps[inf->tail].in[0];
        const tl_node *nd = &m->nodes[v];
        size_t len = (size_t)tl_node_size(nd);
        for (int k = 0; k < n; k++)
            from_group(vals->garena + inf->group_off[v], inf->tail_buf + inf->tail_off[v] + (size_t)(row0 + k) * len,
                       nd->c, (size_t)nd->h * nd->w, k, n);
    }
}

/* The tail on rows images at once (rows <= TAIL_BATCH), first image index0. */
static void run_tail(tl_infer *inf, worker *wk, int rows, int64_t index0, float *const *out, int part, int nparts,
                     tl_barrier *bar)
{
    const tl_model *m = inf->m;
    for (int s = inf->tail; s < inf->nsteps; s++) {
        const step *st = &inf->steps[s];
        const tl_node *n = &m->nodes[st->node];
        const float *x = inf->tail_buf + inf->tail_off[st->in[0]];
        float *y = inf->tail_buf + inf->tail_off[st->node];
        size_t len = (size_t)tl_node_size(n), lo, hi;
        if (st->kind == STEP_LINEAR) {
            linear_part(wk->kws, st, rows, (int)tl_node_size(&m->nodes[st->in[0]]), n->c, x, y, part, nparts);
        } else {
            share(len * rows, 16, part, nparts, &lo, &hi);
            if (lo < hi)
                tl_activation_copy(st->act, x + lo, y + lo, hi - lo);
        }
        tl_barrier_wait(bar);
        if (st->noutputs && part == 0)
            for (int r = 0; r < rows; r++)
                copy_outputs(inf, s, y + (size_t)r * len, index0 + r, out);
    }
}

typedef struct {
    tl_infer *inf;
    const float *input;
    float *const *out;
    int64_t first;    /* index of the batch's first image */
    int64_t image;    /* team: the image (relative to first), or -1 for the tail */
    int then_tail;    /* team on an image: the tail follows in the same job (one wake fewer) */
    int rows;         /* team, tail: images in the batch */
    int whole, ngroups; /* groups: images 0..whole of the batch in ngroups groups */
    int nparts;
    tl_barrier bar;
} run_ctx;

static size_t input_len(const tl_infer *inf) { return (size_t)inf->m->in_c * inf->m->in_h * inf->m->in_w; }

/* Groups of images one per worker, each on its own activations. */
static void run_groups(void *ctx, int64_t begin, int64_t end, int w)
{
    run_ctx *rc = ctx;
    tl_infer *inf = rc->inf;
    worker *wk = &inf->workers[w];
    tl_barrier solo;
    tl_barrier_init(&solo, 1);
    for (int64_t gi = begin; gi < end; gi++) {
        int i0 = (int)(rc->whole * gi / rc->ngroups), i1 = (int)(rc->whole * (gi + 1) / rc->ngroups);
        for (int i = i0; i < i1; i++)
            run_image(inf, wk, wk, rc->input + (size_t)(rc->first + i) * input_len(inf), rc->first + i, i, i - i0,
                      i1 - i0, rc->out, 0, 1, &solo);
        run_group(inf, wk, wk, i1 - i0, rc->first + i0, i0, rc->out, 0, 1, &solo);
    }
}

/* One member of a team: the chunk index is its part. */
static void run_team(void *ctx, int64_t begin, int64_t end, int w)
{
    run_ctx *rc = ctx;
    tl_infer *inf = rc->inf;
    for (int64_t part = begin; part < end; part++) {
        if (rc->image >= 0) {
            int64_t i = rc->first + rc->image;
            run_image(inf, &inf->workers[w], &inf->workers[0], rc->input + (size_t)i * input_len(inf), i,
                      (int)rc->image, 0, 1, rc->out, (int)part, rc->nparts, &rc->bar);
            run_group(inf, &inf->workers[w], &inf->workers[0], 1, i, (int)rc->image, rc->out, (int)part, rc->nparts,
                      &rc->bar);
            if (rc->then_tail) {
                tl_barrier_wait(&rc->bar); /* the image's row of the tail input in place */
                run_tail(inf, &inf->workers[w], rc->rows, rc->first, rc->out, (int)part, rc->nparts, &rc->bar);
            }
        } else {
            run_tail(inf, &inf->workers[w], rc->rows, rc->first, rc->out, (int)part, rc->nparts, &rc->bar);
        }
    }
}

static void team_run(tl_pool *pool, int nparts, run_ctx *rc)
{
    tl_barrier_init(&rc->bar, nparts);
    rc->nparts = nparts;
    if (nparts < 2) {
        run_team(rc, 0, 1, 0);
        return;
    }
    tl_parallel_for(pool, nparts, 1, run_team, rc);
}

void tl_infer_run(tl_infer *inf, tl_pool *pool, int nimg, const float *input, float *const *out)
{
    if (inf->q8) {
        tl_q8_infer_run(inf->q8, pool, nimg, input, out);
        return;
    }
    int nw = pool ? tl_pool_size(pool) : 1;
    if (nw > inf->nworkers || nw < 2) {
        pool = NULL; /* not enough workspaces: stay correct, run serially */
        nw = 1;
    }
    int chunk = inf->tail < inf->nsteps ? TAIL_BATCH : (nimg > 0 ? nimg : 1);
    for (int first = 0; first < nimg; first += chunk) {
        int n = nimg - first < chunk ? nimg - first : chunk;
        run_ctx rc = {.inf = inf, .input = input, .out = out, .first = first, .rows = n};
        /* whole rounds of images one per worker (no barriers), in groups of
         * up to GROUP_MAX, as many groups as keep every worker busy; a
         * team of all workers for the rest, so one image still uses every
         * core */
        int whole = n / nw * nw;
        rc.whole = whole;
        rc.ngroups = whole;
        if (inf->group < inf->tail) {
            int per_round = nw * GROUP_MAX;
            rc.ngroups = (whole + per_round - 1) / per_round * nw;
            rc.ngroups = rc.ngroups < whole ? rc.ngroups : whole;
        }
        tl_parallel_for(pool, rc.ngroups, 1, run_groups, &rc);
        for (int i = whole; i < n; i++) {
            rc.image = i;
            rc.then_tail = i == n - 1 && inf->tail < inf->nsteps;
            team_run(pool, nw, &rc);
        }
        if (inf->tail < inf->nsteps && whole == n) {
            rc.image = -1;
            team_run(pool, nw, &rc);
        }
    }
}
