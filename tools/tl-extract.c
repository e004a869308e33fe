/* tl-extract: images -> feature vectors from a pretrained network. */
#include "common.h"
#include "io/extract.h"
#include "io/features.h"
#include "io/shard.h"
#include "io/tsv.h"
#include "report/runlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;

typedef struct {
    tl_featw *w;
    const tl_dataset *d;
} sink;

static int emit(void *user, int64_t index, const float *v, tl_err *e)
{
    sink *s = user;
    /* SIGINT or SIGTERM: stop here; the caller removes the temporary file */
    if (g_stop)
        return tl_fail(e, "interrupted");
    const tl_sample *smp = &s->d->items[index];
    if (s->d->multilabel)
        return tl_featw_add_labels(s->w, smp->path, smp->labels, smp->label, v, e);
    return tl_featw_add(s->w, smp->path, smp->label, v, e);
}

/* What a shard's key is relative to (io/shard.h): the class-folder root,
 * or the folder a manifest's relative paths are resolved against. */
static char *key_prefix(const char *data)
{
    struct stat st;
    if (!strcmp(data, "-"))
        return NULL;
    char *p = tl_strdup(data);
    if (p && stat(data, &st) == 0 && !S_ISDIR(st.st_mode)) {
        char *slash = strrchr(p, '/');
        if (slash)
            slash[slash == p] = '\0';
        else
            p[0] = '\0';
    }
    return p;
}

static int skip_done(void *user, const char *path) { return tl_feat_done_has(user, path); }

/* The first keep bytes of a finished OUT, to continue as OUT.partial. */
static int copy_prefix(const char *from, const char *to, uint64_t keep, tl_err *e)
{
    FILE *in = fopen(from, "rb"), *o = in ? fopen(to, "wb") : NULL;
    char buf[1 << 16];
    int rc = in && o ? 0 : tl_fail(e, "%s: cannot copy to %s: %s", from, to, strerror(errno));
    while (!rc && keep) {
        size_t want = keep < sizeof buf ? (size_t)keep : sizeof buf, got = fread(buf, 1, want, in);
        if (got != want || fwrite(buf, 1, got, o) != got)
            rc = tl_fail(e, "%s: cannot copy to %s", from, to);
        keep -= got;
    }
    if (in)
        fclose(in);
    if (o && fclose(o) && !rc)
        rc = tl_fail(e, "%s: cannot write: %s", to, strerror(errno));
    return rc;
}

/* --resume / --update: what to continue. An OUT.partial is always
 * continued (an interrupted run, or an interrupted update); otherwise a
 * finished OUT ends a --resume (nothing to do) and is the start of an
 * --update. The earlier run must have been this one (model, layer,
 * input, classes, shard, --exact, --fast-decode). */
static int continue_from(const tl_cli *cli, const char *out, const char *partial, int update,
                          const tl_feat_info *info, tl_feat_done *done)
{
    tl_err e;
    struct stat st;
    const char *from = stat(partial, &st) == 0 ? partial : stat(out, &st) == 0 ? out : NULL;
    if (!from)
        return 0;
    if (tl_feat_done_scan(from, done, &e))
        cli_fail(cli, &e);
    char what[320];
    if (done->header && tl_feat_info_differs(&done->info, info, TL_FEAT_CMP_SHARD, "this run's", what, sizeof what))
        cli_die(cli, "%s: made by another extraction (%s): remove it or write elsewhere", from, what);
    if (from == partial) {
        done->complete = 0;
        return 0;
    }
    if (!done->complete)
        cli_die(cli, "%s: %s, not a finished extraction to continue", out,
                done->header ? "cut short" : "no feature header");
    if (!update) {
        cli_log(cli, "%s is complete (%lld %s): nothing to resume", out, (long long)done->n,
                cli_plural(done->n, "record", "records"));
        return 1;
    }
    return 0;
}

static const cli_choice resize_modes[] = {
    {"crop", TL_RESIZE_CROP}, {"squash", TL_RESIZE_SQUASH}, {"pad", TL_RESIZE_PAD}, {NULL, 0}};
static const cli_choice formats[] = {
    {"tlf", TL_FEAT_TLF}, {"tsv", TL_FEAT_TSV}, {"npy", TL_FEAT_NPY}, {"npz", TL_FEAT_NPZ}, {NULL, 0}};

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-extract");
    const char *layer = NULL, *shard_arg = NULL;
    int resume = 0, update = 0, merge = 0;
    int format = TL_FEAT_TLF, no_pool = 0, multilabel = 0, fast_decode = 0, resize_mode = -1;
    int input_size[2] = {0, 0};
    cli.output = "-";
    const cli_opt opts[] = {
        OPT_COMMON_HELP(CLI_O_MODEL, NULL),
        OPT_STRING('l', "layer", &layer, "NAME",
                   "layer to read (default: pooled penultimate features;\n'logits' for classifier outputs; tl-info lists names)"),
        OPT_FLAG(0, "no-pool", &no_pool, "keep a spatial layer's full C*H*W map instead of\naveraging it over H and W"),
        OPT_WXH(0, "input-size", input_size, 8, 4096, "WxH",
                "run the network at this input, N or WxH (default:\nthe model's; see tl(7), aspect ratio)"),
        OPT_ENUM(0, "resize-mode", &resize_mode, resize_modes,
                 "how images become the input (default: the model's)"),
        OPT_COMMON_HELP(CLI_O_OUTPUT, "write here (default '-' = standard output)"),
        OPT_ENUM('f', "format", &format, formats, "output format (default tlf, a streaming binary)"),
        OPT_STRING(0, "shard", &shard_arg, "K/N",
                   "extract shard K of N: the images whose path hashes to K\n(see the man page); cat joins the shards"),
        OPT_FLAG(0, "resume", &resume,
                 "continue an interrupted run to -o OUT (TLF) from its\nOUT.partial; nothing to do when OUT is complete"),
        OPT_FLAG(0, "update", &update,
                 "extract only images not yet in OUT (TLF), appended"),
        OPT_FLAG(0, "merge", &merge,
                 "join the feature files given (shards of one extraction,\nin any order) into -o OUT in -f FORMAT"),
        OPT_FLAG(0, "multi-label", &multilabel, "several labels per image: a manifest path<TAB>a,b,c"),
        OPT_COMMON(CLI_O_BATCH),
        OPT_COMMON(CLI_O_THREADS),
        OPT_COMMON(CLI_O_SKIP_BAD),
        OPT_COMMON(CLI_O_MAX_PIXELS),
        OPT_COMMON(CLI_O_EXACT),
        OPT_FLAG(0, "fast-decode", &fast_decode,
                 "decode large JPEGs at 1/2, 1/4 or 1/8 size in the DCT\n(libjpeg scaling, as PIL's draft()); see the man page"),
        OPT_COMMON_HELP(CLI_O_LOG, "append a JSON line about the run, for tl-compare"),
        OPT_COMMON(CLI_O_PROGRESS),
        OPT_COMMON(CLI_O_QUIET),
        OPT_END(),
    };
    const cli_tool tool = {
        .usage = "-m MODEL [options] DATA\n--merge [-f FORMAT] -o OUT FILE...",
        .about = "Run a pretrained network as a fixed feature extractor.\n"
                 "\n"
                 "DATA is a folder of class folders, a TSV manifest (path<TAB>label) or '-'\n"
                 "for a list of paths on standard input. With --multi-label, a manifest line\n"
                 "gives each image several labels (path<TAB>sky,sea) and so do the vectors.\n"
                 "\n"
                 "With --merge, the arguments are feature files of one extraction (the shards\n"
                 "of --shard K/N, every one once): they are checked and joined in path order.\n",
        .opts = opts,
        .example = "tl-extract -m mobilenet_v2.safetensors data/hymenoptera/train -o train.tlf\n"
                   "tl-extract -m mobilenet_v2.safetensors val/ | tl-eval -m head.safetensors -\n"
                   "tl-extract -m resnet50 --shard 2/8 --resume photos/ -o shards/2.tlf\n"
                   "tl-extract --merge -f npz -o photos.npz shards/*.tlf",
        .min_args = 0, .max_args = -1, .args_name = "data",
    };
    int first = cli_parse(&cli, &tool, argc, argv);
    if (merge) {
        if (argc == first)
            cli_usage_error(&cli, "--merge: no feature files given");
        if (cli_given(&cli, "model") || shard_arg || resume || update)
            cli_usage_error(&cli, "--merge: joins feature files (-m, --shard, --resume, --update do not apply)");
        if (!strcmp(cli.output, "-") && (format == TL_FEAT_NPY || format == TL_FEAT_NPZ))
            cli_log(&cli, "note: %s output is written when all records are read", format == TL_FEAT_NPY ? "NPY" : "NPZ");
        tl_err me;
        int64_t n;
        if (tl_feat_merge((const char *const *)argv + first, argc - first, cli.output, format, &n, &me))
            cli_fail(&cli, &me);
        cli_log(&cli, "%lld %s from %d %s", (long long)n, cli_plural(n, "record", "records"), argc - first,
                cli_plural(argc - first, "file", "files"));
        return 0;
    }
    if (!cli.model)
        cli_usage_error(&cli, "no model given (-m MODEL)");
    if (argc - first != 1)
        cli_usage_error(&cli, argc == first ? "no data given" : "one data argument expected, %d given", argc - first);
    cli_catch_signals(&g_stop); /* from here, an interrupt stops at the next safe point */
    const char *data = argv[first], *out = cli.output, *model = cli.model, *log_path = cli.log;
    int threads = cli.threads, shard = 0, nshards = 0;
    if (shard_arg && tl_shard_parse(shard_arg, &shard, &nshards))
        cli_usage_error(&cli, "--shard: '%s' is not K/N with 1 <= K <= N <= %d", shard_arg, TL_SHARD_MAX);
    if ((resume || update) && (!strcmp(cli.output, "-") || format != TL_FEAT_TLF))
        cli_usage_error(&cli, "--%s: needs -o FILE in the TLF format", resume ? "resume" : "update");
    if (resume && update)
        cli_usage_error(&cli, "--resume and --update: give one (--update also continues an interrupted run)");
    if (shard_arg && format == TL_FEAT_NPY)
        cli_usage_error(&cli, "--shard: NPY has no header to record the shard in (use tlf, tsv or npz)");
    tl_extract_opts xo;
    tl_extract_opts_default(&xo);
    xo.batch = cli.batch;
    xo.skip_bad = cli.skip_bad;
    xo.max_pixels = cli.max_pixels;
    xo.spatial_pool = !no_pool;
    xo.fast_decode = fast_decode;
    xo.exact = cli.exact;
    if (!strcmp(out, "-") && (format == TL_FEAT_NPY || format == TL_FEAT_NPZ))
        cli_log(&cli, "note: %s output is written when all images are done", format == TL_FEAT_NPY ? "NPY" : "NPZ");

    /* Appended to, so the extraction of a training and a validation set
     * can share one log; opened first, so a bad path fails at once. */
    FILE *log = NULL;
    if (log_path && !(log = fopen(log_path, "a")))
        cli_die(&cli, "%s: cannot open the log: %s", log_path, strerror(errno));
    tl_err e;
    tl_net net;
    if (tl_net_load_at(model, input_size[0], input_size[1], resize_mode, &net, &e))
        cli_fail(&cli, &e);
    tl_dataset d;
    if (tl_dataset_open_flags(data, multilabel ? TL_DS_MULTILABEL : 0, &d, &e))
        cli_fail(&cli, &e);
    /* every line of a TSV output checked before there is any (io/tsv.h) */
    for (int64_t i = 0; format == TL_FEAT_TSV && i < d.n; i++)
        if (tl_tsv_check(d.items[i].path, "path", 1, &e))
            cli_fail(&cli, &e);
    tl_pool *pool = tl_pool_new(threads, &e);
    if (!pool)
        cli_fail(&cli, &e);
    tl_extractor *x = tl_extractor_new(&net, layer, threads, &xo, &e);
    if (!x && e.kind == TL_ERR_ARG)
        tl_fail_prefix(&e, "--layer");
    if (!x)
        cli_fail(&cli, &e);
    /* An absolute path lets a head trained on these features find its
     * backbone from anywhere later. */
    char *model_abs = realpath(net.path, NULL);
    char geometry[64];
    tl_preproc_geometry_format(&net.pp, geometry, sizeof geometry);
    tl_feat_info info = {
        .input = geometry,
        .dim = tl_extractor_dim(x),
        .classes = d.classes,
        .nclasses = d.nclasses,
        .model = model_abs ? model_abs : net.path,
        .layer = (char *)tl_extractor_layer(x),
        .multilabel = d.multilabel,
        .shard = shard,
        .nshards = nshards,
        .exact = cli.exact,
        .fast_decode = fast_decode,
    };
    /* What an earlier run to OUT left (--resume, --update): kept, and its
     * images not run again. */
    tl_feat_done done = {0};
    char *partial = NULL;
    tl_dataset run = d;
    run.items = NULL;
    if (resume || update) {
        size_t n = strlen(out) + sizeof ".partial";
        if (!(partial = malloc(n)))
            cli_die(&cli, "out of memory");
        snprintf(partial, n, "%s.partial", out);
        if (continue_from(&cli, out, partial, update, &info, &done))
            goto done;
    }
    /* the images to run: all, or this shard's (in canonical order) */
    char *prefix = key_prefix(data);
    int64_t *idx = NULL, count = 0;
    if (strcmp(data, "-") && !prefix)
        cli_die(&cli, "out of memory");
    if (tl_shard_plan(&d, prefix, shard, nshards, partial ? skip_done : NULL, &done, &idx, &count, &e))
        cli_fail(&cli, &e);
    free(prefix);
    if (!(run.items = malloc(((size_t)count + 1) * sizeof *run.items)))
        cli_die(&cli, "out of memory");
    for (int64_t i = 0; i < count; i++)
        run.items[i] = d.items[idx[i]];
    run.n = count;
    free(idx);
    if (nshards)
        cli_log(&cli, "shard %d/%d: %lld of %lld %s", shard, nshards, (long long)(count + done.n), (long long)d.n,
                cli_plural(d.n, "image", "images"));
    if (partial && done.n)
        cli_log(&cli, "%s: %lld %s kept, %lld to extract", done.complete ? out : partial, (long long)done.n,
                cli_plural(done.n, "record", "records"), (long long)count);
    if (update && done.complete && !count) {
        cli_log(&cli, "%s is up to date", out);
        goto done;
    }
    if (update && done.complete && copy_prefix(out, partial, done.keep, &e))
        cli_fail(&cli, &e);
    sink s = {NULL, &run};
    if (partial ? tl_featw_resume(&s.w, out, partial, done.keep, done.n, &info, &e)
                : tl_featw_open(&s.w, out, format, &info, &e))
        cli_fail(&cli, &e);
    cli_log(&cli, "%lld %s, %d %s, layer %s (%d values per image), %d threads", (long long)run.n,
            cli_plural(run.n, "image", "images"), d.nclasses, cli_plural(d.nclasses, "class", "classes"), info.layer,
            info.dim, threads);
    cli_progress_enable(&cli, cli.force_progress);
    tl_extract_stats st;
    int rc = tl_extractor_run(x, pool, &run, emit, &s, cli_progress, &cli, cli_log_hook, &cli, &st, &e);
    cli_progress_end(&cli);
    if (rc) {
        tl_featw_abort(s.w);
        char kept[4200];
        snprintf(kept, sizeof kept, "what is done is kept in %.4000s (%s continues it)", partial ? partial : "",
                 update ? "--update" : "--resume");
        if (g_stop && partial)
            cli_interrupted(&cli, g_stop, kept);
        if (g_stop)
            cli_interrupted(&cli, g_stop, strcmp(out, "-") ? "no output written, the temporary file removed"
                                                           : "the stream on standard output is cut short");
        if (partial) {
            size_t len = strlen(e.msg);
            snprintf(e.msg + len, sizeof e.msg - len, "; %s", kept);
        }
        cli_fail(&cli, &e);
    }
    if (tl_featw_close(s.w, &e))
        cli_fail(&cli, &e);
    if (st.skipped)
        cli_log(&cli, "skipped %lld unreadable %s", (long long)st.skipped, cli_plural(st.skipped, "image", "images"));
    cli_log(&cli, "%lld %s in %.1f s (%.1f images/s)", (long long)st.done, cli_plural(st.done, "vector", "vectors"),
            st.seconds, st.seconds > 0 ? st.done / st.seconds : 0.0);
    if (log) {
        tl_runlog_write_extract(log, data, info.model, info.layer, st.done, st.skipped, threads, st.seconds);
        int bad = fclose(log);
        log = NULL;
        if (bad)
            cli_die(&cli, "%s: cannot write the log", log_path);
    }
done:
    if (log)
        fclose(log);
    free(model_abs);
    free(partial);
    tl_feat_done_free(&done);
    tl_extractor_free(x);
    tl_pool_free(pool);
    free(run.items);
    tl_dataset_free(&d);
    tl_net_free(&net);
    return 0;
}
