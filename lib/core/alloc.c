#include "core.h"

#include <stdlib.h>
#include <string.h>

static void *alloc_aligned(size_t bytes, int zero)
{
    if (bytes == 0)
        bytes = 1;
    size_t rounded = (bytes + TL_ALIGN - 1) / TL_ALIGN * TL_ALIGN;
    if (rounded < bytes)
        return NULL;
    void *p = aligned_alloc(TL_ALIGN, rounded);
    if (p && zero)
        memset(p, 0, rounded);
    return p;
}

void *tl_alloc(size_t bytes) { return alloc_aligned(bytes, 1); }

void *tl_alloc_array(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    return tl_alloc(count * size);
}

void *tl_alloc_array_raw(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    return alloc_aligned(count * size, 0);
}

void tl_free(void *p) { free(p); }

void *tl_xalloc(size_t count, size_t size, tl_err *e)
{
    void *p = tl_alloc_array(count, size);
    if (!p)
        tl_fail(e, "out of memory (%zu x %zu bytes)", count, size);
    return p;
}

char *tl_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
