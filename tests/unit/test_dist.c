/* Data-parallel steps (tl_trainer_part/finish over tl_comm) with threads as
 * processes: 2 and 3 processes sharing each batch of 8 reach one process's
 * parameters to float tolerance, with batch norm training (synchronised)
 * and dropout on; every process holds the same bits; without sync each
 * process's batch norm sees only its share (and the result differs);
 * gradient accumulation in two parts of 4 reaches batches of 8 (batch
 * norm frozen). No MPI needed, so this runs under the sanitizers too. */
#include "check.h"
#include "comm_threads.h"
#include "models/models.h"
#include "train/trainer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { BATCH = 8, STEPS = 6, SIZE = 16, CLASSES = 3 };

static float images[STEPS][BATCH][3 * SIZE * SIZE];
static int labels[STEPS][BATCH];

static tl_model *build(int freeze_bn)
{
    tl_err e = {0};
    tl_arch_opts o;
    tl_arch_opts_default(&o);
    o.num_classes = CLASSES;
    o.input_w = o.input_h = SIZE;
    tl_model *m = tl_arch_build("small_cnn", &o, &e);
    if (m) {
        tl_model_init(m, 4);
        m->freeze_bn = freeze_bn;
    }
    return m;
}

static tl_trainer *trainer(tl_model *m, int batch)
{
    tl_err e = {0};
    tl_trainer_opts to;
    tl_trainer_opts_default(&to);
    to.batch = batch;
    to.lr = 0.05;
    to.lr_mult = 1;
    to.parts = 1;
    tl_trainer *t = tl_trainer_new(m, &to, &e);
    CHECK_MSG(t != NULL, "trainer: %s", e.msg);
    return t;
}

static uint64_t seed_of(int step) { return 77 + (uint64_t)step; }

/* The reference: one process, whole batches. */
static float *alone(int freeze_bn, size_t *n)
{
    tl_err e = {0};
    tl_model *m = build(freeze_bn);
    tl_trainer *t = m ? trainer(m, BATCH) : NULL;
    if (!t)
        return NULL;
    for (int s = 0; s < STEPS; s++) {
        tl_step_stats st;
        tl_targets tg = {labels[s], NULL, NULL};
        CHECK_MSG(tl_trainer_step(t, NULL, BATCH, images[s][0], &tg, seed_of(s), &st, &e) == 0, "%s", e.msg);
    }
    float *p = malloc(m->storage_floats * sizeof(float));
    memcpy(p, m->storage, m->storage_floats * sizeof(float));
    *n = m->storage_floats;
    tl_trainer_free(t);
    tl_model_free(m);
    return p;
}

typedef struct {
    ct_world *w;
    int rank, sync, freeze_bn, parts;
    float *params;
    double loss;
} proc;

/* One process: its share of each batch (or, alone, the batch in parts). */
static void *run_proc(void *arg)
{
    proc *p = arg;
    tl_err e = {0};
    ct_end end;
    tl_comm c;
    ct_comm(&c, p->w, &end, p->rank, 3);
    tl_model *m = build(p->freeze_bn);
    tl_trainer *t = m ? trainer(m, (BATCH + c.size - 1) / c.size) : NULL;
    if (!t)
        return NULL;
    if (p->sync)
        CHECK_MSG(tl_trainer_sync_bn(t, &c, &e) == 0, "%s", e.msg);
    for (int s = 0; s < STEPS; s++) {
        int per = BATCH / p->parts;
        for (int k = 0; k < p->parts; k++) {
            int64_t lo, hi;
            tl_comm_share(&c, per, &lo, &hi);
            int first = k * per + (int)lo;
            tl_targets tg = {labels[s] + first, NULL, NULL};
            CHECK_MSG(tl_trainer_part(t, NULL, (int)(hi - lo), images[s][first], &tg, BATCH, first, seed_of(s), &e) == 0,
                      "%s", e.msg);
        }
        tl_step_result r;
        CHECK_MSG(tl_trainer_finish(t, NULL, &c, 0, &r, &e) == 0, "%s", e.msg);
        CHECK(r.images == BATCH && r.flags == 0);
        p->loss = r.loss;
    }
    p->params = malloc(m->storage_floats * sizeof(float));
    memcpy(p->params, m->storage, m->storage_floats * sizeof(float));
    tl_trainer_free(t);
    tl_model_free(m);
    tl_comm_close(&c);
    return NULL;
}

/* Relative difference of all parameters as one vector. */
static double rel(const float *a, const float *b, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)a[i] * a[i];
    }
    return sqrt(d / s);
}

static double together(int N, int sync, int freeze_bn, int parts, const float *ref, size_t n)
{
    ct_world w;
    ct_world_init(&w, N);
    w.jitter = 7;
    proc ps[CT_MAX];
    pthread_t th[CT_MAX];
    for (int r = 0; r < N; r++) {
        ps[r] = (proc){&w, r, sync, freeze_bn, parts, NULL, 0};
        pthread_create(&th[r], NULL, run_proc, &ps[r]);
    }
    for (int r = 0; r < N; r++)
        pthread_join(th[r], NULL);
    double d = -1;
    if (ps[0].params && ref) {
        d = rel(ref, ps[0].params, n);
        /* (each process's own batch norm keeps its own running statistics) */
        for (int r = 1; r < N && (sync || freeze_bn); r++)
            CHECK_MSG(ps[r].params && !memcmp(ps[r].params, ps[0].params, n * sizeof(float)),
                      "%d processes: process %d holds other bits", N, r);
    }
    for (int r = 0; r < N; r++)
        free(ps[r].params);
    CHECK(ct_world_free(&w) == 0);
    return d;
}

int main(void)
{
    tl_rng g;
    tl_rng_seed(&g, 12);
    for (int s = 0; s < STEPS; s++)
        for (int b = 0; b < BATCH; b++) {
            labels[s][b] = (int)tl_rng_below(&g, CLASSES);
            for (int k = 0; k < 3 * SIZE * SIZE; k++)
                images[s][b][k] = tl_rng_normal(&g) + 0.5f * (float)labels[s][b] * (k % 3 == labels[s][b]);
        }
    size_t n = 0;
    float *ref = alone(0, &n);
    double d2 = together(2, 1, 0, 1, ref, n), d3 = together(3, 1, 0, 1, ref, n), own = together(2, 0, 0, 1, ref, n);
    printf("sync batch norm: 2 processes %.2g, 3 processes %.2g; each its own batch norm %.2g\n", d2, d3, own);
    CHECK(d2 >= 0 && d2 < 1e-5);
    CHECK(d3 >= 0 && d3 < 1e-5);
    CHECK(own > 1e-3); /* the check can tell */
    free(ref);
    ref = alone(1, &n);
    double acc = together(1, 0, 1, 2, ref, n), acc2 = together(2, 0, 1, 2, ref, n);
    printf("batch norm frozen: 2 parts of 4 %.2g; 2 processes x 2 parts %.2g\n", acc, acc2);
    CHECK(acc >= 0 && acc < 1e-5);
    CHECK(acc2 >= 0 && acc2 < 1e-5);
    free(ref);
    return check_finish("dist");
}
