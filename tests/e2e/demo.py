#!/usr/bin/python3
"""make demo: a confined guest on a brokered disk, step by step.

QEMU runs under `open-hook-server --sandbox` (Landlock): it cannot open the
disk image itself, only ask the broker for it.  The guest writes a pattern
to its disk and reads it back, a snapshot is taken over the monitor, a
backing file outside the policy is refused, and the host reads the result
through the broker.  Exit status 0 only if every step worked.
"""

import os
import secrets
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

results = []


def heading(text):
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def say(text=""):
    print(f"   {text}", flush=True)


def step(name):
    """Run one demo step; a failure is reported and the demo goes on."""
    def wrap(fn):
        def run(*args):
            heading(name)
            try:
                value = fn(*args)
                results.append((name, True, ""))
                return value
            except Exception as e:  # pylint: disable=broad-except
                say(f"FAILED: {e}")
                if os.environ.get("DEMO_DEBUG"):
                    traceback.print_exc()
                results.append((name, False, str(e).splitlines()[0] if str(e) else type(e).__name__))
                return None
        return run
    return wrap


class Demo:
    def __init__(self):
        self.ws = h.Workspace(os.path.join(h.BUILD, "demo"), h.guest_files() or h.build_guest())
        self.disk = self.ws.image("disk.img")
        self.token = "hello-from-the-confined-guest-" + secrets.token_hex(2)
        self.later = "written-after-the-snapshot-" + secrets.token_hex(2)
        self.guest = None
        self.base_sum = None

    def rel(self, text):
        return str(text).replace(self.ws.root + "/", "")

    @step("What runs")
    def setup(self):
        missing = h.missing_binaries()
        if missing:
            raise RuntimeError("not built: " + ", ".join(missing) + " (run make)")
        if not h.qemu_has_open_hook():
            raise RuntimeError(f"{h.QEMU} has no -open-hook-fd")
        if not h.landlock_abi():
            raise RuntimeError("this kernel has no Landlock: QEMU cannot be confined")
        self.accel = h.choose_accel(self.ws.guest, os.path.join(h.BUILD, "e2e"))
        g = self.ws.guest
        say(f"QEMU         {h.QEMU}")
        say(f"broker       {h.BROKER}")
        say(f"accelerator  {self.accel}")
        say(f"guest        {g['kernel_package']} {g['kernel_version']} + busybox-static "
            f"{g['busybox_version']}")
        say(f"Landlock     ABI {h.landlock_abi()}")
        with open(self.disk, "wb") as f:
            f.truncate(16 << 20)
        self.ws.standard_policy().rw(self.disk).write()
        say(f"workspace    {self.ws.root}")
        say("policy:")
        for line in self.ws.policy.lines:
            say(f"    {self.rel(line)}")
        say("images/ is not in the sandbox: QEMU can reach disk.img only through the broker.")

    @step("Negative control: the same confined QEMU without the hook")
    def negative_control(self):
        say(f"open-hook-server --sandbox -- qemu-system-x86_64 "
            f"-drive file={self.rel(self.disk)},... (no -open-hook-fd)")
        stderr = self.ws.confined_qemu_must_fail(
            "-drive", f"file={self.disk},format=raw,if=none,id=d0",
            why="QEMU opened the image without the broker")
        say(f"-> {self.rel(stderr.strip().splitlines()[-1])}")
        if "Permission denied" not in stderr:
            raise RuntimeError("QEMU failed, but not with EACCES")
        say("=> Landlock stops QEMU from opening the image itself (EACCES).")

    @step("Boot the confined guest on the brokered disk")
    def boot(self):
        self.guest = h.Guest(self.ws, self.accel, name="demo")
        self.guest.add_drive(self.disk, interface="virtio")
        say("open-hook-server --policy policy --audit audit.jsonl --sandbox -- \\")
        say(f"  qemu-system-x86_64 -open-hook-fd 3 -M {self.accel.machine()} "
            f"-kernel vmlinuz -initrd initrd.img \\")
        say(f"  -drive file={self.rel(self.disk)},format=raw,if=virtio ...")
        start = time.monotonic()
        self.guest.launch()
        say(f"guest up in {time.monotonic() - start:.1f} s: {self.guest.lines[0]}")

    @step("The guest writes a pattern to its disk and reads it back")
    def write_and_read(self):
        say(f"guest> write vda sectors 0-7 '{self.token} sector N'")
        say(f"guest< {self.guest.write('vda', 0, 8, self.token)}")
        say(f"guest< {self.guest.check('vda', 0, 8, self.token)}  (read back with O_DIRECT)")
        say(f"guest< {self.guest.agent('peek', 'vda', 0)}")
        self.base_sum = h.sha256(self.disk)

    @step("Snapshot over the monitor (HMP snapshot_blkdev)")
    def snapshot(self):
        overlay = self.ws.image("overlay.qcow2")
        out = self.guest.hmp(f"snapshot_blkdev virtio0 {overlay} qcow2")
        say(f"(qemu) snapshot_blkdev virtio0 {self.rel(overlay)} qcow2  -> "
            f"{out.strip() or 'ok'}")
        image = self.guest.vm.command("query-block")[0]["inserted"]["image"]
        say(f"chain now: {self.rel(image['filename'])} -> "
            f"{self.rel(image['backing-image']['filename'])}")
        say(f"guest< {self.guest.write('vda', 8, 8, self.later)}")
        self.guest.check("vda", 0, 8, self.token)
        if h.sha256(self.disk) != self.base_sum:
            raise RuntimeError("the base image changed after the snapshot")
        say("the guest's new writes went to the overlay; disk.img is unchanged (sha256)")

    @step("A backing file outside the policy is refused")
    def denial(self):
        secret_dir = os.path.join(self.ws.root, "secret")
        os.makedirs(secret_dir, exist_ok=True)
        secret = os.path.join(secret_dir, "host-secret.raw")
        h.qemu_img("create", "-f", "raw", secret, "1M")
        evil = self.ws.image("evil.qcow2")
        h.qemu_img("create", "-f", "qcow2", "-b", secret, "-F", "raw", evil)
        say(f"images/evil.qcow2 names {self.rel(secret)} as its backing file")
        error = self.guest.qmp_error("blockdev-add", driver="qcow2", node_name="evil",
                                     file={"driver": "file", "filename": evil})
        say(f"QMP blockdev-add -> error: {self.rel(error)}")
        if "Permission denied" not in error:
            raise RuntimeError("the backing file was not refused")
        say(f"guest still running: {self.guest.vm.command('query-status')['status']}")

    @step("Power off; the host reads the disk through the broker")
    def host_check(self):
        self.guest.agent("poweroff")
        self.guest.vm.wait(timeout=30)
        for image, fmt, sector, token in ((self.disk, "raw", 0, self.token),
                                          (self.ws.image("overlay.qcow2"), "qcow2", 8,
                                           self.later)):
            out = self.ws.brokered(h.QEMU_IO, "-r", "-f", fmt, "-c",
                                   f"read -v {sector * h.SECTOR} {8 * h.SECTOR}", image).stdout
            data = h.parse_qemu_io_dump(out)
            first = data[:h.SECTOR].decode(errors="replace").strip()
            say(f"qemu-io (brokered) {self.rel(image)} sector {sector}: '{first}'")
            if data != h.pattern_bytes(token, sector, 8):
                raise RuntimeError(f"{self.rel(image)} does not hold what the guest wrote")

    @step("Audit log (JSON Lines): grants and denials")
    def audit(self):
        records = self.ws.audit.records()
        shown = [r for r in records if r["path"].startswith("/")]
        for r in shown:
            say(self.rel(h.short_record(r)))
        allows = sum(r["decision"] == "allow" for r in records)
        denies = [r for r in records if r["decision"] == "deny" and r.get("errno") == "EACCES"]
        say(f"{len(records)} requests: {allows} granted, {len(denies)} denied with EACCES")
        if any(r["decision"] == "error" for r in records):
            say("(error: a real errno inside the policy, e.g. ENOENT when QEMU looks")
            say(" for a file before it creates it)")
        say("(the last requests come from qemu-io, a different pid, also through the broker)")
        say(f"full records in {self.ws.audit.path}, e.g.:")
        with open(self.ws.audit.path) as f:
            say(self.rel(f.readline().strip()))
        if not allows or not denies:
            raise RuntimeError("expected both grants and a denial in the audit log")

    def cleanup(self):
        if self.guest:
            self.guest.shutdown()
        self.ws.cleanup()


def summary():
    heading("Summary")
    for name, ok, why in results:
        say(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  ({why})" if why else ""))
    failed = sum(not ok for _, ok, _ in results)
    print(f"\n{len(results) - failed} passed, {failed} failed", flush=True)
    return failed


def main():
    demo = Demo()
    try:
        demo.setup()
        if results[-1][1]:
            demo.negative_control()
            demo.boot()
            if results[-1][1]:
                demo.write_and_read()
                demo.snapshot()
                demo.denial()
                demo.host_check()
            demo.audit()
    finally:
        demo.cleanup()
    return 1 if summary() else 0


if __name__ == "__main__":
    sys.exit(main())
