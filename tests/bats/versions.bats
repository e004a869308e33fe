#!/usr/bin/env bats
# Versioned formats (tl-formats(5), COMPATIBILITY): every file tl writes says
# its format version; every reader refuses a newer one by saying so, before
# it reads anything else, and reads its own.

load helpers

# set_meta SRC KEY VALUE OUT: SRC's safetensors with one metadata value set.
set_meta() {
    /usr/bin/python3 - "$@" <<'EOF'
import json, struct, sys
src, key, val, out = sys.argv[1:5]
b = open(src, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
h.setdefault('__metadata__', {})[key] = val
hb = json.dumps(h, separators=(',', ':')).encode()
hb += b' ' * (-len(hb) % 8)
open(out, 'wb').write(struct.pack('<Q', len(hb)) + hb + b[8 + n:])
EOF
}

setup_file() {
    local d=$BATS_FILE_TMPDIR
    gen_ppms "$d/img" 1 4
    tl finetune -q --scratch --arch small_cnn --input-size 32 "$d/img" --epochs 1 --batch 8 -j 1 --seed 1 \
        --log "$d/run.jsonl" -o "$d/net.safetensors"
    gen_blobs "$d/train.tsv" 1 30 4 2
    gen_blobs "$d/test.tsv" 2 10 4 2
    tl finetune -q "$d/train.tsv" -o "$d/head.safetensors"
}

setup() {
    [ -x /usr/bin/python3 ] || skip "no /usr/bin/python3 to edit safetensors metadata"
    D=$BATS_FILE_TMPDIR
}

@test "this tl writes its format versions: tl.format 1 in networks and heads, format 1 in logs" {
    run tl info --metadata "$D/net.safetensors"
    assert_success
    assert_output --regexp 'tl\.format[^0-9]*1'
    run tl info --metadata "$D/head.safetensors"
    assert_success
    assert_output --regexp 'tl\.format[^0-9]*1'
    head -n 1 "$D/run.jsonl" | grep -q '^{"phase":"start","format":1,'
}

@test "a network from a newer tl is refused by every tool that loads it, and nothing is written" {
    set_meta "$D/net.safetensors" tl.format 1 "$BATS_TEST_TMPDIR/same.safetensors"
    run tl info "$BATS_TEST_TMPDIR/same.safetensors"
    assert_success
    local n=$BATS_TEST_TMPDIR/newer.safetensors img=$D/img/red/000.ppm
    set_meta "$D/net.safetensors" tl.format 2 "$n"
    for cmd in "info $n" "predict -m $n $img" "extract -m $n -o $BATS_TEST_TMPDIR/x.tlf $img" \
        "eval -m $n $D/img" "export $n -o $BATS_TEST_TMPDIR/x.onnx" \
        "finetune -m $n --epochs 1 -o $BATS_TEST_TMPDIR/x.safetensors $D/img"; do
        # shellcheck disable=SC2086
        run --separate-stderr tl $cmd
        [ "$status" -eq 1 ] || { echo "tl $cmd: exit $status"; false; }
        [[ $stderr == *"checkpoint (tl.format) version 2 was written by a newer tl (this one reads up to 1)"* ]] ||
            { echo "tl $cmd: $stderr"; false; }
        [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
    done
    no_files_like "$BATS_TEST_TMPDIR" 'x.*'
}

@test "a head from a newer tl is refused; a malformed format is an error, not format 1" {
    local h=$BATS_TEST_TMPDIR/h.safetensors
    set_meta "$D/head.safetensors" tl.format 7 "$h"
    run --separate-stderr tl eval -m "$h" "$D/test.tsv"
    assert_failure 1
    [[ $stderr == *"version 7 was written by a newer tl"* ]]
    run --separate-stderr tl predict -m "$h" "$D/test.tsv"
    assert_failure 1
    set_meta "$D/head.safetensors" tl.format one "$h"
    run --separate-stderr tl eval -m "$h" "$D/test.tsv"
    assert_failure 1
    [[ $stderr == *"version is not a whole number"* ]]
}

@test "feature files and logs from a newer tl are refused, naming the file" {
    local f=$BATS_TEST_TMPDIR/newer.tsv
    sed '1s/.*/#tl-features\t2/' "$D/train.tsv" >"$f"
    run --separate-stderr tl finetune "$f" -o "$BATS_TEST_TMPDIR/h.safetensors"
    assert_failure 1
    [[ $stderr == *"newer.tsv: TSV feature version 2 was written by a newer tl"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/h.safetensors" ]
    sed '1s/"format":1,/"format":2,/' "$D/run.jsonl" >"$BATS_TEST_TMPDIR/newer.jsonl"
    run --separate-stderr tl compare "$BATS_TEST_TMPDIR/newer.jsonl"
    assert_failure 1
    [[ $stderr == *"newer.jsonl: line 1: log version 2 was written by a newer tl"* ]]
    # a log without a format (written before logs had one) is format 1
    sed '1s/"format":1,//' "$D/run.jsonl" >"$BATS_TEST_TMPDIR/old.jsonl"
    run tl compare "$BATS_TEST_TMPDIR/old.jsonl"
    assert_success
}

@test "an extraction log says its format too, and a newer one is refused" {
    tl extract -q -m "$D/net.safetensors" --log "$BATS_TEST_TMPDIR/x.jsonl" -o "$BATS_TEST_TMPDIR/x.tlf" "$D/img"
    grep -q '^{"phase":"extract","format":1,' "$BATS_TEST_TMPDIR/x.jsonl"
    cat "$BATS_TEST_TMPDIR/x.jsonl" "$D/run.jsonl" >"$BATS_TEST_TMPDIR/both.jsonl"
    run tl compare "$BATS_TEST_TMPDIR/both.jsonl"
    assert_success
    sed 's/"format":1,/"format":2,/' "$BATS_TEST_TMPDIR/x.jsonl" >"$BATS_TEST_TMPDIR/newer.jsonl"
    cat "$D/run.jsonl" >>"$BATS_TEST_TMPDIR/newer.jsonl"
    run --separate-stderr tl compare "$BATS_TEST_TMPDIR/newer.jsonl"
    assert_failure 1
    [[ $stderr == *"line 1: log version 2 was written by a newer tl"* ]]
}
