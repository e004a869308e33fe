#!/usr/bin/python3
"""TFLite's own integer execution of a quantised .tflite, to compare byte for
byte with tl's int8 engine on the checkpoint `tl-convert --keep-int8` makes.

TFLite is its C library (libtensorflowlite_c.so, TFLite 2.9, from the npm
package tfjs-tflite-node: scripts/tflite-lib.sh), driven through ctypes with
its default CPU kernels on one thread. Its C API only hands out the graph's
outputs, so to read an inner tensor (the logits before SOFTMAX, the pooled
features) this script rewrites the one entry of the subgraph's output list
in a copy of the file; the interpreter then keeps that tensor.

Usage: tflite_int8.py LIB MODEL.tflite PIXELS.f32 TENSOR TL.npy
  PIXELS.f32  the float input tensors tl fed the network (tests/tools/tl-pixels),
              N x 3 x S x S; quantised with the model input's scale and zero
              point (half away from zero, as tl's engine does) for TFLite
  TENSOR      'logits' (the input of SOFTMAX), 'pooled' (the output of the
              global average pooling) or a tensor index
  TL.npy      tl-extract -f npy of the same images and layer: float values
              scale * (q - zero), turned back into bytes with the tensor's
              own scale and zero point
Prints one line per image and a summary; exit 1 when any byte differs.
Run with Debian's /usr/bin/python3 (numpy)."""
import ctypes as C
import os
import struct
import sys
import tempfile

import numpy as np

OP_SOFTMAX, OP_AVERAGE_POOL_2D, OP_MEAN = 25, 1, 40
TYPE_UINT8, TYPE_INT8 = 3, 9


class Table:
    """A flatbuffer table: just what this script reads."""

    def __init__(self, buf, pos):
        self.b, self.p = buf, pos

    def _off(self, i):
        vt = self.p - struct.unpack_from('<i', self.b, self.p)[0]
        vlen = struct.unpack_from('<H', self.b, vt)[0]
        return struct.unpack_from('<H', self.b, vt + 4 + 2 * i)[0] if 4 + 2 * i < vlen else 0

    def scalar(self, i, fmt, default=0):
        o = self._off(i)
        return struct.unpack_from('<' + fmt, self.b, self.p + o)[0] if o else default

    def table(self, i):
        o = self._off(i)
        if not o:
            return None
        q = self.p + o
        return Table(self.b, q + struct.unpack_from('<I', self.b, q)[0])

    def vector(self, i):
        """(position of the first element, length)"""
        o = self._off(i)
        if not o:
            return None, 0
        q = self.p + o
        q += struct.unpack_from('<I', self.b, q)[0]
        return q + 4, struct.unpack_from('<I', self.b, q)[0]

    def tables(self, i):
        start, n = self.vector(i)
        return [Table(self.b, start + 4 * k + struct.unpack_from('<I', self.b, start + 4 * k)[0]) for k in range(n)]

    def array(self, i, dtype):
        start, n = self.vector(i)
        return np.frombuffer(self.b, dtype, n, start) if n else np.zeros(0, dtype)


def read_model(path):
    buf = open(path, 'rb').read()
    model = Table(buf, struct.unpack_from('<I', buf, 0)[0])
    codes = [max(oc.scalar(3, 'i'), oc.scalar(0, 'b')) for oc in model.tables(1)]
    sg = model.tables(2)[0]
    tensors = []
    for t in sg.tables(0):
        q = t.table(4)
        scale = q.array(2, np.float32) if q else np.zeros(0, np.float32)
        zero = q.array(3, np.int64) if q else np.zeros(0, np.int64)
        tensors.append(dict(type=t.scalar(1, 'b'), shape=t.array(0, np.int32).tolist(),
                            scale=float(scale[0]) if len(scale) else None, zero=int(zero[0]) if len(zero) else 0))
    ops = [dict(code=codes[op.scalar(0, 'I')], ins=op.array(1, np.int32).tolist(), outs=op.array(2, np.int32).tolist())
           for op in sg.tables(3)]
    outputs_at, nout = sg.vector(2)
    return buf, tensors, ops, sg.array(1, np.int32).tolist(), outputs_at, nout


def pick_tensor(ops, which):
    if which.isdigit():
        return int(which)
    for op in ops:
        if which == 'logits' and op['code'] == OP_SOFTMAX:
            return op['ins'][0]
        if which == 'pooled' and op['code'] in (OP_AVERAGE_POOL_2D, OP_MEAN):
            return op['outs'][0]
    sys.exit(f'tflite_int8: the model has no {which} tensor')


class TFLite:
    def __init__(self, lib_path):
        lib = C.CDLL(lib_path)
        for f in ('TfLiteModelCreateFromFile', 'TfLiteInterpreterOptionsCreate', 'TfLiteInterpreterCreate',
                  'TfLiteInterpreterGetInputTensor', 'TfLiteInterpreterGetOutputTensor'):
            getattr(lib, f).restype = C.c_void_p
        lib.TfLiteModelCreateFromFile.argtypes = [C.c_char_p]
        lib.TfLiteInterpreterOptionsSetNumThreads.argtypes = [C.c_void_p, C.c_int]
        lib.TfLiteInterpreterCreate.argtypes = [C.c_void_p, C.c_void_p]
        lib.TfLiteInterpreterGetInputTensor.argtypes = [C.c_void_p, C.c_int]
        lib.TfLiteInterpreterGetOutputTensor.argtypes = [C.c_void_p, C.c_int]
        for f in ('TfLiteInterpreterAllocateTensors', 'TfLiteInterpreterInvoke', 'TfLiteInterpreterDelete',
                  'TfLiteInterpreterOptionsDelete', 'TfLiteModelDelete'):
            getattr(lib, f).argtypes = [C.c_void_p]
        lib.TfLiteTensorByteSize.argtypes = [C.c_void_p]
        lib.TfLiteTensorByteSize.restype = C.c_size_t
        lib.TfLiteTensorCopyFromBuffer.argtypes = [C.c_void_p, C.c_void_p, C.c_size_t]
        lib.TfLiteTensorCopyToBuffer.argtypes = [C.c_void_p, C.c_void_p, C.c_size_t]
        lib.TfLiteVersion.restype = C.c_char_p
        self.lib = lib
        self.version = lib.TfLiteVersion().decode()

    def run(self, model_path, inputs):
        lib = self.lib
        model = lib.TfLiteModelCreateFromFile(model_path.encode())
        opts = lib.TfLiteInterpreterOptionsCreate()
        lib.TfLiteInterpreterOptionsSetNumThreads(opts, 1)
        it = lib.TfLiteInterpreterCreate(model, opts)
        if not model or not it or lib.TfLiteInterpreterAllocateTensors(it):
            sys.exit('tflite_int8: TFLite cannot load the model')
        tin, tout = lib.TfLiteInterpreterGetInputTensor(it, 0), lib.TfLiteInterpreterGetOutputTensor(it, 0)
        outs = []
        for x in inputs:
            x = np.ascontiguousarray(x)
            assert lib.TfLiteTensorByteSize(tin) == x.nbytes
            lib.TfLiteTensorCopyFromBuffer(tin, x.ctypes.data, x.nbytes)
            if lib.TfLiteInterpreterInvoke(it):
                sys.exit('tflite_int8: TFLite failed to run')
            y = np.zeros(lib.TfLiteTensorByteSize(tout), np.uint8)
            lib.TfLiteTensorCopyToBuffer(tout, y.ctypes.data, y.nbytes)
            outs.append(y)
        lib.TfLiteInterpreterDelete(it)
        lib.TfLiteInterpreterOptionsDelete(opts)
        lib.TfLiteModelDelete(model)
        return outs


def quantise(x, scale, zero, dtype):
    """tl's engine: round(x / scale) half away from zero, + zero, clamped (float32 arithmetic)."""
    v = x.astype(np.float32) / np.float32(scale)
    v = np.where(v >= 0, np.floor(v + np.float32(0.5)), -np.floor(-v + np.float32(0.5)))
    lo, hi = (0, 255) if dtype == np.uint8 else (-128, 127)
    return np.clip(v + zero, lo, hi).astype(dtype)


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    lib_path, model_path, pixels, which, tl_npy = sys.argv[1:]
    buf, tensors, ops, inputs, outputs_at, nout = read_model(model_path)
    t = pick_tensor(ops, which)
    tin, tt = tensors[inputs[0]], tensors[t]
    if tt['type'] not in (TYPE_UINT8, TYPE_INT8) or tt['scale'] is None:
        sys.exit(f'tflite_int8: tensor {t} is not a quantised 8-bit tensor')
    _, S, _, ch = tin['shape']
    x = np.fromfile(pixels, np.float32).reshape(-1, ch, S, S).transpose(0, 2, 3, 1)
    dtype = np.uint8 if tin['type'] == TYPE_UINT8 else np.int8
    xq = [quantise(im, tin['scale'], tin['zero'], dtype) for im in x]

    # a copy whose graph output is tensor t
    patched = bytearray(buf)
    assert nout >= 1
    struct.pack_into('<i', patched, outputs_at, t)
    fd, tmp = tempfile.mkstemp(suffix='.tflite')
    with os.fdopen(fd, 'wb') as f:
        f.write(patched)
    try:
        tfl = TFLite(lib_path)
        ref = tfl.run(tmp, xq)
    finally:
        os.unlink(tmp)

    shift = 128 if tt['type'] == TYPE_INT8 else 0  # tl carries int8 as uint8 with zero + 128
    ref = np.stack([(r.view(np.int8).astype(np.int32) if shift else r.astype(np.int32)) + shift for r in ref])
    if len(tt['shape']) == 4:  # NHWC -> tl's CHW
        ref = ref.reshape(len(xq), *tt['shape'][1:]).transpose(0, 3, 1, 2).reshape(len(xq), -1)
    mine = np.load(tl_npy).reshape(len(xq), -1)
    q = np.round(mine / np.float32(tt['scale'])).astype(np.int64) + tt['zero'] + shift
    back = (q - tt['zero'] - shift).astype(np.float32) * np.float32(tt['scale'])
    if mine.shape != ref.shape:
        sys.exit(f'tflite_int8: tl gave {mine.shape[1]} values per image, TFLite {ref.shape[1]}')
    if np.abs(back - mine).max() > 1e-6 * max(1.0, np.abs(mine).max()):
        sys.exit('tflite_int8: tl\'s values are not scale x (byte - zero) of this tensor: wrong layer?')
    bad = 0
    for i in range(len(xq)):
        d = q[i] - ref[i]
        n = int(np.count_nonzero(d))
        bad += n
        print(f'image {i}: {n} of {d.size} bytes differ' + (f' (max |diff| {int(np.abs(d).max())})' if n else ''))
    print(f'{os.path.basename(model_path)} tensor {t} ({which}): TFLite {tfl.version}, {len(xq)} images, '
          f'{ref.size} bytes, {bad} differ')
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
