#!/bin/sh
# get-models.sh [-d DIR] NAME...  — fetch pretrained models into DIR
# (default: the first folder of $TL_MODEL_PATH, else ./models) and convert
# them to tl checkpoints. Files come from ../shared when it is there (or
# $TL_DATA), otherwise from their official homes; every download is
# checked against its SHA-256 before use.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
shared=${TL_DATA:-$top/../shared}
bin=${TL_BIN:-$top/bin}
dir=${TL_MODEL_PATH:+${TL_MODEL_PATH%%:*}}
dir=${dir:-$top/models}
coral=https://github.com/google-coral/test_data/raw/master

usage() {
    cat <<USAGE
Usage: get-models.sh [-d DIR] NAME...
Models (TensorFlow Lite, ImageNet; converted with tl-convert):
  mobilenet_v2_1.0_224_quant       MobileNetV2 1.0, 224, uint8   -> mobilenet_v2.safetensors
  tf2_mobilenet_v2_1.0_224_ptq     MobileNetV2 1.0, 224, int8    -> tf2_mobilenet_v2.safetensors
  mobilenet_v1_0.25_128_quant      MobileNetV1 0.25, 128, uint8  -> mobilenet_v1_0.25_128.safetensors
  mobilenet_v1_0.5_160_quant       MobileNetV1 0.5, 160, uint8   -> mobilenet_v1_0.5_160.safetensors
  mobilenet_v1_0.75_192_quant      MobileNetV1 0.75, 192, uint8  -> mobilenet_v1_0.75_192.safetensors
  all                              every model above
Models (timm's ImageNet weights from the Hugging Face hub; converted with tl-convert --timm):
  resnet18.tv_in1k  resnet34.tv_in1k  resnet50.tv_in1k  vgg16.tv_in1k  vgg16_bn.tv_in1k
  mobilenetv2_100.ra_in1k  mobilenetv3_large_100.ra_in1k  mobilenetv3_small_100.lamb_in1k
  efficientnet_b0.ra_in1k  vit_tiny_patch16_224.augreg_in21k_ft_in1k
  vit_small_patch16_224.augreg_in21k_ft_in1k  vit_base_patch16_224.augreg2_in21k_ft_in1k
Each is written as NAME.safetensors (e.g. resnet18.tv_in1k.safetensors). A download is
checked against the SHA-256 pinned in scripts/model-hashes.txt when the model is listed
there, otherwise against the hash the hub publishes for the file (X-Linked-Etag), and the
hash is then recorded in DIR/src/hashes.txt.
USAGE
}

sha_of() {
    case $1 in
    mobilenet_v2_1.0_224_quant.tflite) echo 7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776 ;;
    tf2_mobilenet_v2_1.0_224_ptq.tflite) echo 5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c ;;
    mobilenet_v1_0.25_128_quant.tflite) echo cb273c23ee76374b05b9583177e28aa19744858a7679c56a250e83d0333da785 ;;
    mobilenet_v1_0.5_160_quant.tflite) echo 3cc6d2ca460abd2e0f699a6d0d2550c6b61c6e3b0e27a3616e384ea74cb86f43 ;;
    mobilenet_v1_0.75_192_quant.tflite) echo 41daeb22fdcf947e0e5ec32373aa9df7c31f3ef45dbd0ef7b5940fbce3c20f6a ;;
    imagenet_labels.txt) echo b8aaeb5630c62626a7d124a05c0e14230a7ffdd2136a31d0190a4fb71c1d82f1 ;;
    *) return 1 ;;
    esac
}

# fetch FILE: into $dir/src, from ../shared or the Coral test-data repository.
fetch() {
    want=$(sha_of "$1")
    dst="$dir/src/$1"
    mkdir -p "$dir/src"
    if [ -f "$dst" ] && [ "$(sha256sum "$dst" | cut -d' ' -f1)" = "$want" ]; then return 0; fi
    if [ -f "$shared/models/tflite/$1" ]; then
        cp "$shared/models/tflite/$1" "$dst.part"
    elif command -v curl >/dev/null 2>&1; then
        echo "get-models: downloading $1" >&2
        curl -fsSL --retry 2 -o "$dst.part" "$coral/$1" ||
            { rm -f "$dst.part"; echo "get-models: cannot download $coral/$1 (offline?)" >&2; exit 1; }
    elif command -v wget >/dev/null 2>&1; then
        echo "get-models: downloading $1" >&2
        wget -q -O "$dst.part" "$coral/$1" ||
            { rm -f "$dst.part"; echo "get-models: cannot download $coral/$1 (offline?)" >&2; exit 1; }
    else
        echo "get-models: $1 is not in $shared and neither curl nor wget is installed" >&2
        exit 1
    fi
    got=$(sha256sum "$dst.part" | cut -d' ' -f1)
    if [ "$got" != "$want" ]; then
        rm -f "$dst.part"
        echo "get-models: $1: SHA-256 mismatch (got $got, expected $want)" >&2
        exit 1
    fi
    mv "$dst.part" "$dst"
}

convert() { # convert TFLITE OUT
    fetch imagenet_labels.txt
    fetch "$1.tflite"
    if [ -f "$dir/$2" ] && [ "$dir/$2" -nt "$dir/src/$1.tflite" ] && [ "$dir/$2" -nt "$bin/tl-convert" ]; then
        echo "get-models: $dir/$2 is up to date" >&2
        return 0
    fi
    "$bin/tl-convert" -q "$dir/src/$1.tflite" --labels "$dir/src/imagenet_labels.txt" -o "$dir/$2"
    echo "get-models: wrote $dir/$2" >&2
}

hub=https://huggingface.co/timm

# The ImageNet class names in torchvision's (sorted WordNet id) order.
fetch_synsets() {
    dst="$dir/src/imagenet_classes.txt"
    [ -f "$dst" ] && return 0
    mkdir -p "$dir/src"
    src="$shared/datasets/imagenet-val-1300/synset_words.txt"
    want=acf75ef0abe89694b19056e0796401068b459c457baa30335f240c7692857355
    if [ -f "$src" ]; then
        cp "$src" "$dst.words"
    else
        url=https://raw.githubusercontent.com/HoldenCaulfieldRye/caffe/master/data/ilsvrc12/synset_words.txt
        curl -fsSL --retry 2 -o "$dst.words" "$url" ||
            { rm -f "$dst.words"; echo "get-models: cannot download $url (offline?)" >&2; exit 1; }
    fi
    if [ "$(sha256sum "$dst.words" | cut -d' ' -f1)" != "$want" ]; then
        rm -f "$dst.words"
        echo "get-models: ImageNet class list: SHA-256 mismatch" >&2
        exit 1
    fi
    sed 's/^n[0-9]* //' "$dst.words" > "$dst"
    rm -f "$dst.words"
}

# timm NAME ARCH SIZE RESIZE INTERP MEAN STD
timm() {
    name=$1
    out="$dir/$name.safetensors"
    if [ -f "$out" ]; then echo "get-models: $out is there" >&2; return 0; fi
    fetch_synsets
    command -v curl >/dev/null 2>&1 || { echo "get-models: $name needs curl to download" >&2; exit 1; }
    src="$dir/src/$name.safetensors"
    url="$hub/$name/resolve/main/model.safetensors"
    want=$(awk -v n="$name" '$1 == n { print $2 }' "$here/model-hashes.txt" 2>/dev/null)
    if [ -z "$want" ]; then
        # The hub names an LFS file by its SHA-256; ask for it before downloading.
        want=$(curl -fsSI "$url" | tr -d '\r"' | awk -F': ' 'tolower($1) == "x-linked-etag" { print $2 }')
        [ -n "$want" ] || { echo "get-models: cannot reach $url (offline?)" >&2; exit 1; }
    fi
    echo "get-models: downloading $url" >&2
    curl -fsSL --retry 2 -o "$src.part" "$url" || { rm -f "$src.part"; echo "get-models: download of $name failed" >&2; exit 1; }
    got=$(sha256sum "$src.part" | cut -d' ' -f1)
    if [ "$got" != "$want" ]; then
        rm -f "$src.part"
        echo "get-models: $name: SHA-256 mismatch (got $got, expected $want)" >&2
        exit 1
    fi
    mv "$src.part" "$src"
    echo "$name $got" >> "$dir/src/hashes.txt"
    "$bin/tl-convert" -q --arch "$2" --timm --input-size "$3" --resize-size "$4" --interpolation "$5" \
        --mean "$6" --std "$7" --labels "$dir/src/imagenet_classes.txt" "$src" -o "$out"
    echo "get-models: wrote $out" >&2
}

IN_MEAN=0.485,0.456,0.406 IN_STD=0.229,0.224,0.225 HALF=0.5,0.5,0.5

get() {
    case $1 in
    resnet18.tv_in1k) timm "$1" resnet18 224 256 bilinear $IN_MEAN $IN_STD ;;
    resnet34.tv_in1k) timm "$1" resnet34 224 256 bilinear $IN_MEAN $IN_STD ;;
    resnet50.tv_in1k) timm "$1" resnet50 224 256 bilinear $IN_MEAN $IN_STD ;;
    vgg16.tv_in1k) timm "$1" vgg16 224 256 bilinear $IN_MEAN $IN_STD ;;
    vgg16_bn.tv_in1k) timm "$1" vgg16_bn 224 256 bilinear $IN_MEAN $IN_STD ;;
    mobilenetv2_100.ra_in1k) timm "$1" mobilenet_v2 224 256 bicubic $IN_MEAN $IN_STD ;;
    mobilenetv3_large_100.ra_in1k) timm "$1" mobilenet_v3_large 224 256 bicubic $IN_MEAN $IN_STD ;;
    mobilenetv3_small_100.lamb_in1k) timm "$1" mobilenet_v3_small 224 256 bicubic $IN_MEAN $IN_STD ;;
    efficientnet_b0.ra_in1k) timm "$1" efficientnet_b0 224 256 bicubic $IN_MEAN $IN_STD ;;
    vit_tiny_patch16_224.augreg_in21k_ft_in1k) timm "$1" vit_ti_16 224 248 bicubic $HALF $HALF ;;
    vit_small_patch16_224.augreg_in21k_ft_in1k) timm "$1" vit_s_16 224 248 bicubic $HALF $HALF ;;
    vit_base_patch16_224.augreg2_in21k_ft_in1k) timm "$1" vit_b_16 224 248 bicubic $HALF $HALF ;;
    mobilenet_v2_1.0_224_quant | mobilenet_v2) convert mobilenet_v2_1.0_224_quant mobilenet_v2.safetensors ;;
    tf2_mobilenet_v2_1.0_224_ptq) convert tf2_mobilenet_v2_1.0_224_ptq tf2_mobilenet_v2.safetensors ;;
    mobilenet_v1_0.25_128_quant) convert mobilenet_v1_0.25_128_quant mobilenet_v1_0.25_128.safetensors ;;
    mobilenet_v1_0.5_160_quant) convert mobilenet_v1_0.5_160_quant mobilenet_v1_0.5_160.safetensors ;;
    mobilenet_v1_0.75_192_quant) convert mobilenet_v1_0.75_192_quant mobilenet_v1_0.75_192.safetensors ;;
    all) for m in mobilenet_v2_1.0_224_quant tf2_mobilenet_v2_1.0_224_ptq mobilenet_v1_0.25_128_quant \
        mobilenet_v1_0.5_160_quant mobilenet_v1_0.75_192_quant; do get "$m"; done ;;
    *) echo "get-models: unknown model '$1'" >&2; usage >&2; exit 2 ;;
    esac
}

while getopts d:h opt; do
    case $opt in
    d) dir=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { usage >&2; exit 2; }
[ -x "$bin/tl-convert" ] || { echo "get-models: $bin/tl-convert not built (run make)" >&2; exit 1; }
mkdir -p "$dir"
for m in "$@"; do get "$m"; done
