/* Output files that appear complete or not at all: data goes to a
 * temporary file beside the target, which is flushed, fsync'd and renamed
 * over the final name only on commit. "-" means standard output (which
 * cannot be made atomic; a failing writer then exits non-zero). */
#ifndef TL_OUTFILE_H
#define TL_OUTFILE_H

#include "core.h"
#include <stdio.h>

typedef struct tl_outfile {
    FILE *fp;
    char *path;
    char *tmp;
    int is_stdout;
    int is_special;  /* an existing device or FIFO, written in place */
} tl_outfile;

int tl_outfile_open(tl_outfile *o, const char *path, tl_err *e);
/* Flushes, syncs and renames; reports write errors such as a full disk. */
int tl_outfile_commit(tl_outfile *o, tl_err *e);
/* Removes the temporary file; safe to call after commit or on a zeroed struct. */
void tl_outfile_abort(tl_outfile *o);

#endif
