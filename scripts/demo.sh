#!/bin/sh
# The ants-vs-bees demo, from a fresh Debian 12 machine: install what is
# missing, build, fetch the model and the data, then
#   convert -> extract train/val features -> train a head -> evaluate.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)

echo "demo: ants vs bees with a network pretrained on ImageNet: MobileNetV2's features of 244 training" \
    "images, a logistic-regression head trained on them, scored on 153 validation images" >&2
need=""
command -v make >/dev/null 2>&1 || need=1
command -v cc >/dev/null 2>&1 || need=1
[ -f /usr/include/jpeglib.h ] && [ -f /usr/include/png.h ] && [ -f /usr/include/zlib.h ] || need=1
if [ -n "$need" ]; then
    echo "demo: installing build dependencies (scripts/deps.sh)" >&2
    sh scripts/deps.sh
fi
make -s -j2 >&2
export TL_MODEL_PATH="$top/models"
sh scripts/get-models.sh mobilenet_v2
sh scripts/get-data.sh hymenoptera

out=build/demo
mkdir -p "$out"
data=data/hymenoptera
set -x
bin/tl-info mobilenet_v2 | head -8
bin/tl-extract -m mobilenet_v2 "$data/train" -o "$out/train.tlf"
bin/tl-extract -m mobilenet_v2 "$data/val" -o "$out/val.tlf"
bin/tl-finetune "$out/train.tlf" -o "$out/head.safetensors"
bin/tl-eval -m "$out/head.safetensors" "$out/val.tlf"
bin/tl-predict -m "$out/head.safetensors" -k 2 "$data/val/bees/2407809945_fb525ef54d.jpg"
{ set +x; } 2>/dev/null
cat >&2 <<EOF
demo: done. Outputs in $out/: train.tlf and val.tlf (the features), head.safetensors (the head).
Next, fine-tune the network itself and compare (README, "Fine-tuning the network"):
  bin/tl-finetune -m mobilenet_v2 --freeze-until features.13 --epochs 4 --val $data/val \\
      --log $out/partial.jsonl -o $out/partial.safetensors $data/train
  bin/tl-compare $out/partial.jsonl
or see which layer transfers best: bin/tl-probe -m mobilenet_v2 --val $data/val $data/train
EOF
