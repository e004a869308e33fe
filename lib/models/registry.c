#include "models.h"

#include <string.h>

void tl_arch_opts_default(tl_arch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->num_classes = 1000;
    o->width_mult = 1.0f;
    o->input_w = o->input_h = 224;
    o->in_channels = 3;
    o->dropout = -1.0f;
    o->bn_eps = 0.0f;
}

float tl_arch_dropout(const tl_arch_opts *o, float arch_default) { return o->dropout < 0 ? arch_default : o->dropout; }
float tl_arch_bn_eps(const tl_arch_opts *o, float arch_default) { return o->bn_eps > 0 ? o->bn_eps : arch_default; }

/* The zoo, one entry per architecture: its name, the family builder, the
 * timm parameter names (NULL: none) and how it is initialised from scratch. */
typedef struct {
    const char *name;
    tl_model *(*build)(const char *arch, const tl_arch_opts *o, tl_err *e);
    int (*timm_name)(const char *arch, const char *tv_name, char *out, size_t n);
    tl_init_policy init;
} arch_entry;

static const arch_entry archs[] = {
    {"mobilenet_v2", tl_build_mobilenet_v2, tl_timm_name_mobilenet, TL_INIT_MOBILE},
    {"mobilenet_v1", tl_build_mobilenet_v1, NULL, TL_INIT_MOBILE},
    {"mobilenet_v3_small", tl_build_mobilenet_v3, tl_timm_name_mobilenet, TL_INIT_MOBILE},
    {"mobilenet_v3_large", tl_build_mobilenet_v3, tl_timm_name_mobilenet, TL_INIT_MOBILE},
    {"resnet18", tl_build_resnet, tl_timm_name_resnet, TL_INIT_RESNET},
    {"resnet34", tl_build_resnet, tl_timm_name_resnet, TL_INIT_RESNET},
    {"resnet50", tl_build_resnet, tl_timm_name_resnet, TL_INIT_RESNET},
    {"resnet101", tl_build_resnet, tl_timm_name_resnet, TL_INIT_RESNET},
    {"resnet152", tl_build_resnet, tl_timm_name_resnet, TL_INIT_RESNET},
    {"vgg11", tl_build_vgg, tl_timm_name_vgg, TL_INIT_VGG},
    {"vgg11_bn", tl_build_vgg, tl_timm_name_vgg, TL_INIT_VGG},
    {"vgg13", tl_build_vgg, tl_timm_name_vgg, TL_INIT_VGG},
    {"vgg13_bn", tl_build_vgg, tl_timm_name_vgg, TL_INIT_VGG},
    {"vgg16", tl_build_vgg, tl_timm_name_vgg, TL_INIT_VGG},
    {"vgg16_bn", tl_build_vgg, tl_timm_name_vgg, TL_INIT_VGG},
    {"vgg19", tl_build_vgg, tl_timm_name_vgg, TL_INIT_VGG},
    {"vgg19_bn", tl_build_vgg, tl_timm_name_vgg, TL_INIT_VGG},
    {"squeezenet1_0", tl_build_squeezenet, NULL, TL_INIT_SQUEEZE},
    {"squeezenet1_1", tl_build_squeezenet, NULL, TL_INIT_SQUEEZE},
    {"efficientnet_b0", tl_build_efficientnet, tl_timm_name_efficientnet, TL_INIT_EFFICIENT},
    {"efficientnet_b1", tl_build_efficientnet, tl_timm_name_efficientnet, TL_INIT_EFFICIENT},
    {"efficientnet_b2", tl_build_efficientnet, tl_timm_name_efficientnet, TL_INIT_EFFICIENT},
    {"efficientnet_b3", tl_build_efficientnet, tl_timm_name_efficientnet, TL_INIT_EFFICIENT},
    {"vit_ti_16", tl_build_vit, tl_timm_name_vit, TL_INIT_VIT},
    {"vit_s_16", tl_build_vit, tl_timm_name_vit, TL_INIT_VIT},
    {"vit_b_16", tl_build_vit, tl_timm_name_vit, TL_INIT_VIT},
    {"small_cnn", tl_build_small_cnn, NULL, TL_INIT_MOBILE},
};

#define NARCHS ((int)(sizeof archs / sizeof archs[0]))

int tl_arch_count(void) { return NARCHS; }

const char *tl_arch_name(int i) { return i >= 0 && i < NARCHS ? archs[i].name : NULL; }

static const arch_entry *find(const char *arch)
{
    for (int i = 0; i < NARCHS; i++)
        if (!strcmp(archs[i].name, arch))
            return &archs[i];
    return NULL;
}

tl_model *tl_arch_build(const char *arch, const tl_arch_opts *o, tl_err *e)
{
    if (o->input_w < 8 || o->input_w > 4096 || o->input_h < 8 || o->input_h > 4096) {
        tl_fail(e, "input size %dx%d out of range (8..4096 each side)", o->input_w, o->input_h);
        return NULL;
    }
    if (!(o->width_mult > 0.05f && o->width_mult <= 4.0f)) {
        tl_fail(e, "width multiplier %g out of range", (double)o->width_mult);
        return NULL;
    }
    const arch_entry *a = find(arch);
    if (!a) {
        tl_fail(e, "unknown architecture '%s' (tl-info --archs lists them)", arch);
        return NULL;
    }
    return a->build(arch, o, e);
}

tl_init_policy tl_arch_init_policy(const char *arch)
{
    const arch_entry *a = find(arch);
    return a ? a->init : TL_INIT_OTHER;
}

int tl_timm_name(const char *arch, const char *tv_name, char *out, size_t n)
{
    const arch_entry *a = find(arch);
    return a && a->timm_name ? a->timm_name(arch, tv_name, out, n) : -1;
}

int tl_make_divisible(double v, int divisor)
{
    int nv = (int)(v + divisor / 2.0) / divisor * divisor;
    if (nv < divisor)
        nv = divisor;
    if (nv < 0.9 * v)
        nv += divisor;
    return nv;
}
