/* Calibration figures against values worked out by hand, and against a
 * NumPy computation on random data (skipped without /usr/bin/python3 and
 * numpy). */
#include "check.h"
#include "report/calibration.h"
#include "report/score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *PY = "/usr/bin/python3";

static void test_bins(void)
{
    CHECK(tl_calibration_bin(0.0, 5) == 0);
    CHECK(tl_calibration_bin(-0.5, 5) == 0);
    CHECK(tl_calibration_bin(0.2, 5) == 0);      /* right-closed: (0, 0.2] */
    CHECK(tl_calibration_bin(0.2000001, 5) == 1);
    CHECK(tl_calibration_bin(0.6, 5) == 2);      /* 0.6*5 rounds to 3.0000000000000004 */
    CHECK(tl_calibration_bin(0.99, 5) == 4);
    CHECK(tl_calibration_bin(1.0, 5) == 4);
    CHECK(tl_calibration_bin(1.5, 5) == 4);
    CHECK(tl_calibration_bin(NAN, 5) == 0);
    for (int b = 1; b <= 15; b++) /* every edge closes the bin below it */
        CHECK_MSG(tl_calibration_bin((double)b / 15, 15) == b - 1, "edge %d/15", b);
    CHECK(tl_calibration_bin(1.0 / 15 + 1e-12, 15) == 1);
}

/* Five bins; six inputs:
 *   bin 0 (0, 0.2]:   0.0 wrong, 0.2 wrong   -> conf 0.1,   acc 0,   gap 0.1
 *   bin 1 (0.2, 0.4]: 0.3 right              -> conf 0.3,   acc 1,   gap 0.7
 *   bin 4 (0.8, 1]:   0.9 right, 0.9 wrong, 0.85 right -> conf 0.88333, acc 2/3, gap 0.21667
 * ECE = (2*0.1 + 1*0.7 + 3*0.216667) / 6 = 1.55 / 6; MCE = 0.7. */
static void test_hand(void)
{
    tl_err e = {0};
    tl_calibration c;
    CHECK(tl_calibration_init(&c, 0, &e) < 0);
    CHECK_MSG(strstr(e.msg, "1..1000 bins") != NULL, "message: %s", e.msg);
    CHECK(tl_calibration_init(&c, 1001, &e) < 0);
    CHECK(tl_calibration_init(&c, 5, &e) == 0);
    tl_calibration_finish(&c); /* nothing added: all zero */
    CHECK(c.ece == 0 && c.mce == 0 && c.nll == 0 && c.brier == 0 && c.n == 0);
    const double conf[] = {0.0, 0.2, 0.3, 0.9, 0.9, 0.85};
    const int right[] = {0, 0, 1, 1, 0, 1};
    for (int i = 0; i < 6; i++)
        tl_calibration_add_confidence(&c, conf[i], right[i]);
    tl_calibration_finish(&c);
    CHECK(c.n == 6 && c.correct == 3 && c.nprob == 0);
    CHECK(c.bin_count[0] == 2 && c.bin_count[1] == 1 && c.bin_count[2] == 0 && c.bin_count[3] == 0 &&
          c.bin_count[4] == 3);
    CHECK_NEAR(c.bin_confidence[0], 0.1, 1e-15);
    CHECK_NEAR(c.bin_accuracy[1], 1.0, 1e-15);
    CHECK_NEAR(c.bin_confidence[4], 2.65 / 3, 1e-15);
    CHECK_NEAR(c.bin_accuracy[4], 2.0 / 3, 1e-15);
    CHECK(c.bin_confidence[2] == 0 && c.bin_accuracy[2] == 0);
    CHECK_NEAR(c.ece, (0.2 + 0.7 + 3 * (2.65 / 3 - 2.0 / 3)) / 6, 1e-15);
    CHECK_NEAR(c.mce, 0.7, 1e-15);
    CHECK_NEAR(c.mean_confidence, 3.15 / 6, 1e-15);
    CHECK(c.nll == 0 && c.brier == 0); /* no probabilities were given */
    tl_calibration_free(&c);

    /* With whole probability vectors: NLL and Brier too.
     *   p = (0.7, 0.2, 0.1), truth 0, pred 0:   -ln 0.7,  0.09 + 0.04 + 0.01 = 0.14
     *   p = (0.25, 0.5, 0.25), truth 2, pred 1: -ln 0.25, 0.0625 + 0.25 + 0.5625 = 0.875
     *   p = (0, 1, 0), truth 0, pred 1: -ln 1e-15 (clipped), 1 + 1 = 2 */
    CHECK(tl_calibration_init(&c, 10, &e) == 0);
    const float p[3][3] = {{0.7f, 0.2f, 0.1f}, {0.25f, 0.5f, 0.25f}, {0.f, 1.f, 0.f}};
    tl_calibration_add(&c, p[0], 3, 0, 0);
    tl_calibration_add(&c, p[1], 3, 2, 1);
    tl_calibration_add(&c, p[2], 3, 0, 1);
    tl_calibration_add(&c, p[2], 3, 3, 1); /* out of range: ignored */
    tl_calibration_finish(&c);
    CHECK(c.n == 3 && c.nprob == 3 && c.correct == 1);
    CHECK_NEAR(c.nll, (-log(0.7) - log(0.25) - log(1e-15)) / 3, 1e-6);
    CHECK_NEAR(c.brier, (0.14 + 0.875 + 2) / 3, 1e-6);
    /* bins: 0.5 in bin 4 (wrong), 0.7 in bin 6 (right), 1.0 in bin 9 (wrong) */
    CHECK(c.bin_count[4] == 1 && c.bin_count[6] == 1 && c.bin_count[9] == 1);
    CHECK_NEAR(c.ece, (0.5 + 0.3 + 1.0) / 3, 1e-6);
    CHECK_NEAR(c.mce, 1.0, 1e-6);
    tl_calibration_free(&c);
}

/* The scorer: confusion, top-k and calibration from the same inputs. */
static void test_scorer(void)
{
    tl_err e = {0};
    tl_scorer s;
    CHECK(tl_scorer_init(&s, 3, -1, 1, 15, &e) < 0);
    /* a top-k of the class count or more is an argument error, not silently top-5 (issue 15) */
    CHECK(tl_scorer_init(&s, 3, 3, 1, 15, &e) < 0 && e.kind == TL_ERR_ARG && strstr(e.msg, "--top-k 3"));
    CHECK(tl_scorer_init(&s, 3, 0, 1, 15, &e) == 0 && s.top_k == 5); /* the default */
    tl_scorer_free(&s);
    CHECK(tl_scorer_init(&s, 3, 2, 1, 15, &e) == 0);
    const float a[3] = {0.6f, 0.3f, 0.1f}, tie[3] = {0.4f, 0.4f, 0.2f};
    tl_scorer_add(&s, 0, -1, a);   /* top-1 hit */
    tl_scorer_add(&s, 1, -1, a);   /* rank 1: top-2 hit */
    tl_scorer_add(&s, 2, -1, a);   /* rank 2: miss */
    tl_scorer_add(&s, 1, -1, tie); /* pred = first of the tie (0); rank 1 (ties against) */
    tl_scorer_add(&s, 2, 2, a);    /* an explicit prediction is kept */
    tl_scorer_add(&s, -1, -1, a);  /* unlabelled */
    CHECK(tl_scorer_count(&s) == 5 && s.unlabelled == 1);
    CHECK(s.top_k_hits == 3 && s.top5_hits == 5);
    CHECK(s.conf.m[0] == 1 && s.conf.m[3] == 2 && s.conf.m[6] == 1 && s.conf.m[8] == 1);
    tl_calibration_finish(&s.cal);
    CHECK(s.cal.n == 5 && s.cal.correct == 2);
    CHECK_NEAR(s.cal.mean_confidence, (0.6 * 3 + 0.4 + 0.1) / 5, 1e-6);
    tl_scorer_free(&s);
    /* decision values: no calibration */
    CHECK(tl_scorer_init(&s, 3, 0, 0, 15, &e) == 0);
    const float d[3] = {-1.f, 2.f, 0.5f};
    tl_scorer_add(&s, 1, -1, d);
    CHECK(s.cal.nbins == 0 && s.conf.m[4] == 1 && s.top_k_hits == 1);
    tl_scorer_free(&s);
}

/* Random softmax rows, scored here and by NumPy from the same float32
 * values written with 9 significant digits (exact round trip). */
static void test_numpy(void)
{
    if (access(PY, X_OK) != 0 || system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) {
        printf("test_calibration: skipped NumPy comparison (no %s with numpy)\n", PY);
        return;
    }
    enum { N = 3000, K = 7, B = 15 };
    tl_rng rng;
    tl_rng_seed(&rng, 42);
    char path[] = "/tmp/tl_test_calibration_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    FILE *f = fdopen(fd, "w");
    tl_err e = {0};
    tl_calibration c;
    CHECK(tl_calibration_init(&c, B, &e) == 0);
    float p[K];
    for (int i = 0; i < N; i++) {
        /* Temperatures vary so confidences spread over every bin. */
        double t = 0.2 + 3 * tl_rng_uniform(&rng), z[K], sum = 0;
        for (int j = 0; j < K; j++)
            sum += z[j] = exp(tl_rng_normal(&rng) / t);
        int pred = 0;
        for (int j = 0; j < K; j++) {
            p[j] = (float)(z[j] / sum);
            if (p[j] > p[pred])
                pred = j;
        }
        /* the truth agrees with the prediction about 60 % of the time */
        int truth = tl_rng_uniform(&rng) < 0.6f ? pred : (int)tl_rng_below(&rng, K);
        tl_calibration_add(&c, p, K, truth, pred);
        fprintf(f, "%d %d", truth, pred);
        for (int j = 0; j < K; j++)
            fprintf(f, " %.9g", (double)p[j]);
        fputc('\n', f);
    }
    fclose(f);
    tl_calibration_finish(&c);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s -c '\n"
             "import numpy as np, sys\n"
             "a = np.loadtxt(sys.argv[1]); t = a[:,0].astype(int); q = a[:,1].astype(int)\n"
             "p = a[:,2:].astype(np.float32).astype(np.float64); n = len(t); B = %d\n"
             "conf = p[np.arange(n), q]; ok = (t == q)\n"
             "ece = 0.0; mce = 0.0\n"
             "for b in range(B):\n"
             "    lo, hi = b / B, (b + 1) / B\n"
             "    m = (conf > lo) & (conf <= hi) if b else (conf <= hi)\n"
             "    if m.sum():\n"
             "        g = abs(ok[m].mean() - conf[m].mean()); ece += m.sum() / n * g; mce = max(mce, g)\n"
             "nll = -np.log(np.clip(p[np.arange(n), t], 1e-15, None)).mean()\n"
             "y = np.eye(p.shape[1])[t]; brier = ((p - y) ** 2).sum(1).mean()\n"
             "print(\"%%.17g %%.17g %%.17g %%.17g\" %% (ece, mce, nll, brier))\n"
             "' %s",
             PY, B, path);
    FILE *py = popen(cmd, "r");
    double ref[4] = {-1, -1, -1, -1};
    int got = py ? fscanf(py, "%lf %lf %lf %lf", &ref[0], &ref[1], &ref[2], &ref[3]) : 0;
    int rc = py ? pclose(py) : -1;
    CHECK_MSG(got == 4 && rc == 0, "python failed (rc %d, %d values)", rc, got);
    CHECK_NEAR(c.ece, ref[0], 1e-12);
    CHECK_NEAR(c.mce, ref[1], 1e-12);
    CHECK_NEAR(c.nll, ref[2], 1e-12);
    CHECK_NEAR(c.brier, ref[3], 1e-12);
    /* the data are miscalibrated on purpose: the test can tell */
    CHECK_MSG(c.ece > 0.05, "ece %g", c.ece);
    int nonempty = 0;
    for (int b = 0; b < B; b++)
        nonempty += c.bin_count[b] > 0;
    CHECK_MSG(nonempty >= 12, "only %d of %d bins used", nonempty, B);
    printf("test_calibration: ECE %.6f MCE %.6f NLL %.6f Brier %.6f (NumPy %.6f %.6f %.6f %.6f)\n", c.ece, c.mce,
           c.nll, c.brier, ref[0], ref[1], ref[2], ref[3]);
    tl_calibration_free(&c);
    remove(path);
}

static char *render(const tl_calibration *c, int json)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (json) {
        fputs("{\"x\":1", f);
        tl_calibration_print_json(f, c);
        fputs("}", f);
    } else {
        tl_calibration_print(f, c);
    }
    fclose(f);
    return buf;
}

static void test_print(void)
{
    tl_err e = {0};
    tl_calibration c;
    tl_calibration_init(&c, 4, &e);
    tl_calibration_add_confidence(&c, 0.9, 1);
    tl_calibration_add_confidence(&c, 0.6, 0);
    tl_calibration_finish(&c);
    char *t = render(&c, 0);
    CHECK_MSG(strstr(t, "calibration (4 bins)  ECE 0.3500") != NULL, "text:\n%s", t);
    CHECK_MSG(strstr(t, "0.750-1.000") && strstr(t, "0.500-0.750") && !strstr(t, "0.000-0.250"), "text:\n%s", t);
    free(t);
    t = render(&c, 1);
    CHECK_MSG(strstr(t, "\"ece\":0.35") && strstr(t, "\"nll\":null") && strstr(t, "\"nbins\":4"), "json: %s", t);
    CHECK_MSG(strstr(t, "{\"count\":0,\"correct_count\":0,\"lower\":0,\"upper\":0.25,\"confidence\":null,\"bin_accuracy\":null}") != NULL,
              "json: %s", t);
    CHECK_MSG(strstr(t, "{\"count\":1,\"correct_count\":1,\"lower\":0.75,\"upper\":1,\"confidence\":0.9,\"bin_accuracy\":1}") != NULL,
              "json: %s", t);
    if (access(PY, X_OK) == 0) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "echo '%s' | %s -c 'import json,sys; d=json.load(sys.stdin); "
                 "assert len(d[\"bins\"])==4 and d[\"brier\"] is None'", t, PY);
        CHECK_MSG(system(cmd) == 0, "python rejected: %s", t);
    }
    free(t);
    t = render(NULL, 1);
    CHECK_MSG(!strcmp(t, "{\"x\":1,\"ece\":null,\"mce\":null,\"nll\":null,\"brier\":null,\"mean_confidence\":null,"
                         "\"nbins\":null,\"bins\":[]}"), "json: %s", t);
    free(t);
    tl_calibration_free(&c);
}

int main(void)
{
    test_bins();
    test_hand();
    test_scorer();
    test_numpy();
    test_print();
    return check_finish("calibration");
}
