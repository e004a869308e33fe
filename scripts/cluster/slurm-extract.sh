#!/bin/sh
# Sharded feature extraction as a Slurm job array, then the merge as a job
# that starts when every shard has succeeded.
#
#   scripts/cluster/slurm-extract.sh -n 32 -o feats/train.tlf -- -m resnet50 data/train
#   scripts/cluster/slurm-extract.sh -n 32 -o feats/train.npz -p short -c 16 -- -m resnet50 data/train
#
#   -n SHARDS   array tasks, one shard each (default 16)
#   -o OUT      the merged file (.tlf, .tsv, .npy or .npz); shards go to
#               OUT.shards/ (removed after the merge), logs to OUT.logs/
#   -c CPUS     cores per shard (default 8)
#   -p PART     the Slurm partition (default: the cluster's)
#   -t TIME     time limit per shard (default 2:00:00)
#   after --    tl-extract's options and the data
#
# Every task runs `tl-extract --resume --shard K/N`: a task that is
# preempted or requeued continues its shard; submitting the same command
# again continues what is unfinished. Prints the two job ids.
set -eu

usage() { sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2; exit 2; }
shards=16 out= cpus=8 part= time=2:00:00
while getopts n:o:c:p:t:h opt; do
    case $opt in
    n) shards=$OPTARG ;;
    o) out=$OPTARG ;;
    c) cpus=$OPTARG ;;
    p) part=$OPTARG ;;
    t) time=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ -n "$out" ] && [ $# -gt 0 ] || usage
here=$(cd "$(dirname "$0")" && pwd)
case $out in /*) ;; *) out=$PWD/$out ;; esac
mkdir -p "$out.shards" "$out.logs"
# The jobs get this environment (--export=ALL). Not --export=ALL,TL_OUT=...:
# Slurm then loads the user's login environment on the node (a login shell
# per job, seconds each) and lets it override the variables given.
export TL_OUT="$out" TL_SHARDS="$shards"
array=$(sbatch --parsable --array="1-$shards" --cpus-per-task="$cpus" --time="$time" ${part:+--partition="$part"} \
    --output="$out.logs/shard-%a.log" --export=ALL "$here/extract-shard.sbatch" "$@")
merge=$(sbatch --parsable --dependency="afterok:${array%%;*}" --cpus-per-task=1 --time=1:00:00 \
    ${part:+--partition="$part"} --output="$out.logs/merge.log" --export=ALL "$here/merge.sbatch")
echo "shards: job $array; merge: job $merge (starts when every shard has succeeded)"
