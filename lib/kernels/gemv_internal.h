/* Internal to gemv.c: the per-path column sums of one packed block. */
#ifndef TL_KERNELS_GEMV_INTERNAL_H
#define TL_KERNELS_GEMV_INTERNAL_H

#include "simd.h"

/* y[jr0..jr1) (= or += when add) the sums of x[0..kc) times columns
 * jr0..jr1 of a block packed by tl_gemm_pack_bt (slivers of the path's nr
 * columns, kc steps of nr values each; jr0 a multiple of nr), each summed
 * as the path's micro-kernel sums its column. */
void tl_gemv_block_avx2(int kc, const float *x, const float *blk, int jr0, int jr1, float *y, int add);
void tl_gemv_block_avx512(int kc, const float *x, const float *blk, int jr0, int jr1, float *y, int add);

#endif
