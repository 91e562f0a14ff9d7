# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of _registration.py: one way from a registration to a connection (resolve, cluster_spec, migrator_acl)."""


import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils import _credentials
from ansible_collections.zookeeper.migration.plugins.module_utils import _registration
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError

SECRET = 'S3cr3t-Value-do-not-leak'
KEY_SECRET = 'Key-Passphrase-do-not-leak'


def test_resolve_cluster_connection():
    creds = {'migrator': {'type': 'digest', 'username': 'migrator', 'password': SECRET},
             'key': {'type': 'tls', 'key_password': KEY_SECRET},
             'krb': {'type': 'sasl', 'mechanism': 'GSSAPI', 'principal': 'm@R'}}
    cluster = {'name': 'legacy', 'hosts': ['zk1:2181'], 'auth': {'scheme': 'digest', 'username': 'migrator', 'credential': 'migrator'},
               'tls': {'enabled': True, 'cert_file': '/c.pem', 'key_file': '/k.pem', 'credential': 'key'}}
    spec = _registration.resolve(cluster, creds)
    assert spec['auth'] == {'scheme': 'digest', 'username': 'migrator', 'password': SECRET}
    assert spec['tls']['key_password'] == KEY_SECRET and spec['tls']['cert_file'] == '/c.pem'
    assert spec['hosts'] == ['zk1:2181'] and spec['session_timeout'] == 30.0
    sasl = _registration.resolve({'name': 'k', 'hosts': ['h'], 'auth': {'scheme': 'sasl', 'credential': 'krb'}}, creds)
    assert sasl['auth']['mechanism'] == 'GSSAPI' and sasl['auth']['principal'] == 'm@R'
    plain = _registration.resolve({'name': 'open', 'hosts': ['h']})
    assert 'auth' not in plain and 'tls' not in plain
    with pytest.raises(ConfigError, match="credential 'migrator' is for user 'migrator'"):
        _registration.resolve(dict(cluster, auth={'scheme': 'digest', 'username': 'other', 'credential': 'migrator'}), creds)
    with pytest.raises(ConfigError, match='of type tls, but type digest'):
        _registration.resolve(dict(cluster, auth={'scheme': 'digest', 'credential': 'key'}), creds)
    with pytest.raises(ConfigError, match='no credentials were given'):
        _registration.resolve(dict(cluster, tls={}), None)


def test_resolved_connection_is_what_the_client_takes():
    from ansible_collections.zookeeper.migration.plugins.module_utils._client import ClusterSpec
    creds = _credentials.CredentialStore.from_mapping({
        'migrator': {'type': 'digest', 'username': 'migrator', 'password': SECRET},
        'md5': {'type': 'sasl', 'mechanism': 'DIGEST-MD5', 'username': 'svc', 'password': SECRET},
        'krb': {'type': 'sasl', 'mechanism': 'GSSAPI', 'principal': 'm@R'},
        'key': {'type': 'tls', 'key_password': KEY_SECRET}})
    for auth in ({'scheme': 'digest', 'credential': 'migrator'}, {'scheme': 'sasl', 'credential': 'md5'},
                 {'scheme': 'sasl', 'credential': 'krb'}, {}):
        record = {'name': 'c', 'hosts': ['zk1:2181', 'zk2'], 'chroot': '/apps', 'auth': auth,
                  'tls': {'enabled': True, 'ca_file': '/ca.pem', 'cert_file': '/c.pem', 'key_file': '/k.pem', 'credential': 'key'}}
        spec = ClusterSpec.from_dict(_registration.resolve(record, creds))
        assert spec.hosts == ['zk1:2181', 'zk2:2181'] and spec.chroot == '/apps'
        assert spec.tls.enabled and spec.tls.key_password == KEY_SECRET
        if auth:
            assert spec.auth.scheme == auth['scheme']
            assert spec.auth.password == (None if auth['credential'] == 'krb' else SECRET)
        else:
            assert spec.auth is None
        assert SECRET not in repr(spec) and KEY_SECRET not in repr(spec)


def test_migrator_acl_for_digest_and_sasl():
    from kazoo.security import make_digest_acl_credential
    digest = _registration.migrator_acl({'auth': {'scheme': 'digest', 'username': 'mig', 'password': 'pw'}})
    assert digest == ((31, 'digest', make_digest_acl_credential('mig', 'pw')),)
    assert _registration.migrator_acl({'auth': {'scheme': 'sasl', 'username': 'mig'}}) == ((31, 'sasl', 'mig'),)
    assert _registration.migrator_acl({'auth': {'scheme': 'none'}}) is None
    assert _registration.migrator_acl(None) is None


def test_a_registration_without_tls_or_auth_resolves_to_what_the_client_takes():
    record = {'name': 'c', 'hosts': ['127.0.0.1:2181'], 'session_timeout': 4.0, 'tls': {'enabled': False}, 'auth': {'scheme': 'none'}}
    connection = _registration.resolve(record, {})
    assert 'auth' not in connection and 'tls' not in connection and connection['hosts'] == ['127.0.0.1:2181']
    spec = _registration.cluster_spec(record, {})
    assert spec.auth is None and not spec.tls.enabled and spec.session_timeout == 4.0


def test_resolve_takes_the_secret_from_the_named_credential():
    record = {'name': 'src', 'hosts': ['127.0.0.1:2181'], 'auth': {'scheme': 'digest', 'credential': 'mig'}, 'tls': {'enabled': False}}
    credentials = {'mig': {'type': 'digest', 'username': 'migrator', 'password': 'pw'}}
    assert _registration.resolve(record, credentials)['auth'] == {'scheme': 'digest', 'username': 'migrator', 'password': 'pw'}
    assert _registration.cluster_spec(record, credentials).auth.username == 'migrator'
    with pytest.raises(ConfigError) as error:
        _registration.resolve(dict(record, auth={'scheme': 'digest', 'credential': 'absent'}), {})
    assert 'absent' in str(error.value)


class _Store(object):
    root = '/zkm'

    def __init__(self, records):
        self.records = records

    def get_cluster(self, name):
        return self.records.get(name)

    def cluster_path(self, name):
        return '/zkm/clusters/%s' % name


def test_resolve_registered_names_an_unregistered_cluster_and_its_role():
    from ansible_collections.zookeeper.migration.plugins.module_utils._errors import NoNodeError
    store = _Store({'src': {'name': 'src', 'hosts': ['h:1'], 'auth': {'scheme': 'digest', 'credential': 'mig'}}})
    spec, acl = _registration.resolve_registered(store, 'src', {'mig': {'type': 'digest', 'username': 'm', 'password': 'p'}}, 'source')
    assert spec.hosts == ['h:1'] and acl[0][:2] == (31, 'digest')
    with pytest.raises(NoNodeError) as error:
        _registration.resolve_registered(store, 'dst', {}, 'destination')
    assert "destination cluster 'dst' is not registered" in str(error.value) and 'zk_cluster' in str(error.value)
