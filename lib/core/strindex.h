/* A sorted index over strings whose number an attacker controls (tensor
 * names, metadata keys, class names): duplicates are found and lookups
 * answered in O(L log n) for strings of length L, never by comparing every
 * string with every other. Sorting rather than hashing: no hash flooding,
 * no seed, and the same answer on every run. Memory: 4 bytes per string
 * (the strings themselves stay where they are). */
#ifndef TL_CORE_STRINDEX_H
#define TL_CORE_STRINDEX_H

#include "core.h"

typedef const char *(*tl_strindex_key_fn)(const void *ctx, int i);

typedef struct tl_strindex {
    int32_t *order; /* indices sorted by string, then by index */
    int n;
    tl_strindex_key_fn key;
    const void *ctx;
} tl_strindex;

/* Indexes the n strings key(ctx, 0..n-1); ctx and the strings are
 * borrowed and must not move while the index is used. When two are equal
 * and dup is not NULL, dup[0] < dup[1] are the indices of the pair whose
 * second member comes first in input order, and the function returns 1
 * (the index is still usable: lookups find the first). 0 otherwise; -1
 * when out of memory. */
int tl_strindex_build(tl_strindex *ix, int n, tl_strindex_key_fn key, const void *ctx, int dup[2], tl_err *e);
/* The same over an array of n C strings. */
int tl_strindex_build_strings(tl_strindex *ix, const char *const *s, int n, int dup[2], tl_err *e);
/* The smallest index of a string equal to s, or -1. */
int tl_strindex_find(const tl_strindex *ix, const char *s);
void tl_strindex_free(tl_strindex *ix);

#endif
