# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of _records.py: record validation (names, paths, hosts, task specs, cluster registrations, status) and task placement rules."""

import json

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils import _records
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError, SchemaError

SECRET = 'S3cr3t-Value-do-not-leak'
KEY_SECRET = 'Key-Passphrase-do-not-leak'


def _spec(**extra):
    spec = {'name': 'orders', 'source': 'old', 'destination': 'new', 'paths': ['/orders']}
    spec.update(extra)
    return spec


def _cluster(name, hosts, chroot=None):
    return _records.normalize_cluster({'name': name, 'hosts': hosts, 'chroot': chroot})


def test_task_spec_defaults():
    spec = _records.normalize_task_spec(_spec())
    assert spec == dict(_records.task_defaults(), schema_version=1, name='orders', source='old', destination='new', paths=['/orders'])
    assert spec['mode'] == 'one_way' and spec['initial'] == 'source_wins' and spec['sync_acl'] is True
    assert spec['conflict'] == 'source_wins' and spec['max_write_rate'] == 0 and spec['direction_after_cutover'] == 'none'


def test_task_spec_full():
    spec = _records.normalize_task_spec(_spec(
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
        _records.normalize_task_spec(_spec(**change))
    assert field_text in str(err.value)


def test_task_spec_paths_under_a_custom_root():
    _records.normalize_task_spec(_spec(paths=['/zookeeper-migration/x']), root='/ops/zkm')
    with pytest.raises(ConfigError, match='control root /ops/zkm'):
        _records.normalize_task_spec(_spec(paths=['/ops/zkm/clusters']), root='/ops/zkm')
    assert _records.normalize_task_spec(_spec(paths=['/ops']), root='/ops/zkm')['paths'] == ['/ops']   # the root is excluded from sync


def test_whole_tree_path_is_allowed():
    assert _records.normalize_task_spec(_spec(paths=['/']))['paths'] == ['/']


def test_newer_schema_version_in_input_is_refused():
    with pytest.raises(SchemaError, match='newer'):
        _records.normalize_task_spec(_spec(schema_version=2))


def test_placement_refuses_overlap_on_shared_cluster():
    clusters = {'old': _cluster('old', ['a:2181']), 'new': _cluster('new', ['b:2181']), 'third': _cluster('third', ['c:2181'])}
    existing = {'t1': _records.normalize_task_spec(_spec(name='t1', paths=['/app']))}
    for spec in (_spec(name='t2', paths=['/app/x']), _spec(name='t2', paths=['/']), _spec(name='t2', paths=['/app']),
                 _spec(name='t2', source='third', destination='new', paths=['/app/y']),
                 _spec(name='t2', source='new', destination='old', paths=['/app'])):
        with pytest.raises(ConfigError, match="overlaps path '/app' of task 't1'"):
            _records.check_task_placement(_records.normalize_task_spec(spec), clusters, existing)
    # disjoint paths, or no shared cluster: fine
    _records.check_task_placement(_records.normalize_task_spec(_spec(name='t2', paths=['/application'])), clusters, existing)
    clusters['fourth'] = _cluster('fourth', ['d:2181'])
    _records.check_task_placement(_records.normalize_task_spec(_spec(name='t2', source='third', destination='fourth', paths=['/app'])),
                                  clusters, existing)
    # a task never conflicts with itself (updates)
    _records.check_task_placement(existing['t1'], clusters, existing)


def test_placement_sees_one_ensemble_under_two_names():
    clusters = {'old': _cluster('old', ['zk1:2181', 'zk2:2181']), 'new': _cluster('new', ['b:2181']),
                'old-again': _cluster('old-again', ['ZK2:2181']), 'other': _cluster('other', ['x:2181'])}
    existing = {'t1': _records.normalize_task_spec(_spec(name='t1', paths=['/app']))}
    with pytest.raises(ConfigError, match='old-again'):
        _records.check_task_placement(_records.normalize_task_spec(_spec(name='t2', source='old-again', destination='other', paths=['/app/z'])),
                                      clusters, existing)


def test_placement_source_equal_to_destination_by_resolution():
    same = {'a': _cluster('a', ['localhost:2181']), 'b': _cluster('b', ['127.0.0.1:2181'])}
    with pytest.raises(ConfigError, match='same ensemble'):
        _records.check_task_placement(_records.normalize_task_spec(_spec(source='a', destination='b', paths=['/x'])), same, {})
    # one ensemble, disjoint chroots: a copy between two prefixes is allowed
    chrooted = {'a': _cluster('a', ['h:2181'], '/one'), 'b': _cluster('b', ['h:2181'], '/two')}
    _records.check_task_placement(_records.normalize_task_spec(_spec(source='a', destination='b', paths=['/x'])), chrooted, {})
    # nested chroots overlap
    nested = {'a': _cluster('a', ['h:2181'], None), 'b': _cluster('b', ['h:2181'], '/x')}
    with pytest.raises(ConfigError, match='overlapping server paths'):
        _records.check_task_placement(_records.normalize_task_spec(_spec(source='a', destination='b', paths=['/x'])), nested, {})


def test_placement_unregistered_cluster():
    with pytest.raises(ConfigError, match="destination cluster 'new' is not registered"):
        _records.check_task_placement(_records.normalize_task_spec(_spec()), {'old': _cluster('old', ['a:1'])}, {})


def test_cluster_normalization():
    record = _records.normalize_cluster({'name': 'legacy', 'hosts': 'zk1:2181, zk2,[::1]:2182', 'chroot': '/'})
    assert record['hosts'] == ['zk1:2181', 'zk2:2181', '[::1]:2182'] and record['chroot'] is None
    assert record['auth'] == {'scheme': 'none', 'username': None, 'credential': None}
    assert record['tls']['enabled'] is False and record['tls']['verify'] is True


@pytest.mark.parametrize('change, text', [
    ({'hosts': []}, 'at least one'),
    ({'hosts': ['zk1:99999']}, 'invalid port'),
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
        _records.normalize_cluster(record)
    assert text in str(err.value)
    assert SECRET not in str(err.value) and KEY_SECRET not in str(err.value)


def test_decode_record_errors_name_path():
    path = '/zookeeper-migration/tasks/t/status'
    for raw, text in ((b'\xff\xfe', 'not UTF-8'), (b'{', 'not valid JSON'), (b'"x"', 'JSON object'),
                      (b'{"phase": "streaming"}', 'no schema_version'),
                      (b'{"schema_version": 3, "phase": "streaming", "heartbeat": 1}', 'upgrade zookeeper.migration'),
                      (b'{"schema_version": 1, "phase": "warp", "heartbeat": 1}', "field 'phase' must be one of"),
                      (b'{"schema_version": 1, "phase": "streaming"}', "field 'heartbeat' is required")):
        with pytest.raises(SchemaError) as err:
            _records.decode_record(raw, path, _records.normalize_status)
        assert text in str(err.value) and path in str(err.value) and err.value.path == path


def test_encode_decode_round_trip():
    status = _records.normalize_status({'phase': 'streaming', 'heartbeat': 12.5, 'details': {'rescans': 2}})
    data = _records.encode_record(status)
    assert json.loads(data.decode('utf-8')) == status
    assert _records.decode_record(data, '/p', _records.normalize_status) == status


def test_status_details_must_be_json():
    with pytest.raises(ConfigError, match='plain JSON'):
        _records.normalize_status({'phase': 'streaming', 'heartbeat': 1, 'details': {'x': object()}})


def test_root_validation():
    assert _records.normalize_root('/zookeeper-migration/') == '/zookeeper-migration'
    for bad in ('/', 'relative', '/zookeeper/x', '/zookeeper'):
        with pytest.raises(ConfigError):
            _records.normalize_root(bad)


def test_path_helpers():
    assert _records.paths_overlap('/a', '/a/b') and _records.paths_overlap('/a/b', '/a') and _records.paths_overlap('/', '/x')
    assert not _records.paths_overlap('/a', '/ab') and not _records.paths_overlap('/a/b', '/a/c')
