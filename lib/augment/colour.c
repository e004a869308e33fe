/* Colour ops with torchvision's definitions on PIL images, whose integer
 * arithmetic we follow so results match PIL bit for bit: luma is PIL's
 * fixed-point ITU-R 601 (convert("L")), enhancement is Image.blend of a
 * degenerate image and the original (truncating), and hue goes through
 * PIL's 8-bit HSV. */
#include "aug_internal.h"

#include <math.h>

static inline int luma(const uint8_t *p)
{
    return (int)(((uint32_t)p[0] * 19595 + (uint32_t)p[1] * 38470 + (uint32_t)p[2] * 7471 + 0x8000) >> 16);
}

/* PIL's ImagingBlend for one sample: degenerate a, image b. */
static inline uint8_t blend(int a, int b, double alpha)
{
    if (alpha >= 0 && alpha <= 1.0)
        return (uint8_t)(a + alpha * (b - a));
    float t = (float)(a + alpha * (b - a));
    return t <= 0.0f ? 0 : t >= 255.0f ? 255 : (uint8_t)t;
}

/* When the degenerate value is constant a lookup table does the work. */
static void blend_const(tl_image *img, int a, double f)
{
    uint8_t lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = blend(a, v, f);
    size_t n = (size_t)img->w * img->h * 3;
    for (size_t i = 0; i < n; i++)
        img->px[i] = lut[img->px[i]];
}

void tl_aug_brightness(tl_image *img, double f) { blend_const(img, 0, f); }

void tl_aug_contrast(tl_image *img, double f)
{
    size_t n = (size_t)img->w * img->h;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (uint64_t)luma(img->px + 3 * i);
    /* ImageStat mean of the L image, rounded as ImageEnhance.Contrast does */
    int mean = n ? (int)((double)sum / (double)n + 0.5) : 0;
    blend_const(img, mean, f);
}

void tl_aug_saturation(tl_image *img, double f)
{
    size_t n = (size_t)img->w * img->h;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = img->px + 3 * i;
        int l = luma(p);
        p[0] = blend(l, p[0], f);
        p[1] = blend(l, p[1], f);
        p[2] = blend(l, p[2], f);
    }
}

void tl_aug_grey(tl_image *img)
{
    size_t n = (size_t)img->w * img->h;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = img->px + 3 * i;
        p[0] = p[1] = p[2] = (uint8_t)luma(p);
    }
}

static inline int clip8(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

/* PIL's rgb2hsv_row (after colorsys), 8 bits per channel. */
static void rgb_to_hsv8(const uint8_t *p, int *h, int *s, int *v)
{
    int r = p[0], g = p[1], b = p[2];
    int maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
    int minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
    *v = maxc;
    if (minc == maxc) {
        *h = *s = 0;
        return;
    }
    float cr = (float)(maxc - minc);
    float sf = cr / (float)maxc;
    float rc = (float)(maxc - r) / cr, gc = (float)(maxc - g) / cr, bc = (float)(maxc - b) / cr;
    float hf;
    if (r == maxc)
        hf = bc - gc;
    else if (g == maxc)
        hf = (float)(2.0 + rc - bc);
    else
        hf = (float)(4.0 + gc - rc);
    hf = (float)fmod(hf / 6.0 + 1.0, 1.0);
    *h = clip8((int)(hf * 255.0));
    *s = clip8((int)(sf * 255.0));
}

/* PIL's hsv2rgb. */
static void hsv8_to_rgb(int h, int s, int v, uint8_t *p)
{
    if (s == 0) {
        p[0] = p[1] = p[2] = (uint8_t)v;
        return;
    }
    int i = (int)floor((float)h * 6.0 / 255.0);
    float f = (float)((float)h * 6.0 / 255.0 - (float)i);
    float fs = (float)(((float)s) / 255.0);
    uint8_t up = (uint8_t)clip8((int)round((float)v * (1.0 - fs)));
    uint8_t uq = (uint8_t)clip8((int)round((float)v * (1.0 - fs * f)));
    uint8_t ut = (uint8_t)clip8((int)round((float)v * (1.0 - fs * (1.0 - f))));
    uint8_t uv = (uint8_t)v;
    switch (i % 6) {
    case 0: p[0] = uv; p[1] = ut; p[2] = up; break;
    case 1: p[0] = uq; p[1] = uv; p[2] = up; break;
    case 2: p[0] = up; p[1] = uv; p[2] = ut; break;
    case 3: p[0] = up; p[1] = uq; p[2] = uv; break;
    case 4: p[0] = ut; p[1] = up; p[2] = uv; break;
    default: p[0] = uv; p[1] = up; p[2] = uq; break;
    }
}

void tl_aug_hue(tl_image *img, double hf)
{
    /* torchvision: np.uint8(hue_factor * 255) added with uint8 wrap-around;
     * the float-to-int conversion truncates toward zero. */
    int shift = (int)(hf * 255.0);
    shift = ((shift % 256) + 256) % 256;
    /* Even a zero shift goes through the lossy 8-bit HSV round trip, as
     * in torchvision; the pipeline skips hue when its range is 0:0. */
    size_t n = (size_t)img->w * img->h;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = img->px + 3 * i;
        int h, s, v;
        rgb_to_hsv8(p, &h, &s, &v);
        hsv8_to_rgb((h + shift) & 255, s, v, p);
    }
}
