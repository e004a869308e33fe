#!/usr/bin/python3
"""torchvision / PIL reference outputs for tests/unit/test_augment_parity.c.
Run with Debian's /usr/bin/python3 (PIL 9.4, torchvision 0.14). Exits 3
when a needed module is missing, so the C test can skip cleanly.

  augment_ref.py OUTDIR
      writes OUTDIR/in.ppm (a deterministic 67x45 test picture: gradients,
      noise and hard edges) and, for every case, OUTDIR/case_N.ppm with
      torchvision's functional transform of it, listed in OUTDIR/cases.txt
      as "N op arg...". Ops and arguments:
        brightness F | contrast F | saturation F | hue H   (F.adjust_*)
        grey                                   (F.rgb_to_grayscale, 3 channels)
        blur K SIGMA                           (F.gaussian_blur)
        erase TOP LEFT H W V                   (F.erase on the uint8 tensor)
        resized_crop TOP LEFT H W OH OW        (F.resized_crop, bilinear)
        rotate DEG                             (F.rotate, bilinear, fill 0)
        jpeg Q                                 (PIL save at quality Q, reopened)
        hflip | vflip                          (F.hflip, F.vflip)
"""
import io
import os
import sys

try:
    import numpy as np
    import torch
    from PIL import Image
    import torchvision.transforms.functional as F
    from torchvision.transforms import InterpolationMode
except ImportError as ex:  # pragma: no cover
    print(f"augment_ref.py: {ex}", file=sys.stderr)
    sys.exit(3)


def test_picture(w=67, h=45):
    rng = np.random.RandomState(5)
    yy, xx = np.mgrid[0:h, 0:w]
    r = xx * 255.0 / (w - 1)
    g = yy * 255.0 / (h - 1)
    b = ((xx // 5 + yy // 7) % 2) * 180.0 + rng.randint(0, 60, size=(h, w))
    a = np.stack([r, g, b], -1)
    a[h // 3:h // 2, w // 4:w // 2] = (250, 20, 30)   # a saturated patch
    a[-6:, -9:] = (128, 128, 128)                      # a grey patch (hue undefined)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


CASES = [
    ("brightness", 0.6), ("brightness", 1.45),
    ("contrast", 0.5), ("contrast", 1.7),
    ("saturation", 0.3), ("saturation", 1.8),
    ("hue", -0.3), ("hue", 0.1), ("hue", 0.45), ("hue", 0.001),
    ("grey",),
    ("blur", 3, 0.5), ("blur", 5, 1.2), ("blur", 9, 2.0), ("blur", 13, 3.0),
    ("erase", 5, 7, 10, 20, 77),
    ("resized_crop", 3, 4, 30, 41, 24, 24), ("resized_crop", 0, 0, 45, 67, 90, 70),
    ("rotate", 30.0), ("rotate", -12.5), ("rotate", 90.0),
    ("jpeg", 15), ("jpeg", 75),
    ("hflip",), ("vflip",),
]


def apply(img, case):
    op, args = case[0], case[1:]
    if op == "brightness":
        return F.adjust_brightness(img, args[0])
    if op == "contrast":
        return F.adjust_contrast(img, args[0])
    if op == "saturation":
        return F.adjust_saturation(img, args[0])
    if op == "hue":
        return F.adjust_hue(img, args[0])
    if op == "grey":
        return F.rgb_to_grayscale(img, num_output_channels=3)
    if op == "blur":
        return F.gaussian_blur(img, [args[0], args[0]], [args[1], args[1]])
    if op == "erase":
        t = F.pil_to_tensor(img)
        v = torch.tensor(args[4], dtype=torch.uint8)
        return F.to_pil_image(F.erase(t, args[0], args[1], args[2], args[3], v))
    if op == "resized_crop":
        return F.resized_crop(img, args[0], args[1], args[2], args[3], [args[4], args[5]],
                              InterpolationMode.BILINEAR)
    if op == "rotate":
        return F.rotate(img, args[0], InterpolationMode.BILINEAR)
    if op == "jpeg":
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=args[0])
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if op == "hflip":
        return F.hflip(img)
    if op == "vflip":
        return F.vflip(img)
    raise ValueError(op)


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = argv[0]
    img = test_picture()
    img.save(os.path.join(out, "in.ppm"))
    lines = []
    for n, case in enumerate(CASES):
        res = apply(img, case).convert("RGB")
        res.save(os.path.join(out, f"case_{n}.ppm"))
        lines.append(" ".join([str(n), case[0]] + [repr(a) for a in case[1:]]))
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
