#!/usr/bin/env bats
# Feature-level tools on synthetic feature files: tl-finetune -> head ->
# tl-eval / tl-predict / tl-info, the three feature formats, and how bad
# input and bad output places are handled. Self-contained: no ../shared.

load helpers

setup_file() {
    local d=$BATS_FILE_TMPDIR
    gen_blobs "$d/train.tsv" 1 60 8 3 3
    gen_blobs "$d/test.tsv" 2 60 8 3 3
    tl finetune -q "$d/train.tsv" -o "$d/head.safetensors"
}

F() { printf '%s/%s' "$BATS_FILE_TMPDIR" "$1"; }

@test "tl-finetune -> tl-eval: held-out accuracy of separable blobs is high" {
    run --separate-stderr tl eval -m "$(F head.safetensors)" "$(F test.tsv)"
    assert_success
    assert_line --regexp '^accuracy +(1\.0000|0\.9[0-9]{3}) \([0-9]+ of 60\)$'
    assert_line --regexp '^class0 '
    assert_line --regexp '^true \\ pred +class0 +class1 +class2$'
}

@test "tl-eval --json is one valid JSON object with consistent fields" {
    run --separate-stderr tl eval -m "$(F head.safetensors)" --json "$(F test.tsv)"
    assert_success
    assert_equal "$(printf '%s\n' "$output" | wc -l)" 1
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/e.json"
    local acc n correct
    acc=$(json_get "$BATS_TEST_TMPDIR/e.json" "d['accuracy']")
    n=$(json_get "$BATS_TEST_TMPDIR/e.json" "d['n']")
    correct=$(json_get "$BATS_TEST_TMPDIR/e.json" "d['correct']")
    assert_equal "$n" 60
    float_ge "$acc" 0.9 || fail "accuracy $acc"
    awk -v a="$acc" -v c="$correct" 'BEGIN { exit !(a == c / 60) }' || fail "accuracy $acc != $correct/60"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/e.json" "len(d['confusion'])")" 3
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/e.json" "d['classes'][2]")" class2
}

@test "features without signal give chance-level held-out accuracy (the score can be low)" {
    gen_blobs "$BATS_TEST_TMPDIR/tr.tsv" 3 90 8 3 0
    gen_blobs "$BATS_TEST_TMPDIR/te.tsv" 4 300 8 3 0
    tl finetune -q "$BATS_TEST_TMPDIR/tr.tsv" -o "$BATS_TEST_TMPDIR/h.st"
    run --separate-stderr tl eval -m "$BATS_TEST_TMPDIR/h.st" --json "$BATS_TEST_TMPDIR/te.tsv"
    assert_success
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/e.json"
    local acc
    acc=$(json_get "$BATS_TEST_TMPDIR/e.json" "d['accuracy']")
    float_ge 0.6 "$acc" || fail "accuracy $acc on pure noise"
}

@test "tl-predict --features: header, k classes per row in decreasing probability" {
    run --separate-stderr tl predict -m "$(F head.safetensors)" -k 2 "$(F test.tsv)"
    assert_success
    assert_line --index 0 "$(printf '#path\tclass1\tp1\tclass2\tp2')"
    assert_equal "${#lines[@]}" 61
    printf '%s\n' "$output" | awk -F'\t' 'NR > 1 {
        if (NF != 5 || $3 < $5 || $3 > 1 || $5 < 0 || $3 + $5 > 1.000001) { print "bad row " NR ": " $0; exit 1 } }'
    # The top-1 column agrees with tl-eval's count of correct answers.
    local agree correct
    agree=$(paste <(grep -v '^#' "$(F test.tsv)" | cut -f2) <(printf '%s\n' "$output" | tail -n +2 | cut -f2) |
        awk -F'\t' '$1 == $2' | wc -l)
    correct=$(tl eval -q -m "$(F head.safetensors)" --json "$(F test.tsv)" | grep -o '"correct":[0-9]*' | cut -d: -f2)
    assert_equal "$agree" "$correct"
}

@test "tl-predict: -k above the class count is clamped; --no-header drops the header" {
    run --separate-stderr tl predict -m "$(F head.safetensors)" -k 50 --no-header "$(F test.tsv)"
    assert_success
    assert_equal "${#lines[@]}" 60
    [[ "${lines[0]}" == s2/img000.jpg$'\t'* ]] || fail "${lines[0]}"
    printf '%s\n' "$output" | awk -F'\t' 'NF != 7 { print "row " NR " has " NF " fields"; exit 1 }
        { s = $3 + $5 + $7; if (s < 0.9999 || s > 1.0001) { print "row " NR " sums to " s; exit 1 } }'
}

@test "features from standard input: tl-finetune -, tl-eval -, tl-predict --features -" {
    tl finetune -q - -o "$BATS_TEST_TMPDIR/h.st" <"$(F train.tsv)"
    run --separate-stderr tl eval -m "$BATS_TEST_TMPDIR/h.st" - <"$(F test.tsv)"
    assert_success
    assert_line --regexp '^input +- \(60 scored\)$'
    run --separate-stderr tl predict -m "$BATS_TEST_TMPDIR/h.st" --features --no-header -k 1 - <"$(F test.tsv)"
    assert_success
    assert_equal "${#lines[@]}" 60
    # Same training data through a pipe or a file: the same head.
    diff <(tl predict -m "$BATS_TEST_TMPDIR/h.st" "$(F test.tsv)") <(tl predict -m "$(F head.safetensors)" "$(F test.tsv)")
}

@test "standard input: an NPZ archive is told apart from a path list; a read error is not an empty input" {
    local d=$BATS_TEST_TMPDIR
    sed '1a #classes\t["class0","class1","class2"]' "$(F test.tsv)" >"$d/named.tsv"
    tl extract -q --merge -f npz -o "$d/test.npz" "$d/named.tsv"
    run --separate-stderr tl eval -m "$(F head.safetensors)" - <"$d/test.npz"
    assert_success
    assert_line --regexp '^input +- \(60 scored\)$'
    run --separate-stderr tl predict -m "$(F head.safetensors)" --no-header -k 1 - <"$d/test.npz"
    assert_success
    assert_equal "${#lines[@]}" 60
    # a directory as standard input: the read fails, and the tools say so
    for t in eval predict; do
        run --separate-stderr tl $t -m "$(F head.safetensors)" - </
        assert_failure 1
        assert_equal "$stderr" "tl-$t: standard input: Is a directory"
    done
}

@test "tl-extract --merge refuses labels it could not keep (names without a #classes list)" {
    run --separate-stderr tl extract --merge -f npz -o "$BATS_TEST_TMPDIR/x.npz" "$(F test.tsv)"
    assert_failure 1
    [[ $stderr == *"test.tsv: 's2/img000.jpg' is labelled 'class0' but the file has no class list (#classes)"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/x.npz" ]
}

@test "training is deterministic and independent of the thread count" {
    tl finetune -q -j 1 "$(F train.tsv)" -o "$BATS_TEST_TMPDIR/a.st"
    tl finetune -q -j 2 "$(F train.tsv)" -o "$BATS_TEST_TMPDIR/b.st"
    tl finetune -q -j 2 --head svm "$(F train.tsv)" -o "$BATS_TEST_TMPDIR/c.st"
    tl finetune -q -j 1 --head svm "$(F train.tsv)" -o "$BATS_TEST_TMPDIR/d.st"
    diff <(tl predict -m "$BATS_TEST_TMPDIR/a.st" "$(F test.tsv)") <(tl predict -m "$BATS_TEST_TMPDIR/b.st" "$(F test.tsv)")
    diff <(tl predict -m "$BATS_TEST_TMPDIR/c.st" "$(F test.tsv)") <(tl predict -m "$BATS_TEST_TMPDIR/d.st" "$(F test.tsv)")
}

@test "an SVM head: decision values ('score' columns), high accuracy, tl-info says so" {
    tl finetune -q --head svm "$(F train.tsv)" -o "$BATS_TEST_TMPDIR/svm.st"
    run --separate-stderr tl predict -m "$BATS_TEST_TMPDIR/svm.st" -k 1 "$(F test.tsv)"
    assert_success
    assert_line --index 0 "$(printf '#path\tclass1\tscore1')"
    run --separate-stderr tl eval -m "$BATS_TEST_TMPDIR/svm.st" "$(F test.tsv)"
    assert_line --regexp '^accuracy +(1\.0000|0\.9[0-9]{3})'
    run --separate-stderr tl info "$BATS_TEST_TMPDIR/svm.st"
    assert_success
    assert_line --regexp '^arch +linear head \(linear SVM\) on 8 feature values$'
}

@test "tl-info on a head: kind, dimension, classes and training metadata" {
    run --separate-stderr tl info -M "$(F head.safetensors)"
    assert_success
    assert_line --regexp '^arch +linear head \(logistic regression\) on 8 feature values$'
    assert_line --regexp '^classes +3: "?class0"?, "?class1"?, "?class2"?$'
    assert_line --regexp '^ +tl.train_n +60$'
    assert_line --regexp '^ +tl.C +1$'
}

@test "tl-finetune --l2 sets C = 1/(lambda*n); --val reports and records validation accuracy" {
    run --separate-stderr tl finetune --l2 0.01 --val "$(F test.tsv)" "$(F train.tsv)" -o "$BATS_TEST_TMPDIR/h.st"
    assert_success
    [[ "$stderr" == *"validation accuracy "* ]] || fail "$stderr"
    run --separate-stderr tl info -M "$BATS_TEST_TMPDIR/h.st"
    assert_line --regexp '^ +tl.C +1.6666666'
    assert_line --regexp '^ +tl.val_accuracy +(1\.0|0\.9)'
}

@test "stronger regularisation changes the head (--C is used)" {
    tl finetune -q --C 1e-4 "$(F train.tsv)" -o "$BATS_TEST_TMPDIR/weak.st"
    run --separate-stderr tl predict -m "$BATS_TEST_TMPDIR/weak.st" -k 1 --no-header "$(F test.tsv)"
    assert_success
    # Almost no weight: probabilities near 1/3 instead of near 1.
    printf '%s\n' "$output" | awk -F'\t' '$3 > 0.5 { print "row " NR ": p = " $3; exit 1 }'
}

@test "the three feature formats (TSV, TLF, NPY) are read alike" {
    local d=$BATS_TEST_TMPDIR
    featconv tlf "$(F train.tsv)" "$d/train.tlf"
    featconv tlf "$(F test.tsv)" "$d/test.tlf"
    featconv npy "$(F test.tsv)" "$d/test.npy"
    grep -v '^#' "$(F train.tsv)" >"$d/plain.tsv" # no header lines at all
    tl finetune -q "$d/train.tlf" -o "$d/tlf.st"
    tl finetune -q "$d/plain.tsv" -o "$d/plain.st"
    # Same vectors, same heads.
    diff <(tl predict -m "$d/tlf.st" "$(F test.tsv)") <(tl predict -m "$(F head.safetensors)" "$(F test.tsv)")
    diff <(tl predict -m "$d/plain.st" "$(F test.tsv)") <(tl predict -m "$(F head.safetensors)" "$(F test.tsv)")
    diff <(tl eval -m "$(F head.safetensors)" --json "$d/test.tlf" | sed 's/"input":.*//') \
        <(tl eval -m "$(F head.safetensors)" --json "$(F test.tsv)" | sed 's/"input":.*//')
    # NPY holds vectors only: rows are named row1..rowN.
    run --separate-stderr tl predict -m "$(F head.safetensors)" -k 1 --no-header "$d/test.npy"
    assert_success
    assert_equal "${#lines[@]}" 60
    diff <(printf '%s\n' "$output" | cut -f2-) <(tl predict -m "$(F head.safetensors)" -k 1 --no-header "$(F test.tsv)" | cut -f2-)
    [[ "${lines[59]}" == row60$'\t'* ]] || fail "${lines[59]}"
}

@test "tl-eval accepts a plain TSV feature file (no #tl-features line), like tl-finetune" {
    grep -v '^#' "$(F test.tsv)" >"$BATS_TEST_TMPDIR/plain.tsv"
    run --separate-stderr tl eval -m "$(F head.safetensors)" "$BATS_TEST_TMPDIR/plain.tsv"
    [ "$status" -eq 0 ] || fail "exit $status: $stderr"
    assert_line --regexp '\(60 scored\)$'
}

@test "tl-finetune refuses unlabelled features (NPY, or TSV with empty labels)" {
    featconv npy "$(F train.tsv)" "$BATS_TEST_TMPDIR/train.npy"
    run --separate-stderr tl finetune "$BATS_TEST_TMPDIR/train.npy" -o "$BATS_TEST_TMPDIR/h.st"
    assert_failure 1
    [[ "$stderr" == "tl-finetune: "*"has no label"* ]] || fail "$stderr"
    awk -F'\t' -v OFS='\t' '/^#/ { print; next } { $2 = ""; print }' "$(F train.tsv)" >"$BATS_TEST_TMPDIR/nolab.tsv"
    run --separate-stderr tl finetune "$BATS_TEST_TMPDIR/nolab.tsv" -o "$BATS_TEST_TMPDIR/h.st"
    assert_failure 1
    [[ "$stderr" == "tl-finetune: "*"no label"* ]] || fail "$stderr"
    [ ! -e "$BATS_TEST_TMPDIR/h.st" ]
    # tl-eval has nothing to score on them either.
    run --separate-stderr tl eval -m "$(F head.safetensors)" "$BATS_TEST_TMPDIR/nolab.tsv"
    assert_failure 1
    [[ "$stderr" == "tl-eval: "*"no labelled inputs"* ]] || fail "$stderr"
}

@test "tl-finetune refuses single-class data" {
    awk -F'\t' '/^#/ || $2 == "class1"' "$(F train.tsv)" >"$BATS_TEST_TMPDIR/one.tsv"
    run --separate-stderr tl finetune "$BATS_TEST_TMPDIR/one.tsv" -o "$BATS_TEST_TMPDIR/h.st"
    assert_failure 1
    [[ "$stderr" == "tl-finetune: "*"1 class"*"at least 2"* ]] || fail "$stderr"
    [ ! -e "$BATS_TEST_TMPDIR/h.st" ]
}

@test "empty, garbage and missing feature files fail with exit 1 and a one-line message" {
    local d=$BATS_TEST_TMPDIR
    : >"$d/empty.tsv"
    noise_bytes 3000 garbage.bin >"$d/garbage.bin"
    printf '#tl-features\t1\n#dim\t8\n' >"$d/header-only.tsv"
    for f in empty.tsv garbage.bin missing.tsv; do
        run --separate-stderr tl finetune "$d/$f" -o "$d/h.st"
        assert_failure 1
        [[ "$stderr" == "tl-finetune: $d/$f"* ]] || fail "$f: '$stderr'"
        assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 1
        [ ! -e "$d/h.st" ]
    done
    run --separate-stderr tl finetune "$d/header-only.tsv" -o "$d/h.st"
    assert_failure 1
    [[ "$stderr" == *"no feature vectors"* ]] || fail "$stderr"
    run --separate-stderr tl eval -m "$(F head.safetensors)" - </dev/null
    assert_failure 1
    [[ "$stderr" == "tl-eval: "*"empty"* ]] || fail "$stderr"
    run --separate-stderr tl predict -m "$(F head.safetensors)" --features - </dev/null
    assert_failure 1
    # A feature file is not a model.
    run --separate-stderr tl info "$(F train.tsv)"
    assert_failure 1
    run --separate-stderr tl eval -m "$(F train.tsv)" "$(F test.tsv)"
    assert_failure 1
}

@test "malformed TSV rows are reported with their record number" {
    local d=$BATS_TEST_TMPDIR
    { head -n 5 "$(F train.tsv)"; printf 'x.jpg\tclass0\t1\t2\tabc\t4\t5\t6\t7\t8\n'; } >"$d/nan.tsv"
    run --separate-stderr tl finetune "$d/nan.tsv" -o "$d/h.st"
    assert_failure 1
    [[ "$stderr" == *"record 5: column 5 is not a number"* ]] || fail "$stderr"
    { head -n 5 "$(F train.tsv)"; printf 'x.jpg\tclass0\t1\t2\t3\n'; } >"$d/short.tsv"
    run --separate-stderr tl finetune "$d/short.tsv" -o "$d/h.st"
    assert_failure 1
    [[ "$stderr" == *"record 5: 3 features, expected 8"* ]] || fail "$stderr"
    { head -n 5 "$(F train.tsv)"; printf 'x.jpg\tclass0\t1\t2\t3\t4\t5\t6\t7\t8\t9\n'; } >"$d/long.tsv"
    run --separate-stderr tl eval -m "$(F head.safetensors)" "$d/long.tsv"
    assert_failure 1
    [[ "$stderr" == *"record 5: more than 8 features"* ]] || fail "$stderr"
    [ ! -e "$d/h.st" ]
}

@test "a head refuses features of another dimension and unknown labels" {
    gen_blobs "$BATS_TEST_TMPDIR/d5.tsv" 5 30 5 3 3
    run --separate-stderr tl eval -m "$(F head.safetensors)" "$BATS_TEST_TMPDIR/d5.tsv"
    assert_failure 1
    [[ "$stderr" == *"5 values per vector, the head takes 8"* ]] || fail "$stderr"
    run --separate-stderr tl predict -m "$(F head.safetensors)" "$BATS_TEST_TMPDIR/d5.tsv"
    assert_failure 1
    run --separate-stderr tl finetune --val "$BATS_TEST_TMPDIR/d5.tsv" "$(F train.tsv)" -o "$BATS_TEST_TMPDIR/h.st"
    assert_failure 1
    [[ "$stderr" == *"5 values per vector, training data has 8"* ]] || fail "$stderr"
    [ ! -e "$BATS_TEST_TMPDIR/h.st" ]
    sed 's/\tclass2\t/\tclass9\t/' "$(F test.tsv)" >"$BATS_TEST_TMPDIR/c9.tsv"
    run --separate-stderr tl eval -m "$(F head.safetensors)" "$BATS_TEST_TMPDIR/c9.tsv"
    assert_failure 1
    [[ "$stderr" == *"label 'class9' is not one of the model's 3 classes"* ]] || fail "$stderr"
}

@test "TLF: a stream cut short is reported as truncated" {
    local d=$BATS_TEST_TMPDIR size
    featconv tlf "$(F train.tsv)" "$d/full.tlf"
    size=$(stat -c %s "$d/full.tlf")
    head -c $((size / 2)) "$d/full.tlf" >"$d/half.tlf"
    head -c $((size - 13)) "$d/full.tlf" >"$d/noend.tlf" # every record, no end record
    head -c 20 "$d/full.tlf" >"$d/head.tlf"
    for f in half noend head; do
        run --separate-stderr tl finetune "$d/$f.tlf" -o "$d/h.st"
        assert_failure 1
        [[ "$stderr" == "tl-finetune: $d/$f.tlf: "*"truncated"* ]] || fail "$f: '$stderr'"
        run --separate-stderr tl eval -m "$(F head.safetensors)" "$d/$f.tlf"
        assert_failure 1
        [[ "$stderr" == "tl-eval: "*"truncated"* ]] || fail "$f: '$stderr'"
    done
    # Through a pipe as well.
    run --separate-stderr tl eval -m "$(F head.safetensors)" - <"$d/half.tlf"
    assert_failure 1
    [[ "$stderr" == *"truncated"* ]] || fail "$stderr"
    [ ! -e "$d/h.st" ]
    # ...while the whole stream is fine.
    tl eval -q -m "$(F head.safetensors)" "$d/full.tlf" >/dev/null
}

@test "TLF: one flipped byte in a record, the header or the end record is a CRC mismatch" {
    local d=$BATS_TEST_TMPDIR size
    featconv tlf "$(F train.tsv)" "$d/ok.tlf"
    size=$(stat -c %s "$d/ok.tlf")
    cp "$d/ok.tlf" "$d/rec.tlf" && flip_byte "$d/rec.tlf" $((size / 2))
    cp "$d/ok.tlf" "$d/hdr.tlf" && flip_byte "$d/hdr.tlf" 20
    cp "$d/ok.tlf" "$d/end.tlf" && flip_byte "$d/end.tlf" $((size - 8))
    for f in rec hdr end; do
        run --separate-stderr tl finetune "$d/$f.tlf" -o "$d/h.st"
        assert_failure 1
        [[ "$stderr" == "tl-finetune: $d/$f.tlf: "*"CRC mismatch"* ]] || fail "$f: '$stderr'"
        run --separate-stderr tl predict -m "$(F head.safetensors)" "$d/$f.tlf"
        assert_failure 1
        [[ "$stderr" == *"CRC mismatch"* ]] || fail "$f: '$stderr'"
    done
    [ ! -e "$d/h.st" ]
}

@test "output into a folder that does not exist: exit 1, nothing left behind" {
    run --separate-stderr tl finetune -q "$(F train.tsv)" -o "$BATS_TEST_TMPDIR/no/such/dir/h.st"
    assert_failure 1
    [[ "$stderr" == "tl-finetune: $BATS_TEST_TMPDIR/no/such/dir/h.st: "* ]] || fail "$stderr"
    [ ! -e "$BATS_TEST_TMPDIR/no" ]
}

@test "a failed run leaves an existing output file untouched and no temporary files" {
    local d=$BATS_TEST_TMPDIR/out
    mkdir "$d"
    echo precious >"$d/h.st"
    awk -F'\t' '/^#/ || $2 == "class1"' "$(F train.tsv)" >"$BATS_TEST_TMPDIR/one.tsv"
    run --separate-stderr tl finetune "$BATS_TEST_TMPDIR/one.tsv" -o "$d/h.st"
    assert_failure 1
    assert_equal "$(cat "$d/h.st")" precious
    no_files_like "$d" '*.tmp*'
    # A successful run replaces it, again without leftovers.
    tl finetune -q "$(F train.tsv)" -o "$d/h.st"
    tl info "$d/h.st" >/dev/null
    no_files_like "$d" '*.tmp*'
}

@test "results on a full disk (/dev/full as stdout): exit 1 with a clear message" {
    [ -w /dev/full ] || skip "/dev/full not available"
    run --separate-stderr bash -c '"$TL_BIN/tl-eval" -m "$1" "$2" >/dev/full' _ "$(F head.safetensors)" "$(F test.tsv)"
    assert_failure 1
    [[ "$stderr" == "tl-eval: standard output: write failed"* ]] || fail "$stderr"
    run --separate-stderr bash -c '"$TL_BIN/tl-eval" --json -m "$1" "$2" >/dev/full' _ "$(F head.safetensors)" "$(F test.tsv)"
    assert_failure 1
    run --separate-stderr bash -c '"$TL_BIN/tl-predict" -m "$1" "$2" >/dev/full' _ "$(F head.safetensors)" "$(F test.tsv)"
    assert_failure 1
    [[ "$stderr" == "tl-predict: "*"write failed"* ]] || fail "$stderr"
}

@test "tl-info on a full disk (/dev/full as stdout): exit 1" {
    [ -w /dev/full ] || skip "/dev/full not available"
    run --separate-stderr bash -c '"$TL_BIN/tl-info" -M "$1" >/dev/full' _ "$(F head.safetensors)"
    assert_failure 1
    [[ "$stderr" == "tl-info: "*"write failed"* ]] || fail "stderr: '$stderr'"
}

@test "-o onto a full device (a copy of /dev/full): exit 1, and the device is not replaced" {
    local dev=$BATS_TEST_TMPDIR/full
    mknod "$dev" c 1 7 2>/dev/null || skip "cannot mknod here (needs root)"
    run --separate-stderr tl finetune "$(F train.tsv)" -o "$dev"
    [ -c "$dev" ] || fail "-o replaced the character device with a regular file (as root, -o /dev/null would do the same)"
    assert_failure 1
    [[ "${stderr##*$'\n'}" == "tl-finetune: $dev: write failed"* ]] || fail "$stderr"
}
