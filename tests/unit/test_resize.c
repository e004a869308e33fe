/* Resizing and preprocessing against PIL 9.4 and torchvision 0.14
 * (through tests/parity/resize_pil.py), plus checks that need no Python. */
#include "check.h"
#include "test_image_util.h"
#include "kernels/kernels.h"

#include <math.h>

static const char *interp_name[] = { "bilinear", "bicubic", "nearest" };

static int interp_from(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, interp_name[i]))
            return i;
    return -1;
}

static void fill_pattern(tl_image *im, int w, int h, unsigned seed)
{
    tl_err e;
    CHECK(tl_image_alloc(im, w, h, &e) == 0);
    unsigned s = seed;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        s = s * 1103515245u + 12345u;
        im->px[i] = (uint8_t)((s >> 16) & 0xff);
    }
}

/* Properties that hold without a reference implementation. */
static void test_offline(tl_preproc_ws *ws)
{
    tl_err e;
    tl_image a = { 0 }, b = { 0 }, c = { 0 };

    /* 2 -> 1 bilinear: both taps weigh 1/2, rounding half up */
    CHECK(tl_image_alloc(&a, 2, 1, &e) == 0);
    uint8_t v[6] = { 10, 0, 255, 21, 1, 255 };
    memcpy(a.px, v, 6);
    CHECK(tl_image_resize(&a, 1, 1, TL_INTERP_BILINEAR, &b, ws, &e) == 0);
    CHECK_MSG(b.px[0] == 16 && b.px[1] == 1 && b.px[2] == 255, "got %d %d %d", b.px[0], b.px[1],
              b.px[2]);

    /* constant images stay constant under every filter and size */
    CHECK(tl_image_alloc(&a, 37, 23, &e) == 0);
    for (size_t i = 0; i < 37 * 23 * 3; i++)
        a.px[i] = (uint8_t)(i % 3 == 0 ? 200 : i % 3 == 1 ? 0 : 255);
    for (int it = 0; it < 3; it++) {
        int sizes[4][2] = { { 5, 3 }, { 100, 61 }, { 37, 7 }, { 1, 1 } };
        for (int s = 0; s < 4; s++) {
            CHECK(tl_image_resize(&a, sizes[s][0], sizes[s][1], it, &b, ws, &e) == 0);
            int ok = b.w == sizes[s][0] && b.h == sizes[s][1];
            for (size_t i = 0; ok && i < (size_t)b.w * b.h * 3; i++)
                ok = b.px[i] == a.px[i % 3];
            CHECK_MSG(ok, "constant image changed (%s to %dx%d)", interp_name[it], sizes[s][0],
                      sizes[s][1]);
        }
    }

    /* same size is a copy; a window equals the crop of the full result */
    fill_pattern(&a, 53, 41, 7);
    CHECK(tl_image_resize(&a, 53, 41, TL_INTERP_BICUBIC, &b, ws, &e) == 0);
    CHECK(b.w == 53 && b.h == 41 && !memcmp(a.px, b.px, 53 * 41 * 3));
    for (int it = 0; it < 3; it++) {
        int tw[3] = { 30, 80, 53 }, th[3] = { 70, 19, 20 };
        for (int s = 0; s < 3; s++) {
            CHECK(tl_image_resize(&a, tw[s], th[s], it, &b, ws, &e) == 0);
            int x0 = tw[s] / 5, y0 = th[s] / 3, cw = tw[s] / 2, ch = th[s] / 2;
            CHECK(tl_image_resize_window(&a, tw[s], th[s], x0, y0, cw, ch, it, &c, ws, &e) == 0);
            int ok = c.w == cw && c.h == ch;
            for (int y = 0; ok && y < ch; y++)
                ok = !memcmp(c.px + (size_t)y * cw * 3,
                             b.px + ((size_t)(y0 + y) * b.w + x0) * 3, (size_t)cw * 3);
            CHECK_MSG(ok, "window differs from crop (%s %dx%d)", interp_name[it], tw[s], th[s]);
        }
    }

    /* nearest 2x upscale duplicates pixels */
    CHECK(tl_image_resize(&a, 106, 82, TL_INTERP_NEAREST, &b, ws, &e) == 0);
    int ok = 1;
    for (int y = 0; ok && y < 82; y++)
        for (int x = 0; ok && x < 106; x++)
            ok = !memcmp(b.px + ((size_t)y * 106 + x) * 3, a.px + ((size_t)(y / 2) * 53 + x / 2) * 3, 3);
    CHECK(ok);

    /* bad arguments fail cleanly */
    CHECK(tl_image_resize(&a, 0, 5, TL_INTERP_BILINEAR, &b, ws, &e) < 0);
    CHECK(tl_image_resize(&a, 5, 5, 17, &b, ws, &e) < 0);
    CHECK(tl_image_resize(&a, 5, 5, TL_INTERP_BILINEAR, &a, ws, &e) < 0);
    CHECK(tl_image_resize_window(&a, 10, 10, 5, 5, 6, 2, TL_INTERP_BILINEAR, &b, ws, &e) < 0);
    /* ws may be NULL */
    CHECK(tl_image_resize(&a, 20, 20, TL_INTERP_BILINEAR, &b, NULL, &e) == 0);

    tl_image_free(&a);
    tl_image_free(&b);
    tl_image_free(&c);
}

static void test_against_pil(const char *script, const char *dir, const char *photo,
                             tl_preproc_ws *ws)
{
    const char *args[] = { "resize", dir, photo, NULL };
    int rc = tu_run_python(script, args);
    if (rc != 0) {
        printf("test_resize: PIL comparison skipped (python reference exited %d)\n", rc);
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char in[2048], ref[2048], name[32];
    int w, h, ncase = 0, worst = 0;
    size_t ndiff_all = 0, n_all = 0;
    tl_image src = { 0 }, want = { 0 }, got = { 0 };
    tl_err e;
    while (fscanf(f, "%2047s %2047s %d %d %31s", in, ref, &w, &h, name) == 5) {
        int it = interp_from(name);
        CHECK(it >= 0);
        int ok = tl_image_decode_file(in, &src, 0, &e) == 0;
        CHECK_MSG(ok, "%s", e.msg);
        ok = ok && tl_image_decode_file(ref, &want, 0, &e) == 0;
        ok = ok && tl_image_resize(&src, w, h, it, &got, ws, &e) == 0;
        CHECK_MSG(ok, "case %d: %s", ncase, e.msg);
        if (!ok)
            continue;
        tu_diff d = tu_compare(&got, &want);
        printf("  %-9s %4dx%-4d -> %4dx%-4d  max|diff| %d  differing %.5f%%\n", name, src.w,
               src.h, w, h, d.max, 100.0 * d.frac);
        CHECK_MSG(d.max <= 1, "case %d (%s %dx%d): max diff %d", ncase, name, w, h, d.max);
        if (d.max > worst)
            worst = d.max;
        size_t n = (size_t)w * h * 3;
        ndiff_all += (size_t)(d.frac * (double)n + 0.5);
        n_all += n;
        ncase++;
    }
    fclose(f);
    CHECK(ncase >= 30);
    printf("test_resize: %d cases against PIL: max|diff| %d, differing samples %.6f%%\n", ncase,
           worst, n_all ? 100.0 * (double)ndiff_all / (double)n_all : 0.0);
    tl_image_free(&src);
    tl_image_free(&want);
    tl_image_free(&got);
}

/* tl_preprocess against torchvision on one image, at given sizes. */
static void preprocess_case(const char *script, const char *dir, const char *image, int R, int W, int H,
                            int mode, tl_preproc_ws *ws)
{
    char out[4096], rs[16], ws_[16], hs[16];
    const char *mname = tl_resize_mode_name(mode);
    snprintf(out, sizeof out, "%s/pre_%d_%dx%d_%s.f32", dir, R, W, H, mname);
    snprintf(rs, sizeof rs, "%d", R);
    snprintf(ws_, sizeof ws_, "%d", W);
    snprintf(hs, sizeof hs, "%d", H);
    const char *args[] = { "preprocess", out, image, rs, ws_, hs, mname, NULL };
    int rc = tu_run_python(script, args);
    if (rc != 0) {
        printf("test_resize: torchvision comparison skipped (python reference exited %d)\n", rc);
        return;
    }
    size_t n = (size_t)3 * W * H;
    float *want = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float)),
          *bgr = malloc(n * sizeof(float));
    FILE *f = fopen(out, "rb");
    CHECK(f && fread(want, sizeof(float), n, f) == n);
    if (f)
        fclose(f);
    tl_image img = { 0 }, geo = { 0 };
    tl_err e;
    tl_preproc pp;
    tl_preproc_default(&pp);
    pp.resize_size = R;
    pp.input_w = W;
    pp.input_h = H;
    pp.resize_mode = mode;
    CHECK(tl_image_decode_file(image, &img, 0, &e) == 0);
    CHECK_MSG(tl_preprocess(&img, &pp, got, ws, &e) == 0, "%s", e.msg);
    double maxd = 0;
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (d > 1e-6)
            nd++;
        if (d > maxd)
            maxd = d;
    }
    printf("  preprocess %dx%d resize %d %s %dx%d: max|diff| %.3g, differing %.5f%%\n", img.w, img.h, R, mname,
           W, H, maxd, 100.0 * (double)nd / (double)n);
    CHECK_MSG(maxd <= 0.02, "preprocess differs from torchvision by %g", maxd);

    /* the geometry alone gives the pixels that were normalised */
    CHECK_MSG(tl_preprocess_image(&img, &pp, &geo, ws, &e) == 0, "%s", e.msg);
    CHECK(geo.w == W && geo.h == H);
    int same = 1;
    size_t plane = (size_t)W * H;
    for (int c = 0; c < 3 && same; c++)
        for (size_t i = 0; i < plane && same; i++)
            same = got[c * plane + i] == ((float)geo.px[3 * i + c] / 255.0f - pp.mean[c]) / pp.std[c];
    CHECK_MSG(same, "tl_preprocess_image differs from tl_preprocess (%s %dx%d)", mname, W, H);

    pp.bgr = 1;
    CHECK(tl_preprocess(&img, &pp, bgr, ws, &e) == 0);
    CHECK(!memcmp(bgr, got + 2 * plane, plane * sizeof(float)));
    CHECK(!memcmp(bgr + plane, got + plane, plane * sizeof(float)));
    CHECK(!memcmp(bgr + 2 * plane, got, plane * sizeof(float)));
    tl_image_free(&img);
    tl_image_free(&geo);
    free(want);
    free(got);
    free(bgr);
}

static void test_preprocess_offline(tl_preproc_ws *ws)
{
    tl_image img = { 0 };
    tl_err e;
    tl_preproc pp;
    tl_preproc_default(&pp);
    CHECK(pp.input_w == 224 && pp.input_h == 224 && pp.resize_size == 256 && !pp.bgr);
    CHECK(pp.resize_mode == TL_RESIZE_CROP);
    CHECK_NEAR(pp.mean[1], 0.456, 1e-7);
    CHECK_NEAR(pp.std[2], 0.225, 1e-7);
    /* a constant grey image normalises to the same value everywhere */
    CHECK(tl_image_alloc(&img, 300, 200, &e) == 0);
    memset(img.px, 128, 300 * 200 * 3);
    float *out = malloc(sizeof(float) * 3 * 224 * 224);
    CHECK(tl_preprocess(&img, &pp, out, ws, &e) == 0);
    for (int c = 0; c < 3; c++) {
        float want = (128.0f / 255.0f - pp.mean[c]) / pp.std[c];
        CHECK(out[c * 224 * 224] == want && out[c * 224 * 224 + 224 * 224 - 1] == want);
    }
    pp.input_w = 0;
    CHECK(tl_preprocess(&img, &pp, out, ws, &e) < 0);

    /* the words of sizes and geometries */
    int w = 0, h = 0;
    CHECK(tl_input_size_parse("224", 4096, &w, &h) == 0 && w == 224 && h == 224);
    CHECK(tl_input_size_parse("320x224", 4096, &w, &h) == 0 && w == 320 && h == 224);
    const char *badsz[] = {"", "x", "0", "320x", "x224", "320x224x3", "-5", "320X224", "5000", " 3", "3 ", NULL};
    for (int i = 0; badsz[i]; i++)
        CHECK_MSG(tl_input_size_parse(badsz[i], 4096, &w, &h) < 0, "'%s' parses", badsz[i]);
    CHECK(tl_input_size_parse(NULL, 4096, &w, &h) < 0);
    char buf[160];
    tl_input_size_format(320, 224, buf, sizeof buf);
    CHECK(!strcmp(buf, "320x224"));
    tl_preproc g;
    tl_preproc_default(&g);
    g.input_w = 96;
    g.input_h = 160;
    g.resize_mode = TL_RESIZE_PAD;
    g.resize_size = 110;
    tl_preproc_geometry_format(&g, buf, sizeof buf);
    CHECK(!strcmp(buf, "96x160 pad 110"));
    tl_preproc back;
    tl_preproc_default(&back);
    CHECK(tl_preproc_geometry_parse(buf, &back) == 0 && back.input_w == 96 && back.input_h == 160 &&
          back.resize_mode == TL_RESIZE_PAD && back.resize_size == 110);
    CHECK(tl_preproc_geometry_parse("96x160 zoom 110", &back) < 0 && tl_preproc_geometry_parse("96 pad", &back) < 0 &&
          tl_preproc_geometry_parse("96 pad 110 x", &back) < 0);
    for (int m = 0; m < 3; m++)
        CHECK(tl_resize_mode_parse(tl_resize_mode_name(m)) == m);
    /* another input keeps the box's ratio to the shorter side */
    tl_preproc_default(&g);
    tl_preproc_resize_input(&g, 320, 224, -1);
    CHECK(g.resize_size == 256 && g.resize_mode == TL_RESIZE_CROP);
    tl_preproc_resize_input(&g, 112, 160, TL_RESIZE_SQUASH);
    CHECK(g.resize_size == 128 && g.resize_mode == TL_RESIZE_SQUASH && g.input_w == 112 && g.input_h == 160);
    int rw, rh, left, top;
    tl_preproc_default(&g);
    g.input_w = 320;
    g.input_h = 224;
    CHECK(tl_preproc_plan(&g, 500, 375, &rw, &rh, &left, &top, &e) == 0);
    /* box 365x256; cover: ratio min(375/256, 500/365) -> 365 wide */
    CHECK(rw == 365 && rh == 274 && left == 22 && top == 25);
    tl_preproc_describe(&g, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "cover 365x256 keeping the aspect ratio (bilinear), centre crop 320x224"), "%s", buf);
    free(out);
    tl_image_free(&img);
}

/* Every SIMD path of the row passes gives the scalar path's bytes: odd
 * widths (vector tails, taps reaching the row's last pixel), windows,
 * both filters, down- and upscaling, one axis at a time. */
static void test_paths_agree(tl_preproc_ws *ws)
{
    static const char *const paths[] = { "avx2", "avx512" };
    static const int shapes[][8] = {
        /* src w, h, target w, h, window x0, y0, cw, ch (0: whole) */
        { 517, 389, 341, 256, 58, 16, 224, 224 }, { 389, 517, 256, 341, 16, 58, 224, 224 },
        { 33, 7, 13, 5, 0, 0, 0, 0 },             { 7, 33, 23, 61, 0, 0, 0, 0 },
        { 301, 203, 301, 150, 3, 9, 297, 131 },   { 301, 203, 170, 203, 0, 0, 0, 0 },
        { 1000, 751, 150, 113, 1, 0, 149, 113 },  { 64, 64, 224, 224, 0, 0, 0, 0 },
        { 2, 1, 1, 1, 0, 0, 0, 0 },               { 1, 300, 9, 37, 0, 0, 0, 0 },
    };
    const char *was = getenv("TL_SIMD");
    char saved[32] = "";
    if (was)
        snprintf(saved, sizeof saved, "%s", was);
    tl_image src = { 0 }, want = { 0 }, got = { 0 };
    tl_err e;
    int compared = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int *c = shapes[s];
        fill_pattern(&src, c[0], c[1], (unsigned)(11 + s));
        int cw = c[6] ? c[6] : c[2], ch = c[7] ? c[7] : c[3];
        for (int it = TL_INTERP_BILINEAR; it <= TL_INTERP_BICUBIC; it++) {
            setenv("TL_SIMD", "scalar", 1);
            CHECK(tl_image_resize_window(&src, c[2], c[3], c[4], c[5], cw, ch, it, &want, ws, &e) == 0);
            for (int p = 0; p < 2; p++) {
                if (!tl_simd_supported(paths[p]))
                    continue;
                setenv("TL_SIMD", paths[p], 1);
                CHECK(tl_image_resize_window(&src, c[2], c[3], c[4], c[5], cw, ch, it, &got, ws, &e) == 0);
                CHECK_MSG(got.w == want.w && got.h == want.h &&
                              !memcmp(got.px, want.px, (size_t)want.w * want.h * 3),
                          "%s %s %dx%d -> %dx%d window %dx%d+%d+%d differs from scalar", paths[p],
                          interp_name[it], c[0], c[1], c[2], c[3], cw, ch, c[4], c[5]);
                compared++;
            }
        }
    }
    if (was)
        setenv("TL_SIMD", saved, 1);
    else
        unsetenv("TL_SIMD");
    printf("test_resize: %d resizes on the SIMD paths equal the scalar path's bytes\n", compared);
    tl_image_free(&src);
    tl_image_free(&want);
    tl_image_free(&got);
}

int main(void)
{
    tl_preproc_ws ws;
    memset(&ws, 0, sizeof ws);
    test_offline(&ws);
    test_preprocess_offline(&ws);
    test_paths_agree(&ws);

    char sbuf[4096], ibuf[4096], photo[4200];
    const char *script = tu_script(sbuf, sizeof sbuf);
    const char *images = tu_shared_images(ibuf, sizeof ibuf);
    photo[0] = '\0';
    if (images) {
        snprintf(photo, sizeof photo, "%s/cat.bmp", images);
        if (!tu_exists(photo))
            photo[0] = '\0';
    }
    if (!photo[0])
        printf("test_resize: no shared cat.bmp, photo case skipped\n");
    if (!script || access(TU_PYTHON, X_OK) != 0) {
        printf("test_resize: PIL/torchvision comparisons skipped (no %s or no reference script)\n",
               TU_PYTHON);
    } else {
        char dir[] = "/tmp/tl_resize_XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        test_against_pil(script, dir, photo[0] ? photo : NULL, &ws);

        /* a generated image, written by us, read by both sides */
        tl_image g = { 0 };
        tl_err e;
        fill_pattern(&g, 300, 217, 99);
        /* smooth it a little so it looks like a photo to the resampler */
        tl_image g2 = { 0 };
        CHECK(tl_image_resize(&g, 60, 43, TL_INTERP_BILINEAR, &g2, &ws, &e) == 0);
        CHECK(tl_image_resize(&g2, 300, 217, TL_INTERP_BICUBIC, &g, &ws, &e) == 0);
        char gp[4200];
        snprintf(gp, sizeof gp, "%s/gen.png", dir);
        CHECK(tl_image_write_png(gp, &g, &e) == 0);
        preprocess_case(script, dir, gp, 256, 224, 224, TL_RESIZE_CROP, &ws);
        preprocess_case(script, dir, gp, 224, 224, 224, TL_RESIZE_SQUASH, &ws);
        preprocess_case(script, dir, gp, 160, 129, 129, TL_RESIZE_CROP, &ws);
        preprocess_case(script, dir, gp, 200, 240, 240, TL_RESIZE_CROP, &ws); /* crop larger: zero padding */
        /* oblong inputs: timm's keep-ratio resize, the centre cut and its padding */
        preprocess_case(script, dir, gp, 256, 320, 224, TL_RESIZE_CROP, &ws);
        preprocess_case(script, dir, gp, 256, 224, 320, TL_RESIZE_CROP, &ws);
        preprocess_case(script, dir, gp, 245, 96, 160, TL_RESIZE_CROP, &ws);
        preprocess_case(script, dir, gp, 256, 320, 224, TL_RESIZE_SQUASH, &ws);
        preprocess_case(script, dir, gp, 224, 320, 224, TL_RESIZE_SQUASH, &ws);
        preprocess_case(script, dir, gp, 224, 320, 224, TL_RESIZE_PAD, &ws);
        preprocess_case(script, dir, gp, 224, 224, 320, TL_RESIZE_PAD, &ws);
        preprocess_case(script, dir, gp, 100, 97, 100, TL_RESIZE_PAD, &ws);
        /* one pixel short: the padding offset is 0, the window must still be padded */
        preprocess_case(script, dir, gp, 232, 320, 232, TL_RESIZE_PAD, &ws);
        preprocess_case(script, dir, gp, 223, 224, 224, TL_RESIZE_CROP, &ws);
        if (photo[0]) {
            preprocess_case(script, dir, photo, 256, 224, 224, TL_RESIZE_CROP, &ws);
            preprocess_case(script, dir, photo, 256, 320, 224, TL_RESIZE_PAD, &ws);
            /* speed of the whole pipeline on a real photo, for the record */
            tl_image img = { 0 };
            tl_preproc pp;
            tl_preproc_default(&pp);
            float *out = malloc(sizeof(float) * 3 * 224 * 224);
            CHECK(tl_image_decode_file(photo, &img, 0, &e) == 0);
            double t0 = tl_now();
            int reps = 20;
            for (int i = 0; i < reps; i++)
                CHECK(tl_preprocess(&img, &pp, out, &ws, &e) == 0);
            printf("test_resize: preprocess %dx%d -> 224: %.2f ms per image\n", img.w, img.h,
                   1000.0 * (tl_now() - t0) / reps);
            free(out);
            tl_image_free(&img);
        }
        tl_image_free(&g);
        tl_image_free(&g2);
        tu_rmtree(dir);
    }
    tl_preproc_ws_free(&ws);
    return check_finish("test_resize");
}
