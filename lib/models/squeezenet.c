/* SqueezeNet 1.0 and 1.1 exactly as torchvision 0.14 builds them. A Fire
 * module is a 1x1 squeeze convolution + ReLU feeding 1x1 and 3x3 expand
 * convolutions (+ ReLU each) whose outputs are concatenated; max pools
 * round up (ceil_mode). The classifier is Dropout, a 1x1 convolution to
 * the classes, ReLU and global average pooling: the logits are pooled
 * ReLU outputs.
 *
 * Named layers follow torchvision's module indices: "features.1" (the
 * stem's ReLU), each max-pool and Fire module "features.N", "features"
 * (the 512 channels of features.12, pooled: the default features),
 * "classifier.1" (the class map before ReLU) and "classifier.3" (logits). */
#include "models.h"

#include <stdio.h>
#include <string.h>

/* The stem convolution has no padding, which tl_model_conv's
 * (k - 1) / 2 rule cannot express: rewrite the geometry after adding it. */
static int conv_unpadded(tl_model *m, int x, const char *prefix, int cout, int k, int stride, tl_err *e)
{
    x = tl_model_conv(m, x, prefix, cout, k, stride, 1, 1, e);
    if (x < 0)
        return -1;
    tl_node *n = &m->nodes[x];
    n->geom.pad_t = n->geom.pad_b = n->geom.pad_l = n->geom.pad_r = 0;
    tl_conv_geom_finish(&n->geom);
    if (n->geom.oh <= 0 || n->geom.ow <= 0)
        return tl_fail(e, "%s: input %dx%d is too small for this network", prefix, n->geom.h, n->geom.w);
    n->h = n->geom.oh;
    n->w = n->geom.ow;
    return x;
}

static int conv_relu(tl_model *m, int x, const char *prefix, const char *part, int cout, int k, tl_err *e)
{
    char name[TL_NAME_MAX];
    snprintf(name, sizeof name, "%s.%s", prefix, part);
    x = tl_model_conv(m, x, name, cout, k, 1, 1, 1, e);
    if (x >= 0)
        x = tl_model_act(m, x, TL_ACT_RELU, e);
    return x;
}

static int fire(tl_model *m, int x, int index, int squeeze, int expand, tl_err *e)
{
    char p[32];
    snprintf(p, sizeof p, "features.%d", index);
    int s = conv_relu(m, x, p, "squeeze", squeeze, 1, e);
    int a = s < 0 ? -1 : conv_relu(m, s, p, "expand1x1", expand, 1, e);
    int b = a < 0 ? -1 : conv_relu(m, s, p, "expand3x3", expand, 3, e);
    x = b < 0 ? -1 : tl_model_concat(m, a, b, e);
    if (x < 0 || tl_model_name(m, x, p, e))
        return -1;
    return x;
}

static int maxpool(tl_model *m, int x, int index, tl_err *e)
{
    char name[TL_NAME_MAX];
    snprintf(name, sizeof name, "features.%d", index);
    x = tl_model_pool(m, x, 1, 3, 2, 0, 1, e);
    if (x < 0 || tl_model_name(m, x, name, e))
        return -1;
    return x;
}

tl_model *tl_build_squeezenet(const char *arch, const tl_arch_opts *o, tl_err *e)
{
    /* Per features.N: squeeze width (0 = max-pool), expand width. */
    static const int v10[13][2] = {{0, 0},    {0, 0},    {0, 0},     {16, 64},   {16, 64},  {32, 128}, {0, 0},
                                   {32, 128}, {48, 192}, {48, 192}, {64, 256}, {0, 0},    {64, 256}};
    static const int v11[13][2] = {{0, 0},    {0, 0},    {0, 0},    {16, 64},  {16, 64},   {0, 0},   {32, 128},
                                   {32, 128}, {0, 0},    {48, 192}, {48, 192}, {64, 256}, {64, 256}};
    int version = !strcmp(arch, "squeezenet1_0") ? 0 : !strcmp(arch, "squeezenet1_1") ? 1 : -1;
    if (version < 0) {
        tl_fail(e, "unknown squeezenet variant '%s'", arch);
        return NULL;
    }
    const int(*cfg)[2] = version ? v11 : v10;
    tl_model *m = tl_model_new(arch, o->in_channels, o->input_h, o->input_w, e);
    if (!m)
        return NULL;
    int x = version ? conv_unpadded(m, 0, "features.0", 64, 3, 2, e) : conv_unpadded(m, 0, "features.0", 96, 7, 2, e);
    if (x >= 0)
        x = tl_model_act(m, x, TL_ACT_RELU, e);
    if (x < 0 || tl_model_name(m, x, "features.1", e))
        goto fail;
    for (int i = 2; i < 13; i++) {
        x = cfg[i][0] ? fire(m, x, i, cfg[i][0], cfg[i][1], e) : maxpool(m, x, i, e);
        if (x < 0)
            goto fail;
    }
    int f = tl_model_gap(m, x, e);
    if (f < 0 || tl_model_name(m, f, "features", e))
        goto fail;
    m->features_node = f;
    if (o->num_classes > 0) {
        float p = tl_arch_dropout(o, 0.5f);
        if (p > 0 && (x = tl_model_dropout(m, x, p, e)) < 0)
            goto fail;
        x = tl_model_conv(m, x, "classifier.1", o->num_classes, 1, 1, 1, 1, e);
        if (x < 0 || tl_model_name(m, x, "classifier.1", e))
            goto fail;
        x = tl_model_act(m, x, TL_ACT_RELU, e);
        if (x >= 0)
            x = tl_model_gap(m, x, e);
        if (x < 0 || tl_model_name(m, x, "classifier.3", e))
            goto fail;
        m->logits_node = x;
        m->num_classes = o->num_classes;
    }
    if (tl_model_finalize(m, e))
        goto fail;
    return m;
fail:
    tl_fail_prefix(e, "%s at %dx%d", arch, o->input_w, o->input_h);
    tl_model_free(m);
    return NULL;
}
