/* tl-augment: N augmented copies of every image, written into a tree that
 * mirrors the classes, and/or a contact sheet to look at what a policy does
 * (lib/augment/augment_set.h does the work). */
#include "common.h"
#include "augment/augment_set.h"
#include "io/dataset.h"
#include "io/image.h"
#include "io/tsv.h"
#include "outfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t g_stop;

static _Noreturn void print_list(void)
{
    printf("Operations (name(param=default,...); every op takes p, the probability to apply it):\n");
    for (int i = 0; i < tl_aug_op_count(); i++) {
        const tl_aug_op_info *o = tl_aug_op_at(i);
        printf("\n  %s", o->name);
        if (o->aliases)
            printf(" (also %s)", o->aliases);
        printf(": %s\n", o->help);
        for (int j = 0; j < o->nparams; j++)
            printf("      %-6s %-14s %s\n", o->params[j].name, o->params[j].def, o->params[j].help);
    }
    printf("\nPolicies (a spec may mix them with ops: 'natural,noise(sigma=0.02)'):\n");
    for (int i = 0; i < tl_aug_policy_count(); i++) {
        const tl_aug_policy_info *p = tl_aug_policy_at(i);
        printf("\n  %s = %s\n      %s\n", p->name, p->spec, p->why);
    }
    printf("\nA pipeline whose result is not SIZE x SIZE ends with Resize(RESIZE) and\n"
           "CenterCrop(SIZE), as the network's validation preprocessing does.\n");
    exit(fflush(stdout) == 0 ? 0 : 1);
}

static int explain(const tl_cli *cli, const tl_aug_pipeline *pl)
{
    int n = tl_aug_describe(pl, NULL, 0);
    char *buf = malloc((size_t)n + 1);
    if (!buf)
        cli_die(cli, "out of memory");
    tl_aug_describe(pl, buf, (size_t)n + 1);
    printf("%s\n", buf);
    int ow, oh;
    tl_aug_output_dims(pl, &ow, &oh);
    if (ow)
        printf("output %dx%d\n", ow, oh);
    else
        printf("output: each image's own size\n");
    free(buf);
    return 0;
}

/* Writes the manifest line of each image as its block completes. */
typedef struct lister {
    tl_cli *cli;
    const tl_aug_set *set;
    const tl_dataset *d;
    int copies;
    tl_outfile *mf;        /* NULL: no manifest */
    const char *outdir;
    char *absdir;          /* a manifest file gets absolute paths */
} lister;

static int on_image(void *user, int64_t i, const char *skipped, tl_err *e)
{
    lister *L = user;
    if (skipped) {
        cli_log(L->cli, "skipping %s", skipped);
        return 0;
    }
    for (int k = 0; L->mf && k < L->copies; k++) {
        char *p = tl_aug_set_path(L->set, i, k);
        if (!p)
            return tl_fail(e, "out of memory");
        const char *rel = L->absdir ? p + strlen(L->outdir) : p;
        const tl_sample *s = &L->d->items[i];
        fprintf(L->mf->fp, "%s%s%s%s\n", L->absdir ? L->absdir : "", rel, s->label >= 0 ? "\t" : "",
                s->label >= 0 ? L->d->classes[s->label] : "");
        free(p);
    }
    if (L->mf && L->mf->is_stdout)
        fflush(stdout);
    return 0;
}

/* Every manifest line is checked before anything is written (tsv.h). */
static void check_manifest(const tl_cli *cli, const tl_aug_set *set, const tl_dataset *d, int absolute)
{
    tl_err e;
    for (int c = 0; c < d->nclasses; c++)
        if (tl_tsv_check(d->classes[c], "class name", 0, &e))
            cli_fail(cli, &e);
    for (int64_t i = 0; i < d->n; i++) {
        char *p = tl_aug_set_path(set, i, 0);
        if (!p)
            cli_die(cli, "out of memory");
        int bad = tl_tsv_check(p, "path", !absolute, &e);
        free(p);
        if (bad)
            cli_fail(cli, &e);
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

static const cli_choice formats[] = {{"png", 0}, {"jpg", 1}, {"jpeg", 1}, {NULL, 0}};
static const cli_choice resize_modes[] = {
    {"crop", TL_RESIZE_CROP}, {"squash", TL_RESIZE_SQUASH}, {"pad", TL_RESIZE_PAD}, {NULL, 0}};

/* --size: 0 (each image keeps its size), N or WxH. */
static int parse_size(const char *arg, void *target, char *why, size_t n)
{
    int *wh = target;
    if (!strcmp(arg, "0")) {
        wh[0] = wh[1] = 0;
        return 0;
    }
    if (tl_input_size_parse(arg, 16384, &wh[0], &wh[1]) == 0)
        return 0;
    snprintf(why, n, "--size: '%s' is not 0, N or WxH (whole numbers in 1..16384)", arg);
    return -1;
}

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-augment");
    const char *spec = "natural", *manifest = NULL, *preview = NULL;
    int copies = 5, jpeg = 0, quality = 95, rows = 8, explain_only = 0, list = 0;
    tl_aug_opts ao;
    tl_aug_opts_default(&ao);
    int size[2] = {ao.w, ao.h};
    const cli_opt opts[] = {
        OPT_STRING('a', "augment", &spec, "SPEC", "ops and/or policies (default 'natural'; --list)"),
        OPT_INT('n', "copies", &copies, 1, 100000, "N", "augmented copies per image (default 5)"),
        OPT_COMMON_HELP(CLI_O_SEED, "random seed (default 0); same seed, same bytes"),
        OPT_CALLBACK(0, "size", size, parse_size, "WxH", "output size, N or WxH: the network input (default\n"
                                                          "224; 0 keeps each image's size)"),
        OPT_ENUM(0, "resize-mode", &ao.resize_mode, resize_modes,
                 "the final step to SIZE: crop (default), squash or pad"),
        OPT_INT(0, "resize", &ao.resize_size, 1, 16384, "N", "shorter side before the final centre crop (default\n"
                                                             "size*256/224)"),
        {.type = CLI_COMMON, .common = CLI_O_OUTPUT, .argname = "DIR",
         .help = "write the copies under DIR (created if missing)"},
        OPT_ENUM('f', "format", &jpeg, formats, "file format of the copies (default png)"),
        OPT_INT(0, "quality", &quality, 1, 100, "Q", "JPEG quality for --format jpg (default 95)"),
        OPT_FILE(0, "manifest", &manifest, "FILE", "also list the written files as path<TAB>label ('-':\n"
                                                   "standard output, relative paths; a file: absolute ones)"),
        OPT_FILE(0, "preview", &preview, "FILE", "contact sheet (.png or .jpg): one row per image, the\n"
                                                 "original then its N copies"),
        OPT_INT(0, "rows", &rows, 1, 1000, "R", "images in the preview (default 8)"),
        OPT_FLAG(0, "explain", &explain_only, "print the expanded pipeline and exit"),
        OPT_FLAG(0, "list", &list, "print every op with its parameters, and the policies"),
        OPT_COMMON_HELP(CLI_O_THREADS, "threads (default: all cores); never changes the output"),
        OPT_COMMON(CLI_O_SKIP_BAD),
        OPT_COMMON(CLI_O_MAX_PIXELS),
        OPT_COMMON(CLI_O_PROGRESS),
        OPT_COMMON(CLI_O_QUIET),
        OPT_END(),
    };
    const cli_tool tool = {
        .usage = "[options] -o OUTDIR DATA\n[options] --preview SHEET.png DATA\n--list",
        .about = "Write randomly augmented copies of images, reproducibly.\n"
                 "\n"
                 "DATA is a folder of class folders, a TSV manifest (path<TAB>label) or '-'\n"
                 "for a list of paths on standard input. Copy K of DATA's image NAME.jpg in\n"
                 "class C goes to OUTDIR/C/NAME_augK.png.\n",
        .opts = opts,
        .example = "tl-augment -a aerial -n 4 --preview sheet.png data/aerial/train\n"
                   "tl-augment -a 'rrc(scale=0.5:1),hflip' -n 3 -o aug --manifest - train \\\n"
                   "    | tl-extract -m mobilenet_v2 - -o aug.tlf",
        .min_args = 0, .max_args = -1, .args_name = "data",
    };
    int first = cli_parse(&cli, &tool, argc, argv);
    cli_catch_signals(&g_stop); /* from here, an interrupt stops at the next safe point */
    if (list)
        print_list();
    const char *outdir = cli.output;
    ao.w = size[0];
    ao.h = size[1];
    if (!cli_given(&cli, "resize"))
        ao.resize_size = 0; /* derived from --size */
    tl_err e;
    tl_aug_pipeline *pl = tl_aug_parse(spec, &ao, &e);
    if (!pl) { /* exactly one line, the column pointing into the spec */
        fprintf(stderr, "%s: --augment: %s (see %s --list)\n", cli.prog, e.msg, cli.prog);
        return 2;
    }
    if (explain_only) {
        int rc = explain(&cli, pl);
        tl_aug_free(pl);
        return rc;
    }
    if (argc - first != 1)
        cli_usage_error(&cli, first == argc ? "no data given" : "one data argument expected");
    if (!outdir && !preview)
        cli_usage_error(&cli, "nothing to do: give -o OUTDIR and/or --preview FILE.png");
    if (manifest && !outdir)
        cli_usage_error(&cli, "--manifest lists written files: it needs -o OUTDIR");
    if (outdir && !strcmp(outdir, "-"))
        cli_usage_error(&cli, "-o takes a folder, not standard output");
    int sheet_jpeg = preview && (ends_with(preview, ".jpg") || ends_with(preview, ".jpeg"));
    if (preview && strcmp(preview, "-") && !sheet_jpeg && !ends_with(preview, ".png"))
        cli_usage_error(&cli, "--preview %s: name it .png or .jpg (the format follows the name)", preview);
    if (!jpeg && cli_given(&cli, "quality"))
        cli_log(&cli, "note: --quality applies to --format jpg only");

    const char *data = argv[first];
    tl_dataset d;
    if (tl_dataset_open(data, &d, &e))
        cli_fail(&cli, &e);
    if (d.n == 0)
        cli_die(&cli, "%s: no images", data);
    tl_pool *pool = tl_pool_new(cli.threads, &e);
    if (!pool)
        cli_fail(&cli, &e);
    tl_aug_set_opts so = {outdir, copies, jpeg, quality, cli.seed, cli.max_pixels, cli.skip_bad,
                          preview ? rows : 0, &g_stop};
    tl_aug_set *set = tl_aug_set_new(pl, &d, &so, tl_pool_size(pool), &e);
    if (!set)
        cli_fail(&cli, &e);
    lister L = {&cli, set, &d, copies, NULL, outdir, NULL};
    tl_outfile mf = {0};
    int absolute = manifest && strcmp(manifest, "-");
    if (manifest) {
        /* the folder the absolute paths will start with, as far as it is known before it exists */
        char *cwd = absolute && outdir[0] != '/' ? realpath(".", NULL) : NULL;
        if (absolute && outdir[0] != '/' && !cwd)
            cli_die(&cli, "the current folder: %s", strerror(errno));
        if (cwd && tl_tsv_check(cwd, "folder", 1, &e))
            cli_fail(&cli, &e);
        free(cwd);
        check_manifest(&cli, set, &d, absolute);
    }
    if (tl_aug_set_make_dirs(set, &e))
        cli_fail(&cli, &e);
    if (manifest) {
        if (tl_outfile_open(&mf, manifest, &e))
            cli_fail(&cli, &e);
        if (absolute && !(L.absdir = realpath(outdir, NULL)))
            cli_die(&cli, "%s: %s", outdir, strerror(errno));
        if (L.absdir && tl_tsv_check(L.absdir, "folder", 1, &e)) {
            tl_outfile_abort(&mf);
            cli_fail(&cli, &e);
        }
        L.mf = &mf;
    }
    char desc[64];
    snprintf(desc, sizeof desc, "%s", spec);
    int64_t todo = outdir ? d.n : (d.n < rows ? d.n : rows);
    cli_log(&cli, "%lld %s x %d copies, augment '%s'%s, %d threads", (long long)todo,
            cli_plural(todo, "image", "images"), copies, desc, strlen(spec) >= sizeof desc ? "..." : "",
            tl_pool_size(pool));
    cli_progress_enable(&cli, cli.force_progress);
    tl_aug_set_stats st;
    int rc = tl_aug_set_run(set, pool, on_image, &L, cli_progress, &cli, &st, &e);
    cli_progress_end(&cli);
    if (rc < 0) {
        tl_outfile_abort(&mf);
        cli_fail(&cli, &e);
    }
    if (rc == TL_AUG_SET_STOPPED) {
        tl_outfile_abort(&mf);
        char what[600];
        snprintf(what, sizeof what, "%lld of %lld images done%s%s%s%s", (long long)st.images, (long long)todo,
                 outdir ? ", their copies complete in " : "", outdir ? outdir : "",
                 manifest ? "; no manifest written" : "", preview ? "; no preview written" : "");
        cli_interrupted(&cli, g_stop, what);
    }
    if (manifest && tl_outfile_commit(&mf, &e))
        cli_fail(&cli, &e);
    if (preview) {
        const tl_image *sheet = tl_aug_set_sheet(set);
        if (sheet_jpeg ? tl_image_write_jpeg(preview, sheet, 90, &e) : tl_image_write_png(preview, sheet, &e))
            cli_fail(&cli, &e);
        cli_log(&cli, "preview %s: %lld rows of 1 + %d images", preview, (long long)(d.n < rows ? d.n : rows),
                copies);
    }
    if (st.skipped)
        cli_log(&cli, "skipped %lld unreadable %s", (long long)st.skipped, cli_plural(st.skipped, "image", "images"));
    if (outdir)
        cli_log(&cli, "%lld files in %.1f s (%.1f images/s)", (long long)st.files, st.seconds,
                st.seconds > 0 ? st.files / st.seconds : 0.0);
    free(L.absdir);
    tl_aug_set_free(set);
    tl_pool_free(pool);
    tl_aug_free(pl);
    tl_dataset_free(&d);
    return 0;
}
