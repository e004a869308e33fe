/* tl-predict: the top classes for each image, as TSV. */
#include "common.h"
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
           "\n"
           "MODEL is a full network, or a head from tl-finetune (images then go through\n"
           "the backbone its features came from; feature files are scored directly).\n"
           "INPUT is an image, a folder, a manifest, a feature file or '-' (a list of\n"
           "images; feature vectors with --features).\n"
           "\n"
           "  -m, --model MODEL     classifier checkpoint (file or name in $TL_MODEL_PATH)\n"
           "  -k, --top K           classes per input (default 5)\n"
           "      --features        read '-' as feature vectors\n"
           "      --no-header       omit the '#path...' header line\n"
           "  -b, --batch N         images per step (default 32)\n"
           "  -j, --threads N       threads (default: all cores)\n"
           "      --skip-bad        warn about and skip unreadable images\n"
           "      --progress        progress bar even when stderr is not a terminal\n"
           "  -q, --quiet           no log messages\n"
           "  -h, --help            this help;  --version  the version\n"
           "\n"
           "Example:\n"
           "  tl-predict -m mobilenet_v2 -k 3 photos/cat.jpg photos/owl.jpg\n");
    exit(0);
}

typedef struct {
    int k, n;
    int *idx;
    char *const *classes;
    int header, probabilities; /* the header goes out with the first result */
} printer;

static int on_scored(void *user, const tl_scored *s, tl_err *e)
{
    printer *p = user;
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
    int k = 5, header = 1, force_progress = 0, features = 0;
    tl_classify_opts co;
    tl_classify_opts_default(&co);
    co.force_images = 1;
    co.ignore_labels = 1;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"top", required_argument, 0, 'k'},
        {"features", no_argument, 0, 'F'}, {"no-header", no_argument, 0, 'H'},
        {"batch", required_argument, 0, 'b'}, {"threads", required_argument, 0, 'j'},
        {"skip-bad", no_argument, 0, 'S'}, {"progress", no_argument, 0, 'p'},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'}, {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, ":m:k:b:j:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'k': k = (int)cli_long(&cli, "--top", optarg, 1, 1000000); break;
        case 'F': features = 1; break;
        case 'H': header = 0; break;
        case 'b': co.x.batch = (int)cli_long(&cli, "--batch", optarg, 1, 4096); break;
        case 'j': co.nthreads = cli_threads(&cli, optarg); break;
        case 'S': co.x.skip_bad = 1; break;
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
    tl_err e;
    tl_classifier c;
    if (tl_classifier_load(&c, model, &e))
        cli_fail(&cli, &e);
    if (features && !c.has_head)
        cli_usage_error(&cli, "--features needs a head from tl-finetune; %s is a whole network", model);
    if (k > c.nclasses)
        k = c.nclasses;
    printer p = {k, c.nclasses, calloc((size_t)k, sizeof(int)), c.classes, header, c.probabilities};
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
    tl_classifier_free(&c);
    tl_pool_free(pool);
    return 0;
}
