# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the control plane's pure parts: record validation, task
placement rules, the credentials model (file checks, redaction) and the
fence check's placement in a transaction."""

import json
import logging
import os

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.serialization import CheckVersion, Create

from ansible_collections.zookeeper.migration.plugins.module_utils import _control as control
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError, SchemaError

SECRET = 'S3cr3t-Value-do-not-leak'
KEY_SECRET = 'Key-Passphrase-do-not-leak'


def _spec(**extra):
    spec = {'name': 'orders', 'source': 'old', 'destination': 'new', 'paths': ['/orders']}
    spec.update(extra)
    return spec


def _cluster(name, hosts, chroot=None):
    return control.normalize_cluster({'name': name, 'hosts': hosts, 'chroot': chroot})


# -- task spec ------------------------------------------------------------------

def test_task_spec_defaults():
    spec = control.normalize_task_spec(_spec())
    assert spec == dict(control.task_defaults(), schema_version=1, name='orders', source='old', destination='new', paths=['/orders'])
    assert spec['mode'] == 'one_way' and spec['initial'] == 'source_wins' and spec['sync_acl'] is True
    assert spec['conflict'] == 'source_wins' and spec['max_write_rate'] == 0 and spec['direction_after_cutover'] == 'none'


def test_task_spec_full():
    spec = control.normalize_task_spec(_spec(
        mode='bidirectional', paths=['/a/', '/b'], exclude=['/a/tmp*'], initial='union', prune=True, sync_acl=False,
        acl_mode='grant_migrator', conflict='newest', max_write_rate=500, state='paused', direction_after_cutover='destination_to_source',
        node_types=[{'pattern': '/a/locks', 'type': 'container'}, {'pattern': '/a/cache/*', 'type': 'ttl', 'ttl_ms': 60000}]))
    assert spec['paths'] == ['/a', '/b']
    assert spec['node_types'] == [{'pattern': '/a/locks', 'type': 'container', 'ttl_ms': None},
                                  {'pattern': '/a/cache/*', 'type': 'ttl', 'ttl_ms': 60000}]


@pytest.mark.parametrize('change, field_text', [
    ({'mode': 'sideways'}, "field 'mode' must be one of one_way, bidirectional"),
    ({'initial': 'destination_wins'}, "field 'initial' must be one of"),
    ({'conflict': 'oldest'}, "field 'conflict'"),
    ({'acl_mode': 'open'}, "field 'acl_mode'"),
    ({'state': 'absent'}, "field 'state'"),
    ({'direction_after_cutover': 'source_to_destination'}, "field 'direction_after_cutover'"),
    ({'prune': 'yes'}, "field 'prune' must be a boolean"),
    ({'sync_acl': 1}, "field 'sync_acl' must be a boolean"),
    ({'max_write_rate': -1}, "field 'max_write_rate' must be at least 0"),
    ({'max_write_rate': 1.5}, "field 'max_write_rate' must be an integer"),
    ({'max_write_rate': True}, "field 'max_write_rate' must be an integer"),
    ({'paths': []}, "field 'paths' must list at least one"),
    ({'paths': 'orders'}, "field 'paths' must be a list"),
    ({'paths': ['orders']}, 'paths[0] must be an absolute znode path'),
    ({'paths': ['/a//b']}, 'must not contain empty'),
    ({'paths': ['/a/../b']}, 'must not contain empty'),
    ({'paths': ['/zookeeper']}, 'under /zookeeper'),
    ({'paths': ['/zookeeper/config']}, 'under /zookeeper'),
    ({'paths': ['/zookeeper-migration/tasks']}, 'control root'),
    ({'paths': ['/a', '/a/b']}, 'overlaps'),
    ({'exclude': ['']}, 'exclude[0] must be a non-empty glob'),
    ({'node_types': [{'pattern': '/x', 'type': 'ttl'}]}, 'type ttl needs ttl_ms'),
    ({'node_types': [{'pattern': '/x', 'type': 'container', 'ttl_ms': 5}]}, 'ttl_ms applies only to type ttl'),
    ({'node_types': [{'pattern': '/x', 'type': 'sequential'}]}, "field 'type' must be one of container, ttl"),
    ({'node_types': [{'pattern': '/x', 'type': 'ttl', 'ttl_ms': 0}]}, "field 'ttl_ms' must be at least 1"),
    ({'destination': 'old'}, 'names the source cluster'),
    ({'source': None}, "field 'source' is required"),
    ({'name': 'bad/name'}, "field 'name' must be"),
    ({'colour': 'red'}, "unknown field 'colour'"),
    ({'password': 'x'}, 'looks like a secret'),
])
def test_task_spec_errors_name_the_field(change, field_text):
    with pytest.raises(ConfigError) as err:
        control.normalize_task_spec(_spec(**change))
    assert field_text in str(err.value)


def test_task_spec_paths_under_a_custom_root():
    control.normalize_task_spec(_spec(paths=['/zookeeper-migration/x']), root='/ops/zkm')
    with pytest.raises(ConfigError, match='control root /ops/zkm'):
        control.normalize_task_spec(_spec(paths=['/ops/zkm/clusters']), root='/ops/zkm')
    assert control.normalize_task_spec(_spec(paths=['/ops']), root='/ops/zkm')['paths'] == ['/ops']   # the root is excluded from sync


def test_whole_tree_path_is_allowed():
    assert control.normalize_task_spec(_spec(paths=['/']))['paths'] == ['/']


def test_newer_schema_version_in_input_is_refused():
    with pytest.raises(SchemaError, match='newer'):
        control.normalize_task_spec(_spec(schema_version=2))


# -- placement across tasks and clusters -------------------------------------------

def test_placement_refuses_overlap_on_shared_cluster():
    clusters = {'old': _cluster('old', ['a:2181']), 'new': _cluster('new', ['b:2181']), 'third': _cluster('third', ['c:2181'])}
    existing = {'t1': control.normalize_task_spec(_spec(name='t1', paths=['/app']))}
    for spec in (_spec(name='t2', paths=['/app/x']), _spec(name='t2', paths=['/']), _spec(name='t2', paths=['/app']),
                 _spec(name='t2', source='third', destination='new', paths=['/app/y']),
                 _spec(name='t2', source='new', destination='old', paths=['/app'])):
        with pytest.raises(ConfigError, match="overlaps path '/app' of task 't1'"):
            control.check_task_placement(control.normalize_task_spec(spec), clusters, existing)
    # disjoint paths, or no shared cluster: fine
    control.check_task_placement(control.normalize_task_spec(_spec(name='t2', paths=['/application'])), clusters, existing)
    clusters['fourth'] = _cluster('fourth', ['d:2181'])
    control.check_task_placement(control.normalize_task_spec(_spec(name='t2', source='third', destination='fourth', paths=['/app'])),
                                 clusters, existing)
    # a task never conflicts with itself (updates)
    control.check_task_placement(existing['t1'], clusters, existing)


def test_placement_sees_one_ensemble_under_two_names():
    clusters = {'old': _cluster('old', ['zk1:2181', 'zk2:2181']), 'new': _cluster('new', ['b:2181']),
                'old-again': _cluster('old-again', ['ZK2:2181']), 'other': _cluster('other', ['x:2181'])}
    existing = {'t1': control.normalize_task_spec(_spec(name='t1', paths=['/app']))}
    with pytest.raises(ConfigError, match='old-again'):
        control.check_task_placement(control.normalize_task_spec(_spec(name='t2', source='old-again', destination='other', paths=['/app/z'])),
                                     clusters, existing)


def test_placement_source_equal_to_destination_by_resolution():
    same = {'a': _cluster('a', ['localhost:2181']), 'b': _cluster('b', ['127.0.0.1:2181'])}
    with pytest.raises(ConfigError, match='same ensemble'):
        control.check_task_placement(control.normalize_task_spec(_spec(source='a', destination='b', paths=['/x'])), same, {})
    # one ensemble, disjoint chroots: a copy between two prefixes is allowed
    chrooted = {'a': _cluster('a', ['h:2181'], '/one'), 'b': _cluster('b', ['h:2181'], '/two')}
    control.check_task_placement(control.normalize_task_spec(_spec(source='a', destination='b', paths=['/x'])), chrooted, {})
    # nested chroots overlap
    nested = {'a': _cluster('a', ['h:2181'], None), 'b': _cluster('b', ['h:2181'], '/x')}
    with pytest.raises(ConfigError, match='overlapping server paths'):
        control.check_task_placement(control.normalize_task_spec(_spec(source='a', destination='b', paths=['/x'])), nested, {})


def test_placement_unregistered_cluster():
    with pytest.raises(ConfigError, match="destination cluster 'new' is not registered"):
        control.check_task_placement(control.normalize_task_spec(_spec()), {'old': _cluster('old', ['a:1'])}, {})


# -- cluster records ----------------------------------------------------------------

def test_cluster_normalization():
    record = control.normalize_cluster({'name': 'legacy', 'hosts': 'zk1:2181, zk2,[::1]:2182', 'chroot': '/'})
    assert record['hosts'] == ['zk1:2181', 'zk2:2181', '[::1]:2182'] and record['chroot'] is None
    assert record['auth'] == {'scheme': 'none', 'username': None, 'credential': None}
    assert record['tls']['enabled'] is False and record['tls']['verify'] is True


@pytest.mark.parametrize('change, text', [
    ({'hosts': []}, 'at least one'),
    ({'hosts': ['zk1:99999']}, 'bad port'),
    ({'hosts': ['zk1:2181/chroot']}, 'chroot goes in chroot'),
    ({'hosts': ['user:pw@zk1:2181']}, 'credentials in a credential'),
    ({'chroot': 'relative'}, "field 'chroot' must be an absolute"),
    ({'auth': {'scheme': 'digest'}}, 'needs auth.credential'),
    ({'auth': {'scheme': 'kerberos', 'credential': 'c'}}, "field 'scheme' must be one of none, digest, sasl"),
    ({'auth': {'scheme': 'none', 'username': 'u'}}, 'need auth.scheme'),
    ({'auth': {'scheme': 'digest', 'credential': 'c', 'password': SECRET}}, 'looks like a secret'),
    ({'tls': {'enabled': True, 'key_password': KEY_SECRET}}, 'looks like a secret'),
    ({'tls': {'enabled': True, 'cert_file': '/c.pem'}}, 'go together'),
    ({'tls': {'ca_file': '/ca.pem'}}, 'tls.enabled is false'),
    ({'session_timeout': 0}, 'must be at least'),
])
def test_cluster_errors(change, text):
    record = {'name': 'c', 'hosts': ['zk1:2181']}
    record.update(change)
    with pytest.raises(ConfigError) as err:
        control.normalize_cluster(record)
    assert text in str(err.value)
    assert SECRET not in str(err.value) and KEY_SECRET not in str(err.value)


# -- records on the wire --------------------------------------------------------------

def test_decode_record_errors_name_path():
    path = '/zookeeper-migration/tasks/t/status'
    for raw, text in ((b'\xff\xfe', 'not UTF-8'), (b'{', 'not valid JSON'), (b'"x"', 'JSON object'),
                      (b'{"phase": "streaming"}', 'no schema_version'),
                      (b'{"schema_version": 3, "phase": "streaming", "heartbeat": 1}', 'upgrade zookeeper.migration'),
                      (b'{"schema_version": 1, "phase": "warp", "heartbeat": 1}', "field 'phase' must be one of"),
                      (b'{"schema_version": 1, "phase": "streaming"}', "field 'heartbeat' is required")):
        with pytest.raises(SchemaError) as err:
            control.decode_record(raw, path, control.normalize_status)
        assert text in str(err.value) and path in str(err.value) and err.value.path == path


def test_encode_decode_round_trip():
    status = control.normalize_status({'phase': 'streaming', 'heartbeat': 12.5, 'details': {'rescans': 2}})
    data = control.encode_record(status)
    assert json.loads(data.decode('utf-8')) == status
    assert control.decode_record(data, '/p', control.normalize_status) == status


def test_status_details_must_be_json():
    with pytest.raises(ConfigError, match='plain JSON'):
        control.normalize_status({'phase': 'streaming', 'heartbeat': 1, 'details': {'x': object()}})


def test_root_validation():
    assert control.normalize_root('/zookeeper-migration/') == '/zookeeper-migration'
    for bad in ('/', 'relative', '/zookeeper/x', '/zookeeper'):
        with pytest.raises(ConfigError):
            control.normalize_root(bad)


def test_path_helpers():
    assert control.paths_overlap('/a', '/a/b') and control.paths_overlap('/a/b', '/a') and control.paths_overlap('/', '/x')
    assert not control.paths_overlap('/a', '/ab') and not control.paths_overlap('/a/b', '/a/c')


def test_acl_option_parsing():
    acl = control.parse_acl_option([{'scheme': 'digest', 'id': 'm:hash', 'perms': 'rwcda'}, {'scheme': 'world', 'id': 'anyone', 'perms': 'r'}])
    assert [(entry.perms, entry.id.scheme) for entry in acl] == [(31, 'digest'), (1, 'world')]
    assert not control.acl_is_open(acl)
    assert control.acl_is_open(control.parse_acl_option([{'scheme': 'world', 'id': 'anyone', 'perms': 'all'}]))
    with pytest.raises(ConfigError, match='perms letters'):
        control.parse_acl_option([{'scheme': 'world', 'id': 'anyone', 'perms': 'rx'}])


def test_control_acl_choice():
    anonymous = KazooClient(hosts='127.0.0.1:1')
    # fails closed: no identity, no control ACL, unless the open store is asked for
    with pytest.raises(ConfigError, match='control session is not authenticated.*control.allow_open_acl: true'):
        control.control_acl(anonymous)
    acl, is_open = control.control_acl(anonymous, allow_open_acl=True)
    assert is_open and [(a.perms, a.id.scheme, a.id.id) for a in acl] == [(31, 'world', 'anyone')]
    authed = KazooClient(hosts='127.0.0.1:1', auth_data=[('digest', 'm:' + SECRET)])
    acl, is_open = control.control_acl(authed)
    # the migration identity only: not world-readable by default
    assert not is_open and [(a.perms, a.id.scheme) for a in acl] == [(31, 'auth')]
    assert SECRET not in repr(acl)
    acl, is_open = control.control_acl(authed, world_readable=True)
    assert not is_open and [(a.perms, a.id.scheme) for a in acl] == [(31, 'auth'), (1, 'world')]
    acl = control.control_acl(anonymous, identity='sasl:migrator@EXAMPLE.COM')[0]
    assert [(a.id.scheme, a.id.id) for a in acl] == [('sasl', 'migrator@EXAMPLE.COM')]
    # fences and journals on data clusters: the migration identity only, or open where it has none
    assert [(a.perms, a.id.scheme) for a in control.data_cluster_acl(authed)[0]] == [(31, 'auth')]
    assert control.data_cluster_acl(anonymous) == (control.OPEN_ACL_UNSAFE, True)


def test_world_access():
    from kazoo.security import ACL, Id, Permissions
    world = Id('world', 'anyone')
    assert control.world_access([ACL(Permissions.ALL, Id('auth', ''))]) == ''
    assert control.world_access([ACL(Permissions.READ, world)]) == 'r'
    assert control.world_access([ACL(Permissions.READ, world)], world_read=True) == ''
    assert control.world_access([ACL(Permissions.READ | Permissions.WRITE, world)], world_read=True) == 'w'
    assert control.world_access([ACL(Permissions.ALL, world)]) == 'rwcda'


# -- fence check placement --------------------------------------------------------------

def test_fence_check_goes_first_in_a_transaction():
    client = KazooClient(hosts='127.0.0.1:1/base')          # never started: transactions build offline
    txn = client.transaction()
    txn.create('/data/x', b'1')
    control.fence_check(txn, '/zookeeper-migration', 'orders', 7)
    assert txn.operations[0] == CheckVersion('/base/zookeeper-migration/fence/orders', 7)
    assert txn.operations[1].path == '/base/data/x'


def test_fence_check_on_raw_ops():
    ops = [Create('/data/x', b'', [], 0)]
    control.fence_check(ops, '/zookeeper-migration', 'orders', 3, chroot='/base')
    assert ops[0] == CheckVersion('/base/zookeeper-migration/fence/orders', 3)
    with pytest.raises(ConfigError, match='epoch'):
        control.fence_check([], '/zookeeper-migration', 'orders', -1)


# -- credentials ----------------------------------------------------------------------------

def _write(tmp_path, text, mode=0o600, name='credentials.yml'):
    path = tmp_path / name
    path.write_text(text)
    os.chmod(str(path), mode)
    return str(path)


GOOD_YAML = """
migrator:
  type: digest
  username: migrator
  password: "%s"
kerberos:
  type: sasl
  mechanism: GSSAPI
  principal: migrator@EXAMPLE.COM
md5:
  type: sasl
  mechanism: digest-md5
  username: svc
  password: "%s"
client-key:
  type: tls
  key_password: "%s"
""" % (SECRET, SECRET, KEY_SECRET)


def test_load_credentials_yaml(tmp_path):
    creds = control.load_credentials(_write(tmp_path, GOOD_YAML))
    assert sorted(creds) == ['client-key', 'kerberos', 'md5', 'migrator']
    assert creds['migrator'].username == 'migrator' and creds['migrator'].password == SECRET
    assert creds['md5'].mechanism == 'DIGEST-MD5'
    assert creds['client-key'].key_password == KEY_SECRET
    text = repr(creds) + str(creds['migrator']) + repr(creds['client-key'])
    assert SECRET not in text and KEY_SECRET not in text and '<redacted>' in text
    assert creds['migrator'].describe() == {'name': 'migrator', 'type': 'digest', 'username': 'migrator'}


def test_load_credentials_json(tmp_path):
    data = {'migrator': {'type': 'digest', 'username': 'm', 'password': SECRET}}
    creds = control.load_credentials(_write(tmp_path, json.dumps(data), mode=0o400, name='c.json'))
    assert creds['migrator'].password == SECRET


def test_empty_credentials_file_is_an_empty_set(tmp_path):
    assert control.load_credentials(_write(tmp_path, '')) == {}


@pytest.mark.parametrize('mode', [0o644, 0o640, 0o604, 0o660, 0o666])
def test_credentials_file_mode_refused(tmp_path, mode):
    path = _write(tmp_path, GOOD_YAML, mode=mode)
    with pytest.raises(ConfigError) as err:
        control.load_credentials(path)
    assert ('mode %04o' % mode) in str(err.value) and 'chmod 600' in str(err.value)
    assert SECRET not in str(err.value)


@pytest.mark.skipif(os.geteuid() != 0, reason='changing a file owner needs root')
def test_credentials_file_owner_refused(tmp_path):
    path = _write(tmp_path, GOOD_YAML)
    os.chown(path, 65534, -1)
    with pytest.raises(ConfigError, match='owned by uid 65534'):
        control.load_credentials(path)


def test_credentials_file_missing_or_not_a_file(tmp_path):
    with pytest.raises(ConfigError, match='does not exist'):
        control.load_credentials(str(tmp_path / 'nope.yml'))
    with pytest.raises(ConfigError, match='not a regular file'):
        control.load_credentials(str(tmp_path))


@pytest.mark.parametrize('text, message', [
    ('migrator:\n  type: digest\n  username: m\n', "field 'password' is required"),
    ('migrator:\n  type: digest\n  password: "%s"\n' % SECRET, "field 'username' is required"),
    ('migrator:\n  type: kerberos5\n  password: "%s"\n' % SECRET, "field 'type' is not a known type"),
    ('migrator:\n  username: m\n  password: "%s"\n' % SECRET, "field 'type' is missing"),
    ('migrator:\n  type: digest\n  username: m\n  password: "%s"\n  passwd: "%s"\n' % (SECRET, SECRET), "unknown field 'passwd'"),
    ('migrator:\n  type: digest\n  username: m\n  password: 12345\n', "must be a string (quote it in YAML)"),
    ('migrator:\n  type: digest\n  username: "m:x"\n  password: "%s"\n' % SECRET, 'must not contain ":"'),
    ('k:\n  type: tls\n', "field 'key_password' is required"),
    ('s:\n  type: sasl\n  mechanism: PLAIN\n  username: u\n  password: "%s"\n' % SECRET, "field 'mechanism' must be one of"),
    ('s:\n  type: sasl\n  mechanism: DIGEST-MD5\n  username: u\n', "field 'password' is required"),
    ('migrator: "%s"\n' % SECRET, 'must be a mapping, got str'),
    ('- "%s"\n' % SECRET, 'must be a mapping of credential name'),
    ('migrator:\n  type: digest\n  password: "%s\n  bad: [\n' % SECRET, 'not valid YAML near line'),
    ('{"migrator": {"type": "digest", "password": "%s",}}' % SECRET, 'not valid JSON near line'),
])
def test_credentials_errors_never_show_secrets(tmp_path, caplog, text, message):
    caplog.set_level(logging.DEBUG)
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        control.load_credentials(path)
    assert message in str(err.value)
    assert path in str(err.value)
    assert SECRET not in str(err.value) and SECRET not in repr(err.value)
    assert SECRET not in json.dumps(err.value.to_dict())
    assert '12345' not in str(err.value)
    assert SECRET not in caplog.text


def test_credential_store_reload_and_resolve(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    path = _write(tmp_path, GOOD_YAML)
    store = control.CredentialStore.from_file(path)
    assert store.resolve('migrator').password == SECRET
    assert 'migrator' in store and len(store) == 4
    assert SECRET not in repr(store) and KEY_SECRET not in str(store) and 'migrator' in repr(store)
    with pytest.raises(ConfigError, match="credential 'nobody' is not defined"):
        store.resolve('nobody')
    with pytest.raises(ConfigError, match='is of type digest, but type tls'):
        store.resolve('migrator', 'tls')
    # rotate the secret: reload (what the daemon does on SIGHUP) picks it up
    rotated = GOOD_YAML.replace(SECRET, SECRET + '-2')
    with open(path, 'w') as handle:
        handle.write(rotated)
    assert store.reload() == ['client-key', 'kerberos', 'md5', 'migrator']
    assert store.resolve('migrator').password == SECRET + '-2'
    # a broken file keeps the previous credentials in force
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match='mode 0644'):
        store.reload()
    assert store.resolve('migrator').password == SECRET + '-2'
    assert SECRET not in caplog.text and KEY_SECRET not in caplog.text


def test_credential_store_from_module_option():
    store = control.CredentialStore.from_mapping({'migrator': {'type': 'digest', 'username': 'm', 'password': SECRET}})
    assert store.resolve('migrator').password == SECRET
    assert SECRET not in repr(store)
    assert len(control.CredentialStore.from_mapping(None)) == 0
    with pytest.raises(ConfigError) as err:
        control.CredentialStore.from_mapping({'migrator': {'type': 'digest', 'password': SECRET}})
    assert 'credentials option' in str(err.value) and SECRET not in str(err.value)


def test_resolve_cluster_connection():
    creds = {'migrator': {'type': 'digest', 'username': 'migrator', 'password': SECRET},
             'key': {'type': 'tls', 'key_password': KEY_SECRET},
             'krb': {'type': 'sasl', 'mechanism': 'GSSAPI', 'principal': 'm@R'}}
    cluster = {'name': 'legacy', 'hosts': ['zk1:2181'], 'auth': {'scheme': 'digest', 'username': 'migrator', 'credential': 'migrator'},
               'tls': {'enabled': True, 'cert_file': '/c.pem', 'key_file': '/k.pem', 'credential': 'key'}}
    spec = control.resolve_cluster_connection(cluster, creds)
    assert spec['auth'] == {'scheme': 'digest', 'username': 'migrator', 'password': SECRET}
    assert spec['tls']['key_password'] == KEY_SECRET and spec['tls']['cert_file'] == '/c.pem'
    assert spec['hosts'] == ['zk1:2181'] and spec['session_timeout'] == 30.0
    sasl = control.resolve_cluster_connection({'name': 'k', 'hosts': ['h'], 'auth': {'scheme': 'sasl', 'credential': 'krb'}}, creds)
    assert sasl['auth']['mechanism'] == 'GSSAPI' and sasl['auth']['principal'] == 'm@R'
    plain = control.resolve_cluster_connection({'name': 'open', 'hosts': ['h']})
    assert 'auth' not in plain and 'tls' not in plain
    with pytest.raises(ConfigError, match="credential 'migrator' is for user 'migrator'"):
        control.resolve_cluster_connection(dict(cluster, auth={'scheme': 'digest', 'username': 'other', 'credential': 'migrator'}), creds)
    with pytest.raises(ConfigError, match='of type tls, but type digest'):
        control.resolve_cluster_connection(dict(cluster, auth={'scheme': 'digest', 'credential': 'key'}), creds)
    with pytest.raises(ConfigError, match='no credentials were given'):
        control.resolve_cluster_connection(dict(cluster, tls={}), None)


def test_resolved_connection_is_what_the_client_takes():
    from ansible_collections.zookeeper.migration.plugins.module_utils._client import ClusterSpec
    creds = control.CredentialStore.from_mapping({
        'migrator': {'type': 'digest', 'username': 'migrator', 'password': SECRET},
        'md5': {'type': 'sasl', 'mechanism': 'DIGEST-MD5', 'username': 'svc', 'password': SECRET},
        'krb': {'type': 'sasl', 'mechanism': 'GSSAPI', 'principal': 'm@R'},
        'key': {'type': 'tls', 'key_password': KEY_SECRET}})
    for auth in ({'scheme': 'digest', 'credential': 'migrator'}, {'scheme': 'sasl', 'credential': 'md5'},
                 {'scheme': 'sasl', 'credential': 'krb'}, {}):
        record = {'name': 'c', 'hosts': ['zk1:2181', 'zk2'], 'chroot': '/apps', 'auth': auth,
                  'tls': {'enabled': True, 'ca_file': '/ca.pem', 'cert_file': '/c.pem', 'key_file': '/k.pem', 'credential': 'key'}}
        spec = ClusterSpec.from_dict(control.resolve_cluster_connection(record, creds))
        assert spec.hosts == ['zk1:2181', 'zk2:2181'] and spec.chroot == '/apps'
        assert spec.tls.enabled and spec.tls.key_password == KEY_SECRET
        if auth:
            assert spec.auth.scheme == auth['scheme']
            assert spec.auth.password == (None if auth['credential'] == 'krb' else SECRET)
        else:
            assert spec.auth is None
        assert SECRET not in repr(spec) and KEY_SECRET not in repr(spec)
