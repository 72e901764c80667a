"""Fixtures of the end-to-end tests: the guest, KVM or TCG, one workspace
per test, and guests that are always shut down."""

import contextlib
import os
import re
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

_session = {}


def _guest():
    """The guest, built once if missing (apt-get download + dpkg-deb -x)."""
    if "guest" not in _session:
        _session["guest"] = h.guest_files() or h.build_guest()
    return _session["guest"]


def _accel():
    if "accel" not in _session:
        _session["accel"] = h.choose_accel(_guest(), os.path.join(h.BUILD, "e2e"))
    return _session["accel"]


def pytest_report_header(config):
    lines = []
    missing = h.missing_binaries()
    if os.access(h.QEMU, os.X_OK):
        lines.append(f"e2e: QEMU {h.QEMU}: -open-hook-fd "
                     + ("present" if h.qemu_has_open_hook() else "ABSENT"))
    lines.append(f"e2e: broker {h.BROKER}: "
                 + ("present" if os.access(h.BROKER, os.X_OK) else "ABSENT"))
    lines.append(f"e2e: Landlock ABI {h.landlock_abi() or 'none'}")
    if missing:
        lines.append("e2e: missing: " + ", ".join(missing))
    if os.access(h.QEMU, os.X_OK):
        guest = _guest()
        lines.append(f"e2e: guest {guest['kernel_package']} {guest['kernel_version']} "
                     f"(virtio_blk {guest['virtio_blk']}), busybox {guest['busybox_version']}")
        lines.append(f"e2e: accelerator {_accel()}")
    return lines


@pytest.fixture(scope="session")
def guest_info():
    if not os.access(h.QEMU, os.X_OK):
        pytest.skip(f"{h.QEMU} is not built (make qemu)")
    return _guest()


@pytest.fixture(scope="session")
def accel(guest_info):
    return _accel()


@pytest.fixture(scope="session")
def open_hook(guest_info):
    """Skip when the feature under test is not there at all."""
    missing = h.missing_binaries()
    if missing:
        pytest.skip("not built: " + ", ".join(missing) + " (make all)")
    if not h.qemu_has_open_hook():
        pytest.skip("qemu-system-x86_64 has no -open-hook-fd (patch series not applied)")
    return True


@pytest.fixture(scope="session")
def sandbox(open_hook):
    if not h.landlock_abi():
        pytest.skip("the kernel has no Landlock: open-hook-server --sandbox cannot confine")
    return True


def _session_dir():
    """build/e2e/runs/session-PID: two runs at once (make check and a
    developer) must not share workspaces.  Dirs of finished runs go."""
    if "dir" not in _session:
        runs = os.path.join(h.BUILD, "e2e", "runs")
        os.makedirs(runs, exist_ok=True)
        for entry in os.listdir(runs):
            m = re.fullmatch(r"session-(\d+)", entry)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                shutil.rmtree(os.path.join(runs, entry), ignore_errors=True)
        _session["dir"] = os.path.join(runs, f"session-{os.getpid()}")
        latest = os.path.join(runs, "latest")
        if os.path.islink(latest) or not os.path.exists(latest):
            with contextlib.suppress(OSError):
                os.unlink(latest)
            os.symlink(os.path.basename(_session["dir"]), latest)
    return _session["dir"]


@pytest.fixture
def ws(request, guest_info):
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_",
                  f"{request.node.module.__name__}.{request.node.name}")
    workspace = h.Workspace(os.path.join(_session_dir(), name), guest_info)
    yield workspace
    workspace.cleanup()
    # Shown by pytest for a failing test only.
    print(f"--- workspace {workspace.root}\n--- audit log:\n{workspace.audit.dump()}")


@pytest.fixture
def make_guest(ws, accel):
    guests = []

    def make(**kwargs):
        guest = h.Guest(ws, accel, **kwargs)
        guests.append(guest)
        return guest

    yield make
    for guest in guests:
        guest.shutdown()
        print(f"--- {guest.name}: QEMU/launcher output:\n{guest.log()}\n"
              f"--- {guest.name}: {guest.transcript(60)}")
