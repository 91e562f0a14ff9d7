# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a cluster is, as zk_cluster reports it: its members' modes and versions, its capabilities, the proof of the
migration identity's password, and a summary of its tree (with the znodes the identity may not read).

This is a private module of the zookeeper.migration collection; it may change
without notice.
"""

from ansible_collections.zookeeper.migration.plugins.module_utils._client import (
    connected,
    member_status,
    probe_capabilities,
    prove_identity,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import take_snapshot
from ansible_collections.zookeeper.migration.plugins.module_utils._verify import MAX_SUMMARY_SUBTREES, summarize_snapshot


def add_unreadable(summary, unreadable):
    """Account in ``summary`` for the znodes the walk was not allowed to read (their subtrees unknown).

    Each subtree gets an ``unreadable`` count; one whose top could not be
    read at all appears with kind ``unreadable``. A subtree with unreadable
    parts is not suggested: a sync task on it would be refused (the
    migration identity must read everything it copies).
    """
    depth = summary['depth']
    groups = dict((entry['path'], entry) for entry in summary['subtrees'])
    for entry in groups.values():
        entry['unreadable'] = 0
    partly_unreadable = set()
    for path in unreadable:
        key = '/' + '/'.join(path.split('/', depth + 1)[1:depth + 1])   # grouped as summarize_snapshot does
        partly_unreadable.add(key)
        entry = groups.get(key)
        if entry is None:
            entry = groups[key] = {'path': key, 'persistent': 0, 'ephemeral': 0, 'bytes': 0, 'ephemeral_share': 0.0,
                                   'kind': 'unreadable', 'unreadable': 0}
        entry['unreadable'] += 1
    subtrees = [groups[key] for key in sorted(groups)]
    summary['truncated'] = summary['truncated'] or len(subtrees) > MAX_SUMMARY_SUBTREES
    summary['subtrees'] = subtrees[:MAX_SUMMARY_SUBTREES]
    summary['suggested_paths'] = [path for path in summary['suggested_paths'] if path not in partly_unreadable]
    summary['total']['unreadable'] = len(unreadable)
    summary['unreadable_paths'] = sorted(unreadable)[:MAX_SUMMARY_SUBTREES]
    return summary


def inspect_cluster(spec, summarize, control_root, prove=True):
    """Connect, prove the digest password (``prove``), read the members' modes and capabilities, and summarize the tree when asked."""
    with connected(spec) as client:
        identity = prove_identity(client, spec) if prove else None
        capabilities = probe_capabilities(client)
        summary = None
        if summarize:
            unreadable = []
            snapshot = take_snapshot(client, ['/'], with_acl=False, keep_data=False, control_root=control_root, cluster=spec.name,
                                     unreadable=unreadable)
            summary = add_unreadable(summarize_snapshot(snapshot, summarize), unreadable)
    # as patient as the connection itself: a loaded member may take a while to answer srvr
    statuses = member_status(spec, timeout=spec.connect_timeout)
    members = {}
    unreachable = {}
    versions = set()
    for address in spec.hosts:
        status = statuses.get(address, {})
        members[address] = {'mode': status.get('mode'), 'version': status.get('version'), 'error': status.get('error')}
        if status.get('version'):
            versions.add(status['version'])
        if not status.get('mode') and status.get('error') and 'whitelist' not in status['error']:
            unreachable[address] = status['error']
    server_version = capabilities.server_version or (sorted(versions)[-1] if versions else None)
    info = {
        'name': spec.name,
        'hosts': list(spec.hosts),
        'chroot': spec.chroot,
        'server_version': server_version,
        'server_versions': sorted(versions),
        'members': members,
        'unreachable': unreachable,
        'capabilities': {'multi_read': capabilities.multi_read, 'persistent_watches': capabilities.persistent_watches},
    }
    if identity is not None:
        info['identity'] = identity
    return info, summary


__all__ = ['add_unreadable', 'inspect_cluster']
