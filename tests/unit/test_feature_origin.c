/* Feature origins (issue 14.4): features of another backbone, layer or
 * preprocessing are told apart; what one side does not record passes. */
#include "check.h"
#include "io/feature_origin.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int differs(tl_feat_origin a, tl_feat_origin b, const char *want_msg)
{
    tl_err e = {0};
    int rc = tl_feat_origin_check(&a, &b, "the head was trained on", &e);
    if (rc && want_msg)
        CHECK_MSG(strstr(e.msg, want_msg) != NULL, "message: %s", e.msg);
    return rc != 0;
}

int main(void)
{
    tl_feat_origin m = {"/m/net.safetensors", "avgpool", "224 crop 256"};
    CHECK(!differs(m, m, NULL));
    CHECK(differs((tl_feat_origin){"/m/other.safetensors", "avgpool", "224 crop 256"}, m,
                  "features of backbone /m/other.safetensors, the head was trained on features of /m/net.safetensors"));
    CHECK(differs((tl_feat_origin){"/m/net.safetensors", "layer4", "224 crop 256"}, m,
                  "features of layer 'layer4', the head was trained on layer 'avgpool' (--force uses them anyway)"));
    CHECK(differs((tl_feat_origin){"/m/net.safetensors", "avgpool", "160 crop 182"}, m,
                  "prepared as '160 crop 182', the head was trained on images prepared as '224 crop 256'"));
    /* unrecorded on either side: not checked */
    CHECK(!differs((tl_feat_origin){NULL, NULL, NULL}, m, NULL));
    CHECK(!differs(m, (tl_feat_origin){NULL, NULL, NULL}, NULL));
    CHECK(!differs((tl_feat_origin){"/m/net.safetensors", "avgpool", NULL}, m, NULL));
    /* two names of one file are one backbone; a copy is another */
    char dir[] = "/tmp/tl-origin-XXXXXX";
    if (mkdtemp(dir)) {
        char a[256], b[256], c[256];
        snprintf(a, sizeof a, "%s/net.safetensors", dir);
        snprintf(b, sizeof b, "%s/./net.safetensors", dir);
        snprintf(c, sizeof c, "%s/copy.safetensors", dir);
        FILE *f = fopen(a, "w"), *g = fopen(c, "w");
        if (f)
            fclose(f);
        if (g)
            fclose(g);
        CHECK(!differs((tl_feat_origin){b, "x", NULL}, (tl_feat_origin){a, "x", NULL}, NULL));
        CHECK(differs((tl_feat_origin){c, "x", NULL}, (tl_feat_origin){a, "x", NULL}, "features of backbone"));
        unlink(a);
        unlink(c);
        rmdir(dir);
    }
    return check_finish("feature_origin");
}
