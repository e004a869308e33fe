#include "features.h"
#include "json.h"
#include "shard.h"

#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Multi-label names ("a,b") split in place: the parts of record i follow
 * one another, NUL-separated, count[i] of them. */
static int64_t split_names(const tl_featset *s, char **names, char **parts, int *count)
{
    int64_t k = 0;
    for (int64_t i = 0; i < s->n; i++) {
        count[i] = 0;
        for (char *p = names[i]; p && *p;) {
            parts[k++] = p;
            count[i]++;
            if (!(p = strchr(p, ',')))
                break;
            *p++ = '\0';
        }
    }
    return k;
}

/* For TSV files without a #classes line: label names become classes in
 * sorted order, as for image folders. */
static int classes_from_names(tl_featset *s, char **names, tl_err *e)
{
    tl_strings_free(s->info.classes, s->info.nclasses);
    s->info.classes = NULL;
    s->info.nclasses = 0;
    int64_t nparts = 0;
    for (int64_t i = 0; i < s->n; i++)
        for (const char *p = names[i]; p && *p; p++)
            nparts += p == names[i] || *p == ',';
    char **sorted = malloc(((size_t)nparts + (size_t)s->n + 1) * sizeof *sorted);
    int *count = malloc(((size_t)s->n + 1) * sizeof *count);
    if (!sorted || !count) {
        free(sorted), free(count);
        return tl_fail(e, "out of memory");
    }
    int64_t k = 0;
    if (s->info.multilabel) {
        k = split_names(s, names, sorted, count);
    } else {
        for (int64_t i = 0; i < s->n; i++)
            if (names[i])
                sorted[k++] = names[i];
    }
    char **parts = malloc(((size_t)k + 1) * sizeof *parts);
    if (!parts) {
        free(sorted), free(count);
        return tl_fail(e, "out of memory");
    }
    memcpy(parts, sorted, (size_t)k * sizeof *parts);
    qsort(sorted, (size_t)k, sizeof *sorted, cmp_str);
    int nc = 0;
    for (int64_t i = 0; i < k; i++)
        if (i == 0 || strcmp(sorted[i], sorted[i - 1]))
            sorted[nc++] = sorted[i];
    int rc = 0;
    s->info.classes = calloc((size_t)nc + 1, sizeof(char *));
    if (!s->info.classes)
        rc = tl_fail(e, "out of memory");
    for (int c = 0; c < nc && !rc; c++)
        if (!(s->info.classes[c] = tl_strdup(sorted[c])))
            rc = tl_fail(e, "out of memory");
        else
            s->info.nclasses = c + 1;
    if (!rc && s->info.multilabel && !(s->Y = calloc((size_t)s->n * (size_t)nc + 1, 1)))
        rc = tl_fail(e, "out of memory");
    for (int64_t i = 0, at = 0; i < s->n && !rc; i++) {
        if (!s->info.multilabel) {
            if (names[i]) {
                char **hit = bsearch(&names[i], s->info.classes, (size_t)nc, sizeof(char *), cmp_str);
                s->y[i] = (int)(hit - s->info.classes);
            }
            continue;
        }
        for (int j = 0; j < count[i]; j++, at++) {
            char **hit = bsearch(&parts[at], s->info.classes, (size_t)nc, sizeof(char *), cmp_str);
            s->Y[(size_t)i * nc + (size_t)(hit - s->info.classes)] = 1;
        }
        if (s->y[i] >= 0) { /* repeats count once */
            s->y[i] = 0;
            for (int c = 0; c < nc; c++)
                s->y[i] += s->Y[(size_t)i * nc + c];
        }
    }
    free(sorted), free(count), free(parts);
    return rc;
}

/* Shards read back in any order (cat 2.tlf 1.tlf) make one data set in
 * canonical order (io/shard.h), that of an unsharded class-folder run:
 * every shard lists its records in that order, so this only interleaves. */
static int canonical_order(tl_featset *s, tl_err *e)
{
    int64_t n = s->n;
    size_t dim = (size_t)s->info.dim, k = s->Y ? (size_t)s->info.nclasses : 0;
    int64_t *idx = malloc(((size_t)n + 1) * sizeof *idx);
    float *X = malloc((size_t)n * dim * sizeof *X + 1);
    int *y = malloc((size_t)n * sizeof *y + 1);
    char **paths = malloc((size_t)n * sizeof *paths + 1);
    unsigned char *Y = k ? malloc((size_t)n * k + 1) : NULL;
    int rc = idx && X && y && paths && (Y || !k) ? 0 : tl_fail(e, "out of memory putting the shards in order");
    for (int64_t i = 0; !rc && i < n; i++)
        idx[i] = i;
    if (!rc)
        rc = tl_path_sort((const char *const *)s->paths, idx, n, e);
    for (int64_t i = 0; !rc && i < n; i++) {
        int64_t j = idx[i];
        memcpy(X + (size_t)i * dim, s->X + (size_t)j * dim, dim * sizeof *X);
        y[i] = s->y[j];
        paths[i] = s->paths[j];
        if (k)
            memcpy(Y + (size_t)i * k, s->Y + (size_t)j * k, k);
    }
    if (!rc) {
        free(s->X), free(s->y), free(s->paths), free(s->Y);
        s->X = X, s->y = y, s->paths = paths, s->Y = Y;
        X = NULL, y = NULL, paths = NULL, Y = NULL;
    }
    free(idx), free(X), free(y), free(paths), free(Y);
    /* the whole data set now, no longer one shard of it */
    s->info.shard = s->info.nshards = 0;
    return rc;
}

/* Multi-label with known classes: the sets gathered while reading. */
static int fill_Y(tl_featset *s, const int *lab, const int64_t *off, tl_err *e)
{
    int k = s->info.nclasses;
    if (!(s->Y = calloc((size_t)s->n * (size_t)k + 1, 1)))
        return tl_fail(e, "out of memory");
    for (int64_t i = 0; i < s->n; i++)
        for (int64_t j = off[i]; j < off[i + 1]; j++)
            s->Y[(size_t)i * k + (size_t)lab[j]] = 1;
    return 0;
}

int tl_featset_load(const char *path, tl_featset *s, tl_err *e)
{
    memset(s, 0, sizeof *s);
    tl_featr *r;
    if (tl_featr_open(&r, path, e))
        return -1;
    const tl_feat_info *info = tl_featr_info(r);
    int dim = info->dim, rc = -1, need_names = info->nclasses == 0, ml = info->multilabel;
    char **names = NULL;
    int64_t cap = 0;
    int *lab = NULL;       /* multi-label sets with known classes: all labels in a row, */
    int64_t *off = NULL;   /* record i's from off[i] to off[i+1] */
    int64_t nlab = 0, lab_cap = 0;
    if (tl_feat_info_copy(&s->info, info, e))
        goto out;
    for (;;) {
        if (s->n == cap) {
            /* Start from what about 1 MB holds, not 1024 rows: a header
             * claiming a huge dim must not reserve gigabytes before a
             * single record is read. Later growth follows records read. */
            int64_t first = ((int64_t)1 << 18) / dim;
            int64_t nc = cap ? cap * 2 : first < 1 ? 1 : first > 1024 ? 1024 : first;
            float *nx = realloc(s->X, (size_t)nc * (size_t)dim * sizeof(float));
            if (nx)
                s->X = nx;
            int *ny = nx ? realloc(s->y, (size_t)nc * sizeof(int)) : NULL;
            if (ny)
                s->y = ny;
            char **np = ny ? realloc(s->paths, (size_t)nc * sizeof(char *)) : NULL;
            if (np)
                s->paths = np;
            char **nn = np ? realloc(names, (size_t)nc * sizeof(char *)) : NULL;
            if (nn)
                names = nn;
            int64_t *no = nn ? realloc(off, ((size_t)nc + 1) * sizeof(int64_t)) : NULL;
            if (no)
                off = no;
            if (!no) {
                tl_fail(e, "out of memory loading features");
                goto out;
            }
            cap = nc;
        }
        const char *p, *ln;
        int label;
        int got = tl_featr_next(r, &p, &ln, &label, s->X + (size_t)s->n * (size_t)dim, e);
        if (got < 0)
            goto out;
        if (got == 0)
            break;
        s->paths[s->n] = tl_strdup(p);
        names[s->n] = need_names && ln && *ln && !(ml && label < 0) ? tl_strdup(ln) : NULL;
        s->y[s->n] = label;
        off[s->n] = nlab;
        if (ml && !need_names && label > 0) {
            int nl;
            const int *ls = tl_featr_labels(r, &nl);
            if (nlab + nl > lab_cap) {
                int64_t nc = (nlab + nl) * 2 + 64;
                int *nlb = realloc(lab, (size_t)nc * sizeof *nlb);
                if (!nlb) {
                    tl_fail(e, "out of memory loading features");
                    goto out;
                }
                lab = nlb;
                lab_cap = nc;
            }
            memcpy(lab + nlab, ls, (size_t)nl * sizeof *ls);
            nlab += nl;
        }
        s->n++;
        off[s->n] = nlab;
        if (!s->paths[s->n - 1]) {
            tl_fail(e, "out of memory");
            goto out;
        }
    }
    if (ml && !off && !(off = calloc(1, sizeof *off))) {
        tl_fail(e, "out of memory");
        goto out;
    }
    rc = need_names ? classes_from_names(s, names, e) : ml ? fill_Y(s, lab, off, e) : 0;
    if (!rc && s->info.nshards)
        rc = canonical_order(s, e);
out:
    free(lab);
    free(off);
    for (int64_t i = 0; names && i < s->n; i++)
        free(names[i]);
    free(names);
    tl_featr_close(r);
    if (rc)
        tl_featset_free(s);
    return rc;
}

void tl_featset_free(tl_featset *s)
{
    for (int64_t i = 0; s->paths && i < s->n; i++)
        free(s->paths[i]);
    free(s->paths);
    free(s->X);
    free(s->y);
    free(s->Y);
    tl_feat_info_free(&s->info);
    memset(s, 0, sizeof *s);
}
