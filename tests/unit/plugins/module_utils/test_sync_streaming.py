# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the streaming machinery of the sync engine: queue marks, baseline formats, buffered event reads."""

import socket
import struct

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils import _protocol, _sync, _sync_scan
from ansible_collections.zookeeper.migration.plugins.module_utils._sync import Baseline, ReconcileQueue

kazoo_client = pytest.importorskip('kazoo.client')


# --------------------------------------------------------------------------
# ReconcileQueue marks with takes in between
# --------------------------------------------------------------------------

class TestQueueMarks(object):
    def test_drop_before_counts_only_what_is_still_waiting(self):
        queue = ReconcileQueue()
        queue.put_many(['/a', '/b', '/c'])
        assert [p for p, _t in queue.take(1, timeout=0)] == ['/a']
        mark = queue.mark()
        assert [p for p, _t in queue.take(1, timeout=0)] == ['/b']
        queue.put('/d')
        queue.put('/a')                 # taken before the mark, queued again after it: kept
        assert queue.drop_before(mark) == 1     # only /c
        assert [p for p, _t in queue.take(10, timeout=0)] == ['/d', '/a']

    def test_posted_events_keep_their_order_and_first_time(self):
        queue = ReconcileQueue()
        for path in ('/x', '/y', '/x', '/z', '/y'):
            queue.post(path)
        taken = queue.take(10, timeout=0)
        assert [p for p, _t in taken] == ['/x', '/y', '/z']
        assert taken[0][1] <= taken[1][1] <= taken[2][1]
        assert len(queue) == 0 and queue.oldest_age() == 0.0

    def test_a_mark_covers_posted_events_not_yet_drained(self):
        queue = ReconcileQueue()
        queue.post('/before')
        mark = queue.mark()
        queue.post('/after')
        assert queue.drop_before(mark) == 1
        assert [p for p, _t in queue.take(10, timeout=0)] == ['/after']


# --------------------------------------------------------------------------
# Baseline hashes and formats
# --------------------------------------------------------------------------

class TestBaselineFormats(object):
    def test_hashes_fit_60_bits(self):
        for data in (b'', b'x', b'\xff' * 100):
            assert 0 <= _sync.data_hash64(data) < 1 << 60

    def test_format_1_checkpoints_read_back_as_60_bit_hashes(self):
        full = int.from_bytes(b'\xfe\xdc\xba\x98\x76\x54\x32\x10', 'big')
        meta = b'{"initial_done": true}'
        raw = '/a'.encode('utf-8')
        blob = b'ZKMB\x01' + struct.pack('>I', len(meta)) + meta + struct.pack('>HQ', len(raw), full) + raw
        decoded = Baseline.decode(blob)
        assert decoded.entries == {'/a': full >> 4} and decoded.meta == {'initial_done': True}

    def test_current_format_round_trips(self):
        with_versions = _sync.base_value(_sync.data_hash64(b'c'), 2 ** 40 + 7, 2 ** 63 - 1)
        baseline = Baseline({'/a': _sync.data_hash64(b'a'), '/b': 0, '/c': with_versions}, {'task': 't'})
        blob = baseline.encode()
        assert blob.startswith(b'ZKMB\x03')
        assert Baseline.decode(blob).entries == baseline.entries

    def test_format_2_checkpoints_read_back_with_unknown_versions(self):
        value = _sync.data_hash64(b'a')
        meta = b'{}'
        raw = '/a'.encode('utf-8')
        blob = b'ZKMB\x02' + struct.pack('>I', len(meta)) + meta + struct.pack('>HQ', len(raw), value) + raw
        assert Baseline.decode(blob).entries == {'/a': _sync.base_value(value, 0, 0)} == {'/a': value}


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


# --------------------------------------------------------------------------
# Data sessions: which configured member a peer address is
# --------------------------------------------------------------------------

class TestMemberAt(object):
    def test_matches_by_port_and_resolved_address(self):
        hosts = ['127.0.0.1:2181', 'localhost:2182', '127.0.0.1:2183']
        assert _sync._member_at(hosts, ('127.0.0.1', 2182)) == 'localhost:2182'
        assert _sync._member_at(hosts, ('127.0.0.1', 2183)) == '127.0.0.1:2183'
        assert _sync._member_at(hosts, ('127.0.0.1', 9999)) is None
        assert _sync._member_at(hosts, ('10.9.9.9', 2181)) is None


class TestCompressedBaseline(object):
    def test_compressed_encoding_round_trips_and_is_zlib(self):
        import zlib
        entries = dict(('/p/%06d' % index, _sync.data_hash64(b'%d' % index)) for index in range(20000))
        baseline = Baseline(entries, {'task': 't', 'initial_done': True})
        blob = baseline.encode(compress=True)
        assert zlib.decompress(blob) == baseline.encode()
        assert len(blob) < len(baseline.encode())
        decoded = Baseline.decode(blob)
        assert decoded.entries == entries and decoded.meta == baseline.meta

    def test_a_broken_zlib_stream_is_refused(self):
        from ansible_collections.zookeeper.migration.plugins.module_utils._errors import SchemaError
        with pytest.raises(SchemaError):
            Baseline.decode(Baseline({'/a': 1}).encode(compress=True)[:-5])


# --------------------------------------------------------------------------
# Full reconcile scan: children names held as one sorted string per list
# --------------------------------------------------------------------------

class TestJoinedNames(object):
    def test_joined_names_split_back_sorted(self):
        names = ['m0000002', 'a', 'm0000001', 'a.b', 'z-\u00e9']
        joined = _sync_scan._join_sorted(list(names))
        assert isinstance(joined, str)
        assert list(_sync_scan._split_joined(joined)) == sorted(names)

    def test_an_empty_listing_yields_nothing(self):
        assert list(_sync_scan._split_joined(_sync_scan._join_sorted([]))) == []
        assert list(_sync_scan._split_joined(_sync_scan._join_sorted(['only']))) == ['only']
