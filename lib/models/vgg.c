/* VGG-11/13/16/19, with or without batch norm, exactly as torchvision 0.14
 * builds them: features.N indices as in its nn.Sequential, adaptive
 * average pooling to 7x7 (so any input of at least 32 pixels works), and
 * the classifier Linear(25088, 4096), ReLU, Dropout, Linear(4096, 4096),
 * ReLU, Dropout, Linear(4096, classes).
 *
 * Named layers follow torchvision's module indices, so a name means what
 * that module outputs in PyTorch: every ReLU and max-pool "features.N",
 * "avgpool" (512x7x7), "classifier.0" and "classifier.3" (the linear maps,
 * before their ReLU), "classifier.1" and "classifier.4" (after it) and
 * "classifier.6" (logits). The default features are "classifier.4", the
 * 4096-d penultimate activations practitioners take from VGG. Without a
 * classifier (num_classes 0) the network ends there. */
#include "models.h"

#include <stdio.h>
#include <string.h>

#define M 0 /* max-pool in a configuration */

static const int cfg_a[] = {64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M, -1};
static const int cfg_b[] = {64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M, -1};
static const int cfg_d[] = {64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M, -1};
static const int cfg_e[] = {64,  64,  M,   128, 128, M,   256, 256, 256, 256, M,
                            512, 512, 512, 512, M,   512, 512, 512, 512, M,   -1};

static int named(tl_model *m, int x, const char *fmt, int i, tl_err *e)
{
    char name[TL_NAME_MAX];
    snprintf(name, sizeof name, fmt, i);
    if (x < 0 || tl_model_name(m, x, name, e))
        return -1;
    return x;
}

static int linear(tl_model *m, int x, int index, int out, tl_err *e)
{
    char name[TL_NAME_MAX];
    snprintf(name, sizeof name, "classifier.%d", index);
    if (x >= 0)
        x = tl_model_linear(m, x, name, out, e);
    return named(m, x, "classifier.%d", index, e);
}

tl_model *tl_build_vgg(const char *arch, const tl_arch_opts *o, tl_err *e)
{
    static const struct {
        const char *name;
        const int *cfg;
    } cfgs[] = {{"vgg11", cfg_a}, {"vgg13", cfg_b}, {"vgg16", cfg_d}, {"vgg19", cfg_e}};
    const int *cfg = NULL;
    size_t len = strcspn(arch, "_");
    int bn = !strcmp(arch + len, "_bn");
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++)
        if (strlen(cfgs[i].name) == len && !strncmp(arch, cfgs[i].name, len))
            cfg = cfgs[i].cfg;
    if (!cfg || (arch[len] && !bn)) {
        tl_fail(e, "unknown vgg variant '%s'", arch);
        return NULL;
    }
    float eps = tl_arch_bn_eps(o, 1e-5f), p = tl_arch_dropout(o, 0.5f);
    tl_model *m = tl_model_new(arch, o->in_channels, o->input_h, o->input_w, e);
    if (!m)
        return NULL;
    int x = 0, index = 0;
    char name[TL_NAME_MAX];
    for (const int *v = cfg; *v >= 0; v++) {
        if (*v == M) {
            x = tl_model_pool(m, x, 1, 2, 2, 0, 0, e);
            if (named(m, x, "features.%d", index++, e) < 0)
                goto fail;
            continue;
        }
        snprintf(name, sizeof name, "features.%d", index++);
        x = tl_model_conv(m, x, name, *v, 3, 1, 1, 1, e);
        if (x >= 0 && bn) {
            snprintf(name, sizeof name, "features.%d", index++);
            x = tl_model_bn(m, x, name, eps, e);
        }
        if (x >= 0)
            x = tl_model_act(m, x, TL_ACT_RELU, e);
        if (named(m, x, "features.%d", index++, e) < 0)
            goto fail;
    }
    x = tl_model_adaptive_avgpool(m, x, 7, 7, e);
    if (named(m, x, "avgpool", 0, e) < 0)
        goto fail;
    for (int layer = 0; layer < 2; layer++) {
        x = linear(m, x, 3 * layer, 4096, e);
        if (x >= 0)
            x = tl_model_act(m, x, TL_ACT_RELU, e);
        if (named(m, x, "classifier.%d", 3 * layer + 1, e) < 0)
            goto fail;
        m->features_node = x;
        if (layer == 1 && o->num_classes <= 0)
            break;
        if (p > 0 && (x = tl_model_dropout(m, x, p, e)) < 0)
            goto fail;
    }
    if (o->num_classes > 0) {
        x = linear(m, x, 6, o->num_classes, e);
        if (x < 0)
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
