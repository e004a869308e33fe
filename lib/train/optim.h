/* Optimisers for fine-tuning: SGD (momentum, dampening, Nesterov) and AdamW,
 * with the update rules of PyTorch 1.13's torch.optim.SGD and
 * torch.optim.AdamW, per-group learning rates (discriminative fine-tuning),
 * per-parameter weight-decay switches and freezing; plus the gradient
 * utilities a training step needs (global norm, clipping, finiteness).
 *
 * The optimiser does not own parameters or gradients: it keeps pointers to
 * them and owns only its state (momentum buffer, or AdamW's first and second
 * moments) and one update counter per parameter. Like PyTorch, a parameter
 * that is frozen during a step is skipped entirely - no state change, no
 * counter increment - so a parameter unfrozen later starts with a fresh
 * momentum buffer / bias correction, as it would in PyTorch when its grad
 * is None. */
#ifndef TL_TRAIN_OPTIM_H
#define TL_TRAIN_OPTIM_H

#include "core.h"

#include <stdint.h>

/* One parameter tensor. group: 0..ngroups-1 in network order (the last group
 * is the new head). decay: 1 applies weight decay (by convention 0 for
 * biases and normalisation parameters). grad may be NULL while frozen. */
typedef struct tl_opt_param {
    float *data;
    float *grad;
    int64_t numel;
    int group;
    int decay;
    int frozen;
} tl_opt_param;

enum { TL_OPT_SGD, TL_OPT_ADAMW };

typedef struct tl_opt_config {
    int kind;          /* TL_OPT_SGD or TL_OPT_ADAMW */
    double momentum;   /* SGD: 0 disables the buffer */
    int nesterov;      /* SGD: needs momentum > 0 and dampening 0, as in PyTorch */
    double dampening;  /* SGD */
    double beta1, beta2, eps; /* AdamW */
    /* SGD: L2 penalty added to the gradient (grad + wd * param) before the
     * momentum buffer, as torch.optim.SGD(weight_decay=...).
     * AdamW: decoupled, param *= 1 - lr * wd before the Adam update, as
     * torch.optim.AdamW. Applied only to parameters with decay = 1. */
    double weight_decay;
} tl_opt_config;

/* SGD: momentum 0.9, no Nesterov, no dampening, wd 1e-4.
 * AdamW: betas 0.9/0.999, eps 1e-8, wd 0.01. */
void tl_opt_config_default(tl_opt_config *c, int kind);

typedef struct tl_optimizer tl_optimizer;

/* Copies the parameter list (the pointers inside must stay valid; later
 * freezing goes through tl_opt_set_frozen). State
 * for a parameter is allocated (64-byte aligned, zeroed) here if it is
 * trainable, or by tl_opt_set_frozen when it is first unfrozen - never
 * in tl_opt_step - so head-only training of a large backbone does not pay
 * for AdamW moments it never uses. NULL on invalid input or no memory. */
tl_optimizer *tl_opt_new(const tl_opt_config *c, const tl_opt_param *params, int nparams, int ngroups, tl_err *e);
void tl_opt_free(tl_optimizer *o);

/* One update of every non-frozen parameter with the learning rate of its
 * group (group_lr[ngroups], finite, >= 0). Frozen parameters, their
 * gradients and state are not touched. Parallel over fixed element chunks;
 * each element's update is independent, so results are bit-identical for
 * any thread count. pool may be NULL. */
void tl_opt_step(tl_optimizer *o, const double *group_lr, tl_pool *pool);

/* Progressive unfreezing. Unfreezing allocates the parameter's state the
 * first time; fails (state unchanged) when out of memory or when the
 * parameter has no gradient buffer. */
int tl_opt_set_frozen(tl_optimizer *o, int param_index, int frozen, tl_err *e);

int tl_opt_nparams(const tl_optimizer *o);
/* The optimiser's copy of the parameter list, with current frozen flags:
 * pass it to the gradient utilities below. */
const tl_opt_param *tl_opt_params(const tl_optimizer *o);
/* Floats of state currently allocated. */
int64_t tl_opt_state_floats(const tl_optimizer *o);

/* Checkpoint / resume.
 *
 * State buffers are slots k = 0 .. tl_opt_nstate()-1, named
 * "opt.<param index>.m" (SGD momentum buffer / AdamW exp_avg) and
 * "opt.<param index>.v" (AdamW exp_avg_sq); SGD without momentum has none.
 * Per-parameter update counters (PyTorch's per-parameter "step") are one
 * int64 array of nparams, to be stored as the I64 tensor "opt.steps".
 *
 * Saving: for each slot, tl_opt_state_get(o, k, 0, &s, e) and write
 * s.data (numel floats) under s.name when it is not NULL (never-trained
 * parameters have no state); then write tl_opt_steps(o) as "opt.steps".
 * Loading: build the optimiser with the same parameters and frozen flags,
 * then for each stored "opt.*" buffer k = tl_opt_state_find(o, name),
 * tl_opt_state_get(o, k, 1, &s, e) (allocates if needed) and copy into
 * s.data after checking s.numel; finally copy "opt.steps" into
 * tl_opt_steps(o). A parameter with steps 0 treats its buffer as absent
 * (SGD initialises the buffer from the next gradient). */
typedef struct tl_opt_state {
    char name[40];
    int param;     /* parameter index */
    float *data;   /* NULL when not allocated and allocate == 0 */
    int64_t numel;
} tl_opt_state;

int tl_opt_nstate(const tl_optimizer *o);
int tl_opt_state_get(tl_optimizer *o, int k, int allocate, tl_opt_state *s, tl_err *e);
/* Slot index of a state name, -1 if the name is not one of ours. */
int tl_opt_state_find(const tl_optimizer *o, const char *name);
int64_t *tl_opt_steps(tl_optimizer *o);

/* Gradient utilities over the non-frozen parameters (frozen ones and NULL
 * grads are skipped). The norm is accumulated in double in parameter and
 * element order, so it is reproducible. */
double tl_grad_norm(const tl_opt_param *params, int n);
void tl_grad_scale(const tl_opt_param *params, int n, float s);
/* Clips as torch.nn.utils.clip_grad_norm_: when the norm exceeds max_norm,
 * grads are scaled by max_norm / (norm + 1e-6). Returns the norm before
 * clipping; a non-finite norm is returned without scaling anything. */
double tl_grad_clip(const tl_opt_param *params, int n, double max_norm);
/* 1 if every gradient value is finite, 0 on any NaN or Inf. */
int tl_grads_finite(const tl_opt_param *params, int n);

#endif
