/* Synchronised batch norm for data parallelism: a batch norm that trains
 * takes its statistics over the images of every process, so that N
 * processes sharing a batch compute what one process would on the whole
 * batch. The forward pass adds up per-channel sums twice (the mean, then
 * the squared deviations from it: two passes, as a single process does),
 * the backward pass once (the sums of dy and dy * xhat); each is one
 * tl_comm_allreduce_f64 in rank order, so every process gets the same
 * bits. Parameter gradients stay this process's own (the step's gradient
 * allreduce adds them up with the rest). */
#include "kernels/kernels.h"
#include "tape_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    tl_tape *t;
    const tl_node *n;
    int images;
    const float *x, *dy;
    float *dx;
    int stage;
    double values;   /* per channel, over every process */
} sync_job;

static void stage_range(void *ctx, int64_t c0, int64_t c1, int w)
{
    sync_job *j = ctx;
    tl_tape *t = j->t;
    const tl_model *m = t->m;
    const tl_node *n = j->n;
    slot *s = &t->s[n - m->nodes];
    int hw = n->h * n->w, c = n->c;
    double *a = t->sync_buf, *b = t->sync_buf + c + 1;
    const float *gamma = n->weight >= 0 ? m->params[n->weight].data : NULL;
    const float *beta = n->bias >= 0 ? m->params[n->bias].data : NULL;
    const tl_kws *ws = t->w[w].kws;
    switch (j->stage) {
    case 0: tl_batchnorm_sync_sums(ws, j->images, c, hw, j->x, a, (int)c0, (int)c1); break;
    case 1: tl_batchnorm_sync_sqdevs(ws, j->images, c, hw, j->x, s->mean, b, (int)c0, (int)c1); break;
    case 2: tl_batchnorm_sync_apply(ws, j->images, c, hw, j->x, gamma, beta, s->mean, s->invstd, s->value, (int)c0, (int)c1); break;
    case 3: tl_batchnorm_sync_dsums(ws, j->images, c, hw, j->x, j->dy, s->mean, s->invstd, a, b, (int)c0, (int)c1); break;
    default:
        tl_batchnorm_sync_dx(ws, j->images, c, hw, j->x, j->dy, gamma, s->mean, s->invstd, a, b, j->values, j->dx,
                             (int)c0, (int)c1);
        break;
    }
}

/* n doubles summed over the processes; a failure is kept for the trainer
 * (the pass goes on: a broken communicator fails every later call fast). */
static void add_up(tl_tape *t, double *v, size_t n)
{
    if (!t->sync_failed && tl_comm_allreduce_f64(t->sync, v, n, &t->sync_err))
        t->sync_failed = 1;
}

void tl_tape_bn_forward_sync(tl_tape *t, tl_pool *pool, int node, int images)
{
    tl_model *m = t->m;
    const tl_node *n = &m->nodes[node];
    slot *s = &t->s[node];
    int c = n->c, hw = n->h * n->w;
    double *sum = t->sync_buf, *sq = t->sync_buf + c + 1;
    sync_job j = {t, n, images, t->s[n->in[0]].value, NULL, NULL, 0, 0};
    tl_parallel_for(pool, c, 1, stage_range, &j);
    sum[c] = (double)images; /* the images, added up too */
    add_up(t, sum, (size_t)c + 1);
    t->sync_images = sum[c];
    double total = sum[c] * hw, m_ = total > 0 ? total : 1;
    for (int ch = 0; ch < c; ch++)
        s->mean[ch] = (float)(sum[ch] / m_);
    j.stage = 1;
    tl_parallel_for(pool, c, 1, stage_range, &j);
    add_up(t, sq, (size_t)c);
    tl_batchnorm_sync_stats(c, m_, sum, sq, n->eps, s->mean, s->var, s->invstd);
    j.stage = 2;
    tl_parallel_for(pool, c, 1, stage_range, &j);
    if (total > 1)
        tl_bn_update_running(c, (int64_t)total, n->momentum, s->mean, s->var, m->params[n->running_mean].data,
                             m->params[n->running_var].data);
}

void tl_tape_bn_backward_sync(tl_tape *t, tl_pool *pool, int node, int images, float *dx)
{
    tl_model *m = t->m;
    const tl_node *n = &m->nodes[node];
    slot *s = &t->s[node];
    int c = n->c;
    double *sdy = t->sync_buf, *sdyx = t->sync_buf + c + 1;
    double values = t->sync_images * n->h * n->w;
    sync_job j = {t, n, images, t->s[n->in[0]].value, s->grad, dx, 3, values > 0 ? values : 1};
    tl_parallel_for(pool, c, 1, stage_range, &j);
    /* this process's share of the parameter gradients, before the totals */
    float *dg = param_trains(m, n->weight) ? m->params[n->weight].grad : NULL;
    float *db = param_trains(m, n->bias) ? m->params[n->bias].grad : NULL;
    for (int ch = 0; ch < c; ch++) {
        if (dg)
            dg[ch] += (float)sdyx[ch];
        if (db)
            db[ch] += (float)sdy[ch];
    }
    /* the two sums travel as one vector: sdy[0..c), a gap, sdyx[0..c) */
    sdy[c] = 0;
    add_up(t, sdy, 2 * (size_t)c + 1);
    j.stage = 4;
    tl_parallel_for(pool, c, 1, stage_range, &j);
}

int tl_tape_set_sync(tl_tape *t, tl_comm *comm, tl_err *e)
{
    free(t->sync_buf);
    t->sync_buf = NULL;
    t->sync = NULL;
    if (!comm || comm->size < 2)
        return 0;
    int most = 0;
    for (int i = 0; i < t->m->nnodes; i++)
        if (t->m->nodes[i].op == TL_OP_BN && t->m->nodes[i].c > most)
            most = t->m->nodes[i].c;
    if (!(t->sync_buf = calloc(2 * (size_t)most + 2, sizeof(double))))
        return tl_fail(e, "out of memory");
    t->sync = comm;
    return 0;
}

int tl_tape_sync_error(tl_tape *t, tl_err *e)
{
    if (!t->sync_failed)
        return 0;
    *e = t->sync_err;
    return -1;
}

void tl_tape_set_first_image(tl_tape *t, int first) { t->first_image = first; }
