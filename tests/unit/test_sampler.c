/* The epoch order (train/sampler.h): the shuffle visits every image once
 * and is the loop's historic order (seed stream 0xE90C + epoch); the
 * balanced sampler gives every class about the same share of an epoch,
 * multi-label images by their rarest label; both are fixed by the seed. */
#include "check.h"
#include "io/dataset.h"
#include "train/sampler.h"

#include <stdlib.h>
#include <string.h>

static void test_shuffle(void)
{
    enum { N = 500 };
    tl_sample items[N];
    memset(items, 0, sizeof items);
    for (int i = 0; i < N; i++)
        items[i].label = i % 5;
    tl_dataset d = {items, N, NULL, 5, 0};
    tl_source src = {&d, NULL};
    int64_t ids[N], order[N], ref[N];
    for (int i = 0; i < N; i++)
        ids[i] = i;
    tl_err e = {0};
    tl_sampler s;
    CHECK(tl_sampler_init(&s, TL_SAMPLER_SHUFFLE, &src, ids, N, &e) == 0);
    tl_sampler_order(&s, 7, 3, ids, N, order);
    memcpy(ref, ids, sizeof ref);
    tl_rng r;
    tl_rng_seed_stream(&r, 7, 0xE90C + 3);
    tl_rng_shuffle(&r, ref, N);
    CHECK(!memcmp(order, ref, sizeof ref));
    tl_sampler_free(&s);
}

static void test_balanced(void)
{
    /* 10:1:1 */
    enum { N = 1200 };
    tl_sample *items = calloc(N, sizeof *items);
    for (int i = 0; i < N; i++)
        items[i].label = i < 1000 ? 0 : i < 1100 ? 1 : 2;
    tl_dataset d = {items, N, NULL, 3, 0};
    tl_source src = {&d, NULL};
    int64_t *ids = malloc(sizeof *ids * N), *order = malloc(sizeof *order * N), *again = malloc(sizeof *again * N);
    for (int i = 0; i < N; i++)
        ids[i] = i;
    tl_err e = {0};
    tl_sampler s;
    CHECK(tl_sampler_init(&s, TL_SAMPLER_BALANCED, &src, ids, N, &e) == 0);
    int64_t count[3] = {0, 0, 0};
    for (int ep = 0; ep < 10; ep++) {
        tl_sampler_order(&s, 1, ep, ids, N, order);
        for (int i = 0; i < N; i++)
            count[items[order[i]].label]++;
    }
    /* 12000 draws, a third each: within 3% (binomial sd ~52, about 0.4%) */
    for (int c = 0; c < 3; c++)
        CHECK_MSG(count[c] > 3880 && count[c] < 4120, "class %d drawn %lld times of 12000", c, (long long)count[c]);
    tl_sampler_order(&s, 1, 4, ids, N, order);
    tl_sampler_order(&s, 1, 4, ids, N, again);
    CHECK(!memcmp(order, again, sizeof *order * N));
    tl_sampler_order(&s, 2, 4, ids, N, again);
    CHECK(memcmp(order, again, sizeof *order * N));
    tl_sampler_free(&s);

    /* multi-label: images with only a rare label come as often as images
     * with the common one; an image holding both weighs as the rare one */
    int common[1] = {0}, rare[1] = {1}, both[2] = {0, 1};
    for (int i = 0; i < N; i++) {
        items[i].label = i < 900 ? 1 : i < 1000 ? 2 : 1;
        items[i].labels = i < 900 ? common : i < 1000 ? both : rare;
        if (i >= 1100)
            items[i].label = 0, items[i].labels = NULL; /* none of the classes */
    }
    d.multilabel = 1;
    d.nclasses = 2;
    CHECK(tl_sampler_init(&s, TL_SAMPLER_BALANCED, &src, ids, N, &e) == 0);
    int64_t kinds[4] = {0};
    for (int ep = 0; ep < 10; ep++) {
        tl_sampler_order(&s, 3, ep, ids, N, order);
        for (int i = 0; i < N; i++)
            kinds[order[i] < 900 ? 0 : order[i] < 1000 ? 1 : order[i] < 1100 ? 2 : 3]++;
    }
    /* weights: common 1/1000 each (900 images), both 1/200 (100), rare 1/200 (100), none 1/100 (100):
     * shares 0.9 : 0.5 : 0.5 : 1 of 2.9 */
    double want[4] = {0.9 / 2.9, 0.5 / 2.9, 0.5 / 2.9, 1 / 2.9};
    for (int g = 0; g < 4; g++)
        CHECK_MSG(llabs(kinds[g] - (int64_t)(want[g] * 12000)) < 300, "group %d drawn %lld times, want about %.0f", g,
                  (long long)kinds[g], want[g] * 12000);
    tl_sampler_free(&s);
    free(items), free(ids), free(order), free(again);
}

int main(void)
{
    test_shuffle();
    test_balanced();
    return check_finish("sampler");
}
