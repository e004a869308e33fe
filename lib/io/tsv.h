/* The one rule of every TSV file tl writes (feature files, predictions,
 * manifests, tl-predict's table, tl-compare --tsv): a field may not hold a
 * tab, a line feed or a carriage return (it would shift or split the
 * columns), and a line's first field may not start with '#' (readers take
 * such a line for a comment and drop it). Writers check their fields with
 * tl_tsv_check before writing anything they can check in advance. */
#ifndef TL_IO_TSV_H
#define TL_IO_TSV_H

#include "core.h"

/* 0 when s may be a field; otherwise fails naming what it is ("path",
 * "class name") and the field. first: s starts a line. */
int tl_tsv_check(const char *s, const char *what, int first, tl_err *e);

#endif
