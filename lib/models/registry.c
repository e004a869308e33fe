#include "models.h"

#include <string.h>

void tl_arch_opts_default(tl_arch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->num_classes = 1000;
    o->width_mult = 1.0f;
    o->input_size = 224;
    o->in_channels = 3;
    o->dropout = 0.2f;
    o->bn_eps = 1e-5f;
}

typedef struct {
    const char *name;
    tl_model *(*build)(const tl_arch_opts *o, tl_err *e);
} arch_entry;

static const arch_entry archs[] = {
    {"mobilenet_v2", tl_build_mobilenet_v2},
    {"mobilenet_v1", tl_build_mobilenet_v1},
};

static const char *const arch_names[] = {"mobilenet_v2", "mobilenet_v1", NULL};

const char *const *tl_arch_names(void) { return arch_names; }

tl_model *tl_arch_build(const char *arch, const tl_arch_opts *o, tl_err *e)
{
    if (o->input_size < 8 || o->input_size > 4096) {
        tl_fail(e, "input size %d out of range (8..4096)", o->input_size);
        return NULL;
    }
    if (!(o->width_mult > 0.05f && o->width_mult <= 4.0f)) {
        tl_fail(e, "width multiplier %g out of range", (double)o->width_mult);
        return NULL;
    }
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(archs[i].name, arch))
            return archs[i].build(o, e);
    tl_fail(e, "unknown architecture '%s'", arch);
    return NULL;
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
