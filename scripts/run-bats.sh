#!/bin/sh
# Runs the BATS suites against the tools in $TL_BIN and prints a summary line.
set -u
: "${TL_BIN:?TL_BIN must name the folder holding the tl-* programs}"
export TL_BIN PATH="$TL_BIN:$PATH"
out=$(mktemp); trap 'rm -f "$out"' EXIT
# The status comes from the results, not from the pipe (tee would hide it).
bats --tap tests/bats | tee "$out"
ok=$(grep -c '^ok ' "$out"); notok=$(grep -c '^not ok ' "$out")
skipped=$(grep -c '^ok .*# skip' "$out")
echo "bats: $((ok - skipped)) passed, $notok failed, $skipped skipped"
[ "$notok" -eq 0 ] && [ "$ok" -gt 0 ]
