"""Shared pieces of the end-to-end tests and the demo.

Everything here drives the real binaries in build/bin/: the patched
qemu-system-x86_64 and tools, and the real broker, open-hook-server.  The
guest is the tiny Debian one from tests/guest/ (build-guest.py).

    Workspace   one directory per test: images/, a policy, an audit log,
                and a short socket directory for QMP and the serial console
    Policy      writes open-hook-server's policy file
    Audit       reads the broker's JSON Lines audit log
    Guest       a QEMUMachine (QEMU's python/) under the broker, with the
                guest agent on the serial console
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.environ.get("TOP") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
BIN = os.environ.get("BIN") or os.path.join(BUILD, "bin")
GUEST_DIR = os.environ.get("GUEST_DIR") or os.path.join(BUILD, "guest")
QEMU = os.path.join(BIN, "qemu-system-x86_64")
QEMU_IMG = os.path.join(BIN, "qemu-img")
QEMU_IO = os.path.join(BIN, "qemu-io")
BROKER = os.environ.get("OPEN_HOOK_SERVER") or os.path.join(BIN, "open-hook-server")

sys.path.insert(0, os.path.join(BUILD, "qemu", "python"))
from qemu.machine import QEMUMachine  # noqa: E402  (path set just above)

SECTOR = 512
# How long one guest boot may take.  TCG on a busy 2-core machine is the
# slow case; a boot normally takes 2-3 s.
BOOT_TIMEOUT = float(os.environ.get("E2E_BOOT_TIMEOUT", "90"))
AGENT_TIMEOUT = 60.0


# --- what is there --------------------------------------------------------------

def missing_binaries():
    return [p for p in (QEMU, QEMU_IMG, QEMU_IO, BROKER) if not os.access(p, os.X_OK)]


def qemu_help():
    return subprocess.run([QEMU, "-help"], capture_output=True, text=True, timeout=30).stdout


def qemu_has_open_hook():
    return "-open-hook-fd" in qemu_help()


def tool_has_open_hook(tool):
    out = subprocess.run([tool, "--help"], capture_output=True, text=True, timeout=30)
    return "--open-hook-fd" in out.stdout + out.stderr


def landlock_abi():
    """Landlock ABI version of the running kernel, or 0 without Landlock."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    sys_landlock_create_ruleset = 444
    abi = libc.syscall(sys_landlock_create_ruleset, None, 0, 1)
    return abi if abi > 0 else 0


def guest_files():
    """The guest's guest.json (see tests/guest/build-guest.py), or None."""
    path = os.path.join(GUEST_DIR, "guest.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        info = json.load(f)
    if not all(os.path.exists(info[k]) for k in ("vmlinuz", "initrd")):
        return None
    return info


def build_guest():
    subprocess.run([sys.executable, os.path.join(TOP, "tests", "guest", "build-guest.py"),
                    "--out", GUEST_DIR], check=True)
    return guest_files()


# --- KVM or TCG ---------------------------------------------------------------------

class Accel:
    def __init__(self, name, reason):
        self.name = name
        self.reason = reason

    def machine(self, machine_type="q35"):
        return f"{machine_type},accel={self.name}"

    def cpu_args(self):
        return ["-cpu", "host"] if self.name == "kvm" else []

    def __str__(self):
        return f"{self.name.upper()} ({self.reason})"


def _probe_kvm_boot(guest, timeout):
    """True if the guest boots under KVM: /dev/kvm opening is not enough
    (some hosts offer a KVM that cannot run a stock kernel)."""
    cmd = [QEMU, "-M", "q35,accel=kvm", "-cpu", "host", "-m", "256", "-nodefaults",
           "-display", "none", "-no-reboot", "-kernel", guest["vmlinuz"],
           "-initrd", guest["initrd"], "-append",
           "console=ttyS0 quiet panic=-1 e2e.action=probe", "-serial", "stdio"]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=timeout,
                             stdin=subprocess.DEVNULL).stdout
    except subprocess.TimeoutExpired:
        return False
    return b"E2E-POWEROFF" in out


def choose_accel(guest, cache_dir):
    """KVM when it can boot the guest, TCG otherwise; the reason says why."""
    forced = os.environ.get("E2E_ACCEL")
    if forced in ("kvm", "tcg"):
        return Accel(forced, "forced by E2E_ACCEL")
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError as e:
        return Accel("tcg", f"/dev/kvm not usable: {e.strerror}")
    # The probe costs up to 10 s when KVM is broken: remember the answer
    # for this host kernel, QEMU binary and guest kernel.
    key = [os.uname().release, os.path.realpath(QEMU), os.path.getmtime(QEMU),
           guest["vmlinuz_sha256"]]
    cache = os.path.join(cache_dir, "accel-probe.json")
    try:
        with open(cache) as f:
            saved = json.load(f)
        if saved["key"] == key:
            return Accel(saved["name"], saved["reason"] + ", cached")
    except (OSError, ValueError, KeyError):
        pass
    if _probe_kvm_boot(guest, timeout=10):
        accel = Accel("kvm", "/dev/kvm boots the guest")
    else:
        why = "/dev/kvm opens but the guest did not boot under KVM within 10 s"
        if os.path.exists("/sys/module/kvm_pvm"):
            why += " (kvm_pvm: KVM without hardware virtualization)"
        accel = Accel("tcg", why)
    os.makedirs(cache_dir, exist_ok=True)
    with open(f"{cache}.{os.getpid()}", "w") as f:
        json.dump({"key": key, "name": accel.name, "reason": accel.reason}, f)
    os.replace(f"{cache}.{os.getpid()}", cache)
    return accel


# --- policy and audit ------------------------------------------------------------------

class Policy:
    """open-hook-server's policy: one "KEYWORD PATH" a line; a trailing /
    makes a rule cover the tree below a directory."""

    def __init__(self, path):
        self.path = path
        self.lines = []

    def add(self, keyword, path, tree=False):
        path = os.path.realpath(path)
        self.lines.append(f"{keyword} {path}{'/' if tree else ''}")
        return self

    def ro(self, path, tree=False):
        return self.add("ro", path, tree)

    def rw(self, path, tree=False):
        return self.add("rw", path, tree)

    def create(self, directory):
        return self.add("create", directory, tree=True)

    def deny(self, path, tree=False):
        return self.add("deny", path, tree)

    def dev(self, path):
        return self.add("dev", path)

    def dirs(self, directory):
        return self.add("dirs", directory, tree=True)

    def sandbox_ro(self, path, tree=True):
        return self.add("sandbox-ro", path, tree)

    def sandbox_rw(self, path, tree=True):
        return self.add("sandbox-rw", path, tree)

    def replace(self, old_line_start, new_line):
        self.lines = [new_line if line.startswith(old_line_start) else line
                      for line in self.lines]
        return self

    def write(self):
        with open(self.path + ".tmp", "w") as f:
            f.write("# written by tests/e2e/harness.py\n")
            f.write("".join(line + "\n" for line in self.lines))
        os.replace(self.path + ".tmp", self.path)
        return self.path


def is_write(flags):
    return "O_RDWR" in (flags or "") or "O_WRONLY" in (flags or "")


class Audit:
    """The broker's audit log: one JSON object a line, with (among others)
    command ("OPEN"), path, resolved, flags ("O_RDWR|O_CLOEXEC"), decision
    ("allow", "deny", "error"), errno ("EACCES") and rule ("rw /path")."""

    def __init__(self, path):
        self.path = path

    def records(self):
        if not os.path.exists(self.path):
            return []
        with open(self.path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def opens(self, path=None, decision=None, write=None):
        """OPEN records, optionally only those for path (as asked or as
        resolved), with a decision, or asking for (or not for) write access."""
        found = []
        for r in self.records():
            if str(r.get("command", "OPEN")).upper() != "OPEN":
                continue
            if path is not None and path not in (r.get("path"), r.get("resolved")):
                continue
            if decision is not None and r.get("decision") != decision:
                continue
            if write is not None and is_write(r.get("flags")) != write:
                continue
            found.append(r)
        return found

    def wait_for(self, timeout=5.0, **match):
        """The broker writes a record after it answers: allow it a moment."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.opens(**match)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def dump(self):
        return "\n".join(short_record(r) for r in self.records()) or "(audit log empty)"


def short_record(r):
    """One readable line per audit record (assertion messages, demo)."""
    what = r.get("errno") or "fd"
    pid = (r.get("client") or {}).get("pid", "?")
    return (f"pid {pid:<7} {r.get('decision', '?'):5} {what:6} {r.get('flags') or '':30} "
            f"{r.get('path')}  [{r.get('rule') or 'no rule'}]")


# --- images ----------------------------------------------------------------------------

def run(cmd, timeout=120, check=True, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n"
                             f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


def qemu_img(*args, **kwargs):
    return run([QEMU_IMG, *args], **kwargs)


def qemu_io(*args, **kwargs):
    return run([QEMU_IO, *args], **kwargs)


def pattern_bytes(token, first_sector, count):
    """What the guest's init writes: one text line per sector (see
    tests/guest/init, make_pattern)."""
    out = b""
    for s in range(first_sector, first_sector + count):
        out += (f"{token} sector {s}".ljust(SECTOR - 1) + "\n").encode()
    return out


def read_file_range(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def parse_qemu_io_dump(text):
    """The bytes of qemu-io's "read -v" hex dump."""
    data = bytearray()
    for line in text.splitlines():
        m = re.match(r"^[0-9a-f]{8}:\s+((?:[0-9a-f]{2}\s)+)", line)
        if m:
            data += bytes.fromhex(m.group(1).replace(" ", ""))
    return bytes(data)


def sha256(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- one test's directory -------------------------------------------------------------------

class Workspace:
    """Images live in images/, which the sandbox does not grant: QEMU reaches
    them only through the broker.  The sockets live in a short directory
    under /tmp (sun_path is 108 bytes) that the sandbox grants read-write."""

    def __init__(self, root, guest):
        self.root = os.path.realpath(root)
        shutil.rmtree(self.root, ignore_errors=True)
        self.images = os.path.join(self.root, "images")
        self.logs = os.path.join(self.root, "logs")
        for d in (self.images, self.logs):
            os.makedirs(d)
        self.sockets = os.path.realpath(tempfile.mkdtemp(prefix="oh-e2e-"))
        self.guest = guest
        self.policy = Policy(os.path.join(self.root, "policy"))
        self.audit = Audit(os.path.join(self.root, "audit.jsonl"))
        self._processes = []

    def image(self, name):
        return os.path.join(self.images, name)

    def standard_policy(self):
        """What a confined guest on brokered disks needs: new files may be
        created in images/, QEMU may use /dev/kvm; the sandbox lets QEMU read
        the guest kernel and use its sockets, nothing else of ours."""
        p = self.policy
        p.create(self.images)
        if os.path.exists("/dev/kvm"):
            p.dev("/dev/kvm")
        p.sandbox_ro(GUEST_DIR)
        p.sandbox_rw(self.sockets)
        return p

    def broker_command(self, sandbox=True, hook_fd=None):
        """The launcher prefix: open-hook-server ... -- (QEMU follows)."""
        cmd = [BROKER, "--policy", self.policy.path, "--audit", self.audit.path]
        if sandbox:
            cmd.append("--sandbox")
        if hook_fd is not None:
            cmd += ["--hook-fd", str(hook_fd)]
        return cmd + ["--"]

    def brokered(self, tool, *args, sandbox=True, hook_fd=3, **kwargs):
        """Run a QEMU tool under the broker with --open-hook-fd."""
        prefix = self.broker_command(sandbox=sandbox, hook_fd=None if hook_fd == 3 else hook_fd)
        return run(prefix + [tool, "--open-hook-fd", str(hook_fd), *args], **kwargs)

    def confined_qemu_must_fail(self, *qemu_args, accel="tcg", why="QEMU kept running"):
        """Start a guest-less QEMU under the sandboxing launcher that must
        exit with an error at startup; its stderr."""
        cmd = self.broker_command() + [QEMU, "-M", f"none,accel={accel}", "-nodefaults",
                                       "-display", "none", *qemu_args]
        try:
            # It should fail in well under a second; running on means it did not.
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise AssertionError(why) from None
        assert proc.returncode != 0, f"{why}\n{proc.stderr}"
        return proc.stderr

    def start_fd_broker(self, audit_path, policy_path=None):
        """A broker serving one end of a new socketpair (--fd mode); returns
        (process, the other end for QEMU)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log = open(os.path.join(self.logs, f"fd-broker-{len(self._processes)}.log"), "w")
        proc = subprocess.Popen([BROKER, "--policy", policy_path or self.policy.path,
                                 "--audit", audit_path, "--fd", str(theirs.fileno())],
                                pass_fds=[theirs.fileno()], stdout=log, stderr=log)
        theirs.close()
        log.close()
        self._processes.append(proc)
        return proc, ours

    def cleanup(self):
        for proc in self._processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(self.sockets, ignore_errors=True)


# --- processes ----------------------------------------------------------------------------------

def child_pid(parent):
    """The (first) child of parent: QEMU under the broker's launcher."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            return int(entry)
    return None


def kill_quietly(pid):
    """SIGKILL a process of ours that may be stopped or already gone."""
    try:
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


# --- the guest -------------------------------------------------------------------------------

class GuestError(AssertionError):
    pass


class Guest:
    """The tiny guest in a QEMUMachine, started by the broker's launcher.

    broker:  start QEMU with the broker's launcher (False: plain QEMU)
    hook:    pass -open-hook-fd (False: the negative control)
    sandbox: the launcher confines QEMU with Landlock
    """

    def __init__(self, ws, accel, name="vm", broker=True, hook=True, sandbox=True,
                 hook_timeout=None, action="agent", append=""):
        self.ws = ws
        self.action = action
        self.name = name
        self.accel = accel
        self.console_log = os.path.join(ws.logs, f"{name}.console")
        self._buffer = b""
        self._next_id = 1
        self.lines = []
        wrapper = ws.broker_command(sandbox=sandbox) if broker else ()
        self.vm = QEMUMachine(QEMU, wrapper=wrapper, name=name,
                              base_temp_dir=ws.root, log_dir=ws.logs, sock_dir=ws.sockets,
                              monitor_address=os.path.join(ws.sockets, f"{name}.qmp"),
                              qmp_timer=60)
        self.vm.set_machine(accel.machine())
        self.vm.set_console()
        guest = ws.guest
        self.vm.add_args(*accel.cpu_args(), "-m", "256", "-nodefaults", "-no-reboot",
                         "-kernel", guest["vmlinuz"], "-initrd", guest["initrd"],
                         "-append", f"console=ttyS0 quiet panic=-1 e2e.action={action} {append}",
                         "-S")
        if broker and hook:
            opt = "3" if hook_timeout is None else f"fd=3,timeout={hook_timeout}"
            self.vm.add_args("-open-hook-fd", opt)

    # disks
    def add_drive(self, path, fmt="raw", drive_id=None, serial=None, interface="virtio",
                  extra=""):
        """-drive file=PATH,if=virtio (the guest sees vda, vdb, ... in order),
        or with serial= an if=none drive on a virtio-blk-pci device the guest
        finds by its serial."""
        opts = f"file={path},format={fmt}" if fmt else f"file={path}"
        if serial:
            drive_id = drive_id or serial
            self.vm.add_args("-drive", f"{opts},if=none,id={drive_id}{extra}",
                             "-device", f"virtio-blk-pci,drive={drive_id},serial={serial}")
        else:
            self.vm.add_args("-drive", f"{opts},if={interface}"
                             + (f",id={drive_id}" if drive_id else "") + extra)

    # life cycle
    def launch(self, boot=True):
        self.vm.launch()
        # Bound every QMP command: a test must fail, not hang.
        self.vm._qmp.settimeout(120)
        self._console = self.vm.console_socket
        self._log = open(self.console_log, "ab")
        if boot:
            self.vm.command("cont")
            self.expect(r"E2E-BOOTED kernel=(\S+)", BOOT_TIMEOUT)
            if self.action == "agent":
                self.expect(r"E2E-AGENT-READY", AGENT_TIMEOUT)
        return self

    def launcher_pid(self):
        return self.vm.get_pid()

    def qemu_pid(self):
        """QEMU is the launcher's child (the launcher waits for it)."""
        return child_pid(self.vm._popen.pid)

    def shutdown(self):
        qemu = None
        try:
            qemu = self.qemu_pid()
        except Exception:  # pylint: disable=broad-except
            pass
        try:
            if self.vm.is_running() or self.vm._qmp_connection is not None:
                self.vm.shutdown(timeout=20)
        except Exception:  # pylint: disable=broad-except
            # A test that killed or stopped the broker leaves QEMU to us.
            pass
        finally:
            for pid in filter(None, [qemu, getattr(self.vm._popen, "pid", None)]):
                kill_quietly(pid)
            if getattr(self, "_log", None):
                self._log.close()
                self._log = None

    def log(self):
        """QEMU's and the launcher's stdout/stderr (after shutdown)."""
        return self.vm.get_log() or ""

    # console
    def _read_some(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout
        self._console.settimeout(min(remaining, 1.0))
        try:
            data = self._console.recv(4096)
        except socket.timeout:
            return
        if not data:
            raise GuestError(f"{self.name}: console closed (QEMU gone?)\n{self.transcript()}")
        self._log.write(data)
        self._log.flush()
        self._buffer += data

    def _next_line(self, deadline):
        while b"\n" not in self._buffer:
            self._read_some(deadline)
        line, self._buffer = self._buffer.split(b"\n", 1)
        line = line.decode(errors="replace").strip("\r")
        self.lines.append(line)
        return line

    def expect(self, regex, timeout):
        """The first console line matching regex (a re.Match)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                line = self._next_line(deadline)
                m = re.search(regex, line)
                if m:
                    return m
                if "Kernel panic" in line:
                    raise GuestError(f"{self.name}: guest panicked\n{self.transcript()}")
        except socket.timeout:
            raise GuestError(f"{self.name}: no console line matching {regex!r} "
                             f"within {timeout:.0f} s\n{self.transcript()}") from None

    def transcript(self, last=30):
        return "console (last lines):\n  " + "\n  ".join(self.lines[-last:])

    def agent(self, *words, timeout=AGENT_TIMEOUT, ok=True):
        """Send one command to the guest agent; its answer (after the id).
        ok=True: an E2E-ERR answer fails the test; ok=None: return it either way."""
        cmd_id = self._next_id
        self._next_id += 1
        self._console.sendall((f"{cmd_id} " + " ".join(str(w) for w in words) + "\n").encode())
        m = self.expect(rf"^E2E-(OK|ERR) {cmd_id}\b ?(.*)$", timeout)
        status, answer = m.group(1), m.group(2)
        if ok is True and status != "OK":
            raise GuestError(f"{self.name}: '{' '.join(map(str, words))}' failed: {answer}\n"
                             f"{self.transcript()}")
        if ok is False and status != "ERR":
            raise GuestError(f"{self.name}: '{' '.join(map(str, words))}' should have "
                             f"failed but answered: {answer}")
        return answer if ok is not None else (status, answer)

    def write(self, disk, sector, count, token):
        return self.agent("write", disk, sector, count, token)

    def check(self, disk, sector, count, token):
        answer = self.agent("check", disk, sector, count, token)
        assert answer.startswith("match"), answer
        return answer

    # monitor
    def hmp(self, command_line):
        return self.vm.command("human-monitor-command", command_line=command_line)

    def qmp_error(self, cmd, **args):
        """Run a QMP command that must fail; its error description."""
        reply = self.vm.qmp(cmd, **args)
        assert "error" in reply, f"{cmd} {args} should have failed: {reply}"
        return reply["error"]["desc"]

    def hook_state(self):
        return self.vm.command("query-open-hook")

    def attach_broker(self, sock, fdname="hook2", timeout=None):
        """Hand QEMU a new broker socket: getfd, then open-hook-set."""
        self.vm.send_fd_scm(fd=sock.fileno())
        self.vm.command("getfd", fdname=fdname)
        args = {"fdname": fdname}
        if timeout is not None:
            args["timeout"] = timeout
        return self.vm.command("open-hook-set", **args)


def wait_for_job(guest, device, event, timeout=60):
    ev = guest.vm.event_wait(event, timeout=timeout, match={"data": {"device": device}})
    assert ev is not None, f"no {event} for {device}"
    return ev
