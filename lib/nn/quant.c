#include "quant.h"

#include <stdlib.h>

void tl_quant_free(tl_quant *q)
{
    if (!q)
        return;
    for (int i = 0; i < q->nlayers; i++) {
        free(q->layers[i].w);
        free(q->layers[i].wscale);
        free(q->layers[i].bias);
    }
    free(q->layers);
    free(q->layer_of_node);
    free(q);
}

static int sole_reader(const tl_model *m, int node, int reader)
{
    for (int i = node + 1; i < m->nnodes; i++)
        if (i != reader && (m->nodes[i].in[0] == node || m->nodes[i].in[1] == node))
            return 0;
    return m->nodes[reader].in[0] == node && m->nodes[reader].in[1] < 0;
}

int tl_quant_fused_end(const tl_model *m, int node)
{
    int last = node;
    if (m->nodes[node].op == TL_OP_CONV && last + 1 < m->nnodes && m->nodes[last + 1].op == TL_OP_BN &&
        sole_reader(m, last, last + 1))
        last++;
    if (last + 1 < m->nnodes && m->nodes[last + 1].op == TL_OP_ACT && sole_reader(m, last, last + 1) &&
        (m->nodes[last + 1].act == TL_ACT_RELU || m->nodes[last + 1].act == TL_ACT_RELU6))
        last++;
    return last;
}

int tl_quant_op_supported(tl_op op)
{
    switch (op) {
    case TL_OP_CONV: case TL_OP_BN: case TL_OP_ACT: case TL_OP_ADD: case TL_OP_GAP: case TL_OP_LINEAR:
    case TL_OP_DROPOUT: case TL_OP_MAXPOOL: case TL_OP_AVGPOOL: case TL_OP_ADAPTIVE_AVGPOOL: case TL_OP_CONCAT:
    case TL_OP_SCALE:
        return 1;
    default:
        return 0;
    }
}
