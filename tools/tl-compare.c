/* tl-compare: training runs side by side, a verdict in plain words, and
 * learning curves. */
#include "common.h"
#include "report/compare.h"
#include "report/runlog.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static _Noreturn void usage(void)
{
    printf("Usage: tl-compare [options] [NAME=]RUN.jsonl...\n"
           "Compares training runs from their logs (tl-finetune --log, with tl-extract --log\n"
           "lines before a feature-head run's own): best validation accuracy and its epoch,\n"
           "epochs and seconds to a target, the train/validation gap, speed, total time;\n"
           "then a verdict: does transfer beat training from scratch, which strategy to\n"
           "pick, which runs overfit or had not converged. Differences smaller than two\n"
           "binomial standard errors on the validation set are called noise.\n"
           "\n"
           "A run is named by its log's \"run\" field, else the file name without .jsonl;\n"
           "NAME=FILE names it on the command line. '-' reads a log from standard input.\n"
           "\n"
           "      --target X        the level to reach (default: 95%% of the best run's best\n"
           "                        validation accuracy; with --metric loss, 105%% of the\n"
           "                        lowest validation loss)\n"
           "      --metric M        accuracy (default) or loss: what \"best\" and the target\n"
           "                        are about\n"
           "      --plot FILE       learning curves, SVG or PNG by the extension\n"
           "      --json            one JSON object (summaries and verdict) instead of the table\n"
           "      --tsv             one TSV row per run instead of the table\n"
           "  -q, --quiet           no log messages\n"
           "  -h, --help            this help;  --version  the version\n"
           "\n"
           "Examples:\n"
           "  tl-compare full.jsonl head.jsonl scratch.jsonl --plot curves.svg\n"
           "  tl-compare --target 0.9 transfer=runs/a.jsonl scratch=runs/b.jsonl\n");
    exit(0);
}

enum { O_TARGET = 256, O_METRIC, O_PLOT, O_JSON, O_TSV, O_VERSION };

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-compare");
    static const struct option opts[] = {
        {"target", required_argument, 0, O_TARGET}, {"metric", required_argument, 0, O_METRIC},
        {"plot", required_argument, 0, O_PLOT},     {"json", no_argument, 0, O_JSON},
        {"tsv", no_argument, 0, O_TSV},             {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},              {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0}};
    double target = NAN;
    const char *target_arg = NULL, *plot = NULL;
    tl_metric metric = TL_METRIC_ACCURACY;
    int json = 0, tsv = 0, ch;
    while ((ch = getopt_long(argc, argv, ":qh", opts, NULL)) != -1) {
        switch (ch) {
        case O_TARGET: target_arg = optarg; break;
        case O_METRIC:
            if (!strcmp(optarg, "accuracy") || !strcmp(optarg, "acc"))
                metric = TL_METRIC_ACCURACY;
            else if (!strcmp(optarg, "loss"))
                metric = TL_METRIC_LOSS;
            else
                cli_usage_error(&cli, "--metric: '%s' is not accuracy or loss", optarg);
            break;
        case O_PLOT: plot = optarg; break;
        case O_JSON: json = 1; break;
        case O_TSV: tsv = 1; break;
        case 'q': cli.quiet = 1; break;
        case 'h': usage();
        case O_VERSION: cli_version(&cli);
        default: cli_bad_option(&cli, argv, ch);
        }
    }
    if (json && tsv)
        cli_usage_error(&cli, "--json and --tsv exclude each other");
    /* "--plot -" puts the SVG on standard output instead of the table. */
    int plot_stdout = plot && !strcmp(plot, "-");
    if (plot_stdout && (json || tsv))
        cli_usage_error(&cli, "--plot - writes to standard output: no room for --json or --tsv");
    if (target_arg)
        target = metric == TL_METRIC_LOSS ? cli_double(&cli, "--target", target_arg, 0, 1e9)
                                          : cli_double(&cli, "--target", target_arg, 0, 1);
    int n = argc - optind, stdin_used = 0;
    if (n < 1)
        cli_usage_error(&cli, "no training logs given");
    tl_runlog *runs = calloc((size_t)n, sizeof *runs);
    if (!runs)
        cli_die(&cli, "out of memory");
    tl_err e;
    for (int i = 0; i < n; i++) {
        const char *arg = argv[optind + i], *path = arg, *eq = strchr(arg, '=');
        char name[256] = "";
        struct stat st;
        /* NAME=FILE, unless the whole argument is an existing file. */
        if (eq && eq > arg && stat(arg, &st) != 0) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
            path = eq + 1;
        }
        if (!strcmp(path, "-") && stdin_used++)
            cli_usage_error(&cli, "standard input can be read only once");
        if (tl_runlog_read(path, &runs[i], &e) < 0 || (*name && tl_runlog_rename(&runs[i], name, &e) < 0))
            cli_fail(&cli, &e);
        if (!runs[i].nepochs)
            cli_log(&cli, "%s: no epoch records", path);
    }
    tl_comparison c;
    if (tl_compare_runs(runs, n, metric, target, &c, &e) < 0)
        cli_fail(&cli, &e);
    if (plot_stdout)
        ;
    else if (json)
        tl_comparison_print_json(stdout, &c);
    else if (tsv)
        tl_comparison_print_tsv(stdout, &c);
    else
        tl_comparison_print_table(stdout, &c);
    if (plot) {
        if (tl_comparison_plot(&c, plot, &e) < 0)
            cli_fail(&cli, &e);
        if (!plot_stdout)
            cli_log(&cli, "wrote %s", plot);
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        cli_die(&cli, "cannot write to standard output");
    tl_comparison_free(&c);
    for (int i = 0; i < n; i++)
        tl_runlog_free(&runs[i]);
    free(runs);
    return 0;
}
