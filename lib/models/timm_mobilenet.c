/* timm's names for MobileNetV2 (mobilenetv2_100, an EfficientNet-class
 * model) and MobileNetV3 (mobilenetv3_small_100, mobilenetv3_large_100).
 *
 * timm numbers blocks by stage: blocks.<stage>.<block>. A block without
 * expansion is a DepthwiseSeparableConv (conv_dw, bn1, [se], conv_pw, bn2);
 * the others are InvertedResidual (conv_pw, bn1, conv_dw, bn2, [se],
 * conv_pwl, bn3); squeeze-excitation is se.conv_reduce / se.conv_expand
 * (torchvision's fc1 / fc2).
 *
 * Layout and numeric differences the loader and converter must know:
 *  - MobileNetV2: none; conv_head/bn2 are torchvision's last features
 *    conv, classifier is classifier.1.
 *  - MobileNetV3: timm's last features conv is a ConvBnAct block
 *    (blocks.<last>.0.conv / .bn1); its conv_head is a 1x1 convolution
 *    with bias applied after pooling, the same data as torchvision's
 *    classifier.0 Linear ([n,c,1,1] against [n,c]); classifier is
 *    classifier.3. timm builds these models with BatchNorm2d's default
 *    eps 1e-5 where torchvision uses 1e-3, so a converted timm checkpoint
 *    must carry tl.bn_eps = 1e-5. */
#include "models.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Blocks per timm stage (features.1.. in order), the last stage being the
 * final 1x1 conv for MobileNetV3. */
static const int v2_stages[] = {1, 2, 3, 4, 3, 3, 1, 0};
static const int v3_large_stages[] = {1, 2, 3, 4, 2, 3, 1, 0};
static const int v3_small_stages[] = {1, 2, 3, 2, 3, 1, 0};
/* Which MobileNetV3 blocks (features.1..) have squeeze-excitation. */
static const char v3_large_se[] = {0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1};
static const char v3_small_se[] = {1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};

/* "features.<i>.<rest>" -> i and rest; -1 when name is not of that form. */
static int split_index(const char *name, const char *head, const char **rest)
{
    size_t n = strlen(head);
    if (strncmp(name, head, n) || name[n] < '0' || name[n] > '9')
        return -1;
    char *end;
    long i = strtol(name + n, &end, 10);
    if (*end != '.' || i > 10000)
        return -1;
    *rest = end + 1;
    return (int)i;
}

static int put(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int put(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    return len < 0 || (size_t)len >= n ? -1 : 1;
}

/* A Conv-BN pair ("0.<p>" conv, "1.<p>" BN) renamed to conv/bn inside
 * block blk ("" at the top level). */
static int conv_bn(char *out, size_t n, const char *blk, const char *rest, const char *conv, const char *bn)
{
    const char *dot = blk[0] ? "." : "";
    if (!strncmp(rest, "0.", 2))
        return put(out, n, "%s%s%s.%s", blk, dot, conv, rest + 2);
    if (!strncmp(rest, "1.", 2))
        return put(out, n, "%s%s%s.%s", blk, dot, bn, rest + 2);
    return -1;
}

/* The torchvision block body [expand] depthwise [se] project, as a list
 * of sub-modules numbered from 0 (rest = "<layer>.<...>"), in timm's
 * names. */
static int block_body(char *out, size_t n, const char *blk, const char *rest, int expand, int se)
{
    char *end;
    long layer = strtol(rest, &end, 10);
    if (end == rest || *end != '.')
        return -1;
    rest = end + 1;
    if (expand && layer-- == 0)
        return conv_bn(out, n, blk, rest, "conv_pw", "bn1");
    if (layer-- == 0)
        return conv_bn(out, n, blk, rest, "conv_dw", expand ? "bn2" : "bn1");
    if (se && layer-- == 0) {
        if (!strncmp(rest, "fc1.", 4))
            return put(out, n, "%s.se.conv_reduce.%s", blk, rest + 4);
        if (!strncmp(rest, "fc2.", 4))
            return put(out, n, "%s.se.conv_expand.%s", blk, rest + 4);
        return -1;
    }
    if (layer == 0)
        return expand ? conv_bn(out, n, blk, rest, "conv_pwl", "bn3") : conv_bn(out, n, blk, rest, "conv_pw", "bn2");
    return -1;
}

/* features index (1-based block number) -> "blocks.<stage>.<j>". */
static int block_name(char *blk, size_t n, const int *stages, int index)
{
    int first = 1;
    for (int s = 0; stages[s]; s++) {
        if (index < first + stages[s]) {
            snprintf(blk, n, "blocks.%d.%d", s, index - first);
            return 0;
        }
        first += stages[s];
    }
    return -1;
}

static int count_blocks(const int *stages)
{
    int total = 0;
    for (int s = 0; stages[s]; s++)
        total += stages[s];
    return total;
}

static int v2_name(const char *tv, char *out, size_t n)
{
    const char *rest;
    int i = split_index(tv, "features.", &rest);
    if (!strncmp(tv, "classifier.1.", 13))
        return put(out, n, "classifier.%s", tv + 13);
    if (i < 0)
        return -1;
    int last = count_blocks(v2_stages) + 1;
    if (i == 0)
        return conv_bn(out, n, "", rest, "conv_stem", "bn1");
    if (i == last)
        return conv_bn(out, n, "", rest, "conv_head", "bn2");
    if (i > last || strncmp(rest, "conv.", 5))
        return -1;
    char blk[32];
    if (block_name(blk, sizeof blk, v2_stages, i))
        return -1;
    rest += 5;
    if (i > 1) /* conv.0 expand, conv.1 depthwise, conv.2 project, conv.3 its BN */
        return !strncmp(rest, "2.", 2)   ? put(out, n, "%s.conv_pwl.%s", blk, rest + 2)
               : !strncmp(rest, "3.", 2) ? put(out, n, "%s.bn3.%s", blk, rest + 2)
                                         : block_body(out, n, blk, rest, 1, 0);
    /* features.1 (no expansion): conv.0 depthwise, conv.1 project, conv.2 its BN */
    if (!strncmp(rest, "0.", 2))
        return conv_bn(out, n, blk, rest + 2, "conv_dw", "bn1");
    if (!strncmp(rest, "1.", 2))
        return put(out, n, "%s.conv_pw.%s", blk, rest + 2);
    if (!strncmp(rest, "2.", 2))
        return put(out, n, "%s.bn2.%s", blk, rest + 2);
    return -1;
}

static int v3_name(const char *tv, const int *stages, const char *se, char *out, size_t n)
{
    if (!strncmp(tv, "classifier.0.", 13))
        return put(out, n, "conv_head.%s", tv + 13);
    if (!strncmp(tv, "classifier.3.", 13))
        return put(out, n, "classifier.%s", tv + 13);
    const char *rest;
    int i = split_index(tv, "features.", &rest);
    if (i < 0)
        return -1;
    int nblocks = count_blocks(stages) - 1, nstages = 0;
    while (stages[nstages])
        nstages++;
    char blk[32];
    if (i == 0)
        return conv_bn(out, n, "", rest, "conv_stem", "bn1");
    if (i == nblocks + 1) {
        snprintf(blk, sizeof blk, "blocks.%d.0", nstages - 1);
        return conv_bn(out, n, blk, rest, "conv", "bn1");
    }
    if (i > nblocks || strncmp(rest, "block.", 6) || block_name(blk, sizeof blk, stages, i))
        return -1;
    /* Only features.1 has no expansion (its expanded width is its input's). */
    return block_body(out, n, blk, rest + 6, i > 1, se[i - 1]);
}

int tl_timm_name_mobilenet(const char *arch, const char *tv_name, char *out, size_t n)
{
    if (!strcmp(arch, "mobilenet_v2"))
        return v2_name(tv_name, out, n);
    if (!strcmp(arch, "mobilenet_v3_large"))
        return v3_name(tv_name, v3_large_stages, v3_large_se, out, n);
    if (!strcmp(arch, "mobilenet_v3_small"))
        return v3_name(tv_name, v3_small_stages, v3_small_se, out, n);
    return -1;
}
