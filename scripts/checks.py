#!/usr/bin/python3
"""Project-level checks that write JUnit XML, and the summary of them all.

  checks.py patches JUNIT_DIR     the series applies with git am, and
                                  checkpatch.pl is clean on every patch
  checks.py roundtrip JUNIT_DIR   qemu-tree then export-patches gives
                                  patches/ back byte for byte
  checks.py summary JUNIT_DIR SUITE...
                                  counts every test case of every XML file;
                                  a suite without XML counts as one failure
"""

import filecmp
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
BUILD = TOP / "build"


class Suite:
    """Test cases collected for one JUnit file."""

    def __init__(self, name):
        self.name = name
        self.root = ET.Element("testsuite", name=name)

    def case(self, name, failure=None, seconds=0.0):
        tc = ET.SubElement(self.root, "testcase", classname=self.name,
                           name=name, time=f"{seconds:.3f}")
        if failure is not None:
            ET.SubElement(tc, "failure", message=failure.splitlines()[0]
                          if failure else "failed").text = failure
        status = "FAIL" if failure is not None else "ok"
        print(f"{status:4} {self.name}: {name}")
        if failure:
            print("     " + failure.replace("\n", "\n     "))

    def write(self, junit_dir):
        cases = self.root.findall("testcase")
        self.root.set("tests", str(len(cases)))
        self.root.set("failures",
                      str(sum(1 for c in cases if c.find("failure") is not None)))
        junit_dir.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(self.root).write(junit_dir / f"{self.name}.xml",
                                        encoding="utf-8", xml_declaration=True)
        return self.root.get("failures") == "0"


def run(cmd, **kwargs):
    """Runs cmd; returns (ok, combined output)."""
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kwargs)
    return proc.returncode == 0, proc.stdout, time.monotonic() - start


def series():
    path = TOP / "patches" / "series"
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def check_patches(junit_dir):
    suite = Suite("check-patches")
    tree = BUILD / "check-patches" / "qemu"
    ok, out, secs = run([TOP / "scripts" / "patch-queue.sh", "apply-check", tree])
    suite.case("series applies to base with git am", None if ok else out, secs)
    checkpatch = (tree if ok else BUILD / "qemu-pristine") / "scripts" / "checkpatch.pl"
    for name in series():
        ok, out, secs = run(["perl", checkpatch, "--no-summary", "--terse",
                             TOP / "patches" / name], cwd=checkpatch.parent.parent)
        # A clean patch prints nothing: warnings count as failures too.
        clean = ok and not out.strip()
        suite.case(f"checkpatch {name}", None if clean else out or "failed", secs)
    return suite.write(junit_dir)


def check_roundtrip(junit_dir):
    suite = Suite("patch-roundtrip")
    work = BUILD / "roundtrip"
    env = dict(os.environ, QEMU_TREE=str(work / "qemu"),
               PATCHES_OUT=str(work / "patches"), FORCE="1")
    subprocess.run(["rm", "-rf", work], check=True)
    ok, out, secs = run([TOP / "scripts" / "patch-queue.sh", "tree"], env=env)
    if ok:
        ok, out2, secs2 = run([TOP / "scripts" / "patch-queue.sh", "export"], env=env)
        out, secs = out + out2, secs + secs2
    if ok:
        names = series() + ["series"]
        match, mismatch, errors = filecmp.cmpfiles(
            TOP / "patches", work / "patches", names, shallow=False)
        extra = sorted(set(os.listdir(work / "patches")) - set(names))
        if mismatch or errors or extra:
            ok = False
            out = f"differs: {mismatch + errors}; extra: {extra}"
    suite.case("export-patches after qemu-tree reproduces patches/",
               None if ok else out, secs)
    return suite.write(junit_dir)


def summary(junit_dir, expected):
    passed = failed = skipped = 0
    seen = set()
    for path in sorted(junit_dir.glob("*.xml")):
        seen.add(path.stem)
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as err:
            print(f"FAIL {path.name}: unreadable JUnit XML: {err}")
            failed += 1
            continue
        for tc in root.iter("testcase"):
            if tc.find("failure") is not None or tc.find("error") is not None:
                failed += 1
                print(f"FAIL {path.stem}: {tc.get('classname')} {tc.get('name')}")
            elif tc.find("skipped") is not None:
                skipped += 1
            else:
                passed += 1
    for name in expected:
        if name not in seen:
            print(f"FAIL {name}: the suite produced no result")
            failed += 1
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return failed == 0 and passed > 0


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    junit_dir = Path(argv[2])
    if argv[1] == "patches":
        ok = check_patches(junit_dir)
    elif argv[1] == "roundtrip":
        ok = check_roundtrip(junit_dir)
    elif argv[1] == "summary":
        ok = summary(junit_dir, argv[3:])
    else:
        sys.exit(__doc__)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main(sys.argv)
