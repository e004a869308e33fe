/* tl-probe: which layer transfers. Runs a backbone once over the
 * training and validation images, trains the same linear head on the
 * features of every layer, and prints (and plots) validation accuracy
 * against depth with a verdict (lib/train/probe.h, lib/report/probe_report.h). */
#include "common.h"
#include "json.h"
#include "outfile.h"
#include "report/plot.h"
#include "report/probe_report.h"
#include "report/train_log.h"
#include "train/loop.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const cli_choice heads[] = {{"logreg", TL_HEAD_LOGREG}, {"svm", TL_HEAD_SVM}, {NULL, 0}};
static const cli_choice resize_modes[] = {
    {"crop", TL_RESIZE_CROP}, {"squash", TL_RESIZE_SQUASH}, {"pad", TL_RESIZE_PAD}, {NULL, 0}};

/* --layers all, or a comma-separated list (split in place); -1 when
 * there are more than cap names. */
static int split_layers(char *list, const char **out, int cap)
{
    int n = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
        if (*tok) {
            if (n == cap)
                return -1;
            out[n++] = tok;
        }
    return n;
}

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-probe");
    cli.seed = 1;
    tl_probe_opts po;
    tl_probe_opts_default(&po);
    const char *layers = "all", *val = NULL, *plot = NULL, *json = NULL;
    double val_split = 0.2;
    int resize_mode = -1, input_size[2] = {0, 0};
    const cli_opt opts[] = {
        OPT_COMMON_REQUIRED(CLI_O_MODEL, NULL),
        OPT_STRING(0, "layers", &layers, "all|LIST",
                   "the layers to probe: every named stage up to the default\n"
                   "features (all, the default) or names separated by commas"),
        OPT_FILE(0, "val", &val, "DATA", "validation images (default: hold out --val-split)"),
        OPT_DOUBLE(0, "val-split", &val_split, 0.01, 0.9, "F", "without --val: hold out F of each class (default 0.2)"),
        OPT_ENUM(0, "head", &po.lin.kind, heads, "the head trained on every layer: logistic regression\n"
                                                 "(default) or a linear SVM"),
        OPT_DOUBLE('C', "C", &po.lin.C, 1e-12, 1e12, "C", "inverse L2 strength of the head (default 1)"),
        OPT_WXH(0, "input-size", input_size, 8, 4096, "WxH", "run the network at this input (default: the model's)"),
        OPT_ENUM(0, "resize-mode", &resize_mode, resize_modes, "how images become the input (default: the model's)"),
        OPT_FILE(0, "plot", &plot, "FILE", "accuracy against depth, .svg or .png"),
        OPT_FILE(0, "json", &json, "FILE", "the table and verdict as JSON ('-': standard output)"),
        OPT_COMMON_HELP(CLI_O_LOG, "the best layer's head as a run, for tl-compare"),
        {.type = CLI_COMMON, .common = CLI_O_SEED, .help = "seed of the --val-split (default 1)"},
        OPT_COMMON(CLI_O_BATCH),
        OPT_COMMON(CLI_O_THREADS),
        OPT_COMMON(CLI_O_MAX_PIXELS),
        OPT_COMMON(CLI_O_EXACT),
        OPT_COMMON(CLI_O_PROGRESS),
        OPT_COMMON(CLI_O_QUIET),
        OPT_END(),
    };
    const cli_tool tool = {
        .usage = "-m MODEL [options] TRAIN",
        .about = "Which layer transfers: extract the features of every layer of a backbone\n"
                 "in one pass, train the same linear head on each, and report validation\n"
                 "accuracy against depth with a verdict in words.\n"
                 "\n"
                 "TRAIN (and --val) is a folder of class folders or a manifest.\n",
        .opts = opts,
        .example = "tl-probe -m mobilenet_v2 --val data/val --plot layers.png data/train\n"
                   "tl-probe -m resnet18 --layers layer2,layer3,layer4,avgpool data/train",
        .min_args = 1, .max_args = 1, .args_name = "training data",
    };
    int first = cli_parse(&cli, &tool, argc, argv);
    const char *train_path = argv[first];
    if (val && cli_given(&cli, "val-split"))
        cli_usage_error(&cli, "give --val or --val-split, not both");
    tl_err e;
    if (plot && tl_plot_path_check(plot, &e))
        cli_usage_error(&cli, "--plot: %s", e.msg);
    char *list = NULL;
    const char *names[512];
    if (strcmp(layers, "all")) {
        if (!(list = tl_strdup(layers)))
            cli_die(&cli, "out of memory");
        po.nlayers = split_layers(list, names, 512);
        if (po.nlayers < 0)
            cli_usage_error(&cli, "--layers: more than 512 names");
        if (po.nlayers < 1)
            cli_usage_error(&cli, "--layers: '%s' names no layer", layers);
        po.layers = names;
    }
    po.threads = cli.threads;
    po.exact = cli.exact;
    po.batch = cli.batch;
    po.max_pixels = cli.max_pixels;
    /* Opened first, so a bad path fails at once. */
    FILE *log = NULL;
    if (cli.log && !(log = fopen(cli.log, "w")))
        cli_die(&cli, "%s: cannot open the log: %s", cli.log, strerror(errno));

    tl_net net;
    if (tl_net_load_at(cli.model, input_size[0], input_size[1], resize_mode, &net, &e))
        cli_fail(&cli, &e);
    tl_dataset train, vds;
    if (tl_dataset_open(train_path, &train, &e))
        cli_fail(&cli, &e);
    if (train.nclasses < 2)
        cli_die(&cli, "%s: %d class%s; a classifier needs at least 2", train_path, train.nclasses,
                train.nclasses == 1 ? "" : "es");
    const tl_dataset *v = &train;
    int64_t *tr_ids = NULL, *va_ids = NULL, ntr, nva;
    if (val) {
        if (tl_dataset_open(val, &vds, &e))
            cli_fail(&cli, &e);
        v = &vds;
        ntr = train.n;
        nva = vds.n;
        tr_ids = tl_xalloc((size_t)ntr + 1, sizeof(int64_t), &e);
        va_ids = tl_xalloc((size_t)nva + 1, sizeof(int64_t), &e);
        if (!tr_ids || !va_ids)
            cli_fail(&cli, &e);
        for (int64_t i = 0; i < ntr; i++)
            tr_ids[i] = i;
        for (int64_t i = 0; i < nva; i++)
            va_ids[i] = i;
    } else {
        tl_source src = {&train, NULL};
        if (tl_split_stratified(&src, val_split, cli.seed, &tr_ids, &ntr, &va_ids, &nva, NULL, &e))
            cli_fail(&cli, &e);
    }
    tl_pool *pool = tl_pool_new(cli.threads, &e);
    if (!pool)
        cli_fail(&cli, &e);
    cli_log(&cli, "%s: %lld training and %lld validation images, %d classes, %s", net.model->arch, (long long)ntr,
            (long long)nva, train.nclasses, po.layers ? "the layers asked for" : "every named stage");
    cli_progress_enable(&cli, cli.force_progress);
    tl_probe p;
    int rc = tl_probe_run(&net, &train, tr_ids, ntr, v, va_ids, nva, &po, pool, cli_progress, &cli,
                          cli.quiet ? NULL : cli_log_hook, &cli, &p, &e);
    cli_progress_end(&cli);
    if (rc)
        cli_fail(&cli, &e);
    cli_log(&cli, "%d layers: extraction %.1f s, heads %.1f s", p.nlayers, p.extract_seconds, p.fit_seconds);
    char **verdict;
    int nverdict;
    if (tl_probe_verdict(&p, &verdict, &nverdict, &e))
        cli_fail(&cli, &e);
    const char *head = po.lin.kind == TL_HEAD_SVM ? "svm" : "logreg";
    tl_probe_about about = {net.path, train_path, val ? val : "split", head, po.lin.C};
    if (json && !strcmp(json, "-")) {
        tl_probe_json(stdout, &p, &about, verdict, nverdict);
    } else {
        tl_probe_print(stdout, &p);
        printf("\n");
        for (int i = 0; i < nverdict; i++)
            printf("%s\n", verdict[i]);
    }
    if (json && strcmp(json, "-")) {
        tl_outfile of;
        if (tl_outfile_open(&of, json, &e))
            cli_fail(&cli, &e);
        tl_probe_json(of.fp, &p, &about, verdict, nverdict);
        if (tl_outfile_commit(&of, &e))
            cli_fail(&cli, &e);
    }
    if (plot) {
        char title[600];
        snprintf(title, sizeof title, "Which layer transfers: %s on %s", net.model->arch, train_path);
        if (tl_probe_plot(&p, title, plot, &e))
            cli_fail(&cli, &e);
        cli_log(&cli, "wrote %s", plot);
    }
    if (log) {
        /* The best layer's head as one run of the features strategy, as
         * tl-finetune logs a head (the sweep's extraction counted), so
         * tl-compare can set it beside fine-tuning. */
        const tl_probe_layer *L = &p.layers[p.best];
        char strategy[TL_NAME_MAX + 32];
        snprintf(strategy, sizeof strategy, "features+%s (%s)", head, L->name);
        tl_runlog_write_extract(log, train_path, net.path, L->name, ntr + nva, 0, cli.threads, p.extract_seconds);
        tl_head_run h = {strategy, net.path, L->name, strategy, train_path, val ? val : "split", NULL, ntr, nva,
                         (int64_t)p.nclasses * (L->dim + 1), p.nclasses, cli.threads, p.fit_seconds, NAN,
                         L->train_acc, L->val_loss, L->val_acc};
        tl_train_log_head(log, &h);
        if (fclose(log))
            cli_die(&cli, "%s: cannot write the log", cli.log);
    }
    tl_strings_free(verdict, nverdict);
    tl_probe_free(&p);
    tl_pool_free(pool);
    free(tr_ids);
    free(va_ids);
    if (val)
        tl_dataset_free(&vds);
    tl_dataset_free(&train);
    tl_net_free(&net);
    free(list);
    return 0;
}
