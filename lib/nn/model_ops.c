/* Builders for the operations beyond the MobileNets' conv/BN/act/add:
 * pooling, concatenation, squeeze-excitation scaling and the transformer
 * pieces. */
#include "model.h"
#include "model_internal.h"

#include <stdio.h>
#include <string.h>

static int last(const tl_model *m) { return m->nnodes - 1; }

int tl_model_pool(tl_model *m, int in, int max, int k, int stride, int pad, int ceil_mode, tl_err *e)
{
    tl_node *n = tl_model_add_node(m, max ? TL_OP_MAXPOOL : TL_OP_AVGPOOL, in, e);
    if (!n)
        return -1;
    tl_pool_geom *g = &n->pool;
    memset(g, 0, sizeof *g);
    g->c = n->c;
    g->h = n->h;
    g->w = n->w;
    g->kh = g->kw = k;
    g->stride_h = g->stride_w = stride;
    g->pad_t = g->pad_l = g->pad_b = g->pad_r = pad;
    g->ceil_mode = ceil_mode;
    g->count_include_pad = 1;
    tl_pool_geom_finish(g);
    if (tl_pool_geom_check(g, e)) {
        m->nnodes--;
        return -1;
    }
    n->h = g->oh;
    n->w = g->ow;
    return last(m);
}

int tl_model_adaptive_avgpool(tl_model *m, int in, int oh, int ow, tl_err *e)
{
    tl_node *n = tl_model_add_node(m, TL_OP_ADAPTIVE_AVGPOOL, in, e);
    if (!n)
        return -1;
    n->h = oh;
    n->w = ow;
    return last(m);
}

int tl_model_concat(tl_model *m, int a, int b, tl_err *e)
{
    if (b < 0 || b >= m->nnodes)
        return tl_fail(e, "model %s: node input %d out of range", m->arch, b);
    tl_node *n = tl_model_add_node(m, TL_OP_CONCAT, a, e);
    if (!n)
        return -1;
    const tl_node *o = &m->nodes[b];
    if (o->h != n->h || o->w != n->w) {
        m->nnodes--;
        return tl_fail(e, "model %s: concatenating %dx%d and %dx%d maps", m->arch, n->h, n->w, o->h, o->w);
    }
    n->in[1] = b;
    n->c += o->c;
    return last(m);
}

int tl_model_scale(tl_model *m, int x, int s, tl_err *e)
{
    if (s < 0 || s >= m->nnodes)
        return tl_fail(e, "model %s: node input %d out of range", m->arch, s);
    tl_node *n = tl_model_add_node(m, TL_OP_SCALE, x, e);
    if (!n)
        return -1;
    const tl_node *o = &m->nodes[s];
    if (o->c != n->c || o->h != 1 || o->w != 1) {
        m->nnodes--;
        return tl_fail(e, "model %s: scaling %d channels by a %dx%dx%d tensor", m->arch, n->c, o->c, o->h, o->w);
    }
    n->in[1] = s;
    return last(m);
}

int tl_model_tokens(tl_model *m, int in, const char *class_token, const char *pos_embedding, tl_err *e)
{
    tl_node *n = tl_model_add_node(m, TL_OP_TOKENS, in, e);
    if (!n)
        return -1;
    int d = n->c, t = 1 + n->h * n->w, idx = last(m);
    n->c = t;
    n->h = 1;
    n->w = d;
    n->tokens = 1;
    int64_t cs[3] = {1, 1, d}, ps[3] = {1, t, d};
    int c = tl_model_add_param(m, "", class_token, 3, cs, 0, e);
    int p = c < 0 ? -1 : tl_model_add_param(m, "", pos_embedding, 3, ps, 0, e);
    if (p < 0)
        return -1;
    m->nodes[idx].extra[0] = c;
    m->nodes[idx].extra[1] = p;
    return idx;
}

int tl_model_layernorm(tl_model *m, int in, const char *prefix, float eps, tl_err *e)
{
    tl_node *n = tl_model_add_node(m, TL_OP_LAYERNORM, in, e);
    if (!n)
        return -1;
    n->eps = eps;
    int idx = last(m);
    int64_t s[1] = {n->w};
    int w = tl_model_add_param(m, prefix, "weight", 1, s, 0, e);
    int b = w < 0 ? -1 : tl_model_add_param(m, prefix, "bias", 1, s, 0, e);
    if (b < 0)
        return -1;
    m->nodes[idx].weight = w;
    m->nodes[idx].bias = b;
    return idx;
}

static int token_linear(tl_model *m, int in, const char *prefix, const char *wname, const char *bname, int out,
                        tl_err *e)
{
    tl_node *n = tl_model_add_node(m, TL_OP_TOKEN_LINEAR, in, e);
    if (!n)
        return -1;
    int d = n->w, idx = last(m);
    n->w = out;
    int64_t ws[2] = {out, d}, bs[1] = {out};
    int w = tl_model_add_param(m, prefix, wname, 2, ws, 0, e);
    int b = w < 0 ? -1 : tl_model_add_param(m, prefix, bname, 1, bs, 0, e);
    if (b < 0)
        return -1;
    m->nodes[idx].weight = w;
    m->nodes[idx].bias = b;
    return idx;
}

/* Three nodes: the q|k|v projection, the heads' scaled dot-product
 * attention (no parameters), and the output projection; the projections
 * are ordinary per-token linear maps, so training handles them like any
 * other linear layer. */
int tl_model_attention(tl_model *m, int in, const char *prefix, int heads, tl_err *e)
{
    if (in < 0 || in >= m->nnodes)
        return tl_fail(e, "model %s: node input %d out of range", m->arch, in);
    int d = m->nodes[in].w;
    if (heads < 1 || d % heads)
        return tl_fail(e, "%s: width %d does not split into %d heads", prefix, d, heads);
    char out_prefix[TL_NAME_MAX];
    snprintf(out_prefix, sizeof out_prefix, "%s.out_proj", prefix);
    int x = token_linear(m, in, prefix, "in_proj_weight", "in_proj_bias", 3 * d, e);
    if (x < 0)
        return -1;
    tl_node *n = tl_model_add_node(m, TL_OP_ATTENTION, x, e);
    if (!n)
        return -1;
    n->heads = heads;
    n->w = d;
    return token_linear(m, last(m), out_prefix, "weight", "bias", d, e);
}

int tl_model_token_linear(tl_model *m, int in, const char *prefix, int out, tl_err *e)
{
    return token_linear(m, in, prefix, "weight", "bias", out, e);
}

int tl_model_select_token(tl_model *m, int in, tl_err *e)
{
    tl_node *n = tl_model_add_node(m, TL_OP_SELECT_TOKEN, in, e);
    if (!n)
        return -1;
    n->c = n->w;
    n->h = n->w = 1;
    n->tokens = 0;
    return last(m);
}
