#!/usr/bin/python3
"""PIL / torchvision reference outputs for tests/unit/test_resize.c and
tests/unit/test_image.c. Run with Debian's /usr/bin/python3 (PIL 9.4,
torchvision 0.14). Exits 3 when a needed module is missing, so the C test
can skip cleanly.

  resize_pil.py resize OUTDIR [PHOTO]
      deterministic inputs in_N.ppm and PIL results out_N.ppm, listed in
      OUTDIR/cases.txt as "input output width height filter"; PHOTO (if
      given) is resized so its shorter side is 256, as torchvision does.
  resize_pil.py decode OUTDIR IMAGE...
      PIL's Image.open(IMAGE).convert("RGB") as OUTDIR/dec_N.ppm, listed in
      OUTDIR/decode.txt as "image ppm".
  resize_pil.py preprocess OUTFILE IMAGE RESIZE W H MODE
      the network input of W x H for MODE crop, squash or pad, as torchvision
      and timm build it (below), ToTensor, Normalize (ImageNet mean and std),
      as raw little-endian float32, 3 x H x W.
"""
import os
import sys
import warnings

# PIL warns about palette transparency on convert("RGB"); dropping it is
# exactly what we compare against.
warnings.filterwarnings("ignore", category=UserWarning)

try:
    import numpy as np
    from PIL import Image
except ImportError as ex:  # pragma: no cover
    print(f"resize_pil.py: {ex}", file=sys.stderr)
    sys.exit(3)

FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}


def make_input(kind, w, h, seed):
    rng = np.random.RandomState(seed)
    if kind == "noise":
        a = rng.randint(0, 256, size=(h, w, 3))
    elif kind == "edges":
        # hard black/white edges make bicubic overshoot: exercises clamping
        yy, xx = np.mgrid[0:h, 0:w]
        a = np.stack([((xx // 3 + yy // 2) % 2) * 255, (xx * 7 % 256), ((yy > h // 2) * 255)], -1)
    else:  # smooth gradient plus a little noise
        yy, xx = np.mgrid[0:h, 0:w]
        a = np.stack([xx * 255.0 / max(w - 1, 1), yy * 255.0 / max(h - 1, 1),
                      (xx + yy) * 127.0 / max(w + h - 2, 1) + rng.randint(0, 64, size=(h, w))], -1)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


# (kind, in_w, in_h, out_w, out_h)
CASES = [
    ("noise", 97, 61, 40, 25),     # downscale, odd sizes
    ("noise", 300, 200, 224, 149), # mild downscale
    ("smooth", 300, 200, 37, 23),  # heavy downscale (wide antialias support)
    ("edges", 64, 64, 129, 255),   # upscale
    ("noise", 13, 7, 50, 31),      # tiny upscale
    ("edges", 120, 90, 120, 45),   # vertical only
    ("smooth", 120, 90, 61, 90),   # horizontal only
    ("noise", 50, 40, 50, 40),     # same size
    ("edges", 1, 9, 4, 3),         # one column
    ("smooth", 256, 171, 224, 224),# aspect change
]


def cmd_resize(out, photo=None):
    lines = []
    n = 0
    for i, (kind, iw, ih, ow, oh) in enumerate(CASES):
        im = make_input(kind, iw, ih, 1000 + i)
        src = os.path.join(out, f"in_{i}.ppm")
        im.save(src)
        for name, flt in FILTERS.items():
            dst = os.path.join(out, f"out_{n}.ppm")
            im.resize((ow, oh), flt).save(dst)
            lines.append(f"{src} {dst} {ow} {oh} {name}")
            n += 1
    if photo:
        im = Image.open(photo).convert("RGB")
        w, h = im.size
        s, l = (w, h) if w <= h else (h, w)
        nl = int(256 * l / s)
        size = (256, nl) if w <= h else (nl, 256)
        for name in ("bilinear", "bicubic"):
            dst = os.path.join(out, f"out_{n}.ppm")
            im.resize(size, FILTERS[name]).save(dst)
            lines.append(f"{photo} {dst} {size[0]} {size[1]} {name}")
            n += 1
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def cmd_decode(out, images):
    lines = []
    for i, path in enumerate(images):
        dst = os.path.join(out, f"dec_{i}.ppm")
        Image.open(path).convert("RGB").save(dst)
        lines.append(f"{path} {dst}")
    with open(os.path.join(out, "decode.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def geometry(im, resize, w, h, mode):
    """The resize box is (w, h) * resize / min(w, h), whole pixels, rounded
    down. crop: a square box is torchvision's Resize(int); an oblong one
    timm's ResizeKeepRatio (longest=0: cover the box, sides rounded half to
    even), then CenterCrop((h, w)). squash: Resize to the box, CenterCrop.
    pad: timm's crop_mode="border" at crop_pct 1 (ResizeKeepRatio
    longest=1 to (w, h), then CenterCropOrPad with the mean colour)."""
    from torchvision import transforms as T
    import torchvision.transforms.functional as F
    m = min(w, h)
    bw, bh = w * resize // m, h * resize // m
    iw, ih = im.size
    fill = 0
    if mode == "squash":
        im = T.Resize((bh, bw))(im)
    elif mode == "crop" and bw == bh:
        im = T.Resize(bw)(im)
    elif mode == "crop":
        ratio = min(ih / bh, iw / bw)
        im = im.resize((round(iw / ratio), round(ih / ratio)), Image.BILINEAR)
    elif mode == "pad":
        ratio = max(ih / h, iw / w)
        im = im.resize((round(iw / ratio), round(ih / ratio)), Image.BILINEAR)
        fill = tuple(round(255 * v) for v in MEAN)
        pw, ph = max(w - im.width, 0), max(h - im.height, 0)
        if pw or ph:
            im = F.pad(im, [pw // 2, ph // 2, (pw + 1) // 2, (ph + 1) // 2], fill=fill)
    else:
        raise ValueError(mode)
    return T.CenterCrop((h, w))(im)


def cmd_preprocess(outfile, image, resize, w, h, mode):
    try:
        import torch
        from torchvision import transforms as T
    except ImportError as ex:
        print(f"resize_pil.py: {ex}", file=sys.stderr)
        sys.exit(3)
    resize, w, h = int(resize), int(w), int(h)
    im = geometry(Image.open(image).convert("RGB"), resize, w, h, mode)
    x = T.Normalize(MEAN, STD)(T.ToTensor()(im))
    assert x.dtype == torch.float32 and tuple(x.shape) == (3, h, w)
    x.numpy().astype("<f4").tofile(outfile)


def main(argv):
    if len(argv) >= 2 and argv[0] == "resize":
        cmd_resize(argv[1], argv[2] if len(argv) > 2 else None)
    elif len(argv) >= 3 and argv[0] == "decode":
        cmd_decode(argv[1], argv[2:])
    elif len(argv) == 7 and argv[0] == "preprocess":
        cmd_preprocess(*argv[1:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
