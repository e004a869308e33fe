/* Convolution backward (data, weight, bias): against a direct double
 * reference, against the forward pass (adjoint identity and finite
 * differences), bit-identical weight gradients over split channel ranges,
 * agreement across SIMD paths, the data gradient by Winograd, and against
 * PyTorch autograd. */
#include "test_backward_util.h"

typedef struct {
    const char *name;
    tl_conv_geom g;
} conv_case;

#define G(...) ((tl_conv_geom){__VA_ARGS__})
static const conv_case CASES[] = {
    {"k3s1p1", G(.cin = 3, .h = 7, .w = 6, .cout = 4, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1)},
    {"k3s2same", G(.cin = 4, .h = 9, .w = 8, .cout = 5, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_b = 1, .pad_r = 1)},
    {"1x1", G(.cin = 5, .h = 4, .w = 7, .cout = 6, .kh = 1, .kw = 1)},
    {"1x1s2", G(.cin = 5, .h = 7, .w = 7, .cout = 3, .kh = 1, .kw = 1, .stride_h = 2, .stride_w = 2)},
    {"grouped_dil2", G(.cin = 6, .h = 9, .w = 8, .cout = 4, .kh = 3, .kw = 3, .pad_t = 2, .pad_l = 2, .pad_b = 2, .pad_r = 2, .dil_h = 2, .dil_w = 2, .groups = 2)},
    {"grouped_1x1", G(.cin = 8, .h = 5, .w = 5, .cout = 12, .kh = 1, .kw = 1, .groups = 4)},
    {"dw_k3", G(.cin = 5, .h = 7, .w = 9, .cout = 5, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .groups = 5)},
    /* 37 = 16 + 16 + 5 = 4 x 8 + 5: whole SIMD lane groups of channels and a
     * tail group after them, on AVX-512 and on AVX2 */
    {"dw_k3_c37", G(.cin = 37, .h = 9, .w = 11, .cout = 37, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .groups = 37)},
    {"dw_k5s2_c37", G(.cin = 37, .h = 10, .w = 9, .cout = 37, .kh = 5, .kw = 5, .stride_h = 2, .stride_w = 2, .pad_t = 2, .pad_l = 2, .pad_b = 2, .pad_r = 2, .groups = 37)},
    {"dw_k5s2asym", G(.cin = 4, .h = 11, .w = 10, .cout = 4, .kh = 5, .kw = 5, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 2, .pad_b = 2, .pad_r = 1, .groups = 4)},
    {"dw_dil2s2", G(.cin = 3, .h = 9, .w = 9, .cout = 3, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 2, .pad_l = 2, .pad_b = 2, .pad_r = 2, .dil_h = 2, .dil_w = 2, .groups = 3)},
    {"dw_s1asym_dil2", G(.cin = 4, .h = 10, .w = 12, .cout = 4, .kh = 3, .kw = 3, .pad_t = 0, .pad_l = 1, .pad_b = 2, .pad_r = 3, .dil_h = 2, .dil_w = 2, .groups = 4)},
    {"dw_s1_bigpad", G(.cin = 2, .h = 6, .w = 7, .cout = 2, .kh = 3, .kw = 3, .pad_t = 3, .pad_l = 0, .pad_b = 2, .pad_r = 1, .groups = 2)},
    {"dw_k7_wide", G(.cin = 3, .h = 5, .w = 40, .cout = 3, .kh = 7, .kw = 7, .pad_t = 3, .pad_l = 3, .pad_b = 3, .pad_r = 3, .groups = 3)},
    {"dw_mult2", G(.cin = 3, .h = 6, .w = 7, .cout = 6, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .groups = 3)},
    {"k5x3_s21", G(.cin = 3, .h = 8, .w = 7, .cout = 4, .kh = 5, .kw = 3, .stride_h = 2, .stride_w = 1, .pad_t = 2, .pad_l = 1, .pad_b = 1, .pad_r = 0)},
    {"k7s2p3", G(.cin = 3, .h = 13, .w = 11, .cout = 8, .kh = 7, .kw = 7, .stride_h = 2, .stride_w = 2, .pad_t = 3, .pad_l = 3, .pad_b = 3, .pad_r = 3)},
    {"tiles", G(.cin = 64, .h = 24, .w = 24, .cout = 8, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1)},
    {"pad_only_bottom", G(.cin = 2, .h = 5, .w = 5, .cout = 3, .kh = 2, .kw = 2, .stride_h = 2, .stride_w = 2, .pad_b = 1, .pad_r = 1)},
};
#define NCASES (sizeof CASES / sizeof CASES[0])

typedef struct {
    tl_conv_geom g;
    size_t nx, nw, ny;
    float *x, *w, *b, *dy;
} problem;

static problem make(tl_conv_geom g, uint64_t *s)
{
    problem p = {.g = g};
    tl_conv_geom_finish(&p.g);
    p.nx = (size_t)p.g.cin * p.g.h * p.g.w;
    p.nw = (size_t)p.g.cout * (p.g.cin / p.g.groups) * p.g.kh * p.g.kw;
    p.ny = (size_t)p.g.cout * p.g.oh * p.g.ow;
    p.x = bw_rand(s, p.nx, 1.0f);
    p.w = bw_rand(s, p.nw, 0.5f);
    p.b = bw_rand(s, p.g.cout, 0.5f);
    p.dy = bw_rand(s, p.ny, 1.0f);
    return p;
}

static void unmake(problem *p)
{
    free(p->x);
    free(p->w);
    free(p->b);
    free(p->dy);
}

/* the definition, in double: scatter every (output, tap) product */
static void reference(const problem *p, double *dx, double *dw, double *db)
{
    const tl_conv_geom *g = &p->g;
    int cin_g = g->cin / g->groups, cout_g = g->cout / g->groups;
    memset(dx, 0, p->nx * sizeof *dx);
    memset(dw, 0, p->nw * sizeof *dw);
    memset(db, 0, g->cout * sizeof *db);
    for (int co = 0; co < g->cout; co++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                double d = p->dy[((size_t)co * g->oh + oy) * g->ow + ox];
                db[co] += d;
                for (int ci = 0; ci < cin_g; ci++)
                    for (int ky = 0; ky < g->kh; ky++)
                        for (int kx = 0; kx < g->kw; kx++) {
                            int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                            int ix = ox * g->stride_w - g->pad_l + kx * g->dil_w;
                            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                continue;
                            size_t xi = (((size_t)(co / cout_g) * cin_g + ci) * g->h + iy) * g->w + ix;
                            size_t wi = (((size_t)co * cin_g + ci) * g->kh + ky) * g->kw + kx;
                            dx[xi] += p->w[wi] * d;
                            dw[wi] += p->x[xi] * d;
                        }
            }
}

typedef struct {
    float *dx, *dw, *db;
} grads;

static grads run(tl_kws *ws, const problem *p)
{
    grads r = {malloc(p->nx * sizeof(float)), bw_zeros(p->nw), bw_zeros(p->g.cout)};
    size_t ns = tl_conv_backward_scratch_floats(&p->g);
    float *scratch = malloc((ns ? ns : 1) * sizeof *scratch);
    for (size_t i = 0; i < p->nx; i++)
        r.dx[i] = NAN; /* overwrite, never accumulate */
    tl_conv_backward_data(ws, &p->g, p->dy, p->w, r.dx, scratch);
    tl_conv_backward_weight(ws, &p->g, p->x, p->dy, r.dw, r.db, 0, p->g.cout, scratch);
    free(scratch);
    return r;
}

static void grads_free(grads *r)
{
    free(r->dx);
    free(r->dw);
    free(r->db);
}

static double worst_ref, worst_adj, worst_fd, worst_simd;

static void test_reference(tl_kws *ws)
{
    uint64_t s = 42;
    for (size_t c = 0; c < NCASES; c++) {
        problem p = make(CASES[c].g, &s);
        grads r = run(ws, &p);
        double *dx = malloc(p.nx * sizeof *dx), *dw = malloc(p.nw * sizeof *dw), *db = malloc(p.g.cout * sizeof *db);
        reference(&p, dx, dw, db);
        double ex = bw_relerr_d(r.dx, dx, p.nx), ew = bw_relerr_d(r.dw, dw, p.nw), eb = bw_relerr_d(r.db, db, p.g.cout);
        double e = fmax(ex, fmax(ew, eb));
        worst_ref = fmax(worst_ref, e);
        CHECK_MSG(e < 1e-5, "%s: vs double reference dx %g dw %g db %g", CASES[c].name, ex, ew, eb);

        /* adjoint identity with the forward kernel: <conv(x, w), dy> = <x, dx> = <w, dw> */
        float *y = malloc(p.ny * sizeof *y);
        conv_forward_once(ws, &p.g, p.x, p.w, NULL, TL_ACT_NONE, y);
        double lhs = bw_dot(y, p.dy, p.ny), mag = 0;
        for (size_t i = 0; i < p.ny; i++)
            mag += fabs((double)y[i] * p.dy[i]);
        double ax = fabs(bw_dot(p.x, r.dx, p.nx) - lhs) / mag, aw = fabs(bw_dot(p.w, r.dw, p.nw) - lhs) / mag;
        worst_adj = fmax(worst_adj, fmax(ax, aw));
        CHECK_MSG(ax < 1e-5 && aw < 1e-5, "%s: adjoint identity off by %g (data) %g (weight)", CASES[c].name, ax, aw);

        /* central differences of L(w) = <conv(x, w) + b, dy> through the float forward, a few weights */
        float *bsave = p.b;
        for (int k = 0; k < 5; k++) {
            size_t wi = (size_t)(k * 7919) % p.nw;
            float w0 = p.w[wi], h = 1e-2f;
            p.w[wi] = w0 + h;
            conv_forward_once(ws, &p.g, p.x, p.w, bsave, TL_ACT_NONE, y);
            double lp = bw_dot(y, p.dy, p.ny);
            p.w[wi] = w0 - h;
            conv_forward_once(ws, &p.g, p.x, p.w, bsave, TL_ACT_NONE, y);
            double lm = bw_dot(y, p.dy, p.ny);
            p.w[wi] = w0;
            double fd = (lp - lm) / (2.0 * ((double)(w0 + h) - w0));
            double e2 = fabs(fd - r.dw[wi]) / fmax(1.0, fabs(fd));
            worst_fd = fmax(worst_fd, e2);
            CHECK_MSG(e2 < 1e-2, "%s: dw[%zu] %g vs finite difference %g", CASES[c].name, wi, r.dw[wi], fd);
        }
        free(y);
        free(dx);
        free(dw);
        free(db);
        grads_free(&r);
        unmake(&p);
    }
}

/* parameter gradients split over output-channel ranges (and accumulated
 * over two images) equal the whole range bit for bit */
static void test_split(tl_kws *ws)
{
    uint64_t s = 7;
    for (size_t c = 0; c < NCASES; c++) {
        problem p = make(CASES[c].g, &s);
        float *x2 = bw_rand(&s, p.nx, 1.0f), *dy2 = bw_rand(&s, p.ny, 1.0f);
        size_t ns = tl_conv_backward_scratch_floats(&p.g);
        float *scratch = malloc((ns ? ns : 1) * sizeof *scratch);
        float *dw = bw_zeros(p.nw), *db = bw_zeros(p.g.cout), *dws = bw_zeros(p.nw), *dbs = bw_zeros(p.g.cout);
        tl_conv_backward_weight(ws, &p.g, p.x, p.dy, dw, db, 0, p.g.cout, scratch);
        tl_conv_backward_weight(ws, &p.g, x2, dy2, dw, db, 0, p.g.cout, scratch);
        int cuts[] = {1, p.g.cout / 2, p.g.cout - 1};
        int ok = 1;
        for (int k = 0; k < 3; k++) {
            int a = cuts[k];
            memset(dws, 0, p.nw * sizeof *dws);
            memset(dbs, 0, p.g.cout * sizeof *dbs);
            for (int img = 0; img < 2; img++) {
                tl_conv_backward_weight(ws, &p.g, img ? x2 : p.x, img ? dy2 : p.dy, dws, dbs, 0, a, scratch);
                tl_conv_backward_weight(ws, &p.g, img ? x2 : p.x, img ? dy2 : p.dy, dws, dbs, a, p.g.cout, scratch);
            }
            ok = ok && !memcmp(dw, dws, p.nw * sizeof *dw) && !memcmp(db, dbs, p.g.cout * sizeof *db);
        }
        CHECK_MSG(ok, "%s: split-range weight gradient differs from the full range", CASES[c].name);
        /* a NULL db leaves dw unchanged */
        memset(dws, 0, p.nw * sizeof *dws);
        tl_conv_backward_weight(ws, &p.g, p.x, p.dy, dws, NULL, 0, p.g.cout, scratch);
        tl_conv_backward_weight(ws, &p.g, x2, dy2, dws, NULL, 0, p.g.cout, scratch);
        CHECK_MSG(!memcmp(dw, dws, p.nw * sizeof *dw), "%s: db == NULL changes dw", CASES[c].name);
        free(scratch);
        free(dw);
        free(db);
        free(dws);
        free(dbs);
        free(x2);
        free(dy2);
        unmake(&p);
    }
}

/* The batched weight gradient (ungrouped layers; column tiles spanning
 * images) equals the per-image one summed over the images, transposed;
 * accumulate adds, no images with accumulate off clears. */
static void test_wgrad_images(tl_kws *ws)
{
    uint64_t s = 11;
    conv_case extra[] = {
        {"1x1_many_small", G(.cin = 6, .h = 4, .w = 7, .cout = 40, .kh = 1, .kw = 1)},
        {"k3_many_small", G(.cin = 5, .h = 5, .w = 6, .cout = 33, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1)},
        {"1x1_big", G(.cin = 4, .h = 23, .w = 21, .cout = 3, .kh = 1, .kw = 1)},
    };
    double worst = 0;
    for (size_t c = 0; c < NCASES + 3; c++) {
        const conv_case *cc = c < NCASES ? &CASES[c] : &extra[c - NCASES];
        if (cc->g.groups > 1)
            continue;
        problem p = make(cc->g, &s);
        const int n = 37, cout = p.g.cout;
        const size_t K = p.nw / cout;
        float *x = bw_rand(&s, p.nx * n, 1.0f), *dy = bw_rand(&s, p.ny * n, 1.0f);
        size_t ns = tl_conv_backward_scratch_floats(&p.g), nw = tl_conv_wgrad_scratch_floats(&p.g);
        float *scratch = malloc(((ns > nw ? ns : nw) + 1) * sizeof *scratch);
        float *dw = bw_zeros(p.nw), *db = bw_zeros(cout), *dwt = bw_rand(&s, p.nw, 1.0f);
        double *dbd = calloc((size_t)cout, sizeof *dbd);
        for (int b = 0; b < n; b++)
            tl_conv_backward_weight(ws, &p.g, x + b * p.nx, dy + b * p.ny, dw, db, 0, cout, scratch);
        tl_conv_wgrad_images(ws, &p.g, n, x, dy, dwt, 0, dbd, scratch);
        double scale = 0, err = 0, berr = 0;
        for (int co = 0; co < cout; co++) {
            for (size_t k = 0; k < K; k++) {
                scale = fmax(scale, fabs(dw[co * K + k]));
                err = fmax(err, fabs(dw[co * K + k] - dwt[k * cout + co]));
            }
            berr = fmax(berr, fabs(db[co] - dbd[co]) / (fabs(db[co]) + 1.0));
        }
        err /= scale;
        worst = fmax(worst, err);
        CHECK_MSG(err < 1e-5 && berr < 1e-5, "%s: batched weight gradient off by %.3g (bias %.3g)", cc->name, err,
                  berr);
        float *twice = malloc(p.nw * sizeof *twice);
        memcpy(twice, dwt, p.nw * sizeof *twice);
        tl_conv_wgrad_images(ws, &p.g, n, x, dy, twice, 1, NULL, scratch);
        int ok = 1;
        for (size_t k = 0; k < p.nw; k++)
            ok = ok && fabs(twice[k] - 2 * dwt[k]) <= 1e-5 * scale * 2;
        CHECK_MSG(ok, "%s: accumulate does not add", cc->name);
        tl_conv_wgrad_images(ws, &p.g, 0, x, dy, twice, 0, NULL, scratch);
        ok = 1;
        for (size_t k = 0; k < p.nw; k++)
            ok = ok && twice[k] == 0.0f;
        CHECK_MSG(ok, "%s: no images without accumulate leaves the gradient unchanged", cc->name);
        free(twice), free(scratch), free(dw), free(db), free(dwt), free(dbd), free(x), free(dy);
        unmake(&p);
    }
    printf("test_backward_conv: batched weight gradient, max relative error %.3g\n", worst);
}

static void test_simd(void)
{
    const char *paths[] = {"scalar", "avx2", "avx512"};
    tl_err e = {0};
    tl_kws *base = tl_kws_new_simd("scalar", &e);
    CHECK(base != NULL);
    if (!base)
        return;
    for (int k = 1; k < 3; k++) {
        if (!tl_simd_supported(paths[k])) {
            printf("test_backward_conv: %s not supported here, skipped\n", paths[k]);
            continue;
        }
        tl_kws *ws = tl_kws_new_simd(paths[k], &e);
        CHECK(ws != NULL);
        if (!ws)
            continue;
        uint64_t s = 99;
        for (size_t c = 0; c < NCASES; c++) {
            problem p = make(CASES[c].g, &s);
            setenv("TL_SIMD", "scalar", 1);
            grads a = run(base, &p);
            setenv("TL_SIMD", paths[k], 1);
            grads b = run(ws, &p);
            unsetenv("TL_SIMD");
            double err = fmax(bw_relerr(b.dx, a.dx, p.nx), bw_relerr(b.dw, a.dw, p.nw));
            worst_simd = fmax(worst_simd, err);
            CHECK_MSG(err < 1e-5, "%s: %s differs from scalar by %g", CASES[c].name, paths[k], err);
            /* the depthwise weight gradient's copies promise the same bits */
            if (p.g.groups == p.g.cin && p.g.cout == p.g.cin)
                CHECK_MSG(!memcmp(a.dw, b.dw, p.nw * sizeof(float)), "%s: depthwise weight gradient on %s is not "
                          "bit-identical to scalar", CASES[c].name, paths[k]);
            grads_free(&a);
            grads_free(&b);
            unmake(&p);
        }
        tl_kws_free(ws);
    }
    tl_kws_free(base);
}

/* The data gradient with W^T packed ahead is bit-identical to the one that
 * packs per call, on every SIMD path, whether packed in one part or three;
 * grouped and depthwise layers are not packable. */
static void test_packed(void)
{
    const char *paths[] = {"scalar", "avx2", "avx512"};
    conv_case extra[] = {
        {"k3_two_kblocks", G(.cin = 7, .h = 6, .w = 5, .cout = 400, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1)},
        {"1x1_two_kblocks", G(.cin = 37, .h = 5, .w = 9, .cout = 777, .kh = 1, .kw = 1)},
    };
    tl_err e = {0};
    for (int k = 0; k < 3; k++) {
        if (!tl_simd_supported(paths[k]))
            continue;
        tl_kws *ws = tl_kws_new_simd(paths[k], &e);
        CHECK(ws != NULL);
        if (!ws)
            continue;
        tl_kws_set_exact(ws, 1); /* the direct algorithms (test_winograd_data: the other) */
        uint64_t s = 5;
        for (size_t c = 0; c < NCASES + 2; c++) {
            const conv_case *cc = c < NCASES ? &CASES[c] : &extra[c - NCASES];
            problem p = make(cc->g, &s);
            int packable = tl_conv_backward_packable(&p.g);
            CHECK_MSG(packable == (p.g.groups == 1), "%s: packable is %d", cc->name, packable);
            if (!packable) {
                unmake(&p);
                continue;
            }
            size_t ns = tl_conv_backward_scratch_floats(&p.g), np = tl_conv_backward_packed_floats(ws, &p.g);
            float *scratch = malloc((ns ? ns : 1) * sizeof *scratch);
            float *packed = tl_alloc_array(np, sizeof(float)), *packed3 = tl_alloc_array(np, sizeof(float));
            float *dx = malloc(p.nx * sizeof *dx), *dxp = malloc(p.nx * sizeof *dxp);
            for (size_t i = 0; i < np; i++)
                packed3[i] = NAN; /* the three parts must cover everything */
            tl_conv_backward_pack(ws, &p.g, p.w, packed, 0, 1);
            for (int part = 0; part < 3; part++)
                tl_conv_backward_pack(ws, &p.g, p.w, packed3, part, 3);
            CHECK_MSG(!memcmp(packed, packed3, np * sizeof *packed), "%s %s: packing in three parts differs",
                      cc->name, paths[k]);
            tl_conv_backward_data(ws, &p.g, p.dy, p.w, dx, scratch);
            for (size_t i = 0; i < p.nx; i++)
                dxp[i] = NAN;
            tl_conv_backward_data_packed(ws, &p.g, p.dy, packed, dxp, scratch);
            CHECK_MSG(!memcmp(dx, dxp, p.nx * sizeof *dx), "%s %s: packed data gradient differs", cc->name,
                      paths[k]);
            free(scratch), free(dx), free(dxp);
            tl_free(packed), tl_free(packed3);
            unmake(&p);
        }
        tl_kws_free(ws);
    }
}

/* Winograd for the data gradient (a workspace that is not exact, a 3x3
 * stride-1 layer on a map large enough): against the double reference,
 * error over sum |w dy| within 1e-5 and 64x the direct path's; packing in
 * three parts gives the same buffer; on every SIMD path. Symmetric and
 * asymmetric padding 0..2, channel counts off the micro-kernel's rows. */
static void test_winograd_data(void)
{
    const char *paths[] = {"scalar", "avx2", "avx512"};
    conv_case cases[] = {
        {"wino_p1", G(.cin = 16, .h = 20, .w = 20, .cout = 24, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1)},
        {"wino_p0_odd", G(.cin = 19, .h = 27, .w = 25, .cout = 17, .kh = 3, .kw = 3)},
        {"wino_asym", G(.cin = 33, .h = 21, .w = 26, .cout = 20, .kh = 3, .kw = 3, .pad_t = 0, .pad_l = 2, .pad_b = 1, .pad_r = 0)},
        {"wino_p2", G(.cin = 16, .h = 18, .w = 19, .cout = 16, .kh = 3, .kw = 3, .pad_t = 2, .pad_l = 2, .pad_b = 2, .pad_r = 2)},
    };
    tl_err e = {0};
    for (int k = 0; k < 3; k++) {
        if (!tl_simd_supported(paths[k]))
            continue;
        tl_kws *ws = tl_kws_new_simd(paths[k], &e);
        CHECK(ws != NULL);
        if (!ws)
            continue;
        uint64_t s = 17;
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            problem p = make(cases[c].g, &s);
            const tl_conv_geom *g = &p.g;
            double *ref = calloc(p.nx, sizeof *ref), *mag = calloc(p.nx, sizeof *mag), worst[2] = {0, 0};
            for (int co = 0; co < g->cout; co++) /* dx and sum |w dy| per input element */
                for (int oy = 0; oy < g->oh; oy++)
                    for (int ox = 0; ox < g->ow; ox++)
                        for (int ci = 0; ci < g->cin; ci++)
                            for (int t = 0; t < 9; t++) {
                                int iy = oy - g->pad_t + t / 3, ix = ox - g->pad_l + t % 3;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                    continue;
                                double v = (double)p.w[((size_t)co * g->cin + ci) * 9 + t] *
                                           p.dy[((size_t)co * g->oh + oy) * g->ow + ox];
                                ref[((size_t)ci * g->h + iy) * g->w + ix] += v;
                                mag[((size_t)ci * g->h + iy) * g->w + ix] += fabs(v);
                            }
            size_t npk[2];
            for (int exact = 1; exact >= 0; exact--) {
                tl_kws_set_exact(ws, exact);
                size_t ns = tl_conv_backward_packed_scratch_floats(ws, g), np = tl_conv_backward_packed_floats(ws, g);
                npk[exact] = np;
                float *scratch = tl_alloc_array(ns ? ns : 1, sizeof(float)), *dx = malloc(p.nx * sizeof *dx);
                float *packed = tl_alloc_array(np, sizeof(float)), *packed3 = tl_alloc_array(np, sizeof(float));
                for (size_t i = 0; i < np; i++)
                    packed3[i] = NAN;
                tl_conv_backward_pack(ws, g, p.w, packed, 0, 1);
                for (int part = 0; part < 3; part++)
                    tl_conv_backward_pack(ws, g, p.w, packed3, part, 3);
                CHECK_MSG(!memcmp(packed, packed3, np * sizeof *packed), "%s %s exact %d: packing in parts differs",
                          cases[c].name, paths[k], exact);
                for (size_t i = 0; i < p.nx; i++)
                    dx[i] = NAN;
                tl_conv_backward_data_packed(ws, g, p.dy, packed, dx, scratch);
                for (size_t i = 0; i < p.nx; i++) {
                    double d = fabs(dx[i] - ref[i]) / (mag[i] + 1e-3);
                    worst[exact] = d > worst[exact] || d != d ? d : worst[exact];
                }
                tl_free(scratch), free(dx);
                tl_free(packed), tl_free(packed3);
            }
            tl_kws_set_exact(ws, 0);
            CHECK_MSG(npk[0] != npk[1], "%s %s: Winograd did not apply", cases[c].name, paths[k]);
            CHECK_MSG(worst[0] < 1e-5 && worst[0] <= 64 * worst[1] + 1e-7,
                      "%s %s: Winograd data gradient error %g (direct %g)", cases[c].name, paths[k], worst[0], worst[1]);
            printf("test_backward_conv: %s %s: Winograd data gradient, worst error / sum|w dy| %.2g (direct %.2g)\n",
                   cases[c].name, paths[k], worst[0], worst[1]);
            free(ref), free(mag);
            unmake(&p);
        }
        tl_kws_free(ws);
    }
}

/* The weight gradient of 3x3 stride-1 layers by Winograd (not exact):
 * against a double reference summed over several images (blocks of tiles
 * spanning images, partial tiles at the edges, every padding), per element
 * relative to sum |x dy|, on every SIMD path; accumulate adds, no images
 * clears. */
static void test_winograd_weight(void)
{
    const char *paths[] = {"scalar", "avx2", "avx512"};
    conv_case cases[] = {
        {"wgw_p1", G(.cin = 16, .h = 20, .w = 20, .cout = 24, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1)},
        {"wgw_p0_odd", G(.cin = 16, .h = 27, .w = 25, .cout = 16, .kh = 3, .kw = 3)},
        {"wgw_asym", G(.cin = 32, .h = 21, .w = 26, .cout = 24, .kh = 3, .kw = 3, .pad_t = 0, .pad_l = 2, .pad_b = 1, .pad_r = 0)},
        {"wgw_7x7", G(.cin = 16, .h = 7, .w = 7, .cout = 32, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1)},
    };
    const int nimg[] = {7, 2, 3, 37};
    tl_err e = {0};
    for (int k = 0; k < 3; k++) {
        if (!tl_simd_supported(paths[k]))
            continue;
        tl_kws *ws = tl_kws_new_simd(paths[k], &e);
        CHECK(ws != NULL);
        if (!ws)
            continue;
        uint64_t s = 23;
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            problem p = make(cases[c].g, &s);
            const tl_conv_geom *g = &p.g;
            const int n = nimg[c], cout = g->cout, K = g->cin * 9;
            float *x = bw_rand(&s, p.nx * n, 1.0f), *dy = bw_rand(&s, p.ny * n, 1.0f);
            double *ref = calloc(p.nw, sizeof *ref), *mag = calloc(p.nw, sizeof *mag), worst[2] = {0, 0};
            for (int b = 0; b < n; b++)
                for (int co = 0; co < cout; co++)
                    for (int ci = 0; ci < g->cin; ci++)
                        for (int t = 0; t < 9; t++)
                            for (int oy = 0; oy < g->oh; oy++)
                                for (int ox = 0; ox < g->ow; ox++) {
                                    int iy = oy - g->pad_t + t / 3, ix = ox - g->pad_l + t % 3;
                                    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                        continue;
                                    double v = (double)x[b * p.nx + ((size_t)ci * g->h + iy) * g->w + ix] *
                                               dy[b * p.ny + ((size_t)co * g->oh + oy) * g->ow + ox];
                                    ref[(size_t)(ci * 9 + t) * cout + co] += v;
                                    mag[(size_t)(ci * 9 + t) * cout + co] += fabs(v);
                                }
            size_t ns = tl_conv_wgrad_scratch_floats(g);
            float *scratch = tl_alloc_array(ns, sizeof(float)), *dwt = malloc(p.nw * sizeof *dwt);
            float *twice = malloc(p.nw * sizeof *twice);
            for (int exact = 1; exact >= 0; exact--) {
                tl_kws_set_exact(ws, exact);
                for (size_t i = 0; i < p.nw; i++)
                    dwt[i] = NAN;
                tl_conv_wgrad_images(ws, g, n, x, dy, dwt, 0, NULL, scratch);
                if (exact)
                    memcpy(twice, dwt, p.nw * sizeof *twice);
                else
                    CHECK_MSG(memcmp(twice, dwt, p.nw * sizeof *twice), "%s %s: Winograd did not apply",
                              cases[c].name, paths[k]);
                for (size_t i = 0; i < p.nw; i++) {
                    double d = fabs(dwt[i] - ref[i]) / (mag[i] + 1e-3);
                    worst[exact] = d > worst[exact] || d != d ? d : worst[exact];
                }
            }
            memcpy(twice, dwt, p.nw * sizeof *twice);
            tl_conv_wgrad_images(ws, g, n, x, dy, twice, 1, NULL, scratch);
            int ok = 1;
            for (size_t i = 0; i < p.nw; i++)
                ok = ok && fabs(twice[i] - 2.0 * dwt[i]) <= 1e-5 * (mag[i] + 1e-3);
            CHECK_MSG(ok, "%s %s: Winograd weight gradient: accumulate does not add", cases[c].name, paths[k]);
            tl_conv_wgrad_images(ws, g, 0, x, dy, twice, 0, NULL, scratch);
            ok = 1;
            for (size_t i = 0; i < p.nw; i++)
                ok = ok && twice[i] == 0.0f;
            CHECK_MSG(ok, "%s %s: no images does not clear", cases[c].name, paths[k]);
            CHECK_MSG(worst[0] < 1e-5 && worst[0] <= 64 * worst[1] + 1e-7,
                      "%s %s: Winograd weight gradient error %g (direct %g)", cases[c].name, paths[k], worst[0],
                      worst[1]);
            printf("test_backward_conv: %s %s: Winograd weight gradient (%d images, K %d), worst error / sum|x dy| "
                   "%.2g (direct %.2g)\n",
                   cases[c].name, paths[k], n, K, worst[0], worst[1]);
            tl_free(scratch), free(dwt), free(twice), free(ref), free(mag), free(x), free(dy);
            unmake(&p);
        }
        tl_kws_free(ws);
    }
}

static void test_torch(tl_kws *ws)
{
    bw_ref r;
    int st = bw_ref_start(&r, "test_backward_conv");
    if (st <= 0)
        return;
    for (size_t c = 0; c < NCASES; c++) {
        tl_conv_geom g = CASES[c].g;
        tl_conv_geom_finish(&g);
        fprintf(r.cases, "%s conv %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d\n", CASES[c].name, g.cin, g.h, g.w,
                g.cout, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_t, g.pad_l, g.pad_b, g.pad_r, g.dil_h, g.dil_w,
                g.groups);
    }
    double worst = 0;
    if (bw_ref_run(&r, "test_backward_conv") == 1) {
        for (size_t c = 0; c < NCASES; c++) {
            const char *n = CASES[c].name;
            problem p = make(CASES[c].g, &(uint64_t){1});
            unmake(&p);
            float *x = bw_ref_read(&r, n, "x", p.nx), *w = bw_ref_read(&r, n, "w", p.nw);
            float *b = bw_ref_read(&r, n, "b", p.g.cout), *dy = bw_ref_read(&r, n, "dy", p.ny);
            float *ty = bw_ref_read(&r, n, "y", p.ny), *tdx = bw_ref_read(&r, n, "dx", p.nx);
            float *tdw = bw_ref_read(&r, n, "dw", p.nw), *tdb = bw_ref_read(&r, n, "db", p.g.cout);
            if (x && w && b && dy && ty && tdx && tdw && tdb) {
                p.x = x, p.w = w, p.b = b, p.dy = dy;
                grads gr = run(ws, &p);
                float *y = malloc(p.ny * sizeof *y);
                conv_forward_once(ws, &p.g, x, w, b, TL_ACT_NONE, y);
                double ey = bw_relerr(y, ty, p.ny), ex = bw_relerr(gr.dx, tdx, p.nx);
                double ew = bw_relerr(gr.dw, tdw, p.nw), eb = bw_relerr(gr.db, tdb, p.g.cout);
                double e = fmax(fmax(ey, ex), fmax(ew, eb));
                worst = fmax(worst, e);
                CHECK_MSG(e <= 1e-4, "%s vs pytorch: y %g dx %g dw %g db %g", n, ey, ex, ew, eb);
                grads_free(&gr);
                free(y);
            }
            free(x), free(w), free(b), free(dy), free(ty), free(tdx), free(tdw), free(tdb);
        }
        printf("test_backward_conv: vs pytorch, max relative error %.3g over %zu cases\n", worst, NCASES);
    }
    bw_ref_done(&r);
}

int main(void)
{
    tl_err e = {0};
    tl_kws *ws = tl_kws_new(&e);
    CHECK(ws != NULL);
    if (!ws)
        return check_finish("test_backward_conv");
    test_reference(ws);
    test_split(ws);
    test_wgrad_images(ws);
    test_simd();
    test_packed();
    test_winograd_data();
    test_winograd_weight();
    test_torch(ws);
    printf("test_backward_conv: max relative error vs double reference %.3g, adjoint %.3g, finite differences %.3g, "
           "simd paths %.3g\n",
           worst_ref, worst_adj, worst_fd, worst_simd);
    tl_kws_free(ws);
    return check_finish("test_backward_conv");
}
