#!/usr/bin/python3
"""Checks a checkpoint converted from TFLite (tl_tflite_convert) with PyTorch.

Loads CHECKPOINT.safetensors strictly into torchvision's mobilenet_v2 (or the
MobileNetV1 below, written in the same style), emulates TF "SAME" padding as
tl.padding = "tf_same" says (pad right/bottom by one before every stride-2 3x3
conv, no padding in that conv), preprocesses as the metadata says and prints
top-1 on a manifest (path<TAB>index, sorted-wnid index; +1 for 1001-output
models whose class 0 is "background").

Usage: tflite_check.py CHECKPOINT.safetensors LABELS_TSV [--limit N] [--ref MODEL.tflite]
  --ref also runs ../shared/tools/tflite_ref.py's NumPy execution of the
  original model on the first images and prints the largest logit difference.
Run with Debian's /usr/bin/python3 (torch, torchvision, PIL, numpy)."""
import argparse, json, os, struct, sys

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision
    from PIL import Image
    from torchvision import transforms
except ImportError as exc:  # the caller treats this as "skipped"
    print(f"skipped: {exc}")
    sys.exit(0)

DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    sd = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        a = np.frombuffer(data[base + b:base + e], DTYPES[t["dtype"]]).reshape(t["shape"])
        sd[name] = torch.from_numpy(a.copy())
    return sd, meta


class MobileNetV1(nn.Module):
    """features.0 = conv-bn-relu6; features.1..13 = dw-bn-relu6-pw-bn-relu6; classifier.1 = Linear."""

    def __init__(self, width_mult=1.0, num_classes=1001):
        super().__init__()
        d = lambda c: max(int(c * width_mult), 8)
        strides = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
        outs = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
        cin = d(32)
        layers = [nn.Sequential(nn.Conv2d(3, cin, 3, 2, 1, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(inplace=True))]
        for s, c in zip(strides, outs):
            c = d(c)
            layers.append(nn.Sequential(
                nn.Conv2d(cin, cin, 3, s, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(inplace=True),
                nn.Conv2d(cin, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU6(inplace=True)))
            cin = c
        self.features = nn.Sequential(*layers)
        self.num_features = cin
        self.classifier = nn.Sequential(nn.Dropout(0.001), nn.Linear(cin, num_classes)) if num_classes else None

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x) if self.classifier is not None else x


def tf_same(model):
    """Stride-2 3x3 convs: TF pads the extra row/column at the bottom/right."""
    def pre(mod, inp):
        return (F.pad(inp[0], (0, 1, 0, 1)),)
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.stride == (2, 2) and m.kernel_size == (3, 3):
            m.padding = (0, 0)
            m.register_forward_pre_hook(pre)


def build(meta):
    arch, w, nc = meta["tl.arch"], float(meta["tl.width_mult"]), int(meta["tl.num_classes"])
    if arch == "mobilenet_v2":
        model = torchvision.models.mobilenet_v2(num_classes=max(nc, 1), width_mult=w)
        if nc == 0:
            model.classifier = nn.Identity()
    elif arch == "mobilenet_v1":
        model = MobileNetV1(w, nc)
    else:
        sys.exit(f"tflite_check: unknown tl.arch {arch}")
    if meta.get("tl.padding") == "tf_same":
        tf_same(model)
    return model.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("labels_tsv")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--ref", help="original .tflite: compare logits with tflite_ref.py")
    a = ap.parse_args()

    sd, meta = load_safetensors(a.checkpoint)
    model = build(meta)
    model.load_state_dict(sd, strict=True)  # names and shapes must match torchvision exactly
    nc = int(meta["tl.num_classes"])
    if nc and len(json.loads(meta["tl.classes"])) != nc:
        sys.exit("tflite_check: tl.classes does not have tl.num_classes entries")
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(float((m.running_var + m.eps).max()) == 1.0 == float((m.running_var + m.eps).min()) for m in bn), \
        "running_var + eps is not exactly 1"

    size, resize = int(meta["tl.input_size"]), int(meta["tl.resize_size"])
    mean, std = json.loads(meta["tl.mean"]), json.loads(meta["tl.std"])
    tf = transforms.Compose([transforms.Resize(resize, interpolation=transforms.InterpolationMode.BILINEAR),
                             transforms.CenterCrop(size), transforms.ToTensor(), transforms.Normalize(mean, std)])
    root = os.path.dirname(os.path.abspath(a.labels_tsv))
    items = [l.rstrip("\n").split("\t") for l in open(a.labels_tsv) if l.strip()]
    if a.limit:
        items = items[:a.limit]
    off = 1 if nc == 1001 else 0

    if a.ref:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/tools"))
        sys.path.insert(0, "/work/shared/tools")
        import tflite_ref
        ref = tflite_ref.load(a.ref)
        x = torch.stack([tf(Image.open(os.path.join(root, p)).convert("RGB")) for p, _ in items[:4]])
        with torch.no_grad():
            y = model(x).numpy()
        yr, _ = tflite_ref.run(ref, x.permute(0, 2, 3, 1).numpy().astype(np.float32))
        d = np.abs(y - yr).max()
        print(f"ref: max |logit difference| {d:.2e} (logit range {np.abs(yr).max():.2f}),"
              f" same top-1 {int((y.argmax(1) == yr.argmax(1)).sum())}/{len(y)}")

    if nc == 0:
        print(f"{os.path.basename(a.checkpoint)} {meta['tl.arch']}: a feature extractor, no top-1")
        return
    ok = 0
    with torch.no_grad():
        for i in range(0, len(items), 64):
            chunk = items[i:i + 64]
            x = torch.stack([tf(Image.open(os.path.join(root, p)).convert("RGB")) for p, _ in chunk])
            pred = model(x).argmax(1)
            ok += sum(int(pred[k]) == int(lab) + off for k, (_, lab) in enumerate(chunk))
    print(f"{os.path.basename(a.checkpoint)} {meta['tl.arch']} width {meta['tl.width_mult']} "
          f"N {len(items)} top1 {ok / len(items):.4f}")


if __name__ == "__main__":
    main()
