#include "comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void tl_comm_init(tl_comm *c, const tl_transport *tr)
{
    memset(c, 0, sizeof *c);
    c->tr = *tr;
    c->rank = tr->rank;
    c->size = tr->size;
    c->stop_grace = 10;
    c->timeout = 600;
    /* Large buffers move in pieces: the scratch a rank needs stays
     * bounded, and a message never nears MPI's int count. */
    c->piece_bytes = (size_t)16 << 20;
}

void tl_comm_close(tl_comm *c)
{
    if (c->tr.close)
        c->tr.close(c->tr.ctx);
    free(c->scratch);
    c->scratch = NULL;
    c->scratch_bytes = 0;
    free(c->peers);
    c->peers = NULL;
    c->tr.close = NULL;
}

_Noreturn void tl_comm_abort(tl_comm *c, int code)
{
    if (c->tr.abort)
        c->tr.abort(c->tr.ctx, code);
    exit(code);
}

static void *scratch(tl_comm *c, size_t bytes, tl_err *e)
{
    if (bytes > c->scratch_bytes) {
        void *p = realloc(c->scratch, bytes);
        if (!p) {
            tl_fail(e, "out of memory for a %zu-byte message", bytes);
            return NULL;
        }
        c->scratch = p;
        c->scratch_bytes = bytes;
    }
    return c->scratch;
}

static void pause_briefly(long spins)
{
    /* Spin first (a message between steps arrives within microseconds),
     * then yield the core to whoever computes (the peer may share it). */
    if (spins < 2000)
        return;
    struct timespec ts = {0, spins < 20000 ? 20000 : 200000};
    nanosleep(&ts, NULL);
}

/* This machine, as seen from this process: host name, boot and process
 * namespace (containers on one host with their own process ids differ). */
static uint64_t machine_id(void)
{
    char buf[512] = {0};
    size_t n = 0;
    if (gethostname(buf, 255) == 0)
        n = strlen(buf);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        n += fread(buf + n, 1, 64, f);
        fclose(f);
    }
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) == 0)
        n += (size_t)snprintf(buf + n, sizeof buf - n, ":%llu", (unsigned long long)st.st_ino);
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)buf[i]) * 1099511628211ULL;
    return h | 1;
}

int tl_comm_learn_peers(tl_comm *c, tl_err *e)
{
    struct tl_comm_peer me = {machine_id(), (int64_t)getpid()};
    struct tl_comm_peer *all = calloc((size_t)c->size, sizeof *all);
    if (!all)
        return tl_fail(e, "out of memory");
    if (tl_comm_allgather(c, &me, sizeof me, all, e)) {
        free(all);
        return -1;
    }
    free(c->peers);
    c->peers = all;
    return 0;
}

/* A process on this machine that has exited (or is a zombie its
 * launcher has not reaped yet), or -1. */
static int dead_peer(const tl_comm *c)
{
    if (!c->peers)
        return -1;
    for (int r = 0; r < c->size; r++) {
        if (r == c->rank || c->peers[r].machine != c->peers[c->rank].machine)
            continue;
        char path[64], st[256];
        snprintf(path, sizeof path, "/proc/%lld/stat", (long long)c->peers[r].pid);
        FILE *f = fopen(path, "r");
        if (!f)
            return r;
        size_t n = fread(st, 1, sizeof st - 1, f);
        fclose(f);
        st[n] = '\0';
        /* "pid (comm) S ...": the state follows the last ')' */
        const char *p = strrchr(st, ')');
        if (p && (p[2] == 'Z' || p[2] == 'X'))
            return r;
    }
    return -1;
}

/* Waits for up to two transfers (req < 0: none). */
static int wait_for(tl_comm *c, int r1, int r2, const char *what, tl_err *e)
{
    int done1 = r1 < 0, done2 = r2 < 0;
    double t0 = tl_now(), stopped_at = 0, looked = t0;
    for (long spins = 0; !done1 || !done2; spins++) {
        int k;
        if (!done1 && (k = c->tr.test(c->tr.ctx, r1, e)) != 0) {
            if (k < 0)
                goto broken;
            done1 = 1;
        }
        if (!done2 && (k = c->tr.test(c->tr.ctx, r2, e)) != 0) {
            if (k < 0)
                goto broken;
            done2 = 1;
        }
        if (done1 && done2)
            break;
        pause_briefly(spins);
        if ((spins & 63) == 0) {
            double t = tl_now();
            if (c->stop && *c->stop && !stopped_at)
                stopped_at = t;
            if (stopped_at && t - stopped_at > c->stop_grace) {
                tl_fail(e, "stopped by signal %d, and the other processes did not answer within %.0f s (%s; has one "
                           "of them died?)",
                        (int)*c->stop, c->stop_grace, what);
                goto broken;
            }
            int dead;
            if (t - looked > 1 && (looked = t, dead = dead_peer(c)) >= 0) {
                tl_fail(e, "process %d (pid %lld, on this machine) has died (%s)", dead, (long long)c->peers[dead].pid,
                        what);
                goto broken;
            }
            if (c->timeout > 0 && t - t0 > c->timeout) {
                tl_fail(e, "no answer from the other processes for %.0f s (%s; has one of them died?)", c->timeout,
                        what);
                goto broken;
            }
        }
    }
    return 0;
broken:
    c->broken = 1;
    return -1;
}

static int usable(tl_comm *c, tl_err *e)
{
    if (c->broken)
        return tl_fail(e, "the communication with the other processes has failed");
    return 0;
}

/* Sends `sb` bytes to the right neighbour while receiving `rb` from the
 * left one. */
static int exchange(tl_comm *c, const void *sbuf, size_t sb, void *rbuf, size_t rb, const char *what, tl_err *e)
{
    int right = (c->rank + 1) % c->size, left = (c->rank + c->size - 1) % c->size;
    int rs = -1, rr = -1;
    if (sb && c->tr.isend(c->tr.ctx, sbuf, sb, right, &rs, e))
        goto broken;
    if (rb && c->tr.irecv(c->tr.ctx, rbuf, rb, left, &rr, e))
        goto broken;
    return wait_for(c, rs, rr, what, e);
broken:
    c->broken = 1;
    return -1;
}

/* Start of piece k of n items cut into `parts` (n * k stays far below 2^64). */
static size_t bound(size_t n, int k, int parts) { return (size_t)((uint64_t)n * (uint64_t)k / (uint64_t)parts); }

int tl_comm_allreduce(tl_comm *c, float *buf, size_t n, tl_err *e)
{
    if (usable(c, e))
        return -1;
    int N = c->size;
    if (N == 1)
        return 0;
    size_t piece = c->piece_bytes < sizeof(float) ? 1 : c->piece_bytes / sizeof(float);
    float *tmp = scratch(c, (n / (size_t)N + 1 < piece ? n / (size_t)N + 1 : piece) * sizeof(float), e);
    if (!tmp)
        return -1;
    /* Reduce-scatter: at step s, rank r passes on its partial sum of piece
     * (r - s) and adds its own values to the partial sum of piece
     * (r - s - 1) arriving from the left. After N-1 steps rank r holds the
     * total of piece (r + 1). */
    for (int s = 0; s < N - 1; s++) {
        int ks = ((c->rank - s) % N + N) % N, kr = ((c->rank - s - 1) % N + N) % N;
        size_t s0 = bound(n, ks, N), s1 = bound(n, ks + 1, N), r0 = bound(n, kr, N), r1 = bound(n, kr + 1, N);
        for (size_t off = 0; off < s1 - s0 || off < r1 - r0; off += piece) {
            size_t sn = off < s1 - s0 ? (s1 - s0 - off < piece ? s1 - s0 - off : piece) : 0;
            size_t rn = off < r1 - r0 ? (r1 - r0 - off < piece ? r1 - r0 - off : piece) : 0;
            if (exchange(c, buf + s0 + off, sn * sizeof(float), tmp, rn * sizeof(float), "summing gradients", e))
                return -1;
            float *dst = buf + r0 + off;
            for (size_t i = 0; i < rn; i++)
                dst[i] = dst[i] + tmp[i];
        }
    }
    /* Allgather of the totals: rank r passes on piece (r + 1 - s). */
    for (int s = 0; s < N - 1; s++) {
        int ks = ((c->rank + 1 - s) % N + N) % N, kr = ((c->rank - s) % N + N) % N;
        size_t s0 = bound(n, ks, N), s1 = bound(n, ks + 1, N), r0 = bound(n, kr, N), r1 = bound(n, kr + 1, N);
        for (size_t off = 0; off < s1 - s0 || off < r1 - r0; off += piece) {
            size_t sn = off < s1 - s0 ? (s1 - s0 - off < piece ? s1 - s0 - off : piece) : 0;
            size_t rn = off < r1 - r0 ? (r1 - r0 - off < piece ? r1 - r0 - off : piece) : 0;
            if (exchange(c, buf + s0 + off, sn * sizeof(float), buf + r0 + off, rn * sizeof(float),
                         "summing gradients", e))
                return -1;
        }
    }
    return 0;
}

int tl_comm_allgather(tl_comm *c, const void *buf, size_t bytes, void *all, tl_err *e)
{
    if (usable(c, e))
        return -1;
    int N = c->size;
    unsigned char *a = all;
    if (!c->piece_bytes)
        return tl_fail(e, "piece size 0");
    memmove(a + (size_t)c->rank * bytes, buf, bytes);
    for (int s = 0; s < N - 1; s++) {
        int ks = ((c->rank - s) % N + N) % N, kr = ((c->rank - s - 1) % N + N) % N;
        for (size_t off = 0; off < bytes; off += c->piece_bytes) {
            size_t len = bytes - off < c->piece_bytes ? bytes - off : c->piece_bytes;
            if (exchange(c, a + (size_t)ks * bytes + off, len, a + (size_t)kr * bytes + off, len, "gathering", e))
                return -1;
        }
    }
    return 0;
}

int tl_comm_allreduce_f64(tl_comm *c, double *buf, size_t n, tl_err *e)
{
    if (c->size == 1)
        return usable(c, e);
    double *all = scratch(c, (size_t)c->size * n * sizeof(double), e);
    if (!all || tl_comm_allgather(c, buf, n * sizeof(double), all, e))
        return -1;
    for (size_t i = 0; i < n; i++) {
        double s = all[i];
        for (int r = 1; r < c->size; r++)
            s += all[(size_t)r * n + i];
        buf[i] = s;
    }
    return 0;
}

int tl_comm_any(tl_comm *c, int flag, int *any, tl_err *e)
{
    *any = flag;
    if (c->size == 1)
        return usable(c, e);
    int *all = scratch(c, (size_t)c->size * sizeof(int), e);
    if (!all || tl_comm_allgather(c, &flag, sizeof flag, all, e))
        return -1;
    for (int r = 0; r < c->size; r++)
        if (all[r] > *any)
            *any = all[r];
    return 0;
}

int tl_comm_bcast(tl_comm *c, void *buf, size_t bytes, tl_err *e)
{
    if (!c->piece_bytes)
        return tl_fail(e, "piece size 0");
    if (usable(c, e))
        return -1;
    if (c->size == 1 || bytes == 0)
        return 0;
    /* A chain 0 -> 1 -> ... -> size-1, in pieces: while piece p goes on to
     * the right, piece p+1 arrives from the left. */
    unsigned char *b = buf;
    int first = c->rank == 0, last = c->rank == c->size - 1;
    int right = c->rank + 1, left = c->rank - 1;
    size_t npieces = (bytes + c->piece_bytes - 1) / c->piece_bytes;
    int rr = -1, rs = -1;
    if (!first) {
        if (c->tr.irecv(c->tr.ctx, b, bytes < c->piece_bytes ? bytes : c->piece_bytes, left, &rr, e))
            goto broken;
        if (wait_for(c, rr, -1, "receiving rank 0's data", e))
            return -1;
    }
    for (size_t p = 0; p < npieces; p++) {
        size_t off = p * c->piece_bytes, len = bytes - off < c->piece_bytes ? bytes - off : c->piece_bytes;
        rs = rr = -1;
        if (!last && c->tr.isend(c->tr.ctx, b + off, len, right, &rs, e))
            goto broken;
        if (!first && p + 1 < npieces) {
            size_t off2 = off + c->piece_bytes, len2 = bytes - off2 < c->piece_bytes ? bytes - off2 : c->piece_bytes;
            if (c->tr.irecv(c->tr.ctx, b + off2, len2, left, &rr, e))
                goto broken;
        }
        if (wait_for(c, rs, rr, "passing on rank 0's data", e))
            return -1;
    }
    return 0;
broken:
    c->broken = 1;
    return -1;
}

void tl_comm_share(const tl_comm *c, int64_t n, int64_t *lo, int64_t *hi)
{
    int N = c ? c->size : 1, r = c ? c->rank : 0;
    *lo = n * r / N;
    *hi = n * (r + 1) / N;
}
