#include "compare.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tl_metric_name(tl_metric m) { return m == TL_METRIC_LOSS ? "loss" : "accuracy"; }

static double nz(double x) { return isfinite(x) ? x : 0; }

void tl_run_cumulative_seconds(const tl_runlog *r, double *cum)
{
    double t = nz(r->extract_seconds);
    for (int i = 0; i < r->nepochs; i++) {
        t += nz(r->epochs[i].train.seconds) + nz(r->epochs[i].val.seconds);
        cum[i] = t;
    }
}

double tl_acc_noise(double a, int64_t na, double b, int64_t nb)
{
    if (na <= 0 || nb <= 0 || !isfinite(a) || !isfinite(b))
        return NAN;
    double pa = (a * (double)na + 1) / ((double)na + 2), pb = (b * (double)nb + 1) / ((double)nb + 2);
    return 2 * sqrt(pa * (1 - pa) / (double)na + pb * (1 - pb) / (double)nb);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double metric_of(const tl_runlog_epoch *ep, tl_metric m) { return m == TL_METRIC_LOSS ? ep->val.loss : ep->val.accuracy; }

/* Strictly better, so ties keep the earlier epoch. */
static int better(double a, double b, tl_metric m) { return isnan(b) ? !isnan(a) : (m == TL_METRIC_LOSS ? a < b : a > b); }

static int meets(double v, double target, tl_metric m)
{
    return isfinite(v) && (m == TL_METRIC_LOSS ? v <= target + 1e-12 : v >= target - 1e-12);
}

static int contains_word(const char *s, const char *w) { return s && strstr(s, w) != NULL; }

static void make_label(const tl_runlog *r, tl_run_summary *s)
{
    const char *st = r->strategy;
    if (s->kind == TL_RUN_SCRATCH) {
        if (st && *st && strcmp(st, "full"))
            snprintf(s->label, sizeof s->label, "scratch, %s", st);
        else
            snprintf(s->label, sizeof s->label, "scratch");
    } else if (st && *st) {
        snprintf(s->label, sizeof s->label, "%s", st);
    } else {
        snprintf(s->label, sizeof s->label, "%s", r->init && *r->init ? r->init : "-");
    }
}

static int summarise(const tl_runlog *r, tl_metric m, double *cum, double *tmp, tl_run_summary *s)
{
    memset(s, 0, sizeof *s);
    s->run = r;
    if (r->init)
        s->kind = !strcmp(r->init, "scratch") ? TL_RUN_SCRATCH : TL_RUN_TRANSFER;
    else
        s->kind = contains_word(r->name, "scratch") ? TL_RUN_SCRATCH : TL_RUN_TRANSFER;
    make_label(r, s);
    s->best_epoch = s->max_acc_epoch = s->target_epoch = s->last_epoch = -1;
    s->best = s->best_val_accuracy = s->best_val_loss = s->best_train_accuracy = s->seconds_to_best = NAN;
    s->max_acc = s->target_seconds = s->final_gap = s->best_gap = s->train_ips = NAN;
    s->stopped_early = r->stopped_early;
    tl_run_cumulative_seconds(r, cum);
    s->total_seconds = r->nepochs ? cum[r->nepochs - 1] : nz(r->extract_seconds);
    if (r->nepochs)
        s->last_epoch = r->epochs[r->nepochs - 1].epoch;

    int bi = -1, last_val = -1, nips = 0, nvi = 0;
    double *vi = tmp + r->nepochs;
    for (int i = 0; i < r->nepochs; i++) {
        const tl_runlog_epoch *ep = &r->epochs[i];
        double v = metric_of(ep, m);
        if (isfinite(v)) {
            s->nval++;
            last_val = i;
            if (bi < 0 || better(v, metric_of(&r->epochs[bi], m), m))
                bi = i;
        }
        if (isfinite(ep->val.accuracy) && better(ep->val.accuracy, s->max_acc, TL_METRIC_ACCURACY)) {
            s->max_acc = ep->val.accuracy;
            s->max_acc_epoch = ep->epoch;
        }
        if (isfinite(ep->train.accuracy) && isfinite(ep->val.accuracy))
            s->final_gap = ep->train.accuracy - ep->val.accuracy;
        if (ep->train.images_per_s > 0)
            tmp[nips++] = ep->train.images_per_s;
        if (ep->val.images_per_s > 0 && ep->val.seconds > 0)
            vi[nvi++] = ep->val.images_per_s * ep->val.seconds;
    }
    if (nips) {
        qsort(tmp, (size_t)nips, sizeof *tmp, cmp_double);
        s->train_ips = nips % 2 ? tmp[nips / 2] : 0.5 * (tmp[nips / 2 - 1] + tmp[nips / 2]);
    }
    /* A feature head fits in milliseconds; the speed that matters for that
     * strategy is the extraction's, which saw the training and validation
     * images once. */
    if (r->nextract && r->extract_seconds > 0 && r->train_images > 0)
        s->train_ips = (double)(r->train_images + (r->val_images > 0 ? r->val_images : 0)) / r->extract_seconds;
    s->val_images = r->val_images;
    if (s->val_images < 0 && nvi) {
        /* seconds and images/s are rounded in the log; the median of
         * their products rounds back to the count. */
        qsort(vi, (size_t)nvi, sizeof *vi, cmp_double);
        s->val_images = (int64_t)llround(vi[nvi / 2]);
        s->val_images_inferred = 1;
    }
    if (bi >= 0) {
        const tl_runlog_epoch *ep = &r->epochs[bi];
        s->best_epoch = ep->epoch;
        s->best = metric_of(ep, m);
        s->best_val_accuracy = ep->val.accuracy;
        s->best_val_loss = ep->val.loss;
        s->best_train_accuracy = ep->train.accuracy;
        s->seconds_to_best = cum[bi];
        if (isfinite(ep->train.accuracy) && isfinite(ep->val.accuracy))
            s->best_gap = ep->train.accuracy - ep->val.accuracy;
        s->still_improving = s->nval >= 2 && bi == last_val && !r->stopped_early;
    }
    return 0;
}

static void find_target(tl_comparison *c)
{
    for (int k = 0; k < c->nruns; k++) {
        tl_run_summary *s = &c->runs[k];
        const tl_runlog *r = s->run;
        double t = nz(r->extract_seconds);
        for (int i = 0; i < r->nepochs && isfinite(c->target); i++) {
            t += nz(r->epochs[i].train.seconds) + nz(r->epochs[i].val.seconds);
            if (meets(metric_of(&r->epochs[i], c->metric), c->target, c->metric)) {
                s->target_epoch = r->epochs[i].epoch;
                s->target_seconds = t;
                break;
            }
        }
    }
}

/* ---- the verdict ---- */

static int add_line(tl_comparison *c, tl_err *e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int add_line(tl_comparison *c, tl_err *e, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **nv = realloc(c->verdict, (size_t)(c->nverdict + 1) * sizeof *nv);
    if (!nv)
        return tl_fail(e, "out of memory");
    c->verdict = nv;
    if (!(nv[c->nverdict] = tl_strdup(buf)))
        return tl_fail(e, "out of memory");
    c->nverdict++;
    return 0;
}

/* "full" when the run is named after its strategy, else "name (full)". */
static const char *who(const tl_run_summary *s, char *buf, size_t n)
{
    if (!strcmp(s->run->name, s->label) || !strcmp(s->label, "-"))
        snprintf(buf, n, "%s", s->run->name);
    else if (!strncmp(s->label, s->run->name, strlen(s->run->name)) &&
             (s->label[strlen(s->run->name)] == '+' || s->label[strlen(s->run->name)] == ' '))
        /* "features+logreg", not "features (features+logreg)" */
        snprintf(buf, n, "%s", s->label);
    else
        snprintf(buf, n, "%s (%s)", s->run->name, s->label);
    return buf;
}

/* "transfer (full)", "scratch", "transfer (run3, head-only)". */
static const char *kinded(const char *kind, const tl_run_summary *s, char *buf, size_t n)
{
    const char *name = s->run->name, *label = s->label;
    if (!strcmp(name, kind))
        snprintf(buf, n, "%s", kind);
    else if (!strcmp(label, kind) || !strcmp(label, "-") || !strcmp(name, label))
        snprintf(buf, n, "%s (%s)", kind, name);
    else if (!strncmp(label, name, strlen(name)) && (label[strlen(name)] == ' ' || label[strlen(name)] == '+'))
        snprintf(buf, n, "%s (%s)", kind, label);
    else
        snprintf(buf, n, "%s (%s, %s)", kind, name, label);
    return buf;
}

static const char *secs(double t, char *buf, size_t n)
{
    if (!isfinite(t))
        snprintf(buf, n, "? s");
    else if (t >= 5400)
        snprintf(buf, n, "%.1f h", t / 3600);
    else if (t >= 600)
        snprintf(buf, n, "%.0f min", t / 60);
    else if (t >= 10)
        snprintf(buf, n, "%.0f s", t);
    else
        snprintf(buf, n, "%.1f s", t);
    return buf;
}

static const char *epochs(int k) { return k == 1 ? "epoch" : "epochs"; }

/* "a fifth of the time", "half the time", "40% of the time". */
static const char *fraction(double r, char *buf, size_t n)
{
    static const char *const words[] = {NULL, NULL, "half", "a third of", "a quarter of", "a fifth of", "a sixth of",
                                        "a seventh of", "an eighth of", "a ninth of", "a tenth of"};
    double k = 1 / r;
    long kr = lround(k);
    if (kr >= 2 && kr <= 10 && fabs(k - (double)kr) <= 0.12 * (double)kr)
        snprintf(buf, n, "%s the time", words[kr]);
    else if (k > 10)
        snprintf(buf, n, "1/%ld of the time", kr);
    else
        snprintf(buf, n, "%.0f%% of the time", 100 * r);
    return buf;
}

/* "within noise for 360 validation images" and the like. */
static const char *noise_words(const tl_run_summary *a, const tl_run_summary *b, int within, char *buf, size_t n)
{
    const char *w = within ? "within noise" : "beyond noise";
    if (a->val_images <= 0 || b->val_images <= 0)
        snprintf(buf, n, "%s; the validation set size is unknown, so differences under 1 point count as noise", w);
    else if (a->val_images == b->val_images)
        snprintf(buf, n, "%s for %lld validation images", w, (long long)a->val_images);
    else
        snprintf(buf, n, "%s for %lld and %lld validation images", w, (long long)a->val_images,
                 (long long)b->val_images);
    return buf;
}

static double noise_of(const tl_run_summary *a, const tl_run_summary *b)
{
    double z = tl_acc_noise(a->max_acc, a->val_images, b->max_acc, b->val_images);
    return isfinite(z) ? z : 0.01;
}

static int best_of_kind(const tl_comparison *c, int kind)
{
    int bi = -1;
    for (int i = 0; i < c->nruns; i++) {
        const tl_run_summary *s = &c->runs[i];
        if ((kind < 0 || (int)s->kind == kind) && isfinite(s->max_acc) &&
            (bi < 0 || s->max_acc > c->runs[bi].max_acc))
            bi = i;
    }
    return bi;
}

static int verdict_best(tl_comparison *c, tl_err *e)
{
    char w1[128], w2[128], t1[32], t2[32], fr[48];
    const tl_run_summary *b = &c->runs[c->best];
    int nval = 0;
    for (int i = 0; i < c->nruns; i++)
        nval += c->runs[i].nval > 0;
    if (nval < 2)
        return 0;
    if (c->metric == TL_METRIC_ACCURACY) {
        if (add_line(c, e, "best: %s, validation accuracy %.3f at epoch %d (%s)", who(b, w1, sizeof w1), b->best,
                     b->best_epoch, secs(b->seconds_to_best, t1, sizeof t1)))
            return -1;
    } else if (add_line(c, e, "best: %s, validation loss %.4f at epoch %d (%s)", who(b, w1, sizeof w1), b->best,
                        b->best_epoch, secs(b->seconds_to_best, t1, sizeof t1))) {
        return -1;
    }
    /* The cheapest run whose accuracy is within noise of the best one's. */
    int ci = -1;
    const tl_run_summary *ba = &c->runs[best_of_kind(c, -1) >= 0 ? best_of_kind(c, -1) : c->best];
    for (int i = 0; i < c->nruns; i++) {
        const tl_run_summary *s = &c->runs[i];
        if (s == ba || !isfinite(s->max_acc) || !(s->total_seconds < 0.9 * ba->total_seconds))
            continue;
        if (ba->max_acc - s->max_acc > noise_of(ba, s))
            continue;
        if (ci < 0 || s->total_seconds < c->runs[ci].total_seconds)
            ci = i;
    }
    if (ci < 0)
        return 0;
    const tl_run_summary *s = &c->runs[ci];
    return add_line(c, e, "%s is within %.1f points of %s at %s (%s vs %s): prefer it unless the last point matters",
                    who(s, w1, sizeof w1), 100 * (ba->max_acc - s->max_acc), who(ba, w2, sizeof w2),
                    fraction(s->total_seconds / ba->total_seconds, fr, sizeof fr),
                    secs(s->total_seconds, t1, sizeof t1), secs(ba->total_seconds, t2, sizeof t2));
}

static int verdict_transfer(tl_comparison *c, int ti, int si, tl_err *e)
{
    const tl_run_summary *T = &c->runs[ti], *S = &c->runs[si];
    char w1[128], w2[128], t1[32], t2[32], nw[160];
    double diff = T->max_acc - S->max_acc, noise = noise_of(T, S);
    double cum_t = NAN, cum_s = NAN;
    /* seconds to each run's best accuracy epoch */
    for (int k = 0; k < 2; k++) {
        const tl_run_summary *x = k ? S : T;
        double t = nz(x->run->extract_seconds);
        for (int i = 0; i < x->run->nepochs; i++) {
            t += nz(x->run->epochs[i].train.seconds) + nz(x->run->epochs[i].val.seconds);
            if (x->run->epochs[i].epoch == x->max_acc_epoch) {
                *(k ? &cum_s : &cum_t) = t;
                break;
            }
        }
    }
    if (diff > noise) {
        if (add_line(c, e,
                     "%s reaches %.3f in %d %s (%s); %s reaches %.3f after %d %s (%s) — "
                     "transfer helps (+%.1f points, %s)",
                     kinded("transfer", T, w1, sizeof w1), T->max_acc, T->max_acc_epoch, epochs(T->max_acc_epoch),
                     secs(cum_t, t1, sizeof t1), kinded("scratch", S, w2, sizeof w2), S->max_acc, S->max_acc_epoch,
                     epochs(S->max_acc_epoch), secs(cum_s, t2, sizeof t2), 100 * diff,
                     noise_words(T, S, 0, nw, sizeof nw)))
            return -1;
    } else if (diff >= -noise && fmin(T->max_acc, S->max_acc) >= 0.99) {
        if (add_line(c, e,
                     "scratch matches transfer (%.3f vs %.3f): both saturate, so this data set is too easy to "
                     "tell them apart by accuracy; compare the time to the target instead",
                     S->max_acc, T->max_acc))
            return -1;
    } else if (diff >= -noise) {
        if (add_line(c, e,
                     "scratch matches transfer (%.3f vs %.3f, %s): the source and target domains may be too "
                     "dissimilar; consider a backbone pretrained closer to your domain",
                     S->max_acc, T->max_acc, noise_words(T, S, 1, nw, sizeof nw)))
            return -1;
    } else if (add_line(c, e,
                        "scratch beats transfer (%.3f vs %.3f, %s): the pretrained features fit this domain "
                        "poorly; consider a backbone pretrained closer to your domain, or unfreezing more layers",
                        S->max_acc, T->max_acc, noise_words(T, S, 0, nw, sizeof nw))) {
        return -1;
    }
    /* Speed to the common target, when it is about accuracy. */
    if (!isfinite(c->target))
        return 0;
    const char *tn = c->metric == TL_METRIC_LOSS ? "validation loss" : "validation accuracy";
    if (T->target_epoch >= 0 && S->target_epoch >= 0) {
        double ratio = S->target_seconds / T->target_seconds;
        char how[64] = "";
        if (T->target_seconds > 0 && ratio >= 1.1)
            snprintf(how, sizeof how, ": transfer is %.1fx faster", ratio);
        else if (S->target_seconds > 0 && ratio <= 0.9)
            snprintf(how, sizeof how, ": scratch is %.1fx faster", 1 / ratio);
        return add_line(c, e, "to reach %s %.3g, transfer needs %d %s (%s) and scratch %d (%s)%s", tn, c->target,
                        T->target_epoch, epochs(T->target_epoch), secs(T->target_seconds, t1, sizeof t1),
                        S->target_epoch, secs(S->target_seconds, t2, sizeof t2), how);
    }
    if (T->target_epoch >= 0)
        return add_line(c, e, "transfer reaches %s %.3g after %d %s (%s); scratch never does in %d %s", tn,
                        c->target, T->target_epoch, epochs(T->target_epoch), secs(T->target_seconds, t1, sizeof t1),
                        S->nval, epochs(S->nval));
    if (S->target_epoch >= 0)
        return add_line(c, e, "scratch reaches %s %.3g after %d %s (%s); transfer never does in %d %s", tn,
                        c->target, S->target_epoch, epochs(S->target_epoch), secs(S->target_seconds, t1, sizeof t1),
                        T->nval, epochs(T->nval));
    return 0;
}

static int verdict_flags(tl_comparison *c, int scratch_behind, tl_err *e)
{
    char w[128];
    for (int i = 0; i < c->nruns; i++) {
        const tl_run_summary *s = &c->runs[i];
        if (s->nval == 0 && add_line(c, e, "%s has no validation records; it is left out of the verdict",
                                     who(s, w, sizeof w)))
            return -1;
        if (s->still_improving) {
            int rc = s->kind == TL_RUN_SCRATCH && scratch_behind
                         ? add_line(c, e, "%s had not converged (still improving at its last epoch, %d); more "
                                          "epochs may close part of the gap",
                                    who(s, w, sizeof w), s->last_epoch)
                         : add_line(c, e, "%s was still improving at its last epoch (%d); more epochs may help",
                                    who(s, w, sizeof w), s->last_epoch);
            if (rc)
                return -1;
        }
        if (s->run->diverged_epoch >= 0 &&
            add_line(c, e, "%s diverged: its loss became nan or inf at epoch %d; lower the learning rate",
                     who(s, w, sizeof w), s->run->diverged_epoch))
            return -1;
        if (s->best_gap > TL_OVERFIT_GAP &&
            add_line(c, e,
                     "%s overfits: training accuracy %.3f vs validation %.3f at its best epoch (gap %.2f); more "
                     "augmentation, weight decay or fewer trainable layers may help",
                     who(s, w, sizeof w), s->best_train_accuracy, s->best_val_accuracy, s->best_gap))
            return -1;
    }
    return 0;
}

/* Runs whose logged image counts differ: "validated on different data:
 * full, head on 153 images; scratch on 100". Counts the logs lack are
 * not guessed. */
static int note_counts(tl_comparison *c, const char *what, int val, tl_err *e)
{
    char buf[1024];
    size_t len = 0;
    int groups = 0;
    for (int i = 0; i < c->nruns; i++) {
        int64_t v = val ? c->runs[i].run->val_images : c->runs[i].run->train_images;
        int seen = v < 0;
        for (int j = 0; j < i && !seen; j++)
            seen = (val ? c->runs[j].run->val_images : c->runs[j].run->train_images) == v;
        if (seen)
            continue;
        int first = 1;
        for (int j = i; j < c->nruns && len < sizeof buf; j++)
            if ((val ? c->runs[j].run->val_images : c->runs[j].run->train_images) == v) {
                len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", first ? (groups ? "; " : "") : ", ",
                                        c->runs[j].run->name);
                first = 0;
            }
        if (len < sizeof buf)
            len += (size_t)snprintf(buf + len, sizeof buf - len, " on %lld %s", (long long)v,
                                    v == 1 ? "image" : "images");
        groups++;
    }
    if (groups < 2)
        return 0;
    return add_line(c, e, "the runs were %s on different data (%s): their figures are not directly comparable",
                    what, buf);
}

/* Runs validated on a random split of their training data beside runs
 * validated on a data set of its own see different images. */
static int note_splits(tl_comparison *c, tl_err *e)
{
    int split = -1, given = -1;
    for (int i = 0; i < c->nruns; i++) {
        const char *v = c->runs[i].run->val_path;
        if (v && !strcmp(v, "split"))
            split = split < 0 ? i : split;
        else if (v)
            given = given < 0 ? i : given;
    }
    if (split < 0 || given < 0)
        return 0;
    return add_line(c, e, "%s is validated on a random split of its training data, %s on %s: different images",
                    c->runs[split].run->name, c->runs[given].run->name, c->runs[given].run->val_path);
}

/* What makes the runs not comparable, said before the verdict. */
static int verdict_data(tl_comparison *c, tl_err *e)
{
    if (c->nruns > 1 &&
        (note_counts(c, "trained", 0, e) || note_counts(c, "validated", 1, e) || note_splits(c, e)))
        return -1;
    for (int i = 0; i < c->nruns; i++) {
        const tl_runlog *r = c->runs[i].run;
        if (r->init && !strcmp(r->init, "features") && r->nextract == 0 &&
            add_line(c, e, "%s is a feature-head run whose log holds no tl-extract --log line: its time leaves out "
                           "the extraction (put those lines first: cat extract.jsonl head.jsonl > run.jsonl)",
                     r->name))
            return -1;
    }
    return 0;
}

static int make_verdict(tl_comparison *c, tl_err *e)
{
    if (verdict_data(c, e))
        return -1;
    if (c->best < 0)
        return add_line(c, e, "no run has validation %s; nothing to compare (train with --val)",
                        tl_metric_name(c->metric));
    if (verdict_best(c, e))
        return -1;
    int ti = best_of_kind(c, TL_RUN_TRANSFER), si = best_of_kind(c, TL_RUN_SCRATCH), behind = 0;
    if (ti >= 0 && si >= 0) {
        if (verdict_transfer(c, ti, si, e))
            return -1;
        behind = c->runs[ti].max_acc - c->runs[si].max_acc > noise_of(&c->runs[ti], &c->runs[si]);
    }
    return verdict_flags(c, behind, e);
}

int tl_compare_runs(const tl_runlog *runs, int n, tl_metric metric, double target, tl_comparison *out, tl_err *e)
{
    memset(out, 0, sizeof *out);
    out->metric = metric;
    out->best = -1;
    out->target = NAN;
    if (n <= 0)
        return tl_fail(e, "no runs to compare");
    int maxep = 0;
    for (int i = 0; i < n; i++)
        if (!runs[i].name)
            return tl_fail(e, "run %d was not read", i + 1);
    for (int i = 0; i < n; i++)
        maxep = runs[i].nepochs > maxep ? runs[i].nepochs : maxep;
    out->runs = calloc((size_t)n, sizeof *out->runs);
    double *cum = malloc((size_t)(maxep + 1) * sizeof *cum), *tmp = malloc((size_t)(2 * maxep + 1) * sizeof *tmp);
    if (!out->runs || !cum || !tmp) {
        free(cum);
        free(tmp);
        tl_comparison_free(out);
        return tl_fail(e, "out of memory");
    }
    out->nruns = n;
    for (int i = 0; i < n; i++) {
        summarise(&runs[i], metric, cum, tmp, &out->runs[i]);
        const tl_run_summary *s = &out->runs[i];
        if (s->best_epoch >= 0 && (out->best < 0 || better(s->best, out->runs[out->best].best, metric)))
            out->best = i;
    }
    free(cum);
    free(tmp);
    if (isfinite(target)) {
        out->target = target;
    } else if (out->best >= 0) {
        double b = out->runs[out->best].best;
        out->target = metric == TL_METRIC_LOSS ? 1.05 * b : 0.95 * b;
        out->target_derived = 1;
    }
    find_target(out);
    if (make_verdict(out, e)) {
        tl_comparison_free(out);
        return -1;
    }
    return 0;
}

void tl_comparison_free(tl_comparison *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nverdict; i++)
        free(c->verdict[i]);
    free(c->verdict);
    free(c->runs);
    memset(c, 0, sizeof *c);
    c->best = -1;
}
