#!/bin/sh
# make install / make uninstall: the programs, libtl.a, libtl.so with its
# soname links, tl.h, tl.pc, the man pages, the shell completion and the
# examples (share/doc/tl/examples), under $DESTDIR$PREFIX (a staging root
# and the prefix the files will live in).
#
# usage: install.sh install|uninstall LIBA LIBSO VERSION PROGRAM...
# env:   DESTDIR PREFIX BINDIR LIBDIR INCLUDEDIR MANDIR DATADIR COMPLETION_DIR
set -eu
mode=$1 liba=$2 libso=$3 version=$4
shift 4
: "${PREFIX:=/usr/local}"
: "${DESTDIR:=}"
: "${BINDIR:=$PREFIX/bin}" "${LIBDIR:=$PREFIX/lib}" "${INCLUDEDIR:=$PREFIX/include}"
: "${MANDIR:=$PREFIX/share/man}" "${DATADIR:=$PREFIX/share}"
: "${COMPLETION_DIR:=build/completion}"
major=${version%%.*}
bashdir=$DATADIR/bash-completion/completions
zshdir=$DATADIR/zsh/site-functions
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# The files, as "SOURCE MODE DEST" lines (DEST below $DESTDIR).
files() {
    for p in "$@"; do echo "$p 755 $BINDIR/${p##*/}"; done
    echo "$liba 644 $LIBDIR/libtl.a"
    echo "$libso 755 $LIBDIR/libtl.so.$version"
    echo "lib/tl.h 644 $INCLUDEDIR/tl.h"
    for m in man/*.[1357]; do echo "$m 644 $MANDIR/man${m##*.}/${m##*/}"; done
    echo "$COMPLETION_DIR/tl.bash 644 $bashdir/tl"
    echo "$COMPLETION_DIR/_tl 644 $zshdir/_tl"
    for f in examples/*.c examples/*/*; do
        case $f in *.sh) m=755 ;; *) m=644 ;; esac
        echo "$f $m $DATADIR/doc/tl/$f"
    done
}

case $mode in
install)
    files "$@" | while read -r src m dest; do
        install -D -m "$m" "$src" "$DESTDIR$dest"
    done
    ln -sf "libtl.so.$version" "$DESTDIR$LIBDIR/libtl.so.$major"
    ln -sf "libtl.so.$major" "$DESTDIR$LIBDIR/libtl.so"
    # bash-completion loads a command's completion from a file of its name
    for p in "$@"; do ln -sf tl "$DESTDIR$bashdir/${p##*/}"; done
    install -d "$DESTDIR$LIBDIR/pkgconfig"
    sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@LIBDIR@|$LIBDIR|g" -e "s|@INCLUDEDIR@|$INCLUDEDIR|g" \
        -e "s|@VERSION@|$version|g" lib/tl.pc.in >"$DESTDIR$LIBDIR/pkgconfig/tl.pc"
    echo "installed tl $version under $DESTDIR$PREFIX"
    ;;
uninstall)
    files "$@" | while read -r src m dest; do rm -f "$DESTDIR$dest"; done
    rm -f "$DESTDIR$LIBDIR/libtl.so.$major" "$DESTDIR$LIBDIR/libtl.so" "$DESTDIR$LIBDIR/pkgconfig/tl.pc"
    for p in "$@"; do rm -f "$DESTDIR$bashdir/${p##*/}"; done
    # folders this left empty (never the prefix's own bin, lib, ...)
    for d in "$LIBDIR/pkgconfig" "$bashdir" "$DATADIR/bash-completion" "$zshdir" "$DATADIR/zsh" \
        "$DATADIR/doc/tl/examples/cron" "$DATADIR/doc/tl/examples/Makefile-experiment" "$DATADIR/doc/tl/examples" \
        "$DATADIR/doc/tl"; do
        rmdir "$DESTDIR$d" 2>/dev/null || true
    done
    echo "removed tl $version from $DESTDIR$PREFIX"
    ;;
*)
    echo "usage: install.sh install|uninstall LIBA LIBSO VERSION PROGRAM..." >&2
    exit 2
    ;;
esac
