/* The attention's row softmax (tl_softmax_rows_*) on every SIMD path this
 * CPU has: the same bits as the scalar path for row lengths 1 to 70 and
 * 197 (ViT-B/16's tokens), within rounding of a double reference,
 * rows summing to 1; a row with large, equal and -inf logits. */
#include "check.h"
#include "kernels/act_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *paths[] = {"scalar", "avx2", "avx512"};
static const int levels[] = {TL_SIMD_SCALAR, TL_SIMD_AVX2, TL_SIMD_AVX512};

int main(void)
{
    tl_rng r;
    tl_rng_seed(&r, 11);
    enum { ROWS = 3, MAXN = 197 };
    float *x = malloc(sizeof(float) * ROWS * MAXN), *ref = malloc(sizeof(float) * ROWS * MAXN),
          *y = malloc(sizeof(float) * ROWS * MAXN);
    int bad = 0, cmp = 0;
    for (int n = 1; n <= MAXN; n = n < 70 ? n + 1 : MAXN) {
        for (int i = 0; i < ROWS * n; i++)
            x[i] = (tl_rng_uniform(&r) * 2.0f - 1.0f) * 12.0f;
        if (n >= 5) { /* large, tied and -inf logits in the last row */
            x[2 * n] = 1e30f;
            x[2 * n + 1] = 1e30f;
            x[2 * n + 3] = -INFINITY;
        }
        memcpy(ref, x, sizeof(float) * ROWS * n);
        tl_softmax_rows_scalar(ref, ROWS, n);
        for (int row = 0; row < ROWS; row++) {
            const float *xr = x + (size_t)row * n, *yr = ref + (size_t)row * n;
            double mx = xr[0], s = 0, tot = 0;
            for (int i = 1; i < n; i++)
                mx = xr[i] > mx ? xr[i] : mx;
            for (int i = 0; i < n; i++)
                s += exp((double)xr[i] - mx);
            for (int i = 0; i < n; i++) {
                double want = exp((double)xr[i] - mx) / s;
                tot += yr[i];
                /* exp within a few ulp, of x - max rounded to float */
                double tol = (want > 0 ? want * (3e-7 + fabs((double)xr[i] - mx) * 6e-8) : 0) + 1e-37;
                if (!(fabs(yr[i] - want) <= tol)) {
                    if (!bad)
                        fprintf(stderr, "    softmax n=%d row %d [%d] = %.9g, expected %.9g\n", n, row, i, yr[i],
                                want);
                    bad++;
                }
            }
            if (!(fabs(tot - 1.0) <= 1e-6 * n))
                bad++;
        }
        for (int p = 1; p < 3; p++) {
            if (!tl_simd_supported(paths[p]))
                continue;
            memcpy(y, x, sizeof(float) * ROWS * n);
            tl_softmax_rows_for(levels[p])(y, ROWS, n);
            cmp++;
            if (memcmp(y, ref, sizeof(float) * ROWS * n)) {
                int i = 0;
                while (!memcmp(y + i, ref + i, sizeof *y))
                    i++;
                fprintf(stderr, "    softmax %s n=%d: [%d] = %.9g, scalar %.9g\n", paths[p], n, i, y[i], ref[i]);
                bad++;
            }
        }
        if (n == MAXN)
            break;
    }
    CHECK_MSG(bad == 0, "%d bad rows or elements", bad);
    CHECK(cmp > 0 || !tl_simd_supported("avx2"));
    free(x); free(ref); free(y);
    return check_finish("test_softmax_rows");
}
