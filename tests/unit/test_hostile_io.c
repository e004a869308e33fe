/* Issue 15 in the io layer: safetensors headers with many names (indexed,
 * streamed, small in memory), repeated keys and NUL in names, non-finite
 * weights; feature files made of several streams (accepted when their
 * headers agree, refused otherwise, trailing bytes refused, each header
 * shown to the caller), non-finite values, dim 2.5 or given twice; the
 * predictions reader with many classes; manifests, label files and the
 * feature sniffer on inputs without newlines; image streams refused by
 * their header; a JPEG missing only its EOI. */
#include "check.h"
#include "core/json.h"
#include "io/checkpoint.h"
#include "io/convert_st.h"
#include "io/dataset.h"
#include "io/features.h"
#include "io/image.h"
#include "io/predictions.h"
#include "io/safetensors.h"

#include <malloc.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char dir[64];

static const char *tmp(const char *name)
{
    static char p[8][160];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void write_bytes(const char *p, const void *data, size_t n)
{
    FILE *f = fopen(p, "wb");
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

static size_t heap_in_use(void) { return mallinfo2().uordblks; }

/* ---- safetensors ---- */

static void write_st(const char *p, const char *header, size_t ndata, const void *data)
{
    size_t h = strlen(header);
    uint8_t *b = calloc(8 + h + ndata + 1, 1);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    if (data)
        memcpy(b + 8 + h, data, ndata);
    write_bytes(p, b, 8 + h + ndata);
    free(b);
}

static void st_fail(const char *header, size_t ndata, const char *want)
{
    const char *p = tmp("h.safetensors");
    write_st(p, header, ndata, NULL);
    tl_st_file f;
    tl_err e = {0};
    int rc = tl_st_open(p, &f, &e);
    CHECK_MSG(rc < 0 && strstr(e.msg, want), "%.60s: %s, wanted '%s'", header, rc ? e.msg : "accepted", want);
    if (rc == 0)
        tl_st_close(&f);
}

static void test_safetensors_many_names(void)
{
    /* 200,000 empty tensors (the 11.7 MB file): indexed, not compared pairwise */
    int n = 200000;
    tl_strbuf b = {0};
    tl_strbuf_printf(&b, "%s", "{\"__metadata__\":{\"k\":\"v\"}");
    for (int i = 0; i < n; i++)
        tl_strbuf_printf(&b, ",\"t%d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}", i);
    tl_strbuf_add(&b, "}", 1);
    const char *p = tmp("many.safetensors");
    write_st(p, b.s, 0, NULL);
    tl_st_file f;
    tl_err e = {0};
    size_t before = heap_in_use();
    int rc = tl_st_open(p, &f, &e);
    size_t kept = heap_in_use() - before;
    CHECK_MSG(rc == 0 && f.ntensors == n, "%s", e.msg);
    /* the contract in tl.7: at most 4 bytes per header byte */
    CHECK_MSG(kept <= 4 * b.len, "a %zu-byte header keeps %zu bytes", b.len, kept);
    if (rc == 0) {
        CHECK(tl_st_find(&f, "t123456") == &f.tensors[123456] && tl_st_find(&f, "t200000") == NULL);
        CHECK(!strcmp(tl_st_meta(&f, "k"), "v"));
        tl_st_close(&f);
    }
    /* the same with one name repeated at the end */
    b.s[b.len - 1] = ',';
    tl_strbuf_printf(&b, "%s", "\"t7\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}");
    write_st(p, b.s, 0, NULL);
    CHECK(tl_st_open(p, &f, &e) < 0 && strstr(e.msg, "duplicate key \"t7\""));
    tl_strbuf_free(&b);

    /* metadata: many keys are fine up to the limit, repeated ones never */
    tl_strbuf m = {0};
    tl_strbuf_printf(&m, "%s", "{\"__metadata__\":{");
    for (int i = 0; i <= TL_ST_MAX_META; i++)
        tl_strbuf_printf(&m, "%s\"k%d\":\"\"", i ? "," : "", i);
    tl_strbuf_add(&m, "}}", 2);
    st_fail(m.s, 0, "__metadata__ has more than 65536 entries");
    tl_strbuf_free(&m);
    st_fail("{\"__metadata__\":{\"tl.arch\":\"a\",\"x\":\"\",\"tl.arch\":\"b\"}}", 0, "duplicate key \"tl.arch\"");
    st_fail("{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", 0, "__metadata__ value 'k' holds a NUL character");
    st_fail("{\"w\\u0000x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, "\\u0000 in an object key");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0,
            "duplicate key \"dtype\"");
    /* nesting inside a skipped field is still checked */
    char deep[400] = "{\"a\":{\"x\":";
    for (int i = 0; i < 100; i++)
        strcat(deep, "[");
    st_fail(deep, 0, "nesting too deep");
}

static void test_nonfinite_weights(void)
{
    float v[4] = {1, 2, NAN, 4};
    const char *p = tmp("nan.safetensors");
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, v);
    tl_st_file f;
    tl_err e = {0};
    CHECK(tl_st_open(p, &f, &e) == 0);
    float out[4];
    const tl_st_tensor *t = tl_st_find(&f, "w");
    CHECK(t && tl_st_to_f32(t, out, &e) == 0); /* conversion alone keeps NaN */
    CHECK(t && tl_st_load_f32(t, out, &e) < 0 && strstr(e.msg, "tensor 'w': value 2 of 4 is not finite"));
    tl_st_close(&f);
    double big[1] = {1e300}; /* finite as F64, infinite as F32 */
    write_st(p, "{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, big);
    CHECK(tl_st_open(p, &f, &e) == 0);
    t = tl_st_find(&f, "w");
    CHECK(t && tl_st_load_f32(t, out, &e) < 0 && strstr(e.msg, "not finite (inf)"));
    tl_st_close(&f);
}

static void test_st_writer(void)
{
    const char *p = tmp("w.safetensors");
    float x[2] = {1, 2};
    int64_t s2[1] = {2};
    tl_err e = {0};
    tl_st_writer *w = tl_st_writer_new();
    CHECK(tl_st_add(w, "a", TL_F32, 1, s2, x, &e) == 0 && tl_st_add(w, "b", TL_F32, 1, s2, x, &e) == 0);
    CHECK(tl_st_add(w, "a", TL_F32, 1, s2, x, &e) == 0); /* found when writing */
    CHECK(tl_st_write(w, p, &e) < 0 && strstr(e.msg, "tensor 'a' added twice"));
    CHECK(access(p, F_OK) != 0);
    tl_st_writer_free(w);
    /* 50,000 metadata keys, each set twice: the last value, in the first place */
    w = tl_st_writer_new();
    char k[32], v[32];
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 50000; i++) {
            snprintf(k, sizeof k, "key%d", i);
            snprintf(v, sizeof v, "%d-%d", r, i);
            CHECK(tl_st_set_meta(w, k, v, &e) == 0);
        }
    CHECK(tl_st_write(w, p, &e) == 0);
    tl_st_writer_free(w);
    tl_st_file f;
    CHECK(tl_st_open(p, &f, &e) == 0);
    CHECK(f.nmeta == 50000 && !strcmp(f.meta_keys[0], "key0") && !strcmp(tl_st_meta(&f, "key49999"), "1-49999"));
    tl_st_close(&f);
}

static void test_meta_values(void)
{
    static const struct {
        const char *key, *value, *want;
    } bad[] = {
        {"tl.mean", "[0.5, Infinity, 0.5]", "tl.mean"},
        {"tl.mean", "[0.5, 1e39, 0.5]", "not a finite number"},
        {"tl.std", "[1, 1, 1e-45]", "tl.std"},
        {"tl.std", "[1, 1, 0]", "tl.std must be positive"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char h[256];
        tl_strbuf q = {0};
        tl_strbuf_json_string(&q, bad[i].value);
        snprintf(h, sizeof h, "{\"__metadata__\":{\"%s\":%s}}", bad[i].key, q.s);
        tl_strbuf_free(&q);
        const char *p = tmp("m.safetensors");
        write_st(p, h, 0, NULL);
        tl_st_file f;
        tl_err e = {0};
        CHECK(tl_st_open(p, &f, &e) == 0);
        tl_preproc pp;
        int rc = tl_preproc_from_meta(&f, &pp, &e);
        CHECK_MSG(rc < 0 && strstr(e.msg, bad[i].want), "%s=%s: %s", bad[i].key, bad[i].value, rc ? e.msg : "ok");
        tl_st_close(&f);
    }
}

/* ---- feature streams ---- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Appends a TLF stream of `n` records (dim values each, label i % 2) to f. */
static void tlf_stream(FILE *f, const char *header, int dim, int n, int label_base, float bad_value)
{
    uint8_t head[8];
    memcpy(head, "TLF1", 4);
    put_u32(head + 4, (uint32_t)strlen(header));
    uint8_t c[4];
    put_u32(c, (uint32_t)crc32(crc32(0, head, 8), (const Bytef *)header, (uInt)strlen(header)));
    fwrite(head, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    fwrite(c, 1, 4, f);
    for (int i = 0; i < n; i++) {
        uint8_t rec[256];
        char path[16];
        int plen = snprintf(path, sizeof path, "p%d", label_base + i);
        rec[0] = 'R';
        put_u32(rec + 1, (uint32_t)(i % 2));
        put_u32(rec + 5, (uint32_t)plen);
        memcpy(rec + 9, path, (size_t)plen);
        for (int d = 0; d < dim; d++) {
            float v = d == 1 && i == n - 1 ? bad_value : (float)(label_base + i);
            memcpy(rec + 9 + plen + 4 * d, &v, 4);
        }
        size_t len = 9 + (size_t)plen + 4 * (size_t)dim;
        put_u32(rec + len, (uint32_t)crc32(0, rec, (uInt)len));
        fwrite(rec, 1, len + 4, f);
    }
    uint8_t end[13] = {'E'};
    for (int i = 0; i < 8; i++)
        end[1 + i] = (uint8_t)((uint64_t)n >> (8 * i));
    put_u32(end + 9, (uint32_t)crc32(0, end, 9));
    fwrite(end, 1, 13, f);
}

#define H2 "{\"version\":1,\"dim\":2,\"dtype\":\"f32\",\"classes\":[\"a\",\"b\"],\"model\":\"m\",\"layer\":\"l\""

typedef struct {
    int n;
    uint64_t at[8];
    char shard[8][16];
} seen_streams;

/* The hook reads a key tl does not know (a run id; "shard" is one it knows). */
static int on_stream(void *user, int index, uint64_t at, const char *header, size_t len, const tl_feat_info *info,
                     tl_err *e)
{
    seen_streams *s = user;
    if (index != s->n || info->dim != 2 || s->n >= 8)
        return tl_fail(e, "bad call");
    s->at[s->n] = at;
    s->shard[s->n][0] = '\0';
    tl_jscan j;
    const char *key, *v;
    size_t n;
    int r;
    if (tl_jscan_init(&j, header, len, e) || tl_jscan_object(&j))
        return -1;
    while ((r = tl_jscan_member(&j, &key, &n)) > 0) {
        if (!strcmp(key, "run") && tl_jscan_type(&j) == TL_JSON_STRING) {
            tl_jscan_string(&j, &v, &n);
            snprintf(s->shard[s->n], 16, "%s", v);
        } else {
            tl_jscan_skip(&j);
        }
    }
    tl_jscan_free(&j);
    if (!strcmp(s->shard[s->n], "refuse"))
        return tl_fail(e, "run refused");
    s->n++;
    return 0;
}

static int read_streams(const char *p, seen_streams *s, int *n, float *sum, tl_err *e)
{
    tl_featr *r;
    memset(s, 0, sizeof *s);
    *n = 0;
    *sum = 0;
    if (tl_featr_open_ex(&r, p, on_stream, s, e))
        return -1;
    const char *path, *ln;
    int label, got;
    float v[2];
    while ((got = tl_featr_next(r, &path, &ln, &label, v, e)) == 1) {
        (*n)++;
        *sum += v[0];
    }
    tl_featr_close(r);
    return got;
}

static void test_concatenated_tlf(void)
{
    const char *p = tmp("cat.tlf");
    seen_streams s;
    int n;
    float sum;
    tl_err e = {0};
    FILE *f = fopen(p, "wb");
    tlf_stream(f, H2 ",\"run\":\"1/3\"}", 2, 3, 0, 7);
    long second = ftell(f);
    tlf_stream(f, H2 ",\"run\":\"2/3\"}", 2, 0, 100, 7); /* an empty stream */
    long third = ftell(f);
    tlf_stream(f, H2 ",\"run\":\"3/3\"}", 2, 2, 10, 7);
    fclose(f);
    CHECK_MSG(read_streams(p, &s, &n, &sum, &e) == 0, "%s", e.msg);
    CHECK(n == 5 && sum == 0 + 1 + 2 + 10 + 11 && s.n == 3);
    CHECK(s.at[0] == 0 && s.at[1] == (uint64_t)second && s.at[2] == (uint64_t)third);
    CHECK(!strcmp(s.shard[0], "1/3") && !strcmp(s.shard[2], "3/3"));
    tl_featset fs;
    CHECK(tl_featset_load(p, &fs, &e) == 0 && fs.n == 5 && !strcmp(fs.paths[4], "p11") && fs.y[3] == 0);
    tl_featset_free(&fs);

    /* the hook can refuse a stream */
    f = fopen(p, "wb");
    tlf_stream(f, H2 "}", 2, 1, 0, 7);
    tlf_stream(f, H2 ",\"run\":\"refuse\"}", 2, 1, 0, 7);
    fclose(f);
    CHECK(read_streams(p, &s, &n, &sum, &e) < 0 && strstr(e.msg, "stream 2: run refused"));

    /* headers that disagree: what differs, which stream, where */
    static const struct {
        const char *header, *want;
    } other[] = {
        {"{\"dim\":3,\"classes\":[\"a\",\"b\"],\"model\":\"m\",\"layer\":\"l\"}", "dim 3, the first stream's is 2"},
        {"{\"dim\":2,\"classes\":[\"a\"],\"model\":\"m\",\"layer\":\"l\"}", "1 classes, the first stream has 2"},
        {"{\"dim\":2,\"classes\":[\"b\",\"a\"],\"model\":\"m\",\"layer\":\"l\"}", "class 0 is 'b', the first stream's is 'a'"},
        {"{\"dim\":2,\"classes\":[\"a\",\"b\"],\"model\":\"n\",\"layer\":\"l\"}", "model 'n', the first stream's is 'm'"},
        {"{\"dim\":2,\"classes\":[\"a\",\"b\"],\"model\":\"m\"}", "layer '', the first stream's is 'l'"},
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        f = fopen(p, "wb");
        tlf_stream(f, H2 "}", 2, 2, 0, 7);
        long at = ftell(f);
        tlf_stream(f, other[i].header, i == 0 ? 3 : 2, 1, 0, 7);
        fclose(f);
        char want[160];
        snprintf(want, sizeof want, "cat.tlf: stream 2 (byte %ld): %s", at, other[i].want);
        int rc = read_streams(p, &s, &n, &sum, &e);
        CHECK_MSG(rc < 0 && strstr(e.msg, want), "%s: '%s', wanted '%s'", other[i].header, e.msg, want);
        CHECK(n == 2); /* the first stream's records came first */
    }

    /* anything else after an end record */
    static const struct {
        const char *tail;
        size_t n;
        const char *want;
    } tails[] = {
        {"\n", 1, "unexpected bytes after the end record at byte"},
        {"garbage", 7, "unexpected bytes after the end record"},
        {"TLF", 3, "a truncated stream after the end record"},
        {"TLF1\x05\0\0\0{\"dim", 12, "truncated feature header"},
        {"\0\0\0\0\0", 5, "unexpected bytes"},
    };
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        f = fopen(p, "wb");
        tlf_stream(f, H2 "}", 2, 2, 0, 7);
        fwrite(tails[i].tail, 1, tails[i].n, f);
        fclose(f);
        int rc = read_streams(p, &s, &n, &sum, &e);
        CHECK_MSG(rc < 0 && strstr(e.msg, tails[i].want), "tail %zu: '%s'", i, rc ? e.msg : "accepted");
    }
    /* a NaN in a record, a label outside the classes */
    f = fopen(p, "wb");
    tlf_stream(f, H2 "}", 2, 3, 0, NAN);
    fclose(f);
    CHECK(read_streams(p, &s, &n, &sum, &e) < 0 && strstr(e.msg, "feature record 3 (p2): value 2 is not finite"));
    f = fopen(p, "wb");
    tlf_stream(f, "{\"dim\":2,\"classes\":[\"a\"]}", 2, 2, 0, 7);
    fclose(f);
    CHECK(read_streams(p, &s, &n, &sum, &e) < 0 && strstr(e.msg, "feature record 2 (p1): label 1 is not one of the 1"));
}

static void test_tlf_header_values(void)
{
    static const struct {
        const char *header, *want;
    } bad[] = {
        {"{\"dim\":2.5}", "no valid dim"},
        {"{\"dim\":2,\"dim\":3}", "duplicate key \"dim\""},
        {"{\"dim\":2,\"classes\":[\"a\\u0000\"]}", "class 0 holds a NUL character"},
        {"{\"dim\":2,\"classes\":\"a\"}", "classes is not a list"},
        {"{\"dim\":2,\"model\":7}", "model is not a string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = tmp("bad.tlf");
        FILE *f = fopen(p, "wb");
        tlf_stream(f, bad[i].header, 2, 0, 0, 0);
        fclose(f);
        tl_featr *r;
        tl_err e = {0};
        int rc = tl_featr_open(&r, p, &e);
        CHECK_MSG(rc < 0 && strstr(e.msg, bad[i].want), "%s: %s", bad[i].header, rc ? e.msg : "accepted");
        if (rc == 0)
            tl_featr_close(r);
    }
}

static int load_tsv(const char *text, tl_featset *s, tl_err *e)
{
    const char *p = tmp("x.tsv");
    write_bytes(p, text, strlen(text));
    return tl_featset_load(p, s, e);
}

static void test_tsv_streams(void)
{
    tl_featset s;
    tl_err e = {0};
    const char *one = "#tl-features\t1\n#dim\t2\n#classes\t[\"a\",\"b\"]\nx\ta\t1\t2\n";
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s", one, one);
    CHECK_MSG(load_tsv(buf, &s, &e) == 0 && s.n == 2, "%s", e.msg);
    tl_featset_free(&s);
    snprintf(buf, sizeof buf, "%s#tl-features\t1\n#dim\t2\n#classes\t[\"a\",\"c\"]\ny\tc\t1\t2\n", one);
    CHECK(load_tsv(buf, &s, &e) < 0 && strstr(e.msg, "stream 2 (line 5): class 1 is 'c', the first stream's is 'b'"));
    CHECK(load_tsv("#dim\t2\n#dim\t2\nx\t\t1\t2\n", &s, &e) < 0 && strstr(e.msg, "line 2: #dim given twice"));
    CHECK(load_tsv("#dim\t2.5\nx\t\t1\t2\n", &s, &e) < 0 && strstr(e.msg, "#dim '2.5' is not a whole number"));
    CHECK(load_tsv("#classes\t[\"a\"]\n#classes\t[\"a\"]\n", &s, &e) < 0 && strstr(e.msg, "#classes given twice"));
    CHECK(load_tsv("#classes\t[\"a\",\"b\",\"a\"]\nx\ta\t1\n", &s, &e) < 0 && strstr(e.msg, "names 'a' twice"));
    /* a data line far longer than its dimension allows */
    size_t big = ((size_t)64 << 20) + 100;
    char *line = malloc(big + 16);
    memcpy(line, "#dim\t1\nx\t\t1", 11);
    memset(line + 11, '0', big);
    line[11 + big] = '\0';
    CHECK(load_tsv(line, &s, &e) < 0 && strstr(e.msg, "line 2: longer than"));
    free(line);
}

static void test_npy_streams(void)
{
    const char *p = tmp("x.npy");
    uint8_t b[256];
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }";
    size_t n = strlen(dict);
    int pad = (int)((64 - (10 + n + 1) % 64) % 64);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)(n + (size_t)pad + 1);
    b[9] = 0;
    memcpy(b + 10, dict, n);
    memset(b + 10 + n, ' ', (size_t)pad);
    b[10 + n + pad] = '\n';
    size_t hl = 10 + n + (size_t)pad + 1;
    float v[2] = {1, 2};
    memcpy(b + hl, v, 8);
    uint8_t two[512];
    memcpy(two, b, hl + 8);
    memcpy(two + hl + 8, b, hl + 8);
    write_bytes(p, two, 2 * (hl + 8));
    tl_featset s;
    tl_err e = {0};
    CHECK_MSG(tl_featset_load(p, &s, &e) == 0 && s.n == 2 && !strcmp(s.paths[1], "row2"), "%s", e.msg);
    tl_featset_free(&s);
    memcpy(two + hl + 8, "junk", 4);
    write_bytes(p, two, hl + 12);
    CHECK(tl_featset_load(p, &s, &e) < 0 && strstr(e.msg, "unexpected bytes after the last row"));
}

static void test_feature_writer(void)
{
    tl_feat_info info = {0};
    info.dim = 2;
    tl_featw *w;
    tl_err e = {0};
    float v[2] = {1, INFINITY};
    CHECK(tl_featw_open(&w, tmp("w.tlf"), TL_FEAT_TLF, &info, &e) == 0);
    CHECK(tl_featw_add(w, "img.jpg", -1, v, &e) < 0 && strstr(e.msg, "img.jpg: feature 2 is not finite"));
    tl_featw_abort(w);
}

/* ---- predictions, manifests, label files, the sniffer ---- */

static void test_predictions_many_classes(void)
{
    int k = 200000;
    tl_strbuf b = {0};
    tl_strbuf_add(&b, "#path\ttrue\tpred", 15);
    for (int i = 0; i < k; i++)
        tl_strbuf_printf(&b, "\tc%d", i);
    tl_strbuf_add(&b, "\n", 1);
    const char *p = tmp("p.tsv");
    write_bytes(p, b.s, b.len);
    tl_pred_reader r;
    tl_err e = {0};
    size_t before = heap_in_use();
    CHECK_MSG(tl_pred_open(&r, p, NULL, 0, &e) == 0 && r.k == k, "%s", e.msg);
    size_t kept = heap_in_use() - before;
    /* the names' bytes (once), then a pointer, a score and an index entry each, and the line */
    CHECK_MSG(kept <= 3 * b.len + 16 * (size_t)k, "a %zu-byte header keeps %zu bytes", b.len, kept);
    tl_pred_close(&r);
    b.s[b.len - 1] = '\t';
    tl_strbuf_printf(&b, "%s", "c17\n");
    write_bytes(p, b.s, b.len);
    CHECK(tl_pred_open(&r, p, NULL, 0, &e) < 0 && strstr(e.msg, "line 1: class 'c17' appears twice"));
    tl_strbuf_free(&b);
    /* a line with no end */
    CHECK(tl_pred_open(&r, "/dev/zero", NULL, 0, &e) < 0 && strstr(e.msg, "/dev/zero: line 1: NUL byte"));
}

static void test_text_inputs(void)
{
    tl_dataset d;
    tl_err e = {0};
    CHECK(tl_dataset_open("/dev/zero", &d, &e) < 0 && strstr(e.msg, "/dev/zero: line 1: NUL byte"));
    size_t big = TL_DATASET_MAX_LINE + 1;
    char *s = malloc(big + 8);
    memset(s, 'a', big);
    memcpy(s + big, ".jpg\n", 6);
    const char *p = tmp("m.tsv");
    write_bytes(p, s, big + 5);
    CHECK(tl_dataset_open(p, &d, &e) < 0 && strstr(e.msg, "m.tsv: line 1: longer than 1048576 bytes"));
    char **labels;
    int n;
    CHECK(tl_read_labels(p, &labels, &n, &e) < 0 && strstr(e.msg, "line 1: longer than"));
    CHECK(tl_read_labels("/dev/zero", &labels, &n, &e) < 0 && strstr(e.msg, "NUL byte"));
    /* the sniffer reads a bounded prefix: a huge first line is judged by its start */
    memcpy(s, "p\tl\t0.5\t", 8);
    write_bytes(p, s, big + 5);
    CHECK(tl_feat_sniff(p) == 1);
    CHECK(tl_feat_sniff("/dev/zero") == 0);
    free(s);
}

/* ---- images ---- */

static void test_image_streams(void)
{
    /* a PPM header claiming 100000 x 100000, then endless bytes: refused at
     * the header (a FIFO fed by a child that writes until the pipe closes) */
    const char *fifo = tmp("img.fifo");
    unlink(fifo);
    if (mkfifo(fifo, 0600) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            FILE *f = fopen(fifo, "wb");
            fputs("P6\n100000 100000\n255\n", f);
            static char zeros[1 << 16];
            for (int i = 0; i < 16384 && fwrite(zeros, 1, sizeof zeros, f) == sizeof zeros; i++)
                ;
            _exit(0);
        }
        tl_image img = {0};
        tl_err e = {0};
        CHECK(tl_image_decode_file(fifo, &img, 0, &e) < 0 && strstr(e.msg, "above the limit of 100000000 pixels"));
        tl_image_free(&img);
        int st;
        waitpid(pid, &st, 0);
        unlink(fifo);
    }
    /* a small image then 20 MiB: more than its header allows */
    size_t n = (20u << 20) + 64;
    uint8_t *b = calloc(n, 1);
    memcpy(b, "P5\n4 4\n255\n", 11);
    const char *p = tmp("pad.pgm");
    write_bytes(p, b, n);
    tl_image img = {0};
    tl_err e = {0};
    CHECK(tl_image_decode_file(p, &img, 0, &e) < 0 && strstr(e.msg, "larger than the image its header describes"));
    /* not an image at all */
    write_bytes(p, b + 20, 4096);
    CHECK(tl_image_decode_file(p, &img, 0, &e) < 0 && strstr(e.msg, "unknown image format"));
    tl_image_free(&img);
    free(b);
}

static void test_jpeg_without_eoi(void)
{
    tl_image a = {0}, x = {0};
    a.w = 37;
    a.h = 23;
    a.px = malloc((size_t)a.w * a.h * 3);
    for (int i = 0; i < a.w * a.h * 3; i++)
        a.px[i] = (uint8_t)(i * 37 % 251);
    const char *p = tmp("a.jpg");
    tl_err e = {0};
    CHECK(tl_image_write_jpeg(p, &a, 90, &e) == 0);
    FILE *f = fopen(p, "rb");
    uint8_t buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    tl_image full = {0};
    CHECK(n > 2 && buf[n - 2] == 0xFF && buf[n - 1] == 0xD9);
    CHECK(tl_image_decode_mem(buf, n, &full, 0, &e) == 0);
    /* only the EOI missing: the same pixels */
    CHECK_MSG(tl_image_decode_mem(buf, n - 2, &x, 0, &e) == 0, "%s", e.msg);
    CHECK(x.w == full.w && x.h == full.h && !memcmp(x.px, full.px, (size_t)x.w * x.h * 3));
    /* any byte of scan data missing: truncated */
    for (size_t cut = n - 3; cut > n - 40; cut--)
        CHECK_MSG(tl_image_decode_mem(buf, cut, &x, 0, &e) < 0 && strstr(e.msg, "truncated JPEG data"),
                  "cut at %zu of %zu: %s", cut, n, e.msg);
    tl_image_free(&x);
    tl_image_free(&full);
    free(a.px);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/tl-hostile-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    test_safetensors_many_names();
    test_nonfinite_weights();
    test_st_writer();
    test_meta_values();
    test_concatenated_tlf();
    test_tlf_header_values();
    test_tsv_streams();
    test_npy_streams();
    test_feature_writer();
    test_predictions_many_classes();
    test_text_inputs();
    test_image_streams();
    test_jpeg_without_eoi();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    return check_finish("hostile_io");
}
