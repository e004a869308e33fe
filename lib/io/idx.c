#include "idx.h"
#include "image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static int read_all(gzFile f, void *buf, size_t n, const char *path, tl_err *e)
{
    uint8_t *p = buf;
    while (n) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, p, chunk);
        if (got <= 0)
            return tl_fail(e, "%s: truncated IDX data", path);
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

static uint32_t be32(const uint8_t *b) { return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]; }

/* gzread passes plain files through unchanged. */
static gzFile open_gz(const char *path, tl_err *e)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        tl_fail(e, "%s: cannot open", path);
    return f;
}

int tl_idx_load(const char *images_path, const char *labels_path, tl_idx *d, tl_err *e)
{
    memset(d, 0, sizeof *d);
    uint8_t h[16];
    gzFile f = open_gz(images_path, e);
    if (!f)
        return -1;
    int rc = -1;
    if (read_all(f, h, 16, images_path, e))
        goto out;
    if (be32(h) != 2051) {
        tl_fail(e, "%s: not an IDX images file (magic %u, expected 2051)", images_path, be32(h));
        goto out;
    }
    uint32_t n = be32(h + 4), rows = be32(h + 8), cols = be32(h + 12);
    if (n == 0 || n > (1u << 28) || rows == 0 || cols == 0 || rows > 4096 || cols > 4096) {
        tl_fail(e, "%s: implausible IDX header (%u images of %ux%u)", images_path, n, rows, cols);
        goto out;
    }
    d->n = n;
    d->rows = (int)rows;
    d->cols = (int)cols;
    d->pixels = tl_xalloc((size_t)n * rows * cols, 1, e);
    d->labels = tl_xalloc(n, sizeof(int), e);
    if (!d->pixels || !d->labels || read_all(f, d->pixels, (size_t)n * rows * cols, images_path, e))
        goto out;
    gzclose(f);
    if (!(f = open_gz(labels_path, e)))
        goto fail;
    if (read_all(f, h, 8, labels_path, e))
        goto out;
    if (be32(h) != 2049) {
        tl_fail(e, "%s: not an IDX labels file (magic %u, expected 2049)", labels_path, be32(h));
        goto out;
    }
    if (be32(h + 4) != n) {
        tl_fail(e, "%s: %u labels for %u images", labels_path, be32(h + 4), n);
        goto out;
    }
    uint8_t *lab = tl_xalloc(n, 1, e);
    if (!lab || read_all(f, lab, n, labels_path, e)) {
        free(lab);
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        d->labels[i] = lab[i];
        if (lab[i] + 1 > d->nclasses)
            d->nclasses = lab[i] + 1;
    }
    free(lab);
    rc = 0;
out:
    gzclose(f);
fail:
    if (rc)
        tl_idx_free(d);
    return rc;
}

void tl_idx_free(tl_idx *d)
{
    free(d->pixels);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

static int pick(const char *prefix, const char *kind, char *out, size_t n)
{
    snprintf(out, n, "%s-%s-ubyte.gz", prefix, kind);
    if (access(out, R_OK) == 0)
        return 0;
    snprintf(out, n, "%s-%s-ubyte", prefix, kind);
    return 0;
}

int tl_idx_spec(const char *spec, char *images, char *labels, size_t n)
{
    if (strncmp(spec, "idx:", 4))
        return 0;
    spec += 4;
    const char *comma = strchr(spec, ',');
    if (comma) {
        snprintf(images, n, "%.*s", (int)(comma - spec), spec);
        snprintf(labels, n, "%s", comma + 1);
    } else {
        pick(spec, "images-idx3", images, n);
        pick(spec, "labels-idx1", labels, n);
    }
    return 1;
}

const char *const *tl_idx_fashion_names(void)
{
    static const char *const names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return names;
}

int tl_idx_image(const tl_idx *d, int64_t i, tl_image *img, tl_err *e)
{
    if (tl_image_alloc(img, d->cols, d->rows, e))
        return -1;
    const uint8_t *src = d->pixels + (size_t)i * d->rows * d->cols;
    for (size_t k = 0; k < (size_t)d->rows * d->cols; k++)
        img->px[3 * k] = img->px[3 * k + 1] = img->px[3 * k + 2] = src[k];
    return 0;
}
