#!/bin/sh
# Finds, or fetches, TensorFlow Lite's C library for the int8 parity test
# (tests/parity/tflite_int8.py): libtensorflowlite_c.so as shipped inside the
# npm package tfjs-tflite-node 0.0.2 (Apache-2.0; TFLite 2.9, x86-64 Linux),
# unpacked under build/parity/tflite. Prints the library's path. Exit 1 with
# the reason on stderr when it cannot be had (the caller then skips, saying so).
# The package's own install step (a native Node addon) is not run: only its
# tarball is fetched, with npm pack, and the library checked by its SHA-256.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/build/parity/tflite
lib=$dir/package/cc_deps/linux_amd64/libtensorflowlite_c.so
sum=dc89b4cd86d956516570bd483668e6dd98907f49901d0567dedc69a29a56b7f7
case $(uname -sm) in
Linux\ x86_64) ;;
*) echo "the packaged TFLite library is for x86-64 Linux only" >&2; exit 1 ;;
esac
if [ ! -f "$lib" ]; then
    command -v npm >/dev/null || { echo "npm is not installed" >&2; exit 1; }
    mkdir -p "$dir"
    if ! (cd "$dir" && npm pack --silent tfjs-tflite-node@0.0.2 >"$dir/npm.log" 2>&1); then
        echo "npm pack tfjs-tflite-node failed (see build/parity/tflite/npm.log)" >&2
        exit 1
    fi
    tar -xzf "$dir/tfjs-tflite-node-0.0.2.tgz" -C "$dir" package/cc_deps/linux_amd64/libtensorflowlite_c.so ||
        { echo "tfjs-tflite-node-0.0.2.tgz holds no libtensorflowlite_c.so" >&2; exit 1; }
fi
got=$(sha256sum "$lib" | cut -d' ' -f1)
[ "$got" = "$sum" ] || { echo "$lib: unexpected SHA-256 $got" >&2; exit 1; }
echo "$lib"
