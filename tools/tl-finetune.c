/* tl-finetune: train a classifier. On feature vectors (from tl-extract) it
 * trains a linear head: multinomial logistic regression or a linear SVM. */
#include "common.h"
#include "train/head.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Noreturn void usage(void)
{
    printf("Usage: tl-finetune [options] TRAIN_FEATURES -o HEAD.safetensors\n"
           "Train a linear classifier on feature vectors from tl-extract (.tlf, .tsv or\n"
           ".npy; '-' reads standard input). Features are standardised internally and\n"
           "the standardisation is folded into the saved weights.\n"
           "\n"
           "  -o, --output FILE     the head checkpoint to write (required)\n"
           "      --head KIND       logreg (default): multinomial logistic regression,\n"
           "                        L-BFGS; svm: one-vs-rest linear SVM, squared hinge,\n"
           "                        dual coordinate descent\n"
           "  -C, --C C             inverse L2 strength, as scikit-learn/liblinear:\n"
           "                        minimise 0.5*|W|^2 + C*sum(loss). Default 1.0\n"
           "      --l2 LAMBDA       the same as a penalty on the mean loss:\n"
           "                        mean(loss) + LAMBDA/2*|W|^2, i.e. C = 1/(LAMBDA*n)\n"
           "      --max-iter N      iteration limit (default 1000)\n"
           "      --tol T           stopping tolerance (default: 1e-5 logreg, 0.1 svm)\n"
           "      --val FEATURES    report accuracy on these after training\n"
           "  -j, --threads N       threads (default: all cores; results do not depend on it)\n"
           "  -q, --quiet           no log messages\n"
           "  -h, --help            this help;  --version  the version\n"
           "\n"
           "Example:\n"
           "  tl-extract -m mobilenet_v2 data/train -o train.tlf\n"
           "  tl-finetune train.tlf -o head.safetensors\n");
    exit(0);
}

typedef struct {
    int64_t correct, n;
} tally;

static tally score(const tl_linear_model *m, const tl_featset *s)
{
    tally t = {0, 0};
    for (int64_t i = 0; i < s->n; i++) {
        if (s->y[i] < 0)
            continue;
        t.n++;
        t.correct += tl_linear_predict(m, s->X + (size_t)i * (size_t)s->info.dim) == s->y[i];
    }
    return t;
}

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-finetune");
    const char *out = NULL, *val = NULL;
    int threads = tl_cpu_count();
    double lambda = -1;
    tl_linear_opts lo;
    tl_linear_opts_default(&lo);
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"head", required_argument, 0, 'H'},
        {"C", required_argument, 0, 'C'},      {"l2", required_argument, 0, 'L'},
        {"max-iter", required_argument, 0, 'I'}, {"tol", required_argument, 0, 'T'},
        {"val", required_argument, 0, 'v'},    {"threads", required_argument, 0, 'j'},
        {"quiet", no_argument, 0, 'q'},        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},      {0, 0, 0, 0},
    };
    int ch, have_c = 0;
    while ((ch = getopt_long(argc, argv, ":o:C:j:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 'H':
            if (!strcmp(optarg, "logreg"))
                lo.kind = TL_HEAD_LOGREG;
            else if (!strcmp(optarg, "svm"))
                lo.kind = TL_HEAD_SVM;
            else
                cli_usage_error(&cli, "--head: '%s' is not logreg or svm", optarg);
            break;
        case 'C': lo.C = cli_double(&cli, "--C", optarg, 1e-12, 1e12); have_c = 1; break;
        case 'L': lambda = cli_double(&cli, "--l2", optarg, 1e-15, 1e12); break;
        case 'I': lo.max_iter = (int)cli_long(&cli, "--max-iter", optarg, 1, 10000000); break;
        case 'T': lo.tol = cli_double(&cli, "--tol", optarg, 1e-15, 1e3); break;
        case 'v': val = optarg; break;
        case 'j': threads = cli_threads(&cli, optarg); break;
        case 'q': cli.quiet = 1; break;
        case 'h': usage();
        case 'V': cli_version(&cli);
        default: cli_bad_option(&cli, argv, ch);
        }
    }
    if (optind != argc - 1)
        cli_usage_error(&cli, optind == argc ? "no training data given" : "one training data argument expected");
    if (!out)
        cli_usage_error(&cli, "no output given (-o HEAD.safetensors)");
    if (have_c && lambda > 0)
        cli_usage_error(&cli, "give --C or --l2, not both");
    const char *train = argv[optind];
    tl_err e;
    tl_featset s;
    if (strcmp(train, "-") && !tl_feat_sniff(train))
        cli_die(&cli, "%s: not a feature file; tl-finetune trains a head on features from tl-extract "
                      "(training the network on images is not available yet)", train);
    if (tl_featset_load(train, &s, &e))
        cli_fail(&cli, &e);
    if (s.n == 0)
        cli_die(&cli, "%s: no feature vectors", train);
    for (int64_t i = 0; i < s.n; i++)
        if (s.y[i] < 0)
            cli_die(&cli, "%s: %s has no label; training needs labelled data (class folders or a manifest)",
                    train, s.paths[i]);
    if (s.info.nclasses < 2)
        cli_die(&cli, "%s: %d class%s; a classifier needs at least 2", train, s.info.nclasses,
                s.info.nclasses == 1 ? "" : "es");
    if (lambda > 0)
        lo.C = 1.0 / (lambda * (double)s.n);
    tl_pool *pool = tl_pool_new(threads, &e);
    if (!pool)
        cli_fail(&cli, &e);
    cli_log(&cli, "%lld vectors of %d values, %d classes; %s, C = %g", (long long)s.n, s.info.dim, s.info.nclasses,
            lo.kind == TL_HEAD_SVM ? "linear SVM" : "logistic regression", lo.C);
    double t0 = tl_now();
    tl_linear_model m;
    if (tl_linear_train(s.X, s.y, s.n, s.info.dim, s.info.nclasses, &lo, pool, cli.quiet ? NULL : cli_log_hook, &cli,
                        &m, &e))
        cli_fail(&cli, &e);
    double secs = tl_now() - t0;
    tally tr = score(&m, &s);
    double train_acc = (double)tr.correct / (double)tr.n;
    cli_log(&cli, "trained in %.2f s: training accuracy %.4f (%lld/%lld)", secs, train_acc, (long long)tr.correct,
            (long long)tr.n);
    char c_str[32], n_str[32], acc_str[32], when[32], val_str[32] = "";
    snprintf(c_str, sizeof c_str, "%.9g", lo.C);
    snprintf(n_str, sizeof n_str, "%lld", (long long)s.n);
    snprintf(acc_str, sizeof acc_str, "%.6f", train_acc);
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    if (val) {
        tl_featset v;
        if (tl_featset_load(val, &v, &e))
            cli_fail(&cli, &e);
        if (v.info.dim != s.info.dim)
            cli_die(&cli, "%s: %d values per vector, training data has %d", val, v.info.dim, s.info.dim);
        /* Validation classes are matched by name. */
        for (int64_t i = 0; i < v.n; i++) {
            int y = -1;
            for (int c = 0; v.y[i] >= 0 && c < s.info.nclasses; c++)
                if (!strcmp(s.info.classes[c], v.info.classes[v.y[i]]))
                    y = c;
            if (v.y[i] >= 0 && y < 0)
                cli_die(&cli, "%s: class '%s' is not in the training data", val, v.info.classes[v.y[i]]);
            v.y[i] = y;
        }
        tally vt = score(&m, &v);
        if (vt.n) {
            snprintf(val_str, sizeof val_str, "%.6f", (double)vt.correct / (double)vt.n);
            cli_log(&cli, "validation accuracy %.4f (%lld/%lld)", (double)vt.correct / (double)vt.n,
                    (long long)vt.correct, (long long)vt.n);
        }
        tl_featset_free(&v);
    }
    const char *meta[] = {"tl.C", c_str, "tl.train_n", n_str, "tl.train_accuracy", acc_str, "tl.trained_at", when,
                          "tl.train_data", train, val_str[0] ? "tl.val_accuracy" : NULL, val_str, NULL};
    if (tl_head_save(&m, &s.info, meta, out, &e))
        cli_fail(&cli, &e);
    cli_log(&cli, "wrote %s", out);
    tl_linear_model_free(&m);
    tl_featset_free(&s);
    tl_pool_free(pool);
    return 0;
}
