#!/usr/bin/env bats
# Issue 18.1, 18.2, 18.5: multi-label classification, imbalanced data,
# few-shot heads and retrieval. The figures tl reports are recomputed in
# NumPy from scikit-learn's definitions (tests/parity/labels_ref.py).
# Real data: composites of flowers12 and hymenoptera tiles
# (scripts/composites.py) and flowers12, through the small TFLite
# MobileNetV1 0.25/128 of ../shared; those cases skip, saying why, without
# ../shared, PIL or NumPy, and under the sanitizers (where the extraction
# alone would take minutes); the self-contained cases run everywhere.

load helpers

REF=$BATS_TEST_DIRNAME/../parity/labels_ref.py
COMPOSITES=$BATS_TEST_DIRNAME/../../scripts/composites.py

setup_file() {
    local d=$BATS_FILE_TMPDIR why=""
    gen_blobs "$d/blobs_train.tsv" 21 90 8 3 3
    gen_blobs "$d/blobs_test.tsv" 22 45 8 3 3
    if ! have_shared; then
        why="../shared not found"
    elif ! /usr/bin/python3 -c 'import numpy, PIL' 2>/dev/null; then
        why="NumPy and PIL for /usr/bin/python3 not installed (make deps)"
    elif [ -n "${TL_SANITIZE:-}" ]; then
        why="real-data cases skipped under sanitizers (slow); they run in the normal build"
    fi
    echo "$why" >"$d/why"
    [ -z "$why" ] || return 0
    local S=$TL_SHARED/datasets
    convert_model mobilenet_v1_0.25_128_quant "$d/v1.safetensors"
    # multi-label: 2x2 composites of 14 classes, training and validation sets
    /usr/bin/python3 "$COMPOSITES" --n 160 --seed 1 "$d/ctrain" "$S/flowers12/train" "$S/hymenoptera/train" >/dev/null
    /usr/bin/python3 "$COMPOSITES" --n 100 --seed 2 "$d/cval" "$S/flowers12/test" "$S/hymenoptera/val" >/dev/null
    tl extract -q -m "$d/v1.safetensors" --multi-label -f tsv "$d/ctrain/labels.tsv" -o "$d/ctrain.tsv"
    tl extract -q -m "$d/v1.safetensors" --multi-label -f tsv "$d/cval/labels.tsv" -o "$d/cval.tsv"
    tl extract -q -m "$d/v1.safetensors" -f tsv "$S/flowers12/train" -o "$d/f12train.tsv"
    tl extract -q -m "$d/v1.safetensors" -f tsv "$S/flowers12/test" -o "$d/f12test.tsv"
}

F() { printf '%s/%s' "$BATS_FILE_TMPDIR" "$1"; }

# gen_multi FILE SEED N: a multi-label TSV feature file of N rows of 8
# values; each row holds each of 4 labels with probability 0.4 (none
# possible), and the dimensions j with j % 4 == c have mean 2 when it holds
# label c, 0 otherwise, unit noise (awk's seeded rand, as gen_blobs).
gen_multi() {
    awk -v seed="$2" -v n="$3" 'BEGIN {
        srand(seed)
        print "#tl-features\t1"
        print "#multilabel\t1"
        print "#classes\t[\"a\",\"b\",\"c\",\"d\"]"
        for (i = 0; i < n; i++) {
            set = ""
            for (c = 0; c < 4; c++) {
                on[c] = rand() < 0.4
                if (on[c]) set = set (set == "" ? "" : ",") substr("abcd", c + 1, 1)
            }
            printf "m%d/img%03d.jpg\t%s", seed, i, set
            for (j = 0; j < 8; j++) {
                u1 = rand(); u2 = rand(); if (u1 < 1e-12) u1 = 1e-12
                printf "\t%.6f", (on[j % 4] ? 2 : 0) + sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2)
            }
            printf "\n"
        }
    }' >"$1"
}

real_data() {
    local why
    why=$(cat "$BATS_FILE_TMPDIR/why")
    [ -z "$why" ] || skip "$why"
}

ref() { /usr/bin/python3 "$REF" "$@"; }

# meta_of FILE: a checkpoint's metadata as KEY=VALUE lines.
meta_of() {
    /usr/bin/python3 -c 'import json, struct, sys
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]
for k, v in sorted(json.loads(f.read(n)).get("__metadata__", {}).items()): print(k + "=" + v)' "$1" ||
        skip "/usr/bin/python3 not found (to read checkpoint metadata)"
}

# subset IN OUT SEED SHOTS [MINORITY]: a TSV feature file with SHOTS vectors
# of every class (seeded), or with MINORITY classes cut to SHOTS and the
# rest kept whole.
subset() {
    /usr/bin/python3 - "$@" <<'EOF'
import random, sys
src, dst, seed, shots = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
minority = int(sys.argv[5]) if len(sys.argv) > 5 else None
lines = open(src).read().split("\n")
head = [l for l in lines if l.startswith("#")]
rows = [l for l in lines if l and not l.startswith("#")]
classes = sorted({r.split("\t")[1] for r in rows})
rng = random.Random(seed)
cut = set(rng.sample(classes, minority)) if minority else set(classes)
out = []
for c in classes:
    cr = [r for r in rows if r.split("\t")[1] == c]
    out += rng.sample(cr, shots) if c in cut else cr
open(dst, "w").write("\n".join(head + out) + "\n")
EOF
}

# ---------------------------------------------------------------- 18.1

@test "multi-label manifests: a label holding ',' (or an empty one) is refused with its line number" {
    local d=$BATS_TEST_TMPDIR
    gen_ppms "$d/img" 3 2
    printf 'img/red/000.ppm\tred,warm\nimg/blue/000.ppm\ttench, Tinca tinca\n' >"$d/m1.tsv"
    printf 'img/red/000.ppm\tred,,warm\n' >"$d/m2.tsv"
    printf 'img/red/000.ppm\tred\nimg/red/001.ppm\tred,\n' >"$d/m3.tsv"
    local m
    for m in m1 m2 m3; do
        run --separate-stderr tl extract -m "$d/none.safetensors" --multi-label "$d/$m.tsv" 2>/dev/null
        [ "$status" -ne 0 ] || fail "$m accepted"
    done
    # the manifest is read before the model, so use a real (tiny) network
    tl convert -q "$TL_MODELS/mobilenet_v1_0.25_128_quant.tflite" -o "$d/v1.safetensors" 2>/dev/null ||
        skip "../shared not found (a network to extract with)"
    run --separate-stderr tl extract -m "$d/v1.safetensors" --multi-label "$d/m1.tsv"
    assert_failure 1
    [[ "$stderr" == *"m1.tsv: line 2: label ' Tinca tinca' begins or ends with a space"*"cannot contain ','"* ]] ||
        fail "$stderr"
    run --separate-stderr tl extract -m "$d/v1.safetensors" --multi-label "$d/m2.tsv"
    [[ "$stderr" == *"m2.tsv: line 1: empty label in 'red,,warm'"* ]] || fail "$stderr"
    run --separate-stderr tl extract -m "$d/v1.safetensors" --multi-label "$d/m3.tsv"
    [[ "$stderr" == *"m3.tsv: line 2: empty label"* ]] || fail "$stderr"
    # without --multi-label the same line is one class, as before
    run --separate-stderr tl extract -q -m "$d/v1.safetensors" -f tsv "$d/m1.tsv"
    assert_success
    [[ "$output" == *'#classes	["red,warm","tench, Tinca tinca"]'* ]] || fail "$output"
}

@test "multi-label head on generated vectors (also under the sanitizers): tl-eval's figures, the thresholds and the head equal NumPy" {
    local d=$BATS_TEST_TMPDIR
    /usr/bin/python3 -c 'import numpy' 2>/dev/null || skip "NumPy for /usr/bin/python3 not installed (make deps)"
    gen_multi "$d/train.tsv" 31 120
    gen_multi "$d/val.tsv" 32 60
    run --separate-stderr tl finetune "$d/train.tsv" --val "$d/val.tsv" -o "$d/head.safetensors"
    assert_success
    [[ "$stderr" == *"4 labels (multi-label, one-vs-rest)"* ]] || fail "$stderr"
    tl predict -q -m "$d/head.safetensors" --format eval "$d/val.tsv" >"$d/pred.tsv"
    tl eval -q --json "$d/pred.tsv" >"$d/p.json"
    tl eval -q --json -m "$d/head.safetensors" "$d/val.tsv" >"$d/m.json"
    local what
    for what in "multilabel $d/pred.tsv $d/p.json" "multilabel $d/pred.tsv $d/m.json" \
        "thresholds $d/pred.tsv $d/head.safetensors" "ovr $d/train.tsv $d/head.safetensors"; do
        run ref $what
        echo "$output"
        assert_success
    done
    run --separate-stderr tl eval -m "$d/head.safetensors" --plot "$d/pr.svg" "$d/val.tsv"
    assert_success
    grep -q '<svg' "$d/pr.svg" || fail "no SVG"
}

@test "multi-label head: tl-eval's mAP, per-class AP and F1 equal NumPy; thresholds follow the best-F1 rule; the head is the one-vs-rest optimum" {
    real_data
    local d=$BATS_TEST_TMPDIR
    run --separate-stderr tl finetune "$(F ctrain.tsv)" --val "$(F cval.tsv)" -o "$d/head.safetensors"
    assert_success
    [[ "$stderr" == *"14 labels (multi-label, one-vs-rest)"* ]] || fail "$stderr"
    [[ "$stderr" == *"thresholds: the best F1 on the validation data"* ]] || fail "$stderr"
    tl predict -q -m "$d/head.safetensors" --format eval "$(F cval.tsv)" >"$d/pred.tsv"
    head -1 "$d/pred.tsv" | grep -q $'^#path\ttrue\tpred:multilabel\t' || fail "$(head -1 "$d/pred.tsv")"
    tl eval -q --json "$d/pred.tsv" >"$d/p.json"
    tl eval -q --json -m "$d/head.safetensors" "$(F cval.tsv)" >"$d/m.json"
    run ref multilabel "$d/pred.tsv" "$d/p.json"
    echo "$output"
    assert_success
    run ref multilabel "$d/pred.tsv" "$d/m.json"
    assert_success
    run ref thresholds "$d/pred.tsv" "$d/head.safetensors"
    echo "$output"
    assert_success
    run ref ovr "$(F ctrain.tsv)" "$d/head.safetensors"
    echo "$output"
    assert_success
    # the figures tl-finetune logged are tl-eval's
    local map
    map=$(json_get "$d/m.json" "d['mAP']")
    [[ "$stderr" == *"validation mAP $(printf '%.4f' "$map")"* ]] || fail "logged mAP differs from tl-eval's $map"
}

@test "tl-eval on a multi-label model: a precision-recall plot, --threshold moves F1 but not mAP, single-label options refused" {
    real_data
    local d=$BATS_TEST_TMPDIR
    tl finetune -q "$(F ctrain.tsv)" --val "$(F cval.tsv)" -o "$d/head.safetensors"
    run --separate-stderr tl eval -m "$d/head.safetensors" --plot "$d/pr.png" "$(F cval.tsv)"
    assert_success
    assert_line --regexp '^mAP +0\.[0-9]{4} \(mean average precision over the 1[0-4] classes with a positive\)$'
    assert_line --regexp '^micro avg '
    [ -s "$d/pr.png" ] && [ "$(head -c 4 "$d/pr.png" | od -An -c | tr -d ' ')" = "211PNG" ] || fail "no PNG"
    tl eval -q --json -m "$d/head.safetensors" "$(F cval.tsv)" >"$d/a.json"
    tl eval -q --json -m "$d/head.safetensors" --threshold 0.9 "$(F cval.tsv)" >"$d/b.json"
    assert_equal "$(json_get "$d/a.json" "d['mAP']")" "$(json_get "$d/b.json" "d['mAP']")"
    [ "$(json_get "$d/a.json" "d['micro_f1']")" != "$(json_get "$d/b.json" "d['micro_f1']")" ] || fail "F1 unchanged"
    assert_equal "$(json_get "$d/b.json" "d['thresholds']")" given
    run --separate-stderr tl eval -m "$d/head.safetensors" --reliability "$d/r.png" "$(F cval.tsv)"
    assert_failure 2
    tl finetune -q "$(F blobs_train.tsv)" -o "$d/single.safetensors"
    run --separate-stderr tl eval -m "$d/single.safetensors" --threshold 0.5 "$(F blobs_test.tsv)"
    assert_failure 2
    # tl-predict's labels column is the set at the thresholds
    run --separate-stderr tl predict -m "$d/head.safetensors" -k 2 "$(F cval.tsv)"
    assert_success
    assert_line --index 0 $'#path\tlabels\tclass1\tp1\tclass2\tp2'
}

@test "multi-label fine-tuning: validation by mAP, the best epoch's thresholds in the checkpoint, tl-eval on the same images agrees" {
    real_data
    local d=$BATS_TEST_TMPDIR
    head -48 "$(F ctrain)/labels.tsv" | sed "s|^|$(F ctrain)/|" >"$d/train.tsv"
    head -32 "$(F cval)/labels.tsv" | sed "s|^|$(F cval)/|" >"$d/val.tsv"
    run --separate-stderr tl finetune -m "$(F v1.safetensors)" --multi-label --head-only --epochs 2 --lr 0.05 \
        --batch 16 --val "$d/val.tsv" --log "$d/run.jsonl" -o "$d/net.safetensors" "$d/train.tsv"
    assert_success
    [[ "$stderr" == *"mAP"* ]] || fail "$stderr"
    grep -q '"metric":"mAP"' "$d/run.jsonl" || fail "the log's start line does not say mAP"
    tl eval -q --json -m "$d/net.safetensors" "$d/val.tsv" >"$d/e.json"
    local best logged
    best=$(grep '"phase":"best"' "$d/run.jsonl" | sed 's/.*"accuracy":\([^,}]*\).*/\1/')
    logged=$(printf '%.5f' "$best")
    assert_equal "$(printf '%.5f' "$(json_get "$d/e.json" "d['mAP']")")" "$logged"
    assert_equal "$(json_get "$d/e.json" "d['thresholds']")" model
    # an image list through tl-predict: the labels column
    run --separate-stderr tl predict -m "$d/net.safetensors" -k 1 "$(F cval)/c0001.jpg"
    assert_success
    assert_line --index 0 $'#path\tlabels\tclass1\tp1'
}

# ---------------------------------------------------------------- 18.2

@test "imbalanced flowers12 (6 classes cut 10:1): --class-weights auto raises macro F1; tl-eval's balanced accuracy and macro F1 equal NumPy" {
    real_data
    local d=$BATS_TEST_TMPDIR s cw gain=0 base win
    for s in 1 2 3; do
        subset "$(F f12train.tsv)" "$d/imb$s.tsv" "$s" 6 6
        for cw in none auto; do
            tl finetune -q "$d/imb$s.tsv" $([ $cw = auto ] && echo --class-weights auto) -o "$d/h_$cw.safetensors"
            tl eval -q --json -m "$d/h_$cw.safetensors" "$(F f12test.tsv)" >"$d/$cw.json"
        done
        base=$(json_get "$d/none.json" "d['macro_f1']")
        win=$(json_get "$d/auto.json" "d['macro_f1']")
        echo "# seed $s: macro F1 $base unweighted, $win with --class-weights auto" >&3
        gain=$(awk -v g="$gain" -v a="$win" -v b="$base" 'BEGIN { print g + (a - b) / 3 }')
    done
    float_ge "$gain" 0.01 || fail "mean macro-F1 gain $gain"
    tl predict -q -m "$d/h_auto.safetensors" --format eval "$(F f12test.tsv)" >"$d/p.tsv"
    tl eval -q --json "$d/p.tsv" >"$d/p.json"
    run ref single "$d/p.tsv" "$d/p.json"
    echo "$output"
    assert_success
    assert_equal "$(json_get "$d/p.json" "d['balanced_accuracy']")" "$(json_get "$d/auto.json" "d['balanced_accuracy']")"
}

@test "--class-weights FILE and --sampler balanced: recorded in the checkpoint; a bad weights file names its line" {
    local d=$BATS_TEST_TMPDIR
    printf '# weights\nclass0\t2\nclass1\t0.5\n' >"$d/w.tsv"
    run --separate-stderr tl finetune "$(F blobs_train.tsv)" --class-weights "$d/w.tsv" -o "$d/h.safetensors"
    assert_success
    [[ "$stderr" == *"class weights $d/w.tsv"* ]] || fail "$stderr"
    meta_of "$d/h.safetensors" | grep -qx "tl.class_weights=$d/w.tsv" || fail "$(meta_of "$d/h.safetensors")"
    printf 'class0\t2\nwasps\t1\n' >"$d/bad.tsv"
    run --separate-stderr tl finetune "$(F blobs_train.tsv)" --class-weights "$d/bad.tsv" -o "$d/h2.safetensors"
    assert_failure 1
    [[ "$stderr" == *"bad.tsv: line 2: no class 'wasps' in the training data"* ]] || fail "$stderr"
    [ ! -e "$d/h2.safetensors" ] || fail "a head was written"
    # a small scratch network on an imbalanced set of generated images
    gen_ppms "$d/img" 5 12
    rm -f "$d"/img/blue/00[2-9].ppm "$d"/img/blue/01*.ppm
    run --separate-stderr tl finetune --scratch --arch small_cnn --input-size 32 --epochs 1 --batch 4 \
        --sampler balanced --class-weights auto --val-split 0 -j 1 -o "$d/net.safetensors" "$d/img"
    assert_success
    meta_of "$d/net.safetensors" | grep -qx "tl.sampler=balanced" || fail "$(meta_of "$d/net.safetensors")"
    meta_of "$d/net.safetensors" | grep -qx "tl.class_weights=auto" || fail "$(meta_of "$d/net.safetensors")"
    run --separate-stderr tl finetune --scratch --arch small_cnn --sampler sometimes -o "$d/x.safetensors" "$d/img"
    assert_failure 2
    # not wired into steps in parts yet: refused, not ignored
    run --separate-stderr tl finetune --scratch --arch small_cnn --sampler balanced --accumulate 2 -o "$d/x.safetensors" "$d/img"
    assert_failure 2
    [[ "$stderr" == *"--sampler balanced: not yet with --accumulate or several processes"* ]] || fail "$stderr"
}

# ---------------------------------------------------------------- 18.5

@test "few-shot heads: 5-shot ncm and knn scores and decisions equal NumPy (cosine and Euclidean); logreg is compared" {
    real_data
    local d=$BATS_TEST_TMPDIR h m acc
    subset "$(F f12train.tsv)" "$d/shot5.tsv" 1 5
    for h in ncm knn; do
        for m in cosine euclidean; do
            run --separate-stderr tl finetune "$d/shot5.tsv" --head $h --metric $m -o "$d/$h.safetensors"
            assert_success
            tl predict -q -m "$d/$h.safetensors" --format eval "$(F f12test.tsv)" >"$d/p.tsv"
            run ref prototype "$d/shot5.tsv" "$(F f12test.tsv)" "$d/p.tsv" "$d/$h.safetensors"
            echo "$output"
            assert_success
        done
    done
    # kNN's vote fractions are probabilities, NCM's similarities decision values
    head -1 "$d/p.tsv" | grep -q $'^#path\ttrue\tpred\t' || fail "knn: $(head -1 "$d/p.tsv")"
    tl finetune -q "$d/shot5.tsv" --head ncm -o "$d/ncm.safetensors"
    tl predict -q -m "$d/ncm.safetensors" --format eval "$(F f12test.tsv)" | head -1 | grep -q 'pred:decision' ||
        fail "ncm scores are not marked as decision values"
    tl finetune -q "$d/shot5.tsv" -o "$d/logreg.safetensors"
    for h in ncm knn logreg; do
        acc=$(tl eval -q --json -m "$d/$h.safetensors" "$(F f12test.tsv)" | sed 's/.*"accuracy":\([^,]*\).*/\1/')
        echo "# 5-shot flowers12, MobileNetV1 0.25/128 features: $h $acc" >&3
        float_ge "$acc" 0.3 || fail "$h: accuracy $acc (chance is 0.083)"
    done
}

@test "few-shot heads: usage errors" {
    local d=$BATS_TEST_TMPDIR
    run --separate-stderr tl finetune "$(F blobs_train.tsv)" --head knn -C 2 -o "$d/h.safetensors"
    assert_failure 2
    [[ "$stderr" == *"--C applies to logreg and svm heads, not --head knn"* ]] || fail "$stderr"
    run --separate-stderr tl finetune "$(F blobs_train.tsv)" --metric euclidean -o "$d/h.safetensors"
    assert_failure 2
    run --separate-stderr tl finetune "$(F blobs_train.tsv)" --head ncm --neighbours 3 -o "$d/h.safetensors"
    assert_failure 2
    run --separate-stderr tl finetune "$(F blobs_train.tsv)" --head knn --neighbours 3 -o "$d/h.safetensors"
    assert_success
    [[ "$stderr" == *"3 nearest neighbours (cosine)"* ]] || fail "$stderr"
    run --separate-stderr tl eval -m "$d/h.safetensors" "$(F blobs_test.tsv)"
    assert_success
    assert_line --regexp '^accuracy +(1\.0000|0\.9[0-9]{3})'
}

@test "tl-search: the K nearest equal brute force (cosine and Euclidean), streamed through a pipe in small blocks" {
    real_data
    local d=$BATS_TEST_TMPDIR m
    head -80 "$(F f12test.tsv)" >"$d/queries.tsv"
    for m in cosine euclidean; do
        cat "$(F f12train.tsv)" | tl search -q -k 4 --metric $m --block 37 --queries "$d/queries.tsv" - >"$d/out.tsv"
        run ref search "$(F f12train.tsv)" "$d/queries.tsv" "$d/out.tsv" 4 $m
        echo "$output"
        assert_success
    done
    # the block size and the thread count change nothing
    tl search -q -k 4 --block 256 -j 1 --queries "$d/queries.tsv" "$(F f12train.tsv)" >"$d/a.tsv"
    tl search -q -k 4 --block 5 -j 3 --queries "$d/queries.tsv" "$(F f12train.tsv)" >"$d/b.tsv"
    cmp "$d/a.tsv" "$d/b.tsv"
    # image queries go through the model and layer the index names
    printf '%s\tdaisy\n' "$TL_SHARED/datasets/flowers12/test/daisy/image_0804.jpg" >"$d/q.tsv"
    run --separate-stderr tl search -k 2 "$(F f12train.tsv)" "$d/q.tsv"
    assert_success
    assert_line --index 1 --regexp $'image_0804\\.jpg\t1\t.*/train/[a-z-]+/image_[0-9]+\\.jpg\t[a-z-]+\t0\\.[0-9]{6}$'
    [[ "$stderr" == *"precision@2 "* ]] || fail "$stderr"
}

@test "tl-search on generated vectors: --exclude-self, a labelled set against itself, errors" {
    local d=$BATS_TEST_TMPDIR
    run --separate-stderr tl search -k 3 --exclude-self --queries "$(F blobs_train.tsv)" "$(F blobs_train.tsv)"
    assert_success
    assert_equal "$(printf '%s\n' "$output" | grep -vc '^#')" 270
    # nobody is its own neighbour
    printf '%s\n' "$output" | awk -F'\t' 'NR > 1 && $1 == $3 { bad = 1 } END { exit bad }' || fail "self in results"
    [[ "$stderr" == *"precision@3 "* ]] || fail "$stderr"
    run --separate-stderr tl search -k 3 --queries "$(F blobs_train.tsv)" "$(F blobs_train.tsv)"
    printf '%s\n' "$output" | awk -F'\t' '$2 == 1 && $1 != $3 { bad = 1 } END { exit bad }' ||
        fail "a vector is not its own nearest neighbour"
    gen_blobs "$d/other.tsv" 5 10 4 2 3
    run --separate-stderr tl search --queries "$d/other.tsv" "$(F blobs_train.tsv)"
    assert_failure 1
    [[ "$stderr" == *"4 values per vector"* ]] || fail "$stderr"
    run --separate-stderr tl search --queries - - </dev/null
    assert_failure 2
    run --separate-stderr tl search "$(F blobs_train.tsv)"
    assert_failure 2
    run --separate-stderr tl search -o "$d/out.tsv" -k 1 --queries "$(F blobs_test.tsv)" "$(F blobs_train.tsv)"
    assert_success
    [ "$(wc -l <"$d/out.tsv")" = 46 ] || fail "$(wc -l <"$d/out.tsv") lines"
}
