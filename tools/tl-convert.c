/* tl-convert: bring pretrained weights from other formats into a tl
 * checkpoint (safetensors with torchvision names and tl.* metadata). */
#include "common.h"
#include "io/convert_st.h"
#include "io/tflite.h"
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

static const cli_choice resize_modes[] = {
    {"crop", TL_RESIZE_CROP}, {"squash", TL_RESIZE_SQUASH}, {"pad", TL_RESIZE_PAD}, {NULL, 0}};
static const cli_choice interps[] = {
    {"bilinear", TL_INTERP_BILINEAR}, {"bicubic", TL_INTERP_BICUBIC}, {"nearest", TL_INTERP_NEAREST}, {NULL, 0}};

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-convert");
    int dry = 0, timm = 0, torchvision = 0, keep_int8 = 0;
    double bn_eps = 0, width = 1;
    cli_nums mean = {0}, std = {0};
    tl_convert_opts co;
    tl_convert_opts_default(&co);
    int input_size[2] = {224, 224};
    const cli_opt opts[] = {
        OPT_COMMON_HELP(CLI_O_OUTPUT, "the checkpoint to write (required)"),
        OPT_FILE('L', "labels", &co.labels, "FILE", "class names, one per line"),
        OPT_STRING(0, "arch", &co.arch, "ARCH", "architecture of a state_dict (tl-info --archs)"),
        OPT_FLAG(0, "timm", &timm, "the state_dict uses timm's names (default: detected)"),
        OPT_FLAG(0, "torchvision", &torchvision, "the state_dict uses torchvision's names"),
        OPT_WXH(0, "input-size", input_size, 8, 4096, "WxH", "input of the network, N or WxH (default 224)"),
        OPT_INT(0, "resize-size", &co.pp.resize_size, 8, 8192, "N",
                "shorter side before the centre crop (default:\n256/224 of the input size)"),
        OPT_NUMS(0, "mean", &mean, 3, 3, -1e6, 1e6, "R,G,B", "normalisation on the 0..1 scale (default ImageNet's)"),
        OPT_NUMS(0, "std", &std, 3, 3, 1e-12, 1e6, "R,G,B", "standard deviations, positive (default ImageNet's)"),
        OPT_ENUM(0, "resize-mode", &co.pp.resize_mode, resize_modes,
                 "how images become the input (default: squash when\n--resize-size equals the input's side, else crop)"),
        OPT_ENUM(0, "interpolation", &co.pp.interp, interps, "resampling of the resize (default bilinear)"),
        OPT_FLAG(0, "bgr", &co.pp.bgr, "the network takes channels in BGR order"),
        OPT_DOUBLE(0, "bn-eps", &bn_eps, 1e-12, 1, "EPS", "batch-norm epsilon, if not the architecture's default"),
        OPT_DOUBLE(0, "width", &width, 0.05, 4, "W", "width multiplier (MobileNets)"),
        OPT_FLAG(0, "keep-int8", &keep_int8, "keep a quantised TFLite model in integers: an int8\n"
                                             "checkpoint the int8 engine runs exactly as TFLite"),
        OPT_FLAG(0, "dry-run", &dry, "parse and describe a TFLite model, write nothing"),
        OPT_COMMON(CLI_O_QUIET),
        OPT_END(),
    };
    const cli_tool tool = {
        .usage = "[options] MODEL.tflite -o OUT.safetensors\n"
                 "--arch ARCH [options] STATE_DICT -o OUT.safetensors",
        .about = "Make a tl checkpoint: torchvision parameter names, float32, and the\n"
                 "preprocessing the model expects in its metadata.\n"
                 "\n"
                 "TensorFlow Lite MobileNet V1/V2 files (uint8, int8 per-channel or float32) are\n"
                 "dequantised; their folded batch norm is kept as a layer so the network can be\n"
                 "fine-tuned. With --keep-int8 a quantised file keeps its integers and scales\n"
                 "instead: an int8 checkpoint (see tl-quantize) that computes what TFLite does.\n"
                 "A safetensors state_dict (torchvision or timm names, F32/F16/BF16) is renamed\n"
                 "and given metadata; say how its images must be prepared.\n",
        .opts = opts,
        .example = "tl-convert mobilenet_v2_1.0_224_quant.tflite --labels imagenet_labels.txt \\\n"
                   "           -o mobilenet_v2.safetensors\n"
                   "tl-convert --keep-int8 mobilenet_v2_1.0_224_quant.tflite \\\n"
                   "           --labels imagenet_labels.txt -o mobilenet_v2_int8.safetensors\n"
                   "tl-convert --arch resnet18 --timm model.safetensors --labels synset.txt \\\n"
                   "           -o resnet18.safetensors",
        .min_args = 1, .max_args = 1, .args_name = "model",
    };
    int first = cli_parse(&cli, &tool, argc, argv);
    const char *out = cli.output;
    if (!out && !dry)
        cli_usage_error(&cli, "no output given (-o OUT.safetensors)");
    if (timm && torchvision)
        cli_usage_error(&cli, "give --timm or --torchvision, not both");
    if (timm)
        co.naming = TL_NAMES_TIMM;
    if (torchvision)
        co.naming = TL_NAMES_TORCHVISION;
    for (int i = 0; i < 3; i++) {
        if (mean.n)
            co.pp.mean[i] = (float)mean.v[i];
        if (std.n)
            co.pp.std[i] = (float)std.v[i];
    }
    if (cli_given(&cli, "bn-eps"))
        co.bn_eps = (float)bn_eps;
    if (cli_given(&cli, "width"))
        co.width_mult = (float)width;
    co.pp.input_w = input_size[0];
    co.pp.input_h = input_size[1];
    int side = input_size[0] < input_size[1] ? input_size[0] : input_size[1];
    if (!cli_given(&cli, "resize-size"))
        co.pp.resize_size = (side * 256 + 112) / 224;
    if (co.pp.resize_size < side)
        cli_usage_error(&cli, "--resize-size %d is smaller than the input's side %d", co.pp.resize_size, side);
    /* a resize size equal to the input: straight to it (no crop) */
    if (!cli_given(&cli, "resize-mode"))
        co.pp.resize_mode = co.pp.resize_size == side ? TL_RESIZE_SQUASH : TL_RESIZE_CROP;
    const char *in = argv[first];
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
        if (keep_int8)
            cli_usage_error(&cli, "--keep-int8 is for quantised TFLite files (tl-quantize makes an int8 "
                                  "checkpoint of a float model)");
        cli_hold_signals(); /* no temporary file left by an interrupt */
        if (tl_convert_state_dict(in, &co, out, cli_log_hook, &cli, &e))
            cli_fail(&cli, &e);
        cli_release_signals();
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
    cli_hold_signals();
    int (*conv)(const tl_tflite *, const char *, const char *, tl_log_fn, void *, tl_err *) =
        keep_int8 ? tl_tflite_convert_int8 : tl_tflite_convert;
    if (!dry && conv(m, co.labels, out, cli_log_hook, &cli, &e)) {
        if (!strncmp(e.msg, "tflite:", 7)) /* about the graph: name the file it came from */
            tl_fail_prefix(&e, "%s", in);
        tl_tflite_free(m);
        cli_fail(&cli, &e);
    }
    cli_release_signals();
    tl_tflite_free(m);
    if (!dry)
        cli_log(&cli, "wrote %s", out);
    return 0;
}
