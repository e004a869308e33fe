#!/usr/bin/env bats
# tl-eval's report (top-k, F1, calibration, plots) and the predictions TSV:
# tl-predict --format eval writes it, tl-eval scores it exactly as it
# scores the model, and every kind of bad file is refused on one line.
# Self-contained (synthetic features) except the last test (../shared).

load helpers

setup_file() {
    local d=$BATS_FILE_TMPDIR
    # overlapping blobs, so that there are errors and confidences below 1
    gen_blobs "$d/train.tsv" 1 90 8 3 1.5
    gen_blobs "$d/test.tsv" 2 150 8 3 1.5
    tl finetune -q "$d/train.tsv" -o "$d/head.st"
    tl finetune -q --head svm "$d/train.tsv" -o "$d/svm.st"
    tl predict -q -m "$d/head.st" --features --format eval "$d/test.tsv" >"$d/p.tsv"
}

F() { printf '%s/%s' "$BATS_FILE_TMPDIR" "$1"; }

# bad_file NAME CONTENT: a predictions file in the test's temporary folder.
bad_file() { printf "$2" >"$BATS_TEST_TMPDIR/$1"; }

@test "tl-predict --format eval: a header naming the classes, then path, truth, prediction, all probabilities" {
    local p; p=$(F p.tsv)
    assert_equal "$(head -1 "$p")" "$(printf '#path\ttrue\tpred\tclass0\tclass1\tclass2')"
    assert_equal "$(wc -l <"$p")" 151
    tail -n +2 "$p" | awk -F'\t' 'NF != 6 { print "row " NR ": " NF " fields"; exit 1 }
        { s = $4 + $5 + $6; if (s < 0.99999 || s > 1.00001) { print "row " NR " sums to " s; exit 1 } }
        { m = 4; for (i = 5; i <= 6; i++) if ($i > $m) m = i; if ("class" (m - 4) != $3) { print "row " NR ": pred is not the argmax"; exit 1 } }'
    # the truth column holds the data's labels
    diff <(grep -v '^#' "$(F test.tsv)" | cut -f1,2) <(tail -n +2 "$p" | cut -f1,2)
}

@test "scoring the predictions file equals scoring the model: accuracy, confusion, top-k, calibration" {
    tl eval -q -m "$(F head.st)" --json --top-k 2 "$(F test.tsv)" >"$BATS_TEST_TMPDIR/model.json"
    tl eval -q --json --top-k 2 "$(F p.tsv)" >"$BATS_TEST_TMPDIR/preds.json"
    local f
    for f in correct accuracy macro_f1 micro_f1 confusion per_class top_k_accuracy top5 ece mce nll brier bins; do
        assert_equal "$(jq -c ".$f" "$BATS_TEST_TMPDIR/preds.json")" "$(jq -c ".$f" "$BATS_TEST_TMPDIR/model.json")"
    done
    # and the text reports agree below their first lines (model / input)
    diff <(tl eval -q -m "$(F head.st)" "$(F test.tsv)" | tail -n +3) <(tl eval -q "$(F p.tsv)" | tail -n +2)
    # the errors are real: the comparison is not between two perfect scores
    float_ge 0.97 "$(jq .accuracy "$BATS_TEST_TMPDIR/model.json")" || fail "accuracy too high to test anything"
}

@test "--json holds top-k, F1, calibration and bins, and they are consistent" {
    run --separate-stderr tl eval --json --top-k 1 --bins 10 "$(F p.tsv)"
    assert_success
    local j=$BATS_TEST_TMPDIR/e.json
    printf '%s\n' "$output" >"$j"
    assert_equal "$(wc -l <"$j")" 1
    jq -e '.top_k == 1 and .top_k_accuracy == .accuracy and .micro_f1 == .accuracy' "$j"
    jq -e '.nbins == 10 and (.bins | length) == 10 and ([.bins[].count] | add) == .n' "$j"
    jq -e '.ece >= 0 and .ece <= 1 and .mce >= .ece and .nll > 0 and .brier > 0 and .brier < 2' "$j"
    jq -e '.scores == "probabilities" and .model == null and (.macro_f1 | type) == "number"' "$j"
    jq -e '[.bins[] | select(.count > 0) | .confidence >= .lower and .confidence <= .upper and .bin_accuracy == .correct_count / .count] | all' "$j"
    # the one "accuracy" and "correct" keys are the overall ones (scripts grep for them)
    assert_equal "$(grep -o '"accuracy":' "$j" | wc -l)" 1
    assert_equal "$(grep -o '"correct":' "$j" | wc -l)" 1
    jq -e '(.per_class | length) == 3 and (.confusion | length) == 3 and .n == 150' "$j"
    # ECE is the count-weighted mean gap of the bins
    jq -e '([.bins[] | select(.count > 0) | .count * ((.bin_accuracy - .confidence) | fabs)] | add) / .n - .ece | fabs < 1e-12' "$j"
}

@test "text report: top-k line, micro/macro/weighted averages, calibration table, confusion" {
    run --separate-stderr tl eval --top-k 2 "$(F p.tsv)"
    assert_success
    assert_line --regexp '^input +.*p\.tsv \(predictions, 150 scored\)$'
    assert_line --regexp '^top-2 +[01]\.[0-9]{4}$'
    assert_line --regexp '^micro avg +'
    assert_line --regexp '^macro avg +'
    assert_line --regexp '^calibration \(15 bins\)  ECE 0\.[0-9]{4}  MCE [01]\.[0-9]{4}  NLL [0-9.]+  Brier [0-9.]+$'
    assert_line --regexp '^  0\.933-1\.000 +[0-9]+ '
    assert_line --regexp '^true \\ pred +class0 +class1 +class2$'
}

@test "an SVM head: decision values, calibration not applicable, --reliability refused" {
    run --separate-stderr tl eval -m "$(F svm.st)" "$(F test.tsv)"
    assert_success
    assert_line --regexp '^calibration  not applicable: the scores are decision values'
    tl predict -q -m "$(F svm.st)" --features --format eval "$(F test.tsv)" >"$BATS_TEST_TMPDIR/s.tsv"
    assert_equal "$(head -1 "$BATS_TEST_TMPDIR/s.tsv" | cut -f3)" "pred:decision"
    run --separate-stderr tl eval --json "$BATS_TEST_TMPDIR/s.tsv"
    assert_success
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/s.json"
    jq -e '.ece == null and .nll == null and .bins == [] and .scores == "decision"' "$BATS_TEST_TMPDIR/s.json"
    assert_equal "$(jq -c .confusion "$BATS_TEST_TMPDIR/s.json")" \
        "$(tl eval -q -m "$(F svm.st)" --json "$(F test.tsv)" | jq -c .confusion)"
    run --separate-stderr tl eval --reliability "$BATS_TEST_TMPDIR/r.svg" "$BATS_TEST_TMPDIR/s.tsv"
    assert_failure 1
    [[ "$stderr" == "tl-eval: --reliability: the scores are decision values"* ]] || fail "$stderr"
    [ ! -e "$BATS_TEST_TMPDIR/r.svg" ]
}

@test "predictions from standard input (-P -), without a header (indices or --classes), with CRLF" {
    local want
    want=$(tl eval -q --json "$(F p.tsv)" | jq -c '[.correct, .confusion, .ece]')
    assert_equal "$(tl eval -q --json -P - <"$(F p.tsv)" | jq -c '[.correct, .confusion, .ece]')" "$want"
    # the same rows without the header, the classes named on the command line
    tail -n +2 "$(F p.tsv)" >"$BATS_TEST_TMPDIR/nohead.tsv"
    assert_equal "$(tl eval -q --json -P --classes class0,class1,class2 "$BATS_TEST_TMPDIR/nohead.tsv" |
        jq -c '[.correct, .confusion, .ece]')" "$want"
    # ... or as class indices
    sed 's/\tclass\([0-9]\)/\t\1/g' "$BATS_TEST_TMPDIR/nohead.tsv" >"$BATS_TEST_TMPDIR/idx.tsv"
    assert_equal "$(tl eval -q --json -P "$BATS_TEST_TMPDIR/idx.tsv" | jq -c '[.correct, .confusion, .ece, .classes]')" \
        "$(printf '%s' "$want" | jq -c '. + [["0","1","2"]]')"
    # names without a header and without --classes: refused with advice
    run --separate-stderr tl eval -P "$BATS_TEST_TMPDIR/nohead.tsv"
    assert_failure 1
    [[ "$stderr" == *"line 1: no '#path<TAB>true<TAB>pred<TAB>CLASS...' header"* ]] || fail "$stderr"
    # CRLF line endings
    sed 's/$/\r/' "$(F p.tsv)" >"$BATS_TEST_TMPDIR/crlf.tsv"
    assert_equal "$(tl eval -q --json "$BATS_TEST_TMPDIR/crlf.tsv" | jq -c '[.correct, .confusion, .ece]')" "$want"
}

@test "unlabelled rows are counted but not scored; nothing labelled is an error" {
    { head -1 "$(F p.tsv)"; tail -n +2 "$(F p.tsv)" | awk -F'\t' -v OFS='\t' 'NR <= 10 { $2 = "-" } { print }'; } \
        >"$BATS_TEST_TMPDIR/u.tsv"
    run --separate-stderr tl eval --json "$BATS_TEST_TMPDIR/u.tsv"
    assert_success
    [[ "$stderr" == "tl-eval: 10 inputs without a label not scored" ]] || fail "$stderr"
    assert_equal "$(printf '%s' "$output" | jq '[.n, .unlabelled] | tostring')" '"[140,10]"'
    printf '#path\ttrue\tpred\ta\tb\nx\t-\ta\t0.6\t0.4\n' >"$BATS_TEST_TMPDIR/none.tsv"
    run --separate-stderr tl eval "$BATS_TEST_TMPDIR/none.tsv"
    assert_failure 1
    [[ "$stderr" == *"no labelled inputs to score" ]] || fail "$stderr"
}

@test "bad predictions files: exit 1, one line naming the file and the line" {
    local t=$BATS_TEST_TMPDIR
    while IFS='|' read -r name content want; do
        bad_file "$name" "$content"
        run --separate-stderr tl eval "$t/$name"
        assert_failure 1
        assert_equal "$output" ""
        [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ] || fail "$name: more than one line: $stderr"
        [[ "$stderr" == "tl-eval: $t/$name: $want"* ]] || fail "$name: '$stderr', want '$want'"
    done <<'EOF'
columns.tsv|#path\ttrue\tpred\ta\tb\nx\ta\ta\t0.5\t0.5\ny\ta\ta\t1\n|line 3: 4 columns, expected 5
number.tsv|#path\ttrue\tpred\ta\tb\nx\ta\ta\t0.5\thalf\n|line 2: column 5 ('half') is not a finite number
negative.tsv|#path\ttrue\tpred\ta\tb\nx\ta\ta\t1.1\t-0.1\n|line 2: probability 1.1 of class 'a' is outside [0, 1]
sum.tsv|#path\ttrue\tpred\ta\tb\nx\ta\ta\t0.3\t0.2\n|line 2: probabilities sum to 0.5, not 1
logits.tsv|#path\ttrue\tpred\ta\tb\n\nx\tb\ta\t0.2\t0.8\nx\tb\ta\t2.5\t0.3\n|line 4: probability 2.5 of class 'a' is outside [0, 1]
class.tsv|#path\ttrue\tpred\ta\tb\nx\tc\ta\t0.5\t0.5\n|line 2: true class 'c' is not one of the 2 classes of the header
pred.tsv|#path\ttrue\tpred\ta\tb\nx\ta\tB\t0.5\t0.5\n|line 2: predicted class 'B' is not one of the 2 classes
dup.tsv|#path\ttrue\tpred\ta\ta\n|line 1: class 'a' appears twice in the header
noclass.tsv|#path\ttrue\tpred\n|line 1: the header names no classes
EOF
    # an empty file, forced with -P
    : >"$t/empty.tsv"
    run --separate-stderr tl eval -P "$t/empty.tsv"
    assert_failure 1
    assert_equal "$stderr" "tl-eval: $t/empty.tsv: empty file (no header and no predictions)"
    run --separate-stderr tl eval "$t/missing.tsv"
    assert_failure 2
}

@test "usage errors: exit 2 with one line" {
    local p; p=$(F p.tsv)
    for args in "-m $(F head.st) $p" "--bins 0 $p" "--bins 1001 $p" "--top-k 0 $p" "--top-k x $p" \
        "-m $(F head.st) --classes a,b $(F test.tsv)" "$(F test.tsv)" "-m $(F head.st) -P -"; do
        # shellcheck disable=SC2086
        run --separate-stderr tl eval $args
        assert_failure 2
        assert_equal "$output" ""
        [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ] && [[ "$stderr" == "tl-eval: "* ]] || fail "$args: $stderr"
    done
    run --separate-stderr tl eval -m "$(F head.st)" "$p"
    [[ "$stderr" == "tl-eval: $p is a predictions file: it is scored without -m"* ]] || fail "$stderr"
    run --separate-stderr tl predict -m "$(F head.st)" --format csv "$(F test.tsv)"
    assert_failure 2
    [[ "$stderr" == "tl-predict: --format: 'csv' is not top or eval"* ]] || fail "$stderr"
}

@test "--plot: SVG (rendered by rsvg-convert) and PNG; --reliability apart; a bad name fails cleanly" {
    local t=$BATS_TEST_TMPDIR
    run --separate-stderr tl eval --plot "$t/e.svg" --json "$(F p.tsv)"
    assert_success
    printf '%s' "$output" | jq -e .ece >/dev/null
    grep -q '<svg' "$t/e.svg" && grep -q '</svg>' "$t/e.svg"
    grep -q 'reliability' "$t/e.svg" && grep -q 'class2' "$t/e.svg" || fail "heat map or reliability missing"
    run --separate-stderr tl eval --plot "$t/e.png" --reliability "$t/r.PNG" "$(F p.tsv)"
    assert_success
    local f
    for f in e.png r.PNG; do
        [ "$(head -c 8 "$t/$f" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "$f is not a PNG"
    done
    if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
        # the heat map alone (the reliability diagram has its own figure) is narrower than both
        run /usr/bin/python3 -c 'from PIL import Image; import sys; a = Image.open(sys.argv[1]); a.load(); print(a.size[0] < 800)' "$t/e.png"
        assert_output True
    fi
    run --separate-stderr tl eval --plot "$t/e.gif" "$(F p.tsv)"
    assert_failure 1
    [[ "$stderr" == "tl-eval: --plot $t/e.gif: "* ]] || fail "$stderr"
    assert_equal "$output" ""
    no_files_like "$t" 'e.gif*'
    command -v rsvg-convert >/dev/null || skip "rsvg-convert not found (Debian's librsvg2-bin): SVG not rendered"
    rsvg-convert -o "$t/e_svg.png" "$t/e.svg"
    [ -s "$t/e_svg.png" ]
}

@test "[shared] an ImageNet network: tl-predict --format eval | tl-eval equals tl-eval -m, top-5 and ECE included" {
    need_shared
    local t=$BATS_TEST_TMPDIR m=$BATS_FILE_TMPDIR/mv1.st val=$TL_SHARED/datasets/imagenet-val-1300
    [ -f "$val/labels.tsv" ] || skip "imagenet-val-1300 not found"
    convert_model mobilenet_v1_0.25_128_quant "$m"
    head -n 24 "$val/labels.tsv" | sed "s|^|$val/|" >"$t/val.tsv"
    tl predict -q -m "$m" --format eval --label-offset 1 "$t/val.tsv" >"$t/p.tsv"
    assert_equal "$(wc -l <"$t/p.tsv")" 25
    tl eval -q -m "$m" --label-offset 1 --json "$t/val.tsv" >"$t/m.json"
    tl eval -q --json - -P <"$t/p.tsv" >"$t/p.json"
    local f
    for f in correct confusion top5 ece nll brier; do
        assert_equal "$(jq -c ".$f" "$t/p.json")" "$(jq -c ".$f" "$t/m.json")"
    done
    jq -e '.n == 24 and (.classes | length) == 1001 and .top5 >= .accuracy' "$t/p.json"
    # 1001 classes: the heat map keeps those that occur
    run --separate-stderr tl eval --plot "$t/p.svg" "$t/p.tsv"
    assert_success
    grep -q 'classes that occur' "$t/p.svg" || fail "heat map not reduced to the classes that occur"
}
