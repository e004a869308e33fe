#include "search.h"

#include <stdlib.h>
#include <string.h>

/* What is known about a vector some query holds. */
typedef struct kept {
    int64_t index;
    char *path, *label;
} kept;

struct tl_search {
    tl_nn *nn;
    tl_pool *pool;
    int m, d, k;
    int64_t block, count;
    float *X;                  /* block x d */
    char **paths, **labels;    /* the block's, until it is scored */
    unsigned char *entered;
    kept *keep;                /* ascending index */
    int64_t nkeep, keep_cap;
    int64_t *held;             /* m x k */
};

tl_search *tl_search_new(const float *queries, int m, int d, int k, int metric, int64_t block, tl_pool *pool,
                         tl_err *e)
{
    tl_search *s = calloc(1, sizeof *s);
    if (!s) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    if (block <= 0) {
        block = ((int64_t)16 << 20) / ((int64_t)d * 4);
        block = block < 256 ? 256 : block;
    }
    s->m = m, s->d = d, s->k = k, s->block = block, s->pool = pool;
    s->X = tl_alloc_array((size_t)block * d, sizeof(float));
    s->paths = calloc((size_t)block, sizeof *s->paths);
    s->labels = calloc((size_t)block, sizeof *s->labels);
    s->entered = malloc((size_t)block);
    s->held = malloc(((size_t)m * k + 1) * sizeof *s->held);
    if (!s->X || !s->paths || !s->labels || !s->entered || !s->held) {
        tl_search_free(s);
        tl_fail(e, "out of memory for a block of %lld vectors of %d values", (long long)block, d);
        return NULL;
    }
    if (!(s->nn = tl_nn_new(queries, m, d, k, metric, tl_pool_size(pool), e))) {
        tl_search_free(s);
        return NULL;
    }
    return s;
}

static void free_block_strings(tl_search *s)
{
    for (int64_t i = 0; i < s->block; i++) {
        free(s->paths[i]);
        free(s->labels[i]);
        s->paths[i] = s->labels[i] = NULL;
    }
}

void tl_search_free(tl_search *s)
{
    if (!s)
        return;
    tl_nn_free(s->nn);
    if (s->paths && s->labels)
        free_block_strings(s);
    free(s->paths);
    free(s->labels);
    for (int64_t i = 0; i < s->nkeep; i++) {
        free(s->keep[i].path);
        free(s->keep[i].label);
    }
    free(s->keep);
    tl_free(s->X);
    free(s->entered);
    free(s->held);
    free(s);
}

/* Scores the block, keeps the paths and labels that entered, forgets the
 * ones no query holds any more. */
static int flush(tl_search *s, int64_t nb, tl_err *e)
{
    int64_t first = s->count - nb;
    if (tl_nn_add(s->nn, s->X, nb, first, s->pool, s->entered, e))
        return -1;
    for (int64_t j = 0; j < nb; j++) {
        if (!s->entered[j])
            continue;
        if (s->nkeep == s->keep_cap) {
            int64_t nc = s->keep_cap ? s->keep_cap * 2 : 64;
            kept *nk = realloc(s->keep, (size_t)nc * sizeof *nk);
            if (!nk)
                return tl_fail(e, "out of memory");
            s->keep = nk;
            s->keep_cap = nc;
        }
        s->keep[s->nkeep++] = (kept){first + j, s->paths[j], s->labels[j]};
        s->paths[j] = s->labels[j] = NULL;
    }
    free_block_strings(s);
    /* both lists ascend: one merge pass keeps what is held */
    int64_t nh = tl_nn_held(s->nn, s->held), h = 0, w = 0;
    for (int64_t i = 0; i < s->nkeep; i++) {
        while (h < nh && s->held[h] < s->keep[i].index)
            h++;
        if (h < nh && s->held[h] == s->keep[i].index) {
            s->keep[w++] = s->keep[i];
        } else {
            free(s->keep[i].path);
            free(s->keep[i].label);
        }
    }
    s->nkeep = w;
    return 0;
}

int tl_search_run(tl_search *s, tl_featr *r, const char *name, tl_err *e)
{
    const tl_feat_info *info = tl_featr_info(r);
    if (info->dim != s->d)
        return tl_fail(e, "%s: %d values per vector, the queries have %d", name, info->dim, s->d);
    int64_t nb = 0;
    for (;;) {
        const char *path, *label;
        int lab;
        int got = tl_featr_next(r, &path, &label, &lab, s->X + nb * s->d, e);
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        s->paths[nb] = tl_strdup(path);
        s->labels[nb] = tl_strdup(label ? label : "");
        if (!s->paths[nb] || !s->labels[nb])
            return tl_fail(e, "out of memory");
        nb++;
        s->count++;
        if (nb == s->block) {
            if (flush(s, nb, e))
                return -1;
            nb = 0;
        }
    }
    return nb ? flush(s, nb, e) : 0;
}

int64_t tl_search_count(const tl_search *s) { return s->count; }

void tl_search_results(const tl_search *s, int q, tl_search_hit *out, int *n)
{
    tl_hit *h = malloc(((size_t)s->k + 1) * sizeof *h);
    *n = 0;
    if (!h)
        return; /* out of memory: no hits rather than a crash */
    tl_nn_results(s->nn, q, h, n);
    for (int i = 0; i < *n; i++) {
        int64_t lo = 0, hi = s->nkeep - 1;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (s->keep[mid].index < h[i].index)
                lo = mid + 1;
            else
                hi = mid;
        }
        out[i] = (tl_search_hit){h[i].score, h[i].index, s->keep[lo].path, s->keep[lo].label};
    }
    free(h);
}
