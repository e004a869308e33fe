#!/bin/sh
# Scratch vs transfer on one data set: the standard strategies with the same
# seed, epochs and validation data, then tl-compare's table, verdict and
# learning curves; optionally a backbone trade-off table.
#
#   scripts/experiment.sh [options] TRAIN VAL
#
# TRAIN and VAL are class-folder trees (or manifests). Everything goes into
# OUTDIR: one JSON-lines log per strategy (what tl-compare reads), the
# checkpoints, compare.txt, compare.json, curves.svg/.png, and with --models
# tradeoff.tsv. Strategies:
#   features  tl-extract + tl-finetune on the vectors (logistic regression)
#   partial   fine-tune the last backbone stage and the new head
#   full      fine-tune every layer (earlier groups at 0.1x the head's rate)
#   scratch   the same architecture from random initialisation, all layers
# VAL picks each run's best epoch; keep a separate test set for a final,
# unbiased figure (tl-eval).
set -eu

usage() {
    cat <<'EOF'
Usage: scripts/experiment.sh [options] TRAIN VAL
  -m MODEL            pretrained backbone (default: models/mobilenet_v2.safetensors)
  -o OUTDIR           where logs, checkpoints and plots go (default: runs/NAME of TRAIN's parent)
  --epochs N          epochs for every network run (default 10)
  --scratch-epochs N  epochs for the scratch run (default: --epochs)
  --seed N            (default 1)
  -j N                threads (default: all cores)
  --strategies LIST   comma-separated subset of features,partial,full,scratch (default: all)
  --augment SPEC      augmentation for the network runs (default none)
  --target ACC        accuracy target for tl-compare (default: 95% of the best run)
  --models LIST       comma-separated backbones for the trade-off table (features + logistic
                      regression on each: accuracy, extraction images/s, parameters, mult-adds, size)
  -h, --help
Example:
  scripts/experiment.sh --epochs 6 data/hymenoptera/train data/hymenoptera/val
EOF
}

here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TL_BIN:-$here/bin}
model=$here/models/mobilenet_v2.safetensors
out= epochs=10 scratch_epochs= seed=1 threads=0 strategies=features,partial,full,scratch
augment= target= models=
while [ $# -gt 0 ]; do
    case $1 in
    -m) model=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --scratch-epochs) scratch_epochs=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    -j) threads=$2; shift 2 ;;
    --strategies) strategies=$2; shift 2 ;;
    --augment) augment=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "experiment.sh: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
    *) break ;;
    esac
done
if [ $# -ne 2 ]; then
    echo "experiment.sh: give TRAIN and VAL data (--help)" >&2
    exit 2
fi
train=$1 val=$2
[ -e "$train" ] || { echo "experiment.sh: $train: no such file or folder" >&2; exit 1; }
[ -e "$val" ] || { echo "experiment.sh: $val: no such file or folder" >&2; exit 1; }
[ -n "$scratch_epochs" ] || scratch_epochs=$epochs
if [ -z "$out" ]; then
    out=runs/$(basename "$(cd "$train/.." && pwd)")
fi
mkdir -p "$out"
jflag=
[ "$threads" = 0 ] || jflag="-j $threads"
augflag=
[ -z "$augment" ] || augflag="--augment $augment"

say() { echo "experiment: $*" >&2; }
want() { case ",$strategies," in *",$1,"*) return 0 ;; esac; return 1; }

# Features + logistic regression; the extraction's own log lines come first
# so tl-compare counts extraction time as part of the strategy's cost.
features_run() { # NAME MODEL
    name=$1 m=$2
    rm -f "$out/$name.extract.jsonl"
    "$BIN/tl-extract" -q $jflag -m "$m" --log "$out/$name.extract.jsonl" "$train" -o "$out/$name.train.tlf"
    "$BIN/tl-extract" -q $jflag -m "$m" --log "$out/$name.extract.jsonl" "$val" -o "$out/$name.val.tlf"
    "$BIN/tl-finetune" -q $jflag "$out/$name.train.tlf" --val "$out/$name.val.tlf" --name "$name" \
        --log "$out/$name.head.jsonl" -o "$out/$name.safetensors"
    cat "$out/$name.extract.jsonl" "$out/$name.head.jsonl" >"$out/$name.jsonl"
    rm -f "$out/$name.extract.jsonl" "$out/$name.head.jsonl"
}

net_run() { # NAME EPOCHS tl-finetune-options...
    name=$1 ep=$2
    shift 2
    say "$name: $ep epochs"
    # shellcheck disable=SC2086
    "$BIN/tl-finetune" $jflag "$@" --val "$val" --epochs "$ep" --seed "$seed" $augflag \
        --name "$name" --log "$out/$name.jsonl" -o "$out/$name.safetensors" "$train"
}

# The last backbone stage: everything up to the end of the second-to-last
# learning-rate group (tl-info lists the groups) stays frozen.
last_stage_cut() {
    "$BIN/tl-info" "$1" | awk '/^learning-rate groups/ {g = 1; next}
        g && /^ *[0-9]+: / {n++; last[n] = $NF}
        g && !/^ *[0-9]+: / && n {exit}
        END {if (n >= 3) print last[n - 2]}'
}

if want features; then
    say "features: extracting with $(basename "$model") and fitting logistic regression"
    features_run features "$model"
fi
if want partial; then
    cut=$(last_stage_cut "$model")
    [ -n "$cut" ] || { echo "experiment.sh: cannot find the last stage of $model (tl-info)" >&2; exit 1; }
    net_run partial "$epochs" -m "$model" --freeze-until "$cut"
fi
if want full; then
    net_run full "$epochs" -m "$model"
fi
if want scratch; then
    net_run scratch "$scratch_epochs" -m "$model" --scratch
fi

set --
for f in "$out"/features.jsonl "$out"/partial.jsonl "$out"/full.jsonl "$out"/scratch.jsonl; do
    [ -f "$f" ] && set -- "$@" "$f"
done
if [ $# -gt 0 ]; then
    tflag=
    [ -z "$target" ] || tflag="--target $target"
    # shellcheck disable=SC2086
    "$BIN/tl-compare" $tflag --plot "$out/curves.svg" "$@" | tee "$out/compare.txt"
    # shellcheck disable=SC2086
    "$BIN/tl-compare" $tflag --plot "$out/curves.png" --json "$@" >"$out/compare.json"
fi

if [ -n "$models" ]; then
    printf 'model\tval_accuracy\textract_images_per_s\tparameters\tmult_adds_M\tfile_MB\n' >"$out/tradeoff.tsv"
    for m in $(echo "$models" | tr , ' '); do
        name=tradeoff-$(basename "$m" .safetensors)
        say "trade-off: $m"
        features_run "$name" "$m"
        acc=$(grep '"phase":"best"' "$out/$name.jsonl" | sed 's/.*"accuracy":\([^,}]*\).*/\1/')
        ips=$(grep '"phase":"extract"' "$out/$name.jsonl" | sed 's/.*"images":\([0-9]*\).*"seconds":\([^,}]*\).*/\1 \2/' |
            awk '{n += $1; s += $2} END {if (s > 0) printf "%.1f", n / s}')
        info=$("$BIN/tl-info" "$m")
        params=$(echo "$info" | awk '/^parameters/ {gsub(",", "", $2); print $2; exit}')
        macs=$(echo "$info" | awk '/^mult-adds/ {v = $2; if ($3 == "G") v *= 1000; print v; exit}')
        path=$m
        [ -f "$path" ] || path=$(echo "$info" | awk '/^model/ {print $2; exit}')
        size=$(stat -c %s "$path" 2>/dev/null | awk '{printf "%.1f", $1 / 1048576}')
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(basename "$m" .safetensors)" "$acc" "$ips" "$params" "$macs" "$size" \
            >>"$out/tradeoff.tsv"
        rm -f "$out/$name.train.tlf" "$out/$name.val.tlf"
    done
    column -t -s "$(printf '\t')" "$out/tradeoff.tsv"
fi
