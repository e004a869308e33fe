/* Feature files (.tlf streams, TSV, .npy; the reader detects which) loaded
 * whole with tl_featset_load, as tl-finetune and tl-eval do; the sniffer
 * that decides whether an argument is a feature file sees the same bytes. */
#include "fuzz_util.h"
#include "io/features.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfd_path(data, size);
    if (!path)
        return 0;
    (void)tl_feat_sniff(path);
    tl_featset s;
    tl_err e = {0};
    if (tl_featset_load(path, &s, &e) == 0) {
        FUZZ_ASSERT(s.info.dim >= 1 && s.info.dim <= TL_FEAT_MAX_DIM && s.n >= 0);
        FUZZ_ASSERT(s.info.nclasses >= 0);
        for (int64_t i = 0; i < s.n; i++) {
            FUZZ_ASSERT(s.paths[i]);
            FUZZ_ASSERT(s.y[i] >= -1 && s.y[i] < (s.info.nclasses ? s.info.nclasses : 1 << 30));
        }
        /* every vector was filled: sum them so ASan sees each float read */
        volatile float sum = 0;
        for (int64_t i = 0; i < s.n * (int64_t)s.info.dim; i++)
            sum += s.X[i];
        (void)sum;
        tl_featset_free(&s);
    } else {
        FUZZ_CHECK_MSG(e);
    }
    return 0;
}
