"""Tests of broker-wrap, the script that runs each QEMU program of
qemu-iotests under the open-hook broker.

The "QEMU program" here is a small C program that reports its argv and
open descriptors, so that what the wrapper hands to QEMU can be checked
without QEMU.  Each test runs against a stand-in broker that implements
only the launcher contract (broker/open-hook-server.1), and against the real
open-hook-server when it has been built.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
WRAPPERS = os.path.join(HERE, 'brokered-bin')
REAL_BROKER = os.path.join(os.environ.get('BIN', os.path.join(
    HERE, '..', '..', 'build', 'bin')), 'open-hook-server')

# Prints {"argv": [...], "fds": {"N": "socket"|"other"}} on stdout, a line
# on stderr, then sleeps FAKE_SLEEP seconds and exits with FAKE_EXIT.
FAKE_PROGRAM_C = r'''
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct stat st;
    const char *sep = "";
    printf("{\"argv\": [");
    for (int i = 0; i < argc; i++) {
        printf("%s\"%s\"", i ? ", " : "", argv[i]);
    }
    printf("], \"fds\": {");
    for (int fd = 0; fd < 64; fd++) {
        if (fstat(fd, &st) == 0) {
            printf("%s\"%d\": \"%s\"", sep, fd,
                   S_ISSOCK(st.st_mode) ? "socket" : "other");
            sep = ", ";
        }
    }
    printf("}}\n");
    fflush(stdout);
    fprintf(stderr, "fake program: stderr\n");
    if (getenv("FAKE_SLEEP")) {
        sleep(atoi(getenv("FAKE_SLEEP")));
    }
    return getenv("FAKE_EXIT") ? atoi(getenv("FAKE_EXIT")) : 0;
}
'''

# The launcher contract only: --policy P --audit A --hook-fd N -- CMD...
FAKE_BROKER_PY = '''\
#!/usr/bin/python3
import os, signal, socket, subprocess, sys
args = sys.argv[1:]
split = args.index('--')
opts, command = args[:split], args[split + 1:]
hook_fd = int(opts[opts.index('--hook-fd') + 1]) if '--hook-fd' in opts else 3
ours, theirs = socket.socketpair()
def place_hook_fd():
    os.dup2(theirs.fileno(), hook_fd)
    os.set_inheritable(hook_fd, True)  # dup2 onto itself keeps CLOEXEC
child = subprocess.Popen(command, close_fds=False, preexec_fn=place_hook_fd)
theirs.close()
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda s, f: child.send_signal(s))
print('fake broker: serving', file=sys.stderr)
status = child.wait()
sys.exit(128 - status if status < 0 else status)
'''


@pytest.fixture(scope='module')
def real_bin(tmp_path_factory):
    """A bin directory whose every QEMU program is the fake program."""
    bin_dir = tmp_path_factory.mktemp('real-bin')
    source = bin_dir / 'fake.c'
    source.write_text(FAKE_PROGRAM_C)
    fake = bin_dir / 'fake'
    subprocess.run(['cc', '-o', str(fake), str(source)],
                   check=True)
    for name in os.listdir(WRAPPERS):
        os.symlink('fake', bin_dir / name)
    return bin_dir


def fake_broker(tmp_path):
    path = tmp_path / 'fake-open-hook-server'
    path.write_text(FAKE_BROKER_PY)
    path.chmod(0o755)
    return str(path)


def real_broker(_tmp_path):
    if not os.access(REAL_BROKER, os.X_OK):
        pytest.skip(f'{REAL_BROKER} not built (make broker)')
    return REAL_BROKER


@pytest.fixture(params=[fake_broker, real_broker], ids=['fake', 'real'])
def env(request, tmp_path, real_bin):
    policy = tmp_path / 'policy'
    policy.write_text(f'create {tmp_path}/\n')
    environment = dict(os.environ)
    environment.update({
        'OPEN_HOOK_SERVER': request.param(tmp_path),
        'OPEN_HOOK_REAL_BIN': str(real_bin),
        'OPEN_HOOK_POLICY': str(policy),
        'OPEN_HOOK_AUDIT': str(tmp_path / 'audit.jsonl'),
        'OPEN_HOOK_BROKER_LOG': str(tmp_path / 'broker.log'),
    })
    return environment


def run(name, args, env, **kwargs):
    wrapper = os.path.join(WRAPPERS, name)
    proc = subprocess.run([wrapper] + args, env=env, capture_output=True,
                          text=True, timeout=30, **kwargs)
    report = json.loads(proc.stdout) if proc.stdout else None
    return proc, report


@pytest.mark.parametrize('name,option', [
    ('qemu-img', '--open-hook-fd'),
    ('qemu-io', '--open-hook-fd'),
    ('qemu-nbd', '--open-hook-fd'),
    ('qemu-storage-daemon', '--open-hook-fd'),
    ('qemu-system-x86_64', '-open-hook-fd'),
])
def test_program_gets_hook_option_first_and_own_argv0(name, option, env):
    args = ['info', '--output=json', 'a b', '']
    proc, report = run(name, args, env)
    assert proc.returncode == 0, proc.stderr
    wrapper = os.path.join(WRAPPERS, name)
    assert report['argv'][0] == wrapper
    assert report['argv'][1] == option
    hook_fd = report['argv'][2]
    assert report['fds'][hook_fd] == 'socket'
    assert report['argv'][3:] == args


def test_hook_fd_avoids_descriptors_of_the_caller(env):
    # QEMUMachine passes QEMU its QMP socket as a low descriptor.
    qmp, peer = socket.socketpair()
    with open(os.devnull) as devnull:
        fds = (qmp.fileno(), devnull.fileno())
        proc, report = run('qemu-system-x86_64', ['-chardev',
                           f'socket,id=mon,fd={qmp.fileno()}'], env,
                           pass_fds=fds)
    qmp.close()
    peer.close()
    assert proc.returncode == 0, proc.stderr
    hook_fd = int(report['argv'][2])
    assert hook_fd not in fds
    assert report['fds'][str(fds[0])] == 'socket'
    assert report['fds'][str(fds[1])] == 'other'


def test_broker_stderr_goes_to_its_log(env):
    proc, _ = run('qemu-img', ['--version'], env)
    assert proc.returncode == 0
    assert proc.stderr == 'fake program: stderr\n'
    log = open(env['OPEN_HOOK_BROKER_LOG'], encoding='utf-8').read()
    if env['OPEN_HOOK_SERVER'].endswith('fake-open-hook-server'):
        assert 'fake broker: serving' in log    # the real one says nothing
    assert 'fake program' not in log


def test_no_stray_descriptors_reach_the_program(env):
    _, report = run('qemu-io', [], env)
    hook_fd = report['argv'][2]
    assert sorted(report['fds']) == sorted(['0', '1', '2', hook_fd])


def test_exit_status_is_the_programs(env):
    proc, _ = run('qemu-io', ['-c', 'quit'], dict(env, FAKE_EXIT='3'))
    assert proc.returncode == 3


def test_sigterm_reaches_the_program(env, tmp_path):
    out = tmp_path / 'out'
    with open(out, 'w') as stdout:
        proc = subprocess.Popen([os.path.join(WRAPPERS, 'qemu-nbd')],
                                env=dict(env, FAKE_SLEEP='20'),
                                stdout=stdout, stderr=subprocess.DEVNULL)
        wait_for_output(out)
        proc.send_signal(signal.SIGTERM)
        # Killed by the signal, or exited with the shell's 128 + signal.
        assert proc.wait(timeout=10) in (-signal.SIGTERM,
                                         128 + signal.SIGTERM)


def test_sigkill_of_the_broker_takes_the_program_down(env, tmp_path):
    out = tmp_path / 'out'
    with open(out, 'w') as stdout:
        proc = subprocess.Popen([os.path.join(WRAPPERS,
                                              'qemu-system-x86_64')],
                                env=dict(env, FAKE_SLEEP='20'),
                                stdout=stdout, stderr=subprocess.DEVNULL)
        wait_for_output(out)
        program = program_pid(proc.pid)
        proc.kill()
        proc.wait()
    deadline = time.time() + 5
    while running(program) and time.time() < deadline:
        time.sleep(0.05)
    assert not running(program)


def test_missing_configuration_is_reported(env):
    del env['OPEN_HOOK_POLICY']
    proc, _ = run('qemu-img', ['info'], env)
    assert proc.returncode == 127
    assert 'OPEN_HOOK_POLICY is not set' in proc.stderr


def wait_for_output(path):
    deadline = time.time() + 10
    while not path.read_text() and time.time() < deadline:
        time.sleep(0.05)
    assert path.read_text(), 'the program did not start'


def program_pid(broker_pid):
    """The fake program: the broker's child whose argv[0] is a wrapper."""
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            stat = open(f'/proc/{pid}/stat').read()
            cmdline = open(f'/proc/{pid}/cmdline').read()
        except OSError:
            continue
        ppid = int(stat.rsplit(')', 1)[1].split()[1])
        if ppid == broker_pid and cmdline.startswith(WRAPPERS):
            return int(pid)
    raise AssertionError(f'no program under broker {broker_pid}')


def running(pid):
    try:
        state = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state != 'Z'


if __name__ == '__main__':
    sys.exit(pytest.main([__file__] + sys.argv[1:]))
