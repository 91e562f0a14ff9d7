# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Control-plane records: names, paths and hosts, field validation, and the schema of every record.

Each ``normalize_*`` function takes user input (or a record read back) and
returns the canonical record, defaults filled, or raises ``ConfigError``
(the store turns it into ``SchemaError`` for records read from ZooKeeper).
``encode_record``/``decode_record`` are their JSON form. Nothing here talks
to ZooKeeper; ``_control.ControlStore`` stores these records. The record
layout and schema are documented in ``docs/control-plane.md``.

This is a private module of the zookeeper.migration collection; it may change
without notice.
"""

import copy
import json
import posixpath
import re

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    ConfigError,
    SchemaError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._counters import DEFAULT_COUNTERS, normalize_counters
from ansible_collections.zookeeper.migration.plugins.module_utils._hosts import parse_host


SCHEMA_VERSION = 1
DEFAULT_ROOT = '/zookeeper-migration'
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

NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$')
_SECRET_KEY_RE = re.compile(r'pass|secret|token|private', re.IGNORECASE)
REQUIRED = object()


def check_name(value, what, error=ConfigError):
    """Return ``value`` if it is a usable record name (one znode name), else raise ``error``."""
    if not isinstance(value, str) or not NAME_RE.match(value):
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

class Fields(object):
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

    def get(self, key, kind, default=REQUIRED, choices=None, minimum=None, maximum=None, nullable=False, allow_empty=False):
        """Return field ``key`` checked against ``kind`` (str, bool, int, number, list, dict)."""
        self.seen.add(key)
        if key not in self.data or (self.data[key] is None and not nullable):
            if default is REQUIRED:
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
    fields = Fields(record, where, error)
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
            host = parse_host(host, '%s: hosts[%d]' % (where, index))
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
    tls_fields = Fields(tls_in, '%s: tls' % where, error)
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
    auth_fields = Fields(auth_in, '%s: auth' % where, error)
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
    fields = Fields(entry, where, error)
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
    fields = Fields(spec, where, error)
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
    fields = Fields(status, 'task status', error)
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
    fields = Fields(info, 'daemon registration', error)
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
    fields = Fields(record, 'cutover record', error)
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


def normalize_root_marker(record, error=ConfigError):
    fields = Fields(record, 'control root marker', error)
    out = {'schema_version': _schema_version(fields)}
    out['kind'] = fields.get('kind', 'str')
    if out['kind'] != ROOT_KIND:
        raise error('control root marker: kind is %r, not %r: this znode is not a zookeeper.migration control root'
                    % (out['kind'], ROOT_KIND))
    out['created_at'] = fields.get('created_at', 'number', default=None, nullable=True)
    fields.finish()
    return out


def normalize_blob_manifest(record, error=ConfigError):
    fields = Fields(record, 'chunked blob manifest', error)
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


def saved_acl_prefix(side):
    if side not in SAVED_ACL_PREFIXES:
        raise ConfigError('saved ACLs belong to the source or the destination, not %r' % (side,))
    return SAVED_ACL_PREFIXES[side]


def normalize_saved_acl_chunk(record, error=ConfigError):
    fields = Fields(record, 'saved ACL chunk', error)
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
    fields = Fields(record, 'fence record', error)
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
    'root': normalize_root_marker,
    'manifest': normalize_blob_manifest,
    'acl_chunk': normalize_saved_acl_chunk,
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
    return validated_record(record, path, normalizer)


def validated_record(record, path, normalizer):
    try:
        return normalizer(record, error=SchemaError)
    except SchemaError as exc:
        raise SchemaError('control record %s is invalid: %s' % (path, exc.message), path=path)
