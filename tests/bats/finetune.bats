#!/usr/bin/env bats
# tl-finetune on images: a tiny generated data set (noisy red vs blue
# squares, 32x32 PPM), a small CNN trained from scratch, then fine-tuned
# with frozen layers; the log, determinism, interruption and resume.
# Self-contained: no ../shared.

load helpers


setup_file() {
    local d=$BATS_FILE_TMPDIR
    gen_ppms "$d/train" 1 24
    gen_ppms "$d/val" 2 8
    tl finetune -q --scratch --arch small_cnn --input-size 32 "$d/train" --val "$d/val" --epochs 3 --batch 8 \
        -j 1 --seed 3 --log "$d/base.jsonl" -o "$d/base.safetensors"
}

F() { printf '%s/%s' "$BATS_FILE_TMPDIR" "$1"; }
PY=/usr/bin/python3
need_py() { [ -x $PY ] || skip "no /usr/bin/python3"; }

# tensor_bytes FILE NAME...: sha1 of each named tensor's raw bytes.
tensor_bytes() {
    $PY - "$@" <<'PY'
import hashlib, json, struct, sys
data = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', data[:8])[0]
h = json.loads(data[8:8 + n])
for name in sys.argv[2:]:
    a, b = h[name]['data_offsets']
    print(name, hashlib.sha1(data[8 + n + a:8 + n + b]).hexdigest())
PY
}

@test "scratch small_cnn learns the two colours (best val accuracy >= 0.9)" {
    need_py
    run $PY -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(r[-1]["phase"], r[-1]["accuracy"])' "$(F base.jsonl)"
    assert_success
    assert_output --regexp '^best (0\.9[0-9]*|1(\.0)?)$'
    run tl info "$(F base.safetensors)"
    assert_success
}

@test "the log is JSON lines: the run's settings, train and val per epoch, then best" {
    need_py
    run $PY - "$(F base.jsonl)" "$(F base.safetensors)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["phase"] for r in rows] == ["start"] + ["train", "val"] * 3 + ["best"], rows
s = rows.pop(0)
assert s["run"] == sys.argv[2] and s["init"] == "scratch" and s["strategy"] == "full", s
assert s["arch"] == "small_cnn" and s["train_images"] == 48 and s["val_images"] == 16, s
assert s["classes"] == 2 and s["epochs"] == 3 and s["batch"] == 8 and s["seed"] == 3, s
assert s["trainable_params"] == s["params"] > 0, s
for r in rows[:-1]:
    assert set(r) >= {"epoch", "phase", "loss", "accuracy", "lr", "seconds", "images_per_s", "trainable_params"}
    assert len(r["lr"]) == 5 and r["trainable_params"] > 0
print("ok")
PY
    assert_success
    assert_output ok
}

@test "--freeze-until keeps frozen weights and BN statistics bit-identical" {
    need_py
    local d=$BATS_FILE_TMPDIR
    run tl finetune -q -m "$d/base.safetensors" --keep-head --freeze-until features.1 "$d/train" --val "$d/val" \
        --epochs 2 --batch 8 -j 1 --lr 0.05 -o "$d/frozen.safetensors"
    assert_success
    local names="features.0.0.weight features.0.1.weight features.0.1.running_mean features.0.1.running_var
                 features.1.3.weight features.1.4.bias features.1.4.running_var"
    # shellcheck disable=SC2086
    assert_equal "$(tensor_bytes "$d/frozen.safetensors" $names)" "$(tensor_bytes "$d/base.safetensors" $names)"
    # ... while later layers and their statistics did change
    run tensor_bytes "$d/frozen.safetensors" features.2.0.weight features.2.1.running_mean
    local after=$output
    run tensor_bytes "$d/base.safetensors" features.2.0.weight features.2.1.running_mean
    [ "$after" != "$output" ]
}

@test "same seed at -j 1: identical checkpoints" {
    local d=$BATS_FILE_TMPDIR
    for k in 1 2; do
        tl finetune -q --scratch --arch small_cnn --input-size 32 "$d/train" --epochs 2 --batch 8 -j 1 --seed 5 \
            --augment 'hflip' -o "$d/det$k.safetensors"
    done
    cmp "$d/det1.safetensors" "$d/det2.safetensors"
}

@test "SIGINT saves resume state and exits non-zero; --resume completes the run" {
    local d=$BATS_FILE_TMPDIR
    rm -f "$d/int.safetensors" "$d/int.resume.safetensors"
    # the binary itself, not the tl wrapper function: SIGINT must reach it
    "$TL_BIN/tl-finetune" -q --scratch --arch small_cnn --input-size 32 "$d/train" --val "$d/val" --epochs 40 \
        --batch 8 -j 1 -o "$d/int.safetensors" 2>"$d/int.err" &
    local pid=$!
    for _ in $(seq 100); do [ -f "$d/int.safetensors" ] && break; sleep 0.1; done
    sleep 0.3
    kill -INT $pid
    local st=0
    wait $pid || st=$?
    assert_equal "$st" 130
    grep -q 'interrupted' "$d/int.err"
    [ -f "$d/int.resume.safetensors" ]
    run tl info "$d/int.safetensors"
    assert_success
    run tl finetune -q --scratch --arch small_cnn --input-size 32 "$d/train" --val "$d/val" --epochs 40 --batch 8 \
        -j 1 -o "$d/int.safetensors" --resume --patience 1
    assert_success
    [ ! -f "$d/int.resume.safetensors" ]
}

@test "usage errors exit 2" {
    local d=$BATS_FILE_TMPDIR
    run tl finetune "$d/train" -o "$d/x.safetensors"
    assert_equal "$status" 2
    run tl finetune --arch small_cnn "$d/train" -o "$d/x.safetensors"
    assert_equal "$status" 2
    run tl finetune --scratch --arch small_cnn --input-size 32 "$d/train"
    assert_equal "$status" 2
    run tl finetune -m "$d/base.safetensors" --freeze-until nosuchlayer "$d/train" -o "$d/x.safetensors"
    assert_equal "$status" 2
    run tl finetune -m "$d/base.safetensors" --optimizer rmsprop "$d/train" -o "$d/x.safetensors"
    assert_equal "$status" 2
}

@test "-o /dev/null is a dry run: no resume state is written beside a device" {
    local d=$BATS_FILE_TMPDIR
    rm -f /dev/null.resume.safetensors 2>/dev/null || true
    run --separate-stderr tl finetune -q --scratch --arch small_cnn --input-size 32 "$d/train" --val "$d/val" \
        --epochs 1 --batch 8 -j 1 -o /dev/null
    assert_success
    [ ! -e /dev/null.resume.safetensors ]
    run --separate-stderr tl finetune -q --scratch --arch small_cnn --input-size 32 "$d/train" --resume -o /dev/null
    assert_failure 2
    [[ $stderr == *"--resume needs a file output"* ]]
}

@test "default discriminative rates: the backbone spans 0.1x to 0.01x of the head's rate" {
    need_py
    local d=$BATS_FILE_TMPDIR
    run tl finetune -q -m "$d/base.safetensors" "$d/train" --val "$d/val" --epochs 1 --batch 8 -j 1 \
        --log "$d/spread.jsonl" -o "$d/spread.safetensors"
    assert_success
    run $PY - "$d/spread.jsonl" <<'PY'
import json, sys
lr = [r for r in map(json.loads, open(sys.argv[1])) if r["phase"] == "train"][0]["lr"]
head = lr[-1]
ratios = [x / head for x in lr[:-1]]
assert abs(ratios[-1] - 0.1) < 1e-6 and abs(ratios[0] - 0.01) < 1e-6, ratios
assert all(a < b for a, b in zip(ratios, ratios[1:])), ratios
print("ok")
PY
    assert_success
    assert_output ok
}

@test "after --resume, the log's times and speeds count the whole run" {
    need_py
    local d=$BATS_TEST_TMPDIR
    "$TL_BIN/tl-finetune" -q --scratch --arch small_cnn --input-size 32 "$(F train)" --val "$(F val)" --epochs 40 \
        --batch 8 -j 1 --log "$d/r.jsonl" -o "$d/r.safetensors" 2>"$d/r.err" &
    local pid=$!
    for _ in $(seq 100); do [ -f "$d/r.safetensors" ] && break; sleep 0.1; done
    kill -TERM $pid
    local st=0
    wait $pid || st=$?
    assert_equal "$st" 143
    grep -q 'interrupted (SIGTERM)' "$d/r.err"
    # the state records the time so far: the run's and the epoch's
    local times
    times=$($PY -c 'import json, struct, sys
b = open(sys.argv[1], "rb").read(); m = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])["__metadata__"]
print(m["tl.resume.epoch"], m["tl.resume.epoch_seconds"], m["tl.resume.run_seconds"])' "$d/r.resume.safetensors")
    read -r epoch epoch_s run_s <<<"$times"
    run tl finetune -q --scratch --arch small_cnn --input-size 32 "$(F train)" --val "$(F val)" --epochs 40 \
        --batch 8 -j 1 --log "$d/r.jsonl" -o "$d/r.safetensors" --resume --patience 1
    assert_success
    # The resumed epoch's seconds and the best line's include the time
    # before the interrupt (resumed alone, they were a fraction of it).
    run $PY - "$d/r.jsonl" "$epoch" "$epoch_s" "$run_s" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
epoch, epoch_s, run_s = int(sys.argv[2]) + 1, float(sys.argv[3]), float(sys.argv[4])
best = [r for r in recs if r["phase"] == "best"][-1]
assert best["seconds"] >= run_s, (best, run_s)
resumed = [r for r in recs if r["phase"] == "train" and r["epoch"] == epoch][-1]
assert resumed["seconds"] >= epoch_s, (resumed, epoch_s)
print("ok")
PY
    assert_success
    assert_output ok
}
