/* Reading an int8 checkpoint (man tl-formats(5), "int8 checkpoints"): the
 * integer weights dequantised into the model's float parameters, and the
 * quantisation itself attached to the model for the int8 engine. */
#ifndef TL_IO_QUANT_LOAD_H
#define TL_IO_QUANT_LOAD_H

#include "nn/quant.h"
#include "safetensors.h"

/* The tensors an int8 checkpoint adds next to a layer's weight. */
int tl_quant_is_extra_tensor(const char *name);
/* If t is a quantised weight (integer dtype with a NAME_scale beside it),
 * writes t * scale per output channel into dst and returns 1; 0 if t is
 * not one; -1 on a malformed file. */
int tl_quant_dequantize(const tl_st_file *f, const tl_st_tensor *t, float *dst, tl_err *e);
/* Builds m->quant from the file's quantised layers. */
int tl_quant_attach(tl_model *m, const tl_st_file *f, tl_err *e);

#endif
