#!/bin/bash
# Every prefix of patches/series builds: base + 1 patch, base + 2, ...
# Slow (one incremental build per patch, ccache helps); not part of CI.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
work=$top/build/bisect
targets=(qemu-system-x86_64 qemu-img qemu-io qemu-nbd storage-daemon/qemu-storage-daemon)

rm -rf "$work"
"$top/scripts/patch-queue.sh" apply-check "$work/qemu"
mkdir -p "$work/build"
(cd "$work/build" && "$work/qemu/configure" $(make -s -C "$top" print-qemu-configure) >/dev/null)

failed=0
for commit in $(git -C "$work/qemu" rev-list --reverse base..HEAD); do
    subject=$(git -C "$work/qemu" log -1 --format=%s "$commit")
    git -C "$work/qemu" checkout -q "$commit"
    if ninja -C "$work/build" "${targets[@]}" >"$work/build.log" 2>&1; then
        echo "ok    $subject"
    else
        echo "FAIL  $subject (see $work/build.log)"
        failed=1
        break
    fi
done
exit $failed
