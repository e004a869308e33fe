#include "strindex.h"

#include <stdlib.h>
#include <string.h>

static int cmp_order(const void *a, const void *b, void *ctx)
{
    const tl_strindex *ix = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    int c = strcmp(ix->key(ix->ctx, x), ix->key(ix->ctx, y));
    return c ? c : (x > y) - (x < y);
}

int tl_strindex_build(tl_strindex *ix, int n, tl_strindex_key_fn key, const void *ctx, int dup[2], tl_err *e)
{
    ix->order = NULL;
    ix->n = 0;
    ix->key = key;
    ix->ctx = ctx;
    if (n <= 0)
        return 0;
    ix->order = malloc((size_t)n * sizeof *ix->order);
    if (!ix->order)
        return tl_fail(e, "out of memory indexing %d names", n);
    for (int i = 0; i < n; i++)
        ix->order[i] = i;
    /* glibc's qsort is a merge sort: O(n log n) comparisons whatever the input */
    qsort_r(ix->order, (size_t)n, sizeof *ix->order, cmp_order, ix);
    ix->n = n;
    /* Equal strings sit together, in input order: of each run, the first
     * two; of all runs, the one whose second member comes first. */
    int found = 0;
    for (int a = 0; dup && a < n;) {
        const char *s = key(ctx, ix->order[a]);
        int b = a + 1;
        while (b < n && !strcmp(key(ctx, ix->order[b]), s))
            b++;
        if (b - a > 1 && (!found || ix->order[a + 1] < dup[1])) {
            dup[0] = ix->order[a];
            dup[1] = ix->order[a + 1];
            found = 1;
        }
        a = b;
    }
    return found;
}

static const char *key_of_strings(const void *ctx, int i) { return ((const char *const *)ctx)[i]; }

int tl_strindex_build_strings(tl_strindex *ix, const char *const *s, int n, int dup[2], tl_err *e)
{
    return tl_strindex_build(ix, n, key_of_strings, s, dup, e);
}

int tl_strindex_find(const tl_strindex *ix, const char *s)
{
    int lo = 0, hi = ix->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strcmp(ix->key(ix->ctx, ix->order[mid]), s) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ix->n && !strcmp(ix->key(ix->ctx, ix->order[lo]), s) ? ix->order[lo] : -1;
}

void tl_strindex_free(tl_strindex *ix)
{
    free(ix->order);
    ix->order = NULL;
    ix->n = 0;
}
