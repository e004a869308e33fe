/* The int8 engine's planning on a small ResNet-like graph with a quantisation
 * attached by hand: a float first convolution and max pool, quantised 3x3
 * layers, a residual add whose result reaches the next layer through a
 * dropout (as a ResNet stage's last block does), a float classifier. The
 * max pool and the add must run in uint8 (only the first convolution and
 * the classifier in float), and the output must be the same bytes for any
 * thread count, batch and with or without the classifier's packed copies. */
#include "check.h"
#include "nn/infer_q8.h"
#include "nn/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rng_state = 777;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}
static float frand(float a) { return a * ((float)(rnd() % 20001) / 10000.0f - 1.0f); }

static void fill(tl_model *m, int p, float a, float base)
{
    for (int64_t i = 0; i < m->params[p].numel; i++)
        m->params[p].data[i] = base + frand(a);
}

/* conv (node) quantised: random integer weights, per-channel scales */
static void qlayer(tl_model *m, tl_qlayer *L, int node, float in_s, int in_z, float out_s, int out_z)
{
    const tl_node *n = &m->nodes[node];
    int64_t numel = m->params[n->weight].numel;
    L->node = node;
    L->w = malloc((size_t)numel * sizeof *L->w);
    L->wscale = malloc((size_t)n->c * sizeof *L->wscale);
    L->bias = malloc((size_t)n->c * sizeof *L->bias);
    for (int64_t i = 0; i < numel; i++)
        L->w[i] = (int16_t)((int)(rnd() % 255) - 127);
    for (int o = 0; o < n->c; o++) {
        L->wscale[o] = 0.0004f + 0.0001f * (float)(o % 5);
        L->bias[o] = (int32_t)(rnd() % 2001) - 1000;
    }
    for (int64_t i = 0; i < numel; i++) /* the float form, as a checkpoint's dequantised weights */
        m->params[n->weight].data[i] = L->w[i] * L->wscale[i / (numel / n->c)];
    L->in_scale = in_s;
    L->in_zero = in_z;
    L->out_scale = out_s;
    L->out_zero = out_z;
}

/* The float classifier (linear, ReLU, linear) evaluated in double on the
 * engine's own features: the int8 part is checked elsewhere (test_q8), so
 * the head must agree to float rounding. */
static void check_head(const tl_model *m, const float *feat, int nf, int hidden, const float *logits, int classes,
                       int n)
{
    int fc2 = m->logits_node, fc1 = -1;
    for (int i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == TL_OP_LINEAR && i != fc2)
            fc1 = i;
    CHECK(fc1 >= 0);
    if (fc1 < 0)
        return;
    const float *w1 = m->params[m->nodes[fc1].weight].data, *b1 = m->params[m->nodes[fc1].bias].data;
    const float *w2 = m->params[m->nodes[fc2].weight].data, *b2 = m->params[m->nodes[fc2].bias].data;
    double *h = malloc((size_t)hidden * sizeof *h), *lg = malloc((size_t)classes * sizeof *lg);
    double worst = 0, mag = 0;
    for (int im = 0; im < n; im++) {
        double mx = 0;
        for (int o = 0; o < hidden; o++) {
            double a = b1[o];
            for (int k = 0; k < nf; k++)
                a += (double)w1[(size_t)o * nf + k] * feat[(size_t)im * nf + k];
            h[o] = a > 0 ? a : 0;
        }
        for (int o = 0; o < classes; o++) {
            double a = b2[o];
            for (int k = 0; k < hidden; k++)
                a += (double)w2[(size_t)o * hidden + k] * h[k];
            lg[o] = a;
            mx = fmax(mx, fabs(a));
        }
        for (int o = 0; o < classes; o++)
            worst = fmax(worst, fabs(lg[o] - logits[(size_t)im * classes + o]) / (mx + 1e-30));
        mag += mx;
    }
    CHECK(mag > 0);
    CHECK_MSG(worst < 1e-5, "%d x %d head: logits %.3g of the row's largest from the head in double", hidden,
              classes, worst);
    free(h);
    free(lg);
}

/* fc1 and fc2 wide enough (and not multiples of 32 or 64) that the two
 * parts of a 2-thread run, and the column cuts of the two linear layers,
 * differ: the second linear of one part must not read hidden units the
 * other part has not written yet. */
static void test_resnet_like(int hidden, int classes)
{
    tl_err e;
    tl_model *m = tl_model_new("q8net", 3, 21, 19, &e);
    CHECK(m != NULL);
    if (!m)
        return;
    int x = tl_model_conv(m, 0, "conv1", 16, 7, 2, 1, 0, &e);
    x = tl_model_bn(m, x, "bn1", 1e-5f, &e);
    x = tl_model_act(m, x, TL_ACT_RELU, &e);
    int pool = tl_model_pool(m, x, 1, 3, 2, 1, 0, &e);
    int c2 = tl_model_conv(m, pool, "l.conv1", 16, 3, 1, 1, 0, &e);
    x = tl_model_bn(m, c2, "l.bn1", 1e-5f, &e);
    x = tl_model_act(m, x, TL_ACT_RELU, &e);
    int c3 = tl_model_conv(m, x, "l.conv2", 16, 3, 1, 1, 0, &e);
    x = tl_model_bn(m, c3, "l.bn2", 1e-5f, &e);
    x = tl_model_add(m, x, pool, &e);
    x = tl_model_act(m, x, TL_ACT_RELU, &e);
    x = tl_model_dropout(m, x, 0.0f, &e);
    int c4 = tl_model_conv(m, x, "m.conv", 32, 3, 2, 1, 0, &e);
    x = tl_model_bn(m, c4, "m.bn", 1e-5f, &e);
    x = tl_model_act(m, x, TL_ACT_RELU, &e);
    x = tl_model_gap(m, x, &e);
    m->features_node = x;
    x = tl_model_linear(m, x, "fc1", hidden, &e); /* a classifier of several steps, each cut its own way */
    x = tl_model_act(m, x, TL_ACT_RELU, &e);
    x = tl_model_linear(m, x, "fc2", classes, &e);
    m->logits_node = x;
    CHECK_MSG(x > 0 && tl_model_finalize(m, &e) == 0, "%s", e.msg);
    for (int p = 0; p < m->nparams; p++) {
        const char *nm = m->params[p].name;
        size_t l = strlen(nm);
        int var = l > 12 && !strcmp(nm + l - 12, ".running_var"), wt = l > 7 && !strcmp(nm + l - 7, ".weight");
        fill(m, p, var ? 0.2f : 0.1f, var || (wt && !strncmp(nm, "bn", 2)) ? 1.0f : 0.0f);
    }
    tl_quant *qt = calloc(1, sizeof *qt);
    qt->nlayers = 3;
    qt->layers = calloc(3, sizeof *qt->layers);
    qt->layer_of_node = malloc((size_t)m->nnodes * sizeof *qt->layer_of_node);
    for (int i = 0; i < m->nnodes; i++)
        qt->layer_of_node[i] = -1;
    qlayer(m, &qt->layers[0], c2, 0.004f, 0, 0.01f, 0);    /* reads the pool: the stem's range */
    qlayer(m, &qt->layers[1], c3, 0.01f, 0, 0.02f, 120);   /* then the add */
    qlayer(m, &qt->layers[2], c4, 0.015f, 0, 0.01f, 0);    /* reads the add's ReLU through the dropout */
    for (int k = 0; k < 3; k++)
        qt->layer_of_node[qt->layers[k].node] = k;
    m->quant = qt;

    enum { N = 5, FEAT = 32 };
    size_t in_len = (size_t)3 * 21 * 19;
    float *input = malloc(N * in_len * sizeof(float));
    for (size_t i = 0; i < N * in_len; i++)
        input[i] = frand(1.5f);
    /* the features too, so that the head can be checked in double on them */
    int outs[2] = {m->features_node, m->logits_node};
    size_t lsz = (size_t)N * classes * sizeof(float);
    float *feat = calloc(N * FEAT, sizeof(float)), *ref = calloc(1, lsz), *got = calloc(1, lsz);
    tl_q8_infer *q = tl_q8_infer_new(m, 2, outs, 2, 0, &e);
    CHECK_MSG(q != NULL, "%s", e.msg);
    tl_pool *pool2 = tl_pool_new(2, &e);
    if (q && pool2) {
        CHECK(tl_q8_infer_int8_steps(q) == 3);
        /* the stem's convolution and the classifier (linear, ReLU, linear), nothing else, in float */
        CHECK_MSG(tl_q8_infer_float_steps(q) == 4, "%d float steps", tl_q8_infer_float_steps(q));
        float *o_ref[2] = {feat, ref}, *o_got[2] = {feat, got};
        tl_q8_infer_run(q, pool2, N, input, o_ref);
        check_head(m, feat, FEAT, hidden, ref, classes, N);
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) /* the classifier packed per run now */
                tl_q8_infer_set_linear_pack_max(q, 0);
            for (int n = 1; n <= N; n += N - 1) {
                memset(got, 0xFF, lsz);
                tl_q8_infer_run(q, pass ? pool2 : NULL, n, input, o_got);
                CHECK_MSG(!memcmp(ref, got, (size_t)n * classes * sizeof(float)),
                          "logits differ (%d images, pass %d, %d x %d head)", n, pass, hidden, classes);
            }
            memset(got, 0xFF, lsz);
            tl_q8_infer_run(q, pass ? NULL : pool2, N, input, o_got);
            CHECK_MSG(!memcmp(ref, got, lsz), "logits differ, 1 vs 2 threads (pass %d, %d x %d head)", pass,
                      hidden, classes);
        }
    }
    tl_pool_free(pool2);
    tl_q8_infer_free(q);
    free(input);
    free(feat);
    free(ref);
    free(got);
    tl_model_free(m);
}

/* ReLU6's top clip in uint8 steps: 6 / scale above the zero point, at most
 * 255. A layer calibrated nearly dead has a scale so small that 6 / scale is
 * past INT_MAX or infinite: its range must be the whole of uint8, not
 * INT_MIN (which once made every output of such a layer 0). */
static void test_act_range(void)
{
    static const struct {
        int act, zero;
        float scale;
        int qmin, qmax;
    } c[] = {
        {TL_ACT_RELU6, 0, 6.0f / 255.0f, 0, 255},  {TL_ACT_RELU6, 0, 0.05f, 0, 120},
        {TL_ACT_RELU6, 10, 0.05f, 10, 130},        {TL_ACT_RELU6, 200, 0.05f, 200, 255},
        {TL_ACT_RELU6, 135, 0.05f, 135, 255},      {TL_ACT_RELU6, 134, 0.05f, 134, 254},
        {TL_ACT_RELU6, 0, 1e-9f, 0, 255},          {TL_ACT_RELU6, 0, 2.79e-9f, 0, 255},
        {TL_ACT_RELU6, 3, 1e-30f, 3, 255},         {TL_ACT_RELU6, 0, 1e-45f, 0, 255},
        {TL_ACT_RELU, 7, 1e-30f, 7, 255},          {TL_ACT_NONE, 7, 0.05f, 0, 255},
        {TL_ACT_RELU6, 0, 100.0f, 0, 0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int lo = -1, hi = -1;
        tl_q8_act_range(c[i].act, c[i].scale, c[i].zero, &lo, &hi);
        CHECK_MSG(lo == c[i].qmin && hi == c[i].qmax, "act %d scale %g zero %d: [%d, %d], want [%d, %d]", c[i].act,
                  (double)c[i].scale, c[i].zero, lo, hi, c[i].qmin, c[i].qmax);
    }
}

int main(void)
{
    test_act_range();
    test_resnet_like(24, 10);
    test_resnet_like(100, 70);
    return check_finish("q8_engine");
}
