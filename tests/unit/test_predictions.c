/* The predictions TSV reader on good files and on every kind of bad one,
 * and the writer's round trip. */
#include "check.h"
#include "io/predictions.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_path[64];

static const char *put(const char *text, size_t len)
{
    strcpy(tmp_path, "/tmp/tl_test_predictions_XXXXXX");
    int fd = mkstemp(tmp_path);
    if (fd < 0)
        return NULL;
    if (write(fd, text, len) != (ssize_t)len) {
        close(fd);
        return NULL;
    }
    close(fd);
    return tmp_path;
}

/* Reads a whole file; returns the rows read or -1 with e set. */
static int read_all(const char *text, const char *const *classes, int nclasses, tl_pred_row *rows, int max,
                    tl_err *e, int *k, int *probs)
{
    const char *p = put(text, strlen(text));
    if (!p)
        return -2;
    tl_pred_reader r;
    int n = 0, got;
    static float keep[16][8];
    if (tl_pred_open(&r, p, classes, nclasses, e)) {
        remove(p);
        return -1;
    }
    *k = r.k;
    *probs = r.probabilities;
    while ((got = tl_pred_next(&r, &rows[n < max ? n : max - 1], e)) == 1) {
        if (n < max && n < 16 && r.k <= 8) {
            memcpy(keep[n], rows[n].scores, sizeof(float) * (size_t)r.k);
            rows[n].scores = keep[n];
            rows[n].path = strdup(rows[n].path);
        }
        n++;
    }
    tl_pred_close(&r);
    remove(p);
    if (got < 0) { /* the rows read before the error are dropped */
        for (int i = 0; i < n && i < max && i < 16; i++)
            free((char *)rows[i].path);
        return -1;
    }
    return n;
}

static void free_rows(tl_pred_row *rows, int n)
{
    for (int i = 0; i < n; i++)
        free((char *)rows[i].path);
}

static void test_good(void)
{
    tl_err e = {0};
    tl_pred_row rows[8];
    int k, probs;
    const char *f = "#path\ttrue\tpred\tcat\tdog\tbird\n"
                    "a.jpg\tcat\tcat\t0.7\t0.2\t0.1\n"
                    "\n"
                    "#b.jpg\tdog\tcat\t0.5\t0.3\t0.2\n"   /* a path may start with '#' */
                    "c.jpg\t-\tbird\t0.1\t0.1\t0.8\n"
                    "d.jpg\t\t-\t0.1\t0.6\t0.3\n"         /* no truth, no prediction: argmax */
                    "e.jpg\tbird\t\t0.3333333\t0.3333333\t0.3333333\n"; /* tie: the first */
    int n = read_all(f, NULL, 0, rows, 8, &e, &k, &probs);
    CHECK_MSG(n == 5, "n %d: %s", n, e.msg);
    CHECK(k == 3 && probs == 1);
    if (n == 5) {
        CHECK(!strcmp(rows[0].path, "a.jpg") && rows[0].truth == 0 && rows[0].pred == 0 && rows[0].line == 2);
        CHECK(rows[0].scores[0] == 0.7f && rows[0].scores[2] == 0.1f);
        CHECK(!strcmp(rows[1].path, "#b.jpg") && rows[1].truth == 1 && rows[1].pred == 0 && rows[1].line == 4);
        CHECK(rows[2].truth == -1 && rows[2].pred == 2);
        CHECK(rows[3].truth == -1 && rows[3].pred == 1);
        CHECK(rows[4].truth == 2 && rows[4].pred == 0);
    }
    free_rows(rows, n < 8 ? n : 8);

    /* CRLF line endings read the same */
    const char *crlf = "#path\ttrue\tpred\tcat\tdog\r\nx\tdog\tdog\t0.4\t0.6\r\n";
    n = read_all(crlf, NULL, 0, rows, 8, &e, &k, &probs);
    CHECK_MSG(n == 1 && k == 2 && rows[0].truth == 1 && rows[0].scores[1] == 0.6f, "crlf: %d %s", n, e.msg);
    free_rows(rows, n > 0 ? n : 0);

    /* decision values: any finite numbers */
    const char *dec = "#path\ttrue\tpred:decision\tcat\tdog\nx\tcat\t-\t-1.5\t-2.25\ny\tdog\tdog\t3e2\t7\n";
    n = read_all(dec, NULL, 0, rows, 8, &e, &k, &probs);
    CHECK_MSG(n == 2 && probs == 0 && rows[0].pred == 0 && rows[0].scores[1] == -2.25f, "decision: %d %s", n, e.msg);
    free_rows(rows, n > 0 ? n : 0);

    /* header only: no rows, not an error */
    n = read_all("#path\ttrue\tpred\ta\tb\n", NULL, 0, rows, 8, &e, &k, &probs);
    CHECK(n == 0 && k == 2);

    /* no header, class indices inferred from the column count */
    n = read_all("x\t2\t1\t0.1\t0.6\t0.3\ny\t-\t0\t1\t0\t0\n", NULL, 0, rows, 8, &e, &k, &probs);
    CHECK_MSG(n == 2 && k == 3 && rows[0].truth == 2 && rows[0].pred == 1 && rows[1].truth == -1, "indices: %d %s",
              n, e.msg);
    free_rows(rows, n > 0 ? n : 0);

    /* no header, names given by the caller */
    const char *names[] = {"ant", "bee"};
    n = read_all("x\tbee\tant\t0.9\t0.1\n", names, 2, rows, 8, &e, &k, &probs);
    CHECK_MSG(n == 1 && k == 2 && rows[0].truth == 1 && rows[0].pred == 0, "names: %d %s", n, e.msg);
    free_rows(rows, n > 0 ? n : 0);

    /* a header wins over given names */
    n = read_all("#path\ttrue\tpred\tx\ty\tz\np\tz\tz\t0\t0\t1\n", names, 2, rows, 8, &e, &k, &probs);
    CHECK(n == 1 && k == 3 && rows[0].truth == 2);
    free_rows(rows, n > 0 ? n : 0);

    /* sums off by rounding are accepted as they are */
    n = read_all("#path\ttrue\tpred\ta\tb\nx\ta\ta\t0.333\t0.666\n", NULL, 0, rows, 8, &e, &k, &probs);
    CHECK_MSG(n == 1 && rows[0].scores[0] == 0.333f, "rounding: %d %s", n, e.msg);
    free_rows(rows, n > 0 ? n : 0);

    CHECK(tl_pred_is_header("#path\ttrue\tpred\ta"));
    CHECK(tl_pred_is_header("#path\ttrue\tpred:decision\ta"));
    CHECK(!tl_pred_is_header("#path\ttrue\tpredx\ta"));
    CHECK(!tl_pred_is_header("#path\tclass1\tp1"));
    CHECK(!tl_pred_is_header("#tl-features\t1"));
}

static void test_bad(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"", "empty file"},
        {"\n\r\n\n", "empty file"},
        {"#path\ttrue\tpred\n", "line 1: the header names no classes"},
        {"#path\ttrue\tpred\t\n", "line 1: header column 4 is empty"},
        {"#path\ttrue\tpred\ta\t\tb\nx\ta\ta\t1\t0\t0\n", "line 1: header column 5 is empty"},
        {"#path\ttrue\tpred\ta\tb\ta\n", "line 1: class 'a' appears twice"},
        {"#path\ttrue\tpred\ta\t-\n", "line 1: header column 5 is '-'"},
        {"#path\ttrue\tprediction\ta\tb\n", "line 1: not a predictions header"},
        {"#path\tclass1\tp1\n", "line 1: not a predictions header"},
        {"\n#path\ttrue\tpred\ta\tb\n", "line 2: not a predictions header"},
        {"#path\ttrue\tpred\ta\tb\nx\ta\ta\t1\t0\ny\ta\ta\t1\n", "line 3: 4 columns, expected 5 (path, true, pred and 2 class probabilities)"},
        {"#path\ttrue\tpred\ta\tb\nx\ta\ta\t1\t0\t0\n", "line 2: 6 columns, expected 5"},
        {"#path\ttrue\tpred\ta\tb\nx\ta\ta\t0.5\tabc\n", "line 2: column 5 ('abc') is not a finite number"},
        {"#path\ttrue\tpred\ta\tb\nx\ta\ta\t0.5\t0.5x\n", "line 2: column 5 ('0.5x') is not a finite number"},
        {"#path\ttrue\tpred\ta\tb\nx\ta\ta\t\t1\n", "line 2: column 4 ('') is not a finite number"},
        {"#path\ttrue\tpred\ta\tb\nx\ta\ta\tnan\t1\n", "line 2: column 4 ('nan') is not a finite number"},
        {"#path\ttrue\tpred:decision\ta\tb\nx\ta\ta\tinf\t1\n", "line 2: column 4 ('inf') is not a finite number"},
        {"#path\ttrue\tpred\ta\tb\nx\ta\ta\t1.2\t-0.2\n", "line 2: probability 1.2 of class 'a' is outside [0, 1]"},
        {"#path\ttrue\tpred\ta\tb\nx\ta\ta\t0.9\t-0.1\n", "line 2: probability -0.1 of class 'b' is outside [0, 1]"},
        {"#path\ttrue\tpred\ta\tb\nx\ta\ta\t0.5\t0.3\n", "line 2: probabilities sum to 0.8, not 1 (decision values"},
        {"#path\ttrue\tpred\ta\tb\nx\tcow\ta\t0.5\t0.5\n", "line 2: true class 'cow' is not one of the 2 classes of the header"},
        {"#path\ttrue\tpred\ta\tb\nx\ta\tA\t0.5\t0.5\n", "line 2: predicted class 'A' is not one of the 2 classes"},
        {"x\tcat\tdog\t0.5\t0.5\n", "line 1: no '#path<TAB>true<TAB>pred<TAB>CLASS...' header, and the classes are not indices 0..1"},
        {"x\t1\t0\n", "line 1: 3 columns, expected path, true, pred and a score per class"},
        {"x\t1\t5\t0.5\t0.5\n", "line 1: predicted class '5' is not one of the 2 classes"},
        {"x\t1\t0\t0.5\t0.5\ny\t1\t0\t0.5\t0.5\t0\n", "line 2: 6 columns, expected 5"},
    };
    int nc = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < nc; i++) {
        tl_err e = {0};
        tl_pred_row rows[4];
        int k, probs;
        int n = read_all(cases[i].text, NULL, 0, rows, 4, &e, &k, &probs);
        CHECK_MSG(n == -1, "case %d: read %d rows of bad input", i, n);
        if (n > 0)
            free_rows(rows, n < 4 ? n : 4);
        /* one line, naming the file */
        CHECK_MSG(strstr(e.msg, cases[i].want) != NULL && !strchr(e.msg, '\n') &&
                      !strncmp(e.msg, "/tmp/tl_test_predictions_", 25),
                  "case %d: message '%s', want '%s'", i, e.msg, cases[i].want);
    }
    /* a NUL byte */
    tl_err e = {0};
    static const char nul[] = "#path\ttrue\tpred\ta\tb\nx\0y\ta\ta\t1\t0\n";
    const char *p = put(nul, sizeof nul - 1);
    tl_pred_reader r;
    tl_pred_row row;
    CHECK(p && tl_pred_open(&r, p, NULL, 0, &e) == 0);
    CHECK(tl_pred_next(&r, &row, &e) == -1);
    CHECK_MSG(strstr(e.msg, "line 2: NUL byte") != NULL, "%s", e.msg);
    tl_pred_close(&r);
    remove(p);
    /* given names that cannot be class names */
    const char *dup[] = {"a", "a"};
    p = put("x\ta\ta\t1\t0\n", 11);
    CHECK(tl_pred_open(&r, p, dup, 2, &e) == -1);
    CHECK_MSG(strstr(e.msg, "class 'a' given twice") != NULL, "%s", e.msg);
    remove(p);
    CHECK(tl_pred_open(&r, "/nonexistent/p.tsv", NULL, 0, &e) == -1);
    CHECK_MSG(strstr(e.msg, "/nonexistent/p.tsv: No such file") != NULL, "%s", e.msg);
}

static void test_roundtrip(void)
{
    tl_err e = {0};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const char *classes[] = {"ants", "bees", "wasps"};
    tl_pred_writer w;
    CHECK(tl_pred_writer_init(&w, f, classes, 3, 1, &e) == 0);
    tl_rng rng;
    tl_rng_seed(&rng, 7);
    float want[20][3];
    for (int i = 0; i < 20; i++) {
        float a = tl_rng_uniform(&rng), b = (1 - a) * tl_rng_uniform(&rng);
        want[i][0] = a, want[i][1] = b, want[i][2] = 1 - a - b;
        char path[32];
        snprintf(path, sizeof path, "img %d.jpg", i);
        CHECK(tl_pred_write(&w, path, i % 4 ? i % 3 : -1, (i + 1) % 3, want[i], &e) == 0);
    }
    CHECK(tl_pred_write(&w, "tab\there", 0, 0, want[0], &e) == -1);
    CHECK_MSG(strstr(e.msg, "path 'tab\there' holds a tab") != NULL, "%s", e.msg);
    CHECK(tl_pred_write(&w, "x", 0, 3, want[0], &e) == -1);
    tl_pred_writer_free(&w);
    fclose(f);
    const char *bad[] = {"a", "b\tc"};
    CHECK(tl_pred_writer_init(&w, stdout, bad, 2, 1, &e) == -1);
    const char *dash[] = {"a", "-"};
    CHECK(tl_pred_writer_init(&w, stdout, dash, 2, 1, &e) == -1);
    CHECK(!strncmp(buf, "#path\ttrue\tpred\tants\tbees\twasps\n", 31));
    const char *p = put(buf, len);
    free(buf);
    tl_pred_reader r;
    CHECK(p && tl_pred_open(&r, p, NULL, 0, &e) == 0);
    tl_pred_row row;
    int i = 0;
    while (tl_pred_next(&r, &row, &e) == 1) {
        char path[32];
        snprintf(path, sizeof path, "img %d.jpg", i);
        CHECK(!strcmp(row.path, path));
        CHECK(row.truth == (i % 4 ? i % 3 : -1) && row.pred == (i + 1) % 3);
        CHECK_MSG(!memcmp(row.scores, want[i], sizeof want[i]), "row %d not bit-exact", i);
        i++;
    }
    CHECK(i == 20);
    tl_pred_close(&r);
    remove(p);
    /* decision values carry their marker; repeated names get their index */
    buf = NULL;
    f = open_memstream(&buf, &len);
    const char *twice[] = {"crane", "bees", "crane"};
    CHECK(tl_pred_writer_init(&w, f, twice, 3, 0, &e) == 0);
    const float s[3] = {-1, 0.5f, 2};
    CHECK(tl_pred_write(&w, "x", 2, 2, s, &e) == 0);
    tl_pred_writer_free(&w);
    fclose(f);
    CHECK_MSG(!strcmp(buf, "#path\ttrue\tpred:decision\tcrane\tbees\tcrane (2)\nx\tcrane (2)\tcrane (2)\t-1\t0.5\t2\n"),
              "%s", buf);
    p = put(buf, len);
    free(buf);
    CHECK(p && tl_pred_open(&r, p, NULL, 0, &e) == 0);
    CHECK(tl_pred_next(&r, &row, &e) == 1 && row.truth == 2 && row.pred == 2 && r.probabilities == 0);
    tl_pred_close(&r);
    remove(p);
}

static void test_sniff(void)
{
    const char *p = put("#path\ttrue\tpred\ta\tb\n", 20);
    CHECK(tl_pred_sniff_file(p) == 1);
    remove(p);
    p = put("#tl-features\t1\n", 15);
    CHECK(tl_pred_sniff_file(p) == 0);
    remove(p);
    CHECK(tl_pred_sniff_file("-") == 0);
    CHECK(tl_pred_sniff_file("/nonexistent") == 0);
}

int main(void)
{
    test_good();
    test_bad();
    test_roundtrip();
    test_sniff();
    return check_finish("predictions");
}
