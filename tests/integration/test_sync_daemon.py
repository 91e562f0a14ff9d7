# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sync daemon against real ZooKeeper: real daemon processes, real ensembles.

Each test gets its own control root (so daemons of one test never see the
tasks of another) and its own base path, and ends with an independent
comparison of both trees (plain kazoo walks, not the engine under test).
"""

import json
import re
import threading
import time
import urllib.request

import pytest

from tests.harness.zkharness import free_port
from tests.integration.sync_support import persistent_tree, wait_for

pytestmark = pytest.mark.integration


def _fill(client, base, count, prefix='n'):
    txn = client.transaction()
    for index in range(count):
        txn.create('%s/%s%03d' % (base, prefix, index), ('value-%d' % index).encode())
    assert not [r for r in txn.commit() if isinstance(r, Exception)]


# --------------------------------------------------------------------------
# one-way and bidirectional basics
# --------------------------------------------------------------------------

def test_one_way_creates_updates_deletes(sync_env):
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    _fill(src, base, 30)
    src.create(base + '/deep/a/b/c', b'deep', makepath=True)
    src.create(base + '/binary', bytes(range(256)))
    src.create(base + '/empty', b'')
    env.put_task(mode='one_way')
    env.daemon('d1')
    env.streaming()
    env.in_sync()
    # streaming: create, update, delete (a leaf and a whole subtree)
    src.create(base + '/new/child', b'c', makepath=True)
    src.set(base + '/n001', b'updated')
    src.delete(base + '/n002')
    src.delete(base + '/deep', recursive=True)
    tree = env.in_sync()
    assert tree[base + '/n001'] == b'updated'
    assert base + '/n002' not in tree and base + '/deep/a' not in tree
    assert tree[base + '/binary'] == bytes(range(256))
    # one-way: a write on the destination does not flow back to the source
    dst.create(base + '/dest-only', b'x')
    time.sleep(1.0)
    assert src.exists(base + '/dest-only') is None
    dst.delete(base + '/dest-only')
    # The leader writes status every status_interval: wait for one that counts the changes.
    status = wait_for(lambda: env.status() if env.status()['events_source_to_destination'] >= 35 else None,
                      what='status counting the 35 source events')
    assert status['events_destination_to_source'] == 0
    assert env.daemons[0].stop() == 0
    env.in_sync()


def test_bidirectional_creates_updates_deletes(sync_env):
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    _fill(src, base, 20)
    env.put_task(mode='bidirectional')
    env.daemon('d1')
    env.streaming()
    env.in_sync()
    src.create(base + '/from-src', b's')
    dst.create(base + '/from-dst/child', b'd', makepath=True)
    src.set(base + '/n001', b'src-update')
    dst.set(base + '/n002', b'dst-update')
    src.delete(base + '/n003')
    dst.delete(base + '/n004')
    tree = env.in_sync()
    assert tree[base + '/from-dst/child'] == b'd'
    assert tree[base + '/n001'] == b'src-update' and tree[base + '/n002'] == b'dst-update'
    assert base + '/n003' not in tree and base + '/n004' not in tree
    dst.delete(base + '/from-dst', recursive=True)
    tree = env.in_sync()
    assert base + '/from-dst' not in tree
    # The leader writes status every status_interval: wait for one that counts the changes.
    status = wait_for(lambda: env.status() if env.status()['events_destination_to_source'] >= 4 else None,
                      what='status counting the 4 destination events')
    assert status['conflicts'] == 0


def test_writers_on_both_sides_at_once(sync_env):
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    src.create(base + '/shared', b'start')
    env.put_task(mode='bidirectional')
    env.daemon('d1')
    env.streaming()
    stop = threading.Event()
    errors = []

    def writer(client, side):
        index = 0
        try:
            while not stop.is_set() and index < 150:
                client.create('%s/%s-%04d' % (base, side, index), ('%s %d' % (side, index)).encode())
                if index % 10 == 0:
                    client.set(base + '/shared', ('%s %d' % (side, index)).encode())
                if index % 7 == 3:
                    client.delete('%s/%s-%04d' % (base, side, index - 3))
                index += 1
                time.sleep(0.005)
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)
    threads = [threading.Thread(target=writer, args=(src, 'src')), threading.Thread(target=writer, args=(dst, 'dst'))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stop.set()
    assert not errors
    tree = env.in_sync(timeout=30)
    assert len([p for p in tree if '/src-' in p]) == 150 - len([i for i in range(150) if i % 7 == 3])
    assert len([p for p in tree if '/dst-' in p]) == len([p for p in tree if '/src-' in p])


def test_loop_check_one_write_per_user_write(sync_env):
    """Every user write causes exactly one write on the other side (counted from data versions and zxids)."""
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    _fill(src, base, 5)
    env.put_task(mode='bidirectional')
    env.daemon('d1')
    env.streaming()
    env.in_sync()
    time.sleep(0.5)
    events_before = env.status()
    before_src = dict((i, src.exists('%s/n%03d' % (base, i))) for i in range(5))
    before_dst = dict((i, dst.exists('%s/n%03d' % (base, i))) for i in range(5))
    writes = {0: ('src', 3), 1: ('dst', 3), 2: ('src', 1), 3: ('dst', 2)}
    for index, (side, count) in writes.items():
        client, other = (src, dst) if side == 'src' else (dst, src)
        path = '%s/n%03d' % (base, index)
        for round_ in range(count):
            value = ('%s-%d' % (side, round_)).encode()
            client.set(path, value)
            wait_for(lambda: other.get(path)[0] == value, timeout=10, interval=0.01, what='%s to reach the other side' % path)
    time.sleep(1.5)  # let any (wrong) echo happen
    for index in range(5):
        path = '%s/n%03d' % (base, index)
        side, count = writes.get(index, (None, 0))
        src_stat, dst_stat = src.exists(path), dst.exists(path)
        # one user write = one version step on each side: no echo, no extra write
        assert src_stat.version - before_src[index].version == count, (path, 'source', src_stat.version, before_src[index].version)
        assert dst_stat.version - before_dst[index].version == count, (path, 'destination', dst_stat.version, before_dst[index].version)
        if count:
            written_on, copied_to = (src_stat, dst_stat) if side == 'src' else (dst_stat, src_stat)
            assert copied_to.mzxid > (before_dst if side == 'src' else before_src)[index].mzxid
        else:
            assert src_stat.mzxid == before_src[index].mzxid and dst_stat.mzxid == before_dst[index].mzxid
    # the engine's own counters agree: 4 writes copied to the destination, 5 to the source
    status = wait_for(lambda: env.status() if env.status()['heartbeat'] > time.time() - 0.6 else None, what='fresh status')
    assert status['events_source_to_destination'] - events_before['events_source_to_destination'] == 4
    assert status['events_destination_to_source'] - events_before['events_destination_to_source'] == 5
    assert status['conflicts'] == 0
    env.in_sync()


# --------------------------------------------------------------------------
# conflicts
# --------------------------------------------------------------------------

@pytest.mark.parametrize('policy', ['source_wins', 'destination_wins', 'newest'])
def test_conflict_policies(sync_env, policy):
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    src.create(base + '/both-a', b'0')
    src.create(base + '/both-b', b'0')
    src.create(base + '/upd-del', b'0')
    env.put_task(mode='bidirectional', conflict=policy)
    env.daemon('d1')
    env.streaming()
    env.in_sync()
    time.sleep(0.5)  # baseline checkpointed
    env.update_task(state='paused')
    wait_for(lambda: env.status().get('phase') == 'paused', what='task paused')
    # both sides change the same nodes while nothing syncs
    src.set(base + '/both-a', b'src-a')
    dst.set(base + '/both-b', b'dst-b-first')
    time.sleep(0.05)
    src.set(base + '/both-b', b'src-b')     # source written later on both-b
    dst.set(base + '/both-a', b'dst-a')     # destination written later on both-a
    src.set(base + '/upd-del', b'src-changed')
    dst.delete(base + '/upd-del')
    env.update_task(state='running')
    tree = env.in_sync()
    if policy == 'source_wins':
        expected = {'both-a': b'src-a', 'both-b': b'src-b', 'upd-del': b'src-changed'}
    elif policy == 'destination_wins':
        expected = {'both-a': b'dst-a', 'both-b': b'dst-b-first', 'upd-del': None}
    else:  # newest by mtime; an update beats a delete
        expected = {'both-a': b'dst-a', 'both-b': b'src-b', 'upd-del': b'src-changed'}
    for name, value in expected.items():
        assert tree.get(base + '/' + name) == value, (name, tree.get(base + '/' + name))
    status = wait_for(lambda: env.status() if env.status().get('conflicts', 0) >= 3 else None, what='3 conflicts counted')
    assert status['conflicts'] == 3
    conflicts = [r for r in env.daemons[0].log_records() if r.get('event') == 'conflict']
    assert set(r['path'] for r in conflicts) == set(base + '/' + name for name in expected)


# --------------------------------------------------------------------------
# node types
# --------------------------------------------------------------------------

def test_ephemerals_untouched_on_both_sides(sync_env, zk_client_factory):
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    holder_src = zk_client_factory(env.source)
    holder_dst = zk_client_factory(env.destination)
    src.create(base + '/services/api', b'', makepath=True)
    holder_src.create(base + '/services/api/src-host', b'10.0.0.1', ephemeral=True)
    env.put_task(mode='bidirectional')
    env.daemon('d1')
    env.streaming()
    env.in_sync()
    assert dst.exists(base + '/services/api/src-host') is None
    holder_dst.create(base + '/services/api/dst-host', b'10.0.0.2', ephemeral=True)
    holder_src.create(base + '/services/api/later', b'10.0.0.3', ephemeral=True)
    src.create(base + '/services/api/persistent', b'p')
    env.in_sync()
    time.sleep(0.5)
    assert src.exists(base + '/services/api/dst-host') is None
    assert dst.exists(base + '/services/api/later') is None
    assert src.exists(base + '/services/api/src-host').ephemeralOwner != 0
    assert dst.exists(base + '/services/api/dst-host').ephemeralOwner != 0
    # a persistent node on one side, an ephemeral of the same name on the other: left alone
    dst.create(base + '/services/api/clash', b'persistent')
    time.sleep(1.0)
    holder_src.delete(base + '/services/api/src-host')
    env.in_sync()
    assert dst.exists(base + '/services/api/dst-host').ephemeralOwner != 0
    # a subtree deleted on the source whose destination copy holds an ephemeral node: the ephemeral and its parent stay
    src.create(base + '/held/config', b'c', makepath=True)
    env.in_sync()
    holder_dst.create(base + '/held/session', b'', ephemeral=True)
    src.delete(base + '/held', recursive=True)
    wait_for(lambda: dst.exists(base + '/held/config') is None, what='the persistent child deleted on the destination')
    wait_for(lambda: 'holds ephemeral' in env.daemons[0].log_text(), what='the held parent logged')
    assert dst.exists(base + '/held/session').ephemeralOwner != 0
    holder_dst.delete(base + '/held/session')
    dst.delete(base + '/held')
    env.in_sync()


def test_sequential_nodes_never_collide(sync_env):
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    src.create(base + '/queue', b'')
    for index in range(12):
        src.create(base + '/queue/item-', ('job %d' % index).encode(), sequence=True)
    for index in range(5):   # ephemeral churn on the source raises its counter further
        path = src.create(base + '/queue/lock-', b'', ephemeral=True, sequence=True)
        src.delete(path)
    env.put_task(mode='one_way')
    env.daemon('d1')
    env.streaming()
    env.in_sync()
    for index in range(3):  # more while streaming
        src.create(base + '/queue/item-', ('late %d' % index).encode(), sequence=True)
    tree = env.in_sync()
    copied = sorted(int(path[-10:]) for path in tree if '/queue/item-' in path)
    assert len(copied) == 15

    def counter_aligned():
        src_stat, dst_stat = src.exists(base + '/queue'), dst.exists(base + '/queue')
        return (dst_stat.cversion + dst_stat.numChildren) // 2 >= (src_stat.cversion + src_stat.numChildren) // 2
    wait_for(counter_aligned, what='destination sequential counter raised to the source one')
    created = dst.create(base + '/queue/item-', b'on destination', sequence=True)
    assert int(created[-10:]) > max(copied)
    dst.delete(created)


# --------------------------------------------------------------------------
# leader death and fencing
# --------------------------------------------------------------------------

def _writer(client, base, stop, written, count=400, delay=0.004):
    """Updates keys k00..k19 in turns, recording the last value written to each."""
    index = 0
    while not stop.is_set() and index < count:
        key = '%s/k%02d' % (base, index % 20)
        value = ('w%05d' % index).encode()
        client.set(key, value)
        written[key] = value
        index += 1
        time.sleep(delay)


def test_kill9_leader_other_daemon_takes_over_without_losing_writes(sync_env):
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    for index in range(20):
        src.create('%s/k%02d' % (base, index), b'initial')
    env.put_task(mode='one_way')
    first = env.daemon('d1')
    env.streaming(leader='d1')
    second = env.daemon('d2')
    wait_for(lambda: 'd2' in env.store.list_daemons(), what='standby d2 registered')
    time.sleep(0.5)
    stop, written = threading.Event(), {}
    writer = threading.Thread(target=_writer, args=(src, base, stop, written))
    writer.start()
    time.sleep(0.6)
    killed_at = time.monotonic()
    first.kill()
    env.streaming(leader='d2', timeout=20)
    takeover = time.monotonic() - killed_at
    writer.join(30)
    stop.set()
    tree = env.in_sync(timeout=20)
    for key, value in written.items():
        assert tree[key] == value
    assert second.alive()
    # how fast is measured by tests/bench/bench_sync.py, not asserted here
    print('takeover after kill -9: %.1fs' % takeover)


def test_delete_during_failover_is_not_resurrected(sync_env):
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    _fill(src, base, 10)
    env.put_task(mode='bidirectional')
    first = env.daemon('d1')
    env.streaming(leader='d1')
    env.in_sync()
    time.sleep(1.0)   # checkpointed
    second = env.daemon('d2')
    wait_for(lambda: 'd2' in env.store.list_daemons(), what='standby d2 registered')
    first.kill()
    # while no daemon leads: deletes on either side, an update, a create
    dst.delete(base + '/n001')
    src.delete(base + '/n002')
    dst.set(base + '/n003', b'changed during failover')
    src.create(base + '/born-in-failover', b'new')
    env.streaming(leader='d2', timeout=20)
    tree = env.in_sync()
    assert base + '/n001' not in tree and base + '/n002' not in tree
    assert tree[base + '/n003'] == b'changed during failover'
    assert tree[base + '/born-in-failover'] == b'new'
    assert second.alive()


def test_frozen_leader_writes_nothing_stale_after_thaw(sync_env):
    """SIGSTOP the leader past its session timeout; the standby takes over; after SIGCONT the old leader's writes fail on the fence."""
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    for index in range(20):
        src.create('%s/k%02d' % (base, index), b'initial')
    # a low write rate keeps a backlog, so the frozen leader holds a batch it has read but not yet written
    env.put_task(mode='one_way', max_write_rate=40)
    first = env.daemon('d1')
    env.streaming(leader='d1')
    env.daemon('d2')
    wait_for(lambda: 'd2' in env.store.list_daemons(), what='standby d2 registered')
    stop, written = threading.Event(), {}
    writer = threading.Thread(target=_writer, args=(src, base, stop, written, 200, 0.005))
    writer.start()
    time.sleep(0.5)
    first.freeze()
    try:
        env.streaming(leader='d2', timeout=20)
        writer.join(30)
        stop.set()
        # the new leader catches up on everything the writer did
        env.update_task(max_write_rate=0)
        env.in_sync(timeout=30)
    finally:
        first.thaw()
    time.sleep(3.0)   # the old leader wakes up and tries to send what it held
    tree = env.in_sync(timeout=5)
    for key, value in written.items():
        assert tree[key] == value, 'stale value on %s after the old leader woke up' % key
    final = persistent_tree(dst, base)
    time.sleep(1.0)
    assert persistent_tree(dst, base) == final
    old_log = first.log_text()
    assert re.search(r'fence|leadership_lost|leadership lost|not the leader|session', old_log), first.tail()


def test_session_expiry_of_the_only_daemon(sync_env):
    """Freeze the only daemon beyond its session timeout: every session expires; it recovers and catches up."""
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    _fill(src, base, 10)
    env.put_task(mode='bidirectional')
    daemon = env.daemon('d1')
    env.streaming()
    env.in_sync()
    time.sleep(0.5)
    daemon.freeze()
    try:
        time.sleep(6.0)     # > 4 s session timeout: control and data sessions expire on the servers
        src.set(base + '/n001', b'while frozen (src)')
        dst.set(base + '/n002', b'while frozen (dst)')
        dst.delete(base + '/n003')
        src.create(base + '/created-while-frozen', b'x')
    finally:
        daemon.thaw()
    tree = env.in_sync(timeout=30)
    assert tree[base + '/n001'] == b'while frozen (src)' and tree[base + '/n002'] == b'while frozen (dst)'
    assert base + '/n003' not in tree and base + '/created-while-frozen' in tree
    env.streaming(leader='d1')
    src.set(base + '/n004', b'after recovery')
    tree = env.in_sync()
    assert tree[base + '/n004'] == b'after recovery'


# --------------------------------------------------------------------------
# process behaviour: metrics, health, live task changes, signals
# --------------------------------------------------------------------------

def test_metrics_health_status_cli_and_live_changes(sync_env, tmp_path):
    env = sync_env
    src, base = env.src, env.base
    _fill(src, base, 5)
    port = free_port()
    env.put_task(mode='one_way', state='stopped')
    daemon = env.daemon('d1', metrics_port=port)
    wait_for(lambda: 'd1' in env.store.list_daemons(), what='daemon registered')
    time.sleep(0.5)
    assert dst_missing(env.dst, base + '/n001')   # stopped: nothing synced
    env.update_task(state='running')
    env.streaming()
    env.in_sync()
    health = json.loads(urllib.request.urlopen('http://127.0.0.1:%d/healthz' % port, timeout=5).read())
    assert health['status'] == 'ok' and health['tasks'][env.task]['role'] == 'leader'
    src.set(base + '/n001', b'metric me')
    env.in_sync()
    metrics = urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=5).read().decode()
    assert 'zkmigration_sync_events_total{direction="source_to_destination",task="%s"}' % env.task in metrics
    assert 'zkmigration_sync_latency_seconds_bucket' in metrics
    # a live change of the paths: the engine restarts with the new spec
    src.create(base + '-second/x', b'second tree', makepath=True)
    env.update_task(paths=[base, base + '-second'])
    wait_for(lambda: env.dst.exists(base + '-second/x') is not None, what='new task path synced')
    # the CLI reads the same control store
    import subprocess
    import sys
    from tests.integration.sync_support import COLLECTIONS_DIR, DAEMON_MODULE
    env_vars = {'PYTHONPATH': COLLECTIONS_DIR, 'PATH': '/usr/bin:/bin'}

    def cli_streaming_task():
        out = subprocess.run([sys.executable, '-m', DAEMON_MODULE, 'status', '--config', daemon.config_path, '--json'], env=env_vars,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        task = [t for t in report['tasks'] if t['name'] == env.task][0]
        return task if task['status'].get('phase') == 'streaming' else None

    # the restarted engine reports initial_sync until its new initial sync ends: poll the CLI
    # until it shows streaming again instead of racing the status writer
    task = wait_for(cli_streaming_task,
                    timeout=30.0, interval=0.5, what='CLI status reporting streaming after the spec change')
    assert task['leader'] == 'd1'
    table = subprocess.run([sys.executable, '-m', DAEMON_MODULE, 'status', '--config', daemon.config_path], env=env_vars,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=False)
    assert table.returncode == 0 and env.task in table.stdout.decode() and 'streaming' in table.stdout.decode()
    check = subprocess.run([sys.executable, '-m', DAEMON_MODULE, 'check-config', '--config', daemon.config_path], env=env_vars,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=False)
    assert check.returncode == 0 and b'reachable' in check.stdout, check.stderr
    # SIGTERM drains and exits 0; the registration goes away with it
    assert daemon.stop() == 0
    assert 'd1' not in env.store.list_daemons()
    records = daemon.log_records()
    assert records and all('ts' in r and 'level' in r and 'msg' in r for r in records)
    env.src.delete(base + '-second', recursive=True)
    env.dst.delete(base + '-second', recursive=True)


def dst_missing(client, path):
    return client.exists(path) is None


def test_daemon_refuses_an_open_control_store_unless_allowed(sync_env):
    """The daemon's control store fails closed: an unauthenticated control session is a configuration error (exit 2)."""
    import subprocess
    import sys
    from tests.integration.sync_support import COLLECTIONS_DIR, DAEMON_MODULE, DaemonProcess
    env = sync_env
    closed = DaemonProcess(str(env.tmp_path), 'closed', {'hosts': env.destination.host_list, 'allow_open_acl': False}, env.root)
    env.daemons.append(closed)
    closed.start()
    assert closed.process.wait(60) == 2, closed.tail()
    assert 'control session is not authenticated' in closed.log_text() and 'allow_open_acl' in closed.log_text()
    assert 'closed' not in env.store.list_daemons()
    env_vars = {'PYTHONPATH': COLLECTIONS_DIR, 'PATH': '/usr/bin:/bin'}
    check = subprocess.run([sys.executable, '-m', DAEMON_MODULE, 'check-config', '--config', closed.config_path], env=env_vars,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=False)
    assert check.returncode == 2 and b'control session is not authenticated' in check.stderr, check.stderr
    # opted in, the same daemon runs (knowingly open) and registers itself
    opened = env.daemon('opened')
    wait_for(lambda: 'opened' in env.store.list_daemons(), what='daemon registered')
    assert opened.stop() == 0
