"""The PyTorch side of `make bench`: the same cases as tl-bench, printed as
the same JSON line. Run it with Debian's /usr/bin/python3 (PyTorch 1.13);
the caller sets OMP_NUM_THREADS / OPENBLAS_NUM_THREADS and, for the
"pytorch-tuned" peer, GLIBC_TUNABLES.

usage: torch_bench.py MODE ARCH BATCH --weights FILE.pt [--threads T]
                      [--iters N] [--warmup W] [--max-seconds S]
       torch_bench.py extract ARCH BATCH --weights FILE.pt --list PATHS.txt
                      [--workers 2] [--iters N]
MODE: infer | infer-int8 | train-full | train-frozen | extract.

infer-int8 is torchvision's quantizable model (torchvision.models.quantization)
with the same float weights, fused, calibrated on two random batches and
converted with PyTorch's x86 int8 backend: fbgemm where the build has it,
else onednn (Debian's PyTorch 1.13 has no fbgemm).

train-frozen freezes the same modules as tl-bench (everything up to and
including FREEZE_UNTIL below) and keeps their batch norms on running
statistics (eval mode), as tl's training tape does for frozen layers.
extract is end to end: PIL decode, resize 256, centre crop 224, normalise,
network up to the pooled features, with a DataLoader of --workers
processes as a user would write it; peak memory adds the largest worker's.
"""
import argparse, json, os, resource, sys, time

import torch
import torch.nn as nn
import torchvision
import torchvision.transforms as T
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_models import make_model  # noqa: E402

# The last frozen module of train-frozen, in torchvision's names (the same
# split as tl-bench's freeze_points).
FREEZE_UNTIL = {"resnet18": "layer3", "resnet50": "layer3", "mobilenet_v2": "features.13",
                "efficientnet_b0": "features.6", "vgg16": "features.23",
                "vit_b_16": "encoder.layers.encoder_layer_10", "vit_ti_16": "encoder.layers.encoder_layer_10"}


def count_macs(model, size=224):
    """Forward multiply-adds of one image (convolutions, linear layers, attention products)."""
    total = [0]

    def conv_hook(m, i, o):
        total[0] += o.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def lin_hook(m, i, o):
        total[0] += o.numel() * m.in_features

    def mha_hook(m, i, o):
        t, d = o[0].shape[1], o[0].shape[2]  # batch_first; torchvision passes the inputs by keyword
        total[0] += 4 * t * d * d + 2 * t * t * d  # in/out projections + QK^T and AV

    hooks = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            hooks.append(mod.register_forward_hook(lin_hook))
        elif isinstance(mod, nn.MultiheadAttention):
            hooks.append(mod.register_forward_hook(mha_hook))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return total[0]


def frozen_modules(model, until):
    """Top-level-ordered leaf path prefixes up to and including `until`."""
    names = [n for n, _ in model.named_modules() if n]
    # Modules in definition order; everything before `until`'s subtree ends is frozen.
    last = max(i for i, n in enumerate(names) if n == until or n.startswith(until + "."))
    frozen = set(names[: last + 1])
    # A parent that also holds later children (e.g. "features") is not frozen as a whole.
    return [n for n in frozen if not any(m not in frozen and m.startswith(n + ".") for m in names)]


def freeze(model, until):
    mods = dict(model.named_modules())
    names = frozen_modules(model, until)
    for n in names:
        for p in mods[n].parameters(recurse=False):
            p.requires_grad_(False)
    if until.startswith("encoder.layers"):  # ViT: class token and position embedding come first
        model.class_token.requires_grad_(False)
        model.encoder.pos_embedding.requires_grad_(False)
    return [mods[n] for n in names]


def peak_rss_mb(children=False):
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if children:
        r += resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return r / 1024.0


class Paths(torch.utils.data.Dataset):
    def __init__(self, paths, tf):
        self.paths, self.tf = paths, tf

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with open(self.paths[i], "rb") as f:
            return self.tf(Image.open(f).convert("RGB"))


def extract_run(model, paths, batch, workers):
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    loader = torch.utils.data.DataLoader(Paths(paths, tf), batch_size=batch, num_workers=workers)
    feats = []
    with torch.no_grad():
        for x in loader:
            feats.append(model(x))
    return torch.cat(feats)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["infer", "infer-int8", "train-full", "train-frozen", "extract"])
    ap.add_argument("arch")
    ap.add_argument("batch", type=int)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=0)
    ap.add_argument("--list")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = make_model(a.arch)
    model.load_state_dict(torch.load(a.weights), strict=False)
    macs = count_macs(model)
    extra = {}
    if a.mode == "infer-int8":
        engines = torch.backends.quantized.supported_engines
        engine = "fbgemm" if "fbgemm" in engines else "onednn" if "onednn" in engines else None
        if engine is None:
            sys.exit("no x86 int8 backend in this PyTorch (%s)" % engines)
        torch.backends.quantized.engine = engine
        model = getattr(torchvision.models.quantization, a.arch)(weights=None, quantize=False)
        model.load_state_dict(torch.load(a.weights), strict=False)
        model.eval()
        model.fuse_model()
        model.qconfig = torch.ao.quantization.get_default_qconfig(engine)
        torch.ao.quantization.prepare(model, inplace=True)
        with torch.no_grad():
            for _ in range(2):
                model(torch.randn(8, 3, 224, 224))
        torch.ao.quantization.convert(model, inplace=True)
        extra["engine"] = engine
    runs = []
    if a.mode == "extract":
        model.eval()
        if hasattr(model, "fc"):
            model.fc = nn.Identity()
        elif hasattr(model, "heads"):
            model.heads = nn.Identity()
        else:
            model.classifier = nn.Identity()
        paths = [l.strip() for l in open(a.list) if l.strip()]
        start = time.perf_counter()
        for i in range(a.iters):
            t0 = time.perf_counter()
            f = extract_run(model, paths, a.batch, a.workers)
            runs.append(len(paths) / (time.perf_counter() - t0))
            if a.max_seconds and len(runs) >= 3 and time.perf_counter() - start > a.max_seconds:
                break
        extra = {"images": len(paths), "workers": a.workers, "dim": int(f.shape[1])}
        flops = 2.0 * macs
    else:
        torch.manual_seed(1)
        x = torch.randn(a.batch, 3, 224, 224)
        y = torch.randint(0, 1000, (a.batch,))
        if a.mode in ("infer", "infer-int8"):
            model.eval()
            step_fn = None
            flops = 2.0 * macs
        else:
            frozen = []
            if a.mode == "train-frozen":
                frozen = freeze(model, FREEZE_UNTIL[a.arch])
                extra["freeze_until"] = FREEZE_UNTIL[a.arch]
                extra["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
            model.train()
            for m in frozen:
                m.eval()
            params = [p for p in model.parameters() if p.requires_grad]
            opt = torch.optim.SGD(params, lr=0.001, momentum=0.9)
            loss_fn = nn.CrossEntropyLoss()
            flops = 2.0 * 3 * macs  # bench.py's table counts tl's FLOPs from tl-bench's trainable MACs

            def step_fn():
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
        start = time.perf_counter()
        for i in range(a.warmup + a.iters):
            t0 = time.perf_counter()
            if step_fn:
                step_fn()
            else:
                with torch.no_grad():
                    model(x)
            dt = time.perf_counter() - t0
            if i >= a.warmup:
                runs.append(a.batch / dt)
            if a.max_seconds and len(runs) >= 3 and time.perf_counter() - start > a.max_seconds:
                break
    s = sorted(runs)
    med = s[len(s) // 2] if len(s) % 2 else 0.5 * (s[len(s) // 2 - 1] + s[len(s) // 2])
    out = {"mode": a.mode, "arch": a.arch, "batch": a.batch, "threads": a.threads, "images_per_s": round(med, 4),
           "runs": [round(r, 4) for r in runs], "peak_rss_mb": round(peak_rss_mb(a.mode == "extract"), 1),
           "gmacs_per_image": round(macs / 1e9, 4), "gflops": round(med * flops / 1e9, 3)}
    out.update(extra)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
