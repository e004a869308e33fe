/* lib/augment: exact geometry on synthetic images, the spec parser's
 * messages and columns, determinism across threads, op semantics, and
 * (TL_BENCH=1) the throughput of augmentation alone. Parity with
 * torchvision lives in test_augment_parity.c. */
#include "check.h"
#include "test_image_util.h"
#include "augment/augment.h"

/* Every pixel distinct: r = 30x, g = 40y, b = 1 + x + 7y. */
static void synth(tl_image *img, int w, int h)
{
    tl_err e;
    tl_image_alloc(img, w, h, &e);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = img->px + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(30 * x);
            p[1] = (uint8_t)(40 * y);
            p[2] = (uint8_t)(1 + x + 7 * y);
        }
}

/* A photo-like test picture: gradients, stripes and noise. */
static void picture(tl_image *img, int w, int h, uint64_t seed)
{
    tl_err e;
    tl_rng r;
    tl_rng_seed(&r, seed);
    tl_image_alloc(img, w, h, &e);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = img->px + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(255 * x / w);
            p[1] = (uint8_t)(255 * y / h);
            p[2] = (uint8_t)(((x / 9 + y / 5) % 2) * 150 + tl_rng_below(&r, 100));
        }
}

static const uint8_t *px(const tl_image *img, int x, int y) { return img->px + ((size_t)y * img->w + x) * 3; }

static int same(const tl_image *a, const tl_image *b)
{
    return a->w == b->w && a->h == b->h && !memcmp(a->px, b->px, (size_t)a->w * a->h * 3);
}

static void test_flips_and_quarter_turns(void)
{
    tl_err e;
    tl_image in = { 0 }, a = { 0 }, b = { 0 };
    synth(&in, 7, 5);
    tl_image_alloc(&a, 7, 5, &e);
    memcpy(a.px, in.px, 7 * 5 * 3);
    tl_aug_hflip(&a);
    int ok = 1;
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 7; x++)
            ok &= !memcmp(px(&a, x, y), px(&in, 6 - x, y), 3);
    CHECK_MSG(ok, "hflip moves (x, y) to (w-1-x, y)");
    memcpy(a.px, in.px, 7 * 5 * 3);
    tl_aug_vflip(&a);
    ok = 1;
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 7; x++)
            ok &= !memcmp(px(&a, x, y), px(&in, x, 4 - y), 3);
    CHECK_MSG(ok, "vflip moves (x, y) to (x, h-1-y)");

    /* k = 1 is counter-clockwise, as np.rot90: the top-right corner
     * becomes the top-left one. */
    CHECK(tl_aug_rot90(&in, 1, &a, &e) == 0);
    CHECK(a.w == 5 && a.h == 7);
    ok = 1;
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 5; x++)
            ok &= !memcmp(px(&a, x, y), px(&in, 6 - y, x), 3);
    CHECK_MSG(ok, "rot90 k=1 is out(x, y) = in(w-1-y, x)");
    CHECK(!memcmp(px(&a, 0, 0), px(&in, 6, 0), 3));
    CHECK(tl_aug_rot90(&in, 2, &a, &e) == 0);
    ok = a.w == 7 && a.h == 5;
    for (int y = 0; ok && y < 5; y++)
        for (int x = 0; x < 7; x++)
            ok &= !memcmp(px(&a, x, y), px(&in, 6 - x, 4 - y), 3);
    CHECK_MSG(ok, "rot90 k=2 is a half turn");
    CHECK(tl_aug_rot90(&in, 3, &a, &e) == 0);
    ok = a.w == 5 && a.h == 7;
    for (int y = 0; ok && y < 7; y++)
        for (int x = 0; x < 5; x++)
            ok &= !memcmp(px(&a, x, y), px(&in, y, 4 - x), 3);
    CHECK_MSG(ok, "rot90 k=3 is out(x, y) = in(y, h-1-x)");
    /* four quarter turns are the identity */
    tl_image c = { 0 };
    tl_aug_rot90(&in, 1, &a, &e);
    tl_aug_rot90(&a, 1, &b, &e);
    tl_aug_rot90(&b, 1, &a, &e);
    tl_aug_rot90(&a, 1, &c, &e);
    CHECK(same(&c, &in));

    /* The bilinear warp reproduces quarter turns exactly (pixel centres at
     * +0.5), on an odd and an even square, and half turns on any shape. */
    for (int s = 5; s <= 6; s++) {
        tl_image sq = { 0 };
        synth(&sq, s, s);
        for (int k = -1; k <= 4; k++) {
            CHECK(tl_aug_warp(&sq, 90.0 * k, 0, 0, TL_AUG_FILL_CONSTANT, 0, &a, &e) == 0);
            CHECK(tl_aug_rot90(&sq, k, &b, &e) == 0);
            CHECK_MSG(same(&a, &b), "rot(deg=%d) on %dx%d equals rot90(k=%d)", 90 * k, s, s, k);
        }
        tl_image_free(&sq);
    }
    CHECK(tl_aug_warp(&in, 180, 0, 0, TL_AUG_FILL_CONSTANT, 0, &a, &e) == 0);
    tl_aug_rot90(&in, 2, &b, &e);
    CHECK_MSG(same(&a, &b), "rot(deg=180) on 7x5 equals two quarter turns");
    CHECK(tl_aug_warp(&in, 0, 0, 0, TL_AUG_FILL_CONSTANT, 0, &a, &e) == 0);
    CHECK(same(&a, &in));

    /* whole-pixel shifts: exact, with each fill mode at the borders */
    CHECK(tl_aug_warp(&in, 0, 2, -1, TL_AUG_FILL_CONSTANT, 9, &a, &e) == 0);
    ok = 1;
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 7; x++) {
            int sx = x - 2, sy = y + 1;
            if (sx >= 0 && sy < 5)
                ok &= !memcmp(px(&a, x, y), px(&in, sx, sy), 3);
            else
                ok &= px(&a, x, y)[0] == 9 && px(&a, x, y)[1] == 9 && px(&a, x, y)[2] == 9;
        }
    CHECK_MSG(ok, "shift by (2, -1) with constant fill 9");
    CHECK(tl_aug_warp(&in, 0, 2, 0, TL_AUG_FILL_EDGE, 0, &a, &e) == 0);
    CHECK(!memcmp(px(&a, 0, 3), px(&in, 0, 3), 3) && !memcmp(px(&a, 1, 3), px(&in, 0, 3), 3));
    CHECK(tl_aug_warp(&in, 0, 2, 0, TL_AUG_FILL_REFLECT, 0, &a, &e) == 0);
    CHECK_MSG(!memcmp(px(&a, 0, 3), px(&in, 2, 3), 3) && !memcmp(px(&a, 1, 3), px(&in, 1, 3), 3),
              "reflect fill mirrors about the edge pixel (numpy 'reflect')");

    /* a quarter turn of a wide image turns about the centre pixel */
    tl_image wide = { 0 };
    synth(&wide, 9, 5);
    CHECK(tl_aug_warp(&wide, 90, 0, 0, TL_AUG_FILL_CONSTANT, 0, &a, &e) == 0);
    CHECK(!memcmp(px(&a, 4, 2), px(&wide, 4, 2), 3));
    CHECK(!memcmp(px(&a, 4, 0), px(&wide, 6, 2), 3)); /* above the centre: what was right of it */
    tl_image_free(&wide);
    tl_image_free(&c);
    tl_image_free(&in);
    tl_image_free(&a);
    tl_image_free(&b);
}

static void test_crops(void)
{
    tl_err e;
    tl_image in = { 0 }, a = { 0 }, b = { 0 };
    tl_aug_ws ws = { 0 };
    tl_rng r;
    tl_rng_seed(&r, 1);
    tl_aug_opts o = { 24, 24, 0, TL_RESIZE_CROP };
    /* rrc with scale=1:1 and ratio=1:1 on a square is a plain resize */
    picture(&in, 40, 40, 3);
    tl_aug_pipeline *p = tl_aug_parse("rrc(scale=1:1,ratio=1:1)", &o, &e);
    CHECK_MSG(p != NULL, "%s", e.msg);
    CHECK(p && tl_aug_apply(p, &r, &in, &a, &ws, &e) == 0);
    CHECK(tl_image_resize(&in, 24, 24, TL_INTERP_BILINEAR, &b, NULL, &e) == 0);
    CHECK_MSG(same(&a, &b), "rrc(scale=1:1,ratio=1:1) equals tl_image_resize to 24x24");
    /* on a 60x40 image no try fits: the fallback is the centred 40x40 square */
    picture(&in, 60, 40, 4);
    CHECK(p && tl_aug_apply(p, &r, &in, &a, &ws, &e) == 0);
    CHECK(tl_aug_resized_crop(&in, 10, 0, 40, 40, 24, 24, &b, &ws, &e) == 0);
    CHECK_MSG(same(&a, &b), "rrc fallback: centre crop at the nearest allowed ratio");
    tl_aug_free(p);

    /* with no size-changing op the pipeline ends with Resize(27) +
     * CenterCrop(24) (27 = round(24 * 256 / 224)) */
    p = tl_aug_parse("hflip(p=0)", &o, &e);
    CHECK(p && tl_aug_apply(p, &r, &in, &a, &ws, &e) == 0);
    tl_image full = { 0 };
    CHECK(tl_image_resize(&in, 40, 27, TL_INTERP_BILINEAR, &full, NULL, &e) == 0); /* 60x40 -> 40x27 */
    CHECK(a.w == 24 && a.h == 24);
    int ok = 1;
    for (int y = 0; y < 24; y++) /* offsets round((40-24)/2)=8, round((27-24)/2)=round(1.5)=2 */
        ok &= !memcmp(px(&a, 0, y), px(&full, 8, y + 2), 24 * 3);
    CHECK_MSG(ok, "final step = torchvision Resize(27) + CenterCrop(24)");
    tl_aug_free(p);

    /* crop larger than the image: zero padding, floor on the left/top */
    o.w = o.h = 0;
    p = tl_aug_parse("crop(size=8)", &o, &e);
    tl_image small = { 0 };
    synth(&small, 5, 4);
    CHECK(p && tl_aug_apply(p, &r, &small, &a, &ws, &e) == 0);
    CHECK(a.w == 8 && a.h == 8);
    /* left pad (8-5)/2 = 1, top pad (8-4)/2 = 2 */
    CHECK(!memcmp(px(&a, 1, 2), px(&small, 0, 0), 3) && px(&a, 0, 2)[0] == 0 && px(&a, 6, 2)[2] == 0);
    CHECK(!memcmp(px(&a, 5, 5), px(&small, 4, 3), 3));
    tl_aug_free(p);
    /* size 0 keeps the input's size, even through rrc */
    p = tl_aug_parse("natural", &o, &e);
    CHECK(p && tl_aug_apply(p, &r, &in, &a, &ws, &e) == 0 && a.w == 60 && a.h == 40);
    tl_aug_free(p);
    /* resize: torchvision Resize(int) */
    p = tl_aug_parse("resize(size=20)", &o, &e);
    CHECK(p && tl_aug_apply(p, &r, &in, &a, &ws, &e) == 0 && a.w == 30 && a.h == 20);
    tl_aug_free(p);
    /* rot90 on a wide image swaps the sides */
    p = tl_aug_parse("rot90(k=1:1)", &o, &e);
    CHECK(p && tl_aug_apply(p, &r, &in, &a, &ws, &e) == 0 && a.w == 40 && a.h == 60);
    tl_aug_free(p);
    tl_image_free(&small);
    tl_image_free(&full);
    tl_image_free(&in);
    tl_image_free(&a);
    tl_image_free(&b);
    tl_aug_ws_free(&ws);
}

/* A network input of another aspect ratio: rrc and crop default to W x H,
 * size=WxH parses and describes back, and the final step is the network's
 * own preprocessing geometry (crop, squash or pad). */
static void test_oblong(void)
{
    tl_err e;
    tl_image in = { 0 }, a = { 0 }, b = { 0 };
    tl_aug_ws ws = { 0 };
    tl_rng r;
    picture(&in, 50, 40, 6);
    for (int mode = 0; mode < 3; mode++) {
        tl_aug_opts o = { 32, 20, 0, mode };
        tl_aug_pipeline *p = tl_aug_parse("hflip(p=0)", &o, &e);
        tl_rng_seed(&r, 3);
        CHECK_MSG(p && tl_aug_apply(p, &r, &in, &a, &ws, &e) == 0, "%s", e.msg);
        tl_preproc pp;
        tl_preproc_default(&pp);
        pp.input_w = 32;
        pp.input_h = 20;
        pp.resize_size = 23; /* round(20 * 256 / 224) */
        pp.resize_mode = mode;
        CHECK(tl_preprocess_image(&in, &pp, &b, NULL, &e) == 0);
        CHECK_MSG(a.w == 32 && a.h == 20 && same(&a, &b), "final step of a 32x20 pipeline, mode %s",
                  tl_resize_mode_name(mode));
        int ow, oh;
        tl_aug_output_dims(p, &ow, &oh);
        CHECK(ow == 32 && oh == 20);
        tl_aug_free(p);
        /* rrc and crop at the pipeline's size */
        p = tl_aug_parse("rrc,crop", &o, &e);
        CHECK(p && tl_aug_apply(p, &r, &in, &a, &ws, &e) == 0 && a.w == 32 && a.h == 20);
        char buf[512];
        tl_aug_describe(p, buf, sizeof buf);
        CHECK_MSG(strstr(buf, "rrc(size=32x20,") && strstr(buf, "crop(size=32x20"), "%s", buf);
        tl_aug_free(p);
    }
    tl_aug_opts sq = { 24, 24, 0, TL_RESIZE_CROP };
    tl_aug_pipeline *p = tl_aug_parse("rrc(size=16x12),crop(size=10x8)", &sq, &e);
    tl_rng_seed(&r, 4);
    CHECK_MSG(p && tl_aug_apply(p, &r, &in, &a, &ws, &e) == 0, "%s", e.msg);
    CHECK(a.w == 24 && a.h == 24); /* then the final step to the network's 24x24 */
    char buf[512];
    tl_aug_describe(p, buf, sizeof buf);
    tl_aug_pipeline *back = tl_aug_parse(buf, &sq, &e);
    char buf2[512];
    CHECK(back && tl_aug_describe(back, buf2, sizeof buf2) > 0 && !strcmp(buf, buf2));
    tl_aug_free(back);
    tl_aug_free(p);
    CHECK(!tl_aug_parse("crop(size=10x)", &sq, &e) && strstr(e.msg, "WxH"));
    CHECK(!tl_aug_parse("crop(size=0x5)", &sq, &e));
    tl_image_free(&in);
    tl_image_free(&a);
    tl_image_free(&b);
    tl_aug_ws_free(&ws);
}

typedef struct spec_case {
    const char *spec, *msg;
} spec_case;

static void test_parser(void)
{
    static const spec_case bad[] = {
        { "hflip,vflip,rott(deg=5)", "unknown op 'rott' at column 13" },
        { "rrc(scale=0.08:1),hflip(p=0.5),rott(deg=15)", "unknown op 'rott' at column 32" },
        { "rot(dg=3)", "unknown parameter 'dg' for op 'rot' at column 5 (rot takes deg, fill, value, p)" },
        { "rot(deg=abc)", "bad number 'abc' for 'deg' at column 9" },
        { "rot(deg=1:x)", "bad number 'x' for 'deg' at column 11" },
        { "rot(deg=nan)", "bad number 'nan' for 'deg' at column 9" },
        { "rrc(scale=1:0.08)", "range 1:0.08 for 'scale' has min > max at column 11" },
        { "hflip(p=1.5)", "p=1.5 is outside [0,1] at column 9" },
        { "hflip(p=-0.1)", "p=-0.1 is outside [0,1] at column 9" },
        { "rot(deg=15", "unclosed '(' at column 4" },
        { "rot(deg=15,", "unclosed '(' at column 4" },
        { "hflip)", "unbalanced ')' at column 6" },
        { "hflip,)", "unbalanced ')' at column 7" },
        { "rot(deg=(3))", "unexpected '(' at column 9" },
        { "", "empty spec" },
        { "   ", "empty spec" },
        { "hflip,", "expected an op at column 7" },
        { ",hflip", "expected an op at column 1" },
        { "hflip vflip", "expected ',' or '(' after 'hflip' at column 7" },
        { "rot(deg)", "expected '=' after 'deg' at column 8" },
        { "rot(deg=)", "missing value for 'deg' at column 9" },
        { "rot(deg=5,deg=6)", "parameter 'deg' given twice at column 11" },
        { "natural(p=1)", "policy 'natural' takes no parameters at column 8" },
        { "blur(k=4)", "'k' must be odd, got 4 at column 8" },
        { "jitter(h=0.7)", "'h' of jitter must lie in -0.5..0.5, got 0.7 at column 10" },
        { "jitter(b=-1)", "'b' must not be negative, got -1 at column 10" },
        { "rot(fill=mirror)", "bad fill 'mirror' for 'fill' at column 10 (expected constant, reflect or edge)" },
        { "jpeg(q=0:50)", "'q' of jpeg must lie in 1..100, got 0:50 at column 8" },
        { "jpeg(q=10.5:50)", "'q' must be whole numbers, got 10.5:50 at column 8" },
        { "rrc(size=-3)", "'size' must be auto, 0, N or WxH (whole numbers in 1..16384), got -3 at column 10" },
        { "erase(value=300)", "'value' must be random or a whole number in 0..255, got 300 at column 13" },
        { "rrc(scale=0:1)", "'scale' of rrc must lie in 1e-06..1, got 0:1 at column 11" },
        { "3rot", "unexpected '3' at column 1" },
        { "hflip(=1)", "expected a parameter name at column 7" },
    };
    tl_err e;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e.msg[0] = '\0';
        tl_aug_pipeline *p = tl_aug_parse(bad[i].spec, NULL, &e);
        CHECK_MSG(p == NULL && !strcmp(e.msg, bad[i].msg), "spec '%s': got '%s', want '%s'", bad[i].spec,
                  p ? "(parsed)" : e.msg, bad[i].msg);
        tl_aug_free(p);
    }
    static const char *good[] = {
        "rrc(scale=0.08:1),hflip(p=0.5),rot(deg=15),jitter(b=0.4,c=0.4,s=0.4,h=0.1)",
        " rrc ( scale = 0.08 : 1 ) , hflip ",
        "natural,noise(sigma=0.02)",
        "cutout(value=random),gray,greyscale(p=1),rotate(deg=-5:20,fill=reflect),shift(x=0.1,y=0:0.2)",
        "jitter(b=0.5:1.5,h=-0.1:0.2),blur(k=5,sigma=1),jpeg(q=50),rot90(k=1:3),resize,crop,hflip()",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        tl_aug_pipeline *p = tl_aug_parse(good[i], NULL, &e);
        CHECK_MSG(p != NULL, "spec '%s': %s", good[i], e.msg);
        tl_aug_free(p);
    }
    tl_aug_pipeline *p = tl_aug_parse("natural,noise(sigma=0.02)", NULL, &e);
    CHECK(p && tl_aug_num_ops(p) == 4);
    tl_aug_free(p);

    /* every op's defaults parse, and a described pipeline parses back to
     * the same description */
    for (int i = 0; i < tl_aug_op_count(); i++) {
        const tl_aug_op_info *oi = tl_aug_op_at(i);
        char spec[512];
        int n = snprintf(spec, sizeof spec, "%s(", oi->name);
        for (int j = 0; j < oi->nparams; j++)
            n += snprintf(spec + n, sizeof spec - n, "%s%s=%s", j ? "," : "", oi->params[j].name, oi->params[j].def);
        snprintf(spec + n, sizeof spec - n, ")");
        p = tl_aug_parse(spec, NULL, &e);
        CHECK_MSG(p != NULL, "defaults of %s: %s", oi->name, e.msg);
        tl_aug_free(p);
    }
    for (int i = 0; i < tl_aug_policy_count(); i++) {
        const tl_aug_policy_info *pi = tl_aug_policy_at(i);
        p = tl_aug_parse(pi->name, NULL, &e);
        CHECK_MSG(p != NULL, "policy %s: %s", pi->name, e.msg);
        if (!p)
            continue;
        char d1[2048], d2[2048];
        int n = tl_aug_describe(p, d1, sizeof d1);
        CHECK(n > 0 && (size_t)n < sizeof d1 && tl_aug_describe(p, NULL, 0) == n);
        tl_aug_pipeline *q = tl_aug_parse(d1, NULL, &e);
        CHECK_MSG(q != NULL, "described %s: %s", pi->name, e.msg);
        if (q) {
            tl_aug_describe(q, d2, sizeof d2);
            CHECK_MSG(!strcmp(d1, d2), "round trip of %s:\n    %s\n    %s", pi->name, d1, d2);
        }
        tl_aug_free(q);
        tl_aug_free(p);
    }
    /* the ops of the example, in order, with their values */
    p = tl_aug_parse("rrc(scale=0.08:1),hflip(p=0.5),rot(deg=15),jitter(b=0.4,c=0.4,s=0.4,h=0.1)", NULL, &e);
    char d[1024];
    tl_aug_describe(p, d, sizeof d);
    CHECK_MSG(!strcmp(d, "rrc(size=224,scale=0.08:1,ratio=0.75:1.333333,p=1),hflip(p=0.5),"
                         "rot(deg=-15:15,fill=constant,value=0,p=1),"
                         "jitter(b=0.6:1.4,c=0.6:1.4,s=0.6:1.4,h=-0.1:0.1,p=1)"), "%s", d);
    tl_aug_free(p);
}

typedef struct par_ctx {
    const tl_aug_pipeline *p;
    const tl_image *in;
    tl_image *out;
    tl_aug_ws *ws;
    int failed;
} par_ctx;

static void par_run(void *vc, int64_t b, int64_t end, int worker)
{
    par_ctx *c = vc;
    tl_err e;
    for (int64_t i = b; i < end; i++) {
        tl_rng r;
        tl_aug_seed_image(&r, 42, 1, (uint64_t)i);
        if (tl_aug_apply(c->p, &r, &c->in[i % 3], &c->out[i], &c->ws[worker], &e))
            c->failed = 1;
    }
}

static void test_determinism(void)
{
    tl_err e;
    tl_image in[3] = { { 0 } };
    picture(&in[0], 160, 120, 1);
    picture(&in[1], 90, 130, 2);
    picture(&in[2], 64, 64, 3);
    const char *specs[] = { "natural", "medical", "aerial", "document", "low-quality",
                            "rot(deg=30,fill=reflect),translate,erase(value=random,p=1),jitter(h=0.2),noise" };
    enum { N = 24 };
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        tl_aug_pipeline *p = tl_aug_parse(specs[s], NULL, &e);
        CHECK_MSG(p != NULL, "%s", e.msg);
        if (!p)
            continue;
        tl_image serial[N] = { { 0 } }, threaded[N] = { { 0 } };
        tl_aug_ws ws[3];
        memset(ws, 0, sizeof ws);
        par_ctx c1 = { p, in, serial, ws, 0 };
        par_run(&c1, 0, N, 0);
        tl_pool *pool = tl_pool_new(3, &e);
        par_ctx c2 = { p, in, threaded, ws, 0 };
        tl_parallel_for(pool, N, 1, par_run, &c2);
        tl_pool_free(pool);
        CHECK(!c1.failed && !c2.failed);
        int ok = 1, differ = 0;
        for (int i = 0; i < N; i++) {
            ok &= same(&serial[i], &threaded[i]);
            if (i >= 3)
                differ += !same(&serial[i], &serial[i - 3]); /* same input, another index */
        }
        CHECK_MSG(ok, "%s: 3 threads give the same pixels as 1", specs[s]);
        CHECK_MSG(differ >= N - 3 - 2, "%s: other indices give other augmentations (%d of %d differ)", specs[s],
                  differ, N - 3);
        /* the same (seed, epoch, index) again, after other images: same bytes */
        tl_image again = { 0 };
        tl_rng r;
        tl_aug_seed_image(&r, 42, 1, 7);
        CHECK(tl_aug_apply(p, &r, &in[7 % 3], &again, &ws[0], &e) == 0);
        CHECK(same(&again, &serial[7]));
        tl_aug_seed_image(&r, 42, 2, 7);
        CHECK(tl_aug_apply(p, &r, &in[7 % 3], &again, &ws[0], &e) == 0);
        CHECK_MSG(!same(&again, &serial[7]) || !strcmp(specs[s], "document"), "%s: another epoch differs",
                  specs[s]);
        tl_image_free(&again);
        for (int i = 0; i < N; i++) {
            tl_image_free(&serial[i]);
            tl_image_free(&threaded[i]);
        }
        for (int w = 0; w < 3; w++)
            tl_aug_ws_free(&ws[w]);
        tl_aug_free(p);
    }
    for (int i = 0; i < 3; i++)
        tl_image_free(&in[i]);
}

static void test_op_semantics(void)
{
    tl_err e;
    tl_image in = { 0 }, a = { 0 }, b = { 0 };
    tl_aug_ws ws = { 0 };
    tl_rng r;
    tl_rng_seed(&r, 9);
    tl_aug_opts keep = { 0, 0, 0, TL_RESIZE_CROP };
    picture(&in, 50, 40, 5);
    /* a degenerate range is a fixed factor; factors of exactly 1 are skipped */
    tl_aug_pipeline *p = tl_aug_parse("jitter(b=0.5:0.5,c=0,s=0)", &keep, &e);
    CHECK(p && tl_aug_apply(p, &r, &in, &a, &ws, &e) == 0);
    tl_image_alloc(&b, in.w, in.h, &e);
    memcpy(b.px, in.px, (size_t)in.w * in.h * 3);
    tl_aug_brightness(&b, 0.5);
    CHECK_MSG(same(&a, &b), "jitter(b=0.5:0.5,c=0,s=0) is brightness 0.5 alone");
    tl_aug_free(p);
    /* noise with sigma 0 and blur of a flat image change nothing */
    p = tl_aug_parse("noise(sigma=0:0),blur(sigma=1.5)", &keep, &e);
    tl_image flat = { 0 };
    tl_image_alloc(&flat, 30, 20, &e);
    memset(flat.px, 128, 30 * 20 * 3);
    CHECK(p && tl_aug_apply(p, &r, &flat, &a, &ws, &e) == 0 && same(&a, &flat));
    tl_aug_free(p);
    /* noise: the standard deviation asked for (0.05 * 255 = 12.75) */
    p = tl_aug_parse("noise(sigma=0.05:0.05)", &keep, &e);
    tl_image big = { 0 };
    tl_image_alloc(&big, 200, 200, &e);
    memset(big.px, 128, 200 * 200 * 3);
    CHECK(p && tl_aug_apply(p, &r, &big, &a, &ws, &e) == 0);
    double s1 = 0, s2 = 0;
    size_t n = (size_t)200 * 200 * 3;
    for (size_t i = 0; i < n; i++) {
        s1 += a.px[i] - 128.0;
        s2 += (a.px[i] - 128.0) * (a.px[i] - 128.0);
    }
    double mean = s1 / n, sd = sqrt(s2 / n - mean * mean);
    CHECK_NEAR(mean, 0, 0.2);
    CHECK_NEAR(sd, 12.75, 0.3);
    tl_aug_free(p);
    /* erase: a 32x32 box (round(sqrt(0.1 * 100 * 100))) of the value */
    p = tl_aug_parse("erase(scale=0.1:0.1,ratio=1:1,value=7,p=1)", &keep, &e);
    tl_image_alloc(&big, 100, 100, &e);
    memset(big.px, 200, 100 * 100 * 3);
    CHECK(p && tl_aug_apply(p, &r, &big, &a, &ws, &e) == 0);
    size_t sevens = 0;
    for (size_t i = 0; i < (size_t)100 * 100 * 3; i++)
        sevens += a.px[i] == 7;
    CHECK_MSG(sevens == 32 * 32 * 3, "erased %zu samples", sevens);
    tl_aug_free(p);
    /* p=0 never applies, p=1 always; grey makes r = g = b */
    p = tl_aug_parse("vflip(p=0),grey(p=1)", &keep, &e);
    CHECK(p && tl_aug_apply(p, &r, &in, &a, &ws, &e) == 0);
    int grey = 1;
    for (size_t i = 0; i < (size_t)in.w * in.h; i++)
        grey &= a.px[3 * i] == a.px[3 * i + 1] && a.px[3 * i] == a.px[3 * i + 2];
    CHECK(grey);
    tl_aug_free(p);
    /* hflip(p=0.5) flips about half of the images */
    p = tl_aug_parse("hflip", &keep, &e);
    int flipped = 0;
    for (int i = 0; i < 400; i++) {
        tl_aug_seed_image(&r, 1, 0, (uint64_t)i);
        tl_aug_apply(p, &r, &in, &a, &ws, &e);
        flipped += !same(&a, &in);
    }
    CHECK_MSG(flipped > 160 && flipped < 240, "%d of 400 flipped", flipped);
    tl_aug_free(p);
    /* JPEG at quality 100 is close to the original, at 10 clearly not */
    CHECK(tl_aug_jpeg(&in, 100, &a, &ws, &e) == 0 && a.w == in.w && a.h == in.h);
    tu_diff d100 = tu_compare(&a, &in);
    CHECK(tl_aug_jpeg(&in, 10, &a, &ws, &e) == 0);
    tu_diff d10 = tu_compare(&a, &in);
    CHECK_MSG(d100.max < d10.max, "q100 max diff %d, q10 %d", d100.max, d10.max);
    tl_image_free(&flat);
    tl_image_free(&big);
    tl_image_free(&in);
    tl_image_free(&a);
    tl_image_free(&b);
    tl_aug_ws_free(&ws);
}

typedef struct bench_ctx {
    const tl_aug_pipeline *p;
    const tl_image *in;
    int nin;
    tl_image *out;
    tl_aug_ws *ws;
} bench_ctx;

static void bench_run(void *vc, int64_t b, int64_t end, int worker)
{
    bench_ctx *c = vc;
    tl_err e;
    for (int64_t i = b; i < end; i++) {
        tl_rng r;
        tl_aug_seed_image(&r, 0, 0, (uint64_t)i);
        tl_aug_apply(c->p, &r, &c->in[i % c->nin], &c->out[worker], &c->ws[worker], &e);
    }
}

/* images/s of augmentation alone (decoded inputs in memory, no output
 * encoding), 2 threads: photos of the hymenoptera size (500x375, 500x333). */
static void bench(void)
{
    const char *env = getenv("TL_BENCH");
    if (!env || strcmp(env, "1"))
        return;
    tl_err e;
    tl_image in[4] = { { 0 } };
    char dir[4096], path[4200];
    int nin = 0;
    const char *shared = tu_shared_images(dir, sizeof dir);
    const char *names[] = { "cat.bmp", "owl.jpg", "parrot.jpg", "hot_dog.jpg" };
    for (int i = 0; shared && i < 4; i++) {
        tl_image raw = { 0 };
        snprintf(path, sizeof path, "%s/%s", shared, names[i]);
        if (tl_image_decode_file(path, &raw, 0, &e) == 0 &&
            tl_image_resize(&raw, 500, raw.h * 500 / raw.w, TL_INTERP_BILINEAR, &in[nin], NULL, &e) == 0)
            nin++;
        tl_image_free(&raw);
    }
    for (; nin < 2; nin++)
        picture(&in[nin], 500, nin ? 333 : 375, (uint64_t)nin);
    const char *specs[] = { "natural", "medical", "aerial", "document", "low-quality" };
    tl_pool *pool = tl_pool_new(2, &e);
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        tl_aug_pipeline *p = tl_aug_parse(specs[s], NULL, &e);
        tl_aug_ws ws[2];
        memset(ws, 0, sizeof ws);
        tl_image out[2] = { { 0 } };
        bench_ctx c = { p, in, nin, out, ws };
        tl_parallel_for(pool, 64, 1, bench_run, &c); /* warm up: buffers grow once */
        int n = 1000;
        double t0 = tl_now();
        tl_parallel_for(pool, n, 1, bench_run, &c);
        double dt = tl_now() - t0;
        printf("test_augment: bench %-12s %7.0f images/s (2 threads, 500-pixel-wide inputs, 224x224 out)\n",
               specs[s], n / dt);
        for (int w = 0; w < 2; w++) {
            tl_aug_ws_free(&ws[w]);
            tl_image_free(&out[w]);
        }
        tl_aug_free(p);
    }
    tl_pool_free(pool);
    for (int i = 0; i < nin; i++)
        tl_image_free(&in[i]);
}

int main(void)
{
    (void)tu_script;
    (void)tu_run_python;
    (void)tu_rmtree;
    test_flips_and_quarter_turns();
    test_crops();
    test_oblong();
    test_parser();
    test_determinism();
    test_op_semantics();
    bench();
    return check_finish("augment");
}
