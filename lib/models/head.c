/* The tail most torchvision classifiers share: global average pool (the
 * default feature layer), dropout, and a linear classifier. */
#include "models.h"

int tl_models_pool_classifier(tl_model *m, int x, const char *pool_name, const char *fc_name, const tl_arch_opts *o,
                              float default_dropout, tl_err *e)
{
    float p = tl_arch_dropout(o, default_dropout);
    x = tl_model_gap(m, x, e);
    if (x < 0 || tl_model_name(m, x, pool_name, e))
        return -1;
    m->features_node = x;
    if (o->num_classes > 0) {
        if (p > 0)
            x = tl_model_dropout(m, x, p, e);
        if (x >= 0)
            x = tl_model_linear(m, x, fc_name, o->num_classes, e);
        if (x < 0 || tl_model_name(m, x, fc_name, e))
            return -1;
        m->logits_node = x;
        m->num_classes = o->num_classes;
    }
    return tl_model_finalize(m, e);
}
