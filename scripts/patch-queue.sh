#!/bin/bash
# The patch queue: build/qemu is a git repo whose first commit (tag "base")
# is the pristine Debian-patched source; patches/series is applied on top.
#
#   patch-queue.sh tree     fresh build/qemu from base + series
#   patch-queue.sh export   base..HEAD of build/qemu into patches/
#   patch-queue.sh status   exit 0 when build/qemu holds nothing unexported
#   patch-queue.sh apply-check DIR   apply the series to a fresh copy in DIR
#
# Nothing that was not exported is ever deleted: "tree" refuses to replace a
# tree with unexported work, and with FORCE=1 it moves that tree aside.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
qemu=${QEMU_TREE:-$top/build/qemu}
patches=${PATCHES_DIR:-$top/patches}
# Where "export" writes; the round-trip check exports elsewhere and compares.
patches_out=${PATCHES_OUT:-$patches}
pristine=$top/build/qemu-pristine
# Fixed identity and dates make the base commit, and so every exported
# patch's index lines, identical on every machine.
export GIT_AUTHOR_NAME="Debian QEMU source" GIT_AUTHOR_EMAIL="qemu@packages.debian.org"
export GIT_COMMITTER_NAME="Open Hook Team" GIT_COMMITTER_EMAIL="open-hook@localhost"
export GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z"

die() {
    echo "patch-queue: error: $*" >&2
    exit 1
}

series() {
    [ -f "$patches/series" ] || return 0
    grep -vE '^[[:space:]]*(#|$)' "$patches/series"
}

# Tree object of base + series, computed in a throw-away index.
expected_tree() {
    local idx p
    idx=$(mktemp)
    GIT_INDEX_FILE=$idx git -C "$qemu" read-tree base
    for p in $(series); do
        if ! GIT_INDEX_FILE=$idx git -C "$qemu" apply --cached "$patches/$p" 2>/dev/null; then
            rm -f "$idx"
            return 1
        fi
    done
    GIT_INDEX_FILE=$idx git -C "$qemu" write-tree
    rm -f "$idx"
}

# Prints what in build/qemu is not in patches/; empty when all is exported.
unexported() {
    [ -d "$qemu/.git" ] || return 0
    git -C "$qemu" rev-parse -q --verify refs/tags/base >/dev/null || {
        echo "build/qemu has no 'base' tag"
        return 0
    }
    local dirty want
    dirty=$(git -C "$qemu" status --porcelain | head -n 10)
    [ -z "$dirty" ] || printf 'uncommitted changes in build/qemu:\n%s\n' "$dirty"
    if ! want=$(expected_tree); then
        echo "patches/series does not apply to base"
    elif [ "$want" != "$(git -C "$qemu" rev-parse 'HEAD^{tree}')" ]; then
        echo "commits in build/qemu differ from patches/ (run 'make export-patches')"
    fi
}

ensure_pristine() {
    [ -f "$pristine/.complete" ] && return 0
    rm -rf "$pristine"
    "$top/scripts/fetch-qemu-source.sh" "$pristine.tmp"
    mv "$pristine.tmp" "$pristine"
    touch "$pristine/.complete"
}

# Copy of the pristine source as a git repo with the tag "base".
init_repo() {
    local dir=$1
    mkdir -p "$dir"
    (cd "$pristine" && tar --exclude=./.complete -cf - .) | tar -C "$dir" -xf -
    git -C "$dir" init -q -b master
    git -C "$dir" config user.name "$GIT_COMMITTER_NAME"
    git -C "$dir" config user.email "$GIT_COMMITTER_EMAIL"
    git -C "$dir" add -A -f .
    git -C "$dir" commit -q -m "Debian QEMU source $(cat "$dir/VERSION"), Debian patches applied"
    git -C "$dir" tag base
}

apply_series() {
    local dir=$1 p
    for p in $(series); do
        [ -f "$patches/$p" ] || die "patches/series names $p, which does not exist"
        # Keep the patch's own author date; only the committer is ours.
        if ! git -C "$dir" -c am.threeWay=false am -q --committer-date-is-author-date \
                "$patches/$p" >/dev/null 2>&1; then
            git -C "$dir" am --abort >/dev/null 2>&1 || true
            die "patches/$p does not apply on top of the patches before it; fix it in build/qemu " \
                "(git am stopped there) or in patches/, then run 'make qemu-tree'"
        fi
    done
}

cmd_tree() {
    if [ -e "$qemu" ]; then
        local what
        what=$(unexported)
        if [ -n "$what" ]; then
            if [ "${FORCE:-0}" != 1 ]; then
                printf '%s\n' "$what" >&2
                die "build/qemu holds work not exported to patches/. Run 'make export-patches' " \
                    "first, or 'make qemu-tree FORCE=1' to move build/qemu aside (nothing is deleted)"
            fi
            local aside
            aside=$qemu.aside-$(date +%Y%m%d-%H%M%S)
            mv "$qemu" "$aside"
            echo "patch-queue: moved unexported work aside to $aside"
        else
            rm -rf "$qemu"
        fi
    fi
    ensure_pristine
    rm -rf "$qemu.tmp"      # left by an interrupted run
    init_repo "$qemu.tmp"
    mv "$qemu.tmp" "$qemu"
    apply_series "$qemu"
    echo "patch-queue: build/qemu = base + $(series | wc -l) patches"
}

cmd_export() {
    [ -d "$qemu/.git" ] || die "no build/qemu; run 'make qemu-tree' first"
    local dirty
    dirty=$(git -C "$qemu" status --porcelain --untracked-files=no)
    [ -z "$dirty" ] || die "build/qemu has uncommitted changes; commit them first"
    local tmp
    tmp=$(mktemp -d)
    git -C "$qemu" -c core.abbrev=12 -c diff.noprefix=false -c diff.mnemonicPrefix=false \
        -c format.signoff=false -c diff.renames=true \
        format-patch -q --no-signature --zero-commit --full-index --no-numbered \
        --no-cover-letter -o "$tmp" base..HEAD >/dev/null
    mkdir -p "$patches_out"
    rm -f "$patches_out"/*.patch "$patches_out/series"
    (cd "$tmp" && ls) | sort > "$patches_out/series"
    if [ -s "$patches_out/series" ]; then
        cp "$tmp"/*.patch "$patches_out"/
    fi
    rm -rf "$tmp"
    echo "patch-queue: exported $(wc -l < "$patches_out/series") patches to $patches_out"
}

cmd_status() {
    local what
    what=$(unexported)
    [ -z "$what" ] && return 0
    printf '%s\n' "$what"
    return 1
}

cmd_apply_check() {
    local dir=${1:?usage: patch-queue.sh apply-check DIR}
    ensure_pristine
    rm -rf "$dir"
    init_repo "$dir"
    apply_series "$dir"
}

case "${1:-}" in
tree) cmd_tree ;;
export) cmd_export ;;
status) cmd_status ;;
apply-check) shift; cmd_apply_check "$@" ;;
*) die "usage: patch-queue.sh tree|export|status|apply-check DIR" ;;
esac
