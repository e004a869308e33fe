#!/usr/bin/python3
"""Random-weight Vision Transformers in PyTorch against tl's inference.

Builds torchvision 0.14's VisionTransformer (vit_b_16, or ViT-Ti/16 and
ViT-S/16 with timm's dimensions under the same names) with seeded random
weights (LayerNorm affine, biases, class token and head too), writes it as a
tl checkpoint, renders images at the input size, runs tl-extract for the
logits, the class-token features, the patch embedding (pooled) and one
encoder block's full token map, and compares with PyTorch.

--train-size S makes the checkpoint's position embedding for S x S inputs
while the network runs at --size: tl must interpolate it as torchvision's
interpolate_embeddings does (the reference model is built with it).
--timm writes the state_dict under timm's names and converts it with
tl-convert first. --interp-unit instead checks tl_vit_resize_pos_embedding
directly against interpolate_embeddings (a small C harness linked with
libtl.a). Exit status 0 when every value agrees within the tolerance.

usage: parity_vit.py --bin DIR --work DIR [--arch vit_ti_16|vit_s_16|vit_b_16]
       [--size S] [--train-size S] [--classes K] [--images N] [--dtype F16|BF16]
       [--timm] [--no-token-map] [--allow-unwired] | --interp-unit
"""
import argparse, os, re, subprocess, sys

import numpy as np
import torch
import torch.nn as nn
from torchvision.models.vision_transformer import VisionTransformer, interpolate_embeddings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity_common import compare, meta_for, randomise_bn, render_images, run_layer, to_input, write_safetensors

# width, depth, heads, mlp (timm's vit_tiny/small_patch16_224; torchvision's vit_b_16)
CONFIGS = {"vit_ti_16": (192, 12, 3, 768), "vit_s_16": (384, 12, 6, 1536), "vit_b_16": (768, 12, 12, 3072)}


def build(arch, size, classes):
    d, depth, heads, mlp = CONFIGS[arch]
    return VisionTransformer(image_size=size, patch_size=16, num_layers=depth, num_heads=heads, hidden_dim=d,
                             mlp_dim=mlp, num_classes=classes)


def randomise(model, seed):
    """torchvision zero-initialises the head, the attention biases and the
    class token: give every tensor values so each one is exercised."""
    randomise_bn(model, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or name == "class_token":
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
            elif name == "encoder.pos_embedding":
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
            elif name == "heads.head.weight":
                p.copy_(torch.randn(p.shape, generator=gen) * p.shape[1] ** -0.5)


def timm_name(name):
    """torchvision -> timm VisionTransformer names, written from timm's
    vision_transformer.py independently of lib/models/timm_vit.c."""
    m = re.match(r"encoder\.layers\.encoder_layer_(\d+)\.(.*)$", name)
    if m:
        i, rest = m.groups()
        rest = (rest.replace("ln_1.", "norm1.").replace("ln_2.", "norm2.")
                .replace("self_attention.in_proj_weight", "attn.qkv.weight")
                .replace("self_attention.in_proj_bias", "attn.qkv.bias")
                .replace("self_attention.out_proj.", "attn.proj.")
                .replace("mlp.0.", "mlp.fc1.").replace("mlp.3.", "mlp.fc2."))
        return "blocks.%s.%s" % (i, rest)
    top = {"class_token": "cls_token", "encoder.pos_embedding": "pos_embed"}
    if name in top:
        return top[name]
    for tv, tm in (("conv_proj.", "patch_embed.proj."), ("encoder.ln.", "norm."), ("heads.head.", "head.")):
        if name.startswith(tv):
            return tm + name[len(tv):]
    raise KeyError(name)


def reference(model, x, layers):
    """Outputs of the named layers for input x, as tl-extract reports them."""
    got = {}
    hooks = [model.conv_proj.register_forward_hook(lambda m, i, o: got.__setitem__("conv_proj", o.mean((2, 3)))),
             model.encoder.layers[0].register_forward_hook(
                 lambda m, i, o: got.__setitem__("encoder_layer_0", o.flatten(1))),
             model.encoder.ln.register_forward_hook(lambda m, i, o: got.__setitem__("cls_token", o[:, 0]))]
    with torch.no_grad():
        got["heads.head"] = model(x)
    for h in hooks:
        h.remove()
    return {k: got[k].numpy() for k in layers}


def parity(a):
    torch.manual_seed(a.seed)
    train = a.train_size or a.size
    ckpt_model = build(a.arch, train, a.classes).eval()
    randomise(ckpt_model, a.seed)
    state = {k: v.clone() for k, v in ckpt_model.state_dict().items()}
    model = ckpt_model
    if train != a.size:
        model = build(a.arch, a.size, a.classes).eval()
        model.load_state_dict(interpolate_embeddings(a.size, 16, dict(state)))
    if a.dtype:  # the reference sees the weights tl reads
        cast = torch.float16 if a.dtype == "F16" else torch.bfloat16
        state = {k: v.to(cast).float() for k, v in state.items()}
        if train == a.size:
            model.load_state_dict(state)
        else:
            model.load_state_dict(interpolate_embeddings(a.size, 16, dict(state)))

    os.makedirs(a.work, exist_ok=True)
    ckpt = os.path.join(a.work, "%s.safetensors" % a.arch)
    if a.timm:
        raw = os.path.join(a.work, "timm_state.safetensors")
        write_safetensors(raw, {timm_name(k): v for k, v in state.items()}, {}, a.dtype)
        labels = os.path.join(a.work, "labels.txt")
        with open(labels, "w") as f:
            f.write("".join("c%d\n" % i for i in range(a.classes)))
        r = subprocess.run([os.path.join(a.bin, "tl-convert"), "-q", "--arch", a.arch, "--timm", "--input-size",
                            str(a.size), "--resize-size", str(a.size), "--labels", labels, raw, "-o", ckpt],
                           capture_output=True, text=True)
    else:
        write_safetensors(ckpt, state, meta_for(a.arch, a.classes, a.size), a.dtype)
        r = subprocess.run([os.path.join(a.bin, "tl-info"), ckpt], capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stderr)
        if train != a.size and a.allow_unwired and "pos_embed" in r.stderr:
            print("skipped: tl does not interpolate position embeddings when loading yet")
            return True
        print("FAIL: %s" % r.stderr.strip())
        return False

    paths, arrays = render_images(a.work, a.images, a.size)
    layers = ["heads.head", "cls_token", "conv_proj"] + ([] if a.no_token_map else ["encoder_layer_0"])
    ref = reference(model, to_input(arrays), layers)
    ok = True
    tag = "%s %d%s%s%s" % (a.arch, a.size, " (pos from %d)" % train if train != a.size else "",
                           " timm" if a.timm else "", " " + a.dtype if a.dtype else "")
    for layer in layers:
        got = run_layer(a.bin, ckpt, paths, layer, a.work, pool=layer != "encoder_layer_0")
        ok &= compare("%s %s" % (tag, layer), got, ref[layer], a.tol)
    return ok


HARNESS = r"""
#include "models/vit.h"
#include <stdio.h>
#include <stdlib.h>
/* argv: in out: in = int32 src_tokens, dst_tokens, d, then floats; out = floats or nothing on error. */
int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    FILE *f = fopen(argv[1], "rb");
    int h[3];
    if (!f || fread(h, sizeof h, 1, f) != 1) return 2;
    float *src = malloc((size_t)h[0] * h[2] * sizeof *src), *dst = malloc((size_t)h[1] * h[2] * sizeof *dst);
    if (!src || !dst || fread(src, sizeof *src, (size_t)h[0] * h[2], f) != (size_t)h[0] * h[2]) return 2;
    fclose(f);
    tl_err e = {0};
    if (tl_vit_resize_pos_embedding(src, h[0], dst, h[1], h[2], &e)) {
        printf("error: %s\n", e.msg);
        free(src); free(dst);
        return 1;
    }
    FILE *o = fopen(argv[2], "wb");
    if (!o || fwrite(dst, sizeof *dst, (size_t)h[1] * h[2], o) != (size_t)h[1] * h[2]) return 2;
    fclose(o);
    free(src); free(dst);
    return 0;
}
"""


def interp_unit(a):
    """tl_vit_resize_pos_embedding against interpolate_embeddings."""
    root = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    lib = os.path.abspath(os.path.join(a.bin, "..", "lib", "libtl.a"))
    if not os.path.exists(lib):
        print("skipped: %s not built" % lib)
        return True
    os.makedirs(a.work, exist_ok=True)
    src_c, exe = os.path.join(a.work, "resize_pos.c"), os.path.join(a.work, "resize_pos")
    with open(src_c, "w") as f:
        f.write(HARNESS)
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"] if os.environ.get("TL_SANITIZE") else []
    cc = os.environ.get("CC", "cc")
    try:
        subprocess.run([cc, "-std=c11", "-O1", "-I" + os.path.join(root, "lib"), "-I" + os.path.join(root, "lib/core")]
                       + san + ["-o", exe, src_c, lib, "-lm", "-lpthread"], check=True)
    except (OSError, subprocess.CalledProcessError) as err:
        print("FAIL: cannot build the harness: %s" % err)
        return False
    gen = torch.Generator().manual_seed(5)
    ok = True
    # (src grid, dst grid, width): shrink, grow, odd sizes, identity, to and from 1x1
    for n, m, d in [(14, 10, 192), (14, 24, 64), (7, 14, 33), (14, 14, 8), (3, 1, 5), (1, 4, 6), (5, 2, 3), (10, 7, 16)]:
        pos = torch.randn(1, 1 + n * n, d, generator=gen)
        ref = interpolate_embeddings(16 * m, 16, {"encoder.pos_embedding": pos.clone()})["encoder.pos_embedding"]
        inp, out = os.path.join(a.work, "pos_in.bin"), os.path.join(a.work, "pos_out.bin")
        with open(inp, "wb") as f:
            f.write(np.array([1 + n * n, 1 + m * m, d], np.int32).tobytes())
            f.write(pos.numpy().astype(np.float32).tobytes())
        r = subprocess.run([exe, inp, out], capture_output=True, text=True)
        if r.returncode:
            print("FAIL: %dx%d -> %dx%d: %s%s" % (n, n, m, m, r.stdout, r.stderr))
            ok = False
            continue
        got = np.fromfile(out, np.float32).reshape(1, 1 + m * m, d)
        ok &= compare("resize pos %dx%d -> %dx%d, d %d" % (n, n, m, m, d), got, ref.numpy(), 1e-5)
    # A token count that is not 1 + a square must be refused with a reason.
    with open(inp, "wb") as f:
        f.write(np.array([12, 5, 2], np.int32).tobytes())
        f.write(np.zeros(24, np.float32).tobytes())
    r = subprocess.run([exe, inp, out], capture_output=True, text=True)
    bad_ok = r.returncode == 1 and "square" in r.stdout
    print("resize pos refuses 12 tokens: %s %s" % (r.stdout.strip(), "ok" if bad_ok else "FAIL"))
    return ok and bad_ok


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--arch", default="vit_ti_16", choices=sorted(CONFIGS))
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--train-size", type=int, default=0)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--dtype", choices=["F16", "BF16"])
    p.add_argument("--timm", action="store_true")
    p.add_argument("--no-token-map", action="store_true", help="skip the full encoder_layer_0 map")
    p.add_argument("--interp-unit", action="store_true")
    p.add_argument("--allow-unwired", action="store_true",
                   help="skip (exit 0) when the loader refuses a position embedding of another size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tol", type=float, default=1e-4)
    a = p.parse_args()
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    ok = interp_unit(a) if a.interp_unit else parity(a)
    print("parity_vit: %s" % ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
