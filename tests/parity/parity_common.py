"""Shared pieces of the PyTorch parity tests: write a state_dict as a tl
checkpoint (safetensors by hand: Debian has no safetensors package),
render test images, run tl-extract and compare.

A test builds a torch model with seeded random weights, calls
randomise_bn() so folding batch norm is exercised, then check() which runs
tl-extract on the same images for each layer and compares with reference
tensors computed by the caller. Tolerance: max |diff| <= tol * max |ref|
per layer (the issue's criterion), tol = 1e-4 by default.
"""
import json, os, struct, subprocess

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def randomise_bn(model, seed=1, linear_gain=1.0):
    """Random BN affine parameters and running statistics; optionally scale
    Linear weights so logits are of a trained network's size."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 1.5 + 0.25)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            elif isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 1.5 + 0.25)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
            elif isinstance(m, nn.Linear) and linear_gain != 1.0:
                m.weight.mul_(linear_gain)


def write_safetensors(path, tensors, meta, dtype=None):
    """tensors: name -> torch tensor. dtype 'F16'/'BF16' stores floating
    tensors in that type (to test conversions)."""
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.is_floating_point() and dtype == "F16":
            t, code = t.half(), "F16"
        elif t.is_floating_point() and dtype == "BF16":
            t, code = t.bfloat16(), "BF16"
        elif t.dtype == torch.float32:
            code = "F32"
        elif t.dtype == torch.int64:
            code = "I64"
        else:
            raise ValueError("dtype %s of %s" % (t.dtype, name))
        b = t.view(torch.int16).numpy().tobytes() if code in ("F16", "BF16") else t.numpy().tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def parse_size(text):
    """"64" -> (64, 64); "320x224" -> (320, 224): width, height."""
    w, _, h = str(text).partition("x")
    return int(w), int(h or w)


def size_text(width, height):
    return str(width) if width == height else "%dx%d" % (width, height)


def meta_for(arch, classes, height, width=None, mean=IMAGENET_MEAN, std=IMAGENET_STD, extra=None):
    """Metadata for a checkpoint whose images are fed at exactly their size
    (resized straight to the input, and the images are rendered at that
    size); width defaults to height."""
    width = width or height
    m = {"tl.format": "1", "tl.arch": arch, "tl.num_classes": str(classes),
         "tl.classes": json.dumps(["c%d" % i for i in range(classes)]),
         "tl.input_size": size_text(width, height), "tl.resize_size": str(min(width, height)),
         "tl.resize_mode": "squash", "tl.mean": json.dumps(mean), "tl.std": json.dumps(std)}
    if extra:
        m.update(extra)
    return m


def render_images(work, n, height, width=None, channels=3, seed=2):
    """n images with smooth structure plus noise; returns (paths, uint8 arrays HWC)."""
    width = width or height
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    paths, arrays = [], []
    for i in range(n):
        base = np.stack([np.sin(xx / (7 + 3 * i) + c) * np.cos(yy / (5 + 2 * c)) for c in range(3)], -1)
        img = np.clip(127.5 + 100 * base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        if channels == 1:
            img = img[:, :, :1].repeat(3, axis=2)
        p = os.path.join(work, "img%d.png" % i)
        Image.fromarray(img).save(p)
        paths.append(p)
        arrays.append(img)
    return paths, arrays


def to_input(arrays, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """uint8 HWC images -> normalised NCHW float tensor, as tl preprocesses."""
    xs = [(a.astype(np.float32) / 255.0 - np.array(mean, np.float32)) / np.array(std, np.float32) for a in arrays]
    return torch.from_numpy(np.stack([x.transpose(2, 0, 1) for x in xs]).copy())


def run_layer(tl_bin, ckpt, paths, layer, work, pool=True):
    lst = os.path.join(work, "list.txt")
    with open(lst, "w") as f:
        f.write("\n".join(paths) + "\n")
    out = os.path.join(work, layer.replace("/", "_") + ".tsv")
    cmd = [os.path.join(tl_bin, "tl-extract"), "-q", "-m", ckpt, "--layer", layer, "-f", "tsv", "-o", out, lst]
    if not pool:
        cmd.insert(-1, "--no-pool")
    subprocess.run(cmd, check=True)
    rows = {}
    for line in open(out):
        if line.startswith("#"):
            continue
        f = line.rstrip("\n").split("\t")
        rows[os.path.basename(f[0])] = np.array(f[2:], dtype=np.float64)
    return np.stack([rows[os.path.basename(p)] for p in paths])


def compare(name, got, ref, tol=1e-4):
    """Prints the comparison; returns True when max|diff| <= tol * max|ref|."""
    ref = np.asarray(ref, dtype=np.float64).reshape(got.shape)
    diff = np.abs(got - ref).max()
    scale = max(np.abs(ref).max(), 1e-30)
    ok = diff <= tol * scale
    print("%-40s max |diff| %.3g, max |ref| %.3g, ratio %.2e %s" % (name, diff, scale, diff / scale,
                                                                     "ok" if ok else "FAIL"))
    return ok
