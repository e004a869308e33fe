/* tl-eval: score a classifier on labelled data. */
#include "common.h"
#include "report/metrics.h"
#include "report/rank.h"
#include "train/classifier.h"
#include "json.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void usage(void)
{
    printf("Usage: tl-eval -m MODEL [options] INPUT\n"
           "Accuracy, top-5, per-class precision/recall/F1 and the confusion matrix of a\n"
           "classifier on labelled data.\n"
           "\n"
           "MODEL is a head from tl-finetune (INPUT: feature vectors from tl-extract, or\n"
           "images, which then go through the backbone the features came from) or a full\n"
           "network (INPUT: images). INPUT is a feature file, a folder of class folders,\n"
           "a manifest (path<TAB>label), or '-' (features; with --images, a list of images).\n"
           "\n"
           "  -m, --model MODEL     classifier checkpoint (file or name in $TL_MODEL_PATH)\n"
           "      --json            one JSON object instead of tables\n"
           "      --label-offset N  labels are class indices; add N (1 for the 1001-output\n"
           "                        TFLite ImageNet models with 0-based labels)\n"
           "      --images          read '-' as a list of images\n"
           "      --confusion       always print the confusion matrix (default: up to 20 classes)\n"
           "  -b, --batch N         images per step (default 32)\n"
           "  -j, --threads N       threads (default: all cores)\n"
           "      --skip-bad        warn about and skip unreadable images\n"
           "      --progress        progress bar even when stderr is not a terminal\n"
           "  -q, --quiet           no log messages\n"
           "  -h, --help            this help;  --version  the version\n"
           "\n"
           "Example:\n"
           "  tl-extract -m mobilenet_v2 data/val | tl-eval -m head.safetensors -\n");
    exit(0);
}

typedef struct {
    tl_confusion conf;
    int k;
    int64_t top5, unlabelled;
} tally;

static int on_scored(void *user, const tl_scored *s, tl_err *e)
{
    tally *t = user;
    if (s->truth < 0) {
        t->unlabelled++;
        return 0;
    }
    int rank = tl_rank_of(s->out, t->k, s->truth), best = 0;
    tl_top_k(s->out, t->k, 1, &best);
    tl_confusion_add(&t->conf, s->truth, best);
    t->top5 += rank < 5;
    (void)e;
    return 0;
}

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-eval");
    const char *model = NULL;
    int json = 0, force_progress = 0, always_confusion = 0;
    tl_classify_opts co;
    tl_classify_opts_default(&co);
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"json", no_argument, 0, 'J'},
        {"label-offset", required_argument, 0, 'O'}, {"images", no_argument, 0, 'I'},
        {"confusion", no_argument, 0, 'C'}, {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 'j'}, {"skip-bad", no_argument, 0, 'S'},
        {"progress", no_argument, 0, 'p'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, ":m:b:j:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'J': json = 1; break;
        case 'O':
            co.numeric_labels = 1;
            co.label_offset = (int)cli_long(&cli, "--label-offset", optarg, -1000000, 1000000);
            break;
        case 'I': co.force_images = 1; break;
        case 'C': always_confusion = 1; break;
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
    if (optind != argc - 1)
        cli_usage_error(&cli, optind == argc ? "no input given" : "one input argument expected");
    const char *input = argv[optind];
    tl_err e;
    tl_classifier c;
    if (tl_classifier_load(&c, model, &e))
        cli_fail(&cli, &e);
    tally t = {.k = c.nclasses};
    if (tl_confusion_init(&t.conf, c.nclasses, &e))
        cli_fail(&cli, &e);
    tl_pool *pool = tl_pool_new(co.nthreads, &e);
    if (!pool)
        cli_fail(&cli, &e);
    cli_progress_enable(&cli, force_progress);
    tl_extract_stats st;
    int rc = tl_classify_input(&c, model, input, &co, pool, on_scored, &t, cli_progress, &cli, cli_log_hook, &cli,
                               &st, &e);
    cli_progress_end(&cli);
    if (rc)
        cli_fail(&cli, &e);
    if (st.skipped)
        cli_log(&cli, "skipped %lld unreadable image%s", (long long)st.skipped, st.skipped > 1 ? "s" : "");
    if (t.unlabelled)
        cli_log(&cli, "%lld input%s without a label not scored", (long long)t.unlabelled, t.unlabelled > 1 ? "s" : "");
    tl_metrics m;
    if (tl_metrics_compute(&t.conf, &m, &e))
        cli_fail(&cli, &e);
    if (m.n == 0)
        cli_die(&cli, "%s: no labelled inputs to score", input);
    const char *const *names = (const char *const *)c.classes;
    double top5 = (double)t.top5 / (double)m.n;
    if (json) {
        /* The metrics object, with this tool's fields added before its end. */
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        if (!mem)
            cli_die(&cli, "out of memory");
        tl_metrics_print_json(mem, &m, &t.conf, names);
        fclose(mem);
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '}'))
            len--;
        fwrite(buf, 1, len, stdout);
        printf(",\"top5\":%.6f,\"skipped\":%lld,\"model\":", top5, (long long)st.skipped);
        tl_json_write_string(stdout, model);
        printf(",\"input\":");
        tl_json_write_string(stdout, input);
        printf("}\n");
        free(buf);
    } else {
        printf("model    %s\ninput    %s (%lld scored)\n", model, input, (long long)m.n);
        if (c.nclasses > 5)
            printf("top-5    %.4f\n", top5);
        tl_metrics_print_table(stdout, &m, names);
        if (c.nclasses <= 20 || always_confusion) {
            printf("\n");
            tl_confusion_print(stdout, &t.conf, names);
        } else {
            printf("\n(confusion matrix of %d classes not shown: --confusion or --json)\n", c.nclasses);
        }
    }
    if (fflush(stdout) != 0)
        cli_die(&cli, "standard output: write failed");
    tl_metrics_free(&m);
    tl_confusion_free(&t.conf);
    tl_classifier_free(&c);
    tl_pool_free(pool);
    return 0;
}
