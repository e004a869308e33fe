#include "pseudo.h"
#include "nn/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tl_pseudo_opts_default(tl_pseudo_opts *o)
{
    o->threshold = 0.9;
    o->rounds = 5;
    o->ramp = 0;
}

typedef struct {
    float conf;
    int64_t i;
} ranked;

static int by_confidence(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->conf != y->conf)
        return x->conf > y->conf ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

int64_t tl_pseudo_select(const float *probs, int64_t n, int k, double threshold, double scale, double frac,
                         int *labels, tl_err *e)
{
    ranked *r = tl_xalloc((size_t)n + 1, sizeof *r, e);
    int64_t *count = tl_xalloc((size_t)k + 1, sizeof *count, e), *taken = tl_xalloc((size_t)k + 1, sizeof *taken, e);
    int *pred = tl_xalloc((size_t)n + 1, sizeof *pred, e);
    if (!r || !count || !taken || !pred) {
        tl_free(r);
        tl_free(count);
        tl_free(taken);
        tl_free(pred);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * k;
        int best = 0;
        for (int c = 1; c < k; c++)
            if (p[c] > p[best])
                best = c;
        pred[i] = best;
        count[best]++;
        r[i].conf = p[best];
        r[i].i = i;
        labels[i] = -1;
    }
    qsort(r, (size_t)n, sizeof *r, by_confidence);
    double floor_conf = threshold * scale;
    int64_t admitted = 0;
    for (int64_t j = 0; j < n; j++) {
        int c = pred[r[j].i];
        /* the share of this class's predictions, rounded to the nearest image */
        int64_t quota = (int64_t)floor(frac * (double)count[c] + 0.5);
        if (taken[c] >= quota || (double)r[j].conf < floor_conf)
            continue;
        labels[r[j].i] = c;
        taken[c]++;
        admitted++;
    }
    tl_free(r);
    tl_free(count);
    tl_free(taken);
    tl_free(pred);
    return admitted;
}

int tl_pseudo_unlabelled_data(const char *path, const tl_featset *train, tl_featset *u, tl_err *e)
{
    if (tl_featset_load(path, u, e))
        return -1;
    if (u->info.multilabel) {
        tl_featset_free(u);
        return tl_fail(e, "%s: multi-label features: pseudo-labels are for single-label heads", path);
    }
    if (u->info.dim != train->info.dim) {
        int d = u->info.dim;
        tl_featset_free(u);
        return tl_fail(e, "%s: %d values per vector, the training features have %d", path, d, train->info.dim);
    }
    if (u->n < 1) {
        tl_featset_free(u);
        return tl_fail(e, "%s: no vectors", path);
    }
    /* the file's own labels, by name, only to count right pseudo-labels */
    for (int64_t i = 0; i < u->n; i++) {
        int c = u->y[i], t = -1;
        if (c >= 0 && c < u->info.nclasses)
            for (int j = 0; j < train->info.nclasses; j++)
                if (!strcmp(train->info.classes[j], u->info.classes[c]))
                    t = j;
        u->y[i] = t;
    }
    return 0;
}

/* Softmax of a logistic-regression head's scores. */
static void probabilities(const tl_linear_model *m, const float *x, float *p)
{
    tl_linear_scores(m, x, p);
    float mx = p[0];
    for (int c = 1; c < m->k; c++)
        mx = p[c] > mx ? p[c] : mx;
    double s = 0;
    for (int c = 0; c < m->k; c++)
        s += exp((double)p[c] - (double)mx);
    for (int c = 0; c < m->k; c++)
        p[c] = (float)(exp((double)p[c] - (double)mx) / s);
}

static double accuracy(const tl_linear_model *m, const float *X, const int *y, int64_t n)
{
    int64_t right = 0, seen = 0;
    for (int64_t i = 0; i < n; i++)
        if (y[i] >= 0) {
            seen++;
            right += tl_linear_predict(m, X + (size_t)i * m->d) == y[i];
        }
    return seen ? (double)right / (double)seen : NAN;
}

int tl_pseudo_head(const tl_featset *train, const tl_featset *unl, const tl_featset *val, const tl_linear_opts *lo,
                   const tl_pseudo_opts *po, tl_pool *pool, tl_pseudo_report_fn report, void *user,
                   tl_linear_model *out, tl_err *e)
{
    memset(out, 0, sizeof *out);
    if (lo->kind != TL_HEAD_LOGREG)
        return tl_fail_arg(e, "--unlabelled: pseudo-labels need a logistic-regression head (an SVM's decision "
                              "values are no confidence)");
    if (train->info.multilabel)
        return tl_fail_arg(e, "--unlabelled: pseudo-labels are for single-label heads");
    int d = train->info.dim, k = train->info.nclasses;
    int64_t n = train->n, nu = unl->n;
    float *X = tl_xalloc((size_t)(n + nu) * d, sizeof(float), e), *P = tl_xalloc((size_t)nu * k, sizeof(float), e);
    int *y = tl_xalloc((size_t)(n + nu), sizeof(int), e), *lab = tl_xalloc((size_t)nu, sizeof(int), e);
    int rc = -1;
    if (!X || !P || !y || !lab)
        goto out;
    memcpy(X, train->X, (size_t)n * d * sizeof(float));
    memcpy(y, train->y, (size_t)n * sizeof(int));
    int64_t m = n; /* rows in use */
    for (int r = 0; r <= po->rounds; r++) {
        if (r > 0)
            tl_linear_model_free(out);
        if (tl_linear_train(X, y, m, d, k, lo, pool, NULL, NULL, out, e))
            goto out;
        tl_pseudo_round rep = {r, po->rounds, r ? (double)r / po->rounds : 0, m - n, nu, 0, 0, 0, NAN};
        rep.train_accuracy = accuracy(out, train->X, train->y, n);
        if (val)
            rep.val_accuracy = accuracy(out, val->X, val->y, val->n);
        if (r > 0) {
            for (int64_t i = 0; i < nu; i++)
                if (lab[i] >= 0 && unl->y[i] >= 0) {
                    rep.known++;
                    rep.right += lab[i] == unl->y[i];
                }
        }
        if (report)
            report(user, &rep);
        if (r == po->rounds)
            break;
        /* the next round's pseudo-labels, from this round's head */
        for (int64_t i = 0; i < nu; i++)
            probabilities(out, unl->X + (size_t)i * d, P + (size_t)i * k);
        if (tl_pseudo_select(P, nu, k, po->threshold, 1.0, (double)(r + 1) / po->rounds, lab, e) < 0)
            goto out;
        m = n;
        for (int64_t i = 0; i < nu; i++)
            if (lab[i] >= 0) {
                memcpy(X + (size_t)m * d, unl->X + (size_t)i * d, (size_t)d * sizeof(float));
                y[m++] = lab[i];
            }
    }
    rc = 0;
out:
    if (rc)
        tl_linear_model_free(out);
    tl_free(X);
    tl_free(P);
    tl_free(y);
    tl_free(lab);
    return rc;
}

/* ---------------- fine-tuning a network ---------------- */

struct tl_pseudo_net {
    tl_model *m;
    tl_pseudo_net_setup s;
    tl_pseudo_opts o;
    int64_t *lab_ids;
    int *labels;           /* per source id: the override (-1: the source's own label) */
    int *state;            /* per unlabelled image: its pseudo-label, -1 none (what the resume state keeps) */
    tl_batch_loader *loader;
    tl_infer *inf;
    float *x, *logits, *probs;
    int *y;
    int64_t *ids;
    tl_log_fn log;
    void *log_user;
};

void tl_pseudo_net_free(tl_pseudo_net *p)
{
    if (!p)
        return;
    tl_batch_loader_free(p->loader);
    tl_infer_free(p->inf);
    tl_free(p->lab_ids);
    tl_free(p->labels);
    tl_free(p->state);
    tl_free(p->x);
    tl_free(p->logits);
    tl_free(p->probs);
    tl_free(p->y);
    tl_free(p->ids);
    free(p);
}

tl_pseudo_net *tl_pseudo_net_new(tl_model *m, const tl_pseudo_net_setup *s, const tl_pseudo_opts *o, tl_log_fn log,
                                 void *log_user, tl_err *e)
{
    if (s->nlab < 1 || s->nunl < 1) {
        tl_fail(e, "self-training needs labelled and unlabelled images (%lld and %lld here)", (long long)s->nlab,
                (long long)s->nunl);
        return NULL;
    }
    tl_pseudo_net *p = calloc(1, sizeof *p);
    if (!p) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    p->m = m;
    p->s = *s;
    p->o = *o;
    if (p->o.ramp < 1)
        p->o.ramp = s->epochs / 2 > 0 ? s->epochs / 2 : 1;
    p->log = log;
    p->log_user = log_user;
    int64_t nsrc = tl_source_count(s->src);
    int k = m->num_classes, b = s->batch;
    p->lab_ids = tl_xalloc((size_t)s->nlab, sizeof(int64_t), e);
    p->labels = tl_xalloc((size_t)nsrc, sizeof(int), e);
    p->state = tl_xalloc((size_t)s->nunl, sizeof(int), e);
    p->x = tl_xalloc((size_t)b * 3 * s->pp->input_w * s->pp->input_h, sizeof(float), e);
    p->logits = tl_xalloc((size_t)b * k, sizeof(float), e);
    p->probs = tl_xalloc((size_t)s->nunl * k, sizeof(float), e);
    p->y = tl_xalloc((size_t)b, sizeof(int), e);
    p->ids = tl_xalloc((size_t)s->nunl, sizeof(int64_t), e);
    if (!p->lab_ids || !p->labels || !p->state || !p->x || !p->logits || !p->probs || !p->y || !p->ids)
        goto fail;
    memcpy(p->lab_ids, s->lab_ids, (size_t)s->nlab * sizeof(int64_t));
    for (int64_t i = 0; i < nsrc; i++)
        p->labels[i] = -1;
    for (int64_t i = 0; i < s->nunl; i++) {
        p->state[i] = -1;
        p->ids[i] = s->unl_first + i;
    }
    if (!(p->loader = tl_batch_loader_new(s->src, s->pp, NULL, s->threads, e)))
        goto fail;
    tl_batch_loader_set_max_pixels(p->loader, s->max_pixels);
    return p;
fail:
    tl_pseudo_net_free(p);
    return NULL;
}

const int *tl_pseudo_net_labels(const tl_pseudo_net *p) { return p->labels; }
int64_t tl_pseudo_net_epoch_size(const tl_pseudo_net *p) { return p->s.nlab + p->s.nunl; }

int *tl_pseudo_net_state(tl_pseudo_net *p, int64_t *n)
{
    *n = p->s.nunl;
    return p->state;
}

int tl_pseudo_net_epoch_ids(void *user, int epoch, int64_t *ids, int64_t n, tl_err *e)
{
    tl_pseudo_net *p = user;
    if (n != tl_pseudo_net_epoch_size(p))
        return tl_fail(e, "an epoch of %lld images, not %lld", (long long)n, (long long)tl_pseudo_net_epoch_size(p));
    /* the state decides: labels for the loader, then the epoch's images */
    int64_t m = 0;
    for (int64_t i = 0; i < p->s.nunl; i++)
        p->labels[p->s.unl_first + i] = p->state[i];
    memcpy(ids, p->lab_ids, (size_t)p->s.nlab * sizeof(int64_t));
    m = p->s.nlab;
    for (int64_t i = 0; i < p->s.nunl; i++)
        if (p->state[i] >= 0)
            ids[m++] = p->s.unl_first + i;
    /* the rest: the labelled images again, a seeded cycle */
    tl_rng r;
    tl_rng_seed_stream(&r, p->s.seed, 0x9E5D0 + (uint64_t)epoch);
    for (int64_t j = 0; m < n; j++) {
        if (j % p->s.nlab == 0)
            tl_rng_shuffle(&r, p->lab_ids, p->s.nlab);
        ids[m++] = p->lab_ids[j % p->s.nlab];
    }
    memcpy(p->lab_ids, p->s.lab_ids, (size_t)p->s.nlab * sizeof(int64_t));
    return 0;
}

int tl_pseudo_net_after_epoch(void *user, tl_pool *pool, int epochs_done, tl_err *e)
{
    tl_pseudo_net *p = user;
    if (epochs_done >= p->s.epochs)
        return 0; /* no epoch left to use them */
    tl_model *m = p->m;
    int k = m->num_classes, b = p->s.batch;
    if (!p->inf && !(p->inf = tl_infer_new(m, tl_pool_size(pool), &m->logits_node, 1, e)))
        return -1;
    if (tl_infer_refresh(p->inf, e))
        return -1;
    double t0 = tl_now();
    for (int64_t i = 0; i < p->s.nunl; i += b) {
        int nb = (int)(p->s.nunl - i < b ? p->s.nunl - i : b);
        if (tl_batch_load(p->loader, pool, p->ids + i, nb, 0, 0, p->x, p->y, e))
            return -1;
        float *outs[1] = {p->logits};
        tl_infer_run(p->inf, pool, nb, p->x, outs);
        for (int j = 0; j < nb; j++)
            tl_softmax(p->logits + (size_t)j * k, p->probs + (size_t)(i + j) * k, k);
    }
    double frac = (double)epochs_done / p->o.ramp;
    frac = frac > 1 ? 1 : frac;
    int64_t got = tl_pseudo_select(p->probs, p->s.nunl, k, p->o.threshold, p->s.scale, frac, p->state, e);
    if (got < 0)
        return -1;
    if (p->log) {
        int64_t known = 0, right = 0;
        for (int64_t i = 0; i < p->s.nunl; i++)
            if (p->state[i] >= 0 && p->s.truth && p->s.truth[i] >= 0) {
                known++;
                right += p->state[i] == p->s.truth[i];
            }
        char msg[256], kn[96] = "";
        if (known)
            snprintf(kn, sizeof kn, "; %lld of %lld right where the data has labels", (long long)right,
                     (long long)known);
        snprintf(msg, sizeof msg, "pseudo-labels for epoch %d: %lld of %lld unlabelled images (up to %.0f%% of each "
                                  "class's predictions)%s (%.1f s)",
                 epochs_done + 1, (long long)got, (long long)p->s.nunl, 100 * frac, kn, tl_now() - t0);
        p->log(p->log_user, msg);
    }
    return 0;
}
