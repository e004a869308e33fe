/* timm's VisionTransformer (vit_tiny/small/base_patch16_224) names for the
 * torchvision-named ViT parameters. The tensors are the same: timm's fused
 * attn.qkv is [3d, d] with rows q | k | v, heads contiguous inside each
 * (its forward reshapes to (3, heads, head_dim)), which is exactly
 * nn.MultiheadAttention's in_proj layout; cls_token and pos_embed have
 * torchvision's [1, 1, d] and [1, tokens, d] shapes. */
#include "models.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *tv, *timm;
} block_names[] = {
    {"ln_1.", "norm1."},
    {"self_attention.in_proj_weight", "attn.qkv.weight"},
    {"self_attention.in_proj_bias", "attn.qkv.bias"},
    {"self_attention.out_proj.", "attn.proj."},
    {"ln_2.", "norm2."},
    {"mlp.0.", "mlp.fc1."},
    {"mlp.3.", "mlp.fc2."},
};

static const struct {
    const char *tv, *timm;
} top_names[] = {
    {"class_token", "cls_token"},
    {"encoder.pos_embedding", "pos_embed"},
    {"conv_proj.", "patch_embed.proj."},
    {"encoder.ln.", "norm."},
    {"heads.head.", "head."},
};

/* Writes `a` followed by `b` into out; 1, or -1 when it does not fit. */
static int join(char *out, size_t n, const char *a, const char *b)
{
    int len = snprintf(out, n, "%s%s", a, b);
    return len >= 0 && (size_t)len < n ? 1 : -1;
}

int tl_timm_name_vit(const char *arch, const char *tv_name, char *out, size_t n)
{
    if (strcmp(arch, "vit_ti_16") && strcmp(arch, "vit_s_16") && strcmp(arch, "vit_b_16"))
        return -1;
    static const char layer_prefix[] = "encoder.layers.encoder_layer_";
    size_t lp = sizeof layer_prefix - 1;
    if (!strncmp(tv_name, layer_prefix, lp)) {
        const char *p = tv_name + lp;
        int index = 0, digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 4) {
            index = index * 10 + (*p++ - '0');
            digits++;
        }
        if (!digits || *p++ != '.')
            return -1;
        for (size_t i = 0; i < sizeof block_names / sizeof block_names[0]; i++) {
            size_t len = strlen(block_names[i].tv);
            int exact = block_names[i].tv[len - 1] != '.';
            if (exact ? strcmp(p, block_names[i].tv) : strncmp(p, block_names[i].tv, len))
                continue;
            int w = snprintf(out, n, "blocks.%d.%s%s", index, block_names[i].timm, exact ? "" : p + len);
            return w >= 0 && (size_t)w < n ? 1 : -1;
        }
        return -1;
    }
    for (size_t i = 0; i < sizeof top_names / sizeof top_names[0]; i++) {
        size_t len = strlen(top_names[i].tv);
        if (top_names[i].tv[len - 1] != '.') {
            if (!strcmp(tv_name, top_names[i].tv))
                return join(out, n, top_names[i].timm, "");
        } else if (!strncmp(tv_name, top_names[i].tv, len)) {
            return join(out, n, top_names[i].timm, tv_name + len);
        }
    }
    return -1;
}
