/* ResNet-18/34/50/101/152 exactly as torchvision 0.14 builds them (names
 * and shapes of its state_dict): BasicBlock for 18/34, Bottleneck for the
 * deeper ones with the stride on the 3x3 convolution ("ResNet v1.5").
 *
 * Named layers: "maxpool" (end of the stem), "layerN.B" for each block and
 * "layerN" for each stage (both after the block's final ReLU), "avgpool"
 * (the default features) and "fc" (logits). A node carries one name, so a
 * stage's name sits on an identity node after its last block. */
#include "models.h"

#include <stdio.h>
#include <string.h>

static int conv_bn(tl_model *m, int x, const char *conv, const char *bn, int cout, int k, int stride, float eps,
                   int relu, tl_err *e)
{
    x = tl_model_conv(m, x, conv, cout, k, stride, 1, 0, e);
    if (x >= 0)
        x = tl_model_bn(m, x, bn, eps, e);
    if (x >= 0 && relu)
        x = tl_model_act(m, x, TL_ACT_RELU, e);
    return x;
}

/* One residual block; planes is the bottleneck width (output planes * 4)
 * or the BasicBlock's width. */
static int block(tl_model *m, int x, const char *p, int planes, int stride, int bottleneck, float eps, tl_err *e)
{
    char c[TL_NAME_MAX], b[TL_NAME_MAX];
    int in = x, cin = m->nodes[x].c;
    int cout = bottleneck ? planes * 4 : planes;
    if (bottleneck) {
        snprintf(c, sizeof c, "%s.conv1", p);
        snprintf(b, sizeof b, "%s.bn1", p);
        x = conv_bn(m, x, c, b, planes, 1, 1, eps, 1, e);
        snprintf(c, sizeof c, "%s.conv2", p);
        snprintf(b, sizeof b, "%s.bn2", p);
        if (x >= 0)
            x = conv_bn(m, x, c, b, planes, 3, stride, eps, 1, e);
        snprintf(c, sizeof c, "%s.conv3", p);
        snprintf(b, sizeof b, "%s.bn3", p);
        if (x >= 0)
            x = conv_bn(m, x, c, b, cout, 1, 1, eps, 0, e);
    } else {
        snprintf(c, sizeof c, "%s.conv1", p);
        snprintf(b, sizeof b, "%s.bn1", p);
        x = conv_bn(m, x, c, b, planes, 3, stride, eps, 1, e);
        snprintf(c, sizeof c, "%s.conv2", p);
        snprintf(b, sizeof b, "%s.bn2", p);
        if (x >= 0)
            x = conv_bn(m, x, c, b, cout, 3, 1, eps, 0, e);
    }
    if (x >= 0 && (stride != 1 || cin != cout)) {
        snprintf(c, sizeof c, "%s.downsample.0", p);
        snprintf(b, sizeof b, "%s.downsample.1", p);
        in = conv_bn(m, in, c, b, cout, 1, stride, eps, 0, e);
        if (in < 0)
            return -1;
    }
    if (x >= 0)
        x = tl_model_add(m, x, in, e);
    if (x >= 0)
        x = tl_model_act(m, x, TL_ACT_RELU, e);
    if (x >= 0 && tl_model_name(m, x, p, e))
        return -1;
    return x;
}

tl_model *tl_build_resnet(const char *arch, const tl_arch_opts *o, tl_err *e)
{
    static const struct {
        const char *name;
        int bottleneck, blocks[4];
    } cfgs[] = {
        {"resnet18", 0, {2, 2, 2, 2}},  {"resnet34", 0, {3, 4, 6, 3}},   {"resnet50", 1, {3, 4, 6, 3}},
        {"resnet101", 1, {3, 4, 23, 3}}, {"resnet152", 1, {3, 8, 36, 3}},
    };
    int ci = -1;
    for (int i = 0; i < (int)(sizeof cfgs / sizeof cfgs[0]); i++)
        if (!strcmp(arch, cfgs[i].name))
            ci = i;
    if (ci < 0) {
        tl_fail(e, "unknown resnet variant '%s'", arch);
        return NULL;
    }
    float eps = tl_arch_bn_eps(o, 1e-5f);
    tl_model *m = tl_model_new(arch, o->in_channels, o->input_h, o->input_w, e);
    if (!m)
        return NULL;
    int x = conv_bn(m, 0, "conv1", "bn1", 64, 7, 2, eps, 1, e);
    if (x >= 0)
        x = tl_model_pool(m, x, 1, 3, 2, 1, 0, e);
    if (x < 0 || tl_model_name(m, x, "maxpool", e))
        goto fail;
    for (int s = 0; s < 4; s++) {
        char p[48], stage[24];
        snprintf(stage, sizeof stage, "layer%d", s + 1);
        for (int b = 0; b < cfgs[ci].blocks[s]; b++) {
            snprintf(p, sizeof p, "%s.%d", stage, b);
            x = block(m, x, p, 64 << s, b == 0 && s > 0 ? 2 : 1, cfgs[ci].bottleneck, eps, e);
            if (x < 0)
                goto fail;
        }
        x = tl_model_dropout(m, x, 0.0f, e);
        if (x < 0 || tl_model_name(m, x, stage, e))
            goto fail;
    }
    /* torchvision's ResNet has no dropout before fc. */
    if (tl_models_pool_classifier(m, x, "avgpool", "fc", o, 0.0f, e))
        goto fail;
    return m;
fail:
    tl_fail_prefix(e, "%s at %dx%d", arch, o->input_w, o->input_h);
    tl_model_free(m);
    return NULL;
}
