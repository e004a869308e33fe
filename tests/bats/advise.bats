#!/usr/bin/env bats
# tl-info --advise (strategy by data-set size) and the run logs tl-compare
# reads: tl-extract --log and a feature head's --log. Self-contained.

load helpers

# class_tree DIR CLASS:COUNT...: empty files with image names (--advise
# counts, it does not decode).
class_tree() {
    local dir=$1 spec c n i
    shift
    for spec in "$@"; do
        c=${spec%%:*} n=${spec#*:}
        mkdir -p "$dir/$c"
        for ((i = 0; i < n; i++)); do : >"$dir/$c/$i.jpg"; done
    done
}

@test "--advise: a small data set gets fixed features, with reasons and next steps" {
    class_tree "$BATS_TEST_TMPDIR/d" ants:120 bees:100
    run --separate-stderr tl info --advise "$BATS_TEST_TMPDIR/d"
    assert_success
    # lines are wrapped for an 80-column terminal: read the words
    [[ $(tr -s ' \n' '  ' <<<"$output") == *": 220 labelled images in 2 classes; per class 100 to 120 (median 110) classes ants 120, bees 100 "* ]] ||
        fail "data line: $output"
    assert_line --regexp '^classes +ants 120, bees 100$'
    assert_line --regexp '^strategy +fixed features \+ a linear classifier$'
    assert_line --regexp '^why +220 images is under ~1,000'
    assert_line --regexp '^next '
}

@test "--advise: 1,200 images in 4 classes -> fine-tune the later layers; imbalance is flagged" {
    class_tree "$BATS_TEST_TMPDIR/d" a:600 b:300 c:200 d:100
    run --separate-stderr tl info --advise "$BATS_TEST_TMPDIR/d"
    assert_success
    assert_line --regexp '^strategy +fine-tune the later layers'
    assert_line --regexp '^warning +classes are imbalanced \(6\.0 : 1\)'
}

@test "--advise: many classes with few images each stay with features" {
    local args=() c
    for c in $(seq 1 60); do args+=("c$c:20"); done
    class_tree "$BATS_TEST_TMPDIR/d" "${args[@]}"
    run --separate-stderr tl info --advise "$BATS_TEST_TMPDIR/d"
    assert_success
    assert_line --regexp '^strategy +fixed features'
    assert_line --regexp 'median of 20 per class'
}

@test "--advise: usage and data errors" {
    run tl info --advise
    assert_failure 2
    class_tree "$BATS_TEST_TMPDIR/d" a:3 b:3
    run tl info --advise "$BATS_TEST_TMPDIR/d" extra
    assert_failure 2
    run --separate-stderr tl info --advise "$BATS_TEST_TMPDIR/missing"
    assert_failure 1
    [[ $stderr == "tl-info: "* ]]
}

@test "a feature head's --log: start, train, val and best lines in tl-finetune's form" {
    local d=$BATS_TEST_TMPDIR
    gen_blobs "$d/train.tsv" 1 60 8 3 3
    gen_blobs "$d/val.tsv" 2 30 8 3 3
    run --separate-stderr tl finetune "$d/train.tsv" --val "$d/val.tsv" --name feat --log "$d/h.jsonl" \
        -o "$d/head.safetensors"
    assert_success
    command -v jq >/dev/null || skip "jq not found"
    assert_equal "$(jq -r .phase "$d/h.jsonl" | tr '\n' ' ')" "start train val best "
    assert_equal "$(jq -r 'select(.phase == "start") | [.run, .init, .strategy, .train_images, .val_images, .classes] | @tsv' "$d/h.jsonl")" \
        "$(printf 'feat\tfeatures\tfeatures+logreg\t60\t30\t3')"
    # the logged validation accuracy is the one tl-eval measures
    local logged measured
    logged=$(jq -r 'select(.phase == "val") | .accuracy' "$d/h.jsonl")
    measured=$(tl eval -m "$d/head.safetensors" --json "$d/val.tsv" | jq -r .accuracy)
    awk -v a="$logged" -v b="$measured" 'BEGIN { exit !(a - b < 1e-5 && b - a < 1e-5) }' ||
        fail "log says $logged, tl-eval $measured"
    jq -e -n '[inputs | select(.phase == "val")][0] | .loss > 0 and .loss < 5' "$d/h.jsonl"
}

@test "--log of an unwritable path fails before any work" {
    gen_blobs "$BATS_TEST_TMPDIR/t.tsv" 1 30 4 2 3
    run --separate-stderr tl finetune "$BATS_TEST_TMPDIR/t.tsv" --log /nonexistent/dir/x.jsonl -o "$BATS_TEST_TMPDIR/h.safetensors"
    assert_failure 1
    [[ $stderr == *"/nonexistent/dir/x.jsonl: cannot open the log"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/h.safetensors" ]
}
