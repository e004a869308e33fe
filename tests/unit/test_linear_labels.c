/* Linear heads with class weights and on multi-label data, checked by
 * identities rather than stored numbers:
 *  - integer class weights equal repeating the samples of that class
 *    (logistic regression; the two-class SVM, whose one problem weighs
 *    both sides);
 *  - a multi-label (one-vs-rest) logistic head equals, class by class, a
 *    two-class softmax head on that class's yes/no labels trained with
 *    C/2 (the softmax's two weight rows share the penalty); positive
 *    weights equal the same head with class weights;
 *  - a multi-label SVM equals, class by class, the two-class SVM;
 *  - bit-identical results for any thread count;
 *  - scikit-learn's balanced weights, and the weights file's errors. */
#include "check.h"
#include "train/class_weights.h"
#include "train/linear_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { D = 6 };

/* n samples of k overlapping classes (class i % k, or the counts given),
 * and for multi-label use three labels, each a noisy function of x. */
static float *make_x(int64_t n, const int *y, int k, uint64_t seed)
{
    float *X = malloc(sizeof(float) * n * D);
    tl_rng r;
    tl_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < D; j++)
            X[i * D + j] = (float)((j % k == y[i] ? 1.5 : 0.0) + tl_rng_normal(&r) + 3.0 * j);
    return X;
}


/* Decision value of class c of a model on x. */
static double score(const tl_linear_model *m, const float *x, int c)
{
    float s[8];
    tl_linear_scores(m, x, s);
    return s[c];
}

static void test_balanced(void)
{
    int y[10] = {0, 0, 0, 0, 0, 0, 2, 2, -1, 0}; /* 7 of class 0, 2 of class 2, none of 1, one unlabelled */
    double w[3];
    tl_class_weights_balanced(y, 10, 3, w);
    CHECK_NEAR(w[0], 9.0 / (2 * 7), 1e-15);
    CHECK_NEAR(w[1], 1.0, 0);
    CHECK_NEAR(w[2], 9.0 / (2 * 2), 1e-15);
    unsigned char Y[4 * 2] = {1, 1, 1, 1, 0, 1, 0, 0}, lab[4] = {1, 1, 1, 0};
    double pos[2], neg[2];
    tl_class_weights_balanced_multi(Y, lab, 4, 2, pos, neg);
    CHECK_NEAR(pos[0], 3.0 / 4, 1e-15); /* 2 positives of 3 labelled */
    CHECK_NEAR(neg[0], 3.0 / 2, 1e-15);
    CHECK_NEAR(pos[1], 1.0, 0); /* every labelled sample is positive: no balance possible */
    CHECK_NEAR(neg[1], 1.0, 0);
}

static void test_weights_file(void)
{
    char dir[] = "/tmp/tl-cw-XXXXXX", p[64];
    if (!mkdtemp(dir))
        return;
    snprintf(p, sizeof p, "%s/w.tsv", dir);
    char *classes[] = {"ants", "bees", "tench, Tinca tinca"};
    double w[3];
    tl_err e = {0};
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"# weights\nbees\t2.5\r\n\ntench, Tinca tinca\t0.5\n", NULL},
        {"ants\t1\nwasps\t2\n", "w.tsv: line 2: no class 'wasps'"},
        {"ants\t1\nants\t2\n", "w.tsv: line 2: class 'ants' given twice"},
        {"ants\tlots\n", "w.tsv: line 1: weight 'lots'"},
        {"ants\t-1\n", "w.tsv: line 1: weight '-1'"},
        {"ants\tinf\n", "w.tsv: line 1: weight 'inf'"},
        {"ants 2\n", "w.tsv: line 1: expected CLASS<TAB>WEIGHT"},
        {"ants\t0\nbees\t0\ntench, Tinca tinca\t0\n", "every class weight is 0"},
        {"# nothing\n", "no class weights"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(p, "w");
        fputs(cases[i].text, f);
        fclose(f);
        int rc = tl_class_weights_read(p, classes, 3, w, &e);
        if (!cases[i].err) {
            CHECK_MSG(rc == 0, "%s", e.msg);
            CHECK(w[0] == 1.0 && w[1] == 2.5 && w[2] == 0.5);
        } else {
            CHECK_MSG(rc < 0 && strstr(e.msg, cases[i].err), "case %zu: %s", i, rc ? e.msg : "accepted");
        }
    }
    CHECK(tl_class_weights_read("/nonexistent/w.tsv", classes, 3, w, &e) < 0 && strstr(e.msg, "/nonexistent"));
    unlink(p);
    rmdir(dir);
}

/* Weight 3 on class 1 == class 1's samples three times. The solvers are
 * called on the features as given (the public entry standardises on the
 * sample set, which repeating changes). */
static void test_weights_repeat(void)
{
    enum { N = 120 };
    int y[N], yr[N * 3];
    for (int i = 0; i < N; i++)
        y[i] = i % 5 == 0 ? 1 : i % 5 == 1 ? 2 : 0;
    float *X = make_x(N, y, 3, 3);
    for (int i = 0; i < N * D; i++)
        X[i] -= 3.0f * (float)(i % D); /* roughly centred, as the solvers expect */
    float *Xr = malloc(sizeof(float) * N * 3 * D);
    int nr = 0;
    for (int i = 0; i < N; i++)
        for (int t = 0; t < (y[i] == 1 ? 3 : 1); t++) {
            memcpy(Xr + (size_t)nr * D, X + (size_t)i * D, sizeof(float) * D);
            yr[nr++] = y[i];
        }
    tl_err e = {0};
    for (int kind = TL_HEAD_LOGREG; kind <= TL_HEAD_SVM; kind++) {
        /* the SVM weighs only the positives of each one-vs-rest problem
         * (liblinear), so the identity holds for its two-class problem */
        int k = kind == TL_HEAD_SVM ? 2 : 3;
        int yk[N], ykr[N * 3];
        for (int i = 0; i < N; i++)
            yk[i] = kind == TL_HEAD_SVM ? y[i] == 1 : y[i];
        for (int i = 0; i < nr; i++)
            ykr[i] = kind == TL_HEAD_SVM ? yr[i] == 1 : yr[i];
        double cw[3] = {1, 3, 1}, sw[N];
        for (int i = 0; i < N; i++)
            sw[i] = cw[yk[i]];
        tl_linear_opts o;
        tl_linear_opts_default(&o);
        o.kind = kind;
        o.tol = kind == TL_HEAD_SVM ? 1e-7 : 1e-10;
        o.max_iter = 100000;
        double Ww[3 * D + 3], bw[3], Wr[3 * D + 3], br[3];
        tl_linear_problem pw = {X, N, D, k, yk, NULL, sw, cw, NULL, NULL};
        tl_linear_problem pr = {Xr, nr, D, k, ykr, NULL, NULL, NULL, NULL, NULL};
        int rc = kind == TL_HEAD_LOGREG ? tl_logreg_fit(&pw, &o, NULL, NULL, NULL, Ww, bw, &e)
                                        : tl_svm_fit(&pw, &o, NULL, NULL, NULL, Ww, bw, &e);
        CHECK_MSG(rc == 0, "%s", e.msg);
        rc = kind == TL_HEAD_LOGREG ? tl_logreg_fit(&pr, &o, NULL, NULL, NULL, Wr, br, &e)
                                    : tl_svm_fit(&pr, &o, NULL, NULL, NULL, Wr, br, &e);
        CHECK_MSG(rc == 0, "%s", e.msg);
        double worst = 0, scale = 0;
        for (int i = 0; i < k * D; i++) {
            worst = fmax(worst, fabs(Ww[i] - Wr[i]));
            scale = fmax(scale, fabs(Wr[i]));
        }
        for (int c = 0; c < k; c++)
            worst = fmax(worst, fabs(bw[c] - br[c]));
        CHECK_MSG(worst <= 1e-5 * scale, "%s: weighted vs repeated differ by %g (scale %g)",
                  kind ? "svm" : "logreg", worst, scale);
    }
    free(X);
    free(Xr);
}

/* One-vs-rest logistic regression == per-class two-class softmax at C/2. */
static void test_multilabel(void)
{
    enum { N = 150, K = 3 };
    int y[N];
    for (int i = 0; i < N; i++)
        y[i] = i % K;
    float *X = make_x(N, y, K, 5);
    unsigned char Y[N * K];
    tl_rng r;
    tl_rng_seed(&r, 9);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < K; c++) /* label c: mostly class c, sometimes another's */
            Y[i * K + c] = y[i] == c ? tl_rng_uniform(&r) < 0.9 : tl_rng_uniform(&r) < 0.25;
    tl_err e = {0};
    double pw[K] = {2, 1, 3};
    for (int weighted = 0; weighted < 2; weighted++)
        for (int kind = TL_HEAD_LOGREG; kind <= TL_HEAD_SVM; kind++) {
            tl_linear_opts o;
            tl_linear_opts_default(&o);
            o.kind = kind;
            o.tol = kind == TL_HEAD_SVM ? 1e-6 : 1e-9;
            o.max_iter = 100000;
            o.pos_weight = weighted ? pw : NULL;
            tl_linear_model m;
            int rc = tl_linear_train_multilabel(X, Y, N, D, K, &o, NULL, NULL, NULL, &m, &e);
            CHECK_MSG(rc == 0, "%s", e.msg);
            if (rc)
                continue;
            CHECK(m.multilabel && m.k == K);
            double worst = 0, scale = 0;
            for (int c = 0; c < K; c++) {
                int yc[N];
                for (int i = 0; i < N; i++)
                    yc[i] = Y[i * K + c];
                tl_linear_opts ob = o;
                ob.pos_weight = NULL;
                double cw[2] = {1, pw[c]};
                ob.class_weight = weighted ? cw : NULL;
                ob.C = kind == TL_HEAD_LOGREG ? 0.5 : 1.0;
                tl_linear_model mb;
                rc = tl_linear_train(X, yc, N, D, 2, &ob, NULL, NULL, NULL, &mb, &e);
                CHECK_MSG(rc == 0, "%s", e.msg);
                for (int i = 0; rc == 0 && i < N; i++) {
                    const float *x = X + (size_t)i * D;
                    double want = score(&mb, x, 1) - (kind == TL_HEAD_LOGREG ? score(&mb, x, 0) : 0);
                    worst = fmax(worst, fabs(score(&m, x, c) - want));
                    scale = fmax(scale, fabs(want));
                }
                if (rc == 0)
                    tl_linear_model_free(&mb);
            }
            CHECK_MSG(worst <= 2e-5 * scale, "%s%s: one-vs-rest vs two-class heads differ by %g (scale %g)",
                      kind ? "svm" : "logreg", weighted ? " weighted" : "", worst, scale);
            tl_linear_model_free(&m);
        }
    /* thread count does not change a bit */
    tl_pool *p1 = tl_pool_new(1, &e), *p3 = tl_pool_new(3, &e);
    for (int kind = TL_HEAD_LOGREG; kind <= TL_HEAD_SVM; kind++) {
        tl_linear_opts o;
        tl_linear_opts_default(&o);
        o.kind = kind;
        tl_linear_model a, b;
        CHECK(tl_linear_train_multilabel(X, Y, N, D, K, &o, p1, NULL, NULL, &a, &e) == 0);
        CHECK(tl_linear_train_multilabel(X, Y, N, D, K, &o, p3, NULL, NULL, &b, &e) == 0);
        CHECK(!memcmp(a.W, b.W, sizeof(float) * K * D) && !memcmp(a.b, b.b, sizeof(float) * K));
        tl_linear_model_free(&a);
        tl_linear_model_free(&b);
    }
    tl_pool_free(p1);
    tl_pool_free(p3);
    /* bad weights are refused */
    double bad[K] = {1, NAN, 1};
    tl_linear_opts o;
    tl_linear_opts_default(&o);
    o.pos_weight = bad;
    tl_linear_model m;
    CHECK(tl_linear_train_multilabel(X, Y, N, D, K, &o, NULL, NULL, NULL, &m, &e) < 0 && strstr(e.msg, "weight"));
    free(X);
}

int main(void)
{
    test_balanced();
    test_weights_file();
    test_weights_repeat();
    test_multilabel();
    return check_finish("linear_labels");
}
