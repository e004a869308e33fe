#!/usr/bin/env bats
# Unlabelled target images and the learning-rate finder (issue 18.6):
# tl-finetune --unlabelled (self-training by pseudo-labels) for a linear
# head and for a network, its resume and thread-count guarantees, and
# --find-lr. The network cases train the small CNN on generated images
# (self-contained); the real-data case is NEU steel defects with 5
# labelled images per class and the other 1,410 training images
# unlabelled, where self-training must beat the labelled images alone.

load helpers

setup_file() {
    local d=$BATS_FILE_TMPDIR
    gen_ppms "$d/train" 1 6
    gen_ppms "$d/unl" 3 16   # class folders: their labels only count right pseudo-labels
    gen_ppms "$d/val" 2 6
}

F() { printf '%s/%s' "$BATS_FILE_TMPDIR" "$1"; }

NET=(--scratch --arch small_cnn --input-size 32 --epochs 4 --batch 8 --seed 5 --optimizer adamw --lr 0.003
    --augment hflip --pseudo-ramp 2)

@test "--unlabelled on a network: pseudo-labels join from the second epoch, reported, recorded in the checkpoint" {
    run tl finetune "${NET[@]}" -j 1 --unlabelled "$(F unl)" --val "$(F val)" -o "$BATS_TEST_TMPDIR/a.safetensors" "$(F train)"
    echo "$output"
    assert_success
    # 12 labelled + 32 unlabelled images an epoch: 6 steps of 8 (the last, of 4, kept)
    assert_line --partial "12 training images, 12 validation, 2 classes"
    assert_line --regexp "pseudo-labels for epoch 2: [0-9]+ of 32 unlabelled images \(up to 50% of each class's predictions\)"
    assert_line --regexp "pseudo-labels for epoch 4: [0-9]+ of 32 unlabelled images \(up to 100% "
    # epoch 2 admits at most half of each class's predictions: 16 at most
    n2=$(printf '%s\n' "$output" | sed -n 's/.*pseudo-labels for epoch 2: \([0-9]*\) of.*/\1/p')
    [ "$n2" -le 16 ]
    run tl info -M "$BATS_TEST_TMPDIR/a.safetensors"
    [[ "$output" == *"tl.pseudo_labels"*"unl: 32 images, threshold 0.9, ramp 2 epochs"* ]]
}

@test "--unlabelled on a network: the same weights for 1 and 2 threads, and after SIGINT + --resume" {
    local d=$BATS_TEST_TMPDIR pid st
    tl finetune -q "${NET[@]}" -j 1 --unlabelled "$(F unl)" --val "$(F val)" --log "$d/ref.jsonl" -o "$d/ref.safetensors" "$(F train)"
    tl finetune -q "${NET[@]}" -j 2 --unlabelled "$(F unl)" --val "$(F val)" -o "$d/j2.safetensors" "$(F train)"
    cmp "$d/ref.safetensors" "$d/j2.safetensors"
    # interrupted in epoch 3, after the pseudo-labels of epoch 3 were chosen
    "$TL_BIN/tl-finetune" -q "${NET[@]}" -j 1 --unlabelled "$(F unl)" --val "$(F val)" --log "$d/int.jsonl" \
        -o "$d/int.safetensors" "$(F train)" 2>/dev/null &
    pid=$!
    for _ in $(seq 6000); do [ "$(grep -c '"phase":"val"' "$d/int.jsonl" 2>/dev/null)" -ge 2 ] && break; sleep 0.01; done
    kill -INT $pid
    st=0
    wait $pid || st=$?
    [ "$st" -eq 130 ] || skip "the run ended before the interrupt (status $st): nothing tested"
    [ -f "$d/int.resume.safetensors" ]
    run tl finetune -q "${NET[@]}" -j 1 --unlabelled "$(F unl)" --val "$(F val)" --log "$d/int.jsonl" \
        -o "$d/int.safetensors" --resume "$(F train)"
    assert_success
    cmp "$d/ref.safetensors" "$d/int.safetensors"
}

@test "--find-lr: the range test's table, suggestion and rule, its plot and log line; nothing else written" {
    local d=$BATS_TEST_TMPDIR
    run --separate-stderr tl finetune --scratch --arch small_cnn --input-size 32 -b 4 -j 2 --seed 3 \
        --find-lr "$d/lr.png" --find-lr-steps 40 --log "$d/lr.jsonl" "$(F train)"
    echo "$output"
    assert_success
    assert_line --regexp "^suggested learning rate: [0-9.e+-]+ \(valley: halfway along the longest stretch"
    assert_line --regexp "^other rules: minimum/10 [0-9.e+-]+ "
    [ "$(head -c 8 "$d/lr.png" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]
    [ "$(json_get "$d/lr.jsonl" "d['phase'], d['rule'], d['asked']")" = "('lr_find', 'valley', 40)" ]
    [ "$(json_get "$d/lr.jsonl" "len(d['lr']) == len(d['loss']) == len(d['smoothed']) == d['steps'] <= 40")" = True ]
    # the rates grow as fastai's SchedExp: 1e-7 * 1e8^(i/40)
    [ "$(json_get "$d/lr.jsonl" "abs(d['lr'][20] - 1e-7 * 1e8 ** 0.5) < 1e-9")" = True ]
    [ "$(json_get "$d/lr.jsonl" "d['suggested_lr'] in d['lr']")" = True ]
    # the same curve with another thread count
    tl finetune -q --scratch --arch small_cnn --input-size 32 -b 4 -j 1 --seed 3 --find-lr "$d/lr1.svg" \
        --find-lr-steps 40 --log "$d/lr1.jsonl" "$(F train)" >/dev/null
    cmp "$d/lr.jsonl" "$d/lr1.jsonl"
    no_files_like "$d" '*.safetensors'
    no_files_like "$d" '*.tmp.*' 
}

@test "--unlabelled and --find-lr errors are usage errors, one line each" {
    local d=$BATS_TEST_TMPDIR
    run tl finetune --scratch --arch small_cnn --pseudo-threshold 0.8 -o "$d/x.safetensors" "$(F train)"
    [ "$status" -eq 2 ] && [[ "$output" == *"--pseudo-threshold applies with --unlabelled"* ]]
    run tl finetune --scratch --arch small_cnn --find-lr "$d/x.gif" "$(F train)"
    [ "$status" -eq 2 ] && [[ "$output" == *"--find-lr: "*"x.gif: unknown plot format"* ]]
    run tl finetune --scratch --arch small_cnn --find-lr "$d/x.png" -o "$d/x.safetensors" "$(F train)"
    [ "$status" -eq 2 ] && [[ "$output" == *"--find-lr writes no checkpoint"* ]]
    gen_blobs "$d/f.tsv" 3 30 4 3
    run tl finetune "$d/f.tsv" --head svm --unlabelled "$d/f.tsv" -o "$d/h.safetensors"
    [ "$status" -eq 2 ] && [[ "$output" == *"logistic-regression head"* ]]
    [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ]
    [ ! -e "$d/h.safetensors" ] && [ ! -e "$d/x.safetensors" ]
}

@test "--unlabelled and --find-lr are refused (exit 2, one line) where they are not wired: mpirun, balanced sampler, multi-label, --accumulate" {
    local d=$BATS_TEST_TMPDIR
    run tl finetune --scratch --arch small_cnn --unlabelled "$(F unl)" --sampler balanced -o "$d/x.safetensors" "$(F train)"
    [ "$status" -eq 2 ] && [[ "$output" == *"--unlabelled: "*"leave out --sampler balanced"* ]]
    run tl finetune --scratch --arch small_cnn --unlabelled "$(F unl)" --multi-label -o "$d/x.safetensors" "$(F train)"
    [ "$status" -eq 2 ] && [[ "$output" == *"--unlabelled: "*"leave out --multi-label"* ]]
    run tl finetune --scratch --arch small_cnn --find-lr "$d/x.png" --accumulate 2 "$(F train)"
    [ "$status" -eq 2 ] && [[ "$output" == *"--find-lr: "*"leave out --accumulate"* ]]
    [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ]
    # as one of two processes (the launcher's environment, as mpirun sets it)
    run env OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 "$TL_BIN/tl-finetune" --scratch --arch small_cnn \
        --unlabelled "$(F unl)" -o "$d/x.safetensors" "$(F train)"
    [ "$status" -eq 2 ] && [[ "$output" == "tl-finetune: --unlabelled: not yet with several processes; run it without mpirun/srun"* ]]
    [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ]
    run env OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 "$TL_BIN/tl-finetune" --scratch --arch small_cnn \
        --find-lr "$d/x.png" "$(F train)"
    [ "$status" -eq 2 ] && [[ "$output" == *"--find-lr: not yet with several processes"* ]]
    if command -v mpirun >/dev/null && ldd "$TL_BIN/tl-finetune" | grep -q libmpi; then
        [ -z "${TL_SANITIZE:-}" ] || export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
        run mpirun --oversubscribe --allow-run-as-root -np 2 "$TL_BIN/tl-finetune" --scratch --arch small_cnn \
            --input-size 32 --unlabelled "$(F unl)" -o "$d/x.safetensors" "$(F train)"
        [ "$status" -ne 0 ] && [[ "$output" == *"--unlabelled: not yet with several processes"* ]]
    fi
    no_files_like "$d" '*.safetensors'
}

@test "--unlabelled on NEU defects, 5 labelled images per class: self-training beats the labelled images alone" {
    [ -z "${TL_SANITIZE:-}" ] || skip "NEU extraction (1,800 images) is slow under sanitizers; it runs in the normal build"
    local neu=$TL_SHARED/datasets/neu-surface-defects d=$BATS_TEST_TMPDIR c
    [ -d "$neu/train" ] || skip "NEU surface defects not found in ../shared"
    need_shared
    : >"$d/lab.tsv"
    : >"$d/unl.tsv"
    for c in $(ls "$neu/train"); do
        ls "$neu/train/$c" | sort | head -n 5 | sed "s|^|$neu/train/$c/|; s|\$|\t$c|" >>"$d/lab.tsv"
        ls "$neu/train/$c" | sort | tail -n +6 | sed "s|^|$neu/train/$c/|; s|\$|\t$c|" >>"$d/unl.tsv"
    done
    convert_model mobilenet_v1_0.25_128_quant "$d/m.safetensors"
    tl extract -q -m "$d/m.safetensors" "$d/lab.tsv" -o "$d/lab.tlf"
    tl extract -q -m "$d/m.safetensors" "$d/unl.tsv" -o "$d/unl.tlf"
    tl extract -q -m "$d/m.safetensors" "$neu/test" -o "$d/test.tlf"
    run tl finetune "$d/lab.tlf" --val "$d/test.tlf" -o "$d/alone.safetensors"
    alone=$(printf '%s\n' "$output" | sed -n 's/.*validation accuracy \([0-9.]*\) .*/\1/p')
    run tl finetune "$d/lab.tlf" --unlabelled "$d/unl.tlf" --val "$d/test.tlf" -o "$d/self.safetensors"
    echo "$output"
    self=$(printf '%s\n' "$output" | sed -n 's/^tl-finetune: validation accuracy \([0-9.]*\) .*/\1/p')
    echo "labelled only $alone, with 1,410 unlabelled $self"
    assert_line --regexp "self-training round 5/5: [0-9]+ of 1410 unlabelled vectors joined"
    awk -v a="$alone" -v s="$self" 'BEGIN { exit !(s > a) }'
}
