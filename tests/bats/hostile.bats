#!/usr/bin/env bats
# Hostile inputs at the command line (issue 8, item 2): every bad file is
# made here, each must give exit 1 and one line naming the file and what is
# wrong, within small memory, never a crash. The parsers' every-byte and
# every-bit checks are in the unit tests (test_safetensors, test_tflite,
# test_features, test_image); this file checks what users see.
# Needs /usr/bin/python3 with PIL for most fixtures; the TFLite cases need
# ../shared.

load helpers

PY=/usr/bin/python3
need_py() { [ -x $PY ] || skip "no /usr/bin/python3"; }
need_pil() { $PY -c 'import PIL, numpy' 2>/dev/null || skip "no PIL/numpy for /usr/bin/python3"; }
F() { printf '%s/%s' "$BATS_FILE_TMPDIR" "$1"; }

# one_line_error STATUS PREFIX REGEX: the last `run` failed with STATUS and
# printed one line starting with PREFIX and matching REGEX.
one_line_error() {
    assert_equal "$status" "$1"
    assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 1
    [[ $stderr == "$2"* ]] || fail "does not start with '$2': $stderr"
    [[ $stderr =~ $3 ]] || fail "does not match /$3/: $stderr"
}

# limited SECONDS MIB TOOL ARGS...: tl-TOOL with at most MIB of address space
# (ulimit -v) and killed after SECONDS, so a regression to unbounded reading
# or quadratic work fails instead of hanging or swapping the machine. Under
# the sanitizers (whose shadow memory needs terabytes of address space)
# only the time limit applies, five times longer.
limited() {
    local secs=$1 mib=$2 tool=$3
    shift 3
    if [ -n "${TL_SANITIZE:-}" ]; then
        timeout $((secs * 5)) "$TL_BIN/tl-$tool" "$@"
    else
        (ulimit -v $((mib * 1024)) && exec timeout "$secs" "$TL_BIN/tl-$tool" "$@")
    fi
}

# peak_kb CMD...: runs CMD (status ignored), prints its peak RSS in kB.
peak_kb() {
    [ -x /usr/bin/time ] || { echo 0; return; }
    /usr/bin/time -f '%M' -o "$BATS_TEST_TMPDIR/rss" "$@" >/dev/null 2>&1 || true
    tail -n 1 "$BATS_TEST_TMPDIR/rss"
}

setup_file() {
    local d=$BATS_FILE_TMPDIR
    mkdir -p "$d/data/red" "$d/data/blue"
    for i in 1 2 3 4; do
        ppm "$d/data/red/$i.ppm" 40 30 $((200 + i)) 20 30
        ppm "$d/data/blue/$i.ppm" 40 30 20 30 $((200 + i))
    done
    tl finetune -q --scratch --arch small_cnn --input-size 32 "$d/data" --val-split 0 --epochs 1 --batch 4 -j 1 \
        -o "$d/net.safetensors"
}

# ---------------- safetensors ----------------

@test "safetensors: huge header length, offsets out of range or overlapping, wrong byte count, duplicates, non-UTF-8" {
    need_py
    local d=$BATS_TEST_TMPDIR
    $PY - "$d" <<'PY'
import json, struct, sys
d = sys.argv[1]
def st(name, header, data=b'', hlen=None):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    open(d + '/' + name, 'wb').write(struct.pack('<Q', len(h) if hlen is None else hlen) + h + data)
st('hugehdr.safetensors', b'{}', hlen=(1 << 63) + 5)
st('range.safetensors', {'a': {'dtype': 'F32', 'shape': [4], 'data_offsets': [0, 16]}}, b'\0' * 8)
st('overlap.safetensors', {'a': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]},
                           'b': {'dtype': 'F32', 'shape': [2], 'data_offsets': [4, 12]}}, b'\0' * 12)
st('bytes.safetensors', {'a': {'dtype': 'F32', 'shape': [3], 'data_offsets': [0, 8]}}, b'\0' * 8)
st('dup.safetensors', b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                      b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b'\0' * 8)
st('utf8.safetensors', b'{"\xff\xfeweight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b'\0' * 4)
PY
    local f want rss
    while read -r f want; do
        for tool in info predict; do
            if [ $tool = info ]; then
                run --separate-stderr tl info "$d/$f"
            else
                run --separate-stderr tl predict -m "$d/$f" "$(F data/red/1.ppm)"
            fi
            one_line_error 1 "tl-$tool: $d/$f: " "$want"
        done
        rss=$(peak_kb "$TL_BIN/tl-info" "$d/$f")
        [ "$rss" -lt 65536 ] || fail "$f: peak RSS $rss kB"
    done <<'EOF'
hugehdr.safetensors not a safetensors file \(header length 9223372036854775813, file size 10\)
range.safetensors data_offsets \[0, 16\] outside the 8 data bytes
overlap.safetensors tensors 'a' and 'b' overlap
bytes.safetensors 8 bytes for shape x F32 = 12 bytes
dup.safetensors duplicate key "a"
utf8.safetensors header is not valid UTF-8 \(byte 10\)
EOF
}

@test "a checkpoint cut short by one byte is refused by every tool that loads one" {
    local d=$BATS_TEST_TMPDIR n
    n=$(stat -c %s "$(F net.safetensors)")
    head -c $((n - 1)) "$(F net.safetensors)" >"$d/cut.safetensors"
    run --separate-stderr tl info "$d/cut.safetensors"
    one_line_error 1 "tl-info: $d/cut.safetensors: " 'outside|size|truncated'
    run --separate-stderr tl extract -q -m "$d/cut.safetensors" "$(F data)" -o "$d/x.tlf"
    one_line_error 1 "tl-extract: $d/cut.safetensors: " '.'
    [ ! -e "$d/x.tlf" ]
    run --separate-stderr tl finetune -q -m "$d/cut.safetensors" "$(F data)" -o "$d/x.safetensors"
    one_line_error 1 "tl-finetune: $d/cut.safetensors: " '.'
    [ ! -e "$d/x.safetensors" ]
}

# ---------------- images ----------------

# The same huge claim in every format: 100000 x 100000 (JPEG: 65500 x 65500,
# its largest). Refused before any pixel buffer exists.
make_huge() {
    local d=$1
    printf 'P6\n100000 100000\n255\n' >"$d/huge.ppm"
    head -c 3000 /dev/zero >>"$d/huge.ppm"
    $PY - "$d" <<'PY'
import struct, sys, zlib
d = sys.argv[1]
def chunk(t, b): return struct.pack('>I', len(b)) + t + b + struct.pack('>I', zlib.crc32(t + b))
ihdr = struct.pack('>IIBBBBB', 100000, 100000, 8, 2, 0, 0, 0)
open(d + '/huge.png', 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) +
                                  chunk(b'IDAT', zlib.compress(b'\0' * 3001)) + chunk(b'IEND', b''))
open(d + '/huge.bmp', 'wb').write(b'BM' + struct.pack('<IHHI', 54 + 4000, 0, 0, 54) +
                                  struct.pack('<IiiHHIIiiII', 40, 100000, 100000, 1, 24, 0, 0, 2835, 2835, 0, 0) +
                                  b'\0' * 4000)
# a baseline JPEG header (SOI, DQT, SOF0 65500 x 65500, DHT, SOS) and a little data
q = bytes([1] * 64)
sof = struct.pack('>BHHB', 8, 65500, 65500, 3) + b'\x01\x11\x00\x02\x11\x00\x03\x11\x00'
dht = b'\x00' + bytes([0, 1] + [0] * 14) + b'\x00' + b'\x10' + bytes([0, 1] + [0] * 14) + b'\x00'
sos = b'\x03\x01\x00\x02\x10\x03\x10\x00\x3f\x00'
def seg(m, b): return b'\xff' + bytes([m]) + struct.pack('>H', len(b) + 2) + b
open(d + '/huge.jpg', 'wb').write(b'\xff\xd8' + seg(0xdb, b'\x00' + q) + seg(0xc0, sof) + seg(0xc4, dht) +
                                  seg(0xda, sos) + b'\x00' * 2000 + b'\xff\xd9')
PY
}

@test "images claiming 100000 x 100000 pixels: refused naming the limit and --max-pixels, in small memory" {
    need_py
    local d=$BATS_TEST_TMPDIR f rss
    make_huge "$d"
    for f in huge.ppm huge.png huge.bmp huge.jpg; do
        run --separate-stderr tl predict -m "$(F net.safetensors)" "$d/$f"
        one_line_error 1 "tl-predict: $d/$f: " 'is (100000x100000|65500x65500), above the limit of 100000000 pixels \(--max-pixels\)$'
        rss=$(peak_kb "$TL_BIN/tl-predict" -m "$(F net.safetensors)" "$d/$f")
        [ "$rss" -lt 65536 ] || fail "$f: peak RSS $rss kB"
    done
    # through a list on standard input, with --skip-bad: skipped, the run goes on
    run --separate-stderr bash -c 'printf "%s\n" "$3" "$4" | "$1" -m "$2" --skip-bad -k 1 --no-header -' _ \
        "$TL_BIN/tl-predict" "$(F net.safetensors)" "$d/huge.png" "$(F data/red/1.ppm)"
    assert_success
    assert_equal "${#lines[@]}" 1
    [[ $stderr == *"huge.png"*"above the limit"* ]] || fail "$stderr"
}

@test "--max-pixels in every tool that decodes images" {
    local d=$BATS_TEST_TMPDIR
    # the images are 40 x 30 = 1200 pixels
    run --separate-stderr tl extract -q -m "$(F net.safetensors)" --max-pixels 1199 "$(F data)" -o "$d/f.tlf"
    one_line_error 1 "tl-extract: " 'is 40x30, above the limit of 1199 pixels \(--max-pixels\)$'
    run --separate-stderr tl eval -q -m "$(F net.safetensors)" --max-pixels 1199 "$(F data)"
    one_line_error 1 "tl-eval: " 'above the limit of 1199 pixels'
    run --separate-stderr tl predict -q -m "$(F net.safetensors)" --max-pixels 1199 "$(F data/red/1.ppm)"
    one_line_error 1 "tl-predict: " 'above the limit of 1199 pixels'
    run --separate-stderr tl finetune -q -m "$(F net.safetensors)" --max-pixels 1199 --epochs 1 --batch 4 -j 1 \
        "$(F data)" --val-split 0 -o "$d/ft.safetensors"
    one_line_error 1 "tl-finetune: " 'above the limit of 1199 pixels'
    [ ! -e "$d/ft.safetensors" ]
    run --separate-stderr tl augment -q -n 1 --max-pixels 1199 -o "$d/aug" "$(F data)"
    one_line_error 1 "tl-augment: " 'above the limit of 1199 pixels'
    run --separate-stderr tl adapt-bn -q -m "$(F net.safetensors)" --max-pixels 1199 "$(F data)" -o "$d/bn.safetensors"
    one_line_error 1 "tl-adapt-bn: " 'above the limit of 1199 pixels'
    # at the limit, all pass
    run tl extract -q -m "$(F net.safetensors)" --max-pixels 1200 "$(F data)" -o "$d/f.tlf"
    assert_success
    run tl eval -q -m "$(F net.safetensors)" --max-pixels 1200 "$(F data)"
    assert_success
    run tl predict -q -m "$(F net.safetensors)" --max-pixels 1200 "$(F data/red/1.ppm)"
    assert_success
    run tl finetune -q -m "$(F net.safetensors)" --max-pixels 1200 --epochs 1 --batch 4 -j 1 "$(F data)" \
        --val-split 0 -o "$d/ft.safetensors"
    assert_success
    run tl augment -q -n 1 --max-pixels 1200 -o "$d/aug" "$(F data)"
    assert_success
    run tl adapt-bn -q -m "$(F net.safetensors)" --max-pixels 1200 "$(F data)" -o "$d/bn.safetensors"
    assert_success
    # and a bad value is a usage error
    run --separate-stderr tl eval -m "$(F net.safetensors)" --max-pixels 0 "$(F data)"
    assert_failure 2
}

@test "zero-sized images in every format: exit 1 naming the file and the size" {
    need_py
    local d=$BATS_TEST_TMPDIR f
    printf 'P6\n0 7\n255\n' >"$d/zero.ppm"
    $PY - "$d" <<'PY'
import struct, sys, zlib
d = sys.argv[1]
def chunk(t, b): return struct.pack('>I', len(b)) + t + b + struct.pack('>I', zlib.crc32(t + b))
open(d + '/zero.png', 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 0, 5, 8, 2, 0, 0, 0)) +
                                  chunk(b'IDAT', zlib.compress(b'')) + chunk(b'IEND', b''))
open(d + '/zero.bmp', 'wb').write(b'BM' + struct.pack('<IHHI', 54, 0, 0, 54) +
                                  struct.pack('<IiiHHIIiiII', 40, 0, 0, 1, 24, 0, 0, 2835, 2835, 0, 0))
q = bytes([1] * 64)
def seg(m, b): return b'\xff' + bytes([m]) + struct.pack('>H', len(b) + 2) + b
sof = struct.pack('>BHHB', 8, 8, 0, 1) + b'\x01\x11\x00'
open(d + '/zero.jpg', 'wb').write(b'\xff\xd8' + seg(0xdb, b'\x00' + q) + seg(0xc0, sof) + b'\xff\xd9')
PY
    : >"$d/empty.png"
    for f in zero.ppm zero.png zero.bmp zero.jpg empty.png; do
        run --separate-stderr tl predict -m "$(F net.safetensors)" "$d/$f"
        one_line_error 1 "tl-predict: $d/$f: " 'zero|empty|size|JPEG'
    done
}

# decoded FILE...: each image as our decoder sees it, written as PNG to
# $BATS_TEST_TMPDIR/dec/NAME_aug0.png (an augmentation that never fires).
decoded() {
    mkdir -p "$BATS_TEST_TMPDIR/in"
    cp "$@" "$BATS_TEST_TMPDIR/in/"
    tl augment -q -a 'hflip(p=0)' -n 1 --size 0 -o "$BATS_TEST_TMPDIR/dec" "$BATS_TEST_TMPDIR/in"
}

@test "CMYK and greyscale JPEGs, 16-bit and interlaced PNGs decode as PIL decodes them" {
    need_pil
    local d=$BATS_TEST_TMPDIR
    $PY - "$d" <<'PY'
import struct, sys, zlib
import numpy as np
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(5)
rgb = np.zeros((29, 41, 3), np.uint8)
rgb[..., 0] = np.arange(41)[None, :] * 6
rgb[..., 1] = np.arange(29)[:, None] * 8
rgb[..., 2] = rng.integers(0, 256, (29, 41))
Image.fromarray(rgb).convert('CMYK').save(d + '/cmyk.jpg', quality=95)
Image.fromarray(rgb).convert('L').save(d + '/grey.jpg', quality=90)
def chunk(t, b): return struct.pack('>I', len(b)) + t + b + struct.pack('>I', zlib.crc32(t + b))
def png(name, w, h, depth, ctype, rows_of, interlace):
    raw = b''
    if interlace:  # Adam7: (x0, y0, dx, dy) per pass
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
            if x0 >= w or y0 >= h:
                continue
            for y in range(y0, h, dy):
                raw += b'\0' + rows_of(y, x0, dx)
    else:
        for y in range(h):
            raw += b'\0' + rows_of(y, 0, 1)
    ihdr = struct.pack('>IIBBBBB', w, h, depth, ctype, 0, 0, 1 if interlace else 0)
    open(d + '/' + name, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(raw)) +
                                     chunk(b'IEND', b''))
rgb16 = (rgb.astype(np.uint16) * 257 + rng.integers(0, 256, rgb.shape).astype(np.uint16) % 200)
png('rgb16.png', 41, 29, 16, 2, lambda y, x0, dx: rgb16[y, x0::dx].astype('>u2').tobytes(), False)
png('interlaced.png', 41, 29, 8, 2, lambda y, x0, dx: rgb[y, x0::dx].tobytes(), True)
png('interlaced16.png', 41, 29, 16, 2, lambda y, x0, dx: rgb16[y, x0::dx].astype('>u2').tobytes(), True)
PY
    decoded "$d/cmyk.jpg" "$d/grey.jpg" "$d/rgb16.png" "$d/interlaced.png" "$d/interlaced16.png"
    run $PY - "$d" <<'PY'
import sys
import numpy as np
from PIL import Image
d = sys.argv[1]
for name in ['cmyk.jpg', 'grey.jpg', 'rgb16.png', 'interlaced.png', 'interlaced16.png']:
    ref = np.asarray(Image.open(d + '/' + name).convert('RGB')).astype(int)
    got = np.asarray(Image.open(d + '/dec/' + name.rsplit('.', 1)[0] + '_aug0.png').convert('RGB')).astype(int)
    assert ref.shape == got.shape, (name, ref.shape, got.shape)
    print(name, int(np.abs(ref - got).max()))
PY
    assert_success
    assert_output "cmyk.jpg 0
grey.jpg 0
rgb16.png 0
interlaced.png 0
interlaced16.png 0"
}

@test "EXIF orientation: all 8 as PIL's exif_transpose, big-endian EXIF too, malformed EXIF ignored" {
    need_pil
    local d=$BATS_TEST_TMPDIR
    $PY - "$d" <<'PY'
import struct, sys
import numpy as np
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(1)
a = np.zeros((23, 37, 3), np.uint8)
a[..., 0] = np.arange(37)[None, :] * 6
a[..., 1] = np.arange(23)[:, None] * 10
a[..., 2] = rng.integers(0, 256, (23, 37))
im = Image.fromarray(a)
for o in range(1, 9):
    ex = Image.Exif()
    ex[0x0112] = o
    im.save('%s/o%d.jpg' % (d, o), quality=95, exif=ex.tobytes())
def with_app1(name, payload):
    src = open(d + '/o1.jpg', 'rb').read()
    seg = b'\xff\xe1' + struct.pack('>H', len(payload) + 2) + payload
    open(d + '/' + name, 'wb').write(src[:2] + seg + src[2:])
# big-endian TIFF header, one entry: orientation 6 (SHORT, count 1)
be = b'Exif\0\0MM\0*' + struct.pack('>I', 8) + struct.pack('>H', 1) + struct.pack('>HHIHH', 0x0112, 3, 1, 6, 0) + b'\0' * 4
with_app1('be6.jpg', be)
# malformed: IFD0 offset past the segment; an entry count running past it
with_app1('badifd.jpg', b'Exif\0\0II*\0' + struct.pack('<I', 0x7fffff00))
with_app1('badcount.jpg', b'Exif\0\0II*\0' + struct.pack('<I', 8) + struct.pack('<H', 5000) +
          struct.pack('<HHIHH', 0x0112, 3, 1, 6, 0))
with_app1('short.jpg', b'Exif\0\0II')
PY
    decoded "$d"/o?.jpg "$d/be6.jpg" "$d/badifd.jpg" "$d/badcount.jpg" "$d/short.jpg"
    run $PY - "$d" <<'PY'
import sys
import numpy as np
from PIL import Image, ImageOps
d = sys.argv[1]
got = lambda n: np.asarray(Image.open('%s/dec/%s_aug0.png' % (d, n)).convert('RGB')).astype(int)
plain = np.asarray(Image.open(d + '/o1.jpg').convert('RGB')).astype(int)
for o in range(1, 9):
    ref = np.asarray(ImageOps.exif_transpose(Image.open('%s/o%d.jpg' % (d, o))).convert('RGB')).astype(int)
    g = got('o%d' % o)
    print(o, g.shape[:2], 'same' if g.shape == ref.shape and (g == ref).all() else 'DIFFERENT')
six = np.asarray(ImageOps.exif_transpose(Image.open(d + '/o6.jpg')).convert('RGB')).astype(int)
print('be6', 'same' if (got('be6') == six).all() else 'DIFFERENT')
for n in ['badifd', 'badcount', 'short']:
    print(n, 'upright' if (got(n) == plain).all() else 'CHANGED')
PY
    assert_success
    assert_output "1 (23, 37) same
2 (23, 37) same
3 (23, 37) same
4 (23, 37) same
5 (37, 23) same
6 (37, 23) same
7 (37, 23) same
8 (37, 23) same
be6 same
badifd upright
badcount upright
short upright"
}

# ---------------- TFLite ----------------

@test "TFLite with a cycle or out-of-range indices: tl-convert exits 1 naming the file, writes nothing" {
    need_shared
    need_py
    local d=$BATS_TEST_TMPDIR m
    # one operator of MobileNetV1 0.25 patched through the flatbuffer's tables
    for m in self later range opcode tensor; do
        $PY "$FIXTURES/tflite_patch.py" "$TL_MODELS/mobilenet_v1_0.25_128_quant.tflite" "$d/$m.tflite" $m
        run --separate-stderr tl convert -q "$d/$m.tflite" -o "$d/$m.safetensors"
        one_line_error 1 "tl-convert: $d/$m.tflite: " 'tflite'
        [ ! -e "$d/$m.safetensors" ] || fail "$m: wrote an output"
    done
    no_files_like "$d" '*.safetensors*'
}

# ---------------- feature streams ----------------

@test "a feature stream cut in the middle or with a flipped bit: exit 1, from a file and through a pipe" {
    local d=$BATS_TEST_TMPDIR n
    tl extract -q -m "$(F net.safetensors)" -j 1 "$(F data)" -o "$d/f.tlf"
    tl finetune -q "$d/f.tlf" -o "$d/head.safetensors"
    n=$(stat -c %s "$d/f.tlf")
    head -c $((n / 2)) "$d/f.tlf" >"$d/cut.tlf"
    cp "$d/f.tlf" "$d/flip.tlf"
    flip_byte "$d/flip.tlf" $((n / 2))
    cp "$d/f.tlf" "$d/flipend.tlf"
    flip_byte "$d/flipend.tlf" $((n - 6))
    run --separate-stderr tl eval -q -m "$d/head.safetensors" "$d/cut.tlf"
    one_line_error 1 "tl-eval: $d/cut.tlf: " 'truncated'
    run --separate-stderr bash -c 'head -c "$1" "$2" | "$3" -q -m "$4" -' _ $((n / 2)) "$d/f.tlf" "$TL_BIN/tl-eval" "$d/head.safetensors"
    one_line_error 1 "tl-eval: " 'truncated'
    run --separate-stderr tl eval -q -m "$d/head.safetensors" "$d/flip.tlf"
    one_line_error 1 "tl-eval: $d/flip.tlf: " 'CRC|corrupt'
    run --separate-stderr bash -c '"$1" -q -m "$2" - <"$3"' _ "$TL_BIN/tl-eval" "$d/head.safetensors" "$d/flipend.tlf"
    one_line_error 1 "tl-eval: " 'CRC|corrupt|count'
    run --separate-stderr tl finetune -q "$d/flip.tlf" -o "$d/h2.safetensors"
    one_line_error 1 "tl-finetune: $d/flip.tlf: " 'CRC|corrupt'
    [ ! -e "$d/h2.safetensors" ]
    run --separate-stderr tl predict -q -m "$d/head.safetensors" "$d/cut.tlf"
    assert_failure 1
    [[ $stderr == *truncated* ]] || fail "$stderr"
}

# ---------------- issue 15: no hang, no amplification, no silent loss ----------------

@test "200,000 safetensors names and 200,000 predictions classes: seconds, not minutes" {
    need_py
    local d=$BATS_TEST_TMPDIR
    $PY "$BATS_TEST_DIRNAME/../hostile/gen.py" st-names 100 "$d/names.safetensors"
    $PY "$BATS_TEST_DIRNAME/../hostile/gen.py" pred-classes 100 "$d/pred.tsv"
    # the header parses (the tool then says what is missing), well within the limits
    run --separate-stderr limited 60 1024 info "$d/names.safetensors"
    one_line_error 1 "tl-info: $d/names.safetensors: " 'no tl.arch'
    run --separate-stderr limited 60 1024 convert --arch resnet18 "$d/names.safetensors" -o "$d/x.safetensors"
    assert_failure 1
    [ ! -e "$d/x.safetensors" ]
    # the predictions header and its rows are read, and the 200,000 classes
    # score (the confusion matrix follows the data above 2,048 classes)
    run --separate-stderr limited 60 1024 eval "$d/pred.tsv"
    assert_success
    [[ $output == *"(predictions, 2 scored)"* ]] || fail "$output"
}

@test "a line with no end: exit 1 naming the input and line, never an empty result" {
    local d=$BATS_TEST_TMPDIR
    # /dev/zero: a NUL at once; 3 MB of 'a' without a newline: the line limit
    for tool in predict eval extract; do
        if [ $tool = extract ]; then
            run --separate-stderr limited 30 1024 $tool -m "$(F net.safetensors)" /dev/zero -o "$d/z.tlf"
        else
            run --separate-stderr limited 30 1024 $tool -m "$(F net.safetensors)" /dev/zero
        fi
        one_line_error 1 "tl-$tool: /dev/zero: " 'line 1: NUL byte'
    done
    [ ! -e "$d/z.tlf" ]
    head -c 3000000 /dev/zero | tr '\0' a >"$d/long.txt"
    # as limited(), for standard input: no address-space limit under the
    # sanitizers, which reserve terabytes of it
    local lim='ulimit -v 1048576;' secs=30
    if [ -n "${TL_SANITIZE:-}" ]; then lim='' secs=150; fi
    run --separate-stderr bash -c "$lim"' exec timeout "$5" "$1" -m "$2" - -o "$3" <"$4"' _ \
        "$TL_BIN/tl-extract" "$(F net.safetensors)" "$d/y.tlf" "$d/long.txt" "$secs"
    one_line_error 1 "tl-extract: standard input: " 'line 1: longer than 1048576 bytes'
    [ ! -e "$d/y.tlf" ]
    printf 'n\tl\t' >"$d/labels.txt"
    cat "$d/long.txt" >>"$d/labels.txt"
    run --separate-stderr limited 30 1024 convert --arch resnet18 -L "$d/long.txt" "$(F net.safetensors)" -o "$d/c.st"
    assert_failure
    [ ! -e "$d/c.st" ]
}

@test "concatenated feature streams: one data set when the headers agree, refused otherwise or after garbage" {
    local d=$BATS_TEST_TMPDIR
    tl extract -q -m "$(F net.safetensors)" -j 1 "$(F data)" -o "$d/a.tlf"
    tl extract -q -m "$(F net.safetensors)" -j 1 "$(F data)" -f tsv -o "$d/a.tsv"
    local one
    run --separate-stderr tl finetune "$d/a.tlf" -o "$d/h1.safetensors"
    one=$(printf '%s\n' "$stderr" | sed -n 's/.*: \([0-9]*\) vectors .*/\1/p')
    [ "${one:-0}" -gt 0 ] || fail "$stderr"
    # the same stream twice: twice the vectors, from a pipe and from a file, TLF and TSV
    run --separate-stderr bash -c 'cat "$1" "$1" | "$2" - -o "$3"' _ "$d/a.tlf" "$TL_BIN/tl-finetune" "$d/h.safetensors"
    assert_success
    [[ $stderr == *": $((2 * one)) vectors"* ]] || fail "$stderr"
    cat "$d/a.tsv" "$d/a.tsv" >"$d/two.tsv"
    run --separate-stderr tl finetune "$d/two.tsv" -o "$d/h2.safetensors"
    assert_success
    [[ $stderr == *": $((2 * one)) vectors"* ]] || fail "$stderr"
    run --separate-stderr tl eval -q -m "$d/h.safetensors" "$d/two.tsv"
    assert_success
    # trailing garbage, a cut second stream, a stream of other classes
    local n
    n=$(stat -c %s "$d/a.tlf")
    { cat "$d/a.tlf"; printf 'garbage'; } >"$d/tail.tlf"
    run --separate-stderr tl finetune "$d/tail.tlf" -o "$d/h3.safetensors"
    one_line_error 1 "tl-finetune: $d/tail.tlf: " "unexpected bytes after the end record at byte $n"
    { cat "$d/a.tlf"; head -c 100 "$d/a.tlf"; } >"$d/cut2.tlf"
    run --separate-stderr tl eval -m "$d/h.safetensors" "$d/cut2.tlf"
    one_line_error 1 "tl-eval: $d/cut2.tlf: " 'truncated'
    mkdir -p "$d/other/green"
    ppm "$d/other/green/1.ppm" 40 30 20 200 30
    tl extract -q -m "$(F net.safetensors)" -j 1 "$d/other" -o "$d/b.tlf"
    run --separate-stderr bash -c 'cat "$1" "$2" | "$3" -q -m "$4" -' _ "$d/a.tlf" "$d/b.tlf" "$TL_BIN/tl-eval" \
        "$d/h.safetensors"
    one_line_error 1 "tl-eval: standard input: " "stream 2 \\(byte $n\\): 1 classes, the first stream has 2"
    [ ! -e "$d/h3.safetensors" ]
}

@test "values that make garbage: non-finite metadata, NaN weights, dim 2.5 or twice, repeated keys, NUL in a name" {
    need_py
    local d=$BATS_TEST_TMPDIR
    tl extract -q -m "$(F net.safetensors)" -j 1 "$(F data)" -o "$d/a.tlf"
    $PY - "$(F net.safetensors)" "$d" <<'PY'
import json, struct, sys
src, d = sys.argv[1], sys.argv[2]
raw = open(src, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
hdr, data = json.loads(raw[8:8 + n]), raw[8 + n:]
def save(name, h, blob=data, text=None):
    t = text if text is not None else json.dumps(h).encode()
    open(f'{d}/{name}', 'wb').write(struct.pack('<Q', len(t)) + t + blob)
# numbered, not named by hash(): Python salts str hashes per process, so two names could collide
for i, (key, val) in enumerate([('tl.mean', '[0.5, Infinity, 0.5]'), ('tl.std', '[0.2, 0.2, 1e-50]'),
                 ('tl.bn_eps', 'inf'), ('tl.dropout', '1.5'), ('tl.dropout', 'nan'), ('tl.width_mult', '1e999')]):
    h = json.loads(json.dumps(hdr)); h['__metadata__'][key] = val
    save(key.replace('.', '_') + '_' + str(i) + '.safetensors', h)
# a NaN in the first float tensor
name = next(k for k, v in hdr.items() if k != '__metadata__' and v['dtype'] == 'F32' and v['shape'])
b = bytearray(data); o = hdr[name]['data_offsets'][0]; b[o:o + 4] = struct.pack('<f', float('nan'))
save('nan.safetensors', hdr, bytes(b))
open(f'{d}/nan_tensor', 'w').write(name)
t = json.dumps(hdr).encode()
# a metadata key twice (we took the first, Python's json the last)
save('dupmeta.safetensors', None, text=t.replace(b'"__metadata__": {', b'"__metadata__": {"tl.arch": "linear", ', 1))
# a NUL inside a tensor name (cut and accepted before)
save('nul.safetensors', None, text=t.replace(('"' + name + '"').encode(), ('"' + name + '\\u0000x"').encode(), 1))
PY
    local f
    for f in "$d"/tl_*.safetensors; do
        run --separate-stderr tl predict -m "$f" "$(F data/red/1.ppm)"
        one_line_error 1 "tl-predict: $f: metadata tl." 'finite|outside|positive|too small|list of 3 numbers'
    done
    [ "$(ls "$d"/tl_*.safetensors | wc -l)" -eq 6 ]
    run --separate-stderr tl predict -m "$d/nan.safetensors" "$(F data/red/1.ppm)"
    one_line_error 1 "tl-predict: $d/nan.safetensors: " "tensor '$(cat "$d/nan_tensor")': value 0 of [0-9]+ is not finite"
    run --separate-stderr tl info "$d/dupmeta.safetensors"
    one_line_error 1 "tl-info: $d/dupmeta.safetensors: " 'duplicate key "tl.arch"'
    run --separate-stderr tl info "$d/nul.safetensors"
    one_line_error 1 "tl-info: $d/nul.safetensors: " 'u0000 in an object key'
    # feature headers: dim 2.5, dim twice; a NaN feature at prediction time
    printf '#dim\t2.5\nx\t\t1\t2\n' >"$d/f1.tsv"
    printf '#dim\t2\n#dim\t2\nx\t\t1\t2\n' >"$d/f2.tsv"
    tl finetune -q "$d/a.tlf" -o "$d/head.safetensors"
    local dim
    dim=$(tl info "$d/head.safetensors" | sed -n 's/.*takes \([0-9]*\) .*/\1/p')
    for f in f1 f2; do
        run --separate-stderr tl predict -m "$d/head.safetensors" "$d/$f.tsv"
        one_line_error 1 "tl-predict: " '#dim'
    done
    tl extract -q -m "$(F net.safetensors)" -j 1 "$(F data)" -f tsv -o "$d/a.tsv"
    awk -F'\t' 'BEGIN{OFS="\t"} /^#/ {print; next} NR == 7 {$4 = "nan"} {print}' "$d/a.tsv" >"$d/nan.tsv"
    run --separate-stderr tl predict -m "$d/head.safetensors" "$d/nan.tsv"
    one_line_error 1 "tl-predict: $d/nan.tsv: " 'column 4 \(.nan.*\) is not a finite number'
}

@test "an image stream claiming 100000 x 100000 is refused at its header, not after reading a gigabyte" {
    local d=$BATS_TEST_TMPDIR
    mkfifo "$d/big.ppm"
    # the writer would go on for 2 GB; the reader must stop it at the header
    (printf 'P6\n100000 100000\n255\n'; head -c 2000000000 /dev/zero) >"$d/big.ppm" 2>/dev/null &
    run --separate-stderr limited 30 512 predict -m "$(F net.safetensors)" "$d/big.ppm"
    one_line_error 1 "tl-predict: $d/big.ppm: " 'is 100000x100000, above the limit'
    kill %1 2>/dev/null || true
    wait 2>/dev/null || true
    # a stream that is no image at all: refused after its first bytes
    mkfifo "$d/zero.jpg"
    (head -c 2000000000 /dev/zero) >"$d/zero.jpg" 2>/dev/null &
    run --separate-stderr limited 30 512 predict -m "$(F net.safetensors)" "$d/zero.jpg"
    one_line_error 1 "tl-predict: $d/zero.jpg: " 'unknown image format'
    kill %1 2>/dev/null || true
    wait 2>/dev/null || true
}

@test "a JPEG missing only its EOI gives the same prediction as the whole file; cut data is refused" {
    need_py
    need_pil
    local d=$BATS_TEST_TMPDIR n
    $PY -c 'from PIL import Image; Image.radial_gradient("L").convert("RGB").resize((60, 45)).save("'"$d"'/a.jpg", quality=90)'
    n=$(stat -c %s "$d/a.jpg")
    head -c $((n - 2)) "$d/a.jpg" >"$d/noeoi.jpg"
    head -c $((n - 40)) "$d/a.jpg" >"$d/cut.jpg"
    run --separate-stderr tl predict -m "$(F net.safetensors)" "$d/a.jpg"
    assert_success
    local want
    want=$(printf '%s\n' "$output" | sed 1d | cut -f2-)
    [ -n "$want" ] || fail "no prediction: $output"
    run --separate-stderr tl predict -m "$(F net.safetensors)" "$d/noeoi.jpg"
    assert_success
    [ "$(printf '%s\n' "$output" | sed 1d | cut -f2-)" = "$want" ] || fail "without EOI: $output, whole: $want"
    run --separate-stderr tl predict -m "$(F net.safetensors)" "$d/cut.jpg"
    one_line_error 1 "tl-predict: $d/cut.jpg: " 'truncated JPEG data'
}
