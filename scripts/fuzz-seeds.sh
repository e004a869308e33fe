#!/bin/sh
# Seed corpora for the fuzz targets in tests/fuzz: small valid inputs of
# every format, so the fuzzers start past the magic numbers. Images come
# from PIL (Debian's /usr/bin/python3), safetensors/.tlf/.npy are written
# here following man/tl-formats.5, text formats are written out below, and
# the TFLite seed is a real model from the shared data when it is there
# (copied into the build folder at run time, never into the repository).
# Usage: scripts/fuzz-seeds.sh OUTDIR   (creates OUTDIR/<target>/...)
set -eu
out=${1:?usage: fuzz-seeds.sh OUTDIR}
here=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
mkdir -p "$out"/image "$out"/json "$out"/safetensors "$out"/features "$out"/manifest \
         "$out"/augspec "$out"/tflite "$out"/runlog "$out"/predictions

# ---- text formats ----
w() { printf '%b' "$2" > "$out/$1"; }
w json/obj '{"a":1,"b":[true,false,null],"c":{"d":"e"}}'
w json/num '[0,-1,1.5e10,-0.25E-3,123456789012345678901234567890]'
w json/str '["plain","esc \\" \\\\ \\/ \\b \\f \\n \\r \\t","\\u00e9\\u4e2d\\ud83d\\ude00","\\ud800x"]'
w json/nested '[[[[{"a":[{"b":{}}]}]]]]'
w json/st '{"__metadata__":{"tl.arch":"resnet18","tl.mean":"[0.485,0.456,0.406]"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}'
w json/floats '[0.5, 0.25, 1]'
w json/strings '["ants", "bees", "caf\\u00e9"]'
w json/dupkey '{"a":{"k":1,"j":2},"b":{"k":[1,{"x":null}]},"k":"\\u0061"}'
w manifest/plain 'a/1.jpg\tants\na/2.jpg\tbees\n# comment\n\n/abs/3.png\tants\nb/4.jpg\n'
w manifest/crlf 'x.jpg\tc1\r\ny.jpg\tc2\textra\r\n'
w manifest/nolabel 'one.jpg\ntwo.jpg\n'
for s in 'natural' 'medical' 'aerial' 'document' 'low-quality' \
         'rrc(scale=0.08:1,ratio=0.75:1.333333,size=16),hflip(p=0.5),vflip(p=0.1)' \
         'rot(deg=15,fill=reflect),rot90(k=0:3),translate(x=0.1,y=0.2,fill=edge)' \
         'jitter(b=0.4,c=0.4,s=0.4,h=0.1),grey(p=0.2),noise(sigma=0.01:0.05)' \
         'blur(sigma=0.1:2,k=5),jpeg(q=30:90),erase(scale=0.02:0.33,ratio=0.3:3.3,value=random)' \
         'resize(size=20),crop(size=16),shift(x=0.1),gray,cutout(p=1),colorjitter(b=0.1)' \
         'natural,noise(sigma=0.02),rotate(deg=-5:5,value=128)'; do
    n=$((${n:-0} + 1))
    printf '%s' "$s" > "$out/augspec/spec$n"
done
w predictions/header '#path\ttrue\tpred\tants\tbees\na.jpg\tants\tants\t0.9\t0.1\nb.jpg\t-\t\t0.25\t0.75\n'
w predictions/decision '#path\ttrue\tpred:decision\ta\tb\tc\nx\tb\tc\t-1.5\t2\t3e2\r\n'
w predictions/indices 'x.jpg\t0\t1\t0.5\t0.5\ny.jpg\t1\t-\t0\t1\n'
w predictions/names 'x.jpg\tbees\tants\t0.2\t0.7\t0.1\n'
w runlog/fit '{"epoch":1,"phase":"train","loss":0.69,"accuracy":0.5,"lr":0.01,"seconds":1.5,"images_per_s":100}\n{"epoch":1,"phase":"val","loss":0.6,"accuracy":0.6}\n'
w runlog/extract '{"images":244,"seconds":3.2,"images_per_s":76.2}\n'
w runlog/versioned '{"phase":"extract","format":1,"data":"d/train","images":4,"seconds":0.5}\n{"phase":"start","format":1,"run":"r","init":"features","val_images":2}\n{"epoch":1,"phase":"val","loss":0.5,"accuracy":1}\n{"phase":"best","epoch":1,"loss":0.5,"accuracy":1,"epochs_run":1,"stopped_early":false}\n'

# ---- binary formats and images ----
"$py" - "$out" <<'PY'
import io, json, struct, sys, zipfile, zlib
out = sys.argv[1]

def save(name, data):
    with open(f"{out}/{name}", "wb") as f:
        f.write(data)

# safetensors: u64le header length, JSON header, raw little-endian data
def st(tensors, meta=None):
    hdr, blob = {}, b""
    if meta:
        hdr["__metadata__"] = meta
    for name, dt, shape, raw in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-(len(h) + 8) % 8)
    return struct.pack("<Q", len(h)) + h + blob

f32 = lambda *v: struct.pack(f"<{len(v)}f", *v)
save("safetensors/f32", st([("fc.weight", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6)),
                            ("fc.bias", "F32", [2], f32(0.5, -0.5))],
                           {"tl.arch": "resnet18", "tl.num_classes": "2", "tl.classes": '["ants","bees"]',
                            "tl.input_size": "224", "tl.resize_size": "256",
                            "tl.mean": "[0.485,0.456,0.406]", "tl.std": "[0.229,0.224,0.225]",
                            "tl.channel_order": "BGR", "tl.interpolation": "bicubic", "tl.format": "1"}))
save("safetensors/dtypes", st([("h", "F16", [2], struct.pack("<2H", 0x3C00, 0x0001)),
                               ("b", "BF16", [2], struct.pack("<2H", 0x3F80, 0x7FC0)),
                               ("d", "F64", [1], struct.pack("<d", 2.5)),
                               ("i", "I64", [1], struct.pack("<q", -7)),
                               ("u", "U8", [3], b"\x01\x02\x03"), ("t", "BOOL", [1], b"\x01"),
                               ("s", "F32", [], f32(3)), ("e", "F32", [0, 4], b"")]))
save("safetensors/empty", st([]))

# .tlf: "TLF1" u32 len, JSON, crc; records 'R' i32 label u32 plen path f32[dim] crc; 'E' u64 n crc
def tlf(dim, classes, rows, **extra):
    h = json.dumps({"dim": dim, "dtype": "f32", "classes": classes, "model": "m", "layer": "pool", **extra}).encode()
    head = b"TLF1" + struct.pack("<I", len(h)) + h
    b = head + struct.pack("<I", zlib.crc32(head))
    for label, path, vec in rows:
        r = b"R" + struct.pack("<iI", label, len(path)) + path + f32(*vec)
        b += r + struct.pack("<I", zlib.crc32(r))
    e = b"E" + struct.pack("<Q", len(rows))
    return b + e + struct.pack("<I", zlib.crc32(e))

save("features/tlf", tlf(3, ["ants", "bees"], [(0, b"a/1.jpg", (1, 2, 3)), (1, b"b/2.jpg", (0.5, 0, -1)),
                                               (-1, b"c.jpg", (9, 9, 9))]))
save("features/tlf_empty", tlf(1, [], []))
# several streams in one file (cat a.tlf b.tlf), then one with trailing bytes
two = tlf(3, ["ants", "bees"], [(0, b"a/1.jpg", (1, 2, 3))])
save("features/tlf_two", two + tlf(3, ["ants", "bees"], [(1, b"b/2.jpg", (4, 5, 6))]))
save("features/tlf_tail", two + b"TLF")
save("features/tsv", b"#dim\t3\n#classes\t[\"ants\",\"bees\"]\n#model\tm\n#layer\tpool\n"
                     b"a/1.jpg\tants\t1\t2\t3\nb/2.jpg\tbees\t0.5\t0\t-1e-3\n")
save("features/tsv_two", b"#tl-features\t1\n#dim\t2\nx\t\t1\t2\n#tl-features\t1\n#dim\t2\ny\t\t3\t4\n")
save("features/tsv_names", b"x.jpg\tcat\t1\t2\ny.jpg\tdog\t3\t4\r\nz.jpg\t\t5\t6\n")
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
hdr += " " * (-(len(hdr) + 11) % 64) + "\n"
npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + f32(1, 2, 3, 4, 5, 6)
save("features/npy", npy)
save("features/npy_two", npy + npy)
# NPZ (numpy.savez layout: one .npy per member), stored and deflated, and
# two archives one after the other (cat of NPZ shards)
def npy_arr(descr, shape, raw):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    h += " " * (-(len(h) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + raw
def ustr(*v):
    w = max(len(x) for x in v) or 1
    return "<U%d" % w, b"".join(x.encode("utf-32-le").ljust(4 * w, b"\0") for x in v)
def npz(deflate, shard=None):
    hd = {"version": 1, "dim": 3, "dtype": "f32", "classes": ["ants", "bees"], "model": "m", "layer": "pool"}
    if shard:
        hd["shard"] = shard
    hdr_d, hdr_raw = ustr(json.dumps(hd))
    pd, praw = ustr("a/1.jpg", "b/2.jpg")
    cd, craw = ustr("ants", "bees")
    members = [("features", npy_arr("<f4", "(2, 3)", f32(1, 2, 3, 4, 5, 6))),
               ("labels", npy_arr("<i8", "(2,)", struct.pack("<2q", 0, 1))),
               ("paths", npy_arr(pd, "(2,)", praw)), ("classes", npy_arr(cd, "(2,)", craw)),
               ("model", npy_arr("<U1", "()", "m".encode("utf-32-le"))),
               ("layer", npy_arr("<U4", "()", "pool".encode("utf-32-le"))),
               ("header", npy_arr(hdr_d, "()", hdr_raw))]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(name + ".npy", data)
    return buf.getvalue()
save("features/npz", npz(False))
save("features/npz_deflated", npz(True))
save("features/npz_shards", npz(False, "1/2") + npz(True, "2/2"))
save("features/tlf_shards", tlf(3, ["ants", "bees"], [(0, b"a/1.jpg", (1, 2, 3))], shard="1/2")
                            + tlf(3, ["ants", "bees"], [(1, b"b/2.jpg", (4, 5, 6))], shard="2/2"))

# images: every format and mode the decoders handle, a few pixels each
try:
    from PIL import Image
except ImportError:
    sys.exit(0)
base = Image.new("RGB", (7, 5))
base.putdata([(x * 36, y * 60, (x * y * 13) % 256) for y in range(5) for x in range(7)])
def img(name, im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    save(f"image/{name}", b.getvalue())
img("rgb.png", base, "PNG")
img("grey.png", base.convert("L"), "PNG")
img("la.png", base.convert("LA"), "PNG")
img("rgba.png", base.convert("RGBA"), "PNG")
img("pal.png", base.convert("P"), "PNG")
img("bit.png", base.convert("1"), "PNG")
img("i16.png", base.convert("I").point(lambda v: v * 200).convert("I;16"), "PNG")
img("base.jpg", base, "JPEG", quality=80)
img("prog.jpg", base, "JPEG", quality=80, progressive=True)
img("grey.jpg", base.convert("L"), "JPEG")
img("cmyk.jpg", base.convert("CMYK"), "JPEG")
img("sub.jpg", Image.new("RGB", (17, 9), (200, 10, 30)), "JPEG", subsampling=2)
img("rgb.bmp", base, "BMP")
img("pal.bmp", base.convert("P"), "BMP")
img("bit.bmp", base.convert("1"), "BMP")
img("rgba.bmp", base.convert("RGBA"), "BMP")
img("rgb.ppm", base, "PPM")
img("grey.pgm", base.convert("L"), "PPM")
img("bit.pbm", base.convert("1"), "PPM")
save("image/ascii.ppm", b"P3\n# c\n2 2\n255\n255 0 0  0 255 0\n0 0 255  9 9 9\n")
save("image/ascii.pgm", b"P2\n3 1\n15\n0 7 15\n")
save("image/ascii.pbm", b"P1\n3 2\n1 0 1\n0 1 0\n")
save("image/wide.pgm", b"P5\n2 1\n65535\n\x12\x34\xff\xff")
PY

# ---- TFLite: the smallest real model, when the shared data is there ----
shared=${TL_DATA:-$here/../shared}
model=$shared/models/tflite/mobilenet_v1_0.25_128_quant.tflite
[ -f "$model" ] && cp "$model" "$out/tflite/mobilenet_v1_0.25_128_quant.tflite"
# Small models for fast iterations: every op and options table the parser
# reads, with uint8, int8 per-channel and float tensors (schema.fbs field
# ids; written front to back, children after the slot that points at them).
"$py" - "$out" <<'PY'
import struct, sys
out = sys.argv[1]
SC = {"u8": "<B", "i8": "<b", "i32": "<i", "u32": "<I", "u64": "<Q", "f32": "<f"}

class W:
    def __init__(s): s.b = bytearray(b"\0\0\0\0TFL3")
    def pad(s, a, rem=0):
        while len(s.b) % a != rem: s.b.append(0)
    def u32at(s, pos, v): s.b[pos:pos + 4] = struct.pack("<I", v)
    def table(s, fields):  # fields: (id, kind, value)
        nf = max([f[0] for f in fields] + [-1]) + 1
        lay, off = {}, 4
        for fid, kind, v in sorted(fields, key=lambda f: -struct.calcsize(SC.get(f[1], "<I"))):
            size = struct.calcsize(SC.get(kind, "<I"))
            off += -off % size
            lay[fid] = off
            off += size
        tsize = off + (-off % 4)
        s.pad(2)
        vt = len(s.b)
        s.b += struct.pack("<HH", 4 + 2 * nf, tsize) + b"".join(struct.pack("<H", lay.get(i, 0)) for i in range(nf))
        s.pad(8)
        tp = len(s.b)
        s.b += struct.pack("<i", tp - vt) + bytes(tsize - 4)
        kids = []
        for fid, kind, v in fields:
            if kind in SC: s.b[tp + lay[fid]:tp + lay[fid] + struct.calcsize(SC[kind])] = struct.pack(SC[kind], v)
            else: kids.append((tp + lay[fid], kind, v))
        for slot, kind, v in kids:
            s.u32at(slot, s.child(kind, v) - slot)
        return tp
    def child(s, kind, v):
        if kind == "table": return s.table(v)
        if kind == "str":
            s.pad(4); p = len(s.b); s.b += struct.pack("<I", len(v)) + v.encode() + b"\0"; return p
        if kind == "tables":
            s.pad(4); p = len(s.b); s.b += struct.pack("<I", len(v)) + bytes(4 * len(v))
            for i, t in enumerate(v):
                slot = p + 4 + 4 * i
                s.u32at(slot, s.table(t) - slot)
            return p
        fmt = {"vi32": "i", "vf32": "f", "vi64": "q", "vu8": "B"}[kind]
        es = struct.calcsize(fmt)
        s.pad(max(es, 4), 4 if es == 8 else 0)
        p = len(s.b); s.b += struct.pack("<I", len(v)) + struct.pack(f"<{len(v)}{fmt}", *v); return p
    def finish(s, root):
        tp = s.table(root); s.u32at(0, tp); return bytes(s.b)

def tensor(shape, ttype, buf, name, scale=None, zp=None, qdim=None):
    f = [(0, "vi32", shape), (1, "i8", ttype), (2, "u32", buf), (3, "str", name)]
    if scale is not None:
        q = [(2, "vf32", scale), (3, "vi64", zp)] + ([(6, "i32", qdim)] if qdim is not None else [])
        f.append((4, "table", q))
    return f

def op(idx, ins, outs, otype=0, opts=None):
    f = [(0, "u32", idx), (1, "vi32", ins), (2, "vi32", outs)]
    if otype: f += [(3, "u8", otype), (4, "table", opts)]
    return f

def model(ttype, quant):
    U8, I32, F32 = ttype, 2, 0
    q = (lambda c: dict(scale=[0.02] * c, zp=[128] * c)) if quant else (lambda c: {})
    wb = (lambda n: struct.pack(f"<{n}f", *[(i % 7 - 3) / 8 for i in range(n)])) if ttype == 0 else \
         (lambda n: bytes(i * 37 % 256 for i in range(n)))
    ib = lambda *v: struct.pack(f"<{len(v)}i", *v)
    bufs = [b"", b"", wb(8 * 3 * 3 * 3), ib(*range(8)), ib(0, 0, 1, 1, 1, 1, 0, 0), ib(1, 2), wb(72), wb(80)]
    codes = [3, 4, 34, 40, 9, 22, 25, 0, 1, 114, 6]  # CONV_2D DEPTHWISE PAD MEAN FC RESHAPE SOFTMAX ADD AVGPOOL QUANTIZE DEQUANTIZE
    T = [tensor([1, 8, 8, 3], U8, 0, "input", **q(1)),
         tensor([8, 3, 3, 3], U8, 2, "conv/w", **(dict(scale=[0.01] * 8, zp=[0] * 8, qdim=0) if quant else {})),
         tensor([8], I32, 3, "conv/b"),
         tensor([1, 4, 4, 8], U8, 1, "conv/out", **q(1)),
         tensor([1, 3, 3, 8], U8, 6, "dw/w", **q(1)),
         tensor([1, 4, 4, 8], U8, 1, "dw/out", **q(1)),
         tensor([4, 2], I32, 4, "pad/p"),
         tensor([1, 6, 6, 8], U8, 1, "pad/out", **q(1)),
         tensor([2], I32, 5, "mean/axes"),
         tensor([1, 8], U8, 1, "mean/out", **q(1)),
         tensor([10, 8], U8, 7, "fc/w", **q(1)),
         tensor([1, 10], U8, 1, "fc/out", **q(1)),
         tensor([1, 10], U8, 1, "softmax", **q(1)),
         tensor([1, 1, 1, 8], U8, 1, "pool/out", **q(1)),
         tensor([1, 4, 4, 8], U8, 1, "add/out", **q(1))]
    ops = [op(0, [0, 1, 2], [3], 1, [(0, "i8", 0), (1, "i32", 2), (2, "i32", 2), (3, "i8", 3)]),
           op(1, [3, 4, -1], [5], 2, [(0, "i8", 0), (1, "i32", 1), (2, "i32", 1), (3, "i32", 1), (4, "i8", 3)]),
           op(7, [3, 5], [14], 11, [(0, "i8", 0)]),
           op(2, [14, 6], [7]),
           op(8, [5], [13], 5, [(0, "i8", 1), (1, "i32", 1), (2, "i32", 1), (3, "i32", 4), (4, "i32", 4)]),
           op(3, [5, 8], [9], 27, [(0, "u8", 0)]),
           op(4, [9, 10, -1], [11], 8, [(0, "i8", 0), (1, "i8", 0)]),
           op(5, [11], [12], 17, []),
           op(6, [12], [12], 9, [(0, "f32", 1.0)])]
    sg = [(0, "tables", T), (1, "vi32", [0]), (2, "vi32", [12]), (3, "tables", ops)]
    return W().finish([(0, "u32", 3), (1, "tables", [[(0, "i8", c), (3, "i32", c)] for c in codes]),
                       (2, "tables", [sg]), (4, "tables", [[(0, "vu8", list(b))] if b else [] for b in bufs])])

for name, tt, qz in (("mini_u8", 3, True), ("mini_i8", 9, True), ("mini_f32", 0, False)):
    with open(f"{out}/tflite/{name}.tflite", "wb") as f:
        f.write(model(tt, qz))
PY
echo "fuzz-seeds: seeds in $out" >&2
