#!/usr/bin/env bats
# Numerical parity with PyTorch: random-weight MobileNets (random batch-norm
# statistics too) built in PyTorch, run by tl-extract; logits and a pooled
# inner layer must agree to 1e-4 (absolute + relative).

setup_file() {
    if ! /usr/bin/python3 -c 'import torch, torchvision, PIL, numpy' 2>/dev/null; then
        export PARITY_SKIP="PyTorch not installed for /usr/bin/python3 (make deps)"
    fi
}

parity() {
    [ -z "${PARITY_SKIP:-}" ] || skip "$PARITY_SKIP"
    run /usr/bin/python3 "$BATS_TEST_DIRNAME/../parity/mobilenet_parity.py" --bin "$TL_BIN" \
        --work "$BATS_TEST_TMPDIR/work" "$@"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "parity: mobilenet_v2, torchvision padding, 224" {
    parity --arch mobilenet_v2
}

@test "parity: mobilenet_v2, TensorFlow SAME padding" {
    parity --arch mobilenet_v2 --tf-same
}

@test "parity: mobilenet_v2 width 0.75 at 192, 3 classes" {
    parity --arch mobilenet_v2 --width 0.75 --size 192 --classes 3
}

@test "parity: mobilenet_v1 width 0.5 at 160, TensorFlow SAME padding" {
    parity --arch mobilenet_v1 --width 0.5 --size 160 --tf-same
}

@test "parity: mobilenet_v1 at 97x64, TensorFlow SAME padding on an oblong input, legacy metadata" {
    parity --arch mobilenet_v1 --width 0.5 --size 97x64 --tf-same --images 2
}

@test "parity: odd input size 97 (asymmetric SAME padding on odd sizes)" {
    parity --arch mobilenet_v2 --size 97 --tf-same --images 2
}
