# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of planning, byte-bounded batching and apply ordering (in-memory fake server).

The fake answers multis lazily, in order, when a result is awaited, so a
child batch sent before its parent's batch committed is caught (a real
server would accept it on the same session, which is exactly what the
ordering rule forbids). Integration tests run the same code on real servers.
"""

import collections
import struct

import pytest
from hypothesis import given, strategies as st

from kazoo import exceptions as ke
from kazoo.protocol.serialization import CheckVersion, Create, Delete, SetData, Transaction
from kazoo.security import ACL, Id

from ansible_collections.zookeeper.migration.plugins.module_utils import _apply
from ansible_collections.zookeeper.migration.plugins.module_utils._apply import (
    OPEN_ACL,
    Op,
    Plan,
    apply_plan,
    plan_copy,
    request_bytes,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import SEQ_BUMP_PREFIX, diff_snapshots
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    AuthFailedError,
    ConfigError,
    FencedError,
    NodeExistsError,
    TooLargeError,
    VersionConflictError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import Node, Snapshot

APP_ACL = ((31, 'digest', 'app:aGFzaA=='),)
MIGRATOR = ((31, 'digest', 'migrator:bWlncmF0b3I='),)


# --------------------------------------------------------------------------
# An in-memory ZooKeeper good enough for ordering and failure semantics
# --------------------------------------------------------------------------

WireCreate = collections.namedtuple('WireCreate', 'type path data acl flags ttl')
WireDelete = collections.namedtuple('WireDelete', 'path version')
WireSetData = collections.namedtuple('WireSetData', 'path data version')
WireCheck = collections.namedtuple('WireCheck', 'path version')


def decode_multi(body):
    """Parse the bytes of a multi request (as apply_plan sends them) back into operations."""
    ops = []
    offset = 0

    def read_int():
        nonlocal offset
        value = struct.unpack_from('!i', body, offset)[0]
        offset += 4
        return value

    def read_bytes():
        nonlocal offset
        length = read_int()
        if length < 0:
            return None
        value = body[offset:offset + length]
        offset += length
        return value

    def read_string():
        value = read_bytes()
        return '' if value is None else value.decode('utf-8')

    while True:
        op_type, done, _err = struct.unpack_from('!iBi', body, offset)
        offset += 9
        if done:
            assert offset == len(body), 'trailing bytes after the multi end'
            return ops
        if op_type in (1, 19, 21):
            path, data = read_string(), read_bytes()
            acl = [(read_int(), read_string(), read_string()) for _entry in range(read_int())]
            flags = read_int()
            ttl = None
            if op_type == 21:
                ttl = struct.unpack_from('!q', body, offset)[0]
                offset += 8
            ops.append(WireCreate(op_type, path, data, acl, flags, ttl))
        elif op_type == 2:
            ops.append(WireDelete(read_string(), read_int()))
        elif op_type == 5:
            ops.append(WireSetData(read_string(), read_bytes(), read_int()))
        elif op_type == 13:
            ops.append(WireCheck(read_string(), read_int()))
        else:
            raise AssertionError('unexpected op type %d' % op_type)


class FakeMulti(object):
    def __init__(self, operations):
        self.operations = operations


class FakeZNode(object):
    def __init__(self, data=b'', acl=OPEN_ACL):
        self.data = data
        self.version = 0
        self.aversion = 0
        self.creates = 0          # the sequential counter
        self.children = set()
        self.acl = acl

    def stat(self):
        class Stat(object):
            pass
        stat = Stat()
        stat.version = self.version
        stat.aversion = self.aversion
        stat.numChildren = len(self.children)
        stat.cversion = 2 * self.creates - len(self.children)
        return stat


class FakeAsync(object):
    def __init__(self, client):
        self.client = client
        self.done = False
        self.value = None
        self.exc = None

    def set(self, value):
        self.done, self.value = True, value

    def set_exception(self, exc):
        self.done, self.exc = True, exc

    def get(self):
        self.client.process_until(self)
        if self.exc is not None:
            raise self.exc
        return self.value


class FakeHandler(object):
    def __init__(self, client):
        self.client = client

    def async_result(self):
        return FakeAsync(self.client)


def _parent(path):
    return path.rpartition('/')[0] or '/'


class FakeClient(object):
    def __init__(self):
        self.chroot = ''
        self.auth_data = set()
        self.tree = {'/': FakeZNode()}
        self.queue = []
        self.handler = FakeHandler(self)
        self.violations = []
        self.multis = []
        self.max_in_flight = 0
        self.acl_calls = []

    # kazoo's private entry point, which apply_plan uses for multis
    def _call(self, request, async_result):
        assert request.type == 14
        request = FakeMulti(decode_multi(request.serialize()))
        pending_creates = set()
        for op in request.operations:
            if isinstance(op, WireCreate):
                parent = _parent(op.path)
                if parent not in self.tree and parent not in pending_creates:
                    self.violations.append('create %s sent before its parent %s was committed' % (op.path, parent))
                pending_creates.add(op.path)
        self.queue.append((request, async_result))
        self.multis.append(request)
        self.max_in_flight = max(self.max_in_flight, len(self.queue))
        return True

    def process_until(self, target):
        while not target.done and self.queue:
            request, async_result = self.queue.pop(0)
            async_result.set(self.execute(request.operations))

    def execute(self, operations):
        saved = self.snapshot_tree()
        results = []
        for index, op in enumerate(operations):
            try:
                results.append(self.apply_op(op))
            except ke.ZookeeperError as exc:
                self.tree = saved
                return [ke.RolledBackError()] * index + [exc] + [ke.RuntimeInconsistency()] * (len(operations) - index - 1)
        return results

    def snapshot_tree(self):
        copy = {}
        for path, znode in self.tree.items():
            clone = FakeZNode(znode.data, znode.acl)
            clone.version, clone.aversion, clone.creates = znode.version, znode.aversion, znode.creates
            clone.children = set(znode.children)
            copy[path] = clone
        return copy

    def apply_op(self, op):
        tree = self.tree
        if isinstance(op, WireCheck):
            if op.path not in tree:
                raise ke.NoNodeError()
            if op.version != -1 and tree[op.path].version != op.version:
                raise ke.BadVersionError()
            return True
        if isinstance(op, WireCreate):
            if op.path in tree:
                raise ke.NodeExistsError()
            parent = _parent(op.path)
            if parent not in tree:
                raise ke.NoNodeError()
            tree[op.path] = FakeZNode(op.data, op.acl)
            tree[parent].children.add(op.path)
            tree[parent].creates += 1
            return op.path
        if isinstance(op, WireDelete):
            if op.path not in tree:
                raise ke.NoNodeError()
            if tree[op.path].children:
                raise ke.NotEmptyError()
            if op.version != -1 and tree[op.path].version != op.version:
                raise ke.BadVersionError()
            del tree[op.path]
            tree[_parent(op.path)].children.discard(op.path)
            return True
        if isinstance(op, WireSetData):
            if op.path not in tree:
                raise ke.NoNodeError()
            znode = tree[op.path]
            if op.version != -1 and znode.version != op.version:
                raise ke.BadVersionError()
            znode.data = op.data
            znode.version += 1
            return znode.stat()
        raise AssertionError('unexpected op %r' % (op,))

    # plain requests
    def exists_async(self, path):
        result = FakeAsync(self)
        self.process_until(result)
        result.set(self.tree[path].stat() if path in self.tree else None)
        return result

    def set_acls_async(self, path, acls, version=-1):
        result = FakeAsync(self)
        self.process_until(result)
        self.acl_calls.append(path)
        znode = self.tree.get(path)
        if znode is None:
            result.set_exception(ke.NoNodeError())
        elif version != -1 and znode.aversion != version:
            result.set_exception(ke.BadVersionError())
        else:
            znode.acl = [(a.perms, a.id.scheme, a.id.id) for a in acls]
            znode.aversion += 1
            result.set(znode.stat())
        return result

    def get_acls_async(self, path):
        result = FakeAsync(self)
        self.process_until(result)
        znode = self.tree.get(path)
        if znode is None:
            result.set_exception(ke.NoNodeError())
        else:
            result.set(([ACL(perms, Id(scheme, ident)) for perms, scheme, ident in znode.acl], znode.stat()))
        return result

    def ensure_path(self, path, acl=None):
        parts = path.strip('/').split('/')
        for depth in range(1, len(parts) + 1):
            current = '/' + '/'.join(parts[:depth])
            if current not in self.tree:
                self.tree[current] = FakeZNode(acl=[(a.perms, a.id.scheme, a.id.id) for a in acl] if acl else OPEN_ACL)
                self.tree[_parent(current)].children.add(current)
                self.tree[_parent(current)].creates += 1
        return True


# --------------------------------------------------------------------------
# Snapshot helpers
# --------------------------------------------------------------------------

def source_tree(fanout=3, depth=3, data=b'v' * 40, acl=((31, 'world', 'anyone'),)):
    snapshot = Snapshot(['/src'], with_acl=True)
    paths = ['/src']
    frontier = ['/src']
    for _level in range(depth):
        nxt = []
        for parent in frontier:
            for i in range(fanout):
                nxt.append('%s/n%d' % (parent, i))
        paths.extend(nxt)
        frontier = nxt
    for path in paths:
        children = sum(1 for p in paths if p.rpartition('/')[0] == path)
        snapshot.nodes[path] = Node(path, data=data, acl=acl, num_children=children, cversion=children)
    snapshot.recount()
    return snapshot


def empty():
    return Snapshot(['/src'], with_acl=True)


def snapshot_of(fake, root='/src'):
    snapshot = Snapshot([root], with_acl=True)
    for path, znode in fake.tree.items():
        if path == root or path.startswith(root + '/'):
            stat = znode.stat()
            snapshot.nodes[path] = Node(path, data=znode.data, acl=tuple(tuple(e) for e in znode.acl), version=znode.version,
                                        cversion=stat.cversion, aversion=znode.aversion, num_children=stat.numChildren)
    return snapshot


def copy_plan(source, dest, **kwargs):
    return plan_copy(source, dest, diff_snapshots(source, dest), **kwargs)


# --------------------------------------------------------------------------
# Sizes and batching
# --------------------------------------------------------------------------

def test_op_sizes_match_kazoo_serialization_exactly():
    acl = ((31, 'digest', 'user:abc='), (1, 'world', 'anyone'))
    kacl = [ACL(p, Id(s, i)) for p, s, i in acl]
    create = Op('create', '/a/\u00e9t\u00e9', data=b'\x00' * 37, acl=acl, node_kind='persistent')
    assert create.size == 9 + len(Create('/a/\u00e9t\u00e9', b'\x00' * 37, kacl, 0).serialize())
    update = Op('set_data', '/a/b', data=b'xyz', version=3)
    assert update.size == 9 + len(SetData('/a/b', b'xyz', 3).serialize())
    delete = Op('delete', '/a/b', version=3)
    assert delete.size == 9 + len(Delete('/a/b', 3).serialize())
    multi = Transaction([CheckVersion('/fence', 1), Create('/a/\u00e9t\u00e9', b'\x00' * 37, kacl, 0), SetData('/a/b', b'xyz', 3),
                         Delete('/a/b', 3)])
    # ZooKeeper counts the request header (xid, opcode) plus the body against jute.maxbuffer.
    assert request_bytes([create.size, update.size, delete.size], fence_path='/fence') == 8 + len(multi.serialize())


def test_encoded_multis_are_byte_identical_to_kazoo_and_protocol_requests():
    from ansible_collections.zookeeper.migration.plugins.module_utils import _protocol
    acl = ((31, 'digest', 'user:abc='), (1, 'world', 'anyone'))
    kacl = [ACL(p, Id(s, i)) for p, s, i in acl]
    plan = Plan()
    plan.create('/a', b'', acl)
    plan.create('/a/c', b'\x00\xff', None, kind='container')
    plan.create('/a/t', b'ttl', acl, kind='ttl', ttl_ms=1234)
    plan.set_data('/a/x', b'new', 4)
    plan.delete('/a/y', 2)
    client = FakeClient()
    applier = _apply._Applier(client, plan, 10 ** 6, 500, 8, ('/f', 9), None, 0xfffff, False, None)
    ops = plan.creates + plan.updates + plan.deletes
    body = b''.join([applier.fence_bytes] + [applier.encode(op) for op in ops]) + _apply._MULTI_END_BYTES
    expected = Transaction([CheckVersion('/f', 9), Create('/a', b'', kacl, 0),
                            _protocol.container_create_op('/a/c', b'\x00\xff', [ACL(31, Id('world', 'anyone'))]),
                            _protocol.ttl_create_op('/a/t', b'ttl', kacl, 1234), SetData('/a/x', b'new', 4), Delete('/a/y', 2)])
    assert body == bytes(expected.serialize())
    assert 8 + len(body) == request_bytes([op.size for op in ops], fence_path='/f')


def test_batches_are_bounded_by_bytes_and_ops():
    plan = Plan()
    plan.create('/big', b'')
    for i in range(40):
        plan.create('/big/n%02d' % i, b'x' * 1000)
    applier = _apply._Applier(FakeClient(), plan, 10000, 500, 8, None, None, 0xfffff, False, None)
    batches = applier.make_batches(plan.creates, 'test')
    assert [len(b.ops) for b in batches] == [10, 9, 9, 9, 4]
    for batch in batches:
        assert batch.size <= 10000
        assert batch.size == request_bytes([op.size for op in batch.ops])
    applier = _apply._Applier(FakeClient(), plan, 10 ** 6, 7, 8, None, None, 0xfffff, False, None)
    assert [len(b.ops) for b in applier.make_batches(plan.creates, 'test')] == [7, 7, 7, 7, 7, 6]


def test_an_op_larger_than_the_batch_bound_goes_alone():
    plan = Plan()
    plan.create('/a', b'x' * 100)
    plan.create('/b', b'x' * 30000)
    plan.create('/c', b'x' * 100)
    applier = _apply._Applier(FakeClient(), plan, 20000, 500, 8, None, None, 0xfffff, False, None)
    assert [[op.path for op in b.ops] for b in applier.make_batches(plan.creates, 'test')] == [['/a'], ['/b'], ['/c']]


def test_chroot_and_fence_count_in_batch_size():
    plan = Plan()
    for i in range(3):
        plan.create('/n%d' % i, b'12345')
    client = FakeClient()
    client.chroot = '/chroot'
    applier = _apply._Applier(client, plan, 10 ** 6, 500, 8, ('/fence', 4), None, 0xfffff, False, None)
    (batch,) = applier.make_batches(plan.creates, 'test')
    applier.send(batch)
    (sent,) = client.queue
    body = sent[0].operations
    assert body[0] == WireCheck('/chroot/fence', 4)
    assert body[1].path == '/chroot/n0'
    kacl = [ACL(31, Id('world', 'anyone'))]
    expected = Transaction([CheckVersion('/chroot/fence', 4)] + [Create('/chroot/n%d' % i, b'12345', kacl, 0) for i in range(3)])
    assert batch.size == 8 + len(expected.serialize())


# --------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------

def test_plan_creates_parents_first_with_source_data_and_acl():
    source = source_tree()
    plan = copy_plan(source, empty())
    paths = [op.path for op in plan.creates]
    assert len(paths) == len(source.nodes)
    position = dict((path, index) for index, path in enumerate(paths))
    for path in paths:
        parent = path.rpartition('/')[0]
        if parent in position:
            assert position[parent] < position[path]
    assert all(op.data == b'v' * 40 and op.acl == ((31, 'world', 'anyone'),) for op in plan.creates)
    assert plan.ensure_paths == []    # /src's parent is the root
    assert not plan.deletes and not plan.updates and not plan.acl_writes


def test_plan_without_acl_sync_creates_with_default_acl():
    plan = copy_plan(source_tree(depth=1), empty(), sync_acl=False)
    assert all(op.acl is None for op in plan.creates)


def test_plan_updates_are_conditional_on_destination_versions():
    source = Snapshot(['/src'], with_acl=True)
    source.nodes = {'/src': Node('/src', data=b'new', acl=APP_ACL)}
    dest = Snapshot(['/src'], with_acl=True)
    dest.nodes = {'/src': Node('/src', data=b'old', acl=OPEN_ACL, version=7, aversion=3)}
    plan = copy_plan(source, dest)
    assert [(op.kind, op.path, op.data, op.version) for op in plan.updates] == [('set_data', '/src', b'new', 7)]
    assert [(op.kind, op.acl, op.version) for op in plan.acl_writes] == [('set_acl', APP_ACL, 3)]
    assert not copy_plan(source, dest, sync_acl=False).acl_writes


def test_restrictive_acl_applied_after_children():
    source = source_tree(depth=1, acl=APP_ACL)
    plan = copy_plan(source, empty())
    root = [op for op in plan.creates if op.path == '/src'][0]
    assert root.acl == _apply.MIGRATOR_ONLY_ACL          # temporary: migrator only
    leaves = [op for op in plan.creates if op.path != '/src']
    assert all(op.acl == APP_ACL for op in leaves)        # leaves have no children to create
    assert [(op.path, op.acl, op.version) for op in plan.acl_writes] == [('/src', APP_ACL, 0)]
    # With the migrator named, its own entries are the temporary ACL; an ACL granting it CREATE is not deferred.
    plan = copy_plan(source, empty(), migrator_acl=MIGRATOR)
    assert [op for op in plan.creates if op.path == '/src'][0].acl == MIGRATOR
    plan = copy_plan(source_tree(depth=1, acl=MIGRATOR + APP_ACL), empty(), migrator_acl=MIGRATOR)
    assert not plan.acl_writes


def test_grant_migrator_mode_adds_the_migrator_to_every_acl():
    source = source_tree(depth=1, acl=APP_ACL)
    plan = copy_plan(source, empty(), acl_mode='grant_migrator', migrator_acl=MIGRATOR)
    assert all(op.acl == APP_ACL + MIGRATOR for op in plan.creates)
    assert not plan.acl_writes
    with pytest.raises(ConfigError, match='migrator_acl'):
        copy_plan(source, empty(), acl_mode='grant_migrator')
    # Already granted on the destination: nothing to do.
    dest = Snapshot(['/src'], with_acl=True)
    dest.nodes = dict((path, Node(path, data=node.data, acl=APP_ACL + MIGRATOR, num_children=node.num_children))
                      for path, node in source.nodes.items())
    assert copy_plan(source, dest, acl_mode='grant_migrator', migrator_acl=MIGRATOR).empty


def test_node_types_declare_containers_and_ttl():
    source = source_tree(depth=2, fanout=2)
    rules = [{'pattern': '/src/n0', 'type': 'container'}, {'pattern': '/src/n1/*', 'type': 'ttl', 'ttl_ms': 60000}]
    plan = copy_plan(source, empty(), node_types=rules)
    kinds = dict((op.path, (op.node_kind, op.ttl_ms)) for op in plan.creates)
    assert kinds['/src/n0'] == ('container', None)
    assert kinds['/src/n1/n0'] == ('ttl', 60000)
    assert kinds['/src/n0/n0'] == ('persistent', None)
    with pytest.raises(ConfigError, match='ttl_ms'):
        copy_plan(source, empty(), node_types=[{'pattern': '/x', 'type': 'ttl'}])
    with pytest.raises(ConfigError, match='container or ttl'):
        copy_plan(source, empty(), node_types=[{'pattern': '/x', 'type': 'sequential'}])


def test_prune_deletes_children_first_and_never_ephemerals():
    source = Snapshot(['/src'])
    source.nodes = {'/src': Node('/src', data=b'', num_children=0)}
    dest = Snapshot(['/src'])
    dest.nodes = {
        '/src': Node('/src', data=b'', num_children=2),
        '/src/old': Node('/src/old', num_children=1, version=2),
        '/src/old/leaf': Node('/src/old/leaf', version=1),
        '/src/svc': Node('/src/svc', data=b'', num_children=1),
        '/src/svc/member': Node('/src/svc/member', ephemeral_owner=42),
    }
    plan = copy_plan(source, dest, sync_acl=False)
    assert not plan.deletes
    assert sorted(s['path'] for s in plan.skipped) == ['/src/old', '/src/old/leaf', '/src/svc']
    plan = copy_plan(source, dest, sync_acl=False, prune=True)
    assert [(op.path, op.version) for op in plan.deletes] == [('/src/old/leaf', 1), ('/src/old', 2)]
    assert [s['path'] for s in plan.skipped] == ['/src/svc']


def test_counter_raise_planned_for_sequential_parents_only():
    source = Snapshot(['/src'])
    source.nodes = {
        '/src': Node('/src', data=b'', num_children=2, cversion=2),
        '/src/q': Node('/src/q', data=b'', num_children=2, cversion=96),          # 49 creates, 47 deleted
        '/src/q/job-0000000047': Node('/src/q/job-0000000047', data=b''),
        '/src/q/job-0000000048': Node('/src/q/job-0000000048', data=b''),
        '/src/svc': Node('/src/svc', data=b'', num_children=1, cversion=100001),
        '/src/svc/m-0000050000': Node('/src/svc/m-0000050000', ephemeral_owner=3),
    }
    plan = copy_plan(source, empty(), sync_acl=False)
    assert [(op.path, op.target, op.current) for op in plan.counter_raises] == [('/src/q', 49, 2)]
    assert plan.estimated_seq_bump_pairs() == 47


# --------------------------------------------------------------------------
# Applying
# --------------------------------------------------------------------------

def test_apply_copies_a_tree_without_ordering_violations():
    source = source_tree(fanout=4, depth=4)
    client = FakeClient()
    plan = copy_plan(source, empty())
    seen = []
    result = apply_plan(client, plan, max_batch_ops=7, in_flight=4, progress=lambda done, total: seen.append((done, total)))
    assert client.violations == []
    assert client.max_in_flight > 1            # the window is used
    assert result.applied['create'] == len(source.nodes)
    assert result.ok and result.batches == len(client.multis)
    assert set(p for p in client.tree if p.startswith('/src')) == set(source.nodes)
    assert seen[-1] == (len(source.nodes), len(source.nodes))


def test_apply_is_idempotent_through_diff():
    source = source_tree()
    client = FakeClient()
    apply_plan(client, copy_plan(source, empty()))
    again = copy_plan(source, snapshot_of(client))
    assert again.empty, again.to_dict()


def test_failed_multi_names_the_path_and_reports_what_was_not_applied():
    source = source_tree(fanout=4, depth=3)          # 85 nodes
    client = FakeClient()
    client.ensure_path('/src/n1')
    client.tree['/src'].data = client.tree['/src/n1'].data = b'v' * 40
    plan = copy_plan(source, snapshot_of(client))
    # Someone creates one of the planned nodes behind the plan's back.
    client.ensure_path('/src/n1/n2')
    with pytest.raises(NodeExistsError) as caught:
        apply_plan(client, plan, max_batch_ops=10, in_flight=3)
    error = caught.value
    assert error.path == '/src/n1/n2'
    assert '/src/n1/n2' in str(error) and 'rolled back' in str(error)
    result = error.result
    not_applied = set(path for _kind, path in result.not_applied)
    assert '/src/n1/n2' in not_applied
    assert '/src/n1/n2/n0' in not_applied
    # What was reported applied is there; what was reported not applied is not (except the intruder).
    for path in source.nodes:
        if path in not_applied:
            assert path not in client.tree or path == '/src/n1/n2'
        else:
            assert path in client.tree
    assert result.applied['create'] + len(result.not_applied) == len(plan.creates)
    assert client.violations == []


def test_continue_on_error_sends_everything_independent():
    source = source_tree(fanout=3, depth=2)
    client = FakeClient()
    plan = copy_plan(source, empty())
    client.tree['/src/n0/n0'] = FakeZNode()      # an intruder (a real server would need its parents)
    result = apply_plan(client, plan, max_batch_ops=1, continue_on_error=True)
    assert [(f['path'], f['kind']) for f in result.failures] == [('/src/n0/n0', 'node_exists')]
    assert [path for _kind, path in result.not_applied] == ['/src/n0/n0']
    assert result.applied['create'] == len(plan.creates) - 1


def test_conditional_update_losing_a_race_is_a_version_conflict():
    client = FakeClient()
    client.ensure_path('/src')
    plan = Plan()
    plan.set_data('/src', b'mine', expected_version=0)
    client.tree['/src'].version = 1          # someone else wrote meanwhile
    client.tree['/src'].data = b'theirs'
    with pytest.raises(VersionConflictError) as caught:
        apply_plan(client, plan)
    assert caught.value.path == '/src'
    assert client.tree['/src'].data == b'theirs'


def test_too_large_refused_before_anything_is_written():
    plan = Plan()
    plan.create('/a', b'small')
    plan.create('/a/huge', b'x' * (0xfffff - 40))
    client = FakeClient()
    with pytest.raises(TooLargeError) as caught:
        apply_plan(client, plan)
    assert caught.value.path == '/a/huge'
    assert 'nothing was written' in str(caught.value)
    assert client.multis == [] and '/a' not in client.tree
    # Just under the limit (request header + multi framing + path + ACL) goes through alone.
    fits = 0xfffff - request_bytes([Op('create', '/a/huge', data=b'').size])
    plan = Plan()
    plan.create('/a', b'small')
    plan.create('/a/huge', b'x' * fits)
    apply_plan(client, plan)
    assert len(client.tree['/a/huge'].data) == fits


def test_fence_check_leads_every_multi():
    client = FakeClient()
    client.ensure_path('/fence/task')
    client.tree['/fence/task'].version = 3
    plan = copy_plan(source_tree(depth=2), empty())
    apply_plan(client, plan, fence=('/fence/task', 3), max_batch_ops=5)
    assert all(isinstance(m.operations[0], WireCheck) for m in client.multis)
    client = FakeClient()
    client.ensure_path('/fence/task')
    client.tree['/fence/task'].version = 4      # a newer leader bumped it
    with pytest.raises(FencedError) as caught:
        apply_plan(client, copy_plan(source_tree(depth=2), empty()), fence=('/fence/task', 3))
    assert caught.value.path == '/fence/task'
    assert '/src' not in client.tree


def test_counter_raise_reaches_the_target_exactly():
    source = Snapshot(['/src'])
    source.nodes = {'/src': Node('/src', data=b'', num_children=1, cversion=1),
                    '/src/q': Node('/src/q', data=b'', num_children=2, cversion=2 * 1234 - 2),
                    '/src/q/job-0000001232': Node('/src/q/job-0000001232', data=b''),
                    '/src/q/job-0000001233': Node('/src/q/job-0000001233', data=b'')}
    client = FakeClient()
    result = apply_plan(client, copy_plan(source, empty(), sync_acl=False), max_batch_ops=100)
    queue = client.tree['/src/q']
    assert queue.creates == 1234                  # next sequential suffix, as on the source
    assert result.seq_bump_pairs == 1232
    assert result.applied['raise_cversion'] == 1
    assert not any(SEQ_BUMP_PREFIX in path for path in client.tree)
    # Every multi keeps a create and the delete of the same throwaway child together.
    for multi in client.multis[-3:]:
        names = [op.path for op in multi.operations]
        assert names[0::2] == names[1::2]


def test_deferred_acls_set_after_children_with_aversion_zero():
    source = source_tree(depth=2, fanout=2, acl=APP_ACL)
    client = FakeClient()
    client.auth_data = {('digest', 'migrator:pw')}
    apply_plan(client, copy_plan(source, empty()))
    for path in source.nodes:
        assert client.tree[path].acl == list(APP_ACL)
    assert sorted(client.acl_calls) == ['/src', '/src/n0', '/src/n1']


def test_redacted_digest_acls_are_refused():
    # A client without ADMIN reads digest ids as "user:x" (ZOOKEEPER-1392): copying those would lock everyone out.
    source = source_tree(depth=1, acl=((31, 'digest', 'app:x'), (1, 'world', 'anyone')))
    with pytest.raises(AuthFailedError) as caught:
        copy_plan(source, empty())
    assert 'ADMIN' in str(caught.value) and caught.value.path == '/src'
    assert copy_plan(source, empty(), sync_acl=False).counts['create'] == len(source.nodes)


def test_missing_root_ancestors_are_ensured_on_the_destination_side():
    source = source_tree(depth=1)
    diff = diff_snapshots(source, Snapshot(['/deep/a/copy']), path_map={'/src': '/deep/a/copy'})
    plan = plan_copy(source, Snapshot(['/deep/a/copy']), diff)
    assert plan.ensure_paths == ['/deep/a']
    assert plan.creates[0].path == '/deep/a/copy'
    client = FakeClient()
    apply_plan(client, plan)
    assert '/deep/a/copy/n0' in client.tree


def test_a_failed_counter_raise_names_the_parent():
    client = FakeClient()
    client.ensure_path('/q')
    plan = Plan()
    plan.raise_cversion('/q', 10)
    real_execute = client.execute

    def refuse_deletes(operations):
        if any(isinstance(op, WireDelete) for op in operations):
            index = [i for i, op in enumerate(operations) if isinstance(op, WireDelete)][1]
            return [ke.RolledBackError()] * index + [ke.NoAuthError()] + [ke.RuntimeInconsistency()] * (len(operations) - index - 1)
        return real_execute(operations)
    client.execute = refuse_deletes
    with pytest.raises(Exception) as caught:
        apply_plan(client, plan)
    assert caught.value.path == '/q'
    assert 'raising the sequential counter of /q' in str(caught.value)
    assert caught.value.result.not_applied == [('raise_cversion', '/q')]


def test_stopped_runs_report_every_later_operation_as_not_applied():
    client = FakeClient()
    client.ensure_path('/a/x')
    plan = Plan()
    plan.create('/a/x', b'')             # exists: fails
    plan.delete('/a/gone')
    plan.raise_cversion('/a', 3)
    plan.set_acl('/a', OPEN_ACL)
    with pytest.raises(NodeExistsError) as caught:
        apply_plan(client, plan)
    expected = [('create', '/a/x'), ('delete', '/a/gone'), ('raise_cversion', '/a'), ('set_acl', '/a')]
    assert sorted(caught.value.result.not_applied) == sorted(expected)


def test_fenced_acl_writes_never_go_out_even_with_continue_on_error():
    client = FakeClient()
    client.ensure_path('/fence')
    client.ensure_path('/a')
    client.tree['/fence'].version = 2
    plan = Plan()
    plan.set_acl('/a', APP_ACL)
    result = apply_plan(client, plan, fence=('/fence', 1), continue_on_error=True)
    assert [f['kind'] for f in result.failures] == ['fenced']
    assert result.not_applied == [('set_acl', '/a')]
    assert client.acl_calls == []


# --------------------------------------------------------------------------
# Creates without an ACL inherit their parent's (never world:anyone ALL by default)
# --------------------------------------------------------------------------

ACL_ENTRY = st.tuples(st.integers(min_value=1, max_value=31), st.sampled_from(['world', 'digest', 'ip', 'auth']),
                      st.sampled_from(['anyone', 'app:aGFzaA==', 'app:x', '10.0.0.1', '']))


@given(parent=st.lists(ACL_ENTRY, max_size=4).map(tuple), authenticated=st.booleans())
def test_an_inherited_acl_is_never_wider_than_the_parent(parent, authenticated):
    inherited = _apply.inherited_acl(parent, authenticated)
    masked = set(entry for entry in parent if entry[1] == 'digest' and entry[2].endswith(':x'))
    kept = set(parent) - masked - {(31, 'auth', '')}
    extra = set(inherited) - kept
    if authenticated:
        # the migrator keeps its rights on what it creates, through the session's own identity, and nobody else gains any
        assert extra == {(31, 'auth', '')}
    elif kept:
        assert not extra
    else:
        # an anonymous migrator with nothing to inherit: world:anyone is all it has
        assert inherited == OPEN_ACL
    assert not masked & set(inherited)
    assert len(set(inherited)) == len(inherited)


def test_creates_without_an_acl_take_their_parents_and_the_migrators():
    client = FakeClient()
    client.auth_data = {('digest', 'migrator:pw')}
    client.ensure_path('/app')
    client.tree['/app'].acl = [(1, 'world', 'anyone'), (31, 'digest', 'app:aGFzaA==')]
    plan = Plan()
    plan.create('/app/a', b'1')
    plan.create('/app/a/b', b'2')
    plan.create('/app/c', b'3', acl=APP_ACL)
    plan.create('/app/c/d', b'4')
    apply_plan(client, plan)
    inherited = [(1, 'world', 'anyone'), (31, 'digest', 'app:aGFzaA=='), (31, 'auth', '')]
    assert client.tree['/app/a'].acl == inherited and client.tree['/app/a/b'].acl == inherited
    assert client.tree['/app/c'].acl == list(APP_ACL)
    assert client.tree['/app/c/d'].acl == list(APP_ACL) + [(31, 'auth', '')]


def test_ensured_ancestors_inherit_too():
    client = FakeClient()
    client.auth_data = {('digest', 'migrator:pw')}
    client.ensure_path('/deep')
    client.tree['/deep'].acl = list(APP_ACL)
    source = source_tree(depth=1)
    diff = diff_snapshots(source, Snapshot(['/deep/a/copy']), path_map={'/src': '/deep/a/copy'})
    plan = plan_copy(source, Snapshot(['/deep/a/copy']), diff, sync_acl=False)
    apply_plan(client, plan)
    assert client.tree['/deep/a'].acl == list(APP_ACL) + [(31, 'auth', '')]
    assert client.tree['/deep/a/copy/n0'].acl == list(APP_ACL) + [(31, 'auth', '')]


# --------------------------------------------------------------------------
# Node type rules and ACL tuples
# --------------------------------------------------------------------------

def test_node_type_rules_first_match_wins():
    rules = _apply.NodeTypeRules([{'pattern': '/a/locks/*', 'type': 'container'}, {'pattern': '/a/*', 'type': 'ttl', 'ttl_ms': 5000}])
    assert rules.match('/a/locks/x') == ('container', None)
    assert rules.match('/a/other') == ('ttl', 5000)
    assert rules.match('/b') == ('persistent', None)


def test_acl_tuple_accepts_kazoo_acls_and_tuples():
    from kazoo.security import ACL, Id
    assert _apply.acl_tuple([ACL(31, Id('world', 'anyone'))]) == ((31, 'world', 'anyone'),)
    assert _apply.acl_tuple([(1, 'digest', 'u:h')]) == ((1, 'digest', 'u:h'),)
    assert _apply.acl_tuple(None) is None


ENTRY = st.tuples(st.sampled_from([1, 17, 31]), st.sampled_from(['world', 'digest', 'ip']), st.sampled_from(['anyone', 'u:h', '10.0.0.1']))


@given(acl=st.lists(ENTRY, max_size=4), migrator=st.lists(ENTRY, min_size=1, max_size=2))
def test_granted_acl_keeps_the_acl_in_order_and_adds_only_missing_migrator_entries(acl, migrator):
    granted = _apply.granted_acl(acl, 'grant_migrator', migrator)
    assert granted[:len(acl)] == tuple(acl)
    assert granted[len(acl):] == tuple(entry for entry in migrator if entry not in set(acl))
    assert _apply.granted_acl(acl, 'verbatim', migrator) == tuple(acl)
    assert _apply.granted_acl(acl, 'grant_migrator', None) == tuple(acl)
