#!/usr/bin/env bats
# Integration: tl-extract on real photos (hymenoptera ants and bees from
# ../shared), the feature formats it writes, pipes into tl-eval, damaged
# streams, heads used on images, and the full ants-vs-bees transfer.
# Skipped when ../shared is absent.

load helpers

setup_file() {
    have_shared || return 0
    local d=$BATS_FILE_TMPDIR
    convert_model mobilenet_v2_1.0_224_quant "$d/mv2.safetensors"
    subset_manifest "$d/sub.tsv" train 10        # 10 ants + 10 bees
    subset_manifest "$d/subval.tsv" val 5         # 5 + 5, for heads
    tl extract -q -m "$d/mv2.safetensors" "$d/sub.tsv" -o "$d/sub.tlf"
    tl finetune -q "$d/sub.tlf" -o "$d/head.safetensors"
}

setup() {
    need_shared
    D=$BATS_FILE_TMPDIR
    MV2=$D/mv2.safetensors
}

@test "the subset manifest has 20 images of two classes" {
    assert_equal "$(wc -l <"$D/sub.tsv")" 20
    assert_equal "$(cut -f2 "$D/sub.tsv" | sort -u | tr '\n' ' ')" "ants bees "
}

@test "tl-extract -f tsv: 20 rows of path, label and 1280 values, with a header" {
    run --separate-stderr tl extract -m "$MV2" -f tsv "$D/sub.tsv" -o "$BATS_TEST_TMPDIR/f.tsv"
    assert_success
    [[ "$stderr" == *"20 images, 2 classes, layer avgpool (1280 values per image)"* ]] || fail "$stderr"
    local f=$BATS_TEST_TMPDIR/f.tsv
    assert_equal "$(head -1 "$f")" "$(printf '#tl-features\t1')"
    grep -qx "$(printf '#dim\t1280')" "$f"
    grep -qx "$(printf '#layer\tavgpool')" "$f"
    grep -qxF "$(printf '#classes\t["ants","bees"]')" "$f"
    assert_equal "$(grep -vc '^#' "$f")" 20
    grep -v '^#' "$f" | awk -F'\t' 'NF != 1282 { print "row " NR ": " NF " fields"; exit 1 }
        { for (i = 3; i <= NF; i++) if ($i < 0) { print "negative after ReLU6 + pooling: " $i; exit 1 } }'
    # Rows keep the manifest's order and labels.
    diff <(grep -v '^#' "$f" | cut -f1,2) "$D/sub.tsv"
}

@test "tl-extract -f npy: a float32 (20, 1280) matrix" {
    local f=$BATS_TEST_TMPDIR/f.npy
    run --separate-stderr tl extract -q -m "$MV2" -f npy "$D/sub.tsv" -o "$f"
    assert_success
    [ "$(head -c 6 "$f" | od -An -c | tr -d ' ')" = '223NUMPY' ] || fail "magic: $(head -c 6 "$f" | od -An -c)"
    local hlen
    hlen=$(od -An -tu2 -j8 -N2 "$f" | tr -d ' ')
    head -c $((10 + hlen)) "$f" | tail -c "$hlen" | grep -q "'descr': '<f4', 'fortran_order': False, 'shape': (20, 1280)"
    assert_equal "$(stat -c %s "$f")" $((10 + hlen + 20 * 1280 * 4))
    assert_equal $(((10 + hlen) % 64)) 0
    if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
        run /usr/bin/python3 -c 'import numpy, sys; a = numpy.load(sys.argv[1]); print(a.shape, a.dtype, bool((a >= 0).all()))' "$f"
        assert_output "(20, 1280) float32 True"
    fi
}

@test "tl-extract -f tlf: the size matches 20 records of 1280 floats" {
    local f=$D/sub.tlf
    [ "$(head -c 4 "$f")" = TLF1 ]
    local hlen paths
    hlen=$(od -An -tu4 -j4 -N4 "$f" | tr -d ' ')
    paths=$(cut -f1 "$D/sub.tsv" | tr -d '\n' | wc -c)
    # header + CRC, 20 x (tag, label, path length, path, vector, CRC), end record
    assert_equal "$(stat -c %s "$f")" $((8 + hlen + 4 + 20 * (1 + 4 + 4 + 1280 * 4 + 4) + paths + 13))
    head -c $((8 + hlen)) "$f" | tail -c "$hlen" >"$BATS_TEST_TMPDIR/h.json"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/h.json" "d['dim']")" 1280
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/h.json" "d['classes']")" "['ants', 'bees']"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/h.json" "d['layer']")" avgpool
}

@test "the three formats hold the same vectors (a head scores them identically)" {
    local t=$BATS_TEST_TMPDIR
    tl extract -q -m "$MV2" -f tsv "$D/sub.tsv" -o "$t/f.tsv"
    tl extract -q -m "$MV2" -f npy "$D/sub.tsv" -o "$t/f.npy"
    tl predict -m "$D/head.safetensors" --no-header "$D/sub.tlf" | cut -f2- >"$t/p.tlf"
    tl predict -m "$D/head.safetensors" --no-header "$t/f.tsv" | cut -f2- >"$t/p.tsv"
    tl predict -m "$D/head.safetensors" --no-header "$t/f.npy" | cut -f2- >"$t/p.npy"
    assert_equal "$(wc -l <"$t/p.tlf")" 20
    diff "$t/p.tlf" "$t/p.tsv"
    diff "$t/p.tlf" "$t/p.npy"
    # A head trained on the TSV is the head trained on the TLF.
    tl finetune -q "$t/f.tsv" -o "$t/h2.st"
    diff <(tl predict -m "$t/h2.st" "$D/sub.tlf") <(tl predict -m "$D/head.safetensors" "$D/sub.tlf")
}

@test "extraction is deterministic across thread counts and batch sizes" {
    local t=$BATS_TEST_TMPDIR
    tl extract -q -m "$MV2" -j 1 -b 3 "$D/sub.tsv" -o "$t/a.tlf"
    cmp "$t/a.tlf" "$D/sub.tlf"
}

@test "the pipe: tl-extract ... -o - | tl-eval -m head - (and tl-predict --features -)" {
    run --separate-stderr bash -c '"$TL_BIN/tl-extract" -q -m "$1" "$2" -o - | "$TL_BIN/tl-eval" -m "$3" --json -' _ \
        "$MV2" "$D/subval.tsv" "$D/head.safetensors"
    assert_success
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/e.json"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/e.json" "d['n']")" 10
    local piped file
    piped=$(json_get "$BATS_TEST_TMPDIR/e.json" "d['correct']")
    file=$(tl extract -q -m "$MV2" "$D/subval.tsv" -o "$BATS_TEST_TMPDIR/v.tlf" &&
        tl eval -q -m "$D/head.safetensors" --json "$BATS_TEST_TMPDIR/v.tlf" | grep -o '"correct":[0-9]*' | cut -d: -f2)
    assert_equal "$piped" "$file"
    # Even 20 training images separate ants from bees better than chance.
    [ "$piped" -ge 7 ] || fail "only $piped of 10 correct"
    run --separate-stderr bash -c '"$TL_BIN/tl-extract" -q -m "$1" -f tsv "$2" | "$TL_BIN/tl-predict" -m "$3" --features -k 1 --no-header -' _ \
        "$MV2" "$D/subval.tsv" "$D/head.safetensors"
    assert_success
    assert_equal "${#lines[@]}" 10
}

@test "a head on images goes through the backbone its features came from" {
    run --separate-stderr tl info "$D/head.safetensors"
    assert_line --regexp "^features +$MV2, layer avgpool$"
    # Images directly, or their features: the same answers.
    diff <(tl predict -q -m "$D/head.safetensors" "$D/subval.tsv") \
        <(tl extract -q -m "$MV2" "$D/subval.tsv" | tl predict -q -m "$D/head.safetensors" --features -)
    diff <(tl eval -q -m "$D/head.safetensors" --json "$D/subval.tsv" | sed 's/,"model".*//') \
        <(tl extract -q -m "$MV2" "$D/subval.tsv" | tl eval -q -m "$D/head.safetensors" --json - | sed 's/,"model".*//')
}

@test "--layer features.13 gives 96 pooled values; --no-pool gives 96*14*14" {
    local t=$BATS_TEST_TMPDIR
    head -n 2 "$D/sub.tsv" >"$t/two.tsv"
    run --separate-stderr tl extract -m "$MV2" --layer features.13 -f tsv "$t/two.tsv" -o "$t/p.tsv"
    assert_success
    grep -qx "$(printf '#dim\t96')" "$t/p.tsv"
    grep -qx "$(printf '#layer\tfeatures.13')" "$t/p.tsv"
    grep -v '^#' "$t/p.tsv" | awk -F'\t' 'NF != 98 { print NF; exit 1 }'
    run --separate-stderr tl extract -m "$MV2" --layer features.13 --no-pool -f tsv "$t/two.tsv" -o "$t/s.tsv"
    assert_success
    grep -qx "$(printf '#dim\t18816')" "$t/s.tsv"
    grep -v '^#' "$t/s.tsv" | awk -F'\t' 'NF != 18818 { print NF; exit 1 }'
    # The pooled vector is the mean of each channel's 14x14 map.
    paste <(grep -v '^#' "$t/p.tsv" | head -1 | cut -f3- | tr '\t' '\n') \
        <(grep -v '^#' "$t/s.tsv" | head -1 | cut -f3- | tr '\t' '\n' | awk '{ s += $1 } NR % 196 == 0 { print s / 196; s = 0 }') |
        awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-4 * (1 + ($1 < 0 ? -$1 : $1))) { print "channel " NR ": " $1 " vs " $2; exit 1 } }'
}

@test "--layer logits gives the 1001 classifier outputs" {
    head -n 1 "$D/sub.tsv" >"$BATS_TEST_TMPDIR/one.tsv"
    run --separate-stderr tl extract -q -m "$MV2" --layer logits -f tsv "$BATS_TEST_TMPDIR/one.tsv"
    assert_success
    assert_line $'#dim\t1001'
}

@test "--layer nonsense: a usage error (exit 2) naming the layer, as --freeze-until's, no output" {
    run --separate-stderr tl extract -m "$MV2" --layer nonsense "$D/sub.tsv" -o "$BATS_TEST_TMPDIR/x.tlf"
    assert_failure 2
    assert_equal "$stderr" "tl-extract: --layer: no layer 'nonsense' in mobilenet_v2 (tl-info MODEL lists the layers) (see tl-extract --help)"
    assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 1
    [ ! -e "$BATS_TEST_TMPDIR/x.tlf" ]
}

@test "a list of image paths on standard input: unlabelled vectors" {
    run --separate-stderr bash -c 'head -n 4 "$1" | cut -f1 | "$TL_BIN/tl-extract" -q -m "$2" -f tsv -' _ "$D/sub.tsv" "$MV2"
    assert_success
    refute_line --regexp '^#classes'
    assert_equal "$(printf '%s\n' "$output" | grep -vc '^#')" 4
    # No label column value: path, empty label, 1280 values.
    printf '%s\n' "$output" | grep -v '^#' | awk -F'\t' '$2 != "" || NF != 1282 { print "row " NR; exit 1 }'
    # ...which tl-finetune refuses to train on.
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/u.tsv"
    run --separate-stderr tl finetune "$BATS_TEST_TMPDIR/u.tsv" -o "$BATS_TEST_TMPDIR/h.st"
    assert_failure 1
    [[ "$stderr" == *"no label"* ]] || fail "$stderr"
}

@test "a class-folder tree is a data set: classes from folder names" {
    local t=$BATS_TEST_TMPDIR/tree
    mkdir -p "$t/ants" "$t/bees"
    for f in $(grep ants "$D/sub.tsv" | head -2 | cut -f1); do ln -s "$f" "$t/ants/"; done
    for f in $(grep bees "$D/sub.tsv" | head -3 | cut -f1); do ln -s "$f" "$t/bees/"; done
    run --separate-stderr tl extract -m "$MV2" -f tsv "$t" -o "$BATS_TEST_TMPDIR/t.tsv"
    assert_success
    grep -qxF "$(printf '#classes\t["ants","bees"]')" "$BATS_TEST_TMPDIR/t.tsv"
    assert_equal "$(grep -v '^#' "$BATS_TEST_TMPDIR/t.tsv" | cut -f2 | sort | uniq -c | awk '{ print $1 $2 }' | tr '\n' ' ')" "2ants 3bees "
}

@test "--skip-bad with a corrupt image in the list: warning, 'skipped 1', exit 0" {
    local t=$BATS_TEST_TMPDIR
    noise_bytes 5000 broken.jpg >"$t/broken.jpg"
    { head -n 3 "$D/sub.tsv"; printf '%s\tants\n' "$t/broken.jpg"; tail -n 2 "$D/sub.tsv"; } >"$t/m.tsv"
    run --separate-stderr tl extract -m "$MV2" "$t/m.tsv" -o "$t/x.tlf"
    assert_failure 1
    [[ "$stderr" == *"tl-extract: $t/broken.jpg: "* ]] || fail "$stderr"
    [ ! -e "$t/x.tlf" ]
    no_files_like "$t" 'x.tlf*'
    run --separate-stderr tl extract --skip-bad -m "$MV2" "$t/m.tsv" -o "$t/x.tlf"
    assert_success
    [[ "$stderr" == *"broken.jpg"* ]] || fail "$stderr"
    [[ "$stderr" == *"skipped 1 unreadable image"* ]] || fail "$stderr"
    run --separate-stderr tl predict -m "$D/head.safetensors" --no-header -k 1 "$t/x.tlf"
    assert_success
    assert_equal "${#lines[@]}" 5
    [[ "$output" != *broken.jpg* ]] || fail "$output"
}

@test "a .tlf cut by head -c: tl-eval and tl-finetune report it truncated" {
    local t=$BATS_TEST_TMPDIR size
    size=$(stat -c %s "$D/sub.tlf")
    head -c $((size * 2 / 3)) "$D/sub.tlf" >"$t/cut.tlf"
    run --separate-stderr tl eval -m "$D/head.safetensors" "$t/cut.tlf"
    assert_failure 1
    [[ "$stderr" == "tl-eval: $t/cut.tlf: "*"truncated"* ]] || fail "$stderr"
    run --separate-stderr tl finetune "$t/cut.tlf" -o "$t/h.st"
    assert_failure 1
    [[ "$stderr" == "tl-finetune: $t/cut.tlf: "*"truncated"* ]] || fail "$stderr"
    [ ! -e "$t/h.st" ]
    run --separate-stderr bash -c '"$TL_BIN/tl-eval" -m "$1" - <"$2"' _ "$D/head.safetensors" "$t/cut.tlf"
    assert_failure 1
    [[ "$stderr" == *"truncated"* ]] || fail "$stderr"
}

@test "a .tlf with one flipped byte in a record: CRC mismatch" {
    local t=$BATS_TEST_TMPDIR size
    size=$(stat -c %s "$D/sub.tlf")
    cp "$D/sub.tlf" "$t/flip.tlf"
    flip_byte "$t/flip.tlf" $((size / 2))
    run --separate-stderr tl eval -m "$D/head.safetensors" "$t/flip.tlf"
    assert_failure 1
    [[ "$stderr" == "tl-eval: $t/flip.tlf: "*"CRC mismatch"* ]] || fail "$stderr"
    run --separate-stderr tl finetune "$t/flip.tlf" -o "$t/h.st"
    assert_failure 1
    [[ "$stderr" == *"CRC mismatch"* ]] || fail "$stderr"
    [ ! -e "$t/h.st" ]
}

@test "tl-extract into a folder that does not exist: exit 1 before any work" {
    run --separate-stderr tl extract -q -m "$MV2" "$D/sub.tsv" -o "$BATS_TEST_TMPDIR/no/dir/f.tlf"
    assert_failure 1
    [[ "$stderr" == "tl-extract: $BATS_TEST_TMPDIR/no/dir/f.tlf: "* ]] || fail "$stderr"
}

@test "tl-extract to a full disk (/dev/full as stdout): exit 1, clear message" {
    [ -w /dev/full ] || skip "/dev/full not available"
    head -n 2 "$D/sub.tsv" >"$BATS_TEST_TMPDIR/two.tsv"
    for fmt in tlf tsv npy; do
        run --separate-stderr bash -c '"$TL_BIN/tl-extract" -q -m "$1" -f "$2" "$3" >/dev/full' _ "$MV2" "$fmt" "$BATS_TEST_TMPDIR/two.tsv"
        assert_failure 1
        [[ "$stderr" == "tl-extract: "*"write"* ]] || fail "$fmt: '$stderr'"
    done
}

# The slow one (~10 s on 2 cores, longer under sanitizers): 398 images.
@test "[slow] full ants-vs-bees transfer: extract train+val, tl-finetune, tl-eval accuracy >= 0.93" {
    local t=$BATS_TEST_TMPDIR
    tl extract -q -m "$MV2" "$TL_HYM/train" -o "$t/train.tlf"
    tl extract -q -m "$MV2" "$TL_HYM/val" -o "$t/val.tlf"
    run --separate-stderr tl finetune --val "$t/val.tlf" "$t/train.tlf" -o "$t/head.st"
    assert_success
    [[ "$stderr" == *"validation accuracy"* ]] || fail "$stderr"
    run --separate-stderr tl eval -m "$t/head.st" --json "$t/val.tlf"
    assert_success
    printf '%s\n' "$output" >"$t/e.json"
    assert_equal "$(json_get "$t/e.json" "d['n']")" 153
    local acc
    acc=$(json_get "$t/e.json" "d['accuracy']")
    float_ge "$acc" 0.93 || fail "val accuracy $acc < 0.93"
}
