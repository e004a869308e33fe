/* Per-thread kernel workspace: SIMD path choice and GEMM packing buffers. */
#include "simd.h"

#include <stdlib.h>
#include <string.h>

static int simd_rank(const char *name)
{
    if (!strcmp(name, "scalar"))
        return 0;
    if (!strcmp(name, "avx2"))
        return 1;
    if (!strcmp(name, "avx512"))
        return 2;
    if (!strcmp(name, "avx512vnni"))
        return 3;
    return -1;
}

static int cpu_rank(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
        return __builtin_cpu_supports("avx512vnni") ? 3 : 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return 1;
#endif
    return 0;
}

static const tl_simd_impl *impl_of_rank(int r)
{
    /* VNNI adds integer dot products only: float kernels are AVX-512's */
    return r >= 2 ? &tl_simd_avx512 : r == 1 ? &tl_simd_avx2 : &tl_simd_scalar;
}

int tl_simd_supported(const char *simd)
{
    int r = simd_rank(simd);
    return r >= 0 && r <= cpu_rank();
}

static tl_kws *kws_new_impl(const tl_simd_impl *impl, tl_err *e)
{
    tl_kws *ws = tl_xalloc(1, sizeof *ws, e);
    if (!ws)
        return NULL;
    ws->impl = impl;
    ws->images = 1;
    size_t ncr = (size_t)(impl->nc + impl->nr - 1) / impl->nr * impl->nr;
    ws->pack_a = tl_xalloc((size_t)impl->mr * impl->kc, sizeof(float), e);
    ws->pack_b = ws->pack_a ? tl_xalloc((size_t)impl->kc * ncr, sizeof(float), e) : NULL;
    ws->tile = ws->pack_b ? tl_xalloc((size_t)impl->mr * impl->nr, sizeof(float), e) : NULL;
    if (!ws->tile) {
        tl_kws_free(ws);
        return NULL;
    }
    return ws;
}

int tl_simd_level(void)
{
    int r = cpu_rank();
    const char *want = getenv("TL_SIMD");
    int w = want && *want ? simd_rank(want) : -1;
    return w >= 0 && w < r ? w : r;
}

tl_kws *tl_kws_new_simd(const char *simd, tl_err *e)
{
    int r = simd_rank(simd);
    if (r < 0) {
        tl_fail(e, "unknown simd path '%s' (expected scalar, avx2, avx512 or avx512vnni)", simd);
        return NULL;
    }
    if (r > cpu_rank()) {
        tl_fail(e, "simd path '%s' is not supported by this cpu", simd);
        return NULL;
    }
    return kws_new_impl(impl_of_rank(r), e);
}

tl_kws *tl_kws_new(tl_err *e)
{
    int r = cpu_rank();
    const char *want = getenv("TL_SIMD");
    if (want && *want) {
        int w = simd_rank(want);
        if (w < 0) {
            tl_fail(e, "TL_SIMD='%s' is not one of scalar, avx2, avx512, avx512vnni", want);
            return NULL;
        }
        if (w < r)
            r = w;
    }
    return kws_new_impl(impl_of_rank(r), e);
}

void tl_kws_free(tl_kws *ws)
{
    if (!ws)
        return;
    tl_free(ws->pack_a);
    tl_free(ws->pack_b);
    tl_free(ws->tile);
    tl_free(ws);
}

const char *tl_kws_simd_name(const tl_kws *ws) { return ws->impl->name; }

void tl_kws_set_exact(tl_kws *ws, int exact) { ws->exact = exact != 0; }

void tl_kws_set_images(tl_kws *ws, int n) { ws->images = n > 1 ? n : 1; }
