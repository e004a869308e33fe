#!/bin/sh
# nightly.sh: keep a classifier up to date with a growing image collection.
# Run it from cron (see crontab.example); each run:
#   1. takes a lock, so a run that overlaps the previous one exits at once;
#   2. extracts features of the training images: only the new ones when
#      tl-extract has --update (otherwise all of them, see below);
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
# Without tl-extract --update, step 2 extracts the whole training set each
# night into a new file (correct, but it costs every image, every night).
set -eu
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

# 2. Training features.
if "${TL}tl-extract" --help 2>/dev/null | grep -q -- '--update'; then
    "${TL}tl-extract" -q -m "$MODEL" --update "$TRAIN" -o "$STATE/train.tlf"
else
    "${TL}tl-extract" -q -m "$MODEL" "$TRAIN" -o "$STATE/train.tlf"
fi
# Validation features: again only when the images or the model changed.
find -L "$VAL" "$MODEL" -type f -printf '%p %s %T@\n' 2>/dev/null | LC_ALL=C sort >"$STATE/val.list.new"
if ! [ -f "$STATE/val.tlf" ] || ! cmp -s "$STATE/val.list.new" "$STATE/val.list"; then
    "${TL}tl-extract" -q -m "$MODEL" "$VAL" -o "$STATE/val.tlf"
    mv "$STATE/val.list.new" "$STATE/val.list"
else
    rm -f "$STATE/val.list.new"
fi

# 3. A candidate head on everything seen so far.
"${TL}tl-finetune" -q "$STATE/train.tlf" -o "$STATE/candidate.safetensors"

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
images=$("${TL}tl-eval" -q -m "$STATE/head.safetensors" --json "$STATE/train.tlf" |
    grep -o '[{,]"n":[^,}]*' | head -1 | cut -d: -f2)
[ -f "$STATE/history.tsv" ] || printf 'time\ttrain_images\tcandidate\tprevious\tdecision\n' >"$STATE/history.tsv"
printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${images:-?}" "$new" "${old:--}" "$decision" \
    >>"$STATE/history.tsv"
