#include "classifier.h"
#include "io/tsv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tl_classify_opts_default(tl_classify_opts *o)
{
    memset(o, 0, sizeof *o);
    o->nthreads = tl_cpu_count();
    tl_extract_opts_default(&o->x);
}

static int map_label(const tl_classifier *c, const tl_classify_opts *o, const char *name, int *out, tl_err *e)
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
    for (int k = 0; k < c->nclasses; k++)
        if (c->classes && !strcmp(c->classes[k], name)) {
            *out = k;
            return 0;
        }
    return tl_fail(e, "label '%s' is not one of the model's %d classes%s", name, c->nclasses,
                   o->numeric_labels ? "" : " (numeric labels? see --label-offset)");
}

static int run_features(tl_classifier *c, const char *input, const tl_classify_opts *o, tl_scored_fn fn, void *user,
                        tl_extract_stats *stats, tl_err *e)
{
    tl_featr *r;
    if (tl_featr_open(&r, input, e))
        return -1;
    const tl_feat_info *info = tl_featr_info(r);
    int rc = 0;
    float *v = NULL, *out = NULL;
    if (info->dim != c->head.lin.d) {
        rc = tl_fail(e, "%s: %d values per vector, the head takes %d", input, info->dim, c->head.lin.d);
        goto done;
    }
    v = tl_xalloc((size_t)info->dim, sizeof(float), e);
    out = v ? tl_xalloc((size_t)c->nclasses, sizeof(float), e) : NULL;
    if (!out) {
        rc = -1;
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
        tl_scored s = {path, -1, out};
        if (map_label(c, o, lname, &s.truth, e)) {
            rc = tl_fail_prefix(e, "%s: %s", input, path);
            break;
        }
        tl_classifier_on_features(c, v, out);
        stats->done++;
        if ((rc = fn(user, &s, e)))
            break;
    }
    stats->seconds = tl_now() - t0;
done:
    tl_free(v);
    tl_free(out);
    tl_featr_close(r);
    return rc;
}

typedef struct {
    tl_classifier *c;
    const tl_dataset *d;
    const int *truth;
    tl_scored_fn fn;
    void *user;
} image_ctx;

static int on_image(void *user, int64_t index, const float *out, tl_err *e)
{
    image_ctx *ic = user;
    tl_scored s = {ic->d->items[index].path, ic->truth[index], out};
    return ic->fn(ic->user, &s, e);
}

int tl_classify_input(tl_classifier *c, const char *model_path, const char *input, const tl_classify_opts *o,
                      tl_pool *pool, tl_scored_fn fn, void *user, tl_progress_fn progress, void *progress_user,
                      tl_log_fn log, void *log_user, tl_extract_stats *stats, tl_err *e)
{
    memset(stats, 0, sizeof *stats);
    int stdin_features = !strcmp(input, "-") && !o->force_images;
    int features = stdin_features || tl_feat_sniff(input);
    if (features && !c->has_head)
        return tl_fail(e, "%s: feature vectors need a head trained on them; this model is a whole network "
                          "and takes images", stdin_features ? "standard input" : input);
    if (features)
        return run_features(c, input, o, fn, user, stats, e);
    tl_dataset d;
    if (tl_dataset_open(input, &d, e))
        return -1;
    int rc = -1;
    int *truth = calloc((size_t)d.n + 1, sizeof *truth);
    if (!truth) {
        tl_fail(e, "out of memory");
        goto out;
    }
    /* Check every path and label before spending time on the network. */
    for (int64_t i = 0; o->tsv_paths && i < d.n; i++)
        if (tl_tsv_check(d.items[i].path, "path", 1, e))
            goto out;
    for (int64_t i = 0; i < d.n; i++)
        if (map_label(c, o, d.items[i].label >= 0 ? d.classes[d.items[i].label] : NULL, &truth[i], e)) {
            tl_fail_prefix(e, "%s", d.items[i].path);
            goto out;
        }
    if (!c->x && tl_classifier_prepare_images(c, model_path, o->nthreads, &o->x, e))
        goto out;
    image_ctx ic = {c, &d, truth, fn, user};
    rc = tl_classifier_run_images(c, pool, &d, on_image, &ic, progress, progress_user, log, log_user, stats, e);
out:
    free(truth);
    tl_dataset_free(&d);
    return rc;
}
