#!/usr/bin/python3
"""A multi-label image set from single-label class folders: each image is a
2x2 grid of tiles, each tile a photo of a class drawn at random, and its
labels are the classes that appear. Built at run time from ../shared (for
instance flowers12 and hymenoptera), never stored.

usage: composites.py [--n N] [--size S] [--seed K] [--empty P] OUT ROOT...

ROOT: folders of class folders (ROOT/CLASS/*.jpg); every class of every ROOT
is a label. Writes OUT/cNNNN.jpg and OUT/labels.tsv (path<TAB>a,b,c, the
manifest tl-extract --multi-label and tl-finetune --multi-label read).
--empty P: each tile is left plain grey with probability P (so some images
show fewer classes, and an all-grey image has none: an empty label set).
Needs PIL (python3-pil).
"""
import argparse
import os
import random
import sys

from PIL import Image

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".ppm")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("roots", nargs="+")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--empty", type=float, default=0.25)
    a = ap.parse_args()
    pool = []  # (class, path)
    for root in a.roots:
        for cls in sorted(os.listdir(root)):
            d = os.path.join(root, cls)
            if not os.path.isdir(d) or cls.startswith("."):
                continue
            if "," in cls:
                sys.exit("composites.py: %s: a class name with ',' cannot be a multi-label label" % d)
            for f in sorted(os.listdir(d)):
                if f.lower().endswith(IMAGE_EXT):
                    pool.append((cls, os.path.join(d, f)))
    if not pool:
        sys.exit("composites.py: no images under %s" % " ".join(a.roots))
    classes = sorted({c for c, _ in pool})
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    half = a.size // 2
    lines = []
    for i in range(a.n):
        canvas = Image.new("RGB", (a.size, a.size), (128, 128, 128))
        labels = set()
        for t in range(4):
            if rng.random() < a.empty:
                continue
            # a class first, then one of its images: every class equally likely
            cls = rng.choice(classes)
            path = rng.choice([p for c, p in pool if c == cls])
            im = Image.open(path).convert("RGB")
            w, h = im.size
            s = half / min(w, h)
            im = im.resize((max(half, round(w * s)), max(half, round(h * s))), Image.BILINEAR)
            w, h = im.size
            l, u = (w - half) // 2, (h - half) // 2
            canvas.paste(im.crop((l, u, l + half, u + half)), ((t % 2) * half, (t // 2) * half))
            labels.add(cls)
        name = "c%04d.jpg" % i
        canvas.save(os.path.join(a.out, name), quality=95)
        lines.append("%s\t%s\n" % (name, ",".join(sorted(labels))))
    with open(os.path.join(a.out, "labels.tsv.tmp"), "w") as f:
        f.writelines(lines)
    os.replace(os.path.join(a.out, "labels.tsv.tmp"), os.path.join(a.out, "labels.tsv"))
    print("composites.py: %d images, %d classes, %.2f labels per image" %
          (a.n, len(classes), sum(l.count(",") + (l.split("\t")[1].strip() != "") for l in lines) / a.n))


if __name__ == "__main__":
    main()
