/* Advice by data-set size: the thresholds and the warnings. */
#include "check.h"
#include "report/advise.h"

#include <stdlib.h>
#include <string.h>

static int strategy_of(const int64_t *counts, int k, char **text)
{
    tl_err e;
    tl_advice a;
    tl_strbuf out = {0};
    CHECK(tl_advise(counts, NULL, k, "d", &a, &out, &e) == 0);
    if (text)
        *text = out.s;
    else
        tl_strbuf_free(&out);
    return a.strategy;
}

int main(void)
{
    int64_t two_small[2] = {500, 499};
    CHECK(strategy_of(two_small, 2, NULL) == TL_ADVISE_FEATURES);
    int64_t two_1000[2] = {500, 500};
    CHECK(strategy_of(two_1000, 2, NULL) == TL_ADVISE_PARTIAL);
    int64_t two_big[2] = {50000, 50000};
    CHECK(strategy_of(two_big, 2, NULL) == TL_ADVISE_FULL);
    int64_t two_below_big[2] = {50000, 49999};
    CHECK(strategy_of(two_below_big, 2, NULL) == TL_ADVISE_PARTIAL);

    /* 2,000 images over 100 classes is 20 per class: still features. */
    int64_t many[100];
    for (int c = 0; c < 100; c++)
        many[c] = 20;
    CHECK(strategy_of(many, 100, NULL) == TL_ADVISE_FEATURES);

    char *text = NULL;
    int64_t skewed[3] = {900, 100, 5};
    strategy_of(skewed, 3, &text);
    CHECK_MSG(text && strstr(text, "imbalanced (180.0 : 1)"), "imbalance warning: %s", text ? text : "(null)");
    CHECK_MSG(text && strstr(text, "smallest class has 5 images"), "tiny class warning");
    free(text);

    int64_t empty[3] = {400, 0, 400};
    tl_err e;
    tl_advice a;
    tl_strbuf out = {0};
    CHECK(tl_advise(empty, (const char *const[]){"a", "b", "c"}, 3, "d", &a, &out, &e) == 0);
    CHECK(a.empty == 1 && a.min_class == 400 && a.n == 800);
    CHECK_MSG(strstr(out.s, "1 class has no images"), "empty class warning: %s", out.s);
    CHECK(strstr(out.s, "a 400, b 0, c 400") != NULL);
    /* Every line fits an 80-column terminal. */
    for (char *p = out.s, *nl; (nl = strchr(p, '\n')); p = nl + 1)
        CHECK_MSG(nl - p <= 80, "line of %d columns", (int)(nl - p));
    tl_strbuf_free(&out);

    int64_t one[1] = {10};
    tl_strbuf o1 = {0};
    CHECK(tl_advise(one, NULL, 1, "d", &a, &o1, &e) == 0);
    CHECK(strstr(o1.s, "at least two classes") != NULL);
    tl_strbuf_free(&o1);
    CHECK(tl_advise(one, NULL, 0, "d", &a, &o1, &e) < 0);
    return check_finish("advise");
}
