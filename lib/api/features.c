/* Feature files through tl.h: opaque handles over io/features. */
#include "tl.h"
#include "io/features.h"
#include "session_internal.h"

#include <stdlib.h>

struct tl_features_writer {
    tl_featw *w;
};

struct tl_features_reader {
    tl_featr *r;
};

static tl_features_writer *open_writer(const char *path, int format, const char *const *classes,
                                       const tl_feat_info *info, tl_err *e)
{
    static const int formats[] = {[TL_FEATURES_TLF] = TL_FEAT_TLF, [TL_FEATURES_TSV] = TL_FEAT_TSV,
                                  [TL_FEATURES_NPY] = TL_FEAT_NPY};
    if (format < TL_FEATURES_TLF || format > TL_FEATURES_NPY) {
        tl_fail_arg(e, "format %d is not a TL_FEATURES_* value", format);
        return NULL;
    }
    if (info->dim < 1 || info->dim > TL_FEAT_MAX_DIM || info->nclasses < 0 || (info->nclasses > 0 && !classes)) {
        tl_fail_arg(e, "dimension %d with %d classes: not a feature file", info->dim, info->nclasses);
        return NULL;
    }
    tl_features_writer *fw = calloc(1, sizeof *fw);
    if (!fw) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    if (tl_featw_open(&fw->w, path, formats[format], info, e)) {
        free(fw);
        return NULL;
    }
    return fw;
}

TL_API tl_features_writer *tl_features_writer_open(const char *path, int format, int dim, const char *const *classes,
                                                   int nclasses, const char *model, const char *layer, tl_err *e)
{
    /* the writer copies what it keeps: the casts only meet tl_feat_info's fields */
    tl_feat_info info = {.dim = dim, .classes = (char **)classes, .nclasses = nclasses, .model = (char *)model,
                         .layer = (char *)layer};
    return open_writer(path, format, classes, &info, e);
}

TL_API tl_features_writer *tl_features_writer_open_session(const char *path, int format, const tl_session *s,
                                                           const char *const *classes, int nclasses, tl_err *e)
{
    tl_session_origin o;
    tl_feat_info info = {.dim = tl_session_describe(s, &o), .classes = (char **)classes, .nclasses = nclasses,
                         .model = o.model, .layer = o.layer, .input = o.geometry, .exact = o.exact};
    return open_writer(path, format, classes, &info, e);
}

TL_API int tl_features_writer_add(tl_features_writer *w, const char *path, int label, const float *v, tl_err *e)
{
    return tl_featw_add(w->w, path, label, v, e);
}

TL_API int tl_features_writer_close(tl_features_writer *w, tl_err *e)
{
    int rc = tl_featw_close(w->w, e);
    free(w);
    return rc;
}

TL_API void tl_features_writer_abort(tl_features_writer *w)
{
    if (!w)
        return;
    tl_featw_abort(w->w);
    free(w);
}

TL_API tl_features_reader *tl_features_reader_open(const char *path, tl_err *e)
{
    tl_features_reader *fr = calloc(1, sizeof *fr);
    if (!fr) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    if (tl_featr_open(&fr->r, path, e)) {
        free(fr);
        return NULL;
    }
    return fr;
}

TL_API int tl_features_reader_dim(const tl_features_reader *r) { return tl_featr_info(r->r)->dim; }

TL_API int tl_features_reader_num_classes(const tl_features_reader *r) { return tl_featr_info(r->r)->nclasses; }

TL_API const char *tl_features_reader_class_name(const tl_features_reader *r, int index)
{
    const tl_feat_info *info = tl_featr_info(r->r);
    return index >= 0 && index < info->nclasses ? info->classes[index] : NULL;
}

TL_API const char *tl_features_reader_model(const tl_features_reader *r) { return tl_featr_info(r->r)->model; }

TL_API const char *tl_features_reader_layer(const tl_features_reader *r) { return tl_featr_info(r->r)->layer; }

TL_API int tl_features_reader_next(tl_features_reader *r, const char **path, int *label, float *v, tl_err *e)
{
    const char *p = NULL, *name = NULL;
    int l = -1;
    int rc = tl_featr_next(r->r, &p, &name, &l, v, e);
    if (rc == 1 && tl_featr_info(r->r)->multilabel) {
        /* a multi-label record: the first of its labels, as a set of one */
        int n = 0;
        const int *ls = tl_featr_labels(r->r, &n);
        l = n > 0 ? ls[0] : -1;
    }
    if (path)
        *path = p;
    if (label)
        *label = rc == 1 ? l : -1;
    return rc;
}

TL_API int tl_features_reader_multilabel(const tl_features_reader *r) { return tl_featr_info(r->r)->multilabel; }

TL_API const int *tl_features_reader_labels(const tl_features_reader *r, int *n) { return tl_featr_labels(r->r, n); }

TL_API void tl_features_reader_close(tl_features_reader *r)
{
    if (!r)
        return;
    tl_featr_close(r->r);
    free(r);
}
