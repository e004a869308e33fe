/* safetensors checkpoints: header length, header JSON, dtypes, shapes and
 * data offsets, then every floating tensor converted to float32 and the
 * preprocessing metadata read, as loading a checkpoint does. */
#include "fuzz_util.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfd_path(data, size);
    if (!path)
        return 0;
    tl_st_file f;
    tl_err e = {0};
    if (tl_st_open(path, &f, &e) != 0) {
        FUZZ_CHECK_MSG(e);
        return 0;
    }
    FUZZ_ASSERT(f.ntensors >= 0 && f.nmeta >= 0);
    for (int i = 0; i < f.ntensors; i++) {
        const tl_st_tensor *t = &f.tensors[i];
        FUZZ_ASSERT(t->ndim >= 0 && t->ndim <= TL_MAX_DIMS);
        FUZZ_ASSERT(t->nbytes == (size_t)t->numel * tl_dtype_size(t->dtype));
        const uint8_t *p = t->data;
        FUZZ_ASSERT(t->nbytes == 0 || (p >= (const uint8_t *)f.map + 8 &&
                                      p + t->nbytes <= (const uint8_t *)f.map + f.map_size));
        FUZZ_ASSERT(tl_st_find(&f, t->name) != NULL);
        /* the data lies inside the file, so numel is bounded by its size */
        float *dst = malloc((size_t)t->numel * sizeof(float) + 1);
        FUZZ_ASSERT(dst);
        tl_err e2 = {0};
        if (tl_st_to_f32(t, dst, &e2))
            FUZZ_CHECK_MSG(e2);
        free(dst);
    }
    for (int i = 0; i < f.nmeta; i++)
        FUZZ_ASSERT(tl_st_meta(&f, f.meta_keys[i]) != NULL);
    tl_preproc pp;
    tl_err e3 = {0};
    if (tl_preproc_from_meta(&f, &pp, &e3) == 0)
        FUZZ_ASSERT(pp.input_w > 0 && pp.input_h > 0 && pp.resize_size > 0);
    else
        FUZZ_CHECK_MSG(e3);
    tl_st_close(&f);
    return 0;
}
