/* Shared by the test_backward_* tests: seeded inputs, error measures and the
 * PyTorch autograd reference run (tests/parity/backward_ref.py). */
#ifndef TL_TEST_BACKWARD_UTIL_H
#define TL_TEST_BACKWARD_UTIL_H

#include "check.h"
#include "kernels_ref.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *BW_PY = "/usr/bin/python3";
static const char *BW_REF = "tests/parity/backward_ref.py";

/* xorshift64*, uniform in [-1, 1) */
static inline float bw_uniform(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    uint64_t v = *s * 2685821657736338717ULL;
    return (float)((double)(v >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static inline float *bw_rand(uint64_t *s, size_t n, float scale)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = bw_uniform(s) * scale;
    return p;
}

/* The SIMD paths this CPU runs, scalar first: kernels without a workspace
 * follow $TL_SIMD (tl_simd_level), so a test sets it to run each copy. */
static const char *const BW_PATHS[] = {"scalar", "avx2", "avx512"};
enum { BW_NPATHS = 3 };
static inline int bw_use_path(int k)
{
    if (!tl_simd_supported(BW_PATHS[k]))
        return 0;
    setenv("TL_SIMD", BW_PATHS[k], 1);
    return 1;
}

static inline float *bw_zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* max |a - b| / max |b|: the norm-wise relative error of a against reference b */
static inline double bw_relerr(const float *a, const float *b, size_t n)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) /* NaN counts as the worst */
            d = e;
        if (fabs(b[i]) > m)
            m = fabs(b[i]);
    }
    return m > 0 ? d / m : d;
}

static inline double bw_relerr_d(const float *a, const double *b, size_t n)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]);
        if (!(e <= d))
            d = e;
        if (fabs(b[i]) > m)
            m = fabs(b[i]);
    }
    return m > 0 ? d / m : d;
}

static inline double bw_dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* The PyTorch run: bw_ref_start makes a temp dir and opens its cases.txt;
 * the test prints case lines into it; bw_ref_run runs the script. Returns 1
 * when the references are there, 0 when skipped (no python / torch), -1 on
 * failure (recorded as a failed check). */
typedef struct {
    char dir[64];
    FILE *cases;
} bw_ref;

static inline int bw_ref_start(bw_ref *r, const char *suite)
{
    r->cases = NULL;
    if (access(BW_PY, X_OK) != 0 || access(BW_REF, R_OK) != 0) {
        printf("%s: skipped pytorch comparison (no %s or %s)\n", suite, BW_PY, BW_REF);
        return 0;
    }
    snprintf(r->dir, sizeof r->dir, "/tmp/tl_test_backward_XXXXXX");
    if (!mkdtemp(r->dir)) {
        CHECK_MSG(0, "mkdtemp failed");
        return -1;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/cases.txt", r->dir);
    r->cases = fopen(path, "w");
    CHECK_MSG(r->cases != NULL, "cannot write %s", path);
    return r->cases ? 1 : -1;
}

static inline int bw_ref_run(bw_ref *r, const char *suite)
{
    fclose(r->cases);
    r->cases = NULL;
    char cmd[256], out[1024] = "";
    snprintf(cmd, sizeof cmd, "%s %s %s 2>&1", BW_PY, BW_REF, r->dir);
    FILE *p = popen(cmd, "r");
    if (!p) {
        CHECK_MSG(0, "cannot run %s", cmd);
        return -1;
    }
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        printf("%s: skipped pytorch comparison (%s)\n", suite, strtok(out, "\n") ? out : "no torch");
        return 0;
    }
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed: %s", cmd, out);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 1 : -1;
}

/* NAME_TENSOR.f32 from the reference dir, exactly n floats, else NULL and a failed check */
static inline float *bw_ref_read(const bw_ref *r, const char *name, const char *tensor, size_t n)
{
    char path[192];
    snprintf(path, sizeof path, "%s/%s_%s.f32", r->dir, name, tensor);
    FILE *f = fopen(path, "rb");
    float *p = malloc((n + 1) * sizeof *p);
    size_t got = f ? fread(p, sizeof *p, n + 1, f) : 0;
    if (f)
        fclose(f);
    CHECK_MSG(got == n, "%s: %zu floats, expected %zu", path, got, n);
    if (got != n) {
        free(p);
        return NULL;
    }
    return p;
}

static inline void bw_ref_done(bw_ref *r)
{
    if (r->cases)
        fclose(r->cases);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
    if (strncmp(r->dir, "/tmp/tl_test_backward_", 22) == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", r->dir);
}

#endif
