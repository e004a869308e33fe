/* The training tape over a whole network (ResNet-18 at 32x32): parameter
 * gradients bit-identical for 1, 2 and 4 threads, with and without a
 * frozen prefix; the frozen prefix (run by the inference engine, values
 * not kept) gives the trainable layers the same gradients as a tape that
 * runs every node, within float rounding, and frozen layers none. */
#include "test_backward_util.h"
#include "models/models.h"
#include "nn/tape.h"

enum { BATCH = 6, CLASSES = 5 };

static tl_model *build(void)
{
    tl_err e = {0};
    tl_arch_opts o;
    tl_arch_opts_default(&o);
    o.num_classes = CLASSES;
    o.input_w = o.input_h = 32;
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
static float *grads(const char *freeze, int threads, int freeze_bn, size_t *bytes, int *prefix_value_null)
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
    float *out = NULL;
    if (t) {
        uint64_t s = 3;
        size_t in = (size_t)m->in_c * m->in_h * m->in_w;
        float *x = bw_rand(&s, BATCH * in, 1.0f);
        tl_tape_forward(t, pool, BATCH, x, 1, 1);
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

int main(void)
{
    tl_model *m = build();
    CHECK(m != NULL);
    if (!m)
        return check_finish("test_backward_tape");
    size_t nf = m->storage_floats, b1, b2, b4, bf, bref;
    const char *cases[] = {NULL, "layer2"};
    for (int c = 0; c < 2; c++) {
        float *g1 = grads(cases[c], 1, 0, &b1, NULL), *g2 = grads(cases[c], 2, 0, &b2, NULL);
        float *g4 = grads(cases[c], 4, 0, &b4, NULL);
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
    float *full = grads(NULL, 2, 1, &bref, NULL), *pre = grads("layer2", 2, 1, &bf, &null_value);
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
    return check_finish("test_backward_tape");
}
