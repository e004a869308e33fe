#!/bin/bash
# Runs the libFuzzer targets built by `make fuzz-build` (FUZZDIR/fuzz_*),
# one after another, each for SECONDS, and prints one line per target:
# executions, exec/s, coverage (cov/ft), corpus size, and any crash.
#   --smoke  a fresh scratch corpus per run (seeds and regressions are only
#            read), for `make check-fuzz`; otherwise the corpus grows in
#            FUZZDIR/corpus/<target> across runs (`make fuzz`).
# Every input in tests/fuzz/regressions/<target> is replayed first. Exits 1
# if any target crashed, leaked, timed out or went over the memory caps.
# Usage: scripts/fuzz-run.sh [--smoke] [--seconds N] FUZZDIR [TARGET...]
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
smoke=0 secs=600
while [ $# -gt 0 ]; do
    case $1 in
    --smoke) smoke=1; shift ;;
    --seconds) secs=$2; shift 2 ;;
    *) break ;;
    esac
done
dir=${1:?usage: fuzz-run.sh [--smoke] [--seconds N] FUZZDIR [TARGET...]}
shift
targets=$*
if [ -z "$targets" ]; then
    for b in "$dir"/fuzz_*; do
        [ -x "$b" ] && [ -f "$b" ] && targets="$targets ${b##*/fuzz_}"
    done
fi
# (Re)generate the seeds when missing or older than the script making them.
if [ ! -d "$dir/seeds" ] || [ "$here/scripts/fuzz-seeds.sh" -nt "$dir/seeds" ]; then
    rm -rf "$dir/seeds"
    "$here/scripts/fuzz-seeds.sh" "$dir/seeds" || exit 1
fi
mkdir -p "$dir/logs" "$dir/artifacts"
# FUZZ_TIMEOUT (10 s) flags a hang; raise it on a heavily loaded machine,
# where a starved niced fuzzer can stall on an ordinary input.
# Allocations are capped: a parser must refuse absurd sizes before it
# allocates, and a big header must not pass for a real out-of-memory.
caps="-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=${FUZZ_TIMEOUT:-10}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
fail=0
for t in $targets; do
    bin=$dir/fuzz_$t
    [ -x "$bin" ] || { echo "fuzz-run: $bin: not built" >&2; fail=1; continue; }
    if [ $smoke = 1 ]; then
        corpus=$(mktemp -d "${TMPDIR:-/tmp}/tl-fuzz-$t.XXXXXX")
    else
        corpus=$dir/corpus/$t
        mkdir -p "$corpus"
    fi
    dict=
    [ -f "$here/tests/fuzz/dict/$t.dict" ] && dict=-dict=$here/tests/fuzz/dict/$t.dict
    dirs=
    for d in "$here/tests/fuzz/regressions/$t" "$here/tests/fuzz/seeds/$t" "$dir/seeds/$t"; do
        [ -d "$d" ] && dirs="$dirs $d"
    done
    log=$dir/logs/$t.log
    # shellcheck disable=SC2086
    "$bin" $caps $dict -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/$t-" "$corpus" $dirs > "$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
    if [ $rc -ne 0 ]; then
        fail=1
        why=$(grep -m1 -E '^==[0-9]+==ERROR|runtime error|^fuzz:|ERROR: libFuzzer' "$log")
        printf '%-12s FAILED (exit %d): %s\n  log: %s\n' "$t" $rc "$why" "$log"
    else
        printf '%-12s ok  %10s execs  %6s exec/s  cov %5s  ft %6s  corpus %s\n' \
            "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
    fi
    [ $smoke = 1 ] && rm -rf "$corpus"
done
exit $fail
