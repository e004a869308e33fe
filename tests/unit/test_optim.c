/* Optimisers, gradient utilities, schedules and group learning rates:
 * hand-computed updates, frozen parameters left bit-identical, thread-count
 * independence, checkpoint/resume through the state API, input
 * validation, spec parsing, and (when /usr/bin/python3 has torch) 5-step
 * trajectories against torch.optim.SGD/AdamW and schedule factors against
 * torch.optim.lr_scheduler. TL_BENCH=1 times one step over 3.5 M
 * parameters (MobileNetV2's size). */
#include <math.h>
#include "check.h"
#include "train/optim.h"
#include "train/schedule.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *PY = "/usr/bin/python3";
static const char *REF = "tests/parity/optim_ref.py";

static float *randv(tl_rng *r, int64_t n, float scale)
{
    float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        v[i] = scale * tl_rng_normal(r);
    return v;
}

static tl_optimizer *make_opt(const tl_opt_config *c, const tl_opt_param *p, int n, int ng)
{
    tl_err e = {0};
    tl_optimizer *o = tl_opt_new(c, p, n, ng, &e);
    CHECK_MSG(o != NULL, "%s", e.msg);
    return o;
}

static void test_defaults(void)
{
    tl_opt_config c;
    tl_opt_config_default(&c, TL_OPT_SGD);
    CHECK(c.kind == TL_OPT_SGD && c.momentum == 0.9 && !c.nesterov && c.dampening == 0 && c.weight_decay == 1e-4);
    tl_opt_config_default(&c, TL_OPT_ADAMW);
    CHECK(c.kind == TL_OPT_ADAMW && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8 && c.weight_decay == 0.01);
}

/* Two SGD steps on scalars, worked out by hand. */
static void test_sgd_hand(void)
{
    struct {
        double mom, damp, wd;
        int nesterov;
        double p1, p2;
    } cases[] = {
        /* buf1 = 0.5, p1 = 1 - 0.1*0.5; buf2 = 0.9*0.5 + 0.5 = 0.95, p2 = p1 - 0.095 */
        {0.9, 0, 0, 0, 0.95, 0.855},
        /* d = g + m buf: 0.5 + 0.45 = 0.95 -> p1 = 0.905; buf2 = 0.95, d = 0.5 + 0.855 */
        {0.9, 0, 0, 1, 0.905, 0.7695},
        /* buf2 = 0.45 + 0.5*0.5 = 0.7 */
        {0.9, 0.5, 0, 0, 0.95, 0.88},
        /* no momentum, L2: d1 = 0.5 + 0.1*1 = 0.6, p1 = 0.94; d2 = 0.5 + 0.094, p2 = 0.8806 */
        {0, 0, 0.1, 0, 0.94, 0.8806},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        float p = 1.0f, g = 0.5f;
        tl_opt_param q = {&p, &g, 1, 0, 1, 0};
        tl_opt_config c;
        tl_opt_config_default(&c, TL_OPT_SGD);
        c.momentum = cases[t].mom;
        c.dampening = cases[t].damp;
        c.weight_decay = cases[t].wd;
        c.nesterov = cases[t].nesterov;
        tl_optimizer *o = make_opt(&c, &q, 1, 1);
        if (!o)
            continue;
        double lr = 0.1;
        tl_opt_step(o, &lr, NULL);
        CHECK_NEAR(p, cases[t].p1, 1e-6);
        tl_opt_step(o, &lr, NULL);
        CHECK_NEAR(p, cases[t].p2, 1e-6);
        CHECK(tl_opt_steps(o)[0] == 2);
        CHECK(tl_opt_state_floats(o) == (cases[t].mom != 0 ? 1 : 0));
        tl_opt_free(o);
    }
}

/* AdamW's first step moves each weight by about lr * sign(g) after the
 * decoupled decay; a no-decay parameter is not shrunk. */
static void test_adamw_hand(void)
{
    float w[3] = {1.0f, -2.0f, 0.5f}, gw[3] = {0.3f, -4.0f, 0.0f};
    float b[1] = {1.0f}, gb[1] = {1e-3f};
    tl_opt_param q[2] = {{w, gw, 3, 0, 1, 0}, {b, gb, 1, 0, 0, 0}};
    tl_opt_config c;
    tl_opt_config_default(&c, TL_OPT_ADAMW);
    c.weight_decay = 0.1;
    tl_optimizer *o = make_opt(&c, q, 2, 1);
    if (!o)
        return;
    double lr = 0.01;
    tl_opt_step(o, &lr, NULL);
    double shrink = 1 - 0.01 * 0.1;
    CHECK_NEAR(w[0], 1.0 * shrink - 0.01, 1e-6);
    CHECK_NEAR(w[1], -2.0 * shrink + 0.01, 1e-6);
    CHECK_NEAR(w[2], 0.5 * shrink, 1e-7);
    CHECK_NEAR(b[0], 1.0 - 0.01 * 1e-3 / (1e-3 + 1e-8), 1e-7);
    CHECK(tl_opt_state_floats(o) == 8);
    tl_opt_free(o);
}

/* Frozen parameters: data, grads and (absent) state untouched while
 * others train; unfreezing allocates state once and starts a fresh
 * bias correction. */
static void test_frozen(void)
{
    tl_rng r;
    tl_rng_seed(&r, 5);
    const int64_t n = 40000; /* several chunks */
    float *a = randv(&r, n, 1), *ga = randv(&r, n, 1), *b = randv(&r, 100, 1), *gb = randv(&r, 100, 1);
    float *orig = malloc(sizeof(float) * n), *a0 = malloc(sizeof(float) * n), *ga0 = malloc(sizeof(float) * n);
    memcpy(orig, a, sizeof(float) * n);
    memcpy(ga0, ga, sizeof(float) * n);
    for (int kind = TL_OPT_SGD; kind <= TL_OPT_ADAMW; kind++) {
        memcpy(a, orig, sizeof(float) * n);
        memcpy(a0, orig, sizeof(float) * n);
        tl_opt_param q[2] = {{a, ga, n, 0, 1, 1}, {b, gb, 100, 1, 1, 0}};
        tl_opt_config c;
        tl_opt_config_default(&c, kind);
        tl_optimizer *o = make_opt(&c, q, 2, 2);
        if (!o)
            continue;
        int nb = kind == TL_OPT_ADAMW ? 2 : 1;
        CHECK(tl_opt_state_floats(o) == 100 * nb);
        double lr[2] = {0.1, 0.1};
        tl_pool *pool = tl_pool_new(3, NULL);
        for (int s = 0; s < 3; s++)
            tl_opt_step(o, lr, pool);
        CHECK(memcmp(a, a0, sizeof(float) * n) == 0);
        CHECK(memcmp(ga, ga0, sizeof(float) * n) == 0);
        CHECK(tl_opt_steps(o)[0] == 0 && tl_opt_steps(o)[1] == 3);
        tl_opt_state st;
        tl_err e = {0};
        CHECK(tl_opt_state_get(o, 0, 0, &st, &e) == 0 && st.data == NULL && strcmp(st.name, "opt.0.m") == 0);
        double n1 = tl_grad_norm(tl_opt_params(o), tl_opt_nparams(o));
        CHECK(tl_opt_set_frozen(o, 0, 0, &e) == 0);
        CHECK(tl_grad_norm(tl_opt_params(o), tl_opt_nparams(o)) > n1);
        CHECK(tl_opt_state_floats(o) == (n + 100) * nb);
        tl_opt_step(o, lr, pool);
        CHECK(memcmp(a, a0, sizeof(float) * n) != 0);
        CHECK(tl_opt_steps(o)[0] == 1 && tl_opt_steps(o)[1] == 4);
        if (kind == TL_OPT_ADAMW) /* fresh bias correction: first move ~ lr */
            CHECK_NEAR(fabs(a[7] - a0[7] * (1 - 0.1 * 0.01)), 0.1, 1e-4);
        else /* buffer starts as this gradient: p -= lr (g + wd p) */
            CHECK_NEAR(a[7], a0[7] - 0.1f * (ga[7] + 1e-4f * a0[7]), 1e-6);
        /* refreezing keeps the state; the parameter stays put */
        memcpy(a0, a, sizeof(float) * n);
        CHECK(tl_opt_set_frozen(o, 0, 1, &e) == 0);
        tl_opt_step(o, lr, pool);
        CHECK(memcmp(a, a0, sizeof(float) * n) == 0);
        CHECK(tl_opt_state_floats(o) == (n + 100) * nb);
        tl_pool_free(pool);
        tl_opt_free(o);
    }
    free(orig);
    free(a);
    free(ga);
    free(b);
    free(gb);
    free(a0);
    free(ga0);
}

typedef struct {
    int n;
    int64_t *numel;
    float **data, **grad;
    tl_opt_param *p;
} net;

/* A toy network: tensors of assorted sizes in 3 groups, every third a
 * no-decay "bias". */
static net net_new(uint64_t seed, int n, const int64_t *sizes)
{
    tl_rng r;
    tl_rng_seed(&r, seed);
    net N = {n, malloc(sizeof(int64_t) * n), malloc(sizeof(float *) * n), malloc(sizeof(float *) * n),
             malloc(sizeof(tl_opt_param) * n)};
    for (int i = 0; i < n; i++) {
        N.numel[i] = sizes[i];
        N.data[i] = randv(&r, sizes[i], 0.5f);
        N.grad[i] = randv(&r, sizes[i], 0.1f);
        N.p[i] = (tl_opt_param){N.data[i], N.grad[i], sizes[i], i * 3 / n, i % 3 != 2, 0};
    }
    return N;
}

static void net_grads(net *N, tl_rng *r, int step)
{
    for (int i = 0; i < N->n; i++)
        for (int64_t j = 0; j < N->numel[i]; j++)
            N->grad[i][j] = (float)(0.1 + 0.05 * step) * tl_rng_normal(r);
}

static void net_free(net *N)
{
    for (int i = 0; i < N->n; i++) {
        free(N->data[i]);
        free(N->grad[i]);
    }
    free(N->numel);
    free(N->data);
    free(N->grad);
    free(N->p);
}

static int net_same(const net *A, const net *B)
{
    for (int i = 0; i < A->n; i++)
        if (memcmp(A->data[i], B->data[i], sizeof(float) * (size_t)A->numel[i]) != 0)
            return 0;
    return 1;
}

static const int64_t SIZES[] = {20000, 64, 3000, 70000, 1, 512, 16385, 10, 7};
#define NSIZES ((int)(sizeof SIZES / sizeof SIZES[0]))

static void run_steps(tl_optimizer *o, net *N, uint64_t seed, int from, int to, tl_pool *pool)
{
    tl_rng r;
    tl_rng_seed_stream(&r, seed, (uint64_t)from);
    for (int s = from; s < to; s++) {
        tl_rng_seed_stream(&r, seed, (uint64_t)s);
        net_grads(N, &r, s);
        double lr[3] = {1e-3 * (1 + s), 2e-3, 1e-2 / (1 + s)};
        tl_opt_step(o, lr, pool);
    }
}

/* Any thread count gives the same bits. */
static void test_threads(void)
{
    for (int kind = TL_OPT_SGD; kind <= TL_OPT_ADAMW; kind++) {
        tl_opt_config c;
        tl_opt_config_default(&c, kind);
        c.nesterov = kind == TL_OPT_SGD;
        net A = net_new(7, NSIZES, SIZES), B = net_new(7, NSIZES, SIZES);
        tl_optimizer *oa = make_opt(&c, A.p, A.n, 3), *ob = make_opt(&c, B.p, B.n, 3);
        tl_pool *pool = tl_pool_new(4, NULL);
        if (oa && ob) {
            run_steps(oa, &A, 9, 0, 4, NULL);
            run_steps(ob, &B, 9, 0, 4, pool);
            CHECK_MSG(net_same(&A, &B), "kind %d: 1 and 4 threads differ", kind);
        }
        tl_pool_free(pool);
        tl_opt_free(oa);
        tl_opt_free(ob);
        net_free(&A);
        net_free(&B);
    }
}

/* 5 steps straight equal 3 steps, a save of the state through the API
 * into a fresh optimiser, and 2 more steps. Parameter 1 stays frozen
 * (no state to save), parameter 4 is unfrozen after the save. */
static void test_resume(void)
{
    for (int kind = TL_OPT_SGD; kind <= TL_OPT_ADAMW; kind++) {
        tl_opt_config c;
        tl_opt_config_default(&c, kind);
        net A = net_new(3, NSIZES, SIZES), B = net_new(3, NSIZES, SIZES);
        A.p[1].frozen = B.p[1].frozen = 1;
        A.p[4].frozen = B.p[4].frozen = 1;
        tl_err e = {0};
        tl_optimizer *oa = make_opt(&c, A.p, A.n, 3), *ob = make_opt(&c, B.p, B.n, 3);
        if (!oa || !ob)
            return;
        run_steps(oa, &A, 4, 0, 3, NULL);
        CHECK(tl_opt_set_frozen(oa, 4, 0, &e) == 0);
        run_steps(oa, &A, 4, 3, 5, NULL);

        run_steps(ob, &B, 4, 0, 3, NULL);
        /* "checkpoint": copy out every allocated buffer by name */
        int ns = tl_opt_nstate(ob);
        CHECK(ns == NSIZES * (kind == TL_OPT_ADAMW ? 2 : 1));
        char (*names)[40] = calloc((size_t)ns, 40);
        float **saved = calloc((size_t)ns, sizeof(float *));
        int64_t *sizes = calloc((size_t)ns, sizeof(int64_t)), steps[NSIZES];
        int nsaved = 0;
        for (int k = 0; k < ns; k++) {
            tl_opt_state st;
            CHECK(tl_opt_state_get(ob, k, 0, &st, &e) == 0);
            CHECK(tl_opt_state_find(ob, st.name) == k);
            if (!st.data) {
                CHECK(st.param == 1 || st.param == 4);
                continue;
            }
            strcpy(names[nsaved], st.name);
            sizes[nsaved] = st.numel;
            saved[nsaved] = malloc(sizeof(float) * (size_t)st.numel);
            memcpy(saved[nsaved++], st.data, sizeof(float) * (size_t)st.numel);
        }
        CHECK(nsaved == (NSIZES - 2) * (kind == TL_OPT_ADAMW ? 2 : 1));
        memcpy(steps, tl_opt_steps(ob), sizeof steps);
        tl_opt_free(ob);
        /* "resume": a new optimiser over the same parameters and flags */
        ob = make_opt(&c, B.p, B.n, 3);
        if (!ob)
            return;
        for (int k = 0; k < nsaved; k++) {
            tl_opt_state st;
            int slot = tl_opt_state_find(ob, names[k]);
            CHECK(slot >= 0 && tl_opt_state_get(ob, slot, 1, &st, &e) == 0 && st.numel == sizes[k]);
            if (slot >= 0 && st.data)
                memcpy(st.data, saved[k], sizeof(float) * (size_t)sizes[k]);
            free(saved[k]);
        }
        memcpy(tl_opt_steps(ob), steps, sizeof steps);
        CHECK(tl_opt_set_frozen(ob, 4, 0, &e) == 0);
        run_steps(ob, &B, 4, 3, 5, NULL);
        CHECK_MSG(net_same(&A, &B), "kind %d: resumed run differs", kind);
        CHECK(tl_opt_state_find(ob, "opt.0.x") < 0 && tl_opt_state_find(ob, "opt.99.m") < 0);
        CHECK(tl_opt_state_find(ob, "opt.01.m") < 0 && tl_opt_state_find(ob, "opt.0.m ") < 0);
        CHECK((tl_opt_state_find(ob, "opt.2.v") >= 0) == (kind == TL_OPT_ADAMW));
        free(names);
        free(saved);
        free(sizes);
        tl_opt_free(oa);
        tl_opt_free(ob);
        net_free(&A);
        net_free(&B);
    }
}

static void expect_new_error(const tl_opt_config *c, const tl_opt_param *p, int n, int ng, const char *msg)
{
    tl_err e = {0};
    tl_optimizer *o = tl_opt_new(c, p, n, ng, &e);
    CHECK_MSG(o == NULL && strcmp(e.msg, msg) == 0, "got '%s', expected '%s'", e.msg, msg);
    tl_opt_free(o);
}

static void test_invalid(void)
{
    float d[4] = {0}, g[4] = {0};
    tl_opt_param p = {d, g, 4, 0, 1, 0};
    tl_opt_config c;
    tl_opt_config_default(&c, TL_OPT_SGD);
    expect_new_error(&c, &p, 1, 0, "0 parameter groups, expected at least 1");
    p.group = 2;
    expect_new_error(&c, &p, 1, 2, "parameter 0 is in group 2, expected 0..1");
    p.group = 0;
    p.grad = NULL;
    expect_new_error(&c, &p, 1, 1, "trainable parameter 0 has no gradient buffer");
    p.grad = g;
    c.nesterov = 1;
    c.dampening = 0.1;
    expect_new_error(&c, &p, 1, 1, "nesterov momentum needs momentum > 0 and zero dampening");
    tl_opt_config_default(&c, TL_OPT_SGD);
    c.momentum = 1.5;
    expect_new_error(&c, &p, 1, 1, "momentum 1.5 must be in [0, 1)");
    tl_opt_config_default(&c, TL_OPT_ADAMW);
    c.beta2 = 1.0;
    expect_new_error(&c, &p, 1, 1, "beta2 1 must be in [0, 1)");
    c.beta2 = 0.999;
    c.weight_decay = -1;
    expect_new_error(&c, &p, 1, 1, "weight decay -1 must be finite and >= 0");
    c.weight_decay = 0;
    c.kind = 7;
    expect_new_error(&c, &p, 1, 1, "unknown optimiser kind 7");
    /* frozen without a grad is fine until it is unfrozen */
    tl_opt_config_default(&c, TL_OPT_ADAMW);
    p.grad = NULL;
    p.frozen = 1;
    tl_err e = {0};
    tl_optimizer *o = tl_opt_new(&c, &p, 1, 1, &e);
    CHECK(o != NULL);
    if (o) {
        CHECK(tl_opt_set_frozen(o, 0, 0, &e) < 0 &&
              strcmp(e.msg, "cannot unfreeze parameter 0: it has no gradient buffer") == 0);
        CHECK(tl_opt_set_frozen(o, 3, 0, &e) < 0 && strcmp(e.msg, "parameter index 3 out of range (1 parameters)") == 0);
        tl_opt_state st;
        CHECK(tl_opt_state_get(o, 2, 0, &st, &e) < 0);
        tl_opt_free(o);
    }
    /* an empty parameter list is legal and a step is a no-op */
    o = tl_opt_new(&c, NULL, 0, 1, &e);
    CHECK(o != NULL && tl_opt_nstate(o) == 0);
    double lr = 1;
    if (o)
        tl_opt_step(o, &lr, NULL);
    tl_opt_free(o);
}

static void test_grad_utils(void)
{
    float g1[3] = {3, 0, 4}, g2[2] = {12, 0}, g3[2] = {NAN, INFINITY}, d[3] = {0};
    tl_opt_param p[3] = {{d, g1, 3, 0, 1, 0}, {d, g2, 2, 0, 1, 0}, {d, g3, 2, 0, 1, 1}};
    CHECK_NEAR(tl_grad_norm(p, 3), 13.0, 1e-12); /* frozen NaNs skipped */
    CHECK(tl_grads_finite(p, 3) == 1);
    p[2].frozen = 0;
    CHECK(tl_grads_finite(p, 3) == 0);
    CHECK(!isfinite(tl_grad_clip(p, 3, 1.0)) && g1[0] == 3); /* non-finite: untouched */
    g3[0] = 0;
    CHECK(tl_grads_finite(p, 3) == 0); /* Inf alone */
    g3[1] = 0;
    CHECK(tl_grads_finite(p, 3) == 1);
    tl_grad_scale(p, 2, 2.0f);
    CHECK(g1[2] == 8 && g2[0] == 24);
    double norm = tl_grad_clip(p, 3, 13.0);
    CHECK_NEAR(norm, 26.0, 1e-12);
    CHECK_NEAR(tl_grad_norm(p, 3), 13.0, 1e-5);
    norm = tl_grad_clip(p, 3, 100.0); /* below the limit: unchanged */
    CHECK_NEAR(tl_grad_norm(p, 3), norm, 0);
    /* double accumulation: 1e6 values of 1e-3 */
    int64_t n = 1000000;
    float *big = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++)
        big[i] = 1e-3f;
    tl_opt_param pb = {big, big, n, 0, 1, 0};
    CHECK_NEAR(tl_grad_norm(&pb, 1), sqrt((double)n) * 1e-3f, 1e-9);
    free(big);
}

static void test_schedule_values(void)
{
    tl_schedule s;
    tl_schedule_default(&s, TL_SCHED_CONSTANT, 100);
    CHECK(tl_schedule_factor(&s, 0) == 1 && tl_schedule_factor(&s, 1000) == 1);
    s.warmup_steps = 10;
    s.warmup_start_factor = 0.1;
    CHECK_NEAR(tl_schedule_factor(&s, 0), 0.1, 1e-15);
    CHECK_NEAR(tl_schedule_factor(&s, 5), 0.55, 1e-15);
    CHECK(tl_schedule_factor(&s, 10) == 1);

    tl_schedule_default(&s, TL_SCHED_STEP, 90);
    CHECK(s.step_size == 30 && s.gamma == 0.1);
    CHECK(tl_schedule_factor(&s, 29) == 1);
    CHECK_NEAR(tl_schedule_factor(&s, 30), 0.1, 1e-15);
    CHECK_NEAR(tl_schedule_factor(&s, 89), 0.01, 1e-15);

    tl_schedule_default(&s, TL_SCHED_COSINE, 100);
    s.min_factor = 0.1;
    CHECK(tl_schedule_factor(&s, 0) == 1);
    CHECK_NEAR(tl_schedule_factor(&s, 50), 0.55, 1e-15);
    CHECK(tl_schedule_factor(&s, 100) == 0.1 && tl_schedule_factor(&s, 5000) == 0.1);
    s.warmup_steps = 20;
    CHECK_NEAR(tl_schedule_factor(&s, 20), 1.0, 1e-15);
    CHECK_NEAR(tl_schedule_factor(&s, 60), 0.55, 1e-15);

    tl_schedule_default(&s, TL_SCHED_ONECYCLE, 100);
    CHECK_NEAR(tl_schedule_factor(&s, 0), 1.0 / 25, 1e-15);
    CHECK_NEAR(tl_schedule_factor(&s, 29), 1.0, 1e-15); /* peak at pct*total - 1 */
    CHECK_NEAR(tl_schedule_factor(&s, 99), 1.0 / 25 / 1e4, 1e-15);
    CHECK_NEAR(tl_schedule_factor(&s, 1000), 1.0 / 25 / 1e4, 1e-15);
    for (int t = 1; t < 100; t++) {
        double a = tl_schedule_factor(&s, t - 1), b = tl_schedule_factor(&s, t);
        CHECK_MSG(t <= 29 ? b > a : b < a, "onecycle not monotone at %d", t);
    }
    tl_schedule_default(&s, TL_SCHED_ONECYCLE, 1);
    CHECK(isfinite(tl_schedule_factor(&s, 0)));
}

static void expect_parse(const char *spec, int64_t total, const char *msg)
{
    tl_schedule s;
    tl_schedule_default(&s, TL_SCHED_CONSTANT, 0);
    s.total_steps = total;
    tl_err e = {0};
    int rc = tl_schedule_parse(spec, &s, &e);
    if (msg)
        CHECK_MSG(rc < 0 && strcmp(e.msg, msg) == 0, "'%s': got '%s', expected '%s'", spec, e.msg, msg);
    else
        CHECK_MSG(rc == 0, "'%s': %s", spec, e.msg);
}

static void test_schedule_parse(void)
{
    tl_schedule s;
    tl_err e = {0};
    s.total_steps = 1000;
    CHECK(tl_schedule_parse("step:30:0.1", &s, &e) == 0);
    CHECK(s.kind == TL_SCHED_STEP && s.step_size == 30 && s.gamma == 0.1 && s.total_steps == 1000);
    CHECK(tl_schedule_parse("step:size=40,gamma=0.5:warmup=10", &s, &e) == 0);
    CHECK(s.step_size == 40 && s.gamma == 0.5 && s.warmup_steps == 10);
    CHECK(tl_schedule_parse("step", &s, &e) == 0 && s.step_size == 333);
    CHECK(tl_schedule_parse("cosine:warmup=500", &s, &e) == 0);
    CHECK(s.kind == TL_SCHED_COSINE && s.warmup_steps == 500 && s.min_factor == 0);
    CHECK(tl_schedule_parse("cosine:warmup=100,min=0.01,warmup_start=0", &s, &e) == 0);
    CHECK(s.min_factor == 0.01 && s.warmup_start_factor == 0 && tl_schedule_factor(&s, 0) == 0);
    CHECK(tl_schedule_parse("onecycle:pct=0.25,div=10,final_div=100", &s, &e) == 0);
    CHECK(s.kind == TL_SCHED_ONECYCLE && s.pct_start == 0.25 && s.div_factor == 10 && s.final_div_factor == 100);
    CHECK(tl_schedule_parse("constant", &s, &e) == 0 && s.kind == TL_SCHED_CONSTANT && s.warmup_steps == 0);
    expect_parse("constant", 0, NULL);
    expect_parse("step:30:0.1", 0, NULL);
    expect_parse("", 100, "empty learning-rate schedule");
    expect_parse("cosin", 100, "unknown schedule 'cosin' (expected constant, step, cosine or onecycle)");
    expect_parse("cosine:", 100, "schedule 'cosine:': empty item");
    expect_parse("cosine:warmup=5,,min=0", 100, "schedule 'cosine:warmup=5,,min=0': empty item");
    expect_parse("cosine:gamma=0.1", 100, "unknown option 'gamma' for schedule cosine (expected min, warmup, warmup_start)");
    expect_parse("onecycle:warmup=5", 100, "unknown option 'warmup' for schedule onecycle (expected pct, div, final_div)");
    expect_parse("cosine:500", 100, "unexpected value '500' in schedule 'cosine:500' (use KEY=VALUE; keys: min, warmup, warmup_start)");
    expect_parse("step:30:0.1:5", 100, "unexpected value '5' in schedule 'step:30:0.1:5' (use KEY=VALUE; keys: size, gamma, warmup, warmup_start)");
    expect_parse("step:30:size=20", 100, "schedule option size given twice");
    expect_parse("step:x", 100, "schedule option size: 'x' is not a whole number");
    expect_parse("step:3.5", 100, "schedule option size: '3.5' is not a whole number");
    expect_parse("step:0", 100, "step schedule: step size 0 must be >= 1");
    expect_parse("step:10:-1", 100, "step schedule: gamma -1 must be finite and > 0");
    expect_parse("step:10:nan", 100, "schedule option gamma: 'nan' is not a finite number");
    expect_parse("step", 0, "step schedule needs a step size when the run length is unknown (e.g. step:30:0.1)");
    expect_parse("cosine", 0, "cosine schedule needs more total steps (0) than warm-up steps (0)");
    expect_parse("cosine:warmup=100", 100, "cosine schedule needs more total steps (100) than warm-up steps (100)");
    expect_parse("cosine:min=2", 100, "cosine schedule: min 2 must be in [0, 1]");
    expect_parse("cosine:warmup=-3", 100, "negative warm-up -3");
    expect_parse("constant:warmup_start=1.5", 100, "warm-up start factor 1.5 must be in [0, 1]");
    expect_parse("onecycle", 0, "onecycle schedule needs the total number of steps");
    expect_parse("onecycle:pct=1.2", 100, "onecycle schedule: pct 1.2 must be in [0, 1]");
    expect_parse("onecycle:div=0", 100, "onecycle schedule: div 0 must be finite and > 0");
    expect_parse("onecycle:pct=", 100, "schedule option pct: '' is not a number");
    /* a failed parse leaves s alone */
    s.total_steps = 1000;
    CHECK(tl_schedule_parse("step:30:0.1", &s, &e) == 0);
    CHECK(tl_schedule_parse("step:30:-1", &s, &e) < 0 && s.gamma == 0.1);
}

static void test_group_lrs(void)
{
    double lr[4];
    tl_err e = {0};
    CHECK(tl_group_lrs(4, 1e-2, 0.1, NULL, 0, lr, &e) == 0);
    CHECK(lr[3] == 1e-2);
    CHECK_NEAR(lr[2], 1e-3, 1e-18);
    CHECK_NEAR(lr[0], 1e-5, 1e-18);
    const double three[] = {1e-4, 1e-4, 1e-3}, two[] = {1e-4, 1e-3}, neg[] = {-1, 1}, inf[] = {1, INFINITY};
    CHECK(tl_group_lrs(1, 0.5, 0.1, three, 0, lr, &e) == 0 && lr[0] == 0.5);
    CHECK(tl_group_lrs(3, 9, 9, three, 3, lr, &e) == 0 && lr[0] == 1e-4 && lr[1] == 1e-4 && lr[2] == 1e-3);
    CHECK(tl_group_lrs(3, 1, 1, two, 2, lr, &e) < 0 && strcmp(e.msg, "2 learning rates given for 3 parameter groups") == 0 &&
          e.kind == TL_ERR_ARG);
    CHECK(tl_group_lrs(2, 1, 1, three, 3, lr, &e) < 0 && strcmp(e.msg, "3 learning rates given for 2 parameter groups") == 0);
    CHECK(tl_group_lrs(2, 1, 1, neg, 2, lr, &e) < 0 && strcmp(e.msg, "learning rate -1 is not a finite number >= 0") == 0);
    CHECK(tl_group_lrs(2, 1, 1, inf, 2, lr, &e) < 0 && strcmp(e.msg, "learning rate inf is not a finite number >= 0") == 0);
    CHECK(tl_group_lrs(2, 1, 0, NULL, 0, lr, &e) < 0 && strcmp(e.msg, "learning-rate multiplier 0 must be finite and > 0") == 0);
    CHECK(tl_group_lrs(0, 1, 1, NULL, 0, lr, &e) < 0 && strcmp(e.msg, "0 parameter groups, expected at least 1") == 0);
}

/* --- PyTorch parity --- */

static int write_raw(const char *dir, const char *name, const char *ext, const void *p, size_t bytes)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(p, 1, bytes, f);
    return fclose(f) == 0 && w == bytes ? 0 : -1;
}

static void *read_raw(const char *dir, const char *name, const char *ext, size_t bytes)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    void *p = malloc(bytes + 1);
    size_t got = fread(p, 1, bytes + 1, f);
    fclose(f);
    if (got != bytes) {
        free(p);
        return NULL;
    }
    return p;
}

#define PSTEPS 5
static const int64_t PSIZES[] = {20000, 37, 300, 1, 16400, 64};
#define NP ((int)(sizeof PSIZES / sizeof PSIZES[0]))
static const int PGROUPS[NP] = {0, 0, 1, 1, 2, 2}, PDECAY[NP] = {1, 0, 1, 0, 1, 0};

typedef struct {
    const char *name;
    tl_opt_config c;
} opt_case;

static int64_t ptotal(void)
{
    int64_t t = 0;
    for (int i = 0; i < NP; i++)
        t += PSIZES[i];
    return t;
}

/* Frozen pattern: parameter 2 unfreezes at step 2 (progressive
 * unfreezing), parameter 3 stays frozen, the others train throughout. */
static int pfrozen(int s, int i) { return (i == 2 && s < 2) || i == 3; }

static void write_opt_case(FILE *cases, const char *dir, const opt_case *oc, uint64_t seed)
{
    int64_t total = ptotal();
    tl_rng r;
    tl_rng_seed(&r, seed);
    float *init = randv(&r, total, 0.5f), *grad = malloc(sizeof(float) * total * PSTEPS);
    for (int s = 0; s < PSTEPS; s++)
        for (int64_t j = 0; j < total; j++) /* changing scale, some exact zeros */
            grad[s * total + j] = j % 17 == 3 ? 0.0f : (float)(0.02 * (1 + s)) * tl_rng_normal(&r);
    double lr[PSTEPS * 3];
    unsigned char fr[PSTEPS * NP];
    for (int s = 0; s < PSTEPS; s++) {
        lr[s * 3 + 0] = 1e-3 * (1 + 0.5 * s);
        lr[s * 3 + 1] = 3e-3;
        lr[s * 3 + 2] = 2e-2 / (1 + s);
        for (int i = 0; i < NP; i++)
            fr[s * NP + i] = (unsigned char)pfrozen(s, i);
    }
    write_raw(dir, oc->name, "init.f32", init, sizeof(float) * total);
    write_raw(dir, oc->name, "grad.f32", grad, sizeof(float) * total * PSTEPS);
    write_raw(dir, oc->name, "lr.f64", lr, sizeof lr);
    write_raw(dir, oc->name, "frozen.u8", fr, sizeof fr);
    const tl_opt_config *c = &oc->c;
    fprintf(cases, "opt %s kind=%s sizes=", oc->name, c->kind == TL_OPT_SGD ? "sgd" : "adamw");
    for (int i = 0; i < NP; i++)
        fprintf(cases, "%s%lld", i ? "," : "", (long long)PSIZES[i]);
    fprintf(cases, " groups=");
    for (int i = 0; i < NP; i++)
        fprintf(cases, "%s%d", i ? "," : "", PGROUPS[i]);
    fprintf(cases, " decay=");
    for (int i = 0; i < NP; i++)
        fprintf(cases, "%s%d", i ? "," : "", PDECAY[i]);
    fprintf(cases, " steps=%d ngroups=3 momentum=%.17g dampening=%.17g nesterov=%d beta1=%.17g beta2=%.17g eps=%.17g wd=%.17g\n",
            PSTEPS, c->momentum, c->dampening, c->nesterov, c->beta1, c->beta2, c->eps, c->weight_decay);
    free(init);
    free(grad);
}

/* Replays the case with our optimiser and compares every step. Error
 * measure: |ours - ref| / max(|ref|, 1e-2) per element (the floor keeps
 * weights that pass through zero from dividing by ~0; weights are ~0.5). */
static void check_opt_case(const char *dir, const opt_case *oc, tl_pool *pool)
{
    int64_t total = ptotal();
    float *init = read_raw(dir, oc->name, "init.f32", sizeof(float) * total);
    float *grad = read_raw(dir, oc->name, "grad.f32", sizeof(float) * total * PSTEPS);
    double *lr = read_raw(dir, oc->name, "lr.f64", sizeof(double) * 3 * PSTEPS);
    float *ref = read_raw(dir, oc->name, "ref.f32", sizeof(float) * total * PSTEPS);
    CHECK_MSG(init && grad && lr && ref, "%s: missing files", oc->name);
    float *data = malloc(sizeof(float) * total), *g = malloc(sizeof(float) * total);
    if (init && grad && lr && ref) {
        memcpy(data, init, sizeof(float) * total);
        tl_opt_param p[NP];
        int64_t off = 0;
        for (int i = 0; i < NP; i++) {
            p[i] = (tl_opt_param){data + off, g + off, PSIZES[i], PGROUPS[i], PDECAY[i], pfrozen(0, i)};
            off += PSIZES[i];
        }
        tl_optimizer *o = make_opt(&oc->c, p, NP, 3);
        double worst = 0;
        for (int s = 0; o && s < PSTEPS; s++) {
            for (int i = 0; i < NP; i++)
                tl_opt_set_frozen(o, i, pfrozen(s, i), NULL);
            memcpy(g, grad + s * total, sizeof(float) * total);
            tl_opt_step(o, lr + s * 3, pool);
            for (int64_t j = 0; j < total; j++) {
                double rf = ref[s * total + j], err = fabs(data[j] - rf) / fmax(fabs(rf), 1e-2);
                worst = fmax(worst, err);
            }
        }
        /* parameter 3 was frozen throughout: bit-identical */
        CHECK(memcmp(data + PSIZES[0] + PSIZES[1] + PSIZES[2], init + PSIZES[0] + PSIZES[1] + PSIZES[2], 4) == 0);
        CHECK_MSG(worst <= 1e-6, "%s: relative error %.3g after %d steps", oc->name, worst, PSTEPS);
        printf("test_optim: %-13s max relative error vs torch over %d steps: %.3g\n", oc->name, PSTEPS, worst);
        tl_opt_free(o);
    }
    free(init);
    free(grad);
    free(lr);
    free(ref);
    free(data);
    free(g);
}

typedef struct {
    const char *name, *spec;
    int64_t total;
} sched_case;

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *ent;
    char path[600];
    while (d && (ent = readdir(d))) {
        if (ent->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        remove(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static void test_reference(void)
{
    if (access(PY, X_OK) != 0 || access(REF, R_OK) != 0) {
        printf("test_optim: skipped torch comparison (no %s or %s)\n", PY, REF);
        return;
    }
    char dir[] = "/tmp/tl_test_optim_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK_MSG(0, "cannot create a temporary directory");
        return;
    }
    opt_case oc[6];
    const char *names[6] = {"sgd", "sgd_nesterov", "sgd_dampening", "sgd_plain", "adamw", "adamw_betas"};
    for (int k = 0; k < 6; k++) {
        oc[k].name = names[k];
        tl_opt_config_default(&oc[k].c, k < 4 ? TL_OPT_SGD : TL_OPT_ADAMW);
    }
    oc[0].c.weight_decay = 0.05;
    oc[1].c.nesterov = 1;
    oc[1].c.weight_decay = 0.01;
    oc[2].c.momentum = 0.8;
    oc[2].c.dampening = 0.3;
    oc[2].c.weight_decay = 0;
    oc[3].c.momentum = 0;
    oc[3].c.weight_decay = 0.01;
    oc[4].c.weight_decay = 0.05;
    oc[5].c.beta1 = 0.8;
    oc[5].c.beta2 = 0.99;
    oc[5].c.eps = 1e-6;
    oc[5].c.weight_decay = 0;
    static const sched_case sc[] = {
        {"step", "step:30:0.1", 100},
        {"step_warm", "step:7:0.5:warmup=10,warmup_start=0.25", 100},
        {"constant_warm", "constant:warmup=20", 50},
        {"cosine", "cosine", 200},
        {"cosine_min", "cosine:min=0.05", 200},
        {"cosine_warm", "cosine:warmup=50,warmup_start=0.1,min=0.01", 300},
        {"onecycle", "onecycle", 100},
        {"onecycle_b", "onecycle:pct=0.25,div=10,final_div=100", 1000},
        {"onecycle_short", "onecycle", 7},
    };
    const int nsc = (int)(sizeof sc / sizeof sc[0]);
    tl_schedule S[sizeof sc / sizeof sc[0]];
    char path[600];
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    FILE *cases = fopen(path, "w");
    CHECK(cases != NULL);
    if (!cases)
        return;
    for (int k = 0; k < 6; k++)
        write_opt_case(cases, dir, &oc[k], 100 + (uint64_t)k);
    static const char *const kinds[] = {"constant", "step", "cosine", "onecycle"};
    for (int k = 0; k < nsc; k++) {
        tl_err e = {0};
        S[k].total_steps = sc[k].total;
        int rc = tl_schedule_parse(sc[k].spec, &S[k], &e);
        CHECK_MSG(rc == 0, "%s: %s", sc[k].spec, e.msg);
        fprintf(cases, "sched %s kind=%s total=%lld warmup=%lld warmup_start=%.17g size=%lld gamma=%.17g min=%.17g pct=%.17g div=%.17g final_div=%.17g\n",
                sc[k].name, kinds[S[k].kind], (long long)S[k].total_steps, (long long)S[k].warmup_steps,
                S[k].warmup_start_factor, (long long)S[k].step_size, S[k].gamma, S[k].min_factor, S[k].pct_start,
                S[k].div_factor, S[k].final_div_factor);
    }
    fclose(cases);

    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s %s 2>&1", PY, REF, dir);
    FILE *p = popen(cmd, "r");
    char out[2048] = "";
    size_t got = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[got] = '\0';
    int st = p ? pclose(p) : -1;
    if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        printf("test_optim: skipped torch comparison (%s)\n", strtok(out, "\n") ? out : "");
    } else if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        CHECK_MSG(0, "reference script failed: %s", out);
    } else {
        tl_pool *pool = tl_pool_new(3, NULL);
        for (int k = 0; k < 6; k++)
            check_opt_case(dir, &oc[k], k % 2 ? pool : NULL);
        tl_pool_free(pool);
        for (int k = 0; k < nsc; k++) {
            double *ref = read_raw(dir, sc[k].name, "ref.f64", sizeof(double) * (size_t)sc[k].total);
            CHECK_MSG(ref != NULL, "%s: no reference", sc[k].name);
            double worst = 0;
            for (int64_t t = 0; ref && t < sc[k].total; t++)
                worst = fmax(worst, fabs(tl_schedule_factor(&S[k], t) - ref[t]));
            CHECK_MSG(worst <= 1e-9, "%s (%s): factor error %.3g", sc[k].name, sc[k].spec, worst);
            printf("test_optim: schedule %-30s max |factor - torch| over %lld steps: %.3g\n", sc[k].spec,
                   (long long)sc[k].total, worst);
            free(ref);
        }
    }
    remove_dir(dir);
}

/* One optimiser step over MobileNetV2's 3.5 M parameters, shaped roughly
 * like its tensors (many small, a few large). Timing only, no assertion. */
static void bench(void)
{
    const char *b = getenv("TL_BENCH");
    if (!b || strcmp(b, "1") != 0)
        return;
    enum { NT = 158 };
    int64_t sizes[NT], total = 0;
    for (int i = 0; i < NT; i++) {
        sizes[i] = i % 3 == 0 ? 50000 : i % 3 == 1 ? 12000 : 320;
        total += sizes[i];
    }
    sizes[NT - 1] += 3500000 - total; /* the rest in the last tensor */
    net N = net_new(1, NT, sizes);
    int nt = tl_cpu_count();
    tl_pool *pool = tl_pool_new(nt, NULL);
    for (int kind = TL_OPT_SGD; kind <= TL_OPT_ADAMW; kind++) {
        tl_opt_config c;
        tl_opt_config_default(&c, kind);
        tl_optimizer *o = make_opt(&c, N.p, N.n, 3);
        double lr[3] = {1e-4, 1e-4, 1e-3};
        for (int pass = 0; pass < 2 && o; pass++) {
            tl_pool *use = pass ? pool : NULL;
            tl_opt_step(o, lr, use); /* warm the caches and page in the state */
            int reps = 20;
            double t0 = tl_now();
            for (int r = 0; r < reps; r++)
                tl_opt_step(o, lr, use);
            double ms = (tl_now() - t0) / reps * 1e3;
            printf("test_optim: bench %s step over 3.50 M params: %.2f ms (%d thread%s)\n",
                   kind == TL_OPT_SGD ? "SGD-momentum" : "AdamW", ms, pass ? nt : 1, pass && nt > 1 ? "s" : "");
        }
        tl_opt_free(o);
    }
    double t0 = tl_now();
    double norm = tl_grad_norm(N.p, N.n);
    int fin = tl_grads_finite(N.p, N.n);
    printf("test_optim: bench grad norm + finite check over 3.50 M params: %.2f ms (norm %.3g, finite %d)\n",
           (tl_now() - t0) * 1e3, norm, fin);
    tl_pool_free(pool);
    net_free(&N);
}

int main(void)
{
    test_defaults();
    test_sgd_hand();
    test_adamw_hand();
    test_frozen();
    test_threads();
    test_resume();
    test_invalid();
    test_grad_utils();
    test_schedule_values();
    test_schedule_parse();
    test_group_lrs();
    test_reference();
    bench();
    return check_finish("optim");
}
