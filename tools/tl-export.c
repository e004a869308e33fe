/* tl-export: a network, or a feature head with its backbone, as ONNX. */
#include "common.h"
#include "io/onnx.h"
#include "train/classifier.h"

#include <string.h>
#include <unistd.h>

static const char *human_bytes(int64_t n, char *buf, size_t size)
{
    if (n >= 1000 * 1000)
        snprintf(buf, size, "%.1f MB", (double)n / 1e6);
    else
        snprintf(buf, size, "%.1f kB", (double)n / 1e3);
    return buf;
}

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-export");
    const char *layer = NULL;
    int no_pool = 0, preprocess = 0, probabilities = 0;
    const cli_opt opts[] = {
        OPT_COMMON_HELP(CLI_O_MODEL, "the network or head to export (or the argument)"),
        OPT_COMMON_REQUIRED(CLI_O_OUTPUT, "the ONNX file to write ('-': standard output)"),
        OPT_STRING('l', "layer", &layer, "NAME",
                   "export up to this layer: its features are the output\n(default: the logits; tl-info lists names)"),
        OPT_FLAG(0, "no-pool", &no_pool, "with --layer: keep a spatial layer's full C*H*W map\ninstead of averaging it"),
        OPT_FLAG(0, "with-preprocessing", &preprocess,
                 "the graph takes uint8 RGB pixels [batch, H, W, 3] and\nnormalises them itself"),
        OPT_FLAG(0, "probabilities", &probabilities,
                 "output class probabilities (a softmax; per-class\nsigmoids for a multi-label head) instead of logits"),
        OPT_COMMON(CLI_O_QUIET),
        OPT_END(),
    };
    const cli_tool tool = {
        .usage = "[options] MODEL -o FILE.onnx",
        .about = "Write a network, or a feature head fused with its backbone, as one ONNX graph\n"
                 "(IR version 8, opset 17) for ONNX Runtime, OpenCV's dnn module and others.\n"
                 "\n"
                 "The batch dimension is symbolic. The model's classes, input size, mean and\n"
                 "std go into the file's metadata (metadata_props, keys tl.*).\n",
        .opts = opts,
        .example = "tl-export resnet18.safetensors -o resnet18.onnx\n"
                   "tl-export --with-preprocessing --probabilities head.safetensors -o head.onnx",
        .min_args = 0, .max_args = 1, .args_name = "model",
    };
    int first = cli_parse(&cli, &tool, argc, argv);
    const char *model = first < argc ? argv[first] : cli.model;
    if (first < argc && cli.model)
        cli_usage_error(&cli, "the model given twice (-m %s and %s)", cli.model, argv[first]);
    if (!model)
        cli_usage_error(&cli, "no model given");
    if (no_pool && !layer)
        cli_usage_error(&cli, "--no-pool applies to a --layer");
    if (!strcmp(cli.output, "-") && isatty(STDOUT_FILENO))
        cli_usage_error(&cli, "not writing a binary ONNX file to a terminal: give -o FILE");

    tl_err e = {0};
    tl_classifier c;
    /* A head brings its backbone; a network without classifier exports
     * its features. */
    char path[4096];
    tl_st_file f;
    int is_head = cli_open_model(&cli, model, path, sizeof path, &f);
    tl_st_close(&f);
    tl_onnx_opts o;
    tl_onnx_opts_default(&o);
    o.layer = layer;
    o.spatial_pool = !no_pool;
    o.preprocess = preprocess;
    o.probabilities = probabilities;
    o.producer_version = TL_VERSION;
    if (is_head) {
        if (layer)
            cli_usage_error(&cli, "--layer: a head is exported with the layer it was trained on");
        if (tl_classifier_load(&c, path, &e) || tl_classifier_load_backbone(&c, path, &e))
            cli_fail(&cli, &e);
        o.layer = c.head.feature_layer;
        o.head_w = c.head.lin.W;
        o.head_b = c.head.lin.b;
        o.head_k = c.head.lin.k;
        o.head_d = c.head.lin.d;
        o.head_classes = c.head.classes;
        const tl_model *m = c.net.model;
        int node = o.layer ? tl_model_find_node(m, o.layer) : m->features_node;
        /* Features extracted with --no-pool: the head takes the whole map. */
        if (node > 0 && tl_node_size(&m->nodes[node]) == o.head_d && m->nodes[node].c != o.head_d)
            o.spatial_pool = 0;
    } else {
        memset(&c, 0, sizeof c);
        if (tl_net_load(path, &c.net, &e))
            cli_fail(&cli, &e);
        c.has_net = 1;
        if (probabilities && c.net.model->logits_node < 0)
            cli_usage_error(&cli, "--probabilities: %s is a backbone without classifier", model);
    }
    const char *kind = NULL;
    tl_strbuf thresholds = {0};
    const char *meta[16];
    int nm = 0;
    meta[nm++] = "tl.exported_from";
    meta[nm++] = path;
    if (is_head) {
        int ml = c.head.lin.multilabel;
        kind = c.head.lin.kind == TL_HEAD_LOGREG ? (ml ? "logistic regression, one per class (multi-label)"
                                                       : "logistic regression")
                                                 : (ml ? "linear SVM, one per class (multi-label)" : "linear SVM");
        o.multilabel = ml;
        meta[nm++] = "tl.head_kind";
        meta[nm++] = kind;
        if (ml) {
            /* a class is predicted when its score reaches its threshold */
            if (tl_thresholds_json(c.head.thresholds, c.head.lin.k, &thresholds))
                cli_die(&cli, "out of memory");
            meta[nm++] = "tl.multilabel";
            meta[nm++] = "true";
            meta[nm++] = "tl.thresholds";
            meta[nm++] = thresholds.s;
        }
    }
    meta[nm] = NULL;
    o.meta = meta;
    static volatile sig_atomic_t stop;
    cli_catch_signals(&stop);
    o.stop = &stop;
    if (probabilities && is_head && c.head.lin.kind != TL_HEAD_LOGREG)
        cli_usage_error(&cli, "--probabilities: a linear SVM gives decision values, not probabilities");
    tl_onnx_info info;
    int rc = tl_onnx_export(&c.net, &o, cli.output, &info, &e);
    if (stop)
        cli_interrupted(&cli, stop, "no file written");
    if (rc) {
        tl_fail_prefix(&e, "%s", model);
        cli_fail(&cli, &e);
    }
    char size[32];
    const tl_model *m = c.net.model;
    cli_log(&cli, "wrote %s: %s%s%s, %d nodes, %d initializers, %s; input '%s' %s, output '%s' [batch, %d]",
            cli.output, m->arch, is_head ? " + " : "", is_head ? kind : "", info.nodes, info.initializers,
            human_bytes(info.bytes, size, sizeof size), info.input,
            preprocess ? "uint8 [batch, H, W, 3]" : "float [batch, 3, H, W]", info.output, info.dim);
    tl_strbuf_free(&thresholds);
    tl_classifier_free(&c);
    return 0;
}
