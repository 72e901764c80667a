"""The benchmark table, its targets, and the smoke test of it."""

import math
from xml.sax.saxutils import quoteattr


class Row:
    """One line of the table; measurements are plain attributes.

    p50_us, p99_us, ops, tail (p99/p50): round trips; cpu_us: the server's
    CPU time per request.  wall_ms: median wall
    time of a program run.  bytes_per_client: resident memory.  lat_ratio,
    ops_ratio, floor_ratio: median of per-round ratios to the IPC floor;
    checked_ratio: p50 (wall time in section 4) to the floor with a careful
    broker's system calls;
    wall_ratio: to running directly.  goal: which target of the issue the
    row is judged by (see judge), or None.
    """

    NUMBERS = ("p50_us", "p99_us", "ops", "cpu_us", "tail", "lat_ratio", "ops_ratio",
               "wall_ms", "wall_ratio", "floor_ratio", "checked_ratio",
               "bytes_per_client")

    def __init__(self, section, label, **values):
        self.section = section
        self.label = label
        self.skipped = False
        self.errors = 0
        self.exits = []
        self.sanity = None
        self.ratio_iqr = None
        self.noise_iqr = None
        self.goal = None
        self.targets = []          # (text, met)
        for name in self.NUMBERS:
            setattr(self, name, None)
        for name, value in values.items():
            setattr(self, name, value)

    def expect(self, text, met):
        self.targets.append((text, bool(met)))


# --- Targets of the issue, judged on ratios from the same run ---------------

def judge(rows):
    for row in rows:
        if row.goal == "rtt":
            row.expect("p50 <= 1.15x floor", row.lat_ratio <= 1.15)
            row.expect("p99 <= 2x p50", row.tail <= 2.0)
        elif row.goal == "throughput":
            row.expect("ops/s >= 0.90x floor", row.ops_ratio >= 0.90)
        elif row.goal == "idle":
            row.expect("<= 8 KiB/client", row.bytes_per_client <= 8192)
        elif row.goal == "chain":
            row.expect("<= 1.10x direct", row.wall_ratio <= 1.10)
        elif row.goal == "io":
            row.expect("1.00 within noise", within_noise(row))


def within_noise(row):
    """Brokered/direct cannot be told from direct/direct: the interquartile
    ranges of the per-round ratios overlap, or the median is within 1%."""
    q1, q3 = row.ratio_iqr
    n1, n3 = row.noise_iqr
    return (q1 <= n3 and n1 <= q3) or abs(row.wall_ratio - 1.0) <= 0.01


# --- Rendering ----------------------------------------------------------------

COLUMNS = ("#", "measurement", "median", "p99", "p99/p50", "ops/s",
           "server CPU/req", "ratio (same run)", "target", "met")


def fmt(value, spec, suffix=""):
    return "" if value is None else format(value, spec) + suffix


def median_cell(row):
    if row.p50_us is not None:
        return fmt(row.p50_us, ".2f", " us")
    if row.wall_ms is not None:
        return fmt(row.wall_ms, ".1f", " ms")
    return fmt(row.bytes_per_client, ".0f", " B/client")


def ratio_cell(row):
    if row.lat_ratio is not None:
        text = "p50 %.3fx, ops/s %.3fx floor" % (row.lat_ratio, row.ops_ratio)
        if row.checked_ratio is not None:
            text += "; p50 %.3fx checked floor" % row.checked_ratio
        return text
    if row.wall_ratio is None:
        return ""
    text = "%.3fx direct" % row.wall_ratio
    if row.floor_ratio is not None:
        text += ", %.3fx floor" % row.floor_ratio
    if row.checked_ratio is not None:
        text += ", %.3fx checked floor" % row.checked_ratio
    if row.ratio_iqr:
        text += " (IQR %.3f-%.3f)" % row.ratio_iqr
    return text


def cells(row):
    return [row.section, row.label, median_cell(row),
            fmt(row.p99_us, ".2f", " us"), fmt(row.tail, ".2f"),
            fmt(row.ops, ".0f"), fmt(row.cpu_us, ".2f", " us"), ratio_cell(row),
            "; ".join(t for t, _ in row.targets),
            "; ".join("yes" if met else "NO" for _, met in row.targets)]


def render_table(rows, facts):
    judge(rows)
    grid = [list(COLUMNS)] + [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(COLUMNS))]

    def line(values):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"

    out = [line(grid[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(values) for values in grid[1:]]
    out.append("")
    out.append("Machine: " + facts)
    return "\n".join(out)


# --- Smoke test: is the table complete and are its values sane? --------------

class Check:
    def __init__(self, name, failure=None, skipped=None):
        self.name = name
        self.failure = failure
        self.skipped = skipped


def insane_values(row):
    """Problems with a row's numbers; empty when they look like measurements."""
    problems = []
    for name in Row.NUMBERS:
        value = getattr(row, name)
        if value is None:
            continue
        if not math.isfinite(value) or value < 0:
            problems.append("%s = %r" % (name, value))
        elif name.endswith("ratio") and not 0.01 < value < 100:
            problems.append("%s = %.3f is no plausible ratio" % (name, value))
    if row.p50_us is not None and not 0 < row.p50_us <= row.p99_us:
        problems.append("p50 %.3f us, p99 %.3f us" % (row.p50_us, row.p99_us))
    if row.ops is not None and row.ops <= 0:
        problems.append("no operations completed")
    if row.errors:
        problems.append("%d requests refused" % row.errors)
    if any(row.exits):
        problems.append("--fd server exit statuses %s" % row.exits)
    return problems


def chain_problems(sanity, depth):
    problems = []
    if not sanity["same_output"]:
        problems.append("brokered qemu-img info output differs from direct")
    if sanity["images_listed"] != depth:
        problems.append("%d images listed, chain is %d deep"
                        % (sanity["images_listed"], depth))
    if sanity["broker_requests"] < depth:
        problems.append("broker audited %d requests for %d images"
                        % (sanity["broker_requests"], depth))
    return problems


EXPECTED_ROWS = {"1": 1, "2": 9, "3": 9, "4": 5, "5": 6}


def check_rows(rows, size):
    checks = []
    for row in rows:
        name = "row %s: %s" % (row.section, row.label)
        if row.skipped and row.section in ("4", "5"):
            checks.append(Check(name, skipped=row.label))
            continue
        if row.skipped:
            checks.append(Check("benchmark ran", failure=row.label))
            continue
        problems = insane_values(row)
        if row.sanity:
            problems += chain_problems(row.sanity, row.depth)
        checks.append(Check(name, failure="; ".join(problems) or None))
    checks.append(completeness(rows))
    return checks


def completeness(rows):
    qemu_skipped = any(r.skipped and r.section == "4" for r in rows)
    missing = []
    for section, count in EXPECTED_ROWS.items():
        if qemu_skipped and section in ("4", "5"):
            continue
        have = sum(1 for r in rows if r.section == section and not r.skipped)
        if have != count:
            missing.append("section %s has %d rows, expected %d" % (section, have, count))
    return Check("table has every row", failure="; ".join(missing) or None)


def write_junit(path, suite, checks):
    failures = sum(1 for c in checks if c.failure)
    skipped = sum(1 for c in checks if c.skipped)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<testsuite name=%s tests="%d" failures="%d" errors="0" skipped="%d">'
           % (quoteattr(suite), len(checks), failures, skipped)]
    for c in checks:
        out.append('  <testcase classname=%s name=%s>'
                   % (quoteattr(suite), quoteattr(c.name)))
        if c.failure:
            out.append('    <failure message=%s/>' % quoteattr(c.failure))
        if c.skipped:
            out.append('    <skipped message=%s/>' % quoteattr(c.skipped))
        out.append('  </testcase>')
    out.append('</testsuite>')
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
