#!/bin/sh
# Finds, or installs, ONNX Runtime for Node.js where `make bench` keeps it
# (build/bench/node, onnxruntime-node 1.30.0, from the npm registry), and
# prints the NODE_PATH that reaches it. Exit 1 with the reason on stderr
# when node or the package cannot be had (the caller then skips, saying so).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/build/bench/node
command -v node >/dev/null || { echo "node is not installed (make deps)" >&2; exit 1; }
if [ ! -d "$dir/node_modules/onnxruntime-node" ]; then
    command -v npm >/dev/null || { echo "npm is not installed (make deps)" >&2; exit 1; }
    mkdir -p "$dir"
    # Its post-install script would fetch GPU binaries; the CPU library ships inside the package.
    if ! ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix "$dir" onnxruntime-node@1.30.0 >"$dir/../npm.log" 2>&1; then
        echo "npm install onnxruntime-node failed (see build/bench/npm.log)" >&2
        exit 1
    fi
fi
NODE_PATH=$dir/node_modules node -e 'require("onnxruntime-node")' 2>/dev/null ||
    { echo "onnxruntime-node does not load (see build/bench/npm.log)" >&2; exit 1; }
echo "$dir/node_modules"
