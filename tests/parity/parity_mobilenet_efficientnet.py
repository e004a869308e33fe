#!/usr/bin/python3
"""PyTorch parity for MobileNetV3 (small, large) and EfficientNet (B0-B3),
and for timm's names of mobilenetv2_100, mobilenetv3_*_100 and
efficientnet_b*.

For each case: torchvision 0.14's model with seeded random weights and
random batch-norm statistics (eval mode), written as a tl checkpoint,
images rendered at the input size, tl-extract run for the logits and for
inner named layers (pooled over H, W as tl-extract does by default, or the
exact map with --no-pool), compared with PyTorch (max |diff| <= 1e-4 *
max |ref|).

timm cases: the torchvision state_dict renamed to timm's names (the
mapping below is written from timm's module structure, independently of
lib/models/timm_*.c), saved bare as timm publishes model.safetensors,
converted with `tl-convert --arch ARCH --timm`, and its logits compared
with the network timm computes. For MobileNetV3 that network has
BatchNorm2d's default eps 1e-5 (torchvision: 1e-3) and timm's conv_head
(a 1x1 conv with bias after pooling: the same data as classifier.0, shaped
[n, c, 1, 1]); the reference is the torchvision model with every BN eps
set to 1e-5, and the converted checkpoint must say tl.bn_eps = 1e-05.

usage: parity_mobilenet_efficientnet.py --bin DIR --work DIR CASE...
       CASE = ARCH[@SIZE][:f16|:bf16][:w0.75]   torchvision names (SIZE: N or WxH)
            | timm:ARCH[@SIZE][:auto]            timm names through tl-convert
                                                 (--timm, or detected with :auto)
            | count:ARCH                         tl-info's parameter count (1000
                                                 classes) equals torchvision's
Exit status 0 when every comparison passes; 77 when a needed tool is
missing (printed as skipped).
"""
import argparse, json, os, subprocess, sys

import torch
import torch.nn as nn
import torchvision
from torchvision.models import mobilenetv3 as tv_mnv3
from torchvision.ops.misc import SqueezeExcitation

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity_common import (compare, meta_for, parse_size, randomise_bn, render_images, run_layer,  # noqa: E402
                           to_input, write_safetensors)

CLASSES = 10
SKIP = 77

# Inner layers checked per architecture: (tl layer name = torchvision module
# path, pooled over H,W as tl-extract does by default; else the exact map).
INNER = {
    "mobilenet_v3_small": [("features.4", True), ("features.9", False), ("avgpool", True), ("classifier.1", True)],
    "mobilenet_v3_large": [("features.5", True), ("features.13", False), ("avgpool", True),
                           ("classifier.1", True)],
    "efficientnet_b0": [("features.2.1", True), ("features.4", True), ("features.6.0", False), ("avgpool", True)],
    "efficientnet_b1": [("features.3", True), ("features.6.4", True), ("avgpool", True)],
    "efficientnet_b2": [("features.5.3", True), ("features.8", True), ("avgpool", True)],
    "efficientnet_b3": [("features.1.1", True), ("features.6", False), ("avgpool", True)],
    "mobilenet_v2": [("features.13", True), ("features.17", False), ("features.18", True)],
}


def build(arch, width, classes=CLASSES):
    if arch.startswith("mobilenet_v3") and width != 1.0:
        # torchvision's builder passes width_mult on to the class, which
        # rejects it: build from the configuration directly.
        setting, last = tv_mnv3._mobilenet_v3_conf(arch, width_mult=width)
        return tv_mnv3.MobileNetV3(setting, last, num_classes=classes)
    kw = {"width_mult": width} if width != 1.0 else {}
    return getattr(torchvision.models, arch)(num_classes=classes, **kw)


def module_at(model, path):
    m = model
    for part in path.split("."):
        m = m[int(part)] if part.isdigit() else getattr(m, part)
    return m


def reference(model, x, layers):
    """Logits and the named layers' outputs (pooled when asked)."""
    acts, hooks = {}, []
    for name, _ in layers:
        mod = module_at(model, name)
        hooks.append(mod.register_forward_hook(lambda m, i, o, n=name: acts.__setitem__(n, o.detach().clone())))
    with torch.no_grad():
        logits = model(x).double().numpy()
    for h in hooks:
        h.remove()
    out = {}
    for name, pool in layers:
        a = acts[name]
        if a.dim() == 4 and pool:
            a = a.mean(dim=(2, 3))
        out[name] = a.reshape(a.shape[0], -1).double().numpy()
    return logits, out


# timm's names, from timm's modules: EfficientNet (mobilenetv2_100,
# efficientnet_b*) and MobileNetV3. Blocks are numbered by stage.

def timm_stages(arch):
    return {"mobilenet_v2": [1, 2, 3, 4, 3, 3, 1], "mobilenet_v3_large": [1, 2, 3, 4, 2, 3],
            "mobilenet_v3_small": [1, 2, 3, 2, 3]}[arch]


def timm_block(stages, index):
    first = 1
    for s, n in enumerate(stages):
        if index < first + n:
            return "blocks.%d.%d" % (s, index - first)
        first += n
    raise ValueError(index)


def timm_block_params(prefix, modules, out):
    """modules: the torchvision block's sub-modules in order, as
    ('convbn'|'conv'|'bn'|'se', module). DS blocks (no expansion) are
    conv_dw/bn1/[se]/conv_pw/bn2 in timm, IR blocks
    conv_pw/bn1/conv_dw/bn2/[se]/conv_pwl/bn3."""
    convs = [m for kind, m in modules if kind in ("convbn", "conv")]
    ds = len(convs) == 2
    names = iter(["conv_dw", "bn1", "conv_pw", "bn2"] if ds else ["conv_pw", "bn1", "conv_dw", "bn2", "conv_pwl",
                                                                   "bn3"])
    for kind, m in modules:
        if kind == "se":
            for k, v in m.fc1.state_dict().items():
                out["%s.se.conv_reduce.%s" % (prefix, k)] = v
            for k, v in m.fc2.state_dict().items():
                out["%s.se.conv_expand.%s" % (prefix, k)] = v
            continue
        parts = [m[0], m[1]] if kind == "convbn" else [m]
        for p in parts:
            name = next(names)
            for k, v in p.state_dict().items():
                out["%s.%s.%s" % (prefix, name, k)] = v


def timm_state_dict(arch, model):
    sd = {}
    def put(prefix, mod):
        for k, v in mod.state_dict().items():
            sd["%s.%s" % (prefix, k)] = v
    f = model.features
    put("conv_stem", f[0][0])
    put("bn1", f[0][1])
    if arch.startswith("efficientnet"):
        for k in range(1, 8):
            for j, blk in enumerate(f[k]):
                mods = [("se" if isinstance(m, SqueezeExcitation) else "convbn", m) for m in blk.block]
                timm_block_params("blocks.%d.%d" % (k - 1, j), mods, sd)
        put("conv_head", f[8][0])
        put("bn2", f[8][1])
        put("classifier", model.classifier[1])
        return sd
    stages = timm_stages(arch)
    if arch == "mobilenet_v2":
        for i in range(1, len(f) - 1):
            seq = f[i].conv
            mods = [("convbn" if isinstance(m, nn.Sequential) else "conv" if isinstance(m, nn.Conv2d) else "bn", m)
                    for m in seq]
            timm_block_params(timm_block(stages, i), mods, sd)
        put("conv_head", f[-1][0])
        put("bn2", f[-1][1])
        put("classifier", model.classifier[1])
        return sd
    for i in range(1, sum(stages) + 1):  # the last 1x1 conv is a stage of its own in timm
        mods = [("se" if isinstance(m, SqueezeExcitation) else "convbn", m) for m in f[i].block]
        timm_block_params(timm_block(stages, i), mods, sd)
    last = "blocks.%d.0" % len(stages)
    put(last + ".conv", f[-1][0])
    put(last + ".bn1", f[-1][1])
    head = model.classifier[0]
    sd["conv_head.weight"] = head.weight.detach().reshape(head.out_features, head.in_features, 1, 1)
    sd["conv_head.bias"] = head.bias.detach()
    put("classifier", model.classifier[3])
    return sd


def convert_supports_arch(tl_bin):
    try:
        h = subprocess.run([os.path.join(tl_bin, "tl-convert"), "--help"], capture_output=True, text=True).stdout
    except OSError:
        return False
    return "--arch" in h and "--timm" in h


def read_meta(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n)).get("__metadata__", {})


def count_case(arch, tl_bin, work):
    """tl-info's parameter count for the 1000-class network equals
    torchvision's sum(p.numel()); prints tl's multiply-adds."""
    case_dir = os.path.join(work, "count_" + arch)
    os.makedirs(case_dir, exist_ok=True)
    model = build(arch, 1.0, classes=1000)
    want = sum(p.numel() for p in model.parameters())
    ckpt = os.path.join(case_dir, "model.safetensors")
    write_safetensors(ckpt, model.state_dict(), meta_for(arch, 1000, 224), dtype="BF16")
    out = subprocess.run([os.path.join(tl_bin, "tl-info"), ckpt], check=True, capture_output=True,
                         text=True).stdout
    fields = dict(line.split(None, 1) for line in out.splitlines() if line.startswith(("parameters", "mult-adds")))
    got = int(fields["parameters"].split()[0].replace(",", "").replace("_", "").replace("'", ""))
    ok = got == want
    print("%-40s tl-info %d parameters, torchvision %d %s; mult-adds %s" % (
        arch + " count", got, want, "ok" if ok else "FAIL", fields.get("mult-adds", "?").strip()))
    return ok


def run_case(spec, tl_bin, work):
    if spec.startswith("count:"):
        return count_case(spec[6:], tl_bin, work)
    timm = spec.startswith("timm:")
    if timm:
        spec = spec[5:]
    parts = spec.split(":")
    arch, size = parts[0], "64"
    if "@" in arch:
        arch, size = arch.split("@")
    in_w, in_h = parse_size(size)
    dtype, width, auto = None, 1.0, False
    for p in parts[1:]:
        if p == "auto":
            auto = True
        elif p in ("f16", "bf16"):
            dtype = p.upper()
        elif p.startswith("w"):
            width = float(p[1:])
    label = ("timm:" if timm else "") + spec
    case_dir = os.path.join(work, label.replace(":", "_").replace("@", "_"))
    os.makedirs(case_dir, exist_ok=True)

    torch.manual_seed(0)
    model = build(arch, width)
    randomise_bn(model, seed=1)
    model.eval()
    sd = model.state_dict()
    if dtype:  # the reference sees the weights as stored
        with torch.no_grad():
            for t in sd.values():
                if t.is_floating_point():
                    t.copy_(t.half().float() if dtype == "F16" else t.bfloat16().float())
    ckpt = os.path.join(case_dir, "model.safetensors")
    if timm:
        if not convert_supports_arch(tl_bin):
            print("%s: skipped (tl-convert has no --arch/--timm yet)" % label)
            return None
        bare = os.path.join(case_dir, "timm.safetensors")
        write_safetensors(bare, timm_state_dict(arch, model), {"format": "pt"})
        cmd = [os.path.join(tl_bin, "tl-convert"), "-q", "--arch", arch, "--input-size", str(size),
               "--resize-size", str(size), bare, "-o", ckpt] + ([] if auto else ["--timm"])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            print("%s: tl-convert failed: %s" % (label, r.stderr.strip()))
            return False
        if arch.startswith("mobilenet_v3"):
            eps = read_meta(ckpt).get("tl.bn_eps")
            if eps is None or abs(float(eps) - 1e-5) > 1e-9:
                print("%s: FAIL: the converted checkpoint says tl.bn_eps=%s; timm's MobileNetV3 uses 1e-05"
                      % (label, eps))
                return False
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eps = 1e-5
    else:
        extra = {"tl.width_mult": repr(width)} if width != 1.0 else None
        write_safetensors(ckpt, sd, meta_for(arch, CLASSES, in_h, in_w, extra=extra), dtype=dtype)

    paths, arrays = render_images(case_dir, 2, in_h, in_w)
    layers = [] if timm else INNER.get(arch, [])
    logits, inner = reference(model, to_input(arrays), layers)
    ok = compare("%s logits" % label, run_layer(tl_bin, ckpt, paths, "logits", case_dir), logits)
    for name, pool in layers:
        got = run_layer(tl_bin, ckpt, paths, name, case_dir, pool=pool)
        ok &= compare("%s %s%s" % (label, name, "" if pool else " (map)"), got, inner[name])
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("cases", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(2)
    results = [run_case(c, a.bin, a.work) for c in a.cases]
    if any(r is False for r in results):
        sys.exit(1)
    if all(r is None for r in results):
        sys.exit(SKIP)
    sys.exit(0)


if __name__ == "__main__":
    main()
