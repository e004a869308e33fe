/* Image decoding (JPEG, PNG, BMP, PPM/PGM, chosen by magic bytes) through
 * tl_image_decode_mem, then the torchvision preprocessing of what came out,
 * so odd shapes (1 x 5000, 3 x 3) reach the resizer too. */
#include "fuzz_util.h"
#include "io/image.h"
#include "io/image_internal.h"

/* Lower than the library default so a header claiming a big image does not
 * spend seconds decoding grey; the size check itself is the same code. */
#define FUZZ_MAX_PIXELS ((size_t)1 << 22)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tl_image img = {0};
    tl_err e = {0};
    int mem_ok = tl_image_decode_mem(data, size, &img, FUZZ_MAX_PIXELS, &e) == 0;
    if (!mem_ok)
        img.w = img.h = 0;
    if (mem_ok) {
        FUZZ_ASSERT(img.w > 0 && img.h > 0 && (size_t)img.w * (size_t)img.h <= FUZZ_MAX_PIXELS);
        FUZZ_ASSERT(img.cap >= (size_t)img.w * (size_t)img.h * 3);
        /* every pixel was written: ASan/MSan-style reads catch stale bytes
         * only with MSan, so at least touch them all */
        unsigned sum = 0;
        for (size_t i = 0; i < (size_t)img.w * (size_t)img.h * 3; i++)
            sum += img.px[i];
        (void)sum;
        if ((size_t)img.w * (size_t)img.h <= 65536) {
            tl_preproc pp;
            tl_preproc_default(&pp);
            pp.input_w = 16;
            pp.input_h = 12 + img.px[1] % 5;
            pp.resize_size = 18;
            pp.interp = img.px[0] % 3;
            pp.resize_mode = img.px[2] % 3;
            static float out[3 * 16 * 16];
            tl_preproc_ws ws = {0};
            tl_err e2 = {0};
            if (tl_preprocess(&img, &pp, out, &ws, &e2))
                FUZZ_CHECK_MSG(e2);
            tl_preproc_ws_free(&ws);
        }
    } else {
        FUZZ_CHECK_MSG(e);
    }
    /* the header probe that guards files and streams, and the file path
     * through it: a size it reports is the size the decoder refuses or
     * decodes */
    long long w = 0, h = 0;
    int per_px = 0;
    const char *what = NULL;
    int pr = tl__image_probe(data, size, &w, &h, &per_px, &what);
    FUZZ_ASSERT(pr >= -2 && pr <= 1);
    if (pr == 1)
        FUZZ_ASSERT(per_px > 0 && what); /* a size may be negative (BMP): the check refuses it */
    const char *path = fuzz_memfd_path(data, size);
    tl_image fimg = {0};
    tl_err fe = {0};
    int file_ok = path && tl_image_decode_file(path, &fimg, FUZZ_MAX_PIXELS, &fe) == 0;
    if (path && !file_ok)
        FUZZ_CHECK_MSG(fe);
    /* below 16 MiB the header check never refuses what the decoder takes */
    if (path && img.w > 0)
        FUZZ_ASSERT(file_ok && fimg.w == img.w && fimg.h == img.h &&
                    !memcmp(fimg.px, img.px, (size_t)img.w * (size_t)img.h * 3));
    tl_image_free(&fimg);
    tl_image_free(&img);
    return 0;
}
