#include "prototype.h"
#include "linear.h"
#include "neighbours.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int tl_knn_default_neighbours(const int *y, int64_t n, int k)
{
    int64_t *count = calloc((size_t)k + 1, sizeof *count), least = 5;
    if (!count)
        return 1;
    for (int64_t i = 0; i < n; i++)
        if (y[i] >= 0 && y[i] < k)
            count[y[i]]++;
    for (int c = 0; c < k; c++)
        if (count[c] && count[c] < least)
            least = count[c];
    free(count);
    return (int)least;
}

int tl_proto_init(tl_proto *p, int kind, int metric, int neighbours, int d, int k, int64_t n, float *V, int *labels,
                  tl_err *e)
{
    memset(p, 0, sizeof *p);
    *p = (tl_proto){kind, metric, neighbours, d, k, n, V, labels, NULL, NULL};
    p->scratch = malloc(((size_t)n + 1) * sizeof *p->scratch);
    p->q = tl_alloc_array((size_t)d, sizeof(float));
    if (!p->scratch || !p->q) {
        tl_proto_free(p);
        return tl_fail(e, "out of memory");
    }
    return 0;
}

void tl_proto_free(tl_proto *p)
{
    tl_free(p->V);
    free(p->labels);
    free(p->scratch);
    tl_free(p->q);
    memset(p, 0, sizeof *p);
}

int tl_proto_fit(const float *X, const int *y, int64_t n, int d, int k, int kind, int metric, int neighbours,
                 tl_proto *out, tl_err *e)
{
    memset(out, 0, sizeof *out);
    if (n < 1 || d < 1 || k < 1)
        return tl_fail(e, "no training vectors");
    int64_t nv = kind == TL_HEAD_NCM ? k : n;
    float *V = tl_alloc_array((size_t)nv * d, sizeof(float));
    int *labels = malloc(((size_t)nv + 1) * sizeof *labels);
    double *sum = kind == TL_HEAD_NCM ? calloc((size_t)k * d, sizeof *sum) : NULL;
    int64_t *count = kind == TL_HEAD_NCM ? calloc((size_t)k, sizeof *count) : NULL;
    float *row = tl_alloc_array((size_t)d, sizeof(float));
    int rc = 0;
    if (!V || !labels || !row || (kind == TL_HEAD_NCM && (!sum || !count))) {
        rc = tl_fail(e, "out of memory for %lld stored vectors", (long long)nv);
        goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        memcpy(row, X + (size_t)i * d, (size_t)d * sizeof(float));
        if (metric == TL_METRIC_COSINE)
            tl_l2_normalise(row, d);
        if (kind == TL_HEAD_KNN) {
            memcpy(V + (size_t)i * d, row, (size_t)d * sizeof(float));
            labels[i] = y[i];
            continue;
        }
        count[y[i]]++;
        for (int j = 0; j < d; j++)
            sum[(size_t)y[i] * d + j] += row[j];
    }
    for (int c = 0; kind == TL_HEAD_NCM && c < k; c++) {
        if (!count[c]) {
            rc = tl_fail(e, "class %d has no training vector to average", c);
            goto out;
        }
        labels[c] = c;
        for (int j = 0; j < d; j++)
            V[(size_t)c * d + j] = (float)(sum[(size_t)c * d + j] / (double)count[c]);
    }
    if (kind == TL_HEAD_KNN && neighbours <= 0)
        neighbours = tl_knn_default_neighbours(y, n, k);
    if (kind == TL_HEAD_KNN && neighbours > n)
        neighbours = (int)n;
    rc = tl_proto_init(out, kind, metric, kind == TL_HEAD_KNN ? neighbours : 0, d, k, nv, V, labels, e);
    V = NULL;
    labels = NULL;
out:
    tl_free(V);
    free(labels);
    free(sum);
    free(count);
    tl_free(row);
    return rc;
}

/* Similarity of the prepared query (p->q) to stored vector i. */
static double similarity(const tl_proto *p, int64_t i)
{
    const float *v = p->V + (size_t)i * p->d;
    double a[4] = {0, 0, 0, 0};
    int j = 0, d = p->d;
    if (p->metric == TL_METRIC_COSINE) {
        for (; j + 4 <= d; j += 4)
            for (int u = 0; u < 4; u++)
                a[u] += (double)p->q[j + u] * v[j + u];
        for (; j < d; j++)
            a[0] += (double)p->q[j] * v[j];
        return (a[0] + a[1]) + (a[2] + a[3]);
    }
    for (; j + 4 <= d; j += 4)
        for (int u = 0; u < 4; u++) {
            double df = (double)p->q[j + u] - v[j + u];
            a[u] += df * df;
        }
    for (; j < d; j++) {
        double df = (double)p->q[j] - v[j];
        a[0] += df * df;
    }
    return -sqrt((a[0] + a[1]) + (a[2] + a[3]));
}

void tl_proto_scores(const tl_proto *p, const float *x, float *out)
{
    memcpy(p->q, x, (size_t)p->d * sizeof(float));
    if (p->metric == TL_METRIC_COSINE)
        tl_l2_normalise(p->q, p->d);
    if (p->kind == TL_HEAD_NCM) {
        for (int c = 0; c < p->k; c++)
            out[c] = (float)similarity(p, c);
        return;
    }
    for (int64_t i = 0; i < p->n; i++)
        p->scratch[i] = similarity(p, i);
    for (int c = 0; c < p->k; c++)
        out[c] = 0;
    /* the neighbours one by one: the best remaining score, the lower index on ties */
    for (int r = 0; r < p->neighbours; r++) {
        int64_t b = -1;
        for (int64_t i = 0; i < p->n; i++)
            if (!isnan(p->scratch[i]) && (b < 0 || p->scratch[i] > p->scratch[b]))
                b = i;
        if (b < 0)
            break;
        out[p->labels[b]] += 1.0f / (float)p->neighbours;
        p->scratch[b] = NAN;
    }
}
