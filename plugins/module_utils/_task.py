# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The task side of ``zk_sync_task``: desired spec, preflight and plan, waiting for the daemons.

This is a private module of the zookeeper.migration collection; it may change
without notice.

* ``desired_spec(params)``: the task spec a module's options ask for.
* ``merge_spec(current, desired)``: the spec to store, keeping the fields the
  module does not manage (``direction_after_cutover``).
* ``cutover_phase(record)``: where a task's cutover stands (none, in progress,
  done before/after completion), which decides what ``zk_sync_task`` may change.
* ``plan_initial_sync(...)``: the preflight and the plan of the initial sync.
  It snapshots both sides and diffs them with the copy engine in dry-run mode
  (``_apply.copy(dry_run=True)``), which also proves that the migration
  identity can read everything it must copy: a NoAuth on a read, or digest
  ACLs whose hashes the server masked (``user:x``, no ADMIN permission), is
  an ``AuthFailedError`` naming the first such node.
* ``wait_for_status(...)``: poll the task status the daemon leader writes
  until the initial sync is done or the task is in sync.
"""

import copy
import time

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    AuthFailedError,
    ConfigError,
    NoNodeError,
    ZkMigrationError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils import _records
from ansible_collections.zookeeper.migration.plugins.module_utils import _counters
from ansible_collections.zookeeper.migration.plugins.module_utils._client import translate_error

try:
    from kazoo import exceptions as kazoo_exceptions
    HAS_KAZOO = True
except ImportError:
    HAS_KAZOO = False

#: Task spec fields the module manages (``direction_after_cutover`` belongs to the cutover).
MANAGED_FIELDS = ('source', 'destination', 'mode', 'paths', 'exclude', 'initial', 'prune', 'sync_acl', 'acl_mode', 'conflict',
                  'node_types', 'max_write_rate', 'counters', 'state')
#: Fields that change what the initial sync copies: a change re-runs the preflight.
SCOPE_FIELDS = ('source', 'destination', 'mode', 'paths', 'exclude', 'initial', 'prune', 'sync_acl', 'acl_mode', 'node_types', 'counters')

#: Cutover record states of a cutover that has started and not ended.
CUTOVER_IN_PROGRESS = ('started', 'frozen', 'drained', 'verified')

# cutover_phase() values
NO_CUTOVER = 'none'
CUTOVER_RUNNING = 'in_progress'
CUTOVER_ENDED_BEFORE_COMPLETION = 'ended'        # aborted or rolled back before it completed: the task is free again
CUTOVER_COMPLETED = 'completed'                  # cut over: the task does not sync (direction none)
CUTOVER_ROLLED_BACK_AFTER_COMPLETION = 'reverse'  # rolled back after completion: syncing destination -> source

WAIT_CHOICES = ('none', 'initial_sync', 'in_sync')


class WaitTimeout(ZkMigrationError):
    """The task did not reach what ``wait_for_status`` waited for; ``status`` holds the last status read."""

    kind = 'timeout'

    def __init__(self, message, status=None, path=None, cluster=None):
        super(WaitTimeout, self).__init__(message, path=path, cluster=cluster)
        self.status = status


def desired_spec(params):
    """The task spec (``_records.normalize_task_spec`` input) that the module options ask for.

    Options left unset (None) are left out, so the control plane's defaults apply.
    """
    spec = {'name': params['name']}
    for field in MANAGED_FIELDS:
        value = params.get(field)
        if value is None:
            continue
        if field == 'node_types':
            value = [dict((key, item) for key, item in entry.items() if item is not None) for entry in value]
        spec[field] = copy.deepcopy(value)
    return spec


def given_fields(desired):
    """The managed fields ``desired`` (``desired_spec``) sets: what a pause or a stop changes, the rest kept as stored."""
    return tuple(field for field in MANAGED_FIELDS if field in desired)


def merge_spec(current, desired, only=None):
    """The spec to store: ``current`` (or the defaults) with the managed fields of ``desired``.

    ``only`` restricts the fields taken from ``desired`` (e.g. ``('state',)``).
    Fields the module does not manage (``direction_after_cutover``) keep their
    current value.
    """
    if current is None:
        merged = dict(_records.task_defaults())
        merged['name'] = desired['name']
    else:
        merged = copy.deepcopy(current)
    for field in only or MANAGED_FIELDS:
        if field in desired:
            merged[field] = copy.deepcopy(desired[field])
        elif current is None:
            continue
        elif field in _records.TASK_DEFAULTS and only is None:
            # an option left unset means "the default", as when the task was created
            merged[field] = copy.deepcopy(_records.TASK_DEFAULTS[field])
    return merged


def scope_changed(before, after):
    """True when the fields that decide what the initial sync copies differ (or the task is new)."""
    if before is None:
        return True
    return any(before.get(field) != after.get(field) for field in SCOPE_FIELDS)


def cutover_phase(record):
    """Where the task's cutover stands, from its cutover record (see the ``*CUTOVER*`` constants)."""
    if record is None:
        return NO_CUTOVER
    if record.get('completed_at') or record.get('state') == 'completed':
        if record.get('direction_after_cutover') == 'destination_to_source':
            return CUTOVER_ROLLED_BACK_AFTER_COMPLETION
        return CUTOVER_COMPLETED
    if record.get('state') in CUTOVER_IN_PROGRESS:
        return CUTOVER_RUNNING
    return CUTOVER_ENDED_BEFORE_COMPLETION


def target_spec(name, current, desired, record, only=None, root=_records.DEFAULT_ROOT):
    """The spec to store for task ``name``, given where its cutover stands; returns ``(spec, warnings)``.

    ``current`` is the stored spec (or None), ``desired`` what the module asks
    for (``desired_spec``), ``record`` the cutover record, ``only`` the fields
    a pause or stop changes. While a cutover runs, nothing may change
    (``ConfigError``). After a completed cutover only state changes that do
    not restart syncing are applied; the rest is ignored with a warning. Else
    the desired spec is merged in. The result is normalized.
    """
    phase = cutover_phase(record)
    warnings = []
    if phase == CUTOVER_RUNNING:
        target = current
        if _records.normalize_task_spec(merge_spec(current, desired, only=only), root=root) != current:
            raise ConfigError('a cutover of task %s is in progress (cutover state %s): the task cannot be changed now. Finish it '
                              '(zookeeper.migration.zk_cutover state=completed) or roll it back (state=rolled_back) first'
                              % (name, record['state']))
    elif phase in (CUTOVER_COMPLETED, CUTOVER_ROLLED_BACK_AFTER_COMPLETION):
        target = _target_after_cutover(name, current, desired, phase, warnings)
    else:
        target = merge_spec(current, desired, only=only)
    return _records.normalize_task_spec(target, root=root), warnings


def _target_after_cutover(name, current, desired, phase, warnings):
    """A task with a completed cutover: only state changes that do not restart syncing."""
    wanted_state = desired['state']
    allowed = ('stopped', 'paused') if phase == CUTOVER_COMPLETED else ('running', 'stopped', 'paused')
    ignored = [field for field in MANAGED_FIELDS if field != 'state' and field in desired and current.get(field) != desired[field]]
    if ignored:
        warnings.append('task %s has a completed cutover: changes to %s are not applied (remove the task with state=absent '
                        'force=true to start a new migration)' % (name, ', '.join(ignored)))
    if wanted_state not in allowed:
        if current['state'] != wanted_state:
            warnings.append('task %s has a completed cutover: it is left %s, not set %s, so syncing does not restart (roll it back '
                            'with zookeeper.migration.zk_cutover state=rolled_back, or remove it with state=absent force=true)'
                            % (name, current['state'], wanted_state))
        return current
    return merge_spec(current, desired, only=('state',))


def missing_source_paths(client, paths, cluster=None):
    """The task paths that do not exist on the source."""
    missing = []
    for path in paths:
        try:
            if client.exists(path) is None:
                missing.append(path)
        except Exception as exc:  # pylint: disable=broad-except
            raise translate_error(exc, path=path, cluster=cluster)
    return missing


def plan_initial_sync(source_client, destination_client, spec, control_root=_records.DEFAULT_ROOT, migrator_acl=None,
                      source_name=None, destination_name=None, max_paths=20):
    """Preflight and plan of a task's initial sync; returns a dict (see ``zk_sync_task``'s ``plan``).

    Raises ``NoNodeError`` when a task path does not exist on the source,
    ``AuthFailedError`` when the migration identity cannot read a node it
    must copy (NoAuth) or its ACL in full (masked digest hashes),
    ``ConfigError`` for ``acl_mode: grant_migrator`` without an identity to
    grant, ``TooLargeError`` for a node the destination cannot take.
    Nothing is written.
    """
    from ansible_collections.zookeeper.migration.plugins.module_utils import _apply  # kazoo-dependent, imported late
    source_name = source_name or spec['source']
    destination_name = destination_name or spec['destination']
    missing = missing_source_paths(source_client, spec['paths'], cluster=source_name)
    if missing:
        raise NoNodeError('task %r: path%s %s do%s not exist on the source cluster %r: a task copies existing subtrees '
                          '(create them on the source first, or fix the paths)'
                          % (spec['name'], 's' if len(missing) > 1 else '', ', '.join(missing), '' if len(missing) > 1 else 'es',
                             source_name), path=missing[0], cluster=source_name)
    if spec['acl_mode'] == 'grant_migrator' and spec['sync_acl'] and not migrator_acl:
        raise ConfigError('task %r: acl_mode grant_migrator adds the migration identity to every copied ACL, but the destination '
                          'cluster %r is registered without auth, so there is no identity to grant: register it with '
                          'auth (digest or SASL) or use acl_mode verbatim' % (spec['name'], destination_name))
    union = spec['initial'] == 'union'
    prune = bool(spec['prune']) and not union
    try:
        result = _apply.copy(source_client, destination_client, list(spec['paths']), exclude=list(spec['exclude']),
                             sync_acl=spec['sync_acl'], acl_mode=spec['acl_mode'],
                             migrator_acl=migrator_acl if spec['acl_mode'] == 'grant_migrator' else None,
                             prune=prune, node_types=spec['node_types'] or None, dry_run=True,
                             snapshot_options={'control_root': control_root}, counters=spec.get('counters'))
    except AuthFailedError as exc:
        raise AuthFailedError('task %r: the migration identity of the source cluster %r cannot read what the task must copy: %s'
                              % (spec['name'], source_name, exc.message), path=exc.path, cluster=source_name)
    plan = result.plan
    diff = result.diff
    counts = plan.counts
    extra = sorted(diff.extra)
    destination = {
        'create': counts['create'],
        'update': counts['set_data'],
        'delete': counts['delete'],
        'set_acl': counts['set_acl'],
        'raise_counter': counts['raise_cversion'],
    }
    source = {'create': len(extra) if union else 0, 'update': 0, 'delete': 0, 'set_acl': 0, 'raise_counter': 0}
    leftovers = [] if (union or prune) else extra
    counters = _counters.plan_cost(plan, max_paths=max_paths)
    counters['scope'] = spec.get('counters') or _counters.DEFAULT_COUNTERS
    return {
        'counters': counters,
        'source': source,
        'destination': destination,
        'source_nodes': diff.source_persistent,
        'destination_nodes': diff.destination_persistent,
        'in_sync': diff.in_sync,
        'leftovers': len(leftovers),
        'leftover_paths': leftovers[:max_paths],
        'ephemeral_skipped': dict(diff.ephemeral_skipped),
        'skipped': plan.skipped[:max_paths],
        'first_paths': {
            'create': [op.path for op in plan.creates[:max_paths]],
            'update': [op.path for op in plan.updates[:max_paths]],
            'delete': [op.path for op in plan.deletes[:max_paths]],
            'copy_back': extra[:max_paths] if union else [],
        },
    }


def read_status(store, task):
    """``(status, zxid)`` of the task's status znode, ``(None, 0)`` when none was written yet."""
    path = store.status_path(task)
    try:
        data, stat = store.client.get(path)
    except Exception as exc:  # pylint: disable=broad-except
        if HAS_KAZOO and isinstance(exc, kazoo_exceptions.NoNodeError):
            return None, 0
        raise translate_error(exc, path=path)
    return _records.decode_record(data, path, _records.normalize_status), stat.mzxid


def node_zxid(store, path):
    """The mzxid of a control-store znode (0 when it does not exist): a point in the control ensemble's history."""
    try:
        stat = store.client.exists(path)
    except Exception as exc:  # pylint: disable=broad-except
        raise translate_error(exc, path=path)
    return stat.mzxid if stat is not None else 0


def status_reached(status, wait):
    """True when ``status`` shows what ``wait`` asks for.

    ``initial_sync``: the leader finished the initial copy (phase
    ``streaming``). ``in_sync``: streaming with nothing left to reconcile
    (empty queue, zero lag).
    """
    if status is None or status.get('phase') != 'streaming':
        return False
    if wait == 'initial_sync':
        return True
    details = status.get('details') or {}
    return details.get('queue', 0) == 0 and not status.get('lag_ms')


def wait_for_status(store, task, wait, timeout, after_zxid=0, poll=0.25, clock=time.monotonic, sleep=time.sleep):
    """Wait until the task status shows ``wait`` (``initial_sync`` or ``in_sync``); returns the status.

    Only a status written after ``after_zxid`` counts (a control-store point,
    e.g. the zxid of the spec just written), so a status from before a change
    or from a leader that died is never taken for progress: a live leader
    rewrites it every few seconds. Raises ``WaitTimeout`` (with ``status``)
    after ``timeout`` seconds.
    """
    if wait not in WAIT_CHOICES:
        raise ConfigError('wait must be one of %s, got %r' % (', '.join(WAIT_CHOICES), wait))
    if wait == 'none':
        return read_status(store, task)[0]
    deadline = clock() + timeout
    status = None
    fresh = False
    while True:
        status, zxid = read_status(store, task)
        fresh = status is not None and zxid > after_zxid
        if fresh and status_reached(status, wait):
            return status
        if clock() >= deadline:
            break
        sleep(poll)
    goal = 'the end of its initial sync' if wait == 'initial_sync' else 'in-sync'
    raise WaitTimeout('task %r did not reach %s within %gs: %s' % (task, goal, timeout, describe_status(store, task, status, fresh)),
                      status=status)


def describe_status(store, task, status, fresh=True):
    """One operator-readable sentence about a task's status (for timeouts and preflight failures)."""
    leader = store.current_leader(task)
    if status is None:
        why = 'no daemon has written its status yet'
    elif not fresh:
        why = 'its status was not updated meanwhile (last phase %s)' % status.get('phase')
    else:
        details = status.get('details') or {}
        why = 'phase %s, %s/%s nodes, queue %s, lag %s ms' % (
            status.get('phase'), status.get('nodes_done'), status.get('nodes_total'), details.get('queue'), status.get('lag_ms'))
        if status.get('last_error'):
            why += ', last error: %s' % status['last_error']
    if leader is None:
        why += '; no daemon leads the task (are the sync daemons deployed and running, with this control root?)'
    else:
        why += '; leader %s' % leader
    return why
