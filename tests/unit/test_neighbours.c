/* Streaming nearest neighbours against a brute-force double-precision
 * search: the same k best for cosine and Euclidean, whatever the block
 * sizes the index arrives in and the thread count (bit for bit), ties
 * broken by the lower index, fewer vectors than k, zero vectors, and the
 * bookkeeping a streaming caller uses (entered, held). */
#include "check.h"
#include "train/neighbours.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { D = 37, M = 9, N = 1000, K = 7 };

static double ref_score(const float *q, const float *v, int metric)
{
    double dot = 0, qq = 0, vv = 0, dd = 0;
    for (int j = 0; j < D; j++) {
        dot += (double)q[j] * v[j];
        qq += (double)q[j] * q[j];
        vv += (double)v[j] * v[j];
        dd += ((double)q[j] - v[j]) * ((double)q[j] - v[j]);
    }
    if (metric == TL_METRIC_EUCLIDEAN)
        return -sqrt(dd);
    return qq > 0 && vv > 0 ? dot / sqrt(qq * vv) : 0;
}

/* The reference k best of query q: scores of all, selection by (score, -index). */
static void ref_topk(const float *Q, const float *X, int n, int q, int metric, tl_hit *out, int *count)
{
    tl_hit *all = malloc(sizeof *all * (size_t)n);
    for (int i = 0; i < n; i++)
        all[i] = (tl_hit){ref_score(Q + q * D, X + i * D, metric), i};
    int c = 0;
    for (int r = 0; r < K && r < n; r++) { /* selection sort of the best K */
        int b = -1;
        for (int i = 0; i < n; i++) {
            if (all[i].index < 0)
                continue;
            if (b < 0 || all[i].score > all[b].score || (all[i].score == all[b].score && all[i].index < all[b].index))
                b = i;
        }
        out[c++] = all[b];
        all[b].index = -1;
    }
    *count = c;
    free(all);
}

static tl_nn *run(const float *Q, const float *X, int n, int metric, int threads, const int *blocks, int nblocks,
                  tl_err *e)
{
    tl_pool *pool = tl_pool_new(threads, e);
    tl_nn *s = pool ? tl_nn_new(Q, M, D, K, metric, tl_pool_size(pool), e) : NULL;
    unsigned char *entered = malloc((size_t)n + 1);
    int64_t at = 0;
    for (int b = 0; s && at < n; b++) {
        int64_t nb = blocks[b % nblocks];
        if (nb > n - at)
            nb = n - at;
        if (tl_nn_add(s, X + at * D, nb, at, pool, entered, e)) {
            tl_nn_free(s);
            s = NULL;
            break;
        }
        /* every vector marked entered is held by some query right now */
        int64_t *held = malloc(sizeof *held * M * K);
        int64_t nh = tl_nn_held(s, held);
        for (int64_t j = 0; j < nb; j++) {
            int in = 0;
            for (int64_t h = 0; h < nh; h++)
                in |= held[h] == at + j;
            CHECK(in == entered[j]);
        }
        for (int64_t h = 1; h < nh; h++)
            CHECK(held[h] > held[h - 1]);
        free(held);
        at += nb;
    }
    free(entered);
    tl_pool_free(pool);
    return s;
}

static void test_against_brute_force(void)
{
    tl_rng r;
    tl_rng_seed(&r, 5);
    float *X = malloc(sizeof(float) * N * D), *Q = malloc(sizeof(float) * M * D);
    for (int i = 0; i < N * D; i++)
        X[i] = tl_rng_normal(&r) + (i % D == 0 ? 2.0f : 0.0f);
    for (int i = 0; i < M * D; i++)
        Q[i] = tl_rng_normal(&r);
    memcpy(X + 500 * D, X + 100 * D, sizeof(float) * D); /* a duplicate: ties go to the lower index */
    memcpy(Q, X + 100 * D, sizeof(float) * D);           /* a query that is an index vector */
    memset(X + 7 * D, 0, sizeof(float) * D);             /* a zero vector */
    tl_err e = {0};
    const int blocks1[] = {N}, blocks2[] = {1, 300, 17, 256, 1000};
    for (int metric = TL_METRIC_COSINE; metric <= TL_METRIC_EUCLIDEAN; metric++) {
        tl_nn *a = run(Q, X, N, metric, 1, blocks1, 1, &e), *b = run(Q, X, N, metric, 3, blocks2, 5, &e);
        CHECK_MSG(a && b, "%s", e.msg);
        if (!a || !b)
            continue;
        double worst = 0;
        for (int q = 0; q < M; q++) {
            tl_hit ha[K], hb[K], hr[K];
            int na, nb, nr;
            tl_nn_results(a, q, ha, &na);
            tl_nn_results(b, q, hb, &nb);
            ref_topk(Q, X, N, q, metric, hr, &nr);
            CHECK(na == K && nb == K && nr == K);
            CHECK_MSG(!memcmp(ha, hb, sizeof ha), "metric %d query %d: block sizes or threads changed the result",
                      metric, q);
            for (int j = 0; j < K; j++) {
                worst = fmax(worst, fabs(ha[j].score - hr[j].score));
                CHECK_MSG(ha[j].index == hr[j].index, "metric %d query %d rank %d: index %lld, reference %lld",
                          metric, q, j, (long long)ha[j].index, (long long)hr[j].index);
            }
        }
        CHECK_MSG(worst < (metric == TL_METRIC_COSINE ? 1e-5 : 1e-9), "scores off by %g", worst);
        /* query 0 is index vector 100, duplicated at 500: both at the top, 100 first */
        tl_hit h[K];
        int nh;
        tl_nn_results(a, 0, h, &nh);
        CHECK(h[0].index == 100 && h[1].index == 500);
        CHECK(metric == TL_METRIC_COSINE ? fabs(h[0].score - 1) < 1e-6 : h[0].score == 0);
        tl_nn_free(a);
        tl_nn_free(b);
    }
    /* fewer vectors than k */
    tl_nn *s = tl_nn_new(Q, M, D, K, TL_METRIC_EUCLIDEAN, 1, &e);
    CHECK(s && tl_nn_add(s, X, 3, 0, NULL, NULL, &e) == 0);
    tl_hit h[K];
    int nh;
    tl_nn_results(s, 2, h, &nh);
    CHECK(nh == 3 && h[0].score >= h[1].score && h[1].score >= h[2].score);
    tl_nn_free(s);
    /* a zero query under cosine scores 0 against everything */
    float zq[D] = {0};
    s = tl_nn_new(zq, 1, D, 2, TL_METRIC_COSINE, 1, &e);
    CHECK(s && tl_nn_add(s, X, 10, 0, NULL, NULL, &e) == 0);
    tl_nn_results(s, 0, h, &nh);
    CHECK(nh == 2 && h[0].score == 0 && h[0].index == 0 && h[1].index == 1);
    tl_nn_free(s);
    CHECK(tl_nn_new(Q, 0, D, K, TL_METRIC_COSINE, 1, &e) == NULL);
    free(X);
    free(Q);
}

int main(void)
{
    test_against_brute_force();
    return check_finish("neighbours");
}
