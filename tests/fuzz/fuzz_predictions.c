/* The predictions TSV read by tl-eval: a header naming the classes (or
 * class names given by the caller, or indices), then one line per input.
 * Read from a file, as tl-eval reads one; every row must be consistent
 * with the header. */
#include "fuzz_util.h"
#include "io/predictions.h"

/* A multi-label row carries label counts, not class indices: -1 for "-"
 * (no set), else the number of ones in its set, at most k. */
static void check_set(const unsigned char *set, int count, int k)
{
    FUZZ_ASSERT(count >= -1 && count <= k);
    FUZZ_ASSERT((count < 0) == (set == NULL));
    if (!set)
        return;
    int ones = 0;
    for (int i = 0; i < k; i++) {
        FUZZ_ASSERT(set[i] <= 1);
        ones += set[i];
    }
    FUZZ_ASSERT(ones == count);
}

static void check_sets(const tl_pred_reader *r, const tl_pred_row *row)
{
    check_set(row->truth_set, row->truth, r->k);
    check_set(row->pred_set, row->pred, r->k);
}

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
            if (r.multilabel)
                check_sets(&r, &row);
            else
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
