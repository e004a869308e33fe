/* tl-finetune: train a classifier. On feature vectors (from tl-extract): a
 * linear head (lib/train/head_fit.h). On images: the network itself,
 * fine-tuned or from scratch (lib/train/finetune.h). This file reads the
 * options, says what happens and writes the log. */
#include "common.h"
#include "report/lr_find_report.h"
#include "report/plot.h"
#include "report/train_log.h"
#include "train/head_fit.h"
#include "train/neighbours.h"
#include "train/sampler.h"
#include "train/pseudo.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define G_FEATURES "Linear head (feature vectors)"
#define G_NET "The network (images)"
#define G_FREEZE "What trains (images)"
#define G_RATES "Learning rates and optimiser (images)"
#define G_RUN "The run (images)"

static volatile sig_atomic_t g_stop;

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

/* ---------------- a linear head on feature vectors ---------------- */

typedef struct feature_run {
    const char *train, *val, *out, *run_name, *class_weights;
    int multilabel;           /* --multi-label given: the features must be multi-label */
    double l2;
    int metric, neighbours;   /* --head knn|ncm */
    const char *unlabelled;   /* --unlabelled: self-training on these features */
    tl_pseudo_opts pseudo;
    int force;                /* --force: --val or --unlabelled features of another origin */
} feature_run;

static void pseudo_report(void *user, const tl_pseudo_round *r)
{
    tl_cli *cli = user;
    char val[64] = "", known[96] = "";
    if (!isnan(r->val_accuracy))
        snprintf(val, sizeof val, ", validation accuracy %.4f", r->val_accuracy);
    if (r->known)
        snprintf(known, sizeof known, "; %lld of %lld right where the file has labels", (long long)r->right,
                 (long long)r->known);
    if (r->round == 0)
        cli_log(cli, "self-training round 0 (labelled only): training accuracy %.4f%s", r->train_accuracy, val);
    else
        cli_log(cli, "self-training round %d/%d: %lld of %lld unlabelled vectors joined (up to %.0f%% of each "
                     "class's predictions)%s%s",
                r->round, r->rounds, (long long)r->admitted, (long long)r->total, 100 * r->frac, known, val);
}

/* --head knn|ncm: stored vectors, nothing optimised. */
static int prototype_main(tl_cli *cli, const feature_run *fr, int kind, FILE *log, tl_featset *s)
{
    tl_err e;
    const char *name = kind == TL_HEAD_KNN ? "knn" : "ncm";
    if (s->info.multilabel)
        cli_die(cli, "%s: --head %s takes single-label features", fr->train, name);
    double t0 = tl_now();
    tl_head h = {0};
    if (tl_proto_fit(s->X, s->y, s->n, s->info.dim, s->info.nclasses, kind, fr->metric, fr->neighbours, &h.proto,
                     &e))
        cli_fail(cli, &e);
    double secs = tl_now() - t0;
    h.lin.kind = kind;
    h.lin.d = s->info.dim;
    h.lin.k = s->info.nclasses;
    const char *metric = fr->metric == TL_METRIC_EUCLIDEAN ? "Euclidean" : "cosine";
    if (kind == TL_HEAD_KNN)
        cli_log(cli, "%lld vectors of %d values, %d classes; %d nearest neighbours (%s), stored", (long long)s->n,
                s->info.dim, s->info.nclasses, h.proto.neighbours, metric);
    else
        cli_log(cli, "%lld vectors of %d values, %d classes; nearest class mean (%s)", (long long)s->n, s->info.dim,
                s->info.nclasses, metric);
    tl_head_score tr, vs = {0, 0, NAN, NAN};
    if (tl_head_score_outputs(&h, s, &tr, &e))
        cli_fail(cli, &e);
    cli_log(cli, "training accuracy %.4f (%lld/%lld)%s", tr.accuracy, (long long)tr.correct, (long long)tr.n,
            kind == TL_HEAD_KNN && h.proto.neighbours == 1 ? " (each vector is its own neighbour)" : "");
    if (fr->val) {
        tl_featset v;
        if (tl_head_val_data(fr->val, s, fr->force, &v, &e) || tl_head_score_outputs(&h, &v, &vs, &e))
            cli_fail(cli, &e);
        if (vs.n)
            cli_log(cli, "validation accuracy %.4f (%lld/%lld)", vs.accuracy, (long long)vs.correct, (long long)vs.n);
        tl_featset_free(&v);
    }
    tl_head_provenance pv = {fr->train, NAN, tr.accuracy, vs.accuracy, NULL, NULL, NULL, NULL};
    if (tl_head_save_trained_proto(&h.proto, s, &pv, fr->out, &e))
        cli_fail(cli, &e);
    cli_log(cli, "wrote %s", fr->out);
    if (log) {
        char strategy[32];
        snprintf(strategy, sizeof strategy, "features+%s", name);
        tl_head_run hr = {fr->run_name ? fr->run_name : fr->out, s->info.model, s->info.layer, strategy, fr->train,
                          fr->val, NULL, s->n, vs.n, (int64_t)h.proto.n * h.proto.d, s->info.nclasses, cli->threads,
                          secs, NAN, tr.accuracy, NAN, vs.accuracy};
        tl_train_log_head(log, &hr);
        if (fclose(log))
            cli_die(cli, "%s: cannot write the log", cli->log);
    }
    tl_head_free(&h);
    tl_featset_free(s);
    return 0;
}

static int features_main(tl_cli *cli, const feature_run *fr, const tl_linear_opts *lin)
{
    tl_linear_opts lo = *lin;
    const char *train = fr->train, *val = fr->val, *out = fr->out;
    /* Opened before the work so that a bad path fails in a second, not after training. */
    FILE *log = NULL;
    if (cli->log && !(log = fopen(cli->log, "w")))
        cli_die(cli, "%s: cannot open the log: %s", cli->log, strerror(errno));
    if (strcmp(train, "-") && access(train, R_OK) != 0)
        cli_die(cli, "%s: %s", train, strerror(errno));
    tl_err e;
    int sniffed = strcmp(train, "-") ? tl_feat_sniff_e(train, &e) : 1;
    if (sniffed < 0)
        cli_fail(cli, &e);
    if (!sniffed)
        cli_die(cli, "%s: not a feature file (to train the network on images, give -m MODEL or --scratch)", train);
    tl_featset s;
    if (tl_head_train_data(train, &s, &e))
        cli_fail(cli, &e);
    if (lo.kind == TL_HEAD_KNN || lo.kind == TL_HEAD_NCM)
        return prototype_main(cli, fr, lo.kind, log, &s);
    int ml = s.info.multilabel, k = s.info.nclasses;
    if (fr->multilabel && !ml)
        cli_die(cli, "%s: single-label features (extract multi-label data with tl-extract --multi-label)", train);
    if (fr->l2 > 0)
        lo.C = 1.0 / (fr->l2 * (double)s.n);
    double *cw = calloc((size_t)k * 3 + 1, sizeof(double));
    if (!cw)
        cli_die(cli, "out of memory");
    if (tl_head_class_weights(fr->class_weights, &s, &lo, cw, cw + k, cw + 2 * k, &e))
        cli_fail(cli, &e);
    tl_pool *pool = tl_pool_new(cli->threads, &e);
    if (!pool)
        cli_fail(cli, &e);
    cli_log(cli, "%lld vectors of %d values, %d %s; %s, C = %g%s%s", (long long)s.n, s.info.dim, k,
            ml ? "labels (multi-label, one-vs-rest)" : "classes",
            lo.kind == TL_HEAD_SVM ? "linear SVM" : "logistic regression", lo.C,
            fr->class_weights ? ", class weights " : "", fr->class_weights ? fr->class_weights : "");
    double t0 = tl_now();
    tl_linear_model m;
    tl_log_fn hook = cli->quiet ? NULL : cli_log_hook;
    char pseudo[600] = "";
    if (fr->unlabelled) {
        if (ml)
            cli_usage_error(cli, "--unlabelled: pseudo-labels are for single-label heads");
        tl_featset u, v, *vp = NULL;
        if (tl_pseudo_unlabelled_data(fr->unlabelled, &s, &u, &e))
            cli_fail(cli, &e);
        tl_feat_origin have = {u.info.model, u.info.layer, u.info.input},
                       want = {s.info.model, s.info.layer, s.info.input};
        if (!fr->force && tl_feat_origin_check(&have, &want, "the training data holds", &e)) {
            tl_fail_prefix(&e, "%s", fr->unlabelled);
            cli_fail(cli, &e);
        }
        if (val) {
            if (tl_head_val_data(val, &s, fr->force, &v, &e))
                cli_fail(cli, &e);
            vp = &v;
        }
        cli_log(cli, "self-training on %lld unlabelled vectors: %d rounds, confidence >= %g", (long long)u.n,
                fr->pseudo.rounds, fr->pseudo.threshold);
        if (tl_pseudo_head(&s, &u, vp, &lo, &fr->pseudo, pool, cli->quiet ? NULL : pseudo_report, cli, &m, &e))
            cli_fail(cli, &e);
        snprintf(pseudo, sizeof pseudo, "%s: %lld vectors, threshold %g, %d rounds", fr->unlabelled, (long long)u.n,
                 fr->pseudo.threshold, fr->pseudo.rounds);
        if (vp)
            tl_featset_free(&v);
        tl_featset_free(&u);
    } else if (ml ? tl_linear_train_multilabel(s.X, s.Y, s.n, s.info.dim, k, &lo, pool, hook, cli, &m, &e)
                  : tl_linear_train(s.X, s.y, s.n, s.info.dim, k, &lo, pool, hook, cli, &m, &e)) {
        cli_fail(cli, &e);
    }
    double secs = tl_now() - t0;
    tl_head_score tr, vs = {0, 0, NAN, NAN};
    if (tl_head_score_set(&m, &s, &tr, &e))
        cli_fail(cli, &e);
    const char *what = ml ? "mAP" : "accuracy";
    /* exact matches are counted before any threshold is chosen: say at which */
    char at[32] = "";
    if (ml)
        snprintf(at, sizeof at, " at %g", (double)tl_threshold_default(lo.kind == TL_HEAD_LOGREG));
    cli_log(cli, "trained in %.2f s: training %s %.4f (%s%lld/%lld%s)", secs, what, tr.accuracy,
            ml ? "exact " : "", (long long)tr.correct, (long long)tr.n, at);
    float *thr = ml ? calloc((size_t)k + 1, sizeof(float)) : NULL;
    const char *thr_from = "default";
    if (ml && !thr)
        cli_die(cli, "out of memory");
    for (int c = 0; ml && c < k; c++)
        thr[c] = tl_threshold_default(lo.kind == TL_HEAD_LOGREG);
    if (val) {
        tl_featset v;
        if (tl_head_val_data(val, &s, fr->force, &v, &e) || tl_head_score_set(&m, &v, &vs, &e))
            cli_fail(cli, &e);
        if (vs.n)
            cli_log(cli, "validation %s %.4f (%s%lld/%lld%s)", what, vs.accuracy, ml ? "exact " : "",
                    (long long)vs.correct, (long long)vs.n, at);
        int chosen = 0;
        if (ml && tl_head_thresholds(&m, &v, thr, &chosen, &e))
            cli_fail(cli, &e);
        if (ml) {
            cli_log(cli, "thresholds: the best F1 on the validation data for %d of %d classes%s", chosen, k,
                    chosen < k ? " (the rest have no positive there and keep the default)" : "");
            thr_from = "validation";
        }
        tl_featset_free(&v);
    } else if (ml) {
        cli_log(cli, "thresholds: %g for every class (give --val to choose each class's on validation data)",
                (double)tl_threshold_default(lo.kind == TL_HEAD_LOGREG));
    }
    tl_head_provenance pv = {train, lo.C, tr.accuracy, vs.accuracy, fr->class_weights, thr, thr_from,
                             pseudo[0] ? pseudo : NULL};
    cli_hold_signals(); /* no temporary file left by an interrupt */
    if (tl_head_save_trained(&m, &s, &pv, out, &e))
        cli_fail(cli, &e);
    cli_release_signals();
    cli_log(cli, "wrote %s", out);
    if (log) {
        tl_head_run h = {fr->run_name ? fr->run_name : out, s.info.model, s.info.layer,
                         lo.kind == TL_HEAD_SVM ? "features+svm" : "features+logreg", train, val, ml ? "mAP" : NULL,
                         s.n, vs.n, (int64_t)m.k * (m.d + 1), k, cli->threads, secs, tr.loss, tr.accuracy,
                         vs.loss, vs.accuracy};
        tl_train_log_head(log, &h);
        if (fclose(log))
            cli_die(cli, "%s: cannot write the log", cli->log);
    }
    free(thr);
    free(cw);
    tl_linear_model_free(&m);
    tl_featset_free(&s);
    tl_pool_free(pool);
    return 0;
}

/* ---------------- the network on images ---------------- */

typedef struct reporter {
    tl_cli *cli;
    FILE *log;
    double train_loss, train_acc, secs, ips;
    int has_val;
    char comm[96];   /* several processes: the allreduce of a step */
    const char *tacc, *vacc; /* what the accuracies are: "acc", or "exact" and "mAP" (multi-label) */
} reporter;

static void report(void *user, const tl_epoch_report *r)
{
    reporter *R = user;
    cli_progress_end(R->cli);
    if (R->log)
        tl_train_log_epoch(R->log, r);
    if (!strcmp(r->phase, "train")) {
        R->train_loss = r->loss;
        R->train_acc = r->accuracy;
        R->secs = r->seconds;
        R->ips = r->images_per_s;
        R->comm[0] = '\0';
        if (r->processes > 1)
            snprintf(R->comm, sizeof R->comm, "  allreduce %.1f MB %.1f ms/step", r->comm_bytes / 1e6,
                     r->comm_seconds * 1e3);
        if (!R->has_val)
            cli_log(R->cli, "epoch %d/%d  train loss %.3f %s %.3f  %.1f s  %.0f img/s%s", r->epoch, r->epochs, r->loss,
                    R->tacc, r->accuracy, r->seconds, r->images_per_s, R->comm);
    } else {
        cli_log(R->cli, "epoch %d/%d  train loss %.3f %s %.3f  val loss %.3f %s %.3f  %.1f s  %.0f img/s%s%s",
                r->epoch, r->epochs, R->train_loss, R->tacc, R->train_acc, r->loss, R->vacc, r->accuracy,
                R->secs + r->seconds, R->ips, R->comm, r->improved ? "  best" : "");
    }
}

static void progress(void *user, int64_t done, int64_t total) { cli_progress(((reporter *)user)->cli, done, total); }

/* --find-lr: the range test instead of training; nothing is written but
 * the plot (and the log line). */
static int find_lr_main(tl_cli *cli, tl_finetune *f, const char *plot, int steps)
{
    tl_err e;
    tl_lr_find_opts lo;
    tl_lr_find_opts_default(&lo);
    lo.steps = steps;
    FILE *log = NULL;
    if (cli->log && !(log = fopen(cli->log, "w")))
        cli_die(cli, "%s: cannot open the log: %s", cli->log, strerror(errno));
    if (!cli->quiet)
        cli_progress_enable(cli, cli->force_progress);
    cli_catch_signals(&g_stop);
    cli_log(cli, "%s: learning-rate range test, %d steps of %d images from %.0e to %.0e (the head's rate)", f->arch,
            lo.steps, f->o.batch, lo.start, lo.end);
    tl_lr_find_result r;
    int rc = tl_lr_find(f, &lo, &g_stop, cli->quiet || !cli->progress ? NULL : cli_progress, cli, &r, &e);
    cli_progress_end(cli);
    if (rc)
        cli_fail(cli, &e);
    if (g_stop) {
        tl_lr_find_result_free(&r);
        tl_finetune_free(f);
        cli_interrupted(cli, g_stop, "nothing written");
    }
    tl_lr_find_print(stdout, &r);
    char title[400];
    snprintf(title, sizeof title, "Learning-rate finder: %s on %s", f->arch, f->o.train);
    if (tl_lr_find_plot(&r, title, plot, &e))
        cli_fail(cli, &e);
    cli_log(cli, "wrote %s", plot);
    if (log) {
        tl_lr_find_json(log, &r);
        if (fclose(log))
            cli_die(cli, "%s: cannot write the log", cli->log);
    }
    tl_lr_find_result_free(&r);
    tl_finetune_free(f);
    return 0;
}

/* ---------------- several processes (mpirun, srun) ---------------- */

/* The end of a run with other processes: MPI finalised, or the whole job
 * ended when the communication broke (a process died). */
static _Noreturn void end_all(tl_comm *comm, int code)
{
    if (comm && comm->broken)
        tl_comm_abort(comm, code);
    if (comm)
        tl_comm_close(comm);
    exit(code);
}

/* A failure: process 0 reports it, another process only its own. */
static _Noreturn void fail_all(tl_cli *cli, tl_comm *comm, const tl_err *e, const char *after)
{
    if (!comm && !after[0])
        cli_fail(cli, e); /* exit 2 for a setting that does not fit */
    if (!comm)
        cli_die(cli, "%s%s", e->msg, after);
    if (comm->rank == 0 || comm->broken || !comm->shared_failure) {
        fflush(stdout);
        fprintf(stderr, "%s: %s%s\n", cli->prog, e->msg, after);
    }
    end_all(comm, e->kind == TL_ERR_ARG ? 2 : 1);
}

/* Launched as one of several processes: MPI, this process's place, its
 * threads; NULL when alone. Only process 0 logs and writes files. */
static tl_comm *start_processes(tl_cli *cli, tl_comm *comm, tl_finetune_opts *fo, double timeout, char *prog,
                                size_t cap)
{
    int n, rank;
    tl_comm_launched(&n, &rank);
    if (n <= 1)
        return NULL;
    if (!tl_comm_mpi_built()) {
        if (rank == 0)
            cli_die(cli, "MPI support is not built, and this is one of %d processes that would each train alone: "
                         "install Open MPI (apt-get install openmpi-bin libopenmpi-dev) and rebuild (make clean all), "
                         "or run tl-finetune without mpirun",
                    n);
        exit(1);
    }
    if (!strcmp(fo->train, "-") || (fo->val && !strcmp(fo->val, "-")))
        cli_usage_error(cli, "with %d processes the data must be files every process reads, not standard input", n);
    tl_err e;
    if (tl_comm_mpi_open(comm, &e)) {
        if (rank == 0)
            cli_fail(cli, &e);
        exit(1);
    }
    comm->stop = &g_stop;
    comm->timeout = timeout;
    if (comm->rank != 0) {
        snprintf(prog, cap, "%s: process %d of %d", cli->prog, comm->rank, comm->size);
        cli->prog = prog;
        cli->quiet = 1;
        cli->log = NULL;
    }
    if (!cli_given(cli, "threads"))
        fo->threads = tl_comm_local_threads();
    fo->comm = comm;
    return comm;
}

static int images_main(tl_cli *cli, tl_finetune_opts *fo, const char *run_name, double mpi_timeout, const char *find_lr,
                       int find_lr_steps)
{
    tl_err e;
    tl_finetune f;
    tl_comm comm_store;
    char prog[96];
    cli_catch_signals(&g_stop);
    tl_comm *comm = start_processes(cli, &comm_store, fo, mpi_timeout, prog, sizeof prog);
    int bad = tl_finetune_setup(&f, fo, cli_log_hook, cli, &e) != 0;
    if (comm) {
        /* every process set up, or none trains; when process 0 failed too,
         * it alone says why (the others most likely failed alike) */
        int any, first = bad;
        tl_err ce;
        if (tl_comm_any(comm, bad ? comm->rank + 1 : 0, &any, &ce) || tl_comm_bcast(comm, &first, sizeof first, &ce))
            fail_all(cli, comm, &ce, "");
        if (any && !bad) {
            e.kind = TL_ERR_FAIL;
            snprintf(e.msg, sizeof e.msg, "process %d could not start (its message says why)", any - 1);
            if (comm->rank == 0)
                fail_all(cli, comm, &e, "");
            end_all(comm, 1);
        }
        comm->shared_failure = bad && first && comm->rank != 0;
    }
    if (bad)
        fail_all(cli, comm, &e, "");
    if (find_lr) /* one process: refused under mpirun/srun before this */
        return find_lr_main(cli, &f, find_lr, find_lr_steps);
    reporter R = {cli, NULL, 0, 0, 0, 0, f.nval > 0, "", fo->multilabel ? "exact" : "acc", fo->multilabel ? "mAP" : "acc"};
    if (cli->log && !(R.log = fopen(cli->log, fo->resume ? "a" : "w"))) {
        tl_finetune_free(&f); /* releases and removes the output's lock */
        cli_die(cli, "%s: cannot open the log", cli->log);
    }
    if (R.log && !fo->resume)
        tl_train_log_start(R.log, &f, run_name);
    if (!cli->quiet)
        cli_progress_enable(cli, cli->force_progress);
    cli_log(cli, "%s%s: %lld training %s, %lld validation, %d classes, %d groups, %lld %s",
            fo->scratch ? "scratch " : "", f.arch, (long long)f.ntrain, cli_plural(f.ntrain, "image", "images"),
            (long long)f.nval, f.train.nclasses, f.trainer->ngroups, (long long)f.steps,
            cli_plural(f.steps, "step", "steps"));
    if (comm)
        cli_log(cli, "%d processes (%s), %d %s each; a step of %d %s, %d per process%s", comm->size, comm->tr.name,
                fo->threads, cli_plural(fo->threads, "thread", "threads"), fo->batch * fo->accumulate,
                cli_plural(fo->batch * fo->accumulate, "image", "images"), (fo->batch + comm->size - 1) / comm->size,
                fo->accumulate > 1 ? " per batch" : "");
    tl_finetune_hooks h = {&g_stop, report, cli->quiet || !cli->progress ? NULL : progress, &R};
    tl_fit_result res;
    int rc = tl_finetune_run(&f, &h, &res, &e);
    cli_progress_end(cli);
    if (rc < 0) {
        if (R.log)
            fclose(R.log);
        tl_finetune_free(&f); /* releases and removes the output's lock */
        fail_all(cli, comm, &e,
                 is_regular(fo->out) ? "; the best checkpoint so far is intact" : "; no checkpoint was written");
    }
    if (rc == TL_FIT_INTERRUPTED) {
        if (R.log)
            fclose(R.log);
        char what[8400];
        if (f.device_out)
            snprintf(what, sizeof what, "no resume state for a device output");
        else
            snprintf(what, sizeof what, "state saved to %s (continue with --resume)%s%s", f.resume_path,
                     is_regular(fo->out) ? "; best checkpoint so far: " : "", is_regular(fo->out) ? fo->out : "");
        tl_finetune_free(&f);
        /* a process may stop because another was signalled */
        int sig = g_stop ? g_stop : SIGTERM;
        if (comm) {
            if (comm->rank != 0)
                end_all(comm, 128 + sig);
            tl_comm_close(comm);
        }
        cli_interrupted(cli, sig, what);
    }
    if (R.log) {
        tl_train_log_best(R.log, &res, res.seconds);
        fclose(R.log);
    }
    if (res.best_epoch)
        cli_log(cli, "best: epoch %d, val %s %.4f, loss %.4f%s; wrote %s (%.1f s)%s", res.best_epoch,
                fo->multilabel ? "mAP" : "accuracy", res.best_accuracy, res.best_loss,
                res.stopped_early ? " (stopped early)" : "", fo->out, res.seconds,
                fo->multilabel ? "; per-class thresholds: the best F1 on the validation images of that epoch" : "");
    else
        cli_log(cli, "wrote %s after %d epochs (%.1f s)", fo->out, res.epochs_run, res.seconds);
    tl_finetune_free(&f);
    if (comm)
        tl_comm_close(comm);
    return 0;
}

/* ---------------- options ---------------- */

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
        feature_run fr = {train, fo.val, fo.out,     run_name,      class_weights,
                          multilabel, l2, metric, neighbours, fo.unlabelled, fo.pseudo, force};
        return features_main(&cli, &fr, &lo);
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
    return images_main(&cli, &fo, run_name, mpi_timeout, find_lr, find_lr_steps);
}
