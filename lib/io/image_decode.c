/* Format dispatch by magic bytes, the shared size check, and file input
 * (mapped, so decoding a file allocates nothing but the pixel buffer). */
#include "image_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tl__grow(void **p, size_t *cap, size_t need, tl_err *e)
{
    if (*p && *cap >= need)
        return 0;
    /* grow by half again so slowly rising sizes do not realloc each time */
    size_t want = need + need / 2;
    if (want < need)
        want = need;
    void *q = tl_alloc(want);
    if (!q)
        return tl_fail(e, "out of memory allocating %zu bytes", want);
    tl_free(*p);
    *p = q;
    *cap = want;
    return 0;
}

int tl_image_alloc(tl_image *img, int w, int h, tl_err *e)
{
    if (w <= 0 || h <= 0)
        return tl_fail(e, "invalid image size %dx%d", w, h);
    size_t need = (size_t)w * (size_t)h * 3;
    void *p = img->px;
    if (tl__grow(&p, &img->cap, need, e) < 0)
        return -1;
    img->px = p;
    img->w = w;
    img->h = h;
    return 0;
}

int tl__check_size(long long w, long long h, size_t max_pixels, const char *what, tl_err *e)
{
    if (!max_pixels)
        max_pixels = TL_IMAGE_MAX_PIXELS;
    if (w <= 0 || h <= 0)
        return tl_fail(e, "%s image has zero or negative size %lldx%lld", what, w, h);
    if (w > 0x7fffffffLL / 4 || h > 0x7fffffffLL / 4 ||
        (unsigned long long)w * (unsigned long long)h > max_pixels)
        return tl_fail(e, "%s image is %lldx%lld, above the limit of %zu pixels (--max-pixels)", what, w, h,
                       max_pixels);
    return 0;
}

int tl__image_prepare(tl_image *img, long long w, long long h, size_t max_pixels,
                      const char *what, tl_err *e)
{
    if (tl__check_size(w, h, max_pixels, what, e) < 0)
        return -1;
    return tl_image_alloc(img, (int)w, (int)h, e);
}

void tl_image_free(tl_image *img)
{
    if (!img)
        return;
    tl_free(img->px);
    tl_free(img->file);
    img->px = img->file = NULL;
    img->cap = img->file_cap = 0;
    img->w = img->h = 0;
}

int tl_image_decode_mem(const uint8_t *buf, size_t n, tl_image *img, size_t max_pixels, tl_err *e)
{
    if (!buf || n == 0)
        return tl_fail(e, "empty image data");
    if (n >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
        return tl__decode_jpeg(buf, n, img, max_pixels, e);
    if (n >= 8 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8))
        return tl__decode_png(buf, n, img, max_pixels, e);
    if (n >= 2 && buf[0] == 'B' && buf[1] == 'M')
        return tl__decode_bmp(buf, n, img, max_pixels, e);
    if (n >= 2 && buf[0] == 'P' && buf[1] >= '1' && buf[1] <= '6')
        return tl__decode_pnm(buf, n, img, max_pixels, e);
    if (n >= 6 && (!memcmp(buf, "GIF87a", 6) || !memcmp(buf, "GIF89a", 6)))
        return tl_fail(e, "unsupported image format (GIF)");
    if (n >= 12 && !memcmp(buf, "RIFF", 4) && !memcmp(buf + 8, "WEBP", 4))
        return tl_fail(e, "unsupported image format (WebP)");
    if (n >= 4 && (!memcmp(buf, "II*\0", 4) || !memcmp(buf, "MM\0*", 4)))
        return tl_fail(e, "unsupported image format (TIFF)");
    return tl_fail(e, "unknown image format (not JPEG, PNG, BMP or PPM/PGM)");
}

const char *tl__strerror(int err, char *buf, size_t n)
{
    snprintf(buf, n, "%s", strerror(err));
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}

static int fail_errno(tl_err *e, int err)
{
    char msg[128];
    return tl_fail(e, "%s", tl__strerror(err, msg, sizeof msg));
}

/* Non-regular files (pipes, devices) are read into a buffer instead. */
static int decode_stream(int fd, tl_image *img, size_t max_pixels, tl_err *e)
{
    /* Bounded: a stream cannot legitimately exceed a raw image at the
     * pixel limit plus headers. */
    size_t limit = (max_pixels ? max_pixels : TL_IMAGE_MAX_PIXELS) * 8 + (1 << 20);
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = tl_alloc(cap);
    if (!buf)
        return tl_fail(e, "out of memory");
    for (;;) {
        if (n == cap) {
            if (cap >= limit) {
                tl_free(buf);
                return tl_fail(e, "image stream larger than %zu bytes", limit);
            }
            uint8_t *nb = tl_alloc(cap * 2);
            if (!nb) {
                tl_free(buf);
                return tl_fail(e, "out of memory");
            }
            memcpy(nb, buf, n);
            tl_free(buf);
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            tl_free(buf);
            return fail_errno(e, err);
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    int rc = tl_image_decode_mem(buf, n, img, max_pixels, e);
    tl_free(buf);
    return rc;
}

/* Reads a regular file into the image's reusable file buffer, then
 * decodes it. A file that shrinks while being read is simply short
 * (a clean "truncated" error), unlike a mapping, which would fault. */
static int read_whole(int fd, size_t size, tl_image *img, size_t max_pixels, tl_err *e)
{
    size_t limit = (max_pixels ? max_pixels : TL_IMAGE_MAX_PIXELS) * 8 + (1 << 20);
    if (size > limit)
        return tl_fail(e, "file of %zu bytes is larger than any image within the pixel limit", size);
    if (size > img->file_cap) {
        uint8_t *nb = tl_alloc(size);
        if (!nb)
            return tl_fail(e, "out of memory");
        tl_free(img->file);
        img->file = nb;
        img->file_cap = size;
    }
    size_t n = 0;
    while (n < size) {
        ssize_t r = read(fd, img->file + n, size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return fail_errno(e, errno);
        if (r == 0)
            break;
        n += (size_t)r;
    }
    return tl_image_decode_mem(img->file, n, img, max_pixels, e);
}

int tl_image_decode_file(const char *path, tl_image *img, size_t max_pixels, tl_err *e)
{
    int rc;
    if (!strcmp(path, "-")) {
        rc = decode_stream(0, img, max_pixels, e);
        return rc < 0 ? tl_fail_prefix(e, "standard input") : rc;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        rc = fail_errno(e, errno);
    } else if (fstat(fd, &st) < 0) {
        rc = fail_errno(e, errno);
    } else if (S_ISDIR(st.st_mode)) {
        rc = tl_fail(e, "is a directory");
    } else if (!S_ISREG(st.st_mode)) {
        rc = decode_stream(fd, img, max_pixels, e);
    } else if (st.st_size == 0) {
        rc = tl_fail(e, "empty file");
    } else {
        rc = read_whole(fd, (size_t)st.st_size, img, max_pixels, e);
    }
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        tl_fail_prefix(e, "%s", path);
    return rc;
}
