#include "train_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tl_train_data_open(const char *spec, tl_train_data *d, tl_err *e) { return tl_train_data_open_flags(spec, 0, d, e); }

static int cmp_int(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

int tl_train_data_open_flags(const char *spec, int flags, tl_train_data *d, tl_err *e)
{
    memset(d, 0, sizeof *d);
    char im[4096], lb[4096];
    if (tl_idx_spec(spec, im, lb, sizeof im)) {
        if (flags & TL_DS_MULTILABEL)
            return tl_fail_arg(e, "%s: IDX files hold one label per image; multi-label data is a manifest "
                                  "(path<TAB>a,b)", spec);
        if (tl_idx_load(im, lb, &d->idx, e))
            return -1;
        d->is_idx = 1;
        d->src.idx = &d->idx;
        d->nclasses = d->idx.nclasses;
        d->classes = calloc((size_t)d->nclasses + 1, sizeof(char *));
        if (!d->classes) {
            tl_train_data_free(d);
            return tl_fail(e, "out of memory");
        }
        int fashion = d->nclasses == 10 && strstr(spec, "fashion");
        for (int c = 0; c < d->nclasses; c++) {
            char buf[16];
            snprintf(buf, sizeof buf, "%d", c);
            if (!(d->classes[c] = tl_strdup(fashion ? tl_idx_fashion_names()[c] : buf))) {
                tl_train_data_free(d);
                return tl_fail(e, "out of memory");
            }
        }
        return 0;
    }
    if (tl_dataset_open_flags(spec, flags, &d->ds, e))
        return -1;
    d->src.ds = &d->ds;
    int rc = -1;
    if (d->ds.n == 0) {
        tl_fail(e, "%s: no images", spec);
        goto fail;
    }
    for (int64_t i = 0; i < d->ds.n; i++)
        if (d->ds.items[i].label < 0) {
            tl_fail(e, "%s: %s has no label; training needs labelled data", spec, d->ds.items[i].path);
            goto fail;
        }
    d->nclasses = d->ds.nclasses;
    d->classes = calloc((size_t)d->nclasses + 1, sizeof(char *));
    if (!d->classes) {
        tl_fail(e, "out of memory");
        goto fail;
    }
    for (int c = 0; c < d->nclasses; c++)
        if (!(d->classes[c] = tl_strdup(d->ds.classes[c]))) {
            tl_fail(e, "out of memory");
            goto fail;
        }
    return 0;
fail:
    tl_train_data_free(d);
    return rc;
}

void tl_train_data_free(tl_train_data *d)
{
    for (int c = 0; d->classes && c < d->nclasses; c++)
        free(d->classes[c]);
    free(d->classes);
    if (d->is_idx)
        tl_idx_free(&d->idx);
    else if (d->src.ds)
        tl_dataset_free(&d->ds);
    memset(d, 0, sizeof *d);
}

int64_t tl_train_data_count(const tl_train_data *d) { return tl_source_count(&d->src); }

int tl_train_data_match(tl_train_data *v, const tl_train_data *t, const char *vname, tl_err *e)
{
    int *map = calloc((size_t)v->nclasses + 1, sizeof(int));
    if (!map)
        return tl_fail(e, "out of memory");
    for (int c = 0; c < v->nclasses; c++) {
        map[c] = -1;
        for (int k = 0; k < t->nclasses; k++)
            if (!strcmp(v->classes[c], t->classes[k]))
                map[c] = k;
        if (map[c] < 0) {
            tl_fail(e, "%s: class '%s' is not in the training data", vname, v->classes[c]);
            free(map);
            return -1;
        }
    }
    int64_t n = tl_train_data_count(v);
    for (int64_t i = 0; i < n; i++) {
        if (v->is_idx) {
            v->idx.labels[i] = map[v->idx.labels[i]];
        } else if (v->ds.multilabel) {
            tl_sample *s = &v->ds.items[i];
            for (int j = 0; j < s->label; j++)
                s->labels[j] = map[s->labels[j]];
            if (s->label > 1)
                qsort(s->labels, (size_t)s->label, sizeof *s->labels, cmp_int);
        } else {
            v->ds.items[i].label = map[v->ds.items[i].label];
        }
    }
    free(map);
    return 0;
}
