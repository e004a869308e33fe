/* Graph builder, fused inference and checkpoints. Inference is compared
 * with a naive forward pass written here (plain loops over the graph
 * nodes, double accumulators, no folding), for MobileNet V1/V2 at small
 * sizes and a hand-built graph that exercises every fusion decision (and
 * one whose 3x3 convolutions run Winograd unless inference is exact); the
 * thread count must not change a single bit. Checkpoints round-trip
 * exactly, and a damaged one names the tensor at fault. */
#include "check.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "kernels/kernels.h"
#include "models/models.h"
#include "nn/infer.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

/* ---- parameters and the reference forward pass ---- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Random but well-scaled, so activations stay O(1) through deep nets. */
static void fill_params(tl_model *m, uint64_t seed)
{
    tl_rng r;
    tl_rng_seed(&r, seed);
    for (int i = 0; i < m->nparams; i++) {
        tl_param *p = &m->params[i];
        int64_t fan_in = p->ndim >= 2 ? p->numel / p->shape[0] : 1;
        for (int64_t j = 0; j < p->numel; j++) {
            float v;
            if (ends_with(p->name, "running_var"))
                v = 0.5f + tl_rng_uniform(&r);
            else if (ends_with(p->name, "running_mean"))
                v = 0.2f * tl_rng_normal(&r);
            else if (p->ndim == 1 && ends_with(p->name, "weight"))
                v = 0.6f + 0.8f * tl_rng_uniform(&r);
            else if (p->ndim == 1)
                v = 0.1f * tl_rng_normal(&r);
            else
                v = tl_rng_normal(&r) * (float)sqrt(2.0 / (double)fan_in);
            p->data[j] = v;
        }
    }
}

static double act_ref(int act, double x)
{
    switch (act) {
    case TL_ACT_RELU: return x > 0 ? x : 0;
    case TL_ACT_RELU6: return x < 0 ? 0 : x > 6 ? 6 : x;
    case TL_ACT_SIGMOID: return 1 / (1 + exp(-x));
    case TL_ACT_SILU: return x / (1 + exp(-x));
    case TL_ACT_HARDSIGMOID: return (x + 3 < 0 ? 0 : x + 3 > 6 ? 6 : x + 3) / 6;
    case TL_ACT_HARDSWISH: return x * (x + 3 < 0 ? 0 : x + 3 > 6 ? 6 : x + 3) / 6;
    default: return x;
    }
}

/* All node values of one image; returns NULL (and a failed check) for an
 * operation this reference does not know. */
static double **ref_forward(const tl_model *m, const float *image)
{
    double **val = calloc((size_t)m->nnodes, sizeof *val);
    for (int i = 0; i < m->nnodes; i++) {
        const tl_node *n = &m->nodes[i];
        size_t size = (size_t)tl_node_size(n);
        double *y = calloc(size, sizeof *y);
        val[i] = y;
        const double *x = n->in[0] >= 0 ? val[n->in[0]] : NULL;
        const tl_node *src = n->in[0] >= 0 ? &m->nodes[n->in[0]] : NULL;
        switch (n->op) {
        case TL_OP_INPUT:
            for (size_t k = 0; k < size; k++)
                y[k] = image[k];
            break;
        case TL_OP_CONV: {
            const tl_conv_geom *g = &n->geom;
            const float *w = m->params[n->weight].data;
            const float *b = n->bias >= 0 ? m->params[n->bias].data : NULL;
            int cin_g = g->cin / g->groups, cout_g = g->cout / g->groups;
            for (int o = 0; o < g->cout; o++) {
                int grp = o / cout_g;
                for (int oy = 0; oy < g->oh; oy++)
                    for (int ox = 0; ox < g->ow; ox++) {
                        double s = b ? b[o] : 0;
                        for (int ci = 0; ci < cin_g; ci++) {
                            int c = grp * cin_g + ci;
                            for (int ky = 0; ky < g->kh; ky++) {
                                int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                                if (iy < 0 || iy >= g->h)
                                    continue;
                                for (int kx = 0; kx < g->kw; kx++) {
                                    int ix = ox * g->stride_w - g->pad_l + kx * g->dil_w;
                                    if (ix < 0 || ix >= g->w)
                                        continue;
                                    s += (double)w[((o * cin_g + ci) * g->kh + ky) * g->kw + kx] *
                                         x[((size_t)c * g->h + iy) * g->w + ix];
                                }
                            }
                        }
                        y[((size_t)o * g->oh + oy) * g->ow + ox] = s;
                    }
            }
            break;
        }
        case TL_OP_BN: {
            size_t hw = (size_t)n->h * n->w;
            for (int c = 0; c < n->c; c++) {
                double g = m->params[n->weight].data[c], b = m->params[n->bias].data[c];
                double mu = m->params[n->running_mean].data[c], var = m->params[n->running_var].data[c];
                for (size_t k = 0; k < hw; k++)
                    y[c * hw + k] = (x[c * hw + k] - mu) / sqrt(var + n->eps) * g + b;
            }
            break;
        }
        case TL_OP_ACT:
            for (size_t k = 0; k < size; k++)
                y[k] = act_ref(n->act, x[k]);
            break;
        case TL_OP_ADD:
            for (size_t k = 0; k < size; k++)
                y[k] = x[k] + val[n->in[1]][k];
            break;
        case TL_OP_GAP: {
            size_t hw = (size_t)src->h * src->w;
            for (int c = 0; c < n->c; c++) {
                double s = 0;
                for (size_t k = 0; k < hw; k++)
                    s += x[c * hw + k];
                y[c] = s / (double)hw;
            }
            break;
        }
        case TL_OP_LINEAR: {
            size_t in = (size_t)tl_node_size(src);
            const float *w = m->params[n->weight].data, *b = m->params[n->bias].data;
            for (int o = 0; o < n->c; o++) {
                double s = b[o];
                for (size_t k = 0; k < in; k++)
                    s += (double)w[(size_t)o * in + k] * x[k];
                y[o] = s;
            }
            break;
        }
        case TL_OP_DROPOUT:
            memcpy(y, x, size * sizeof *y);
            break;
        case TL_OP_MAXPOOL: {
            const tl_pool_geom *g = &n->pool;
            for (int c = 0; c < g->c; c++)
                for (int oy = 0; oy < g->oh; oy++)
                    for (int ox = 0; ox < g->ow; ox++) {
                        double best = -INFINITY;
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++) {
                                int iy = oy * g->stride_h - g->pad_t + ky, ix = ox * g->stride_w - g->pad_l + kx;
                                if (iy >= 0 && iy < g->h && ix >= 0 && ix < g->w)
                                    best = fmax(best, x[((size_t)c * g->h + iy) * g->w + ix]);
                            }
                        y[((size_t)c * g->oh + oy) * g->ow + ox] = best;
                    }
            break;
        }
        case TL_OP_SCALE: {
            size_t hw = (size_t)n->h * n->w;
            for (int c = 0; c < n->c; c++)
                for (size_t k = 0; k < hw; k++)
                    y[c * hw + k] = x[c * hw + k] * val[n->in[1]][c];
            break;
        }
        default:
            CHECK_MSG(0, "reference forward: node %d has operation %d it does not know", i, (int)n->op);
            for (int k = 0; k <= i; k++)
                free(val[k]);
            free(val);
            return NULL;
        }
    }
    return val;
}

static void ref_free(const tl_model *m, double **val)
{
    for (int i = 0; val && i < m->nnodes; i++)
        free(val[i]);
    free(val);
}

/* Largest |a - ref| relative to the reference's scale. */
static double rel_err(const float *a, const double *ref, size_t n)
{
    double scale = 1e-3, worst = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (!(d <= worst))
            worst = d; /* NaN sticks */
    }
    return worst / scale;
}

/* A linear layer too large to keep packed (VGG-16's first classifier
 * layer) packs on every run: the same bits as from the packed copy, for
 * any batch and thread count. */
static void check_unpacked_linear(const tl_model *m, const int *outputs, int nout, const char *what)
{
    tl_err e = {0};
    enum { NIMG = 3 };
    size_t in_len = (size_t)m->in_c * m->in_h * m->in_w, len[8], total = 0;
    float *input = malloc(NIMG * in_len * sizeof(float)), *out[2][8];
    tl_rng r;
    tl_rng_seed(&r, 77);
    for (size_t k = 0; k < NIMG * in_len; k++)
        input[k] = 2 * tl_rng_uniform(&r) - 1;
    for (int k = 0; k < nout; k++) {
        len[k] = (size_t)tl_node_size(&m->nodes[outputs[k]]);
        total += len[k];
        out[0][k] = malloc(NIMG * len[k] * sizeof(float));
        out[1][k] = malloc(NIMG * len[k] * sizeof(float));
    }
    tl_pool *pool = tl_pool_new(2, &e);
    tl_infer *inf = tl_infer_new(m, 2, outputs, nout, &e);
    CHECK_MSG(inf && pool, "%s: %s", what, e.msg);
    for (int nimg = 1; inf && pool && nimg <= NIMG; nimg += NIMG - 1)
        for (int threads = 1; threads <= 2; threads++) {
            tl_infer_set_linear_pack_max(inf, (size_t)1 << 24);
            CHECK(tl_infer_refresh(inf, &e) == 0);
            tl_infer_run(inf, threads == 2 ? pool : NULL, nimg, input, out[0]);
            tl_infer_set_linear_pack_max(inf, 0);
            CHECK(tl_infer_refresh(inf, &e) == 0);
            for (int k = 0; k < nout; k++)
                memset(out[1][k], 0xFF, NIMG * len[k] * sizeof(float));
            tl_infer_run(inf, threads == 2 ? pool : NULL, nimg, input, out[1]);
            for (int k = 0; k < nout; k++)
                CHECK_MSG(!memcmp(out[0][k], out[1][k], (size_t)nimg * len[k] * sizeof(float)),
                          "%s: output %d differs with the linear weights packed per run (%d images, %d threads)",
                          what, k, nimg, threads);
        }
    CHECK(total > 0);
    tl_infer_free(inf);
    tl_pool_free(pool);
    for (int k = 0; k < nout; k++) {
        free(out[0][k]);
        free(out[1][k]);
    }
    free(input);
}

/* Runs inference for outputs[] on nimg random images with 1 and 2
 * threads, and checks both against the reference; each image's values
 * have the same bits in every batch (small maps run on groups of images,
 * split differently for each batch size and thread count). */
static void check_infer(const tl_model *m, const int *outputs, int nout, const char *what, uint64_t seed)
{
    tl_err e = {0};
    enum { MAXIMG = 5 };
    size_t in_len = (size_t)m->in_c * m->in_h * m->in_w;
    float *input = malloc(MAXIMG * in_len * sizeof(float));
    tl_rng r;
    tl_rng_seed(&r, seed);
    for (size_t k = 0; k < MAXIMG * in_len; k++)
        input[k] = 2 * tl_rng_uniform(&r) - 1;
    double **ref[MAXIMG];
    for (int i = 0; i < MAXIMG; i++)
        ref[i] = ref_forward(m, input + i * in_len);
    tl_infer *one = tl_infer_new(m, 1, outputs, nout, &e);
    CHECK_MSG(one != NULL, "%s: %s", what, e.msg);
    tl_pool *pool = tl_pool_new(2, &e), *pool3 = tl_pool_new(3, &e);
    /* weights prepared on 2 and on 3 threads (then run serially) */
    tl_infer *two = tl_infer_new_pool(m, pool, 2, outputs, nout, 0, &e);
    tl_infer *prep3 = tl_infer_new_pool(m, pool3, 1, outputs, nout, 0, &e);
    CHECK_MSG(two && prep3, "%s: %s", what, e.msg);
    float *out1[8], *out2[8], *out3[8];
    for (int k = 0; k < nout; k++) {
        size_t len = (size_t)tl_node_size(&m->nodes[outputs[k]]);
        out1[k] = malloc(MAXIMG * len * sizeof(float));
        out2[k] = malloc(MAXIMG * len * sizeof(float));
        out3[k] = malloc(MAXIMG * len * sizeof(float));
    }
    for (int nimg = 1; one && two && prep3 && ref[0] && nimg <= MAXIMG; nimg++) {
        for (int k = 0; k < nout; k++) {
            size_t len = (size_t)tl_node_size(&m->nodes[outputs[k]]);
            memset(out1[k], 0xFF, MAXIMG * len * sizeof(float)); /* NaN: untouched values show */
            memset(out2[k], 0xFF, MAXIMG * len * sizeof(float));
            memset(out3[k], 0xFF, MAXIMG * len * sizeof(float));
        }
        tl_infer_run(one, NULL, nimg, input, out1);
        tl_infer_run(two, pool, nimg, input, out2);
        tl_infer_run(prep3, NULL, nimg, input, out3);
        for (int k = 0; k < nout; k++) {
            size_t len = (size_t)tl_node_size(&m->nodes[outputs[k]]);
            CHECK_MSG(!memcmp(out1[k], out2[k], (size_t)nimg * len * sizeof(float)),
                      "%s: output %d (node %d) differs between 1 and 2 threads, %d images", what, k, outputs[k], nimg);
            CHECK_MSG(!memcmp(out1[k], out3[k], (size_t)nimg * len * sizeof(float)),
                      "%s: output %d (node %d) differs with the weights prepared on 3 threads, %d images", what, k,
                      outputs[k], nimg);
            for (int i = 0; i < nimg; i++) {
                double err = rel_err(out1[k] + i * len, ref[i][outputs[k]], len);
                CHECK_MSG(err < 1e-4, "%s: output %d (node %d '%s'), image %d of %d: relative error %.3g", what, k,
                          outputs[k], m->nodes[outputs[k]].name, i, nimg, err);
            }
        }
    }
    float *alone[8];
    for (int k = 0; k < nout; k++)
        alone[k] = malloc((size_t)tl_node_size(&m->nodes[outputs[k]]) * sizeof(float));
    for (int i = 0; one && two && i < MAXIMG; i++) {
        tl_infer_run(one, NULL, 1, input + i * in_len, alone);
        for (int k = 0; k < nout; k++) {
            size_t len = (size_t)tl_node_size(&m->nodes[outputs[k]]);
            CHECK_MSG(!memcmp(alone[k], out1[k] + i * len, len * sizeof(float)),
                      "%s: output %d (node %d), image %d differs alone and in a batch of %d", what, k, outputs[k], i,
                      MAXIMG);
        }
    }
    for (int k = 0; k < nout; k++)
        free(alone[k]);
    for (int k = 0; k < nout; k++) {
        free(out1[k]);
        free(out2[k]);
        free(out3[k]);
    }
    tl_pool_free(pool);
    tl_pool_free(pool3);
    tl_infer_free(one);
    tl_infer_free(two);
    tl_infer_free(prep3);
    for (int i = 0; i < MAXIMG; i++)
        ref_free(m, ref[i]);
    free(input);
}

/* ---- MobileNets ---- */

/* The first conv whose BN would normally be folded into it. */
static int inner_conv(const tl_model *m, int after)
{
    for (int i = after; i + 1 < m->nnodes; i++)
        if (m->nodes[i].op == TL_OP_CONV && m->nodes[i + 1].op == TL_OP_BN && !m->nodes[i].name[0])
            return i;
    return -1;
}

static void test_mobilenets(void)
{
    tl_err e = {0};
    tl_arch_opts o;
    static const struct {
        const char *arch;
        float width;
        const char *layers[3];
    } cases[] = {
        {"mobilenet_v2", 0.35f, {"features.0", "features.3", "features.14"}},
        {"mobilenet_v1", 0.25f, {"features.0", "features.2", "features.13"}},
    };
    for (int c = 0; c < 2; c++) {
        tl_arch_opts_default(&o);
        o.input_w = o.input_h = 64;
        o.width_mult = cases[c].width;
        o.num_classes = 10;
        tl_model *m = tl_arch_build(cases[c].arch, &o, &e);
        CHECK_MSG(m != NULL, "%s: %s", cases[c].arch, e.msg);
        if (!m)
            continue;
        CHECK(!strcmp(m->arch, cases[c].arch) && m->num_classes == 10);
        CHECK(m->logits_node >= 0 && tl_model_find_node(m, "logits") == m->logits_node);
        CHECK(m->features_node >= 0 && tl_model_find_node(m, "features") == m->features_node);
        CHECK(tl_model_find_node(m, "classifier.1") == m->logits_node);
        CHECK(tl_model_find_node(m, "no.such.layer") == -1);
        CHECK(tl_node_size(&m->nodes[m->logits_node]) == 10);
        CHECK(m->nodes[m->features_node].h == 1 && m->nodes[m->features_node].w == 1);
        fill_params(m, 1234 + (uint64_t)c);
        int outs[8], n = 0;
        outs[n++] = m->logits_node;
        outs[n++] = m->features_node;
        for (int k = 0; k < 3; k++) {
            int node = tl_model_find_node(m, cases[c].layers[k]);
            CHECK_MSG(node > 0, "%s: layer %s", cases[c].arch, cases[c].layers[k]);
            if (node > 0)
                outs[n++] = node;
        }
        check_infer(m, outs, n, cases[c].arch, 99);
        check_unpacked_linear(m, outs, n, cases[c].arch);
        /* an inner node (a conv whose BN is otherwise folded) can be requested */
        int inner = inner_conv(m, m->nnodes / 2);
        CHECK(inner > 0);
        if (inner > 0) {
            int outs2[3] = {inner, inner + 1, m->logits_node};
            check_infer(m, outs2, 3, "inner node", 7);
        }
        /* after the parameters change, refresh folds them again */
        tl_infer *inf = tl_infer_new(m, 1, outs, 1, &e);
        fill_params(m, 777);
        CHECK(inf && tl_infer_refresh(inf, &e) == 0);
        if (inf) {
            size_t in_len = (size_t)m->in_c * m->in_h * m->in_w;
            float *img = calloc(in_len, sizeof(float)), logits[10];
            for (size_t k = 0; k < in_len; k++)
                img[k] = (float)((k * 37) % 11) / 11.0f - 0.5f;
            float *out[1] = {logits};
            tl_infer_run(inf, NULL, 1, img, out);
            double **ref = ref_forward(m, img);
            if (ref)
                CHECK_MSG(rel_err(logits, ref[m->logits_node], 10) < 1e-4, "%s: after refresh", cases[c].arch);
            ref_free(m, ref);
            free(img);
            CHECK(tl_infer_worker_bytes(inf) > 0);
        }
        tl_infer_free(inf);
        /* output nodes out of range */
        int badout[1] = {m->nnodes};
        CHECK(tl_infer_new(m, 1, badout, 1, &e) == NULL && strstr(e.msg, "out of range"));
        badout[0] = 0;
        CHECK(tl_infer_new(m, 1, badout, 1, &e) == NULL);
        tl_model_free(m);
    }

    /* ResNet-18 at 64x64: layers 2-4 (8x8 to 2x2 maps) run on groups of
     * images; at 32x32 layer4's maps are 1x1, so an image alone is a
     * one-column product (the GEMV path) and a group is not */
    for (int size = 64; size >= 32; size /= 2) {
        tl_arch_opts_default(&o);
        o.input_w = o.input_h = size;
        o.num_classes = 10;
        tl_model *rn = tl_arch_build("resnet18", &o, &e);
        CHECK_MSG(rn != NULL, "resnet18: %s", e.msg);
        if (rn) {
            fill_params(rn, 4321);
            int outs[4] = {rn->logits_node, rn->features_node, tl_model_find_node(rn, "layer4"),
                           tl_model_find_node(rn, "layer2")};
            CHECK(outs[2] > 0 && outs[3] > 0);
            if (outs[2] > 0 && outs[3] > 0)
                check_infer(rn, outs, 4, size == 64 ? "resnet18" : "resnet18 at 32", 31);
        }
        tl_model_free(rn);
    }

    /* a backbone without classifier */
    tl_arch_opts_default(&o);
    o.input_w = o.input_h = 32;
    o.width_mult = 0.35f;
    o.num_classes = 0;
    tl_model *m = tl_arch_build("mobilenet_v2", &o, &e);
    CHECK(m && m->logits_node == -1 && tl_model_find_node(m, "logits") == -1 && tl_model_find_param(m, "classifier.1.weight") < 0);
    tl_model_free(m);

    /* full-size parameter counts (torchvision / Keras) */
    tl_arch_opts_default(&o);
    m = tl_arch_build("mobilenet_v2", &o, &e);
    CHECK(m && tl_model_param_count(m, 0) == 3504872);
    CHECK(m && tl_model_macs(m) > 290000000 && tl_model_macs(m) < 310000000);
    tl_model_free(m);
    m = tl_arch_build("mobilenet_v1", &o, &e);
    CHECK(m && tl_model_param_count(m, 0) == 4231976);
    tl_model_free(m);

    /* registry errors */
    CHECK(tl_arch_build("alexnet", &o, &e) == NULL && strstr(e.msg, "unknown architecture 'alexnet'"));
    o.input_w = o.input_h = 4;
    CHECK(tl_arch_build("mobilenet_v2", &o, &e) == NULL && strstr(e.msg, "input size"));
    o.input_w = o.input_h = 224;
    o.width_mult = 0;
    CHECK(tl_arch_build("mobilenet_v2", &o, &e) == NULL && strstr(e.msg, "width"));
    int has_v1 = 0, has_v2 = 0;
    for (int i = 0; i < tl_arch_count(); i++) {
        has_v1 |= !strcmp(tl_arch_name(i), "mobilenet_v1");
        has_v2 |= !strcmp(tl_arch_name(i), "mobilenet_v2");
    }
    CHECK(has_v1 && has_v2 && tl_arch_name(tl_arch_count()) == NULL);
    /* one table: every architecture has its initialisation */
    for (int i = 0; i < tl_arch_count(); i++)
        CHECK(tl_arch_init_policy(tl_arch_name(i)) != TL_INIT_OTHER);
    CHECK(tl_arch_init_policy("resnet50") == TL_INIT_RESNET && tl_arch_init_policy("small_cnn") == TL_INIT_MOBILE &&
          tl_arch_init_policy("nonesuch") == TL_INIT_OTHER);
    CHECK(tl_make_divisible(32 * 0.35, 8) == 16 && tl_make_divisible(1280, 8) == 1280 && tl_make_divisible(3, 8) == 8);
    CHECK(tl_make_divisible(24 * 0.75, 8) == 24 && tl_make_divisible(44, 8) == 48);
}

/* Names and shapes against torchvision's own state_dict (when available). */
static void test_torchvision_names(void)
{
    const char *py = "/usr/bin/python3";
    if (access(py, X_OK) != 0) {
        printf("model: %s missing, torchvision name check skipped\n", py);
        return;
    }
    FILE *p = popen("/usr/bin/python3 -c '"
                    "import torchvision\n"
                    "m = torchvision.models.mobilenet_v2(width_mult=0.35, num_classes=10)\n"
                    "for k, v in m.state_dict().items():\n"
                    "    print(k, *v.shape)\n"
                    "' 2>/dev/null",
                    "r");
    if (!p)
        return;
    tl_err e = {0};
    tl_arch_opts o;
    tl_arch_opts_default(&o);
    o.input_w = o.input_h = 64;
    o.width_mult = 0.35f;
    o.num_classes = 10;
    tl_model *m = tl_arch_build("mobilenet_v2", &o, &e);
    char line[256];
    int seen = 0, bad = 0;
    while (m && fgets(line, sizeof line, p)) {
        char name[128];
        long long s[4] = {0};
        int k = sscanf(line, "%127s %lld %lld %lld %lld", name, &s[0], &s[1], &s[2], &s[3]);
        if (k < 1 || ends_with(name, "num_batches_tracked"))
            continue;
        seen++;
        int i = tl_model_find_param(m, name);
        int ok = i >= 0 && m->params[i].ndim == k - 1;
        for (int d = 0; ok && d < k - 1; d++)
            ok = m->params[i].shape[d] == s[d];
        if (!ok && bad++ < 5)
            fprintf(stderr, "    torchvision %s", line);
    }
    int st = pclose(p);
    if (seen == 0 || st != 0) {
        printf("model: torchvision not importable, name check skipped\n");
    } else {
        CHECK(bad == 0);
        CHECK_MSG(seen == m->nparams, "torchvision has %d tensors, we have %d", seen, m->nparams);
    }
    tl_model_free(m);
}

/* ---- a hand-built graph: every fusion case, odd shapes, tf padding ---- */

static tl_model *build_small(int tf_same, int *named, tl_err *e)
{
    tl_model *m = tl_model_new("small", 3, 9, 11, e);
    if (!m)
        return NULL;
    m->tf_same = tf_same;
    int x = tl_model_conv(m, 0, "c1", 8, 3, 2, 1, 1, e);           /* bias */
    x = tl_model_bn(m, x, "b1", 1e-3f, e);
    x = tl_model_act(m, x, TL_ACT_HARDSWISH, e);
    tl_model_name(m, x, "stage1", e);
    int s1 = x;
    x = tl_model_conv(m, x, "c2", 8, 5, 1, 2, 0, e);               /* grouped, conv + act only */
    x = tl_model_act(m, x, TL_ACT_SIGMOID, e);
    int c3 = tl_model_conv(m, x, "c3", 8, 1, 1, 1, 0, e);
    x = tl_model_bn(m, c3, "b3", 1e-5f, e);
    x = tl_model_add(m, x, s1, e);
    x = tl_model_act(m, x, TL_ACT_SILU, e);                         /* act after add */
    x = tl_model_bn(m, x, "b4", 1e-5f, e);                          /* BN with no conv */
    tl_model_name(m, x, "stage2", e);
    int dw = tl_model_conv(m, x, "dw", 8, 3, 2, 8, 1, e);           /* depthwise, stride 2 */
    x = tl_model_bn(m, dw, "b5", 1e-5f, e);
    x = tl_model_act(m, x, TL_ACT_RELU6, e);
    int branch = tl_model_act(m, dw, TL_ACT_HARDSIGMOID, e);        /* dw read twice: no fusion */
    x = tl_model_add(m, x, branch, e);
    x = tl_model_conv(m, x, "c6", 12, 2, 1, 1, 1, e);               /* even kernel */
    x = tl_model_act(m, x, TL_ACT_RELU, e);
    tl_model_name(m, x, "stage3", e);
    int flat = tl_model_linear(m, x, "flat", 5, e);                 /* linear on a c x h x w map */
    int gap = tl_model_gap(m, x, e);
    x = tl_model_dropout(m, gap, 0.5f, e);
    x = tl_model_dropout(m, x, 0.1f, e);
    x = tl_model_linear(m, x, "fc", 4, e);
    m->features_node = gap;
    m->logits_node = x;
    if (x < 0 || flat < 0 || tl_model_finalize(m, e)) {
        tl_model_free(m);
        return NULL;
    }
    named[0] = flat;
    named[1] = c3;
    named[2] = dw;
    return m;
}

static void test_small_graph(void)
{
    tl_err e = {0};
    for (int tf = 0; tf < 2; tf++) {
        int named[3];
        tl_model *m = build_small(tf, named, &e);
        CHECK_MSG(m != NULL, "%s", e.msg);
        if (!m)
            continue;
        fill_params(m, 5 + (uint64_t)tf);
        /* shapes: 9x11 -> stride 2 -> 5x6 (both paddings), -> 3x3, then k=2 */
        int s1 = tl_model_find_node(m, "stage1"), s3 = tl_model_find_node(m, "stage3");
        CHECK(m->nodes[s1].c == 8 && m->nodes[s1].h == 5 && m->nodes[s1].w == 6);
        CHECK(m->nodes[named[2]].h == 3 && m->nodes[named[2]].w == 3);
        CHECK_MSG(m->nodes[s3].h == (tf ? 3 : 2) && m->nodes[s3].w == (tf ? 3 : 2), "stage3 %dx%d", m->nodes[s3].h,
                  m->nodes[s3].w);
        if (tf) {
            const tl_conv_geom *g = &m->nodes[1].geom; /* 9x11, k3 s2: SAME pads 1,1 and 1,1 / 0..1 */
            CHECK(g->pad_t + g->pad_b == 2 && g->pad_l + g->pad_r == 2 && g->pad_t == 1);
        }
        CHECK(tl_model_find_param(m, "c1.bias") >= 0 && tl_model_find_param(m, "c2.bias") < 0);
        CHECK(tl_model_find_param(m, "b4.running_var") >= 0 && m->params[tl_model_find_param(m, "b4.running_var")].is_buffer);
        CHECK(tl_model_param_count(m, 1) - tl_model_param_count(m, 0) == 2 * 8 * 4);
        int outs[7] = {m->logits_node, named[0], tl_model_find_node(m, "stage2"), s1, s3, m->features_node,
                       named[1]};
        check_infer(m, outs, 7, tf ? "small graph (tf padding)" : "small graph", 3);
        /* without the inner request, c3 + b3 fuse: same answers */
        check_infer(m, outs, 6, "small graph, fused", 4);
        /* a dropout node resolves to its input */
        int drop = m->features_node + 1;
        CHECK(m->nodes[drop].op == TL_OP_DROPOUT);
        int o2[2] = {drop + 1, m->logits_node};
        check_infer(m, o2, 2, "dropout output", 5);
        tl_model_free(m);
    }

    /* builder errors */
    tl_model *m = tl_model_new("err", 3, 8, 8, &e);
    CHECK(tl_model_conv(m, 0, "g", 8, 3, 1, 2, 0, &e) < 0 && strstr(e.msg, "groups"));
    CHECK(m->nnodes == 1);
    CHECK(tl_model_conv(m, 5, "x", 8, 3, 1, 1, 0, &e) < 0 && strstr(e.msg, "out of range"));
    tl_model *tiny = tl_model_new("tiny", 3, 1, 1, &e);
    CHECK(tl_model_conv(tiny, 0, "big", 8, 4, 1, 1, 0, &e) < 0 && strstr(e.msg, "too small"));
    tl_model_free(tiny);
    int a = tl_model_conv(m, 0, "a", 4, 3, 1, 1, 0, &e);
    int b = tl_model_conv(m, 0, "b", 4, 3, 2, 1, 0, &e);
    CHECK(a > 0 && b > 0);
    CHECK(tl_model_add(m, a, b, &e) < 0 && strstr(e.msg, "residual shapes differ"));
    CHECK(tl_model_add(m, a, 99, &e) < 0);
    CHECK(tl_model_name(m, a, "same", &e) == 0 && tl_model_name(m, b, "same", &e) < 0 && strstr(e.msg, "twice"));
    CHECK(tl_model_name(m, 99, "x", &e) < 0);
    char longname[200];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    CHECK(tl_model_conv(m, 0, longname, 4, 1, 1, 1, 0, &e) < 0 && strstr(e.msg, "too long"));
    CHECK(tl_model_finalize(m, &e) == 0);
    CHECK(tl_model_conv(m, 0, "late", 4, 1, 1, 1, 0, &e) < 0 && strstr(e.msg, "finalised"));
    /* parameters are 64-byte aligned views into one block */
    for (int i = 0; i < m->nparams; i++)
        CHECK(((uintptr_t)m->params[i].data % 64) == 0);
    tl_model_free(m);
    tl_model_free(NULL);
}

/* ---- checkpoints ---- */

static const char *tmp(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static char *class_names[10] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "caf\xC3\xA9 \"9\""};

/* Copies src to path, leaving out `drop`, adding a tensor `add`, or
 * giving `reshape` a shape of [8]. */
static void rewrite(const char *src, const char *path, const char *drop, const char *add, const char *reshape,
                    const char *retype, const char *meta_key, const char *meta_value)
{
    tl_err e = {0};
    tl_st_file f;
    if (tl_st_open(src, &f, &e)) {
        CHECK_MSG(0, "%s", e.msg);
        return;
    }
    tl_st_writer *w = tl_st_writer_new();
    static const float extra[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const int64_t s8[1] = {8}, s2[1] = {2};
    static const int64_t ints[2] = {1, 2};
    for (int i = 0; i < f.ntensors; i++) {
        const tl_st_tensor *t = &f.tensors[i];
        if (drop && !strcmp(t->name, drop))
            continue;
        if (reshape && !strcmp(t->name, reshape))
            tl_st_add(w, t->name, TL_F32, 1, s8, extra, &e);
        else if (retype && !strcmp(t->name, retype))
            tl_st_add(w, t->name, TL_I64, 1, s2, ints, &e);
        else
            tl_st_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, &e);
    }
    if (add)
        tl_st_add(w, add, TL_F32, 1, s8, extra, &e);
    for (int i = 0; i < f.nmeta; i++)
        if (!meta_key || strcmp(f.meta_keys[i], meta_key))
            tl_st_set_meta(w, f.meta_keys[i], f.meta_values[i], &e);
    if (meta_key && meta_value)
        tl_st_set_meta(w, meta_key, meta_value, &e);
    CHECK_MSG(tl_st_write(w, path, &e) == 0, "%s", e.msg);
    tl_st_writer_free(w);
    tl_st_close(&f);
}

static void expect_load_error(const char *path, const char *want1, const char *want2)
{
    tl_err e = {0};
    tl_net net;
    int rc = tl_net_load(path, &net, &e);
    CHECK_MSG(rc < 0, "%s loaded", path);
    if (rc == 0) {
        tl_net_free(&net);
        return;
    }
    CHECK_MSG(strstr(e.msg, want1) && (!want2 || strstr(e.msg, want2)), "message '%s', wanted '%s' and '%s'", e.msg,
              want1, want2 ? want2 : "");
    CHECK(net.model == NULL && net.classes == NULL);
}

static void test_checkpoint(void)
{
    tl_err e = {0};
    tl_arch_opts o;
    tl_arch_opts_default(&o);
    o.input_w = o.input_h = 64;
    o.width_mult = 0.35f;
    o.num_classes = 10;
    tl_net net;
    memset(&net, 0, sizeof net);
    net.model = tl_arch_build("mobilenet_v2", &o, &e);
    if (!net.model) {
        CHECK_MSG(0, "%s", e.msg);
        return;
    }
    fill_params(net.model, 42);
    net.opts = o;
    static char *keys[] = {"tl.arch", "tl.num_classes", "tl.width_mult", "tl.input_size", "tl.classes", "tl.mean",
                           "tl.std"};
    static char *values[] = {"mobilenet_v2", "10", "0.35", "64",
                             "[\"c0\",\"c1\",\"c2\",\"c3\",\"c4\",\"c5\",\"c6\",\"c7\",\"c8\",\"caf\\u00e9 \\\"9\\\"\"]",
                             "[0.5,0.5,0.5]", "[0.25,0.5,1]"};
    net.meta_keys = keys;
    net.meta_values = values;
    net.nmeta = 7;
    net.classes = class_names;
    net.nclasses = 10;
    char path[256];
    snprintf(path, sizeof path, "%s", tmp("net.safetensors"));
    const char *extra[] = {"tl.note", "round trip", "tl.input_size", "64", NULL};
    CHECK_MSG(tl_net_save(&net, path, extra, &e) == 0, "%s", e.msg);

    tl_net back;
    int rc = tl_net_load(path, &back, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc == 0) {
        const tl_model *a = net.model, *b = back.model;
        CHECK(!strcmp(b->arch, "mobilenet_v2") && b->nparams == a->nparams && b->nnodes == a->nnodes);
        int same = b->nparams == a->nparams;
        for (int i = 0; same && i < a->nparams; i++)
            same = !strcmp(a->params[i].name, b->params[i].name) && a->params[i].numel == b->params[i].numel &&
                   !memcmp(a->params[i].data, b->params[i].data, (size_t)a->params[i].numel * sizeof(float));
        CHECK_MSG(same, "parameters differ after a save/load round trip");
        CHECK(back.nclasses == 10 && !strcmp(back.classes[9], class_names[9]) && !strcmp(back.classes[0], "c0"));
        CHECK(back.opts.num_classes == 10 && back.opts.input_w == 64 && back.opts.input_h == 64 && fabsf(back.opts.width_mult - 0.35f) < 1e-6f);
        CHECK(back.pp.input_w == 64 && back.pp.input_h == 64 && back.pp.mean[0] == 0.5f && back.pp.std[0] == 0.25f && back.pp.std[2] == 1.0f);
        CHECK(back.path && !strcmp(back.path, path));
        CHECK(tl_net_meta(&back, "tl.note") && !strcmp(tl_net_meta(&back, "tl.note"), "round trip"));
        CHECK(tl_net_meta(&back, "tl.arch") && !strcmp(tl_net_meta(&back, "tl.arch"), "mobilenet_v2"));
        CHECK(tl_net_meta(&back, "absent") == NULL);
        /* the saver states the format it wrote */
        CHECK(back.nmeta == 9 && tl_net_meta(&back, "tl.format") && !strcmp(tl_net_meta(&back, "tl.format"), "1"));
        {
            /* a newer tl's network is refused by name, a malformed format too */
            const char *p3 = tmp("newer.safetensors");
            const char *newer[] = {"tl.format", "2", NULL}, *junk[] = {"tl.format", "1x", NULL};
            tl_net n3;
            CHECK(tl_net_save(&back, p3, newer, &e) == 0);
            CHECK(tl_net_load(p3, &n3, &e) < 0 && strstr(e.msg, "version 2 was written by a newer tl"));
            CHECK(tl_net_save(&back, p3, junk, &e) == 0);
            CHECK(tl_net_load(p3, &n3, &e) < 0 && strstr(e.msg, "not a whole number"));
            unlink(p3);
        }
        /* saving what was loaded gives the same tensors again */
        const char *path2 = tmp("net2.safetensors");
        CHECK(tl_net_save(&back, path2, NULL, &e) == 0);
        tl_st_file f1, f2;
        if (tl_st_open(path, &f1, &e) == 0) {
            if (tl_st_open(path2, &f2, &e) == 0) {
                CHECK(f1.ntensors == f2.ntensors && f1.nmeta == f2.nmeta);
                int eq = f1.ntensors == f2.ntensors;
                for (int i = 0; eq && i < f1.ntensors; i++) {
                    const tl_st_tensor *t2 = tl_st_find(&f2, f1.tensors[i].name);
                    eq = t2 && t2->nbytes == f1.tensors[i].nbytes && !memcmp(t2->data, f1.tensors[i].data, t2->nbytes);
                }
                CHECK(eq);
                /* torchvision's step counters are there, as I64 scalars */
                const tl_st_tensor *nbt = tl_st_find(&f1, "features.0.1.num_batches_tracked");
                CHECK(nbt && nbt->dtype == TL_I64 && nbt->ndim == 0);
                tl_st_close(&f2);
            }
            tl_st_close(&f1);
        }
        unlink(path2);
        tl_net_free(&back);
        CHECK(back.model == NULL);
    }

    /* damaged checkpoints name what is wrong */
    const char *bad = tmp("bad.safetensors");
    rewrite(path, bad, "features.2.conv.1.1.running_var", NULL, NULL, NULL, NULL, NULL);
    expect_load_error(bad, "features.2.conv.1.1.running_var", "missing");
    rewrite(path, bad, NULL, "features.99.weight", NULL, NULL, NULL, NULL);
    expect_load_error(bad, "features.99.weight", "unexpected");
    rewrite(path, bad, NULL, NULL, "features.0.1.weight", NULL, NULL, NULL);
    expect_load_error(bad, "features.0.1.weight", "shape");
    rewrite(path, bad, NULL, NULL, "classifier.1.weight", NULL, NULL, NULL);
    expect_load_error(bad, "classifier.1.weight", NULL);
    rewrite(path, bad, NULL, NULL, NULL, "features.0.1.bias", NULL, NULL);
    expect_load_error(bad, "features.0.1.bias", NULL);
    rewrite(path, bad, NULL, NULL, NULL, NULL, "tl.arch", NULL);
    expect_load_error(bad, "no tl.arch", NULL);
    rewrite(path, bad, NULL, NULL, NULL, NULL, "tl.arch", "resnet9000");
    expect_load_error(bad, "resnet9000", NULL);
    rewrite(path, bad, NULL, NULL, NULL, NULL, "tl.classes", "[\"a\",\"b\"]");
    expect_load_error(bad, "2 class names for 10 outputs", NULL);
    rewrite(path, bad, NULL, NULL, NULL, NULL, "tl.classes", "[\"a\",");
    expect_load_error(bad, "tl.classes", NULL);
    rewrite(path, bad, NULL, NULL, NULL, NULL, "tl.num_classes", "ten");
    expect_load_error(bad, "tl.num_classes", NULL);
    rewrite(path, bad, NULL, NULL, NULL, NULL, "tl.width_mult", "1.0");
    expect_load_error(bad, "shape", NULL);
    rewrite(path, bad, NULL, NULL, NULL, NULL, "tl.std", "[1,0,1]");
    expect_load_error(bad, "tl.std", NULL);
    rewrite(path, bad, NULL, NULL, NULL, NULL, "tl.input_size", "2");
    expect_load_error(bad, "tl.input_size", NULL);
    rewrite(path, bad, NULL, NULL, NULL, NULL, "tl.input_size", "64x");
    expect_load_error(bad, "tl.input_size", "WxH");
    rewrite(path, bad, NULL, NULL, NULL, NULL, "tl.input_size", "64x4");
    expect_load_error(bad, "tl.input_size", NULL);
    rewrite(path, bad, NULL, NULL, NULL, NULL, "tl.resize_mode", "zoom");
    expect_load_error(bad, "tl.resize_mode", "crop, squash or pad");
    /* an oblong input from the metadata: the graph and the preprocessing follow it */
    rewrite(path, bad, NULL, NULL, NULL, NULL, "tl.input_size", "80x48");
    rc = tl_net_load(bad, &back, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc == 0) {
        CHECK(back.model->in_w == 80 && back.model->in_h == 48 && back.pp.input_w == 80 && back.pp.input_h == 48);
        /* no tl.resize_size: 256/224 of the shorter side; no tl.resize_mode: crop, as before the key */
        CHECK(back.pp.resize_size == 55 && back.pp.resize_mode == TL_RESIZE_CROP);
        tl_net_free(&back);
    }
    /* another input at load time: metadata and preprocessing say the new geometry */
    rc = tl_net_load_at(path, 96, 64, TL_RESIZE_PAD, &back, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc == 0) {
        CHECK(back.model->in_w == 96 && back.model->in_h == 64 && back.pp.resize_mode == TL_RESIZE_PAD);
        CHECK(back.pp.resize_size == 73); /* 64 * 73/64: the ratio of the stored box */
        CHECK(tl_net_meta(&back, "tl.input_size") && !strcmp(tl_net_meta(&back, "tl.input_size"), "96x64"));
        CHECK(tl_net_meta(&back, "tl.resize_mode") && !strcmp(tl_net_meta(&back, "tl.resize_mode"), "pad"));
        CHECK(tl_net_meta(&back, "tl.resize_size") && !strcmp(tl_net_meta(&back, "tl.resize_size"), "73"));
        CHECK(tl_net_meta(&back, "tl.note") && !strcmp(tl_net_meta(&back, "tl.note"), "round trip"));
        tl_net_free(&back);
    }
    rc = tl_net_load_at(path, 4, 64, -1, &back, &e);
    CHECK(rc < 0 && e.kind == TL_ERR_ARG && strstr(e.msg, "input size 4x64"));
    expect_load_error(tmp("absent.safetensors"), "absent.safetensors", NULL);
    /* the same file without tl.num_classes: the classifier's shape says it */
    rewrite(path, bad, NULL, NULL, NULL, NULL, "tl.num_classes", NULL);
    rc = tl_net_load(bad, &back, &e);
    CHECK_MSG(rc == 0 && back.opts.num_classes == 10, "%s", e.msg);
    if (rc == 0)
        tl_net_free(&back);
    unlink(bad);

    /* a missing folder: nothing written, error names the path */
    CHECK(tl_net_save(&net, tmp("no/dir/x.safetensors"), NULL, &e) < 0 && strstr(e.msg, "no/dir/x.safetensors"));

    /* locating models by name along TL_MODEL_PATH */
    char out[512];
    char *old = getenv("TL_MODEL_PATH") ? strdup(getenv("TL_MODEL_PATH")) : NULL;
    char mp[300];
    snprintf(mp, sizeof mp, "%s/nothing-here::%s", dir, dir);
    setenv("TL_MODEL_PATH", mp, 1);
    CHECK(tl_model_locate("net", out, sizeof out, &e) == 0 && !strcmp(out, path));
    CHECK(tl_model_locate("net.safetensors", out, sizeof out, &e) == 0 && !strcmp(out, path));
    CHECK(tl_model_locate(path, out, sizeof out, &e) == 0 && !strcmp(out, path));
    char noext[300];
    snprintf(noext, sizeof noext, "%s/net", dir);
    CHECK(tl_model_locate(noext, out, sizeof out, &e) == 0 && !strcmp(out, path));
    CHECK(tl_model_locate("unknown_net", out, sizeof out, &e) < 0 && strstr(e.msg, "unknown_net") &&
          strstr(e.msg, "TL_MODEL_PATH"));
    snprintf(noext, sizeof noext, "%s/unknown", dir);
    CHECK(tl_model_locate(noext, out, sizeof out, &e) < 0 && strstr(e.msg, "no such model file"));
    rc = tl_net_load("net", &back, &e);
    CHECK_MSG(rc == 0 && !strcmp(back.path, path), "%s", e.msg);
    if (rc == 0)
        tl_net_free(&back);
    unsetenv("TL_MODEL_PATH");
    CHECK(tl_model_locate("net", out, sizeof out, &e) < 0 && strstr(e.msg, "TL_MODEL_PATH is not set"));
    if (old) {
        setenv("TL_MODEL_PATH", old, 1);
        free(old);
    }
    unlink(path);

    net.meta_keys = net.meta_values = NULL;
    net.nmeta = 0;
    net.classes = NULL;
    net.nclasses = 0;
    tl_net_free(&net);
}

/* ---- Winograd in fused inference: 3x3 stride-1 convolutions on maps
 * large enough (odd edges: partial output tiles) against the reference,
 * bit-identical for any thread count, and exact inference (the direct
 * path) within the same bound but not the same bits. ---- */

static void test_winograd_graph(void)
{
    tl_err e = {0};
    tl_model *m = tl_model_new("wino", 16, 26, 30, &e);
    CHECK_MSG(m != NULL, "%s", e.msg);
    if (!m)
        return;
    int c1 = tl_model_conv(m, 0, "c1", 24, 3, 1, 1, 0, &e);
    int x = tl_model_bn(m, c1, "b1", 1e-5f, &e);
    int s1 = tl_model_act(m, x, TL_ACT_RELU, &e);
    int c2 = tl_model_conv(m, s1, "c2", 24, 3, 1, 1, 1, &e); /* bias, no BN */
    x = tl_model_add(m, c2, s1, &e);                           /* the residual: Winograd's epilogue */
    int s2 = tl_model_act(m, x, TL_ACT_SILU, &e);
    int gap = tl_model_gap(m, s2, &e);
    x = tl_model_linear(m, gap, "fc", 5, &e);
    m->features_node = gap;
    m->logits_node = x;
    int ok = x > 0 && tl_model_name(m, s1, "stage1", &e) >= 0 && tl_model_name(m, s2, "stage2", &e) >= 0 &&
             tl_model_finalize(m, &e) == 0;
    CHECK_MSG(ok, "%s", e.msg);
    if (!ok) {
        tl_model_free(m);
        return;
    }
    fill_params(m, 11);
    tl_kws *ws = tl_kws_new(&e);
    CHECK_MSG(ws && tl_conv_forward_scratch_floats(ws, &m->nodes[c1].geom) > 0 &&
                  tl_conv_forward_scratch_floats(ws, &m->nodes[c2].geom) > 0,
              "the 3x3 convolutions at 26x30 do not take Winograd on the %s path", ws ? tl_kws_simd_name(ws) : "?");
    tl_kws_free(ws);
    int outs[4] = {m->logits_node, s1, s2, gap};
    check_infer(m, outs, 4, "winograd graph", 17);

    size_t in_len = (size_t)16 * 26 * 30, len = (size_t)tl_node_size(&m->nodes[s2]);
    float *img = malloc(in_len * sizeof *img), *fast = malloc(len * sizeof *fast), *exact = malloc(len * sizeof *exact);
    tl_rng r;
    tl_rng_seed(&r, 23);
    for (size_t k = 0; k < in_len; k++)
        img[k] = 2 * tl_rng_uniform(&r) - 1;
    double **ref = ref_forward(m, img);
    tl_infer *a = tl_infer_new(m, 1, &s2, 1, &e), *b = tl_infer_new_exact(m, 1, &s2, 1, 1, &e);
    CHECK_MSG(a && b && ref, "%s", e.msg);
    if (a && b && ref) {
        tl_infer_run(a, NULL, 1, img, &fast);
        tl_infer_run(b, NULL, 1, img, &exact);
        double ew = rel_err(fast, ref[s2], len), ed = rel_err(exact, ref[s2], len);
        CHECK_MSG(ed < 1e-4 && ew < 1e-4, "relative error: exact %.3g, winograd %.3g", ed, ew);
        CHECK_MSG(memcmp(fast, exact, len * sizeof *fast) != 0, "exact inference gave Winograd's bits");
        printf("model: winograd graph, relative error of stage2: exact %.2g, winograd %.2g\n", ed, ew);
    }
    ref_free(m, ref);
    tl_infer_free(a);
    tl_infer_free(b);
    free(img), free(fast), free(exact);
    tl_model_free(m);
}

/* ---- Squeeze-excitation fusions of inference: the depthwise layer makes
 * the squeeze's means, the gate scales the project layer's input as it is
 * packed, the residual add is that layer's epilogue. Against the
 * reference, bit-identical for any thread count; requesting a value a
 * fusion skips keeps it (and costs a pass). ---- */

static void test_se_fusions(void)
{
    tl_err e = {0};
    for (int stride = 1; stride <= 2; stride++) {
        tl_model *m = tl_model_new("se", 3, 13, 11, &e); /* 143-pixel planes: ragged 16-lane blocks */
        CHECK_MSG(m != NULL, "%s", e.msg);
        if (!m)
            return;
        int x = tl_model_conv(m, 0, "stem", 16, 3, stride, 1, 0, &e);
        x = tl_model_bn(m, x, "stem_bn", 1e-5f, &e);
        int in = tl_model_act(m, x, TL_ACT_SILU, &e);
        x = tl_model_conv(m, in, "expand", 40, 1, 1, 1, 0, &e);
        x = tl_model_bn(m, x, "expand_bn", 1e-5f, &e);
        x = tl_model_act(m, x, TL_ACT_SILU, &e);
        x = tl_model_conv(m, x, "dw", 40, 5, 1, 40, 0, &e);
        x = tl_model_bn(m, x, "dw_bn", 1e-5f, &e);
        int dw = tl_model_act(m, x, TL_ACT_SILU, &e);
        int squeeze = tl_model_gap(m, dw, &e);
        x = tl_model_conv(m, squeeze, "fc1", 4, 1, 1, 1, 1, &e);
        x = tl_model_act(m, x, TL_ACT_SILU, &e);
        x = tl_model_conv(m, x, "fc2", 40, 1, 1, 1, 1, &e);
        x = tl_model_act(m, x, TL_ACT_SIGMOID, &e);
        int scaled = tl_model_scale(m, dw, x, &e);
        int project = tl_model_conv(m, scaled, "project", 16, 1, 1, 1, 0, &e);
        int project_bn = tl_model_bn(m, project, "project_bn", 1e-5f, &e);
        int block = tl_model_add(m, in, project_bn, &e); /* the residual first: either order fuses */
        int gap = tl_model_gap(m, block, &e);
        x = tl_model_linear(m, gap, "fc", 6, &e);
        m->features_node = gap;
        m->logits_node = x;
        int ok = x > 0 && tl_model_name(m, block, "block", &e) >= 0 && tl_model_finalize(m, &e) == 0;
        CHECK_MSG(ok, "%s", e.msg);
        if (!ok) {
            tl_model_free(m);
            return;
        }
        fill_params(m, 31 + (uint64_t)stride);
        int outs[3] = {m->logits_node, block, gap};
        check_infer(m, outs, 3, stride == 1 ? "se block" : "se block, 7x6", 41);
        /* the squeeze, the scaled map and the project layer's own output as outputs */
        int kept[5] = {m->logits_node, squeeze, scaled, project_bn, block};
        check_infer(m, kept, 5, "se block, inner values", 43);
        tl_infer *fused = tl_infer_new(m, 1, outs, 1, &e), *plain = tl_infer_new(m, 1, kept + 2, 2, &e);
        CHECK_MSG(fused && plain, "%s", e.msg);
        if (fused && plain)
            CHECK_MSG(tl_infer_passes(fused) + 2 == tl_infer_passes(plain),
                      "passes: %d fused, %d with the scale and add kept", tl_infer_passes(fused),
                      tl_infer_passes(plain));
        tl_infer_free(fused);
        tl_infer_free(plain);
        tl_model_free(m);
    }
}

/* A ViT's token linears take the GELU after the first MLP linear and the
 * residual adds after the attention's and the MLP's last linear into the
 * GEMM's epilogue: the same bits as with those linears' outputs requested
 * (which keeps them apart), for 1, 2 and 3 threads, and each image alone
 * or in a batch of 3. */
static void test_vit_fused(void)
{
    tl_err e = {0};
    tl_arch_opts o;
    tl_arch_opts_default(&o);
    o.input_w = o.input_h = 48; /* 9 patches + the class token */
    o.num_classes = 10;
    tl_model *m = tl_arch_build("vit_ti_16", &o, &e);
    CHECK_MSG(m != NULL, "vit_ti_16: %s", e.msg);
    if (!m)
        return;
    fill_params(m, 4242);
    enum { NIMG = 3, MAXOUT = 64 };
    int outs[MAXOUT], n = 0;
    outs[n++] = m->logits_node;
    outs[n++] = m->features_node;
    for (int i = 0; i < m->nnodes && n < MAXOUT; i++)
        if (m->nodes[i].op == TL_OP_TOKEN_LINEAR)
            outs[n++] = i;
    CHECK(n == 2 + 4 * 12);
    size_t in_len = (size_t)m->in_c * m->in_h * m->in_w, lens[2];
    float *input = malloc(NIMG * in_len * sizeof(float)), *got[4][2], *unf[MAXOUT];
    tl_rng r;
    tl_rng_seed(&r, 11);
    for (size_t k = 0; k < NIMG * in_len; k++)
        input[k] = 2 * tl_rng_uniform(&r) - 1;
    for (int k = 0; k < n; k++)
        unf[k] = malloc(NIMG * (size_t)tl_node_size(&m->nodes[outs[k]]) * sizeof(float));
    for (int k = 0; k < 2; k++) {
        lens[k] = (size_t)tl_node_size(&m->nodes[outs[k]]);
        for (int v = 0; v < 4; v++)
            got[v][k] = malloc(NIMG * lens[k] * sizeof(float));
    }
    tl_pool *pool2 = tl_pool_new(2, &e), *pool3 = tl_pool_new(3, &e);
    tl_infer *apart = tl_infer_new(m, 1, outs, n, &e), *fused = tl_infer_new(m, 3, outs, 2, &e);
    CHECK_MSG(apart && fused && pool2 && pool3, "vit_ti_16: %s", e.msg);
    if (apart && fused && pool2 && pool3) {
        CHECK(tl_infer_passes(fused) < tl_infer_passes(apart)); /* the fusions happened */
        tl_infer_run(apart, NULL, NIMG, input, unf);
        tl_infer_run(fused, NULL, NIMG, input, got[0]);
        tl_infer_run(fused, pool2, NIMG, input, got[1]);
        tl_infer_run(fused, pool3, NIMG, input, got[2]);
        for (int i = 0; i < NIMG; i++) {
            float *alone[2] = {got[3][0] + i * lens[0], got[3][1] + i * lens[1]};
            tl_infer_run(fused, pool2, 1, input + i * in_len, alone);
        }
        for (int k = 0; k < 2; k++)
            for (int v = 0; v < 4; v++)
                CHECK_MSG(!memcmp(got[v][k], unf[k], NIMG * lens[k] * sizeof(float)),
                          "vit_ti_16: output %d fused (run %d: 1/2/3 threads, alone) differs from apart", k, v);
    }
    tl_infer_free(apart);
    tl_infer_free(fused);
    tl_pool_free(pool2);
    tl_pool_free(pool3);
    for (int k = 0; k < n; k++)
        free(unf[k]);
    for (int k = 0; k < 2; k++)
        for (int v = 0; v < 4; v++)
            free(got[v][k]);
    free(input);
    tl_model_free(m);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/tl-model-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_mobilenets();
    test_torchvision_names();
    test_small_graph();
    test_winograd_graph();
    test_se_fusions();
    test_vit_fused();
    test_checkpoint();
    rmdir(dir);
    return check_finish("model");
}
