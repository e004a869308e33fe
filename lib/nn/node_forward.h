#ifndef TL_NN_NODE_FORWARD_H
#define TL_NN_NODE_FORWARD_H

#include "model.h"

/* Runs node n on one image (x = in[0]'s value, x2 = in[1]'s or NULL) when
 * it is a pooling, concatenation, scaling or token operation; returns 0
 * for any other operation, which the caller handles. */
int tl_node_forward_plain(const tl_model *m, const tl_node *n, const float *x, const float *x2, float *y);

#endif
