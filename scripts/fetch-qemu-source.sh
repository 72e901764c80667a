#!/bin/bash
# Fetch the pinned Debian QEMU source package and extract it (Debian's patches
# applied) into OUTDIR.
#
# The download uses apt's own source client with a private sources list and a
# private lists directory, so the system's apt configuration is never touched.
# Files are verified against qemu-source.sha256 in this repo and cached in
# $QEMU_SRC_CACHE (default ~/.cache/qemu-open-hook) so that later builds, and
# fresh clones on the same machine, do not download again.
#
# QEMU_SRC=DIR-or-TARBALL uses a tree the user already has instead.
#
# Usage: fetch-qemu-source.sh OUTDIR
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: fetch-qemu-source.sh OUTDIR}
pkg=qemu
version=1:7.2+dfsg-7+deb12u18
sums=${QEMU_SOURCE_SUMS:-$top/qemu-source.sha256}
home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache=${QEMU_SRC_CACHE:-${XDG_CACHE_HOME:-$home/.cache}/qemu-open-hook}
[ -f "$sums" ] || { echo "fetch-qemu-source: error: no checksum file $sums" >&2; exit 1; }
dsc=$(awk '/\.dsc$/ {print $2}' "$sums")

die() {
    echo "fetch-qemu-source: error: $*" >&2
    exit 1
}

# The mirror the system already uses, so a machine behind a local mirror keeps
# using it.  Both the deb822 and the one-line formats are read.
system_mirror() {
    local kind=$1 uri
    uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
              /etc/apt/sources.list.d/*.list 2>/dev/null |
          grep -oE 'https?://[^ ]+' | grep -E "/debian${kind}/?\$" | head -n1 || true)
    echo "${uri:-http://deb.debian.org/debian${kind}}"
}

write_private_apt_config() {
    local dir=$1 keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    local main security
    main=$(system_mirror "")
    security=$(system_mirror "-security")
    mkdir -p "$dir/lists/partial" "$dir/parts"
    {
        echo "deb-src [signed-by=$keyring] $main bookworm main"
        echo "deb-src [signed-by=$keyring] $main bookworm-updates main"
        echo "deb-src [signed-by=$keyring] $security bookworm-security main"
    } > "$dir/sources.list"
}

verify_cache() {
    (cd "$cache" && sha256sum --quiet -c "$sums") >/dev/null 2>&1
}

download() {
    local apt=$cache/apt
    local -a opts=(-o "Dir::Etc::SourceList=$apt/sources.list"
                   -o "Dir::Etc::SourceParts=$apt/parts"
                   -o "Dir::State::Lists=$apt/lists"
                   -o "APT::Sandbox::User=root")
    write_private_apt_config "$apt"
    echo "fetch-qemu-source: downloading $pkg=$version with apt-get source"
    if ! apt-get "${opts[@]}" -q update >"$apt/update.log" 2>&1; then
        cat "$apt/update.log" >&2
        die "apt-get update of the private source lists failed (network down?)." \
            "Fix the network, or build from a tree you have: make QEMU_SRC=/path/to/qemu"
    fi
    local served
    served=$(apt-cache "${opts[@]}" showsrc "$pkg" | sed -n 's/^Version: //p' | sort -u)
    if ! grep -qxF "$version" <<<"$served"; then
        echo "fetch-qemu-source: versions of $pkg served now:" >&2
        sed 's/^/  /' <<<"$served" >&2
        die "$pkg $version is not served any more. Build from a tree or tarball" \
            "you already have with: make QEMU_SRC=/path/to/qemu-7.2-tree-or.tar.xz"
    fi
    (cd "$cache" && apt-get "${opts[@]}" -q source --download-only "$pkg=$version") ||
        die "apt-get source failed; see the messages above"
}

fetch_pinned() {
    mkdir -p "$cache"
    verify_cache || download
    if ! (cd "$cache" && sha256sum --quiet -c "$sums"); then
        rm -f "$cache"/qemu_7.2+dfsg*
        die "checksum mismatch against $sums: the downloaded files were removed; run make again," \
            "and if it persists the mirror serves different files than the pinned ones"
    fi
    # dpkg-source links the tarballs next to the tree it makes: extract in a
    # scratch directory so that nothing else lands beside OUTDIR.
    local work
    rm -rf "$out"
    mkdir -p "$(dirname "$out")"
    work=$(mktemp -d -p "$(dirname "$out")")
    dpkg-source --no-check -x "$cache/$dsc" "$work/src" >/dev/null ||
        die "dpkg-source could not extract $cache/$dsc"
    rm -rf "$work/src/.pc"
    mv "$work/src" "$out"
    rm -rf "$work"
}

from_user_tree() {
    rm -rf "$out"
    mkdir -p "$out"
    if [ -d "$QEMU_SRC" ]; then
        (cd "$QEMU_SRC" && tar --exclude=.git --exclude=./build -cf - .) | tar -C "$out" -xf -
    elif [ -f "$QEMU_SRC" ]; then
        tar -C "$out" --strip-components=1 -xf "$QEMU_SRC"
    else
        die "QEMU_SRC=$QEMU_SRC is neither a directory nor a tarball"
    fi
    [ -f "$out/VERSION" ] || die "QEMU_SRC=$QEMU_SRC does not look like a QEMU tree (no VERSION)"
    echo "fetch-qemu-source: using QEMU $(cat "$out/VERSION") from $QEMU_SRC"
}

if [ -n "${QEMU_SRC:-}" ]; then
    from_user_tree
else
    fetch_pinned
fi
