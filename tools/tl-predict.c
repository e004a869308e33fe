/* tl-predict: the top classes for each image, as TSV. */
#include "common.h"
#include "io/predictions.h"
#include "report/rank.h"
#include "train/classifier.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void usage(void)
{
    printf("Usage: tl-predict -m MODEL [options] INPUT...\n"
           "Print the K most likely classes of each input, one line per input:\n"
           "  path<TAB>class1<TAB>score1<TAB>class2<TAB>score2...\n"
           "Scores are probabilities (softmax) for networks and logistic-regression heads,\n"
           "decision values for SVM heads.\n"
           "With --format eval, one line per input with its label, the prediction and\n"
           "every class's score (the predictions TSV of tl-formats(5)), for tl-eval.\n"
           "\n"
           "MODEL is a full network, or a head from tl-finetune (images then go through\n"
           "the backbone its features came from; feature files are scored directly).\n"
           "INPUT is an image, a folder, a manifest, a feature file or '-' (a list of\n"
           "images; feature vectors with --features).\n"
           "\n"
           "  -m, --model MODEL     classifier checkpoint (file or name in $TL_MODEL_PATH)\n"
           "  -k, --top K           classes per input (default 5)\n"
           "  -f, --format F        top (default): the K best classes; eval: label,\n"
           "                        prediction and all scores, to score with tl-eval\n"
           "      --label-offset N  (eval) labels are class indices; add N\n"
           "      --features        read '-' as feature vectors\n"
           "      --no-header       omit the '#path...' header line\n"
           "  -b, --batch N         images per step (default 32)\n"
           "  -j, --threads N       threads (default: all cores)\n"
           "      --skip-bad        warn about and skip unreadable images\n"
           "      --max-pixels N    refuse images larger than N pixels (default 100000000)\n"
           "      --progress        progress bar even when stderr is not a terminal\n"
           "  -q, --quiet           no log messages\n"
           "  -h, --help            this help;  --version  the version\n"
           "\n"
           "Example:\n"
           "  tl-predict -m mobilenet_v2 -k 3 photos/cat.jpg photos/owl.jpg\n"
           "  tl-predict -m net.safetensors --format eval data/val > p.tsv; tl-eval p.tsv\n");
    exit(0);
}

typedef struct {
    int k, n;
    int *idx;
    char *const *classes;
    int header, probabilities; /* the header goes out with the first result */
    int eval;                  /* the predictions TSV */
    tl_pred_writer w;
} printer;

static int print_eval(printer *p, const tl_scored *s, tl_err *e)
{
    if (p->header) {
        if (tl_pred_writer_init(&p->w, stdout, (const char *const *)p->classes, p->n, p->probabilities, e))
            return -1;
        p->header = 0;
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
        printf("#path");
        for (int i = 1; i <= p->k; i++)
            printf("\tclass%d\t%s%d", i, p->probabilities ? "p" : "score", i);
        putchar('\n');
        p->header = 0;
    }
    tl_top_k(s->out, p->n, p->k, p->idx);
    fputs(s->path, stdout);
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

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-predict");
    const char *model = NULL;
    int k = 5, header = 1, force_progress = 0, features = 0, eval = 0;
    tl_classify_opts co;
    tl_classify_opts_default(&co);
    co.force_images = 1;
    co.ignore_labels = 1;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"top", required_argument, 0, 'k'},
        {"features", no_argument, 0, 'F'}, {"no-header", no_argument, 0, 'H'},
        {"batch", required_argument, 0, 'b'}, {"threads", required_argument, 0, 'j'},
        {"skip-bad", no_argument, 0, 'S'}, {"progress", no_argument, 0, 'p'},
        {"max-pixels", required_argument, 0, 1100},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"format", required_argument, 0, 'f'}, {"label-offset", required_argument, 0, 'O'},
        {"version", no_argument, 0, 'V'}, {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, ":m:k:f:b:j:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'k': k = (int)cli_long(&cli, "--top", optarg, 1, 1000000); break;
        case 'F': features = 1; break;
        case 'f':
            if (strcmp(optarg, "top") && strcmp(optarg, "eval"))
                cli_usage_error(&cli, "--format: '%s' is not top or eval", optarg);
            eval = !strcmp(optarg, "eval");
            break;
        case 'O':
            co.numeric_labels = 1;
            co.label_offset = (int)cli_long(&cli, "--label-offset", optarg, -1000000, 1000000);
            break;
        case 'H': header = 0; break;
        case 'b': co.x.batch = (int)cli_long(&cli, "--batch", optarg, 1, 4096); break;
        case 'j': co.nthreads = cli_threads(&cli, optarg); break;
        case 'S': co.x.skip_bad = 1; break;
        case 1100: co.x.max_pixels = cli_max_pixels(&cli, optarg); break;
        case 'p': force_progress = 1; break;
        case 'q': cli.quiet = 1; break;
        case 'h': usage();
        case 'V': cli_version(&cli);
        default: cli_bad_option(&cli, argv, ch);
        }
    }
    if (!model)
        cli_usage_error(&cli, "no model given (-m MODEL)");
    if (optind >= argc)
        cli_usage_error(&cli, "no input given");
    co.force_images = !features;
    /* The predictions TSV carries the labels, so they are matched to the
     * model's classes (an unknown label is an error, as in tl-eval). */
    co.ignore_labels = !eval;
    if (co.numeric_labels && !eval)
        cli_usage_error(&cli, "--label-offset only applies to --format eval");
    tl_err e;
    tl_classifier c;
    if (tl_classifier_load(&c, model, &e))
        cli_fail(&cli, &e);
    if (features && !c.has_head)
        cli_usage_error(&cli, "--features needs a head from tl-finetune; %s is a whole network", model);
    if (eval && !c.classes)
        cli_die(&cli, "%s has no class names to write in a predictions header", model);
    if (k > c.nclasses)
        k = c.nclasses;
    printer p = {k, c.nclasses, calloc((size_t)k, sizeof(int)), c.classes, header || eval, c.probabilities, eval, {0}};
    tl_pool *pool = tl_pool_new(co.nthreads, &e);
    if (!p.idx || !pool)
        cli_die(&cli, "out of memory");
    int64_t skipped = 0;
    cli_progress_enable(&cli, force_progress);
    for (int a = optind; a < argc; a++) {
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
        cli_log(&cli, "skipped %lld unreadable image%s", (long long)skipped, skipped > 1 ? "s" : "");
    if (fflush(stdout) != 0)
        cli_die(&cli, "standard output: write failed");
    free(p.idx);
    tl_pred_writer_free(&p.w);
    tl_classifier_free(&c);
    tl_pool_free(pool);
    return 0;
}
