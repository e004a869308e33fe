#!/usr/bin/python3
"""AdaBN parity: tl-adapt-bn against PyTorch's own procedure.

A torchvision network with seeded random weights and random batch-norm
statistics (so a statistic left untouched would show) is written as a tl
checkpoint; images are rendered at the input size (preprocessing is then
only /255 and the ImageNet normalisation). tl-adapt-bn runs on them, and
PyTorch does reset_running_stats(), momentum=None (cumulative average),
train() with dropout off, and forwards the same images in the same
batches under no_grad(). Every BN's running_mean and running_var must
agree (max |diff| <= 1e-4 * max(1, max |ref|)), every other tensor must be
bit-identical to the input checkpoint, and the metadata must name the data.
The output safetensors is read by hand from its JSON header.

usage: adapt_bn_ref.py --bin DIR --work DIR [--arch mobilenet_v2|resnet18]
       [--images N] [--batch B] [--size S]
"""
import argparse, json, os, struct, subprocess, sys

import numpy as np
import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity_common import (IMAGENET_MEAN, IMAGENET_STD, meta_for, randomise_bn,  # noqa: E402
                           render_images, write_safetensors)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        dt = {"F32": np.float32, "I64": np.int64, "F16": np.float16}[h["dtype"]]
        a, b = h["data_offsets"]
        out[name] = np.frombuffer(blob[a:b], dtype=dt).reshape(h["shape"])
    return out, meta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--arch", default="mobilenet_v2")
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    os.makedirs(a.work, exist_ok=True)
    imgdir = os.path.join(a.work, "target")
    os.makedirs(imgdir, exist_ok=True)

    model = getattr(torchvision.models, a.arch)(weights=None)
    randomise_bn(model, seed=3)
    ckpt = os.path.join(a.work, "model.safetensors")
    write_safetensors(ckpt, model.state_dict(), meta_for(a.arch, 1000, a.size))
    paths, arrays = render_images(imgdir, a.images, a.size)
    out = os.path.join(a.work, "adapted.safetensors")
    r = subprocess.run([os.path.join(a.bin, "tl-adapt-bn"), "-m", ckpt, "--batch", str(a.batch), "-j", "3",
                        imgdir, "-o", out], capture_output=True, text=True)
    print(r.stderr, end="")
    if r.returncode != 0:
        print("tl-adapt-bn failed with status %d" % r.returncode)
        return 1

    # The folder is read in name order; so are these images.
    order = sorted(range(len(paths)), key=lambda i: os.path.basename(paths[i]))
    x = torch.stack([torch.from_numpy(arrays[i]).permute(2, 0, 1).float() / 255.0 for i in order])
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    with torch.no_grad():
        for b in range(0, len(x), a.batch):
            model(x[b:b + a.batch])
    ref = model.state_dict()

    got, meta = read_safetensors(out)
    bad, worst = 0, 0.0
    for name, t in ref.items():
        if name.endswith("num_batches_tracked"):
            continue
        if name not in got:
            print("missing tensor %s" % name)
            bad += 1
            continue
        g = got[name]
        if name.endswith("running_mean") or name.endswith("running_var"):
            r_ = t.numpy()
            err = float(np.abs(g - r_).max()) / max(1.0, float(np.abs(r_).max()))
            worst = max(worst, err)
            if err > 1e-4:
                print("%s: relative error %.3g" % (name, err))
                bad += 1
            if np.array_equal(g, before[name].numpy()):
                print("%s: unchanged" % name)
                bad += 1
        elif not np.array_equal(g, before[name].numpy()):
            print("%s: weight changed" % name)
            bad += 1
    if meta.get("tl.adapted_bn_on") != imgdir or meta.get("tl.adapted_bn_images") != str(a.images):
        print("metadata: %r %r" % (meta.get("tl.adapted_bn_on"), meta.get("tl.adapted_bn_images")))
        bad += 1
    print("%s: %d BN layers, %d images in batches of %d, worst relative error %.3g, %s" %
          (a.arch, len(bns), a.images, a.batch, worst, "FAIL" if bad else "ok"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
