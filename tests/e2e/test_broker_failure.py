"""The broker dies or hangs while the confined guest runs: open images keep
working, new opens fail with a clear error (a hung broker by the hook's
timeout), QEMU stays responsive, and a new broker attached with
open-hook-set takes over.  No elapsed time is asserted: the errors say
which failure happened, and QMP's own timeout guards against a hang."""

import os
import secrets
import signal

import harness as h

DEVICE = "virtio0"
BOUND = 3            # -open-hook-fd fd=3,timeout=BOUND


def start_guest(ws, make_guest):
    base = ws.image("base.img")
    with open(base, "wb") as f:
        f.truncate(8 << 20)
    ws.standard_policy().rw(base).write()
    guest = make_guest(hook_timeout=BOUND)
    guest.add_drive(base, interface="virtio")
    guest.launch()
    return guest, base


def snapshot_error(guest, overlay):
    return guest.qmp_error("blockdev-snapshot-sync", device=DEVICE, snapshot_file=overlay,
                           format="qcow2")


def take_over_with_new_broker(ws, guest, base):
    """Attach a new broker (--fd mode, its own audit log) with getfd and
    open-hook-set; the next snapshot goes through it."""
    audit = h.Audit(os.path.join(ws.root, "audit-new-broker.jsonl"))
    proc, sock = ws.start_fd_broker(audit.path)
    guest.attach_broker(sock, fdname="newbroker", timeout=BOUND)
    sock.close()
    state = guest.hook_state()
    assert state["active"] is True and state["broken"] is False, state

    overlay = ws.image("after-takeover.qcow2")
    guest.vm.command("blockdev-snapshot-sync", device=DEVICE, snapshot_file=overlay,
                     format="qcow2")
    assert audit.wait_for(path=overlay, decision="allow"), audit.dump()
    base_sum = h.sha256(base)
    token = "takeover-" + secrets.token_hex(3)
    guest.write("vda", 64, 8, token)
    guest.check("vda", 64, 8, token)
    assert h.sha256(base) == base_sum
    assert proc.poll() is None, "the new broker exited"


def test_broker_killed_while_guest_runs(ws, sandbox, make_guest):
    guest, base = start_guest(ws, make_guest)
    a = "before-" + secrets.token_hex(3)
    guest.write("vda", 0, 8, a)
    qemu_pid = guest.qemu_pid()
    assert qemu_pid, "no QEMU process under the launcher"

    os.kill(guest.launcher_pid(), signal.SIGKILL)
    guest.vm._popen.wait(timeout=10)

    # The disk QEMU already has open does not need the broker.
    b = "after-" + secrets.token_hex(3)
    guest.write("vda", 8, 8, b)
    guest.check("vda", 0, 8, a)
    guest.check("vda", 8, 8, b)

    # A new open does: it fails, saying the hook's end went away.
    error = snapshot_error(guest, ws.image("while-dead.qcow2"))
    assert "open hook failed: the hook closed the connection" in error, error
    state = guest.hook_state()
    assert state["broken"] is True and state["failures"] >= 1, state
    os.kill(qemu_pid, 0)                # QEMU itself is still there

    take_over_with_new_broker(ws, guest, base)


def test_broker_hung_open_fails_after_bound(ws, sandbox, make_guest):
    guest, base = start_guest(ws, make_guest)
    launcher = guest.launcher_pid()
    os.kill(launcher, signal.SIGSTOP)
    try:
        error = snapshot_error(guest, ws.image("while-hung.qcow2"))
        assert "open hook failed: no reply in time" in error, error

        # QEMU answers, the guest runs and does I/O.
        assert guest.vm.command("query-status")["status"] == "running"
        token = "during-" + secrets.token_hex(3)
        guest.write("vda", 0, 8, token)
        guest.check("vda", 0, 8, token)

        # The hook is broken now: later opens fail without asking anyone.
        state = guest.hook_state()
        assert state["broken"] is True and state["failures"] >= 1, state
        error = snapshot_error(guest, ws.image("still-broken.qcow2"))
        assert "the hook is broken" in error, error
        assert guest.hook_state()["requests"] == state["requests"]
        assert "broken" in guest.hmp("info open-hook").lower()
    finally:
        os.kill(launcher, signal.SIGCONT)

    take_over_with_new_broker(ws, guest, base)
