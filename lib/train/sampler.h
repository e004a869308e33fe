/* The order in which an epoch visits the training images: a seeded
 * shuffle (each image once), or, for imbalanced data, draws with
 * replacement that give every class the same expected share of the epoch
 * (--sampler balanced; PyTorch's WeightedRandomSampler with weights
 * 1 / class count). Both depend only on the seed and the epoch. */
#ifndef TL_TRAIN_SAMPLER_H
#define TL_TRAIN_SAMPLER_H

#include "batch_loader.h"

enum { TL_SAMPLER_SHUFFLE, TL_SAMPLER_BALANCED };

typedef struct tl_sampler {
    int kind;
    double *cum;   /* balanced: cumulative weights of the epoch's images, n */
    int64_t n;
} tl_sampler;

/* For the n images ids of src. Balanced: image i weighs 1 / (images of
 * its class among ids); multi-label, the largest 1 / count over its labels
 * (an image with none: 1 / the number of such images), so a rare label's
 * images come as often as a common one's. */
int tl_sampler_init(tl_sampler *s, int kind, const tl_source *src, const int64_t *ids, int64_t n, tl_err *e);
void tl_sampler_free(tl_sampler *s);
/* The epoch's n images (order receives n ids). */
void tl_sampler_order(const tl_sampler *s, uint64_t seed, int epoch, const int64_t *ids, int64_t n, int64_t *order);

#endif
