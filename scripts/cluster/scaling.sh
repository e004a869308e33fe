#!/bin/sh
# Data-parallel fine-tuning: is communication the bottleneck? Measures, on
# this machine, one process with two threads against `mpirun -np 2` with
# one thread each (the same global batch), then extrapolates the measured
# compute time and gradient size to 8 and 64 nodes with the ring-allreduce
# cost model.
#
#   scripts/cluster/scaling.sh measure DATA LOGDIR   # a few minutes per model
#   scripts/cluster/scaling.sh table LOGDIR          # the tables, as Markdown
#
#   DATA       a class-folder tree with train/ and val/ (e.g. hymenoptera)
#   MODELS     architectures to train from scratch (default:
#              "mobilenet_v2 resnet50")
#   REPS       alternations of the two set-ups per model (default 2)
#   EPOCHS     epochs per run (default 2); the first is warm-up and only the
#              last epoch's speed counts
#   BATCH      the global batch, and the per-node batch of the model (32)
#   OPTS       more tl-finetune options for both set-ups (e.g. --input-size 160)
#
# The model: a node is this machine; each of N nodes takes BATCH images per
# step, so a step costs the measured compute time t_c = BATCH / R (R: one
# process's images/s) plus one ring allreduce of the S gradient bytes that
# tl-finetune reports:
#     t_ar = 2 (N-1)/N * S / bandwidth  +  2 (N-1) * latency
# (a reduce-scatter and an all-gather, N-1 messages each; latency 20 us for
# 10 Gbit/s Ethernet with TCP, 3 us for 100 Gbit/s with RDMA, both assumed).
# tl does not overlap the allreduce with the backward pass, so the
# efficiency is t_c / (t_c + t_ar); --accumulate K spends K t_c per
# allreduce. "Crossover" is the node speed (images/s) at which t_ar = t_c:
# faster nodes (more cores, a GPU) would spend more time communicating than
# computing at that batch.
set -eu

usage() { sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2; exit 2; }
bin=${TL_BIN:-$(dirname "$0")/../../bin}

measure() {
    data=$1 logs=$2
    [ -d "$data/train" ] && [ -d "$data/val" ] || { echo "scaling.sh: $data: needs train/ and val/" >&2; exit 1; }
    command -v mpirun >/dev/null || { echo "scaling.sh: mpirun not found (Debian: openmpi-bin)" >&2; exit 1; }
    mkdir -p "$logs"
    root=
    [ "$(id -u)" = 0 ] && root=--allow-run-as-root
    r=1
    while [ "$r" -le "${REPS:-2}" ]; do
        for m in ${MODELS:-mobilenet_v2 resnet50}; do
            # shellcheck disable=SC2086
            set -- ${OPTS:-} --scratch --arch "$m" --epochs "${EPOCHS:-2}" --batch "${BATCH:-32}" --seed 1 \
                --val "$data/val" "$data/train" -o "$logs/net.safetensors"
            echo "scaling.sh: $m, round $r: 1 process x 2 threads" >&2
            "$bin/tl-finetune" -q -j 2 --log "$logs/$m.threads.$r.jsonl" "$@"
            echo "scaling.sh: $m, round $r: 2 processes x 1 thread" >&2
            mpirun $root --oversubscribe -np 2 "$bin/tl-finetune" -q -j 1 --log "$logs/$m.mpi.$r.jsonl" "$@"
        done
        r=$((r + 1))
    done
    rm -f "$logs/net.safetensors"
    cat /proc/loadavg >"$logs/loadavg"
    grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //' >"$logs/cpu"
}

# The last training epoch of every log, one line each: file, images/s,
# allreduce ms and bytes (0 without MPI).
last_epochs() {
    for f in "$1"/*.jsonl; do
        awk -v f="${f##*/}" '
            function num(k,   m) { return match($0, "\"" k "\":[0-9.e+-]+") ? substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3) + 0 : 0 }
            /"phase":"train"/ { ips = num("images_per_s"); ms = num("allreduce_ms"); by = num("allreduce_bytes") }
            END { if (ips > 0) printf "%s %s %s %s\n", f, ips, ms, by }' "$f"
    done
}

table() {
    logs=$1
    # checked here: an exit inside the pipeline below would only end its subshell
    for f in "$logs"/*.threads.*.jsonl; do
        [ -e "$f" ] && [ -n "$(ls "$logs"/*.mpi.*.jsonl 2>/dev/null)" ] ||
            { echo "scaling.sh: $logs: no logs of both set-ups; run: scaling.sh measure DATA $logs" >&2; exit 1; }
        break
    done
    last_epochs "$logs" | awk -v batch="${BATCH:-32}" -v cpu="$(cat "$logs/cpu" 2>/dev/null || echo '?')" '
        {
            split($1, p, "."); m = p[1]; kind = p[2]
            if (!(m in seen)) { seen[m] = 1; order[++n] = m }
            if (kind == "threads") { t[m] += $2; nt[m]++ }
            else { q[m] += $2; nq[m]++; ms[m] += $3; by[m] = $4 }
        }
        function ring(N, S, bw, lat) { return 2 * (N - 1) / N * S / bw + 2 * (N - 1) * lat }
        END {
            printf "Measured on %s, 2 cores, global batch %d, last epoch of each run, mean of the rounds:\n\n", cpu, batch
            print "| model | 1 process x 2 threads | 2 processes x 1 thread | ratio | gradients allreduced | allreduce per step |"
            print "|---|---|---|---|---|---|"
            for (i = 1; i <= n; i++) {
                m = order[i]
                if (!nt[m] || !nq[m]) continue
                r1 = t[m] / nt[m]; r2 = q[m] / nq[m]; tc[m] = batch / r1; sz[m] = by[m]
                printf "| %s | %.1f img/s | %.1f img/s | %.2fx | %.1f MB | %.1f ms |\n", m, r1, r2, r2 / r1, by[m] / 1e6, ms[m] / nq[m]
            }
            printf "\nExtrapolated: nodes like this one, %d images per node and step; efficiency = compute / (compute + allreduce):\n\n", batch
            print "| model | network | compute per step | allreduce, 8 nodes | efficiency, 8 | allreduce, 64 nodes | efficiency, 64 | 64 nodes, --accumulate 4 | crossover node speed |"
            print "|---|---|---|---|---|---|---|---|---|"
            split("10 100", gbit, " "); split("20e-6 3e-6", lat, " ")
            for (i = 1; i <= n; i++) {
                m = order[i]
                if (!(m in tc)) continue
                for (g = 1; g <= 2; g++) {
                    bw = gbit[g] * 1e9 / 8
                    a8 = ring(8, sz[m], bw, lat[g]); a64 = ring(64, sz[m], bw, lat[g])
                    printf "| %s | %d Gbit/s | %.2f s | %.0f ms | %.1f %% | %.0f ms | %.1f %% | %.1f %% | %.0f img/s |\n", m, gbit[g], tc[m],
                        a8 * 1e3, 100 * tc[m] / (tc[m] + a8), a64 * 1e3, 100 * tc[m] / (tc[m] + a64),
                        100 * 4 * tc[m] / (4 * tc[m] + a64), batch / a64
                }
            }
        }'
}

case ${1:-} in
measure) [ $# -eq 3 ] || usage; measure "$2" "$3" ;;
table) [ $# -eq 2 ] || usage; table "$2" ;;
*) usage ;;
esac
