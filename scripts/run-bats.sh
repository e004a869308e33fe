#!/bin/sh
# Runs the BATS suites against the tools in $TL_BIN and prints a summary line.
#   BATS_FILES   files to run (default: every tests/bats/*.bats)
#   BATS_FILTER  only the cases whose name matches this regular expression
#   BATS_JOBS    files run in parallel (default 2 when GNU parallel is there;
#                the cases of one file always run in order)
# Each case's time is printed, and the slowest at the end: make check must
# stay well under an hour on a slow machine, and this shows where it goes.
set -u
: "${TL_BIN:?TL_BIN must name the folder holding the tl-* programs}"
export TL_BIN PATH="$TL_BIN:$PATH"
files=${BATS_FILES:-tests/bats}
jobs=${BATS_JOBS:-2}
set --
if [ "$jobs" -gt 1 ] && command -v parallel >/dev/null 2>&1; then
    set -- --jobs "$jobs" --no-parallelize-within-files
fi
if [ -n "${BATS_FILTER:-}" ]; then set -- "$@" --filter "$BATS_FILTER"; fi
out=$(mktemp) || exit 2; trap 'rm -f "$out"' EXIT
# The status comes from the results, not from the pipe (tee would hide it).
# shellcheck disable=SC2086
bats --tap --timing "$@" $files | tee "$out"
echo "bats: the slowest cases:"
sed -n 's/^ok [0-9]* \(.*\) in \([0-9]*\)ms\( # skip.*\)\{0,1\}$/\2 \1/p' "$out" | sort -rn | head -8 |
    awk '{ t = $1; $1 = ""; printf "  %6.1f s%s\n", t / 1000, $0 }'
ok=$(grep -c '^ok ' "$out"); notok=$(grep -c '^not ok ' "$out")
skipped=$(grep -c '^ok .*# skip' "$out")
echo "bats: $((ok - skipped)) passed, $notok failed, $skipped skipped"
[ "$notok" -eq 0 ] && [ "$ok" -gt 0 ]
