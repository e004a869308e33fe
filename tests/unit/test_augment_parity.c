/* lib/augment against torchvision's functional transforms on PIL images
 * (tests/parity/augment_ref.py): the same test picture, the same
 * parameters, pixel by pixel. Tolerances: 0 where we follow PIL's integer
 * arithmetic (brightness, contrast, saturation, hue, greyscale, flips,
 * erase, resized crop, JPEG), 1 level where float rounding order differs
 * (blur, rotation). Rotation is compared where the bilinear footprint
 * lies inside the source (borders are treated differently by design). */
#include "check.h"
#include "test_image_util.h"
#include "augment/augment.h"

static const char *ref_script(char *buf, size_t n)
{
    const char *src = getenv("TL_SRCDIR");
    snprintf(buf, n, "%s/tests/parity/augment_ref.py", src ? src : ".");
    return tu_exists(buf) ? buf : NULL;
}

/* Max difference over the pixels of a rotation by deg whose bilinear
 * footprint lies inside the source: PIL fills a sample whose centre
 * falls outside, we blend the fill in (a smooth edge), so borders differ
 * by design. */
static tu_diff compare_rotated(const tl_image *a, const tl_image *b, double deg)
{
    tu_diff d = { 0, 0.0 };
    if (a->w != b->w || a->h != b->h) {
        d.max = 256;
        d.frac = 1;
        return d;
    }
    double cs = cos(deg * M_PI / 180), sn = sin(deg * M_PI / 180), cx = a->w / 2.0, cy = a->h / 2.0;
    size_t n = 0, nd = 0;
    for (int y = 0; y < a->h; y++)
        for (int x = 0; x < a->w; x++) {
            double ox = x + 0.5 - cx, oy = y + 0.5 - cy;
            double sx = ox * cs - oy * sn + cx - 0.5, sy = ox * sn + oy * cs + cy - 0.5;
            if (!(sx >= 0 && sy >= 0 && sx < a->w - 1 && sy < a->h - 1))
                continue;
            for (int c = 0; c < 3; c++) {
                size_t i = ((size_t)y * a->w + x) * 3 + c;
                int v = abs((int)a->px[i] - (int)b->px[i]);
                n++;
                if (v) {
                    nd++;
                    if (v > d.max)
                        d.max = v;
                }
            }
        }
    d.frac = n ? (double)nd / n : 1;
    return d;
}

int main(void)
{
    (void)tu_script;
    (void)tu_shared_images;
    char sbuf[4096];
    const char *script = ref_script(sbuf, sizeof sbuf);
    if (!script) {
        printf("test_augment_parity: skipped (tests/parity/augment_ref.py not found; run from the source tree)\n");
        return check_finish("augment_parity");
    }
    char dir[] = "/tmp/tl_augref_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return check_finish("augment_parity");
    }
    const char *args[] = { dir, NULL };
    int rc = tu_run_python(script, args);
    if (rc != 0) {
        printf("test_augment_parity: skipped (reference exited %d: /usr/bin/python3 with torchvision needed)\n", rc);
        tu_rmtree(dir);
        return check_finish("augment_parity");
    }
    tl_err e;
    tl_image in = { 0 }, want = { 0 }, got = { 0 };
    tl_aug_ws ws = { 0 };
    char path[4200];
    snprintf(path, sizeof path, "%s/in.ppm", dir);
    CHECK_MSG(tl_image_decode_file(path, &in, 0, &e) == 0, "%s", e.msg);
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char line[512];
    int ncases = 0;
    while (f && fgets(line, sizeof line, f)) {
        int n;
        char op[32];
        double a[6] = { 0 };
        int na = sscanf(line, "%d %31s %lf %lf %lf %lf %lf %lf", &n, op, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5]);
        if (na < 2)
            continue;
        snprintf(path, sizeof path, "%s/case_%d.ppm", dir, n);
        if (tl_image_decode_file(path, &want, 0, &e)) {
            CHECK_MSG(0, "%s", e.msg);
            continue;
        }
        int tol = 0;
        double maxfrac = 1.0;
        rc = 0;
        if (strcmp(op, "resized_crop") && strcmp(op, "rotate") && strcmp(op, "jpeg"))
            tl_image_alloc(&got, in.w, in.h, &e), memcpy(got.px, in.px, (size_t)in.w * in.h * 3);
        if (!strcmp(op, "brightness"))
            tl_aug_brightness(&got, a[0]);
        else if (!strcmp(op, "contrast"))
            tl_aug_contrast(&got, a[0]);
        else if (!strcmp(op, "saturation"))
            tl_aug_saturation(&got, a[0]);
        else if (!strcmp(op, "hue"))
            tl_aug_hue(&got, a[0]);
        else if (!strcmp(op, "grey"))
            tl_aug_grey(&got);
        else if (!strcmp(op, "hflip"))
            tl_aug_hflip(&got);
        else if (!strcmp(op, "vflip"))
            tl_aug_vflip(&got);
        else if (!strcmp(op, "blur")) {
            rc = tl_aug_blur(&got, (int)a[0], a[1], &ws, &e);
            tol = 1;
            maxfrac = 0.02;
        } else if (!strcmp(op, "erase"))
            tl_aug_erase(&got, (int)a[1], (int)a[0], (int)a[3], (int)a[2], (int)a[4], NULL);
        else if (!strcmp(op, "resized_crop"))
            rc = tl_aug_resized_crop(&in, (int)a[1], (int)a[0], (int)a[3], (int)a[2], (int)a[5], (int)a[4],
                                     &got, &ws, &e);
        else if (!strcmp(op, "rotate")) {
            rc = tl_aug_warp(&in, a[0], 0, 0, TL_AUG_FILL_CONSTANT, 0, &got, &e);
            tol = 1;
            maxfrac = 0.02;
        } else if (!strcmp(op, "jpeg"))
            rc = tl_aug_jpeg(&in, (int)a[0], &got, &ws, &e);
        else {
            CHECK_MSG(0, "unknown case op %s", op);
            continue;
        }
        CHECK_MSG(rc == 0, "%s: %s", op, e.msg);
        tu_diff d = !strcmp(op, "rotate") ? compare_rotated(&got, &want, a[0]) : tu_compare(&got, &want);
        line[strcspn(line, "\n")] = '\0';
        printf("  %-34s max diff %d, %.3f%% of samples differ\n", line, d.max, 100 * d.frac);
        CHECK_MSG(d.max <= tol && d.frac <= maxfrac, "%s case %d: max diff %d (tol %d), %.4f differ", op, n,
                  d.max, tol, d.frac);
        ncases++;
    }
    if (f)
        fclose(f);
    CHECK_MSG(ncases >= 20, "only %d cases ran", ncases);
    tl_image_free(&in);
    tl_image_free(&want);
    tl_image_free(&got);
    tl_aug_ws_free(&ws);
    tu_rmtree(dir);
    return check_finish("augment_parity");
}
