/* Weight gradient of a 3x3 stride-1 convolution through Winograd
 * F(4x4, 3x3), the transpose of winograd.c's forward pass: for the 6x6
 * input window d of each 4x4 output tile and that tile's output gradient
 * dy (zero past the map),
 *     dw += G^T [(A dy A^T) o (B^T d B)] G,
 * which is exactly the gradient of the forward's A^T [(G w G^T) o
 * (B^T d B)] A. Summed over tiles before the G^T . G transform, the
 * products become 36 GEMMs Mw[xi] (cin x cout) += V[xi]^T U[xi] whose
 * inner dimension is the tiles of all the images given: 36 multiply-adds
 * per tile and channel pair instead of the direct 9 x 16 = 144, and small
 * maps (7x7: 4 tiles of 16 for 49 pixels) still give long inner products.
 *
 * The transforms run with the channels as vector lanes: each image is
 * first transposed to pixel-major (hw x c), so a pixel's channels are
 * contiguous, V and U come out tile-major (tiles x channels) and the GEMM
 * reads both without a transposing pack. Lanes: GCC's vector extension,
 * compiled per SIMD path like winograd.c. Everything in float, without
 * multiply-add contraction; the order of every sum is fixed by the images
 * given, never by threads. */
#include "conv_internal.h"
#include "simd.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define NXI 36
#define WG_BUDGET (1 << 21)
/* The 36 planes of V, U and Mw lie this many floats (a cache line) past a
 * multiple of their size: at power-of-two strides the transforms' 36
 * stores per vector of lanes fell into one L1 set (a 64-channel layer
 * ran 1.6x slower). */
#define PLANE_PAD 16 /* floats of V and U per block of tiles */
#define WG_MAX_TILES 128

static int tiles_y(const tl_conv_geom *g) { return (g->oh + 3) / 4; }
static int tiles_x(const tl_conv_geom *g) { return (g->ow + 3) / 4; }

int tl_wgrad_winograd_shape(const tl_conv_geom *g)
{
    return g->kh == 3 && g->kw == 3 && g->stride_h == 1 && g->stride_w == 1 && g->dil_h == 1 && g->dil_w == 1 &&
           g->groups == 1 && g->cin >= 16 && g->cout >= 16 && g->cin % 8 == 0 && g->cout % 8 == 0;
}

int tl_wgrad_winograd_applies(const tl_kws *ws, const tl_conv_geom *g)
{
    return !ws->exact && tl_wgrad_winograd_shape(g);
}

static int block_tiles(const tl_conv_geom *g)
{
    int t = WG_BUDGET / (NXI * (g->cin + g->cout));
    t = t > WG_MAX_TILES ? WG_MAX_TILES : t / 4 * 4;
    return t < 16 ? 16 : t;
}

size_t tl_wgrad_winograd_scratch_floats(const tl_conv_geom *g)
{
    size_t nt = (size_t)block_tiles(g), ci = (size_t)g->cin, co = (size_t)g->cout;
    return (size_t)g->h * g->w * ci + (size_t)g->oh * g->ow * co + NXI * (nt * (ci + co) + 2 * PLANE_PAD) +
           NXI * (ci * co + PLANE_PAD) + (ci > co ? ci : co);
}

typedef float v8 __attribute__((vector_size(32)));
#define LD8(p) (__extension__({ v8 v_; memcpy(&v_, (p), sizeof v_); v_; }))
#define ST8(p, v) do { v8 w_ = (v); memcpy((p), &w_, sizeof w_); } while (0)

/* src (c x n) to dst (n x c), c a multiple of 4: 4 x 4 SSE2 transposes
 * over blocks of 16 pixels that keep the strided side in L1 (one scalar
 * store per float cost as much as the transforms). A copy: exact. */
static inline __attribute__((always_inline)) void to_pixel_major(const float *src, int c, int n, float *dst)
{
    for (int p0 = 0; p0 < n; p0 += 16) {
        int p1 = p0 + 16 < n ? p0 + 16 : n;
        for (int ch = 0; ch < c; ch += 4) {
            const float *s0 = src + (size_t)ch * n;
            int p = p0;
#if defined(__SSE2__)
            for (; p + 4 <= p1; p += 4) {
                __m128 a = _mm_loadu_ps(s0 + p), b = _mm_loadu_ps(s0 + n + p);
                __m128 e = _mm_loadu_ps(s0 + 2 * (size_t)n + p), f = _mm_loadu_ps(s0 + 3 * (size_t)n + p);
                _MM_TRANSPOSE4_PS(a, b, e, f);
                float *d = dst + (size_t)p * c + ch;
                _mm_storeu_ps(d, a);
                _mm_storeu_ps(d + c, b);
                _mm_storeu_ps(d + 2 * (size_t)c, e);
                _mm_storeu_ps(d + 3 * (size_t)c, f);
            }
#endif
            for (; p < p1; p++)
                for (int q = 0; q < 4; q++)
                    dst[(size_t)p * c + ch + q] = s0[(size_t)q * n + p];
        }
    }
}

/* V rows of one tile: B^T d B over channel lanes; d[r * 6 + c] points at
 * the window's pixel (c channels) or at zeros; out row xi at v + xi * vs. */
static inline __attribute__((always_inline)) void input_tile(const float *const *d, int c, float *v, size_t vs)
{
    for (int l = 0; l < c; l += 8) {
        v8 t[36];
        for (int col = 0; col < 6; col++) {
            v8 x0 = LD8(d[col] + l), x1 = LD8(d[6 + col] + l), x2 = LD8(d[12 + col] + l),
               x3 = LD8(d[18 + col] + l), x4 = LD8(d[24 + col] + l), x5 = LD8(d[30 + col] + l);
            t[col] = 4.0f * x0 - 5.0f * x2 + x4;
            t[6 + col] = -4.0f * x1 - 4.0f * x2 + x3 + x4;
            t[12 + col] = 4.0f * x1 - 4.0f * x2 - x3 + x4;
            t[18 + col] = -2.0f * x1 - x2 + 2.0f * x3 + x4;
            t[24 + col] = 2.0f * x1 - x2 - 2.0f * x3 + x4;
            t[30 + col] = 4.0f * x1 - 5.0f * x3 + x5;
        }
        for (int row = 0; row < 6; row++) {
            const v8 *x = t + row * 6;
            float *o = v + (size_t)row * 6 * vs + l;
            ST8(o, 4.0f * x[0] - 5.0f * x[2] + x[4]);
            ST8(o + vs, -4.0f * x[1] - 4.0f * x[2] + x[3] + x[4]);
            ST8(o + 2 * vs, 4.0f * x[1] - 4.0f * x[2] - x[3] + x[4]);
            ST8(o + 3 * vs, -2.0f * x[1] - x[2] + 2.0f * x[3] + x[4]);
            ST8(o + 4 * vs, 2.0f * x[1] - x[2] - 2.0f * x[3] + x[4]);
            ST8(o + 5 * vs, 4.0f * x[1] - 5.0f * x[3] + x[5]);
        }
    }
}

/* A y for a 4-vector y (A = the forward's A^T transposed): 6 values. */
#define A4(y0, y1, y2, y3, o)                                                                                          \
    do {                                                                                                               \
        v8 s02_ = (y0) + (y2), s13_ = (y1) + (y3), p_ = (y0) + 4.0f * (y2), q_ = 2.0f * (y1) + 8.0f * (y3);          \
        (o)[0] = (y0);                                                                                                 \
        (o)[1] = s02_ + s13_;                                                                                          \
        (o)[2] = s02_ - s13_;                                                                                          \
        (o)[3] = p_ + q_;                                                                                              \
        (o)[4] = p_ - q_;                                                                                              \
        (o)[5] = (y3);                                                                                                 \
    } while (0)

/* U rows of one tile: A dy A^T over channel lanes; e[r * 4 + c] points at
 * the tile's output pixel or at zeros. */
static inline __attribute__((always_inline)) void grad_tile(const float *const *e, int c, float *u, size_t us)
{
    for (int l = 0; l < c; l += 8) {
        v8 t[6][4]; /* t[i][q] = (A dy)[i][q] */
        for (int q = 0; q < 4; q++) {
            v8 o[6];
            A4(LD8(e[q] + l), LD8(e[4 + q] + l), LD8(e[8 + q] + l), LD8(e[12 + q] + l), o);
            for (int i = 0; i < 6; i++)
                t[i][q] = o[i];
        }
        for (int i = 0; i < 6; i++) {
            v8 o[6];
            A4(t[i][0], t[i][1], t[i][2], t[i][3], o);
            for (int j = 0; j < 6; j++)
                ST8(u + (size_t)(i * 6 + j) * us + l, o[j]);
        }
    }
}

/* dwt rows (ci*9 + a*3 + b), columns co: G^T Mw G over output-channel
 * lanes, added (acc) or stored. */
static inline __attribute__((always_inline)) void finish(const float *mw, int cin, int cout, float *dwt, int acc)
{
    const size_t xs = (size_t)cin * cout + PLANE_PAD;
    for (int ci = 0; ci < cin; ci++)
        for (int l = 0; l < cout; l += 8) {
            const float *m = mw + (size_t)ci * cout + l;
            v8 s[6][3]; /* s[i][b] = sum_j Mw[i][j] G[j][b] */
            for (int i = 0; i < 6; i++) {
                v8 m0 = LD8(m + (i * 6) * xs), m1 = LD8(m + (i * 6 + 1) * xs), m2 = LD8(m + (i * 6 + 2) * xs),
                   m3 = LD8(m + (i * 6 + 3) * xs), m4 = LD8(m + (i * 6 + 4) * xs), m5 = LD8(m + (i * 6 + 5) * xs);
                v8 a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
                s[i][0] = 0.25f * m0 - (1.0f / 6) * a + (1.0f / 24) * c;
                s[i][1] = -(1.0f / 6) * b + (1.0f / 12) * d;
                s[i][2] = -(1.0f / 6) * a + (1.0f / 6) * c + m5;
            }
            for (int bcol = 0; bcol < 3; bcol++) {
                v8 a = s[1][bcol] + s[2][bcol], b = s[1][bcol] - s[2][bcol], c = s[3][bcol] + s[4][bcol],
                   d = s[3][bcol] - s[4][bcol];
                v8 r0 = 0.25f * s[0][bcol] - (1.0f / 6) * a + (1.0f / 24) * c;
                v8 r1 = -(1.0f / 6) * b + (1.0f / 12) * d;
                v8 r2 = -(1.0f / 6) * a + (1.0f / 6) * c + s[5][bcol];
                v8 r[3] = {r0, r1, r2};
                for (int arow = 0; arow < 3; arow++) {
                    float *o = dwt + ((size_t)ci * 9 + arow * 3 + bcol) * cout + l;
                    ST8(o, acc ? LD8(o) + r[arow] : r[arow]);
                }
            }
        }
}

typedef struct {
    tl_kws *ws;
    const tl_conv_geom *g;
    int n;
    const float *x, *dy;
    float *dwt;
    int accumulate;
    float *scratch;
} wg_job;

static inline __attribute__((always_inline)) void run(const wg_job *jb)
{
    const tl_conv_geom *g = jb->g;
    const int cin = g->cin, cout = g->cout, hw = g->h * g->w, ohw = g->oh * g->ow;
    const int tx = tiles_x(g), T = tiles_y(g) * tx, NT = block_tiles(g);
    const size_t vs = (size_t)NT * cin + PLANE_PAD, us = (size_t)NT * cout + PLANE_PAD,
                 ms = (size_t)cin * cout + PLANE_PAD;
    float *xt = jb->scratch, *dyt = xt + (size_t)hw * cin, *V = dyt + (size_t)ohw * cout;
    float *U = V + NXI * vs, *Mw = U + NXI * us, *zero = Mw + NXI * ms;
    memset(zero, 0, sizeof(float) * (size_t)(cin > cout ? cin : cout));
    int nt = 0, first = 1;
    for (int b = 0; b < jb->n; b++) {
        to_pixel_major(jb->x + (size_t)b * cin * hw, cin, hw, xt);
        to_pixel_major(jb->dy + (size_t)b * cout * ohw, cout, ohw, dyt);
        for (int t = 0; t < T; t++) {
            const int oy0 = t / tx * 4, ox0 = t % tx * 4, iy0 = oy0 - g->pad_t, ix0 = ox0 - g->pad_l;
            const float *d[36], *e[16];
            for (int r = 0; r < 6; r++)
                for (int c = 0; c < 6; c++) {
                    int iy = iy0 + r, ix = ix0 + c;
                    d[r * 6 + c] = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w ? xt + ((size_t)iy * g->w + ix) * cin
                                                                                : zero;
                }
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < 4; c++) {
                    int oy = oy0 + r, ox = ox0 + c;
                    e[r * 4 + c] = oy < g->oh && ox < g->ow ? dyt + ((size_t)oy * g->ow + ox) * cout : zero;
                }
            input_tile(d, cin, V + (size_t)nt * cin, vs);
            grad_tile(e, cout, U + (size_t)nt * cout, us);
            if (++nt == NT || (b == jb->n - 1 && t == T - 1)) {
                for (int xi = 0; xi < NXI; xi++)
                    tl_sgemm(jb->ws, 1, 0, cin, cout, nt, 1.0f, V + xi * vs, cin, U + xi * us, cout,
                             first ? 0.0f : 1.0f, Mw + xi * ms, cout);
                first = 0;
                nt = 0;
            }
        }
    }
    if (first) { /* no images */
        if (!jb->accumulate)
            memset(jb->dwt, 0, sizeof(float) * (size_t)cin * 9 * cout);
        return;
    }
    finish(Mw, cin, cout, jb->dwt, jb->accumulate);
}

static void run_base(const wg_job *jb) { run(jb); }
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static void run_avx2(const wg_job *jb) { run(jb); }
__attribute__((target("avx512f"))) static void run_avx512(const wg_job *jb) { run(jb); }
#endif

void tl_wgrad_winograd(tl_kws *ws, const tl_conv_geom *g, int n, const float *x, const float *dy, float *dwt,
                       int accumulate, float *scratch)
{
    wg_job jb = {ws, g, n, x, dy, dwt, accumulate, scratch};
#if defined(__x86_64__) && defined(__GNUC__)
    if (ws->impl->level >= TL_SIMD_AVX512) {
        run_avx512(&jb);
        return;
    }
    if (ws->impl->level == TL_SIMD_AVX2) {
        run_avx2(&jb);
        return;
    }
#endif
    run_base(&jb);
}
