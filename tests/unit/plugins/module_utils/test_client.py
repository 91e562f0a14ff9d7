# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of _client: ClusterSpec validation and redaction, srvr parsing, error translation."""

import subprocess

import pytest
from kazoo import exceptions as ke
from kazoo.handlers.threading import KazooTimeoutError

from ansible_collections.zookeeper.migration.plugins.module_utils import _client
from ansible_collections.zookeeper.migration.plugins.module_utils._client import ClusterSpec, parse_srvr, translate_error
from ansible_collections.zookeeper.migration.plugins.module_utils import _errors as errors

SECRET = 's3cr3t-Pa55'
KEY_SECRET = 'k3y-Pa55'


# -- hosts ------------------------------------------------------------------

def test_hosts_as_list_or_connect_string():
    from_list = ClusterSpec.from_dict({'hosts': ['a:1', 'b:2', 'c']})
    from_string = ClusterSpec.from_dict({'hosts': 'a:1, b:2 ,c'})
    assert from_list.hosts == from_string.hosts == ['a:1', 'b:2', 'c:2181']
    assert from_list.connect_string() == 'a:1,b:2,c:2181'


def test_duplicate_hosts_are_dropped():
    assert ClusterSpec.from_dict({'hosts': ['a:1', 'a:1', 'a']}).hosts == ['a:1', 'a:2181']


def test_connect_string_chroot():
    spec = ClusterSpec.from_dict({'hosts': 'a:1,b:2/app/env'})
    assert spec.hosts == ['a:1', 'b:2']
    assert spec.chroot == '/app/env'
    assert spec.connect_string(with_chroot=True) == 'a:1,b:2/app/env'
    assert spec.kazoo_args()['hosts'] == 'a:1,b:2/app/env'
    with pytest.raises(errors.ConfigError, match='connect string names chroot'):
        ClusterSpec.from_dict({'hosts': 'a:1/x', 'chroot': '/y'})


@pytest.mark.parametrize('chroot, expected', [(None, None), ('/', None), ('/app/', '/app'), ('/a/b', '/a/b')])
def test_chroot_normalised(chroot, expected):
    assert ClusterSpec.from_dict({'hosts': ['a'], 'chroot': chroot}).chroot == expected


@pytest.mark.parametrize('chroot', ['app', '/a//b', '/a/../b', 5])
def test_chroot_rejected(chroot):
    with pytest.raises(errors.ConfigError):
        ClusterSpec.from_dict({'hosts': ['a'], 'chroot': chroot})


def test_missing_or_empty_hosts():
    with pytest.raises(errors.ConfigError, match='hosts is required'):
        ClusterSpec.from_dict({'name': 'src'})
    with pytest.raises(errors.ConfigError, match='hosts is empty'):
        ClusterSpec.from_dict({'hosts': []})
    with pytest.raises(errors.ConfigError, match='hosts must be'):
        ClusterSpec.from_dict({'hosts': 2181})


def test_name_in_messages_and_default_name():
    with pytest.raises(errors.ConfigError, match='cluster prod-src'):
        ClusterSpec.from_dict({'name': 'prod-src', 'hosts': ['a:99999']})
    assert ClusterSpec.from_dict({'hosts': ['a:1', 'b:2']}).name == 'a:1,b:2'


def test_unknown_keys_strict_and_lenient():
    with pytest.raises(errors.ConfigError, match='unknown option.*hostz'):
        ClusterSpec.from_dict({'hosts': ['a'], 'hostz': 1})
    assert ClusterSpec.from_dict({'hosts': ['a'], 'schema_version': 1}, strict=False).hosts == ['a:2181']


# -- timeouts and flags -------------------------------------------------------

def test_timeouts_defaults_and_values():
    spec = ClusterSpec.from_dict({'hosts': ['a']})
    assert spec.session_timeout == _client.DEFAULT_SESSION_TIMEOUT
    assert spec.connect_timeout == _client.DEFAULT_CONNECT_TIMEOUT
    spec = ClusterSpec.from_dict({'hosts': ['a'], 'session_timeout': '4.5', 'connect_timeout': 3})
    assert (spec.session_timeout, spec.connect_timeout) == (4.5, 3.0)
    assert spec.kazoo_args()['timeout'] == 4.5


@pytest.mark.parametrize('value', [0, -1, 'soon', True, 100000])
def test_bad_timeouts(value):
    with pytest.raises(errors.ConfigError, match='session_timeout'):
        ClusterSpec.from_dict({'hosts': ['a'], 'session_timeout': value})


def test_read_only_flag():
    assert ClusterSpec.from_dict({'hosts': ['a'], 'read_only': 'yes'}).kazoo_args()['read_only'] is True
    with pytest.raises(errors.ConfigError, match='read_only must be a boolean'):
        ClusterSpec.from_dict({'hosts': ['a'], 'read_only': 'maybe'})


# -- auth ---------------------------------------------------------------------

def test_digest_auth_inline():
    spec = ClusterSpec.from_dict({'hosts': ['a'], 'auth': {'username': 'mig', 'password': SECRET}})
    assert spec.auth.scheme == 'digest'
    assert spec.kazoo_args()['auth_data'] == [('digest', 'mig:%s' % SECRET)]


def test_digest_auth_from_credential():
    creds = {'migrator': {'username': 'mig', 'password': SECRET}}
    spec = ClusterSpec.from_dict({'hosts': ['a'], 'auth': {'scheme': 'digest', 'credential': 'migrator'}}, credentials=creds)
    assert spec.auth.username == 'mig'
    assert spec.kazoo_args()['auth_data'] == [('digest', 'mig:%s' % SECRET)]


def test_credential_errors():
    with pytest.raises(errors.ConfigError, match="credential 'nope' is not defined"):
        ClusterSpec.from_dict({'hosts': ['a'], 'auth': {'credential': 'nope'}}, credentials={})
    with pytest.raises(errors.ConfigError, match='either password or credential'):
        ClusterSpec.from_dict({'hosts': ['a'], 'auth': {'credential': 'c', 'password': 'x', 'username': 'u'}},
                              credentials={'c': {'username': 'u', 'password': 'p'}})
    with pytest.raises(errors.ConfigError, match='differs from the username'):
        ClusterSpec.from_dict({'hosts': ['a'], 'auth': {'credential': 'c', 'username': 'other'}},
                              credentials={'c': {'username': 'u', 'password': 'p'}})


@pytest.mark.parametrize('auth, fragment', [
    ({'username': 'u'}, 'needs a password'),
    ({'password': 'p'}, 'needs a username'),
    ({'username': 'u:x', 'password': 'p'}, 'must not contain ":"'),
    ({'scheme': 'kerberos', 'username': 'u', 'password': 'p'}, 'scheme must be one of'),
    ({'username': 'u', 'password': 'p', 'mechanism': 'GSSAPI'}, 'apply to scheme sasl only'),
    ({'scheme': 'sasl', 'mechanism': 'PLAIN', 'username': 'u', 'password': 'p'}, 'mechanism must be one of'),
    ({'scheme': 'sasl', 'username': 'u'}, 'DIGEST-MD5 needs a username and a password'),
    ({'scheme': 'sasl', 'mechanism': 'GSSAPI', 'password': 'p'}, 'takes no password'),
    ({'scheme': 'digest', 'username': 'u', 'password': 'p', 'token': 'x'}, 'unknown option'),
    ('u:p', 'must be a dict'),
])
def test_auth_validation(auth, fragment):
    with pytest.raises(errors.ConfigError) as info:
        ClusterSpec.from_dict({'hosts': ['a'], 'auth': auth})
    assert fragment in str(info.value)
    assert 'p' != str(info.value)


def test_sasl_options():
    spec = ClusterSpec.from_dict({'hosts': ['a'], 'auth': {'scheme': 'sasl', 'username': 'u', 'password': SECRET}})
    assert spec.kazoo_args()['sasl_options'] == {'mechanism': 'DIGEST-MD5', 'username': 'u', 'password': SECRET}
    spec = ClusterSpec.from_dict({'hosts': ['a'], 'auth': {'scheme': 'sasl', 'mechanism': 'gssapi', 'service': 'zk',
                                                           'principal': 'mig@EXAMPLE.COM'}})
    assert spec.kazoo_args()['sasl_options'] == {'mechanism': 'GSSAPI', 'service': 'zk', 'principal': 'mig@EXAMPLE.COM'}
    assert 'auth_data' not in spec.kazoo_args()


# -- TLS ----------------------------------------------------------------------

def test_tls_defaults_and_enabled_inference():
    assert ClusterSpec.from_dict({'hosts': ['a']}).tls.enabled is False
    assert ClusterSpec.from_dict({'hosts': ['a'], 'tls': {'ca_file': '/ca.pem'}}).tls.enabled is True
    assert ClusterSpec.from_dict({'hosts': ['a'], 'tls': {'enabled': False, 'ca_file': '/ca.pem'}}).tls.enabled is False
    spec = ClusterSpec.from_dict({'hosts': ['a'], 'tls': {'enabled': True}})
    # Host names are checked by default wherever the certificate is verified.
    assert (spec.tls.verify, spec.tls.check_hostname) == (True, True)
    args = spec.kazoo_args()
    assert args['use_ssl'] is True and args['verify_certs'] is True and args['check_hostname'] is True
    # Without verification there is no host name to check; turning it off needs no verify change.
    assert ClusterSpec.from_dict({'hosts': ['a'], 'tls': {'enabled': True, 'verify': False}}).tls.check_hostname is False
    assert ClusterSpec.from_dict({'hosts': ['a'], 'tls': {'enabled': True, 'check_hostname': False}}).tls.check_hostname is False
    assert _client.TlsSpec(enabled=True).check_hostname is True


def test_tls_context_trusts_only_the_ca_file(tmp_path):
    """With ca_file, the system's CAs are not loaded (kazoo's own set-up always loads them)."""
    import ssl
    system = _client.TlsSpec(enabled=True).ssl_context()
    assert system.check_hostname is True and system.verify_mode == ssl.CERT_REQUIRED
    ca_file = tmp_path / 'ca.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
                    '-subj', '/CN=only-this-ca', '-keyout', str(tmp_path / 'ca.key'), '-out', str(ca_file)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context = _client.TlsSpec(enabled=True, ca_file=str(ca_file)).ssl_context()
    assert [ca['subject'] for ca in context.get_ca_certs()] == [((('commonName', 'only-this-ca'),),)]
    assert context.check_hostname is True
    relaxed = _client.TlsSpec(enabled=True, ca_file=str(ca_file), check_hostname=False).ssl_context()
    assert relaxed.check_hostname is False and relaxed.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize('tls, fragment', [
    ({'cert_file': '/c.pem'}, 'go together'),
    ({'key_file': '/k.pem'}, 'go together'),
    ({'enabled': True, 'verify': False, 'check_hostname': True}, 'check_hostname needs verify'),
    ({'enabled': True, 'key_password': 'x'}, 'key_password given without key_file'),
    ({'enabled': True, 'insecure': True}, 'unknown option'),
])
def test_tls_validation(tls, fragment):
    with pytest.raises(errors.ConfigError, match=fragment):
        ClusterSpec.from_dict({'hosts': ['a'], 'tls': tls})


def test_tls_key_password_from_credential():
    spec = ClusterSpec.from_dict({'hosts': ['a'], 'tls': {'cert_file': '/c', 'key_file': '/k', 'credential': 'tlskey'}},
                                 credentials={'tlskey': {'key_password': KEY_SECRET}})
    assert spec.kazoo_args()['keyfile_password'] == KEY_SECRET


def test_tls_missing_files_reported_at_connect(tmp_path):
    spec = ClusterSpec.from_dict({'name': 'dst', 'hosts': ['127.0.0.1:1'], 'tls': {'ca_file': str(tmp_path / 'nope.pem')}})
    with pytest.raises(errors.ConfigError, match='ca_file .*nope.pem does not exist on this host'):
        _client.connect(spec)


# -- redaction ----------------------------------------------------------------

def _full_spec(credentials=None):
    data = {'name': 'prod', 'hosts': ['zk1:2181', 'zk2:2181'], 'chroot': '/app',
            'auth': {'scheme': 'digest', 'username': 'mig', 'password': SECRET},
            'tls': {'ca_file': '/ca', 'cert_file': '/c', 'key_file': '/k', 'key_password': KEY_SECRET}}
    return ClusterSpec.from_dict(data, credentials=credentials)


def test_to_dict_redacts_and_round_trips():
    spec = _full_spec()
    shown = spec.to_dict()
    text = repr(shown)
    assert SECRET not in text and KEY_SECRET not in text
    assert shown['auth'] == {'scheme': 'digest', 'username': 'mig'}
    assert 'key_password' not in shown['tls']
    again = ClusterSpec.from_dict(spec.to_dict(redact=False))
    assert again == spec
    assert again.kazoo_args() == spec.kazoo_args()


def test_repr_and_describe_redact():
    spec = _full_spec()
    for text in (repr(spec), str(spec), spec.describe(), repr(spec.auth), repr(spec.tls)):
        assert SECRET not in text and KEY_SECRET not in text
    assert _client.REDACTED in repr(spec)


def test_credential_secret_never_written_back():
    spec = ClusterSpec.from_dict({'hosts': ['a'], 'auth': {'credential': 'mig'}},
                                 credentials={'mig': {'username': 'u', 'password': SECRET}})
    unredacted = spec.to_dict(redact=False)
    assert SECRET not in repr(unredacted)
    assert unredacted['auth'] == {'scheme': 'digest', 'username': 'u', 'credential': 'mig'}


def test_config_errors_never_echo_secrets():
    cases = [
        {'hosts': ['a'], 'auth': {'username': 'u:x', 'password': SECRET}},
        {'hosts': ['a'], 'auth': {'scheme': 'sasl', 'mechanism': 'GSSAPI', 'password': SECRET}},
        {'hosts': ['a'], 'tls': {'enabled': True, 'key_password': SECRET}},
        {'hosts': ['a'], 'auth': {'credential': 'x', 'password': SECRET, 'username': 'u'}},
    ]
    for data in cases:
        with pytest.raises(errors.ConfigError) as info:
            ClusterSpec.from_dict(data, credentials={'x': {'password': 'other'}})
        assert SECRET not in str(info.value)


# -- srvr parsing ---------------------------------------------------------------

SRVR_38 = """Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC
Latency min/avg/max: 0/0.0/0
Received: 1
Sent: 0
Connections: 1
Outstanding: 0
Zxid: 0x10000002a
Mode: follower
Node count: 5
"""


def test_parse_srvr():
    info = parse_srvr(SRVR_38)
    assert info == {'version': '3.8.0-${mvngit.commit.id}', 'mode': 'follower', 'zxid': 0x10000002a, 'node_count': 5}


def test_srvr_verdicts():
    assert _client._srvr_verdict(SRVR_38, False) == ('follower', None)
    assert 'whitelist' in _client._srvr_verdict('srvr is not executed because it is not in the whitelist.\n', False)[1]
    assert 'not serving' in _client._srvr_verdict('This ZooKeeper instance is not currently serving requests\n', False)[1]
    assert 'expect TLS' in _client._srvr_verdict('', False)[1]


# -- error translation ----------------------------------------------------------

@pytest.mark.parametrize('kazoo_exc, engine_cls', [
    (ke.NoNodeError, errors.NoNodeError),
    (ke.NodeExistsError, errors.NodeExistsError),
    (ke.NotEmptyError, errors.NotEmptyError),
    (ke.BadVersionError, errors.VersionConflictError),
    (ke.NoAuthError, errors.AuthFailedError),
    (ke.AuthFailedError, errors.AuthFailedError),
    (ke.ConnectionLoss, errors.ClusterUnreachableError),
    (ke.SessionExpiredError, errors.ClusterUnreachableError),
    (KazooTimeoutError, errors.ClusterUnreachableError),
    (ke.ConnectionDropped, errors.ClusterUnreachableError),
    (ke.MarshallingError, errors.TooLargeError),
    (ke.UnimplementedError, errors.UnsupportedByServerError),
    (ke.NotReadOnlyCallError, errors.ClusterUnreachableError),
    (ke.InvalidACLError, errors.ZkMigrationError),
])
def test_translate_error_classes(kazoo_exc, engine_cls):
    translated = translate_error(kazoo_exc(), path='/a/b', cluster='src')
    assert translated.__class__ is engine_cls
    assert translated.path == '/a/b' and translated.cluster == 'src'
    assert '/a/b' in str(translated) and 'src' in str(translated)


def test_translate_connection_loss_on_oversized_request():
    translated = translate_error(ke.ConnectionLoss(), path='/big', request_bytes=2 * 1024 * 1024)
    assert isinstance(translated, errors.TooLargeError)
    assert '2097152 bytes' in str(translated) and 'jute.maxbuffer' in str(translated)
    small = translate_error(ke.ConnectionLoss(), path='/big', request_bytes=1000)
    assert isinstance(small, errors.ClusterUnreachableError)


def test_translate_leaves_unknown_and_engine_errors_alone():
    value_error = ValueError('x')
    assert translate_error(value_error) is value_error
    engine = errors.FencedError('stale')
    assert translate_error(engine) is engine


def test_zk_errors_context_manager():
    with pytest.raises(errors.NoNodeError) as info:
        with _client.zk_errors(path='/x', cluster='c'):
            raise ke.NoNodeError()
    assert isinstance(info.value.__cause__, ke.NoNodeError)
    with pytest.raises(KeyError):
        with _client.zk_errors(path='/x'):
            raise KeyError('not a ZooKeeper error')
    with pytest.raises(errors.TooLargeError):
        with _client.zk_errors(path='/x', request_bytes=5 * 1024 * 1024):
            raise ke.ConnectionLoss()


def test_poll_select_reports_ready_objects():
    import socket
    left, right = socket.socketpair()
    try:
        assert _client._poll_select([left], [], [], 0) == ([], [], [])
        right.send(b'x')
        readable, writable, _unused = _client._poll_select([left], [left], [], 1)
        assert readable == [left] and writable == [left]
    finally:
        left.close()
        right.close()


def test_capabilities_to_dict():
    caps = _client.Capabilities(multi_read=True, server_version='3.8.0')
    assert caps.to_dict()['multi_read'] is True
    assert 'server_version' in repr(caps)


def test_auth_scheme_none_means_no_authentication():
    # Control-store registrations record an unauthenticated cluster as scheme none.
    spec = ClusterSpec.from_dict({'name': 'plain', 'hosts': ['zk1:2181'], 'auth': {'scheme': 'none'}})
    assert spec.auth is None


def test_extra_sessions_only_for_clients_made_by_connect(monkeypatch):
    opened = []

    def fake_connect_members(spec, count=None):
        opened.append((spec, count))
        return ['session'] * count
    monkeypatch.setattr(_client, 'connect_members', fake_connect_members)

    class Bare(object):
        pass
    bare = Bare()
    assert _client.extra_sessions(bare, 8) == [] and opened == []          # not from connect(): no spec to copy
    spec = ClusterSpec(hosts=['zk1:2181'])
    setattr(bare, _client._SPEC_ATTR, spec)
    assert _client.extra_sessions(bare, 0) == [] and opened == []
    assert _client.extra_sessions(bare, 3) == ['session'] * 3 and opened == [(spec, 3)]


def test_extra_sessions_are_best_effort(monkeypatch):
    def unreachable(spec, count=None):
        raise errors.ClusterUnreachableError('cannot connect to any member of cluster x', cluster='x', failures={})
    monkeypatch.setattr(_client, 'connect_members', unreachable)

    class Bare(object):
        pass
    bare = Bare()
    setattr(bare, _client._SPEC_ATTR, ClusterSpec(hosts=['zk1:2181']))
    assert _client.extra_sessions(bare, 8) == []
