/* Training logs as tl-compare reads them (JSON lines from tl-finetune --log
 * and tl-extract --log): the reader must stay bounded and keep its
 * promises: epochs in increasing order, each at most once. */
#include "fuzz_util.h"
#include "report/runlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tl_runlog r;
    tl_err e = {0};
    if (tl_runlog_parse((const char *)data, size, size % 2 ? "fuzz" : NULL, &r, &e) != 0) {
        FUZZ_CHECK_MSG(e);
        tl_runlog_free(&r); /* documented as safe after an error */
        return 0;
    }
    FUZZ_ASSERT(r.name && r.name[0]);
    FUZZ_ASSERT(r.nepochs >= 0 && r.nepochs <= TL_RUNLOG_MAX_RECORDS);
    for (int i = 0; i < r.nepochs; i++) {
        if (i)
            FUZZ_ASSERT(r.epochs[i - 1].epoch < r.epochs[i].epoch);
        FUZZ_ASSERT(r.epochs[i].epoch <= TL_RUNLOG_MAX_EPOCH);
    }
    tl_err e2 = {0};
    FUZZ_ASSERT(tl_runlog_rename(&r, "renamed", &e2) == 0 && !strcmp(r.name, "renamed"));
    tl_runlog_free(&r);
    return 0;
}
