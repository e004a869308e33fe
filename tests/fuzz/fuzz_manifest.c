/* Data-set manifests (path<TAB>label lines) read through a FILE, the way
 * tl-extract reads a list on standard input. */
#include "fuzz_util.h"
#include "io/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen refuses an empty buffer */
    FILE *f = fmemopen((void *)data, size, "r");
    if (!f)
        return 0;
    tl_dataset d;
    tl_err e = {0};
    const char *base = size % 2 ? "base/dir" : ".";
    if (tl_dataset_read_manifest(f, "fuzz.tsv", base, &d, &e) == 0) {
        FUZZ_ASSERT(d.n >= 0 && d.nclasses >= 0);
        for (int64_t i = 0; i < d.n; i++) {
            FUZZ_ASSERT(d.items[i].path && d.items[i].path[0]);
            FUZZ_ASSERT(d.items[i].label >= -1 && d.items[i].label < d.nclasses);
        }
        for (int c = 0; c < d.nclasses; c++) {
            FUZZ_ASSERT(tl_dataset_class(&d, d.classes[c]) == c);
            if (c)
                FUZZ_ASSERT(strcmp(d.classes[c - 1], d.classes[c]) < 0);
        }
        tl_dataset_free(&d);
    } else {
        FUZZ_CHECK_MSG(e);
    }
    fclose(f);
    return 0;
}
