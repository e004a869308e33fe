/* A feature file's header (tl_feat_info): freeing, copying and the one
 * comparison of two headers that every reader of several streams or files
 * uses (concatenated streams, tl-extract --resume/--update, merging), so a
 * field added to the header is compared everywhere or nowhere. */
#include "features.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tl_feat_info_free(tl_feat_info *info)
{
    tl_strings_free(info->classes, info->nclasses);
    free(info->model);
    free(info->layer);
    free(info->input);
    memset(info, 0, sizeof *info);
}

int tl_feat_info_copy(tl_feat_info *dst, const tl_feat_info *src, tl_err *e)
{
    memset(dst, 0, sizeof *dst);
    dst->dim = src->dim;
    dst->classes = calloc((size_t)src->nclasses + 1, sizeof(char *));
    if (!dst->classes)
        return tl_fail(e, "out of memory");
    for (int i = 0; i < src->nclasses; i++) {
        dst->classes[i] = tl_strdup(src->classes[i]);
        if (!dst->classes[i]) {
            tl_feat_info_free(dst);
            return tl_fail(e, "out of memory");
        }
        dst->nclasses = i + 1;
    }
    dst->model = src->model ? tl_strdup(src->model) : NULL;
    dst->layer = src->layer ? tl_strdup(src->layer) : NULL;
    dst->input = src->input ? tl_strdup(src->input) : NULL;
    dst->multilabel = src->multilabel;
    dst->shard = src->shard;
    dst->nshards = src->nshards;
    dst->exact = src->exact;
    dst->fast_decode = src->fast_decode;
    return 0;
}

static int same_str(const char *a, const char *b) { return !strcmp(a ? a : "", b ? b : ""); }

tl_feat_field tl_feat_info_compare(const tl_feat_info *a, const tl_feat_info *b, unsigned flags, int *cls)
{
    *cls = -1;
    if (a->dim != b->dim)
        return TL_FEAT_DIM;
    if (a->multilabel != b->multilabel)
        return TL_FEAT_MULTILABEL;
    if (!same_str(a->model, b->model))
        return TL_FEAT_MODEL;
    if (!same_str(a->layer, b->layer))
        return TL_FEAT_LAYER;
    if ((flags & TL_FEAT_CMP_INPUT_IF_BOTH) ? a->input && b->input && strcmp(a->input, b->input)
                                            : !same_str(a->input, b->input))
        return TL_FEAT_INPUT;
    if ((flags & TL_FEAT_CMP_SHARD) && (a->shard != b->shard || a->nshards != b->nshards))
        return TL_FEAT_SHARD;
    if (a->nclasses != b->nclasses)
        return TL_FEAT_NCLASSES;
    for (int i = 0; i < a->nclasses; i++)
        if (strcmp(a->classes[i], b->classes[i])) {
            *cls = i;
            return TL_FEAT_CLASS;
        }
    if (a->exact != b->exact)
        return TL_FEAT_EXACT;
    if (a->fast_decode != b->fast_decode)
        return TL_FEAT_FAST_DECODE;
    return TL_FEAT_SAME;
}

static const char *or_empty(const char *s) { return s ? s : ""; }
static const char *with(int on) { return on ? "with" : "without"; }

int tl_feat_info_differs(const tl_feat_info *a, const tl_feat_info *b, unsigned flags, const char *other, char *what,
                         size_t n)
{
    int c;
    switch (tl_feat_info_compare(a, b, flags, &c)) {
    case TL_FEAT_SAME:
        return 0;
    case TL_FEAT_DIM:
        snprintf(what, n, "dim %d, %s %d", a->dim, other, b->dim);
        break;
    case TL_FEAT_MULTILABEL:
        snprintf(what, n, "%s labels, %s %s", a->multilabel ? "multi" : "single", other,
                 b->multilabel ? "multi" : "single");
        break;
    case TL_FEAT_MODEL:
        snprintf(what, n, "model '%.100s', %s '%.100s'", or_empty(a->model), other, or_empty(b->model));
        break;
    case TL_FEAT_LAYER:
        snprintf(what, n, "layer '%.60s', %s '%.60s'", or_empty(a->layer), other, or_empty(b->layer));
        break;
    case TL_FEAT_INPUT:
        snprintf(what, n, "input '%.60s', %s '%.60s'", or_empty(a->input), other, or_empty(b->input));
        break;
    case TL_FEAT_SHARD:
        snprintf(what, n, "shard %d/%d, %s %d/%d", a->shard, a->nshards, other, b->shard, b->nshards);
        break;
    case TL_FEAT_NCLASSES:
        snprintf(what, n, "%d classes, %s %d", a->nclasses, other, b->nclasses);
        break;
    case TL_FEAT_CLASS:
        snprintf(what, n, "class %d '%.60s', %s '%.60s'", c, a->classes[c], other, b->classes[c]);
        break;
    case TL_FEAT_EXACT:
        snprintf(what, n, "%s --exact, %s %s it", with(a->exact), other, with(b->exact));
        break;
    case TL_FEAT_FAST_DECODE:
        snprintf(what, n, "%s --fast-decode, %s %s it", with(a->fast_decode), other, with(b->fast_decode));
        break;
    }
    return 1;
}
