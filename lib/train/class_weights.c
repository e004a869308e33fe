#include "class_weights.h"
#include "lines.h"
#include "strindex.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tl_class_weights_balanced(const int *y, int64_t n, int k, double *w)
{
    int64_t total = 0;
    int present = 0;
    int64_t *count = calloc((size_t)k + 1, sizeof *count);
    for (int c = 0; c < k; c++)
        w[c] = 1.0;
    if (!count)
        return; /* out of memory: unweighted, which is still a valid answer */
    for (int64_t i = 0; i < n; i++)
        if (y[i] >= 0 && y[i] < k) {
            count[y[i]]++;
            total++;
        }
    for (int c = 0; c < k; c++)
        present += count[c] > 0;
    for (int c = 0; c < k; c++)
        if (count[c])
            w[c] = (double)total / ((double)present * (double)count[c]);
    free(count);
}

void tl_class_weights_balanced_multi(const unsigned char *Y, const unsigned char *labelled, int64_t n, int k,
                                     double *pos, double *neg)
{
    for (int c = 0; c < k; c++) {
        int64_t np = 0, nn = 0;
        for (int64_t i = 0; i < n; i++) {
            if (labelled && !labelled[i])
                continue;
            if (Y[(size_t)i * k + c])
                np++;
            else
                nn++;
        }
        pos[c] = neg[c] = 1.0;
        if (np && nn) {
            pos[c] = (double)(np + nn) / (2.0 * (double)np);
            neg[c] = (double)(np + nn) / (2.0 * (double)nn);
        }
    }
}

int tl_class_weights_read(const char *path, char *const *classes, int k, double *w, tl_err *e)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return tl_fail(e, "%s: %s", path, strerror(errno));
    unsigned char *seen = calloc((size_t)k + 1, 1);
    if (!seen) {
        fclose(f);
        return tl_fail(e, "out of memory");
    }
    for (int c = 0; c < k; c++)
        w[c] = 1.0;
    tl_strindex ix = {0};
    tl_lines lr;
    char *line;
    size_t len;
    int rc = 0, got = 0, any_positive = 0, named = 0;
    tl_lines_init(&lr, f, path, TL_LINE_MAX_SMALL);
    if (tl_strindex_build_strings(&ix, (const char *const *)classes, k, NULL, e) < 0)
        rc = -1;
    while (!rc && (got = tl_lines_next(&lr, &line, &len, e)) > 0) {
        long long lineno = (long long)lr.lineno;
        if (len == 0 || line[0] == '#')
            continue;
        char *tab = strrchr(line, '\t');
        if (!tab) {
            rc = tl_fail(e, "%s: line %lld: expected CLASS<TAB>WEIGHT", path, lineno);
            break;
        }
        *tab = '\0';
        char *end;
        errno = 0;
        double v = strtod(tab + 1, &end);
        if (end == tab + 1 || *end || errno || !isfinite(v) || v < 0) {
            rc = tl_fail(e, "%s: line %lld: weight '%.40s' is not a finite number >= 0", path, lineno, tab + 1);
            break;
        }
        int c = tl_strindex_find(&ix, line);
        if (c < 0)
            rc = tl_fail(e, "%s: line %lld: no class '%.80s' in the training data", path, lineno, line);
        else if (seen[c])
            rc = tl_fail(e, "%s: line %lld: class '%.80s' given twice", path, lineno, line);
        else {
            seen[c] = 1;
            w[c] = v;
            named++;
        }
    }
    if (!rc && got < 0)
        rc = -1;
    for (int c = 0; c < k; c++)
        any_positive |= w[c] > 0;
    if (!rc && !named)
        rc = tl_fail(e, "%s: no class weights in the file", path);
    if (!rc && !any_positive)
        rc = tl_fail(e, "%s: every class weight is 0", path);
    tl_lines_free(&lr);
    tl_strindex_free(&ix);
    free(seen);
    fclose(f);
    return rc;
}
