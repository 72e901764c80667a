"""The patch queue and the source fetch stop with one clear message on bad
input, and never delete work that was not exported."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
QUEUE = TOP / "scripts" / "patch-queue.sh"
FETCH = TOP / "scripts" / "fetch-qemu-source.sh"
CACHE = Path(os.environ.get("QEMU_SRC_CACHE",
                            Path.home() / ".cache" / "qemu-open-hook"))


def queue(cmd, tmp_path, **env):
    full_env = dict(os.environ, QEMU_TREE=str(tmp_path / "qemu"), **env)
    return subprocess.run([QUEUE, cmd], env=full_env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def git(tree, *args):
    subprocess.run(["git", "-C", tree, *args], check=True,
                   stdout=subprocess.DEVNULL)


@pytest.fixture
def tree(tmp_path):
    """A build/qemu of its own: base + patches/series."""
    result = queue("tree", tmp_path)
    assert result.returncode == 0, result.stdout
    return tmp_path / "qemu"


def test_tree_is_base_plus_series(tree):
    series = [l for l in (TOP / "patches" / "series").read_text().split() if l]
    log = subprocess.run(["git", "-C", tree, "rev-list", "--count", "base..HEAD"],
                         text=True, stdout=subprocess.PIPE, check=True)
    assert int(log.stdout) == len(series)


def test_refuses_uncommitted_changes_and_force_moves_aside(tree, tmp_path):
    (tree / "VERSION").write_text("my unsaved edit\n")
    result = queue("tree", tmp_path)
    assert result.returncode != 0
    assert "uncommitted changes in build/qemu" in result.stdout
    assert "make export-patches" in result.stdout
    assert (tree / "VERSION").read_text() == "my unsaved edit\n"

    result = queue("tree", tmp_path, FORCE="1")
    assert result.returncode == 0, result.stdout
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("qemu.aside-")]
    assert len(aside) == 1
    assert (aside[0] / "VERSION").read_text() == "my unsaved edit\n"


def test_refuses_unexported_commit(tree, tmp_path):
    (tree / "NEWFILE").write_text("work\n")
    git(tree, "add", "NEWFILE")
    git(tree, "commit", "-q", "-m", "unexported work")
    result = queue("tree", tmp_path)
    assert result.returncode != 0
    assert "differ from patches/" in result.stdout
    assert (tree / "NEWFILE").exists()


def test_patch_that_does_not_apply(tmp_path):
    patches = tmp_path / "patches"
    patches.mkdir()
    (patches / "0001-broken.patch").write_text(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: A <a@example.org>\nDate: Thu, 1 Jan 2026 00:00:00 +0000\n"
        "Subject: [PATCH] broken\n\n---\n"
        "diff --git a/VERSION b/VERSION\n--- a/VERSION\n+++ b/VERSION\n"
        "@@ -1 +1 @@\n-0.0.0-not-this-version\n+1.0.0\n")
    (patches / "series").write_text("0001-broken.patch\n")
    result = queue("tree", tmp_path, PATCHES_DIR=str(patches))
    assert result.returncode != 0
    assert "patches/0001-broken.patch does not apply" in result.stdout


def test_wrong_checksum_is_refused(tmp_path):
    if not all((CACHE / n).exists() for n in
               ("qemu_7.2+dfsg-7+deb12u18.dsc", "qemu_7.2+dfsg.orig.tar.xz")):
        pytest.skip("the pinned source is not cached on this machine yet")
    cache = tmp_path / "cache"
    cache.mkdir()
    for f in CACHE.glob("qemu_7.2+dfsg*"):
        shutil.copy(f, cache / f.name)
    sums = tmp_path / "sums"
    good = (TOP / "qemu-source.sha256").read_text()
    sums.write_text(good.replace(good[:8], "00000000", 1))
    env = dict(os.environ, QEMU_SRC_CACHE=str(cache), QEMU_SOURCE_SUMS=str(sums))
    result = subprocess.run([FETCH, tmp_path / "src"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert result.returncode != 0
    assert "checksum mismatch" in result.stdout
    assert not (tmp_path / "src").exists()


def test_qemu_src_that_is_not_qemu(tmp_path):
    (tmp_path / "notqemu").mkdir()
    env = dict(os.environ, QEMU_SRC=str(tmp_path / "notqemu"))
    result = subprocess.run([FETCH, tmp_path / "src"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert result.returncode != 0
    assert "does not look like a QEMU tree" in result.stdout
