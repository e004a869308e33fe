/* The public interface (lib/tl.h) as a program outside tl uses it: a
 * session on a small random network gives the same features for a file,
 * the same bytes in memory and the decoded pixels, for one image or a
 * batch, for 1 or 3 threads, and from two sessions running at once in two
 * threads; features match the inference engine's own; predictions are a
 * softmax; errors are one line with the right kind; feature files round-
 * trip; a head trained through the API classifies images end to end as
 * tl-predict's classifier does. The model is built with internal
 * functions, everything else goes through tl.h. */
#include "check.h"
#include "tl.h"
#include "io/checkpoint.h"
#include "io/features.h"
#include "io/image.h"
#include "train/classifier.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char model_path[128];

enum { S = 32, NIMG = 5 };

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* A random mobilenet_v2 (width 0.5) checkpoint with three named classes. */
static void make_model(void)
{
    tl_err e = {0};
    tl_arch_opts o;
    tl_arch_opts_default(&o);
    o.input_w = o.input_h = S;
    o.num_classes = 3;
    o.width_mult = 0.5f;
    tl_net net;
    memset(&net, 0, sizeof net);
    net.model = tl_arch_build("mobilenet_v2", &o, &e);
    CHECK_MSG(net.model != NULL, "%s", e.msg);
    tl_model_init(net.model, 7);
    tl_rng r;
    tl_rng_seed(&r, 3);
    for (int i = 0; i < net.model->nparams; i++) {
        tl_param *p = &net.model->params[i];
        if (p->ndim == 1)
            for (int64_t k = 0; k < p->numel; k++)
                p->data[k] += 0.1f * tl_rng_uniform(&r);
    }
    path_of(model_path, sizeof model_path, "net.safetensors");
    const char *meta[] = {"tl.arch", "mobilenet_v2", "tl.input_size", "32", "tl.resize_size", "36",
                          "tl.num_classes", "3", "tl.width_mult", "0.5", "tl.classes", "[\"cat\", \"dog\", \"owl\"]",
                          NULL};
    CHECK_MSG(tl_net_save(&net, model_path, meta, &e) == 0, "%s", e.msg);
    tl_model_free(net.model);
}

/* NIMG PPM files of random pixels, of varied sizes; their pixels kept. */
static uint8_t *pixels[NIMG];
static int widths[NIMG], heights[NIMG];
static char img_path[NIMG][128];

static void make_images(void)
{
    tl_rng r;
    tl_rng_seed(&r, 11);
    for (int i = 0; i < NIMG; i++) {
        int w = 30 + 7 * i, h = 50 - 3 * i;
        widths[i] = w;
        heights[i] = h;
        pixels[i] = malloc((size_t)w * h * 3);
        for (int k = 0; k < w * h * 3; k++)
            pixels[i][k] = (uint8_t)tl_rng_below(&r, 256);
        char name[32];
        snprintf(name, sizeof name, "img%d.ppm", i);
        path_of(img_path[i], sizeof img_path[i], name);
        FILE *f = fopen(img_path[i], "wb");
        fprintf(f, "P6\n%d %d\n255\n", w, h);
        fwrite(pixels[i], 1, (size_t)w * h * 3, f);
        fclose(f);
    }
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    if (fread(b, 1, *n, f) != *n)
        *n = 0;
    fclose(f);
    return b;
}

static int same(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof *a); }

static void test_session(void)
{
    tl_err e = {0};
    CHECK(!strcmp(tl_version(), TL_VERSION));
    const char *simd = tl_simd_path();
    CHECK(!strcmp(simd, "scalar") || !strcmp(simd, "avx2") || !strcmp(simd, "avx512") || !strcmp(simd, "avx512vnni"));

    tl_session *s = tl_session_open(model_path, 1, &e);
    CHECK_MSG(s != NULL, "%s", e.msg);
    if (!s)
        return;
    int dim = tl_session_feature_dim(s), k = tl_session_num_classes(s);
    CHECK(dim == 1280 && k == 3);
    CHECK(!strcmp(tl_session_class_name(s, 1), "dog") && !tl_session_class_name(s, 3));
    CHECK(tl_session_probabilities(s) == 1);
    CHECK(!strcmp(tl_session_arch(s), "mobilenet_v2"));
    CHECK(!strcmp(tl_session_meta(s, "tl.resize_size"), "36") && !tl_session_meta(s, "no.such"));
    tl_preproc pp;
    tl_session_preproc(s, &pp);
    CHECK(pp.input_w == S && pp.input_h == S && pp.resize_size == 36 && pp.resize_mode == TL_RESIZE_CROP);

    /* file, memory and pixels give the same vector */
    float *a = malloc((size_t)NIMG * dim * sizeof *a), *b = malloc((size_t)NIMG * dim * sizeof *b);
    float *c = malloc((size_t)dim * sizeof *c);
    for (int i = 0; i < NIMG; i++)
        CHECK_MSG(tl_session_extract_file(s, img_path[i], a + (size_t)i * dim, &e) == 0, "%s", e.msg);
    size_t n;
    uint8_t *bytes = slurp(img_path[2], &n);
    CHECK(tl_session_extract_memory(s, bytes, n, c, &e) == 0 && same(c, a + 2 * (size_t)dim, (size_t)dim));
    /* pixels with a stride wider than the row */
    int w = widths[2], h = heights[2];
    size_t stride = (size_t)w * 3 + 5;
    uint8_t *padded = calloc(stride, (size_t)h);
    for (int y = 0; y < h; y++)
        memcpy(padded + y * stride, pixels[2] + (size_t)y * w * 3, (size_t)w * 3);
    CHECK(tl_session_extract_pixels(s, padded, w, h, stride, c, &e) == 0 && same(c, a + 2 * (size_t)dim, (size_t)dim));
    /* a batch, and another thread count: the same bits */
    const char *paths[NIMG];
    for (int i = 0; i < NIMG; i++)
        paths[i] = img_path[i];
    CHECK(tl_session_extract_files(s, paths, NIMG, b, &e) == 0 && same(a, b, (size_t)NIMG * dim));
    tl_session *s3 = tl_session_open(model_path, 3, &e);
    CHECK(s3 && tl_session_extract_files(s3, paths, NIMG, b, &e) == 0 && same(a, b, (size_t)NIMG * dim));
    tl_session_free(s3);

    /* the engine's own numbers: tl-extract's extractor on the same net */
    tl_net net;
    CHECK(tl_net_load(model_path, &net, &e) == 0);
    tl_image img = {0};
    tl_preproc_ws ws = {0};
    float *x = malloc((size_t)3 * S * S * sizeof *x), *feat = malloc((size_t)dim * sizeof *feat);
    int node = net.model->features_node;
    tl_infer *inf = tl_infer_new(net.model, 1, &node, 1, &e);
    CHECK(tl_image_decode_file(img_path[4], &img, 0, &e) == 0 && tl_preprocess(&img, &net.pp, x, &ws, &e) == 0);
    float *outs[1] = {feat};
    tl_infer_run(inf, NULL, 1, x, outs);
    CHECK(same(feat, a + 4 * (size_t)dim, (size_t)dim));
    tl_infer_free(inf);
    /* exact: the direct algorithm's bits, as the engine's exact mode; close
     * to the default's, and back to the default's bits when switched off */
    tl_infer *ex = tl_infer_new_exact(net.model, 1, &node, 1, 1, &e);
    CHECK(ex != NULL);
    if (ex) {
        tl_infer_run(ex, NULL, 1, x, outs);
        tl_infer_free(ex);
        CHECK(tl_session_set_exact(s, 1, &e) == 0 && tl_session_extract_file(s, img_path[4], c, &e) == 0 &&
              same(c, feat, (size_t)dim));
        float big = 0, diff = 0;
        for (int j = 0; j < dim; j++) {
            big = fmaxf(big, fabsf(a[4 * (size_t)dim + j]));
            diff = fmaxf(diff, fabsf(c[j] - a[4 * (size_t)dim + j]));
        }
        CHECK_MSG(diff <= 1e-4f * big, "exact vs default: %g of %g", (double)diff, (double)big);
        CHECK(tl_session_set_exact(s, 0, &e) == 0 && tl_session_extract_file(s, img_path[4], c, &e) == 0 &&
              same(c, a + 4 * (size_t)dim, (size_t)dim));
    }
    tl_image_free(&img);
    tl_preproc_ws_free(&ws);
    free(x);
    free(feat);
    tl_net_free(&net);

    /* predictions: a softmax */
    float p[3 * NIMG];
    CHECK(tl_session_predict_files(s, paths, NIMG, p, &e) == 0);
    for (int i = 0; i < NIMG; i++)
        CHECK_NEAR(p[3 * i] + p[3 * i + 1] + p[3 * i + 2], 1.0, 1e-5);
    float q[3];
    CHECK(tl_session_predict_pixels(s, padded, w, h, stride, q, &e) == 0 && same(q, p + 6, 3));
    int top[2];
    tl_top_k(p, 3, 2, top);
    CHECK(p[top[0]] >= p[top[1]] && top[0] != top[1]);

    /* another layer, whole or pooled */
    CHECK(tl_session_set_layer(s, "features.3", 0, &e) == 0);
    int whole = tl_session_feature_dim(s);
    CHECK(tl_session_set_layer(s, "features.3", 1, &e) == 0);
    CHECK(tl_session_feature_dim(s) > 0 && whole % tl_session_feature_dim(s) == 0 && whole > tl_session_feature_dim(s));
    CHECK(tl_session_set_layer(s, "logits", 1, &e) == 0 && tl_session_feature_dim(s) == 3);
    CHECK(tl_session_set_layer(s, NULL, 1, &e) == 0 && tl_session_feature_dim(s) == dim);

    /* errors: one line, and the kind says whose fault */
    CHECK(tl_session_set_layer(s, "nope", 1, &e) == -1 && e.kind == TL_ERR_ARG && strstr(e.msg, "nope"));
    CHECK(tl_session_feature_dim(s) == dim); /* unchanged */
    tl_preproc bad = pp;
    bad.input_w = 64;
    CHECK(tl_session_set_preproc(s, &bad, &e) == -1 && e.kind == TL_ERR_ARG);
    bad = pp;
    bad.std[1] = 0;
    CHECK(tl_session_set_preproc(s, &bad, &e) == -1 && e.kind == TL_ERR_ARG);
    CHECK(tl_session_extract_file(s, "/nonexistent.jpg", c, &e) == -1 && e.kind == TL_ERR_FAIL &&
          strstr(e.msg, "/nonexistent.jpg") && !strchr(e.msg, '\n'));
    CHECK(tl_session_extract_memory(s, "garbage", 7, c, &e) == -1 && e.kind == TL_ERR_FAIL);
    CHECK(tl_session_extract_pixels(s, padded, w, h, 2, c, &e) == -1 && e.kind == TL_ERR_ARG);
    tl_session_set_max_pixels(s, 100);
    CHECK(tl_session_extract_file(s, img_path[0], c, &e) == -1);
    tl_session_set_max_pixels(s, 0);
    CHECK(tl_session_open("/no/such/model", 1, &e) == NULL && strstr(e.msg, "/no/such/model"));
    /* a changed preprocessing changes the features */
    tl_preproc other = pp;
    other.resize_size = S;
    CHECK(tl_session_set_preproc(s, &other, &e) == 0 && tl_session_extract_file(s, img_path[2], c, &e) == 0 &&
          !same(c, a + 2 * (size_t)dim, (size_t)dim));
    free(bytes);
    free(padded);
    free(a);
    free(b);
    free(c);
    tl_session_free(s);
}

/* Two sessions at once in two threads: each gets what it gets alone. */
typedef struct {
    const char *path;
    float v[1280];
    int rc;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    tl_err e = {0};
    tl_session *s = tl_session_open(model_path, 2, &e);
    j->rc = -1;
    for (int rep = 0; s && rep < 3; rep++)
        j->rc = tl_session_extract_file(s, j->path, j->v, &e);
    tl_session_free(s);
    return NULL;
}

static void test_threads(void)
{
    job jobs[2] = {{img_path[0], {0}, 0}, {img_path[1], {0}, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, run_job, &jobs[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    tl_err e = {0};
    tl_session *s = tl_session_open(model_path, 1, &e);
    float v[1280];
    for (int i = 0; i < 2; i++) {
        CHECK(jobs[i].rc == 0);
        CHECK(tl_session_extract_file(s, jobs[i].path, v, &e) == 0 && same(v, jobs[i].v, 1280));
    }
    tl_session_free(s);
}

/* Features to a file, a head through the API, images end to end. */
static void test_features_and_head(void)
{
    tl_err e = {0};
    tl_session *s = tl_session_open(model_path, 2, &e);
    if (!s)
        return;
    int dim = tl_session_feature_dim(s);
    const char *classes[] = {"ants", "bees"};
    char tlf[128], tsv[128], head[128];
    path_of(tlf, sizeof tlf, "f.tlf");
    path_of(tsv, sizeof tsv, "f.tsv");
    path_of(head, sizeof head, "head.safetensors");
    tl_features_writer *w = tl_features_writer_open(tlf, TL_FEATURES_TLF, dim, classes, 2, model_path, "avgpool", &e);
    tl_features_writer *wt = tl_features_writer_open(tsv, TL_FEATURES_TSV, dim, classes, 2, NULL, NULL, &e);
    CHECK_MSG(w && wt, "%s", e.msg);
    float *v = malloc((size_t)dim * sizeof *v), *r = malloc((size_t)dim * sizeof *r);
    for (int i = 0; i < NIMG; i++) {
        CHECK(tl_session_extract_file(s, img_path[i], v, &e) == 0);
        CHECK(tl_features_writer_add(w, img_path[i], i % 2, v, &e) == 0);
        CHECK(tl_features_writer_add(wt, img_path[i], i == 4 ? -1 : i % 2, v, &e) == 0);
    }
    CHECK(access(tlf, F_OK) != 0); /* appears only when complete */
    CHECK_MSG(tl_features_writer_close(w, &e) == 0, "%s", e.msg);
    CHECK(tl_features_writer_close(wt, &e) == 0);
    CHECK(access(tlf, F_OK) == 0);
    char aborted[128];
    path_of(aborted, sizeof aborted, "aborted.tlf");
    w = tl_features_writer_open(aborted, TL_FEATURES_TLF, dim, classes, 2, NULL, NULL, &e);
    CHECK(w && tl_features_writer_add(w, "x", 0, v, &e) == 0);
    tl_features_writer_abort(w);
    CHECK(access(aborted, F_OK) != 0);
    CHECK(tl_features_writer_open(aborted, 7, dim, classes, 2, NULL, NULL, &e) == NULL && e.kind == TL_ERR_ARG);

    const char *files[2] = {tlf, tsv};
    for (int f = 0; f < 2; f++) {
        tl_features_reader *rd = tl_features_reader_open(files[f], &e);
        CHECK_MSG(rd != NULL, "%s", e.msg);
        if (!rd)
            continue;
        CHECK(tl_features_reader_dim(rd) == dim && tl_features_reader_num_classes(rd) == 2);
        CHECK(!strcmp(tl_features_reader_class_name(rd, 1), "bees"));
        CHECK(f == 1 || (!strcmp(tl_features_reader_layer(rd), "avgpool") &&
                         !strcmp(tl_features_reader_model(rd), model_path)));
        const char *p;
        int label, i = 0, rc;
        while ((rc = tl_features_reader_next(rd, &p, &label, r, &e)) == 1) {
            CHECK(tl_session_extract_file(s, img_path[i], v, &e) == 0);
            CHECK(!strcmp(p, img_path[i]) && label == (f == 1 && i == 4 ? -1 : i % 2));
            CHECK(same(r, v, (size_t)dim)); /* TSV prints 9 digits: float-exact */
            i++;
        }
        CHECK(rc == 0 && i == NIMG);
        tl_features_reader_close(rd);
    }
    /* a cut TLF stream is an error, not a shorter file */
    size_t n;
    uint8_t *bytes = slurp(tlf, &n);
    char cut[128];
    path_of(cut, sizeof cut, "cut.tlf");
    FILE *fc = fopen(cut, "wb");
    fwrite(bytes, 1, n - 10, fc);
    fclose(fc);
    tl_features_reader *rd = tl_features_reader_open(cut, &e);
    int rc = 1;
    while (rd && (rc = tl_features_reader_next(rd, NULL, NULL, r, &e)) == 1)
        ;
    CHECK(rc == -1);
    tl_features_reader_close(rd);
    free(bytes);
    /* a multi-label file: every label of a record, not just the first */
    {
        char ml[128];
        path_of(ml, sizeof ml, "ml.tlf");
        char *mcls[] = {"sky", "sea", "sand", NULL};
        tl_feat_info mi = {.dim = 2, .classes = mcls, .nclasses = 3, .multilabel = 1};
        tl_featw *mw;
        float mv[2] = {1, 2};
        CHECK(tl_featw_open(&mw, ml, TL_FEAT_TLF, &mi, &e) == 0);
        CHECK(tl_featw_add_labels(mw, "a.jpg", (int[]){0, 2}, 2, mv, &e) == 0);
        CHECK(tl_featw_add_labels(mw, "b.jpg", NULL, 0, mv, &e) == 0);
        CHECK(tl_featw_add_labels(mw, "c.jpg", NULL, -1, mv, &e) == 0);
        CHECK(tl_featw_close(mw, &e) == 0);
        tl_features_reader *mr = tl_features_reader_open(ml, &e);
        CHECK(mr && tl_features_reader_multilabel(mr) == 1);
        int ml_label, nl, want_n[3] = {2, 0, -1};
        for (int i = 0; mr && i < 3; i++) {
            CHECK(tl_features_reader_next(mr, NULL, &ml_label, r, &e) == 1);
            const int *ls = tl_features_reader_labels(mr, &nl);
            CHECK_MSG(nl == want_n[i], "record %d: %d labels", i, nl);
            CHECK(i != 0 || (ls[0] == 0 && ls[1] == 2 && ml_label == 0));
            CHECK(i == 0 || ml_label == -1);
        }
        CHECK(mr && tl_features_reader_next(mr, NULL, NULL, r, &e) == 0);
        tl_features_reader_close(mr);
        rd = tl_features_reader_open(tlf, &e);
        CHECK(rd && tl_features_reader_multilabel(rd) == 0 && tl_features_reader_next(rd, NULL, &ml_label, r, &e) == 1);
        const int *one = rd ? tl_features_reader_labels(rd, &nl) : NULL;
        CHECK(rd && (ml_label < 0 ? nl <= 0 : (nl == 1 && one[0] == ml_label)));
        tl_features_reader_close(rd);
    }

    tl_head_opts o;
    tl_head_opts_default(&o);
    double acc = -1;
    CHECK_MSG(tl_head_train_file(tlf, &o, head, &acc, &e) == 0, "%s", e.msg);
    CHECK(acc >= 0 && acc <= 1);
    o.C = -1;
    CHECK(tl_head_train_file(tlf, &o, head, NULL, &e) == -1 && e.kind == TL_ERR_ARG);
    tl_session *hs = tl_session_open(head, 1, &e);
    CHECK_MSG(hs != NULL, "%s", e.msg);
    if (hs) {
        CHECK(tl_session_num_classes(hs) == 2 && !strcmp(tl_session_class_name(hs, 0), "ants"));
        CHECK(tl_session_meta(hs, "tl.feature_layer") != NULL);
        /* against tl-predict's classifier */
        tl_classifier c;
        tl_extract_opts xo;
        tl_extract_opts_default(&xo);
        CHECK(tl_classifier_load(&c, head, &e) == 0 && tl_classifier_load_backbone(&c, head, &e) == 0);
        float mine[2], theirs[2];
        for (int i = 0; i < NIMG; i++) {
            CHECK(tl_session_predict_file(hs, img_path[i], mine, &e) == 0);
            CHECK(tl_session_extract_file(s, img_path[i], v, &e) == 0);
            tl_classifier_on_features(&c, v, theirs);
            CHECK(same(mine, theirs, 2));
        }
        tl_classifier_free(&c);
        tl_session_free(hs);
    }
    free(v);
    free(r);
    tl_session_free(s);
}

/* A file whose header a session filled: the origin tl-extract would
 * record, an exactness that keeps it from being read with a default
 * extraction, and a head trained on it that finds its backbone. */
static void write_session_file(tl_session *s, const char *path, int nimg, tl_err *e)
{
    const char *classes[] = {"ants", "bees"};
    float v[1280];
    tl_features_writer *w = tl_features_writer_open_session(path, TL_FEATURES_TLF, s, classes, 2, e);
    CHECK_MSG(w != NULL, "%s", e->msg);
    for (int i = 0; w && i < nimg; i++) {
        CHECK_MSG(tl_session_extract_file(s, img_path[i], v, e) == 0, "%s", e->msg);
        CHECK(tl_features_writer_add(w, img_path[i], i % 2, v, e) == 0);
    }
    CHECK_MSG(w && tl_features_writer_close(w, e) == 0, "%s", e->msg);
}

static void test_writer_from_session(void)
{
    tl_err e = {0};
    tl_session *s = tl_session_open(model_path, 2, &e);
    CHECK_MSG(s != NULL, "%s", e.msg);
    if (!s)
        return;
    char exact[128], plain[128], both[128], head[128], want_input[64];
    path_of(exact, sizeof exact, "exact.tlf");
    path_of(plain, sizeof plain, "plain.tlf");
    path_of(both, sizeof both, "both.tlf");
    path_of(head, sizeof head, "session_head.safetensors");
    CHECK(tl_session_set_layer(s, "features.3", 1, &e) == 0);
    write_session_file(s, plain, NIMG, &e);
    CHECK(tl_session_set_exact(s, 1, &e) == 0);
    write_session_file(s, exact, NIMG, &e);
    tl_preproc pp;
    tl_session_preproc(s, &pp);
    tl_preproc_geometry_format(&pp, want_input, sizeof want_input);
    char *abs = realpath(model_path, NULL);

    tl_featr *r;
    CHECK_MSG(tl_featr_open(&r, exact, &e) == 0, "%s", e.msg);
    const tl_feat_info *fi = tl_featr_info(r);
    CHECK(fi->dim == tl_session_feature_dim(s) && fi->nclasses == 2);
    CHECK_MSG(fi->layer && !strcmp(fi->layer, "features.3"), "layer %s", fi->layer ? fi->layer : "(none)");
    CHECK_MSG(fi->model && abs && !strcmp(fi->model, abs), "model %s", fi->model ? fi->model : "(none)");
    CHECK_MSG(fi->input && !strcmp(fi->input, want_input), "input %s", fi->input ? fi->input : "(none)");
    CHECK(fi->exact == 1 && fi->fast_decode == 0);
    tl_featr_close(r);
    CHECK(tl_featr_open(&r, plain, &e) == 0 && tl_featr_info(r)->exact == 0);
    tl_featr_close(r);

    /* an alias is recorded as given, as tl-extract -l logits records it */
    CHECK(tl_session_set_layer(s, "logits", 0, &e) == 0);
    char logits[128];
    path_of(logits, sizeof logits, "logits.tlf");
    write_session_file(s, logits, 1, &e);
    CHECK(tl_featr_open(&r, logits, &e) == 0);
    CHECK_MSG(!strcmp(tl_featr_info(r)->layer, "logits") && tl_featr_info(r)->dim == 3, "layer %s dim %d",
              tl_featr_info(r)->layer, tl_featr_info(r)->dim);
    tl_featr_close(r);

    /* plain then exact, as one stream: refused at the second header */
    size_t na, nb;
    uint8_t *a = slurp(plain, &na), *b = slurp(exact, &nb);
    FILE *f = fopen(both, "wb");
    fwrite(a, 1, na, f);
    fwrite(b, 1, nb, f);
    fclose(f);
    free(a);
    free(b);
    float v[1280];
    int rc = -1;
    tl_features_reader *rd = tl_features_reader_open(both, &e);
    while (rd && (rc = tl_features_reader_next(rd, NULL, NULL, v, &e)) == 1)
        ;
    tl_features_reader_close(rd);
    CHECK_MSG(rc == -1 && strstr(e.msg, "--exact"), "rc %d: %s", rc, e.msg);

    tl_head_opts o;
    tl_head_opts_default(&o);
    CHECK_MSG(tl_head_train_file(exact, &o, head, NULL, &e) == 0, "%s", e.msg);
    tl_session *hs = tl_session_open(head, 1, &e);
    CHECK_MSG(hs != NULL, "%s", e.msg);
    float scores[2];
    CHECK(hs && tl_session_predict_file(hs, img_path[0], scores, &e) == 0);
    tl_session_free(hs);
    free(abs);
    tl_session_free(s);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/tl_test_api.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    make_model();
    make_images();
    test_session();
    test_threads();
    test_features_and_head();
    test_writer_from_session();
    for (int i = 0; i < NIMG; i++)
        free(pixels[i]);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd))
        fprintf(stderr, "cannot remove %s\n", dir);
    return check_finish("api");
}
