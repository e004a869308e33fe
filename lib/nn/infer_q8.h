/* The int8 inference engine for models with a quantisation attached
 * (tl_model.quant): same contract as tl_infer (infer.h), which hands such
 * models here. */
#ifndef TL_NN_INFER_Q8_H
#define TL_NN_INFER_Q8_H

#include "model.h"

typedef struct tl_q8_infer tl_q8_infer;

/* exact: the float convolutions on the direct algorithms (tl_infer_new_exact) */
tl_q8_infer *tl_q8_infer_new(const tl_model *m, int nthreads, const int *outputs, int noutputs, int exact,
                             tl_err *e);
void tl_q8_infer_free(tl_q8_infer *q);
void tl_q8_infer_run(tl_q8_infer *q, tl_pool *pool, int nimg, const float *input, float *const *out);
size_t tl_q8_infer_worker_bytes(const tl_q8_infer *q);
/* Float linear layers over this many floats drop their packed copy and pack
 * per run (tl_infer_set_linear_pack_max; planning keeps those up to 2^24). */
void tl_q8_infer_set_linear_pack_max(tl_q8_infer *q, size_t floats);
/* Convolution and linear steps that run in int8 (for reports and tests). */
int tl_q8_infer_int8_steps(const tl_q8_infer *q);
/* Steps computing in float (convolutions, linear layers, batch norms,
 * activations, additions, other operations), not counting conversions. */
int tl_q8_infer_float_steps(const tl_q8_infer *q);
/* The uint8 range [qmin, qmax] an output of scale and zero point may take
 * after activation act (ReLU clips at the zero point, ReLU6 also at 6). */
void tl_q8_act_range(int act, float scale, int zero, int *qmin, int *qmax);

#endif
