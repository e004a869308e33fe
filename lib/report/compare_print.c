#include "compare.h"
#include "io/tsv.h"
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Widest columns that keep a row within 100 characters. */
#define RUN_W 12
#define STRAT_W 21
#define WRAP 98

/* Cuts s to w columns, marking the cut with "..". */
static const char *fit(const char *s, int w, char *buf, size_t n)
{
    if ((int)strlen(s) <= w)
        return s;
    snprintf(buf, n, "%.*s..", w - 2, s);
    return buf;
}

static int min_int(int a, int b) { return a < b ? a : b; }

/* Verdict sentences are long; wrap them at spaces for a terminal. */
static void print_wrapped(FILE *f, const char *s)
{
    const char *p = s;
    int first = 1;
    while (*p) {
        int room = first ? WRAP : WRAP - 2, n = (int)strlen(p);
        if (n > room) {
            n = room;
            while (n > 0 && p[n] != ' ')
                n--;
            if (n == 0) /* one long word: let it overflow */
                for (n = room; p[n] && p[n] != ' '; n++)
                    ;
        }
        fprintf(f, "%s%.*s\n", first ? "" : "  ", n, p);
        p += n;
        while (*p == ' ')
            p++;
        first = 0;
    }
}

void tl_comparison_print_table(FILE *f, const tl_comparison *c)
{
    int loss = c->metric == TL_METRIC_LOSS;
    int rw = 3, sw = 8, bw = loss ? 14 : 13;
    for (int i = 0; i < c->nruns; i++) {
        rw = min_int(RUN_W, (int)strlen(c->runs[i].run->name) > rw ? (int)strlen(c->runs[i].run->name) : rw);
        sw = min_int(STRAT_W - loss, (int)strlen(c->runs[i].label) > sw ? (int)strlen(c->runs[i].label) : sw);
    }
    if (isfinite(c->target)) {
        if (c->target_derived && c->best >= 0)
            fprintf(f, "target: validation %s %s %.4g (%s of the best, %.4g)\n\n", tl_metric_name(c->metric),
                    loss ? "<=" : ">=", c->target, loss ? "105%" : "95%", c->runs[c->best].best);
        else
            fprintf(f, "target: validation %s %s %.4g\n\n", tl_metric_name(c->metric), loss ? "<=" : ">=",
                    c->target);
    }
    fprintf(f, "%-*s  %-*s  %*s  %11s  %8s  %6s  %7s  %8s\n", rw, "run", sw, "strategy", bw,
            loss ? "best loss (ep)" : "best acc (ep)", "target ep", "target s", "gap", "img/s", "total s");
    for (int i = 0; i < c->nruns; i++) {
        const tl_run_summary *s = &c->runs[i];
        char b1[64], b2[64], best[32], tep[16], ts[16], gap[16], ips[16], tot[16];
        if (s->best_epoch >= 0)
            snprintf(best, sizeof best, loss ? "%.4f (%d)" : "%.3f (%d)", s->best, s->best_epoch);
        else
            snprintf(best, sizeof best, "-");
        if (s->target_epoch >= 0) {
            snprintf(tep, sizeof tep, "%d", s->target_epoch);
            snprintf(ts, sizeof ts, s->target_seconds < 10 ? "%.1f" : "%.0f", s->target_seconds);
        } else {
            snprintf(tep, sizeof tep, "%s", s->nval && isfinite(c->target) ? "not reached" : "-");
            snprintf(ts, sizeof ts, "-");
        }
        if (isfinite(s->final_gap)) /* no "-0.00" for a gap that rounds to nothing */
            snprintf(gap, sizeof gap, "%+.2f", fabs(s->final_gap) < 0.005 ? 0.0 : s->final_gap);
        else
            snprintf(gap, sizeof gap, "-");
        if (isfinite(s->train_ips))
            snprintf(ips, sizeof ips, s->train_ips < 100 ? "%.1f" : "%.0f", s->train_ips);
        else
            snprintf(ips, sizeof ips, "-");
        snprintf(tot, sizeof tot, s->total_seconds < 10 ? "%.1f" : "%.0f", s->total_seconds);
        fprintf(f, "%-*s  %-*s  %*s  %11s  %8s  %6s  %7s  %8s\n", rw, fit(s->run->name, rw, b1, sizeof b1), sw,
                fit(s->label, sw, b2, sizeof b2), bw, best, tep, ts, gap, ips, tot);
    }
    fprintf(f, "\ngap: training minus validation accuracy at the last epoch; img/s: median training\n"
               "speed (feature runs: extraction); seconds add up training, validation and extraction.\n");
    for (int i = 0; i < c->nruns; i++) {
        const tl_run_summary *s = &c->runs[i];
        if (s->run->repeated)
            fprintf(f, "%s: resumed; %d repeated epoch record%s replaced by %s.\n", s->run->name,
                    s->run->repeated, s->run->repeated == 1 ? "" : "s",
                    s->run->repeated == 1 ? "a later one" : "later ones");
        if (s->stopped_early)
            fprintf(f, "%s: stopped early after epoch %d.\n", s->run->name, s->last_epoch);
    }
    fputc('\n', f);
    for (int i = 0; i < c->nverdict; i++)
        print_wrapped(f, c->verdict[i]);
}

static void tsv_num(FILE *f, double x, const char *fmt)
{
    fputc('\t', f);
    if (isfinite(x))
        fprintf(f, fmt, x);
}

static void tsv_clean(FILE *f, const char *s)
{
    if (s)
        fputs(s, f);
}

static void tsv_str(FILE *f, const char *s)
{
    fputc('\t', f);
    tsv_clean(f, s);
}

int tl_comparison_print_tsv(FILE *f, const tl_comparison *c, tl_err *e)
{
    /* tsv.h's rule: check every text field before writing a line */
    for (int i = 0; i < c->nruns; i++) {
        const tl_run_summary *s = &c->runs[i];
        if (tl_tsv_check(s->run->name, "run name", 1, e) || tl_tsv_check(s->label, "strategy", 0, e) ||
            (s->run->init && tl_tsv_check(s->run->init, "init", 0, e)) ||
            (s->run->arch && tl_tsv_check(s->run->arch, "architecture", 0, e)))
            return -1;
    }
    fprintf(f, "run\tstrategy\tkind\tinit\tarch\tepochs\tbest_epoch\tbest_%s\tval_accuracy\tval_loss\ttarget\t"
               "target_epoch\ttarget_seconds\tfinal_gap\ttrain_images_per_s\ttotal_seconds\tval_images\n",
            tl_metric_name(c->metric));
    for (int i = 0; i < c->nruns; i++) {
        const tl_run_summary *s = &c->runs[i];
        tsv_clean(f, s->run->name);
        tsv_str(f, s->label);
        tsv_str(f, s->kind == TL_RUN_SCRATCH ? "scratch" : "transfer");
        tsv_str(f, s->run->init);
        tsv_str(f, s->run->arch);
        fprintf(f, "\t%d", s->run->nepochs);
        tsv_num(f, s->best_epoch >= 0 ? s->best_epoch : NAN, "%.0f");
        tsv_num(f, s->best, "%.6g");
        tsv_num(f, s->best_val_accuracy, "%.6g");
        tsv_num(f, s->best_val_loss, "%.6g");
        tsv_num(f, c->target, "%.6g");
        tsv_num(f, s->target_epoch >= 0 ? s->target_epoch : NAN, "%.0f");
        tsv_num(f, s->target_seconds, "%.3f");
        tsv_num(f, s->final_gap, "%.6g");
        tsv_num(f, s->train_ips, "%.6g");
        tsv_num(f, s->total_seconds, "%.3f");
        tsv_num(f, s->val_images >= 0 ? (double)s->val_images : NAN, "%.0f");
        fputc('\n', f);
    }
    return 0;
}

static void jnum(FILE *f, const char *key, double x, const char *fmt)
{
    fprintf(f, ",\"%s\":", key);
    if (isfinite(x))
        fprintf(f, fmt, x);
    else
        fputs("null", f);
}

static void jstr(FILE *f, const char *key, const char *s)
{
    fprintf(f, ",\"%s\":", key);
    if (s)
        tl_json_write_string(f, s);
    else
        fputs("null", f);
}

void tl_comparison_print_json(FILE *f, const tl_comparison *c)
{
    fprintf(f, "{\"metric\":\"%s\"", tl_metric_name(c->metric));
    jnum(f, "target", c->target, "%.6g");
    fprintf(f, ",\"target_derived\":%s", c->target_derived ? "true" : "false");
    jstr(f, "best", c->best >= 0 ? c->runs[c->best].run->name : NULL);
    fputs(",\"runs\":[", f);
    for (int i = 0; i < c->nruns; i++) {
        const tl_run_summary *s = &c->runs[i];
        const tl_runlog *r = s->run;
        fprintf(f, "%s{\"run\":", i ? "," : "");
        tl_json_write_string(f, r->name);
        jstr(f, "strategy", s->label);
        jstr(f, "kind", s->kind == TL_RUN_SCRATCH ? "scratch" : "transfer");
        jstr(f, "init", r->init);
        jstr(f, "arch", r->arch);
        jstr(f, "model", r->model);
        fprintf(f, ",\"epochs\":%d", r->nepochs);
        jnum(f, "best_epoch", s->best_epoch >= 0 ? s->best_epoch : NAN, "%.0f");
        jnum(f, "best", s->best, "%.6g");
        jnum(f, "val_accuracy", s->best_val_accuracy, "%.6g");
        jnum(f, "val_loss", s->best_val_loss, "%.6g");
        jnum(f, "train_accuracy", s->best_train_accuracy, "%.6g");
        jnum(f, "max_val_accuracy", s->max_acc, "%.6g");
        jnum(f, "target_epoch", s->target_epoch >= 0 ? s->target_epoch : NAN, "%.0f");
        jnum(f, "target_seconds", s->target_seconds, "%.3f");
        jnum(f, "final_gap", s->final_gap, "%.6g");
        jnum(f, "best_gap", s->best_gap, "%.6g");
        jnum(f, "train_images_per_s", s->train_ips, "%.6g");
        jnum(f, "total_seconds", s->total_seconds, "%.3f");
        jnum(f, "extract_seconds", r->nextract ? r->extract_seconds : NAN, "%.3f");
        jnum(f, "val_images", s->val_images >= 0 ? (double)s->val_images : NAN, "%.0f");
        fprintf(f, ",\"val_images_inferred\":%s,\"still_improving\":%s,\"stopped_early\":%s,\"repeated_records\":%d}",
                s->val_images_inferred ? "true" : "false", s->still_improving ? "true" : "false",
                s->stopped_early ? "true" : "false", r->repeated);
    }
    fputs("],\"verdict\":[", f);
    for (int i = 0; i < c->nverdict; i++) {
        if (i)
            fputc(',', f);
        tl_json_write_string(f, c->verdict[i]);
    }
    fputs("]}\n", f);
}
