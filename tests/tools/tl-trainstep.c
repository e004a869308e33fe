/* Test driver (not installed): runs training steps of a checkpoint on a
 * batch given as raw float32 images and int32 labels, then writes the loss
 * of each step, every parameter's gradient of the last step and every
 * parameter after the steps, as safetensors, for comparison with PyTorch.
 *
 * usage: tl-trainstep MODEL INPUT.f32 LABELS.i32 N OUT.safetensors
 *        [sgd|adamw] [LR] [STEPS] [SMOOTHING] [WD] [FREEZE_UNTIL_LAYER]
 * Loss variants, from the environment:
 *   TL_TRAINSTEP_CLASS_WEIGHTS=FILE  k float32 class weights (softmax loss)
 *   TL_TRAINSTEP_MULTI=1             LABELS holds N x k float32 0/1 targets:
 *                                    sigmoid + binary cross-entropy
 *   TL_TRAINSTEP_POS_WEIGHTS=FILE    with TL_TRAINSTEP_MULTI: k float32 weights
 *                                    of the positive terms
 *   TL_TRAINSTEP_EXACT=1             direct convolutions only (no Winograd) */
#include "io/checkpoint.h"
#include "train/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *slurp(const char *path, size_t want)
{
    FILE *f = fopen(path, "rb");
    void *p = malloc(want + 1);
    if (!f || !p || fread(p, 1, want, f) != want) {
        fprintf(stderr, "tl-trainstep: cannot read %zu bytes from %s\n", want, path);
        exit(1);
    }
    fclose(f);
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: tl-trainstep MODEL INPUT.f32 LABELS.i32 N OUT [sgd|adamw] [LR] [STEPS] [SMOOTH] [WD] [FREEZE]\n");
        return 2;
    }
    tl_err e;
    tl_net net;
    if (tl_net_load(argv[1], &net, &e)) {
        fprintf(stderr, "tl-trainstep: %s\n", e.msg);
        return 1;
    }
    tl_model *m = net.model;
    int n = atoi(argv[4]);
    size_t in = (size_t)m->in_c * m->in_h * m->in_w;
    float *x = slurp(argv[2], (size_t)n * in * sizeof(float));
    int multi = getenv("TL_TRAINSTEP_MULTI") != NULL;
    size_t k = (size_t)m->num_classes;
    void *labels = slurp(argv[3], (size_t)n * (multi ? k * sizeof(float) : sizeof(int)));
    tl_targets tg = {multi ? NULL : labels, multi ? labels : NULL, NULL};
    tl_trainer_opts o;
    tl_trainer_opts_default(&o);
    o.loss = multi ? TL_LOSS_SIGMOID : TL_LOSS_SOFTMAX;
    const char *exact = getenv("TL_TRAINSTEP_EXACT");
    o.exact = exact && *exact && strcmp(exact, "0");
    const char *cwf = getenv("TL_TRAINSTEP_CLASS_WEIGHTS"), *pwf = getenv("TL_TRAINSTEP_POS_WEIGHTS");
    if (cwf)
        o.class_weight = slurp(cwf, k * sizeof(float));
    if (pwf)
        o.pos_weight = slurp(pwf, k * sizeof(float));
    int adamw = argc > 6 && !strcmp(argv[6], "adamw");
    tl_opt_config_default(&o.opt, adamw ? TL_OPT_ADAMW : TL_OPT_SGD);
    o.batch = n;
    o.nthreads = getenv("TL_THREADS") ? atoi(getenv("TL_THREADS")) : 2;
    o.lr = argc > 7 ? atof(argv[7]) : 0.1;
    o.lr_mult = 1.0;
    int steps = argc > 8 ? atoi(argv[8]) : 1;
    o.label_smoothing = argc > 9 ? (float)atof(argv[9]) : 0.0f;
    o.opt.weight_decay = argc > 10 ? atof(argv[10]) : 0.0;
    /* Freeze before the trainer exists, as tl-finetune does. */
    if (argc > 11) {
        int until = tl_model_find_node(m, argv[11]);
        if (until < 0) {
            fprintf(stderr, "tl-trainstep: no layer %s\n", argv[11]);
            return 1;
        }
        for (int i = 0; i <= until; i++) {
            const tl_node *nd = &m->nodes[i];
            int ps[4] = {nd->weight, nd->bias, nd->extra[0], nd->extra[1]};
            for (int j = 0; j < 4; j++)
                if (ps[j] >= 0)
                    m->params[ps[j]].frozen = 1;
        }
    }
    tl_pool *pool = tl_pool_new(o.nthreads, &e);
    tl_trainer *t = pool ? tl_trainer_new(m, &o, &e) : NULL;
    if (!t) {
        fprintf(stderr, "tl-trainstep: %s\n", e.msg);
        return 1;
    }
    float *losses = calloc((size_t)steps, sizeof(float));
    /* With several steps the first (which touches fresh memory) is left
     * out of the timing: the figure is the steady state of a run. */
    double t0 = tl_now(), c0 = (double)clock() / CLOCKS_PER_SEC;
    for (int s = 0; s < steps; s++) {
        if (s == 1) {
            t0 = tl_now();
            c0 = (double)clock() / CLOCKS_PER_SEC;
        }
        tl_step_stats st;
        if (tl_trainer_step(t, pool, n, x, &tg, 1234, &st, &e)) {
            fprintf(stderr, "tl-trainstep: %s\n", e.msg);
            return 1;
        }
        losses[s] = (float)st.loss;
    }
    if (getenv("TL_VERBOSE")) {
        int timed = steps > 1 ? steps - 1 : 1;
        double wall = tl_now() - t0, cpu = (double)clock() / CLOCKS_PER_SEC - c0;
        fprintf(stderr,
                "tl-trainstep: %d timed steps of %d images in %.2f s (%.1f images/s, %.2f CPU s per step); tape %.0f MiB\n",
                timed, n, wall, timed * n / wall, cpu / timed, tl_tape_bytes(t->tape) / 1048576.0);
    }
    tl_st_writer *w = tl_st_writer_new();
    int64_t ls[1] = {steps};
    tl_st_add(w, "loss", TL_F32, 1, ls, losses, &e);
    char name[256];
    for (int i = 0; i < m->nparams; i++) {
        tl_param *p = &m->params[i];
        snprintf(name, sizeof name, "param.%s", p->name);
        tl_st_add(w, name, TL_F32, p->ndim, p->shape, p->data, &e);
        if (p->grad) {
            snprintf(name, sizeof name, "grad.%s", p->name);
            tl_st_add(w, name, TL_F32, p->ndim, p->shape, p->grad, &e);
        }
    }
    if (tl_st_write(w, argv[5], &e)) {
        fprintf(stderr, "tl-trainstep: %s\n", e.msg);
        return 1;
    }
    tl_st_writer_free(w);
    tl_trainer_free(t);
    tl_pool_free(pool);
    tl_net_free(&net);
    free(x);
    free(labels);
    free((void *)o.class_weight);
    free((void *)o.pos_weight);
    free(losses);
    return 0;
}
