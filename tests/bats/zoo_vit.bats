#!/usr/bin/env bats
# Vision Transformers against PyTorch: torchvision 0.14's VisionTransformer
# with seeded random weights (vit_b_16, and ViT-Ti/16 / ViT-S/16 with timm's
# dimensions), run by tl-extract; logits, class-token features, the pooled
# patch embedding and encoder_layer_0's full token map must agree to 1e-4
# of their largest value. Also timm names through tl-convert, a BF16
# checkpoint, and position-embedding interpolation for other input sizes.

setup_file() {
    if ! /usr/bin/python3 -c 'import torch, torchvision, PIL, numpy' 2>/dev/null; then
        export PARITY_SKIP="PyTorch not installed for /usr/bin/python3 (make deps)"
    fi
}

vit() {
    [ -z "${PARITY_SKIP:-}" ] || skip "$PARITY_SKIP"
    run /usr/bin/python3 "$BATS_TEST_DIRNAME/../parity/parity_vit.py" --bin "$TL_BIN" \
        --work "$BATS_TEST_TMPDIR/work" "$@"
    echo "$output"
    [ "$status" -eq 0 ]
    if [[ "$output" == *"skipped:"* ]]; then
        skip "${output##*skipped: }"
    fi
}

@test "vit: position-embedding resize equals torchvision's interpolate_embeddings (and oblong grids)" {
    vit --interp-unit
}

@test "vit: vit_ti_16 at 224" {
    vit --arch vit_ti_16
}

@test "vit: vit_ti_16 at 160 from a checkpoint made at 224 (interpolated position embedding)" {
    vit --arch vit_ti_16 --size 160 --train-size 224
}

@test "vit: vit_ti_16 at 320x224 from a checkpoint made at 224 (position embedding resized to 14x20)" {
    if [ -n "${TL_SANITIZE:-}" ]; then
        vit --arch vit_ti_16 --size 96x64 --train-size 64 --no-token-map
    else
        vit --arch vit_ti_16 --size 320x224 --train-size 224
    fi
}

@test "vit: vit_ti_16 at 64x112, grid 7x4 from a 96 checkpoint, BF16" {
    vit --arch vit_ti_16 --size 64x112 --train-size 96 --dtype BF16 --no-token-map
}

@test "vit: vit_ti_16 with timm names (tl-convert) at 96, 3 images, 5 classes" {
    vit --arch vit_ti_16 --timm --size 96 --images 3 --classes 5
}

@test "vit: vit_ti_16 with timm names at 160 from 224 (tl-convert interpolates)" {
    vit --arch vit_ti_16 --timm --size 160 --train-size 224 --no-token-map
}

@test "vit: vit_s_16 at 224, BF16 checkpoint" {
    if [ -n "${TL_SANITIZE:-}" ]; then
        vit --arch vit_s_16 --size 96 --dtype BF16  # 224 is slow under sanitizers
    else
        vit --arch vit_s_16 --dtype BF16
    fi
}

# vit_b_16 adds only its dimensions (768 wide, 12 heads) to the code the
# Ti and S members run; its 86 M parameters cost most at 224 (40 s here):
# at 96 by default, at 224 with TL_SLOW_TESTS=1.
@test "vit: vit_b_16 at 96, 1000 classes" {
    [ -z "${TL_SANITIZE:-}" ] || skip "vit_b_16 is too slow under sanitizers"
    vit --arch vit_b_16 --size 96 --classes 1000 --no-token-map
}

@test "vit: vit_b_16 at 224, 1000 classes (TL_SLOW_TESTS=1)" {
    [ -n "${TL_SLOW_TESTS:-}" ] || skip "the code of vit_b_16 at 96; set TL_SLOW_TESTS=1"
    [ -z "${TL_SANITIZE:-}" ] || skip "vit_b_16 at 224 is too slow under sanitizers"
    vit --arch vit_b_16 --classes 1000 --no-token-map
}
