#!/bin/sh
# Runs each unit-test binary; prints one summary line counting binaries.
passed=0 failed=0
for t in "$@"; do
    if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "unit test failed: $t" >&2; fi
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
