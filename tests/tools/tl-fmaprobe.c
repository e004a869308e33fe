/* Test driver (not installed): the machine's FP32 multiply-add peak right
 * now, with 512-bit and 256-bit FMAs on 1 and 2 threads, in a few hundred
 * milliseconds. The benchmark runs it before and after its cases: achieved
 * GFLOPS are reported as a fraction of this peak, and two threads giving
 * much less than twice one thread's rate means another process shares the
 * cores (the figures of that run are then suspect).
 *
 * usage: tl-fmaprobe [MILLISECONDS_PER_CONFIG]   (default 60)
 * Prints one JSON line: GFLOPS per configuration (the best of several
 * bursts), the 2-thread/1-thread ratios, the CPU features found, and the
 * SIMD path tl's float kernels take here ($TL_SIMD as set: "isa") with the
 * probe of the FMA width that path uses (isa_width 512 or 256; 0 for the
 * scalar path, which no probe measures): the peak and the contention check
 * that belong to a run of tl on that path. */
#include "kernels/kernels.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Twelve independent accumulator chains cover the FMA latency (4 cycles)
 * times two FMA ports; the multiplier is just below one so nothing
 * overflows or goes subnormal. Returns the FLOPs done. */
#define CHAINS 12
#define INNER 1000

__attribute__((target("avx512f"))) static double burst512(long reps, float *sink)
{
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = _mm512_set1_ps((float)k);
    for (long r = 0; r < reps; r++)
        for (int i = 0; i < INNER; i++)
#pragma GCC unroll 12
            for (int k = 0; k < CHAINS; k++)
                acc[k] = _mm512_fmadd_ps(acc[k], a, b);
    __m512 s = acc[0];
    for (int k = 1; k < CHAINS; k++)
        s = _mm512_add_ps(s, acc[k]);
    *sink = _mm512_reduce_add_ps(s);
    return (double)reps * INNER * CHAINS * 16 * 2;
}

__attribute__((target("avx2,fma"))) static double burst256(long reps, float *sink)
{
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = _mm256_set1_ps((float)k);
    for (long r = 0; r < reps; r++)
        for (int i = 0; i < INNER; i++)
#pragma GCC unroll 12
            for (int k = 0; k < CHAINS; k++)
                acc[k] = _mm256_fmadd_ps(acc[k], a, b);
    __m256 s = acc[0];
    for (int k = 1; k < CHAINS; k++)
        s = _mm256_add_ps(s, acc[k]);
    float v[8];
    _mm256_storeu_ps(v, s);
    *sink = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
    return (double)reps * INNER * CHAINS * 8 * 2;
}

typedef struct {
    int wide;
    long reps;
    float sink;
    pthread_barrier_t *start;
    double t0, t1; /* the worker's own clock: the main thread may be descheduled */
} job;

static void *worker(void *arg)
{
    job *j = arg;
    pthread_barrier_wait(j->start);
    j->t0 = now();
    if (j->wide)
        burst512(j->reps, &j->sink);
    else
        burst256(j->reps, &j->sink);
    j->t1 = now();
    return NULL;
}

/* The best rate of several bursts of about ms/5 milliseconds each, with
 * `threads` threads doing the same work at once; GFLOPS of all threads. */
static double measure(int wide, int threads, double ms)
{
    float sink;
    long reps = 1;
    double t0 = now();
    /* Calibrate one thread's reps for a burst of ms/5. */
    for (;;) {
        t0 = now();
        if (wide)
            burst512(reps, &sink);
        else
            burst256(reps, &sink);
        double dt = now() - t0;
        if (dt > 0.002) {
            reps = (long)(reps * (ms / 5e3) / dt) + 1;
            break;
        }
        reps *= 4;
    }
    double flops1 = (double)reps * INNER * CHAINS * (wide ? 16 : 8) * 2, best = 0;
    for (int b = 0; b < 5; b++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
        pthread_t th[8];
        job jobs[8];
        for (int i = 0; i < threads; i++) {
            jobs[i] = (job){wide, reps, 0, &start, 0, 0};
            pthread_create(&th[i], NULL, worker, &jobs[i]);
        }
        pthread_barrier_wait(&start);
        double s = 1e300, end = 0;
        for (int i = 0; i < threads; i++) {
            pthread_join(th[i], NULL);
            s = jobs[i].t0 < s ? jobs[i].t0 : s;
            end = jobs[i].t1 > end ? jobs[i].t1 : end;
        }
        double rate = flops1 * threads / (end - s) / 1e9;
        pthread_barrier_destroy(&start);
        if (rate > best)
            best = rate;
    }
    return best;
}

int main(int argc, char **argv)
{
    double ms = argc > 1 ? atof(argv[1]) : 60;
    if (ms <= 0 || argc > 2) {
        fprintf(stderr, "usage: tl-fmaprobe [MILLISECONDS_PER_CONFIG]\n");
        return 2;
    }
    __builtin_cpu_init();
    int has512 = !!__builtin_cpu_supports("avx512f"),
        has256 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    double r[2][2] = {{0, 0}, {0, 0}}; /* [wide][threads-1] */
    for (int w = 0; w < 2; w++)
        for (int t = 1; t <= 2; t++)
            if (w ? has512 : has256)
                r[w][t - 1] = measure(w, t, ms);
    static const char *const paths[] = {"scalar", "avx2", "avx512", "avx512vnni"};
    int level = tl_simd_level(), w = level >= TL_SIMD_AVX512 ? 1 : level == TL_SIMD_AVX2 ? 0 : -1;
    double i1 = w >= 0 ? r[w][0] : 0, i2 = w >= 0 ? r[w][1] : 0;
    printf("{\"avx512\":%d,\"avx2_fma\":%d,\"gflops_512_1t\":%.1f,\"gflops_512_2t\":%.1f,"
           "\"gflops_256_1t\":%.1f,\"gflops_256_2t\":%.1f,\"scaling_512\":%.2f,\"scaling_256\":%.2f,"
           "\"peak_1t\":%.1f,\"peak_2t\":%.1f,\"isa\":\"%s\",\"isa_width\":%d,\"isa_gflops_1t\":%.1f,"
           "\"isa_gflops_2t\":%.1f,\"isa_scaling\":%.2f}\n",
           has512, has256, r[1][0], r[1][1], r[0][0], r[0][1], r[1][0] > 0 ? r[1][1] / r[1][0] : 0,
           r[0][0] > 0 ? r[0][1] / r[0][0] : 0, r[1][0] > r[0][0] ? r[1][0] : r[0][0],
           r[1][1] > r[0][1] ? r[1][1] : r[0][1], paths[level], w < 0 ? 0 : w ? 512 : 256, i1, i2,
           i1 > 0 ? i2 / i1 : 0);
    return 0;
}
