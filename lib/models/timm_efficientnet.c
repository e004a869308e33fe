/* timm's names for EfficientNet B0-B3 (efficientnet_b0 .. b3).
 *
 * torchvision's features.<k>.<j> (stage k = 1..7) is timm's
 * blocks.<k-1>.<j>. Stage 1 has no expansion: timm builds it as a
 * DepthwiseSeparableConv (conv_dw, bn1, se, conv_pw, bn2); the others are
 * InvertedResidual (conv_pw, bn1, conv_dw, bn2, se, conv_pwl, bn3).
 * Squeeze-excitation is se.conv_reduce / se.conv_expand (torchvision's
 * fc1 / fc2), with the same widths (a quarter of the block's input
 * channels). Stem conv_stem/bn1, head conv_head/bn2, classifier.
 *
 * No numeric differences: timm's efficientnet_b* use BatchNorm2d's
 * default eps 1e-5 as torchvision's V1 does, symmetric padding, SiLU and a
 * sigmoid gate. (timm's tf_efficientnet_* are other networks: TF SAME
 * padding and eps 1e-3.) */
#include "models.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int put(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int put(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    return len < 0 || (size_t)len >= n ? -1 : 1;
}

/* Reads "<number>." at *s, advancing past the dot; -1 when absent. */
static long number(const char **s)
{
    char *end;
    if (**s < '0' || **s > '9')
        return -1;
    long v = strtol(*s, &end, 10);
    if (*end != '.' || v > 10000)
        return -1;
    *s = end + 1;
    return v;
}

/* A Conv-BN pair ("0.<p>" conv, "1.<p>" BN) inside block blk ("" at the
 * top level). */
static int conv_bn(char *out, size_t n, const char *blk, const char *rest, const char *conv, const char *bn)
{
    const char *dot = blk[0] ? "." : "";
    if (!strncmp(rest, "0.", 2))
        return put(out, n, "%s%s%s.%s", blk, dot, conv, rest + 2);
    if (!strncmp(rest, "1.", 2))
        return put(out, n, "%s%s%s.%s", blk, dot, bn, rest + 2);
    return -1;
}

int tl_timm_name_efficientnet(const char *arch, const char *tv_name, char *out, size_t n)
{
    if (strncmp(arch, "efficientnet_b", 14) || arch[14] < '0' || arch[14] > '3' || arch[15])
        return -1;
    if (!strncmp(tv_name, "classifier.1.", 13))
        return put(out, n, "classifier.%s", tv_name + 13);
    if (strncmp(tv_name, "features.", 9))
        return -1;
    const char *rest = tv_name + 9;
    long k = number(&rest);
    if (k == 0)
        return conv_bn(out, n, "", rest, "conv_stem", "bn1");
    if (k == 8)
        return conv_bn(out, n, "", rest, "conv_head", "bn2");
    long j = number(&rest);
    if (k < 1 || k > 7 || j < 0 || strncmp(rest, "block.", 6))
        return -1;
    rest += 6;
    long layer = number(&rest);
    char blk[32];
    snprintf(blk, sizeof blk, "blocks.%ld.%ld", k - 1, j);
    int expand = k > 1;
    if (expand && layer-- == 0)
        return conv_bn(out, n, blk, rest, "conv_pw", "bn1");
    if (layer-- == 0)
        return conv_bn(out, n, blk, rest, "conv_dw", expand ? "bn2" : "bn1");
    if (layer-- == 0) {
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
