#!/bin/sh
# make bench: tl against ONNX Runtime and PyTorch on the same random-weight
# models and inputs, in one run. Finds or installs the peers (PyTorch from
# Debian for /usr/bin/python3; onnxruntime-node from npm into build/bench,
# never into the checkout), exports the models once, then runs every case
# (scripts/bench/bench.py) and writes bench/latest.json and
# bench/latest-meta.json.
#
#   BENCH_QUICK=1          a ~3-minute subset (mobilenet_v2, resnet18; 66 images
#                          for the end-to-end extraction)
#   BENCH_MODELS=a,b       the models to run (inference models; training
#                          models: mobilenet_v2, efficientnet_b0, resnet18, vit_ti_16)
#   BENCH_CASES=c1,c2      only these cases (names as in bench/latest.json)
#   BENCH_THREADS=2        threads of every runner
#   BENCH_PEERS=...        default onnxruntime,pytorch,pytorch-tuned
#   BENCH_PEER_ISA=avx2    PyTorch limited to AVX2 too (with TL_SIMD=avx2: an
#                          AVX2 machine's comparison on an AVX-512 one; ONNX
#                          Runtime has no such switch)
#   TL_DATA=DIR            where shared/ is (default ../shared)
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$root/build/bench
py=/usr/bin/python3
mkdir -p "$work"
cd "$root"

say() { echo "bench: $*" >&2; }

# The drivers (tests/tools) and the tools; the Makefile's `bench` rule has
# built them already when run through make.
make -s bin/tl-extract bin/tl-quantize build/tests/tl-bench build/tests/tl-fmaprobe build/tests/tl-simd

peers=${BENCH_PEERS:-onnxruntime,pytorch,pytorch-tuned}

# PyTorch: needed for the peers and to make the models.
if ! $py -c 'import torch, torchvision, PIL, numpy' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing PyTorch from Debian"
        apt-get install -y python3-torch python3-torchvision python3-numpy python3-pil >&2
    fi
fi
if ! $py -c 'import torch, torchvision, PIL, numpy' 2>/dev/null; then
    say "PyTorch not available for $py (make deps): tl runs alone on scratch-initialised models"
    peers=$(echo "$peers" | tr , '\n' | grep -v -e pytorch -e onnxruntime | paste -sd, -)
fi

# ONNX Runtime for Node.js. Its post-install script would fetch GPU
# binaries (offline here); the CPU library ships inside the package.
case ",$peers," in *,onnxruntime,*)
    if ! command -v node >/dev/null; then
        say "node not found: skipping ONNX Runtime"
        peers=$(echo "$peers" | tr , '\n' | grep -v onnxruntime | paste -sd, -)
    elif [ ! -d "$work/node/node_modules/onnxruntime-node" ]; then
        say "installing onnxruntime-node 1.30.0 into build/bench/node"
        if ! ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix "$work/node" onnxruntime-node@1.30.0 >"$work/npm.log" 2>&1; then
            say "npm install failed (see build/bench/npm.log): skipping ONNX Runtime"
            peers=$(echo "$peers" | tr , '\n' | grep -v onnxruntime | paste -sd, -)
        fi
    fi
esac

# The models to export; bench.py picks its cases' models itself unless
# BENCH_MODELS names them.
models=${BENCH_MODELS:-}
if [ -z "$models" ]; then
    if [ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ]; then
        models=mobilenet_v2,resnet18
    else
        models=mobilenet_v2,efficientnet_b0,resnet18,resnet50,vgg16,vit_b_16,vit_ti_16
    fi
fi
if $py -c 'import torch' 2>/dev/null; then
    say "exporting random-weight models ($models) to build/bench/models"
    OMP_NUM_THREADS=2 nice -n 5 $py scripts/bench/export_models.py "$work/models" $(echo "$models" | tr , ' ')
fi

# End-to-end extraction: every JPEG of hymenoptera, in a fixed order.
shared=${TL_DATA:-$root/../shared}
if [ -d "$shared/datasets/hymenoptera" ]; then
    # The quick run takes every sixth (66 images).
    find "$shared/datasets/hymenoptera" -name '*.jpg' | LC_ALL=C sort |
        if [ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ]; then awk 'NR % 6 == 1'; else cat; fi \
        >"$work/hymenoptera.txt"
else
    say "$shared/datasets/hymenoptera not found: skipping the end-to-end extraction"
    rm -f "$work/hymenoptera.txt"
fi

# int8 checkpoints of the float models for the <model>_infer_int8_b32 rows,
# calibrated on 32 hymenoptera images (any images do for speed).
if [ -f "$work/hymenoptera.txt" ]; then
    awk 'NR % 12 == 1' "$work/hymenoptera.txt" | head -n 32 >"$work/calibration.txt"
    for m in $(echo "$models" | tr , ' '); do
        case $m in mobilenet_v2|resnet18|resnet50) ;; *) continue ;; esac
        [ -f "$work/models/$m.safetensors" ] && [ ! -f "$work/models/${m}_int8.safetensors" ] || continue
        say "quantising $m to int8"
        bin/tl-quantize -q -m "$work/models/$m.safetensors" --calibrate "$work/calibration.txt" \
            -o "$work/models/${m}_int8.safetensors" || say "tl-quantize failed for $m"
    done
fi

exec $py scripts/bench/bench.py --root "$root" --work "$work" --peers "$peers"
