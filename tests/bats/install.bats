#!/usr/bin/env bats
# make install / uninstall and the public library as an outside program
# sees it: the installed tree, libtl.so's soname and exported symbols
# (only tl.h's functions), the examples built with pkg-config against the
# installed library and run (classify, embed, the Makefile experiment, the
# nightly cron job). Under sanitizers the installed library is the
# sanitized build and the examples are compiled with the same flags.

load helpers

ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

# The build the tests run against: make check passes TL_OUT/TL_OPT/TL_SAN;
# by hand, TL_BIN's build.
build_flags() {
    local out=${TL_OUT:-}
    [ -n "$out" ] || out=$(cd "$TL_BIN/.." && pwd)
    echo "OUT=$out"
}

tl_make() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" "$(build_flags)" \
        ${TL_OPT:+OPT="$TL_OPT"} SAN="${TL_SAN:-}" "$@"
}

setup_file() {
    export P=$BATS_FILE_TMPDIR/prefix
    tl_make install PREFIX="$P" >"$BATS_FILE_TMPDIR/install.log" 2>&1 ||
        { cat "$BATS_FILE_TMPDIR/install.log"; return 1; }
    export PKG_CONFIG_PATH=$P/lib/pkgconfig LD_LIBRARY_PATH=$P/lib
    # classes "blue" and "red": tinted noise, so heads learn something
    export DATA=$BATS_FILE_TMPDIR/data
    local split n c i
    for split in train val; do
        n=6
        [ "$split" = val ] && n=4
        for c in red blue; do
            mkdir -p "$DATA/$split/$c"
            for ((i = 0; i < n; i++)); do tinted_ppm "$DATA/$split/$c/$i.ppm" "$c" "$split$c$i"; done
        done
    done
    export M=$BATS_FILE_TMPDIR/models
    mkdir -p "$M"
    "$TL_TEST_BIN/tl-randnet" mobilenet_v2 "$M/mnv2.safetensors" --size 32 --width 0.5 --classes 7
    "$TL_TEST_BIN/tl-randnet" resnet18 "$M/r18.safetensors" --size 32 --classes 7
}

# tinted_ppm FILE red|blue SEED: a 40x40 image, noise around one colour.
tinted_ppm() {
    perl -e 'srand(unpack("%32C*", $ARGV[2])); my @t = $ARGV[1] eq "red" ? (200, 40, 40) : (40, 40, 200);
             print "P6\n40 40\n255\n";
             for (1 .. 1600) { for my $v (@t) { my $x = $v + int(rand(120)) - 60; print chr($x < 0 ? 0 : $x > 255 ? 255 : $x) } }' \
        "$1" "$2" "$3" >"$1"
}

# cc_example SOURCE OUT [pkg-config options]
cc_example() {
    # shellcheck disable=SC2046
    cc -std=c99 -Wall -Wextra -pedantic -Werror ${TL_SAN:-} "$ROOT/examples/$1" \
        $(pkg-config --cflags --libs tl) -o "$2"
}

@test "make install: programs, libtl.a, libtl.so and its links, tl.h, tl.pc, man pages, completion, examples" {
    local f
    for f in bin/tl-extract bin/tl-export bin/tl-finetune lib/libtl.a lib/libtl.so.0.1.0 include/tl.h \
        lib/pkgconfig/tl.pc share/man/man1/tl-export.1 share/man/man3/tl.3 share/man/man5/tl-formats.5 \
        share/man/man7/tl.7 share/bash-completion/completions/tl share/zsh/site-functions/_tl \
        share/doc/tl/examples/classify.c share/doc/tl/examples/Makefile-experiment/Makefile \
        share/doc/tl/examples/cron/nightly.sh; do
        [ -f "$P/$f" ] || fail "$P/$f missing"
    done
    [ "$(readlink "$P/lib/libtl.so.0")" = libtl.so.0.1.0 ]
    [ "$(readlink "$P/lib/libtl.so")" = libtl.so.0 ]
    [ "$(readlink "$P/share/bash-completion/completions/tl-extract")" = tl ]
    [ -x "$P/share/doc/tl/examples/cron/nightly.sh" ]
    grep -qx "prefix=$P" "$P/lib/pkgconfig/tl.pc"
    run pkg-config --modversion tl
    [ "$output" = "$("$P/bin/tl-extract" --version | head -1 | sed 's/.* //')" ]
    run pkg-config --static --libs tl
    [[ "$output" == *"-ltl"*"-ljpeg"*"-lpng"* ]]
    # the installed completion loads in bash and completes an option
    run bash -c ". '$P/share/bash-completion/completions/tl-export' && complete -p tl-export"
    [ "$status" -eq 0 ]
    # the installed man pages render
    run man -l "$P/share/man/man3/tl.3"
    [[ "$output" == *"tl_session_open"* ]]
}

@test "libtl.so: soname libtl.so.0; exports exactly the functions tl.h declares, every one tl_" {
    run readelf -d "$P/lib/libtl.so.0.1.0"
    [[ "$output" == *"Library soname: [libtl.so.0]"* ]]
    # no MPI at run time, even where tl-finetune is built with it
    [[ "$output" != *"libmpi"* ]]
    local exported declared
    exported=$(nm -D --defined-only "$P/lib/libtl.so.0.1.0" | awk '$2 ~ /^[TDBRVWi]$/ { print $3 }' | sort)
    declared=$(grep -o '^TL_API [^(]*(' "$P/include/tl.h" | sed 's/.*[ *]\(tl_[a-z0-9_]*\)($/\1/' | sort)
    [ -n "$declared" ]
    echo "exported but not in tl.h: $(comm -23 <(echo "$exported") <(echo "$declared") | tr '\n' ' ')"
    echo "in tl.h but not exported: $(comm -13 <(echo "$exported") <(echo "$declared") | tr '\n' ' ')"
    [ "$exported" = "$declared" ]
    ! echo "$exported" | grep -v '^tl_'
}

@test "tl.h alone compiles as C99 and C++ (-Wall -Wextra -pedantic -Werror)" {
    printf '#include <tl.h>\nint main(void) { tl_err e = {{0}, 0}; return e.kind + (tl_version() == 0); }\n' \
        >"$BATS_TEST_TMPDIR/h.c"
    # shellcheck disable=SC2046
    cc -std=c99 -Wall -Wextra -pedantic -Werror ${TL_SAN:-} "$BATS_TEST_TMPDIR/h.c" $(pkg-config --cflags --libs tl) \
        -o "$BATS_TEST_TMPDIR/h"
    "$BATS_TEST_TMPDIR/h"
    if command -v c++ >/dev/null; then
        c++ -std=c++11 -Wall -Wextra -pedantic -Werror -fsyntax-only -x c++ "$BATS_TEST_TMPDIR/h.c" \
            $(pkg-config --cflags tl)
    else
        echo "# note: no C++ compiler: the C++ check is skipped" >&3
    fi
}

@test "examples/classify.c and embed.c, built with pkg-config, agree with tl-predict and tl-extract" {
    cc_example classify.c "$BATS_TEST_TMPDIR/classify"
    cc_example embed.c "$BATS_TEST_TMPDIR/embed"
    local img=$DATA/val/red/0.ppm
    run "$BATS_TEST_TMPDIR/classify" "$M/mnv2.safetensors" "$img"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 5 ]
    # the same top class and probability as tl-predict
    local want
    want=$("$P/bin/tl-predict" -m "$M/mnv2.safetensors" -k 1 "$img" | awk -F'\t' 'NR == 2 { printf "%.4f\t%s", $3, $2 }')
    [ "${lines[0]}" = "$want" ]
    # embed: tl-extract's vector, digit for digit
    "$BATS_TEST_TMPDIR/embed" "$M/mnv2.safetensors" "$img" >"$BATS_TEST_TMPDIR/v.txt"
    "$P/bin/tl-extract" -q -m "$M/mnv2.safetensors" -f tsv "$img" | grep -v '^#' | cut -f3- | tr '\t' '\n' \
        >"$BATS_TEST_TMPDIR/want.txt"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/v.txt")" -eq 1280 ]
    cmp "$BATS_TEST_TMPDIR/v.txt" "$BATS_TEST_TMPDIR/want.txt"
    # from standard input (decoded from memory), and another layer
    "$BATS_TEST_TMPDIR/embed" "$M/mnv2.safetensors" - <"$img" | cmp - "$BATS_TEST_TMPDIR/v.txt"
    "$BATS_TEST_TMPDIR/embed" -l features.3 "$M/mnv2.safetensors" "$img" >"$BATS_TEST_TMPDIR/v3.txt"
    "$P/bin/tl-extract" -q -m "$M/mnv2.safetensors" -l features.3 -f tsv "$img" | grep -v '^#' | cut -f3- |
        tr '\t' '\n' | cmp - "$BATS_TEST_TMPDIR/v3.txt"
    run "$BATS_TEST_TMPDIR/embed" -l nope "$M/mnv2.safetensors" "$img"
    [ "$status" -eq 2 ]
    [[ "$output" == "embed: no layer named 'nope'"* ]]
    run "$BATS_TEST_TMPDIR/classify" "$M/mnv2.safetensors" "$BATS_TEST_TMPDIR/none.jpg"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 1 ]
    # static linking works too
    if [ -z "${TL_SAN:-}" ]; then
        # shellcheck disable=SC2046
        cc "$ROOT/examples/classify.c" $(pkg-config --cflags tl) "$P/lib/libtl.a" \
            $(pkg-config --static --libs-only-l tl | sed 's/-ltl //') -o "$BATS_TEST_TMPDIR/classify-static"
        ! ldd "$BATS_TEST_TMPDIR/classify-static" | grep -q libtl
        "$BATS_TEST_TMPDIR/classify-static" "$M/mnv2.safetensors" "$img" | head -1 | grep -qx "$want"
    fi
}

@test "examples/Makefile-experiment: make -j2 builds the comparison; a second make does nothing; a touched backbone redoes only its column" {
    local x=$BATS_TEST_TMPDIR/exp
    mkdir -p "$x"
    cp "$P/share/doc/tl/examples/Makefile-experiment/Makefile" "$x/"
    # A user's make, not the one running this suite: under make check-asan,
    # OUT=build/asan reaches this shell (environment and MAKEFLAGS) and would
    # redirect the example's OUT.
    mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u OUT make -C "$x" -j2 TRAIN="$DATA/train" VAL="$DATA/val" MODELS="$M" BACKBONES="mnv2 r18" TL="$P/bin/" "$@"; }
    run mk
    echo "$output"
    [ "$status" -eq 0 ]
    local f
    for f in compare.txt compare.tsv curves.svg mnv2.head.safetensors r18.head.safetensors mnv2.eval.json r18.eval.svg; do
        [ -s "$x/out/$f" ] || fail "out/$f missing"
    done
    grep -q "features+logreg" "$x/out/compare.txt"
    grep -q '"accuracy"' "$x/out/r18.eval.json"
    run mk
    [ "$status" -eq 0 ]
    [[ "$output" != *"tl-"* ]] || fail "a second make ran: $output"
    sleep 1
    touch "$M/r18.safetensors"
    run mk
    [ "$status" -eq 0 ]
    [[ "$output" == *"tl-extract"*"r18.safetensors"* ]]
    [[ "$output" != *"mnv2.safetensors"* ]]
    [[ "$output" != *"mnv2.train.tlf --val"* ]]
    [[ "$output" == *"tl-compare"* ]]
    # a new validation image: the validation features of both, not the training ones
    cp "$DATA/val/red/0.ppm" "$DATA/val/red/new.ppm"
    run mk
    rm -f "$DATA/val/red/new.ppm"
    [ "$status" -eq 0 ]
    [[ "$output" == *"-o out/mnv2.val.tlf"* && "$output" == *"-o out/r18.val.tlf"* ]]
    [[ "$output" != *"-o out/mnv2.train.tlf"* && "$output" != *"-o out/r18.train.tlf"* ]]
}

@test "examples/cron/nightly.sh: installs a head, keeps the better one, one run at a time" {
    local s=$BATS_TEST_TMPDIR/state job=$P/share/doc/tl/examples/cron/nightly.sh
    export MODEL=$M/mnv2.safetensors TRAIN=$DATA/train VAL=$DATA/val STATE=$s TL=$P/bin/
    run "$job"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"new head installed"* ]]
    [[ "$output" == *"training images: 12, extracted this run: 12"* ]]
    [ -f "$s/head.safetensors" ]
    "$P/bin/tl-predict" -m "$s/head.safetensors" -k 1 "$DATA/val/red/0.ppm" | grep -q red
    # training labels swapped: the candidate is worse, the head stays
    local sw=$BATS_TEST_TMPDIR/swapped
    mkdir -p "$sw"
    cp -r "$DATA/train/red" "$sw/blue"
    cp -r "$DATA/train/blue" "$sw/red"
    cp "$s/head.safetensors" "$BATS_TEST_TMPDIR/before.safetensors"
    TRAIN=$sw run "$job"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"kept the current head"* ]]
    cmp "$s/head.safetensors" "$BATS_TEST_TMPDIR/before.safetensors"
    [ ! -e "$s/candidate.safetensors" ]
    [ "$(tail -1 "$s/history.tsv" | cut -f5)" = kept ]
    # nothing new: nothing extracted; one new image and one edited: those two,
    # and the rows are what a full extraction gives
    TRAIN=$sw run "$job"
    [ "$status" -eq 0 ]
    [[ "$output" == *"training images: 12, extracted this run: 0"* ]]
    cp "$DATA/val/red/0.ppm" "$sw/red/new.ppm"
    sleep 1
    cp "$DATA/val/blue/0.ppm" "$sw/blue/0.ppm"
    TRAIN=$sw run "$job"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"training images: 13, extracted this run: 2"* ]]
    cut -f1,2 "$s/train.list" >"$BATS_TEST_TMPDIR/all.tsv"
    "$P/bin/tl-extract" -q -m "$MODEL" -f tsv "$BATS_TEST_TMPDIR/all.tsv" | grep -v '^#' | sort >"$BATS_TEST_TMPDIR/full"
    grep -v '^#' "$s/train.tsv" | sort | cmp - "$BATS_TEST_TMPDIR/full"
    # another run holds the lock: this one leaves at once
    flock "$s/lock" sleep 5 &
    local holder=$!
    sleep 0.5
    run "$job"
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    [ "$status" -eq 0 ]
    [[ "$output" == *"another run holds"* ]]
    [ "$(wc -l <"$s/history.tsv")" -eq 5 ]
}

@test "make install DESTDIR= stages under the prefix; an example builds and runs against the staged tree; make uninstall removes every file" {
    local stage=$BATS_TEST_TMPDIR/stage lib flags want
    tl_make install DESTDIR="$stage" PREFIX=/opt/tl >/dev/null
    [ -f "$stage/opt/tl/include/tl.h" ]
    grep -qx "prefix=/opt/tl" "$stage/opt/tl/lib/pkgconfig/tl.pc"
    # a package build compiles against the staged files, as a distribution's
    # does: pkg-config's sysroot puts the stage before the prefix
    lib=$stage/opt/tl/lib
    flags=$(PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_PATH=$lib/pkgconfig pkg-config --cflags --libs tl)
    [[ "$flags" == *"-I$stage/opt/tl/include"* && "$flags" == *"-L$lib"* ]] || fail "pkg-config: $flags"
    # shellcheck disable=SC2086
    cc -std=c99 -Wall -Wextra -pedantic -Werror ${TL_SAN:-} "$ROOT/examples/classify.c" $flags \
        -o "$BATS_TEST_TMPDIR/classify"
    LD_LIBRARY_PATH=$lib ldd "$BATS_TEST_TMPDIR/classify" | grep -q "libtl.so.0 => $lib/libtl.so.0"
    want=$("$P/bin/tl-predict" -m "$M/r18.safetensors" -k 1 "$DATA/val/blue/1.ppm" |
        awk -F'\t' 'NR == 2 { printf "%.4f\t%s", $3, $2 }')
    run env LD_LIBRARY_PATH="$lib" "$BATS_TEST_TMPDIR/classify" "$M/r18.safetensors" "$DATA/val/blue/1.ppm"
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "$want" ]
    tl_make uninstall DESTDIR="$stage" PREFIX=/opt/tl >/dev/null
    run find "$stage" -type f -o -type l
    [ -z "$output" ] || fail "left behind: $output"
}
