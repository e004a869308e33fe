#!/usr/bin/env bats
# Durability (issue 8): outputs appear complete or not at all. SIGKILL at
# seeded random moments of tl-finetune and tl-extract -o, SIGINT and
# --resume reaching bit-identical weights, a non-finite loss, a full disk,
# two runs racing for one output name. Self-contained: tiny generated
# images (noisy red vs blue 32x32 PPMs) and a scratch small_cnn.
#
# What a killed writer may leave: NAME.tmp.XXXXXX (lib/core/outfile.c
# writes there, fsyncs, then renames over NAME). Nothing else.

load helpers


# manifest DIR REPEAT: path<TAB>label for each image of DIR, REPEAT times.
manifest() {
    local k f
    for ((k = 0; k < $2; k++)); do
        for f in "$1"/*/*.ppm; do printf '%s\t%s\n' "$f" "$(basename "$(dirname "$f")")"; done
    done
}

setup_file() {
    local d=$BATS_FILE_TMPDIR
    gen_ppms "$d/train" 1 24
    gen_ppms "$d/val" 2 8
    tl finetune -q --scratch --arch small_cnn --input-size 32 "$d/train" --val-split 0 --epochs 1 --batch 8 -j 1 \
        -o "$d/net.safetensors"
    manifest "$d/train" 1 >"$d/small.tsv"
    manifest "$d/train" 40 >"$d/big.tsv"
    manifest "$d/val" 20 >"$d/bigval.tsv"
    tl extract -q -m "$d/net.safetensors" -j 1 "$d/small.tsv" -o "$d/small.tlf"
    tl finetune -q "$d/small.tlf" -o "$d/head.safetensors"
}

F() { printf '%s/%s' "$BATS_FILE_TMPDIR" "$1"; }
PY=/usr/bin/python3
need_py() { [ -x $PY ] || skip "no /usr/bin/python3"; }
# Under the sanitizers every run is several times slower: fewer repeats.
reps() { if [ -n "${TL_SANITIZE:-}" ]; then echo "$2"; else echo "$1"; fi; }

# st_complete FILE: a structurally complete safetensors file (header JSON,
# every tensor's byte count = shape x dtype, offsets tile the data exactly
# up to the end of the file).
st_complete() {
    $PY - "$1" <<'PY'
import json, struct, sys
data = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', data[:8])[0]
h = json.loads(data[8:8 + n])
size = {'F32': 4, 'F16': 2, 'BF16': 2, 'I64': 8, 'I32': 4, 'U8': 1, 'I8': 1, 'F64': 8}
spans = []
for k, v in h.items():
    if k == '__metadata__':
        continue
    a, b = v['data_offsets']
    cnt = 1
    for s in v['shape']:
        cnt *= s
    assert b - a == cnt * size[v['dtype']], k
    spans.append((a, b))
spans.sort()
pos = 0
for a, b in spans:
    assert a == pos, 'gap or overlap'
    pos = b
assert 8 + n + pos == len(data), 'size %d != %d' % (8 + n + pos, len(data))
PY
}

# tlf_rows FILE: the number of vectors in a complete, valid feature file
# (tl-eval reads every record and checks CRCs and the end record).
tlf_rows() { tl eval -q --json -m "$(F head.safetensors)" "$1" | sed -n 's/^{"n":\([0-9]*\),.*/\1/p'; }

# only_expected DIR NAME...: DIR holds only the NAMEs and NAME.tmp.XXXXXX files.
only_expected() {
    local dir=$1 f ok n
    shift
    for f in "$dir"/* "$dir"/.[!.]*; do
        [ -e "$f" ] || continue
        ok=0
        for n in "$@"; do
            case $(basename "$f") in "$n" | "$n".tmp.??????) ok=1 ;; esac
        done
        [ $ok = 1 ] || { echo "unexpected file: $f" >&2; return 1; }
    done
}

# wait_reports LOG N: until LOG holds N epoch reports (train or val lines;
# at most ~60 s).
wait_reports() {
    local i
    for ((i = 0; i < 6000; i++)); do
        [ -f "$1" ] && [ "$(grep -c '"phase":"\(train\|val\)"' "$1")" -ge "$2" ] && return 0
        sleep 0.01
    done
    return 1
}

# The training run every resume test compares against: augmentation,
# dropout, AdamW, validation, a schedule with warm-up.
TRAIN_ARGS=(--scratch --arch small_cnn --input-size 32 --epochs 6 --batch 8 -j 1 --seed 7 --optimizer adamw
    --dropout 0.3 --augment 'rrc(scale=0.5:1),hflip')

# strip_times LOG: the log without its wall-clock fields and without the
# lines that open each run (they name the output).
strip_times() {
    grep -v '"phase":"start"' "$1" | sed -e 's/,"seconds":[0-9.e+-]*//' -e 's/,"images_per_s":[0-9.e+-]*//'
}

reference_run() {
    [ -f "$(F ref.safetensors)" ] && return 0
    tl finetune -q "${TRAIN_ARGS[@]}" "$(F train)" --val "$(F val)" --log "$(F ref.jsonl)" -o "$(F ref.safetensors)"
}

@test "SIGKILL of tl-finetune at random moments: the checkpoint is absent or complete, never truncated" {
    need_py
    local d=$BATS_TEST_TMPDIR/kill i pid delay n
    mkdir -p "$d"
    RANDOM=8101
    n=$(reps 8 3)
    for ((i = 0; i < n; i++)); do
        # between 0.05 and 2.5 s: before the first epoch ends, while
        # checkpoints are written, and during later epochs
        delay=$(printf '0.%02d' $((5 + RANDOM % 95)))
        [ $((RANDOM % 2)) = 1 ] && delay=$(awk -v a="$delay" 'BEGIN { print a + 1.5 }')
        "$TL_BIN/tl-finetune" -q --scratch --arch small_cnn --input-size 32 "$(F train)" --val "$(F val)" \
            --epochs 30 --batch 8 -j 1 --seed $i -o "$d/net.safetensors" 2>/dev/null &
        pid=$!
        sleep "$delay"
        kill -KILL $pid 2>/dev/null || true
        wait $pid || true
        if [ -e "$d/net.safetensors" ]; then
            st_complete "$d/net.safetensors" || fail "kill $i after ${delay}s: net.safetensors is not complete"
            run tl info "$d/net.safetensors"
            assert_success
        fi
        if [ -e "$d/net.resume.safetensors" ]; then
            st_complete "$d/net.resume.safetensors" || fail "kill $i after ${delay}s: the resume state is not complete"
        fi
        # the run's lock may stay after SIGKILL (the kernel released it; the
        # next run on this output reuses it)
        only_expected "$d" net.safetensors net.resume.safetensors net.safetensors.lock
        rm -f "$d"/net.*
    done
}

@test "SIGKILL of tl-extract -o at random moments: no file, or a complete one (also over an older output)" {
    local d=$BATS_TEST_TMPDIR/kill i pid delay n rows total
    mkdir -p "$d"
    total=$(wc -l <"$(F big.tsv)")
    RANDOM=8102
    n=$(reps 8 3)
    for ((i = 0; i < n; i++)); do
        delay=$(printf '0.%02d' $((2 + RANDOM % 98)))
        # every other time an older, smaller output is already in place
        [ $((i % 2)) = 1 ] && cp "$(F small.tlf)" "$d/out.tlf"
        "$TL_BIN/tl-extract" -q -m "$(F net.safetensors)" -j 1 "$(F big.tsv)" -o "$d/out.tlf" &
        pid=$!
        sleep "$delay"
        kill -KILL $pid 2>/dev/null || true
        wait $pid || true
        if [ -e "$d/out.tlf" ]; then
            rows=$(tlf_rows "$d/out.tlf") || fail "kill $i after ${delay}s: out.tlf does not read back"
            [ "$rows" = 48 ] || [ "$rows" = "$total" ] || fail "kill $i: $rows rows"
        else
            [ $((i % 2)) = 0 ] || fail "kill $i: the older output vanished"
        fi
        only_expected "$d" out.tlf
        rm -f "$d"/out.*
    done
}

@test "SIGINT at random moments, then --resume: weights and log bit-identical to an uninterrupted run (-j 1)" {
    need_py
    reference_run
    local d=$BATS_TEST_TMPDIR i pid st n lines
    RANDOM=8103
    n=$(reps 3 1)
    for ((i = 0; i < n; i++)); do
        rm -f "$d"/int.*
        "$TL_BIN/tl-finetune" -q "${TRAIN_ARGS[@]}" "$(F train)" --val "$(F val)" --log "$d/int.jsonl" \
            -o "$d/int.safetensors" 2>"$d/int.err" &
        pid=$!
        # after 1..4 epoch reports (mid-way through epochs 1..3), plus up to 0.2 s
        lines=$((1 + RANDOM % 4))
        wait_reports "$d/int.jsonl" $lines || true
        sleep "0.$((RANDOM % 20))"
        kill -INT $pid
        st=0
        wait $pid || st=$?
        assert_equal "$st" 130
        [ -f "$d/int.resume.safetensors" ]
        run tl finetune -q "${TRAIN_ARGS[@]}" "$(F train)" --val "$(F val)" --log "$d/int.jsonl" \
            -o "$d/int.safetensors" --resume
        assert_success
        [ ! -e "$d/int.resume.safetensors" ]
        cmp "$(F ref.safetensors)" "$d/int.safetensors" || fail "interrupt $i (after $lines reports): other weights"
        diff <(strip_times "$(F ref.jsonl)") <(strip_times "$d/int.jsonl") || fail "interrupt $i: other losses"
    done
}

@test "SIGINT during validation: the epoch's validation completes, --resume reaches the same weights" {
    need_py
    local d=$BATS_TEST_TMPDIR pid st last
    local args=(--scratch --arch small_cnn --input-size 32 --epochs 2 --batch 8 -j 1 --seed 9 --augment hflip)
    tl finetune -q "${args[@]}" "$(F train)" --val "$(F bigval.tsv)" --log "$d/ref.jsonl" -o "$d/ref.safetensors"
    "$TL_BIN/tl-finetune" -q "${args[@]}" "$(F train)" --val "$(F bigval.tsv)" --log "$d/int.jsonl" \
        -o "$d/int.safetensors" 2>/dev/null &
    pid=$!
    # the first line is epoch 1's train report: validation over 320 images follows
    wait_reports "$d/int.jsonl" 1
    last=$(tail -n 1 "$d/int.jsonl")
    kill -INT $pid
    st=0
    wait $pid || st=$?
    assert_equal "$st" 130
    [[ $last == *'"phase":"train"'* ]] || skip "the interrupt came after validation (a slow machine): nothing tested"
    # validation of epoch 1 finished and was logged
    grep -q '"epoch":1,"phase":"val"' "$d/int.jsonl"
    run tl finetune -q "${args[@]}" "$(F train)" --val "$(F bigval.tsv)" --log "$d/int.jsonl" -o "$d/int.safetensors" --resume
    assert_success
    cmp "$d/ref.safetensors" "$d/int.safetensors"
    diff <(strip_times "$d/ref.jsonl") <(strip_times "$d/int.jsonl")
}

@test "SIGKILL mid-epoch, then --resume from the last epoch's state: the same final weights" {
    need_py
    reference_run
    local d=$BATS_TEST_TMPDIR pid
    "$TL_BIN/tl-finetune" -q "${TRAIN_ARGS[@]}" "$(F train)" --val "$(F val)" -o "$d/k.safetensors" 2>/dev/null &
    pid=$!
    # the resume state of epoch 1 exists, epoch 2 or 3 is under way
    for _ in $(seq 3000); do [ -f "$d/k.resume.safetensors" ] && break; sleep 0.01; done
    sleep 0.15
    kill -KILL $pid
    wait $pid || true
    [ -f "$d/k.resume.safetensors" ]
    run tl finetune -q "${TRAIN_ARGS[@]}" "$(F train)" --val "$(F val)" -o "$d/k.safetensors" --resume
    assert_success
    cmp "$(F ref.safetensors)" "$d/k.safetensors"
}

@test "--resume without saved state says so and exits 1" {
    run --separate-stderr tl finetune -q "${TRAIN_ARGS[@]}" "$(F train)" --val "$(F val)" \
        -o "$BATS_TEST_TMPDIR/none.safetensors" --resume
    assert_failure 1
    [[ $stderr == *none.resume.safetensors* ]]
    assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 1
}

# finite_st FILE: every F32 tensor of a safetensors file is finite.
finite_st() {
    $PY -c '
import json, struct, sys, math
d = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", d[:8])[0]; h = json.loads(d[8:8 + n])
for k, v in h.items():
    if k != "__metadata__" and v["dtype"] == "F32":
        a, b = v["data_offsets"]
        vals = struct.unpack("<%df" % ((b - a) // 4), d[8 + n + a:8 + n + b])
        assert all(math.isfinite(x) for x in vals), k' "$1"
}

# diverge OUT WD: a run whose weights blow up (lr 100, weight decay WD, no
# schedule); expects exit 1 and the one-line divergence message.
diverge() {
    run --separate-stderr tl finetune -q --scratch --arch small_cnn --input-size 32 "$(F train)" --val "$(F val)" \
        --epochs 30 --batch 8 -j 1 --seed 3 --lr 100 --weight-decay "$2" --schedule constant -o "$1"
    assert_failure 1
    assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 1
    [[ $stderr =~ ^tl-finetune:\ epoch\ [0-9]+:\ .*(loss\ is\ [-a-z]+|non-finite|not\ finite).*\;\ (the\ best\ checkpoint\ so\ far\ is\ intact|no\ checkpoint\ was\ written)$ ]] ||
        fail "message: $stderr"
}

@test "a diverging run stops: one-line message, exit 1, the checkpoint on disk intact, finite and usable" {
    need_py
    local d=$BATS_TEST_TMPDIR before
    # 1. blows up within the first epoch: the older checkpoint under the
    #    output name is left byte for byte
    cp "$(F net.safetensors)" "$d/old.safetensors"
    before=$(cksum <"$d/old.safetensors")
    diverge "$d/old.safetensors" 0.3
    assert_equal "$(cksum <"$d/old.safetensors")" "$before"
    # 2. blows up later (the weights shrink-and-flip each step, batch-norm
    #    statistics overflow): the best checkpoint written before is finite
    diverge "$d/nan.safetensors" 0.05
    [ -f "$d/nan.safetensors" ] || skip "diverged in epoch 1 on this build: nothing more to check"
    finite_st "$d/nan.safetensors"
    run tl info "$d/nan.safetensors"
    assert_success
    run tl eval -q -m "$d/nan.safetensors" "$(F val)"
    assert_success
    assert_line --regexp '^accuracy '
}

@test "-o /dev/full: a clear message and exit 1 (tl-finetune, tl-extract, a head, tl-augment)" {
    local d=$BATS_TEST_TMPDIR
    run --separate-stderr tl finetune -q --scratch --arch small_cnn --input-size 32 "$(F train)" --val "$(F val)" \
        --epochs 1 --batch 8 -j 1 -o /dev/full
    assert_failure 1
    [[ $stderr == *"/dev/full: write failed: No space left on device"* ]] || fail "$stderr"
    run --separate-stderr tl extract -q -m "$(F net.safetensors)" -j 1 "$(F small.tsv)" -o /dev/full
    assert_failure 1
    [[ $stderr == *"No space left on device"* ]] || fail "$stderr"
    # standard output on a full device
    run --separate-stderr bash -c '"$1" -q -m "$2" -j 1 "$3" >/dev/full' _ "$TL_BIN/tl-extract" "$(F net.safetensors)" "$(F small.tsv)"
    assert_failure 1
    [[ $stderr == tl-extract:*"write failed"* ]] || fail "$stderr"
    run --separate-stderr tl finetune -q "$(F small.tlf)" -o /dev/full
    assert_failure 1
    [[ $stderr == *"No space left on device"* ]] || fail "$stderr"
    run --separate-stderr tl augment -q -n 1 --size 32 --manifest /dev/full -o "$d/aug" "$(F small.tsv)"
    assert_failure 1
    [[ $stderr == *"No space left on device"* ]] || fail "$stderr"
}

@test "a full tmpfs (64 KiB): exit 1, a clear message, no file with the final name and no temporary left" {
    [ "$(id -u)" = 0 ] || skip "mounting a small tmpfs needs root"
    local m=$BATS_TEST_TMPDIR/full
    mkdir -p "$m"
    mount -t tmpfs -o size=64k tmpfs "$m" 2>/dev/null || skip "cannot mount a tmpfs here"
    # the checkpoint (1.1 MB) does not fit
    run --separate-stderr tl finetune -q --scratch --arch small_cnn --input-size 32 "$(F train)" --val "$(F val)" \
        --epochs 1 --batch 8 -j 1 -o "$m/net.safetensors"
    local st1=$status err1=$stderr
    # 1920 feature vectors of 128 floats (1 MB) do not fit either
    run --separate-stderr tl extract -q -m "$(F net.safetensors)" -j 1 "$(F big.tsv)" -o "$m/feat.tlf"
    local st2=$status err2=$stderr left
    left=$(ls -A "$m")
    umount "$m"
    assert_equal "$st1" 1
    [[ $err1 == *"net.safetensors: write failed: No space left on device"* ]] || fail "$err1"
    assert_equal "$st2" 1
    [[ $err2 == *"feat.tlf"*"No space left on device"* ]] || fail "$err2"
    assert_equal "$left" ""
}

@test "two runs racing for one output name (cron overlap): one complete file, never a mix" {
    local d=$BATS_TEST_TMPDIR i rows p1 p2 n kinds st
    manifest "$(F train)" 10 >"$d/a.tsv"
    manifest "$(F val)" 30 >"$d/b.tsv"
    # runs of 480 images started together overlap for seconds, so a writer
    # that is not atomic would mix them in nearly every round: two rounds
    # (one under the sanitizers)
    n=$(reps 2 1)
    for ((i = 0; i < n; i++)); do
        # two runs of 480 images each, different images: a mix would show
        rm -f "$d/race.tlf" "$d/race.tsv"
        "$TL_BIN/tl-extract" -q -m "$(F net.safetensors)" -j 1 "$d/a.tsv" -o "$d/race.tlf" & p1=$!
        "$TL_BIN/tl-extract" -q -m "$(F net.safetensors)" -j 1 "$d/b.tsv" -o "$d/race.tlf" & p2=$!
        wait $p1
        wait $p2
        rows=$(tlf_rows "$d/race.tlf")
        [ "$rows" = 480 ] || fail "race $i: $rows rows"
        "$TL_BIN/tl-extract" -q -m "$(F net.safetensors)" -j 1 -f tsv "$d/a.tsv" -o "$d/race.tsv" & p1=$!
        "$TL_BIN/tl-extract" -q -m "$(F net.safetensors)" -j 1 -f tsv "$d/b.tsv" -o "$d/race.tsv" & p2=$!
        wait $p1
        wait $p2
        # 480 rows of 130 fields, all from one of the two runs
        kinds=$(grep -v '^#' "$d/race.tsv" | awk -F'\t' 'NF != 130 { print "short"; next }
            { split($1, p, "/"); print p[length(p) - 2] }' | sort | uniq -c | awk '{ print $2 ":" $1 }' | tr '\n' ' ')
        [ "$kinds" = "train:480 " ] || [ "$kinds" = "val:480 " ] || fail "race $i: $kinds"
        only_expected "$d" race.tlf race.tsv a.tsv b.tsv
    done
    # and two trainings writing one checkpoint (and one resume state): one
    # run per output (a lock), so a run that overlaps another is refused at
    # once, naming the lock; whichever ran leaves a complete checkpoint and
    # neither its resume state nor the lock behind
    local s1=0 s2=0
    "$TL_BIN/tl-finetune" -q --scratch --arch small_cnn --input-size 32 "$(F train)" --val "$(F val)" --epochs 2 \
        --batch 8 -j 1 --seed 1 -o "$d/race.safetensors" 2>"$d/err1" & p1=$!
    "$TL_BIN/tl-finetune" -q --scratch --arch small_cnn --input-size 32 "$(F train)" --val "$(F val)" --epochs 2 \
        --batch 8 -j 1 --seed 2 -o "$d/race.safetensors" 2>"$d/err2" & p2=$!
    wait $p1 || s1=$?
    wait $p2 || s2=$?
    [ "$s1" = 0 ] || [ "$s2" = 0 ] || fail "both runs failed: $(cat "$d/err1" "$d/err2")"
    for i in 1 2; do
        st=$s1
        [ "$i" = 1 ] || st=$s2
        [ "$st" = 0 ] && continue
        assert_equal "$st" 1
        grep -q "race.safetensors: another run is writing this output" "$d/err$i" || fail "run $i: $(cat "$d/err$i")"
    done
    run tl info "$d/race.safetensors"
    assert_success
    [ ! -e "$d/race.safetensors.lock" ] && [ ! -e "$d/race.resume.safetensors" ]
    if [ -x $PY ]; then st_complete "$d/race.safetensors"; fi
}

# interrupt_at_fifo TOOL SIGNAL ARGS...: runs TOOL with a manifest whose
# second image is a FIFO, so the run blocks there, deterministically; sends
# SIGNAL, then feeds the FIFO so the run reaches its next safe point.
interrupt_at_fifo() {
    local tool=$1 sig=$2 d=$BATS_TEST_TMPDIR
    shift 2
    mkfifo "$d/slow.ppm"
    { head -1 "$(F small.tsv)"; printf '%s\tred\n' "$d/slow.ppm"; cat "$(F small.tsv)"; } >"$d/list.tsv"
    "$TL_BIN/tl-$tool" "$@" "$d/list.tsv" 2>"$d/err" &
    local pid=$!
    for _ in $(seq 100); do ls "$d"/out* >/dev/null 2>&1 && break; sleep 0.1; done
    sleep 0.5
    kill -"$sig" $pid
    cat "$(awk -F'\t' 'NR == 1 { print $1 }' "$(F small.tsv)")" >"$d/slow.ppm"
    local st=0
    wait $pid || st=$?
    echo "$st"
}

@test "SIGINT or SIGTERM: tl-extract removes its temporary file, says so, exits 130 or 143" {
    local d=$BATS_TEST_TMPDIR st
    st=$(interrupt_at_fifo extract INT -q -m "$(F net.safetensors)" -j 1 --batch 1 -o "$d/out.tlf")
    assert_equal "$st" 130
    grep -q '^tl-extract: interrupted (SIGINT); no output written, the temporary file removed$' "$d/err" ||
        fail "$(cat "$d/err")"
    [ ! -e "$d/out.tlf" ]
    no_files_like "$d" 'out.tlf.tmp.*'
    rm -f "$d/slow.ppm"
    st=$(interrupt_at_fifo extract TERM -q -m "$(F net.safetensors)" -j 1 --batch 1 -f tsv -o "$d/out.tsv")
    assert_equal "$st" 143
    grep -q 'interrupted (SIGTERM)' "$d/err"
    no_files_like "$d" 'out.tsv*'
}

@test "SIGINT: tl-augment stops after the current block, keeps complete copies, no manifest or temporaries" {
    local d=$BATS_TEST_TMPDIR st
    st=$(interrupt_at_fifo augment INT -q -n 1 --size 32 -j 1 -o "$d/out" --manifest "$d/out.tsv")
    assert_equal "$st" 130
    grep -q '^tl-augment: interrupted (SIGINT); 16 of 50 images done' "$d/err" || fail "$(cat "$d/err")"
    [ ! -e "$d/out.tsv" ]
    no_files_like "$d" 'out.tsv.tmp.*'
    [ -z "$(find "$d/out" -name '*.tmp.*')" ]
    [ "$(find "$d/out" -type f | wc -l)" -eq 16 ]
}
