/* tl-convert: bring pretrained weights from other formats into a tl
 * checkpoint (safetensors with torchvision names and tl.* metadata). */
#include "common.h"
#include "io/tflite.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void usage(void)
{
    printf("Usage: tl-convert [options] MODEL.tflite -o OUT.safetensors\n"
           "Convert a TensorFlow Lite MobileNet (V1 or V2; uint8, int8 or float32) into a\n"
           "tl checkpoint: weights dequantised to float32, torchvision parameter names,\n"
           "batch norm kept as a (folded) layer so the network can be fine-tuned, and the\n"
           "preprocessing the model expects recorded in the metadata.\n"
           "\n"
           "  -o, --output FILE    the checkpoint to write (required)\n"
           "  -L, --labels FILE    class names, one per line (e.g. imagenet_labels.txt)\n"
           "  -n, --dry-run        parse and describe the model, write nothing\n"
           "  -q, --quiet          no log messages\n"
           "  -h, --help           this help;  --version  the version\n"
           "\n"
           "Example:\n"
           "  tl-convert mobilenet_v2_1.0_224_quant.tflite --labels imagenet_labels.txt \\\n"
           "             -o mobilenet_v2.safetensors\n");
    exit(0);
}

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-convert");
    const char *out = NULL, *labels = NULL;
    int dry = 0;
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"labels", required_argument, 0, 'L'},
        {"dry-run", no_argument, 0, 'n'},      {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},         {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "o:L:nqh", opts, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 'L': labels = optarg; break;
        case 'n': dry = 1; break;
        case 'q': cli.quiet = 1; break;
        case 'h': usage();
        case 'V': cli_version(&cli);
        default: cli_usage_error(&cli, "unknown option");
        }
    }
    if (optind != argc - 1)
        cli_usage_error(&cli, optind == argc ? "no model given" : "one model argument expected");
    if (!out && !dry)
        cli_usage_error(&cli, "no output given (-o OUT.safetensors)");
    const char *in = argv[optind];
    size_t len = strlen(in);
    if (len < 7 || strcmp(in + len - 7, ".tflite"))
        cli_log(&cli, "%s: no .tflite extension; reading it as TFLite anyway", in);
    tl_err e;
    tl_tflite *m;
    if (tl_tflite_open(in, &m, &e))
        cli_fail(&cli, &e);
    char desc[1024];
    tl_tflite_describe(m, desc, sizeof desc);
    cli_log(&cli, "%s: %s", in, desc);
    if (!dry && tl_tflite_convert(m, labels, out, cli_log_hook, &cli, &e)) {
        tl_tflite_free(m);
        cli_fail(&cli, &e);
    }
    tl_tflite_free(m);
    if (!dry)
        cli_log(&cli, "wrote %s", out);
    return 0;
}
