/* tl-finetune on images: the network fine-tuned or trained from scratch
 * (lib/train/finetune.h), the learning-rate range test, and the start and
 * end of a run of several processes (mpirun, srun). */
#include "finetune_cli.h"
#include "report/lr_find_report.h"
#include "report/plot.h"
#include "report/train_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static volatile sig_atomic_t g_stop;

static int is_regular(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

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

int ft_network_main(tl_cli *cli, tl_finetune_opts *fo, const char *run_name, double mpi_timeout, const char *find_lr,
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