/* Format dispatch by magic bytes, the shared size check, and file input
 * (mapped, so decoding a file allocates nothing but the pixel buffer). */
#include "image_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* JPEG: markers from SOI to the first frame header (SOFn). */
static int jpeg_probe(const uint8_t *b, size_t n, long long *w, long long *h)
{
    size_t i = 2;
    for (;;) {
        if (i + 4 > n)
            return 0;
        if (b[i] != 0xFF) { /* libjpeg skips stray bytes before a marker */
            i++;
            continue;
        }
        int m = b[i + 1];
        if (m == 0xFF) { /* fill byte */
            i++;
            continue;
        }
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { /* no length */
            i += 2;
            continue;
        }
        if (m == 0xD9 || m == 0xDA)
            return -1; /* end or scan before any frame header */
        size_t len = (size_t)b[i + 2] << 8 | b[i + 3];
        if (len < 2)
            return -1;
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (i + 9 > n)
                return 0;
            *h = (long long)b[i + 5] << 8 | b[i + 6];
            *w = (long long)b[i + 7] << 8 | b[i + 8];
            return 1;
        }
        i += 2 + len;
    }
}

int tl__image_probe(const uint8_t *b, size_t n, long long *w, long long *h, int *per_px, const char **what)
{
    if (n < 2)
        return 0;
    if (b[0] == 0xFF && b[1] == 0xD8) {
        /* a progressive JPEG of many scans can exceed raw size; 8 bytes a
         * pixel is far beyond any real file */
        *what = "JPEG";
        *per_px = 8;
        return jpeg_probe(b, n, w, h);
    }
    if (b[0] == 0x89 && (n < 8 || !memcmp(b, "\x89PNG\r\n\x1a\n", 8))) {
        *what = "PNG";
        *per_px = 9; /* 16-bit RGBA, a filter byte per row, zlib's worst case */
        if (n < 24)
            return 0;
        if (memcmp(b + 12, "IHDR", 4))
            return -1;
        *w = be32(b + 16);
        *h = be32(b + 20);
        return 1;
    }
    if (b[0] == 'B' && b[1] == 'M') {
        *what = "BMP";
        *per_px = 4;
        if (n < 26)
            return 0;
        uint32_t hsize = le32(b + 14);
        if (hsize == 12) {
            *w = b[18] | b[19] << 8;
            *h = b[20] | b[21] << 8;
        } else {
            *w = (int32_t)le32(b + 18);
            *h = (int32_t)le32(b + 22);
            if (*h < 0)
                *h = -*h;
        }
        return 1;
    }
    if (b[0] == 'P' && b[1] >= '1' && b[1] <= '6') {
        *what = "PNM";
        /* plain (ASCII) samples: up to "65535 " for each of 3 channels */
        *per_px = b[1] <= '3' ? 24 : 6;
        return tl__pnm_probe(b, n, w, h);
    }
    return -2;
}

/* The most bytes an encoded image may have: 8 a pixel at the pixel limit
 * plus 1 MiB of headers; once its header is read, per_px a pixel of the
 * size it claims plus 16 MiB of metadata (EXIF, ICC profiles, text). */
static size_t byte_limit(size_t max_pixels)
{
    return (max_pixels ? max_pixels : TL_IMAGE_MAX_PIXELS) * 8 + (1 << 20);
}

/* Once the header has arrived: refuses too many pixels, tightens *limit
 * to the size claimed. Returns 1 when settled (the header read, or none
 * we can read: the decoder will judge), 0 while more bytes are needed,
 * -1 on an error. */
static int check_header(const uint8_t *buf, size_t n, size_t max_pixels, size_t *limit, tl_err *e)
{
    long long w, h;
    int per_px;
    const char *what;
    int r = tl__image_probe(buf, n, &w, &h, &per_px, &what);
    if (r == 0)
        return 0;
    if (r == -2) /* no format we know: the decoder says so from the magic alone */
        return n < 16 ? 0 : tl_image_decode_mem(buf, n, &(tl_image){0}, max_pixels, e) < 0 ? -1 : 1;
    if (r < 0)
        return 1;
    if (tl__check_size(w, h, max_pixels, what, e) < 0)
        return -1;
    size_t claim = (size_t)w * (size_t)h * (size_t)per_px + (16u << 20);
    if (claim < *limit)
        *limit = claim;
    return 1;
}

/* Non-regular files (pipes, devices) are read into a buffer instead. The
 * header is checked as soon as it has arrived: a stream claiming too many
 * pixels, or carrying more bytes than its size allows, is refused without
 * reading the rest; one that is no image at all, after its first bytes. */
static int decode_stream(int fd, tl_image *img, size_t max_pixels, tl_err *e)
{
    size_t limit = byte_limit(max_pixels);
    int known = 0;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = tl_alloc(cap);
    if (!buf)
        return tl_fail(e, "out of memory");
    for (;;) {
        if (n == cap || n > limit) {
            if (n > limit || cap >= limit) {
                tl_free(buf);
                return tl_fail(e, "image stream larger than %zu bytes%s", limit,
                               known ? " (for the size its header claims)" : "");
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
        if (!known && (known = check_header(buf, n, max_pixels, &limit, e)) < 0) {
            tl_free(buf);
            return -1;
        }
    }
    int rc = tl_image_decode_mem(buf, n, img, max_pixels, e);
    tl_free(buf);
    return rc;
}

/* Reads a regular file into the image's reusable file buffer, then
 * decodes it. A file that shrinks while being read is simply short
 * (a clean "truncated" error), unlike a mapping, which would fault. The
 * header is checked after the first 64 KiB, before reading the rest. */
static int read_whole(int fd, size_t size, tl_image *img, size_t max_pixels, tl_err *e)
{
    size_t limit = byte_limit(max_pixels);
    if (size > limit)
        return tl_fail(e, "file of %zu bytes is larger than any image within the pixel limit", size);
    size_t n = 0, first = size < (64u << 10) ? size : (64u << 10), want = first;
    int known = 0;
    for (;;) {
        /* the buffer grows to the whole file only once the header passed */
        if (want > img->file_cap) {
            uint8_t *nb = malloc(want); /* not zero-filled: every byte used is read */
            if (!nb)
                return tl_fail(e, "out of memory for a %zu-byte file", want);
            if (n)
                memcpy(nb, img->file, n);
            tl_free(img->file);
            img->file = nb;
            img->file_cap = want;
        }
        if (n == want) {
            if (known || want == size)
                break;
            if ((known = check_header(img->file, n, max_pixels, &limit, e)) < 0)
                return -1;
            if (size > limit)
                return tl_fail(e, "file of %zu bytes is larger than the image its header describes can be", size);
            known = 1;
            want = size;
            continue;
        }
        ssize_t r = read(fd, img->file + n, want - n);
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
