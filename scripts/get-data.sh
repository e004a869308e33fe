#!/bin/sh
# get-data.sh [-d DIR] NAME...  — make a data set available under DIR
# (default ./data): linked from ../shared (or $TL_DATA) when it is there,
# otherwise downloaded from its official home and checked: the SHA-256 of
# the sorted per-file checksums must match, so a changed or partial
# download is refused.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
shared=${TL_DATA:-$top/../shared}
dir=$top/data

tree_sum() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1); }

get_hymenoptera() {
    want=01139606c5c3087d7df4094de3866bc534d26a9ce09ce3f0e90d007ec225e6cc
    dst=$dir/hymenoptera
    if [ -e "$dst" ]; then echo "get-data: $dst is there" >&2; return 0; fi
    if [ -d "$shared/datasets/hymenoptera" ]; then
        ln -s "$(cd "$shared/datasets/hymenoptera" && pwd)" "$dst"
        echo "get-data: linked $dst -> $shared/datasets/hymenoptera" >&2
        return 0
    fi
    url=https://download.pytorch.org/tutorial/hymenoptera_data.zip
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "get-data: downloading $url" >&2
    curl -fsSL --retry 2 -o "$tmp/h.zip" "$url" || { echo "get-data: cannot download $url (offline?)" >&2; exit 1; }
    (cd "$tmp" && unzip -q h.zip) || { echo "get-data: $url: not a valid zip" >&2; exit 1; }
    got=$(tree_sum "$tmp/hymenoptera_data")
    if [ "$got" != "$want" ]; then
        echo "get-data: hymenoptera: content checksum mismatch (got $got, expected $want)" >&2
        exit 1
    fi
    mv "$tmp/hymenoptera_data" "$dst"
    echo "get-data: wrote $dst" >&2
}

while getopts d:h opt; do
    case $opt in
    d) dir=$OPTARG ;;
    h) echo "Usage: get-data.sh [-d DIR] hymenoptera"; exit 0 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "Usage: get-data.sh [-d DIR] hymenoptera" >&2; exit 2; }
mkdir -p "$dir"
for d in "$@"; do
    case $d in
    hymenoptera) get_hymenoptera ;;
    *) echo "get-data: unknown data set '$d'" >&2; exit 2 ;;
    esac
done
