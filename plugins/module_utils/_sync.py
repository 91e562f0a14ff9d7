# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-task sync engine: initial sync, then continuous one-way or bidirectional sync.

This is a private module of the zookeeper.migration collection; it may change
without notice. The daemon (``_daemon.py``) runs one ``SyncEngine`` per task
it leads; the contract it implements is docs/daemon.md ("Sync semantics").

How a task runs
---------------
1. **Fence**: the new leader bumps ``<root>/fence/<task>`` on every cluster
   it may write to; every write multi starts with ``check(fence, epoch)``, so
   writes an older leader still had queued fail when it wakes up.
2. **Watches first**: persistent recursive watches (addWatch, ZooKeeper 3.6+)
   on each task path, or one-shot kazoo data and child watches on every node
   (3.4/3.5). Every event only names a path; the path goes into a coalescing
   reconcile queue.
3. **Baseline**: ``Baseline`` maps each synced path to a 60-bit hash of the
   data both sides held when they were last equal. It tells which side
   changed since (its data no longer hashes to the baseline), whether a
   missing node was deleted (it had a baseline) or never synced (it had
   none), and is checkpointed to the control store, so a new leader neither
   resurrects deletes nor re-decides conflicts.
4. **Initial sync** (no checkpoint yet): a source-authoritative copy
   (``_apply.copy``: snapshot, diff, plan, apply in byte-bounded multis),
   then a full reconcile that records the baseline of every equal path and
   queues the rest.
5. **Streaming**: the worker takes batches of paths off the queue, reads both
   sides (multiRead where the server has it), decides per path (``decide``),
   and writes only what differs: the echo of our own write then finds both
   sides equal and writes nothing. Updates and deletes are conditional on
   the version just read; a write that loses a race with a user's write
   fails and its path is re-queued, never overwritten.
6. **Safety nets**: a periodic full reconcile (both trees walked together,
   parent by parent, against the baseline, ``_ReconcileScan``; also after
   every reconnect, once the watches are back) catches what no watch reports
   (setACL fires none) and anything lost while disconnected.

Threads: kazoo's connection threads only put paths into the queue; one
worker thread owns the baseline, reads, decides, and accounts for the writes,
which a helper thread per batch sends (so that the next batch's reads overlap
them); a status thread writes the task status every few seconds (it also
covers a long initial copy).

Sessions: the watches live on the main session of each side; with a
``session_factory`` the streaming reads go through a second session on the
same member (``SyncEngine._io_client``), so they neither queue behind the
watch events nor behind the previous batch's writes.
"""

import itertools
import json
import logging
import socket
import threading
import time
import traceback

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    AuthFailedError,
    ClusterUnreachableError,
    ConfigError,
    FencedError,
    SchemaError,
    TooLargeError,
    ZkMigrationError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import (
    COMPARE_ALL,
    SEQ_BUMP_PREFIX,
    diff_snapshots,
    has_sequential_suffix,
    parent_of,
)

try:
    from kazoo import exceptions as kazoo_exceptions
    from kazoo.protocol.states import EventType, KazooState
    HAS_KAZOO = True
    KAZOO_IMPORT_ERROR = None
except ImportError:
    HAS_KAZOO = False
    KAZOO_IMPORT_ERROR = traceback.format_exc()

# Siblings that import kazoo-dependent pieces lazily themselves.
from ansible_collections.zookeeper.migration.plugins.module_utils import _apply
from ansible_collections.zookeeper.migration.plugins.module_utils import _fencing
from ansible_collections.zookeeper.migration.plugins.module_utils import _records
from ansible_collections.zookeeper.migration.plugins.module_utils import _counters
from ansible_collections.zookeeper.migration.plugins.module_utils import _protocol
from ansible_collections.zookeeper.migration.plugins.module_utils import _snapshot
from ansible_collections.zookeeper.migration.plugins.module_utils import _client
from ansible_collections.zookeeper.migration.plugins.module_utils._client import DEFAULT_MAX_REQUEST_BYTES, translate_error
from ansible_collections.zookeeper.migration.plugins.module_utils import _sync_journal
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_baseline import Baseline, data_hash64, hash64
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_decide import (  # noqa: F401 (re-exported for callers)
    COPY,
    DELETE,
    DESTINATION,
    DROP,
    IN_SYNC,
    LEFTOVER,
    SIDES,
    SKIP,
    SOURCE,
    Decision,
    NodeState,
    base_value,
    decide,
    decide_subtree,
    in_sync_value,
    other as _other,
    replay,
    written_value,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_queue import ReconcileQueue
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_scan import _ReconcileScan
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_watch import _PerNodeWatcher


LOG = logging.getLogger('zookeeper_migration.sync')


PHASE_INITIAL = 'initial_sync'
PHASE_STREAMING = 'streaming'
PHASE_PAUSED = 'paused'
PHASE_ERROR = 'error'
PHASE_CUT_OVER = 'cut_over'
PHASE_STOPPED = 'stopped'

# A batch grows up to BACKLOG_BATCH_FACTOR x batch_size paths (at most MAX_BACKLOG_BATCH) while a backlog waits.
BACKLOG_BATCH_FACTOR = 8
MAX_BACKLOG_BATCH = 8000

# Bytes a write multi keeps free for its journal entry (envelope, ACL, the parent's path and one record).
JOURNAL_ROOM = 2048

# The longest pause between two attempts at a path that keeps failing (``SyncEngine._park``).
MAX_STUCK_BACKOFF = 60.0

WATCH_PERSISTENT = 'persistent_recursive'
WATCH_PER_NODE = 'per_node'


class _NoStat(object):
    """Stands for the stat of a node that vanished while we looked."""

    ephemeralOwner = 0


_NO_STAT = _NoStat()

# One ACL normalisation and one node-type rule set for the whole engine.
acl_tuple = _apply.acl_tuple
NodeTypeRules = _apply.NodeTypeRules


def state_from_read(data, stat):
    """The ``NodeState`` of a getData reply."""
    data = data or b''
    return NodeState(data_hash64(data), data, stat.version, bool(stat.ephemeralOwner), stat.mtime, stat.mzxid,
                     stat.cversion, stat.numChildren)


# --------------------------------------------------------------------------
# Metrics (the daemon plugs in Prometheus; the default does nothing)
# --------------------------------------------------------------------------

class NullMetrics(object):
    """The metrics interface the engine reports to; every method is a no-op here."""

    def event(self, task, direction, count=1):
        """``count`` writes applied in ``direction`` (source_to_destination / destination_to_source)."""

    def conflict(self, task, count=1):
        """Conflicts settled by the policy."""

    def error(self, task, kind):
        """One failed write or read of ``kind``."""

    def latency(self, task, seconds):
        """Event-to-applied latency of one path."""

    def gauges(self, task, lag_seconds, queue_depth, tracked, phase, stuck=0):
        """Current lag, queue depth, tracked paths, phase and paths stuck (``SyncEngine._park``)."""

    def full_reconcile(self, task, seconds):
        """One full reconcile took ``seconds``."""

    def progress(self, task, done, total, eta):
        """The status' ``nodes_done``, ``nodes_total`` and ``eta_seconds`` (total and eta None while unknown)."""


class _Side(object):
    """One data cluster as a running task uses it."""

    def __init__(self, name, client, cluster_name, migrator_acl=None):
        self.name = name
        self.client = client
        self.cluster = cluster_name
        self.migrator_acl = migrator_acl
        self.multi_read = False
        self.persistent_watches = False
        self.watched = False
        self.writable = False
        self.epoch = None
        self.journal = None             # _sync_journal.Journal while this side is writable
        self.journal_position = None    # the last journal entry the in-memory baseline includes
        # A journalled multi whose outcome is unknown (its reply was lost) may have committed: until the entries
        # above journal_position are read back and replayed (SyncEngine._catch_up_journal), the baseline may
        # miss what it wrote, so nothing is decided and no checkpoint is taken.
        self.journal_gap = False
        self.watch_handles = []
        self.node_watcher = None
        self.inline_events = None
        self.connected = threading.Event()
        self.connected.set()
        self.needs_rescan = False
        self.awaiting_rearm_since = None
        self.down_since = None
        self.listener = None
        self.backoff = 0.0
        # The data session (see SyncEngine._io_client): the reads of the streaming batches.
        self.io = client
        self.data_client = None
        self.data_peer = None
        self.data_opening = None
        self.data_ready = None
        self.data_retry_at = 0.0

    @property
    def watch_mode(self):
        if not self.watched:
            return None
        return WATCH_PERSISTENT if self.persistent_watches else WATCH_PER_NODE


# --------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------

#: The engine tunables the daemon's config sets, with their defaults (the one place they are written: the daemon's
#: ``CONFIG_DEFAULTS`` and the role's argument spec are checked against it).
ENGINE_DEFAULTS = {
    'full_reconcile_interval': 300.0,   # seconds between full reconciles (0: only at start and after reconnects)
    'status_interval': 2.0,             # seconds between task status writes
    'checkpoint_interval': 1.0,         # seconds between baseline checkpoints
    'batch_size': 500,                  # paths reconciled per batch (up to BACKLOG_BATCH_FACTOR x that while a backlog drains)
    'max_request_bytes': DEFAULT_MAX_REQUEST_BYTES,
}


class EngineOptions(object):
    """Tunables of a running task (the daemon's config sets them)."""

    def __init__(self, control_root=_records.DEFAULT_ROOT, full_reconcile_interval=ENGINE_DEFAULTS['full_reconcile_interval'],
                 status_interval=ENGINE_DEFAULTS['status_interval'], checkpoint_interval=ENGINE_DEFAULTS['checkpoint_interval'],
                 batch_size=ENGINE_DEFAULTS['batch_size'], max_request_bytes=ENGINE_DEFAULTS['max_request_bytes'], max_batch_bytes=None,
                 rearm_timeout=5.0, retry_delay=0.5, error_retry_delay=5.0, journal=True):
        self.control_root = control_root
        # Off only to measure the journal's cost: a new leader then starts from the last checkpoint alone.
        self.journal = bool(journal)
        self.full_reconcile_interval = float(full_reconcile_interval) if full_reconcile_interval else 0.0
        self.status_interval = float(status_interval)
        self.checkpoint_interval = float(checkpoint_interval)
        self.batch_size = int(batch_size)
        # While a backlog waits, a batch takes up to this many paths: a batch costs about two round trips
        # (read, then write) whatever its size, so under load only larger batches keep up.
        self.max_batch_paths = max(self.batch_size, min(BACKLOG_BATCH_FACTOR * self.batch_size, MAX_BACKLOG_BATCH))
        self.max_request_bytes = int(max_request_bytes)
        self.max_batch_bytes = int(max_batch_bytes) if max_batch_bytes else self.max_request_bytes // 2
        self.rearm_timeout = float(rearm_timeout)
        self.retry_delay = float(retry_delay)
        self.error_retry_delay = float(error_retry_delay)


class _RateLimiter(object):
    """A token bucket of ``rate`` writes per second (0: unlimited), one second of burst."""

    def __init__(self, rate):
        self.rate = float(rate or 0)
        self.tokens = self.rate
        self.last = time.monotonic()

    def acquire(self, count, stop_event=None):
        if self.rate <= 0 or count <= 0:
            return
        while True:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= min(count, self.rate):
                self.tokens -= count
                return
            wait = (min(count, self.rate) - self.tokens) / self.rate
            if stop_event is not None:
                if stop_event.wait(wait):
                    return
            else:
                time.sleep(wait)


class EngineStopped(Exception):
    """Raised inside the worker to unwind when the engine must stop (leadership lost, stop asked)."""


class SyncEngine(object):
    """Runs one task while this daemon leads it: ``run(stop_event)`` blocks until stopped.

    * ``spec``: the normalized task spec (``_records.normalize_task_spec``).
    * ``clients``: ``{'source': client, 'destination': client}``, started
      kazoo clients owned by the caller (connect them just before: the
      capability probes here must run before anything else uses them).
    * ``store``: the ``_control.ControlStore`` (status and baseline checkpoints).
    * ``control_epoch``: a number that grows with every leadership
      (``TaskElection.sequence``): status and baseline written by a newer
      leader are never overwritten by an older one.
    * ``leadership_lost``: an Event set when the control session is
      suspended or lost; the engine then stops writing at once.
    * ``cutover``: the task's cutover record (or None): after a completed
      cutover the task syncs only in its recorded direction.
    * ``migrator_acls``: ``{'source': acl, 'destination': acl}``, the ACL
      entries naming the migration identity on each side (for ``acl_mode:
      grant_migrator``).
    * ``session_factory``: ``factory(side, peer)`` -> a started client on
      the member at ``peer`` (``(ip, port)``), or None
      (``member_session_factory``). With it, each side gets a second
      session, on the same member as its main session, for the streaming
      reads (see ``_io_client``). Without it (or while the second session
      is not on the main session's member) everything goes through
      ``clients``.
    """

    def __init__(self, spec, clients, store, daemon_id, control_epoch=None, options=None, metrics=None, leadership_lost=None,
                 cutover=None, migrator_acls=None, cluster_names=None, logger=None, session_factory=None):
        if not HAS_KAZOO:
            raise ConfigError('the sync engine needs the kazoo Python library')
        self.spec = spec
        self.task = spec['name']
        self.store = store
        self.daemon_id = daemon_id
        self.control_epoch = control_epoch
        self.options = options or EngineOptions()
        self.metrics = metrics or NullMetrics()
        self.leadership_lost = leadership_lost or threading.Event()
        self.log = logger or LOG
        names = cluster_names or {SOURCE: spec['source'], DESTINATION: spec['destination']}
        acls = migrator_acls or {}
        self.sides = dict((side, _Side(side, clients[side], names[side], acls.get(side))) for side in SIDES)
        self.session_factory = session_factory
        self.paths = list(spec['paths'])
        self.path_filter = _snapshot.PathFilter(spec.get('exclude') or (), self.options.control_root)
        # Without globs the filter is a few fixed subtrees: two string tests each, instead of one lookup per ancestor
        # (this runs for every watch event).
        self._excluded_subtrees = None if self.path_filter.regex is not None else [
            (fixed, fixed.rstrip('/') + '/') for fixed in self.path_filter.fixed]
        self.sync_acl = bool(spec.get('sync_acl', True))
        self.acl_mode = spec.get('acl_mode', 'verbatim')
        self.policy = spec.get('conflict', 'source_wins')
        self.prune = bool(spec.get('prune'))
        self.union = spec.get('initial') == 'union'
        self.node_types = NodeTypeRules(spec.get('node_types') or ())
        self.limiter = _RateLimiter(spec.get('max_write_rate') or 0)
        self._fence_path = _fencing.fence_path(self.options.control_root, self.task)
        self.queue = ReconcileQueue()
        self.baseline = Baseline()
        self.stop_event = threading.Event()
        self.phase = PHASE_INITIAL
        self.streaming = False
        self.counters = {'events_source_to_destination': 0, 'events_destination_to_source': 0, 'conflicts': 0,
                         'errors': 0, 'leftovers': 0, 'skipped_ephemeral': 0, 'full_reconciles': 0, 'watch_events': 0,
                         'checkpoints': 0, 'batches': 0, 'batch_paths': 0}
        self.timings = {'read': 0.0, 'decide': 0.0, 'write': 0.0}
        self.last_error = None
        self.last_error_at = None
        self.progress = {'done': 0, 'total': None, 'started': None}
        self.last_full_reconcile = None
        self._initial_mark = None       # queue append count that ends the initial sync (_maybe_finish_initial)
        self.last_checkpoint = 0.0
        self.checkpoint_cost = 0.0
        self._checkpoint_thread = None
        self._checkpoint_error = None
        self._reconcile = None
        self._reconcile_again = False
        self._reconcile_retry_at = 0.0
        self._touched = None
        self._writes_in_flight = []
        self._in_flight_paths = set()
        self._journal_order = None      # _sync_journal.SharedOrder of this leadership (set with the fences)
        self.leftover_paths = set()
        self.stuck = {}                 # path -> what keeps failing there (_park)
        self.seq_parents_pending = set()
        # counters carried beyond the sequential parents (spec 'counters'): parents of changed paths, aligned after each batch
        self.counter_stream = _counters.CounterStream(spec.get('counters'), self.accept)
        self._status_thread = None
        self._status_lock = threading.Lock()
        self._last_latency = None
        self.stopped_reason = None
        self._configure_direction(cutover)

    # -- setup -----------------------------------------------------------------
    def _configure_direction(self, cutover):
        """Which side is authoritative, which sides are written and watched.

        A cutover that completed (``completed_at`` set, whatever happened
        after) with ``direction_after_cutover: destination_to_source`` makes
        the task one-way from the destination to the source: the destination
        is the truth from then on, also through a rollback.
        """
        self.cutover_direction = cutover_direction(cutover, self.spec)
        if self.cutover_direction == 'destination_to_source':
            self.authority = DESTINATION
            self.bidirectional = False
        else:
            self.authority = SOURCE
            self.bidirectional = self.spec.get('mode') == 'bidirectional'
        replica = _other(self.authority)
        self.sides[replica].writable = True
        self.sides[self.authority].watched = True
        if self.bidirectional:
            self.sides[self.authority].writable = True
            self.sides[replica].watched = True
        if self.cutover_direction:
            # the initial-sync options were for the way in; after a cutover nothing is pushed back or pruned
            self.union = False
            self.prune = False
        if self.union:
            self.sides[self.authority].writable = True
        if cutover and cutover.get('source_frozen') and self.authority == SOURCE and self.sync_acl:
            # The source's ACLs are the read-only ones a cutover set, not the
            # users' (those are saved in the control store): copying them would
            # freeze the destination too. zk_cutover also turns sync_acl off
            # first; this holds for any leader that reads the record, whatever
            # the spec says.
            self.sync_acl = False
            self.acl_suspended = 'source_frozen'
        else:
            self.acl_suspended = None

    def accept(self, path):
        """True for paths the task syncs (under a task path, not excluded, not a throwaway counter child)."""
        if SEQ_BUMP_PREFIX in path and path.rpartition('/')[2].startswith(SEQ_BUMP_PREFIX):
            return False
        for root in self.paths:
            if path == root or root == '/' or path.startswith(root + '/'):
                break
        else:
            return False
        subtrees = self._excluded_subtrees
        if subtrees is None:
            return not self.path_filter.excluded(path)
        for exact, prefix in subtrees:
            if path == exact or path.startswith(prefix):
                return False
        return True

    def _probe(self):
        for side in self.sides.values():
            client = side.client
            side.multi_read = bool(_protocol.supports_multi_read(client))
            side.persistent_watches = bool(_protocol.supports_persistent_watches(client)) if side.watched else False
            try:
                _protocol.tune_client(client)
            except Exception:  # pylint: disable=broad-except
                pass
            side.listener = self._state_listener_for(side)
            client.add_listener(side.listener)

    def _state_listener_for(self, side):
        def listener(state):
            if state == KazooState.CONNECTED:
                if not side.connected.is_set():
                    side.connected.set()
                    side.down_since = None
                    if side.watched and side.persistent_watches:
                        # _protocol re-arms the watches; rescan once they are back (see _check_rescans)
                        side.awaiting_rearm_since = time.monotonic()
                    side.needs_rescan = True
                    self.queue.wake()
            else:
                if side.connected.is_set():
                    side.connected.clear()
                    side.down_since = time.time()
            return False
        return listener

    def _bump_fences(self):
        """Fence out every older leader on each cluster this task writes, then open the journals there.

        Leadership is checked right before: a daemon frozen since it won the
        election must not bump (``bump_fence`` also refuses when a leader of
        a higher control epoch already did).
        """
        root = self.options.control_root
        order = self._journal_order = _sync_journal.shared_order()
        for side in self.sides.values():
            if not side.writable:
                continue
            self._check_stop()
            side.epoch = _fencing.bump_fence(side.client, root, self.task, leader=self.daemon_id, control_epoch=self.control_epoch)
            parent = _fencing.journal_path(root, self.task)
            journal_acl = acl_tuple(_fencing.ensure_journal(side.client, root, self.task))
            side.journal = _sync_journal.Journal(parent, journal_acl, self.control_epoch, order)

    def _fence(self, side):
        return (self._fence_path, side.epoch)

    def _watermark(self, side):
        """The zxid of ``side`` now: the mzxid of a fence znode we just wrote, or of the cluster's root."""
        path = _fencing.fence_path(self.options.control_root, self.task)
        stat = side.client.exists(path)
        if stat is None:
            stat = side.client.exists('/')
        return max(stat.mzxid, stat.pzxid) if stat is not None else 0

    def _load_baseline(self):
        blob = self.store.get_baseline(self.task)
        if blob:
            self.baseline = Baseline.decode(blob)
        meta = self.baseline.meta
        if meta.get('task') not in (None, self.task):
            raise SchemaError('the checkpointed baseline belongs to task %r, not %r' % (meta.get('task'), self.task))
        meta['task'] = self.task
        direction = 'bidirectional' if self.bidirectional else '%s_to_%s' % (self.authority, _other(self.authority))
        if meta.get('direction') not in (None, direction):
            self.log.info('task direction changed from %s to %s: the checkpointed baseline is kept, a full reconcile follows',
                          meta.get('direction'), direction, extra={'task': self.task})
        meta['direction'] = direction
        watermarks = meta.setdefault('watermarks', {})
        for side in self.sides.values():
            if side.name not in watermarks:
                watermarks[side.name] = self._watermark(side)
                self.baseline.dirty = True
        self._replay_journals(checkpointed=bool(blob))
        self.streaming = bool(meta.get('initial_done'))

    def _replay_journals(self, checkpointed=True):
        """Bring the checkpoint up to what earlier leaders wrote after it (``_sync_journal``), before deciding anything.

        The fences are already bumped: no older leader can add an entry or
        truncate the journal from here on. Both clusters' journals are read,
        whatever this leader writes (a task made one-way still replays what a
        bidirectional leader wrote). Without a checkpoint the entries found
        are skipped: they belong to an earlier task of the same name, or to a
        leader that died before its bulk copy was checkpointed (whose work
        the bulk copy redoes); the first checkpoint deletes them.
        """
        positions = self.baseline.meta.setdefault('journal', {})
        records = []
        parent = _fencing.journal_path(self.options.control_root, self.task)
        for side in self.sides.values():
            after = positions.get(side.name)
            try:
                last, found = _sync_journal.read_entries(side.client, parent, after, side.name)
            except ZkMigrationError:
                raise
            except Exception as exc:  # pylint: disable=broad-except
                raise translate_error(exc, path=parent, cluster=side.cluster)
            side.journal_position = last
            if checkpointed:
                records.extend(found)
            elif found:
                self.log.info('task %s: %d journal record(s) on the %s predate any checkpoint of this task: not replayed',
                              self.task, len(found), side.name, extra={'task': self.task})
        epoch = int(self.control_epoch or 0)
        ours = [record.order[1] for record in records if record.order[0] == epoch]
        if ours and self._journal_order is not None:
            self._journal_order.skip_past(max(ours))
        changed = replay(self.baseline.entries, records)
        if records:
            self.baseline.dirty = True
            self.log.info('task %s: replayed %d journal record(s) written since the last checkpoint (%d path(s) changed)',
                          self.task, len(records), changed, extra={'task': self.task})

    def _arm_watches(self):
        for side in self.sides.values():
            if not side.watched:
                continue
            if side.persistent_watches:
                for root in self.paths:
                    handle = _protocol.add_watch(side.client, root, self._event_callback(side), recursive=True)
                    side.watch_handles.append(handle)
                side.inline_events = _protocol.InlineWatchEvents(side.client, self.paths, self.accept, self.queue.post, self.counters)
            else:
                side.node_watcher = _PerNodeWatcher(side.client, self.paths, self.accept, self._path_callback(side), self.log)
                side.node_watcher.arm_tree()

    def _event_callback(self, side):
        accept = self.accept
        put = self.queue.post
        counters = self.counters

        def callback(event):
            if event.type == EventType.NONE:
                # _protocol re-armed the watch after a reconnect: changes in between were not reported
                side.needs_rescan = True
                side.awaiting_rearm_since = None
                self.queue.wake()
                return
            path = event.path
            counters['watch_events'] += 1
            if accept(path):
                put(path)
        return callback

    def _path_callback(self, side):
        put = self.queue.post
        counters = self.counters

        def callback(path):
            counters['watch_events'] += 1
            put(path)
        return callback

    def _stop_watches(self):
        for side in self.sides.values():
            if side.inline_events is not None:
                side.inline_events.stop()
                side.inline_events = None
            for handle in side.watch_handles:
                try:
                    handle.remove(timeout=2.0)
                except Exception:  # pylint: disable=broad-except
                    pass
            side.watch_handles = []
            if side.node_watcher is not None:
                side.node_watcher.stop()
                side.node_watcher = None

    # -- run -------------------------------------------------------------------
    def run(self, stop_event=None):
        """Run the task until ``stop_event`` (or ``stop()``) or lost leadership; returns why it stopped.

        Raises ``FencedError`` when another leader has taken over, and the
        engine's errors when a cluster cannot be used (the daemon records them
        in the task status and retries).
        """
        if stop_event is not None:
            self.stop_event = stop_event
        self.progress['started'] = time.time()
        self._status_thread = threading.Thread(target=self._status_loop, name='status-%s' % self.task)
        self._status_thread.daemon = True
        try:
            self._probe()
            self._bump_fences()
            self._load_baseline()
            self._arm_watches()
            self._status_thread.start()
            self.log.info('leading task %s: %s, watches %s, fence epochs %s', self.task,
                          'bidirectional' if self.bidirectional else 'one-way %s -> %s' % (self.authority, _other(self.authority)),
                          dict((s.name, s.watch_mode) for s in self.sides.values() if s.watched),
                          dict((s.name, s.epoch) for s in self.sides.values() if s.writable), extra={'task': self.task})
            if not self.options.journal:
                self.log.warning('task %s: the sync journal is off (sync_journal: false): a new leader may revert writes this one '
                                 'synced after its last checkpoint', self.task, extra={'task': self.task})
            if self.acl_suspended:
                self.log.warning('task %s: the cutover record says the source is frozen: its ACLs are not copied '
                                 'until the cutover completes or is rolled back', self.task, extra={'task': self.task})
            if not self.streaming:
                self.phase = PHASE_INITIAL
                # Once per task (and set of paths): a leader taking over an initial sync after the bulk copy goes
                # on from the checkpoint and the journal; a second source-authoritative copy would revert what
                # the destination wrote since the first (and was already synced back).
                if self.baseline.meta.get('bulk_copy_done') != sorted(self.paths):
                    self._initial_copy()
                    self.baseline.meta['bulk_copy_done'] = sorted(self.paths)
                    self.baseline.dirty = True
                    self._checkpoint(wait=True)
            else:
                self.phase = PHASE_STREAMING
            self._start_full_reconcile('start')
            self._loop()
        except EngineStopped:
            if self._drain_writes():
                self._drain_checkpoint()
        except FencedError as exc:
            self.stopped_reason = 'fenced'
            self._record_error(exc)
            self.log.warning('task %s: %s; stopping', self.task, exc, extra={'task': self.task})
            raise
        except Exception as exc:
            self._record_error(exc)
            self.phase = PHASE_ERROR
            raise
        finally:
            self._stop_watches()
            self.stop_event.set()
            self.queue.wake()
            for job in self._writes_in_flight:
                job['thread'].join(5.0)
            if self._status_thread.is_alive():
                self._status_thread.join(5.0)
            for side in self.sides.values():
                if side.listener is not None:
                    side.client.remove_listener(side.listener)
                    side.listener = None
            self._close_data_sessions()
        return self.stopped_reason or 'stopped'

    def stop(self, reason='stopped'):
        """Ask the engine to drain and stop (thread-safe)."""
        if self.stopped_reason is None:
            self.stopped_reason = reason
        self.stop_event.set()
        self.queue.wake()

    def _check_stop(self):
        if self.stop_event.is_set():
            raise EngineStopped()
        if self.leadership_lost.is_set():
            self.stopped_reason = 'leadership_lost'
            raise EngineStopped()

    def _loop(self):
        options = self.options
        interval = options.full_reconcile_interval
        next_full = time.monotonic() + interval if interval else None
        while True:
            self._check_stop()
            now = time.monotonic()
            if self._check_rescans(now):
                self._start_full_reconcile('reconnect')
                next_full = now + interval if interval else None
            elif next_full is not None and now >= next_full:
                self._start_full_reconcile('periodic')
                next_full = now + interval
            elif self._reconcile_again and self._reconcile is None and now >= self._reconcile_retry_at:
                self._reconcile_again = False
                self._start_full_reconcile('again')
            self._poll_full_reconcile()
            if self._checkpoint_error is not None:
                error, self._checkpoint_error = self._checkpoint_error, None
                self.baseline.dirty = True
                if isinstance(error, FencedError):
                    raise error
                self._record_error(error)
            if self.baseline.dirty and now - self.last_checkpoint >= max(options.checkpoint_interval, 5 * self.checkpoint_cost):
                self._checkpoint()
            if not all(side.connected.is_set() for side in self.sides.values()):
                self.stop_event.wait(0.1)
                continue
            # with writes in flight, look for more work without waiting: else account for those writes first
            items = self.queue.take(options.max_batch_paths, timeout=0.0 if self._writes_in_flight else 0.2)
            if items:
                self._process(items)
            elif self._writes_in_flight:
                self._finish_writes()
            if not self.streaming:
                self._maybe_finish_initial()

    def _maybe_finish_initial(self):
        """End the initial sync once the bulk copy and what the first full reconcile queued are done.

        Watch events that keep arriving meanwhile are streaming work: waiting
        for an empty queue would keep a task whose clusters are written all
        the time in ``initial_sync`` for ever. So the queue's append count
        when the first reconcile is merged marks the end of the initial work.
        """
        if self._reconcile is not None or self._reconcile_again:
            return
        if self._initial_mark is None:
            self._initial_mark = self.queue.appended_count()
        # paths parked for failing again and again (_park) do not hold up the end of the initial sync
        if self.queue.taken_count() >= self._initial_mark and not self._writes_in_flight and not self.queue.delayed_count(self.stuck):
            self._finish_initial()

    def _check_rescans(self, now):
        """True when a side reconnected and its watches are back (or must be re-armed by hand)."""
        due = False
        for side in self.sides.values():
            if not side.needs_rescan or not side.connected.is_set():
                continue
            if side.watched and side.persistent_watches and side.awaiting_rearm_since is not None:
                if now - side.awaiting_rearm_since < self.options.rearm_timeout and not all(h.armed for h in side.watch_handles):
                    continue
                if not all(h.armed for h in side.watch_handles):
                    self._rearm_by_hand(side)
            if side.watched and side.node_watcher is not None:
                side.node_watcher.arm_tree()
            side.needs_rescan = False
            side.awaiting_rearm_since = None
            due = True
        return due

    def _rearm_by_hand(self, side):
        self.log.warning('task %s: the %s watches were not re-armed after a reconnect; adding them again', self.task, side.name,
                         extra={'task': self.task})
        for handle in side.watch_handles:
            try:
                handle.remove(timeout=2.0)
            except Exception:  # pylint: disable=broad-except
                pass
        side.watch_handles = [_protocol.add_watch(side.client, root, self._event_callback(side), recursive=True) for root in self.paths]

    def _finish_initial(self):
        self.streaming = True
        self.baseline.meta['initial_done'] = True
        self.baseline.dirty = True
        self.phase = PHASE_STREAMING
        self._checkpoint(wait=True)
        self.log.info('task %s: initial sync complete, %d paths in sync, %d only on the %s (left alone)', self.task,
                      len(self.baseline), len(self.leftover_paths), _other(self.authority), extra={'task': self.task})

    def _drain_writes(self):
        """On stop: wait for the writes in flight and record what they did (the checkpoint that follows keeps it).

        Returns False when they failed on the fence (another leader owns the task: no final checkpoint).
        """
        try:
            self._finish_writes()
        except FencedError as exc:
            self.stopped_reason = 'fenced'
            self.log.warning('task %s: %s; stopping', self.task, exc, extra={'task': self.task})
            return False
        except Exception as exc:  # pylint: disable=broad-except
            self.log.info('task %s: writes in flight at stop: %s', self.task, exc, extra={'task': self.task})
        return True

    def _drain_checkpoint(self):
        """On stop: the last checkpoint, unless leadership is already gone (a newer leader owns the baseline)."""
        thread = self._checkpoint_thread
        if thread is not None and thread.is_alive():
            thread.join(30.0)
        if self.leadership_lost.is_set() or not self.baseline.dirty or self.stopped_reason == 'fenced':
            return
        try:
            self._checkpoint(wait=True)
        except Exception as exc:  # pylint: disable=broad-except
            self.log.warning('task %s: final checkpoint failed: %s', self.task, exc, extra={'task': self.task})

    # -- initial copy ------------------------------------------------------------
    def _initial_copy(self):
        """Make the replica equal to the authority side in bulk: snapshot, diff, plan, apply (fenced).

        What the copy wrote is recorded in the baseline right away (both sides
        held that data at that moment), so a node the copy created and a
        user then deleted on the authority side is deleted, not copied back.
        """
        source = self.sides[self.authority]
        target = self.sides[_other(self.authority)]
        roots = [path for path in self.paths if source.client.exists(path) is not None]
        missing = [path for path in self.paths if path not in roots]
        if missing:
            self.log.warning('task %s: path(s) %s do not exist on the %s yet; they sync once created', self.task, ', '.join(missing),
                             self.authority, extra={'task': self.task})
        if not roots:
            return
        self._check_stop()
        started = time.monotonic()
        self.progress.update(done=0, total=None, started=time.time())
        exclude = self.spec.get('exclude') or ()
        # Subtrees this identity may not read are left out of the copy (nothing is created over them, nothing
        # deleted for them) and parked: the streaming sync retries them alone (_park) while the rest goes on.
        unreadable = {source.name: [], target.name: []}
        options = {'control_root': self.options.control_root}
        src_snap = _snapshot.take_snapshot(source.client, roots, exclude=exclude, with_acl=self.sync_acl, keep_data=True,
                                           multi_read=source.multi_read, cluster=source.cluster, unreadable=unreadable[source.name],
                                           **options)
        _apply.check_source_sizes(src_snap, self.options.max_request_bytes, cluster=source.cluster)
        existing = [root for root in roots if target.client.exists(root) is not None]
        if existing:
            dst_snap = _snapshot.take_snapshot(target.client, existing, exclude=exclude, with_acl=self.sync_acl, keep_data=False,
                                               multi_read=target.multi_read, cluster=target.cluster, unreadable=unreadable[target.name],
                                               **options)
            dst_snap.roots = list(roots)
        else:
            dst_snap = _snapshot.Snapshot(roots, with_acl=self.sync_acl, keep_data=False)
        for side_name, paths in unreadable.items():
            for path in paths:
                self._park(path, AuthFailedError('the %s refuses to let the migration identity read %s (its ACL): not synced'
                                                 % (side_name, path), path=path, cluster=self.sides[side_name].cluster))
        skipped = [path for paths in unreadable.values() for path in paths]
        compare = COMPARE_ALL if self.sync_acl else tuple(a for a in COMPARE_ALL if a != 'acl')
        diff = diff_snapshots(src_snap, dst_snap, compare=compare)
        plan = _apply.plan_copy(src_snap, dst_snap, diff, sync_acl=self.sync_acl, acl_mode=self.acl_mode,
                                migrator_acl=target.migrator_acl if self.acl_mode == 'grant_migrator' else None,
                                prune=False, node_types=self.spec.get('node_types') or None)
        _counters.add_counter_raises(plan, src_snap, dst_snap, self.counter_stream.scope)
        if skipped:
            def readable(op):
                return not any(op.path == path or op.path.startswith(path.rstrip('/') + '/') for path in skipped)
            for ops in (plan.creates, plan.updates, plan.deletes, plan.acl_writes, plan.counter_raises):
                ops[:] = [op for op in ops if readable(op)]
        del src_snap, dst_snap, diff
        self.progress['total'] = plan.total

        def progress(done, total):
            self.progress['done'] = done
            self.progress['total'] = total
        self._check_stop()
        result = _apply.apply_plan(target.client, plan, max_batch_bytes=self.options.max_batch_bytes, fence=self._fence(target),
                                   progress=progress, max_request_bytes=self.options.max_request_bytes, continue_on_error=True,
                                   cluster=target.cluster)
        self._check_fenced(result, target)
        not_applied = set(path for _kind, path in result.not_applied)
        seeded = 0
        for op in itertools.chain(plan.creates, plan.updates):
            if op.path not in not_applied and op.data is not None:
                self.baseline.set(op.path, data_hash64(op.data))
                seeded += 1
        for failure in result.failures[:20]:
            # a race with a writer (version conflict, node created meanwhile): the full reconcile that follows settles it
            self.log.info('task %s: bulk copy: %s', self.task, failure.get('message'), extra={'task': self.task, 'path': failure.get('path')})
        self.counters['events_%s_to_%s' % (self.authority, _other(self.authority))] += result.total_applied
        self.log.info('task %s: bulk copy %s -> %s in %.1fs: %s applied, %d not applied', self.task, self.authority,
                      _other(self.authority), time.monotonic() - started, dict((k, v) for k, v in result.applied.items() if v),
                      len(result.not_applied), extra={'task': self.task})

    # -- full reconcile ----------------------------------------------------------
    def _start_full_reconcile(self, why):
        """Compare both trees in a background thread while streaming goes on (``_ReconcileScan``); ``_poll_full_reconcile`` merges.

        One runs at a time; asked again meanwhile (a reconnect), another
        follows, since the running one may predate what was missed.
        """
        if self._reconcile is not None:
            self._reconcile_again = True
            return
        scan = _ReconcileScan(self, list(self.baseline.entries))
        job = {'mark': self.queue.mark(), 'started': time.monotonic(), 'scan': scan, 'error': None, 'why': why}
        # writes in flight land after the scan may have read their paths: the scan's word on them is not the last
        self._touched = set(self._in_flight_paths)

        def take():
            try:
                scan.run()
            except Exception as exc:  # pylint: disable=broad-except
                job['error'] = exc
            finally:
                self.queue.wake()
        thread = threading.Thread(target=take, name='reconcile-%s' % self.task)
        thread.daemon = True
        job['thread'] = thread
        self._reconcile = job
        thread.start()

    def _poll_full_reconcile(self, wait=False):
        """Merge a finished background reconcile (on the worker thread, which owns the baseline)."""
        job = self._reconcile
        if job is None:
            return False
        if wait:
            job['thread'].join()
        if job['thread'].is_alive():
            return False
        self._reconcile = None
        touched, self._touched = self._touched, None
        if job['error'] is not None:
            self.queue.forget_mark(job['mark'])
            self._check_stop()
            self._record_error(job['error'])
            self._reconcile_again = True
            self._reconcile_retry_at = time.monotonic() + self.options.error_retry_delay
            return True
        self._merge_full_reconcile(job, touched or set())
        if self._reconcile_again and time.monotonic() >= self._reconcile_retry_at:
            self._reconcile_again = False
            self._start_full_reconcile('again')
        return True

    def _full_reconcile(self):
        """A full reconcile, waited for (tests and callers that need it done)."""
        self._start_full_reconcile('asked')
        self._poll_full_reconcile(wait=True)

    def _merge_full_reconcile(self, job, touched):
        """Apply what the scan found: record what is equal, forget what is gone from both sides, queue what differs.

        Paths the worker reconciled while the scan ran are left to it (its
        reads were newer). Paths queued before the scan began are dropped
        (the scan saw them). ACL differences (which no watch reports) are
        written here, from the authority side, and sequential counters that
        are behind are raised.
        """
        started = time.monotonic()
        scan = job['scan']
        self.queue.drop_before(job['mark'])
        baseline = self.baseline
        for path, value in scan.equal:
            if path not in touched:
                baseline.set(path, value)
        for path in scan.gone:
            if path not in touched:
                baseline.discard(path)
        queued = [path for path in scan.queued if path not in touched]
        if queued:
            self.queue.put_many(sorted(queued, key=lambda p: p.count('/')))
        for path, error in scan.unreadable:
            if path not in touched:
                self._park(path, error)
        replica = self.sides[_other(self.authority)]
        acl_fixes = [fix for fix in scan.acl_fixes if fix[0] not in touched]
        if acl_fixes and replica.writable:
            self._write_acls(replica, acl_fixes)
        for side_name, raises in scan.counter_raises.items():
            self._raise_counters(self.sides[side_name], raises)
        self.counter_stream.forget()
        now = time.monotonic()
        self.counters['full_reconciles'] += 1
        self.last_full_reconcile = time.time()
        self.metrics.full_reconcile(self.task, now - job['started'])
        self.log.info('task %s: full reconcile (%s) of %d source and %d destination nodes: scan %.2fs, merge %.2fs; '
                      '%d path(s) to reconcile, %d gone from both sides, %d ACL fix(es)', self.task, job['why'], scan.seen[SOURCE],
                      scan.seen[DESTINATION], started - job['started'], now - started, len(queued), len(scan.gone), len(acl_fixes),
                      extra={'task': self.task})

    def _apply_fenced(self, side, plan):
        """Write ``plan`` on ``side`` under its fence, every op on its own merit; the result (fenced: raised)."""
        result = _apply.apply_plan(side.client, plan, fence=self._fence(side), continue_on_error=True,
                                   max_request_bytes=self.options.max_request_bytes, cluster=side.cluster)
        self._check_fenced(result, side)
        return result

    def _write_acls(self, side, fixes):
        plan = _apply.Plan()
        for path, acl, aversion in fixes:
            plan.set_acl(path, acl, aversion)
        result = self._apply_fenced(side, plan)
        for failure in result.failures:
            self._record_error(ZkMigrationError(failure.get('message', 'setACL failed'), path=failure.get('path')), count=True)

    def final_acl(self, acl, target_side):
        if acl is None:
            return None
        return _apply.granted_acl(acl, self.acl_mode, target_side.migrator_acl)

    def _raise_counters(self, side, raises):
        """Raise the sequential counters the full reconcile found behind on ``side``: ``[(parent, target, current)]``."""
        if not raises or not side.writable:
            return
        plan = _apply.Plan()
        for parent, target, current in raises:
            plan.raise_cversion(parent, target, current)
        self._apply_fenced(side, plan)

    # -- data sessions ---------------------------------------------------------------
    def _io_client(self, side):
        """The client a streaming batch reads ``side`` with: its data session when that is usable, else its main client.

        Reads go through a session of their own: replies on the main session
        queue behind its watch events, and a server answers one session's
        reads only after that session's pending writes, so reads there could
        not overlap the previous batch's writes. Writes stay on the main
        session.

        The data session is usable while it is connected to the member the
        main session is connected to: that member applied every change it
        reported (and every write it acknowledged) before sending the event
        or the reply, so a read there sees it. A session on another member
        may lag behind, and a read could then find the old data and record
        it as in sync.
        """
        if self.session_factory is None or side.node_watcher is not None or not self.streaming:
            return side.client
        ready, side.data_ready = side.data_ready, None
        if ready is not None:
            old = side.data_client
            side.data_client, side.data_peer = ready
            if old is not None:
                _close_later(old)
        peer = _peer(side.client)
        data = side.data_client
        if data is not None and peer is not None and peer == side.data_peer and data.connected and _peer(data) == peer:
            return data
        if peer is not None and side.data_opening is None and time.monotonic() >= side.data_retry_at:
            self._open_data_session(side, peer)
        return side.client

    def _open_data_session(self, side, peer):
        """Connect a data session to ``peer`` in the background; the worker picks it up (``_io_client``)."""
        factory = self.session_factory
        side.data_retry_at = time.monotonic() + 5.0

        def connect():
            client = None
            try:
                client = factory(side.name, peer)
                if client is not None:
                    _protocol.tune_client(client)
            except Exception as exc:  # pylint: disable=broad-except
                self.log.info('task %s: no data session to %s:%s on the %s (%s); reading through the main session',
                              self.task, peer[0], peer[1], side.name, exc, extra={'task': self.task})
                client = None
            try:
                if client is not None:
                    if self.stop_event.is_set():
                        _close_later(client)
                    else:
                        side.data_ready = (client, peer)
            finally:
                # cleared last: _close_data_sessions joins this thread while it is set, then finds data_ready
                side.data_opening = None
        thread = threading.Thread(target=connect, name='data-session-%s-%s' % (self.task, side.name))
        thread.daemon = True
        side.data_opening = thread
        thread.start()

    def _close_data_sessions(self):
        for side in self.sides.values():
            opening = side.data_opening
            if opening is not None:
                opening.join(10.0)
            for client in (side.data_client, (side.data_ready or (None,))[0]):
                if client is not None:
                    _client.stop_quietly(client)
            side.data_client = side.data_ready = None
            side.io = side.client

    # -- streaming -----------------------------------------------------------------
    def _submit_read(self, side, paths, unreadable):
        """Send the reads of ``paths`` on ``side``; returns a function that waits and gives ``{path: NodeState or None}``.

        Both sides are submitted before either is collected, so a batch costs
        one round trip, not two. Watched per-node sides read with a data
        watch (which re-arms it); others use multiRead where the server has
        it, else pipelined plain reads.
        """
        client = side.io
        if side.node_watcher is not None:
            watcher = side.node_watcher
            watch = watcher.on_watch
            pending = [(path, client.get_async(path, watch=watch)) for path in paths]

            def collect_watched():
                out = {}
                for path, async_result in pending:
                    try:
                        data, stat = async_result.get()
                    except kazoo_exceptions.NoNodeError:
                        out[path] = None
                        watcher.watch_read(path, False)
                        continue
                    except kazoo_exceptions.KazooException as exc:
                        out[path] = self._unreadable(side, path, exc, unreadable)
                        continue
                    out[path] = state_from_read(data, stat)
                    watcher.watch_read(path, True)
                return out
            return collect_watched
        ops = [('data', path) for path in paths]
        if not side.multi_read:
            def collect_pipelined():
                return self._states(side, paths, _protocol.read_pipelined(client, ops), unreadable)
            return collect_pipelined
        chunk = _protocol.DEFAULT_MULTI_READ_BATCH
        requests = [_protocol.multi_read_async(client, ops[start:start + chunk]) for start in range(0, len(ops), chunk)]

        def collect_multi():
            slots = []
            for request in requests:
                slots.extend(request.get())
            return self._states(side, paths, slots, unreadable)
        return collect_multi

    def _states(self, side, paths, slots, unreadable):
        out = {}
        for path, slot in zip(paths, slots):
            if isinstance(slot, Exception):
                if isinstance(slot, kazoo_exceptions.NoNodeError):
                    out[path] = None
                    continue
                out[path] = self._unreadable(side, path, slot, unreadable)
                continue
            data, stat = slot
            out[path] = state_from_read(data, stat)
        return out

    @staticmethod
    def _unreadable(side, path, exc, unreadable):
        """One path that cannot be read (no permission...): noted in ``unreadable``; a lost connection fails the batch."""
        error = translate_error(exc, path=path, cluster=side.cluster)
        if isinstance(error, ClusterUnreachableError):
            raise error
        unreadable[path] = error if isinstance(error, ZkMigrationError) else ZkMigrationError(
            'cannot read %s: %r' % (path, exc), path=path, cluster=side.cluster)
        return None

    def _process(self, items):
        """Reconcile a batch of queued paths: read both sides, decide, write what differs.

        Pipelined one batch deep: the writes of a batch are sent and left in
        flight; the next batch's reads go out before they are awaited, so
        under load a batch costs about one round trip instead of two. A path
        whose write is still in flight waits in the queue for the next batch
        (reading it now would find the version before that write).
        """
        in_flight = self._writes_in_flight
        if in_flight:
            busy = self._in_flight_paths
            held = [item for item in items if item[0] in busy]
            if held:
                items = [item for item in items if item[0] not in busy]
                for path, first in held:
                    self.queue.put(path, since=first)
                if not items:
                    self._finish_writes()
                    return
        paths = [path for path, _first in items]
        first_seen = dict(items)
        self.counter_stream.note(paths)
        if self._touched is not None:
            self._touched.update(paths)
        self.counters['batches'] += 1
        self.counters['batch_paths'] += len(paths)
        if in_flight and any(side.data_ready is not None for side in self.sides.values()):
            self._finish_writes()       # a data session is about to be replaced: nothing may be in flight on the old one
        for side in self.sides.values():
            side.io = self._io_client(side)
        started = time.monotonic()
        unreadable = {}      # path -> error: parked with a backoff (_park), the rest of the batch goes on
        try:
            collectors = [(side.name, self._submit_read(side, paths, unreadable)) for side in self.sides.values()]
            self._finish_writes()
            states = dict((name, collect()) for name, collect in collectors)
        except (ClusterUnreachableError, kazoo_exceptions.ConnectionLoss, kazoo_exceptions.SessionExpiredError,
                kazoo_exceptions.ConnectionClosedError) as exc:
            self._finish_writes()
            self._requeue(items, self.options.retry_delay)
            self._record_error(translate_error(exc) if not isinstance(exc, ZkMigrationError) else exc)
            return
        except FencedError:
            raise
        except ZkMigrationError as exc:
            # the batch's reads failed as a whole (not one path: those are in ``unreadable``): retry it after a pause
            self._finish_writes()
            self._record_error(exc, count=True)
            self._requeue(items, self.options.error_retry_delay)
            return
        self._check_stop()
        for side in self.sides.values():
            if side.journal_gap:
                try:
                    self._catch_up_journal(side)
                except ClusterUnreachableError as exc:
                    self._requeue(items, self.options.retry_delay)
                    self._record_error(exc)
                    return
        for path, error in unreadable.items():
            self._park(path, error, first_seen.get(path))
        read_done = time.monotonic()
        self.timings['read'] += read_done - started
        writes = {}      # target side -> [(path, decision, origin state, target state)]
        subtrees = []    # (path, decision, states) settled for their whole subtree (_settle_subtree)
        watermark = self.baseline.meta.get('watermarks', {}).get(_other(self.authority))
        structural_ok = self.bidirectional and self.streaming
        for path in paths:
            if path in unreadable:
                continue
            pair = {SOURCE: states[SOURCE][path], DESTINATION: states[DESTINATION][path]}
            decision = decide(pair, self.baseline.get(path), authority=self.authority,
                              bidirectional=self.bidirectional, policy=self.policy, streaming=self.streaming,
                              replica_watermark=watermark, union=self.union, prune=self.prune)
            action = decision.action
            if action == IN_SYNC:
                self.baseline.set(path, in_sync_value(pair))
                self.leftover_paths.discard(path)
                self.stuck.pop(path, None)
                continue
            if action == DROP:
                self.baseline.discard(path)
                self.leftover_paths.discard(path)
                self.stuck.pop(path, None)
                continue
            if action == SKIP:
                self.counters['skipped_ephemeral'] += 1
                continue
            if action == LEFTOVER:
                if path not in self.leftover_paths:
                    self.leftover_paths.add(path)
                    self.counters['leftovers'] = len(self.leftover_paths)
                    self.log.info('task %s: %s exists only on the %s (from before the task): left alone', self.task, path,
                                  _other(self.authority), extra={'task': self.task, 'path': path})
                continue
            target = self.sides[decision.target]
            if not target.writable:
                self.log.warning('task %s: %s would need a write to the %s, which this task does not write: left alone (%s)', self.task, path,
                                 target.name, decision.reason or action, extra={'task': self.task, 'path': path})
                continue
            if decision.structural and structural_ok:
                subtrees.append((path, decision, pair))
                continue
            if decision.conflict:
                self._count_conflict(path, decision.reason)
            writes.setdefault(target.name, []).append((path, decision, pair[_other(decision.target)], pair[decision.target]))
        settled = set()
        subtree_plans, subtree_pending = {}, {}
        for path, decision, pair in subtrees:
            if path not in settled:
                self._settle_subtree(path, decision, pair, subtree_plans, subtree_pending, settled)
        if settled:
            writes = dict((side, [item for item in items if item[0] not in settled]) for side, items in writes.items())
        try:
            plans, pending = self._plan_writes(writes)
        except (ClusterUnreachableError, kazoo_exceptions.ConnectionLoss, kazoo_exceptions.SessionExpiredError,
                kazoo_exceptions.ConnectionClosedError) as exc:
            self._requeue(items, self.options.retry_delay)
            self._record_error(translate_error(exc) if not isinstance(exc, ZkMigrationError) else exc)
            return
        for side_name, plan in subtree_plans.items():
            if side_name in plans:
                plans[side_name].creates.extend(plan.creates)
                plans[side_name].deletes.extend(plan.deletes)
            else:
                plans[side_name] = plan
        pending.update(subtree_pending)
        decided = time.monotonic()
        self.timings['decide'] += decided - read_done
        for side_name, plan in plans.items():
            self._check_stop()
            self._submit_apply(self.sides[side_name], plan, pending, first_seen)
        self.timings['write'] += time.monotonic() - decided
        if self.seq_parents_pending or self.counter_stream.pending or self.sides[SOURCE].node_watcher is not None or \
                self.sides[DESTINATION].node_watcher is not None:
            # counters are aligned after the creates landed; per-node watches are re-armed by reads that must follow the writes
            self._finish_writes()
            if self.seq_parents_pending or self.counter_stream.pending:
                self._align_counters(states)

    def _requeue(self, items, delay):
        for path, first in items:
            self.queue.put(path, delay=delay, since=first)

    def _count_conflict(self, path, reason):
        self.counters['conflicts'] += 1
        self.metrics.conflict(self.task)
        collision = ' (sequential name collision: keep one writing side per sequential parent)' if has_sequential_suffix(
            path.rpartition('/')[2]) and 'created on both' in (reason or '') else ''
        self.log.warning('task %s: conflict on %s: %s (policy %s)%s', self.task, path, reason, self.policy, collision,
                         extra={'task': self.task, 'path': path, 'event': 'conflict', 'policy': self.policy})

    def _plan_writes(self, writes):
        """Plans per target side for ``writes``, and ``pending``: ``(side, path) -> (decision, baseline value after)``."""
        plans = {}
        pending = {}
        acls = self._read_acls_for_creates(writes)
        for side_name, items_for_side in writes.items():
            plan = plans[side_name] = _apply.Plan()
            origin_side = _other(side_name)
            for path, decision, origin, current in items_for_side:
                if decision.action == DELETE:
                    plan.delete(path, current.version)
                elif current is None:
                    kind, ttl_ms = self.node_types.match(path) if side_name == DESTINATION else (_apply.KIND_PERSISTENT, None)
                    if path in self.paths:
                        self._create_missing_ancestors(self.sides[side_name], path, plan)
                    plan.create(path, origin.data, acls.get((side_name, path)), kind, ttl_ms)
                else:
                    plan.set_data(path, origin.data, current.version)
                pending[(side_name, path)] = (decision, written_value(decision, origin_side, origin))
        return plans, pending

    def _create_missing_ancestors(self, side, path, plan):
        """A task path whose parent is missing on ``side``: create the ancestors in the same fenced plan.

        They lie outside the task, so they are created as the other side has
        them (data and ACL, with the ``acl_mode`` rules), or empty with the
        migrator's rights where that side lacks them too.
        """
        missing = []
        ancestor = parent_of(path)
        while ancestor != '/' and side.io.exists(ancestor) is None:
            missing.append(ancestor)
            ancestor = parent_of(ancestor)
        origin = self.sides[_other(side.name)]
        for ancestor in reversed(missing):
            try:
                data, _stat = origin.io.get(ancestor)
                acl = acl_tuple(origin.io.get_acls(ancestor)[0]) if self.sync_acl else None
            except kazoo_exceptions.NoNodeError:
                data, acl = b'', None
            except kazoo_exceptions.NoAuthError:
                data, acl = b'', None       # outside the task and not ours to read: created empty, with the migrator's rights
            acl = self.final_acl(acl, side) if acl is not None else (tuple(side.migrator_acl) if side.migrator_acl else None)
            plan.create(ancestor, data or b'', acl)

    # -- structural conflicts ------------------------------------------------------------
    def _settle_subtree(self, path, decision, pair, plans, pending, settled):
        """A delete on one side meeting a change or children on the other: decide the whole subtree once.

        ``path`` is present on one side only and was in sync. Its subtree root
        is the highest ancestor also gone from that side (and in sync once);
        ``decide_subtree`` settles the lot under the policy, and its writes go
        into this batch's plans. Decided path by path this livelocked (the
        child's create failed on the missing parent, the parent's delete on
        the child).
        """
        kept_on = SOURCE if pair[SOURCE] is not None else DESTINATION
        deleted_on = _other(kept_on)
        kept_side, deleted_side = self.sides[kept_on], self.sides[deleted_on]
        root = path
        try:
            while True:
                parent = parent_of(root)
                if parent == '/' or not self.accept(parent) or self.baseline.get(parent) is None:
                    break
                if deleted_side.io.exists(parent) is not None:
                    break
                root = parent
            if root in settled:
                return          # another path of this batch led to the same subtree
            kept = self._read_subtree(kept_side, root)
        except Exception as exc:  # pylint: disable=broad-except
            error = translate_error(exc, path=root, cluster=kept_side.cluster)
            if isinstance(error, ClusterUnreachableError) or not isinstance(error, ZkMigrationError):
                self.queue.put(path, delay=self.options.retry_delay)
                return
            self._park(root, error)     # unreadable under the subtree: retried alone, never a crash loop
            return
        settled.add(root)
        if root not in kept:
            self.queue.put(path, delay=self.options.retry_delay)     # the root moved meanwhile: look again
            return
        settled.update(kept)
        watermark = self.baseline.meta.get('watermarks', {}).get(_other(self.authority))
        outcome = decide_subtree(root, kept_on, kept, self.baseline.get, policy=self.policy, replica_watermark=watermark,
                                 authority=self.authority)
        if outcome.conflict:
            self._count_conflict(root, outcome.reason)
        if outcome.recreate and deleted_side.writable:
            plan = plans.setdefault(deleted_on, _apply.Plan())
            acls = _protocol.get_acls_pipelined(kept_side.io, outcome.recreate) if self.sync_acl else {}
            for node in outcome.recreate:
                state = kept[node]
                found = acls.get(node)
                acl = self.final_acl(acl_tuple(found[0]), deleted_side) if found is not None and not isinstance(found, Exception) else None
                plan.create(node, state.data, acl)
                pending[(deleted_on, node)] = (Decision(COPY, deleted_on, new_hash=state.hash),
                                               base_value(state.hash, *((state.mzxid, 0) if kept_on == SOURCE else (0, state.mzxid))))
        if outcome.delete and kept_side.writable:
            plan = plans.setdefault(kept_on, _apply.Plan())
            for node in outcome.delete:
                plan.delete(node, kept[node].version)
                pending[(kept_on, node)] = (Decision(DELETE, kept_on), None)
        if outcome.left:
            self.counters['skipped_ephemeral'] += 1
            self.log.warning('task %s: %s is not deleted on the %s although the %s deleted it: the subtree holds ephemeral node(s) '
                             'or leftovers from before the task, kept with their parents (%s)', self.task, root, kept_on, deleted_on,
                             ', '.join(outcome.left[:5]), extra={'task': self.task, 'path': root})

    def _read_subtree(self, side, root):
        """``{path: NodeState}`` of ``root`` and every node under it on ``side`` (the task's paths only)."""
        client = side.io
        out = {}
        level = [root]
        while level:
            reads = [(path, client.get_async(path), client.get_children_async(path)) for path in level]
            level = []
            for path, data_result, children_result in reads:
                try:
                    data, stat = data_result.get()
                    children = children_result.get()
                except kazoo_exceptions.NoNodeError:
                    continue
                out[path] = state_from_read(data, stat)
                prefix = path + '/' if path != '/' else '/'
                level.extend(child for child in (prefix + name for name in children) if self.accept(child))
        return out

    # -- paths that keep failing -----------------------------------------------------------
    def _park(self, path, error, since=None):
        """A path that cannot be synced now (unreadable, refused, too large): retry it alone, backing off.

        It never holds up other paths, the full reconcile or the end of the
        initial sync; the status lists it (``details.stuck_paths``) until it
        syncs.
        """
        entry = self.stuck.get(path)
        now = time.time()
        if entry is None:
            entry = self.stuck[path] = {'path': path, 'kind': None, 'reason': None, 'failures': 0, 'since': now}
            self.log.warning('task %s: %s cannot be synced (%s); retrying it alone with a backoff', self.task, path, error,
                             extra={'task': self.task, 'path': path})
        entry['kind'] = getattr(error, 'kind', 'error')
        entry['reason'] = str(error)
        entry['failures'] += 1
        entry['last'] = now
        self.counters['errors'] += 1
        self.metrics.error(self.task, entry['kind'])
        delay = min(MAX_STUCK_BACKOFF, self.options.retry_delay * (2 ** min(entry['failures'] - 1, 10)))
        self.queue.put(path, delay=delay, since=since)

    def _read_acls_for_creates(self, writes):
        """{(target side, path): ACL to create with} for the creates of this batch (``sync_acl``), read from the origin side."""
        out = {}
        if not self.sync_acl:
            return out
        for side_name, items in writes.items():
            creates = [path for path, decision, _origin, current in items if decision.action != DELETE and current is None]
            if not creates:
                continue
            origin_side = self.sides[_other(side_name)]
            found = _protocol.get_acls_pipelined(origin_side.io, creates)
            for path in creates:
                result = found.get(path)
                if result is None or isinstance(result, Exception):
                    continue  # vanished meanwhile: the next reconcile of the path undoes the create
                out[(side_name, path)] = self.final_acl(acl_tuple(result[0]), self.sides[side_name])
        return out

    def _submit_apply(self, side, plan, pending, first_seen):
        """Send one side's plan (fenced, conditional) from a helper thread; ``_finish_writes`` accounts for it."""
        limit = self.options.max_request_bytes
        # the journal entry shares the multi: a write must leave room for it (JOURNAL_ROOM, more than one record needs)
        room = JOURNAL_ROOM if self.options.journal else 0
        too_large = [op for op in itertools.chain(plan.creates, plan.updates)
                     if op.size + 512 + room > limit and _apply.request_bytes([op.size], self._fence_path) + room > limit]
        for op in too_large:
            (plan.creates if op.kind == _apply.OP_CREATE else plan.updates).remove(op)
            pending.pop((side.name, op.path), None)
            self._park(op.path, TooLargeError('%s holds %d bytes: too large for the %s request limit (jute.maxbuffer %d): not synced'
                                              % (op.path, len(op.data or b''), side.name, self.options.max_request_bytes),
                                              path=op.path, cluster=side.cluster), first_seen.get(op.path))
        total = plan.total
        if not total:
            return
        self.limiter.acquire(total, self.stop_event)
        if self.leadership_lost.is_set():
            self._check_stop()
        job = {'side': side, 'plan': plan, 'pending': pending, 'first_seen': first_seen, 'result': None, 'error': None}
        client = side.client
        values = dict((path, value) for (side_name, path), (_decision, value) in pending.items() if side_name == side.name)
        journal = side.journal.plan_journal(values) if self.options.journal else None

        def write():
            try:
                job['result'] = _apply.apply_plan(client, plan, fence=self._fence(side), continue_on_error=True,
                                                  max_batch_bytes=self.options.max_batch_bytes,
                                                  max_request_bytes=self.options.max_request_bytes, in_flight=4, cluster=side.cluster,
                                                  journal=journal)
            except BaseException as exc:  # pylint: disable=broad-except
                job['error'] = exc
        thread = threading.Thread(target=write, name='write-%s-%s' % (self.task, side.name))
        thread.daemon = True
        job['thread'] = thread
        self._writes_in_flight.append(job)
        self._in_flight_paths.update(op.path for op in plan.ops())
        thread.start()

    def _finish_writes(self):
        """Wait for the writes in flight and account for them (on the worker thread, which owns the baseline)."""
        jobs = self._writes_in_flight
        if not jobs:
            return
        self._writes_in_flight = []
        started = time.monotonic()
        for job in jobs:
            job['thread'].join()
        self.timings['write'] += time.monotonic() - started
        self._in_flight_paths = set()
        error = None
        for job in jobs:
            try:
                self._account(job)
            except Exception as exc:  # pylint: disable=broad-except
                if error is None or (isinstance(exc, FencedError) and not isinstance(error, FencedError)):
                    error = exc     # a fence error wins: it must stop the engine whatever else failed
        if error is not None:
            raise error

    def _account(self, job):
        """Account for each path of a finished write; re-queue what did not apply."""
        side, plan, pending, first_seen = job['side'], job['plan'], job['pending'], job['first_seen']
        origin_side = self.sides[_other(side.name)]
        if job['error'] is not None:
            exc = job['error']
            side.journal_gap = True      # the plan may have committed in part: its entries are read back
            if isinstance(exc, TooLargeError):
                self._record_error(exc, count=True)
                for op in plan.ops():
                    self.queue.put(op.path, delay=self.options.error_retry_delay, since=first_seen.get(op.path))
                return
            for op in plan.ops():
                self.queue.put(op.path, delay=self.options.retry_delay, since=first_seen.get(op.path))
            raise exc
        result = job['result']
        self._check_fenced(result, side)
        failed = {}
        for failure in result.failures:
            failed[failure.get('path')] = failure
        if any(failure.get('kind') == 'unreachable' for failure in result.failures):
            side.journal_gap = True
        if result.journal_seqs and not side.journal_gap:
            side.journal_position = max(result.journal_seqs + [side.journal_position or 0])
        journal_failure = None
        self._backoff_after(side, result.failures)
        not_applied = set(path for _kind, path in result.not_applied)
        now = time.monotonic()
        direction = 'events_%s_to_%s' % (origin_side.name, side.name)
        applied = 0
        for op in plan.ops():
            path = op.path
            key = (side.name, path)
            if key not in pending:
                continue
            decision, value = pending.pop(key)
            if path in not_applied:
                failure = failed.get(path)
                if failure is None:
                    self.queue.put(path, since=first_seen.get(path))       # rolled back with another op: retry now
                    continue
                kind = failure.get('kind')
                if kind in ('version_conflict', 'node_exists'):
                    delay = 0.0           # a user's write won the race: re-read and decide again
                elif kind in ('no_node', 'not_empty'):
                    delay = self.options.retry_delay
                    if self._queue_related(side, op, path):
                        continue
                elif kind == 'unreachable':
                    delay = self.options.retry_delay
                elif kind == 'journal':
                    journal_failure = journal_failure or failure       # raised once every op is accounted for
                    delay = self.options.retry_delay
                else:
                    self._park(path, ZkMigrationError(failure.get('message') or 'write failed', path=path, cluster=side.cluster),
                               first_seen.get(path))
                    continue
                self.metrics.error(self.task, kind or 'error')
                self.queue.put(path, delay=delay, since=first_seen.get(path))
                continue
            applied += 1
            self.stuck.pop(path, None)
            if value is None:
                self.baseline.discard(path)
            else:
                self.baseline.set(path, value)
                if op.kind == _apply.OP_CREATE and has_sequential_suffix(path.rpartition('/')[2]):
                    self.seq_parents_pending.add(parent_of(path))
            self.leftover_paths.discard(path)
            first = first_seen.get(path)
            if first is not None:
                self.metrics.latency(self.task, now - first)
                self._last_latency = now - first
        if applied:
            self.counters[direction] += applied
            self.metrics.event(self.task, direction[len('events_'):], applied)
        if journal_failure is not None:
            raise ZkMigrationError('task %s: %s' % (self.task, journal_failure.get('message')), path=journal_failure.get('path'),
                                   cluster=side.cluster)

    def _catch_up_journal(self, side):
        """After a write whose outcome is unknown: replay what this side's journal holds above the position.

        Only the multis whose replies were lost (and the job in flight) can
        have entries there; replaying them gives the baseline what they did
        if they committed. Called before any decision of the next batch.
        """
        parent = _fencing.journal_path(self.options.control_root, self.task)
        try:
            last, records = _sync_journal.read_entries(side.client, parent, side.journal_position, side.name)
        except ZkMigrationError:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            raise translate_error(exc, path=parent, cluster=side.cluster)
        changed = replay(self.baseline.entries, records)
        if records:
            self.baseline.dirty = True
        side.journal_position = last
        side.journal_gap = False
        self.log.info('task %s: %d journal record(s) of writes whose outcome was unknown read back from the %s (%d path(s) changed)',
                      self.task, len(records), side.name, changed, extra={'task': self.task})

    def _backoff_after(self, side, failures):
        """Back off (exponentially, up to 5 s) while a side keeps refusing writes as a whole: connection
        trouble or a server shedding load (ZooKeeper 3.6+ request throttling answers with an error code kazoo
        does not know). Races with users' writes are not a reason to slow down."""
        overloaded = any(failure.get('kind') in ('unreachable', 'error') for failure in failures)
        if not overloaded:
            side.backoff = 0.0
            return
        side.backoff = min(5.0, max(0.1, side.backoff * 2))
        self.log.warning('task %s: the %s refuses writes (%s); backing off %.1fs', self.task, side.name,
                         failures[0].get('message'), side.backoff, extra={'task': self.task, 'cluster': side.cluster})
        self.stop_event.wait(side.backoff)

    def _queue_related(self, side, op, path):
        """A create whose parent is missing: queue the parent. A delete of a node with children: queue them.

        Returns True when the path must wait for something that will not
        change by itself: a node holding ephemeral children is never deleted
        (its children belong to live sessions); it is reconciled again when an
        event or a full reconcile brings it back.
        """
        if op.kind == _apply.OP_CREATE:
            parent = parent_of(path)
            if self.accept(parent):
                self.queue.put(parent)
            return False
        if op.kind != _apply.OP_DELETE:
            return False
        try:
            children = side.io.get_children(path)
            prefix = path + '/' if path != '/' else '/'
            stats = [(prefix + name, side.io.exists_async(prefix + name)) for name in children]
            ephemeral = [child for child, result in stats if (result.get() or _NO_STAT).ephemeralOwner]
        except Exception:  # pylint: disable=broad-except
            return False
        if ephemeral:
            self.log.warning('task %s: %s is not deleted on the %s: it holds ephemeral node(s) %s', self.task, path, side.name,
                             ', '.join(sorted(ephemeral)[:5]), extra={'task': self.task, 'path': path})
            self.counters['skipped_ephemeral'] += 1
            return True
        synced = [child for child, _result in stats if self.accept(child)]
        if children and not synced:
            # only children the task does not sync (excluded): they stay, and so does their parent
            self.log.warning('task %s: %s is not deleted on the %s: it holds node(s) this task excludes, %s', self.task, path,
                             side.name, ', '.join(sorted(child for child, _result in stats)[:5]), extra={'task': self.task, 'path': path})
            return True
        self.queue.put_many(synced)
        return False

    def _align_counters(self, states):
        """After sequential children were copied, or a carried parent's children changed (``counter_stream``):
        raise the lower side's counter of each such parent to the higher's."""
        carried = self.counter_stream.take() - self.seq_parents_pending
        parents = sorted(self.seq_parents_pending | carried)
        self.seq_parents_pending.clear()
        stats = {}
        for side in self.sides.values():
            asyncs = [(parent, side.io.exists_async(parent)) for parent in parents]
            stats[side.name] = {}
            for parent, async_result in asyncs:
                try:
                    stats[side.name][parent] = async_result.get()
                except Exception:  # pylint: disable=broad-except
                    stats[side.name][parent] = None
        for side in self.sides.values():
            if not side.writable:
                continue
            other = _other(side.name)
            plan = _apply.Plan()
            for parent in parents:
                mine, theirs = stats[side.name].get(parent), stats[other].get(parent)
                if mine is None or theirs is None or mine.ephemeralOwner:
                    continue
                here = (mine.cversion + mine.numChildren) // 2
                there = (theirs.cversion + theirs.numChildren) // 2
                if here < there and (parent not in carried or self.counter_stream.carried(parent, self.sides[other].io)):
                    plan.raise_cversion(parent, there, here)
            if plan.counter_raises:
                self.counter_stream.count((op.path, op.target, op.current) for op in plan.counter_raises)
                result = _apply.apply_plan(side.client, plan, fence=self._fence(side), continue_on_error=True,
                                           max_request_bytes=self.options.max_request_bytes, cluster=side.cluster)
                self._check_fenced(result, side)

    def _check_fenced(self, result, side):
        for failure in result.failures:
            if failure.get('kind') == 'fenced':
                raise FencedError('task %s: the fence on the %s moved past epoch %s: another leader has taken over; this leader stops'
                                  % (self.task, side.name, side.epoch), path=failure.get('path'), cluster=side.cluster)

    # -- checkpoint and status -------------------------------------------------------
    def _checkpoint(self, wait=False):
        """Checkpoint the baseline to the control store.

        The worker only copies the dict (a C-level copy, fast); a background
        thread encodes and writes it, so checkpoints of large baselines do
        not stall streaming. One checkpoint is in flight at a time; with
        ``wait`` (initial sync done, shutdown) the write is awaited and its
        error raised.
        """
        if any(side.journal_gap for side in self.sides.values()):
            return      # the baseline may miss writes of unknown outcome: their entries are replayed first
        previous = self._checkpoint_thread
        if previous is not None and previous.is_alive():
            if not wait:
                return
            previous.join()
        self._raise_checkpoint_error()
        # Every journal entry up to these positions is reflected in the baseline copied here: the worker
        # thread accounts for a side's write jobs one at a time, in the order they were sent.
        self.baseline.meta['journal'] = dict((side.name, side.journal_position) for side in self.sides.values()
                                             if side.journal_position is not None)
        entries = dict(self.baseline.entries)
        meta = json.loads(json.dumps(self.baseline.meta))
        self.baseline.dirty = False
        self.last_checkpoint = time.monotonic()
        thread = threading.Thread(target=self._write_checkpoint, args=(entries, meta), name='checkpoint-%s' % self.task)
        thread.daemon = True
        self._checkpoint_thread = thread
        thread.start()
        if wait:
            thread.join()
            self._raise_checkpoint_error()

    def _raise_checkpoint_error(self):
        error, self._checkpoint_error = self._checkpoint_error, None
        if error is not None:
            self.baseline.dirty = True
            raise error

    def _write_checkpoint(self, entries, meta):
        started = time.monotonic()
        try:
            blob = Baseline(entries, meta).encode(compress=True)
            self.store.put_baseline(self.task, blob, epoch=self.control_epoch, compress=False)
            self._truncate_journals(meta.get('journal') or {})
            if len(entries) >= _TRIM_AFTER_CHECKPOINT_OF:
                del blob, entries
                _release_free_memory()
        except FencedError as exc:
            self._checkpoint_error = exc
            self.stop('fenced')
            return
        except Exception as exc:  # pylint: disable=broad-except
            self._checkpoint_error = exc if isinstance(exc, ZkMigrationError) else ZkMigrationError('checkpoint failed: %r' % (exc,))
            return
        self.checkpoint_cost = time.monotonic() - started
        self.counters['checkpoints'] += 1

    def _truncate_journals(self, positions):
        """Delete the journal entries a written checkpoint includes, under the fence (a stale leader deletes nothing)."""
        parent = _fencing.journal_path(self.options.control_root, self.task)
        for side in self.sides.values():
            position = positions.get(side.name)
            if position is None or not side.writable or side.epoch is None:
                continue
            plan = _apply.Plan()
            for path in _sync_journal.entries_up_to(side.client, parent, position):
                plan.delete(path)
            if plan.total:
                result = _apply.apply_plan(side.client, plan, fence=self._fence(side), continue_on_error=True,
                                           max_request_bytes=self.options.max_request_bytes, cluster=side.cluster)
                self._check_fenced(result, side)

    def _record_error(self, exc, count=False):
        message = str(exc)
        self.last_error = message
        self.last_error_at = time.time()
        if count:
            self.counters['errors'] += 1
        self.log.warning('task %s: %s', self.task, message, extra={'task': self.task, 'path': getattr(exc, 'path', None)})

    def status(self):
        """The status record the leader writes (see ``_records.normalize_status``)."""
        lag = self.queue.oldest_age()
        tracked = len(self.baseline)
        phase = self.phase
        down = [side for side in self.sides.values() if not side.connected.is_set()]
        last_error = self.last_error
        if down:
            phase = PHASE_ERROR
            last_error = '; '.join('cluster %s (%s) unreachable since %s' % (
                side.cluster, side.name, time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(side.down_since or time.time()))) for side in down)
        if self.phase == PHASE_INITIAL:
            done = self.progress['done']
            total = self.progress['total']
            eta = None
            elapsed = time.time() - (self.progress['started'] or time.time())
            if total and done and elapsed > 0:
                eta = max(0.0, (total - done) / (done / elapsed))
        else:
            done = tracked
            total = tracked + self.queue.ready_count()
            eta = 0.0 if not self.queue.ready_count() else None
        details = {
            'queue': len(self.queue),
            'tracked_paths': tracked,
            'leftovers': len(self.leftover_paths),
            'errors': self.counters['errors'],
            'skipped_ephemeral': self.counters['skipped_ephemeral'],
            'full_reconciles': self.counters['full_reconciles'],
            'last_full_reconcile': self.last_full_reconcile,
            'watch_events': self.counters['watch_events'],
            'direction': 'bidirectional' if self.bidirectional else '%s_to_%s' % (self.authority, _other(self.authority)),
            'watch_mode': dict((side.name, side.watch_mode) for side in self.sides.values() if side.watched),
            'fence_epochs': dict((side.name, side.epoch) for side in self.sides.values() if side.writable),
            'last_latency_ms': round(self._last_latency * 1000.0, 3) if self._last_latency is not None else None,
            'batches': self.counters['batches'],
            'batch_paths': self.counters['batch_paths'],
            'seconds': dict((name, round(value, 3)) for name, value in self.timings.items()),
            'checkpoints': self.counters['checkpoints'],
            'counters_raised': {'parents': self.counter_stream.raised_parents, 'seq_bump_pairs': self.counter_stream.raised_pairs},
            'read_sessions': dict((side.name, 'separate' if side.io is not side.client else 'shared') for side in self.sides.values()),
            # the leader's own session ids on each cluster, so that a client listing (``cons``) can leave them out
            'sessions': dict((side.name, _session_ids(side)) for side in self.sides.values()),
            'acl_sync': 'suspended (%s)' % self.acl_suspended if self.acl_suspended else ('on' if self.sync_acl else 'off'),
        }
        if self.leftover_paths:
            details['leftover_sample'] = sorted(self.leftover_paths)[:20]
        # Paths that keep failing (unreadable, refused, too large), retried alone with a backoff: at most 20 listed.
        details['stuck_paths_count'] = len(self.stuck)
        details['stuck_paths'] = [dict((key, entry[key]) for key in ('path', 'kind', 'reason', 'failures', 'since'))
                                  for entry in sorted(self.stuck.values(), key=lambda e: e['since'])[:20]]
        return {
            'phase': phase,
            'nodes_done': int(done or 0),
            'nodes_total': int(total) if total is not None else None,
            'eta_seconds': eta,
            'events_source_to_destination': self.counters['events_source_to_destination'],
            'events_destination_to_source': self.counters['events_destination_to_source'],
            'conflicts': self.counters['conflicts'],
            'lag_ms': round(lag * 1000.0, 3),
            'last_error': last_error,
            'heartbeat': time.time(),
            'leader': self.daemon_id,
            'details': details,
        }

    def write_status(self):
        status = self.status()
        self.metrics.gauges(self.task, status['lag_ms'] / 1000.0, len(self.queue), len(self.baseline), status['phase'], len(self.stuck))
        self.metrics.progress(self.task, status['nodes_done'], status['nodes_total'], status['eta_seconds'])
        with self._status_lock:
            self.store.put_status(self.task, status, epoch=self.control_epoch)
        return status

    def _status_loop(self):
        interval = self.options.status_interval
        while not self.stop_event.is_set():
            if self.leadership_lost.is_set():
                return
            try:
                self.write_status()
            except FencedError as exc:
                self.log.warning('task %s: %s; stopping', self.task, exc, extra={'task': self.task})
                self.stop('fenced')
                return
            except Exception as exc:  # pylint: disable=broad-except
                self.log.warning('task %s: writing the status failed: %s', self.task, exc, extra={'task': self.task})
            self.stop_event.wait(interval)


# A checkpoint of this many paths allocates tens of MB for a moment (a copy of the dict, the encoded blob, its
# compressed form); glibc keeps such freed blocks in the process unless asked to give them back.
_TRIM_AFTER_CHECKPOINT_OF = 50000
_LIBC = []


def _release_free_memory():
    """Return the C heap's free pages to the OS (glibc ``malloc_trim``); nothing elsewhere."""
    if not _LIBC:
        try:
            import ctypes
            import ctypes.util
            libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
            _LIBC.append(getattr(libc, 'malloc_trim', None))
        except (OSError, AttributeError, ImportError):
            _LIBC.append(None)
    trim = _LIBC[0]
    if trim is not None:
        try:
            trim(0)
        except Exception:  # pylint: disable=broad-except
            pass


def _peer(client):
    """``(ip, port)`` of the member ``client`` is connected to now (None when unknown or not connected)."""
    sock = getattr(getattr(client, '_connection', None), '_socket', None)
    if sock is None:
        return None
    try:
        return tuple(sock.getpeername()[:2])
    except (OSError, AttributeError, TypeError):
        return None


def _close_later(client):
    """Stop and close a client off the calling thread (stopping waits for its connection thread)."""
    thread = threading.Thread(target=_client.stop_quietly, args=(client,), name='close-session')
    thread.daemon = True
    thread.start()


def _member_at(hosts, peer):
    """The entry of ``hosts`` (``host:port`` strings) that resolves to ``peer`` ``(ip, port)``, or None."""
    for entry in hosts:
        host, _sep, port = entry.rpartition(':')
        host = host.strip('[]')
        if not port.isdigit() or int(port) != peer[1]:
            continue
        try:
            addresses = socket.getaddrinfo(host, int(port), 0, socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            continue
        if any(address[4][0] == peer[0] for address in addresses):
            return entry
    return None


def member_session_factory(connections):
    """A ``SyncEngine`` ``session_factory`` for ``{side: connection}`` (``_registration.resolve`` dicts).

    It connects to the one member of the side's cluster at ``peer`` (with the
    side's credentials, TLS settings and chroot), or returns None when no
    configured member resolves to it.
    """
    def open_session(side, peer):
        spec = _client.ClusterSpec.from_dict(connections[side])
        member = _member_at(spec.hosts, peer)
        if member is None:
            return None
        single = _client.ClusterSpec([member], name=spec.name, chroot=spec.chroot, session_timeout=spec.session_timeout,
                                     connect_timeout=spec.connect_timeout, read_only=spec.read_only, auth=spec.auth, tls=spec.tls)
        return _client.connect(single)
    return open_session


def _session_ids(side):
    """The ``0x...`` ids of the sessions this engine holds on one side (its write and read sessions)."""
    out = []
    for client in (side.client, side.io):
        session = getattr(client, 'client_id', None)
        if session and session[0] and '0x%x' % session[0] not in out:
            out.append('0x%x' % session[0])
    return out


def cutover_direction(cutover, spec=None):
    """The direction a cut-over task still syncs in: None (not cut over), 'none' or 'destination_to_source'."""
    if not cutover or not (cutover.get('state') == 'completed' or cutover.get('completed_at')):
        return None
    return cutover.get('direction_after_cutover') or (spec or {}).get('direction_after_cutover') or 'none'


__all__ = ['Baseline', 'ReconcileQueue', 'NodeState', 'Decision', 'decide', 'SyncEngine', 'EngineOptions', 'NullMetrics',
           'NodeTypeRules', 'acl_tuple', 'cutover_direction', 'member_session_factory', 'hash64',
           'data_hash64']
