/* tl-convert: bring pretrained weights from other formats into a tl
 * checkpoint (safetensors with torchvision names and tl.* metadata). */
#include "common.h"
#include "io/convert_st.h"
#include "io/tflite.h"
#include "json.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void usage(void)
{
    printf("Usage: tl-convert [options] MODEL.tflite -o OUT.safetensors\n"
           "       tl-convert --arch ARCH [options] STATE_DICT.safetensors -o OUT.safetensors\n"
           "Make a tl checkpoint: torchvision parameter names, float32, and the\n"
           "preprocessing the model expects in its metadata.\n"
           "\n"
           "TensorFlow Lite MobileNet V1/V2 files (uint8, int8 per-channel or float32) are\n"
           "dequantised; their folded batch norm is kept as a layer so the network can be\n"
           "fine-tuned. A safetensors state_dict (torchvision or timm names, F32/F16/BF16)\n"
           "is renamed and given metadata; say how its images must be prepared.\n"
           "\n"
           "  -o, --output FILE       the checkpoint to write (required)\n"
           "  -L, --labels FILE       class names, one per line\n"
           "  -a, --arch ARCH         architecture of a state_dict (tl-info --archs lists them)\n"
           "      --timm              the state_dict uses timm's names (default: detected)\n"
           "      --torchvision       the state_dict uses torchvision's names\n"
           "      --input-size N      square input of the network (default 224)\n"
           "      --resize-size N     shorter side before the centre crop (default 256/224 of it)\n"
           "      --mean R,G,B        normalisation on the 0..1 scale (default ImageNet's)\n"
           "      --std R,G,B\n"
           "      --interpolation M   bilinear (default), bicubic or nearest\n"
           "      --bgr               the network takes channels in BGR order\n"
           "      --bn-eps EPS        batch-norm epsilon, if not the architecture's default\n"
           "      --width W           width multiplier (MobileNets)\n"
           "  -n, --dry-run           parse and describe a TFLite model, write nothing\n"
           "  -q, --quiet             no log messages\n"
           "  -h, --help              this help;  --version  the version\n"
           "\n"
           "Examples:\n"
           "  tl-convert mobilenet_v2_1.0_224_quant.tflite --labels imagenet_labels.txt \\\n"
           "             -o mobilenet_v2.safetensors\n"
           "  tl-convert --arch resnet18 --timm model.safetensors --labels synset_words.txt \\\n"
           "             -o resnet18.safetensors\n");
    exit(0);
}

static void parse_triple(const tl_cli *cli, const char *opt, const char *arg, float *out)
{
    char buf[128];
    snprintf(buf, sizeof buf, "[%s]", arg);
    tl_err e;
    if (tl_json_parse_floats(buf, out, 3, &e))
        cli_usage_error(cli, "%s: '%s' is not three numbers R,G,B", opt, arg);
}

enum { KIND_UNKNOWN, KIND_TFLITE, KIND_SAFETENSORS };

/* By content; a file named .tflite is read as TFLite so that a damaged one
 * gets the parser's precise message. */
static int input_kind(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t head[9] = {0};
    if (!f)
        return KIND_UNKNOWN;
    size_t n = fread(head, 1, 9, f);
    fclose(f);
    size_t len = strlen(path);
    if ((n >= 8 && !memcmp(head + 4, "TFL3", 4)) || (len > 7 && !strcmp(path + len - 7, ".tflite")))
        return KIND_TFLITE;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | head[i];
    return n == 9 && head[8] == '{' && hlen > 1 ? KIND_SAFETENSORS : KIND_UNKNOWN;
}

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-convert");
    const char *out = NULL;
    int dry = 0, resize_given = 0;
    tl_convert_opts co;
    tl_convert_opts_default(&co);
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"labels", required_argument, 0, 'L'},
        {"arch", required_argument, 0, 'a'}, {"timm", no_argument, 0, 'T'},
        {"torchvision", no_argument, 0, 'U'}, {"input-size", required_argument, 0, 'S'},
        {"resize-size", required_argument, 0, 'R'}, {"mean", required_argument, 0, 'M'},
        {"std", required_argument, 0, 'D'}, {"interpolation", required_argument, 0, 'I'},
        {"bgr", no_argument, 0, 'B'}, {"bn-eps", required_argument, 0, 'E'},
        {"width", required_argument, 0, 'W'}, {"dry-run", no_argument, 0, 'n'},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'}, {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, ":o:L:a:nqh", opts, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 'L': co.labels = optarg; break;
        case 'a': co.arch = optarg; break;
        case 'T': co.naming = TL_NAMES_TIMM; break;
        case 'U': co.naming = TL_NAMES_TORCHVISION; break;
        case 'S': co.pp.input_size = (int)cli_long(&cli, "--input-size", optarg, 8, 4096); break;
        case 'R':
            co.pp.resize_size = (int)cli_long(&cli, "--resize-size", optarg, 8, 8192);
            resize_given = 1;
            break;
        case 'M': parse_triple(&cli, "--mean", optarg, co.pp.mean); break;
        case 'D':
            parse_triple(&cli, "--std", optarg, co.pp.std);
            for (int i = 0; i < 3; i++)
                if (!(co.pp.std[i] > 0))
                    cli_usage_error(&cli, "--std: values must be positive");
            break;
        case 'I':
            if (!strcmp(optarg, "bilinear"))
                co.pp.interp = TL_INTERP_BILINEAR;
            else if (!strcmp(optarg, "bicubic"))
                co.pp.interp = TL_INTERP_BICUBIC;
            else if (!strcmp(optarg, "nearest"))
                co.pp.interp = TL_INTERP_NEAREST;
            else
                cli_usage_error(&cli, "--interpolation: '%s' is not bilinear, bicubic or nearest", optarg);
            break;
        case 'B': co.pp.bgr = 1; break;
        case 'E': co.bn_eps = (float)cli_double(&cli, "--bn-eps", optarg, 1e-12, 1); break;
        case 'W': co.width_mult = (float)cli_double(&cli, "--width", optarg, 0.05, 4); break;
        case 'n': dry = 1; break;
        case 'q': cli.quiet = 1; break;
        case 'h': usage();
        case 'V': cli_version(&cli);
        default: cli_bad_option(&cli, argv, ch);
        }
    }
    if (optind != argc - 1)
        cli_usage_error(&cli, optind == argc ? "no model given" : "one model argument expected");
    if (!out && !dry)
        cli_usage_error(&cli, "no output given (-o OUT.safetensors)");
    if (!resize_given)
        co.pp.resize_size = (co.pp.input_size * 256 + 112) / 224;
    if (co.pp.resize_size < co.pp.input_size)
        cli_usage_error(&cli, "--resize-size %d is smaller than the input size %d", co.pp.resize_size,
                        co.pp.input_size);
    const char *in = argv[optind];
    tl_err e;
    int kind = input_kind(in);
    if (kind == KIND_UNKNOWN) {
        FILE *f = fopen(in, "rb");
        if (!f)
            cli_die(&cli, "%s: %s", in, strerror(errno));
        fclose(f);
        cli_die(&cli, "%s: neither a TFLite model nor a safetensors state_dict", in);
    }
    if (kind == KIND_SAFETENSORS) {
        if (!co.arch)
            cli_usage_error(&cli, "%s: a state_dict does not say its architecture: give --arch", in);
        if (dry)
            cli_usage_error(&cli, "--dry-run is for TFLite files");
        if (tl_convert_state_dict(in, &co, out, cli_log_hook, &cli, &e))
            cli_fail(&cli, &e);
        cli_log(&cli, "wrote %s", out);
        return 0;
    }
    if (co.arch)
        cli_log(&cli, "%s: a TFLite file; its graph decides the architecture, --arch ignored", in);
    tl_tflite *m;
    if (tl_tflite_open(in, &m, &e)) {
        if (strncmp(e.msg, in, strlen(in)))
            tl_fail_prefix(&e, "%s", in);
        cli_fail(&cli, &e);
    }
    char desc[1024];
    tl_tflite_describe(m, desc, sizeof desc);
    cli_log(&cli, "%s: %s", in, desc);
    if (!dry && tl_tflite_convert(m, co.labels, out, cli_log_hook, &cli, &e)) {
        if (!strncmp(e.msg, "tflite:", 7)) /* about the graph: name the file it came from */
            tl_fail_prefix(&e, "%s", in);
        tl_tflite_free(m);
        cli_fail(&cli, &e);
    }
    tl_tflite_free(m);
    if (!dry)
        cli_log(&cli, "wrote %s", out);
    return 0;
}
