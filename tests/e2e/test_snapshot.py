"""Snapshots and block-commit on a running confined guest: every new file
and every reopen goes through the broker."""

import os
import secrets
import signal
import time

import harness as h

DEVICE = "virtio0"          # the id QEMU gives the first -drive if=virtio


def start_guest(ws, make_guest, **kwargs):
    base = ws.image("base.img")
    with open(base, "wb") as f:
        f.truncate(8 << 20)
    # The whole images/ may be created in; base.img gets its own rule so
    # that a test can make it read-only later.
    ws.standard_policy().rw(base).write()
    guest = make_guest(**kwargs)
    guest.add_drive(base, interface="virtio")
    guest.launch()
    return guest, base


def active_file(guest):
    for dev in guest.vm.command("query-block"):
        if dev["device"] == DEVICE:
            return dev["inserted"]["file"]
    raise AssertionError(f"no {DEVICE} in query-block")


def overlay_sector(ws, overlay, sector):
    """One sector of an image as qemu-io through the broker reads it
    (-U: the running QEMU holds the image's locks)."""
    out = ws.brokered(h.QEMU_IO, "-U", "-r", "-f", "qcow2", "-c",
                      f"read -v {sector * h.SECTOR} {h.SECTOR}", overlay).stdout
    return h.parse_qemu_io_dump(out)


def new_records(ws, since):
    return ws.audit.records()[since:]


def test_snapshot_then_commit_through_broker(ws, sandbox, make_guest):
    guest, base = start_guest(ws, make_guest)
    a, b, c = ("pre-" + secrets.token_hex(3), "mid-" + secrets.token_hex(3),
               "post-" + secrets.token_hex(3))
    guest.write("vda", 0, 16, a)
    base_sum = h.sha256(base)

    # 1. snapshot_blkdev over the human monitor.
    ov1 = ws.image("overlay1.qcow2")
    since = len(ws.audit.records())
    assert guest.hmp(f"snapshot_blkdev {DEVICE} {ov1} qcow2").strip() == ""
    assert active_file(guest) == ov1
    created = [r for r in new_records(ws, since)
               if r["path"] == ov1 and "O_CREAT" in (r["flags"] or "")]
    assert created and created[0]["decision"] == "allow", ws.audit.dump()

    guest.write("vda", 16, 16, b)
    guest.check("vda", 0, 16, a)
    assert h.sha256(base) == base_sum, "a write after the snapshot reached the base"
    assert overlay_sector(ws, ov1, 16) == h.pattern_bytes(b, 16, 1)

    # 2. blockdev-snapshot-sync over QMP.
    ov2 = ws.image("overlay2.qcow2")
    guest.vm.command("blockdev-snapshot-sync", device=DEVICE, snapshot_file=ov2,
                     format="qcow2")
    assert active_file(guest) == ov2
    guest.write("vda", 32, 16, c)
    assert h.sha256(base) == base_sum

    # 3. block-commit everything back into the base: it is reopened
    # read-write, which the broker must grant.
    since = len(ws.audit.records())
    guest.vm.command("block-commit", device=DEVICE, job_id="commit0")
    h.wait_for_job(guest, "commit0", "BLOCK_JOB_READY")
    guest.vm.command("block-job-complete", device="commit0")
    done = h.wait_for_job(guest, "commit0", "BLOCK_JOB_COMPLETED")
    assert "error" not in done["data"], done
    reopened = [r for r in new_records(ws, since) if r["path"] == base and h.is_write(r["flags"])]
    assert reopened and all(r["decision"] == "allow" for r in reopened), ws.audit.dump()
    assert active_file(guest) == base

    for token, sector in ((a, 0), (b, 16), (c, 32)):
        guest.check("vda", sector, 16, token)
    guest.agent("poweroff")
    guest.vm.wait(timeout=30)
    for token, sector in ((a, 0), (b, 16), (c, 32)):
        assert h.read_file_range(base, sector * h.SECTOR, 16 * h.SECTOR) == \
            h.pattern_bytes(token, sector, 16)


def test_commit_refused_when_policy_keeps_base_read_only(ws, sandbox, make_guest):
    """With base.img only 'ro' in the (reloaded) policy, block-commit's
    read-write reopen is denied: a clear QMP error, and the guest runs on
    with all its data."""
    guest, base = start_guest(ws, make_guest)
    a, b, c = ("pre-" + secrets.token_hex(3), "mid-" + secrets.token_hex(3),
               "late-" + secrets.token_hex(3))
    guest.write("vda", 0, 16, a)
    ov = ws.image("overlay.qcow2")
    guest.vm.command("blockdev-snapshot-sync", device=DEVICE, snapshot_file=ov, format="qcow2")
    guest.write("vda", 16, 16, b)
    base_sum = h.sha256(base)

    ws.policy.replace(f"rw {base}", f"ro {base}").write()
    os.kill(guest.launcher_pid(), signal.SIGHUP)      # the broker reloads its policy
    time.sleep(1)

    since = len(ws.audit.records())
    error = guest.qmp_error("block-commit", device=DEVICE, job_id="commit0")
    assert "Permission denied" in error, error
    denied = [r for r in new_records(ws, since) if r["path"] == base]
    assert denied and denied[-1]["decision"] == "deny" and denied[-1]["errno"] == "EACCES", \
        ws.audit.dump()
    assert h.is_write(denied[-1]["flags"]) and denied[-1]["rule"] == f"ro {base}"

    assert guest.vm.command("query-status")["status"] == "running"
    assert guest.vm.command("query-block-jobs") == []
    assert active_file(guest) == ov
    guest.check("vda", 0, 16, a)
    guest.check("vda", 16, 16, b)
    guest.write("vda", 32, 16, c)
    guest.check("vda", 32, 16, c)
    assert h.sha256(base) == base_sum
