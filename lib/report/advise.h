/* Advice by data-set size: which transfer-learning strategy to start with,
 * why, and what to try when it plateaus. The thresholds follow the usual
 * practice (and this project's brief): under ~1,000 labelled images a fixed
 * feature extractor with a linear classifier; ~1,000-100,000 fine-tune the
 * later layers; beyond that fine-tune everything. Images per class refine
 * it: a few hundred images spread over many classes behave like a smaller
 * data set. */
#ifndef TL_REPORT_ADVISE_H
#define TL_REPORT_ADVISE_H

#include "core.h"
#include "json.h"

#include <stdint.h>

enum { TL_ADVISE_FEATURES, TL_ADVISE_PARTIAL, TL_ADVISE_FULL };

typedef struct tl_advice {
    int64_t n;              /* labelled images */
    int nclasses, empty;    /* classes, and classes without an image */
    int64_t min_class, max_class;
    double median_class;
    int strategy;           /* TL_ADVISE_* */
    double imbalance;       /* largest / smallest non-empty class */
} tl_advice;

/* counts[k] images per class; names may be NULL. Appends the advice as
 * "key  text" lines (data, strategy, why, settings, next, and warnings)
 * to out. Fails only on k < 1 or allocation failure. */
int tl_advise(const int64_t *counts, const char *const *names, int k, const char *data_name, tl_advice *a,
              tl_strbuf *out, tl_err *e);

#endif
