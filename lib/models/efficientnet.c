/* EfficientNet B0-B3 exactly as torchvision 0.14 builds them (names and
 * shapes of its state_dict; BatchNorm2d's default eps 1e-5 for V1).
 *
 * features.0 is the stem, features.1..7 the stages (each a Sequential of
 * MBConv blocks: the stage output is named "features.k", its blocks
 * "features.k.j"), features.8 the 1x1 head conv, then avgpool (the default
 * features), dropout and classifier.1. Stochastic depth is the identity at
 * inference. */
#include "models.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    double width, depth;
    float dropout;
} variant;

static const variant variants[] = {
    {"efficientnet_b0", 1.0, 1.0, 0.2f},
    {"efficientnet_b1", 1.0, 1.1, 0.2f},
    {"efficientnet_b2", 1.1, 1.2, 0.3f},
    {"efficientnet_b3", 1.2, 1.4, 0.3f},
};

/* torchvision's MBConvConfig list for B0: expand ratio, kernel, stride,
 * input channels, output channels, blocks. */
static const struct {
    short expand, k, stride, in, out, layers;
} stages[7] = {
    {1, 3, 1, 32, 16, 1}, {6, 3, 2, 16, 24, 2},   {6, 5, 2, 24, 40, 2},  {6, 3, 2, 40, 80, 3},
    {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4}, {6, 3, 1, 192, 320, 1},
};



/* MBConv: [1x1 expand], depthwise, squeeze-excitation (squeeze = a quarter
 * of the block's input channels), 1x1 project; residual when the shape
 * is kept. */
static int mbconv(tl_model *m, int x, const char *prefix, int cout, int expand, int k, int stride, float eps,
                  tl_err *e)
{
    char p[TL_NAME_MAX];
    int in = x, cin = m->nodes[x].c, layer = 0;
    int hidden = tl_make_divisible((double)cin * expand, 8);
    if (hidden != cin) {
        snprintf(p, sizeof p, "%s.block.%d", prefix, layer++);
        x = tl_block_conv_bn_act(m, x, p, hidden, 1, 1, 1, TL_ACT_SILU, eps, e);
    }
    snprintf(p, sizeof p, "%s.block.%d", prefix, layer++);
    if (x >= 0)
        x = tl_block_conv_bn_act(m, x, p, hidden, k, stride, hidden, TL_ACT_SILU, eps, e);
    snprintf(p, sizeof p, "%s.block.%d", prefix, layer++);
    if (x >= 0)
        x = tl_block_squeeze_excite(m, x, p, cin / 4 > 1 ? cin / 4 : 1, TL_ACT_SILU, TL_ACT_SIGMOID, e);
    snprintf(p, sizeof p, "%s.block.%d", prefix, layer++);
    if (x >= 0)
        x = tl_block_conv_bn_act(m, x, p, cout, 1, 1, 1, TL_ACT_NONE, eps, e);
    if (x >= 0 && stride == 1 && cin == cout)
        x = tl_model_add(m, x, in, e);
    return x;
}

tl_model *tl_build_efficientnet(const char *arch, const tl_arch_opts *o, tl_err *e)
{
    const variant *v = NULL;
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        if (!strcmp(arch, variants[i].name))
            v = &variants[i];
    if (!v) {
        tl_fail(e, "unknown EfficientNet variant '%s'", arch);
        return NULL;
    }
    float eps = tl_arch_bn_eps(o, 1e-5f);
    tl_model *m = tl_model_new(arch, o->in_channels, o->input_h, o->input_w, e);
    if (!m)
        return NULL;
    m->tf_same = o->tf_same;
    char name[48], prefix[48];
    int x = tl_block_conv_bn_act(m, 0, "features.0", tl_make_divisible(stages[0].in * v->width, 8), 3, 2, 1, TL_ACT_SILU,
                        eps, e);
    if (x < 0 || tl_model_name(m, x, "features.0", e))
        goto fail;
    for (int s = 0; s < 7; s++) {
        int cout = tl_make_divisible(stages[s].out * v->width, 8);
        int n = (int)ceil(stages[s].layers * v->depth);
        for (int j = 0; j < n; j++) {
            snprintf(prefix, sizeof prefix, "features.%d.%d", s + 1, j);
            x = mbconv(m, x, prefix, cout, stages[s].expand, stages[s].k, j ? 1 : stages[s].stride, eps, e);
            if (x < 0 || tl_model_name(m, x, prefix, e))
                goto fail;
        }
        /* The stage ends where its last block does; an identity node
         * carries the stage's own name, as one node holds one name. */
        snprintf(name, sizeof name, "features.%d", s + 1);
        x = tl_model_dropout(m, x, 0.0f, e);
        if (x < 0 || tl_model_name(m, x, name, e))
            goto fail;
    }
    x = tl_block_conv_bn_act(m, x, "features.8", 4 * m->nodes[x].c, 1, 1, 1, TL_ACT_SILU, eps, e);
    if (x < 0 || tl_model_name(m, x, "features.8", e))
        goto fail;
    if (tl_models_pool_classifier(m, x, "avgpool", "classifier.1", o, v->dropout, e))
        goto fail;
    return m;
fail:
    tl_model_free(m);
    return NULL;
}
