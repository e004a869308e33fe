/* What the learning-rate range test (train/lr_find.h) found: the curve in
 * a few lines and the suggested rate with its rule, the plot, a JSON line
 * for the training log. */
#ifndef TL_REPORT_LR_FIND_REPORT_H
#define TL_REPORT_LR_FIND_REPORT_H

#include "train/lr_find.h"

#include <stdio.h>

/* About a dozen points of the smoothed curve, then the suggestions (the
 * valley rule first, the one to use) and how far the test went. */
void tl_lr_find_print(FILE *f, const tl_lr_find_result *r);

/* Smoothed loss (and the raw batch losses, thin) against log10 of the
 * learning rate, the three suggestions marked; fastai's plot leaves out
 * the last five steps, so does this one. SVG or PNG by the name. */
int tl_lr_find_plot(const tl_lr_find_result *r, const char *title, const char *path, tl_err *e);

/* One JSON line, phase "lr_find", with the curve and the suggestions
 * (tl-compare ignores it; jq reads it). */
void tl_lr_find_json(FILE *f, const tl_lr_find_result *r);

#endif
