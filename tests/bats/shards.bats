#!/usr/bin/env bats
# Extraction for more than one machine (issue 16): shards (--shard) and
# the NumPy archive format. Self-contained: tiny generated images and a scratch small_cnn.

load helpers

setup_file() {
    local d=$BATS_FILE_TMPDIR
    gen_ppms "$d/imgs" 3 10
    tl finetune -q --scratch --arch small_cnn --input-size 32 "$d/imgs" --val-split 0 --epochs 1 --batch 8 -j 1 \
        -o "$d/net.safetensors"
}

F() { printf '%s/%s' "$BATS_FILE_TMPDIR" "$1"; }
PY=/usr/bin/python3
need_numpy() { $PY -c 'import numpy' 2>/dev/null || skip "no /usr/bin/python3 with numpy"; }

@test "-f npz: numpy.load without pickle gives the vectors, labels, paths and classes of the TLF stream" {
    need_numpy
    local d=$BATS_TEST_TMPDIR
    # names that are not plain ASCII: UTF-8, and a byte that is not UTF-8
    mkdir -p "$d/data/red" "$d/data/blue"
    cp "$(F imgs)"/red/00[0-3].ppm "$d/data/red/"
    cp "$(F imgs)"/blue/00[0-2].ppm "$d/data/blue/"
    cp "$(F imgs)/red/004.ppm" "$d/data/red/été.ppm"
    cp "$(F imgs)/blue/003.ppm" "$d/data/blue/$(printf 'x\377y').ppm"
    run tl extract -q -m "$(F net.safetensors)" -j 1 -f npz "$d/data" -o "$d/f.npz"
    assert_success
    tl extract -q -m "$(F net.safetensors)" -j 1 -f tsv "$d/data" -o "$d/f.tsv"
    run $PY - "$d/f.npz" "$d/f.tsv" <<'PY'
import json, os, sys
import numpy as np
z = np.load(sys.argv[1], allow_pickle=False)
assert sorted(z.files) == ['classes', 'features', 'header', 'labels', 'layer', 'model', 'paths'], z.files
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[2], 'rb').read().decode('utf-8', 'surrogateescape').split('\n')
        if l and not l.startswith('#')]
X = np.array([[float(v) for v in r[2:]] for r in rows], dtype=np.float32)
assert z['features'].dtype == np.float32 and z['features'].shape == X.shape, z['features'].shape
assert (z['features'] == X).all(), 'vectors differ'
assert list(z['classes']) == ['blue', 'red'], z['classes']
assert [list(z['classes'])[i] for i in z['labels']] == [r[1] for r in rows]
assert [os.fsencode(p) for p in z['paths']] == [os.fsencode(r[0]) for r in rows]
assert any('été' in p for p in z['paths']) and any(os.fsencode(p).endswith(b'x\xffy.ppm') for p in z['paths'])
h = json.loads(str(z['header']))
assert h['dim'] == X.shape[1] and h['classes'] == ['blue', 'red'] and h['layer'] == str(z['layer'])
assert str(z['model']).endswith('net.safetensors')
print('ok', X.shape)
PY
    assert_success
    assert_output --partial "ok (9,"
    # the same vectors give the same bytes
    tl extract -q -m "$(F net.safetensors)" -j 2 -b 3 -f npz "$d/data" -o "$d/g.npz"
    cmp "$d/f.npz" "$d/g.npz"
}

@test "-f npz of nothing, and to standard output" {
    need_numpy
    local d=$BATS_TEST_TMPDIR
    : >"$d/empty.tsv"
    run tl extract -q -m "$(F net.safetensors)" -f npz "$d/empty.tsv" -o "$d/e.npz"
    assert_success
    tl extract -q -m "$(F net.safetensors)" -f npz "$(F imgs)" >"$d/s.npz"
    run $PY -c 'import numpy as np, sys
e = np.load(sys.argv[1], allow_pickle=False); s = np.load(sys.argv[2], allow_pickle=False)
print(e["features"].shape, e["paths"].shape, s["features"].shape)' "$d/e.npz" "$d/s.npz"
    assert_success
    assert_output --regexp '^\(0, [0-9]+\) \(0,\) \(20, [0-9]+\)$'
}

@test "-f npz, multi-label: a 0/1 row per image, -1s when unlabelled" {
    need_numpy
    local d=$BATS_TEST_TMPDIR
    printf '%s\tred,blue\n%s\t\n%s\t-\n%s\tblue\n' "$(F imgs)/red/000.ppm" "$(F imgs)/red/001.ppm" \
        "$(F imgs)/blue/000.ppm" "$(F imgs)/blue/001.ppm" >"$d/ml.tsv"
    tl extract -q -m "$(F net.safetensors)" --multi-label -f npz "$d/ml.tsv" -o "$d/ml.npz"
    run $PY -c 'import numpy as np, sys
z = np.load(sys.argv[1], allow_pickle=False); print(list(z["classes"]), z["labels"].tolist())' "$d/ml.npz"
    assert_success
    assert_output "['blue', 'red'] [[1, 1], [0, 0], [-1, -1], [1, 0]]"
}

# The bytes after a safetensors header (the tensors) and its metadata
# without the keys that name the training file or the time.
st_body() { local n; n=$(od -An -tu8 -N8 "$1" | tr -d ' '); tail -c +$((9 + n)) "$1" | cksum; }
st_meta() { head -c 4096 "$1" | tr ',' '\n' | grep -v -e tl.train_data -e tl.trained_at | grep -a '"tl\.'; }

@test "--shard K/N: cat of the shards, in any order, is the data set of one run; heads trained on either are byte-identical" {
    local d=$BATS_TEST_TMPDIR
    cd "$d"
    cp -r "$(F imgs)" imgs
    tl extract -q -m "$(F net.safetensors)" -j 1 imgs -o all.tlf
    for k in 1 2 3; do
        run tl extract -m "$(F net.safetensors)" -j 2 -b 3 --shard $k/3 imgs -o s$k.tlf
        assert_success
        assert_output --partial "shard $k/3: "
    done
    cat s3.tlf s1.tlf s2.tlf >cat.tlf
    mkdir a b
    tl finetune -q all.tlf -o a/head.safetensors -j 1
    tl finetune -q cat.tlf -o b/head.safetensors -j 1
    [ "$(st_body a/head.safetensors)" = "$(st_body b/head.safetensors)" ]
    [ "$(st_meta a/head.safetensors)" = "$(st_meta b/head.safetensors)" ]
    # the same vectors, labels and paths (TSV shards, compared as sets)
    tl extract -q -m "$(F net.safetensors)" -j 1 -f tsv imgs -o all.tsv
    for k in 1 2 3; do tl extract -q -m "$(F net.safetensors)" -j 1 -f tsv --shard $k/3 imgs -o s$k.tsv; done
    grep '^#shard	2/3$' s2.tsv
    diff <(grep -v '^#' all.tsv | LC_ALL=C sort) <(cat s*.tsv | grep -v '^#' | LC_ALL=C sort)
    # every image in exactly one shard
    [ "$(cat s*.tsv | grep -vc '^#')" -eq 20 ]
}

@test "--shard: the partition does not depend on the input order, the threads or the batch" {
    local d=$BATS_TEST_TMPDIR
    cd "$d"
    ln -s "$(F imgs)" imgs
    find imgs/ -name '*.ppm' | LC_ALL=C sort | awk -F/ '{print $0 "\t" $2}' >sorted.tsv
    LC_ALL=C sort -r sorted.tsv >reversed.tsv
    tl extract -q -m "$(F net.safetensors)" -j 1 -b 32 --shard 2/4 sorted.tsv -o a.tlf
    tl extract -q -m "$(F net.safetensors)" -j 2 -b 1 --shard 2/4 reversed.tsv -o b.tlf
    cmp a.tlf b.tlf
}

@test "readers refuse a missing, repeated, foreign or truncated shard and name it" {
    local d=$BATS_TEST_TMPDIR
    for k in 1 2 3; do tl extract -q -m "$(F net.safetensors)" -j 1 --shard $k/3 "$(F imgs)" -o "$d/s$k.tlf"; done
    tl extract -q -m "$(F net.safetensors)" -j 1 --shard 1/2 "$(F imgs)" -o "$d/t1.tlf"
    tl extract -q -m "$(F net.safetensors)" -j 1 "$(F imgs)" -o "$d/all.tlf"
    cd "$d"
    cat s1.tlf s2.tlf >missing.tlf
    run tl finetune -q missing.tlf -o h.safetensors
    assert_failure 1
    assert_output "tl-finetune: missing.tlf: shard 3/3 is missing (2 of 3 shards read)"
    cat s1.tlf s2.tlf s3.tlf s2.tlf >twice.tlf
    tl finetune -q all.tlf -o head.safetensors
    run tl eval -m head.safetensors twice.tlf
    assert_failure
    assert_output --partial "shard 2/3 appears twice (streams 2 and 4)"
    cat s1.tlf s2.tlf s3.tlf all.tlf >mixed.tlf
    run tl finetune -q mixed.tlf -o h.safetensors
    assert_failure 1
    assert_output --partial "stream 4 (byte $(cat s1.tlf s2.tlf s3.tlf | wc -c)): not a shard, the first stream is shard 1/3"
    cat s1.tlf t1.tlf >other.tlf
    run tl finetune -q other.tlf -o h.safetensors
    assert_failure 1
    assert_output --partial "shard 1/2: sharded 2 ways, the first stream 3 ways"
    head -c $(($(wc -c <s2.tlf) - 20)) s2.tlf >cut.tlf
    cat s1.tlf s3.tlf cut.tlf >truncated.tlf
    run tl finetune -q truncated.tlf -o h.safetensors
    assert_failure 1
    assert_output --regexp '^tl-finetune: truncated.tlf: truncated feature record [0-9]+ \(shard 2/3\)$'
    [ ! -e h.safetensors ]
}

@test "--shard: usage errors" {
    for bad in 0/3 4/3 3 1/0 x/2 1/2x -1/2; do
        run tl extract -m "$(F net.safetensors)" --shard "$bad" "$(F imgs)"
        assert_failure 2
        assert_output --partial "--shard: '$bad' is not K/N"
    done
    run tl extract -m "$(F net.safetensors)" --shard 1/2 -f npy "$(F imgs)"
    assert_failure 2
    assert_output --partial "NPY has no header"
}

# Waits until file $1 grows (pid $2 is writing records), at most ~10 s.
wait_growth() {
    local s0=-1 sz i
    for i in $(seq 1 2000); do
        kill -0 "$2" 2>/dev/null || return 0
        sz=$(stat -c %s "$1" 2>/dev/null || echo -1)
        if [ "$s0" -lt 0 ]; then s0=$sz; elif [ "$sz" -gt "$s0" ]; then return 0; fi
        sleep 0.005
    done
}

# Runs "tl extract ARGS -o OUT" again and again, each run killed (SIGKILL
# and SIGTERM in turn) once it writes records to OUT.partial, after a
# random further 0..30% of $1 ms (what one whole run took; none the first
# time), until a run finishes; prints how many runs were cut short (by the
# signal: exit status 137 or 143).
run_until_done() {
    local ms=$1 out=$2 cut=0 i pid sig rc
    shift 2
    for i in $(seq 1 40); do
        "$TL_BIN/tl-extract" -q "$@" -o "$out" 2>/dev/null &
        pid=$!
        wait_growth "$out.partial" $pid
        [ "$i" -eq 1 ] || sleep "$(awk -v r=$RANDOM -v ms="$ms" 'BEGIN { printf "%.3f", 0.3 * r / 32768 * ms / 1000 }')"
        if [ $((i % 2)) -eq 1 ]; then sig=KILL; else sig=TERM; fi
        kill -s $sig $pid 2>/dev/null || true
        rc=0
        wait $pid || rc=$?
        [ $rc -eq 0 ] && break
        [ $rc -eq 137 ] || [ $rc -eq 143 ] || return 1
        cut=$((cut + 1))
    done
    [ $rc -eq 0 ] || tl extract -q "$@" -o "$out"
    echo "$cut"
}

# Runs tl extract ARGS and prints how many ms it took.
timed() {
    local t0
    t0=$(date +%s%N)
    tl extract "$@" >/dev/null
    echo $((($(date +%s%N) - t0) / 1000000))
}

@test "--resume after SIGKILL and SIGTERM at random moments gives the file of an uninterrupted run" {
    local d=$BATS_TEST_TMPDIR
    gen_ppms "$d/data" 7 80
    ms=$(timed -q -m "$(F net.safetensors)" --input-size 48 -j 1 -b 2 "$d/data" -o "$d/ref.tlf")
    # A first run can end before its signal on a loaded machine (the poll
    # that waits for its first records is descheduled): then start over.
    local try
    for try in 1 2 3 4 5; do
        rm -f "$d/out.tlf" "$d/out.tlf.partial"
        cut=$(run_until_done "$ms" "$d/out.tlf" -m "$(F net.safetensors)" --input-size 48 -j 1 -b 2 --resume "$d/data")
        [ "$cut" -ge 1 ] && break
    done
    echo "runs cut short: $cut (attempt $try)"
    [ "$cut" -ge 1 ]
    cmp "$d/ref.tlf" "$d/out.tlf"
    [ ! -e "$d/out.tlf.partial" ]
    # a shard, resumed the same way, is that shard
    ms=$(timed -q -m "$(F net.safetensors)" --input-size 48 -j 1 --shard 2/2 "$d/data" -o "$d/ref2.tlf")
    run_until_done "$ms" "$d/out2.tlf" -m "$(F net.safetensors)" --input-size 48 -j 1 -b 2 --resume --shard 2/2 "$d/data"
    cmp "$d/ref2.tlf" "$d/out2.tlf"
    # finished: nothing to do
    run tl extract -m "$(F net.safetensors)" --input-size 48 --resume "$d/data" -o "$d/out.tlf"
    assert_success
    assert_output "tl-extract: $d/out.tlf is complete (160 records): nothing to resume"
    cmp "$d/ref.tlf" "$d/out.tlf"
}

@test "--update adds only the new images, also when killed at random moments; another extraction is refused" {
    local d=$BATS_TEST_TMPDIR i
    gen_ppms "$d/gen" 9 60
    mkdir "$d/photos"
    # an unlabelled folder whose new images sort after the old ones, so
    # the updated file is byte for byte a fresh run's
    for i in $(seq -w 0 59); do mv "$d/gen/red/0$i.ppm" "$d/photos/a$i.ppm"; mv "$d/gen/blue/0$i.ppm" "$d/photos/b$i.ppm"; done
    mkdir "$d/later"
    mv "$d"/photos/a[2-5]*.ppm "$d"/photos/b*.ppm "$d/later/"   # 20 old, 100 new
    ms=$(timed -q -m "$(F net.safetensors)" --input-size 48 -j 1 "$d/photos" -o "$d/out.tlf")
    mv "$d"/later/*.ppm "$d/photos/"
    # as above: when a first run ends before its signal, start over
    local try
    cp "$d/out.tlf" "$d/old.tlf"
    for try in 1 2 3 4 5; do
        cp "$d/old.tlf" "$d/out.tlf"
        rm -f "$d/out.tlf.partial"
        cut=$(run_until_done "$ms" "$d/out.tlf" -m "$(F net.safetensors)" --input-size 48 -j 1 -b 2 --update "$d/photos")
        [ "$cut" -ge 1 ] && break
    done
    echo "runs cut short: $cut (attempt $try)"
    [ "$cut" -ge 1 ]
    run tl extract -m "$(F net.safetensors)" --input-size 48 -j 1 --update "$d/photos" -o "$d/out.tlf"
    assert_success
    assert_output --partial "is up to date"
    tl extract -q -m "$(F net.safetensors)" --input-size 48 -j 1 "$d/photos" -o "$d/ref.tlf"
    cmp "$d/ref.tlf" "$d/out.tlf"
    [ ! -e "$d/out.tlf.partial" ]
    # another layer, input size or model: refused, the file untouched
    run tl extract -m "$(F net.safetensors)" --input-size 40 --update "$d/photos" -o "$d/out.tlf"
    assert_failure 1
    assert_output --regexp "out.tlf: made by another extraction \(input '48[^']*', this run's '40[^']*'\): remove it or write elsewhere$"
    cmp "$d/ref.tlf" "$d/out.tlf"
    run tl extract -m "$(F net.safetensors)" --update -f tsv "$d/photos" -o "$d/x.tsv"
    assert_failure 2
    run tl extract -m "$(F net.safetensors)" --resume "$d/photos"
    assert_failure 2
    assert_output --partial "--resume: needs -o FILE in the TLF format"
}

@test "--resume, --update, --merge and cat refuse vectors computed otherwise (--exact, --fast-decode), naming the option" {
    local d=$BATS_TEST_TMPDIR
    cd "$d"
    local m=(-q -m "$(F net.safetensors)" -j 1)
    tl extract "${m[@]}" --exact "$(F imgs)" -o exact.tlf
    head -c 4096 exact.tlf | grep -aq '"exact":true'
    tl extract "${m[@]}" "$(F imgs)" -o plain.tlf
    [ "$(head -c 4096 plain.tlf | grep -ac -e '"exact"' -e '"fast_decode"')" = 0 ]
    # a finished file: --update without --exact is refused, the file kept
    cp exact.tlf out.tlf
    run tl extract "${m[@]}" --update "$(F imgs)" -o out.tlf
    assert_failure 1
    assert_output "tl-extract: out.tlf: made by another extraction (with --exact, this run's without it): remove it or write elsewhere"
    cmp exact.tlf out.tlf
    run tl extract "${m[@]}" --exact --update "$(F imgs)" -o out.tlf
    assert_success
    cmp exact.tlf out.tlf
    # an interrupted one (a cut OUT.partial): --resume must give the same option
    tl extract "${m[@]}" --fast-decode "$(F imgs)" -o fast.tlf
    head -c 4096 fast.tlf | grep -aq '"fast_decode":true'
    head -c $(($(wc -c <fast.tlf) / 2)) fast.tlf >f.tlf.partial
    run tl extract "${m[@]}" --resume "$(F imgs)" -o f.tlf
    assert_failure 1
    assert_output "tl-extract: f.tlf.partial: made by another extraction (with --fast-decode, this run's without it): remove it or write elsewhere"
    [ ! -e f.tlf ]
    run tl extract "${m[@]}" --resume --exact --fast-decode "$(F imgs)" -o f.tlf
    assert_failure 1
    assert_output --partial "(without --exact, this run's with it)"
    tl extract "${m[@]}" --resume --fast-decode "$(F imgs)" -o f.tlf
    cmp fast.tlf f.tlf
    # shards of both kinds: not merged, not read as one data set
    tl extract "${m[@]}" --exact --shard 1/2 "$(F imgs)" -o s1.tlf
    tl extract "${m[@]}" --shard 2/2 "$(F imgs)" -o s2.tlf
    run tl extract --merge -o x.tlf s1.tlf s2.tlf
    assert_failure 1
    assert_output "tl-extract: s2.tlf: another extraction than s1.tlf (without --exact, the first with it)"
    [ ! -e x.tlf ]
    cat s1.tlf s2.tlf >both.tlf
    run tl finetune -q both.tlf -o h.safetensors
    assert_failure 1
    assert_output --regexp "^tl-finetune: both.tlf: stream 2 \(byte [0-9]+\), shard 2/2: extracted without --exact, the first stream with it$"
    # TSV and NPZ keep the setting too
    tl extract "${m[@]}" --exact --fast-decode -f tsv "$(F imgs)" -o e.tsv
    grep -qx '#exact	1' e.tsv
    grep -qx '#fast_decode	1' e.tsv
    tl extract --merge -q -o e.tlf e.tsv
    head -c 4096 e.tlf | grep -aq '"exact":true,"fast_decode":true'
    tl extract "${m[@]}" --exact -f npz "$(F imgs)" -o e.npz
    run tl extract --merge -o y.tlf e.npz plain.tlf
    assert_failure 1
    assert_output --partial "(without --exact, the first with it)"
}

@test "--merge: shards in any order become the unsharded run's file in any format; a wrong set is refused" {
    local d=$BATS_TEST_TMPDIR
    cd "$d"
    for k in 1 2 3; do tl extract -q -m "$(F net.safetensors)" -j 1 --shard $k/3 "$(F imgs)" -o s$k.tlf; done
    tl extract -q -m "$(F net.safetensors)" -j 1 "$(F imgs)" -o all.tlf
    run tl extract --merge -o m.tlf s2.tlf s3.tlf s1.tlf
    assert_success
    assert_output "tl-extract: 20 records from 3 files"
    cmp all.tlf m.tlf
    tl extract -q -m "$(F net.safetensors)" -j 1 -f tsv "$(F imgs)" -o all.tsv
    tl extract --merge -q -f tsv -o m.tsv s3.tlf s1.tlf s2.tlf
    cmp all.tsv m.tsv
    run tl extract --merge -o x.tlf s1.tlf s2.tlf
    assert_failure 1
    assert_output "tl-extract: s1.tlf: shard 1/3, but 2 files are given (every shard once)"
    run tl extract --merge -o x.tlf s1.tlf s2.tlf s1.tlf
    assert_failure 1
    assert_output "tl-extract: s1.tlf: shard 1/3, as is s1.tlf"
    run tl extract --merge -o x.tlf s1.tlf s2.tlf all.tlf
    assert_failure 1
    assert_output "tl-extract: all.tlf: not a shard, s1.tlf is a shard"
    head -c 2000 s3.tlf >cut.tlf
    run tl extract --merge -o x.tlf s1.tlf s2.tlf cut.tlf
    assert_failure 1
    assert_output --partial "cut.tlf: "
    assert_output --partial "(shard 3/3)"
    [ ! -e x.tlf ]
    run tl extract --merge -m "$(F net.safetensors)" -o x.tlf s1.tlf
    assert_failure 2
}

@test "scripts/cluster/extract-parallel.sh: GNU parallel runs the shards here (-S 2/:) and the merge gives the unsharded run's file" {
    command -v parallel >/dev/null || skip "GNU parallel is not installed (scripts/deps.sh installs it)"
    local d=$BATS_TEST_TMPDIR script=$BATS_TEST_DIRNAME/../../scripts/cluster/extract-parallel.sh
    sh -n "$script"
    cd "$d"
    tl extract -q -m "$(F net.safetensors)" -j 1 "$(F imgs)" -o all.tlf
    run "$script" -S 2/: -n 3 -j 1 -o out.tlf -- -q -m "$(F net.safetensors)" "$(F imgs)"
    assert_success
    cmp all.tlf out.tlf
    [ ! -e out.tlf.shards ]
    # the same into NPZ
    tl extract -q -m "$(F net.safetensors)" -j 1 -f npz "$(F imgs)" -o all.npz
    "$script" -S : -n 2 -j 1 -o out.npz -- -q -m "$(F net.safetensors)" "$(F imgs)"
    cmp all.npz out.npz
    run "$script" -n 0 -o x.tlf -- -m m data
    assert_failure 2
}

@test "scripts/cluster/slurm-extract.sh, extract-shard.sbatch, merge.sbatch: parse; end to end under a stand-in sbatch" {
    local d=$BATS_TEST_TMPDIR dir=$BATS_TEST_DIRNAME/../../scripts/cluster
    for f in slurm-extract.sh; do sh -n "$dir/$f"; done
    for f in extract-shard.sbatch merge.sbatch; do bash -n "$dir/$f"; done
    # sbatch is a stand-in that runs an array's tasks one after the other
    # (SLURM_ARRAY_TASK_ID 1..N) with the --export'ed variables, then prints
    # a job id (slurm.bats runs the recipes on a real Slurm where it can).
    mkdir -p "$d/fake"
    cat >"$d/fake/sbatch" <<'SH'
#!/bin/bash
array= exp=
while [ $# -gt 0 ]; do
    case $1 in --array=*) array=${1#--array=} ;; --export=*) exp=${1#--export=} ;; --*) ;; *) break ;; esac
    shift
done
script=$1
shift
IFS=, read -ra kv <<<"$exp"
for x in "${kv[@]}"; do [ "$x" = ALL ] || export "${x?}"; done
if [ -n "$array" ]; then
    n=${array#1-}
    for k in $(seq 1 "$n"); do SLURM_ARRAY_TASK_ID=$k SLURM_ARRAY_TASK_COUNT=$n bash "$script" "$@" >&2 || exit 1; done
else
    bash "$script" "$@" >&2 || exit 1
fi
echo $RANDOM
SH
    chmod +x "$d/fake/sbatch"
    cd "$d"
    tl extract -q -m "$(F net.safetensors)" -j 1 "$(F imgs)" -o all.tlf
    run env PATH="$d/fake:$PATH" TL_BIN="$TL_BIN" "$dir/slurm-extract.sh" -n 4 -c 1 -o out.tlf -- -q -m "$(F net.safetensors)" "$(F imgs)"
    assert_success
    assert_line --regexp "^shards: job [0-9]+; merge: job [0-9]+ "
    cmp all.tlf out.tlf
    [ ! -e out.tlf.shards ]
}

@test "NPZ is read wherever feature files are: tl's own (merge, training, cat of shards), and numpy.savez / savez_compressed archives" {
    local d=$BATS_TEST_TMPDIR
    cd "$d"
    tl extract -q -m "$(F net.safetensors)" -j 1 "$(F imgs)" -o all.tlf
    tl extract -q -m "$(F net.safetensors)" -j 1 -f tsv "$(F imgs)" -o all.tsv
    tl extract -q -m "$(F net.safetensors)" -j 1 -f npz "$(F imgs)" -o all.npz
    for k in 1 2 3; do tl extract -q -m "$(F net.safetensors)" -j 1 -f npz --shard $k/3 "$(F imgs)" -o s$k.npz; done
    tl extract --merge -q -o m.tlf s2.npz s3.npz s1.npz
    cmp all.tlf m.tlf
    tl extract --merge -q -f tsv -o m.tsv all.npz
    cmp all.tsv m.tsv
    mkdir a b c
    tl finetune -q all.tlf -o a/head.safetensors -j 1
    tl finetune -q all.npz -o b/head.safetensors -j 1
    cat s3.npz s1.npz s2.npz >c/all.npz
    tl finetune -q c/all.npz -o c/head.safetensors -j 1
    [ "$(st_body a/head.safetensors)" = "$(st_body b/head.safetensors)" ]
    [ "$(st_body a/head.safetensors)" = "$(st_body c/head.safetensors)" ]
    run tl eval -m a/head.safetensors all.npz
    assert_success
    assert_output --partial "(20 scored)"
    cat s1.npz s3.npz >missing.npz
    run tl eval -m a/head.safetensors missing.npz
    assert_failure 1
    assert_output --partial "shard 2/3 is missing"
    head -c 3000 all.npz >cut.npz
    run tl eval -m a/head.safetensors cut.npz
    assert_failure 1
    assert_output --partial "cut.npz: "
    $PY -c 'import numpy' 2>/dev/null || skip "no /usr/bin/python3 with numpy: archives from numpy not tried"
    $PY - <<'PY'
import numpy as np
z = np.load('all.npz', allow_pickle=False)
kw = dict(features=z['features'].astype(np.float64), labels=z['labels'].astype(np.int64), paths=z['paths'],
          classes=z['classes'], model=z['model'], layer=z['layer'])
np.savez('np.npz', **kw)
np.savez_compressed('npc.npz', **kw)
ml = np.zeros((len(z['labels']), 2), dtype=np.int32)
ml[np.arange(len(ml)), z['labels']] = 1
ml[0] = -1
np.savez_compressed('ml.npz', features=z['features'], labels=ml, classes=z['classes'])
PY
    for f in np.npz npc.npz; do
        tl extract --merge -q -f tsv -o "$f.tsv" "$f"
        diff <(grep -v '^#' all.tsv) <(grep -v '^#' "$f.tsv")
    done
    tl extract --merge -q -f tsv -o ml.tsv ml.npz
    grep -q '^#multilabel	1$' ml.tsv
    [ "$(grep -v '^#' ml.tsv | head -1 | cut -f1,2)" = "$(printf 'row1\t-')" ]
    [ "$(grep -v '^#' ml.tsv | sed -n 2p | cut -f2)" = "$(grep -v '^#' all.tsv | sed -n 2p | cut -f2)" ]
}
