#include "adapt_bn.h"
#include "nn/tape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tl_adapt_bn_opts_default(tl_adapt_bn_opts *o)
{
    o->batch = 32;
    o->skip_bad = 0;
    o->max_pixels = 0;
    o->exact = 0;
}

static int adaptable(const tl_model *m, const tl_node *n)
{
    (void)m;
    return n->op == TL_OP_BN && n->weight >= 0 && n->running_mean >= 0 && n->running_var >= 0;
}

int tl_adapt_bn_count(const tl_model *m)
{
    int k = 0;
    for (int i = 0; i < m->nnodes; i++)
        k += adaptable(m, &m->nodes[i]);
    return k;
}

typedef struct {
    tl_image img;
    tl_preproc_ws ws;
} decoder;

/* The model's settings AdaBN changes for its run, put back afterwards so
 * the caller's net (and what tl_net_save writes from it) is as it was but
 * for the running statistics. */
typedef struct {
    float *momentum, *p;
    int *frozen;
    int freeze_bn;
} saved;

typedef struct {
    const tl_dataset *d;
    const tl_preproc *pp;
    size_t max_pixels;
    decoder *dec;
    int ndec;
    float *x;
    size_t per;       /* floats per image */
    int64_t *idx;     /* data-set index held by each batch slot */
    int *ok;
    tl_err *errs;
    int first;        /* first slot this decode pass fills */
} batch_job;

static void decode_range(void *ctx, int64_t b, int64_t end, int worker)
{
    batch_job *j = ctx;
    decoder *dc = &j->dec[worker < j->ndec ? worker : 0];
    for (int64_t i = b; i < end; i++) {
        int s = j->first + (int)i;
        const char *path = j->d->items[j->idx[s]].path;
        tl_err *e = &j->errs[s];
        j->ok[s] = !tl_image_decode_file(path, &dc->img, j->max_pixels, e) &&
                   !tl_preprocess(&dc->img, j->pp, j->x + (size_t)s * j->per, &dc->ws, e);
        if (!j->ok[s] && strncmp(e->msg, path, strlen(path)) != 0)
            tl_fail_prefix(e, "%s", path);
    }
}

static void restore(tl_model *m, const saved *sv)
{
    if (!sv->momentum)
        return;
    for (int i = 0; i < m->nnodes; i++) {
        m->nodes[i].momentum = sv->momentum[i];
        m->nodes[i].p = sv->p[i];
    }
    for (int i = 0; i < m->nparams; i++)
        m->params[i].frozen = sv->frozen[i];
    m->freeze_bn = sv->freeze_bn;
}

int tl_adapt_bn_run(tl_net *net, tl_pool *pool, int nthreads, const tl_dataset *d, const tl_adapt_bn_opts *o,
                    tl_progress_fn progress, void *progress_user, tl_log_fn log, void *log_user,
                    tl_adapt_bn_stats *stats, tl_err *e)
{
    tl_model *m = net->model;
    tl_adapt_bn_stats st = {0};
    double t0 = tl_now();
    int batch = o->batch < 1 ? 1 : o->batch;
    st.bn_layers = tl_adapt_bn_count(m);
    if (stats)
        *stats = st;
    if (st.bn_layers == 0)
        return tl_fail(e, "model '%s' has no batch-norm layer to adapt", m->arch);
    if (d->n == 0)
        return tl_fail(e, "no images to adapt on");
    if (nthreads < tl_pool_size(pool))
        nthreads = tl_pool_size(pool);

    saved sv = {0};
    batch_job j = {0};
    tl_tape *t = NULL;
    int rc = -1;
    j.d = d;
    j.pp = &net->pp;
    j.max_pixels = o->max_pixels;
    j.ndec = nthreads;
    j.per = (size_t)m->in_c * m->in_h * m->in_w;
    sv.momentum = calloc((size_t)m->nnodes, sizeof *sv.momentum);
    sv.p = calloc((size_t)m->nnodes, sizeof *sv.p);
    sv.frozen = calloc((size_t)m->nparams + 1, sizeof *sv.frozen);
    j.dec = calloc((size_t)j.ndec, sizeof *j.dec);
    j.idx = calloc((size_t)batch, sizeof *j.idx);
    j.ok = calloc((size_t)batch, sizeof *j.ok);
    j.errs = calloc((size_t)batch, sizeof *j.errs);
    j.x = tl_alloc_array((size_t)batch * j.per, sizeof(float));
    if (!sv.momentum || !sv.p || !sv.frozen || !j.dec || !j.idx || !j.ok || !j.errs || !j.x) {
        tl_fail(e, "out of memory for a batch of %d images", batch);
        goto done;
    }
    if (m->in_c != 3 || net->pp.input_h != m->in_h || net->pp.input_w != m->in_w) {
        tl_fail(e, "model input %dx%d with %d channels does not match the preprocessing (%dx%d)", m->in_w, m->in_h,
                m->in_c, net->pp.input_w, net->pp.input_h);
        goto done;
    }
    for (int i = 0; i < m->nnodes; i++) {
        sv.momentum[i] = m->nodes[i].momentum;
        sv.p[i] = m->nodes[i].p;
    }
    for (int i = 0; i < m->nparams; i++)
        sv.frozen[i] = m->params[i].frozen;
    sv.freeze_bn = m->freeze_bn;

    /* The tape puts a BN on batch statistics (and updates its running
     * ones) only where its weight trains; no step is ever taken, so the
     * weights stay as they are. */
    m->freeze_bn = 0;
    for (int i = 0; i < m->nparams; i++)
        m->params[i].frozen = 0;
    for (int i = 0; i < m->nnodes; i++) {
        tl_node *n = &m->nodes[i];
        if (n->op == TL_OP_DROPOUT)
            n->p = 0;
        if (adaptable(m, n)) { /* reset_running_stats() */
            tl_param *rm = &m->params[n->running_mean], *rv = &m->params[n->running_var];
            for (int64_t c = 0; c < rm->numel; c++)
                rm->data[c] = 0.0f;
            for (int64_t c = 0; c < rv->numel; c++)
                rv->data[c] = 1.0f;
        }
    }
    t = tl_tape_new(m, batch, nthreads, e);
    if (!t || tl_tape_set_exact(t, o->exact, e))
        goto done;

    int64_t next = 0;
    int fill = 0;
    while (next < d->n || fill > 0) {
        /* Fill the batch with good images, in data-set order, so batches
         * are the same as PyTorch's over the readable images. */
        while (fill < batch && next < d->n) {
            int want = (int)(d->n - next < batch - fill ? d->n - next : batch - fill);
            for (int i = 0; i < want; i++)
                j.idx[fill + i] = next + i;
            j.first = fill;
            tl_parallel_for(pool, want, 1, decode_range, &j);
            int w = fill;
            for (int i = 0; i < want; i++) {
                int s = fill + i;
                if (!j.ok[s]) {
                    if (!o->skip_bad) {
                        *e = j.errs[s];
                        goto done;
                    }
                    st.skipped++;
                    if (log) {
                        char msg[sizeof j.errs[s].msg + 16];
                        snprintf(msg, sizeof msg, "skipping %s", j.errs[s].msg);
                        log(log_user, msg);
                    }
                    continue;
                }
                if (w != s) {
                    memcpy(j.x + (size_t)w * j.per, j.x + (size_t)s * j.per, j.per * sizeof(float));
                    j.idx[w] = j.idx[s];
                }
                w++;
            }
            fill = w;
            next += want;
            if (progress)
                progress(progress_user, next, d->n);
        }
        if (fill == 0)
            break;
        /* momentum=None: batch k (from 0) enters the running average with
         * weight 1/(k+1), so each batch counts equally. */
        float mom = (float)(1.0 / (double)(st.batches + 1));
        for (int i = 0; i < m->nnodes; i++)
            if (m->nodes[i].op == TL_OP_BN)
                m->nodes[i].momentum = mom;
        tl_tape_forward(t, pool, fill, j.x, 1, 0);
        st.used += fill;
        st.batches++;
        fill = 0;
    }
    if (st.used == 0) {
        tl_fail(e, "no readable image among %lld", (long long)d->n);
        goto done;
    }
    rc = 0;
done:
    restore(m, &sv);
    tl_tape_free(t);
    for (int i = 0; j.dec && i < j.ndec; i++) {
        tl_image_free(&j.dec[i].img);
        tl_preproc_ws_free(&j.dec[i].ws);
    }
    free(j.dec);
    free(j.idx);
    free(j.ok);
    free(j.errs);
    tl_free(j.x);
    free(sv.momentum);
    free(sv.p);
    free(sv.frozen);
    st.seconds = tl_now() - t0;
    if (stats)
        *stats = st;
    return rc;
}
