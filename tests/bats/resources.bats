#!/usr/bin/env bats
# The resource contract of man tl.7 (ROBUSTNESS), measured: each reader of
# untrusted input over its worst-case file at 1x, 10x and 100x the size
# (tests/hostile/gen.py), through tests/tools/tl-parse.
#  - work: instructions executed, counted by valgrind (deterministic, so
#    no timing on a loaded machine): the work added from 10x to 100x may
#    be at most 20 times the work added from 1x to 10x (linear growth
#    gives 10, n log n about 12, quadratic about 110);
#  - memory: peak resident size (/usr/bin/time), which may grow by at most
#    the contract's bytes per input byte (plus 4 MiB).
# Issue 15 found 200,000 safetensors names or predictions classes taking
# minutes, and 2.9 GB for a 100 MB JSON header; this fails on either.
# Skipped under the sanitizers (their allocator and speed mean nothing
# here) and without valgrind or /usr/bin/time.

load helpers

GEN=$BATS_TEST_DIRNAME/../hostile/gen.py
PARSE=${TL_TEST_BIN:-$BATS_TEST_DIRNAME/../../build/tests}/tl-parse

setup() {
    [ -z "${TL_SANITIZE:-}" ] || skip "resource measurements mean nothing under the sanitizers"
    [ -x /usr/bin/python3 ] || skip "no /usr/bin/python3 to make the inputs"
    [ -x "$PARSE" ] || skip "tests/tools/tl-parse not built (make test-tools)"
}

reader_of() {
    case $1 in
    json*) echo json ;;
    st-*) echo safetensors ;;
    tlf-* | tsv-*) echo features ;;
    pred-*) echo predictions ;;
    tflite-*) echo tflite ;;
    *) echo "$1" ;;
    esac
}

instructions() {
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$PARSE" "$1" "$2" 2>&1 >/dev/null |
        sed -n 's/.*I *refs: *//p' | tr -d ,
}

peak_kb() { /usr/bin/time -f %M "$PARSE" "$1" "$2" 2>&1 >/dev/null | tail -n 1; }

# contract KIND BYTES_PER_BYTE: the growth checks above for one reader.
contract() {
    local kind=$1 factor=$2 reader s f
    reader=$(reader_of "$kind")
    local -A size ir kb
    # Relative names: a manifest's directory is joined to every path it
    # lists, so where the test's temporary directory lies must not count.
    cd "$BATS_TEST_TMPDIR" || fail "no $BATS_TEST_TMPDIR"
    for s in 1 10 100; do
        f=$kind.$s
        timeout 120 /usr/bin/python3 "$GEN" "$kind" "$s" "$f"
        size[$s]=$(stat -c %s "$f")
        timeout 120 "$PARSE" "$reader" "$f" >/dev/null || fail "$kind x$s: tl-parse failed"
        if [ -x /usr/bin/time ]; then
            kb[$s]=$(peak_kb "$reader" "$f")
        fi
        if command -v valgrind >/dev/null; then
            ir[$s]=$(timeout 600 bash -c "$(declare -f instructions); PARSE='$PARSE' instructions '$reader' '$f'")
            [ -n "${ir[$s]}" ] || fail "$kind x$s: no instruction count from valgrind"
        fi
        rm -f "$f"
    done
    if [ -n "${ir[1]:-}" ]; then
        local d1=$((ir[10] - ir[1])) d2=$((ir[100] - ir[10]))
        echo "# $kind: ${size[1]}, ${size[10]}, ${size[100]} bytes: ${ir[1]}, ${ir[10]}, ${ir[100]} instructions" >&3
        [ "$d1" -gt 0 ] || fail "$kind: no more work for 10x the input"
        [ "$d2" -le $((20 * d1)) ] ||
            fail "$kind: super-linear work: +$d1 instructions from 1x to 10x, +$d2 from 10x to 100x"
    fi
    if [ -n "${kb[1]:-}" ]; then
        local grown=$(((kb[100] - kb[1]) * 1024)) allowed=$((factor * (size[100] - size[1]) + (4 << 20)))
        echo "# $kind: peak ${kb[1]}, ${kb[10]}, ${kb[100]} kB" >&3
        [ "$grown" -le "$allowed" ] ||
            fail "$kind: memory grew by $grown bytes for $((size[100] - size[1])) more input bytes (contract: ${factor}x)"
    fi
}

@test "resources: a JSON tree of N bytes ([0,0,...]) takes at most 9N, linear work" { contract json 9; }
@test "resources: JSON object keys (the duplicate check) at most 9N, n log n work" { contract json-keys 9; }
@test "resources: safetensors header with many tensor names at most 4N" { contract st-names 4; }
@test "resources: safetensors metadata with many keys at most 10N (65,536 keys at most)" { contract st-meta 10; }
@test "resources: .tlf header with many classes at most 8N" { contract tlf-classes 8; }
@test "resources: TSV features looking up many classes at most 8N" { contract tsv-classes 8; }
@test "resources: predictions header with many classes at most 3N" { contract pred-classes 3; }
@test "resources: manifest lines at most 8N" { contract manifest 8; }
@test "resources: label file lines at most 4N" { contract labels 4; }
@test "resources: training log lines at most 4N" { contract runlog 4; }
@test "resources: TFLite graph of many operators at most 4N (and the mapping)" { contract tflite-ops 5; }
