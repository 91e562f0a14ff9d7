# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the sync daemon tests: daemon processes, task setup, independent tree comparison.

Holds no tests. The tree comparison walks both clusters with plain kazoo
calls (get/get_children), never with the engine under test.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS_DIR = os.path.join(REPO_ROOT, '.cache', 'collections')
DAEMON_MODULE = 'ansible_collections.zookeeper.migration.plugins.module_utils._daemon'
SESSION_TIMEOUT = 4.0

_live = set()


def wait_for(predicate, timeout=15.0, interval=0.05, what='condition'):
    """Poll ``predicate`` until it returns something truthy; AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError('timed out after %.1fs waiting for %s (last value %r)' % (timeout, what, last))


def read_tree(client, base):
    """{path: (data, ephemeral)} under ``base`` (inclusive), walked with plain kazoo calls."""
    out = {}
    pending = [base]
    while pending:
        path = pending.pop()
        try:
            data, stat = client.get(path)
            children = client.get_children(path)
        except Exception as exc:  # pylint: disable=broad-except
            if type(exc).__name__ == 'NoNodeError':
                continue
            raise
        out[path] = (data or b'', stat.ephemeralOwner != 0)
        for name in children:
            pending.append(path.rstrip('/') + '/' + name)
    return out


def persistent_tree(client, base):
    """{path: data} of the persistent nodes under ``base``."""
    return dict((path, data) for path, (data, ephemeral) in read_tree(client, base).items() if not ephemeral)


def tree_diff(first, second):
    """A short description of how two ``persistent_tree`` results differ ('' when equal)."""
    only_first = sorted(set(first) - set(second))
    only_second = sorted(set(second) - set(first))
    differ = sorted(path for path in set(first) & set(second) if first[path] != second[path])
    parts = []
    if only_first:
        parts.append('only on the first: %s' % only_first[:10])
    if only_second:
        parts.append('only on the second: %s' % only_second[:10])
    if differ:
        parts.append('data differs: %s' % ['%s (%r vs %r)' % (p, first[p][:40], second[p][:40]) for p in differ[:10]])
    return '; '.join(parts)


def wait_trees_equal(source_client, dest_client, base, timeout=20.0):
    """Wait until both persistent trees under ``base`` are equal; return the tree."""
    state = {}

    def equal():
        state['src'] = persistent_tree(source_client, base)
        state['dst'] = persistent_tree(dest_client, base)
        return state['src'] == state['dst']
    try:
        wait_for(equal, timeout=timeout, interval=0.1, what='both trees under %s to be equal' % base)
    except AssertionError:
        raise AssertionError('trees under %s differ after %.0fs: %s' % (base, timeout, tree_diff(state['src'], state['dst'])))
    return state['src']


def make_store(client, root):
    """A ControlStore on ``client`` under ``root`` (created).

    The session clusters have no authentication, so the store is open on
    purpose (``allow_open_acl``): these tests are about syncing; the control
    store's ACLs are tested in test_control.py against a digest-auth server.
    """
    from ansible_collections.zookeeper.migration.plugins.module_utils import _control
    store = _control.ControlStore(client, root, allow_open_acl=True)
    store.ensure_root()
    return store


def register_clusters(store, source, destination, session_timeout=SESSION_TIMEOUT):
    """Register the harness clusters as 'src' and 'dst'."""
    store.put_cluster({'name': 'src', 'hosts': source.host_list, 'session_timeout': session_timeout, 'connect_timeout': 10})
    store.put_cluster({'name': 'dst', 'hosts': destination.host_list, 'session_timeout': session_timeout, 'connect_timeout': 10})


def put_task(store, name, paths, **fields):
    spec = {'name': name, 'source': 'src', 'destination': 'dst', 'paths': list(paths)}
    spec.update(fields)
    store.put_task(spec)
    return store.get_task(name)


def task_status(store, name):
    try:
        return store.get_status(name) or {}
    except Exception:  # pylint: disable=broad-except
        return {}


def wait_streaming(store, name, timeout=30.0, leader=None):
    """Wait until the task's status says streaming (and, if given, led by ``leader``); return the status."""
    def ready():
        status = task_status(store, name)
        if status.get('phase') == 'streaming' and (leader is None or status.get('leader') == leader) \
                and time.time() - status.get('heartbeat', 0) < 5:
            return status
        return None
    return wait_for(ready, timeout=timeout, interval=0.1, what='task %s streaming%s' % (name, ' on %s' % leader if leader else ''))


class DaemonProcess(object):
    """One real daemon process (``python -m ..._daemon run``) with its own config and log file."""

    def __init__(self, directory, daemon_id, control, root, metrics_port=None, **settings):
        self.directory = directory
        self.daemon_id = daemon_id
        self.config_path = os.path.join(directory, '%s.json' % daemon_id)
        self.log_path = os.path.join(directory, '%s.log' % daemon_id)
        config = {'daemon_id': daemon_id, 'control': dict(control), 'root': root, 'status_interval': 0.5,
                  'checkpoint_interval': 0.2, 'task_retry_delay': 0.5,
                  'metrics_address': '127.0.0.1:%d' % metrics_port if metrics_port else None}
        config['control'].setdefault('session_timeout', SESSION_TIMEOUT)
        # Unauthenticated test clusters: the daemons run an open control store knowingly (it fails closed otherwise).
        config['control'].setdefault('allow_open_acl', True)
        config.update(settings)
        with open(self.config_path, 'w') as handle:
            json.dump(config, handle)
        self.process = None

    def start(self):
        env = dict(os.environ)
        env['PYTHONPATH'] = COLLECTIONS_DIR + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
        log = open(self.log_path, 'ab')
        try:
            self.process = subprocess.Popen([sys.executable, '-m', DAEMON_MODULE, 'run', '--config', self.config_path], env=env,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        _live.add(self)
        return self

    @property
    def pid(self):
        return self.process.pid

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def signal(self, signum):
        if self.alive():
            os.kill(self.process.pid, signum)

    def kill(self):
        """SIGKILL: a crash."""
        if self.alive():
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)

    def freeze(self):
        self.signal(signal.SIGSTOP)

    def thaw(self):
        self.signal(signal.SIGCONT)

    def stop(self, timeout=30.0):
        """SIGTERM and wait; returns the exit code."""
        if not self.alive():
            return self.process.returncode if self.process else None
        os.kill(self.process.pid, signal.SIGCONT)
        self.process.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError('daemon %s did not exit within %.0fs of SIGTERM\n%s' % (self.daemon_id, timeout, self.tail()))

    def log_text(self):
        try:
            with open(self.log_path, 'rb') as handle:
                return handle.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def log_records(self):
        """The JSON log lines parsed (other lines skipped)."""
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def tail(self, lines=60):
        return '--- %s log (last %d lines)\n%s' % (self.daemon_id, lines, '\n'.join(self.log_text().splitlines()[-lines:]))


def cleanup_daemons(daemons):
    for daemon in daemons:
        try:
            daemon.kill()
        except Exception:  # pylint: disable=broad-except
            pass
        _live.discard(daemon)


class SyncEnv(object):
    """A control root on the destination, both clusters registered, daemons started on demand."""

    def __init__(self, source, destination, base, tmp_path, src_client, dst_client):
        self.source = source
        self.destination = destination
        self.base = base
        self.tmp_path = tmp_path
        self.src = src_client
        self.dst = dst_client
        self.root = '/zkm' + base.replace('/', '-')
        self.store = make_store(dst_client, self.root)
        register_clusters(self.store, source, destination)
        self.daemons = []
        self.task = 'task-%s' % re.sub(r'[^A-Za-z0-9]+', '-', base.rsplit('/', 1)[1])[-60:].strip('-')

    def daemon(self, daemon_id='d1', start=True, **settings):
        process = DaemonProcess(str(self.tmp_path), daemon_id, {'hosts': self.destination.host_list}, self.root, **settings)
        self.daemons.append(process)
        return process.start() if start else process

    def put_task(self, **fields):
        fields.setdefault('paths', [self.base])
        return put_task(self.store, self.task, **fields)

    def update_task(self, **fields):
        def mutate(spec):
            spec.update(fields)
        self.store.update_task(self.task, mutate)

    def status(self):
        return task_status(self.store, self.task)

    def leader(self):
        status = self.status()
        if status.get('phase') in ('streaming', 'initial_sync') and time.time() - status.get('heartbeat', 0) < 3:
            return status.get('leader')
        return None

    def streaming(self, timeout=30.0, leader=None):
        return wait_streaming(self.store, self.task, timeout=timeout, leader=leader)

    def in_sync(self, timeout=20.0):
        return wait_trees_equal(self.src, self.dst, self.base, timeout=timeout)

    def logs(self):
        return '\n'.join(daemon.tail(80) for daemon in self.daemons)
