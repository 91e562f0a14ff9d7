# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure sync decisions (``_sync_decide``): the decision table, its properties, and a model of the sync across leader changes.

* the decision table of docs/daemon.md, one case per row;
* properties (Hypothesis, not stateful) of ``decide``, ``decide_subtree``,
  ``replay`` and the baseline values, each stated against an oracle built
  here from the documented contract, not from the implementation;
* the model-based test (Hypothesis, stateful): these functions driven through
  the engine's flow, against two in-memory trees with random writes and
  leader changes (its own section below says what it models and checks).
"""

import contextlib
import os

import pytest
from hypothesis import HealthCheck, assume, event as hypothesis_event, given, settings, strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ansible_collections.zookeeper.migration.plugins.module_utils._sync_baseline import Baseline, data_hash64
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_decide import (
    COPY,
    DELETE,
    DESTINATION,
    DROP,
    IN_SYNC,
    LEFTOVER,
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
    in_sync_value,
    other,
    parent_path,
    replay,
    side_changed,
    written_value,
)
from ansible_collections.zookeeper.migration.plugins.module_utils import _sync_queue

from tests.unit.plugins.module_utils.helpers import SETTINGS

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
# decide: the contract in docs/daemon.md, one case per row
# --------------------------------------------------------------------------

def table_node(data, ephemeral=False, mtime=1000, mzxid=100):
    return NodeState(data_hash64(data), data, 3, ephemeral, mtime, mzxid)


H0 = data_hash64(b'base')


def table_states(src, dst):
    return {SOURCE: src, DESTINATION: dst}


# --------------------------------------------------------------------------
# decide: the contract in docs/daemon.md, one case per row
# --------------------------------------------------------------------------

class TestDecideCommon(object):
    def test_absent_on_both_sides_forgets_the_baseline(self):
        assert decide(table_states(None, None), H0).action == DROP

    def test_equal_data_records_the_baseline(self):
        decision = decide(table_states(table_node(b'x'), table_node(b'x')), None)
        assert decision.action == IN_SYNC and decision.new_hash == data_hash64(b'x')

    @pytest.mark.parametrize('bidirectional', [False, True])
    @pytest.mark.parametrize('src_eph,dst', [(True, None), (True, b'p'), (False, 'eph')])
    def test_ephemerals_are_never_touched(self, bidirectional, src_eph, dst):
        src = table_node(b'e', ephemeral=src_eph)
        dst_node = table_node(b'd', ephemeral=True) if dst == 'eph' else (table_node(dst) if dst else None)
        decision = decide(table_states(src, dst_node), H0, bidirectional=bidirectional)
        assert decision.action == SKIP

    def test_only_on_the_source_never_synced_is_created(self):
        for bidirectional in (False, True):
            decision = decide(table_states(table_node(b'new'), None), None, bidirectional=bidirectional)
            assert (decision.action, decision.target, decision.conflict) == (COPY, DESTINATION, False)


class TestDecideOneWay(object):
    def test_source_change_is_copied(self):
        decision = decide(table_states(table_node(b'new'), table_node(b'base')), H0)
        assert (decision.action, decision.target, decision.conflict) == (COPY, DESTINATION, False)

    def test_destination_drift_is_overwritten_from_the_source(self):
        decision = decide(table_states(table_node(b'base'), table_node(b'drift')), H0)
        assert (decision.action, decision.target) == (COPY, DESTINATION)

    def test_both_changed_source_wins_and_counts_a_conflict(self):
        decision = decide(table_states(table_node(b's'), table_node(b'd')), H0)
        assert (decision.action, decision.target, decision.conflict) == (COPY, DESTINATION, True)

    def test_source_delete_of_a_synced_node_deletes_the_destination(self):
        decision = decide(table_states(None, table_node(b'base')), H0)
        assert (decision.action, decision.target) == (DELETE, DESTINATION)

    def test_source_delete_wins_over_a_destination_change(self):
        decision = decide(table_states(None, table_node(b'changed')), H0)
        assert (decision.action, decision.target) == (DELETE, DESTINATION)

    def test_destination_delete_of_a_synced_node_is_repaired(self):
        decision = decide(table_states(table_node(b'base'), None), H0)
        assert (decision.action, decision.target) == (COPY, DESTINATION)

    def test_destination_only_never_synced_is_left_alone(self):
        decision = decide(table_states(None, table_node(b'old', mzxid=5)), None, replica_watermark=10)
        assert decision.action == LEFTOVER
        decision = decide(table_states(None, table_node(b'new', mzxid=50)), None, replica_watermark=10)
        assert decision.action == LEFTOVER     # one-way never copies back

    def test_destination_only_is_deleted_with_prune(self):
        decision = decide(table_states(None, table_node(b'old')), None, prune=True)
        assert (decision.action, decision.target) == (DELETE, DESTINATION)

    def test_union_copies_destination_only_back(self):
        decision = decide(table_states(None, table_node(b'old')), None, union=True)
        assert (decision.action, decision.target) == (COPY, SOURCE)

    def test_rollback_direction_copies_from_the_destination(self):
        decision = decide(table_states(table_node(b'base'), table_node(b'new')), H0, authority=DESTINATION)
        assert (decision.action, decision.target) == (COPY, SOURCE)
        decision = decide(table_states(table_node(b'base'), None), H0, authority=DESTINATION)
        assert (decision.action, decision.target) == (DELETE, SOURCE)


class TestDecideBidirectional(object):
    def decide(self, src, dst, base=H0, **kwargs):
        kwargs.setdefault('bidirectional', True)
        return decide(table_states(src, dst), base, **kwargs)

    def test_change_on_either_side_flows_to_the_other(self):
        assert (self.decide(table_node(b'new'), table_node(b'base')).target,
                self.decide(table_node(b'base'), table_node(b'new')).target) == (DESTINATION, SOURCE)

    def test_delete_on_either_side_of_a_synced_node_propagates(self):
        decision = self.decide(None, table_node(b'base'))
        assert (decision.action, decision.target, decision.conflict) == (DELETE, DESTINATION, False)
        decision = self.decide(table_node(b'base'), None)
        assert (decision.action, decision.target, decision.conflict) == (DELETE, SOURCE, False)

    def test_new_node_on_the_destination_flows_to_the_source(self):
        decision = self.decide(None, table_node(b'new', mzxid=50), base=None, replica_watermark=10)
        assert (decision.action, decision.target) == (COPY, SOURCE)

    def test_destination_leftover_from_before_the_task_is_not_pushed_to_the_source(self):
        decision = self.decide(None, table_node(b'old', mzxid=5), base=None, replica_watermark=10)
        assert decision.action == LEFTOVER

    @pytest.mark.parametrize('policy,winner', [('source_wins', DESTINATION), ('destination_wins', SOURCE)])
    def test_both_changed_follows_the_policy(self, policy, winner):
        decision = self.decide(table_node(b's'), table_node(b'd'), policy=policy)
        assert (decision.action, decision.target, decision.conflict) == (COPY, winner, True)

    def test_newest_picks_the_later_mtime(self):
        decision = self.decide(table_node(b's', mtime=2000), table_node(b'd', mtime=1000), policy='newest')
        assert decision.target == DESTINATION and decision.conflict
        decision = self.decide(table_node(b's', mtime=1000), table_node(b'd', mtime=2000), policy='newest')
        assert decision.target == SOURCE and decision.conflict

    @pytest.mark.parametrize('policy,action,target', [('source_wins', COPY, DESTINATION), ('destination_wins', DELETE, SOURCE),
                                                      ('newest', COPY, DESTINATION)])
    def test_changed_on_the_source_deleted_on_the_destination(self, policy, action, target):
        decision = self.decide(table_node(b'changed'), None, policy=policy)
        assert (decision.action, decision.target, decision.conflict) == (action, target, True)

    @pytest.mark.parametrize('policy,action,target', [('source_wins', DELETE, DESTINATION), ('destination_wins', COPY, SOURCE),
                                                      ('newest', COPY, SOURCE)])
    def test_deleted_on_the_source_changed_on_the_destination(self, policy, action, target):
        decision = self.decide(None, table_node(b'changed'), policy=policy)
        assert (decision.action, decision.target, decision.conflict) == (action, target, True)

    def test_created_on_both_sides_differently_is_a_conflict_once_streaming(self):
        decision = self.decide(table_node(b's'), table_node(b'd'), base=None, policy='destination_wins')
        assert (decision.action, decision.target, decision.conflict) == (COPY, SOURCE, True)

    def test_initial_sync_is_source_authoritative_without_conflicts(self):
        for src, dst in ((table_node(b's'), table_node(b'd')), (table_node(b'changed'), None)):
            decision = self.decide(src, dst, streaming=False, policy='destination_wins')
            assert (decision.action, decision.target, decision.conflict) == (COPY, DESTINATION, False)
        decision = self.decide(table_node(b's'), table_node(b'd'), base=None, streaming=False, policy='destination_wins')
        assert (decision.action, decision.target, decision.conflict) == (COPY, DESTINATION, False)

    def test_echo_of_our_own_write_is_a_no_op(self):
        # we copied b'new' to the destination and recorded it: the echo event finds both sides equal
        assert self.decide(table_node(b'new'), table_node(b'new'), base=data_hash64(b'new')).action == IN_SYNC


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
# The model: the bidirectional sync across leader changes (Hypothesis, stateful)
# --------------------------------------------------------------------------
#
# The clusters: two in-memory ZooKeeper-like trees (``Cluster``): one zxid
# counter per cluster, per node its data, version, czxid, mzxid and mtime;
# create (parent required), set and delete (refused while the node has
# children), each conditional on a version when asked, grouped in atomic
# multis (all or nothing, one zxid); a watch that reports every path a
# committed write touched.
#
# The engine (``Leader``): only the pure functions the engine is built on
# (``_sync_decide``, ``Baseline``, ``ReconcileQueue``) and a replica of its
# flow (``SyncEngine._process``, ``_settle_subtree``, ``_plan_writes``,
# ``_account``, ``_checkpoint``, ``_load_baseline``/``_replay_journals``,
# ``_start_full_reconcile``/``_merge_full_reconcile``):
#
# * a step takes a batch of paths off the queue (paths whose write is still in
#   flight go back), reads both sides, accounts for the previous batch's
#   writes (landing what has not landed yet), then decides each path;
# * IN_SYNC records ``in_sync_value``, DROP forgets, COPY/DELETE become
#   writes conditional on the version read (creates on the node being
#   absent); a path whose delete meets a change or children on the other side
#   (``structural``) is settled for its whole subtree (``decide_subtree``);
#   per written side, one multi of creates (parents first) and updates, then
#   one of deletes (children first), each creating its journal entry
#   (``written_value`` per path) in the same atomic multi on the cluster it
#   writes;
# * the multis land later, one at a time, with users writing in between; a
#   multi that fails re-queues its paths: at once after losing a race with a
#   user's write (and for the ops rolled back with the failing one), after
#   the retry delay (the queue's delayed re-queue, on a model clock that
#   moves when the model lets time pass) after a missing parent (queued too)
#   or a child in the way (queued too);
# * accounting sets the baseline to ``written_value`` (discards it for a
#   delete) and moves the leader's journal position;
# * a checkpoint copies the baseline (encoded, compressed or not) and the
#   journal positions; when it lands, the journal entries it includes are
#   truncated;
# * a full reconcile marks the queue, reads each whole side (at separate
#   steps), records what is equal, forgets what is gone, queues what differs,
#   leaves alone the paths the worker reconciled meanwhile, and drops what
#   was queued (or delayed) before its mark (``drop_before``);
# * a leader change: the old leader dies (some of its multis may still
#   commit, without ever being accounted for: the write landed, the baseline
#   update did not; the checkpoint it was writing may or may not land); the
#   new leader decodes the last checkpoint, ``replay``\ s every journal
#   entry after its positions on both clusters, and starts with a full
#   reconcile.
#
# Users (bidirectional task, streaming, policy drawn per run): keys ``/s*``
# are only ever written on the source, ``/d*`` only on the destination, and
# ``/x``, ``/x/a``, ``/x/a/b`` on both sides. A user write creates the
# missing ancestors (empty) first, a user delete removes the whole subtree,
# children first, one request at a time. Data comes from a tiny alphabet, so
# A -> B -> A and delete + re-create with the same data happen all the time.
#
# Properties:
#
# * after every step: no conflict was decided on a disjoint key (path or
#   subtree), and the sync never wrote the owner's side of a disjoint key
#   (its node is exactly what the owner last wrote: data and mzxid, or
#   absent);
# * at the end (teardown): drained by events alone (no further full
#   reconcile), both trees are equal; after a final pass queuing every path
#   on either side or in the baseline, both trees are equal, every disjoint
#   key holds its owner's last write on both sides (a key its owner deleted
#   is absent: no resurrection), shared keys are equal, and the baseline
#   holds exactly the paths both sides hold, with their hash.
#
# Some failures need longer exact interleavings than 200 random runs reliably
# reach (an event after the full reconcile's mark, a checkpoint taken while a
# landed write is not accounted for yet, the worker's write racing the
# scan); ``SCENARIOS`` drive the same machine through them.
#
# ``ZKM_MODEL_NO_REPLAY=1`` makes a new leader start from the checkpoint
# alone (the engine before the journal): the test then fails (reverted
# writes, resurrected deletes, conflicts decided in the disjoint spaces).

REPLAY = os.environ.get('ZKM_MODEL_NO_REPLAY') != '1'

SOURCE_KEYS = ('/s0', '/s0/a', '/s1')
DESTINATION_KEYS = ('/d0', '/d0/a')
SHARED_KEYS = ('/x', '/x/a', '/x/a/b')
OWNER = dict([(key, SOURCE) for key in SOURCE_KEYS] + [(key, DESTINATION) for key in DESTINATION_KEYS])
DISJOINT_KEYS = tuple(sorted(OWNER))
ALL_KEYS = frozenset(DISJOINT_KEYS + SHARED_KEYS)
MODEL_DATA = (b'A', b'B', b'')

# How the engine re-queues a failed write (``SyncEngine._account``): at once after losing a race with a user's
# write, after ``retry_delay`` (``queue.put(path, delay=...)``) after a missing parent or a child in the way.
RETRY_NOW = ('version_conflict', 'node_exists')
RETRY_LATER = ('no_node', 'not_empty')
RETRY_DELAY = 1.0
DRAIN_STEPS = 400


def event(text):
    """``hypothesis.event`` (counted in ``--hypothesis-show-statistics``), also outside a Hypothesis run (``SCENARIOS``)."""
    try:
        hypothesis_event(text)
    except InvalidArgument:
        pass


def depth(path):
    return path.count('/')


def ancestors(path):
    """``path``'s ancestors below the root, nearest first."""
    out = []
    path = parent_path(path)
    while path != '/':
        out.append(path)
        path = parent_path(path)
    return out


# --------------------------------------------------------------------------
# The clusters
# --------------------------------------------------------------------------

class Node(object):
    """One znode (immutable: a write replaces it, so a multi can work on a copy of the tree)."""

    __slots__ = ('data', 'version', 'czxid', 'mzxid', 'mtime')

    def __init__(self, data, version, czxid, mzxid, mtime):
        self.data = data
        self.version = version
        self.czxid = czxid
        self.mzxid = mzxid
        self.mtime = mtime


class Cluster(object):
    """Just enough of a ZooKeeper ensemble: a data tree, one zxid counter, atomic multis, the task's journal, a watch."""

    def __init__(self, name, clock):
        self.name = name
        self.clock = clock              # [int]: wall-clock time shared by both clusters (mtime, for ``newest``)
        self.zxid = 0
        self.nodes = {}                 # path -> Node
        self.journal = {}               # sequence number -> [JournalRecord] (the entries j-NNNNNNNNNN)
        self.journal_cversion = 0       # the journal parent's counter: sequence numbers are never reused
        self.watch = None               # the current leader's watch: called with each path a committed write touched

    def children(self, path, nodes=None):
        nodes = self.nodes if nodes is None else nodes
        return sorted(child for child in nodes if parent_path(child) == path)

    def state(self, path):
        node = self.nodes.get(path)
        if node is None:
            return None
        return NodeState(data_hash64(node.data), node.data, node.version, False, node.mtime, node.mzxid, 0, len(self.children(path)))

    def multi(self, ops, records=None):
        """Apply ``ops`` (``(kind, path, data, version)``, version -1: any) atomically, with a journal entry of ``records``.

        Returns ``(None, journal seq or None)`` when the multi committed, else
        ``(index of the failing op, kind)`` and nothing changed.
        """
        nodes = dict(self.nodes)
        zxid = self.zxid + 1
        self.clock[0] += 1
        mtime = self.clock[0]
        for index, (kind, path, data, version) in enumerate(ops):
            node = nodes.get(path)
            if kind == 'create':
                if node is not None:
                    return index, 'node_exists'
                if parent_path(path) != '/' and parent_path(path) not in nodes:
                    return index, 'no_node'
                nodes[path] = Node(data, 0, zxid, zxid, mtime)
                continue
            if node is None:
                return index, 'no_node'
            if version != -1 and version != node.version:
                return index, 'version_conflict'
            if kind == 'set':
                nodes[path] = Node(data, node.version + 1, node.czxid, zxid, mtime)
            else:
                if self.children(path, nodes):
                    return index, 'not_empty'
                del nodes[path]
        self.nodes = nodes
        self.zxid = zxid
        seq = None
        if records is not None:
            self.journal_cversion += 1
            seq = self.journal_cversion
            self.journal[seq] = records
        if self.watch is not None:
            for _kind, path, _data, _version in ops:
                self.watch(path)
        return None, seq

    def tree(self):
        return dict((path, node.data) for path, node in self.nodes.items())


# --------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------

class ModelClock(object):
    """The model's monotonic clock: it moves only when the model lets time pass (``retry_delay_passes``)."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


class ModelQueue(_sync_queue.ReconcileQueue):
    """The engine's ``ReconcileQueue`` (delayed re-queues included) on the model's clock.

    ``_sync_queue`` reads ``time.monotonic()``: each call swaps the module's
    ``time`` for the model clock while it runs (the model is single-threaded).
    """

    def __init__(self, clock):
        self._clock = clock
        super(ModelQueue, self).__init__()

    @contextlib.contextmanager
    def _model_time(self):
        saved = _sync_queue.time
        _sync_queue.time = self._clock
        try:
            yield
        finally:
            _sync_queue.time = saved


def _on_model_time(name):
    method = getattr(_sync_queue.ReconcileQueue, name)

    def call(self, *args, **kwargs):
        with self._model_time():
            return method(self, *args, **kwargs)
    call.__name__ = name
    return call


for _name in ('post', 'put', 'put_many', 'take', 'mark', 'drop_before', 'forget_mark', 'ready_count', 'delayed_count', '__len__'):
    setattr(ModelQueue, _name, _on_model_time(_name))


class Leader(object):
    """One leader of the task: what ``SyncEngine`` holds in memory, driven by the model's rules."""

    def __init__(self, model, epoch):
        self.model = model
        self.clusters = model.clusters
        self.policy = model.policy
        self.epoch = epoch
        self.counter = 0                # the batch counter of the journal order (epoch, counter)
        self.baseline = Baseline()
        self.clock = ModelClock()
        self.queue = ModelQueue(self.clock)
        self.positions = {}             # side -> last journal seq this leader's baseline includes
        self.in_flight = []             # the previous batch's write jobs, one per written side
        self.in_flight_paths = set()
        self.scan = None                # the full reconcile running, if any
        self.touched = None             # paths the worker reconciled since the scan began
        self.pending_checkpoint = None  # (blob, positions) being written

    # -- start: checkpoint + journal replay (_load_baseline, _replay_journals) -------------
    def start(self):
        blob = self.model.store
        if blob is not None:
            self.baseline = Baseline.decode(blob)
        positions = self.baseline.meta.setdefault('journal', {})
        records = []
        for side in SIDES:
            after = positions.get(side)
            cluster = self.clusters[side]
            wanted = sorted(seq for seq in cluster.journal if seq > (after if after is not None else -1))
            for seq in wanted:
                records.extend(cluster.journal[seq])
            self.positions[side] = wanted[-1] if wanted else after
        if REPLAY:
            changed = replay(self.baseline.entries, records)
            if changed:
                event('replay changed the checkpointed baseline')
        for side in SIDES:
            self.clusters[side].watch = self.queue.post
        self.start_full_reconcile()

    # -- one batch (_process) -----------------------------------------------------------
    def process(self, max_paths):
        items = self.queue.take(max_paths, timeout=0)
        if not items:
            self.finish_writes()
            return
        if self.in_flight:
            held = [item for item in items if item[0] in self.in_flight_paths]
            items = [item for item in items if item[0] not in self.in_flight_paths]
            for path, first in held:
                self.queue.put(path, since=first)
            if not items:
                self.finish_writes()
                return
        paths = [path for path, _first in items]
        if self.touched is not None:
            self.touched.update(paths)
        states = dict((side, dict((path, self.clusters[side].state(path)) for path in paths)) for side in SIDES)
        self.finish_writes()           # the previous batch's writes are awaited after this batch's reads went out
        writes = {}
        subtrees = []
        for path in paths:
            pair = {SOURCE: states[SOURCE][path], DESTINATION: states[DESTINATION][path]}
            decision = decide(pair, self.baseline.get(path), authority=SOURCE, bidirectional=True, policy=self.policy,
                              streaming=True, replica_watermark=self.baseline.meta['watermarks'][DESTINATION])
            if decision.action == IN_SYNC:
                self.baseline.set(path, in_sync_value(pair))
            elif decision.action == DROP:
                self.baseline.discard(path)
            elif decision.action in (COPY, DELETE):
                if decision.structural:
                    subtrees.append((path, decision, pair))      # its conflict, if any, is the subtree's
                    continue
                if decision.conflict:
                    self.model.note_conflict(path, decision.reason)
                writes.setdefault(decision.target, []).append((path, decision, pair[other(decision.target)], pair[decision.target]))
            else:
                raise AssertionError('unexpected decision for %s: %r' % (path, decision))
        settled = set()
        plans, pending = {}, {}
        for path, decision, pair in subtrees:
            if path not in settled:
                self.settle_subtree(path, pair, plans, pending, settled)
        for target, items_for_side in writes.items():
            plan = plans.setdefault(target, {'creates': [], 'updates': [], 'deletes': []})
            for path, decision, origin, current in items_for_side:
                if path in settled:
                    continue
                if decision.action == DELETE:
                    plan['deletes'].append((path, current.version))
                elif current is None:
                    plan['creates'].append((path, origin.data))
                else:
                    plan['updates'].append((path, origin.data, current.version))
                pending[(target, path)] = written_value(decision, other(target), origin)
        for side in SIDES:
            if side in plans:
                self.submit(side, plans[side], pending)

    def settle_subtree(self, path, pair, plans, pending, settled):
        """``SyncEngine._settle_subtree``: a delete on one side meeting a change or children on the other, as one decision."""
        kept_on = SOURCE if pair[SOURCE] is not None else DESTINATION
        deleted_on = other(kept_on)
        kept_cluster, deleted_cluster = self.clusters[kept_on], self.clusters[deleted_on]
        root = path
        while True:
            parent = parent_path(root)
            if parent == '/' or parent not in ALL_KEYS or self.baseline.get(parent) is None:
                break
            if parent in deleted_cluster.nodes:
                break
            root = parent
        kept = dict((node, kept_cluster.state(node)) for node in kept_cluster.nodes if node == root or node.startswith(root + '/'))
        if root not in kept:
            self.queue.put(path, delay=RETRY_DELAY)     # the root moved meanwhile: look again
            return
        settled.update(kept)
        outcome = decide_subtree(root, kept_on, kept, self.baseline.get, policy=self.policy,
                                 replica_watermark=self.baseline.meta['watermarks'][DESTINATION], authority=SOURCE)
        event('subtree decision (%s)' % ('conflict' if outcome.conflict else 'no conflict'))
        if outcome.conflict:
            self.model.note_conflict(root, outcome.reason)
        if outcome.recreate:
            plan = plans.setdefault(deleted_on, {'creates': [], 'updates': [], 'deletes': []})
            for node in outcome.recreate:
                state = kept[node]
                plan['creates'].append((node, state.data))
                pending[(deleted_on, node)] = base_value(state.hash, *((state.mzxid, 0) if kept_on == SOURCE else (0, state.mzxid)))
        if outcome.delete:
            plan = plans.setdefault(kept_on, {'creates': [], 'updates': [], 'deletes': []})
            for node in outcome.delete:
                plan['deletes'].append((node, kept[node].version))
                pending[(kept_on, node)] = None

    def submit(self, side, plan, pending):
        """``_submit_apply`` + ``apply_plan``: a multi of creates (parents first) and updates, then one of deletes (children first)."""
        multis = []
        writes = [('create', path, data, -1) for path, data in sorted(plan['creates'], key=lambda item: depth(item[0]))]
        writes += [('set', path, data, version) for path, data, version in plan['updates']]
        deletes = [('delete', path, None, version) for path, version in sorted(plan['deletes'], key=lambda item: -depth(item[0]))]
        for ops in (writes, deletes):
            if ops:
                multis.append({'ops': ops, 'outcome': None})
        values = dict((path, value) for (side_name, path), value in pending.items() if side_name == side)
        self.in_flight.append({'side': side, 'multis': multis, 'values': values})
        self.in_flight_paths.update(op[1] for multi in multis for op in multi['ops'])

    def unlanded(self):
        return [(job, multi) for job in self.in_flight for multi in job['multis'] if multi['outcome'] is None]

    def land(self, job, multi):
        """One multi commits (or fails) on its cluster, with its journal entry."""
        self.counter += 1
        order = (self.epoch, self.counter)
        records = [JournalRecord(order, job['side'], op[1], job['values'].get(op[1])) for op in multi['ops']]
        multi['outcome'] = self.clusters[job['side']].multi(multi['ops'], records)

    def land_next(self, side_choice):
        waiting = self.unlanded()
        sides = [job['side'] for job, _multi in waiting]
        # a side's multis land in the order they were sent; the two sides' writes interleave freely
        pick = waiting[sides.index(side_choice)] if side_choice in sides else waiting[0]
        self.land(*pick)

    def finish_writes(self):
        """``_finish_writes`` + ``_account``: wait for every multi in flight, then account for each path."""
        jobs, self.in_flight, self.in_flight_paths = self.in_flight, [], set()
        for job in jobs:
            for multi in job['multis']:
                if multi['outcome'] is None:
                    self.land(job, multi)
        for job in jobs:
            side = job['side']
            seqs = [multi['outcome'][1] for multi in job['multis'] if multi['outcome'][0] is None]
            if seqs:
                self.positions[side] = max(seqs + [self.positions.get(side) or 0])
            for multi in job['multis']:
                failed_at, kind = multi['outcome']
                for index, (op_kind, path, _data, _version) in enumerate(multi['ops']):
                    if failed_at is None:
                        value = job['values'][path]
                        if value is None:
                            self.baseline.discard(path)
                        else:
                            self.baseline.set(path, value)
                        continue
                    if index != failed_at:
                        self.queue.put(path)     # rolled back with the failing op: retry now
                    elif kind in RETRY_NOW:
                        self.queue.put(path, delay=0.0)     # a user's write won the race: read and decide again
                    else:
                        assert kind in RETRY_LATER, kind
                        self.queue_related(side, op_kind, path)
                        self.queue.put(path, delay=RETRY_DELAY)

    def parked(self):
        return self.queue.delayed_count()

    def retry_delay_passes(self):
        self.clock.now += RETRY_DELAY

    def queue_related(self, side, op_kind, path):
        """``_queue_related``: a create's missing parent, a delete's children."""
        if op_kind == 'create':
            parent = parent_path(path)
            if parent in ALL_KEYS:
                self.queue.put(parent)
        elif op_kind == 'delete' and path in self.clusters[side].nodes:
            self.queue.put_many([child for child in self.clusters[side].children(path) if child in ALL_KEYS])

    # -- checkpoints (_checkpoint, _write_checkpoint, _truncate_journals) ---------------------------
    def checkpoint(self, compress):
        if self.pending_checkpoint is not None:
            return                       # one checkpoint in flight at a time
        self.baseline.meta['journal'] = dict((side, position) for side, position in self.positions.items() if position is not None)
        blob = Baseline(dict(self.baseline.entries), self.baseline.meta).encode(compress=compress)
        self.pending_checkpoint = (blob, dict(self.baseline.meta['journal']))

    def checkpoint_lands(self):
        if self.pending_checkpoint is None:
            return
        blob, positions = self.pending_checkpoint
        self.pending_checkpoint = None
        self.model.store = blob
        for side, position in positions.items():
            journal = self.clusters[side].journal
            for seq in [seq for seq in journal if seq <= position]:
                del journal[seq]

    # -- full reconcile (_start_full_reconcile, _ReconcileScan, _merge_full_reconcile) ---------
    def start_full_reconcile(self):
        if self.scan is not None:
            return
        self.scan = {'mark': self.queue.mark(), 'baseline_paths': sorted(self.baseline.entries), 'trees': {}}
        self.touched = set()

    def scan_reads(self, side):
        """The scan reads one side (the two sides are read at different moments, as the walk does)."""
        self.scan['trees'].setdefault(side, dict((path, self.clusters[side].state(path)) for path in self.clusters[side].nodes))

    def merge_full_reconcile(self):
        scan, touched = self.scan, self.touched
        for side in SIDES:
            self.scan_reads(side)
        self.scan, self.touched = None, None
        trees = scan['trees']
        candidates = set(trees[SOURCE]) | set(trees[DESTINATION]) | set(scan['baseline_paths'])
        equal, gone, queued = [], [], []
        for path in sorted(candidates):
            src, dst = trees[SOURCE].get(path), trees[DESTINATION].get(path)
            if src is None and dst is None:
                if self.baseline.get(path) is not None:
                    gone.append(path)
            elif src is None or dst is None or src.hash != dst.hash:
                queued.append(path)
            else:
                value = base_value(src.hash, src.mzxid, dst.mzxid)
                if self.baseline.get(path) != value:
                    equal.append((path, value))
        self.queue.drop_before(scan['mark'])
        for path, value in equal:
            if path not in touched:
                self.baseline.set(path, value)
        for path in gone:
            if path not in touched:
                self.baseline.discard(path)
        self.queue.put_many(sorted((path for path in queued if path not in touched), key=depth))

    def busy(self):
        return bool(self.queue.ready_count() or self.in_flight or self.scan is not None)


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------

class SyncModel(RuleBasedStateMachine):

    def __init__(self):
        super(SyncModel, self).__init__()
        clock = [0]
        self.clusters = {SOURCE: Cluster(SOURCE, clock), DESTINATION: Cluster(DESTINATION, clock)}
        self.owner_last = dict((key, None) for key in OWNER)      # key -> (data, mzxid) the owner last wrote, None: absent
        self.history = dict((key, []) for key in OWNER)           # key -> the owner's writes, oldest first (None: a delete)
        self.disjoint_conflicts = []
        self.policy = POLICIES[0]
        self.epoch = 1
        self.store = None            # the control store's checkpoint blob
        self.leader = None

    @initialize(policy=st.sampled_from(POLICIES))
    def start_task(self, policy):
        # the task starts on two empty trees: the initial sync is done, every node is new (both watermarks 0)
        self.policy = policy
        self.store = Baseline({}, {'initial_done': True, 'watermarks': {SOURCE: 0, DESTINATION: 0}, 'journal': {}}).encode()
        self.leader = Leader(self, self.epoch)
        self.leader.start()

    def note_conflict(self, path, reason):
        if path in OWNER:
            self.disjoint_conflicts.append((path, reason))
        else:
            event('conflict in the shared space')

    # -- users ---------------------------------------------------------------------------
    def _owner_wrote(self, key, data):
        side = OWNER.get(key)
        history = self.history[key]
        if data is not None and len(history) >= 2 and history[-2] == data and history[-1] not in (None, data):
            event('owner wrote A -> B -> A')
        if data is not None and history and history[-1] is None and len(history) >= 2 and history[-2] == data:
            event('owner deleted and re-created with the same data')
        history.append(data)
        self.owner_last[key] = None if data is None else (data, self.clusters[side].zxid)

    def _write_subtree(self, side, key, data, wrote=None):
        """Create the key (and its missing ancestors, empty) or set it; with ``data`` None, delete its subtree, children first.

        One user request at a time, each an event; ``wrote(path, data)`` is told of each.
        """
        cluster = self.clusters[side]
        if data is None:
            ops = [('delete', path, None, -1) for path in sorted((p for p in cluster.nodes if p == key or p.startswith(key + '/')),
                                                                 key=depth, reverse=True)]
        else:
            ops = [('create', ancestor, b'', -1) for ancestor in reversed(ancestors(key)) if ancestor not in cluster.nodes]
            ops.append(('set' if key in cluster.nodes else 'create', key, data, -1))
        for op in ops:
            failed, _seq = cluster.multi([op])
            assert failed is None, (side, op)
            if wrote is not None:
                wrote(op[1], op[2])

    @rule(key=st.sampled_from(DISJOINT_KEYS), data=st.sampled_from(MODEL_DATA + (None,)))
    def owner_writes(self, key, data):
        """The owner writes (or, data None, deletes) a key of its own space."""
        self._write_subtree(OWNER[key], key, data, self._owner_wrote)

    @rule(side=st.sampled_from(SIDES), key=st.sampled_from(SHARED_KEYS), data=st.sampled_from(MODEL_DATA + (None,)))
    def shared_write(self, side, key, data):
        self._write_subtree(side, key, data)

    # -- the leader ----------------------------------------------------------------------------
    @rule(max_paths=st.integers(1, 4))
    def sync_step(self, max_paths):
        self.leader.process(max_paths)

    @precondition(lambda self: self.leader is not None and self.leader.unlanded())
    @rule(side=st.sampled_from(SIDES))
    def write_lands(self, side):
        self.leader.land_next(side)

    @precondition(lambda self: self.leader is not None and self.leader.in_flight)
    @rule()
    def writes_accounted(self):
        self.leader.finish_writes()

    @precondition(lambda self: self.leader is not None and self.leader.parked())
    @rule()
    def retry_delay_passes(self):
        self.leader.retry_delay_passes()

    @rule(compress=st.booleans(), lands=st.booleans())
    def checkpoint(self, compress, lands):
        """A checkpoint is copied (unless one is still being written); with ``lands``, the one being written lands now."""
        self.leader.checkpoint(compress)
        if lands:
            self.leader.checkpoint_lands()

    @rule(side=st.sampled_from(SIDES))
    def full_reconcile(self, side):
        """One stage of a full reconcile: it starts (the queue's mark), it reads one side then the other, it merges."""
        leader = self.leader
        if leader.scan is None:
            leader.start_full_reconcile()
        elif len(leader.scan['trees']) < 2:
            leader.scan_reads(side if side not in leader.scan['trees'] else other(side))
        else:
            leader.merge_full_reconcile()

    @rule(landed=st.integers(0, 2), checkpoint_landed=st.booleans())
    def leader_changes(self, landed, checkpoint_landed):
        """The leader dies; ``landed`` of its multis in flight commit anyway (never accounted for); a new leader takes over."""
        old = self.leader
        for job, multi in old.unlanded()[:landed]:
            old.land(job, multi)
            if multi['outcome'][0] is None:
                event('leader died after a write landed, before accounting for it')
        if checkpoint_landed and old.pending_checkpoint is not None:
            old.checkpoint_lands()
        for cluster in self.clusters.values():
            cluster.watch = None
        self.epoch += 1              # the fences move: nothing the old leader still has in flight commits
        self.leader = Leader(self, self.epoch)
        self.leader.start()

    # -- properties --------------------------------------------------------------------------
    @invariant()
    def no_conflict_in_disjoint_spaces(self):
        assert not self.disjoint_conflicts, 'a conflict was decided on a disjoint key: %r' % (self.disjoint_conflicts,)

    @invariant()
    def owners_writes_never_undone(self):
        for key, side in OWNER.items():
            node = self.clusters[side].nodes.get(key)
            held = None if node is None else (node.data, node.mzxid)
            assert held == self.owner_last[key], 'the sync wrote %s on its owner side, the %s: it holds %r, the owner wrote %r' % (
                key, side, held, self.owner_last[key])

    def drain(self):
        leader = self.leader
        for _step in range(DRAIN_STEPS):
            if leader.scan is not None:
                leader.merge_full_reconcile()
            if leader.parked() and not leader.busy():
                leader.retry_delay_passes()      # nothing else to do: the delayed re-queues come due (``take`` promotes them)
            if not leader.busy() and not leader.parked():
                return
            leader.process(4)
        raise AssertionError('the sync did not settle in %d steps: queue %d, parked %d, writes in flight %r' % (
            DRAIN_STEPS, leader.queue.ready_count(), leader.parked(), leader.in_flight))

    def assert_converged(self, when):
        src, dst = self.clusters[SOURCE].tree(), self.clusters[DESTINATION].tree()
        assert src == dst, '%s, the trees differ: source %r, destination %r' % (when, src, dst)

    def teardown(self):
        if self.leader is None:
            return
        # quiescence: no more user writes or faults; first the events alone must bring both sides together
        self.drain()
        self.assert_converged('drained by events alone (no further full reconcile)')
        # then a pass over every path on either side or in the baseline
        leader = self.leader
        leader.queue.put_many(sorted(set(self.clusters[SOURCE].nodes) | set(self.clusters[DESTINATION].nodes)
                                     | set(leader.baseline.entries), key=depth))
        self.drain()
        self.assert_converged('after a final full pass')
        for key in OWNER:
            last = self.owner_last[key]
            for side in SIDES:
                node = self.clusters[side].nodes.get(key)
                held = None if node is None else node.data
                assert held == (None if last is None else last[0]), \
                    '%s on the %s holds %r, its owner last wrote %r%s' % (key, side, held, last, ' (resurrected)' if last is None else '')
        present = set(self.clusters[SOURCE].nodes)
        assert set(leader.baseline.entries) == present, 'the baseline tracks %r, both sides hold %r' % (
            sorted(leader.baseline.entries), sorted(present))
        for path in present:
            assert base_hash(leader.baseline.get(path)) == data_hash64(self.clusters[SOURCE].nodes[path].data), path


SyncModel.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None, derandomize=True, database=None,
                                       report_multiple_bugs=False, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestSyncModel = SyncModel.TestCase


# --------------------------------------------------------------------------
# Scenarios: exact interleavings, driven through the same machine
# --------------------------------------------------------------------------

def _steps(*steps):
    return [(name, dict(kwargs)) for name, kwargs in steps]


_START = [('full_reconcile', {'side': SOURCE})] * 3      # the new leader's first full reconcile: mark, reads, merge
_SYNC = [('sync_step', {'max_paths': 4}), ('writes_accounted', {})]

SCENARIOS = {
    # found by Hypothesis with ZKM_MODEL_NO_REPLAY=1: synced after the last checkpoint, deleted, then a failover
    'no resurrection of a delete synced after the last checkpoint': ('source_wins', _steps(
        ('owner_writes', {'key': '/d0', 'data': b'A'}), *_SYNC,
        ('owner_writes', {'key': '/d0', 'data': None}),
        ('leader_changes', {'landed': 0, 'checkpoint_landed': False}), *_START, *_SYNC)),
    # A then B synced after the checkpoint, C written, failover: the replay must keep the last record (B), not the first
    'no revert of a write after two syncs since the last checkpoint': ('destination_wins', _steps(
        ('checkpoint', {'compress': True, 'lands': True}),
        ('owner_writes', {'key': '/s1', 'data': b'A'}), *_SYNC,
        ('owner_writes', {'key': '/s1', 'data': b'B'}), *_SYNC, ('sync_step', {'max_paths': 4}),
        ('owner_writes', {'key': '/s1', 'data': b''}),
        ('leader_changes', {'landed': 0, 'checkpoint_landed': False}), *_START, *_SYNC)),
    # the write landed, the leader died before accounting for it: only its journal entry knows
    'a write that landed but was never accounted for': ('source_wins', _steps(
        *_START, ('owner_writes', {'key': '/d0', 'data': b'A'}), ('sync_step', {'max_paths': 4}),
        ('leader_changes', {'landed': 1, 'checkpoint_landed': False}),
        ('owner_writes', {'key': '/d0', 'data': None}), *_START, *_SYNC)),
    # a checkpoint copied while a landed write waits to be accounted for: its journal position must not include that write
    'a checkpoint taken between a write landing and its accounting': ('source_wins', _steps(
        *_START, ('owner_writes', {'key': '/d0', 'data': b'A'}), ('sync_step', {'max_paths': 4}),
        ('write_lands', {'side': SOURCE}), ('checkpoint', {'compress': False, 'lands': True}),
        ('leader_changes', {'landed': 0, 'checkpoint_landed': True}),
        ('owner_writes', {'key': '/d0', 'data': None}))),
    # the path was queued (the echo) when the full reconcile marked the queue; the owner writes it after the scan read it
    'an event after the full reconcile read the path survives drop_before': ('source_wins', _steps(
        *_START, ('owner_writes', {'key': '/s1', 'data': b'A'}), *_SYNC,
        ('full_reconcile', {'side': SOURCE}), ('full_reconcile', {'side': SOURCE}), ('full_reconcile', {'side': SOURCE}),
        ('owner_writes', {'key': '/s1', 'data': b'B'}),
        ('full_reconcile', {'side': SOURCE}))),
    # the scan read the path equal, then the worker synced a newer write: the merge must not put the scan's older value back
    'the worker beats a full reconcile that read the path earlier': ('destination_wins', _steps(
        *_START, ('owner_writes', {'key': '/s1', 'data': b'A'}), *_SYNC, ('sync_step', {'max_paths': 4}),
        ('full_reconcile', {'side': SOURCE}), ('full_reconcile', {'side': SOURCE}), ('full_reconcile', {'side': SOURCE}),
        ('owner_writes', {'key': '/s1', 'data': b'B'}), *_SYNC,
        ('owner_writes', {'key': '/s1', 'data': b''}),
        ('full_reconcile', {'side': SOURCE}), ('sync_step', {'max_paths': 4}))),
    # a subtree deleted on the source while the destination changed a child: one conflict, settled by the policy
    'a shared subtree deleted on one side, changed on the other': ('newest', _steps(
        ('shared_write', {'side': SOURCE, 'key': '/x/a/b', 'data': b'A'}), *_SYNC, *_SYNC,
        ('shared_write', {'side': SOURCE, 'key': '/x', 'data': None}),
        ('shared_write', {'side': DESTINATION, 'key': '/x/a/b', 'data': b'B'}),
        ('full_reconcile', {'side': SOURCE}), ('full_reconcile', {'side': DESTINATION}), ('full_reconcile', {'side': SOURCE}),
        ('sync_step', {'max_paths': 1}), ('writes_accounted', {}))),
}


@pytest.mark.parametrize('name', sorted(SCENARIOS))
def test_scenario(name):
    policy, steps = SCENARIOS[name]
    machine = SyncModel()
    machine.start_task(policy)
    for rule_name, kwargs in steps:
        getattr(machine, rule_name)(**kwargs)
        machine.no_conflict_in_disjoint_spaces()
        machine.owners_writes_never_undone()
    machine.teardown()
