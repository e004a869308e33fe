/* The collectives of core/comm.c over a transport between threads: sums
 * are right, every rank ends with the same bits, in the documented order,
 * whatever the timing; broadcasts and gathers arrive whole (also in many
 * pieces); a silent peer makes the others fail within the time limit
 * instead of hanging. */
#include "check.h"
#include "comm_threads.h"

#include <stdio.h>

typedef struct rank_job {
    ct_world *w;
    int rank;
    unsigned seed;
    size_t n, piece;
    float *f;        /* this rank's vector, summed in place */
    double *d;
    unsigned char *bytes;
    size_t nbytes;
    unsigned char *gathered;
    int flag, any;
    int rc;
    double timeout, grace;
    volatile sig_atomic_t *stop;
    int what;        /* 0 all collectives; 1 allreduce only */
    tl_err e;
} rank_job;

static void *run_rank(void *arg)
{
    rank_job *j = arg;
    ct_end end;
    tl_comm c;
    ct_comm(&c, j->w, &end, j->rank, j->seed);
    if (j->piece)
        c.piece_bytes = j->piece;
    if (j->timeout > 0)
        c.timeout = j->timeout;
    if (j->grace > 0)
        c.stop_grace = j->grace;
    c.stop = j->stop;
    j->rc = tl_comm_allreduce(&c, j->f, j->n, &j->e);
    if (!j->rc && j->what == 0) {
        j->rc = tl_comm_allreduce_f64(&c, j->d, 3, &j->e);
        if (!j->rc)
            j->rc = tl_comm_bcast(&c, j->bytes, j->nbytes, &j->e);
        if (!j->rc)
            j->rc = tl_comm_allgather(&c, j->bytes, j->nbytes, j->gathered, &j->e);
        if (!j->rc)
            j->rc = tl_comm_any(&c, j->flag, &j->any, &j->e);
    }
    if (j->rc)
        CHECK(c.broken);
    tl_comm_close(&c);
    return NULL;
}

/* The sum in the order the ring documents: piece k starts with rank k+1's
 * values and adds k+2, ..., k (mod size). */
static float ring_order_sum(float *const *v, int N, size_t n, size_t i)
{
    int k = 0;
    while ((size_t)((uint64_t)n * (uint64_t)(k + 1) / (uint64_t)N) <= i)
        k++;
    /* the partial sum travels from rank k to k+1, ...; each adds its own
     * values to what arrives: acc = x[r] + acc */
    float acc = v[k][i];
    for (int s = 1; s < N; s++) {
        int r = (k + s) % N;
        acc = v[r][i] + acc;
    }
    return acc;
}

static void run_world(int N, size_t n, size_t piece, int jitter, unsigned seed, float *const *in, float **out,
                      int *ok)
{
    ct_world w;
    ct_world_init(&w, N);
    w.jitter = jitter;
    rank_job jobs[CT_MAX];
    pthread_t th[CT_MAX];
    size_t nb = 3 * (piece ? piece : 64) + 5;
    for (int r = 0; r < N; r++) {
        jobs[r] = (rank_job){.w = &w, .rank = r, .seed = seed, .n = n, .piece = piece, .f = out[r], .nbytes = nb,
                             .flag = r == N - 1 ? 7 : 0};
        memcpy(out[r], in[r], n * sizeof(float));
        jobs[r].d = calloc(3, sizeof(double));
        for (int k = 0; k < 3; k++)
            jobs[r].d[k] = 0.1 * (r + 1) + k;
        jobs[r].bytes = calloc(nb, 1);
        jobs[r].gathered = calloc(nb * (size_t)N, 1);
        for (size_t k = 0; k < nb; k++)
            jobs[r].bytes[k] = (unsigned char)(r == 0 ? (k * 31 + 7) : 0xEE);
    }
    for (int r = 0; r < N; r++)
        pthread_create(&th[r], NULL, run_rank, &jobs[r]);
    for (int r = 0; r < N; r++)
        pthread_join(th[r], NULL);
    *ok = 1;
    for (int r = 0; r < N; r++) {
        *ok &= jobs[r].rc == 0;
        CHECK_MSG(jobs[r].rc == 0, "N=%d n=%zu rank %d: %s", N, n, r, jobs[r].e.msg);
        double want = 0;
        for (int q = 0; q < N; q++)
            want += 0.1 * (q + 1);
        /* rank order, so every rank has the very same bits */
        double s = 0.1;
        for (int q = 1; q < N; q++)
            s += 0.1 * (q + 1);
        CHECK(jobs[r].d[0] == s && fabs(jobs[r].d[0] - want) < 1e-12);
        CHECK(jobs[r].d[2] == jobs[0].d[2]);
        int bc = 1, ga = 1;
        for (size_t k = 0; k < nb; k++) {
            bc &= jobs[r].bytes[k] == (unsigned char)(k * 31 + 7);
            for (int q = 0; q < N; q++)
                ga &= jobs[r].gathered[(size_t)q * nb + k] == (unsigned char)(k * 31 + 7);
        }
        CHECK_MSG(bc, "broadcast N=%d rank %d", N, r);
        CHECK_MSG(ga, "gather N=%d rank %d", N, r);
        CHECK(jobs[r].any == 7);
    }
    for (int r = 0; r < N; r++) {
        free(jobs[r].d);
        free(jobs[r].bytes);
        free(jobs[r].gathered);
    }
    CHECK(ct_world_free(&w) == 0);
}

static void test_allreduce(void)
{
    static const int sizes[] = {1, 2, 3, 4, 5, 8};
    static const size_t lens[] = {0, 1, 2, 3, 7, 1000, 4099};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (int pi = 0; pi < 2; pi++) {
                int N = sizes[si];
                size_t n = lens[li], piece = pi ? 12 : 0; /* 12 bytes: three floats a message */
                if (piece && n > 100)
                    continue;
                float *in[CT_MAX], *out[CT_MAX], *again[CT_MAX];
                for (int r = 0; r < N; r++) {
                    in[r] = malloc((n + 1) * sizeof(float));
                    out[r] = malloc((n + 1) * sizeof(float));
                    again[r] = malloc((n + 1) * sizeof(float));
                    tl_rng g;
                    tl_rng_seed_stream(&g, 11, (uint64_t)r);
                    for (size_t i = 0; i < n; i++)
                        in[r][i] = tl_rng_normal(&g) * (float)(1 + i % 5) * 1e-3f;
                }
                int ok1, ok2;
                run_world(N, n, piece, 0, 1, in, out, &ok1);
                run_world(N, n, piece, 3, 99, in, again, &ok2); /* other timing */
                int same = 1, order = 1, close = 1;
                for (size_t i = 0; i < n && ok1 && ok2; i++) {
                    float ref = ring_order_sum(in, N, n, i);
                    double exact = 0;
                    for (int r = 0; r < N; r++)
                        exact += in[r][i];
                    for (int r = 0; r < N; r++) {
                        same &= !memcmp(&out[r][i], &out[0][i], sizeof(float)) &&
                                !memcmp(&again[r][i], &out[0][i], sizeof(float));
                        order &= !memcmp(&out[r][i], &ref, sizeof(float));
                    }
                    close &= fabs(out[0][i] - exact) <= 1e-6 * (1 + fabs(exact));
                }
                CHECK_MSG(same, "N=%d n=%zu piece=%zu: ranks or runs differ in bits", N, n, piece);
                CHECK_MSG(order, "N=%d n=%zu piece=%zu: not the documented order", N, n, piece);
                CHECK_MSG(close, "N=%d n=%zu: wrong sums", N, n);
                for (int r = 0; r < N; r++) {
                    free(in[r]);
                    free(out[r]);
                    free(again[r]);
                }
            }
}

/* A rank that never sends: the others give up after the time limit, or
 * soon after a stop signal, with a message that says why. */
static void test_silent_peer(void)
{
    for (int mode = 0; mode < 2; mode++) {
        int N = 3;
        ct_world w;
        ct_world_init(&w, N);
        w.dead[2] = 1;
        volatile sig_atomic_t stop = mode ? 15 : 0;
        rank_job jobs[3];
        pthread_t th[3];
        float v[3][10] = {{0}};
        for (int r = 0; r < N; r++) {
            jobs[r] = (rank_job){.w = &w, .rank = r, .seed = 5, .n = 10, .f = v[r]};
            jobs[r].what = 1;
            jobs[r].timeout = mode ? 100 : 0.3;
            jobs[r].grace = 0.3;
            jobs[r].stop = &stop;
        }
        double t0 = tl_now();
        for (int r = 0; r < N - 1; r++)
            pthread_create(&th[r], NULL, run_rank, &jobs[r]);
        for (int r = 0; r < N - 1; r++)
            pthread_join(th[r], NULL);
        double t = tl_now() - t0;
        CHECK_MSG(t < 20, "gave up after %.1f s", t);
        for (int r = 0; r < N - 1; r++) {
            CHECK(jobs[r].rc == -1);
            CHECK_MSG(strstr(jobs[r].e.msg, mode ? "stopped by signal 15" : "no answer") &&
                          strstr(jobs[r].e.msg, "died"),
                      "%s", jobs[r].e.msg);
        }
        ct_world_free(&w);
    }
}

static void test_share(void)
{
    ct_world w;
    ct_world_init(&w, 1);
    for (int N = 1; N <= 7; N++)
        for (int64_t n = 0; n < 40; n++) {
            int64_t next = 0, most = 0, least = n;
            for (int r = 0; r < N; r++) {
                ct_end end;
                tl_comm c;
                w.size = N;
                ct_comm(&c, &w, &end, r, 0);
                int64_t lo, hi;
                tl_comm_share(&c, n, &lo, &hi);
                CHECK(lo == next && hi >= lo);
                next = hi;
                most = hi - lo > most ? hi - lo : most;
                least = hi - lo < least ? hi - lo : least;
            }
            CHECK(next == n && most - least <= 1);
        }
    int64_t lo, hi;
    tl_comm_share(NULL, 9, &lo, &hi);
    CHECK(lo == 0 && hi == 9);
    ct_world_free(&w);
}

int main(void)
{
    test_allreduce();
    test_silent_peer();
    test_share();
    return check_finish("comm");
}
