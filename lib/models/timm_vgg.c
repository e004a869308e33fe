/* timm's VGG (timm/models/vgg.py) keeps torchvision's features.N but
 * replaces the classifier: classifier.0 becomes pre_logits.fc1, a 7x7
 * convolution [4096, 512, 7, 7] over the 7x7 map; classifier.3 becomes
 * pre_logits.fc2, a 1x1 convolution [4096, 4096, 1, 1]; classifier.6
 * becomes head.fc. The convolutions hold the same numbers as the linear
 * maps in the same order (C, H, W flattening), so the loader takes them
 * as they are (same element count and first dimension).
 *
 * Numerically timm's network equals torchvision's at 224x224 (a 7x7 map).
 * At other sizes they differ: torchvision pools adaptively to 7x7, while
 * timm slides fc1 over larger maps and averages the head's input. tl
 * builds torchvision's version. */
#include "models.h"

#include <stdio.h>
#include <string.h>

int tl_timm_name_vgg(const char *arch, const char *tv_name, char *out, size_t n)
{
    static const char *const map[3][2] = {
        {"classifier.0.", "pre_logits.fc1."}, {"classifier.3.", "pre_logits.fc2."}, {"classifier.6.", "head.fc."}};
    if (strncmp(arch, "vgg", 3))
        return -1;
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(map[i][0]);
        if (!strncmp(tv_name, map[i][0], len)) {
            int w = snprintf(out, n, "%s%s", map[i][1], tv_name + len);
            return w >= 0 && (size_t)w < n ? 1 : -1;
        }
    }
    return 0;
}
