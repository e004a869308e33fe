/* The predictions TSV read by tl-eval: a header naming the classes (or
 * class names given by the caller, or indices), then one line per input.
 * Read from a file, as tl-eval reads one; every row must be consistent
 * with the header. */
#include "fuzz_util.h"
#include "io/predictions.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfd_path(data, size);
    if (!path)
        return 0;
    static const char *const given[] = {"ants", "bees", "wasps"};
    for (int mode = 0; mode < 2; mode++) {
        tl_pred_reader r;
        tl_err e = {0};
        if (tl_pred_open(&r, path, mode ? given : NULL, mode ? 3 : 0, &e)) {
            FUZZ_CHECK_MSG(e);
            continue;
        }
        FUZZ_ASSERT(r.k >= 1);
        tl_pred_row row;
        int got;
        while ((got = tl_pred_next(&r, &row, &e)) == 1) {
            FUZZ_ASSERT(row.truth >= -1 && row.truth < r.k && row.pred >= 0 && row.pred < r.k);
            volatile float sum = 0;
            for (int i = 0; i < r.k; i++)
                sum += row.scores[i];
            (void)sum;
        }
        if (got < 0)
            FUZZ_CHECK_MSG(e);
        tl_pred_close(&r);
    }
    return 0;
}
