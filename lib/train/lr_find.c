#include "lr_find.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tl_lr_find_opts_default(tl_lr_find_opts *o)
{
    o->start = 1e-7;
    o->end = 10;
    o->steps = 100;
    o->beta = 0.98;
    o->diverge = 4;
}

void tl_lr_find_result_free(tl_lr_find_result *r)
{
    free(r->lr);
    free(r->loss);
    free(r->smoothed);
    memset(r, 0, sizeof *r);
}

/* fastai's valley: the longest decreasing subsequence of the losses (in
 * index order), and the point a third plus a sixth of the way along it. */
static int valley(const double *loss, int lo, int hi)
{
    int n = hi - lo;
    if (n < 2)
        return -1;
    int *lds = malloc((size_t)n * sizeof *lds);
    if (!lds)
        return -1;
    int max_start = 0, max_end = 0;
    for (int i = 0; i < n; i++)
        lds[i] = 1;
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++) {
            if (loss[lo + i] < loss[lo + j] && lds[i] < lds[j] + 1)
                lds[i] = lds[j] + 1;
            if (lds[max_end] < lds[i]) {
                max_end = i;
                max_start = max_end - lds[max_end];
            }
        }
    free(lds);
    double sections = (max_end - max_start) / 3.0;
    int idx = max_start + (int)sections + (int)(sections / 2);
    return lo + idx;
}

void tl_lr_find_suggest(tl_lr_find_result *r)
{
    r->valley = r->minimum = r->steep = -1;
    r->valley_lr = r->minimum_lr = r->steep_lr = NAN;
    int lo = r->asked / 10, hi = r->n - 5;
    if (hi - lo < 3)
        return;
    r->valley = valley(r->smoothed, lo, hi);
    r->minimum = lo;
    r->steep = lo;
    double steepest = INFINITY;
    for (int i = lo; i < hi; i++) {
        if (r->smoothed[i] < r->smoothed[r->minimum])
            r->minimum = i;
        /* fastai's steep: the most negative slope of the loss against
         * log(lr), at the left end of the steepest step */
        if (i + 1 < hi) {
            double g = (r->smoothed[i + 1] - r->smoothed[i]) / (log(r->lr[i + 1]) - log(r->lr[i]));
            if (g < steepest) {
                steepest = g;
                r->steep = i;
            }
        }
    }
    if (r->valley >= 0)
        r->valley_lr = r->lr[r->valley];
    r->minimum_lr = r->lr[r->minimum] / 10;
    r->steep_lr = r->lr[r->steep];
}

int tl_lr_find(tl_finetune *f, const tl_lr_find_opts *o, volatile sig_atomic_t *stop,
               void (*progress)(void *user, int64_t done, int64_t total), void *user, tl_lr_find_result *r,
               tl_err *e)
{
    memset(r, 0, sizeof *r);
    r->asked = o->steps;
    if (!(o->start > 0 && o->end > o->start && o->steps >= 2))
        return tl_fail_arg(e, "--find-lr: the range %g..%g over %d steps is empty", o->start, o->end, o->steps);
    tl_trainer *t = f->trainer;
    int batch = f->o.batch;
    size_t isz = tl_batch_loader_image_floats(f->train_loader);
    float *x = tl_xalloc((size_t)batch * isz, sizeof(float), e);
    int *y = x ? tl_xalloc((size_t)batch, sizeof(int), e) : NULL;
    int64_t *order = y ? tl_xalloc((size_t)f->ntrain + 1, sizeof(int64_t), e) : NULL;
    r->lr = calloc((size_t)o->steps, sizeof(double));
    r->loss = calloc((size_t)o->steps, sizeof(double));
    r->smoothed = calloc((size_t)o->steps, sizeof(double));
    int rc = -1;
    if (!order || !r->lr || !r->loss || !r->smoothed) {
        if (order)
            tl_fail(e, "out of memory");
        goto out;
    }
    /* The head's base rate sets the unit: every group moves with it. */
    double head = t->base_lr[t->ngroups - 1], avg = 0, best = INFINITY;
    int64_t per_epoch = f->ntrain / batch, pos = per_epoch; /* a new shuffle at the first step */
    if (per_epoch < 1)
        per_epoch = 1;
    uint64_t epoch = 0;
    for (int i = 0; i < o->steps; i++) {
        if (stop && *stop)
            break;
        if (pos >= per_epoch) {
            memcpy(order, f->train_ids, (size_t)f->ntrain * sizeof(int64_t));
            tl_rng g;
            tl_rng_seed_stream(&g, f->o.seed, 0x1F1D + epoch);
            tl_rng_shuffle(&g, order, f->ntrain);
            pos = 0;
            epoch++;
        }
        int nb = (int)(f->ntrain < batch ? f->ntrain : batch);
        if (tl_batch_load(f->train_loader, f->pool, order + pos * batch, nb, f->o.seed, epoch - 1, x, y, e))
            goto out;
        pos++;
        double lr = o->start * pow(o->end / o->start, (double)i / o->steps);
        t->factor = lr / head;
        tl_targets tg = {y, NULL, NULL};
        tl_step_stats st;
        int bad = tl_trainer_step(t, f->pool, nb, x, &tg, f->o.seed * 0x9E3779B97F4A7C15ull + (uint64_t)i, &st, e);
        r->lr[i] = lr;
        r->n = i + 1;
        if (bad || !isfinite(st.loss)) {
            /* a rate high enough to blow the loss up: the end of the curve */
            r->loss[i] = r->smoothed[i] = INFINITY;
            r->diverged = 1;
            break;
        }
        r->loss[i] = st.loss;
        avg = o->beta * avg + (1 - o->beta) * st.loss;
        r->smoothed[i] = avg / (1 - pow(o->beta, i + 1));
        if (r->smoothed[i] < best)
            best = r->smoothed[i];
        if (progress)
            progress(user, i + 1, o->steps);
        if (r->smoothed[i] > o->diverge * best) {
            r->diverged = 1;
            break;
        }
    }
    t->factor = -1;
    /* A diverged last point is no part of the curve to suggest from. */
    if (r->n && !isfinite(r->smoothed[r->n - 1]))
        r->n--;
    tl_lr_find_suggest(r);
    rc = 0;
out:
    tl_free(x);
    tl_free(y);
    tl_free(order);
    if (rc)
        tl_lr_find_result_free(r);
    return rc;
}
