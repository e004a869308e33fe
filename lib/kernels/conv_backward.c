/* Convolution backward over NCHW images. Data gradient (per image): per
 * column tile, col = W^T dy (one GEMM) scattered back with col2im; 1x1
 * stride-1 unpadded layers are one GEMM straight into dx; the tape packs W^T
 * once per step for this (tl_conv_backward_data_packed). Weight gradient:
 * dw += dy col^T per tile of one image, or (tl_conv_wgrad_images) over
 * tiles spanning several images. Depthwise layers skip the GEMM (K = kh*kw
 * would be mostly packing): stride-1 data gradients run the forward SIMD
 * plane kernel on the flipped kernel, other strides per-tap loops; weight
 * gradients are per-tap dot products over padded copies. */
#include "backward.h"
#include "simd.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* as in conv.c: im2col tiles of about 1 MiB, at least 64 columns */
#define TILE_BUDGET (1 << 18)

static int is_depthwise(const tl_conv_geom *g) { return g->groups == g->cin && g->cout == g->cin; }

static int is_direct(const tl_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_t == 0 && g->pad_l == 0 &&
           g->pad_b == 0 && g->pad_r == 0;
}

static size_t group_k(const tl_conv_geom *g) { return (size_t)(g->cin / g->groups) * g->kh * g->kw; }

static int tile_cols(const tl_conv_geom *g)
{
    size_t ohw = (size_t)g->oh * g->ow;
    size_t cols = TILE_BUDGET / group_k(g);
    cols = cols < 64 ? 64 : cols / 32 * 32;
    return (int)(cols < ohw ? cols : ohw);
}

static size_t dw_weight_scratch(const tl_conv_geom *g);

size_t tl_conv_backward_scratch_floats(const tl_conv_geom *g)
{
    if (is_depthwise(g)) { /* padded copies for the weight gradient, or the flipped kernel */
        size_t a = dw_weight_scratch(g), b = (size_t)g->kh * g->kw;
        return a > b ? a : b;
    }
    if (is_direct(g))
        return 0;
    return group_k(g) * (size_t)tile_cols(g);
}

/* smallest o with o * s + off >= 0, and one past the largest with o * s + off <= last */
static int first_inside(int off, int s) { return off >= 0 ? 0 : (-off + s - 1) / s; }
static int end_inside(int off, int last, int s) { return off > last ? 0 : (last - off) / s + 1; }
static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Output columns [*lo, *hi) of one kernel column whose input column is inside the row. */
static void valid_cols(const tl_conv_geom *g, int kx, int *off, int *lo, int *hi)
{
    *off = kx * g->dil_w - g->pad_l;
    *lo = clampi(first_inside(*off, g->stride_w), 0, g->ow);
    *hi = clampi(end_inside(*off, g->w - 1, g->stride_w), 0, g->ow);
    if (*hi < *lo)
        *hi = *lo;
}

/* y += x in fixed 16-wide blocks over restrict pointers, which GCC
 * vectorises at -O2 (the indexed scatter loop it leaves scalar). */
static void add_to(float *restrict y, const float *restrict x, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (size_t j = i; j < i + 16; j++)
            y[j] += x[j];
    for (; i < n; i++)
        y[i] += x[i];
}

/* Walks the im2col tile of one group: rows (ci, ky, kx) ld floats apart,
 * columns output pixels c0..c0+nc; gather copies x into col, scatter adds
 * col into x. */
static void col_tile(const tl_conv_geom *g, float *x, int cin_g, int c0, int nc, float *col, size_t ld, int scatter)
{
    const int ow = g->ow, sw = g->stride_w;
    float *row = col;
    for (int ci = 0; ci < cin_g; ci++) {
        float *xc = x + (size_t)ci * g->h * g->w;
        for (int ky = 0; ky < g->kh; ky++) {
            for (int kx = 0; kx < g->kw; kx++, row += ld) {
                int off, vlo, vhi;
                valid_cols(g, kx, &off, &vlo, &vhi);
                for (int p = c0; p < c0 + nc;) {
                    int oy = p / ow, ox0 = p % ow;
                    int ox1 = ox0 + (c0 + nc - p) < ow ? ox0 + (c0 + nc - p) : ow;
                    float *d = row + (p - c0); /* d[ox - ox0] is column (oy, ox) */
                    int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                    int a = vlo > ox0 ? vlo : ox0, b = vhi < ox1 ? vhi : ox1;
                    if (iy < 0 || iy >= g->h || a > ox1)
                        a = ox1;
                    if (b < a || iy < 0 || iy >= g->h)
                        b = a;
                    float *xr = xc + (size_t)(iy < 0 || iy >= g->h ? 0 : iy) * g->w;
                    if (scatter) {
                        if (sw == 1 && b > a)
                            add_to(xr + a + off, d + (a - ox0), (size_t)(b - a));
                        else
                            for (int ox = a; ox < b; ox++)
                                xr[ox * sw + off] += d[ox - ox0];
                    } else {
                        for (int ox = ox0; ox < a; ox++)
                            d[ox - ox0] = 0.0f;
                        if (sw == 1 && b > a)
                            memcpy(d + (a - ox0), xr + a + off, sizeof(float) * (b - a));
                        else
                            for (int ox = a; ox < b; ox++)
                                d[ox - ox0] = xr[ox * sw + off];
                        for (int ox = b; ox < ox1; ox++)
                            d[ox - ox0] = 0.0f;
                    }
                    p += ox1 - ox0;
                }
            }
        }
    }
}

/* Fixed 16-wide blocks over restrict pointers: the shape GCC vectorises at
 * -O2 (its cheap cost model adds no alias checks or epilogues itself). */
#define BLOCK 16

static void axpy(float *restrict y, const float *restrict x, float a, size_t n)
{
    size_t i = 0;
    for (; i + BLOCK <= n; i += BLOCK)
        for (size_t j = i; j < i + BLOCK; j++)
            y[j] += a * x[j];
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* With stride 1 the transposed depthwise convolution is a depthwise
 * convolution of dy with the flipped kernel and complementary padding, so
 * the forward SIMD plane kernel does the work. */
static int transposed_geom(const tl_conv_geom *g, tl_conv_geom *t)
{
    if (g->stride_h != 1 || g->stride_w != 1)
        return 0;
    *t = *g;
    t->h = g->oh, t->w = g->ow, t->oh = g->h, t->ow = g->w;
    t->pad_t = (g->kh - 1) * g->dil_h - g->pad_t, t->pad_b = (g->kh - 1) * g->dil_h - g->pad_b;
    t->pad_l = (g->kw - 1) * g->dil_w - g->pad_l, t->pad_r = (g->kw - 1) * g->dil_w - g->pad_r;
    return t->pad_t >= 0 && t->pad_b >= 0 && t->pad_l >= 0 && t->pad_r >= 0;
}

static void depthwise_data(tl_kws *ws, const tl_conv_geom *g, const float *dy, const float *w, float *dx,
                           float *flipped)
{
    const size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow, taps = (size_t)g->kh * g->kw;
    const int s = g->stride_w;
    tl_conv_geom t;
    if (transposed_geom(g, &t)) {
        for (int c = 0; c < g->cin; c++) {
            for (size_t i = 0; i < taps; i++)
                flipped[i] = w[c * taps + taps - 1 - i];
            ws->impl->dw_plane(&t, dy + c * out_plane, flipped, 0.0f, TL_ACT_NONE, dx + c * in_plane);
        }
        return;
    }
    memset(dx, 0, sizeof(float) * in_plane * g->cin);
    for (int c = 0; c < g->cin; c++) {
        float *dxc = dx + c * in_plane;
        const float *dyc = dy + c * out_plane, *wc = w + c * taps;
        for (int oy = 0; oy < g->oh; oy++) {
            const float *dyr = dyc + (size_t)oy * g->ow;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                if (iy < 0 || iy >= g->h)
                    continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    int off, lo, hi;
                    valid_cols(g, kx, &off, &lo, &hi);
                    float wv = wc[ky * g->kw + kx], *xr = dxc + (size_t)iy * g->w;
                    if (s == 1)
                        axpy(xr + lo + off, dyr + lo, wv, (size_t)(hi - lo));
                    else
                        for (int ox = lo; ox < hi; ox++)
                            xr[ox * s + off] += wv * dyr[ox];
                }
            }
        }
    }
}

void tl_conv_backward_data(tl_kws *ws, const tl_conv_geom *g, const float *dy, const float *w, float *dx,
                           float *scratch)
{
    if (is_depthwise(g)) {
        depthwise_data(ws, g, dy, w, dx, scratch);
        return;
    }
    const int cin_g = g->cin / g->groups, cout_g = g->cout / g->groups;
    const int K = (int)group_k(g), hw = g->h * g->w, ohw = g->oh * g->ow;
    if (is_direct(g)) {
        for (int grp = 0; grp < g->groups; grp++)
            tl_sgemm(ws, 1, 0, cin_g, hw, cout_g, 1.0f, w + (size_t)grp * cout_g * K, K,
                     dy + (size_t)grp * cout_g * ohw, ohw, 0.0f, dx + (size_t)grp * cin_g * hw, hw);
        return;
    }
    memset(dx, 0, sizeof(float) * (size_t)g->cin * hw);
    const int cols = tile_cols(g);
    for (int grp = 0; grp < g->groups; grp++) {
        const float *wg = w + (size_t)grp * cout_g * K, *dyg = dy + (size_t)grp * cout_g * ohw;
        float *dxg = dx + (size_t)grp * cin_g * hw;
        for (int c0 = 0; c0 < ohw; c0 += cols) {
            int nc = ohw - c0 < cols ? ohw - c0 : cols;
            tl_sgemm(ws, 1, 0, K, nc, cout_g, 1.0f, wg, K, dyg + c0, ohw, 0.0f, scratch, nc);
            col_tile(g, dxg, cin_g, c0, nc, scratch, (size_t)nc, 1);
        }
    }
}

/* Within one training step the weights do not change, so W^T can be packed
 * once for the micro-kernel and shared by every image and tile of the data
 * gradient; otherwise each tile of a few dozen columns re-packs all of W^T
 * through strided reads, which cost about as much as the product itself. */
int tl_conv_backward_packable(const tl_conv_geom *g) { return g->groups == 1 && !is_depthwise(g); }

size_t tl_conv_backward_packed_floats(const tl_kws *ws, const tl_conv_geom *g)
{
    return tl_gemm_packed_a_floats(ws, (int)group_k(g), g->cout);
}

/* The layout of tl_gemm_pack_a for A = W^T (K x cout): per K-block of kc
 * output channels, slivers of mr rows of W^T; slivers shared out by part. */
void tl_conv_backward_pack(const tl_kws *ws, const tl_conv_geom *g, const float *w, float *packed, int part,
                           int nparts)
{
    const int mr = ws->impl->mr, KC = ws->impl->kc, M = (int)group_k(g), K = g->cout;
    const int slivers = (M + mr - 1) / mr, Mpad = slivers * mr;
    const int s0 = (int)((long)slivers * part / nparts), s1 = (int)((long)slivers * (part + 1) / nparts);
    for (int pc = 0; pc < K; pc += KC) {
        int kc = K - pc < KC ? K - pc : KC;
        for (int sl = s0; sl < s1; sl++) {
            int ir = sl * mr, m = M - ir < mr ? M - ir : mr;
            float *dst = packed + (size_t)pc * Mpad + (size_t)ir * kc;
            for (int p = 0; p < kc; p++) {
                const float *src = w + (size_t)(pc + p) * M + ir;
                float *d = dst + (size_t)p * mr;
                memcpy(d, src, sizeof(float) * m);
                for (int r = m; r < mr; r++)
                    d[r] = 0.0f;
            }
        }
    }
}

void tl_conv_backward_data_packed(tl_kws *ws, const tl_conv_geom *g, const float *dy, const float *packed,
                                  float *dx, float *scratch)
{
    const int K = (int)group_k(g), hw = g->h * g->w, ohw = g->oh * g->ow;
    if (is_direct(g)) {
        tl_plain_b b = {dy, ohw};
        tl_gemm_pa(ws, g->cin, hw, g->cout, packed, tl_pack_b_plain, &b, dx, hw, NULL, TL_ACT_NONE, 0, 1);
        return;
    }
    memset(dx, 0, sizeof(float) * (size_t)g->cin * hw);
    const int cols = tile_cols(g);
    for (int c0 = 0; c0 < ohw; c0 += cols) {
        int nc = ohw - c0 < cols ? ohw - c0 : cols;
        tl_plain_b b = {dy + c0, ohw};
        tl_gemm_pa(ws, K, nc, g->cout, packed, tl_pack_b_plain, &b, scratch, nc, NULL, TL_ACT_NONE, 0, 1);
        col_tile(g, dx, g->cin, c0, nc, scratch, (size_t)nc, 1);
    }
}

/* Depthwise weight gradient: each tap is one dot product of dy with a
 * strided window of the zero-padded input. The padded input is stored per
 * row as `stride` phases (columns c with c % stride == phase, in order), so
 * every tap reads contiguous floats; dy rows are padded with zeros to a
 * multiple of 16, so every dot product runs in whole 16-lane blocks. */
#define DW_LANES 16

typedef struct {
    int ow16, pw, rows; /* padded dy row, phase width, padded input rows */
} dw_layout;

static dw_layout dw_layout_of(const tl_conv_geom *g)
{
    dw_layout L;
    int s = g->stride_w, wp = g->w + g->pad_l + g->pad_r, reach = (g->kw - 1) * g->dil_w / s;
    L.ow16 = (g->ow + DW_LANES - 1) / DW_LANES * DW_LANES;
    L.pw = (wp + s - 1) / s;
    if (L.pw < L.ow16 + reach)
        L.pw = L.ow16 + reach;
    L.rows = (g->oh - 1) * g->stride_h + (g->kh - 1) * g->dil_h + 1;
    return L;
}

static size_t dw_weight_scratch(const tl_conv_geom *g)
{
    dw_layout L = dw_layout_of(g);
    return (size_t)g->oh * L.ow16 + (size_t)L.rows * g->stride_w * L.pw;
}

static inline __attribute__((always_inline)) double tap_dot(const float *restrict dyp, const float *restrict x, int rows, int ow16, size_t xstride)
{
    float acc[DW_LANES] = {0};
    for (int r = 0; r < rows; r++) {
        const float *restrict d = dyp + (size_t)r * ow16, *restrict xr = x + (size_t)r * xstride;
        for (int i = 0; i < ow16; i += DW_LANES)
            for (int j = 0; j < DW_LANES; j++)
                acc[j] += d[i + j] * xr[i + j];
    }
    double s = 0;
    for (int j = 0; j < DW_LANES; j++)
        s += acc[j];
    return s;
}

/* Compiled for SSE2, AVX2 and AVX-512 and picked by tl_simd_level(): the
 * 16 lanes of tap_dot run as one, two or four registers; same lanes, same
 * order, no contracted multiply-adds under -std=c11: the same bits. */
static inline __attribute__((always_inline)) void dw_weight(const tl_conv_geom *g, const float *x, const float *dy,
                                                            float *dw, int c0, int c1, float *scratch)
{
    const size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow, taps = (size_t)g->kh * g->kw;
    const int s = g->stride_w;
    const dw_layout L = dw_layout_of(g);
    const size_t row = (size_t)s * L.pw;
    float *dyp = scratch, *xp = scratch + (size_t)g->oh * L.ow16;
    memset(scratch, 0, sizeof(float) * dw_weight_scratch(g));
    for (int c = c0; c < c1; c++) {
        const float *xc = x + c * in_plane, *dyc = dy + c * out_plane;
        for (int oy = 0; oy < g->oh; oy++)
            memcpy(dyp + (size_t)oy * L.ow16, dyc + (size_t)oy * g->ow, sizeof(float) * g->ow);
        /* padded rows outside the input and padded columns stay zero */
        for (int r = 0; r < L.rows; r++) {
            int iy = r - g->pad_t;
            if (iy < 0 || iy >= g->h)
                continue;
            const float *xr = xc + (size_t)iy * g->w;
            float *dst = xp + (size_t)r * row;
            if (s == 1) {
                memcpy(dst + g->pad_l, xr, sizeof(float) * g->w);
                continue;
            }
            for (int ix = 0, ph = g->pad_l % s, at = g->pad_l / s; ix < g->w; ix++) {
                dst[(size_t)ph * L.pw + at] = xr[ix];
                if (++ph == s)
                    ph = 0, at++;
            }
        }
        for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++) {
                int col = kx * g->dil_w;
                const float *x0 = xp + (size_t)ky * g->dil_h * row + (size_t)(col % s) * L.pw + col / s;
                dw[c * taps + (size_t)ky * g->kw + kx] +=
                    (float)tap_dot(dyp, x0, g->oh, L.ow16, row * g->stride_h);
            }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define TL_DW_PATHS 1
__attribute__((target("avx2"))) static void dw_weight_avx2(const tl_conv_geom *g, const float *x, const float *dy,
                                                            float *dw, int c0, int c1, float *scratch)
{
    dw_weight(g, x, dy, dw, c0, c1, scratch);
}
__attribute__((target("avx512f"))) static void dw_weight_avx512(const tl_conv_geom *g, const float *x,
                                                                 const float *dy, float *dw, int c0, int c1,
                                                                 float *scratch)
{
    dw_weight(g, x, dy, dw, c0, c1, scratch);
}
#endif

static void depthwise_weight(const tl_conv_geom *g, const float *x, const float *dy, float *dw, int c0, int c1,
                             float *scratch)
{
#if defined(TL_DW_PATHS)
    int level = tl_simd_level();
    if (level >= TL_SIMD_AVX512)
        dw_weight_avx512(g, x, dy, dw, c0, c1, scratch);
    else if (level == TL_SIMD_AVX2)
        dw_weight_avx2(g, x, dy, dw, c0, c1, scratch);
    else
#endif
        dw_weight(g, x, dy, dw, c0, c1, scratch);
}

void tl_conv_backward_weight(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *dy, float *dw,
                             float *db, int co0, int co1, float *scratch)
{
    const int ohw = g->oh * g->ow;
    if (co0 < 0)
        co0 = 0;
    if (co1 > g->cout)
        co1 = g->cout;
    if (db)
        for (int co = co0; co < co1; co++) {
            const float *r = dy + (size_t)co * ohw;
            double s = 0;
            for (int i = 0; i < ohw; i++)
                s += r[i];
            db[co] += (float)s;
        }
    if (is_depthwise(g)) {
        depthwise_weight(g, x, dy, dw, co0, co1, scratch);
        return;
    }
    const int cin_g = g->cin / g->groups, cout_g = g->cout / g->groups;
    const int K = (int)group_k(g), hw = g->h * g->w;
    const int direct = is_direct(g), cols = direct ? ohw : tile_cols(g);
    for (int grp = co0 / cout_g; grp < g->groups && grp * cout_g < co1; grp++) {
        int r0 = grp * cout_g > co0 ? grp * cout_g : co0;
        int r1 = (grp + 1) * cout_g < co1 ? (grp + 1) * cout_g : co1;
        const float *xg = x + (size_t)grp * cin_g * hw;
        for (int c0 = 0; c0 < ohw; c0 += cols) {
            int nc = ohw - c0 < cols ? ohw - c0 : cols;
            const float *col = xg + c0;
            int ldcol = hw;
            if (!direct) {
                col_tile(g, (float *)xg, cin_g, c0, nc, scratch, (size_t)nc, 0);
                col = scratch;
                ldcol = nc;
            }
            tl_sgemm(ws, 0, 1, r1 - r0, K, nc, 1.0f, dy + (size_t)r0 * ohw + c0, ohw, col, ldcol, 1.0f,
                     dw + (size_t)r0 * K, K);
        }
    }
}

/* dst[c * ldd + r] = src[r * lds + c] for rows x cols, by 4 x 4 SSE2
 * transposes where it can (one scalar store per float cost as much as a
 * twentieth of a MobileNetV2 step); a plain copy, so exact. */
static void transpose(const float *src, size_t lds, int rows, int cols, float *dst, size_t ldd)
{
    int r = 0;
#if defined(__SSE2__)
    for (; r + 4 <= rows; r += 4) {
        const float *s0 = src + (size_t)r * lds;
        int c = 0;
        for (; c + 4 <= cols; c += 4) {
            __m128 a = _mm_loadu_ps(s0 + c), b = _mm_loadu_ps(s0 + lds + c);
            __m128 e = _mm_loadu_ps(s0 + 2 * lds + c), f = _mm_loadu_ps(s0 + 3 * lds + c);
            _MM_TRANSPOSE4_PS(a, b, e, f);
            float *d = dst + (size_t)c * ldd + r;
            _mm_storeu_ps(d, a);
            _mm_storeu_ps(d + ldd, b);
            _mm_storeu_ps(d + 2 * ldd, e);
            _mm_storeu_ps(d + 3 * ldd, f);
        }
        for (; c < cols; c++)
            for (int q = 0; q < 4; q++)
                dst[(size_t)c * ldd + r + q] = s0[(size_t)q * lds + c];
    }
#endif
    for (; r < rows; r++)
        for (int c = 0; c < cols; c++)
            dst[(size_t)c * ldd + r] = src[(size_t)r * lds + c];
}

/* Weight gradient of an ungrouped layer over several images: columns are
 * (image, pixel) pairs, cut into tiles that may span images, so layers
 * with small maps still give the GEMM long inner products. The result is
 * kept transposed (K x cout): the GEMM's A is then the im2col tile as it
 * is built (or the input itself for 1x1 layers) and its B the transposed
 * dy tile, both packed without transposition. */
#define WGRAD_BUDGET (1 << 19)
#define WGRAD_MAX_COLS 384

static int wgrad_cols(const tl_conv_geom *g)
{
    size_t cols = WGRAD_BUDGET / (group_k(g) + (size_t)g->cout);
    if (cols > WGRAD_MAX_COLS)
        cols = WGRAD_MAX_COLS;
    cols = cols / 16 * 16;
    return cols < 16 ? 16 : (int)cols;
}

size_t tl_conv_wgrad_scratch_floats(const tl_conv_geom *g)
{
    return (group_k(g) + (size_t)g->cout) * (size_t)wgrad_cols(g);
}

void tl_conv_wgrad_images(tl_kws *ws, const tl_conv_geom *g, int n, const float *x, const float *dy, float *dwt,
                          int accumulate, double *db, float *scratch)
{
    const int ohw = g->oh * g->ow, hw = g->h * g->w, cout = g->cout, K = (int)group_k(g);
    const int cols = wgrad_cols(g), direct = is_direct(g);
    const size_t in_size = (size_t)g->cin * hw, out_size = (size_t)cout * ohw;
    float *col = scratch, *dyt = scratch + (size_t)K * cols;
    float beta = accumulate ? 1.0f : 0.0f;
    if (db)
        for (int b = 0; b < n; b++)
            for (int co = 0; co < cout; co++) {
                const float *r = dy + b * out_size + (size_t)co * ohw;
                double s = 0;
                for (int i = 0; i < ohw; i++)
                    s += r[i];
                db[co] += s;
            }
    const int64_t total = (int64_t)n * ohw;
    if (total == 0 && !accumulate)
        memset(dwt, 0, sizeof(float) * (size_t)K * cout);
    for (int64_t q0 = 0; q0 < total; q0 += cols) {
        int nc = (int)(total - q0 < cols ? total - q0 : cols);
        int b = (int)(q0 / ohw), p = (int)(q0 % ohw);
        const float *a = col;
        int lda = nc;
        if (direct && p + nc <= ohw) {
            a = x + b * in_size + p;
            lda = hw;
        }
        for (int done = 0; done < nc;) {
            int bb = (int)((q0 + done) / ohw), pp = (int)((q0 + done) % ohw);
            int len = ohw - pp < nc - done ? ohw - pp : nc - done;
            const float *xb = x + bb * in_size, *dyb = dy + bb * out_size + pp;
            if (a == col) {
                if (direct)
                    for (int ci = 0; ci < g->cin; ci++)
                        memcpy(col + (size_t)ci * nc + done, xb + (size_t)ci * hw + pp, sizeof(float) * len);
                else
                    col_tile(g, (float *)xb, g->cin, pp, len, col + done, (size_t)nc, 0);
            }
            /* dy tile transposed, in blocks of rows that stay in L1 */
            for (int i0 = 0; i0 < len; i0 += 16) {
                int i1 = i0 + 16 < len ? i0 + 16 : len;
                transpose(dyb + i0, (size_t)ohw, cout, i1 - i0, dyt + (size_t)(done + i0) * cout, (size_t)cout);
            }
            done += len;
        }
        tl_sgemm(ws, 0, 0, K, cout, nc, 1.0f, a, lda, dyt, cout, beta, dwt, cout);
        beta = 1.0f;
    }
}
