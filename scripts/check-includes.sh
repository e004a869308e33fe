#!/bin/sh
# The include rule of lib/ (tl(7), LAYERS): a file includes only from its
# own layer or a layer below. Layers, lowest first:
#   core kernels nn models io augment train report api
# A quoted include "dir/x.h" names its layer; a bare "x.h" is the file's own
# folder when it is there, else lib/core (on the include path). Prints each
# breach as FILE:LINE: LAYER includes HIGHER-LAYER (x.h) and exits 1.
set -u
cd "$(dirname "$0")/.." || exit 2
list=$(mktemp) || exit 2
ls lib/*/*.[ch] >"$list" || exit 2
awk -v layers="core kernels nn models io augment train report api" '
    BEGIN {
        n = split(layers, L, " ")
        for (i = 1; i <= n; i++) rank[L[i]] = i
        while ((getline f < ARGV[1]) > 0) exists[f] = 1
        ARGV[1] = ""
    }
    FNR == 1 {
        split(FILENAME, p, "/")
        own = p[2]
        if (!(own in rank)) { print "lib/" own ": not a layer of the rule (add it here and to tl(7))"; bad = 1 }
    }
    /^[ \t]*#[ \t]*include[ \t]*"/ {
        inc = $0
        sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
        if (inc ~ /\//) { layer = inc; sub(/\/.*/, "", layer) }
        else layer = (("lib/" own "/" inc) in exists) ? own : "core"
        if (!(layer in rank) || rank[layer] > rank[own]) {
            print FILENAME ":" FNR ": " own " includes " layer " (" inc ")"
            bad = 1
        }
    }
    END {
        if (!bad) print "include rule: every lib/ file includes from its own layer or below"
        exit bad
    }
' "$list" lib/*/*.[ch]
st=$?
rm -f "$list"
exit $st
