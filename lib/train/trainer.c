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
    tl_free(t->sum);
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
    t->factor = -1;
    t->probs = tl_alloc_array((size_t)m->num_classes + 1, sizeof(float)); /* scratch of one image */
    if (t->ngroups < 1 || !t->base_lr || !t->lr || !t->probs) {
        tl_trainer_free(t);
        tl_fail(e, "out of memory");
        return NULL;
    }
    if (tl_group_lrs(t->ngroups, o->lr, o->lr_mult, o->group_lrs, o->ngroup_lrs, t->base_lr, e) ||
        !(t->tape = tl_tape_new(m, o->batch, o->nthreads, e)) || tl_tape_set_exact(t->tape, o->exact, e)) {
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

/* The weighted losses of n images summed, and their gradients in dz for
 * a loss that is the mean over `total` images. */
static double batch_loss(tl_trainer *t, const tl_targets *tg, int n, int total, const float *z, float *dz, int *correct)
{
    int k = t->m->num_classes;
    double sum = 0;
    for (int b = 0; b < n; b++) {
        const float *zb = z + (size_t)b * k;
        float *db = dz + (size_t)b * k;
        int hit;
        float cw;
        double l = image_loss(t, tg, b, zb, db, &hit, &cw);
        float w = (tg->weight ? tg->weight[b] : 1.0f) * cw;
        sum += w * l;
        *correct += hit;
        for (int c = 0; c < k; c++) /* the loss is the batch mean */
            db[c] = w == 1.0f ? db[c] / (float)total : db[c] * w / (float)total;
    }
    return sum;
}

/* The update once the gradients are in place: checks, clipping, rates. */
static int update(tl_trainer *t, tl_pool *pool, double *grad_norm, tl_err *e)
{
    const tl_opt_param *ps = tl_opt_params(t->opt);
    int np = tl_opt_nparams(t->opt);
    if (!tl_grads_finite(ps, np))
        return tl_fail(e, "non-finite gradients at step %lld; parameters left as they were", (long long)t->step);
    *grad_norm = t->o.clip_norm > 0 ? tl_grad_clip(ps, np, t->o.clip_norm) : tl_grad_norm(ps, np);
    double f = t->factor >= 0 ? t->factor : tl_schedule_factor(&t->o.sched, t->step);
    for (int g = 0; g < t->ngroups; g++)
        t->lr[g] = t->base_lr[g] * f;
    tl_opt_step(t->opt, t->lr, pool);
    t->step++;
    return 0;
}

int tl_trainer_step(tl_trainer *t, tl_pool *pool, int n, const float *x, const tl_targets *tg, uint64_t seed,
                    tl_step_stats *st, tl_err *e)
{
    tl_model *m = t->m;
    int logits = m->logits_node;
    memset(st, 0, sizeof *st);
    if (t->o.loss == TL_LOSS_SIGMOID ? !tg->multi : !tg->y)
        return tl_fail(e, "the batch has no %s targets", t->o.loss == TL_LOSS_SIGMOID ? "multi-label" : "class");
    tl_tape_set_first_image(t->tape, 0);
    tl_tape_forward(t->tape, pool, n, x, 1, seed);
    const float *z = tl_tape_value(t->tape, logits);
    float *dz = tl_tape_grad(t->tape, logits);
    if (!dz)
        return tl_fail(e, "every layer is frozen: nothing to train");
    double total = batch_loss(t, tg, n, n, z, dz, &st->correct);
    st->loss = total / n;
    if (!isfinite(st->loss))
        return tl_fail(e, "the loss is %g at step %lld (learning rate too high?); parameters left as they were",
                       st->loss, (long long)t->step);
    tl_tape_backward(t->tape, pool, n, logits);
    return update(t, pool, &st->grad_norm, e);
}

/* ---- a step in parts ---- */

/* Statistics after the gradients in the buffer reduced across processes:
 * loss sum, hits, images, stop, failed. */
#define TAIL 5

int tl_trainer_part(tl_trainer *t, tl_pool *pool, int n, const float *x, const tl_targets *tg, int total, int first,
                    uint64_t seed, tl_err *e)
{
    tl_model *m = t->m;
    if (t->parts == 0) {
        /* The span from the first trainable parameter to the end of the
         * storage: parameters are stored in network order and training
         * thaws a suffix of it, so the span holds few frozen values (their
         * gradients are zero). */
        size_t lo = m->storage_floats;
        for (int i = 0; i < m->nparams; i++)
            if (!m->params[i].frozen && !m->params[i].is_buffer && m->params[i].offset < lo)
                lo = m->params[i].offset;
        t->span_lo = lo;
        t->span_n = m->storage_floats - lo;
        if (t->span_n + TAIL > t->sum_cap) {
            tl_free(t->sum);
            t->sum_cap = 0;
            if (!(t->sum = tl_alloc_array(t->span_n + TAIL, sizeof(float))))
                return tl_fail(e, "out of memory for the summed gradients");
            t->sum_cap = t->span_n + TAIL;
        }
        t->parts_with_images = 0;
        t->part_loss = 0;
        t->part_correct = t->part_images = 0;
    }
    t->parts++;
    if (n <= 0)
        return 0;
    int logits = m->logits_node, correct = 0;
    if (t->o.loss == TL_LOSS_SIGMOID ? !tg->multi : !tg->y)
        return tl_fail(e, "the batch has no %s targets", t->o.loss == TL_LOSS_SIGMOID ? "multi-label" : "class");
    tl_tape_set_first_image(t->tape, first);
    tl_tape_forward(t->tape, pool, n, x, 1, seed);
    if (tl_tape_sync_error(t->tape, e))
        return -1;
    float *dz = tl_tape_grad(t->tape, logits);
    if (!dz)
        return tl_fail(e, "every layer is frozen: nothing to train");
    t->part_loss += batch_loss(t, tg, n, total, tl_tape_value(t->tape, logits), dz, &correct);
    t->part_correct += correct;
    t->part_images += n;
    tl_tape_backward(t->tape, pool, n, logits);
    if (tl_tape_sync_error(t->tape, e))
        return -1;
    const float *g = m->grad_storage + t->span_lo;
    if (t->parts_with_images++ == 0) {
        memcpy(t->sum, g, t->span_n * sizeof(float));
    } else {
        for (size_t i = 0; i < t->span_n; i++)
            t->sum[i] += g[i];
    }
    return 0;
}

static int shared_decisions(tl_trainer *t, tl_pool *pool, tl_comm *comm, int flags, tl_step_result *r, tl_err *e);

int tl_trainer_sync_bn(tl_trainer *t, tl_comm *comm, tl_err *e)
{
    if (tl_tape_set_sync(t->tape, comm, e))
        return -1;
    t->sync_bn = comm && comm->size > 1;
    return 0;
}

int tl_trainer_finish(tl_trainer *t, tl_pool *pool, tl_comm *comm, int flags, tl_step_result *r, tl_err *e)
{
    memset(r, 0, sizeof *r);
    if (t->parts == 0)
        return tl_fail(e, "a step without parts");
    t->parts = 0;
    float *tail = t->sum + t->span_n;
    if (!t->parts_with_images || (flags & TL_STEP_FAILED))
        memset(t->sum, 0, t->span_n * sizeof(float));
    tail[0] = (flags & TL_STEP_FAILED) ? 0.0f : (float)t->part_loss;
    tail[1] = (flags & TL_STEP_FAILED) ? 0.0f : (float)t->part_correct;
    tail[2] = (flags & TL_STEP_FAILED) ? 0.0f : (float)t->part_images;
    tail[3] = (flags & TL_STEP_STOP) ? 1.0f : 0.0f;
    tail[4] = (flags & TL_STEP_FAILED) ? 1.0f : 0.0f;
    if (comm && comm->size > 1) {
        double t0 = tl_now();
        if (tl_comm_allreduce(comm, t->sum, t->span_n + TAIL, e))
            return -1;
        r->comm_seconds = tl_now() - t0;
        r->comm_bytes = (t->span_n + TAIL) * sizeof(float);
    }
    r->flags = (tail[3] > 0 ? TL_STEP_STOP : 0) | (tail[4] > 0 ? TL_STEP_FAILED : 0);
    r->images = (int64_t)tail[2];
    r->correct = (int64_t)tail[1];
    /* From here on every process takes the same decisions on the same
     * values: a failure is shared (process 0 reports it), but for the
     * process whose own failure it was. */
    int rc = shared_decisions(t, pool, comm, flags, r, e);
    if (rc && comm && comm->size > 1)
        comm->shared_failure = !(flags & TL_STEP_FAILED);
    return rc;
}

static int shared_decisions(tl_trainer *t, tl_pool *pool, tl_comm *comm, int flags, tl_step_result *r, tl_err *e)
{
    float *tail = t->sum + t->span_n;
    if (r->flags & TL_STEP_FAILED)
        return tl_fail(e, "another process failed at step %lld (its message says why)", (long long)t->step);
    if (r->images < 1)
        return tl_fail(e, "a step without images");
    /* one process with every part: the loss summed in double */
    r->loss = (comm && comm->size > 1) ? (double)tail[0] / (double)r->images : t->part_loss / (double)r->images;
    if (!isfinite(r->loss))
        return tl_fail(e, "the loss is %g at step %lld (learning rate too high?); parameters left as they were",
                       r->loss, (long long)t->step);
    memcpy(t->m->grad_storage + t->span_lo, t->sum, t->span_n * sizeof(float));
    return update(t, pool, &r->grad_norm, e);
}
