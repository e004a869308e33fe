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
    int keep_tmp;    /* a resumable output: abort leaves the temporary file */
} tl_outfile;

int tl_outfile_open(tl_outfile *o, const char *path, tl_err *e);
/* A resumable output (tl-extract --resume): the temporary file has a
 * fixed name, partial, which is continued after its first keep bytes (the
 * rest, a record cut short, is dropped; 0: a new file) and is left in
 * place by abort, so a later run can continue it. */
int tl_outfile_open_partial(tl_outfile *o, const char *path, const char *partial, uint64_t keep, tl_err *e);
/* Flushes, syncs and renames; reports write errors such as a full disk. */
int tl_outfile_commit(tl_outfile *o, tl_err *e);
/* Removes the temporary file; safe to call after commit or on a zeroed struct. */
void tl_outfile_abort(tl_outfile *o);

#endif
