#!/usr/bin/env bats
# Image input to tl-predict / tl-eval / tl-extract: images made here (PPM,
# PGM, BMP), broken ones, and the photos of ../shared/images. Needs a real
# network, so it converts MobileNetV2 from ../shared once per file.

load helpers

setup_file() {
    have_shared || return 0
    local d=$BATS_FILE_TMPDIR
    convert_model mobilenet_v2_1.0_224_quant "$d/mv2.safetensors"
    gradient_ppm "$d/grad.ppm" 67 45
    noise_bytes 3000 random.jpg >"$d/random.jpg"
}

setup() {
    need_shared
    MV2=$BATS_FILE_TMPDIR/mv2.safetensors
}

@test "photos of ../shared/images get sensible top-1 classes" {
    local img=$TL_SHARED/images
    run --separate-stderr tl predict -m "$MV2" -k 1 --no-header "$img/cat.bmp" "$img/hot_dog.jpg" "$img/parrot.jpg"
    assert_success
    assert_equal "${#lines[@]}" 3
    [[ "${lines[0]}" =~ ^$img/cat.bmp$'\t'[^$'\t']*(cat|tabby)[^$'\t']*$'\t'0\.[0-9]+$ ]] || fail "${lines[0]}"
    [[ "${lines[1]}" == "$img/hot_dog.jpg"$'\t'"hotdog, hot dog, red hot"$'\t'0.* ]] || fail "${lines[1]}"
    [[ "${lines[2]}" == "$img/parrot.jpg"$'\t'"macaw"$'\t'0.* ]] || fail "${lines[2]}"
    # Confident, not a near-uniform guess.
    printf '%s\n' "$output" | awk -F'\t' '$3 < 0.5 { print "low confidence: " $0; exit 1 }'
}

@test "tl-eval on images with numeric labels (--label-offset 1 for the 1001-output model)" {
    local img=$TL_SHARED/images
    # 0-based ImageNet indices: 88 macaw, 934 hotdog; 285 Egyptian cat, the
    # wrong answer for the hot dog.
    printf '%s\t88\n%s\t934\n' "$img/parrot.jpg" "$img/hot_dog.jpg" >"$BATS_TEST_TMPDIR/right.tsv"
    printf '%s\t88\n%s\t285\n' "$img/parrot.jpg" "$img/hot_dog.jpg" >"$BATS_TEST_TMPDIR/wrong.tsv"
    run --separate-stderr tl eval -m "$MV2" --label-offset 1 --json "$BATS_TEST_TMPDIR/right.tsv"
    assert_success
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/r.json"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/r.json" "d['correct']")" 2
    run --separate-stderr tl eval -m "$MV2" --label-offset 1 --json "$BATS_TEST_TMPDIR/wrong.tsv"
    assert_success
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/w.json"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/w.json" "d['correct']")" 1
    # Without --label-offset, '88' is not a class name of the model.
    run --separate-stderr tl eval -m "$MV2" "$BATS_TEST_TMPDIR/right.tsv"
    assert_failure 1
    [[ "$stderr" == *"label '88' is not one of the model's 1001 classes"* ]] || fail "$stderr"
}

@test "generated images: PPM and BMP of the same pixels, PPM and PGM of the same grey, predict alike" {
    local d=$BATS_TEST_TMPDIR
    ppm_to_bmp "$BATS_FILE_TMPDIR/grad.ppm" "$d/grad.bmp"
    grey_pair "$d/grey" 50 40
    run --separate-stderr tl predict -m "$MV2" -k 3 --no-header "$BATS_FILE_TMPDIR/grad.ppm" "$d/grad.bmp" "$d/grey.ppm" "$d/grey.pgm"
    assert_success
    assert_equal "${#lines[@]}" 4
    assert_equal "$(printf '%s' "${lines[0]}" | cut -f2-)" "$(printf '%s' "${lines[1]}" | cut -f2-)"
    assert_equal "$(printf '%s' "${lines[2]}" | cut -f2-)" "$(printf '%s' "${lines[3]}" | cut -f2-)"
    # Different pictures, different answers.
    [ "$(printf '%s' "${lines[0]}" | cut -f2-)" != "$(printf '%s' "${lines[2]}" | cut -f2-)" ]
    # Probabilities in decreasing order.
    printf '%s\n' "$output" | awk -F'\t' '!($3 >= $5 && $5 >= $7 && $3 <= 1 && $7 > 0) { print "bad row " $0; exit 1 }'
}

@test "a tiny 1x1 image and a tall thin one are classified without error" {
    ppm "$BATS_TEST_TMPDIR/one.ppm" 1 1 10 200 30
    gradient_ppm "$BATS_TEST_TMPDIR/tall.ppm" 3 300
    run --separate-stderr tl predict -m "$MV2" -k 1 --no-header "$BATS_TEST_TMPDIR/one.ppm" "$BATS_TEST_TMPDIR/tall.ppm"
    assert_success
    assert_equal "${#lines[@]}" 2
}

@test "images from a folder and from a list on standard input" {
    local d=$BATS_TEST_TMPDIR/imgs
    mkdir -p "$d"
    cp "$BATS_FILE_TMPDIR/grad.ppm" "$d/a.ppm"
    ppm "$d/b.ppm" 8 8 250 250 250
    echo "not an image" >"$d/readme.txt"
    run --separate-stderr tl predict -m "$MV2" -k 1 --no-header "$d"
    assert_success
    assert_equal "${#lines[@]}" 2
    [[ "$output" == *"/a.ppm"$'\t'* && "$output" == *"/b.ppm"$'\t'* ]] || fail "$output"
    run --separate-stderr tl predict -m "$MV2" -k 1 --no-header - < <(printf '%s\n' "$d/b.ppm" "$d/a.ppm")
    assert_success
    assert_equal "${#lines[@]}" 2
    [[ "${lines[0]}" == "$d/b.ppm"$'\t'* ]] || fail "${lines[0]}"
}

@test "random bytes named .jpg: exit 1, one line naming the file" {
    run --separate-stderr tl predict -m "$MV2" "$BATS_FILE_TMPDIR/random.jpg"
    assert_failure 1
    [[ "$stderr" == "tl-predict: $BATS_FILE_TMPDIR/random.jpg: "* ]] || fail "$stderr"
    assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 1
}

@test "broken images: each failure says what is wrong with which file" {
    local d=$BATS_TEST_TMPDIR
    { printf '\xff\xd8\xff\xe0'; noise_bytes 600 badsoi; } >"$d/badsoi.jpg"
    head -c 3000 "$TL_SHARED/images/hot_dog.jpg" >"$d/cut.jpg"
    head -c 200 "$BATS_FILE_TMPDIR/grad.ppm" >"$d/cut.ppm"
    head -c 100 "$TL_SHARED/images/cat.bmp" >"$d/cut.bmp"
    : >"$d/empty.ppm"
    printf 'P6\n0 0\n255\n' >"$d/zero.ppm"
    printf 'P6\n100000 100000\n255\n' >"$d/huge.ppm"
    while read -r f want; do
        run --separate-stderr tl predict -m "$MV2" "$d/$f"
        assert_failure 1
        [[ "$stderr" == "tl-predict: $d/$f: "* ]] || fail "$f: '$stderr'"
        [[ "$stderr" =~ $want ]] || fail "$f: '$stderr' does not match /$want/"
    done <<'EOF'
badsoi.jpg JPEG
cut.jpg truncated
cut.ppm truncated
cut.bmp (truncated|BMP)
empty.ppm empty
zero.ppm size
huge.ppm limit
missing.jpg (no such file|No such file)
EOF
}

@test "an error about an image names the file once (tl-xxx: FILE: reason)" {
    run --separate-stderr tl predict -m "$MV2" "$BATS_FILE_TMPDIR/random.jpg"
    assert_failure 1
    local f=$BATS_FILE_TMPDIR/random.jpg
    [[ "$stderr" != *"$f: $f:"* ]] || fail "file named twice: $stderr"
}

@test "tl-extract --max-pixels refuses large images" {
    printf '%s\tA\n%s\tB\n' "$BATS_FILE_TMPDIR/grad.ppm" "$BATS_FILE_TMPDIR/grad.ppm" >"$BATS_TEST_TMPDIR/m.tsv"
    run --separate-stderr tl extract -q -m "$MV2" --max-pixels 1000 "$BATS_TEST_TMPDIR/m.tsv" -o "$BATS_TEST_TMPDIR/f.tlf"
    assert_failure 1
    [[ "$stderr" == *"grad.ppm"*"1000"* ]] || fail "$stderr"
    [ ! -e "$BATS_TEST_TMPDIR/f.tlf" ]
    no_files_like "$BATS_TEST_TMPDIR" 'f.tlf*'
    run --separate-stderr tl extract -q -m "$MV2" --max-pixels 3015 "$BATS_TEST_TMPDIR/m.tsv" -o "$BATS_TEST_TMPDIR/f.tlf"
    assert_success
}

@test "tl-extract: a corrupt image fails the run naming it; --skip-bad warns, skips it, exit 0" {
    local d=$BATS_TEST_TMPDIR
    ppm "$d/w.ppm" 9 9 240 240 240
    printf '%s\tA\n%s\tB\n%s\tA\n' "$BATS_FILE_TMPDIR/grad.ppm" "$BATS_FILE_TMPDIR/random.jpg" "$d/w.ppm" >"$d/m.tsv"
    run --separate-stderr tl extract -m "$MV2" -f tsv "$d/m.tsv" -o "$d/f.tsv"
    assert_failure 1
    [[ "$stderr" == *"tl-extract: $BATS_FILE_TMPDIR/random.jpg: "* ]] || fail "$stderr"
    [ ! -e "$d/f.tsv" ]
    no_files_like "$d" 'f.tsv*'
    run --separate-stderr tl extract -m "$MV2" -f tsv --skip-bad "$d/m.tsv" -o "$d/f.tsv"
    assert_success
    [[ "$stderr" == *"random.jpg"* ]] || fail "no warning: $stderr"
    [[ "$stderr" == *"skipped 1 "* ]] || fail "no count: $stderr"
    assert_equal "$(grep -vc '^#' "$d/f.tsv")" 2
    assert_equal "$(grep -v '^#' "$d/f.tsv" | cut -f1,2)" "$(printf '%s\tA\n%s\tA' "$BATS_FILE_TMPDIR/grad.ppm" "$d/w.ppm")"
    # tl-predict skips the same way.
    run --separate-stderr tl predict -m "$MV2" --skip-bad -k 1 --no-header "$BATS_FILE_TMPDIR/grad.ppm" "$BATS_FILE_TMPDIR/random.jpg"
    assert_success
    assert_equal "${#lines[@]}" 1
    [[ "$stderr" == *"skipped 1 "* ]] || fail "$stderr"
}

@test "tl-eval on unlabelled images has nothing to score" {
    run --separate-stderr tl eval -m "$MV2" --images - < <(echo "$BATS_FILE_TMPDIR/grad.ppm")
    assert_failure 1
    [[ "$stderr" == *"no labelled inputs"* ]] || fail "$stderr"
}

@test "a manifest naming a missing image fails before any work, naming it" {
    printf '%s\tA\n%s\tB\n' "$BATS_FILE_TMPDIR/grad.ppm" "$BATS_TEST_TMPDIR/gone.ppm" >"$BATS_TEST_TMPDIR/m.tsv"
    run --separate-stderr tl extract -q -m "$MV2" "$BATS_TEST_TMPDIR/m.tsv" -o "$BATS_TEST_TMPDIR/f.tlf"
    assert_failure 1
    [[ "$stderr" == *"gone.ppm"* ]] || fail "$stderr"
    [ ! -e "$BATS_TEST_TMPDIR/f.tlf" ]
}
