/* Sharded extraction (tl-extract --shard K/N): which images a shard takes,
 * and the order its records are written in, both independent of the
 * machine, the thread count and the order the inputs were listed in.
 *
 * An image belongs to shard 1 + FNV-1a-64(key) mod N, key being its path
 * relative to the data (the part after the class-folder root or the
 * manifest's folder; a path given absolute or on standard input as it is
 * written). A hash, not a position in a sorted list, so an image keeps its
 * shard when the data set grows (--update on shards adds no duplicates).
 *
 * Canonical order: paths compared component by component ('/' sorts
 * before every other byte), which is the order of a class-folder data
 * set. A shard writes its records in it; a reader restores it across
 * shards (tl_featset_load). */
#ifndef TL_IO_SHARD_H
#define TL_IO_SHARD_H

#include "dataset.h"

#define TL_SHARD_MAX 1000000

/* "K/N" with 1 <= K <= N <= TL_SHARD_MAX. */
int tl_shard_parse(const char *s, int *k, int *n);
/* The shard (1..n) of a key. */
int tl_shard_of(const char *key, size_t len, int n);
/* <0, 0, >0 in canonical order. */
int tl_path_cmp(const char *a, const char *b);
/* Sorts idx (n indices into paths) into canonical order, stably. */
int tl_path_sort(const char *const *paths, int64_t *idx, int64_t n, tl_err *e);
/* The key of a data-set path: prefix (may be NULL) and the '/'s after it
 * removed when the path starts with prefix + '/'. */
const char *tl_shard_key(const char *path, const char *prefix);

/* The items of d to extract, as indices into d->items, in *idx (malloc'd,
 * *count of them): shard k of n (n 0: all, in data-set order; else that
 * shard's, in canonical order), without those for which skip(user, path)
 * is true (skip may be NULL). */
int tl_shard_plan(const tl_dataset *d, const char *prefix, int k, int n, int (*skip)(void *user, const char *path),
                  void *user, int64_t **idx, int64_t *count, tl_err *e);

#endif
