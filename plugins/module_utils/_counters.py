# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sequential counters: which parents a task carries them for, what raising them costs, and aligning them.

This is a private module of the zookeeper.migration collection; it may change
without notice.

A parent's sequential counter is the suffix its next sequential child gets.
The server counts child creates and reports ``cversion = 2 * creates -
numChildren`` (a delete is a change too), so the counter is
``next_suffix(cversion, numChildren) = (cversion + numChildren) // 2``. A
create and a delete of a throwaway child (one *pair*, ``_apply``'s
``raise_cversion`` ops, in one multi) raise it by exactly one and ``cversion``
by two: raising a counter from ``current`` to ``target`` takes
``raise_pairs(current, target)`` pairs, twice that many writes.

The task option ``counters`` (``normalize_counters``) says which parents'
counters a task carries to the other side:

* ``sequential`` (the default): parents holding persistent children with a
  10-digit sequential suffix (what the copy always did);
* ``all``: those, and every other persistent parent holding no ephemeral
  child: ID generators (sequential children created and deleted) and drained
  queues, which hold no sequential child any more;
* a list of globs on absolute source paths (``*`` also matches ``/``):
  the sequential parents and every parent matching one (parents holding
  ephemeral children too: lock parents are carried only when named).

``align_counters()`` raises the destination's counters to the source's
right now (the cutover calls it after its final drain, so IDs handed out on
the source meanwhile are covered); ``add_counter_raises()`` adds the raises
the option asks for to a copy plan (initial sync, check-mode plans).
"""

import fnmatch
import re

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError, FencedError
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import (
    SEQ_BUMP_PREFIX,
    PathMap,
    counter_target,
    ephemeral_parents,
    sequential_parents,
)

COUNTERS_SEQUENTIAL = 'sequential'
COUNTERS_ALL = 'all'
DEFAULT_COUNTERS = COUNTERS_SEQUENTIAL
COUNTERS_CHOICES = (COUNTERS_SEQUENTIAL, COUNTERS_ALL)


# -- arithmetic (pure) -------------------------------------------------------------

def next_suffix(cversion, num_children):
    """The suffix the next sequential child gets, from a parent's ``cversion`` and ``numChildren``."""
    return (cversion + num_children) // 2


def raise_pairs(current, target):
    """Create+delete pairs that raise a counter from ``current`` to at least ``target`` (0 when already there)."""
    return max(0, target - current)


def cversion_after_raise(cversion, num_children, target):
    """The ``cversion`` a parent reports once its counter was raised to at least ``target`` (``numChildren`` unchanged)."""
    return cversion + 2 * raise_pairs(next_suffix(cversion, num_children), target)


def raise_cost(raises):
    """``{'parents', 'seq_bump_pairs', 'creates', 'deletes'}`` of ``[(current, target)]``: the writes raising them takes."""
    pairs = 0
    parents = 0
    for current, target in raises:
        needed = raise_pairs(current or 0, target)
        if needed:
            parents += 1
            pairs += needed
    return {'parents': parents, 'seq_bump_pairs': pairs, 'creates': pairs, 'deletes': pairs}


# -- the task option -----------------------------------------------------------------

def normalize_counters(value, where='counters', error=ConfigError):
    """The ``counters`` option checked: ``'sequential'``, ``'all'`` or a list of absolute globs (None: the default)."""
    if value is None:
        return DEFAULT_COUNTERS
    if isinstance(value, str):
        if value in COUNTERS_CHOICES:
            return value
        raise error('%s must be %s or a list of absolute path globs; got %r' % (where, ' or '.join(COUNTERS_CHOICES), value))
    if not isinstance(value, (list, tuple)) or not value:
        raise error('%s must be %s or a non-empty list of absolute path globs; got %r' % (where, ' or '.join(COUNTERS_CHOICES), value))
    patterns = []
    for index, pattern in enumerate(value):
        if not isinstance(pattern, str) or not pattern.startswith('/'):
            raise error('%s[%d] must be an absolute path glob starting with "/"; got %r' % (where, index, pattern))
        if pattern not in patterns:
            patterns.append(pattern)
    return patterns


class CounterScope(object):
    """Which parents' counters are carried, from the ``counters`` option (see the module docs)."""

    def __init__(self, counters=DEFAULT_COUNTERS):
        self.value = normalize_counters(counters)
        self.all = self.value == COUNTERS_ALL
        self.patterns = list(self.value) if isinstance(self.value, list) else []
        self._regex = re.compile('|'.join('(?:%s)' % fnmatch.translate(pattern) for pattern in self.patterns)) if self.patterns else None

    @property
    def beyond_sequential(self):
        """True when parents other than the sequential ones are carried."""
        return self.all or self._regex is not None

    def matches(self, path):
        """True when ``path`` matches one of the declared globs."""
        return self._regex is not None and self._regex.match(path) is not None

    def carries(self, path, holds_ephemerals):
        """True when the counter of the persistent parent ``path`` is carried (besides the sequential parents)."""
        if self.matches(path):
            return True
        return self.all and not holds_ephemerals

    def describe(self):
        return self.value if isinstance(self.value, str) else ', '.join(self.value)


# -- plans from snapshots ------------------------------------------------------------------

def add_counter_raises(plan, source_snapshot, dest_snapshot, scope, path_map=None, include_sequential=False):
    """Add to ``plan`` (an ``_apply.Plan``) the counter raises ``scope`` asks for; returns how many were added.

    ``plan_copy`` already raises the sequential parents; ``include_sequential``
    adds them here too (for a plan of counters only). Parents the plan creates
    count the children it creates under them; parents neither on the
    destination nor created are left out (they are missing: created first).
    Parents already raised by the plan are left alone.
    """
    if not isinstance(scope, CounterScope):
        scope = CounterScope(scope)
    if not scope.beyond_sequential and not include_sequential:
        return 0
    mapping = path_map if isinstance(path_map, PathMap) else PathMap(path_map)
    to_dest = mapping.to_destination
    src_nodes = source_snapshot.nodes
    dst_nodes = dest_snapshot.nodes
    raised = set(op.path for op in plan.counter_raises)
    created = set()
    created_under = {}
    for op in plan.creates:
        created.add(op.path)
        parent = op.path.rpartition('/')[0] or '/'
        created_under[parent] = created_under.get(parent, 0) + 1
    sequential = sequential_parents(source_snapshot) if include_sequential else {}
    holders = set()
    if scope.beyond_sequential:
        holders = ephemeral_parents(src_nodes, [path for path, node in src_nodes.items() if node.num_children and not node.ephemeral_owner])
    added = 0
    for path in sorted(src_nodes, key=lambda item: (item.count('/'), item)):
        snode = src_nodes[path]
        if snode.ephemeral_owner or SEQ_BUMP_PREFIX in path.rpartition('/')[2]:
            continue
        if path in sequential:
            target = counter_target(snode, sequential[path])
        elif scope.beyond_sequential and scope.carries(path, path in holders):
            target = next_suffix(snode.cversion, snode.num_children)
        else:
            continue
        dpath = to_dest(path)
        if dpath in raised or target <= 0:
            continue
        if dpath in created:
            current = created_under.get(dpath, 0)
        else:
            dnode = dst_nodes.get(dpath)
            if dnode is None or dnode.ephemeral_owner:
                continue
            current = next_suffix(dnode.cversion, dnode.num_children) + created_under.get(dpath, 0)
        if current < target:
            plan.raise_cversion(dpath, target, current)
            added += 1
    return added


def plan_cost(plan, max_paths=20):
    """The check-mode view of a plan's counter raises: parents, pairs, creates + deletes, first parents."""
    cost = raise_cost((op.current, op.target) for op in plan.counter_raises)
    cost['first_paths'] = [op.path for op in plan.counter_raises[:max_paths]]
    return cost


# -- aligning now ------------------------------------------------------------------------

def align_counters(source_client, destination_client, spec, control_root=None, fence=None, dry_run=False, source_name=None,
                   destination_name=None, max_paths=20, counters=None):
    """Raise the destination's sequential counters under the task's paths to the source's; returns a dict.

    * ``spec``: the normalized task spec (``paths``, ``exclude``, ``counters``);
      ``counters`` overrides the spec's option (e.g. ``'all'``).
    * ``fence``: ``(path, version)`` checked in every multi (the fence of the
      destination, as the daemons write under it); None writes unfenced.
    * ``dry_run``: compute and return the cost, write nothing.

    Both trees are read (stats only, no data, no ACL), then the counters are
    raised on the destination with throwaway create+delete pairs: the
    sequential parents always (to the source's counter and past every copied
    suffix), the others as ``counters`` says. Nothing else is written;
    counters are only ever raised. For the other direction (a rollback),
    swap the clients.

    Returns ``{'counters', 'parents', 'seq_bump_pairs', 'creates', 'deletes',
    'first_paths', 'applied_pairs', 'failures', 'dry_run'}``; failures are
    ``_apply`` failure dicts (path, kind, message); ``FencedError`` is raised
    when the fence moved.
    """
    from ansible_collections.zookeeper.migration.plugins.module_utils import _apply, _snapshot    # kazoo-dependent, imported late
    scope = CounterScope(counters if counters is not None else spec.get('counters'))
    options = {}
    if control_root is not None:
        options['control_root'] = control_root
    exclude = list(spec.get('exclude') or ())
    paths = list(spec['paths'])
    roots = [path for path in paths if source_client.exists(path) is not None]
    plan = _apply.Plan()
    if roots:
        source = _snapshot.take_snapshot(source_client, roots, exclude=exclude, with_acl=False, keep_data=False, cluster=source_name, **options)
        existing = [root for root in roots if destination_client.exists(root) is not None]
        if existing:
            destination = _snapshot.take_snapshot(destination_client, existing, exclude=exclude, with_acl=False, keep_data=False,
                                                  cluster=destination_name, **options)
            add_counter_raises(plan, source, destination, scope, include_sequential=True)
        del source
    result = plan_cost(plan, max_paths=max_paths)
    result.update(counters=scope.value, applied_pairs=0, failures=[], dry_run=bool(dry_run))
    if dry_run or not plan.counter_raises:
        return result
    applied = _apply.apply_plan(destination_client, plan, fence=fence, continue_on_error=True, cluster=destination_name)
    for failure in applied.failures:
        if failure.get('kind') == 'fenced':
            raise FencedError('the fence %s on the %s moved: another leader wrote since; counters not aligned'
                              % (fence[0] if fence else '?', destination_name or 'destination'), path=failure.get('path'),
                              cluster=destination_name)
    result['applied_pairs'] = applied.seq_bump_pairs
    result['failures'] = list(applied.failures)
    return result


# -- the sync engine's side ---------------------------------------------------------------

def counter_raises(counters, writable):
    """``[(side, target, current)]``: each writable side whose counter is below the other's, raised to the highest.

    ``counters`` maps each side on which the parent exists (persistent) to its
    counter. One-way tasks write only the replica; bidirectional ones raise
    whichever side is behind. Counters are never lowered.
    """
    if len(counters) < 2:
        return []
    top = max(counters.values())
    return [(side, top, counters[side]) for side in sorted(counters) if side in writable and counters[side] < top]


def holds_ephemerals(client, parent):
    """True when ``parent`` holds an ephemeral child now (one listing and a pipelined stat of each child)."""
    children = client.get_children(parent)
    prefix = parent + '/' if parent != '/' else '/'
    pending = [client.exists_async(prefix + name) for name in children]
    for result in pending:
        try:
            stat = result.get()
        except Exception:  # pylint: disable=broad-except
            continue
        if stat is not None and stat.ephemeralOwner:
            return True
    return False


class CounterStream(object):
    """Streaming alignment of the counters a task carries beyond the sequential parents.

    A child created and deleted on the source fires an event on the child's
    path, not the parent's, and leaves nothing to copy; the parent's
    ``cversion`` moved. ``note(paths)`` takes the parents of each batch's paths
    that the scope carries; once the batch's writes landed the engine reads
    those parents on both sides and raises the lower counter (``raises``).
    With ``counters: all``, a parent holding ephemeral children (a lock
    parent) is left out; what was found is kept until ``forget()`` (each
    full reconcile), so a busy lock parent costs one listing per reconcile
    period, not one per event.
    """

    def __init__(self, scope, accept):
        self.scope = scope if isinstance(scope, CounterScope) else CounterScope(scope)
        self.accept = accept
        self.pending = set()
        self.holders = {}
        self.raised_parents = 0
        self.raised_pairs = 0

    @property
    def active(self):
        return self.scope.beyond_sequential

    def note(self, paths):
        """Remember the carried parents of ``paths`` (changed paths of a batch)."""
        if not self.scope.beyond_sequential:
            return
        scope_all = self.scope.all
        pending = self.pending
        for path in paths:
            if path == '/':
                continue
            parent = path.rpartition('/')[0] or '/'
            if parent not in pending and (scope_all or self.scope.matches(parent)) and self.accept(parent):
                pending.add(parent)

    def take(self):
        """The parents noted since the last call (and forget them)."""
        parents = self.pending
        self.pending = set()
        return parents

    def forget(self):
        """Forget which parents hold ephemerals (a full reconcile ran: look again)."""
        self.holders.clear()

    def carried(self, parent, client):
        """True when ``parent``'s counter is carried; ``client`` lists its children when ``counters: all`` must know."""
        if self.scope.matches(parent):
            return True
        if not self.scope.all:
            return False
        holds = self.holders.get(parent)
        if holds is None:
            try:
                holds = holds_ephemerals(client, parent)
            except Exception:  # pylint: disable=broad-except
                return False    # gone or unreadable: the full reconcile decides
            self.holders[parent] = holds
        return not holds

    def count(self, raises):
        """Account for raises sent: ``[(parent, target, current)]``."""
        for _parent, target, current in raises:
            self.raised_parents += 1
            self.raised_pairs += raise_pairs(current, target)
