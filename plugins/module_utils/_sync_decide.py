# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the sync does with a path: pure decisions from both sides' states and the baseline. No I/O.

This is a private module of the zookeeper.migration collection; it may change
without notice. The engine (``_sync.py``) reads both sides, calls these
functions, and writes what they return; ``tests/unit/.../test_sync_decide.py``
drives them against two in-memory trees with random writes and leader
changes (Hypothesis, stateful).

The baseline value of a path
----------------------------
One int per path (CPython keeps a small int in 32-56 bytes, a tuple of three
in ~120): ``hash | source_mzxid << 60 | destination_mzxid << 124``, where
``hash`` is the 60-bit hash of the data both sides held when they were last
equal and each ``mzxid`` is that side's ``mzxid`` then, or 0 when unknown
(right after the sync wrote the side: the write's new ``mzxid`` is learnt at
the next read). A side *changed since the baseline* when its ``mzxid``
differs from the recorded one (exact: A -> B -> A and delete + re-create
are changes) or, where none is recorded, when its data hash differs.

Failover
--------
Every write multi also creates a journal entry on the cluster it writes
(``_sync_journal``), atomically: what the write brought each path to. A new
leader loads the last checkpoint and ``replay``\\ s the journal entries
written after it, so a path its predecessor synced after that checkpoint is
not taken for "changed on both sides" (which reverted acknowledged writes and
resurrected deletes).
"""

SOURCE = 'source'
DESTINATION = 'destination'
SIDES = (SOURCE, DESTINATION)

# Actions ``decide`` returns.
IN_SYNC = 'in_sync'          # both sides equal: record the baseline
DROP = 'drop'                # gone on both sides: forget the baseline
COPY = 'copy'                # create or update ``target`` with the other side's data
DELETE = 'delete'            # delete on ``target``
SKIP = 'skip'                # never touched (ephemeral or type mismatch)
LEFTOVER = 'leftover'        # only on the replica since before the task: reported, left alone

POLICIES = ('source_wins', 'destination_wins', 'newest')

_HASH_BITS = 60
_HASH_MASK = (1 << _HASH_BITS) - 1
_MZXID_MASK = (1 << 64) - 1
_SHIFT = {SOURCE: _HASH_BITS, DESTINATION: _HASH_BITS + 64}


def other(side):
    """The other side's name."""
    return DESTINATION if side == SOURCE else SOURCE


# --------------------------------------------------------------------------
# Baseline values
# --------------------------------------------------------------------------

def base_value(hash_value, source_mzxid=0, destination_mzxid=0):
    """Pack one baseline value (see the module doc); an mzxid of 0 means unknown."""
    return (hash_value & _HASH_MASK) | ((source_mzxid or 0) & _MZXID_MASK) << _SHIFT[SOURCE] \
        | ((destination_mzxid or 0) & _MZXID_MASK) << _SHIFT[DESTINATION]


def base_hash(value):
    """The data hash of a baseline value."""
    return value & _HASH_MASK


def base_mzxid(value, side):
    """``side``'s mzxid recorded in a baseline value (0: unknown)."""
    return (value >> _SHIFT[side]) & _MZXID_MASK


def side_changed(state, base, side):
    """True when ``state`` (present) on ``side`` changed since the baseline value ``base``."""
    recorded = base_mzxid(base, side)
    if recorded:
        return state.mzxid != recorded
    return state.hash != base_hash(base)


def in_sync_value(states):
    """The baseline value of a path both sides hold equal: the hash and both mzxids."""
    src, dst = states[SOURCE], states[DESTINATION]
    return base_value(src.hash, src.mzxid, dst.mzxid)


def written_value(decision, origin_side, origin):
    """The baseline value after a write of ``decision`` succeeded: None for a delete.

    Both sides held ``origin``'s data once the write landed (it copied that
    data); the written side's new mzxid is unknown until it is read again.
    """
    if decision.action == DELETE:
        return None
    return base_value(decision.new_hash, origin.mzxid if origin_side == SOURCE else 0,
                      origin.mzxid if origin_side == DESTINATION else 0)


# --------------------------------------------------------------------------
# Per-path decision
# --------------------------------------------------------------------------

class NodeState(object):
    """What the engine needs of one znode on one side (None stands for absent)."""

    __slots__ = ('hash', 'data', 'version', 'ephemeral', 'mtime', 'mzxid', 'cversion', 'num_children')

    def __init__(self, hash_value, data, version, ephemeral, mtime, mzxid, cversion=0, num_children=0):
        self.hash = hash_value
        self.data = data
        self.version = version
        self.ephemeral = ephemeral
        self.mtime = mtime
        self.mzxid = mzxid
        self.cversion = cversion
        self.num_children = num_children

    def __repr__(self):
        return 'NodeState(hash=%x, version=%d, mzxid=%d, ephemeral=%r)' % (self.hash, self.version, self.mzxid, self.ephemeral)


class Decision(object):
    """The outcome of ``decide`` for one path: ``action``, ``target`` side, and what else to count or log.

    ``structural`` marks a decision that depends on the nodes around the
    path (a delete on one side meeting a change or a child on the other):
    the engine settles it for the whole subtree (``decide_subtree``).
    """

    __slots__ = ('action', 'target', 'conflict', 'reason', 'new_hash', 'structural')

    def __init__(self, action, target=None, conflict=False, reason=None, new_hash=None, structural=False):
        self.action = action
        self.target = target
        self.conflict = conflict
        self.reason = reason
        self.new_hash = new_hash
        self.structural = structural

    def __repr__(self):
        return 'Decision(%s%s%s%s)' % (self.action, ' -> %s' % self.target if self.target else '',
                                       ', conflict' if self.conflict else '', ', %s' % self.reason if self.reason else '')


def policy_winner(policy):
    """The side a policy lets win a conflict, or None for ``newest`` (decided by mtime, or the change for deletes)."""
    if policy == 'destination_wins':
        return DESTINATION
    if policy == 'newest':
        return None
    return SOURCE


def decide(states, base, authority=SOURCE, bidirectional=False, policy='source_wins', streaming=True,
           replica_watermark=None, union=False, prune=False):
    """Decide what to do with one path.

    ``states`` maps ``'source'``/``'destination'`` to a ``NodeState`` or None
    (absent); ``base`` is the baseline value (``base_value``) or None (never
    in sync). ``authority`` is the side a one-way task copies from (the
    source, or the destination after a rollback cutover); in a bidirectional
    task it is the source and ``policy`` settles conflicts (``source_wins``,
    ``destination_wins``, ``newest`` by mtime). Before the initial sync is
    complete (``streaming`` False) the authority wins every difference
    without it counting as a conflict. ``replica_watermark`` is the zxid of
    the replica side when the task first started: a replica-only node never
    synced and not modified since then is a leftover from before the task,
    reported only (pushed to the authority with ``union``, deleted with
    ``prune``); one modified after it is new and, in a bidirectional task,
    copied.

    A path present on one side only whose baseline says it was in sync is
    ``structural`` when the deletion meets a change (a conflict): its
    parent may be gone too, and the engine decides the subtree as one
    (``decide_subtree``) instead of path by path, which livelocked.
    """
    a_side = authority
    b_side = other(authority)
    a = states.get(a_side)
    b = states.get(b_side)
    if a is None and b is None:
        return Decision(DROP)
    if (a is not None and a.ephemeral) or (b is not None and b.ephemeral):
        if a is not None and b is not None and a.ephemeral != b.ephemeral:
            return Decision(SKIP, reason='ephemeral on one side, persistent on the other: left alone')
        return Decision(SKIP, reason='ephemeral')
    winner = policy_winner(policy)
    if a is not None and b is not None:
        if a.hash == b.hash:
            return Decision(IN_SYNC, new_hash=a.hash)
        if base is None:
            if not streaming or not bidirectional:
                return Decision(COPY, b_side, new_hash=a.hash)
            # created on both sides independently (or sequential names colliding)
            return _resolve_both(a_side, a, b, winner, 'created on both sides with different data')
        a_changed = side_changed(a, base, a_side)
        b_changed = side_changed(b, base, b_side)
        if not bidirectional:
            return Decision(COPY, b_side, conflict=a_changed and b_changed and streaming, new_hash=a.hash,
                            reason='the %s changed too: overwritten (one-way task)' % b_side if b_changed else None)
        if a_changed and not b_changed:
            return Decision(COPY, b_side, new_hash=a.hash)
        if b_changed and not a_changed:
            return Decision(COPY, a_side, new_hash=b.hash)
        if not streaming:
            return Decision(COPY, b_side, new_hash=a.hash)
        if not a_changed and not b_changed:
            # the data differs but neither side moved since the baseline: a baseline from before a write we
            # cannot see; the authority's data settles it without counting a conflict
            return Decision(COPY, b_side, new_hash=a.hash)
        return _resolve_both(a_side, a, b, winner, 'changed on both sides')
    if a is not None:
        return _one_side(a_side, a, base, bidirectional, streaming, winner, present_is_authority=True)
    # only on the replica side
    if base is None:
        if union:
            return Decision(COPY, a_side, new_hash=b.hash, reason='only on the %s: copied back (union)' % b_side)
        is_new = replica_watermark is not None and b.mzxid > replica_watermark
        if bidirectional and is_new:
            return Decision(COPY, a_side, new_hash=b.hash)
        if prune:
            return Decision(DELETE, b_side, reason='only on the %s (prune)' % b_side)
        return Decision(LEFTOVER, reason='only on the %s, from before the task' % b_side)
    return _one_side(b_side, b, base, bidirectional, streaming, winner, present_is_authority=False)


def _one_side(here, state, base, bidirectional, streaming, winner, present_is_authority):
    """A path on ``here`` only, in the baseline: deleted on the other side (``base`` is not None for the replica)."""
    there = other(here)
    if present_is_authority and (base is None or not bidirectional):
        return Decision(COPY, there, new_hash=state.hash)
    if not present_is_authority and not bidirectional:
        return Decision(DELETE, here, reason='deleted on the %s' % there)
    changed = side_changed(state, base, here)
    if not changed or not streaming:
        if present_is_authority and not streaming and changed:
            return Decision(COPY, there, new_hash=state.hash)
        return Decision(DELETE, here, reason='deleted on the %s' % there, structural=state.num_children > 0)
    # changed on one side, deleted on the other
    if winner == there:
        return Decision(DELETE, here, conflict=True, structural=True,
                        reason='changed on the %s, deleted on the %s: the deletion wins' % (here, there))
    return Decision(COPY, there, conflict=True, new_hash=state.hash, structural=True,
                    reason='changed on the %s, deleted on the %s: the change wins' % (here, there))


def _resolve_both(a_side, a, b, winner, why):
    b_side = other(a_side)
    if winner is None:  # newest: by mtime; ties go to the authority side
        winner = b_side if b.mtime > a.mtime else a_side
    if winner == a_side:
        return Decision(COPY, b_side, conflict=True, new_hash=a.hash, reason='%s: the %s wins' % (why, a_side))
    return Decision(COPY, a_side, conflict=True, new_hash=b.hash, reason='%s: the %s wins' % (why, b_side))


# --------------------------------------------------------------------------
# Subtrees: a delete on one side meeting changes on the other
# --------------------------------------------------------------------------

def parent_path(path):
    head = path.rpartition('/')[0]
    return head or '/'


def is_under(path, root):
    return path == root or path.startswith(root.rstrip('/') + '/')


class SubtreeDecision(object):
    """What to do with a subtree ``root`` deleted on ``deleted_on`` and still on ``kept_on``.

    ``recreate``: paths to create on ``deleted_on`` (parents first) with the
    data ``kept_on`` holds; ``delete``: paths to delete on ``kept_on``
    (children first); ``conflict``: a change met the delete (one conflict,
    ``reason`` says how the policy settled it); ``left``: paths left alone
    (ephemeral nodes and their parents, leftovers from before the task).
    """

    __slots__ = ('root', 'deleted_on', 'kept_on', 'recreate', 'delete', 'conflict', 'reason', 'left')

    def __init__(self, root, deleted_on, kept_on):
        self.root = root
        self.deleted_on = deleted_on
        self.kept_on = kept_on
        self.recreate = []
        self.delete = []
        self.conflict = False
        self.reason = None
        self.left = []

    def __repr__(self):
        return 'SubtreeDecision(%s deleted on the %s: recreate %r, delete %r%s)' % (
            self.root, self.deleted_on, self.recreate, self.delete, ', conflict' if self.conflict else '')


def decide_subtree(root, kept_on, kept, base_of, policy='source_wins', replica_watermark=None, authority=SOURCE):
    """Settle a subtree deleted on one side while the other side still holds it, as one decision.

    ``root`` is absent on the other side (``other(kept_on)``) and was in
    sync once; ``kept`` maps every path of the subtree on ``kept_on`` (``root``
    included) to its ``NodeState``; ``base_of(path)`` gives a baseline value
    or None. A node *changed* on ``kept_on`` since the baseline, or created
    there since (no baseline, not a leftover from before the task), is a
    change that met the delete: one conflict for the whole subtree, settled
    by ``policy``. The change wins (``newest`` too: a delete has no mtime to
    compare): the changed nodes and the parents they need are re-created on
    the deleting side, and the unchanged rest is deleted, as the delete
    asked. The delete wins: the whole subtree goes. No change: the subtree
    goes, no conflict. Ephemeral nodes are never touched, nor their parents.
    """
    deleted_on = other(kept_on)
    out = SubtreeDecision(root, deleted_on, kept_on)
    pinned = set()     # paths that cannot go: ephemeral nodes, their parents, leftovers
    changed = []
    for path, state in kept.items():
        if state.ephemeral:
            pinned.add(path)
            continue
        base = base_of(path)
        if base is None:
            leftover = kept_on != authority and replica_watermark is not None and state.mzxid <= replica_watermark
            if leftover:
                pinned.add(path)
            else:
                changed.append(path)
        elif side_changed(state, base, kept_on):
            changed.append(path)
    for path in list(pinned):
        while path != root and is_under(path, root):
            path = parent_path(path)
            pinned.add(path)
    winner = policy_winner(policy)
    change_wins = bool(changed) and winner != deleted_on
    needed = set()
    if changed:
        out.conflict = True
        if change_wins:
            for path in changed:
                while True:
                    needed.add(path)
                    if path == root:
                        break
                    path = parent_path(path)
            out.reason = ('%d node(s) changed on the %s under %s, which was deleted on the %s: the change wins '
                          '(re-created with the parents it needs; the rest stays deleted)' % (len(changed), kept_on, root, deleted_on))
        else:
            out.reason = ('%d node(s) changed on the %s under %s, which was deleted on the %s: the deletion wins '
                          '(the subtree is deleted)' % (len(changed), kept_on, root, deleted_on))
    out.recreate = sorted(needed, key=lambda p: (p.count('/'), p))
    out.delete = sorted((p for p in kept if p not in needed and p not in pinned), key=lambda p: (-p.count('/'), p))
    out.left = sorted(p for p in pinned if p in kept)
    return out


# --------------------------------------------------------------------------
# Journal replay (failover)
# --------------------------------------------------------------------------

class JournalRecord(object):
    """One path a leader wrote: ``value`` is the baseline value it brought the path to (None: deleted).

    ``order`` is ``(control epoch, leader's batch counter)``: records of one
    leader in the order it sent them, a newer leader's after an older one's.
    """

    __slots__ = ('order', 'side', 'path', 'value')

    def __init__(self, order, side, path, value):
        self.order = order
        self.side = side
        self.path = path
        self.value = value

    def __repr__(self):
        return 'JournalRecord(%r, %s, %s, %r)' % (self.order, self.side, self.path, self.value)


def replay(entries, records):
    """Bring a checkpointed baseline (``entries``, a dict changed in place) up to the writes journalled after it.

    Records from both clusters, merged by ``order``: for each path the last
    write wins. Returns the number of paths changed.
    """
    changed = 0
    for record in sorted(records, key=lambda r: r.order):
        if record.value is None:
            if entries.pop(record.path, None) is not None:
                changed += 1
        elif entries.get(record.path) != record.value:
            entries[record.path] = record.value
            changed += 1
    return changed
