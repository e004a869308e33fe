#!/usr/bin/python3
"""Random-weight ResNets, VGGs, SqueezeNets and the small CNN in PyTorch
against tl's inference.

For each architecture: torchvision 0.14's model (the small CNN: the
PyTorch module documented in lib/models/small_cnn.c) with seeded random
weights and random batch-norm statistics, written as a tl checkpoint; a few
images rendered at the input size; tl-extract for the logits and for named
inner layers (spatial ones averaged over H and W, one kept whole); every
value must agree within tol * max |reference| (parity_common.compare).

--dtype F16/BF16 stores the checkpoint in that type; the PyTorch model's
weights are rounded to it first, so both sides compute with the same
numbers. --timm renames the state_dict to timm's names (and shapes: VGG's
classifier as timm's pre_logits convolutions), then converts it with
tl-convert --arch, exercising the loader's timm mapping.

usage: parity_resnet_vgg.py --bin DIR --work DIR [--size S|WxH] [--classes K]
       [--images N] [--dtype F16|BF16] [--timm] [--tol T] ARCH...
"""
import argparse, json, os, shutil, struct, subprocess, sys, time

import numpy as np
import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity_common import (compare, meta_for, parse_size, randomise_bn, render_images, run_layer, to_input,
                           write_safetensors)


def small_cnn(in_channels, classes):
    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.MaxPool2d(2))

    class SmallCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(block(in_channels, 32), block(32, 64), block(64, 128))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(128, classes))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
    return SmallCNN()


def build(arch, classes):
    """The model with seeded random weights. torchvision's own
    initialisation is skipped: on VGG's 130 M parameters it costs seconds,
    and uniform weights scaled by fan-in keep activations as well in range
    (convolution and linear weights U(-b, b), b = sqrt(6 / fan_in), which
    preserves the variance through ReLUs; biases U(-0.1, 0.1)). Tensors over
    a million values repeat one random block of a prime length, which keeps
    every row different at a fraction of the cost."""
    init = torch.nn.init
    saved = {n: getattr(init, n) for n in ("kaiming_normal_", "kaiming_uniform_", "normal_", "uniform_",
                                           "constant_", "zeros_", "ones_", "xavier_uniform_")}
    try:
        for n in saved:
            setattr(init, n, lambda t, *args, **kw: t)
        model = small_cnn(3, classes) if arch == "small_cnn" else getattr(torchvision.models, arch)(num_classes=classes)
    finally:
        for n, f in saved.items():
            setattr(init, n, f)
    gen = torch.Generator().manual_seed(0)
    block = 1000003
    base = torch.rand(block, generator=gen) * 2 - 1
    with torch.no_grad():
        for m in model.modules():
            if not isinstance(m, (nn.Conv2d, nn.Linear)):
                continue
            w = m.weight
            bound = (6.0 / (w[0].numel())) ** 0.5
            if w.numel() > block:
                reps = -(-w.numel() // block)
                w.copy_(base.repeat(reps)[:w.numel()].view_as(w) * bound)
            else:
                w.copy_((torch.rand(w.shape, generator=gen) * 2 - 1) * bound)
            if m.bias is not None:
                m.bias.copy_((torch.rand(m.bias.shape, generator=gen) * 2 - 1) * 0.1)
    return model


def write_f32(path, tensors, meta):
    """parity_common.write_safetensors for float32 only, writing each
    tensor's memory as it is: no copies of VGG's half gigabyte."""
    header, arrays, off = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        a = t.detach().contiguous().numpy()
        assert a.dtype == np.float32, name
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        arrays.append(a)
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for a in arrays:
            f.write(memoryview(a).cast("B"))


def inner_layers(arch):
    """(tl layer name, torch module path, pool over H and W)."""
    if arch.startswith("resnet"):
        # Every layer asked for is one more tl-extract run: the block and
        # feature names are checked on the two BasicBlock networks.
        if arch in ("resnet18", "resnet34"):
            return [("layer1.0", "layer1.0", True), ("layer3", "layer3", True), ("features", "avgpool", True)]
        return [("layer3.1", "layer3.1", True)]
    if arch.startswith("vgg"):
        # Each tl-extract run loads VGG's half gigabyte again: the numbered
        # feature layers are checked on the smallest members only.
        layers = [("features", "classifier.4", True)]
        if arch.startswith("vgg11"):
            last_pool = "features.%d" % (len(build_cache[arch].features) - 1)
            layers.insert(0, (last_pool, last_pool, True))
        return layers
    if arch.startswith("squeezenet"):
        return [("features.5", "features.5", False), ("features", "features", True)]
    return [("features.1", "features.1", True), ("features", "avgpool", True)]


build_cache = {}


def timm_state_dict(arch, sd):
    """torchvision names -> timm's (timm/models/resnet.py, vgg.py), written
    independently of lib/models/timm_*.c."""
    if arch.startswith("resnet"):
        return dict(sd)  # timm's ResNet uses torchvision's names
    if arch.startswith("vgg"):
        out = {}
        for k, v in sd.items():
            if k.startswith("classifier.0."):
                k = "pre_logits.fc1." + k[len("classifier.0."):]
                v = v.reshape(-1, 512, 7, 7) if v.dim() == 2 else v
            elif k.startswith("classifier.3."):
                k = "pre_logits.fc2." + k[len("classifier.3."):]
                v = v.reshape(-1, 4096, 1, 1) if v.dim() == 2 else v
            elif k.startswith("classifier.6."):
                k = "head.fc." + k[len("classifier.6."):]
            out[k] = v
        return out
    raise ValueError("no timm names for %s" % arch)


def round_to(model, dtype):
    torch_dtype = {"F16": torch.float16, "BF16": torch.bfloat16}[dtype]
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(torch_dtype).float())


def check(arch, a):
    t0 = time.time()
    work = os.path.join(a.work, arch)
    os.makedirs(work, exist_ok=True)
    model = build(arch, a.classes)
    build_cache[arch] = model
    randomise_bn(model, seed=1)
    if a.dtype:
        round_to(model, a.dtype)
    model.eval()
    ckpt = os.path.join(work, "model.safetensors")
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    width, height = parse_size(a.size)
    meta = meta_for(arch, a.classes, height, width)
    if a.timm:
        raw = os.path.join(work, "timm.safetensors")
        tsd = timm_state_dict(arch, sd)
        write_safetensors(raw, tsd, {}, dtype=a.dtype) if a.dtype else write_f32(raw, tsd, {})
        subprocess.run([os.path.join(a.bin, "tl-convert"), "-q", "--arch", arch, "--timm", "--input-size",
                        str(a.size), "--resize-size", str(a.size), raw, "-o", ckpt], check=True)
        os.remove(raw)
    elif a.dtype:
        write_safetensors(ckpt, sd, meta, dtype=a.dtype)
    else:
        write_f32(ckpt, sd, meta)

    paths, arrays = render_images(work, a.images, height, width)
    x = to_input(arrays)
    acts = {}
    modules = dict(model.named_modules())
    layers = inner_layers(arch)
    for _, path, _ in layers:
        modules[path].register_forward_hook(lambda m, i, o, path=path: acts.__setitem__(path, o))
    with torch.no_grad():
        logits = model(x).double().numpy()
    ok = compare("%s logits" % arch, run_layer(a.bin, ckpt, paths, "logits", work), logits, a.tol)
    if not a.timm:
        for name, path, pool in layers:
            ref = acts[path]
            if ref.dim() == 4 and pool:
                ref = ref.mean(dim=(2, 3))
            got = run_layer(a.bin, ckpt, paths, name, work, pool=pool)
            ok &= compare("%s %s%s" % (arch, name, "" if pool else " (whole map)"), got,
                          ref.reshape(len(paths), -1).double().numpy(), a.tol)
    shutil.rmtree(work)
    print("%s: %s in %.1f s" % (arch, "ok" if ok else "FAIL", time.time() - t0))
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--size", default="64", help="N or WxH (width x height)")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--dtype", choices=["F16", "BF16"])
    ap.add_argument("--timm", action="store_true")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("archs", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    ok = True
    for arch in a.archs:
        ok &= check(arch, a)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
