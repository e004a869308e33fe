/* Limited-memory BFGS over a vector of doubles, with a line search that
 * enforces the strong Wolfe conditions (Nocedal & Wright, algorithms 3.5
 * and 3.6, cubic interpolation). Used by the logistic-regression head; it
 * knows nothing about the problem beyond f(x) and its gradient. */
#ifndef TL_LBFGS_H
#define TL_LBFGS_H

#include "core.h"

/* Returns f(x) and writes its gradient into g (length n). */
typedef double (*tl_lbfgs_eval_fn)(void *ctx, const double *x, double *g);
/* Called once per iteration from the calling thread. */
typedef void (*tl_lbfgs_progress_fn)(void *user, int iter, double f, double gnorm_inf);

typedef struct tl_lbfgs_opts {
    int m;           /* history pairs kept; default 10 */
    int max_iter;    /* default 1000 */
    int max_ls;      /* function evaluations per line search; default 25 */
    double gtol;     /* stop when max|g| <= gtol; default 1e-5 */
    double ftol;     /* stop when the decrease is below ftol * max(|f|, 1); default 1e-12 */
} tl_lbfgs_opts;

enum {
    TL_LBFGS_GTOL,      /* gradient small enough */
    TL_LBFGS_FTOL,      /* objective stopped decreasing */
    TL_LBFGS_MAX_ITER,  /* iteration budget used up */
    TL_LBFGS_LS_FAIL    /* no step found that decreases f: x is as good as we can do */
};

typedef struct tl_lbfgs_result {
    int status, iters, evals;
    double f, gnorm_inf;
} tl_lbfgs_result;

void tl_lbfgs_opts_default(tl_lbfgs_opts *o);
/* Minimises from x (in place). Fails only on bad options or out of memory. */
int tl_lbfgs_minimize(int64_t n, double *x, tl_lbfgs_eval_fn fn, void *ctx, const tl_lbfgs_opts *o,
                      tl_lbfgs_progress_fn progress, void *progress_user, tl_lbfgs_result *res, tl_err *e);
const char *tl_lbfgs_status_name(int status);

#endif
