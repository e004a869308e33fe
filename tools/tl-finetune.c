/* tl-finetune: train a classifier. On feature vectors (from tl-extract) it
 * trains a linear head: multinomial logistic regression or a linear SVM.
 * On images (class folders, a manifest, '-' with -m/--arch, or IDX files)
 * it fine-tunes or trains the network itself (train/loop.h). */
#include "common.h"
#include "train/head.h"
#include "json.h"

#include <errno.h>
#include <getopt.h>
#include <unistd.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage_images(void);

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
           "      --log FILE        JSON lines for tl-compare (start, train, val, best)\n"
           "      --name NAME       the run's name in the log (default: the output file)\n"
           "  -j, --threads N       threads (default: all cores; results do not depend on it)\n"
           "  -q, --quiet           no log messages\n"
           "  -h, --help            this help;  --version  the version\n"
           "\n"
           "Example:\n"
           "  tl-extract -m mobilenet_v2 data/train -o train.tlf\n"
           "  tl-finetune train.tlf -o head.safetensors\n\n");
    usage_images();
    exit(0);
}

typedef struct {
    int64_t correct, n;
    double loss; /* mean cross-entropy of the softmax of the scores; NAN for SVM heads */
} tally;

static tally score(const tl_linear_model *m, const tl_featset *s)
{
    tally t = {0, 0, 0};
    int k = s->info.nclasses;
    float *sc = malloc((size_t)k * sizeof(float));
    if (!sc) {
        t.loss = NAN;
        return t;
    }
    for (int64_t i = 0; i < s->n; i++) {
        if (s->y[i] < 0)
            continue;
        t.n++;
        tl_linear_scores(m, s->X + (size_t)i * (size_t)s->info.dim, sc);
        int best = 0;
        float mx = sc[0];
        for (int c = 1; c < k; c++)
            if (sc[c] > mx)
                mx = sc[best = c];
        t.correct += best == s->y[i];
        double z = 0;
        for (int c = 0; c < k; c++)
            z += exp((double)sc[c] - (double)mx);
        t.loss += log(z) + (double)mx - (double)sc[s->y[i]];
    }
    free(sc);
    t.loss = m->kind == TL_HEAD_SVM || !t.n ? NAN : t.loss / (double)t.n;
    return t;
}

typedef struct feature_log {
    const char *run, *strategy, *train, *val;
    const tl_feat_info *info;
    int64_t ntrain, nval;
    int threads;
    double seconds, train_loss, train_acc, val_loss, val_acc;
    long long params;
} feature_log;

/* The same JSON lines as a network run (see tl-formats(5)), so tl-compare
 * puts a feature head beside fine-tuned networks: one epoch, all of it
 * spent in the solver; tl-extract --log lines prepended by the caller add
 * the extraction time. */
static void write_feature_log(FILE *f, const feature_log *l)
{
    fprintf(f, "{\"phase\":\"start\"");
    cli_json_str(f, "run", l->run);
    cli_json_str(f, "tool", "tl-finetune");
    cli_json_str(f, "init", "features");
    cli_json_str(f, "model", l->info->model);
    cli_json_str(f, "layer", l->info->layer);
    cli_json_str(f, "strategy", l->strategy);
    cli_json_str(f, "train", l->train);
    if (l->val)
        cli_json_str(f, "val", l->val);
    fprintf(f, ",\"train_images\":%lld,\"val_images\":%lld,\"classes\":%d,\"epochs\":1,\"threads\":%d",
            (long long)l->ntrain, (long long)l->nval, l->info->nclasses, l->threads);
    fprintf(f, ",\"params\":%lld,\"trainable_params\":%lld}\n", l->params, l->params);
    fprintf(f, "{\"epoch\":1,\"phase\":\"train\"");
    cli_json_num(f, "loss", l->train_loss);
    cli_json_num(f, "accuracy", l->train_acc);
    cli_json_num(f, "seconds", l->seconds);
    cli_json_num(f, "images_per_s", l->seconds > 0 ? (double)l->ntrain / l->seconds : NAN);
    fprintf(f, ",\"trainable_params\":%lld}\n", l->params);
    if (l->nval) {
        fprintf(f, "{\"epoch\":1,\"phase\":\"val\"");
        cli_json_num(f, "loss", l->val_loss);
        cli_json_num(f, "accuracy", l->val_acc);
        fprintf(f, ",\"seconds\":0,\"trainable_params\":%lld,\"best\":true}\n", l->params);
        fprintf(f, "{\"phase\":\"best\",\"epoch\":1");
        cli_json_num(f, "loss", l->val_loss);
        cli_json_num(f, "accuracy", l->val_acc);
        fprintf(f, ",\"epochs_run\":1,\"stopped_early\":false");
        cli_json_num(f, "seconds", l->seconds);
        fprintf(f, "}\n");
    }
}

static int features_main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-finetune");
    const char *out = NULL, *val = NULL, *log_path = NULL, *run_name = NULL;
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
        {"log", required_argument, 0, 'G'},    {"name", required_argument, 0, 'N'},
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
        case 'G': log_path = optarg; break;
        case 'N': run_name = optarg; break;
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
    /* Opened before the work so that a bad path fails in a second, not after training. */
    FILE *log = NULL;
    if (log_path && !(log = fopen(log_path, "w")))
        cli_die(&cli, "%s: cannot open the log: %s", log_path, strerror(errno));
    if (have_c && lambda > 0)
        cli_usage_error(&cli, "give --C or --l2, not both");
    const char *train = argv[optind];
    tl_err e;
    tl_featset s;
    if (strcmp(train, "-") && access(train, R_OK) != 0)
        cli_die(&cli, "%s: %s", train, strerror(errno));
    if (strcmp(train, "-") && !tl_feat_sniff(train))
        cli_die(&cli, "%s: not a feature file (to train the network on images, give -m MODEL or --scratch)",
                train);
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
    tally vtally = {0, 0, NAN};
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
        vtally = vt;
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
    if (log) {
        feature_log lg = {run_name ? run_name : out, lo.kind == TL_HEAD_SVM ? "features+svm" : "features+logreg",
                          train, val, &s.info, s.n, vtally.n, threads, secs, tr.loss, train_acc,
                          vtally.n ? vtally.loss : NAN,
                          vtally.n ? (double)vtally.correct / (double)vtally.n : NAN,
                          (long long)m.k * (m.d + 1)};
        write_feature_log(log, &lg);
        if (fclose(log))
            cli_die(&cli, "%s: cannot write the log", log_path);
    }
    tl_linear_model_free(&m);
    tl_featset_free(&s);
    tl_pool_free(pool);
    return 0;
}

/* ---------------- training the network on images ---------------- */

#include "io/idx.h"
#include "train/loop.h"
#include "json.h"

#include <signal.h>
#include <sys/stat.h>

static void usage_images(void)
{
    printf("Usage: tl-finetune [options] TRAIN_IMAGES -o NET.safetensors\n"
           "Fine-tune a network (-m MODEL) or train one from scratch (--scratch) on images:\n"
           "a class-folder tree, a manifest, '-' (a manifest on stdin; needs -m or --arch),\n"
           "or IDX files: idx:PREFIX (PREFIX-images-idx3-ubyte[.gz], PREFIX-labels-idx1-ubyte[.gz])\n"
           "or idx:IMAGES,LABELS. Grey IDX images are expanded to RGB (R = G = B).\n"
           "\n"
           "  -m, --model MODEL      pretrained checkpoint; its classifier is replaced\n"
           "      --arch NAME        with --scratch: a zoo architecture\n"
           "      --scratch          initialise every weight as torchvision does\n"
           "      --input-size N     with --arch (default 224; resized straight, no crop)\n"
           "      --keep-head        keep MODEL's classifier when its shape fits\n"
           "      --dropout P        before the classifier (default: the architecture's)\n"
           "      --freeze-until L   freeze layer L and everything before it\n"
           "      --head-only        train only the classifier\n"
           "      --freeze-bn        every batch norm uses its running statistics\n"
           "      --unfreeze-every K start with the head, thaw one group every K epochs\n"
           "      --lr LR            head learning rate (default 0.01 SGD, 1e-3 AdamW)\n"
           "      --lr-mult M        each earlier group: M times the next (default: the backbone\n"
           "                         from 0.1x the head's rate to 0.01x at the first group; 1 with --scratch)\n"
           "      --group-lrs A,B,.. explicit rates, earliest group first\n"
           "      --groups N         backbone groups (default 4)\n"
           "      --optimizer K      sgd (momentum 0.9, default) or adamw\n"
           "      --momentum M       --weight-decay W (default 1e-4 SGD, 0.01 AdamW)\n"
           "      --label-smoothing S (default 0.1)   --clip-norm N (default off)\n"
           "      --schedule SPEC    default cosine with 5%% warm-up\n"
           "      --epochs N (10)    --batch N (32)   --seed N (1)\n"
           "      --augment SPEC     augmentation spec or policy (default none)\n"
           "      --val DATA         validation data; else --val-split F (default 0.2)\n"
           "      --patience N       stop after N epochs without improvement (default off)\n"
           "      --log FILE         JSON lines: the run's settings, then one per epoch and phase\n"
           "      --name NAME        the run's name in the log (default: the output file)\n"
           "      --resume           continue from OUT.resume.safetensors\n"
           "      --max-pixels N     refuse images larger than N pixels (default 100000000)\n"
           "  -j, --threads N        threads\n"
           "\n"
           "Examples:\n"
           "  tl-finetune -m mobilenet_v2 --freeze-until features.13 --augment natural \\\n"
           "              --val data/val --log run.jsonl -o tuned.safetensors data/train\n"
           "  tl-finetune --scratch --arch small_cnn --input-size 28 --optimizer adamw \\\n"
           "              --val idx:/usr/share/datasets/fashion-mnist/t10k -o fmnist.safetensors \\\n"
           "              idx:/usr/share/datasets/fashion-mnist/train\n");
}

enum {
    O_MODEL = 1000, O_ARCH, O_SCRATCH, O_INSIZE, O_KEEPHEAD, O_DROPOUT, O_FREEZE, O_HEADONLY, O_FREEZEBN, O_UNFREEZE,
    O_LR, O_LRMULT, O_GROUPLRS, O_GROUPS, O_OPTIM, O_MOM, O_WD, O_LS, O_CLIP, O_SCHED, O_EPOCHS, O_BATCH, O_SEED,
    O_AUG, O_VAL, O_VALSPLIT, O_PATIENCE, O_LOG, O_NAME, O_RESUME, O_HEAD, O_C, O_L2, O_MAXIT, O_TOL, O_PROGRESS,
};

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig)
{
    (void)sig;
    g_stop = 1;
}

typedef struct img_data {
    tl_dataset ds;
    tl_idx idx;
    tl_source src;
    char **classes;
    int nclasses;
    int is_idx;
} img_data;

/* An output that exists and is not a regular file is a device (/dev/null,
 * a pipe): there is no folder beside it for resume state. */
static int is_device(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && !S_ISREG(st.st_mode);
}

static int is_regular(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void open_data(const tl_cli *cli, const char *spec, img_data *d)
{
    memset(d, 0, sizeof *d);
    tl_err e;
    char im[4096], lb[4096];
    if (tl_idx_spec(spec, im, lb, sizeof im)) {
        if (tl_idx_load(im, lb, &d->idx, &e))
            cli_fail(cli, &e);
        d->is_idx = 1;
        d->src.idx = &d->idx;
        d->nclasses = d->idx.nclasses;
        d->classes = calloc((size_t)d->nclasses, sizeof(char *));
        int fashion = d->nclasses == 10 && strstr(spec, "fashion");
        for (int c = 0; c < d->nclasses; c++) {
            char buf[16];
            snprintf(buf, sizeof buf, "%d", c);
            d->classes[c] = tl_strdup(fashion ? tl_idx_fashion_names()[c] : buf);
        }
        return;
    }
    if (tl_dataset_open(spec, &d->ds, &e))
        cli_fail(cli, &e);
    if (d->ds.n == 0)
        cli_die(cli, "%s: no images", spec);
    for (int64_t i = 0; i < d->ds.n; i++)
        if (d->ds.items[i].label < 0)
            cli_die(cli, "%s: %s has no label; training needs labelled data", spec, d->ds.items[i].path);
    d->src.ds = &d->ds;
    d->nclasses = d->ds.nclasses;
    d->classes = calloc((size_t)d->nclasses, sizeof(char *));
    for (int c = 0; c < d->nclasses; c++)
        d->classes[c] = tl_strdup(d->ds.classes[c]);
}

static void free_data(img_data *d)
{
    for (int c = 0; c < d->nclasses; c++)
        free(d->classes[c]);
    free(d->classes);
    if (d->is_idx)
        tl_idx_free(&d->idx);
    else
        tl_dataset_free(&d->ds);
}

typedef struct reporter {
    tl_cli *cli;
    FILE *log;
    double train_loss, train_acc, secs;
    double ips;
    int has_val;
} reporter;

static void report(void *user, const tl_epoch_report *r)
{
    reporter *R = user;
    cli_progress_end(R->cli);
    if (R->log) {
        /* A diverged loss is NaN, which JSON cannot hold: it becomes null. */
        fprintf(R->log, "{\"epoch\":%d,\"phase\":\"%s\"", r->epoch, r->phase);
        cli_json_num(R->log, "loss", r->loss);
        cli_json_num(R->log, "accuracy", r->accuracy);
        fprintf(R->log, ",\"lr\":[");
        for (int g = 0; g < r->ngroups; g++)
            fprintf(R->log, "%s%.6g", g ? "," : "", r->lr[g]);
        fprintf(R->log, "],\"seconds\":%.3f,\"images_per_s\":%.2f,\"trainable_params\":%lld", r->seconds,
                r->images_per_s, (long long)r->trainable_params);
        if (!strcmp(r->phase, "val"))
            fprintf(R->log, ",\"best\":%s", r->improved ? "true" : "false");
        fprintf(R->log, "}\n");
        fflush(R->log);
    }
    if (!strcmp(r->phase, "train")) {
        R->train_loss = r->loss;
        R->train_acc = r->accuracy;
        R->secs = r->seconds;
        R->ips = r->images_per_s;
        if (!R->has_val)
            cli_log(R->cli, "epoch %d/%d  train loss %.3f acc %.3f  %.1f s  %.0f img/s", r->epoch, r->epochs, r->loss,
                    r->accuracy, r->seconds, r->images_per_s);
    } else {
        cli_log(R->cli, "epoch %d/%d  train loss %.3f acc %.3f  val loss %.3f acc %.3f  %.1f s  %.0f img/s%s",
                r->epoch, r->epochs, R->train_loss, R->train_acc, r->loss, r->accuracy, R->secs + r->seconds, R->ips,
                r->improved ? "  best" : "");
    }
}

static void progress(void *user, int64_t done, int64_t total) { cli_progress(((reporter *)user)->cli, done, total); }

static int images_main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-finetune");
    const char *out = NULL, *val = NULL, *model = NULL, *arch = NULL, *freeze_until = NULL, *group_lrs = NULL;
    const char *sched_spec = NULL, *aug_spec = NULL, *log_path = NULL, *run_name = NULL;
    int scratch = 0, input_size = 0, keep_head = 0, head_only = 0, freeze_bn = 0, unfreeze_every = 0, groups = 4;
    int kind = TL_OPT_SGD, epochs = 10, batch = 32, patience = 0, resume = 0, threads = tl_cpu_count();
    int force_progress = 0;
    size_t max_pixels = 0;
    double lr = -1, lr_mult = -1, momentum = -1, wd = -1, ls = 0.1, clip = 0, dropout = -1, val_split = -1;
    long long seed = 1;
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},       {"model", required_argument, 0, 'm'},
        {"arch", required_argument, 0, O_ARCH},       {"scratch", no_argument, 0, O_SCRATCH},
        {"input-size", required_argument, 0, O_INSIZE}, {"keep-head", no_argument, 0, O_KEEPHEAD},
        {"dropout", required_argument, 0, O_DROPOUT}, {"freeze-until", required_argument, 0, O_FREEZE},
        {"head-only", no_argument, 0, O_HEADONLY},    {"freeze-bn", no_argument, 0, O_FREEZEBN},
        {"unfreeze-every", required_argument, 0, O_UNFREEZE}, {"lr", required_argument, 0, O_LR},
        {"lr-mult", required_argument, 0, O_LRMULT},  {"group-lrs", required_argument, 0, O_GROUPLRS},
        {"groups", required_argument, 0, O_GROUPS},   {"optimizer", required_argument, 0, O_OPTIM},
        {"momentum", required_argument, 0, O_MOM},    {"weight-decay", required_argument, 0, O_WD},
        {"label-smoothing", required_argument, 0, O_LS}, {"clip-norm", required_argument, 0, O_CLIP},
        {"schedule", required_argument, 0, O_SCHED},  {"epochs", required_argument, 0, O_EPOCHS},
        {"batch", required_argument, 0, O_BATCH},     {"seed", required_argument, 0, O_SEED},
        {"augment", required_argument, 0, O_AUG},     {"val", required_argument, 0, O_VAL},
        {"val-split", required_argument, 0, O_VALSPLIT}, {"patience", required_argument, 0, O_PATIENCE},
        {"log", required_argument, 0, O_LOG},         {"resume", no_argument, 0, O_RESUME},
        {"name", required_argument, 0, O_NAME},
        {"threads", required_argument, 0, 'j'},       {"quiet", no_argument, 0, 'q'},
        {"progress", no_argument, 0, O_PROGRESS}, {"max-pixels", required_argument, 0, 1100},
        {"help", no_argument, 0, 'h'},                {"version", no_argument, 0, 'V'},
        /* the feature path's options, accepted here and re-read there */
        {"head", required_argument, 0, O_HEAD},       {"C", required_argument, 0, O_C},
        {"l2", required_argument, 0, O_L2},           {"max-iter", required_argument, 0, O_MAXIT},
        {"tol", required_argument, 0, O_TOL},         {0, 0, 0, 0},
    };
    int ch, feature_opts = 0;
    while ((ch = getopt_long(argc, argv, ":o:m:C:j:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 'm': model = optarg; break;
        case O_ARCH: arch = optarg; break;
        case O_SCRATCH: scratch = 1; break;
        case O_INSIZE: input_size = (int)cli_long(&cli, "--input-size", optarg, 8, 4096); break;
        case O_KEEPHEAD: keep_head = 1; break;
        case O_DROPOUT: dropout = cli_double(&cli, "--dropout", optarg, 0, 0.99); break;
        case O_FREEZE: freeze_until = optarg; break;
        case O_HEADONLY: head_only = 1; break;
        case O_FREEZEBN: freeze_bn = 1; break;
        case O_UNFREEZE: unfreeze_every = (int)cli_long(&cli, "--unfreeze-every", optarg, 1, 100000); break;
        case O_LR: lr = cli_double(&cli, "--lr", optarg, 0, 100); break;
        case O_LRMULT: lr_mult = cli_double(&cli, "--lr-mult", optarg, 1e-9, 100); break;
        case O_GROUPLRS: group_lrs = optarg; break;
        case O_GROUPS: groups = (int)cli_long(&cli, "--groups", optarg, 1, 64); break;
        case O_OPTIM:
            if (!strcmp(optarg, "sgd"))
                kind = TL_OPT_SGD;
            else if (!strcmp(optarg, "adamw"))
                kind = TL_OPT_ADAMW;
            else
                cli_usage_error(&cli, "--optimizer: '%s' is not sgd or adamw", optarg);
            break;
        case O_MOM: momentum = cli_double(&cli, "--momentum", optarg, 0, 0.999999); break;
        case O_WD: wd = cli_double(&cli, "--weight-decay", optarg, 0, 10); break;
        case O_LS: ls = cli_double(&cli, "--label-smoothing", optarg, 0, 0.99); break;
        case O_CLIP: clip = cli_double(&cli, "--clip-norm", optarg, 0, 1e9); break;
        case O_SCHED: sched_spec = optarg; break;
        case O_EPOCHS: epochs = (int)cli_long(&cli, "--epochs", optarg, 1, 100000); break;
        case O_BATCH: batch = (int)cli_long(&cli, "--batch", optarg, 2, 4096); break;
        case O_SEED: seed = cli_long(&cli, "--seed", optarg, 0, 0x7fffffffffffffffL); break;
        case O_AUG: aug_spec = optarg; break;
        case O_VAL: val = optarg; break;
        case O_VALSPLIT: val_split = cli_double(&cli, "--val-split", optarg, 0, 0.9); break;
        case O_PATIENCE: patience = (int)cli_long(&cli, "--patience", optarg, 1, 100000); break;
        case O_LOG: log_path = optarg; break;
        case O_NAME: run_name = optarg; break;
        case O_RESUME: resume = 1; break;
        case O_PROGRESS: force_progress = 1; break;
        case 1100: max_pixels = cli_max_pixels(&cli, optarg); break;
        case 'j': threads = cli_threads(&cli, optarg); break;
        case 'q': cli.quiet = 1; break;
        case 'h': usage();
        case 'V': cli_version(&cli);
        case O_HEAD: case 'C': case O_C: case O_L2: case O_MAXIT: case O_TOL: feature_opts = 1; break;
        default: cli_bad_option(&cli, argv, ch);
        }
    }
    if (optind != argc - 1)
        cli_usage_error(&cli, optind == argc ? "no training data given" : "one training data argument expected");
    const char *train = argv[optind];
    /* Without -m/--arch/--scratch, only a folder or IDX data says "images";
     * any other file goes to the feature path, whose errors name it. */
    int images = !strncmp(train, "idx:", 4) || is_dir(train) || model || arch || scratch;
    if (!images) {
        optind = 0;
        return features_main(argc, argv);
    }
    if (feature_opts)
        cli_usage_error(&cli, "--head, -C, --l2, --max-iter and --tol apply to feature files, not images");
    if (!out)
        cli_usage_error(&cli, "no output given (-o NET.safetensors)");
    if (!model && !arch)
        cli_usage_error(&cli, "training on images needs -m MODEL (fine-tuning) or --arch NAME --scratch");
    if (arch && !scratch)
        cli_usage_error(&cli, "--arch needs --scratch (a pretrained network comes from -m MODEL)");
    if (arch && model)
        cli_usage_error(&cli, "give -m MODEL or --arch NAME, not both");
    if (input_size && !arch)
        cli_usage_error(&cli, "--input-size applies with --arch (MODEL fixes its input size)");
    if (keep_head && (scratch || !model))
        cli_usage_error(&cli, "--keep-head needs a pretrained -m MODEL");
    if (val && val_split >= 0)
        cli_usage_error(&cli, "give --val or --val-split, not both");
    if (head_only && (freeze_until || unfreeze_every))
        cli_usage_error(&cli, "--head-only excludes --freeze-until and --unfreeze-every");
    if (patience && !val && val_split == 0)
        cli_usage_error(&cli, "--patience needs validation data (--val or --val-split > 0)");
    if (lr < 0)
        lr = kind == TL_OPT_ADAMW ? 1e-3 : 0.01;
    /* Lower rates protect pretrained layers; scratch layers have nothing to
     * protect. Without --lr-mult or --group-lrs a pretrained backbone spans
     * 0.1x (next to the head) to 0.01x (the earliest group) of the head's
     * rate, geometrically: the usual 10-100x range of discriminative
     * fine-tuning. A fixed 0.1 per group would leave the first groups of a
     * deep split at 1e-4x, frozen in all but name. */
    int lr_spread = lr_mult < 0 && !group_lrs && !scratch;
    if (lr_mult < 0)
        lr_mult = scratch ? 1.0 : 0.1;

    tl_err e;
    img_data td, vd;
    open_data(&cli, train, &td);
    if (td.nclasses < 2)
        cli_die(&cli, "%s: %d class%s; a classifier needs at least 2", train, td.nclasses, td.nclasses == 1 ? "" : "es");
    int64_t *tr_ids = NULL, *va_ids = NULL, ntr = 0, nva = 0;
    int has_vd = 0;
    if (val) {
        open_data(&cli, val, &vd);
        has_vd = 1;
        /* validation classes are matched to the training classes by name */
        int *map = calloc((size_t)vd.nclasses + 1, sizeof(int));
        for (int c = 0; c < vd.nclasses; c++) {
            map[c] = -1;
            for (int k = 0; k < td.nclasses; k++)
                if (!strcmp(vd.classes[c], td.classes[k]))
                    map[c] = k;
            if (map[c] < 0)
                cli_die(&cli, "%s: class '%s' is not in the training data", val, vd.classes[c]);
        }
        int64_t n = tl_source_count(&vd.src);
        for (int64_t i = 0; i < n; i++) {
            if (vd.is_idx)
                vd.idx.labels[i] = map[vd.idx.labels[i]];
            else
                vd.ds.items[i].label = map[vd.ds.items[i].label];
        }
        free(map);
        ntr = tl_source_count(&td.src);
        nva = n;
        tr_ids = malloc((size_t)ntr * sizeof(int64_t));
        va_ids = malloc((size_t)nva * sizeof(int64_t));
        for (int64_t i = 0; i < ntr; i++)
            tr_ids[i] = i;
        for (int64_t i = 0; i < nva; i++)
            va_ids[i] = i;
    } else if (tl_split_stratified(&td.src, val_split < 0 ? 0.2 : val_split, (uint64_t)seed, &tr_ids, &ntr, &va_ids,
                                   &nva, &e)) {
        cli_fail(&cli, &e);
    }
    if (ntr < 2)
        cli_die(&cli, "%s: %lld training images; need at least 2", train, (long long)ntr);

    /* ---- the network ---- */
    tl_net src = {0}, net = {0};
    tl_arch_opts ao;
    tl_preproc pp;
    const char *arch_name = arch;
    if (model) {
        if (tl_net_load(model, &src, &e))
            cli_fail(&cli, &e);
        ao = src.opts;
        pp = src.pp;
        arch_name = src.model->arch;
    } else {
        tl_arch_opts_default(&ao);
        tl_preproc_default(&pp);
        ao.input_size = pp.input_size = pp.resize_size = input_size ? input_size : 224;
    }
    ao.num_classes = td.nclasses;
    if (dropout >= 0)
        ao.dropout = (float)dropout;
    tl_model *m = tl_arch_build(arch_name, &ao, &e);
    if (!m)
        cli_fail(&cli, &e);
    if (scratch) {
        tl_model_init(m, (uint64_t)seed);
    } else {
        const tl_node *head = &m->nodes[m->logits_node];
        int new_head = 0;
        for (int i = 0; i < m->nparams; i++) {
            tl_param *p = &m->params[i];
            int in_head = i == head->weight || i == head->bias;
            int j = tl_model_find_param(src.model, p->name);
            if (in_head && (!keep_head || j < 0 || src.model->params[j].numel != p->numel)) {
                new_head = 1;
                continue;
            }
            if (j < 0 || src.model->params[j].numel != p->numel)
                cli_die(&cli, "%s: parameter '%s' is missing or has another size", model, p->name);
            memcpy(p->data, src.model->params[j].data, (size_t)p->numel * sizeof(float));
        }
        if (new_head)
            tl_model_init_node(m, m->logits_node, (uint64_t)seed);
        else if (keep_head)
            cli_log(&cli, "keeping the classifier of %s", model);
    }
    /* A TFLite import has its batch norm folded into the convolutions: its
     * statistics are unknown, and batch statistics would rescale every
     * channel the folded weights expect. Keep BN in inference mode. */
    if (!scratch && !freeze_bn && tl_model_bn_folded(m)) {
        freeze_bn = 1;
        cli_log(&cli, "%s has its batch norm folded into the convolutions (a TFLite import): batch norm runs on "
                      "its stored statistics (--freeze-bn)", model);
    }
    m->freeze_bn = freeze_bn;
    net.model = m;
    net.pp = pp;
    net.opts = ao;
    net.classes = td.classes;
    net.nclasses = td.nclasses;
    net.meta_keys = src.meta_keys;
    net.meta_values = src.meta_values;
    net.nmeta = src.nmeta;

    /* ---- the trainer ---- */
    int64_t steps_per_epoch = ntr / batch + (ntr % batch > 1);
    tl_trainer_opts to;
    tl_trainer_opts_default(&to);
    tl_opt_config_default(&to.opt, kind);
    if (momentum >= 0)
        to.opt.momentum = momentum;
    if (wd >= 0)
        to.opt.weight_decay = wd;
    to.batch = batch;
    to.nthreads = threads;
    to.lr = lr;
    to.lr_mult = lr_mult;
    to.group_lrs = group_lrs;
    to.parts = groups;
    to.label_smoothing = (float)ls;
    to.clip_norm = clip;
    char sched_buf[64];
    if (!sched_spec) {
        snprintf(sched_buf, sizeof sched_buf, "cosine:warmup=%lld", (long long)(steps_per_epoch * epochs / 20));
        sched_spec = sched_buf;
    }
    to.sched.total_steps = steps_per_epoch * epochs;
    if (tl_schedule_parse(sched_spec, &to.sched, &e) || tl_schedule_check(&to.sched, &e))
        cli_usage_error(&cli, "--schedule: %s", e.msg);
    tl_pool *pool = tl_pool_new(threads, &e);
    if (!pool)
        cli_fail(&cli, &e);
    /* Freeze before the trainer exists: gradient buffers are then made only
     * for the layers that train. */
    int ngroups = tl_model_assign_groups(m, groups);
    char spread_lrs[64 * 20];
    if (lr_spread && ngroups >= 2 && ngroups <= 64) {
        size_t used = 0;
        int nb = ngroups - 1; /* backbone groups */
        for (int g = 0; g < nb; g++) {
            double depth = nb > 1 ? (double)(nb - 1 - g) / (double)(nb - 1) : 0.0;
            used += (size_t)snprintf(spread_lrs + used, sizeof spread_lrs - used, "%.9g,", lr * 0.1 * pow(0.1, depth));
        }
        snprintf(spread_lrs + used, sizeof spread_lrs - used, "%.9g", lr);
        group_lrs = spread_lrs;
        to.group_lrs = group_lrs;
    }
    unsigned char *mask = calloc((size_t)m->nparams + 1, 1);
    if (ngroups < 1 || !mask)
        cli_die(&cli, "out of memory");
    if (freeze_until) {
        int node = tl_model_find_node(m, freeze_until);
        if (node < 0)
            cli_usage_error(&cli, "--freeze-until: no layer '%s' in %s (tl-info lists the layers)", freeze_until,
                            arch_name);
        if (node >= m->logits_node)
            cli_usage_error(&cli, "--freeze-until %s would freeze the classifier", freeze_until);
        tl_freeze_mask_until(m, node, mask);
    }
    if (head_only)
        for (int i = 0; i < m->nparams; i++)
            mask[i] = m->params[i].group != ngroups - 1;
    for (int i = 0; i < m->nparams; i++)
        m->params[i].frozen = mask[i] || (unfreeze_every > 0 && m->params[i].group < ngroups - 1);
    tl_trainer *t = tl_trainer_new(m, &to, &e);
    if (!t)
        cli_fail(&cli, &e);

    /* ---- data loading ---- */
    tl_aug_pipeline *aug = NULL;
    if (aug_spec) {
        tl_aug_opts aopts = {pp.input_size, pp.resize_size};
        if (!(aug = tl_aug_parse(aug_spec, &aopts, &e)))
            cli_usage_error(&cli, "--augment: %s", e.msg);
    }
    tl_batch_loader *tl_ = tl_batch_loader_new(&td.src, &pp, aug, threads, &e);
    tl_batch_loader *vl = tl_ ? tl_batch_loader_new(has_vd ? &vd.src : &td.src, &pp, NULL, threads, &e) : NULL;
    if (!vl)
        cli_fail(&cli, &e);
    tl_batch_loader_set_max_pixels(tl_, max_pixels);
    tl_batch_loader_set_max_pixels(vl, max_pixels);

    /* ---- provenance ---- */
    char resume_path[4096], ncls[16], lr_s[32], seed_s[32], ep_s[16], batch_s[16], ls_s[32], wd_s[32], mult_s[32];
    char dropout_s[32], uf_s[16], freeze_s[256];
    size_t olen = strlen(out);
    if (olen > 12 && !strcmp(out + olen - 12, ".safetensors"))
        olen -= 12;
    snprintf(resume_path, sizeof resume_path, "%.*s.resume.safetensors", (int)olen, out);
    tl_strbuf cls = {0};
    tl_strbuf_add(&cls, "[", 1);
    for (int c = 0; c < td.nclasses; c++) {
        if (c)
            tl_strbuf_add(&cls, ", ", 2);
        tl_strbuf_json_string(&cls, td.classes[c]);
    }
    tl_strbuf_add(&cls, "]", 1);
    char mean[96], std[96], isz[16], rsz[16];
    static const char *const interp[] = {"bilinear", "bicubic", "nearest"};
    snprintf(mean, sizeof mean, "[%.9g, %.9g, %.9g]", (double)pp.mean[0], (double)pp.mean[1], (double)pp.mean[2]);
    snprintf(std, sizeof std, "[%.9g, %.9g, %.9g]", (double)pp.std[0], (double)pp.std[1], (double)pp.std[2]);
    snprintf(isz, sizeof isz, "%d", pp.input_size);
    snprintf(rsz, sizeof rsz, "%d", pp.resize_size);
    snprintf(ncls, sizeof ncls, "%d", td.nclasses);
    snprintf(lr_s, sizeof lr_s, "%.9g", lr);
    snprintf(seed_s, sizeof seed_s, "%lld", seed);
    snprintf(ep_s, sizeof ep_s, "%d", epochs);
    snprintf(batch_s, sizeof batch_s, "%d", batch);
    snprintf(ls_s, sizeof ls_s, "%.9g", ls);
    snprintf(wd_s, sizeof wd_s, "%.9g", to.opt.weight_decay);
    snprintf(mult_s, sizeof mult_s, "%.9g", lr_mult);
    snprintf(dropout_s, sizeof dropout_s, "%.9g", (double)tl_arch_dropout(&ao, ao.dropout));
    snprintf(uf_s, sizeof uf_s, "%d", unfreeze_every);
    snprintf(freeze_s, sizeof freeze_s, "%s%s%s%s", head_only ? "head-only" : freeze_until ? "until:" : "none",
             freeze_until ? freeze_until : "", freeze_bn ? ",bn" : "", "");
    char from[4200];
    snprintf(from, sizeof from, "%s%s", scratch ? "scratch:" : "", model ? model : arch);
    const char *meta[] = {"tl.format", "1", "tl.arch", arch_name, "tl.num_classes", ncls, "tl.classes", cls.s,
                          "tl.input_size", isz, "tl.resize_size", rsz, "tl.mean", mean, "tl.std", std,
                          "tl.channel_order", pp.bgr ? "BGR" : "RGB", "tl.interpolation", interp[pp.interp],
                          "tl.trained_from", from, "tl.train_data", train, "tl.val_data",
                          val ? val : "split", "tl.epochs", ep_s, "tl.batch", batch_s, "tl.lr", lr_s,
                          "tl.lr_mult", group_lrs ? group_lrs : mult_s, "tl.optimizer",
                          kind == TL_OPT_ADAMW ? "adamw" : "sgd", "tl.weight_decay", wd_s, "tl.label_smoothing", ls_s,
                          "tl.schedule", sched_spec, "tl.seed", seed_s, "tl.augment", aug_spec ? aug_spec : "none",
                          "tl.freeze", freeze_s, "tl.unfreeze_every", uf_s, "tl.dropout", dropout_s, NULL};

    reporter R = {&cli, NULL, 0, 0, 0, 0, nva > 0};
    if (log_path && !(R.log = fopen(log_path, resume ? "a" : "w")))
        cli_die(&cli, "%s: cannot open the log", log_path);
    if (R.log && !resume) {
        int64_t nparams = 0, ntrainable = 0;
        for (int i = 0; i < m->nparams; i++) {
            nparams += m->params[i].numel;
            ntrainable += m->params[i].frozen ? 0 : m->params[i].numel;
        }
        char strategy[300];
        if (head_only)
            snprintf(strategy, sizeof strategy, "head-only");
        else if (unfreeze_every)
            snprintf(strategy, sizeof strategy, "progressive (every %d)", unfreeze_every);
        else if (freeze_until)
            snprintf(strategy, sizeof strategy, "partial (%.250s)", freeze_until);
        else
            snprintf(strategy, sizeof strategy, "full");
        fprintf(R.log, "{\"phase\":\"start\"");
        cli_json_str(R.log, "run", run_name ? run_name : out);
        cli_json_str(R.log, "tool", "tl-finetune");
        cli_json_str(R.log, "init", scratch ? "scratch" : "pretrained");
        cli_json_str(R.log, "model", model ? model : arch);
        cli_json_str(R.log, "arch", arch_name);
        cli_json_str(R.log, "strategy", strategy);
        cli_json_str(R.log, "train", train);
        cli_json_str(R.log, "val", val ? val : "split");
        cli_json_str(R.log, "augment", aug_spec ? aug_spec : "none");
        cli_json_str(R.log, "optimizer", kind == TL_OPT_ADAMW ? "adamw" : "sgd");
        cli_json_num(R.log, "lr", lr);
        fprintf(R.log, ",\"train_images\":%lld,\"val_images\":%lld,\"classes\":%d,\"epochs\":%d,\"batch\":%d,"
                       "\"seed\":%lld,\"threads\":%d,\"params\":%lld,\"trainable_params\":%lld}\n",
                (long long)ntr, (long long)nva, td.nclasses, epochs, batch, seed, threads, (long long)nparams,
                (long long)ntrainable);
        fflush(R.log);
    }
    if (!cli.quiet)
        cli_progress_enable(&cli, force_progress);
    tl_fit_opts fo = {0};
    fo.epochs = epochs;
    fo.batch = batch;
    fo.seed = (uint64_t)seed;
    fo.unfreeze_every = unfreeze_every;
    fo.patience = patience;
    fo.frozen = mask;
    fo.out = out;
    /* A device output (e.g. -o /dev/null for a dry run) gets no resume
     * state: "/dev/null.resume.safetensors" would be created in /dev. */
    int device_out = is_device(out);
    if (device_out && resume)
        cli_usage_error(&cli, "--resume needs a file output, not %s", out);
    fo.resume_path = device_out ? NULL : resume_path;
    fo.resume = resume;
    fo.meta = meta;
    fo.stop = &g_stop;
    fo.report = report;
    fo.progress = cli.quiet || !cli.progress ? NULL : progress;
    fo.user = &R;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    /* Restart interrupted reads and writes: the loop notices the flag
     * between batches; a write cut by EINTR would fail the checkpoint. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    cli_log(&cli, "%s%s: %lld training images, %lld validation, %d classes, %d groups, %lld steps", scratch ? "scratch " : "",
            arch_name, (long long)ntr, (long long)nva, td.nclasses, t->ngroups,
            (long long)to.sched.total_steps);
    tl_fit_result res;
    double t0 = tl_now();
    int rc = tl_fit(&net, t, tl_, tr_ids, ntr, nva ? vl : NULL, va_ids, nva, pool, &fo, &res, &e);
    cli_progress_end(&cli);
    if (rc < 0) {
        if (R.log)
            fclose(R.log);
        cli_die(&cli, "%s; %s", e.msg, is_regular(out) ? "the best checkpoint so far is intact" :
                                                          "no checkpoint was written");
    }
    if (rc == TL_FIT_INTERRUPTED) {
        if (R.log)
            fclose(R.log);
        if (device_out)
            fprintf(stderr, "tl-finetune: interrupted; no resume state for a device output\n");
        else
            fprintf(stderr, "tl-finetune: interrupted; state saved to %s (continue with --resume)%s%s\n",
                    resume_path, is_regular(out) ? "; best checkpoint so far: " : "", is_regular(out) ? out : "");
        R.log = NULL;
    }
    if (rc != TL_FIT_INTERRUPTED && R.log) {
        fprintf(R.log, "{\"phase\":\"best\",\"epoch\":%d", res.best_epoch);
        cli_json_num(R.log, "loss", res.best_epoch ? res.best_loss : NAN);
        cli_json_num(R.log, "accuracy", res.best_epoch ? res.best_accuracy : NAN);
        fprintf(R.log, ",\"epochs_run\":%d,\"stopped_early\":%s,\"seconds\":%.3f}\n", res.epochs_run,
                res.stopped_early ? "true" : "false", tl_now() - t0);
        fclose(R.log);
    }
    if (rc != TL_FIT_INTERRUPTED && res.best_epoch)
        cli_log(&cli, "best: epoch %d, val accuracy %.4f, loss %.4f%s; wrote %s (%.1f s)", res.best_epoch,
                res.best_accuracy, res.best_loss, res.stopped_early ? " (stopped early)" : "", out, tl_now() - t0);
    else if (rc != TL_FIT_INTERRUPTED)
        cli_log(&cli, "wrote %s after %d epochs (%.1f s)", out, res.epochs_run, tl_now() - t0);
    tl_strbuf_free(&cls);
    tl_batch_loader_free(tl_);
    tl_batch_loader_free(vl);
    tl_aug_free(aug);
    tl_trainer_free(t);
    tl_pool_free(pool);
    free(mask);
    free(tr_ids);
    free(va_ids);
    net.classes = NULL;
    net.meta_keys = net.meta_values = NULL;
    net.nmeta = 0;
    net.model = NULL;
    tl_model_free(m);
    tl_net_free(&src);
    if (has_vd)
        free_data(&vd);
    free_data(&td);
    /* Everything is released on an interrupt too, so leak checkers stay
     * quiet and the exit status is the one chosen here. */
    return rc == TL_FIT_INTERRUPTED ? 130 : 0;
}

int main(int argc, char **argv) { return images_main(argc, argv); }
