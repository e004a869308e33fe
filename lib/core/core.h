/* core: errors, aligned allocation, seeded RNG, thread pool.
 * The library never prints and never exits: a failing function returns
 * a negative value and writes a one-line reason into the caller's tl_err. */
#ifndef TL_CORE_H
#define TL_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

/* tl_err, TL_ERR_FAIL (bad or unreadable data, exit 1 in the tools) and
 * TL_ERR_ARG (a caller's argument that does not fit: an unknown layer
 * name, a bad spec; exit 2) are part of the public header. */
#include "tl.h"

#define TL_ALIGN 64

/* Formats the reason into e (if not NULL) and returns -1, so a caller can
 * write `return tl_fail(e, "...")`. */
int tl_fail(tl_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for an argument that does not fit (kind TL_ERR_ARG). */
int tl_fail_arg(tl_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes an existing message, e.g. with the file name being read; the
 * kind stays. */
int tl_fail_prefix(tl_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 64-byte aligned, zero-filled; NULL on overflow or exhaustion. */
void *tl_alloc(size_t bytes);
void *tl_alloc_array(size_t count, size_t size);
/* 64-byte aligned, not filled: only for a buffer its user writes whole
 * before reading it. Zero-filling touched every page of it once on the
 * allocating thread (large buffers: the page faults of first touch, which
 * then happen on the threads that fill it, at the time they fill it). */
void *tl_alloc_array_raw(size_t count, size_t size);
void tl_free(void *p);
/* malloc that reports through e. */
void *tl_xalloc(size_t count, size_t size, tl_err *e);
char *tl_strdup(const char *s);

/* Log hook: the library reports warnings through this, never stdout. */
typedef void (*tl_log_fn)(void *user, const char *msg);
/* Progress hook: done of total units of work. */
typedef void (*tl_progress_fn)(void *user, int64_t done, int64_t total);

/* xoshiro256** seeded through splitmix64: fast, good quality, and the
 * same sequence on every platform for a given seed. */
typedef struct tl_rng {
    uint64_t s[4];
} tl_rng;

void tl_rng_seed(tl_rng *r, uint64_t seed);
uint64_t tl_rng_u64(tl_rng *r);
/* uniform in [0, 1) with 24 random bits */
float tl_rng_uniform(tl_rng *r);
/* uniform integer in [0, n) without modulo bias */
uint64_t tl_rng_below(tl_rng *r, uint64_t n);
float tl_rng_normal(tl_rng *r);
/* An independent stream: seed derived from (seed, stream). */
void tl_rng_seed_stream(tl_rng *r, uint64_t seed, uint64_t stream);
void tl_rng_shuffle(tl_rng *r, int64_t *a, int64_t n);

/* Persistent worker threads; tl_parallel_for splits [0, n) into chunks
 * of at least `grain` items and runs them on the pool and the caller.
 * A NULL pool runs serially. Calls must not nest on the same pool. */
typedef struct tl_pool tl_pool;
typedef void (*tl_range_fn)(void *ctx, int64_t begin, int64_t end, int worker);

tl_pool *tl_pool_new(int nthreads, tl_err *e);
void tl_pool_free(tl_pool *p);
int tl_pool_size(const tl_pool *p);
void tl_parallel_for(tl_pool *p, int64_t n, int64_t grain, tl_range_fn fn, void *ctx);
/* A barrier for the n threads of one team (the chunks of one
 * tl_parallel_for that run together): each waits until all n arrived.
 * It spins briefly, since team steps are short and the threads usually
 * all run, then yields the core to whoever holds it. Reusable at once;
 * n < 2 never waits. */
typedef struct tl_barrier {
    _Atomic int count, gen;
    int n;
} tl_barrier;
void tl_barrier_init(tl_barrier *b, int n);
void tl_barrier_wait(tl_barrier *b);
/* Number of online CPUs (at least 1). */
int tl_cpu_count(void);

/* Monotonic seconds. */
double tl_now(void);

#endif
