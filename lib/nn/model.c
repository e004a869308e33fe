#include "model.h"
#include "model_internal.h"
#include "quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tl_model *tl_model_new(const char *arch, int c, int h, int w, tl_err *e)
{
    tl_model *m = calloc(1, sizeof *m);
    if (!m) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    m->in_c = c;
    m->in_h = h;
    m->in_w = w;
    m->features_node = m->logits_node = -1;
    tl_node *n = calloc(16, sizeof *n);
    if (!n) {
        free(m);
        tl_fail(e, "out of memory");
        return NULL;
    }
    m->nodes = n;
    m->cap_nodes = 16;
    n[0].op = TL_OP_INPUT;
    n[0].in[0] = n[0].in[1] = -1;
    n[0].weight = n[0].bias = n[0].running_mean = n[0].running_var = n[0].extra[0] = n[0].extra[1] = -1;
    n[0].c = c;
    n[0].h = h;
    n[0].w = w;
    snprintf(n[0].name, sizeof n[0].name, "input");
    m->nnodes = 1;
    return m;
}

int tl_model_alloc_grads(tl_model *m, tl_err *e)
{
    if (m->grad_storage)
        return 0;
    m->grad_storage = tl_alloc_array(m->storage_floats, sizeof(float));
    if (!m->grad_storage)
        return tl_fail(e, "out of memory for %zu gradients", m->storage_floats);
    for (int i = 0; i < m->nparams; i++)
        m->params[i].grad = m->params[i].is_buffer ? NULL : m->grad_storage + m->params[i].offset;
    return 0;
}

void tl_model_free(tl_model *m)
{
    if (!m)
        return;
    tl_free(m->grad_storage);
    tl_quant_free(m->quant);
    free(m->nodes);
    free(m->params);
    tl_free(m->storage);
    free(m);
}

tl_node *tl_model_add_node(tl_model *m, tl_op op, int in, tl_err *e)
{
    if (in < 0 || in >= m->nnodes) {
        tl_fail(e, "model %s: node input %d out of range", m->arch, in);
        return NULL;
    }
    if (m->storage) {
        tl_fail(e, "model %s: graph already finalised", m->arch);
        return NULL;
    }
    if (m->nnodes == m->cap_nodes) {
        tl_node *nn = realloc(m->nodes, (size_t)m->cap_nodes * 2 * sizeof *nn);
        if (!nn) {
            tl_fail(e, "out of memory");
            return NULL;
        }
        m->nodes = nn;
        m->cap_nodes *= 2;
    }
    tl_node *n = &m->nodes[m->nnodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->in[0] = in;
    n->in[1] = -1;
    n->weight = n->bias = n->running_mean = n->running_var = n->extra[0] = n->extra[1] = -1;
    const tl_node *src = &m->nodes[in];
    n->c = src->c;
    n->h = src->h;
    n->w = src->w;
    n->tokens = src->tokens;
    return n;
}

int tl_model_add_param(tl_model *m, const char *prefix, const char *suffix, int ndim, const int64_t *shape,
                       int is_buffer, tl_err *e)
{
    if (m->nparams == m->cap_params) {
        int nc = m->cap_params ? 2 * m->cap_params : 64;
        tl_param *np = realloc(m->params, (size_t)nc * sizeof *np);
        if (!np)
            return tl_fail(e, "out of memory");
        m->params = np;
        m->cap_params = nc;
    }
    tl_param *p = &m->params[m->nparams];
    memset(p, 0, sizeof *p);
    int len = snprintf(p->name, sizeof p->name, "%s%s%s", prefix, *prefix ? "." : "", suffix);
    if (len >= (int)sizeof p->name)
        return tl_fail(e, "parameter name too long: %s.%s", prefix, suffix);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->numel *= shape[i];
    }
    p->is_buffer = is_buffer;
    /* Keep each tensor 64-byte aligned inside the shared storage. */
    p->offset = m->storage_floats;
    m->storage_floats += ((size_t)p->numel + 15) / 16 * 16;
    return m->nparams++;
}

static int same_padding(int n, int k, int s, int *before, int *after)
{
    int out = (n + s - 1) / s;
    int total = (out - 1) * s + k - n;
    if (total < 0)
        total = 0;
    *before = total / 2;
    *after = total - *before;
    return out;
}

int tl_model_conv(tl_model *m, int in, const char *prefix, int cout, int k, int stride, int groups, int bias,
                  tl_err *e)
{
    tl_node *n = tl_model_add_node(m, TL_OP_CONV, in, e);
    if (!n)
        return -1;
    int cin = n->c;
    if (groups < 1 || cin % groups || cout % groups) {
        m->nnodes--;
        return tl_fail(e, "%s: %d input and %d output channels do not divide into %d groups", prefix, cin, cout,
                       groups);
    }
    tl_conv_geom *g = &n->geom;
    memset(g, 0, sizeof *g);
    g->cin = cin;
    g->h = n->h;
    g->w = n->w;
    g->cout = cout;
    g->kh = g->kw = k;
    g->stride_h = g->stride_w = stride;
    g->dil_h = g->dil_w = 1;
    g->groups = groups;
    if (m->tf_same) {
        same_padding(g->h, k, stride, &g->pad_t, &g->pad_b);
        same_padding(g->w, k, stride, &g->pad_l, &g->pad_r);
    } else {
        g->pad_t = g->pad_b = g->pad_l = g->pad_r = (k - 1) / 2;
    }
    tl_conv_geom_finish(g);
    if (g->oh <= 0 || g->ow <= 0) {
        m->nnodes--;
        return tl_fail(e, "%s: input %dx%d is too small for this network", prefix, g->h, g->w);
    }
    n->c = cout;
    n->h = g->oh;
    n->w = g->ow;
    int idx = m->nnodes - 1;
    int64_t shape[4] = {cout, cin / groups, k, k};
    int w = tl_model_add_param(m, prefix, "weight", 4, shape, 0, e);
    if (w < 0)
        return -1;
    m->nodes[idx].weight = w;
    if (bias) {
        int64_t bs[1] = {cout};
        int b = tl_model_add_param(m, prefix, "bias", 1, bs, 0, e);
        if (b < 0)
            return -1;
        m->nodes[idx].bias = b;
    }
    return idx;
}

int tl_model_bn(tl_model *m, int in, const char *prefix, float eps, tl_err *e)
{
    tl_node *n = tl_model_add_node(m, TL_OP_BN, in, e);
    if (!n)
        return -1;
    n->eps = eps;
    n->momentum = 0.1f;
    int idx = m->nnodes - 1;
    int64_t s[1] = {n->c};
    int w = tl_model_add_param(m, prefix, "weight", 1, s, 0, e);
    int b = w < 0 ? -1 : tl_model_add_param(m, prefix, "bias", 1, s, 0, e);
    int rm = b < 0 ? -1 : tl_model_add_param(m, prefix, "running_mean", 1, s, 1, e);
    int rv = rm < 0 ? -1 : tl_model_add_param(m, prefix, "running_var", 1, s, 1, e);
    if (rv < 0)
        return -1;
    tl_node *nn = &m->nodes[idx];
    nn->weight = w;
    nn->bias = b;
    nn->running_mean = rm;
    nn->running_var = rv;
    return idx;
}

int tl_model_act(tl_model *m, int in, int act, tl_err *e)
{
    tl_node *n = tl_model_add_node(m, TL_OP_ACT, in, e);
    if (!n)
        return -1;
    n->act = act;
    return m->nnodes - 1;
}

int tl_model_add(tl_model *m, int a, int b, tl_err *e)
{
    if (b < 0 || b >= m->nnodes)
        return tl_fail(e, "model %s: node input %d out of range", m->arch, b);
    tl_node *n = tl_model_add_node(m, TL_OP_ADD, a, e);
    if (!n)
        return -1;
    const tl_node *o = &m->nodes[b];
    if (o->c != n->c || o->h != n->h || o->w != n->w) {
        m->nnodes--;
        return tl_fail(e, "model %s: residual shapes differ (%dx%dx%d vs %dx%dx%d)", m->arch, n->c, n->h, n->w,
                       o->c, o->h, o->w);
    }
    n->in[1] = b;
    return m->nnodes - 1;
}

int tl_model_gap(tl_model *m, int in, tl_err *e)
{
    tl_node *n = tl_model_add_node(m, TL_OP_GAP, in, e);
    if (!n)
        return -1;
    n->h = n->w = 1;
    return m->nnodes - 1;
}

int tl_model_linear(tl_model *m, int in, const char *prefix, int out, tl_err *e)
{
    tl_node *n = tl_model_add_node(m, TL_OP_LINEAR, in, e);
    if (!n)
        return -1;
    int64_t fan_in = (int64_t)n->c * n->h * n->w;
    n->c = out;
    n->h = n->w = 1;
    int idx = m->nnodes - 1;
    int64_t ws[2] = {out, fan_in}, bs[1] = {out};
    int w = tl_model_add_param(m, prefix, "weight", 2, ws, 0, e);
    int b = w < 0 ? -1 : tl_model_add_param(m, prefix, "bias", 1, bs, 0, e);
    if (b < 0)
        return -1;
    m->nodes[idx].weight = w;
    m->nodes[idx].bias = b;
    return idx;
}

int tl_model_dropout(tl_model *m, int in, float p, tl_err *e)
{
    tl_node *n = tl_model_add_node(m, TL_OP_DROPOUT, in, e);
    if (!n)
        return -1;
    n->p = p;
    return m->nnodes - 1;
}

int tl_model_name(tl_model *m, int node, const char *name, tl_err *e)
{
    if (node < 0 || node >= m->nnodes)
        return tl_fail(e, "model %s: node %d out of range", m->arch, node);
    if (tl_model_find_node(m, name) >= 0)
        return tl_fail(e, "model %s: layer name '%s' used twice", m->arch, name);
    snprintf(m->nodes[node].name, sizeof m->nodes[node].name, "%s", name);
    return 0;
}

int tl_model_finalize(tl_model *m, tl_err *e)
{
    m->storage = tl_alloc_array(m->storage_floats, sizeof(float));
    if (!m->storage)
        return tl_fail(e, "out of memory for %zu parameters", m->storage_floats);
    for (int i = 0; i < m->nparams; i++)
        m->params[i].data = m->storage + m->params[i].offset;
    return 0;
}

int tl_model_find_param(const tl_model *m, const char *name)
{
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, name))
            return i;
    return -1;
}

int tl_model_classifier_node(const tl_model *m)
{
    int i = m->logits_node;
    while (i >= 0 && m->nodes[i].weight < 0)
        i = m->nodes[i].in[0];
    return i;
}

int tl_model_find_node(const tl_model *m, const char *name)
{
    if (!strcmp(name, "logits"))
        return m->logits_node;
    if (!strcmp(name, "features"))
        return m->features_node;
    for (int i = 0; i < m->nnodes; i++)
        if (!strcmp(m->nodes[i].name, name))
            return i;
    return -1;
}

int64_t tl_node_size(const tl_node *n) { return (int64_t)n->c * n->h * n->w; }

int64_t tl_model_param_count(const tl_model *m, int include_buffers)
{
    int64_t total = 0;
    for (int i = 0; i < m->nparams; i++)
        if (include_buffers || !m->params[i].is_buffer)
            total += m->params[i].numel;
    return total;
}

int64_t tl_model_macs(const tl_model *m)
{
    int64_t total = 0;
    for (int i = 0; i < m->nnodes; i++) {
        const tl_node *n = &m->nodes[i];
        if (n->op == TL_OP_CONV)
            total += (int64_t)n->c * n->h * n->w * (n->geom.cin / n->geom.groups) * n->geom.kh * n->geom.kw;
        else if (n->op == TL_OP_LINEAR)
            total += m->params[n->weight].numel;
        else if (n->op == TL_OP_TOKEN_LINEAR)
            total += m->params[n->weight].numel * n->c;
        else if (n->op == TL_OP_ATTENTION) /* Q K^T and A V; projections are token linears */
            total += (int64_t)2 * n->c * n->c * n->w;
    }
    return total;
}

int tl_model_bn_folded(const tl_model *m)
{
    int bns = 0;
    for (int i = 0; i < m->nnodes; i++) {
        const tl_node *n = &m->nodes[i];
        if (n->op != TL_OP_BN)
            continue;
        bns++;
        const float *w = m->params[n->weight].data, *mu = m->params[n->running_mean].data,
                    *var = m->params[n->running_var].data;
        for (int c = 0; c < n->c; c++)
            if (w[c] != 1.0f || mu[c] != 0.0f || var[c] != 1.0f - n->eps)
                return 0;
    }
    return bns > 0;
}
