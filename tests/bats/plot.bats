#!/usr/bin/env bats
# The plotting library through its test driver, tl-plotdemo: every chart
# kind as SVG and PNG, the SVGs rendered by an independent renderer
# (rsvg-convert), PNG headers checked, and the error paths of the writer.
# Self-contained: no ../shared.

load helpers

KINDS="lines lines-busy heatmap heatmap-crowded reliability bars bars-crowded empty all"

setup() {
    DEMO=${TL_TEST_BIN:-$BATS_TEST_DIRNAME/../../build/tests}/tl-plotdemo
    [ -x "$DEMO" ] || skip "tl-plotdemo not built (make test-tools)"
}

# png_size FILE: "WIDTH HEIGHT" from the IHDR chunk; fails if not a PNG.
png_size() {
    [ "$(od -An -tx1 -N8 "$1" | tr -d ' \n')" = 89504e470d0a1a0a ] || { echo "not a PNG: $1" >&2; return 1; }
    od -An -tu1 -j16 -N8 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4, $5 * 16777216 + $6 * 65536 + $7 * 256 + $8 }'
}

@test "every chart kind is written as SVG and as PNG of the asked size" {
    local k
    for k in $KINDS; do
        run "$DEMO" "$k" "$BATS_TEST_TMPDIR/$k.svg" 500 400
        assert_success
        run "$DEMO" "$k" "$BATS_TEST_TMPDIR/$k.png" 500 400
        assert_success
        head -c 200 "$BATS_TEST_TMPDIR/$k.svg" | grep -q '<svg ' || fail "$k.svg has no <svg> element"
        tail -n 1 "$BATS_TEST_TMPDIR/$k.svg" | grep -qx '</svg>' || fail "$k.svg does not end with </svg>"
        assert_equal "$(png_size "$BATS_TEST_TMPDIR/$k.png")" "500 400"
    done
    no_files_like "$BATS_TEST_TMPDIR" '*.tmp*'
}

@test "rsvg-convert renders every SVG without error, at the figure's size" {
    command -v rsvg-convert >/dev/null || skip "rsvg-convert not found (Debian package librsvg2-bin)"
    local k
    for k in $KINDS; do
        "$DEMO" "$k" "$BATS_TEST_TMPDIR/$k.svg"
        run --separate-stderr rsvg-convert -o "$BATS_TEST_TMPDIR/$k.r.png" "$BATS_TEST_TMPDIR/$k.svg"
        assert_success
        [ -z "$stderr" ] || fail "rsvg-convert on $k: $stderr"
        if [ "$k" = all ]; then
            assert_equal "$(png_size "$BATS_TEST_TMPDIR/$k.r.png")" "1200 900"
        else
            assert_equal "$(png_size "$BATS_TEST_TMPDIR/$k.r.png")" "640 480"
        fi
    done
}

@test "the SVG parses as XML and carries the escaped texts" {
    [ -x /usr/bin/python3 ] || skip "/usr/bin/python3 not found (needed to parse XML)"
    "$DEMO" all "$BATS_TEST_TMPDIR/all.svg"
    run /usr/bin/python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
for want in ("Validation accuracy <by epoch> & \"runs\"", "resnet18 val", "mobilenet_v2 train",
             "predicted", "true", "airplane", "n/a", "confidence"):
    assert want in texts, want
assert any(t.startswith("ECE = ") for t in texts)
print(len(texts))' "$BATS_TEST_TMPDIR/all.svg"
    assert_success
}

@test "'-' writes the SVG to standard output" {
    run --separate-stderr "$DEMO" heatmap -
    assert_success
    assert_line --index 0 --partial '<?xml'
    assert_line --partial '>predicted</text>'
}

@test "an unknown extension fails with a one-line reason and leaves no file" {
    run --separate-stderr "$DEMO" lines "$BATS_TEST_TMPDIR/x.jpg"
    assert_failure 1
    [[ "$stderr" == *"unknown plot format"* ]] || fail "stderr: $stderr"
    assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 1
    [ ! -e "$BATS_TEST_TMPDIR/x.jpg" ]
    no_files_like "$BATS_TEST_TMPDIR" 'x.jpg*'
}

@test "an unwritable place fails without a partial file" {
    run --separate-stderr "$DEMO" bars "$BATS_TEST_TMPDIR/no/such/dir/b.png"
    assert_failure 1
    [[ "$stderr" == tl-plotdemo:* ]] || fail "stderr: $stderr"
    run --separate-stderr "$DEMO" nosuchkind "$BATS_TEST_TMPDIR/b.png"
    assert_failure 2
}

@test "the reliability diagram's legend names every colour it draws" {
    "$DEMO" reliability "$BATS_TEST_TMPDIR/r.svg"
    for name in accuracy 'gap: overconfident' 'gap: underconfident' 'perfect calibration'; do
        grep -q ">$name<" "$BATS_TEST_TMPDIR/r.svg" || fail "legend lacks '$name'"
    done
}

@test "PNG and SVG of the same figure agree on what is drawn (ink in the same places)" {
    command -v rsvg-convert >/dev/null || skip "rsvg-convert not found (Debian package librsvg2-bin)"
    [ -x /usr/bin/python3 ] || skip "/usr/bin/python3 not found"
    "$DEMO" reliability "$BATS_TEST_TMPDIR/r.png"
    "$DEMO" reliability "$BATS_TEST_TMPDIR/r.svg"
    rsvg-convert -b white -o "$BATS_TEST_TMPDIR/r.svg.png" "$BATS_TEST_TMPDIR/r.svg"
    # Coarse 16 x 12 grid of cells: a cell that is mostly bar colour in one
    # rendering is so in the other (text differs in font, shapes must not).
    run /usr/bin/python3 -c '
import sys
from PIL import Image
a = Image.open(sys.argv[1]).convert("RGB"); b = Image.open(sys.argv[2]).convert("RGB")
assert a.size == b.size, (a.size, b.size)
W, H = a.size
def blue(im, x, y):
    r, g, bb = im.getpixel((x, y)); return bb > 150 and r < 80
diff = 0; cells = 0
for cy in range(12):
    for cx in range(16):
        xs = range(cx * W // 16, (cx + 1) * W // 16, 4); ys = range(cy * H // 12, (cy + 1) * H // 12, 4)
        fa = sum(blue(a, x, y) for x in xs for y in ys); fb = sum(blue(b, x, y) for x in xs for y in ys)
        n = len(xs) * len(ys); cells += 1
        if (fa > n / 2) != (fb > n / 2): diff += 1
print(diff, cells)
assert diff <= 4, diff' "$BATS_TEST_TMPDIR/r.png" "$BATS_TEST_TMPDIR/r.svg.png"
    assert_success
}
