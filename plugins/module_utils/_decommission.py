# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Removing a task and what its migration left behind (``zk_sync_task state: absent``).

This is a private module of the zookeeper.migration collection; it may change
without notice.

A task leaves traces outside its control-store subtree: on each data
cluster a fence znode (``<root>/fence/<task>``) and a sync journal
(``<root>/journal/<task>/j-*``), and with ``acl_mode: grant_migrator`` the
migrator's ALL entries in the ACL of every destination node the sync
created or updated. ``Decommission.run``:

1. refuses while the task's saved ACLs are still needed (a frozen source or
   destination: they are what thaws it) unless they are exported to a file
   first (``saved_acls_export``), and a task with a cutover record unless
   ``force``;
2. stops the task and waits until no daemon leads it (a leader would bump
   its fence again);
3. on each reachable data cluster, deletes the task's fence and journal and
   the ``fence``/``journal`` parents (and the root) when nothing else is in
   them; an unreachable cluster (a source already shut down) is reported,
   not an error;
4. with ``grant_migrator``, removes the migrator's entries from the
   destination ACLs in scope where the source's original ACL does not have
   them (never on a frozen side, whose only writer is the migrator, and
   never leaving an ACL empty);
5. deletes the task with its status, election, baseline, cutover record and
   saved ACLs.
"""

import json
import time

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    ClusterUnreachableError,
    ConfigError,
    ZkMigrationError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils import _fencing
from ansible_collections.zookeeper.migration.plugins.module_utils import _records
from ansible_collections.zookeeper.migration.plugins.module_utils import _registration
from ansible_collections.zookeeper.migration.plugins.module_utils import _task
from ansible_collections.zookeeper.migration.plugins.module_utils._client import connected, translate_error
from ansible_collections.zookeeper.migration.plugins.module_utils._files import atomic_file

try:
    from kazoo import exceptions as kazoo_exceptions
except ImportError:
    kazoo_exceptions = None

SIDES = ('source', 'destination')
EXPORT_FORMAT = 'zookeeper.migration saved ACLs'
EXPORT_VERSION = 1


def without_migrator_grants(acl, migrator_acl, original=None):
    """``acl`` without the migrator's entries that ``original`` (the source's ACL of the node) does not have.

    Returns None when nothing would be left (ZooKeeper refuses an empty ACL):
    the node keeps its ACL.
    """
    granted = set(tuple(entry) for entry in migrator_acl or ()) - set(tuple(entry) for entry in original or ())
    kept = tuple(tuple(entry) for entry in acl if tuple(entry) not in granted)
    return kept or None


def write_saved_acls(path, task, names, saved, now=time.time):
    """Write the saved ACLs of both sides to ``path`` (JSON, mode 0600, atomically); returns the number of paths.

    They hold digest hashes: the file is readable by its owner only.
    """
    document = {
        'format': EXPORT_FORMAT, 'version': EXPORT_VERSION, 'task': task, 'saved_at': now(),
        'clusters': {'source': names[0], 'destination': names[1]},
        'acls': dict((side, dict((node, [list(entry) for entry in acl]) for node, acl in sorted(saved.get(side, {}).items())))
                     for side in SIDES),
    }
    with atomic_file(path, 'saved_acls_export', prefix='.saved-acls-') as stream:
        json.dump(document, stream, indent=1, sort_keys=True)
    return sum(len(acls) for acls in saved.values())


def read_saved_acls(path):
    """The ``{side: {path: ACL tuples}}`` of a file ``write_saved_acls`` wrote (checked)."""
    try:
        with open(path) as stream:
            document = json.load(stream)
    except (OSError, ValueError) as exc:
        raise ConfigError('cannot read the saved ACLs in %s: %s' % (path, exc))
    if not isinstance(document, dict) or document.get('format') != EXPORT_FORMAT or document.get('version') != EXPORT_VERSION:
        raise ConfigError('%s is not a saved-ACL export of zookeeper.migration (format %r version %d)'
                          % (path, EXPORT_FORMAT, EXPORT_VERSION))
    return dict((side, dict((node, tuple(tuple(entry) for entry in acl)) for node, acl in (document['acls'].get(side) or {}).items()))
                for side in SIDES)


class Decommission(object):
    """Remove ``task`` and its traces; ``run()`` returns a result dict (see the module docs)."""

    def __init__(self, store, task, credentials=None, wait_timeout=60.0, clock=time.monotonic, sleep=time.sleep):
        self.store = store
        self.task = _records.check_name(task, 'task name')
        self.credentials = credentials
        self.wait_timeout = float(wait_timeout)
        self.clock = clock
        self.sleep = sleep
        self.operations = []
        self.warnings = []
        self.removed = {'fence': 0, 'journal_entries': 0, 'grants': 0, 'control': False}

    def run(self, force=False, saved_acls_export=None, check_mode=False):
        spec = self.store.get_task(self.task)
        if spec is None:
            return self._result(False, 'task %s does not exist' % self.task)
        record = self.store.get_cutover(self.task)
        phase = _task.cutover_phase(record)
        if record is not None and not force:
            raise ConfigError('task %r has a cutover record (state %s) and what a rollback needs; decommission it explicitly with '
                              'force (zookeeper.migration.zk_sync_task state=absent force=true)' % (self.task, record['state']))
        saved = dict((side, self.store.load_saved_acls(self.task, side=side)) for side in SIDES)
        frozen = [side for side in SIDES if saved[side]]
        if frozen and not saved_acls_export:
            raise ConfigError('the %s of task %r %s frozen: %s saved ACL(s) are what would thaw it, and removing the task would lose them. '
                              'Export them first (saved_acls_export: a file path), or thaw it (zookeeper.migration.zk_cutover '
                              'state=rolled_back)' % (' and '.join(frozen), self.task, 'are' if len(frozen) > 1 else 'is',
                                                      ' + '.join(str(len(saved[side])) for side in frozen)))
        if phase == _task.CUTOVER_RUNNING:
            self.warnings.append('the cutover of task %s was still in progress (state %s): it is abandoned' % (self.task, record['state']))
        names = (spec['source'], spec['destination'])
        if check_mode:
            return self._plan(spec, names, saved, frozen, saved_acls_export)
        if frozen:
            count = write_saved_acls(saved_acls_export, self.task, names, saved)
            self.operations.append('export %d saved ACL(s) of the %s to %s' % (count, ' and '.join(frozen), saved_acls_export))
        self._stop(spec)
        connections = self._connections(spec)
        self._clean_data_clusters(connections, names)
        if spec.get('acl_mode') == 'grant_migrator':
            self._remove_grants(spec, connections, names, saved, frozen)
        self.store.delete_task(self.task, force=True)
        self.removed['control'] = True
        self.operations.append('delete task %s with its status, baseline, election, cutover record and saved ACLs' % self.task)
        return self._result(True, 'task %s decommissioned' % self.task, saved_acls_export=saved_acls_export if frozen else None)

    def _result(self, changed, msg, **extra):
        out = {'changed': changed, 'msg': msg, 'operations': list(self.operations), 'warnings': list(self.warnings),
               'removed': dict(self.removed)}
        out.update(extra)
        return out

    def _plan(self, spec, names, saved, frozen, export):
        if frozen:
            self.operations.append('export %d saved ACL(s) of the %s to %s' % (sum(len(saved[side]) for side in frozen),
                                                                               ' and '.join(frozen), export))
        if spec['state'] != 'stopped':
            self.operations.append('stop task %s and wait until no daemon leads it' % self.task)
        for name in names:
            self.operations.append('delete the fence and the sync journal of task %s on cluster %s' % (self.task, name))
        if spec.get('acl_mode') == 'grant_migrator':
            self.operations.append('remove the migrator\'s grants from the ACLs of %s' % names[1])
        self.operations.append('delete task %s with its status, baseline, election, cutover record and saved ACLs' % self.task)
        return self._result(True, 'would decommission task %s' % self.task, check_mode=True)

    def _stop(self, spec):
        if spec['state'] != 'stopped':
            self.store.update_task(self.task, lambda current: current.update(state='stopped'))
            self.operations.append('stop task %s' % self.task)
        deadline = self.clock() + self.wait_timeout
        while True:
            leader = self.store.current_leader(self.task)
            if leader is None:
                return
            if self.clock() >= deadline:
                raise ZkMigrationError('daemon %s still leads task %r %gs after it was stopped: a daemon that leads it would bump its '
                                       'fence again; check the daemons (zookeeper.migration.zk_sync_info)'
                                       % (leader, self.task, self.wait_timeout))
            self.sleep(0.2)

    def _connections(self, spec):
        out = {}
        for side in SIDES:
            out[side] = _registration.resolve_registered(self.store, spec[side], self.credentials, side)
        return out

    def _clean_data_clusters(self, connections, names):
        done = set()
        for side, name in zip(SIDES, names):
            connection = connections[side][0]
            key = tuple(connection.hosts) + (connection.chroot or '',)
            if key in done:
                continue    # the same cluster on both sides
            done.add(key)
            try:
                with connected(connection) as client:
                    self._clean_cluster(client, name)
            except ClusterUnreachableError as exc:
                self.warnings.append('cluster %s is unreachable (%s): the fence and journal of task %s stay on it (%s/fence/%s, '
                                     '%s/journal/%s); remove them if it comes back'
                                     % (name, exc, self.task, self.store.root, self.task, self.store.root, self.task))

    def _clean_cluster(self, client, name):
        root = self.store.root
        fence = _fencing.fence_path(root, self.task)
        journal = _fencing.journal_path(root, self.task)
        try:
            entries = client.get_children(journal) if client.exists(journal) is not None else None
            if entries is not None:
                client.delete(journal, recursive=True)
                self.removed['journal_entries'] += len(entries)
                self.operations.append('delete the sync journal of task %s on %s (%d entries)' % (self.task, name, len(entries)))
            if client.exists(fence) is not None:
                client.delete(fence)
                self.removed['fence'] += 1
                self.operations.append('delete the fence of task %s on %s' % (self.task, name))
            # parents made for fences and journals go when nothing else is in them (the control root keeps its own children)
            for parent in (_records.join_path(root, _records.FENCE), _records.join_path(root, _records.JOURNAL), root):
                stat = client.exists(parent)
                if stat is not None and stat.numChildren == 0:
                    try:
                        client.delete(parent, version=stat.version)
                    except (kazoo_exceptions.NotEmptyError, kazoo_exceptions.BadVersionError, kazoo_exceptions.NoNodeError):
                        pass    # another task's fence or journal arrived meanwhile
        except Exception as exc:  # pylint: disable=broad-except
            error = translate_error(exc, cluster=name)
            if isinstance(error, ClusterUnreachableError):
                raise error
            if not isinstance(error, ZkMigrationError):
                raise
            raise ZkMigrationError('removing the fence and journal of task %r on %s: %s' % (self.task, name, error.message),
                                   path=error.path, cluster=name)

    def _remove_grants(self, spec, connections, names, saved, frozen):
        if 'destination' in frozen:
            self.warnings.append('the destination %s is frozen: the migrator\'s grants on it are kept (they are its only way to '
                                 'thaw it with the exported ACLs)' % names[1])
            return
        from ansible_collections.zookeeper.migration.plugins.module_utils._freeze import scope_snapshot, set_acls_pipelined
        destination, migrator_acl = connections['destination']
        if not migrator_acl:
            return
        originals = dict(saved.get('source') or {})
        try:
            with connected(connections['source'][0]) as source_client:
                for node in scope_snapshot(source_client, spec, self.store.root, names[0], with_acl=True).persistent():
                    originals.setdefault(node.path, tuple(node.acl or ()))
        except ClusterUnreachableError:
            self.warnings.append('the source %s is unreachable: the migrator\'s entries are removed from every destination ACL, '
                                 'including nodes whose source ACL had them' % names[0])
        with connected(destination) as client:
            snapshot = scope_snapshot(client, spec, self.store.root, names[1], with_acl=True)
            changes = []
            for node in snapshot.persistent():
                wanted = without_migrator_grants(node.acl or (), migrator_acl, originals.get(node.path))
                if wanted is not None and wanted != tuple(node.acl or ()):
                    changes.append((node.path, wanted, node.aversion))
            results = set_acls_pipelined(client, changes) if changes else {}
        failed = [path for path, outcome in results.items() if isinstance(outcome, Exception)]
        self.removed['grants'] = len(changes) - len(failed)
        if changes:
            self.operations.append('remove the migrator\'s grants from %d ACL(s) on %s' % (self.removed['grants'], names[1]))
        if failed:
            self.warnings.append('%d destination ACL(s) changed meanwhile or could not be set (e.g. %s): the migrator\'s grants stay '
                                 'there' % (len(failed), failed[0]))


__all__ = ['Decommission', 'without_migrator_grants', 'write_saved_acls', 'read_saved_acls']
