# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A portable export of subtrees (data, ACLs, node types, counters) to a file, and its restore into a cluster.

This is a private module of the zookeeper.migration collection; it may change
without notice.

The cutover writes one before it freezes the source (``zk_cutover
backup_dir``), so that a rollback works while the destination is down: the
export holds every source node's original ACL, and restoring only the ACLs
thaws the source without the control store. ``zk_backup`` writes and
restores them.

Format (``.jsonl.gz``, one JSON object a line, gzip): a header line
``{"format": FORMAT, "version": 1, "cluster", "paths", "created_at"}``, one
line per node ``{"p": path, "d": base64 data, "a": [[perms, scheme, id], ...],
"k": node kind, "c": next sequential suffix, "e": true for an ephemeral
(listed, never restored)}``, parents before children, and a trailer
``{"end": true, "nodes": N, "sha256": hex of every line before it}``. A file
without its trailer (truncated) or with another checksum is refused before
anything is written. Files are written atomically with mode 0600: ACLs hold
digest hashes.
"""

import base64
import gzip
import hashlib
import json
import os
import tempfile
import time

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError
from ansible_collections.zookeeper.migration.plugins.module_utils._client import translate_error
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import parent_of, sequential_counter

FORMAT = 'zookeeper.migration export'
VERSION = 1


def encode_node(path, data, acl, kind='persistent', counter=0, ephemeral=False):
    """One node's line (a dict): binary-safe data, ACL entries in server order."""
    record = {'p': path, 'd': base64.b64encode(data or b'').decode('ascii'), 'a': [list(entry) for entry in acl or ()],
              'k': kind, 'c': int(counter)}
    if ephemeral:
        record['e'] = True
    return record


def decode_node(record):
    """``(path, data bytes, ACL tuples, kind, counter, ephemeral)`` of a node line."""
    try:
        return (record['p'], base64.b64decode(record['d'].encode('ascii'), validate=True),
                tuple(tuple(entry) for entry in record['a']), record.get('k', 'persistent'), int(record.get('c', 0)),
                bool(record.get('e')))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError('a node line of the export is malformed (%s): %r' % (exc, str(record)[:200]))


def write_export(path, header, records):
    """Write ``header`` and the node ``records`` (dicts) to ``path``, atomically, mode 0600; returns the node count."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigError('cannot write the export %s: the directory %s does not exist' % (path, directory))
    digest = hashlib.sha256()
    count = 0
    handle, temporary = tempfile.mkstemp(prefix='.zk-export-', dir=directory)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, 'wb') as raw:
            with gzip.GzipFile(fileobj=raw, mode='wb') as stream:
                for record in [header] + list(records):
                    line = (json.dumps(record, sort_keys=True) + '\n').encode('utf-8')
                    digest.update(line)
                    stream.write(line)
                    count += 1
                trailer = {'end': True, 'nodes': count - 1, 'sha256': digest.hexdigest()}
                stream.write((json.dumps(trailer, sort_keys=True) + '\n').encode('utf-8'))
            raw.flush()
            os.fsync(raw.fileno())
        os.rename(temporary, path)
    except Exception:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return count - 1


def read_export(path):
    """``(header, [node records])`` of an export, checked whole (format, trailer, checksum) before anything uses it."""
    digest = hashlib.sha256()
    lines = []
    try:
        with gzip.open(path, 'rb') as stream:
            for line in stream:
                lines.append(line)
    except (OSError, EOFError) as exc:
        raise ConfigError('cannot read the export %s: %s (truncated or not a gzip file?)' % (path, exc))
    if len(lines) < 2:
        raise ConfigError('the export %s is empty or truncated (no header and trailer)' % path)
    try:
        header = json.loads(lines[0].decode('utf-8'))
        trailer = json.loads(lines[-1].decode('utf-8'))
    except ValueError as exc:
        raise ConfigError('the export %s is not JSON lines: %s' % (path, exc))
    if not isinstance(header, dict) or header.get('format') != FORMAT or header.get('version') != VERSION:
        raise ConfigError('%s is not an export of zookeeper.migration (format %r, version %d)' % (path, FORMAT, VERSION))
    if not isinstance(trailer, dict) or not trailer.get('end'):
        raise ConfigError('the export %s is truncated: its last line is not the trailer' % path)
    for line in lines[:-1]:
        digest.update(line)
    if digest.hexdigest() != trailer.get('sha256') or trailer.get('nodes') != len(lines) - 2:
        raise ConfigError('the export %s is corrupt: its checksum or node count does not match its content' % path)
    return header, [json.loads(line.decode('utf-8')) for line in lines[1:-1]]


def export_scope(client, paths, out_path, exclude=(), control_root=None, cluster=None, now=time.time, extra=None):
    """Export the persistent nodes under ``paths`` (and list the ephemeral ones) from a connected client.

    Returns the number of persistent nodes exported.
    """
    from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import take_snapshot
    options = {} if control_root is None else {'control_root': control_root}
    snapshot = take_snapshot(client, list(paths), exclude=exclude, with_acl=True, keep_data=True, cluster=cluster, **options)
    header = {'format': FORMAT, 'version': VERSION, 'cluster': cluster, 'paths': list(paths), 'created_at': now()}
    header.update(extra or {})
    nodes = sorted(snapshot.nodes.values(), key=lambda node: (node.path.count('/'), node.path))
    records = (encode_node(node.path, node.data, node.acl, 'persistent', sequential_counter(node), bool(node.ephemeral_owner))
               for node in nodes)
    write_export(out_path, header, records)
    return snapshot.persistent_count


def restore_export(client, path, mode='missing', acls=True, counters=True, only_acls=False, check_mode=False, cluster=None):
    """Restore an export into a connected client; returns a result dict (counts and the paths of each kind).

    * ``mode``: ``missing`` creates what is missing (never changes existing
      data); ``overwrite`` also sets the data of existing nodes that differ.
      Nothing is ever deleted.
    * ``acls``: created nodes get their exported ACL; with ``only_acls`` the
      exported ACLs are set on existing nodes and nothing else is done (a
      thaw of a frozen cluster from the export), and read back.
    * ``counters``: sequential counters are raised to at least the exported ones.
    """
    from ansible_collections.zookeeper.migration.plugins.module_utils import _apply
    from ansible_collections.zookeeper.migration.plugins.module_utils._freeze import set_acls_pipelined
    from ansible_collections.zookeeper.migration.plugins.module_utils._protocol import get_acls_pipelined
    header, records = read_export(path)
    nodes = [decode_node(record) for record in records]
    persistent = [node for node in nodes if not node[5]]
    result = {'cluster': header.get('cluster'), 'nodes': len(persistent), 'created': 0, 'updated': 0, 'unchanged': 0,
              'acls_set': 0, 'counters_raised': 0, 'changed': False}
    try:
        if only_acls:
            current = get_acls_pipelined(client, [node[0] for node in persistent])
            changes = [(node[0], node[2], -1) for node in persistent
                       if not isinstance(current[node[0]], Exception)
                       and _apply.acl_tuple(current[node[0]][0]) != tuple(node[2])]
            result['acls_set'] = len(changes)
            result['changed'] = bool(changes)
            if changes and not check_mode:
                outcomes = set_acls_pipelined(client, changes)
                failed = [name for name, outcome in outcomes.items() if isinstance(outcome, Exception)]
                if failed:
                    raise translate_error(outcomes[failed[0]], path=failed[0], cluster=cluster)
            return result
        plan = _apply.Plan()
        existing = {}
        for node_path, data, acl, _kind, counter, _ephemeral in persistent:
            try:
                found = client.get(node_path)
            except Exception as exc:  # pylint: disable=broad-except
                error = translate_error(exc, path=node_path, cluster=cluster)
                if error.kind != 'no_node':
                    raise error
                found = None
            existing[node_path] = found
            if found is None:
                plan.create(node_path, data, acl if acls else None)
                result['created'] += 1
            elif mode == 'overwrite' and found[0] != data:
                plan.set_data(node_path, data, found[1].version)
                result['updated'] += 1
            else:
                result['unchanged'] += 1
        if counters:
            for node_path, _data, _acl, _kind, counter, _ephemeral in persistent:
                found = existing[node_path]
                have = sequential_counter(_Stat(found[1])) if found is not None else 0
                if counter > have:
                    plan.raise_cversion(node_path, counter)
                    result['counters_raised'] += 1
        missing_parents = sorted(set(parent_of(node[0]) for node in persistent if existing[node[0]] is None)
                                 - set(node[0] for node in persistent) - {'/'})
        for parent in missing_parents:
            if client.exists(parent) is None:
                raise ConfigError('cannot restore under %s: it does not exist on cluster %s and is not in the export'
                                  % (parent, cluster), path=parent)
        result['changed'] = bool(result['created'] or result['updated'] or result['counters_raised'])
        if result['changed'] and not check_mode:
            _apply.apply_plan(client, plan, cluster=cluster)
    except ConfigError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        error = translate_error(exc, cluster=cluster)
        if error is exc:
            raise
        raise error
    return result


class _Stat(object):
    """What ``sequential_counter`` reads of a kazoo ZnodeStat."""

    def __init__(self, stat):
        self.cversion = stat.cversion
        self.num_children = stat.numChildren


__all__ = ['export_scope', 'restore_export', 'read_export', 'write_export', 'encode_node', 'decode_node', 'FORMAT', 'VERSION']
