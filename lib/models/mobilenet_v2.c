/* MobileNetV2 exactly as torchvision 0.14 builds it (names and shapes of
 * its state_dict), optionally with TensorFlow SAME padding for TFLite
 * imports. */
#include "models.h"

#include <math.h>
#include <stdio.h>


static int inverted_residual(tl_model *m, int x, int index, int cout, int stride, int expand, float eps,
                             tl_err *e)
{
    char p[TL_NAME_MAX];
    int cin = m->nodes[x].c;
    int hidden = (int)lround(cin * (double)expand);
    int in = x, layer = 0;
    if (expand != 1) {
        snprintf(p, sizeof p, "features.%d.conv.%d", index, layer++);
        x = tl_block_conv_bn_act(m, x, p, hidden, 1, 1, 1, TL_ACT_RELU6, eps, e);
    }
    snprintf(p, sizeof p, "features.%d.conv.%d", index, layer++);
    if (x >= 0)
        x = tl_block_conv_bn_act(m, x, p, hidden, 3, stride, hidden, TL_ACT_RELU6, eps, e);
    snprintf(p, sizeof p, "features.%d.conv.%d", index, layer++);
    if (x >= 0)
        x = tl_model_conv(m, x, p, cout, 1, 1, 1, 0, e);
    snprintf(p, sizeof p, "features.%d.conv.%d", index, layer++);
    if (x >= 0)
        x = tl_model_bn(m, x, p, eps, e);
    if (x >= 0 && stride == 1 && cin == cout)
        x = tl_model_add(m, x, in, e);
    return x;
}

tl_model *tl_build_mobilenet_v2(const char *arch, const tl_arch_opts *o, tl_err *e)
{
    (void)arch;
    float eps = tl_arch_bn_eps(o, 1e-5f);
    static const int setting[7][4] = {
        /* expand, channels, repeats, stride */
        {1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
    };
    tl_model *m = tl_model_new("mobilenet_v2", o->in_channels, o->input_h, o->input_w, e);
    if (!m)
        return NULL;
    m->tf_same = o->tf_same;
    float w = o->width_mult;
    int last_channel = tl_make_divisible(1280 * (w > 1 ? w : 1.0), 8);
    int x = tl_block_conv_bn_act(m, 0, "features.0", tl_make_divisible(32 * w, 8), 3, 2, 1, TL_ACT_RELU6, eps, e);
    char name[32];
    if (x < 0 || tl_model_name(m, x, "features.0", e))
        goto fail;
    int index = 1;
    for (int s = 0; s < 7; s++) {
        int cout = tl_make_divisible(setting[s][1] * w, 8);
        for (int r = 0; r < setting[s][2]; r++, index++) {
            x = inverted_residual(m, x, index, cout, r == 0 ? setting[s][3] : 1, setting[s][0], eps, e);
            snprintf(name, sizeof name, "features.%d", index);
            if (x < 0 || tl_model_name(m, x, name, e))
                goto fail;
        }
    }
    snprintf(name, sizeof name, "features.%d", index);
    x = tl_block_conv_bn_act(m, x, name, last_channel, 1, 1, 1, TL_ACT_RELU6, eps, e);
    if (x < 0 || tl_model_name(m, x, name, e))
        goto fail;
    if (tl_models_pool_classifier(m, x, "avgpool", "classifier.1", o, 0.2f, e))
        goto fail;
    return m;
fail:
    tl_model_free(m);
    return NULL;
}
