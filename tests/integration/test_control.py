# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control plane against real ZooKeeper servers: store CRUD and schema,
compare-and-set under concurrency, the root ACL, fencing, elections, daemons,
cutover records with chunked saved ACLs, and the chunked baseline."""

import json
import os
import threading
import time

import pytest
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, Id, Permissions

from ansible_collections.zookeeper.migration.plugins.module_utils import _control
from ansible_collections.zookeeper.migration.plugins.module_utils import _control_acl
from ansible_collections.zookeeper.migration.plugins.module_utils import _election
from ansible_collections.zookeeper.migration.plugins.module_utils import _fencing
from ansible_collections.zookeeper.migration.plugins.module_utils import _records
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    AuthFailedError,
    ConfigError,
    FencedError,
    NodeExistsError,
    NoNodeError,
    SchemaError,
)

pytestmark = pytest.mark.integration


def _wait_for(predicate, timeout=15.0, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def _cluster(name, port, chroot=None):
    record = {'name': name, 'hosts': ['127.0.0.1:%d' % port]}
    if chroot:
        record['chroot'] = chroot
    return record


def _task(name, paths, source='src', destination='dst', **extra):
    spec = {'name': name, 'source': source, 'destination': destination, 'paths': paths}
    spec.update(extra)
    return spec


@pytest.fixture
def client(zk_standalone, zk_client_factory):
    return zk_client_factory(zk_standalone)


def _open_store(client, root, **options):
    """A store on the unauthenticated standalone server, open on purpose: these tests are about records and
    concurrency, not ACLs (the ACL tests below use the digest-auth server and the defaults)."""
    return _control.ControlStore(client, root, allow_open_acl=True, **options)


@pytest.fixture
def store(client, zk_path):
    store = _open_store(client, root=zk_path + '/control')
    store.ensure_root()
    store.put_cluster(_cluster('src', 41001))
    store.put_cluster(_cluster('dst', 41002))
    return store


# -- registry and tasks --------------------------------------------------------

def test_ensure_root_creates_layout_and_is_idempotent(client, zk_path):
    store = _open_store(client, root=zk_path + '/control')
    first = store.ensure_root()
    assert first['changed'] is True
    assert sorted(client.get_children(store.root)) == ['clusters', 'daemons', 'fence', 'tasks']
    marker = json.loads(client.get(store.root)[0].decode('utf-8'))
    assert marker['schema_version'] == _records.SCHEMA_VERSION and marker['kind'] == _records.ROOT_KIND
    second = _open_store(client, root=zk_path + '/control').ensure_root()
    assert second['changed'] is False


def test_unauthenticated_store_is_refused_unless_open_is_allowed(client, zk_path):
    with pytest.raises(ConfigError, match='control session is not authenticated') as err:
        _control.ControlStore(client, root=zk_path + '/control')
    assert 'control.allow_open_acl: true' in str(err.value) and 'control.auth' in str(err.value)
    assert client.exists(zk_path + '/control') is None
    result = _open_store(client, root=zk_path + '/control').ensure_root()      # knowingly open
    assert result['open'] is True
    assert result['warnings'] and 'open' in result['warnings'][0] and 'allow_open_acl' in result['warnings'][0]
    # every znode it made is world ALL, the ancestors made on the way included
    for path in (zk_path, zk_path + '/control', zk_path + '/control/tasks'):
        assert [(a.perms, a.id.scheme) for a in client.get_acls(path)[0]] == [(Permissions.ALL, 'world')]
    assert any('world:anyone rwcda' in warning for warning in result['warnings'])


def test_ensure_root_refuses_a_foreign_znode(client, zk_path):
    client.create(zk_path + '/control', b'{"schema_version": 1, "kind": "something-else"}', makepath=True)
    with pytest.raises(SchemaError) as err:
        _open_store(client, root=zk_path + '/control').ensure_root()
    assert 'not a zookeeper.migration control root' in str(err.value)


def test_cluster_round_trip_and_idempotent_put(store):
    record = {'name': 'legacy', 'hosts': 'zk1.example:2181,zk2.example', 'chroot': '/apps/',
              'auth': {'scheme': 'digest', 'username': 'migrator', 'credential': 'legacy-digest'},
              'tls': {'enabled': True, 'ca_file': '/etc/zk/ca.pem', 'credential': 'legacy-tls'}}
    created = store.put_cluster(record)
    assert created.changed and created.before is None
    got = store.get_cluster('legacy')
    assert got == created.after
    assert got['hosts'] == ['zk1.example:2181', 'zk2.example:2181'] and got['chroot'] == '/apps'
    assert got['schema_version'] == 1 and got['session_timeout'] == 30.0
    assert 'password' not in json.dumps(got)
    again = store.put_cluster(record)
    assert again.changed is False
    changed = store.put_cluster(dict(record, hosts=['zk3.example:2181']))
    assert changed.changed and changed.before['hosts'] == ['zk1.example:2181', 'zk2.example:2181']
    assert changed.after['hosts'] == ['zk3.example:2181']
    assert sorted(store.list_clusters()) == ['dst', 'legacy', 'src']
    preview = store.put_cluster(dict(record, session_timeout=5), dry_run=True)
    assert preview.changed and store.get_cluster('legacy')['session_timeout'] == 30.0


def test_cluster_registration_refuses_secrets(store):
    with pytest.raises(ConfigError) as err:
        store.put_cluster({'name': 'x', 'hosts': ['h:1'], 'auth': {'scheme': 'digest', 'credential': 'c', 'password': 'hunter2'}})
    assert 'secret' in str(err.value) and 'hunter2' not in str(err.value)
    assert store.get_cluster('x') is None


def test_task_round_trip_update_and_delete(store):
    created = store.put_task(_task('orders', ['/orders', '/config/'], exclude=['/orders/tmp*'],
                                   node_types=[{'pattern': '/orders/locks', 'type': 'container'}]))
    assert created.changed
    spec = store.get_task('orders')
    assert spec['paths'] == ['/orders', '/config'] and spec['mode'] == 'one_way' and spec['sync_acl'] is True
    assert spec['conflict'] == 'source_wins' and spec['state'] == 'running'
    assert store.put_task(_task('orders', ['/orders', '/config'], exclude=['/orders/tmp*'],
                                node_types=[{'pattern': '/orders/locks', 'type': 'container'}])).changed is False
    updated = store.update_task('orders', lambda s: dict(s, state='paused'))
    assert updated.changed and updated.before['state'] == 'running' and updated.after['state'] == 'paused'
    assert store.get_task('orders')['state'] == 'paused'
    assert store.update_task('orders', lambda s: s).changed is False
    assert list(store.list_tasks()) == ['orders']
    # the election znode is created with the task, under the control ACL
    assert store.client.exists(store.election_path('orders')) is not None
    with pytest.raises(ConfigError) as err:
        store.delete_cluster('src')
    assert 'orders' in str(err.value)
    assert store.delete_task('orders').changed
    assert store.get_task('orders') is None and store.client.exists(store.task_path('orders')) is None
    assert store.delete_task('orders').changed is False
    assert store.delete_cluster('src').changed
    assert store.get_cluster('src') is None


def test_task_validation_against_the_registry(store, zk_path):
    store.put_task(_task('a', ['/app/one']))
    with pytest.raises(ConfigError, match='overlaps path'):
        store.put_task(_task('b', ['/app']))                   # ancestor of a's path, same clusters
    with pytest.raises(ConfigError, match='overlaps path'):
        store.put_task(_task('b', ['/app/one/deeper'], source='dst', destination='src'))
    store.put_cluster(_cluster('other1', 41003))
    store.put_cluster(_cluster('other2', 41004))
    assert store.put_task(_task('c', ['/app'], source='other1', destination='other2')).changed
    with pytest.raises(ConfigError, match='is not registered'):
        store.put_task(_task('d', ['/x'], destination='nowhere'))
    with pytest.raises(ConfigError, match='different clusters'):
        store.put_task(_task('d', ['/x'], destination='src'))
    # another name for the source ensemble, same chroot: refused
    store.put_cluster({'name': 'src-alias', 'hosts': ['localhost:41001', '127.0.0.1:41099']})
    with pytest.raises(ConfigError, match='same ensemble'):
        store.put_task(_task('d', ['/x'], destination='src-alias'))
    with pytest.raises(ConfigError, match='under /zookeeper'):
        store.put_task(_task('d', ['/zookeeper/quota']))
    with pytest.raises(ConfigError, match='control root'):
        store.put_task(_task('d', [store.root + '/tasks']))
    assert sorted(store.list_tasks()) == ['a', 'c']
    # an update that would create an overlap is refused too
    store.put_task(_task('e', ['/other']))
    with pytest.raises(ConfigError, match="overlaps path '/other' of task 'e'"):
        store.update_task('a', lambda s: dict(s, paths=['/app/one', '/other/x']))
    assert store.get_task('a')['paths'] == ['/app/one']


def test_delete_task_keeps_cutover_unless_forced(store):
    store.put_task(_task('t', ['/t']))
    store.put_cutover('t', {'state': 'completed', 'source_frozen': True, 'direction_after_cutover': 'destination_to_source'})
    with pytest.raises(ConfigError, match='cutover record'):
        store.delete_task('t')
    assert store.get_task('t') is not None
    assert store.delete_task('t', force=True).changed
    assert store.get_task('t') is None


# -- schema -------------------------------------------------------------------

@pytest.mark.parametrize('raw, expected', [
    (b'not json', 'not valid JSON'),
    (b'[1, 2]', 'must be a JSON object'),
    (b'{"name": "bad", "hosts": ["h:1"]}', 'has no schema_version'),
    (b'{"schema_version": 2, "name": "bad", "hosts": ["h:1"]}', 'newer than the 1'),
    (b'{"schema_version": 1, "name": "bad", "hosts": ["h:1"], "colour": "red"}', "unknown field 'colour'"),
    (b'{"schema_version": 1, "name": "bad", "hosts": "h:1", "session_timeout": "long"}', "'session_timeout' must be a number"),
    (b'', 'is empty'),
])
def test_malformed_records_raise_schema_error_naming_path(store, raw, expected):
    path = store.cluster_path('bad')
    store.client.create(path, raw)
    with pytest.raises(SchemaError) as err:
        store.get_cluster('bad')
    assert expected in str(err.value)
    assert path in str(err.value) and err.value.path == path
    with pytest.raises(SchemaError):
        store.list_clusters()


def test_newer_task_record_is_refused_not_overwritten(store):
    store.put_task(_task('t', ['/t']))
    path = store.task_path('t')
    record = json.loads(store.client.get(path)[0].decode('utf-8'))
    record['schema_version'] = 7
    store.client.set(path, json.dumps(record).encode('utf-8'))
    with pytest.raises(SchemaError, match='upgrade zookeeper.migration'):
        store.update_task('t', lambda s: dict(s, state='paused'))
    assert json.loads(store.client.get(path)[0].decode('utf-8'))['schema_version'] == 7


def test_invalid_status_write_is_refused(store):
    store.put_task(_task('t', ['/t']))
    with pytest.raises(SchemaError, match='phase'):
        store.update_status('t', lambda _s: {'phase': 'dancing', 'heartbeat': time.time()})
    assert store.get_status('t') is None


# -- compare-and-set ------------------------------------------------------------

def test_concurrent_task_updates_lose_nothing(store, zk_standalone, zk_client_factory):
    store.put_task(_task('t', ['/t'], max_write_rate=0))
    other = _open_store(zk_client_factory(zk_standalone), root=store.root)
    rounds = 25
    errors = []

    def bump(target):
        try:
            for _round in range(rounds):
                target.update_task('t', lambda s: dict(s, max_write_rate=s['max_write_rate'] + 1))
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)

    threads = [threading.Thread(target=bump, args=(s,)) for s in (store, other, store, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert store.get_task('t')['max_write_rate'] == 4 * rounds


def test_concurrent_status_updates_lose_nothing(store, zk_standalone, zk_client_factory):
    store.put_task(_task('t', ['/t']))
    store.put_status('t', {'phase': 'streaming', 'heartbeat': time.time()})
    other = _open_store(zk_client_factory(zk_standalone), root=store.root)

    def count(target, field):
        for _round in range(20):
            target.update_status('t', lambda s: dict(s, **{field: s[field] + 1, 'conflicts': s['conflicts'] + 1}))

    threads = [threading.Thread(target=count, args=(store, 'events_source_to_destination')),
               threading.Thread(target=count, args=(other, 'events_destination_to_source'))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    status = store.get_status('t')
    assert status['events_source_to_destination'] == 20 and status['events_destination_to_source'] == 20
    assert status['conflicts'] == 40


def test_concurrent_overlapping_task_creates_admit_only_one(store, zk_standalone, zk_client_factory):
    other = _open_store(zk_client_factory(zk_standalone), root=store.root)
    for attempt in range(5):
        barrier = threading.Barrier(2)
        outcomes = {}

        def create(target, name, path):
            barrier.wait()
            try:
                target.put_task(_task(name, [path]))
                outcomes[name] = 'created'
            except ConfigError:
                outcomes[name] = 'refused'

        names = ('x%d' % attempt, 'y%d' % attempt)
        threads = [threading.Thread(target=create, args=(store, names[0], '/shared%d' % attempt)),
                   threading.Thread(target=create, args=(other, names[1], '/shared%d/child' % attempt))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes.values()) == ['created', 'refused'], outcomes


def test_status_epoch_guard(store):
    store.put_task(_task('t', ['/t']))
    store.put_status('t', {'phase': 'initial_sync', 'heartbeat': time.time(), 'leader': 'd2'}, epoch=5)
    with pytest.raises(FencedError):
        store.put_status('t', {'phase': 'streaming', 'heartbeat': time.time(), 'leader': 'd1'}, epoch=4)
    assert store.get_status('t')['leader'] == 'd2'
    store.put_status('t', {'phase': 'streaming', 'heartbeat': time.time(), 'leader': 'd3'}, epoch=6)
    assert store.get_status('t')['epoch'] == 6
    with pytest.raises(NoNodeError):
        store.put_status('missing', {'phase': 'streaming', 'heartbeat': time.time()})


# -- ACL of the root --------------------------------------------------------------

def _auth_store(cluster, zk_client_factory, root, **options):
    return _control.ControlStore(zk_client_factory(cluster), root=root, **options)


def test_control_store_is_not_world_readable_by_default(zk_auth, zk_client_factory, zk_path):
    admin = _auth_store(zk_auth, zk_client_factory, zk_path + '/control')
    result = admin.ensure_root()
    assert result['open'] is False and not result['warnings']
    assert [entry['scheme'] for entry in result['acl']] == ['digest']             # the migration identity alone
    assert result['acl'][0]['id'].startswith(zk_auth.super_user + ':')
    # the ancestors made on the way get the control ACL too, not world ALL
    assert [a.id.scheme for a in admin.client.get_acls(zk_path)[0]] == ['digest']
    admin.put_cluster(_cluster('src', 41001))
    admin.put_cluster(_cluster('dst', 41002))
    admin.put_task(_task('t', ['/t']))
    admin.put_status('t', {'phase': 'streaming', 'heartbeat': time.time()})
    for path in admin.control_paths():
        assert _control_acl.world_access(admin.client.get_acls(path)[0]) == '', path
    # neither anonymous clients nor another digest identity may read anything
    anon_client = zk_client_factory(zk_auth, auth=False)
    other_client = zk_client_factory(zk_auth, auth=False, auth_data=[('digest', 'someone-else:their-password')])
    for client in (anon_client, other_client):
        for path in (admin.root, admin.cluster_path('src'), admin.task_path('t'), admin.status_path('t'), admin.root + '/clusters'):
            with pytest.raises(NoAuthError):
                client.get(path)
    other = _control.ControlStore(other_client, root=admin.root)
    with pytest.raises(AuthFailedError):
        other.get_cluster('src')
    with pytest.raises(AuthFailedError):
        other.put_cluster(_cluster('evil', 41009))


def test_world_read_is_an_explicit_option(zk_auth, zk_client_factory, zk_path):
    admin = _auth_store(zk_auth, zk_client_factory, zk_path + '/control', world_read=True)
    result = admin.ensure_root()
    assert result['open'] is False and not result['warnings']
    assert {'perms': Permissions.READ, 'scheme': 'world', 'id': 'anyone'} in result['acl']
    admin.put_cluster(_cluster('src', 41001))
    admin.put_cluster(_cluster('dst', 41002))
    admin.put_task(_task('t', ['/t']))
    # the same store without world_read refuses what is world-readable
    with pytest.raises(ConfigError, match='grant world:anyone more than nothing') as err:
        _auth_store(zk_auth, zk_client_factory, admin.root).ensure_root()
    assert admin.cluster_path('src') in str(err.value) and 'control.world_read: true' in str(err.value)

    anon_client = zk_client_factory(zk_auth, auth=False)
    anon = _control.ControlStore(anon_client, root=admin.root, world_read=True, allow_open_acl=True)
    assert anon.get_cluster('src') == admin.get_cluster('src')      # world-readable
    assert anon.ensure_root()['open'] is False                        # complete layout: read-only check
    with pytest.raises(AuthFailedError):
        anon.put_cluster(_cluster('evil', 41009))
    with pytest.raises(AuthFailedError):
        anon.put_cluster(_cluster('src', 41009))
    with pytest.raises(AuthFailedError):
        anon.update_task('t', lambda s: dict(s, state='stopped'))
    with pytest.raises(AuthFailedError):
        anon.delete_cluster('dst', force=True)
    with pytest.raises(AuthFailedError):
        anon.put_status('t', {'phase': 'error', 'heartbeat': time.time()})
    with pytest.raises(NoAuthError):
        anon_client.set(admin.root, b'{}')
    with pytest.raises(NoAuthError):
        anon_client.set(admin.election_path('t'), b'x')
    assert admin.get_task('t')['state'] == 'running'
    assert admin.get_cluster('src')['hosts'] == ['127.0.0.1:41001']
    # contenders' znodes carry the control ACL too
    election = admin.election('t', 'daemon-1')
    assert election.acquire(timeout=10)
    node = admin.election_path('t') + '/' + election._lock.node  # pylint: disable=protected-access
    with pytest.raises(NoAuthError):
        anon_client.set(node, b'daemon-evil')
    election.release()


@pytest.mark.parametrize('child', ['clusters', 'tasks', 'fence', 'daemons', 'clusters/prod', 'tasks/t', 'tasks/t/status'])
def test_world_open_control_child_is_refused(zk_auth, zk_client_factory, zk_path, child):
    admin = _auth_store(zk_auth, zk_client_factory, zk_path + '/control')
    admin.ensure_root()
    if child.startswith('tasks/'):
        admin.put_cluster(_cluster('src', 41001))
        admin.put_cluster(_cluster('dst', 41002))
        admin.put_task(_task('t', ['/t']))
    path = admin.root + '/' + child
    # someone made (or opened) a control znode before or behind the migration's back
    if admin.client.exists(path) is None:
        admin.client.create(path, b'', acl=[ACL(Permissions.ALL, Id('world', 'anyone'))])
    else:
        admin.client.set_acls(path, [ACL(Permissions.ALL, Id('world', 'anyone'))])
    for store, beyond in ((_auth_store(zk_auth, zk_client_factory, admin.root), 'rwcda'),
                          (_auth_store(zk_auth, zk_client_factory, admin.root, world_read=True), 'wcda')):
        with pytest.raises(ConfigError) as err:
            store.ensure_root()
        message = str(err.value)
        assert message.startswith('the control store under %s is open: 1 control znode(s)' % admin.root)
        assert '%s (world:anyone %s)' % (path, beyond) in message and 'control.allow_open_acl: true' in message
        with pytest.raises(ConfigError):
            store.check_acls()
    # knowingly open: accepted with a warning naming it
    warnings = _auth_store(zk_auth, zk_client_factory, admin.root, allow_open_acl=True).ensure_root()['warnings']
    assert any(path in warning for warning in warnings)


def test_auth_acl_refused_by_the_server_is_an_error_unless_open_is_allowed(zk_cluster_factory, zk_path):
    """A TLS session without a client certificate has no identity: the server refuses the "auth" control ACL."""
    from ansible_collections.zookeeper.migration.plugins.module_utils import _client

    cluster = zk_cluster_factory('tls-no-client-auth', tls=True, tls_client_auth='none')
    spec = {'name': 'control', 'hosts': cluster.host_list, 'tls': {'ca_file': cluster.ca_file}}
    with _client.connected(spec) as client:
        store = _control.ControlStore(client, root=zk_path + '/control')
        assert store.is_open is False
        with pytest.raises(AuthFailedError) as err:
            store.ensure_root()
        assert 'the server refused the control ACL' in str(err.value) and 'control.allow_open_acl: true' in str(err.value)
        assert client.exists(zk_path + '/control') is None
        opened = _control.ControlStore(client, root=zk_path + '/control', allow_open_acl=True)
        result = opened.ensure_root()
        assert result['open'] is True and opened.is_open
        assert [(a.perms, a.id.scheme) for a in client.get_acls(opened.root)[0]] == [(Permissions.ALL, 'world')]


def test_explicit_acl_option(zk_auth, zk_client_factory, zk_path):
    admin = _control.ControlStore(zk_client_factory(zk_auth), root=zk_path + '/control',
                                  acl=[{'scheme': 'auth', 'id': '', 'perms': 'all'}])
    result = admin.ensure_root()
    assert [entry['scheme'] for entry in result['acl']] == ['digest']       # no world READ
    anon_client = zk_client_factory(zk_auth, auth=False)
    with pytest.raises(NoAuthError):
        anon_client.get(admin.root)


def test_fence_znodes_get_the_migration_identity_acl(zk_auth, zk_client_factory, zk_path):
    migrator = zk_client_factory(zk_auth)
    root = zk_path + '/zookeeper-migration'
    epoch = _fencing.bump_fence(migrator, root, 'orders', leader='d1')
    journal_acl = _fencing.ensure_journal(migrator, root, 'orders')
    for path in (zk_path, root, root + '/fence', _fencing.fence_path(root, 'orders'), root + '/journal',
                 _fencing.journal_path(root, 'orders')):
        acl = migrator.get_acls(path)[0]
        assert [(a.perms, a.id.scheme) for a in acl] == [(Permissions.ALL, 'digest')], (path, acl)
    assert [a.id.scheme for a in journal_acl] == ['digest']
    anon_client = zk_client_factory(zk_auth, auth=False)
    with pytest.raises(NoAuthError):
        anon_client.get(_fencing.fence_path(root, 'orders'))
    # a fence left world-open (by an earlier version) is narrowed on its next bump
    migrator.set_acls(_fencing.fence_path(root, 'orders'), [ACL(Permissions.ALL, Id('world', 'anyone'))])
    assert _fencing.bump_fence(migrator, root, 'orders', leader='d2') > epoch
    assert [a.id.scheme for a in migrator.get_acls(_fencing.fence_path(root, 'orders'))[0]] == ['digest']


# -- fencing -------------------------------------------------------------------------

def test_stale_fence_epoch_fails_current_succeeds(zk_standalone, zk_client_factory, zk_path):
    old_leader = zk_client_factory(zk_standalone)
    new_leader = zk_client_factory(zk_standalone)
    root = zk_path + '/control'
    old_leader.ensure_path(zk_path + '/data')
    assert _fencing.read_fence(old_leader, root, 'orders') is None
    stale = _fencing.bump_fence(old_leader, root, 'orders', leader='d1')
    current = _fencing.bump_fence(new_leader, root, 'orders', leader='d2')
    assert current > stale and _fencing.read_fence(old_leader, root, 'orders') == current

    txn = old_leader.transaction()
    txn.create(zk_path + '/data/from-old-leader', b'stale')
    with pytest.raises(FencedError) as err:
        _fencing.commit_fenced(txn, root, 'orders', stale)
    assert err.value.path == _fencing.fence_path(root, 'orders')
    assert old_leader.exists(zk_path + '/data/from-old-leader') is None

    txn = new_leader.transaction()
    txn.create(zk_path + '/data/from-new-leader', b'fresh')
    txn.set_data(zk_path + '/data', b'touched')
    results = _fencing.commit_fenced(txn, root, 'orders', current)
    assert results[0] == zk_path + '/data/from-new-leader'
    assert new_leader.get(zk_path + '/data')[0] == b'touched'

    # fence_check + raise_if_fenced on a transaction built by the caller
    txn = old_leader.transaction()
    txn.delete(zk_path + '/data/from-new-leader')
    _fencing.fence_check(txn, root, 'orders', stale)
    with pytest.raises(FencedError):
        _fencing.raise_if_fenced(txn.commit(), root, 'orders', stale)
    assert new_leader.exists(zk_path + '/data/from-new-leader') is not None


def test_fence_check_with_a_chrooted_client(zk_standalone, zk_client_factory, zk_path):
    plain = zk_client_factory(zk_standalone)
    plain.ensure_path(zk_path + '/chroot')
    chrooted = zk_client_factory(zk_standalone, hosts=zk_standalone.hosts + zk_path + '/chroot')
    epoch = _fencing.bump_fence(chrooted, '/zookeeper-migration', 'task1')
    assert plain.exists(zk_path + '/chroot/zookeeper-migration/fence/task1') is not None
    txn = chrooted.transaction()
    txn.create('/written', b'')
    _fencing.commit_fenced(txn, '/zookeeper-migration', 'task1', epoch)
    assert plain.exists(zk_path + '/chroot/written') is not None
    _fencing.bump_fence(chrooted, '/zookeeper-migration', 'task1')
    txn = chrooted.transaction()
    txn.create('/stale', b'')
    with pytest.raises(FencedError):
        _fencing.commit_fenced(txn, '/zookeeper-migration', 'task1', epoch)


# -- elections and daemons --------------------------------------------------------------

def test_election_one_leader_and_takeover(store, zk_standalone, zk_client_factory):
    store.put_task(_task('t', ['/t']))
    first_client = zk_client_factory(zk_standalone, timeout=4.0)
    second_client = zk_client_factory(zk_standalone, timeout=4.0)
    first = _election.TaskElection(first_client, store.root, 't', 'daemon-a', acl=store.acl)
    second = _election.TaskElection(second_client, store.root, 't', 'daemon-b', acl=store.acl)
    assert _election.current_leader(store.client, store.root, 't') is None
    assert first.acquire(timeout=10)
    assert first.is_leader and first.sequence is not None
    assert second.acquire(timeout=0.5) is False            # one leader at a time

    won = threading.Event()
    waiter = threading.Thread(target=lambda: second.acquire() and won.set())
    waiter.start()
    assert _wait_for(lambda: _election.contenders(store.client, store.root, 't') == ['daemon-a', 'daemon-b'])
    assert store.current_leader('t') == 'daemon-a'
    assert not won.is_set()

    first_client.stop()                                      # the leader's session closes
    assert won.wait(15), 'the standby did not take over'
    waiter.join(5)
    assert first.leadership_lost.is_set() and not first.is_leader
    assert second.is_leader and second.sequence > first.sequence
    assert first.release() is False                          # nothing left to release, no connection needed
    assert first.sequence is None
    assert store.current_leader('t') == 'daemon-b'
    second.release()
    assert _wait_for(lambda: store.current_leader('t') is None)


def test_election_run_and_cancel(store, zk_standalone, zk_client_factory):
    store.put_task(_task('t', ['/t']))
    holder = _election.TaskElection(zk_client_factory(zk_standalone), store.root, 't', 'holder', allow_open_acl=True)
    assert holder.acquire(timeout=10)
    waiting = _election.TaskElection(zk_client_factory(zk_standalone), store.root, 't', 'waiting', allow_open_acl=True)
    results = []
    runner = threading.Thread(target=lambda: results.append(waiting.run(lambda: 'ran')))
    runner.start()
    assert _wait_for(lambda: len(_election.contenders(store.client, store.root, 't')) == 2)
    waiting.cancel()
    runner.join(10)
    assert results == [None]
    holder.release()
    assert waiting.run(lambda: 'ran') == 'ran'
    assert store.current_leader('t') is None


def test_election_for_a_missing_task(store, client):
    with pytest.raises(NoNodeError, match='does not exist'):
        _election.TaskElection(client, store.root, 'ghost', 'd1', allow_open_acl=True).acquire(timeout=2)
    assert client.exists(store.task_path('ghost')) is None


def test_daemon_registration_is_ephemeral(store, zk_standalone, zk_client_factory):
    daemon_client = zk_client_factory(zk_standalone)
    path = _control.register_daemon(daemon_client, store.root, 'daemon-1', {'version': '0.1.0', 'metrics_address': '127.0.0.1:9100'},
                                    allow_open_acl=True)
    daemons = store.list_daemons()
    assert list(daemons) == ['daemon-1']
    assert daemons['daemon-1']['metrics_address'] == '127.0.0.1:9100' and daemons['daemon-1']['pid'] == os.getpid()
    assert daemon_client.exists(path).ephemeralOwner == daemon_client.client_id[0]
    # same session: an update
    _control.register_daemon(daemon_client, store.root, 'daemon-1', {'version': '0.1.0', 'tasks': ['t']}, allow_open_acl=True)
    assert store.list_daemons()['daemon-1']['tasks'] == ['t']
    # another live session with the same id: refused unless replace
    impostor = zk_client_factory(zk_standalone)
    with pytest.raises(NodeExistsError, match='already registered'):
        _control.register_daemon(impostor, store.root, 'daemon-1', {}, allow_open_acl=True)
    daemon_client.stop()
    assert _wait_for(lambda: store.list_daemons() == {})
    store.register_daemon('daemon-2', {'hostname': 'h2'})
    assert store.unregister_daemon('daemon-2') is True
    assert store.list_daemons() == {}


# -- cutover record, saved ACLs, baseline -------------------------------------------------

def test_cutover_record_and_saved_acls_for_thousands_of_paths(store):
    store.put_task(_task('t', ['/app']))
    with pytest.raises(NoNodeError):
        store.save_source_acls('t', [('/app', [(31, 'world', 'anyone')])])
    store.put_cutover('t', {'state': 'started', 'started_at': time.time()})
    count = 6000
    original = {}
    for index in range(count):
        acl = [ACL(Permissions.ALL, Id('digest', 'app-%04d:%s' % (index % 50, 'x' * 28))), ACL(Permissions.READ, Id('world', 'anyone'))]
        original['/app/service-%05d/config' % index] = acl
    chunks = store.save_source_acls('t', sorted(original.items()))
    assert chunks >= 2                                   # over one znode's worth: split
    # a retried freeze saves the now-frozen ACL again: the first-saved one wins
    assert store.save_source_acls('t', [('/app/service-00000/config', [(1, 'world', 'anyone')])]) == 1
    loaded = store.load_saved_acls('t')
    assert len(loaded) == count
    expected = tuple((entry.perms, entry.id.scheme, entry.id.id) for entry in original['/app/service-00000/config'])
    assert loaded['/app/service-00000/config'] == expected
    updated = store.update_cutover('t', lambda rec: dict(rec, state='frozen', source_frozen=True))
    assert updated.changed and store.get_cutover('t')['source_frozen'] is True
    assert store.describe_task('t')['saved_acl_chunks'] == chunks + 1
    assert store.clear_saved_acls('t') == chunks + 1
    assert store.load_saved_acls('t') == {}
    assert store.get_cutover('t')['state'] == 'frozen'
    assert store.delete_cutover('t').changed and store.get_cutover('t') is None


def test_small_chunk_limit_splits_saved_acls(store):
    small = _open_store(store.client, root=store.root, max_node_bytes=4096)
    small.put_task(_task('t', ['/app']))
    small.put_cutover('t', {'state': 'started'})
    entries = [('/app/n%04d' % i, [(31, 'world', 'anyone')]) for i in range(1000)]
    chunks = small.save_source_acls('t', entries)
    assert chunks > 5
    for child in small.client.get_children(small.cutover_path('t')):
        assert len(small.client.get(small.cutover_path('t') + '/' + child)[0]) <= 4096
    assert len(small.load_saved_acls('t')) == 1000


def test_baseline_round_trip_chunked_and_fenced(store):
    small = _open_store(store.client, root=store.root, max_node_bytes=64 * 1024)
    small.put_task(_task('t', ['/app']))
    assert small.get_baseline('t') is None
    data = os.urandom(300 * 1024)                       # incompressible: 5 chunks
    assert small.put_baseline('t', data, epoch=3) == 1
    assert small.get_baseline('t') == data
    data2 = b'baseline ' * 100000
    assert small.put_baseline('t', data2, epoch=3) == 2
    assert small.get_baseline('t') == data2
    children = small.client.get_children(small.baseline_path('t'))
    assert children and all(child.startswith('g0000000002-') for child in children)   # old generation gone
    with pytest.raises(FencedError):
        small.put_baseline('t', b'stale', epoch=2)
    assert small.get_baseline('t') == data2
    empty = _open_store(store.client, root=store.root)
    empty.put_baseline('t', b'', epoch=4, compress=False)
    assert empty.get_baseline('t') == b''


def test_describe_task(store):
    store.put_task(_task('t', ['/app']))
    store.put_status('t', {'phase': 'streaming', 'heartbeat': time.time(), 'nodes_done': 10, 'nodes_total': 10, 'leader': 'd1'})
    report = store.describe_task('t')
    assert report['spec']['name'] == 't' and report['status']['nodes_done'] == 10
    assert report['leader'] is None and report['contenders'] == [] and report['cutover'] is None
    assert store.describe_task('ghost') is None


def test_dry_run_cluster_put_writes_nothing_not_even_the_root(client, zk_path):
    store = _open_store(client, root=zk_path + '/ctl')
    result = store.put_cluster(_cluster('src', 2181), dry_run=True)
    assert result.changed
    assert client.exists(zk_path + '/ctl') is None


def _tree_state(client, path):
    """Every znode under ``path`` with the stat fields any write changes: (path, mzxid, pzxid, version, cversion, aversion)."""
    state = []
    pending = [path]
    while pending:
        current = pending.pop()
        stat = client.exists(current)
        if stat is None:
            continue
        state.append((current, stat.mzxid, stat.pzxid, stat.version, stat.cversion, stat.aversion))
        pending.extend(current.rstrip('/') + '/' + child for child in client.get_children(current))
    return sorted(state)


def _lineage_state(client, path):
    """For ``/`` and each ancestor of ``path`` (and ``path``): whether it exists and, if so, its child version.

    A create anywhere on the way to ``path`` either makes a missing znode
    exist or bumps the child version (``cversion``, ``pzxid``) of an
    existing one. Other tests' znodes live elsewhere, so this stays exact on
    a shared server where a whole-tree walk would not.
    """
    state = []
    parts = path.strip('/').split('/')
    for depth in range(len(parts) + 1):
        current = '/' + '/'.join(parts[:depth])
        stat = client.exists(current)
        state.append((current, None if stat is None else (stat.cversion, stat.pzxid)))
    return state


def test_dry_run_task_put_on_a_fresh_root_creates_no_znode(client, zk_path):
    root = zk_path + '/nested/ctl'
    store = _open_store(client, root=root)
    before = _lineage_state(client, root)
    # the clusters are not registered (nothing is, the root does not exist): the placement check refuses,
    # having read an empty registry, and nothing was created on the way there
    with pytest.raises(ConfigError, match='is not registered'):
        store.put_task(_task('orders', ['/orders']), dry_run=True)
    with pytest.raises(NoNodeError):
        store.update_task('orders', lambda spec: dict(spec, state='paused'), dry_run=True)
    assert client.exists(root) is None and client.exists(zk_path) is None
    assert _lineage_state(client, root) == before


def test_dry_run_task_put_on_a_root_without_tasks_writes_nothing(client, zk_path):
    # a control root holding registrations but no tasks directory (made by an older or partial run):
    # a real write would add it, a dry run only reports the task it would create
    root = zk_path + '/ctl'
    writer = _open_store(client, root=root)
    writer.ensure_root()
    writer.put_cluster(_cluster('src', 41001))
    writer.put_cluster(_cluster('dst', 41002))
    client.delete(root + '/tasks', recursive=True)
    store = _open_store(client, root=root)
    before = _lineage_state(client, root) + _tree_state(client, root)
    preview = store.put_task(_task('orders', ['/orders']), dry_run=True)
    assert preview.changed and preview.before is None and preview.after['paths'] == ['/orders']
    assert client.exists(root + '/tasks') is None
    assert _lineage_state(client, root) + _tree_state(client, root) == before
    # the real write then creates what is missing
    written = _open_store(client, root=root).put_task(_task('orders', ['/orders']))
    assert written.changed and client.exists(root + '/tasks/orders') is not None
