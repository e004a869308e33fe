/* timm's ResNet (timm/models/resnet.py) for the torchvision depths names
 * every parameter as torchvision does: conv1/bn1, layerN.B.convK/bnK,
 * layerN.0.downsample.0/.1 (its downsample_conv: a 1x1 convolution with the
 * stride, then BN) and fc. Its basic and bottleneck blocks put the stride
 * on the 3x3 convolution, like torchvision's v1.5, and use BN eps 1e-5, so
 * its checkpoints (resnet50.tv_in1k, resnet50.a1_in1k, ...) load one to
 * one; only their preprocessing differs, which the metadata carries. */
#include "models.h"

#include <string.h>

int tl_timm_name_resnet(const char *arch, const char *tv_name, char *out, size_t n)
{
    (void)tv_name;
    (void)out;
    (void)n;
    return strncmp(arch, "resnet", 6) ? -1 : 0;
}
