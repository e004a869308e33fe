/* What a layer sweep (train/probe.h) says, for people and programs: the
 * table of accuracy by layer, the verdict in words, the curve as a plot,
 * the same as JSON. */
#ifndef TL_REPORT_PROBE_REPORT_H
#define TL_REPORT_PROBE_REPORT_H

#include "train/probe.h"

#include <stdio.h>

/* The verdict, a few sentences, each one line (no trailing newline):
 * which layer is best and by how much against the default layer, judged
 * against the paired noise of the validation set (tl_probe_noise), what
 * that says about the domain and what to do, and how accuracy moves with
 * depth. The array and its strings are malloc'ed (tl_strings_free). */
int tl_probe_verdict(const tl_probe *p, char ***lines, int *nlines, tl_err *e);

/* The table: layer, its depth, values per image, training and validation
 * accuracy, validation loss; the best and default layers marked. */
void tl_probe_print(FILE *f, const tl_probe *p);

/* Validation (solid) and training (dashed) accuracy against depth, the
 * best and the default layer marked; SVG or PNG by the name. */
int tl_probe_plot(const tl_probe *p, const char *title, const char *path, tl_err *e);

/* One JSON object: the inputs named by the caller, every layer, best,
 * default, their difference and its noise, the verdict lines. */
typedef struct tl_probe_about {
    const char *model, *train, *val, *head;
    double C;
} tl_probe_about;
void tl_probe_json(FILE *f, const tl_probe *p, const tl_probe_about *about, char *const *verdict, int nverdict);

#endif
