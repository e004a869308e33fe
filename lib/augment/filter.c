/* Pixel-level ops: Gaussian blur (torchvision's gaussian_blur: float
 * kernel, reflect padding, rounding half to even), additive Gaussian noise
 * and random erasing. */
#include "aug_internal.h"

#include <math.h>
#include <string.h>

/* numpy/torch 'reflect' (no edge repeat), for any offset. */
static int reflect(long i, int n)
{
    if (n == 1)
        return 0;
    long m = 2L * (n - 1);
    if (i < 0)
        i = -i;
    i %= m;
    return (int)(i >= n ? m - i : i);
}

int tl_aug_blur(tl_image *img, int k, double sigma, tl_aug_ws *ws, tl_err *e)
{
    if (!(sigma > 0))
        return tl_fail(e, "blur sigma must be positive");
    if (k <= 0)
        k = 2 * (int)ceil(3.0 * sigma) + 1;
    if (k % 2 == 0)
        return tl_fail(e, "blur kernel size %d is not odd", k);
    if (k > 1023)
        k = 1023;
    int half = k / 2, W = img->w, H = img->h;
    float kern[1023];
    float sum = 0, sg = (float)sigma;
    for (int i = 0; i < k; i++) {
        float x = (float)(i - half) / sg;
        kern[i] = expf(-0.5f * x * x);
        sum += kern[i];
    }
    for (int i = 0; i < k; i++)
        kern[i] /= sum;
    /* scratch: the horizontal pass, one accumulator row, and the
     * reflected column and row indices */
    size_t stride = (size_t)W * 3;
    size_t need = stride * H + stride + (size_t)(W + k) + (size_t)(H + k);
    if (need > ws->f_cap) {
        tl_free(ws->f);
        ws->f = tl_alloc_array(need, sizeof(float));
        ws->f_cap = ws->f ? need : 0;
        if (!ws->f)
            return tl_fail(e, "out of memory");
    }
    float *hp = ws->f, *acc = hp + stride * H;
    int *xi = (int *)(acc + stride), *yi = xi + W + k;
    for (int i = 0; i < W + k - 1; i++)
        xi[i] = reflect(i - half, W);
    for (int i = 0; i < H + k - 1; i++)
        yi[i] = reflect(i - half, H);
    for (int y = 0; y < H; y++) {
        const uint8_t *row = img->px + (size_t)y * stride;
        float *o = hp + (size_t)y * stride;
        for (int x = 0; x < W; x++) {
            float a0 = 0, a1 = 0, a2 = 0;
            for (int i = 0; i < k; i++) {
                const uint8_t *q = row + (size_t)xi[x + i] * 3;
                a0 += kern[i] * q[0];
                a1 += kern[i] * q[1];
                a2 += kern[i] * q[2];
            }
            o[3 * x] = a0;
            o[3 * x + 1] = a1;
            o[3 * x + 2] = a2;
        }
    }
    for (int y = 0; y < H; y++) {
        for (size_t c = 0; c < stride; c++)
            acc[c] = 0;
        for (int i = 0; i < k; i++) {
            const float *src = hp + (size_t)yi[y + i] * stride;
            float kv = kern[i];
            for (size_t c = 0; c < stride; c++)
                acc[c] += kv * src[c];
        }
        uint8_t *o = img->px + (size_t)y * stride;
        for (size_t c = 0; c < stride; c++) {
            float v = nearbyintf(acc[c]);
            o[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    return 0;
}

void tl_aug_noise(tl_image *img, double sigma, tl_rng *r)
{
    /* The sum of the 8 bytes of one random word (Irwin-Hall, n = 8): mean
     * 1020, sd sqrt(8 * (256^2 - 1) / 12) = 209.0215. Its CDF is within 0.0035
     * of the normal one, it is bounded at 4.9 sigma, and it is about thirty
     * times cheaper than Box-Muller, which made noise the slowest op. */
    size_t n = (size_t)img->w * img->h * 3;
    float scale = (float)(sigma * 255.0 / 209.0215), off = 1020.0f;
    for (size_t i = 0; i < n; i++) {
        uint64_t b = tl_rng_u64(r);
        uint64_t pairs = (b & 0x00ff00ff00ff00ffULL) + ((b >> 8) & 0x00ff00ff00ff00ffULL);
        pairs = (pairs & 0x0000ffff0000ffffULL) + ((pairs >> 16) & 0x0000ffff0000ffffULL);
        int sum = (int)((pairs & 0xffffffffULL) + (pairs >> 32));
        float v = floorf(img->px[i] + ((float)sum - off) * scale + 0.5f);
        img->px[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

void tl_aug_erase(tl_image *img, int x, int y, int w, int h, int value, tl_rng *r)
{
    if (x < 0) { w += x; x = 0; }
    if (y < 0) { h += y; y = 0; }
    if (x + w > img->w) w = img->w - x;
    if (y + h > img->h) h = img->h - y;
    if (w <= 0 || h <= 0)
        return;
    for (int j = 0; j < h; j++) {
        uint8_t *o = img->px + ((size_t)(y + j) * img->w + x) * 3;
        size_t n = (size_t)w * 3;
        if (value >= 0) {
            memset(o, value > 255 ? 255 : value, n);
            continue;
        }
        for (size_t i = 0; i < n; i += 8) {
            uint64_t b = tl_rng_u64(r);
            for (size_t t = 0; t < 8 && i + t < n; t++, b >>= 8)
                o[i + t] = (uint8_t)b;
        }
    }
}
