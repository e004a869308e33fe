/* Metrics against hand-computed values; printed forms checked for shape and
 * the JSON parsed back with Python when it is available. */
#include "check.h"
#include "report/metrics.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *PY = "/usr/bin/python3";

/* 4 classes; class 2 is only predicted, class 3 never appears. */
static void fill(tl_confusion *c)
{
    static const int m[4][4] = {{5, 1, 0, 0}, {2, 3, 1, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}};
    for (int t = 0; t < 4; t++)
        for (int p = 0; p < 4; p++)
            for (int r = 0; r < m[t][p]; r++)
                tl_confusion_add(c, t, p);
}

static void test_values(void)
{
    tl_err e = {0};
    tl_confusion c;
    CHECK(tl_confusion_init(&c, 4, &e) == 0);
    fill(&c);
    tl_confusion_add(&c, 4, 0); /* out of range: ignored */
    tl_confusion_add(&c, 0, -1);
    CHECK(c.m[0] == 5 && c.m[1] == 1 && c.m[4] == 2 && c.m[6] == 1);
    tl_metrics m;
    CHECK(tl_metrics_compute(&c, &m, &e) == 0);
    CHECK(m.n == 12 && m.correct == 8);
    CHECK_NEAR(m.accuracy, 8.0 / 12, 1e-12);
    CHECK_NEAR(m.micro_f1, 8.0 / 12, 1e-12);
    CHECK_NEAR(m.per_class[0].precision, 5.0 / 7, 1e-12);
    CHECK_NEAR(m.per_class[0].recall, 5.0 / 6, 1e-12);
    CHECK_NEAR(m.per_class[0].f1, 10.0 / 13, 1e-12);
    CHECK_NEAR(m.per_class[1].precision, 0.75, 1e-12);
    CHECK_NEAR(m.per_class[1].recall, 0.5, 1e-12);
    CHECK_NEAR(m.per_class[1].f1, 0.6, 1e-12);
    CHECK(m.per_class[2].precision == 0 && m.per_class[2].recall == 0 && m.per_class[2].f1 == 0);
    CHECK(m.per_class[2].support == 0 && m.per_class[2].predicted == 1);
    CHECK(m.per_class[3].support == 0 && m.per_class[3].predicted == 0);
    CHECK(m.per_class[0].support == 6 && m.per_class[0].predicted == 7);
    /* class 3 occurs nowhere and is left out of the macro averages */
    CHECK_NEAR(m.macro_precision, (5.0 / 7 + 0.75) / 3, 1e-12);
    CHECK_NEAR(m.macro_recall, (5.0 / 6 + 0.5) / 3, 1e-12);
    CHECK_NEAR(m.macro_f1, (10.0 / 13 + 0.6) / 3, 1e-12);
    CHECK_NEAR(m.weighted_f1, (6 * 10.0 / 13 + 6 * 0.6) / 12, 1e-12);
    /* balanced accuracy: mean recall over classes with support (0 and 1;
     * class 2 was only predicted), as balanced_accuracy_score */
    CHECK_NEAR(m.balanced_accuracy, (5.0 / 6 + 0.5) / 2, 1e-12);
    tl_metrics_free(&m);
    tl_confusion_free(&c);
}

static void test_edges(void)
{
    tl_err e = {0};
    tl_confusion c;
    CHECK(tl_confusion_init(&c, 0, &e) < 0);
    CHECK_MSG(strstr(e.msg, "at least 1 class") != NULL, "message: %s", e.msg);
    CHECK(tl_confusion_init(&c, 3, &e) == 0);
    tl_metrics m;
    CHECK(tl_metrics_compute(&c, &m, &e) == 0); /* no samples: all zero, no division by zero */
    CHECK(m.n == 0 && m.accuracy == 0 && m.macro_f1 == 0 && m.weighted_f1 == 0);
    tl_metrics_free(&m);
    /* perfect predictions */
    for (int i = 0; i < 30; i++)
        tl_confusion_add(&c, i % 3, i % 3);
    CHECK(tl_metrics_compute(&c, &m, &e) == 0);
    CHECK(m.accuracy == 1 && m.macro_f1 == 1 && m.weighted_f1 == 1 && m.macro_precision == 1);
    tl_metrics_free(&m);
    tl_confusion_free(&c);
    tl_confusion empty = {0};
    CHECK(tl_metrics_compute(&empty, &m, &e) < 0);
}

static char *render(void (*fn)(FILE *, const void *, const void *), const void *a, const void *b)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(f, a, b);
    fclose(f);
    return buf;
}

static void table_fn(FILE *f, const void *m, const void *names) { tl_metrics_print_table(f, m, names); }
static void confusion_fn(FILE *f, const void *c, const void *names) { tl_confusion_print(f, c, names); }

/* Every line of a block of rows has the same length (columns aligned). */
static int same_lengths(const char *s, int first, int count)
{
    int line = 0, len = -1, cur = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\n') {
            if (line >= first && line < first + count) {
                if (len >= 0 && cur != len)
                    return 0;
                len = cur;
            }
            line++;
            cur = 0;
        } else {
            cur++;
        }
    }
    return len > 0;
}

static void test_text(void)
{
    tl_err e = {0};
    tl_confusion c;
    tl_confusion_init(&c, 4, &e);
    fill(&c);
    tl_metrics m;
    tl_metrics_compute(&c, &m, &e);
    const char *names[] = {"cat", "a_very_long_class_name_that_goes_on_and_on", "dog", "bird"};
    char *t = render(table_fn, &m, names);
    CHECK_MSG(strncmp(t, "accuracy 0.6667 (8 of 12)\n", 26) == 0, "table:\n%s", t);
    CHECK(strstr(t, "precision") && strstr(t, "recall") && strstr(t, "support"));
    CHECK(strstr(t, "macro avg") && strstr(t, "weighted avg"));
    /* micro averages of single-label data are the accuracy */
    CHECK_MSG(strstr(t, "\nmicro avg                    0.6667     0.6667     0.6667         12\n") != NULL,
              "table:\n%s", t);
    CHECK(strstr(t, "a_very_long_class_name_~") != NULL);
    CHECK(strstr(t, "0.7143") != NULL); /* 5/7 */
    CHECK(strstr(t, "\nbalanced accuracy 0.6667 (mean per-class recall)\n") != NULL);
    CHECK_MSG(same_lengths(t, 3, 5), "table not aligned:\n%s", t);
    free(t);
    t = render(table_fn, &m, NULL); /* no names: indices */
    CHECK(strstr(t, "\n3 ") != NULL);
    free(t);
    t = render(confusion_fn, &c, names);
    CHECK_MSG(strncmp(t, "true \\ pred", 11) == 0, "confusion:\n%s", t);
    CHECK_MSG(same_lengths(t, 0, 5), "confusion not aligned:\n%s", t);
    CHECK(strstr(t, "a_very_~") != NULL);
    free(t);
    tl_metrics_free(&m);
    tl_confusion_free(&c);
}

static void test_json(void)
{
    tl_err e = {0};
    tl_confusion c;
    tl_confusion_init(&c, 4, &e);
    fill(&c);
    tl_metrics m;
    tl_metrics_compute(&c, &m, &e);
    /* quote, backslash, newline, tab, control byte, UTF-8 */
    const char *names[] = {"say \"hi\"\\", "two\nlines\t\x01", "caf\xc3\xa9", "bird"};
    char path[] = "/tmp/tl_test_metrics_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    FILE *f = fdopen(fd, "w");
    tl_metrics_print_json(f, &m, &c, names);
    fclose(f);
    f = fopen(path, "r");
    char line[4096];
    CHECK(fgets(line, sizeof line, f) != NULL);
    CHECK(fgetc(f) == EOF); /* exactly one line */
    fclose(f);
    CHECK(strncmp(line, "{\"n\":12,\"correct\":8,", 20) == 0);
    CHECK(strstr(line, "\"confusion\":[[5,1,0,0],[2,3,1,0],[0,0,0,0],[0,0,0,0]]") != NULL);
    if (access(PY, X_OK) != 0) {
        printf("test_metrics: skipped JSON parse check (no %s)\n", PY);
    } else {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "%s -c 'import json,sys; o=json.load(sys.stdin); "
                 "assert o[\"classes\"]==[\"say \\\"hi\\\"\\\\\",\"two\\nlines\\t\\x01\",\"caf\\u00e9\",\"bird\"], o[\"classes\"]; "
                 "assert abs(o[\"accuracy\"]-8/12)<1e-15; assert abs(o[\"per_class\"][0][\"precision\"]-5/7)<1e-15; "
                 "assert o[\"per_class\"][1][\"support\"]==6; assert len(o[\"confusion\"])==4' < %s",
                 PY, path);
        int rc = system(cmd);
        CHECK_MSG(rc == 0, "python rejected: %s", line);
    }
    remove(path);
    tl_metrics_free(&m);
    tl_confusion_free(&c);
}

static void test_json_number(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tl_json_key_number(f, "a", 0.1);
    tl_json_key_number(f, "b", 2.0 / 3);
    tl_json_key_number(f, "c", 1);
    tl_json_key_number(f, "d", NAN);
    tl_json_key_number(f, "e", -INFINITY);
    fclose(f);
    CHECK_MSG(!strcmp(buf, ",\"a\":0.1,\"b\":0.6666666666666666,\"c\":1,\"d\":null,\"e\":null"), "%s", buf);
    free(buf);
}

/* Issue 15: a confusion matrix of 20,000 classes was a 3.2 GB allocation.
 * Above TL_CONFUSION_DENSE_MAX classes it keeps per-class counts and the
 * cells that occur: the same metrics, memory by the data. */
static void test_sparse_confusion(void)
{
    int k = 20000;
    tl_err e = {0};
    tl_confusion c;
    CHECK(tl_confusion_init(&c, k, &e) == 0 && c.m == NULL);
    /* 100,000 inputs: truth t, predicted t or one of a few neighbours */
    int64_t correct = 0;
    unsigned s = 7;
    for (int i = 0; i < 100000; i++) {
        s = s * 1103515245u + 12345u;
        int t = (int)((s >> 8) % (unsigned)k), p = (s >> 20) % 3 ? t : (t + 1 + (int)((s >> 4) % 3)) % k;
        correct += t == p;
        tl_confusion_add(&c, t, p);
    }
    tl_confusion_add(&c, 5, 6);
    tl_confusion_add(&c, 5, 6);
    tl_metrics m;
    CHECK(tl_metrics_compute(&c, &m, &e) == 0);
    CHECK(m.n == 100002 && m.correct == correct);
    CHECK(tl_confusion_at(&c, 5, 6) >= 2 && tl_confusion_at(&c, 7, 7) == c.diag[7]);
    int64_t total = 0;
    for (int64_t i = 0; i < c.nsorted; i++)
        total += c.cell_count[i];
    CHECK(total == m.n - m.correct);
    CHECK(c.nsorted <= m.n - m.correct);
    /* the JSON lists non-zero cells, not 400 million */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tl_metrics_print_json(f, &m, &c, NULL);
    fclose(f);
    CHECK(strstr(buf, "\"confusion_cells\":[[") && !strstr(buf, "\"confusion\":") && len < 20000000);
    free(buf);
    tl_metrics_free(&m);
    tl_confusion_free(&c);
}

int main(void)
{
    test_sparse_confusion();
    test_json_number();
    test_values();
    test_edges();
    test_text();
    test_json();
    return check_finish("metrics");
}
