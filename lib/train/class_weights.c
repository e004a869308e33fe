#include "class_weights.h"

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
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0, any_positive = 0, named = 0;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        char *tab = strrchr(line, '\t');
        if (!tab) {
            rc = tl_fail(e, "%s:%ld: expected CLASS<TAB>WEIGHT", path, lineno);
            break;
        }
        *tab = '\0';
        char *end;
        errno = 0;
        double v = strtod(tab + 1, &end);
        if (end == tab + 1 || *end || errno || !isfinite(v) || v < 0) {
            rc = tl_fail(e, "%s:%ld: weight '%s' is not a finite number >= 0", path, lineno, tab + 1);
            break;
        }
        int c = -1;
        for (int j = 0; j < k && c < 0; j++)
            if (!strcmp(classes[j], line))
                c = j;
        if (c < 0)
            rc = tl_fail(e, "%s:%ld: no class '%s' in the training data", path, lineno, line);
        else if (seen[c])
            rc = tl_fail(e, "%s:%ld: class '%s' given twice", path, lineno, line);
        else {
            seen[c] = 1;
            w[c] = v;
            named++;
        }
    }
    if (!rc && ferror(f))
        rc = tl_fail(e, "%s: read error", path);
    for (int c = 0; c < k; c++)
        any_positive |= w[c] > 0;
    if (!rc && !named)
        rc = tl_fail(e, "%s: no class weights in the file", path);
    if (!rc && !any_positive)
        rc = tl_fail(e, "%s: every class weight is 0", path);
    free(line);
    free(seen);
    fclose(f);
    return rc;
}
