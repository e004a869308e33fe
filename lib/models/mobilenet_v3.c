/* MobileNetV3 small and large exactly as torchvision 0.14 builds them
 * (names and shapes of its state_dict; BN eps 0.001).
 *
 * The head is pooled before its first Linear: features.N (1x1 conv, BN,
 * hard-swish), avgpool (the default features, 576 or 960 values),
 * classifier.0 (Linear to 1024 or 1280), hard-swish (named classifier.1,
 * the 1024/1280 "pre-logits" timm returns), dropout, classifier.3 (the
 * logits). A backbone (num_classes 0) keeps classifier.0 and its
 * hard-swish: like timm's num_classes=0, only the last Linear goes. */
#include "models.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    short in, k, exp, out, se, hs, stride;
} bneck;

/* torchvision's _mobilenet_v3_conf at width 1: input channels, kernel,
 * expanded channels, output channels, squeeze-excitation, hard-swish
 * (else ReLU), stride. */
static const bneck large[] = {
    {16, 3, 16, 16, 0, 0, 1},     {16, 3, 64, 24, 0, 0, 2},     {24, 3, 72, 24, 0, 0, 1},
    {24, 5, 72, 40, 1, 0, 2},     {40, 5, 120, 40, 1, 0, 1},    {40, 5, 120, 40, 1, 0, 1},
    {40, 3, 240, 80, 0, 1, 2},    {80, 3, 200, 80, 0, 1, 1},    {80, 3, 184, 80, 0, 1, 1},
    {80, 3, 184, 80, 0, 1, 1},    {80, 3, 480, 112, 1, 1, 1},   {112, 3, 672, 112, 1, 1, 1},
    {112, 5, 672, 160, 1, 1, 2},  {160, 5, 960, 160, 1, 1, 1},  {160, 5, 960, 160, 1, 1, 1},
};
static const bneck small[] = {
    {16, 3, 16, 16, 1, 0, 2},  {16, 3, 72, 24, 0, 0, 2},   {24, 3, 88, 24, 0, 0, 1},  {24, 5, 96, 40, 1, 1, 2},
    {40, 5, 240, 40, 1, 1, 1}, {40, 5, 240, 40, 1, 1, 1},  {40, 5, 120, 48, 1, 1, 1}, {48, 5, 144, 48, 1, 1, 1},
    {48, 5, 288, 96, 1, 1, 2}, {96, 5, 576, 96, 1, 1, 1},  {96, 5, 576, 96, 1, 1, 1},
};



static int adjust(int c, double w) { return tl_make_divisible(c * w, 8); }

static int inverted_residual(tl_model *m, int x, int index, const bneck *b, double w, float eps, tl_err *e)
{
    char p[TL_NAME_MAX];
    int in = x, cin = m->nodes[x].c, exp = adjust(b->exp, w), out = adjust(b->out, w), layer = 0;
    int act = b->hs ? TL_ACT_HARDSWISH : TL_ACT_RELU;
    if (exp != cin) {
        snprintf(p, sizeof p, "features.%d.block.%d", index, layer++);
        x = tl_block_conv_bn_act(m, x, p, exp, 1, 1, 1, act, eps, e);
    }
    snprintf(p, sizeof p, "features.%d.block.%d", index, layer++);
    if (x >= 0)
        x = tl_block_conv_bn_act(m, x, p, exp, b->k, b->stride, exp, act, eps, e);
    if (x >= 0 && b->se) {
        snprintf(p, sizeof p, "features.%d.block.%d", index, layer++);
        x = tl_block_squeeze_excite(m, x, p, tl_make_divisible(exp / 4, 8), TL_ACT_RELU, TL_ACT_HARDSIGMOID, e);
    }
    snprintf(p, sizeof p, "features.%d.block.%d", index, layer++);
    if (x >= 0)
        x = tl_block_conv_bn_act(m, x, p, out, 1, 1, 1, TL_ACT_NONE, eps, e);
    if (x >= 0 && b->stride == 1 && cin == out)
        x = tl_model_add(m, x, in, e);
    return x;
}

tl_model *tl_build_mobilenet_v3(const char *arch, const tl_arch_opts *o, tl_err *e)
{
    const bneck *cfg;
    int nblocks, last_channel;
    if (!strcmp(arch, "mobilenet_v3_large")) {
        cfg = large, nblocks = (int)(sizeof large / sizeof large[0]), last_channel = 1280;
    } else if (!strcmp(arch, "mobilenet_v3_small")) {
        cfg = small, nblocks = (int)(sizeof small / sizeof small[0]), last_channel = 1024;
    } else {
        tl_fail(e, "unknown MobileNetV3 variant '%s'", arch);
        return NULL;
    }
    float eps = tl_arch_bn_eps(o, 1e-3f);
    float p = tl_arch_dropout(o, 0.2f);
    double w = o->width_mult;
    tl_model *m = tl_model_new(arch, o->in_channels, o->input_h, o->input_w, e);
    if (!m)
        return NULL;
    m->tf_same = o->tf_same;
    char name[32];
    int x = tl_block_conv_bn_act(m, 0, "features.0", adjust(cfg[0].in, w), 3, 2, 1, TL_ACT_HARDSWISH, eps, e);
    if (x < 0 || tl_model_name(m, x, "features.0", e))
        goto fail;
    for (int i = 0; i < nblocks; i++) {
        x = inverted_residual(m, x, i + 1, &cfg[i], w, eps, e);
        snprintf(name, sizeof name, "features.%d", i + 1);
        if (x < 0 || tl_model_name(m, x, name, e))
            goto fail;
    }
    snprintf(name, sizeof name, "features.%d", nblocks + 1);
    x = tl_block_conv_bn_act(m, x, name, 6 * m->nodes[x].c, 1, 1, 1, TL_ACT_HARDSWISH, eps, e);
    if (x < 0 || tl_model_name(m, x, name, e))
        goto fail;
    x = tl_model_gap(m, x, e);
    if (x < 0 || tl_model_name(m, x, "avgpool", e))
        goto fail;
    m->features_node = x;
    x = tl_model_linear(m, x, "classifier.0", adjust(last_channel, w), e);
    if (x >= 0)
        x = tl_model_act(m, x, TL_ACT_HARDSWISH, e);
    if (x < 0 || tl_model_name(m, x, "classifier.1", e))
        goto fail;
    if (o->num_classes > 0) {
        if (p > 0)
            x = tl_model_dropout(m, x, p, e);
        if (x >= 0)
            x = tl_model_linear(m, x, "classifier.3", o->num_classes, e);
        if (x < 0 || tl_model_name(m, x, "classifier.3", e))
            goto fail;
        m->logits_node = x;
        m->num_classes = o->num_classes;
    }
    /* torchvision trains MobileNetV3 with BN momentum 0.01. */
    for (int i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == TL_OP_BN)
            m->nodes[i].momentum = 0.01f;
    if (tl_model_finalize(m, e))
        goto fail;
    return m;
fail:
    tl_model_free(m);
    return NULL;
}
