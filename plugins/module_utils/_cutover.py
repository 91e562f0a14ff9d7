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

import os
import time

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    ConfigError,
    NoNodeError,
    ZkMigrationError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils import _records
from ansible_collections.zookeeper.migration.plugins.module_utils import _registration
from ansible_collections.zookeeper.migration.plugins.module_utils import _task
from ansible_collections.zookeeper.migration.plugins.module_utils._apply import granted_acl
from ansible_collections.zookeeper.migration.plugins.module_utils._client import connected, translate_error
from ansible_collections.zookeeper.migration.plugins.module_utils._clients import clients_of, connections_of
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import acl_equal, acl_tuples
from ansible_collections.zookeeper.migration.plugins.module_utils._freeze import (  # noqa: F401 (frozen_acl, set_acls_pipelined re-exported)
    DEFAULT_FREEZE_BATCH,
    Freezer,
    acl_error,
    frozen_acl,
    scope_snapshot,
    set_acls_pipelined,
)

try:
    from kazoo import exceptions as kazoo_exceptions
    HAS_KAZOO = True
except ImportError:
    HAS_KAZOO = False

DEFAULT_DRAIN_TIMEOUT = 300.0
DEFAULT_SETTLE = 1.0
DEFAULT_SPOT_CHECK = 20
MAX_REPORT_PATHS = 20
#: Verification kinds that block a cutover (a node only on the destination is no loss).
#: counter_behind_persistent (a parent without sequential children whose counter is behind) is reported, not blocking: the
#: cutover carries such counters again after the drain when the task's ``counters`` option asks for them.
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


def destination_acl(original, acl_mode='verbatim', migrator_acl=None):
    """The ACL a synced destination node should have for a source ACL (``acl_mode: grant_migrator`` adds the migrator)."""
    return granted_acl(original, acl_mode, migrator_acl)


def source_acl_from_destination(acl, acl_mode='verbatim', migrator_acl=None, original=None):
    """The source ACL a rollback gives a node whose destination ACL is ``acl``: the inverse of ``destination_acl``.

    With ``acl_mode: grant_migrator`` the entries naming the migrator go,
    unless the node's ``original`` source ACL had them.
    """
    acl = tuple(tuple(entry) for entry in acl)
    if acl_mode != 'grant_migrator' or not migrator_acl:
        return acl
    added = set(tuple(entry) for entry in migrator_acl) - set(tuple(entry) for entry in original or ())
    kept = tuple(entry for entry in acl if entry not in added)
    return kept or acl


#: A freeze costs this many reads of the scope: a getACL per node to save it and a setACL per node, each a quorum write
#: (tests/bench/bench_freeze.py measured 6.9x on 20k nodes, docs/performance.md).
FREEZE_READS = 7.0
#: The daemon's default status_interval: each wait on the leader may take one to see a fresh status.
STATUS_INTERVAL = 2.0


def estimate_outage(nodes, read_seconds, settle=DEFAULT_SETTLE, status_interval=STATUS_INTERVAL):
    """Seconds the source stays frozen before the cutover completes, from one timed read of the scope (``read_seconds``).

    The freeze costs ``FREEZE_READS`` reads; the leader reconciles both trees
    after the freeze and pauses (about four reads, and a status interval for
    each of the two waits); the final verification reads both trees with
    their data (about three) and waits ``settle``.
    """
    per_read = max(float(read_seconds), 0.001)
    parts = {'freeze': FREEZE_READS * per_read, 'drain': 4 * per_read + 2 * status_interval, 'verify': 3 * per_read + settle}
    return {'seconds': round(sum(parts.values()), 3), 'nodes': nodes, 'read_seconds': round(per_read, 3),
            'parts': dict((key, round(value, 3)) for key, value in parts.items())}


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
    """Tunables of a cutover run (the module sets ``drain_timeout``, ``verify`` and ``allow_shared_identity``)."""

    def __init__(self, drain_timeout=DEFAULT_DRAIN_TIMEOUT, verify=True, settle=DEFAULT_SETTLE, spot_check=DEFAULT_SPOT_CHECK,
                 freeze_batch=DEFAULT_FREEZE_BATCH, poll=0.2, allow_shared_identity=False, backup_dir=None, client_allow=()):
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
        self.allow_shared_identity = bool(allow_shared_identity)
        if backup_dir is not None and not os.path.isdir(backup_dir):
            raise ConfigError('backup_dir %s is not a directory' % backup_dir)
        self.backup_dir = backup_dir
        self.client_allow = list(client_allow or ())


class _Connections(object):
    """The resolved connections of a task's two clusters and the migrator's ACL entries on each."""

    def __init__(self, store, spec, credentials):
        self.source, self.source_acl = _registration.resolve_registered(store, spec['source'], credentials, 'source')
        self.destination, self.destination_acl = _registration.resolve_registered(store, spec['destination'], credentials, 'destination')
        self.names = (spec['source'], spec['destination'])


class Cutover(object):
    """One cutover run for ``task`` on a ``ControlStore``; ``complete()`` or ``rollback()`` returns a result dict.

    ``credentials`` is the mapping (or ``CredentialStore``) the cluster
    registrations name; connections are resolved as the daemons resolve them.
    """

    def __init__(self, store, task, credentials=None, options=None, clock=time.monotonic, sleep=time.sleep, now=time.time):
        if not HAS_KAZOO:
            raise ConfigError('the cutover needs the kazoo Python library')
        self.store = store
        self.task = _records.check_name(task, 'task name')
        self.credentials = credentials
        self.options = options or CutoverOptions()
        self.clock = clock
        self.sleep = sleep
        self.now = now
        self.operations = []
        self.warnings = []
        self.result = {'frozen': 0, 'restored': 0, 'acl_fixed': 0, 'verify': None, 'freeze_proof': None, 'write_outage': None,
                       'write_outage_estimate': None, 'backup': None}
        self._freeze_snapshot = None
        self._read_seconds = None

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

    def _freezer(self, side, cluster):
        return Freezer(self.store, self.task, side, cluster, self, batch=self.options.freeze_batch)

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

    def _timed_scope_snapshot(self, client, spec, cluster):
        started = self.clock()
        snapshot = scope_snapshot(client, spec, self.store.root, cluster, with_acl=True)
        self._read_seconds = self.clock() - started
        return snapshot

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

    def _trigger(self, *writes, **kwargs):
        """Run ``writes`` (each returns the zxid of a control-store write, or None when nothing changed) and wait until
        the leader has restarted the task's engine and reconciled everything after the last of them."""
        heartbeat = self._last_heartbeat()
        zxids = [zxid for zxid in (write() for write in writes) if zxid is not None]
        if zxids:
            self._wait_reconciled(max(zxids), heartbeat, kwargs.get('what', 'draining'))
        return max(zxids) if zxids else None

    def _pause(self):
        zxid = self._set_task(state='paused')
        if zxid is not None:
            self._wait_phase(zxid, 'paused', 'pausing the task')

    # -- the destination side ------------------------------------------------
    def _expected_acls(self, source_client, spec, cluster):
        """{path: the source's original ACL} for the persistent source nodes in scope (saved originals for frozen nodes)."""
        snapshot = scope_snapshot(source_client, spec, self.store.root, cluster, with_acl=True)
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
        try:
            results = set_acls_pipelined(destination_client, differences)
        except Exception as exc:  # pylint: disable=broad-except
            raise translate_error(exc, cluster=cluster)
        fixed = 0
        for path, _wanted, _version in differences:
            outcome = results[path]
            if isinstance(outcome, Exception):
                if isinstance(outcome, (kazoo_exceptions.NoNodeError, kazoo_exceptions.BadVersionError)):
                    continue   # changed meanwhile: the final verification reports what still differs
                raise acl_error(outcome, path, cluster, 'setting the ACL of')
            fixed += 1
        if fixed:
            self.operations.append('set the ACL of %d destination znode(s) to their source originals' % fixed)
        self.result['acl_fixed'] = fixed
        return fixed

    def _verify_trees(self, reference_client, copy_client, spec, names, mismatches=None):
        """Verify ``copy_client``'s tree against ``reference_client``'s (names in that order); returns the summary."""
        from ansible_collections.zookeeper.migration.plugins.module_utils._verify import verify
        outcome = verify(reference_client, copy_client, spec['paths'], exclude=spec['exclude'], compare=('data', 'type', 'counters'),
                         spot_check=self.options.spot_check, settle=self.options.settle, control_root=self.store.root,
                         source_name=names[0], destination_name=names[1])
        summary = summarize_verification(outcome, mismatches or [], mismatches is not None)
        extra = summary['counts'].get('extra', 0)
        if extra:
            self.warnings.append('%d znode(s) exist only on %s (e.g. %s): left as they are, they are no loss once %s is the truth'
                                 % (extra, names[1], (summary['differences'].get('extra') or ['?'])[0], names[0]))
        verdict = 'in sync' if summary['in_sync'] else 'differences: %s' % describe_blocking(summary)
        self.operations.append('verify %s against %s: %s' % (names[1], names[0], verdict))
        return summary

    # -- complete -------------------------------------------------------------
    def complete(self, freeze_source=False, check_mode=False):
        """Complete the cutover (see the module docs); returns a result dict."""
        spec = self._spec()
        record = self.store.get_cutover(self.task)
        phase = _task.cutover_phase(record)
        if phase == _task.CUTOVER_COMPLETED:
            return self._look_after_cutover(spec, record, check_mode)
        if phase == _task.CUTOVER_ROLLED_BACK_AFTER_COMPLETION:
            raise ConfigError('task %r was cut over and then rolled back: the source is the truth again. It cannot be cut '
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
        conns = _Connections(self.store, spec, self.credentials)
        with connected(conns.source) as source_client, connected(conns.destination) as destination_client:
            if freeze_source:
                self._freeze_snapshot = self._timed_scope_snapshot(source_client, spec, conns.names[0])
                self._freezer('source', conns.names[0]).check(source_client, conns.source, self._freeze_snapshot,
                                                              migrator_acl=conns.source_acl,
                                                              allow_shared_identity=self.options.allow_shared_identity)
            if check_mode:
                return self._plan_complete(spec, freeze_source, resuming, before)
            if not resuming:
                self._preflight_status()
            outcome = self._run_complete(spec, record, resuming, freeze_source, before, source_client, destination_client, conns)
        # the first look at who still uses the source, once this run's own sessions are closed; re-runs compare with it
        source, look = self._look(spec)
        outcome.update(source_clients=source, cutover=self._record_look(look), operations=list(self.operations),
                       warnings=list(self.warnings))
        return outcome

    def source_clients(self, spec=None):
        """Who still uses the task's source (``_clients.clients_of``), or None with a warning when it cannot be listed."""
        try:
            report = clients_of(self.store, (spec or self._spec())['source'], self.credentials, allow=self.options.client_allow)
        except ZkMigrationError as exc:
            self.warnings.append('the clients of the source could not be listed: %s' % exc)
            return None
        if report['clients']:
            self.warnings.append('%d client session(s) still use the source: %s' % (report['clients'], '; '.join(report['summary'])))
        return report

    def _look_after_cutover(self, spec, record, check_mode):
        """A re-run after a completed cutover: who still uses the source, the destination's connections per member and the
        final verification, kept in the cutover record (``details.after_cutover``) with the time it was first seen.

        The record is written only when the set of client hosts on the source changed since the last look (the cutover
        itself takes the first): a re-run that finds the same hosts changes nothing, and returns the current counts.
        """
        source, look = self._look(spec)
        known = ((record.get('details') or {}).get('after_cutover')) or {}
        # the hosts, not their session counts: connection pools and the daemons' own reconnections move the counts
        changed = _hosts(known.get('source_hosts')) != _hosts(look['source_hosts'])
        if changed:
            self.operations.append('record who still uses the source of task %s (%s client session(s))' % (self.task, look['source_clients']))
        if changed and not check_mode:
            record = self._record_look(look)
        look['observed_at'] = None if changed and check_mode else (((record.get('details') or {}).get('after_cutover') or {}).get('observed_at'))
        verification = dict((key, (record.get('verify') or {}).get(key)) for key in ('in_sync', 'blocking', 'counts')) \
            if record.get('verify') else None
        msg = 'task %s was cut over at %s; %s' % (
            self.task, _when(record.get('completed_at')),
            'the source clients could not be listed' if source is None else '%d client session(s) still use the source' % source['clients'])
        return self._done(changed, record, msg, source_clients=source, after_cutover=dict(look, verification_at_cutover=verification),
                          check_mode=check_mode)

    def _look(self, spec):
        """(source client report or None, the look kept in the cutover record plus ``destination`` per member)."""
        source = self.source_clients(spec)
        destination = connections_of(self.store, spec['destination'], self.credentials, 'destination')
        if destination and all('error' in found for found in destination.values()):
            self.warnings.append('no member of the destination %s told its connection count (%s): a managed service may not answer '
                                 'four-letter words; watch the applications from its console instead'
                                 % (spec['destination'], '; '.join(sorted(set(found['error'] for found in destination.values())))))
        return source, {
            'source_clients': None if source is None else source['clients'],
            'source_hosts': None if source is None else dict((host, entry['sessions']) for host, entry in source['hosts'].items()),
            'source_complete': None if source is None else source['complete'],
            'destination_connections': dict((member, found.get('connections')) for member, found in destination.items()),
            'destination': destination,
        }

    def _record_look(self, look):
        stored = dict((key, value) for key, value in look.items() if key != 'destination')
        stored['observed_at'] = self.now()
        return self._update_record(details={'after_cutover': stored})[0]

    def _plan_complete(self, spec, freeze_source, resuming, before):
        if not resuming:
            leader, _status = self._preflight_status()
            self.operations.append('preflight: task %s is in sync, led by %s' % (self.task, leader))
        else:
            self.operations.append('resume the interrupted cutover of task %s' % self.task)
        self.operations.append('record the cutover of task %s' % self.task)
        if freeze_source:
            if before['sync_acl']:
                self.operations.append('suspend ACL propagation of task %s while the source is frozen' % self.task)
            self._plan_freeze('source', self._freeze_snapshot)
        self.operations.append('drain task %s and pause it' % self.task)
        if self.options.verify:
            self.operations.append('verify %s against %s' % (spec['source'], spec['destination']))
        self.operations.append('stop task %s and record the cutover as completed' % self.task)
        return self._done(True, self.store.get_cutover(self.task), 'would cut over task %s' % self.task, check_mode=True)

    def _backup_path(self, cluster):
        stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(self.now()))
        return os.path.join(self.options.backup_dir, '%s-%s-%s.jsonl.gz' % (self.task, cluster, stamp))

    def _backup(self, client, spec, cluster, side):
        """Export the scope on ``cluster`` (data, ACLs, counters) to ``backup_dir`` before it is frozen; returns the file.

        The ACLs an earlier, interrupted run already saved go in too (the nodes then read frozen): a thaw from the file
        puts the originals back.
        """
        from ansible_collections.zookeeper.migration.plugins.module_utils._backup import export_scope
        path = self._backup_path(cluster)
        count = export_scope(client, spec['paths'], path, exclude=spec['exclude'], control_root=self.store.root, cluster=cluster,
                             now=self.now, extra={'task': self.task}, saved_acls=self.store.load_saved_acls(self.task, side=side))
        self.operations.append('export %d znode(s) of %s (data, ACLs, counters) to %s' % (count, cluster, path))
        self.result['backup'] = path
        return path

    def _align_counters(self, reference_client, copy_client, spec, names):
        """Carry the sequential counters again once the task is paused: IDs handed out on the reference cluster while it
        synced (an ID generator whose children are gone) must not be handed out again on the copy."""
        from ansible_collections.zookeeper.migration.plugins.module_utils._counters import align_counters
        outcome = align_counters(reference_client, copy_client, spec, control_root=self.store.root, source_name=names[0],
                                 destination_name=names[1])
        if outcome.get('failures'):
            failure = outcome['failures'][0]
            raise CutoverError('raising the sequential counter of %s on %s failed: %s'
                               % (failure.get('path'), names[1], failure.get('message')), path=failure.get('path'), cluster=names[1])
        raised = outcome.get('applied_pairs') or 0
        if outcome.get('parents'):
            self.operations.append('raise the sequential counters of %d parent(s) on %s to %s\'s (%d create+delete pairs)'
                                   % (outcome['parents'], names[1], names[0], raised))
        return outcome

    def _plan_freeze(self, side, snapshot):
        """The check-mode steps and figures of freezing ``side`` (its scope read in ``snapshot``)."""
        count = snapshot.persistent_count
        if self.options.backup_dir:
            self.operations.append('export the %s\'s scope (data, ACLs, counters) to %s' % (side, self.options.backup_dir))
        self.operations.append('freeze %d %s znode(s) read-only, saving their ACLs first' % (count, side))
        self.operations.append('prove the freeze: a write by a throwaway identity must be refused')
        self.result['frozen'] = count
        self.result['write_outage_estimate'] = estimate_outage(count, self._read_seconds, self.options.settle)

    def _run_complete(self, spec, record, resuming, freeze, before, source_client, destination_client, conns):
        started = self.now()
        names = conns.names
        freezer = self._freezer('source', names[0])
        frozen_at = ((record or {}).get('details') or {}).get('frozen_at')
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
                self._trigger(lambda: self._set_task(state='running', sync_acl=False if freeze else before['sync_acl']),
                              what='resuming the task')
            # the record write restarts the leader's engine; once it has reconciled, everything written before is on the destination
            self._trigger(write_record, what='draining' if not freeze else 'recording the cutover')
            if freeze:
                # the leader must not propagate ACLs once the source is frozen
                self._trigger(lambda: self._set_task(sync_acl=False), what='suspending ACL propagation')
                if self.options.backup_dir:
                    self._update_record(details={'backup': self._backup(source_client, spec, names[0], 'source')})
                frozen_at = frozen_at or self.now()
                self._update_record(details={'frozen_at': frozen_at})
                self.result['frozen'] = freezer.freeze(source_client, spec, self.store.root)
                self.operations.append('freeze %d source znode(s) read-only (original ACLs saved first)' % self.result['frozen'])
                self.result['freeze_proof'] = freezer.prove(source_client, conns.source, spec, self.options.allow_shared_identity)
                self._trigger(lambda: self._update_record(state='frozen', source_frozen=True)[1], what='draining')
            self._pause()
            self._update_record(state='drained', details={'paused_by_cutover': True})
            self.operations.append('drain task %s and pause it' % self.task)
            self._align_counters(source_client, destination_client, spec, names)
            expected = None
            if before['sync_acl']:
                expected = self._expected_acls(source_client, spec, names[0])
                self._fix_destination_acls(destination_client, expected, spec, conns.destination_acl, names[1])
            if self.options.verify:
                mismatches = None
                if expected is not None:
                    mismatches = [path for path, _wanted, _aversion in
                                  self._destination_acl_differences(destination_client, expected, spec, conns.destination_acl, names[1])]
                summary = self._verify_trees(source_client, destination_client, spec, names, mismatches)
                self.result['verify'] = summary
                if not summary['in_sync']:
                    raise CutoverError('final verification of task %s failed: %s' % (self.task, describe_blocking(summary)), report=summary)
                self._update_record(state='verified', verify=summary)
        except Exception as exc:
            self._abort(exc, freezer, source_client, before)
            raise self._aborted(exc, self._abort_note(freeze))
        self._set_task(state='stopped', sync_acl=before['sync_acl'])
        completed_at = self.now()
        outage = _outage(frozen_at, completed_at) if freeze else None
        self.result['write_outage'] = outage
        record, _zxid = self._update_record(state='completed', completed_at=completed_at, direction_after_cutover='none',
                                            source_frozen=freeze, last_error=None, details={'write_outage': outage})
        self.operations.append('stop task %s and record the cutover as completed' % self.task)
        return self._done(True, record, 'task %s cut over%s' % (
            self.task, ' (source frozen; writes refused for %.1fs so far)' % outage['seconds'] if outage else ''))

    @staticmethod
    def _aborted(exc, note):
        """The error a failed run raises once it has undone what it did."""
        if isinstance(exc, CutoverError):
            exc.aborted = True
            exc.message = '%s; %s' % (exc.message, note)
            return exc
        if isinstance(exc, ZkMigrationError):
            return CutoverError('%s; %s' % (exc, note), path=exc.path, cluster=exc.cluster, aborted=True)
        return exc

    @staticmethod
    def _abort_note(freeze):
        return 'cutover aborted: %s' % ('source ACLs restored, task syncing again' if freeze else 'task syncing again')

    def _abort(self, reason, freezer, client, before):
        """Undo a cutover that failed before completion: restore source ACLs, resume the task, record ``aborted``."""
        problems = []
        try:
            self.result['restored'] = freezer.restore(client)
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
        if phase in (_task.CUTOVER_COMPLETED, _task.CUTOVER_ROLLED_BACK_AFTER_COMPLETION):
            return self._rollback_after_completion(spec, record, check_mode)
        details = record.get('details') or {}
        before = dict(details.get('spec_before') or {'sync_acl': spec['sync_acl'], 'state': 'running'})
        saved = self.store.load_saved_acls(self.task)
        wanted_record = {'state': 'rolled_back', 'source_frozen': False}
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
            self.operations.append('record the cutover of task %s as rolled back' % self.task)
            return self._done(True, record, 'would roll back task %s' % self.task, check_mode=True)
        if saved:
            conns = _Connections(self.store, spec, self.credentials)
            with connected(conns.source) as source_client:
                self.result['restored'] = self._freezer('source', spec['source']).restore(source_client)
            self.operations.append('restore the original ACLs of %d source znode(s)' % self.result['restored'])
        record, _zxid = self._update_record(last_error=None, details={'rolled_back_at': self.now()}, **wanted_record)
        self._set_task(**wanted_spec)
        self.operations.append('record the cutover of task %s as rolled back' % self.task)
        return self._done(True, record, 'task %s rolled back: syncing resumed' % self.task)

    def _rollback_after_completion(self, spec, record, check_mode):
        """The mirror of a cutover: sync the destination back, freeze it, drain, verify, stop, thaw the source.

        Every write the clients made on the destination reaches the source
        before the source is writable again, and the destination is frozen
        (when the cutover froze the source) so that no write lands there
        after the last drain. Only then may the clients move back.
        """
        details = record.get('details') or {}
        progress = dict(details.get('rollback') or {})
        if record.get('state') == 'rolled_back' and progress.get('state') == 'completed':
            return self._done(False, record, 'task %s was rolled back at %s: the source is the truth%s' % (
                self.task, _when(progress.get('completed_at')), ' and the destination is frozen' if progress.get('freeze') else ''))
        before = dict(details.get('spec_before') or {'sync_acl': spec['sync_acl'], 'state': 'running'})
        freeze = bool(progress.get('freeze', record.get('source_frozen')))
        conns = _Connections(self.store, spec, self.credentials)
        names = conns.names
        source_freezer = self._freezer('source', names[0])
        destination_freezer = self._freezer('destination', names[1])
        with connected(conns.source) as source_client, connected(conns.destination) as destination_client:
            source_frozen = bool(source_freezer.saved())
            if freeze:
                snapshot = self._timed_scope_snapshot(destination_client, spec, names[1])
                destination_freezer.check(destination_client, conns.destination, snapshot, migrator_acl=conns.destination_acl,
                                          allow_shared_identity=self.options.allow_shared_identity,
                                          migrator_added=spec['acl_mode'] == 'grant_migrator')
            if check_mode:
                return self._plan_rollback_after_completion(spec, freeze, source_frozen, snapshot if freeze else None)
            return self._run_rollback_after_completion(spec, before, freeze, source_frozen, progress, conns, source_client,
                                                       destination_client, source_freezer, destination_freezer)

    def _plan_rollback_after_completion(self, spec, freeze, source_frozen, snapshot):
        self.operations.append('sync %s back to %s until they are in sync' % (spec['destination'], spec['source']))
        if freeze:
            self._plan_freeze('destination', snapshot)
        self.operations.append('drain task %s and pause it' % self.task)
        if self.options.verify:
            self.operations.append('verify %s against %s' % (spec['source'], spec['destination']))
        self.operations.append('stop task %s' % self.task)
        if source_frozen:
            self.result['restored'] = len(self.store.load_saved_acls(self.task))
            self.operations.append('thaw the source: set its ACLs %s' % (
                'from the destination\'s' if spec['sync_acl'] else 'back to the originals saved by the freeze'))
        self.operations.append('record the rollback of task %s as done: move the clients back to %s' % (self.task, spec['source']))
        return self._done(True, self.store.get_cutover(self.task), 'would roll back task %s' % self.task, check_mode=True)

    def _run_rollback_after_completion(self, spec, before, freeze, source_frozen, progress, conns, source_client, destination_client,
                                       source_freezer, destination_freezer):
        names = conns.names
        # ACLs flow back only when the source is not frozen (a frozen ACL must stay until the thaw sets the final one)
        sync_acl_back = bool(before['sync_acl']) and not source_frozen
        progress.update(state='syncing_back', freeze=freeze, started_at=progress.get('started_at') or self.now())
        progress.pop('error', None)
        try:
            self._trigger(lambda: self._update_record(state='rolling_back', direction_after_cutover='destination_to_source',
                                                      last_error=None, details={'rollback': dict(progress)})[1],
                          lambda: self._set_task(state='running', sync_acl=sync_acl_back), what='syncing back')
            self.operations.append('sync %s back to %s: in sync' % (names[1], names[0]))
            if freeze:
                if self.options.backup_dir:
                    progress['backup'] = self._backup(destination_client, spec, names[1], 'destination')
                progress['frozen_at'] = progress.get('frozen_at') or self.now()
                self._update_record(details={'rollback': dict(progress)})
                self.result['frozen'] = destination_freezer.freeze(destination_client, spec, self.store.root)
                self.operations.append('freeze %d destination znode(s) read-only (original ACLs saved first)' % self.result['frozen'])
                self.result['freeze_proof'] = destination_freezer.prove(destination_client, conns.destination, spec,
                                                                        self.options.allow_shared_identity)
                progress['state'] = 'frozen'
                self._trigger(lambda: self._update_record(details={'rollback': dict(progress)})[1], what='draining')
            self._pause()
            progress['state'] = 'drained'
            self._update_record(details={'rollback': dict(progress)})
            self.operations.append('drain task %s and pause it' % self.task)
            self._align_counters(destination_client, source_client, spec, (names[1], names[0]))
            if self.options.verify:
                summary = self._verify_trees(destination_client, source_client, spec, (names[1], names[0]))
                self.result['verify'] = summary
                if not summary['in_sync']:
                    raise CutoverError('final verification of the rollback of task %s failed: %s'
                                       % (self.task, describe_blocking(summary)), report=summary)
                progress['state'] = 'verified'
                self._update_record(verify=summary, details={'rollback': dict(progress)})
        except Exception as exc:
            self._abort_rollback(exc, destination_freezer, destination_client, progress, sync_acl_back)
            raise self._aborted(exc, 'rollback aborted: %s' % (
                'destination ACLs restored, still syncing the destination to the source' if freeze
                else 'still syncing the destination to the source'))
        self._set_task(state='stopped', sync_acl=before['sync_acl'])
        targets = None
        if before['sync_acl'] and source_frozen:
            targets = self._source_acls_from_destination(destination_client, destination_freezer, spec, conns)
        self.result['restored'] = source_freezer.restore(source_client, targets)
        if source_frozen:
            self.operations.append('thaw %d source znode(s)' % self.result['restored'])
        completed_at = self.now()
        progress.update(state='completed', completed_at=completed_at)
        outage = _outage(progress.get('frozen_at'), completed_at) if freeze else None
        self.result['write_outage'] = outage
        record, _zxid = self._update_record(state='rolled_back', source_frozen=False, last_error=None,
                                            details={'rollback': dict(progress, write_outage=outage), 'rolled_back_at': completed_at})
        self.operations.append('record the rollback of task %s as done' % self.task)
        return self._done(True, record, 'task %s rolled back: %s holds every write made on %s%s; move the clients back to %s now' % (
            self.task, names[0], names[1], ' (frozen)' if freeze else '', names[0]))

    def _source_acls_from_destination(self, destination_client, destination_freezer, spec, conns):
        """{path: source ACL} for every persistent destination node: its original (pre-freeze) ACL, without the migrator grants."""
        snapshot = scope_snapshot(destination_client, spec, self.store.root, conns.names[1], with_acl=True)
        saved_destination = destination_freezer.saved()
        saved_source = self.store.load_saved_acls(self.task)
        targets = {}
        for node in snapshot.persistent():
            acl = saved_destination.get(node.path) or node.acl or ()
            targets[node.path] = source_acl_from_destination(acl, spec['acl_mode'], conns.destination_acl, saved_source.get(node.path))
        return targets

    def _abort_rollback(self, reason, destination_freezer, destination_client, progress, sync_acl_back):
        """Undo a rollback that failed: thaw the destination (the clients' cluster), keep syncing it to the source."""
        problems = []
        try:
            self.result['restored'] = destination_freezer.restore(destination_client)
        except Exception as exc:  # pylint: disable=broad-except
            problems.append('restoring the destination ACLs failed (%s): they are still saved; run the rollback again' % exc)
        try:
            self._set_task(state='running', sync_acl=sync_acl_back)
        except Exception as exc:  # pylint: disable=broad-except
            problems.append('setting the task running again failed (%s)' % exc)
        message = str(reason)[:1500]
        if problems:
            message = '%s; %s' % (message, '; '.join(problems))
        try:
            self._update_record(last_error=message, details={'rollback': dict(progress, state='aborted', error=message)})
        except Exception as exc:  # pylint: disable=broad-except
            problems.append('recording the abort failed (%s)' % exc)
        self.operations.append('abort the rollback of task %s' % self.task)
        if problems:
            raise CutoverError('%s; the abort did not finish: %s' % (reason, '; '.join(problems)), report=getattr(reason, 'report', None))


def _hosts(source_hosts):
    """The client hosts of a look (None when the source could not be listed)."""
    return None if source_hosts is None else sorted(source_hosts)


def _outage(frozen_at, ended_at):
    """The write outage of a freeze: from the first frozen batch to the end of the run (seconds)."""
    if not frozen_at:
        return None
    return {'frozen_at': frozen_at, 'ended_at': ended_at, 'seconds': round(max(0.0, ended_at - frozen_at), 3)}


def _when(epoch):
    if not epoch:
        return 'an unknown time'
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


__all__ = ['Cutover', 'CutoverOptions', 'CutoverError', 'frozen_acl', 'destination_acl', 'source_acl_from_destination', 'estimate_outage',
           'summarize_verification', 'set_acls_pipelined']
