#!/bin/sh
# Sharded feature extraction on several machines with GNU parallel: one
# `tl-extract --shard K/N` per shard, spread over the hosts, then the
# shards merged (and checked: every shard once, the same model, layer,
# preprocessing and classes) into one file.
#
#   scripts/cluster/extract-parallel.sh -S node1,node2 -n 16 -o feats/train.tlf -- -m resnet50 data/train
#   scripts/cluster/extract-parallel.sh -S 2/: -n 4 -o train.npz -- -m mobilenet_v2 data/train   # here, 2 at once
#
#   -S HOSTS   GNU parallel --sshlogin list: host names for ssh, ':' for this
#              machine, N/host to run N shards there at once (default ':')
#   -n SHARDS  how many shards (default 8); more shards than hosts balance
#              the load and make a retried shard cheap
#   -o OUT     the merged file; its format follows the name (.tlf, .tsv,
#              .npy, .npz). Shards are written to OUT.shards/ and removed
#              once the merge has succeeded.
#   -j N       threads per shard (default: every core of the host)
#   after --    tl-extract's options and the data (a folder, a manifest)
#
# The data, the model, OUT's folder and tl-extract must have the same
# paths on every host (a shared file system); set TL_BIN to the folder of
# the tl-* programs if they are not on the hosts' PATH. Each shard runs
# with --resume: a shard that fails is retried (twice) from where it
# stopped, and running the same command again after an interruption
# continues every unfinished shard and redoes none that finished.
set -eu

usage() { sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2; exit 2; }
hosts=: shards=8 out= threads=0
while getopts S:n:o:j:h opt; do
    case $opt in
    S) hosts=$OPTARG ;;
    n) shards=$OPTARG ;;
    o) out=$OPTARG ;;
    j) threads=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ -n "$out" ] && [ $# -gt 0 ] || usage
case $shards in '' | *[!0-9]* | 0) echo "extract-parallel.sh: -n: a number of shards, 1 or more" >&2; exit 2 ;; esac
command -v parallel >/dev/null || { echo "extract-parallel.sh: GNU parallel not found (Debian: apt-get install parallel)" >&2; exit 1; }
extract=${TL_BIN:+$TL_BIN/}tl-extract
dir=$out.shards
mkdir -p "$dir"

# One line per shard and progress line (tagged "K/N") as they come.
parallel --sshlogin "$hosts" --jobs 1 --workdir "$PWD" --retries 3 --halt now,fail=1 --line-buffer \
    --tagstring "{}/$shards" \
    "$extract" --resume --progress -j "$threads" --shard "{}/$shards" -o "$dir/{}-of-$shards.tlf" "$@" \
    ::: $(seq 1 "$shards")

format=tlf
case $out in *.tsv) format=tsv ;; *.npy) format=npy ;; *.npz) format=npz ;; esac
"$extract" --merge -f "$format" -o "$out" "$dir"/*-of-"$shards".tlf
rm -r "$dir"
