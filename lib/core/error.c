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

int tl_fail(tl_err *e, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        one_line(e->msg);
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
        snprintf(e->msg, sizeof e->msg, "%s: %s", prefix, old);
        one_line(e->msg);
    }
    return -1;
}
