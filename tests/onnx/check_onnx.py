#!/usr/bin/python3
"""ONNX files written by tl-export against the ONNX checker and OpenCV's dnn.

usage: check_onnx.py MANIFEST [--no-opencv]

MANIFEST: one case per line, tab-separated:
  onnx_path  input_path  input_kind  batch  size (N or WxH)  expected_tsv  runtimes
input_kind: f32 (float NCHW, tl's preprocessing done) or u8 (uint8 NHWC
pixels, the graph preprocesses). expected_tsv: tl-extract -f tsv output
(path, label, values) or tl-predict --format eval output (path, true,
pred, probabilities). runtimes: a comma list of peers that must run the
case ("ort", "opencv"); this script runs the checker on every case and
OpenCV where listed.

A case passes when max |peer - tl| <= 1e-4 * max |tl| over all images and
outputs (the parity tests' criterion), and the file passes
onnx.checker.check_model with full_check (shape inference included).
Prints one line per case; exits 1 if any fails.
"""
import sys

import numpy as np
import onnx

TOL = 1e-4


def expected(path):
    rows = []
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        f = line.rstrip("\n").split("\t")
        # tl-predict --format eval: path, true, pred, then probabilities
        first = 3 if path.endswith(".eval.tsv") else 2
        rows.append([float(v) for v in f[first:]])
    return np.array(rows, dtype=np.float64)


def load_input(path, kind, batch, size):
    w, h = size
    if kind == "f32":
        return np.fromfile(path, dtype=np.float32).reshape(batch, 3, h, w)
    return np.fromfile(path, dtype=np.uint8).reshape(batch, h, w, 3)


def compare(name, got, ref):
    got = np.asarray(got, dtype=np.float64).reshape(ref.shape)
    scale = np.abs(ref).max()
    err = np.abs(got - ref).max()
    ok = err <= TOL * scale
    print(f"{name}: max error {err:.3g} of {scale:.3g} ({'ok' if ok else 'FAILED'}, tolerance {TOL:g} relative)")
    return ok


def main():
    use_opencv = "--no-opencv" not in sys.argv
    cv2 = None
    if use_opencv:
        try:
            import cv2  # noqa: F811
        except ImportError:
            print("opencv: python3-opencv not installed: skipping the OpenCV runs")
    failed = 0
    for line in open(sys.argv[1]):
        if not line.strip():
            continue
        onnx_path, inp, kind, batch, size, tsv, peers = line.rstrip("\n").split("\t")
        # size: N (square) or WxH
        batch, size = int(batch), tuple(int(v) for v in (size.split("x") if "x" in size else (size, size)))
        try:
            # by path: the C++ checker reads the file itself (no Python copy
            # of a half-gigabyte VGG)
            onnx.checker.check_model(onnx_path, full_check=True)
        except Exception as exc:  # the checker's exception types vary by version
            print(f"{onnx_path}: checker: {str(exc).splitlines()[0]}")
            failed += 1
            continue
        model = onnx.load(onnx_path, load_external_data=False)
        meta = {p.key: p.value for p in model.metadata_props}
        for key in ("tl.input_size", "tl.mean", "tl.std", "tl.output", "tl.preprocessing"):
            if key not in meta:
                print(f"{onnx_path}: metadata_props lacks {key}")
                failed += 1
        if meta.get("tl.output") in ("logits", "probabilities") and "tl.classes" not in meta:
            print(f"{onnx_path}: metadata_props lacks tl.classes")
            failed += 1
        dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        if dims[0] != "batch":
            print(f"{onnx_path}: the batch dimension is {dims[0]!r}, not symbolic")
            failed += 1
        print(f"{onnx_path}: checker ok (IR {model.ir_version}, opset {model.opset_import[0].version}, "
              f"{len(model.graph.node)} nodes, input {dims})")
        del model
        if cv2 is not None and "opencv" in peers.split(","):
            ref = expected(tsv)
            net = cv2.dnn.readNetFromONNX(onnx_path)
            x = load_input(inp, kind, batch, size)
            if kind == "u8":
                x = x.astype(np.float32)  # OpenCV's blobs are float; the graph's Cast is then a no-op
            # One image at a time: OpenCV 4.6 mis-sizes squeeze-excitation
            # products at batch > 1 (ONNX Runtime runs the batch).
            got = []
            for i in range(batch):
                net.setInput(x[i:i + 1])
                got.append(net.forward().reshape(-1))
            if not compare(f"{onnx_path}: opencv", np.stack(got), ref):
                failed += 1
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
