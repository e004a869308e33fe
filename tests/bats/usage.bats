#!/usr/bin/env bats
# Command-line conventions shared by every tool: --help, --version, exit
# status 2 with a one-line "tl-xxx: ..." message for usage errors.
# Self-contained: no model or data from ../shared.

load helpers

# every tl-* program built
TOOLS=$(cd "$TL_BIN" && ls tl-* | sed "s/^tl-//" | tr "\n" " ")

setup_file() {
    gen_blobs "$BATS_FILE_TMPDIR/train.tsv" 11
}

@test "every tool's --help goes to stdout with Usage and an Example, exit 0" {
    for t in $TOOLS; do
        run --separate-stderr tl "$t" --help
        assert_success
        assert_equal "$stderr" ""
        assert_line --index 0 --regexp "^Usage: tl-$t "
        assert_line --regexp "^Example"
        assert_line --regexp "^  tl-"
        # -h is the same
        run --separate-stderr tl "$t" -h
        assert_success
        assert_line --index 0 --regexp "^Usage: tl-$t "
    done
}

@test "every tool's --version prints 'tl-xxx (tl) VERSION' and the SIMD path, exit 0" {
    for t in $TOOLS; do
        run --separate-stderr tl "$t" --version
        assert_success
        assert_line --index 0 --regexp "^tl-$t \(tl\) [0-9]+\.[0-9]+\.[0-9]+$"
        assert_line --index 1 --regexp "^SIMD path: (avx512vnni|avx512|avx2|scalar)$"
    done
    # TL_SIMD caps the path, and --version says so
    run env TL_SIMD=scalar "$TL_BIN/tl-extract" --version
    assert_line --index 1 "SIMD path: scalar"
}

@test "every tool refuses an unknown option with exit 2 and one 'tl-xxx:' line" {
    for t in $TOOLS; do
        run --separate-stderr tl "$t" --no-such-option
        assert_failure 2
        assert_equal "$output" ""
        # The convention: one line on stderr, in the "tl-xxx: ..." form
        # (getopt's own "argv[0]: unrecognized option" line breaks it).
        [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ] && [[ "$stderr" == "tl-$t: "* ]] ||
            fail "tl-$t: stderr is not one 'tl-$t: ...' line: $stderr"
    done
}

@test "every tool without arguments is a usage error (exit 2) that points to --help" {
    for t in $TOOLS; do
        run --separate-stderr tl "$t" </dev/null
        assert_failure 2
        assert_equal "$output" ""
        [[ "$stderr" == "tl-$t: "*"--help"* ]] || fail "tl-$t: '$stderr'"
    done
}

@test "tools that take -m say so when it is missing" {
    for t in extract eval predict; do
        run --separate-stderr tl "$t" "$BATS_FILE_TMPDIR/train.tsv"
        assert_failure 2
        [[ "$stderr" == "tl-$t: no model given"* ]] || fail "tl-$t: '$stderr'"
    done
}

@test "tl-finetune without -o is a usage error and writes nothing" {
    mkdir "$BATS_TEST_TMPDIR/out" && cd "$BATS_TEST_TMPDIR/out"
    run --separate-stderr tl finetune "$BATS_FILE_TMPDIR/train.tsv"
    assert_failure 2
    [[ "$stderr" == "tl-finetune: no output given"* ]] || fail "$stderr"
    assert_equal "$(ls -A)" ""
}

@test "tl-convert without -o is a usage error" {
    run --separate-stderr tl convert whatever.tflite
    assert_failure 2
    [[ "$stderr" == "tl-convert: no output given"* ]] || fail "$stderr"
}

@test "tl-finetune: --C and --l2 together are a usage error" {
    run --separate-stderr tl finetune --C 2 --l2 0.01 "$BATS_FILE_TMPDIR/train.tsv" -o "$BATS_TEST_TMPDIR/h.st"
    assert_failure 2
    [[ "$stderr" == *"--C or --l2"* ]] || fail "$stderr"
    [ ! -e "$BATS_TEST_TMPDIR/h.st" ]
}

@test "tl-finetune: bad numbers for options are usage errors naming the option" {
    local f=$BATS_FILE_TMPDIR/train.tsv o=$BATS_TEST_TMPDIR/h.st
    while read -r opt val; do
        run --separate-stderr tl finetune "$opt" "$val" "$f" -o "$o"
        assert_failure 2
        [[ "$stderr" == "tl-finetune: $opt: '$val'"* ]] || fail "$opt $val: '$stderr'"
    done <<'EOF'
--C abc
--C 0
--C -1
--C 1x
--C nan
--C 1e400
--l2 0
--l2 -0.5
--max-iter 0
--max-iter 2.5
--tol 0
--tol zero
EOF
    [ ! -e "$o" ]
    run --separate-stderr tl finetune -j -3 "$f" -o "$o"
    assert_failure 2
    run --separate-stderr tl finetune --head forest "$f" -o "$o"
    assert_failure 2
    [[ "$stderr" == *"'forest' is not logreg, svm, knn or ncm"* ]] || fail "$stderr"
}

@test "tl-extract: bad --format, --batch, -j and --max-pixels are usage errors" {
    for args in "--format csv" "--batch 0" "--batch x" "--batch 99999" "-j -1" "-j 2000" "--max-pixels 0"; do
        # shellcheck disable=SC2086
        run --separate-stderr tl extract -m model.safetensors $args somewhere
        assert_failure 2
        [[ "$stderr" == tl-extract:* ]] || fail "$args: '$stderr'"
    done
}

@test "tl-eval and tl-predict: bad numbers are usage errors" {
    run --separate-stderr tl predict -m h.st -k 0 x
    assert_failure 2
    [[ "$stderr" == "tl-predict: --top-k: '0'"* ]] || fail "$stderr"
    run --separate-stderr tl predict -m h.st --top-k=-4 x
    assert_failure 2
    run --separate-stderr tl predict -m h.st --batch 0 x
    assert_failure 2
    run --separate-stderr tl eval -m h.st --label-offset one x
    assert_failure 2
    [[ "$stderr" == "tl-eval: --label-offset: 'one'"* ]] || fail "$stderr"
    run --separate-stderr tl eval -m h.st -j many x
    assert_failure 2
}

@test "extra positional arguments are usage errors" {
    run --separate-stderr tl finetune a.tsv b.tsv -o h.st
    assert_failure 2
    run --separate-stderr tl eval -m h.st a.tsv b.tsv
    assert_failure 2
    run --separate-stderr tl extract -m m.st dir1 dir2
    assert_failure 2
    run --separate-stderr tl info a.st b.st
    assert_failure 2
    run --separate-stderr tl convert a.tflite b.tflite -o c.st
    assert_failure 2
}

@test "a missing model file is a run-time failure (exit 1) naming the file" {
    for t in eval predict info; do
        if [ "$t" = info ]; then
            run --separate-stderr tl info "$BATS_TEST_TMPDIR/nope.safetensors"
        else
            run --separate-stderr tl "$t" -m "$BATS_TEST_TMPDIR/nope.safetensors" "$BATS_FILE_TMPDIR/train.tsv"
        fi
        assert_failure 1
        [[ "$stderr" == "tl-$t: "*"nope.safetensors"* ]] || fail "tl-$t: '$stderr'"
        assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 1
    done
}
