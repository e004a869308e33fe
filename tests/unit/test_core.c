/* core: RNG streams pinned to known values (so any change to the generator
 * is caught: seeds in old runs must keep meaning the same thing), thread
 * pool coverage, atomic output files, allocation and error helpers. */
#include "check.h"
#include "core/core.h"
#include "core/outfile.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- rng ---- */

static void test_rng(void)
{
    /* Values from an independent Python implementation of splitmix64
     * seeding + xoshiro256**. */
    static const uint64_t seed0[4] = {0x99ec5f36cb75f2b4ULL, 0xbf6e1f784956452aULL, 0x1a5f849d4933e6e0ULL,
                                      0x6aa594f1262d2d2cULL};
    static const uint64_t seed42[4] = {0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL, 0xae17533239e499a1ULL,
                                       0xecb8ad4703b360a1ULL};
    tl_rng r;
    tl_rng_seed(&r, 0);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(tl_rng_u64(&r) == seed0[i], "seed 0 value %d", i);
    tl_rng_seed(&r, 42);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(tl_rng_u64(&r) == seed42[i], "seed 42 value %d", i);
    tl_rng_seed_stream(&r, 42, 3);
    CHECK(tl_rng_u64(&r) == 0xa827f80ea0c3b498ULL);
    CHECK(tl_rng_u64(&r) == 0xa714aafcf13e7717ULL);

    /* same seed, same stream; other seeds and streams differ */
    tl_rng a, b, c;
    tl_rng_seed(&a, 7);
    tl_rng_seed(&b, 7);
    tl_rng_seed(&c, 8);
    int same = 1, differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = tl_rng_u64(&a);
        same &= x == tl_rng_u64(&b);
        differ += x != tl_rng_u64(&c);
    }
    CHECK(same && differ == 1000);
    tl_rng_seed_stream(&a, 7, 0);
    tl_rng_seed_stream(&b, 7, 1);
    tl_rng_seed(&c, 7);
    uint64_t x0 = tl_rng_u64(&a), x1 = tl_rng_u64(&b), x2 = tl_rng_u64(&c);
    CHECK(x0 != x1 && x0 != x2 && x1 != x2);

    /* uniform: in [0, 1), mean 1/2, variance 1/12, 24-bit grid */
    tl_rng_seed(&r, 1);
    double sum = 0, sum2 = 0;
    int in_range = 1, on_grid = 1;
    const int N = 200000;
    for (int i = 0; i < N; i++) {
        float u = tl_rng_uniform(&r);
        in_range &= u >= 0.0f && u < 1.0f;
        on_grid &= (double)u * 16777216.0 == (double)(int64_t)((double)u * 16777216.0);
        sum += u;
        sum2 += (double)u * u;
    }
    CHECK(in_range && on_grid);
    CHECK_NEAR(sum / N, 0.5, 0.005);
    CHECK_NEAR(sum2 / N - (sum / N) * (sum / N), 1.0 / 12, 0.002);

    /* below(): bounds, every value reached, roughly uniform; n of 0 and 1 */
    CHECK(tl_rng_below(&r, 0) == 0 && tl_rng_below(&r, 1) == 0);
    for (uint64_t n = 2; n <= 17; n++) {
        int hist[17] = {0}, ok = 1;
        for (int i = 0; i < 17000; i++) {
            uint64_t v = tl_rng_below(&r, n);
            ok &= v < n;
            if (v < n)
                hist[v]++;
        }
        CHECK_MSG(ok, "below(%llu) out of range", (unsigned long long)n);
        double expect = 17000.0 / (double)n;
        for (uint64_t k = 0; k < n; k++)
            CHECK_MSG(fabs(hist[k] - expect) < 6 * sqrt(expect), "below(%llu): %llu drawn %d times",
                      (unsigned long long)n, (unsigned long long)k, hist[k]);
    }
    /* a bound just above 2^63 rejects about half the draws: still exact */
    uint64_t big = (1ULL << 63) + 12345;
    int ok = 1;
    for (int i = 0; i < 1000; i++)
        ok &= tl_rng_below(&r, big) < big;
    CHECK(ok);
    ok = 1;
    for (int i = 0; i < 1000; i++)
        ok &= tl_rng_below(&r, UINT64_MAX) < UINT64_MAX;
    CHECK(ok);

    /* normal: mean 0, variance 1, finite, symmetric-ish tails */
    sum = sum2 = 0;
    int finite = 1, beyond2 = 0;
    for (int i = 0; i < N; i++) {
        float z = tl_rng_normal(&r);
        finite &= isfinite(z);
        sum += z;
        sum2 += (double)z * z;
        beyond2 += fabsf(z) > 2.0f;
    }
    CHECK(finite);
    CHECK_NEAR(sum / N, 0.0, 0.01);
    CHECK_NEAR(sum2 / N, 1.0, 0.02);
    CHECK_NEAR((double)beyond2 / N, 0.0455, 0.003);

    /* shuffle: a permutation, deterministic per seed, not the identity */
    int64_t p[1000], q[1000];
    for (int i = 0; i < 1000; i++)
        p[i] = q[i] = i;
    tl_rng_seed(&a, 5);
    tl_rng_seed(&b, 5);
    tl_rng_shuffle(&a, p, 1000);
    tl_rng_shuffle(&b, q, 1000);
    char seen[1000] = {0};
    int perm = 1, fixed = 0;
    for (int i = 0; i < 1000; i++) {
        perm &= p[i] >= 0 && p[i] < 1000 && !seen[p[i]];
        if (p[i] >= 0 && p[i] < 1000)
            seen[p[i]] = 1;
        fixed += p[i] == i;
    }
    CHECK(perm && fixed < 10);
    CHECK(!memcmp(p, q, sizeof p));
    /* every position equally likely: position of element 0 over many shuffles of 4 */
    int pos[4] = {0};
    for (int t = 0; t < 8000; t++) {
        int64_t s4[4] = {0, 1, 2, 3};
        tl_rng_shuffle(&a, s4, 4);
        for (int i = 0; i < 4; i++)
            if (s4[i] == 0)
                pos[i]++;
    }
    for (int i = 0; i < 4; i++)
        CHECK_MSG(abs(pos[i] - 2000) < 200, "element 0 at position %d %d times", i, pos[i]);
    int64_t one = 9;
    tl_rng_shuffle(&a, &one, 1);
    tl_rng_shuffle(&a, NULL, 0);
    CHECK(one == 9);
}

/* ---- pool ---- */

typedef struct {
    atomic_int *hits;
    int64_t n;
    atomic_int bad;
    int nworkers;
    atomic_int calls;
} cover_ctx;

static void cover(void *vctx, int64_t begin, int64_t end, int worker)
{
    cover_ctx *c = vctx;
    atomic_fetch_add(&c->calls, 1);
    if (begin < 0 || end > c->n || begin >= end || worker < 0 || worker >= c->nworkers) {
        atomic_fetch_add(&c->bad, 1);
        return;
    }
    for (int64_t i = begin; i < end; i++)
        atomic_fetch_add(&c->hits[i], 1);
}

static void check_cover(tl_pool *pool, int64_t n, int64_t grain)
{
    cover_ctx c;
    c.hits = calloc((size_t)(n > 0 ? n : 1), sizeof *c.hits);
    c.n = n;
    atomic_init(&c.bad, 0);
    atomic_init(&c.calls, 0);
    c.nworkers = tl_pool_size(pool);
    tl_parallel_for(pool, n, grain, cover, &c);
    int ok = atomic_load(&c.bad) == 0;
    for (int64_t i = 0; i < n; i++)
        ok &= atomic_load(&c.hits[i]) == 1;
    CHECK_MSG(ok, "pool of %d, n %lld, grain %lld: an index was missed or repeated", tl_pool_size(pool), (long long)n,
              (long long)grain);
    if (n <= 0)
        CHECK(atomic_load(&c.calls) == 0);
    /* a chunk is never smaller than the grain, except the last one */
    if (n > 0 && grain > 0)
        CHECK(atomic_load(&c.calls) <= (n + grain - 1) / grain);
    free(c.hits);
}

typedef struct {
    pthread_t owner;
    atomic_int others;
} who_ctx;

static void who(void *vctx, int64_t begin, int64_t end, int worker)
{
    who_ctx *c = vctx;
    if (!pthread_equal(pthread_self(), c->owner))
        atomic_fetch_add(&c->others, 1);
    /* slow enough that helpers get a chance */
    volatile double x = 0;
    for (int64_t i = begin; i < end; i++)
        for (int k = 0; k < 200000; k++)
            x += k;
    (void)worker;
}

static void test_pool(void)
{
    tl_err e = {0};
    static const int64_t ns[] = {0, -3, 1, 2, 3, 7, 8, 15, 16, 17, 100, 1000, 4097};
    static const int64_t grains[] = {0, 1, 2, 3, 7, 64, 1000, 100000};
    for (int size = 1; size <= 4; size++) {
        tl_pool *p = tl_pool_new(size, &e);
        CHECK_MSG(p != NULL, "pool of %d: %s", size, e.msg);
        if (!p)
            continue;
        CHECK(tl_pool_size(p) == size);
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
            for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++)
                check_cover(p, ns[i], grains[g]);
        /* many back-to-back jobs on one pool */
        for (int rep = 0; rep < 300; rep++)
            check_cover(p, 50 + rep % 7, 1);
        if (size > 1) {
            /* the caller may take every chunk before a helper wakes on a
             * busy machine; a few tries make that vanishingly unlikely */
            who_ctx w;
            w.owner = pthread_self();
            atomic_init(&w.others, 0);
            for (int t = 0; t < 20 && atomic_load(&w.others) == 0; t++)
                tl_parallel_for(p, 64, 1, who, &w);
            CHECK_MSG(atomic_load(&w.others) > 0, "pool of %d: helpers never ran a chunk", size);
        }
        tl_pool_free(p);
    }
    /* NULL pool: serial, worker 0, size 1 */
    CHECK(tl_pool_size(NULL) == 1);
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        check_cover(NULL, ns[i], 4);
    /* 0 threads: one per CPU */
    tl_pool *p = tl_pool_new(0, &e);
    CHECK(p && tl_pool_size(p) == tl_cpu_count());
    if (p)
        check_cover(p, 1000, 1);
    tl_pool_free(p);
    tl_pool_free(NULL);
    CHECK(tl_cpu_count() >= 1);
    double t0 = tl_now(), t1 = tl_now();
    CHECK(t1 >= t0 && t0 > 0);
}

/* ---- outfile ---- */

static char tmpdir[64];

/* Number of entries in dir other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

static int read_all(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return (int)n;
}

static void test_outfile(void)
{
    tl_err e = {0};
    char path[128], buf[256];
    snprintf(path, sizeof path, "%s/out.txt", tmpdir);

    /* commit: the file appears only then, under its final name, 0644 */
    tl_outfile o;
    CHECK(tl_outfile_open(&o, path, &e) == 0);
    CHECK(o.fp && !o.is_stdout && o.tmp && strncmp(o.tmp, path, strlen(path)) == 0);
    fputs("hello", o.fp);
    CHECK(access(path, F_OK) != 0);
    CHECK(count_entries(tmpdir) == 1); /* the temporary */
    CHECK(tl_outfile_commit(&o, &e) == 0);
    CHECK(read_all(path, buf, sizeof buf) == 5 && !strcmp(buf, "hello"));
    CHECK(count_entries(tmpdir) == 1);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
    CHECK(o.fp == NULL && o.tmp == NULL && o.path == NULL);
    tl_outfile_abort(&o); /* after commit: harmless */
    CHECK(tl_outfile_commit(&o, &e) < 0 && strstr(e.msg, "not open")); /* twice: an error, not a crash */

    /* replacing an existing file; abort leaves the old one untouched */
    CHECK(tl_outfile_open(&o, path, &e) == 0);
    fputs("second", o.fp);
    CHECK(tl_outfile_commit(&o, &e) == 0);
    CHECK(read_all(path, buf, sizeof buf) == 6 && !strcmp(buf, "second"));
    CHECK(tl_outfile_open(&o, path, &e) == 0);
    fputs("third, never seen", o.fp);
    tl_outfile_abort(&o);
    CHECK(read_all(path, buf, sizeof buf) == 6 && !strcmp(buf, "second"));
    CHECK(count_entries(tmpdir) == 1);
    tl_outfile_abort(&o);
    tl_outfile z;
    memset(&z, 0, sizeof z);
    tl_outfile_abort(&z);
    unlink(path);

    /* abort without any earlier file: nothing left */
    CHECK(tl_outfile_open(&o, path, &e) == 0);
    fputs("x", o.fp);
    tl_outfile_abort(&o);
    CHECK(count_entries(tmpdir) == 0);

    /* missing folder: a clean error naming the path */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/no/such/dir/out.bin", tmpdir);
    CHECK(tl_outfile_open(&o, missing, &e) < 0);
    CHECK_MSG(strstr(e.msg, missing) && strstr(e.msg, "cannot create"), "message: %s", e.msg);
    CHECK(o.fp == NULL && o.tmp == NULL && o.path == NULL);
    CHECK(count_entries(tmpdir) == 0);

    /* a write error at commit (the disk is full): reported, temporary removed,
     * no file under the final name */
    FILE *full = fopen("/dev/full", "wb");
    if (full) {
        CHECK(tl_outfile_open(&o, path, &e) == 0);
        FILE *real = o.fp;
        o.fp = full;
        fputs("data that cannot be written", o.fp);
        e.msg[0] = 0;
        CHECK(tl_outfile_commit(&o, &e) < 0);
        CHECK_MSG(strstr(e.msg, "write failed") && strstr(e.msg, "out.txt"), "message: %s", e.msg);
        CHECK_MSG(strstr(e.msg, strerror(ENOSPC)) != NULL, "message: %s", e.msg);
        fclose(real);
        CHECK(access(path, F_OK) != 0);
        CHECK(count_entries(tmpdir) == 0);
    } else {
        printf("outfile: /dev/full not available, full-disk case skipped\n");
    }

    /* the target is a folder: rename fails; error, temporary removed */
    char sub[128];
    snprintf(sub, sizeof sub, "%s/adir", tmpdir);
    CHECK(mkdir(sub, 0755) == 0);
    char inner[160];
    snprintf(inner, sizeof inner, "%s/f", sub);
    FILE *f = fopen(inner, "w");
    if (f)
        fclose(f);
    /* refused at open or at commit, either way with the name and no leftovers */
    int rc = tl_outfile_open(&o, sub, &e);
    if (rc == 0) {
        fputs("x", o.fp);
        rc = tl_outfile_commit(&o, &e);
    }
    CHECK(rc < 0);
    CHECK_MSG(strstr(e.msg, sub) != NULL, "message: %s", e.msg);
    CHECK(count_entries(tmpdir) == 1);
    unlink(inner);
    rmdir(sub);

    /* "-" is standard output */
    CHECK(tl_outfile_open(&o, "-", &e) == 0 && o.fp == stdout && o.is_stdout);
    CHECK(tl_outfile_commit(&o, &e) == 0);
    tl_outfile_abort(&o);

    /* a very long name still gets its temporary beside it */
    char longname[300];
    int n = snprintf(longname, sizeof longname, "%s/", tmpdir);
    memset(longname + n, 'n', 200);
    longname[n + 200] = 0;
    CHECK(tl_outfile_open(&o, longname, &e) == 0);
    if (o.fp) {
        CHECK(tl_outfile_commit(&o, &e) == 0);
        CHECK(access(longname, F_OK) == 0);
        unlink(longname);
    }
    CHECK(count_entries(tmpdir) == 0);
}

/* ---- alloc, errors ---- */

static void test_alloc_err(void)
{
    for (size_t sz = 0; sz < 300; sz += 37) {
        unsigned char *p = tl_alloc(sz);
        CHECK(p && ((uintptr_t)p % TL_ALIGN) == 0);
        int zero = 1;
        for (size_t i = 0; p && i < sz; i++)
            zero &= p[i] == 0;
        CHECK(zero);
        tl_free(p);
    }
    CHECK(tl_alloc(SIZE_MAX) == NULL);
    CHECK(tl_alloc(SIZE_MAX - 10) == NULL);
    CHECK(tl_alloc_array(SIZE_MAX / 2, 3) == NULL);
    float *a = tl_alloc_array(10, sizeof(float));
    CHECK(a && a[9] == 0);
    tl_free(a);
    tl_free(NULL);
    tl_err e = {0};
    CHECK(tl_xalloc((size_t)1 << 62, 64, &e) == NULL);
    CHECK_MSG(strstr(e.msg, "out of memory") != NULL, "message: %s", e.msg);
    void *x = tl_xalloc(0, 4, &e);
    CHECK(x != NULL);
    tl_free(x);
    char *s = tl_strdup("abc");
    CHECK(s && !strcmp(s, "abc"));
    free(s);

    CHECK(tl_fail(&e, "bad %s %d", "thing", 3) == -1 && !strcmp(e.msg, "bad thing 3"));
    CHECK(tl_fail(NULL, "ignored") == -1);
    CHECK(tl_fail_prefix(&e, "%s", "file.x") == -1 && !strcmp(e.msg, "file.x: bad thing 3"));
    CHECK(tl_fail_prefix(NULL, "x") == -1);
    /* long messages are cut, never overflow */
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    tl_fail(&e, "%s", big);
    CHECK(strlen(e.msg) == sizeof e.msg - 1);
    tl_fail_prefix(&e, "%s", big);
    CHECK(strlen(e.msg) == sizeof e.msg - 1);
    /* Fuzzing found messages quoting input split over lines (a spec
     * "ratio=0.7\n5", a JSON "[\n]"): quoted text stays on one line. */
    tl_fail(&e, "bad number '%s' at column %d", "0.7\n5\r\x1b[2J", 3);
    CHECK_MSG(!strcmp(e.msg, "bad number '0.7?5??[2J' at column 3"), "got '%s'", e.msg);
    tl_fail_prefix(&e, "dir\nname\tx");
    CHECK_MSG(!strcmp(e.msg, "dir?name\tx: bad number '0.7?5??[2J' at column 3"), "got '%s'", e.msg);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tl-core-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_rng();
    test_pool();
    test_outfile();
    test_alloc_err();
    rmdir(tmpdir);
    return check_finish("core");
}
