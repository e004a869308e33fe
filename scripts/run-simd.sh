#!/bin/sh
# Runs the suites whose results depend on the SIMD path once more on each
# lower path this CPU supports (make check has already run everything on
# the best one): the kernel unit tests, the forward parity tests of one
# model per family and every training-step parity test against PyTorch.
# An AVX-512 machine thus proves the AVX2 and scalar paths too; a machine
# without AVX-512 says that it could not test that path.
# usage: run-simd.sh UNIT_TEST_DIR   (TL_BIN, TL_TEST_BIN as for run-bats.sh)
set -u
units=${1:?usage: run-simd.sh UNIT_TEST_DIR}
: "${TL_BIN:?}" "${TL_TEST_BIN:?}"
export TL_BIN TL_TEST_BIN PATH="$TL_BIN:$PATH"
paths=$(env -u TL_SIMD "$TL_TEST_BIN/tl-simd") || exit 1
best=$(echo "$paths" | sed -n 's/^default //p')
supported=$(echo "$paths" | grep -v '^default ')
for p in avx512vnni avx512 avx2; do
    echo "$supported" | grep -qx "$p" ||
        echo "simd: this CPU has no $p: the $p kernels could NOT be tested on this machine"
done
lower=$(echo "$supported" | grep -vx "$best")
[ -n "$lower" ] || { echo "simd: only the $best path exists here, tested by the main pass"; exit 0; }
echo "simd: the main pass ran on $best; now the same kernels on:" $lower

# Unit tests whose kernels take the path from TL_SIMD (GEMM micro-kernels,
# depthwise planes, training-mode batch norm, activation derivatives,
# depthwise weight gradients) and whole-network forward and backward.
# test_conv and test_backward_conv also compare every path side by side.
# The int8 kernels: avx512vnni differs from avx512 only in them, so on a
# VNNI machine the avx512 pass runs just these (the float kernels are the same).
q8_tests="test_q8"
unit_tests="test_gemm test_backward_act test_backward_attention test_backward_conv test_backward_norm \
test_backward_tape test_model test_kernels_misc $q8_tests"
# Forward parity: all of parity.bats, and in the zoo one model per family
# (the other sizes and depths add no operator). Every training step.
zoo='resnet18, resnet34 at 64|squeezenet1_0, squeezenet1_1 at 99|mobilenet_v3_small and _large at 64'
zoo="$zoo|efficientnet_b0 at 64, from|vit_ti_16 with timm names \\(tl-convert\\) at 96"
zoo_expected=5
status=0
for p in $lower; do
    echo "simd: === TL_SIMD=$p ==="
    if [ "$best" = avx512vnni ] && [ "$p" = avx512 ]; then
        for t in $q8_tests; do
            TL_SIMD=$p "$units/$t" >"$units/$t.$p.err" 2>&1 ||
                { echo "simd: $p: unit test $t FAILED:"; cat "$units/$t.$p.err"; status=1; continue; }
            echo "simd: $p: $(tail -n 1 "$units/$t.$p.err")"
        done
        continue
    fi
    for t in $unit_tests; do
        TL_SIMD=$p "$units/$t" >"$units/$t.$p.err" 2>&1 ||
            { echo "simd: $p: unit test $t FAILED:"; cat "$units/$t.$p.err"; status=1; continue; }
        echo "simd: $p: $(tail -n 1 "$units/$t.$p.err")"
    done
    # TL_SIMD_RERUN: cases that test no SIMD-dependent code skip
    out=$(TL_SIMD=$p TL_SIMD_RERUN=1 bats --tap --filter "$zoo" tests/bats/zoo_cnn.bats tests/bats/zoo_mobile.bats \
        tests/bats/zoo_vit.bats 2>&1; TL_SIMD=$p TL_SIMD_RERUN=1 bats --tap tests/bats/parity.bats \
        tests/bats/train_parity.bats 2>&1)
    echo "$out" | sed "s/^/simd: $p: /"
    zoo_ran=$(echo "$out" | grep -c '^ok .*zoo\|^ok .*vit:\|^not ok .*zoo\|^not ok .*vit:')
    if [ "$zoo_ran" -ne "$zoo_expected" ]; then
        echo "simd: $p: the zoo filter matched $zoo_ran tests, not $zoo_expected (a test was renamed?)"
        status=1
    fi
    echo "$out" | grep -q '^not ok' && status=1
done
[ $status -eq 0 ] && echo "simd: every lower path passed:" $lower
exit $status
