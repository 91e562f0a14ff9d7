# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A portable export of subtrees (data, ACLs, node types, counters) to a file, and its restore into a cluster.

This is a private module of the zookeeper.migration collection; it may change
without notice.

The cutover writes one before it freezes the source (``zk_cutover
backup_dir``), so that a rollback works while the destination is down: the
export holds every source node's original ACL (and the ACLs the freeze saved,
when given), and restoring only the ACLs thaws the source without the control
store. ``zk_backup`` writes and restores them. docs/backup.md is the user's
side of this.

Format (``.jsonl.gz``, one JSON object a line, gzip):

* a header line ``{"format": FORMAT, "version": 2, "cluster", "paths",
  "exclude", "created_at", ...}`` (the cutover adds ``task``);
* one line per node ``{"p": path, "d": base64 data, "a": [[perms, scheme,
  id], ...], "k": node kind, "c": next sequential suffix, "e": true for an
  ephemeral (listed, never restored)}``, parents before children. The kind is
  ``persistent`` or ``ephemeral``, ``_sequential`` appended when the name ends
  with the 10-digit suffix of a sequential create (ZooKeeper stores no
  sequential flag). Container and TTL nodes read as persistent: servers since
  3.5.4 show clients an ephemeralOwner of 0 for them (ZOOKEEPER-2901), as the
  snapshot module notes. ``c`` is ``_diff.sequential_counter``, the definition
  verify and the sync compare;
* one line per saved ACL ``{"s": path, "a": [[perms, scheme, id], ...]}``:
  the originals a freeze saved (version 2);
* a trailer ``{"end": true, "nodes": N, "saved_acls": M, "sha256": hex of
  every line before it}``.

The count and checksum are in a trailer rather than the header so that the
file is written in one pass without holding the tree (a header checksum needs
the whole body before the first byte). A file without its trailer (truncated)
or with another checksum is refused before anything is written: the file is
read twice, once to check, once to use, and the second read checks again
before the restore writes. Files are written atomically (temporary file,
fsync, rename, fsync of the directory) with mode 0600: ACLs hold digest hashes.

Memory: the export holds the snapshot (``take_snapshot`` keeps the whole
scope with its data); the restore holds the nodes to write (its plan), never
the file's lines.
"""

import base64
import gzip
import hashlib
import json
import time
import zlib

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError, ZkMigrationError
from ansible_collections.zookeeper.migration.plugins.module_utils._client import translate_error
from ansible_collections.zookeeper.migration.plugins.module_utils._files import atomic_file
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import (
    has_sequential_suffix,
    is_redacted_acl,
    parent_of,
    sequential_counter,
)

FORMAT = 'zookeeper.migration export'
VERSION = 2
READABLE_VERSIONS = (1, 2)
RESTORE_MODES = ('missing', 'overwrite')
# Paths listed per kind of change in a restore's result (counts are always whole).
MAX_LISTED = 100


def node_kind(path, ephemeral=False):
    """``persistent`` or ``ephemeral``, with ``_sequential`` when the name carries a sequential create's suffix."""
    kind = 'ephemeral' if ephemeral else 'persistent'
    return kind + '_sequential' if has_sequential_suffix(path.rpartition('/')[2]) else kind


def encode_node(path, data, acl, kind=None, counter=0, ephemeral=False):
    """One node's line (a dict): binary-safe data, ACL entries in server order."""
    record = {'p': path, 'd': base64.b64encode(data or b'').decode('ascii'), 'a': _acl_lists(acl),
              'k': kind or node_kind(path, ephemeral), 'c': int(counter)}
    if ephemeral:
        record['e'] = True
    return record


def decode_node(record):
    """``(path, data bytes, ACL tuples, kind, counter, ephemeral)`` of a node line."""
    try:
        return (_checked_path(record['p']), base64.b64decode(record['d'].encode('ascii'), validate=True),
                _acl_tuples(record['a']), record.get('k', 'persistent'), int(record.get('c', 0)), bool(record.get('e')))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError('a node line of the export is malformed (%s): %r' % (exc, str(record)[:200]))


def encode_saved_acl(path, acl):
    """One saved ACL's line (a dict)."""
    return {'s': path, 'a': _acl_lists(acl)}


def decode_saved_acl(record):
    """``(path, ACL tuples)`` of a saved ACL line."""
    try:
        return _checked_path(record['s']), _acl_tuples(record['a'])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError('a saved ACL line of the export is malformed (%s): %r' % (exc, str(record)[:200]))


def _acl_lists(acl):
    from ansible_collections.zookeeper.migration.plugins.module_utils._apply import acl_tuple
    return [list(entry) for entry in acl_tuple(acl) or ()]


def _acl_tuples(entries):
    out = []
    for entry in entries:
        perms, scheme, ident = entry
        if not isinstance(perms, int) or isinstance(perms, bool) or not isinstance(scheme, str) or not isinstance(ident, str):
            raise ValueError('an ACL entry is [perms, scheme, id], got %r' % (entry,))
        out.append((perms, scheme, ident))
    return tuple(out)


def _checked_path(path):
    if not isinstance(path, str) or not path.startswith('/'):
        raise ValueError('not an absolute znode path: %r' % (path,))
    return path


def _line(record):
    return (json.dumps(record, sort_keys=True) + '\n').encode('utf-8')


def write_export(path, header, records, saved_acls=None):
    """Write ``header``, the node ``records`` (dicts, any iterable) and ``saved_acls`` ({path: ACL}) to ``path``.

    Atomically (temporary file in the same directory, fsync, rename), mode
    0600; the records are written as they come. Returns the node count.
    """
    digest = hashlib.sha256()
    counts = {'nodes': 0, 'saved': 0}
    with atomic_file(path, 'the export', binary=True, prefix='.zk-export-') as raw:
        with gzip.GzipFile(fileobj=raw, mode='wb') as stream:

            def put(record):
                line = _line(record)
                digest.update(line)
                stream.write(line)

            put(header)
            for record in records:
                put(record)
                counts['nodes'] += 1
            for saved_path in sorted(saved_acls or ()):
                put(encode_saved_acl(saved_path, saved_acls[saved_path]))
                counts['saved'] += 1
            stream.write(_line({'end': True, 'nodes': counts['nodes'], 'saved_acls': counts['saved'], 'sha256': digest.hexdigest()}))
    return counts['nodes']


def _lines(path):
    """The raw lines of an export, read as they come; unreadable gzip -> ConfigError."""
    try:
        with gzip.open(path, 'rb') as stream:
            yield from stream
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise ConfigError('cannot read the export %s: %s (truncated or not a gzip file?)' % (path, exc))


def _json(path, line, what):
    try:
        value = json.loads(line.decode('utf-8'))
    except ValueError as exc:
        raise ConfigError('the export %s is not JSON lines (%s): %s' % (path, what, exc))
    if not isinstance(value, dict):
        raise ConfigError('the export %s is corrupt: its %s is not a JSON object' % (path, what))
    return value


def check_export(path):
    """Check an export whole without holding it (format, trailer, checksum, counts); returns ``(header, trailer)``."""
    digest = hashlib.sha256()
    header = previous = None
    lines = 0
    for line in _lines(path):
        if previous is not None:
            digest.update(previous)
        elif header is None:
            header = _json(path, line, 'first line')
            if header.get('format') != FORMAT or header.get('version') not in READABLE_VERSIONS:
                readable = ', '.join(str(version) for version in READABLE_VERSIONS)
                raise ConfigError('%s is not an export of zookeeper.migration (format %r, version %s; this collection reads '
                                  'format %r, versions %s)' % (path, header.get('format'), header.get('version'), FORMAT, readable))
        previous = line
        lines += 1
    if lines < 2:
        raise ConfigError('the export %s is empty or truncated (no header and trailer)' % path)
    trailer = _json(path, previous, 'last line')
    if not trailer.get('end'):
        raise ConfigError('the export %s is truncated: its last line is not the trailer' % path)
    if digest.hexdigest() != trailer.get('sha256') or trailer.get('nodes', 0) + trailer.get('saved_acls', 0) != lines - 2:
        raise ConfigError('the export %s is corrupt: its checksum or node count does not match its content' % path)
    return header, trailer


def iter_export(path, trailer):
    """The node and saved-ACL lines (dicts) of an export ``check_export`` passed, in file order.

    The lines are hashed again as they are read: a file changed since the
    check raises ``ConfigError`` at its end, before a caller that gathers
    first (the restore) writes anything.
    """
    digest = hashlib.sha256()
    first = True
    for line in _lines(path):
        if first:
            first = False
            digest.update(line)
            continue
        value = _json(path, line, 'a line')
        if value.get('end'):
            if digest.hexdigest() != trailer.get('sha256'):
                raise ConfigError('the export %s changed while it was read' % path)
            return
        digest.update(line)
        yield value
    raise ConfigError('the export %s changed while it was read (its trailer is gone)' % path)


def read_export(path):
    """``(header, [node records])`` of an export, checked whole first (the saved ACL lines: ``read_saved_acls``)."""
    header, trailer = check_export(path)
    return header, [record for record in iter_export(path, trailer) if 's' not in record]


def read_saved_acls(path):
    """The ``{path: ACL tuples}`` a freeze had saved, as the export holds them (checked whole first)."""
    _header, trailer = check_export(path)
    return dict(decode_saved_acl(record) for record in iter_export(path, trailer) if 's' in record)


def export_scope(client, paths, out_path, exclude=(), control_root=None, cluster=None, now=time.time, extra=None,
                 saved_acls=None):
    """Export the persistent nodes under ``paths`` (and list the ephemeral ones) from a connected client to ``out_path``.

    * ``control_root``: the control store's root, left out when in scope.
    * ``extra``: more header fields (the cutover's ``task``).
    * ``saved_acls``: ``{path: ACL}`` the original ACLs a freeze saved
      (``ControlStore.load_saved_acls``): written to the file's saved-ACL
      section; a restore prefers them to the nodes' ACLs, which are the frozen
      ones when the export is written after a freeze.

    Returns the number of persistent nodes exported.
    """
    from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import take_snapshot
    options = {} if control_root is None else {'control_root': control_root}
    paths = list(paths)
    snapshot = take_snapshot(client, paths, exclude=exclude, with_acl=True, keep_data=True, cluster=cluster, **options)
    header = {'format': FORMAT, 'version': VERSION, 'cluster': cluster, 'paths': paths, 'exclude': list(exclude or ()),
              'created_at': now()}
    header.update(extra or {})
    nodes = sorted(snapshot.nodes.values(), key=lambda node: (node.path.count('/'), node.path))
    records = (encode_node(node.path, node.data, node.acl, None, sequential_counter(node), node.is_ephemeral) for node in nodes)
    write_export(out_path, header, records, saved_acls=saved_acls)
    return snapshot.persistent_count


def path_mapping(into, roots):
    """A function mapping exported paths to restored ones, from ``into``.

    ``into`` is None (paths unchanged), a path (the new place of the export's
    only root) or ``{exported prefix: new prefix}`` (longest prefix wins;
    paths under no prefix are unchanged).
    """
    if into is None or into == {}:
        return lambda path: path
    if isinstance(into, str):
        if len(roots) != 1:
            raise ConfigError('into as one path needs an export of one path; this one holds %s: give into as '
                              '{exported path: new path}' % ', '.join(roots))
        into = {roots[0]: into}
    if not isinstance(into, dict):
        raise ConfigError('into must be a path or a dict {exported path: new path}, got %r' % (into,))
    pairs = []
    for old, new in into.items():
        for value in (old, new):
            if not isinstance(value, str) or not value.startswith('/') or (value != '/' and value.endswith('/')) or '//' in value:
                raise ConfigError('into: %r is not an absolute znode path' % (value,))
        pairs.append((old, new))
    pairs.sort(key=lambda pair: -len(pair[0]))

    def mapped(path):
        for old, new in pairs:
            if path == old:
                return new
            if old == '/' or path.startswith(old + '/'):
                rest = path[len(old):] if old != '/' else path
                return rest if new == '/' else new + rest
        return path
    return mapped


def _listed(result, key, path):
    listing = result['paths'][key]
    if len(listing) < MAX_LISTED:
        listing.append(path)


def _failed(exc, path, cluster):
    error = translate_error(exc, path=path, cluster=cluster)
    return error if isinstance(error, ZkMigrationError) else ZkMigrationError('%s: %s' % (type(exc).__name__, exc), path=path,
                                                                              cluster=cluster)


def restore_export(client, path, mode='missing', acls=True, counters=True, only_acls=False, check_mode=False, cluster=None,
                   into=None):
    """Restore an export into a connected client; returns a result dict (counts, and up to 100 paths of each kind).

    * ``mode``: ``missing`` creates what is missing (never changes existing
      data); ``overwrite`` also sets the data of existing nodes that differ.
      Nothing is ever deleted, and existing nodes' ACLs are left as they are.
    * ``acls``: created nodes get their original ACL (the saved one when the
      file has a saved-ACL section, else the exported one); without, they
      inherit their parent's plus the migration identity's rights.
    * ``only_acls``: set the original ACLs on the existing nodes and nothing
      else (a thaw of a frozen cluster from the export), then read them back.
    * ``counters``: sequential counters are raised to at least the exported ones.
    * ``into``: where to restore (``path_mapping``).

    The file is checked whole before the cluster is read, and everything is
    planned (and the file checked again) before the first write.
    """
    if mode not in RESTORE_MODES:
        raise ConfigError('mode must be one of %s, got %r' % (', '.join(RESTORE_MODES), mode))
    header, trailer = check_export(path)
    mapped = path_mapping(into, header.get('paths') or [])
    nodes = []
    saved = {}
    ephemerals = 0
    for record in iter_export(path, trailer):
        if 's' in record:
            saved_path, acl = decode_saved_acl(record)
            saved[mapped(saved_path)] = acl
            continue
        node_path, data, acl, kind, counter, ephemeral = decode_node(record)
        if ephemeral:
            ephemerals += 1
            continue
        nodes.append((mapped(node_path), data, acl, kind, counter))
    result = {'cluster': header.get('cluster'), 'nodes': len(nodes), 'ephemerals': ephemerals, 'saved_acls': len(saved),
              'created': 0, 'updated': 0, 'unchanged': 0, 'acls_set': 0, 'absent': 0, 'counters_raised': 0, 'changed': False,
              'paths': {'created': [], 'updated': [], 'acls_set': [], 'counters_raised': [], 'absent': []}}
    try:
        if only_acls:
            _restore_acls(client, nodes, saved, result, check_mode, cluster)
        else:
            _restore_nodes(client, nodes, saved, result, mode, acls, counters, check_mode, cluster)
    except ZkMigrationError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        error = translate_error(exc, cluster=cluster)
        if error is exc:
            raise
        raise error
    return result


def _refuse_masked(items, cluster):
    masked = [item_path for item_path, acl in items if is_redacted_acl(acl)]
    if masked:
        from ansible_collections.zookeeper.migration.plugins.module_utils._errors import AuthFailedError
        raise AuthFailedError('the export holds %d ACL(s), e.g. of %s, read with masked digest hashes (user:x): the identity that '
                              'wrote it lacked ADMIN on those nodes, so their ACLs cannot be restored (restore without ACLs, or '
                              'export again as an identity with ADMIN or a superDigest one)' % (len(masked), masked[0]),
                              path=masked[0], cluster=cluster)


def _restore_acls(client, nodes, saved, result, check_mode, cluster):
    """Put the original ACLs back on the existing nodes (saved ones first), and read them back."""
    from ansible_collections.zookeeper.migration.plugins.module_utils._apply import acl_tuple
    from ansible_collections.zookeeper.migration.plugins.module_utils._freeze import set_acls_pipelined
    from ansible_collections.zookeeper.migration.plugins.module_utils._protocol import get_acls_pipelined
    wanted = dict((node_path, saved.get(node_path, acl)) for node_path, _data, acl, _kind, _counter in nodes)
    for saved_path, acl in saved.items():
        wanted.setdefault(saved_path, acl)
    order = sorted(wanted, key=lambda item: (item.count('/'), item))
    _refuse_masked([(item, wanted[item]) for item in order], cluster)
    current = get_acls_pipelined(client, order)
    changes = []
    for item in order:
        outcome = current[item]
        if isinstance(outcome, Exception):
            error = _failed(outcome, item, cluster)
            if error.kind != 'no_node':
                raise error
            result['absent'] += 1
            _listed(result, 'absent', item)
        elif acl_tuple(outcome[0]) != wanted[item]:
            changes.append((item, wanted[item], -1))
            _listed(result, 'acls_set', item)
        else:
            result['unchanged'] += 1
    result['acls_set'] = len(changes)
    result['changed'] = bool(changes)
    if not changes or check_mode:
        return
    outcomes = set_acls_pipelined(client, changes)
    for item, _acl, _version in changes:
        if isinstance(outcomes[item], Exception):
            raise _failed(outcomes[item], item, cluster)
    check = get_acls_pipelined(client, [item for item, _acl, _version in changes])
    for item, acl, _version in changes:
        outcome = check[item]
        if isinstance(outcome, Exception) or acl_tuple(outcome[0]) != acl:
            raise ZkMigrationError('the ACL of %s read back after the restore is %s, not the original %s: something else changed it'
                                   % (item, 'unreadable' if isinstance(outcome, Exception) else list(acl_tuple(outcome[0])),
                                      list(acl)), path=item, cluster=cluster)


def _restore_nodes(client, nodes, saved, result, mode, acls, counters, check_mode, cluster):
    """Create what is missing (parents first), set differing data (overwrite), raise counters; one plan, batched writes."""
    from ansible_collections.zookeeper.migration.plugins.module_utils import _apply
    from ansible_collections.zookeeper.migration.plugins.module_utils._protocol import read_pipelined
    nodes.sort(key=lambda node: (node[0].count('/'), node[0]))
    found = read_pipelined(client, [('data', node[0]) for node in nodes])
    plan = _apply.Plan()
    creates = []
    in_export = set()
    for (node_path, data, acl, _kind, counter), outcome in zip(nodes, found):
        in_export.add(node_path)
        if isinstance(outcome, Exception):
            error = _failed(outcome, node_path, cluster)
            if error.kind != 'no_node':
                raise error
            original = saved.get(node_path, acl) if acls else None
            creates.append((node_path, original))
            plan.create(node_path, data, original)
            result['created'] += 1
            _listed(result, 'created', node_path)
            have = 0
        else:
            if mode == 'overwrite' and outcome[0] != data:
                plan.set_data(node_path, data, outcome[1].version)
                result['updated'] += 1
                _listed(result, 'updated', node_path)
            else:
                result['unchanged'] += 1
            have = sequential_counter(_Stat(outcome[1]))
        if counters and counter > have:
            plan.raise_cversion(node_path, counter)
            result['counters_raised'] += 1
            _listed(result, 'counters_raised', node_path)
    if acls:
        _refuse_masked(creates, cluster)
    for parent in sorted(set(parent_of(node_path) for node_path, _acl in creates) - in_export - {'/'}):
        if client.exists(parent) is None:
            raise ConfigError('cannot restore under %s: it does not exist on cluster %s and is not in the export (create it, '
                              'or restore elsewhere with into)' % (parent, cluster), path=parent)
    result['changed'] = bool(result['created'] or result['updated'] or result['counters_raised'])
    if result['changed'] and not check_mode:
        _apply.apply_plan(client, plan, cluster=cluster)


class _Stat(object):
    """What ``sequential_counter`` reads of a kazoo ZnodeStat."""

    def __init__(self, stat):
        self.cversion = stat.cversion
        self.num_children = stat.numChildren


__all__ = ['export_scope', 'restore_export', 'read_export', 'read_saved_acls', 'check_export', 'iter_export', 'write_export',
           'encode_node', 'decode_node', 'encode_saved_acl', 'decode_saved_acl', 'node_kind', 'path_mapping', 'FORMAT', 'VERSION']
