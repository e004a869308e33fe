/* Helpers shared by test_image.c and test_resize.c: temp folders, the
 * Python reference script, the shared photos, pixel comparisons. */
#ifndef TL_TEST_IMAGE_UTIL_H
#define TL_TEST_IMAGE_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/image.h"

#define TU_PYTHON "/usr/bin/python3"

static int tu_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(p);
}

static void tu_rmtree(const char *dir) { nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static int tu_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* The reference script, relative to the source tree ($TL_SRCDIR or .). */
static const char *tu_script(char *buf, size_t n)
{
    const char *src = getenv("TL_SRCDIR");
    snprintf(buf, n, "%s/tests/parity/resize_pil.py", src ? src : ".");
    return tu_exists(buf) ? buf : NULL;
}

/* The read-only shared folder: $TL_SHARED, ../shared, /work/shared. */
static const char *tu_shared_images(char *buf, size_t n)
{
    const char *c[3] = { getenv("TL_SHARED"), "../shared", "/work/shared" };
    for (int i = 0; i < 3; i++) {
        if (!c[i])
            continue;
        snprintf(buf, n, "%s/images", c[i]);
        if (tu_exists(buf))
            return buf;
    }
    return NULL;
}

/* Runs /usr/bin/python3 SCRIPT args... without a shell; returns its exit
 * status (3 = modules missing), or -1 if it could not run. */
static int tu_run_python(const char *script, const char *const *args)
{
    if (access(TU_PYTHON, X_OK) != 0)
        return -1;
    const char *argv[256];
    int n = 0;
    argv[n++] = TU_PYTHON;
    argv[n++] = script;
    for (int i = 0; args[i] && n < 255; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execv(TU_PYTHON, (char *const *)argv);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

typedef struct tu_diff {
    int max;
    double frac; /* fraction of samples that differ */
} tu_diff;

static tu_diff tu_compare(const tl_image *a, const tl_image *b)
{
    tu_diff d = { 0, 0.0 };
    if (a->w != b->w || a->h != b->h) {
        d.max = 256;
        d.frac = 1.0;
        return d;
    }
    size_t n = (size_t)a->w * a->h * 3, ndiff = 0;
    for (size_t i = 0; i < n; i++) {
        int v = abs((int)a->px[i] - (int)b->px[i]);
        if (v) {
            ndiff++;
            if (v > d.max)
                d.max = v;
        }
    }
    d.frac = (double)ndiff / (double)n;
    return d;
}

#endif
