# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cutover engine behind ``zk_cutover``: drain, freeze, verify, stop; and rollback.

This is a private module of the zookeeper.migration collection; it may change
without notice.

Completing a cutover (``Cutover.complete``)
------------------------------------------
1. **Preflight** (nothing written yet): the task is ``running``; a live
   daemon leads it (its election contender is the first and it is
   registered under ``<root>/daemons``); its status is rewritten while we
   watch (the leader is alive), says ``streaming``, and reaches an empty
   queue with zero lag within ``drain_timeout``. With ``freeze_source``: the
   source connection has an authenticated identity (the frozen ACLs must keep
   its rights) and every ACL to freeze was read in full (no masked digest
   hash: the original could not be restored exactly).
2. **Record** the cutover (``state: started``) with the task's
   ``sync_acl``/``state`` as they were, so an interrupted run can resume or
   be rolled back from the record alone.
3. **Freeze** (``freeze_source``): first the daemon's ACL propagation is
   suspended (the task's ``sync_acl`` is set to false and we wait for the
   leader's engine to restart with it, seen as a full reconcile newer than
   the change), so **a frozen ACL is never copied to the destination**.
   Then every persistent source znode in the task's scope, parents first, in
   batches: the original ACLs of a batch are saved in the control store
   (``ControlStore.save_source_acls``) *before* its setACL requests are sent.
   The frozen ACL keeps each original entry's READ and adds ``auth`` ALL,
   which the server expands to the migration identity of the session, so
   the migrator keeps every right it needs (write, restore). Nodes created
   while the first pass ran get a second pass.
4. **Drain**: a cutover record update (``state: frozen``) makes the daemon
   restart the task's engine, whose full reconcile then starts after the
   freeze. We wait for a status written after that update showing a full
   reconcile newer than the last status before it, an empty queue and zero
   lag: everything written to the source before the freeze has reached the
   destination. Then the task is **paused** (the leader stops writing; we
   wait for its ``paused`` status) and the record says ``drained``.
5. **Destination ACLs** (``sync_acl``): set from the source's original ACLs
   (the saved ones for frozen nodes) where they differ, e.g. for nodes the
   daemon created while ACL propagation was suspended.
6. **Final verify** (``verify``): ``_verify.verify`` on data, node types and
   sequential counters with spot checks and a settle re-check, plus the
   destination ACLs against the source's originals (``acl_mode:
   grant_migrator`` adds the migrator's entries). Nodes only on the
   destination are reported, not blocking: they are not a loss once the
   destination is the truth. On failure the cutover is **aborted**: source
   ACLs restored exactly, the task set running again with its ``sync_acl``,
   record ``aborted`` with the verification summary, and the error raised
   with the report.
7. **Stop** the task (``state: stopped``, ``sync_acl`` restored) and record
   ``completed`` (``completed_at``, ``direction_after_cutover: none``). The
   source stays frozen; the record and the saved ACLs stay until removed
   explicitly (``zk_sync_task state=absent force=true``).

Re-running a completed cutover changes nothing. An interrupted run (record
``started``/``frozen``/``drained``/``verified``) resumes: the saved ACLs
are kept (the first saved ACL of a path wins), the task is set running again
and the steps are repeated.

Rolling back (``Cutover.rollback``)
----------------------------------
* Before completion: the saved source ACLs are restored exactly (the same
  entries in the same order; checked by reading them back), the saved ACLs
  cleared, the task set ``running`` with its original ``sync_acl``: syncing
  resumes from the source. Record ``rolled_back``.
* After completion: the destination is the truth. The source ACLs are
  restored the same way, the record gets ``direction_after_cutover:
  destination_to_source`` (its ``completed_at`` stays) and the task is set
  running: the daemon syncs one-way from the destination to the source, until
  the clients are moved back and the task is stopped.

Known limits: setACL is one request per node (no multi carries it), so a
freeze of N nodes costs N round trips, pipelined. A client that changes a
node's ACL in the moment between the freeze reading it and setting it loses
that change on restore (the value read first is restored). In a
bidirectional task, writes made on the destination during the drain still
flow to the (frozen) source through the migrator's rights.
"""

import time
from collections import deque

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    AuthFailedError,
    ConfigError,
    NoNodeError,
    ZkMigrationError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils import _control
from ansible_collections.zookeeper.migration.plugins.module_utils import _task
from ansible_collections.zookeeper.migration.plugins.module_utils._client import connected, translate_error
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import acl_equal, acl_tuples, is_redacted_acl

try:
    from kazoo import exceptions as kazoo_exceptions
    from kazoo.security import ACL, Id
    HAS_KAZOO = True
except ImportError:
    HAS_KAZOO = False

PERM_READ = 1
PERM_ALL = 31
#: The entry the server expands to every identity the session authenticated with.
MIGRATOR_AUTH_ENTRY = (PERM_ALL, 'auth', '')

DEFAULT_DRAIN_TIMEOUT = 300.0
DEFAULT_SETTLE = 1.0
DEFAULT_SPOT_CHECK = 20
DEFAULT_FREEZE_BATCH = 500
SET_ACL_WINDOW = 128
MAX_REPORT_PATHS = 20
#: Verification kinds that block a cutover (a node only on the destination is no loss).
BLOCKING_KINDS = ('missing', 'data_mismatch', 'type_mismatch', 'counter_behind', 'acl_mismatch', 'spot_check_mismatch')


class CutoverError(ZkMigrationError):
    """A cutover step failed; ``report`` holds the verification summary when the final verify failed."""

    kind = 'cutover'

    def __init__(self, message, path=None, cluster=None, report=None, aborted=False):
        super(CutoverError, self).__init__(message, path=path, cluster=cluster)
        self.report = report
        self.aborted = aborted

    def to_dict(self):
        out = super(CutoverError, self).to_dict()
        out['aborted'] = self.aborted
        return out


def frozen_acl(original):
    """The read-only ACL that replaces ``original`` ((perms, scheme, id) tuples) during a freeze.

    Every original entry keeps only its READ bit (entries without READ go);
    ``auth`` ALL is added, which the server expands to the identities of the
    migrator's session, so the migrator keeps write and ADMIN rights.
    """
    entries = []
    for perms, scheme, ident in original or ():
        if perms & PERM_READ:
            entry = (PERM_READ, scheme, ident)
            if entry not in entries:
                entries.append(entry)
    entries.append(MIGRATOR_AUTH_ENTRY)
    return tuple(entries)


def destination_acl(original, acl_mode='verbatim', migrator_acl=None):
    """The ACL a synced destination node should have for a source ACL (``acl_mode: grant_migrator`` adds the migrator)."""
    acl = tuple(tuple(entry) for entry in original)
    if acl_mode == 'grant_migrator' and migrator_acl:
        present = set(acl)
        acl = acl + tuple(tuple(entry) for entry in migrator_acl if tuple(entry) not in present)
    return acl


def kazoo_acl(entries):
    """(perms, scheme, id) tuples -> kazoo ``ACL`` objects, in the same order."""
    return [ACL(perms, Id(scheme, ident)) for perms, scheme, ident in entries]


def set_acls_pipelined(client, items, window=SET_ACL_WINDOW):
    """setACL for many znodes, ``window`` requests in flight: ``{path: ZnodeStat or kazoo exception}``.

    ``items`` are ``(path, acl_tuples, version)``; -1 sets unconditionally.
    A lost connection raises (the outcome of the requests in flight is then unknown).
    """
    results = {}
    pending = deque()
    items = list(items)
    index = 0
    while index < len(items) or pending:
        while index < len(items) and len(pending) < window:
            path, acl, version = items[index]
            index += 1
            pending.append((path, client.set_acls_async(path, kazoo_acl(acl), version)))
        path, handle = pending.popleft()
        try:
            results[path] = handle.get()
        except (kazoo_exceptions.NoNodeError, kazoo_exceptions.BadVersionError, kazoo_exceptions.NoAuthError,
                kazoo_exceptions.InvalidACLError) as exc:
            results[path] = exc
    return results


def summarize_verification(outcome, acl_mismatches, acl_checked, max_paths=MAX_REPORT_PATHS):
    """The verification summary a cutover records and returns (``VerifyResult`` plus the ACL check)."""
    summary = outcome.to_dict(max_diffs=max_paths) if outcome is not None else {'counts': {}, 'differences': {}}
    counts = dict(summary.get('counts') or {})
    differences = dict(summary.get('differences') or {})
    if acl_checked:
        counts['acl_mismatch'] = len(acl_mismatches)
        differences['acl_mismatch'] = sorted(acl_mismatches)[:max_paths]
    blocking = dict((kind, counts.get(kind, 0)) for kind in BLOCKING_KINDS if counts.get(kind))
    return {
        'in_sync': not blocking,
        'blocking': blocking,
        'counts': counts,
        'differences': dict((kind, paths) for kind, paths in differences.items() if paths),
        'acl_checked': acl_checked,
        'elapsed': summary.get('elapsed'),
        'spot_check': summary.get('spot_check'),
    }


def describe_blocking(summary):
    """'2 missing (first: /a), 1 data_mismatch (first: /b)' for messages."""
    parts = []
    for kind, count in sorted(summary['blocking'].items()):
        key = 'spot_check' if kind == 'spot_check_mismatch' else kind
        first = summary['differences'].get(key) or []
        parts.append('%d %s%s' % (count, kind, ' (first: %s)' % first[0] if first else ''))
    return ', '.join(parts)


class CutoverOptions(object):
    """Tunables of a cutover run (the module sets ``drain_timeout`` and ``verify``)."""

    def __init__(self, drain_timeout=DEFAULT_DRAIN_TIMEOUT, verify=True, settle=DEFAULT_SETTLE, spot_check=DEFAULT_SPOT_CHECK,
                 freeze_batch=DEFAULT_FREEZE_BATCH, poll=0.2):
        if drain_timeout is None or drain_timeout <= 0:
            raise ConfigError('drain_timeout must be a positive number of seconds')
        if freeze_batch < 1:
            raise ConfigError('freeze_batch must be at least 1')
        self.drain_timeout = float(drain_timeout)
        self.verify = bool(verify)
        self.settle = float(settle)
        self.spot_check = int(spot_check)
        self.freeze_batch = int(freeze_batch)
        self.poll = float(poll)


class Cutover(object):
    """One cutover run for ``task`` on a ``ControlStore``; ``complete()`` or ``rollback()`` returns a result dict.

    ``credentials`` is the mapping (or ``CredentialStore``) the cluster
    registrations name; connections are resolved as the daemons resolve them.
    """

    def __init__(self, store, task, credentials=None, options=None, clock=time.monotonic, sleep=time.sleep, now=time.time):
        if not HAS_KAZOO:
            raise ConfigError('the cutover needs the kazoo Python library')
        self.store = store
        self.task = _control.check_name(task, 'task name')
        self.credentials = credentials
        self.options = options or CutoverOptions()
        self.clock = clock
        self.sleep = sleep
        self.now = now
        self.operations = []
        self.warnings = []
        self.result = {'frozen': 0, 'restored': 0, 'acl_fixed': 0, 'verify': None}
        self._freeze_snapshot = None

    # -- small helpers -----------------------------------------------------
    def _spec(self):
        spec = self.store.get_task(self.task)
        if spec is None:
            raise NoNodeError('task %r does not exist in the control store at %s (create it with zookeeper.migration.zk_sync_task)'
                              % (self.task, self.store.root), path=self.store.task_path(self.task))
        return spec

    def _done(self, changed, record, msg, **extra):
        out = dict(self.result)
        out.update(changed=changed, cutover=record, operations=list(self.operations), warnings=list(self.warnings), msg=msg)
        out.update(extra)
        return out

    def _connections(self, spec):
        source, _source_acl = _task.resolve_cluster(self.store, spec['source'], self.credentials, 'source')
        destination, destination_acl = _task.resolve_cluster(self.store, spec['destination'], self.credentials, 'destination')
        return source, destination, destination_acl

    def _update_record(self, **fields):
        """Compare-and-set update of the cutover record; returns (record, zxid of the write).

        ``details`` are merged into the record's details; other fields replace theirs.
        """
        fields = dict(fields)
        fields['updated_at'] = self.now()
        new_details = fields.pop('details', None) or {}

        def mutate(current):
            record = dict(current or {'task': self.task, 'state': 'started'})
            details = dict(record.get('details') or {})
            details.update(new_details)
            record.update(fields)
            record['details'] = details
            return record
        outcome = self.store.update_cutover(self.task, mutate)
        return outcome.after, _task.node_zxid(self.store, self.store.cutover_path(self.task))

    def _set_task(self, **fields):
        """Set task spec fields; returns the zxid of the write, or None when nothing changed."""
        outcome = self.store.update_task(self.task, lambda spec: spec.update(fields))
        if not outcome.changed:
            return None
        self.operations.append('set task %s %s' % (self.task, ', '.join('%s=%s' % (key, value) for key, value in sorted(fields.items()))))
        return _task.node_zxid(self.store, self.store.task_path(self.task))

    def _last_heartbeat(self):
        status, _zxid = _task.read_status(self.store, self.task)
        return status.get('heartbeat', 0.0) if status else 0.0

    # -- waiting on the daemon leader ----------------------------------------
    def _preflight_status(self):
        """The leader is alive and the task in sync: streaming, empty queue, zero lag (waits up to drain_timeout)."""
        leader = self.store.current_leader(self.task)
        if leader is None:
            raise CutoverError('preflight: no daemon leads task %r: start the sync daemons (role zookeeper.migration.sync_daemon) '
                               'and let the task catch up before cutting over' % self.task)
        daemons = self.store.list_daemons()
        if leader not in daemons:
            raise CutoverError('preflight: task %r is led by %r, which is not registered as a live daemon under %s/daemons'
                               % (self.task, leader, self.store.root))
        _status, zxid = _task.read_status(self.store, self.task)
        try:
            status = _task.wait_for_status(self.store, self.task, 'in_sync', self.options.drain_timeout, after_zxid=zxid,
                                           poll=self.options.poll, clock=self.clock, sleep=self.sleep)
        except _task.WaitTimeout as exc:
            raise CutoverError('preflight: %s; a cutover starts from a healthy task that is in sync' % exc)
        return leader, status

    def _wait_reconciled(self, after_zxid, heartbeat_before, what):
        """Wait for a status written after ``after_zxid`` showing a full reconcile newer than ``heartbeat_before`` and nothing queued.

        Each change of the task spec or cutover record restarts the leader's
        engine, which starts with a full reconcile of both trees; its time
        (the daemon's clock, compared with the daemon's own earlier
        heartbeat) tells that the reconcile began after the change.
        """
        deadline = self.clock() + self.options.drain_timeout
        status = None
        while True:
            status, zxid = _task.read_status(self.store, self.task)
            if status is not None and zxid > after_zxid and status.get('phase') == 'streaming':
                details = status.get('details') or {}
                reconciled = details.get('last_full_reconcile')
                if reconciled is not None and reconciled > heartbeat_before and details.get('queue', 0) == 0 and not status.get('lag_ms'):
                    return status
            if self.clock() >= deadline:
                raise CutoverError('%s: task %r did not drain within %gs (drain_timeout): %s'
                                   % (what, self.task, self.options.drain_timeout, _task.describe_status(self.store, self.task, status)))
            self.sleep(self.options.poll)

    def _wait_phase(self, after_zxid, phase, what):
        """Wait for a status written after ``after_zxid`` in ``phase``."""
        deadline = self.clock() + self.options.drain_timeout
        status = None
        while True:
            status, zxid = _task.read_status(self.store, self.task)
            if status is not None and zxid > after_zxid and status.get('phase') == phase:
                return status
            if self.clock() >= deadline:
                raise CutoverError('%s: the leader of task %r did not report %s within %gs: %s'
                                   % (what, self.task, phase, self.options.drain_timeout,
                                      _task.describe_status(self.store, self.task, status)))
            self.sleep(self.options.poll)

    # -- the source side ----------------------------------------------------
    def _scope_snapshot(self, client, spec, cluster, with_acl=True):
        from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import take_snapshot
        return take_snapshot(client, spec['paths'], exclude=spec['exclude'], with_acl=with_acl, keep_data=False,
                             control_root=self.store.root, cluster=cluster)

    def _check_freezable(self, client, source_spec, snapshot):
        """Refuse a freeze that could not be undone exactly or would lock the migrator out (nothing written yet)."""
        authenticated = bool(getattr(client, 'auth_data', None)) or bool(source_spec.tls and source_spec.tls.cert_file)
        if not authenticated:
            raise ConfigError('freeze_source needs an authenticated migration identity on the source cluster %s (auth in its '
                              'registration): the frozen ACLs keep the rights of that identity only, and an anonymous '
                              'connection would lock itself out of the nodes it must restore' % source_spec.name)
        masked = sorted(node.path for node in snapshot.persistent() if is_redacted_acl(node.acl))
        if masked:
            raise AuthFailedError('freeze_source: the ACLs of %d source node(s), e.g. %s, were read with masked digest hashes '
                                  '(user:x): the migration identity lacks ADMIN on them, so their original ACLs could not be '
                                  'saved and restored exactly. Give it ADMIN (or a superDigest identity) on the source'
                                  % (len(masked), ', '.join(masked[:5])), path=masked[0], cluster=source_spec.name)

    def _freeze(self, client, spec, cluster):
        """Freeze every persistent node in scope, parents first, saving each batch's original ACLs first; returns the count.

        A second pass (and a third) freezes the nodes created while the
        previous one ran, until a pass finds none (a frozen parent lets no
        one but the migrator create children).
        """
        saved = self.store.load_saved_acls(self.task)
        frozen = set()
        snapshot = self._scope_snapshot(client, spec, cluster, with_acl=True)
        todo = [(node.path, node.acl, node.aversion) for node in snapshot.persistent()]
        del snapshot
        for attempt in range(3):
            if attempt:
                snapshot = self._scope_snapshot(client, spec, cluster, with_acl=False)
                todo = self._read_acls(client, [node.path for node in snapshot.persistent() if node.path not in frozen], cluster)
            if not todo:
                break
            todo.sort(key=lambda item: (item[0].count('/'), item[0]))
            for start in range(0, len(todo), self.options.freeze_batch):
                frozen.update(self._freeze_batch(client, todo[start:start + self.options.freeze_batch], saved, cluster))
        return len(frozen)

    def _read_acls(self, client, paths, cluster):
        """[(path, ACL tuples, aversion)] of ``paths`` (nodes gone meanwhile left out)."""
        from ansible_collections.zookeeper.migration.plugins.module_utils._protocol import get_acls_pipelined
        try:
            found = get_acls_pipelined(client, paths)
        except Exception as exc:  # pylint: disable=broad-except
            raise translate_error(exc, cluster=cluster)
        out = []
        for path in paths:
            outcome = found[path]
            if isinstance(outcome, kazoo_exceptions.NoNodeError):
                continue
            if isinstance(outcome, Exception):
                raise translate_error(outcome, path=path, cluster=cluster)
            out.append((path, acl_tuples(outcome[0]), outcome[1].aversion))
        return out

    def _freeze_batch(self, client, batch, saved, cluster):
        """Save the originals not saved yet, then set the frozen ACLs of one batch; returns the paths frozen."""
        new = [(path, acl) for path, acl, _aversion in batch if path not in saved]
        for path, acl in new:
            if is_redacted_acl(acl):
                raise AuthFailedError('freeze_source: the ACL of %s was read with masked digest hashes (user:x); its original cannot be '
                                      'saved exactly' % path, path=path, cluster=cluster)
        if new:
            self.store.save_source_acls(self.task, new)     # before any setACL of the batch
            for path, acl in new:
                saved[path] = tuple(acl)
        fresh = set(path for path, _acl in new)
        # a node saved now is set only if its ACL is still the one saved; one saved by an earlier run is frozen from that original
        items = [(path, frozen_acl(saved[path]), aversion if path in fresh else -1) for path, _acl, aversion in batch]
        results = self._set_acls(client, items, cluster)
        done = []
        retry = []
        for path, _acl, _version in items:
            outcome = results[path]
            if isinstance(outcome, kazoo_exceptions.BadVersionError):
                retry.append(path)
            elif isinstance(outcome, kazoo_exceptions.NoNodeError):
                continue   # deleted meanwhile: nothing to freeze
            elif isinstance(outcome, Exception):
                raise self._acl_error(outcome, path, cluster, 'freezing')
            else:
                done.append(path)
        if retry:
            # the ACL changed between our read and our setACL: the value read first stays the saved original
            self.warnings.append('the ACL of %d source node(s) changed while the freeze ran (e.g. %s); the ACL read before the change '
                                 'is the one saved for a restore' % (len(retry), retry[0]))
            again = self._set_acls(client, [(path, frozen_acl(saved[path]), -1) for path in retry], cluster)
            for path in retry:
                if isinstance(again[path], kazoo_exceptions.NoNodeError):
                    continue
                if isinstance(again[path], Exception):
                    raise self._acl_error(again[path], path, cluster, 'freezing')
                done.append(path)
        return done

    def _set_acls(self, client, items, cluster):
        try:
            return set_acls_pipelined(client, items)
        except Exception as exc:  # pylint: disable=broad-except
            raise translate_error(exc, path=items[0][0] if items else None, cluster=cluster)

    @staticmethod
    def _acl_error(exc, path, cluster, doing):
        if isinstance(exc, kazoo_exceptions.NoAuthError):
            return AuthFailedError('%s %s: the migration identity lacks ADMIN permission on it (setACL refused)' % (doing, path),
                                   path=path, cluster=cluster)
        if isinstance(exc, kazoo_exceptions.InvalidACLError):
            return ConfigError('%s %s: the server refused the ACL (an "auth" entry needs an authenticated session)' % (doing, path),
                               path=path, cluster=cluster)
        return translate_error(exc, path=path, cluster=cluster)

    def _restore_source_acls(self, client, cluster):
        """Put every saved original ACL back, exactly, check it by reading it back, then clear the saved copies."""
        saved = self.store.load_saved_acls(self.task)
        if not saved:
            return 0
        paths = sorted(saved, key=lambda path: (path.count('/'), path))
        results = self._set_acls(client, [(path, saved[path], -1) for path in paths], cluster)
        restored = [path for path in paths if not isinstance(results[path], Exception)]
        for path in paths:
            outcome = results[path]
            if isinstance(outcome, Exception) and not isinstance(outcome, kazoo_exceptions.NoNodeError):
                raise self._acl_error(outcome, path, cluster, 'restoring the ACL of')
        from ansible_collections.zookeeper.migration.plugins.module_utils._protocol import get_acls_pipelined
        try:
            readback = get_acls_pipelined(client, restored)
        except Exception as exc:  # pylint: disable=broad-except
            raise translate_error(exc, cluster=cluster)
        wrong = [path for path in restored
                 if not isinstance(readback[path], Exception) and acl_tuples(readback[path][0]) != tuple(saved[path])]
        if wrong:
            raise CutoverError('restoring source ACLs: %d node(s) read back with another ACL than the saved original, e.g. %s '
                               '(changed by someone else meanwhile?); the saved ACLs are kept' % (len(wrong), wrong[0]),
                               path=wrong[0], cluster=cluster)
        self.store.clear_saved_acls(self.task)
        self.operations.append('restore the original ACLs of %d source znode(s)' % len(restored))
        self.result['restored'] = len(restored)
        return len(restored)

    # -- the destination side ------------------------------------------------
    def _expected_acls(self, source_client, spec, cluster):
        """{path: the source's original ACL} for the persistent source nodes in scope (saved originals for frozen nodes)."""
        snapshot = self._scope_snapshot(source_client, spec, cluster, with_acl=True)
        saved = self.store.load_saved_acls(self.task)
        expected = {}
        for node in snapshot.persistent():
            expected[node.path] = tuple(saved.get(node.path) or node.acl or ())
        return expected

    def _destination_acl_differences(self, destination_client, expected, spec, migrator_acl, cluster):
        """[(path, wanted ACL, aversion)] where the destination ACL differs from what the source's originals give."""
        from ansible_collections.zookeeper.migration.plugins.module_utils._protocol import get_acls_pipelined
        paths = sorted(expected)
        try:
            found = get_acls_pipelined(destination_client, paths)
        except Exception as exc:  # pylint: disable=broad-except
            raise translate_error(exc, cluster=cluster)
        differences = []
        for path in paths:
            outcome = found[path]
            if isinstance(outcome, Exception):
                continue    # missing on the destination: the data verification reports it
            wanted = destination_acl(expected[path], spec['acl_mode'], migrator_acl)
            acl_list, stat = outcome
            if not acl_equal(wanted, acl_tuples(acl_list)):
                differences.append((path, wanted, stat.aversion))
        return differences

    def _fix_destination_acls(self, destination_client, expected, spec, migrator_acl, cluster):
        differences = self._destination_acl_differences(destination_client, expected, spec, migrator_acl, cluster)
        if not differences:
            return 0
        results = self._set_acls(destination_client, differences, cluster)
        fixed = 0
        for path, _wanted, _version in differences:
            outcome = results[path]
            if isinstance(outcome, Exception):
                if isinstance(outcome, (kazoo_exceptions.NoNodeError, kazoo_exceptions.BadVersionError)):
                    continue   # changed meanwhile: the final verification reports what still differs
                raise self._acl_error(outcome, path, cluster, 'setting the ACL of')
            fixed += 1
        if fixed:
            self.operations.append('set the ACL of %d destination znode(s) to their source originals' % fixed)
        self.result['acl_fixed'] = fixed
        return fixed

    def _final_verify(self, source_client, destination_client, spec, expected, migrator_acl, names):
        from ansible_collections.zookeeper.migration.plugins.module_utils._verify import verify
        outcome = verify(source_client, destination_client, spec['paths'], exclude=spec['exclude'], compare=('data', 'type', 'counters'),
                         spot_check=self.options.spot_check, settle=self.options.settle, control_root=self.store.root,
                         source_name=names[0], destination_name=names[1])
        mismatches = []
        if expected is not None:
            mismatches = [path for path, _wanted, _aversion in
                          self._destination_acl_differences(destination_client, expected, spec, migrator_acl, names[1])]
        summary = summarize_verification(outcome, mismatches, expected is not None)
        extra = summary['counts'].get('extra', 0)
        if extra:
            self.warnings.append('%d znode(s) exist only on the destination (e.g. %s): left as they are, they are no loss once the '
                                 'destination is the truth' % (extra, (summary['differences'].get('extra') or ['?'])[0]))
        verdict = 'in sync' if summary['in_sync'] else 'differences: %s' % describe_blocking(summary)
        self.operations.append('verify %s against %s: %s' % (names[0], names[1], verdict))
        return summary

    # -- complete -------------------------------------------------------------
    def complete(self, freeze_source=False, check_mode=False):
        """Complete the cutover (see the module docs); returns a result dict."""
        spec = self._spec()
        record = self.store.get_cutover(self.task)
        phase = _task.cutover_phase(record)
        if phase == _task.CUTOVER_COMPLETED:
            return self._done(False, record, 'task %s was cut over at %s; nothing to do' % (self.task, _when(record.get('completed_at'))))
        if phase == _task.CUTOVER_ROLLED_BACK_AFTER_COMPLETION:
            raise ConfigError('task %r was cut over and then rolled back: it now syncs destination -> source. It cannot be cut '
                              'over again as it is; to migrate again, remove it (zookeeper.migration.zk_sync_task state=absent '
                              'force=true) and create it anew' % self.task)
        resuming = phase == _task.CUTOVER_RUNNING
        details = (record or {}).get('details') or {}
        left_frozen = bool(self.store.load_saved_acls(self.task))
        if left_frozen and not freeze_source:
            # the ACLs an earlier run saved were not restored: that source is still frozen
            freeze_source = True
            self.warnings.append('an interrupted cutover of task %s had frozen the source: this run keeps it frozen' % self.task)
        resuming = resuming or (left_frozen and record is not None)
        if resuming and details.get('spec_before'):
            # the task's spec may still hold what the earlier run set (sync_acl false, paused)
            before = dict(details['spec_before'])
        elif resuming:
            before = {'sync_acl': spec['sync_acl'], 'state': 'running'}
        else:
            before = {'sync_acl': spec['sync_acl'], 'state': spec['state']}
            if spec['state'] != 'running':
                raise ConfigError('task %r is %s: a cutover drains a running task. Set it running (zookeeper.migration.zk_sync_task '
                                  'state=running), wait until it is in sync, then cut over' % (self.task, spec['state']))
        source_spec, destination_spec, migrator_acl = self._connections(spec)
        names = (spec['source'], spec['destination'])
        with connected(source_spec) as source_client, connected(destination_spec) as destination_client:
            if freeze_source:
                self._freeze_snapshot = self._scope_snapshot(source_client, spec, names[0])
                self._check_freezable(source_client, source_spec, self._freeze_snapshot)
            if check_mode:
                return self._plan_complete(spec, freeze_source, resuming, before)
            if not resuming:
                self._preflight_status()
            return self._run_complete(spec, record, resuming, freeze_source, before, source_client, destination_client, migrator_acl,
                                      names)

    def _plan_complete(self, spec, freeze_source, resuming, before):
        if not resuming:
            leader, _status = self._preflight_status()
            self.operations.append('preflight: task %s is in sync, led by %s' % (self.task, leader))
        else:
            self.operations.append('resume the interrupted cutover of task %s' % self.task)
        self.operations.append('record the cutover of task %s' % self.task)
        if freeze_source:
            count = self._freeze_snapshot.persistent_count
            if before['sync_acl']:
                self.operations.append('suspend ACL propagation of task %s while the source is frozen' % self.task)
            self.operations.append('freeze %d source znode(s) read-only, saving their ACLs first' % count)
            self.result['frozen'] = count
        self.operations.append('drain task %s and pause it' % self.task)
        if self.options.verify:
            self.operations.append('verify %s against %s' % (spec['source'], spec['destination']))
        self.operations.append('stop task %s and record the cutover as completed' % self.task)
        return self._done(True, self.store.get_cutover(self.task), 'would cut over task %s' % self.task, check_mode=True)

    def _trigger(self, write, what):
        """Run ``write`` (returns the zxid of a control-store write, or None when nothing changed) and wait
        until the leader has restarted the task's engine and reconciled everything after it."""
        heartbeat = self._last_heartbeat()
        zxid = write()
        if zxid is not None:
            self._wait_reconciled(zxid, heartbeat, what)
        return zxid

    def _run_complete(self, spec, record, resuming, freeze, before, source_client, destination_client, migrator_acl, names):
        started = self.now()
        try:
            if not resuming:
                def write_record():
                    self.store.put_cutover(self.task, {
                        'task': self.task, 'state': 'started', 'started_at': started, 'updated_at': started, 'source_frozen': freeze,
                        'direction_after_cutover': 'none',
                        'details': {'spec_before': before, 'freeze_source': freeze, 'verify': self.options.verify}})
                    self.operations.append('record the cutover of task %s (started)' % self.task)
                    return _task.node_zxid(self.store, self.store.cutover_path(self.task))
            else:
                def write_record():
                    self.operations.append('resume the interrupted cutover of task %s (was %s)' % (self.task, record['state']))
                    return self._update_record(source_frozen=bool(record.get('source_frozen')) or freeze, last_error=None,
                                               details={'spec_before': before, 'freeze_source': freeze, 'resumed_at': started})[1]
                # an interrupted run may have paused or stopped the task: it must run to drain
                self._trigger(lambda: self._set_task(state='running', sync_acl=False if freeze else before['sync_acl']), 'resuming the task')
            # the record write restarts the leader's engine; once it has reconciled, everything written before is on the destination
            self._trigger(write_record, 'draining' if not freeze else 'recording the cutover')
            if freeze:
                # the leader must not propagate ACLs once the source is frozen
                self._trigger(lambda: self._set_task(sync_acl=False), 'suspending ACL propagation')
                self.result['frozen'] = self._freeze(source_client, spec, names[0])
                self.operations.append('freeze %d source znode(s) read-only (original ACLs saved first)' % self.result['frozen'])
                self._trigger(lambda: self._update_record(state='frozen', source_frozen=True, details={'frozen_at': self.now()})[1],
                              'draining')
            zxid = self._set_task(state='paused')
            if zxid is not None:
                self._wait_phase(zxid, 'paused', 'pausing the task')
            self._update_record(state='drained', details={'paused_by_cutover': True})
            self.operations.append('drain task %s and pause it' % self.task)
            expected = None
            if before['sync_acl']:
                expected = self._expected_acls(source_client, spec, names[0])
                self._fix_destination_acls(destination_client, expected, spec, migrator_acl, names[1])
            if self.options.verify:
                summary = self._final_verify(source_client, destination_client, spec, expected, migrator_acl, names)
                self.result['verify'] = summary
                if not summary['in_sync']:
                    raise CutoverError('final verification of task %s failed: %s' % (self.task, describe_blocking(summary)), report=summary)
                self._update_record(state='verified', verify=summary)
        except Exception as exc:
            self._abort(exc, source_client, names[0], before)
            if isinstance(exc, CutoverError):
                exc.aborted = True
                exc.message = '%s; cutover aborted: %s' % (exc.message, self._abort_note(freeze))
                raise
            if isinstance(exc, ZkMigrationError):
                raise CutoverError('%s; cutover aborted: %s' % (exc, self._abort_note(freeze)), path=exc.path, cluster=exc.cluster,
                                   aborted=True)
            raise
        self._set_task(state='stopped', sync_acl=before['sync_acl'])
        record, _zxid = self._update_record(state='completed', completed_at=self.now(), direction_after_cutover='none',
                                            source_frozen=freeze, last_error=None)
        self.operations.append('stop task %s and record the cutover as completed' % self.task)
        return self._done(True, record, 'task %s cut over%s' % (self.task, ' (source frozen)' if freeze else ''))

    @staticmethod
    def _abort_note(freeze):
        return ('source ACLs restored, task syncing again' if freeze else 'task syncing again')

    def _abort(self, reason, source_client, cluster, before):
        """Undo a cutover that failed before completion: restore source ACLs, resume the task, record ``aborted``."""
        problems = []
        try:
            self._restore_source_acls(source_client, cluster)
        except Exception as exc:  # pylint: disable=broad-except
            problems.append('restoring the source ACLs failed (%s): they are still saved; run zk_cutover state=rolled_back' % exc)
        try:
            self._set_task(state=before.get('state') or 'running', sync_acl=before['sync_acl'])
        except Exception as exc:  # pylint: disable=broad-except
            problems.append('setting the task running again failed (%s)' % exc)
        summary = getattr(reason, 'report', None)
        message = str(reason)[:1500]
        if problems:
            message = '%s; %s' % (message, '; '.join(problems))
        try:
            fields = {'state': 'aborted', 'last_error': message}
            if not problems:
                fields['source_frozen'] = False
            if summary is not None:
                fields['verify'] = summary
            self._update_record(**fields)
        except Exception as exc:  # pylint: disable=broad-except
            problems.append('recording the abort failed (%s)' % exc)
        self.operations.append('abort the cutover of task %s' % self.task)
        if problems:
            raise CutoverError('%s; the abort did not finish: %s' % (reason, '; '.join(problems)), report=summary)

    # -- rollback -------------------------------------------------------------
    def rollback(self, check_mode=False):
        """Roll the cutover back (before or after completion); returns a result dict."""
        spec = self._spec()
        record = self.store.get_cutover(self.task)
        phase = _task.cutover_phase(record)
        if phase == _task.NO_CUTOVER:
            self.warnings.append('task %s has no cutover record: nothing to roll back' % self.task)
            return self._done(False, None, 'task %s was never cut over; nothing to roll back' % self.task)
        details = record.get('details') or {}
        before = dict(details.get('spec_before') or {'sync_acl': spec['sync_acl'], 'state': 'running'})
        after_completion = phase in (_task.CUTOVER_COMPLETED, _task.CUTOVER_ROLLED_BACK_AFTER_COMPLETION)
        saved = self.store.load_saved_acls(self.task)
        wanted_record = {'state': 'rolled_back', 'source_frozen': False}
        if after_completion:
            wanted_record['direction_after_cutover'] = 'destination_to_source'
        wanted_spec = {'state': 'running', 'sync_acl': before['sync_acl']}
        record_changes = dict((key, value) for key, value in wanted_record.items() if record.get(key) != value)
        spec_changes = dict((key, value) for key, value in wanted_spec.items() if spec.get(key) != value)
        if not saved and not record_changes and not spec_changes:
            return self._done(False, record, 'task %s is already rolled back' % self.task)
        if check_mode:
            if saved:
                self.operations.append('restore the original ACLs of %d source znode(s)' % len(saved))
                self.result['restored'] = len(saved)
            if spec_changes:
                self.operations.append('set task %s %s' % (self.task, ', '.join('%s=%s' % item for item in sorted(spec_changes.items()))))
            self.operations.append('record the cutover of task %s as rolled back%s' % (
                self.task, ' (sync destination -> source)' if after_completion else ''))
            return self._done(True, record, 'would roll back task %s' % self.task, check_mode=True)
        if saved:
            source_spec, _destination_spec, _acl = self._connections(spec)
            with connected(source_spec) as source_client:
                self._restore_source_acls(source_client, spec['source'])
        record, _zxid = self._update_record(last_error=None, details={'rolled_back_at': self.now()}, **wanted_record)
        self._set_task(**wanted_spec)
        self.operations.append('record the cutover of task %s as rolled back%s' % (
            self.task, ' (sync destination -> source)' if after_completion else ''))
        return self._done(True, record, 'task %s rolled back%s' % (
            self.task, ': the daemons now sync the destination to the source' if after_completion else ': syncing resumed'))


def _when(epoch):
    if not epoch:
        return 'an unknown time'
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


__all__ = ['Cutover', 'CutoverOptions', 'CutoverError', 'frozen_acl', 'destination_acl', 'summarize_verification', 'set_acls_pipelined']
