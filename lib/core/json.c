#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the scanner ---- */

size_t tl_jscan_offset(const tl_jscan *j) { return (size_t)(j->s - j->start); }

int tl_jscan_fail(tl_jscan *j, const char *what)
{
    return tl_fail(j->e, "json: %s at byte %zu", what, tl_jscan_offset(j));
}

int tl_jscan_init(tl_jscan *j, const char *text, size_t len, tl_err *e)
{
    memset(j, 0, sizeof *j);
    j->s = j->start = text;
    j->end = text + len;
    j->e = e;
    j->check_keys = 1;
    if (len >= TL_JSON_MAX_TEXT) {
        j->end = text;
        return tl_fail(e, "json: text of %zu bytes is too long (at most %zu)", len, TL_JSON_MAX_TEXT - 1);
    }
    return 0;
}

void tl_jscan_free(tl_jscan *j)
{
    free(j->key);
    free(j->str);
    free(j->keybytes);
    free(j->keyoff);
    j->key = j->str = j->keybytes = NULL;
    j->keyoff = NULL;
}

static void skip_ws(tl_jscan *j)
{
    while (j->s < j->end && (*j->s == ' ' || *j->s == '\t' || *j->s == '\n' || *j->s == '\r'))
        j->s++;
}

static int grow_buf(tl_jscan *j, char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    char *nb = realloc(*buf, nc);
    if (!nb)
        return tl_fail(j->e, "json: out of memory");
    *buf = nb;
    *cap = nc;
    return 0;
}

static int hex4(tl_jscan *j, unsigned *out)
{
    if (j->end - j->s < 4)
        return tl_jscan_fail(j, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = j->s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return tl_jscan_fail(j, "bad \\u escape");
    }
    j->s += 4;
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

/* The string at j->s (its opening quote) unescaped into *buf, which grows
 * to the raw length (never shorter than the unescaped one). */
static int lex_string(tl_jscan *j, char **buf, size_t *cap, size_t *outlen)
{
    j->s++; /* opening quote */
    const char *q = j->s;
    while (q < j->end && *q != '"') {
        if (*q == '\\')
            q++;
        q++;
    }
    if (q >= j->end)
        return tl_jscan_fail(j, "unterminated string");
    if (grow_buf(j, buf, cap, (size_t)(q - j->s) + 1))
        return -1;
    char *d = *buf;
    size_t n = 0;
    while (*j->s != '"') {
        unsigned char c = (unsigned char)*j->s++;
        if (c < 0x20) {
            j->s--;
            return tl_jscan_fail(j, "control character in string");
        }
        if (c != '\\') { d[n++] = (char)c; continue; }
        char esc = *j->s++;
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
            if (hex4(j, &cp))
                return -1;
            /* A high surrogate joins a following low one; anything else
             * after it is left for the next round, so it is not lost. A
             * hex digit is never '"', so this never reads past the string. */
            if (cp >= 0xD800 && cp < 0xDC00 && j->end - j->s >= 6 && j->s[0] == '\\' && j->s[1] == 'u') {
                unsigned lo;
                j->s += 2;
                if (hex4(j, &lo))
                    return -1;
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    cp = 0xFFFD;
                    j->s -= 6;
                }
            } else if (cp >= 0xD800 && cp < 0xE000) {
                cp = 0xFFFD;
            }
            n += put_utf8(d + n, cp);
            break;
        }
        default:
            j->s--;
            return tl_jscan_fail(j, "bad escape in string");
        }
    }
    j->s++;
    d[n] = '\0';
    *outlen = n;
    return 0;
}

/* RFC 8259 grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; strtod
 * alone would also take "01", "1." or "-.5". */
static int lex_number(tl_jscan *j, double *out)
{
    const char *s = j->s, *end = j->end;
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
        return tl_jscan_fail(j, "bad number");
    if (out) {
        /* strtod needs a terminated copy; long ones (many digits) go to the heap */
        size_t n = (size_t)(s - j->s);
        char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
        if (!buf)
            return tl_fail(j->e, "json: out of memory");
        memcpy(buf, j->s, n);
        buf[n] = '\0';
        *out = strtod(buf, NULL);
        if (buf != small)
            free(buf);
    }
    j->s = s;
    return 0;
}

int tl_jscan_type(tl_jscan *j)
{
    skip_ws(j);
    if (j->s >= j->end)
        return tl_jscan_fail(j, "unexpected end");
    char c = *j->s;
    switch (c) {
    case '{': return TL_JSON_OBJECT;
    case '[': return TL_JSON_ARRAY;
    case '"': return TL_JSON_STRING;
    case 't': case 'f': return TL_JSON_BOOL;
    case 'n': return TL_JSON_NULL;
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return TL_JSON_NUMBER;
        return tl_jscan_fail(j, "unexpected character");
    }
}

static int enter(tl_jscan *j, int obj)
{
    int t = tl_jscan_type(j);
    if (t < 0)
        return -1;
    if (t != (obj ? TL_JSON_OBJECT : TL_JSON_ARRAY))
        return tl_jscan_fail(j, obj ? "expected an object" : "expected an array");
    if (j->depth >= TL_JSON_MAX_DEPTH)
        return tl_jscan_fail(j, "nesting too deep");
    int d = ++j->depth;
    j->first[d] = 1;
    j->is_obj[d] = (unsigned char)obj;
    j->opened_at[d] = tl_jscan_offset(j);
    j->keys_from[d] = j->nkeys;
    j->s++;
    return 0;
}

int tl_jscan_object(tl_jscan *j) { return enter(j, 1); }
int tl_jscan_array(tl_jscan *j) { return enter(j, 0); }

static int cmp_keyoff(const void *a, const void *b, void *ctx)
{
    const char *base = ctx;
    return strcmp(base + *(const size_t *)a, base + *(const size_t *)b);
}

/* Closes the innermost object: its keys, sorted, must all differ. */
static int close_object(tl_jscan *j)
{
    int d = j->depth;
    size_t from = j->keys_from[d], n = j->nkeys - from;
    if (j->check_keys && n > 1) {
        size_t *k = j->keyoff + from;
        qsort_r(k, n, sizeof *k, cmp_keyoff, j->keybytes);
        for (size_t i = 1; i < n; i++)
            if (!strcmp(j->keybytes + k[i], j->keybytes + k[i - 1]))
                return tl_fail(j->e, "json: duplicate key \"%.80s\" in the object at byte %zu", j->keybytes + k[i],
                               j->opened_at[d]);
    }
    if (n) {
        size_t low = j->keyoff[from];
        for (size_t i = from + 1; i < j->nkeys; i++)
            low = j->keyoff[i] < low ? j->keyoff[i] : low;
        j->keybytes_len = low;
    }
    j->nkeys = from;
    j->depth--;
    return 0;
}

static int remember_key(tl_jscan *j, const char *key, size_t len)
{
    if (j->nkeys == j->keyoff_cap) {
        size_t nc = j->keyoff_cap ? 2 * j->keyoff_cap : 16;
        size_t *nk = realloc(j->keyoff, nc * sizeof *nk);
        if (!nk)
            return tl_fail(j->e, "json: out of memory");
        j->keyoff = nk;
        j->keyoff_cap = nc;
    }
    if (grow_buf(j, &j->keybytes, &j->keybytes_cap, j->keybytes_len + len + 1))
        return -1;
    memcpy(j->keybytes + j->keybytes_len, key, len + 1);
    j->keyoff[j->nkeys++] = j->keybytes_len;
    j->keybytes_len += len + 1;
    return 0;
}

/* Shared by member and item: 1 another element follows, 0 closed. */
static int next_element(tl_jscan *j, int obj)
{
    int d = j->depth;
    if (d < 1 || j->is_obj[d] != obj)
        return tl_jscan_fail(j, obj ? "not inside an object" : "not inside an array");
    char close = obj ? '}' : ']';
    skip_ws(j);
    if (j->s >= j->end)
        return tl_jscan_fail(j, "unexpected end");
    if (*j->s == close) {
        j->s++;
        if (obj)
            return close_object(j) ? -1 : 0;
        j->depth--;
        return 0;
    }
    if (!j->first[d]) {
        if (*j->s != ',')
            return tl_jscan_fail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        j->s++;
        skip_ws(j);
    }
    j->first[d] = 0;
    return 1;
}

int tl_jscan_member(tl_jscan *j, const char **key, size_t *len)
{
    int r = next_element(j, 1);
    if (r <= 0)
        return r;
    if (j->s >= j->end || *j->s != '"')
        return tl_jscan_fail(j, "expected object key");
    const char *at = j->s;
    size_t n;
    if (lex_string(j, &j->key, &j->key_cap, &n))
        return -1;
    if (memchr(j->key, '\0', n)) {
        j->s = at;
        return tl_jscan_fail(j, "\\u0000 in an object key");
    }
    skip_ws(j);
    if (j->s >= j->end || *j->s != ':')
        return tl_jscan_fail(j, "expected ':'");
    j->s++;
    if (j->check_keys && remember_key(j, j->key, n))
        return -1;
    *key = j->key;
    if (len)
        *len = n;
    return 1;
}

int tl_jscan_item(tl_jscan *j) { return next_element(j, 0); }

int tl_jscan_string(tl_jscan *j, const char **s, size_t *len)
{
    int t = tl_jscan_type(j);
    if (t < 0)
        return -1;
    if (t != TL_JSON_STRING)
        return tl_jscan_fail(j, "expected a string");
    size_t n;
    if (lex_string(j, &j->str, &j->str_cap, &n))
        return -1;
    *s = j->str;
    if (len)
        *len = n;
    return 0;
}

int tl_jscan_number(tl_jscan *j, double *v)
{
    int t = tl_jscan_type(j);
    if (t < 0)
        return -1;
    if (t != TL_JSON_NUMBER)
        return tl_jscan_fail(j, "expected a number");
    return lex_number(j, v);
}

static int literal(tl_jscan *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->s) < n || memcmp(j->s, word, n))
        return -1;
    j->s += n;
    return 0;
}

int tl_jscan_bool(tl_jscan *j, int *v)
{
    if (tl_jscan_type(j) < 0)
        return -1;
    if (!literal(j, "true"))
        *v = 1;
    else if (!literal(j, "false"))
        *v = 0;
    else
        return tl_jscan_fail(j, "expected true or false");
    return 0;
}

int tl_jscan_skip(tl_jscan *j)
{
    int t = tl_jscan_type(j), r;
    const char *s;
    size_t n;
    switch (t) {
    case TL_JSON_OBJECT:
        if (tl_jscan_object(j))
            return -1;
        while ((r = tl_jscan_member(j, &s, &n)) > 0)
            if (tl_jscan_skip(j))
                return -1;
        return r;
    case TL_JSON_ARRAY:
        if (tl_jscan_array(j))
            return -1;
        while ((r = tl_jscan_item(j)) > 0)
            if (tl_jscan_skip(j))
                return -1;
        return r;
    case TL_JSON_STRING: return tl_jscan_string(j, &s, &n);
    case TL_JSON_NUMBER: return lex_number(j, NULL);
    case TL_JSON_BOOL:
    case TL_JSON_NULL:
        if (!literal(j, "null") || !literal(j, "true") || !literal(j, "false"))
            return 0;
        return tl_jscan_fail(j, "unexpected character");
    default: return -1;
    }
}

int tl_jscan_finish(tl_jscan *j)
{
    skip_ws(j);
    if (j->depth)
        return tl_jscan_fail(j, "unexpected end");
    if (j->s != j->end)
        return tl_jscan_fail(j, "trailing characters");
    return 0;
}

/* ---- the tree: three passes over the text, one allocation ---- */

typedef struct {
    size_t values, members, bytes, containers;
} totals;

/* Pass 1: checks everything (keys included) and measures. */
static int count_value(tl_jscan *j, totals *t)
{
    int ty = tl_jscan_type(j), r;
    const char *s;
    size_t n;
    if (ty == TL_JSON_OBJECT || ty == TL_JSON_ARRAY) {
        int obj = ty == TL_JSON_OBJECT;
        t->containers++;
        if (enter(j, obj))
            return -1;
        while ((r = obj ? tl_jscan_member(j, &s, &n) : tl_jscan_item(j)) > 0) {
            if (obj) {
                t->members++;
                t->bytes += n + 1;
            }
            t->values++;
            if (count_value(j, t))
                return -1;
        }
        return r;
    }
    if (ty == TL_JSON_STRING) {
        if (tl_jscan_string(j, &s, &n))
            return -1;
        t->bytes += n + 1;
        return 0;
    }
    return ty < 0 ? -1 : tl_jscan_skip(j);
}

/* Pass 2: the number of items of each container, in document order. */
static int shape_value(tl_jscan *j, uint32_t *counts, size_t *next)
{
    int ty = tl_jscan_type(j), r;
    if (ty != TL_JSON_OBJECT && ty != TL_JSON_ARRAY)
        return tl_jscan_skip(j);
    int obj = ty == TL_JSON_OBJECT;
    size_t slot = (*next)++;
    uint32_t n = 0;
    const char *s;
    if (enter(j, obj))
        return -1;
    while ((r = obj ? tl_jscan_member(j, &s, NULL) : tl_jscan_item(j)) > 0) {
        n++;
        if (shape_value(j, counts, next))
            return -1;
    }
    counts[slot] = n;
    return r;
}

typedef struct {
    char *nodes, *strs;
    const uint32_t *counts;
    size_t next;
} arena;

static char *put_string(arena *a, const char *s, size_t n)
{
    char *d = a->strs;
    memcpy(d, s, n);
    d[n] = '\0';
    a->strs += n + 1;
    return d;
}

/* Pass 3: fills the tree, each container's items (then, for an object,
 * its key pointers) taken from the arena in document order. */
static int build_value(tl_jscan *j, tl_json *v, arena *a)
{
    int ty = tl_jscan_type(j), r;
    const char *s;
    size_t n;
    memset(v, 0, sizeof *v);
    if (ty < 0)
        return -1;
    v->type = (uint32_t)ty;
    if (ty == TL_JSON_OBJECT || ty == TL_JSON_ARRAY) {
        int obj = ty == TL_JSON_OBJECT;
        int count = (int)a->counts[a->next++];
        char **keys = NULL;
        v->count = count;
        if (count) {
            v->items = (tl_json *)(void *)a->nodes;
            a->nodes += (size_t)count * sizeof(tl_json);
            if (obj) {
                keys = (char **)(void *)a->nodes;
                a->nodes += (size_t)count * sizeof(char *);
            }
        }
        if (enter(j, obj))
            return -1;
        for (int i = 0; (r = obj ? tl_jscan_member(j, &s, &n) : tl_jscan_item(j)) > 0; i++) {
            if (i >= count)
                return tl_jscan_fail(j, "inconsistent text");
            if (obj)
                keys[i] = put_string(a, s, n);
            if (build_value(j, &v->items[i], a))
                return -1;
        }
        return r;
    }
    switch (ty) {
    case TL_JSON_STRING:
        if (tl_jscan_string(j, &s, &n))
            return -1;
        v->string = put_string(a, s, n);
        v->string_len = (uint32_t)n;
        return 0;
    case TL_JSON_NUMBER: return tl_jscan_number(j, &v->number);
    case TL_JSON_BOOL: {
        int b;
        if (tl_jscan_bool(j, &b))
            return -1;
        v->number = b;
        return 0;
    }
    default: return tl_jscan_skip(j);
    }
}

int tl_json_parse(const char *text, size_t len, tl_json *out, tl_err *e)
{
    memset(out, 0, sizeof *out);
    tl_jscan j;
    totals t = {0, 0, 0, 0};
    int rc = tl_jscan_init(&j, text, len, e) || count_value(&j, &t) || tl_jscan_finish(&j) ? -1 : 0;
    tl_jscan_free(&j);
    if (rc)
        return -1;
    /* passes 2 and 3 read text pass 1 accepted: errors are not expected */
    uint32_t *counts = malloc((t.containers ? t.containers : 1) * sizeof *counts);
    size_t node_bytes = t.values * sizeof(tl_json) + t.members * sizeof(char *), total = node_bytes + t.bytes;
    char *mem = total ? malloc(total) : NULL;
    if (!counts || (total && !mem)) {
        free(counts);
        free(mem);
        return tl_fail(e, "json: out of memory for a %zu-byte tree", total);
    }
    size_t next = 0;
    arena a = {mem, mem ? mem + node_bytes : NULL, counts, 0};
    tl_jscan_init(&j, text, len, e);
    j.check_keys = 0;
    rc = shape_value(&j, counts, &next);
    tl_jscan_free(&j);
    if (!rc) {
        tl_jscan_init(&j, text, len, e);
        j.check_keys = 0;
        rc = build_value(&j, out, &a);
        tl_jscan_free(&j);
    }
    free(counts);
    if (rc) {
        free(mem);
        memset(out, 0, sizeof *out);
        return -1;
    }
    return 0;
}

void tl_json_free(tl_json *v)
{
    if (!v)
        return;
    /* the root's items (or its string) start the tree's one allocation */
    if ((v->type == TL_JSON_ARRAY || v->type == TL_JSON_OBJECT) && v->count)
        free(v->items);
    else if (v->type == TL_JSON_STRING)
        free(v->string);
    memset(v, 0, sizeof *v);
}

const tl_json *tl_json_get(const tl_json *obj, const char *key)
{
    if (!obj || obj->type != TL_JSON_OBJECT)
        return NULL;
    for (int i = 0; i < obj->count; i++)
        if (!strcmp(tl_json_key(obj, i), key))
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
    tl_jscan j;
    tl_err je = {0};
    int got = 0, r = -1, nonfinite = -1;
    if (!tl_jscan_init(&j, text, strlen(text), &je) && !tl_jscan_array(&j)) {
        while ((r = tl_jscan_item(&j)) > 0 && got <= n) {
            double d;
            if (tl_jscan_number(&j, &d)) {
                r = -1;
                break;
            }
            if (!isfinite((float)d) && nonfinite < 0)
                nonfinite = got;
            if (got < n)
                out[got] = (float)d;
            got++;
        }
        if (r == 0 && tl_jscan_finish(&j))
            r = -1;
    }
    tl_jscan_free(&j);
    if (r != 0 || got != n)
        return tl_fail(e, "expected a JSON list of %d numbers, got '%.60s'%s%s%s", n, text, je.msg[0] ? " (" : "",
                       je.msg, je.msg[0] ? ")" : "");
    if (nonfinite >= 0)
        return tl_fail(e, "item %d of '%.60s' is not a finite number", nonfinite + 1, text);
    return 0;
}

int tl_json_parse_strings(const char *text, char ***out, int *count, tl_err *e)
{
    *out = NULL;
    *count = 0;
    /* counted first, so the pointer array is allocated once, exactly */
    tl_jscan j;
    const char *s;
    size_t len;
    int n = 0, r;
    if (tl_jscan_init(&j, text, strlen(text), e) || tl_jscan_array(&j)) {
        tl_jscan_free(&j);
        return tl_fail_prefix(e, "expected a JSON list of strings");
    }
    while ((r = tl_jscan_item(&j)) > 0) {
        int t = tl_jscan_type(&j);
        if (t < 0)
            break;
        if (t != TL_JSON_STRING) {
            tl_jscan_free(&j);
            return tl_fail(e, "expected a JSON list of strings (item %d is not a string)", n);
        }
        if (tl_jscan_string(&j, &s, &len))
            break;
        if (memchr(s, '\0', len)) {
            tl_jscan_free(&j);
            return tl_fail(e, "item %d of the list holds a NUL character", n);
        }
        if (n == 0x7fffffff) {
            tl_jscan_free(&j);
            return tl_fail(e, "too many strings in a JSON list");
        }
        n++;
    }
    r = r || tl_jscan_finish(&j);
    tl_jscan_free(&j);
    if (r)
        return -1;
    char **v = calloc((size_t)n + 1, sizeof *v);
    if (!v)
        return tl_fail(e, "out of memory for a list of %d strings", n);
    tl_jscan_init(&j, text, strlen(text), e);
    tl_jscan_array(&j);
    for (int i = 0; i < n; i++) {
        if (tl_jscan_item(&j) <= 0 || tl_jscan_string(&j, &s, &len) || !(v[i] = malloc(len + 1))) {
            tl_jscan_free(&j);
            tl_strings_free(v, i);
            return tl_fail(e, "out of memory for a list of %d strings", n);
        }
        memcpy(v[i], s, len + 1);
    }
    tl_jscan_free(&j);
    *out = v;
    *count = n;
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
