#!/usr/bin/env bats
# Any aspect ratio (issue 18.3) at the command line: --input-size WxH and
# --resize-mode in tl-extract and tl-finetune, the geometry recorded in
# feature files, heads and checkpoints, and reused when a head classifies
# images. Real photos (hymenoptera, ../shared), the small MobileNetV1
# 0.25/128; numerical parity at oblong sizes is in the zoo_*.bats suites.

load helpers

setup_file() {
    have_shared || return 0
    export WORK="$BATS_FILE_TMPDIR/w"
    mkdir -p "$WORK"
    convert_model mobilenet_v1_0.25_128_quant "$WORK/m.safetensors"
    subset_manifest "$WORK/train.tsv" train 6
    subset_manifest "$WORK/val.tsv" val 4
}

@test "tl-extract --input-size 160x112 --resize-mode pad: the feature file records the geometry" {
    need_shared
    run tl extract -q -m "$WORK/m.safetensors" --input-size 160x112 --resize-mode pad -f tsv "$WORK/val.tsv"
    [ "$status" -eq 0 ]
    # the model's 146/128 resize box, kept for the new shorter side of 112
    [[ "$output" == *$'#input\t160x112 pad 128'* ]]
    [ "$(printf '%s\n' "$output" | grep -vc '^#')" -eq 8 ]
    # other geometries give other vectors; the default is the model's own square crop
    tl extract -q -m "$WORK/m.safetensors" -f tsv "$WORK/val.tsv" -o "$BATS_TEST_TMPDIR/square.tsv"
    grep -q $'^#input\t128 crop 146$' "$BATS_TEST_TMPDIR/square.tsv"
    tl extract -q -m "$WORK/m.safetensors" --input-size 160x112 -f tsv "$WORK/val.tsv" -o "$BATS_TEST_TMPDIR/crop.tsv"
    grep -q $'^#input\t160x112 crop 128$' "$BATS_TEST_TMPDIR/crop.tsv"
    ! cmp -s <(grep -v '^#' "$BATS_TEST_TMPDIR/crop.tsv") <(printf '%s\n' "$output" | grep -v '^#')
}

@test "a head trained on oblong features classifies images at the same geometry (TLF)" {
    need_shared
    tl extract -q -m "$WORK/m.safetensors" --input-size 96x160 --resize-mode pad "$WORK/train.tsv" -o "$BATS_TEST_TMPDIR/tr.tlf"
    tl extract -q -m "$WORK/m.safetensors" --input-size 96x160 --resize-mode pad "$WORK/val.tsv" -o "$BATS_TEST_TMPDIR/va.tlf"
    tl finetune -q "$BATS_TEST_TMPDIR/tr.tlf" -o "$BATS_TEST_TMPDIR/head.safetensors"
    tl predict -m "$BATS_TEST_TMPDIR/head.safetensors" --format eval "$BATS_TEST_TMPDIR/va.tlf" >"$BATS_TEST_TMPDIR/f.tsv"
    tl predict -m "$BATS_TEST_TMPDIR/head.safetensors" --format eval "$WORK/val.tsv" >"$BATS_TEST_TMPDIR/i.tsv"
    # identical probabilities: the backbone was rebuilt at 96x160 with pad, not at its stored 128 crop
    cmp "$BATS_TEST_TMPDIR/f.tsv" "$BATS_TEST_TMPDIR/i.tsv"
}

@test "tl-finetune -m --input-size 96x64 with augmentation: the checkpoint records it, tl-eval runs at it" {
    need_shared
    run tl finetune -m "$WORK/m.safetensors" --input-size 96x64 --resize-mode crop --head-only --epochs 1 \
        -b 4 -j 2 -a 'natural,crop(size=90x60)' --val "$WORK/val.tsv" -o "$BATS_TEST_TMPDIR/net.safetensors" "$WORK/train.tsv"
    echo "$output"
    [ "$status" -eq 0 ]
    run tl info "$BATS_TEST_TMPDIR/net.safetensors"
    [[ "$output" == *"input      3x64x96: cover 109x73 keeping the aspect ratio (bilinear), centre crop 96x64"* ]]
    run tl eval -m "$BATS_TEST_TMPDIR/net.safetensors" "$WORK/val.tsv"
    [ "$status" -eq 0 ]
    [[ "$output" == *"(8 scored)"* ]]
    # and the same network can be read at another size without retraining
    run tl extract -q -m "$BATS_TEST_TMPDIR/net.safetensors" --input-size 128 -l logits -f tsv "$WORK/val.tsv"
    [ "$status" -eq 0 ]
    [[ "$output" == *$'#input\t128 crop 146'* ]]
}

@test "--input-size errors: malformed sizes are usage errors, a ViT size off its patch grid names it" {
    run tl extract -m x.safetensors --input-size 0x5 data/
    [ "$status" -eq 2 ]
    [[ "$output" == *"--input-size: '0x5' is not WxH or N"* ]]
    run tl finetune -m x.safetensors --input-size 320x data/ -o o.safetensors
    [ "$status" -eq 2 ]
    run tl finetune -m x.safetensors --resize-mode zoom data/ -o o.safetensors
    [ "$status" -eq 2 ]
    [[ "$output" == *"--resize-mode"* ]]
    gen_ppms "$BATS_TEST_TMPDIR/d" 1 2
    run tl finetune --scratch --arch vit_ti_16 --input-size 100x64 --epochs 1 "$BATS_TEST_TMPDIR/d" -o "$BATS_TEST_TMPDIR/v.safetensors"
    [ "$status" -eq 2 ]
    [[ "$output" == *"input size 100x64 is not a multiple of the patch size 16"* ]]
    [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ]
}

@test "tl-adapt-bn --input-size 48x32: statistics re-estimated at the new size, the checkpoint records it" {
    local d=$BATS_TEST_TMPDIR
    gen_ppms "$d/img" 4 4
    tl finetune -q --scratch --arch small_cnn --input-size 32 --epochs 1 -b 4 -o "$d/net.safetensors" "$d/img"
    run tl adapt-bn -q -m "$d/net.safetensors" --input-size 48x32 --resize-mode pad "$d/img" -o "$d/ad.safetensors"
    assert_success
    run tl info -M "$d/ad.safetensors"
    [[ "$output" == *"tl.input_size"*"48x32"* ]] && [[ "$output" == *"tl.resize_mode"*"pad"* ]]
    run tl info "$d/ad.safetensors"
    [[ "$output" == *"input      3x32x48: fit inside 48x32 keeping the aspect ratio"* ]]
    # other statistics than at the stored 32x32
    tl adapt-bn -q -m "$d/net.safetensors" "$d/img" -o "$d/sq.safetensors"
    ! cmp -s "$d/ad.safetensors" "$d/sq.safetensors"
}

@test "tl-augment --size 64x40: every copy is 64x40 (rrc at the size, the final step per --resize-mode)" {
    local d=$BATS_TEST_TMPDIR
    gen_ppms "$d/img" 5 2
    run tl augment -a 'rrc(scale=0.5:1),hflip' --size 64x40 --explain
    assert_success
    assert_line "output 64x40"
    [[ "$output" == *"rrc(size=64x40,"* ]]
    tl augment -q -a 'hflip,jitter(b=0.2)' --size 64x40 --resize-mode pad -n 2 -o "$d/out" "$d/img"
    [ "$(find "$d/out" -name '*.png' | wc -l)" -eq 8 ]
    for f in "$d"/out/*/*.png; do
        [ "$(od -An -tu1 -j 16 -N 8 "$f" | awk '{ print $3 * 256 + $4 "x" $7 * 256 + $8 }')" = 64x40 ] || fail "$f"
    done
    run tl augment -a hflip --size 64x --explain
    [ "$status" -eq 2 ]
}
