/* tl-adapt-bn: re-estimate batch-norm statistics on target-domain images
 * (AdaBN), weights untouched. */
#include "common.h"
#include "train/adapt_bn.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void usage(void)
{
    printf("Usage: tl-adapt-bn -m MODEL [options] TARGET_IMAGES -o OUT.safetensors\n"
           "Adapt a network to a new image domain (AdaBN): replace every batch-norm\n"
           "layer's running mean and variance by statistics of the target images,\n"
           "leaving all weights untouched. No labels are needed.\n"
           "\n"
           "TARGET_IMAGES is a folder (of images or class folders), a TSV manifest or\n"
           "'-' for a list of paths on standard input; labels are ignored.\n"
           "\n"
           "  -m, --model MODEL     checkpoint file or name in $TL_MODEL_PATH\n"
           "  -o, --output FILE     adapted checkpoint to write (required)\n"
           "  -b, --batch N         images per forward pass (default 32); each batch\n"
           "                        counts equally, the smaller last one included\n"
           "  -j, --threads N       threads (default: all cores)\n"
           "      --skip-bad        warn about and skip unreadable images\n"
           "      --max-pixels N    refuse images larger than N pixels (default 100000000)\n"
           "      --progress        progress bar even when stderr is not a terminal\n"
           "  -q, --quiet           no log messages\n"
           "  -h, --help            this help;  --version  the version\n"
           "\n"
           "Example:\n"
           "  tl-adapt-bn -m mobilenet_v2.safetensors factory/unlabelled -o adapted.safetensors\n"
           "  tl-extract -m adapted.safetensors factory/train -o train.tlf\n");
    exit(0);
}

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-adapt-bn");
    const char *model = NULL, *out = NULL;
    int threads = tl_cpu_count(), force_progress = 0;
    tl_adapt_bn_opts ao;
    tl_adapt_bn_opts_default(&ao);
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"output", required_argument, 0, 'o'},
        {"batch", required_argument, 0, 'b'}, {"threads", required_argument, 0, 'j'},
        {"skip-bad", no_argument, 0, 'S'}, {"max-pixels", required_argument, 0, 'P'},
        {"progress", no_argument, 0, 'p'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, ":m:o:b:j:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case 'b': ao.batch = (int)cli_long(&cli, "--batch", optarg, 1, 4096); break;
        case 'j': threads = cli_threads(&cli, optarg); break;
        case 'S': ao.skip_bad = 1; break;
        case 'P': ao.max_pixels = cli_max_pixels(&cli, optarg); break;
        case 'p': force_progress = 1; break;
        case 'q': cli.quiet = 1; break;
        case 'h': usage();
        case 'V': cli_version(&cli);
        default: cli_bad_option(&cli, argv, ch);
        }
    }
    if (!model)
        cli_usage_error(&cli, "no model given (-m MODEL)");
    if (!out)
        cli_usage_error(&cli, "no output given (-o OUT.safetensors)");
    if (!strcmp(out, "-"))
        cli_usage_error(&cli, "the output must be a file, not standard output");
    if (optind != argc - 1)
        cli_usage_error(&cli, optind == argc ? "no target images given" : "one data argument expected");
    const char *data = argv[optind];

    tl_err e;
    tl_net net;
    if (tl_net_load(model, &net, &e))
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
    cli_log(&cli, "%lld target images, %d batch-norm layers, batch %d, %d threads", (long long)d.n,
            tl_adapt_bn_count(net.model), ao.batch, threads);
    if (ao.batch < 8)
        cli_log(&cli, "note: batch statistics from %d images are noisy", ao.batch);
    cli_progress_enable(&cli, force_progress);
    tl_adapt_bn_stats st;
    int rc = tl_adapt_bn_run(&net, pool, threads, &d, &ao, cli_progress, &cli, cli_log_hook, &cli, &st, &e);
    cli_progress_end(&cli);
    if (rc)
        cli_fail(&cli, &e);

    char count[32];
    snprintf(count, sizeof count, "%lld", (long long)st.used);
    const char *extra[] = {"tl.adapted_bn_on", data, "tl.adapted_bn_images", count, NULL};
    if (tl_net_save(&net, out, extra, &e))
        cli_fail(&cli, &e);
    if (st.skipped)
        cli_log(&cli, "skipped %lld unreadable image%s", (long long)st.skipped, st.skipped > 1 ? "s" : "");
    cli_log(&cli, "adapted %d batch-norm layers on %lld images (%lld batches) in %.1f s", st.bn_layers,
            (long long)st.used, (long long)st.batches, st.seconds);
    tl_pool_free(pool);
    tl_dataset_free(&d);
    tl_net_free(&net);
    return 0;
}
