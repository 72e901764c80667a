#!/usr/bin/python3
"""Build the tiny e2e guest from Debian packages.

The guest is Debian's cloud kernel plus an initramfs holding busybox-static
and tests/guest/init.  Nothing is installed on the host: the .deb files are
fetched with `apt-get download` into a cache that outlives build/ (so CI on
the same machine does not fetch them again) and unpacked with `dpkg-deb -x`
under the output directory.

Output (default build/guest/):
    vmlinuz      the kernel
    initrd.img   gzip'd newc cpio: /init, busybox, virtio modules if needed
    guest.json   what went in: packages, versions, modules, checksums
"""

import argparse
import glob
import gzip
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
KERNEL_META = "linux-image-cloud-amd64"
BUSYBOX = "busybox-static"
# The modules the guest needs if the kernel does not have them built in.
WANTED_MODULES = ["virtio_pci", "virtio_blk"]


def log(msg):
    print(f"build-guest: {msg}", flush=True)


def die(msg):
    print(f"build-guest: error: {msg}", file=sys.stderr)
    sys.exit(1)


def run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)


# --- which packages ----------------------------------------------------------

def apt_candidate(pkg):
    """Candidate version of pkg from the apt lists, or None."""
    try:
        out = run(["apt-cache", "show", "--no-all-versions", pkg]).stdout
    except subprocess.CalledProcessError:
        return None
    for line in out.splitlines():
        if line.startswith("Version: "):
            return line.split(" ", 1)[1]
    return None


_apt_updated = False


def apt_update_once():
    # A fresh machine may have no package lists yet; one update is enough.
    global _apt_updated
    if _apt_updated:
        return
    _apt_updated = True
    log("apt-get update (no candidate in the package lists)")
    subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, check=False)


def versioned_kernel_package():
    """The meta package depends on the versioned one: that is what we fetch."""
    for attempt in range(2):
        try:
            out = run(["apt-cache", "depends", KERNEL_META]).stdout
        except subprocess.CalledProcessError:
            out = ""
        for line in out.splitlines():
            dep = line.strip()
            if dep.startswith("Depends: linux-image-") and dep.endswith("-cloud-amd64"):
                return dep.split(" ", 1)[1]
        if attempt == 0:
            apt_update_once()
    return None


def deb_version_part(version):
    # apt-get download names files without the epoch ("1:" becomes "1%3a").
    return version.split(":", 1)[-1]


def cached_debs(cache, pkg_prefix):
    return sorted(glob.glob(os.path.join(cache, f"{pkg_prefix}_*.deb")), key=os.path.getmtime)


def fetch(cache, pkg):
    """Path of pkg's candidate .deb in the cache, downloading it if needed."""
    version = apt_candidate(pkg)
    if version is None:
        apt_update_once()
        version = apt_candidate(pkg)
    if version is not None:
        want = deb_version_part(version)
        for path in cached_debs(cache, pkg):
            if path.endswith(f"{want}_amd64.deb"):
                return path
        log(f"apt-get download {pkg}={version}")
        proc = subprocess.run(["apt-get", "download", f"{pkg}={version}"], cwd=cache,
                              text=True, capture_output=True)
        if proc.returncode == 0:
            for path in cached_debs(cache, pkg):
                if path.endswith(f"{want}_amd64.deb"):
                    return path
        log(f"download failed: {proc.stderr.strip()[-300:]}")
    # Offline: any earlier download of the same package will do.
    found = cached_debs(cache, pkg)
    if found:
        log(f"using cached {os.path.basename(found[-1])}")
        return found[-1]
    die(f"cannot get {pkg}: not in the apt lists and not in {cache}")


def resolve_kernel_deb(cache):
    pkg = versioned_kernel_package()
    if pkg:
        return fetch(cache, pkg)
    found = cached_debs(cache, "linux-image-*-cloud-amd64")
    if found:
        log(f"{KERNEL_META} unknown to apt; using cached {os.path.basename(found[-1])}")
        return found[-1]
    die(f"cannot resolve {KERNEL_META} (apt-cache depends found no versioned kernel)")


# --- kernel modules ------------------------------------------------------------

def modinfo(ko_path):
    """The key=value strings of a module's .modinfo ELF section."""
    with open(ko_path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        die(f"{ko_path} is not a 64-bit ELF module (compressed?)")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
                for i in range(shnum)]
    names_offset = sections[shstrndx][4]
    for sh_name, _, _, _, offset, size, *_ in sections:
        start = names_offset + sh_name
        if data[start:data.index(b"\0", start)] == b".modinfo":
            fields = data[offset:offset + size].split(b"\0")
            return dict(f.decode().split("=", 1) for f in fields if b"=" in f)
    return {}


def kernel_config(root):
    configs = glob.glob(os.path.join(root, "boot", "config-*"))
    if len(configs) != 1:
        die(f"expected one boot/config-* in the kernel package, found {configs}")
    options = {}
    with open(configs[0]) as f:
        for line in f:
            if line.startswith("CONFIG_") and "=" in line:
                key, value = line.strip().split("=", 1)
                options[key] = value
    return options


def module_load_order(root):
    """Modules (paths relative to lib/modules/) to insmod, dependencies first."""
    config = kernel_config(root)
    if config.get("CONFIG_VIRTIO_BLK") == "y" and config.get("CONFIG_VIRTIO_PCI") == "y":
        return []
    by_name = {}
    for ko in glob.glob(os.path.join(root, "lib", "modules", "*", "kernel", "**", "*.ko"),
                        recursive=True):
        by_name[os.path.basename(ko)[:-3].replace("-", "_")] = ko
    order = []

    def visit(name):
        if name in order:
            return
        if name not in by_name:
            die(f"module {name} is neither built in nor in the kernel package")
        for dep in filter(None, modinfo(by_name[name]).get("depends", "").split(",")):
            visit(dep.replace("-", "_"))
        order.append(name)

    for name in WANTED_MODULES:
        visit(name)
    modules_dir = os.path.join(root, "lib", "modules")
    return [os.path.relpath(by_name[n], modules_dir) for n in order]


# --- initramfs -------------------------------------------------------------------

class Cpio:
    """A minimal newc writer: fixed owner and mtime, so the output is reproducible."""

    def __init__(self):
        self.chunks = []
        self.inode = 1

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        name_bytes = name.encode() + b"\0"
        fields = [self.inode, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(name_bytes), 0]
        header = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.inode += 1
        self.chunks += [header, name_bytes, b"\0" * (-(110 + len(name_bytes)) % 4),
                        data, b"\0" * (-len(data) % 4)]

    def directory(self, name):
        self._entry(name, 0o040755)

    def file(self, name, data, executable=False):
        self._entry(name, 0o100755 if executable else 0o100644, data)

    def char_device(self, name, major, minor):
        self._entry(name, 0o020600, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        blob = b"".join(self.chunks)
        return blob + b"\0" * (-len(blob) % 512)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def build_initramfs(busybox_root, kernel_root, modules):
    cpio = Cpio()
    for d in ["bin", "dev", "etc", "lib", "lib/modules", "proc", "sys", "tmp"]:
        cpio.directory(d)
    # The kernel opens /dev/console before /init runs devtmpfs.
    cpio.char_device("dev/console", 5, 1)
    cpio.file("init", read(os.path.join(HERE, "init")), executable=True)
    cpio.file("bin/busybox", read(os.path.join(busybox_root, "bin", "busybox")), executable=True)
    made = set()
    for rel in modules:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "lib/modules/" + "/".join(parts[:i])
            if d not in made:
                cpio.directory(d)
                made.add(d)
        cpio.file("lib/modules/" + rel, read(os.path.join(kernel_root, "lib", "modules", rel)))
    cpio.file("etc/modules.order", "".join(m + "\n" for m in modules).encode())
    return gzip.compress(cpio.finish(), compresslevel=6, mtime=0)


# --- main ---------------------------------------------------------------------------

def unpack(deb, dest):
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    run(["dpkg-deb", "-x", deb, dest])
    return dest


def sha256(path):
    return hashlib.sha256(read(path)).hexdigest()


def deb_field(deb, field):
    return run(["dpkg-deb", "-f", deb, field]).stdout.strip()


def main():
    default_cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                 os.path.expanduser("~/.cache"), "qemu-open-hook", "guest")
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(TOP, "build", "guest"))
    parser.add_argument("--cache", default=os.environ.get("GUEST_CACHE", default_cache),
                        help="where downloaded .debs are kept (default %(default)s)")
    args = parser.parse_args()

    os.makedirs(args.cache, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    kernel_deb = resolve_kernel_deb(args.cache)
    busybox_deb = fetch(args.cache, BUSYBOX)

    kernel_root = unpack(kernel_deb, os.path.join(args.out, "pkgs", "kernel"))
    busybox_root = unpack(busybox_deb, os.path.join(args.out, "pkgs", "busybox"))
    vmlinuz = glob.glob(os.path.join(kernel_root, "boot", "vmlinuz-*"))
    if len(vmlinuz) != 1:
        die(f"expected one boot/vmlinuz-* in {kernel_deb}")
    modules = module_load_order(kernel_root)

    shutil.copyfile(vmlinuz[0], os.path.join(args.out, "vmlinuz.tmp"))
    with open(os.path.join(args.out, "initrd.img.tmp"), "wb") as f:
        f.write(build_initramfs(busybox_root, kernel_root, modules))
    for name in ["vmlinuz", "initrd.img"]:
        os.replace(os.path.join(args.out, name + ".tmp"), os.path.join(args.out, name))

    info = {
        "kernel_package": deb_field(kernel_deb, "Package"),
        "kernel_version": deb_field(kernel_deb, "Version"),
        "kernel_release": os.path.basename(vmlinuz[0])[len("vmlinuz-"):],
        "busybox_version": deb_field(busybox_deb, "Version"),
        "virtio_blk": "module" if modules else "built-in",
        "modules": modules,
        "vmlinuz": os.path.join(args.out, "vmlinuz"),
        "initrd": os.path.join(args.out, "initrd.img"),
        "vmlinuz_sha256": sha256(os.path.join(args.out, "vmlinuz")),
        "initrd_sha256": sha256(os.path.join(args.out, "initrd.img")),
    }
    with open(os.path.join(args.out, "guest.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    log(f"{info['kernel_package']} {info['kernel_version']} + busybox {info['busybox_version']}; "
        f"virtio_blk {info['virtio_blk']}"
        + (f" ({', '.join(os.path.basename(m)[:-3] for m in modules)})" if modules else ""))
    log(f"guest in {args.out}: vmlinuz, initrd.img "
        f"({os.path.getsize(info['initrd']) // 1024} KiB), guest.json")


if __name__ == "__main__":
    main()
