#include "probe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tl_probe_opts_default(tl_probe_opts *o)
{
    memset(o, 0, sizeof *o);
    tl_linear_opts_default(&o->lin);
    o->threads = tl_cpu_count();
    o->batch = 32;
}

/* A named global pooling that reads node j (the default features read
 * from the last stage): j pooled is the same vector. */
static int pooled_by_named_gap(const tl_model *m, int j)
{
    for (int k = j + 1; k < m->nnodes; k++)
        if (m->nodes[k].op == TL_OP_GAP && m->nodes[k].in[0] == j && m->nodes[k].name[0])
            return 1;
    return 0;
}

int tl_probe_all_layers(const tl_model *m, int *nodes, int cap)
{
    int last = m->features_node > 0 ? m->features_node : (m->logits_node > 0 ? m->logits_node - 1 : m->nnodes - 1);
    int n = 0;
    for (int j = 1; j <= last; j++) {
        if (!m->nodes[j].name[0] && j != m->features_node)
            continue;
        if (j != m->features_node && pooled_by_named_gap(m, j))
            continue;
        if (n < cap)
            nodes[n] = j;
        n++;
    }
    return n;
}

/* Every image's vector of every layer, one row per image of d. */
typedef struct {
    float *X;
    int64_t n;
    int dim;
} rows;

static int keep_row(void *user, int64_t index, const float *v, tl_err *e)
{
    rows *r = user;
    memcpy(r->X + (size_t)index * (size_t)r->dim, v, (size_t)r->dim * sizeof(float));
    return 0;
}

static int extract(tl_extractor *x, tl_pool *pool, const tl_dataset *d, rows *r, tl_progress_fn progress,
                   void *progress_user, double *seconds, tl_err *e)
{
    r->dim = tl_extractor_dim(x);
    r->n = d->n;
    if (!(r->X = tl_xalloc((size_t)d->n * (size_t)r->dim + 1, sizeof(float), e)))
        return tl_fail_prefix(e, "%lld images of %d values", (long long)d->n, r->dim);
    tl_extract_stats st;
    if (tl_extractor_run(x, pool, d, keep_row, r, progress, progress_user, NULL, NULL, &st, e))
        return -1;
    *seconds += st.seconds;
    return 0;
}

/* One layer's columns of the selected rows, contiguous. */
static void gather(const rows *r, const int64_t *ids, int64_t n, int off, int dim, float *out)
{
    for (int64_t i = 0; i < n; i++)
        memcpy(out + (size_t)i * dim, r->X + (size_t)ids[i] * r->dim + off, (size_t)dim * sizeof(float));
}

static int by_depth(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The nodes to probe, in execution order, each once. */
static int pick_layers(const tl_model *m, const tl_probe_opts *o, int **nodes, tl_err *e)
{
    int n = o->layers ? o->nlayers : tl_probe_all_layers(m, NULL, 0);
    if (n < 1)
        return tl_fail(e, "no layer to probe");
    if (!(*nodes = tl_xalloc((size_t)n, sizeof(int), e)))
        return -1;
    if (!o->layers) {
        tl_probe_all_layers(m, *nodes, n);
        return n;
    }
    for (int i = 0; i < n; i++) {
        int k = tl_model_find_node(m, o->layers[i]);
        if (k <= 0) {
            free(*nodes);
            return tl_fail_arg(e, "--layers: no layer '%s' in %s (tl-info MODEL lists the layers)", o->layers[i],
                               m->arch);
        }
        if (m->logits_node >= 0 && k >= m->logits_node) {
            free(*nodes);
            return tl_fail_arg(e, "--layers: %s is the classifier's output, not a layer to transfer", o->layers[i]);
        }
        (*nodes)[i] = k;
    }
    qsort(*nodes, (size_t)n, sizeof(int), by_depth);
    int u = 0;
    for (int i = 0; i < n; i++)
        if (!u || (*nodes)[u - 1] != (*nodes)[i])
            (*nodes)[u++] = (*nodes)[i];
    return u;
}

/* val's labels as train's class indices (by name). */
static int map_labels(const tl_dataset *train, const tl_dataset *val, int **map, tl_err *e)
{
    if (!(*map = tl_xalloc((size_t)val->nclasses + 1, sizeof(int), e)))
        return -1;
    for (int c = 0; c < val->nclasses; c++)
        if (((*map)[c] = val == train ? c : tl_dataset_class(train, val->classes[c])) < 0)
            return tl_fail(e, "validation class '%s' is not among the training classes", val->classes[c]);
    return 0;
}

static int labelled(const tl_dataset *d, const int64_t *ids, int64_t n, const int *map, int *y, const char *what,
                    tl_err *e)
{
    for (int64_t i = 0; i < n; i++) {
        int c = d->items[ids[i]].label;
        if (c < 0)
            return tl_fail(e, "%s: %s has no label", what, d->items[ids[i]].path);
        y[i] = map ? map[c] : c;
    }
    return 0;
}

/* Accuracy (and, per image, whether it was right) and mean cross-entropy
 * of m on n rows of X. */
static void score(const tl_linear_model *m, const float *X, const int *y, int64_t n, float *sc, unsigned char *right,
                  int64_t *correct, double *loss)
{
    double total = 0;
    *correct = 0;
    for (int64_t i = 0; i < n; i++) {
        tl_linear_scores(m, X + (size_t)i * m->d, sc);
        int best = 0;
        for (int c = 1; c < m->k; c++)
            if (sc[c] > sc[best])
                best = c;
        double z = 0;
        for (int c = 0; c < m->k; c++)
            z += exp((double)sc[c] - (double)sc[best]);
        total += log(z) + (double)sc[best] - (double)sc[y[i]];
        if (right)
            right[i] = best == y[i];
        *correct += best == y[i];
    }
    *loss = m->kind == TL_HEAD_SVM || !n ? NAN : total / (double)n;
}

int tl_probe_run(const tl_net *net, const tl_dataset *train, const int64_t *train_ids, int64_t ntrain,
                 const tl_dataset *val, const int64_t *val_ids, int64_t nval, const tl_probe_opts *o, tl_pool *pool,
                 tl_progress_fn progress, void *progress_user, tl_log_fn log, void *log_user, tl_probe *out,
                 tl_err *e)
{
    memset(out, 0, sizeof *out);
    out->best = out->default_layer = -1;
    if (ntrain < 2 || nval < 1)
        return tl_fail(e, "a layer sweep needs training and validation images (%lld and %lld here)",
                       (long long)ntrain, (long long)nval);
    const tl_model *m = net->model;
    int *nodes = NULL, *map = NULL, *ytr = NULL, *yva = NULL;
    const char **names = NULL;
    tl_extractor *x = NULL;
    rows rt = {0}, rv = {0};
    float *Xtr = NULL, *Xva = NULL, *sc = NULL;
    int rc = -1, n = pick_layers(m, o, &nodes, e);
    if (n < 0)
        return -1;
    out->layers = tl_xalloc((size_t)n, sizeof *out->layers, e);
    names = tl_xalloc((size_t)n, sizeof *names, e);
    ytr = tl_xalloc((size_t)ntrain, sizeof(int), e);
    yva = tl_xalloc((size_t)nval, sizeof(int), e);
    if (!out->layers || !names || !ytr || !yva)
        goto out;
    out->nlayers = n;
    out->ntrain = ntrain;
    out->nval = nval;
    out->nclasses = train->nclasses;
    for (int i = 0; i < n; i++) {
        tl_probe_layer *L = &out->layers[i];
        L->node = nodes[i];
        L->depth = i + 1;
        const char *nm = m->nodes[nodes[i]].name;
        snprintf(L->name, sizeof L->name, "%s", nm[0] ? nm : "features");
        names[i] = nm[0] ? L->name : NULL; /* NULL: the unnamed default features */
        if (nodes[i] == m->features_node)
            out->default_layer = i;
        if (!(L->right = tl_xalloc((size_t)nval, 1, e)))
            goto out;
    }
    if (map_labels(train, val, &map, e) || labelled(train, train_ids, ntrain, NULL, ytr, "training data", e) ||
        labelled(val, val_ids, nval, map, yva, "validation data", e))
        goto out;
    tl_extract_opts xo;
    tl_extract_opts_default(&xo);
    xo.batch = o->batch;
    xo.max_pixels = o->max_pixels;
    xo.exact = o->exact;
    if (!(x = tl_extractor_new_layers(net, names, n, o->threads, &xo, e)))
        goto out;
    for (int i = 0; i < n; i++)
        out->layers[i].dim = tl_extractor_layer_dim(x, i);
    if (extract(x, pool, train, &rt, progress, progress_user, &out->extract_seconds, e) ||
        (val != train && extract(x, pool, val, &rv, progress, progress_user, &out->extract_seconds, e)))
        goto out;
    const rows *vr = val == train ? &rt : &rv;
    int maxd = 0;
    for (int i = 0; i < n; i++)
        maxd = out->layers[i].dim > maxd ? out->layers[i].dim : maxd;
    Xtr = tl_xalloc((size_t)ntrain * maxd, sizeof(float), e);
    Xva = tl_xalloc((size_t)nval * maxd, sizeof(float), e);
    sc = tl_xalloc((size_t)train->nclasses + 1, sizeof(float), e);
    if (!Xtr || !Xva || !sc)
        goto out;
    for (int i = 0; i < n; i++) {
        tl_probe_layer *L = &out->layers[i];
        int off = tl_extractor_layer_offset(x, i);
        gather(&rt, train_ids, ntrain, off, L->dim, Xtr);
        gather(vr, val_ids, nval, off, L->dim, Xva);
        double t0 = tl_now();
        tl_linear_model lm;
        if (tl_linear_train(Xtr, ytr, ntrain, L->dim, train->nclasses, &o->lin, pool, NULL, NULL, &lm, e)) {
            tl_fail_prefix(e, "layer %s", L->name);
            goto out;
        }
        L->seconds = tl_now() - t0;
        out->fit_seconds += L->seconds;
        int64_t c;
        double unused;
        score(&lm, Xtr, ytr, ntrain, sc, NULL, &c, &unused);
        L->train_acc = (double)c / (double)ntrain;
        score(&lm, Xva, yva, nval, sc, L->right, &L->correct, &L->val_loss);
        L->val_acc = (double)L->correct / (double)nval;
        tl_linear_model_free(&lm);
        if (log) {
            char msg[TL_NAME_MAX + 128];
            snprintf(msg, sizeof msg, "%s: %d values, train accuracy %.4f, validation %.4f (%.2f s)", L->name, L->dim,
                     L->train_acc, L->val_acc, L->seconds);
            log(log_user, msg);
        }
        const tl_probe_layer *B = out->best >= 0 ? &out->layers[out->best] : NULL;
        if (!B || L->val_acc > B->val_acc ||
            (L->val_acc == B->val_acc && !(L->val_loss > B->val_loss))) /* ties: lower loss, then deeper */
            out->best = i;
    }
    rc = 0;
out:
    if (rc)
        tl_probe_free(out);
    tl_extractor_free(x);
    free(nodes);
    free(names);
    free(map);
    free(ytr);
    free(yva);
    tl_free(rt.X);
    tl_free(rv.X);
    tl_free(Xtr);
    tl_free(Xva);
    tl_free(sc);
    return rc;
}

double tl_probe_noise(const tl_probe *p, int a, int b)
{
    int64_t n = p->nval, ab = 0, ba = 0;
    const unsigned char *ra = p->layers[a].right, *rb = p->layers[b].right;
    for (int64_t i = 0; i < n; i++) {
        ab += ra[i] && !rb[i];
        ba += rb[i] && !ra[i];
    }
    double d = (double)(ab - ba), var = ((double)(ab + ba) - d * d / (double)n) / ((double)n * (double)n);
    return 2 * sqrt(var > 0 ? var : 0);
}

void tl_probe_free(tl_probe *p)
{
    for (int i = 0; p->layers && i < p->nlayers; i++)
        tl_free(p->layers[i].right);
    tl_free(p->layers);
    memset(p, 0, sizeof *p);
    p->best = p->default_layer = -1;
}
