/* The augmentation spec language (tl-augment --spec, tl-finetune --augment):
 * parse, describe, parse the description back (it must give the same
 * description: tl_aug_describe promises a spec that parses back), then run
 * the pipeline on a tiny image. */
#include "augment/augment.h"
#include "fuzz_util.h"

/* Sizes in a spec go up to 16384; running such a pipeline is legitimate
 * but takes seconds, so inputs asking for more than this are only parsed. */
#define APPLY_MAX_SIZE 64

static int sizes_small(const char *desc)
{
    for (const char *p = desc; (p = strstr(p, "size=")) != NULL; p += 5)
        if (atoi(p + 5) > APPLY_MAX_SIZE)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *spec = fuzz_cstr(data, size);
    tl_aug_opts o = {16, 16, 18, TL_RESIZE_CROP};
    tl_err e = {0};
    tl_aug_pipeline *p = tl_aug_parse(spec, &o, &e);
    if (!p) {
        FUZZ_CHECK_MSG(e);
        free(spec);
        return 0;
    }
    int need = tl_aug_describe(p, NULL, 0);
    FUZZ_ASSERT(need >= 0);
    char *desc = malloc((size_t)need + 1);
    FUZZ_ASSERT(desc && tl_aug_describe(p, desc, (size_t)need + 1) == need);
    FUZZ_ASSERT(strlen(desc) == (size_t)need);

    tl_err e2 = {0};
    tl_aug_pipeline *q = tl_aug_parse(desc, &o, &e2);
    if (!q) {
        fprintf(stderr, "fuzz: description '%s' does not parse back: %s\n", desc, e2.msg);
        abort();
    }
    FUZZ_ASSERT(tl_aug_num_ops(q) == tl_aug_num_ops(p));
    char *desc2 = malloc((size_t)need + 1);
    FUZZ_ASSERT(desc2 && tl_aug_describe(q, desc2, (size_t)need + 1) == need && !strcmp(desc, desc2));

    if (sizes_small(desc)) {
        tl_image in = {0}, out = {0};
        tl_err e3 = {0};
        FUZZ_ASSERT(tl_image_alloc(&in, 12, 9, &e3) == 0);
        for (int i = 0; i < 12 * 9 * 3; i++)
            in.px[i] = (uint8_t)(i * 37 + (size ? data[i % size] : 0));
        tl_aug_ws ws = {0};
        tl_rng r;
        tl_aug_seed_image(&r, size, 0, 1);
        if (tl_aug_apply(p, &r, &in, &out, &ws, &e3) == 0) {
            int ow, oh;
            tl_aug_output_dims(p, &ow, &oh);
            FUZZ_ASSERT(out.w > 0 && out.h > 0);
            if (ow)
                FUZZ_ASSERT(out.w == ow && out.h == oh);
        } else {
            FUZZ_CHECK_MSG(e3);
        }
        tl_aug_ws_free(&ws);
        tl_image_free(&in);
        tl_image_free(&out);
    }
    tl_aug_free(q);
    tl_aug_free(p);
    free(desc2);
    free(desc);
    free(spec);
    return 0;
}
