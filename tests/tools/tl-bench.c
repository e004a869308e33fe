/* Benchmark driver (not installed): times inference batches or training
 * steps of one network on random inputs and prints one JSON line, for
 * scripts/bench/run.sh and for whoever tunes a kernel.
 *
 * usage: tl-bench MODE ARCH BATCH [--threads T] [--iters N] [--warmup W]
 *                 [--freeze-until LAYER] [--model FILE] [--size S]
 *                 [--max-seconds S] [--seed N] [--exact]
 * MODE: infer | train-full | train-frozen. --exact: the direct convolutions
 * only (tl_infer_new_exact, tl_trainer_opts.exact), for timing Winograd
 * against them.
 *
 * Without --model the network has the zoo's scratch initialisation (seeded).
 * train-frozen freezes every layer up to and including a per-architecture
 * stage (freeze_point below; the PyTorch peer in scripts/bench freezes the
 * same modules), so only the last stage and the classifier train.
 *
 * Each run is one batch (one forward pass, or one SGD-with-momentum step on
 * cross-entropy); images_per_s is the median over the runs. gflops counts
 * 2 FLOPs per multiply-add: the forward pass for infer; forward plus twice
 * the trainable part's forward (data and weight gradients) for training.
 * cpu_ms_per_image: the median batch's CPU time (all threads) per image. */
#include "io/checkpoint.h"
#include "models/models.h"
#include "nn/infer.h"
#include "train/trainer.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static const char *prog = "tl-bench";

/* The last frozen stage of train-frozen: everything after it trains. */
static const struct {
    const char *prefix, *layer;
} freeze_points[] = {
    {"resnet", "layer3"},            /* layer4 + fc */
    {"mobilenet_v2", "features.13"}, /* features.14..18 + classifier */
    {"efficientnet", "features.6"},  /* features.7, 8 + classifier */
    {"vgg16", "features.23"},        /* the fifth conv block + classifier */
    {"vit_", "encoder_layer_10"},     /* ViT-Ti/S/B (12 layers): the last encoder layer, encoder.ln, heads */
};

static const char *freeze_point(const char *arch)
{
    for (size_t i = 0; i < sizeof freeze_points / sizeof freeze_points[0]; i++)
        if (!strncmp(arch, freeze_points[i].prefix, strlen(freeze_points[i].prefix)))
            return freeze_points[i].layer;
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: %s MODE ARCH BATCH [--threads T] [--iters N] [--warmup W] [--freeze-until LAYER]\n"
               "       [--model FILE.safetensors] [--size 224] [--max-seconds S] [--seed N] [--exact]\n"
               "MODE: infer | train-full | train-frozen. Prints one JSON line.\n"
               "example: %s infer resnet18 32 --threads 2 --iters 5\n",
            prog, prog);
}

static _Noreturn void die(const char *what)
{
    fprintf(stderr, "%s: %s\n", prog, what);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int64_t node_macs(const tl_model *m, const tl_node *n)
{
    if (n->op == TL_OP_CONV)
        return (int64_t)n->c * n->h * n->w * (n->geom.cin / n->geom.groups) * n->geom.kh * n->geom.kw;
    if (n->op == TL_OP_LINEAR)
        return m->params[n->weight].numel;
    if (n->op == TL_OP_TOKEN_LINEAR)
        return m->params[n->weight].numel * n->c;
    if (n->op == TL_OP_ATTENTION)
        return (int64_t)2 * n->c * n->c * n->w;
    return 0;
}

/* CPU seconds of the whole process so far (every thread, user + system):
 * on a shared machine a steadier measure of work than wall time. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* kilobytes on Linux */
}

int main(int argc, char **argv)
{
    int threads = 2, iters = 5, warmup = 1, size = 224, exact = 0;
    double max_seconds = 0;
    unsigned long long seed = 42;
    const char *freeze = NULL, *model_path = NULL;
    static const struct option opts[] = {
        {"threads", required_argument, 0, 't'}, {"iters", required_argument, 0, 'n'},
        {"warmup", required_argument, 0, 'w'},  {"freeze-until", required_argument, 0, 'f'},
        {"model", required_argument, 0, 'm'},   {"size", required_argument, 0, 's'},
        {"max-seconds", required_argument, 0, 'x'}, {"seed", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, 'V'},
        {"exact", no_argument, 0, 'E'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "t:n:w:f:m:s:x:S:hVE", opts, NULL)) != -1) {
        switch (ch) {
        case 't': threads = atoi(optarg); break;
        case 'n': iters = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 'f': freeze = optarg; break;
        case 'm': model_path = optarg; break;
        case 's': size = atoi(optarg); break;
        case 'x': max_seconds = atof(optarg); break;
        case 'S': seed = strtoull(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        case 'E': exact = 1; break;
        case 'V': printf("%s 0.1.0\n", prog); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (argc - optind != 3) {
        usage(stderr);
        return 2;
    }
    const char *mode = argv[optind], *arch = argv[optind + 1];
    int batch = atoi(argv[optind + 2]);
    int infer = !strcmp(mode, "infer"), full = !strcmp(mode, "train-full"), frozen = !strcmp(mode, "train-frozen");
    if (!infer && !full && !frozen) {
        fprintf(stderr, "%s: unknown mode %s (infer, train-full or train-frozen)\n", prog, mode);
        return 2;
    }
    if (batch < 1 || threads < 1 || iters < 1 || warmup < 0 || size < 32) {
        fprintf(stderr, "%s: batch, threads and iters must be positive, size at least 32\n", prog);
        return 2;
    }

    tl_err e;
    tl_net net;
    memset(&net, 0, sizeof net);
    tl_model *m = NULL;
    float *x = NULL, *out = NULL;
    int *y = NULL;
    double *runs = NULL, *sorted = NULL, *cpu = NULL;
    tl_pool *pool = NULL;
    tl_infer *inf = NULL;
    tl_trainer *t = NULL;
    const char *failure = NULL; /* set, with a jump to finish, on any failure once the model exists */
    int rc = 1;
    if (model_path) {
        if (tl_net_load(model_path, &net, &e))
            die(e.msg);
        m = net.model;
        arch = m->arch;
    } else {
        tl_arch_opts ao;
        tl_arch_opts_default(&ao);
        ao.input_w = ao.input_h = size;
        if (!(m = tl_arch_build(arch, &ao, &e)))
            die(e.msg);
        tl_model_init(m, seed);
    }
    if (frozen && !freeze && !(freeze = freeze_point(arch))) {
        failure = "no default freeze point for this architecture: give --freeze-until";
        goto finish;
    }
    int until = -1;
    if (frozen) {
        if ((until = tl_model_find_node(m, freeze)) < 0) {
            fprintf(stderr, "%s: no layer %s in %s\n", prog, freeze, arch);
            goto finish;
        }
        for (int i = 0; i <= until; i++) {
            const tl_node *nd = &m->nodes[i];
            int ps[4] = {nd->weight, nd->bias, nd->extra[0], nd->extra[1]};
            for (int k = 0; k < 4; k++)
                if (ps[k] >= 0)
                    m->params[ps[k]].frozen = 1;
        }
    }
    int64_t macs = 0, trainable_macs = 0;
    for (int i = 0; i < m->nnodes; i++) {
        int64_t k = node_macs(m, &m->nodes[i]);
        macs += k;
        if (i > until)
            trainable_macs += k;
    }
    double flops_per_image = infer ? 2.0 * macs : 2.0 * (macs + 2.0 * trainable_macs);

    size_t in = (size_t)m->in_c * m->in_h * m->in_w;
    x = tl_alloc_array((size_t)batch * in, sizeof(float));
    y = tl_alloc_array((size_t)batch, sizeof(int));
    runs = calloc((size_t)iters, sizeof(double));
    sorted = calloc((size_t)iters, sizeof(double));
    cpu = calloc((size_t)iters, sizeof(double));
    if (!x || !y || !runs || !sorted || !cpu) {
        failure = "out of memory";
        goto finish;
    }
    tl_rng r;
    tl_rng_seed(&r, seed + 1);
    for (size_t i = 0; i < (size_t)batch * in; i++)
        x[i] = tl_rng_normal(&r);
    for (int b = 0; b < batch; b++)
        y[b] = m->num_classes > 0 ? (int)tl_rng_below(&r, (uint64_t)m->num_classes) : 0;

    if (!(pool = tl_pool_new(threads, &e)))
        goto lib_failure;
    if (infer) {
        int outnode = m->logits_node >= 0 ? m->logits_node : m->features_node;
        if (!(inf = tl_infer_new_exact(m, threads, &outnode, 1, exact, &e)))
            goto lib_failure;
        if (!(out = tl_alloc_array((size_t)batch * tl_node_size(&m->nodes[outnode]), sizeof(float)))) {
            failure = "out of memory";
            goto finish;
        }
    } else {
        tl_trainer_opts o;
        tl_trainer_opts_default(&o);
        tl_opt_config_default(&o.opt, TL_OPT_SGD); /* momentum 0.9 */
        o.opt.weight_decay = 0;
        o.batch = batch;
        o.nthreads = threads;
        o.lr = 0.001; /* small: random inputs must not make the loss diverge over the runs */
        o.lr_mult = 1.0;
        o.exact = exact;
        if (!(t = tl_trainer_new(m, &o, &e)))
            goto lib_failure;
    }

    int done = 0;
    double started = tl_now();
    for (int i = 0; i < warmup + iters; i++) {
        double t0 = tl_now(), c0 = cpu_seconds();
        if (infer) {
            float *outs[1] = {out};
            tl_infer_run(inf, pool, batch, x, outs);
        } else {
            tl_step_stats st;
            if (tl_trainer_step(t, pool, batch, x, &(tl_targets){y, NULL, NULL}, seed + (uint64_t)i, &st, &e))
                goto lib_failure;
        }
        double dt = tl_now() - t0;
        if (i >= warmup) {
            cpu[done] = (cpu_seconds() - c0) / batch;
            runs[done++] = batch / dt;
        }
        /* The cap still leaves three timed runs for a median. */
        if (max_seconds > 0 && done >= 3 && tl_now() - started > max_seconds)
            break;
    }
    memcpy(sorted, runs, (size_t)done * sizeof(double));
    qsort(sorted, (size_t)done, sizeof(double), cmp_double);
    double median = done % 2 ? sorted[done / 2] : 0.5 * (sorted[done / 2 - 1] + sorted[done / 2]);
    qsort(cpu, (size_t)done, sizeof(double), cmp_double);
    double cpu_median = done % 2 ? cpu[done / 2] : 0.5 * (cpu[done / 2 - 1] + cpu[done / 2]);

    printf("{\"mode\":\"%s\",\"arch\":\"%s\",\"batch\":%d,\"threads\":%d,\"images_per_s\":%.4g,\"runs\":[", mode, arch,
           batch, threads, median);
    for (int i = 0; i < done; i++)
        printf("%s%.4g", i ? "," : "", runs[i]);
    printf("],\"cpu_ms_per_image\":%.4g,\"peak_rss_mb\":%.1f,\"gmacs_per_image\":%.4g,\"gflops\":%.4g",
           cpu_median * 1e3, peak_rss_mb(), macs / 1e9, median * flops_per_image / 1e9);
    if (frozen) {
        int64_t trainable = 0; /* to check the split against PyTorch's requires_grad count */
        for (int i = 0; i < m->nparams; i++)
            if (!m->params[i].is_buffer && !m->params[i].frozen)
                trainable += m->params[i].numel;
        printf(",\"freeze_until\":\"%s\",\"trainable_gmacs_per_image\":%.4g,\"trainable_params\":%lld", freeze,
               trainable_macs / 1e9, (long long)trainable);
    }
    printf("}\n");

    rc = 0;
    goto finish;
lib_failure:
    failure = e.msg;
finish:
    if (failure)
        fprintf(stderr, "%s: %s\n", prog, failure);
    free(sorted);
    free(runs);
    free(cpu);
    tl_free(out);
    tl_infer_free(inf);
    tl_trainer_free(t);
    tl_pool_free(pool);
    tl_free(x);
    tl_free(y);
    if (model_path)
        tl_net_free(&net);
    else
        tl_model_free(m);
    return rc;
}
