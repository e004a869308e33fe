/* Learning-rate policy: schedules over the optimiser steps of a run, and
 * discriminative rates over parameter groups.
 *
 * A schedule gives a factor for each step (0-based update number); the
 * learning rate of group g at step t is group_lr[g] * factor(t).
 *
 *   constant  1
 *   step      gamma^floor(t / step_size)                (torch StepLR)
 *   cosine    min + (1 - min) (1 + cos(pi t / T)) / 2   (torch
 *             CosineAnnealingLR, eta_min = min * base, T = total - warm-up;
 *             min after T)
 *   onecycle  torch OneCycleLR with anneal_strategy 'cos', two phases:
 *             1/div -> 1 over the first pct of the run, then 1 ->
 *             1/(div * final_div); its last value after total_steps.
 *             (The momentum cycling of OneCycleLR is not done here.)
 *
 * Warm-up (constant, step, cosine): over the first warmup_steps steps the
 * factor rises linearly from warmup_start_factor to 1 (torch LinearLR);
 * the main schedule then starts, its step count beginning at 0 after the
 * warm-up (torch SequentialLR(LinearLR, main, milestones=[warmup])).
 *
 * Spec syntax (tl_schedule_parse, the --schedule option):
 *
 *   SPEC  = KIND { SEP ITEM }        SEP is ':' or ','
 *   KIND  = constant | step | cosine | onecycle
 *   ITEM  = KEY=VALUE | VALUE        bare values are positional: only step
 *                                    takes them, size then gamma
 *   keys  constant: warmup, warmup_start
 *         step:     size, gamma, warmup, warmup_start
 *         cosine:   min, warmup, warmup_start
 *         onecycle: pct, div, final_div
 *   warmup=N        warm-up steps, integer >= 0 (default 0)
 *   warmup_start=F  first warm-up factor in [0, 1] (default 1/3, LinearLR's)
 *   size=N          steps between decays, integer >= 1 (default total / 3)
 *   gamma=F         decay factor > 0 (default 0.1)
 *   min=F           cosine floor as a fraction of the base rate, [0, 1]
 *                   (default 0)
 *   pct=F           onecycle: fraction of the run spent rising, [0, 1]
 *                   (default 0.3)
 *   div=F           onecycle: start rate = base / div, > 0 (default 25)
 *   final_div=F     onecycle: final rate = start / final_div, > 0
 *                   (default 1e4)
 *
 * Examples: "constant", "constant:warmup=100", "step:30:0.1",
 * "step:size=30,gamma=0.5", "cosine", "cosine:warmup=500",
 * "cosine:warmup=500,min=0.01", "onecycle", "onecycle:pct=0.3".
 * Step counts are optimiser steps (batches), not epochs. */
#ifndef TL_TRAIN_SCHEDULE_H
#define TL_TRAIN_SCHEDULE_H

#include "core.h"

#include <stdint.h>

enum { TL_SCHED_CONSTANT, TL_SCHED_STEP, TL_SCHED_COSINE, TL_SCHED_ONECYCLE };

typedef struct tl_schedule {
    int kind;
    int64_t total_steps;
    int64_t warmup_steps;       /* constant, step, cosine */
    double warmup_start_factor;
    int64_t step_size;          /* step */
    double gamma;               /* step */
    double min_factor;          /* cosine floor, fraction of the base rate */
    double pct_start, div_factor, final_div_factor; /* onecycle */
} tl_schedule;

/* Defaults, with reasons: step decays by 0.1 every third of the run (the
 * torchvision ImageNet recipe: 90 epochs, step 30, gamma 0.1); cosine goes
 * to 0 (CosineAnnealingLR's eta_min); onecycle uses OneCycleLR's pct_start
 * 0.3, div_factor 25, final_div_factor 1e4; no warm-up, which starts at
 * 1/3 when asked for (LinearLR's start_factor). */
void tl_schedule_default(tl_schedule *s, int kind, int64_t total_steps);

/* Checks a filled-in schedule (e.g. cosine needs total_steps > warm-up). */
int tl_schedule_check(const tl_schedule *s, tl_err *e);

/* Multiplier of the base learning rate at step (0-based). */
double tl_schedule_factor(const tl_schedule *s, int64_t step);

/* Parses SPEC (syntax above) into s. s->total_steps is an input: set it to
 * the run's number of optimiser steps first (0 when unknown, which cosine,
 * onecycle and step without a size reject); it is kept, every other field
 * is replaced. */
int tl_schedule_parse(const char *spec, tl_schedule *s, tl_err *e);

/* Discriminative learning rates for ngroups groups into out[ngroups].
 * With no rates (NULL or nrates 0): the head (last group) gets head_lr and
 * each earlier group mult times the one after it, lr_g = head_lr *
 * mult^(ngroups-1-g). Otherwise rates holds one rate per group, first
 * group first; head_lr and mult are then ignored (a count that is not
 * ngroups fails with kind TL_ERR_ARG). Rates must be finite and >= 0, mult
 * finite and > 0. */
int tl_group_lrs(int ngroups, double head_lr, double mult, const double *rates, int nrates, double *out, tl_err *e);

#endif
