#include "format_version.h"

#include <math.h>

int tl_format_check(const char *name, const char *what, double v, int known, tl_err *e)
{
    if (!(v >= 1 && v <= 1e9) || v != floor(v))
        return tl_fail(e, "%s: %s version is not a whole number from 1 up", name, what);
    if (v > known)
        return tl_fail(e, "%s: %s version %.0f was written by a newer tl (this one reads up to %d): upgrade tl to read it",
                       name, what, v, known);
    return 0;
}
