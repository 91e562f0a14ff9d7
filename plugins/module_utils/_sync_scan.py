# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The full reconcile: both trees compared parent by parent against the baseline, without a snapshot of either.

Private to zookeeper.migration; may change without notice. The scan only
reads; the engine's worker merges what it found (``SyncEngine._merge_full_reconcile``).
"""

import bisect
import heapq
from collections import deque

try:
    from kazoo import exceptions as kazoo_exceptions
except ImportError:
    kazoo_exceptions = None

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ClusterUnreachableError, ZkMigrationError
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import SEQ_BUMP_PREFIX, acl_equal, acl_tuples, has_sequential_suffix
from ansible_collections.zookeeper.migration.plugins.module_utils._client import translate_error
from ansible_collections.zookeeper.migration.plugins.module_utils import _protocol
from ansible_collections.zookeeper.migration.plugins.module_utils._counters import counter_raises
from ansible_collections.zookeeper.migration.plugins.module_utils import _snapshot
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_baseline import hash64
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_decide import DESTINATION, SIDES, SOURCE, base_value, other as _other


class _ReconcileScan(object):
    """The full reconcile's walk: both trees compared parent by parent, without a snapshot of either.

    A snapshot of each whole tree (``_snapshot.Node`` objects, ~400 bytes a
    znode) held two such trees at once: ~800 MB at a million znodes, and much
    of it stayed in the process afterwards (CPython keeps an arena while one
    object in it lives, and the baseline keys streamed in meanwhile are spread
    over them). The scan keeps a sorted copy of the baseline's paths (8 bytes
    each), the children names of the parents it is listing (one sorted string
    per side and parent), the reads of at most ``CHUNK * WINDOW`` children
    per side, and what it found (``queued``, ``equal``, ``gone``,
    ``acl_fixes``, ``counter_raises``), which the worker applies
    (``_merge_full_reconcile``).

    For each listed parent the candidates are its children on either side and
    its children in the baseline (sorted baseline paths taken when the scan
    starts: a baseline child on neither side must be read too, to find it
    gone). A candidate absent from both sides is ``gone`` with every baseline
    path under it. Like the snapshots before it, the scan reads each side
    through its main session and syncs it first.
    """

    CHUNK = 500         # ops per read request
    WINDOW = 4          # requests per side in flight

    def __init__(self, engine, baseline_paths):
        self.engine = engine
        self.baseline_paths = baseline_paths     # sorted in run(), off the worker thread
        self.baseline_get = engine.baseline.entries.get
        self.queued = []
        self.equal = []            # (path, 60-bit hash) where the baseline held something else
        self.gone = []
        self.acl_fixes = []
        self.counter_raises = {}   # side name -> [(parent, target, current)]
        self.unreadable = []       # (path, error): read refused on a side (SyncEngine._park takes them)
        self.seen = dict((side, 0) for side in SIDES)
        self.scope = engine.counter_stream.scope      # counters carried beyond the sequential parents (spec 'counters')
        self.writable = frozenset(side.name for side in engine.sides.values() if side.writable)
        self._holds_ephemerals = False                # the parent being scanned has an ephemeral child on either side

    def run(self):
        engine = self.engine
        self.baseline_paths.sort()
        roots = _snapshot.normalize_roots(engine.paths)[1]
        for side in engine.sides.values():
            try:
                side.client.sync(roots[0])
            except Exception as exc:  # pylint: disable=broad-except
                _snapshot.raise_read_error(exc, roots[0], side.cluster)
        parents = deque()
        self._compare([root for root in roots if engine.accept(root)], parents, None)
        while parents:
            batch = [parents.popleft() for _index in range(min(self.CHUNK, len(parents)))]
            ops = [('children', parent[0]) for parent in batch]
            listings = {}
            for side in engine.sides.values():
                # one side at a time, each list of names sorted and joined into one string as it arrives (see _scan_children)
                listings[side.name] = [slot if isinstance(slot, Exception) else _join_sorted(slot)
                                       for slot in self._read(ops, [side])[side.name]]
            for index, parent in enumerate(batch):
                self._scan_children(parent, dict((side, slots[index]) for side, slots in listings.items()), parents)

    def _scan_children(self, parent, listing, parents):
        """Compare the children of one listed parent (``(path, {side: sequential counter or None})``)."""
        engine = self.engine
        path, counters = parent
        prefix = path + '/' if path != '/' else '/'
        # The names come as one sorted, newline-joined string per side, and the baseline's children one at a
        # time: the scan of a parent with a million children takes a minute, and a million str objects held
        # that long, while streaming allocates baseline keys next to them, would keep their memory in the
        # process after the scan (CPython returns an arena only when nothing in it lives).
        streams = []
        for side, result in listing.items():
            if isinstance(result, Exception):
                if not isinstance(result, kazoo_exceptions.NoNodeError):
                    # unlistable (no permission): its children there are compared only through the baseline
                    self._note_unreadable(result, path, engine.sides[side].cluster)
                continue    # gone since it was read: its children are candidates through the baseline
            streams.append(_split_joined(result))
        listing.clear()
        streams.append(self._baseline_children(prefix, leaves=True))
        streams.append(iter(sorted(set(self._baseline_children(prefix, leaves=False)))))
        highest = {}
        self._holds_ephemerals = False
        step = self.CHUNK * self.WINDOW
        children = []
        previous = None
        for name in heapq.merge(*streams):
            if name == previous:
                continue
            previous = name
            child = prefix + name
            if engine.accept(child):
                children.append(child)
                if len(children) >= step:
                    self._compare(children, parents, highest)
                    children = []
        self._compare(children, parents, highest)
        for side_name, target in highest.items():
            # the other side's sequential children reach ``target``: this side's counter must not hand out their names again
            mine, theirs = counters.get(side_name), counters.get(_other(side_name))
            if mine is None or theirs is None or not engine.sides[side_name].writable:
                continue
            target = max(theirs, target)
            if mine < target:
                self.counter_raises.setdefault(side_name, []).append((path, target, mine))
        if self.scope.beyond_sequential and self.scope.carries(path, self._holds_ephemerals):
            self._carry(path, counters, skip=highest)

    def _carry(self, path, counters, skip=()):
        """Raise the lower counter of a parent the task carries (``counters`` option), unless ``skip`` names the side
        (the sequential rule above already raised it there)."""
        for side_name, target, current in counter_raises(counters, self.writable):
            if side_name not in skip:
                self.counter_raises.setdefault(side_name, []).append((path, target, current))

    def _note_unreadable(self, exc, path, cluster):
        """A path the scan cannot read on one side: reported to the worker, not a reason to fail the whole scan."""
        error = translate_error(exc, path=path, cluster=cluster)
        if isinstance(error, ClusterUnreachableError) or not isinstance(error, ZkMigrationError):
            _snapshot.raise_read_error(exc, path, cluster)
        self.unreadable.append((path, error))

    def _baseline_children(self, prefix, leaves):
        """Names of the baseline's paths directly under ``prefix``: with ``leaves`` those that are paths themselves
        (in sorted order, one at a time), else those that have baseline paths below them (each subtree is skipped
        with a bisect; not sorted: a name and a longer one sharing its start sort differently once "/" follows)."""
        keys = self.baseline_paths
        end = len(keys)
        index = bisect.bisect_left(keys, prefix)
        size = len(prefix)
        while index < end and keys[index].startswith(prefix):
            rest = keys[index][size:]
            slash = rest.find('/')
            if slash < 0:
                if leaves and rest:
                    yield rest
                index += 1
            else:
                if not leaves:
                    yield rest[:slash]
                index = bisect.bisect_left(keys, prefix + rest[:slash] + '0', index)     # '0' follows '/'

    def _baseline_under(self, path):
        keys = self.baseline_paths
        prefix = path + '/' if path != '/' else '/'
        index = bisect.bisect_left(keys, prefix)
        while index < len(keys) and keys[index].startswith(prefix):
            yield keys[index]
            index += 1

    def _read(self, ops, sides=None):
        """One slot per op per side: ``{side: [slot]}`` (both sides' requests are sent before either is awaited)."""
        sides = list(sides or self.engine.sides.values())
        pending = {}
        for side in sides:
            if side.multi_read:
                pending[side.name] = [_protocol.multi_read_async(side.client, ops[start:start + self.CHUNK])
                                      for start in range(0, len(ops), self.CHUNK)]
        out = {}
        for side in sides:
            try:
                if side.name in pending:
                    slots = []
                    for request in pending[side.name]:
                        slots.extend(request.get())
                else:
                    slots = _protocol.read_pipelined(side.client, ops)
            except Exception as exc:  # pylint: disable=broad-except
                _snapshot.raise_read_error(exc, ops[0][1], side.cluster)
            out[side.name] = slots
        return out

    def _compare(self, paths, parents, highest):
        """Read ``paths`` on both sides and compare them with each other and the baseline."""
        if not paths:
            return
        engine = self.engine
        slots = self._read([('data', path) for path in paths])
        same = []
        for index, path in enumerate(paths):
            states = {}
            unreadable = False
            for side, side_slots in slots.items():
                slot = side_slots[index]
                if isinstance(slot, Exception):
                    if not isinstance(slot, kazoo_exceptions.NoNodeError):
                        self._note_unreadable(slot, path, engine.sides[side].cluster)
                        unreadable = True
                    continue
                states[side] = slot
                self.seen[side] += 1
            if unreadable:
                continue    # never act on a partial read: the worker retries it alone (SyncEngine._park)
            if not states:
                if self.baseline_get(path) is not None:
                    self.gone.append(path)
                self.gone.extend(self._baseline_under(path))
                continue
            counters = {}
            for side, (_data, stat) in states.items():
                if not stat.ephemeralOwner:
                    counters[side] = (stat.cversion + stat.numChildren) // 2
            if any(stat.numChildren for _data, stat in states.values()) or any(True for _path in self._baseline_under(path)):
                parents.append((path, counters))
            elif self.scope.beyond_sequential and self.scope.carries(path, False):
                self._carry(path, counters)     # no child on either side (an ID generator, a drained queue): never listed
            if highest is not None:
                name = path.rpartition('/')[2]
                if has_sequential_suffix(name) and not name.startswith(SEQ_BUMP_PREFIX):
                    for side in counters:
                        # a persistent sequential child on ``side``: the other side's counter must pass it
                        other = _other(side)
                        highest[other] = max(highest.get(other, 0), int(name[-10:]) + 1)
            if any(stat.ephemeralOwner for _data, stat in states.values()):
                self._holds_ephemerals = self._holds_ephemerals or highest is not None
                continue    # never synced
            if len(states) < 2:
                self.queued.append(path)
                continue
            src_hash = _snapshot.hash_data(states[SOURCE][0] or b'')
            if src_hash != _snapshot.hash_data(states[DESTINATION][0] or b''):
                self.queued.append(path)
                continue
            value = base_value(hash64(src_hash), states[SOURCE][1].mzxid, states[DESTINATION][1].mzxid)
            if engine.sync_acl:
                same.append((path, value))
            elif self.baseline_get(path) != value:
                self.equal.append((path, value))
        if same:
            self._compare_acls(same, engine.authority)

    def _compare_acls(self, equal, authority):
        """For paths equal on both sides: record them, and the ACL fix where the replica's ACL differs from the authority's."""
        engine = self.engine
        replica = _other(authority)
        paths = [path for path, _value in equal]
        found = dict((side.name, _protocol.get_acls_pipelined(side.client, paths)) for side in engine.sides.values())
        for path, value in equal:
            a_result, b_result = found[authority][path], found[replica][path]
            failed = [result for result in (a_result, b_result) if isinstance(result, Exception)]
            if failed:
                denied = [result for result in failed if not isinstance(result, kazoo_exceptions.NoNodeError)]
                if denied:
                    self._note_unreadable(denied[0], path, engine.sides[authority if denied[0] is a_result else replica].cluster)
                    continue
                self.queued.append(path)       # gone since its data was read: the worker looks again
                continue
            if self.baseline_get(path) != value:
                self.equal.append((path, value))
            wanted = engine.final_acl(acl_tuples(a_result[0]), engine.sides[replica])
            b_acl = acl_tuples(b_result[0])
            if not acl_equal(wanted, b_acl):
                self.acl_fixes.append((path, wanted, b_result[1].aversion))


def _join_sorted(names):
    """``names`` (a list, sorted in place) as one newline-separated string (znode names hold no control characters)."""
    names.sort()
    return '\n'.join(names)


def _split_joined(joined):
    """The names of a ``_join_sorted`` string, one at a time."""
    start, end = 0, len(joined)
    while start < end:
        stop = joined.find('\n', start)
        if stop < 0:
            stop = end
        yield joined[start:stop]
        start = stop + 1
