#!/usr/bin/env bats
# tl-quantize and the int8 engine end to end on real models and images from
# ../shared: the checkpoint loads in every inference tool, its features are
# the same bytes for any thread count and SIMD path, close to the float
# network's, and training refuses it. (Kernel-level exactness against a
# reference of TFLite's integer arithmetic: tests/unit/test_q8.c.)

load helpers

setup_file() {
    have_shared || return 0
    local d=$BATS_FILE_TMPDIR
    convert_model mobilenet_v1_0.25_128_quant "$d/f.safetensors"
    subset_manifest "$d/calib.tsv" train 8
    tl quantize -q -m "$d/f.safetensors" --calibrate "$d/calib.tsv" -o "$d/q.safetensors"
    tl quantize -q -m "$d/f.safetensors" --calibrate "$d/calib.tsv" --quantize-ends -o "$d/qall.safetensors"
    subset_manifest "$d/val.tsv" val 6
}

@test "quantize: an int8 checkpoint with documented tensors and metadata" {
    need_shared
    run tl info "$BATS_FILE_TMPDIR/q.safetensors"
    assert_success
    # the header names the integer weights and their parameters
    local hdr
    hdr=$(head -c 200000 "$BATS_FILE_TMPDIR/q.safetensors" | tr -d '\0')
    [[ $hdr == *'"model.1.0.weight":{"dtype":"I8"'* || $hdr == *'.weight":{"dtype":"I8"'* ]]
    [[ $hdr == *'.weight_scale"'* && $hdr == *'.bias_int32"'* && $hdr == *'.input_zero_point"'* ]]
    [[ $hdr == *'"tl.quant":"int8"'* && $hdr == *'"tl.quant.float_layers":'* ]]
}

@test "quantize: int8 features are the same bytes for 1 and 2 threads and every SIMD path" {
    need_shared
    local d=$BATS_FILE_TMPDIR
    tl extract -q -m "$d/q.safetensors" -f tsv -j 1 "$d/val.tsv" -o "$d/j1.tsv"
    tl extract -q -m "$d/q.safetensors" -f tsv -j 2 -b 5 "$d/val.tsv" -o "$d/j2.tsv"
    cmp "$d/j1.tsv" "$d/j2.tsv"
    # With every layer in int8 the network is integer arithmetic end to end:
    # the same bytes on every path. (The default model's float first layer
    # rounds differently per float path, which can move a quantised value by
    # one step; its int8 paths still agree where the float kernels are the
    # same: avx512 and avx512vnni.)
    tl extract -q -m "$d/qall.safetensors" -f tsv "$d/val.tsv" -o "$d/all.tsv"
    for p in scalar avx2 avx512 avx512vnni; do
        "$TL_TEST_BIN/tl-simd" | grep -qx "$p" || { echo "# no $p on this CPU" >&3; continue; }
        TL_SIMD=$p tl extract -q -m "$d/qall.safetensors" -f tsv -j 2 "$d/val.tsv" -o "$d/$p.tsv"
        cmp "$d/all.tsv" "$d/$p.tsv" || fail "TL_SIMD=$p gives other features"
    done
    if "$TL_TEST_BIN/tl-simd" | grep -qx avx512vnni; then
        # both named: under a forced TL_SIMD=scalar or avx2, j1 is that path's
        TL_SIMD=avx512vnni tl extract -q -m "$d/q.safetensors" -f tsv "$d/val.tsv" -o "$d/vnni.tsv"
        TL_SIMD=avx512 tl extract -q -m "$d/q.safetensors" -f tsv "$d/val.tsv" -o "$d/bw.tsv"
        cmp "$d/vnni.tsv" "$d/bw.tsv"
    fi
}

@test "quantize: SqueezeNet's 3x3 convolutions (integer Winograd on AVX2/AVX-512BW) give the same bytes on every path" {
    need_shared
    local sq=$TL_SHARED/models/safetensors/squeezenet1_1.safetensors d=$BATS_TEST_TMPDIR p
    [ -f "$sq" ] || skip "$sq not found"
    head -n 4 "$BATS_FILE_TMPDIR/calib.tsv" >"$d/four.tsv"
    tl quantize -q -m "$sq" --calibrate "$d/four.tsv" --quantize-ends -o "$d/sq.safetensors"
    TL_SIMD=scalar tl extract -q -m "$d/sq.safetensors" -f tsv -j 1 "$d/four.tsv" -o "$d/scalar.tsv"
    for p in avx2 avx512 avx512vnni; do
        "$TL_TEST_BIN/tl-simd" | grep -qx "$p" || { echo "# no $p on this CPU" >&3; continue; }
        TL_SIMD=$p tl extract -q -m "$d/sq.safetensors" -f tsv -j 2 -b 3 "$d/four.tsv" -o "$d/$p.tsv"
        cmp "$d/scalar.tsv" "$d/$p.tsv" || fail "TL_SIMD=$p gives other features than the direct scalar path"
    done
}

@test "quantize: ResNet-18's max pool keeps its input's parameters; int8 bytes equal for any threads, batch and path" {
    /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null || skip "PyTorch not installed for /usr/bin/python3"
    local d=$BATS_TEST_TMPDIR p
    mkdir -p "$d/img"
    /usr/bin/python3 - "$d" "$BATS_TEST_DIRNAME/../parity" <<'PY'
import os, sys, torch, torchvision
sys.path.insert(0, sys.argv[2])
from parity_common import meta_for, write_safetensors, render_images
torch.manual_seed(0)
m = torchvision.models.resnet18(weights=None)
for mod in m.modules():  # batch norms that are not the identity
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.running_mean.data.uniform_(-0.1, 0.1)
        mod.running_var.data.uniform_(0.5, 2)
        mod.bias.data.uniform_(-0.1, 0.1)
write_safetensors(os.path.join(sys.argv[1], "r18.safetensors"), m.state_dict(), meta_for("resnet18", 1000, 64))
render_images(os.path.join(sys.argv[1], "img"), 6, 64)
PY
    tl quantize -q -m "$d/r18.safetensors" --calibrate "$d/img" -o "$d/q.safetensors"
    tl quantize -q -m "$d/r18.safetensors" --calibrate "$d/img" --quantize-ends -o "$d/qall.safetensors"
    # the layer after the max pool reads the first convolution's parameters:
    # the engine pools its uint8 output as it is, with no rescaling
    /usr/bin/python3 - "$d/qall.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
def raw(k):
    o = h[k]["data_offsets"]
    return b[8 + n + o[0]:8 + n + o[1]]
for a, c in (("conv1.output_scale", "layer1.0.conv1.input_scale"),
             ("conv1.output_zero_point", "layer1.0.conv1.input_zero_point")):
    assert raw(a) == raw(c), (a, raw(a), c, raw(c))
PY
    for m in q qall; do
        tl extract -q -m "$d/$m.safetensors" -l logits -f tsv -j 1 "$d/img" -o "$d/${m}1.tsv"
        tl extract -q -m "$d/$m.safetensors" -l logits -f tsv -j 2 -b 4 "$d/img" -o "$d/${m}2.tsv"
        cmp "$d/${m}1.tsv" "$d/${m}2.tsv"
    done
    for p in scalar avx2 avx512 avx512vnni; do
        "$TL_TEST_BIN/tl-simd" | grep -qx "$p" || continue
        TL_SIMD=$p tl extract -q -m "$d/qall.safetensors" -l logits -f tsv -j 2 "$d/img" -o "$d/$p.tsv"
        cmp "$d/qall1.tsv" "$d/$p.tsv" || fail "TL_SIMD=$p gives other logits"
    done
}

@test "quantize: int8 features stay close to the float network's, predictions agree" {
    need_shared
    local d=$BATS_FILE_TMPDIR
    tl extract -q -m "$d/f.safetensors" -f tsv "$d/val.tsv" -o "$d/float.tsv"
    tl extract -q -m "$d/q.safetensors" -f tsv "$d/val.tsv" -o "$d/int8.tsv"
    # cosine similarity of each image's pooled features
    run paste "$d/float.tsv" "$d/int8.tsv"
    local worst
    worst=$(paste <(grep -v '^#' "$d/float.tsv") <(grep -v '^#' "$d/int8.tsv") | awk -F'\t' '{
        n = NF / 2; ab = aa = bb = 0
        for (i = 3; i <= n; i++) { a = $i; b = $(i + n); ab += a * b; aa += a * a; bb += b * b }
        c = ab / sqrt(aa * bb); if (NR == 1 || c < w) w = c } END { print w }')
    echo "worst cosine $worst"
    float_ge "$worst" 0.95
    local agree
    agree=$(paste <(tl predict -q -m "$d/f.safetensors" -k 1 "$d/val.tsv" | cut -f2) \
                  <(tl predict -q -m "$d/q.safetensors" -k 1 "$d/val.tsv" | cut -f2) | awk -F'\t' '$1 == $2' | wc -l)
    echo "top-1 agreement $agree of 13"
    [ "$agree" -ge 9 ]
}

@test "quantize: training and quantising again refuse an int8 checkpoint; bad options are usage errors" {
    need_shared
    local d=$BATS_FILE_TMPDIR
    run tl finetune -m "$d/q.safetensors" --epochs 1 "$d/calib.tsv" -o "$d/ft.safetensors"
    [ "$status" -eq 2 ]
    assert_output --partial "int8 checkpoint runs inference only"
    run tl quantize -m "$d/q.safetensors" --calibrate "$d/calib.tsv" -o "$d/qq.safetensors"
    [ "$status" -eq 2 ]
    assert_output --partial "already an int8 checkpoint"
    run tl quantize -m "$d/f.safetensors" -o "$d/x.safetensors"
    [ "$status" -eq 2 ]
    run tl quantize -m "$d/f.safetensors" --calibrate "$d/calib.tsv" --keep-float nosuchlayer -o "$d/x.safetensors"
    [ "$status" -eq 2 ]
    assert_output --partial "--keep-float: no layer named 'nosuchlayer'"
    [ ! -e "$d/x.safetensors" ]
}
