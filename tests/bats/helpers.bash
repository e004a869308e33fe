# Shared by every suite: where the tools and the data are, and small input
# generators. Fixtures are made at test time, never committed.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
bats_require_minimum_version 1.5.0

TL_BIN=${TL_BIN:-$BATS_TEST_DIRNAME/../../bin}
TL_SHARED=${TL_DATA:-$BATS_TEST_DIRNAME/../../../shared}
TL_MODELS=$TL_SHARED/models/tflite
TL_HYM=$TL_SHARED/datasets/hymenoptera
FIXTURES=$BATS_TEST_DIRNAME/fixtures
# Under UBSan, say where a report comes from.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

tl() { "$TL_BIN/tl-$1" "${@:2}"; }

have_shared() { [ -f "$TL_MODELS/mobilenet_v2_1.0_224_quant.tflite" ]; }
need_shared() { have_shared || skip "../shared not found"; }

# gen_blobs FILE SEED [N] [DIM] [K] [SPREAD]: N labelled rows of DIM values
# in K Gaussian blobs (Box-Muller over awk's seeded rand). Class c has mean
# SPREAD in the dimensions j with j % K == c and 0 elsewhere, unit noise.
# Rows follow the header line that marks a tl feature file.
gen_blobs() {
    local file=$1 seed=$2 n=${3:-60} dim=${4:-8} k=${5:-3} spread=${6:-3}
    awk -v seed="$seed" -v n="$n" -v d="$dim" -v k="$k" -v s="$spread" 'BEGIN {
        srand(seed)
        print "#tl-features\t1"
        for (i = 0; i < n; i++) {
            c = i % k
            printf "s%d/img%03d.jpg\tclass%d", seed, i, c
            for (j = 0; j < d; j++) {
                u1 = rand(); u2 = rand(); if (u1 < 1e-12) u1 = 1e-12
                g = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2)
                printf "\t%.6f", (j % k == c ? s : 0) + g
            }
            printf "\n"
        }
    }' >"$file"
}

# featconv FORMAT IN.tsv OUT: TSV features as a .tlf stream or a .npy matrix.
featconv() {
    command -v perl >/dev/null || skip "perl not found (needed to write .tlf/.npy fixtures)"
    perl "$FIXTURES/featconv.pl" "$1" <"$2" >"$3"
}

# json_get FILE EXPR: a field of a JSON document (EXPR in Python syntax
# over `d`, e.g. "d['accuracy']"); fails when FILE is not valid JSON.
json_get() {
    if [ -x /usr/bin/python3 ]; then
        /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
    elif command -v jq >/dev/null; then
        local q
        q=$(printf '%s' "$2" | sed -e "s/^d//" -e "s/\['\([^']*\)'\]/.\1/g" -e 's/\[\([0-9]*\)\]/[\1]/g')
        jq -r "$q" "$1"
    else
        skip "neither /usr/bin/python3 nor jq to read JSON"
    fi
}

# float_ge A B: A >= B as numbers.
float_ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# flip_byte FILE OFFSET: XOR one byte with 0x01, in place.
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "\\$(printf '%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# noise_bytes N SEED: N bytes that look random but are the same on every run (a SHA-256
# chain), so a garbage-input test that fails can be reproduced; /dev/urandom could not be.
noise_bytes() {
    local i
    for ((i = 0; i * 32 < $1; i++)); do printf '%s-%d' "$2" "$i" | sha256sum | cut -c1-64; done |
        tr -d '\n' | tr a-f A-F | basenc --base16 -d | head -c "$1"
}

# ppm FILE W H R G B: a binary PPM (P6) of one colour.
ppm() {
    local file=$1 w=$2 h=$3 px
    px=$(printf '\\%03o\\%03o\\%03o' "$4" "$5" "$6")
    { printf 'P6\n%d %d\n255\n' "$w" "$h"; for ((i = 0; i < w * h; i++)); do printf "$px"; done; } >"$file"
}

# gradient_ppm FILE W H: a PPM with a red-green gradient and blue stripes.
gradient_ppm() {
    local file=$1 w=$2 h=$3
    printf 'P6\n%d %d\n255\n' "$w" "$h" >"$file"
    LC_ALL=C awk -v w="$w" -v h="$h" 'BEGIN {
        for (y = 0; y < h; y++) for (x = 0; x < w; x++)
            printf "%c%c%c", int(255 * x / w), int(255 * y / h), (int(x / 8) % 2) * 200
    }' >>"$file"
}

# convert_model NAME OUT [LABELS]: a checkpoint from ../shared's TFLite NAME.
convert_model() {
    local labels=${3:-$TL_MODELS/imagenet_labels.txt}
    tl convert -q "$TL_MODELS/$1.tflite" ${labels:+--labels "$labels"} -o "$2"
}

# subset_manifest OUT SPLIT N: the first N ants and N bees of hymenoptera/SPLIT.
subset_manifest() {
    local out=$1 split=$2 n=$3 c f
    : >"$out"
    for c in ants bees; do
        for f in $(ls "$TL_HYM/$split/$c" | grep -i '\.jpg$' | sort | head -n "$n"); do
            printf '%s\t%s\n' "$TL_HYM/$split/$c/$f" "$c" >>"$out"
        done
    done
}

# no_files_like DIR PATTERN: nothing in DIR matches the glob PATTERN.
no_files_like() {
    local hits
    hits=$(find "$1" -maxdepth 1 -name "$2" | head -5)
    [ -z "$hits" ] || { echo "left behind: $hits" >&2; return 1; }
}

# ppm_to_bmp IN.ppm OUT.bmp: the same pixels as a 24-bit bottom-up BMP.
ppm_to_bmp() {
    command -v perl >/dev/null || skip "perl not found (needed to write BMP fixtures)"
    perl -e '
        local $/; binmode STDIN; binmode STDOUT; my $d = <STDIN>;
        $d =~ s/^P6\s+(\d+)\s+(\d+)\s+255\s//s or die "not a P6 PPM\n";
        my ($w, $h) = ($1, $2); my $row = ($w * 3 + 3) & ~3; my $size = 54 + $row * $h;
        print "BM", pack("VvvV", $size, 0, 0, 54), pack("VllvvVVllVV", 40, $w, $h, 1, 24, 0, $row * $h, 2835, 2835, 0, 0);
        for (my $y = $h - 1; $y >= 0; $y--) {
            my $line = "";
            for my $x (0 .. $w - 1) { my ($r, $g, $b) = unpack("C3", substr($d, ($y * $w + $x) * 3, 3)); $line .= pack("C3", $b, $g, $r); }
            print $line, "\0" x ($row - $w * 3);
        }' <"$1" >"$2"
}

# grey_pair BASE W H: BASE.ppm (P6, R=G=B) and BASE.pgm (P5) of one grey ramp.
grey_pair() {
    local base=$1 w=$2 h=$3
    printf 'P6\n%d %d\n255\n' "$w" "$h" >"$base.ppm"
    printf 'P5\n%d %d\n255\n' "$w" "$h" >"$base.pgm"
    LC_ALL=C awk -v w="$w" -v h="$h" -v rgb=1 'BEGIN { for (y = 0; y < h; y++) for (x = 0; x < w; x++) { v = int(255 * (x + y) / (w + h)); printf "%c%c%c", v, v, v } }' >>"$base.ppm"
    LC_ALL=C awk -v w="$w" -v h="$h" 'BEGIN { for (y = 0; y < h; y++) for (x = 0; x < w; x++) printf "%c", int(255 * (x + y) / (w + h)) }' >>"$base.pgm"
}

# gen_ppms DIR SEED N: N noisy 32x32 images per class (red, blue) as P3.
gen_ppms() {
    local dir=$1 seed=$2 n=$3
    mkdir -p "$dir/red" "$dir/blue"
    LC_ALL=C awk -v seed="$seed" -v n="$n" -v dir="$dir" 'BEGIN {
        srand(seed)
        for (c = 0; c < 2; c++) for (i = 0; i < n; i++) {
            f = sprintf("%s/%s/%03d.ppm", dir, c ? "blue" : "red", i)
            print "P3 32 32 255" > f
            for (p = 0; p < 1024; p++) {
                r = int(rand() * 120) + (c ? 0 : 120); g = int(rand() * 120); b = int(rand() * 120) + (c ? 120 : 0)
                print r, g, b > f
            }
            close(f)
        }
    }'
}
