#!/bin/sh
# Few-shot accuracy: heads trained on N images per class, drawn at random
# (several draws, seeded), scored on a fixed test set; the mean and the
# spread over the draws for every head and N.
#
# usage: scripts/fewshot.sh [--shots 1,5,10] [--draws 5] [--heads logreg,ncm,knn] TRAIN.tsv TEST
#
# TRAIN.tsv: TSV features of the labelled pool (tl-extract -f tsv), from
# which every draw takes N vectors of each class; TEST: any feature file
# of the test images. Needs bin/ built (make). Prints a table:
#   shots  head  mean  sd  min  max   (accuracy over the draws)
set -eu

shots=1,5,10
draws=5
heads=logreg,ncm,knn
while [ $# -gt 0 ]; do
    case $1 in
    --shots) shots=$2; shift 2 ;;
    --draws) draws=$2; shift 2 ;;
    --heads) heads=$2; shift 2 ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fewshot.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -eq 2 ] || { echo "usage: scripts/fewshot.sh [--shots 1,5,10] [--draws 5] [--heads logreg,ncm,knn] TRAIN.tsv TEST" >&2; exit 2; }
train=$1 test=$2
bin=$(cd "$(dirname "$0")/.." && pwd)/bin
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fewshot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# draw SEED N OUT: N vectors of every class of the pool, chosen by SEED.
draw() {
    grep '^#' "$train" >"$3"
    grep -v '^#' "$train" | awk -F'\t' -v seed="$1" 'BEGIN { srand(seed) } { printf "%s\t%.12f\t%s\n", $2, rand(), $0 }' |
        sort -t "$(printf '\t')" -k1,1 -k2,2 | awk -F'\t' -v n="$2" '
            { if ($1 != last) { k = 0; last = $1 } if (k++ < n) { sub(/^[^\t]*\t[^\t]*\t/, ""); print } }' >>"$3"
}

printf '%-6s %-7s %7s %7s %7s %7s\n' shots head mean sd min max
for n in $(echo "$shots" | tr ',' ' '); do
    for h in $(echo "$heads" | tr ',' ' '); do
        : >"$tmp/acc"
        d=1
        while [ "$d" -le "$draws" ]; do
            draw "$d" "$n" "$tmp/train.tsv"
            "$bin/tl-finetune" -q "$tmp/train.tsv" --head "$h" -o "$tmp/head.safetensors"
            "$bin/tl-eval" -q --json -m "$tmp/head.safetensors" "$test" |
                sed 's/.*"accuracy":\([^,]*\).*/\1/' >>"$tmp/acc"
            d=$((d + 1))
        done
        awk -v n="$n" -v h="$h" '{ s += $1; q += $1 * $1; if (NR == 1 || $1 < lo) lo = $1; if (NR == 1 || $1 > hi) hi = $1 }
            END { m = s / NR; v = q / NR - m * m; printf "%-6s %-7s %7.4f %7.4f %7.4f %7.4f\n", n, h, m, sqrt(v > 0 ? v : 0), lo, hi }' "$tmp/acc"
    done
done
