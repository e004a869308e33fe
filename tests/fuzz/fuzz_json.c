/* The JSON reader (safetensors headers, feature headers, metadata, logs):
 * the tree and the pull scanner, which must agree, and the string helpers
 * built on them. A parsed string written back with
 * tl_strbuf_json_string must parse to the same bytes. */
#include "fuzz_util.h"
#include "json.h"

static void walk(const tl_json *v, int depth)
{
    FUZZ_ASSERT(depth <= TL_JSON_MAX_DEPTH + 1);
    if (v->type == TL_JSON_STRING) {
        FUZZ_ASSERT(v->string && strlen(v->string) <= v->string_len);
        if (strlen(v->string) == v->string_len) {
            tl_strbuf b = {0};
            FUZZ_ASSERT(tl_strbuf_json_string(&b, v->string) == 0);
            tl_json back;
            tl_err e = {0};
            FUZZ_ASSERT(tl_json_parse(b.s, b.len, &back, &e) == 0);
            FUZZ_ASSERT(back.type == TL_JSON_STRING);
            /* invalid UTF-8 is written as U+FFFD, so only ASCII comes back
             * byte for byte; writing what came back gives the same JSON */
            int ascii = 1;
            for (size_t i = 0; i < v->string_len; i++)
                ascii &= (unsigned char)v->string[i] < 0x80;
            if (ascii)
                FUZZ_ASSERT(back.string_len == v->string_len && !memcmp(back.string, v->string, v->string_len));
            tl_strbuf b2 = {0};
            FUZZ_ASSERT(tl_strbuf_json_string(&b2, back.string) == 0);
            FUZZ_ASSERT(b2.len == b.len && !memcmp(b2.s, b.s, b.len));
            tl_strbuf_free(&b2);
            tl_json_free(&back);
            tl_strbuf_free(&b);
        }
    }
    if (v->type == TL_JSON_ARRAY || v->type == TL_JSON_OBJECT) {
        for (int i = 0; i < v->count; i++) {
            if (v->type == TL_JSON_OBJECT) {
                FUZZ_ASSERT(tl_json_key(v, i));
                /* keys are unique: the lookup finds this very member */
                FUZZ_ASSERT(tl_json_get(v, tl_json_key(v, i)) == &v->items[i]);
            }
            walk(&v->items[i], depth + 1);
        }
    }
}

/* The same text through the pull scanner, the way the safetensors and
 * feature readers walk it: counts the values it sees. */
static int scan_value(tl_jscan *j, long *values)
{
    int t = tl_jscan_type(j), r;
    const char *s;
    size_t n;
    double d;
    int b;
    (*values)++;
    switch (t) {
    case TL_JSON_OBJECT:
        if (tl_jscan_object(j))
            return -1;
        while ((r = tl_jscan_member(j, &s, &n)) > 0) {
            FUZZ_ASSERT(strlen(s) == n); /* keys never hold NUL */
            if (scan_value(j, values))
                return -1;
        }
        return r;
    case TL_JSON_ARRAY:
        if (tl_jscan_array(j))
            return -1;
        while ((r = tl_jscan_item(j)) > 0)
            if (scan_value(j, values))
                return -1;
        return r;
    case TL_JSON_STRING: return tl_jscan_string(j, &s, &n);
    case TL_JSON_NUMBER: return tl_jscan_number(j, &d);
    case TL_JSON_BOOL: return tl_jscan_bool(j, &b);
    case TL_JSON_NULL: return tl_jscan_skip(j);
    default: return -1;
    }
}

static long tree_values(const tl_json *v)
{
    long n = 1;
    if (v->type == TL_JSON_ARRAY || v->type == TL_JSON_OBJECT)
        for (int i = 0; i < v->count; i++)
            n += tree_values(&v->items[i]);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tl_json v;
    tl_err e = {0};
    int tree_ok = tl_json_parse((const char *)data, size, &v, &e) == 0;
    tl_jscan j;
    tl_err se = {0};
    long values = 0;
    int scan_ok = !tl_jscan_init(&j, (const char *)data, size, &se) && !scan_value(&j, &values) &&
                  !tl_jscan_finish(&j);
    tl_jscan_free(&j);
    /* the tree is built by the scanner: both accept the same texts */
    FUZZ_ASSERT(tree_ok == scan_ok);
    if (!scan_ok)
        FUZZ_CHECK_MSG(se);
    if (tree_ok) {
        FUZZ_ASSERT(tree_values(&v) == values);
        walk(&v, 0);
        tl_json_free(&v);
    } else {
        FUZZ_CHECK_MSG(e);
    }

    /* the C-string helpers (metadata values such as tl.mean, tl.classes) */
    char *s = fuzz_cstr(data, size);
    float f[3];
    tl_err e2 = {0};
    if (tl_json_parse_floats(s, f, 3, &e2))
        FUZZ_CHECK_MSG(e2);
    char **strs = NULL;
    int n = 0;
    tl_err e3 = {0};
    if (tl_json_parse_strings(s, &strs, &n, &e3) == 0)
        tl_strings_free(strs, n);
    else
        FUZZ_CHECK_MSG(e3);
    free(s);
    return 0;
}
