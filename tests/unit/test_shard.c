/* Sharded extraction's rules (io/shard.h): K/N parsing, the documented
 * hash (FNV-1a 64 of the key, mod N), keys relative to the data, the
 * canonical order and a plan that every image enters exactly once. */
#include "check.h"
#include "io/shard.h"

#include <stdlib.h>
#include <string.h>

static void test_parse(void)
{
    int k = 0, n = 0;
    CHECK(tl_shard_parse("2/5", &k, &n) == 0 && k == 2 && n == 5);
    CHECK(tl_shard_parse("1/1", &k, &n) == 0 && k == 1 && n == 1);
    const char *bad[] = {"0/3", "4/3", "3", "/3", "1/", "1/0", "x/2", "1/2x", "-1/2", "1/-2", " 1/2", "1/ 2", "+1/2",
                         "1/1000001", "99999999999999999999/2", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(tl_shard_parse(bad[i], &k, &n) < 0, "accepted '%s'", bad[i]);
}

static void test_hash(void)
{
    /* FNV-1a 64: offset basis 0xcbf29ce484222325 for "", 0xaf63dc4c8601ec8c for "a" */
    CHECK(tl_shard_of("", 0, 1000000) == (int)(0xcbf29ce484222325ULL % 1000000) + 1);
    CHECK(tl_shard_of("a", 1, 7) == (int)(0xaf63dc4c8601ec8cULL % 7) + 1);
    CHECK(strcmp(tl_shard_key("data/train/red/1.jpg", "data/train"), "red/1.jpg") == 0);
    CHECK(strcmp(tl_shard_key("data/train//red/1.jpg", "data/train/"), "red/1.jpg") == 0);
    CHECK(strcmp(tl_shard_key("data/trainx/1.jpg", "data/train"), "data/trainx/1.jpg") == 0);
    CHECK(strcmp(tl_shard_key("/abs/1.jpg", NULL), "/abs/1.jpg") == 0);
}

static void test_order(void)
{
    /* a class folder's order: "a" and its files before "a.b" and "a-b" */
    CHECK(tl_path_cmp("r/a/x.jpg", "r/a.b/x.jpg") < 0);
    CHECK(tl_path_cmp("r/a/x.jpg", "r/a-b/x.jpg") < 0);
    CHECK(tl_path_cmp("r/a/z.jpg", "r/ab") < 0);
    CHECK(tl_path_cmp("r/a", "r/a") == 0);
    CHECK(tl_path_cmp("r/b", "r/a/z") > 0);
}

static void test_plan(void)
{
    tl_sample items[6] = {{"d/b/2.jpg", 1, NULL}, {"d/a/1.jpg", 0, NULL}, {"d/a.b/3.jpg", 2, NULL},
                          {"d/a/0.jpg", 0, NULL}, {"d/b/1.jpg", 1, NULL}, {"d/c/9.jpg", 1, NULL}};
    tl_dataset d = {.items = items, .n = 6};
    tl_err e = {0};
    int seen[6] = {0};
    for (int k = 1; k <= 3; k++) {
        int64_t *idx, n;
        CHECK(tl_shard_plan(&d, "d", k, 3, NULL, NULL, &idx, &n, &e) == 0);
        for (int64_t i = 0; i < n; i++) {
            seen[idx[i]]++;
            const char *key = tl_shard_key(items[idx[i]].path, "d");
            CHECK(tl_shard_of(key, strlen(key), 3) == k);
            CHECK(i == 0 || tl_path_cmp(items[idx[i - 1]].path, items[idx[i]].path) < 0);
        }
        free(idx);
    }
    for (int i = 0; i < 6; i++)
        CHECK_MSG(seen[i] == 1, "item %d in %d shards", i, seen[i]);
    int64_t *idx, n;
    CHECK(tl_shard_plan(&d, "d", 0, 0, NULL, NULL, &idx, &n, &e) == 0 && n == 6 && idx[0] == 0 && idx[5] == 5);
    free(idx);
}

int main(void)
{
    test_parse();
    test_hash();
    test_order();
    test_plan();
    return check_finish("shard");
}
