#!/usr/bin/env bats
# tl-compare: hand-written logs in fixtures/compare (both log generations,
# a feature-head run with extraction lines, a resumed run, a run without
# validation, a diverged run, a broken line), then two real short runs of
# tl-finetune on generated images. Self-contained: no ../shared.

load helpers

C=$BATS_TEST_DIRNAME/fixtures/compare


@test "table: one row per run, aligned within 100 columns, target and verdict" {
    run --separate-stderr tl compare "$C/full.jsonl" "$C/head.jsonl" "$C/features.jsonl" "$C/scratch.jsonl"
    assert_success
    assert_line --index 0 "target: validation accuracy >= 0.9063 (95% of the best, 0.954)"
    assert_line --regexp '^full +full +0\.954 \(3\) +1 +44 +\+0\.01 +6\.1 +178$'
    assert_line --regexp '^head +head-only +0\.941 \(2\) +1 +10 '
    # the feature-head run's time includes its 20 s of extraction
    assert_line --regexp '^logreg +features\+logreg +0\.948 \(1\) +1 +20 '
    assert_line --regexp '^scratch +scratch +0\.710 \(10\) +not reached +- '
    assert_line "full: stopped early after epoch 4."
    assert_output --partial "transfer (full) reaches 0.954 in 3 epochs (134 s); scratch reaches 0.710 after 10 epochs"
    assert_output --partial "transfer helps (+24.4 points, beyond noise for 153 validation images)"
    assert_output --partial "logreg (features+logreg) is within 0.6 points of full at a ninth of the time"
    assert_output --partial "scratch had not converged"
    assert_output --partial "scratch overfits"
    local long
    long=$(printf '%s\n' "$output" | awk 'length($0) > 100' | head -1)
    [ -z "$long" ] || fail "line over 100 columns: $long"
}

@test "scratch within noise of transfer says the domains may be too far apart" {
    run tl compare "$C/full.jsonl" "$C/scratch-long.jsonl"
    assert_success
    assert_output --partial "scratch matches transfer (0.935 vs 0.954, within noise for 153 validation images)"
    assert_output --partial "consider a backbone"
    assert_output --partial "scratch 7 (343 s): transfer"
    assert_output --partial "is 7.8x faster"
}

@test "--target sets the level; --metric loss ranks by validation loss" {
    run tl compare --target 0.95 "$C/full.jsonl" "$C/head.jsonl"
    assert_success
    assert_line --index 0 "target: validation accuracy >= 0.95"
    assert_line --regexp '^full +full +0\.954 \(3\) +3 +134 '
    assert_line --regexp '^head +head-only +0\.941 \(2\) +not reached '
    run tl compare --metric loss "$C/full.jsonl" "$C/head.jsonl"
    assert_success
    assert_line --index 0 "target: validation loss <= 0.126 (105% of the best, 0.12)"
    assert_line --regexp '^full +full +0\.1200 \(3\) '
}

@test "old logs, resumed runs, runs without validation, diverged runs" {
    run tl compare "$C/old-resumed.jsonl" "$C/noval.jsonl" "$C/diverged.jsonl"
    assert_success
    assert_line --regexp '^old-resumed +- +0\.840 \(3\) '
    assert_line --regexp '^noval +- +- +- +- +- +24\.5 +20$'
    assert_line "old-resumed: resumed; 1 repeated epoch record replaced by a later one."
    assert_output --partial "noval has no validation records"
    assert_output --partial "diverged (scratch) diverged: its loss became nan or inf at epoch 2"
}

@test "--json: one object with summaries and the verdict" {
    run --separate-stderr tl compare --json "$C/full.jsonl" "$C/scratch.jsonl" "$C/features.jsonl"
    assert_success
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/c.json"
    [ "$(json_get "$BATS_TEST_TMPDIR/c.json" "d['best']")" = full ]
    [ "$(json_get "$BATS_TEST_TMPDIR/c.json" "d['runs'][0]['best_epoch']")" = 3 ]
    [ "$(json_get "$BATS_TEST_TMPDIR/c.json" "d['runs'][1]['target_epoch']")" = None ] ||
        [ "$(json_get "$BATS_TEST_TMPDIR/c.json" "d['runs'][1]['target_epoch']")" = null ]
    [ "$(json_get "$BATS_TEST_TMPDIR/c.json" "d['runs'][2]['extract_seconds']")" = 20.0 ] ||
        [ "$(json_get "$BATS_TEST_TMPDIR/c.json" "d['runs'][2]['extract_seconds']")" = 20 ]
    [ "$(json_get "$BATS_TEST_TMPDIR/c.json" "len(d['verdict']) > 1")" = True ] ||
        [ "$(json_get "$BATS_TEST_TMPDIR/c.json" "d['verdict'] | length > 1")" = true ]
}

@test "--tsv: a header and one row per run" {
    run --separate-stderr tl compare --tsv "$C/full.jsonl" "$C/head.jsonl"
    assert_success
    assert_equal "${#lines[@]}" 3
    assert_line --index 0 --regexp $'^run\tstrategy\tkind\t'
    assert_line --index 1 --regexp $'^full\tfull\ttransfer\tpretrained\tmobilenet_v2\t4\t3\t0.954\t'
}

@test "NAME=FILE names a run; '-' reads standard input" {
    run tl compare tuned="$C/full.jsonl" - <"$C/scratch.jsonl"
    assert_success
    assert_line --regexp '^tuned +full '
    assert_line --regexp '^scratch +scratch '
    # a file whose name contains '=' is still a file
    cp "$C/head.jsonl" "$BATS_TEST_TMPDIR/a=b.jsonl"
    run tl compare "$BATS_TEST_TMPDIR/a=b.jsonl"
    assert_success
    assert_line --regexp '^head +head-only '
}

@test "a line that is not JSON fails with the file name and line number" {
    run --separate-stderr tl compare "$C/full.jsonl" "$C/broken.jsonl"
    assert_failure 1
    assert_equal "$output" ""
    [[ "$stderr" == "tl-compare: $C/broken.jsonl: line 3: not JSON ("* ]] || fail "$stderr"
    run --separate-stderr tl compare "$BATS_TEST_TMPDIR/missing.jsonl"
    assert_failure 1
    [[ "$stderr" == "tl-compare: $BATS_TEST_TMPDIR/missing.jsonl: No such file or directory" ]] || fail "$stderr"
}

@test "usage: --help, --version, errors exit 2" {
    run --separate-stderr tl compare --help
    assert_success
    assert_line --index 0 --regexp '^Usage: tl-compare '
    assert_line --regexp '^Example'
    assert_line --regexp '^  tl-compare '
    run tl compare --version
    assert_line --index 0 --regexp '^tl-compare \(tl\) [0-9]+\.[0-9]+\.[0-9]+$'
    run --separate-stderr tl compare
    assert_failure 2
    [[ "$stderr" == "tl-compare: "*"--help"* ]] || fail "$stderr"
    run tl compare --metric speed "$C/full.jsonl"
    assert_failure 2
    run tl compare --target 1.5 "$C/full.jsonl"
    assert_failure 2
    run tl compare --json --tsv "$C/full.jsonl"
    assert_failure 2
    run tl compare - - <"$C/full.jsonl"
    assert_failure 2
    run --separate-stderr tl compare --no-such-option
    assert_failure 2
    [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
}

@test "--plot: an epoch axis is ticked at whole epochs, also for a run of one epoch" {
    run tl compare -q --plot "$BATS_TEST_TMPDIR/one.svg" "$C/features.jsonl"
    assert_success
    # the tick labels under the three epoch panels: 0 1 2, never 0.95 or 1.05
    ticks=$(grep -o '<text[^>]*>[^<]*</text>' "$BATS_TEST_TMPDIR/one.svg" | sed 's/<[^>]*>//g' | tr '\n' ' ')
    [[ $ticks == *"1.00 0 1 2 target"* ]] || fail "epoch ticks: $ticks"
    [[ $ticks != *"0.95"* && $ticks != *"1.05"* ]] || fail "fractional epochs: $ticks"
}

@test "--plot writes SVG and PNG learning curves; a bad extension writes nothing" {
    local d=$BATS_TEST_TMPDIR
    run tl compare -q --plot "$d/c.svg" "$C/full.jsonl" "$C/head.jsonl" "$C/features.jsonl" "$C/scratch.jsonl"
    assert_success
    grep -q '<svg' "$d/c.svg"
    grep -q 'validation loss' "$d/c.svg"
    grep -q 'target 0.906' "$d/c.svg"
    grep -q '>scratch<' "$d/c.svg"
    if command -v rsvg-convert >/dev/null; then
        rsvg-convert -o "$d/c.png" "$d/c.svg"
    fi
    run tl compare -q --plot "$d/p.png" "$C/full.jsonl"
    assert_success
    [ "$(head -c 8 "$d/p.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
    run tl compare -q --plot "$d/p.gif" "$C/full.jsonl"
    assert_failure 1
    [ ! -e "$d/p.gif" ]
    # "--plot -": the SVG on standard output, no table
    run --separate-stderr tl compare --plot - "$C/full.jsonl"
    assert_success
    assert_output --partial '<svg'
    refute_output --partial 'target:'
}

@test "real runs: tl-finetune from scratch, then fine-tuned from it, compared" {
    local d=$BATS_TEST_TMPDIR
    gen_ppms "$d/train" 1 16
    gen_ppms "$d/val" 2 8
    tl finetune -q --scratch --arch small_cnn --input-size 32 "$d/train" --val "$d/val" --epochs 3 --batch 8 \
        -j 1 --seed 3 --log "$d/scratch.jsonl" -o "$d/base.safetensors"
    tl finetune -q -m "$d/base.safetensors" --keep-head --freeze-until features.1 "$d/train" --val "$d/val" \
        --epochs 2 --batch 8 -j 1 --lr 0.05 --log "$d/tuned.jsonl" -o "$d/tuned.safetensors"
    run --separate-stderr tl compare --json "$d/scratch.jsonl" "$d/tuned.jsonl"
    assert_success
    printf '%s\n' "$output" >"$d/c.json"
    [ "$(json_get "$d/c.json" "d['runs'][0]['epochs']")" = 3 ]
    [ "$(json_get "$d/c.json" "d['runs'][1]['epochs']")" = 2 ]
    [ "$(json_get "$d/c.json" "d['runs'][0]['kind']")" = scratch ]
    [ "$(json_get "$d/c.json" "d['runs'][1]['kind']")" = transfer ]
    float_ge "$(json_get "$d/c.json" "d['runs'][0]['max_val_accuracy']")" 0.5
    float_ge "$(json_get "$d/c.json" "d['runs'][1]['total_seconds']")" 0.001
    run tl compare --plot "$d/real.svg" "$d/scratch.jsonl" "$d/tuned.jsonl"
    assert_success
    assert_output --partial "transfer"
    [ -s "$d/real.svg" ]
}

@test "runs on different data, or a feature run without its extraction line, are said to be so (14.4)" {
    local d=$BATS_TEST_TMPDIR ep='{"epoch":1,"phase":"train","loss":0.5,"accuracy":0.8}
{"epoch":1,"phase":"val","loss":0.6,"accuracy":0.7}'
    printf '%s\n%s\n' '{"phase":"start","run":"a","init":"pretrained","strategy":"full","train":"t","val":"v","train_images":100,"val_images":40}' "$ep" >"$d/a.jsonl"
    printf '%s\n%s\n' '{"phase":"start","run":"b","init":"pretrained","strategy":"head-only","train":"t","val":"split","train_images":80,"val_images":20}' "$ep" >"$d/b.jsonl"
    printf '%s\n%s\n' '{"phase":"start","run":"c","init":"features","strategy":"features+logreg","train":"t.tlf","val":"v.tlf","train_images":100,"val_images":40}' "$ep" >"$d/c.jsonl"
    run --separate-stderr tl compare "$d/a.jsonl" "$d/b.jsonl" "$d/c.jsonl"
    assert_success
    local text
    text=$(printf '%s\n' "$output" | tr '\n' ' ' | tr -s ' ')
    [[ "$text" == *"the runs were trained on different data (a, c on 100 images; b on 80 images): their figures are not directly comparable"* ]] || fail "$output"
    [[ "$text" == *"the runs were validated on different data (a, c on 40 images; b on 20 images)"* ]] || fail "$output"
    [[ "$text" == *"b is validated on a random split of its training data, a on v: different images"* ]] || fail "$output"
    [[ "$text" == *"c is a feature-head run whose log holds no tl-extract --log line"* ]] || fail "$output"
    # the same data and the extraction line: none of it
    { printf '%s\n' '{"phase":"extract","data":"t","model":"m","layer":"l","images":100,"seconds":2}'; cat "$d/c.jsonl"; } >"$d/c2.jsonl"
    run --separate-stderr tl compare --json "$d/a.jsonl" "$d/c2.jsonl"
    assert_success
    refute_output --partial "different data"
    refute_output --partial "random split"
    refute_output --partial "no tl-extract"
}
