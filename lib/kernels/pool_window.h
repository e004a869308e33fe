/* Window arithmetic shared by the pooling forward and backward kernels, so
 * both passes read exactly the same cells. Internal to lib/kernels. */
#ifndef TL_KERNELS_POOL_WINDOW_H
#define TL_KERNELS_POOL_WINDOW_H

/* Window [*a, *b) of one axis clipped to the input; *padded is its length
 * clipped to the padded input instead (the count_include_pad divisor). */
static inline void tl_pool_window(int o, int k, int s, int pb, int pe, int in, int *a, int *b, int *padded)
{
    int start = o * s - pb, end = start + k;
    int pend = end < in + pe ? end : in + pe;
    *padded = pend - start;
    *a = start < 0 ? 0 : start;
    *b = end < in ? end : in;
}

/* PyTorch adaptive pooling: output cell i of n covers input [*a, *b) of in. */
static inline void tl_adaptive_cell(int i, int n, int in, int *a, int *b)
{
    *a = i * in / n;
    *b = ((i + 1) * in + n - 1) / n;
}

#endif
