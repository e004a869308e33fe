/* Reading NumPy archives as feature files: tl's own archive read back
 * (single- and multi-label), every truncation of it refused cleanly, a
 * flipped byte caught by a CRC, a size the archive only claims refused
 * without reserving it, and a zip that is not NPZ. */
#include "check.h"
#include "io/features.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64], cut[80];

static void write_archive(int multilabel)
{
    char *classes[] = {"a", "b", NULL};
    tl_feat_info info = {.dim = 3, .classes = classes, .nclasses = 2, .model = "m", .layer = "l",
                         .multilabel = multilabel, .shard = 0, .nshards = 0};
    tl_featw *w;
    tl_err e = {0};
    CHECK(tl_featw_open(&w, path, TL_FEAT_NPZ, &info, &e) == 0);
    float v[3] = {1, 2, 3};
    int ab[2] = {0, 1};
    CHECK(tl_featw_add(w, "x/1.jpg", 1, v, &e) == 0);
    v[0] = -4;
    CHECK(tl_featw_add_labels(w, "y/\xc3\xa9t\xff.jpg", ab, multilabel ? 2 : 1, v, &e) == 0);
    CHECK(tl_featw_add(w, "z", -1, v, &e) == 0);
    CHECK(tl_featw_close(w, &e) == 0);
}

static void test_roundtrip(int multilabel)
{
    write_archive(multilabel);
    tl_featset s;
    tl_err e = {0};
    CHECK_MSG(tl_featset_load(path, &s, &e) == 0, "%s", e.msg);
    if (!s.X)
        return;
    CHECK(s.n == 3 && s.info.dim == 3 && s.info.nclasses == 2 && !strcmp(s.info.model, "m"));
    CHECK(s.X[0] == 1 && s.X[3] == -4 && s.X[8] == 3);
    CHECK(!strcmp(s.paths[1], "y/\xc3\xa9t\xff.jpg") && !strcmp(s.paths[2], "z"));
    if (multilabel)
        CHECK(s.info.multilabel && s.y[0] == 1 && s.Y[1] == 1 && s.y[1] == 2 && s.Y[2] && s.Y[3] && s.y[2] == -1);
    else
        CHECK(!s.info.multilabel && s.y[0] == 1 && s.y[1] == 0 && s.y[2] == -1);
    tl_featset_free(&s);
}

static long file_bytes(unsigned char **buf)
{
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    *buf = malloc((size_t)n);
    if (fread(*buf, 1, (size_t)n, f) != (size_t)n)
        n = 0;
    fclose(f);
    return n;
}

static int load(const unsigned char *b, long n, tl_err *e)
{
    FILE *f = fopen(cut, "wb");
    fwrite(b, 1, (size_t)n, f);
    fclose(f);
    tl_featset s;
    int rc = tl_featset_load(cut, &s, e);
    if (!rc)
        tl_featset_free(&s);
    return rc;
}

static void test_hostile(void)
{
    write_archive(0);
    unsigned char *b;
    long n = file_bytes(&b);
    tl_err e = {0};
    int refused = 0;
    for (long k = 1; k < n; k++)
        refused += load(b, k, &e) < 0;
    CHECK_MSG(refused == n - 1, "%ld of %ld truncations read", n - 1 - refused, n - 1);
    /* a value's byte flipped: the entry's CRC */
    unsigned char *c = malloc((size_t)n);
    memcpy(c, b, (size_t)n);
    c[200] ^= 0x40;
    CHECK(load(c, n, &e) < 0 && strstr(e.msg, "CRC mismatch"));
    /* the first entry claims 2^39 bytes (ZIP64 extra, at 30 + name): refused for lack of them */
    memcpy(c, b, (size_t)n);
    unsigned nl = c[26] | c[27] << 8;
    c[30 + nl + 4 + 4] = 0x80; /* uncompressed size byte 4: 2^39 + ... */
    c[30 + nl + 4 + 12] = 0x80;
    CHECK(load(c, n, &e) < 0);
    /* a zip of something else */
    memcpy(c, b, (size_t)n);
    memcpy(c + 30, "featurez", 8);
    CHECK(load(c, n, &e) < 0 && strstr(e.msg, "features"));
    /* two archives are two streams of one data set */
    unsigned char *two = malloc(2 * (size_t)n);
    memcpy(two, b, (size_t)n);
    memcpy(two + n, b, (size_t)n);
    CHECK_MSG(load(two, 2 * n, &e) == 0, "%s", e.msg);
    CHECK(load(two, 2 * n - 5, &e) < 0);
    free(two);
    free(c);
    free(b);
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/tl-npz-%d.npz", (int)getpid());
    snprintf(cut, sizeof cut, "%s.cut", path);
    test_roundtrip(0);
    test_roundtrip(1);
    test_hostile();
    unlink(path);
    unlink(cut);
    return check_finish("npz_read");
}
