/* Run comparison: the summaries (best epoch, target, gap, speed, inferred
 * validation size), the noise test, and the verdict's sentences for the
 * cases that matter: transfer clearly ahead, scratch within noise, a
 * cheaper strategy as good as the best, overfitting, non-convergence,
 * divergence, no validation at all; then the loss metric and the JSON. */
#include "check.h"
#include "report/compare.h"
#include "core/json.h"

#include <stdlib.h>
#include <string.h>

/* A run of n epochs: val accuracy va0 + step*e (capped at cap), train
 * accuracy val + gap, seconds per epoch sec, validation on nval images. */
static void make_run(tl_runlog *r, const char *name, const char *init, const char *strategy, int n, double va0,
                     double step, double cap, double gap, double sec, int nval)
{
    char *s = malloc(4096 + (size_t)n * 400), *p = s;
    p += sprintf(p, "{\"phase\":\"start\",\"run\":\"");
    for (const char *q = name; *q; q++) /* names with quotes test the JSON writer */
        p += sprintf(p, *q == '"' ? "\\%c" : "%c", *q);
    p += sprintf(p, "\",\"init\":\"%s\",\"strategy\":\"%s\"", init, strategy);
    if (nval > 0)
        p += sprintf(p, ",\"val_images\":%d", nval);
    p += sprintf(p, "}\n");
    for (int e = 1; e <= n; e++) {
        double va = va0 + step * e;
        va = va > cap ? cap : va;
        p += sprintf(p,
                     "{\"epoch\":%d,\"phase\":\"train\",\"loss\":%.4f,\"accuracy\":%.4f,\"seconds\":%g,"
                     "\"images_per_s\":%d}\n",
                     e, 1.0 - va, va + gap, sec * 0.9, 10 * e);
        p += sprintf(p, "{\"epoch\":%d,\"phase\":\"val\",\"loss\":%.4f,\"accuracy\":%.4f,\"seconds\":%g}\n", e,
                     1.0 - va + 0.05, va, sec * 0.1);
    }
    tl_err err = {0};
    int rc = tl_runlog_parse(s, strlen(s), NULL, r, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    free(s);
}

static int says(const tl_comparison *c, const char *what)
{
    for (int i = 0; i < c->nverdict; i++)
        if (strstr(c->verdict[i], what))
            return 1;
    return 0;
}

static void dump(const tl_comparison *c)
{
    for (int i = 0; i < c->nverdict; i++)
        fprintf(stderr, "    | %s\n", c->verdict[i]);
}

#define SAYS(c, what) do { CHECK_MSG(says(c, what), "no \"%s\" in the verdict:", what); if (!says(c, what)) dump(c); } while (0)
#define SAYS_NOT(c, what) do { CHECK_MSG(!says(c, what), "unexpected \"%s\" in the verdict:", what); if (says(c, what)) dump(c); } while (0)

static void free_runs(tl_runlog *r, int n)
{
    for (int i = 0; i < n; i++)
        tl_runlog_free(&r[i]);
}

static void test_noise(void)
{
    /* Laplace-smoothed 0.5 on 100 images each: 2 * sqrt(2 * 0.25 / 100). */
    CHECK_NEAR(tl_acc_noise(0.5, 100, 0.5, 100), 2 * sqrt(0.005), 1e-12);
    /* A perfect score still has a spread. */
    CHECK(tl_acc_noise(1, 50, 1, 50) > 0.01);
    CHECK(tl_acc_noise(0.9, 1000, 0.9, 1000) < tl_acc_noise(0.9, 100, 0.9, 100));
    CHECK(isnan(tl_acc_noise(0.9, -1, 0.9, 100)));
}

static void test_summary(void)
{
    tl_runlog r[1];
    make_run(&r[0], "full", "pretrained", "full", 6, 0.80, 0.05, 0.95, 0.02, 100, 200);
    tl_comparison c;
    tl_err e = {0};
    CHECK(tl_compare_runs(r, 1, TL_METRIC_ACCURACY, NAN, &c, &e) == 0);
    const tl_run_summary *s = &c.runs[0];
    CHECK(c.best == 0 && c.target_derived);
    CHECK(s->best_epoch == 3); /* 0.95 first reached at epoch 3; ties keep the earlier */
    CHECK_NEAR(s->best, 0.95, 1e-9);
    CHECK_NEAR(c.target, 0.95 * 0.95, 1e-9);
    CHECK(s->target_epoch == 3); /* epoch 2's 0.90 falls short of 0.9025 */
    CHECK_NEAR(s->total_seconds, 600, 1e-9);
    CHECK_NEAR(s->final_gap, 0.02, 1e-9);
    CHECK_NEAR(s->train_ips, 35, 1e-9); /* median of 10..60 */
    CHECK(s->val_images == 200 && !s->val_images_inferred);
    CHECK(!s->still_improving && s->kind == TL_RUN_TRANSFER && !strcmp(s->label, "full"));
    tl_comparison_free(&c);
    /* Explicit target: 0.9 is met at epoch 2 after 200 s. */
    CHECK(tl_compare_runs(r, 1, TL_METRIC_ACCURACY, 0.9, &c, &e) == 0);
    CHECK(!c.target_derived && c.runs[0].target_epoch == 2);
    CHECK_NEAR(c.runs[0].target_seconds, 200, 1e-9);
    tl_comparison_free(&c);
    CHECK(tl_compare_runs(r, 1, TL_METRIC_ACCURACY, 0.99, &c, &e) == 0);
    CHECK(c.runs[0].target_epoch == -1 && isnan(c.runs[0].target_seconds));
    tl_comparison_free(&c);
    /* Loss: lowest validation loss (0.10 at epoch 3); target 5 % above. */
    CHECK(tl_compare_runs(r, 1, TL_METRIC_LOSS, NAN, &c, &e) == 0);
    CHECK(c.runs[0].best_epoch == 3);
    CHECK_NEAR(c.runs[0].best, 0.10, 1e-9);
    CHECK_NEAR(c.target, 0.105, 1e-9);
    CHECK(c.runs[0].target_epoch == 3);
    tl_comparison_free(&c);
    free_runs(r, 1);
}

static void test_transfer_helps(void)
{
    tl_runlog r[3];
    make_run(&r[0], "full", "pretrained", "full", 5, 0.85, 0.05, 0.96, 0.01, 100, 300);
    make_run(&r[1], "head", "pretrained", "head-only", 5, 0.90, 0.05, 0.955, 0.0, 20, 300);
    make_run(&r[2], "scratch", "scratch", "full", 20, 0.40, 0.02, 0.99, 0.25, 100, 300); /* ends at 0.80 */
    tl_comparison c;
    tl_err e = {0};
    CHECK(tl_compare_runs(r, 3, TL_METRIC_ACCURACY, NAN, &c, &e) == 0);
    CHECK(c.best == 0);
    CHECK(c.runs[2].kind == TL_RUN_SCRATCH && !strcmp(c.runs[2].label, "scratch"));
    CHECK(c.runs[2].still_improving);
    SAYS(&c, "best: full, validation accuracy 0.960 at epoch 3");
    SAYS(&c, "head (head-only) is within 0.5 points of full at a fifth of the time (100 s vs 500 s)");
    SAYS(&c, "transfer (full) reaches 0.960 in 3 epochs (300 s); scratch reaches 0.800 after 20 epochs");
    SAYS(&c, "transfer helps (+16.0 points, beyond noise for 300 validation images)");
    SAYS(&c, "scratch never does in 20 epochs");
    SAYS(&c, "scratch had not converged");
    SAYS(&c, "more epochs may close part of the gap");
    SAYS(&c, "scratch overfits: training accuracy 1.050"); /* the made-up gap of 0.25 */
    SAYS_NOT(&c, "full overfits");
    SAYS_NOT(&c, "matches");
    tl_comparison_free(&c);
    free_runs(r, 3);
}

static void test_scratch_matches(void)
{
    tl_runlog r[2];
    make_run(&r[0], "tl", "pretrained", "partial (features.13)", 4, 0.86, 0.02, 0.94, 0.0, 50, 150);
    make_run(&r[1], "sc", "scratch", "full", 12, 0.60, 0.05, 0.93, 0.0, 50, 150);
    tl_comparison c;
    tl_err e = {0};
    CHECK(tl_compare_runs(r, 2, TL_METRIC_ACCURACY, 0.9, &c, &e) == 0);
    SAYS(&c, "scratch matches transfer (0.930 vs 0.940, within noise for 150 validation images)");
    SAYS(&c, "consider a backbone pretrained closer to your domain");
    /* 0.9 is reached at epoch 2 (100 s) by transfer, epoch 6 (300 s) by scratch. */
    SAYS(&c, "transfer needs 2 epochs (100 s) and scratch 6 (300 s): transfer is 3.0x faster");
    SAYS_NOT(&c, "transfer helps");
    SAYS_NOT(&c, "had not converged");
    tl_comparison_free(&c);
    /* The same accuracies on 20000 images each are no longer noise. */
    tl_runlog_free(&r[0]);
    tl_runlog_free(&r[1]);
    make_run(&r[0], "tl", "pretrained", "full", 4, 0.86, 0.02, 0.94, 0.0, 50, 20000);
    make_run(&r[1], "sc", "scratch", "full", 12, 0.60, 0.05, 0.93, 0.0, 50, 20000);
    CHECK(tl_compare_runs(r, 2, TL_METRIC_ACCURACY, NAN, &c, &e) == 0);
    SAYS(&c, "transfer helps (+1.0 points, beyond noise for 20000 validation images)");
    tl_comparison_free(&c);
    free_runs(r, 2);
}

static void test_saturated(void)
{
    tl_runlog r[2];
    make_run(&r[0], "tl", "pretrained", "full", 2, 0.98, 0.01, 1.0, 0.0, 10, 40);
    make_run(&r[1], "sc", "scratch", "full", 4, 0.97, 0.01, 1.0, 0.0, 10, 40);
    tl_comparison c;
    tl_err e = {0};
    CHECK(tl_compare_runs(r, 2, TL_METRIC_ACCURACY, NAN, &c, &e) == 0);
    SAYS(&c, "scratch matches transfer (1.000 vs 1.000): both saturate");
    SAYS_NOT(&c, "dissimilar");
    tl_comparison_free(&c);
    free_runs(r, 2);
}

static void test_unknown_sizes(void)
{
    /* No start line and no images/s: validation size unknown; the name
     * says which run is scratch. */
    const char *a = "{\"epoch\":1,\"phase\":\"val\",\"accuracy\":0.90,\"seconds\":2}\n";
    const char *b = "{\"epoch\":1,\"phase\":\"val\",\"accuracy\":0.895,\"seconds\":2,\"images_per_s\":50}\n"
                    "{\"epoch\":1,\"phase\":\"train\",\"accuracy\":0.95}\n";
    tl_runlog r[2];
    tl_err e = {0};
    CHECK(tl_runlog_parse(a, strlen(a), "pretrained-run", &r[0], &e) == 0);
    CHECK(tl_runlog_parse(b, strlen(b), "my-scratch", &r[1], &e) == 0);
    tl_comparison c;
    CHECK(tl_compare_runs(r, 2, TL_METRIC_ACCURACY, NAN, &c, &e) == 0);
    CHECK(c.runs[0].kind == TL_RUN_TRANSFER && c.runs[1].kind == TL_RUN_SCRATCH);
    CHECK(c.runs[0].val_images == -1 && c.runs[1].val_images == 100 && c.runs[1].val_images_inferred);
    SAYS(&c, "scratch matches transfer (0.895 vs 0.900, within noise; the validation set size is unknown");
    tl_comparison_free(&c);
    free_runs(r, 2);
}

static void test_no_validation(void)
{
    const char *a = "{\"epoch\":1,\"phase\":\"train\",\"loss\":nan,\"accuracy\":0.5}\n";
    tl_runlog r[1];
    tl_err e = {0};
    CHECK(tl_runlog_parse(a, strlen(a), "lonely", &r[0], &e) == 0);
    tl_comparison c;
    CHECK(tl_compare_runs(r, 1, TL_METRIC_ACCURACY, NAN, &c, &e) == 0);
    CHECK(c.best == -1 && isnan(c.target) && c.runs[0].best_epoch == -1);
    SAYS(&c, "no run has validation accuracy");
    tl_comparison_free(&c);
    CHECK(tl_compare_runs(r, 0, TL_METRIC_ACCURACY, NAN, &c, &e) < 0);
    free_runs(r, 1);
}

static void test_flags(void)
{
    const char *d = "{\"phase\":\"start\",\"init\":\"scratch\",\"val_images\":50}\n"
                    "{\"epoch\":1,\"phase\":\"train\",\"loss\":2.0,\"accuracy\":0.3}\n"
                    "{\"epoch\":1,\"phase\":\"val\",\"loss\":2.0,\"accuracy\":0.3}\n"
                    "{\"epoch\":2,\"phase\":\"train\",\"loss\":-nan,\"accuracy\":0.1}\n";
    tl_runlog r[2];
    tl_err e = {0};
    CHECK(tl_runlog_parse(d, strlen(d), "boom", &r[0], &e) == 0);
    make_run(&r[1], "over", "pretrained", "full", 3, 0.70, 0.01, 1, 0.2, 10, 50);
    tl_comparison c;
    CHECK(tl_compare_runs(r, 2, TL_METRIC_ACCURACY, NAN, &c, &e) == 0);
    SAYS(&c, "boom (scratch) diverged: its loss became nan or inf at epoch 2");
    SAYS(&c, "over (full) overfits: training accuracy 0.930 vs validation 0.730 at its best epoch (gap 0.20)");
    SAYS(&c, "over (full) was still improving at its last epoch (3); more epochs may help");
    tl_comparison_free(&c);
    free_runs(r, 2);
}

static void test_json(void)
{
    tl_runlog r[2];
    make_run(&r[0], "a\"quoted\"", "pretrained", "full", 2, 0.8, 0.05, 1, 0, 10, 100);
    make_run(&r[1], "b", "scratch", "full", 2, 0.5, 0.05, 1, 0, 10, 100);
    tl_comparison c;
    tl_err e = {0};
    CHECK(tl_compare_runs(r, 2, TL_METRIC_ACCURACY, NAN, &c, &e) == 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tl_comparison_print_json(f, &c);
    fclose(f);
    tl_json v;
    CHECK_MSG(tl_json_parse(buf, len, &v, &e) == 0, "%s: %s", e.msg, buf);
    const tl_json *runs = tl_json_get(&v, "runs"), *verdict = tl_json_get(&v, "verdict");
    CHECK(runs && runs->type == TL_JSON_ARRAY && runs->count == 2);
    CHECK(verdict && verdict->type == TL_JSON_ARRAY && verdict->count == c.nverdict);
    if (runs && runs->count == 2) {
        const tl_json *n0 = tl_json_get(&runs->items[0], "run"), *te = tl_json_get(&runs->items[1], "target_epoch");
        CHECK(n0 && n0->type == TL_JSON_STRING && !strcmp(n0->string, "a\"quoted\""));
        CHECK(te && te->type == TL_JSON_NULL); /* scratch never reaches 0.95 * 0.9 */
    }
    tl_json_free(&v);
    free(buf);
    /* The table and TSV print without trouble and mark the miss. */
    buf = NULL;
    f = open_memstream(&buf, &len);
    tl_comparison_print_table(f, &c);
    fclose(f);
    CHECK(strstr(buf, "not reached") != NULL);
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    CHECK(tl_comparison_print_tsv(f, &c, &e) == 0);
    fclose(f);
    CHECK(strncmp(buf, "run\tstrategy\t", 13) == 0 && strstr(buf, "\nb\tscratch\tscratch\t") != NULL);
    free(buf);
    tl_comparison_free(&c);
    free_runs(r, 2);
}

int main(void)
{
    test_noise();
    test_summary();
    test_transfer_helps();
    test_scratch_matches();
    test_saturated();
    test_unknown_sizes();
    test_no_validation();
    test_flags();
    test_json();
    return check_finish("compare");
}
