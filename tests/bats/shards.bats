#!/usr/bin/env bats
# Extraction for more than one machine (issue 16): the NumPy archive
# format. Self-contained: tiny generated images and a scratch small_cnn.

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
