/* TFLite flatbuffers: the parser (offsets, vtables, vectors, quantisation,
 * operator indices), the summary, and the MobileNet converter on whatever
 * parsed. A converted checkpoint must read back as valid safetensors. */
#include "fuzz_util.h"
#include "io/safetensors.h"
#include "io/tflite.h"

#include <stdlib.h>

/* Converted checkpoints go to a private folder in /dev/shm (tmpfs: the
 * writer's fsync costs nothing there), else in /tmp. */
static char path[128], dir[64];

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

static const char *out_path(void)
{
    if (!path[0]) {
        snprintf(dir, sizeof dir, "/dev/shm/tl-fuzz-XXXXXX");
        if (!mkdtemp(dir)) {
            snprintf(dir, sizeof dir, "/tmp/tl-fuzz-XXXXXX");
            if (!mkdtemp(dir))
                abort();
        }
        snprintf(path, sizeof path, "%s/out.safetensors", dir);
        atexit(remove_dir);
    }
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tl_tflite *m = NULL;
    tl_err e = {0};
    if (tl_tflite_open_mem(data, size, &m, &e) != 0) {
        FUZZ_CHECK_MSG(e);
        FUZZ_ASSERT(m == NULL);
        return 0;
    }
    for (int i = 0; i < m->ntensors; i++) {
        const tl_tfl_tensor *t = &m->tensors[i];
        FUZZ_ASSERT(t->ndim >= 0 && t->ndim <= TL_TFL_MAX_DIMS && t->buffer < (uint32_t)m->nbuffers);
        for (int d = 0; d < t->ndim; d++)
            FUZZ_ASSERT(t->shape[d] >= 0);
    }
    for (int i = 0; i < m->nops; i++)
        for (int j = 0; j < m->ops[i].ninputs; j++)
            FUZZ_ASSERT(m->ops[i].inputs[j] >= -1 && m->ops[i].inputs[j] < m->ntensors);
    char desc[512];
    int n = tl_tflite_describe(m, desc, sizeof desc);
    FUZZ_ASSERT(n >= 0 && strlen(desc) < sizeof desc);

    const char *out = out_path();
    tl_err e2 = {0};
    if (tl_tflite_convert(m, NULL, out, NULL, NULL, &e2) == 0) {
        tl_st_file f;
        tl_err e3 = {0};
        if (tl_st_open(out, &f, &e3) != 0) {
            fprintf(stderr, "fuzz: converted checkpoint does not read back: %s\n", e3.msg);
            abort();
        }
        tl_st_close(&f);
        unlink(out);
    } else {
        FUZZ_CHECK_MSG(e2);
    }
    tl_tflite_free(m);
    return 0;
}
