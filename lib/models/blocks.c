/* Building blocks shared by several families, named as torchvision's
 * Conv2dNormActivation and SqueezeExcitation modules name their parts. */
#include "models.h"

#include <stdio.h>

int tl_block_conv_bn_act(tl_model *m, int x, const char *prefix, int cout, int k, int stride, int groups, int act,
                         float eps, tl_err *e)
{
    char name[TL_NAME_MAX + 8];
    snprintf(name, sizeof name, "%s.0", prefix);
    x = tl_model_conv(m, x, name, cout, k, stride, groups, 0, e);
    snprintf(name, sizeof name, "%s.1", prefix);
    if (x >= 0)
        x = tl_model_bn(m, x, name, eps, e);
    if (x >= 0 && act != TL_ACT_NONE)
        x = tl_model_act(m, x, act, e);
    return x;
}

int tl_block_squeeze_excite(tl_model *m, int x, const char *prefix, int squeeze, int inner_act, int gate_act,
                            tl_err *e)
{
    char name[TL_NAME_MAX + 8];
    int s = tl_model_gap(m, x, e);
    snprintf(name, sizeof name, "%s.fc1", prefix);
    if (s >= 0)
        s = tl_model_conv(m, s, name, squeeze, 1, 1, 1, 1, e);
    if (s >= 0)
        s = tl_model_act(m, s, inner_act, e);
    snprintf(name, sizeof name, "%s.fc2", prefix);
    if (s >= 0)
        s = tl_model_conv(m, s, name, m->nodes[x].c, 1, 1, 1, 1, e);
    if (s >= 0)
        s = tl_model_act(m, s, gate_act, e);
    return s < 0 ? -1 : tl_model_scale(m, x, s, e);
}
