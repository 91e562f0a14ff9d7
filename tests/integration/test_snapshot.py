# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""take_snapshot against real ZooKeeper servers (3.8 with multiRead, 3.4.13 without)."""

import os

import pytest
from kazoo.security import make_digest_acl, make_acl, OPEN_ACL_UNSAFE

from ansible_collections.zookeeper.migration.plugins.module_utils import _client, _snapshot
from ansible_collections.zookeeper.migration.plugins.module_utils import _errors as errors
from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import hash_data, take_snapshot

pytestmark = pytest.mark.integration

# ZooKeeper refuses names with characters outside the Basic Multilingual
# Plane (emojis: Java sees surrogates, which PathUtils rejects), so emojis go
# in the data; names get BMP symbols, spaces, '%' and a very long name.
ODD_NAMES = ['with space', 'per%cent', 'snowman-\u2603', 'ünïcødé-名前', 'dots.and-dashes_', 'x' * 900]
EMOJI_DATA = 'emoji \U0001F600 data'.encode('utf-8')


@pytest.fixture
def standalone(zk_standalone):
    with _client.connected(zk_standalone.client_spec()) as client:
        yield client


def _create_many(client, paths_and_data, batch=500):
    for start in range(0, len(paths_and_data), batch):
        txn = client.transaction()
        for path, data in paths_and_data[start:start + batch]:
            txn.create(path, data)
        results = txn.commit()
        assert not [r for r in results if isinstance(r, Exception)], results[:3]


def _load_varied_tree(client, base, holder):
    client.create(base + '/conf/app', b'{"a": 1}', makepath=True)
    client.create(base + '/conf/empty', b'')
    client.create(base + '/conf/binary', bytes(range(256)) * 4)
    client.create(base + '/conf/emoji', EMOJI_DATA)
    client.create(base + '/queue')
    for index in range(3):
        client.create(base + '/queue/item-', b'job %d' % index, sequence=True)
    client.create(base + '/services/web', makepath=True)
    holder.create(base + '/services/web/host-1', b'10.0.0.1:80', ephemeral=True)
    holder.create(base + '/services/web/host-2', b'10.0.0.2:80', ephemeral=True)
    holder.create(base + '/services/web/member-', b'', ephemeral=True, sequence=True)
    for name in ODD_NAMES:
        client.create('%s/odd/%s' % (base, name), name.encode('utf-8'), makepath=True)


def _node_view(snapshot, base):
    return dict((path[len(base):] or '/', (node.data, node.data_hash, node.acl, node.version, node.cversion, node.aversion,
                                           bool(node.ephemeral_owner), node.num_children, node.data_length))
                for path, node in snapshot.nodes.items())


def test_varied_tree(zk_standalone, standalone, zk_path, zk_client_factory):
    holder = zk_client_factory(zk_standalone)
    _load_varied_tree(standalone, zk_path, holder)
    snapshot = take_snapshot(standalone, [zk_path])
    assert snapshot.multi_read is True
    nodes = snapshot.nodes
    expected_persistent = {zk_path, zk_path + '/conf', zk_path + '/conf/app', zk_path + '/conf/empty', zk_path + '/conf/binary',
                           zk_path + '/conf/emoji',
                           zk_path + '/queue', zk_path + '/services', zk_path + '/services/web', zk_path + '/odd'}
    expected_persistent.update('%s/queue/item-%010d' % (zk_path, index) for index in range(3))
    expected_persistent.update('%s/odd/%s' % (zk_path, name) for name in ODD_NAMES)
    assert set(node.path for node in snapshot.persistent()) == expected_persistent
    ephemerals = sorted(node.path for node in snapshot.ephemerals())
    assert ephemerals[:2] == [zk_path + '/services/web/host-1', zk_path + '/services/web/host-2']
    assert ephemerals[2].startswith(zk_path + '/services/web/member-') and len(ephemerals) == 3
    assert snapshot.ephemeral_count == 3 and snapshot.persistent_count == len(expected_persistent)
    for path in ephemerals:
        assert nodes[path].ephemeral_owner == holder.client_id[0]
        assert nodes[path].acl is None  # never copied: ACL not read
    web = nodes[zk_path + '/services/web']
    assert web.num_children == 3 and web.ephemeral_owner == 0
    # data: exact bytes, empty, binary; hashes and lengths
    assert nodes[zk_path + '/conf/app'].data == b'{"a": 1}'
    assert nodes[zk_path + '/conf/empty'].data == b'' and nodes[zk_path + '/conf/empty'].data_length == 0
    binary = nodes[zk_path + '/conf/binary']
    assert binary.data == bytes(range(256)) * 4 and binary.data_hash == hash_data(binary.data) and binary.data_length == 1024
    assert nodes[zk_path + '/conf/emoji'].data == EMOJI_DATA
    for name in ODD_NAMES:
        assert nodes['%s/odd/%s' % (zk_path, name)].data == name.encode('utf-8')
    # the sequential parent's counter
    queue = nodes[zk_path + '/queue']
    assert queue.cversion == 3 and queue.num_children == 3
    # stats match what kazoo reports
    data, stat = standalone.get(zk_path + '/conf/app')
    app = nodes[zk_path + '/conf/app']
    assert (app.version, app.cversion, app.aversion, app.mzxid, app.mtime, app.data_length) == \
        (stat.version, stat.cversion, stat.aversion, stat.mzxid, stat.mtime, stat.dataLength)
    assert app.acl == ((31, 'world', 'anyone'),)
    assert snapshot.largest_data_path == zk_path + '/conf/binary' and snapshot.largest_data_length == 1024


def test_multiread_and_pipelined_walks_agree(zk_standalone, standalone, zk_path, zk_client_factory):
    holder = zk_client_factory(zk_standalone)
    _load_varied_tree(standalone, zk_path, holder)
    with_multi = take_snapshot(standalone, [zk_path], multi_read=True, batch=7, in_flight=3)
    pipelined = take_snapshot(standalone, [zk_path], multi_read=False, batch=5, in_flight=2)
    assert with_multi.multi_read and not pipelined.multi_read
    assert _node_view(with_multi, zk_path) == _node_view(pipelined, zk_path)


def test_ten_thousand_children_and_large_data(standalone, zk_path, zk_standalone):
    standalone.create(zk_path + '/wide', makepath=True)
    _create_many(standalone, [('%s/wide/c%05d' % (zk_path, index), b'v%d' % index) for index in range(10000)])
    near_limit = os.urandom(zk_standalone.jute_maxbuffer - 1024)
    standalone.create(zk_path + '/big1', near_limit)
    standalone.create(zk_path + '/big2', near_limit[::-1])
    snapshot = take_snapshot(standalone, [zk_path], with_acl=False)
    assert snapshot.nodes[zk_path + '/wide'].num_children == 10000
    assert sum(1 for path in snapshot.nodes if path.startswith(zk_path + '/wide/')) == 10000
    assert snapshot.nodes[zk_path + '/wide/c09999'].data == b'v9999'
    assert snapshot.nodes[zk_path + '/big1'].data == near_limit
    assert snapshot.nodes[zk_path + '/big2'].data == near_limit[::-1]
    assert snapshot.largest_data_length == len(near_limit)
    assert snapshot.largest_data_path in (zk_path + '/big1', zk_path + '/big2')
    assert all(node.acl is None for node in snapshot.nodes.values())
    hashes_only = take_snapshot(standalone, [zk_path + '/big1'], with_acl=False, keep_data=False)
    node = hashes_only.nodes[zk_path + '/big1']
    assert node.data is None and node.data_hash == hash_data(near_limit) and node.data_length == len(near_limit)


def test_excludes(standalone, zk_path):
    for path in ('/keep/a', '/keep/tmp/x', '/cache/deep/er', '/locks/l1', '/app1/locks/k', '/app2/locks/k', '/app2/data'):
        standalone.create(zk_path + path, b'', makepath=True)
    excludes = [zk_path + '/cache', zk_path + '/*/tmp', zk_path + '/app?/locks', zk_path + '/locks/']
    snapshot = take_snapshot(standalone, [zk_path], exclude=excludes)
    paths = set(path[len(zk_path):] for path in snapshot.nodes)
    assert paths == {'', '/keep', '/keep/a', '/app1', '/app2', '/app2/data'}
    assert snapshot.excluded_count == 5
    # A root under an excluded pattern yields nothing
    empty = take_snapshot(standalone, [zk_path + '/cache/deep'], exclude=[zk_path + '/cache'])
    assert len(empty) == 0


def test_control_root_and_system_tree_excluded(standalone, zk_path):
    standalone.create(zk_path + '/ctl/tasks/t1', b'spec', makepath=True)
    standalone.create(zk_path + '/data/x', b'1', makepath=True)
    snapshot = take_snapshot(standalone, [zk_path], control_root=zk_path + '/ctl')
    assert set(snapshot.nodes) == {zk_path, zk_path + '/data', zk_path + '/data/x'}


def test_whole_tree_walk_skips_system_and_control_trees(zk_cluster_factory, zk_client_factory):
    # A private server: a walk of '/' on the shared one would meet other tests' ACL'd nodes.
    cluster = zk_cluster_factory('snapshot-root')
    client = zk_client_factory(cluster)
    client.create('/app/data/x', b'1', makepath=True)
    client.create('/zookeeper-migration/tasks/t1', b'spec', makepath=True)
    whole = take_snapshot(client, ['/'], with_acl=False)
    assert set(whole.nodes) == {'/', '/app', '/app/data', '/app/data/x'}


def test_overlapping_roots_and_missing_root(standalone, zk_path):
    standalone.create(zk_path + '/a/b/c', b'', makepath=True)
    snapshot = take_snapshot(standalone, [zk_path + '/a/b', zk_path + '/a', zk_path + '/a/'])
    assert snapshot.roots == [zk_path + '/a/b', zk_path + '/a']
    assert set(snapshot.nodes) == {zk_path + '/a', zk_path + '/a/b', zk_path + '/a/b/c'}
    with pytest.raises(errors.NoNodeError) as info:
        take_snapshot(standalone, [zk_path + '/a', zk_path + '/missing'])
    assert info.value.path == zk_path + '/missing'


def test_acls_captured_and_interned(zk_auth, zk_path):
    app_acl = [make_digest_acl('app', 'app-password', all=True)]
    mixed_acl = [make_acl('world', 'anyone', read=True), make_digest_acl('ops', 'ops-password', read=True, write=True)]
    with _client.connected(zk_auth.client_spec()) as client:
        client.ensure_path(zk_path)  # (makepath would give the parents the ACL too)
        client.create(zk_path + '/secured', b'top', acl=app_acl)
        for index in range(5):
            client.create('%s/secured/s%d' % (zk_path, index), b'', acl=app_acl)
        client.create(zk_path + '/mixed', b'', acl=mixed_acl)
        client.set_acls(zk_path + '/mixed', mixed_acl)  # aversion 1
        snapshot = take_snapshot(client, [zk_path])
    secured = snapshot.nodes[zk_path + '/secured']
    assert secured.acl == ((31, 'digest', app_acl[0].id.id),)
    assert all(snapshot.nodes['%s/secured/s%d' % (zk_path, index)].acl is secured.acl for index in range(5))
    mixed = snapshot.nodes[zk_path + '/mixed']
    assert mixed.acl == ((1, 'world', 'anyone'), (3, 'digest', mixed_acl[1].id.id))
    assert mixed.aversion == 1
    assert snapshot.nodes[zk_path].acl == tuple((a.perms, a.id.scheme, a.id.id) for a in OPEN_ACL_UNSAFE)


def test_unreadable_node_is_an_auth_error(zk_auth, zk_path):
    with _client.connected(zk_auth.client_spec()) as client:
        client.ensure_path(zk_path)
        client.create(zk_path + '/locked', b'x', acl=[make_digest_acl('app', 'app-password', all=True)])
    anonymous = zk_auth.client_spec(auth=False)
    with _client.connected(anonymous) as client:
        with pytest.raises(errors.AuthFailedError) as info:
            take_snapshot(client, [zk_path], cluster='digest')
    assert info.value.path == zk_path + '/locked' and 'READ' in str(info.value)


def test_node_deleted_mid_walk_is_skipped(zk_standalone, standalone, zk_path, zk_client_factory):
    other = zk_client_factory(zk_standalone)
    for index in range(10):
        standalone.create('%s/leaf%d' % (zk_path, index), b'', makepath=True)
    standalone.create(zk_path + '/sub/deep', b'', makepath=True)
    calls = []

    def delete_during_walk(read, queued):
        # One request in flight at a time, so the walk goes: read the root;
        # list its 11 children; read them; list /sub's children.
        calls.append((read, queued))
        if len(calls) == 2:
            assert (read, queued) == (1, 11)
            other.delete(zk_path + '/leaf3')  # listed, not read yet
        elif len(calls) == 3:
            assert (read, queued) == (11, 1)
            other.delete(zk_path + '/sub', recursive=True)  # read, children not listed yet

    snapshot = take_snapshot(standalone, [zk_path], batch=50, in_flight=1, progress=delete_during_walk)
    assert zk_path + '/leaf3' not in snapshot.nodes
    assert zk_path + '/sub' not in snapshot.nodes and zk_path + '/sub/deep' not in snapshot.nodes
    assert snapshot.vanished_count == 2
    assert sorted(snapshot.nodes) == sorted([zk_path] + ['%s/leaf%d' % (zk_path, index) for index in range(10) if index != 3])


def test_chroot_paths_are_client_paths(zk_standalone, standalone, zk_path):
    standalone.create(zk_path + '/env/app/key', b'v', makepath=True)
    spec = dict(zk_standalone.client_spec(), chroot=zk_path + '/env')
    with _client.connected(spec) as client:
        for multi_read in (True, False):
            snapshot = take_snapshot(client, ['/'], multi_read=multi_read)
            assert set(snapshot.nodes) == {'/', '/app', '/app/key'}
            assert snapshot.nodes['/app/key'].data == b'v'


def test_ensemble_snapshot(zk_source, zk_path):
    with _client.connected(zk_source.client_spec()) as client:
        client.create(zk_path + '/p', makepath=True)
        _create_many(client, [('%s/p/n%04d' % (zk_path, index), b'd%d' % index) for index in range(2000)])
        client.sync(zk_path)
        snapshot = take_snapshot(client, [zk_path])
    assert snapshot.persistent_count == 2002 and snapshot.nodes[zk_path + '/p/n1999'].data == b'd1999'


def test_zookeeper_34_fallback(zk_34, zk_path, zk_client_factory):
    holder = zk_client_factory(zk_34)
    with _client.connected(zk_34.client_spec()) as client:
        _load_varied_tree(client, zk_path, holder)
        _create_many(client, [('%s/many%04d' % (zk_path, index), b'm') for index in range(1500)])
        snapshot = take_snapshot(client, [zk_path], batch=100, in_flight=4)
        assert snapshot.multi_read is False
        assert client.connected
        forced = take_snapshot(client, [zk_path], multi_read=False)
    assert snapshot.persistent_count == 1 + 5 + 4 + 2 + 1 + len(ODD_NAMES) + 1500
    assert snapshot.ephemeral_count == 3
    assert snapshot.nodes[zk_path + '/queue'].cversion == 3
    assert snapshot.nodes[zk_path + '/conf/binary'].data == bytes(range(256)) * 4
    assert snapshot.nodes[zk_path + '/conf/app'].acl == ((31, 'world', 'anyone'),)
    assert _node_view(snapshot, zk_path) == _node_view(forced, zk_path)


def test_acls_of_a_large_tree_are_read_over_extra_sessions_of_the_same_identity(zk_auth, zk_path, monkeypatch):
    # The extra sessions must authenticate as the caller: an anonymous session
    # would read every digest id masked as "app:x" (no ADMIN), not the real hash.
    app_acl = [make_digest_acl('app', 'app-password', all=True)]
    spec = zk_auth.client_spec(auth=False)
    spec['auth'] = {'scheme': 'digest', 'username': 'app', 'password': 'app-password'}
    opened = []

    def recording_extra_sessions(client, count):
        clients = real_extra_sessions(client, count)
        opened.extend(clients)
        return clients
    real_extra_sessions = _snapshot.extra_sessions
    monkeypatch.setattr(_snapshot, 'extra_sessions', recording_extra_sessions)
    count = _snapshot.ACL_SESSIONS_MIN_NODES + 100
    with _client.connected(zk_auth.client_spec()) as admin:
        # as the super user: other tests leave parents of zk_path that "app" may not create under
        admin.ensure_path(zk_path)
    with _client.connected(spec) as client:
        client.create(zk_path + '/t', b'', acl=app_acl)
        for start in range(0, count, 500):
            txn = client.transaction()
            for index in range(start, min(count, start + 500)):
                txn.create('%s/t/n%05d' % (zk_path, index), b'%d' % index, acl=app_acl)
            assert not [r for r in txn.commit() if isinstance(r, Exception)]
        shared = take_snapshot(client, [zk_path + '/t'])
        assert len(opened) == _snapshot.DEFAULT_ACL_SESSIONS
        assert not [extra for extra in opened if extra.connected]          # closed again
        del opened[:]
        alone = take_snapshot(client, [zk_path + '/t'], acl_sessions=0)
        assert opened == []
        small = take_snapshot(client, [zk_path + '/t/n00000'])
        assert opened == [] and small.nodes[zk_path + '/t/n00000'].acl == shared.nodes[zk_path + '/t/n00000'].acl
    expected = ((31, 'digest', app_acl[0].id.id),)
    assert len(shared.nodes) == count + 1
    assert set(node.acl for node in shared.nodes.values()) == {expected}
    assert _node_view(shared, zk_path) == _node_view(alone, zk_path)
