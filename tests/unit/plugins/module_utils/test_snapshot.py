# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of _snapshot's data model, path filter and builder (the walk itself is in tests/integration)."""

import hashlib

import pytest
from kazoo.protocol.states import ZnodeStat
from kazoo.security import ACL, Id

from ansible_collections.zookeeper.migration.plugins.module_utils import _errors as errors
from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import (
    EMPTY_DATA_HASH,
    Node,
    PathFilter,
    Snapshot,
    SnapshotBuilder,
    hash_data,
    normalize_path,
    take_snapshot,
    normalize_roots,
)


def _stat(version=0, cversion=0, aversion=0, owner=0, length=0, children=0, mzxid=7, mtime=1700000000000):
    return ZnodeStat(czxid=5, mzxid=mzxid, ctime=1, mtime=mtime, version=version, cversion=cversion, aversion=aversion,
                     ephemeralOwner=owner, dataLength=length, numChildren=children, pzxid=9)


def test_hash_is_16_byte_blake2b():
    assert hash_data(b'abc') == hashlib.blake2b(b'abc', digest_size=16).digest()
    assert len(EMPTY_DATA_HASH) == 16 and EMPTY_DATA_HASH == hash_data(b'')


def test_node_defaults_and_helpers():
    node = Node('/a/b', data=b'hello')
    assert node.data_hash == hash_data(b'hello') and node.data_length == 5
    assert node.acl is None and not node.is_ephemeral
    assert (node.name, node.parent) == ('b', '/a')
    assert Node('/a').parent == '/' and Node('/').parent is None and Node('/').name == ''
    assert Node('/x', data=None, data_hash=hash_data(b'zz'), data_length=2).data is None
    assert not hasattr(node, '__dict__')
    assert node == Node('/a/b', data=b'hello') and node != Node('/a/b', data=b'other')


def test_node_to_dict():
    node = Node('/a', data=b'\xff\x00', acl=((31, 'world', 'anyone'),))
    view = node.to_dict(with_data=True)
    assert view['data_hex'] == 'ff00' and view['acl'] == [[31, 'world', 'anyone']]
    assert Node('/t', data=b'text').to_dict(with_data=True)['data'] == 'text'


@pytest.mark.parametrize('path, expected', [('/', '/'), ('/a/', '/a'), ('/a/b', '/a/b')])
def test_normalize_path(path, expected):
    assert normalize_path(path) == expected


@pytest.mark.parametrize('path', ['a', '', None, '/a//b', '/a/./b', '/..'])
def test_normalize_path_rejects(path):
    with pytest.raises(errors.ConfigError):
        normalize_path(path)


def test_roots_deduplicated_and_nested_roots_walked_once():
    roots, walk = normalize_roots(['/a/b', '/a', '/a/', '/c'])
    assert roots == ['/a/b', '/a', '/c'] and walk == ['/a', '/c']
    assert normalize_roots('/x') == (['/x'], ['/x'])
    assert normalize_roots(['/', '/a'])[1] == ['/']
    with pytest.raises(errors.ConfigError):
        normalize_roots([])


def test_path_filter_always_excludes_system_and_control_root():
    path_filter = PathFilter()
    assert path_filter.matches('/zookeeper') and path_filter.matches('/zookeeper-migration')
    assert not path_filter.matches('/zookeeperx') and not path_filter.matches('/app')
    assert path_filter.excluded('/zookeeper/quota/x') and path_filter.excluded('/zookeeper-migration/tasks/t')
    custom = PathFilter(control_root='/ops/ctl')
    assert custom.excluded('/ops/ctl/tasks') and not custom.excluded('/zookeeper-migration')


def test_path_filter_globs():
    path_filter = PathFilter(['/app/*/tmp', '/cache', '/locks/', '/svc?', '/x/[ab]'])
    assert path_filter.matches('/app/one/tmp') and path_filter.matches('/app/one/two/tmp')  # '*' spans '/'
    assert not path_filter.matches('/app/one/tmpfile') and not path_filter.matches('/app/tmp')
    assert path_filter.matches('/cache') and not path_filter.matches('/cache2')
    assert path_filter.matches('/locks')
    assert path_filter.matches('/svc1') and not path_filter.matches('/svc12')
    assert path_filter.matches('/x/a') and not path_filter.matches('/x/c')
    assert path_filter.excluded('/cache/deep/node') and not path_filter.excluded('/cachet/x')
    assert not PathFilter(['/Cache']).matches('/cache')  # znode paths are case-sensitive
    with pytest.raises(errors.ConfigError):
        PathFilter(['relative/*'])


def test_builder_records_stat_fields_and_counters():
    snapshot = Snapshot(['/r'])
    builder = SnapshotBuilder(snapshot)
    assert builder.add('/r', b'', _stat(children=2, cversion=4)) == 2
    assert builder.add('/r/eph', b'1234567', _stat(owner=99, length=7)) == 0
    assert builder.add('/r/big', b'abcd', _stat(version=3, aversion=1, length=4, mzxid=2 ** 40, mtime=5)) == 0
    node = snapshot.nodes['/r/big']
    assert (node.version, node.cversion, node.aversion, node.ephemeral_owner, node.num_children, node.data_length,
            node.mzxid, node.mtime) == (3, 0, 1, 0, 0, 4, 2 ** 40, 5)
    assert node.data == b'abcd' and node.data_hash == hash_data(b'abcd')
    assert snapshot.nodes['/r'].cversion == 4
    assert snapshot.ephemeral_count == 1 and snapshot.persistent_count == 2
    # the largest data among persistent nodes (the ephemeral's 7 bytes do not count)
    assert (snapshot.largest_data_length, snapshot.largest_data_path) == (4, '/r/big')
    assert [n.path for n in snapshot.ephemerals()] == ['/r/eph']
    assert sorted(n.path for n in snapshot.persistent()) == ['/r', '/r/big']
    builder.drop('/r/big')
    builder.drop('/r/eph')
    assert snapshot.vanished_count == 2 and snapshot.ephemeral_count == 0
    assert (snapshot.largest_data_length, snapshot.largest_data_path) == (0, '/r')
    summary = snapshot.summary()
    assert summary['nodes'] == 1 and summary['vanished'] == 2 and summary['roots'] == ['/r']


def test_builder_without_data_keeps_hash():
    snapshot = Snapshot(['/r'], keep_data=False)
    SnapshotBuilder(snapshot, keep_data=False).add('/r', b'payload', _stat(length=7))
    node = snapshot.nodes['/r']
    assert node.data is None and node.data_hash == hash_data(b'payload') and node.data_length == 7


def test_acls_are_interned_from_kazoo_acls_or_tuples():
    snapshot = Snapshot(['/'])
    builder = SnapshotBuilder(snapshot)
    for index in range(3):
        builder.add('/n%d' % index, b'', _stat())
    kazoo_acl = [ACL(31, Id('digest', 'app:hash=')), ACL(1, Id('world', 'anyone'))]
    builder.set_acl(snapshot.nodes['/n0'], kazoo_acl, _stat(aversion=2))
    builder.set_acl(snapshot.nodes['/n1'], list(kazoo_acl), _stat(aversion=2))
    builder.set_acl(snapshot.nodes['/n2'], [(31, 'digest', 'app:hash='), (1, 'world', 'anyone')], None)
    first = snapshot.nodes['/n0'].acl
    assert first == ((31, 'digest', 'app:hash='), (1, 'world', 'anyone'))
    assert snapshot.nodes['/n1'].acl is first and snapshot.nodes['/n2'].acl is first
    assert snapshot.nodes['/n0'].aversion == 2 and snapshot.nodes['/n2'].aversion == 0
    builder.set_acl(snapshot.nodes['/n2'], [], None)
    assert snapshot.nodes['/n2'].acl == ()


def test_snapshot_container_protocol_and_recount():
    snapshot = Snapshot(['/'])
    snapshot.nodes['/a'] = Node('/a', data=b'12345')
    snapshot.nodes['/e'] = Node('/e', data=b'1234567890', ephemeral_owner=5)
    snapshot.recount()
    assert len(snapshot) == 2 and '/a' in snapshot and snapshot.get('/zz') is None
    assert sorted(node.path for node in snapshot) == ['/a', '/e']
    assert (snapshot.ephemeral_count, snapshot.largest_data_length, snapshot.largest_data_path) == (1, 5, '/a')
    assert 'nodes=2' in repr(snapshot)


def test_take_snapshot_argument_checks():
    with pytest.raises(errors.ConfigError):
        take_snapshot(None, ['/a'], batch=0)
    with pytest.raises(errors.ConfigError):
        take_snapshot(None, ['relative'])
