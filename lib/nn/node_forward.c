/* The per-image forward of operations without parameters to fold or
 * statistics to keep, shared by inference and the training tape. */
#include "node_forward.h"

#include <string.h>

int tl_node_forward_plain(const tl_model *m, const tl_node *n, const float *x, const float *x2, float *y)
{
    const tl_node *src = &m->nodes[n->in[0]];
    size_t hw = (size_t)n->h * n->w;
    switch (n->op) {
    case TL_OP_MAXPOOL: tl_maxpool2d(&n->pool, x, y); return 1;
    case TL_OP_AVGPOOL: tl_avgpool2d(&n->pool, x, y); return 1;
    case TL_OP_ADAPTIVE_AVGPOOL: tl_adaptive_avgpool(src->c, src->h, src->w, n->h, n->w, x, y); return 1;
    case TL_OP_GAP: tl_global_avgpool(src->c, src->h * src->w, x, y); return 1;
    case TL_OP_CONCAT: {
        size_t a = (size_t)tl_node_size(src);
        memcpy(y, x, a * sizeof(float));
        memcpy(y + a, x2, ((size_t)tl_node_size(n) - a) * sizeof(float));
        return 1;
    }
    case TL_OP_SCALE:
        for (int c = 0; c < n->c; c++)
            for (size_t i = 0; i < hw; i++)
                y[c * hw + i] = x[c * hw + i] * x2[c];
        return 1;
    case TL_OP_TOKENS: {
        /* (d, gh, gw) -> token 0 = class token, token 1 + p = patch p. */
        int d = n->w, np = n->c - 1;
        const float *cls = m->params[n->extra[0]].data, *pos = m->params[n->extra[1]].data;
        for (int j = 0; j < d; j++)
            y[j] = cls[j] + pos[j];
        for (int p = 0; p < np; p++)
            for (int j = 0; j < d; j++)
                y[(size_t)(p + 1) * d + j] = x[(size_t)j * np + p] + pos[(size_t)(p + 1) * d + j];
        return 1;
    }
    case TL_OP_SELECT_TOKEN: memcpy(y, x, (size_t)n->c * sizeof(float)); return 1;
    default: return 0;
    }
}
