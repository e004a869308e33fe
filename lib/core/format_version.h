/* The version numbers of the files tl writes, and the one check every
 * reader makes (tl-formats(5), COMPATIBILITY). A version goes up only when
 * an older tl would misread a file: a new optional key, which older readers
 * skip, does not change it. So a tl reads every file of its own or a lower
 * version, and refuses a higher one by saying that a newer tl wrote it,
 * before it can misread anything else in the file. */
#ifndef TL_CORE_FORMAT_VERSION_H
#define TL_CORE_FORMAT_VERSION_H

#include "core.h"

/* "version" in a feature file's header (2 added multi-label rows). */
#define TL_FORMAT_FEATURES 2
/* The number after "#tl-features" on a TSV feature file's first line. */
#define TL_FORMAT_FEATURES_TSV 1
/* "tl.format" in the metadata of a network, head or resume state. */
#define TL_FORMAT_CHECKPOINT 1
/* "format" on the start line of a training or extraction log. */
#define TL_FORMAT_LOG 1

/* A version as the string a metadata value holds: TL_STR(TL_FORMAT_CHECKPOINT). */
#define TL_STR_(x) #x
#define TL_STR(x) TL_STR_(x)

/* NAME's WHAT version is V (as read: any number). 0 when tl reads it,
 * else an error: not a whole number >= 1, or newer than KNOWN. */
int tl_format_check(const char *name, const char *what, double v, int known, tl_err *e);

#endif
