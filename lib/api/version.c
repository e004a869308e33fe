/* Version and SIMD path (tl.h). */
#include "tl.h"
#include "kernels/kernels.h"

TL_API const char *tl_version(void) { return TL_VERSION; }

TL_API const char *tl_simd_path(void)
{
    static const char *const names[] = {[TL_SIMD_SCALAR] = "scalar", [TL_SIMD_AVX2] = "avx2",
                                        [TL_SIMD_AVX512] = "avx512", [TL_SIMD_AVX512VNNI] = "avx512vnni"};
    int level = tl_simd_level();
    return level >= 0 && level < (int)(sizeof names / sizeof names[0]) ? names[level] : "scalar";
}
