/* Test-only kernels (tests/unit/kernels_ref.c), linked into every unit test. */
#ifndef TL_TEST_KERNELS_REF_H
#define TL_TEST_KERNELS_REF_H

#include "kernels/kernels.h"

/* The scalar batch norm in training mode: tl_batchnorm_train_forward's and
 * _backward's contract in the plainest loops. */
void tl_bn_train_forward_ref(int n, int c, int hw, const float *x, const float *gamma, const float *beta, float eps,
                             float *y, float *mean, float *var_biased, float *invstd, int c0, int c1);
void tl_bn_train_backward_ref(int n, int c, int hw, const float *x, const float *dy, const float *gamma,
                              const float *mean, const float *invstd, float *dx, float *dgamma, float *dbeta, int c0,
                              int c1);
/* tl_conv_forward_packed with the weights packed on each call (aborts when
 * out of memory). */
void conv_forward_once(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w, const float *bias, int act,
                         float *y);

#endif
