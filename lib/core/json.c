#include "json.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s, *end;
    const char *start;
    tl_err *e;
} parser;

static int perr(parser *p, const char *what)
{
    return tl_fail(p->e, "json: %s at byte %zu", what, (size_t)(p->s - p->start));
}

static void skip_ws(parser *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static int hex4(parser *p, unsigned *out)
{
    if (p->end - p->s < 4)
        return perr(p, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return perr(p, "bad \\u escape");
    }
    p->s += 4;
    *out = v;
    return 0;
}

static size_t put_utf8(char *d, unsigned cp)
{
    if (cp < 0x80) { d[0] = (char)cp; return 1; }
    if (cp < 0x800) { d[0] = (char)(0xC0 | (cp >> 6)); d[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12)); d[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (cp >> 18)); d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The unescaped string is never longer than the escaped one, so one
 * allocation of the raw length suffices. */
static int parse_string(parser *p, char **out, size_t *outlen)
{
    p->s++; /* opening quote */
    const char *q = p->s;
    while (q < p->end && *q != '"') {
        if (*q == '\\') q++;
        q++;
    }
    if (q >= p->end)
        return perr(p, "unterminated string");
    char *d = malloc((size_t)(q - p->s) + 1);
    if (!d)
        return tl_fail(p->e, "json: out of memory");
    size_t n = 0;
    while (*p->s != '"') {
        unsigned char c = (unsigned char)*p->s++;
        if (c < 0x20) { free(d); return perr(p, "control character in string"); }
        if (c != '\\') { d[n++] = (char)c; continue; }
        char esc = *p->s++;
        switch (esc) {
        case '"': d[n++] = '"'; break;
        case '\\': d[n++] = '\\'; break;
        case '/': d[n++] = '/'; break;
        case 'b': d[n++] = '\b'; break;
        case 'f': d[n++] = '\f'; break;
        case 'n': d[n++] = '\n'; break;
        case 'r': d[n++] = '\r'; break;
        case 't': d[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(p, &cp)) { free(d); return -1; }
            /* A high surrogate joins a following low one; anything else
             * after it is left for the next round, so it is not lost. */
            if (cp >= 0xD800 && cp < 0xDC00 && p->end - p->s >= 6 && p->s[0] == '\\' && p->s[1] == 'u') {
                unsigned lo;
                p->s += 2;
                if (hex4(p, &lo)) { free(d); return -1; }
                if (lo >= 0xDC00 && lo < 0xE000)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else {
                    cp = 0xFFFD;
                    p->s -= 6;
                }
            } else if (cp >= 0xD800 && cp < 0xE000) {
                cp = 0xFFFD;
            }
            n += put_utf8(d + n, cp);
            break;
        }
        default: free(d); return perr(p, "bad escape in string");
        }
    }
    p->s++;
    d[n] = '\0';
    *out = d;
    if (outlen)
        *outlen = n;
    return 0;
}

/* RFC 8259 grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; strtod
 * alone would also take "01", "1." or "-.5". */
static int parse_number(parser *p, tl_json *v)
{
    const char *s = p->s, *end = p->end;
    int ok = 1;
    if (s < end && *s == '-')
        s++;
    if (s < end && *s == '0')
        s++;
    else if (s < end && *s >= '1' && *s <= '9')
        while (s < end && *s >= '0' && *s <= '9')
            s++;
    else
        ok = 0;
    if (ok && s < end && *s == '.') {
        s++;
        ok = s < end && *s >= '0' && *s <= '9';
        while (s < end && *s >= '0' && *s <= '9')
            s++;
    }
    if (ok && s < end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < end && (*s == '+' || *s == '-'))
            s++;
        ok = s < end && *s >= '0' && *s <= '9';
        while (s < end && *s >= '0' && *s <= '9')
            s++;
    }
    /* "01" or "1.2.3" are one bad number, not a number and trailing bytes */
    if (ok && s < end && *s && strchr("0123456789.eE+-", *s))
        ok = 0;
    if (!ok)
        return perr(p, "bad number");
    /* strtod needs a terminated copy; long ones (many digits) go to the heap. */
    size_t n = (size_t)(s - p->s);
    char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf)
        return tl_fail(p->e, "json: out of memory");
    memcpy(buf, p->s, n);
    buf[n] = '\0';
    v->number = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    v->type = TL_JSON_NUMBER;
    p->s = s;
    return 0;
}

static int parse_value(parser *p, tl_json *v, int depth);

static int push_item(parser *p, tl_json *v, int *cap)
{
    if (v->count == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        tl_json *ni = realloc(v->items, (size_t)nc * sizeof *ni);
        if (!ni) return tl_fail(p->e, "json: out of memory");
        v->items = ni;
        if (v->type == TL_JSON_OBJECT) {
            char **nk = realloc(v->keys, (size_t)nc * sizeof *nk);
            if (!nk) return tl_fail(p->e, "json: out of memory");
            v->keys = nk;
        }
        *cap = nc;
    }
    return 0;
}

static int parse_container(parser *p, tl_json *v, int depth)
{
    int is_obj = *p->s == '{';
    char close = is_obj ? '}' : ']';
    v->type = is_obj ? TL_JSON_OBJECT : TL_JSON_ARRAY;
    int cap = 0;
    p->s++;
    skip_ws(p);
    if (p->s < p->end && *p->s == close) { p->s++; return 0; }
    for (;;) {
        if (push_item(p, v, &cap)) return -1;
        char *key = NULL;
        if (is_obj) {
            skip_ws(p);
            if (p->s >= p->end || *p->s != '"') return perr(p, "expected object key");
            if (parse_string(p, &key, NULL)) return -1;
            skip_ws(p);
            if (p->s >= p->end || *p->s != ':') { free(key); return perr(p, "expected ':'"); }
            p->s++;
            v->keys[v->count] = key;
        }
        memset(&v->items[v->count], 0, sizeof v->items[0]);
        v->count++;
        if (parse_value(p, &v->items[v->count - 1], depth + 1)) return -1;
        skip_ws(p);
        if (p->s >= p->end) return perr(p, "unexpected end");
        if (*p->s == ',') { p->s++; continue; }
        if (*p->s == close) { p->s++; return 0; }
        return perr(p, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_value(parser *p, tl_json *v, int depth)
{
    if (depth > TL_JSON_MAX_DEPTH)
        return perr(p, "nesting too deep");
    skip_ws(p);
    if (p->s >= p->end)
        return perr(p, "unexpected end");
    char c = *p->s;
    if (c == '{' || c == '[')
        return parse_container(p, v, depth);
    if (c == '"') {
        v->type = TL_JSON_STRING;
        return parse_string(p, &v->string, &v->string_len);
    }
    size_t left = (size_t)(p->end - p->s);
    if (left >= 4 && !memcmp(p->s, "null", 4)) { v->type = TL_JSON_NULL; p->s += 4; return 0; }
    if (left >= 4 && !memcmp(p->s, "true", 4)) { v->type = TL_JSON_BOOL; v->number = 1; p->s += 4; return 0; }
    if (left >= 5 && !memcmp(p->s, "false", 5)) { v->type = TL_JSON_BOOL; p->s += 5; return 0; }
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(p, v);
    return perr(p, "unexpected character");
}

int tl_json_parse(const char *text, size_t len, tl_json *out, tl_err *e)
{
    parser p = {text, text + len, text, e};
    memset(out, 0, sizeof *out);
    if (parse_value(&p, out, 0)) {
        tl_json_free(out);
        return -1;
    }
    skip_ws(&p);
    if (p.s != p.end) {
        tl_json_free(out);
        return perr(&p, "trailing characters");
    }
    return 0;
}

void tl_json_free(tl_json *v)
{
    if (!v)
        return;
    for (int i = 0; i < v->count; i++) {
        tl_json_free(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
    memset(v, 0, sizeof *v);
}

const tl_json *tl_json_get(const tl_json *obj, const char *key)
{
    if (!obj || obj->type != TL_JSON_OBJECT)
        return NULL;
    for (int i = 0; i < obj->count; i++)
        if (!strcmp(obj->keys[i], key))
            return &obj->items[i];
    return NULL;
}

int tl_strbuf_add(tl_strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns)
            return -1;
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

int tl_strbuf_printf(tl_strbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return tl_strbuf_add(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int r = tl_strbuf_add(b, big, (size_t)n);
    free(big);
    return r;
}

/* Length of a valid UTF-8 sequence at s, or 0 if it is not one. */
static int utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    int n = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (n == 2 && s[0] < 0xC2) || (n == 4 && s[0] > 0xF4))
        return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
        return 0; /* overlong, or a surrogate */
    if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
        return 0;
    return n;
}

/* Invalid UTF-8 (file names can hold any bytes) becomes U+FFFD, so the
 * output is always valid JSON. */
int tl_strbuf_json_string(tl_strbuf *b, const char *s)
{
    if (!s)
        return tl_strbuf_add(b, "null", 4);
    if (tl_strbuf_add(b, "\"", 1))
        return -1;
    const unsigned char *c = (const unsigned char *)s;
    while (*c) {
        char esc[8];
        const char *rep = NULL;
        int n = 1;
        switch (*c) {
        case '"': rep = "\\\""; break;
        case '\\': rep = "\\\\"; break;
        case '\n': rep = "\\n"; break;
        case '\r': rep = "\\r"; break;
        case '\t': rep = "\\t"; break;
        default:
            if (*c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *c);
                rep = esc;
            } else if (!(n = utf8_len(c))) {
                rep = "\xEF\xBF\xBD";
                n = 1;
            }
        }
        if (rep ? tl_strbuf_add(b, rep, strlen(rep)) : tl_strbuf_add(b, (const char *)c, (size_t)n))
            return -1;
        c += n;
    }
    return tl_strbuf_add(b, "\"", 1);
}

void tl_strbuf_free(tl_strbuf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

void tl_json_write_string(FILE *f, const char *s)
{
    tl_strbuf b = {0};
    if (tl_strbuf_json_string(&b, s) == 0)
        fwrite(b.s, 1, b.len, f);
    tl_strbuf_free(&b);
}

int tl_json_parse_floats(const char *text, float *out, int n, tl_err *e)
{
    tl_json v;
    if (tl_json_parse(text, strlen(text), &v, e))
        return -1;
    int ok = v.type == TL_JSON_ARRAY && v.count == n;
    for (int i = 0; ok && i < n; i++) {
        ok = v.items[i].type == TL_JSON_NUMBER;
        if (ok)
            out[i] = (float)v.items[i].number;
    }
    tl_json_free(&v);
    return ok ? 0 : tl_fail(e, "expected a JSON list of %d numbers, got '%.60s'", n, text);
}

int tl_json_parse_strings(const char *text, char ***out, int *count, tl_err *e)
{
    tl_json v;
    *out = NULL;
    *count = 0;
    if (tl_json_parse(text, strlen(text), &v, e))
        return -1;
    if (v.type != TL_JSON_ARRAY) {
        tl_json_free(&v);
        return tl_fail(e, "expected a JSON list of strings");
    }
    char **s = calloc((size_t)v.count + 1, sizeof *s);
    if (!s) {
        tl_json_free(&v);
        return tl_fail(e, "out of memory");
    }
    for (int i = 0; i < v.count; i++) {
        if (v.items[i].type != TL_JSON_STRING) {
            tl_strings_free(s, i);
            tl_json_free(&v);
            return tl_fail(e, "expected a JSON list of strings (item %d is not a string)", i);
        }
        s[i] = v.items[i].string; /* steal */
        v.items[i].string = NULL;
    }
    *count = v.count;
    *out = s;
    tl_json_free(&v);
    return 0;
}

void tl_strings_free(char **s, int count)
{
    if (!s)
        return;
    for (int i = 0; i < count; i++)
        free(s[i]);
    free(s);
}
