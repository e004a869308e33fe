#!/usr/bin/env bats
# tl-probe, the layer sweep (issue 18.4), on real photos: 10 ants and 10
# bees of hymenoptera/train against 8 + 8 of val, MobileNetV1 0.25/128 of
# ../shared. The sweep's arithmetic (noise, verdict sentences, which layers
# "all" means) is checked in tests/unit/test_probe.c; the flowers12 and NEU
# curves of the README are too slow for make check.

load helpers

setup_file() {
    have_shared || return 0
    export WORK="$BATS_FILE_TMPDIR/w"
    mkdir -p "$WORK"
    convert_model mobilenet_v1_0.25_128_quant "$WORK/m.safetensors"
    subset_manifest "$WORK/train.tsv" train 10
    subset_manifest "$WORK/val.tsv" val 8
    tl probe -q -m "$WORK/m.safetensors" --val "$WORK/val.tsv" -j 2 --json "$WORK/p.json" \
        --plot "$WORK/p.png" --log "$WORK/p.jsonl" "$WORK/train.tsv" >"$WORK/out.txt"
}

@test "tl-probe: a row per named stage up to the default features, the verdict, JSON that agrees" {
    need_shared
    cat "$WORK/out.txt"
    # MobileNetV1: features.0 .. features.12, then the pooled default (features.13 pooled)
    [ "$(json_get "$WORK/p.json" "len(d['layers'])")" -eq 14 ]
    [ "$(json_get "$WORK/p.json" "d['layers'][0]['layer']")" = features.0 ]
    [ "$(json_get "$WORK/p.json" "d['layers'][-1]['layer']")" = avgpool ]
    [ "$(json_get "$WORK/p.json" "d['default']")" = avgpool ]
    [ "$(json_get "$WORK/p.json" "[l['depth'] for l in d['layers']] == list(range(1, 15))")" = True ]
    # the best layer is the one with the highest validation accuracy
    [ "$(json_get "$WORK/p.json" "max(d['layers'], key=lambda l: l['val_accuracy'])['val_accuracy'] == [l for l in d['layers'] if l['layer'] == d['best']][0]['val_accuracy']")" = True ]
    [ "$(json_get "$WORK/p.json" "all(0 <= l['val_accuracy'] <= 1 and l['dim'] > 0 for l in d['layers'])")" = True ]
    [ "$(json_get "$WORK/p.json" "d['val_images'], d['train_images'], d['classes']")" = "(16, 20, 2)" ]
    # the printed table and the verdict say the same
    grep -q "^avgpool .* default" "$WORK/out.txt"
    best=$(json_get "$WORK/p.json" "d['best']")
    grep -q "^best: $best (layer " "$WORK/out.txt"
    [ "$(json_get "$WORK/p.json" "d['verdict'][0]")" = "$(grep '^best: ' "$WORK/out.txt")" ]
    grep -Eq "(keep the default layer|--layer $best)" "$WORK/out.txt"
    grep -q "^accuracy rises from " "$WORK/out.txt"
}

@test "tl-probe: the plot is a PNG; the log is the best layer's head as a run tl-compare reads" {
    need_shared
    [ "$(head -c 8 "$WORK/p.png" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]
    best=$(json_get "$WORK/p.json" "d['best']")
    grep -q "\"strategy\":\"features+logreg ($best)\"" "$WORK/p.jsonl"
    run tl compare --json "$WORK/p.jsonl"
    echo "$output"
    [ "$status" -eq 0 ]
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/c.json"
    [ "$(json_get "$BATS_TEST_TMPDIR/c.json" "d['runs'][0]['max_val_accuracy'] == $(json_get "$WORK/p.json" "[l for l in d['layers'] if l['layer'] == d['best']][0]['val_accuracy']")")" = True ]
}

@test "tl-probe: the same numbers for any thread count; --layers picks and sorts" {
    need_shared
    run tl probe -q -m "$WORK/m.safetensors" --val "$WORK/val.tsv" -j 1 "$WORK/train.tsv"
    [ "$status" -eq 0 ]
    [ "$output" = "$(cat "$WORK/out.txt")" ]
    run tl probe -q -m "$WORK/m.safetensors" --layers avgpool,features.3,features.9,features.3 \
        --val "$WORK/val.tsv" --json - "$WORK/train.tsv"
    [ "$status" -eq 0 ]
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/sub.json"
    [ "$(json_get "$BATS_TEST_TMPDIR/sub.json" "[l['layer'] for l in d['layers']]")" = "['features.3', 'features.9', 'avgpool']" ]
    # the same layer gets the same accuracy whatever else is probed beside it
    [ "$(json_get "$BATS_TEST_TMPDIR/sub.json" "d['layers'][1]['val_accuracy']")" = \
      "$(json_get "$WORK/p.json" "[l for l in d['layers'] if l['layer'] == 'features.9'][0]['val_accuracy']")" ]
}

@test "tl-probe: a held-out split without --val; errors are one line" {
    need_shared
    run tl probe -q -m "$WORK/m.safetensors" --layers features.5,avgpool --val-split 0.25 --json - "$WORK/train.tsv"
    [ "$status" -eq 0 ]
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/split.json"
    [ "$(json_get "$BATS_TEST_TMPDIR/split.json" "d['val_images'], d['train_images'], d['val']")" = "(6, 14, 'split')" ]
    run tl probe -m "$WORK/m.safetensors" --layers features.99 "$WORK/train.tsv"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--layers: no layer 'features.99' in mobilenet_v1"* ]]
    run tl probe -m "$WORK/m.safetensors" --layers logits "$WORK/train.tsv"
    [ "$status" -eq 2 ]
    run tl probe -m "$WORK/m.safetensors" --val "$WORK/val.tsv" --val-split 0.3 "$WORK/train.tsv"
    [ "$status" -eq 2 ]
    run tl probe -m "$WORK/m.safetensors" --plot "$BATS_TEST_TMPDIR/x.gif" --val "$WORK/val.tsv" "$WORK/train.tsv"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--plot: "*"x.gif: unknown plot format"* ]]
    [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ]
    printf 'x\tants\n' >"$BATS_TEST_TMPDIR/bad.tsv"
    run tl probe -m "$WORK/m.safetensors" --val "$WORK/val.tsv" "$BATS_TEST_TMPDIR/bad.tsv"
    [ "$status" -eq 1 ]
    [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ]
}
