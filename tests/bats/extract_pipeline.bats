#!/usr/bin/env bats
# tl-extract's pipeline: decoder threads fill the next batch while the
# network runs the current one (results must not depend on batch size,
# thread count or timing), and --fast-decode's DCT-domain downscaling of
# large JPEGs (only images at least twice the resize target change).

load helpers

setup_file() {
    have_shared || return 0
    convert_model mobilenet_v1_0.25_128_quant "$BATS_FILE_TMPDIR/m.safetensors"
}

@test "extract pipeline: the same bytes for any batch size and thread count, data-set order kept" {
    need_shared
    local d=$BATS_FILE_TMPDIR
    subset_manifest "$d/set.tsv" val 9
    tl extract -q -m "$d/m.safetensors" -f tsv -j 1 -b 1 "$d/set.tsv" -o "$d/a.tsv"
    tl extract -q -m "$d/m.safetensors" -f tsv -j 2 -b 4 "$d/set.tsv" -o "$d/b.tsv"
    tl extract -q -m "$d/m.safetensors" -f tsv -j 2 -b 32 "$d/set.tsv" -o "$d/c.tsv"
    cmp "$d/a.tsv" "$d/b.tsv"
    cmp "$d/a.tsv" "$d/c.tsv"
    diff <(grep -v '^#' "$d/a.tsv" | cut -f1) <(cut -f1 "$d/set.tsv")
}

@test "extract pipeline: a bad image in the middle fails the run, or is skipped with --skip-bad" {
    need_shared
    local d=$BATS_FILE_TMPDIR
    subset_manifest "$d/set.tsv" val 5
    printf 'not a jpeg' >"$d/bad.jpg"
    { head -n 4 "$d/set.tsv"; printf '%s\tants\n' "$d/bad.jpg"; tail -n +5 "$d/set.tsv"; } >"$d/mixed.tsv"
    run tl extract -m "$d/m.safetensors" -b 3 "$d/mixed.tsv" -o "$d/x.tlf"
    [ "$status" -eq 1 ]
    assert_output --partial "bad.jpg"
    [ ! -e "$d/x.tlf" ]
    run tl extract -q -m "$d/m.safetensors" -b 3 --skip-bad -f tsv "$d/mixed.tsv" -o "$d/y.tsv"
    assert_success
    [ "$(grep -vc '^#' "$d/y.tsv")" -eq 10 ]
}

@test "extract --fast-decode: small JPEGs unchanged, a large one close to its full decode" {
    need_shared
    local d=$BATS_FILE_TMPDIR big=$TL_HYM/val/ants/ants-devouring-remains-of-large-dead-insect-on-red-tile-in-Stellenbosch-South-Africa-closeup-1-DHD.jpg
    # ImageNet-val-1300 is stored at 227x227: below twice this model's
    # resize target (146), so never reduced
    local iv=$TL_SHARED/datasets/imagenet-val-1300
    [ -f "$iv/labels.tsv" ] || skip "imagenet-val-1300 not found"
    head -n 3 "$iv/labels.tsv" | sed "s|^|$iv/|" >"$d/small.tsv"
    tl extract -q -m "$d/m.safetensors" -f tsv "$d/small.tsv" -o "$d/s1.tsv"
    tl extract -q -m "$d/m.safetensors" -f tsv --fast-decode "$d/small.tsv" -o "$d/s2.tsv"
    # the vectors are the same; the header records the option (so --resume and cat refuse a mix)
    cmp <(grep -v '^#' "$d/s1.tsv") <(grep -v '^#' "$d/s2.tsv")
    grep -qx $'#fast_decode\t1' "$d/s2.tsv"
    ! grep -q '^#fast_decode' "$d/s1.tsv"
    printf '%s\tants\n' "$big" >"$d/big.tsv"
    tl extract -q -m "$d/m.safetensors" -f tsv "$d/big.tsv" -o "$d/b1.tsv"
    tl extract -q -m "$d/m.safetensors" -f tsv --fast-decode "$d/big.tsv" -o "$d/b2.tsv"
    ! cmp -s <(grep -v '^#' "$d/b1.tsv") <(grep -v '^#' "$d/b2.tsv")
    local cos
    cos=$(paste <(grep -v '^#' "$d/b1.tsv") <(grep -v '^#' "$d/b2.tsv") | awk -F'\t' '{
        n = NF / 2; for (i = 3; i <= n; i++) { a = $i; b = $(i + n); ab += a * b; aa += a * a; bb += b * b } }
        END { print ab / sqrt(aa * bb) }')
    echo "cosine $cos"
    float_ge "$cos" 0.95
}
