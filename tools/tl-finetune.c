/* tl-finetune: train a classifier. On feature vectors (from tl-extract): a
 * linear head (finetune/head.c over lib/train/head_fit.h). On images: the
 * network itself, fine-tuned or from scratch (finetune/network.c over
 * lib/train/finetune.h). This file holds the option table and the rules
 * on which options go together. */
#include "finetune/finetune_cli.h"
#include "report/plot.h"
#include "train/neighbours.h"
#include "train/sampler.h"

#include <string.h>
#include <sys/stat.h>

#define G_FEATURES "Linear head (feature vectors)"
#define G_NET "The network (images)"
#define G_FREEZE "What trains (images)"
#define G_RATES "Learning rates and optimiser (images)"
#define G_RUN "The run (images)"

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static const cli_choice heads[] = {{"logreg", TL_HEAD_LOGREG}, {"svm", TL_HEAD_SVM}, {"knn", TL_HEAD_KNN},
                                   {"ncm", TL_HEAD_NCM}, {NULL, 0}};
static const cli_choice metrics[] = {{"cosine", TL_METRIC_COSINE}, {"euclidean", TL_METRIC_EUCLIDEAN}, {NULL, 0}};
static const cli_choice resize_modes[] = {
    {"crop", TL_RESIZE_CROP}, {"squash", TL_RESIZE_SQUASH}, {"pad", TL_RESIZE_PAD}, {NULL, 0}};
static const cli_choice optimizers[] = {{"sgd", TL_OPT_SGD}, {"adamw", TL_OPT_ADAMW}, {NULL, 0}};
static const cli_choice samplers[] = {{"shuffle", TL_SAMPLER_SHUFFLE}, {"balanced", TL_SAMPLER_BALANCED}, {NULL, 0}};

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-finetune");
    tl_finetune_opts fo;
    tl_finetune_opts_default(&fo);
    tl_linear_opts lo;
    tl_linear_opts_default(&lo);
    double l2 = -1, mpi_timeout = 600;
    const char *run_name = NULL, *class_weights = NULL;
    int multilabel = 0, metric = TL_METRIC_COSINE, neighbours = 0, force = 0;
    cli_nums rates = {0};
    int input_size[2] = {0, 0};
    const char *find_lr = NULL;
    int find_lr_steps = 100;
    const cli_opt opts[] = {
        {.type = CLI_COMMON, .common = CLI_O_OUTPUT, .target = &fo.out,
         .help = "the checkpoint to write: a head, or the network"},
        OPT_FILE(0, "val", &fo.val, "DATA", "validation data: features, or images for a network"),
        OPT_COMMON_HELP(CLI_O_LOG, "JSON lines for tl-compare: the settings, then each epoch"),
        OPT_STRING(0, "name", &run_name, "NAME", "the run's name in the log (default: the output file)"),
        OPT_FLAG(0, "multi-label", &multilabel, "several labels per image (path<TAB>a,b): sigmoid\n"
                                                 "outputs, per-class thresholds (features say so)"),
        OPT_STRING(0, "class-weights", &class_weights, "auto|FILE", "weigh each class's loss: auto = balanced\n"
                                                                     "(n / (classes * n_c)), or CLASS<TAB>WEIGHT lines"),
        OPT_FILE(0, "unlabelled", &fo.unlabelled, "DATA", "self-training: unlabelled features (a head) or images\n"
                                                          "(a network) join with their confident predictions"),
        OPT_DOUBLE(0, "pseudo-threshold", &fo.pseudo.threshold, 0, 1, "P",
                   "confidence a pseudo-label needs, relative to the\nmost the loss asks for (default 0.9)"),
        OPT_GROUP(G_FEATURES),
        OPT_ENUM(0, "head", &lo.kind, heads, "logreg: logistic regression (L-BFGS, default); svm:\n"
                                             "one-vs-rest linear SVM; knn: k nearest neighbours;\n"
                                             "ncm: nearest class mean (knn, ncm: few-shot data)"),
        OPT_ENUM(0, "metric", &metric, metrics, "knn, ncm: cosine (default) or euclidean"),
        OPT_INT(0, "neighbours", &neighbours, 1, 1000000, "K", "knn: votes per decision (default 5, at most the\n"
                                                                "smallest class's size)"),
        OPT_DOUBLE('C', "C", &lo.C, 1e-12, 1e12, "C", "inverse L2 strength, as scikit-learn (default 1)"),
        OPT_DOUBLE(0, "l2", &l2, 1e-15, 1e12, "LAMBDA", "or a penalty on the mean loss: C = 1/(LAMBDA*n)"),
        OPT_INT(0, "max-iter", &lo.max_iter, 1, 10000000, "N", "iteration limit (default 1000)"),
        OPT_DOUBLE(0, "tol", &lo.tol, 1e-15, 1e3, "T", "stopping tolerance (default: 1e-5 logreg, 0.1 svm)"),
        OPT_INT(0, "pseudo-rounds", &fo.pseudo.rounds, 1, 1000, "R",
                "with --unlabelled: refits; round r takes r/R of each\nclass's predictions (default 5)"),
        OPT_FLAG(0, "force", &force, "take --val or --unlabelled features of another\n"
                                     "backbone, layer or preprocessing than the training's"),
        OPT_GROUP(G_NET),
        {.type = CLI_COMMON, .common = CLI_O_MODEL, .target = &fo.model,
         .help = "pretrained checkpoint; its classifier is replaced"},
        OPT_STRING(0, "arch", &fo.arch, "NAME", "with --scratch: a zoo architecture (tl-info --archs)"),
        OPT_FLAG(0, "scratch", &fo.scratch, "initialise every weight as torchvision does"),
        OPT_WXH(0, "input-size", input_size, 8, 4096, "WxH",
                "the network's input, N or WxH (default: MODEL's;\nwith --arch 224)"),
        OPT_ENUM(0, "resize-mode", &fo.resize_mode, resize_modes,
                 "how images become WxH (default: MODEL's;\nwith --arch squash)"),
        OPT_FLAG(0, "keep-head", &fo.keep_head, "keep MODEL's classifier when its size fits"),
        OPT_DOUBLE(0, "dropout", &fo.dropout, 0, 0.99, "P", "before the classifier (default: the architecture's)"),
        OPT_GROUP(G_FREEZE),
        OPT_STRING(0, "freeze-until", &fo.freeze_until, "LAYER", "freeze LAYER and every layer before it"),
        OPT_FLAG(0, "head-only", &fo.head_only, "train only the classifier"),
        OPT_FLAG(0, "freeze-bn", &fo.freeze_bn, "every batch norm uses its running statistics"),
        OPT_INT(0, "unfreeze-every", &fo.unfreeze_every, 1, 100000, "K",
                "start with the head, thaw one group every K epochs"),
        OPT_INT(0, "groups", &fo.groups, 1, 64, "N", "backbone groups (default 4)"),
        OPT_GROUP(G_RATES),
        OPT_DOUBLE(0, "lr", &fo.lr, 0, 100, "LR", "the head's learning rate (default 0.01 SGD, 1e-3 AdamW)"),
        OPT_DOUBLE(0, "lr-mult", &fo.lr_mult, 1e-9, 100, "M", "each earlier group: M times the next (default:\n"
                                                             "0.1x to 0.01x of the head's rate; 1 with --scratch)"),
        OPT_NUMS(0, "group-lrs", &rates, 1, 64, 0, 100, "A,B,..", "every group's rate, the earliest first"),
        OPT_ENUM(0, "optimizer", &fo.optimizer, optimizers, "SGD with momentum 0.9 (default) or AdamW"),
        OPT_DOUBLE(0, "momentum", &fo.momentum, 0, 0.999999, "M", "SGD momentum (default 0.9)"),
        OPT_DOUBLE(0, "weight-decay", &fo.weight_decay, 0, 10, "W", "default 1e-4 (SGD), 0.01 (AdamW)"),
        OPT_DOUBLE(0, "label-smoothing", &fo.label_smoothing, 0, 0.99, "S", "default 0.1"),
        OPT_DOUBLE(0, "clip-norm", &fo.clip_norm, 0, 1e9, "N", "clip the gradient norm (default off)"),
        OPT_STRING(0, "schedule", &fo.schedule, "SPEC", "default cosine with a 5% warm-up"),
        OPT_FILE(0, "find-lr", &find_lr, "PLOT", "instead of training: the learning-rate range test\n"
                                                 "(fastai's), its curve to PLOT (.svg/.png), a rate"),
        OPT_INT(0, "find-lr-steps", &find_lr_steps, 10, 100000, "N", "steps of the range test (default 100)"),
        OPT_GROUP(G_RUN),
        OPT_INT(0, "epochs", &fo.epochs, 1, 100000, "N", "passes over the training data (default 10)"),
        {.type = CLI_COMMON, .common = CLI_O_BATCH, .target = &fo.batch, .help = "images per step, 2 or more (default 32)"},
        {.type = CLI_COMMON, .common = CLI_O_SEED, .target = &fo.seed, .help = "seed of every random choice (default 1)"},
        OPT_STRING('a', "augment", &fo.augment, "SPEC", "augmentation spec or policy (default none)"),
        OPT_DOUBLE(0, "val-split", &fo.val_split, 0, 0.9, "F", "without --val: hold out F of each class (default 0.2)"),
        OPT_INT(0, "patience", &fo.patience, 1, 100000, "N", "stop after N epochs without improvement"),
        OPT_ENUM(0, "sampler", &fo.sampler, samplers, "shuffle (default): each image once per epoch;\n"
                                                      "balanced: every class as often, with replacement"),
        OPT_INT(0, "pseudo-ramp", &fo.pseudo.ramp, 1, 100000, "N",
                "with --unlabelled: epochs over which the share of\npseudo-labels grows to all (default: half)"),
        OPT_FLAG(0, "resume", &fo.resume, "continue from OUT.resume.safetensors"),
        OPT_INT(0, "accumulate", &fo.accumulate, 1, 100000, "K",
                "sum the gradients of K batches per step (a step of\nK x --batch images; default 1)"),
        OPT_FLAG(0, "sync-bn", &fo.sync_bn, "several processes: batch-norm statistics over every\n"
                                           "process's images (default: each process's own)"),
        OPT_DOUBLE(0, "mpi-timeout", &mpi_timeout, 1, 1e7, "S",
                   "under mpirun/srun: give up when the other processes\nare silent for S seconds (default 600)"),
        {.type = CLI_COMMON, .common = CLI_O_MAX_PIXELS, .target = &fo.max_pixels},
        OPT_COMMON(CLI_O_EXACT),
        OPT_COMMON(CLI_O_PROGRESS),
        OPT_GROUP("Common options"),
        OPT_COMMON(CLI_O_THREADS),
        OPT_COMMON(CLI_O_QUIET),
        OPT_END(),
    };
    const cli_tool tool = {
        .usage = "[options] FEATURES -o HEAD.safetensors\n"
                 "-m MODEL [options] IMAGES -o NET.safetensors\n"
                 "--scratch --arch NAME [options] IMAGES -o NET.safetensors",
        .about = "Train a classifier.\n"
                 "\n"
                 "On feature vectors from tl-extract (.tlf, .tsv or .npy; '-' reads standard\n"
                 "input): a linear head. Features are standardised internally and the\n"
                 "standardisation is folded into the saved weights.\n"
                 "\n"
                 "On images: fine-tune a pretrained network (-m MODEL) or train one from\n"
                 "scratch (--scratch). IMAGES is a class-folder tree, a manifest, '-' (a\n"
                 "manifest on standard input, with -m or --arch), or IDX files: idx:PREFIX\n"
                 "(PREFIX-images-idx3-ubyte[.gz], PREFIX-labels-idx1-ubyte[.gz]) or\n"
                 "idx:IMAGES,LABELS; grey IDX images are expanded to RGB.\n",
        .opts = opts,
        .example = "tl-finetune train.tlf --val val.tlf -o head.safetensors\n"
                   "tl-finetune -m mobilenet_v2 --freeze-until features.13 --augment natural \\\n"
                   "            --val data/val --log run.jsonl -o tuned.safetensors data/train\n"
                   "tl-finetune --scratch --arch small_cnn --input-size 28 --optimizer adamw \\\n"
                   "            -o fmnist.safetensors idx:/usr/share/datasets/fashion-mnist/train",
        .min_args = 1, .max_args = 1, .args_name = "training data",
    };
    int first = cli_parse(&cli, &tool, argc, argv);
    if (!fo.unlabelled) {
        const char *pseudo[] = {"pseudo-threshold", "pseudo-rounds", "pseudo-ramp"};
        for (int i = 0; i < 3; i++)
            if (cli_given(&cli, pseudo[i]))
                cli_usage_error(&cli, "--%s applies with --unlabelled", pseudo[i]);
    }
    if (fo.unlabelled && lo.kind == TL_HEAD_SVM)
        cli_usage_error(&cli, "--unlabelled: pseudo-labels need a logistic-regression head (an SVM's decision "
                              "values are no confidence)");
    if (fo.unlabelled && find_lr)
        cli_usage_error(&cli, "--find-lr runs on the labelled images only: leave out --unlabelled");
    if (!fo.out && !find_lr)
        cli_usage_error(&cli, "no output given (-o FILE)");
    tl_err pe;
    if (find_lr && tl_plot_path_check(find_lr, &pe))
        cli_usage_error(&cli, "--find-lr: %s", pe.msg);
    if (find_lr && fo.out)
        cli_usage_error(&cli, "--find-lr writes no checkpoint: leave out -o");
    if (find_lr && fo.resume)
        cli_usage_error(&cli, "--find-lr excludes --resume");
    if (cli_given(&cli, "find-lr-steps") && !find_lr)
        cli_usage_error(&cli, "--find-lr-steps applies to --find-lr");
    if (find_lr)
        fo.out = "/dev/null"; /* a device: no resume state, nothing written */
    const char *train = argv[first];
    fo.train = train;
    /* Without -m/--arch/--scratch, only a folder or IDX data says "images";
     * any other file is read as features, whose errors name it. */
    int images = !strncmp(train, "idx:", 4) || is_dir(train) || fo.model || fo.arch || fo.scratch;
    if (!images) {
        const char *o = cli_given_in_group(&cli, G_NET);
        o = o ? o : cli_given_in_group(&cli, G_FREEZE);
        o = o ? o : cli_given_in_group(&cli, G_RATES);
        o = o ? o : cli_given_in_group(&cli, G_RUN);
        if (o)
            cli_usage_error(&cli, "--%s applies to training a network on images (give -m MODEL or --scratch)", o);
        if (cli_given(&cli, "C") && l2 > 0)
            cli_usage_error(&cli, "give --C or --l2, not both");
        int nprocs, rank;
        tl_comm_launched(&nprocs, &rank);
        if (nprocs > 1)
            cli_usage_error(&cli, "a linear head on features trains in one process; run it without mpirun (%d "
                                  "processes were started)",
                            nprocs);
        int proto = lo.kind == TL_HEAD_KNN || lo.kind == TL_HEAD_NCM;
        static const char *const linear_only[] = {"C", "l2", "max-iter", "tol", "class-weights", NULL};
        for (int i = 0; proto && linear_only[i]; i++)
            if (cli_given(&cli, linear_only[i]))
                cli_usage_error(&cli, "--%s applies to logreg and svm heads, not --head %s", linear_only[i],
                                lo.kind == TL_HEAD_KNN ? "knn" : "ncm");
        if (!proto && cli_given(&cli, "metric"))
            cli_usage_error(&cli, "--metric applies to --head knn and ncm");
        if (lo.kind != TL_HEAD_KNN && cli_given(&cli, "neighbours"))
            cli_usage_error(&cli, "--neighbours applies to --head knn");
        if (proto && fo.unlabelled)
            cli_usage_error(&cli, "--unlabelled: pseudo-labels need a logistic-regression head, not --head %s",
                            lo.kind == TL_HEAD_KNN ? "knn" : "ncm");
        ft_feature_run fr = {train, fo.val, fo.out,     run_name,      class_weights,
                          multilabel, l2, metric, neighbours, fo.unlabelled, fo.pseudo, force};
        return ft_head_main(&cli, &fr, &lo);
    }
    const char *o = cli_given_in_group(&cli, G_FEATURES);
    if (o)
        cli_usage_error(&cli, "--%s applies to a linear head on feature files, not to images", o);
    if (!fo.model && !fo.arch)
        cli_usage_error(&cli, "training on images needs -m MODEL (fine-tuning) or --arch NAME --scratch");
    if (fo.arch && !fo.scratch)
        cli_usage_error(&cli, "--arch needs --scratch (a pretrained network comes from -m MODEL)");
    if (fo.arch && fo.model)
        cli_usage_error(&cli, "give -m MODEL or --arch NAME, not both");
    fo.input_w = input_size[0];
    fo.input_h = input_size[1];
    if (fo.keep_head && (fo.scratch || !fo.model))
        cli_usage_error(&cli, "--keep-head needs a pretrained -m MODEL");
    if (fo.val && cli_given(&cli, "val-split"))
        cli_usage_error(&cli, "give --val or --val-split, not both");
    if (fo.head_only && (fo.freeze_until || fo.unfreeze_every))
        cli_usage_error(&cli, "--head-only excludes --freeze-until and --unfreeze-every");
    if (fo.patience && !fo.val && fo.val_split == 0)
        cli_usage_error(&cli, "--patience needs validation data (--val or --val-split > 0)");
    if (fo.batch < 2)
        cli_usage_error(&cli, "--batch: '%d': training needs at least 2 images per batch", fo.batch);
    fo.threads = cli.threads;
    fo.exact = cli.exact;
    fo.multilabel = multilabel;
    int nprocs, rank;
    tl_comm_launched(&nprocs, &rank);
    if ((multilabel || fo.sampler == TL_SAMPLER_BALANCED) && (fo.accumulate > 1 || nprocs > 1))
        cli_usage_error(&cli, "%s: not yet with --accumulate or several processes",
                        multilabel ? "--multi-label" : "--sampler balanced");
    /* Pseudo-labels are chosen by each process from its own network and
     * the range test steps alone: neither is wired into data parallelism. */
    if ((fo.unlabelled || find_lr) && nprocs > 1)
        cli_usage_error(&cli, "%s: not yet with several processes; run it without mpirun/srun",
                        find_lr ? "--find-lr" : "--unlabelled");
    if (fo.unlabelled && (multilabel || fo.sampler == TL_SAMPLER_BALANCED))
        cli_usage_error(&cli, "--unlabelled: pseudo-labels are single labels drawn in shuffled epochs: leave out %s",
                        multilabel ? "--multi-label" : "--sampler balanced");
    if (find_lr && (multilabel || fo.sampler == TL_SAMPLER_BALANCED || fo.accumulate > 1))
        cli_usage_error(&cli, "--find-lr: the range test takes one shuffled single-label batch a step: leave out %s",
                        multilabel ? "--multi-label" : fo.accumulate > 1 ? "--accumulate" : "--sampler balanced");
    fo.class_weights = class_weights;
    fo.group_lrs = rates.n ? rates.v : NULL;
    fo.ngroup_lrs = rates.n;
    return ft_network_main(&cli, &fo, run_name, mpi_timeout, find_lr, find_lr_steps);
}