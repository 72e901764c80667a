#!/bin/bash
# Install the Debian 12 packages this project needs, printing what it
# installs.  Runs apt-get only when something is missing.
set -euo pipefail

packages=(
    # QEMU build
    build-essential pkg-config git ccache meson ninja-build flex bison
    python3 python3-venv libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev
    libaio-dev dpkg-dev xz-utils
    # firmware so that -M pc and -M q35 start
    seabios qemu-system-data ipxe-qemu
    # tests: pytest, GTest (GLib), fuzzing (the guest downloads its own packages)
    # (libFuzzer's runtime is only a recommendation of clang's)
    python3-pytest python3-libnbd clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
if ! $sudo apt-get update -q >/dev/null || \
   ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >/dev/null; then
    echo "install-deps: error: could not install ${missing[*]} with apt-get;" \
         "check the network and apt sources, then run make again" >&2
    exit 1
fi
