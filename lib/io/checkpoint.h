/* A network checkpoint: a safetensors file whose tensors carry torchvision
 * state_dict names and whose tl.* metadata says how to rebuild the graph
 * (arch, classes, width) and how to preprocess images for it. */
#ifndef TL_IO_CHECKPOINT_H
#define TL_IO_CHECKPOINT_H

#include "models/models.h"
#include "image.h"
#include "safetensors.h"

typedef struct tl_net {
    tl_model *model;
    char **classes;
    int nclasses;
    tl_preproc pp;
    tl_arch_opts opts;
    char *path;           /* the file it was loaded from */
    char **meta_keys, **meta_values; /* all metadata, kept for provenance */
    int nmeta;
} tl_net;

/* name_or_path: a file, or a name looked up in $TL_MODEL_PATH (a
 * colon-separated list of folders; NAME and NAME.safetensors are tried). */
int tl_model_locate(const char *name_or_path, char *out, size_t outlen, tl_err *e);
int tl_net_load(const char *name_or_path, tl_net *net, tl_err *e);
/* The same network built for another input, w x h (0: as stored), with
 * the same preprocessing scaled to it (tl_preproc_resize_input) and
 * resize_mode (-1: as stored); ViT position embeddings are resampled.
 * Its metadata then states the new geometry. */
int tl_net_load_at(const char *name_or_path, int w, int h, int resize_mode, tl_net *net, tl_err *e);
void tl_net_free(tl_net *net);
/* Refuses a network, head or resume state whose tl.format is newer than
 * this tl reads (a file without one is format 1). Every reader calls it
 * before it looks at any other key. */
int tl_checkpoint_check_format(const tl_st_file *f, const char *path, tl_err *e);
/* Reads only preprocessing keys from metadata (missing keys: torchvision
 * ImageNet defaults). */
int tl_preproc_from_meta(const tl_st_file *f, tl_preproc *pp, tl_err *e);
/* Writes parameters (F32) and metadata; extra_meta is a NULL-terminated
 * list of key, value pairs that override the stored ones. */
int tl_net_save(const tl_net *net, const char *path, const char *const *extra_meta, tl_err *e);
const char *tl_net_meta(const tl_net *net, const char *key);
/* Makes the metadata's tl.input_size, tl.resize_size and tl.resize_mode say
 * what net->pp holds. */
int tl_net_meta_geometry(tl_net *net, tl_err *e);

#endif
