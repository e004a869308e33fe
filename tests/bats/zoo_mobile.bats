#!/usr/bin/env bats
# MobileNetV3 and EfficientNet against PyTorch: torchvision 0.14 models with
# random weights and batch-norm statistics, run by tl-extract; logits and
# inner layers must agree to 1e-4 of their largest value. Also timm's names
# (mobilenetv2_100, mobilenetv3_*_100, efficientnet_b0) through tl-convert,
# and tl-info's parameter counts against torchvision's.

load helpers

setup_file() {
    if ! /usr/bin/python3 -c 'import torch, torchvision, PIL, numpy' 2>/dev/null; then
        export PARITY_SKIP="PyTorch/torchvision not installed for /usr/bin/python3 (make deps)"
    fi
}

zoo() {
    [ -z "${PARITY_SKIP:-}" ] || skip "$PARITY_SKIP"
    run /usr/bin/python3 "$BATS_TEST_DIRNAME/../parity/parity_mobilenet_efficientnet.py" --bin "$TL_BIN" \
        --work "$BATS_TEST_TMPDIR/work" "$@"
    echo "$output"
    [ "$status" -ne 77 ] || skip "$(echo "$output" | grep skipped | head -1)"
    [ "$status" -eq 0 ]
}

@test "zoo: mobilenet_v3_small and _large at 64, logits and inner layers" {
    zoo mobilenet_v3_small mobilenet_v3_large
}

@test "zoo: mobilenet_v3_large width 0.75; mobilenet_v3_small from F16 weights at 96" {
    zoo mobilenet_v3_large:w0.75 mobilenet_v3_small@96:f16
}

@test "zoo: efficientnet_b0 at 64, from BF16 weights too" {
    zoo efficientnet_b0 efficientnet_b0:bf16
}

@test "zoo: efficientnet_b1, b2, b3 at 64 (depth and width multipliers)" {
    zoo efficientnet_b1 efficientnet_b2 efficientnet_b3
}

@test "zoo: efficientnet_b0 and mobilenet_v3_large at 224" {
    [ -z "${TL_SANITIZE:-}" ] || skip "224-pixel runs are slow under the sanitizers"
    zoo efficientnet_b0@224 mobilenet_v3_large@224
}

@test "zoo: mobilenet_v2 and efficientnet_b0 at 320x224 (an oblong input), mobilenet_v3_small at 48x80" {
    if [ -n "${TL_SANITIZE:-}" ]; then
        zoo mobilenet_v2@80x48 efficientnet_b0@48x80 mobilenet_v3_small@48x80
    else
        zoo mobilenet_v2@320x224 efficientnet_b0@320x224 mobilenet_v3_small@48x80
    fi
}

@test "zoo: timm names for mobilenetv2_100 and efficientnet_b0 (detected and --timm)" {
    zoo timm:mobilenet_v2:auto timm:efficientnet_b0 timm:efficientnet_b0:auto
}

@test "zoo: timm names for mobilenetv3_small_100 and _large_100 (conv_head, BN eps 1e-5)" {
    zoo timm:mobilenet_v3_small timm:mobilenet_v3_large@96
}

@test "zoo: tl-info parameter counts equal torchvision's" {
    zoo count:mobilenet_v3_small count:mobilenet_v3_large count:efficientnet_b0 count:efficientnet_b1 \
        count:efficientnet_b2 count:efficientnet_b3 count:mobilenet_v2
}
