#include "classifier.h"
#include "io/tsv.h"
#include "strindex.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tl_classify_opts_default(tl_classify_opts *o)
{
    memset(o, 0, sizeof *o);
    o->nthreads = tl_cpu_count();
    tl_extract_opts_default(&o->x);
}

/* Labels are matched to the model's classes through a sorted index: one
 * lookup is O(log K), so N labels against K classes never cost N x K. */
static int map_label(const tl_classifier *c, const tl_strindex *ix, const tl_classify_opts *o, const char *name,
                     int *out, tl_err *e)
{
    *out = -1;
    if (!name || !*name || o->ignore_labels)
        return 0;
    if (o->numeric_labels) {
        char *end;
        long v = strtol(name, &end, 10) + o->label_offset;
        if (end == name || *end || v < 0 || v >= c->nclasses)
            return tl_fail(e, "label '%s' (+%d) is not a class index of the model (0..%d)", name, o->label_offset,
                           c->nclasses - 1);
        *out = (int)v;
        return 0;
    }
    if (c->classes && (*out = tl_strindex_find(ix, name)) >= 0)
        return 0;
    *out = -1;
    return tl_fail(e, "label '%s' is not one of the model's %d classes%s", name, c->nclasses,
                   o->numeric_labels ? "" : " (numeric labels? see --label-offset)");
}

/* A multi-label truth: the labels named in text ("a,b"; single-label
 * sources give one name), each matched as map_label does, into set.
 * *truth: the number of labels, or -1 when unlabelled (text NULL or "-",
 * or "" from a single-label source). */
static int map_set(const tl_classifier *c, const tl_strindex *ix, const tl_classify_opts *o, const char *text,
                   int multi_source, int *truth, unsigned char *set, tl_err *e)
{
    memset(set, 0, (size_t)c->nclasses);
    *truth = -1;
    if (!text || o->ignore_labels || !strcmp(text, "-") || (!multi_source && !*text))
        return 0;
    *truth = 0;
    char name[4096];
    for (const char *p = text; *p;) {
        const char *end = multi_source ? strchr(p, ',') : NULL;
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= sizeof name)
            return tl_fail(e, "label '%.40s...' is too long", p);
        memcpy(name, p, len);
        name[len] = '\0';
        int k;
        if (map_label(c, ix, o, name, &k, e))
            return -1;
        if (k >= 0 && !set[k]) {
            set[k] = 1;
            ++*truth;
        }
        p += len + (end != NULL);
    }
    return 0;
}

/* A model whose output overflows (a broken or barely trained checkpoint)
 * would print nan probabilities and exit 0: such an output is an error
 * naming the input. */
static int check_scores(const float *out, int k, const char *input, const char *path, tl_err *e)
{
    for (int c = 0; c < k; c++)
        if (!isfinite(out[c]))
            return tl_fail(e, "%s%s%s: the model's output for it is not finite (%g): a broken checkpoint?",
                           input ? input : "", input ? ": " : "", path, (double)out[c]);
    return 0;
}

static int run_features(tl_classifier *c, const tl_strindex *ix, const char *input, const tl_classify_opts *o,
                        tl_scored_fn fn, void *user, tl_extract_stats *stats, tl_err *e)
{
    tl_featr *r;
    if (tl_featr_open(&r, input, e))
        return -1;
    const tl_feat_info *info = tl_featr_info(r);
    int rc = 0;
    float *v = NULL, *out = NULL;
    unsigned char *set = NULL;
    if (info->dim != c->head.lin.d) {
        rc = tl_fail(e, "%s: %d values per vector, the head takes %d", input, info->dim, c->head.lin.d);
        goto done;
    }
    tl_feat_origin have = {info->model, info->layer, info->input}, want = tl_head_origin(&c->head);
    if (!o->force_origin && tl_feat_origin_check(&have, &want, "the head was trained on", e)) {
        rc = tl_fail_prefix(e, "%s", input);
        goto done;
    }
    v = tl_xalloc((size_t)info->dim, sizeof(float), e);
    out = v ? tl_xalloc((size_t)c->nclasses, sizeof(float), e) : NULL;
    set = out && c->multilabel ? calloc((size_t)c->nclasses + 1, 1) : NULL;
    if (!out || (c->multilabel && !set)) {
        rc = out ? tl_fail(e, "out of memory") : -1;
        goto done;
    }
    if (info->multilabel && !c->multilabel) {
        rc = tl_fail(e, "%s: multi-label features; the model is single-label (train one on them with tl-finetune)",
                     input);
        goto done;
    }
    double t0 = tl_now();
    for (;;) {
        const char *path, *lname;
        int label;
        int got = tl_featr_next(r, &path, &lname, &label, v, e);
        if (got <= 0) {
            rc = got;
            break;
        }
        if (o->tsv_paths && tl_tsv_check(path, "path", 1, e)) {
            rc = tl_fail_prefix(e, "%s", input);
            break;
        }
        tl_scored s = {path, -1, out, NULL};
        if (c->multilabel ? map_set(c, ix, o, lname, info->multilabel, &s.truth, set, e)
                          : map_label(c, ix, o, lname, &s.truth, e)) {
            rc = tl_fail_prefix(e, "%s: %s", input, path);
            break;
        }
        s.truth_set = c->multilabel && s.truth >= 0 ? set : NULL;
        tl_classifier_on_features(c, v, out);
        if (check_scores(out, c->nclasses, input, path, e)) {
            rc = -1;
            break;
        }
        stats->done++;
        if ((rc = fn(user, &s, e)))
            break;
    }
    stats->seconds = tl_now() - t0;
done:
    tl_free(v);
    tl_free(out);
    free(set);
    tl_featr_close(r);
    return rc;
}

typedef struct {
    tl_classifier *c;
    const tl_dataset *d;
    const int *truth;
    const unsigned char *sets; /* multi-label: n x nclasses */
    tl_scored_fn fn;
    void *user;
} image_ctx;

static int on_image(void *user, int64_t index, const float *out, tl_err *e)
{
    image_ctx *ic = user;
    tl_scored s = {ic->d->items[index].path, ic->truth[index], out, NULL};
    if (ic->sets && s.truth >= 0)
        s.truth_set = ic->sets + (size_t)index * ic->c->nclasses;
    if (check_scores(out, ic->c->nclasses, NULL, s.path, e))
        return -1;
    return ic->fn(ic->user, &s, e);
}

/* The multi-label truth of every image, checked before the network runs. */
static int image_sets(tl_classifier *c, const tl_strindex *ix, const tl_classify_opts *o, const tl_dataset *d,
                      int *truth, unsigned char **sets, tl_err *e)
{
    size_t k = (size_t)c->nclasses;
    if (!(*sets = calloc((size_t)d->n * k + 1, 1)))
        return tl_fail(e, "out of memory");
    for (int64_t i = 0; i < d->n; i++) {
        const tl_sample *sm = &d->items[i];
        truth[i] = -1;
        if (sm->label < 0 || o->ignore_labels)
            continue;
        truth[i] = 0;
        for (int j = 0; j < sm->label; j++) {
            int cls;
            if (map_label(c, ix, o, d->classes[sm->labels[j]], &cls, e))
                return tl_fail_prefix(e, "%s", sm->path);
            truth[i] += !(*sets)[(size_t)i * k + cls];
            (*sets)[(size_t)i * k + cls] = 1;
        }
    }
    return 0;
}

int tl_classify_input(tl_classifier *c, const char *model_path, const char *input, const tl_classify_opts *o,
                      tl_pool *pool, tl_scored_fn fn, void *user, tl_progress_fn progress, void *progress_user,
                      tl_log_fn log, void *log_user, tl_extract_stats *stats, tl_err *e)
{
    memset(stats, 0, sizeof *stats);
    int stdin_features = !strcmp(input, "-") && !o->force_images;
    int features = stdin_features ? 1 : tl_feat_sniff_e(input, e);
    if (features < 0)
        return -1;
    if (features && !c->has_head)
        return tl_fail(e, "%s: feature vectors need a head trained on them; this model is a whole network "
                          "and takes images", stdin_features ? "standard input" : input);
    tl_strindex ix;
    if (tl_strindex_build_strings(&ix, (const char *const *)c->classes, c->classes ? c->nclasses : 0, NULL, e) < 0)
        return -1;
    if (features) {
        int frc = run_features(c, &ix, input, o, fn, user, stats, e);
        tl_strindex_free(&ix);
        return frc;
    }
    tl_dataset d;
    if (tl_dataset_open_flags(input, c->multilabel ? TL_DS_MULTILABEL : 0, &d, e)) {
        tl_strindex_free(&ix);
        return -1;
    }
    int rc = -1;
    unsigned char *sets = NULL;
    int *truth = calloc((size_t)d.n + 1, sizeof *truth);
    if (!truth) {
        tl_fail(e, "out of memory");
        goto out;
    }
    /* Check every path and label before spending time on the network. */
    for (int64_t i = 0; o->tsv_paths && i < d.n; i++)
        if (tl_tsv_check(d.items[i].path, "path", 1, e))
            goto out;
    if (c->multilabel && image_sets(c, &ix, o, &d, truth, &sets, e))
        goto out;
    for (int64_t i = 0; !c->multilabel && i < d.n; i++)
        if (map_label(c, &ix, o, d.items[i].label >= 0 ? d.classes[d.items[i].label] : NULL, &truth[i], e)) {
            tl_fail_prefix(e, "%s", d.items[i].path);
            goto out;
        }
    if (!c->x && tl_classifier_prepare_images(c, model_path, o->nthreads, &o->x, e))
        goto out;
    image_ctx ic = {c, &d, truth, sets, fn, user};
    rc = tl_classifier_run_images(c, pool, &d, on_image, &ic, progress, progress_user, log, log_user, stats, e);
out:
    free(truth);
    free(sets);
    tl_dataset_free(&d);
    tl_strindex_free(&ix);
    return rc;
}
