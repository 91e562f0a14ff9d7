# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_protocol against real servers: multiRead, pipelined reads, persistent watches, containers and TTL nodes.

ZooKeeper 3.8 for every primitive; the real 3.4.13 server for the probes and
fallbacks (it answers unknown opcodes with UNIMPLEMENTED and closes the
connection: the client must work afterwards).
"""

import queue
import threading
import time

import pytest
from kazoo import exceptions as ke
from kazoo.protocol.connection import _CONNECTION_DROP
from kazoo.protocol.states import EventType, KazooState, KeeperState
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl, make_acl

from ansible_collections.zookeeper.migration.plugins.module_utils import _protocol
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import UnsupportedByServerError

pytestmark = pytest.mark.integration


def wait_for(predicate, timeout=20.0, interval=0.05, what='condition'):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError('%s not met within %ss' % (what, timeout))


class Events(object):
    """A watch callback that records events (and hands them to the test thread)."""

    def __init__(self):
        self.queue = queue.Queue()
        self.seen = []

    def __call__(self, event):
        self.seen.append(event)
        self.queue.put(event)

    def next(self, timeout=10.0):
        return self.queue.get(timeout=timeout)

    def collect_until(self, predicate, timeout=10.0):
        """Events until one satisfies ``predicate`` (included)."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError('no matching event within %ss; got %r' % (timeout, got))
            try:
                event = self.queue.get(timeout=remaining)
            except queue.Empty:
                raise AssertionError('no matching event within %ss; got %r' % (timeout, got))
            got.append(event)
            if predicate(event):
                return got

    def quiet(self, seconds=0.5):
        try:
            event = self.queue.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError('unexpected event %r' % (event,))


def comparable(slots):
    """Slots with exception instances replaced by their class (instances do not compare equal)."""
    return [type(slot) if isinstance(slot, Exception) else slot for slot in slots]


def drop_connection(client):
    """Make kazoo drop its connection (same session), as kazoo's own tests do."""
    client._call(_CONNECTION_DROP, client.handler.async_result())


def reconnects(client):
    """A list that receives every CONNECTED transition of ``client``."""
    seen = []

    def listener(state):
        if state == KazooState.CONNECTED:
            seen.append(time.monotonic())

    client.add_listener(listener)
    return seen


# -- multiRead ----------------------------------------------------------------

def test_multi_read_data_and_children_with_missing_nodes(zk_standalone, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_standalone)
    binary = bytes(range(256)) * 4
    zk.create(zk_path + '/bin', binary, makepath=True)
    zk.create(zk_path + '/empty', b'')
    zk.create(zk_path + '/text/ünï-cödé', 'värde'.encode('utf-8'), makepath=True)
    assert _protocol.supports_multi_read(zk)

    ops = [('data', zk_path + '/bin'), ('children', zk_path), ('data', zk_path + '/missing'),
           ('data', zk_path + '/empty'), ('children', zk_path + '/missing'), ('data', zk_path + '/text/ünï-cödé'),
           ('children', zk_path + '/text')]
    slots = _protocol.multi_read(zk, ops)

    assert slots[0] == zk.get(zk_path + '/bin')
    assert slots[0][0] == binary
    assert sorted(slots[1]) == ['bin', 'empty', 'text']
    assert isinstance(slots[2], ke.NoNodeError)
    assert slots[3] == (b'', zk.get(zk_path + '/empty')[1])
    assert isinstance(slots[4], ke.NoNodeError)
    assert slots[5][0] == 'värde'.encode('utf-8')
    assert slots[6] == ['ünï-cödé']


def test_multi_read_of_a_node_with_thousands_of_children(zk_standalone, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_standalone)
    parent = zk_path + '/wide'
    zk.create(parent, b'', makepath=True)
    names = ['child-%05d' % i for i in range(3000)]
    for start in range(0, len(names), 500):
        txn = zk.transaction()
        for name in names[start:start + 500]:
            txn.create(parent + '/' + name, name.encode())
        assert all(isinstance(r, str) for r in txn.commit())
    slots = _protocol.multi_read(zk, [('children', parent), ('data', parent)])
    assert sorted(slots[0]) == names
    assert slots[1][1].numChildren == 3000
    # All of them in windowed multiReads, against kazoo's answers.
    ops = [('data', parent + '/' + name) for name in names]
    results = _protocol.multi_read_many(zk, ops, batch_size=500, window=4)
    assert [data for data, _stat in results] == [name.encode() for name in names]
    assert results[1234] == zk.get(parent + '/' + names[1234])


def test_multi_read_async_keeps_several_requests_in_flight(zk_standalone, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_standalone)
    for i in range(20):
        zk.create('%s/n%02d' % (zk_path, i), b'%d' % i, makepath=True)
    pending = [_protocol.multi_read_async(zk, [('data', '%s/n%02d' % (zk_path, i))]) for i in range(20)]
    assert [result.get(timeout=10)[0][0] for result in pending] == [b'%d' % i for i in range(20)]
    assert _protocol.multi_read_async(zk, []).get() == []


def test_multi_read_reports_unreadable_nodes_per_slot(zk_auth, zk_client_factory, zk_path):
    admin = zk_client_factory(zk_auth)
    admin.create(zk_path + '/open', b'open', makepath=True)
    admin.create(zk_path + '/secret', b'secret', acl=[make_digest_acl('app', 'app-pw', all=True)])
    anonymous = zk_client_factory(zk_auth, auth=False)
    slots = _protocol.multi_read(anonymous, [('data', zk_path + '/secret'), ('data', zk_path + '/open'),
                                             ('children', zk_path + '/secret')])
    assert isinstance(slots[0], ke.NoAuthError)
    assert slots[1][0] == b'open'
    assert isinstance(slots[2], ke.NoAuthError)
    # The super identity reads everything.
    assert _protocol.multi_read(admin, [('data', zk_path + '/secret')])[0][0] == b'secret'


def test_multi_read_with_chroot(zk_standalone, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_standalone)
    zk.create(zk_path + '/a/b', b'deep', makepath=True)
    chrooted = zk_client_factory(zk_standalone, hosts=zk_standalone.hosts + zk_path)
    slots = _protocol.multi_read(chrooted, [('data', '/a/b'), ('children', '/'), ('children', '/a')])
    assert slots[0][0] == b'deep'
    assert slots[1] == ['a'] and slots[2] == ['b']


# -- pipelined reads -------------------------------------------------------------

def test_get_acls_pipelined_matches_kazoo(zk_auth, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_auth)
    acls = [
        OPEN_ACL_UNSAFE,
        [make_digest_acl('app', 'pw', all=True)],
        [make_digest_acl('app', 'pw', read=True, write=True), make_acl('world', 'anyone', read=True)],
        [make_acl('ip', '127.0.0.1', all=True)],
    ]
    zk.create(zk_path, b'', makepath=True)
    paths = []
    for start in range(0, 2000, 500):
        txn = zk.transaction()
        for i in range(start, start + 500):
            path = '%s/n%04d' % (zk_path, i)
            txn.create(path, b'', acl=acls[i % len(acls)])
            paths.append(path)
        txn.commit()
    missing = zk_path + '/missing'
    result = _protocol.get_acls_pipelined(zk, paths + [missing], window=300)
    assert isinstance(result.pop(missing), ke.NoNodeError)
    assert result == dict((path, zk.get_acls(path)) for path in paths)
    assert result[paths[1]][0] == acls[1]


def test_read_pipelined_matches_multi_read(zk_standalone, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_standalone)
    zk.create(zk_path + '/a/b', b'\x00\x01', makepath=True)
    zk.create(zk_path + '/empty', b'')
    ops = [('data', zk_path + '/a/b'), ('children', zk_path), ('data', zk_path + '/nope'), ('data', zk_path + '/empty'),
           ('children', zk_path + '/a')]
    expected = comparable(_protocol.multi_read(zk, ops))
    assert expected[2] is ke.NoNodeError
    assert comparable(_protocol.read_pipelined(zk, ops, window=2)) == expected
    # Through kazoo's public async API too (used when the batch sender cannot be installed).
    assert comparable(_protocol._kazoo_pipeline(zk, ops, 2)) == expected


def test_pipeline_interleaves_with_ordinary_requests(zk_standalone, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_standalone)
    zk.create(zk_path, b'', makepath=True)
    paths = ['%s/n%03d' % (zk_path, i) for i in range(300)]
    txn = zk.transaction()
    for path in paths:
        txn.create(path, path.encode())
    txn.commit()
    errors = []

    def other_requests():
        try:
            for path in paths:
                assert zk.get(path)[0] == path.encode()
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)

    thread = threading.Thread(target=other_requests)
    thread.start()
    for _round in range(5):
        slots = _protocol.read_pipelined(zk, [('data', p) for p in paths], window=64)
        assert [data for data, _stat in slots] == [p.encode() for p in paths]
    thread.join(30)
    assert not errors


def test_pipeline_raises_on_connection_loss_and_client_recovers(zk_standalone, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_standalone)
    zk.create(zk_path, b'', makepath=True)
    paths = ['%s/n%04d' % (zk_path, i) for i in range(2000)]
    for start in range(0, len(paths), 500):
        txn = zk.transaction()
        for path in paths[start:start + 500]:
            txn.create(path, b'')
        txn.commit()
    outcome = {}

    def run():
        try:
            outcome['result'] = _protocol.get_acls_pipelined(zk, paths * 20, window=200, timeout=60)
        except Exception as exc:  # pylint: disable=broad-except
            outcome['error'] = exc

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: len(zk._pending) > 50, timeout=30, interval=0.001, what='pipeline in flight')
    drop_connection(zk)
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(outcome.get('error'), ke.ConnectionLoss), outcome.keys()
    wait_for(lambda: zk.connected, what='reconnect')
    assert len(_protocol.get_acls_pipelined(zk, paths[:100])) == 100


# -- persistent watches ----------------------------------------------------------

def test_recursive_watch_sees_changes_made_by_another_client(zk_standalone, zk_client_factory, zk_path):
    watcher = zk_client_factory(zk_standalone)
    writer = zk_client_factory(zk_standalone)
    watcher.create(zk_path, b'', makepath=True)
    assert _protocol.supports_persistent_watches(watcher)
    events = Events()
    handle = _protocol.add_watch(watcher, zk_path, events, recursive=True)
    assert handle.armed

    writer.create(zk_path + '/a/b', b'1', makepath=True)
    writer.set(zk_path + '/a/b', b'2')
    writer.set(zk_path + '/a/b', b'3')
    writer.delete(zk_path + '/a/b')
    writer.set(zk_path, b'root changed')

    expected = [(EventType.CREATED, zk_path + '/a'), (EventType.CREATED, zk_path + '/a/b'),
                (EventType.CHANGED, zk_path + '/a/b'), (EventType.CHANGED, zk_path + '/a/b'),
                (EventType.DELETED, zk_path + '/a/b'), (EventType.CHANGED, zk_path)]
    got = [(e.type, e.path) for e in (events.next() for _expected in expected)]
    assert got == expected  # no child events for recursive watches, nothing popped after the first
    events.quiet(0.3)

    handle.remove()
    assert not handle.active
    writer.set(zk_path, b'after remove')
    writer.create(zk_path + '/after', b'')
    events.quiet(0.5)


def test_non_recursive_watch_gets_child_events_of_its_path_only(zk_standalone, zk_client_factory, zk_path):
    watcher = zk_client_factory(zk_standalone)
    writer = zk_client_factory(zk_standalone)
    watcher.create(zk_path + '/node', b'', makepath=True)
    events = Events()
    handle = _protocol.add_watch(watcher, zk_path + '/node', events, recursive=False)
    writer.create(zk_path + '/node/child', b'')
    writer.set(zk_path + '/node/child', b'grandchild data is not watched')
    writer.set(zk_path + '/node', b'x')
    writer.delete(zk_path + '/node/child')
    got = [(e.type, e.path) for e in (events.next() for _index in range(3))]
    assert got == [(EventType.CHILD, zk_path + '/node'), (EventType.CHANGED, zk_path + '/node'), (EventType.CHILD, zk_path + '/node')]
    events.quiet(0.3)
    handle.remove()


def test_persistent_watch_and_kazoo_one_shot_watch_coexist(zk_standalone, zk_client_factory, zk_path):
    watcher = zk_client_factory(zk_standalone)
    writer = zk_client_factory(zk_standalone)
    watcher.create(zk_path + '/n', b'', makepath=True)
    persistent = Events()
    one_shot = Events()
    handle = _protocol.add_watch(watcher, zk_path, persistent, recursive=True)
    watcher.get(zk_path + '/n', watch=one_shot)
    writer.set(zk_path + '/n', b'1')
    assert one_shot.next().type == EventType.CHANGED
    assert persistent.next().path == zk_path + '/n'
    writer.set(zk_path + '/n', b'2')
    assert persistent.next().path == zk_path + '/n'
    one_shot.quiet(0.3)  # kazoo's watch fired once, as it should
    # Removing the persistent watch leaves a kazoo watch on the same path working.
    watcher.get(zk_path, watch=one_shot)
    handle.remove()
    writer.set(zk_path, b'x')
    assert one_shot.next().type == EventType.CHANGED


def test_watch_with_chroot_reports_client_paths(zk_standalone, zk_client_factory, zk_path):
    zk_client_factory(zk_standalone).create(zk_path + '/x', b'', makepath=True)
    chrooted = zk_client_factory(zk_standalone, hosts=zk_standalone.hosts + zk_path)
    writer = zk_client_factory(zk_standalone)
    events = Events()
    _protocol.add_watch(chrooted, '/', events, recursive=True)
    writer.set(zk_path + '/x', b'1')
    event = events.next()
    assert (event.type, event.path) == (EventType.CHANGED, '/x')


def _assert_rearmed(events, writer, path, before):
    """After a reconnect: the NONE/CONNECTED event arrives, then changes are seen again."""
    got = events.collect_until(lambda e: e.type == EventType.NONE, timeout=30)
    assert got[-1].state == KeeperState.CONNECTED
    writer.retry(writer.set, path, before + b'-after')
    event = events.collect_until(lambda e: e.type == EventType.CHANGED and e.path == path, timeout=10)[-1]
    assert event.path == path


def test_watch_is_rearmed_after_connection_drop(zk_standalone, zk_client_factory, zk_path):
    watcher = zk_client_factory(zk_standalone)
    writer = zk_client_factory(zk_standalone)
    watcher.create(zk_path + '/n', b'', makepath=True)
    events = Events()
    rearmed = []
    handle = _protocol.add_watch(watcher, zk_path, events, recursive=True, on_rearm=rearmed.append)
    session = watcher.client_id
    for round_index in range(2):
        drop_connection(watcher)
        _assert_rearmed(events, writer, zk_path + '/n', b'%d' % round_index)
        assert watcher.client_id == session  # same session: only the connection changed
    assert rearmed == [handle, handle]
    assert handle.rearm_count == 2 and handle.armed


def test_watch_is_rearmed_after_server_restart(zk_cluster_factory, zk_client_factory, zk_path):
    cluster = zk_cluster_factory('protocol-restart')
    watcher = zk_client_factory(cluster, connection_retry={'max_tries': -1, 'delay': 0.1, 'max_delay': 0.5})
    writer = zk_client_factory(cluster, connection_retry={'max_tries': -1, 'delay': 0.1, 'max_delay': 0.5})
    watcher.create(zk_path + '/n', b'', makepath=True)
    events = Events()
    _protocol.add_watch(watcher, zk_path, events, recursive=True)
    cluster.stop_node(0)
    cluster.start_node(0)
    wait_for(lambda: writer.connected and watcher.connected, timeout=30, what='both clients reconnected')
    _assert_rearmed(events, writer, zk_path + '/n', b'restart')


def test_watch_is_rearmed_on_another_member_of_an_ensemble(zk_cluster_factory, zk_client_factory, zk_path):
    cluster = zk_cluster_factory('protocol-ensemble', size=3)
    retry = {'max_tries': -1, 'delay': 0.1, 'max_delay': 0.5}
    watcher = zk_client_factory(cluster, connection_retry=retry)
    writer = zk_client_factory(cluster, connection_retry=retry)
    watcher.create(zk_path + '/n', b'', makepath=True)
    events = Events()
    _protocol.add_watch(watcher, zk_path, events, recursive=True)
    connected_port = watcher._connection._socket.getpeername()[1]
    member = [i for i, node in enumerate(cluster.nodes) if node.client_port == connected_port][0]
    cluster.kill_node(member)
    _assert_rearmed(events, writer, zk_path + '/n', b'member killed')
    assert watcher._connection._socket.getpeername()[1] != connected_port


def test_watch_is_rearmed_after_session_expiry(zk_standalone, zk_client_factory, zk_path):
    watcher = zk_client_factory(zk_standalone, timeout=3.0)
    writer = zk_client_factory(zk_standalone)
    watcher.create(zk_path + '/n', b'', makepath=True)
    events = Events()
    handle = _protocol.add_watch(watcher, zk_path, events, recursive=True)
    old_session = watcher.client_id
    states = []
    stalled = threading.Event()

    def stall_reconnect(state):
        # Listeners run in kazoo's connection thread: holding it here keeps the
        # client away from the server until the server expires the session.
        states.append(state)
        if state == KazooState.SUSPENDED and not stalled.is_set():
            stalled.set()
            time.sleep(watcher._session_timeout / 1000.0 + 2.5)

    watcher.add_listener(stall_reconnect)
    drop_connection(watcher)
    wait_for(lambda: KazooState.LOST in states, timeout=30, what='session expiry seen by the watcher')
    _assert_rearmed(events, writer, zk_path + '/n', b'expired')
    assert watcher.client_id[0] != old_session[0]  # a new session
    assert handle.armed


def test_removed_watch_is_not_rearmed(zk_standalone, zk_client_factory, zk_path):
    watcher = zk_client_factory(zk_standalone)
    writer = zk_client_factory(zk_standalone)
    watcher.create(zk_path + '/n', b'', makepath=True)
    kept_events, removed_events = Events(), Events()
    _protocol.add_watch(watcher, zk_path + '/n', kept_events, recursive=False)
    removed = _protocol.add_watch(watcher, zk_path, removed_events, recursive=True)
    removed.remove()
    drop_connection(watcher)
    assert kept_events.collect_until(lambda e: e.type == EventType.NONE, timeout=30)
    writer.set(zk_path + '/n', b'x')
    assert kept_events.next().type == EventType.CHANGED
    removed_events.quiet(0.5)


# -- containers and TTL nodes ------------------------------------------------------

def test_container_is_removed_once_its_last_child_goes(zk_ext, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_ext)
    container = _protocol.create_container(zk, zk_path + '/queue', b'payload', makepath=True)
    assert container == zk_path + '/queue'
    data, stat = zk.get(container)
    assert data == b'payload'
    assert stat.ephemeralOwner == 0  # the server masks the type: containers read as persistent
    zk.create(container + '/item', b'')
    time.sleep(2.5)  # > the fixture's 1 s check interval: a container with a child stays
    assert zk.exists(container)
    zk.delete(container + '/item')
    wait_for(lambda: zk.exists(container) is None, timeout=15, what='container removed by the server')


def test_create_container_errors(zk_ext, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_ext)
    with pytest.raises(ke.NoNodeError):
        _protocol.create_container(zk, zk_path + '/no/parent')
    _protocol.create_container(zk, zk_path + '/c', makepath=True)
    with pytest.raises(ke.NodeExistsError):
        _protocol.create_container(zk, zk_path + '/c')
    acl = [make_digest_acl('app', 'pw', all=True), make_acl('world', 'anyone', read=True)]
    _protocol.create_container(zk, zk_path + '/acl', acl=acl)
    # Without ADMIN on the node, 3.8 masks digest hashes in getACL answers (CVE-2019-0201 fix)...
    masked = _protocol.get_acls_pipelined(zk, [zk_path + '/acl'])[zk_path + '/acl'][0]
    assert masked[0].id.id == 'app:x' and _protocol.acl_is_masked(masked)
    # ...with it, the ACL reads back exactly as created.
    zk.add_auth('digest', 'app:pw')
    assert zk.get_acls(zk_path + '/acl')[0] == acl
    assert _protocol.get_acls_pipelined(zk, [zk_path + '/acl'])[zk_path + '/acl'][0] == acl
    assert not _protocol.acl_is_masked(acl)


def test_ttl_node_expires_and_sequential_ttl_nodes_get_suffixes(zk_ext, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_ext)
    short = _protocol.create_ttl(zk, zk_path + '/short', b'v', ttl_ms=500, makepath=True)
    kept = _protocol.create_ttl(zk, zk_path + '/kept', b'v', ttl_ms=3600 * 1000)
    seq = _protocol.create_ttl(zk, zk_path + '/seq-', b'', ttl_ms=3600 * 1000, sequential=True)
    assert seq.startswith(zk_path + '/seq-') and len(seq) == len(zk_path + '/seq-') + 10
    assert zk.get(short)[0] == b'v'
    wait_for(lambda: zk.exists(short) is None, timeout=15, what='TTL node removed by the server')
    assert zk.exists(kept) and zk.exists(seq)


def test_ttl_refused_clearly_without_extended_types(zk_standalone, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_standalone)
    zk.create(zk_path, b'', makepath=True)
    with pytest.raises(UnsupportedByServerError) as info:
        _protocol.create_ttl(zk, zk_path + '/ttl', b'', ttl_ms=60000)
    assert 'extendedTypesEnabled' in str(info.value)
    assert info.value.path is not None
    assert zk.exists(zk_path + '/ttl') is None
    assert zk.get_children(zk_path) == []  # the client still works


def test_container_and_ttl_ops_in_a_kazoo_transaction(zk_ext, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_ext)
    zk.create(zk_path, b'', makepath=True)
    txn = zk.transaction()
    _protocol.txn_create_container(txn, zk_path + '/cont', b'c')
    _protocol.txn_create_ttl(txn, zk_path + '/ttl', b't', ttl_ms=3600 * 1000)
    _protocol.txn_create_ttl(txn, zk_path + '/ttlseq-', b's', ttl_ms=3600 * 1000, sequential=True)
    txn.create(zk_path + '/plain', b'p')
    txn.set_data(zk_path, b'parent')
    results = txn.commit()
    assert results[:2] == [zk_path + '/cont', zk_path + '/ttl']
    assert results[2].startswith(zk_path + '/ttlseq-')
    assert results[3] == zk_path + '/plain'
    assert results[4].version == 1
    assert sorted(zk.get_children(zk_path)) == sorted(['cont', 'ttl', 'plain', results[2].rsplit('/', 1)[1]])
    # The raw op helpers work with a chrooted client's transaction too.
    chrooted = zk_client_factory(zk_ext, hosts=zk_ext.hosts + zk_path)
    txn = chrooted.transaction()
    _protocol.txn_create_container(txn, '/cont2')
    txn.operations.append(_protocol.ttl_create_op(zk_path + '/raw-ttl', b'', ttl_ms=1000 * 60))  # raw op: server path
    assert txn.commit() == ['/cont2', '/raw-ttl']


def test_ttl_op_in_a_transaction_without_extended_types_fails_whole(zk_standalone, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_standalone)
    zk.create(zk_path, b'', makepath=True)
    txn = zk.transaction()
    _protocol.txn_create_container(txn, zk_path + '/cont')
    _protocol.txn_create_ttl(txn, zk_path + '/ttl', ttl_ms=60000)
    txn.create(zk_path + '/plain')
    results = txn.commit()
    assert [type(r) for r in results] == [ke.RolledBackError, ke.UnimplementedError, ke.RuntimeInconsistency]
    assert zk.get_children(zk_path) == []


# -- ZooKeeper 3.4: probes and fallbacks ---------------------------------------------

def test_probes_on_zookeeper_34_leave_the_client_working(zk_34, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_34)
    zk.create(zk_path + '/a', b'data', makepath=True)
    session = zk.client_id
    assert _protocol.supports_multi_read(zk) is False
    assert zk.get(zk_path + '/a')[0] == b'data'
    assert _protocol.supports_persistent_watches(zk) is False
    assert zk.get_children(zk_path) == ['a']
    assert zk.client_id == session  # the server closed the connection, not the session
    # Cached: no second probe (no second connection drop).
    drops = reconnects(zk)
    assert _protocol.supports_multi_read(zk) is False and _protocol.supports_persistent_watches(zk) is False
    assert drops == []


def test_fallbacks_on_zookeeper_34(zk_34, zk_client_factory, zk_path):
    zk = zk_client_factory(zk_34)
    zk.ensure_path(zk_path)
    zk.create(zk_path + '/a', b'data', acl=[make_digest_acl('app', 'pw', all=True)])
    zk.create(zk_path + '/b', b'')
    # Pipelined plain reads work on every version.
    ops = [('data', zk_path + '/b'), ('children', zk_path), ('acl', zk_path + '/a'), ('data', zk_path + '/missing')]
    slots = _protocol.read_pipelined(zk, ops)
    assert slots[0][0] == b'' and sorted(slots[1]) == ['a', 'b']
    # Debian's 3.4.13 carries the CVE-2019-0201 fix: getACL needs READ or ADMIN.
    assert isinstance(slots[2], ke.NoAuthError)
    assert isinstance(slots[3], ke.NoNodeError)
    zk.add_auth('digest', 'app:pw')
    acl = _protocol.read_pipelined(zk, ops[2:3])[0][0]
    assert acl == [make_digest_acl('app', 'pw', all=True)] and not _protocol.acl_is_masked(acl)
    # The primitives 3.4 lacks fail clearly and leave the client usable.
    with pytest.raises(UnsupportedByServerError, match='3.6'):
        _protocol.add_watch(zk, zk_path, lambda event: None)
    assert zk.exists(zk_path + '/b')
    with pytest.raises(UnsupportedByServerError, match='container'):
        _protocol.create_container(zk, zk_path + '/cont')
    assert zk.exists(zk_path + '/cont') is None
    with pytest.raises(UnsupportedByServerError, match='TTL'):
        _protocol.create_ttl(zk, zk_path + '/ttl', ttl_ms=1000)
    assert sorted(zk.get_children(zk_path)) == ['a', 'b']
