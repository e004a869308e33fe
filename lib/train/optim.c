/* SGD and AdamW with PyTorch 1.13's update rules (torch/optim/sgd.py and
 * adamw.py, single-tensor path). Arithmetic is float32 in PyTorch's
 * operation order, with each scalar computed in double and rounded to float
 * once, as PyTorch does when it passes a Python float to a float tensor op;
 * that keeps trajectories within a few ulps of PyTorch's. */
#include "optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Elements per work item: large enough to amortise the per-chunk cost,
 * small enough that a few hundred chunks balance over the threads. */
#define CHUNK ((int64_t)1 << 14)

typedef struct {
    int param;
    int64_t begin, end;
} chunk;

/* Per-parameter scalars of the current step, rounded to float as PyTorch
 * rounds them. */
typedef struct {
    float lr;        /* SGD: lr */
    float decay_mul; /* AdamW: 1 - lr * wd */
    float step_size; /* AdamW: -lr / (1 - beta1^t) */
    float bc2_sqrt;  /* AdamW: sqrt(1 - beta2^t) */
    int first;       /* SGD: the momentum buffer starts as this gradient */
    int active;
} step_scalars;

struct tl_optimizer {
    tl_opt_config c;
    int nparams, ngroups, nbuf; /* nbuf: state buffers per parameter */
    tl_opt_param *p;
    float **m, **v;
    int64_t *steps;
    step_scalars *sc;
    chunk *chunks;
    int64_t nchunks;
};

void tl_opt_config_default(tl_opt_config *c, int kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    if (kind == TL_OPT_SGD) {
        /* momentum 0.9 and wd 1e-4: the torchvision ImageNet training
         * recipe (references/classification) and He et al. 2016. */
        c->momentum = 0.9;
        c->weight_decay = 1e-4;
    } else {
        /* betas, eps: Kingma & Ba's recommended values and PyTorch's
         * defaults; wd 0.01: torch.optim.AdamW's default (Loshchilov &
         * Hutter's decoupled decay). */
        c->beta1 = 0.9;
        c->beta2 = 0.999;
        c->eps = 1e-8;
        c->weight_decay = 0.01;
    }
}

static int check_config(const tl_opt_config *c, tl_err *e)
{
    if (c->kind != TL_OPT_SGD && c->kind != TL_OPT_ADAMW)
        return tl_fail(e, "unknown optimiser kind %d", c->kind);
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
        return tl_fail(e, "weight decay %g must be finite and >= 0", c->weight_decay);
    if (c->kind == TL_OPT_SGD) {
        if (!(c->momentum >= 0 && c->momentum < 1))
            return tl_fail(e, "momentum %g must be in [0, 1)", c->momentum);
        if (!(c->dampening >= 0 && c->dampening <= 1))
            return tl_fail(e, "dampening %g must be in [0, 1]", c->dampening);
        if (c->nesterov && (c->momentum <= 0 || c->dampening != 0))
            return tl_fail(e, "nesterov momentum needs momentum > 0 and zero dampening");
    } else {
        if (!(c->beta1 >= 0 && c->beta1 < 1))
            return tl_fail(e, "beta1 %g must be in [0, 1)", c->beta1);
        if (!(c->beta2 >= 0 && c->beta2 < 1))
            return tl_fail(e, "beta2 %g must be in [0, 1)", c->beta2);
        if (!(c->eps >= 0) || !isfinite(c->eps))
            return tl_fail(e, "eps %g must be finite and >= 0", c->eps);
    }
    return 0;
}

/* Allocates parameter i's state if it has none yet. */
static int ensure_state(tl_optimizer *o, int i, tl_err *e)
{
    size_t n = (size_t)o->p[i].numel;
    if (o->nbuf >= 1 && !o->m[i] && !(o->m[i] = tl_alloc_array(n ? n : 1, sizeof(float))))
        return tl_fail(e, "out of memory for optimiser state of parameter %d (%zu floats)", i, n);
    if (o->nbuf >= 2 && !o->v[i] && !(o->v[i] = tl_alloc_array(n ? n : 1, sizeof(float))))
        return tl_fail(e, "out of memory for optimiser state of parameter %d (%zu floats)", i, n);
    return 0;
}

tl_optimizer *tl_opt_new(const tl_opt_config *c, const tl_opt_param *params, int nparams, int ngroups, tl_err *e)
{
    if (check_config(c, e))
        return NULL;
    if (nparams < 0 || (nparams > 0 && !params)) {
        tl_fail(e, "invalid parameter list (%d parameters)", nparams);
        return NULL;
    }
    if (ngroups < 1) {
        tl_fail(e, "%d parameter groups, expected at least 1", ngroups);
        return NULL;
    }
    int64_t nchunks = 0;
    for (int i = 0; i < nparams; i++) {
        const tl_opt_param *q = &params[i];
        if (q->numel < 0 || (q->numel > 0 && !q->data)) {
            tl_fail(e, "parameter %d has no data or a negative size", i);
            return NULL;
        }
        if (q->group < 0 || q->group >= ngroups) {
            tl_fail(e, "parameter %d is in group %d, expected 0..%d", i, q->group, ngroups - 1);
            return NULL;
        }
        if (!q->frozen && q->numel > 0 && !q->grad) {
            tl_fail(e, "trainable parameter %d has no gradient buffer", i);
            return NULL;
        }
        nchunks += (q->numel + CHUNK - 1) / CHUNK;
    }
    tl_optimizer *o = calloc(1, sizeof *o);
    if (!o) {
        tl_fail(e, "out of memory creating optimiser");
        return NULL;
    }
    o->c = *c;
    o->nparams = nparams;
    o->ngroups = ngroups;
    o->nbuf = c->kind == TL_OPT_ADAMW ? 2 : c->momentum != 0 ? 1 : 0;
    size_t np = (size_t)(nparams ? nparams : 1);
    o->p = calloc(np, sizeof *o->p);
    o->m = calloc(np, sizeof *o->m);
    o->v = calloc(np, sizeof *o->v);
    o->steps = calloc(np, sizeof *o->steps);
    o->sc = calloc(np, sizeof *o->sc);
    o->chunks = calloc((size_t)(nchunks ? nchunks : 1), sizeof *o->chunks);
    if (!o->p || !o->m || !o->v || !o->steps || !o->sc || !o->chunks) {
        tl_opt_free(o);
        tl_fail(e, "out of memory creating optimiser");
        return NULL;
    }
    if (nparams)
        memcpy(o->p, params, sizeof *o->p * (size_t)nparams);
    for (int i = 0; i < nparams; i++) {
        for (int64_t b = 0; b < params[i].numel; b += CHUNK)
            o->chunks[o->nchunks++] = (chunk){i, b, b + CHUNK < params[i].numel ? b + CHUNK : params[i].numel};
        if (!params[i].frozen && ensure_state(o, i, e)) {
            tl_opt_free(o);
            return NULL;
        }
    }
    return o;
}

void tl_opt_free(tl_optimizer *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->nparams; i++) {
        if (o->m)
            tl_free(o->m[i]);
        if (o->v)
            tl_free(o->v[i]);
    }
    free(o->p);
    free(o->m);
    free(o->v);
    free(o->steps);
    free(o->sc);
    free(o->chunks);
    free(o);
}

/* torch.optim.SGD: d = g + wd p; buf = d on the first step, else
 * buf = momentum buf + (1 - dampening) d; d = d + momentum buf (Nesterov)
 * or buf; p -= lr d. The update is memory-bound (5 streams), so the
 * loop-invariant branches cost little. */
static void sgd_range(const tl_optimizer *o, int i, int64_t b, int64_t end)
{
    const tl_opt_param *q = &o->p[i];
    const step_scalars *s = &o->sc[i];
    float *restrict p = q->data;
    const float *restrict g = q->grad;
    float *restrict buf = o->m[i];
    const float wd = q->decay ? (float)o->c.weight_decay : 0.0f;
    const float mom = (float)o->c.momentum, damp = (float)(1.0 - o->c.dampening), lr = s->lr;
    const int nesterov = o->c.nesterov;
    for (int64_t j = b; j < end; j++) {
        float d = g[j];
        if (wd != 0.0f)
            d = d + wd * p[j];
        if (buf) {
            float m = s->first ? d : buf[j] * mom + damp * d;
            buf[j] = m;
            d = nesterov ? d + mom * m : m;
        }
        p[j] = p[j] - lr * d;
    }
}

/* torch.optim.AdamW: p *= 1 - lr wd; m = b1 m + (1 - b1) g;
 * v = b2 v + (1 - b2) g g; p += -lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps). */
static void adamw_range(const tl_optimizer *o, int i, int64_t b, int64_t end)
{
    const tl_opt_param *q = &o->p[i];
    const step_scalars *s = &o->sc[i];
    float *restrict p = q->data;
    const float *restrict g = q->grad;
    float *restrict m = o->m[i], *restrict v = o->v[i];
    const float b1 = (float)o->c.beta1, b2 = (float)o->c.beta2;
    const float a1 = (float)(1.0 - o->c.beta1), a2 = (float)(1.0 - o->c.beta2), eps = (float)o->c.eps;
    const float dm = s->decay_mul, ss = s->step_size, bc2 = s->bc2_sqrt;
    const int decay = q->decay && o->c.weight_decay != 0;
    for (int64_t j = b; j < end; j++) {
        float pj = decay ? p[j] * dm : p[j];
        float gj = g[j];
        float mj = m[j] * b1 + a1 * gj;
        float vj = v[j] * b2 + a2 * gj * gj;
        m[j] = mj;
        v[j] = vj;
        float den = sqrtf(vj) / bc2 + eps;
        p[j] = pj + ss * mj / den;
    }
}

static void step_chunks(void *ctx, int64_t begin, int64_t end, int worker)
{
    const tl_optimizer *o = ctx;
    for (int64_t c = begin; c < end; c++) {
        const chunk *k = &o->chunks[c];
        if (!o->sc[k->param].active)
            continue;
        if (o->c.kind == TL_OPT_SGD)
            sgd_range(o, k->param, k->begin, k->end);
        else
            adamw_range(o, k->param, k->begin, k->end);
    }
}

void tl_opt_step(tl_optimizer *o, const double *group_lr, tl_pool *pool)
{
    for (int i = 0; i < o->nparams; i++) {
        step_scalars *s = &o->sc[i];
        const tl_opt_param *q = &o->p[i];
        s->active = !q->frozen && q->numel > 0;
        if (!s->active)
            continue;
        double lr = group_lr[q->group];
        s->first = o->steps[i] == 0;
        int64_t t = ++o->steps[i];
        s->lr = (float)lr;
        if (o->c.kind == TL_OPT_ADAMW) {
            double bc1 = 1.0 - pow(o->c.beta1, (double)t), bc2 = 1.0 - pow(o->c.beta2, (double)t);
            s->decay_mul = (float)(1.0 - lr * o->c.weight_decay);
            s->step_size = (float)-(lr / bc1);
            s->bc2_sqrt = (float)sqrt(bc2);
        }
    }
    tl_parallel_for(pool, o->nchunks, 2, step_chunks, o);
}

int tl_opt_set_frozen(tl_optimizer *o, int i, int frozen, tl_err *e)
{
    if (i < 0 || i >= o->nparams)
        return tl_fail(e, "parameter index %d out of range (%d parameters)", i, o->nparams);
    if (!frozen) {
        if (o->p[i].numel > 0 && !o->p[i].grad)
            return tl_fail(e, "cannot unfreeze parameter %d: it has no gradient buffer", i);
        if (ensure_state(o, i, e))
            return -1;
    }
    o->p[i].frozen = frozen != 0;
    return 0;
}

int tl_opt_nparams(const tl_optimizer *o) { return o->nparams; }

const tl_opt_param *tl_opt_params(const tl_optimizer *o) { return o->p; }

int64_t tl_opt_state_floats(const tl_optimizer *o)
{
    int64_t n = 0;
    for (int i = 0; i < o->nparams; i++)
        n += (o->m[i] ? o->p[i].numel : 0) + (o->v[i] ? o->p[i].numel : 0);
    return n;
}

int tl_opt_nstate(const tl_optimizer *o) { return o->nparams * o->nbuf; }

int tl_opt_state_get(tl_optimizer *o, int k, int allocate, tl_opt_state *s, tl_err *e)
{
    if (k < 0 || k >= tl_opt_nstate(o))
        return tl_fail(e, "optimiser state slot %d out of range (%d slots)", k, tl_opt_nstate(o));
    int i = k / o->nbuf, which = k % o->nbuf;
    if (allocate && ensure_state(o, i, e))
        return -1;
    snprintf(s->name, sizeof s->name, "opt.%d.%c", i, which ? 'v' : 'm');
    s->param = i;
    s->data = which ? o->v[i] : o->m[i];
    s->numel = o->p[i].numel;
    return 0;
}

int tl_opt_state_find(const tl_optimizer *o, const char *name)
{
    int i, len = 0;
    char which;
    if (sscanf(name, "opt.%d.%c%n", &i, &which, &len) != 2 || name[len] != '\0' || i < 0 || i >= o->nparams)
        return -1;
    /* reject "opt.+1.m", "opt.01.m" and the like so names round-trip */
    char canon[40];
    snprintf(canon, sizeof canon, "opt.%d.%c", i, which);
    if (strcmp(canon, name) != 0)
        return -1;
    if (which == 'm' && o->nbuf >= 1)
        return i * o->nbuf;
    if (which == 'v' && o->nbuf >= 2)
        return i * o->nbuf + 1;
    return -1;
}

int64_t *tl_opt_steps(tl_optimizer *o) { return o->steps; }

static int counts(const tl_opt_param *q) { return !q->frozen && q->grad && q->numel > 0; }

double tl_grad_norm(const tl_opt_param *params, int n)
{
    double ss = 0;
    for (int i = 0; i < n; i++) {
        if (!counts(&params[i]))
            continue;
        const float *g = params[i].grad;
        for (int64_t j = 0; j < params[i].numel; j++)
            ss += (double)g[j] * g[j];
    }
    return sqrt(ss);
}

void tl_grad_scale(const tl_opt_param *params, int n, float s)
{
    for (int i = 0; i < n; i++) {
        if (!counts(&params[i]))
            continue;
        float *g = params[i].grad;
        for (int64_t j = 0; j < params[i].numel; j++)
            g[j] *= s;
    }
}

double tl_grad_clip(const tl_opt_param *params, int n, double max_norm)
{
    double norm = tl_grad_norm(params, n);
    if (!isfinite(norm))
        return norm;
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0)
        tl_grad_scale(params, n, (float)coef);
    return norm;
}

int tl_grads_finite(const tl_opt_param *params, int n)
{
    for (int i = 0; i < n; i++) {
        if (!counts(&params[i]))
            continue;
        const float *g = params[i].grad;
        /* g - g is 0 for finite values and NaN for NaN and Inf; summing
         * keeps the loop branch-free so it vectorises. */
        float acc = 0.0f;
        for (int64_t j = 0; j < params[i].numel; j++)
            acc += g[j] - g[j];
        if (acc != 0.0f)
            return 0;
    }
    return 1;
}
