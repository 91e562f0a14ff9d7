# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Properties of the pure sync decisions (_sync_decide) and of the reconcile queue's full-reconcile mark."""

from hypothesis import given, settings, strategies as st

from ansible_collections.zookeeper.migration.plugins.module_utils._sync_baseline import data_hash64
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_decide import (
    COPY,
    DELETE,
    DESTINATION,
    IN_SYNC,
    SOURCE,
    JournalRecord,
    NodeState,
    base_hash,
    base_mzxid,
    base_value,
    decide,
    decide_subtree,
    replay,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_queue import ReconcileQueue

DATA = st.sampled_from([b'A', b'B', b'C', b''])
SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None)


def node(data, mzxid, ephemeral=False, children=0, version=0):
    return NodeState(data_hash64(data), data, version, ephemeral, mzxid, mzxid, num_children=children)


@SETTINGS
@given(st.integers(0, 2 ** 60 - 1), st.integers(0, 2 ** 64 - 1), st.integers(0, 2 ** 64 - 1))
def test_baseline_values_pack_and_unpack(hash_value, source_mzxid, destination_mzxid):
    value = base_value(hash_value, source_mzxid, destination_mzxid)
    assert (base_hash(value), base_mzxid(value, SOURCE), base_mzxid(value, DESTINATION)) == (hash_value, source_mzxid, destination_mzxid)


@SETTINGS
@given(DATA, DATA, st.sampled_from(['source_wins', 'destination_wins', 'newest']), st.booleans())
def test_one_side_changed_since_the_baseline_is_never_a_conflict(base_data, new_data, policy, changed_on_source):
    """Whatever the data (A -> B -> A included), a change on one side since the baseline is copied to the other."""
    base = base_value(data_hash64(base_data), 10, 20)
    src, dst = node(base_data, 10), node(base_data, 20)
    if changed_on_source:
        src = node(new_data, 11)
    else:
        dst = node(new_data, 21)
    decision = decide({SOURCE: src, DESTINATION: dst}, base, bidirectional=True, policy=policy)
    assert not decision.conflict
    if new_data == base_data:
        assert decision.action == IN_SYNC
    else:
        assert decision.action == COPY and decision.target == (DESTINATION if changed_on_source else SOURCE)


def test_a_change_back_to_the_baseline_data_still_counts_as_a_change():
    """A -> B -> A on the source while the destination changed: both changed, the policy decides (hash-only saw none)."""
    base = base_value(data_hash64(b'A'), 10, 20)
    states = {SOURCE: node(b'A', 12), DESTINATION: node(b'C', 21)}
    decision = decide(states, base, bidirectional=True, policy='source_wins')
    assert decision.conflict and decision.action == COPY and decision.target == DESTINATION
    hash_only = decide(states, data_hash64(b'A'), bidirectional=True, policy='source_wins')
    assert not hash_only.conflict and hash_only.target == SOURCE     # what a hash-only baseline decided


def test_a_delete_and_re_create_with_the_same_data_against_a_delete_is_a_change():
    base = base_value(data_hash64(b'A'), 10, 20)
    decision = decide({SOURCE: node(b'A', 15), DESTINATION: None}, base, bidirectional=True, policy='source_wins')
    assert decision.conflict and decision.structural and decision.action == COPY and decision.target == DESTINATION


def test_a_plain_delete_of_a_parent_is_structural_only_when_it_has_children():
    base = base_value(data_hash64(b'A'), 10, 20)
    leaf = decide({SOURCE: node(b'A', 10), DESTINATION: None}, base, bidirectional=True)
    parent = decide({SOURCE: node(b'A', 10, children=2), DESTINATION: None}, base, bidirectional=True)
    assert leaf.action == parent.action == DELETE and leaf.target == SOURCE
    assert not leaf.structural and parent.structural and not parent.conflict


# --------------------------------------------------------------------------
# subtrees
# --------------------------------------------------------------------------

TREE = ['/a', '/a/b', '/a/b/c', '/a/d', '/a/e']


@SETTINGS
@given(st.sets(st.sampled_from(TREE)), st.sets(st.sampled_from(TREE[1:])), st.sampled_from(['source_wins', 'destination_wins', 'newest']),
       st.sampled_from([SOURCE, DESTINATION]))
def test_subtree_decisions(changed, ephemeral, policy, kept_on):
    ephemeral = set(path for path in ephemeral if not any(other.startswith(path + '/') for other in TREE))   # leaves only
    kept = {}
    baseline = {}
    for index, path in enumerate(TREE):
        baseline[path] = base_value(data_hash64(b'old'), 100 + index, 200 + index) if path not in ephemeral else None
        mzxid = (100 if kept_on == SOURCE else 200) + index
        kept[path] = node(b'new' if path in changed else b'old', mzxid + (1000 if path in changed else 0), ephemeral=path in ephemeral)
    outcome = decide_subtree('/a', kept_on, kept, baseline.get, policy=policy)
    real_changes = set(changed) - ephemeral
    deleting = DESTINATION if kept_on == SOURCE else SOURCE
    change_wins = policy == 'newest' or policy != '%s_wins' % deleting
    assert outcome.conflict == bool(real_changes)
    pinned = set(ephemeral)
    for path in ephemeral:
        while path != '/a':
            path = path.rpartition('/')[0] or '/'
            pinned.add(path)
    if real_changes and change_wins:
        needed = set()
        for path in real_changes:
            while True:
                needed.add(path)
                if path == '/a':
                    break
                path = path.rpartition('/')[0]
        assert set(outcome.recreate) == needed
        assert set(outcome.delete) == set(TREE) - needed - pinned
    else:
        assert outcome.recreate == []
        assert set(outcome.delete) == set(TREE) - pinned
    # parents before children when re-creating, children before parents when deleting
    assert outcome.recreate == sorted(outcome.recreate, key=lambda p: p.count('/'))
    assert outcome.delete == sorted(outcome.delete, key=lambda p: -p.count('/'))
    assert not set(outcome.delete) & ephemeral and not set(outcome.recreate) & ephemeral


def test_a_new_node_under_a_deleted_subtree_is_a_change_and_a_leftover_is_not():
    """On the authority side a node never synced is a change (the sync copies it); on the replica one from before the task is a leftover."""
    kept = {'/a': node(b'x', 10), '/a/new': node(b'n', 50), '/a/old': node(b'o', 5)}
    baseline = {'/a': base_value(data_hash64(b'x'), 10, 0)}
    outcome = decide_subtree('/a', SOURCE, kept, baseline.get, policy='newest', replica_watermark=20, authority=SOURCE)
    assert outcome.conflict and outcome.recreate == ['/a', '/a/new', '/a/old']
    replica = decide_subtree('/a', DESTINATION, {'/a': node(b'x', 10), '/a/old': node(b'o', 5)}, baseline.get,
                             policy='source_wins', replica_watermark=20, authority=SOURCE)
    assert not replica.conflict and replica.delete == [] and replica.left == ['/a', '/a/old']


# --------------------------------------------------------------------------
# journal replay
# --------------------------------------------------------------------------

@SETTINGS
@given(st.lists(st.tuples(st.integers(1, 3), st.integers(1, 20), st.sampled_from(['/x', '/y']), st.one_of(st.none(), st.integers(1, 9))),
                max_size=20, unique_by=lambda r: (r[0], r[1])), st.randoms())
def test_replay_keeps_the_last_write_per_path_whatever_the_input_order(raw, rng):
    records = [JournalRecord((epoch, counter), SOURCE, path, value) for epoch, counter, path, value in raw]
    expected = {'/x': 100, '/y': 200}
    for record in sorted(records, key=lambda r: r.order):
        if record.value is None:
            expected.pop(record.path, None)
        else:
            expected[record.path] = record.value
    shuffled = list(records)
    rng.shuffle(shuffled)
    entries = {'/x': 100, '/y': 200}
    replay(entries, shuffled)
    assert entries == expected


# --------------------------------------------------------------------------
# the full reconcile's mark
# --------------------------------------------------------------------------

def test_an_event_after_the_mark_for_a_path_queued_before_it_survives_drop_before():
    queue = ReconcileQueue()
    queue.put('/queued-before-and-again')
    queue.put('/queued-before-only')
    mark = queue.mark()                      # the scan starts: it reads both paths...
    queue.post('/queued-before-and-again')   # ...and then a user writes this one
    queue.post('/new-after')
    queue.drop_before(mark)
    assert sorted(path for path, _first in queue.take(10, timeout=0)) == ['/new-after', '/queued-before-and-again']


def test_a_forgotten_mark_drops_nothing_and_stops_tracking():
    queue = ReconcileQueue()
    queue.put('/a')
    mark = queue.mark()
    queue.post('/a')
    queue.forget_mark(mark)
    assert [path for path, _first in queue.take(10, timeout=0)] == ['/a']
    assert not queue._queued_again      # pylint: disable=protected-access
