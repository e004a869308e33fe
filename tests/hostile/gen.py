#!/usr/bin/python3
"""Hostile inputs for the resource contract (man tl.7, ROBUSTNESS): each
KIND is the densest file of one reader's worst case, growing linearly with
SCALE (1, 10, 100, ...), so a reader whose work or memory grows faster than
its input shows it. Made at test time, never committed.

    gen.py KIND SCALE OUT

KIND is the reader (tests/tools/tl-parse) and the attack:
  json            [0,0,0,...]: two bytes a value (the old tree took 56)
  json-keys       {"0":0,"1":0,...}: keys to compare (duplicate check)
  st-names        safetensors with many empty tensors (issue 15: 200,000
                  took minutes)
  st-meta         safetensors with many metadata keys
  tlf-classes     a .tlf header with many class names, records using them
  tsv-classes     TSV features: #classes and a record per class (lookups)
  pred-classes    a predictions header with many classes (issue 15: 200,000
                  took minutes), rows naming the last ones
  manifest        path<TAB>label lines
  labels          one class name a line (tl-convert -L)
  runlog          training-log lines
  tflite-ops      a TFLite graph of many operators with distinct op codes
                  (the description compared every pair)
"""
import json, struct, sys, zlib

kind, scale, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def st(header, data=b""):
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + data


def tlf(hdr, rows, dim):
    h = json.dumps(hdr, separators=(",", ":")).encode()
    head = b"TLF1" + struct.pack("<I", len(h)) + h
    b = bytearray(head + struct.pack("<I", zlib.crc32(head)))
    vec = struct.pack("<%df" % dim, *([0.5] * dim))
    for label, path in rows:
        r = b"R" + struct.pack("<iI", label, len(path)) + path + vec
        b += r + struct.pack("<I", zlib.crc32(r))
    e = b"E" + struct.pack("<Q", len(rows))
    return bytes(b + e + struct.pack("<I", zlib.crc32(e)))


def tflite_ops(n):
    """A flatbuffer with n operators, op i using op code i (all ADD-like
    custom codes above the known range), one tensor, one buffer."""
    b = bytearray(b"\0\0\0\0TFL3")

    def pad(a):
        while len(b) % a:
            b.append(0)

    def u32at(pos, v):
        b[pos:pos + 4] = struct.pack("<I", v)

    def table(scalars, refs):
        """scalars: {id: (fmt, value)}; refs: ids of offset fields.
        Returns (table position, {id: slot position})."""
        ids = list(scalars) + list(refs)
        nf = max(ids) + 1 if ids else 0
        pad(2)
        vt = len(b)
        b.extend(bytes(4 + 2 * nf))
        pad(4)
        tp = len(b)
        b.extend(struct.pack("<i", tp - vt))
        slots, lay = {}, {}
        for fid, (fmt, v) in scalars.items():
            lay[fid] = len(b) - tp
            b.extend(struct.pack("<" + fmt, v))
            pad(4)
        for fid in refs:
            pad(4)
            lay[fid] = len(b) - tp
            slots[fid] = len(b)
            b.extend(bytes(4))
        b[vt:vt + 4] = struct.pack("<HH", 4 + 2 * nf, len(b) - tp)
        for fid, o in lay.items():
            b[vt + 4 + 2 * fid:vt + 6 + 2 * fid] = struct.pack("<H", o)
        return tp, slots

    def vec_i32(vals):
        pad(4)
        p = len(b)
        b.extend(struct.pack("<I%di" % len(vals), len(vals), *vals))
        return p

    def refvec(k):
        pad(4)
        p = len(b)
        b.extend(struct.pack("<I", k) + bytes(4 * k))
        return p

    def link(slot, target):
        u32at(slot, target - slot)

    model, ms = table({0: ("I", 3)}, [1, 2, 4])
    u32at(0, model)
    cv = refvec(n)
    link(ms[1], cv)
    for i in range(n):
        t, _ = table({0: ("b", 127), 2: ("i", 1), 3: ("i", 200 + i)}, [])
        link(cv + 4 + 4 * i, t)
    sgv = refvec(1)
    link(ms[2], sgv)
    sg, ss = table({}, [0, 1, 2, 3])
    link(sgv + 4, sg)
    link(ss[1], vec_i32([0]))
    link(ss[2], vec_i32([0]))
    tv = refvec(1)
    link(ss[0], tv)
    t, ts = table({1: ("b", 0), 2: ("I", 0)}, [0])
    link(tv + 4, t)
    link(ts[0], vec_i32([1]))
    ov = refvec(n)
    link(ss[3], ov)
    for i in range(n):
        o, os_ = table({0: ("I", i)}, [1, 2])
        link(ov + 4 + 4 * i, o)
        link(os_[1], vec_i32([0]))
        link(os_[2], vec_i32([0]))
    bv = refvec(1)
    link(ms[4], bv)
    e, _ = table({}, [])
    link(bv + 4, e)
    return bytes(b)


def write(data):
    with open(out, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


if kind == "json":
    write("[" + ",".join(["0"] * (20000 * scale)) + "]")
elif kind == "json-keys":
    write("{" + ",".join('"%d":0' % i for i in range(5000 * scale)) + "}")
elif kind == "st-names":
    write(st({"t%d" % i: {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(2000 * scale)}))
elif kind == "st-meta":
    write(st({"__metadata__": {"k%d" % i: "" for i in range(600 * scale)}}))
elif kind == "tlf-classes":
    k = 2000 * scale
    write(tlf({"dim": 1, "classes": ["c%d" % i for i in range(k)]},
              [(k - 1 - i % 100, b"p") for i in range(k // 10)], 1))
elif kind == "tsv-classes":
    k = 2000 * scale
    lines = ["#dim\t1", "#classes\t" + json.dumps(["c%d" % i for i in range(k)])]
    lines += ["p\tc%d\t0.5" % (k - 1 - i) for i in range(k)]
    write("\n".join(lines) + "\n")
elif kind == "pred-classes":
    k = 2000 * scale
    names = ["c%d" % i for i in range(k)]
    rows = ["x\t%s\t%s\t%s" % (names[-1], names[-2], "\t".join(["1"] + ["0"] * (k - 1))) for _ in range(2)]
    write("#path\ttrue\tpred\t" + "\t".join(names) + "\n" + "\n".join(rows) + "\n")
elif kind == "manifest":
    write("".join("d/%d.jpg\tc%d\n" % (i, i % 1000) for i in range(2000 * scale)))
elif kind == "labels":
    write("".join("class %d\n" % i for i in range(2000 * scale)))
elif kind == "runlog":
    write("".join('{"epoch":%d,"phase":"train","loss":0.5,"accuracy":0.5,"seconds":1}\n' % (i + 1)
                  for i in range(200 * scale)))
elif kind == "tflite-ops":
    write(tflite_ops(200 * scale))
else:
    sys.exit("gen.py: unknown kind " + kind)
