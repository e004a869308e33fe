#!/usr/bin/python3
"""Random-weight MobileNets in PyTorch against tl's inference.

Builds torchvision's mobilenet_v2 (or a MobileNetV1 named as tl names it)
with random weights and random batch-norm statistics (so folding BN into
convolutions is exercised), optionally with TensorFlow SAME padding, writes
it as a tl checkpoint, renders a few images at the input size, runs
tl-extract for the logits and a pooled inner layer, and compares with
PyTorch. Exit status 0 when every value agrees within the tolerance.

usage: mobilenet_parity.py --bin DIR --work DIR [--arch mobilenet_v2|mobilenet_v1]
       [--tf-same] [--width W] [--size S|WxH] [--classes K]
(WxH: an oblong input, width x height, resized straight to; without
tl.resize_mode in the metadata, as checkpoints made before it.)
"""
import argparse, json, os, struct, subprocess, sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image


class SamePad(nn.Module):
    """TensorFlow SAME padding in front of a convolution with padding 0."""

    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        self.k, self.s = conv.kernel_size[0], conv.stride[0]
        conv.padding = (0, 0)

    def forward(self, x):
        h, w = x.shape[-2:]
        def pads(n):
            out = (n + self.s - 1) // self.s
            total = max((out - 1) * self.s + self.k - n, 0)
            return total // 2, total - total // 2
        t, b = pads(h)
        l, r = pads(w)
        return self.conv(F.pad(x, (l, r, t, b)))


def same_padding(module):
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d) and child.kernel_size[0] > 1:
            setattr(module, name, SamePad(child))
        else:
            same_padding(child)


def mobilenet_v1(width, classes):
    def ch(c):
        return max(int(c * width + 1e-4), 8)
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
              (512, 1), (512, 1), (1024, 2), (1024, 1)]
    layers = [nn.Sequential(nn.Conv2d(3, ch(32), 3, 2, 1, bias=False), nn.BatchNorm2d(ch(32)), nn.ReLU6())]
    cin = ch(32)
    for c, s in blocks:
        cout = ch(c)
        layers.append(nn.Sequential(
            nn.Conv2d(cin, cin, 3, s, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(),
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6()))
        cin = cout
    class V1(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(cin, classes))

        def forward(self, x):
            x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
            return self.classifier(x)
    return V1()


def randomise(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 1.5 + 0.25)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            elif isinstance(m, nn.Linear):
                m.weight.mul_(30)  # logits of a trained network's size, not ~0.1


def write_safetensors(path, tensors, meta):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().numpy()
        dtype = {np.float32: "F32", np.int64: "I64"}[a.dtype.type]
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_tsv(path):
    rows = {}
    for line in open(path):
        if line.startswith("#"):
            continue
        f = line.rstrip("\n").split("\t")
        rows[os.path.basename(f[0])] = np.array(f[2:], dtype=np.float64)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--arch", default="mobilenet_v2")
    ap.add_argument("--tf-same", action="store_true")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--size", default="224", help="N or WxH (width x height)")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    in_w, _, in_h = a.size.partition("x")
    in_w, in_h = int(in_w), int(in_h or in_w)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    if a.arch == "mobilenet_v2":
        model = torchvision.models.mobilenet_v2(num_classes=a.classes, width_mult=a.width)
        inner = "features.13"
    else:
        model = mobilenet_v1(a.width, a.classes)
        inner = "features.7"
    randomise(model, gen)
    model.eval()
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    meta = {"tl.format": "1", "tl.arch": a.arch, "tl.width_mult": repr(a.width), "tl.num_classes": str(a.classes),
            "tl.classes": json.dumps(["c%d" % i for i in range(a.classes)]), "tl.input_size": a.size,
            "tl.resize_size": str(min(in_w, in_h)), "tl.mean": json.dumps(mean), "tl.std": json.dumps(std),
            "tl.padding": "tf_same" if a.tf_same else "torch"}
    os.makedirs(a.work, exist_ok=True)
    ckpt = os.path.join(a.work, "model.safetensors")
    write_safetensors(ckpt, model.state_dict(), meta)
    if a.tf_same:
        same_padding(model)

    rng = np.random.default_rng(2)
    paths, batch = [], []
    yy, xx = np.mgrid[0:in_h, 0:in_w]
    for i in range(a.images):
        # smooth structure plus noise: activations of every sign and size
        base = np.stack([np.sin(xx / (7 + 3 * i) + c) * np.cos(yy / (5 + 2 * c)) for c in range(3)], -1)
        img = np.clip(127.5 + 100 * base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        p = os.path.join(a.work, "img%d.png" % i)
        Image.fromarray(img).save(p)
        paths.append(p)
        x = (img.astype(np.float32) / 255.0 - np.array(mean, np.float32)) / np.array(std, np.float32)
        batch.append(torch.from_numpy(x.transpose(2, 0, 1).copy()))
    x = torch.stack(batch)
    acts = {}
    model.features[int(inner.split(".")[1])].register_forward_hook(lambda m, i, o: acts.__setitem__("inner", o))
    with torch.no_grad():
        logits = model(x).double().numpy()
        pooled = acts["inner"].mean(dim=(2, 3)).double().numpy()

    lst = os.path.join(a.work, "list.txt")
    with open(lst, "w") as f:
        f.write("\n".join(paths) + "\n")
    worst = 0.0
    for layer, ref in (("logits", logits), (inner, pooled)):
        out = os.path.join(a.work, layer + ".tsv")
        subprocess.run([os.path.join(a.bin, "tl-extract"), "-q", "-m", ckpt, "--layer", layer, "-f", "tsv",
                        "-o", out, lst], check=True)
        got = read_tsv(out)
        for i, p in enumerate(paths):
            d = got[os.path.basename(p)]
            err = np.abs(d - ref[i]) / (a.tol + a.tol * np.abs(ref[i]))
            worst = max(worst, err.max())
            print("%s %s %s: max |diff| %.3g (values up to %.3g)" % (a.arch, layer, os.path.basename(p),
                  np.abs(d - ref[i]).max(), np.abs(ref[i]).max()))
    print("worst error / tolerance (atol = rtol = %g): %.3f" % (a.tol, worst))
    sys.exit(0 if worst <= 1.0 else 1)


if __name__ == "__main__":
    main()
