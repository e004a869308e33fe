/* Filling a built model's parameters from a safetensors file. */
#ifndef TL_IO_LOAD_PARAMS_H
#define TL_IO_LOAD_PARAMS_H

#include "nn/model.h"
#include "safetensors.h"

/* Maps a parameter's torchvision name to the name in the file; returns
 * the name to look up (buf or the argument itself). */
typedef const char *(*tl_name_fn)(void *user, const char *param_name, char *buf, size_t n);

/* Copies every parameter of m from f (F32, F16, BF16 or F64 tensors).
 * name_of may be NULL (same names). Shapes must match, or hold the same
 * number of elements with the same first dimension (a classifier stored as
 * a 1x1 convolution, or a linear layer as a k x k one). A missing,
 * mis-shaped or unexpected tensor is an error that names it; a step
 * counter (num_batches_tracked) is not a parameter and is ignored. */
int tl_load_params(tl_model *m, const tl_st_file *f, tl_name_fn name_of, void *user, tl_err *e);

#endif
