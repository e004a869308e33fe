#include "core.h"

#include <stdio.h>
#include <string.h>

/* Messages quote file names, labels and spec text, which may hold line
 * breaks or terminal escapes: every message stays one printable line. */
static void one_line(char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            *s = '?';
}

static void set(tl_err *e, int kind, const char *fmt, va_list ap)
{
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    one_line(e->msg);
    e->kind = kind;
}

int tl_fail(tl_err *e, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        set(e, TL_ERR_FAIL, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int tl_fail_arg(tl_err *e, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        set(e, TL_ERR_ARG, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int tl_fail_prefix(tl_err *e, const char *fmt, ...)
{
    if (e) {
        char prefix[256], old[sizeof e->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, e->msg, sizeof old);
        old[sizeof old - 1] = '\0';
        /* "prefix: old", cut to the buffer (as snprintf would cut it) */
        size_t cap = sizeof e->msg - 1, pl = strlen(prefix), n = 0;
        for (size_t i = 0; i < pl && n < cap; i++)
            e->msg[n++] = prefix[i];
        for (const char *s = ": "; *s && n < cap; s++)
            e->msg[n++] = *s;
        for (size_t i = 0; old[i] && n < cap; i++)
            e->msg[n++] = old[i];
        e->msg[n] = '\0';
        one_line(e->msg);
    }
    return -1;
}
