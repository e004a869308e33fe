#include "augment_set.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct tl_aug_set {
    const tl_aug_pipeline *pl;
    const tl_dataset *d;
    tl_aug_set_opts o;
    char **stems;          /* output name stem per image (unique within its class) */
    const char *ext;
    int nw;
    /* the sheet */
    tl_image sheet;
    int rows, cell, margin, gap;
    /* per worker */
    tl_aug_ws *ws;
    tl_image *src, *dst, *thumb;
    tl_preproc_ws *pp;
    /* per image of the current block */
    int64_t base, block;
    int *status;           /* 0 ok, 1 unreadable, 2 failed */
    tl_err *errs;
};

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

static int class_name_ok(const char *c) { return *c && strcmp(c, ".") && strcmp(c, "..") && !strchr(c, '/'); }

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

static int make_stems(tl_aug_set *s, tl_err *e)
{
    const tl_dataset *d = s->d;
    s->stems = calloc((size_t)d->n + 1, sizeof *s->stems);
    stem_key *keys = calloc((size_t)d->n + 1, sizeof *keys);
    char *dup = calloc((size_t)d->n + 1, 1);
    int rc = -1;
    if (!s->stems || !keys || !dup)
        goto out;
    for (int64_t i = 0; i < d->n; i++) {
        const char *base = strrchr(d->items[i].path, '/');
        base = base ? base + 1 : d->items[i].path;
        char *st = tl_strdup(base);
        if (!st)
            goto out;
        char *dot = strrchr(st, '.');
        if (dot && dot != st)
            *dot = '\0';
        if (!*st || !strcmp(st, ".") || !strcmp(st, "..")) {
            free(st);
            if (!(st = tl_strdup("image")))
                goto out;
        }
        s->stems[i] = st;
        keys[i] = (stem_key){d->items[i].label, st, i};
    }
    qsort(keys, (size_t)d->n, sizeof *keys, cmp_stem);
    /* mark first, rename after: the keys point at the stems */
    for (int64_t t = 1; t < d->n; t++)
        if (keys[t].label == keys[t - 1].label && !strcmp(keys[t].stem, keys[t - 1].stem))
            dup[keys[t].i] = 1;
    for (int64_t i = 0; i < d->n; i++) {
        if (!dup[i])
            continue;
        size_t n = strlen(s->stems[i]) + 24;
        char *st = malloc(n);
        if (!st)
            goto out;
        snprintf(st, n, "%s-%lld", s->stems[i], (long long)i);
        free(s->stems[i]);
        s->stems[i] = st;
    }
    rc = 0;
out:
    free(dup);
    free(keys);
    return rc ? tl_fail(e, "out of memory") : 0;
}

tl_aug_set *tl_aug_set_new(const tl_aug_pipeline *pl, const tl_dataset *d, const tl_aug_set_opts *o, int nworkers,
                           tl_err *e)
{
    tl_aug_set *s = calloc(1, sizeof *s);
    if (!s) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    s->pl = pl;
    s->d = d;
    s->o = *o;
    s->ext = o->jpeg ? "jpg" : "png";
    s->nw = nworkers;
    for (int c = 0; o->outdir && c < d->nclasses; c++)
        if (!class_name_ok(d->classes[c])) {
            tl_fail(e, "class name '%s' cannot be a folder name", d->classes[c]);
            goto fail;
        }
    if (make_stems(s, e))
        goto fail;
    s->ws = calloc((size_t)nworkers, sizeof *s->ws);
    s->src = calloc((size_t)nworkers, sizeof *s->src);
    s->dst = calloc((size_t)nworkers, sizeof *s->dst);
    s->thumb = calloc((size_t)nworkers, sizeof *s->thumb);
    s->pp = calloc((size_t)nworkers, sizeof *s->pp);
    s->block = 16 * (int64_t)nworkers;
    s->status = calloc((size_t)s->block, sizeof *s->status);
    s->errs = calloc((size_t)s->block, sizeof *s->errs);
    if (!s->ws || !s->src || !s->dst || !s->thumb || !s->pp || !s->status || !s->errs) {
        tl_fail(e, "out of memory");
        goto fail;
    }
    if (o->sheet_rows > 0) {
        s->rows = (int)(d->n < o->sheet_rows ? d->n : o->sheet_rows);
        int ow, oh;
        tl_aug_output_dims(pl, &ow, &oh);
        s->cell = ow ? (ow > oh ? ow : oh) : 224;
        s->margin = 4;
        s->gap = 8; /* extra space between the original and its copies */
        int sw = s->margin + s->gap + (o->copies + 1) * (s->cell + s->margin);
        int sh = s->margin + s->rows * (s->cell + s->margin);
        if ((double)sw * sh > 2e8) {
            tl_fail_arg(e, "--preview: a %dx%d sheet is too large (fewer --copies or --rows)", sw, sh);
            goto fail;
        }
        if (tl_image_alloc(&s->sheet, sw, sh, e))
            goto fail;
        memset(s->sheet.px, 40, (size_t)sw * sh * 3);
    }
    return s;
fail:
    tl_aug_set_free(s);
    return NULL;
}

char *tl_aug_set_path(const tl_aug_set *s, int64_t i, int k)
{
    if (!s->o.outdir)
        return NULL;
    const tl_sample *smp = &s->d->items[i];
    const char *cls = smp->label >= 0 ? s->d->classes[smp->label] : NULL;
    size_t n = strlen(s->o.outdir) + (cls ? strlen(cls) : 0) + strlen(s->stems[i]) + 40;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s%s/%s_aug%d.%s", s->o.outdir, cls ? "/" : "", cls ? cls : "", s->stems[i], k, s->ext);
    return p;
}

int tl_aug_set_make_dirs(tl_aug_set *s, tl_err *e)
{
    if (!s->o.outdir)
        return 0;
    if (mkdir_p(s->o.outdir, e))
        return -1;
    for (int c = 0; c < s->d->nclasses; c++) {
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", s->o.outdir, s->d->classes[c]) >= (int)sizeof p)
            return tl_fail(e, "%s/%s: path too long", s->o.outdir, s->d->classes[c]);
        if (mkdir_p(p, e))
            return -1;
    }
    return 0;
}

/* Scales img to fit a cell x cell box and pastes it centred at (x0, y0). */
static int paste(tl_aug_set *s, int worker, const tl_image *img, int x0, int y0, tl_err *e)
{
    const tl_image *t = img;
    int c = s->cell;
    if (img->w > c || img->h > c) {
        int w = img->w >= img->h ? c : (int)((double)c * img->w / img->h + 0.5);
        int h = img->w >= img->h ? (int)((double)c * img->h / img->w + 0.5) : c;
        if (w < 1)
            w = 1;
        if (h < 1)
            h = 1;
        if (tl_image_resize(img, w, h, TL_INTERP_BILINEAR, &s->thumb[worker], &s->pp[worker], e))
            return -1;
        t = &s->thumb[worker];
    }
    int ox = x0 + (c - t->w) / 2, oy = y0 + (c - t->h) / 2;
    for (int y = 0; y < t->h; y++)
        memcpy(s->sheet.px + ((size_t)(oy + y) * s->sheet.w + ox) * 3, t->px + (size_t)y * t->w * 3,
               (size_t)t->w * 3);
    return 0;
}

static int do_image(tl_aug_set *s, int64_t i, int worker, tl_err *e)
{
    tl_image *src = &s->src[worker], *dst = &s->dst[worker];
    if (tl_image_decode_file(s->d->items[i].path, src, s->o.max_pixels, e))
        return 1;
    int row = i < s->rows ? (int)i : -1;
    int rowy = row * (s->cell + s->margin) + s->margin;
    if (row >= 0 && paste(s, worker, src, s->margin, rowy, e))
        return 2;
    for (int k = 0; k < s->o.copies; k++) {
        tl_rng r;
        tl_aug_seed_image(&r, s->o.seed, (uint64_t)k, (uint64_t)i);
        if (tl_aug_apply(s->pl, &r, src, dst, &s->ws[worker], e)) {
            tl_fail_prefix(e, "%s", s->d->items[i].path);
            return 2;
        }
        if (row >= 0) {
            int x = s->margin + s->gap + (k + 1) * (s->cell + s->margin);
            if (paste(s, worker, dst, x, rowy, e))
                return 2;
        }
        if (!s->o.outdir)
            continue;
        char *p = tl_aug_set_path(s, i, k);
        if (!p) {
            tl_fail(e, "out of memory");
            return 2;
        }
        int rc = s->o.jpeg ? tl_image_write_jpeg(p, dst, s->o.quality, e) : tl_image_write_png(p, dst, e);
        free(p);
        if (rc)
            return 2;
    }
    return 0;
}

static void run_range(void *ctx, int64_t b, int64_t end, int worker)
{
    tl_aug_set *s = ctx;
    for (int64_t t = b; t < end; t++) /* t: position in the block */
        s->status[t] = do_image(s, s->base + t, worker, &s->errs[t]);
}

int tl_aug_set_run(tl_aug_set *s, tl_pool *pool, tl_aug_set_fn fn, void *user, tl_progress_fn progress,
                   void *progress_user, tl_aug_set_stats *st, tl_err *e)
{
    memset(st, 0, sizeof *st);
    int64_t todo = s->o.outdir ? s->d->n : s->rows;
    double t0 = tl_now();
    int rc = TL_AUG_SET_DONE;
    for (int64_t b = 0; b < todo; b += s->block) {
        if (s->o.stop && *s->o.stop) {
            rc = TL_AUG_SET_STOPPED;
            break;
        }
        int64_t n = todo - b < s->block ? todo - b : s->block;
        s->base = b;
        tl_parallel_for(pool, n, 1, run_range, s);
        for (int64_t t = 0; t < n; t++) {
            const char *skipped = NULL;
            if (s->status[t] == 1 && s->o.skip_bad) {
                skipped = s->errs[t].msg;
                st->skipped++;
            } else if (s->status[t]) {
                *e = s->errs[t];
                st->seconds = tl_now() - t0;
                return -1;
            } else if (s->o.outdir) {
                st->files += s->o.copies;
            }
            st->images++;
            if (fn && fn(user, b + t, skipped, e)) {
                st->seconds = tl_now() - t0;
                return -1;
            }
        }
        if (progress)
            progress(progress_user, b + n, todo);
    }
    st->seconds = tl_now() - t0;
    return rc;
}

const tl_image *tl_aug_set_sheet(const tl_aug_set *s) { return s->rows ? &s->sheet : NULL; }

void tl_aug_set_free(tl_aug_set *s)
{
    if (!s)
        return;
    for (int w = 0; w < s->nw; w++) {
        if (s->ws)
            tl_aug_ws_free(&s->ws[w]);
        if (s->src)
            tl_image_free(&s->src[w]);
        if (s->dst)
            tl_image_free(&s->dst[w]);
        if (s->thumb)
            tl_image_free(&s->thumb[w]);
        if (s->pp)
            tl_preproc_ws_free(&s->pp[w]);
    }
    free(s->ws);
    free(s->src);
    free(s->dst);
    free(s->thumb);
    free(s->pp);
    free(s->status);
    free(s->errs);
    tl_image_free(&s->sheet);
    for (int64_t i = 0; s->stems && i < s->d->n; i++)
        free(s->stems[i]);
    free(s->stems);
    free(s);
}
