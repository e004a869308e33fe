#!/usr/bin/env bats
# tl-convert --keep-int8: a quantised TFLite MobileNet run by tl's int8
# engine with the file's own integers and scales, compared byte for byte
# with TensorFlow Lite's integer kernels (its C library, from npm:
# scripts/tflite-lib.sh, driven by tests/parity/tflite_int8.py) on a few
# images of ../shared, and the same bytes on every SIMD path and thread
# count. Skips, saying why, without ../shared, numpy or the library.

load helpers

PY=/usr/bin/python3
MODELS="mobilenet_v2_1.0_224_quant mobilenet_v1_0.25_128_quant tf2_mobilenet_v2_1.0_224_ptq"

setup_file() {
    have_shared || return 0
    local d=$BATS_FILE_TMPDIR m f why
    for m in $MODELS; do
        tl convert -q --keep-int8 "$TL_MODELS/$m.tflite" --labels "$TL_MODELS/imagenet_labels.txt" -o "$d/$m.st"
    done
    : >"$d/images.tsv"
    for f in owl.jpg parrot.jpg cat.bmp; do
        printf '%s\t%s\n' "$TL_SHARED/images/$f" "${f%.*}" >>"$d/images.tsv"
    done
    if ! $PY -c 'import numpy' 2>/dev/null; then
        export NO_TFLITE="python3-numpy is not installed for $PY (make deps)"
    elif why=$("$BATS_TEST_DIRNAME/../../scripts/tflite-lib.sh" 2>&1); then
        export TFLITE_LIB=$why
    else
        export NO_TFLITE="TFLite's C library unavailable: $why"
    fi
}

setup() {
    need_shared
    D=$BATS_FILE_TMPDIR
}

# parity MODEL LAYER TENSOR: tl's LAYER (logits, avgpool) against TFLite's
# TENSOR (logits: the input of its SOFTMAX; pooled: its global pool's output).
parity() {
    local m=$1 layer=$2 tensor=$3
    cut -f1 "$D/images.tsv" | xargs "$TL_TEST_BIN/tl-pixels" "$D/$m.st" "$D/$m.px"
    tl extract -q -m "$D/$m.st" -l "$layer" -f npy "$D/images.tsv" -o "$D/$m.$layer.npy"
    run $PY "$BATS_TEST_DIRNAME/../parity/tflite_int8.py" "$TFLITE_LIB" "$TL_MODELS/$m.tflite" "$D/$m.px.f32" \
        "$tensor" "$D/$m.$layer.npy"
    echo "$output"
    assert_success
    assert_line --regexp " 3 images, [0-9]+ bytes, 0 differ$"
}

@test "tflite int8: MobileNetV2 (uint8) logits and pooled features are TFLite's bytes" {
    [ -z "${NO_TFLITE:-}" ] || skip "$NO_TFLITE"
    parity mobilenet_v2_1.0_224_quant logits logits
    parity mobilenet_v2_1.0_224_quant avgpool pooled
}

@test "tflite int8: MobileNetV1 0.25/128 (uint8) logits and pooled features are TFLite's bytes" {
    [ -z "${NO_TFLITE:-}" ] || skip "$NO_TFLITE"
    parity mobilenet_v1_0.25_128_quant logits logits
    parity mobilenet_v1_0.25_128_quant avgpool pooled
}

@test "tflite int8: TF2's MobileNetV2 (int8, per-channel weights) logits are TFLite's bytes" {
    [ -z "${NO_TFLITE:-}" ] || skip "$NO_TFLITE"
    parity tf2_mobilenet_v2_1.0_224_ptq logits logits
}

@test "tflite int8: the same logits for 1 and 2 threads and on every SIMD path" {
    local m p
    for m in mobilenet_v2_1.0_224_quant tf2_mobilenet_v2_1.0_224_ptq; do
        tl extract -q -m "$D/$m.st" -l logits -f tsv -j 1 "$D/images.tsv" -o "$D/$m.ref.tsv"
        tl extract -q -m "$D/$m.st" -l logits -f tsv -j 2 -b 2 "$D/images.tsv" -o "$D/$m.j2.tsv"
        cmp "$D/$m.ref.tsv" "$D/$m.j2.tsv" || fail "$m: -j 2 -b 2 gives other logits"
    done
    # every path on the uint8 model: its weights minus their zero point
    # leave int8 in most layers (I16), the kernels' multi-plane case
    m=mobilenet_v2_1.0_224_quant
    for p in scalar avx2 avx512 avx512vnni; do
        "$TL_TEST_BIN/tl-simd" | grep -qx "$p" || { echo "# no $p on this CPU" >&3; continue; }
        TL_SIMD=$p tl extract -q -m "$D/$m.st" -l logits -f tsv "$D/images.tsv" -o "$D/$m.$p.tsv"
        cmp "$D/$m.ref.tsv" "$D/$m.$p.tsv" || fail "$m: TL_SIMD=$p gives other logits"
    done
}

@test "tflite int8: the checkpoint keeps the file's integers; predictions match the float import" {
    local m=mobilenet_v2_1.0_224_quant hdr
    hdr=$(head -c 300000 "$D/$m.st" | tr -d '\0')
    # asymmetric uint8 weights minus their zero point: I16 where they need it
    [[ $hdr == *'"features.0.0.weight":{"dtype":"I'* && $hdr == *'"classifier.1.weight":{"dtype":"I'* ]]
    [[ $hdr == *'"tl.quant":"int8"'* && $hdr == *'"tl.quant.float_layers":"[]"'* ]]
    [[ $hdr == *'"tl.quant.pooling":"{\"rule\": \"average_pool\"'* ]]
    run tl info "$D/$m.st"
    assert_success
    convert_model $m "$D/v2-float.st"
    assert_equal "$(tl predict -q -m "$D/$m.st" -k 1 "$D/images.tsv" | cut -f2)" \
        "$(tl predict -q -m "$D/v2-float.st" -k 1 "$D/images.tsv" | cut -f2)"
}

@test "tflite int8: a layer TFLite would not run in integers is a one-line error naming it; nothing written" {
    [ -x $PY ] || skip "no $PY"
    local src=$TL_MODELS/mobilenet_v1_0.25_128_quant.tflite mode
    for mode in float zero; do
        # the output of the middle convolution made FLOAT32, or given zero point 300
        $PY "$FIXTURES/tflite_patch.py" "$src" "$D/$mode.tflite" $mode
        run --separate-stderr tl convert -q --keep-int8 "$D/$mode.tflite" -o "$D/$mode.st"
        echo "$stderr"
        assert_equal "$status" 1
        assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 1
        [[ $stderr == "tl-convert: $D/$mode.tflite: tflite: --keep-int8: the output of op "[0-9]*" ("*"CONV_2D, features."[0-9]*")"* ]] ||
            fail "$mode: $stderr"
        [ ! -e "$D/$mode.st" ]
    done
    [[ $stderr == *"zero point 300"* ]] || fail "$stderr"
    # the float import of the same files does not care about activations' types
    tl convert -q "$D/float.tflite" -o "$D/float-import.st"
    no_files_like "$D" 'float.st*'
}

@test "tflite int8: usage: --keep-int8 of a state_dict, tl-quantize of a TFLite file" {
    run --separate-stderr tl convert --keep-int8 --arch resnet18 "$D/mobilenet_v2_1.0_224_quant.st" -o "$D/x.st"
    assert_equal "$status" 2
    [[ $stderr == *"--keep-int8 is for quantised TFLite files"* ]] || fail "$stderr"
    run --separate-stderr tl quantize -m "$TL_MODELS/mobilenet_v1_0.25_128_quant.tflite" --calibrate "$D/images.tsv" \
        -o "$D/x.st"
    assert_equal "$status" 2
    [[ $stderr == *"a TFLite file: tl-convert --keep-int8"* ]] || fail "$stderr"
    [ ! -e "$D/x.st" ]
}
