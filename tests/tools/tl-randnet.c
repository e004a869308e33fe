/* Test driver (not installed): a zoo network with random weights and
 * randomised batch-norm statistics, saved as a tl checkpoint, so export
 * and peer runtimes can be checked on every architecture without PyTorch.
 *
 * usage: tl-randnet ARCH OUT.safetensors [--size S] [--classes K] [--seed N]
 *        [--width W] [--tf-same] [--bgr] [--resize R] [--mean a,b,c] [--std a,b,c]
 *
 * Every weight matrix or kernel is uniform with variance 1/fan-in; batch
 * and layer norms get weights in [0.5, 1.5], biases and running means in
 * [-0.1, 0.1] and running variances in [0.5, 2], so folding and
 * normalisation are actually exercised; other tensors (class token,
 * position embedding) are small and non-zero. Seeded: the same arguments
 * give the same file. */
#include "io/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static void die(const char *msg)
{
    fprintf(stderr, "tl-randnet: %s\n", msg);
    exit(1);
}

static void floats3(const char *s, float *v)
{
    if (sscanf(s, "%f,%f,%f", &v[0], &v[1], &v[2]) != 3)
        die("expected three comma-separated numbers");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tl-randnet ARCH OUT.safetensors [--size S] [--classes K] [--seed N] [--width W]\n"
                        "       [--tf-same] [--bgr] [--resize R] [--mean a,b,c] [--std a,b,c]\n");
        return 2;
    }
    const char *arch = argv[1], *out = argv[2];
    tl_arch_opts o;
    tl_arch_opts_default(&o);
    o.input_w = o.input_h = 32;
    o.num_classes = 10;
    uint64_t seed = 1;
    int resize = 0;
    tl_preproc pp;
    tl_preproc_default(&pp);
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--tf-same")) {
            o.tf_same = 1;
            continue;
        }
        if (!strcmp(a, "--bgr")) {
            pp.bgr = 1;
            continue;
        }
        if (!v)
            die("option without a value");
        i++;
        if (!strcmp(a, "--size")) {
            if (tl_input_size_parse(v, 4096, &o.input_w, &o.input_h))
                die("--size: N or WxH");
        } else if (!strcmp(a, "--classes"))
            o.num_classes = atoi(v);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--width"))
            o.width_mult = (float)atof(v);
        else if (!strcmp(a, "--resize"))
            resize = atoi(v);
        else if (!strcmp(a, "--mean"))
            floats3(v, pp.mean);
        else if (!strcmp(a, "--std"))
            floats3(v, pp.std);
        else
            die("unknown option");
    }
    int side = o.input_w < o.input_h ? o.input_w : o.input_h;
    pp.input_w = o.input_w;
    pp.input_h = o.input_h;
    pp.resize_size = resize ? resize : side;
    pp.resize_mode = pp.resize_size == side ? TL_RESIZE_SQUASH : TL_RESIZE_CROP;
    tl_err e = {0};
    tl_net net;
    memset(&net, 0, sizeof net);
    net.model = tl_arch_build(arch, &o, &e);
    if (!net.model)
        die(e.msg);
    tl_model *m = net.model;
    /* Uniform weights of variance 1/fan-in keep activations of deep
     * networks in range (and are much cheaper to draw than the zoo's
     * normal initialisation for VGG's 130 M parameters). */
    tl_rng r;
    tl_rng_seed(&r, seed);
    for (int i = 0; i < m->nparams; i++) {
        tl_param *p = &m->params[i];
        float bound = p->ndim >= 2 ? sqrtf(3.0f * (float)p->shape[0] / (float)p->numel) : 0.0f;
        for (int64_t k = 0; k < p->numel; k++) {
            float u = tl_rng_uniform(&r);
            if (p->ndim >= 2)
                p->data[k] = (2.0f * u - 1.0f) * bound;
            else if (ends_with(p->name, "running_var"))
                p->data[k] = 0.5f + 1.5f * u;
            else if (ends_with(p->name, "running_mean") || ends_with(p->name, "bias"))
                p->data[k] = 0.2f * (u - 0.5f);
            else if (ends_with(p->name, "weight"))
                p->data[k] = 0.5f + u;
            else
                p->data[k] = 0.04f * (u - 0.5f);
        }
    }
    char size[32], rsize[16], classes[16], width[32], mean[96], std[96];
    tl_input_size_format(pp.input_w, pp.input_h, size, sizeof size);
    snprintf(rsize, sizeof rsize, "%d", pp.resize_size);
    snprintf(classes, sizeof classes, "%d", o.num_classes);
    snprintf(width, sizeof width, "%g", o.width_mult);
    snprintf(mean, sizeof mean, "[%.9g, %.9g, %.9g]", pp.mean[0], pp.mean[1], pp.mean[2]);
    snprintf(std, sizeof std, "[%.9g, %.9g, %.9g]", pp.std[0], pp.std[1], pp.std[2]);
    const char *meta[] = {"tl.arch", arch, "tl.input_size", size, "tl.resize_size", rsize,
                          "tl.resize_mode", tl_resize_mode_name(pp.resize_mode), "tl.num_classes", classes,
                          "tl.width_mult", width, "tl.padding", o.tf_same ? "tf_same" : "torch", "tl.mean", mean,
                          "tl.std", std, "tl.channel_order", pp.bgr ? "BGR" : "RGB", NULL};
    if (tl_net_save(&net, out, meta, &e))
        die(e.msg);
    tl_model_free(m);
    return 0;
}
