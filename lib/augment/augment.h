/* augment: random image augmentation for training, shared by tl-augment
 * (offline copies) and tl-finetune (on-line, on the worker threads).
 *
 * A pipeline is parsed once from a spec such as
 *     rrc(scale=0.08:1),hflip(p=0.5),rot(deg=15),jitter(b=0.4,c=0.4,s=0.4,h=0.1)
 * or a policy name (natural, medical, aerial, document, low-quality), and
 * is then read-only: many threads may apply it at once, each with its own
 * tl_rng and tl_aug_ws.
 *
 * Determinism: every random choice for one image comes from the rng passed
 * to tl_aug_apply. Seed it per image with tl_aug_seed_image(seed, epoch,
 * index) and the output depends only on (seed, epoch, index, image), never
 * on the thread that ran it or on the number of threads. */
#ifndef TL_AUGMENT_H
#define TL_AUGMENT_H

#include "core.h"
#include "io/image.h"

typedef struct tl_aug_pipeline tl_aug_pipeline;

typedef struct tl_aug_opts {
    /* The network input, w x h: rrc and crop default to it, and a pipeline
     * whose result is another size ends with the network's preprocessing
     * geometry (tl_preprocess_image with resize_size and resize_mode:
     * for a square crop, torchvision's Resize(resize_size) +
     * CenterCrop(size)). w = 0 keeps the image's own size (rrc then
     * resizes its crop back to the input's dimensions). h = 0: h = w. */
    int w, h;
    /* The resize box's shorter side (image.h), and resize's default;
     * 0 = round(min(w, h) * 256 / 224), torchvision's ImageNet ratio. */
    int resize_size;
    int resize_mode; /* TL_RESIZE_* of the final step (default crop) */
} tl_aug_opts;

/* 224 x 224, resize_size 256, crop. */
void tl_aug_opts_default(tl_aug_opts *o);

/* Parses a spec (ops and policy names separated by commas; a policy
 * expands in place, so "natural,noise(sigma=0.02)" is natural plus noise).
 * Errors name the column (1-based), e.g. "unknown op 'rott' at column 12".
 * NULL on failure. */
tl_aug_pipeline *tl_aug_parse(const char *spec, const tl_aug_opts *o, tl_err *e);
void tl_aug_free(tl_aug_pipeline *p);

/* The expanded pipeline with every parameter spelt out, in the spec
 * language (parses back to the same pipeline): for logs and provenance.
 * Returns the length it needs, as snprintf does. */
int tl_aug_describe(const tl_aug_pipeline *p, char *buf, size_t n);
int tl_aug_num_ops(const tl_aug_pipeline *p);
/* The output size (0 x 0 when the pipeline keeps the input's size). */
void tl_aug_output_dims(const tl_aug_pipeline *p, int *w, int *h);

/* Per-thread scratch, reused across images: zero-initialise it, free it
 * once with tl_aug_ws_free. Buffers grow to the largest image seen. */
typedef struct tl_aug_ws {
    tl_image a, b, c;          /* ping-pong images and a crop buffer */
    tl_preproc_ws pp;          /* resize scratch */
    float *f; size_t f_cap;    /* blur: horizontal pass, floats */
    unsigned char *jbuf; unsigned long jcap; /* JPEG bytes (malloc'ed: libjpeg may grow it) */
} tl_aug_ws;

void tl_aug_ws_free(tl_aug_ws *ws);

/* The rng stream of one image: independent streams for every (seed,
 * epoch, index). tl-augment uses epoch = copy number. */
void tl_aug_seed_image(tl_rng *r, uint64_t seed, uint64_t epoch, uint64_t index);

/* Applies the pipeline to in and leaves the result in out (grown as
 * needed; out must not be in). */
int tl_aug_apply(const tl_aug_pipeline *p, tl_rng *r, const tl_image *in, tl_image *out,
                 tl_aug_ws *ws, tl_err *e);

/* ---- what --list prints (constant tables) ---- */

typedef struct tl_aug_param_info {
    const char *name;
    const char *def;   /* default, in spec syntax */
    const char *help;
    /* for the parser: value type, field offset, allowed bounds */
    int type_;
    size_t off_;
    double lo_, hi_;
} tl_aug_param_info;

typedef struct tl_aug_op_info {
    const char *name;
    const char *aliases; /* NULL or e.g. "cutout" */
    const char *help;
    int nparams;
    const tl_aug_param_info *params;
} tl_aug_op_info;

typedef struct tl_aug_policy_info {
    const char *name;
    const char *spec;
    const char *why;
} tl_aug_policy_info;

int tl_aug_op_count(void);
const tl_aug_op_info *tl_aug_op_at(int i);
int tl_aug_policy_count(void);
const tl_aug_policy_info *tl_aug_policy_at(int i);

/* ---- single operations on RGB images, for tests and other callers ----
 * They follow torchvision's functional transforms on PIL images (PIL
 * integer conversions and blending), so results match bit for bit or
 * within one level where float rounding differs. In place unless noted. */
void tl_aug_hflip(tl_image *img);
void tl_aug_vflip(tl_image *img);
/* k quarter turns counter-clockwise (np.rot90); dst must not be src. */
int tl_aug_rot90(const tl_image *src, int k, tl_image *dst, tl_err *e);

enum { TL_AUG_FILL_CONSTANT, TL_AUG_FILL_REFLECT, TL_AUG_FILL_EDGE };
/* Rotates by deg counter-clockwise about the image centre, then shifts by
 * (tx, ty) pixels; same size; bilinear, pixel centres at +0.5. Samples
 * outside take the fill (a grey level for constant). dst must not be src. */
int tl_aug_warp(const tl_image *src, double deg, double tx, double ty, int fill, int value,
                tl_image *dst, tl_err *e);
/* Crops [x, x+w) x [y, y+h) (outside the image: 0) and resizes to
 * ow x oh with PIL's antialiased bilinear filter, as torchvision's
 * resized_crop. */
int tl_aug_resized_crop(const tl_image *src, int x, int y, int w, int h, int ow, int oh,
                        tl_image *dst, tl_aug_ws *ws, tl_err *e);

void tl_aug_brightness(tl_image *img, double f);
void tl_aug_contrast(tl_image *img, double f);
void tl_aug_saturation(tl_image *img, double f);
void tl_aug_hue(tl_image *img, double h); /* h in [-0.5, 0.5] */
void tl_aug_grey(tl_image *img);
/* Gaussian blur with reflect padding; k odd (0 = 2*ceil(3*sigma)+1). */
int tl_aug_blur(tl_image *img, int k, double sigma, tl_aug_ws *ws, tl_err *e);
/* Sets the rectangle to value (0..255), or to random bytes if value < 0. */
void tl_aug_erase(tl_image *img, int x, int y, int w, int h, int value, tl_rng *r);
/* Adds Gaussian noise of standard deviation sigma (on the 0..1 scale). */
void tl_aug_noise(tl_image *img, double sigma, tl_rng *r);
/* JPEG-encodes at quality 1..100 in memory and decodes back into dst. */
int tl_aug_jpeg(const tl_image *src, int quality, tl_image *dst, tl_aug_ws *ws, tl_err *e);

#endif
