/* Running a parsed pipeline on one image: every random draw comes from
 * the caller's rng, in op order, so an image's result depends only on its
 * rng stream. Images ping-pong between two workspace buffers; in-place ops
 * first copy the (read-only) input once. */
#include "aug_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tl_aug_ws_free(tl_aug_ws *ws)
{
    tl_image_free(&ws->a);
    tl_image_free(&ws->b);
    tl_image_free(&ws->c);
    tl_preproc_ws_free(&ws->pp);
    tl_free(ws->f);
    free(ws->jbuf);
    memset(ws, 0, sizeof *ws);
}

void tl_aug_seed_image(tl_rng *r, uint64_t seed, uint64_t epoch, uint64_t index)
{
    tl_rng t;
    tl_rng_seed_stream(&t, seed, epoch);
    tl_rng_seed_stream(r, tl_rng_u64(&t), index);
}

static double uni(tl_rng *r, aug_range g) { return g.lo + (g.hi - g.lo) * (double)tl_rng_uniform(r); }
static int uni_int(tl_rng *r, aug_range g)
{
    return (int)g.lo + (int)tl_rng_below(r, (uint64_t)(g.hi - g.lo) + 1);
}

static void jitter(const aug_op *op, tl_rng *r, tl_image *img)
{
    /* ColorJitter.get_params: a random order, then the four factors. */
    int64_t order[4] = { 0, 1, 2, 3 };
    tl_rng_shuffle(r, order, 4);
    double f[4] = { uni(r, op->b), uni(r, op->c), uni(r, op->s), uni(r, op->h) };
    for (int i = 0; i < 4; i++) {
        switch (order[i]) {
        case 0: if (op->b.lo != 1 || op->b.hi != 1) tl_aug_brightness(img, f[0]); break;
        case 1: if (op->c.lo != 1 || op->c.hi != 1) tl_aug_contrast(img, f[1]); break;
        case 2: if (op->s.lo != 1 || op->s.hi != 1) tl_aug_saturation(img, f[2]); break;
        default: if (op->h.lo != 0 || op->h.hi != 0) tl_aug_hue(img, f[3]); break;
        }
    }
}

/* torchvision RandomErasing.get_params; no box after 10 tries: no-op. */
static void erase(const aug_op *op, tl_rng *r, tl_image *img)
{
    double area = (double)img->w * img->h;
    double lr0 = log(op->ratio.lo), lr1 = log(op->ratio.hi);
    for (int t = 0; t < 10; t++) {
        double ea = area * uni(r, op->scale);
        double aspect = exp(lr0 + (lr1 - lr0) * tl_rng_uniform(r));
        int h = (int)tl__aug_round_even(sqrt(ea * aspect));
        int w = (int)tl__aug_round_even(sqrt(ea / aspect));
        if (!(h < img->h && w < img->w))
            continue;
        int y = (int)tl_rng_below(r, (uint64_t)(img->h - h + 1));
        int x = (int)tl_rng_below(r, (uint64_t)(img->w - w + 1));
        tl_aug_erase(img, x, y, w, h, op->value, r);
        return;
    }
}

int tl_aug_apply(const tl_aug_pipeline *p, tl_rng *r, const tl_image *in, tl_image *out,
                 tl_aug_ws *ws, tl_err *e)
{
    if (!in || !in->px || in->w <= 0 || in->h <= 0)
        return tl_fail(e, "empty image");
    if (out == in)
        return tl_fail(e, "augmentation output must not be its input");
    const tl_image *cur = in;
#define DST (cur == &ws->a ? &ws->b : &ws->a)
#define MUT() do { if (cur == in) { if (tl__aug_copy(in, &ws->a, e)) return -1; cur = &ws->a; } } while (0)
    for (int i = 0; i < p->nops; i++) {
        const aug_op *op = &p->ops[i];
        if (op->p < 1 && !(tl_rng_uniform(r) < op->p))
            continue;
        tl_image *dst = DST, *m;
        int rc = 0;
        switch (op->kind) {
        case AUG_RRC:
            rc = tl__aug_rrc(op, r, cur, dst, ws, e);
            cur = dst;
            break;
        case AUG_HFLIP: MUT(); tl_aug_hflip((tl_image *)cur); break;
        case AUG_VFLIP: MUT(); tl_aug_vflip((tl_image *)cur); break;
        case AUG_ROT:
            rc = tl_aug_warp(cur, uni(r, op->deg), 0, 0, op->fill, op->value, dst, e);
            cur = dst;
            break;
        case AUG_ROT90: {
            int k = uni_int(r, op->k);
            if (!k)
                break;
            rc = tl_aug_rot90(cur, k, dst, e);
            cur = dst;
            break;
        }
        case AUG_TRANSLATE: {
            /* RandomAffine: shifts rounded to whole pixels */
            double tx = (double)tl__aug_round_even(uni(r, op->tx) * cur->w);
            double ty = (double)tl__aug_round_even(uni(r, op->ty) * cur->h);
            rc = tl_aug_warp(cur, 0, tx, ty, op->fill, op->value, dst, e);
            cur = dst;
            break;
        }
        case AUG_JITTER: MUT(); jitter(op, r, (tl_image *)cur); break;
        case AUG_GREY: MUT(); tl_aug_grey((tl_image *)cur); break;
        case AUG_NOISE: {
            double s = uni(r, op->sigma);
            MUT();
            tl_aug_noise((tl_image *)cur, s, r);
            break;
        }
        case AUG_BLUR: {
            double s = uni(r, op->sigma);
            MUT();
            m = (tl_image *)cur;
            rc = tl_aug_blur(m, op->ksize, s, ws, e);
            break;
        }
        case AUG_JPEG:
            rc = tl_aug_jpeg(cur, uni_int(r, op->quality), dst, ws, e);
            cur = dst;
            break;
        case AUG_ERASE: MUT(); erase(op, r, (tl_image *)cur); break;
        case AUG_RESIZE:
            if (!op->size)
                break;
            rc = tl__aug_resize_short(cur, op->size, dst, ws, e);
            cur = dst;
            break;
        case AUG_CROP:
            if (!op->size)
                break;
            rc = tl__aug_center_crop(cur, op->size, op->size_h, dst, e);
            cur = dst;
            break;
        default:
            return tl_fail(e, "unknown augmentation op %d", op->kind);
        }
        if (rc)
            return -1;
    }
    if (p->w > 0 && (cur->w != p->w || cur->h != p->h)) {
        tl_image *dst = DST;
        tl_preproc pp;
        tl_preproc_default(&pp);
        pp.input_w = p->w;
        pp.input_h = p->h;
        pp.resize_size = p->resize_size;
        pp.resize_mode = p->resize_mode;
        if (tl_preprocess_image(cur, &pp, dst, &ws->pp, e))
            return -1;
        cur = dst;
    }
#undef DST
#undef MUT
    return tl__aug_copy(cur, out, e);
}
