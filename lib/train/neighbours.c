#include "neighbours.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Index vectors scored per GEMM call: fixed, so a score never depends on
 * how a block was shared among threads. */
#define PIECE 256

/* The worse of two hits: lower score, or on equal scores the higher index. */
static int worse(const tl_hit *a, const tl_hit *b)
{
    return a->score < b->score || (a->score == b->score && a->index > b->index);
}

/* A min-heap of the k best (the worst of them at the root). */
typedef struct heap {
    tl_hit *h;
    int n;
} heap;

static void heap_push(heap *hp, int k, double score, int64_t index)
{
    tl_hit x = {score, index};
    if (hp->n == k) {
        if (!worse(&hp->h[0], &x))
            return;
        /* replace the root and sift down */
        int i = 0;
        for (;;) {
            int l = 2 * i + 1, r = l + 1, m = i;
            const tl_hit *cur = m == i ? &x : &hp->h[m];
            if (l < k && worse(&hp->h[l], cur))
                m = l, cur = &hp->h[l];
            if (r < k && worse(&hp->h[r], cur))
                m = r;
            if (m == i)
                break;
            hp->h[i] = hp->h[m];
            i = m;
        }
        hp->h[i] = x;
    } else {
        int i = hp->n++;
        while (i > 0 && worse(&x, &hp->h[(i - 1) / 2])) {
            hp->h[i] = hp->h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        hp->h[i] = x;
    }
}

struct tl_nn {
    int m, d, k, metric, nworkers;
    float *q;          /* m x d, unit length for cosine */
    double *qq;        /* Euclidean: |q|^2 */
    heap *heaps;       /* m */
    tl_hit *hits;      /* m x k */
    tl_kws **ws;       /* per worker */
    /* the block in progress */
    float *block;      /* cosine: unit-length copy of the block */
    size_t block_cap;
    float *S;          /* m x nb scores (cosine) */
    size_t S_cap;
    const float *v;
    int64_t nb, first;
};

void tl_l2_normalise(float *v, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++)
        s += (double)v[j] * v[j];
    if (s <= 0)
        return;
    float inv = (float)(1.0 / sqrt(s));
    for (int j = 0; j < d; j++)
        v[j] *= inv;
}

tl_nn *tl_nn_new(const float *queries, int m, int d, int k, int metric, int nthreads, tl_err *e)
{
    if (m < 1 || d < 1 || k < 1) {
        tl_fail(e, "nearest neighbours: %d queries of %d values, k %d", m, d, k);
        return NULL;
    }
    tl_nn *s = calloc(1, sizeof *s);
    if (!s) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    s->m = m, s->d = d, s->k = k, s->metric = metric;
    s->nworkers = nthreads < 1 ? 1 : nthreads;
    s->q = tl_alloc_array((size_t)m * d, sizeof(float));
    s->qq = calloc((size_t)m, sizeof *s->qq);
    s->heaps = calloc((size_t)m, sizeof *s->heaps);
    s->hits = calloc((size_t)m * k, sizeof *s->hits);
    s->ws = calloc((size_t)s->nworkers, sizeof *s->ws);
    if (!s->q || !s->qq || !s->heaps || !s->hits || !s->ws) {
        tl_nn_free(s);
        tl_fail(e, "out of memory for %d queries", m);
        return NULL;
    }
    memcpy(s->q, queries, (size_t)m * d * sizeof(float));
    for (int i = 0; i < m; i++) {
        float *qi = s->q + (size_t)i * d;
        s->heaps[i].h = s->hits + (size_t)i * k;
        if (metric == TL_METRIC_COSINE)
            tl_l2_normalise(qi, d);
        for (int j = 0; j < d; j++)
            s->qq[i] += (double)qi[j] * qi[j];
    }
    for (int w = 0; metric == TL_METRIC_COSINE && w < s->nworkers; w++)
        if (!(s->ws[w] = tl_kws_new(e))) {
            tl_nn_free(s);
            return NULL;
        }
    return s;
}

void tl_nn_free(tl_nn *s)
{
    if (!s)
        return;
    for (int w = 0; s->ws && w < s->nworkers; w++)
        tl_kws_free(s->ws[w]);
    free(s->ws);
    tl_free(s->q);
    free(s->qq);
    free(s->heaps);
    free(s->hits);
    tl_free(s->block);
    tl_free(s->S);
    free(s);
}

/* Cosine: one piece of the block against every query, S[:, piece]. */
static void cosine_pieces(void *ctx, int64_t b, int64_t end, int worker)
{
    tl_nn *s = ctx;
    for (int64_t p = b; p < end; p++) {
        int64_t j0 = p * PIECE, nj = s->nb - j0 < PIECE ? s->nb - j0 : PIECE;
        tl_sgemm(s->ws[worker], 0, 1, s->m, (int)nj, s->d, 1.0f, s->q, s->d, s->block + j0 * s->d, s->d, 0.0f,
                 s->S + j0, (int)s->nb);
    }
}

/* Every query's heap takes the block's scores, in index order. */
static void push_queries(void *ctx, int64_t b, int64_t end, int worker)
{
    (void)worker;
    tl_nn *s = ctx;
    int d = s->d;
    for (int64_t i = b; i < end; i++) {
        heap *hp = &s->heaps[i];
        const float *qi = s->q + i * d;
        for (int64_t j = 0; j < s->nb; j++) {
            double score;
            if (s->metric == TL_METRIC_COSINE) {
                score = s->S[i * s->nb + j];
            } else {
                const float *v = s->v + j * d;
                double acc[4] = {0, 0, 0, 0};
                int t = 0;
                for (; t + 4 <= d; t += 4)
                    for (int u = 0; u < 4; u++) {
                        double df = (double)qi[t + u] - v[t + u];
                        acc[u] += df * df;
                    }
                for (; t < d; t++) {
                    double df = (double)qi[t] - v[t];
                    acc[0] += df * df;
                }
                score = -sqrt((acc[0] + acc[1]) + (acc[2] + acc[3]));
            }
            heap_push(hp, s->k, score, s->first + j);
        }
    }
}

int tl_nn_add(tl_nn *s, const float *vectors, int64_t n, int64_t first, tl_pool *pool, unsigned char *entered,
              tl_err *e)
{
    if (n <= 0)
        return 0;
    if (entered)
        memset(entered, 0, (size_t)n);
    s->v = vectors;
    s->nb = n;
    s->first = first;
    if (s->metric == TL_METRIC_COSINE) {
        size_t need = (size_t)n * s->d, sneed = (size_t)n * s->m;
        if (need > s->block_cap) {
            tl_free(s->block);
            if (!(s->block = tl_alloc_array(need, sizeof(float))))
                return tl_fail(e, "out of memory for a block of %lld vectors", (long long)n);
            s->block_cap = need;
        }
        if (sneed > s->S_cap) {
            tl_free(s->S);
            if (!(s->S = tl_alloc_array(sneed, sizeof(float))))
                return tl_fail(e, "out of memory for %d x %lld scores", s->m, (long long)n);
            s->S_cap = sneed;
        }
        memcpy(s->block, vectors, need * sizeof(float));
        for (int64_t j = 0; j < n; j++)
            tl_l2_normalise(s->block + j * s->d, s->d);
        tl_parallel_for(pool, (n + PIECE - 1) / PIECE, 1, cosine_pieces, s);
    }
    tl_parallel_for(pool, s->m, 1, push_queries, s);
    for (int i = 0; entered && i < s->m; i++) /* what this block left in the heaps */
        for (int j = 0; j < s->heaps[i].n; j++) {
            int64_t at = s->heaps[i].h[j].index - first;
            if (at >= 0 && at < n)
                entered[at] = 1;
        }
    return 0;
}

static int cmp_hit(const void *a, const void *b)
{
    const tl_hit *x = a, *y = b;
    return worse(y, x) ? -1 : worse(x, y) ? 1 : 0;
}

void tl_nn_results(const tl_nn *s, int q, tl_hit *out, int *count)
{
    const heap *hp = &s->heaps[q];
    memcpy(out, hp->h, (size_t)hp->n * sizeof *out);
    qsort(out, (size_t)hp->n, sizeof *out, cmp_hit);
    *count = hp->n;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t tl_nn_held(const tl_nn *s, int64_t *out)
{
    int64_t n = 0;
    for (int i = 0; i < s->m; i++)
        for (int j = 0; j < s->heaps[i].n; j++)
            out[n++] = s->heaps[i].h[j].index;
    qsort(out, (size_t)n, sizeof *out, cmp_i64);
    int64_t u = 0;
    for (int64_t i = 0; i < n; i++)
        if (u == 0 || out[i] != out[u - 1])
            out[u++] = out[i];
    return u;
}
