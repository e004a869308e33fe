#!/usr/bin/env bats
# tl-export against the peers that read ONNX: every file must pass
# onnx.checker.check_model (full check, Debian's python3-onnx 1.12), and
# ONNX Runtime (onnxruntime-node, installed as `make bench` installs it)
# and OpenCV's dnn module (python3-opencv 4.6; the CNNs) must compute what
# tl-extract --layer logits (or tl-predict, for a fused head) computes:
# max |peer - tl| <= 1e-4 * max |tl| (tests/onnx/check_onnx.py,
# ort_check.js). Networks are random (tests/tools/tl-randnet: random
# weights and batch-norm statistics) at small input sizes; ONNX Runtime runs
# two images as one batch (the batch dimension is symbolic), OpenCV one at
# a time. A peer that cannot be installed is skipped with a note; the
# test skips only when none is there.
#
# The deeper members of a family whose smallest member runs here (VGG-11/13/
# 16/19 with and without batch norm, ResNet-101/152, ViT-B/16) are written
# by the same code and cost 200-600 MB each: they run with TL_SLOW_TESTS=1;
# VGG-11 with batch norm runs here up to its adaptive pooling. Under
# sanitizers only one member per family runs.

load helpers

setup_file() {
    local py=/usr/bin/python3 why
    export ONNX_NOTES=""
    if ! $py -c 'import onnx, numpy' 2>/dev/null; then
        export ONNX_NO_PY="python3-onnx is not installed for $py (make deps): no checker, no OpenCV"
    elif ! $py -c 'import cv2' 2>/dev/null; then
        export ONNX_NO_OPENCV="python3-opencv is not installed (make deps): no OpenCV runs"
    fi
    if why=$("$BATS_TEST_DIRNAME/../../scripts/ort-node.sh" 2>&1); then
        export ONNX_NODE_PATH=$why
    else
        export ONNX_NO_ORT="ONNX Runtime unavailable: $why"
    fi
}

setup() {
    W=$BATS_TEST_TMPDIR
    : >"$W/manifest"
}

# noise_ppm FILE SIZE SEED: a P6 image of random pixels.
noise_ppm() {
    perl -e 'srand($ARGV[2]); print "P6\n$ARGV[1] $ARGV[1]\n255\n";
             print pack("C*", map { int(rand(256)) } 1 .. $ARGV[1] * $ARGV[1] * 3)' "$1" "$2" "$3" >"$1"
}

# images SIZE: two noise images of SIZE x SIZE; prints their paths.
images() {
    local s=$1
    [ -f "$W/img$s-1.ppm" ] || { noise_ppm "$W/img$s-0.ppm" "$s" "$s"; noise_ppm "$W/img$s-1.ppm" "$s" $((s + 1)); }
    printf '%s\n' "$W/img$s-0.ppm" "$W/img$s-1.ppm"
}

# case_line ONNX INPUT KIND SIZE EXPECTED PEERS: one manifest line, batch 2.
case_line() {
    printf '%s\t%s\t%s\t2\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >>"$W/manifest"
}

# random_case NAME ARCH SIZE PEERS [tl-randnet options]: a random network,
# its logits from tl-extract, its ONNX export and tl's input tensors.
random_case() {
    local name=$1 arch=$2 size=$3 peers=$4
    shift 4
    "$TL_TEST_BIN/tl-randnet" "$arch" "$W/$name.safetensors" --size "$size" "$@"
    images "$size" | tl extract -q -m "$W/$name.safetensors" --layer logits -f tsv -o "$W/$name.tsv" -
    tl export -q "$W/$name.safetensors" -o "$W/$name.onnx"
    "$TL_TEST_BIN/tl-pixels" "$W/$name.safetensors" "$W/$name.px" $(images "$size")
    case_line "$W/$name.onnx" "$W/$name.px.f32" f32 "$size" "$W/$name.tsv" "$peers"
}

# Runs the available peers over the manifest; fails if any disagrees.
peers_agree() {
    if [ -n "${ONNX_NO_PY:-}" ] && [ -n "${ONNX_NO_ORT:-}" ]; then
        skip "no peer: $ONNX_NO_PY; $ONNX_NO_ORT"
    fi
    local note
    for note in "${ONNX_NO_PY:-}" "${ONNX_NO_OPENCV:-}" "${ONNX_NO_ORT:-}"; do
        [ -z "$note" ] || echo "# note: $note" >&3
    done
    if [ -z "${ONNX_NO_PY:-}" ]; then
        run /usr/bin/python3 "$BATS_TEST_DIRNAME/../onnx/check_onnx.py" "$W/manifest" \
            ${ONNX_NO_OPENCV:+--no-opencv}
        echo "$output"
        [ "$status" -eq 0 ]
    fi
    if [ -z "${ONNX_NO_ORT:-}" ]; then
        run env NODE_PATH="$ONNX_NODE_PATH" node "$BATS_TEST_DIRNAME/../onnx/ort_check.js" "$W/manifest"
        echo "$output"
        [ "$status" -eq 0 ]
    fi
}

not_sanitized() {
    [ -z "${TL_SANITIZE:-}" ] || skip "$1 skipped under sanitizers (slow); it runs in the normal build"
}

slow() {
    [ -n "${TL_SLOW_TESTS:-}" ] || skip "$1: set TL_SLOW_TESTS=1 (the same code as the family's first member)"
    not_sanitized "$1"
}

@test "onnx: MobileNet V1, V2 (torch and TF SAME padding), V3 small and large" {
    random_case mnv2 mobilenet_v2 32 ort,opencv
    random_case mnv2tf mobilenet_v2 32 ort,opencv --tf-same --width 0.5
    random_case mnv3s mobilenet_v3_small 32 ort,opencv
    if [ -z "${TL_SANITIZE:-}" ]; then
        random_case mnv1 mobilenet_v1 32 ort,opencv --width 0.5
        random_case mnv3l mobilenet_v3_large 32 ort,opencv
    fi
    peers_agree
}

@test "onnx: ResNet-18, 34, 50 and SqueezeNet 1.0, 1.1 (ceil-mode pools on odd maps), small_cnn" {
    random_case r18 resnet18 32 ort,opencv
    random_case sq11 squeezenet1_1 67 ort,opencv
    random_case small small_cnn 28 ort,opencv
    if [ -z "${TL_SANITIZE:-}" ]; then
        random_case r34 resnet34 32 ort,opencv
        random_case r50 resnet50 32 ort,opencv
        random_case sq10 squeezenet1_0 67 ort,opencv
    fi
    peers_agree
}

@test "onnx: EfficientNet B0-B3 (SiLU, squeeze-excitation)" {
    random_case effb0 efficientnet_b0 32 ort,opencv
    if [ -z "${TL_SANITIZE:-}" ]; then
        random_case effb1 efficientnet_b1 32 ort,opencv
        random_case effb2 efficientnet_b2 32 ort,opencv
        random_case effb3 efficientnet_b3 32 ort,opencv
    fi
    peers_agree
}

@test "onnx: ViT-Ti/16 and ViT-S/16 (tokens, attention, GELU, layer norm; ONNX Runtime only)" {
    # OpenCV 4.6 does not import these graphs (Expand, LayerNormalization).
    random_case vitti vit_ti_16 32 ort
    [ -n "${TL_SANITIZE:-}" ] || random_case vits vit_s_16 32 ort
    peers_agree
}

# VGG's classifier (400 MB of the 500) is linear layers as every network
# has; what only VGG exports is the adaptive pooling that upsamples (1x1 ->
# 7x7 at 32 pixels): its whole map, exported with --layer avgpool --no-pool,
# is what the peers check here; the whole network runs with the deeper
# members (TL_SLOW_TESTS=1).
@test "onnx: VGG-11 with batch norm up to its adaptive pooling (1x1 -> 7x7 as matrix products), the whole map" {
    not_sanitized "VGG (500 MB of weights)"
    "$TL_TEST_BIN/tl-randnet" vgg11_bn "$W/vgg.safetensors" --size 32
    "$TL_TEST_BIN/tl-pixels" "$W/vgg.safetensors" "$W/vgg.px" $(images 32)
    images 32 | tl extract -q -m "$W/vgg.safetensors" --layer avgpool --no-pool -f tsv -o "$W/vgg.tsv" -
    tl export -q "$W/vgg.safetensors" --layer avgpool --no-pool -o "$W/vgg.onnx"
    case_line "$W/vgg.onnx" "$W/vgg.px.f32" f32 32 "$W/vgg.tsv" ort,opencv
    peers_agree
}

@test "onnx: the deeper zoo members: VGG-11, 13, 16, 19 (+BN), ResNet-101, 152, ViT-B/16" {
    slow "the deeper zoo members"
    local a
    for a in vgg11 vgg11_bn vgg13 vgg13_bn vgg16 vgg16_bn vgg19 vgg19_bn resnet101 resnet152; do
        : >"$W/manifest"
        random_case "$a" "$a" 32 ort,opencv
        peers_agree
        rm -f "$W/$a".*
    done
    : >"$W/manifest"
    random_case vitb vit_b_16 32 ort
    peers_agree
}

@test "onnx: --with-preprocessing takes uint8 RGB pixels (mean, std, BGR order in the graph)" {
    random_case mnv2 mobilenet_v2 32 ort,opencv --bgr --mean 0.4,0.5,0.6 --std 0.2,0.25,0.3
    tl export -q "$W/mnv2.safetensors" --with-preprocessing -o "$W/mnv2-pre.onnx"
    case_line "$W/mnv2-pre.onnx" "$W/mnv2.px.u8" u8 32 "$W/mnv2.tsv" ort,opencv
    # an image that is not square at the input size: the caller's resize and crop
    "$TL_TEST_BIN/tl-randnet" resnet18 "$W/r18.safetensors" --size 32 --resize 40
    gradient_ppm "$W/wide0.ppm" 61 45
    gradient_ppm "$W/wide1.ppm" 45 70
    printf '%s\n' "$W/wide0.ppm" "$W/wide1.ppm" | tl extract -q -m "$W/r18.safetensors" --layer logits -f tsv -o "$W/r18.tsv" -
    tl export -q "$W/r18.safetensors" --with-preprocessing -o "$W/r18-pre.onnx"
    "$TL_TEST_BIN/tl-pixels" "$W/r18.safetensors" "$W/r18.px" "$W/wide0.ppm" "$W/wide1.ppm"
    case_line "$W/r18-pre.onnx" "$W/r18.px.u8" u8 32 "$W/r18.tsv" ort,opencv
    peers_agree
}

@test "onnx: an oblong network (40x32) exports at its W x H, with and without in-graph preprocessing" {
    "$TL_TEST_BIN/tl-randnet" resnet18 "$W/wide.safetensors" --size 40x32 --resize 36
    gradient_ppm "$W/wide0.ppm" 61 45
    gradient_ppm "$W/wide1.ppm" 45 70
    printf '%s\n' "$W/wide0.ppm" "$W/wide1.ppm" | tl extract -q -m "$W/wide.safetensors" --layer logits -f tsv -o "$W/wide.tsv" -
    tl export -q "$W/wide.safetensors" -o "$W/wide.onnx"
    tl export -q "$W/wide.safetensors" --with-preprocessing -o "$W/wide-pre.onnx"
    "$TL_TEST_BIN/tl-pixels" "$W/wide.safetensors" "$W/wide.px" "$W/wide0.ppm" "$W/wide1.ppm"
    case_line "$W/wide.onnx" "$W/wide.px.f32" f32 40x32 "$W/wide.tsv" ort,opencv
    case_line "$W/wide-pre.onnx" "$W/wide.px.u8" u8 40x32 "$W/wide.tsv" ort,opencv
    peers_agree
}

@test "onnx: --layer exports features (pooled as tl-extract pools them, or whole with --no-pool)" {
    "$TL_TEST_BIN/tl-randnet" mobilenet_v2 "$W/m.safetensors" --size 32
    "$TL_TEST_BIN/tl-pixels" "$W/m.safetensors" "$W/m.px" $(images 32)
    images 32 | tl extract -q -m "$W/m.safetensors" --layer features.4 -f tsv -o "$W/f4.tsv" -
    images 32 | tl extract -q -m "$W/m.safetensors" --layer features.4 --no-pool -f tsv -o "$W/f4full.tsv" -
    images 32 | tl extract -q -m "$W/m.safetensors" -f tsv -o "$W/feat.tsv" -
    tl export -q "$W/m.safetensors" --layer features.4 -o "$W/f4.onnx"
    tl export -q "$W/m.safetensors" --layer features.4 --no-pool -o "$W/f4full.onnx"
    tl export -q "$W/m.safetensors" --layer features -o "$W/feat.onnx"
    case_line "$W/f4.onnx" "$W/m.px.f32" f32 32 "$W/f4.tsv" ort,opencv
    case_line "$W/f4full.onnx" "$W/m.px.f32" f32 32 "$W/f4full.tsv" ort,opencv
    case_line "$W/feat.onnx" "$W/m.px.f32" f32 32 "$W/feat.tsv" ort,opencv
    # a token layer of a ViT: the mean over the tokens
    "$TL_TEST_BIN/tl-randnet" vit_ti_16 "$W/v.safetensors" --size 32
    "$TL_TEST_BIN/tl-pixels" "$W/v.safetensors" "$W/v.px" $(images 32)
    images 32 | tl extract -q -m "$W/v.safetensors" --layer encoder_layer_1 -f tsv -o "$W/v1.tsv" -
    tl export -q "$W/v.safetensors" --layer encoder_layer_1 -o "$W/v1.onnx"
    case_line "$W/v1.onnx" "$W/v.px.f32" f32 32 "$W/v1.tsv" ort
    run tl export "$W/m.safetensors" --layer features.99 -o "$W/x.onnx"
    [ "$status" -eq 2 ]
    [[ "$output" == *"no layer named 'features.99'"* ]]
    [ ! -e "$W/x.onnx" ]
    peers_agree
}

@test "onnx: a feature head fused with its backbone gives tl-predict's probabilities" {
    "$TL_TEST_BIN/tl-randnet" mobilenet_v2 "$W/m.safetensors" --size 32
    mkdir -p "$W/data/ants" "$W/data/bees"
    local i
    for i in 0 1 2; do
        noise_ppm "$W/data/ants/a$i.ppm" 32 $((10 + i))
        noise_ppm "$W/data/bees/b$i.ppm" 32 $((20 + i))
    done
    tl extract -q -m "$W/m.safetensors" "$W/data" -o "$W/train.tlf"
    tl finetune -q "$W/train.tlf" -o "$W/head.safetensors"
    tl predict -m "$W/head.safetensors" --format eval "$W/data" >"$W/head.eval.tsv"
    run tl export "$W/head.safetensors" --probabilities --with-preprocessing -o "$W/head.onnx"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"mobilenet_v2 + logistic regression"* ]]
    [[ "$output" == *"output 'probabilities' [batch, 2]"* ]]
    # tl-predict's order: ants a0..a2, then bees b0..b2; feed the first two of each class
    "$TL_TEST_BIN/tl-pixels" "$W/m.safetensors" "$W/h.px" "$W/data/ants/a0.ppm" "$W/data/ants/a1.ppm"
    head -3 "$W/head.eval.tsv" >"$W/h2.eval.tsv"
    case_line "$W/head.onnx" "$W/h.px.u8" u8 32 "$W/h2.eval.tsv" ort,opencv
    peers_agree
    if [ -z "${ONNX_NO_PY:-}" ]; then
        run /usr/bin/python3 -c 'import onnx, sys, json
m = onnx.load(sys.argv[1]); d = {p.key: p.value for p in m.metadata_props}
print(json.loads(d["tl.classes"]), d["tl.output"], d["tl.input_size"], d["tl.head_kind"])' "$W/head.onnx"
        [ "$output" = "['ants', 'bees'] probabilities 32 logistic regression" ]
    fi
}

@test "onnx: the TFLite MobileNetV2 and the SqueezeNet 1.1 of ../shared, with and without in-graph preprocessing" {
    need_shared
    local sq=$TL_SHARED/models/safetensors/squeezenet1_1.safetensors imgs
    [ -f "$sq" ] || skip "$sq not found"
    imgs=$(ls "$TL_SHARED"/images/*.jpg | head -2)
    [ "$(echo "$imgs" | wc -l)" -eq 2 ] || skip "no photographs in $TL_SHARED/images"
    tl convert -q "$TL_MODELS/mobilenet_v2_1.0_224_quant.tflite" --labels "$TL_MODELS/imagenet_labels.txt" \
        -o "$W/mnv2.safetensors"
    cp "$sq" "$W/sq.safetensors"
    local m
    for m in mnv2 sq; do
        echo "$imgs" | tl extract -q -m "$W/$m.safetensors" --layer logits -f tsv -o "$W/$m.tsv" -
        tl export -q "$W/$m.safetensors" -o "$W/$m.onnx"
        tl export -q "$W/$m.safetensors" --with-preprocessing -o "$W/$m-pre.onnx"
        "$TL_TEST_BIN/tl-pixels" "$W/$m.safetensors" "$W/$m.px" $imgs
    done
    case_line "$W/mnv2.onnx" "$W/mnv2.px.f32" f32 224 "$W/mnv2.tsv" ort,opencv
    case_line "$W/mnv2-pre.onnx" "$W/mnv2.px.u8" u8 224 "$W/mnv2.tsv" ort,opencv
    case_line "$W/sq.onnx" "$W/sq.px.f32" f32 227 "$W/sq.tsv" ort,opencv
    case_line "$W/sq-pre.onnx" "$W/sq.px.u8" u8 227 "$W/sq.tsv" ort,opencv
    peers_agree
}

@test "onnx: bad requests fail with one line and leave no file" {
    "$TL_TEST_BIN/tl-randnet" small_cnn "$W/s.safetensors" --size 28
    run tl export "$W/s.safetensors"
    [ "$status" -eq 2 ]
    run tl export -o "$W/x.onnx"
    [ "$status" -eq 2 ]
    [[ "$output" == *"no model given"* ]]
    run tl export "$W/s.safetensors" -m "$W/s.safetensors" -o "$W/x.onnx"
    [ "$status" -eq 2 ]
    run tl export "$W/s.safetensors" --no-pool -o "$W/x.onnx"
    [ "$status" -eq 2 ]
    run tl export "$W/s.safetensors" --layer features --probabilities -o "$W/x.onnx"
    [ "$status" -eq 2 ]
    [[ "$output" == *"probabilities of features"* ]]
    printf 'not a checkpoint' >"$W/junk.safetensors"
    run tl export "$W/junk.safetensors" -o "$W/x.onnx"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 1 ]
    # an int8 checkpoint (tl-quantize): refused, naming what to export instead
    if [ -x "$TL_BIN/tl-quantize" ]; then
        "$TL_TEST_BIN/tl-randnet" mobilenet_v2 "$W/f.safetensors" --size 32
        mkdir -p "$W/img"
        noise_ppm "$W/img/0.ppm" 32 5
        noise_ppm "$W/img/1.ppm" 32 6
        tl quantize -q -m "$W/f.safetensors" --calibrate "$W/img" -o "$W/q.safetensors"
        run tl export "$W/q.safetensors" -o "$W/x.onnx"
        [ "$status" -eq 1 ]
        [ "${#lines[@]}" -eq 1 ]
        [[ "$output" == *"int8"*"float checkpoint it was quantised from"* ]]
    fi
    run tl export "$W/s.safetensors" -o /dev/full
    [ "$status" -eq 1 ]
    [[ "$output" == *"No space left on device"* ]]
    mkdir "$W/dir.onnx"
    run tl export "$W/s.safetensors" -o "$W/dir.onnx"
    [ "$status" -eq 1 ]
    [ ! -e "$W/x.onnx" ]
    ! ls "$W"/*.tmp.* 2>/dev/null
    # a head whose backbone is gone
    mkdir -p "$W/data/a" "$W/data/b"
    noise_ppm "$W/data/a/0.ppm" 28 1
    noise_ppm "$W/data/b/0.ppm" 28 2
    noise_ppm "$W/data/a/1.ppm" 28 3
    noise_ppm "$W/data/b/1.ppm" 28 4
    tl extract -q -m "$W/s.safetensors" "$W/data" -o "$W/f.tlf"
    tl finetune -q "$W/f.tlf" -o "$W/head.safetensors"
    mv "$W/s.safetensors" "$W/moved.safetensors"
    run tl export "$W/head.safetensors" -o "$W/x.onnx"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 1 ]
    [[ "$output" == *"backbone"* ]]
    [ ! -e "$W/x.onnx" ]
}
