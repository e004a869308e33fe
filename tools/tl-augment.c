/* tl-augment: N augmented copies of every image, written into a tree that
 * mirrors the classes, and/or a contact sheet to look at what a policy does. */
#include "common.h"
#include "augment/augment.h"
#include "io/dataset.h"
#include "io/image.h"
#include "outfile.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static _Noreturn void usage(void)
{
    printf("Usage: tl-augment [options] -o OUTDIR DATA\n"
           "       tl-augment [options] --preview SHEET.png DATA\n"
           "       tl-augment --list\n"
           "Write randomly augmented copies of images, reproducibly.\n"
           "\n"
           "DATA is a folder of class folders, a TSV manifest (path<TAB>label) or '-'\n"
           "for a list of paths on standard input. Copy K of DATA's image NAME.jpg in\n"
           "class C goes to OUTDIR/C/NAME_augK.png.\n"
           "\n"
           "  -a, --augment SPEC    ops and/or policies (default 'natural'); --list shows them\n"
           "  -n, --copies N        augmented copies per image (default 5)\n"
           "  -s, --seed S          random seed (default 0); same seed, same bytes\n"
           "      --size N          output side, the network input (default 224; 0 keeps\n"
           "                        each image's size)\n"
           "      --resize N        shorter side before the final centre crop (default\n"
           "                        size*256/224)\n"
           "  -o, --output DIR      write the copies under DIR (created if missing)\n"
           "  -f, --format FMT      png (default) or jpg\n"
           "      --quality Q       JPEG quality for --format jpg (default 95)\n"
           "  -m, --manifest FILE   also list the written files as path<TAB>label ('-' =\n"
           "                        standard output, relative paths; a file gets absolute ones)\n"
           "      --preview FILE    contact sheet (PNG): one row per image, the original\n"
           "                        then its N copies\n"
           "      --rows R          images in the preview (default 8)\n"
           "      --explain         print the expanded pipeline and exit\n"
           "      --list            print every op with its parameters, and the policies\n"
           "  -j, --threads N       threads (default: all cores); never changes the output\n"
           "      --skip-bad        warn about and skip unreadable images\n"
           "      --max-pixels N    refuse images larger than N pixels (default 100000000)\n"
           "      --progress        progress bar even when stderr is not a terminal\n"
           "  -q, --quiet           no log messages\n"
           "  -h, --help            this help;  --version  the version\n"
           "\n"
           "Example:\n"
           "  tl-augment -a aerial -n 4 --preview sheet.png data/aerial/train\n"
           "  tl-augment -a 'rrc(scale=0.5:1),hflip,rot(deg=10)' -n 3 -o aug -m - train \\\n"
           "      | tl-extract -m mobilenet_v2 - -o aug.tlf\n");
    exit(0);
}

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
    exit(0);
}

static int mkdir_p(const char *path, tl_err *e)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return tl_fail(e, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return tl_fail(e, "%s: cannot create folder: %s", buf, strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return tl_fail(e, "%s: not a folder", path);
    return 0;
}

typedef struct job {
    const tl_aug_pipeline *pl;
    const tl_dataset *d;
    char **stems;          /* output name stem per image (unique within its class) */
    const char *outdir;    /* NULL: preview only */
    const char *ext;
    int copies, jpeg, quality;
    uint64_t seed;
    size_t max_pixels;
    int skip_bad;
    /* preview */
    tl_image *sheet;
    int rows, cell, margin, gap;
    /* per worker */
    tl_aug_ws *ws;
    tl_image *src, *dst, *thumb;
    tl_preproc_ws *pp;
    /* per image of the current block */
    int64_t base;
    int *status;            /* 0 ok, 1 skipped, 2 failed */
    tl_err *errs;
} job;

static char *out_path(const job *j, int64_t i, int k)
{
    const tl_sample *s = &j->d->items[i];
    const char *cls = s->label >= 0 ? j->d->classes[s->label] : NULL;
    size_t n = strlen(j->outdir) + (cls ? strlen(cls) : 0) + strlen(j->stems[i]) + 40;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s%s/%s_aug%d.%s", j->outdir, cls ? "/" : "", cls ? cls : "", j->stems[i], k,
                 j->ext);
    return p;
}

/* Scales img to fit a cell x cell box and pastes it centred at (x0, y0). */
static int paste(job *j, int worker, const tl_image *img, int x0, int y0, tl_err *e)
{
    const tl_image *t = img;
    int c = j->cell;
    if (img->w > c || img->h > c) {
        int w = img->w >= img->h ? c : (int)((double)c * img->w / img->h + 0.5);
        int h = img->w >= img->h ? (int)((double)c * img->h / img->w + 0.5) : c;
        if (w < 1) w = 1;
        if (h < 1) h = 1;
        if (tl_image_resize(img, w, h, TL_INTERP_BILINEAR, &j->thumb[worker], &j->pp[worker], e))
            return -1;
        t = &j->thumb[worker];
    }
    int ox = x0 + (c - t->w) / 2, oy = y0 + (c - t->h) / 2;
    for (int y = 0; y < t->h; y++)
        memcpy(j->sheet->px + ((size_t)(oy + y) * j->sheet->w + ox) * 3, t->px + (size_t)y * t->w * 3,
               (size_t)t->w * 3);
    return 0;
}

static int do_image(job *j, int64_t i, int worker, tl_err *e)
{
    tl_image *src = &j->src[worker], *dst = &j->dst[worker];
    if (tl_image_decode_file(j->d->items[i].path, src, j->max_pixels, e))
        return 1;
    int row = i < j->rows && j->sheet ? (int)i : -1;
    int rowy = row * (j->cell + j->margin) + j->margin;
    if (row >= 0 && paste(j, worker, src, j->margin, rowy, e))
        return 2;
    for (int k = 0; k < j->copies; k++) {
        tl_rng r;
        tl_aug_seed_image(&r, j->seed, (uint64_t)k, (uint64_t)i);
        if (tl_aug_apply(j->pl, &r, src, dst, &j->ws[worker], e)) {
            tl_fail_prefix(e, "%s", j->d->items[i].path);
            return 2;
        }
        if (row >= 0) {
            int x = j->margin + j->gap + (k + 1) * (j->cell + j->margin);
            if (paste(j, worker, dst, x, rowy, e))
                return 2;
        }
        if (!j->outdir)
            continue;
        char *p = out_path(j, i, k);
        if (!p) {
            tl_fail(e, "out of memory");
            return 2;
        }
        int rc = j->jpeg ? tl_image_write_jpeg(p, dst, j->quality, e) : tl_image_write_png(p, dst, e);
        free(p);
        if (rc)
            return 2;
    }
    return 0;
}

static void run_range(void *ctx, int64_t b, int64_t end, int worker)
{
    job *j = ctx;
    for (int64_t t = b; t < end; t++) /* t: position in the block */
        j->status[t] = do_image(j, j->base + t, worker, &j->errs[t]);
}

/* Output stems: the file name without its extension; a name met twice in
 * one class gets "-<index>" so no copy overwrites another. */
typedef struct stem_key {
    int label;
    const char *stem;
    int64_t i;
} stem_key;

static int cmp_stem(const void *a, const void *b)
{
    const stem_key *x = a, *y = b;
    if (x->label != y->label)
        return x->label < y->label ? -1 : 1;
    int c = strcmp(x->stem, y->stem);
    if (c)
        return c;
    return x->i < y->i ? -1 : x->i > y->i;
}

static char **make_stems(const tl_dataset *d)
{
    char **stems = calloc((size_t)d->n + 1, sizeof *stems);
    stem_key *keys = calloc((size_t)d->n + 1, sizeof *keys);
    if (!stems || !keys) {
        free(stems);
        free(keys);
        return NULL;
    }
    for (int64_t i = 0; i < d->n; i++) {
        const char *base = strrchr(d->items[i].path, '/');
        base = base ? base + 1 : d->items[i].path;
        char *s = tl_strdup(base);
        if (!s)
            return NULL;
        char *dot = strrchr(s, '.');
        if (dot && dot != s)
            *dot = '\0';
        if (!*s || !strcmp(s, ".") || !strcmp(s, "..")) {
            free(s);
            s = tl_strdup("image");
        }
        stems[i] = s;
        keys[i] = (stem_key){ d->items[i].label, s, i };
    }
    qsort(keys, (size_t)d->n, sizeof *keys, cmp_stem);
    /* mark first, rename after: the keys point at the stems */
    char *dup = calloc((size_t)d->n + 1, 1);
    if (!dup)
        return NULL;
    for (int64_t t = 1; t < d->n; t++)
        if (keys[t].label == keys[t - 1].label && !strcmp(keys[t].stem, keys[t - 1].stem))
            dup[keys[t].i] = 1;
    for (int64_t i = 0; i < d->n; i++) {
        if (!dup[i])
            continue;
        size_t n = strlen(stems[i]) + 24;
        char *s = malloc(n);
        if (!s)
            return NULL;
        snprintf(s, n, "%s-%lld", stems[i], (long long)i);
        free(stems[i]);
        stems[i] = s;
    }
    free(dup);
    free(keys);
    return stems;
}

static int class_name_ok(const char *c) { return *c && strcmp(c, ".") && strcmp(c, "..") && !strchr(c, '/'); }

int main(int argc, char **argv)
{
    tl_cli cli;
    cli_init(&cli, "tl-augment");
    const char *spec = "natural", *outdir = NULL, *manifest = NULL, *preview = NULL;
    int copies = 5, jpeg = 0, quality = 95, rows = 8, explain = 0, skip_bad = 0, force_progress = 0;
    int threads = tl_cpu_count();
    uint64_t seed = 0;
    size_t max_pixels = 0;
    tl_aug_opts ao;
    tl_aug_opts_default(&ao);
    int resize_given = 0;
    enum { O_SIZE = 256, O_RESIZE, O_QUALITY, O_PREVIEW, O_ROWS, O_EXPLAIN, O_LIST, O_SKIP, O_MAXPX,
           O_PROGRESS, O_VERSION };
    static const struct option opts[] = {
        {"augment", required_argument, 0, 'a'}, {"copies", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 's'}, {"size", required_argument, 0, O_SIZE},
        {"resize", required_argument, 0, O_RESIZE}, {"output", required_argument, 0, 'o'},
        {"format", required_argument, 0, 'f'}, {"quality", required_argument, 0, O_QUALITY},
        {"manifest", required_argument, 0, 'm'}, {"preview", required_argument, 0, O_PREVIEW},
        {"rows", required_argument, 0, O_ROWS}, {"explain", no_argument, 0, O_EXPLAIN},
        {"list", no_argument, 0, O_LIST}, {"threads", required_argument, 0, 'j'},
        {"skip-bad", no_argument, 0, O_SKIP}, {"max-pixels", required_argument, 0, O_MAXPX},
        {"progress", no_argument, 0, O_PROGRESS}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0},
    };
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":a:n:s:o:f:m:j:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'a': spec = optarg; break;
        case 'n': copies = (int)cli_long(&cli, "--copies", optarg, 1, 100000); break;
        case 's': seed = (uint64_t)cli_long(&cli, "--seed", optarg, 0, LONG_MAX); break;
        case O_SIZE: ao.size = (int)cli_long(&cli, "--size", optarg, 0, 16384); break;
        case O_RESIZE: ao.resize_size = (int)cli_long(&cli, "--resize", optarg, 1, 16384); resize_given = 1; break;
        case 'o': outdir = optarg; break;
        case 'f':
            if (!strcmp(optarg, "png"))
                jpeg = 0;
            else if (!strcmp(optarg, "jpg") || !strcmp(optarg, "jpeg"))
                jpeg = 1;
            else
                cli_usage_error(&cli, "--format: '%s' is not png or jpg", optarg);
            break;
        case O_QUALITY: quality = (int)cli_long(&cli, "--quality", optarg, 1, 100); break;
        case 'm': manifest = optarg; break;
        case O_PREVIEW: preview = optarg; break;
        case O_ROWS: rows = (int)cli_long(&cli, "--rows", optarg, 1, 1000); break;
        case O_EXPLAIN: explain = 1; break;
        case O_LIST: print_list();
        case 'j': threads = cli_threads(&cli, optarg); break;
        case O_SKIP: skip_bad = 1; break;
        case O_MAXPX: max_pixels = cli_max_pixels(&cli, optarg); break;
        case O_PROGRESS: force_progress = 1; break;
        case 'q': cli.quiet = 1; break;
        case 'h': usage();
        case O_VERSION: cli_version(&cli);
        case ':': cli_usage_error(&cli, "%s needs a value", argv[optind - 1]);
        default: cli_usage_error(&cli, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!resize_given)
        ao.resize_size = 0; /* derived from --size */
    tl_err e;
    tl_aug_pipeline *pl = tl_aug_parse(spec, &ao, &e);
    if (!pl) { /* exactly one line, the column pointing into the spec */
        fprintf(stderr, "%s: --augment: %s\n", cli.prog, e.msg);
        return 2;
    }
    if (explain) {
        int n = tl_aug_describe(pl, NULL, 0);
        char *buf = malloc((size_t)n + 1);
        if (!buf)
            cli_die(&cli, "out of memory");
        tl_aug_describe(pl, buf, (size_t)n + 1);
        printf("%s\n", buf);
        int s = tl_aug_output_size(pl);
        if (s)
            printf("output %dx%d\n", s, s);
        else
            printf("output: each image's own size\n");
        free(buf);
        tl_aug_free(pl);
        return 0;
    }
    if (optind != argc - 1)
        cli_usage_error(&cli, optind == argc ? "no data given" : "one data argument expected");
    if (!outdir && !preview)
        cli_usage_error(&cli, "nothing to do: give -o OUTDIR and/or --preview FILE.png");
    if (manifest && !outdir)
        cli_usage_error(&cli, "--manifest lists written files: it needs -o OUTDIR");
    if (jpeg == 0 && quality != 95)
        cli_log(&cli, "note: --quality applies to --format jpg only");

    tl_dataset d;
    if (tl_dataset_open(argv[optind], &d, &e))
        cli_fail(&cli, &e);
    if (d.n == 0)
        cli_die(&cli, "%s: no images", argv[optind]);
    char **stems = make_stems(&d);
    if (!stems)
        cli_die(&cli, "out of memory");
    if (outdir) {
        if (mkdir_p(outdir, &e))
            cli_fail(&cli, &e);
        for (int c = 0; c < d.nclasses; c++) {
            if (!class_name_ok(d.classes[c]))
                cli_die(&cli, "class name '%s' cannot be a folder name", d.classes[c]);
            char p[PATH_MAX];
            if (snprintf(p, sizeof p, "%s/%s", outdir, d.classes[c]) >= (int)sizeof p)
                cli_die(&cli, "%s/%s: path too long", outdir, d.classes[c]);
            if (mkdir_p(p, &e))
                cli_fail(&cli, &e);
        }
    }
    tl_outfile mf = { 0 };
    char *absdir = NULL;
    if (manifest) {
        if (tl_outfile_open(&mf, manifest, &e))
            cli_fail(&cli, &e);
        if (!mf.is_stdout && !(absdir = realpath(outdir, NULL)))
            cli_die(&cli, "%s: %s", outdir, strerror(errno));
    }

    int64_t todo = outdir ? d.n : (d.n < rows ? d.n : rows);
    tl_pool *pool = tl_pool_new(threads, &e);
    if (!pool)
        cli_fail(&cli, &e);
    int nw = tl_pool_size(pool);
    job j = {
        .pl = pl, .d = &d, .stems = stems, .outdir = outdir, .ext = jpeg ? "jpg" : "png",
        .copies = copies, .jpeg = jpeg, .quality = quality, .seed = seed,
        .max_pixels = max_pixels, .skip_bad = skip_bad,
    };
    j.ws = calloc((size_t)nw, sizeof *j.ws);
    j.src = calloc((size_t)nw, sizeof *j.src);
    j.dst = calloc((size_t)nw, sizeof *j.dst);
    j.thumb = calloc((size_t)nw, sizeof *j.thumb);
    j.pp = calloc((size_t)nw, sizeof *j.pp);
    int64_t block = 16 * (int64_t)nw;
    j.status = calloc((size_t)block, sizeof *j.status);
    j.errs = calloc((size_t)block, sizeof *j.errs);
    if (!j.ws || !j.src || !j.dst || !j.thumb || !j.pp || !j.status || !j.errs)
        cli_die(&cli, "out of memory");
    tl_image sheet = { 0 };
    if (preview) {
        j.rows = (int)(d.n < rows ? d.n : rows);
        j.cell = tl_aug_output_size(pl) ? tl_aug_output_size(pl) : 224;
        j.margin = 4;
        j.gap = 8; /* extra space between the original and its copies */
        int sw = j.margin + j.gap + (copies + 1) * (j.cell + j.margin);
        int sh = j.margin + j.rows * (j.cell + j.margin);
        if ((double)sw * sh > 2e8)
            cli_usage_error(&cli, "--preview: a %dx%d sheet is too large (fewer --copies or --rows)", sw, sh);
        if (tl_image_alloc(&sheet, sw, sh, &e))
            cli_fail(&cli, &e);
        memset(sheet.px, 40, (size_t)sw * sh * 3);
        j.sheet = &sheet;
    }
    char desc[64];
    snprintf(desc, sizeof desc, "%s", spec);
    cli_log(&cli, "%lld images x %d copies, augment '%s'%s, %d threads", (long long)todo, copies, desc,
            strlen(spec) >= sizeof desc ? "..." : "", nw);
    cli_progress_enable(&cli, force_progress);
    int64_t skipped = 0, written = 0;
    double t0 = tl_now();
    for (int64_t b = 0; b < todo; b += block) {
        int64_t n = todo - b < block ? todo - b : block;
        j.base = b;
        tl_parallel_for(pool, n, 1, run_range, &j);
        for (int64_t t = 0; t < n; t++) {
            int64_t i = b + t;
            if (j.status[t] == 1 && skip_bad) {
                cli_log(&cli, "skipping %s", j.errs[t].msg);
                skipped++;
                continue;
            }
            if (j.status[t]) {
                cli_progress_end(&cli);
                tl_outfile_abort(&mf);
                cli_fail(&cli, &j.errs[t]);
            }
            for (int k = 0; k < copies && outdir; k++) {
                written++;
                if (!manifest)
                    continue;
                char *p = out_path(&j, i, k);
                if (!p)
                    cli_die(&cli, "out of memory");
                const char *rel = p;
                if (absdir)
                    rel = p + strlen(outdir);
                const tl_sample *s = &d.items[i];
                fprintf(mf.fp, "%s%s%s%s\n", absdir ? absdir : "", rel, s->label >= 0 ? "\t" : "",
                        s->label >= 0 ? d.classes[s->label] : "");
                free(p);
            }
        }
        if (manifest && mf.is_stdout)
            fflush(stdout);
        cli_progress(&cli, b + n, todo);
    }
    cli_progress_end(&cli);
    double secs = tl_now() - t0;
    if (manifest && tl_outfile_commit(&mf, &e))
        cli_fail(&cli, &e);
    if (preview) {
        if (tl_image_write_png(preview, &sheet, &e))
            cli_fail(&cli, &e);
        cli_log(&cli, "preview %s: %d rows of 1 + %d images", preview, j.rows, copies);
    }
    if (skipped)
        cli_log(&cli, "skipped %lld unreadable image%s", (long long)skipped, skipped > 1 ? "s" : "");
    if (outdir)
        cli_log(&cli, "%lld files in %.1f s (%.1f images/s)", (long long)written, secs,
                secs > 0 ? written / secs : 0.0);
    for (int w = 0; w < nw; w++) {
        tl_aug_ws_free(&j.ws[w]);
        tl_image_free(&j.src[w]);
        tl_image_free(&j.dst[w]);
        tl_image_free(&j.thumb[w]);
        tl_preproc_ws_free(&j.pp[w]);
    }
    free(j.ws); free(j.src); free(j.dst); free(j.thumb); free(j.pp); free(j.status); free(j.errs);
    tl_image_free(&sheet);
    for (int64_t i = 0; i < d.n; i++)
        free(stems[i]);
    free(stems);
    free(absdir);
    tl_pool_free(pool);
    tl_aug_free(pl);
    tl_dataset_free(&d);
    return 0;
}
