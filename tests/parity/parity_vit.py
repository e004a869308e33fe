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
--size WxH runs an oblong input (width x height): torchvision's
VisionTransformer takes only squares, so the reference is the same module
with the grid check lifted and its position embedding resized by
F.interpolate(size=(h/16, w/16), mode="bicubic", align_corners=True), the
rectangular form of interpolate_embeddings.
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
from parity_common import (compare, meta_for, parse_size, randomise_bn, render_images, run_layer, to_input,
                           write_safetensors)

# width, depth, heads, mlp (timm's vit_tiny/small_patch16_224; torchvision's vit_b_16)
CONFIGS = {"vit_ti_16": (192, 12, 3, 768), "vit_s_16": (384, 12, 6, 1536), "vit_b_16": (768, 12, 12, 3072)}


class OblongViT(VisionTransformer):
    """torchvision's VisionTransformer on a W x H input: the same layers,
    without the square-input check; the caller sets encoder.pos_embedding
    for the (h/16) x (w/16) grid."""

    def _process_input(self, x):
        n, _, h, w = x.shape
        p = self.patch_size
        x = self.conv_proj(x)
        return x.reshape(n, self.hidden_dim, (h // p) * (w // p)).permute(0, 2, 1)


def build(arch, size, classes, oblong=False):
    d, depth, heads, mlp = CONFIGS[arch]
    cls = OblongViT if oblong else VisionTransformer
    return cls(image_size=size, patch_size=16, num_layers=depth, num_heads=heads, hidden_dim=d,
               mlp_dim=mlp, num_classes=classes)


def resize_pos(state, width, height):
    """The rectangular interpolate_embeddings: class token kept, the square
    grid resized bicubically (align_corners=True) to (height/16, width/16)."""
    pos = state["encoder.pos_embedding"]
    n = int(round((pos.shape[1] - 1) ** 0.5))
    d = pos.shape[2]
    grid = pos[:, 1:].reshape(1, n, n, d).permute(0, 3, 1, 2)
    grid = nn.functional.interpolate(grid, size=(height // 16, width // 16), mode="bicubic", align_corners=True)
    state = dict(state)
    state["encoder.pos_embedding"] = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, d)], 1)
    return state


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
    width, height = parse_size(a.size)
    oblong = width != height
    train = a.train_size or max(width, height)
    ckpt_model = build(a.arch, train, a.classes).eval()
    randomise(ckpt_model, a.seed)
    state = {k: v.clone() for k, v in ckpt_model.state_dict().items()}

    def reference_model(st):
        if oblong:
            m = build(a.arch, train, a.classes, oblong=True).eval()
            st = resize_pos(st, width, height)
            m.encoder.pos_embedding = nn.Parameter(st["encoder.pos_embedding"].clone())
            m.load_state_dict(st)
            return m
        if train == width:
            ckpt_model.load_state_dict(st)
            return ckpt_model
        m = build(a.arch, width, a.classes).eval()
        m.load_state_dict(interpolate_embeddings(width, 16, dict(st)))
        return m

    if a.dtype:  # the reference sees the weights tl reads
        cast = torch.float16 if a.dtype == "F16" else torch.bfloat16
        state = {k: v.to(cast).float() for k, v in state.items()}
    model = reference_model(state)

    os.makedirs(a.work, exist_ok=True)
    ckpt = os.path.join(a.work, "%s.safetensors" % a.arch)
    if a.timm:
        raw = os.path.join(a.work, "timm_state.safetensors")
        write_safetensors(raw, {timm_name(k): v for k, v in state.items()}, {}, a.dtype)
        labels = os.path.join(a.work, "labels.txt")
        with open(labels, "w") as f:
            f.write("".join("c%d\n" % i for i in range(a.classes)))
        r = subprocess.run([os.path.join(a.bin, "tl-convert"), "-q", "--arch", a.arch, "--timm", "--input-size",
                            str(width), "--resize-size", str(width), "--labels", labels, raw, "-o", ckpt],
                           capture_output=True, text=True)
    else:
        write_safetensors(ckpt, state, meta_for(a.arch, a.classes, height, width), a.dtype)
        r = subprocess.run([os.path.join(a.bin, "tl-info"), ckpt], capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stderr)
        if (train, train) != (width, height) and a.allow_unwired and "pos_embed" in r.stderr:
            print("skipped: tl does not interpolate position embeddings when loading yet")
            return True
        print("FAIL: %s" % r.stderr.strip())
        return False

    paths, arrays = render_images(a.work, a.images, height, width)
    layers = ["heads.head", "cls_token", "conv_proj"] + ([] if a.no_token_map else ["encoder_layer_0"])
    ref = reference(model, to_input(arrays), layers)
    ok = True
    tag = "%s %s%s%s%s" % (a.arch, a.size, " (pos from %d)" % train if (train, train) != (width, height) else "",
                           " timm" if a.timm else "", " " + a.dtype if a.dtype else "")
    for layer in layers:
        got = run_layer(a.bin, ckpt, paths, layer, a.work, pool=layer != "encoder_layer_0")
        ok &= compare("%s %s" % (tag, layer), got, ref[layer], a.tol)
    return ok


HARNESS = r"""
#include "models/vit.h"
#include <stdio.h>
#include <stdlib.h>
/* argv: in out: in = int32 src grid h, w, dst grid h, w, d, then floats; out = floats or nothing on error. */
int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    FILE *f = fopen(argv[1], "rb");
    int h[5];
    if (!f || fread(h, sizeof h, 1, f) != 1) return 2;
    size_t ns = (size_t)(1 + (h[0] > 0 ? h[0] : 0) * (h[1] > 0 ? h[1] : 0)) * h[4];
    size_t nd = (size_t)(1 + (h[2] > 0 ? h[2] : 0) * (h[3] > 0 ? h[3] : 0)) * h[4];
    float *src = malloc(ns * sizeof *src), *dst = malloc(nd * sizeof *dst);
    if (!src || !dst || fread(src, sizeof *src, ns, f) != ns) return 2;
    fclose(f);
    tl_err e = {0};
    if (tl_vit_resize_pos_embedding(src, h[0], h[1], dst, h[2], h[3], h[4], &e)) {
        printf("error: %s\n", e.msg);
        free(src); free(dst);
        return 1;
    }
    FILE *o = fopen(argv[2], "wb");
    if (!o || fwrite(dst, sizeof *dst, nd, o) != nd) return 2;
    fclose(o);
    free(src); free(dst);
    return 0;
}
"""


def interp_unit(a):
    """tl_vit_resize_pos_embedding against interpolate_embeddings (squares) and its
    F.interpolate on oblong grids."""
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
    inp, out = os.path.join(a.work, "pos_in.bin"), os.path.join(a.work, "pos_out.bin")
    # (src grid, dst grid, width): shrink, grow, odd sizes, identity, to and
    # from 1x1; squares against interpolate_embeddings itself, oblong grids
    # against its F.interpolate with a (h, w) size.
    cases = [((14, 14), (10, 10), 192), ((14, 14), (24, 24), 64), ((7, 7), (14, 14), 33), ((14, 14), (14, 14), 8),
             ((3, 3), (1, 1), 5), ((1, 1), (4, 4), 6), ((5, 5), (2, 2), 3), ((10, 10), (7, 7), 16),
             ((14, 14), (14, 20), 24), ((14, 14), (20, 14), 7), ((14, 20), (14, 14), 9), ((6, 4), (3, 9), 5),
             ((14, 14), (1, 5), 4)]
    for (sh, sw), (dh, dw), d in cases:
        pos = torch.randn(1, 1 + sh * sw, d, generator=gen)
        if sh == sw and dh == dw:
            ref = interpolate_embeddings(16 * dh, 16, {"encoder.pos_embedding": pos.clone()})["encoder.pos_embedding"]
        else:
            grid = pos[:, 1:].reshape(1, sh, sw, d).permute(0, 3, 1, 2)
            grid = nn.functional.interpolate(grid, size=(dh, dw), mode="bicubic", align_corners=True)
            ref = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, d)], 1)
        with open(inp, "wb") as f:
            f.write(np.array([sh, sw, dh, dw, d], np.int32).tobytes())
            f.write(pos.numpy().astype(np.float32).tobytes())
        r = subprocess.run([exe, inp, out], capture_output=True, text=True)
        label = "resize pos %dx%d -> %dx%d (w x h), d %d" % (sw, sh, dw, dh, d)
        if r.returncode:
            print("FAIL: %s: %s%s" % (label, r.stdout, r.stderr))
            ok = False
            continue
        got = np.fromfile(out, np.float32).reshape(1, 1 + dh * dw, d)
        ok &= compare(label, got, ref.numpy(), 1e-5)
    # An empty grid must be refused with a reason.
    with open(inp, "wb") as f:
        f.write(np.array([0, 3, 2, 2, 2], np.int32).tobytes())
        f.write(np.zeros(2, np.float32).tobytes())
    r = subprocess.run([exe, inp, out], capture_output=True, text=True)
    bad_ok = r.returncode == 1 and "grid" in r.stdout
    print("resize pos refuses an empty grid: %s %s" % (r.stdout.strip(), "ok" if bad_ok else "FAIL"))
    return ok and bad_ok


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--arch", default="vit_ti_16", choices=sorted(CONFIGS))
    p.add_argument("--size", default="224", help="N or WxH (width x height)")
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
