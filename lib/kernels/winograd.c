/* Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions (Lavin & Gray, "Fast
 * Algorithms for Convolutional Neural Networks"): each 4x4 output tile is
 * A^T [(G g G^T) o (B^T d B)] A for the 6x6 input tile d around it, so the
 * 9 multiply-adds per output and input channel of the direct convolution
 * become 36/16 = 2.25, as 36 independent GEMMs (one per point xi of the
 * 6x6 transformed tile) M[xi] (cout x tiles) = U[xi] (cout x cin) V[xi]
 * (cin x tiles), run on the workspace's micro-kernel.
 *
 * The tiles are processed in blocks of nr (the micro-kernel's width), the
 * lanes of every transform: a block's V (36 x cin x nr) is built in the
 * packed layout the micro-kernel reads, its M (36 x cout x nr) transformed
 * back with bias and activation. U, the transformed weights, is packed once
 * per path like a GEMM's A operand (36 x cout x cin floats: 4x the direct
 * weights). Everything runs in float without multiply-add contraction; the
 * transforms cost about 1e-6 of relative error more than the direct
 * convolution (measured in tests/unit/test_conv.c). */
#include "act_internal.h"
#include "conv_internal.h"
#include "simd.h"

#include <limits.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define NXI 36 /* points of the transformed 6x6 tile */

static int round_up(int v, int m) { return (v + m - 1) / m * m; }
static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* Maps of up to this many tiles (16x16 outputs) are zero-padded plane by
 * plane before their windows are gathered: nearly every window there
 * crosses the border, and copying one row at a time into a padded window
 * cost about as much as the transforms (6 % of a ResNet-18 profile). */
#define SMALL_TILES 16

static int tiles_y(const tl_conv_geom *g) { return (g->oh + 3) / 4; }
static int tiles_x(const tl_conv_geom *g) { return (g->ow + 3) / 4; }

/* The lanes of a block (tiles at once), and the micro-kernel for them, for
 * a call on `tiles` tiles (those of all its images): the path's nr, or 16
 * or 8 when nr-lane blocks would be mostly padding and the path has a
 * narrower kernel (AVX-512 on one 14x14 map: 16 tiles; one 7x7 map: 4).
 * The narrow kernels run at about 4/5 of the wide one's rate a lane, hence
 * the 5/4; on a tie the wider. Every tile is summed the same way by each
 * kernel, so the choice never changes a bit. */
static int block_lanes(const tl_kws *ws, long tiles, tl_ukernel_fn *uk)
{
    const tl_simd_impl *im = ws->impl;
    const struct {
        int lanes;
        tl_ukernel_fn fn;
    } k[3] = {{im->nr, im->ukernel}, {16, im->ukernel16}, {8, im->ukernel8}};
    int best = 0;
    long cost = round_up((int)tiles, im->nr) * 4L;
    for (int i = 1; i < 3; i++)
        if (k[i].fn && k[i].lanes < im->nr && round_up((int)tiles, k[i].lanes) * 5L < cost) {
            best = i;
            cost = round_up((int)tiles, k[i].lanes) * 5L;
        }
    if (uk)
        *uk = k[best].fn;
    return k[best].lanes;
}

/* The blocks of a call: nfull of nr lanes (the main kernel uk), then up to
 * 3 narrower ones for the tiles left over (tail_lanes). */
typedef struct {
    int nr, nfull, ntail, tail_lanes[3];
    tl_ukernel_fn uk, tail_uk[3];
} wino_plan;

/* The lanes of the next block for the rem tiles left after the whole
 * blocks of nr: a narrower kernel where that saves lanes (as gemm_packed.c
 * ends a row of columns). The transforms run over every lane of a block,
 * so they save as much as the products. */
static int tail_lanes(const tl_simd_impl *im, int nr, int rem, tl_ukernel_fn *uk)
{
    const int k16 = im->ukernel16 && nr > 16, k8 = im->ukernel8 && nr > 8;
    int w = rem > nr - 8 || (!k16 && !k8) ? nr : k16 && (rem > 8 || !k8) ? 16 : 8;
    *uk = w == 16 ? im->ukernel16 : w == 8 ? im->ukernel8 : NULL;
    return w;
}

/* The cheapest blocks for `tiles` tiles, by block_lanes's cost (4 a lane
 * of the path's own kernel, 5 of a narrower one), each main width followed
 * by its tail: a 56x56 map's 196 tiles take 6 x 32 + 8 lanes on AVX-512
 * instead of 7 x 32 (AVX2: 12 x 16 + 8, not 13 x 16), a 28x28 map's 49
 * take 32 + 16 + 8 instead of 64 (3 x 16 + 8). Every kernel sums a tile as
 * the others do, so the plan never changes a bit; which layers run
 * Winograd (tl_winograd_applies) still follows block_lanes alone. */
static void plan_blocks(const tl_simd_impl *im, long tiles, wino_plan *best)
{
    const struct {
        int lanes;
        tl_ukernel_fn fn;
    } k[3] = {{im->nr, im->ukernel}, {16, im->ukernel16}, {8, im->ukernel8}};
    long best_cost = LONG_MAX;
    for (int i = 0; i < 3; i++) {
        if (!k[i].fn || (i > 0 && k[i].lanes >= im->nr))
            continue;
        wino_plan p = {k[i].lanes, (int)(tiles / k[i].lanes), 0, {0}, k[i].fn, {NULL}};
        long cost = (long)p.nfull * p.nr * (i ? 5 : 4);
        for (long t = (long)p.nfull * p.nr; t < tiles; t += p.tail_lanes[p.ntail++]) {
            int w = tail_lanes(im, p.nr, (int)(tiles - t), &p.tail_uk[p.ntail]);
            if (!p.tail_uk[p.ntail])
                p.tail_uk[p.ntail] = p.uk;
            p.tail_lanes[p.ntail] = w;
            cost += (long)w * (w == im->nr ? 4 : 5);
        }
        if (cost < best_cost) {
            best_cost = cost;
            *best = p;
        }
    }
}

int tl_winograd_applies(const tl_kws *ws, const tl_conv_geom *g)
{
    if (ws->exact || g->kh != 3 || g->kw != 3 || g->stride_h != 1 || g->stride_w != 1 || g->dil_h != 1 || g->dil_w != 1 ||
        g->groups != 1 || g->cin < 16 || g->cout < 16)
        return 0;
    /* Cost model: the multiply-adds of the GEMMs over whole blocks of
     * tiles, with a factor 2 for the transforms and the short GEMMs, must
     * stay below the direct convolution's, on the number of images the
     * workspace's forward passes take at once (tl_kws_set_images). Alone,
     * a 7x7 map (ResNet's last stage) keeps the direct path: its 4 tiles
     * would not fill a block; 4 of them fill one of 16. */
    long imgs = ws->images > 1 ? ws->images : 1, tiles = (long)tiles_y(g) * tiles_x(g) * imgs;
    long nr = block_lanes(ws, tiles, NULL), lanes = (tiles + nr - 1) / nr * nr;
    return NXI * lanes * 2 < 9L * g->oh * g->ow * imgs;
}

size_t tl_winograd_packed_floats(const tl_kws *ws, const tl_conv_geom *g)
{
    return (size_t)NXI * round_up(g->cout, ws->impl->mr) * g->cin;
}

size_t tl_winograd_scratch_floats(const tl_kws *ws, const tl_conv_geom *g)
{
    size_t nr = 0; /* the widest block of a call on 1 to ws->images images */
    for (int n = 1; n == 1 || n <= ws->images; n++) {
        wino_plan p;
        plan_blocks(ws->impl, (long)tiles_y(g) * tiles_x(g) * n, &p);
        size_t l = (size_t)p.nr;
        nr = l > nr ? l : nr;
    }
    /* V, M, two 36 x nr tiles of staging, and on small maps the padded
     * planes of the images a block touches, on others a padded strip */
    size_t pad = 0;
    int tpi = tiles_y(g) * tiles_x(g);
    if (tpi <= SMALL_TILES)
        pad = (size_t)(tiles_y(g) * 4 + 2) * (size_t)(tiles_x(g) * 4 + 2) * (nr / (size_t)tpi + 2);
    else /* a strip of the tile rows nr tiles span */
        pad = (size_t)(((nr - 1) / (size_t)tiles_x(g) + 2) * 4 + 2) * (size_t)(tiles_x(g) * 4 + 2);
    return (size_t)NXI * nr * ((size_t)g->cin + (size_t)round_up(g->cout, ws->impl->mr) + 2) + pad;
}

/* Output channels whose kernels are transformed at once: lane l of every
 * array below is one channel, and each lane sees the same double
 * operations in the same order as a single kernel would (no contraction,
 * -std=c11), so the bits do not depend on the lanes; the compiler turns
 * the lane loops into vector instructions. */
#define WL 4

/* u (6x6 per lane) = G g G^T of the lanes' 3x3 kernels, in double. */
static void weight_transform(const double g[9][WL], double u[NXI][WL])
{
    static const double G[6][3] = {{1.0 / 4, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
    double t[6][3][WL];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++)
            for (int l = 0; l < WL; l++)
                t[i][j][l] = G[i][0] * g[j][l] + G[i][1] * g[3 + j][l] + G[i][2] * g[6 + j][l];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
            for (int l = 0; l < WL; l++)
                u[i * 6 + j][l] = t[i][0][l] * G[j][0] + t[i][1][l] * G[j][1] + t[i][2][l] * G[j][2];
}

/* U[xi] of every output channel in [k0, k1), packed as tl_gemm_pack_a
 * packs an M x K matrix (here cout x cin): per kc-block of input channels,
 * slivers of mr output channels. Rows past cout are zero. flip: the kernel
 * of (k, c) is w's kernel of (c, k) rotated by 180 degrees (w holds cin
 * kernels of cout channels: the layer whose data gradient g computes).
 * A sliver's mr channels are transformed WL at a time and each point's mr
 * values stored together: the 36 points are 36 planes, and one channel at
 * a time wrote one float into each of 36 cache lines (the preparation of
 * ResNet-18's weights spent most of its time there). */
static void pack_range(const tl_kws *ws, const tl_conv_geom *g, const float *w, int flip, float *packed, int part,
                       int nparts)
{
    const int mr = ws->impl->mr, KC = ws->impl->kc, K = g->cout, C = g->cin, Kpad = round_up(K, mr);
    const size_t per = (size_t)Kpad * C;
    int slivers = Kpad / mr, s0 = (int)((long)slivers * part / nparts), s1 = (int)((long)slivers * (part + 1) / nparts);
    for (int s = s0; s < s1; s++)
        for (int c = 0; c < C; c++) {
            int pc = c / KC * KC, kc = imin(KC, C - pc);
            float *dst = packed + (size_t)pc * Kpad + (size_t)s * mr * kc + (size_t)(c - pc) * mr;
            for (int l0 = 0; l0 < mr; l0 += WL) {
                int n = imin(WL, mr - l0), k0 = s * mr + l0;
                double gl[9][WL], u[NXI][WL];
                for (int l = 0; l < WL; l++) {
                    int k = k0 + l;
                    for (int q = 0; q < 9; q++)
                        gl[q][l] = l >= n || k >= K ? 0.0
                                   : flip          ? w[((size_t)c * K + k) * 9 + 8 - q]
                                                   : w[((size_t)k * C + c) * 9 + q];
                }
                weight_transform(gl, u);
                for (int xi = 0; xi < NXI; xi++)
                    for (int l = 0; l < n; l++)
                        dst[xi * per + (size_t)(l0 + l)] = k0 + l < K ? (float)u[xi][l] : 0.0f;
            }
        }
}

void tl_winograd_pack(const tl_kws *ws, const tl_conv_geom *g, const float *w, float *packed, int part, int nparts)
{
    pack_range(ws, g, w, 0, packed, part, nparts);
}

void tl_winograd_pack_flipped(const tl_kws *ws, const tl_conv_geom *g, const float *w, float *packed, int part,
                              int nparts)
{
    pack_range(ws, g, w, 1, packed, part, nparts);
}

/* ------------------------------------------------------------ transforms */

/* The lanes of a block are its tiles: every transform runs over nr lanes
 * (8, 16 or 32) in vectors of 8 (GCC's vector extension: two SSE
 * registers on the baseline, one AVX register where the caller is
 * compiled for AVX2 or AVX-512). */
typedef float v8 __attribute__((vector_size(32)));

/* unaligned loads and stores (macros: a function returning v8 would
 * have an ABI that depends on the target) */
#define LD8(p) (__extension__({ v8 v_; memcpy(&v_, (p), sizeof v_); v_; }))
#define ST8(p, v) do { v8 w_ = (v); memcpy((p), &w_, sizeof w_); } while (0)
typedef float v4 __attribute__((vector_size(16)));
typedef int vi8 __attribute__((vector_size(32)));
#define LD4(p) (__extension__({ v4 v_; memcpy(&v_, (p), sizeof v_); v_; }))
#define ST4(p, v) do { v4 w_ = (v); memcpy((p), &w_, sizeof w_); } while (0)

/* One 6-point input transform, B^T x, over the lanes: in row i at in + i *
 * is, out row i at out + i * os. */
static inline __attribute__((always_inline)) void bt6(const float *in, size_t is, float *out, size_t os, int nr)
{
    for (int j = 0; j < nr; j += 8) {
        v8 x0 = LD8(in + j), x1 = LD8(in + is + j), x2 = LD8(in + 2 * is + j), x3 = LD8(in + 3 * is + j),
           x4 = LD8(in + 4 * is + j), x5 = LD8(in + 5 * is + j);
        ST8(out + j, 4.0f * x0 - 5.0f * x2 + x4);
        ST8(out + os + j, -4.0f * x1 - 4.0f * x2 + x3 + x4);
        ST8(out + 2 * os + j, 4.0f * x1 - 4.0f * x2 - x3 + x4);
        ST8(out + 3 * os + j, -2.0f * x1 - x2 + 2.0f * x3 + x4);
        ST8(out + 4 * os + j, 2.0f * x1 - x2 - 2.0f * x3 + x4);
        ST8(out + 5 * os + j, 4.0f * x1 - 5.0f * x3 + x5);
    }
}

/* One 6-point output transform, A^T m, over the lanes: 4 rows out. */
static inline __attribute__((always_inline)) void at6(const float *in, size_t is, float *out, size_t os, int nr)
{
    for (int j = 0; j < nr; j += 8) {
        v8 m0 = LD8(in + j), m1 = LD8(in + is + j), m2 = LD8(in + 2 * is + j), m3 = LD8(in + 3 * is + j),
           m4 = LD8(in + 4 * is + j), m5 = LD8(in + 5 * is + j);
        v8 a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
        ST8(out + j, m0 + a + c);
        ST8(out + os + j, b + 2.0f * d);
        ST8(out + 2 * os + j, a + 4.0f * c);
        ST8(out + 3 * os + j, b + 8.0f * d + m5);
    }
}

/* The 6x6 input tiles of one channel (stage: 36 x nr, point-major) to V's
 * 36 rows of this channel (row xi at v + xi * vstride). */
static inline __attribute__((always_inline)) void input_tile(const float *stage, float *tmp, float *v,
                                                             size_t vstride, int nr)
{
    /* columns: B^T along each of the 6 columns; then rows */
    for (int col = 0; col < 6; col++)
        bt6(stage + (size_t)col * nr, (size_t)6 * nr, tmp + (size_t)col * nr, (size_t)6 * nr, nr);
    for (int row = 0; row < 6; row++)
        bt6(tmp + (size_t)row * 6 * nr, (size_t)nr, v + (size_t)row * 6 * vstride, vstride, nr);
}

/* A^T along the columns of M's 36 rows of one output channel (row xi at m
 * + xi * mstride): 4 x 6 x nr into tmp, point-major. */
static inline __attribute__((always_inline)) void output_cols(const float *m, size_t mstride, float *tmp, int nr)
{
    for (int col = 0; col < 6; col++)
        at6(m + (size_t)col * mstride, 6 * mstride, tmp + (size_t)col * nr, (size_t)6 * nr, nr);
}

/* The 4x4 outputs (out: 16 x nr, point-major) from tmp (output_cols). */
static inline __attribute__((always_inline)) void output_tile_rows(const float *tmp, float *out, int nr)
{
    for (int row = 0; row < 4; row++)
        at6(tmp + (size_t)row * 6 * nr, (size_t)nr, out + (size_t)row * 4 * nr, (size_t)nr, nr);
}

/* Where the 6x6 input windows of a block's tiles start: the offset of the
 * tile's image plane within a channel (tile t of a call is tile t % T of
 * image t / T, T tiles an image), the window's first row and column (lanes
 * past the last tile: INT_MIN rows), and whether it lies inside the image.
 * Worked out once per block. */
typedef struct {
    size_t base;
    int iy0, ix0, inside;
} win_at;

static void windows_of(const tl_conv_geom *g, int t0, int nt, int nr, win_at *at)
{
    const int tx = tiles_x(g), T = tiles_y(g) * tx;
    for (int j = 0; j < nr; j++) {
        int t = (t0 + j) % T, iy0 = t / tx * 4 - g->pad_t, ix0 = t % tx * 4 - g->pad_l;
        at[j].base = j < nt ? (size_t)((t0 + j) / T) * g->h * g->w : 0;
        at[j].iy0 = j < nt ? iy0 : INT_MIN;
        at[j].ix0 = ix0;
        at[j].inside = j < nt && iy0 >= 0 && iy0 + 6 <= g->h && ix0 >= 0 && ix0 + 6 <= g->w;
    }
}

/* The window: a pointer into the image and its row stride when inside,
 * else a zero-padded copy in local (6 rows of 8). */
static inline const float *window(const tl_conv_geom *g, const float *xc, const win_at *a, float *local,
                                  size_t *stride)
{
    xc += a->base;
    if (a->inside) {
        *stride = (size_t)g->w;
        return xc + (size_t)a->iy0 * g->w + a->ix0;
    }
    int c0 = a->ix0 < 0 ? -a->ix0 : 0, c1 = g->w - a->ix0 < 6 ? g->w - a->ix0 : 6; /* columns inside */
    for (int r = 0; r < 6; r++) {
        float *row = local + r * 8;
        int iy = a->iy0 + r;
        memset(row, 0, 8 * sizeof(float));
        if (a->iy0 != INT_MIN && iy >= 0 && iy < g->h && c1 > c0)
            memcpy(row + c0, xc + (size_t)iy * g->w + a->ix0 + c0, (size_t)(c1 - c0) * sizeof(float));
    }
    *stride = 8;
    return local;
}

#if defined(__SSE2__)
/* Two floats into the low half (a movsd; memcpy: the address may be
 * aligned to 4 bytes only, which a double load must not assume). */
static inline __m128 load2(const float *p)
{
    double d;
    memcpy(&d, p, sizeof d);
    return _mm_castpd_ps(_mm_set_sd(d));
}
#endif

/* Gathers the 6x6 input window of each tile of the block (zero outside the
 * image and for lanes past the last tile) into stage (36 x nr), four tiles
 * at a time by 4 x 4 transposes (nr is a multiple of 4). */
static void gather(const tl_conv_geom *g, const float *xc, const win_at *at, int nr, float *stage)
{
    float local[4][6 * 8];
    for (int j = 0; j < nr; j += 4) {
        const float *w[4];
        size_t ld[4];
        for (int q = 0; q < 4; q++)
            w[q] = window(g, xc, &at[j + q], local[q], &ld[q]);
        for (int r = 0; r < 6; r++) {
            const float *a0 = w[0] + r * ld[0], *a1 = w[1] + r * ld[1], *a2 = w[2] + r * ld[2],
                        *a3 = w[3] + r * ld[3];
            float *dst = stage + (size_t)r * 6 * nr + j;
#if defined(__SSE2__)
            __m128 a = _mm_loadu_ps(a0), b = _mm_loadu_ps(a1), c = _mm_loadu_ps(a2), d = _mm_loadu_ps(a3);
            _MM_TRANSPOSE4_PS(a, b, c, d);
            _mm_storeu_ps(dst, a);
            _mm_storeu_ps(dst + nr, b);
            _mm_storeu_ps(dst + 2 * nr, c);
            _mm_storeu_ps(dst + 3 * nr, d);
            /* columns 4, 5 */
            __m128 e = load2(a0 + 4), f = load2(a1 + 4), h = load2(a2 + 4), k = load2(a3 + 4);
            __m128 ef = _mm_unpacklo_ps(e, f), hk = _mm_unpacklo_ps(h, k); /* e4 f4 e5 f5, h4 k4 h5 k5 */
            _mm_storeu_ps(dst + 4 * nr, _mm_movelh_ps(ef, hk));
            _mm_storeu_ps(dst + 5 * nr, _mm_movehl_ps(hk, ef));
#else
            for (int c = 0; c < 6; c++) {
                dst[(size_t)c * nr] = a0[c];
                dst[(size_t)c * nr + 1] = a1[c];
                dst[(size_t)c * nr + 2] = a2[c];
                dst[(size_t)c * nr + 3] = a3[c];
            }
#endif
        }
    }
}

/* Where each lane's 4x4 output tile goes: its offset within a channel's
 * planes (image i's plane at i * oh * ow) and how many of its rows and
 * columns lie inside the map (0 for lanes past the last tile); whole[q]:
 * the 8 tiles of lanes 8q.. all lie inside. Worked out once per block. */
typedef struct {
    size_t o;
    int rows, cols;
} out_at;

static void outs_of(const tl_conv_geom *g, int t0, int nt, int nr, out_at *oa, unsigned char *whole)
{
    const int tx = tiles_x(g), T = tiles_y(g) * tx;
    const size_t oplane = (size_t)g->oh * g->ow;
    for (int j = 0; j < nr; j++) {
        int t = (t0 + j) % T, oy = t / tx * 4, ox = t % tx * 4;
        oa[j].o = j < nt ? (size_t)((t0 + j) / T) * oplane + (size_t)oy * g->ow + ox : 0;
        oa[j].rows = j < nt ? imin(4, g->oh - oy) : 0;
        oa[j].cols = j < nt ? imin(4, g->ow - ox) : 0;
    }
    for (int j = 0; j < nr; j += 8) {
        int all = 1;
        for (int q = 0; q < 8; q++)
            all &= oa[j + q].rows == 4 && oa[j + q].cols == 4;
        whole[j / 8] = (unsigned char)all;
    }
}

/* One lane's output row (4 values) into the map, clipped to cols, plus the
 * residual's (rc; NULL: none) with one rounding. */
static inline __attribute__((always_inline)) void put_row(float *y, const float *rc, v4 v, int cols)
{
    if (cols == 4) {
        ST4(y, rc ? v + LD4(rc) : v);
        return;
    }
    float t[4];
    memcpy(t, &v, sizeof t);
    for (int c = 0; c < cols; c++)
        y[c] = rc ? t[c] + rc[c] : t[c];
}

/* The 4x4 outputs of one output channel's tiles into its planes (yc),
 * clipped to the map, plus the residual's (rc, laid out as yc; NULL: none)
 * with one rounding, as the GEMM's epilogue adds it. Either from done (16
 * x nr, point-major: the outputs with bias and activation applied), or, when
 * done is NULL, the last pass of A^T (along the rows of tmp, the column
 * pass's 4 x 6 x nr) with the bias (has_bias) and a ReLU (relu) on the
 * values in registers: the same operations, lane for lane, as at6 into a
 * staging tile and tl_act_rows over it (x + b, then v > 0 ? v : +0), so the
 * same bits, without the round trip through memory. Eight lanes (tiles) at
 * a time, each 4 x 4 transposed in the two halves of the vectors. */
static inline __attribute__((always_inline)) void output_rows(const float *tmp, const float *done, int nr,
                                                              const out_at *oa, const unsigned char *whole,
                                                              int has_bias, float bias, int relu, size_t ow,
                                                              float *yc, const float *rc)
{
    for (int j = 0; j < nr && oa[j].rows; j += 8)
        for (int r = 0; r < 4; r++) {
            v8 o0, o1, o2, o3;
            if (done) {
                const float *in = done + (size_t)r * 4 * nr + j;
                o0 = LD8(in), o1 = LD8(in + nr), o2 = LD8(in + 2 * nr), o3 = LD8(in + 3 * nr);
            } else {
                const float *in = tmp + (size_t)r * 6 * nr + j;
                v8 m0 = LD8(in), m1 = LD8(in + nr), m2 = LD8(in + 2 * nr), m3 = LD8(in + 3 * nr),
                   m4 = LD8(in + 4 * nr), m5 = LD8(in + 5 * nr);
                v8 a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
                o0 = m0 + a + c, o1 = b + 2.0f * d, o2 = a + 4.0f * c, o3 = b + 8.0f * d + m5;
                if (has_bias)
                    o0 = o0 + bias, o1 = o1 + bias, o2 = o2 + bias, o3 = o3 + bias;
                if (relu) { /* all bits of v where v > 0, else +0 (NaN too) */
                    o0 = (v8)((vi8)o0 & (o0 > 0.0f)), o1 = (v8)((vi8)o1 & (o1 > 0.0f));
                    o2 = (v8)((vi8)o2 & (o2 > 0.0f)), o3 = (v8)((vi8)o3 & (o3 > 0.0f));
                }
            }
            /* o_c: column c of row r of lanes j..j+7; transposed in each half */
            v8 t0 = __builtin_shufflevector(o0, o1, 0, 8, 1, 9, 4, 12, 5, 13);
            v8 t1 = __builtin_shufflevector(o0, o1, 2, 10, 3, 11, 6, 14, 7, 15);
            v8 t2 = __builtin_shufflevector(o2, o3, 0, 8, 1, 9, 4, 12, 5, 13);
            v8 t3 = __builtin_shufflevector(o2, o3, 2, 10, 3, 11, 6, 14, 7, 15);
            v8 q0 = __builtin_shufflevector(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13); /* lanes 0 | 4 */
            v8 q1 = __builtin_shufflevector(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15); /* 1 | 5 */
            v8 q2 = __builtin_shufflevector(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13); /* 2 | 6 */
            v8 q3 = __builtin_shufflevector(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15); /* 3 | 7 */
            const v4 h[8] = {__builtin_shufflevector(q0, q0, 0, 1, 2, 3), __builtin_shufflevector(q1, q1, 0, 1, 2, 3),
                             __builtin_shufflevector(q2, q2, 0, 1, 2, 3), __builtin_shufflevector(q3, q3, 0, 1, 2, 3),
                             __builtin_shufflevector(q0, q0, 4, 5, 6, 7), __builtin_shufflevector(q1, q1, 4, 5, 6, 7),
                             __builtin_shufflevector(q2, q2, 4, 5, 6, 7), __builtin_shufflevector(q3, q3, 4, 5, 6, 7)};
            if (whole[j / 8]) {
                for (int q = 0; q < 8; q++) {
                    size_t at = oa[j + q].o + (size_t)r * ow;
                    ST4(yc + at, rc ? h[q] + LD4(rc + at) : h[q]);
                }
            } else {
                for (int q = 0; q < 8; q++)
                    if (r < oa[j + q].rows) {
                        size_t at = oa[j + q].o + (size_t)r * ow;
                        put_row(yc + at, rc ? rc + at : NULL, h[q], oa[j + q].cols);
                    }
            }
        }
}

typedef struct {
    const tl_conv_geom *g;
    const float *x, *packed, *bias, *res;
    float *y, *scratch;
    int n;           /* images, channel-major: a channel's planes n * h * w floats */
    int act, k0, k1; /* output channels [k0, k1) (k1 rounded to mr, or cout) */
    wino_plan pl;    /* the blocks of tiles: plan_blocks */
} wino_job;



static inline __attribute__((always_inline)) void run_block(tl_kws *ws, const wino_job *jb, int blk)
{
    const tl_conv_geom *g = jb->g;
    const tl_simd_impl *im = ws->impl;
    const wino_plan *pl = &jb->pl;
    int nr = pl->nr, t0 = blk * nr;
    tl_ukernel_fn ukernel = pl->uk;
    if (blk >= pl->nfull) {
        t0 = pl->nfull * pl->nr;
        for (int q = 0; q < blk - pl->nfull; q++)
            t0 += pl->tail_lanes[q];
        nr = pl->tail_lanes[blk - pl->nfull];
        ukernel = pl->tail_uk[blk - pl->nfull];
    }
    const int mr = im->mr, KC = im->kc, C = g->cin, K = g->cout, Kpad = round_up(K, mr);
    const int T = tiles_y(g) * tiles_x(g) * jb->n, nt = imin(nr, T - t0);
    const size_t plane = (size_t)g->h * g->w * jb->n, oplane = (size_t)g->oh * g->ow * jb->n;
    float *V = jb->scratch, *M = V + (size_t)NXI * C * nr, *stage = M + (size_t)NXI * Kpad * nr;
    float *tmp = stage + (size_t)NXI * nr; /* 36 x nr; the output's 16 x nr go in stage */
    win_at at[64];                         /* nr <= 64 */
    const int tpi = tiles_y(g) * tiles_x(g);
    if (tpi <= SMALL_TILES) {
        /* the block's images' planes, zero-padded to whole windows: a map
         * gp whose windows all lie inside, read as the image's */
        const int PH = tiles_y(g) * 4 + 2, PW = tiles_x(g) * 4 + 2, i0 = t0 / tpi, i1 = (t0 + nt - 1) / tpi;
        const size_t pp = (size_t)PH * PW, hw = (size_t)g->h * g->w;
        const int rows = imin(g->h, PH - g->pad_t), cols = imin(g->w, PW - g->pad_l);
        tl_conv_geom gp = *g;
        gp.h = PH, gp.w = PW, gp.oh = PH - 2, gp.ow = PW - 2, gp.pad_t = gp.pad_l = gp.pad_b = gp.pad_r = 0;
        float *P = tmp + (size_t)NXI * nr;
        memset(P, 0, sizeof(float) * pp * (size_t)(i1 - i0 + 1));
        windows_of(&gp, t0 - i0 * tpi, nt, nr, at);
        for (int c = 0; c < C; c++) {
            for (int i = i0; i <= i1; i++) {
                const float *src = jb->x + c * plane + (size_t)i * hw;
                float *dst = P + (size_t)(i - i0) * pp + (size_t)g->pad_t * PW + g->pad_l;
                for (int r = 0; r < rows; r++)
                    memcpy(dst + (size_t)r * PW, src + (size_t)r * g->w, sizeof(float) * (size_t)cols);
            }
            gather(&gp, P, at, nr, stage);
            input_tile(stage, tmp, V + (size_t)c * nr, (size_t)C * nr, nr);
        }
    } else if (t0 / tpi == (t0 + nt - 1) / tpi) {
        /* the rows of the image the block's windows read, zero-padded as
         * a strip of whole windows (a map gp read as above): windows
         * crossing the border (a quarter of a 56x56 map's, half of a
         * 28x28's) were copied one by one into a padded window */
        const int tx = tiles_x(g), ty0 = t0 % tpi / tx, ty1 = (t0 + nt - 1) % tpi / tx;
        const int SR = (ty1 - ty0 + 1) * 4 + 2, PW = tx * 4 + 2, iy0 = ty0 * 4 - g->pad_t;
        const int r0 = imax(0, -iy0), r1 = imin(SR, g->h - iy0), cols = imin(g->w, PW - g->pad_l);
        tl_conv_geom gp = *g;
        gp.h = SR, gp.w = PW, gp.oh = SR - 2, gp.ow = PW - 2, gp.pad_t = gp.pad_l = gp.pad_b = gp.pad_r = 0;
        float *P = tmp + (size_t)NXI * nr;
        memset(P, 0, sizeof(float) * (size_t)SR * PW);
        windows_of(&gp, t0 % tpi - ty0 * tx, nt, nr, at);
        const float *img = jb->x + (size_t)(t0 / tpi) * g->h * g->w;
        for (int c = 0; c < C; c++) {
            /* row iy0 + r of the plane, never a pointer before it: iy0 < 0 on the first tile row */
            const float *src = img + c * plane;
            for (int r = r0; r < r1; r++)
                memcpy(P + (size_t)r * PW + g->pad_l, src + (size_t)(iy0 + r) * g->w, sizeof(float) * (size_t)cols);
            gather(&gp, P, at, nr, stage);
            input_tile(stage, tmp, V + (size_t)c * nr, (size_t)C * nr, nr);
        }
    } else {
        windows_of(g, t0, nt, nr, at);
        for (int c = 0; c < C; c++) {
            gather(g, jb->x + c * plane, at, nr, stage);
            input_tile(stage, tmp, V + (size_t)c * nr, (size_t)C * nr, nr);
        }
    }
    const size_t per = (size_t)Kpad * C;
    for (int xi = 0; xi < NXI; xi++) {
        const float *u = jb->packed + xi * per, *v = V + (size_t)xi * C * nr;
        float *mx = M + (size_t)xi * Kpad * nr;
        for (int pc = 0; pc < C; pc += KC) {
            int kc = imin(KC, C - pc);
            for (int ir = jb->k0; ir < jb->k1; ir += mr)
                ukernel(kc, u + (size_t)pc * Kpad + (size_t)ir * kc, v + (size_t)pc * nr, mx + (size_t)ir * nr, nr,
                            1.0f, pc == 0 ? 0.0f : 1.0f);
        }
    }
    out_at oa[64];
    unsigned char whole[8];
    outs_of(g, t0, nt, nr, oa, whole);
    /* ReLU or none in registers; other activations by tl_act_rows on the staged tile */
    const int inline_act = jb->act == TL_ACT_NONE || jb->act == TL_ACT_RELU;
    tl_act_rows_fn act_rows = tl_act_rows_for(im->level);
    for (int k = jb->k0; k < imin(jb->k1, K); k++) {
        float *yc = jb->y + k * oplane;
        const float *rc = jb->res ? jb->res + k * oplane : NULL;
        output_cols(M + (size_t)k * nr, (size_t)Kpad * nr, tmp, nr);
        if (inline_act) {
            output_rows(tmp, NULL, nr, oa, whole, jb->bias != NULL, jb->bias ? jb->bias[k] : 0.0f,
                        jb->act == TL_ACT_RELU, (size_t)g->ow, yc, rc);
        } else { /* 16 x nr values of one channel: one row */
            output_tile_rows(tmp, stage, nr);
            act_rows(jb->act, stage, 0, stage, 0, jb->bias ? jb->bias + k : NULL, 1, (size_t)16 * nr);
            output_rows(NULL, stage, nr, oa, whole, 0, 0.0f, 0, (size_t)g->ow, yc, rc);
        }
    }
}

#define BLOCKS_ARGS tl_kws *ws, const wino_job *jb, int b0, int b1
#define BLOCKS_BODY                                                                                \
    for (int b = b0; b < b1; b++)                                                                  \
        run_block(ws, jb, b);
static void blocks_base(BLOCKS_ARGS) { BLOCKS_BODY }
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static void blocks_avx2(BLOCKS_ARGS) { BLOCKS_BODY }
__attribute__((target("avx512f"))) static void blocks_avx512(BLOCKS_ARGS) { BLOCKS_BODY }
#endif

void tl_winograd_forward(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *packed, const float *bias,
                         int act, float *y, int part, int nparts, float *scratch)
{
    tl_winograd_forward_images(ws, g, 1, x, packed, bias, act, NULL, y, part, nparts, scratch);
}

void tl_winograd_forward_images(tl_kws *ws, const tl_conv_geom *g, int n, const float *x, const float *packed,
                                const float *bias, int act, const float *residual, float *y, int part, int nparts,
                                float *scratch)
{
    const long tiles = (long)tiles_y(g) * tiles_x(g) * n;
    const int mr = ws->impl->mr, K = g->cout;
    wino_job jb = {g, x, packed, bias, residual, y, scratch, n, act, 0, round_up(K, mr), {0}};
    plan_blocks(ws->impl, tiles, &jb.pl);
    const int blocks = jb.pl.nfull + jb.pl.ntail;
    int b0 = 0, b1 = blocks;
    if (nparts > 1) {
        if (blocks >= 2 * nparts) { /* blocks of tiles: no work done twice */
            b0 = (int)((long)blocks * part / nparts);
            b1 = (int)((long)blocks * (part + 1) / nparts);
        } else { /* output channels, whole slivers; the input transform is repeated */
            int slivers = round_up(K, mr) / mr;
            jb.k0 = (int)((long)slivers * part / nparts) * mr;
            jb.k1 = (int)((long)slivers * (part + 1) / nparts) * mr;
        }
    }
    if (b0 >= b1 || jb.k0 >= jb.k1)
        return;
#if defined(__x86_64__) && defined(__GNUC__)
    if (ws->impl->level >= TL_SIMD_AVX512) {
        blocks_avx512(ws, &jb, b0, b1);
        return;
    }
    if (ws->impl->level == TL_SIMD_AVX2) {
        blocks_avx2(ws, &jb, b0, b1);
        return;
    }
#endif
    blocks_base(ws, &jb, b0, b1);
}
