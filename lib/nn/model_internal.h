/* For graph builders inside lib/nn only. */
#ifndef TL_NN_MODEL_INTERNAL_H
#define TL_NN_MODEL_INTERNAL_H

#include "model.h"

/* Appends a node reading `in` whose output shape starts as in's. */
tl_node *tl_model_add_node(tl_model *m, tl_op op, int in, tl_err *e);
/* Declares parameter prefix.suffix (just suffix if prefix is empty);
 * returns its index. */
int tl_model_add_param(tl_model *m, const char *prefix, const char *suffix, int ndim, const int64_t *shape,
                       int is_buffer, tl_err *e);

#endif
