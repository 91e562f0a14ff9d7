# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Properties of the pure sync decisions (``_sync_decide``), the baseline's checkpoint format and the reconcile queue's mark.

Hypothesis, not stateful (``test_sync_model.py`` drives these functions
through the engine's flow). Every property is stated against an oracle
built here from the documented contract, not from the implementation.
"""

import json
import struct
import zlib

import pytest
from hypothesis import assume, given, settings, strategies as st

from ansible_collections.zookeeper.migration.plugins.module_utils._sync_baseline import Baseline, data_hash64
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_decide import (
    COPY,
    DELETE,
    DESTINATION,
    DROP,
    IN_SYNC,
    POLICIES,
    SIDES,
    SKIP,
    SOURCE,
    JournalRecord,
    NodeState,
    base_hash,
    base_mzxid,
    base_value,
    decide,
    decide_subtree,
    other,
    parent_path,
    replay,
    side_changed,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_queue import ReconcileQueue

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None)

DATA = st.sampled_from([b'A', b'B', b'C', b''])
MZXID = st.integers(1, 40)
MIRROR_POLICY = {'source_wins': 'destination_wins', 'destination_wins': 'source_wins', 'newest': 'newest'}


def node(data, mzxid, ephemeral=False, children=0, version=0, mtime=None):
    return NodeState(data_hash64(data), data, version, ephemeral, mzxid if mtime is None else mtime, mzxid, num_children=children)


@st.composite
def states(draw, ephemeral=True, absent=True):
    """A present node (sometimes ephemeral, with children, an mtime of its own) or None."""
    if absent and draw(st.booleans()):
        return None
    return node(draw(DATA), draw(MZXID), ephemeral=ephemeral and draw(st.integers(0, 5)) == 0, children=draw(st.integers(0, 2)),
                mtime=draw(st.integers(1, 5)))


@st.composite
def baselines(draw):
    """None (never in sync) or a baseline value whose mzxids are each known or unknown (0)."""
    if draw(st.booleans()):
        return None
    return base_value(data_hash64(draw(DATA)), draw(st.sampled_from([0]) | MZXID), draw(st.sampled_from([0]) | MZXID))


def mirror_base(base):
    if base is None:
        return None
    return base_value(base_hash(base), base_mzxid(base, DESTINATION), base_mzxid(base, SOURCE))


def outcome(decision, swap=False):
    target = decision.target
    if swap and target is not None:
        target = other(target)
    return (decision.action, target, decision.conflict, decision.new_hash, decision.structural)


FLAGS = dict(bidirectional=st.booleans(), streaming=st.booleans(), watermark=st.sampled_from([None, 0, 10, 20, 40]),
             union=st.booleans(), prune=st.booleans())


# --------------------------------------------------------------------------
# Baseline values
# --------------------------------------------------------------------------

@SETTINGS
@given(st.integers(0, 2 ** 60 - 1), st.integers(0, 2 ** 64 - 1), st.integers(0, 2 ** 64 - 1))
def test_baseline_values_pack_and_unpack(hash_value, source_mzxid, destination_mzxid):
    value = base_value(hash_value, source_mzxid, destination_mzxid)
    assert (base_hash(value), base_mzxid(value, SOURCE), base_mzxid(value, DESTINATION)) == (hash_value, source_mzxid, destination_mzxid)


# --------------------------------------------------------------------------
# decide
# --------------------------------------------------------------------------

@SETTINGS
@given(src=states(), dst=states(), base=baselines(), authority=st.sampled_from(SIDES), policy=st.sampled_from(POLICIES), **FLAGS)
def test_decide_is_symmetric_in_the_sides(src, dst, base, authority, policy, bidirectional, streaming, watermark, union, prune):
    """Swapping the sides (data, recorded mzxids, authority, and the policy's winner) mirrors the decision exactly."""
    flags = dict(bidirectional=bidirectional, streaming=streaming, replica_watermark=watermark, union=union, prune=prune)
    straight = decide({SOURCE: src, DESTINATION: dst}, base, authority=authority, policy=policy, **flags)
    mirrored = decide({SOURCE: dst, DESTINATION: src}, mirror_base(base), authority=other(authority), policy=MIRROR_POLICY[policy], **flags)
    assert outcome(straight) == outcome(mirrored, swap=True)


@SETTINGS
@given(src=states(), dst=states(), base=baselines(), **FLAGS)
def test_the_policy_settles_conflicts_and_nothing_else(src, dst, base, bidirectional, streaming, watermark, union, prune):
    flags = dict(bidirectional=bidirectional, streaming=streaming, replica_watermark=watermark, union=union, prune=prune)
    by_policy = dict((policy, decide({SOURCE: src, DESTINATION: dst}, base, policy=policy, **flags)) for policy in POLICIES)
    conflict = by_policy['source_wins'].conflict
    assert all(decision.conflict == conflict for decision in by_policy.values())
    if not conflict:
        assert len(set((d.action, d.target, d.new_hash) for d in by_policy.values())) == 1
        return
    if not bidirectional:
        # a one-way task reports the conflict, and the authority (the source here) wins whatever the policy
        for decision in by_policy.values():
            assert (decision.action, decision.target, decision.new_hash) == (COPY, DESTINATION, src.hash)
        return
    for policy, winner in (('source_wins', SOURCE), ('destination_wins', DESTINATION)):
        decision = by_policy[policy]
        kept = src if winner == SOURCE else dst
        if kept is None:
            assert (decision.action, decision.target) == (DELETE, other(winner))      # the delete wins
        else:
            assert (decision.action, decision.target, decision.new_hash) == (COPY, other(winner), kept.hash)
    newest = by_policy['newest']
    if src is None or dst is None:
        kept = src if dst is None else dst
        assert (newest.action, newest.target, newest.new_hash) == (COPY, DESTINATION if dst is None else SOURCE, kept.hash)   # the change wins
    else:
        winner = DESTINATION if dst.mtime > src.mtime else SOURCE        # ties go to the authority
        assert (newest.action, newest.target) == (COPY, other(winner))


@SETTINGS
@given(src=states(ephemeral=False, absent=False), dst=states(ephemeral=False, absent=False), base=baselines(), policy=st.sampled_from(POLICIES),
       authority=st.sampled_from(SIDES), **FLAGS)
def test_in_sync_exactly_when_both_hold_the_same_data(src, dst, base, policy, authority, bidirectional, streaming, watermark, union, prune):
    decision = decide({SOURCE: src, DESTINATION: dst}, base, authority=authority, policy=policy, bidirectional=bidirectional,
                      streaming=streaming, replica_watermark=watermark, union=union, prune=prune)
    assert (decision.action == IN_SYNC) == (src.hash == dst.hash)
    assert decision.action != DROP


@SETTINGS
@given(data=DATA, mzxid=MZXID, other_state=states(ephemeral=False), base=baselines(), ephemeral_on=st.sampled_from(SIDES))
def test_ephemeral_nodes_are_never_touched(data, mzxid, other_state, base, ephemeral_on):
    pair = {ephemeral_on: node(data, mzxid, ephemeral=True), other(ephemeral_on): other_state}
    for policy in POLICIES:
        assert decide(pair, base, bidirectional=True, policy=policy).action == SKIP


@st.composite
def one_side_changed(draw):
    """A baseline, a side that did not change since (by mzxid where recorded, else by hash), and one that did (or was deleted)."""
    base_data = draw(DATA)
    recorded = dict((side, draw(st.sampled_from([0]) | MZXID)) for side in SIDES)
    base = base_value(data_hash64(base_data), recorded[SOURCE], recorded[DESTINATION])
    changed_on = draw(st.sampled_from(SIDES))
    unchanged_on = other(changed_on)
    still = node(base_data, recorded[unchanged_on] or draw(MZXID), children=draw(st.integers(0, 1)))
    if draw(st.booleans()):
        moved = None                                             # deleted
    elif recorded[changed_on]:
        # any data, A -> B -> A included: the mzxid tells
        moved = node(draw(DATA), draw(MZXID.filter(lambda m: m != recorded[changed_on])))
    else:
        # an unknown mzxid: only a change of data is visible
        moved = node(draw(DATA.filter(lambda d: d != base_data)), draw(MZXID))
    return base, changed_on, {changed_on: moved, unchanged_on: still}


@SETTINGS
@given(case=one_side_changed(), policy=st.sampled_from(POLICIES))
def test_a_change_on_one_side_only_is_never_a_conflict(case, policy):
    """Bidirectional, streaming: whatever the policy, the one side's change (or delete) goes to the other side."""
    base, changed_on, pair = case
    decision = decide(pair, base, bidirectional=True, policy=policy, streaming=True)
    assert not decision.conflict
    moved, still = pair[changed_on], pair[other(changed_on)]
    if moved is None:
        assert (decision.action, decision.target) == (DELETE, other(changed_on))
        assert decision.structural == (still.num_children > 0)
    elif moved.hash == still.hash:
        assert decision.action == IN_SYNC
    else:
        assert (decision.action, decision.target, decision.new_hash) == (COPY, other(changed_on), moved.hash)


@SETTINGS
@given(case=one_side_changed())
def test_a_one_way_task_never_reports_a_conflict_for_one_change(case):
    base, _changed_on, pair = case
    assume(pair[SOURCE] is not None or pair[DESTINATION] is not None)
    decision = decide(pair, base, bidirectional=False, streaming=True)
    assert not decision.conflict
    if pair[SOURCE] is None:
        assert (decision.action, decision.target) == (DELETE, DESTINATION)
    elif pair[DESTINATION] is None or pair[SOURCE].hash != pair[DESTINATION].hash:
        assert (decision.action, decision.target, decision.new_hash) == (COPY, DESTINATION, pair[SOURCE].hash)


@SETTINGS
@given(data=DATA, other_data=DATA, round_trip_on=st.sampled_from(SIDES), policy=st.sampled_from(POLICIES))
def test_a_change_back_to_the_baseline_data_is_a_change(data, other_data, round_trip_on, policy):
    """A -> B -> A on one side (same data, new mzxid) while the other side changed: a conflict, settled by the policy.

    With that side's mzxid unknown in the baseline (format 2, or right after the sync wrote it) only the data
    is compared: the round trip is invisible and the other side's change is copied without a conflict.
    """
    assume(other_data != data)
    recorded = {SOURCE: 10, DESTINATION: 20}
    pair = {round_trip_on: node(data, recorded[round_trip_on] + 5), other(round_trip_on): node(other_data, recorded[other(round_trip_on)] + 5)}
    decision = decide(pair, base_value(data_hash64(data), recorded[SOURCE], recorded[DESTINATION]), bidirectional=True, policy=policy)
    assert decision.conflict and decision.action == COPY
    if policy != 'newest':
        winner = SOURCE if policy == 'source_wins' else DESTINATION
        assert decision.target == other(winner) and decision.new_hash == pair[winner].hash
    recorded[round_trip_on] = 0
    blind = decide(pair, base_value(data_hash64(data), recorded[SOURCE], recorded[DESTINATION]), bidirectional=True, policy=policy)
    assert not blind.conflict and (blind.action, blind.target) == (COPY, round_trip_on)


def test_a_delete_and_re_create_with_the_same_data_against_a_delete_is_a_change():
    base = base_value(data_hash64(b'A'), 10, 20)
    decision = decide({SOURCE: node(b'A', 15), DESTINATION: None}, base, bidirectional=True, policy='source_wins')
    assert decision.conflict and decision.structural and decision.action == COPY and decision.target == DESTINATION
    assert side_changed(node(b'A', 15), base, SOURCE) and not side_changed(node(b'A', 10), base, SOURCE)


def test_a_plain_delete_of_a_parent_is_structural_only_when_it_has_children():
    base = base_value(data_hash64(b'A'), 10, 20)
    leaf = decide({SOURCE: node(b'A', 10), DESTINATION: None}, base, bidirectional=True)
    parent = decide({SOURCE: node(b'A', 10, children=2), DESTINATION: None}, base, bidirectional=True)
    assert leaf.action == parent.action == DELETE and leaf.target == SOURCE
    assert not leaf.structural and parent.structural and not parent.conflict


# --------------------------------------------------------------------------
# decide_subtree
# --------------------------------------------------------------------------

UNIVERSE = ['/a', '/a/b', '/a/b/c', '/a/b/c/d', '/a/b/e', '/a/f', '/a/f/g', '/a/h']
# How a node of the kept side relates to the baseline (the oracle's ground truth):
UNCHANGED = ('unchanged by mzxid', 'unchanged by hash')
CHANGED = ('changed by mzxid', 'changed back to the same data (mzxid)', 'changed by hash', 'new')
KINDS = UNCHANGED + CHANGED + ('leftover', 'ephemeral')
WATERMARK = 100


@st.composite
def subtrees(draw):
    """A subtree ``/a`` on the kept side (closed under parents), each node of a drawn kind, and its baseline."""
    paths = set(['/a'])
    for path in UNIVERSE[1:]:
        if parent_path(path) in paths and draw(st.booleans()):
            paths.add(path)
    kept_on = draw(st.sampled_from(SIDES))
    kinds = {}
    for path in sorted(paths):
        has_children = any(parent_path(p) == path for p in paths)
        choices = [kind for kind in KINDS if not (kind == 'ephemeral' and has_children)      # an ephemeral node has no children
                   and not (kind == 'leftover' and kept_on == SOURCE)]                    # leftovers are on the replica
        kinds[path] = draw(st.sampled_from(choices))
    kept, baseline = {}, {}
    for index, path in enumerate(sorted(paths)):
        kind = kinds[path]
        mzxid = WATERMARK + 10 + index
        recorded = {SOURCE: 0, DESTINATION: 0}
        data, base_data = b'old', b'old'
        if kind == 'unchanged by mzxid':
            recorded[kept_on] = mzxid
        elif kind == 'changed by mzxid':
            recorded[kept_on], data = mzxid - 5, b'new'
        elif kind == 'changed back to the same data (mzxid)':
            recorded[kept_on] = mzxid - 5
        elif kind == 'changed by hash':
            data = b'new'
        elif kind == 'leftover':
            mzxid = WATERMARK - index
        kept[path] = node(data, mzxid, ephemeral=kind == 'ephemeral')
        if kind in ('unchanged by mzxid', 'unchanged by hash', 'changed by mzxid', 'changed back to the same data (mzxid)', 'changed by hash'):
            baseline[path] = base_value(data_hash64(base_data), recorded[SOURCE], recorded[DESTINATION])
    return kept_on, kinds, kept, baseline


def with_ancestors(paths, root='/a'):
    out = set()
    for path in paths:
        while True:
            out.add(path)
            if path == root:
                break
            path = parent_path(path)
    return out


@SETTINGS
@given(tree=subtrees(), policy=st.sampled_from(POLICIES))
def test_subtree_decisions(tree, policy):
    kept_on, kinds, kept, baseline = tree
    deleted_on = other(kept_on)
    outcome_ = decide_subtree('/a', kept_on, kept, baseline.get, policy=policy, replica_watermark=WATERMARK, authority=SOURCE)
    changed = set(path for path, kind in kinds.items() if kind in CHANGED)
    pinned = with_ancestors(path for path, kind in kinds.items() if kind in ('ephemeral', 'leftover'))
    assert (outcome_.root, outcome_.kept_on, outcome_.deleted_on) == ('/a', kept_on, deleted_on)
    assert outcome_.conflict == bool(changed)
    assert set(outcome_.left) == pinned and len(outcome_.left) == len(pinned)
    change_wins = bool(changed) and policy != '%s_wins' % deleted_on       # newest: a delete has no mtime, the change wins
    if change_wins:
        # exactly the changed nodes and the parents they need, up to the root; the unchanged rest stays deleted
        assert set(outcome_.recreate) == with_ancestors(changed)
    else:
        # the delete wins (or nothing changed): the whole subtree goes, but ephemeral nodes, leftovers and their parents
        assert outcome_.recreate == []
    assert set(outcome_.delete) == set(kept) - set(outcome_.recreate) - pinned
    assert not any(kinds[path] == 'ephemeral' for path in outcome_.delete + outcome_.recreate)
    assert len(outcome_.delete) == len(set(outcome_.delete)) and len(outcome_.recreate) == len(set(outcome_.recreate))
    # parents are re-created before their children, children deleted before their parents
    for index, path in enumerate(outcome_.recreate):
        assert path == '/a' or parent_path(path) in outcome_.recreate[:index]
    for index, path in enumerate(outcome_.delete):
        assert not any(parent_path(later) == path for later in outcome_.delete[index + 1:])


def test_a_new_node_under_a_deleted_subtree_is_a_change_and_a_leftover_is_not():
    """On the authority side a node never synced is a change (the sync copies it); on the replica one from before the task is a leftover."""
    kept = {'/a': node(b'x', 10), '/a/new': node(b'n', 50), '/a/old': node(b'o', 5)}
    baseline = {'/a': base_value(data_hash64(b'x'), 10, 0)}
    outcome_ = decide_subtree('/a', SOURCE, kept, baseline.get, policy='newest', replica_watermark=20, authority=SOURCE)
    assert outcome_.conflict and outcome_.recreate == ['/a', '/a/new', '/a/old']
    replica = decide_subtree('/a', DESTINATION, {'/a': node(b'x', 10), '/a/old': node(b'o', 5)}, baseline.get,
                             policy='source_wins', replica_watermark=20, authority=SOURCE)
    assert not replica.conflict and replica.delete == [] and replica.left == ['/a', '/a/old']


# --------------------------------------------------------------------------
# replay
# --------------------------------------------------------------------------

@st.composite
def journals(draw):
    """Journal records of a few leaders: one entry (multi) per (epoch, counter), one record per path in it, on either cluster."""
    records = []
    for epoch in sorted(draw(st.sets(st.integers(1, 4), max_size=3))):
        for counter in range(1, draw(st.integers(1, 6)) + 1):
            side = draw(st.sampled_from(SIDES))
            for path in sorted(draw(st.sets(st.sampled_from(['/x', '/y', '/z']), min_size=1))):
                value = draw(st.none() | st.integers(1, 9))
                records.append(JournalRecord((epoch, counter), side, path, value))
    return records


@SETTINGS
@given(records=journals(), start=st.dictionaries(st.sampled_from(['/x', '/y', '/w']), st.integers(1, 9)), rng=st.randoms())
def test_replay_keeps_the_last_write_per_path_whatever_the_input_order(records, start, rng):
    expected = dict(start)
    last = {}
    for record in records:
        if record.path not in last or record.order > last[record.path].order:
            last[record.path] = record
    for path, record in last.items():
        if record.value is None:
            expected.pop(path, None)
        else:
            expected[path] = record.value
    for _attempt in range(3):
        shuffled = list(records)
        rng.shuffle(shuffled)
        entries = dict(start)
        replay(entries, shuffled)
        assert entries == expected
        replay(entries, shuffled)            # a new leader replaying again what an earlier one replayed: same result
        assert entries == expected


# --------------------------------------------------------------------------
# Baseline: checkpoint format
# --------------------------------------------------------------------------

PATHS = st.text(st.characters(blacklist_categories=('Cs',), blacklist_characters='\x00'), min_size=1, max_size=40).map(lambda s: '/' + s)
VALUES = st.builds(base_value, st.integers(0, 2 ** 60 - 1), st.sampled_from([0, 2 ** 64 - 1]) | st.integers(0, 2 ** 64 - 1),
                   st.sampled_from([0, 2 ** 64 - 1]) | st.integers(0, 2 ** 64 - 1))
META = st.fixed_dictionaries({'task': st.text(max_size=10), 'initial_done': st.booleans(),
                              'watermarks': st.dictionaries(st.sampled_from(SIDES), st.integers(0, 2 ** 63)),
                              'journal': st.dictionaries(st.sampled_from(SIDES), st.integers(0, 9999999999))})


@SETTINGS
@given(entries=st.dictionaries(PATHS, VALUES, max_size=30), meta=META, compress=st.booleans())
def test_baseline_round_trip(entries, meta, compress):
    decoded = Baseline.decode(Baseline(dict(entries), meta).encode(compress=compress))
    assert decoded.entries == entries and decoded.meta == meta


@pytest.mark.parametrize('compress', [False, True])
def test_a_large_baseline_round_trips_across_compression_pieces(compress):
    entries = dict(('/task/%06d/%s' % (index, 'n' * 50), base_value(index * 7919, index, 2 ** 64 - 1 - index)) for index in range(4000))
    blob = Baseline(entries, {'initial_done': True}).encode(compress=compress)
    assert len(zlib.decompress(blob) if compress else blob) > 4 * 65536
    assert Baseline.decode(blob).entries == entries


def _legacy_blob(magic, meta, records):
    out = bytearray(magic)
    raw_meta = json.dumps(meta).encode('utf-8')
    out += struct.pack('>I', len(raw_meta)) + raw_meta
    for path, value in records:
        raw = path.encode('utf-8')
        out += struct.pack('>HQ', len(raw), value) + raw
    return bytes(out)


@SETTINGS
@given(entries=st.dictionaries(PATHS, st.integers(0, 2 ** 60 - 1), max_size=20), compress=st.booleans())
def test_a_format_2_baseline_decodes_with_unknown_mzxids(entries, compress):
    """Format 2 held 60-bit hashes only: decoded, each value has the hash and unknown (0) mzxids, so only data is compared."""
    blob = _legacy_blob(b'ZKMB\x02', {'initial_done': True}, sorted(entries.items()))
    decoded = Baseline.decode(zlib.compress(blob) if compress else blob)
    assert decoded.meta == {'initial_done': True}
    assert dict((path, base_hash(value)) for path, value in decoded.entries.items()) == entries
    assert all(base_mzxid(value, side) == 0 for value in decoded.entries.values() for side in SIDES)
    for path, hash_value in entries.items():
        value = decoded.get(path)
        assert not side_changed(NodeState(hash_value, b'', 0, False, 0, 12345), value, SOURCE)
        assert side_changed(NodeState(hash_value ^ 1, b'', 0, False, 0, 12345), value, DESTINATION)


def test_a_format_1_baseline_keeps_the_top_60_bits_of_its_64_bit_hashes():
    blob = _legacy_blob(b'ZKMB\x01', {}, [('/a', 0xFEDCBA9876543210)])
    value = Baseline.decode(blob).get('/a')
    assert value == base_value(0xFEDCBA9876543210 >> 4) and base_mzxid(value, SOURCE) == base_mzxid(value, DESTINATION) == 0


# --------------------------------------------------------------------------
# ReconcileQueue: the full reconcile's mark
# --------------------------------------------------------------------------

def _paths(queue):
    return set(path for path, _first in queue.take(1000, timeout=0))


def test_an_event_after_the_mark_for_a_path_queued_before_it_survives_drop_before():
    queue = ReconcileQueue()
    queue.put('/queued-before-and-again')
    queue.put('/queued-before-only')
    mark = queue.mark()                      # the scan starts: it reads both paths...
    queue.post('/queued-before-and-again')   # ...and then a user writes this one
    queue.post('/new-after')
    queue.drop_before(mark)
    assert _paths(queue) == set(['/new-after', '/queued-before-and-again'])


@SETTINGS
@given(before=st.lists(st.sampled_from('abcdefgh'), unique=True), taken=st.integers(0, 8),
       after=st.lists(st.tuples(st.sampled_from('abcdefghij'), st.booleans())))
def test_drop_before_keeps_exactly_what_was_queued_after_the_mark(before, taken, after):
    """Whatever was queued before the mark, and whatever the worker took meanwhile: what was queued after it stays, the rest goes."""
    queue = ReconcileQueue()
    for path in before:
        queue.put('/' + path)
    mark = queue.mark()
    queue.take(taken, timeout=0) if taken else None
    for path, from_a_watch in after:
        (queue.post if from_a_watch else queue.put)('/' + path)
    queue.drop_before(mark)
    assert _paths(queue) == set('/' + path for path, _watch in after)
    # the last mark is closed: nothing is tracked any more
    assert not queue._queued_again      # pylint: disable=protected-access


def test_a_forgotten_mark_drops_nothing_and_stops_tracking():
    queue = ReconcileQueue()
    queue.put('/a')
    mark = queue.mark()
    queue.post('/a')
    queue.forget_mark(mark)
    assert [path for path, _first in queue.take(10, timeout=0)] == ['/a']
    assert not queue._queued_again      # pylint: disable=protected-access


def test_a_delayed_retry_after_the_mark_survives_drop_before():
    queue = ReconcileQueue()
    queue.put('/p', delay=60.0)          # a write of /p failed (missing parent): retry later
    mark = queue.mark()                  # a full reconcile starts
    queue.put('/p')                      # an event for /p
    assert _paths(queue) == set(['/p'])  # the worker reconciles /p: the merge leaves /p to it (touched)
    queue.put('/p', delay=60.0)          # its write fails again: retry later
    queue.drop_before(mark)
    assert len(queue) == 1               # the retry queued after the mark must survive
