#!/usr/bin/python3
"""Runs the open-hook benchmarks and prints one table.

Every comparison is made inside one run: the IPC floor and the broker are
both running while the load alternates between them, round after round, and
each ratio is the median of the per-round ratios, so that a burst of load from
elsewhere on the machine hits both sides alike.  See docs/performance.md.
"""

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_report import Row, render_table, check_rows, write_junit  # noqa: E402
from bench_stats import median, paired_ratios, quartiles  # noqa: E402

SIZES = {
    # rounds: IPC rounds; seconds/warmup: one IPC measurement window;
    # chain_rounds, io_rounds: rounds of qemu-img runs, every variant once
    # per round; io_count: requests per qemu-img bench run.
    "full": dict(rounds=9, seconds=1.0, warmup=0.2, idle_clients=1000,
                 chain_depth=100, chain_rounds=31, io_rounds=11,
                 io_count=100000, io_image_mib=256),
    "tiny": dict(rounds=1, seconds=0.05, warmup=0.02, idle_clients=1000,
                 chain_depth=100, chain_rounds=2, io_rounds=2,
                 io_count=2000, io_image_mib=16),
}
CONCURRENCY = (1, 16, 256)
SERVERS = ("floor", "broker")
# The IPC rows also run the broker without --audit (what the audit log
# costs), and the floor with the system calls a careful broker cannot avoid
# (ipc_floor_server.c, --checked): what is left is the broker's own code.
IPC_SERVERS = ("floor", "floor-checked", "broker", "broker-noaudit")
SERVER_NAMES = {"floor": "IPC floor", "broker": "broker",
                "floor-checked": "IPC floor + a careful broker's syscalls",
                "broker-noaudit": "broker without audit"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(argv, **kw):
    """Runs a command to completion; its failure ends the benchmark."""
    return subprocess.run(argv, check=True, **kw)


# --- Workspace ---------------------------------------------------------------

class Workspace:
    """Files the benchmark opens, and the broker's policy for them."""

    def __init__(self, root, qemu_img, size):
        self.root = root
        self.qemu_img = qemu_img
        self.size = size
        self.target = os.path.join(root, "files", "target.img")
        self.chain_dir = os.path.join(root, "chain")
        self.io_image = os.path.join(root, "io", "bench.raw")
        self.policy = os.path.join(root, "policy.txt")
        self.audit = os.path.join(root, "audit.jsonl")
        self.floor_audit = os.path.join(root, "floor-audit.jsonl")
        self.logs = os.path.join(root, "logs")

    def chain_top(self):
        return self.chain_image(self.size["chain_depth"] - 1)

    def chain_image(self, i):
        return os.path.join(self.chain_dir, "layer%03d.qcow2" % i)

    def prepare(self):
        for d in ("files", "chain", "io", "logs"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        with open(self.target, "wb") as f:
            f.write(b"open-hook benchmark target\n")
        self._make_chain()
        self._make_io_image()
        with open(self.policy, "w") as f:
            f.write(self.policy_text())

    def _make_chain(self):
        """A qcow2 chain: layerNNN is backed by layer(NNN-1), relative names."""
        depth = self.size["chain_depth"]
        done = os.path.join(self.chain_dir, "depth-%d.done" % depth)
        if os.path.exists(done):
            return
        run([self.qemu_img, "create", "-q", "-f", "qcow2",
             self.chain_image(0), "1M"])
        for i in range(1, depth):
            run([self.qemu_img, "create", "-q", "-f", "qcow2",
                 "-b", os.path.basename(self.chain_image(i - 1)),
                 "-F", "qcow2", self.chain_image(i)])
        open(done, "w").close()

    def _make_io_image(self):
        """Written out in full: reading holes would not touch the page cache."""
        size = self.size["io_image_mib"] << 20
        if os.path.exists(self.io_image) and os.path.getsize(self.io_image) == size:
            return
        block = bytes(range(256)) * 4096
        with open(self.io_image, "wb") as f:
            for _ in range(size // len(block)):
                f.write(block)

    def policy_text(self):
        """About 100 rules of a host with many guests, tree and exact.

        The broker opens each rule's directory when it loads the policy, so
        the other guests' directories are made here too.  The rules this
        benchmark uses come last, so that a broker that scans its rules in
        order pays for every one of them.
        """
        srv = os.path.join(self.root, "srv")
        images = os.path.join(srv, "images")
        guests = [os.path.join(srv, "guests", "vm%02d" % i) for i in range(30)]
        for d in [images] + [os.path.join(g, "snapshots") for g in guests]:
            os.makedirs(d, exist_ok=True)
        lines = ["# open-hook benchmark policy (generated by bench/run_bench.py)",
                 "mode 0600", "dev /dev/kvm"]
        lines += ["ro %s/base-%02d.qcow2" % (images, i) for i in range(40)]
        lines += ["rw %s/" % g for g in guests]
        lines += ["create %s/snapshots/" % g for g in guests[:10]]
        lines += ["deny %s/secrets/" % g for g in guests[:10]]
        lines += ["ro %s/" % images,
                  "deny %s/files/secret.img" % self.root,
                  "ro %s/" % self.chain_dir,
                  "rw %s" % self.io_image,
                  "ro %s" % self.target]
        return "\n".join(lines) + "\n"


# --- Servers -----------------------------------------------------------------

class Tools:
    """Where the programs are, and the command lines that start servers."""

    def __init__(self, args, ws):
        self.ws = ws
        self.client = os.path.join(args.tools, "bench-client")
        self.floor = os.path.join(args.tools, "ipc-floor-server")
        self.broker = args.broker or os.path.join(args.bin, "open-hook-server")
        self.qemu_img = ws.qemu_img

    def broker_args(self, audit=True):
        argv = [self.broker, "--policy", self.ws.policy]
        return argv + (["--audit", self.ws.audit] if audit else [])

    def server_argv(self, which, mode, where):
        """MODE is --fd or --listen; WHERE its argument."""
        if which == "floor":
            base = [self.floor]
        elif which == "floor-checked":
            base = [self.floor, "--checked", self.ws.floor_audit]
        else:
            base = self.broker_args(audit=which != "broker-noaudit")
        return base + [mode, str(where)]


def wait_for_socket(path, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %d before listening on %s"
                               % (proc.returncode, path))
        if os.path.exists(path):
            return
        time.sleep(0.01)
    raise RuntimeError("server did not listen on %s" % path)


class Daemon:
    """A server in --listen mode, running for the whole comparison."""

    def __init__(self, tools, which, name=None):
        ws = tools.ws
        self.name = name or which
        self.socket = os.path.join(ws.root, "%s.sock" % self.name)
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.log = open(os.path.join(ws.logs, "%s.log" % self.name), "wb")
        self.proc = subprocess.Popen(tools.server_argv(which, "--listen", self.socket),
                                     stdout=self.log, stderr=self.log)
        try:
            wait_for_socket(self.socket, self.proc)
        except RuntimeError:
            self.proc.kill()
            self.proc.wait()
            self.log.close()
            raise

    def stop(self):
        if self.proc.poll() is not None:
            self.log.close()
            raise RuntimeError("%s daemon died with %d (see %s)"
                               % (self.name, self.proc.returncode, self.log.name))
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


@contextlib.contextmanager
def running(tools, names):
    """Daemons for NAMES ({which: name}), all stopped however the block ends,
    also when one of them fails to start."""
    daemons = {}
    try:
        for which, name in names.items():
            daemons[which] = Daemon(tools, which, name=name)
        yield daemons
    finally:
        stop_all(daemons.values())


def stop_all(daemons):
    """Stops every daemon, then reports the first that had died."""
    errors = []
    for d in daemons:
        try:
            d.stop()
        except RuntimeError as e:
            errors.append(e)
    if errors:
        raise errors[0]


def truncate_audit(ws):
    """Keeps the audit logs from growing over the run; the servers append."""
    for path in (ws.audit, ws.floor_audit):
        if os.path.exists(path):
            os.truncate(path, 0)


def client_json(argv, **kw):
    return json.loads(run(argv, stdout=subprocess.PIPE, **kw).stdout)


def measure_socketpair(tools, which, window):
    """One client on a socketpair, the server in --fd mode (the launcher's case)."""
    mine, theirs = socket.socketpair()
    with open(os.path.join(tools.ws.logs, "%s-fd.log" % which), "ab") as log:
        server = subprocess.Popen(tools.server_argv(which, "--fd", theirs.fileno()),
                                  pass_fds=[theirs.fileno()], stdout=log, stderr=log)
        theirs.close()
        try:
            result = client_json([tools.client, "rtt", "--fd", str(mine.fileno()),
                                  "--path", tools.ws.target] + window,
                                 pass_fds=[mine.fileno()])
        finally:
            mine.close()
        # At EOF the server must exit by itself, and cleanly.
        _, status, usage = os.wait4(server.pid, 0)
        server.returncode = os.waitstatus_to_exitcode(status)
    result["server_exit"] = server.returncode
    result["server_cpu_s"] = usage.ru_utime + usage.ru_stime
    return result


def cpu_seconds(pid):
    """Time PID has spent on a CPU (user and kernel), from the scheduler."""
    with open("/proc/%d/schedstat" % pid) as f:
        return int(f.read().split()[0]) / 1e9


def measure_daemon(tools, daemon, clients, window):
    before = cpu_seconds(daemon.proc.pid)
    result = client_json([tools.client, "rtt", "--socket", daemon.socket,
                          "--clients", str(clients), "--path", tools.ws.target]
                         + window)
    result["server_cpu_s"] = cpu_seconds(daemon.proc.pid) - before
    return result


# --- CPU placement -------------------------------------------------------------
#
# On this kind of machine (a VM), waking a task on another, idle vCPU costs
# some 40 us and its tail is in milliseconds, against 5 us for a whole round
# trip on one CPU; left to the scheduler, a run lands in one mode or the other
# and stays there.  So placement is fixed, the same for floor and broker:
# one client shares the server's CPU (the round trip's own cost is measured),
# many clients have the other CPU (the server gets a CPU of its own).

def cpu_plan():
    cpus = sorted(os.sched_getaffinity(0))
    return {"server": cpus[-1], "client": cpus[0]}


@contextlib.contextmanager
def placed(cpu):
    """Runs the block, and the children it starts, on CPU."""
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def measure_case(tools, daemons, which, case, clients, window):
    cpus = cpu_plan()
    if case == "socketpair":
        # The --fd server is started inside, so it inherits the placement.
        with placed(cpus["server"]):
            return measure_socketpair(tools, which, window)
    daemon = daemons[which]
    os.sched_setaffinity(daemon.proc.pid, {cpus["server"]})
    with placed(cpus["server"] if clients == 1 else cpus["client"]):
        return measure_daemon(tools, daemon, clients, window)


# --- Measurements ------------------------------------------------------------

def ipc_cases():
    """(case name, concurrency) in the order the rows are printed."""
    return [("socketpair", 1)] + [("daemon", c) for c in CONCURRENCY]


def measure_ipc(tools, size):
    """Rounds of: direct open, then every case on floor and broker in turn."""
    window = ["--warmup", str(size["warmup"]), "--seconds", str(size["seconds"])]
    samples = {"direct": []}
    with running(tools, {which: which for which in IPC_SERVERS}) as daemons:
        for r in range(size["rounds"]):
            log("ipc round %d/%d" % (r + 1, size["rounds"]))
            with placed(cpu_plan()["server"]):
                samples["direct"].append(client_json(
                    [tools.client, "direct", "--path", tools.ws.target] + window))
            # Rotate who goes first, so none always runs just after
            # another has warmed (or thrashed) the caches.
            k = r % len(IPC_SERVERS)
            order = IPC_SERVERS[k:] + IPC_SERVERS[:k]
            for case, clients in ipc_cases():
                for which in order:
                    samples.setdefault((which, case, clients), []).append(
                        measure_case(tools, daemons, which, case, clients, window))
            truncate_audit(tools.ws)
    return samples


def measure_idle(tools, size):
    """Resident memory per idle client, on fresh daemons."""
    result = {}
    for which in SERVERS:
        with running(tools, {which: "%s-idle" % which}) as daemons:
            result[which] = client_json(
                [tools.client, "idle", "--socket", daemons[which].socket,
                 "--clients", str(size["idle_clients"]),
                 "--path", tools.ws.target, "--pid", str(daemons[which].proc.pid)])
    return result


def spawn_timed(argv, hook_sock=None, stdout=None):
    """Wall time of one run of ARGV in seconds; HOOK_SOCK becomes its fd 3."""
    actions = []
    if hook_sock is not None:
        fd = hook_sock.fileno()
        assert fd != 3, "dup2(3, 3) would leave close-on-exec set"
        actions.append((os.POSIX_SPAWN_DUP2, fd, 3))
    out = stdout or os.open(os.devnull, os.O_WRONLY)
    actions.append((os.POSIX_SPAWN_DUP2, out, 1))
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - start
    if stdout is None:
        os.close(out)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("%s failed with status %d" % (" ".join(argv), status))
    return elapsed


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


# Ways to run qemu-img: how it opens files, and "/1cpu": it and the daemon
# it talks to share one CPU.  Every variant is placed so: left to the
# scheduler, the same direct run of qemu-img info took 12 to 58 ms depending
# on where its threads landed (see "CPU placement"), which drowns the
# 1-2 ms that brokering costs.
CHAIN_VARIANTS = ("direct/1cpu", "floor/1cpu", "floor-checked/1cpu", "broker/1cpu",
                  "launcher/1cpu")
QEMU_SERVERS = ("floor", "floor-checked", "broker")


class QemuVariants:
    """qemu-img run directly, on a daemon's connection, or launched."""

    def __init__(self, tools, daemons):
        self.tools = tools
        self.daemons = daemons

    def run(self, variant, qemu_args, stdout=None):
        how, _, where = variant.partition("/")
        if not where:
            return self._spawn(how, qemu_args, stdout)
        cpu = cpu_plan()["server"]
        daemon = self.daemons.get(how)
        spread = os.sched_getaffinity(0)
        if daemon:
            os.sched_setaffinity(daemon.proc.pid, {cpu})
        try:
            with placed(cpu):
                return self._spawn(how, qemu_args, stdout)
        finally:
            if daemon:
                os.sched_setaffinity(daemon.proc.pid, spread)

    def _spawn(self, how, qemu_args, stdout):
        img = self.tools.qemu_img
        if how in ("direct", "control"):
            return spawn_timed([img] + qemu_args, stdout=stdout)
        hooked = [img, "--open-hook-fd", "3"] + qemu_args
        if how == "launcher":
            return spawn_timed(self.tools.broker_args() + ["--"] + hooked,
                               stdout=stdout)
        with connect(self.daemons[how].socket) as sock:
            return spawn_timed(hooked, hook_sock=sock, stdout=stdout)


def hook_support(tools):
    """None if qemu-img takes --open-hook-fd, else the reason it cannot."""
    if not os.path.exists(tools.broker):
        return "no broker at %s" % tools.broker
    probe = subprocess.run([tools.qemu_img, "--open-hook-fd", "0", "--version"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = probe.stdout.decode(errors="replace")
    if "unrecognized option" in text or "invalid option" in text:
        return "qemu-img does not take --open-hook-fd yet"
    return None


def output_of(qemu, variant, qemu_args):
    """Runs qemu-img once and returns what it printed."""
    path = os.path.join(qemu.tools.ws.logs,
                        "qemu-%s.out" % variant.replace("/", "-"))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        qemu.run(variant, qemu_args, stdout=fd)
    finally:
        os.close(fd)
    with open(path) as f:
        return f.read()


def chain_sanity(qemu, ws, info_args):
    """Brokered output must match direct, and the broker must have served it."""
    direct = output_of(qemu, "direct", info_args)
    truncate_audit(ws)
    brokered = output_of(qemu, "broker", info_args)
    served = 0
    if os.path.exists(ws.audit):
        with open(ws.audit, errors="replace") as f:
            served = sum(1 for line in f if ws.chain_dir in line)
    return {"same_output": direct == brokered,
            "images_listed": direct.count("image: "),
            "broker_requests": served}


def measure_chain(qemu, ws, size):
    info_args = ["info", "--backing-chain", ws.chain_top()]
    result = {"sanity": chain_sanity(qemu, ws, info_args)}
    times = {v.partition("/")[0]: [] for v in CHAIN_VARIANTS}
    for r in range(size["chain_rounds"]):
        # Rotate the order: no variant always follows the same one.
        k = r % len(CHAIN_VARIANTS)
        for v in CHAIN_VARIANTS[k:] + CHAIN_VARIANTS[:k]:
            times[v.partition("/")[0]].append(qemu.run(v, info_args))
    result["times"] = times
    return result


def bench_seconds(qemu, variant, args):
    """qemu-img bench times its I/O loop itself, leaving out start-up."""
    for line in output_of(qemu, variant, args).splitlines():
        if line.startswith("Run completed in "):
            return float(line.split()[3])
    raise RuntimeError("qemu-img bench printed no 'Run completed' line")


# qemu-img bench is run on one CPU: left to the scheduler, its worker
# threads land on either vCPU and the same run varies by 2x.  "control" is
# direct again: the spread of direct against itself is the noise that
# "1.00 within noise" is judged by.
IO_VARIANTS = ("direct/1cpu", "control/1cpu", "broker/1cpu")


def measure_io(qemu, ws, size):
    result = {}
    for mode in ("read", "write"):
        args = ["bench", "-f", "raw", "-c", str(size["io_count"]), "-d", "16",
                "-s", "4096"] + (["-w"] if mode == "write" else []) + [ws.io_image]
        times = {v.partition("/")[0]: [] for v in IO_VARIANTS}
        for r in range(size["io_rounds"]):
            k = r % len(IO_VARIANTS)
            for v in IO_VARIANTS[k:] + IO_VARIANTS[:k]:
                times[v.partition("/")[0]].append(bench_seconds(qemu, v, args))
        result[mode] = times
    return result


def measure_qemu(tools, ws, size):
    reason = hook_support(tools)
    if reason:
        log("skipping QEMU rows: " + reason)
        return {"skipped": reason}
    with running(tools, {which: "%s-qemu" % which for which in QEMU_SERVERS}) as daemons:
        qemu = QemuVariants(tools, daemons)
        log("qemu-img info --backing-chain (%d deep)" % size["chain_depth"])
        chain = measure_chain(qemu, ws, size)
        log("qemu-img bench")
        io = measure_io(qemu, ws, size)
    return {"chain": chain, "io": io}


# --- Summary -----------------------------------------------------------------

def field(runs, name):
    return [r[name] for r in runs]


def ipc_rows(samples):
    rows = [Row("1", "direct open+close, in process",
                p50_us=median(field(samples["direct"], "p50_us")),
                p99_us=median(field(samples["direct"], "p99_us")),
                ops=median(field(samples["direct"], "ops_per_s")))]
    for which in IPC_SERVERS:
        for case, clients in ipc_cases():
            runs = samples[(which, case, clients)]
            floor = samples[("floor", case, clients)]
            checked = samples[("floor-checked", case, clients)]
            rows.append(ipc_row(which, case, clients, runs, floor, checked))
    return rows


def ipc_row(which, case, clients, runs, floor, checked):
    label = "%s, %s, %d client%s" % (
        SERVER_NAMES[which], case, clients, "" if clients == 1 else "s")
    row = Row("3" if which.startswith("broker") else "2", label,
              p50_us=median(field(runs, "p50_us")),
              p99_us=median(field(runs, "p99_us")),
              ops=median(field(runs, "ops_per_s")),
              cpu_us=median([r["server_cpu_s"] * 1e6 / r["requests"] for r in runs]),
              errors=sum(field(runs, "errors")),
              exits=[r.get("server_exit", 0) for r in runs])
    row.tail = median([r["p99_us"] / r["p50_us"] for r in runs])
    if which == "broker":
        row.goal = {1: "rtt", 16: "throughput"}.get(clients)
    if which != "floor":
        row.lat_ratio = median(paired_ratios(field(runs, "p50_us"),
                                             field(floor, "p50_us")))
        row.ops_ratio = median(paired_ratios(field(runs, "ops_per_s"),
                                             field(floor, "ops_per_s")))
    if which.startswith("broker"):
        row.checked_ratio = median(paired_ratios(field(runs, "p50_us"),
                                                 field(checked, "p50_us")))
    return row


def idle_rows(idle, clients):
    rows = []
    for which in SERVERS:
        res = idle[which]
        rows.append(Row("2" if which == "floor" else "3",
                        "%s, resident memory per idle client (%d)"
                        % (SERVER_NAMES[which], clients),
                        bytes_per_client=res["bytes_per_client"],
                        errors=res["errors"],
                        goal="idle" if which == "broker" else None))
    return rows


CHAIN_LABELS = {"direct": "direct", "floor": "through IPC floor daemon",
                "floor-checked": "through IPC floor + careful syscalls daemon",
                "broker": "through broker daemon",
                "launcher": "through broker launcher"}


def chain_rows(chain, depth):
    t = chain["times"]
    rows = []
    for how in t:
        label = "qemu-img info --backing-chain, %d deep, one CPU, %s" % (
            depth, CHAIN_LABELS[how])
        row = Row("4", label, wall_ms=median(t[how]) * 1e3)
        if how == "direct":
            row.sanity, row.depth = chain["sanity"], depth
        else:
            row.wall_ratio = median(paired_ratios(t[how], t["direct"]))
        if how in ("broker", "launcher"):
            # The launcher's runs include starting the broker (policy load,
            # fork, exec): a cost per VM, not per open, so not the target's.
            row.goal = "chain" if how == "broker" else None
            row.floor_ratio = median(paired_ratios(t[how], t["floor"]))
            row.checked_ratio = median(paired_ratios(t[how], t["floor-checked"]))
        rows.append(row)
    return rows


def io_rows(io):
    rows = []
    for mode in ("read", "write"):
        t = io[mode]
        base = "qemu-img bench %s, 4 KiB, depth 16, one CPU" % mode
        rows.append(Row("5", base + ", direct open", wall_ms=median(t["direct"]) * 1e3))
        control = io_ratio_row(base + ", direct again (noise)", t["control"], t["direct"])
        brokered = io_ratio_row(base + ", brokered fd", t["broker"], t["direct"])
        brokered.goal = "io"
        brokered.noise_iqr = control.ratio_iqr
        rows += [control, brokered]
    return rows


def io_ratio_row(label, times, direct):
    ratios = paired_ratios(times, direct)
    return Row("5", label, wall_ms=median(times) * 1e3,
               wall_ratio=median(ratios), ratio_iqr=quartiles(ratios))


def server_rows(tools, ws, size):
    """Rows 1-3: open round trips and idle clients."""
    return (ipc_rows(measure_ipc(tools, size)) +
            idle_rows(measure_idle(tools, size), size["idle_clients"]))


def qemu_rows(tools, ws, size):
    """Rows 4-5: qemu-img, when it takes --open-hook-fd."""
    qemu = measure_qemu(tools, ws, size)
    if "skipped" in qemu:
        return [Row("4", "qemu-img rows skipped: " + qemu["skipped"], skipped=True)]
    return chain_rows(qemu["chain"], size["chain_depth"]) + io_rows(qemu["io"])


def measure_all(tools, ws, size):
    """The table's rows; a failure becomes a row that the smoke test fails,
    and the other part of the table is still measured."""
    if not os.path.exists(tools.broker):
        return [Row("3", "no broker at %s (make broker)" % tools.broker,
                    skipped=True)]
    rows = []
    for part in (server_rows, qemu_rows):
        try:
            rows += part(tools, ws, size)
        except (OSError, RuntimeError, ValueError, KeyError,
                subprocess.SubprocessError) as e:
            log("benchmark failed: %r" % e)
            rows.append(Row("0", "benchmark failed: %s" % e, skipped=True))
    return rows


def machine_facts():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = open("/proc/loadavg").read().split()[:3]
    return "%s, %d CPUs, kernel %s, load average %s" % (
        cpu, os.cpu_count(), os.uname().release, " ".join(load))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=sorted(SIZES), default="full")
    p.add_argument("--bin", required=True, help="build/bin")
    p.add_argument("--tools", required=True, help="where bench-client is")
    p.add_argument("--work", required=True, help="scratch directory")
    p.add_argument("--broker", help="broker binary (default: BIN/open-hook-server)")
    p.add_argument("--rounds", type=int, help="override the IPC rounds")
    p.add_argument("--seconds", type=float, help="override the IPC window")
    p.add_argument("--junit", help="write a smoke-test JUnit XML here")
    p.add_argument("--prepare-only", action="store_true",
                   help="only make the files and the policy (for profile_broker.sh)")
    return p.parse_args()


def main():
    args = parse_args()
    size = dict(SIZES[args.size])
    for key in ("rounds", "seconds"):
        if getattr(args, key):
            size[key] = getattr(args, key)
    ws = Workspace(os.path.join(args.work, args.size),
                   os.path.join(args.bin, "qemu-img"), size)
    tools = Tools(args, ws)
    started = time.monotonic()
    load_before = open("/proc/loadavg").read().split()[0]
    ws.prepare()
    if args.prepare_only:
        return 0
    rows = measure_all(tools, ws, size)
    facts = "%s (load average at start %s); size %s; %.0f s" % (
        machine_facts(), load_before, args.size, time.monotonic() - started)
    table = render_table(rows, facts)
    print(table)
    with open(os.path.join(ws.root, "table.md"), "w") as f:
        f.write(table + "\n")
    checks = check_rows(rows, size)
    if args.junit:
        write_junit(args.junit, "bench-smoke", checks)
    failed = [c for c in checks if c.failure]
    for c in failed:
        log("FAILED %s: %s" % (c.name, c.failure))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
