# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control plane: cluster registry, task specs and status, daemons,
cutover records, fencing, elections and the credentials model.

This is a private module of the zookeeper.migration collection; it may change
without notice. It holds plain functions and small classes (no AnsibleModule):
the modules and the sync daemon both use it. The record layout and schema are
documented in ``docs/control-plane.md``; the credentials file in
``docs/security.md``.

Layout under the control root (default ``/zookeeper-migration``) on the
control ensemble::

    <root>                                  marker record (schema_version, kind)
    <root>/clusters/<name>                  cluster registration (no secrets)
    <root>/tasks                            its data version serialises task writes
    <root>/tasks/<name>                     task spec
    <root>/tasks/<name>/status              written by the task's leader
    <root>/tasks/<name>/election            kazoo lock contenders (one leader per task)
    <root>/tasks/<name>/baseline            manifest; children hold the chunks
    <root>/tasks/<name>/cutover             cutover record; children acl-NNNNNNNNNN
                                            hold the saved source ACLs in chunks
    <root>/daemons/<id>                     ephemeral: live daemons
    <root>/fence/<task>                     on every data cluster: the fence epoch

Every record is JSON with ``schema_version``; it is validated when written and
when read. A record written by a newer collection (higher schema_version) is
refused with SchemaError rather than misread.
"""

import binascii
import contextlib
import copy
import errno
import hashlib
import json
import logging
import os
import posixpath
import random
import re
import socket
import stat as stat_module
import threading
import time
import traceback
import zlib
from collections import namedtuple

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    AuthFailedError,
    ClusterUnreachableError,
    ConfigError,
    FencedError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    SchemaError,
    TooLargeError,
    UnsupportedByServerError,
    VersionConflictError,
    ZkMigrationError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._counters import DEFAULT_COUNTERS, normalize_counters

try:
    from kazoo import exceptions as kazoo_exceptions
    from kazoo.protocol.serialization import CheckVersion
    from kazoo.protocol.states import KazooState
    from kazoo.recipe.lock import Lock as KazooLock
    from kazoo.security import ACL, Id, OPEN_ACL_UNSAFE, Permissions
    HAS_KAZOO = True
    KAZOO_IMPORT_ERROR = None
except ImportError:
    HAS_KAZOO = False
    KAZOO_IMPORT_ERROR = traceback.format_exc()
    KazooLock = object  # lets the module import (and be documented) without kazoo

try:
    import yaml
    HAS_YAML = True
except ImportError:
    HAS_YAML = False


LOG = logging.getLogger('zookeeper_migration.control')

SCHEMA_VERSION = 1
DEFAULT_ROOT = '/zookeeper-migration'
#: Largest record or chunk written into one znode. Half of ZooKeeper's default
#: jute.maxbuffer (0xfffff): a request near the limit is refused (the server
#: drops the connection), and managed services keep the default.
DEFAULT_MAX_NODE_BYTES = 512 * 1024
#: Compare-and-set retries before giving up (each retry re-reads the record).
DEFAULT_CAS_RETRIES = 64

CLUSTERS = 'clusters'
TASKS = 'tasks'
DAEMONS = 'daemons'
FENCE = 'fence'
JOURNAL = 'journal'
STATUS = 'status'
ELECTION = 'election'
BASELINE = 'baseline'
CUTOVER = 'cutover'
SAVED_ACL_PREFIX = 'acl-'
#: Saved-ACL chunk prefixes per cluster side: the source's (a cutover's freeze) and the destination's (a rollback's).
SAVED_ACL_PREFIXES = {'source': SAVED_ACL_PREFIX, 'destination': 'dacl-'}
ROOT_KIND = 'zookeeper_migration_control_root'

MODES = ('one_way', 'bidirectional')
INITIAL_POLICIES = ('source_wins', 'union')
ACL_MODES = ('verbatim', 'grant_migrator')
CONFLICT_POLICIES = ('source_wins', 'destination_wins', 'newest')
NODE_TYPES = ('container', 'ttl')
TASK_STATES = ('running', 'paused', 'stopped')
DIRECTIONS_AFTER_CUTOVER = ('none', 'destination_to_source')
PHASES = ('initial_sync', 'streaming', 'paused', 'stopped', 'error', 'cut_over')
CUTOVER_STATES = ('started', 'frozen', 'drained', 'verified', 'completed', 'rolling_back', 'rolled_back', 'aborted')
AUTH_SCHEMES = ('none', 'digest', 'sasl')
CREDENTIAL_TYPES = ('digest', 'sasl', 'tls')
SASL_MECHANISMS = ('DIGEST-MD5', 'GSSAPI')
#: ZooKeeper's largest TTL (ms): the TTL is kept in 40 bits of the ephemeralOwner.
MAX_TTL_MS = (1 << 40) - 1

TASK_DEFAULTS = {
    'mode': 'one_way',
    'exclude': [],
    'initial': 'source_wins',
    'prune': False,
    'sync_acl': True,
    'acl_mode': 'verbatim',
    'conflict': 'source_wins',
    'node_types': [],
    'max_write_rate': 0,
    'counters': DEFAULT_COUNTERS,
    'state': 'running',
    'direction_after_cutover': 'none',
}

_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$')
_LOCK_NODE_RE = re.compile(r'__lock__(-?\d{10})$')
_SECRET_KEY_RE = re.compile(r'pass|secret|token|private', re.IGNORECASE)
_REQUIRED = object()

PutResult = namedtuple('PutResult', ['changed', 'before', 'after'])
PutResult.__doc__ = """Outcome of a put, update or delete: ``changed`` and the record ``before``/``after`` (None where absent)."""


# ---------------------------------------------------------------------------
# Names, paths and hosts
# ---------------------------------------------------------------------------

def check_name(value, what, error=ConfigError):
    """Return ``value`` if it is a usable record name (one znode name), else raise ``error``."""
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise error('%s must be 1-128 characters of letters, digits, ".", "_" or "-", starting with a letter or digit; got %r'
                    % (what, value))
    return value


def normalize_path(value, what, error=ConfigError):
    """Return the canonical form of an absolute znode path, or raise ``error`` naming ``what``.

    A trailing slash is dropped; empty, ``.`` and ``..`` components and
    control characters are refused (ZooKeeper refuses them too).
    """
    if not isinstance(value, str) or not value.startswith('/'):
        raise error('%s must be an absolute znode path starting with "/"; got %r' % (what, value))
    if value != '/' and value.endswith('/'):
        value = value.rstrip('/') or '/'
    if value == '/':
        return value
    for part in value[1:].split('/'):
        if part in ('', '.', '..'):
            raise error('%s must not contain empty, "." or ".." components; got %r' % (what, value))
    if any(ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f for ch in value):
        raise error('%s must not contain control characters; got %r' % (what, value))
    return value


def path_is_under(path, ancestor):
    """True if ``path`` equals ``ancestor`` or lies below it."""
    if ancestor == '/':
        return True
    return path == ancestor or path.startswith(ancestor + '/')


def paths_overlap(first, second):
    """True if one path equals the other or is its ancestor."""
    return path_is_under(first, second) or path_is_under(second, first)


def join_path(*parts):
    """Join znode path components (``join_path('/a', 'b')`` -> ``/a/b``)."""
    return posixpath.join(*parts)


def normalize_root(root):
    """Validate the control root: absolute, not ``/``, not under ``/zookeeper``."""
    root = normalize_path(root, 'control root')
    if root == '/':
        raise ConfigError('control root must not be "/": it needs a subtree of its own')
    if path_is_under(root, '/zookeeper'):
        raise ConfigError('control root must not be under /zookeeper (reserved by ZooKeeper); got %r' % root)
    return root


def _normalize_host(value, what):
    if not isinstance(value, str) or not value.strip():
        raise ConfigError('%s must be a non-empty "host:port" string' % what)
    value = value.strip()
    if any(ch.isspace() for ch in value) or '/' in value or '@' in value or ',' in value:
        raise ConfigError('%s must be one "host:port" (a chroot goes in chroot, credentials in a credential); got %r'
                          % (what, value))
    if value.startswith('['):
        host, sep, rest = value[1:].partition(']')
        if not sep or not host:
            raise ConfigError('%s: bad IPv6 address %r (use "[addr]:port")' % (what, value))
        port = rest[1:] if rest.startswith(':') else ('' if not rest else None)
        host = '[%s]' % host
    else:
        host, sep, port = value.rpartition(':')
        if not sep:
            host, port = value, ''
        elif ':' in host:
            raise ConfigError('%s: write IPv6 addresses as "[addr]:port"; got %r' % (what, value))
    if port is None or (port and (not port.isdigit() or not 0 < int(port) < 65536)):
        raise ConfigError('%s: bad port in %r' % (what, value))
    return '%s:%s' % (host, port or '2181')


def _host_key(host):
    """Host identity for comparing registrations: lower-cased, localhost folded to 127.0.0.1."""
    name, _sep, port = host.rpartition(':')
    name = name.lower()
    if name in ('localhost', 'localhost.localdomain', 'ip6-localhost'):
        name = '127.0.0.1'
    return '%s:%s' % (name, port)


def same_ensemble(first, second):
    """Which members two cluster registrations share (empty set: different ensembles).

    Two registrations of one ensemble may list different subsets of its
    members, so one shared ``host:port`` is enough. A load balancer in front of
    an ensemble cannot be recognised this way.
    """
    return set(_host_key(h) for h in first['hosts']) & set(_host_key(h) for h in second['hosts'])


# ---------------------------------------------------------------------------
# Field validation
# ---------------------------------------------------------------------------

class _Fields(object):
    """Reads fields of one mapping with type checks; ``finish()`` refuses unknown keys.

    Messages name the field (``where.field``) and, for non-secret fields, the
    offending value. ``secret_safe`` suppresses values in messages entirely.
    """

    def __init__(self, data, where, error=ConfigError, secret_safe=False):
        if not isinstance(data, dict):
            raise error('%s must be a mapping, got %s' % (where, type(data).__name__))
        self.data = data
        self.where = where
        self.error = error
        self.secret_safe = secret_safe
        self.seen = set()

    def _show(self, value):
        return '' if self.secret_safe else '; got %r' % (value,)

    def fail(self, key, message, value=None, show=True):
        """Raise the configured error about field ``key``."""
        tail = self._show(value) if show else ''
        raise self.error('%s: field %r %s%s' % (self.where, key, message, tail))

    def get(self, key, kind, default=_REQUIRED, choices=None, minimum=None, maximum=None, nullable=False, allow_empty=False):
        """Return field ``key`` checked against ``kind`` (str, bool, int, number, list, dict)."""
        self.seen.add(key)
        if key not in self.data or (self.data[key] is None and not nullable):
            if default is _REQUIRED:
                raise self.error('%s: field %r is required' % (self.where, key))
            return copy.deepcopy(default)
        value = self.data[key]
        if value is None:
            return None
        checks = {
            'str': lambda v: isinstance(v, str),
            'bool': lambda v: isinstance(v, bool),
            'int': lambda v: isinstance(v, int) and not isinstance(v, bool),
            'number': lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            'list': lambda v: isinstance(v, (list, tuple)),
            'dict': lambda v: isinstance(v, dict),
        }
        names = {'str': 'a string', 'bool': 'a boolean (true/false)', 'int': 'an integer', 'number': 'a number',
                 'list': 'a list', 'dict': 'a mapping'}
        if not checks[kind](value):
            self.fail(key, 'must be %s' % names[kind], value)
        if kind == 'str' and not value and not allow_empty:
            self.fail(key, 'must not be empty', show=False)
        if choices is not None and value not in choices:
            self.fail(key, 'must be one of %s' % ', '.join(choices), value)
        if minimum is not None and value < minimum:
            self.fail(key, 'must be at least %s' % minimum, value)
        if maximum is not None and value > maximum:
            self.fail(key, 'must be at most %s' % maximum, value)
        if kind == 'list':
            value = list(value)
        return value

    def finish(self):
        """Refuse keys that were not read: typos must not pass silently."""
        unknown = sorted(set(self.data) - self.seen, key=str)
        for key in unknown:
            if isinstance(key, str) and _SECRET_KEY_RE.search(key) and not self.secret_safe:
                raise self.error('%s: field %r looks like a secret; secrets are never stored in the control store: '
                                 'put them in the credentials (file or no_log option) and name the credential instead'
                                 % (self.where, key))
        if unknown:
            raise self.error('%s: unknown field%s %s (allowed: %s)' % (
                self.where, 's' if len(unknown) > 1 else '', ', '.join(repr(k) for k in unknown),
                ', '.join(sorted(self.seen))))


def _schema_version(fields):
    version = fields.get('schema_version', 'int', default=SCHEMA_VERSION)
    if version > SCHEMA_VERSION:
        raise SchemaError('%s has schema_version %d, newer than the %d this collection understands: '
                          'upgrade zookeeper.migration' % (fields.where, version, SCHEMA_VERSION))
    if version < 1:
        raise fields.error('%s: schema_version must be >= 1; got %r' % (fields.where, version))
    return SCHEMA_VERSION


def _json_value(value, where, error):
    """Check that ``value`` is plain JSON (for free-form ``details`` fields)."""
    try:
        json.dumps(value, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise error('%s must be plain JSON data: %s' % (where, exc))
    return value


# ---------------------------------------------------------------------------
# Record normalizers (user input -> canonical record). They raise ConfigError;
# the store turns that into SchemaError for records read from ZooKeeper.
# ---------------------------------------------------------------------------

def normalize_cluster(record, error=ConfigError):
    """Validate a cluster registration and return it canonical, defaults filled.

    Fields: ``name``, ``hosts`` (list of ``host:port`` or a connect string),
    ``chroot``, ``connect_timeout`` and ``session_timeout`` (seconds),
    ``tls`` {enabled, ca_file, cert_file, key_file, verify, check_hostname (default: verify), credential},
    ``auth`` {scheme: none|digest|sasl, username, credential}, ``description``,
    ``admin_port`` (the members' AdminServer port, read where four-letter words are not whitelisted).
    Never a secret: a key that looks like one is refused with a pointer to
    credentials.
    """
    name = record.get('name') if isinstance(record, dict) else None
    where = 'cluster %r' % name if isinstance(name, str) else 'cluster registration'
    fields = _Fields(record, where, error)
    out = {'schema_version': _schema_version(fields)}
    out['name'] = check_name(fields.get('name', 'str'), '%s: field \'name\'' % where, error)
    hosts = fields.get('hosts', 'list' if isinstance(record.get('hosts'), (list, tuple)) else 'str')
    if isinstance(hosts, str):
        hosts = hosts.split(',')
    if not hosts:
        raise error('%s: field \'hosts\' must list at least one "host:port"' % where)
    normalized = []
    for index, host in enumerate(hosts):
        try:
            host = _normalize_host(host, '%s: hosts[%d]' % (where, index))
        except ConfigError as exc:
            raise error(exc.message)
        if host not in normalized:
            normalized.append(host)
    out['hosts'] = normalized
    chroot = fields.get('chroot', 'str', default=None, nullable=True)
    if chroot is not None:
        chroot = normalize_path(chroot, '%s: field \'chroot\'' % where, error)
        if chroot == '/':
            chroot = None
    out['chroot'] = chroot
    out['connect_timeout'] = float(fields.get('connect_timeout', 'number', default=10.0, minimum=0.1))
    out['session_timeout'] = float(fields.get('session_timeout', 'number', default=30.0, minimum=0.1))
    out['description'] = fields.get('description', 'str', default=None, nullable=True)
    out['admin_port'] = fields.get('admin_port', 'int', default=None, nullable=True, minimum=1, maximum=65535)

    tls_in = fields.get('tls', 'dict', default={}, nullable=True) or {}
    tls_fields = _Fields(tls_in, '%s: tls' % where, error)
    tls = {
        'enabled': tls_fields.get('enabled', 'bool', default=False),
        'ca_file': tls_fields.get('ca_file', 'str', default=None, nullable=True),
        'cert_file': tls_fields.get('cert_file', 'str', default=None, nullable=True),
        'key_file': tls_fields.get('key_file', 'str', default=None, nullable=True),
        'verify': tls_fields.get('verify', 'bool', default=True),
        'check_hostname': tls_fields.get('check_hostname', 'bool', default=None, nullable=True),
        'credential': tls_fields.get('credential', 'str', default=None, nullable=True),
    }
    tls_fields.finish()
    if tls['check_hostname'] is None:
        # Host names are checked wherever certificates are verified, unless a registration turns it off.
        tls['check_hostname'] = tls['verify']
    elif tls['check_hostname'] and not tls['verify']:
        raise error('%s: tls.check_hostname needs tls.verify (a host name is only checked in a verified certificate)' % where)
    if bool(tls['cert_file']) != bool(tls['key_file']):
        raise error('%s: tls.cert_file and tls.key_file go together (a client certificate needs its key)' % where)
    if not tls['enabled'] and any(tls[k] for k in ('ca_file', 'cert_file', 'key_file', 'credential')):
        raise error('%s: tls settings are given but tls.enabled is false' % where)
    if tls['credential'] is not None:
        check_name(tls['credential'], '%s: tls.credential' % where, error)
    out['tls'] = tls

    auth_in = fields.get('auth', 'dict', default={}, nullable=True) or {}
    auth_fields = _Fields(auth_in, '%s: auth' % where, error)
    auth = {
        'scheme': auth_fields.get('scheme', 'str', default='none', choices=AUTH_SCHEMES),
        'username': auth_fields.get('username', 'str', default=None, nullable=True),
        'credential': auth_fields.get('credential', 'str', default=None, nullable=True),
    }
    auth_fields.finish()
    if auth['scheme'] == 'none':
        if auth['username'] or auth['credential']:
            raise error('%s: auth.username/auth.credential need auth.scheme digest or sasl' % where)
    else:
        if not auth['credential']:
            raise error('%s: auth.scheme %s needs auth.credential, the name of the credential holding the secret'
                        % (where, auth['scheme']))
        check_name(auth['credential'], '%s: auth.credential' % where, error)
    out['auth'] = auth
    fields.finish()
    return out


def _normalize_node_type(entry, where, error):
    fields = _Fields(entry, where, error)
    out = {
        'pattern': fields.get('pattern', 'str'),
        'type': fields.get('type', 'str', choices=NODE_TYPES),
        'ttl_ms': fields.get('ttl_ms', 'int', default=None, nullable=True, minimum=1, maximum=MAX_TTL_MS),
    }
    fields.finish()
    if out['type'] == 'ttl' and out['ttl_ms'] is None:
        raise error('%s: type ttl needs ttl_ms (milliseconds, 1..%d)' % (where, MAX_TTL_MS))
    if out['type'] == 'container' and out['ttl_ms'] is not None:
        raise error('%s: ttl_ms applies only to type ttl' % where)
    return out


def normalize_task_spec(spec, root=DEFAULT_ROOT, error=ConfigError):
    """Validate a task spec and return it canonical with every default filled.

    Checks each field on its own (a ConfigError names the field) and the
    rules that need no other record: source != destination by name, paths
    absolute and not overlapping each other, none under ``/zookeeper`` or the
    control root. Rules across tasks and clusters are in ``check_task_placement``.
    """
    name = spec.get('name') if isinstance(spec, dict) else None
    where = 'task %r' % name if isinstance(name, str) else 'task spec'
    fields = _Fields(spec, where, error)
    out = {'schema_version': _schema_version(fields)}
    out['name'] = check_name(fields.get('name', 'str'), '%s: field \'name\'' % where, error)
    out['source'] = check_name(fields.get('source', 'str'), '%s: field \'source\'' % where, error)
    out['destination'] = check_name(fields.get('destination', 'str'), '%s: field \'destination\'' % where, error)
    if out['source'] == out['destination']:
        raise error('%s: field \'destination\' names the source cluster %r: a task copies between two different clusters'
                    % (where, out['source']))
    out['mode'] = fields.get('mode', 'str', default=TASK_DEFAULTS['mode'], choices=MODES)

    raw_paths = fields.get('paths', 'list')
    if not raw_paths:
        raise error('%s: field \'paths\' must list at least one absolute path' % where)
    paths = []
    for index, raw in enumerate(raw_paths):
        path = normalize_path(raw, '%s: paths[%d]' % (where, index), error)
        if path_is_under(path, '/zookeeper') and path != '/':
            raise error('%s: paths[%d] %r is under /zookeeper, which ZooKeeper reserves and is never synced'
                        % (where, index, path))
        if path != '/' and path_is_under(path, root):
            raise error('%s: paths[%d] %r is under the control root %s, which is never synced' % (where, index, path, root))
        for other in paths:
            if paths_overlap(path, other):
                raise error('%s: paths[%d] %r overlaps %r in the same task: list each subtree once' % (where, index, path, other))
        paths.append(path)
    out['paths'] = paths

    excludes = fields.get('exclude', 'list', default=TASK_DEFAULTS['exclude'])
    for index, pattern in enumerate(excludes):
        if not isinstance(pattern, str) or not pattern:
            raise error('%s: exclude[%d] must be a non-empty glob string; got %r' % (where, index, pattern))
    out['exclude'] = excludes
    out['initial'] = fields.get('initial', 'str', default=TASK_DEFAULTS['initial'], choices=INITIAL_POLICIES)
    out['prune'] = fields.get('prune', 'bool', default=TASK_DEFAULTS['prune'])
    out['sync_acl'] = fields.get('sync_acl', 'bool', default=TASK_DEFAULTS['sync_acl'])
    out['acl_mode'] = fields.get('acl_mode', 'str', default=TASK_DEFAULTS['acl_mode'], choices=ACL_MODES)
    out['conflict'] = fields.get('conflict', 'str', default=TASK_DEFAULTS['conflict'], choices=CONFLICT_POLICIES)
    out['node_types'] = [
        _normalize_node_type(entry, '%s: node_types[%d]' % (where, index), error)
        for index, entry in enumerate(fields.get('node_types', 'list', default=TASK_DEFAULTS['node_types']))
    ]
    out['max_write_rate'] = fields.get('max_write_rate', 'int', default=TASK_DEFAULTS['max_write_rate'], minimum=0)
    fields.seen.add('counters')
    out['counters'] = normalize_counters(spec.get('counters'), "%s: field 'counters'" % where, error)
    out['state'] = fields.get('state', 'str', default=TASK_DEFAULTS['state'], choices=TASK_STATES)
    out['direction_after_cutover'] = fields.get('direction_after_cutover', 'str', default=TASK_DEFAULTS['direction_after_cutover'],
                                                choices=DIRECTIONS_AFTER_CUTOVER)
    fields.finish()
    return out


def task_defaults():
    """The defaults ``normalize_task_spec`` fills in (a fresh copy)."""
    return copy.deepcopy(TASK_DEFAULTS)


def _server_path(cluster, path):
    """The path as the server sees it (the cluster's chroot applied)."""
    chroot = cluster.get('chroot') if cluster else None
    if not chroot:
        return path
    return chroot if path == '/' else chroot + path


def check_task_placement(spec, clusters, other_tasks):
    """Refuse a normalized task that conflicts with the registry. Raises ConfigError.

    ``clusters`` maps names to cluster records, ``other_tasks`` maps names to
    the other tasks' specs. Refused: an unregistered source or destination;
    source and destination resolving to one ensemble with overlapping trees
    (same members, chroot applied); a path equal to, or an ancestor or
    descendant of, a path of another task on a shared cluster (same name or
    same ensemble) — two tasks writing one subtree would fight each other.
    """
    where = 'task %r' % spec['name']
    for field in ('source', 'destination'):
        if spec[field] not in clusters:
            raise ConfigError('%s: %s cluster %r is not registered (register it with zk_cluster first)'
                              % (where, field, spec[field]))
    source, destination = clusters[spec['source']], clusters[spec['destination']]
    shared = same_ensemble(source, destination)
    if shared:
        for path in spec['paths']:
            src_path, dst_path = _server_path(source, path), _server_path(destination, path)
            if paths_overlap(src_path, dst_path):
                raise ConfigError('%s: source %r and destination %r are the same ensemble (shared member %s) and path %r '
                                  'resolves to overlapping server paths %s and %s'
                                  % (where, spec['source'], spec['destination'], sorted(shared)[0], path, src_path, dst_path))
    mine = (spec['source'], spec['destination'])
    for other_name in sorted(other_tasks):
        other = other_tasks[other_name]
        if other_name == spec['name']:
            continue
        for mine_name in mine:
            for theirs_name in (other['source'], other['destination']):
                mine_cluster, theirs_cluster = clusters.get(mine_name), clusters.get(theirs_name)
                if mine_name != theirs_name and not (mine_cluster and theirs_cluster and same_ensemble(mine_cluster, theirs_cluster)):
                    continue
                for path in spec['paths']:
                    for other_path in other['paths']:
                        if paths_overlap(_server_path(mine_cluster, path), _server_path(theirs_cluster, other_path)):
                            raise ConfigError('%s: path %r overlaps path %r of task %r on cluster %s: two tasks must not '
                                              'sync the same subtree (or one inside the other)'
                                              % (where, path, other_path, other_name,
                                                 mine_name if mine_name == theirs_name else '%s/%s' % (mine_name, theirs_name)))


def normalize_status(status, error=ConfigError):
    """Validate a task status record (written by the task's leader) and fill defaults."""
    fields = _Fields(status, 'task status', error)
    out = {'schema_version': _schema_version(fields)}
    out['phase'] = fields.get('phase', 'str', choices=PHASES)
    out['nodes_done'] = fields.get('nodes_done', 'int', default=0, minimum=0)
    out['nodes_total'] = fields.get('nodes_total', 'int', default=None, nullable=True, minimum=0)
    out['eta_seconds'] = fields.get('eta_seconds', 'number', default=None, nullable=True, minimum=0)
    out['events_source_to_destination'] = fields.get('events_source_to_destination', 'int', default=0, minimum=0)
    out['events_destination_to_source'] = fields.get('events_destination_to_source', 'int', default=0, minimum=0)
    out['conflicts'] = fields.get('conflicts', 'int', default=0, minimum=0)
    out['lag_ms'] = fields.get('lag_ms', 'number', default=None, nullable=True, minimum=0)
    out['last_error'] = fields.get('last_error', 'str', default=None, nullable=True)
    out['heartbeat'] = float(fields.get('heartbeat', 'number', minimum=0))
    out['leader'] = fields.get('leader', 'str', default=None, nullable=True)
    out['epoch'] = fields.get('epoch', 'int', default=None, nullable=True)
    out['details'] = _json_value(fields.get('details', 'dict', default={}), 'task status: details', error)
    fields.finish()
    return out


def normalize_daemon_info(info, error=ConfigError):
    """Validate a daemon registration record and fill defaults."""
    fields = _Fields(info, 'daemon registration', error)
    out = {'schema_version': _schema_version(fields)}
    out['daemon_id'] = check_name(fields.get('daemon_id', 'str'), 'daemon registration: daemon_id', error)
    out['hostname'] = fields.get('hostname', 'str', default=None, nullable=True)
    out['pid'] = fields.get('pid', 'int', default=None, nullable=True, minimum=0)
    out['version'] = fields.get('version', 'str', default=None, nullable=True)
    out['metrics_address'] = fields.get('metrics_address', 'str', default=None, nullable=True)
    out['health_address'] = fields.get('health_address', 'str', default=None, nullable=True)
    out['started_at'] = fields.get('started_at', 'number', default=None, nullable=True)
    out['registered_at'] = fields.get('registered_at', 'number', default=None, nullable=True)
    out['tasks'] = fields.get('tasks', 'list', default=[])
    if not all(isinstance(task, str) for task in out['tasks']):
        raise error('daemon registration: tasks must be a list of task names')
    out['details'] = _json_value(fields.get('details', 'dict', default={}), 'daemon registration: details', error)
    fields.finish()
    return out


def normalize_cutover(record, error=ConfigError):
    """Validate a cutover record and fill defaults."""
    fields = _Fields(record, 'cutover record', error)
    out = {'schema_version': _schema_version(fields)}
    out['task'] = check_name(fields.get('task', 'str'), 'cutover record: task', error)
    out['state'] = fields.get('state', 'str', choices=CUTOVER_STATES)
    out['started_at'] = fields.get('started_at', 'number', default=None, nullable=True)
    out['updated_at'] = fields.get('updated_at', 'number', default=None, nullable=True)
    out['completed_at'] = fields.get('completed_at', 'number', default=None, nullable=True)
    out['source_frozen'] = fields.get('source_frozen', 'bool', default=False)
    out['direction_after_cutover'] = fields.get('direction_after_cutover', 'str', default='none', choices=DIRECTIONS_AFTER_CUTOVER)
    out['verify'] = _json_value(fields.get('verify', 'dict', default=None, nullable=True), 'cutover record: verify', error)
    out['last_error'] = fields.get('last_error', 'str', default=None, nullable=True)
    out['details'] = _json_value(fields.get('details', 'dict', default={}), 'cutover record: details', error)
    fields.finish()
    return out


def _normalize_root_marker(record, error=ConfigError):
    fields = _Fields(record, 'control root marker', error)
    out = {'schema_version': _schema_version(fields)}
    out['kind'] = fields.get('kind', 'str')
    if out['kind'] != ROOT_KIND:
        raise error('control root marker: kind is %r, not %r: this znode is not a zookeeper.migration control root'
                    % (out['kind'], ROOT_KIND))
    out['created_at'] = fields.get('created_at', 'number', default=None, nullable=True)
    fields.finish()
    return out


def _normalize_blob_manifest(record, error=ConfigError):
    fields = _Fields(record, 'chunked blob manifest', error)
    out = {'schema_version': _schema_version(fields)}
    out['generation'] = fields.get('generation', 'int', minimum=0)
    out['chunks'] = fields.get('chunks', 'int', minimum=0)
    out['prefix'] = fields.get('prefix', 'str', default=None, nullable=True)
    out['size'] = fields.get('size', 'int', minimum=0)
    out['sha256'] = fields.get('sha256', 'str')
    out['encoding'] = fields.get('encoding', 'str', choices=('raw', 'zlib'))
    out['epoch'] = fields.get('epoch', 'int', default=None, nullable=True)
    out['written_at'] = fields.get('written_at', 'number', default=None, nullable=True)
    fields.finish()
    return out


def _normalize_acl_entry_list(value, where, error):
    if not isinstance(value, (list, tuple)):
        raise error('%s must be a list of [perms, scheme, id]' % where)
    out = []
    for entry in value:
        if (not isinstance(entry, (list, tuple)) or len(entry) != 3 or not isinstance(entry[0], int)
                or isinstance(entry[0], bool) or not isinstance(entry[1], str) or not isinstance(entry[2], str)):
            raise error('%s must be a list of [perms, scheme, id]; got %r' % (where, entry))
        out.append([entry[0], entry[1], entry[2]])
    return out


def _saved_acl_prefix(side):
    if side not in SAVED_ACL_PREFIXES:
        raise ConfigError('saved ACLs belong to the source or the destination, not %r' % (side,))
    return SAVED_ACL_PREFIXES[side]


def _normalize_saved_acl_chunk(record, error=ConfigError):
    fields = _Fields(record, 'saved ACL chunk', error)
    out = {'schema_version': _schema_version(fields)}
    entries = fields.get('entries', 'list')
    out['entries'] = []
    for index, entry in enumerate(entries):
        where = 'saved ACL chunk: entries[%d]' % index
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            raise error('%s must be [path, acl]' % where)
        path = normalize_path(entry[0], where, error)
        out['entries'].append([path, _normalize_acl_entry_list(entry[1], where, error)])
    out['saved_at'] = fields.get('saved_at', 'number', default=None, nullable=True)
    fields.finish()
    return out


def _normalize_fence(record, error=ConfigError):
    fields = _Fields(record, 'fence record', error)
    out = {'schema_version': _schema_version(fields)}
    out['task'] = check_name(fields.get('task', 'str'), 'fence record: task', error)
    out['leader'] = fields.get('leader', 'str', default=None, nullable=True)
    out['bumped_at'] = fields.get('bumped_at', 'number', default=None, nullable=True)
    out['control_epoch'] = fields.get('control_epoch', 'int', default=None, nullable=True)
    fields.finish()
    return out


_NORMALIZERS = {
    'cluster': normalize_cluster,
    'status': normalize_status,
    'daemon': normalize_daemon_info,
    'cutover': normalize_cutover,
    'root': _normalize_root_marker,
    'manifest': _normalize_blob_manifest,
    'acl_chunk': _normalize_saved_acl_chunk,
    'fence': _normalize_fence,
}


def encode_record(record):
    """Serialise a record: compact JSON with sorted keys, UTF-8."""
    return json.dumps(record, sort_keys=True, separators=(',', ':'), allow_nan=False).encode('utf-8')


def decode_record(data, path, normalizer):
    """Parse and validate a record read from ``path``; SchemaError names the path and the problem."""
    if not data:
        raise SchemaError('control record %s is empty: expected a JSON object with schema_version' % path, path=path)
    try:
        record = json.loads(data.decode('utf-8'))
    except UnicodeDecodeError:
        raise SchemaError('control record %s is not UTF-8 text' % path, path=path)
    except ValueError as exc:
        raise SchemaError('control record %s is not valid JSON: %s' % (path, exc), path=path)
    if not isinstance(record, dict):
        raise SchemaError('control record %s must be a JSON object, got %s' % (path, type(record).__name__), path=path)
    if 'schema_version' not in record:
        raise SchemaError('control record %s has no schema_version' % path, path=path)
    return _validated(record, path, normalizer)


def _validated(record, path, normalizer):
    try:
        return normalizer(record, error=SchemaError)
    except SchemaError as exc:
        raise SchemaError('control record %s is invalid: %s' % (path, exc.message), path=path)


# ---------------------------------------------------------------------------
# kazoo errors -> engine errors
# ---------------------------------------------------------------------------

def _require_kazoo():
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
def _zk(path=None, action=None):
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


def _multi_failure(results):
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
    _require_kazoo()
    if not isinstance(acl, (list, tuple)) or not acl:
        raise ConfigError('acl must be a non-empty list of {scheme, id, perms}')
    out = []
    for index, entry in enumerate(acl):
        where = 'acl[%d]' % index
        if isinstance(entry, ACL):
            out.append(entry)
            continue
        fields = _Fields(entry, where)
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
    _require_kazoo()
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


class _AclCreator(object):
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


# ---------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------

class ControlStore(object):
    """Records of the control plane under ``root`` on a connected kazoo client.

    ``identity``/``acl``/``world_read`` choose the ACL of every znode the
    store creates (see ``control_acl``). The store fails closed: an
    unauthenticated session, a refused ``auth`` ACL and control znodes that
    grant world:anyone more than ``world_read`` allows (``check_acls``) are
    errors unless ``allow_open_acl``. Reads and writes validate records;
    updates are compare-and-set on znode versions and retried on races, so two
    writers never lose each other's change. Write methods take ``dry_run`` and
    return a ``PutResult`` (changed, before, after) for idempotent modules.
    """

    def __init__(self, client, root=DEFAULT_ROOT, identity=None, acl=None, world_read=False, allow_open_acl=False,
                 max_node_bytes=DEFAULT_MAX_NODE_BYTES, cas_retries=DEFAULT_CAS_RETRIES):
        _require_kazoo()
        self.client = client
        self.root = normalize_root(root)
        self.max_node_bytes = int(max_node_bytes)
        self.cas_retries = int(cas_retries)
        self.world_read = bool(world_read)
        self.allow_open_acl = bool(allow_open_acl)
        self._creator = _AclCreator(client, identity=identity, acl=acl, world_readable=self.world_read,
                                    allow_open_acl=self.allow_open_acl)
        self._layout_checked = False
        self._layout_lock = threading.Lock()

    def __repr__(self):
        return 'ControlStore(root=%r)' % self.root

    # -- paths ---------------------------------------------------------------
    def cluster_path(self, name):
        """Znode of a cluster registration."""
        return join_path(self.root, CLUSTERS, check_name(name, 'cluster name'))

    def task_path(self, name):
        """Znode of a task spec."""
        return join_path(self.root, TASKS, check_name(name, 'task name'))

    def status_path(self, task):
        """Znode of a task's status."""
        return join_path(self.task_path(task), STATUS)

    def election_path(self, task):
        """Znode under which a task's election contenders live."""
        return election_path(self.root, task)

    def baseline_path(self, task):
        """Znode of a task's baseline manifest (its children hold the chunks)."""
        return join_path(self.task_path(task), BASELINE)

    def cutover_path(self, task):
        """Znode of a task's cutover record (its children hold saved source ACLs)."""
        return join_path(self.task_path(task), CUTOVER)

    def daemon_path(self, daemon_id):
        """Ephemeral znode of a live daemon."""
        return join_path(self.root, DAEMONS, check_name(daemon_id, 'daemon id'))

    @property
    def acl(self):
        """The ACL the store puts on the znodes it creates (kazoo ACL list)."""
        return list(self._creator.acl)

    @property
    def is_open(self):
        """True when the znodes the store creates can be changed by anyone."""
        return self._creator.open

    # -- low level -----------------------------------------------------------
    def _encode(self, record, path):
        data = encode_record(record)
        if len(data) > self.max_node_bytes:
            raise TooLargeError('record for %s is %d bytes, over the %d-byte limit per znode' % (path, len(data), self.max_node_bytes),
                                path=path)
        return data

    def _read(self, path, normalizer, watch=None):
        """(record, stat) or (None, None) when the znode does not exist."""
        with _zk(path, 'reading'):
            try:
                data, stat = self.client.get(path, watch=watch)
            except kazoo_exceptions.NoNodeError:
                return None, None
        return decode_record(data, path, normalizer), stat

    def _children(self, path):
        with _zk(path, 'listing'):
            try:
                return sorted(self.client.get_children(path))
            except kazoo_exceptions.NoNodeError:
                return []

    def _commit(self, txn, path, action):
        """Commit a transaction; return None on success or the failing (index, kazoo exception)."""
        with _zk(path, action):
            results = txn.commit()
        return _multi_failure(results)

    def _backoff(self, attempt):
        time.sleep(min(0.2, 0.002 * (2 ** min(attempt, 7))) * random.random())

    def session_id(self):
        """This store's ZooKeeper session id as ``0x...`` (as ``cons`` shows it), or None before a session exists."""
        client_id = getattr(self.client, 'client_id', None)
        return '0x%x' % client_id[0] if client_id and client_id[0] else None

    # -- layout --------------------------------------------------------------
    def ensure_root(self):
        """Create the control layout if missing and report how it is protected.

        Returns a dict: ``root``, ``changed`` (something was created),
        ``open`` (the root can be changed by anyone), ``acl`` (the root's
        actual ACL), ``warnings`` (operator-readable; set when open).
        Raises SchemaError when the root exists but is not a control root of
        this schema (or a newer one), AuthFailedError when the client may not
        create what is missing.
        """
        changed = False
        marker = encode_record({'schema_version': SCHEMA_VERSION, 'kind': ROOT_KIND, 'created_at': time.time()})
        with _zk(self.root, 'creating the control root'):
            try:
                data, root_stat = self.client.get(self.root)
            except kazoo_exceptions.NoNodeError:
                data = None
                self._creator.ensure_parents(self.root)
                try:
                    self._creator.create(self.root, marker)
                    changed = True
                except kazoo_exceptions.NodeExistsError:
                    data, root_stat = self.client.get(self.root)
            if data is not None:
                if data == b'':
                    # a root made by hand (e.g. to give it an ACL first): adopt it
                    self.client.set(self.root, marker, version=root_stat.version)
                    changed = True
                else:
                    decode_record(data, self.root, _normalize_root_marker)
            # create only what is missing: a complete layout needs no write permission
            present = set(self.client.get_children(self.root))
            for child in (CLUSTERS, TASKS, DAEMONS, FENCE):
                if child in present:
                    continue
                try:
                    self._creator.create(join_path(self.root, child))
                    changed = True
                except kazoo_exceptions.NodeExistsError:
                    pass
            actual_acl, _acl_stat = self.client.get_acls(self.root)
        warnings = self.check_acls()
        self._layout_checked = True
        is_open = acl_is_open(actual_acl)
        if is_open:
            warnings.insert(0, OPEN_ROOT_WARNING % self.root)
        for warning in warnings:
            LOG.warning(warning)
        return {'root': self.root, 'changed': changed, 'open': is_open, 'acl': acl_to_list(actual_acl), 'warnings': warnings}

    def control_paths(self):
        """The control znodes whose ACLs ``check_acls`` looks at: the root, its children, theirs, and each task's children."""
        paths = []

        def children(path):
            try:
                return sorted(self.client.get_children(path))
            except (kazoo_exceptions.NoNodeError, kazoo_exceptions.NoAuthError):
                return []

        with _zk(self.root, 'listing the control store'):
            if self.client.exists(self.root) is None:
                return paths
            paths.append(self.root)
            for child in children(self.root):
                child_path = join_path(self.root, child)
                paths.append(child_path)
                for grandchild in children(child_path):
                    node = join_path(child_path, grandchild)
                    paths.append(node)
                    if child == TASKS:
                        paths.extend(join_path(node, name) for name in children(node))
        return paths

    def check_acls(self):
        """Refuse a control store whose znodes grant world:anyone more than allowed; returns warnings.

        Allowed: nothing, or READ with ``world_read``. Looks at the root, the
        layout (``clusters``, ``tasks``, ``daemons``, ``fence``, ...), every
        registration, task, daemon and fence under them and each task's
        children (status, election, baseline, cutover). Anything wider
        raises ``ConfigError`` listing the znodes and what world may do
        there, unless ``allow_open_acl`` (then a warning). Znodes this
        identity may not read the ACL of are left alone.
        """
        too_open = []
        with _zk(self.root, 'checking the control store ACLs'):
            for path in self.control_paths():
                try:
                    acl, _stat = self.client.get_acls(path)
                except (kazoo_exceptions.NoNodeError, kazoo_exceptions.NoAuthError):
                    continue
                extra = world_access(acl, self.world_read)
                if extra:
                    too_open.append((path, extra))
        if not too_open:
            return []
        listed = ', '.join('%s (world:anyone %s)' % item for item in too_open[:20])
        if len(too_open) > 20:
            listed += ' and %d more' % (len(too_open) - 20)
        allowed = 'READ (control.world_read)' if self.world_read else 'nothing (control.world_read is off)'
        if not self.allow_open_acl:
            raise ConfigError('the control store under %s is open: %d control znode(s) grant world:anyone more than %s: %s. '
                              'Anyone who reaches the control ensemble could read or change them (a znode made by someone else '
                              'before the migration is suspect). Remove them or give them the migration identity\'s ACL, '
                              'set control.world_read: true if world READ is wanted, or control.allow_open_acl: true to '
                              'accept an open control store' % (self.root, len(too_open), allowed, listed), path=too_open[0][0])
        return ['the control store under %s is open (control.allow_open_acl is set): %s' % (self.root, listed)]

    def _ensure_layout(self):
        if self._layout_checked:
            return
        with self._layout_lock:
            if not self._layout_checked:
                self.ensure_root()

    # -- generic compare-and-set -------------------------------------------
    def _cas(self, path, normalizer, mutate, create_if_missing=False, dry_run=False, guard=None):
        """Read-modify-write of one record with version checks, retried on races.

        ``mutate(record_or_None)`` returns the new record (or None to leave
        the record as it is; mutating its argument in place also works).
        ``guard(current)`` may raise before anything is written.
        """
        for attempt in range(self.cas_retries):
            current, stat = self._read(path, normalizer)
            if current is None and not create_if_missing:
                raise NoNodeError('%s does not exist' % path, path=path)
            proposal = copy.deepcopy(current)
            returned = mutate(proposal)
            proposal = returned if returned is not None else proposal
            if proposal is None:
                return PutResult(False, current, current)
            new = _validated(proposal, path, normalizer)
            if guard is not None:
                guard(current, new)
            if new == current:
                return PutResult(False, current, current)
            if dry_run:
                return PutResult(True, current, new)
            data = self._encode(new, path)
            with _zk(path, 'writing'):
                try:
                    if stat is None:
                        self._creator.create(path, data)
                    else:
                        self.client.set(path, data, version=stat.version)
                    return PutResult(True, current, new)
                except (kazoo_exceptions.BadVersionError, kazoo_exceptions.NodeExistsError):
                    pass
                except kazoo_exceptions.NoNodeError:
                    if stat is None:  # the parent is missing
                        raise
            self._backoff(attempt)
        raise VersionConflictError('gave up updating %s after %d attempts: it keeps changing under us' % (path, self.cas_retries),
                                   path=path)

    # -- clusters ------------------------------------------------------------
    def get_cluster(self, name):
        """The cluster registration ``name`` or None."""
        return self._read(self.cluster_path(name), normalize_cluster)[0]

    def list_clusters(self):
        """All cluster registrations: {name: record}."""
        out = {}
        for name in self._children(join_path(self.root, CLUSTERS)):
            record = self._read(join_path(self.root, CLUSTERS, name), normalize_cluster)[0]
            if record is not None:
                if record['name'] != name:
                    raise SchemaError('control record %s names cluster %r' % (self.cluster_path(name), record['name']))
                out[name] = record
        return out

    def put_cluster(self, record, dry_run=False):
        """Create or update a cluster registration; PutResult tells whether it changed."""
        new = normalize_cluster(record)
        if not dry_run:  # check mode must not even create the control root
            self._ensure_layout()
        return self._cas(self.cluster_path(new['name']), normalize_cluster, lambda _current: copy.deepcopy(new),
                         create_if_missing=True, dry_run=dry_run)

    def delete_cluster(self, name, force=False, dry_run=False):
        """Delete a cluster registration. Refused while a task names it, unless ``force``."""
        path = self.cluster_path(name)
        tasks_dir = join_path(self.root, TASKS)
        for attempt in range(self.cas_retries):
            current, stat = self._read(path, normalize_cluster)
            if current is None:
                return PutResult(False, None, None)
            with _zk(tasks_dir, 'reading'):
                _data, tasks_stat = self.client.get(tasks_dir)
            users = sorted(task for task, spec in self.list_tasks().items() if name in (spec['source'], spec['destination']))
            if users and not force:
                raise ConfigError('cluster %r is used by task%s %s: delete those tasks first (or force)'
                                  % (name, 's' if len(users) > 1 else '', ', '.join(users)))
            if dry_run:
                return PutResult(True, current, None)
            txn = self.client.transaction()
            txn.check(tasks_dir, tasks_stat.version)  # no task was written meanwhile
            txn.delete(path, version=stat.version)
            failure = self._commit(txn, path, 'deleting the cluster')
            if failure is None:
                return PutResult(True, current, None)
            if not isinstance(failure[1], (kazoo_exceptions.BadVersionError, kazoo_exceptions.NoNodeError)):
                raise translate_kazoo_error(failure[1], path, 'deleting the cluster')
            self._backoff(attempt)
        raise VersionConflictError('gave up deleting %s: it keeps changing' % path, path=path)

    # -- tasks ---------------------------------------------------------------
    def _normalize_task(self, record, error=ConfigError):
        return normalize_task_spec(record, root=self.root, error=error)

    def decode_task(self, name, data):
        """Validate task ``name``'s raw znode data (e.g. read by a watch); SchemaError if malformed."""
        return decode_record(data, self.task_path(name), self._normalize_task)

    def get_task(self, name):
        """The task spec ``name`` or None."""
        return self._read(self.task_path(name), self._normalize_task)[0]

    def list_tasks(self):
        """All task specs: {name: spec}."""
        out = {}
        for name in self._children(join_path(self.root, TASKS)):
            spec = self._read(join_path(self.root, TASKS, name), self._normalize_task)[0]
            if spec is not None:
                if spec['name'] != name:
                    raise SchemaError('control record %s names task %r' % (self.task_path(name), spec['name']))
                out[name] = spec
        return out

    def put_task(self, spec, dry_run=False):
        """Create or update a task spec (validated, placement-checked); PutResult tells whether it changed."""
        new = normalize_task_spec(spec, root=self.root)
        return self._write_task(new['name'], lambda _current: copy.deepcopy(new), create=True, dry_run=dry_run)

    def update_task(self, name, mutate_fn, dry_run=False):
        """Compare-and-set update of task ``name``.

        ``mutate_fn(spec)`` gets a copy of the current spec and returns the new
        one (or changes it in place and returns None). It may be called more
        than once: on a race the spec is re-read and ``mutate_fn`` re-applied,
        so concurrent writers never lose each other's change.
        """
        return self._write_task(check_name(name, 'task name'), mutate_fn, create=False, dry_run=dry_run)

    def _write_task(self, name, mutate_fn, create, dry_run):
        """Every task write goes through one multi that also checks and bumps
        the data version of ``<root>/tasks`` and checks the versions of the
        source and destination registrations: the placement checks (overlaps)
        then hold against concurrent writers, which retry.

        A dry run only reads: it does not even create the control root, and
        a missing root or ``<root>/tasks`` reads as an empty registry."""
        if not dry_run:  # check mode must not even create the control root
            self._ensure_layout()
        path = self.task_path(name)
        tasks_dir = join_path(self.root, TASKS)
        for attempt in range(self.cas_retries):
            with _zk(tasks_dir, 'reading'):
                try:
                    _data, tasks_stat = self.client.get(tasks_dir)
                except kazoo_exceptions.NoNodeError:
                    if not dry_run:
                        raise
                    tasks_stat = None
            current, stat = self._read(path, self._normalize_task)
            if current is None and not create:
                raise NoNodeError('task %r does not exist' % name, path=path)
            proposal = copy.deepcopy(current)
            returned = mutate_fn(proposal)
            proposal = returned if returned is not None else proposal
            new = self._normalize_task(proposal)
            if new['name'] != name:
                raise ConfigError('task %r: a task cannot be renamed (got name %r)' % (name, new['name']))
            if new == current:
                return PutResult(False, current, current)
            cluster_stats = {}
            clusters = {}
            for cluster_name in self._children(join_path(self.root, CLUSTERS)):
                record, cstat = self._read(join_path(self.root, CLUSTERS, cluster_name), normalize_cluster)
                if record is not None:
                    clusters[cluster_name] = record
                    cluster_stats[cluster_name] = cstat
            others = self.list_tasks()
            others.pop(name, None)
            check_task_placement(new, clusters, others)
            if dry_run:
                return PutResult(True, current, new)
            data = self._encode(new, path)
            txn = self.client.transaction()
            txn.set_data(tasks_dir, b'', version=tasks_stat.version)
            for cluster_name in sorted(set((new['source'], new['destination']))):
                txn.check(join_path(self.root, CLUSTERS, cluster_name), cluster_stats[cluster_name].version)
            if stat is None:
                self._creator.transaction_create(txn, path, data)
                self._creator.transaction_create(txn, join_path(path, ELECTION))
            else:
                txn.set_data(path, data, version=stat.version)
            failure = self._commit(txn, path, 'writing the task')
            if failure is None:
                return PutResult(True, current, new)
            exc = failure[1]
            if isinstance(exc, kazoo_exceptions.InvalidACLError) and self._creator.fall_back_open(path):
                continue
            if not isinstance(exc, (kazoo_exceptions.BadVersionError, kazoo_exceptions.NodeExistsError, kazoo_exceptions.NoNodeError)):
                raise translate_kazoo_error(exc, path, 'writing the task')
            self._backoff(attempt)
        raise VersionConflictError('gave up writing task %r after %d attempts: the control store keeps changing' % (name, self.cas_retries),
                                   path=path)

    def delete_task(self, name, force=False, dry_run=False):
        """Delete a task with its status, election, baseline and cutover data.

        Refused when the task has a cutover record (the record and the saved
        source ACLs are what a rollback needs) unless ``force``.
        """
        path = self.task_path(name)
        current = self.get_task(name)
        if current is None:
            return PutResult(False, None, None)
        cutover = self.get_cutover(name)
        if cutover is not None and not force:
            raise ConfigError('task %r has a cutover record (state %s) and saved source ACLs; they are kept until removed '
                              'explicitly: delete the task with force to remove them too' % (name, cutover['state']))
        if dry_run:
            return PutResult(True, current, None)
        self._delete_tree(path, bump=join_path(self.root, TASKS))
        return PutResult(True, current, None)

    def _delete_tree(self, path, bump=None):
        """Delete ``path`` and everything below it, children first; retried
        while others add children (election contenders, status)."""
        for attempt in range(self.cas_retries):
            with _zk(path, 'deleting'):
                try:
                    self._delete_children(path)
                    if bump is not None:
                        _data, bump_stat = self.client.get(bump)
                        txn = self.client.transaction()
                        txn.set_data(bump, b'', version=bump_stat.version)
                        txn.delete(path)
                        failure = _multi_failure(txn.commit())
                        if failure is None:
                            return
                        if isinstance(failure[1], kazoo_exceptions.NoNodeError) and failure[0] == 1:
                            return
                        if not isinstance(failure[1], (kazoo_exceptions.BadVersionError, kazoo_exceptions.NotEmptyError)):
                            raise translate_kazoo_error(failure[1], path, 'deleting')
                    else:
                        self.client.delete(path)
                        return
                except kazoo_exceptions.NoNodeError:
                    return
                except kazoo_exceptions.NotEmptyError:
                    pass
            self._backoff(attempt)
        raise NotEmptyError('could not delete %s: children keep appearing' % path, path=path)

    def _delete_children(self, path):
        for child in self.client.get_children(path):
            child_path = join_path(path, child)
            try:
                self._delete_children(child_path)
                self.client.delete(child_path)
            except kazoo_exceptions.NoNodeError:
                pass

    # -- status --------------------------------------------------------------
    def get_status(self, task):
        """The task's status record or None (no leader has written one yet)."""
        return self._read(self.status_path(task), normalize_status)[0]

    def put_status(self, task, status, epoch=None):
        """Write the task status (the leader, every few seconds).

        With ``epoch``, a status already written by a leader of a higher
        epoch is not overwritten: FencedError instead (a stale leader).
        """
        new = normalize_status(status)
        if epoch is not None:
            new['epoch'] = epoch
        return self.update_status(task, lambda _current: copy.deepcopy(new), epoch=epoch)

    def update_status(self, task, mutate_fn, epoch=None):
        """Compare-and-set update of the status (``mutate_fn(status_or_None)`` returns the new one)."""
        path = self.status_path(task)

        def guard(current, _new):
            if epoch is not None and current is not None and current.get('epoch') is not None and current['epoch'] > epoch:
                raise FencedError('task %r status belongs to a newer leader (epoch %d > %d): this daemon is no longer the leader'
                                  % (task, current['epoch'], epoch), path=path)
        try:
            return self._cas(path, normalize_status, mutate_fn, create_if_missing=True, guard=guard)
        except NoNodeError:
            raise NoNodeError('task %r does not exist: cannot write its status' % task, path=self.task_path(task))

    # -- cutover -------------------------------------------------------------
    def get_cutover(self, task):
        """The task's cutover record or None."""
        return self._read(self.cutover_path(task), normalize_cutover)[0]

    def put_cutover(self, task, record, dry_run=False):
        """Create or replace the cutover record of ``task``."""
        new = dict(record)
        new.setdefault('task', task)
        new = normalize_cutover(new)
        if new['task'] != task:
            raise ConfigError('cutover record names task %r, not %r' % (new['task'], task))
        return self.update_cutover(task, lambda _current: copy.deepcopy(new), dry_run=dry_run)

    def update_cutover(self, task, mutate_fn, dry_run=False):
        """Compare-and-set update of the cutover record (``mutate_fn(record_or_None)``)."""
        if self.get_task(task) is None:
            raise NoNodeError('task %r does not exist' % task, path=self.task_path(task))
        return self._cas(self.cutover_path(task), normalize_cutover, mutate_fn, create_if_missing=True, dry_run=dry_run)

    def delete_cutover(self, task):
        """Remove the cutover record and the saved ACLs (explicit cleanup only)."""
        current = self.get_cutover(task)
        if current is None:
            return PutResult(False, None, None)
        self._delete_tree(self.cutover_path(task))
        return PutResult(True, current, None)

    def save_source_acls(self, task, entries, side='source'):
        """Append saved ACLs of ``side`` (``source`` or ``destination``) to the cutover record of ``task`` (before a freeze batch).

        ``entries`` is an iterable of ``(path, acl)``, ``acl`` being kazoo ACLs or
        ``(perms, scheme, id)`` tuples. Entries are packed into chunk znodes
        under the cutover record, each under ``max_node_bytes``, so thousands of
        paths fit. Chunks are only appended: when a freeze is retried, a path
        saved twice keeps its *first* (original) ACL in ``load_saved_acls``.
        Returns the number of chunks written.
        """
        cutover = self.cutover_path(task)
        if self.get_cutover(task) is None:
            raise NoNodeError('task %r has no cutover record: write it before saving source ACLs' % task, path=cutover)
        normalized = []
        for path, acl in entries:
            path = normalize_path(path, 'saved ACL path')
            normalized.append([path, [[e['perms'], e['scheme'], e['id']] for e in acl_to_list(acl)]])
        chunks = []
        current, size = [], 0
        overhead = len(encode_record({'schema_version': SCHEMA_VERSION, 'entries': [], 'saved_at': time.time()}))
        for entry in normalized:
            entry_size = len(encode_record(entry)) + 1
            if overhead + entry_size > self.max_node_bytes:
                raise TooLargeError('the ACL of %s alone is larger than a chunk (%d bytes)' % (entry[0], self.max_node_bytes), path=entry[0])
            if current and overhead + size + entry_size > self.max_node_bytes:
                chunks.append(current)
                current, size = [], 0
            current.append(entry)
            size += entry_size
        if current:
            chunks.append(current)
        for chunk in chunks:
            data = self._encode({'schema_version': SCHEMA_VERSION, 'entries': chunk, 'saved_at': time.time()}, cutover)
            with _zk(cutover, 'saving source ACLs'):
                self._creator.create(join_path(cutover, _saved_acl_prefix(side)), data, sequence=True)
        return len(chunks)

    def load_saved_acls(self, task, side='source'):
        """{path: ((perms, scheme, id), ...)} saved for ``task`` on ``side``, first-saved entry winning."""
        cutover = self.cutover_path(task)
        prefix = _saved_acl_prefix(side)
        out = {}
        for child in self._children(cutover):
            if not child.startswith(prefix):
                continue
            record = self._read(join_path(cutover, child), _normalize_saved_acl_chunk)[0]
            if record is None:
                continue
            for path, acl in record['entries']:
                if path not in out:
                    out[path] = tuple(tuple(entry) for entry in acl)
        return out

    def clear_saved_acls(self, task, side='source'):
        """Delete the saved ACL chunks of ``side`` (after the ACLs were restored); returns how many."""
        cutover = self.cutover_path(task)
        prefix = _saved_acl_prefix(side)
        removed = 0
        for child in self._children(cutover):
            if child.startswith(prefix):
                with _zk(cutover, 'clearing saved ACLs'):
                    try:
                        self.client.delete(join_path(cutover, child))
                        removed += 1
                    except kazoo_exceptions.NoNodeError:
                        pass
        return removed

    # -- baseline (chunked blob) ----------------------------------------------
    def put_baseline(self, task, data, epoch=None, compress=True):
        """Checkpoint the task's sync baseline (opaque bytes), chunked under the znode limit.

        A new generation of chunks is written first, then the manifest is
        switched to it with a version check, then the old chunks go: a reader
        always sees one whole generation. With ``epoch``, a baseline written by
        a leader of a higher epoch is not overwritten (FencedError).
        Returns the new generation number.
        """
        path = self.baseline_path(task)
        if not isinstance(data, bytes):
            raise ConfigError('baseline data must be bytes')
        payload = zlib.compress(data, 6) if compress else data
        for attempt in range(self.cas_retries):
            manifest, stat = self._read(path, _normalize_blob_manifest)
            if manifest is None:
                empty = {'schema_version': SCHEMA_VERSION, 'generation': 0, 'chunks': 0, 'prefix': None, 'size': 0,
                         'sha256': hashlib.sha256(b'').hexdigest(), 'encoding': 'raw', 'epoch': None, 'written_at': None}
                with _zk(path, 'creating the baseline'):
                    try:
                        self._creator.create(path, encode_record(empty))
                    except kazoo_exceptions.NodeExistsError:
                        pass
                    except kazoo_exceptions.NoNodeError:
                        raise NoNodeError('task %r does not exist: cannot write its baseline' % task, path=self.task_path(task))
                continue
            if epoch is not None and manifest['epoch'] is not None and manifest['epoch'] > epoch:
                raise FencedError('task %r baseline belongs to a newer leader (epoch %d > %d)' % (task, manifest['epoch'], epoch), path=path)
            generation = manifest['generation'] + 1
            # a token per writer: two writers racing for one generation never share chunk names
            prefix = 'g%010d-%s-' % (generation, binascii.hexlify(os.urandom(4)).decode('ascii'))
            names = []
            with _zk(path, 'writing the baseline'):
                for index in range(0, max(1, len(payload)), self.max_node_bytes):
                    name = '%s%06d' % (prefix, index // self.max_node_bytes)
                    chunk = payload[index:index + self.max_node_bytes]
                    try:
                        self._creator.create(join_path(path, name), chunk)
                    except kazoo_exceptions.NodeExistsError:  # left by an interrupted attempt
                        self.client.set(join_path(path, name), chunk)
                    names.append(name)
                new = {'schema_version': SCHEMA_VERSION, 'generation': generation, 'chunks': len(names), 'prefix': prefix, 'size': len(data),
                       'sha256': hashlib.sha256(data).hexdigest(), 'encoding': 'zlib' if compress else 'raw',
                       'epoch': epoch if epoch is not None else manifest['epoch'], 'written_at': time.time()}
                try:
                    self.client.set(path, encode_record(new), version=stat.version)
                except kazoo_exceptions.BadVersionError:
                    self._delete_chunks(path, keep_prefix=None, only_prefix=prefix)
                    self._backoff(attempt)
                    continue
                self._delete_chunks(path, keep_prefix=prefix)
            return generation
        raise VersionConflictError('gave up writing the baseline of %r: it keeps changing' % task, path=path)

    def _delete_chunks(self, path, keep_prefix=None, only_prefix=None):
        for child in self.client.get_children(path):
            if keep_prefix is not None and child.startswith(keep_prefix):
                continue
            if only_prefix is not None and not child.startswith(only_prefix):
                continue
            try:
                self.client.delete(join_path(path, child))
            except kazoo_exceptions.NoNodeError:
                pass

    def get_baseline(self, task):
        """The task's last checkpointed baseline (bytes) or None."""
        path = self.baseline_path(task)
        for _attempt in range(self.cas_retries):
            manifest, _stat = self._read(path, _normalize_blob_manifest)
            if manifest is None or manifest['generation'] == 0:
                return None
            prefix = manifest['prefix']
            if not prefix:
                raise SchemaError('baseline manifest of task %r names no chunk prefix' % task, path=path)
            parts = []
            try:
                with _zk(path, 'reading the baseline'):
                    for index in range(manifest['chunks']):
                        parts.append(self.client.get(join_path(path, '%s%06d' % (prefix, index)))[0] or b'')
            except NoNodeError:
                continue  # replaced by a newer generation while we read: read again
            payload = b''.join(parts)
            try:
                data = zlib.decompress(payload) if manifest['encoding'] == 'zlib' else payload
            except zlib.error as exc:
                raise SchemaError('baseline of task %r is corrupt (%s)' % (task, exc), path=path)
            if len(data) != manifest['size'] or hashlib.sha256(data).hexdigest() != manifest['sha256']:
                raise SchemaError('baseline of task %r is corrupt: size or sha256 does not match its manifest' % task, path=path)
            return data
        raise VersionConflictError('gave up reading the baseline of %r: it keeps changing' % task, path=path)

    # -- daemons and elections -------------------------------------------------
    def register_daemon(self, daemon_id, info, replace=False):
        """Register this process as a live daemon (ephemeral znode); see ``register_daemon``."""
        self._ensure_layout()
        return register_daemon(self.client, self.root, daemon_id, info, replace=replace, creator=self._creator)

    def unregister_daemon(self, daemon_id):
        """Remove this daemon's registration (on clean shutdown)."""
        return unregister_daemon(self.client, self.root, daemon_id)

    def list_daemons(self):
        """{daemon_id: record} of the daemons alive now."""
        return list_daemons(self.client, self.root)

    def election(self, task, daemon_id):
        """A ``TaskElection`` for ``task`` with the store's ACL."""
        return TaskElection(self.client, self.root, task, daemon_id, acl=self.acl, allow_open_acl=self.allow_open_acl)

    def current_leader(self, task):
        """The daemon id leading ``task`` now, or None."""
        return current_leader(self.client, self.root, task)

    def describe_task(self, name):
        """Everything about one task for reports: spec, status, leader, contenders, cutover, saved ACL count."""
        spec = self.get_task(name)
        if spec is None:
            return None
        saved = [c for c in self._children(self.cutover_path(name)) if c.startswith(SAVED_ACL_PREFIX)]
        return {
            'spec': spec,
            'status': self.get_status(name),
            'leader': self.current_leader(name),
            'contenders': contenders(self.client, self.root, name),
            'cutover': self.get_cutover(name),
            'saved_acl_chunks': len(saved),
        }


# ---------------------------------------------------------------------------
# Daemon registrations
# ---------------------------------------------------------------------------

def register_daemon(client, root, daemon_id, info, replace=False, acl=None, creator=None, allow_open_acl=False):
    """Register a live daemon as an ephemeral ``<root>/daemons/<id>``; returns its path.

    ``info`` holds the non-secret facts others read (hostname, pid, version,
    metrics/health address, tasks led). Calling it again on the same session
    updates the record. A registration left by another live session (a
    duplicate daemon id, or the previous process of this daemon whose
    session has not expired yet) raises NodeExistsError unless ``replace``.
    """
    _require_kazoo()
    root = normalize_root(root)
    record = dict(info or {})
    record['daemon_id'] = check_name(daemon_id, 'daemon id')
    record.setdefault('hostname', socket.gethostname())
    record.setdefault('pid', os.getpid())
    record['registered_at'] = time.time()
    data = encode_record(normalize_daemon_info(record))
    path = join_path(root, DAEMONS, daemon_id)
    creator = creator or _AclCreator(client, acl=acl, allow_open_acl=allow_open_acl)
    for _attempt in range(DEFAULT_CAS_RETRIES):
        with _zk(path, 'registering the daemon'):
            try:
                creator.create(path, data, ephemeral=True, makepath=True)
                return path
            except kazoo_exceptions.NodeExistsError:
                pass
            try:
                _old, stat = client.get(path)
            except kazoo_exceptions.NoNodeError:
                continue
            if stat.ephemeralOwner == client.client_id[0]:
                client.set(path, data)
                return path
            if not replace:
                raise NodeExistsError('daemon id %r is already registered by another live session (a second daemon with this id, '
                                      'or the previous process whose session has not expired yet)' % daemon_id, path=path)
            try:
                client.delete(path, version=stat.version)
            except (kazoo_exceptions.NoNodeError, kazoo_exceptions.BadVersionError):
                pass
    raise VersionConflictError('could not register daemon %r: its znode keeps changing' % daemon_id, path=path)


def unregister_daemon(client, root, daemon_id):
    """Delete the daemon's registration if this session owns it; True if deleted."""
    _require_kazoo()
    path = join_path(normalize_root(root), DAEMONS, check_name(daemon_id, 'daemon id'))
    with _zk(path, 'unregistering the daemon'):
        try:
            _data, stat = client.get(path)
            if stat.ephemeralOwner != client.client_id[0]:
                return False
            client.delete(path, version=stat.version)
            return True
        except (kazoo_exceptions.NoNodeError, kazoo_exceptions.BadVersionError):
            return False


def list_daemons(client, root):
    """{daemon_id: record} for every live daemon under ``<root>/daemons``."""
    _require_kazoo()
    base = join_path(normalize_root(root), DAEMONS)
    out = {}
    with _zk(base, 'listing daemons'):
        try:
            names = sorted(client.get_children(base))
        except kazoo_exceptions.NoNodeError:
            return out
        for name in names:
            path = join_path(base, name)
            try:
                data, _stat = client.get(path)
            except kazoo_exceptions.NoNodeError:
                continue  # went away while we listed
            out[name] = decode_record(data, path, normalize_daemon_info)
    return out


# ---------------------------------------------------------------------------
# Fencing
# ---------------------------------------------------------------------------

def fence_path(root, task):
    """``<root>/fence/<task>``: the fence znode on a data cluster."""
    return join_path(normalize_root(root), FENCE, check_name(task, 'task name'))


def bump_fence(client, root, task, leader=None, acl=None, control_epoch=None):
    """Start a new fence epoch for ``task`` on a data cluster; returns it.

    The epoch is the fence znode's data version after our write, so every
    bump yields a larger one and writes checked against an older epoch fail.
    A new leader calls this on every cluster it writes to *before* writing.
    The znode is created (with its parents) if missing, with the migration
    identity's ACL (``data_cluster_acl``: ALL for the session's identities,
    no world access); a fence left by an earlier version with world access
    gets that ACL on its next bump.
    Deleting a fence znode while daemons run would reset its epoch: don't.

    ``control_epoch`` (the leader's election sequence, which grows with every
    leadership) is recorded in the fence, and a bump by a leader whose
    ``control_epoch`` is lower than the one recorded raises ``FencedError``:
    a leader that was frozen between winning its election and bumping, and
    thaws after a newer leader took over, must not fence that newer leader
    out. The check and the bump are one compare-and-set.
    """
    _require_kazoo()
    path = fence_path(root, task)
    record = {'schema_version': SCHEMA_VERSION, 'task': task, 'leader': leader, 'bumped_at': time.time()}
    if control_epoch is not None:
        record['control_epoch'] = int(control_epoch)
    data = encode_record(record)
    creator = _AclCreator(client, acl=acl, allow_open_acl=True)
    with _zk(path, 'bumping the fence'):
        for _attempt in range(DEFAULT_CAS_RETRIES):
            try:
                current, stat = client.get(path)
            except kazoo_exceptions.NoNodeError:
                current = stat = None
            if stat is not None:
                recorded = _recorded_control_epoch(current)
                if control_epoch is not None and recorded is not None and recorded > control_epoch:
                    raise FencedError('task %r: a newer leader (control epoch %d > %d) has fenced this cluster; not bumping'
                                      % (task, recorded, control_epoch), path=path)
                try:
                    epoch = client.set(path, data, version=stat.version).version
                except (kazoo_exceptions.BadVersionError, kazoo_exceptions.NoNodeError):
                    continue
                _close_world_access(client, creator, path)
                return epoch
            _ensure_task_parents(client, creator, root, FENCE)
            try:
                creator.create(path, data)
            except kazoo_exceptions.NodeExistsError:
                pass
    raise VersionConflictError('could not bump the fence of task %r' % task, path=path)


def _recorded_control_epoch(data):
    try:
        value = json.loads((data or b'{}').decode('utf-8')).get('control_epoch')
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _close_world_access(client, creator, path):
    """Give ``path`` the creator's ACL when it grants world:anyone access the creator's does not (best effort)."""
    if creator.open:
        return
    try:
        acl, stat = client.get_acls(path)
        if world_access(acl) and not world_access(creator.acl):
            client.set_acls(path, creator.acl, version=stat.aversion)
    except (kazoo_exceptions.NoAuthError, kazoo_exceptions.BadVersionError, kazoo_exceptions.NoNodeError,
            kazoo_exceptions.InvalidACLError) as exc:
        LOG.warning('%s grants world:anyone access and its ACL could not be narrowed (%s)', path, type(exc).__name__)


def _ensure_task_parents(client, creator, root, kind):
    """Create ``<root>`` and ``<root>/<kind>`` (and missing ancestors) on a data cluster with the creator's ACL."""
    creator.ensure_parents(normalize_root(root))
    for parent in (normalize_root(root), join_path(normalize_root(root), kind)):
        try:
            creator.create(parent)
        except kazoo_exceptions.NodeExistsError:
            pass


def journal_path(root, task):
    """``<root>/journal/<task>``: the parent of the sync journal entries on a data cluster (see ``_sync_journal``)."""
    return join_path(normalize_root(root), JOURNAL, check_name(task, 'task name'))


def ensure_journal(client, root, task, acl=None):
    """Create the journal parent of ``task`` on a data cluster if missing; returns its ACL (the entries get it too)."""
    _require_kazoo()
    path = journal_path(root, task)
    creator = _AclCreator(client, acl=acl, allow_open_acl=True)
    with _zk(path, 'creating the sync journal'):
        if client.exists(path) is None:
            _ensure_task_parents(client, creator, root, JOURNAL)
            try:
                creator.create(path)
            except kazoo_exceptions.NodeExistsError:
                pass
        return client.get_acls(path)[0]


def read_fence(client, root, task):
    """The current fence epoch of ``task`` on this cluster, or None if never bumped."""
    _require_kazoo()
    path = fence_path(root, task)
    with _zk(path, 'reading the fence'):
        stat = client.exists(path)
    return stat.version if stat is not None else None


def _chrooted(chroot, path):
    if not chroot:
        return path
    return chroot if path == '/' else chroot + path


def fence_check(txn_or_ops, root, task, epoch, chroot=None):
    """Put ``check(<root>/fence/<task>, version=epoch)`` FIRST in a write multi.

    ``txn_or_ops`` is a kazoo ``TransactionRequest`` (its client's chroot is
    applied) or a list of kazoo request objects for a raw ``Transaction``
    (pass ``chroot`` when that client has one). With the check first, a stale
    leader's multi fails whole and its result 0 is the fence failure; use
    ``raise_if_fenced`` or ``commit_fenced``. Returns ``txn_or_ops``.
    """
    _require_kazoo()
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ConfigError('fence epoch must be a non-negative integer; got %r' % (epoch,))
    path = fence_path(root, task)
    if isinstance(txn_or_ops, list):
        txn_or_ops.insert(0, CheckVersion(_chrooted(chroot, path), epoch))
        return txn_or_ops
    if getattr(txn_or_ops, 'committed', False):
        raise ConfigError('fence_check needs an uncommitted transaction')
    txn_or_ops.operations.insert(0, CheckVersion(_chrooted(getattr(txn_or_ops.client, 'chroot', None), path), epoch))
    return txn_or_ops


def raise_if_fenced(results, root, task, epoch, index=0):
    """Raise FencedError if the fence check at ``index`` of a multi's results failed."""
    _require_kazoo()
    result = results[index] if len(results) > index else None
    if isinstance(result, (kazoo_exceptions.BadVersionError, kazoo_exceptions.NoNodeError)):
        path = fence_path(root, task)
        raise FencedError('write refused: the fence of task %r moved past epoch %d (another leader has taken over)' % (task, epoch),
                          path=path)
    return results


def commit_fenced(txn, root, task, epoch):
    """Add the fence check to ``txn``, commit it, raise FencedError if fenced.

    Returns the results of the caller's own ops (the check's result removed);
    other failures are left in the results for the caller (``_multi_failure``
    style: the failing op's exception, RolledBack/RuntimeInconsistency others).
    """
    fence_check(txn, root, task, epoch)
    with _zk(fence_path(root, task), 'committing a fenced write'):
        results = txn.commit()
    raise_if_fenced(results, root, task, epoch)
    return results[1:]


# ---------------------------------------------------------------------------
# Elections
# ---------------------------------------------------------------------------

def election_path(root, task):
    """``<root>/tasks/<task>/election``."""
    return join_path(normalize_root(root), TASKS, check_name(task, 'task name'), ELECTION)


class _AclClient(object):
    """A kazoo client seen through a proxy whose creates carry the control ACL.

    kazoo's Lock creates its contender znodes with the client's default ACL;
    the control root must stay closed, so the lock gets this proxy instead.
    """

    def __init__(self, client, acl):
        self._client = client
        self._acl = acl

    def __getattr__(self, name):
        return getattr(self._client, name)

    def create(self, path, value=b'', acl=None, ephemeral=False, sequence=False, makepath=False, include_data=False):
        """``client.create`` with the control ACL."""
        return self._client.create(path, value, acl=acl or self._acl, ephemeral=ephemeral, sequence=sequence,
                                   makepath=makepath, include_data=include_data)


class _TaskLock(KazooLock):
    """kazoo's Lock, creating only the election znode (never the task itself)."""

    def _ensure_path(self):
        try:
            self.client.create(self.path)
        except kazoo_exceptions.NodeExistsError:
            pass
        self.assured_path = True


class TaskElection(object):
    """One leader per task among the daemons, on the control ensemble.

    A kazoo Lock at ``<root>/tasks/<task>/election``; each contender's znode
    holds its daemon id, so ``current_leader`` can name the leader. Use
    ``acquire``/``release`` (or ``run(func)``). The leader must stop writing as
    soon as ``leadership_lost`` is set (the session was suspended or lost:
    another daemon may already lead), then ``release()`` and contend again.
    ``sequence`` (the contender znode's sequence number) grows with every new
    contender and can serve as a control-plane epoch.
    """

    def __init__(self, client, root, task, daemon_id, acl=None, allow_open_acl=False):
        _require_kazoo()
        self.client = client
        self.root = normalize_root(root)
        self.task = check_name(task, 'task name')
        self.daemon_id = check_name(daemon_id, 'daemon id')
        self.path = election_path(self.root, self.task)
        acl_list = acl if acl is not None else control_acl(client, allow_open_acl=allow_open_acl)[0]
        self._lock = _TaskLock(_AclClient(client, acl_list), self.path, self.daemon_id)
        self.leadership_lost = threading.Event()
        self._listening = False
        self._epoch = self._epoch_of = None

    def __repr__(self):
        return 'TaskElection(task=%r, daemon_id=%r, leader=%r)' % (self.task, self.daemon_id, self.is_leader)

    def _state_listener(self, state):
        if state in (KazooState.SUSPENDED, KazooState.LOST) and self._lock.is_acquired:
            self.leadership_lost.set()
        return False

    def acquire(self, blocking=True, timeout=None):
        """Contend; True once this daemon leads. False when ``timeout`` passes or on ``cancel()``.

        Raises NoNodeError if the task does not exist (or is deleted while
        waiting).
        """
        if self._lock.is_acquired:
            if not self.leadership_lost.is_set():
                return True
            self.release()  # the session was suspended or lost while leading: contend afresh
        self.leadership_lost.clear()
        if not self._listening:
            self.client.add_listener(self._state_listener)
            self._listening = True
        try:
            with _zk(self.path, 'contending for the task'):
                try:
                    return bool(self._lock.acquire(blocking=blocking, timeout=timeout))
                except kazoo_exceptions.LockTimeout:
                    return False
                except kazoo_exceptions.CancelledError:
                    return False
        except NoNodeError:
            raise NoNodeError('task %r does not exist (its election znode has no parent)' % self.task, path=self.path)

    def release(self):
        """Give up leadership (or a pending contention); safe to call when not leading.

        After a lost session there may be no connection to delete the
        contender znode with: the server removes it when the session expires,
        so leadership is dropped locally and False returned.
        """
        if self._listening:
            self.client.remove_listener(self._state_listener)
            self._listening = False
        try:
            with _zk(self.path, 'leaving the election'):
                try:
                    return self._lock.release()
                except kazoo_exceptions.NoNodeError:
                    return False
        except ClusterUnreachableError:
            if not self.leadership_lost.is_set():
                raise
            self._lock.is_acquired = False
            self._lock.node = None
            return False

    def cancel(self):
        """Make a blocked ``acquire`` return False."""
        self._lock.cancel()

    def run(self, func, *args, **kwargs):
        """Block until elected, run ``func(*args, **kwargs)``, release; returns func's result (None if cancelled)."""
        if not self.acquire():
            return None
        try:
            return func(*args, **kwargs)
        finally:
            self.release()

    @property
    def is_leader(self):
        """True while this contender holds the lock and the session has not been suspended or lost since."""
        return bool(self._lock.is_acquired) and not self.leadership_lost.is_set() and self.client.state == KazooState.CONNECTED

    @property
    def sequence(self):
        """The sequence number of this contender's znode, or None."""
        node = self._lock.node
        match = _LOCK_NODE_RE.search(node) if node else None
        return int(match.group(1)) if match else None

    @property
    def epoch(self):
        """This leadership's control epoch: the contender znode's czxid (None when not contending).

        A zxid of the control ensemble, so it grows with every leadership,
        also across a task deleted and created again under the same name
        (whose election sequence starts at 0 again while the fences on the
        data clusters still record the old epochs).
        """
        node = self._lock.node
        if not node:
            return None
        if self._epoch_of != node:
            with _zk(self.path, 'reading the election node'):
                stat = self.client.exists(join_path(self.path, node))
            self._epoch, self._epoch_of = (stat.czxid if stat is not None else None), node
        return self._epoch

    def contenders(self):
        """Daemon ids contending, leader first."""
        return contenders(self.client, self.root, self.task)


def contenders(client, root, task):
    """Daemon ids contending for ``task``, the leader first ([] if none or no task)."""
    _require_kazoo()
    path = election_path(root, task)
    with _zk(path, 'reading the election'):
        try:
            children = client.get_children(path)
        except kazoo_exceptions.NoNodeError:
            return []
        ordered = sorted((match.group(1), child) for child, match in ((c, _LOCK_NODE_RE.search(c)) for c in children) if match)
        out = []
        for _sequence, child in ordered:
            try:
                data, _stat = client.get(join_path(path, child))
            except kazoo_exceptions.NoNodeError:
                continue
            out.append((data or b'').decode('utf-8', 'replace'))
        return out


def current_leader(client, root, task):
    """The daemon id leading ``task`` now (the first contender), or None. Read-only."""
    found = contenders(client, root, task)
    return found[0] if found else None


# ---------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------

class Credential(object):
    """One named credential. Its repr and str never show secrets."""

    FIELDS = ('name', 'type', 'username', 'password', 'mechanism', 'service', 'principal', 'key_password')
    SECRET_FIELDS = ('password', 'key_password')
    __slots__ = FIELDS

    def __init__(self, **fields):
        for field in self.FIELDS:
            setattr(self, field, fields.get(field))

    def __repr__(self):
        shown = []
        for field in self.FIELDS:
            value = getattr(self, field)
            if value is None:
                continue
            shown.append('%s=%s' % (field, "'<redacted>'" if field in self.SECRET_FIELDS else repr(value)))
        return 'Credential(%s)' % ', '.join(shown)

    __str__ = __repr__

    def __eq__(self, other):
        return isinstance(other, Credential) and all(getattr(self, f) == getattr(other, f) for f in self.FIELDS)

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def describe(self):
        """The non-secret fields (for reports and logs)."""
        return dict((f, getattr(self, f)) for f in self.FIELDS if f not in self.SECRET_FIELDS and getattr(self, f) is not None)

    def secrets_dict(self):
        """All fields, secrets included: only to hand to a connection, never to log or return."""
        return dict((f, getattr(self, f)) for f in self.FIELDS if getattr(self, f) is not None)


_CREDENTIAL_FIELDS = {
    'digest': ('username', 'password'),
    'sasl': ('mechanism', 'username', 'password', 'service', 'principal'),
    'tls': ('key_password',),
}


def _credential_string(fields, key, required):
    """Read a string field without ever echoing its value."""
    fields.seen.add(key)
    value = fields.data.get(key)
    if value is None:
        if required:
            raise ConfigError('%s: field %r is required' % (fields.where, key))
        return None
    if not isinstance(value, str):
        raise ConfigError('%s: field %r must be a string (quote it in YAML)' % (fields.where, key))
    if not value:
        raise ConfigError('%s: field %r must not be empty' % (fields.where, key))
    return value


def validate_credentials_mapping(mapping, source='credentials'):
    """Validate secrets keyed by credential name; returns {name: Credential}.

    Shapes: ``{type: digest, username, password}``,
    ``{type: sasl, mechanism: DIGEST-MD5|GSSAPI, username, password, service, principal}``
    (DIGEST-MD5 needs username and password; GSSAPI uses the Kerberos
    ticket cache, ``principal``/``service`` optional), ``{type: tls, key_password}``.
    Used for the daemons' credentials file and the modules' ``credentials``
    option alike. Error messages name the source, credential and field and
    never contain a secret value.
    """
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise ConfigError('%s must be a mapping of credential name to credential, got %s' % (source, type(mapping).__name__))
    out = {}
    for name in sorted(mapping, key=str):
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ConfigError('%s: credential names must be 1-128 characters of letters, digits, ".", "_" or "-" '
                              '(one name is not)' % source)
        where = '%s: credential %r' % (source, name)
        entry = mapping[name]
        fields = _Fields(entry, where, secret_safe=True)
        kind = fields.data.get('type')
        fields.seen.add('type')
        if kind not in CREDENTIAL_TYPES:
            raise ConfigError('%s: field \'type\' is %s; it must be one of %s'
                              % (where, 'missing' if kind is None else 'not a known type', ', '.join(CREDENTIAL_TYPES)))
        values = {'name': name, 'type': kind}
        if kind == 'digest':
            values['username'] = _credential_string(fields, 'username', True)
            values['password'] = _credential_string(fields, 'password', True)
            if ':' in values['username']:
                raise ConfigError('%s: field \'username\' must not contain ":" (digest auth is "user:password")' % where)
        elif kind == 'sasl':
            mechanism = _credential_string(fields, 'mechanism', True)
            if mechanism.upper() not in SASL_MECHANISMS:
                raise ConfigError('%s: field \'mechanism\' must be one of %s' % (where, ', '.join(SASL_MECHANISMS)))
            values['mechanism'] = mechanism.upper()
            needs_password = values['mechanism'] == 'DIGEST-MD5'
            values['username'] = _credential_string(fields, 'username', needs_password)
            values['password'] = _credential_string(fields, 'password', needs_password)
            values['service'] = _credential_string(fields, 'service', False)
            values['principal'] = _credential_string(fields, 'principal', False)
        else:
            values['key_password'] = _credential_string(fields, 'key_password', True)
        unknown = sorted(set(fields.data) - fields.seen, key=str)
        if unknown:
            raise ConfigError('%s: unknown field%s %s for type %s (allowed: %s)' % (
                where, 's' if len(unknown) > 1 else '', ', '.join(repr(str(k)[:40]) for k in unknown), kind,
                ', '.join(('type',) + _CREDENTIAL_FIELDS[kind])))
        out[name] = Credential(**values)
    return out


#: Largest credentials file read (a sanity bound: the file holds a few entries).
MAX_CREDENTIALS_FILE_BYTES = 1024 * 1024


def _parse_credentials_text(text, path):
    stripped = text.strip()
    if not stripped:
        return {}
    if stripped.startswith('{'):
        try:
            return json.loads(stripped)
        except ValueError as exc:
            # json's message names the problem and position, never the text itself
            position = getattr(exc, 'lineno', None), getattr(exc, 'colno', None)
            if position[0] is None:
                raise ConfigError('credentials file %s is not valid JSON' % path)
            raise ConfigError('credentials file %s is not valid JSON near line %s, column %s' % (path, position[0], position[1]))
    if not HAS_YAML:
        raise ConfigError('credentials file %s is not JSON and PyYAML is not installed: write it as JSON or install PyYAML' % path)
    try:
        return yaml.safe_load(stripped)
    except yaml.YAMLError as exc:
        # the YAML error text quotes the offending line, which may hold a secret: report the position only
        mark = getattr(exc, 'problem_mark', None)
        if mark is not None:
            raise ConfigError('credentials file %s is not valid YAML near line %d, column %d' % (path, mark.line + 1, mark.column + 1))
        raise ConfigError('credentials file %s is not valid YAML' % path)


def load_credentials(path):
    """Read and validate a credentials file; returns {name: Credential}.

    The file (YAML or JSON, a mapping keyed by credential name) must be a
    regular file owned by the running user with no group/other permissions
    (0600 or stricter); anything else is a ConfigError, as is a missing or
    unknown field. Messages never include secret values.
    """
    if not isinstance(path, str) or not path:
        raise ConfigError('credentials file path must be a non-empty string')
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_CLOEXEC', 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            reason = 'does not exist'
        elif exc.errno == errno.EACCES:
            reason = 'is not readable by this user'
        else:
            reason = 'cannot be opened: %s' % os.strerror(exc.errno or 0)
        raise ConfigError('credentials file %s %s' % (path, reason))
    try:
        info = os.fstat(fd)
        if not stat_module.S_ISREG(info.st_mode):
            raise ConfigError('credentials file %s is not a regular file' % path)
        mode = stat_module.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise ConfigError('credentials file %s has mode %04o: it must not be readable or writable by group or others '
                              '(0600 or stricter; run: chmod 600 %s)' % (path, mode, path))
        if hasattr(os, 'geteuid') and info.st_uid != os.geteuid():
            raise ConfigError('credentials file %s is owned by uid %d, not by the user running this process (uid %d)'
                              % (path, info.st_uid, os.geteuid()))
        if info.st_size > MAX_CREDENTIALS_FILE_BYTES:
            raise ConfigError('credentials file %s is larger than %d bytes' % (path, MAX_CREDENTIALS_FILE_BYTES))
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    try:
        text = b''.join(chunks).decode('utf-8')
    except UnicodeDecodeError:
        raise ConfigError('credentials file %s is not UTF-8 text' % path)
    return validate_credentials_mapping(_parse_credentials_text(text, path), source='credentials file %s' % path)


class CredentialStore(object):
    """Named credentials from a file (daemons) or a mapping (modules' no_log option).

    ``reload()`` re-reads the file (the daemon calls it on SIGHUP); if the new
    file is invalid the previous credentials stay in force and ConfigError is
    raised for the caller to log. ``resolve(name)`` returns a ``Credential``.
    Its repr names the source and the credential names only.
    """

    def __init__(self, path=None, mapping=None):
        if (path is None) == (mapping is None):
            raise ConfigError('CredentialStore needs exactly one of path or mapping')
        self.path = path
        self._mapping = mapping
        self._lock = threading.Lock()
        self._credentials = {}
        self.loaded_at = None
        self.reload()

    @classmethod
    def from_file(cls, path):
        """Load a credentials file."""
        return cls(path=path)

    @classmethod
    def from_mapping(cls, mapping):
        """Wrap the modules' ``credentials`` option (None is an empty mapping)."""
        return cls(mapping=mapping if mapping is not None else {})

    @property
    def source(self):
        """Where the credentials come from (for messages)."""
        return 'credentials file %s' % self.path if self.path else 'credentials option'

    def reload(self):
        """Re-read and validate; swap in the new set only if valid. Returns the credential names."""
        if self.path is not None:
            credentials = load_credentials(self.path)
        else:
            credentials = validate_credentials_mapping(self._mapping, source=self.source)
        with self._lock:
            self._credentials = credentials
            self.loaded_at = time.time()
        LOG.info('loaded %d credential(s) from %s: %s', len(credentials), self.source, ', '.join(sorted(credentials)) or '-')
        return sorted(credentials)

    def names(self):
        """Credential names available."""
        with self._lock:
            return sorted(self._credentials)

    def resolve(self, name, expected_type=None):
        """The credential ``name``; ConfigError if unknown or not of ``expected_type``."""
        with self._lock:
            credential = self._credentials.get(name)
        if credential is None:
            raise ConfigError('credential %r is not defined in the %s' % (name, self.source))
        if expected_type is not None and credential.type != expected_type:
            raise ConfigError('credential %r in the %s is of type %s, but type %s is needed here'
                              % (name, self.source, credential.type, expected_type))
        return credential

    def __contains__(self, name):
        with self._lock:
            return name in self._credentials

    def __len__(self):
        with self._lock:
            return len(self._credentials)

    def __repr__(self):
        return 'CredentialStore(source=%r, names=%r)' % (self.source, self.names())

    __str__ = __repr__


def resolve_cluster_connection(cluster, credentials=None):
    """A cluster registration plus its secrets -> the dict ``_client.ClusterSpec.from_dict`` takes.

    Returns ``{name, hosts, chroot, connect_timeout, session_timeout}`` plus
    ``tls: {enabled, ca_file, cert_file, key_file, verify, key_password}``
    when TLS is enabled and ``auth: {scheme, username, password, mechanism,
    service, principal}`` when the cluster authenticates (keys without a
    value left out). ``credentials`` is a CredentialStore (or a mapping
    accepted by it). The result holds secrets: never log or return it.
    """
    record = normalize_cluster(cluster)
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
