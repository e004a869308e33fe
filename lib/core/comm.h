/* Processes that train one model together (data parallelism): rank 0 ..
 * size-1, connected by a transport that moves bytes between two of them
 * (MPI in tl-finetune, threads in the tests).
 *
 * The collectives are written here, on the transport's point-to-point
 * messages, so that their arithmetic happens in an order fixed by the
 * code alone: MPI_Allreduce leaves the order of a reduction to the
 * implementation and its tuning (which algorithm, which segments), so it
 * may change with the message size, the MPI library or a setting. Every
 * rank ends with the same bits, and a rerun gives them again.
 *
 * No rank is left hanging: every wait polls the caller's stop flag (set by
 * SIGINT/SIGTERM) and a clock, and once a second looks whether the
 * processes on this machine are still alive (tl_comm_learn_peers). A peer
 * that has died, or does not answer within `stop_grace` seconds of a stop
 * signal (a launcher signals the survivors when one process dies), or
 * within `timeout` seconds at all, fails the call with a message saying
 * so; the communicator is then broken (every later call fails) and the
 * caller ends the job (tl_comm_abort). */
#ifndef TL_CORE_COMM_H
#define TL_CORE_COMM_H

#include "core.h"

#include <signal.h>

/* A started transfer: transports keep at most TL_COMM_PENDING at once. */
#define TL_COMM_PENDING 4

typedef struct tl_transport {
    const char *name;  /* "MPI", "threads" */
    int rank, size;
    void *ctx;
    /* Start sending or receiving `bytes` bytes to or from `peer`; messages
     * between two ranks arrive in the order they were sent. *req names the
     * transfer for test(). */
    int (*isend)(void *ctx, const void *buf, size_t bytes, int peer, int *req, tl_err *e);
    int (*irecv)(void *ctx, void *buf, size_t bytes, int peer, int *req, tl_err *e);
    /* 1: done (req is free again), 0: not yet, -1: failed. */
    int (*test)(void *ctx, int req, tl_err *e);
    /* Ends every process of the job (after a broken communication). */
    void (*abort)(void *ctx, int code);
    /* Orderly end (every rank calls it). */
    void (*close)(void *ctx);
} tl_transport;

typedef struct tl_comm {
    tl_transport tr;
    int rank, size;
    volatile sig_atomic_t *stop; /* polled while waiting; may be NULL */
    double stop_grace;           /* seconds a peer may stay silent after *stop is set (default 10) */
    double timeout;              /* seconds a peer may stay silent at all; 0: no limit (default 600) */
    int broken;                  /* a call failed: the job cannot go on */
    int shared_failure;          /* a failure every process shares (a decision on reduced values, or
                                  * one process's failure the others learnt of): process 0 reports it */
    size_t piece_bytes;          /* large buffers move in pieces of this size (default 16 MiB) */
    /* scratch for received pieces, grown once to the largest need */
    void *scratch;
    size_t scratch_bytes;
    /* every process's machine (0: unknown) and process id */
    struct tl_comm_peer {
        uint64_t machine;
        int64_t pid;
    } *peers;
} tl_comm;

/* Wraps a transport (copied). */
void tl_comm_init(tl_comm *c, const tl_transport *tr);
/* The transport's orderly end, scratch freed. */
void tl_comm_close(tl_comm *c);
/* Ends the whole job at once; for a rank that cannot go on. */
_Noreturn void tl_comm_abort(tl_comm *c, int code);

/* buf[n] = the sum of every rank's buf[n]: a ring (reduce-scatter, then
 * allgather) over `size` pieces; piece k is added up in the rank order
 * k+1, k+2, ..., k (mod size), whatever the timing. Each rank sends and
 * receives 2 (size-1)/size * n floats. */
int tl_comm_allreduce(tl_comm *c, float *buf, size_t n, tl_err *e);
/* The same for a few doubles (statistics): every rank's vector is
 * gathered and added in rank order 0, 1, ..., size-1. */
int tl_comm_allreduce_f64(tl_comm *c, double *buf, size_t n, tl_err *e);
/* all[size * n]: every rank's buf[n], in rank order. */
int tl_comm_allgather(tl_comm *c, const void *buf, size_t bytes, void *all, tl_err *e);
/* Rank 0's bytes to every rank (a pipelined chain). */
int tl_comm_bcast(tl_comm *c, void *buf, size_t bytes, tl_err *e);
/* Exchanges each process's machine and process id, so that a wait notices
 * at once when a process on the same machine has died. */
int tl_comm_learn_peers(tl_comm *c, tl_err *e);
/* Whether any rank passed a non-zero flag (and the largest flag). */
int tl_comm_any(tl_comm *c, int flag, int *any, tl_err *e);

/* This rank's share of n items split into `size` contiguous runs as evenly
 * as possible: [*lo, *hi). */
void tl_comm_share(const tl_comm *c, int64_t n, int64_t *lo, int64_t *hi);

/* The MPI transport (comm_mpi.c). tl_comm_launched reads the launcher's
 * environment (mpirun, srun, mpiexec) without touching MPI: the number of
 * processes started and this one's rank; 1 and 0 when not launched so.
 * tl_comm_mpi_built: whether this build has MPI support.
 * tl_comm_mpi_open initialises MPI (call it only when launched with more
 * than one process). */
void tl_comm_launched(int *size, int *rank);
int tl_comm_mpi_built(void);
int tl_comm_mpi_open(tl_comm *c, tl_err *e);
/* Threads for each of the processes on this machine: the CPUs this one
 * may run on (MPI launchers bind processes to cores or sockets), shared
 * with the other processes of the job on this machine. */
int tl_comm_local_threads(void);

#endif
