#!/bin/sh
# Installs everything tl needs to build, test and benchmark on Debian 12.
# Runs apt-get directly as root, through sudo otherwise.
set -eu
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

build="make gcc libc6-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev pkg-config"
tests="bats bats-assert bats-support python3 python3-numpy python3-pil python3-torch python3-torchvision \
dataset-fashion-mnist librsvg2-bin jq groff-base man-db clang libclang-rt-14-dev valgrind \
python3-onnx python3-opencv"
# data-parallel tl-finetune and tests/bats/mpi.bats (optional at build time: make uses mpicc when
# it exists; procps: its pgrep/pkill); GNU parallel runs the BATS files two at a time (scripts/run-bats.sh);
# slurm-wlm and munge: tests/bats/slurm.bats starts a single-node Slurm to run scripts/cluster/
scale="openmpi-bin libopenmpi-dev procps parallel slurm-wlm munge"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $build $tests $scale
