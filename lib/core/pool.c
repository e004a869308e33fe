/* A fixed set of worker threads that sleep on a condition variable between
 * jobs. Chunks are handed out through an atomic counter, so uneven work
 * balances itself; the calling thread works too, so a pool of N threads
 * has N-1 helpers. */
#include "core.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct tl_pool {
    int nthreads; /* including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    uint64_t generation;
    int busy;
    int stop;
    /* current job */
    tl_range_fn fn;
    void *ctx;
    int64_t n, chunk, nchunks;
    atomic_llong next;
};

typedef struct {
    tl_pool *pool;
    int id;
} worker_arg;

static void run_chunks(tl_pool *p, int worker)
{
    for (;;) {
        long long c = atomic_fetch_add(&p->next, 1);
        if (c >= p->nchunks)
            break;
        int64_t b = c * p->chunk;
        int64_t e = b + p->chunk;
        if (e > p->n)
            e = p->n;
        p->fn(p->ctx, b, e, worker);
    }
}

static void *worker_main(void *arg)
{
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    tl_pool *p = wa.pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_chunks(p, wa.id);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int tl_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

tl_pool *tl_pool_new(int nthreads, tl_err *e)
{
    if (nthreads <= 0)
        nthreads = tl_cpu_count();
    tl_pool *p = calloc(1, sizeof *p);
    if (!p) {
        tl_fail(e, "out of memory creating thread pool");
        return NULL;
    }
    p->nthreads = nthreads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        tl_fail(e, "out of memory creating thread pool");
        return NULL;
    }
    for (int i = 1; i < nthreads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || pthread_create(&p->threads[i], NULL, worker_main, wa ? (wa->pool = p, wa->id = i, wa) : NULL) != 0) {
            free(wa);
            p->nthreads = i;
            tl_pool_free(p);
            tl_fail(e, "cannot start worker thread %d", i);
            return NULL;
        }
    }
    return p;
}

void tl_pool_free(tl_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int tl_pool_size(const tl_pool *p) { return p ? p->nthreads : 1; }

void tl_parallel_for(tl_pool *p, int64_t n, int64_t grain, tl_range_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    int workers = p ? p->nthreads : 1;
    if (workers == 1 || n <= grain) {
        fn(ctx, 0, n, 0);
        return;
    }
    /* A few chunks per worker balances load without much contention. */
    int64_t chunk = (n + (int64_t)workers * 4 - 1) / ((int64_t)workers * 4);
    if (chunk < grain)
        chunk = grain;
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->chunk = chunk;
    p->nchunks = (n + chunk - 1) / chunk;
    atomic_store(&p->next, 0);
    p->busy = p->nthreads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_chunks(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void tl_barrier_init(tl_barrier *b, int n)
{
    atomic_store(&b->count, 0);
    atomic_store(&b->gen, 0);
    b->n = n;
}

/* A hint to the core that this is a spin-wait loop (lets a sibling
 * hardware thread run, saves power); nothing where no such hint exists. */
static inline void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

void tl_barrier_wait(tl_barrier *b)
{
    if (b->n < 2)
        return;
    int gen = atomic_load(&b->gen);
    if (atomic_fetch_add(&b->count, 1) == b->n - 1) {
        atomic_store(&b->count, 0);
        atomic_fetch_add(&b->gen, 1);
        return;
    }
    for (int spins = 0; atomic_load(&b->gen) == gen; spins++) {
        if (spins < 1000)
            spin_pause();
        else
            sched_yield();
    }
}

double tl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
