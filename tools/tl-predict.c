/* tl-predict: the top classes for each image, as TSV. */
#include "common.h"
#include "io/predictions.h"
#include "report/rank.h"
#include "train/classifier.h"
#include "io/tsv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int k, n;
    int *idx;
    char *const *classes;
    int header, probabilities; /* the header goes out with the first result */
    int eval;                  /* the predictions TSV */
    tl_pred_writer w;
    const float *thresholds;   /* multi-label models */
    unsigned char *set;        /* multi-label: the predicted labels */
} printer;

static void decide(printer *p, const float *out)
{
    for (int c = 0; c < p->n; c++)
        p->set[c] = out[c] >= p->thresholds[c];
}

static int print_eval(printer *p, const tl_scored *s, tl_err *e)
{
    if (p->header) {
        if (p->thresholds ? tl_pred_writer_init_multilabel(&p->w, stdout, (const char *const *)p->classes, p->n,
                                                           p->probabilities, e)
                          : tl_pred_writer_init(&p->w, stdout, (const char *const *)p->classes, p->n,
                                                p->probabilities, e))
            return -1;
        p->header = 0;
    }
    if (p->thresholds) {
        decide(p, s->out);
        if (tl_pred_write_sets(&p->w, s->path, s->truth_set, p->set, s->out, e))
            return tl_fail_prefix(e, "%s", s->path);
        return 0;
    }
    tl_top_k(s->out, p->n, 1, p->idx);
    if (tl_pred_write(&p->w, s->path, s->truth, p->idx[0], s->out, e))
        return tl_fail_prefix(e, "%s", s->path);
    return 0;
}

static int on_scored(void *user, const tl_scored *s, tl_err *e)
{
    printer *p = user;
    if (p->eval)
        return print_eval(p, s, e);
    if (p->header) {
        printf(p->thresholds ? "#path\tlabels" : "#path");
        for (int i = 1; i <= p->k; i++)
            printf("\tclass%d\t%s%d", i, p->probabilities ? "p" : "score", i);
        putchar('\n');
        p->header = 0;
    }
    tl_top_k(s->out, p->n, p->k, p->idx);
    fputs(s->path, stdout);
    if (p->thresholds) {
        decide(p, s->out);
        putchar('\t');
        for (int c = 0, first = 1; c < p->n; c++)
            if (p->set[c]) {
                if (p->classes)
                    printf("%s%s", first ? "" : ",", p->classes[c]);
                else
                    printf("%s%d", first ? "" : ",", c);
                first = 0;
            }
    }
    for (int i = 0; i < p->k; i++) {
        int c = p->idx[i];
        if (p->classes)
            printf("\t%s\t%.6f", p->classes[c], (double)s->out[c]);
        else
            printf("\t%d\t%.6f", c, (double)s->out[c]);
    }
    putchar('\n');
    if (ferror(stdout))
        return tl_fail(e, "standard output: write failed");
    return 0;
}

enum { FORMAT_TOP, FORMAT_EVAL };
static const cli_choice formats[] = {{"top", FORMAT_TOP}, {"eval", FORMAT_EVAL}, {NULL, 0}};

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-predict");
    int k = 5, no_header = 0, features = 0, images = 0, format = FORMAT_TOP, label_offset = 0;
    double threshold = NAN;
    tl_classify_opts co;
    tl_classify_opts_default(&co);
    const cli_opt opts[] = {
        OPT_COMMON_REQUIRED(CLI_O_MODEL, "classifier: a network, or a head from tl-finetune"),
        OPT_INT('k', "top-k", &k, 1, 1000000, "K", "classes per input (default 5)"),
        OPT_ENUM('f', "format", &format, formats, "top: the K best classes (default); eval: label,\n"
                                                  "prediction and every score, for tl-eval"),
        OPT_INT(0, "label-offset", &label_offset, -1000000, 1000000, "N", "(eval) labels are class indices; add N"),
        OPT_FLAG(0, "features", &features, "read '-' as feature vectors"),
        OPT_FLAG(0, "images", &images, "read '-' as a list of images"),
        OPT_FLAG(0, "force", &co.force_origin, "classify features of another backbone, layer or\n"
                                                "preprocessing than the head's"),
        OPT_FLAG(0, "no-header", &no_header, "omit the '#path...' header line"),
        OPT_DOUBLE(0, "threshold", &threshold, -1e30, 1e30, "T", "multi-label: predict a class when its score >= T\n"
                                                                 "(default: the model's per-class thresholds)"),
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
        .usage = "-m MODEL [options] INPUT...",
        .about = "Print the K most likely classes of each input, one line per input:\n"
                 "  path<TAB>class1<TAB>score1<TAB>class2<TAB>score2...\n"
                 "Scores are probabilities (softmax) for networks and logistic-regression heads,\n"
                 "decision values for SVM heads.\n"
                 "With --format eval, one line per input with its label, the prediction and\n"
                 "every class's score (the predictions TSV of tl-formats(5)), for tl-eval.\n"
                 "A multi-label model adds a column after the path: the predicted labels (the\n"
                 "classes whose score reaches their threshold, joined by ',').\n"
                 "\n"
                 "MODEL is a full network, or a head from tl-finetune (images then go through\n"
                 "the backbone its features came from; feature files are scored directly).\n"
                 "INPUT is an image, a folder, a manifest, a feature file or '-': standard\n"
                 "input, feature vectors or a list of images (told apart by their first line).\n",
        .opts = opts,
        .example = "tl-predict -m mobilenet_v2 -k 3 photos/cat.jpg photos/owl.jpg\n"
                   "find photos -name '*.jpg' | tl-predict -m head.safetensors -k 1 -\n"
                   "tl-predict -m net.safetensors --format eval data/val > p.tsv; tl-eval p.tsv",
        .min_args = 1, .max_args = -1, .args_name = "input",
    };
    int first = cli_parse(&cli, &tool, argc, argv);
    const char *model = cli.model;
    int eval = format == FORMAT_EVAL, header = !no_header || eval;
    if (features && images)
        cli_usage_error(&cli, "--features and --images exclude each other");
    if (cli_given(&cli, "label-offset") && !eval)
        cli_usage_error(&cli, "--label-offset only applies to --format eval");
    co.numeric_labels = cli_given(&cli, "label-offset");
    co.label_offset = label_offset;
    /* The predictions TSV carries the labels, so they are matched to the
     * model's classes (an unknown label is an error, as in tl-eval). */
    co.ignore_labels = !eval;
    co.tsv_paths = 1;
    for (int a = first; a < argc; a++)
        if (!strcmp(argv[a], "-") && !features && !images) {
            int kind = cli_stdin_kind(&cli);
            if (kind == CLI_STDIN_PREDICTIONS)
                cli_die(&cli, "standard input is a predictions file: score it with tl-eval");
            features = kind == CLI_STDIN_FEATURES;
            break;
        }
    co.force_images = !features;
    tl_err e;
    tl_classifier c;
    if (tl_classifier_load(&c, model, &e))
        cli_fail(&cli, &e);
    if (features && !c.has_head)
        cli_usage_error(&cli, "feature vectors need a head from tl-finetune; %s is a whole network", model);
    if (eval && !c.classes)
        cli_die(&cli, "%s has no class names to write in a predictions header", model);
    for (int i = 0; c.classes && i < c.nclasses; i++)
        if (tl_tsv_check(c.classes[i], "class name", 0, &e))
            cli_die(&cli, "%s: %s", model, e.msg);
    if (k > c.nclasses)
        k = c.nclasses;
    if (cli_given(&cli, "threshold") && !c.multilabel)
        cli_usage_error(&cli, "--threshold applies to multi-label models; %s is single-label", model);
    for (int i = 0; c.multilabel && cli_given(&cli, "threshold") && i < c.nclasses; i++)
        c.thresholds[i] = (float)threshold;
    printer p = {k, c.nclasses, calloc((size_t)k, sizeof(int)), c.classes, header, c.probabilities, eval, {0},
                 c.multilabel ? c.thresholds : NULL, calloc((size_t)c.nclasses + 1, 1)};
    tl_pool *pool = tl_pool_new(co.nthreads, &e);
    if (!p.idx || !p.set || !pool)
        cli_die(&cli, "out of memory");
    int64_t skipped = 0;
    cli_progress_enable(&cli, cli.force_progress);
    for (int a = first; a < argc; a++) {
        tl_extract_stats st;
        if (tl_classify_input(&c, model, argv[a], &co, pool, on_scored, &p, cli_progress, &cli, cli_log_hook, &cli,
                              &st, &e)) {
            cli_progress_end(&cli);
            cli_fail(&cli, &e);
        }
        skipped += st.skipped;
    }
    cli_progress_end(&cli);
    if (skipped)
        cli_log(&cli, "skipped %lld unreadable %s", (long long)skipped, cli_plural(skipped, "image", "images"));
    if (fflush(stdout) != 0)
        cli_die(&cli, "standard output: write failed");
    free(p.idx);
    free(p.set);
    tl_pred_writer_free(&p.w);
    tl_classifier_free(&c);
    tl_pool_free(pool);
    return 0;
}
