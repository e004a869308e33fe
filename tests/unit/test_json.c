/* JSON reader and string escaping: every value type, escapes, the error
 * paths hostile headers take (truncation, deep nesting, bad escapes), and
 * the writer's output parsed back. */
#include "check.h"
#include "core/json.h"

#include <stdlib.h>
#include <string.h>

static int parse(const char *s, tl_json *v, tl_err *e) { return tl_json_parse(s, strlen(s), v, e); }

/* The parser must reject s with a message containing want. */
static void bad(const char *s, size_t len, const char *want)
{
    tl_err e = {0};
    tl_json v;
    int rc = tl_json_parse(s, len, &v, &e);
    CHECK_MSG(rc < 0, "accepted: %.*s", (int)len, s);
    CHECK_MSG(rc >= 0 || strstr(e.msg, want) != NULL, "input %.*s: message '%s', wanted '%s'", (int)len, s, e.msg, want);
    CHECK(v.type == TL_JSON_NULL && v.items == NULL && v.string == NULL); /* left clean */
    if (rc >= 0)
        tl_json_free(&v);
}

static void test_scalars(void)
{
    tl_err e = {0};
    tl_json v;
    CHECK(parse(" null ", &v, &e) == 0 && v.type == TL_JSON_NULL);
    tl_json_free(&v);
    CHECK(parse("true", &v, &e) == 0 && v.type == TL_JSON_BOOL && v.number == 1);
    tl_json_free(&v);
    CHECK(parse("\tfalse\r\n", &v, &e) == 0 && v.type == TL_JSON_BOOL && v.number == 0);
    tl_json_free(&v);
    static const struct { const char *s; double v; } nums[] = {
        {"0", 0}, {"-0", 0}, {"42", 42}, {"-17", -17}, {"3.25", 3.25}, {"1e3", 1000}, {"1E+2", 100},
        {"-2.5e-3", -2.5e-3}, {"123456789012", 123456789012.0}, {"1.7976931348623157e308", 1.7976931348623157e308},
        {"0.00000000000000000000000000000000000000000000000000000000000000000000000001", 1e-74},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        int rc = parse(nums[i].s, &v, &e);
        CHECK_MSG(rc == 0 && v.type == TL_JSON_NUMBER, "%s: %s", nums[i].s, e.msg);
        if (rc == 0)
            CHECK_MSG(v.number == nums[i].v, "%s parsed as %.17g", nums[i].s, v.number);
        tl_json_free(&v);
    }
    CHECK(parse("\"\"", &v, &e) == 0 && v.type == TL_JSON_STRING && v.string_len == 0 && v.string[0] == 0);
    tl_json_free(&v);
    CHECK(parse("\"abc\"", &v, &e) == 0 && v.type == TL_JSON_STRING && !strcmp(v.string, "abc") && v.string_len == 3);
    tl_json_free(&v);
}

static void test_escapes(void)
{
    tl_err e = {0};
    tl_json v;
    CHECK(parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", &v, &e) == 0);
    CHECK(v.type == TL_JSON_STRING && !strcmp(v.string, "a\"b\\c/d\b\f\n\r\t"));
    tl_json_free(&v);
    /* \u: one, two and three byte UTF-8, a surrogate pair (U+1F600), NUL */
    CHECK(parse("\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"", &v, &e) == 0);
    CHECK_MSG(v.string && !strcmp(v.string, "A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"), "got '%s'", v.string);
    CHECK(v.string_len == 1 + 2 + 3 + 4);
    tl_json_free(&v);
    CHECK(parse("\"x\\u0000y\"", &v, &e) == 0 && v.string_len == 3 && v.string[1] == 0 && v.string[2] == 'y');
    tl_json_free(&v);
    /* raw UTF-8 passes through */
    CHECK(parse("\"\xE6\x97\xA5\xE6\x9C\xAC\"", &v, &e) == 0 && !strcmp(v.string, "\xE6\x97\xA5\xE6\x9C\xAC"));
    tl_json_free(&v);
    /* lone surrogates become U+FFFD, and the character after one survives */
    CHECK(parse("\"\\ud800\"", &v, &e) == 0 && !strcmp(v.string, "\xEF\xBF\xBD"));
    tl_json_free(&v);
    CHECK(parse("\"\\udc00z\"", &v, &e) == 0 && !strcmp(v.string, "\xEF\xBF\xBDz"));
    tl_json_free(&v);
    CHECK(parse("\"\\ud800\\u0041\"", &v, &e) == 0);
    CHECK_MSG(v.string && !strcmp(v.string, "\xEF\xBF\xBD" "A"), "high surrogate + 'A' gave '%s'", v.string);
    tl_json_free(&v);
    CHECK(parse("\"\\ud800\\ud83d\\ude00\"", &v, &e) == 0);
    CHECK_MSG(v.string && !strcmp(v.string, "\xEF\xBF\xBD\xF0\x9F\x98\x80"), "got '%s'", v.string);
    tl_json_free(&v);
    CHECK(parse("\"\\ud800\\n\"", &v, &e) == 0 && !strcmp(v.string, "\xEF\xBF\xBD\n"));
    tl_json_free(&v);
}

static void test_containers(void)
{
    tl_err e = {0};
    tl_json v;
    CHECK(parse("[]", &v, &e) == 0 && v.type == TL_JSON_ARRAY && v.count == 0);
    tl_json_free(&v);
    CHECK(parse("{ }", &v, &e) == 0 && v.type == TL_JSON_OBJECT && v.count == 0);
    CHECK(tl_json_get(&v, "x") == NULL);
    tl_json_free(&v);
    const char *doc = "{\"a\": [1, 2.5, \"s\", true, null, {\"b\": []}], \"c\": {\"d\": {\"e\": -1}}, \"k\\u00e9y\": 7}";
    CHECK(parse(doc, &v, &e) == 0);
    CHECK(v.type == TL_JSON_OBJECT && v.count == 3);
    const tl_json *a = tl_json_get(&v, "a");
    CHECK(a && a->type == TL_JSON_ARRAY && a->count == 6);
    if (a && a->count == 6) {
        CHECK(a->items[0].type == TL_JSON_NUMBER && a->items[0].number == 1);
        CHECK(a->items[1].number == 2.5);
        CHECK(a->items[2].type == TL_JSON_STRING && !strcmp(a->items[2].string, "s"));
        CHECK(a->items[3].type == TL_JSON_BOOL && a->items[3].number == 1);
        CHECK(a->items[4].type == TL_JSON_NULL);
        const tl_json *b = tl_json_get(&a->items[5], "b");
        CHECK(b && b->type == TL_JSON_ARRAY && b->count == 0);
    }
    const tl_json *d = tl_json_get(tl_json_get(&v, "c"), "d");
    const tl_json *ee = tl_json_get(d, "e");
    CHECK(ee && ee->type == TL_JSON_NUMBER && ee->number == -1);
    const tl_json *k = tl_json_get(&v, "k\xC3\xA9y");
    CHECK(k && k->number == 7);
    CHECK(tl_json_get(&v, "missing") == NULL);
    CHECK(tl_json_get(a, "a") == NULL); /* not an object */
    CHECK(tl_json_get(NULL, "a") == NULL);
    tl_json_free(&v);
    tl_json_free(&v); /* a freed value is empty: freeing again is harmless */

    /* many items force the arrays to grow */
    char big[20000];
    size_t n = 0;
    big[n++] = '[';
    for (int i = 0; i < 2000; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, i ? ",%d" : "%d", i);
    big[n++] = ']';
    CHECK(tl_json_parse(big, n, &v, &e) == 0 && v.count == 2000);
    int ok = 1;
    for (int i = 0; i < v.count; i++)
        ok &= v.items[i].number == i;
    CHECK(ok);
    tl_json_free(&v);

    /* the parser honours len: no NUL terminator needed, bytes after ignored */
    CHECK(tl_json_parse("[1,2]xxxx", 5, &v, &e) == 0 && v.count == 2);
    tl_json_free(&v);

    /* nesting up to the limit works */
    char deep[2 * TL_JSON_MAX_DEPTH + 8];
    n = 0;
    for (int i = 0; i < TL_JSON_MAX_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < TL_JSON_MAX_DEPTH; i++)
        deep[n++] = ']';
    CHECK_MSG(tl_json_parse(deep, n, &v, &e) == 0, "%d levels: %s", TL_JSON_MAX_DEPTH, e.msg);
    tl_json_free(&v);
}

static void test_errors(void)
{
    bad("", 0, "unexpected end");
    bad("   ", 3, "unexpected end");
    bad("[1, 2", 5, "unexpected end");
    bad("[1, 2,", 6, "unexpected end");
    bad("{\"a\": 1", 7, "unexpected end");
    bad("{\"a\"", 4, "expected ':'");
    bad("{\"a\":", 5, "unexpected end");
    bad("{1: 2}", 6, "expected object key");
    bad("{\"a\" 1}", 7, "expected ':'");
    bad("[1 2]", 5, "expected ',' or ']'");
    bad("{\"a\":1 \"b\":2}", 13, "expected ',' or '}'");
    bad("[1,]", 4, "unexpected character");
    bad("\"abc", 4, "unterminated string");
    bad("\"abc\\", 5, "unterminated string");
    bad("\"abc\\\"", 6, "unterminated string");
    bad("\"\\x\"", 4, "bad escape");
    bad("\"\\u12\"", 6, "\\u escape");
    bad("\"\\u12", 5, "unterminated string");
    bad("\"\\uZZZZ\"", 8, "bad \\u escape");
    bad("\"\\ud800\\u12\"", 12, "\\u escape");
    bad("\"a\nb\"", 5, "control character");
    bad("\"a\tb\"", 5, "control character");
    bad("\"a\x01" "b\"", 5, "control character");
    bad("1 2", 3, "trailing characters");
    bad("{} x", 4, "trailing characters");
    bad("nul", 3, "unexpected character");
    bad("tru", 3, "unexpected character");
    bad("nullx", 5, "trailing characters");
    bad("'a'", 3, "unexpected character");
    bad("-", 1, "bad number");
    bad("--1", 3, "bad number");
    bad("1.2.3", 5, "bad number");
    bad("1e", 2, "bad number");
    bad("01", 2, "bad number");
    bad("1.", 2, "bad number");
    bad("-.5", 3, "bad number");
    bad(".5", 2, "unexpected character");
    bad("+1", 2, "unexpected character");
    bad("NaN", 3, "unexpected character");
    bad("Infinity", 8, "unexpected character");
    bad("0x10", 4, "trailing characters");
    bad("[1\0]", 4, "expected ',' or ']'");
    bad("\"a\0b\"", 5, "control character");

    /* deeper than the limit: an error, not a stack overflow; also far deeper */
    static char deep[200000];
    for (int depth = TL_JSON_MAX_DEPTH + 1; depth <= 100000; depth *= 10) {
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            deep[n++] = i % 2 ? '[' : '{';
        /* objects need keys: build {"":[{"":[... */
        n = 0;
        for (int i = 0; i < depth; i++) {
            if (i % 2) {
                deep[n++] = '[';
            } else {
                memcpy(deep + n, "{\"\":", 4);
                n += 4;
            }
        }
        bad(deep, n, "nesting too deep");
        memset(deep, '[', (size_t)depth);
        bad(deep, (size_t)depth, "nesting too deep");
    }
    /* the message says where */
    tl_err e = {0};
    tl_json v;
    CHECK(parse("[1, x]", &v, &e) < 0);
    CHECK_MSG(strstr(e.msg, "at byte 4") != NULL, "message: %s", e.msg);
    CHECK(strncmp(e.msg, "json: ", 6) == 0);
}

static void roundtrip(const char *s, const char *want_json, const char *want_back)
{
    tl_strbuf b = {0};
    CHECK(tl_strbuf_json_string(&b, s) == 0);
    if (want_json)
        CHECK_MSG(b.s && !strcmp(b.s, want_json), "escaped '%s' as '%s', wanted '%s'", s, b.s, want_json);
    tl_err e = {0};
    tl_json v;
    int rc = tl_json_parse(b.s, b.len, &v, &e);
    CHECK_MSG(rc == 0 && v.type == TL_JSON_STRING, "writer output %s does not parse: %s", b.s, e.msg);
    if (rc == 0)
        CHECK_MSG(!strcmp(v.string, want_back ? want_back : s), "round trip of '%s' gave '%s'", s, v.string);
    tl_json_free(&v);
    tl_strbuf_free(&b);
}

static void test_writer(void)
{
    roundtrip("plain", "\"plain\"", NULL);
    roundtrip("", "\"\"", NULL);
    roundtrip("q\"b\\s/", "\"q\\\"b\\\\s/\"", NULL);
    roundtrip("nl\ncr\rtab\t", "\"nl\\ncr\\rtab\\t\"", NULL);
    roundtrip("\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\"", NULL);
    roundtrip("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"", NULL);
    /* invalid UTF-8 becomes U+FFFD, one per bad byte */
    roundtrip("a\xFF" "b", "\"a\xEF\xBF\xBD" "b\"", "a\xEF\xBF\xBD" "b");
    roundtrip("\xC3", "\"\xEF\xBF\xBD\"", "\xEF\xBF\xBD");                       /* truncated sequence at the end */
    roundtrip("\xC3(", "\"\xEF\xBF\xBD(\"", "\xEF\xBF\xBD(");                     /* bad continuation */
    roundtrip("\xC0\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\"", "\xEF\xBF\xBD\xEF\xBF\xBD");       /* overlong '/' */
    roundtrip("\xE0\x80\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* overlong */
    roundtrip("\xED\xA0\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* UTF-8 encoded surrogate */
    roundtrip("\xF4\x90\x80\x80", NULL, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* > U+10FFFF */
    roundtrip("\xF5\x80", NULL, "\xEF\xBF\xBD\xEF\xBF\xBD");
    roundtrip("\x80", "\"\xEF\xBF\xBD\"", "\xEF\xBF\xBD");
    /* every single byte value, alone and after a lead byte: always parses */
    for (int c = 1; c < 256; c++) {
        char s[4] = {(char)c, 0, 0, 0};
        tl_strbuf b = {0};
        tl_err e = {0};
        tl_json v;
        CHECK(tl_strbuf_json_string(&b, s) == 0);
        int rc = tl_json_parse(b.s, b.len, &v, &e);
        CHECK_MSG(rc == 0, "byte %02x: %s", c, e.msg);
        tl_json_free(&v);
        tl_strbuf_free(&b);
        s[0] = (char)0xE2;
        s[1] = (char)c;
        CHECK(tl_strbuf_json_string(&b, s) == 0);
        rc = tl_json_parse(b.s, b.len, &v, &e);
        CHECK_MSG(rc == 0, "E2 %02x: %s", c, e.msg);
        tl_json_free(&v);
        tl_strbuf_free(&b);
    }
    tl_strbuf b = {0};
    CHECK(tl_strbuf_json_string(&b, NULL) == 0 && !strcmp(b.s, "null"));
    tl_strbuf_free(&b);
    CHECK(b.s == NULL && b.len == 0);

    /* printf into the buffer, short and longer than the internal stack buffer */
    CHECK(tl_strbuf_printf(&b, "%d-%s", 12, "ab") == 0 && !strcmp(b.s, "12-ab") && b.len == 5);
    char longs[1000];
    memset(longs, 'z', sizeof longs - 1);
    longs[sizeof longs - 1] = 0;
    CHECK(tl_strbuf_printf(&b, "<%s>", longs) == 0 && b.len == 5 + 1001 && b.s[b.len] == 0);
    CHECK(b.s[5] == '<' && b.s[6] == 'z' && b.s[b.len - 1] == '>');
    CHECK(tl_strbuf_add(&b, "", 0) == 0 && b.len == 1006);
    tl_strbuf_free(&b);

    /* tl_json_write_string writes the same bytes */
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f) {
        tl_json_write_string(f, "a\"\xFF");
        rewind(f);
        char got[64] = {0};
        size_t n = fread(got, 1, sizeof got - 1, f);
        CHECK(n == 8 && !memcmp(got, "\"a\\\"\xEF\xBF\xBD\"", 8));
        fclose(f);
    }
}

static void test_helpers(void)
{
    tl_err e = {0};
    float f[3] = {0};
    CHECK(tl_json_parse_floats("[0.485, 0.456, 0.406]", f, 3, &e) == 0);
    CHECK(f[0] == 0.485f && f[1] == 0.456f && f[2] == 0.406f);
    CHECK(tl_json_parse_floats(" [1,-2e1,3] ", f, 3, &e) == 0 && f[1] == -20.0f);
    CHECK(tl_json_parse_floats("[1, 2]", f, 3, &e) < 0);
    CHECK_MSG(strstr(e.msg, "list of 3 numbers") != NULL, "message: %s", e.msg);
    CHECK(tl_json_parse_floats("[1, 2, 3, 4]", f, 3, &e) < 0);
    CHECK(tl_json_parse_floats("[1, \"2\", 3]", f, 3, &e) < 0);
    CHECK(tl_json_parse_floats("{\"a\":1}", f, 1, &e) < 0);
    CHECK(tl_json_parse_floats("[1, 2", f, 2, &e) < 0 && strstr(e.msg, "json:") != NULL);
    CHECK(tl_json_parse_floats("[]", f, 0, &e) == 0);

    char **s = NULL;
    int n = -1;
    CHECK(tl_json_parse_strings("[\"ants\", \"bees\", \"\\u00e9t\\u00e9\", \"\"]", &s, &n, &e) == 0);
    CHECK(n == 4 && s && !strcmp(s[0], "ants") && !strcmp(s[1], "bees") && !strcmp(s[2], "\xC3\xA9t\xC3\xA9") &&
          !strcmp(s[3], "") && s[4] == NULL);
    tl_strings_free(s, n);
    CHECK(tl_json_parse_strings("[]", &s, &n, &e) == 0 && n == 0 && s != NULL);
    tl_strings_free(s, n);
    CHECK(tl_json_parse_strings("[\"a\", 1]", &s, &n, &e) < 0 && s == NULL && n == 0);
    CHECK_MSG(strstr(e.msg, "item 1") != NULL, "message: %s", e.msg);
    CHECK(tl_json_parse_strings("\"a\"", &s, &n, &e) < 0 && s == NULL);
    CHECK(tl_json_parse_strings("[\"a\"", &s, &n, &e) < 0 && s == NULL);
    tl_strings_free(NULL, 3);
}

int main(void)
{
    test_scalars();
    test_escapes();
    test_containers();
    test_errors();
    test_writer();
    test_helpers();
    return check_finish("json");
}
