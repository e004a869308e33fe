/* tl-info: what a checkpoint holds: architecture, layers, size, cost,
 * preprocessing and classes. */
#include "common.h"
#include "io/checkpoint.h"
#include "train/head.h"
#include "io/dataset.h"
#include "report/advise.h"

#include <sys/ioctl.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

/* The width to fit the class line in: the terminal's, else $COLUMNS, else 80. */
static int line_width(void)
{
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
        return ws.ws_col;
    const char *c = getenv("COLUMNS");
    int n = c ? atoi(c) : 0;
    return n >= 40 && n <= 1000 ? n : 80;
}

static void print_classes(char *const *names, int n, int all)
{
    char head[32];
    snprintf(head, sizeof head, "classes    %d", n);
    fputs(head, stdout);
    int used = (int)strlen(head), width = line_width();
    const char *more = ", ... (--classes lists all)";
    int shown = 0;
    /* Quoted: ImageNet names contain commas themselves. As many as fit
     * the line (every one with --classes). */
    for (int i = 0; i < n; i++) {
        int len = (int)strlen(names[i]) + 4; /* ": " or ", " and the quotes */
        int room = width - used - (i + 1 < n ? (int)strlen(more) : 0);
        if (!all && len > room && i > 0)
            break;
        printf("%s\"%s\"", i ? ", " : ": ", names[i]);
        used += len;
        shown++;
    }
    if (shown < n)
        fputs(more, stdout);
    printf("\n");
}

static void print_meta(const tl_st_file *f)
{
    printf("\nmetadata\n");
    for (int i = 0; i < f->nmeta; i++) {
        const char *v = f->meta_values[i];
        if (strlen(v) > 100)
            printf("  %-20s %.100s... (%zu chars)\n", f->meta_keys[i], v, strlen(v));
        else
            printf("  %-20s %s\n", f->meta_keys[i], v);
    }
}

static void group_digits(char *buf, size_t n, long long v)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%lld", v);
    size_t len = strlen(raw), o = 0;
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if (i && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
}

static void info_net(const tl_net *net, int all_classes)
{
    const tl_model *m = net->model;
    const tl_preproc *pp = &net->pp;
    const char *src = tl_net_meta(net, "tl.source");
    printf("model      %s\n", net->path);
    printf("arch       %s", m->arch);
    if (net->opts.width_mult != 1.0f)
        printf(" (width %g)", (double)net->opts.width_mult);
    if (m->tf_same)
        printf(", TensorFlow SAME padding");
    printf("\n");
    if (src)
        printf("source     %s\n", src);
    char geometry[160];
    tl_preproc_describe(pp, geometry, sizeof geometry);
    printf("input      %dx%dx%d: %s\n", m->in_c, m->in_h, m->in_w, geometry);
    printf("normalise  (x/255 - [%.4g %.4g %.4g]) / [%.4g %.4g %.4g], %s order\n", (double)pp->mean[0],
           (double)pp->mean[1], (double)pp->mean[2], (double)pp->std[0], (double)pp->std[1], (double)pp->std[2],
           pp->bgr ? "BGR" : "RGB");
    if (net->nclasses)
        print_classes(net->classes, net->nclasses, all_classes);
    else
        printf("classes    none (a backbone without classifier)\n");
    char p[32], b[32];
    group_digits(p, sizeof p, tl_model_param_count(m, 0));
    group_digits(b, sizeof b, tl_model_param_count(m, 1) - tl_model_param_count(m, 0));
    printf("parameters %s (+ %s in batch-norm statistics)\n", p, b);
    printf("mult-adds  %.1f M per image\n", (double)tl_model_macs(m) / 1e6);
    printf("\n%-16s %-14s %s\n", "layer", "output", "");
    for (int i = 0; i < m->nnodes; i++) {
        const tl_node *n = &m->nodes[i];
        if (!n->name[0])
            continue;
        char shape[48];
        if (n->h == 1 && n->w == 1 && i != 0)
            snprintf(shape, sizeof shape, "%d", n->c);
        else
            snprintf(shape, sizeof shape, "%dx%dx%d", n->c, n->h, n->w);
        const char *note = i == m->features_node ? "default features" : i == m->logits_node ? "logits" : "";
        printf("%-16s %-14s %s\n", n->name, shape, note);
    }
    if (m->logits_node >= 0) {
        /* The groups tl-finetune's --lr-mult and --unfreeze-every work on:
         * a stage belongs to the group of the last parameters before it. */
        int groups = tl_model_assign_groups(net->model, 4), group = 0;
        const char *first[64] = {0}, *last[64] = {0};
        for (int i = 1; i < m->nnodes && groups <= 64; i++) {
            const tl_node *n = &m->nodes[i];
            int pi = n->weight >= 0 ? n->weight : n->extra[0];
            if (pi >= 0)
                group = m->params[pi].group;
            if (n->name[0]) {
                if (!first[group])
                    first[group] = n->name;
                last[group] = n->name;
            }
        }
        printf("\nlearning-rate groups (tl-finetune --groups 4), earliest first:\n");
        for (int g = 0; g < groups && g < 64; g++)
            printf("  %d: %s%s%s\n", g, first[g] ? first[g] : "-", last[g] && last[g] != first[g] ? " .. " : "",
                   last[g] && last[g] != first[g] ? last[g] : "");
    }
}

static void info_head(const char *path, int all_classes)
{
    tl_head h;
    tl_err e;
    if (tl_head_load(path, &h, &e)) {
        fprintf(stderr, "tl-info: %s\n", e.msg);
        exit(1);
    }
    printf("model      %s\n", path);
    printf("arch       linear head (%s) on %d feature values\n",
           h.lin.kind == TL_HEAD_SVM ? "linear SVM" : "logistic regression", h.lin.d);
    printf("features   %s, layer %s\n", h.feature_model ? h.feature_model : "(unknown model)",
           h.feature_layer ? h.feature_layer : "(default)");
    print_classes(h.classes, h.nclasses, all_classes);
    tl_head_free(&h);
}

/* Each architecture, built at its default size, with its cost. */
static void list_archs(void)
{
    printf("%-20s %14s %12s  %s\n", "architecture", "parameters", "mult-adds", "default layer");
    for (int i = 0; i < tl_arch_count(); i++) {
        const char *a = tl_arch_name(i);
        tl_arch_opts o;
        tl_arch_opts_default(&o);
        tl_err e;
        tl_model *m = tl_arch_build(a, &o, &e);
        if (!m) {
            printf("%-20s %s\n", a, e.msg);
            continue;
        }
        char p[32];
        group_digits(p, sizeof p, tl_model_param_count(m, 0));
        printf("%-20s %14s %10.2f G  %s\n", a, p, (double)tl_model_macs(m) / 1e9,
               m->features_node >= 0 ? m->nodes[m->features_node].name : "-");
        tl_model_free(m);
    }
}

static int advise(const tl_cli *cli, const char *data)
{
    tl_err e;
    tl_dataset d;
    if (tl_dataset_open(data, &d, &e))
        cli_fail(cli, &e);
    if (d.nclasses < 1)
        cli_die(cli, "%s: no labelled images (class folders or a manifest with labels)", data);
    int64_t *counts = calloc((size_t)d.nclasses, sizeof *counts);
    if (!counts)
        cli_die(cli, "out of memory");
    for (int64_t i = 0; i < d.n; i++)
        if (d.items[i].label >= 0)
            counts[d.items[i].label]++;
    tl_advice a;
    tl_strbuf text = {0};
    if (tl_advise(counts, (const char *const *)d.classes, d.nclasses, data, &a, &text, &e))
        cli_fail(cli, &e);
    fputs(text.s ? text.s : "", stdout);
    tl_strbuf_free(&text);
    free(counts);
    tl_dataset_free(&d);
    return 0;
}

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-info");
    int all_classes = 0, meta = 0, archs = 0;
    const char *advise_data = NULL;
    const cli_opt opts[] = {
        OPT_FLAG('c', "classes", &all_classes, "list every class name"),
        OPT_FLAG('M', "metadata", &meta, "print all metadata keys"),
        OPT_FLAG(0, "archs", &archs, "list the architectures tl can build, and exit"),
        OPT_FILE('A', "advise", &advise_data, "DATA", "count DATA's images per class (class folders or a\n"
                                                     "manifest) and recommend a transfer-learning strategy"),
        OPT_END(),
    };
    const cli_tool tool = {
        .usage = "[options] MODEL\n--advise DATA\n--archs",
        .about = "Describe a checkpoint: architecture, named layers (the names tl-extract\n"
                 "--layer takes) with their output shapes, parameters, multiply-adds per image,\n"
                 "preprocessing and classes. For a head from tl-finetune: its classes and the\n"
                 "model and layer its features came from.\n",
        .opts = opts,
        .example = "tl-info mobilenet_v2.safetensors\n"
                   "tl-info --advise data/hymenoptera/train",
        .min_args = 0, .max_args = -1, .args_name = "model",
    };
    int first = cli_parse(&cli, &tool, argc, argv);
    if (archs) {
        if (first != argc || advise_data)
            cli_usage_error(&cli, "--archs takes no model and no --advise");
        list_archs();
        return 0;
    }
    if (advise_data) {
        if (first != argc)
            cli_usage_error(&cli, "--advise takes one data set and no model");
        return advise(&cli, advise_data);
    }
    if (argc - first != 1)
        cli_usage_error(&cli, first == argc ? "no model given" : "one model argument expected");
    const char *model = argv[first];
    tl_err e;
    char path[4096];
    tl_st_file f;
    if (cli_open_model(&cli, model, path, sizeof path, &f)) {
        info_head(path, all_classes);
    } else {
        tl_net net;
        if (tl_net_load(path, &net, &e))
            cli_fail(&cli, &e);
        info_net(&net, all_classes);
        tl_net_free(&net);
    }
    if (meta)
        print_meta(&f);
    tl_st_close(&f);
    if (fflush(stdout) != 0 || ferror(stdout))
        cli_die(&cli, "standard output: write failed");
    return 0;
}
