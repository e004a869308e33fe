#include "transfer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tl_transfer_weights(tl_model *dst, const tl_model *src, int keep_head, uint64_t seed, int *kept, tl_err *e)
{
    /* the classifier's node: the logits layer, or SqueezeNet's 1x1
     * convolution before the pooling that makes the logits */
    int cn = tl_model_classifier_node(dst);
    const tl_node *head = cn >= 0 ? &dst->nodes[cn] : NULL;
    int new_head = 0;
    for (int i = 0; i < dst->nparams; i++) {
        tl_param *p = &dst->params[i];
        int in_head = head && (i == head->weight || i == head->bias);
        int j = tl_model_find_param(src, p->name);
        if (in_head && (!keep_head || j < 0 || src->params[j].numel != p->numel)) {
            new_head = 1;
            continue;
        }
        if (j < 0 || src->params[j].numel != p->numel)
            return tl_fail(e, "parameter '%s' is missing or has another size", p->name);
        memcpy(p->data, src->params[j].data, (size_t)p->numel * sizeof(float));
    }
    if (new_head)
        tl_model_init_classifier(dst, seed);
    *kept = keep_head && !new_head;
    return 0;
}

void tl_lr_spread(int ngroups, double lr, double *out)
{
    int nb = ngroups - 1; /* backbone groups */
    for (int g = 0; g < nb; g++) {
        double depth = nb > 1 ? (double)(nb - 1 - g) / (double)(nb - 1) : 0.0;
        char s[40];
        snprintf(s, sizeof s, "%.9g", lr * 0.1 * pow(0.1, depth));
        out[g] = strtod(s, NULL);
    }
    char s[40];
    snprintf(s, sizeof s, "%.9g", lr);
    out[nb] = strtod(s, NULL);
}

void tl_freeze_mask_until(const tl_model *m, int until, unsigned char *mask)
{
    memset(mask, 0, (size_t)m->nparams);
    for (int i = 0; i <= until && i < m->nnodes; i++) {
        const tl_node *nd = &m->nodes[i];
        int ps[6] = {nd->weight, nd->bias, nd->running_mean, nd->running_var, nd->extra[0], nd->extra[1]};
        for (int k = 0; k < 6; k++)
            if (ps[k] >= 0 && ps[k] < m->nparams)
                mask[ps[k]] = 1;
    }
}

void tl_freeze_plan(tl_model *m, int ngroups, int until_node, int head_only, int unfreeze_every,
                    unsigned char *mask)
{
    if (until_node >= 0)
        tl_freeze_mask_until(m, until_node, mask);
    else
        memset(mask, 0, (size_t)m->nparams);
    if (head_only)
        for (int i = 0; i < m->nparams; i++)
            mask[i] = m->params[i].group != ngroups - 1;
    for (int i = 0; i < m->nparams; i++)
        m->params[i].frozen = mask[i] || (unfreeze_every > 0 && m->params[i].group < ngroups - 1);
}
