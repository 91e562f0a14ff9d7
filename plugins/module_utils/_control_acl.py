# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the control plane calls ZooKeeper: kazoo errors translated for an operator, and the ACLs of the znodes it creates.

Control znodes (records, fences, journals) get the migration identity's ACL
and are never world-writable; world-readable only when asked
(``world_read``); an unauthenticated control session is refused unless
``allow_open_acl``. See docs/security.md.

This is a private module of the zookeeper.migration collection; it may change
without notice.
"""

import contextlib
import logging
import posixpath
import traceback

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    AuthFailedError,
    ClusterUnreachableError,
    ConfigError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    TooLargeError,
    UnsupportedByServerError,
    VersionConflictError,
    ZkMigrationError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._records import Fields
LOG = logging.getLogger('zookeeper_migration.control')

try:
    from kazoo import exceptions as kazoo_exceptions
    from kazoo.security import ACL, Id, OPEN_ACL_UNSAFE, Permissions
    HAS_KAZOO = True
    KAZOO_IMPORT_ERROR = None
except ImportError:
    HAS_KAZOO = False
    KAZOO_IMPORT_ERROR = traceback.format_exc()


def require_kazoo():
    if not HAS_KAZOO:
        raise ZkMigrationError('the kazoo Python library is required for the control plane: %s'
                               % (KAZOO_IMPORT_ERROR or 'not installed').strip().splitlines()[-1])


def translate_kazoo_error(exc, path=None, action=None):
    """Map a kazoo exception to the engine's error class, with an operator-readable message."""
    doing = (' while %s' % action) if action else ''
    where = (' at %s' % path) if path else ''
    name = type(exc).__name__
    if not HAS_KAZOO:
        return ZkMigrationError('%s%s%s' % (name, doing, where), path=path)
    kex = kazoo_exceptions
    if isinstance(exc, (kex.NoAuthError, kex.AuthFailedError)):
        return AuthFailedError('permission denied%s%s: the control client\'s identity may not do this '
                               '(the control root is protected; authenticate as the migration identity)' % (doing, where), path=path)
    if isinstance(exc, kex.NoNodeError):
        return NoNodeError('znode does not exist%s%s' % (doing, where), path=path)
    if isinstance(exc, kex.NodeExistsError):
        return NodeExistsError('znode exists already%s%s' % (doing, where), path=path)
    if isinstance(exc, kex.NotEmptyError):
        return NotEmptyError('znode still has children%s%s' % (doing, where), path=path)
    if isinstance(exc, kex.BadVersionError):
        return VersionConflictError('znode changed since it was read%s%s' % (doing, where), path=path)
    if isinstance(exc, kex.InvalidACLError):
        return ConfigError('the server refused the ACL%s%s (an "auth" ACL needs an authenticated client)' % (doing, where), path=path)
    if isinstance(exc, kex.UnimplementedError):
        return UnsupportedByServerError('the server does not support this operation%s%s' % (doing, where), path=path)
    if isinstance(exc, (kex.ConnectionLoss, kex.SessionExpiredError, kex.ConnectionClosedError, kex.OperationTimeoutError,
                        kex.SessionMovedError)):
        return ClusterUnreachableError('lost the connection to the control ensemble%s%s (%s)' % (doing, where, name), path=path)
    if isinstance(exc, kex.MarshallingError):
        return TooLargeError('request too large for the server%s%s' % (doing, where), path=path)
    return ZkMigrationError('ZooKeeper error %s%s%s' % (name, doing, where), path=path)


@contextlib.contextmanager
def zk_call(path=None, action=None):
    """Translate kazoo exceptions raised inside the block (engine errors pass through)."""
    try:
        yield
    except ZkMigrationError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        if HAS_KAZOO and isinstance(exc, kazoo_exceptions.KazooException):
            raise translate_kazoo_error(exc, path, action) from exc
        if type(exc).__name__ == 'KazooTimeoutError':  # the handler's own timeout, not a KazooException
            raise ClusterUnreachableError('the control ensemble did not answer in time%s%s'
                                          % ((' while %s' % action) if action else '', (' at %s' % path) if path else ''),
                                          path=path) from exc
        raise


def multi_failure(results):
    """Index and exception of the op that failed a multi (None if it succeeded).

    ZooKeeper answers a failed multi with the failing op's error and
    RolledBack / RuntimeInconsistency for every other op.
    """
    if not HAS_KAZOO:
        return None
    secondary = (kazoo_exceptions.RolledBackError, kazoo_exceptions.RuntimeInconsistency)
    for index, result in enumerate(results):
        if isinstance(result, Exception) and not isinstance(result, secondary):
            return index, result
    for index, result in enumerate(results):
        if isinstance(result, Exception):
            return index, result
    return None


# ---------------------------------------------------------------------------
# ACLs
# ---------------------------------------------------------------------------

_PERM_LETTERS = (('r', 'READ'), ('w', 'WRITE'), ('c', 'CREATE'), ('d', 'DELETE'), ('a', 'ADMIN'))


def _parse_perms(value, where):
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 31:
            raise ConfigError('%s: perms must be 0..31; got %r' % (where, value))
        return value
    if isinstance(value, str):
        if value.lower() == 'all':
            return Permissions.ALL
        perms = 0
        for letter in value.lower():
            names = dict(_PERM_LETTERS)
            if letter not in names:
                raise ConfigError('%s: perms letters are r, w, c, d, a (or "all"); got %r' % (where, value))
            perms |= getattr(Permissions, names[letter])
        return perms
    raise ConfigError('%s: perms must be a string like "rwcda"/"all" or an integer; got %r' % (where, value))


def parse_acl_option(acl):
    """Turn an ``acl`` option (kazoo ACLs, or dicts {scheme, id, perms}) into kazoo ACLs."""
    require_kazoo()
    if not isinstance(acl, (list, tuple)) or not acl:
        raise ConfigError('acl must be a non-empty list of {scheme, id, perms}')
    out = []
    for index, entry in enumerate(acl):
        where = 'acl[%d]' % index
        if isinstance(entry, ACL):
            out.append(entry)
            continue
        fields = Fields(entry, where)
        scheme = fields.get('scheme', 'str')
        ident = fields.get('id', 'str', default='', allow_empty=True)
        perms = _parse_perms(fields.get('perms', 'str' if isinstance(entry.get('perms'), str) else 'int', default='all'), where)
        fields.finish()
        out.append(ACL(perms, Id(scheme, ident)))
    return out


def acl_is_open(acl):
    """True if anyone (world:anyone) may change nodes carrying ``acl``."""
    for entry in acl:
        scheme, ident = entry.id.scheme, entry.id.id
        if scheme == 'world' and ident == 'anyone' and entry.perms & ~Permissions.READ:
            return True
    return False


def acl_to_list(acl):
    """kazoo ACLs (or (perms, scheme, id) tuples) -> JSON-friendly [{perms, scheme, id}]."""
    out = []
    for entry in acl or ():
        if isinstance(entry, (list, tuple)) and len(entry) == 3 and not hasattr(entry, 'id'):
            out.append({'perms': entry[0], 'scheme': entry[1], 'id': entry[2]})
        else:
            out.append({'perms': entry.perms, 'scheme': entry.id.scheme, 'id': entry.id.id})
    return out


def _client_is_authenticated(client):
    return bool(getattr(client, 'auth_data', None) or getattr(client, 'sasl_options', None) or getattr(client, 'use_ssl', False))


UNAUTHENTICATED_CONTROL = ('the control session is not authenticated, so the control store could only be created open '
                           '(world:anyone ALL): anyone who reaches the control ensemble could change or remove cluster '
                           'registrations, tasks and fences. Configure control.auth (digest or SASL; sync_daemon_control.auth '
                           'for the daemons), or set control.allow_open_acl: true to run an open control store knowingly')
REFUSED_AUTH_ACL = ('the server refused the control ACL (ALL for the identities this session authenticated as) at %s: '
                    'the session has no identity the server accepts in an ACL (for example TLS without a client '
                    'certificate the server maps to an x509 identity). Configure control.auth (digest or SASL), or set '
                    'control.allow_open_acl: true to create the control znodes open (world:anyone ALL) knowingly')


def control_acl(client, identity=None, acl=None, world_readable=False, allow_open_acl=False):
    """The ACL put on every znode the control plane creates, and whether it is open.

    - ``acl`` given: used as is (see ``parse_acl_option``).
    - ``identity`` given (``"scheme:id"``, e.g. ``"digest:migrator:<base64 sha1>"``,
      ``"sasl:migrator@REALM"``, ``"x509:CN=migrator"``): ALL for that identity.
    - otherwise, for an authenticated client (digest, SASL or TLS): ALL for the
      identities the session authenticated with (ZooKeeper's ``auth`` scheme, so
      no password is needed to build it).
    - an unauthenticated client: ``ConfigError`` (the store fails closed),
      unless ``allow_open_acl``: then open (world ALL) and the open flag set.
    ``world_readable`` adds world READ. Off by default: the baseline lists
    every synced path and the saved source ACLs of a cutover hold digest
    hashes that ZooKeeper itself shows only to clients with ADMIN.
    Returns ``(acl_list, is_open)``.
    """
    require_kazoo()
    if acl is not None:
        parsed = parse_acl_option(acl)
        return parsed, acl_is_open(parsed)
    if identity is not None:
        if not isinstance(identity, str) or ':' not in identity:
            raise ConfigError('identity must be "scheme:id" (e.g. "digest:migrator:<hash>" or "sasl:migrator"); got %r' % (identity,))
        scheme, ident = identity.split(':', 1)
        entries = [ACL(Permissions.ALL, Id(scheme, ident))]
    elif _client_is_authenticated(client):
        entries = [ACL(Permissions.ALL, Id('auth', ''))]
    elif allow_open_acl:
        return list(OPEN_ACL_UNSAFE), True
    else:
        raise ConfigError(UNAUTHENTICATED_CONTROL)
    if world_readable:
        entries.append(ACL(Permissions.READ, Id('world', 'anyone')))
    return entries, False


def data_cluster_acl(client, acl=None):
    """The ACL of the migration's own znodes on a data cluster (fences, journals): the migration identity only.

    ALL for the identities the session authenticated as (no world READ); on a
    cluster the migration reaches without authentication, open (world ALL),
    the only ACL such a session can create and still change: such a cluster's
    data is open to anyone anyway. Returns ``(acl_list, is_open)``.
    """
    return control_acl(client, acl=acl, world_readable=False, allow_open_acl=True)


OPEN_ROOT_WARNING = ('the control root %s is open: the control client is not authenticated, so anyone who can reach '
                     'the control ensemble can change cluster registrations and tasks (control.allow_open_acl is set). '
                     'Configure digest or SASL auth (or an explicit acl) for the control ensemble.')


def world_access(acl, world_read=False):
    """The permissions ``acl`` grants world:anyone beyond what ``world_read`` allows (READ), as letters; '' when none."""
    allowed = Permissions.READ if world_read else 0
    perms = 0
    for entry in acl or ():
        if entry.id.scheme == 'world' and entry.id.id == 'anyone':
            perms |= entry.perms & ~allowed
    return ''.join(letter for letter, name in _PERM_LETTERS if perms & getattr(Permissions, name))


class AclCreator(object):
    """Creates znodes with the control ACL. When the server refuses an ``auth``
    ACL (a TLS session without an x509 identity), it switches to an open ACL
    only with ``allow_open_acl``; otherwise that is an ``AuthFailedError``."""

    def __init__(self, client, identity=None, acl=None, world_readable=False, allow_open_acl=False):
        self.client = client
        self.acl, self.open = control_acl(client, identity=identity, acl=acl, world_readable=world_readable,
                                          allow_open_acl=allow_open_acl)
        self._fallback_allowed = acl is None and identity is None
        self._allow_open = allow_open_acl
        self.warnings = []

    def fall_back_open(self, path):
        """After the server refused our ``auth`` ACL: switch to an open ACL if allowed; True if switched.

        Raises ``AuthFailedError`` when the ACL was ours to choose but an open one is not allowed.
        """
        if not self._fallback_allowed or self.open:
            return False
        if not self._allow_open:
            raise AuthFailedError(REFUSED_AUTH_ACL % path, path=path)
        LOG.warning('the server refused an "auth" ACL at %s (the session has no authenticated identity): '
                    'creating control znodes open (allow_open_acl is set)', path)
        self.acl, self.open = list(OPEN_ACL_UNSAFE), True
        return True

    def ensure_parents(self, path):
        """Create the missing ancestors of ``path`` with this ACL (kazoo's ``ensure_path`` would create them open)."""
        parent = posixpath.dirname(path)
        missing = []
        while parent not in ('/', '') and self.client.exists(parent) is None:
            missing.append(parent)
            parent = posixpath.dirname(parent)
        for ancestor in reversed(missing):
            try:
                self.create(ancestor)
            except kazoo_exceptions.NodeExistsError:
                pass

    def create(self, path, value=b'', ephemeral=False, sequence=False, makepath=False):
        """``client.create`` with the control ACL."""
        try:
            return self.client.create(path, value, acl=self.acl, ephemeral=ephemeral, sequence=sequence, makepath=makepath)
        except kazoo_exceptions.InvalidACLError:
            if not self.fall_back_open(path):
                raise
            return self.client.create(path, value, acl=self.acl, ephemeral=ephemeral, sequence=sequence, makepath=makepath)

    def transaction_create(self, txn, path, value=b''):
        """Add a create with the control ACL to a kazoo transaction."""
        txn.create(path, value, acl=self.acl)
