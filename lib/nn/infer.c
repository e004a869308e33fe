#include "infer.h"
#include "node_forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* STEP_OP runs its node's operation as it stands (no folding). */
typedef enum { STEP_CONV, STEP_ACT, STEP_ADD, STEP_GAP, STEP_LINEAR, STEP_BN, STEP_OP } step_kind;

typedef struct {
    step_kind kind;
    int node;       /* the graph node whose value this step produces */
    int conv_node;  /* STEP_CONV: node holding the geometry */
    int bn_node;    /* STEP_CONV with folded BN, or STEP_BN; -1 otherwise */
    int act;
    int in[2];      /* value ids (= node ids) read */
    float *w, *b;   /* folded weights (owned) or the model's */
    int owns_w;
} step;

typedef struct {
    tl_kws *kws;
    float *arena;   /* all slots of this worker, then conv scratch */
    float *scratch;
} worker;

struct tl_infer {
    const tl_model *m;
    step *steps;
    int nsteps;
    int *value_slot;     /* per node: slot index, -2 = the input image, -1 = none */
    int *value_alias;    /* per node: node whose value this one shares (dropout) */
    size_t *slot_offset; /* floats into a worker arena */
    int nslots;
    size_t arena_floats, scratch_floats;
    int *outputs, noutputs;
    int *output_step;    /* step after which output k is copied out */
    worker *workers;
    int nworkers;
};

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
        s->node = i;
        s->bn_node = -1;
        s->in[0] = n->in[0] >= 0 ? resolve(inf, n->in[0]) : -1;
        s->in[1] = n->in[1] >= 0 ? resolve(inf, n->in[1]) : -1;
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

/* Greedy slot assignment by liveness: a slot is reused once the last step
 * reading its value has run. */
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
    for (int s = 0; s < inf->nsteps; s++)
        for (int k = 0; k < 2; k++)
            if (inf->steps[s].in[k] >= 0)
                last_use[inf->steps[s].in[k]] = s;
    inf->value_slot[0] = -2;
    int nslots = 0;
    for (int s = 0; s < inf->nsteps; s++) {
        int v = inf->steps[s].node;
        size_t need = (size_t)tl_node_size(&m->nodes[v]);
        int chosen = -1;
        for (int k = 0; k < nslots; k++) {
            int held = slot_value[k];
            if (held < 0 || last_use[held] < s) {
                if (chosen < 0 || slot_size[k] >= need)
                    chosen = k;
                if (slot_size[k] >= need)
                    break;
            }
        }
        if (chosen < 0)
            chosen = nslots++;
        if (slot_size[chosen] < need)
            slot_size[chosen] = need;
        slot_value[chosen] = v;
        inf->value_slot[v] = chosen;
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
    for (int s = 0; s < inf->nsteps; s++)
        if (inf->steps[s].owns_w) {
            tl_free(inf->steps[s].w);
            tl_free(inf->steps[s].b);
            inf->steps[s].w = inf->steps[s].b = NULL;
            inf->steps[s].owns_w = 0;
        }
}

int tl_infer_refresh(tl_infer *inf, tl_err *e)
{
    const tl_model *m = inf->m;
    free_folded(inf);
    for (int s = 0; s < inf->nsteps; s++) {
        step *st = &inf->steps[s];
        const tl_node *n = &m->nodes[st->kind == STEP_CONV ? st->conv_node : st->node];
        if (st->kind == STEP_LINEAR) {
            st->w = m->params[n->weight].data;
            st->b = m->params[n->bias].data;
            continue;
        }
        if (st->kind != STEP_CONV && st->kind != STEP_BN)
            continue;
        int cout = n->c;
        size_t per_out = st->kind == STEP_CONV ? (size_t)(m->params[n->weight].numel / cout) : 0;
        st->b = tl_alloc_array((size_t)cout, sizeof(float));
        st->w = tl_alloc_array(st->kind == STEP_CONV ? (size_t)cout * per_out : (size_t)cout, sizeof(float));
        st->owns_w = 1;
        if (!st->w || !st->b)
            return tl_fail(e, "out of memory folding batch norm");
        const float *cw = st->kind == STEP_CONV ? m->params[n->weight].data : NULL;
        const float *cb = (st->kind == STEP_CONV && n->bias >= 0) ? m->params[n->bias].data : NULL;
        const tl_node *bn = st->bn_node >= 0 ? &m->nodes[st->bn_node] : NULL;
        for (int o = 0; o < cout; o++) {
            double scale = 1, shift = cb ? cb[o] : 0;
            if (bn) {
                double g = m->params[bn->weight].data[o], beta = m->params[bn->bias].data[o];
                double mu = m->params[bn->running_mean].data[o], var = m->params[bn->running_var].data[o];
                scale = g / sqrt(var + bn->eps);
                shift = (shift - mu) * scale + beta;
            }
            if (st->kind == STEP_CONV)
                for (size_t j = 0; j < per_out; j++)
                    st->w[(size_t)o * per_out + j] = (float)(cw[(size_t)o * per_out + j] * scale);
            else
                st->w[o] = (float)scale;
            st->b[o] = (float)shift;
        }
    }
    return 0;
}

void tl_infer_free(tl_infer *inf)
{
    if (!inf)
        return;
    free_folded(inf);
    for (int w = 0; w < inf->nworkers; w++) {
        tl_kws_free(inf->workers[w].kws);
        tl_free(inf->workers[w].arena);
    }
    free(inf->workers);
    free(inf->steps);
    free(inf->value_slot);
    free(inf->value_alias);
    free(inf->slot_offset);
    free(inf->outputs);
    free(inf->output_step);
    free(inf);
}

tl_infer *tl_infer_new(const tl_model *m, int nthreads, const int *outputs, int noutputs, tl_err *e)
{
    tl_infer *inf = calloc(1, sizeof *inf);
    if (!inf) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    inf->m = m;
    inf->value_slot = calloc((size_t)m->nnodes, sizeof *inf->value_slot);
    inf->value_alias = calloc((size_t)m->nnodes, sizeof *inf->value_alias);
    inf->outputs = calloc((size_t)noutputs + 1, sizeof *inf->outputs);
    inf->output_step = calloc((size_t)noutputs + 1, sizeof *inf->output_step);
    if (!inf->value_slot || !inf->value_alias || !inf->outputs || !inf->output_step) {
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
    if (build_steps(inf, e) || assign_slots(inf, e) || tl_infer_refresh(inf, e))
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
    }
    for (int s = 0; s < inf->nsteps; s++) {
        const step *st = &inf->steps[s];
        const tl_node *n = &m->nodes[st->node];
        size_t need = 0;
        if (st->kind == STEP_CONV)
            need = tl_conv_scratch_floats(&m->nodes[st->conv_node].geom);
        else if (st->kind == STEP_OP && n->op == TL_OP_ATTENTION)
            need = (size_t)n->c * n->c;
        if (need > inf->scratch_floats)
            inf->scratch_floats = need;
    }
    inf->nworkers = nthreads < 1 ? 1 : nthreads;
    inf->workers = calloc((size_t)inf->nworkers, sizeof *inf->workers);
    if (!inf->workers) {
        tl_fail(e, "out of memory");
        goto fail;
    }
    for (int w = 0; w < inf->nworkers; w++) {
        worker *wk = &inf->workers[w];
        wk->kws = tl_kws_new(e);
        wk->arena = tl_alloc_array(inf->arena_floats + inf->scratch_floats + 16, sizeof(float));
        if (!wk->kws || !wk->arena) {
            if (wk->kws && !wk->arena)
                tl_fail(e, "out of memory for activations (%zu floats per worker)", inf->arena_floats);
            goto fail;
        }
        wk->scratch = wk->arena + inf->arena_floats;
    }
    return inf;
fail:
    tl_infer_free(inf);
    return NULL;
}

size_t tl_infer_worker_bytes(const tl_infer *inf) { return (inf->arena_floats + inf->scratch_floats) * sizeof(float); }

typedef struct {
    tl_infer *inf;
    const float *input;
    float *const *out;
} run_ctx;

static float *value_ptr(const tl_infer *inf, const worker *wk, const float *image, int v)
{
    int slot = inf->value_slot[v];
    if (slot == -2)
        return (float *)image;
    return wk->arena + inf->slot_offset[slot];
}

static const float *pdata(const tl_model *m, int index) { return m->params[index].data; }

/* The operations inference runs as they are, one image at a time. */
static void run_op(const tl_model *m, worker *wk, const tl_node *n, const float *x, const float *x2, float *y)
{
    if (tl_node_forward_plain(m, n, x, x2, y))
        return;
    const tl_node *src = &m->nodes[n->in[0]];
    switch (n->op) {
    case TL_OP_LAYERNORM:
        tl_layernorm(n->c, n->w, x, pdata(m, n->weight), pdata(m, n->bias), n->eps, y);
        break;
    case TL_OP_ATTENTION: tl_attention_heads(wk->kws, n->c, n->w, n->heads, x, y, wk->scratch); break;
    case TL_OP_TOKEN_LINEAR:
        tl_linear_forward(wk->kws, n->c, src->w, n->w, x, pdata(m, n->weight), pdata(m, n->bias), y);
        break;
    default: break;
    }
}

static void run_one(tl_infer *inf, worker *wk, const float *image, int64_t index, float *const *out)
{
    const tl_model *m = inf->m;
    for (int s = 0; s < inf->nsteps; s++) {
        const step *st = &inf->steps[s];
        const tl_node *n = &m->nodes[st->node];
        const float *x = value_ptr(inf, wk, image, st->in[0]);
        float *y = value_ptr(inf, wk, image, st->node);
        size_t hw = (size_t)n->h * n->w;
        switch (st->kind) {
        case STEP_CONV: {
            const tl_conv_geom *g = &m->nodes[st->conv_node].geom;
            tl_conv_forward(wk->kws, g, x, st->w, st->b, st->act, y, wk->scratch);
            break;
        }
        case STEP_BN:
            for (int c = 0; c < n->c; c++)
                for (size_t i = 0; i < hw; i++)
                    y[c * hw + i] = x[c * hw + i] * st->w[c] + st->b[c];
            break;
        case STEP_ACT:
            memcpy(y, x, (size_t)tl_node_size(n) * sizeof(float));
            tl_activation(st->act, y, (size_t)tl_node_size(n));
            break;
        case STEP_ADD: {
            const float *x2 = value_ptr(inf, wk, image, st->in[1]);
            size_t len = (size_t)tl_node_size(n);
            for (size_t i = 0; i < len; i++)
                y[i] = x[i] + x2[i];
            break;
        }
        case STEP_GAP: {
            const tl_node *src = &m->nodes[st->in[0]];
            tl_global_avgpool(src->c, src->h * src->w, x, y);
            break;
        }
        case STEP_LINEAR: {
            const tl_node *src = &m->nodes[st->in[0]];
            tl_linear_forward(wk->kws, 1, (int)tl_node_size(src), n->c, x, st->w, st->b, y);
            break;
        }
        case STEP_OP:
            run_op(m, wk, n, x, st->in[1] >= 0 ? value_ptr(inf, wk, image, st->in[1]) : NULL, y);
            break;
        }
        for (int k = 0; k < inf->noutputs; k++)
            if (inf->output_step[k] == s) {
                size_t len = (size_t)tl_node_size(n);
                memcpy(out[k] + (size_t)index * len, y, len * sizeof(float));
            }
    }
}

static void run_range(void *ctx, int64_t begin, int64_t end, int w)
{
    run_ctx *rc = ctx;
    tl_infer *inf = rc->inf;
    size_t in_len = (size_t)inf->m->in_c * inf->m->in_h * inf->m->in_w;
    for (int64_t i = begin; i < end; i++)
        run_one(inf, &inf->workers[w], rc->input + (size_t)i * in_len, i, rc->out);
}

void tl_infer_run(tl_infer *inf, tl_pool *pool, int nimg, const float *input, float *const *out)
{
    run_ctx rc = {inf, input, out};
    if (pool && tl_pool_size(pool) > inf->nworkers)
        pool = NULL; /* not enough workspaces: stay correct, run serially */
    tl_parallel_for(pool, nimg, 1, run_range, &rc);
}
