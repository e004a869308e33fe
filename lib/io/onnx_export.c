/* tl's graph (lib/nn/model.h) translated node by node into ONNX operators
 * at opset 17. Values keep tl's layout with a batch dimension in front:
 * feature maps are [N, C, H, W] (rank 4), token sequences [N, T, D]
 * (rank 3), vectors [N, D] (rank 2). Only the nodes the requested output
 * depends on are written. */
#include "onnx.h"
#include "onnx_graph.h"
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ex {
    const tl_model *m;
    ox_graph *g;
    char **val;   /* value name of each tl node (NULL: not written) */
    char **label; /* readable unique base name of each node */
    int *rank;
    tl_err *e;
    int failed;
} ex;

static const char *op_name(tl_op op)
{
    switch (op) {
    case TL_OP_INPUT: return "input";
    case TL_OP_CONV: return "convolution";
    case TL_OP_BN: return "batch norm";
    case TL_OP_ACT: return "activation";
    case TL_OP_ADD: return "addition";
    case TL_OP_GAP: return "global average pooling";
    case TL_OP_LINEAR: return "linear layer";
    case TL_OP_DROPOUT: return "dropout";
    case TL_OP_MAXPOOL: return "max pooling";
    case TL_OP_AVGPOOL: return "average pooling";
    case TL_OP_ADAPTIVE_AVGPOOL: return "adaptive average pooling";
    case TL_OP_CONCAT: return "concatenation";
    case TL_OP_SCALE: return "channel scaling";
    case TL_OP_TOKENS: return "token embedding";
    case TL_OP_LAYERNORM: return "layer norm";
    case TL_OP_ATTENTION: return "attention";
    case TL_OP_TOKEN_LINEAR: return "token linear layer";
    case TL_OP_SELECT_TOKEN: return "token selection";
    }
    return "operation";
}

/* Fails the export with a message naming node i's layer. */
static int fail_node(ex *x, int i, const char *why)
{
    if (!x->failed)
        tl_fail(x->e, "layer %s (%s): %s", x->label[i], op_name(x->m->nodes[i].op), why);
    x->failed = 1;
    return -1;
}

/* ---- names ---- */

static char *fmt(const char *f, const char *a, const char *b)
{
    size_t n = strlen(f) + strlen(a) + (b ? strlen(b) : 0) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, f, a, b ? b : "");
    return s;
}

/* "features.0.0.weight" -> "features.0.0"; "x.in_proj_weight" -> "x.in_proj" */
static void param_prefix(const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s", name);
    size_t len = strlen(out);
    if (len > 7 && !strcmp(out + len - 7, ".weight"))
        out[len - 7] = '\0';
    else if (len > 7 && !strcmp(out + len - 7, "_weight"))
        out[len - 7] = '\0';
}

static const char *short_op(tl_op op)
{
    switch (op) {
    case TL_OP_ACT: return "act";
    case TL_OP_ADD: return "add";
    case TL_OP_GAP: return "gap";
    case TL_OP_DROPOUT: return "dropout";
    case TL_OP_MAXPOOL: return "maxpool";
    case TL_OP_AVGPOOL: return "avgpool";
    case TL_OP_ADAPTIVE_AVGPOOL: return "adaptive_avgpool";
    case TL_OP_CONCAT: return "concat";
    case TL_OP_SCALE: return "scale";
    case TL_OP_TOKENS: return "tokens";
    case TL_OP_ATTENTION: return "attention";
    case TL_OP_SELECT_TOKEN: return "select_token";
    default: return "node";
    }
}

static int make_labels(ex *x)
{
    const tl_model *m = x->m;
    char buf[TL_NAME_MAX + 32];
    for (int i = 0; i < m->nnodes; i++) {
        const tl_node *n = &m->nodes[i];
        if (n->weight >= 0)
            param_prefix(m->params[n->weight].name, buf, sizeof buf);
        else if (n->name[0])
            snprintf(buf, sizeof buf, "%s", n->name);
        else
            snprintf(buf, sizeof buf, "%s_%d", short_op(n->op), i);
        for (int j = 0; j < i; j++)
            if (!strcmp(x->label[j], buf)) {
                size_t len = strlen(buf);
                snprintf(buf + len, sizeof buf - len, "_%d", i);
                break;
            }
        if (!(x->label[i] = tl_strdup(buf)))
            return tl_fail(x->e, "out of memory");
    }
    return 0;
}

/* Sub-value names: "<label>/<what>" */
static char *sub(ex *x, int i, const char *what)
{
    char *s = fmt("%s/%s", x->label[i], what);
    if (!s)
        x->g->oom = 1;
    return s;
}

/* ---- emitting ---- */

static ox_node *opn(ex *x, const char *op, const char *name, const char *const *in, int nin, const char *out)
{
    return ox_node_add(x->g, op, name, in, nin, out);
}

static ox_node *node1(ex *x, const char *op, const char *name, const char *in, const char *out)
{
    return opn(x, op, name, &in, 1, out);
}

static ox_node *node2(ex *x, const char *op, const char *name, const char *a, const char *b, const char *out)
{
    const char *in[2] = {a, b};
    return opn(x, op, name, in, 2, out);
}

/* A shared 1-D int64 constant named after its values. */
static const char *const_i64(ex *x, const int64_t *v, int n, char *name, size_t cap)
{
    size_t len = (size_t)snprintf(name, cap, "const/i64");
    for (int k = 0; k < n && len < cap; k++)
        len += (size_t)snprintf(name + len, cap - len, "_%lld", (long long)v[k]);
    if (!ox_init_exists(x->g, name)) {
        int64_t dims[1] = {n};
        ox_init_copy(x->g, name, OX_INT64, 1, dims, v);
    }
    return name;
}

/* A shared float constant of shape dims (ndim 0: a scalar). */
static const char *const_f32(ex *x, const char *tagname, const float *v, int ndim, const int64_t *dims, char *name,
                             size_t cap)
{
    snprintf(name, cap, "const/%s", tagname);
    if (!ox_init_exists(x->g, name))
        ox_init_copy(x->g, name, OX_FLOAT, ndim, dims, v);
    return name;
}

static const char *scalar(ex *x, const char *tagname, float v, char *name, size_t cap)
{
    return const_f32(x, tagname, &v, 0, NULL, name, cap);
}

static void param_init(ex *x, int p, int transposed)
{
    const tl_param *q = &x->m->params[p];
    if (ox_init_exists(x->g, q->name))
        return;
    int64_t dims[4];
    for (int k = 0; k < q->ndim; k++)
        dims[k] = q->shape[k];
    if (transposed) {
        int64_t t = dims[0];
        dims[0] = dims[1];
        dims[1] = t;
    }
    ox_init_borrow(x->g, q->name, q->ndim, dims, q->data, transposed);
}

/* The transposed copy of a [out, in] weight, for MatMul. */
static char *param_t(ex *x, int p)
{
    char *name = fmt("%s%s", x->m->params[p].name, "/transposed");
    if (!name) {
        x->g->oom = 1;
        return NULL;
    }
    if (!ox_init_exists(x->g, name)) {
        const tl_param *q = &x->m->params[p];
        int64_t dims[2] = {q->shape[1], q->shape[0]};
        ox_init_borrow(x->g, name, 2, dims, q->data, 1);
    }
    return name;
}

static const char *pname(ex *x, int p)
{
    param_init(x, p, 0);
    return x->m->params[p].name;
}

/* Flattens a value to [N, rest] (Flatten, axis 1). */
static char *to_rank2(ex *x, int i, const char *v, int rank)
{
    if (rank == 2)
        return tl_strdup(v);
    char *out = sub(x, i, "flatten");
    char *nm = sub(x, i, "flatten_op");
    ox_attr_int(node1(x, "Flatten", nm ? nm : "", v, out ? out : ""), "axis", 1);
    free(nm);
    return out;
}

/* [N, C] -> [N, C, 1, 1] */
static char *to_rank4(ex *x, int i, const char *v, int rank)
{
    if (rank == 4)
        return tl_strdup(v);
    char cn[64];
    static const int64_t shape[4] = {0, -1, 1, 1};
    char *out = sub(x, i, "as_map"), *nm = sub(x, i, "as_map_op");
    node2(x, "Reshape", nm ? nm : "", v, const_i64(x, shape, 4, cn, sizeof cn), out ? out : "");
    free(nm);
    return out;
}

/* ---- activations ---- */

static int activation(ex *x, int i, const char *in, const char *out)
{
    const tl_node *n = &x->m->nodes[i];
    char c1[64], c2[64];
    char *t1 = sub(x, i, "t1"), *t2 = sub(x, i, "t2"), *t3 = sub(x, i, "t3"), *t4 = sub(x, i, "t4");
    const char *lb = x->label[i];
    char *n1 = sub(x, i, "op1"), *n2 = sub(x, i, "op2"), *n3 = sub(x, i, "op3"), *n4 = sub(x, i, "op4"),
         *n5 = sub(x, i, "op5");
    int rc = 0;
    if (!t1 || !t2 || !t3 || !t4 || !n1 || !n2 || !n3 || !n4 || !n5) {
        x->g->oom = 1;
        goto out;
    }
    switch (n->act) {
    case TL_ACT_NONE: node1(x, "Identity", lb, in, out); break;
    case TL_ACT_RELU: node1(x, "Relu", lb, in, out); break;
    case TL_ACT_RELU6: {
        /* 6 * clamp(x/6, 0, 1), within a few float roundings of
         * clamp(x, 0, 6): OpenCV 4.6 cannot read Clip with its bounds as
         * inputs, the only form opset 11 and later have. */
        ox_node *h = node1(x, "HardSigmoid", n1, in, t1);
        ox_attr_float(h, "alpha", 1.0f / 6.0f);
        ox_attr_float(h, "beta", 0.0f);
        node2(x, "Mul", lb, t1, scalar(x, "six", 6.0f, c1, sizeof c1), out);
        break;
    }
    case TL_ACT_SIGMOID: node1(x, "Sigmoid", lb, in, out); break;
    case TL_ACT_SILU:
        node1(x, "Sigmoid", n1, in, t1);
        node2(x, "Mul", lb, in, t1, out);
        break;
    case TL_ACT_HARDSIGMOID: {
        ox_node *h = node1(x, "HardSigmoid", lb, in, out);
        ox_attr_float(h, "alpha", 1.0f / 6.0f);
        ox_attr_float(h, "beta", 0.5f);
        break;
    }
    case TL_ACT_HARDSWISH: node1(x, "HardSwish", lb, in, out); break;
    case TL_ACT_GELU:
        /* x * 0.5 * (1 + erf(x / sqrt 2)): Gelu itself is opset 20. */
        node2(x, "Div", n1, in, scalar(x, "sqrt2", (float)M_SQRT2, c1, sizeof c1), t1);
        node1(x, "Erf", n2, t1, t2);
        node2(x, "Add", n3, t2, scalar(x, "one", 1.0f, c2, sizeof c2), t3);
        node2(x, "Mul", n4, in, t3, t4);
        node2(x, "Mul", lb, t4, scalar(x, "half", 0.5f, c1, sizeof c1), out);
        break;
    default: rc = fail_node(x, i, "an activation ONNX opset 17 has no form for");
    }
out:
    free(t1); free(t2); free(t3); free(t4);
    free(n1); free(n2); free(n3); free(n4); free(n5);
    return rc;
}

/* ---- pooling ---- */

/* ONNX (and ONNX Runtime) size a ceil-mode pool as ceil((in + pads - k) /
 * s) + 1, without PyTorch's rule that the last window must start inside
 * the input or its leading padding; so ceil mode is written as explicit
 * trailing padding, which for max pooling changes nothing. */
static int pool(ex *x, int i, const char *in, const char *out)
{
    const tl_node *n = &x->m->nodes[i];
    const tl_pool_geom *g = &n->pool;
    int64_t pb = g->pad_b, pr = g->pad_r;
    int64_t need_b = (int64_t)(g->oh - 1) * g->stride_h + g->kh - g->h - g->pad_t;
    int64_t need_r = (int64_t)(g->ow - 1) * g->stride_w + g->kw - g->w - g->pad_l;
    if (need_b > pb)
        pb = need_b;
    if (need_r > pr)
        pr = need_r;
    int avg = n->op == TL_OP_AVGPOOL;
    if (avg && (pb != g->pad_b || pr != g->pad_r) && g->count_include_pad)
        return fail_node(x, i, "ceil-mode average pooling that counts padding has no ONNX form");
    if (pb >= g->kh || pr >= g->kw)
        return fail_node(x, i, "a pooling window would lie in the padding only");
    if (avg && !g->count_include_pad && (g->pad_t || g->pad_l || pb || pr) && (pb != g->pad_b || pr != g->pad_r))
        return fail_node(x, i, "ceil-mode average pooling with padding has no ONNX form");
    ox_node *p = node1(x, avg ? "AveragePool" : "MaxPool", x->label[i], in, out);
    int64_t k[2] = {g->kh, g->kw}, s[2] = {g->stride_h, g->stride_w}, pads[4] = {g->pad_t, g->pad_l, pb, pr};
    ox_attr_ints(p, "kernel_shape", k, 2);
    ox_attr_ints(p, "strides", s, 2);
    ox_attr_ints(p, "pads", pads, 4);
    if (avg)
        ox_attr_int(p, "count_include_pad", g->count_include_pad);
    return 0;
}

/* PyTorch's adaptive average pooling: cell i of oh averages input rows
 * floor(i*h/oh) .. ceil((i+1)*h/oh) - 1. A plain pool when the cells tile
 * the input evenly; otherwise two matrix products with the pooling
 * matrices (exact cell bounds, any sizes, including upsampling). */
static int adaptive_pool(ex *x, int i, const char *in, const char *out)
{
    const tl_node *n = &x->m->nodes[i], *src = &x->m->nodes[n->in[0]];
    int h = src->h, w = src->w, oh = n->h, ow = n->w;
    if (oh == 1 && ow == 1) {
        node1(x, "GlobalAveragePool", x->label[i], in, out);
        return 0;
    }
    if (h % oh == 0 && w % ow == 0) {
        ox_node *p = node1(x, "AveragePool", x->label[i], in, out);
        int64_t k[2] = {h / oh, w / ow};
        ox_attr_ints(p, "kernel_shape", k, 2);
        ox_attr_ints(p, "strides", k, 2);
        return 0;
    }
    /* Y = Ph X Pw^T per channel: X [N,C,h,w] @ Pw^T [w,ow] -> [N,C,h,ow];
     * transpose to [N,C,ow,h] @ Ph^T [h,oh] -> [N,C,ow,oh]; transpose back. */
    float *pw = calloc((size_t)w * ow, sizeof *pw), *ph = calloc((size_t)h * oh, sizeof *ph);
    char *pwn = sub(x, i, "pool_w"), *phn = sub(x, i, "pool_h"), *t1 = sub(x, i, "t1"), *t2 = sub(x, i, "t2"),
         *t3 = sub(x, i, "t3"), *n1 = sub(x, i, "op1"), *n2 = sub(x, i, "op2"), *n3 = sub(x, i, "op3");
    if (pw && ph && pwn && phn && t1 && t2 && t3 && n1 && n2 && n3) {
        for (int j = 0; j < ow; j++) {
            int a = j * w / ow, b = ((j + 1) * w + ow - 1) / ow;
            for (int c = a; c < b; c++)
                pw[(size_t)c * ow + j] = 1.0f / (float)(b - a);
        }
        for (int j = 0; j < oh; j++) {
            int a = j * h / oh, b = ((j + 1) * h + oh - 1) / oh;
            for (int r = a; r < b; r++)
                ph[(size_t)r * oh + j] = 1.0f / (float)(b - a);
        }
        int64_t dw[2] = {w, ow}, dh[2] = {h, oh}, perm[4] = {0, 1, 3, 2};
        ox_init_copy(x->g, pwn, OX_FLOAT, 2, dw, pw);
        ox_init_copy(x->g, phn, OX_FLOAT, 2, dh, ph);
        node2(x, "MatMul", n1, in, pwn, t1);
        ox_attr_ints(node1(x, "Transpose", n2, t1, t2), "perm", perm, 4);
        node2(x, "MatMul", n3, t2, phn, t3);
        ox_attr_ints(node1(x, "Transpose", x->label[i], t3, out), "perm", perm, 4);
    } else {
        x->g->oom = 1;
    }
    free(pw); free(ph); free(pwn); free(phn); free(t1); free(t2); free(t3); free(n1); free(n2); free(n3);
    return 0;
}

/* ---- transformer pieces ---- */

/* conv map [N, D, gh, gw] -> [N, 1 + gh*gw, D]: class token first, then
 * the patches, plus the position embedding. */
static int tokens(ex *x, int i, const char *in, const char *out)
{
    const tl_node *n = &x->m->nodes[i];
    int d = n->w;
    char c1[64], c2[96];
    const int64_t flat[3] = {0, d, -1}, perm[3] = {0, 2, 1}, tail[2] = {1, d};
    char *t[6], *nm[6];
    static const char *const what[6] = {"patches", "sequence", "batch", "cls_shape", "cls", "joined"};
    int ok = 1;
    for (int k = 0; k < 6; k++) {
        char nn[16];
        snprintf(nn, sizeof nn, "op%d", k);
        t[k] = sub(x, i, what[k]);
        nm[k] = sub(x, i, nn);
        ok &= t[k] && nm[k];
    }
    if (ok) {
        node2(x, "Reshape", nm[0], in, const_i64(x, flat, 3, c1, sizeof c1), t[0]);
        ox_attr_ints(node1(x, "Transpose", nm[1], t[0], t[1]), "perm", perm, 3);
        /* Expand the class token [1, 1, D] to [N, 1, D]. */
        ox_node *s = node1(x, "Shape", nm[2], in, t[2]);
        ox_attr_int(s, "start", 0);
        ox_attr_int(s, "end", 1);
        const char *cat[2] = {t[2], const_i64(x, tail, 2, c2, sizeof c2)};
        ox_attr_int(opn(x, "Concat", nm[3], cat, 2, t[3]), "axis", 0);
        node2(x, "Expand", nm[4], pname(x, n->extra[0]), t[3], t[4]);
        const char *seq[2] = {t[4], t[1]};
        ox_attr_int(opn(x, "Concat", nm[5], seq, 2, t[5]), "axis", 1);
        node2(x, "Add", x->label[i], t[5], pname(x, n->extra[1]), out);
    } else {
        x->g->oom = 1;
    }
    for (int k = 0; k < 6; k++) {
        free(t[k]);
        free(nm[k]);
    }
    return 0;
}

/* qkv [N, T, 3D] -> [N, T, D]: per head softmax(q k^T / sqrt(dh)) v. */
static int attention(ex *x, int i, const char *in, const char *out)
{
    const tl_node *n = &x->m->nodes[i];
    int d = n->w, heads = n->heads, dh = d / heads;
    enum { Q, K, V, QH, KH, VH, QT, KT, VT, S, SS, P, C, CT, NT };
    static const char *const what[NT] = {"q", "k", "v", "q_heads", "k_heads", "v_heads", "q_t", "k_t", "v_t",
                                         "scores", "scaled", "weights", "context", "context_t"};
    char *t[NT], *nm[NT + 1];
    int ok = 1;
    for (int k = 0; k < NT; k++)
        ok &= (t[k] = sub(x, i, what[k])) != NULL;
    for (int k = 0; k <= NT; k++) {
        char nn[16];
        snprintf(nn, sizeof nn, "op%d", k);
        ok &= (nm[k] = sub(x, i, nn)) != NULL;
    }
    if (ok) {
        char c1[64], c2[64], c3[64];
        const int64_t split_heads[4] = {0, 0, heads, dh}, join[3] = {0, 0, d};
        const int64_t p_qv[4] = {0, 2, 1, 3}, p_k[4] = {0, 2, 3, 1};
        ox_node *sp = node1(x, "Split", nm[0], in, t[Q]);
        ox_node_output(x->g, sp, t[K]);
        ox_node_output(x->g, sp, t[V]);
        ox_attr_int(sp, "axis", 2);
        const char *sh = const_i64(x, split_heads, 4, c1, sizeof c1);
        node2(x, "Reshape", nm[1], t[Q], sh, t[QH]);
        node2(x, "Reshape", nm[2], t[K], sh, t[KH]);
        node2(x, "Reshape", nm[3], t[V], sh, t[VH]);
        ox_attr_ints(node1(x, "Transpose", nm[4], t[QH], t[QT]), "perm", p_qv, 4);
        ox_attr_ints(node1(x, "Transpose", nm[5], t[KH], t[KT]), "perm", p_k, 4);
        ox_attr_ints(node1(x, "Transpose", nm[6], t[VH], t[VT]), "perm", p_qv, 4);
        node2(x, "MatMul", nm[7], t[QT], t[KT], t[S]);
        char sc[32];
        snprintf(sc, sizeof sc, "attn_scale_%d", dh);
        node2(x, "Mul", nm[8], t[S], scalar(x, sc, 1.0f / sqrtf((float)dh), c2, sizeof c2), t[SS]);
        ox_attr_int(node1(x, "Softmax", nm[9], t[SS], t[P]), "axis", -1);
        node2(x, "MatMul", nm[10], t[P], t[VT], t[C]);
        ox_attr_ints(node1(x, "Transpose", nm[11], t[C], t[CT]), "perm", p_qv, 4);
        node2(x, "Reshape", x->label[i], t[CT], const_i64(x, join, 3, c3, sizeof c3), out);
    } else {
        x->g->oom = 1;
    }
    for (int k = 0; k < NT; k++)
        free(t[k]);
    for (int k = 0; k <= NT; k++)
        free(nm[k]);
    return 0;
}

/* ---- one tl node ---- */

static int same_rank(ex *x, int i, char **a, int *ra, char **b, int *rb)
{
    if (*ra == *rb)
        return 0;
    /* A vector meets a 1x1 map: both become maps. */
    if ((*ra == 2 && *rb == 4) || (*ra == 4 && *rb == 2)) {
        char *na = to_rank4(x, i, *a, *ra), *nb = to_rank4(x, i, *b, *rb);
        free(*a);
        free(*b);
        *a = na;
        *b = nb;
        *ra = *rb = 4;
        return 0;
    }
    return fail_node(x, i, "inputs of different shapes");
}

static int emit_node(ex *x, int i)
{
    const tl_model *m = x->m;
    const tl_node *n = &m->nodes[i];
    const char *in = n->in[0] >= 0 ? x->val[n->in[0]] : NULL;
    int rin = n->in[0] >= 0 ? x->rank[n->in[0]] : 0;
    const char *lb = x->label[i];
    char *out = tl_strdup(lb);
    if (!out)
        return tl_fail(x->e, "out of memory");
    x->val[i] = out;
    x->rank[i] = rin;
    char cn[64];
    switch (n->op) {
    case TL_OP_INPUT:
        return fail_node(x, i, "the input is not a layer");
    case TL_OP_CONV: {
        char *v = to_rank4(x, i, in, rin);
        const char *ins[3] = {v ? v : "", pname(x, n->weight), n->bias >= 0 ? pname(x, n->bias) : ""};
        ox_node *c = opn(x, "Conv", lb, ins, n->bias >= 0 ? 3 : 2, out);
        const tl_conv_geom *g = &n->geom;
        int64_t k[2] = {g->kh, g->kw}, s[2] = {g->stride_h, g->stride_w}, d[2] = {g->dil_h, g->dil_w};
        int64_t pads[4] = {g->pad_t, g->pad_l, g->pad_b, g->pad_r};
        ox_attr_ints(c, "kernel_shape", k, 2);
        ox_attr_ints(c, "strides", s, 2);
        ox_attr_ints(c, "pads", pads, 4);
        ox_attr_ints(c, "dilations", d, 2);
        ox_attr_int(c, "group", g->groups);
        x->rank[i] = 4;
        free(v);
        return 0;
    }
    case TL_OP_BN: {
        if (n->weight < 0 || n->bias < 0 || n->running_mean < 0 || n->running_var < 0)
            return fail_node(x, i, "batch norm without its four tensors");
        const char *ins[5] = {in, pname(x, n->weight), pname(x, n->bias), pname(x, n->running_mean),
                              pname(x, n->running_var)};
        ox_attr_float(opn(x, "BatchNormalization", lb, ins, 5, out), "epsilon", n->eps);
        return 0;
    }
    case TL_OP_ACT:
        return activation(x, i, in, out);
    case TL_OP_ADD:
    case TL_OP_CONCAT:
    case TL_OP_SCALE: {
        char *a = tl_strdup(in), *b = tl_strdup(x->val[n->in[1]]);
        int ra = rin, rb = x->rank[n->in[1]];
        if (!a || !b) {
            free(a);
            free(b);
            return tl_fail(x->e, "out of memory");
        }
        int rc = n->op == TL_OP_SCALE ? 0 : same_rank(x, i, &a, &ra, &b, &rb);
        if (!rc && n->op == TL_OP_SCALE) {
            char *nb = to_rank4(x, i, b, rb);
            free(b);
            b = nb;
            rc = ra == 4 ? 0 : fail_node(x, i, "scales something other than a feature map");
        }
        if (!rc) {
            /* A scale is written as Mul(gate, map), as PyTorch writes it:
             * OpenCV 4.6 gives Mul(map, gate) the gate's shape when the gate
             * ends in HardSigmoid. */
            const char *first = n->op == TL_OP_SCALE ? (b ? b : "") : a, *second = n->op == TL_OP_SCALE ? a : b;
            ox_node *o = node2(x, n->op == TL_OP_CONCAT ? "Concat" : n->op == TL_OP_ADD ? "Add" : "Mul", lb, first,
                               second ? second : "", out);
            if (n->op == TL_OP_CONCAT)
                ox_attr_int(o, "axis", 1);
            x->rank[i] = ra;
        }
        free(a);
        free(b);
        return rc;
    }
    case TL_OP_GAP:
        if (rin != 4)
            return fail_node(x, i, "pools something other than a feature map");
        node1(x, "GlobalAveragePool", lb, in, out);
        return 0;
    case TL_OP_LINEAR: {
        char *v = to_rank2(x, i, in, rin);
        const char *ins[3] = {v ? v : "", pname(x, n->weight), pname(x, n->bias)};
        ox_attr_int(opn(x, "Gemm", lb, ins, 3, out), "transB", 1);
        free(v);
        x->rank[i] = 2;
        return 0;
    }
    case TL_OP_DROPOUT: /* the identity at inference: the value is its input's */
        free(x->val[i]);
        x->val[i] = tl_strdup(in);
        return x->val[i] ? 0 : tl_fail(x->e, "out of memory");
    case TL_OP_MAXPOOL:
    case TL_OP_AVGPOOL:
        if (rin != 4)
            return fail_node(x, i, "pools something other than a feature map");
        return pool(x, i, in, out);
    case TL_OP_ADAPTIVE_AVGPOOL: {
        const tl_node *src = &m->nodes[n->in[0]];
        if (rin != 4)
            return fail_node(x, i, "pools something other than a feature map");
        if (src->h == n->h && src->w == n->w) { /* already the size asked for */
            free(x->val[i]);
            x->val[i] = tl_strdup(in);
            return x->val[i] ? 0 : tl_fail(x->e, "out of memory");
        }
        return adaptive_pool(x, i, in, out);
    }
    case TL_OP_TOKENS:
        if (rin != 4)
            return fail_node(x, i, "takes something other than a feature map");
        x->rank[i] = 3;
        return tokens(x, i, in, out);
    case TL_OP_LAYERNORM: {
        const char *ins[3] = {in, pname(x, n->weight), pname(x, n->bias)};
        ox_node *l = opn(x, "LayerNormalization", lb, ins, 3, out);
        ox_attr_int(l, "axis", -1);
        ox_attr_float(l, "epsilon", n->eps);
        return 0;
    }
    case TL_OP_ATTENTION:
        if (rin != 3)
            return fail_node(x, i, "takes something other than a token sequence");
        return attention(x, i, in, out);
    case TL_OP_TOKEN_LINEAR: {
        if (rin != 3)
            return fail_node(x, i, "takes something other than a token sequence");
        char *wt = param_t(x, n->weight), *t = sub(x, i, "matmul"), *nm = sub(x, i, "matmul_op");
        if (wt && t && nm) {
            node2(x, "MatMul", nm, in, wt, t);
            node2(x, "Add", lb, t, pname(x, n->bias), out);
        }
        free(wt);
        free(t);
        free(nm);
        return 0;
    }
    case TL_OP_SELECT_TOKEN: {
        if (rin != 3)
            return fail_node(x, i, "takes something other than a token sequence");
        snprintf(cn, sizeof cn, "const/i64_scalar_0");
        if (!ox_init_exists(x->g, cn)) {
            int64_t zero = 0;
            ox_init_copy(x->g, cn, OX_INT64, 0, NULL, &zero);
        }
        ox_attr_int(node2(x, "Gather", lb, in, cn, out), "axis", 1);
        x->rank[i] = 2;
        return 0;
    }
    }
    return fail_node(x, i, "an operation ONNX cannot express");
}

/* ---- the graph around the nodes ---- */

/* uint8 [N, S, S, 3] RGB -> float [N, 3, S, S] normalised as tl_preprocess
 * does: x/255, minus mean, over std (in that order, in float32, as
 * torchvision), then B,G,R order for Caffe-born weights. Mean and std are
 * [3, 1, 1] (OpenCV 4.6 mishandles [1, 3, 1, 1] in Sub). */
static const char *preprocessing(ex *x, const tl_preproc *pp)
{
    ox_graph *g = x->g;
    char c1[64], c2[64], c3[64];
    static const int64_t nchw[4] = {0, 3, 1, 2}, dims[3] = {3, 1, 1};
    ox_attr_int(node1(x, "Cast", "preprocess/cast", "image", "preprocess/float"), "to", OX_FLOAT);
    ox_attr_ints(node1(x, "Transpose", "preprocess/nchw", "preprocess/float", "preprocess/planar"), "perm", nchw, 4);
    node2(x, "Div", "preprocess/scale", "preprocess/planar", scalar(x, "255", 255.0f, c1, sizeof c1),
          "preprocess/unit");
    node2(x, "Sub", "preprocess/mean", "preprocess/unit", const_f32(x, "mean", pp->mean, 3, dims, c2, sizeof c2),
          "preprocess/centred");
    const char *last = pp->bgr ? "preprocess/rgb" : "input";
    node2(x, "Div", "preprocess/std", "preprocess/centred", const_f32(x, "std", pp->std, 3, dims, c3, sizeof c3),
          last);
    if (pp->bgr) {
        ox_node *s = node1(x, "Split", "preprocess/split", last, "preprocess/r");
        ox_node_output(g, s, "preprocess/g");
        ox_node_output(g, s, "preprocess/b");
        ox_attr_int(s, "axis", 1);
        const char *bgr[3] = {"preprocess/b", "preprocess/g", "preprocess/r"};
        ox_attr_int(opn(x, "Concat", "preprocess/bgr", bgr, 3, "input"), "axis", 1);
    }
    return "input";
}

static void meta_json_floats(ox_graph *g, const char *key, const float *v, int n)
{
    char buf[256];
    size_t len = 0;
    buf[len++] = '[';
    for (int i = 0; i < n; i++) {
        /* the shortest decimal that reads back as the same float */
        int prec = 6;
        char num[32];
        do
            snprintf(num, sizeof num, "%.*g", prec++, v[i]);
        while (prec <= 9 && strtof(num, NULL) != v[i]);
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? ", " : "", num);
    }
    snprintf(buf + len, sizeof buf - len, "]");
    ox_meta(g, key, buf);
}

static int metadata(ex *x, const tl_net *net, const tl_onnx_opts *o, const char *output, const char *layer)
{
    ox_graph *g = x->g;
    for (int i = 0; i < net->nmeta; i++)
        ox_meta(g, net->meta_keys[i], net->meta_values[i]);
    const tl_preproc *pp = &net->pp;
    char buf[64];
    tl_input_size_format(pp->input_w, pp->input_h, buf, sizeof buf);
    ox_meta(g, "tl.input_size", buf);
    snprintf(buf, sizeof buf, "%d", pp->resize_size);
    ox_meta(g, "tl.resize_size", buf);
    ox_meta(g, "tl.resize_mode", tl_resize_mode_name(pp->resize_mode));
    meta_json_floats(g, "tl.mean", pp->mean, 3);
    meta_json_floats(g, "tl.std", pp->std, 3);
    ox_meta(g, "tl.channel_order", pp->bgr ? "BGR" : "RGB");
    static const char *const interp[] = {"bilinear", "bicubic", "nearest"};
    ox_meta(g, "tl.interpolation", interp[pp->interp >= 0 && pp->interp < 3 ? pp->interp : 0]);
    ox_meta(g, "tl.preprocessing",
            o->preprocess ? "graph: input 'image' is uint8 [batch, H, W, 3] RGB pixels, resized and cropped"
                          : "caller: input 'input' is float [batch, 3, H, W], (pixel/255 - mean) / std, channel order");
    ox_meta(g, "tl.output", output);
    ox_meta(g, "tl.layer", layer);
    char *const *classes = o->head_w ? o->head_classes : net->classes;
    int nclasses = o->head_w ? o->head_k : x->m->num_classes;
    if (nclasses > 0 && (!strcmp(output, "logits") || !strcmp(output, "probabilities"))) {
        /* A checkpoint without names: the classes are their indices, as
         * tl-convert names them without a label file. */
        tl_strbuf b = {0};
        int rc = tl_strbuf_add(&b, "[", 1);
        for (int i = 0; i < nclasses && !rc; i++) {
            char num[16];
            snprintf(num, sizeof num, "%d", i);
            rc = (i ? tl_strbuf_add(&b, ", ", 2) : 0) || tl_strbuf_json_string(&b, classes ? classes[i] : num);
        }
        rc = rc || tl_strbuf_add(&b, "]", 1);
        if (rc) {
            tl_strbuf_free(&b);
            return tl_fail(x->e, "out of memory");
        }
        ox_meta(g, "tl.classes", b.s);
        snprintf(buf, sizeof buf, "%d", nclasses);
        ox_meta(g, "tl.num_classes", buf);
        tl_strbuf_free(&b);
    }
    for (const char *const *kv = o->meta; kv && kv[0] && kv[1]; kv += 2)
        ox_meta(g, kv[0], kv[1]);
    return 0;
}

void tl_onnx_opts_default(tl_onnx_opts *o)
{
    memset(o, 0, sizeof *o);
    o->spatial_pool = 1;
    o->producer_version = "";
}

/* Marks node `out` and every node it reads. */
static void mark_needed(const tl_model *m, int out, char *need)
{
    need[out] = 1;
    for (int i = out; i > 0; i--)
        if (need[i])
            for (int k = 0; k < 2; k++)
                if (m->nodes[i].in[k] >= 0)
                    need[m->nodes[i].in[k]] = 1;
}

/* The requested output as a vector per image: a spatial map or token
 * sequence averaged as tl-extract does (or flattened), a head,
 * probabilities. */
static char *finish(ex *x, int node, const tl_onnx_opts *o, int *dim)
{
    const tl_node *n = &x->m->nodes[node];
    const char *v = x->val[node];
    int rank = x->rank[node];
    char *cur = tl_strdup(v);
    *dim = (int)tl_node_size(n);
    if (o->spatial_pool && rank == 4 && n->h * n->w > 1) {
        char *p = sub(x, node, "pooled");
        node1(x, "GlobalAveragePool", "output/pool", cur ? cur : "", p ? p : "");
        free(cur);
        cur = p;
        *dim = n->c;
    } else if (o->spatial_pool && rank == 3) {
        char *p = sub(x, node, "pooled");
        ox_node *r = node1(x, "ReduceMean", "output/pool", cur ? cur : "", p ? p : "");
        int64_t axes[1] = {1};
        ox_attr_ints(r, "axes", axes, 1);
        ox_attr_int(r, "keepdims", 0);
        free(cur);
        cur = p;
        rank = 2;
        *dim = n->w;
    }
    if (rank != 2 && cur) {
        char *f = fmt("%s%s", cur, "/flat");
        ox_attr_int(node1(x, "Flatten", "output/flatten", cur, f ? f : ""), "axis", 1);
        free(cur);
        cur = f;
    }
    if (o->head_w && cur) {
        if (*dim != o->head_d) {
            free(cur);
            tl_fail(x->e, "the head takes %d values, layer %s gives %d", o->head_d, x->label[node], *dim);
            x->failed = 1;
            return NULL;
        }
        int64_t wd[2] = {o->head_k, o->head_d}, bd[1] = {o->head_k};
        ox_init_borrow(x->g, "head.weight", 2, wd, o->head_w, 0);
        ox_init_borrow(x->g, "head.bias", 1, bd, o->head_b, 0);
        const char *ins[3] = {cur, "head.weight", "head.bias"};
        ox_attr_int(opn(x, "Gemm", "head", ins, 3, "head/scores"), "transB", 1);
        free(cur);
        cur = tl_strdup("head/scores");
        *dim = o->head_k;
    }
    if (o->probabilities && o->multilabel && cur) {
        node1(x, "Sigmoid", "probabilities", cur, "probabilities/out");
        free(cur);
        cur = tl_strdup("probabilities/out");
    } else if (o->probabilities && cur) {
        ox_attr_int(node1(x, "Softmax", "probabilities", cur, "probabilities/out"), "axis", 1);
        free(cur);
        cur = tl_strdup("probabilities/out");
    }
    return cur;
}

int tl_onnx_export(const tl_net *net, const tl_onnx_opts *o, const char *path, tl_onnx_info *info, tl_err *e)
{
    const tl_model *m = net->model;
    int out_node;
    const char *layer_name;
    if (o->layer) {
        out_node = tl_model_find_node(m, o->layer);
        if (out_node < 0)
            return tl_fail_arg(e, "no layer named '%s' (tl-info lists the layers)", o->layer);
        layer_name = o->layer;
    } else if (!o->head_w && m->logits_node >= 0) {
        out_node = m->logits_node;
        layer_name = "logits";
    } else {
        out_node = m->features_node;
        layer_name = out_node >= 0 ? m->nodes[out_node].name : "";
    }
    if (out_node <= 0)
        return tl_fail_arg(e, "the input is not a layer to export");
    if (o->preprocess && m->in_c != 3)
        return tl_fail(e, "the network takes %d channels: in-graph preprocessing needs RGB", m->in_c);
    if (m->quant)
        return tl_fail(e, "an int8 model: ONNX export writes float networks; export the float checkpoint "
                          "it was quantised from");
    if (o->probabilities && !o->head_w && out_node != m->logits_node)
        return tl_fail_arg(e, "probabilities of features (layer %s): only the logits have them", layer_name);
    int logits = o->head_w || out_node == m->logits_node;
    const char *output = o->probabilities ? "probabilities" : logits ? "logits" : "features";

    ox_graph g = {0};
    ex x = {m, &g, NULL, NULL, NULL, e, 0};
    char *need = calloc((size_t)m->nnodes, 1);
    x.val = calloc((size_t)m->nnodes, sizeof *x.val);
    x.label = calloc((size_t)m->nnodes, sizeof *x.label);
    x.rank = calloc((size_t)m->nnodes, sizeof *x.rank);
    int rc = -1, dim = 0;
    char *final = NULL;
    if (!need || !x.val || !x.label || !x.rank) {
        tl_fail(e, "out of memory");
        goto out;
    }
    if (make_labels(&x))
        goto out;
    g.name = fmt("tl_%s%s", m->arch, o->head_w ? "_head" : "");
    const char *input = o->preprocess ? preprocessing(&x, &net->pp) : "input";
    x.val[0] = tl_strdup(input);
    x.rank[0] = 4;
    mark_needed(m, out_node, need);
    for (int i = 1; i <= out_node && !x.failed; i++)
        if (need[i] && emit_node(&x, i))
            goto out;
    if (x.failed)
        goto out;
    final = finish(&x, out_node, o, &dim);
    if (x.failed)
        goto out;
    if (!final || g.oom || g.nnodes == 0) {
        tl_fail(e, "out of memory");
        goto out;
    }
    /* The last node writes the graph output. */
    ox_node *last = &g.nodes[g.nnodes - 1];
    if (strcmp(last->out[0], final)) {
        tl_fail(e, "internal error: output %s is not the last node's", final);
        goto out;
    }
    free(last->out[0]);
    last->out[0] = tl_strdup(output);
    int64_t in_dims[4] = {-1, 3, m->in_h, m->in_w}, out_dims[2] = {-1, dim};
    if (o->preprocess) {
        int64_t nhwc[4] = {-1, m->in_h, m->in_w, 3};
        ox_set_io(&g, &g.input, "image", OX_UINT8, 4, nhwc);
    } else {
        in_dims[1] = m->in_c;
        ox_set_io(&g, &g.input, "input", OX_FLOAT, 4, in_dims);
    }
    ox_set_io(&g, &g.output, output, OX_FLOAT, 2, out_dims);
    if (metadata(&x, net, o, output, layer_name))
        goto out;
    if (g.oom || !last->out[0]) {
        tl_fail(e, "out of memory");
        goto out;
    }
    int64_t bytes = 0;
    if (ox_write(&g, TL_ONNX_OPSET, o->producer_version ? o->producer_version : "", path, o->stop, &bytes, e))
        goto out;
    if (info) {
        info->nodes = g.nnodes;
        info->initializers = g.ninits;
        info->bytes = bytes;
        info->input = o->preprocess ? "image" : "input";
        info->output = output;
        info->dim = dim;
    }
    rc = 0;
out:
    if (x.val)
        for (int i = 0; i < m->nnodes; i++)
            free(x.val[i]);
    if (x.label)
        for (int i = 0; i < m->nnodes; i++)
            free(x.label[i]);
    free(x.val);
    free(x.label);
    free(x.rank);
    free(need);
    free(final);
    ox_graph_free(&g);
    return rc;
}
