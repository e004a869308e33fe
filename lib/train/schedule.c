/* Learning-rate schedules (closed forms of torch.optim.lr_scheduler's
 * StepLR, CosineAnnealingLR, LinearLR warm-up and OneCycleLR), their spec
 * parser, and per-group discriminative rates. */
#include "schedule.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const KIND_NAMES[] = {"constant", "step", "cosine", "onecycle"};

void tl_schedule_default(tl_schedule *s, int kind, int64_t total_steps)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->total_steps = total_steps;
    s->warmup_start_factor = 1.0 / 3.0;
    s->step_size = total_steps >= 3 ? total_steps / 3 : 1;
    s->gamma = 0.1;
    s->min_factor = 0.0;
    s->pct_start = 0.3;
    s->div_factor = 25.0;
    s->final_div_factor = 1e4;
}

int tl_schedule_check(const tl_schedule *s, tl_err *e)
{
    if (s->kind < TL_SCHED_CONSTANT || s->kind > TL_SCHED_ONECYCLE)
        return tl_fail(e, "unknown schedule kind %d", s->kind);
    if (s->total_steps < 0)
        return tl_fail(e, "negative total steps %lld", (long long)s->total_steps);
    if (s->warmup_steps < 0)
        return tl_fail(e, "negative warm-up %lld", (long long)s->warmup_steps);
    if (!(s->warmup_start_factor >= 0 && s->warmup_start_factor <= 1))
        return tl_fail(e, "warm-up start factor %g must be in [0, 1]", s->warmup_start_factor);
    switch (s->kind) {
    case TL_SCHED_STEP:
        if (s->step_size < 1)
            return tl_fail(e, "step schedule: step size %lld must be >= 1", (long long)s->step_size);
        if (!(s->gamma > 0) || !isfinite(s->gamma))
            return tl_fail(e, "step schedule: gamma %g must be finite and > 0", s->gamma);
        break;
    case TL_SCHED_COSINE:
        if (!(s->min_factor >= 0 && s->min_factor <= 1))
            return tl_fail(e, "cosine schedule: min %g must be in [0, 1]", s->min_factor);
        if (s->total_steps <= s->warmup_steps)
            return tl_fail(e, "cosine schedule needs more total steps (%lld) than warm-up steps (%lld)",
                           (long long)s->total_steps, (long long)s->warmup_steps);
        break;
    case TL_SCHED_ONECYCLE:
        if (s->total_steps < 1)
            return tl_fail(e, "onecycle schedule needs the total number of steps");
        if (s->warmup_steps)
            return tl_fail(e, "onecycle schedule has its own warm-up (pct), not warmup");
        if (!(s->pct_start >= 0 && s->pct_start <= 1))
            return tl_fail(e, "onecycle schedule: pct %g must be in [0, 1]", s->pct_start);
        if (!(s->div_factor > 0) || !isfinite(s->div_factor))
            return tl_fail(e, "onecycle schedule: div %g must be finite and > 0", s->div_factor);
        if (!(s->final_div_factor > 0) || !isfinite(s->final_div_factor))
            return tl_fail(e, "onecycle schedule: final_div %g must be finite and > 0", s->final_div_factor);
        break;
    default:
        break;
    }
    return 0;
}

/* OneCycleLR.get_lr with two phases and cosine annealing, on factors of
 * max_lr. Mirrors its phase boundaries (pct * total - 1, total - 1),
 * including their float arithmetic. */
static double onecycle(const tl_schedule *s, int64_t step)
{
    double initial = 1.0 / s->div_factor, min = initial / s->final_div_factor;
    double ends[2] = {s->pct_start * (double)s->total_steps - 1.0, (double)(s->total_steps - 1)};
    double starts_lr[2] = {initial, 1.0}, ends_lr[2] = {1.0, min};
    double t = (double)(step < s->total_steps ? step : s->total_steps - 1), start = 0.0;
    for (int i = 0; i < 2; i++) {
        if (t <= ends[i] || i == 1) {
            double span = ends[i] - start;
            double pct = span > 0 ? (t - start) / span : 1.0;
            return ends_lr[i] + (starts_lr[i] - ends_lr[i]) / 2.0 * (cos(M_PI * pct) + 1.0);
        }
        start = ends[i];
    }
    return min;
}

double tl_schedule_factor(const tl_schedule *s, int64_t step)
{
    if (step < 0)
        step = 0;
    if (s->kind == TL_SCHED_ONECYCLE)
        return onecycle(s, step);
    if (step < s->warmup_steps)
        return s->warmup_start_factor + (1.0 - s->warmup_start_factor) * (double)step / (double)s->warmup_steps;
    int64_t t = step - s->warmup_steps;
    switch (s->kind) {
    case TL_SCHED_STEP:
        return pow(s->gamma, (double)(t / (s->step_size > 0 ? s->step_size : 1)));
    case TL_SCHED_COSINE: {
        int64_t T = s->total_steps - s->warmup_steps;
        if (T <= 0 || t >= T)
            return s->min_factor;
        return s->min_factor + (1.0 - s->min_factor) * (1.0 + cos(M_PI * (double)t / (double)T)) / 2.0;
    }
    default:
        return 1.0;
    }
}

/* --- spec parser --- */

typedef struct {
    const char *p;
    size_t n;
} span;

static int span_eq(span a, const char *s) { return strlen(s) == a.n && memcmp(a.p, s, a.n) == 0; }

static int parse_int(const char *key, span v, int64_t *out, tl_err *e)
{
    char buf[64];
    if (v.n == 0 || v.n >= sizeof buf)
        return tl_fail(e, "schedule option %s: '%.*s' is not a whole number", key, (int)v.n, v.p);
    memcpy(buf, v.p, v.n);
    buf[v.n] = '\0';
    char *end;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (*end || errno || buf[0] == '+' || buf[0] == ' ')
        return tl_fail(e, "schedule option %s: '%s' is not a whole number", key, buf);
    *out = x;
    return 0;
}

static int parse_num(const char *key, span v, double *out, tl_err *e)
{
    char buf[64];
    if (v.n == 0 || v.n >= sizeof buf)
        return tl_fail(e, "schedule option %s: '%.*s' is not a number", key, (int)v.n, v.p);
    memcpy(buf, v.p, v.n);
    buf[v.n] = '\0';
    char *end;
    double x = strtod(buf, &end);
    if (*end || buf[0] == ' ' || !isfinite(x))
        return tl_fail(e, "schedule option %s: '%s' is not a finite number", key, buf);
    *out = x;
    return 0;
}

typedef struct {
    const char *name;
    unsigned kinds; /* bit per TL_SCHED_* */
    int is_int;
    size_t offset;
} option;

#define K(x) (1u << (x))
static const option OPTIONS[] = {
    {"warmup", K(TL_SCHED_CONSTANT) | K(TL_SCHED_STEP) | K(TL_SCHED_COSINE), 1, offsetof(tl_schedule, warmup_steps)},
    {"warmup_start", K(TL_SCHED_CONSTANT) | K(TL_SCHED_STEP) | K(TL_SCHED_COSINE), 0,
     offsetof(tl_schedule, warmup_start_factor)},
    {"size", K(TL_SCHED_STEP), 1, offsetof(tl_schedule, step_size)},
    {"gamma", K(TL_SCHED_STEP), 0, offsetof(tl_schedule, gamma)},
    {"min", K(TL_SCHED_COSINE), 0, offsetof(tl_schedule, min_factor)},
    {"pct", K(TL_SCHED_ONECYCLE), 0, offsetof(tl_schedule, pct_start)},
    {"div", K(TL_SCHED_ONECYCLE), 0, offsetof(tl_schedule, div_factor)},
    {"final_div", K(TL_SCHED_ONECYCLE), 0, offsetof(tl_schedule, final_div_factor)},
};
#define NOPTIONS ((int)(sizeof OPTIONS / sizeof OPTIONS[0]))
static const char *const KEYS_OF[] = {"warmup, warmup_start", "size, gamma, warmup, warmup_start",
                                      "min, warmup, warmup_start", "pct, div, final_div"};

static int set_option(tl_schedule *s, int o, span v, tl_err *e)
{
    char *field = (char *)s + OPTIONS[o].offset;
    if (OPTIONS[o].is_int)
        return parse_int(OPTIONS[o].name, v, (int64_t *)(void *)field, e);
    return parse_num(OPTIONS[o].name, v, (double *)(void *)field, e);
}

int tl_schedule_parse(const char *spec, tl_schedule *s, tl_err *e)
{
    if (!spec || !*spec)
        return tl_fail(e, "empty learning-rate schedule");
    int64_t total = s->total_steps > 0 ? s->total_steps : 0;
    const char *p = spec;
    span kind = {p, strcspn(p, ":,")};
    int k = -1;
    for (int i = 0; i < 4; i++)
        if (span_eq(kind, KIND_NAMES[i]))
            k = i;
    if (k < 0)
        return tl_fail(e, "unknown schedule '%.*s' (expected constant, step, cosine or onecycle)", (int)kind.n,
                       kind.p);
    tl_schedule r;
    tl_schedule_default(&r, k, total);
    unsigned seen = 0;
    int positional = 0;
    p += kind.n;
    while (*p) {
        p++; /* the separator */
        span item = {p, strcspn(p, ":,")};
        p += item.n;
        if (item.n == 0)
            return tl_fail(e, "schedule '%s': empty item", spec);
        const char *eq = memchr(item.p, '=', item.n);
        int o = -1;
        span v = item;
        if (eq) {
            span key = {item.p, (size_t)(eq - item.p)};
            v = (span){eq + 1, item.n - key.n - 1};
            for (int i = 0; i < NOPTIONS; i++)
                if (span_eq(key, OPTIONS[i].name) && (OPTIONS[i].kinds & K(k)))
                    o = i;
            if (o < 0)
                return tl_fail(e, "unknown option '%.*s' for schedule %s (expected %s)", (int)key.n, key.p,
                               KIND_NAMES[k], KEYS_OF[k]);
        } else {
            if (k != TL_SCHED_STEP || positional >= 2)
                return tl_fail(e, "unexpected value '%.*s' in schedule '%s' (use KEY=VALUE; keys: %s)", (int)item.n,
                               item.p, spec, KEYS_OF[k]);
            o = positional++ == 0 ? 2 : 3; /* size, gamma */
        }
        if (seen & (1u << o))
            return tl_fail(e, "schedule option %s given twice", OPTIONS[o].name);
        seen |= 1u << o;
        if (set_option(&r, o, v, e))
            return -1;
    }
    if (k == TL_SCHED_STEP && !(seen & (1u << 2)) && total == 0)
        return tl_fail(e, "step schedule needs a step size when the run length is unknown (e.g. step:30:0.1)");
    if (tl_schedule_check(&r, e))
        return -1;
    *s = r;
    return 0;
}

int tl_group_lrs(int ngroups, double head_lr, double mult, const double *rates, int nrates, double *out, tl_err *e)
{
    if (ngroups < 1)
        return tl_fail(e, "%d parameter groups, expected at least 1", ngroups);
    if (!rates || nrates == 0) {
        if (!(head_lr >= 0) || !isfinite(head_lr))
            return tl_fail(e, "learning rate %g must be finite and >= 0", head_lr);
        if (!(mult > 0) || !isfinite(mult))
            return tl_fail(e, "learning-rate multiplier %g must be finite and > 0", mult);
        double lr = head_lr;
        for (int g = ngroups - 1; g >= 0; g--) {
            out[g] = lr;
            lr *= mult;
        }
        return 0;
    }
    if (nrates != ngroups)
        return tl_fail_arg(e, "%d learning rates given for %d parameter groups", nrates, ngroups);
    for (int g = 0; g < ngroups; g++) {
        if (!isfinite(rates[g]) || rates[g] < 0)
            return tl_fail_arg(e, "learning rate %g is not a finite number >= 0", rates[g]);
        out[g] = rates[g];
    }
    return 0;
}
