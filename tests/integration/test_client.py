# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_client against real ZooKeeper servers: connections, auth, TLS, failures, capabilities."""

import subprocess
import time

import pytest
from kazoo.protocol.states import KazooState
from kazoo.security import ACL, Id, Permissions, make_digest_acl

from ansible_collections.zookeeper.migration.plugins.module_utils import _client
from ansible_collections.zookeeper.migration.plugins.module_utils import _errors as errors
from tests.harness.zkharness import free_port

pytestmark = pytest.mark.integration


def _closed_address():
    """A loopback port nothing listens on (reserved by the harness, never bound)."""
    return '127.0.0.1:%d' % free_port()


def test_connect_standalone_and_always_closed(zk_standalone, zk_path):
    spec = _client.ClusterSpec.from_dict(zk_standalone.client_spec())
    with _client.connected(spec) as client:
        assert client.state == KazooState.CONNECTED
        client.create(zk_path + '/x', b'1', makepath=True)
        assert client.get(zk_path + '/x')[0] == b'1'
    assert not client.connected
    assert client._stopped.is_set()  # pylint: disable=protected-access


def test_connected_closes_on_error(zk_standalone):
    holder = {}
    with pytest.raises(RuntimeError):
        with _client.connected(zk_standalone.client_spec()) as client:
            holder['client'] = client
            raise RuntimeError('boom')
    assert not holder['client'].connected


def test_connect_ensemble_and_member_modes(zk_source, zk_path):
    spec = zk_source.client_spec()
    with _client.connected(spec) as client:
        client.create(zk_path, b'ensemble', makepath=True)
        assert client.get(zk_path)[0] == b'ensemble'
    modes = _client.member_modes(spec)
    assert set(modes) == set(zk_source.host_list)
    assert sorted(modes.values()) == ['follower', 'follower', 'leader']
    status = _client.member_status(spec)
    assert all(entry['version'].startswith('3.8') for entry in status.values())


def test_member_modes_names_unreachable_member(zk_source):
    closed = _closed_address()
    modes = _client.member_modes({'hosts': zk_source.host_list + [closed]})
    assert modes[closed].startswith('unreachable: connection refused')
    assert list(modes.values()).count('leader') == 1


def test_unreachable_cluster_names_each_member():
    first, second = _closed_address(), _closed_address()
    started = time.monotonic()
    with pytest.raises(errors.ClusterUnreachableError) as info:
        _client.connect({'name': 'nowhere', 'hosts': [first, second], 'connect_timeout': 1})
    assert time.monotonic() - started < 10
    error = info.value
    assert set(error.failures) == {first, second}
    assert all('refused' in reason for reason in error.failures.values())
    assert first in str(error) and second in str(error) and 'nowhere' in str(error)
    assert error.to_dict()['kind'] == 'unreachable'


def test_one_dead_member_does_not_prevent_connecting(zk_standalone):
    spec = {'hosts': [_closed_address()] + zk_standalone.host_list, 'connect_timeout': 10}
    with _client.connected(spec) as client:
        assert client.exists('/') is not None


def test_chroot(zk_standalone, zk_path):
    with _client.connected(zk_standalone.client_spec()) as client:
        client.create(zk_path + '/root/inside', b'in', makepath=True)
    spec = dict(zk_standalone.client_spec(), chroot=zk_path + '/root')
    with _client.connected(spec) as client:
        assert client.get_children('/') == ['inside']
        assert client.get('/inside')[0] == b'in'
    missing = dict(zk_standalone.client_spec(), chroot=zk_path + '/missing')
    with pytest.raises(errors.NoNodeError) as info:
        _client.connect(missing)
    assert info.value.path == zk_path + '/missing'
    with _client.connected(missing, create_chroot=True) as client:
        assert client.get_children('/') == []
    with _client.connected(zk_standalone.client_spec()) as client:
        assert client.exists(zk_path + '/missing') is not None


def test_digest_auth_good_password(zk_auth, zk_path):
    spec = zk_auth.client_spec()
    with _client.connected(spec) as client:
        client.create(zk_path, b'locked', makepath=True, acl=[make_digest_acl(zk_auth.super_user, 'other-password', all=True)])
    # The superDigest identity reads anything, whatever the ACL.
    with _client.connected(spec, auth_check_path=zk_path) as client:
        assert client.get(zk_path)[0] == b'locked'


def test_digest_auth_bad_password(zk_auth, zk_path):
    with _client.connected(zk_auth.client_spec()) as client:
        client.create(zk_path, b'locked', makepath=True, acl=[make_digest_acl('app', 'app-password', read=True)])
    bad = zk_auth.client_spec()
    bad['auth']['password'] = 'not-the-password'
    # ZooKeeper accepts any digest password at connect time ...
    with _client.connected(bad) as client:
        with pytest.raises(errors.AuthFailedError) as info:
            with _client.zk_errors(path=zk_path, cluster='digest'):
                client.get(zk_path)
        assert 'wrong password' in str(info.value)
    # ... so connect() can check a path the identity must read.
    with pytest.raises(errors.AuthFailedError) as info:
        _client.connect(bad, auth_check_path=zk_path)
    message = str(info.value)
    assert zk_path in message and 'password' in message
    assert 'not-the-password' not in message
    # The application's own digest identity (as a credential) reads it.
    creds = {'app': {'username': 'app', 'password': 'app-password'}}
    app_spec = {'hosts': zk_auth.host_list, 'auth': {'credential': 'app'}}
    with _client.connected(app_spec, credentials=creds, auth_check_path=zk_path) as client:
        assert client.get(zk_path)[0] == b'locked'


def test_prove_identity_tells_a_wrong_digest_password(zk_auth, zk_path, zk_client_factory):
    admin = zk_client_factory(zk_auth)
    admin.create(zk_path + '/shared/cfg', b'1', makepath=True)
    admin.create(zk_path + '/admin-only', b'2')
    # world may read /shared; the migrator administers it; /admin-only grants the migrator READ alone
    admin.set_acls(zk_path + '/shared', [ACL(Permissions.READ, Id('world', 'anyone')), make_digest_acl('mig', 'right', all=True)])
    admin.set_acls(zk_path + '/admin-only', [ACL(Permissions.ALL, Id('world', 'anyone'))])
    base = {'name': 'digest', 'hosts': zk_auth.host_list, 'chroot': zk_path}

    def spec(user, password):
        return dict(base, auth={'scheme': 'digest', 'username': user, 'password': password})

    with _client.connected(spec('mig', 'right')) as client:
        assert _client.prove_identity(client, spec('mig', 'right')) == {'status': 'proven', 'detail': 'the ACL of /shared names this identity'}
    with _client.connected(spec('mig', 'wrong')) as client:
        with pytest.raises(errors.AuthFailedError) as info:
            _client.prove_identity(client, spec('mig', 'wrong'))
    message = str(info.value)
    assert message.startswith('wrong password for user mig on cluster digest: an ACL entry grants user mig ADMIN at /shared')
    assert 'right' not in message     # no secret (nor hash) in the message
    # another hash for the user, visible through a wider grant: wrong unless another znode proves it
    admin.set_acls(zk_path + '/admin-only', [ACL(Permissions.ALL, Id('world', 'anyone')), make_digest_acl('mig', 'older', all=True)])
    admin.set_acls(zk_path + '/shared', [ACL(Permissions.ALL, Id('world', 'anyone'))])
    with _client.connected(spec('mig', 'wrong')) as client:
        with pytest.raises(errors.AuthFailedError, match='names user mig with another password at /admin-only'):
            _client.prove_identity(client, spec('mig', 'wrong'))
    # the superDigest user is proven by the server itself (whoAmI); a wrong super password is just another user
    with _client.connected(spec(zk_auth.super_user, zk_auth.super_password)) as client:
        assert _client.prove_identity(client, spec(zk_auth.super_user, zk_auth.super_password))['status'] == 'proven'
    with _client.connected(spec(zk_auth.super_user, 'not-super')) as client:
        assert _client.prove_identity(client, spec(zk_auth.super_user, 'not-super'))['status'] == 'unproven'
    assert _client.prove_identity(None, base)['status'] == 'not_applicable'


def test_prove_identity_on_34_without_whoami(zk_34, zk_path):
    spec = dict(zk_34.client_spec(), auth={'scheme': 'digest', 'username': 'u', 'password': 'p'}, chroot=None)
    with _client.connected(spec) as client:
        client.ensure_path(zk_path)
        client.create(zk_path + '/x', b'1', acl=[make_digest_acl('u', 'p', all=True)])
        assert _client.prove_identity(client, spec)['status'] == 'proven'   # 3.4 does not know whoAmI: ACLs still prove it
        assert client.get(zk_path + '/x')[0] == b'1'                         # and the client works on


def test_sasl_without_library_is_a_config_error(zk_auth):
    spec = {'hosts': zk_auth.host_list, 'auth': {'scheme': 'sasl', 'username': 'u', 'password': 'secret-value'}}
    if _client.PURESASL_AVAILABLE:
        pytest.skip('pure-sasl is installed here')
    with pytest.raises(errors.ConfigError, match='pure-sasl') as info:
        _client.connect(spec)
    assert 'secret-value' not in str(info.value)


def test_tls_connect(zk_tls, zk_path):
    spec = zk_tls.client_spec()
    with _client.connected(spec) as client:
        client.create(zk_path, b'over tls', makepath=True)
        assert client.get(zk_path)[0] == b'over tls'
        caps = _client.probe_capabilities(client)
        assert caps.server_version.startswith('3.8')
    assert list(_client.member_modes(spec).values()) == ['standalone']


def test_tls_wrong_ca_is_a_clear_error(zk_tls, tmp_path):
    other_ca = str(tmp_path / 'other-ca.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
                    '-subj', '/CN=some-other-ca', '-keyout', str(tmp_path / 'other-ca.key'), '-out', other_ca],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spec = zk_tls.client_spec()
    spec['tls']['ca_file'] = other_ca
    spec['connect_timeout'] = 2
    with pytest.raises(errors.ClusterUnreachableError) as info:
        _client.connect(spec)
    reason = info.value.failures[zk_tls.host_list[0]]
    assert 'TLS handshake failed' in reason and 'certificate' in reason and 'ca_file' in reason


def _other_ca(tmp_path):
    other_ca = str(tmp_path / 'other-ca.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
                    '-subj', '/CN=some-other-ca', '-keyout', str(tmp_path / 'other-ca.key'), '-out', other_ca],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return other_ca


def test_tls_checks_host_names_by_default(zk_cluster_factory, zk_path):
    """A server certificate issued for another host name is refused unless check_hostname is turned off."""
    cluster = zk_cluster_factory('tls-other-name', tls=True, tls_cert_host='zk.example.invalid')
    member = cluster.host_list[0]
    spec = dict(cluster.client_spec(), connect_timeout=3)
    assert 'check_hostname' not in spec['tls']      # the default
    with pytest.raises(errors.ClusterUnreachableError) as info:
        _client.connect(spec)
    reason = info.value.failures[member]
    assert 'host name mismatch' in reason and 'tls.check_hostname' in reason
    assert 'host name mismatch' in str(info.value)
    # Four-letter words over TLS follow the same rules.
    tls = _client.ClusterSpec.from_dict(spec).tls
    with pytest.raises(errors.ClusterUnreachableError) as info:
        _client.four_letter_word(member, 'srvr', tls=tls)
    assert 'host name mismatch' in str(info.value)
    # Turned off explicitly, the certificate is still verified against the CA, and both work.
    relaxed = dict(spec, tls=dict(spec['tls'], check_hostname=False))
    with _client.connected(relaxed) as client:
        client.create(zk_path, b'name not checked', makepath=True)
        assert client.get(zk_path)[0] == b'name not checked'
        assert _client.probe_capabilities(client).server_mode == 'standalone'
    assert 'Mode: standalone' in _client.four_letter_word(member, 'srvr', tls=_client.ClusterSpec.from_dict(relaxed).tls)
    assert list(_client.member_modes(relaxed).values()) == ['standalone']


def test_tls_host_name_check_passes_for_the_right_address(zk_tls):
    """The harness certificate carries an IP subjectAltName for the address clients use: checked and accepted."""
    spec = _client.ClusterSpec.from_dict(zk_tls.client_spec())
    assert spec.tls.check_hostname is True
    with _client.connected(spec) as client:
        assert client.exists('/') is not None
    assert 'Mode: standalone' in _client.four_letter_word(zk_tls.host_list[0], 'srvr', tls=spec.tls)


def test_tls_ca_file_is_the_only_trust_anchor(zk_tls, tmp_path, monkeypatch):
    """With ca_file, a server certificate signed by a CA not in it is refused even when the system trusts that CA."""
    # The system's trust store (OpenSSL reads SSL_CERT_FILE) now holds the CA that signed the server's certificate.
    monkeypatch.setenv('SSL_CERT_FILE', zk_tls.ca_file)
    monkeypatch.delenv('SSL_CERT_DIR', raising=False)
    system_trust = zk_tls.client_spec()
    del system_trust['tls']['ca_file']
    with _client.connected(system_trust) as client:      # no ca_file: the system's CAs are trusted
        assert client.exists('/') is not None
    only_other = dict(zk_tls.client_spec(), connect_timeout=2)
    only_other['tls']['ca_file'] = _other_ca(tmp_path)
    with pytest.raises(errors.ClusterUnreachableError) as info:
        _client.connect(only_other)
    reason = info.value.failures[zk_tls.host_list[0]]
    assert 'certificate was not accepted' in reason and 'only it is trusted' in reason
    with pytest.raises(errors.ClusterUnreachableError):
        _client.four_letter_word(zk_tls.host_list[0], 'srvr', tls=_client.ClusterSpec.from_dict(only_other).tls)


def test_tls_without_client_certificate(zk_tls):
    spec = zk_tls.client_spec()
    spec['tls'] = {'ca_file': zk_tls.ca_file}
    spec['connect_timeout'] = 2
    with pytest.raises(errors.ClusterUnreachableError) as info:
        _client.connect(spec)
    assert 'client certificate' in info.value.failures[zk_tls.host_list[0]]


def test_plain_client_on_tls_port(zk_tls):
    with pytest.raises(errors.ClusterUnreachableError) as info:
        _client.connect({'hosts': zk_tls.host_list, 'connect_timeout': 2})
    assert 'TLS' in info.value.failures[zk_tls.host_list[0]]


def test_capabilities_38(zk_standalone):
    with _client.connected(zk_standalone.client_spec()) as client:
        caps = _client.probe_capabilities(client)
        assert caps.multi_read is True
        assert caps.persistent_watches is True
        assert caps.server_version.startswith('3.8')
        assert caps.server_mode == 'standalone'
        assert caps.containers is None and caps.ttl is None
        assert client.connected


def test_capabilities_34(zk_34, zk_path):
    with _client.connected(zk_34.client_spec()) as client:
        caps = _client.probe_capabilities(client)
        assert caps.multi_read is False
        assert caps.persistent_watches is False
        assert caps.server_version.startswith('3.4.13')
        # The client still works after the refused probes.
        client.create(zk_path, b'still fine', makepath=True)
        assert client.get(zk_path)[0] == b'still fine'


def test_extended_types_probe(zk_ext, zk_standalone, zk_path):
    with _client.connected(zk_ext.client_spec()) as client:
        client.ensure_path(zk_path)
        caps = _client.probe_capabilities(client)
        found = _client.probe_extended_types(client, zk_path, caps)
        assert found['containers'] is True and found['ttl'] is True
        assert (caps.containers, caps.ttl) == (True, True)
        assert client.get_children(zk_path) == []
    with _client.connected(zk_standalone.client_spec()) as client:
        client.ensure_path(zk_path)
        found = _client.probe_extended_types(client, zk_path)
        assert found['containers'] is True and found['ttl'] is False
        assert 'extendedTypesEnabled' in found['reasons']['ttl']
        assert client.get_children(zk_path) == []
        with pytest.raises(errors.NoNodeError):
            _client.probe_extended_types(client, zk_path + '/missing')


def test_extended_types_probe_on_34(zk_34, zk_path):
    with _client.connected(zk_34.client_spec()) as client:
        client.ensure_path(zk_path)
        found = _client.probe_extended_types(client, zk_path)
        assert found == {'containers': False, 'ttl': False, 'reasons': found['reasons']}
        assert set(found['reasons']) == {'containers', 'ttl'}
        assert client.get_children(zk_path) == []


def test_translate_real_errors(zk_standalone, zk_path):
    cluster = 'standalone'
    with _client.connected(zk_standalone.client_spec()) as client:
        client.create(zk_path + '/child', b'v', makepath=True)
        with pytest.raises(errors.NoNodeError) as info:
            with _client.zk_errors(path=zk_path + '/nope', cluster=cluster):
                client.get(zk_path + '/nope')
        assert info.value.path == zk_path + '/nope'
        with pytest.raises(errors.NodeExistsError):
            with _client.zk_errors(path=zk_path, cluster=cluster):
                client.create(zk_path)
        with pytest.raises(errors.NotEmptyError):
            with _client.zk_errors(path=zk_path, cluster=cluster):
                client.delete(zk_path)
        with pytest.raises(errors.VersionConflictError):
            with _client.zk_errors(path=zk_path + '/child', cluster=cluster):
                client.set(zk_path + '/child', b'w', version=41)


def test_oversized_write_is_too_large(zk_standalone, zk_path):
    data = b'x' * (zk_standalone.jute_maxbuffer + 100)
    with _client.connected(zk_standalone.client_spec()) as client:
        client.ensure_path(zk_path)
        with pytest.raises(errors.TooLargeError) as info:
            with _client.zk_errors(path=zk_path + '/big', request_bytes=len(data), max_request_bytes=zk_standalone.jute_maxbuffer):
                client.create(zk_path + '/big', data)
        assert 'jute.maxbuffer' in str(info.value)
        # kazoo reconnects with the same session; nothing was written.
        deadline = time.monotonic() + 10
        while not client.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.exists(zk_path + '/big') is None
