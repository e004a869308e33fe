#include "loop_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/infer.h"
#include "io/checkpoint.h"
#include "head.h"
#include "sampler.h"
#include "validate_ml.h"

int tl_split_stratified(const tl_source *s, double frac, uint64_t seed, int64_t **train, int64_t *ntrain,
                        int64_t **val, int64_t *nval, tl_split_report *rep, tl_err *e)
{
    int64_t n = tl_source_count(s);
    int nc = 0;
    for (int64_t i = 0; i < n; i++)
        if (tl_source_group(s, i) + 1 > nc)
            nc = tl_source_group(s, i) + 1;
    if (rep)
        memset(rep, 0, sizeof *rep);
    *train = tl_xalloc((size_t)n + 1, sizeof(int64_t), e);
    *val = tl_xalloc((size_t)n + 1, sizeof(int64_t), e);
    int64_t *cls = tl_xalloc((size_t)n + 1, sizeof(int64_t), e);
    int64_t *start = tl_xalloc((size_t)nc + 2, sizeof(int64_t), e);
    if (!*train || !*val || !cls || !start) {
        free(*train);
        free(*val);
        free(cls);
        free(start);
        return -1;
    }
    /* Images grouped by class in one pass (a counting sort: O(n + classes),
     * not a scan of every image for every class), in index order. */
    for (int64_t i = 0; i < n; i++)
        if (tl_source_group(s, i) >= 0)
            start[tl_source_group(s, i) + 1]++;
    for (int c = 0; c < nc; c++)
        start[c + 1] += start[c];
    for (int64_t i = 0; i < n; i++) {
        int l = tl_source_group(s, i);
        if (l >= 0)
            cls[start[l]++] = i;
    }
    for (int c = nc; c > 0; c--) /* filling advanced each start to the next class's */
        start[c] = start[c - 1];
    start[0] = 0;
    *ntrain = *nval = 0;
    for (int c = 0; c < nc; c++) {
        int64_t *ids = cls + start[c], k = start[c + 1] - start[c];
        if (k == 0)
            continue;
        tl_rng r;
        tl_rng_seed_stream(&r, seed, 0x5B17 + (uint64_t)c);
        tl_rng_shuffle(&r, ids, k);
        int64_t nv = (int64_t)floor(frac * (double)k + 0.5);
        if (rep) {
            rep->classes++;
            rep->kept_whole += frac > 0 && nv == 0;
        }
        /* Never a whole class in validation: the run would train without it
         * and never be told. */
        if (nv >= k && frac > 0) {
            nv = k - 1;
            if (rep)
                rep->capped++;
        }
        for (int64_t j = 0; j < k; j++) {
            if (j < nv)
                (*val)[(*nval)++] = ids[j];
            else
                (*train)[(*ntrain)++] = ids[j];
        }
    }
    free(cls);
    free(start);
    return 0;
}

/* ---- steps ---- */

/* A step takes batch * accumulate images; an epoch's last, shorter step
 * takes whole micro-batches of `batch` plus a remainder of at least
 * max(2, processes) images (one image alone would make batch-norm
 * statistics degenerate, and each process needs one), as drop_last
 * would. */
static int64_t min_part(int nprocs) { return nprocs > 2 ? nprocs : 2; }

static int64_t step_images(int64_t left, int batch, int accumulate, int nprocs)
{
    int64_t full = (int64_t)batch * (accumulate > 0 ? accumulate : 1);
    if (left >= full)
        return full;
    int64_t rem = left % batch;
    return left - rem + (rem >= min_part(nprocs) ? rem : 0);
}

int64_t tl_fit_steps_per_epoch(int64_t ntrain, int batch, int accumulate, int nprocs)
{
    int64_t steps = 0;
    for (int64_t at = 0, k; at < ntrain && (k = step_images(ntrain - at, batch, accumulate, nprocs)) > 0; at += k)
        steps++;
    return steps;
}

static int64_t trainable(const tl_model *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->nparams; i++)
        if (!m->params[i].frozen && !m->params[i].is_buffer)
            n += m->params[i].numel;
    return n;
}

/* Which groups train in this epoch: everything (minus the fixed mask), or
 * with progressive unfreezing the head plus one more group every K epochs. */
static int apply_freezing(tl_trainer *t, const tl_fit_opts *o, int epoch, tl_err *e)
{
    tl_model *m = t->m;
    int first = 0;
    if (o->unfreeze_every > 0) {
        first = t->ngroups - 1 - epoch / o->unfreeze_every;
        if (first < 0)
            first = 0;
    }
    for (int i = 0; i < m->nparams; i++)
        m->params[i].frozen = m->params[i].group < first || (o->frozen && o->frozen[i]);
    return tl_trainer_refresh(t, e);
}

static int save_resume(const tl_fit_opts *o, tl_trainer *t, const run_state *rs, tl_err *e)
{
    tl_model *m = t->m;
    tl_st_writer *w = tl_st_writer_new();
    if (!w)
        return tl_fail(e, "out of memory");
    int rc = -1;
    char name[TL_NAME_MAX + 8], v[12][40];
    for (int i = 0; i < m->nparams; i++) {
        snprintf(name, sizeof name, "p.%s", m->params[i].name);
        if (tl_st_add(w, name, TL_F32, m->params[i].ndim, m->params[i].shape, m->params[i].data, e))
            goto out;
    }
    int ns = tl_opt_nstate(t->opt);
    for (int k = 0; k < ns; k++) {
        tl_opt_state s;
        if (tl_opt_state_get(t->opt, k, 0, &s, e))
            goto out;
        int64_t shape[1] = {s.numel};
        if (s.data && tl_st_add(w, s.name, TL_F32, 1, shape, s.data, e))
            goto out;
    }
    int64_t np[1] = {tl_opt_nparams(t->opt)};
    if (tl_st_add(w, "opt.steps", TL_I64, 1, np, tl_opt_steps(t->opt), e))
        goto out;
    if (o->relabel) {
        int64_t nst[1] = {o->relabel->nstate};
        if (tl_st_add(w, "relabel.state", TL_I32, 1, nst, o->relabel->state, e))
            goto out;
    }
    snprintf(v[0], 40, "%d", rs->epoch);
    snprintf(v[1], 40, "%lld", (long long)rs->batch);
    snprintf(v[2], 40, "%lld", (long long)rs->step);
    snprintf(v[3], 40, "%d", rs->best_epoch);
    snprintf(v[4], 40, "%.17g", rs->best_acc);
    snprintf(v[5], 40, "%.17g", rs->best_loss);
    snprintf(v[6], 40, "%d", rs->bad_epochs);
    snprintf(v[7], 40, "%.17g", rs->loss_sum);
    snprintf(v[8], 40, "%lld", (long long)rs->correct);
    snprintf(v[9], 40, "%lld", (long long)rs->seen);
    snprintf(v[10], 40, "%.6f", rs->epoch_seconds);
    snprintf(v[11], 40, "%.6f", rs->run_seconds);
    static const char *const keys[12] = {"tl.resume.epoch",     "tl.resume.batch",    "tl.resume.step",
                                         "tl.resume.best_epoch", "tl.resume.best_acc", "tl.resume.best_loss",
                                         "tl.resume.bad_epochs", "tl.resume.loss_sum", "tl.resume.correct",
                                         "tl.resume.seen",       "tl.resume.epoch_seconds",
                                         "tl.resume.run_seconds"};
    for (int i = 0; i < 12; i++)
        if (tl_st_set_meta(w, keys[i], v[i], e))
            goto out;
    for (int i = 0; o->meta && o->meta[i]; i += 2)
        if (tl_st_set_meta(w, o->meta[i], o->meta[i + 1], e))
            goto out;
    for (int i = 0; o->resume_meta && o->resume_meta[i]; i += 2)
        if (tl_st_set_meta(w, o->resume_meta[i], o->resume_meta[i + 1], e))
            goto out;
    rc = tl_st_write(w, o->resume_path, e);
out:
    tl_st_writer_free(w);
    return rc;
}

static int meta_num(const tl_st_file *f, const char *key, double *out, tl_err *e)
{
    const char *s = tl_st_meta(f, key);
    char *end;
    if (!s || (*out = strtod(s, &end), *end))
        return tl_fail(e, "%s is missing or not a number", key);
    return 0;
}

/* A resume state continues only the run that wrote it: the same data and
 * split, starting network and settings. Another run's state would make
 * the output claim that run's best epoch and accuracy over weights that
 * went elsewhere. */
static int same_run(const tl_st_file *f, const tl_fit_opts *o, tl_err *e)
{
    static const struct {
        const char *key, *what;
    } ids[] = {
        {"tl.resume.data", "its training data differ (other images, labels or validation split)"},
        {"tl.resume.network", "its starting network differs (another model, architecture or seed)"},
        {"tl.resume.settings", "its settings differ"},
    };
    for (int i = 0; o->resume_meta && o->resume_meta[i]; i += 2) {
        const char *was = tl_st_meta(f, o->resume_meta[i]);
        if (!was)
            return tl_fail(e, "the resume state does not say which run wrote it (%s is missing): start again without "
                              "--resume", o->resume_meta[i]);
        if (strcmp(was, o->resume_meta[i + 1])) {
            const char *what = "it differs";
            for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++)
                if (!strcmp(ids[k].key, o->resume_meta[i]))
                    what = ids[k].what;
            if (!strcmp(o->resume_meta[i], "tl.resume.settings")) {
                /* "name=value name=value ...": name the first that differs */
                const char *a = was, *b = o->resume_meta[i + 1];
                for (;;) {
                    size_t la = strcspn(a, " "), lb = strcspn(b, " ");
                    if (la != lb || strncmp(a, b, la) || !a[la] || !b[lb])
                        return tl_fail(e, "the resume state belongs to another run: its settings differ (%.*s then, "
                                          "%.*s now)", (int)(la > 80 ? 80 : la), a, (int)(lb > 80 ? 80 : lb), b);
                    a += la + 1;
                    b += lb + 1;
                }
            }
            return tl_fail(e, "the resume state belongs to another run: %s", what);
        }
    }
    for (int i = 0; o->meta && o->meta[i]; i += 2) {
        const char *k = o->meta[i], *was = tl_st_meta(f, k);
        if (!strcmp(k, "tl.train_data") || !strcmp(k, "tl.val_data") || !strcmp(k, "tl.trained_from"))
            continue;
        if (!was || strcmp(was, o->meta[i + 1]))
            return tl_fail(e, "the resume state belongs to another run: %s was '%.60s', now '%.60s'", k,
                           was ? was : "(unset)", o->meta[i + 1]);
    }
    return 0;
}

static int load_resume(const tl_fit_opts *o, tl_trainer *t, run_state *rs, tl_err *e)
{
    tl_st_file f;
    if (access(o->resume_path, F_OK) != 0)
        return tl_fail(e, "%s: no resume state to continue from (a finished run removes it)", o->resume_path);
    if (tl_st_open(o->resume_path, &f, e))
        return -1;
    tl_model *m = t->m;
    int rc = -1;
    double v[10];
    if (tl_checkpoint_check_format(&f, o->resume_path, e) || same_run(&f, o, e))
        goto out;
    static const char *const keys[10] = {"tl.resume.epoch",     "tl.resume.batch",    "tl.resume.step",
                                         "tl.resume.best_epoch", "tl.resume.best_acc", "tl.resume.best_loss",
                                         "tl.resume.bad_epochs", "tl.resume.loss_sum", "tl.resume.correct",
                                         "tl.resume.seen"};
    for (int i = 0; i < 10; i++)
        if (meta_num(&f, keys[i], &v[i], e))
            goto out;
    rs->epoch = (int)v[0];
    rs->batch = (int64_t)v[1];
    rs->step = (int64_t)v[2];
    rs->best_epoch = (int)v[3];
    rs->best_acc = v[4];
    rs->best_loss = v[5];
    rs->bad_epochs = (int)v[6];
    rs->loss_sum = v[7];
    rs->correct = (int64_t)v[8];
    rs->seen = (int64_t)v[9];
    /* Times before this process; absent from the state of older versions. */
    if (meta_num(&f, "tl.resume.epoch_seconds", &rs->epoch_seconds, e) ||
        meta_num(&f, "tl.resume.run_seconds", &rs->run_seconds, e))
        rs->epoch_seconds = rs->run_seconds = 0;
    char name[TL_NAME_MAX + 8];
    for (int i = 0; i < m->nparams; i++) {
        snprintf(name, sizeof name, "p.%s", m->params[i].name);
        const tl_st_tensor *ts = tl_st_find(&f, name);
        if (!ts || ts->numel != m->params[i].numel) {
            tl_fail(e, "tensor '%s' is missing or has another size (was the run started with other options?)",
                    name);
            goto out;
        }
        if (tl_st_load_f32(ts, m->params[i].data, e))
            goto out;
    }
    /* The freezing of the resumed epoch decides which state exists. */
    if (apply_freezing(t, o, rs->epoch, e))
        goto out;
    for (int i = 0; i < f.ntensors; i++) {
        const tl_st_tensor *ts = &f.tensors[i];
        if (strncmp(ts->name, "opt.", 4) || !strcmp(ts->name, "opt.steps"))
            continue;
        int k = tl_opt_state_find(t->opt, ts->name);
        tl_opt_state s;
        if (k < 0 || tl_opt_state_get(t->opt, k, 1, &s, e) || !s.data || s.numel != ts->numel) {
            if (k < 0 || !s.data || s.numel != ts->numel)
                tl_fail(e, "optimiser state '%s' does not fit this optimiser", ts->name);
            goto out;
        }
        if (tl_st_load_f32(ts, s.data, e))
            goto out;
    }
    const tl_st_tensor *st = tl_st_find(&f, "opt.steps");
    if (!st || st->dtype != TL_I64 || st->numel != tl_opt_nparams(t->opt)) {
        tl_fail(e, "opt.steps is missing or has another size");
        goto out;
    }
    memcpy(tl_opt_steps(t->opt), st->data, (size_t)st->numel * sizeof(int64_t));
    if (o->relabel) {
        const tl_st_tensor *rl = tl_st_find(&f, "relabel.state");
        if (!rl || rl->dtype != TL_I32 || rl->numel != o->relabel->nstate) {
            tl_fail(e, "relabel.state (the pseudo-labels) is missing or has another size (was the run started "
                       "with other options?)");
            goto out;
        }
        memcpy(o->relabel->state, rl->data, (size_t)rl->numel * sizeof(int));
    }
    t->step = rs->step;
    /* The rates of the last step taken, as an uninterrupted run holds them:
     * an epoch resumed after its last batch reports them without stepping. */
    if (t->step > 0) {
        double fac = tl_schedule_factor(&t->o.sched, t->step - 1);
        for (int g = 0; g < t->ngroups; g++)
            t->lr[g] = t->base_lr[g] * fac;
    }
    rc = 0;
out:
    tl_st_close(&f);
    if (rc)
        tl_fail_prefix(e, "%s", o->resume_path);
    return rc;
}

/* A diverging run can overflow batch-norm statistics while every gradient
 * stays finite; such weights must not replace the best checkpoint. */
static int check_finite(const tl_model *m, int epoch, tl_err *e)
{
    for (int i = 0; i < m->nparams; i++) {
        const float *v = m->params[i].data;
        for (int64_t j = 0; j < m->params[i].numel; j++)
            if (!isfinite(v[j]))
                return tl_fail(e, "epoch %d: %s is not finite (learning rate too high?)", epoch, m->params[i].name);
    }
    return 0;
}

/* extra: more key, value pairs (NULL-terminated), or NULL. */
static int save_best(tl_net *net, const tl_fit_opts *o, const run_state *rs, int epochs_trained,
                     const char *const *extra, tl_err *e)
{
    if (check_finite(net->model, epochs_trained, e))
        return -1;
    int n = 0, nx = 0;
    while (o->meta && o->meta[n])
        n += 2;
    while (extra && extra[nx])
        nx += 2;
    const char **meta = calloc((size_t)n + (size_t)nx + 12, sizeof(char *));
    if (!meta)
        return tl_fail(e, "out of memory");
    char ep[16], be[16], acc[40], loss[40];
    snprintf(ep, sizeof ep, "%d", epochs_trained);
    snprintf(be, sizeof be, "%d", rs->best_epoch);
    snprintf(acc, sizeof acc, "%.6f", rs->best_acc);
    snprintf(loss, sizeof loss, "%.6f", rs->best_loss);
    memcpy(meta, o->meta, (size_t)n * sizeof(char *));
    if (nx)
        memcpy(meta + n, extra, (size_t)nx * sizeof(char *));
    n += nx;
    const char *more[] = {"tl.epochs_trained", ep, "tl.best_epoch", be, "tl.val_accuracy", acc, "tl.val_loss", loss};
    memcpy(meta + n, more, sizeof more);
    if (!rs->best_epoch)
        meta[n + 2] = NULL;
    int rc = tl_net_save(net, o->out, meta, e);
    free(meta);
    return rc;
}

/* Cross-entropy (no smoothing) summed and hits of the validation ids. */
static int validate(tl_infer *inf, tl_batch_loader *L, tl_pool *pool, const int64_t *ids, int64_t n, int batch,
                    float *x, int *y, float *logits, int k, double *loss, double *hits, tl_err *e)
{
    double total = 0;
    int64_t correct = 0;
    for (int64_t b = 0; b < n; b += batch) {
        int nb = (int)(n - b < batch ? n - b : batch);
        if (tl_batch_load(L, pool, ids + b, nb, 0, 0, x, y, e))
            return -1;
        float *outs[1] = {logits};
        tl_infer_run(inf, pool, nb, x, outs);
        for (int i = 0; i < nb; i++) {
            const float *z = logits + (size_t)i * k;
            int best = 0;
            double mx = z[0], s = 0;
            for (int c = 1; c < k; c++)
                if (z[c] > z[best])
                    best = c;
            mx = z[best];
            for (int c = 0; c < k; c++)
                s += exp((double)z[c] - mx);
            total += log(s) + mx - z[y[i]];
            correct += best == y[i];
        }
    }
    *loss = total;
    *hits = (double)correct;
    return 0;
}

/* The freezing of an epoch, as tl_dist_bcast_resume calls it. */
typedef struct freeze_ctx {
    tl_trainer *t;
    const tl_fit_opts *o;
} freeze_ctx;

static int freeze_for(void *user, int epoch, tl_err *e)
{
    freeze_ctx *f = user;
    return apply_freezing(f->t, f->o, epoch, e);
}

/* One optimiser step on order[s0..s1): micro-batches of `batch` images,
 * this process's share of each, gradients summed over the parts and the
 * processes (tl_trainer_part/finish). A process that fails to load its
 * share still takes part, flagged, so that every process stops together
 * and none is left waiting. */
static int train_step(tl_trainer *t, tl_batch_loader *L, tl_pool *pool, const tl_fit_opts *o, const int64_t *order,
                      int64_t s0, int64_t s1, int epoch, float *x, int *y, tl_step_result *r, tl_err *e)
{
    tl_err mine = {0};
    int failed = 0, batch = o->batch;
    uint64_t seed = o->seed * 0x9E3779B97F4A7C15ull + (uint64_t)t->step;
    for (int64_t m0 = s0; m0 < s1; m0 += batch) {
        int64_t m1 = m0 + batch < s1 ? m0 + batch : s1, lo, hi;
        tl_comm_share(o->comm, m1 - m0, &lo, &hi);
        int n = (int)(hi - lo);
        if (!failed && n && tl_batch_load(L, pool, order + m0 + lo, n, o->seed, (uint64_t)epoch, x, y, &mine))
            failed = 1;
        if (failed && t->sync_bn) {
            /* the other processes' batch norms wait for this one's sums:
             * run the passes on blank images (the step is dropped anyway) */
            memset(x, 0, (size_t)n * tl_batch_loader_image_floats(L) * sizeof(float));
            memset(y, 0, (size_t)n * sizeof(int));
        }
        tl_targets tg = {y, NULL, NULL};
        tl_err later;
        if (tl_trainer_part(t, pool, failed && !t->sync_bn ? 0 : n, x, &tg, (int)(s1 - s0), (int)(m0 - s0 + lo), seed,
                            failed ? &later : &mine)) {
            if (t->tape && tl_tape_sync_error(t->tape, e))
                return -1; /* the communication broke: nothing more to agree on */
            failed = 1;
        }
    }
    /* a stop asked for during the step's work ends it */
    int stop = o->stop && *o->stop;
    int rc = tl_trainer_finish(t, pool, o->comm, (stop ? TL_STEP_STOP : 0) | (failed ? TL_STEP_FAILED : 0), r, e);
    if (rc && failed && mine.msg[0])
        *e = mine;
    return rc;
}

/* Rank 0 alone writes; then every process learns whether it could. */
#define ROOT_ONLY(call, what)                                                                                         \
    do {                                                                                                              \
        int r_ = root ? (call) : 0;                                                                                   \
        if (comm ? tl_dist_rank0_status(comm, r_, what, e) : r_)                                                      \
            goto out;                                                                                                 \
    } while (0)

int tl_fit(tl_net *net, tl_trainer *t, tl_batch_loader *train, const int64_t *train_ids, int64_t ntrain,
           tl_batch_loader *val, const int64_t *val_ids, int64_t nval, tl_pool *pool, const tl_fit_opts *o,
           tl_fit_result *res, tl_err *e)
{
    tl_model *m = net->model;
    memset(res, 0, sizeof *res);
    /* Data parallelism (o->comm of several processes) or gradient
     * accumulation take steps in parts; a single process stepping on
     * whole batches keeps the plain step (no summing buffer). */
    tl_comm *comm = o->comm && o->comm->size > 1 ? o->comm : NULL;
    int nprocs = comm ? comm->size : 1, root = !comm || comm->rank == 0;
    int accumulate = o->accumulate > 0 ? o->accumulate : 1, in_parts = comm || accumulate > 1;
    int has_val = val && nval > 0;
    /* a process holds its share of a micro-batch */
    int batch = o->batch, share = (batch + nprocs - 1) / nprocs, k = m->num_classes;
    /* a validation pass takes at most the validation set (finetune clamps
     * val_batch to it; training batches to the training set) */
    int vshare = o->val_batch > 0 && o->val_batch < share ? o->val_batch : share;
    size_t isz = tl_batch_loader_image_floats(train);
    float *x = tl_alloc_array((size_t)share * isz, sizeof(float));
    int *y = tl_alloc_array((size_t)share, sizeof(int));
    int64_t *order = tl_alloc_array((size_t)ntrain + 1, sizeof(int64_t));
    float *logits = tl_alloc_array((size_t)share * k, sizeof(float));
    int ml = o->multilabel;
    float *T = ml ? tl_alloc_array((size_t)batch * k, sizeof(float)) : NULL;
    tl_infer *inf = NULL;
    int rc = -1;
    run_state rs = {0};
    rs.best_acc = -1;
    rs.best_loss = INFINITY;
    freeze_ctx fz = {t, o};
    tl_sampler smp = {0};
    tl_ml_val mlv = {0};
    tl_strbuf thr = {0};
    if (!x || !y || !order || !logits || (ml && !T)) {
        tl_fail(e, "out of memory");
        goto out;
    }
    /* Steps in parts load their own targets (class indices) and validation
     * in shares adds up sums: label sets, mAP over every validation image
     * and the balanced order are not wired into them yet. */
    if (in_parts && (ml || o->sampler != TL_SAMPLER_SHUFFLE)) {
        tl_fail(e, "%s: not yet with several processes or --accumulate", ml ? "multi-label training" : "--sampler balanced");
        e->kind = TL_ERR_ARG;
        goto out;
    }
    /* Pseudo-labels are chosen by each process from its own network after
     * the epoch (batch norm statistics differ between processes) and kept
     * in a state only rank 0 reads on --resume; the balanced order and
     * label sets need the epoch's labels before it starts. */
    if (o->relabel && (comm || ml || o->sampler != TL_SAMPLER_SHUFFLE)) {
        tl_fail(e, "pseudo-labels: not yet with %s",
                comm ? "several processes" : ml ? "multi-label training" : "--sampler balanced");
        e->kind = TL_ERR_ARG;
        goto out;
    }
    if (tl_sampler_init(&smp, o->sampler, tl_batch_loader_source(train), train_ids, ntrain, e) ||
        (ml && has_val && tl_ml_val_init(&mlv, nval, k, e)))
        goto out;
    int64_t nbatches = tl_fit_steps_per_epoch(ntrain, batch, accumulate, nprocs);
    if (comm && tl_dist_check_same(comm, ntrain, nval, m, nbatches, e))
        goto out;
    if (o->resume) {
        ROOT_ONLY(load_resume(o, t, &rs, e), "read the resume state");
        if (comm && tl_dist_bcast_resume(comm, t, &rs, freeze_for, &fz, e))
            goto out;
    } else if (comm && tl_dist_bcast_params(comm, m, e)) {
        goto out;
    }
    /* Times and speeds count the whole run, resumed parts included. */
    double run_t0 = tl_now() - rs.run_seconds;
    for (; rs.epoch < o->epochs; rs.epoch++, rs.batch = 0) {
        if (apply_freezing(t, o, rs.epoch, e))
            goto out;
        if (!o->relabel) {
            tl_sampler_order(&smp, o->seed, rs.epoch, train_ids, ntrain, order);
        } else {
            /* the epoch's set changes (pseudo-labels), shuffled as the
             * sampler's default shuffles (refused with another sampler) */
            if (o->relabel->epoch_ids(o->relabel->user, rs.epoch, order, ntrain, e))
                goto out;
            tl_rng r;
            tl_rng_seed_stream(&r, o->seed, 0xE90C + (uint64_t)rs.epoch);
            tl_rng_shuffle(&r, order, ntrain);
        }
        if (rs.batch == 0) {
            rs.loss_sum = 0;
            rs.correct = rs.seen = 0;
            rs.epoch_seconds = 0;
            rs.comm_seconds = 0;
            rs.comm_steps = 0;
        }
        double t0 = tl_now() - rs.epoch_seconds;
        /* the step's first image: steps before it were full */
        int64_t b0 = rs.batch * (int64_t)batch * accumulate;
        for (; rs.batch < nbatches; rs.batch++) {
            int64_t nb = step_images(ntrain - b0, batch, accumulate, nprocs);
            int stop;
            if (in_parts) {
                tl_step_result sr;
                double ts = tl_now();
                if (train_step(t, train, pool, o, order, b0, b0 + nb, rs.epoch, x, y, &sr, e)) {
                    tl_fail_prefix(e, "epoch %d", rs.epoch + 1);
                    goto out;
                }
                /* After a stop signal the others have a step's work to
                 * finish before they answer: wait for three of them. */
                if (comm && 3 * (tl_now() - ts) > comm->stop_grace)
                    comm->stop_grace = 3 * (tl_now() - ts);
                rs.loss_sum += sr.loss * (double)sr.images;
                rs.correct += sr.correct;
                rs.comm_seconds += sr.comm_seconds;
                rs.comm_bytes = sr.comm_bytes;
                rs.comm_steps++;
                stop = (sr.flags & TL_STEP_STOP) != 0;
            } else {
                if (tl_batch_load(train, pool, order + b0, (int)nb, o->seed, (uint64_t)rs.epoch, x, y, e))
                    goto out;
                tl_step_stats st;
                if (ml)
                    tl_ml_targets(tl_batch_loader_source(train), order + b0, (int)nb, k, T);
                tl_targets tg = {ml ? NULL : y, T, NULL};
                if (tl_trainer_step(t, pool, (int)nb, x, &tg, o->seed * 0x9E3779B97F4A7C15ull + (uint64_t)t->step,
                                    &st, e)) {
                    tl_fail_prefix(e, "epoch %d", rs.epoch + 1);
                    goto out;
                }
                rs.loss_sum += st.loss * (double)nb;
                rs.correct += st.correct;
                stop = o->stop && *o->stop;
            }
            b0 += nb;
            rs.step = t->step;
            rs.seen += nb;
            if (o->progress)
                o->progress(o->user, rs.batch + 1, nbatches);
            if (stop) {
                rs.batch++;
                rs.epoch_seconds = tl_now() - t0;
                rs.run_seconds = tl_now() - run_t0;
                if (o->resume_path)
                    ROOT_ONLY(save_resume(o, t, &rs, e), "save the resume state");
                res->epochs_run = rs.epoch;
                res->best_epoch = rs.best_epoch;
                res->best_accuracy = rs.best_acc;
                res->best_loss = rs.best_loss;
                res->seconds = rs.run_seconds;
                rc = TL_FIT_INTERRUPTED;
                goto out;
            }
        }
        double secs = tl_now() - t0;
        tl_epoch_report rep = {0};
        rep.epoch = rs.epoch + 1;
        rep.epochs = o->epochs;
        rep.phase = "train";
        rep.loss = rs.seen ? rs.loss_sum / (double)rs.seen : 0;
        rep.accuracy = rs.seen ? (double)rs.correct / (double)rs.seen : 0;
        rep.seconds = secs;
        rep.images_per_s = secs > 0 ? (double)rs.seen / secs : 0;
        rep.lr = t->lr;
        rep.ngroups = t->ngroups;
        rep.trainable_params = trainable(m);
        rep.processes = nprocs;
        rep.comm_seconds = rs.comm_steps ? rs.comm_seconds / (double)rs.comm_steps : 0;
        rep.comm_bytes = comm ? rs.comm_bytes : 0;
        if (o->report)
            o->report(o->user, &rep);
        if (comm && tl_dist_check_params(comm, m, rs.epoch + 1, e))
            goto out;
        int stop_now = 0;
        if (has_val) {
            double t1 = tl_now(), v[2];
            if (!inf && !(inf = tl_infer_new_exact(m, tl_pool_size(pool), &m->logits_node, 1, t->o.exact, e)))
                goto out;
            /* every process validates its share of the images with rank
             * 0's batch-norm statistics; the sums are added up */
            int64_t lo = 0, hi = nval;
            tl_comm_share(comm, nval, &lo, &hi);
            if (comm && tl_dist_bcast_buffers(comm, m, e))
                goto out;
            if (tl_infer_refresh(inf, e))
                goto out;
            tl_err mine = {0};
            double sums[3] = {0, 0, 0};
            /* multi-label runs are one process (refused above otherwise):
             * mAP and the thresholds need every validation score at once */
            if (ml ? tl_ml_validate(&mlv, inf, val, pool, val_ids, vshare, x, y, logits, &v[0], &v[1], &mine)
                   : validate(inf, val, pool, val_ids + lo, hi - lo, vshare, x, y, logits, k, &v[0], &v[1], &mine)) {
                if (!comm) {
                    *e = mine;
                    goto out;
                }
                sums[2] = 1;
            } else {
                sums[0] = v[0];
                sums[1] = v[1];
            }
            if (comm && tl_comm_allreduce_f64(comm, sums, 3, e))
                goto out;
            if (sums[2] > 0) {
                if (mine.msg[0])
                    *e = mine;
                else {
                    comm->shared_failure = 1;
                    tl_fail(e, "epoch %d: another process failed in validation (its message says why)", rs.epoch + 1);
                }
                goto out;
            }
            /* validate() gives sums, tl_ml_validate() the loss's mean and mAP */
            double vl = ml ? sums[0] : sums[0] / (double)nval, va = ml ? sums[1] : sums[1] / (double)nval;
            if (!isfinite(vl)) {
                if (comm)
                    comm->shared_failure = 1;
                tl_fail(e, "epoch %d: the validation loss is not finite (learning rate too high?)", rs.epoch + 1);
                goto out;
            }
            int improved = va > rs.best_acc || (va == rs.best_acc && vl < rs.best_loss);
            if (improved) {
                rs.best_acc = va;
                rs.best_loss = vl;
                rs.best_epoch = rs.epoch + 1;
                rs.bad_epochs = 0;
                const char *extra[] = {"tl.thresholds", NULL, "tl.thresholds_from", "validation", NULL};
                thr.len = 0;
                if (ml && tl_thresholds_json(mlv.thresholds, k, &thr)) {
                    tl_fail(e, "out of memory");
                    goto out;
                }
                extra[1] = thr.s;
                ROOT_ONLY(save_best(net, o, &rs, rs.epoch + 1, ml ? extra : NULL, e), "write the checkpoint");
            } else if (o->patience > 0 && ++rs.bad_epochs >= o->patience) {
                stop_now = 1;
            }
            double vs = tl_now() - t1;
            rep.phase = "val";
            rep.loss = vl;
            rep.accuracy = va;
            rep.seconds = vs;
            rep.images_per_s = vs > 0 ? (double)nval / vs : 0;
            rep.improved = improved;
            rep.best_epoch = rs.best_epoch;
            rep.best_accuracy = rs.best_acc;
            rep.best_loss = rs.best_loss;
            if (o->report)
                o->report(o->user, &rep);
        } else {
            ROOT_ONLY(save_best(net, o, &rs, rs.epoch + 1, NULL, e), "write the checkpoint");
        }
        res->epochs_run = rs.epoch + 1;
        if (o->relabel && !stop_now && o->relabel->after_epoch(o->relabel->user, pool, rs.epoch + 1, e))
            goto out;
        if (o->resume_path) {
            run_state next = rs;
            next.epoch++;
            next.batch = 0;
            next.loss_sum = 0;
            next.correct = next.seen = 0;
            next.epoch_seconds = 0;
            next.run_seconds = tl_now() - run_t0;
            ROOT_ONLY(save_resume(o, t, &next, e), "save the resume state");
        }
        if (stop_now) {
            res->stopped_early = 1;
            break;
        }
    }
    res->best_epoch = rs.best_epoch;
    res->best_accuracy = rs.best_acc;
    res->best_loss = rs.best_loss;
    res->seconds = tl_now() - run_t0;
    if (o->resume_path && root)
        unlink(o->resume_path); /* the run is complete; nothing to resume */
    rc = TL_FIT_DONE;
out:
    tl_sampler_free(&smp);
    tl_ml_val_free(&mlv);
    tl_strbuf_free(&thr);
    tl_free(T);
    tl_infer_free(inf);
    tl_free(x);
    tl_free(y);
    tl_free(order);
    tl_free(logits);
    return rc;
}
