/* Turning a bare state_dict (torchvision or timm parameter names, as
 * published in model.safetensors files) into a tl checkpoint: parameters
 * renamed to torchvision's names, and the tl.* metadata that says how to
 * rebuild the network and preprocess its images. */
#ifndef TL_IO_CONVERT_ST_H
#define TL_IO_CONVERT_ST_H

#include "checkpoint.h"

enum { TL_NAMES_AUTO, TL_NAMES_TORCHVISION, TL_NAMES_TIMM };

typedef struct tl_convert_opts {
    const char *arch;
    int naming;          /* TL_NAMES_* */
    tl_preproc pp;       /* written to the metadata */
    const char *labels;  /* class names, one per line; NULL: "0".."k-1" */
    float bn_eps;        /* 0: the architecture's default */
    float width_mult;
} tl_convert_opts;

void tl_convert_opts_default(tl_convert_opts *o);
int tl_convert_state_dict(const char *in, const tl_convert_opts *o, const char *out, tl_log_fn log, void *log_user,
                          tl_err *e);
/* Reads class names, one per line (blank lines end nothing: every line is
 * a class, trailing CR removed). */
int tl_read_labels(const char *path, char ***names, int *count, tl_err *e);

#endif
