/* Allreduce benchmark (not installed): under mpirun, times tl_comm's
 * fixed-order ring (what tl-finetune uses) and MPI_Allreduce on the same
 * float buffers, after a barrier, and prints one JSON line per size:
 * median seconds, and the bus bandwidth the ring formula implies,
 * 2 (N-1)/N * bytes / seconds. Also checks that both sums agree and that
 * every process holds the same bits after the ring.
 *
 * usage: mpirun -np N tl-allreduce [MB ...] [--iters K]   (default 1 4 14 45 100 MB, 7 iterations) */
#include "core/comm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TL_HAVE_MPI
#include <mpi.h>

static int cmp_d(const void *a, const void *b) { return (*(const double *)a > *(const double *)b) - (*(const double *)a < *(const double *)b); }

int main(int argc, char **argv)
{
    double sizes[16] = {1, 4, 14, 45, 100};
    int nsizes = 5, iters = 7, given = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (given < 16)
            sizes[given++] = atof(argv[i]);
    }
    if (given)
        nsizes = given;
    tl_comm c;
    tl_err e;
    int n, r;
    tl_comm_launched(&n, &r);
    if (n < 2) {
        fprintf(stderr, "tl-allreduce: run it under mpirun with 2 or more processes\n");
        return 2;
    }
    if (tl_comm_mpi_open(&c, &e)) {
        fprintf(stderr, "tl-allreduce: %s\n", e.msg);
        return 1;
    }
    for (int s = 0; s < nsizes; s++) {
        size_t count = (size_t)(sizes[s] * 1e6 / sizeof(float));
        float *a = malloc(count * sizeof(float)), *b = malloc(count * sizeof(float));
        double *tr = calloc((size_t)iters, sizeof(double)), *tm = calloc((size_t)iters, sizeof(double));
        tl_rng g;
        tl_rng_seed_stream(&g, 5, (uint64_t)c.rank);
        for (size_t i = 0; i < count; i++)
            b[i] = tl_rng_normal(&g);
        int same = 1;
        double worst = 0;
        for (int k = 0; k < iters; k++) {
            memcpy(a, b, count * sizeof(float));
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = tl_now();
            if (tl_comm_allreduce(&c, a, count, &e)) {
                fprintf(stderr, "tl-allreduce: %s\n", e.msg);
                return 1;
            }
            tr[k] = tl_now() - t0;
            float *ref = malloc(count * sizeof(float));
            memcpy(ref, b, count * sizeof(float));
            MPI_Barrier(MPI_COMM_WORLD);
            t0 = tl_now();
            MPI_Allreduce(MPI_IN_PLACE, ref, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            tm[k] = tl_now() - t0;
            for (size_t i = 0; i < count; i++) {
                double d = (double)a[i] - ref[i];
                worst = d * d > worst ? d * d : worst;
            }
            /* the ring's bits on rank 0, compared everywhere */
            memcpy(ref, a, count * sizeof(float));
            MPI_Bcast(ref, (int)count, MPI_FLOAT, 0, MPI_COMM_WORLD);
            same &= !memcmp(ref, a, count * sizeof(float));
            free(ref);
        }
        int all_same = 0;
        MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        qsort(tr, (size_t)iters, sizeof(double), cmp_d);
        qsort(tm, (size_t)iters, sizeof(double), cmp_d);
        double bytes = (double)count * sizeof(float), f = 2.0 * (c.size - 1) / c.size;
        if (c.rank == 0)
            printf("{\"processes\":%d,\"bytes\":%.0f,\"ring_s\":%.6f,\"mpi_allreduce_s\":%.6f,"
                   "\"ring_bus_GBps\":%.3f,\"mpi_bus_GBps\":%.3f,\"same_bits_everywhere\":%s,\"max_abs_diff\":%.3g}\n",
                   c.size, bytes, tr[iters / 2], tm[iters / 2], f * bytes / tr[iters / 2] / 1e9,
                   f * bytes / tm[iters / 2] / 1e9, all_same ? "true" : "false", worst > 0 ? sqrt(worst) : 0.0);
        free(a);
        free(b);
        free(tr);
        free(tm);
    }
    tl_comm_close(&c);
    return 0;
}
#else
int main(void)
{
    fprintf(stderr, "tl-allreduce: built without MPI\n");
    return 1;
}
#endif
