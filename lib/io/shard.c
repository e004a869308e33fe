#include "shard.h"

#include <stdlib.h>
#include <string.h>

int tl_shard_parse(const char *s, int *k, int *n)
{
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || *end != '/' || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    const char *t = end + 1;
    long b = strtol(t, &end, 10);
    if (end == t || *end || *t == '-' || *t == '+' || *t == ' ' || a < 1 || b < 1 || a > b || b > TL_SHARD_MAX)
        return -1;
    *k = (int)a;
    *n = (int)b;
    return 0;
}

int tl_shard_of(const char *key, size_t len, int n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    return (int)(h % (uint64_t)n) + 1;
}

/* End of string first, then '/', then every other byte. */
static int rank(unsigned char c) { return c == 0 ? 0 : c == '/' ? 1 : c + 2; }

int tl_path_cmp(const char *a, const char *b)
{
    const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
    while (*p && *p == *q)
        p++, q++;
    return rank(*p) - rank(*q);
}

const char *tl_shard_key(const char *path, const char *prefix)
{
    size_t n = prefix ? strlen(prefix) : 0;
    while (n > 1 && prefix[n - 1] == '/')
        n--;
    if (!n || strncmp(path, prefix, n) || path[n] != '/')
        return path;
    path += n;
    while (*path == '/')
        path++;
    return path;
}


/* A merge sort (stable: two equal paths keep their order). */
static void sort_idx(const char *const *paths, int64_t *a, int64_t *tmp, int64_t n)
{
    if (n < 2)
        return;
    int64_t h = n / 2;
    sort_idx(paths, a, tmp, h);
    sort_idx(paths, a + h, tmp, n - h);
    int64_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = tl_path_cmp(paths[a[j]], paths[a[i]]) < 0 ? a[j++] : a[i++];
    while (i < h)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, (size_t)n * sizeof *a);
}

int tl_path_sort(const char *const *paths, int64_t *idx, int64_t n, tl_err *e)
{
    if (n < 2)
        return 0;
    int64_t *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp)
        return tl_fail(e, "out of memory");
    sort_idx(paths, idx, tmp, n);
    free(tmp);
    return 0;
}

int tl_shard_plan(const tl_dataset *d, const char *prefix, int k, int n, int (*skip)(void *user, const char *path),
                  void *user, int64_t **idx, int64_t *count, tl_err *e)
{
    *idx = NULL;
    *count = 0;
    int64_t *a = malloc(((size_t)d->n + 1) * sizeof *a), m = 0;
    if (!a)
        return tl_fail(e, "out of memory");
    for (int64_t i = 0; i < d->n; i++) {
        const char *p = d->items[i].path;
        if (n > 0) {
            const char *key = tl_shard_key(p, prefix);
            if (tl_shard_of(key, strlen(key), n) != k)
                continue;
        }
        if (skip && skip(user, p))
            continue;
        a[m++] = i;
    }
    if (n > 0 && m > 1) {
        const char **paths = malloc((size_t)d->n * sizeof *paths);
        int rc = paths ? 0 : tl_fail(e, "out of memory");
        for (int64_t i = 0; paths && i < d->n; i++)
            paths[i] = d->items[i].path;
        if (!rc)
            rc = tl_path_sort(paths, a, m, e);
        free(paths);
        if (rc) {
            free(a);
            return -1;
        }
    }
    *idx = a;
    *count = m;
    return 0;
}
