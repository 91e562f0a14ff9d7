# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of _protocol: wire encoding and decoding, event routing, the pipeline's bookkeeping.

Everything here runs without a server; tests/integration/test_protocol.py
runs the same requests against real ZooKeeper 3.8 and 3.4 servers.
"""

import collections
import socket
import struct
import threading

import pytest
from kazoo import client as kazoo_client
from kazoo import exceptions as ke
from kazoo.protocol.serialization import (
    Create,
    Delete,
    GetACL,
    GetChildren,
    GetData,
    SetData,
    CheckVersion,
    Transaction,
    MultiHeader,
    write_string,
)
from kazoo.protocol.states import ZnodeStat
from kazoo.security import ACL, Id, OPEN_ACL_UNSAFE, make_digest_acl

from ansible_collections.zookeeper.migration.plugins.module_utils import _protocol
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError

STAT = ZnodeStat(5, 6, 1000, 2000, 1, 2, 3, 0, 4, 0, 7)
STAT_BYTES = struct.pack('!qqqqiiiqiiq', *STAT)


def header(op_type, done=False, err=-1):
    return struct.pack('!iBi', op_type, 1 if done else 0, err)


END = header(-1, True, -1)


def jstring(text):
    raw = text.encode('utf-8')
    return struct.pack('!i', len(raw)) + raw


def jbuffer(data):
    if data is None:
        return struct.pack('!i', -1)
    return struct.pack('!i', len(data)) + data


def kazoo_original_multi_deserialize(buffer, offset):
    """kazoo 2.11's own Transaction.deserialize, even after _protocol installed its extension."""
    original = Transaction.__dict__.get('_zkm_kazoo_deserialize', Transaction.__dict__['deserialize'])
    return original.__func__(Transaction, buffer, offset)


# -- multiRead encoding ------------------------------------------------------

def test_multi_read_serialises_one_header_and_request_per_op():
    request = _protocol.MultiRead([(4, '/a'), (8, '/b/c')])
    expected = (header(4) + jstring('/a') + b'\x00'
                + header(8) + jstring('/b/c') + b'\x00'
                + END)
    assert request.type == 22
    assert request.serialize() == expected


def test_multi_read_matches_kazoo_request_encoding():
    """Each op is exactly kazoo's GetData/GetChildren request (watch false) behind a MultiHeader."""
    request = _protocol.MultiRead([(4, '/x/ü'), (8, '/y')])
    expected = (bytes(MultiHeader(4, False, -1).serialize()) + bytes(GetData('/x/ü', None).serialize())
                + bytes(MultiHeader(8, False, -1).serialize()) + bytes(GetChildren('/y', None).serialize())
                + END)
    assert request.serialize() == expected


def test_parse_multi_read_response_slots():
    body = (header(4, err=0) + jbuffer(b'\x00\xffbinary') + STAT_BYTES
            + header(8, err=0) + struct.pack('!i', 3) + jstring('a') + jstring('b') + jstring('ünï')
            + header(-1, err=-101) + struct.pack('!i', -101)
            + header(4, err=0) + jbuffer(b'') + STAT_BYTES
            + header(4, err=0) + jbuffer(None) + STAT_BYTES
            + header(8, err=0) + struct.pack('!i', 0)
            + header(-1, err=-102) + struct.pack('!i', -102)
            + END)
    slots = _protocol.parse_multi_read_response(b'PREFIX' + body, 6)
    assert slots[0] == (b'\x00\xffbinary', STAT)
    assert isinstance(slots[0][1], ZnodeStat)
    assert slots[1] == ['a', 'b', 'ünï']
    assert isinstance(slots[2], ke.NoNodeError)
    assert slots[3] == (b'', STAT)
    assert slots[4] == (b'', STAT)  # null data reads as empty bytes
    assert slots[5] == []
    assert isinstance(slots[6], ke.NoAuthError)
    assert len(slots) == 7
    raw = _protocol.parse_multi_read_response(b'PREFIX' + body, 6, raw_stats=True)
    assert [type(slot[1]) for slot in raw if isinstance(slot, tuple)] == [tuple, tuple, tuple]
    assert [slot if not isinstance(slot, Exception) else type(slot) for slot in raw] == \
        [slot if not isinstance(slot, Exception) else type(slot) for slot in slots]


def test_parse_multi_read_response_rejects_unknown_op_type():
    with pytest.raises(_protocol.ZkMigrationError, match='unexpected op type 5'):
        _protocol.parse_multi_read_response(header(5, err=0) + STAT_BYTES + END)


def test_unknown_error_code_becomes_an_error_not_a_crash():
    slots = _protocol.parse_multi_read_response(header(-1, err=-9999) + struct.pack('!i', -9999) + END)
    assert isinstance(slots[0], _protocol.ZkMigrationError)
    assert slots[0].code == -9999


class FakeClient(object):
    def __init__(self, chroot=''):
        self.chroot = chroot
        self.calls = []
        self.handler = None

    def _call(self, request, async_object):
        self.calls.append((request, async_object))


def test_multi_read_request_applies_chroot_and_validates_ops():
    request = _protocol._multi_read_request(FakeClient('/root'), [('data', '/a'), ('children', '/')])
    assert request.ops == [(4, '/root/a'), (8, '/root')]
    request = _protocol._multi_read_request(FakeClient(), [('data', '/a')])
    assert request.ops == [(4, '/a')]
    for bad in ([('stat', '/a')], [('data',)], ['/a'], [('data', 'relative')]):
        with pytest.raises(ConfigError):
            _protocol._multi_read_request(FakeClient(), bad)
    with pytest.raises(ConfigError, match='ACL'):
        _protocol._multi_read_request(FakeClient(), [('acl', '/a')])


# -- write multis with container/TTL creates ---------------------------------

def test_parse_multi_response_matches_kazoo_for_what_kazoo_knows():
    body = (header(1, err=0) + jstring('/created')
            + header(2, err=0)
            + header(5, err=0) + STAT_BYTES
            + header(13, err=0)
            + END)
    assert _protocol.parse_multi_response(body) == kazoo_original_multi_deserialize(body, 0)
    assert _protocol.parse_multi_response(body) == ['/created', True, STAT, True]

    failed = (header(-1, err=0) + struct.pack('!i', 0)
              + header(-1, err=-110) + struct.pack('!i', -110)
              + header(-1, err=-2) + struct.pack('!i', -2)
              + END)
    ours = _protocol.parse_multi_response(failed)
    theirs = kazoo_original_multi_deserialize(failed, 0)
    assert [type(r) for r in ours] == [type(r) for r in theirs] == [ke.RolledBackError, ke.NodeExistsError, ke.RuntimeInconsistency]


def test_parse_multi_response_reads_create2_results_of_container_and_ttl_creates():
    # What ZooKeeper 3.8 sends for [createContainer, createTTL, create] (captured from a real server).
    body = (header(15, err=0) + jstring('/c/mcont') + STAT_BYTES
            + header(15, err=0) + jstring('/c/mttl') + STAT_BYTES
            + header(1, err=0) + jstring('/c/plain')
            + END)
    assert _protocol.parse_multi_response(body) == ['/c/mcont', '/c/mttl', '/c/plain']


def test_install_transaction_extensions_is_idempotent_and_keeps_unchroot():
    _protocol.install_transaction_extensions()
    _protocol.install_transaction_extensions()
    body = header(15, err=0) + jstring('/chroot/x') + STAT_BYTES + END
    results = Transaction([]).deserialize(body, 0)
    assert results == ['/chroot/x']

    class Chrooted(object):
        @staticmethod
        def unchroot(path):
            return path[len('/chroot'):]

    assert Transaction.unchroot(Chrooted(), results) == ['/x']


def test_container_and_ttl_requests_encode_as_create_requests():
    acl = [make_digest_acl('app', 'pw', all=True)]
    container = _protocol.CreateContainer('/a/b', b'data', acl)
    # A CreateRequest with the CONTAINER flag (4), as kazoo encodes its Create.
    assert container.type == 19
    assert container.serialize() == bytes(Create('/a/b', b'data', acl, 4).serialize())

    ttl = _protocol.CreateTTL('/a/t', b'', OPEN_ACL_UNSAFE, 60000)
    assert ttl.type == 21
    assert ttl.serialize() == bytes(Create('/a/t', b'', OPEN_ACL_UNSAFE, 5).serialize()) + struct.pack('!q', 60000)
    ttl_seq = _protocol.CreateTTL('/a/t-', b'x', OPEN_ACL_UNSAFE, 1, sequential=True)
    assert ttl_seq.serialize() == bytes(Create('/a/t-', b'x', OPEN_ACL_UNSAFE, 6).serialize()) + struct.pack('!q', 1)


def test_ops_serialise_inside_a_kazoo_transaction():
    ops = [_protocol.container_create_op('/c'), _protocol.ttl_create_op('/t', b'v', ttl_ms=5000), Delete('/d', -1)]
    encoded = bytes(Transaction(ops).serialize())
    expected = (header(19) + _protocol.CreateContainer('/c', b'', OPEN_ACL_UNSAFE).serialize()
                + header(21) + _protocol.CreateTTL('/t', b'v', OPEN_ACL_UNSAFE, 5000).serialize()
                + header(2) + bytes(Delete('/d', -1).serialize())
                + END)
    assert encoded == expected


def test_op_helpers_apply_chroot():
    assert _protocol.container_create_op('/c', chroot='/base').path == '/base/c'
    assert _protocol.ttl_create_op('/t', ttl_ms=1, chroot='/base').path == '/base/t'


class FakeTxn(object):
    def __init__(self, chroot='/app', default_acl=None):
        self.client = FakeClient(chroot)
        self.client.default_acl = default_acl
        self.operations = []
        self.committed = False


def test_txn_helpers_append_with_client_chroot_and_default_acl():
    acl = [make_digest_acl('u', 'p', read=True)]
    txn = FakeTxn(default_acl=acl)
    _protocol.txn_create_container(txn, '/c', b'x')
    _protocol.txn_create_ttl(txn, '/t', ttl_ms=10, sequential=True)
    assert [op.path for op in txn.operations] == ['/app/c', '/app/t']
    assert txn.operations[0].acl == acl and txn.operations[1].acl == acl
    assert txn.operations[1].flags == 6
    txn.committed = True
    with pytest.raises(ValueError):
        _protocol.txn_create_container(txn, '/late')


@pytest.mark.parametrize('ttl', [0, -1, 2 ** 40, 1.5, '100', None, True])
def test_ttl_out_of_range_is_a_config_error(ttl):
    with pytest.raises(ConfigError, match='TTL'):
        _protocol.ttl_create_op('/t', ttl_ms=ttl)


def test_create_arguments_are_checked():
    with pytest.raises(ConfigError, match='bytes'):
        _protocol.container_create_op('/c', 'text')
    with pytest.raises(ConfigError, match='absolute'):
        _protocol.container_create_op('c')
    # A TTL passed positionally lands in ``acl``: say so instead of sending garbage.
    with pytest.raises(ConfigError, match='ttl_ms by keyword'):
        _protocol.ttl_create_op('/t', b'', 60000)


def test_watch_requests_encode():
    assert _protocol.AddWatch('/w', 1).serialize() == jstring('/w') + struct.pack('!i', 1)
    assert _protocol.AddWatch('/w', 1).type == 106
    assert _protocol.RemoveWatches('/w').serialize() == jstring('/w') + struct.pack('!i', 3)
    assert _protocol.RemoveWatches('/w').type == 18


# -- pipelined reads -----------------------------------------------------------

@pytest.mark.parametrize('opcode, kazoo_request', [
    (6, GetACL('/a/b')),
    (4, GetData('/a/ü', None)),
    (8, GetChildren('/', None)),
])
def test_pipelined_frame_body_is_kazoos_type_and_request(opcode, kazoo_request):
    assert _protocol._encode_read(opcode, kazoo_request.path) == struct.pack('!i', kazoo_request.type) + bytes(kazoo_request.serialize())


def test_pipelined_request_classes_decode_like_multi_read_slots():
    data_reply = jbuffer(None) + STAT_BYTES
    assert _protocol._PipelinedGetData.deserialize(data_reply, 0) == (b'', STAT)
    children_reply = struct.pack('!i', 2) + jstring('x') + jstring('y')
    assert _protocol._PipelinedGetChildren.deserialize(children_reply, 0) == ['x', 'y']
    acl_reply = struct.pack('!i', 1) + struct.pack('!i', 31) + jstring('world') + jstring('anyone') + STAT_BYTES
    assert _protocol._PipelinedGetACL.deserialize(acl_reply, 0) == ([ACL(31, Id('world', 'anyone'))], STAT)


class FakeConnection(object):
    def __init__(self):
        self._xid = 2147483646  # wraps like kazoo's
        self.written = []
        self.sent_plain = []
        self._read_sock = self
        self.received = 0

    def recv(self, size):
        self.received += size

    def _write(self, message, timeout):
        self.written.append(message)

    def _send_request(self, read_timeout, connect_timeout):
        self.sent_plain.append(self._queue_owner._queue.popleft())


class PipelineClient(object):
    """Enough of KazooClient for the pipeline: a queue, a pending deque and a connection."""

    def __init__(self):
        self.chroot = ''
        self._queue = collections.deque()
        self._pending = collections.deque()
        self._connection = FakeConnection()
        self._connection._queue_owner = self

    def _call(self, request, async_object):
        self._queue.append((request, async_object))

    def pump(self):
        """What kazoo's connection thread does: send whatever is queued."""
        while self._queue:
            self._connection._send_request(1.0, 1.0)

    def answer(self, value_for):
        """Answer every pending request in order, as _read_response would."""
        while self._pending:
            request, slot, _xid = self._pending.popleft()
            value = value_for(request)
            if isinstance(value, Exception):
                slot.set_exception(value)
            else:
                slot.set(value)


def test_batch_sender_writes_frames_and_pending_entries():
    client = PipelineClient()
    assert _protocol._install_batch_sender(client)
    assert _protocol._install_batch_sender(client)  # once only
    slots = [object(), object()]
    batch = _protocol._RequestBatch([
        (_protocol._PipelinedGetACL('/a'), _protocol._encode_read(6, '/a'), slots[0]),
        (_protocol._PipelinedGetData('/b'), _protocol._encode_read(4, '/b'), slots[1]),
    ])
    client._queue.append((batch, batch))
    client._queue.append(('plain request', None))
    client._connection._send_request(1.0, 1.0)
    assert client._connection.received == 1  # one wake-up byte per queue entry
    body_a = _protocol._encode_read(6, '/a')
    body_b = _protocol._encode_read(4, '/b')
    assert client._connection.written == [
        struct.pack('!ii', len(body_a) + 4, 2147483647) + body_a + struct.pack('!ii', len(body_b) + 4, 1) + body_b]
    assert [(type(r).__name__, s, x) for r, s, x in client._pending] == [
        ('_PipelinedGetACL', slots[0], 2147483647), ('_PipelinedGetData', slots[1], 1)]
    assert client._connection._xid == 1
    # Anything else goes to kazoo's own sender.
    client._connection._send_request(1.0, 1.0)
    assert client._connection.sent_plain == [('plain request', None)]


def _run_pipeline(client, paths, window, value_for, rounds=1000):
    """Drive a pipeline on the fake client from another thread, as kazoo's connection thread would."""
    entries = [(_protocol._PipelinedGetACL(p), _protocol._encode_read(6, p)) for p in paths]
    pipeline = _protocol._Pipeline(client, entries, window)
    seen = {'max_pending': 0}
    outcome = {}

    def run():
        try:
            outcome['result'] = pipeline.run(timeout=10)
        except Exception as exc:  # pylint: disable=broad-except
            outcome['error'] = exc

    thread = threading.Thread(target=run)
    thread.start()
    for _round in range(rounds):
        if not thread.is_alive():
            break
        client.pump()
        seen['max_pending'] = max(seen['max_pending'], len(client._pending))
        client.answer(value_for)
        thread.join(0.001)
    thread.join(5)
    return outcome, seen


def test_pipeline_answers_every_path_in_order_within_the_window():
    client = PipelineClient()
    _protocol._install_batch_sender(client)
    paths = ['/n%d' % i for i in range(1000)]
    outcome, seen = _run_pipeline(client, paths, 100, lambda request: ('acl of', request.path))
    assert outcome['result'] == [('acl of', p) for p in paths]
    assert 0 < seen['max_pending'] <= 100


def test_pipeline_keeps_per_path_errors_in_their_slots():
    client = PipelineClient()
    _protocol._install_batch_sender(client)
    paths = ['/n%d' % i for i in range(10)]

    def value_for(request):
        if request.path == '/n3':
            return ke.NoNodeError()
        if request.path == '/n4':
            return ke.NoAuthError()
        return 'ok'

    outcome, _seen = _run_pipeline(client, paths, 4, value_for)
    result = outcome['result']
    assert isinstance(result[3], ke.NoNodeError) and isinstance(result[4], ke.NoAuthError)
    assert result[:3] == ['ok'] * 3 and result[5:] == ['ok'] * 5


def test_pipeline_raises_a_connection_loss_and_stops_sending():
    client = PipelineClient()
    _protocol._install_batch_sender(client)
    paths = ['/n%d' % i for i in range(400)]
    answered = []

    def value_for(request):
        answered.append(request.path)
        return ke.ConnectionLoss() if request.path == '/n10' else 'ok'

    outcome, _seen = _run_pipeline(client, paths, 40, value_for)
    assert isinstance(outcome['error'], ke.ConnectionLoss)
    assert len(answered) < len(paths)  # nothing more was sent after the loss


def test_request_batch_failure_fails_each_slot_once():
    client = PipelineClient()
    entries = [(_protocol._PipelinedGetACL('/a'), b''), (_protocol._PipelinedGetACL('/b'), b'')]
    pipeline = _protocol._Pipeline(client, entries, 10)
    with pipeline.lock:
        batches = pipeline._take_batches()
    assert len(batches) == 1 and pipeline.outstanding == 2
    error = ke.ConnectionClosedError('closed')
    batches[0].set_exception(error)
    batches[0].set_exception(error)  # kazoo's _call on a closing client fails an entry twice
    assert pipeline.outstanding == 0 and pipeline.done.is_set()
    assert pipeline.error is error


def test_read_pipelined_validates_ops():
    client = PipelineClient()
    with pytest.raises(ConfigError):
        _protocol.read_pipelined(client, [('stat', '/a')])
    with pytest.raises(ConfigError):
        _protocol.read_pipelined(client, [('acl', '/a')], window=0)


def test_fatal_errors_are_connection_failures_only():
    assert _protocol._is_fatal(ke.ConnectionLoss())
    assert _protocol._is_fatal(ke.SessionExpiredError())
    assert _protocol._is_fatal(RuntimeError('xids do not match'))
    assert not _protocol._is_fatal(ke.NoNodeError())
    assert not _protocol._is_fatal(ke.NoAuthError())


# -- persistent watch routing -------------------------------------------------

class RegistryClient(object):
    def __init__(self):
        self.state = 'CONNECTED'


def make_registry(*watches):
    registry = _protocol._WatchRegistry(RegistryClient())
    handles = []
    for path, recursive in watches:
        handle = _protocol.PersistentWatch(registry, path, path, lambda event: None, recursive, None)
        registry.add(handle)
        handles.append(handle)
    return registry, handles


def test_recursive_watch_matches_subtree_but_not_child_events():
    registry, (handle,) = make_registry(('/app', True))
    assert registry.match('/app', 1) == [handle]
    assert registry.match('/app/a/b', 3) == [handle]
    assert registry.match('/app/a', 2) == [handle]
    assert registry.match('/application', 3) == []  # a sibling with the same prefix
    assert registry.match('/', 3) == []
    assert registry.match('/app', 4) == []  # recursive watches get no child events (as in the Java client)
    assert registry.match('/app/a', 4) == []


def test_persistent_watch_matches_its_path_only_including_child_events():
    registry, (handle,) = make_registry(('/app', False))
    assert registry.match('/app', 3) == [handle]
    assert registry.match('/app', 4) == [handle]
    assert registry.match('/app/a', 1) == []


def test_root_recursive_watch_matches_everything():
    registry, (root,) = make_registry(('/', True))
    assert registry.match('/x/y/z', 1) == [root]
    assert registry.match('/', 3) == [root]


def test_nested_watches_all_fire_and_removed_ones_stop():
    registry, (outer, inner, exact) = make_registry(('/a', True), ('/a/b', True), ('/a/b/c', False))
    assert sorted(registry.match('/a/b/c', 3), key=id) == sorted([outer, inner, exact], key=id)
    assert registry.discard(inner)
    assert not inner.active
    assert sorted(registry.match('/a/b/c', 3), key=id) == sorted([outer, exact], key=id)


def test_mixing_watch_modes_on_one_path_is_refused():
    registry, _handles = make_registry(('/a', True))
    with pytest.raises(ConfigError, match='one watch mode per path'):
        registry.add(_protocol.PersistentWatch(registry, '/a', '/a', lambda event: None, False, None))
    # Same mode twice is fine: both handles get the events.
    second = _protocol.PersistentWatch(registry, '/a', '/a', lambda event: None, True, None)
    registry.add(second)
    assert len(registry.match('/a/x', 1)) == 2
    assert not registry.discard(second)  # another handle still uses the path


# -- tuning ----------------------------------------------------------------------

def test_fast_select_falls_back_for_large_descriptors(monkeypatch):
    calls = []

    def refuse(*args):
        raise ValueError('filedescriptor out of range in select()')

    monkeypatch.setattr(_protocol.select, 'select', refuse)
    monkeypatch.setattr(_protocol, 'selector_select', lambda *args: calls.append(args) or ([], [], []))
    assert _protocol.fast_select([5000], [], [], 0) == ([], [], [])
    assert calls == [([5000], [], [], 0)]


def test_tune_client_only_touches_the_threading_handler():
    class Handler(object):
        name = 'sequential_threading_handler'

    class Client(object):
        handler = Handler()

    client = Client()
    assert _protocol.tune_client(client)
    assert client.handler.select is _protocol.fast_select

    class GeventClient(object):
        class handler(object):  # noqa: N801 (a stand-in for a handler instance)
            name = 'sequential_gevent_handler'

    assert not _protocol.tune_client(GeventClient())


def test_kazoo_set_data_and_check_requests_are_unchanged_by_the_extension():
    """Sanity: the extension only changes parsing, never what kazoo sends."""
    ops = [SetData('/a', b'v', 3), CheckVersion('/b', 1)]
    assert bytes(Transaction(ops).serialize()) == (
        header(5) + bytes(SetData('/a', b'v', 3).serialize()) + header(13) + bytes(CheckVersion('/b', 1).serialize()) + END)
    assert write_string('') == struct.pack('!i', -1)  # kazoo's null-for-empty rule we rely on


# --------------------------------------------------------------------------
# getACL replies parsed through the ACL-vector cache; replies taken from the read buffer
# --------------------------------------------------------------------------

def acl_reply(entries, stat=tuple(range(1, 12))):
    """A getACL reply body: the ACL vector (perms, scheme, id; None for a null string), then the stat."""
    out = struct.pack('>i', len(entries))
    for perms, scheme, ident in entries:
        out += struct.pack('>i', perms)
        for text in (scheme, ident):
            out += struct.pack('>i', -1) if text is None else jstring(text)
    return out + struct.pack('>qqqqiiiqiiq', *stat)


@pytest.mark.parametrize('entries', [
    [(31, 'world', 'anyone')],
    [(31, 'digest', 'migrator:abc='), (1, 'world', 'anyone'), (3, 'ip', '127.0.0.1')],
    [(5, 'x', None)],
    [],
])
def test_parse_acl_reply_reads_what_kazoo_reads(entries):
    body = b'prefix' + acl_reply(entries)
    assert _protocol.parse_acl_reply(body, 6) == GetACL.deserialize(body, 6)


def test_parse_acl_reply_shares_parsed_acls_but_hands_out_own_lists():
    first = _protocol.parse_acl_reply(acl_reply([(31, 'digest', 'u:h='), (1, 'world', 'anyone')]), 0)
    second = _protocol.parse_acl_reply(acl_reply([(31, 'digest', 'u:h='), (1, 'world', 'anyone')], stat=tuple(range(20, 31))), 0)
    assert first[0] == second[0] and first[0] is not second[0]
    assert first[0][0] is second[0][0]                 # the ACL namedtuples come from the cache
    assert second[1] == ZnodeStat(*range(20, 31))
    first[0].append('changed by a caller')
    assert _protocol.parse_acl_reply(acl_reply([(31, 'digest', 'u:h='), (1, 'world', 'anyone')]), 0)[0] == second[0]


class _FakeConnection(object):
    def __init__(self, sock):
        self._socket = sock


def _reply(xid, body=b''):
    payload = struct.pack('>iqi', xid, 7, 0) + body
    return struct.pack('>i', len(payload)) + payload


def test_take_reply_takes_only_a_whole_reply_to_the_expected_xid():
    sock = object()
    reads = _protocol.BufferedSocketReads.__new__(_protocol.BufferedSocketReads)
    reads.connection, reads.sock, reads.pos = _FakeConnection(sock), sock, 0
    first, second = _reply(5, b'one'), _reply(6, b'two')
    reads.data = first + second + _reply(-1, b'event') + _reply(8, b'partial')[:-2]
    assert reads.take_reply(6) is None and reads.pos == 0          # not the head of the buffer
    data, offset = reads.take_reply(5)
    assert struct.unpack_from('>iqi', data, offset) == (5, 7, 0) and data[offset + 16:offset + 19] == b'one'
    data, offset = reads.take_reply(6)
    assert data[offset + 16:offset + 19] == b'two'
    assert reads.take_reply(-1) is not None                        # the caller decides which xid it expects
    assert reads.take_reply(8) is None                             # incomplete: left for kazoo's loop
    reads.connection = _FakeConnection(object())                   # a reconnect: the buffer is stale
    reads.pos = 0
    assert reads.take_reply(5) is None


# --------------------------------------------------------------------------
# Buffered socket reads and inline watch events
# --------------------------------------------------------------------------

def _message(xid, body=b''):
    payload = struct.pack('>iqi', xid, 7, 0) + body
    return struct.pack('>i', len(payload)) + payload


def _watch_event(path, kind=3):
    raw = path.encode('utf-8')
    return _message(-1, struct.pack('>iii', kind, 3, len(raw)) + raw)


class _ChunkedSocket(object):
    """A socket whose ``recv`` returns the given chunks one by one."""

    def __init__(self, chunks):
        self.chunks = list(chunks)

    def pending(self):
        return 1 if self.chunks else 0      # read without select()

    def recv(self, _size):
        return self.chunks.pop(0) if self.chunks else b''


def _unstarted_client():
    return kazoo_client.KazooClient(hosts='127.0.0.1:1')


class TestBufferedReads(object):
    def test_messages_split_across_chunks_are_served_whole(self):
        client = _unstarted_client()
        reads = _protocol.BufferedSocketReads.install(client)
        assert reads is not None and _protocol.BufferedSocketReads.install(client) is reads
        stream = _message(5, b'abc') + _message(6, b'defg')
        client._connection._socket = _ChunkedSocket([stream[:3], stream[3:11], stream[11:]])
        connection = client._connection
        first_length = struct.unpack('>i', connection._read(4, 1.0))[0]
        assert connection._read(first_length, 1.0) == stream[4:4 + first_length]
        second_length = struct.unpack('>i', connection._read(4, 1.0))[0]
        assert connection._read(second_length, 1.0)[-4:] == b'defg'

    def test_a_complete_buffered_message_is_readable_without_the_socket(self):
        client = _unstarted_client()
        reads = _protocol.BufferedSocketReads.install(client)
        left, right = socket.socketpair()
        try:
            client._connection._socket = left
            right.sendall(_message(5) + _message(6))
            client._connection._read(4, 1.0)
            client._connection._read(16, 1.0)
            # the second message sits in the buffer, the kernel has nothing left to read
            readable, _w, _x = client.handler.select([left], [], [], 0)
            assert left in readable and reads._complete_message()
            client._connection._read(20, 1.0)
            readable, _w, _x = client.handler.select([left], [], [], 0)
            assert readable == []
        finally:
            left.close()
            right.close()

    def test_watch_events_are_taken_in_bulk_up_to_the_first_reply(self):
        client = _unstarted_client()
        posted = []
        counters = {'watch_events': 0}
        inline = _protocol.InlineWatchEvents(client, ['/task'], lambda path: not path.endswith('skip'), posted.append, counters)
        assert inline.active
        stream = (_watch_event('/task/a') + _watch_event('/task/skip') + _watch_event('/task/b') + _message(9, b'reply')
                  + _watch_event('/task/c'))
        client._connection._socket = _ChunkedSocket([stream])
        connection = client._connection
        length = struct.unpack('>i', connection._read(4, 1.0))[0]
        body = connection._read(length, 1.0)
        connection._read_watch_event(body, 16)
        assert posted == ['/task/a', '/task/b'] and counters['watch_events'] == 3
        # the reply and what follows it are left for kazoo's loop, in order
        length = struct.unpack('>i', connection._read(4, 1.0))[0]
        assert connection._read(length, 1.0).endswith(b'reply')

    def test_events_outside_the_task_paths_go_down_the_usual_chain(self):
        client = _unstarted_client()
        passed = []
        client._connection._read_watch_event = lambda buffer, offset: passed.append(buffer[offset + 12:])
        posted = []
        _protocol.InlineWatchEvents(client, ['/task'], lambda path: True, posted.append, {'watch_events': 0})
        body = _watch_event('/other/x')[4:]
        client._connection._socket = _ChunkedSocket([])
        client._connection._read_watch_event(body, 16)
        assert posted == [] and passed == [b'/other/x']
