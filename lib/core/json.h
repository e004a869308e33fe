/* A small JSON reader (a tree of values) and string escaping, for
 * safetensors headers, checkpoint metadata and training logs. Nesting is
 * limited so hostile input cannot exhaust the stack. */
#ifndef TL_JSON_H
#define TL_JSON_H

#include "core.h"
#include <stdio.h>

typedef enum { TL_JSON_NULL, TL_JSON_BOOL, TL_JSON_NUMBER, TL_JSON_STRING, TL_JSON_ARRAY, TL_JSON_OBJECT } tl_json_type;

typedef struct tl_json {
    tl_json_type type;
    double number;        /* NUMBER, and BOOL as 0/1 */
    char *string;         /* STRING (NUL-terminated, unescaped UTF-8) */
    size_t string_len;
    int count;            /* ARRAY / OBJECT */
    struct tl_json *items;
    char **keys;          /* OBJECT */
} tl_json;

#define TL_JSON_MAX_DEPTH 64

int tl_json_parse(const char *text, size_t len, tl_json *out, tl_err *e);
void tl_json_free(tl_json *v);
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

/* Parses a JSON array of numbers into out[0..n-1]; -1 unless exactly n. */
int tl_json_parse_floats(const char *text, float *out, int n, tl_err *e);
/* Parses a JSON array of strings; *out is an array of *count heap strings. */
int tl_json_parse_strings(const char *text, char ***out, int *count, tl_err *e);
void tl_strings_free(char **s, int count);

#endif
