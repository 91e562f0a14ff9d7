# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One way from a cluster registration to a connection: ``resolve(registration, credentials)``.

Modules, the sync daemons and the engine all resolve a registered cluster
here, into the dict ``_client.ClusterSpec.from_dict`` takes (secrets
included: never log or return it). ``cluster_spec`` makes that a
``ClusterSpec``; ``resolve_registered`` looks the registration up in the
control store first; ``migrator_acl`` is the ACL entry naming the identity
a connection authenticates as (the migration identity).

This is a private module of the zookeeper.migration collection; it may change
without notice.
"""

from ansible_collections.zookeeper.migration.plugins.module_utils._client import ClusterSpec, digest_id
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError, NoNodeError
from ansible_collections.zookeeper.migration.plugins.module_utils._records import normalize_cluster
from ansible_collections.zookeeper.migration.plugins.module_utils._credentials import CredentialStore


def resolve(registration, credentials=None):
    """A cluster registration plus its secrets -> the dict ``_client.ClusterSpec.from_dict`` takes.

    Returns ``{name, hosts, chroot, connect_timeout, session_timeout}`` plus
    ``tls: {enabled, ca_file, cert_file, key_file, verify, key_password}``
    when TLS is enabled and ``auth: {scheme, username, password, mechanism,
    service, principal}`` when the cluster authenticates (keys without a
    value left out). ``credentials`` is a CredentialStore (or a mapping
    accepted by it). The result holds secrets: never log or return it.
    """
    record = normalize_cluster(registration)
    if credentials is not None and not isinstance(credentials, CredentialStore):
        credentials = CredentialStore.from_mapping(credentials)
    out = {
        'name': record['name'],
        'hosts': list(record['hosts']),
        'chroot': record['chroot'],
        'connect_timeout': record['connect_timeout'],
        'session_timeout': record['session_timeout'],
    }
    if record['tls']['enabled']:
        tls = dict((k, v) for k, v in record['tls'].items() if k != 'credential' and v is not None)
        if record['tls']['credential']:
            if credentials is None:
                raise ConfigError('cluster %r: its tls.credential %r needs credentials' % (record['name'], record['tls']['credential']))
            tls['key_password'] = credentials.resolve(record['tls']['credential'], 'tls').key_password
        out['tls'] = tls
    auth = record['auth']
    if auth['scheme'] == 'none':
        return out
    if credentials is None:
        raise ConfigError('cluster %r uses %s auth with credential %r, but no credentials were given'
                          % (record['name'], auth['scheme'], auth['credential']))
    credential = credentials.resolve(auth['credential'], auth['scheme'])
    if auth['username'] and credential.username and auth['username'] != credential.username:
        raise ConfigError('cluster %r names user %r but its credential %r is for user %r'
                          % (record['name'], auth['username'], auth['credential'], credential.username))
    resolved = {'scheme': auth['scheme'], 'username': credential.username, 'password': credential.password}
    if auth['scheme'] == 'sasl':
        resolved.update(mechanism=credential.mechanism, service=credential.service, principal=credential.principal)
    out['auth'] = dict((k, v) for k, v in resolved.items() if v is not None)
    return out


def cluster_spec(registration, credentials=None):
    """The ``_client.ClusterSpec`` of a cluster registration plus its secrets."""
    return ClusterSpec.from_dict(resolve(registration, credentials), credentials=credentials)


def migrator_acl(connection):
    """ACL entries naming the identity of a resolved connection (the migration identity), or None when it has none.

    Digest: ``digest:user:base64(sha1(user:password))``; SASL: ``sasl:user``.
    Used where the migration grants itself access (``acl_mode: grant_migrator``,
    frozen nodes, control znodes on data clusters) and where it takes that grant away.
    """
    auth = (connection or {}).get('auth') or {}
    scheme = auth.get('scheme')
    if scheme == 'digest' and auth.get('username') and auth.get('password') is not None:
        return ((31, 'digest', digest_id(auth['username'], auth['password'])),)
    if scheme == 'sasl' and (auth.get('username') or auth.get('principal')):
        return ((31, 'sasl', auth.get('username') or auth.get('principal')),)
    return None


def resolve_registered(store, name, credentials, role):
    """``(ClusterSpec, migrator_acl)`` of the cluster registered as ``name`` in ``store`` (a ``ControlStore``).

    ``role`` (source, destination, cluster) words the ``NoNodeError`` raised
    when it is not registered.
    """
    record = store.get_cluster(name)
    if record is None:
        raise NoNodeError('the %s cluster %r is not registered in the control store at %s (register it with '
                          'zookeeper.migration.zk_cluster first)' % (role, name, store.root), path=store.cluster_path(name))
    connection = resolve(record, credentials)
    return ClusterSpec.from_dict(connection, credentials=credentials), migrator_acl(connection)
