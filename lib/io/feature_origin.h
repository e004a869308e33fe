/* Where feature vectors came from: the backbone, its layer and the input
 * geometry of the extraction (tl_feat_info, a head's tl.feature_* keys).
 * Vectors of another backbone, layer or preprocessing have the same shape
 * but mean something else: a head fed them scores garbage without any
 * error, so the tools compare origins before combining two feature sets. */
#ifndef TL_IO_FEATURE_ORIGIN_H
#define TL_IO_FEATURE_ORIGIN_H

#include "core.h"

typedef struct tl_feat_origin {
    const char *model; /* the backbone's path as recorded (tl-extract records its real path), or NULL */
    const char *layer; /* or NULL */
    const char *input; /* "WxH MODE RESIZE" (tl_preproc_geometry_format), or NULL */
} tl_feat_origin;

/* 0 when features of origin `have` can stand for features of origin
 * `want`: model, layer and input agree wherever both record them (a model
 * also agrees when both paths name the same file). Otherwise -1 and e says
 * which differs, "features of layer 'a', <want_name> layer 'b' (--force
 * uses them anyway)", want_name e.g. "the head was trained on"; every
 * tool that checks takes --force. Unrecorded fields (NPY files, heads
 * from older versions) cannot be checked and pass. */
int tl_feat_origin_check(const tl_feat_origin *have, const tl_feat_origin *want, const char *want_name, tl_err *e);

#endif
