#include "sampler.h"

#include <stdlib.h>
#include <string.h>

int tl_sampler_init(tl_sampler *s, int kind, const tl_source *src, const int64_t *ids, int64_t n, tl_err *e)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->n = n;
    if (kind != TL_SAMPLER_BALANCED)
        return 0;
    int groups = 0, ml = tl_source_multilabel(src);
    for (int64_t j = 0; j < n; j++) {
        int nl;
        const int *ls = tl_source_labels(src, ids[j], &nl);
        for (int t = 0; t < nl; t++)
            groups = ls[t] + 1 > groups ? ls[t] + 1 : groups;
    }
    int empty = groups; /* multi-label images without a label */
    int64_t *count = calloc((size_t)groups + 2, sizeof *count);
    s->cum = malloc(((size_t)n + 1) * sizeof *s->cum);
    if (!count || !s->cum) {
        free(count);
        tl_sampler_free(s);
        return tl_fail(e, "out of memory");
    }
    for (int64_t j = 0; j < n; j++) {
        int nl;
        const int *ls = tl_source_labels(src, ids[j], &nl);
        for (int t = 0; t < nl; t++)
            count[ls[t]]++;
        if (ml && nl == 0)
            count[empty]++;
    }
    double total = 0;
    for (int64_t j = 0; j < n; j++) {
        int nl;
        const int *ls = tl_source_labels(src, ids[j], &nl);
        double w = ml && nl == 0 ? 1.0 / (double)count[empty] : 0;
        for (int t = 0; t < nl; t++)
            w = 1.0 / (double)count[ls[t]] > w ? 1.0 / (double)count[ls[t]] : w;
        total += w;
        s->cum[j] = total;
    }
    free(count);
    return 0;
}

void tl_sampler_free(tl_sampler *s)
{
    free(s->cum);
    memset(s, 0, sizeof *s);
}

void tl_sampler_order(const tl_sampler *s, uint64_t seed, int epoch, const int64_t *ids, int64_t n, int64_t *order)
{
    tl_rng r;
    if (s->kind != TL_SAMPLER_BALANCED) {
        memcpy(order, ids, (size_t)n * sizeof *order);
        tl_rng_seed_stream(&r, seed, 0xE90C + (uint64_t)epoch);
        tl_rng_shuffle(&r, order, n);
        return;
    }
    tl_rng_seed_stream(&r, seed, 0xBA1A + (uint64_t)epoch);
    double total = s->cum[n - 1];
    for (int64_t k = 0; k < n; k++) {
        /* 53 random bits: a uniform double in [0, total) */
        double u = (double)(tl_rng_u64(&r) >> 11) * (1.0 / 9007199254740992.0) * total;
        int64_t lo = 0, hi = n - 1;
        while (lo < hi) { /* the first cumulative weight above u */
            int64_t mid = lo + (hi - lo) / 2;
            if (s->cum[mid] > u)
                hi = mid;
            else
                lo = mid + 1;
        }
        order[k] = ids[lo];
    }
}
