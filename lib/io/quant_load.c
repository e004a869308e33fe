#include "quant_load.h"
#include "json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const extras[] = {".weight_scale", ".bias_int32", ".input_scale", ".input_zero_point",
                                     ".output_scale", ".output_zero_point"};

int tl_quant_is_extra_tensor(const char *name)
{
    size_t n = strlen(name);
    for (size_t k = 0; k < sizeof extras / sizeof *extras; k++) {
        size_t s = strlen(extras[k]);
        if (n > s && !strcmp(name + n - s, extras[k]))
            return 1;
    }
    return 0;
}

/* "P.weight" -> "P" + suffix */
static void sibling(const char *weight_name, const char *suffix, char *out, size_t n)
{
    size_t len = strlen(weight_name);
    if (len > 7 && !strcmp(weight_name + len - 7, ".weight"))
        len -= 7;
    snprintf(out, n, "%.*s%s", (int)len, weight_name, suffix);
}

static int int_at(const tl_st_tensor *t, int64_t i)
{
    if (t->dtype == TL_I8)
        return ((const int8_t *)t->data)[i];
    int16_t v;
    memcpy(&v, (const char *)t->data + 2 * i, 2);
    return v;
}

static const tl_st_tensor *scales_of(const tl_st_file *f, const tl_st_tensor *t, tl_err *e)
{
    char name[512];
    sibling(t->name, ".weight_scale", name, sizeof name);
    const tl_st_tensor *s = tl_st_find(f, name);
    if (!s)
        return NULL;
    if (s->dtype != TL_F32 || s->ndim != 1 || t->ndim < 1 || s->shape[0] != t->shape[0]) {
        tl_fail(e, "tensor '%s' must be F32 with one scale per output channel of '%s'", name, t->name);
        return NULL;
    }
    return s;
}

int tl_quant_dequantize(const tl_st_file *f, const tl_st_tensor *t, float *dst, tl_err *e)
{
    if (t->dtype != TL_I8 && t->dtype != TL_I16)
        return 0;
    tl_err none = {0};
    const tl_st_tensor *s = scales_of(f, t, &none);
    if (!s) {
        if (none.msg[0])
            return *e = none, -1;
        return 0;
    }
    int64_t rows = t->shape[0], per = t->numel / (rows ? rows : 1);
    for (int64_t o = 0; o < rows; o++) {
        float sc;
        memcpy(&sc, (const char *)s->data + 4 * o, 4);
        for (int64_t j = 0; j < per; j++)
            dst[o * per + j] = (float)int_at(t, o * per + j) * sc;
    }
    return 1;
}

static int scalar(const tl_st_file *f, const char *wname, const char *suffix, int want_int, double *out, tl_err *e)
{
    char name[512];
    sibling(wname, suffix, name, sizeof name);
    const tl_st_tensor *t = tl_st_find(f, name);
    if (!t)
        return tl_fail(e, "int8 checkpoint: tensor '%s' is missing", name);
    if (t->numel != 1 || (want_int ? t->dtype != TL_I32 : t->dtype != TL_F32))
        return tl_fail(e, "int8 checkpoint: tensor '%s' must be one %s value", name, want_int ? "I32" : "F32");
    if (want_int) {
        int32_t v;
        memcpy(&v, t->data, 4);
        if (v < 0 || v > 255)
            return tl_fail(e, "int8 checkpoint: zero point '%s' = %d is outside 0..255", name, v);
        *out = v;
    } else {
        float v;
        memcpy(&v, t->data, 4);
        if (!(v > 0) || !isfinite(v))
            return tl_fail(e, "int8 checkpoint: scale '%s' must be positive", name);
        *out = v;
    }
    return 0;
}

/* The batch norm a quantised convolution folds must be the identity plus
 * a bias (the bias already lives in bias_int32). */
static int check_bn_identity(const tl_model *m, int conv, tl_err *e)
{
    if (conv + 1 >= m->nnodes || m->nodes[conv + 1].op != TL_OP_BN || m->nodes[conv + 1].in[0] != conv)
        return 0;
    const tl_node *bn = &m->nodes[conv + 1];
    for (int c = 0; c < bn->c; c++) {
        float g = m->params[bn->weight].data[c], mu = m->params[bn->running_mean].data[c];
        float var = m->params[bn->running_var].data[c];
        if (g != 1.0f || mu != 0.0f || fabsf(var + bn->eps - 1.0f) > 1e-6f)
            return tl_fail(e, "int8 checkpoint: batch norm '%s' is not folded into its convolution",
                           m->params[bn->weight].name);
    }
    return 0;
}

/* tl.quant.pooling = {"rule": "mean"|"average_pool", "scale": S, "zero_point": Z[, "int8": B]} */
static int read_pooling(tl_quant *q, const tl_st_file *f, tl_err *e)
{
    const char *s = tl_st_meta(f, "tl.quant.pooling");
    if (!s)
        return 0;
    tl_json j;
    if (tl_json_parse(s, strlen(s), &j, e))
        return tl_fail_prefix(e, "int8 checkpoint: tl.quant.pooling");
    const tl_json *rule = tl_json_get(&j, "rule"), *sc = tl_json_get(&j, "scale"), *zp = tl_json_get(&j, "zero_point");
    int rc = 0;
    if (!rule || rule->type != TL_JSON_STRING || !sc || sc->type != TL_JSON_NUMBER || !zp ||
        zp->type != TL_JSON_NUMBER || !(sc->number > 0) || !isfinite(sc->number) || zp->number != floor(zp->number) ||
        zp->number < 0 || zp->number > 255)
        rc = tl_fail(e, "int8 checkpoint: tl.quant.pooling must hold a rule, a positive scale and a zero point in "
                        "0..255");
    else if (!strcmp(rule->string, "mean"))
        q->pool_rule = TL_QPOOL_MEAN;
    else if (!strcmp(rule->string, "average_pool"))
        q->pool_rule = TL_QPOOL_AVERAGE;
    else
        rc = tl_fail(e, "int8 checkpoint: tl.quant.pooling: unknown rule '%s'", rule->string);
    const tl_json *i8 = tl_json_get(&j, "int8");
    if (!rc && i8 && i8->type != TL_JSON_BOOL)
        rc = tl_fail(e, "int8 checkpoint: tl.quant.pooling: \"int8\" must be true or false");
    if (!rc) {
        q->pool_scale = (float)sc->number;
        q->pool_zero = (int)zp->number;
        q->pool_int8 = i8 && i8->number != 0;
    }
    tl_json_free(&j);
    return rc;
}

int tl_quant_attach(tl_model *m, const tl_st_file *f, tl_err *e)
{
    tl_quant *q = calloc(1, sizeof *q);
    if (!q)
        return tl_fail(e, "out of memory");
    q->layer_of_node = malloc((size_t)m->nnodes * sizeof *q->layer_of_node);
    q->layers = calloc((size_t)m->nnodes, sizeof *q->layers);
    if (!q->layer_of_node || !q->layers) {
        tl_quant_free(q);
        return tl_fail(e, "out of memory");
    }
    for (int i = 0; i < m->nnodes; i++) {
        q->layer_of_node[i] = -1;
        const tl_node *n = &m->nodes[i];
        if ((n->op != TL_OP_CONV && n->op != TL_OP_LINEAR) || n->weight < 0)
            continue;
        const tl_param *p = &m->params[n->weight];
        const tl_st_tensor *t = tl_st_find(f, p->name);
        if (!t || (t->dtype != TL_I8 && t->dtype != TL_I16))
            continue;
        const tl_st_tensor *s = scales_of(f, t, e);
        if (!s)
            goto fail;
        tl_qlayer *L = &q->layers[q->nlayers];
        L->node = i;
        int64_t cout = t->shape[0];
        L->w = malloc((size_t)t->numel * sizeof *L->w);
        L->wscale = malloc((size_t)cout * sizeof *L->wscale);
        L->bias = malloc((size_t)cout * sizeof *L->bias);
        q->nlayers++;
        if (!L->w || !L->wscale || !L->bias) {
            tl_fail(e, "out of memory");
            goto fail;
        }
        for (int64_t k = 0; k < t->numel; k++) {
            int v = int_at(t, k);
            if (v < -255 || v > 255) {
                tl_fail(e, "int8 checkpoint: weight '%s' holds %d, outside -255..255", p->name, v);
                goto fail;
            }
            L->w[k] = (int16_t)v;
        }
        memcpy(L->wscale, s->data, (size_t)cout * 4);
        char name[512];
        sibling(p->name, ".bias_int32", name, sizeof name);
        const tl_st_tensor *b = tl_st_find(f, name);
        if (!b || b->dtype != TL_I32 || b->numel != cout) {
            tl_fail(e, "int8 checkpoint: tensor '%s' (I32, one per output channel) is missing or malformed", name);
            goto fail;
        }
        memcpy(L->bias, b->data, (size_t)cout * 4);
        /* The engine sums in int32: bias plus the largest sum the weights
         * can make (|q - zero| <= 255) must fit, as it always does for a
         * real network; a crafted bias must not overflow. */
        int64_t per = cout ? t->numel / cout : 0;
        for (int64_t o = 0; o < cout; o++) {
            int64_t most = llabs((long long)L->bias[o]);
            for (int64_t k = 0; k < per; k++)
                most += 255 * (int64_t)abs(L->w[o * per + k]);
            if (most > INT32_MAX) {
                tl_fail(e, "int8 checkpoint: '%s' of output channel %lld overflows int32 sums", name, (long long)o);
                goto fail;
            }
        }
        double v[4];
        if (scalar(f, p->name, ".input_scale", 0, &v[0], e) || scalar(f, p->name, ".input_zero_point", 1, &v[1], e) ||
            scalar(f, p->name, ".output_scale", 0, &v[2], e) || scalar(f, p->name, ".output_zero_point", 1, &v[3], e))
            goto fail;
        L->in_scale = (float)v[0];
        L->in_zero = (int)v[1];
        L->out_scale = (float)v[2];
        L->out_zero = (int)v[3];
        if (n->op == TL_OP_CONV && check_bn_identity(m, i, e))
            goto fail;
        q->layer_of_node[i] = q->nlayers - 1;
    }
    if (!q->nlayers) {
        tl_quant_free(q);
        return tl_fail(e, "int8 checkpoint without a quantised layer");
    }
    for (int i = 0; i < m->nnodes; i++)
        if (!tl_quant_op_supported(m->nodes[i].op) && m->nodes[i].op != TL_OP_INPUT) {
            tl_quant_free(q);
            return tl_fail(e, "int8 checkpoint: %s has operations the int8 engine does not run", m->arch);
        }
    const char *mrule = tl_st_meta(f, "tl.quant.multiplier");
    if (mrule && strcmp(mrule, "double") && strcmp(mrule, "float_product")) {
        tl_quant_free(q);
        return tl_fail(e, "int8 checkpoint: tl.quant.multiplier '%s' is neither double nor float_product", mrule);
    }
    q->mult_f32 = mrule && !strcmp(mrule, "float_product");
    if (read_pooling(q, f, e)) {
        tl_quant_free(q);
        return -1;
    }
    m->quant = q;
    return 0;
fail:
    tl_quant_free(q);
    return -1;
}
