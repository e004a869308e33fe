#include "trainer.h"
#include "kernels/kernels.h"
#include "bce.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tl_trainer_opts_default(tl_trainer_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 32;
    o->nthreads = 1;
    tl_opt_config_default(&o->opt, TL_OPT_SGD);
    o->lr = 0.01;
    o->lr_mult = 0.1;
    o->parts = 4;
    tl_schedule_default(&o->sched, TL_SCHED_CONSTANT, 1);
}

/* Weight decay, by the usual convention, only on weights of convolutions
 * and linear layers: not on biases, norm parameters or embeddings. */
static int decays(const tl_model *m, int pi)
{
    const tl_param *p = &m->params[pi];
    if (p->ndim < 2)
        return 0;
    return !strstr(p->name, "pos_embedding") && !strstr(p->name, "class_token");
}

static tl_opt_param *collect(const tl_model *m, int *count, tl_err *e)
{
    tl_opt_param *ps = calloc((size_t)m->nparams + 1, sizeof *ps);
    if (!ps) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    int n = 0;
    for (int i = 0; i < m->nparams; i++) {
        const tl_param *p = &m->params[i];
        if (p->is_buffer)
            continue;
        ps[n] = (tl_opt_param){p->data, p->grad, p->numel, p->group, decays(m, i), p->frozen};
        n++;
    }
    *count = n;
    return ps;
}

void tl_trainer_free(tl_trainer *t)
{
    if (!t)
        return;
    tl_tape_free(t->tape);
    tl_opt_free(t->opt);
    free(t->base_lr);
    free(t->lr);
    tl_free(t->probs);
    free(t);
}

tl_trainer *tl_trainer_new(tl_model *m, const tl_trainer_opts *o, tl_err *e)
{
    if (m->logits_node < 0) {
        tl_fail(e, "the network has no classifier to train");
        return NULL;
    }
    tl_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    t->m = m;
    t->o = *o;
    t->ngroups = tl_model_assign_groups(m, o->parts);
    t->base_lr = calloc((size_t)t->ngroups + 1, sizeof(double));
    t->lr = calloc((size_t)t->ngroups + 1, sizeof(double));
    t->probs = tl_alloc_array((size_t)m->num_classes + 1, sizeof(float)); /* scratch of one image */
    if (t->ngroups < 1 || !t->base_lr || !t->lr || !t->probs) {
        tl_trainer_free(t);
        tl_fail(e, "out of memory");
        return NULL;
    }
    if (tl_group_lrs(t->ngroups, o->lr, o->lr_mult, o->group_lrs, o->ngroup_lrs, t->base_lr, e) ||
        !(t->tape = tl_tape_new(m, o->batch, o->nthreads, e))) {
        tl_trainer_free(t);
        return NULL;
    }
    int n;
    tl_opt_param *ps = collect(m, &n, e);
    if (!ps) {
        tl_trainer_free(t);
        return NULL;
    }
    t->opt = tl_opt_new(&o->opt, ps, n, t->ngroups, e);
    free(ps);
    if (!t->opt) {
        tl_trainer_free(t);
        return NULL;
    }
    return t;
}

int tl_trainer_refresh(tl_trainer *t, tl_err *e)
{
    const tl_model *m = t->m;
    int k = 0;
    for (int i = 0; i < m->nparams; i++) {
        if (m->params[i].is_buffer)
            continue;
        if (tl_opt_set_frozen(t->opt, k, m->params[i].frozen, e))
            return -1;
        k++;
    }
    return tl_tape_refresh(t->tape, e);
}

int tl_trainer_train_from_group(tl_trainer *t, int first, tl_err *e)
{
    for (int i = 0; i < t->m->nparams; i++)
        t->m->params[i].frozen = t->m->params[i].group < first;
    return tl_trainer_refresh(t, e);
}

/* The loss of image b and its gradient, before the image's weight; counts
 * a hit and gives the weight of its class (softmax). */
static double image_loss(const tl_trainer *t, const tl_targets *tg, int b, const float *zb, float *db, int *hit,
                         float *cw)
{
    *cw = 1.0f;
    int k = t->m->num_classes;
    if (t->o.loss == TL_LOSS_SIGMOID) {
        const float *tb = tg->multi + (size_t)b * k;
        float *ts = t->probs; /* smoothed targets */
        float s = t->o.label_smoothing;
        int exact = 1;
        for (int c = 0; c < k; c++) {
            ts[c] = (1.0f - s) * tb[c] + 0.5f * s;
            exact &= (zb[c] > 0) == (tb[c] > 0.5f);
        }
        *hit = exact;
        return tl_sigmoid_bce(k, zb, ts, t->o.pos_weight, t->o.neg_weight, db);
    }
    int best = 0;
    for (int c = 1; c < k; c++)
        if (zb[c] > zb[best])
            best = c;
    *hit = best == tg->y[b];
    if (t->o.class_weight && tg->y[b] >= 0 && tg->y[b] < k)
        *cw = t->o.class_weight[tg->y[b]];
    return tl_softmax_xent(k, zb, tg->y[b], t->o.label_smoothing, db);
}

int tl_trainer_step(tl_trainer *t, tl_pool *pool, int n, const float *x, const tl_targets *tg, uint64_t seed,
                    tl_step_stats *st, tl_err *e)
{
    tl_model *m = t->m;
    int k = m->num_classes, logits = m->logits_node;
    memset(st, 0, sizeof *st);
    if (t->o.loss == TL_LOSS_SIGMOID ? !tg->multi : !tg->y)
        return tl_fail(e, "the batch has no %s targets", t->o.loss == TL_LOSS_SIGMOID ? "multi-label" : "class");
    tl_tape_forward(t->tape, pool, n, x, 1, seed);
    const float *z = tl_tape_value(t->tape, logits);
    float *dz = tl_tape_grad(t->tape, logits);
    if (!dz)
        return tl_fail(e, "every layer is frozen: nothing to train");
    double total = 0;
    for (int b = 0; b < n; b++) {
        const float *zb = z + (size_t)b * k;
        float *db = dz + (size_t)b * k;
        int hit;
        float cw;
        double l = image_loss(t, tg, b, zb, db, &hit, &cw);
        float w = (tg->weight ? tg->weight[b] : 1.0f) * cw;
        total += w * l;
        st->correct += hit;
        for (int c = 0; c < k; c++) /* the loss is the batch mean */
            db[c] = w == 1.0f ? db[c] / (float)n : db[c] * w / (float)n;
    }
    st->loss = total / n;
    if (!isfinite(st->loss))
        return tl_fail(e, "the loss is %g at step %lld (learning rate too high?); parameters left as they were",
                       st->loss, (long long)t->step);
    tl_tape_backward(t->tape, pool, n, logits);
    const tl_opt_param *ps = tl_opt_params(t->opt);
    int np = tl_opt_nparams(t->opt);
    if (!tl_grads_finite(ps, np))
        return tl_fail(e, "non-finite gradients at step %lld; parameters left as they were", (long long)t->step);
    st->grad_norm = t->o.clip_norm > 0 ? tl_grad_clip(ps, np, t->o.clip_norm) : tl_grad_norm(ps, np);
    double f = tl_schedule_factor(&t->o.sched, t->step);
    for (int g = 0; g < t->ngroups; g++)
        t->lr[g] = t->base_lr[g] * f;
    tl_opt_step(t->opt, t->lr, pool);
    t->step++;
    return 0;
}
