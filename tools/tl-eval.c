/* tl-eval: score a classifier on labelled data, or a predictions file. */
#include "common.h"
#include "io/predictions.h"
#include "report/metrics.h"
#include "report/plot.h"
#include "report/score.h"
#include "train/classifier.h"
#include "json.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Noreturn void usage(void)
{
    printf("Usage: tl-eval -m MODEL [options] INPUT\n"
           "       tl-eval [options] PREDICTIONS.tsv\n"
           "Accuracy, top-k, per-class precision/recall/F1, the confusion matrix and the\n"
           "calibration (ECE, reliability) of a classifier on labelled data.\n"
           "\n"
           "MODEL is a head from tl-finetune (INPUT: feature vectors from tl-extract, or\n"
           "images, which then go through the backbone the features came from) or a full\n"
           "network (INPUT: images). INPUT is a feature file, a folder of class folders,\n"
           "a manifest (path<TAB>label), or '-' (features; with --images, a list of images).\n"
           "Without -m, INPUT is a predictions TSV (#path<TAB>true<TAB>pred<TAB>CLASS...,\n"
           "as written by tl-predict --format eval; see tl-formats(5)).\n"
           "\n"
           "  -m, --model MODEL     classifier checkpoint (file or name in $TL_MODEL_PATH)\n"
           "  -P, --predictions     INPUT is a predictions TSV (needed for '-' and files\n"
           "                        without the '#path...' header)\n"
           "      --classes A,B,..  class names of a predictions file without a header\n"
           "  -k, --top-k K         also report top-K accuracy (default 5)\n"
           "      --bins N          confidence bins for calibration (default 15)\n"
           "      --plot FILE       confusion heat map and reliability diagram (.svg or .png)\n"
           "      --reliability FILE  the reliability diagram as a figure of its own\n"
           "      --json            one JSON object instead of tables\n"
           "      --label-offset N  labels are class indices; add N (1 for the 1001-output\n"
           "                        TFLite ImageNet models with 0-based labels)\n"
           "      --images          read '-' as a list of images\n"
           "      --confusion       always print the confusion matrix (default: up to 20 classes)\n"
           "  -b, --batch N         images per step (default 32)\n"
           "  -j, --threads N       threads (default: all cores)\n"
           "      --skip-bad        warn about and skip unreadable images\n"
           "      --max-pixels N    refuse images larger than N pixels (default 100000000)\n"
           "      --progress        progress bar even when stderr is not a terminal\n"
           "  -q, --quiet           no log messages\n"
           "  -h, --help            this help;  --version  the version\n"
           "\n"
           "Examples:\n"
           "  tl-extract -m mobilenet_v2 data/val | tl-eval -m head.safetensors -\n"
           "  tl-predict -m net.safetensors --format eval data/val > p.tsv; tl-eval --plot p.svg p.tsv\n");
    exit(0);
}

typedef struct {
    const char *model, *input, *plot, *reliability, *classes;
    int json, always_confusion, top_k, bins, predictions;
} eval_opts;

/* Above this many classes, plots show only the classes that occur. */
#define SHOW_ALL_CLASSES 30

static int on_scored(void *user, const tl_scored *s, tl_err *e)
{
    tl_scorer_add(user, s->truth, -1, s->out);
    (void)e;
    return 0;
}

/* Splits "a,b,c" into names (the string is modified). */
static char **split_classes(char *list, int *n)
{
    int k = 1;
    for (const char *p = list; *p; p++)
        k += *p == ',';
    char **v = calloc((size_t)k, sizeof *v);
    if (!v)
        return NULL;
    *n = 0;
    for (char *tok = list;; tok++) {
        v[(*n)++] = tok;
        tok = strchr(tok, ',');
        if (!tok)
            break;
        *tok = '\0';
    }
    return v;
}

/* Scores a predictions file; fills the scorer and the class names. */
static void score_predictions(const tl_cli *cli, const eval_opts *o, tl_scorer *s, tl_pred_reader *r)
{
    tl_err e;
    char *list = o->classes ? strdup(o->classes) : NULL;
    int ngiven = 0;
    char **given = list ? split_classes(list, &ngiven) : NULL;
    if (o->classes && !given)
        cli_die(cli, "out of memory");
    if (tl_pred_open(r, o->input, (const char *const *)given, ngiven, &e))
        cli_fail(cli, &e);
    if (o->classes && r->has_header)
        cli_log(cli, "--classes ignored: %s names its classes in its header", r->name);
    free(given);
    free(list);
    if (tl_scorer_init(s, r->k, o->top_k, r->probabilities, o->bins, &e))
        cli_fail(cli, &e);
    tl_pred_row row;
    int got;
    while ((got = tl_pred_next(r, &row, &e)) == 1)
        tl_scorer_add(s, row.truth, row.pred, row.scores);
    if (got < 0)
        cli_fail(cli, &e);
}

static void write_plots(const tl_cli *cli, const eval_opts *o, const tl_scorer *s, const tl_metrics *m,
                        const char *const *names)
{
    tl_err e;
    const tl_calibration *cal = s->probabilities ? &s->cal : NULL;
    char title[256];
    const char *base = strrchr(o->input, '/') ? strrchr(o->input, '/') + 1 : o->input;
    snprintf(title, sizeof title, "%s: %lld scored, accuracy %.3f", base, (long long)m->n, m->accuracy);
    if (o->plot) {
        /* The reliability diagram goes beside the heat map unless it has a
         * figure of its own. */
        int both = cal && !o->reliability;
        /* With many classes (ImageNet) the map shows only the classes that
         * occur in the labels or the predictions: the rest are empty rows
         * and columns, and would shrink every cell to nothing. */
        int kept = 0;
        int *keep = calloc((size_t)s->k, sizeof *keep);
        int64_t *sub = calloc((size_t)s->k * (size_t)s->k, sizeof *sub);
        const char **subnames = calloc((size_t)s->k, sizeof *subnames);
        if (!keep || !sub || !subnames)
            cli_die(cli, "out of memory");
        for (int i = 0; i < s->k; i++)
            if (s->k <= SHOW_ALL_CLASSES || m->per_class[i].support || m->per_class[i].predicted) {
                subnames[kept] = names ? names[i] : NULL;
                keep[kept++] = i;
            }
        for (int r = 0; r < kept; r++)
            for (int c = 0; c < kept; c++)
                sub[(size_t)r * kept + c] = s->conf.m[(size_t)keep[r] * s->k + keep[c]];
        char maptitle[96] = "confusion matrix (row-normalised)";
        if (kept < s->k)
            snprintf(maptitle, sizeof maptitle, "confusion matrix, the %d of %d classes that occur", kept, s->k);
        tl_figure *f = tl_figure_new(both ? 1160 : 640, 640, 1, both ? 2 : 1, title, &e);
        int bad = !f || tl_figure_heatmap(f, 0, maptitle, kept, sub, names ? subnames : NULL, &e);
        free(keep);
        free(sub);
        free(subnames);
        if (bad ||
            (both && tl_figure_reliability(f, 1, "reliability", cal->nbins, cal->bin_confidence, cal->bin_accuracy,
                                           cal->bin_count, cal->ece, &e)) ||
            tl_figure_write(f, o->plot, &e)) {
            tl_figure_free(f);
            tl_fail_prefix(&e, "--plot %s", o->plot);
            cli_fail(cli, &e);
        }
        tl_figure_free(f);
    }
    if (o->reliability) {
        tl_figure *f = tl_figure_new(600, 640, 1, 1, title, &e);
        if (!f || tl_figure_reliability(f, 0, "reliability", cal->nbins, cal->bin_confidence, cal->bin_accuracy,
                                        cal->bin_count, cal->ece, &e) ||
            tl_figure_write(f, o->reliability, &e)) {
            tl_figure_free(f);
            tl_fail_prefix(&e, "--reliability %s", o->reliability);
            cli_fail(cli, &e);
        }
        tl_figure_free(f);
    }
}

static void print_json(const tl_cli *cli, const eval_opts *o, const tl_scorer *s, const tl_metrics *m,
                       const char *const *names, int64_t skipped)
{
    /* The metrics object, with this tool's fields added before its end. */
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem)
        cli_die(cli, "out of memory");
    tl_metrics_print_json(mem, m, &s->conf, names);
    fclose(mem);
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '}'))
        len--;
    fwrite(buf, 1, len, stdout);
    free(buf);
    double n = (double)m->n;
    printf(",\"top_k\":%d", s->top_k);
    tl_json_key_number(stdout, "top_k_accuracy", (double)s->top_k_hits / n);
    tl_json_key_number(stdout, "top5", (double)s->top5_hits / n);
    printf(",\"scores\":\"%s\"", s->probabilities ? "probabilities" : "decision");
    tl_calibration_print_json(stdout, s->probabilities ? &s->cal : NULL);
    printf(",\"unlabelled\":%lld,\"skipped\":%lld,\"model\":", (long long)s->unlabelled, (long long)skipped);
    if (o->model)
        tl_json_write_string(stdout, o->model);
    else
        fputs("null", stdout);
    printf(",\"input\":");
    tl_json_write_string(stdout, o->input);
    printf("}\n");
}

static void print_text(const eval_opts *o, const tl_scorer *s, const tl_metrics *m, const char *const *names)
{
    if (o->model)
        printf("model    %s\n", o->model);
    printf("input    %s (%s%lld scored)\n", o->input, o->model ? "" : "predictions, ", (long long)m->n);
    if (s->top_k < s->k)
        printf("top-%-4d %.4f\n", s->top_k, (double)s->top_k_hits / (double)m->n);
    if (s->top_k != 5 && s->k > 5)
        printf("top-5    %.4f\n", (double)s->top5_hits / (double)m->n);
    tl_metrics_print_table(stdout, m, names);
    printf("\n");
    if (s->probabilities)
        tl_calibration_print(stdout, &s->cal);
    else
        printf("calibration  not applicable: the scores are decision values (as from an SVM head), not probabilities\n");
    if (s->k <= 20 || o->always_confusion) {
        printf("\n");
        tl_confusion_print(stdout, &s->conf, names);
    } else {
        printf("\n(confusion matrix of %d classes not shown: --confusion or --json)\n", s->k);
    }
}

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-eval");
    eval_opts o = {.top_k = 5, .bins = TL_CALIBRATION_BINS};
    int force_progress = 0;
    tl_classify_opts co;
    tl_classify_opts_default(&co);
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"json", no_argument, 0, 'J'},
        {"label-offset", required_argument, 0, 'O'}, {"images", no_argument, 0, 'I'},
        {"confusion", no_argument, 0, 'C'}, {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 'j'}, {"skip-bad", no_argument, 0, 'S'},
        {"max-pixels", required_argument, 0, 1100},
        {"progress", no_argument, 0, 'p'}, {"quiet", no_argument, 0, 'q'},
        {"predictions", no_argument, 0, 'P'}, {"classes", required_argument, 0, 'c'},
        {"top-k", required_argument, 0, 'k'}, {"bins", required_argument, 0, 'B'},
        {"plot", required_argument, 0, 'G'}, {"reliability", required_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, ":m:b:j:k:Pqh", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': o.model = optarg; break;
        case 'J': o.json = 1; break;
        case 'O':
            co.numeric_labels = 1;
            co.label_offset = (int)cli_long(&cli, "--label-offset", optarg, -1000000, 1000000);
            break;
        case 'I': co.force_images = 1; break;
        case 'C': o.always_confusion = 1; break;
        case 'b': co.x.batch = (int)cli_long(&cli, "--batch", optarg, 1, 4096); break;
        case 'j': co.nthreads = cli_threads(&cli, optarg); break;
        case 'S': co.x.skip_bad = 1; break;
        case 1100: co.x.max_pixels = cli_max_pixels(&cli, optarg); break;
        case 'p': force_progress = 1; break;
        case 'q': cli.quiet = 1; break;
        case 'P': o.predictions = 1; break;
        case 'c': o.classes = optarg; break;
        case 'k': o.top_k = (int)cli_long(&cli, "--top-k", optarg, 1, 1000000); break;
        case 'B': o.bins = (int)cli_long(&cli, "--bins", optarg, 1, TL_CALIBRATION_MAX_BINS); break;
        case 'G': o.plot = optarg; break;
        case 'R': o.reliability = optarg; break;
        case 'h': usage();
        case 'V': cli_version(&cli);
        default: cli_bad_option(&cli, argv, ch);
        }
    }
    if (optind != argc - 1) {
        if (!o.model && optind == argc)
            cli_usage_error(&cli, "no model given (-m MODEL) and no input");
        cli_usage_error(&cli, optind == argc ? "no input given" : "one input argument expected");
    }
    o.input = argv[optind];
    int sniffed = tl_pred_sniff_file(o.input);
    if (o.model && (o.predictions || sniffed))
        cli_usage_error(&cli, "%s is a predictions file: it is scored without -m", o.input);
    if (!o.model && !o.predictions && !sniffed) {
        if (strcmp(o.input, "-") && access(o.input, R_OK) != 0)
            cli_usage_error(&cli, "no model given (-m MODEL), and %s: %s", o.input, strerror(errno));
        cli_usage_error(&cli, "no model given (-m MODEL), and %s is not a predictions file (#path<TAB>true<TAB>pred...)",
                        o.input);
    }
    o.predictions = !o.model;
    if (o.classes && !o.predictions)
        cli_usage_error(&cli, "--classes is for predictions files without a header");

    tl_err e;
    tl_scorer s;
    tl_classifier c;
    tl_pred_reader pr;
    memset(&c, 0, sizeof c);
    memset(&pr, 0, sizeof pr);
    tl_extract_stats st = {0};
    const char *const *names;
    if (o.predictions) {
        score_predictions(&cli, &o, &s, &pr);
        names = (const char *const *)pr.classes;
    } else {
        if (tl_classifier_load(&c, o.model, &e))
            cli_fail(&cli, &e);
        if (tl_scorer_init(&s, c.nclasses, o.top_k, c.probabilities, o.bins, &e))
            cli_fail(&cli, &e);
        tl_pool *pool = tl_pool_new(co.nthreads, &e);
        if (!pool)
            cli_fail(&cli, &e);
        cli_progress_enable(&cli, force_progress);
        int rc = tl_classify_input(&c, o.model, o.input, &co, pool, on_scored, &s, cli_progress, &cli, cli_log_hook,
                                   &cli, &st, &e);
        cli_progress_end(&cli);
        tl_pool_free(pool);
        if (rc)
            cli_fail(&cli, &e);
        names = (const char *const *)c.classes;
    }
    if (st.skipped)
        cli_log(&cli, "skipped %lld unreadable image%s", (long long)st.skipped, st.skipped > 1 ? "s" : "");
    if (s.unlabelled)
        cli_log(&cli, "%lld input%s without a label not scored", (long long)s.unlabelled, s.unlabelled > 1 ? "s" : "");
    if (o.reliability && !s.probabilities)
        cli_die(&cli, "--reliability: the scores are decision values (as from an SVM head), not probabilities");
    tl_metrics m;
    if (tl_metrics_compute(&s.conf, &m, &e))
        cli_fail(&cli, &e);
    if (m.n == 0)
        cli_die(&cli, "%s: no labelled inputs to score", o.input);
    if (s.probabilities)
        tl_calibration_finish(&s.cal);
    write_plots(&cli, &o, &s, &m, names);
    if (o.json)
        print_json(&cli, &o, &s, &m, names, st.skipped);
    else
        print_text(&o, &s, &m, names);
    if (fflush(stdout) != 0 || ferror(stdout))
        cli_die(&cli, "standard output: write failed");
    tl_metrics_free(&m);
    tl_scorer_free(&s);
    if (o.predictions)
        tl_pred_close(&pr);
    else
        tl_classifier_free(&c);
    return 0;
}
