/* Continuing an extraction (tl-extract --resume, --update): what a TLF
 * file already holds, read with the strict reader up to the first record
 * that is cut short or corrupt, the mark an interrupted run leaves. */
#include "features.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void tl_feat_done_free(tl_feat_done *d)
{
    tl_feat_info_free(&d->info);
    tl_strings_free(d->paths, (int)d->n);
    memset(d, 0, sizeof *d);
}

int tl_feat_done_has(const tl_feat_done *d, const char *path)
{
    return d->n && bsearch(&path, d->paths, (size_t)d->n, sizeof *d->paths, cmp_str) != NULL;
}

int tl_feat_done_scan(const char *path, tl_feat_done *d, tl_err *e)
{
    memset(d, 0, sizeof *d);
    tl_featr *r;
    tl_err oe = {0};
    if (tl_featr_open(&r, path, &oe)) {
        /* a run stopped before its header was written: nothing to keep */
        if (strstr(oe.msg, ": truncated feature header") || strstr(oe.msg, ": empty input"))
            return 0;
        *e = oe;
        return -1;
    }
    int rc = 0;
    if (tl_featr_format(r) != TL_FEAT_TLF)
        rc = tl_fail(e, "%s: not a TLF feature file (only TLF output is continued)", path);
    if (!rc)
        rc = tl_feat_info_copy(&d->info, tl_featr_info(r), e);
    tl_featr_one_shard(r);
    float *v = rc ? NULL : malloc((size_t)d->info.dim * sizeof *v);
    if (!rc && !v)
        rc = tl_fail(e, "out of memory");
    d->header = 1;
    d->keep = tl_featr_offset(r);
    int64_t cap = 0;
    while (!rc) {
        const char *p, *ln;
        int label;
        tl_err re = {0};
        int got = tl_featr_next(r, &p, &ln, &label, v, &re);
        if (tl_featr_streams(r) > 1) {
            rc = tl_fail(e, "%s: holds several feature streams (only a single stream is continued)", path);
            break;
        }
        if (got < 0 && strstr(re.msg, "read error")) {
            *e = re;
            rc = -1;
        }
        if (got <= 0) {
            d->complete = got == 0;
            break;
        }
        if (d->n == cap) {
            int64_t nc = cap ? 2 * cap : 1024;
            char **np = realloc(d->paths, ((size_t)nc + 1) * sizeof *np);
            if (!np) {
                rc = tl_fail(e, "out of memory");
                break;
            }
            d->paths = np;
            cap = nc;
        }
        if (!(d->paths[d->n] = tl_strdup(p))) {
            rc = tl_fail(e, "out of memory");
            break;
        }
        d->n++;
        d->keep = tl_featr_offset(r);
    }
    free(v);
    tl_featr_close(r);
    if (!rc && d->n)
        qsort(d->paths, (size_t)d->n, sizeof *d->paths, cmp_str);
    if (rc)
        tl_feat_done_free(d);
    return rc;
}
