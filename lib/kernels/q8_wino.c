/* Exact integer Winograd F(2x2,3x3) for int8 3x3 stride-1 convolutions on
 * the AVX2 and AVX-512BW paths (direct there costs one vpmaddwd per two
 * products; this takes 16 per 2x2 outputs instead of 36 per them).
 *
 * With the raw uint8 input d (a 4x4 tile, padding = the zero point, as
 * the direct path reads it) and integer weights g (3x3, |g| <= 255):
 *   V  = B^T d B        B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *                       entries 0/+-1: |V| <= 4 * 255, an int16
 *   U' = (2G) g (2G)^T  2G = [2 0 0; 1 1 1; 1 -1 1; 0 0 2]
 *                       integers, |U'| <= 9 * 255, an int16
 *   M' = sum over input channels of U' .* V   (vpmaddwd into int32)
 *   Y' = A^T M' A       A^T = [1 1 1 0; 0 1 -1 -1]
 * and Y' = 4 Y exactly, Y the convolution's sum. M' may overflow int32,
 * but int32 arithmetic is exact modulo 2^32 and only adds, subtracts and
 * multiplies, so Y' is right modulo 2^32; a layer takes this path only
 * when |4 Y| <= 4 * 255 * sum |g| < 2^31 for every output channel, so Y'
 * IS 4 Y and Y' >> 2 is the direct path's sum: the same bytes after the
 * same requantisation (bias, zero point and multiplier as direct). */
#include "q8_internal.h"

#include <stdlib.h>

int tl_q8_wino_fits(const tl_q8_conv *c, const int16_t *w)
{
    const tl_conv_geom *g = &c->g;
    if (c->dw || g->kh != 3 || g->kw != 3 || g->stride_h != 1 || g->stride_w != 1 || g->dil_h != 1 ||
        g->dil_w != 1 || c->cs_in % 16 || g->oh < 2 || g->ow < 2)
        return 0;
    if (c->level != TL_SIMD_AVX2 && c->level != TL_SIMD_AVX512)
        return 0;
    for (int o = 0; o < g->cout; o++) {
        int64_t s = 0;
        for (int k = 0; k < g->cin * 9; k++)
            s += abs(w[(size_t)o * g->cin * 9 + k]);
        if (4 * 255 * s >= (1ll << 31))
            return 0;
    }
    return 1;
}

/* U' per output channel group: [group][position 16][cs_in/2][16 channels][2 inputs]. */
int tl_q8_wino_pack(tl_q8_conv *c, const int16_t *w, tl_err *e)
{
    static const int g2[4][3] = {{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};
    const tl_conv_geom *g = &c->g;
    int kp = c->cs_in / 2;
    c->gstride = (size_t)16 * kp * 32;
    size_t n = c->gstride * c->ngroups + 32;
    c->w16 = tl_xalloc(n, sizeof(int16_t), e);
    if (!c->w16)
        return -1;
    memset(c->w16, 0, n * sizeof(int16_t));
    for (int o = 0; o < g->cout; o++)
        for (int ci = 0; ci < g->cin; ci++) {
            const int16_t *k = w + ((size_t)o * g->cin + ci) * 9;
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) {
                    int u = 0;
                    for (int i = 0; i < 3; i++)
                        for (int j = 0; j < 3; j++)
                            u += g2[a][i] * k[i * 3 + j] * g2[b][j];
                    c->w16[(size_t)(o / 16) * c->gstride + ((size_t)(a * 4 + b) * kp + ci / 2) * 32 + (o % 16) * 2 +
                           ci % 2] = (int16_t)u;
                }
        }
    return 0;
}

static int tiles_of(const tl_q8_conv *c) { return (c->g.oh + 1) / 2 * ((c->g.ow + 1) / 2); }

/* Tiles transformed at a time: V of a band stays within Q8_WINO_BAND_BYTES
 * (in cache while every output channel group reads it) and the scratch
 * does not grow with the map; a whole number of products blocks, so a
 * band's register tiles are the same as without bands (and the bytes). */
#define Q8_WINO_BAND_BYTES (256 << 10)
static int band_tiles(const tl_q8_conv *c)
{
    size_t per = (size_t)16 * c->cs_in * sizeof(int16_t);
    int nb = (int)(Q8_WINO_BAND_BYTES / per / Q8_WINO_NT);
    return (nb < 1 ? 1 : nb) * Q8_WINO_NT;
}

/* V of one band, then the products of Q8_WINO_NT tiles at a time. */
size_t tl_q8_wino_scratch_bytes(const tl_q8_conv *c)
{
    size_t nt = (size_t)(tiles_of(c) + 1) / 2 * 2, bt = (size_t)band_tiles(c);
    nt = nt < bt ? nt : bt;
    return 16 * nt * c->cs_in * sizeof(int16_t) + (size_t)Q8_WINO_GMAX * Q8_WINO_NT * 256 * sizeof(int32_t) + 64;
}

void tl_q8_wino_forward(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int part, int nparts, void *scratch)
{
    int units = (tiles_of(c) + Q8_WINO_MR - 1) / Q8_WINO_MR;
    int t0 = units * part / nparts * Q8_WINO_MR, t1 = units * (part + 1) / nparts * Q8_WINO_MR;
    if (t1 > tiles_of(c))
        t1 = tiles_of(c);
    if (t0 >= t1)
        return;
    const int bt = band_tiles(c);
    for (int b0 = t0; b0 < t1; b0 += bt) {
        int n = t1 - b0 < bt ? t1 - b0 : bt, nr = (n + 1) / 2 * 2; /* the register tiles take 6, 4 or 2 tiles */
        int16_t *v = scratch;
        int32_t *m = (int32_t *)(void *)(v + (size_t)16 * nr * c->cs_in);
        size_t ps = (size_t)nr * c->cs_in;
        tl_q8_wino_in_avx2(c, x, b0, nr, v);
        for (int g0 = 0; g0 < c->ngroups;) {
            int ng = c->level == TL_SIMD_AVX512 ? (c->ngroups - g0 >= Q8_WINO_GMAX ? Q8_WINO_GMAX : 1) : 1;
            for (int b = 0; b < nr; b += Q8_WINO_NT) {
                int nb = nr - b < Q8_WINO_NT ? nr - b : Q8_WINO_NT;
                if (c->level == TL_SIMD_AVX512)
                    tl_q8_wino_gemm_avx512(c, v + (size_t)b * c->cs_in, ps, g0, ng, nb, m);
                else
                    tl_q8_wino_gemm_avx2(c, v + (size_t)b * c->cs_in, ps, g0, nb, m);
                for (int j = 0; j < ng; j++)
                    tl_q8_wino_out_avx2(c, m + (size_t)j * Q8_WINO_NT * 256, g0 + j, b0 + b, n - b < nb ? n - b : nb,
                                        y);
            }
            g0 += ng;
        }
    }
}
