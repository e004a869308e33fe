#!/usr/bin/env bats
# The option tables (tools/opt.h): every tool's table against its man page,
# one meaning per short letter across tools, no abbreviations, --help that
# fits a terminal, and the shell completion generated from the tables.
# Self-contained: no model or data from ../shared.

load helpers

# every tl-* program built
TOOLS=$(cd "$TL_BIN" && ls tl-* | sed "s/^tl-//" | tr "\n" " ")
MAN=$BATS_TEST_DIRNAME/../../man

# man_options PAGE: the options a man page documents, one per line
# ("-m --model" or "- --no-pool"): the tag line after each .TP in the
# OPTIONS section (its .SS subsections included).
man_options() {
    awk '
        /^\.SH / { in_opts = ($0 ~ /^\.SH OPTIONS/); next }
        !in_opts { next }
        /^\.TP/ { tag = 1; next }
        tag {
            tag = 0
            line = $0
            gsub(/\\-/, "-", line)
            gsub(/\\f[BIRP]/, "", line)
            gsub(/"/, " ", line)
            n = split(line, w, /[ ,]+/)
            short = "-"
            for (i = 1; i <= n; i++) {
                if (w[i] ~ /^-[A-Za-z]$/) short = w[i]
                else if (w[i] ~ /^--[A-Za-z0-9][A-Za-z0-9-]*$/) { print short, w[i]; short = "-" }
            }
        }
    ' "$1" | sort -u
}

# table_options TOOL: the same from the tool's option table.
table_options() {
    tl "$1" --complete-options=list | awk -F'\t' '{ print $1, $2 }' | sort -u
}

@test "every tool's options are the ones its man page documents, letters included" {
    for t in $TOOLS; do
        local page=$MAN/tl-$t.1
        diff <(table_options "$t") <(man_options "$page") >"$BATS_TEST_TMPDIR/diff" ||
            fail "tl-$t: table (<) and man page OPTIONS (>) differ: $(cat "$BATS_TEST_TMPDIR/diff")"
    done
}

@test "a short letter means the same long option in every tool" {
    local all=$BATS_TEST_TMPDIR/all
    for t in $TOOLS; do
        tl "$t" --complete-options=list 2>/dev/null | awk -F'\t' -v t="$t" '$1 != "-" { print $1, $2, t }'
    done | sort -u >"$all"
    local clash
    clash=$(awk '{ if ($1 in long && long[$1] != $2) print $1 ": " long[$1] " (" tool[$1] ") and " $2 " (" $3 ")"; long[$1] = $2; tool[$1] = $3 }' "$all")
    [ -z "$clash" ] || fail "$clash"
}

@test "long options are never abbreviated; the error names the whole option" {
    for t in $TOOLS; do
        local long
        long=$(tl "$t" --complete-options=list | awk -F'\t' 'length($2) > 6 && $2 != "--version" { print $2; exit }')
        [ -n "$long" ] || continue
        run --separate-stderr tl "$t" "${long:0:5}" x
        assert_failure 2
        [[ "$stderr" == "tl-$t: unknown option '${long:0:5}'; did you mean "*"$long"*"never abbreviated"* ]] ||
            fail "tl-$t ${long:0:5}: '$stderr'"
    done
}

@test "an option of other tools gets a precise answer" {
    run --separate-stderr tl extract -s 3 -m m x
    assert_failure 2
    assert_equal "$stderr" "tl-extract: '-s' (--seed in the tl tools) is not an option of tl-extract (see tl-extract --help)"
    run --separate-stderr tl extract --seed 3 -m m x
    assert_failure 2
    assert_equal "$stderr" "tl-extract: '--seed' is not an option of tl-extract (see tl-extract --help)"
    run --separate-stderr tl extract --layr x -m m x
    assert_failure 2
    [[ "$stderr" == *"did you mean --layer?"* ]] || fail "$stderr"
}

@test "values are checked by type and range, naming the option" {
    run --separate-stderr tl extract -m m --batch 0 x
    assert_failure 2
    assert_equal "$stderr" "tl-extract: --batch: '0' is not a whole number in 1..4096 (see tl-extract --help)"
    run --separate-stderr tl extract -m m --format csv x
    assert_failure 2
    assert_equal "$stderr" "tl-extract: --format: 'csv' is not tlf, tsv, npy or npz (see tl-extract --help)"
    run --separate-stderr tl extract -m m --batch=12x x
    assert_failure 2
    run --separate-stderr tl extract -m '' x
    assert_failure 2
    assert_equal "$stderr" "tl-extract: --model: an empty name (see tl-extract --help)"
    run --separate-stderr tl extract -m m --log
    assert_failure 2
    assert_equal "$stderr" "tl-extract: option '--log' needs a value (see tl-extract --help)"
}

@test "every --help line fits in 80 columns" {
    for t in $TOOLS; do
        local long
        long=$(tl "$t" --help | awk 'length > 80')
        [ -z "$long" ] || fail "tl-$t --help: $long"
    done
}

@test "bash completion from the tables: options, choices, models by name" {
    local f=$BATS_TEST_TMPDIR/tl.bash
    tl extract --complete-options=bash >"$f"
    mkdir -p "$BATS_TEST_TMPDIR/models"
    : >"$BATS_TEST_TMPDIR/models/resnet18.safetensors"
    run bash -c '
        source "$1"
        COMP_WORDS=(tl-extract --form); COMP_CWORD=1; _tl_extract; echo "1:${COMPREPLY[*]}"
        COMP_WORDS=(tl-extract -f t); COMP_CWORD=2; _tl_extract; echo "2:${COMPREPLY[*]}"
        COMP_WORDS=(tl-extract --format = n); COMP_CWORD=3; _tl_extract; echo "3:${COMPREPLY[*]}"
        cd "$2"; TL_MODEL_PATH=$2/models
        COMP_WORDS=(tl-extract -m res); COMP_CWORD=2; _tl_extract; echo "4:${COMPREPLY[*]}"
    ' _ "$f" "$BATS_TEST_TMPDIR"
    assert_success
    assert_line "1:--format"
    assert_line "2:tlf tsv"
    assert_line "3:npy npz"
    assert_line "4:resnet18"
}

@test "zsh completion from the tables parses" {
    command -v zsh >/dev/null || skip "zsh not installed"
    local f=$BATS_TEST_TMPDIR/_tl
    { echo '#compdef tl-extract'; tl extract --complete-options=zsh; } >"$f"
    run zsh -n "$f"
    assert_success
}

@test "--complete-options with an unknown shell is a usage error" {
    run --separate-stderr tl extract --complete-options=fish
    assert_failure 2
    [[ "$stderr" == "tl-extract: --complete-options: 'fish'"* ]] || fail "$stderr"
}

@test "every man page's EXIT STATUS lists 0, 1, 2 and 130/143 in one layout" {
    for t in $TOOLS; do
        local codes
        codes=$(awk '/^\.SH /{ s = ($0 ~ /EXIT STATUS/) ; next } s && prev ~ /^\.TP/ { print } { prev = $0 }' \
            "$MAN/tl-$t.1" | tr '\n' ' ')
        assert_equal "$codes" '.B 0 .B 1 .B 2 .BR 130 ", " 143 '
    done
}

@test "the man pages render without groff warnings" {
    command -v groff >/dev/null || skip "groff not installed"
    for f in "$MAN"/*.[157]; do
        run groff -man -ww -z -Tutf8 "$f"
        assert_output ""
    done
}
