#!/usr/bin/env bats
# The benchmark's pieces on tiny inputs: tl-bench's JSON line and options
# (small_cnn at 32 pixels), the FMA probe, and bench.py's report (ratio
# directions, the row format of bench/latest.json, the contention warning)
# from a made-up results file. Self-contained: no ../shared, no peers.

load helpers

TB=${TL_TEST_BIN:-$BATS_TEST_DIRNAME/../../build/tests}
BENCH_PY=$BATS_TEST_DIRNAME/../../scripts/bench/bench.py

need_py() { [ -x /usr/bin/python3 ] || skip "/usr/bin/python3 not found"; }

@test "tl-bench infer: one JSON line with the median of the timed runs" {
    need_py
    run --separate-stderr "$TB/tl-bench" infer small_cnn 4 --size 32 --iters 5 --warmup 1 --threads 2
    assert_success
    assert_equal "$(printf '%s\n' "$output" | wc -l)" 1
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/r.json"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/r.json" "d['mode'], d['arch'], d['batch'], d['threads']")" \
        "('infer', 'small_cnn', 4, 2)"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/r.json" "len(d['runs'])")" 5
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/r.json" "sorted(d['runs'])[2] == d['images_per_s']")" True
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/r.json" "d['peak_rss_mb'] > 1 and 0.01 < d['gmacs_per_image'] < 0.1")" True
    # CPU time of every thread per image (the median batch's): more than nothing
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/r.json" "d['cpu_ms_per_image'] > 0")" True
    # gflops = images/s x 2 FLOPs per multiply-add
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/r.json" \
        "abs(d['gflops'] - d['images_per_s'] * 2 * d['gmacs_per_image']) <= 0.01 * d['gflops']")" True
}

@test "tl-bench train-full and train-frozen: the frozen step trains fewer parameters and counts fewer FLOPs" {
    need_py
    run --separate-stderr "$TB/tl-bench" train-full small_cnn 4 --size 32 --iters 3 --warmup 0
    assert_success
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/full.json"
    run --separate-stderr "$TB/tl-bench" train-frozen small_cnn 4 --size 32 --iters 3 --warmup 0 \
        --freeze-until features.1
    assert_success
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/frozen.json"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/frozen.json" "d['freeze_until']")" features.1
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/frozen.json" \
        "0 < d['trainable_gmacs_per_image'] < d['gmacs_per_image'] and d['trainable_params'] > 0")" True
    # train-full: 3x the forward FLOPs
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/full.json" \
        "abs(d['gflops'] - d['images_per_s'] * 6 * d['gmacs_per_image']) <= 0.01 * d['gflops']")" True
}

@test "tl-bench train-frozen: the default split of resnet18 is layer4 + fc (the PyTorch peer's count)" {
    need_py
    run --separate-stderr "$TB/tl-bench" train-frozen resnet18 1 --size 32 --iters 1 --warmup 0
    assert_success
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/r.json"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/r.json" "d['freeze_until'], d['trainable_params']")" "('layer3', 8906728)"
}

@test "tl-bench --max-seconds stops after three timed runs once the time is up" {
    need_py
    run --separate-stderr "$TB/tl-bench" infer small_cnn 2 --size 32 --iters 100000 --warmup 0 --max-seconds 0.05
    assert_success
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/r.json"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/r.json" "3 <= len(d['runs']) < 100000")" True
}

@test "tl-bench: usage errors exit 2, run-time failures exit 1 with one line" {
    run --separate-stderr "$TB/tl-bench" serve small_cnn 4
    assert_failure 2
    run --separate-stderr "$TB/tl-bench" infer small_cnn
    assert_failure 2
    run --separate-stderr "$TB/tl-bench" train-frozen small_cnn 2 --size 32
    assert_failure 1
    assert_equal "$stderr" "tl-bench: no default freeze point for this architecture: give --freeze-until"
    run --separate-stderr "$TB/tl-bench" train-frozen small_cnn 2 --size 32 --freeze-until nowhere
    assert_failure 1
    assert_equal "$stderr" "tl-bench: no layer nowhere in small_cnn"
    run --separate-stderr "$TB/tl-bench" infer no_such_net 2
    assert_failure 1
    assert_output ""
}

@test "tl-fmaprobe: rates for each width and thread count that the CPU has" {
    need_py
    run --separate-stderr "$TB/tl-fmaprobe" 5
    assert_success
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/p.json"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/p.json" \
        "(d['gflops_256_1t'] > 1) == bool(d['avx2_fma']) and (d['gflops_512_1t'] > 1) == bool(d['avx512'])")" True
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/p.json" \
        "d['peak_2t'] == max(d['gflops_512_2t'], d['gflops_256_2t']) and d['scaling_256'] > 0")" True
    run "$TB/tl-fmaprobe" -1
    assert_failure 2
}

@test "tl-fmaprobe: the probe of the width tl's path uses (TL_SIMD honoured; none for scalar)" {
    need_py
    "$TB/tl-simd" | grep -qx avx2 || skip "this CPU has no AVX2"
    TL_SIMD=avx2 run --separate-stderr "$TB/tl-fmaprobe" 5
    assert_success
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/p.json"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/p.json" "d['isa'], d['isa_width']")" "('avx2', 256)"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/p.json" \
        "(d['isa_gflops_1t'], d['isa_gflops_2t']) == (d['gflops_256_1t'], d['gflops_256_2t']) and d['isa_scaling'] > 0")" True
    TL_SIMD=scalar run --separate-stderr "$TB/tl-fmaprobe" 5
    assert_success
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/s.json"
    assert_equal "$(json_get "$BATS_TEST_TMPDIR/s.json" "d['isa'], d['isa_width'], d['isa_gflops_2t']")" "('scalar', 0, 0.0)"
}

# A results file as bench.py writes it: tl twice as fast as the peer and
# using a quarter of its memory; the probe shows contention.
fake_results() {
    local w=$1
    mkdir -p "$w"
    cat >"$w/results.jsonl" <<'EOF'
{"case": "resnet18_infer_b32", "runner": "tl", "job": "infer", "arch": "resnet18", "batch": 32, "result": {"images_per_s": 100.0, "runs": [90, 100, 110], "peak_rss_mb": 100.0, "gmacs_per_image": 2.0}}
{"case": "resnet18_infer_b32", "runner": "onnxruntime", "job": "infer", "arch": "resnet18", "batch": 32, "result": {"images_per_s": 50.0, "runs": [50], "peak_rss_mb": 400.0}}
{"case": "resnet18_train_frozen_b32", "runner": "tl", "job": "train_frozen", "arch": "resnet18", "batch": 32, "result": {"images_per_s": 10.0, "runs": [10], "peak_rss_mb": 1000.0, "gmacs_per_image": 2.0, "trainable_gmacs_per_image": 0.5}}
{"case": "resnet18_train_frozen_b32", "runner": "pytorch-tuned", "job": "train_frozen", "arch": "resnet18", "batch": 32, "error": "timed out"}
EOF
    cat >"$w/probes.json" <<'EOF'
{"probes": [{"when": "before", "gflops_512_1t": 200, "gflops_512_2t": 250, "gflops_256_1t": 100, "gflops_256_2t": 190, "scaling_512": 1.25, "scaling_256": 1.9, "peak_1t": 200, "peak_2t": 250},
            {"when": "after", "gflops_512_1t": 210, "gflops_512_2t": 400, "gflops_256_1t": 100, "gflops_256_2t": 200, "scaling_512": 1.9, "scaling_256": 2.0, "peak_1t": 210, "peak_2t": 400}], "seconds": 5}
EOF
}

@test "bench.py report: rows as the issue specifies, ratio > 1 when tl is better, GFLOPS against the best probe" {
    need_py
    local root=$BATS_TEST_TMPDIR/root
    fake_results "$root/work"
    run --separate-stderr /usr/bin/python3 "$BENCH_PY" --root "$root" --work "$root/work" --report-only
    assert_success
    local j=$root/bench/latest.json m=$root/bench/latest-meta.json
    assert_equal "$(json_get "$j" "type(d).__name__, sorted(d[0])")" \
        "('list', ['case', 'metric', 'peer', 'peer_value', 'ratio', 'tl'])"
    assert_equal "$(json_get "$j" "[r['ratio'] for r in d if r['case'] == 'resnet18_infer_b32']")" "[2.0, 4.0]"
    assert_equal "$(json_get "$j" "[(r['peer'], r['peer_value'], r['ratio']) for r in d if r['case'].endswith('frozen_b32')][0]")" \
        "('pytorch-tuned', None, None)"
    # frozen step: 10 images/s x 2 x (2 + 2 x 0.5) GMACs = 60 GFLOPS of a 400 GFLOPS peak
    assert_equal "$(json_get "$m" "[(c['gflops'], c['fraction_of_peak']) for c in d['tl_cases']]")" \
        "[(400.0, 1.0), (60.0, 0.15)]"
    assert_equal "$(json_get "$m" "d['errors'][0]['error'], d['peak_gflops_used'], d['threads']")" "('timed out', 400, 2)"
    assert_line --partial "WARNING: the FMA probe shows contention"
    assert_line --regexp '^resnet18_infer_b32 +images_per_s +100\.0 +50\.0 +2\.00x'
}

@test "bench.py report on an AVX2-only CPU: % of peak and the contention check from the 256-bit probe" {
    need_py
    local root=$BATS_TEST_TMPDIR/root
    fake_results "$root/work"
    # no 512-bit FMAs (0 GFLOPS), tl on avx2, two threads twice one
    cat >"$root/work/probes.json" <<'EOF'
{"probes": [{"when": "before", "avx512": 0, "avx2_fma": 1, "gflops_512_1t": 0, "gflops_512_2t": 0, "gflops_256_1t": 100, "gflops_256_2t": 200, "scaling_512": 0, "scaling_256": 2.0, "peak_1t": 100, "peak_2t": 200, "isa": "avx2", "isa_width": 256, "isa_gflops_1t": 100, "isa_gflops_2t": 200, "isa_scaling": 2.0},
            {"when": "after", "avx512": 0, "avx2_fma": 1, "gflops_512_1t": 0, "gflops_512_2t": 0, "gflops_256_1t": 98, "gflops_256_2t": 190, "scaling_512": 0, "scaling_256": 1.94, "peak_1t": 98, "peak_2t": 190, "isa": "avx2", "isa_width": 256, "isa_gflops_1t": 98, "isa_gflops_2t": 190, "isa_scaling": 1.94}], "seconds": 5}
EOF
    run --separate-stderr /usr/bin/python3 "$BENCH_PY" --root "$root" --work "$root/work" --report-only
    assert_success
    refute_line --partial "WARNING"
    assert_line --partial "tl path avx2, 256-bit FMAs: 100 GFLOPS on 1 thread, 200 on 2 (x2.00)"
    local m=$root/bench/latest-meta.json
    # 100 images/s x 2 x 2 GMACs = 400 GFLOPS: twice the 200 GFLOPS peak
    assert_equal "$(json_get "$m" "d['peak_gflops_used'], d['tl_cases'][0]['fraction_of_peak'], d['fma_probe_isa']")" \
        "(200, 2.0, '256-bit FMA (AVX2+FMA)')"
    assert_equal "$(json_get "$m" "d['machine']['isa_tl'], d['machine']['isa_onnxruntime'], 'cpu_flags' in d['machine']")" \
        "('avx2', None, True)"
    # the same machine contended: the 256-bit probe says so
    sed -i 's/"isa_scaling": 1.94/"isa_scaling": 1.2/' "$root/work/probes.json"
    run --separate-stderr /usr/bin/python3 "$BENCH_PY" --root "$root" --work "$root/work" --report-only
    assert_success
    assert_line --partial "WARNING: the FMA probe shows contention"
}

@test "bench.py skips a case its runner's batch-1 rate says cannot finish in the time limit" {
    need_py
    local w=$BATS_TEST_TMPDIR/work
    mkdir -p "$w"
    seq 396 >"$w/hymenoptera.txt"
    run --separate-stderr /usr/bin/python3 -c "
import sys, types
sys.argv = ['bench.py']
sys.path.insert(0, '$(dirname "$BENCH_PY")')
import bench
b = bench.Bench(types.SimpleNamespace(root='.', work='$w', peers='pytorch-tuned'))
print(b.hopeless('pytorch-tuned', 'infer', 'vit_b_16', 32, 0.0956))
print(b.hopeless('pytorch-tuned', 'extract', 'vit_b_16', 32, 0.0956))
print(b.hopeless('pytorch-tuned', 'infer', 'vit_b_16', 32, 0.5))
print(b.hopeless('pytorch-tuned', 'infer', 'vit_b_16', 1, 0.001))
print(b.hopeless('pytorch-tuned', 'train_full', 'vit_ti_16', 32, 0.001))
print(b.hopeless('pytorch-tuned', 'infer', 'vit_b_16', 32, None))"
    assert_success
    # 64 images: one warm-up batch and one timed batch of 32
    assert_line --index 0 "skipped: 64 images at its batch-1 rate (0.0956 images/s) take 669 s, over the 300 s limit"
    assert_line --index 1 "skipped: 396 images at its batch-1 rate (0.0956 images/s) take 4142 s, over the 600 s limit"
    assert_line --index 2 None
    assert_line --index 3 None
    assert_line --index 4 None
    assert_line --index 5 None
}

@test "bench.py BENCH_PEER_ISA=avx2 limits PyTorch's runners to AVX2, not ONNX Runtime's; other values are refused" {
    need_py
    local w=$BATS_TEST_TMPDIR/work
    mkdir -p "$w"
    local prog="
import sys, types
sys.argv = ['bench.py']
sys.path.insert(0, '$(dirname "$BENCH_PY")')
import bench
b = bench.Bench(types.SimpleNamespace(root='.', work='$w', peers='pytorch-tuned,onnxruntime'))
for r in ('pytorch-tuned', 'pytorch-int8', 'onnxruntime', 'tl'):
    e = b.env(r, 'resnet18', 32)
    print(r, e.get('ATEN_CPU_CAPABILITY'), e.get('ONEDNN_MAX_CPU_ISA'))"
    BENCH_PEER_ISA=avx2 run --separate-stderr env -u ATEN_CPU_CAPABILITY -u ONEDNN_MAX_CPU_ISA /usr/bin/python3 -c "$prog"
    assert_success
    assert_line --index 0 "pytorch-tuned avx2 AVX2"
    assert_line --index 1 "pytorch-int8 avx2 AVX2"
    assert_line --index 2 "onnxruntime None None"
    assert_line --index 3 "tl None None"
    run --separate-stderr env -u BENCH_PEER_ISA -u ATEN_CPU_CAPABILITY -u ONEDNN_MAX_CPU_ISA /usr/bin/python3 -c "$prog"
    assert_success
    assert_line --index 0 "pytorch-tuned None None"
    BENCH_PEER_ISA=sse2 run --separate-stderr /usr/bin/python3 -c "$prog"
    assert_failure
    [[ "$stderr" == *"BENCH_PEER_ISA must be avx2"* ]]
}
