"""A confined guest boots on a disk it can only reach through the broker."""

import os
import secrets
import signal

import pytest

import harness as h


def new_raw_image(path, size_mib=8):
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
    return path


def test_guest_boots_with_plain_qemu(ws, make_guest):
    """The harness itself: the tiny guest writes and reads back its pattern
    with QEMU alone (no broker, no hook), and the host finds it in the image."""
    img = new_raw_image(ws.image("plain.img"))
    token = "plain-" + secrets.token_hex(4)
    guest = make_guest(broker=False, action="write-pattern",
                       append=f"e2e.disk=vda e2e.sector=0 e2e.count=8 e2e.token={token}")
    guest.add_drive(img, interface="virtio")
    guest.launch()
    guest.expect(r"E2E-RESULT write-pattern ok", h.AGENT_TIMEOUT)
    guest.expect(r"E2E-POWEROFF", h.AGENT_TIMEOUT)
    guest.vm.wait(timeout=30)
    assert h.read_file_range(img, 0, 8 * h.SECTOR) == h.pattern_bytes(token, 0, 8)


def test_confined_qemu_without_hook_cannot_open_image(ws, sandbox):
    """Negative control: the same QEMU under the same sandbox, without
    -open-hook-fd, gets EACCES for the image, and the broker is never asked."""
    img = new_raw_image(ws.image("disk.img"))
    ws.standard_policy().rw(img).write()
    assert os.access(img, os.R_OK | os.W_OK), "the test itself must be able to open it"
    stderr = ws.confined_qemu_must_fail(
        "-drive", f"file={img},format=raw,if=none,id=d0",
        why="QEMU opened the image without the broker")
    assert f"Could not open '{img}': Permission denied" in stderr, stderr
    assert ws.audit.opens(path=img) == [], ws.audit.dump()


def test_confined_boot_on_brokered_disk(ws, sandbox, make_guest, accel):
    """-drive file=IMG,if=virtio under open-hook-server --sandbox: the guest
    writes a pattern and reads it back; afterwards the host finds it in the
    image, directly and with qemu-io through the broker."""
    img = new_raw_image(ws.image("disk.img"))
    ws.standard_policy().rw(img).write()
    token = "e2e-" + secrets.token_hex(4)

    guest = make_guest()
    guest.add_drive(img, interface="virtio")
    guest.launch()
    guest.write("vda", 0, 16, token)
    assert guest.check("vda", 0, 16, token).startswith("match")

    state = guest.hook_state()
    assert state["active"] is True and state["granted"] >= 1, state
    grants = ws.audit.opens(path=img, decision="allow", write=True)
    assert grants, ws.audit.dump()
    assert grants[0]["rule"] == f"rw {img}"
    if accel.name == "kvm":
        assert ws.audit.opens(path="/dev/kvm", decision="allow"), ws.audit.dump()

    guest.agent("poweroff")
    guest.expect(r"E2E-POWEROFF", h.AGENT_TIMEOUT)
    guest.vm.wait(timeout=30)

    want = h.pattern_bytes(token, 0, 16)
    assert h.read_file_range(img, 0, len(want)) == want
    before = len(ws.audit.records())
    out = ws.brokered(h.QEMU_IO, "-r", "-f", "raw", "-c", f"read -v 0 {len(want)}", img).stdout
    assert h.parse_qemu_io_dump(out) == want, out
    tool_opens = [r for r in ws.audit.records()[before:] if r.get("path") == img]
    assert tool_opens and all(r["decision"] == "allow" for r in tool_opens), ws.audit.dump()
    assert not any(h.is_write(r["flags"]) for r in tool_opens), tool_opens


def test_qemu_img_through_broker(ws, sandbox):
    """qemu-img creates and inspects images through the broker too (here on
    a descriptor other than 3: --hook-fd); a file outside the policy is refused."""
    ws.standard_policy().write()
    img = ws.image("made-by-qemu-img.qcow2")
    ws.brokered(h.QEMU_IMG, "create", "-f", "qcow2", img, "4M", hook_fd=7)
    info = ws.brokered(h.QEMU_IMG, "info", "--output=json", img).stdout
    assert '"format": "qcow2"' in info and '"virtual-size": 4194304' in info, info
    assert ws.audit.opens(path=img, decision="allow")

    outside = os.path.join(ws.root, "outside.raw")
    new_raw_image(outside, 1)
    proc = ws.brokered(h.QEMU_IMG, "info", outside, check=False)
    assert proc.returncode != 0
    assert "Permission denied" in proc.stderr, proc.stderr
    denied = ws.audit.opens(path=outside, decision="deny")
    assert denied and denied[0]["errno"] == "EACCES", ws.audit.dump()


def bare_qemu(ws, accel_name, name):
    """A confined QEMU with no guest (-M none), under the broker."""
    vm = h.QEMUMachine(h.QEMU, wrapper=ws.broker_command(), name=name, base_temp_dir=ws.root,
                       log_dir=ws.logs, sock_dir=ws.sockets,
                       monitor_address=os.path.join(ws.sockets, f"{name}.qmp"), qmp_timer=60)
    vm.set_machine(f"none,accel={accel_name}")
    vm.add_args("-nodefaults", "-open-hook-fd", "3")
    return vm


@pytest.mark.skipif(not os.access("/dev/kvm", os.R_OK | os.W_OK), reason="no usable /dev/kvm")
def test_kvm_device_through_broker(ws, sandbox):
    """QEMU opens /dev/kvm through the hook: with a 'dev /dev/kvm' rule KVM
    is enabled, without it the confined QEMU cannot use KVM."""
    ws.standard_policy().write()
    with bare_qemu(ws, "kvm", "kvm-granted") as vm:
        vm.launch()
        assert vm.command("query-kvm") == {"enabled": True, "present": True}
    granted = ws.audit.opens(path="/dev/kvm", decision="allow")
    assert granted and granted[0]["rule"] == "dev /dev/kvm", ws.audit.dump()

    ws.policy.lines.remove("dev /dev/kvm")
    ws.policy.write()
    stderr = ws.confined_qemu_must_fail("-open-hook-fd", "3", accel="kvm",
                                        why="KVM usable without a 'dev /dev/kvm' rule")
    assert "Permission denied" in stderr, stderr
    assert ws.audit.opens(path="/dev/kvm", decision="deny"), ws.audit.dump()


def test_broken_hook_never_falls_back_to_direct_open(ws, open_hook):
    """Without a sandbox QEMU could open files itself: once its broker is
    gone it must still not (no silent fallback to open())."""
    img = new_raw_image(ws.image("existing.img"), 1)
    ws.standard_policy().write()
    vm = bare_qemu(ws, "tcg", "unconfined")
    vm._wrapper = ws.broker_command(sandbox=False)
    vm.launch()
    qemu = h.child_pid(vm.get_pid())
    try:
        os.kill(vm.get_pid(), signal.SIGKILL)
        vm._popen.wait(timeout=10)
        error = vm.qmp("blockdev-add", driver="file", node_name="f0", filename=img)
        assert "error" in error, f"QEMU opened {img} without its broker: {error}"
        assert "hook" in error["error"]["desc"], error
        assert vm.command("query-open-hook")["broken"] is True
        assert ws.audit.opens(path=img) == []
    finally:
        vm.shutdown(hard=True)
        if qemu:
            h.kill_quietly(qemu)
