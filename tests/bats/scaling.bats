#!/usr/bin/env bats
# scripts/cluster/scaling.sh: the measurement of 2 processes against 2
# threads runs, and the extrapolation is the ring-allreduce formula of its
# header (numbers worked out by hand below, not by the script).

load helpers

SCRIPT=$BATS_TEST_DIRNAME/../../scripts/cluster/scaling.sh

# log DIR NAME IMAGES_PER_S [ALLREDUCE_MS BYTES]: a log with a warm-up epoch that must not count.
log() {
    local extra=
    [ $# -gt 3 ] && extra=",\"processes\":2,\"allreduce_ms\":$4,\"allreduce_bytes\":$5"
    {
        printf '{"phase":"start","format":1,"tool":"tl-finetune"}\n'
        printf '{"epoch":1,"phase":"train","images_per_s":1.0%s}\n' "$extra"
        printf '{"epoch":1,"phase":"val","images_per_s":99.0}\n'
        printf '{"epoch":2,"phase":"train","images_per_s":%s%s}\n' "$3" "$extra"
        printf '{"epoch":2,"phase":"val","images_per_s":99.0}\n'
    } >"$1/$2"
}

@test "scaling.sh table: the measured ratio and the ring-allreduce extrapolation, from the last epoch of each log" {
    local d=$BATS_TEST_TMPDIR/logs
    mkdir -p "$d"
    echo 'Test CPU' >"$d/cpu"
    # two rounds: 1x2 threads 9 and 11 img/s (mean 10), 2x1 thread 9.5 (both rounds), 100 MB of gradients
    log "$d" net.threads.1.jsonl 9
    log "$d" net.threads.2.jsonl 11
    log "$d" net.mpi.1.jsonl 9.5 4 100000000
    log "$d" net.mpi.2.jsonl 9.5 6 100000000
    run --separate-stderr "$SCRIPT" table "$d"
    assert_success
    [[ $output == *"Measured on Test CPU, 2 cores, global batch 32"* ]] || fail "$output"
    [[ $output == *"| net | 10.0 img/s | 9.5 img/s | 0.95x | 100.0 MB | 5.0 ms |"* ]] || fail "$output"
    # t_c = 32/10 = 3.2 s. 10 Gbit/s, 20 us: 8 nodes 2*7/8*1e8/1.25e9 + 14*20e-6 = 0.14028 s, 3.2/3.34028 = 95.8 %;
    # 64 nodes 2*63/64*0.08 + 126*20e-6 = 0.15750 + 0.00252 = 0.16002 s, 95.2 %; K=4: 12.8/12.96002 = 98.8 %;
    # crossover 32/0.16002 = 200 img/s.
    [[ $output == *"| net | 10 Gbit/s | 3.20 s | 140 ms | 95.8 % | 160 ms | 95.2 % | 98.8 % | 200 img/s |"* ]] || fail "$output"
    # 100 Gbit/s, 3 us: 8 nodes 0.014 + 14*3e-6 = 0.014042 s, 99.6 %; 64 nodes 0.01575 + 0.000378 = 0.016128 s,
    # 99.5 %; K=4 99.9 %; crossover 32/0.016128 = 1984 img/s.
    [[ $output == *"| net | 100 Gbit/s | 3.20 s | 14 ms | 99.6 % | 16 ms | 99.5 % | 99.9 % | 1984 img/s |"* ]] || fail "$output"
}

@test "scaling.sh: usage and an empty log folder are errors" {
    run --separate-stderr "$SCRIPT"
    [ "$status" -eq 2 ]
    [[ $stderr == *"scaling.sh measure DATA LOGDIR"* ]] || fail "$stderr"
    mkdir -p "$BATS_TEST_TMPDIR/empty"
    run --separate-stderr "$SCRIPT" table "$BATS_TEST_TMPDIR/empty"
    [ "$status" -ne 0 ]
    [[ $stderr == *"no logs of both set-ups"* ]] || fail "$stderr"
}

@test "scaling.sh measure: both set-ups train and log, with MPI, on tiny images" {
    command -v mpirun >/dev/null || skip "mpirun not found (Debian: openmpi-bin)"
    ldd "$TL_BIN/tl-finetune" | grep -q libmpi || skip "tl-finetune was built without MPI (no mpicc at build time)"
    if [ -n "${TL_SANITIZE:-}" ]; then export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0; fi
    local d=$BATS_TEST_TMPDIR
    gen_ppms "$d/data/train" 2 8
    gen_ppms "$d/data/val" 2 2
    run --separate-stderr env TL_BIN="$TL_BIN" MODELS=small_cnn REPS=1 EPOCHS=2 BATCH=8 OPTS="--input-size 32" \
        "$SCRIPT" measure "$d/data" "$d/logs"
    assert_success
    [ -s "$d/logs/small_cnn.threads.1.jsonl" ] && [ -s "$d/logs/small_cnn.mpi.1.jsonl" ]
    [ ! -e "$d/logs/net.safetensors" ]
    run --separate-stderr env BATCH=8 "$SCRIPT" table "$d/logs"
    assert_success
    [[ $output =~ \|\ small_cnn\ \|\ [0-9.]+\ img/s\ \|\ [0-9.]+\ img/s\ \|\ [0-9.]+x\ \|\ [0-9.]+\ MB ]] || fail "$output"
    [ "$(grep -c '^| small_cnn | 10\{1,2\} Gbit/s' <<<"$output")" -eq 2 ] || fail "$output"
}
