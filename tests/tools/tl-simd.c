/* Test driver (not installed): prints the SIMD paths this CPU can run, one
 * per line, lowest first, then "default NAME" for the path kernels take
 * with $TL_SIMD as set. scripts/run-simd.sh runs the suites once per path. */
#include "kernels/kernels.h"

#include <stdio.h>

int main(void)
{
    static const char *const paths[] = {"scalar", "avx2", "avx512", "avx512vnni"};
    for (int i = 0; i < 4; i++)
        if (tl_simd_supported(paths[i]))
            printf("%s\n", paths[i]);
    printf("default %s\n", paths[tl_simd_level()]);
    return 0;
}
