/* Augmented copies of a whole data set, as tl-augment writes them: copy K
 * of image NAME.EXT of class C goes to OUTDIR/C/NAME_augK.png (or .jpg; a
 * name met twice in one class gets "-INDEX" so no copy overwrites
 * another), and a contact sheet shows the first rows: each original, then
 * its copies. Images are augmented on the pool's threads a block at a
 * time and reported in data-set order; copy K of image I is seeded by
 * (seed, K, I), so the bytes do not depend on the thread count. */
#ifndef TL_AUGMENT_AUGMENT_SET_H
#define TL_AUGMENT_AUGMENT_SET_H

#include "augment.h"
#include "io/dataset.h"

#include <signal.h>

typedef struct tl_aug_set_opts {
    const char *outdir;            /* NULL: write no copies (a sheet only) */
    int copies;                    /* per image */
    int jpeg, quality;             /* JPEG at quality 1..100, else PNG */
    uint64_t seed;
    size_t max_pixels;             /* decode limit, 0: the default */
    int skip_bad;                  /* an unreadable image is reported and skipped */
    int sheet_rows;                /* images on the contact sheet; 0: no sheet */
    volatile sig_atomic_t *stop;   /* set (e.g. by SIGINT): stop after the current block */
} tl_aug_set_opts;

typedef struct tl_aug_set tl_aug_set;

/* Output names and buffers for nworkers threads; nothing is written yet. A
 * class name that cannot be a folder name is an error. */
tl_aug_set *tl_aug_set_new(const tl_aug_pipeline *pl, const tl_dataset *d, const tl_aug_set_opts *o, int nworkers,
                           tl_err *e);
/* Where copy k of image i goes (malloc'ed; NULL without an outdir). */
char *tl_aug_set_path(const tl_aug_set *s, int64_t i, int k);
/* Creates OUTDIR and its class folders. */
int tl_aug_set_make_dirs(tl_aug_set *s, tl_err *e);

/* Called for every image in data-set order once its block is done:
 * skipped is NULL when its copies were written, else why it was skipped
 * (with skip_bad). A non-zero return stops the run with that error. */
typedef int (*tl_aug_set_fn)(void *user, int64_t index, const char *skipped, tl_err *e);

typedef struct tl_aug_set_stats {
    int64_t images, skipped, files; /* images done, skipped, files written */
    double seconds;
} tl_aug_set_stats;

enum { TL_AUG_SET_DONE = 0, TL_AUG_SET_STOPPED = 1 };

/* Augments the first n images (all of them with an outdir, else the
 * sheet's rows). Returns TL_AUG_SET_DONE, TL_AUG_SET_STOPPED (the stop
 * flag: every file written so far is complete) or -1. */
int tl_aug_set_run(tl_aug_set *s, tl_pool *pool, tl_aug_set_fn fn, void *user, tl_progress_fn progress,
                   void *progress_user, tl_aug_set_stats *st, tl_err *e);

/* The contact sheet (NULL without sheet_rows): one row per image, the
 * original then its copies, each scaled into a square cell. */
const tl_image *tl_aug_set_sheet(const tl_aug_set *s);

void tl_aug_set_free(tl_aug_set *s);

#endif
