/* tl-extract: images -> feature vectors from a pretrained network. */
#include "common.h"
#include "io/extract.h"
#include "io/features.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void usage(void)
{
    printf("Usage: tl-extract -m MODEL [options] DATA\n"
           "Run a pretrained network as a fixed feature extractor.\n"
           "\n"
           "DATA is a folder of class folders, a TSV manifest (path<TAB>label) or '-'\n"
           "for a list of paths on standard input.\n"
           "\n"
           "  -m, --model MODEL     checkpoint file or name in $TL_MODEL_PATH\n"
           "  -l, --layer NAME      layer to read (default: pooled penultimate features;\n"
           "                        'logits' for classifier outputs; tl-info lists names)\n"
           "      --no-pool         keep a spatial layer's full C*H*W map instead of\n"
           "                        averaging it over H and W\n"
           "  -o, --output FILE     write here (default '-' = standard output)\n"
           "  -f, --format FMT      tlf (default, streaming binary), tsv or npy\n"
           "  -b, --batch N         images per step (default 32)\n"
           "  -j, --threads N       threads (default: all cores)\n"
           "      --skip-bad        warn about and skip unreadable images\n"
           "      --max-pixels N    refuse images larger than N pixels (default 100000000)\n"
           "      --log FILE        append a JSON line (images, seconds, images/s) for tl-compare\n"
           "      --progress        progress bar even when stderr is not a terminal\n"
           "  -q, --quiet           no log messages\n"
           "  -h, --help            this help;  --version  the version\n"
           "\n"
           "Example:\n"
           "  tl-extract -m mobilenet_v2.safetensors data/hymenoptera/train -o train.tlf\n"
           "  tl-extract -m mobilenet_v2.safetensors val/ | tl-eval -m head.safetensors -\n");
    exit(0);
}

typedef struct {
    tl_featw *w;
    const tl_dataset *d;
} sink;

static int emit(void *user, int64_t index, const float *v, tl_err *e)
{
    sink *s = user;
    const tl_sample *smp = &s->d->items[index];
    return tl_featw_add(s->w, smp->path, smp->label, v, e);
}

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-extract");
    const char *model = NULL, *layer = NULL, *out = "-", *log_path = NULL;
    int format = TL_FEAT_TLF, threads = tl_cpu_count(), force_progress = 0;
    tl_extract_opts xo;
    tl_extract_opts_default(&xo);
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"layer", required_argument, 0, 'l'},
        {"output", required_argument, 0, 'o'}, {"format", required_argument, 0, 'f'},
        {"batch", required_argument, 0, 'b'}, {"threads", required_argument, 0, 'j'},
        {"skip-bad", no_argument, 0, 'S'}, {"max-pixels", required_argument, 0, 'P'},
        {"no-pool", no_argument, 0, 'N'}, {"progress", no_argument, 0, 'p'},
        {"log", required_argument, 0, 'L'},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, ":m:l:o:f:b:j:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'l': layer = optarg; break;
        case 'o': out = optarg; break;
        case 'f':
            if (tl_feat_format_parse(optarg, &format))
                cli_usage_error(&cli, "--format: '%s' is not tlf, tsv or npy", optarg);
            break;
        case 'b': xo.batch = (int)cli_long(&cli, "--batch", optarg, 1, 4096); break;
        case 'j': threads = cli_threads(&cli, optarg); break;
        case 'S': xo.skip_bad = 1; break;
        case 'P': xo.max_pixels = cli_max_pixels(&cli, optarg); break;
        case 'N': xo.spatial_pool = 0; break;
        case 'L': log_path = optarg; break;
        case 'p': force_progress = 1; break;
        case 'q': cli.quiet = 1; break;
        case 'h': usage();
        case 'V': cli_version(&cli);
        default: cli_bad_option(&cli, argv, ch);
        }
    }
    if (!model)
        cli_usage_error(&cli, "no model given (-m MODEL)");
    if (optind != argc - 1)
        cli_usage_error(&cli, optind == argc ? "no data given" : "one data argument expected");
    const char *data = argv[optind];
    if (!strcmp(out, "-") && format == TL_FEAT_NPY)
        cli_log(&cli, "note: NPY output is written when all images are done");

    /* Appended to, so the extraction of a training and a validation set
     * can share one log; opened first, so a bad path fails at once. */
    FILE *log = NULL;
    if (log_path && !(log = fopen(log_path, "a")))
        cli_die(&cli, "%s: cannot open the log: %s", log_path, strerror(errno));
    tl_err e;
    tl_net net;
    if (tl_net_load(model, &net, &e))
        cli_fail(&cli, &e);
    tl_dataset d;
    if (tl_dataset_open(data, &d, &e))
        cli_fail(&cli, &e);
    tl_pool *pool = tl_pool_new(threads, &e);
    if (!pool)
        cli_fail(&cli, &e);
    tl_extractor *x = tl_extractor_new(&net, layer, threads, &xo, &e);
    if (!x)
        cli_fail(&cli, &e);
    /* An absolute path lets a head trained on these features find its
     * backbone from anywhere later. */
    char *model_abs = realpath(net.path, NULL);
    tl_feat_info info = {
        .dim = tl_extractor_dim(x),
        .classes = d.classes,
        .nclasses = d.nclasses,
        .model = model_abs ? model_abs : net.path,
        .layer = (char *)tl_extractor_layer(x),
    };
    sink s = {NULL, &d};
    if (tl_featw_open(&s.w, out, format, &info, &e))
        cli_fail(&cli, &e);
    cli_log(&cli, "%lld images, %d classes, layer %s (%d values per image), %d threads",
            (long long)d.n, d.nclasses, info.layer, info.dim, threads);
    cli_progress_enable(&cli, force_progress);
    tl_extract_stats st;
    int rc = tl_extractor_run(x, pool, &d, emit, &s, cli_progress, &cli, cli_log_hook, &cli, &st, &e);
    cli_progress_end(&cli);
    if (rc) {
        tl_featw_abort(s.w);
        cli_fail(&cli, &e);
    }
    if (tl_featw_close(s.w, &e))
        cli_fail(&cli, &e);
    if (st.skipped)
        cli_log(&cli, "skipped %lld unreadable image%s", (long long)st.skipped, st.skipped > 1 ? "s" : "");
    cli_log(&cli, "%lld vectors in %.1f s (%.1f images/s)", (long long)st.done, st.seconds,
            st.seconds > 0 ? st.done / st.seconds : 0.0);
    if (log) {
        fprintf(log, "{\"phase\":\"extract\"");
        cli_json_str(log, "data", data);
        cli_json_str(log, "model", info.model);
        cli_json_str(log, "layer", info.layer);
        fprintf(log, ",\"images\":%lld,\"skipped\":%lld,\"threads\":%d", (long long)st.done,
                (long long)st.skipped, threads);
        cli_json_num(log, "seconds", st.seconds);
        cli_json_num(log, "images_per_s", st.seconds > 0 ? st.done / st.seconds : 0.0);
        fprintf(log, "}\n");
        if (fclose(log))
            cli_die(&cli, "%s: cannot write the log", log_path);
    }
    free(model_abs);
    tl_extractor_free(x);
    tl_pool_free(pool);
    tl_dataset_free(&d);
    tl_net_free(&net);
    return 0;
}
