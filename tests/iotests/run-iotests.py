#!/usr/bin/python3
"""Run QEMU's qemu-iotests for one image format and record the results.

Runs the unmodified `check` script of the QEMU build tree on the binaries
of --bin (directly, or each under the open-hook broker with --brokered),
keeps its log, and writes a per-test summary and JUnit XML.  Exits 1 if
any test failed, 2 on a usage or setup error.
"""

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import time

import iotests_report as report

HERE = os.path.dirname(os.path.abspath(__file__))
WRAPPER_DIR = os.path.join(HERE, 'brokered-bin')

# Environment variable read by `check` -> program name in a bin directory.
PROGRAMS = {
    'QEMU_PROG': 'qemu-system-x86_64',
    'QEMU_IMG_PROG': 'qemu-img',
    'QEMU_IO_PROG': 'qemu-io',
    'QEMU_NBD_PROG': 'qemu-nbd',
    'QSD_PROG': 'qemu-storage-daemon',
}

# A UNIX socket path must fit in sun_path (108 bytes); iotests append
# names like "qemu-123456-qtest.sock" to SOCK_DIR.
MAX_SOCK_DIR = 80


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--format', required=True,
                        help='image format, e.g. raw or qcow2')
    parser.add_argument('--check', required=True,
                        help="qemu-iotests' check in the QEMU build tree")
    parser.add_argument('--bin', required=True,
                        help='directory holding the QEMU binaries')
    parser.add_argument('--work', required=True,
                        help='directory for the log, scratch and sockets')
    parser.add_argument('--summary', required=True)
    parser.add_argument('--junit', required=True)
    parser.add_argument('--suite', required=True, help='JUnit suite name')
    parser.add_argument('--group', default='quick',
                        help='iotests group to run when no TEST is given')
    parser.add_argument('--brokered', action='store_true',
                        help='run every QEMU program under the broker')
    parser.add_argument('--broker', help='open-hook-server binary')
    parser.add_argument('--policy-template',
                        default=os.path.join(HERE, 'policy.in'))
    parser.add_argument('--subset', metavar='FILE',
                        help='run the tests that FILE lists for --format: '
                             'lines "<format> <test>  # comment"')
    parser.add_argument('tests', nargs='*', metavar='TEST')
    args = parser.parse_args()
    if args.subset:
        args.tests += report.subset_tests(args.subset, args.format)
    # `check` runs in its own directory.  Keep the link: `check` finds the
    # build tree through it.
    args.check = os.path.abspath(args.check)
    args.work = os.path.abspath(args.work)
    if args.brokered and not args.broker:
        parser.error('--brokered needs --broker')
    return args


def fresh_dir(path: str) -> str:
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def require_executable(path: str) -> None:
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        sys.exit(f'run-iotests: {path}: not an executable file '
                 '(build it first)')


def program_env(bin_dir: str, brokered: bool) -> dict:
    """QEMU_PROG etc.: the real binaries, or the broker wrappers."""
    env = {}
    for var, name in PROGRAMS.items():
        require_executable(os.path.join(bin_dir, name))
        env[var] = os.path.join(WRAPPER_DIR if brokered else bin_dir, name)
    return env


def write_policy(template: str, dest: str, dirs: dict) -> None:
    with open(template, encoding='utf-8') as src:
        text = src.read()
    for key, value in dirs.items():
        text = text.replace(f'@{key}@', value)
    with open(dest, 'w', encoding='utf-8') as out:
        out.write(text)


def broker_env(args: argparse.Namespace, dirs: dict) -> dict:
    """What tests/iotests/broker-wrap reads (see the comment there)."""
    require_executable(args.broker)
    policy = os.path.join(args.work, 'policy')
    write_policy(args.policy_template, policy, dirs)
    audit = os.path.join(args.work, 'audit.jsonl')
    broker_log = os.path.join(args.work, 'broker.log')
    for path in (audit, broker_log):
        open(path, 'w', encoding='utf-8').close()
    return {
        'OPEN_HOOK_SERVER': os.path.abspath(args.broker),
        'OPEN_HOOK_REAL_BIN': os.path.abspath(args.bin),
        'OPEN_HOOK_POLICY': policy,
        'OPEN_HOOK_AUDIT': audit,
        'OPEN_HOOK_BROKER_LOG': broker_log,
    }


def digest_audit(work: str) -> str:
    """Count the broker's decisions; list each request it did not grant
    once in <work>/refused.txt (decision, errno, flags, name): where to
    start looking for the cause of a difference."""
    decisions = collections.Counter()
    refused = set()
    with open(os.path.join(work, 'audit.jsonl'), encoding='utf-8') as audit:
        for line in audit:
            entry = json.loads(line)
            decisions[entry.get('decision')] += 1
            if entry.get('decision') != 'allow':
                refused.add((entry.get('decision'), entry.get('errno'),
                             entry.get('flags'), entry.get('path')))
    with open(os.path.join(work, 'refused.txt'), 'w',
              encoding='utf-8') as out:
        for fields in sorted(refused, key=str):
            out.write('\t'.join(map(str, fields)) + '\n')
    counts = ', '.join(f'{n} {d}' for d, n in sorted(decisions.items(),
                                                     key=str))
    return f'broker audit: {sum(decisions.values())} opens ({counts})'


def run_check(args: argparse.Namespace, env: dict, log_path: str) -> int:
    """Run `check`, copy its log to log_path, echo each test's result."""
    cmd = [sys.executable, args.check, '--color', 'off', f'-{args.format}']
    cmd += args.tests or ['-g', args.group]
    with open(log_path, 'w', encoding='utf-8') as log:
        log.write('# ' + ' '.join(cmd) + '\n')
        log.flush()
        with subprocess.Popen(cmd, cwd=os.path.dirname(args.check), env=env,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              errors='replace') as proc:
            for line in proc.stdout:
                log.write(line)
                final = line.rsplit('\r', 1)[-1]
                if report.parse_check_log(final):
                    print(f'  {args.format:6} {final.rstrip()}', flush=True)
            return proc.wait()


def run_dirs(args: argparse.Namespace) -> dict:
    """Fresh scratch, socket and temporary directories of this run."""
    os.makedirs(args.work, exist_ok=True)
    dirs = {
        'TEST_DIR': fresh_dir(os.path.join(args.work, 'scratch')),
        'SOCK_DIR': fresh_dir(os.path.join(args.work, 'sock')),
        # QEMU creates the temporary overlay of snapshot=on in $TMPDIR
        # (else /var/tmp): keep it in the run's own tree, which the
        # broker policy grants.  Tests that set TMPDIR still win.
        'TMPDIR': fresh_dir(os.path.join(args.work, 'tmp')),
        'SAMPLE_IMG_DIR': os.path.join(
            os.path.dirname(os.path.realpath(args.check)), 'sample_images'),
    }
    if len(dirs['SOCK_DIR']) > MAX_SOCK_DIR:
        sys.exit(f"run-iotests: {dirs['SOCK_DIR']} is too long for "
                 'UNIX socket paths')
    return dirs


def write_results(args: argparse.Namespace, results: list,
                  elapsed: float, mode: str) -> None:
    for result in results:
        result.detail = result.detail.replace(args.work, '<work>')
    selection = ' '.join(args.tests) or f'group {args.group}'
    report.write_summary(args.summary, results, [
        f'qemu-iotests -{args.format} -file, {selection}',
        f'binaries: {os.path.relpath(args.bin)}, {mode}',
        f'runtime: {elapsed:.0f} s; log: <work>/check.log',
    ])
    report.write_junit(args.junit, args.suite, args.suite, results)


def main() -> int:
    args = parse_args()
    # Leave no result of an earlier run behind if this one cannot start.
    for stale in (args.summary, args.junit):
        if os.path.exists(stale):
            os.unlink(stale)
    require_executable(args.check)
    dirs = run_dirs(args)
    env = dict(os.environ)
    env.update(dirs)
    env.update(program_env(args.bin, args.brokered))
    if args.brokered:
        env.update(broker_env(args, dirs))

    log_path = os.path.join(args.work, 'check.log')
    started = time.time()
    status = run_check(args, env, log_path)
    elapsed = time.time() - started
    with open(log_path, encoding='utf-8', errors='replace') as log:
        results = report.parse_check_log(log.read())
    if not results:
        print(f'run-iotests: check exited {status} and ran no test; '
              f'see {log_path}', file=sys.stderr)
        return 2

    mode = 'brokered (open-hook-server)' if args.brokered else 'direct'
    write_results(args, results, elapsed, mode)
    if args.brokered:
        print(digest_audit(args.work) + f'; refused: {args.work}/refused.txt')
    print(f'iotests {args.format} ({mode}): {report.totals_line(results)} '
          f'in {elapsed:.0f} s -> {args.summary}')
    return 1 if report.counts(results)['fail'] or status != 0 else 0


if __name__ == '__main__':
    sys.exit(main())
