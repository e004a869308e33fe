/* Post-training quantisation of a float network into an int8 checkpoint
 * (man tl-quantize(1), tl-formats(5)): batch norm folded into the
 * convolutions, weights symmetric per output channel, activation ranges
 * calibrated on images by the chosen method. */
#ifndef TL_IO_QUANTIZE_H
#define TL_IO_QUANTIZE_H

#include "checkpoint.h"

enum { TL_CALIB_MSE, TL_CALIB_MINMAX, TL_CALIB_PERCENTILE };

typedef struct tl_quantize_opts {
    const char *calibrate;        /* data set of calibration images */
    int max_images;               /* at most this many, evenly spaced (default 256) */
    int method;                   /* TL_CALIB_* (default MSE) */
    double percentile;            /* TL_CALIB_PERCENTILE: kept share, e.g. 99.99 */
    int weight_bits;              /* 8 (weights in -127..127) or 7 (-63..63) */
    const char *const *keep_float; /* layer names (prefixes) left in float */
    int nkeep;
    int quantize_ends;            /* also quantise the first convolution and the classifier */
    int batch;
    size_t max_pixels;
} tl_quantize_opts;

void tl_quantize_opts_default(tl_quantize_opts *o);

typedef struct tl_quantize_report {
    int quantized, kept_float;    /* layers */
    int images;                   /* calibration images used */
    double seconds;
} tl_quantize_report;

/* Quantises net (its parameters are changed: batch norm folded) and writes
 * the int8 checkpoint to out. */
int tl_quantize(tl_net *net, const tl_quantize_opts *o, tl_pool *pool, int nthreads, const char *out,
                tl_log_fn log, void *log_user, tl_quantize_report *rep, tl_err *e);

#endif
