/* Vision Transformer helpers shared with the checkpoint loader. */
#ifndef TL_MODELS_VIT_H
#define TL_MODELS_VIT_H

#include "core.h"

/* Resamples a position embedding [src_tokens, d] (class token first, then a
 * square grid of patches, row-major) to dst_tokens = 1 + n*n, as
 * torchvision's interpolate_embeddings does when a checkpoint made at one
 * input size is used at another: the class-token row is copied, the grid
 * is resized with bicubic interpolation (a = -0.75, align_corners=True,
 * border indices clamped). dst must not overlap src. Returns 0, or -1 with
 * e set when a token count is not 1 + a square. */
int tl_vit_resize_pos_embedding(const float *src, int src_tokens, float *dst, int dst_tokens, int d, tl_err *e);

#endif
