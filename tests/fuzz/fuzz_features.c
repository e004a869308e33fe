/* Feature files (.tlf streams, TSV, .npy; the reader detects which) loaded
 * whole with tl_featset_load, as tl-finetune and tl-eval do; the sniffer
 * that decides whether an argument is a feature file sees the same bytes. */
#include "fuzz_util.h"
#include "io/features.h"

/* Every stream's header reaches the hook in order, before its records. */
static int on_stream(void *user, int index, uint64_t at, const char *header, size_t len, const tl_feat_info *info,
                     tl_err *e)
{
    int *streams = user;
    FUZZ_ASSERT(index == *streams && header && info && info->dim >= 1);
    (void)at;
    (void)len;
    (void)e;
    (*streams)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfd_path(data, size);
    if (!path)
        return 0;
    (void)tl_feat_sniff(path);
    /* streamed, record by record, with the header hook */
    tl_featr *r;
    tl_err re = {0};
    int streams = 0;
    if (tl_featr_open_ex(&r, path, on_stream, &streams, &re) == 0) {
        FUZZ_ASSERT(streams == 1 && tl_featr_streams(r) == 1);
        int dim = tl_featr_info(r)->dim, got = 0;
        /* a header may claim 2^24 values: 64 MB a record is no faster a fuzz */
        float *v = dim <= (1 << 16) ? malloc((size_t)dim * sizeof *v) : NULL;
        const char *p, *ln;
        int label;
        while (v && (got = tl_featr_next(r, &p, &ln, &label, v, &re)) == 1) {
            FUZZ_ASSERT(p && label >= -1 && label < (tl_featr_info(r)->nclasses ? tl_featr_info(r)->nclasses : 1 << 30));
            for (int i = 0; i < dim; i++)
                FUZZ_ASSERT(v[i] == v[i] && v[i] - v[i] == 0); /* finite */
        }
        if (v && got < 0)
            FUZZ_CHECK_MSG(re);
        FUZZ_ASSERT(tl_featr_streams(r) == streams);
        free(v);
        tl_featr_close(r);
    } else {
        FUZZ_CHECK_MSG(re);
    }
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
