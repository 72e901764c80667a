"""Results of one qemu-iotests `check` run: parse its log, write a
summary and JUnit XML, read a summary back.

`check` has no machine-readable output of its own that keeps the reason
why a test did not run (its -tap mode drops it), so we read the
human-readable log it prints with `--color off`.  Every test ends with
one status line:

    <name>  <pass|fail|not run>  [HH:MM:SS] [HH:MM:SS]  <secs>s|...  [(last: Xs)]  <detail>

optionally followed, for a failure, by a unified diff of the reference
output against the actual output, and for a test with skipped cases by
the list of those cases.

Summary file (ours), one test per line, tab-separated:

    <name> TAB <pass|fail|not run> TAB <seconds or -> TAB <detail>

followed, for a failed test, by at most MAX_OUTPUT_LINES lines of what
`check` printed about it (the diff), each as TAB '| ' <line>.  Lines
starting with '#' are comments (format, binaries, totals).
"""

import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Dict, List, Optional

STATUSES = ('pass', 'fail', 'not run')
MAX_OUTPUT_LINES = 60
OUTPUT_PREFIX = '\t| '

_STATUS_LINE = re.compile(
    r'^(?P<name>\S+)\s+(?P<status>pass|fail|not run)\s+'
    r'\[\d\d:\d\d:\d\d\]\s+\[\d\d:\d\d:\d\d\]\s+'
    r'(?:(?P<secs>\d+(?:\.\d+)?)s|\.\.\.)\s*'
    r'(?:\(last: [^)]*\))?\s*(?P<detail>.*?)\s*$')

# Lines that end the block of text belonging to the previous test.
_RUN_SUMMARY = re.compile(
    r'^(Not run:|Some cases not run in:|Failures:|Failed \d+ of|Passed all)')


@dataclass
class TestResult:
    name: str
    status: str
    seconds: Optional[float] = None
    detail: str = ''
    # Diff and skipped-case notes printed by `check` after the status line.
    output: List[str] = field(default_factory=list)


def _log_lines(text: str) -> List[str]:
    # In a log (not a tty) `check` still ends its "..." progress lines
    # with a carriage return; treat it as a line break.
    return text.replace('\r\n', '\n').replace('\r', '\n').split('\n')


def parse_check_log(text: str) -> List[TestResult]:
    """Every test's final status, in the order `check` ran them."""
    results: List[TestResult] = []
    current: Optional[TestResult] = None
    for line in _log_lines(text):
        match = _STATUS_LINE.match(line)
        if match:
            secs = match.group('secs')
            current = TestResult(match.group('name'), match.group('status'),
                                 float(secs) if secs else None,
                                 match.group('detail'))
            results.append(current)
        elif _RUN_SUMMARY.match(line):
            current = None
        elif current is not None and line and not _is_progress(line):
            current.output.append(line)
    return results


def _is_progress(line: str) -> bool:
    # "<name>  ...  [HH:MM:SS]  ..." printed when a test starts.
    return re.match(r'^\S+\s+(\.\.\.|started)\s+\[\d\d:\d\d:\d\d\]', line) \
        is not None


def counts(results: List[TestResult]) -> Dict[str, int]:
    tally = {status: 0 for status in STATUSES}
    for result in results:
        tally[result.status] += 1
    return tally


def totals_line(results: List[TestResult]) -> str:
    tally = counts(results)
    return (f"{tally['pass']} pass, {tally['fail']} fail, "
            f"{tally['not run']} not run ({len(results)} tests)")


def write_summary(path: str, results: List[TestResult],
                  header: List[str]) -> None:
    with open(path, 'w', encoding='utf-8') as out:
        for line in header:
            out.write(f'# {line}\n')
        out.write(f'# {totals_line(results)}\n')
        for r in results:
            secs = '-' if r.seconds is None else f'{r.seconds:.1f}'
            out.write(f'{r.name}\t{r.status}\t{secs}\t{r.detail}\n')
            if r.status == 'fail':
                for line in r.output[:MAX_OUTPUT_LINES]:
                    out.write(f'{OUTPUT_PREFIX}{line}\n')


def read_summary(path: str) -> Dict[str, TestResult]:
    results: Dict[str, TestResult] = {}
    last: Optional[TestResult] = None
    with open(path, encoding='utf-8') as summary:
        for line in summary:
            line = line.rstrip('\n')
            if line.startswith(OUTPUT_PREFIX) and last:
                last.output.append(line[len(OUTPUT_PREFIX):])
                continue
            if line.startswith('#') or not line.strip():
                continue
            name, status, secs, detail = line.split('\t', 3)
            if status not in STATUSES:
                raise ValueError(f'{path}: bad status {status!r} for {name}')
            last = results[name] = TestResult(
                name, status, None if secs == '-' else float(secs), detail)
    return results


def junit_testcase(suite: ET.Element, classname: str, name: str,
                   status: str, seconds: Optional[float], message: str,
                   text: str = '') -> None:
    """Append one <testcase>; status is pass, fail or not run."""
    case = ET.SubElement(suite, 'testcase', classname=classname, name=name,
                         time=f'{seconds or 0:.1f}')
    if status == 'fail':
        ET.SubElement(case, 'failure', message=message).text = text
    elif status == 'not run':
        ET.SubElement(case, 'skipped', message=message)
    elif text:
        ET.SubElement(case, 'system-out').text = text


def write_junit_cases(path: str, suite_name: str, cases: ET.Element) -> None:
    """Wrap the <testcase> children of `cases` in a counted <testsuite>."""
    children = list(cases)
    failures = sum(1 for c in children if c.find('failure') is not None)
    skipped = sum(1 for c in children if c.find('skipped') is not None)
    seconds = sum(float(c.get('time', '0')) for c in children)
    suite = ET.Element('testsuite', name=suite_name, tests=str(len(children)),
                       failures=str(failures), errors='0',
                       skipped=str(skipped), time=f'{seconds:.1f}')
    suite.extend(children)
    suites = ET.Element('testsuites')
    suites.append(suite)
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding='utf-8',
                                 xml_declaration=True)


def write_junit(path: str, suite_name: str, classname: str,
                results: List[TestResult]) -> None:
    cases = ET.Element('cases')
    for r in results:
        junit_testcase(cases, classname, r.name, r.status, r.seconds,
                       r.detail, '\n'.join(r.output))
    write_junit_cases(path, suite_name, cases)


def subset_tests(path: str, fmt: str) -> list:
    """The tests a subset file (subset.txt) lists for FMT."""
    tests = []
    with open(path, encoding='utf-8') as lines:
        for line in lines:
            fields = line.split('#', 1)[0].split()
            if len(fields) == 2 and fields[0] == fmt:
                tests.append(fields[1])
            elif fields and len(fields) != 2:
                sys.exit(f'{path}: bad line {line.strip()!r}')
    if not tests:
        sys.exit(f'{path} lists no test for {fmt}')
    return tests
