/* Vision Transformer helpers shared with the checkpoint loader. */
#ifndef TL_MODELS_VIT_H
#define TL_MODELS_VIT_H

#include "core.h"

/* Resamples a position embedding (class token first, then a grid of
 * patches, row-major) from an sgh x sgw grid to dgh x dgw, for a
 * checkpoint made at one input size used at another: the class-token row
 * is copied, the grid is resized with bicubic interpolation (a = -0.75,
 * align_corners=True, border indices clamped) — torchvision's
 * interpolate_embeddings, which is F.interpolate(size=(dgh, dgw),
 * mode="bicubic", align_corners=True), along each axis. dst must not
 * overlap src. Returns 0, or -1 with e set for an empty grid. */
int tl_vit_resize_pos_embedding(const float *src, int sgh, int sgw, float *dst, int dgh, int dgw, int d, tl_err *e);

#endif
