/* Placeholder until the family is implemented: builds nothing. */
#include "models.h"

tl_model *tl_build_resnet(const char *arch, const tl_arch_opts *o, tl_err *e)
{
    (void)o;
    tl_fail(e, "architecture '%s' is not implemented yet", arch);
    return 0;
}
