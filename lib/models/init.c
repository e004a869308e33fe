/* Initialisation from scratch, as torchvision initialises each family, so
 * that scratch baselines are the ones PyTorch users would train:
 *  - convolutions: Kaiming normal, fan-out (ResNet, VGG, MobileNets,
 *    EfficientNet, the small CNN); Kaiming uniform, fan-in (SqueezeNet,
 *    whose final convolution is normal(0, 0.01)); truncated normal with
 *    std sqrt(1/fan-in) for the ViT patch projection; biases zero;
 *  - batch and layer norm: weight 1, bias 0, running mean 0, variance 1;
 *  - classifiers: PyTorch's default uniform(+-1/sqrt(fan-in)) for ResNet;
 *    normal(0, 0.01) with zero bias for MobileNets, VGG and the small CNN;
 *    uniform(+-1/sqrt(classes)) for EfficientNet; zeros for the ViT head;
 *  - ViT encoder: Xavier-uniform projections (MLP biases normal(1e-6)),
 *    position embedding normal(0.02), class token zero.
 * Every tensor draws from its own stream of the seed, so the result does
 * not depend on the order of initialisation. The family of an architecture
 * is its entry in the registry (registry.c). */
#include "models.h"

#include <math.h>
#include <string.h>

static void fill(float *p, int64_t n, float v)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = v;
}

static void normal(tl_rng *r, float *p, int64_t n, double std)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)(tl_rng_normal(r) * std);
}

static void uniform(tl_rng *r, float *p, int64_t n, double bound)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)((2.0 * tl_rng_uniform(r) - 1.0) * bound);
}

static void trunc_normal(tl_rng *r, float *p, int64_t n, double std)
{
    /* PyTorch truncates at +-2 (absolute), which for std < 1 is > 2 sigma. */
    for (int64_t i = 0; i < n; i++) {
        double v;
        do
            v = tl_rng_normal(r) * std;
        while (v < -2.0 || v > 2.0);
        p[i] = (float)v;
    }
}

static void init_param(const tl_model *m, tl_init_policy fam, int node, int pi, uint64_t seed)
{
    if (pi < 0)
        return;
    const tl_node *n = &m->nodes[node];
    tl_param *p = &m->params[pi];
    tl_rng r;
    tl_rng_seed_stream(&r, seed, (uint64_t)pi + 1);
    int is_weight = pi == n->weight;
    int64_t fan_in = p->ndim >= 2 ? p->numel / p->shape[0] : 1, fan_out = p->ndim >= 2 ? p->shape[0] : 1;
    if (p->ndim == 4)
        fan_out *= p->shape[2] * p->shape[3];
    switch (n->op) {
    case TL_OP_CONV:
        if (!is_weight)
            fill(p->data, p->numel, 0.0f);
        else if (fam == TL_INIT_SQUEEZE)
            uniform(&r, p->data, p->numel, sqrt(2.0) * sqrt(3.0 / (double)fan_in));
        else if (fam == TL_INIT_VIT)
            trunc_normal(&r, p->data, p->numel, sqrt(1.0 / (double)fan_in));
        else
            normal(&r, p->data, p->numel, sqrt(2.0 / (double)fan_out));
        break;
    case TL_OP_BN:
        if (pi == n->weight || pi == n->running_var)
            fill(p->data, p->numel, 1.0f);
        else
            fill(p->data, p->numel, 0.0f);
        break;
    case TL_OP_LAYERNORM: fill(p->data, p->numel, is_weight ? 1.0f : 0.0f); break;
    case TL_OP_TOKENS:
        if (pi == n->extra[1])
            normal(&r, p->data, p->numel, 0.02);
        else
            fill(p->data, p->numel, 0.0f);
        break;
    case TL_OP_TOKEN_LINEAR: {
        int in_proj = strstr(p->name, "in_proj") != NULL, out_proj = strstr(p->name, "out_proj") != NULL;
        int64_t fi = m->params[n->weight].shape[1], fo = m->params[n->weight].shape[0];
        if (is_weight && out_proj)
            uniform(&r, p->data, p->numel, 1.0 / sqrt((double)fi));
        else if (is_weight)
            uniform(&r, p->data, p->numel, sqrt(6.0 / (double)(fi + fo)));
        else if (in_proj || out_proj)
            fill(p->data, p->numel, 0.0f);
        else
            normal(&r, p->data, p->numel, 1e-6);
        break;
    }
    case TL_OP_LINEAR: {
        int64_t fi = m->params[n->weight].shape[1], fo = m->params[n->weight].shape[0];
        if (fam == TL_INIT_VIT && node == m->logits_node)
            fill(p->data, p->numel, 0.0f);
        else if (fam == TL_INIT_RESNET || fam == TL_INIT_OTHER)
            uniform(&r, p->data, p->numel, 1.0 / sqrt((double)fi));
        else if (fam == TL_INIT_EFFICIENT)
            is_weight ? uniform(&r, p->data, p->numel, 1.0 / sqrt((double)fo)) : fill(p->data, p->numel, 0.0f);
        else
            is_weight ? normal(&r, p->data, p->numel, 0.01) : fill(p->data, p->numel, 0.0f);
        break;
    }
    default: break;
    }
}

void tl_model_init_node(tl_model *m, int node, uint64_t seed)
{
    tl_init_policy fam = tl_arch_init_policy(m->arch);
    const tl_node *n = &m->nodes[node];
    init_param(m, fam, node, n->weight, seed);
    init_param(m, fam, node, n->bias, seed);
    init_param(m, fam, node, n->running_mean, seed);
    init_param(m, fam, node, n->running_var, seed);
    init_param(m, fam, node, n->extra[0], seed);
    init_param(m, fam, node, n->extra[1], seed);
}

/* SqueezeNet's final convolution (the classifier) starts small, as
 * torchvision initialises it. */
static void squeeze_classifier(tl_model *m, uint64_t seed)
{
    int c = tl_model_classifier_node(m);
    if (tl_arch_init_policy(m->arch) != TL_INIT_SQUEEZE || c < 0 || m->nodes[c].op != TL_OP_CONV)
        return;
    tl_param *p = &m->params[m->nodes[c].weight];
    tl_rng r;
    tl_rng_seed_stream(&r, seed, (uint64_t)m->nodes[c].weight + 1);
    normal(&r, p->data, p->numel, 0.01);
}

void tl_model_init(tl_model *m, uint64_t seed)
{
    for (int i = 0; i < m->nnodes; i++)
        tl_model_init_node(m, i, seed);
    squeeze_classifier(m, seed);
}

void tl_model_init_classifier(tl_model *m, uint64_t seed)
{
    int c = tl_model_classifier_node(m);
    if (c < 0)
        return;
    tl_model_init_node(m, c, seed);
    squeeze_classifier(m, seed);
}
