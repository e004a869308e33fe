#!/usr/bin/env bats
# The ResNet, VGG, SqueezeNet and small-CNN builders against PyTorch:
# random-weight torchvision models (random batch-norm statistics too), run
# by tl-extract; logits and named inner layers must agree within 1e-4 of
# the largest reference value (tests/parity/parity_resnet_vgg.py). Then the
# real ImageNet SqueezeNet 1.1 of ../shared on 1,300 validation images.
#
# Under sanitizers (TL_SANITIZE) the deep and 224-pixel cases are skipped:
# one member per family still runs. Members that add no code to their
# family's (four of the eight VGGs) run with TL_SLOW_TESTS=1.

load helpers

setup_file() {
    if ! /usr/bin/python3 -c 'import torch, torchvision, PIL, numpy' 2>/dev/null; then
        export PARITY_SKIP="PyTorch not installed for /usr/bin/python3 (make deps)"
    fi
}

parity() {
    [ -z "${PARITY_SKIP:-}" ] || skip "$PARITY_SKIP"
    run /usr/bin/python3 "$BATS_TEST_DIRNAME/../parity/parity_resnet_vgg.py" --bin "$TL_BIN" \
        --work "$BATS_TEST_TMPDIR/work" "$@"
    echo "$output"
    [ "$status" -eq 0 ]
}

not_sanitized() {
    [ -z "${TL_SANITIZE:-}" ] || skip "$1 skipped under sanitizers (slow); it runs in the normal build"
}

@test "zoo parity: resnet18, resnet34 at 64 (blocks, stages, pooled features, logits)" {
    parity resnet18 resnet34
}

@test "zoo parity: resnet50, resnet101, resnet152 at 64" {
    not_sanitized "deep ResNets"
    parity resnet50 resnet101 resnet152
}

@test "zoo parity: resnet50 at 224" {
    not_sanitized "ResNet-50 at 224"
    parity --size 224 resnet50
}

@test "zoo parity: vgg11_bn at 64 (adaptive 2x2 -> 7x7 pooling, 4096-d features)" {
    parity vgg11_bn
}

# The VGG builder differs between members only in its configuration table
# (A, B, D, E) and whether batch norm follows each convolution; a member
# costs ~15 s (its 130 M parameters, written and loaded twice), whatever the
# input size. vgg11_bn above (A), with vgg13 (B), vgg16_bn (D) and vgg19 (E)
# here, runs every table, and the builder both with and without batch norm;
# the other four members run with TL_SLOW_TESTS=1.
@test "zoo parity: vgg13, vgg16_bn, vgg19 at 64 (every VGG configuration; with and without batch norm)" {
    not_sanitized "VGG-13/16/19"
    parity vgg13 vgg16_bn vgg19
}

@test "zoo parity: vgg11, vgg13_bn, vgg16, vgg19_bn at 64 (TL_SLOW_TESTS=1)" {
    [ -n "${TL_SLOW_TESTS:-}" ] || skip "the same configurations as the members above; set TL_SLOW_TESTS=1"
    not_sanitized "VGG-11/13/16/19"
    parity vgg11 vgg13_bn vgg16 vgg19_bn
}

@test "zoo parity: squeezenet1_0, squeezenet1_1 at 99 (ceil-mode pools on odd maps), small_cnn" {
    parity --size 99 squeezenet1_0 squeezenet1_1 small_cnn
}

@test "zoo parity: small_cnn at 28" {
    parity --size 28 small_cnn
}

@test "zoo parity: resnet18 at 320x224, an oblong input (any aspect ratio)" {
    if [ -n "${TL_SANITIZE:-}" ]; then
        parity --size 80x48 resnet18
    else
        parity --size 320x224 resnet18
    fi
}

@test "zoo parity: squeezenet1_1 and small_cnn at 48x80 (taller than wide)" {
    parity --size 48x80 squeezenet1_1 small_cnn
}

@test "zoo parity: F16 checkpoints of resnet18 and squeezenet1_1" {
    parity --dtype F16 resnet18 squeezenet1_1
}

@test "zoo parity: BF16 checkpoint of vgg11_bn" {
    not_sanitized "the BF16 VGG"
    parity --dtype BF16 vgg11_bn
}

@test "zoo parity: timm names (resnet18, vgg11_bn with convolutional pre_logits) through tl-convert" {
    parity --timm resnet18 vgg11_bn
}

@test "zoo: tl-info of SqueezeNet 1.1 from ../shared counts torchvision's 1,235,496 parameters" {
    local model=$TL_SHARED/models/safetensors/squeezenet1_1.safetensors
    [ -f "$model" ] || skip "../shared/models/safetensors/squeezenet1_1.safetensors not found"
    run tl info "$model"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"parameters 1,235,496 "* ]]
    [[ "$output" == *"BGR order"* ]]
    [[ "$output" == *"classifier.3     1000 "*"logits"* ]]
}

# PyTorch with this preprocessing (resize 256, centre crop 227, BGR, mean
# subtraction) scores about 0.70; tl gave 0.707 (919 of 1,300).
@test "zoo: real SqueezeNet 1.1 (F16 weights) top-1 >= 0.68 on imagenet-val-1300" {
    local model=$TL_SHARED/models/safetensors/squeezenet1_1.safetensors
    local labels=$TL_SHARED/datasets/imagenet-val-1300/labels.tsv
    [ -f "$model" ] && [ -f "$labels" ] || skip "SqueezeNet or the ImageNet subset not found in $TL_SHARED"
    not_sanitized "the 1,300-image run"
    run tl eval -q -m "$model" "$labels" --label-offset 0 --json
    [ "$status" -eq 0 ]
    local acc
    acc=$(printf '%s\n' "$output" | sed -n 's/.*"accuracy":\([0-9.]*\).*/\1/p')
    echo "top-1: $acc"
    float_ge "$acc" 0.68
}
