#!/bin/sh
# Runs the BATS suites against the tools in $TL_BIN and prints a summary line.
set -u
: "${TL_BIN:?TL_BIN must name the folder holding the tl-* programs}"
export TL_BIN PATH="$TL_BIN:$PATH"
out=$(mktemp); trap 'rm -f "$out"' EXIT
bats --tap tests/bats | tee "$out"
status=$?
ok=$(grep -c '^ok ' "$out"); notok=$(grep -c '^not ok ' "$out")
skipped=$(grep -c '^ok .*# skip' "$out")
echo "bats: $((ok - skipped)) passed, $notok failed, $skipped skipped"
exit $status
