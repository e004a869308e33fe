#!/usr/bin/env bats
# The Slurm recipes of scripts/cluster/ (issue 16) on a real Slurm: a
# single-node cluster started here for the file's cases (munged, slurmctld
# and slurmd for this host, run as the current user, everything - key,
# sockets, ports, state, pid files, logs - under the file's temporary
# folder, no cgroups or systemd needed), stopped at the end, leaving no
# process behind. Where the daemons cannot start (Slurm or MUNGE not
# installed, no permission) every case skips and says why; the recipes'
# syntax and their hand-over to sbatch/srun are checked without Slurm in
# shards.bats and mpi.bats. Self-contained: tiny generated images and a
# scratch small_cnn.

load helpers

F() { printf '%s/%s' "$BATS_FILE_TMPDIR" "$1"; }
CLUSTER=$BATS_TEST_DIRNAME/../../scripts/cluster
# Slurm's files (short: the MUNGE socket's path must fit a sockaddr_un).
S() { printf '%s/%s' "$BATS_FILE_TMPDIR/s" "$1"; }
export SLURM_CONF=$BATS_FILE_TMPDIR/s/slurm.conf
# Every process of this cluster, daemons and jobs, carries this variable
# (the jobs get it through sbatch's --export=ALL): how teardown finds them.
MARK=TL_SLURM_TEST=$BATS_FILE_TMPDIR/s

# The processes that carry MARK in their environment.
ours() {
    grep -lzxF "$MARK" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true
}
none_left() { [ -z "$(ours)" ]; }
no_jobs() { [ -z "$(squeue -h 2>/dev/null)" ]; }

# Two TCP ports nothing on this host uses, from a start that differs
# between concurrent runs (the process id), then upwards.
free_ports() {
    local used p n=0
    used=$(awk 'NR > 1 { split($2, a, ":"); print a[2] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
    for ((p = 20000 + $$ * 7 % 20000; p < 65000 && n < 2; p++)); do
        grep -qx "$(printf '%04X' "$p")" <<<"$used" || { echo "$p"; n=$((n + 1)); }
    done
    [ $n = 2 ]
}

# until_true SECONDS CMD...: CMD again every 0.1 s until it succeeds, at
# most SECONDS (fails then).
until_true() {
    local limit=$1 t0=$SECONDS
    shift
    until "$@"; do
        [ $((SECONDS - t0)) -lt "$limit" ] || return 1
        sleep 0.1
    done
}

node_idle() { [ "$(sinfo -h -n tlnode -o %t 2>/dev/null)" = idle ]; }
munge_ok() { munge -S "$(S munge/socket)" -n 2>/dev/null | unmunge -S "$(S munge/socket)" >/dev/null 2>&1; }

# The last line of a log that says what went wrong (or its last line).
why() { { grep -aiE 'error|fatal|fail' "$1" || cat "$1"; } 2>/dev/null | tail -1 | cut -c1-200; }

# Starts the cluster; on failure writes why to $(S skip) and returns 1.
slurm_start() {
    local s=$BATS_FILE_TMPDIR/s user cpus
    mkdir -p "$s"
    slurm_no() { echo "$*" >"$s/skip"; return 1; }
    for c in munged mungekey munge slurmctld slurmd sbatch; do
        command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || slurm_no "$c not found (Debian: munge, slurm-wlm; scripts/deps.sh)" || return 1
    done
    export PATH=$PATH:/usr/sbin
    [ ${#s} -le 80 ] || slurm_no "the temporary folder's path is too long for a socket: $s" || return 1
    user=$(id -un)
    local ports
    ports=($(free_ports)) || slurm_no "no free TCP ports" || return 1
    # MUNGE wants its key the user's own, closed to others, and its socket
    # reachable by all (bats's folders are not: --force makes that a warning).
    mkdir -m 700 "$s/munge"
    mungekey -c -k "$s/munge/key" 2>"$s/munge/log" || slurm_no "mungekey: $(why "$s/munge/log")" || return 1
    env "$MARK" munged -F -f -S "$s/munge/socket" --key-file="$s/munge/key" --pid-file="$s/munge/pid" \
        --seed-file="$s/munge/seed" --log-file="$s/munge/log" --num-threads=2 </dev/null >>"$s/munge/out" 2>&1 3>&- &
    echo $! >"$s/munged.pid"
    until_true 20 munge_ok || slurm_no "munged did not start: $(why "$s/munge/log") $(why "$s/munge/out")" || return 1
    # CPUs: this machine's (nproc); at least 2, so the two-process MPI job
    # fits on a one-core runner (config_overrides: the node may claim more
    # than it has, its processes then share a core).
    cpus=$(nproc)
    [ "$cpus" -ge 2 ] || cpus=2
    cat >"$SLURM_CONF" <<EOF
ClusterName=tltest
FirstJobId=$((1000 + $$ % 100000))
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=${ports[0]}
SlurmdPort=${ports[1]}
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$s/munge/socket
StateSaveLocation=$s/ctld
SlurmdSpoolDir=$s/spool
SlurmctldPidFile=$s/slurmctld.pidfile
SlurmdPidFile=$s/slurmd.pidfile
SlurmctldLogFile=$s/slurmctld.log
SlurmdLogFile=$s/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$s/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
DependencyParameters=kill_invalid_depend
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
InactiveLimit=0
KillWait=5
NodeName=tlnode NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=tl Nodes=tlnode Default=YES MaxTime=INFINITE State=UP
EOF
    : >"$s/plugstack.conf"
    mkdir -p "$s/ctld" "$s/spool"
    env "$MARK" slurmctld -D -c -f "$SLURM_CONF" </dev/null >"$s/slurmctld.out" 2>&1 3>&- &
    echo $! >"$s/slurmctld.pid"
    env "$MARK" slurmd -D -N tlnode -f "$SLURM_CONF" </dev/null >"$s/slurmd.out" 2>&1 3>&- &
    echo $! >"$s/slurmd.pid"
    if ! until_true 40 node_idle; then
        local who=slurmd log=$s/slurmd.log
        scontrol ping >/dev/null 2>&1 || who=slurmctld log=$s/slurmctld.log
        [ -s "$log" ] || log=$s/$who.out
        slurm_no "$who did not start: $(why "$log")"
        return 1
    fi
}

# Stops the cluster (idempotent): cancels the jobs, waits for them, ends
# the daemons; whatever still carries MARK after that is killed and
# listed in $(S strays).
slurm_stop() {
    local s=$BATS_FILE_TMPDIR/s p
    [ -f "$s/slurmctld.pid" ] || [ -f "$s/munged.pid" ] || return 0
    export PATH=$PATH:/usr/sbin
    if [ -f "$s/slurmctld.pid" ] && scontrol ping >/dev/null 2>&1; then
        scancel --user="$(id -un)" 2>/dev/null || true
        until_true 30 no_jobs || true
    fi
    for p in slurmd slurmctld munged; do
        [ ! -f "$s/$p.pid" ] || kill -TERM "$(cat "$s/$p.pid")" 2>/dev/null || true
    done
    until_true 30 none_left || true
    local left
    left=$(ours)
    if [ -n "$left" ]; then
        # shellcheck disable=SC2086
        ps -o pid=,args= -p "$(echo $left | tr ' ' ,)" >>"$s/strays" 2>/dev/null || echo "$left" >>"$s/strays"
        # shellcheck disable=SC2086
        kill -KILL $left 2>/dev/null || true
    fi
    rm -f "$s/slurmctld.pid" "$s/slurmd.pid" "$s/munged.pid"
}

setup_file() {
    local d=$BATS_FILE_TMPDIR
    gen_ppms "$d/imgs" 3 10
    gen_ppms "$d/train" 1 20
    tl finetune -q --scratch --arch small_cnn --input-size 32 "$d/imgs" --val-split 0 --epochs 1 --batch 8 -j 1 \
        -o "$d/net.safetensors"
    slurm_start || true
}

teardown_file() { slurm_stop; }

# The bytes after a safetensors header (the tensors).
st_body() { local n; n=$(od -An -tu8 -N8 "$1" | tr -d ' '); tail -c +$((9 + n)) "$1" | cksum; }

need_slurm() {
    [ ! -f "$(S skip)" ] || skip "no single-node Slurm here: $(cat "$(S skip)")"
    export PATH=$PATH:/usr/sbin
}

# Waits for job $1 (every task of an array) to end, at most $2 seconds;
# prints its states (COMPLETED, FAILED, ...) sorted, one per line.
wait_job() {
    local t0=$SECONDS st
    while :; do
        st=$(scontrol show job -o "$1" 2>/dev/null | sed -n 's/.* JobState=\([A-Z_]*\) .*/\1/p' | sort -u)
        if [ -n "$st" ] && ! grep -qE '^(PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED|RESIZING|SUSPENDED)$' <<<"$st"; then
            echo "$st"
            return 0
        fi
        if [ $((SECONDS - t0)) -ge "$2" ]; then
            echo "job $1 still not done after $2 s: ${st:-unknown}" >&2
            scontrol show job "$1" >&2 || true
            return 1
        fi
        sleep 0.2
    done
}

@test "slurm-extract.sh: the job array's shards and the dependent merge give the unsharded run's file" {
    need_slurm
    local d=$BATS_TEST_TMPDIR
    cd "$d"
    tl extract -q -m "$(F net.safetensors)" -j 1 "$(F imgs)" -o all.tlf
    run env "$MARK" TL_BIN="$TL_BIN" "$CLUSTER/slurm-extract.sh" -n 3 -c 1 -t 10 -o out.tlf -- -m "$(F net.safetensors)" "$(F imgs)"
    assert_success
    assert_line --regexp "^shards: job [0-9]+; merge: job [0-9]+ "
    local array merge
    array=$(sed -n 's/^shards: job \([0-9]*\);.*/\1/p' <<<"$output")
    merge=$(sed -n 's/.*; merge: job \([0-9]*\) .*/\1/p' <<<"$output")
    run wait_job "$merge" 120
    cat out.tlf.logs/* 2>/dev/null || true
    assert_success
    assert_output COMPLETED
    # three array tasks ran, each its own shard
    run wait_job "$array" 10
    assert_output COMPLETED
    [ "$(scontrol show job -o "$array" | grep -c 'JobState=COMPLETED')" = 3 ]
    for k in 1 2 3; do grep -q "shard $k/3: " out.tlf.logs/shard-$k.log; done
    cmp all.tlf out.tlf
    [ ! -e out.tlf.shards ]
    # the same into NPZ, submitted from another folder
    tl extract -q -m "$(F net.safetensors)" -j 1 -f npz "$(F imgs)" -o all.npz
    mkdir sub && cd sub
    run env "$MARK" TL_BIN="$TL_BIN" "$CLUSTER/slurm-extract.sh" -n 2 -c 1 -t 10 -o ../out.npz -- -q -m "$(F net.safetensors)" "$(F imgs)"
    assert_success
    merge=$(sed -n 's/.*; merge: job \([0-9]*\) .*/\1/p' <<<"$output")
    run wait_job "$merge" 120
    assert_output COMPLETED
    cmp ../all.npz ../out.npz
}

@test "slurm-extract.sh: a failed shard cancels the merge; submitting again continues the shards and merges" {
    need_slurm
    local d=$BATS_TEST_TMPDIR
    cd "$d"
    cp -r "$(F imgs)" imgs
    tl extract -q -m "$(F net.safetensors)" -j 1 imgs -o all.tlf
    # an unreadable image in one shard: that task fails, the merge never runs
    local bad
    printf 'P6\n32 32\n255\nshort' >imgs/red/004.ppm
    run env "$MARK" TL_BIN="$TL_BIN" "$CLUSTER/slurm-extract.sh" -n 2 -c 1 -t 10 -o out.tlf -- -m "$(F net.safetensors)" imgs
    assert_success
    local array merge
    array=$(sed -n 's/^shards: job \([0-9]*\);.*/\1/p' <<<"$output")
    merge=$(sed -n 's/.*; merge: job \([0-9]*\) .*/\1/p' <<<"$output")
    run wait_job "$merge" 120
    assert_output CANCELLED
    run wait_job "$array" 10
    assert_line FAILED
    assert_line COMPLETED
    bad=$(grep -l '004.ppm' out.tlf.logs/shard-*.log)
    [ -n "$bad" ]
    [ ! -e out.tlf ]
    # the image repaired, the same command again: the finished shard is
    # not redone (--resume: "nothing to resume"), the other is done, merged
    cp "$(F imgs)/red/004.ppm" imgs/red/004.ppm
    run env "$MARK" TL_BIN="$TL_BIN" "$CLUSTER/slurm-extract.sh" -n 2 -c 1 -t 10 -o out.tlf -- -m "$(F net.safetensors)" imgs
    assert_success
    merge=$(sed -n 's/.*; merge: job \([0-9]*\) .*/\1/p' <<<"$output")
    run wait_job "$merge" 120
    cat out.tlf.logs/* || true
    assert_output COMPLETED
    grep -q 'nothing to resume' out.tlf.logs/shard-*.log
    cmp all.tlf out.tlf
}

@test "finetune.sbatch: srun starts 2 MPI processes that train the network of mpirun -np 2" {
    need_slurm
    command -v mpirun >/dev/null || skip "mpirun not found (Debian: openmpi-bin)"
    ldd "$TL_BIN/tl-finetune" | grep -q libmpi || skip "tl-finetune was built without MPI (no mpicc at build time)"
    srun --mpi=list 2>&1 | grep -qw pmix || skip "this Slurm's srun has no pmix plugin, which Debian's Open MPI needs"
    # Open MPI's own allocations show up as leaks under the sanitizers (mpi.bats)
    if [ -n "${TL_SANITIZE:-}" ]; then export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0; fi
    local d=$BATS_TEST_TMPDIR
    local args=(--scratch --arch small_cnn --input-size 32 --batch 8 --seed 3 --epochs 2 --freeze-bn --val-split 0)
    mpirun --oversubscribe --allow-run-as-root -np 2 "$TL_BIN/tl-finetune" "${args[@]}" -q -j 1 "$(F train)" \
        -o "$d/mpirun.safetensors"
    run env "$MARK" TL_BIN="$TL_BIN" TL_SRUN_MPI=pmix sbatch --parsable --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 \
        --time=10 --output="$d/job.log" "$CLUSTER/finetune.sbatch" "${args[@]}" "$(F train)" -o "$d/srun.safetensors" \
        --log "$d/srun.jsonl"
    assert_success
    local job=$output
    run wait_job "$job" 120
    cat "$d/job.log"
    assert_output COMPLETED
    grep -q "2 processes (MPI), 1 thread each" "$d/job.log"
    [ "$(grep -c '"phase":"start"' "$d/srun.jsonl")" = 1 ]
    grep '"phase":"start"' "$d/srun.jsonl" | grep -q '"processes":2'
    # the same processes, the same order of sums: the same tensors
    [ "$(st_body "$d/mpirun.safetensors")" = "$(st_body "$d/srun.safetensors")" ]
}

@test "the cluster stops and leaves no process behind" {
    need_slurm
    slurm_stop
    local left
    left=$(ours)
    [ -z "$left" ] || { ps -o pid=,args= -p "$(echo $left | tr ' ' ,)"; false; }
    [ ! -s "$(S strays)" ] || { cat "$(S strays)"; false; }
    # nor by their command lines (the daemons name their files, the jobs theirs)
    run pgrep -af "$BATS_FILE_TMPDIR/"
    assert_failure 1
}
