#include "feature_origin.h"

#include <string.h>
#include <sys/stat.h>

static int same_model(const char *a, const char *b)
{
    if (!strcmp(a, b))
        return 1;
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int tl_feat_origin_check(const tl_feat_origin *have, const tl_feat_origin *want, const char *want_name, tl_err *e)
{
    if (have->model && want->model && !same_model(have->model, want->model))
        return tl_fail(e, "features of backbone %s, %s features of %s (--force uses them anyway)", have->model, want_name, want->model);
    if (have->layer && want->layer && strcmp(have->layer, want->layer))
        return tl_fail(e, "features of layer '%s', %s layer '%s' (--force uses them anyway)", have->layer, want_name, want->layer);
    if (have->input && want->input && strcmp(have->input, want->input))
        return tl_fail(e, "features of images prepared as '%s', %s images prepared as '%s' (--force uses "
                                  "them anyway)", have->input, want_name,
                       want->input);
    return 0;
}
