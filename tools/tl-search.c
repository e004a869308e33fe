/* tl-search: the vectors of a feature file most similar to query images or
 * vectors (retrieval). The index is streamed once (lib/train/search.h). */
#include "common.h"
#include "io/extract.h"
#include "io/feature_origin.h"
#include "io/tsv.h"
#include "outfile.h"
#include "train/search.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The queries: vectors with a path and a label each. */
typedef struct queries {
    float *X;
    int64_t n, cap;
    int d;
    char **paths, **labels;
} queries;

static void queries_add(const tl_cli *cli, queries *q, const char *path, const char *label, const float *v)
{
    if (q->n == q->cap) {
        int64_t nc = q->cap ? q->cap * 2 : 64;
        float *nx = realloc(q->X, (size_t)nc * (size_t)q->d * sizeof *nx);
        char **np = nx ? realloc(q->paths, (size_t)nc * sizeof *np) : NULL;
        if (nx)
            q->X = nx;
        if (np)
            q->paths = np;
        char **nl = np ? realloc(q->labels, (size_t)nc * sizeof *nl) : NULL;
        if (!nl)
            cli_die(cli, "out of memory for %lld queries", (long long)nc);
        q->labels = nl;
        q->cap = nc;
    }
    memcpy(q->X + (size_t)q->n * (size_t)q->d, v, (size_t)q->d * sizeof *v);
    q->paths[q->n] = strdup(path);
    q->labels[q->n] = strdup(label ? label : "");
    if (!q->paths[q->n] || !q->labels[q->n])
        cli_die(cli, "out of memory");
    q->n++;
}

static void queries_from_file(const tl_cli *cli, queries *q, const char *path, const tl_feat_info *ix, int force,
                              const char *index)
{
    tl_err e;
    tl_featr *r;
    int d = ix->dim;
    if (tl_featr_open(&r, path, &e))
        cli_fail(cli, &e);
    const tl_feat_info *qi = tl_featr_info(r);
    if (qi->dim != d)
        cli_die(cli, "%s: %d values per vector, the index %s has %d", path, qi->dim, index, d);
    tl_feat_origin have = {qi->model, qi->layer, qi->input}, want = {ix->model, ix->layer, ix->input};
    if (!force && tl_feat_origin_check(&have, &want, "the index holds", &e)) {
        tl_fail_prefix(&e, "%s", path);
        cli_fail(cli, &e);
    }
    q->d = d;
    float *v = malloc((size_t)d * sizeof *v);
    if (!v)
        cli_die(cli, "out of memory");
    const char *p, *ln;
    int lab, got;
    while ((got = tl_featr_next(r, &p, &ln, &lab, v, &e)) == 1)
        queries_add(cli, q, p, ln, v);
    if (got < 0)
        cli_fail(cli, &e);
    free(v);
    tl_featr_close(r);
}

typedef struct image_sink {
    const tl_cli *cli;
    queries *q;
    const tl_dataset *d;
} image_sink;

static int on_vector(void *user, int64_t index, const float *v, tl_err *e)
{
    (void)e;
    image_sink *s = user;
    const tl_sample *sm = &s->d->items[index];
    queries_add(s->cli, s->q, sm->path, sm->label >= 0 ? s->d->classes[sm->label] : "", v);
    return 0;
}

/* Image queries through the network and layer the index was made with. */
static void queries_from_images(tl_cli *cli, queries *q, char **args, int nargs, const char *model,
                                const tl_feat_info *info, const char *index)
{
    tl_err e;
    if (!model)
        cli_die(cli, "%s does not say which model its vectors came from: give -m MODEL for image queries, or "
                     "query vectors with --queries", index);
    tl_net net;
    if (tl_net_load(model, &net, &e))
        cli_fail(cli, &e);
    tl_extract_opts xo;
    tl_extract_opts_default(&xo);
    xo.batch = cli->batch;
    xo.skip_bad = cli->skip_bad;
    xo.max_pixels = cli->max_pixels;
    xo.exact = cli->exact;
    tl_pool *pool = tl_pool_new(cli->threads, &e);
    tl_extractor *x = pool ? tl_extractor_new(&net, info->layer, cli->threads, &xo, &e) : NULL;
    if (!x)
        cli_fail(cli, &e);
    if (tl_extractor_dim(x) != info->dim)
        cli_die(cli, "%s gives %d values at layer %s, the index %s has %d", model, tl_extractor_dim(x),
                tl_extractor_layer(x), index, info->dim);
    q->d = info->dim;
    cli_progress_enable(cli, cli->force_progress);
    for (int a = 0; a < nargs; a++) {
        tl_dataset d;
        if (tl_dataset_open(args[a], &d, &e))
            cli_fail(cli, &e);
        image_sink s = {cli, q, &d};
        tl_extract_stats st;
        if (tl_extractor_run(x, pool, &d, on_vector, &s, cli_progress, cli, cli_log_hook, cli, &st, &e))
            cli_fail(cli, &e);
        cli_progress_end(cli);
        if (st.skipped)
            cli_log(cli, "%s: skipped %lld unreadable image%s", args[a], (long long)st.skipped,
                    st.skipped > 1 ? "s" : "");
        tl_dataset_free(&d);
    }
    tl_extractor_free(x);
    tl_pool_free(pool);
    tl_net_free(&net);
}

static const cli_choice metrics[] = {{"cosine", TL_METRIC_COSINE}, {"euclidean", TL_METRIC_EUCLIDEAN}, {NULL, 0}};

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-search");
    cli.output = "-";
    int k = 5, metric = TL_METRIC_COSINE, exclude_self = 0, force = 0;
    size_t block = 0;
    const char *qfile = NULL;
    const cli_opt opts[] = {
        OPT_INT('k', "top-k", &k, 1, 100000, "K", "the most similar K index vectors per query (default 5)"),
        OPT_ENUM(0, "metric", &metric, metrics, "cosine (default) or euclidean"),
        OPT_FILE(0, "queries", &qfile, "FILE", "query vectors (a feature file) instead of images"),
        OPT_FLAG(0, "force", &force, "--queries: take vectors of another backbone, layer or\n"
                                     "preprocessing than the index's"),
        OPT_FLAG(0, "exclude-self", &exclude_self, "leave out index vectors with the query's own path"),
        OPT_SIZE(0, "block", &block, 1, (size_t)1 << 30, "N", "index vectors read at a time (default: 16 MB of them)"),
        OPT_COMMON_HELP(CLI_O_OUTPUT, "write the results here (default '-' = standard output)"),
        OPT_GROUP("Image queries"),
        OPT_COMMON_HELP(CLI_O_MODEL, "the network (default: the model the index names)"),
        OPT_COMMON(CLI_O_BATCH),
        OPT_COMMON(CLI_O_SKIP_BAD),
        OPT_COMMON(CLI_O_MAX_PIXELS),
        OPT_COMMON(CLI_O_EXACT),
        OPT_COMMON(CLI_O_PROGRESS),
        OPT_GROUP("Common options"),
        OPT_COMMON(CLI_O_THREADS),
        OPT_COMMON(CLI_O_QUIET),
        OPT_END(),
    };
    const cli_tool tool = {
        .usage = "[options] INDEX QUERY...\n"
                 "--queries FILE [options] INDEX",
        .about = "Find the vectors of INDEX most similar to each query (retrieval).\n"
                 "\n"
                 "INDEX is a feature file from tl-extract (.tlf, .tsv or .npy; '-' reads standard\n"
                 "input). It is read once, a block at a time, so it may be larger than memory.\n"
                 "A QUERY is an image, a folder or a manifest; its vectors come from the model\n"
                 "and layer that made the index. With --queries, the queries are vectors.\n"
                 "\n"
                 "Output, one line per hit, best first:\n"
                 "  query<TAB>rank<TAB>path<TAB>label<TAB>similarity (or distance)\n",
        .opts = opts,
        .example = "tl-extract -m mobilenet_v2 photos/ -o index.tlf\n"
                   "tl-search -k 3 index.tlf query.jpg\n"
                   "tl-search --queries val.tlf --metric euclidean index.tlf > neighbours.tsv",
        .min_args = 1, .max_args = -1, .args_name = "index",
    };
    int first = cli_parse(&cli, &tool, argc, argv);
    const char *index = argv[first];
    int nq = argc - first - 1;
    if (qfile && nq)
        cli_usage_error(&cli, "give query images or --queries FILE, not both");
    if (!qfile && !nq)
        cli_usage_error(&cli, "no queries given (images after INDEX, or --queries FILE)");
    if (qfile && cli_given_in_group(&cli, "Image queries"))
        cli_usage_error(&cli, "--%s applies to image queries, not --queries", cli_given_in_group(&cli, "Image queries"));
    int stdin_index = !strcmp(index, "-");
    if (stdin_index && ((qfile && !strcmp(qfile, "-")) || (nq == 1 && !strcmp(argv[first + 1], "-"))))
        cli_usage_error(&cli, "the index and the queries cannot both be standard input");

    tl_err e;
    tl_featr *r;
    if (tl_featr_open(&r, index, &e))
        cli_fail(&cli, &e);
    const tl_feat_info *info = tl_featr_info(r);
    const char *iname = stdin_index ? "standard input" : index;
    queries q = {0};
    if (qfile)
        queries_from_file(&cli, &q, qfile, info, force, iname);
    else
        queries_from_images(&cli, &q, argv + first + 1, nq, cli.model ? cli.model : info->model, info, iname);
    if (q.n == 0)
        cli_die(&cli, "no queries (the query data holds no vectors)");
    if (q.n > INT32_MAX / 2)
        cli_die(&cli, "%lld queries: split them into runs of fewer", (long long)q.n);

    FILE *out = stdout;
    tl_outfile of;
    if (strcmp(cli.output, "-")) {
        if (tl_outfile_open(&of, cli.output, &e))
            cli_fail(&cli, &e);
        out = of.fp;
    }
    tl_pool *pool = tl_pool_new(cli.threads, &e);
    /* --exclude-self: one more hit per query, so K remain after dropping the query itself */
    int kk = k + (exclude_self ? 1 : 0);
    tl_search *s = pool ? tl_search_new(q.X, (int)q.n, q.d, kk, metric, (int64_t)block, pool, &e) : NULL;
    double t0 = tl_now();
    if (!s || tl_search_run(s, r, iname, &e)) {
        if (out != stdout)
            tl_outfile_abort(&of);
        cli_fail(&cli, &e);
    }
    double secs = tl_now() - t0;
    tl_featr_close(r);

    tl_search_hit *hits = malloc(((size_t)kk + 1) * sizeof *hits);
    if (!hits)
        cli_die(&cli, "out of memory");
    /* Every field of the output checked before its first byte (a TLF path
     * may hold a tab or a newline, which would break the TSV). */
    for (int64_t i = 0; i < q.n; i++) {
        int n, bad = tl_tsv_check(q.paths[i], "query", 1, &e);
        tl_search_results(s, (int)i, hits, &n);
        for (int j = 0; j < n && !bad; j++)
            bad = tl_tsv_check(hits[j].path, "path", 1, &e) || tl_tsv_check(hits[j].label, "label", 0, &e);
        if (bad) {
            if (out != stdout)
                tl_outfile_abort(&of);
            cli_fail(&cli, &e);
        }
    }
    fprintf(out, "#query\trank\tpath\tlabel\t%s\n", metric == TL_METRIC_COSINE ? "similarity" : "distance");
    int64_t labelled = 0, relevant = 0, shown = 0;
    for (int64_t i = 0; i < q.n; i++) {
        int n, rank = 0;
        tl_search_results(s, (int)i, hits, &n);
        int64_t same = 0;
        for (int j = 0; j < n && rank < k; j++) {
            if (exclude_self && !strcmp(hits[j].path, q.paths[i]))
                continue;
            rank++;
            fprintf(out, "%s\t%d\t%s\t%s\t%.6f\n", q.paths[i], rank, hits[j].path, hits[j].label,
                    metric == TL_METRIC_COSINE ? hits[j].score : -hits[j].score);
            same += *q.labels[i] && !strcmp(hits[j].label, q.labels[i]);
        }
        if (*q.labels[i] && rank) {
            labelled++;
            relevant += same;
            shown += rank;
        }
    }
    if (ferror(out) || (out == stdout && fflush(out)))
        cli_die(&cli, "%s: write failed", out == stdout ? "standard output" : cli.output);
    if (out != stdout && tl_outfile_commit(&of, &e))
        cli_fail(&cli, &e);
    cli_log(&cli, "%lld quer%s against %lld index vectors in %.2f s", (long long)q.n, q.n == 1 ? "y" : "ies",
            (long long)tl_search_count(s), secs);
    if (labelled)
        cli_log(&cli, "precision@%d %.4f: of the hits of the %lld labelled queries, the fraction with the query's "
                      "label",
                k, (double)relevant / (double)shown, (long long)labelled);
    free(hits);
    tl_search_free(s);
    tl_pool_free(pool);
    for (int64_t i = 0; i < q.n; i++) {
        free(q.paths[i]);
        free(q.labels[i]);
    }
    free(q.paths);
    free(q.labels);
    free(q.X);
    return 0;
}
