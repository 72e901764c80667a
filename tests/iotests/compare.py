#!/usr/bin/python3
"""Compare qemu-iotests results per test with a baseline.

For every format, every test of the result summary is compared with the
same test in the baseline summary.  A test "differs" when its status
differs, or when both did not run but for different reasons.  A
difference is either explained by a line of the exceptions file or is a
bug.  Writes one JUnit testcase per test and format:

    same as the baseline        -> passed
    explained difference        -> skipped, the explanation as message
    unexplained difference      -> failure

Exceptions file: one per line, '#' starts a comment,

    <format|*> <test> <status the result may have instead> <reason...>

where the status is pass, fail, notrun or any (any: the test is flaky).
Exits 1 if there is an unexplained difference, 2 on a usage error.
"""

import argparse
import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import iotests_report as report

STATUS_WORDS = {'pass': 'pass', 'fail': 'fail', 'notrun': 'not run',
                'any': 'any'}


@dataclass
class KnownDifference:
    status: str
    reason: str


Known = Dict[Tuple[str, str], KnownDifference]


def read_exceptions(path: Optional[str]) -> Known:
    known: Known = {}
    if not path:
        return known
    with open(path, encoding='utf-8') as lines:
        for number, line in enumerate(lines, 1):
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            fields = line.split(None, 3)
            if len(fields) < 4 or fields[2] not in STATUS_WORDS:
                sys.exit(f'{path}:{number}: expected '
                         '"<format|*> <test> <pass|fail|notrun|any> <reason>"')
            fmt, test, status, reason = fields
            known[(fmt, test)] = KnownDifference(STATUS_WORDS[status], reason)
    return known


def describe(result: Optional[report.TestResult]) -> str:
    if result is None:
        return 'absent'
    if result.status == 'not run':
        return f'not run ({result.detail})'
    return result.status


def same(base: Optional[report.TestResult],
         result: Optional[report.TestResult]) -> bool:
    if base is None or result is None:
        return base is result
    if base.status != result.status:
        return False
    return base.status != 'not run' or base.detail == result.detail


def explanation(known: Known, fmt: str,
                result: Optional[report.TestResult]) -> Optional[str]:
    name = result.name if result else ''
    entry = known.get((fmt, name)) or known.get(('*', name))
    if entry and result and entry.status in ('any', result.status):
        return entry.reason
    return None


def judge(fmt: str, was: Optional[report.TestResult],
          now: Optional[report.TestResult], known: Known,
          baseline_label: str) -> Tuple[str, str]:
    """JUnit status ('pass', 'not run' or 'fail') and message of one test."""
    verdict = f'{baseline_label}: {describe(was)}; now: {describe(now)}'
    if same(was, now):
        return 'pass', verdict
    reason = explanation(known, fmt, now)
    if reason:
        return 'not run', f'known difference: {reason} ({verdict})'
    return 'fail', f'differs: {verdict}'


def compare_format(fmt: str, base: Dict[str, report.TestResult],
                   results: Dict[str, report.TestResult], known: Known,
                   cases: ET.Element, baseline_label: str) -> List[str]:
    """Add a testcase per test; return the unexplained differences."""
    bugs = []
    names = list(results) + [name for name in base if name not in results]
    for name in names:
        now = results.get(name)
        status, message = judge(fmt, base.get(name), now, known,
                                baseline_label)
        if status != 'pass':
            print(f'  {fmt:6} {name:28} {message}')
        if status == 'fail':
            bugs.append(f'{fmt}/{name}')
        text = '\n'.join([now.detail] + now.output) if now else ''
        report.junit_testcase(cases, f'iotests.{fmt}', name, status,
                              now.seconds if now else None, message, text)
    return bugs


def check_selection(fmt: str, base: Dict[str, report.TestResult],
                    selected: List[str]) -> List[str]:
    """A subset must consist of tests that pass at the baseline."""
    return [f'{fmt}/{name}: {describe(base.get(name))} at the baseline'
            for name in selected
            if base.get(name) is None or base[name].status != 'pass']


def pairs(values: List[str], option: str) -> Dict[str, str]:
    out = {}
    for value in values:
        fmt, sep, path = value.partition('=')
        if not sep:
            sys.exit(f'compare: {option} wants FORMAT=FILE, got {value!r}')
        out[fmt] = path
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--baseline', action='append', default=[],
                        metavar='FMT=SUMMARY', required=True)
    parser.add_argument('--result', action='append', default=[],
                        metavar='FMT=SUMMARY', required=True)
    parser.add_argument('--baseline-label', default='baseline')
    parser.add_argument('--exceptions')
    parser.add_argument('--junit', required=True)
    parser.add_argument('--suite', required=True)
    parser.add_argument('--subset', metavar='FILE',
                        help='compare only the tests FILE lists (subset.txt); '
                             'each must pass at the baseline, and one that '
                             'did not run counts as a difference')
    args = parser.parse_args()

    baselines = pairs(args.baseline, '--baseline')
    known = read_exceptions(args.exceptions)
    cases = ET.Element('cases')
    bugs: List[str] = []
    for fmt, path in pairs(args.result, '--result').items():
        if fmt not in baselines:
            sys.exit(f'compare: no --baseline for format {fmt}')
        if not os.path.exists(path):
            sys.exit(f'compare: no {path}: the {fmt} run did not finish')
        base = report.read_summary(baselines[fmt])
        results = report.read_summary(path)
        if args.subset:
            selected = report.subset_tests(args.subset, fmt)
            wrong = check_selection(fmt, base, selected)
            if wrong:
                sys.exit('compare: not a baseline pass: ' + '; '.join(wrong))
            base = {name: base[name] for name in selected}
        bugs += compare_format(fmt, base, results, known, cases,
                               args.baseline_label)
    report.write_junit_cases(args.junit, args.suite, cases)
    compared = len(list(cases))
    if bugs:
        print(f'{args.suite}: {len(bugs)} of {compared} tests differ from '
              f'the {args.baseline_label} without explanation: '
              + ' '.join(bugs))
        return 1
    print(f'{args.suite}: {compared} tests compared with the '
          f'{args.baseline_label}, no unexplained difference')
    return 0


if __name__ == '__main__':
    sys.exit(main())
