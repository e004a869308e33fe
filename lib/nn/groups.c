/* Learning-rate groups for discriminative fine-tuning and progressive
 * unfreezing. One rule for every architecture, so it is predictable: the
 * named stages before the classifier (tl-info lists them) are cut into
 * `parts` consecutive runs of about equal length, earliest first; the
 * classifier (logits layer) is the last group on its own. Parameters
 * between the last stage and the classifier (VGG's hidden linear layers,
 * MobileNetV3's pre-classifier) join the last backbone group. */
#include "model.h"

#include <stdlib.h>

static int named_before(const tl_model *m, int limit, int *count)
{
    int n = 0;
    for (int i = 1; i < limit; i++)
        if (m->nodes[i].name[0])
            n++;
    *count = n;
    return n;
}

int tl_model_assign_groups(tl_model *m, int parts)
{
    if (parts < 1)
        parts = 1;
    /* the head group starts at the classifier's weights (SqueezeNet's
     * convolution before its logits pooling), not at the logits */
    int cls = tl_model_classifier_node(m);
    int limit = cls >= 0 ? cls : m->nnodes, stages;
    named_before(m, limit, &stages);
    if (stages < parts)
        parts = stages > 0 ? stages : 1;
    int *group_of_node = calloc((size_t)m->nnodes, sizeof *group_of_node);
    if (!group_of_node)
        return -1;
    /* Walk backwards: a node belongs to the stage that ends at or after it. */
    int rank = stages, current = parts - 1;
    for (int i = m->nnodes - 1; i >= 0; i--) {
        if (i >= limit) {
            group_of_node[i] = m->logits_node >= 0 ? parts : parts - 1;
            continue;
        }
        if (i > 0 && m->nodes[i].name[0]) {
            rank--;
            current = (int)((int64_t)rank * parts / (stages > 0 ? stages : 1));
        }
        group_of_node[i] = current;
    }
    int ps[4];
    for (int i = 0; i < m->nnodes; i++) {
        const tl_node *n = &m->nodes[i];
        ps[0] = n->weight;
        ps[1] = n->bias;
        ps[2] = n->extra[0];
        ps[3] = n->extra[1];
        for (int k = 0; k < 4; k++)
            if (ps[k] >= 0)
                m->params[ps[k]].group = group_of_node[i];
        if (n->running_mean >= 0)
            m->params[n->running_mean].group = group_of_node[i];
        if (n->running_var >= 0)
            m->params[n->running_var].group = group_of_node[i];
    }
    free(group_of_node);
    return m->logits_node >= 0 ? parts + 1 : parts;
}
