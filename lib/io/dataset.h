/* Image data sets: a class-folder tree (root/<class>/<image>), a TSV
 * manifest (path<TAB>label, relative paths resolved against the
 * manifest's folder), or a list on standard input ("-", same syntax as a
 * manifest, paths relative to the current folder). Classes are sorted by
 * name; a sample without a label has label -1. */
#ifndef TL_IO_DATASET_H
#define TL_IO_DATASET_H

#include "core.h"
#include <stdio.h>

typedef struct tl_sample {
    char *path;
    int label;
} tl_sample;

typedef struct tl_dataset {
    tl_sample *items;
    int64_t n;
    char **classes;
    int nclasses;
} tl_dataset;

int tl_dataset_open(const char *spec, tl_dataset *d, tl_err *e);
int tl_dataset_read_manifest(FILE *f, const char *name, const char *base_dir, tl_dataset *d, tl_err *e);
void tl_dataset_free(tl_dataset *d);
/* Index of a class name, or -1. */
int tl_dataset_class(const tl_dataset *d, const char *name);
/* True for file names whose extension marks an image we can decode. */
int tl_is_image_name(const char *name);

#endif
