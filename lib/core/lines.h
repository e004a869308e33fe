/* The one line reader for text from untrusted places (manifests, path
 * lists on standard input, label files, predictions, TSV features, logs).
 * getline alone grows without bound on a line with no newline, and when
 * it runs out of memory it returns -1 without setting the stream's error
 * flag, so a caller takes exhaustion for the end of the input. Here:
 *  - every line has a maximum length, chosen by the caller and documented
 *    with the format (TL_LINE_MAX_* below); a longer one is an error, read
 *    no further than the limit, so memory stays within max + a few bytes;
 *  - the end of input is only ever a clean EOF: a read error or failed
 *    allocation is an error;
 *  - a NUL byte is an error (the input is not text);
 *  - every error names the input and the line: "NAME: line N: why".
 * Lines come back without "\n" or "\r\n". */
#ifndef TL_CORE_LINES_H
#define TL_CORE_LINES_H

#include "core.h"

#include <stdio.h>

/* Manifests, path lists, label files: a path (PATH_MAX is 4096) and a
 * label with room to spare. */
#define TL_LINE_MAX_SMALL ((size_t)1 << 20)
/* Lines that grow with the number of classes or the feature dimension
 * (predictions, TSV feature headers): 64 MiB, about 3.5 million printed
 * scores or class names of 17 bytes. */
#define TL_LINE_MAX_BIG ((size_t)64 << 20)

typedef struct tl_lines {
    FILE *f;
    const char *name;   /* borrowed, for messages */
    size_t max;         /* longest line accepted (bytes, without its end); may change between calls */
    char *buf;
    size_t cap;
    int64_t lineno;     /* of the line last returned */
    uint64_t offset;    /* bytes consumed so far */
    unsigned char pre[16]; /* bytes a format sniffer read before the first line */
    size_t npre, pre_pos;
} tl_lines;

void tl_lines_init(tl_lines *r, FILE *f, const char *name, size_t max);
/* Bytes already read from f (at most 16), returned before f's. */
void tl_lines_unread(tl_lines *r, const void *bytes, size_t n);
/* 1: *line holds the next line (NUL-terminated, *len bytes, valid until
 * the next call); 0: end of input; -1: error, e says "NAME: line N: why". */
int tl_lines_next(tl_lines *r, char **line, size_t *len, tl_err *e);
void tl_lines_free(tl_lines *r);

#endif
