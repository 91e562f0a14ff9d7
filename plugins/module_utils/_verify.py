# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verification: do the persistent znodes of two clusters match?

This is a private module of the zookeeper.migration collection; it may change
without notice. ``zk_verify``, ``zk_cutover`` and the sync daemon share it.

``verify(source_client, destination_client, paths, ...)`` runs, in order:

1. a snapshot of both sides (``_snapshot.take_snapshot``; data hashes only,
   ACLs when they are compared) and ``_diff.diff_snapshots``: missing, extra,
   data, ACL, type (ephemeral vs persistent) and sequential-counter
   differences (``counter_behind`` for parents holding persistent sequential
   children, ``counter_behind_persistent`` for every other persistent parent:
   ID generators, drained queues); ephemerals are counted apart and never
   differences, and so are the counters of parents whose children are all
   ephemeral (``counter_behind_ephemeral``, information);
2. spot checks: ``spot_check`` random persistent source znodes are re-read
   live from both sides and compared byte for byte (data), as ACL sets and by
   type, which catches what a hash comparison or a stale snapshot would miss;
3. settle: when something differs and ``settle`` > 0, wait that many seconds
   and re-check only the differing paths (live re-reads, or a new snapshot of
   both sides when there are too many to re-read one by one). A difference
   counts only if it is still there: changes that a running sync had not yet
   carried over are not reported as loss. Paths that became equal are
   counted as ``settled``.

A destination path that does not exist is not an error: everything under it
is reported missing. A source path that does not exist is (``NoNodeError``).
Nothing is ever written. ``/zookeeper`` and the control root are excluded on
both sides, as is everything matching ``exclude``.
"""

import json
import os
import random
import time
import traceback
from collections import deque

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    ConfigError,
    NoNodeError,
    ZkMigrationError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._files import atomic_file
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import (
    COMPARE_ALL,
    DiffResult,
    PathMap,
    acl_equal,
    diff_snapshots,
    sequential_counter,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import (
    DEFAULT_CONTROL_ROOT,
    Node,
    Snapshot,
    hash_data,
    raise_read_error,
    take_snapshot,
)

try:
    from kazoo import exceptions as kazoo_exceptions
    HAS_KAZOO = True
    KAZOO_IMPORT_ERROR = None
except ImportError:
    HAS_KAZOO = False
    KAZOO_IMPORT_ERROR = traceback.format_exc()

#: Above this many differing paths, settle re-checks with new snapshots rather than one read per path.
RECHECK_READ_LIMIT = 5000
#: Requests kept outstanding by live re-reads.
READ_WINDOW = 256

COUNT_KEYS = ('source_nodes', 'destination_nodes', 'missing', 'extra', 'data_mismatch', 'acl_mismatch', 'type_mismatch',
              'counter_behind', 'counter_behind_persistent', 'counter_behind_ephemeral', 'ephemeral_skipped')


def normalize_compare(compare):
    """The aspects to compare as a tuple in canonical order; ``ConfigError`` for unknown ones.

    None or an empty list means every aspect.
    """
    if not compare:
        return COMPARE_ALL
    if isinstance(compare, str):
        compare = [part.strip() for part in compare.split(',') if part.strip()]
    unknown = sorted(set(compare) - set(COMPARE_ALL))
    if unknown:
        raise ConfigError('compare: unknown aspect(s) %s; choose among %s' % (', '.join(unknown), ', '.join(COMPARE_ALL)))
    return tuple(aspect for aspect in COMPARE_ALL if aspect in compare)


def path_pairs(paths):
    """``[(source_path, destination_path)]`` from paths given as strings (same path both sides) or pairs."""
    if isinstance(paths, str):
        paths = [paths]
    pairs = []
    for item in paths or ():
        if isinstance(item, str):
            source = destination = item
        elif isinstance(item, dict):
            source, destination = item.get('source'), item.get('destination', item.get('source'))
        else:
            source, destination = item
        for path in (source, destination):
            if not isinstance(path, str) or not path.startswith('/'):
                raise ConfigError('paths must be absolute znode paths starting with "/", got %r' % (path,))
        source = source.rstrip('/') or '/'
        destination = destination.rstrip('/') or '/'
        if (source, destination) not in pairs:
            pairs.append((source, destination))
    if not pairs:
        raise ConfigError('paths must name at least one subtree to verify')
    return pairs


def _is_no_node(exc):
    return HAS_KAZOO and isinstance(exc, kazoo_exceptions.NoNodeError)


def _raise_read_error(exc, path, cluster):
    raise_read_error(exc, path, cluster, hint='verification needs an identity that can read everything it compares')


def read_nodes(client, paths, with_acl=True, keep_data=True, cluster=None, window=READ_WINDOW):
    """Read ``paths`` live (pipelined) into a ``Snapshot`` holding only those that exist.

    Used to re-check a few paths without walking a whole tree. Each node's
    data and stat come from one getData reply; the ACL (of persistent nodes,
    when ``with_acl``) from a getACL sent right after it.
    """
    snapshot = Snapshot(roots=(), with_acl=with_acl, keep_data=keep_data)
    pending = deque()

    def collect():
        path, data_request, acl_request = pending.popleft()
        data_request.wait()
        if not data_request.successful():
            if _is_no_node(data_request.exception):
                if acl_request is not None:
                    acl_request.wait()
                return
            _raise_read_error(data_request.exception, path, cluster)
        data, stat = data_request.value
        data = data if data is not None else b''
        acl = None
        if acl_request is not None and not stat.ephemeralOwner:
            acl_request.wait()
            if not acl_request.successful():
                if _is_no_node(acl_request.exception):
                    return  # deleted between the two reads
                _raise_read_error(acl_request.exception, path, cluster)
            acl = tuple((entry.perms, entry.id.scheme, entry.id.id) for entry in acl_request.value[0])
        elif acl_request is not None:
            acl_request.wait()
        snapshot.nodes[path] = Node(path, data=data if keep_data else None, data_hash=hash_data(data), acl=acl,
                                    version=stat.version, cversion=stat.cversion, aversion=stat.aversion,
                                    ephemeral_owner=stat.ephemeralOwner, num_children=stat.numChildren,
                                    data_length=stat.dataLength, mzxid=stat.mzxid, mtime=stat.mtime)

    try:
        for path in paths:
            acl_request = client.get_acls_async(path) if with_acl else None
            pending.append((path, client.get_async(path), acl_request))
            if len(pending) >= window:
                collect()
        while pending:
            collect()
    except ZkMigrationError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        _raise_read_error(exc, pending[0][0] if pending else None, cluster)
    snapshot.recount()
    return snapshot


def _existing_roots(client, roots, cluster):
    """The subset of ``roots`` that exists (a missing destination subtree is "all missing", not an error)."""
    found = []
    for root in roots:
        try:
            if client.exists(root) is not None:
                found.append(root)
        except Exception as exc:  # pylint: disable=broad-except
            _raise_read_error(exc, root, cluster)
    return found


class VerifyResult(object):
    """Outcome of ``verify()``: the (settled) diff, spot checks, timings; ``to_dict()`` for modules and reports."""

    def __init__(self, diff, pairs, compare, exclude, source_name=None, destination_name=None):
        self.diff = diff
        self.pairs = pairs
        self.compare = compare
        self.exclude = list(exclude or ())
        self.source_name = source_name
        self.destination_name = destination_name
        self.source_nodes = 0          # persistent source znodes in scope
        self.destination_nodes = 0     # persistent destination znodes in scope
        self.nodes_read = 0
        self.first_differences = 0     # differences found by the first comparison, before settling
        self.settled = []              # paths that differed at first and matched after the settle delay
        self.settle_seconds = 0
        self.settle_method = None
        self.spot_requested = 0
        self.spot_checked = []
        self.spot_mismatched = []
        self.spot_details = {}
        self.elapsed = 0.0
        self.read_elapsed = 0.0
        self.timings = {}

    @property
    def in_sync(self):
        """True when nothing differs after settling and every spot check matched."""
        return self.diff.in_sync and not self.spot_mismatched

    @property
    def counts(self):
        """The counts zk_verify returns."""
        counts = {'source_nodes': self.source_nodes, 'destination_nodes': self.destination_nodes}
        counts.update(self.diff.counts)
        counts['ephemeral_skipped'] = sum(self.diff.ephemeral_skipped.values())
        counts['counter_behind_ephemeral'] = len(self.diff.counter_behind_ephemeral)     # information, not a difference
        counts['spot_check_mismatch'] = len(self.spot_mismatched)
        return counts

    @property
    def rate(self):
        """znodes read per second of reading (both sides, settle delay excluded)."""
        return round(self.nodes_read / self.read_elapsed, 1) if self.read_elapsed > 0 else None

    def to_dict(self, max_diffs=100):
        """JSON-friendly result; at most ``max_diffs`` paths per kind of difference (None: all of them)."""
        diff = self.diff.to_dict(max_paths=max_diffs)
        differences = dict((name, diff[name]) for name in DiffResult.CATEGORIES)
        spot = sorted(self.spot_mismatched)
        truncated = diff['truncated']
        if max_diffs is not None and len(spot) > max_diffs:
            spot = spot[:max_diffs]
            truncated = True
        differences['spot_check'] = spot
        return {
            'in_sync': self.in_sync,
            'source': self.source_name,
            'destination': self.destination_name,
            'paths': [{'source': src, 'destination': dst} for src, dst in self.pairs],
            'exclude': list(self.exclude),
            'compare': list(self.compare),
            'acl_compared': diff['acl_compared'],
            'counts': self.counts,
            'ephemeral_skipped': dict(self.diff.ephemeral_skipped),
            'differences': differences,
            'counter_versions': diff['counter_versions'],
            'counter_behind_ephemeral': diff['counter_behind_ephemeral'],
            'spot_check': {
                'requested': self.spot_requested,
                'checked': len(self.spot_checked),
                'mismatched': len(self.spot_mismatched),
                'details': dict((path, self.spot_details[path]) for path in spot if path in self.spot_details),
            },
            'settle': {
                'seconds': self.settle_seconds,
                'method': self.settle_method,
                'first_differences': self.first_differences,
                'settled': len(self.settled),
                'settled_paths': sorted(self.settled)[:max_diffs] if max_diffs is not None else sorted(self.settled),
            },
            'truncated': truncated,
            'elapsed': round(self.elapsed, 3),
            'rate': self.rate,
            'nodes_read': self.nodes_read,
            'timings': dict((key, round(value, 3)) for key, value in self.timings.items()),
        }


def _spot_compare(snode, dnode, compare):
    """Why two live reads of one znode differ (a short reason), or None when they match.

    Presence is always compared; type, data (byte for byte) and ACL (as a
    set) when ``compare`` names them.
    """
    if snode is None and dnode is None:
        return None
    if snode is None:
        return 'gone from the source'
    if dnode is None:
        return 'missing on the destination'
    if bool(snode.ephemeral_owner) != bool(dnode.ephemeral_owner):
        if 'type' not in compare:
            return None
        return 'ephemeral on the %s, persistent on the %s' % (('source', 'destination') if snode.ephemeral_owner
                                                              else ('destination', 'source'))
    if snode.ephemeral_owner:
        return None
    if 'data' in compare and snode.data != dnode.data:
        return 'data differs (%d bytes on the source, %d on the destination)' % (len(snode.data or b''), len(dnode.data or b''))
    if 'acl' in compare and snode.acl is not None and dnode.acl is not None and not acl_equal(snode.acl, dnode.acl):
        return 'ACL differs'
    return None


class Verifier(object):
    """Runs one verification; ``verify()`` is the short way to use it."""

    def __init__(self, source_client, destination_client, paths, exclude=(), compare=None, spot_check=0, settle=0,
                 control_root=DEFAULT_CONTROL_ROOT, source_name=None, destination_name=None, rng=None, sleep=time.sleep,
                 snapshot_options=None, recheck_read_limit=RECHECK_READ_LIMIT):
        self.source = source_client
        self.destination = destination_client
        self.pairs = path_pairs(paths)
        self.mapping = PathMap(self.pairs)
        self.exclude = list(exclude or ())
        for pattern in self.exclude:
            if not isinstance(pattern, str) or not pattern.startswith('/'):
                raise ConfigError('exclude patterns must be absolute paths or globs starting with "/", got %r' % (pattern,))
        self.dest_exclude = [self.mapping.to_destination(pattern) for pattern in self.exclude]
        self.compare = normalize_compare(compare)
        if spot_check is None or int(spot_check) < 0:
            raise ConfigError('spot_check must be 0 or a positive number of znodes')
        self.spot_check = int(spot_check)
        if settle is None or float(settle) < 0:
            raise ConfigError('settle must be 0 or a positive number of seconds')
        self.settle = float(settle)
        self.control_root = control_root
        self.source_name = source_name
        self.destination_name = destination_name
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.snapshot_options = dict(snapshot_options or {})
        self.recheck_read_limit = recheck_read_limit
        self.with_acl = 'acl' in self.compare

    # -- snapshots -------------------------------------------------------
    def _snapshot_source(self):
        return take_snapshot(self.source, [src for src, _dst in self.pairs], exclude=self.exclude, with_acl=self.with_acl,
                             keep_data=False, control_root=self.control_root, cluster=self.source_name, **self.snapshot_options)

    def _snapshot_destination(self):
        roots = _existing_roots(self.destination, [dst for _src, dst in self.pairs], self.destination_name)
        if not roots:
            return Snapshot([dst for _src, dst in self.pairs], with_acl=self.with_acl, keep_data=False)
        try:
            return take_snapshot(self.destination, roots, exclude=self.dest_exclude, with_acl=self.with_acl, keep_data=False,
                                 control_root=self.control_root, cluster=self.destination_name, **self.snapshot_options)
        except NoNodeError:
            # a destination root deleted between the existence check and the walk: check again
            roots = _existing_roots(self.destination, roots, self.destination_name)
            if not roots:
                return Snapshot([dst for _src, dst in self.pairs], with_acl=self.with_acl, keep_data=False)
            return take_snapshot(self.destination, roots, exclude=self.dest_exclude, with_acl=self.with_acl, keep_data=False,
                                 control_root=self.control_root, cluster=self.destination_name, **self.snapshot_options)

    def _diff(self, source, destination):
        return diff_snapshots(source, destination, compare=self.compare, path_map=self.mapping)

    # -- spot checks -----------------------------------------------------
    def _sample(self, source, exclude_paths):
        candidates = [node.path for node in source.persistent() if node.path not in exclude_paths]
        if len(candidates) <= self.spot_check:
            return sorted(candidates)
        return sorted(self.rng.sample(candidates, self.spot_check))

    def _spot_check(self, paths):
        """{path: reason} of the paths whose live reads differ."""
        if not paths:
            return {}
        source = read_nodes(self.source, paths, with_acl=self.with_acl, keep_data=True, cluster=self.source_name)
        dest_paths = [self.mapping.to_destination(path) for path in paths]
        destination = read_nodes(self.destination, dest_paths, with_acl=self.with_acl, keep_data=True, cluster=self.destination_name)
        mismatched = {}
        for path, dest_path in zip(paths, dest_paths):
            reason = _spot_compare(source.nodes.get(path), destination.nodes.get(dest_path), self.compare)
            if reason is not None:
                mismatched[path] = reason
        return mismatched

    # -- settle ----------------------------------------------------------
    def _recheck_by_reads(self, first):
        """Re-read the differing paths live and diff them again (counters: re-read the parents' cversion)."""
        source_paths = set()
        for name in ('missing', 'data_mismatch', 'acl_mismatch', 'type_mismatch'):
            source_paths.update(getattr(first, name))
        source_paths.update(self.mapping.to_source(path) for path in first.extra)
        ordered = sorted(source_paths)
        dest_paths = [self.mapping.to_destination(path) for path in ordered]
        source = read_nodes(self.source, ordered, with_acl=self.with_acl, keep_data=False, cluster=self.source_name)
        destination = read_nodes(self.destination, dest_paths, with_acl=self.with_acl, keep_data=False, cluster=self.destination_name)
        compare = tuple(aspect for aspect in self.compare if aspect != 'counters')
        result = diff_snapshots(source, destination, compare=compare, path_map=self.mapping)
        result.compare = self.compare
        lagging = [(name, parent) for name in ('counter_behind', 'counter_behind_persistent', 'counter_behind_ephemeral')
                   for parent in getattr(first, name)]
        if 'counters' in self.compare and lagging:
            # counters only grow: a parent still behind keeps its category (the first comparison knew its children)
            parents = sorted(parent for _name, parent in lagging)
            src_parents = read_nodes(self.source, parents, with_acl=False, keep_data=False, cluster=self.source_name)
            dst_parents = read_nodes(self.destination, [self.mapping.to_destination(p) for p in parents], with_acl=False,
                                     keep_data=False, cluster=self.destination_name)
            for name, parent in lagging:
                snode = src_parents.nodes.get(parent)
                dnode = dst_parents.nodes.get(self.mapping.to_destination(parent))
                if snode is None or dnode is None:
                    continue
                # the source side of counter_behind also counts the copied suffixes (counter_target)
                source_counter = max(sequential_counter(snode), first.counter_versions.get(parent, (0, 0))[0])
                destination_counter = sequential_counter(dnode)
                if destination_counter < source_counter:
                    getattr(result, name).append(parent)
                    result.counter_versions[parent] = (source_counter, destination_counter)
        # The first comparison's scope and ephemeral counts stand: only differences are re-checked.
        result.ephemeral_skipped = dict(first.ephemeral_skipped)
        result.compared = first.compared
        result.source_persistent = first.source_persistent
        result.destination_persistent = first.destination_persistent
        result.acl_compared = first.acl_compared
        return result, len(source.nodes) + len(destination.nodes)

    @staticmethod
    def _keep_persisting(first, second):
        """Drop from ``second`` every difference whose path did not also differ in ``first``."""
        before = set()
        for name in DiffResult.CATEGORIES:
            before.update(getattr(first, name))
        for name in DiffResult.CATEGORIES:
            kept = [path for path in getattr(second, name) if path in before]
            setattr(second, name, kept)
        before.update(first.counter_behind_ephemeral)
        second.counter_behind_ephemeral = [path for path in second.counter_behind_ephemeral if path in before]
        lagging = set(second.counter_behind) | set(second.counter_behind_persistent) | set(second.counter_behind_ephemeral)
        second.counter_versions = dict((path, versions) for path, versions in second.counter_versions.items() if path in lagging)
        return second

    @staticmethod
    def _difference_paths(diff):
        paths = set()
        for name in DiffResult.CATEGORIES:
            paths.update(getattr(diff, name))
        return paths

    # -- the run ---------------------------------------------------------
    def run(self):
        """Compare both sides; returns a ``VerifyResult``."""
        started = time.monotonic()
        timings = {}
        mark = time.monotonic()
        source = self._snapshot_source()
        timings['snapshot_source'] = time.monotonic() - mark
        mark = time.monotonic()
        destination = self._snapshot_destination()
        timings['snapshot_destination'] = time.monotonic() - mark
        mark = time.monotonic()
        diff = self._diff(source, destination)
        timings['diff'] = time.monotonic() - mark
        nodes_read = len(source.nodes) + len(destination.nodes)
        read_elapsed = timings['snapshot_source'] + timings['snapshot_destination']

        result = VerifyResult(diff, self.pairs, self.compare, self.exclude, self.source_name, self.destination_name)
        result.source_nodes = diff.source_persistent
        result.destination_nodes = diff.destination_persistent
        result.first_differences = diff.differences

        spot_mismatched = {}
        if self.spot_check:
            mark = time.monotonic()
            sample = self._sample(source, self._difference_paths(diff))
            result.spot_requested = self.spot_check
            result.spot_checked = sample
            spot_mismatched = self._spot_check(sample)
            timings['spot_check'] = time.monotonic() - mark
            nodes_read += 2 * len(sample)
            read_elapsed += timings['spot_check']
        del source, destination   # the snapshots can be large: free them before settling

        if self.settle > 0 and (diff.differences or spot_mismatched):
            result.settle_seconds = self.settle
            self.sleep(self.settle)
            mark = time.monotonic()
            if diff.differences:
                if diff.differences <= self.recheck_read_limit:
                    second, read = self._recheck_by_reads(diff)
                    result.settle_method = 'reread'
                else:
                    again_source = self._snapshot_source()
                    again_destination = self._snapshot_destination()
                    second = self._diff(again_source, again_destination)
                    read = len(again_source.nodes) + len(again_destination.nodes)
                    result.settle_method = 'snapshot'
                    second = self._keep_persisting(diff, second)
                nodes_read += read
                result.settled = sorted(self._difference_paths(diff) - self._difference_paths(second))
                diff = second
                result.diff = diff
            if spot_mismatched:
                still = self._spot_check(sorted(spot_mismatched))
                result.settled.extend(sorted(set(spot_mismatched) - set(still)))
                spot_mismatched = still
                result.settle_method = result.settle_method or 'reread'
            timings['settle_recheck'] = time.monotonic() - mark
            read_elapsed += timings['settle_recheck']

        result.spot_mismatched = sorted(spot_mismatched)
        result.spot_details = spot_mismatched
        result.nodes_read = nodes_read
        result.read_elapsed = read_elapsed
        result.timings = timings
        result.elapsed = time.monotonic() - started
        return result


def verify(source_client, destination_client, paths, exclude=(), compare=None, spot_check=0, settle=0,
           control_root=DEFAULT_CONTROL_ROOT, source_name=None, destination_name=None, rng=None, sleep=time.sleep,
           snapshot_options=None):
    """Compare the persistent znodes under ``paths`` on two connected clients; returns a ``VerifyResult``.

    * ``paths``: absolute paths (same on both sides) or (source, destination) pairs.
    * ``exclude``: globs on source paths (mapped to destination paths for the destination walk).
    * ``compare``: aspects among data, acl, type, counters (default: all).
    * ``spot_check``: how many random persistent source znodes to re-read live from both sides.
    * ``settle``: seconds to wait before re-checking differing paths; 0 reports the first comparison.
    * ``control_root``: excluded on both sides, like ``/zookeeper``.
    Raises ``NoNodeError`` when a source path does not exist, ``AuthFailedError``
    when a node cannot be read, ``ClusterUnreachableError`` when a session is lost.
    """
    return Verifier(source_client, destination_client, paths, exclude=exclude, compare=compare, spot_check=spot_check,
                    settle=settle, control_root=control_root, source_name=source_name, destination_name=destination_name,
                    rng=rng, sleep=sleep, snapshot_options=snapshot_options).run()


def write_report(path, report):
    """Write ``report`` (a dict) as JSON to ``path`` atomically (temp file + rename); returns the path.

    ``ConfigError`` when the directory does not exist or cannot be written.
    """
    path = os.path.abspath(os.path.expanduser(path))
    with atomic_file(path, 'the report', mode=0o644, prefix='.zk-verify-') as stream:
        json.dump(report, stream, indent=2, sort_keys=True)
        stream.write('\n')
    return path


# --------------------------------------------------------------------------
# Tree summaries (zk_cluster ``summarize``): which subtrees hold persistent
# configuration worth migrating and which are mostly ephemeral registrations.
# --------------------------------------------------------------------------

#: A subtree whose znodes are at least this share ephemeral is "mostly_ephemeral".
EPHEMERAL_SHARE = 0.5
#: At most this many subtrees are listed by a summary.
MAX_SUMMARY_SUBTREES = 1000


def summarize_snapshot(snapshot, depth, ephemeral_share=EPHEMERAL_SHARE, max_subtrees=MAX_SUMMARY_SUBTREES):
    """Group a snapshot's znodes into the subtrees ``depth`` levels below ``/``.

    Returns ``{depth, total: {persistent, ephemeral, bytes}, subtrees: [...],
    suggested_paths: [...], truncated}``; each subtree is ``{path, persistent,
    ephemeral, bytes, ephemeral_share, kind}`` where ``bytes`` counts the data
    of its persistent znodes (what a migration copies) and ``kind`` is
    ``mostly_ephemeral`` (service registrations, locks: clients recreate them,
    this method does not migrate them) or ``persistent`` (configuration to
    migrate). ``suggested_paths`` lists the ``persistent`` subtrees: candidate
    ``paths`` for a sync task.
    """
    if depth < 1:
        raise ConfigError('summarize depth must be at least 1')
    groups = {}
    total = {'persistent': 0, 'ephemeral': 0, 'bytes': 0}
    for node in snapshot.nodes.values():
        path = node.path
        if path == '/':
            continue
        parts = path.split('/', depth + 1)[1:depth + 1]
        key = '/' + '/'.join(parts)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {'path': key, 'persistent': 0, 'ephemeral': 0, 'bytes': 0}
        if node.ephemeral_owner:
            group['ephemeral'] += 1
            total['ephemeral'] += 1
        else:
            group['persistent'] += 1
            group['bytes'] += node.data_length
            total['persistent'] += 1
            total['bytes'] += node.data_length
    subtrees = []
    for key in sorted(groups):
        group = groups[key]
        count = group['persistent'] + group['ephemeral']
        share = float(group['ephemeral']) / count if count else 0.0
        group['ephemeral_share'] = round(share, 3)
        group['kind'] = 'mostly_ephemeral' if group['ephemeral'] and share >= ephemeral_share else 'persistent'
        subtrees.append(group)
    suggested = [group['path'] for group in subtrees if group['kind'] == 'persistent']
    truncated = len(subtrees) > max_subtrees
    return {
        'depth': depth,
        'total': total,
        'subtrees': subtrees[:max_subtrees],
        'suggested_paths': suggested[:max_subtrees],
        'truncated': truncated,
    }
