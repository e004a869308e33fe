/* A quantised TFLite MobileNet kept in integers (tl-convert --keep-int8):
 * every convolution and the classifier become int8 layers of an int8
 * checkpoint (tl-formats(5)) holding exactly the integers TFLite multiplies
 * (q - weight zero point), its int32 biases and the scale and zero point of
 * every activation, so the int8 engine repeats TFLite's integer arithmetic.
 *
 * int8 activations (TF2 post-training quantisation) are carried as uint8
 * with the zero point moved by 128: q + 128 with zero + 128 has the same
 * differences, so every sum, requantisation and clamp is unchanged. */
#include "tflite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_int_act(const tl_tfl_tensor *x)
{
    return (x->type == TL_TFL_UINT8 || x->type == TL_TFL_INT8) && x->nscale == 1;
}

/* Zero point in the uint8 domain (check_act has bounded it). */
static int zero_u8(const tl_tfl_tensor *x)
{
    return (int)(x->nzero ? x->zero_point[0] : 0) + (x->type == TL_TFL_INT8 ? 128 : 0);
}

/* "op 12 (DEPTHWISE_CONV_2D, features.2.conv.1.0)": where a refusal is. */
static const char *where(const tl_tflite *m, int op, const char *layer, char buf[128])
{
    char tmp[24];
    const char *name = op >= 0 && op < m->nops ? tl_tflite_op_name(m->ops[op].code, tmp) : "?";
    snprintf(buf, 128, "op %d (%s%s%s)", op, name, layer ? ", " : "", layer ? layer : "");
    return buf;
}

static int check_act(const tl_tflite *m, int t, const char *what, int op, const char *layer, tl_err *e)
{
    const tl_tfl_tensor *x = tl_tfl_t(m, t);
    char at[128];
    if (!is_int_act(x))
        return tl_fail(e, "tflite: --keep-int8: the %s of %s is %s%s, not uint8 or int8 with one scale", what,
                       where(m, op, layer, at), tl_tflite_type_name(x->type), x->nscale > 1 ? " per channel" : "");
    int64_t z = (x->nzero ? x->zero_point[0] : 0) + (x->type == TL_TFL_INT8 ? 128 : 0);
    if (z < 0 || z > 255)
        return tl_fail(e, "tflite: --keep-int8: the %s of %s has zero point %lld, outside its type", what,
                       where(m, op, layer, at), (long long)(x->nzero ? x->zero_point[0] : 0));
    return 0;
}

/* The plan's layer whose name ends in the weight's: "features.3.conv.0.0". */
static const char *layer_name(const tl_tfl_conv *c, char buf[48])
{
    size_t n = strlen(c->wname), suffix = strlen(".weight");
    snprintf(buf, 48, "%.*s", (int)(n > suffix ? n - suffix : n), c->wname);
    return buf;
}

int tl_tfl_int8_check(const tl_tflite *m, const tl_tfl_plan *p, tl_err *e)
{
    char at[128], layer[48];
    for (int i = 0; i < p->nconv; i++) {
        const tl_tfl_conv *c = &p->conv[i];
        const char *L = layer_name(c, layer);
        const tl_tfl_tensor *w = tl_tfl_t(m, tl_tfl_const_source(m, c->w));
        if (w->type != TL_TFL_UINT8 && w->type != TL_TFL_INT8)
            return tl_fail(e, "tflite: --keep-int8 needs a quantised model: the weights of %s are %s",
                           where(m, c->op, L, at), tl_tflite_type_name(w->type));
        if (!w->nscale)
            return tl_fail(e, "tflite: --keep-int8: the weights of %s have no scale", where(m, c->op, L, at));
        int qdim = c->dw ? 3 : 0;
        if (w->nscale > 1 && w->qdim != qdim)
            return tl_fail(e, "tflite: --keep-int8: the weights of %s are quantised along dimension %d, not "
                              "their output channels", where(m, c->op, L, at), w->qdim);
        if (c->b >= 0) {
            const tl_tfl_tensor *b = tl_tfl_t(m, tl_tfl_const_source(m, c->b));
            if (b->type != TL_TFL_INT32)
                return tl_fail(e, "tflite: --keep-int8: the bias of %s is %s, not INT32", where(m, c->op, L, at),
                               tl_tflite_type_name(b->type));
        }
        if (check_act(m, c->in, "input", c->op, L, e) || check_act(m, c->out, "output", c->op, L, e))
            return -1;
        /* one rule for the multipliers (tl_tfl_int8_multiplier): one activation type */
        if (tl_tfl_t(m, c->in)->type != tl_tfl_t(m, p->conv[0].in)->type)
            return tl_fail(e, "tflite: --keep-int8: %s mixes uint8 and int8 activations", where(m, c->op, L, at));
    }
    if (check_act(m, p->pool_in, "input", p->pool_op, NULL, e) ||
        check_act(m, p->pool_out, "output", p->pool_op, NULL, e))
        return -1;
    const tl_tfl_tensor *pin = tl_tfl_t(m, p->pool_in), *pout = tl_tfl_t(m, p->pool_out);
    /* TFLite's uint8/int8 AVERAGE_POOL_2D averages the bytes: it requires
     * (and tl's engine then assumes) equal input and output parameters */
    if (m->ops[p->pool_op].code == TL_TFL_AVERAGE_POOL_2D &&
        (pin->scale[0] != pout->scale[0] || zero_u8(pin) != zero_u8(pout) || pin->type != pout->type))
        return tl_fail(e, "tflite: --keep-int8: %s changes the quantisation of its values",
                       where(m, p->pool_op, NULL, at));
    for (int i = 0; i < m->nops; i++)
        if (m->ops[i].code == TL_TFL_ADD)
            for (int k = 0; k < 3; k++) {
                int t = k < 2 ? m->ops[i].inputs[k] : m->ops[i].outputs[0];
                if (check_act(m, t, k < 2 ? "input" : "output", i, NULL, e))
                    return -1;
            }
    return 0;
}

static void *kept(void **keep, int *nkeep, size_t n, size_t size, tl_err *e)
{
    void *p = tl_xalloc(n ? n : 1, size, e);
    if (p)
        keep[(*nkeep)++] = p;
    return p;
}

int tl_tfl_int8_emit(const tl_tflite *m, const tl_tfl_conv *c, tl_st_writer *wr, void **keep, int *nkeep,
                     tl_err *e)
{
    const tl_tfl_tensor *x = tl_tfl_t(m, tl_tfl_const_source(m, c->w));
    const uint8_t *d = m->buffers[x->buffer].data;
    int K = c->k, O = c->cout, I = c->dw ? 1 : c->cin;
    size_t n = (size_t)O * I * K * K;
    int16_t *w16 = kept(keep, nkeep, n, sizeof *w16, e);
    float *wscale = kept(keep, nkeep, (size_t)O, sizeof *wscale, e);
    int32_t *bias = kept(keep, nkeep, (size_t)O, sizeof *bias, e);
    float *scales = kept(keep, nkeep, 2, sizeof *scales, e);
    int32_t *zeros = kept(keep, nkeep, 2, sizeof *zeros, e);
    if (!w16 || !wscale || !bias || !scales || !zeros)
        return -1;
    int fits8 = 1;
    for (int o = 0; o < O; o++) {
        int64_t zp = x->nzero ? x->zero_point[x->nzero > 1 ? o : 0] : 0;
        wscale[o] = x->scale[x->nscale > 1 ? o : 0];
        for (int i = 0; i < I; i++)
            for (int y = 0; y < K; y++)
                for (int xx = 0; xx < K; xx++) {
                    /* OHWI (conv, and [out, in] for a fully connected layer), 1HWC (depthwise) */
                    size_t at = c->dw ? (size_t)(y * K + xx) * O + o : ((size_t)(o * K + y) * K + xx) * I + i;
                    int64_t q = x->type == TL_TFL_UINT8 ? d[at] : (int8_t)d[at];
                    int64_t v = q - zp;
                    if (v < -255 || v > 255)
                        return tl_fail(e, "tflite: --keep-int8: a weight of op %d minus its zero point is %lld", c->op,
                                       (long long)v);
                    w16[((size_t)(o * I + i) * K + y) * K + xx] = (int16_t)v;
                    fits8 &= v >= -128 && v <= 127;
                }
    }
    if (c->b >= 0) {
        const tl_tfl_tensor *b = tl_tfl_t(m, tl_tfl_const_source(m, c->b));
        memcpy(bias, m->buffers[b->buffer].data, (size_t)O * 4);
    } else {
        memset(bias, 0, (size_t)O * 4);
    }
    const tl_tfl_tensor *in = tl_tfl_t(m, c->in), *out = tl_tfl_t(m, c->out);
    scales[0] = in->scale[0];
    scales[1] = out->scale[0];
    zeros[0] = zero_u8(in);
    zeros[1] = zero_u8(out);

    int64_t shape[4] = {O, I, K, K}, cs[1] = {O};
    int ndim = 4;
    if (!c->bn[0]) { /* the classifier: a Linear [classes, features] */
        shape[1] = c->cin;
        ndim = 2;
    }
    const void *wdata = w16;
    if (fits8) {
        int8_t *w8 = kept(keep, nkeep, n, 1, e);
        if (!w8)
            return -1;
        for (size_t k = 0; k < n; k++)
            w8[k] = (int8_t)w16[k];
        wdata = w8;
    }
    if (tl_st_add(wr, c->wname, fits8 ? TL_I8 : TL_I16, ndim, shape, wdata, e))
        return -1;
    size_t base = strlen(c->wname) - strlen(".weight");
    const struct {
        const char *suffix;
        tl_dtype dt;
        int ndim;
        const void *data;
    } ex[] = {{".weight_scale", TL_F32, 1, wscale}, {".bias_int32", TL_I32, 1, bias},
              {".input_scale", TL_F32, 0, &scales[0]}, {".input_zero_point", TL_I32, 0, &zeros[0]},
              {".output_scale", TL_F32, 0, &scales[1]}, {".output_zero_point", TL_I32, 0, &zeros[1]}};
    for (size_t k = 0; k < sizeof ex / sizeof *ex; k++) {
        char *name = kept(keep, nkeep, base + 32, 1, e);
        if (!name)
            return -1;
        snprintf(name, base + 32, "%.*s%s", (int)base, c->wname, ex[k].suffix);
        if (tl_st_add(wr, name, ex[k].dt, ex[k].ndim, cs, ex[k].data, e))
            return -1;
    }
    return 0;
}

int tl_tfl_int8_pooling(const tl_tflite *m, const tl_tfl_plan *p, char *buf, size_t n, tl_err *e)
{
    const tl_tfl_tensor *y = tl_tfl_t(m, p->pool_out);
    const char *rule = m->ops[p->pool_op].code == TL_TFL_MEAN ? "mean" : "average_pool";
    int len = snprintf(buf, n, "{\"rule\": \"%s\", \"scale\": %.9g, \"zero_point\": %d, \"int8\": %s}", rule,
                       (double)y->scale[0], zero_u8(y), y->type == TL_TFL_INT8 ? "true" : "false");
    if (len < 0 || (size_t)len >= n)
        return tl_fail(e, "tflite: pooling metadata too long");
    return 0;
}

const char *tl_tfl_int8_multiplier(const tl_tflite *m, const tl_tfl_plan *p)
{
    /* TFLite's uint8 convolutions take input scale x weight scale in float
     * (GetQuantizedConvolutionMultipler), its int8 per-channel ones in double */
    return tl_tfl_t(m, p->conv[0].in)->type == TL_TFL_UINT8 ? "float_product" : "double";
}
