/* tl-adapt-bn: re-estimate batch-norm statistics on target-domain images
 * (AdaBN), weights untouched. */
#include "common.h"
#include "train/adapt_bn.h"

#include <stdlib.h>
#include <string.h>

static const cli_choice resize_modes[] = {
    {"crop", TL_RESIZE_CROP}, {"squash", TL_RESIZE_SQUASH}, {"pad", TL_RESIZE_PAD}, {NULL, 0}};

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-adapt-bn");
    tl_adapt_bn_opts ao;
    tl_adapt_bn_opts_default(&ao);
    int input_size[2] = {0, 0}, resize_mode = -1;
    const cli_opt opts[] = {
        OPT_COMMON_REQUIRED(CLI_O_MODEL, NULL),
        OPT_COMMON_REQUIRED(CLI_O_OUTPUT, "adapted checkpoint to write (required)"),
        OPT_WXH(0, "input-size", input_size, 8, 4096, "WxH",
                "adapt for this input, N or WxH (default: the model's);\nthe checkpoint records it"),
        OPT_ENUM(0, "resize-mode", &resize_mode, resize_modes, "how images become the input (default: the model's)"),
        {.type = CLI_COMMON, .common = CLI_O_BATCH, .target = &ao.batch,
         .help = "images per forward pass (default 32); each batch\ncounts equally, the smaller last one included"},
        OPT_COMMON(CLI_O_THREADS),
        {.type = CLI_COMMON, .common = CLI_O_SKIP_BAD, .target = &ao.skip_bad},
        {.type = CLI_COMMON, .common = CLI_O_MAX_PIXELS, .target = &ao.max_pixels},
        OPT_COMMON(CLI_O_EXACT),
        OPT_COMMON(CLI_O_PROGRESS),
        OPT_COMMON(CLI_O_QUIET),
        OPT_END(),
    };
    const cli_tool tool = {
        .usage = "-m MODEL [options] TARGET_IMAGES -o OUT.safetensors",
        .about = "Adapt a network to a new image domain (AdaBN): replace every batch-norm\n"
                 "layer's running mean and variance by statistics of the target images,\n"
                 "leaving all weights untouched. No labels are needed.\n"
                 "\n"
                 "TARGET_IMAGES is a folder (of images or class folders), a TSV manifest or\n"
                 "'-' for a list of paths on standard input; labels are ignored.\n",
        .opts = opts,
        .example = "tl-adapt-bn -m mobilenet_v2 factory/unlabelled -o adapted.safetensors\n"
                   "tl-extract -m adapted.safetensors factory/train -o train.tlf",
        .min_args = 1, .max_args = 1, .args_name = "target images",
    };
    int first = cli_parse(&cli, &tool, argc, argv);
    const char *model = cli.model, *out = cli.output;
    int threads = cli.threads;
    ao.exact = cli.exact;
    if (!strcmp(out, "-"))
        cli_usage_error(&cli, "the output must be a file, not standard output");
    const char *data = argv[first];

    tl_err e;
    tl_net net;
    if (tl_net_load_at(model, input_size[0], input_size[1], resize_mode, &net, &e))
        cli_fail(&cli, &e);
    if (net.model->quant)
        cli_die(&cli, "%s: an int8 checkpoint: its batch norm is folded into integer weights; adapt the float "
                      "model, then quantise it again", model);
    if (tl_model_bn_folded(net.model))
        cli_die(&cli, "%s: its batch norm is folded into the convolutions (a TFLite import); re-estimating the "
                      "statistics would discard the folded scales, so there is nothing to adapt", model);
    tl_dataset d;
    if (tl_dataset_open(data, &d, &e))
        cli_fail(&cli, &e);
    tl_pool *pool = tl_pool_new(threads, &e);
    if (!pool)
        cli_fail(&cli, &e);
    cli_log(&cli, "%lld target %s, %d batch-norm layers, batch %d, %d threads", (long long)d.n,
            cli_plural(d.n, "image", "images"),
            tl_adapt_bn_count(net.model), ao.batch, threads);
    if (ao.batch < 8)
        cli_log(&cli, "note: batch statistics from %d images are noisy", ao.batch);
    cli_progress_enable(&cli, cli.force_progress);
    tl_adapt_bn_stats st;
    int rc = tl_adapt_bn_run(&net, pool, threads, &d, &ao, cli_progress, &cli, cli_log_hook, &cli, &st, &e);
    cli_progress_end(&cli);
    if (rc)
        cli_fail(&cli, &e);

    char count[32];
    snprintf(count, sizeof count, "%lld", (long long)st.used);
    const char *extra[] = {"tl.adapted_bn_on", data, "tl.adapted_bn_images", count, NULL};
    cli_hold_signals(); /* no temporary file left by an interrupt */
    if (tl_net_save(&net, out, extra, &e))
        cli_fail(&cli, &e);
    cli_release_signals();
    if (st.skipped)
        cli_log(&cli, "skipped %lld unreadable %s", (long long)st.skipped, cli_plural(st.skipped, "image", "images"));
    cli_log(&cli, "adapted %d batch-norm layers on %lld %s (%lld %s) in %.1f s", st.bn_layers, (long long)st.used,
            cli_plural(st.used, "image", "images"), (long long)st.batches, cli_plural(st.batches, "batch", "batches"),
            st.seconds);
    tl_pool_free(pool);
    tl_dataset_free(&d);
    tl_net_free(&net);
    return 0;
}
