/* Planning the training tape: which nodes run in the frozen prefix
 * (through the fused inference engine) and which keep their values, the
 * gradient buffers shared by liveness, the per-part weight-gradient
 * accumulators and the per-thread workspaces; everything sized once for
 * the largest batch, re-planned when parameters are frozen or thawed. */
#include "tape_internal.h"
#include "kernels/kernels.h"

#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

/* Activations and gradients (tens to hundreds of MiB at batch 32) on
 * transparent huge pages where the system gives them on request
 * (enabled=madvise): the passes over them read a channel's plane in every
 * image, or a tile's rows a plane apart, one 4 KiB page after another, and
 * missed the TLB. Zeroed as tl_alloc does; freed by tl_free. */
#define HUGE_BYTES ((size_t)2 << 20)
static float *alloc_floats(size_t floats)
{
    size_t bytes = (floats ? floats : 1) * sizeof(float);
    if (bytes / sizeof(float) < floats)
        return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= 2 * HUGE_BYTES) {
        size_t rounded = (bytes + HUGE_BYTES - 1) / HUGE_BYTES * HUGE_BYTES;
        float *p = aligned_alloc(HUGE_BYTES, rounded);
        if (p) {
            madvise(p, rounded, MADV_HUGEPAGE); /* a hint: without it, small pages */
            memset(p, 0, rounded);
        }
        return p;
    }
#endif
    return tl_alloc_array(floats, sizeof(float));
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
        if (!(t->gslot[k] = alloc_floats(need[k]))) {
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
            if (!(s->value = alloc_floats(floats)))
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
    t->prefix = tl_infer_new_exact(&t->sub, t->nw, t->pre_nodes, t->npre, t->exact, e);
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
        t->s[i].uses = 0;
    }
    for (int i = 0; i < m->nnodes; i++)
        for (int k = 0; k < 2; k++)
            if (m->nodes[i].in[k] >= 0)
                t->s[m->nodes[i].in[k]].uses++;
    if (plan_grads(t, e) || plan_prefix(t, e))
        return -1;
    return grow_accumulators(t, e);
}

int tl_tape_set_exact(tl_tape *t, int exact, tl_err *e)
{
    exact = !!exact;
    if (exact == t->exact)
        return 0;
    t->exact = exact;
    for (int w = 0; w < t->nw; w++) /* buffers are sized for both modes */
        tl_kws_set_exact(t->w[w].kws, exact);
    return plan_prefix(t, e);
}

/* Scratch and packed-weight floats a convolution needs in the workspace's
 * current mode. */
static void conv_needs(const tl_kws *ws, const tl_conv_geom *g, size_t *scratch, size_t *pack)
{
    size_t fwd = tl_conv_forward_scratch_floats(ws, g), bwd = tl_conv_backward_packed_scratch_floats(ws, g);
    size_t need = fwd > bwd ? fwd : bwd;
    if (g->groups == 1 && tl_conv_wgrad_scratch_floats(g) > need)
        need = tl_conv_wgrad_scratch_floats(g);
    size_t f = tl_conv_packed_floats(ws, g);
    size_t bw = tl_conv_backward_packable(g) ? tl_conv_backward_packed_floats(ws, g) : 0;
    f = f > bw ? f : bw;
    if (need > *scratch)
        *scratch = need;
    if (f > *pack)
        *pack = f;
}

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
    free(t->sync_buf);
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
    /* Not exact by default: Winograd where it applies (tl_tape_set_exact). */
    for (int w = 0; w < t->nw; w++) {
        if (!(t->w[w].kws = tl_kws_new(e))) {
            tl_tape_free(t);
            return NULL;
        }
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
        if (n->op == TL_OP_ATTENTION) {
            size_t need = tl_attention_core_scratch_floats(n->c, n->w, n->heads);
            if (need > t->scratch_floats)
                t->scratch_floats = need;
        }
    }
    /* Convolutions: scratch and packed weights for the exact mode and the
     * default, so tl_tape_set_exact never reallocates. */
    size_t wp = 0;
    for (int exact = 0; exact < 2; exact++) {
        tl_kws_set_exact(t->w[0].kws, exact);
        for (int i = 0; i < m->nnodes; i++)
            if (m->nodes[i].op == TL_OP_CONV)
                conv_needs(t->w[0].kws, &m->nodes[i].geom, &t->scratch_floats, &wp);
    }
    tl_kws_set_exact(t->w[0].kws, 0);
    if (!bad && !(t->tmp = alloc_floats(b * largest)))
        bad = 1;
    t->bytes += b * largest * sizeof(float);
    for (int w = 0; w < t->nw && !bad; w++)
        t->w[w].scratch = grab(t, t->scratch_floats + 16, &bad);
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
