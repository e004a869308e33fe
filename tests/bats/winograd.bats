#!/usr/bin/env bats
# Winograd F(4x4, 3x3) in inference, through the tools, on a real network:
# SqueezeNet 1.1 of ../shared, whose 3x3 expand convolutions (55x55 and
# 27x27 maps) take Winograd by default. --exact keeps every convolution on
# the direct algorithm: other bits, within 1e-5 of the features' scale
# (the zoo holds models to 1e-4 of PyTorch); either way the vectors do not
# depend on the thread count. The unit tests (test_conv, test_model) bound
# the error per layer and per network against double references.

load helpers

setup() {
    model=$TL_SHARED/models/safetensors/squeezenet1_1.safetensors
    local imgs=$TL_SHARED/datasets/imagenet-val-1300/images
    [ -f "$model" ] && [ -d "$imgs" ] || skip "SqueezeNet 1.1 or the ImageNet subset not found in $TL_SHARED"
    list=$BATS_TEST_TMPDIR/list.txt
    find "$imgs" -name '*.JPEG' | sort | head -n 3 >"$list"
    [ "$(wc -l <"$list")" -eq 3 ]
}

# worst |a - b| over the largest |b|, of two TSV feature files (9 significant
# digits: the float's exact value)
worst_rel() {
    # headers dropped before pairing: --exact adds a header line
    paste <(grep -v '^#' "$1") <(grep -v '^#' "$2") | awk -F'\t' '
        { n = NF / 2; for (i = 3; i <= n; i++) { a = $i; b = $(n + i); d = a - b; if (d < 0) d = -d
              if (b < 0) b = -b; if (d > w) w = d; if (b > s) s = b } }
        END { printf "%.3g\n", w / s }'
}

@test "winograd: tl-extract default vs --exact: other bits, within 1e-5; thread count changes nothing" {
    local d=$BATS_TEST_TMPDIR
    run tl extract -q -m "$model" -f tsv -j 2 -o "$d/w2.tsv" - <"$list"
    [ "$status" -eq 0 ]
    run tl extract -q -m "$model" -f tsv -j 1 -o "$d/w1.tsv" - <"$list"
    [ "$status" -eq 0 ]
    run tl extract -q -m "$model" -f tsv -j 2 --exact -o "$d/e2.tsv" - <"$list"
    [ "$status" -eq 0 ]
    run tl extract -q -m "$model" -f tsv -j 1 --exact -o "$d/e1.tsv" - <"$list"
    [ "$status" -eq 0 ]
    cmp "$d/w1.tsv" "$d/w2.tsv"
    cmp "$d/e1.tsv" "$d/e2.tsv"
    # vectors only: the header differs anyway (it records --exact)
    ! cmp -s <(grep -v '^#' "$d/w2.tsv") <(grep -v '^#' "$d/e2.tsv") || fail "--exact gave the default's bits: Winograd did not run"
    local rel
    rel=$(worst_rel "$d/w2.tsv" "$d/e2.tsv")
    echo "default vs --exact: worst difference $rel of the largest feature"
    float_ge 1e-5 "$rel"
}

@test "winograd: tl-predict --exact gives the same top classes" {
    local d=$BATS_TEST_TMPDIR
    tl predict -q -m "$model" -k 3 - <"$list" >"$d/w.tsv"
    tl predict -q -m "$model" -k 3 --exact - <"$list" >"$d/e.tsv"
    [ "$(wc -l <"$d/w.tsv")" -eq 4 ]
    diff <(cut -f1,2 "$d/w.tsv") <(cut -f1,2 "$d/e.tsv")
}
