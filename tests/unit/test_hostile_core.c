/* Issue 15, the core pieces every parser now goes through: the JSON
 * scanner (duplicate keys, NUL in keys, the pull API), the compact JSON
 * tree (one allocation, within 9 bytes per input byte), the sorted string
 * index (duplicates and lookups without comparing all pairs) and the line
 * reader (maximum length, read errors, NUL bytes, never end-of-input by
 * mistake). The growth checks count work (comparisons through the index's
 * key function) instead of timing anything. */
#include "check.h"
#include "core/json.h"
#include "core/lines.h"
#include "core/strindex.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *s, tl_json *v, tl_err *e) { return tl_json_parse(s, strlen(s), v, e); }

static void test_duplicate_keys(void)
{
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"{\"a\":1,\"a\":2}", "duplicate key \"a\" in the object at byte 0"},
        {"{\"a\":1,\"b\":2,\"c\":3,\"b\":4}", "duplicate key \"b\""},
        {"[0,{\"x\":{\"k\":1,\"k\":1}}]", "duplicate key \"k\" in the object at byte 8"},
        /* the same key in two objects is fine, one object with it twice is not */
        {"{\"o\":{\"a\":1},\"p\":{\"a\":1},\"o\":2}", "duplicate key \"o\" in the object at byte 0"},
        /* escapes are compared unescaped */
        {"{\"\\u0061\":1,\"a\":2}", "duplicate key \"a\""},
        {"{\"a\\u0000b\":1}", "\\u0000 in an object key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tl_err e = {0};
        tl_json v;
        int rc = parse(bad[i].text, &v, &e);
        CHECK_MSG(rc < 0, "accepted %s", bad[i].text);
        CHECK_MSG(rc >= 0 || strstr(e.msg, bad[i].want), "%s: '%s', wanted '%s'", bad[i].text, e.msg, bad[i].want);
        if (rc == 0)
            tl_json_free(&v);
    }
    tl_err e = {0};
    tl_json v;
    CHECK(parse("{\"o\":{\"a\":1},\"p\":{\"a\":{\"a\":[{\"a\":0}]}}}", &v, &e) == 0);
    tl_json_free(&v);
    /* a string value may hold NUL, a key may not */
    CHECK(parse("{\"k\":\"a\\u0000b\"}", &v, &e) == 0 && v.items[0].string_len == 3);
    tl_json_free(&v);
}

static void test_scanner(void)
{
    const char *text = " {\"dim\": 3, \"classes\": [\"a\", \"b\\\"\"], \"skip\": {\"x\": [1, {}], \"y\": null},"
                       " \"flag\": true} ";
    tl_jscan j;
    tl_err e = {0};
    const char *key, *s;
    size_t len;
    double d;
    int b;
    CHECK(tl_jscan_init(&j, text, strlen(text), &e) == 0);
    CHECK(tl_jscan_type(&j) == TL_JSON_OBJECT && tl_jscan_object(&j) == 0);
    CHECK(tl_jscan_member(&j, &key, &len) == 1 && !strcmp(key, "dim") && len == 3);
    CHECK(tl_jscan_number(&j, &d) == 0 && d == 3);
    CHECK(tl_jscan_member(&j, &key, &len) == 1 && !strcmp(key, "classes"));
    CHECK(tl_jscan_array(&j) == 0);
    CHECK(tl_jscan_item(&j) == 1 && tl_jscan_string(&j, &s, &len) == 0 && !strcmp(s, "a"));
    CHECK(tl_jscan_item(&j) == 1 && tl_jscan_string(&j, &s, &len) == 0 && !strcmp(s, "b\"") && len == 2);
    CHECK(tl_jscan_item(&j) == 0);
    CHECK(tl_jscan_member(&j, &key, &len) == 1 && !strcmp(key, "skip") && tl_jscan_skip(&j) == 0);
    CHECK(tl_jscan_member(&j, &key, &len) == 1 && tl_jscan_bool(&j, &b) == 0 && b == 1);
    CHECK(tl_jscan_member(&j, &key, &len) == 0);
    CHECK(tl_jscan_finish(&j) == 0);
    tl_jscan_free(&j);

    /* wrong types and structure give "json: ... at byte N" */
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"[1,]", "unexpected character at byte 3"},
        {"{\"a\":1,}", "expected object key at byte 7"},
        {"{\"a\" 1}", "expected ':'"},
        {"[1 2]", "expected ',' or ']' at byte 3"},
        {"{\"a\":1,\"a\":[1,2,{}]}", "duplicate key \"a\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(tl_jscan_init(&j, bad[i].text, strlen(bad[i].text), &e) == 0);
        int rc = tl_jscan_skip(&j) || tl_jscan_finish(&j);
        CHECK_MSG(rc && strstr(e.msg, bad[i].want), "%s: '%s', wanted '%s'", bad[i].text, rc ? e.msg : "ok",
                  bad[i].want);
        tl_jscan_free(&j);
    }
    CHECK(tl_jscan_init(&j, "\"s\"", 3, &e) == 0);
    CHECK(tl_jscan_number(&j, &d) < 0 && strstr(e.msg, "expected a number at byte 0"));
    tl_jscan_free(&j);
    CHECK(tl_jscan_init(&j, "{} x", 4, &e) == 0 && tl_jscan_skip(&j) == 0);
    CHECK(tl_jscan_finish(&j) < 0 && strstr(e.msg, "trailing characters at byte 3"));
    tl_jscan_free(&j);
}

/* Bytes in use on the heap, to see what a parse keeps. */
static size_t heap_in_use(void) { return mallinfo2().uordblks; }

static void test_tree_memory(void)
{
    /* [0,0,...]: the densest text, 2 bytes a value */
    size_t n = 1000000;
    char *text = malloc(2 * n + 2);
    text[0] = '[';
    for (size_t i = 0; i < n; i++) {
        text[1 + 2 * i] = '0';
        text[2 + 2 * i] = i + 1 < n ? ',' : ']';
    }
    size_t len = 2 * n + 1;
    tl_json v;
    tl_err e = {0};
    size_t before = heap_in_use();
    CHECK(tl_json_parse(text, len, &v, &e) == 0 && v.type == TL_JSON_ARRAY && v.count == (int)n);
    size_t kept = heap_in_use() - before;
    CHECK_MSG(kept <= 9 * len, "a %zu-byte array keeps %zu bytes (%.1f per input byte)", len, kept,
              (double)kept / (double)len);
    CHECK(v.items[n - 1].type == TL_JSON_NUMBER && v.items[n - 1].number == 0);
    tl_json_free(&v);
    CHECK(heap_in_use() <= before + 4096);

    /* {"k0":"","k1":"",...}: keys and strings */
    tl_strbuf b = {0};
    tl_strbuf_add(&b, "{", 1);
    for (int i = 0; i < 200000; i++)
        tl_strbuf_printf(&b, "%s\"%x\":\"\"", i ? "," : "", i);
    tl_strbuf_add(&b, "}", 1);
    before = heap_in_use();
    CHECK(tl_json_parse(b.s, b.len, &v, &e) == 0 && v.count == 200000);
    kept = heap_in_use() - before;
    CHECK_MSG(kept <= 9 * b.len, "a %zu-byte object keeps %zu bytes", b.len, kept);
    CHECK(!strcmp(tl_json_key(&v, 199999), "30d3f") && v.items[5].type == TL_JSON_STRING);
    CHECK(tl_json_get(&v, "1f") == &v.items[31]);
    tl_json_free(&v);
    tl_strbuf_free(&b);
    free(text);
}

/* Counts key lookups: the index's work. */
typedef struct {
    char **s;
    long calls;
} counted;

static const char *counted_key(const void *ctx, int i)
{
    counted *c = (counted *)ctx;
    c->calls++;
    return c->s[i];
}

static long index_work(int n, int with_dup)
{
    counted c = {calloc((size_t)n, sizeof(char *)), 0};
    for (int i = 0; i < n; i++) {
        c.s[i] = malloc(16);
        snprintf(c.s[i], 16, "n%07d", (i * 7919) % n);
    }
    if (with_dup)
        strcpy(c.s[n - 1], c.s[n / 3]);
    tl_strindex ix;
    int dup[2] = {-1, -1};
    tl_err e = {0};
    int d = tl_strindex_build(&ix, n, counted_key, &c, dup, &e);
    CHECK(d == with_dup);
    if (with_dup)
        CHECK(dup[0] == n / 3 && dup[1] == n - 1);
    for (int i = 0; i < n; i += 97)
        CHECK(tl_strindex_find(&ix, c.s[i]) == (with_dup && i == n - 1 ? n / 3 : i));
    CHECK(tl_strindex_find(&ix, "absent") == -1);
    tl_strindex_free(&ix);
    for (int i = 0; i < n; i++)
        free(c.s[i]);
    free(c.s);
    return c.calls;
}

static void test_strindex(void)
{
    /* n log n: 10x the names, about 13x the work; n^2 would be 100x */
    long w1 = index_work(20000, 0), w10 = index_work(200000, 1);
    CHECK_MSG(w10 < 20 * w1, "index work %ld for 20000 names, %ld for 200000", w1, w10);
    /* the pair reported is the one whose second name comes first */
    const char *s[] = {"b", "a", "c", "a", "b", "a"};
    tl_strindex ix;
    int dup[2];
    tl_err e = {0};
    CHECK(tl_strindex_build_strings(&ix, s, 6, dup, &e) == 1 && dup[0] == 1 && dup[1] == 3);
    CHECK(tl_strindex_find(&ix, "a") == 1 && tl_strindex_find(&ix, "b") == 0 && tl_strindex_find(&ix, "c") == 2);
    tl_strindex_free(&ix);
    CHECK(tl_strindex_build_strings(&ix, s, 0, dup, &e) == 0 && tl_strindex_find(&ix, "a") == -1);
    tl_strindex_free(&ix);
}

static FILE *text_file(const char *s, size_t n)
{
    FILE *f = tmpfile();
    fwrite(s, 1, n, f);
    rewind(f);
    return f;
}

static void test_lines(void)
{
    tl_lines r;
    tl_err e = {0};
    char *line;
    size_t len;
    FILE *f = text_file("one\r\n\ntwo\nlast", 14);
    tl_lines_init(&r, f, "t.txt", 8);
    CHECK(tl_lines_next(&r, &line, &len, &e) == 1 && !strcmp(line, "one") && len == 3 && r.lineno == 1);
    CHECK(tl_lines_next(&r, &line, &len, &e) == 1 && len == 0);
    CHECK(tl_lines_next(&r, &line, &len, &e) == 1 && !strcmp(line, "two"));
    CHECK(tl_lines_next(&r, &line, &len, &e) == 1 && !strcmp(line, "last") && r.lineno == 4);
    CHECK(tl_lines_next(&r, &line, &len, &e) == 0);
    CHECK(tl_lines_next(&r, &line, &len, &e) == 0);
    tl_lines_free(&r);
    fclose(f);

    /* at the limit, with and without CR; one byte over is an error naming the line */
    f = text_file("12345678\n12345678\r\n123456789\n", 29);
    tl_lines_init(&r, f, "t.txt", 8);
    CHECK(tl_lines_next(&r, &line, &len, &e) == 1 && len == 8);
    CHECK(tl_lines_next(&r, &line, &len, &e) == 1 && len == 8);
    CHECK(tl_lines_next(&r, &line, &len, &e) < 0 && !strcmp(e.msg, "t.txt: line 3: longer than 8 bytes"));
    tl_lines_free(&r);
    fclose(f);

    f = text_file("ok\nb\0d\n", 7);
    tl_lines_init(&r, f, "bin", 100);
    CHECK(tl_lines_next(&r, &line, &len, &e) == 1);
    CHECK(tl_lines_next(&r, &line, &len, &e) < 0 && strstr(e.msg, "bin: line 2: NUL byte"));
    tl_lines_free(&r);
    fclose(f);

    /* a stream with no newline at all: read no further than the limit */
    f = fopen("/dev/zero", "rb");
    if (f) {
        tl_lines_init(&r, f, "/dev/zero", 1 << 20);
        CHECK(tl_lines_next(&r, &line, &len, &e) < 0 && strstr(e.msg, "/dev/zero: line 1: NUL byte"));
        tl_lines_free(&r);
        fclose(f);
    }
    /* a read error is an error, not the end (a directory read as a file) */
    f = fopen("/", "r");
    if (f) {
        tl_lines_init(&r, f, "/", 100);
        int got = tl_lines_next(&r, &line, &len, &e);
        CHECK_MSG(got < 0 && strstr(e.msg, "/: line 1: read error"), "got %d: %s", got, e.msg);
        tl_lines_free(&r);
        fclose(f);
    }
    /* bytes a sniffer read come first */
    f = text_file("c\nd\n", 4);
    tl_lines_init(&r, f, "s", 100);
    tl_lines_unread(&r, "ab", 2);
    CHECK(tl_lines_next(&r, &line, &len, &e) == 1 && !strcmp(line, "abc"));
    CHECK(tl_lines_next(&r, &line, &len, &e) == 1 && !strcmp(line, "d"));
    CHECK(r.offset == 6);
    tl_lines_free(&r);
    fclose(f);
}

static void test_helpers(void)
{
    tl_err e = {0};
    float f[3];
    CHECK(tl_json_parse_floats("[1, 1e39, 2]", f, 3, &e) < 0 && strstr(e.msg, "item 2 of"));
    CHECK(tl_json_parse_floats("[1e999, 0, 0]", f, 3, &e) < 0 && strstr(e.msg, "not a finite number"));
    char **s;
    int n;
    CHECK(tl_json_parse_strings("[\"a\", \"b\\u0000c\"]", &s, &n, &e) < 0 && strstr(e.msg, "item 1"));
    CHECK(tl_json_parse_strings("[\"a\", {\"k\":1,\"k\":2}]", &s, &n, &e) < 0);
}

int main(void)
{
    test_duplicate_keys();
    test_scanner();
    test_tree_memory();
    test_strindex();
    test_lines();
    test_helpers();
    return check_finish("hostile_core");
}
