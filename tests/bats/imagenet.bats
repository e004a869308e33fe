#!/usr/bin/env bats
# Integration: the real TFLite ImageNet models on 1,300 ImageNet validation
# images from ../shared (or $TL_DATA). A float reference execution of each
# model (dequantised weights, PIL resize, centre crop) scores 0.801
# (MobileNetV2 1.0/224) and 0.539 (MobileNetV1 0.25/128) on this subset; SqueezeNet
# 1.1 from ../shared is checked quantised by tl-quantize against its float self.

setup_file() {
    SHARED=${TL_DATA:-$BATS_TEST_DIRNAME/../../../shared}
    export SHARED
    if [ ! -f "$SHARED/datasets/imagenet-val-1300/labels.tsv" ]; then
        export SKIP_WHY="ImageNet subset not found in $SHARED (set TL_DATA)"
    elif [ -n "${TL_SANITIZE:-}" ]; then
        export SKIP_WHY="1,300-image run skipped under sanitizers (too slow); it runs in the normal build"
    fi
}

top1() { # top1 TFLITE [CONVERT_FLAG] -> prints accuracy
    local model="$BATS_TEST_TMPDIR/m.safetensors"
    "$TL_BIN/tl-convert" -q ${2:+"$2"} "$SHARED/models/tflite/$1" --labels "$SHARED/models/tflite/imagenet_labels.txt" \
        -o "$model"
    "$TL_BIN/tl-eval" -q --json -m "$model" --label-offset 1 "$SHARED/datasets/imagenet-val-1300/labels.tsv" |
        sed -n 's/.*"accuracy":\([0-9.]*\).*/\1/p'
}

@test "imagenet: MobileNetV2 1.0/224 (uint8 TFLite) top-1 >= 0.78 on 1300 images" {
    [ -z "${SKIP_WHY:-}" ] || skip "$SKIP_WHY"
    run top1 mobilenet_v2_1.0_224_quant.tflite
    echo "top-1: $output"
    [ "$status" -eq 0 ]
    awk -v a="$output" 'BEGIN { exit !(a >= 0.78) }'
}

@test "imagenet: MobileNetV1 0.25/128 (uint8 TFLite) top-1 >= 0.52 on 1300 images" {
    [ -z "${SKIP_WHY:-}" ] || skip "$SKIP_WHY"
    run top1 mobilenet_v1_0.25_128_quant.tflite
    echo "top-1: $output"
    [ "$status" -eq 0 ]
    awk -v a="$output" 'BEGIN { exit !(a >= 0.52) }'
}

@test "imagenet: SqueezeNet 1.1 quantised by tl-quantize (calibrated on hymenoptera) within 1 point of its float top-1" {
    [ -z "${SKIP_WHY:-}" ] || skip "$SKIP_WHY"
    local sq=$SHARED/models/safetensors/squeezenet1_1.safetensors d=$BATS_TEST_TMPDIR
    [ -f "$sq" ] && [ -d "$SHARED/datasets/hymenoptera/train" ] || skip "SqueezeNet or hymenoptera not found in $SHARED"
    "$TL_BIN/tl-quantize" -q -m "$sq" --calibrate "$SHARED/datasets/hymenoptera/train" -o "$d/sq8.safetensors"
    local f q
    f=$("$TL_BIN/tl-eval" -q --json -m "$sq" --label-offset 0 "$SHARED/datasets/imagenet-val-1300/labels.tsv" |
        sed -n 's/.*"accuracy":\([0-9.]*\).*/\1/p')
    q=$("$TL_BIN/tl-eval" -q --json -m "$d/sq8.safetensors" --label-offset 0 "$SHARED/datasets/imagenet-val-1300/labels.tsv" |
        sed -n 's/.*"accuracy":\([0-9.]*\).*/\1/p')
    echo "top-1: float $f, int8 $q"
    awk -v f="$f" -v q="$q" 'BEGIN { exit !(f >= 0.68 && q >= f - 0.01) }'
}

@test "imagenet: MobileNetV2 1.0/224 kept in integers (--keep-int8, TFLite's arithmetic) top-1 >= 0.78" {
    [ -z "${SKIP_WHY:-}" ] || skip "$SKIP_WHY"
    run top1 mobilenet_v2_1.0_224_quant.tflite --keep-int8
    echo "top-1: $output"
    [ "$status" -eq 0 ]
    awk -v a="$output" 'BEGIN { exit !(a >= 0.78) }'
}
