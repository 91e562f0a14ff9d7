# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real systemd hosts for tests and the demo: systemd-nspawn containers.

There is no systemd as PID 1 and no container engine on the machines this
project is built on, but real systemd boots in ``systemd-nspawn``. Each host
is an overlay mount of one Debian rootfs built once with ``mmdebstrap`` from
the machine's configured Debian mirror and cached under
``.cache/nspawn/``. Hosts share the machine's network namespace (the "shared
host network" layout of DESIGN.md section 6): each host's sshd binds its own
loopback address (127.0.0.21, 127.0.0.22, ...; the machine's 127.0.0.1/8
covers them) through a drop-in written into the overlay before boot, and
systemd-networkd is masked so the host never touches the shared interfaces.
Hosts reach ZooKeeper servers of the zkharness on 127.0.0.1.

Why it is built this way (each point was learnt the hard way here):

- ``--register=no``: there is no machined and no system bus to register
  with, so hosts are driven over ssh, never ``machinectl``.
- ``--keep-unit``: nspawn would ask systemd for a scope unit; instead it runs
  in a cgroup directory this harness creates by hand in every cgroup
  hierarchy the container's systemd needs (``systemd`` and ``unified`` on a
  hybrid machine, the root on a pure cgroup v2 one) and moves nspawn into
  before ``exec``.
- Killing nspawn does not stop the container. A clean power-off is SIGTERM
  to nspawn; a crash is SIGKILL to the container's PID 1 (the kernel then
  kills every process of its PID namespace).
- Freezing uses the cgroup v2 freezer of the host's cgroup (SIGSTOP to every
  process where there is none): the host stops answering without losing
  state, which is how tests simulate a partition on a shared network.
- Memory/CPU limits in units are not enforced in these containers.

Command line (state in ``.cache/hosts/state.json``; hosts outlive the command)::

    hosts.py up N [--set NAME] [--first-address 127.0.0.21]   boot N hosts, print them as JSON
    hosts.py down [--set NAME]                  stop and remove one set of hosts, or all
    hosts.py status                             what exists, and whether it runs
    hosts.py stop|start|crash|freeze|thaw HOST  act on one host
    hosts.py inventory [--set NAME]             an Ansible inventory (YAML) of the hosts
    hosts.py ssh HOST [COMMAND...]              run a command on a host as root
    hosts.py rootfs                             build the cached rootfs (nothing else)

Python API: ``HostSet('name', count=2, first_address='127.0.0.31')`` used as
a context manager boots the hosts and always tears them down.
"""

import argparse
import contextlib
import fcntl
import glob
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

# Run as a script (make, molecule) as well as imported as tests.harness.hosts.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.harness.statefile import load_json_state, save_json_state  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE_DIR = os.environ.get('ZK_HARNESS_CACHE', os.path.join(REPO_ROOT, '.cache'))

SUITE = 'bookworm'
# What every host needs: systemd as PID 1, ssh for Ansible, a Python with
# venv for the daemon's virtualenv, sudo for become, ps/ip for debugging.
PACKAGES = ('systemd', 'systemd-sysv', 'dbus', 'python3', 'python3-venv', 'openssh-server', 'sudo',
            'procps', 'iproute2')
ROOTFS_DIR = os.path.join(CACHE_DIR, 'nspawn', 'rootfs-%s' % SUITE)
ROOTFS_STAMP = ROOTFS_DIR + '.json'
ROOTFS_LOCK = os.path.join(CACHE_DIR, 'nspawn', '.rootfs.lock')

HOSTS_DIR = os.path.join(CACHE_DIR, 'hosts')
STATE_FILE = os.path.join(HOSTS_DIR, 'state.json')
STATE_LOCK = os.path.join(HOSTS_DIR, '.state.lock')
SSH_KEY = os.path.join(HOSTS_DIR, 'id_ed25519')
SSH_USER = 'root'
SSH_PORT = 22
DEFAULT_SET = 'hosts'
DEFAULT_FIRST_ADDRESS = '127.0.0.21'
CGROUP_PREFIX = 'zkm-host-'
SSH_OPTIONS = ('-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
               '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=5')

# Units that must not run on a host sharing the machine's network and clock:
# networkd would reconfigure the shared interfaces; apt timers would reach out.
MASKED_UNITS = ('systemd-networkd.service', 'systemd-networkd.socket', 'systemd-networkd-wait-online.service',
                'apt-daily.timer', 'apt-daily-upgrade.timer', 'apt-daily.service', 'apt-daily-upgrade.service',
                'e2scrub_all.timer', 'fstrim.timer')


class HostError(Exception):
    """A test host could not be built, booted, reached or stopped."""


# ---------------------------------------------------------------- helpers

def _run(cmd, timeout=None, check=True, **kwargs):
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                            timeout=timeout, check=False, **kwargs)
    if check and result.returncode != 0:
        raise HostError('%s failed (exit %d): %s' % (' '.join(cmd[:3]), result.returncode, result.stdout[-3000:]))
    return result


_held_locks = {}
_held_locks_guard = threading.RLock()


@contextlib.contextmanager
def _locked(path):
    """An exclusive lock (flock) on ``path`` shared by every process using the harness; re-entrant in one process."""
    with _held_locks_guard:
        if path in _held_locks:
            _held_locks[path] += 1
            try:
                yield
            finally:
                _held_locks[path] -= 1
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'a') as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            _held_locks[path] = 1
            try:
                yield
            finally:
                del _held_locks[path]
                fcntl.flock(handle, fcntl.LOCK_UN)


def _pid_alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie is dead for our purposes (its parent has not reaped it yet).
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def _cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return handle.read().split(b'\0')
    except OSError:
        return []


def _children(pid):
    """PIDs whose parent is ``pid`` (read from /proc; no procps needed)."""
    found = []
    for stat_path in glob.glob('/proc/[0-9]*/stat'):
        try:
            with open(stat_path) as handle:
                fields = handle.read().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat_path.split('/')[2]))
    return sorted(found)


def _wait_until(predicate, timeout, interval=0.1):
    deadline = time.time() + timeout
    while True:
        if predicate():
            return True
        if time.time() >= deadline:
            return False
        time.sleep(interval)


def _tail(path, lines=40):
    try:
        with open(path, 'rb') as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode('utf-8', 'replace')
    except OSError:
        return '(no console log at %s)' % path
    return '\n'.join(text.splitlines()[-lines:])


def _port_open(address, port, timeout=0.5):
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_prerequisites():
    """Fail early, with what to do, when the machine cannot run test hosts."""
    problems = []
    if os.geteuid() != 0:
        problems.append('test hosts need root (systemd-nspawn, overlay mounts, cgroups)')
    for tool, package in (('systemd-nspawn', 'systemd-container'), ('mmdebstrap', 'mmdebstrap'),
                          ('ssh', 'openssh-client'), ('ssh-keygen', 'openssh-client')):
        if shutil.which(tool) is None:
            problems.append('%s is missing: apt-get install %s' % (tool, package))
    if not _cgroup_roots():
        problems.append('no writable cgroup hierarchy found under /sys/fs/cgroup')
    if problems:
        raise HostError('cannot run systemd test hosts here: ' + '; '.join(problems))


def _cgroup_roots():
    """Hierarchies a host's cgroup directory must exist in, for the container's systemd."""
    if os.path.exists('/sys/fs/cgroup/cgroup.controllers'):
        return ['/sys/fs/cgroup']  # pure cgroup v2
    return [root for root in ('/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified') if os.path.isdir(root)]


def _unified_root():
    if os.path.exists('/sys/fs/cgroup/cgroup.controllers'):
        return '/sys/fs/cgroup'
    if os.path.isdir('/sys/fs/cgroup/unified'):
        return '/sys/fs/cgroup/unified'
    return None


def _remove_cgroup_tree(path):
    """rmdir a cgroup directory bottom-up (cgroupfs refuses recursive deletes)."""
    if not os.path.isdir(path):
        return
    for current, dirs, _files in os.walk(path, topdown=False):
        for name in dirs:
            try:
                os.rmdir(os.path.join(current, name))
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError as exc:
        raise HostError('cannot remove cgroup %s (processes still in it?): %s' % (path, exc))


def _mounted(path):
    real = os.path.realpath(path)
    with open('/proc/self/mounts') as handle:
        return any(line.split()[1] == real for line in handle)


# ---------------------------------------------------------------- rootfs

def configured_debian_mirror():
    """The Debian mirror this machine's apt uses for the rootfs suite (read at run time, never hard-coded)."""
    candidates = []
    for path in sorted(glob.glob('/etc/apt/sources.list.d/*.sources')):
        try:
            with open(path) as handle:
                text = handle.read()
        except OSError:
            continue
        for stanza in text.split('\n\n'):
            fields = {}
            for line in stanza.splitlines():
                if ':' in line and not line.lstrip().startswith('#'):
                    key, _sep, value = line.partition(':')
                    fields[key.strip().lower()] = value.strip()
            if 'deb' in fields.get('types', '').split() and SUITE in fields.get('suites', '').split():
                candidates.extend(fields.get('uris', '').split())
    for path in ['/etc/apt/sources.list'] + sorted(glob.glob('/etc/apt/sources.list.d/*.list')):
        try:
            with open(path) as handle:
                lines = handle.read().splitlines()
        except OSError:
            continue
        for line in lines:
            words = [word for word in line.split() if not (word.startswith('[') or word.endswith(']'))]
            if len(words) >= 3 and words[0] == 'deb' and words[2] == SUITE:
                candidates.append(words[1])
    for uri in candidates:
        if 'security' not in uri:
            return uri.rstrip('/')
    raise HostError('no Debian mirror for %s is configured in /etc/apt/sources.list.d/*.sources '
                    'or /etc/apt/sources.list: cannot build the test hosts\' rootfs' % SUITE)


def _rootfs_recipe():
    return {'suite': SUITE, 'variant': 'apt', 'packages': sorted(PACKAGES)}


def _rootfs_current():
    try:
        with open(ROOTFS_STAMP) as handle:
            stamp = json.load(handle)
    except (OSError, ValueError):
        return False
    return stamp.get('recipe') == _rootfs_recipe() and os.path.exists(os.path.join(ROOTFS_DIR, 'usr', 'lib', 'systemd', 'systemd'))


def ensure_rootfs(log=None):
    """Build the cached Debian rootfs once (~45 s, ~270 MB); later calls return at once.

    The rootfs is rebuilt when the package list changes, never while a host
    is mounted on it.
    """
    if _rootfs_current():
        return ROOTFS_DIR
    check_prerequisites()
    with _locked(ROOTFS_LOCK):
        if _rootfs_current():
            return ROOTFS_DIR
        if os.path.exists(ROOTFS_DIR):
            with open('/proc/self/mounts') as handle:
                if any('lowerdir=%s' % ROOTFS_DIR in line for line in handle):
                    raise HostError('the rootfs recipe changed but hosts are still mounted on %s: '
                                    'run `hosts.py down` first' % ROOTFS_DIR)
        mirror = configured_debian_mirror()
        building = '%s.building-%d' % (ROOTFS_DIR, os.getpid())
        shutil.rmtree(building, ignore_errors=True)
        cmd = ['mmdebstrap', '--variant=apt', '--include=' + ','.join(PACKAGES), SUITE, building, mirror]
        if log:
            log('building the test hosts\' rootfs (%s, once): %s' % (SUITE, ' '.join(cmd)))
        started = time.time()
        try:
            _run(cmd, timeout=900)
        except (HostError, subprocess.TimeoutExpired) as exc:
            shutil.rmtree(building, ignore_errors=True)
            raise HostError('mmdebstrap could not build the rootfs: %s' % exc)
        shutil.rmtree(ROOTFS_DIR, ignore_errors=True)
        os.rename(building, ROOTFS_DIR)
        with open(ROOTFS_STAMP, 'w') as handle:
            json.dump({'recipe': _rootfs_recipe(), 'mirror': mirror, 'built_at': time.time(),
                       'build_seconds': round(time.time() - started, 1)}, handle, indent=2)
        if log:
            log('rootfs built in %.1f s' % (time.time() - started))
    return ROOTFS_DIR


def ensure_ssh_key():
    """The harness's ssh key pair (root on every host accepts it)."""
    if not os.path.exists(SSH_KEY):
        os.makedirs(HOSTS_DIR, exist_ok=True)
        with _locked(STATE_LOCK + '.key'):
            if not os.path.exists(SSH_KEY):
                _run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'zookeeper-migration-test-hosts',
                      '-f', SSH_KEY])
    os.chmod(SSH_KEY, 0o600)
    return SSH_KEY


# ---------------------------------------------------------------- state

def _load_state():
    return load_json_state(STATE_FILE)


def _save_state(state):
    save_json_state(STATE_FILE, state)


# ---------------------------------------------------------------- one host

class Host(object):
    """One systemd-nspawn container: overlay of the cached rootfs, sshd on its own loopback address."""

    def __init__(self, name, address, set_name=DEFAULT_SET, nspawn_pid=None):
        if not name.replace('-', '').isalnum() or len(name) > 48:
            raise HostError('host name %r must be letters, digits and dashes (it is the hostname)' % name)
        self.name = name
        self.address = str(ipaddress.IPv4Address(address))
        if not ipaddress.IPv4Address(self.address).is_loopback or self.address == '127.0.0.1':
            raise HostError('host address %s must be a loopback address other than 127.0.0.1' % self.address)
        self.set_name = set_name
        self.nspawn_pid = nspawn_pid
        self.directory = os.path.join(HOSTS_DIR, name)
        self.merged = os.path.join(self.directory, 'merged')
        self.console_log = os.path.join(self.directory, 'console.log')

    # -- description

    @classmethod
    def from_state(cls, entry):
        """The Host recorded in the state file."""
        return cls(entry['name'], entry['address'], entry.get('set', DEFAULT_SET), entry.get('nspawn_pid'))

    def describe(self):
        """What the state file and ``up`` print for this host."""
        return {
            'name': self.name,
            'set': self.set_name,
            'address': self.address,
            'ssh_port': SSH_PORT,
            'ssh_user': SSH_USER,
            'ssh_key': SSH_KEY,
            'nspawn_pid': self.nspawn_pid if self.running else None,
            'directory': self.directory,
            'state': self.state,
        }

    @property
    def cgroup_name(self):
        return CGROUP_PREFIX + self.name

    @property
    def running(self):
        """True while this host's nspawn runs (checked against its command line, not just the PID)."""
        _reap()
        if self._is_my_nspawn(self.nspawn_pid):
            return True
        # The recorded PID may be stale (another process restarted the host,
        # or the state file was lost): look for this host's nspawn by its
        # command line before declaring the host stopped.
        for path in glob.glob('/proc/[0-9]*/cmdline'):
            pid = int(path.split('/')[2])
            if self._is_my_nspawn(pid):
                self.nspawn_pid = pid
                return True
        return False

    def _is_my_nspawn(self, pid):
        if not _pid_alive(pid):
            return False
        args = _cmdline(pid)
        return (bool(args) and args[0].endswith(b'systemd-nspawn') and ('--machine=%s' % self.name).encode() in args
                and ('--directory=%s' % self.merged).encode() in args)

    @property
    def pid1(self):
        """Host PID of the container's init (systemd), or None."""
        if not self.running:
            return None
        children = _children(self.nspawn_pid)
        return children[0] if children else None

    @property
    def frozen(self):
        events = self._unified_file('cgroup.events')
        if events and os.path.exists(events):
            with open(events) as handle:
                return 'frozen 1' in handle.read()
        return False

    @property
    def state(self):
        if not self.running:
            return 'stopped' if os.path.isdir(self.directory) else 'absent'
        return 'frozen' if self.frozen else 'running'

    def _unified_file(self, name):
        root = _unified_root()
        return os.path.join(root, self.cgroup_name, name) if root else None

    # -- preparation

    def _prepare_overlay(self):
        """Mount the overlay and write the per-host configuration into it (before boot)."""
        for sub in ('upper', 'work', 'merged'):
            os.makedirs(os.path.join(self.directory, sub), exist_ok=True)
        if not _mounted(self.merged):
            _run(['mount', '-t', 'overlay', 'overlay', '-o',
                  'lowerdir=%s,upperdir=%s,workdir=%s' % (ROOTFS_DIR, os.path.join(self.directory, 'upper'),
                                                          os.path.join(self.directory, 'work')),
                  self.merged])
        root = self.merged
        # sshd binds only this host's address: every host shares the machine's network.
        self._write(root, 'etc/ssh/sshd_config.d/10-zkm-test-host.conf', (
            '# Written by tests/harness/hosts.py before boot: this host shares the\n'
            '# machine\'s network, so sshd binds only the host\'s own loopback address.\n'
            'ListenAddress %s\nPort %d\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n'
            'KbdInteractiveAuthentication no\nUseDNS no\n' % (self.address, SSH_PORT)))
        with open(SSH_KEY + '.pub') as handle:
            public_key = handle.read()
        self._write(root, 'root/.ssh/authorized_keys', public_key, mode=0o600, dir_mode=0o700)
        self._write(root, 'etc/hostname', self.name + '\n')
        self._write(root, 'etc/hosts', '127.0.0.1\tlocalhost\n%s\t%s\n' % (self.address, self.name))
        # A file the role and tests can read to learn which address is "this host".
        self._write(root, 'etc/zkm-test-host.json', json.dumps({'name': self.name, 'address': self.address}) + '\n')
        for unit in MASKED_UNITS:
            link = os.path.join(root, 'etc/systemd/system', unit)
            if not os.path.islink(link):
                if os.path.exists(link):
                    os.remove(link)
                os.symlink('/dev/null', link)

    @staticmethod
    def _write(root, relative, content, mode=0o644, dir_mode=0o755):
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), mode=dir_mode, exist_ok=True)
        os.chmod(os.path.dirname(path), dir_mode)
        with open(path, 'w') as handle:
            handle.write(content)
        os.chmod(path, mode)

    def _prepare_cgroups(self):
        for root in _cgroup_roots():
            path = os.path.join(root, self.cgroup_name)
            _remove_cgroup_tree(path)  # leftovers of a crashed run (payload/, supervisor/)
            os.makedirs(path)

    def _enter_cgroups(self):
        """Runs in the child between fork and exec: move into this host's cgroups."""
        pid = str(os.getpid())
        for root in _cgroup_roots():
            with open(os.path.join(root, self.cgroup_name, 'cgroup.procs'), 'w') as handle:
                handle.write(pid)

    # -- life cycle

    def start(self, wait=True, timeout=90):
        """Boot the host (again: a stopped or crashed host keeps its disk, like a reboot)."""
        if self.running:
            return self
        if _port_open(self.address, SSH_PORT, timeout=0.3):
            raise HostError('%s:%d is already taken by something else: cannot boot %s there'
                            % (self.address, SSH_PORT, self.name))
        self._prepare_overlay()
        self._prepare_cgroups()
        cmd = ['systemd-nspawn', '--quiet', '--register=no', '--keep-unit', '--boot', '--console=read-only',
               '--link-journal=no', '--machine=%s' % self.name, '--directory=%s' % self.merged]
        with open(self.console_log, 'ab') as log:
            log.write(('\n==== %s booting %s\n' % (time.strftime('%Y-%m-%d %H:%M:%S'), self.name)).encode())
            log.flush()
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=self._enter_cgroups)  # pylint: disable=subprocess-popen-preexec-fn
        self.nspawn_pid = proc.pid
        # Hosts outlive a CLI call on purpose: never wait() here, reap lazily.
        _detach(proc)
        record(self)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=90):
        """Wait until sshd answers and systemd has finished booting (state running or degraded)."""
        deadline = time.time() + timeout
        while True:
            if not self.running:
                raise HostError('%s died while booting; console:\n%s' % (self.name, _tail(self.console_log)))
            if _port_open(self.address, SSH_PORT):
                result = self.ssh('systemctl is-system-running --wait', check=False,
                                  timeout=max(5, deadline - time.time()))
                state = result.stdout.strip().splitlines()[-1:] or ['']
                if state[0] in ('running', 'degraded'):
                    return state[0]
            if time.time() >= deadline:
                raise HostError('%s did not finish booting within %ss; console:\n%s'
                                % (self.name, timeout, _tail(self.console_log)))
            time.sleep(0.2)

    def stop(self, timeout=30):
        """Clean power-off: SIGTERM to nspawn (systemd in the container shuts down in order)."""
        if not self.running:
            return
        if self.frozen:
            self.thaw()
        os.kill(self.nspawn_pid, signal.SIGTERM)
        if not _wait_until(lambda: not self.running, timeout):
            self.crash()
        record(self)

    def crash(self, timeout=15):
        """Power failure: SIGKILL to the container's PID 1; nspawn then exits."""
        if not self.running:
            return
        if self.frozen:
            self.thaw()
        pid1 = self.pid1
        if pid1:
            os.kill(pid1, signal.SIGKILL)
        if not _wait_until(lambda: not self.running, timeout):
            os.kill(self.nspawn_pid, signal.SIGKILL)
            _wait_until(lambda: not self.running, 5)
        record(self)

    def freeze(self, timeout=10):
        """Freeze every process of the host (cgroup v2 freezer; SIGSTOP where there is none)."""
        if not self.running:
            raise HostError('%s is not running: cannot freeze it' % self.name)
        control = self._unified_file('cgroup.freeze')
        if control and os.path.exists(control):
            with open(control, 'w') as handle:
                handle.write('1')
            if not _wait_until(lambda: self.frozen, timeout):
                raise HostError('%s did not freeze within %ss' % (self.name, timeout))
        else:
            for pid in self._processes():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGSTOP)

    def thaw(self):
        """Undo ``freeze``."""
        control = self._unified_file('cgroup.freeze')
        if control and os.path.exists(control):
            with open(control, 'w') as handle:
                handle.write('0')
            _wait_until(lambda: not self.frozen, 10)
        else:
            for pid in self._processes():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGCONT)

    def _processes(self):
        pids = set()
        for root in _cgroup_roots():
            for procs in glob.glob(os.path.join(root, self.cgroup_name, '**', 'cgroup.procs'), recursive=True):
                with open(procs) as handle:
                    pids.update(int(line) for line in handle if line.strip())
        return sorted(pids)

    def destroy(self):
        """Stop the host if it runs, unmount it, remove its cgroups and its disk."""
        self.stop()
        if _mounted(self.merged):
            result = _run(['umount', self.merged], check=False)
            if result.returncode != 0:
                _run(['umount', '--lazy', self.merged])
        for root in _cgroup_roots():
            _remove_cgroup_tree(os.path.join(root, self.cgroup_name))
        if os.path.isdir(self.directory) and os.path.realpath(self.directory).startswith(os.path.realpath(HOSTS_DIR) + os.sep):
            shutil.rmtree(self.directory)

    # -- access

    def ssh_command(self, command=None):
        """The ssh argv that runs ``command`` (a shell string) on this host as root."""
        argv = ['ssh', '-i', SSH_KEY] + list(SSH_OPTIONS) + ['-p', str(SSH_PORT), '%s@%s' % (SSH_USER, self.address)]
        if command:
            argv.append(command)
        return argv

    def ssh(self, command, check=True, timeout=60):
        """Run a shell command on the host; returns the CompletedProcess (stdout and stderr merged)."""
        try:
            result = subprocess.run(self.ssh_command(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            if check:
                raise HostError('ssh %s %r timed out after %ss' % (self.name, command, timeout))
            return subprocess.CompletedProcess(command, 124, stdout='', stderr=None)
        if check and result.returncode != 0:
            raise HostError('ssh %s %r exited %d: %s' % (self.name, command, result.returncode, result.stdout[-2000:]))
        return result

    def inventory_vars(self):
        """Ansible connection variables for this host."""
        return {
            'ansible_host': self.address,
            'ansible_port': SSH_PORT,
            'ansible_user': SSH_USER,
            'ansible_ssh_private_key_file': SSH_KEY,
            'ansible_ssh_common_args': ' '.join(SSH_OPTIONS[:8]),
            'ansible_python_interpreter': '/usr/bin/python3',
        }


# nspawn processes started by this process. A long-lived caller (pytest) must
# reap them: an exited but unreaped nspawn is a zombie that still counts as a
# member of its cgroup, which then cannot be removed.
_unreaped = []


def _detach(proc):
    """Remember a started nspawn so that ``_reap`` collects it once it exits."""
    _unreaped.append(proc)
    _reap()


def _reap():
    for each in list(_unreaped):
        if each.poll() is not None:
            _unreaped.remove(each)


# ---------------------------------------------------------------- sets of hosts

def _addresses(first_address, count):
    first = ipaddress.IPv4Address(first_address)
    return [str(first + i) for i in range(count)]


def up(count, set_name=DEFAULT_SET, first_address=DEFAULT_FIRST_ADDRESS, log=None, timeout=90):
    """Boot hosts ``<set>-1`` .. ``<set>-N`` (reusing those that already run); returns the Host list."""
    if count < 1:
        raise HostError('up needs at least one host')
    check_prerequisites()
    ensure_rootfs(log=log)
    ensure_ssh_key()
    hosts = []
    with _locked(STATE_LOCK):
        state = _load_state()
        taken = {entry['address']: name for name, entry in state.items() if entry.get('set') != set_name}
        for index, address in enumerate(_addresses(first_address, count), start=1):
            name = '%s-%d' % (set_name, index)
            if address in taken:
                raise HostError('address %s is already used by host %s of another set' % (address, taken[address]))
            entry = state.get(name)
            if entry and entry['address'] != address:
                raise HostError('%s exists with address %s, not %s: run `hosts.py down --set %s` first'
                                % (name, entry['address'], address, set_name))
            host = Host.from_state(entry) if entry else Host(name, address, set_name)
            hosts.append(host)
        started = []
        try:
            for host in hosts:
                if not host.running:
                    host.start(wait=False)
                    started.append(host)
                state[host.name] = host.describe()
            _save_state(state)
            for host in hosts:
                host.wait_ready(timeout)
                if host.frozen:
                    host.thaw()
        except Exception:
            for host in started:
                with contextlib.suppress(Exception):
                    host.stop(timeout=10)
            raise
        finally:
            for host in hosts:
                state[host.name] = host.describe()
            _save_state(state)
    return hosts


def hosts_in_state(set_name=None):
    """The recorded hosts (of one set, or all)."""
    return [Host.from_state(entry) for _name, entry in sorted(_load_state().items())
            if set_name is None or entry.get('set') == set_name]


def get_host(name):
    """The recorded host called ``name``."""
    entry = _load_state().get(name)
    if entry is None:
        raise HostError('no host called %s (see `hosts.py status`)' % name)
    return Host.from_state(entry)


def record(host):
    """Save a host's current pid and state (the state file is how other processes find it)."""
    with _locked(STATE_LOCK):
        state = _load_state()
        state[host.name] = host.describe()
        _save_state(state)


def down(set_name=None, log=None):
    """Stop and remove the hosts of one set (or every recorded host, and any stray mount of the harness)."""
    errors = []
    with _locked(STATE_LOCK):
        state = _load_state()
        for name, entry in sorted(state.items()):
            if set_name is not None and entry.get('set') != set_name:
                continue
            host = Host.from_state(entry)
            try:
                host.destroy()
                state.pop(name)
                if log:
                    log('%s removed' % name)
            except Exception as exc:  # pylint: disable=broad-except
                errors.append('%s: %s' % (name, exc))
        if set_name is None:
            errors.extend(_remove_strays())
        _save_state(state)
    if errors:
        raise HostError('could not remove every host: ' + '; '.join(errors))


def _remove_strays():
    """Mounts and cgroups the harness left behind (a killed run), when no set is named."""
    errors = []
    hosts_dir = os.path.realpath(HOSTS_DIR) + os.sep
    with open('/proc/self/mounts') as handle:
        mounts = [line.split()[1] for line in handle if line.split()[1].startswith(hosts_dir)]
    for mount in mounts:
        if _run(['umount', mount], check=False).returncode != 0:
            errors.append('cannot unmount %s' % mount)
    for root in _cgroup_roots():
        for path in glob.glob(os.path.join(root, CGROUP_PREFIX + '*')):
            with contextlib.suppress(HostError):
                _remove_cgroup_tree(path)
    return errors


class HostSet(object):
    """N fresh hosts booted together, always torn down by ``with`` (also when the block fails)."""

    def __init__(self, set_name, count=2, first_address=DEFAULT_FIRST_ADDRESS, timeout=90):
        self.set_name = set_name
        self.count = count
        self.first_address = first_address
        self.timeout = timeout
        self.hosts = []

    def up(self):
        """Boot the set on fresh disks (leftovers of an earlier run of the same set are removed first)."""
        down(self.set_name)
        try:
            self.hosts = up(self.count, self.set_name, self.first_address, timeout=self.timeout)
        except Exception:
            self.down()
            raise
        return self

    def down(self):
        down(self.set_name)
        self.hosts = []

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc_info):
        self.down()

    def __getitem__(self, index):
        return self.hosts[index]

    def __iter__(self):
        return iter(self.hosts)

    def __len__(self):
        return len(self.hosts)


def inventory(set_name=None, group=None):
    """An Ansible inventory (dict, YAML-compatible) of the recorded hosts."""
    group_hosts = {}
    for host in hosts_in_state(set_name):
        group_hosts[host.name] = host.inventory_vars()
    return {'all': {'children': {group or (set_name or 'test_hosts').replace('-', '_'): {'hosts': group_hosts}}}}


# ---------------------------------------------------------------- command line

def _print_status():
    hosts = hosts_in_state()
    if not hosts:
        print('no test hosts recorded')
    for host in hosts:
        print('%-24s %-12s %-8s nspawn=%s pid1=%s' % (host.name, host.address, host.state,
                                                      host.nspawn_pid if host.running else '-', host.pid1 or '-'))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    p_up = sub.add_parser('up', help='boot N hosts (reuses running ones) and print them as JSON')
    p_up.add_argument('count', type=int)
    p_up.add_argument('--set', dest='set_name', default=DEFAULT_SET, help='name of the set (hosts are SET-1..SET-N)')
    p_up.add_argument('--first-address', default=DEFAULT_FIRST_ADDRESS, help='loopback address of SET-1; the next hosts follow')
    p_up.add_argument('--timeout', type=float, default=90)
    p_down = sub.add_parser('down', help='stop and remove hosts (all when no --set)')
    p_down.add_argument('--set', dest='set_name')
    sub.add_parser('status', help='list recorded hosts')
    for action in ('stop', 'start', 'crash', 'freeze', 'thaw'):
        p_act = sub.add_parser(action, help='%s one host' % action)
        p_act.add_argument('host')
    p_inv = sub.add_parser('inventory', help='print an Ansible inventory (YAML) of the hosts')
    p_inv.add_argument('--set', dest='set_name')
    p_inv.add_argument('--group', help='inventory group name (default: the set name)')
    p_ssh = sub.add_parser('ssh', help='run a command on a host (interactive shell without one)')
    p_ssh.add_argument('host')
    p_ssh.add_argument('remote', nargs=argparse.REMAINDER)
    sub.add_parser('rootfs', help='build the cached rootfs only')
    args = parser.parse_args(argv)

    def log(message):
        print(message, file=sys.stderr)

    try:
        if args.command == 'up':
            started = time.time()
            hosts = up(args.count, args.set_name, args.first_address, log=log, timeout=args.timeout)
            log('%d host(s) up in %.1f s' % (len(hosts), time.time() - started))
            print(json.dumps([host.describe() for host in hosts], indent=2))
        elif args.command == 'down':
            down(args.set_name, log=log)
        elif args.command == 'status':
            _print_status()
        elif args.command in ('stop', 'start', 'crash', 'freeze', 'thaw'):
            host = get_host(args.host)
            getattr(host, args.command)()
            record(host)
            print('%s %s' % (host.name, host.state))
        elif args.command == 'inventory':
            import yaml  # ansible's dependency; only this sub-command needs it
            print(yaml.safe_dump(inventory(args.set_name, args.group), default_flow_style=False, sort_keys=True))
        elif args.command == 'ssh':
            host = get_host(args.host)
            os.execvp('ssh', host.ssh_command(' '.join(args.remote) if args.remote else None))
        elif args.command == 'rootfs':
            print(ensure_rootfs(log=log))
    except HostError as exc:
        print('hosts.py: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
