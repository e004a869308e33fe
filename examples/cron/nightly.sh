#!/bin/sh
# nightly.sh: keep a classifier up to date with a growing image collection.
# Run it from cron (see crontab.example); each run:
#   1. takes a lock, so a run that overlaps the previous one exits at once;
#   2. extracts features of the training images it has not seen (new or
#      changed files; the rows of removed ones are dropped), so a night
#      costs the day's images, not the collection;
#   3. trains a candidate head (logistic regression) on all the features;
#   4. scores the candidate and the current head on the validation images
#      and installs the candidate only if it scores at least as well;
#   5. appends one line to history.tsv: when, images, both scores, decision.
#
# Settings (environment, or a file of NAME=value lines given as $1):
#   MODEL   backbone checkpoint (a path, or a name in $TL_MODEL_PATH)
#   TRAIN   training images, class folders (root/<class>/<image>); grows
#   VAL     validation images, class folders
#   STATE   where features, heads, logs live (default: ./nightly-state)
#   TL      folder of the tl-* programs with a trailing slash (default: $PATH)
# The classifier in use is STATE/head.safetensors (tl-predict -m it).
#
# The training features are kept as text (STATE/train.tsv, tl-formats(5):
# nine digits, so the values are the float32s exactly) because rows can be
# appended and dropped with awk. A new backbone file or a new class starts
# them over. An unreadable image is skipped with a warning and tried again
# when its file changes.
set -eu
# shellcheck source=/dev/null
[ $# -ge 1 ] && . "$1"
: "${MODEL:?set MODEL to the backbone checkpoint}" "${TRAIN:?set TRAIN}" "${VAL:?set VAL}"
STATE=${STATE:-./nightly-state}
TL=${TL:-}
mkdir -p "$STATE"
say() { echo "nightly: $*" >&2; }

# 1. One run at a time: the lock is held until this shell exits.
exec 9>"$STATE/lock"
if ! flock -n 9; then
    say "another run holds $STATE/lock: nothing to do"
    exit 0
fi

# 2. Training features. train.list: path<TAB>class<TAB>size:mtime of every
# image below TRAIN/<class>/ (absolute paths; names with a tab or a newline
# cannot be manifest lines and are left out).
images() {
    root=$(cd "$1" && pwd)
    find -L "$root" -mindepth 2 -type f ! -path '*/.*' ! -name "*$tab*" ! -name '*
*' \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.jpe' -o -iname '*.png' -o -iname '*.bmp' \
        -o -iname '*.ppm' -o -iname '*.pgm' -o -iname '*.pnm' \) -printf '%P\t%s:%T@\n' |
        LC_ALL=C sort | awk -F'\t' -v r="$root" '{ split($1, p, "/"); print r "/" $1 "\t" p[1] "\t" $2 }'
}
tab=$(printf '\t')
images "$TRAIN" >"$STATE/train.list.new"
# what the rows depend on besides the images: the backbone and the classes
{ find -L "$MODEL" -printf '%p %s %T@\n'; cut -f2 "$STATE/train.list.new" | LC_ALL=C sort -u; } \
    >"$STATE/train.basis.new"
rm -f "$STATE/train.tsv.new"
if [ -f "$STATE/train.tsv" ] && [ -f "$STATE/train.list" ] && cmp -s "$STATE/train.basis.new" "$STATE/train.basis"
then
    # unchanged images keep their rows; the others are (re-)extracted
    awk -F'\t' 'NR == FNR { old[$0]; next } !($0 in old)' "$STATE/train.list" "$STATE/train.list.new" \
        >"$STATE/todo.list"
    awk -F'\t' 'FILENAME == ARGV[1] { todo[$1]; next } FILENAME == ARGV[2] { now[$1]; next }
                 /^#/ || (($1 in now) && !($1 in todo))' \
        "$STATE/todo.list" "$STATE/train.list.new" "$STATE/train.tsv" >"$STATE/train.tsv.new"
else
    cp "$STATE/train.list.new" "$STATE/todo.list"
fi
todo=$(wc -l <"$STATE/todo.list")
if [ "$todo" -gt 0 ]; then
    cut -f1,2 "$STATE/todo.list" >"$STATE/todo.tsv"
    "${TL}tl-extract" -q --skip-bad -m "$MODEL" -f tsv "$STATE/todo.tsv" -o "$STATE/todo.features.tsv"
    if [ -f "$STATE/train.tsv.new" ]; then
        grep -v '^#' "$STATE/todo.features.tsv" >>"$STATE/train.tsv.new" || true
        rm -f "$STATE/todo.features.tsv"
    else
        mv "$STATE/todo.features.tsv" "$STATE/train.tsv.new"
    fi
fi
[ -f "$STATE/train.tsv.new" ] && mv "$STATE/train.tsv.new" "$STATE/train.tsv"
mv "$STATE/train.list.new" "$STATE/train.list"
mv "$STATE/train.basis.new" "$STATE/train.basis"
rm -f "$STATE/todo.list" "$STATE/todo.tsv"
say "training images: $(wc -l <"$STATE/train.list"), extracted this run: $todo"
# Validation features: again only when the images or the model changed.
find -L "$VAL" "$MODEL" -type f -printf '%p %s %T@\n' 2>/dev/null | LC_ALL=C sort >"$STATE/val.list.new"
if ! [ -f "$STATE/val.tlf" ] || ! cmp -s "$STATE/val.list.new" "$STATE/val.list"; then
    "${TL}tl-extract" -q -m "$MODEL" "$VAL" -o "$STATE/val.tlf"
    mv "$STATE/val.list.new" "$STATE/val.list"
else
    rm -f "$STATE/val.list.new"
fi

# 3. A candidate head on everything seen so far.
"${TL}tl-finetune" -q "$STATE/train.tsv" -o "$STATE/candidate.safetensors"

# 4. Candidate against the current head, on the same validation features.
accuracy() { # HEAD: validation accuracy, from tl-eval's JSON
    "${TL}tl-eval" -q -m "$1" --json "$STATE/val.tlf" | grep -o '[{,]"accuracy":[^,}]*' | cut -d: -f2
}
new=$(accuracy "$STATE/candidate.safetensors")
old=
[ -f "$STATE/head.safetensors" ] && old=$(accuracy "$STATE/head.safetensors")
if [ -z "$old" ] || awk -v n="$new" -v o="$old" 'BEGIN { exit !(n + 0 >= o + 0) }'; then
    mv "$STATE/candidate.safetensors" "$STATE/head.safetensors"
    decision=installed
    say "new head installed: validation accuracy $new (was ${old:-none})"
else
    rm -f "$STATE/candidate.safetensors"
    decision=kept
    say "kept the current head: $old beats the candidate's $new"
fi

# 5. History.
images=$("${TL}tl-eval" -q -m "$STATE/head.safetensors" --json "$STATE/train.tsv" |
    grep -o '[{,]"n":[^,}]*' | head -1 | cut -d: -f2)
[ -f "$STATE/history.tsv" ] || printf 'time\ttrain_images\tcandidate\tprevious\tdecision\n' >"$STATE/history.tsv"
printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${images:-?}" "$new" "${old:--}" "$decision" \
    >>"$STATE/history.tsv"
