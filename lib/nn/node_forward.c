/* The per-image forward of operations without parameters to fold or
 * statistics to keep, shared by inference and the training tape. */
#include "node_forward.h"

#include <string.h>

int tl_node_forward_plain(const tl_model *m, const tl_node *n, const float *x, const float *x2, float *y)
{
    const tl_node *src = &m->nodes[n->in[0]];
    switch (n->op) {
    case TL_OP_MAXPOOL: tl_maxpool2d(&n->pool, x, y); return 1;
    case TL_OP_AVGPOOL: tl_avgpool2d(&n->pool, x, y); return 1;
    case TL_OP_ADAPTIVE_AVGPOOL: tl_adaptive_avgpool(src->c, src->h, src->w, n->h, n->w, x, y); return 1;
    case TL_OP_GAP: tl_global_avgpool(src->c, src->h * src->w, x, y); return 1;
    case TL_OP_CONCAT: {
        size_t a = (size_t)tl_node_size(src);
        tl_concat_forward(a, (size_t)tl_node_size(n) - a, x, x2, y);
        return 1;
    }
    case TL_OP_SCALE: tl_scale_forward(n->c, n->h * n->w, x, x2, y); return 1;
    case TL_OP_TOKENS:
        tl_tokens_forward(n->w, n->c - 1, x, m->params[n->extra[0]].data, m->params[n->extra[1]].data, y);
        return 1;
    case TL_OP_SELECT_TOKEN: memcpy(y, x, (size_t)n->c * sizeof(float)); return 1;
    default: return 0;
    }
}
