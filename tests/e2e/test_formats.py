"""Backing chains and other image formats open through the broker; a
backing file outside the policy is refused, and the refusal is audited."""

import os
import secrets

import pytest

import harness as h


def write_pattern(path, fmt, token, sector, count):
    """Put the guest's pattern into an image with the host's (unconfined)
    qemu-io: this prepares the test, it is not what is tested."""
    src = path + f".{token}.pattern"
    with open(src, "wb") as f:
        f.write(h.pattern_bytes(token, sector, count))
    h.qemu_io("-f", fmt, "-c", f"write -s {src} {sector * h.SECTOR} {count * h.SECTOR}", path)
    os.unlink(src)


def opened(ws, path):
    return ws.audit.opens(path=path, decision="allow")


def test_backing_chain_qcow2_qcow2_raw(ws, sandbox, make_guest):
    base, mid, top = ws.image("base.raw"), ws.image("mid.qcow2"), ws.image("top.qcow2")
    h.qemu_img("create", "-f", "raw", base, "8M")
    h.qemu_img("create", "-f", "qcow2", "-b", base, "-F", "raw", mid)
    h.qemu_img("create", "-f", "qcow2", "-b", mid, "-F", "qcow2", top)
    layers = [("raw-" + secrets.token_hex(3), base, "raw", 0),
              ("mid-" + secrets.token_hex(3), mid, "qcow2", 8),
              ("top-" + secrets.token_hex(3), top, "qcow2", 16)]
    for token, path, fmt, sector in layers:
        write_pattern(path, fmt, token, sector, 8)
    # Only the top may be written; the backing files are read-only to QEMU.
    ws.standard_policy().rw(top).ro(mid).ro(base).write()
    sums = {p: h.sha256(p) for p in (base, mid)}

    guest = make_guest()
    guest.add_drive(top, fmt="qcow2", interface="virtio")
    guest.launch()
    for token, _, _, sector in layers:
        guest.check("vda", sector, 8, token)
    new = "new-" + secrets.token_hex(3)
    guest.write("vda", 24, 8, new)
    guest.check("vda", 24, 8, new)

    for path in (base, mid, top):
        assert opened(ws, path), f"{path} not opened through the broker\n{ws.audit.dump()}"
    for path in (base, mid):
        assert not any(h.is_write(r["flags"]) for r in ws.audit.opens(path=path)), \
            ws.audit.dump()
        assert h.sha256(path) == sums[path]
    chain = guest.vm.command("query-block")[0]["inserted"]["image"]
    assert [chain["filename"], chain["backing-image"]["filename"],
            chain["backing-image"]["backing-image"]["filename"]] == [top, mid, base]


FORMATS = {
    # format: (qemu-img create options, files the image consists of)
    "vmdk": (["-o", "subformat=monolithicFlat"], ["disk.vmdk", "disk-flat.vmdk"]),
    "vpc": ([], ["disk.vpc"]),
    "vdi": ([], ["disk.vdi"]),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_image_format_through_broker(ws, sandbox, make_guest, fmt):
    options, files = FORMATS[fmt]
    img = ws.image(files[0])
    h.qemu_img("create", "-f", fmt, *options, img, "8M")
    old = f"{fmt}-" + secrets.token_hex(3)
    write_pattern(img, fmt, old, 0, 8)
    ws.standard_policy().write()

    guest = make_guest()
    guest.add_drive(img, fmt=fmt, serial="disk")
    guest.launch()
    guest.check("disk", 0, 8, old)
    new = "guest-" + secrets.token_hex(3)
    guest.write("disk", 8, 8, new)
    guest.check("disk", 8, 8, new)
    guest.agent("poweroff")
    guest.vm.wait(timeout=30)

    for name in files:
        assert opened(ws, ws.image(name)), f"{name} not brokered\n{ws.audit.dump()}"
    out = ws.brokered(h.QEMU_IO, "-r", "-f", fmt, "-c",
                      f"read -v {8 * h.SECTOR} {8 * h.SECTOR}", img).stdout
    assert h.parse_qemu_io_dump(out) == h.pattern_bytes(new, 8, 8), out


def test_vvfat_directory_through_broker(ws, sandbox, make_guest):
    share = ws.image("share")
    os.mkdir(share)
    marker = "vvfat-marker-" + secrets.token_hex(4)
    hello = os.path.join(share, "hello.txt")
    with open(hello, "w") as f:
        f.write(f"{marker}\n")
    ws.standard_policy().dirs(share).write()

    guest = make_guest()
    guest.add_drive(f"fat:floppy:12:{share}", fmt="raw", serial="share", extra=",readonly=on")
    guest.launch()
    assert guest.agent("find", "share", marker).startswith("found")

    scans = opened(ws, share)
    assert scans and "O_DIRECTORY" in scans[0]["flags"], ws.audit.dump()
    assert opened(ws, hello), ws.audit.dump()


def qcow2_with_backing_outside(ws):
    secret_dir = os.path.join(ws.root, "secret")
    os.mkdir(secret_dir)
    secret = os.path.join(secret_dir, "secret.raw")
    h.qemu_img("create", "-f", "raw", secret, "1M")
    evil = ws.image("evil.qcow2")
    h.qemu_img("create", "-f", "qcow2", "-b", secret, "-F", "raw", evil)
    ws.standard_policy().write()
    return evil, secret


def assert_denied(ws, secret):
    denied = ws.audit.opens(path=secret)
    assert denied, f"the broker was not asked for {secret}\n{ws.audit.dump()}"
    assert all(r["decision"] == "deny" and r["errno"] == "EACCES" for r in denied), \
        ws.audit.dump()


def test_backing_outside_policy_refused_at_startup(ws, sandbox):
    evil, secret = qcow2_with_backing_outside(ws)
    stderr = ws.confined_qemu_must_fail(
        "-open-hook-fd", "3", "-drive", f"file={evil},format=qcow2,if=none,id=d0",
        why="QEMU started although the backing file is outside the policy")
    assert "Permission denied" in stderr and secret in stderr, stderr
    assert opened(ws, evil)
    assert_denied(ws, secret)


def test_backing_outside_policy_refused_on_hotplug(ws, sandbox, make_guest):
    evil, secret = qcow2_with_backing_outside(ws)
    guest = make_guest()
    guest.launch()
    error = guest.qmp_error("blockdev-add", driver="qcow2", node_name="evil",
                            file={"driver": "file", "filename": evil})
    assert "Permission denied" in error and secret in error, error
    assert_denied(ws, secret)
    assert guest.vm.command("query-status")["status"] == "running"
    assert guest.agent("ping").startswith("pong")
