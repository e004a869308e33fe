/* Joining the files of one extraction (tl-extract --merge): shards, each
 * written in canonical order (io/shard.h), are merged record by record
 * into canonical order, so the result is the data set of one unsharded
 * run and memory holds one record per input; files without a shard are
 * concatenated in the order given. The same checks as a reader of their
 * concatenation: one extraction, every shard once. */
#include "features.h"
#include "shard.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    tl_featr *r;
    int live;            /* holds a record not yet written */
    int ordered;         /* a shard: its records must come in canonical order */
    int have;            /* path holds the last record read */
    char *path;          /* the record's */
    size_t path_cap;
    int label;           /* single-label: the class; multi-label: the count */
    int *labels;
    int labels_cap;
    float *v;
} input;

/* Reads the next record of in (live 0 at its end). */
static int advance(input *in, int dim, tl_err *e)
{
    const char *p, *ln;
    int label;
    int got = tl_featr_next(in->r, &p, &ln, &label, in->v, e);
    if (got < 0)
        return -1;
    if (tl_featr_streams(in->r) > 1)
        return tl_fail(e, "%s: holds several feature streams: give each shard as its own file", in->name);
    in->live = got;
    if (!got)
        return 0;
    size_t n = strlen(p) + 1;
    if (in->ordered && in->have && tl_path_cmp(in->path, p) > 0)
        return tl_fail(e, "%s: '%.80s' after '%.80s': the shard's records are not in path order", in->name, p,
                       in->path);
    if (n > in->path_cap) {
        char *np = realloc(in->path, n);
        if (!np)
            return tl_fail(e, "out of memory");
        in->path = np;
        in->path_cap = n;
    }
    memcpy(in->path, p, n);
    in->have = 1;
    in->label = label;
    int nl;
    const int *ls = tl_featr_labels(in->r, &nl);
    /* A TSV without #classes names its labels but gives them no index: the
     * merged file would silently lose them. */
    int lost = !tl_featr_info(in->r)->multilabel && label < 0 && ln && *ln;
    for (int k = 0; k < nl; k++)
        lost |= ls[k] < 0;
    if (lost)
        return tl_fail(e, "%s: '%.80s' is labelled '%.80s' but the file has no class list (#classes): "
                              "add one to merge it", in->name, p, ln);
    if (nl > in->labels_cap) {
        int *nls = realloc(in->labels, (size_t)nl * sizeof *nls);
        if (!nls)
            return tl_fail(e, "out of memory");
        in->labels = nls;
        in->labels_cap = nl;
    }
    if (nl > 0)
        memcpy(in->labels, ls, (size_t)nl * sizeof *ls);
    (void)dim;
    return 0;
}

static int write_record(tl_featw *w, const input *in, int multilabel, tl_err *e)
{
    if (multilabel)
        return tl_featw_add_labels(w, in->path, in->labels, in->label, in->v, e);
    return tl_featw_add(w, in->path, in->label, in->v, e);
}

int tl_feat_merge(const char *const *names, int n, const char *out, int format, int64_t *count, tl_err *e)
{
    *count = 0;
    if (n < 1)
        return tl_fail(e, "no feature files to merge");
    input *in = calloc((size_t)n, sizeof *in);
    int *order = calloc((size_t)n, sizeof *order);
    tl_featw *w = NULL;
    tl_feat_info info = {0};
    int rc = in && order ? 0 : tl_fail(e, "out of memory");
    for (int i = 0; i < n && !rc; i++) {
        in[i].name = names[i];
        if (tl_featr_open(&in[i].r, names[i], e)) {
            rc = -1;
            break;
        }
        tl_featr_one_shard(in[i].r);
        const tl_feat_info *a = tl_featr_info(in[i].r), *f = tl_featr_info(in[0].r);
        char what[320];
        if (i && tl_feat_info_differs(a, f, 0, "the first", what, sizeof what)) {
            rc = tl_fail(e, "%s: another extraction than %s (%s)", names[i], names[0], what);
        } else if (a->nshards != f->nshards) {
            rc = tl_fail(e, "%s: %s, %s is %s", names[i], a->nshards ? "a shard" : "not a shard", names[0],
                         f->nshards ? "a shard" : "not a shard");
        } else if (a->nshards && a->nshards != n) {
            rc = tl_fail(e, "%s: shard %d/%d, but %d %s given (every shard once)", names[i], a->shard, a->nshards,
                         n, n == 1 ? "file is" : "files are");
        } else if (a->nshards && order[a->shard - 1]) {
            rc = tl_fail(e, "%s: shard %d/%d, as is %s", names[i], a->shard, a->nshards, names[order[a->shard - 1] - 1]);
        } else if (a->nshards) {
            order[a->shard - 1] = i + 1;
            in[i].ordered = 1;
        }
        if (!rc && !(in[i].v = malloc((size_t)a->dim * sizeof(float))))
            rc = tl_fail(e, "out of memory");
    }
    if (!rc && !(rc = tl_feat_info_copy(&info, tl_featr_info(in[0].r), e))) {
        info.shard = info.nshards = 0; /* the whole data set */
        rc = tl_featw_open(&w, out, format, &info, e);
    }
    int sharded = !rc && tl_featr_info(in[0].r)->nshards > 0;
    for (int i = 0; i < n && !rc; i++)
        rc = advance(&in[i], info.dim, e);
    if (!rc && !sharded) {
        for (int i = 0; i < n && !rc; i++)
            while (!rc && in[i].live) {
                rc = write_record(w, &in[i], info.multilabel, e);
                (*count)++;
                if (!rc)
                    rc = advance(&in[i], info.dim, e);
            }
    }
    while (!rc && sharded) {
        /* the smallest path among the shards' current records (shard order on a tie) */
        int best = -1;
        for (int k = 0; k < n; k++) {
            int i = order[k] - 1;
            if (in[i].live && (best < 0 || tl_path_cmp(in[i].path, in[best].path) < 0))
                best = i;
        }
        if (best < 0)
            break;
        rc = write_record(w, &in[best], info.multilabel, e);
        (*count)++;
        if (!rc)
            rc = advance(&in[best], info.dim, e);
    }
    if (!rc)
        rc = tl_featw_close(w, e);
    else
        tl_featw_abort(w);
    for (int i = 0; in && i < n; i++) {
        tl_featr_close(in[i].r);
        free(in[i].path);
        free(in[i].labels);
        free(in[i].v);
    }
    free(in);
    free(order);
    tl_feat_info_free(&info);
    return rc;
}
