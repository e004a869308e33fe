#include "lines.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void tl_lines_init(tl_lines *r, FILE *f, const char *name, size_t max)
{
    memset(r, 0, sizeof *r);
    r->f = f;
    r->name = name;
    r->max = max;
}

void tl_lines_unread(tl_lines *r, const void *bytes, size_t n)
{
    if (n > sizeof r->pre)
        n = sizeof r->pre;
    memcpy(r->pre, bytes, n);
    r->npre = n;
    r->pre_pos = 0;
}

static int grow(tl_lines *r, size_t need)
{
    if (need <= r->cap)
        return 0;
    size_t nc = r->cap ? r->cap : 256;
    while (nc < need)
        nc *= 2;
    if (nc > r->max + 2)
        nc = r->max + 2;
    char *nb = realloc(r->buf, nc);
    if (!nb)
        return -1;
    r->buf = nb;
    r->cap = nc;
    return 0;
}

int tl_lines_next(tl_lines *r, char **line, size_t *len, tl_err *e)
{
    long long ln = (long long)r->lineno + 1;
    size_t n = 0;
    int c = EOF, got_any = 0;
    for (;;) {
        if (r->pre_pos < r->npre) {
            c = r->pre[r->pre_pos++];
        } else {
            errno = 0;
            c = getc_unlocked(r->f);
            if (c == EOF) {
                int err = errno;
                if (ferror(r->f))
                    return tl_fail(e, "%s: line %lld: read error: %s", r->name, ln, strerror(err ? err : EIO));
                break;
            }
        }
        got_any = 1;
        r->offset++;
        if (c == '\n')
            break;
        if (c == '\0')
            return tl_fail(e, "%s: line %lld: NUL byte (not a text file?)", r->name, ln);
        /* one byte beyond the limit is allowed for a '\r' before the '\n' */
        if (n >= r->max + (c == '\r'))
            return tl_fail(e, "%s: line %lld: longer than %zu bytes", r->name, ln, r->max);
        if (n + 2 > r->cap && grow(r, n + 2))
            return tl_fail(e, "%s: line %lld: out of memory", r->name, ln);
        r->buf[n++] = (char)c;
    }
    if (!got_any)
        return 0;
    if (n && r->buf[n - 1] == '\r')
        n--;
    else if (n > r->max)
        return tl_fail(e, "%s: line %lld: longer than %zu bytes", r->name, ln, r->max);
    if (!r->buf && grow(r, 1))
        return tl_fail(e, "%s: line %lld: out of memory", r->name, ln);
    r->buf[n] = '\0';
    r->lineno++;
    *line = r->buf;
    *len = n;
    return 1;
}

void tl_lines_free(tl_lines *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}
