/* The JSON reader (safetensors headers, feature headers, metadata, logs),
 * and the string helpers built on it. A parsed string written back with
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
                FUZZ_ASSERT(v->keys[i]);
                FUZZ_ASSERT(tl_json_get(v, v->keys[i]) != NULL);
            }
            walk(&v->items[i], depth + 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tl_json v;
    tl_err e = {0};
    if (tl_json_parse((const char *)data, size, &v, &e) == 0) {
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
