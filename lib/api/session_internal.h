/* What lib/api's other files need to know of a session beyond tl.h. */
#ifndef TL_API_SESSION_INTERNAL_H
#define TL_API_SESSION_INTERNAL_H

#include "tl.h"
#include "nn/model.h"

/* Where a session's feature vectors come from, as a feature file's
 * header records it (tl-formats(5)). */
typedef struct {
    char model[4096];   /* the backbone's file, absolute when it can be resolved */
    char layer[TL_NAME_MAX];
    char geometry[64];  /* tl_preproc_geometry_format of the preprocessing in use */
    int exact;
} tl_session_origin;

/* Fills o; returns the feature dimension. */
int tl_session_describe(const tl_session *s, tl_session_origin *o);

#endif
