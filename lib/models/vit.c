/* Vision Transformers exactly as torchvision 0.14 builds them (vit_b_16),
 * plus the smaller ViT-Ti/16 and ViT-S/16 with timm's dimensions under the
 * same torchvision parameter names. Tokens are stored (tokens, 1, width). */
#include "models.h"
#include "vit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int width, depth, heads, mlp;
} vit_config;

static const vit_config configs[] = {
    {"vit_ti_16", 192, 12, 3, 768},
    {"vit_s_16", 384, 12, 6, 1536},
    {"vit_b_16", 768, 12, 12, 3072},
};

enum { PATCH = 16 };

/* torchvision's LayerNorm in every ViT block and at the end. */
#define VIT_LN_EPS 1e-6f

/* tl_model_conv pads by (k-1)/2; the patch embedding is unpadded. */
static int patch_embedding(tl_model *m, int d, tl_err *e)
{
    int x = tl_model_conv(m, 0, "conv_proj", d, PATCH, PATCH, 1, 1, e);
    if (x < 0)
        return -1;
    tl_node *n = &m->nodes[x];
    n->geom.pad_t = n->geom.pad_b = n->geom.pad_l = n->geom.pad_r = 0;
    tl_conv_geom_finish(&n->geom);
    n->h = n->geom.oh;
    n->w = n->geom.ow;
    return x;
}

static int encoder_block(tl_model *m, int x, int i, const vit_config *c, tl_err *e)
{
    char p[48], name[TL_NAME_MAX];
    snprintf(p, sizeof p, "encoder.layers.encoder_layer_%d", i);
    int in = x;
    snprintf(name, sizeof name, "%s.ln_1", p);
    x = tl_model_layernorm(m, x, name, VIT_LN_EPS, e);
    snprintf(name, sizeof name, "%s.self_attention", p);
    if (x >= 0)
        x = tl_model_attention(m, x, name, c->heads, e);
    if (x >= 0)
        x = tl_model_add(m, x, in, e);
    if (x < 0)
        return -1;
    int mid = x;
    snprintf(name, sizeof name, "%s.ln_2", p);
    x = tl_model_layernorm(m, x, name, VIT_LN_EPS, e);
    snprintf(name, sizeof name, "%s.mlp.0", p);
    if (x >= 0)
        x = tl_model_token_linear(m, x, name, c->mlp, e);
    if (x >= 0)
        x = tl_model_act(m, x, TL_ACT_GELU, e);
    snprintf(name, sizeof name, "%s.mlp.3", p);
    if (x >= 0)
        x = tl_model_token_linear(m, x, name, c->width, e);
    if (x >= 0)
        x = tl_model_add(m, mid, x, e);
    snprintf(name, sizeof name, "encoder_layer_%d", i);
    if (x < 0 || tl_model_name(m, x, name, e))
        return -1;
    return x;
}

tl_model *tl_build_vit(const char *arch, const tl_arch_opts *o, tl_err *e)
{
    const vit_config *c = NULL;
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++)
        if (!strcmp(configs[i].name, arch))
            c = &configs[i];
    if (!c) {
        tl_fail(e, "unknown vision transformer '%s'", arch);
        return NULL;
    }
    if (o->input_w % PATCH || o->input_h % PATCH) {
        tl_fail(e, "%s: input size %dx%d is not a multiple of the patch size %d", arch, o->input_w, o->input_h,
                PATCH);
        return NULL;
    }
    tl_model *m = tl_model_new(arch, o->in_channels, o->input_h, o->input_w, e);
    if (!m)
        return NULL;
    int x = patch_embedding(m, c->width, e);
    if (x < 0 || tl_model_name(m, x, "conv_proj", e))
        goto fail;
    x = tl_model_tokens(m, x, "class_token", "encoder.pos_embedding", e);
    if (x < 0)
        goto fail;
    for (int i = 0; i < c->depth; i++)
        if ((x = encoder_block(m, x, i, c, e)) < 0)
            goto fail;
    x = tl_model_layernorm(m, x, "encoder.ln", VIT_LN_EPS, e);
    if (x < 0 || tl_model_name(m, x, "encoder.ln", e))
        goto fail;
    /* The default features: the class token after the final norm, which
     * is what torchvision feeds the head. */
    x = tl_model_select_token(m, x, e);
    if (x < 0 || tl_model_name(m, x, "cls_token", e))
        goto fail;
    m->features_node = x;
    if (o->num_classes > 0) {
        float p = tl_arch_dropout(o, 0.0f);
        if (p > 0)
            x = tl_model_dropout(m, x, p, e);
        if (x >= 0)
            x = tl_model_linear(m, x, "heads.head", o->num_classes, e);
        if (x < 0 || tl_model_name(m, x, "heads.head", e))
            goto fail;
        m->logits_node = x;
        m->num_classes = o->num_classes;
    }
    if (tl_model_finalize(m, e))
        goto fail;
    return m;
fail:
    tl_model_free(m);
    return NULL;
}

/* PyTorch's cubic convolution weights (a = -0.75) for the four taps
 * around a sample at fraction t past its left neighbour. */
static void cubic_weights(double t, double w[4])
{
    const double a = -0.75;
    double x1 = t + 1, x2 = 1 - t, x3 = 2 - t;
    w[0] = ((a * x1 - 5 * a) * x1 + 8 * a) * x1 - 4 * a;
    w[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
    w[2] = ((a + 2) * x2 - (a + 3)) * x2 * x2 + 1;
    w[3] = ((a * x3 - 5 * a) * x3 + 8 * a) * x3 - 4 * a;
}

/* For output index i of an n -> m resize with align_corners=True: the
 * first of the four source taps (clamped later) and their weights. */
static int source_taps(int i, int n, int m, double w[4])
{
    double scale = m > 1 ? (double)(n - 1) / (m - 1) : 0.0;
    double real = scale * i;
    int base = (int)floor(real);
    cubic_weights(real - base, w);
    return base - 1;
}

static int clampi(int v, int hi) { return v < 0 ? 0 : v > hi ? hi : v; }

int tl_vit_resize_pos_embedding(const float *src, int sgh, int sgw, float *dst, int dgh, int dgw, int d, tl_err *e)
{
    if (sgh < 1 || sgw < 1 || dgh < 1 || dgw < 1)
        return tl_fail(e, "cannot resize a position embedding grid of %dx%d to %dx%d", sgw, sgh, dgw, dgh);
    if (d < 1)
        return tl_fail(e, "position embedding width %d", d);
    memcpy(dst, src, (size_t)d * sizeof(float));
    if (sgh == dgh && sgw == dgw) {
        memcpy(dst + d, src + d, (size_t)sgh * sgw * d * sizeof(float));
        return 0;
    }
    const float *grid = src + d;
    for (int oy = 0; oy < dgh; oy++) {
        double wy[4];
        int y0 = source_taps(oy, sgh, dgh, wy);
        for (int ox = 0; ox < dgw; ox++) {
            double wx[4];
            int x0 = source_taps(ox, sgw, dgw, wx);
            float *out = dst + (size_t)(1 + oy * dgw + ox) * d;
            for (int j = 0; j < d; j++) {
                double s = 0;
                for (int ky = 0; ky < 4; ky++) {
                    const float *row = grid + (size_t)clampi(y0 + ky, sgh - 1) * sgw * d;
                    double r = 0;
                    for (int kx = 0; kx < 4; kx++)
                        r += wx[kx] * row[(size_t)clampi(x0 + kx, sgw - 1) * d + j];
                    s += wy[ky] * r;
                }
                out[j] = (float)s;
            }
        }
    }
    return 0;
}
