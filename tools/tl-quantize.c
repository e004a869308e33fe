/* tl-quantize: a float network -> an int8 checkpoint, calibrated on images. */
#include "common.h"
#include "io/quantize.h"

#include <stdio.h>
#include <string.h>

#define MAX_KEEP 64

typedef struct {
    const char *names[MAX_KEEP];
    int n;
} keep_list;

static int add_keep(const char *arg, void *target, char *why, size_t why_size)
{
    keep_list *k = target;
    if (k->n == MAX_KEEP) {
        snprintf(why, why_size, "at most %d layers", MAX_KEEP);
        return -1;
    }
    if (!*arg) {
        snprintf(why, why_size, "an empty layer name");
        return -1;
    }
    k->names[k->n++] = arg;
    return 0;
}

/* A TFLite flatbuffer ("TFL3" at byte 4): already quantised, with scales of
 * its own that tl-convert --keep-int8 keeps; calibrating again would lose them. */
static int is_tflite(const char *path)
{
    size_t n = strlen(path);
    if (n > 7 && !strcmp(path + n - 7, ".tflite"))
        return 1;
    char head[8];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    int yes = fread(head, 1, 8, f) == 8 && !memcmp(head + 4, "TFL3", 4);
    fclose(f);
    return yes;
}

static const cli_choice methods[] = {{"mse", TL_CALIB_MSE}, {"minmax", TL_CALIB_MINMAX},
                                     {"percentile", TL_CALIB_PERCENTILE}, {NULL, 0}};

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-quantize");
    tl_quantize_opts qo;
    tl_quantize_opts_default(&qo);
    keep_list keep = {{0}, 0};
    cli.batch = qo.batch;
    const cli_opt opts[] = {
        OPT_COMMON_REQUIRED(CLI_O_MODEL, "the float network to quantise"),
        OPT_COMMON_REQUIRED(CLI_O_OUTPUT, "the int8 checkpoint to write"),
        OPT_GROUP("Calibration"),
        OPT_STRING(0, "calibrate", &qo.calibrate, "DATA",
                   "images to calibrate activation ranges on: a folder\n(of images or class folders) or a manifest"),
        OPT_INT(0, "calibrate-images", &qo.max_images, 1, 1000000, "N",
                "use at most N of them, evenly spaced (default 256)"),
        OPT_ENUM(0, "method", &qo.method, methods, "range of each activation: mse (default), minmax,\npercentile"),
        OPT_DOUBLE(0, "percentile", &qo.percentile, 50, 100, "P", "--method percentile: share kept (default 99.99)"),
        OPT_GROUP("Layers"),
        OPT_CALLBACK(0, "keep-float", &keep, add_keep, "LAYER",
                     "leave this layer (a name tl-info lists, or a prefix\nof one) in float; repeatable"),
        OPT_FLAG(0, "quantize-ends", &qo.quantize_ends,
                 "also quantise the first convolution and the classifier\n(kept in float by default)"),
        OPT_INT(0, "weight-bits", &qo.weight_bits, 7, 8, "B", "weights in -127..127 (8, default) or -63..63 (7)"),
        OPT_COMMON_HELP(CLI_O_BATCH, "calibration images per step (default 8)"),
        OPT_COMMON(CLI_O_THREADS),
        OPT_COMMON(CLI_O_MAX_PIXELS),
        OPT_COMMON(CLI_O_QUIET),
        OPT_END(),
    };
    const cli_tool tool = {
        .usage = "-m MODEL --calibrate DATA -o OUT.safetensors [options]",
        .about = "Quantise a network to int8 for fast inference: batch norm folded into the\n"
                 "convolutions, weights symmetric per output channel, activation ranges\n"
                 "calibrated on the images in DATA. Every tool loads the result with -m.\n"
                 "A quantised TFLite model needs no calibration: tl-convert --keep-int8\n"
                 "makes its int8 checkpoint with the file's own scales.\n",
        .opts = opts,
        .example = "tl-quantize -m resnet18 --calibrate data/train -o resnet18_int8.safetensors\n"
                   "tl-extract -m resnet18_int8.safetensors data/train -o train.tlf",
        .min_args = 0, .max_args = 0, .args_name = "argument",
    };
    cli_parse(&cli, &tool, argc, argv);
    if (is_tflite(cli.model))
        cli_usage_error(&cli, "%s: a TFLite file: tl-convert --keep-int8 makes an int8 checkpoint with its own "
                              "scales (or tl-convert it to float, then quantise that)", cli.model);
    if (!qo.calibrate)
        cli_usage_error(&cli, "no --calibrate images given");
    if (cli_given(&cli, "percentile") && qo.method != TL_CALIB_PERCENTILE)
        cli_usage_error(&cli, "--percentile needs --method percentile");
    qo.keep_float = keep.names;
    qo.nkeep = keep.n;
    qo.batch = cli.batch;
    qo.max_pixels = cli.max_pixels;
    tl_err e = {0};
    tl_net net;
    if (tl_net_load(cli.model, &net, &e))
        cli_fail(&cli, &e);
    tl_pool *pool = tl_pool_new(cli.threads, &e);
    if (!pool)
        cli_fail(&cli, &e);
    tl_quantize_report rep;
    if (tl_quantize(&net, &qo, pool, tl_pool_size(pool), cli.output, cli_log_hook, &cli, &rep, &e))
        cli_fail(&cli, &e);
    cli_log(&cli, "%d layers in int8, %d in float; calibrated on %d images in %.1f s; wrote %s", rep.quantized,
            rep.kept_float, rep.images, rep.seconds, cli.output);
    tl_pool_free(pool);
    tl_net_free(&net);
    return 0;
}
