#!/bin/sh
# Long-run measurements (issue 8, item 5); not part of `make check`.
#  1. tl-extract over N images (default 20000) given as a list of paths on
#     standard input (a pipe): VmRSS is sampled every second and the curve's
#     min / median / max after a warm-up is printed. Memory must stay flat.
#  2. tl-extract --skip-bad over good images mixed with 1000 corrupt files:
#     it must finish (exit 0) and report exactly the corrupt count.
# The model is MobileNetV1 0.25/128 converted from ../shared at run time, or,
# without ../shared, a scratch small_cnn; the images are ../shared's
# hymenoptera JPEGs repeated, or generated PPMs.
#
# usage: scripts/soak.sh [N_IMAGES] [N_CORRUPT]      (run it under nice)
# env:   TL_BIN (default ./bin), TL_DATA (default ../shared), SOAK_DIR
#        (scratch folder, default a new one under /tmp), SOAK_THREADS (2),
#        SOAK_WARMUP (seconds left out of the statistics, default 10)
set -eu

N=${1:-20000}
NBAD=${2:-1000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TL_BIN:-$ROOT/bin}
SHARED=${TL_DATA:-$ROOT/../shared}
J=${SOAK_THREADS:-2}
WARMUP=${SOAK_WARMUP:-10}
DIR=${SOAK_DIR:-$(mktemp -d /tmp/tl-soak.XXXXXX)}
mkdir -p "$DIR"
log() { printf 'soak: %s\n' "$*" >&2; }

# ---- a model and a pool of good images ----
if [ -f "$SHARED/models/tflite/mobilenet_v1_0.25_128_quant.tflite" ] && [ -d "$SHARED/datasets/hymenoptera" ]; then
    "$BIN/tl-convert" -q "$SHARED/models/tflite/mobilenet_v1_0.25_128_quant.tflite" -o "$DIR/model.safetensors"
    find "$SHARED/datasets/hymenoptera" -name '*.jpg' | sort >"$DIR/pool.txt"
    log "model mobilenet_v1_0.25_128 (converted), $(wc -l <"$DIR/pool.txt") hymenoptera JPEGs repeated"
else
    mkdir -p "$DIR/gen/a" "$DIR/gen/b"
    LC_ALL=C awk -v dir="$DIR/gen" 'BEGIN {
        srand(1)
        for (i = 0; i < 200; i++) {
            f = sprintf("%s/%s/%03d.ppm", dir, i % 2 ? "b" : "a", i)
            printf "P6\n64 48\n255\n" > f
            for (p = 0; p < 64 * 48; p++) printf "%c%c%c", int(rand() * 256), int(rand() * 256), int(rand() * 256) > f
            close(f)
        }
    }'
    "$BIN/tl-finetune" -q --scratch --arch small_cnn --input-size 32 "$DIR/gen" --val-split 0 --epochs 1 \
        --batch 16 -j "$J" -o "$DIR/model.safetensors"
    find "$DIR/gen" -name '*.ppm' | sort >"$DIR/pool.txt"
    log "no ../shared: scratch small_cnn, 200 generated PPMs repeated"
fi

# paths N: N paths cycling through the pool, written as they are read.
paths() { awk -v n="$1" '{ p[NR] = $0 } END { for (i = 0; i < n; i++) print p[i % NR + 1] }' "$DIR/pool.txt"; }

# rss_stats FILE: min, median and max (MiB) of the kB samples after WARMUP.
rss_stats() {
    awk -v w="$WARMUP" 'NR > w { v[++n] = $1 } END {
        if (n == 0) { print "no samples after the warm-up"; exit 1 }
        for (i = 2; i <= n; i++) { x = v[i]; j = i - 1; while (j > 0 && v[j] > x) { v[j + 1] = v[j]; j-- } v[j + 1] = x }
        printf "%d samples: min %.1f MiB, median %.1f MiB, max %.1f MiB (max - min %.1f MiB)\n",
               n, v[1] / 1024, v[int((n + 1) / 2)] / 1024, v[n] / 1024, (v[n] - v[1]) / 1024
    }' "$1"
}

# ---- 1. a long run through a pipe, VmRSS sampled every second ----
log "1: tl-extract over $N images through a pipe (-j $J)"
t0=$(date +%s)
paths "$N" | "$BIN/tl-extract" -m "$DIR/model.safetensors" -j "$J" - -o "$DIR/long.tlf" 2>"$DIR/long.err" &
pid=$!
: >"$DIR/rss.txt"
while kill -0 "$pid" 2>/dev/null; do
    awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null >>"$DIR/rss.txt" || true
    sleep 1
done
wait "$pid"
t1=$(date +%s)
log "1: done in $((t1 - t0)) s: $(tail -n 1 "$DIR/long.err"); $(wc -c <"$DIR/long.tlf") bytes"
printf 'rss over %d images: %s\n' "$N" "$(rss_stats "$DIR/rss.txt")"

# ---- 2. corrupt files among good ones, --skip-bad ----
log "2: $NBAD corrupt files among $((2 * NBAD)) good ones"
mkdir -p "$DIR/bad"
good=$(head -n 1 "$DIR/pool.txt")
# Five kinds of damage, in turn: empty, random bytes, a valid header cut
# short, garbage after a JPEG/PPM signature, and a file that is a folder
# name away from existing (a dangling path).
i=0
while [ "$i" -lt "$NBAD" ]; do
    f="$DIR/bad/bad$i.jpg"
    case $((i % 5)) in
    0) : >"$f" ;;
    1) head -c $((100 + i)) /dev/urandom >"$f" ;;
    2) head -c $((200 + i % 700)) "$good" >"$f" ;;
    3) { printf '\377\330\377\340'; head -c 300 /dev/urandom; } >"$f" ;;
    4) f="$DIR/bad/missing$i.jpg" ;;
    esac
    printf '%s\n' "$f"
    i=$((i + 1))
done >"$DIR/bad.txt"
paths $((2 * NBAD)) | awk 'NR == FNR { b[NR] = $0; next } { print; if (FNR % 2 == 0) print b[FNR / 2] }' \
    "$DIR/bad.txt" - >"$DIR/mixed.txt"
st=0
"$BIN/tl-extract" -m "$DIR/model.safetensors" -j "$J" --skip-bad - -o "$DIR/mixed.tlf" <"$DIR/mixed.txt" \
    2>"$DIR/mixed.err" || st=$?
skipped=$(grep -c 'skipping' "$DIR/mixed.err" || true)
summary=$(grep -i 'skipped [0-9]' "$DIR/mixed.err" | tail -n 1)
printf 'skip-bad: exit %d, %d lines in the list, %s (%d warnings); expected %d skipped\n' "$st" \
    "$(wc -l <"$DIR/mixed.txt")" "${summary:-no summary line}" "$skipped" "$NBAD"
log "scratch files in $DIR"
