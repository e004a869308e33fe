#!/usr/bin/env bats
# tl-convert (TFLite -> checkpoint) and tl-info on the result, with the
# models of ../shared/models/tflite. Skipped when ../shared is absent.

load helpers

setup_file() {
    have_shared || return 0
    convert_model mobilenet_v2_1.0_224_quant "$BATS_FILE_TMPDIR/mv2.safetensors"
}

setup() {
    need_shared
    MV2=$BATS_FILE_TMPDIR/mv2.safetensors
}

# st_header FILE OUT: the JSON header of a safetensors file.
st_header() {
    local n
    n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    [ "$n" -gt 0 ] && [ "$n" -lt 100000000 ] || fail "$1: header length $n"
    dd if="$1" bs=1 skip=8 count="$n" status=none >"$2"
}

@test "tl-info on converted MobileNetV2: features.0..features.18, avgpool, classifier.1" {
    run --separate-stderr tl info "$MV2"
    assert_success
    assert_line --regexp '^arch +mobilenet_v2'
    assert_line --regexp '^input +3x224x224: shorter side to 256 \(bilinear\), centre crop 224$'
    assert_line --regexp '^classes +1001: "?background"?, "?tench, Tinca tinca"?'
    assert_line --regexp '^parameters +3,[0-9]{3},[0-9]{3} '
    for i in $(seq 0 18); do
        assert_line --regexp "^features\.$i +[0-9]+x[0-9]+x[0-9]+"
    done
    assert_line --regexp '^features\.0 +32x112x112'
    assert_line --regexp '^features\.13 +96x14x14'
    assert_line --regexp '^features\.18 +1280x7x7'
    assert_line --regexp '^avgpool +1280 +default features$'
    assert_line --regexp '^classifier\.1 +1001 +logits$'
    refute_line --regexp '^features\.19 '
}

@test "tl-info --classes lists all 1001 names; -M shows the tl.* metadata" {
    run --separate-stderr tl info --classes "$MV2"
    assert_success
    local cls
    cls=$(printf '%s\n' "$output" | grep '^classes')
    [[ "$cls" == *"toilet tissue, toilet paper, bathroom tissue"* ]] || fail "last class missing"
    [[ "$cls" != *"--classes lists all"* ]] || fail "$cls"
    run --separate-stderr tl info -M "$MV2"
    assert_line --regexp '^ +tl.arch +mobilenet_v2$'
    assert_line --regexp '^ +tl.num_classes +1001$'
    assert_line --regexp '^ +tl.input_size +224$'
}

@test "the checkpoint is safetensors with torchvision names and tl.* metadata" {
    st_header "$MV2" "$BATS_TEST_TMPDIR/h.json"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/h.json" "d['__metadata__']['tl.arch']")" mobilenet_v2
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/h.json" "d['__metadata__']['tl.num_classes']")" 1001
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/h.json" "d['features.0.0.weight']['shape']")" "[32, 3, 3, 3]"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/h.json" "d['features.18.0.weight']['shape']")" "[1280, 320, 1, 1]"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/h.json" "d['classifier.1.weight']['shape']")" "[1001, 1280]"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/h.json" "d['classifier.1.weight']['dtype']")" F32
}

@test "every TFLite model in ../shared converts, with the right sizes and class counts" {
    local d=$BATS_TEST_TMPDIR
    while read -r name labels size classes; do
        [ "$labels" = - ] && labels=""
        run --separate-stderr tl convert -q "$TL_MODELS/$name.tflite" ${labels:+--labels "$TL_MODELS/$labels"} -o "$d/$name.st"
        assert_success
        run --separate-stderr tl info "$d/$name.st"
        assert_success
        assert_line --regexp "^input +3x${size}x${size}:"
        if [ "$classes" = none ]; then
            assert_line --regexp '^classes +none'
        else
            assert_line --regexp "^classes +$classes: "
        fi
    done <<'EOF'
mobilenet_v1_0.25_128_quant imagenet_labels.txt 128 1001
mobilenet_v1_0.5_160_quant imagenet_labels.txt 160 1001
mobilenet_v1_0.75_192_quant imagenet_labels.txt 192 1001
mobilenet_v1_1.0_224_quant_embedding_extractor - 224 none
mobilenet_v2_1.0_224_inat_bird_quant inat_bird_labels.txt 224 965
mobilenet_v2_1.0_224_inat_insect_quant inat_insect_labels.txt 224 1022
tf2_mobilenet_v2_1.0_224_ptq imagenet_labels.txt 224 1001
EOF
    run --separate-stderr tl info "$d/mobilenet_v1_0.25_128_quant.st"
    assert_line --regexp '^arch +mobilenet_v1 \(width 0.25\)'
}

@test "converted models classify: v1 0.25, TF2 int8 v2, iNat birds" {
    local d=$BATS_TEST_TMPDIR img=$TL_SHARED/images
    convert_model mobilenet_v1_0.25_128_quant "$d/v1.st"
    convert_model tf2_mobilenet_v2_1.0_224_ptq "$d/tf2.st"
    convert_model mobilenet_v2_1.0_224_inat_bird_quant "$d/bird.st" "$TL_MODELS/inat_bird_labels.txt"
    run --separate-stderr tl predict -m "$d/v1.st" -k 1 --no-header "$img/parrot.jpg"
    assert_success
    assert_output --regexp $'\tmacaw\t'
    run --separate-stderr tl predict -m "$d/tf2.st" -k 1 --no-header "$img/hot_dog.jpg" "$img/parrot.jpg"
    assert_success
    assert_line --index 0 --regexp $'\thotdog, hot dog, red hot\t'
    assert_line --index 1 --regexp $'\tmacaw\t'
    run --separate-stderr tl predict -m "$d/bird.st" -k 1 --no-header "$img/bird.bmp"
    assert_success
    assert_output --regexp $'\tPoecile [a-z]+ \\([^)]*Chickadee\\)\t'
}

@test "the embedding extractor: tl-info says no classifier, tl-predict and tl-eval fail clearly" {
    local st=$BATS_TEST_TMPDIR/emb.st
    tl convert -q "$TL_MODELS/mobilenet_v1_1.0_224_quant_embedding_extractor.tflite" -o "$st"
    run --separate-stderr tl info "$st"
    assert_success
    assert_line --regexp '^classes +none \(a backbone without classifier\)$'
    refute_line --regexp ' logits$'
    run --separate-stderr tl predict -m "$st" "$TL_SHARED/images/cat.bmp"
    assert_failure 1
    assert_equal "$output" ""
    [[ "$stderr" == "tl-predict: $st: "*"without classifier"* ]] || fail "$stderr"
    printf '%s\tcat\n' "$TL_SHARED/images/cat.bmp" >"$BATS_TEST_TMPDIR/m.tsv"
    run --separate-stderr tl eval -m "$st" "$BATS_TEST_TMPDIR/m.tsv"
    assert_failure 1
    [[ "$stderr" == "tl-eval: "*"without classifier"* ]] || fail "$stderr"
    # ...but it extracts features: 1024 per image.
    run --separate-stderr tl extract -q -m "$st" -f tsv "$BATS_TEST_TMPDIR/m.tsv"
    assert_success
    assert_line --regexp $'^#dim\t1024$'
}

@test "tl-convert --dry-run describes the model and writes nothing" {
    mkdir "$BATS_TEST_TMPDIR/out" && cd "$BATS_TEST_TMPDIR/out"
    run --separate-stderr tl convert --dry-run "$TL_MODELS/mobilenet_v1_0.25_128_quant.tflite"
    assert_success
    assert_equal "$output" ""
    [[ "$stderr" == *"mobilenet_v1 width 0.25"*"1001 classes"* ]] || fail "$stderr"
    assert_equal "$(ls -A)" ""
}

@test "a truncated .tflite fails with exit 1, a message naming the file, and no output" {
    local d=$BATS_TEST_TMPDIR
    head -c 1000 "$TL_MODELS/mobilenet_v2_1.0_224_quant.tflite" >"$d/cut.tflite"
    head -c 2000000 "$TL_MODELS/mobilenet_v2_1.0_224_quant.tflite" >"$d/half.tflite"
    for f in cut half; do
        run --separate-stderr tl convert "$d/$f.tflite" -o "$d/$f.st"
        assert_failure 1
        assert_equal "$(printf '%s\n' "$stderr" | grep -c '^tl-convert: .*\(truncated\|past the end\|too short\)')" 1
        [[ "$stderr" == *"$d/$f.tflite"* ]] || fail "file not named: $stderr"
        [ ! -e "$d/$f.st" ]
    done
    no_files_like "$d" '*.st*'
}

@test "not a TFLite file, a folder, an empty file: exit 1 naming the input" {
    local d=$BATS_TEST_TMPDIR
    noise_bytes 5000 random.tflite >"$d/random.tflite"
    : >"$d/empty.tflite"
    for f in "$d/random.tflite" "$d/empty.tflite" "$d" "$d/missing.tflite" "$TL_SHARED/images/cat.bmp"; do
        run --separate-stderr tl convert -q "$f" -o "$d/x.st"
        assert_failure 1
        [[ "$stderr" == "tl-convert: $f: "* ]] || fail "$f: '$stderr'"
        [ ! -e "$d/x.st" ]
    done
}

@test "tl-convert: wrong labels file, missing labels file, output folder missing" {
    local d=$BATS_TEST_TMPDIR m=$TL_MODELS/mobilenet_v1_0.25_128_quant.tflite
    printf 'a\nb\n' >"$d/two.txt"
    run --separate-stderr tl convert -q "$m" --labels "$d/two.txt" -o "$d/x.st"
    assert_failure 1
    [[ "$stderr" == "tl-convert: $d/two.txt: 2 labels for a model with 1001 classes" ]] || fail "$stderr"
    run --separate-stderr tl convert -q "$m" --labels "$d/nope.txt" -o "$d/x.st"
    assert_failure 1
    [[ "$stderr" == "tl-convert: $d/nope.txt: "* ]] || fail "$stderr"
    run --separate-stderr tl convert -q "$m" --labels "$TL_MODELS/inat_bird_labels.txt" -o "$d/x.st"
    assert_failure 1
    [ ! -e "$d/x.st" ]
    run --separate-stderr tl convert -q "$m" -o "$d/no/dir/x.st"
    assert_failure 1
    [[ "$stderr" == "tl-convert: $d/no/dir/x.st: "* ]] || fail "$stderr"
}

@test "a truncated or corrupt checkpoint is refused by tl-info and tl-predict" {
    local d=$BATS_TEST_TMPDIR size
    size=$(stat -c %s "$MV2")
    head -c $((size / 2)) "$MV2" >"$d/half.st"
    head -c 4 "$MV2" >"$d/tiny.st"
    { printf '\xff\xff\xff\xff\xff\xff\xff\x7f'; noise_bytes 100 hugehdr; } >"$d/hugehdr.st"
    for f in half tiny hugehdr; do
        run --separate-stderr tl info "$d/$f.st"
        assert_failure 1
        [[ "$stderr" == "tl-info: "*"$d/$f.st"* ]] || fail "$f: '$stderr'"
        run --separate-stderr tl predict -m "$d/$f.st" "$TL_SHARED/images/cat.bmp"
        assert_failure 1
        [[ "$stderr" == "tl-predict: "*"$f.st"* ]] || fail "$f: '$stderr'"
    done
}

@test "a model is found by name in \$TL_MODEL_PATH" {
    mkdir "$BATS_TEST_TMPDIR/models"
    cp "$MV2" "$BATS_TEST_TMPDIR/models/mv2.safetensors"
    TL_MODEL_PATH=/nonexistent:$BATS_TEST_TMPDIR/models run --separate-stderr tl info mv2
    assert_success
    assert_line --regexp '^arch +mobilenet_v2'
    TL_MODEL_PATH=/nonexistent run --separate-stderr tl info mv2
    assert_failure 1
    [[ "$stderr" == "tl-info: "*"mv2"* ]] || fail "$stderr"
}
