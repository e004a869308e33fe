#include "tsv.h"

#include <string.h>

int tl_tsv_check(const char *s, const char *what, int first, tl_err *e)
{
    if (strpbrk(s, "\t\n\r"))
        return tl_fail(e, "%s '%s' holds a tab or line break and cannot be a TSV field", what, s);
    if (first && s[0] == '#')
        return tl_fail(e, "%s '%s' starts with '#' and would be read back as a TSV comment", what, s);
    return 0;
}
