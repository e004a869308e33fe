#include "features.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* For TSV files without a #classes line: label names become classes in
 * sorted order, as for image folders. */
static int classes_from_names(tl_featset *s, char **names, tl_err *e)
{
    tl_strings_free(s->info.classes, s->info.nclasses);
    s->info.classes = NULL;
    s->info.nclasses = 0;
    char **sorted = malloc(((size_t)s->n + 1) * sizeof *sorted);
    if (!sorted)
        return tl_fail(e, "out of memory");
    int64_t k = 0;
    for (int64_t i = 0; i < s->n; i++)
        if (names[i])
            sorted[k++] = names[i];
    qsort(sorted, (size_t)k, sizeof *sorted, cmp_str);
    int nc = 0;
    for (int64_t i = 0; i < k; i++)
        if (i == 0 || strcmp(sorted[i], sorted[i - 1]))
            sorted[nc++] = sorted[i];
    s->info.classes = calloc((size_t)nc + 1, sizeof(char *));
    if (!s->info.classes) {
        free(sorted);
        return tl_fail(e, "out of memory");
    }
    for (int c = 0; c < nc; c++)
        if (!(s->info.classes[c] = tl_strdup(sorted[c]))) {
            free(sorted);
            return tl_fail(e, "out of memory");
        } else {
            s->info.nclasses = c + 1;
        }
    for (int64_t i = 0; i < s->n; i++)
        if (names[i]) {
            char **hit = bsearch(&names[i], s->info.classes, (size_t)nc, sizeof(char *), cmp_str);
            s->y[i] = (int)(hit - s->info.classes);
        }
    free(sorted);
    return 0;
}

int tl_featset_load(const char *path, tl_featset *s, tl_err *e)
{
    memset(s, 0, sizeof *s);
    tl_featr *r;
    if (tl_featr_open(&r, path, e))
        return -1;
    const tl_feat_info *info = tl_featr_info(r);
    int dim = info->dim, rc = -1, need_names = info->nclasses == 0;
    char **names = NULL;
    int64_t cap = 0;
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
            if (!nn) {
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
        names[s->n] = need_names && ln && *ln ? tl_strdup(ln) : NULL;
        s->y[s->n] = label;
        s->n++;
        if (!s->paths[s->n - 1]) {
            tl_fail(e, "out of memory");
            goto out;
        }
    }
    rc = need_names ? classes_from_names(s, names, e) : 0;
out:
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
    tl_feat_info_free(&s->info);
    memset(s, 0, sizeof *s);
}
