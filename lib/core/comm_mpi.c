/* The MPI transport of tl_comm. Compiled with mpicc and TL_HAVE_MPI when
 * the build finds MPI (Makefile); otherwise only the launcher detection
 * and a stub that says MPI support is not built. */
#include "comm.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Launchers tell each process its place in the environment: Open MPI's
 * mpirun, MPICH/Hydra and Slurm's PMI, MVAPICH, and srun itself. */
void tl_comm_launched(int *size, int *rank)
{
    static const char *const vars[][2] = {
        {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"},
        {"PMI_SIZE", "PMI_RANK"},
        {"MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK"},
        {"SLURM_STEP_NUM_TASKS", "SLURM_PROCID"},
    };
    *size = 1;
    *rank = 0;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *s = getenv(vars[i][0]), *r = getenv(vars[i][1]);
        long n = s ? strtol(s, NULL, 10) : 0, k = r ? strtol(r, NULL, 10) : 0;
        if (n >= 1 && n <= INT_MAX && k >= 0 && k < n) {
            *size = (int)n;
            *rank = (int)k;
            return;
        }
    }
}

int tl_comm_local_threads(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_STEP_TASKS_PER_NODE",
                                       "MV2_COMM_WORLD_LOCAL_SIZE"};
    long local = 1;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *s = getenv(vars[i]);
        long n = s ? strtol(s, NULL, 10) : 0;
        if (n >= 1) {
            local = n;
            break;
        }
    }
    int online = tl_cpu_count(), allowed = online;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        allowed = CPU_COUNT(&set);
    int share = (int)(online / local);
    int n = allowed < share ? allowed : share;
    return n < 1 ? 1 : n;
}

#ifdef TL_HAVE_MPI
#include <mpi.h>

int tl_comm_mpi_built(void) { return 1; }

typedef struct mpi_ctx {
    MPI_Comm comm;
    MPI_Request req[TL_COMM_PENDING];
    int used[TL_COMM_PENDING];
} mpi_ctx;

static int mpi_fail(tl_err *e, const char *what, int code)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "error %d", code);
    return tl_fail(e, "MPI: %s: %s", what, msg);
}

static int slot(mpi_ctx *m, int *req, tl_err *e)
{
    for (int i = 0; i < TL_COMM_PENDING; i++)
        if (!m->used[i]) {
            m->used[i] = 1;
            *req = i;
            return 0;
        }
    return tl_fail(e, "MPI: more than %d transfers at once", TL_COMM_PENDING);
}

static int mpi_isend(void *ctx, const void *buf, size_t bytes, int peer, int *req, tl_err *e)
{
    mpi_ctx *m = ctx;
    if (bytes > INT_MAX)
        return tl_fail(e, "MPI: a %zu-byte message is too large", bytes);
    if (slot(m, req, e))
        return -1;
    int rc = MPI_Isend(buf, (int)bytes, MPI_BYTE, peer, 0, m->comm, &m->req[*req]);
    if (rc != MPI_SUCCESS) {
        m->used[*req] = 0;
        return mpi_fail(e, "send", rc);
    }
    return 0;
}

static int mpi_irecv(void *ctx, void *buf, size_t bytes, int peer, int *req, tl_err *e)
{
    mpi_ctx *m = ctx;
    if (bytes > INT_MAX)
        return tl_fail(e, "MPI: a %zu-byte message is too large", bytes);
    if (slot(m, req, e))
        return -1;
    int rc = MPI_Irecv(buf, (int)bytes, MPI_BYTE, peer, 0, m->comm, &m->req[*req]);
    if (rc != MPI_SUCCESS) {
        m->used[*req] = 0;
        return mpi_fail(e, "receive", rc);
    }
    return 0;
}

static int mpi_test(void *ctx, int req, tl_err *e)
{
    mpi_ctx *m = ctx;
    int done = 0;
    int rc = MPI_Test(&m->req[req], &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS)
        return mpi_fail(e, "wait", rc);
    if (done)
        m->used[req] = 0;
    return done;
}

static void mpi_abort(void *ctx, int code)
{
    (void)ctx;
    MPI_Abort(MPI_COMM_WORLD, code);
}

static void mpi_close(void *ctx)
{
    mpi_ctx *m = ctx;
    MPI_Comm_free(&m->comm);
    MPI_Finalize();
    free(m);
}

int tl_comm_mpi_open(tl_comm *c, tl_err *e)
{
    int provided = 0, inited = 0, rc;
    MPI_Initialized(&inited);
    /* Only the main thread calls MPI; the thread pool computes. */
    if (!inited && (rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS)
        return mpi_fail(e, "init", rc);
    mpi_ctx *m = calloc(1, sizeof *m);
    if (!m) {
        MPI_Finalize();
        return tl_fail(e, "out of memory");
    }
    /* A communicator of our own, whose errors come back as return codes
     * (so they become messages) instead of ending the process. */
    if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, &m->comm)) != MPI_SUCCESS) {
        free(m);
        MPI_Finalize();
        return mpi_fail(e, "communicator", rc);
    }
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    tl_transport tr = {"MPI", 0, 1, m, mpi_isend, mpi_irecv, mpi_test, mpi_abort, mpi_close};
    MPI_Comm_rank(m->comm, &tr.rank);
    MPI_Comm_size(m->comm, &tr.size);
    int launched, me;
    tl_comm_launched(&launched, &me);
    if (tr.size != launched) {
        /* each process alone in its own MPI world: the launcher and MPI
         * did not meet (srun without the MPI plugin Open MPI needs) */
        MPI_Comm_free(&m->comm);
        free(m);
        MPI_Finalize();
        return tl_fail(e, "started as one of %d processes, but MPI sees %d: the launcher and the MPI library do not "
                          "talk (with srun, give --mpi=pmix; srun --mpi=list shows the choices)",
                       launched, tr.size);
    }
    tl_comm_init(c, &tr);
    if (tl_comm_learn_peers(c, e)) {
        tl_comm_close(c);
        return -1;
    }
    return 0;
}

#else

int tl_comm_mpi_built(void) { return 0; }

int tl_comm_mpi_open(tl_comm *c, tl_err *e)
{
    memset(c, 0, sizeof *c);
    return tl_fail(e, "MPI support is not built (make found no mpicc; on Debian: apt-get install openmpi-bin "
                      "libopenmpi-dev, then make clean all)");
}

#endif
