#!/usr/bin/env bats
# One feel across tools (issue 14): '-' read the same way everywhere, one
# rule for every TSV writer, precise answers to common mistakes, the first
# impression (plurals, widths, what was written). Self-contained: tiny
# generated images and a scratch small_cnn.

load helpers

setup_file() {
    local d=$BATS_FILE_TMPDIR
    gen_ppms "$d/train" 1 6
    tl finetune -q --scratch --arch small_cnn --input-size 32 "$d/train" --val-split 0 --epochs 1 --batch 4 -j 1 \
        -o "$d/net.safetensors"
    for f in "$d"/train/*/*.ppm; do printf '%s\t%s\n' "$f" "$(basename "$(dirname "$f")")"; done >"$d/list.tsv"
    tl extract -q -m "$d/net.safetensors" -j 1 "$d/list.tsv" -o "$d/train.tlf"
    tl finetune -q "$d/train.tlf" -o "$d/head.safetensors"
}

F() { printf '%s/%s' "$BATS_FILE_TMPDIR" "$1"; }

@test "'-' is standard input in every tool, told apart by its first line" {
    # a manifest (or a bare list) of images
    run --separate-stderr tl eval -q -m "$(F head.safetensors)" --json - <"$(F list.tsv)"
    assert_success
    [[ "$output" == *'"n":12'* ]] || fail "$output"
    # feature vectors from a pipe
    run --separate-stderr bash -c "'$TL_BIN/tl-extract' -q -m '$(F net.safetensors)' -j 1 '$(F list.tsv)' |
        '$TL_BIN/tl-eval' -q -m '$(F head.safetensors)' --json -"
    assert_success
    [[ "$output" == *'"n":12'* ]] || fail "$output"
    # the same two for tl-predict
    run --separate-stderr bash -c "cut -f1 '$(F list.tsv)' | '$TL_BIN/tl-predict' -q -m '$(F head.safetensors)' -k 1 -"
    assert_success
    assert_equal "$(printf '%s\n' "$output" | grep -vc '^#')" 12
    run --separate-stderr bash -c "'$TL_BIN/tl-extract' -q -m '$(F net.safetensors)' -j 1 '$(F list.tsv)' |
        '$TL_BIN/tl-predict' -q -m '$(F head.safetensors)' -k 1 -"
    assert_success
    assert_equal "$(printf '%s\n' "$output" | grep -vc '^#')" 12
    # a predictions file: tl-eval scores it without -m; with -m it says why not
    tl predict -q -m "$(F head.safetensors)" --format eval "$(F list.tsv)" >"$BATS_TEST_TMPDIR/p.tsv"
    run --separate-stderr tl eval -q --json - <"$BATS_TEST_TMPDIR/p.tsv"
    assert_success
    run --separate-stderr tl eval -q -m "$(F head.safetensors)" - <"$BATS_TEST_TMPDIR/p.tsv"
    assert_failure 2
    [[ "$stderr" == *"is a predictions file: it is scored without -m"* ]] || fail "$stderr"
    # features without a head: the flag it needs
    run --separate-stderr bash -c "'$TL_BIN/tl-eval' -q - <'$(F train.tlf)'"
    assert_failure 2
    [[ "$stderr" == "tl-eval: standard input holds feature vectors: give -m HEAD"* ]] || fail "$stderr"
}

@test "one TSV rule: a path or class name with a tab or line break is refused before any output" {
    local d=$BATS_TEST_TMPDIR
    mkdir -p "$d/set/red"
    cp "$(head -1 "$(F list.tsv)" | cut -f1)" "$d/set/red/ok.ppm"
    cp "$d/set/red/ok.ppm" "$d/set/red/a$(printf '\t')b.ppm"
    run --separate-stderr tl predict -q -m "$(F head.safetensors)" "$d/set"
    assert_failure 1
    assert_equal "$output" ""
    [[ "$stderr" == "tl-predict: path '"*"' holds a tab or line break and cannot be a TSV field" ]] || fail "$stderr"
    run --separate-stderr tl predict -q -m "$(F head.safetensors)" --format eval "$d/set"
    assert_failure 1
    assert_equal "$output" ""
    run --separate-stderr tl extract -q -m "$(F net.safetensors)" -f tsv "$d/set"
    assert_failure 1
    assert_equal "$output" ""
    [[ "$stderr" == *"holds a tab or line break and cannot be a TSV field" ]] || fail "$stderr"
    run --separate-stderr tl augment -q -n 1 --size 32 -o "$d/aug" --manifest "$d/aug.tsv" "$d/set"
    assert_failure 1
    [[ "$stderr" == *"holds a tab or line break and cannot be a TSV field" ]] || fail "$stderr"
    [ ! -e "$d/aug" ] && [ ! -e "$d/aug.tsv" ]
    # a TLF file can hold such a path; tl-search refuses it before its header
    tl extract -q -m "$(F net.safetensors)" -j 1 "$d/set" -o "$d/set.tlf"
    run --separate-stderr tl search -q -k 2 --queries "$(F train.tlf)" "$d/set.tlf" -o "$d/hits.tsv"
    assert_failure 1
    [[ "$stderr" == "tl-search: path '"*"' holds a tab or line break and cannot be a TSV field" ]] || fail "$stderr"
    [ ! -e "$d/hits.tsv" ]
}

@test "manifests: a third column or a label after a space is refused with the file and line, before any output" {
    local d=$BATS_TEST_TMPDIR
    { head -2 "$(F list.tsv)"; head -3 "$(F list.tsv)" | tail -1 | sed 's/$/	0.9/'; } >"$d/extra.tsv"
    { head -1 "$(F list.tsv)"; head -2 "$(F list.tsv)" | tail -1 | tr '	' ' '; } >"$d/space.tsv"
    local tool
    for tool in "extract -q -m $(F net.safetensors) -o $d/out.tlf" "eval -q -m $(F head.safetensors)" \
        "predict -q -m $(F head.safetensors)"; do
        run --separate-stderr tl $tool "$d/extra.tsv"
        assert_failure 1
        assert_equal "$output" ""
        [[ "$stderr" == *"extra.tsv: line 3: 3 tab-separated columns; a manifest line is PATH<TAB>LABEL" ]] ||
            fail "$tool: $stderr"
        run --separate-stderr tl $tool "$d/space.tsv"
        assert_failure 1
        [[ "$stderr" == *"space.tsv: line 2: no tab between path and label in '"*"' (the other lines are"* ]] ||
            fail "$tool: $stderr"
        assert_equal "$output" ""
        [ ! -e "$d/out.tlf" ]
    done
}

@test "provenance: features of another backbone or preprocessing are refused unless --force (14.4)" {
    local d=$BATS_TEST_TMPDIR
    # a copy of the backbone is another file (it could have been fine-tuned since); a
    # different input size gives vectors of the same length from other images
    cp "$(F net.safetensors)" "$d/net2.safetensors"
    tl extract -q -m "$d/net2.safetensors" -j 1 "$(F list.tsv)" -o "$d/other.tlf"
    tl extract -q -m "$(F net.safetensors)" --input-size 40 -j 1 "$(F list.tsv)" -o "$d/40.tlf"
    run --separate-stderr tl eval -q -m "$(F head.safetensors)" "$d/other.tlf"
    assert_failure 1
    assert_equal "$stderr" "tl-eval: $d/other.tlf: features of backbone $d/net2.safetensors, the head was trained on features of $(F net.safetensors) (--force uses them anyway)"
    run --separate-stderr tl eval -q -m "$(F head.safetensors)" --force "$d/other.tlf"
    assert_success
    run --separate-stderr tl predict -q -m "$(F head.safetensors)" "$d/40.tlf"
    assert_failure 1
    assert_equal "$output" ""
    [[ "$stderr" == *"40.tlf: features of images prepared as '40 "*"', the head was trained on images prepared as '32 "* ]] ||
        fail "$stderr"
    # validation features for a head, query vectors for an index
    run --separate-stderr tl finetune -q "$(F train.tlf)" --val "$d/40.tlf" -o "$d/h.safetensors"
    assert_failure 1
    [[ "$stderr" == *"40.tlf: features of images prepared as"*"the training data holds images prepared as"* ]] ||
        fail "$stderr"
    [ ! -e "$d/h.safetensors" ]
    run --separate-stderr tl finetune -q --force "$(F train.tlf)" --val "$d/40.tlf" -o "$d/h.safetensors"
    assert_success
    run --separate-stderr tl search -q --queries "$d/other.tlf" "$(F train.tlf)"
    assert_failure 1
    [[ "$stderr" == *"other.tlf: features of backbone"*"the index holds features of"* ]] || fail "$stderr"
    run --separate-stderr tl search -q --force --queries "$d/other.tlf" "$(F train.tlf)"
    assert_success
    # the same backbone, layer and input are accepted
    run --separate-stderr tl eval -q -m "$(F head.safetensors)" "$(F train.tlf)"
    assert_success
}

@test "-m is the model everywhere: tl-augment -m FILE is refused, FILE untouched" {
    local d=$BATS_TEST_TMPDIR
    cp "$(F net.safetensors)" "$d/model.safetensors"
    run --separate-stderr tl augment -n 1 -o "$d/aug" -m "$d/model.safetensors" "$(F train)"
    assert_failure 2
    assert_equal "$stderr" "tl-augment: '-m' (--model in the tl tools) is not an option of tl-augment (see tl-augment --help)"
    cmp "$d/model.safetensors" "$(F net.safetensors)"
    [ ! -e "$d/aug" ]
}

@test "first impression: plurals, the class line fits the width, --preview's format follows its name" {
    local d=$BATS_TEST_TMPDIR
    run --separate-stderr tl extract -m "$(F net.safetensors)" -j 1 "$(head -1 "$(F list.tsv)" | cut -f1)" -o "$d/one.tlf"
    assert_success
    [[ "$stderr" == "tl-extract: 1 image, 0 classes,"* ]] || fail "$stderr"
    [[ "$stderr" == *"tl-extract: 1 vector in "* ]] || fail "$stderr"
    # a class line cut to COLUMNS (not a terminal here)
    for w in 40 60 100; do
        run --separate-stderr env COLUMNS=$w "$TL_BIN/tl-info" "$(F net.safetensors)"
        assert_success
        local line
        line=$(printf '%s\n' "$output" | grep '^classes ')
        [ "${#line}" -le "$w" ] || fail "COLUMNS=$w: ${#line} characters: $line"
    done
    run --separate-stderr tl augment -q -n 1 --size 32 --rows 2 --preview "$d/sheet.jpg" "$(F train)"
    assert_success
    [ "$(head -c 2 "$d/sheet.jpg" | od -An -tx1 | tr -d ' ')" = ffd8 ]
    run --separate-stderr tl augment -q -n 1 --size 32 --preview "$d/sheet.gif" "$(F train)"
    assert_failure 2
    [ ! -e "$d/sheet.gif" ]
}

@test "tl-eval --plot and --reliability say what they wrote" {
    local d=$BATS_TEST_TMPDIR
    run --separate-stderr tl eval -m "$(F head.safetensors)" --plot "$d/c.svg" --reliability "$d/r.svg" "$(F train.tlf)"
    assert_success
    [[ "$stderr" == *"tl-eval: wrote $d/c.svg: the confusion matrix"* ]] || fail "$stderr"
    [[ "$stderr" == *"tl-eval: wrote $d/r.svg: the reliability diagram"* ]] || fail "$stderr"
    [ -s "$d/c.svg" ] && [ -s "$d/r.svg" ]
}
