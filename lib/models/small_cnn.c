/* A small CNN for training from scratch: the baseline a pretrained
 * backbone has to beat. Three blocks of two 3x3 convolutions (BN + ReLU
 * after each) and a 2x2 max-pool, 32/64/128 channels, then global average
 * pooling, dropout 0.2 and a linear classifier: about 0.29 M parameters
 * with 1 input channel and 10 classes.
 *
 * Any input from 8x8 works (the pools floor: 28 -> 14 -> 7 -> 3); the
 * global pooling makes the head independent of the input size. It costs
 * 29 M multiply-adds at 28x28 grey and 1.9 G at 224x224 RGB (every
 * convolution runs at 1, 1/2 and 1/4 of the input resolution).
 *
 * Parameter names are those of this PyTorch module, so checkpoints load
 * there too:
 *
 *   def block(cin, cout):
 *       return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
 *                            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
 *                            nn.MaxPool2d(2))
 *   features = nn.Sequential(block(in_channels, 32), block(32, 64), block(64, 128))
 *   avgpool = nn.AdaptiveAvgPool2d(1)
 *   classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(128, num_classes))
 *
 * Named layers: "features.0", "features.1", "features.2" (after each
 * block's pool), "avgpool" (the default features) and "classifier.1". */
#include "models.h"

#include <stdio.h>
#include <string.h>

static int conv_bn_relu(tl_model *m, int x, int block, int index, int cout, float eps, tl_err *e)
{
    char name[TL_NAME_MAX];
    snprintf(name, sizeof name, "features.%d.%d", block, index);
    x = tl_model_conv(m, x, name, cout, 3, 1, 1, 0, e);
    snprintf(name, sizeof name, "features.%d.%d", block, index + 1);
    if (x >= 0)
        x = tl_model_bn(m, x, name, eps, e);
    if (x >= 0)
        x = tl_model_act(m, x, TL_ACT_RELU, e);
    return x;
}

tl_model *tl_build_small_cnn(const char *arch, const tl_arch_opts *o, tl_err *e)
{
    if (strcmp(arch, "small_cnn")) {
        tl_fail(e, "unknown small cnn variant '%s'", arch);
        return NULL;
    }
    static const int widths[3] = {32, 64, 128};
    float eps = tl_arch_bn_eps(o, 1e-5f);
    tl_model *m = tl_model_new(arch, o->in_channels, o->input_h, o->input_w, e);
    if (!m)
        return NULL;
    int x = 0;
    for (int b = 0; b < 3; b++) {
        char name[32];
        x = conv_bn_relu(m, x, b, 0, widths[b], eps, e);
        if (x >= 0)
            x = conv_bn_relu(m, x, b, 3, widths[b], eps, e);
        if (x >= 0)
            x = tl_model_pool(m, x, 1, 2, 2, 0, 0, e);
        snprintf(name, sizeof name, "features.%d", b);
        if (x < 0 || tl_model_name(m, x, name, e))
            goto fail;
    }
    if (tl_models_pool_classifier(m, x, "avgpool", "classifier.1", o, 0.2f, e))
        goto fail;
    return m;
fail:
    tl_fail_prefix(e, "%s at %dx%d", arch, o->input_w, o->input_h);
    tl_model_free(m);
    return NULL;
}
