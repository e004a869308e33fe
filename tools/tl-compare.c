/* tl-compare: training runs side by side, a verdict in plain words, and
 * learning curves. */
#include "common.h"
#include "report/compare.h"
#include "report/runlog.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const cli_choice metrics[] = {
    {"accuracy", TL_METRIC_ACCURACY}, {"acc", TL_METRIC_ACCURACY}, {"loss", TL_METRIC_LOSS}, {NULL, 0}};

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-compare");
    double target = NAN;
    const char *plot = NULL;
    int metric = TL_METRIC_ACCURACY, json = 0, tsv = 0;
    const cli_opt opts[] = {
        OPT_DOUBLE(0, "target", &target, 0, 1e9, "X", "the level to reach (default: 95% of the best run's best\n"
                                                      "validation accuracy; with --metric loss, 105% of the\n"
                                                      "lowest validation loss)"),
        OPT_ENUM(0, "metric", &metric, metrics, "what \"best\" and the target are about (default\naccuracy)"),
        OPT_FILE(0, "plot", &plot, "FILE", "learning curves, SVG or PNG by the extension"),
        OPT_FLAG(0, "json", &json, "one JSON object (summaries, verdict), not the table"),
        OPT_FLAG(0, "tsv", &tsv, "one TSV row per run instead of the table"),
        OPT_COMMON(CLI_O_QUIET),
        OPT_END(),
    };
    const cli_tool tool = {
        .usage = "[options] [NAME=]RUN.jsonl...",
        .about = "Compares training runs from their logs (tl-finetune --log, with tl-extract --log\n"
                 "lines before a feature-head run's own): best validation accuracy and its epoch,\n"
                 "epochs and seconds to a target, the train/validation gap, speed, total time;\n"
                 "then a verdict: does transfer beat training from scratch, which strategy to\n"
                 "pick, which runs overfit or had not converged. Differences smaller than two\n"
                 "binomial standard errors on the validation set are called noise.\n"
                 "\n"
                 "A run is named by its log's \"run\" field, else the file name without .jsonl;\n"
                 "NAME=FILE names it on the command line. '-' reads a log from standard input.\n",
        .opts = opts,
        .example = "tl-compare full.jsonl head.jsonl scratch.jsonl --plot curves.svg\n"
                   "tl-compare --target 0.9 transfer=runs/a.jsonl scratch=runs/b.jsonl",
        .min_args = 1, .max_args = -1, .args_name = "training log",
    };
    int first = cli_parse(&cli, &tool, argc, argv);
    if (json && tsv)
        cli_usage_error(&cli, "--json and --tsv exclude each other");
    /* "--plot -" puts the SVG on standard output instead of the table. */
    int plot_stdout = plot && !strcmp(plot, "-");
    if (plot_stdout && (json || tsv))
        cli_usage_error(&cli, "--plot - writes to standard output: no room for --json or --tsv");
    if (metric == TL_METRIC_ACCURACY && target > 1)
        cli_usage_error(&cli, "--target: '%g' is not an accuracy in 0..1", target);
    int n = argc - first, stdin_used = 0;
    tl_runlog *runs = calloc((size_t)n, sizeof *runs);
    if (!runs)
        cli_die(&cli, "out of memory");
    tl_err e;
    for (int i = 0; i < n; i++) {
        const char *arg = argv[first + i], *path = arg, *eq = strchr(arg, '=');
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
    else if (tsv) {
        if (tl_comparison_print_tsv(stdout, &c, &e) < 0)
            cli_fail(&cli, &e);
    } else
        tl_comparison_print_table(stdout, &c);
    if (plot) {
        cli_hold_signals();
        if (tl_comparison_plot(&c, plot, &e) < 0)
            cli_fail(&cli, &e);
        cli_release_signals();
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
