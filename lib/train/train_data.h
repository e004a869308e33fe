/* Labelled images to train on: a data set (class folders, a manifest, a
 * list on standard input) or IDX files ("idx:PREFIX" or
 * "idx:IMAGES,LABELS"), with their class names, as the tl_source the batch
 * loader reads. */
#ifndef TL_TRAIN_TRAIN_DATA_H
#define TL_TRAIN_TRAIN_DATA_H

#include "batch_loader.h"

typedef struct tl_train_data {
    tl_dataset ds;
    tl_idx idx;
    tl_source src;
    char **classes;
    int nclasses;
    int is_idx;
} tl_train_data;

/* Every sample must have a label, and there must be at least one. IDX
 * classes are named "0".."9" (Fashion-MNIST's names for a file that says
 * fashion). */
int tl_train_data_open(const char *spec, tl_train_data *d, tl_err *e);
/* With dataset flags (TL_DS_MULTILABEL: label sets; IDX files are
 * single-label only). */
int tl_train_data_open_flags(const char *spec, int flags, tl_train_data *d, tl_err *e);
void tl_train_data_free(tl_train_data *d);
int64_t tl_train_data_count(const tl_train_data *d);

/* Renumbers v's labels to t's classes, matched by name (validation data
 * may hold fewer classes, in another order); a class of v that t lacks is
 * an error. Multi-label sets are renumbered and kept ascending. */
int tl_train_data_match(tl_train_data *v, const tl_train_data *t, const char *vname, tl_err *e);

#endif
