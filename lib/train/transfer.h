/* What transfer learning decides about a network before training it:
 * which pretrained weights it starts from, which layers stay frozen, and
 * how fast each group of layers learns. */
#ifndef TL_TRAIN_TRANSFER_H
#define TL_TRAIN_TRANSFER_H

#include "models/models.h"

/* Copies every parameter of src into dst by name, except the classifier
 * (tl_model_classifier_node: the logits layer, or SqueezeNet's final 1x1
 * convolution), which is initialised from seed as torchvision initialises
 * it, unless keep_head is set and src's classifier has the same size
 * (*kept = 1 then). A parameter of dst that src lacks or holds
 * in another size is an error naming it. */
int tl_transfer_weights(tl_model *dst, const tl_model *src, int keep_head, uint64_t seed, int *kept, tl_err *e);

/* The default rates of discriminative fine-tuning for ngroups groups
 * (earliest first, the head last): the head at lr, the backbone from 0.1x
 * lr (the group next to the head) to 0.01x lr (the earliest group),
 * geometrically. Pretrained layers then learn 10 to 100 times more slowly
 * than the new head, the range known to work, and the most generic layers
 * move least; a fixed 0.1 per group would leave the first of four groups
 * at 1e-4x, frozen in all but name. Rates are rounded to 9 significant
 * digits, the precision the checkpoint metadata records them in, so a run
 * can be repeated from its metadata. ngroups 1: the head alone. */
void tl_lr_spread(int ngroups, double lr, double *out);

/* Which parameters stay frozen for the whole run: the nodes up to and
 * including until_node (-1: none), or everything but the head (head_only,
 * the last of ngroups groups). Fills mask (m->nparams bytes, 1 = frozen)
 * and sets every parameter's frozen flag for the first epoch: the mask,
 * and with progressive unfreezing (unfreeze_every > 0) every group but the
 * head. */
void tl_freeze_plan(tl_model *m, int ngroups, int until_node, int head_only, int unfreeze_every,
                    unsigned char *mask);

/* Each parameter of nodes 0..until (weights and batch-norm statistics)
 * into mask (nparams bytes). */
void tl_freeze_mask_until(const tl_model *m, int until, unsigned char *mask);

#endif
