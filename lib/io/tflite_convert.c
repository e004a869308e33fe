/* Recognise a TFLite MobileNet (V1 or V2) op by op, then write it as a float
 * checkpoint with torchvision names. Recognition is strict: every operator
 * must be accounted for, with the shapes, strides, paddings and activations
 * the architecture has; anything else is an "unsupported graph" error naming
 * the op, so a file is never converted by guesswork.
 *
 * The files fold batch norm into the convolutions. Each BN is written as an
 * identity with a bias (weight 1, mean 0, var 1 - eps) so that torchvision
 * loads the checkpoint as is and fine-tuning can move the BN again. */
#include "tflite_internal.h"
#include "format_version.h"
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONVS TL_TFL_MAX_CONVS
#define MAX_LABELS_BYTES (16u << 20)
#define BN_EPS 1e-5f

enum { ARCH_V1 = 1, ARCH_V2 = 2 };

typedef tl_tfl_conv conv_rec;
typedef tl_tfl_plan plan;

typedef struct walk {
    const tl_tflite *m;
    int op, cur;
} walk;

#define T tl_tfl_t
#define numel tl_tfl_numel

static const char *name_of(const tl_tflite *m, int op, char tmp[24])
{
    return op < m->nops ? tl_tflite_op_name(m->ops[op].code, tmp) : "end of graph";
}

static int unsupported(const walk *w, const char *expected, tl_err *e)
{
    char tmp[24];
    return tl_fail(e, "tflite: unsupported graph: expected %s at op %d, found %s", expected, w->op,
                   name_of(w->m, w->op, tmp));
}

static int is_op(const walk *w, int code) { return w->op < w->m->nops && w->m->ops[w->op].code == code; }

/* The op at w->op reads the current activation as its first input and has one output. */
static int chained(const walk *w, tl_err *e)
{
    const tl_tfl_op *op = &w->m->ops[w->op];
    char tmp[24];
    if (op->ninputs < 1 || op->inputs[0] != w->cur)
        return tl_fail(e, "tflite: unsupported graph: op %d (%s) does not read the output of the layer before it",
                       w->op, tl_tflite_op_name(op->code, tmp));
    if (op->noutputs != 1)
        return tl_fail(e, "tflite: unsupported graph: op %d (%s) has %d outputs", w->op,
                       tl_tflite_op_name(op->code, tmp), op->noutputs);
    return 0;
}

/* Is tensor t an NHWC activation [n, h, w, c] (any value -1 matches)? */
static int nhwc(const tl_tfl_tensor *t, int n, int h, int w, int c)
{
    return t->ndim == 4 && (n < 0 || t->shape[0] == n) && (h < 0 || t->shape[1] == h) &&
           (w < 0 || t->shape[2] == w) && (c < 0 || t->shape[3] == c);
}

/* Integer constant data (paddings, axes) as int64 values. */
static int const_ints(const tl_tflite *m, int t, int64_t *dst, int max, int *count, tl_err *e)
{
    const tl_tfl_tensor *x = T(m, t);
    const tl_tfl_buffer *b = &m->buffers[x->buffer];
    int64_t n = numel(x);
    if (!b->data || (x->type != TL_TFL_INT32 && x->type != TL_TFL_INT64) || n > max)
        return tl_fail(e, "tflite: tensor %d is not a small integer constant", t);
    for (int64_t i = 0; i < n; i++) {
        if (x->type == TL_TFL_INT32) {
            int32_t v;
            memcpy(&v, b->data + 4 * i, 4);
            dst[i] = v;
        } else {
            memcpy(&dst[i], b->data + 8 * i, 8);
        }
    }
    *count = (int)n;
    return 0;
}

/* TF "SAME": output ceil(n / s), extra padding at the end. */
static void same_pad(int n, int k, int s, int *lo, int *hi)
{
    int out = (n + s - 1) / s, total = (out - 1) * s + k - n;
    if (total < 0)
        total = 0;
    *lo = total / 2;
    *hi = total - *lo;
}

/* The padding every conv must have for tl.padding = "tf_same". */
static int check_tf_same(const conv_rec *c, tl_err *e)
{
    int want[4];
    if (c->stride == 1) {
        for (int i = 0; i < 4; i++)
            want[i] = (c->k - 1) / 2;
    } else if (c->stride == 2 && c->k == 3) {
        want[0] = want[2] = 0;
        want[1] = want[3] = 1;
    } else {
        return tl_fail(e, "tflite: conv at op %d: %dx%d kernel with stride %d has no tf_same padding rule", c->op,
                       c->k, c->k, c->stride);
    }
    if (c->k % 2 == 0 || memcmp(want, c->pad, sizeof want))
        return tl_fail(e,
                       "tflite: conv at op %d pads top %d bottom %d left %d right %d, not the tf_same rule for a "
                       "%dx%d stride-%d kernel (%d %d %d %d)",
                       c->op, c->pad[0], c->pad[1], c->pad[2], c->pad[3], c->k, c->k, c->stride, want[0], want[1],
                       want[2], want[3]);
    return 0;
}

static const char *act_name(int a)
{
    static const char *const names[] = {"NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT"};
    return a >= 0 && a < 6 ? names[a] : "UNKNOWN";
}

/* The tensor holding the constant data of t: t itself, or the input of the
 * DEQUANTIZE that makes it; -1 when t is not a numeric constant. Its data
 * size was checked against its shape when parsing, so allocations sized by
 * the shape are bounded by the file. */
int tl_tfl_const_source(const tl_tflite *m, int t)
{
    const tl_tfl_tensor *x = T(m, t);
    if (!m->buffers[x->buffer].data)
        for (int i = 0; i < m->nops; i++) {
            const tl_tfl_op *op = &m->ops[i];
            if (op->code == TL_TFL_DEQUANTIZE && op->noutputs == 1 && op->outputs[0] == t && op->ninputs >= 1 &&
                op->inputs[0] >= 0 && numel(T(m, op->inputs[0])) == numel(x)) {
                t = op->inputs[0];
                x = T(m, t);
                break;
            }
        }
    switch (x->type) {
    case TL_TFL_FLOAT32: case TL_TFL_FLOAT16: case TL_TFL_INT32: case TL_TFL_UINT8: case TL_TFL_INT8:
    case TL_TFL_INT16:
        return m->buffers[x->buffer].data ? t : -1;
    default:
        return -1;
    }
}

static int check_params(const walk *w, const conv_rec *c, tl_err *e)
{
    if (tl_tfl_const_source(w->m, c->w) < 0 || (c->b >= 0 && tl_tfl_const_source(w->m, c->b) < 0))
        return tl_fail(e, "tflite: unsupported graph: weights or bias of op %d are not constants", c->op);
    return 0;
}

/* [PAD] CONV_2D | DEPTHWISE_CONV_2D with kernel k (0: any), stride s (0: any)
 * and fused activation act. */
static int take_conv(walk *w, plan *p, int dw, int k, int s, int act, const char *wname, const char *bn,
                     tl_err *e)
{
    const tl_tflite *m = w->m;
    char tmp[24];
    if (p->nconv == MAX_CONVS)
        return tl_fail(e, "tflite: unsupported graph: more than %d convolutions", MAX_CONVS);
    conv_rec *c = &p->conv[p->nconv];
    memset(c, 0, sizeof *c);
    c->pad_op = -1;
    c->in = w->cur;
    if (is_op(w, TL_TFL_PAD)) {
        const tl_tfl_op *op = &m->ops[w->op];
        int64_t pads[8];
        int n;
        if (chained(w, e))
            return -1;
        if (op->ninputs < 2 || op->inputs[1] < 0 || const_ints(m, op->inputs[1], pads, 8, &n, e) || n != 8 ||
            pads[0] || pads[1] || pads[6] || pads[7])
            return tl_fail(e, "tflite: unsupported graph: PAD at op %d is not a spatial padding by constants", w->op);
        for (int i = 0; i < 4; i++) {
            if (pads[2 + i] < 0 || pads[2 + i] > 64)
                return tl_fail(e, "tflite: PAD at op %d pads by %lld", w->op, (long long)pads[2 + i]);
            c->pad[i] = (int)pads[2 + i];
        }
        c->pad_op = w->op;
        w->cur = op->outputs[0];
        w->op++;
    }
    int code = dw ? TL_TFL_DEPTHWISE_CONV_2D : TL_TFL_CONV_2D;
    if (!is_op(w, code))
        return unsupported(w, tl_tflite_op_name(code, tmp), e);
    if (chained(w, e))
        return -1;
    const tl_tfl_op *op = &m->ops[w->op];
    const tl_tfl_tensor *x = T(m, w->cur), *wt, *y = T(m, op->outputs[0]);
    if (op->ninputs < 2 || op->inputs[1] < 0)
        return tl_fail(e, "tflite: conv at op %d has no weights", w->op);
    wt = T(m, op->inputs[1]);
    if (!nhwc(x, -1, -1, -1, -1) || wt->ndim != 4)
        return tl_fail(e, "tflite: conv at op %d: input or weights are not 4-D", w->op);
    int H = x->shape[1], W = x->shape[2], C = x->shape[3];
    c->op = w->op;
    c->dw = dw;
    c->w = op->inputs[1];
    c->b = op->ninputs > 2 ? op->inputs[2] : -1;
    c->cin = C;
    c->k = wt->shape[1];
    c->stride = op->stride_h;
    if (dw) {
        if (wt->shape[0] != 1 || wt->shape[3] != C || (op->depth_multiplier != 1 && op->depth_multiplier != 0))
            return tl_fail(e, "tflite: depthwise conv at op %d: weights [%d,%d,%d,%d] for %d channels, multiplier %d",
                           w->op, wt->shape[0], wt->shape[1], wt->shape[2], wt->shape[3], C, op->depth_multiplier);
        c->cout = C;
    } else {
        if (wt->shape[3] != C)
            return tl_fail(e, "tflite: conv at op %d: weights [%d,%d,%d,%d] for %d input channels", w->op,
                           wt->shape[0], wt->shape[1], wt->shape[2], wt->shape[3], C);
        c->cout = wt->shape[0];
    }
    if (wt->shape[1] != wt->shape[2] || (k && c->k != k))
        return tl_fail(e, "tflite: unsupported graph: conv at op %d has a %dx%d kernel, expected %dx%d", w->op,
                       wt->shape[1], wt->shape[2], k, k);
    if (op->stride_w != op->stride_h || op->stride_h < 1 || (s && op->stride_h != s))
        return tl_fail(e, "tflite: unsupported graph: conv at op %d has stride %dx%d, expected %d", w->op,
                       op->stride_h, op->stride_w, s);
    if (op->dilation_w != 1 || op->dilation_h != 1)
        return tl_fail(e, "tflite: unsupported graph: conv at op %d is dilated", w->op);
    if (op->activation != act)
        return tl_fail(e, "tflite: unsupported graph: conv at op %d has fused activation %s, expected %s", w->op,
                       act_name(op->activation), act_name(act));
    if (c->b >= 0 && (T(m, c->b)->ndim != 1 || T(m, c->b)->shape[0] != c->cout))
        return tl_fail(e, "tflite: conv at op %d: bias is not a vector of %d", w->op, c->cout);
    if (check_params(w, c, e))
        return -1;
    if (op->padding == TL_TFL_SAME) {
        int lo, hi;
        same_pad(H + c->pad[0] + c->pad[1], c->k, c->stride, &lo, &hi);
        c->pad[0] += lo, c->pad[1] += hi;
        same_pad(W + c->pad[2] + c->pad[3], c->k, c->stride, &lo, &hi);
        c->pad[2] += lo, c->pad[3] += hi;
    } else if (op->padding != TL_TFL_VALID) {
        return tl_fail(e, "tflite: conv at op %d: unknown padding %d", w->op, op->padding);
    }
    int ph = H + c->pad[0] + c->pad[1], pw = W + c->pad[2] + c->pad[3];
    if (ph < c->k || pw < c->k || !nhwc(y, x->shape[0], (ph - c->k) / c->stride + 1, (pw - c->k) / c->stride + 1,
                                        c->cout))
        return tl_fail(e, "tflite: conv at op %d: output shape does not follow from input, kernel and stride", w->op);
    if (check_tf_same(c, e))
        return -1;
    snprintf(c->wname, sizeof c->wname, "%s", wname);
    snprintf(c->bn, sizeof c->bn, "%s", bn);
    c->out = op->outputs[0];
    w->cur = op->outputs[0];
    w->op++;
    p->nconv++;
    return 0;
}

/* Ops that do not change the float values: skipped at both ends of the graph. */
static void skip_passthrough(walk *w, int allow_tail_ops)
{
    while (w->op < w->m->nops) {
        const tl_tfl_op *op = &w->m->ops[w->op];
        int pass = op->code == TL_TFL_QUANTIZE || op->code == TL_TFL_DEQUANTIZE ||
                   (allow_tail_ops && (op->code == TL_TFL_SOFTMAX || op->code == TL_TFL_RESHAPE ||
                                       op->code == TL_TFL_SQUEEZE));
        if (!pass || op->ninputs < 1 || op->inputs[0] != w->cur || op->noutputs != 1 ||
            numel(T(w->m, op->outputs[0])) != numel(T(w->m, w->cur)))
            return;
        w->cur = op->outputs[0];
        w->op++;
    }
}

static int take_add(walk *w, int block_in, tl_err *e)
{
    if (!is_op(w, TL_TFL_ADD))
        return unsupported(w, "ADD", e);
    const tl_tfl_op *op = &w->m->ops[w->op];
    if (op->ninputs != 2 || op->noutputs != 1 ||
        !((op->inputs[0] == block_in && op->inputs[1] == w->cur) ||
          (op->inputs[1] == block_in && op->inputs[0] == w->cur)))
        return tl_fail(e, "tflite: unsupported graph: ADD at op %d is not the residual of its block", w->op);
    if (op->activation != TL_TFL_ACT_NONE)
        return tl_fail(e, "tflite: unsupported graph: ADD at op %d has fused activation %s", w->op,
                       act_name(op->activation));
    const tl_tfl_tensor *a = T(w->m, w->cur), *y = T(w->m, op->outputs[0]);
    if (!nhwc(y, a->shape[0], a->shape[1], a->shape[2], a->shape[3]))
        return tl_fail(e, "tflite: ADD at op %d changes the shape", w->op);
    w->cur = op->outputs[0];
    w->op++;
    return 0;
}

/* Global average pooling: AVERAGE_POOL_2D over the whole map, or MEAN over H and W. */
static int take_pool(walk *w, plan *p, tl_err *e)
{
    const tl_tflite *m = w->m;
    if (!is_op(w, TL_TFL_AVERAGE_POOL_2D) && !is_op(w, TL_TFL_MEAN))
        return unsupported(w, "AVERAGE_POOL_2D or MEAN", e);
    if (chained(w, e))
        return -1;
    const tl_tfl_op *op = &m->ops[w->op];
    const tl_tfl_tensor *x = T(m, w->cur), *y = T(m, op->outputs[0]);
    if (!nhwc(x, -1, -1, -1, -1))
        return tl_fail(e, "tflite: pool at op %d: input is not 4-D", w->op);
    if (op->code == TL_TFL_AVERAGE_POOL_2D) {
        if (op->filter_h != x->shape[1] || op->filter_w != x->shape[2] || op->activation != TL_TFL_ACT_NONE)
            return tl_fail(e, "tflite: unsupported graph: AVERAGE_POOL_2D at op %d is not a global pool", w->op);
    } else {
        int64_t axes[4];
        int n;
        if (op->ninputs < 2 || op->inputs[1] < 0 || const_ints(m, op->inputs[1], axes, 4, &n, e) || n != 2 ||
            !((axes[0] == 1 && axes[1] == 2) || (axes[0] == 2 && axes[1] == 1)))
            return tl_fail(e, "tflite: unsupported graph: MEAN at op %d is not over height and width", w->op);
    }
    if (numel(y) != (int64_t)x->shape[0] * x->shape[3])
        return tl_fail(e, "tflite: pool at op %d: output is not one value per channel", w->op);
    p->pool_op = w->op;
    p->pool_in = w->cur;
    p->pool_out = op->outputs[0];
    w->cur = op->outputs[0];
    w->op++;
    return 0;
}

/* Optional classifier: a 1x1 CONV_2D or a FULLY_CONNECTED, without activation. */
static int take_classifier(walk *w, plan *p, tl_err *e)
{
    const tl_tflite *m = w->m;
    int feat = T(m, p->conv[p->nconv - 1].w)->shape[0];
    skip_passthrough(w, 1);
    if (is_op(w, TL_TFL_CONV_2D)) {
        if (take_conv(w, p, 0, 1, 1, TL_TFL_ACT_NONE, "classifier.1.weight", "", e))
            return -1;
        p->num_classes = p->conv[p->nconv - 1].cout;
    } else if (is_op(w, TL_TFL_FULLY_CONNECTED)) {
        if (chained(w, e))
            return -1;
        const tl_tfl_op *op = &m->ops[w->op];
        if (op->ninputs < 2 || op->inputs[1] < 0)
            return tl_fail(e, "tflite: FULLY_CONNECTED at op %d has no weights", w->op);
        const tl_tfl_tensor *wt = T(m, op->inputs[1]);
        if (wt->ndim != 2 || wt->shape[1] != feat || numel(T(m, w->cur)) % feat ||
            numel(T(m, op->outputs[0])) != numel(T(m, w->cur)) / feat * wt->shape[0])
            return tl_fail(e, "tflite: FULLY_CONNECTED at op %d: weights do not map %d features", w->op, feat);
        if (op->weights_format != 0 || op->activation != TL_TFL_ACT_NONE)
            return tl_fail(e, "tflite: unsupported graph: FULLY_CONNECTED at op %d has shuffled weights or an "
                              "activation", w->op);
        conv_rec *c = &p->conv[p->nconv];
        memset(c, 0, sizeof *c);
        c->op = w->op;
        c->pad_op = -1;
        c->in = w->cur;
        c->w = op->inputs[1];
        c->b = op->ninputs > 2 ? op->inputs[2] : -1;
        c->cin = feat;
        c->cout = wt->shape[0];
        c->k = c->stride = 1;
        if (c->b >= 0 && (T(m, c->b)->ndim != 1 || T(m, c->b)->shape[0] != c->cout))
            return tl_fail(e, "tflite: FULLY_CONNECTED at op %d: bias is not a vector of %d", w->op, c->cout);
        if (check_params(w, c, e))
            return -1;
        snprintf(c->wname, sizeof c->wname, "classifier.1.weight");
        c->out = op->outputs[0];
        p->nconv++;
        p->num_classes = c->cout;
        w->cur = op->outputs[0];
        w->op++;
    } else {
        return 0; /* a feature extractor */
    }
    p->has_fc = 1;
    if (p->num_classes < 1)
        return tl_fail(e, "tflite: classifier with no outputs");
    return 0;
}

/* torchvision's _make_divisible(v, 8). */
static int make_div(double v)
{
    int n = (int)(v + 4) / 8 * 8;
    if (n < 8)
        n = 8;
    if (n < 0.9 * v)
        n += 8;
    return n;
}

static int v2_widths_match(double wm, const int *outs, int nouts)
{
    static const int c[] = {32, 16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320};
    for (int i = 0; i < nouts - 1; i++)
        if (make_div(c[i] * wm) != outs[i])
            return 0;
    return make_div(1280 * (wm > 1 ? wm : 1)) == outs[nouts - 1];
}

static int recognise_v2(walk *w, plan *p, tl_err *e)
{
    static const int cfg[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    int outs[19], nouts = 0, idx = 1;
    char wn[48], bn[48];
    if (take_conv(w, p, 0, 3, 2, TL_TFL_ACT_RELU6, "features.0.0.weight", "features.0.1", e))
        return -1;
    int in_c = p->conv[p->nconv - 1].cout;
    outs[nouts++] = in_c;
    for (int g = 0; g < 7; g++)
        for (int i = 0; i < cfg[g][2]; i++, idx++) {
            int t = cfg[g][0], stride = i ? 1 : cfg[g][3], block_in = w->cur, j = 0;
            if (t != 1) {
                snprintf(wn, sizeof wn, "features.%d.conv.0.0.weight", idx);
                snprintf(bn, sizeof bn, "features.%d.conv.0.1", idx);
                if (take_conv(w, p, 0, 1, 1, TL_TFL_ACT_RELU6, wn, bn, e))
                    return -1;
                if (p->conv[p->nconv - 1].cout != (int)lround(in_c * (double)t))
                    return tl_fail(e, "tflite: unsupported graph: expansion at op %d gives %d channels, expected %d",
                                   p->conv[p->nconv - 1].op, p->conv[p->nconv - 1].cout, in_c * t);
                j = 1;
            }
            snprintf(wn, sizeof wn, "features.%d.conv.%d.0.weight", idx, j);
            snprintf(bn, sizeof bn, "features.%d.conv.%d.1", idx, j);
            if (take_conv(w, p, 1, 3, stride, TL_TFL_ACT_RELU6, wn, bn, e))
                return -1;
            snprintf(wn, sizeof wn, "features.%d.conv.%d.weight", idx, j + 1);
            snprintf(bn, sizeof bn, "features.%d.conv.%d", idx, j + 2);
            if (take_conv(w, p, 0, 1, 1, TL_TFL_ACT_NONE, wn, bn, e))
                return -1;
            int out_c = p->conv[p->nconv - 1].cout;
            if (stride == 1 && out_c == in_c && take_add(w, block_in, e))
                return -1;
            outs[nouts++] = in_c = out_c;
        }
    if (take_conv(w, p, 0, 1, 1, TL_TFL_ACT_RELU6, "features.18.0.weight", "features.18.1", e))
        return -1;
    outs[nouts++] = p->conv[p->nconv - 1].cout;
    /* The multiplier is not stored: take the first that gives every width
     * (a round one if possible; any that fits builds the same network). */
    static const double nice[] = {1.0, 0.75, 0.5, 0.35, 0.25, 1.3, 1.4, 1.5, 2.0};
    p->width = 0;
    for (size_t i = 0; i < sizeof nice / sizeof nice[0] && !p->width; i++)
        if (v2_widths_match(nice[i], outs, nouts))
            p->width = nice[i];
    for (int k = 1; k <= 400 && !p->width; k++)
        if (v2_widths_match(k / 100.0, outs, nouts))
            p->width = k / 100.0;
    if (!p->width)
        return tl_fail(e, "tflite: unsupported graph: channel widths (first %d, last block %d, head %d) match no "
                          "MobileNetV2 width multiplier", outs[0], outs[nouts - 2], outs[nouts - 1]);
    return 0;
}

static int recognise_v1(walk *w, plan *p, tl_err *e)
{
    static const int stride[14] = {2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1};
    static const int depth[14] = {32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024};
    int outs[14];
    char wn[48], bn[48];
    if (take_conv(w, p, 0, 3, 2, TL_TFL_ACT_RELU6, "features.0.0.weight", "features.0.1", e))
        return -1;
    outs[0] = p->conv[p->nconv - 1].cout;
    for (int k = 1; k <= 13; k++) {
        snprintf(wn, sizeof wn, "features.%d.0.weight", k);
        snprintf(bn, sizeof bn, "features.%d.1", k);
        if (take_conv(w, p, 1, 3, stride[k], TL_TFL_ACT_RELU6, wn, bn, e))
            return -1;
        snprintf(wn, sizeof wn, "features.%d.3.weight", k);
        snprintf(bn, sizeof bn, "features.%d.4", k);
        if (take_conv(w, p, 0, 1, 1, TL_TFL_ACT_RELU6, wn, bn, e))
            return -1;
        outs[k] = p->conv[p->nconv - 1].cout;
    }
    /* TF-slim widths: max(floor(depth * multiplier), 8). */
    p->width = outs[13] / 1024.0;
    for (int k = 0; k < 14; k++) {
        int want = (int)(depth[k] * p->width + 1e-9);
        if (want < 8)
            want = 8;
        if (outs[k] != want)
            return tl_fail(e, "tflite: unsupported graph: layer %d has %d channels, width %g gives %d", k, outs[k],
                           p->width, want);
    }
    return 0;
}

static int recognise(const tl_tflite *m, plan *p, tl_err *e)
{
    memset(p, 0, sizeof *p);
    if (m->ninputs != 1 || m->noutputs < 1)
        return tl_fail(e, "tflite: unsupported graph: %d inputs and %d outputs", m->ninputs, m->noutputs);
    const tl_tfl_tensor *in = T(m, m->inputs[0]);
    if (!nhwc(in, 1, -1, -1, 3) || in->shape[1] != in->shape[2] || in->shape[1] < 16 || in->shape[1] > 4096)
        return tl_fail(e, "tflite: unsupported graph: input is not a square 1xHxWx3 image");
    if (in->type != TL_TFL_FLOAT32 && !((in->type == TL_TFL_UINT8 || in->type == TL_TFL_INT8) && in->nscale == 1))
        return tl_fail(e, "tflite: unsupported input type %s", tl_tflite_type_name(in->type));
    p->input = m->inputs[0];
    p->size = in->shape[1];
    p->arch = tl_tflite_count_ops(m, TL_TFL_ADD) ? ARCH_V2 : ARCH_V1;

    walk w = {m, 0, m->inputs[0]};
    skip_passthrough(&w, 0);
    if ((p->arch == ARCH_V2 ? recognise_v2 : recognise_v1)(&w, p, e) || take_pool(&w, p, e) ||
        take_classifier(&w, p, e))
        return -1;
    skip_passthrough(&w, 1);
    if (w.op != m->nops) {
        char tmp[24];
        return tl_fail(e, "tflite: unsupported graph: unexpected %s at op %d after the %s", name_of(m, w.op, tmp),
                       w.op, p->has_fc ? "classifier" : "pooling");
    }
    if (m->outputs[0] != w.cur)
        return tl_fail(e, "tflite: unsupported graph: the model output is not the end of the layer chain");
    return 0;
}

/* ---- dequantisation ---- */

static float half_to_float(uint16_t h)
{
    int sign = h >> 15, ex = (h >> 10) & 31, man = h & 1023;
    float v;
    if (ex == 0)
        v = ldexpf((float)man, -24);
    else if (ex == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexpf((float)(man | 1024), ex - 25);
    return sign ? -v : v;
}

/* The constant values of tensor t as float, in the tensor's own layout.
 * t holds data, or is made by a DEQUANTIZE of a tensor that does. Integer
 * data without its own scale uses fallback (per channel along dim 0). */
static int dequant(const tl_tflite *m, int t, const float *fallback, int nfallback, float *dst, tl_err *e)
{
    int src = tl_tfl_const_source(m, t);
    if (src < 0)
        return tl_fail(e, "tflite: tensor %d is not a constant", t);
    const tl_tfl_tensor *x = T(m, src);
    int64_t n = numel(x);
    const uint8_t *d = m->buffers[x->buffer].data;
    if (x->type == TL_TFL_FLOAT32) {
        memcpy(dst, d, (size_t)n * 4);
        return 0;
    }
    if (x->type == TL_TFL_FLOAT16) {
        for (int64_t i = 0; i < n; i++)
            dst[i] = half_to_float((uint16_t)(d[2 * i] | d[2 * i + 1] << 8));
        return 0;
    }
    const float *scale = x->scale;
    int nscale = x->nscale, qdim = x->qdim;
    if (!nscale) {
        scale = fallback, nscale = nfallback, qdim = 0;
        if (!nscale)
            return tl_fail(e, "tflite: tensor %d is %s without quantization parameters", t,
                           tl_tflite_type_name(x->type));
    }
    if (nscale > 1 && (x->ndim <= qdim || x->shape[qdim] != nscale))
        return tl_fail(e, "tflite: tensor %d: %d scales do not match its shape", t, nscale);
    int64_t inner = 1;
    for (int k = qdim + 1; k < x->ndim; k++)
        inner *= x->shape[k];
    for (int64_t i = 0; i < n; i++) {
        int c = nscale > 1 ? (int)(i / inner % nscale) : 0;
        int64_t zp = scale == x->scale && x->nzero ? x->zero_point[x->nzero > 1 ? c : 0] : 0, q;
        switch (x->type) {
        case TL_TFL_UINT8: q = d[i]; break;
        case TL_TFL_INT8: q = (int8_t)d[i]; break;
        case TL_TFL_INT16: q = (int16_t)(d[2 * i] | d[2 * i + 1] << 8); break;
        case TL_TFL_INT32: {
            int32_t v;
            memcpy(&v, d + 4 * i, 4);
            q = v;
            break;
        }
        default:
            return tl_fail(e, "tflite: tensor %d has unsupported type %s", t, tl_tflite_type_name(x->type));
        }
        dst[i] = (float)((double)(q - zp) * scale[c]);
    }
    return 0;
}

/* Buffers the writer borrows until it writes: per layer, two (weight and
 * bias) in float, fourteen with --keep-int8 (tl_tfl_int8_emit adds 12). */
typedef struct keep {
    void *p[14 * MAX_CONVS + 8];
    int n;
} keep;

static float *keep_floats(keep *k, int64_t n, tl_err *e)
{
    float *p = tl_xalloc((size_t)n, sizeof(float), e);
    if (p)
        k->p[k->n++] = p;
    return p;
}

static int emit_conv(const tl_tflite *m, const conv_rec *c, int int8, tl_st_writer *wr, keep *k, const float *ones,
                     const float *zeros, const float *var, const int64_t *zero64, tl_err *e)
{
    const tl_tfl_tensor *wt = T(m, c->w);
    int64_t n = numel(wt);
    float *raw = tl_xalloc((size_t)n, sizeof(float), e), *wgt = keep_floats(k, n, e), *bias = NULL;
    if (!raw || !wgt) {
        tl_free(raw);
        return -1;
    }
    if (dequant(m, c->w, NULL, 0, raw, e)) {
        tl_free(raw);
        return tl_fail_prefix(e, "weights of op %d", c->op);
    }
    /* OHWI (conv) and 1HWC (depthwise) to PyTorch's OIHW; FC [out, in] stays. */
    int K = c->k, O = c->cout, I = c->dw ? 1 : c->cin;
    if (wt->ndim == 4) {
        for (int o = 0; o < O; o++)
            for (int i = 0; i < I; i++)
                for (int y = 0; y < K; y++)
                    for (int x = 0; x < K; x++)
                        wgt[((int64_t)(o * I + i) * K + y) * K + x] =
                            c->dw ? raw[(int64_t)(y * K + x) * O + o] : raw[((int64_t)(o * K + y) * K + x) * I + i];
    } else {
        memcpy(wgt, raw, (size_t)n * sizeof(float));
    }
    tl_free(raw);

    if (c->b >= 0) {
        /* Integer biases without a scale of their own: input scale x weight scale. */
        const tl_tfl_tensor *x = T(m, c->in);
        float *fb = NULL;
        int nfb = 0;
        if (x->nscale == 1 && (wt->nscale == 1 || wt->nscale == O)) {
            if (!(fb = tl_xalloc((size_t)wt->nscale, sizeof(float), e)))
                return -1;
            nfb = wt->nscale;
            for (int i = 0; i < nfb; i++)
                fb[i] = x->scale[0] * wt->scale[i];
        }
        int r = !(bias = keep_floats(k, O, e)) || dequant(m, c->b, fb, nfb, bias, e);
        tl_free(fb);
        if (r)
            return tl_fail_prefix(e, "bias of op %d", c->op);
    }
    if (int8 && tl_tfl_int8_emit(m, c, wr, k->p, &k->n, e))
        return -1;
    if (!c->bn[0]) { /* the classifier: Linear weight [classes, features] + bias */
        int64_t ws[2] = {O, c->cin}, bs[1] = {O};
        return (!int8 && tl_st_add(wr, c->wname, TL_F32, 2, ws, wgt, e)) ||
               tl_st_add(wr, "classifier.1.bias", TL_F32, 1, bs, bias ? bias : zeros, e);
    }
    int64_t ws[4] = {O, I, K, K}, cs[1] = {O}, none[1] = {0};
    char name[96];
    if (!int8 && tl_st_add(wr, c->wname, TL_F32, 4, ws, wgt, e))
        return -1;
    static const char *const fields[] = {"weight", "bias", "running_mean", "running_var"};
    const float *vals[] = {ones, bias ? bias : zeros, zeros, var};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", c->bn, fields[i]);
        if (tl_st_add(wr, name, TL_F32, 1, cs, vals[i], e))
            return -1;
    }
    snprintf(name, sizeof name, "%s.num_batches_tracked", c->bn);
    return tl_st_add(wr, name, TL_I64, 0, none, zero64, e);
}

/* ---- metadata ---- */

/* JSON list of class names: one per line of the labels file, or "0", "1", ... */
static char *classes_json(const char *labels_path, int num_classes, tl_err *e)
{
    tl_strbuf b = {0};
    char *text = NULL;
    if (tl_strbuf_add(&b, "[", 1)) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    if (labels_path && num_classes > 0) {
        FILE *f = fopen(labels_path, "rb");
        if (!f) {
            tl_fail(e, "%s: cannot open labels file", labels_path);
            goto fail;
        }
        text = malloc(MAX_LABELS_BYTES + 1);
        size_t n = text ? fread(text, 1, MAX_LABELS_BYTES + 1, f) : 0;
        fclose(f);
        if (!text || n > MAX_LABELS_BYTES) {
            tl_fail(e, "%s: labels file too large or out of memory", labels_path);
            goto fail;
        }
        while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
            n--; /* trailing blank lines */
        if (memchr(text, '\0', n)) {
            tl_fail(e, "%s: labels file contains a NUL byte", labels_path);
            goto fail;
        }
        text[n] = '\0';
        int lines = n ? 1 : 0;
        for (size_t i = 0; i < n; i++)
            lines += text[i] == '\n';
        if (lines != num_classes) {
            tl_fail(e, "%s: %d labels for a model with %d classes", labels_path, lines, num_classes);
            goto fail;
        }
        for (char *s = text;;) {
            char *nl = strchr(s, '\n');
            size_t l = nl ? (size_t)(nl - s) : strlen(s);
            if (l && s[l - 1] == '\r')
                l--;
            s[l] = '\0'; /* the line's end, already found */
            if ((s != text && tl_strbuf_add(&b, ",", 1)) || tl_strbuf_json_string(&b, s)) {
                tl_fail(e, "out of memory");
                goto fail;
            }
            if (!nl)
                break;
            s = nl + 1;
        }
    } else {
        char num[16];
        for (int i = 0; i < num_classes; i++) {
            snprintf(num, sizeof num, "%d", i);
            if ((i && tl_strbuf_add(&b, ",", 1)) || tl_strbuf_json_string(&b, num)) {
                tl_fail(e, "out of memory");
                goto fail;
            }
        }
    }
    free(text);
    if (tl_strbuf_add(&b, "]", 1)) {
        tl_fail(e, "out of memory");
        goto fail;
    }
    return b.s;
fail:
    free(text);
    tl_strbuf_free(&b);
    return NULL;
}

/* ---- public entry points ---- */

static void fmt_width(double w, char *buf, size_t n)
{
    snprintf(buf, n, w == floor(w) ? "%.1f" : "%g", w);
}

typedef struct {
    int code, first, count;
} opcount;

static int cmp_code_first(const void *a, const void *b)
{
    const opcount *x = a, *y = b;
    if (x->code != y->code)
        return x->code < y->code ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

static int cmp_first(const void *a, const void *b)
{
    const opcount *x = a, *y = b;
    return (x->first > y->first) - (x->first < y->first);
}

int tl_tflite_describe(const tl_tflite *m, char *buf, size_t n)
{
    plan *p = tl_alloc(sizeof *p);
    tl_err e = {0};
    char tmp[24], wstr[16], arch[600];
    if (!p)
        return snprintf(buf, n, "out of memory");
    if (recognise(m, p, &e)) {
        snprintf(arch, sizeof arch, "unrecognised (%s)", e.msg);
    } else {
        fmt_width(p->width, wstr, sizeof wstr);
        snprintf(arch, sizeof arch, "%s width %s, %d convolutions, %d classes",
                 p->arch == ARCH_V2 ? "mobilenet_v2" : "mobilenet_v1", wstr, p->nconv - p->has_fc, p->num_classes);
    }
    tl_free(p);
    size_t len = 0;
#define PUT(...) do { int r_ = snprintf(buf + (len < n ? len : n ? n - 1 : 0), len < n ? n - len : 0, __VA_ARGS__); \
        if (r_ > 0) len += (size_t)r_; } while (0)
    if (n == 0)
        buf = tmp; /* nothing is written when n is 0 */
    PUT("%s", arch);
    if (m->ninputs >= 1) {
        const tl_tfl_tensor *in = T(m, m->inputs[0]);
        PUT("; input ");
        for (int d = 0; d < in->ndim; d++)
            PUT("%s%d", d ? "x" : "", in->shape[d]);
        PUT(" %s", tl_tflite_type_name(in->type));
    }
    PUT("; %d ops:", m->nops);
    /* each op code once, in order of first use, with its count: sorted, so
     * n ops cost O(n log n), never O(n^2) */
    opcount *oc = malloc(((size_t)m->nops + 1) * sizeof *oc);
    if (!oc)
        PUT(" (out of memory)");
    int nu = 0;
    for (int i = 0; oc && i < m->nops; i++)
        oc[i] = (opcount){m->ops[i].code, i, 1};
    if (oc)
        qsort(oc, (size_t)m->nops, sizeof *oc, cmp_code_first);
    for (int i = 0; oc && i < m->nops;) {
        int j = i;
        while (j < m->nops && oc[j].code == oc[i].code)
            j++;
        oc[nu++] = (opcount){oc[i].code, oc[i].first, j - i};
        i = j;
    }
    if (oc)
        qsort(oc, (size_t)nu, sizeof *oc, cmp_first);
    for (int i = 0; i < nu; i++)
        PUT(" %s %d", tl_tflite_op_name(oc[i].code, tmp), oc[i].count);
    free(oc);
#undef PUT
    return (int)len;
}

static int convert(const tl_tflite *m, int int8, const char *labels_path, const char *out_path, tl_log_fn log,
                   void *log_user, tl_err *e)
{
    plan *p = tl_alloc(sizeof *p);
    keep *k = tl_alloc(sizeof *k);
    tl_st_writer *wr = tl_st_writer_new();
    float *ones = NULL, *zeros = NULL, *var = NULL;
    char *classes = NULL;
    int rc = -1;
    int64_t zero64 = 0;
    if (!p || !k || !wr) {
        tl_fail(e, "out of memory");
        goto out;
    }
    if (recognise(m, p, e) || (int8 && tl_tfl_int8_check(m, p, e)))
        goto out;

    int maxc = 1;
    for (int i = 0; i < p->nconv; i++)
        maxc = p->conv[i].cout > maxc ? p->conv[i].cout : maxc;
    ones = tl_xalloc((size_t)maxc, sizeof(float), e);
    zeros = tl_xalloc((size_t)maxc, sizeof(float), e);
    var = tl_xalloc((size_t)maxc, sizeof(float), e);
    if (!ones || !zeros || !var)
        goto out;
    /* var + eps must be exactly 1 in float, so the identity is exact. */
    volatile float v = 1.0f - BN_EPS;
    while (v + BN_EPS > 1.0f)
        v = nextafterf(v, 0.0f);
    while (v + BN_EPS < 1.0f)
        v = nextafterf(v, 2.0f);
    for (int i = 0; i < maxc; i++)
        ones[i] = 1.0f, var[i] = v;
    for (int i = 0; i < p->nconv; i++)
        if (emit_conv(m, &p->conv[i], int8, wr, k, ones, zeros, var, &zero64, e))
            goto out;

    const tl_tfl_tensor *in = T(m, p->input);
    double mean = 0.5, std = 0.5;
    if (in->type != TL_TFL_FLOAT32) {
        /* x = (q - zp) * scale with q = pixel (uint8) or pixel - 128 (int8) */
        double zp = (double)(in->nzero ? in->zero_point[0] : 0) + (in->type == TL_TFL_INT8 ? 128 : 0);
        mean = zp / 255.0;
        std = 1.0 / (255.0 * in->scale[0]);
    }
    char wstr[16], num[32], nc[16], size[16], resize[16], mstr[112], sstr[112];
    fmt_width(p->width, wstr, sizeof wstr);
    snprintf(nc, sizeof nc, "%d", p->num_classes);
    snprintf(size, sizeof size, "%d", p->size);
    snprintf(resize, sizeof resize, "%d", (256 * p->size + 112) / 224);
    snprintf(num, sizeof num, "%.9g", mean);
    snprintf(mstr, sizeof mstr, "[%s,%s,%s]", num, num, num);
    snprintf(num, sizeof num, "%.9g", std);
    snprintf(sstr, sizeof sstr, "[%s,%s,%s]", num, num, num);
    if (!(classes = classes_json(p->num_classes ? labels_path : NULL, p->num_classes, e)))
        goto out;
    const char *meta[][2] = {
        {"tl.format", TL_STR(TL_FORMAT_CHECKPOINT)},
        {"tl.arch", p->arch == ARCH_V2 ? "mobilenet_v2" : "mobilenet_v1"},
        {"tl.width_mult", wstr},
        {"tl.padding", "tf_same"},
        {"tl.num_classes", nc},
        {"tl.classes", classes},
        {"tl.input_size", size},
        {"tl.resize_size", resize},
        {"tl.mean", mstr},
        {"tl.std", sstr},
        {"tl.channel_order", "RGB"},
        {"tl.interpolation", "bilinear"},
        {"tl.bn_eps", "1e-05"},
        {"tl.source", m->source[0] ? m->source : NULL},
        {"tl.dropout", p->arch == ARCH_V2 ? "0.2" : NULL},
    };
    for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++)
        if (meta[i][1] && tl_st_set_meta(wr, meta[i][0], meta[i][1], e))
            goto out;
    if (int8) {
        /* tl-formats(5), int8 checkpoints: the file's own scales, every layer in int8 */
        char pooling[160], calib[300];
        snprintf(calib, sizeof calib, "the TFLite file's own scales (%s)", m->source[0] ? m->source : "tflite");
        if (tl_tfl_int8_pooling(m, p, pooling, sizeof pooling, e) || tl_st_set_meta(wr, "tl.quant", "int8", e) ||
            tl_st_set_meta(wr, "tl.quant.calibration", calib, e) ||
            tl_st_set_meta(wr, "tl.quant.weight_bits", "8", e) ||
            tl_st_set_meta(wr, "tl.quant.float_layers", "[]", e) ||
            tl_st_set_meta(wr, "tl.quant.pooling", pooling, e) ||
            tl_st_set_meta(wr, "tl.quant.multiplier", tl_tfl_int8_multiplier(m, p), e) ||
            (m->source[0] && tl_st_set_meta(wr, "tl.quant.source", m->source, e)))
            goto out;
    }
    if (tl_st_write(wr, out_path, e))
        goto out;
    if (log) {
        char msg[256];
        snprintf(msg, sizeof msg, "tflite: %s width %s, input %d, %d classes, %d convolutions%s%s",
                 p->arch == ARCH_V2 ? "mobilenet_v2" : "mobilenet_v1", wstr, p->size, p->num_classes,
                 p->nconv - p->has_fc, p->num_classes && !labels_path ? ", classes named by index" : "",
                 int8 ? ", int8 kept" : "");
        log(log_user, msg);
    }
    rc = 0;
out:
    if (wr)
        tl_st_writer_free(wr);
    if (k)
        for (int i = 0; i < k->n; i++)
            tl_free(k->p[i]);
    tl_free(k);
    tl_free(p);
    tl_free(ones);
    tl_free(zeros);
    tl_free(var);
    free(classes);
    return rc;
}

int tl_tflite_convert(const tl_tflite *m, const char *labels_path, const char *out_path, tl_log_fn log,
                      void *log_user, tl_err *e)
{
    return convert(m, 0, labels_path, out_path, log, log_user, e);
}

int tl_tflite_convert_int8(const tl_tflite *m, const char *labels_path, const char *out_path, tl_log_fn log,
                           void *log_user, tl_err *e)
{
    return convert(m, 1, labels_path, out_path, log, log_user, e);
}
