/* Placeholder until the mapping is written: no timm names known. */
#include "models.h"

int tl_timm_name_vit(const char *arch, const char *tv_name, char *out, size_t n)
{
    (void)arch;
    (void)tv_name;
    (void)out;
    (void)n;
    return -1;
}
