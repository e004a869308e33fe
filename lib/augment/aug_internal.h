/* Shared by lib/augment: the parsed form of an op and the pipeline. */
#ifndef TL_AUG_INTERNAL_H
#define TL_AUG_INTERNAL_H

#include "augment.h"

enum {
    AUG_RRC, AUG_HFLIP, AUG_VFLIP, AUG_ROT, AUG_ROT90, AUG_TRANSLATE, AUG_JITTER, AUG_GREY,
    AUG_NOISE, AUG_BLUR, AUG_JPEG, AUG_ERASE, AUG_RESIZE, AUG_CROP, AUG_NKINDS
};

typedef struct aug_range {
    double lo, hi;
} aug_range;

/* One field per parameter of any op; each op reads its own. */
typedef struct aug_op {
    int kind;
    double p;
    int size, size_h;      /* rrc, crop: output width and height; resize: the shorter side; 0 = keep */
    aug_range scale, ratio; /* rrc, erase */
    aug_range deg;         /* rot */
    aug_range k;           /* rot90: quarter turns */
    aug_range tx, ty;      /* translate: fractions of width and height */
    int fill, value;       /* rot, translate: fill mode and grey level; erase: value (-1 random) */
    aug_range b, c, s, h;  /* jitter: factor ranges (hue: shift range) */
    aug_range sigma;       /* noise, blur */
    int ksize;             /* blur: 0 = from sigma */
    aug_range quality;     /* jpeg */
} aug_op;

struct tl_aug_pipeline {
    aug_op *ops;
    int nops, cap;
    int w, h, resize_size, resize_mode; /* the final geometry when w > 0 (tl_preprocess_image) */
};

/* Geometry helpers used by the pipeline. */
int tl__aug_resize_short(const tl_image *src, int s, tl_image *dst, tl_aug_ws *ws, tl_err *e);
int tl__aug_center_crop(const tl_image *src, int w, int h, tl_image *dst, tl_err *e);
int tl__aug_rrc(const aug_op *op, tl_rng *r, const tl_image *src, tl_image *dst, tl_aug_ws *ws,
                tl_err *e);
/* Copies an image (dst grown as needed). */
int tl__aug_copy(const tl_image *src, tl_image *dst, tl_err *e);
/* Python's round(): half to even. */
long tl__aug_round_even(double x);

#endif
