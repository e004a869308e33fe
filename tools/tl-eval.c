/* tl-eval: score a classifier on labelled data, or a predictions file. */
#include "common.h"
#include "io/predictions.h"
#include "report/metrics.h"
#include "report/multilabel.h"
#include "report/plot.h"
#include "report/score.h"
#include "train/classifier.h"
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *model, *input, *plot, *reliability, *classes;
    int json, always_confusion, top_k, bins, predictions;
    double threshold; /* multi-label: NAN = the model's (or 0.5 / 0) */
} eval_opts;

/* Above this many classes, plots show only the classes that occur. */
#define SHOW_ALL_CLASSES 30

typedef struct sink {
    tl_scorer *s;
    tl_ml_scorer *ml;       /* multi-label models */
    const float *thresholds;
} sink;

static int on_scored(void *user, const tl_scored *s, tl_err *e)
{
    sink *k = user;
    if (k->ml)
        return tl_ml_scorer_add(k->ml, s->truth_set, NULL, s->out, k->thresholds, e);
    tl_scorer_add(k->s, s->truth, -1, s->out);
    return 0;
}

/* ---------------- multi-label ---------------- */

static void ml_report(const tl_cli *cli, const eval_opts *o, tl_ml_scorer *ml, const char *const *names,
                      const float *thresholds, int64_t skipped)
{
    tl_err e;
    if (ml->unlabelled)
        cli_log(cli, "%lld input%s without labels not scored", (long long)ml->unlabelled,
                ml->unlabelled > 1 ? "s" : "");
    if (ml->n == 0)
        cli_die(cli, "%s: no labelled inputs to score", o->input);
    tl_ml_metrics m;
    if (tl_ml_metrics_compute(ml, &m, &e))
        cli_fail(cli, &e);
    if (o->plot) {
        char title[256];
        const char *base = strrchr(o->input, '/') ? strrchr(o->input, '/') + 1 : o->input;
        snprintf(title, sizeof title, "%s: %lld scored, mAP %.3f", base, (long long)m.n, m.map);
        if (tl_ml_plot(ml, &m, names, title, o->plot, &e)) {
            tl_fail_prefix(&e, "--plot %s", o->plot);
            cli_fail(cli, &e);
        }
    }
    if (o->json) {
        printf("{\"correct\":%lld", (long long)m.exact);
        tl_ml_print_json_members(stdout, &m, names, thresholds);
        printf(",\"scores\":\"%s\",\"thresholds\":\"%s\",\"unlabelled\":%lld,\"skipped\":%lld,\"model\":",
               ml->probabilities ? "probabilities" : "decision",
               !isnan(o->threshold) ? "given" : o->model ? "model" : thresholds ? "default" : "predictions",
               (long long)ml->unlabelled, (long long)skipped);
        if (o->model)
            tl_json_write_string(stdout, o->model);
        else
            fputs("null", stdout);
        printf(",\"input\":");
        tl_json_write_string(stdout, o->input);
        printf("}\n");
    } else {
        if (o->model)
            printf("model    %s\n", o->model);
        printf("input    %s (%s%lld scored, multi-label, %d classes)\n", o->input, o->model ? "" : "predictions, ",
               (long long)m.n, m.k);
        tl_ml_print_table(stdout, &m, names, thresholds);
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        cli_die(cli, "standard output: write failed");
    tl_ml_metrics_free(&m);
}

/* A multi-label predictions file: PRED decides, or the thresholds where it is '-'. */
static void ml_predictions(const tl_cli *cli, const eval_opts *o, tl_pred_reader *r)
{
    tl_err e;
    tl_ml_scorer ml;
    float *thr = calloc((size_t)r->k + 1, sizeof *thr);
    if (!thr)
        cli_die(cli, "out of memory");
    for (int c = 0; c < r->k; c++)
        thr[c] = !isnan(o->threshold) ? (float)o->threshold : r->probabilities ? 0.5f : 0.0f;
    if (tl_ml_scorer_init(&ml, r->k, r->probabilities, &e))
        cli_fail(cli, &e);
    tl_pred_row row;
    int got, dashes = 0;
    while ((got = tl_pred_next(r, &row, &e)) == 1) {
        dashes += !row.pred_set;
        if (tl_ml_scorer_add(&ml, row.truth_set, isnan(o->threshold) ? row.pred_set : NULL, row.scores, thr, &e))
            cli_fail(cli, &e);
    }
    if (got < 0)
        cli_fail(cli, &e);
    cli_hold_signals(); /* no temporary file left by an interrupt */
    ml_report(cli, o, &ml, (const char *const *)r->classes, isnan(o->threshold) && !dashes ? NULL : thr, 0);
    cli_release_signals();
    tl_ml_scorer_free(&ml);
    free(thr);
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

/* Options that single-label scoring has and multi-label does not. */
static void multilabel_checks(const tl_cli *cli, const eval_opts *o)
{
    if (o->reliability)
        cli_usage_error(cli, "--reliability: calibration is not measured for multi-label scores");
    if (o->always_confusion)
        cli_usage_error(cli, "--confusion: multi-label data has no confusion matrix (per-class counts are in the table)");
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
    if (r->multilabel) {
        multilabel_checks(cli, o);
        ml_predictions(cli, o, r);
        tl_pred_close(r);
        exit(0);
    }
    if (!isnan(o->threshold))
        cli_usage_error(cli, "--threshold applies to multi-label predictions; %s is single-label", r->name);
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
        const char **subnames = calloc((size_t)s->k, sizeof *subnames);
        if (!keep || !subnames)
            cli_die(cli, "out of memory");
        for (int i = 0; i < s->k; i++)
            if (s->k <= SHOW_ALL_CLASSES || m->per_class[i].support || m->per_class[i].predicted) {
                subnames[kept] = names ? names[i] : NULL;
                keep[kept++] = i;
            }
        /* sized by the classes that occur, and no more than a readable map */
        if (kept > TL_CONFUSION_DENSE_MAX)
            cli_die(cli, "--plot %s: %d classes occur; a heat map shows at most %d", o->plot, kept,
                    TL_CONFUSION_DENSE_MAX);
        int64_t *sub = calloc((size_t)kept * (size_t)kept + 1, sizeof *sub);
        if (!sub)
            cli_die(cli, "out of memory");
        for (int r = 0; r < kept; r++)
            for (int c = 0; c < kept; c++)
                sub[(size_t)r * kept + c] = tl_confusion_at(&s->conf, keep[r], keep[c]);
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
        cli_log(cli, "wrote %s: the confusion matrix%s", o->plot, both ? " and the reliability diagram" : "");
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
        cli_log(cli, "wrote %s: the reliability diagram", o->reliability);
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
    eval_opts o = {.top_k = 0, .bins = TL_CALIBRATION_BINS, .threshold = NAN}; /* top_k 0: 5, and only below the class count */
    int label_offset = 0, features = 0;
    tl_classify_opts co;
    tl_classify_opts_default(&co);
    const cli_opt opts[] = {
        {.type = CLI_COMMON, .common = CLI_O_MODEL, .target = &o.model,
         .help = "classifier: a network, or a head from tl-finetune"},
        OPT_FLAG('P', "predictions", &o.predictions, "INPUT is a predictions TSV (for files without the\n"
                                                     "'#path...' header)"),
        OPT_STRING(0, "classes", &o.classes, "A,B,..", "class names of a predictions file without a header"),
        OPT_INT('k', "top-k", &o.top_k, 1, 1000000, "K", "also report top-K accuracy; K below the class count\n(default 5, when there are more classes)"),
        OPT_INT(0, "bins", &o.bins, 1, TL_CALIBRATION_MAX_BINS, "N", "confidence bins for calibration (default 15)"),
        OPT_FILE(0, "plot", &o.plot, "FILE", "confusion heat map and reliability diagram (SVG or PNG)"),
        OPT_FILE(0, "reliability", &o.reliability, "FILE", "the reliability diagram as a figure of its own"),
        OPT_DOUBLE(0, "threshold", &o.threshold, -1e30, 1e30, "T", "multi-label: predict a class when its score >= T\n"
                                                                   "(default: the model's per-class thresholds)"),
        OPT_FLAG(0, "json", &o.json, "one JSON object instead of tables"),
        OPT_INT(0, "label-offset", &label_offset, -1000000, 1000000, "N",
                "labels are class indices; add N (1 for the 1001-output\nTFLite ImageNet models with 0-based labels)"),
        OPT_FLAG(0, "features", &features, "read '-' as feature vectors"),
        OPT_FLAG(0, "images", &co.force_images, "read '-' as a list of images"),
        OPT_FLAG(0, "force", &co.force_origin, "score features of another backbone, layer or\n"
                                                "preprocessing than the head's"),
        OPT_FLAG(0, "confusion", &o.always_confusion, "always print the confusion matrix (default: up to 20\n"
                                                       "classes)"),
        {.type = CLI_COMMON, .common = CLI_O_BATCH, .target = &co.x.batch},
        {.type = CLI_COMMON, .common = CLI_O_THREADS, .target = &co.nthreads},
        {.type = CLI_COMMON, .common = CLI_O_SKIP_BAD, .target = &co.x.skip_bad},
        {.type = CLI_COMMON, .common = CLI_O_MAX_PIXELS, .target = &co.x.max_pixels},
        {.type = CLI_COMMON, .common = CLI_O_EXACT, .target = &co.x.exact},
        OPT_COMMON(CLI_O_PROGRESS),
        OPT_COMMON(CLI_O_QUIET),
        OPT_END(),
    };
    const cli_tool tool = {
        .usage = "-m MODEL [options] INPUT\n[options] PREDICTIONS.tsv",
        .about = "Accuracy, top-k, per-class precision/recall/F1, the confusion matrix and the\n"
                 "calibration (ECE, reliability) of a classifier on labelled data.\n"
                 "\n"
                 "MODEL is a head from tl-finetune (INPUT: feature vectors from tl-extract, or\n"
                 "images, which then go through the backbone the features came from) or a full\n"
                 "network (INPUT: images). INPUT is a feature file, a folder of class folders,\n"
                 "a manifest (path<TAB>label), or '-': standard input, feature vectors, a\n"
                 "predictions file or a list of images, told apart by their first line.\n"
                 "Without -m, INPUT is a predictions TSV (#path<TAB>true<TAB>pred<TAB>CLASS...,\n"
                 "as written by tl-predict --format eval; see tl-formats(5)).\n"
                 "A multi-label model or predictions file is scored by mAP, per-class AP and\n"
                 "F1 at the decision thresholds; --plot then draws precision-recall curves.\n",
        .opts = opts,
        .example = "tl-extract -m mobilenet_v2 data/val | tl-eval -m head.safetensors -\n"
                   "tl-predict -m net.safetensors --format eval data/val > p.tsv\n"
                   "tl-eval --plot p.svg p.tsv",
        .min_args = 0, .max_args = -1,
    };
    int first = cli_parse(&cli, &tool, argc, argv);
    if (argc - first != 1) {
        if (!o.model && first == argc)
            cli_usage_error(&cli, "no model given (-m MODEL) and no input");
        cli_usage_error(&cli, first == argc ? "no input given" : "one input argument expected");
    }
    o.input = argv[first];
    co.numeric_labels = cli_given(&cli, "label-offset");
    co.label_offset = label_offset;
    if (features && co.force_images)
        cli_usage_error(&cli, "--features and --images exclude each other");
    int sniffed = tl_pred_sniff_file(o.input);
    if (!strcmp(o.input, "-") && !o.predictions && !features && !co.force_images) {
        int kind = cli_stdin_kind(&cli);
        sniffed = kind == CLI_STDIN_PREDICTIONS;
        if (kind == CLI_STDIN_FEATURES && !o.model)
            cli_usage_error(&cli, "standard input holds feature vectors: give -m HEAD to score them");
        if (kind == CLI_STDIN_LIST && !o.model)
            cli_usage_error(&cli, "standard input is a list of images: give -m MODEL to score them");
        /* empty: read as features with a head, whose reader says it is empty */
        co.force_images = kind == CLI_STDIN_LIST;
    }
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
        tl_ml_scorer ml;
        sink k = {&s, NULL, NULL};
        if (c.multilabel) {
            multilabel_checks(&cli, &o);
            if (tl_ml_scorer_init(&ml, c.nclasses, c.probabilities, &e))
                cli_fail(&cli, &e);
            for (int i = 0; i < c.nclasses && !isnan(o.threshold); i++)
                c.thresholds[i] = (float)o.threshold;
            k = (sink){NULL, &ml, c.thresholds};
        } else if (!isnan(o.threshold)) {
            cli_usage_error(&cli, "--threshold applies to multi-label models; %s is single-label", o.model);
        } else if (tl_scorer_init(&s, c.nclasses, o.top_k, c.probabilities, o.bins, &e)) {
            cli_fail(&cli, &e);
        }
        tl_pool *pool = tl_pool_new(co.nthreads, &e);
        if (!pool)
            cli_fail(&cli, &e);
        cli_progress_enable(&cli, cli.force_progress);
        int rc = tl_classify_input(&c, o.model, o.input, &co, pool, on_scored, &k, cli_progress, &cli, cli_log_hook,
                                   &cli, &st, &e);
        cli_progress_end(&cli);
        tl_pool_free(pool);
        if (rc)
            cli_fail(&cli, &e);
        names = (const char *const *)c.classes;
        if (c.multilabel) {
            if (st.skipped)
                cli_log(&cli, "skipped %lld unreadable %s", (long long)st.skipped,
                        cli_plural(st.skipped, "image", "images"));
            cli_hold_signals(); /* no temporary file left by an interrupt */
            ml_report(&cli, &o, &ml, names, c.thresholds, st.skipped);
            cli_release_signals();
            tl_ml_scorer_free(&ml);
            tl_classifier_free(&c);
            return 0;
        }
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
    cli_hold_signals(); /* no temporary file left by an interrupt */
    write_plots(&cli, &o, &s, &m, names);
    cli_release_signals();
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
