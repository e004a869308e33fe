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

static void test_resnet_like(void)
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
    x = tl_model_linear(m, x, "fc1", 24, &e); /* a classifier of several steps, each cut its own way */
    x = tl_model_act(m, x, TL_ACT_RELU, &e);
    x = tl_model_linear(m, x, "fc2", 10, &e);
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

    enum { N = 5 };
    size_t in_len = (size_t)3 * 21 * 19;
    float *input = malloc(N * in_len * sizeof(float));
    for (size_t i = 0; i < N * in_len; i++)
        input[i] = frand(1.5f);
    int outs[1] = {m->logits_node};
    float *ref = calloc(N * 10, sizeof(float)), *got = calloc(N * 10, sizeof(float));
    tl_q8_infer *q = tl_q8_infer_new(m, 2, outs, 1, 0, &e);
    CHECK_MSG(q != NULL, "%s", e.msg);
    tl_pool *pool2 = tl_pool_new(2, &e);
    if (q && pool2) {
        CHECK(tl_q8_infer_int8_steps(q) == 3);
        /* the stem's convolution and the classifier (linear, ReLU, linear), nothing else, in float */
        CHECK_MSG(tl_q8_infer_float_steps(q) == 4, "%d float steps", tl_q8_infer_float_steps(q));
        tl_q8_infer_run(q, NULL, N, input, &ref);
        double mag = 0;
        for (int i = 0; i < N * 10; i++)
            mag += ref[i] * ref[i];
        CHECK(mag > 0);
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) /* the classifier packed per run now */
                tl_q8_infer_set_linear_pack_max(q, 0);
            for (int n = 1; n <= N; n += N - 1) {
                memset(got, 0xFF, N * 10 * sizeof(float));
                tl_q8_infer_run(q, pass ? NULL : pool2, n, input, &got);
                CHECK_MSG(!memcmp(ref, got, (size_t)n * 10 * sizeof(float)),
                          "logits differ (%d images, pass %d)", n, pass);
            }
            memset(got, 0xFF, N * 10 * sizeof(float));
            tl_q8_infer_run(q, pool2, N, input, &got);
            CHECK_MSG(!memcmp(ref, got, N * 10 * sizeof(float)), "logits differ with 2 threads (pass %d)", pass);
        }
    }
    tl_pool_free(pool2);
    tl_q8_infer_free(q);
    free(input);
    free(ref);
    free(got);
    tl_model_free(m);
}

int main(void)
{
    test_resnet_like();
    return check_finish("q8_engine");
}
