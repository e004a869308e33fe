/* The data-parallel parts of the training loop: what processes check,
 * share and agree on besides the gradients (which tl_trainer_finish
 * reduces). Every function here is collective: each process calls it at
 * the same point of the loop. */
#include "loop_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int tl_dist_check_same(tl_comm *c, int64_t ntrain, int64_t nval, const tl_model *m, int64_t steps, tl_err *e)
{
    enum { NV = 6 };
    static const char *const what[NV] = {"training images", "validation images", "classes", "parameter floats",
                                         "parameter tensors", "steps"};
    int64_t mine[NV] = {ntrain, nval, m->num_classes, (int64_t)m->storage_floats, m->nparams, steps};
    int64_t *all = malloc((size_t)c->size * sizeof mine);
    if (!all)
        return tl_fail(e, "out of memory");
    int rc = tl_comm_allgather(c, mine, sizeof mine, all, e);
    for (int r = 1; !rc && r < c->size; r++)
        for (int k = 0; k < NV && !rc; k++)
            if (all[(size_t)r * NV + k] != all[k])
                rc = tl_fail(e,
                             "process %d of %d sees %lld %s, process 0 sees %lld: every process must read the same "
                             "data and network (the same files, mounted on every node)",
                             r, c->size, (long long)all[(size_t)r * NV + k], what[k], (long long)all[k]);
    free(all);
    c->shared_failure = rc && !c->broken;
    return rc;
}

int tl_dist_bcast_params(tl_comm *c, tl_model *m, tl_err *e)
{
    return tl_comm_bcast(c, m->storage, m->storage_floats * sizeof(float), e);
}

int tl_dist_bcast_buffers(tl_comm *c, tl_model *m, tl_err *e)
{
    size_t n = 0;
    for (int i = 0; i < m->nparams; i++)
        n += m->params[i].is_buffer ? (size_t)m->params[i].numel : 0;
    if (!n || c->size == 1)
        return 0;
    /* gathered into one message: one broadcast, not one per layer */
    float *b = malloc(n * sizeof(float));
    if (!b)
        return tl_fail(e, "out of memory");
    size_t k = 0;
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i].is_buffer) {
            memcpy(b + k, m->params[i].data, (size_t)m->params[i].numel * sizeof(float));
            k += (size_t)m->params[i].numel;
        }
    int rc = tl_comm_bcast(c, b, n * sizeof(float), e);
    k = 0;
    for (int i = 0; !rc && i < m->nparams; i++)
        if (m->params[i].is_buffer) {
            memcpy(m->params[i].data, b + k, (size_t)m->params[i].numel * sizeof(float));
            k += (size_t)m->params[i].numel;
        }
    free(b);
    return rc;
}

int tl_dist_check_params(tl_comm *c, const tl_model *m, int epoch, tl_err *e)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < m->nparams; i++)
        if (!m->params[i].is_buffer)
            crc = crc32_z(crc, (const Bytef *)m->params[i].data, (size_t)m->params[i].numel * sizeof(float));
    uint32_t mine = (uint32_t)crc, *all = malloc((size_t)c->size * sizeof mine);
    if (!all)
        return tl_fail(e, "out of memory");
    int rc = tl_comm_allgather(c, &mine, sizeof mine, all, e);
    for (int r = 1; !rc && r < c->size; r++)
        if (all[r] != all[0])
            rc = tl_fail(e, "epoch %d: the parameters of process %d differ from process 0's (a bug: please report it)",
                         epoch, r);
    free(all);
    c->shared_failure = rc && !c->broken;
    return rc;
}

int tl_dist_rank0_status(tl_comm *c, int rc, const char *what, tl_err *e)
{
    int status = rc ? 1 : 0;
    /* Rank 0 is alive and writing (perhaps a large file after a stop
     * signal): wait for it up to the time limit, not the stop grace. */
    volatile sig_atomic_t *stop = c->stop;
    c->stop = NULL;
    int bad = tl_comm_bcast(c, &status, sizeof status, e);
    c->stop = stop;
    if (bad)
        return -1;
    if (status && c->rank != 0) {
        c->shared_failure = 1;
        return tl_fail(e, "process 0 could not %s (its message says why)", what);
    }
    return status ? -1 : 0;
}

int tl_dist_bcast_resume(tl_comm *c, tl_trainer *t, run_state *rs, int (*freeze)(void *, int, tl_err *), void *user,
                         tl_err *e)
{
    tl_model *m = t->m;
    if (tl_comm_bcast(c, rs, sizeof *rs, e))
        return -1;
    if (c->rank != 0 && freeze(user, rs->epoch, e))
        return -1;
    if (tl_dist_bcast_params(c, m, e))
        return -1;
    /* which optimiser buffers exist on rank 0 (a parameter never trained
     * has none), then their contents */
    int ns = tl_opt_nstate(t->opt), rc = 0;
    unsigned char *have = calloc((size_t)ns + 1, 1);
    if (!have)
        return tl_fail(e, "out of memory");
    for (int k = 0; k < ns && c->rank == 0 && !rc; k++) {
        tl_opt_state s;
        rc = tl_opt_state_get(t->opt, k, 0, &s, e);
        have[k] = !rc && s.data;
    }
    if (rc || tl_comm_bcast(c, have, (size_t)ns, e)) {
        free(have);
        return -1;
    }
    for (int k = 0; k < ns && !rc; k++) {
        tl_opt_state s;
        if (!have[k])
            continue;
        rc = tl_opt_state_get(t->opt, k, 1, &s, e);
        if (!rc)
            rc = tl_comm_bcast(c, s.data, (size_t)s.numel * sizeof(float), e);
    }
    free(have);
    if (rc || tl_comm_bcast(c, tl_opt_steps(t->opt), (size_t)tl_opt_nparams(t->opt) * sizeof(int64_t), e))
        return -1;
    t->step = rs->step;
    if (t->step > 0) {
        double fac = tl_schedule_factor(&t->o.sched, t->step - 1);
        for (int g = 0; g < t->ngroups; g++)
            t->lr[g] = t->base_lr[g] * fac;
    }
    return 0;
}
