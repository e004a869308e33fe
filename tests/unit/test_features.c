/* Feature files: TLF/TSV/NPY round trips; a TLF stream cut at every byte
 * or with any single bit flipped must fail loudly, never yield fewer
 * records silently; TSV and NPY parsing and their errors. */
#include "check.h"
#include "io/features.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char dir[64];

static char *tmp(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_text(const char *p, const void *s, size_t n)
{
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        exit(1);
    }
    fwrite(s, 1, n, f);
    fclose(f);
}

static size_t read_bin(const char *p, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(p, "rb");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

enum { DIM = 5, NREC = 4 };
static char *classes[] = {"ants", "bees", "caf\xC3\xA9 au lait"};
static const char *paths[NREC] = {"a b/c d.jpg", "\xE6\x97\xA5\xE6\x9C\xAC/x.png", "/abs/path.jpeg", "plain"};
static const int labels[NREC] = {0, 2, -1, 1};
static float vecs[NREC][DIM];

static void fill_vecs(void)
{
    for (int i = 0; i < NREC; i++)
        for (int j = 0; j < DIM; j++)
            vecs[i][j] = (float)((i + 1) * (j - 2)) / 7.0f;
    vecs[0][0] = -0.0f;
    vecs[1][1] = 1e-40f; /* subnormal */
    vecs[2][2] = 3.4028235e38f;
    vecs[3][3] = -1e30f;
    vecs[3][4] = 1.17549435e-38f;
}

static void info_set(tl_feat_info *info)
{
    memset(info, 0, sizeof *info);
    info->dim = DIM;
    info->classes = classes;
    info->nclasses = 3;
    info->model = "mobilenet_v2";
    info->layer = "features.18";
}

static int write_set(const char *p, int format, tl_err *e)
{
    tl_feat_info info;
    info_set(&info);
    tl_featw *w;
    if (tl_featw_open(&w, p, format, &info, e))
        return -1;
    for (int i = 0; i < NREC; i++)
        if (tl_featw_add(w, paths[i], labels[i], vecs[i], e)) {
            tl_featw_abort(w);
            return -1;
        }
    return tl_featw_close(w, e);
}

static int same_floats(const float *a, const float *b, int n)
{
    return !memcmp(a, b, (size_t)n * sizeof(float));
}

static void check_readback(const char *p, int format)
{
    tl_err e = {0};
    tl_featr *r;
    int rc = tl_featr_open(&r, p, &e);
    CHECK_MSG(rc == 0, "open %s: %s", p, e.msg);
    if (rc)
        return;
    const tl_feat_info *info = tl_featr_info(r);
    CHECK(info->dim == DIM);
    if (format != TL_FEAT_NPY) {
        CHECK(info->nclasses == 3);
        for (int c = 0; c < 3 && c < info->nclasses; c++)
            CHECK(!strcmp(info->classes[c], classes[c]));
        CHECK(info->model && !strcmp(info->model, "mobilenet_v2"));
        CHECK(info->layer && !strcmp(info->layer, "features.18"));
    }
    float v[DIM];
    const char *path, *ln;
    int label, n = 0;
    while ((rc = tl_featr_next(r, &path, &ln, &label, v, &e)) == 1) {
        if (n < NREC) {
            if (format == TL_FEAT_NPY) {
                char want[16];
                snprintf(want, sizeof want, "row%d", n + 1);
                CHECK(!strcmp(path, want) && label == -1);
            } else {
                CHECK_MSG(!strcmp(path, paths[n]), "record %d path '%s'", n, path);
                CHECK_MSG(label == labels[n], "record %d label %d", n, label);
                CHECK(!strcmp(ln, labels[n] >= 0 ? classes[labels[n]] : ""));
            }
            CHECK_MSG(same_floats(v, vecs[n], DIM), "record %d vector differs (format %d)", n, format);
        }
        n++;
    }
    CHECK_MSG(rc == 0, "read %s: %s", p, e.msg);
    CHECK(n == NREC);
    CHECK(tl_featr_next(r, &path, &ln, &label, v, &e) == 0); /* stays at the end */
    tl_featr_close(r);

    tl_featset s;
    rc = tl_featset_load(p, &s, &e);
    CHECK_MSG(rc == 0, "load %s: %s", p, e.msg);
    if (rc)
        return;
    CHECK(s.n == NREC && s.info.dim == DIM);
    for (int i = 0; i < NREC && i < s.n; i++) {
        CHECK(same_floats(s.X + i * DIM, vecs[i], DIM));
        CHECK(s.y[i] == (format == TL_FEAT_NPY ? -1 : labels[i]));
    }
    if (format != TL_FEAT_NPY)
        CHECK(s.info.nclasses == 3 && !strcmp(s.info.classes[2], classes[2]) && !strcmp(s.paths[1], paths[1]));
    tl_featset_free(&s);
}

static int count_entries(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void test_roundtrips(void)
{
    tl_err e = {0};
    int fmt = -1;
    CHECK(tl_feat_format_parse("tlf", &fmt) == 0 && fmt == TL_FEAT_TLF);
    CHECK(tl_feat_format_parse("tsv", &fmt) == 0 && fmt == TL_FEAT_TSV);
    CHECK(tl_feat_format_parse("npy", &fmt) == 0 && fmt == TL_FEAT_NPY);
    CHECK(tl_feat_format_parse("csv", &fmt) < 0);

    const char *names[3] = {"r.tlf", "r.tsv", "r.npy"};
    for (int f = 0; f < 3; f++) {
        const char *p = tmp(names[f]);
        CHECK_MSG(write_set(p, f, &e) == 0, "write format %d: %s", f, e.msg);
        check_readback(p, f);
        unlink(p);
    }

    /* NPY layout: 64-byte aligned header, shape, raw little-endian rows */
    const char *p = tmp("h.npy");
    CHECK(write_set(p, TL_FEAT_NPY, &e) == 0);
    uint8_t buf[4096];
    size_t n = read_bin(p, buf, sizeof buf);
    size_t hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    CHECK(n == 10 + hlen + NREC * DIM * 4 && (10 + hlen) % 64 == 0 && buf[10 + hlen - 1] == '\n');
    CHECK(!memcmp(buf + 10 + hlen, vecs, sizeof vecs));
    CHECK(strstr((char *)buf + 10, "'shape': (4, 5)") != NULL);
    if (access("/usr/bin/python3", X_OK) == 0) {
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c 'import numpy,sys; a=numpy.load(sys.argv[1]); "
                 "sys.exit(0 if a.shape==(4,5) and a.dtype==numpy.float32 and a[0,1]==numpy.float32(-1/7) else 1)' "
                 "%s 2>/dev/null; echo $?",
                 p);
        FILE *pp = popen(cmd, "r");
        int st = -1;
        if (pp && fscanf(pp, "%d", &st) == 1) {
            if (st == 0 || st == 1)
                CHECK_MSG(st == 0, "numpy reads a different array from %s", p);
            else
                printf("features: numpy not importable, NPY cross-check skipped\n");
        }
        if (pp)
            pclose(pp);
    } else {
        printf("features: /usr/bin/python3 missing, NPY cross-check skipped\n");
    }
    unlink(p);

    /* empty sets in every format */
    tl_feat_info info;
    info_set(&info);
    for (int f = 0; f < 3; f++) {
        tl_featw *w;
        p = tmp(names[f]);
        CHECK(tl_featw_open(&w, p, f, &info, &e) == 0 && tl_featw_close(w, &e) == 0);
        tl_featset s;
        CHECK_MSG(tl_featset_load(p, &s, &e) == 0 && s.n == 0 && s.info.dim == DIM, "empty format %d: %s", f, e.msg);
        tl_featset_free(&s);
        unlink(p);
    }

    /* no classes, no model: labels are -1; out-of-range labels are dropped */
    info.classes = NULL;
    info.nclasses = 0;
    info.model = info.layer = NULL;
    for (int f = 0; f < 2; f++) {
        tl_featw *w;
        p = tmp(names[f]);
        CHECK(tl_featw_open(&w, p, f, &info, &e) == 0);
        CHECK(tl_featw_add(w, "x", 3, vecs[0], &e) == 0);
        CHECK(tl_featw_close(w, &e) == 0);
        tl_featset s;
        CHECK_MSG(tl_featset_load(p, &s, &e) == 0, "%s", e.msg);
        CHECK(s.n == 1 && s.y[0] == -1 && s.info.nclasses == 0 && s.info.model == NULL && s.info.layer == NULL);
        tl_featset_free(&s);
        unlink(p);
    }
    info_set(&info);
    tl_featw *w;
    p = tmp("o.tlf");
    CHECK(tl_featw_open(&w, p, TL_FEAT_TLF, &info, &e) == 0);
    CHECK(tl_featw_add(w, "x", 7, vecs[0], &e) == 0 && tl_featw_add(w, "y", -5, vecs[0], &e) == 0);
    CHECK(tl_featw_close(w, &e) == 0);
    tl_featset s;
    CHECK(tl_featset_load(p, &s, &e) == 0 && s.n == 2 && s.y[0] == -1 && s.y[1] == -1);
    tl_featset_free(&s);
    unlink(p);

    /* TLF takes tabs and newlines in paths; TSV refuses them */
    CHECK(tl_featw_open(&w, p, TL_FEAT_TLF, &info, &e) == 0);
    CHECK(tl_featw_add(w, "tab\there\nnewline", 1, vecs[1], &e) == 0);
    CHECK(tl_featw_close(w, &e) == 0);
    CHECK(tl_featset_load(p, &s, &e) == 0 && s.n == 1 && !strcmp(s.paths[0], "tab\there\nnewline") && s.y[0] == 1);
    tl_featset_free(&s);
    unlink(p);
    p = tmp("t.tsv");
    CHECK(tl_featw_open(&w, p, TL_FEAT_TSV, &info, &e) == 0);
    CHECK(tl_featw_add(w, "tab\there", 0, vecs[1], &e) < 0 && strstr(e.msg, "tab or line break"));
    CHECK(tl_featw_add(w, "new\nline", 0, vecs[1], &e) < 0);
    /* '#' starts a comment line: such a record would vanish on reading */
    CHECK(tl_featw_add(w, "#hash.jpg", 0, vecs[1], &e) < 0 && strstr(e.msg, "'#'"));
    CHECK(tl_featw_add(w, "a#b.jpg", 0, vecs[1], &e) == 0);
    tl_featw_abort(w);
    CHECK(count_entries() == 0); /* abort leaves nothing */

    /* bad dimension */
    info.dim = 0;
    CHECK(tl_featw_open(&w, p, TL_FEAT_TLF, &info, &e) < 0 && w == NULL && strstr(e.msg, "dimension"));
    info.dim = TL_FEAT_MAX_DIM + 1;
    CHECK(tl_featw_open(&w, p, TL_FEAT_TLF, &info, &e) < 0);
    info.dim = DIM;
    CHECK(tl_featw_open(&w, tmp("missing/x.tlf"), TL_FEAT_TLF, &info, &e) < 0 && strstr(e.msg, "missing/x.tlf"));
    CHECK(count_entries() == 0);
    /* a TLF path longer than the limit is refused at write time */
    char *longp = malloc(TL_FEAT_MAX_PATH + 2);
    memset(longp, 'p', TL_FEAT_MAX_PATH + 1);
    longp[TL_FEAT_MAX_PATH + 1] = 0;
    CHECK(tl_featw_open(&w, p, TL_FEAT_TLF, &info, &e) == 0);
    CHECK(tl_featw_add(w, longp, 0, vecs[0], &e) < 0 && strstr(e.msg, "path too long"));
    longp[TL_FEAT_MAX_PATH] = 0;
    CHECK(tl_featw_add(w, longp, 0, vecs[0], &e) == 0);
    CHECK(tl_featw_close(w, &e) == 0);
    CHECK(tl_featset_load(p, &s, &e) == 0 && s.n == 1 && strlen(s.paths[0]) == TL_FEAT_MAX_PATH);
    tl_featset_free(&s);
    unlink(p);
    free(longp);
}

/* Reads every record; returns 0 on a clean end, -1 on error (message in e). */
static int read_all(const char *p, int *nrec, tl_err *e)
{
    tl_featr *r;
    *nrec = 0;
    e->msg[0] = 0;
    if (tl_featr_open(&r, p, e))
        return -1;
    float v[64];
    const char *path, *ln;
    int label, rc;
    int dim = tl_featr_info(r)->dim;
    if (dim > 64) {
        tl_featr_close(r);
        return tl_fail(e, "test: dim %d", dim);
    }
    while ((rc = tl_featr_next(r, &path, &ln, &label, v, e)) == 1)
        (*nrec)++;
    tl_featr_close(r);
    return rc;
}

static void test_tlf_damage(void)
{
    tl_err e = {0};
    tl_feat_info info;
    info_set(&info);
    info.dim = 3;
    const char *p = tmp("d.tlf"), *q = tmp("cut.tlf");
    tl_featw *w;
    CHECK(tl_featw_open(&w, p, TL_FEAT_TLF, &info, &e) == 0);
    float v[3] = {1, 2, 3};
    CHECK(tl_featw_add(w, "one.jpg", 0, v, &e) == 0);
    CHECK(tl_featw_add(w, "", 1, v, &e) == 0); /* empty path */
    CHECK(tl_featw_add(w, "three.jpg", -1, v, &e) == 0);
    CHECK(tl_featw_close(w, &e) == 0);
    uint8_t buf[4096];
    size_t n = read_bin(p, buf, sizeof buf);
    CHECK(n > 100 && n < sizeof buf);
    int nrec;
    CHECK(read_all(p, &nrec, &e) == 0 && nrec == 3);

    /* cut at every offset: always an error that says it was cut */
    int silent = 0, vague = 0;
    for (size_t len = 0; len < n; len++) {
        write_text(q, buf, len);
        int rc = read_all(q, &nrec, &e);
        if (rc == 0) {
            silent++;
            fprintf(stderr, "    cut at %zu of %zu bytes read cleanly with %d records\n", len, n, nrec);
            continue;
        }
        int clear = len == 0 ? strstr(e.msg, "empty input") != NULL : strstr(e.msg, "truncated") != NULL;
        if (!clear || strncmp(e.msg, q, strlen(q))) {
            vague++;
            fprintf(stderr, "    cut at %zu: message '%s'\n", len, e.msg);
        }
    }
    CHECK(silent == 0);
    CHECK(vague == 0);

    /* any single flipped bit: an error (CRC or format), never a clean read */
    int accepted = 0, unnamed = 0;
    for (size_t pos = 0; pos < n; pos++)
        for (int bit = 0; bit < 8; bit++) {
            buf[pos] ^= (uint8_t)(1 << bit);
            write_text(q, buf, n);
            int rc = read_all(q, &nrec, &e);
            if (rc == 0) {
                accepted++;
                fprintf(stderr, "    bit %d of byte %zu flipped: read cleanly (%d records)\n", bit, pos, nrec);
            } else if (!e.msg[0] || strchr(e.msg, '\n')) {
                unnamed++;
            }
            buf[pos] ^= (uint8_t)(1 << bit);
        }
    CHECK(accepted == 0);
    CHECK(unnamed == 0);

    /* trailing bytes after the end record are ignored only if... they are not
     * read at all: the reader stops at the end record */
    write_text(q, buf, n);
    CHECK(read_all(q, &nrec, &e) == 0 && nrec == 3);

    /* hand-made hostile headers */
    uint8_t h[64] = {'T', 'L', 'F', '1', 0xFF, 0xFF, 0xFF, 0x7F};
    write_text(q, h, 8);
    CHECK(read_all(q, &nrec, &e) < 0 && strstr(e.msg, "implausible"));
    unlink(p);
    unlink(q);
}

/* Writes a TLF by hand with the given header JSON (correct CRC). */
static void write_tlf_header(const char *p, const char *json)
{
    uint8_t b[512];
    size_t n = strlen(json);
    memcpy(b, "TLF1", 4);
    for (int i = 0; i < 4; i++)
        b[4 + i] = (uint8_t)(n >> (8 * i));
    memcpy(b + 8, json, n);
    uint32_t c = (uint32_t)crc32(0L, b, (uInt)(8 + n));
    for (int i = 0; i < 4; i++)
        b[8 + n + i] = (uint8_t)(c >> (8 * i));
    /* an end record with count 0 */
    uint8_t *end = b + 12 + n;
    memset(end, 0, 13);
    end[0] = 'E';
    c = (uint32_t)crc32(0L, end, 9);
    for (int i = 0; i < 4; i++)
        end[9 + i] = (uint8_t)(c >> (8 * i));
    write_text(p, b, 12 + n + 13);
}

static void test_tlf_headers(void)
{
    tl_err e = {0};
    const char *p = tmp("h.tlf");
    int nrec;
    write_tlf_header(p, "{\"dim\":4}");
    CHECK_MSG(read_all(p, &nrec, &e) == 0 && nrec == 0, "%s", e.msg);
    write_tlf_header(p, "{\"dim\":0}");
    CHECK(read_all(p, &nrec, &e) < 0 && strstr(e.msg, "no valid dim"));
    write_tlf_header(p, "{\"dim\":1e9}");
    CHECK(read_all(p, &nrec, &e) < 0 && strstr(e.msg, "no valid dim"));
    write_tlf_header(p, "{\"dim\":\"4\"}");
    CHECK(read_all(p, &nrec, &e) < 0 && strstr(e.msg, "no valid dim"));
    write_tlf_header(p, "[4]");
    CHECK(read_all(p, &nrec, &e) < 0 && strstr(e.msg, "feature header: json: expected an object"));
    write_tlf_header(p, "{\"dim\":4,\"dtype\":\"f16\"}");
    CHECK(read_all(p, &nrec, &e) < 0 && strstr(e.msg, "unsupported feature dtype"));
    write_tlf_header(p, "{\"dim\":4,\"classes\":[\"a\",3]}");
    CHECK(read_all(p, &nrec, &e) < 0 && strstr(e.msg, "class 1 is not a string"));
    write_tlf_header(p, "{\"dim\":4,");
    CHECK(read_all(p, &nrec, &e) < 0 && strstr(e.msg, "feature header") && strstr(e.msg, "json"));
    unlink(p);
}

static tl_featset load_text(const char *text, int *rc, tl_err *e)
{
    const char *p = tmp("x.tsv");
    write_text(p, text, strlen(text));
    tl_featset s;
    *rc = tl_featset_load(p, &s, e);
    unlink(p);
    return s;
}

static void tsv_bad(const char *text, const char *want)
{
    tl_err e = {0};
    int rc;
    tl_featset s = load_text(text, &rc, &e);
    CHECK_MSG(rc < 0, "accepted TSV: %s", text);
    if (rc == 0)
        tl_featset_free(&s);
    else
        CHECK_MSG(strstr(e.msg, want) != NULL, "TSV %s: message '%s', wanted '%s'", text, e.msg, want);
}

static void test_tsv(void)
{
    tl_err e = {0};
    int rc;
    /* no #classes: label names become sorted classes; missing label -> -1 */
    tl_featset s = load_text("img1\tdog\t1\t2\nimg2\tcat\t3\t4\n\nimg3\t\t5\t6\r\n# comment\nimg4\tdog\t7\t8\n",
                             &rc, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc == 0) {
        CHECK(s.n == 4 && s.info.dim == 2 && s.info.nclasses == 2);
        CHECK(!strcmp(s.info.classes[0], "cat") && !strcmp(s.info.classes[1], "dog"));
        CHECK(s.y[0] == 1 && s.y[1] == 0 && s.y[2] == -1 && s.y[3] == 1);
        CHECK(s.X[0] == 1 && s.X[3] == 4 && s.X[5] == 6 && s.X[7] == 8);
        CHECK(!strcmp(s.paths[2], "img3"));
        tl_featset_free(&s);
    }
    /* with #classes, their order wins, and an unlisted class is an error */
    s = load_text("#dim\t2\n#classes\t[\"zebra\",\"ant\"]\n#model\tm x\n#layer\tl\na\tant\t1\t2\nb\tzebra\t3\t4\n", &rc,
                  &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc == 0) {
        CHECK(s.info.nclasses == 2 && !strcmp(s.info.classes[0], "zebra") && s.y[0] == 1 && s.y[1] == 0);
        CHECK(!strcmp(s.info.model, "m x") && !strcmp(s.info.layer, "l"));
        tl_featset_free(&s);
    }
    /* numbers in every spelling strtof accepts that we print; a feature
     * file never holds a non-finite value (issue 15) */
    s = load_text("a\t\t-0\t1e-3\t3.4028235e38\t1.5E+2\n", &rc, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc == 0) {
        CHECK(s.info.dim == 4 && signbit(s.X[0]) && s.X[1] == 1e-3f && s.X[2] == 3.4028235e38f && s.X[3] == 150);
        tl_featset_free(&s);
    }
    tsv_bad("a\t\t1\tinf\n", "line 1, record 1: column 4 ('inf') is not a finite number");
    tsv_bad("a\t\t1\t-inf\n", "not a finite number");
    tsv_bad("a\t\tnan\t1\n", "line 1, record 1: column 3 ('nan\t1') is not a finite number");
    tsv_bad("a\t\t1\t1e39\n", "column 4 ('1e39') is not a finite number");
    /* header only */
    s = load_text("#tl-features\t1\n#dim\t3\n", &rc, &e);
    CHECK(rc == 0 && s.n == 0 && s.info.dim == 3);
    if (rc == 0)
        tl_featset_free(&s);
    /* Found by fuzzing: 14 bytes claiming the largest dim made the loader
     * reserve 1024 rows of it (64 GB) before reading any. */
    s = load_text("#dim\t16777216\n", &rc, &e);
    CHECK_MSG(rc == 0 && s.n == 0 && s.info.dim == 16777216, "huge #dim: %s", rc ? e.msg : "");
    if (rc == 0)
        tl_featset_free(&s);

    tsv_bad("a\tdog\t1\t2\nb\tdog\t1\n", "line 2, record 2: 1 features, expected 2");
    tsv_bad("a\tdog\t1\t2\nb\tdog\t1\t2\t3\n", "line 2, record 2: more than 2 features");
    tsv_bad("a\tdog\t1\t2\nb\tdog\t1\t\t2\n", "line 2");    /* an empty column */
    tsv_bad("a\tdog\t1\t2\nb\tdog\t\t1\t2\n", "line 2");    /* an empty first column */
    tsv_bad("a\tdog\t1\t2\nb\tdog\t1\tx\n", "line 2, record 2: column 4 is not a number");
    tsv_bad("a\tdog\t1\t2\nb\tdog\t1\t2x\n", "column 4 is not a number");
    tsv_bad("a\tdog\t1\t2\nb\tdog\t1 \t2\n", "column 3 is not a number");
    tsv_bad("a\tdog\t1\t2\nb\n", "line 2, record 2: no label column");
    tsv_bad("a\tdog\t1\t2\nb\tdog\n", "line 2, record 2: no features");
    tsv_bad("a\tdog\n", "no feature columns");
    tsv_bad("#dim\tx\n", "#dim 'x' is not a whole number");
    tsv_bad("#dim\t-1\n", "#dim '-1' is not a whole number");
    tsv_bad("#classes\t[\"a\"\n", "#classes");
    tsv_bad("#classes\t[\"a\"]\nx\tb\t1\n", "label 'b' is not among the #classes");
    tsv_bad("# only a comment\n", "empty feature file");
    tsv_bad("", "empty input");
}

static void npy_write(const char *p, const char *dict, const float *data, size_t nfloat, int version)
{
    uint8_t b[1024];
    size_t n = strlen(dict);
    int pad = (int)((64 - (10 + n + 1) % 64) % 64);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)version;
    b[7] = 0;
    size_t hlen = n + (size_t)pad + 1;
    b[8] = (uint8_t)hlen;
    b[9] = (uint8_t)(hlen >> 8);
    memcpy(b + 10, dict, n);
    memset(b + 10 + n, ' ', (size_t)pad);
    b[10 + n + pad] = '\n';
    memcpy(b + 10 + hlen, data, nfloat * 4);
    write_text(p, b, 10 + hlen + nfloat * 4);
}

static void test_npy(void)
{
    tl_err e = {0};
    const char *p = tmp("n.npy");
    float d[6] = {1, 2, 3, 4, 5, 6};
    tl_featset s;
    npy_write(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", d, 6, 1);
    CHECK_MSG(tl_featset_load(p, &s, &e) == 0, "%s", e.msg);
    CHECK(s.n == 2 && s.info.dim == 3 && s.X[5] == 6 && s.y[1] == -1 && !strcmp(s.paths[1], "row2"));
    tl_featset_free(&s);
    npy_write(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", d, 0, 1);
    CHECK(tl_featset_load(p, &s, &e) == 0 && s.n == 0 && s.info.dim == 3);
    tl_featset_free(&s);

    npy_write(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }", d, 6, 1);
    CHECK(tl_featset_load(p, &s, &e) < 0 && strstr(e.msg, "truncated at row 2"));
    npy_write(p, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", d, 6, 1);
    CHECK(tl_featset_load(p, &s, &e) < 0 && strstr(e.msg, "little-endian float32"));
    npy_write(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 3), }", d, 6, 1);
    CHECK(tl_featset_load(p, &s, &e) < 0 && strstr(e.msg, "little-endian float32"));
    npy_write(p, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", d, 6, 1);
    CHECK(tl_featset_load(p, &s, &e) < 0 && strstr(e.msg, "C order"));
    npy_write(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", d, 6, 1);
    CHECK(tl_featset_load(p, &s, &e) < 0 && strstr(e.msg, "(rows, dim)"));
    npy_write(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", d, 6, 1);
    CHECK(tl_featset_load(p, &s, &e) < 0 && strstr(e.msg, "(rows, dim)"));
    npy_write(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }", d, 6, 1);
    CHECK(tl_featset_load(p, &s, &e) < 0 && strstr(e.msg, "(rows, dim)"));
    npy_write(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0), }", d, 6, 1);
    CHECK(tl_featset_load(p, &s, &e) < 0 && strstr(e.msg, "(rows, dim)"));
    npy_write(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", d, 6, 2);
    CHECK(tl_featset_load(p, &s, &e) < 0 && strstr(e.msg, "NPY version"));
    /* header length past the end of the file */
    uint8_t b[16] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0xFF, 0xFF, '{'};
    write_text(p, b, 11);
    CHECK(tl_featset_load(p, &s, &e) < 0 && strstr(e.msg, "truncated NPY header"));
    write_text(p, b, 8);
    CHECK(tl_featset_load(p, &s, &e) < 0);
    /* a strict prefix of the magic: reported as a cut file, not as TSV */
    write_text(p, b, 4);
    CHECK(tl_featset_load(p, &s, &e) < 0 && strstr(e.msg, "truncated"));
    write_text(p, "TL", 2);
    CHECK(tl_featset_load(p, &s, &e) < 0 && strstr(e.msg, "truncated"));
    CHECK(tl_featset_load(tmp("absent.tlf"), &s, &e) < 0 && strstr(e.msg, "absent.tlf"));
    unlink(p);
}

/* Multi-label files: sets (several, one, none, unlabelled) through TLF and
 * TSV, the streaming reader's label list and joined names, the in-memory
 * set's Y, TSV without #classes, damage, and what refuses them. */
static const int ml_sets[NREC][4] = {{2, 2, 0}, {1, 1}, {-1}, {0}}; /* count, labels... */

static int write_ml(const char *p, int format, tl_err *e)
{
    tl_feat_info info;
    info_set(&info);
    info.multilabel = 1;
    info.classes = (char *[]){"ants", "bees", "cafe"};
    tl_featw *w;
    if (tl_featw_open(&w, p, format, &info, e))
        return -1;
    for (int i = 0; i < NREC; i++)
        if (tl_featw_add_labels(w, paths[i], ml_sets[i] + 1, ml_sets[i][0], vecs[i], e)) {
            tl_featw_abort(w);
            return -1;
        }
    return tl_featw_close(w, e);
}

static void test_multilabel(void)
{
    static const char *const joined[NREC] = {"ants,cafe", "bees", "-", ""};
    for (int f = 0; f < 2; f++) {
        tl_err e = {0};
        const char *p = tmp(f ? "ml.tsv" : "ml.tlf");
        CHECK_MSG(write_ml(p, f ? TL_FEAT_TSV : TL_FEAT_TLF, &e) == 0, "%s", e.msg);
        tl_featr *r;
        if (tl_featr_open(&r, p, &e)) {
            CHECK_MSG(0, "open %s: %s", p, e.msg);
            continue;
        }
        CHECK(tl_featr_info(r)->multilabel);
        float v[DIM];
        const char *path, *ln;
        int label, n = 0, rc;
        while ((rc = tl_featr_next(r, &path, &ln, &label, v, &e)) == 1 && n < NREC) {
            int nl;
            const int *ls = tl_featr_labels(r, &nl);
            CHECK_MSG(label == ml_sets[n][0] && nl == label, "format %d record %d: %d labels", f, n, label);
            for (int j = 0; j < nl && j < 3; j++) /* written 2,0: read back ascending */
                CHECK(ls[j] == (n == 0 ? j * 2 : ml_sets[n][1 + j]));
            CHECK_MSG(!strcmp(ln, joined[n]), "format %d record %d: names '%s'", f, n, ln);
            CHECK(same_floats(v, vecs[n], DIM));
            n++;
        }
        CHECK_MSG(rc == 0 && n == NREC, "%s: %s", p, e.msg);
        tl_featr_close(r);
        tl_featset s;
        rc = tl_featset_load(p, &s, &e);
        CHECK_MSG(rc == 0, "load %s: %s", p, e.msg);
        if (rc)
            continue;
        CHECK(s.info.multilabel && s.Y && s.n == NREC && s.info.nclasses == 3);
        static const unsigned char want[NREC][3] = {{1, 0, 1}, {0, 1, 0}, {0, 0, 0}, {0, 0, 0}};
        CHECK(!memcmp(s.Y, want, sizeof want));
        CHECK(s.y[0] == 2 && s.y[1] == 1 && s.y[2] == -1 && s.y[3] == 0);
        tl_featset_free(&s);
    }
    /* TSV without #classes: classes from the names, sorted */
    tl_err e = {0};
    int rc;
    tl_featset s = load_text("#multilabel\t1\na\tsky,sea\t1\nb\t-\t2\nc\t\t3\nd\tsea,sea\t4\n", &rc, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc == 0) {
        CHECK(s.info.nclasses == 2 && !strcmp(s.info.classes[0], "sea") && !strcmp(s.info.classes[1], "sky"));
        static const unsigned char want[4][2] = {{1, 1}, {0, 0}, {0, 0}, {1, 0}};
        CHECK(s.Y && !memcmp(s.Y, want, sizeof want));
        CHECK(s.y[0] == 2 && s.y[1] == -1 && s.y[2] == 0 && s.y[3] == 1);
        tl_featset_free(&s);
    }
    tsv_bad("#multilabel\t1\na\tsky,,sea\t1\n", "record 1: empty label");
    tsv_bad("#multilabel\t1\na\tsky\t1\nb\tdog, cat\t1\n", "record 2: label ' cat' begins or ends with a space");
    tsv_bad("#multilabel\t1\n#classes\t[\"sea\"]\na\tsea,sky\t1\n", "record 1: label 'sky' is not among");
    /* the writer refuses classes it could not write back */
    tl_feat_info info;
    info_set(&info);
    info.multilabel = 1;
    info.classes = (char *[]){"a", "tench, Tinca tinca"};
    info.nclasses = 2;
    tl_featw *w;
    CHECK(tl_featw_open(&w, tmp("bad.tlf"), TL_FEAT_TLF, &info, &e) < 0 && strstr(e.msg, "tench, Tinca"));
    info.classes = (char *[]){"a", "-"};
    CHECK(tl_featw_open(&w, tmp("bad.tlf"), TL_FEAT_TLF, &info, &e) < 0);
    /* a single-label writer takes a set of one, refuses more */
    info_set(&info);
    CHECK(tl_featw_open(&w, tmp("one.tlf"), TL_FEAT_TLF, &info, &e) == 0);
    CHECK(tl_featw_add_labels(w, "x", (int[]){1}, 1, vecs[0], &e) == 0);
    CHECK(tl_featw_add_labels(w, "y", (int[]){1, 2}, 2, vecs[0], &e) < 0 && strstr(e.msg, "2 labels"));
    tl_featw_abort(w);
    /* a header that says multilabel without version 2, or a newer version */
    write_tlf_header(tmp("h.tlf"), "{\"dim\":4,\"multilabel\":true}");
    int nrec;
    CHECK(read_all(tmp("h.tlf"), &nrec, &e) < 0 && strstr(e.msg, "version 2"));
    write_tlf_header(tmp("h.tlf"), "{\"dim\":4,\"version\":3}");
    CHECK(read_all(tmp("h.tlf"), &nrec, &e) < 0 && strstr(e.msg, "feature file version 3 was written by a newer tl"));
    write_tlf_header(tmp("h.tlf"), "{\"dim\":4,\"version\":0}");
    CHECK(read_all(tmp("h.tlf"), &nrec, &e) < 0 && strstr(e.msg, "not a whole number"));
    unlink(tmp("h.tlf"));
    /* every flipped bit of a multi-label stream is caught */
    const char *p = tmp("ml.tlf");
    uint8_t buf[4096];
    size_t n = read_bin(p, buf, sizeof buf);
    int accepted = 0;
    for (size_t pos = 0; pos < n; pos++)
        for (int bit = 0; bit < 8; bit++) {
            buf[pos] ^= (uint8_t)(1 << bit);
            write_text(tmp("flip.tlf"), buf, n);
            accepted += read_all(tmp("flip.tlf"), &nrec, &e) == 0;
            buf[pos] ^= (uint8_t)(1 << bit);
        }
    CHECK_MSG(accepted == 0, "%d flipped bits read cleanly", accepted);
    for (size_t len = 0; len < n; len++) {
        write_text(tmp("flip.tlf"), buf, len);
        accepted += read_all(tmp("flip.tlf"), &nrec, &e) == 0;
    }
    CHECK_MSG(accepted == 0, "%d cut streams read cleanly", accepted);
    unlink(tmp("flip.tlf"));
    unlink(p);
    unlink(tmp("ml.tsv"));
    unlink(tmp("one.tlf"));
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/tl-feat-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    fill_vecs();
    test_roundtrips();
    test_tlf_damage();
    test_tlf_headers();
    test_tsv();
    test_npy();
    test_multilabel();
    rmdir(dir);
    return check_finish("features");
}
