#!/bin/sh
# Runs each unit-test binary under valgrind's memcheck: an invalid read or
# write, a use of uninitialised memory, or a definite leak fails it.
# TL_SANITIZE=1 is set so that tests may skip their slowest cases, as under
# the sanitizers. Prints one summary line counting binaries.
set -u
supp=$(dirname "$0")/../tests/valgrind/tl.supp
passed=0 failed=0
for t in "$@"; do
    start=$(date +%s)
    if TL_SANITIZE=1 valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite --track-origins=yes --suppressions="$supp" "$t" >/dev/null; then
        passed=$((passed + 1))
        echo "valgrind: $t clean ($(($(date +%s) - start)) s)"
    else
        failed=$((failed + 1))
        echo "valgrind: $t FAILED ($(($(date +%s) - start)) s)" >&2
    fi
done
echo "valgrind: $passed clean, $failed failed"
[ "$failed" -eq 0 ]
