/* Image data sets: a class-folder tree (root/<class>/<image>), a TSV
 * manifest (path<TAB>label, relative paths resolved against the
 * manifest's folder), or a list on standard input ("-", same syntax as a
 * manifest, paths relative to the current folder). Classes are sorted by
 * name; a sample without a label has label -1.
 *
 * Multi-label data (TL_DS_MULTILABEL): a manifest line is
 * path<TAB>label1,label2,... — ',' separates labels, so no label may
 * contain one. A line without a label column, or with "-", is unlabelled;
 * an empty label column is an image with none of the classes. A label that is
 * empty (",,", a ',' at either end) or begins or ends with white space
 * (the mark of a name that held ", ", as ImageNet's do) is refused with
 * its line number; repeated labels on a line count once. In a class-folder
 * tree each image has its folder's one label (a folder name holding ','
 * is refused). Manifest lines are at most TL_DATASET_MAX_LINE bytes; every
 * error names the input and the line. */
#ifndef TL_IO_DATASET_H
#define TL_IO_DATASET_H

#include "core.h"
#include <stdio.h>

#define TL_DATASET_MAX_LINE ((size_t)1 << 20)

typedef struct tl_sample {
    char *path;
    int label;    /* the class; multi-label data: the number of labels; -1: unlabelled */
    int *labels;  /* multi-label data: the label set, ascending class indices (NULL when empty) */
} tl_sample;

typedef struct tl_dataset {
    tl_sample *items;
    int64_t n;
    char **classes;
    int nclasses;
    int multilabel;
} tl_dataset;

enum { TL_DS_MULTILABEL = 1 };

int tl_dataset_open(const char *spec, tl_dataset *d, tl_err *e);
int tl_dataset_read_manifest(FILE *f, const char *name, const char *base_dir, tl_dataset *d, tl_err *e);
/* The same with flags (TL_DS_MULTILABEL). */
int tl_dataset_open_flags(const char *spec, int flags, tl_dataset *d, tl_err *e);
int tl_dataset_read_manifest_flags(FILE *f, const char *name, const char *base_dir, int flags, tl_dataset *d,
                                   tl_err *e);
/* Checks one multi-label field ("a,b,c"; "-" alone is for the caller to
 * take as unlabelled): 0, or -1 with the reason in e (no file or line:
 * the caller adds them). */
int tl_labels_check(const char *field, tl_err *e);
void tl_dataset_free(tl_dataset *d);
/* Index of a class name, or -1. */
int tl_dataset_class(const tl_dataset *d, const char *name);
/* True for file names whose extension marks an image we can decode. */
int tl_is_image_name(const char *name);

#endif
