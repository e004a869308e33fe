#!/usr/bin/env bats
# Issue 15, items 6, 7 and 9 at the command line: training that quietly did
# something else (a class moved whole into validation, another run's resume
# state taken, two runs on one output), buffers sized by options instead of
# data (--batch larger than the data, a confusion matrix of 20,000 classes),
# and tl-eval -k at or above the class count.

load helpers

setup_file() {
    local d=$BATS_FILE_TMPDIR k
    gen_ppms "$d/data" 5 4
    # a class of one image
    mkdir -p "$d/data/green"
    ppm "$d/data/green/only.ppm" 32 32 20 200 30
    # five classes of one image each
    for k in 1 2 3 4 5; do
        mkdir -p "$d/small/c$k"
        ppm "$d/small/c$k/1.ppm" 32 32 $((40 * k)) 30 30
    done
}

# status $1 and one line of stderr holding $2
one_line() {
    assert_equal "$status" "$1"
    assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 1
    [[ $stderr == *"$2"* ]] || fail "wanted '$2': $stderr"
}

F() { printf '%s/%s' "$BATS_FILE_TMPDIR" "$1"; }
ft() { tl finetune -q --scratch --arch small_cnn --input-size 32 --epochs "${EPOCHS:-1}" --batch 4 -j 1 "$@"; }

@test "--val-split never moves a whole class out of training, and says what it did" {
    local d=$BATS_TEST_TMPDIR vs
    for vs in 0.5 0.9; do
        run --separate-stderr tl finetune --scratch --arch small_cnn --input-size 32 "$(F data)" --val-split $vs \
            --epochs 1 --batch 4 -j 1 -o "$d/m.safetensors" --log "$d/log.jsonl"
        assert_success
        # 4 red, 4 blue, 1 green: green (one image) and, at 0.9, red and blue are capped
        [[ $stderr == *"--val-split $vs: "*"would have gone to validation whole: one image of each trains"* ]] ||
            fail "$vs: $stderr"
        local train want
        train=$(head -n 1 "$d/log.jsonl" | sed -n 's/.*"train_images":\([0-9]*\).*/\1/p')
        if [ "$vs" = 0.5 ]; then want=5; else want=3; fi
        [ "$train" = "$want" ] || fail "$vs: $train training images, expected $want"
    done
    # five classes of one image each at the default 0.2: nothing held out, said so
    run --separate-stderr tl finetune --scratch --arch small_cnn --input-size 32 "$(F small)" --epochs 1 --batch 4 \
        -j 1 -o "$d/s.safetensors"
    assert_success
    [[ $stderr == *"5 classes too small to hold any image out train whole"* ]] || fail "$stderr"
}

@test "--resume refuses the state of another run (data, settings, provenance), and keeps it for its own" {
    local d=$BATS_TEST_TMPDIR p
    # interrupt a run after its first epoch: its resume state stays
    "$TL_BIN/tl-finetune" -q --scratch --arch small_cnn --input-size 32 "$(F data)" --val-split 0.25 --epochs 40 \
        --batch 2 -j 1 -o "$d/r.safetensors" 2>"$d/err" &
    p=$!
    for _ in $(seq 1 600); do [ -e "$d/r.resume.safetensors" ] && break; sleep 0.1; done
    kill -INT $p
    wait $p || true
    [ -e "$d/r.resume.safetensors" ] || fail "no resume state: $(cat "$d/err")"
    cp "$d/r.resume.safetensors" "$d/state.copy"
    local base=(-q --scratch --arch small_cnn --input-size 32 "$(F data)" --val-split 0.25 --batch 2 -j 1 -o "$d/r.safetensors" --resume)
    run --separate-stderr tl finetune "${base[@]}" --epochs 40 --seed 7
    one_line 1 "its training data differ"
    run --separate-stderr tl finetune "${base[@]}" --epochs 40 --clip-norm 5
    one_line 1 "its settings differ (clip_norm=0 then, clip_norm=5 now)"
    run --separate-stderr tl finetune "${base[@]}" --epochs 40 --class-weights auto
    one_line 1 "its settings differ (class_weights=none then, class_weights="
    run --separate-stderr tl finetune "${base[@]}" --epochs 30
    one_line 1 "tl.epochs was '40', now '30'"
    run --separate-stderr tl finetune "${base[@]}" --epochs 40 --lr 0.5
    one_line 1 "tl.lr was '0.01', now '0.5'"
    cmp "$d/r.resume.safetensors" "$d/state.copy" # refused: left as it was
    # its own run continues
    run --separate-stderr timeout 900 "$TL_BIN/tl-finetune" "${base[@]}" --epochs 40
    assert_success
    [ ! -e "$d/r.resume.safetensors" ]
}

@test "one run per output: a second tl-finetune on the same -o is refused while the first holds it" {
    command -v flock >/dev/null || skip "no flock(1)"
    local d=$BATS_TEST_TMPDIR
    # this shell holds the lock, as a running tl-finetune would
    exec 9>"$d/o.safetensors.lock"
    flock -n 9
    run --separate-stderr tl finetune --scratch --arch small_cnn --input-size 32 "$(F data)" --epochs 1 --batch 4 -j 1 \
        -o "$d/o.safetensors"
    one_line 1 "o.safetensors: another run is writing this output ($d/o.safetensors.lock is locked)"
    [ ! -e "$d/o.safetensors" ]
    exec 9>&-
    # free again: the run goes through and removes its lock
    ft "$(F data)" -o "$d/o.safetensors"
    [ -e "$d/o.safetensors" ] && [ ! -e "$d/o.safetensors.lock" ] && [ ! -e "$d/o.resume.safetensors" ]
}

@test "--batch larger than the data: the same weights as --batch N for N images, in the same memory" {
    local d=$BATS_TEST_TMPDIR k1 k2
    run --separate-stderr tl finetune --scratch --arch resnet18 --input-size 32 "$(F data)" --val-split 0 --epochs 2 \
        --batch 1000 -j 1 -o "$d/b1000.safetensors"
    assert_success
    [[ $stderr == *"--batch 1000 is more than the 9 training images: batches of 9"* ]] || fail "$stderr"
    tl finetune -q --scratch --arch resnet18 --input-size 32 "$(F data)" --val-split 0 --epochs 2 --batch 9 -j 1 \
        -o "$d/b9.safetensors"
    cmp "$d/b1000.safetensors" "$d/b9.safetensors"
    [ -x /usr/bin/time ] && [ -z "${TL_SANITIZE:-}" ] || return 0
    k1=$(/usr/bin/time -f %M "$TL_BIN/tl-finetune" -q --scratch --arch resnet18 --input-size 32 "$(F data)" \
        --val-split 0 --epochs 1 --batch 9 -j 1 -o /dev/null 2>&1 | tail -n 1)
    k2=$(/usr/bin/time -f %M "$TL_BIN/tl-finetune" -q --scratch --arch resnet18 --input-size 32 "$(F data)" \
        --val-split 0 --epochs 1 --batch 4096 -j 1 -o /dev/null 2>&1 | tail -n 1)
    [ "$k2" -le $((k1 * 11 / 10 + 4096)) ] || fail "--batch 4096: $k2 kB, --batch 9: $k1 kB"
}

@test "tl-eval: -k at or above the class count is a usage error; 20,000 classes score in bounded memory" {
    local d=$BATS_TEST_TMPDIR
    printf '#path\ttrue\tpred\ta\tb\tc\nx\ta\ta\t0.5\t0.3\t0.2\n' >"$d/p.tsv"
    run --separate-stderr tl eval -k 3 "$d/p.tsv"
    one_line 2 "--top-k 3: the model has 3 classes"
    run --separate-stderr tl eval -k 2 "$d/p.tsv"
    assert_success
    [ -x /usr/bin/python3 ] || skip "no /usr/bin/python3 to write 20,000 classes"
    /usr/bin/python3 - "$d/big.tsv" <<'PY'
import sys
k = 20000
names = ["c%d" % i for i in range(k)]
with open(sys.argv[1], "w") as f:
    f.write("#path\ttrue\tpred\t" + "\t".join(names) + "\n")
    for i in range(50):
        row = ["0"] * k
        row[(i * 37) % k] = "1"
        f.write("x%d\t%s\t%s\t%s\n" % (i, names[(i * 37 + i % 3) % k], names[(i * 37) % k], "\t".join(row)))
PY
    if [ -z "${TL_SANITIZE:-}" ]; then
        run --separate-stderr bash -c 'ulimit -v 1048576; exec timeout 120 "$1" --json "$2"' _ "$TL_BIN/tl-eval" "$d/big.tsv"
    else
        run --separate-stderr timeout 600 "$TL_BIN/tl-eval" --json "$d/big.tsv"
    fi
    assert_success
    [[ $output == *'"confusion_cells":[['* && $output == *'"n":50,'* ]] || fail "${output:0:300}"
}
