/* tl-finetune on feature vectors: a linear head (logistic regression or
 * SVM, optionally self-trained on unlabelled vectors) or stored prototypes
 * (knn, ncm); the fitting itself is lib/train/head_fit.h. */
#include "finetune_cli.h"
#include "report/train_log.h"
#include "train/neighbours.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
static int prototype_main(tl_cli *cli, const ft_feature_run *fr, int kind, FILE *log, tl_featset *s)
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

int ft_head_main(tl_cli *cli, const ft_feature_run *fr, const tl_linear_opts *lin)
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