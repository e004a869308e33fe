/* MobileNetV1 (Howard et al. 2017) as in the TensorFlow release: no
 * torchvision twin, so it is named in the same style as torchvision's
 * Sequential models: features.0 is the stem, features.1..13 the depthwise
 * separable blocks (dw conv .0, BN .1, ReLU6 .2, pw conv .3, BN .4, ReLU6 .5). */
#include "models.h"

#include <stdio.h>

static int channels(int c, float w)
{
    int d = (int)(c * w + 1e-4f); /* TF: int(depth * multiplier), at least 8 */
    return d < 8 ? 8 : d;
}

tl_model *tl_build_mobilenet_v1(const char *arch, const tl_arch_opts *o, tl_err *e)
{
    (void)arch;
    float eps = tl_arch_bn_eps(o, 1e-5f);
    static const int blocks[13][2] = {
        {64, 1}, {128, 2}, {128, 1}, {256, 2}, {256, 1}, {512, 2}, {512, 1},
        {512, 1}, {512, 1}, {512, 1}, {512, 1}, {1024, 2}, {1024, 1},
    };
    tl_model *m = tl_model_new("mobilenet_v1", o->in_channels, o->input_h, o->input_w, e);
    if (!m)
        return NULL;
    m->tf_same = o->tf_same;
    char p[TL_NAME_MAX];
    int x = tl_model_conv(m, 0, "features.0.0", channels(32, o->width_mult), 3, 2, 1, 0, e);
    if (x >= 0)
        x = tl_model_bn(m, x, "features.0.1", eps, e);
    if (x >= 0)
        x = tl_model_act(m, x, TL_ACT_RELU6, e);
    if (x < 0 || tl_model_name(m, x, "features.0", e))
        goto fail;
    for (int b = 0; b < 13; b++) {
        int cin = m->nodes[x].c, cout = channels(blocks[b][0], o->width_mult);
        snprintf(p, sizeof p, "features.%d.0", b + 1);
        x = tl_model_conv(m, x, p, cin, 3, blocks[b][1], cin, 0, e);
        snprintf(p, sizeof p, "features.%d.1", b + 1);
        if (x >= 0)
            x = tl_model_bn(m, x, p, eps, e);
        if (x >= 0)
            x = tl_model_act(m, x, TL_ACT_RELU6, e);
        snprintf(p, sizeof p, "features.%d.3", b + 1);
        if (x >= 0)
            x = tl_model_conv(m, x, p, cout, 1, 1, 1, 0, e);
        snprintf(p, sizeof p, "features.%d.4", b + 1);
        if (x >= 0)
            x = tl_model_bn(m, x, p, eps, e);
        if (x >= 0)
            x = tl_model_act(m, x, TL_ACT_RELU6, e);
        snprintf(p, sizeof p, "features.%d", b + 1);
        if (x < 0 || tl_model_name(m, x, p, e))
            goto fail;
    }
    if (tl_models_pool_classifier(m, x, "avgpool", "classifier.1", o, 0.001f, e))
        goto fail;
    return m;
fail:
    tl_model_free(m);
    return NULL;
}
