/* JSON for safetensors headers, feature headers, checkpoint metadata and
 * training logs: all untrusted. Two ways in:
 *  - tl_jscan, a validating pull scanner: the caller walks the structure
 *    it expects, copying only what it keeps, so memory follows the result
 *    and not the size of the text (safetensors and feature headers);
 *  - tl_json_parse, a tree of the whole text for small documents (log
 *    lines, tests), in one exact allocation: 16 bytes per value, 8 more
 *    per object member, and the unescaped strings, so a text of N bytes
 *    never takes more than about 9N bytes (a text of values "0,0,0...").
 * Both refuse what JSON parsers disagree on or what C strings cannot
 * hold: a key repeated in an object (we would keep one, Python's json the
 * other), "\u0000" inside a key, nesting deeper than TL_JSON_MAX_DEPTH
 * (so hostile input cannot exhaust the stack), text of TL_JSON_MAX_TEXT
 * bytes or more. Time is O(N log N) at worst (sorting each object's keys). */
#ifndef TL_JSON_H
#define TL_JSON_H

#include "core.h"
#include <stdio.h>

typedef enum { TL_JSON_NULL, TL_JSON_BOOL, TL_JSON_NUMBER, TL_JSON_STRING, TL_JSON_ARRAY, TL_JSON_OBJECT } tl_json_type;

#define TL_JSON_MAX_DEPTH 64
#define TL_JSON_MAX_TEXT ((size_t)1 << 30)

/* ---- the scanner ---- */

typedef struct tl_jscan {
    const char *s, *end, *start;
    tl_err *e;
    int depth;
    int check_keys;                          /* refuse repeated keys (on by default) */
    unsigned char first[TL_JSON_MAX_DEPTH + 2]; /* the open container has no item yet */
    unsigned char is_obj[TL_JSON_MAX_DEPTH + 2];
    size_t opened_at[TL_JSON_MAX_DEPTH + 2]; /* byte offset of each open container */
    size_t keys_from[TL_JSON_MAX_DEPTH + 2]; /* first of this object's keys in keyoff */
    char *key, *str;                         /* the last key and string, unescaped */
    size_t key_cap, str_cap;
    char *keybytes;                          /* keys of the open objects, NUL-separated */
    size_t keybytes_len, keybytes_cap;
    size_t *keyoff;
    size_t nkeys, keyoff_cap;
} tl_jscan;

/* -1 when the text is too long (TL_JSON_MAX_TEXT). */
int tl_jscan_init(tl_jscan *j, const char *text, size_t len, tl_err *e);
void tl_jscan_free(tl_jscan *j);
/* The type of the next value, or -1 (an error: end of text or a byte that
 * starts no value). Consumes nothing but white space. */
int tl_jscan_type(tl_jscan *j);
/* Enter the next value, which must be an object / an array. */
int tl_jscan_object(tl_jscan *j);
int tl_jscan_array(tl_jscan *j);
/* Inside an object: 1 when a member follows (its key in *key, *len bytes,
 * valid until the next member call; the value is next), 0 when the object
 * ended (its closing brace consumed), -1 on error. */
int tl_jscan_member(tl_jscan *j, const char **key, size_t *len);
/* Inside an array: 1 when an item follows, 0 at its end, -1 on error. */
int tl_jscan_item(tl_jscan *j);
/* The next value, which must be a string (unescaped into a buffer valid
 * until the next string call; it may hold NUL bytes: see *len) / a number
 * (v may be NULL) / a boolean. */
int tl_jscan_string(tl_jscan *j, const char **s, size_t *len);
int tl_jscan_number(tl_jscan *j, double *v);
int tl_jscan_bool(tl_jscan *j, int *v);
/* Any value, checked as thoroughly as if it were read. */
int tl_jscan_skip(tl_jscan *j);
/* Only white space may remain. */
int tl_jscan_finish(tl_jscan *j);
/* Byte offset of the next unread byte, for messages. */
size_t tl_jscan_offset(const tl_jscan *j);
/* Fails with "json: WHAT at byte N" (N: the next unread byte). */
int tl_jscan_fail(tl_jscan *j, const char *what);

/* ---- the tree ---- */

typedef struct tl_json {
    uint32_t type;             /* tl_json_type */
    union {
        int count;             /* ARRAY / OBJECT: number of items (< 2^30) */
        uint32_t string_len;   /* STRING: bytes, without the terminating NUL */
    };
    union {
        double number;         /* NUMBER, and BOOL as 0/1 */
        char *string;          /* STRING: NUL-terminated, unescaped UTF-8 */
        struct tl_json *items; /* ARRAY / OBJECT */
    };
} tl_json;

/* The whole text as one tree; free the root with tl_json_free (and only
 * the root: the tree is one allocation). */
int tl_json_parse(const char *text, size_t len, tl_json *out, tl_err *e);
void tl_json_free(tl_json *v);
/* Key i of an object (NUL-terminated). */
static inline const char *tl_json_key(const tl_json *obj, int i)
{
    return ((char *const *)(obj->items + obj->count))[i];
}
/* A member by key: linear in the object's size, so a caller looks up a
 * fixed set of keys, never one per member. */
const tl_json *tl_json_get(const tl_json *obj, const char *key);

/* Appends s as a quoted JSON string. */
void tl_json_write_string(FILE *f, const char *s);
/* Same into a growing heap buffer; returns 0 or -1 on out of memory. */
typedef struct tl_strbuf {
    char *s;
    size_t len, cap;
} tl_strbuf;
int tl_strbuf_add(tl_strbuf *b, const char *s, size_t n);
int tl_strbuf_printf(tl_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tl_strbuf_json_string(tl_strbuf *b, const char *s);
void tl_strbuf_free(tl_strbuf *b);

/* Parses a JSON array of exactly n finite numbers (finite also as float)
 * into out[0..n-1]. */
int tl_json_parse_floats(const char *text, float *out, int n, tl_err *e);
/* Parses a JSON array of strings (none holding a NUL byte); *out is an
 * array of *count heap strings (plus a NULL). Memory: the strings and a
 * pointer each, whatever the text. */
int tl_json_parse_strings(const char *text, char ***out, int *count, tl_err *e);
void tl_strings_free(char **s, int count);

#endif
