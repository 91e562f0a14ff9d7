# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""copy() between real ZooKeeper clusters: node kinds, data, names, ACLs, counters, TLS, auth, 3.4."""

import socket
import time

import pytest
from kazoo.security import make_digest_acl, make_digest_acl_credential

from ansible_collections.zookeeper.migration.plugins.module_utils._apply import copy, request_bytes, Op
from ansible_collections.zookeeper.migration.plugins.module_utils._client import connect
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import SEQ_BUMP_PREFIX, diff_snapshots, sequential_counter
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import TooLargeError, UnsupportedByServerError
from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import take_snapshot
from tests.harness.zkharness import load_sample_tree

pytestmark = pytest.mark.integration


@pytest.fixture
def engine_client():
    """Clients made the way the engine makes them (``_client.connect``), closed after the test."""
    made = []

    def make(cluster, **spec_overrides):
        spec = cluster.client_spec()
        spec.update(spec_overrides)
        client = connect(spec)
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()
        client.close()


def load(client, creates, batch=400):
    """Create (path, data[, acl]) items in multis (parents listed before children; the first one's parent is made)."""
    if creates:
        client.ensure_path(creates[0][0].rsplit('/', 1)[0] or '/')
    for start in range(0, len(creates), batch):
        txn = client.transaction()
        for item in creates[start:start + batch]:
            txn.create(item[0], item[1], acl=item[2] if len(item) > 2 else None)
        results = txn.commit()
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, errors[:3]


def assert_in_sync(source_client, dest_client, source_path, dest_path=None, with_acl=True):
    dest_path = dest_path or source_path
    source = take_snapshot(source_client, [source_path], with_acl=with_acl)
    destination = take_snapshot(dest_client, [dest_path], with_acl=with_acl)
    compare = ('data', 'acl', 'type', 'counters') if with_acl else ('data', 'type', 'counters')
    diff = diff_snapshots(source, destination, compare=compare, path_map={source_path: dest_path})
    assert diff.in_sync, diff.to_dict(max_paths=10)
    return source, destination, diff


APP_AUTH = {'scheme': 'digest', 'username': 'app', 'password': 'app-password'}


def test_copy_persistent_sequential_and_ephemeral_nodes(zk_source, zk_dest, zk_path, engine_client, zk_client_factory):
    # The sample tree holds a node only the 'app' digest identity may read: the migrator authenticates as it.
    src = engine_client(zk_source, auth=APP_AUTH)
    dst = engine_client(zk_dest, auth=APP_AUTH)
    holder = zk_client_factory(zk_source)
    summary = load_sample_tree(src, base=zk_path, ephemeral_holder=holder)
    assert summary['ephemeral'] > 0

    result = copy(src, dst, [zk_path])
    assert result.changed
    assert result.applied.ok
    assert result.diff.ephemeral_skipped['source'] == summary['ephemeral']
    assert result.applied.applied['create'] == summary['persistent']
    source, destination, diff = assert_in_sync(src, dst, zk_path)
    assert len(destination.nodes) == summary['persistent']
    assert not list(destination.ephemerals())
    # Sequential names copied exactly.
    queue = zk_path + '/service-0/queue'
    assert sorted(dst.get_children(queue)) == sorted(src.get_children(queue))
    assert all(name.startswith('item-') and len(name) == len('item-') + 10 for name in dst.get_children(queue))
    # Ephemeral registrations stay on the source only; their parents are copied.
    assert dst.get_children(zk_path + '/service-0/instances') == []

    again = copy(src, dst, [zk_path])
    assert not again.changed
    assert again.diff.in_sync
    assert again.plan.empty


def test_sequential_counter_after_copy(zk_source, zk_dest, zk_path, engine_client):
    src = engine_client(zk_source)
    dst = engine_client(zk_dest)
    queue = zk_path + '/queue'
    src.create(queue, makepath=True)
    names = [src.create(queue + '/job-', b'%d' % i, sequence=True) for i in range(30)]
    for path in names[:12] + names[20:25]:          # deletes leave gaps and raise the counter
        src.delete(path)
    # Ephemeral sequential children count in the counter too.
    ephemeral = src.create(queue + '/lock-', ephemeral=True, sequence=True)
    source_counter = sequential_counter(take_snapshot(src, [queue]).nodes[queue])
    assert source_counter == 31

    result = copy(src, dst, [zk_path])
    assert result.plan.counts['raise_cversion'] == 1
    stat = dst.exists(queue)
    assert (stat.cversion + stat.numChildren) // 2 >= source_counter
    copied = list(dst.get_children(queue))
    assert len(copied) == 13 and ephemeral.rsplit('/', 1)[1] not in copied
    new = dst.create(queue + '/job-', b'new', sequence=True)
    suffix = int(new[-10:])
    assert suffix >= source_counter
    assert all(suffix > int(name[-10:]) for name in copied)
    assert not [name for name in dst.get_children(queue) if name.startswith(SEQ_BUMP_PREFIX)]
    # The copy itself is now in sync again (counter included) once the extra job is gone.
    dst.delete(new)
    src.delete(ephemeral)
    assert copy(src, dst, [zk_path]).diff.counter_behind == []


def test_binary_empty_and_near_limit_data(zk_source, zk_dest, zk_path, engine_client):
    src = engine_client(zk_source)
    dst = engine_client(zk_dest)
    near_path = zk_path + '/near-limit'
    # The largest data a create of this path can carry inside a multi within the default jute.maxbuffer.
    near_size = 0xfffff - request_bytes([Op('create', near_path, data=b'').size])
    assert near_size > 1048000
    binary = bytes(range(256)) * 4
    load(src, [(zk_path, b''), (zk_path + '/binary', binary), (zk_path + '/empty', b''),
               (zk_path + '/zeros', b'\x00' * 1000), (zk_path + '/utf8', 'h\u00e9llo w\u00f6rld'.encode('utf-8'))])
    src.create(near_path, b'\xab' * near_size)

    result = copy(src, dst, [zk_path])
    assert result.applied.ok
    assert dst.get(zk_path + '/binary')[0] == binary
    assert dst.get(zk_path + '/empty')[0] == b''
    assert dst.get(zk_path + '/zeros')[0] == b'\x00' * 1000
    data, stat = dst.get(near_path)
    assert stat.dataLength == near_size and data == b'\xab' * near_size
    assert_in_sync(src, dst, zk_path)


def test_node_over_the_destination_limit_is_refused_before_writing(zk_source, zk_path, engine_client, zk_cluster_factory):
    small = zk_cluster_factory('small-buffer', jute_maxbuffer=200000)
    src = engine_client(zk_source)
    dst = engine_client(small)
    load(src, [(zk_path, b'root'), (zk_path + '/a', b'fine'), (zk_path + '/a/b', b'fine too')])
    src.create(zk_path + '/a/big', b'x' * 300000)
    with pytest.raises(TooLargeError) as caught:
        copy(src, dst, [zk_path], max_request_bytes=200000)
    assert caught.value.path == zk_path + '/a/big'
    assert '300000' in str(caught.value) and 'nothing was written' in str(caught.value)
    assert dst.exists(zk_path) is None
    # Excluding it, the rest copies.
    result = copy(src, dst, [zk_path], exclude=[zk_path + '/a/big'], max_request_bytes=200000)
    assert result.applied.applied['create'] == 3


def test_unicode_and_odd_names(zk_source, zk_dest, zk_path, engine_client):
    src = engine_client(zk_source)
    dst = engine_client(zk_dest)
    names = ['\u65e5\u672c\u8a9e', 'gr\u00fc\u00dfe', 'with space', 'a:b', 'x=y&z', 'dots.in.name', '#hash', '%41',
             'caf\u00e9-0000000007', '-', '...x', 'UPPER_lower']
    creates = [(zk_path, b'')]
    for name in names:
        creates.append((zk_path + '/' + name, name.encode('utf-8')))
        creates.append((zk_path + '/' + name + '/child \u00e9', b'c'))
    load(src, creates)
    result = copy(src, dst, [zk_path])
    assert result.applied.applied['create'] == len(creates)
    assert sorted(dst.get_children(zk_path)) == sorted(names)
    for name in names:
        assert dst.get(zk_path + '/' + name)[0] == name.encode('utf-8')
    assert_in_sync(src, dst, zk_path)


def test_node_with_ten_thousand_children(zk_source, zk_dest, zk_path, engine_client):
    src = engine_client(zk_source)
    dst = engine_client(zk_dest)
    wide = zk_path + '/wide'
    load(src, [(zk_path, b''), (wide, b'')] + [('%s/child-%05d' % (wide, i), b'%d' % i) for i in range(10000)], batch=1000)
    result = copy(src, dst, [zk_path])
    assert result.applied.applied['create'] == 10002
    assert dst.exists(wide).numChildren == 10000
    assert len(dst.get_children(wide)) == 10000
    assert_in_sync(src, dst, zk_path)


def test_digest_acl_subtree_copied_with_its_acls(zk_auth, zk_path, engine_client, zk_client_factory):
    # One cluster with digest auth plays both sides: /src is copied to /dst.
    client = engine_client(zk_auth)           # the superDigest identity reads everything
    app_acl = [make_digest_acl('app', 'app-password', all=True)]
    reader_acl = [make_digest_acl('app', 'app-password', all=True), make_digest_acl('ops', 'ops-password', read=True)]
    source_root, dest_root = zk_path + '/src', zk_path + '/dst'
    client.ensure_path(zk_path)
    load(client, [
        (source_root, b'root'),
        (source_root + '/open', b'anyone'),
        (source_root + '/secret', b'app only', app_acl),          # no CREATE for the migrator: children need the deferred ACL
        (source_root + '/secret/child', b'c1', app_acl),
        (source_root + '/secret/child/leaf', b'c2', reader_acl),
        (source_root + '/shared', b'two entries', reader_acl),
    ])
    result = copy(client, client, [(source_root, dest_root)])
    assert result.applied.ok
    assert result.applied.applied['set_acl'] >= 2          # deferred ACLs of /secret and /secret/child
    for suffix, acl in (('/secret', app_acl), ('/secret/child', app_acl), ('/secret/child/leaf', reader_acl), ('/shared', reader_acl)):
        got, _stat = client.get_acls(dest_root + suffix)
        assert set((a.perms, a.id.scheme, a.id.id) for a in got) == set((a.perms, a.id.scheme, a.id.id) for a in acl)
    assert_in_sync(client, client, source_root, dest_root)
    # The application identity reads its copied data; an anonymous client cannot.
    app = zk_client_factory(zk_auth, auth=False, auth_data=[('digest', 'app:app-password')])
    assert app.get(dest_root + '/secret/child/leaf')[0] == b'c2'
    anonymous = zk_client_factory(zk_auth, auth=False)
    from kazoo.exceptions import NoAuthError
    with pytest.raises(NoAuthError):
        anonymous.get(dest_root + '/secret')
    assert make_digest_acl_credential('app', 'app-password') == app_acl[0].id.id


def test_copy_over_tls(zk_tls, zk_path, engine_client):
    client = engine_client(zk_tls)
    load(client, [(zk_path, b''), (zk_path + '/src', b'tls data')] + [(zk_path + '/src/n%d' % i, b'%d' % i) for i in range(50)])
    result = copy(client, client, [(zk_path + '/src', zk_path + '/dst')])
    assert result.applied.applied['create'] == 51
    assert_in_sync(client, client, zk_path + '/src', zk_path + '/dst')


def test_copy_into_zookeeper_34(zk_source, zk_34, zk_path, engine_client):
    src = engine_client(zk_source, auth=APP_AUTH)
    dst = engine_client(zk_34, auth=APP_AUTH)
    summary = load_sample_tree(src, base=zk_path)
    queue = zk_path + '/service-1/queue'
    for child in sorted(src.get_children(queue))[:5]:
        src.delete(queue + '/' + child)
    result = copy(src, dst, [zk_path])
    assert result.applied.ok
    assert result.applied.applied['create'] == summary['persistent'] - 5
    assert_in_sync(src, dst, zk_path)
    # 3.4 names sequential children from the same counter: no collision with copied names.
    new = dst.create(queue + '/item-', b'x', sequence=True)
    assert int(new[-10:]) >= sequential_counter(take_snapshot(src, [queue]).nodes[queue])


def _wait_gone(client, path, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if client.exists(path) is None:
            return True
        time.sleep(0.2)
    return False


def test_declared_container_and_ttl_paths(zk_ext, zk_path, engine_client):
    client = engine_client(zk_ext)
    client.ensure_path(zk_path)
    load(client, [(zk_path + '/src', b''), (zk_path + '/src/locks', b'container on the destination'),
                  (zk_path + '/src/locks/l1', b''), (zk_path + '/src/cache', b''), (zk_path + '/src/cache/entry', b'short-lived'),
                  (zk_path + '/src/plain', b'')])
    rules = [{'pattern': zk_path + '/dst/locks', 'type': 'container'},
             {'pattern': zk_path + '/dst/cache/*', 'type': 'ttl', 'ttl_ms': 500}]
    result = copy(client, client, [(zk_path + '/src', zk_path + '/dst')], node_types=rules)
    kinds = dict((op.path, op.node_kind) for op in result.plan.creates)
    assert kinds[zk_path + '/dst/locks'] == 'container'
    assert kinds[zk_path + '/dst/cache/entry'] == 'ttl'
    assert client.get(zk_path + '/dst/locks')[0] == b'container on the destination'
    # Clients cannot see node types; the server's own clean-up shows them.
    client.delete(zk_path + '/dst/locks/l1')
    assert _wait_gone(client, zk_path + '/dst/locks'), 'an emptied container is removed by the server'
    assert _wait_gone(client, zk_path + '/dst/cache/entry'), 'an expired TTL node is removed by the server'
    assert client.exists(zk_path + '/dst/plain') is not None
    assert client.exists(zk_path + '/dst/cache') is not None


def test_ttl_refused_clearly_without_extended_types(zk_standalone, zk_path, engine_client):
    client = engine_client(zk_standalone)
    client.ensure_path(zk_path)
    load(client, [(zk_path + '/src', b''), (zk_path + '/src/entry', b'')])
    with pytest.raises(UnsupportedByServerError) as caught:
        copy(client, client, [(zk_path + '/src', zk_path + '/dst')], node_types=[{'pattern': '*/entry', 'type': 'ttl', 'ttl_ms': 1000}])
    assert caught.value.path == zk_path + '/dst/entry'
    assert 'extendedTypesEnabled' in str(caught.value)
    assert client.exists(zk_path + '/dst/entry') is None


def test_dry_run_writes_nothing_and_prune_removes_extras(zk_source, zk_dest, zk_path, engine_client, zk_client_factory):
    src = engine_client(zk_source)
    dst = engine_client(zk_dest)
    load(src, [(zk_path, b''), (zk_path + '/keep', b'1'), (zk_path + '/changed', b'new')])
    load(dst, [(zk_path, b''), (zk_path + '/changed', b'old'), (zk_path + '/extra', b''), (zk_path + '/extra/deep', b''),
               (zk_path + '/svc', b'')])
    holder = zk_client_factory(zk_dest)
    holder.create(zk_path + '/svc/member', b'', ephemeral=True)

    dry = copy(src, dst, [zk_path], dry_run=True)
    assert dry.changed and dry.applied is None
    assert dry.plan.counts['create'] == 1 and dry.plan.counts['set_data'] == 1 and dry.plan.counts['delete'] == 0
    assert dst.exists(zk_path + '/keep') is None and dst.get(zk_path + '/changed')[0] == b'old'

    result = copy(src, dst, [zk_path])
    assert dst.get(zk_path + '/changed')[0] == b'new'
    assert dst.exists(zk_path + '/extra/deep') is not None        # no prune: extras reported, kept
    assert sorted(result.diff.extra) == sorted([zk_path + '/extra', zk_path + '/extra/deep', zk_path + '/svc'])

    pruned = copy(src, dst, [zk_path], prune=True)
    assert pruned.applied.applied['delete'] == 2
    assert dst.exists(zk_path + '/extra') is None
    assert dst.exists(zk_path + '/svc/member') is not None        # never an ephemeral, nor its parent
    assert [s['path'] for s in pruned.plan.skipped] == [zk_path + '/svc']


def test_copy_recovers_from_a_dropped_connection(zk_standalone, zk_path, engine_client):
    client = engine_client(zk_standalone)
    writer = engine_client(zk_standalone)
    load(client, [(zk_path + '/src', b'')] + [(zk_path + '/src/n%04d' % i, b'%d' % i) for i in range(3000)])
    dropped = []

    def drop_connection_once(done, _total):
        # Mid-apply, the destination connection breaks: the multis in flight have an unknown outcome.
        if not dropped and done >= 600:
            dropped.append(done)
            writer._connection._socket.shutdown(socket.SHUT_RDWR)  # pylint: disable=protected-access

    result = copy(client, writer, [(zk_path + '/src', zk_path + '/dst')], progress=drop_connection_once, max_batch_ops=100)
    assert dropped
    assert result.attempts == 2
    assert result.applied.recovered and result.applied.recovered[0]['kind'] == 'unreachable'
    assert result.applied.failures == [] and result.applied.not_applied == []
    assert_in_sync(client, client, zk_path + '/src', zk_path + '/dst')
