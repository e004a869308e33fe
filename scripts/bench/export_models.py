"""Writes the benchmark's random-weight models once: torchvision's own
initialisation under a fixed seed, saved as ONNX (opset 13, dynamic batch
axis) for ONNX Runtime, as a tl checkpoint (safetensors, torchvision
state_dict names) for tl, and as a pickled state_dict the PyTorch runs load,
so every runner computes with the same weights.

usage: export_models.py OUTDIR ARCH...   (files already there are kept)
"""
import os, sys

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "parity"))
from parity_common import meta_for, write_safetensors  # noqa: E402

SEED = 1234


def make_model(arch):
    """A torchvision model by name; vit_ti_16 (ViT-Ti/16, DeiT-tiny's shape),
    which torchvision 0.14 does not name, is its VisionTransformer with
    width 192, 3 heads, MLP 768, 12 layers."""
    if arch == "vit_ti_16":
        from torchvision.models.vision_transformer import VisionTransformer
        return VisionTransformer(image_size=224, patch_size=16, num_layers=12, num_heads=3, hidden_dim=192,
                                 mlp_dim=768)
    return getattr(torchvision.models, arch)(weights=None)


def build(arch):
    torch.manual_seed(SEED)
    return make_model(arch).eval()


def main():
    out, archs = sys.argv[1], sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    for arch in archs:
        base = os.path.join(out, arch)
        if all(os.path.exists(base + ext) for ext in (".onnx", ".safetensors", ".pt")):
            continue
        model = build(arch)
        sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
        torch.save(sd, base + ".pt.tmp")
        meta = meta_for(arch, 1000, 224)
        meta["tl.resize_size"] = "256"  # the standard ImageNet evaluation transform
        write_safetensors(base + ".safetensors.tmp", sd, meta)
        x = torch.randn(1, 3, 224, 224)
        torch.onnx.export(model, x, base + ".onnx.tmp", opset_version=13, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        for ext in (".pt", ".safetensors", ".onnx"):
            os.replace(base + ext + ".tmp", base + ext)
        print("exported %s" % arch, file=sys.stderr)


if __name__ == "__main__":
    main()
