#!/usr/bin/env bats
# tl-augment: spec errors, the output tree, manifests, previews,
# reproducibility (same seed, any thread count: same bytes) and bad input.
# Self-contained: images are made here; ../shared is used only when present.

load helpers

setup_file() {
    local d=$BATS_FILE_TMPDIR
    mkdir -p "$d/data/ants" "$d/data/bees"
    gradient_ppm "$d/data/ants/a1.ppm" 80 60
    gradient_ppm "$d/data/ants/a2.ppm" 50 70
    gradient_ppm "$d/data/bees/b1.ppm" 64 64
    # more images than one block of work (16 per thread)
    mkdir -p "$d/many/c"
    for i in $(seq -w 1 37); do cp "$d/data/ants/a2.ppm" "$d/many/c/m$i.ppm"; done
}

setup() {
    D=$BATS_FILE_TMPDIR
    cd "$BATS_TEST_TMPDIR"
}

# png_size FILE: "W H" from the IHDR chunk.
png_size() {
    local w h
    w=$(od -An -tu1 -j16 -N4 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
    h=$(od -An -tu1 -j20 -N4 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
    echo "$w $h"
}

@test "--help, --version, unknown options and missing data follow the conventions" {
    run --separate-stderr tl augment --help
    assert_success
    assert_line --index 0 --regexp '^Usage: tl-augment '
    assert_line --regexp '^Example'
    run --separate-stderr tl augment --version
    assert_line --index 0 --regexp '^tl-augment \(tl\) [0-9]+\.[0-9]+\.[0-9]+$'
    run --separate-stderr tl augment --bogus
    assert_failure 2
    [[ "$stderr" == "tl-augment: "* ]] && [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
    run --separate-stderr tl augment </dev/null
    assert_failure 2
    [[ "$stderr" == "tl-augment: "*"--help"* ]]
    run --separate-stderr tl augment "$D/data"
    assert_failure 2
    [[ "$stderr" == *"nothing to do"* ]]
}

@test "--list prints every op with parameters and defaults, and every policy with its expansion" {
    run --separate-stderr tl augment --list
    assert_success
    for op in rrc hflip vflip rot rot90 translate jitter grey noise blur jpeg erase resize crop; do
        assert_line --regexp "^  $op( \(also [^)]*\))?: "
    done
    for p in natural medical aerial document low-quality; do
        assert_line --regexp "^  $p = [a-z]"
    done
    assert_line --regexp '^      scale +0\.08:1 '
    assert_line --regexp '^      fill +constant '
}

@test "spec errors: one line naming the column, exit 2, nothing written" {
    run --separate-stderr tl augment -a 'hflip,vflip,rott(deg=5)' -o out "$D/data"
    assert_failure 2
    assert_equal "$stderr" "tl-augment: --augment: unknown op 'rott' at column 13 (see tl-augment --list)"
    [ ! -e out ]
    run --separate-stderr tl augment -a 'rot(deg=15' --explain
    assert_failure 2
    assert_equal "$stderr" "tl-augment: --augment: unclosed '(' at column 4 (see tl-augment --list)"
    run --separate-stderr tl augment -a 'rrc(scale=1:0.08)' --explain
    assert_equal "$stderr" "tl-augment: --augment: range 1:0.08 for 'scale' has min > max at column 11 (see tl-augment --list)"
    run --separate-stderr tl augment -a 'hflip(p=2)' --explain
    assert_equal "$stderr" "tl-augment: --augment: p=2 is outside [0,1] at column 9 (see tl-augment --list)"
    run --separate-stderr tl augment -a 'rot(deg=1x)' --explain
    assert_equal "$stderr" "tl-augment: --augment: bad number '1x' for 'deg' at column 9 (see tl-augment --list)"
    run --separate-stderr tl augment -a 'rot(angle=3)' --explain
    assert_equal "$stderr" "tl-augment: --augment: unknown parameter 'angle' for op 'rot' at column 5 (rot takes deg, fill, value, p) (see tl-augment --list)"
}

@test "--explain expands policies, mixed with ops, at the chosen size" {
    run --separate-stderr tl augment -a 'aerial,noise(sigma=0.02)' --size 160 --explain
    assert_success
    assert_line --index 0 --regexp '^rrc\(size=160,scale=0\.25:1,.*\),hflip\(p=0\.5\),vflip\(p=0\.5\),rot90\(k=0:3,p=1\),jitter\(.*\),noise\(sigma=0\.02:0\.02,p=1\)$'
    assert_line --index 1 'output 160x160'
}

@test "N copies per image in a tree that mirrors the classes, PNG at the network size" {
    run --separate-stderr tl augment -q -n 3 -o out "$D/data"
    assert_success
    assert_equal "$stderr" ""
    [ "$(find out -type f | wc -l)" -eq 9 ]
    for f in out/ants/a1_aug0.png out/ants/a1_aug2.png out/ants/a2_aug1.png out/bees/b1_aug2.png; do
        [ -f "$f" ] || fail "missing $f"
        assert_equal "$(png_size "$f")" "224 224"
    done
    no_files_like out/ants '*.tmp.*'
}

@test "same seed: identical bytes, with any number of threads; another seed differs" {
    tl augment -q -a 'low-quality,rot(deg=20,fill=reflect),erase(value=random)' -n 2 --seed 7 -j 1 -o s1 "$D/data"
    tl augment -q -a 'low-quality,rot(deg=20,fill=reflect),erase(value=random)' -n 2 --seed 7 -j 3 -o s2 "$D/data"
    tl augment -q -a 'low-quality,rot(deg=20,fill=reflect),erase(value=random)' -n 2 --seed 8 -j 3 -o s3 "$D/data"
    for f in ants/a1_aug0.png ants/a2_aug1.png bees/b1_aug0.png bees/b1_aug1.png; do
        cmp "s1/$f" "s2/$f"
    done
    ! cmp -s s1/ants/a1_aug0.png s3/ants/a1_aug0.png
    ! cmp -s s1/ants/a1_aug0.png s1/ants/a1_aug1.png
}

@test "many images: every one written once, the same bytes with 1 and 3 threads" {
    run --separate-stderr tl augment -q -a 'rrc,hflip,jitter(h=0.1),noise' --size 32 -n 2 -j 1 -o m1 --manifest - "$D/many"
    assert_success
    assert_equal "${#lines[@]}" 74
    assert_line --index 73 "m1/c/m37_aug1.png"$'\t'"c"
    tl augment -q -a 'rrc,hflip,jitter(h=0.1),noise' --size 32 -n 2 -j 3 -o m3 "$D/many"
    [ "$(find m3 -type f | wc -l)" -eq 74 ]
    diff -r m1 m3
    ! cmp -s m1/c/m01_aug0.png m1/c/m02_aug0.png
}

@test "--manifest - lists the written files (path<TAB>class) in order; it reads back as a data set" {
    run --separate-stderr tl augment -q -n 2 -o out --manifest - "$D/data"
    assert_success
    assert_equal "${#lines[@]}" 6
    assert_line --index 0 "out/ants/a1_aug0.png"$'\t'"ants"
    assert_line --index 1 "out/ants/a1_aug1.png"$'\t'"ants"
    assert_line --index 5 "out/bees/b1_aug1.png"$'\t'"bees"
    printf '%s\n' "$output" | tl augment -q -a hflip -n 1 --size 0 -o again -
    [ -f again/ants/a1_aug0_aug0.png ] && [ -f again/bees/b1_aug1_aug0.png ]
    # a manifest file gets absolute paths, so it can live anywhere
    tl augment -q -n 1 -o out2 --manifest list.tsv "$D/data"
    [[ "$(head -1 list.tsv)" == "$PWD/out2/ants/a1_aug0.png"$'\t'"ants" ]] || fail "$(head -1 list.tsv)"
}

@test "--format jpg, --size 0 keeps each image's size, unlabelled lists write flat" {
    tl augment -q -a 'hflip(p=1)' -n 1 -f jpg -o j "$D/data"
    [ "$(od -An -tx1 -N3 j/ants/a1_aug0.jpg | tr -d ' ')" = "ffd8ff" ]
    tl augment -q -a 'natural' -n 1 --size 0 -o keep "$D/data"
    assert_equal "$(png_size keep/ants/a1_aug0.png)" "80 60"
    assert_equal "$(png_size keep/ants/a2_aug0.png)" "50 70"
    printf '%s\n' "$D/data/ants/a1.ppm" "$D/data/bees/b1.ppm" | tl augment -q -n 1 -o flat -
    [ -f flat/a1_aug0.png ] && [ -f flat/b1_aug0.png ]
}

@test "a name met twice in one class does not overwrite the other's copies" {
    mkdir -p x y
    cp "$D/data/ants/a1.ppm" x/img.ppm
    cp "$D/data/bees/b1.ppm" y/img.ppm
    printf '%s\tc\n' "$PWD/x/img.ppm" "$PWD/y/img.ppm" >m.tsv
    run --separate-stderr tl augment -q -n 1 -o out --manifest - m.tsv
    assert_success
    assert_line --index 0 "out/c/img_aug0.png"$'\t'"c"
    assert_line --index 1 "out/c/img-1_aug0.png"$'\t'"c"
}

@test "--preview writes a contact sheet: a row per image, the original then N copies" {
    run --separate-stderr tl augment -q -a aerial -n 4 --size 64 --preview sheet.png "$D/data"
    assert_success
    # margin 4, gap 8, cells of 64: 4 + 8 + 5 * 68 wide, 4 + 3 * 68 high
    assert_equal "$(png_size sheet.png)" "352 208"
    [ ! -e out ]
    tl augment -q -n 2 --rows 1 --size 32 --preview one.png "$D/data"
    assert_equal "$(png_size one.png)" "120 40"
}

@test "an unreadable image fails the run (exit 1) unless --skip-bad" {
    mkdir -p bad/c
    cp "$D/data/ants/a1.ppm" bad/c/good.ppm
    noise_bytes 100 broken.jpg >bad/c/broken.jpg
    run --separate-stderr tl augment -q -n 1 -o out bad
    assert_failure 1
    [[ "$stderr" == "tl-augment: bad/c/broken.jpg: "* ]] || fail "$stderr"
    run --separate-stderr tl augment -n 1 --skip-bad -o out2 bad
    assert_success
    [[ "$stderr" == *"skipping bad/c/broken.jpg: "* ]] || fail "$stderr"
    [ -f out2/c/good_aug0.png ] && [ ! -e out2/c/broken_aug0.png ]
}

@test "the shared photos through every policy (when ../shared is present)" {
    [ -d "$TL_SHARED/images" ] || skip "../shared not found"
    for p in natural medical aerial document low-quality; do
        tl augment -q -a "$p" -n 2 --rows 3 --preview "$p.png" -o "out-$p" "$TL_SHARED/images"
        [ "$(find "out-$p" -name '*.png' | wc -l)" -ge 20 ]
    done
}
