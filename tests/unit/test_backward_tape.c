/* The training tape over a whole network (ResNet-18 at 32x32): parameter
 * gradients bit-identical for 1, 2 and 4 threads, with and without a
 * frozen prefix; the frozen prefix (run by the inference engine, values
 * not kept) gives the trainable layers the same gradients as a tape that
 * runs every node, within float rounding, and frozen layers none. At
 * 96x96, where layer1's maps (24x24) take Winograd forward and backward:
 * still bit-identical over thread counts, logits within 1e-5 of the exact
 * mode's (tl_tape_set_exact) but not equal to them. */
#include "test_backward_util.h"
#include "models/models.h"
#include "nn/tape.h"

enum { BATCH = 6, CLASSES = 5 };

static int input_size = 32, exact_mode = 0; /* of the tapes grads() makes */

static tl_model *build(void)
{
    tl_err e = {0};
    tl_arch_opts o;
    tl_arch_opts_default(&o);
    o.num_classes = CLASSES;
    o.input_w = o.input_h = input_size;
    o.dropout = 0;
    tl_model *m = tl_arch_build("resnet18", &o, &e);
    if (!m)
        return NULL;
    tl_model_init(m, 5);
    uint64_t s = 9;
    for (int i = 0; i < m->nnodes; i++) /* statistics that folding must get right */
        if (m->nodes[i].op == TL_OP_BN)
            for (int64_t c = 0; c < m->nodes[i].c; c++) {
                m->params[m->nodes[i].running_mean].data[c] = 0.3f * bw_uniform(&s);
                m->params[m->nodes[i].running_var].data[c] = 1.0f + 0.5f * bw_uniform(&s);
            }
    return m;
}

static void freeze_through(tl_model *m, const char *layer)
{
    int until = tl_model_find_node(m, layer);
    for (int i = 0; i <= until; i++) {
        const tl_node *nd = &m->nodes[i];
        int ps[4] = {nd->weight, nd->bias, nd->extra[0], nd->extra[1]};
        for (int k = 0; k < 4; k++)
            if (ps[k] >= 0)
                m->params[ps[k]].frozen = 1;
    }
}

/* One forward and backward pass; returns all parameter gradients (a copy)
 * and the tape's size. */
static float *grads(const char *freeze, int threads, int freeze_bn, size_t *bytes, int *prefix_value_null,
                    float *logits)
{
    tl_err e = {0};
    tl_model *m = build();
    if (!m)
        return NULL;
    m->freeze_bn = freeze_bn;
    if (freeze)
        freeze_through(m, freeze);
    tl_pool *pool = tl_pool_new(threads, &e);
    tl_tape *t = pool ? tl_tape_new(m, BATCH, threads, &e) : NULL;
    CHECK_MSG(t != NULL, "tape: %s", e.msg);
    if (t && tl_tape_set_exact(t, exact_mode, &e)) {
        CHECK_MSG(0, "tl_tape_set_exact: %s", e.msg);
        tl_tape_free(t);
        t = NULL;
    }
    float *out = NULL;
    if (t) {
        uint64_t s = 3;
        size_t in = (size_t)m->in_c * m->in_h * m->in_w;
        float *x = bw_rand(&s, BATCH * in, 1.0f);
        tl_tape_forward(t, pool, BATCH, x, 1, 1);
        if (logits)
            memcpy(logits, tl_tape_value(t, m->logits_node), BATCH * CLASSES * sizeof *logits);
        float *dz = tl_tape_grad(t, m->logits_node);
        for (int i = 0; i < BATCH * CLASSES; i++)
            dz[i] = bw_uniform(&s);
        tl_tape_backward(t, pool, BATCH, m->logits_node);
        out = malloc(m->storage_floats * sizeof *out);
        memcpy(out, m->grad_storage, m->storage_floats * sizeof *out);
        *bytes = tl_tape_bytes(t);
        if (prefix_value_null)
            *prefix_value_null = tl_tape_value(t, tl_model_find_node(m, "layer1")) == NULL;
        free(x);
    }
    tl_tape_free(t);
    tl_pool_free(pool);
    tl_model_free(m);
    return out;
}

/* At 96x96 layer1's 3x3 convolutions (24x24 maps) run Winograd on every
 * SIMD path, forward and in their data gradients: the gradients are
 * bit-identical over thread counts, and the logits within 1e-5 of the
 * exact mode's (and not equal: Winograd ran). The gradients themselves are
 * compared with float64 PyTorch by train_parity.bats at 128x128, on inputs
 * kept away from ReLU kinks and max-pool ties: here, a perturbation of
 * 1e-6 moves some ReLU input across 0, which moves gradients by ~1e-2. */
static void test_winograd(void)
{
    size_t b;
    float lw[BATCH * CLASSES], le[BATCH * CLASSES];
    input_size = 96;
    float *g[2] = {grads(NULL, 1, 0, &b, NULL, lw), grads(NULL, 3, 0, &b, NULL, NULL)};
    exact_mode = 1;
    free(grads(NULL, 2, 0, &b, NULL, le));
    tl_model *m = build();
    CHECK(g[0] && g[1] && m);
    if (g[0] && g[1] && m) {
        CHECK_MSG(!memcmp(g[0], g[1], m->storage_floats * sizeof *g[0]), "winograd: 1 and 3 threads differ");
        double err = bw_relerr(lw, le, BATCH * CLASSES);
        CHECK_MSG(err > 0 && err < 1e-5, "winograd vs exact tape: logits' relative error %.3g (0: no Winograd)", err);
        printf("test_backward_tape: 96x96, Winograd vs exact tape, logits' relative error %.3g\n", err);
    }
    free(g[0]), free(g[1]);
    tl_model_free(m);
    input_size = 32;
    exact_mode = 0;
}

int main(void)
{
    tl_model *m = build();
    CHECK(m != NULL);
    if (!m)
        return check_finish("test_backward_tape");
    size_t nf = m->storage_floats, b1, b2, b4, bf, bref;
    const char *cases[] = {NULL, "layer2"};
    for (int c = 0; c < 2; c++) {
        float *g1 = grads(cases[c], 1, 0, &b1, NULL, NULL), *g2 = grads(cases[c], 2, 0, &b2, NULL, NULL);
        float *g4 = grads(cases[c], 4, 0, &b4, NULL, NULL);
        CHECK(g1 && g2 && g4);
        if (g1 && g2 && g4) {
            CHECK_MSG(!memcmp(g1, g2, nf * sizeof *g1), "%s: 1 and 2 threads differ", cases[c] ? "frozen" : "full");
            CHECK_MSG(!memcmp(g1, g4, nf * sizeof *g1), "%s: 1 and 4 threads differ", cases[c] ? "frozen" : "full");
            double norm = 0;
            for (size_t i = 0; i < nf; i++)
                norm += (double)g1[i] * g1[i];
            CHECK_MSG(norm > 0, "no gradient at all");
        }
        free(g1), free(g2), free(g4);
    }
    /* freeze_bn: every BN on running statistics in both runs, so the only
     * difference is how the frozen prefix runs. */
    int null_value = 0;
    float *full = grads(NULL, 2, 1, &bref, NULL, NULL), *pre = grads("layer2", 2, 1, &bf, &null_value, NULL);
    CHECK(full && pre);
    if (full && pre) {
        int first = tl_model_find_param(m, "layer3.0.conv1.weight");
        size_t off = m->params[first].offset;
        double err = bw_relerr(pre + off, full + off, nf - off), zero = 0;
        for (size_t i = 0; i < off; i++)
            zero = fmax(zero, fabs(pre[i]));
        CHECK_MSG(err < 1e-4, "frozen prefix changes the trainable gradients by %.3g", err);
        CHECK_MSG(zero == 0, "frozen parameters got a gradient");
        CHECK_MSG(null_value, "a frozen node's value was kept though nothing trainable reads it");
        CHECK_MSG(bf < bref, "frozen prefix tape %zu bytes, full %zu", bf, bref);
        printf("test_backward_tape: frozen prefix vs full tape, relative error %.3g; tape %.1f vs %.1f MiB\n", err,
               bf / 1048576.0, bref / 1048576.0);
    }
    free(full), free(pre);
    tl_model_free(m);
    test_winograd();
    return check_finish("test_backward_tape");
}
