# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property tests of the sequential-counter arithmetic (``_counters``), against a model of the server's bookkeeping.

The model is what ZooKeeper does (DataTree): a parent counts child creates
(the next sequential suffix) and bumps ``cversion`` on every create and
every delete of a child; clients see ``cversion`` and ``numChildren``.
"""

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.zookeeper.migration.plugins.module_utils import _counters
from ansible_collections.zookeeper.migration.plugins.module_utils._apply import Plan
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError
from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import Node, Snapshot

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None)


class ModelParent(object):
    """A parent znode as the server keeps it."""

    def __init__(self):
        self.creates = 0        # the next sequential suffix
        self.children = 0
        self.cversion = 0

    def create(self):
        suffix = self.creates
        self.creates += 1
        self.children += 1
        self.cversion += 1
        return suffix

    def delete(self):
        if self.children:
            self.children -= 1
            self.cversion += 1

    def raise_pair(self):
        """One throwaway create + delete (what a raise_cversion op sends in one multi)."""
        self.create()
        self.delete()


histories = st.lists(st.sampled_from(['create', 'delete']), max_size=400)


@SETTINGS
@given(histories)
def test_next_suffix_is_the_count_of_creates_whatever_was_deleted(history):
    parent = ModelParent()
    handed = []
    for step in history:
        if step == 'create':
            handed.append(parent.create())
        else:
            parent.delete()
    suffix = _counters.next_suffix(parent.cversion, parent.children)
    assert suffix == parent.creates
    assert all(name < suffix for name in handed)      # nothing handed out is handed out again


@SETTINGS
@given(histories, histories)
def test_raising_the_copy_takes_exactly_the_planned_pairs(source_history, copy_history):
    source, copy = ModelParent(), ModelParent()
    for parent, history in ((source, source_history), (copy, copy_history)):
        for step in history:
            getattr(parent, step)()
    target = _counters.next_suffix(source.cversion, source.children)
    current = _counters.next_suffix(copy.cversion, copy.children)
    pairs = _counters.raise_pairs(current, target)
    expected_cversion = _counters.cversion_after_raise(copy.cversion, copy.children, target)
    for _pair in range(pairs):
        copy.raise_pair()
    assert copy.cversion == expected_cversion
    after = _counters.next_suffix(copy.cversion, copy.children)
    assert after == max(current, target)           # raised to the source's, never lowered
    assert pairs == 0 or after == target           # and not one pair more than needed
    assert copy.create() >= target                 # the copy's next name is new to the source


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 10 ** 6)), max_size=50))
def test_raise_cost_counts_a_create_and_a_delete_per_pair(raises):
    cost = _counters.raise_cost(raises)
    pairs = sum(max(0, target - current) for current, target in raises)
    assert cost['seq_bump_pairs'] == cost['creates'] == cost['deletes'] == pairs
    assert cost['parents'] == sum(1 for current, target in raises if target > current)


@SETTINGS
@given(st.dictionaries(st.sampled_from(['source', 'destination']), st.integers(0, 10 ** 9), max_size=2),
       st.sets(st.sampled_from(['source', 'destination'])))
def test_counter_raises_lift_writable_sides_to_the_highest_and_never_lower(counters, writable):
    raises = _counters.counter_raises(counters, writable)
    after = dict(counters)
    for side, target, current in raises:
        assert side in writable and current == counters[side] and target > current
        after[side] = target
    if len(counters) == 2:
        top = max(counters.values())
        assert all(after[side] == top for side in writable)
    else:
        assert raises == []
    assert all(after[side] >= counters[side] for side in counters)


def node(path, cversion=0, num_children=0, ephemeral_owner=0):
    return Node(path, data=b'', acl=None, version=0, cversion=cversion, aversion=0, ephemeral_owner=ephemeral_owner,
                num_children=num_children)


def snap(*nodes):
    snapshot = Snapshot(['/a'], with_acl=False)
    for item in nodes:
        snapshot.nodes[item.path] = item
    snapshot.recount()
    return snapshot


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 5000)), min_size=1, max_size=12),
       st.sampled_from(['sequential', 'all']))
def test_plan_size_is_the_sum_of_the_gaps_of_carried_parents(gaps, scope):
    # childless parents (ID generators, drained queues): source counter s, copy counter d
    names = ['/a/p%02d' % index for index in range(len(gaps))]
    source = snap(node('/a', num_children=len(gaps), cversion=len(gaps)),
                  *[node(name, cversion=2 * src) for name, (src, _dst) in zip(names, gaps)])
    copy = snap(node('/a', num_children=len(gaps), cversion=len(gaps)),
                *[node(name, cversion=2 * dst) for name, (_src, dst) in zip(names, gaps)])
    plan = Plan()
    _counters.add_counter_raises(plan, source, copy, scope)
    cost = _counters.plan_cost(plan)
    if scope == 'sequential':
        assert cost['seq_bump_pairs'] == 0 and plan.counter_raises == []
    else:
        assert cost['seq_bump_pairs'] == sum(max(0, src - dst) for src, dst in gaps) == plan.estimated_seq_bump_pairs()
        assert cost['parents'] == sum(1 for src, dst in gaps if src > dst)


def test_scope_rules_for_lock_parents_globs_and_created_parents():
    source = snap(node('/a', num_children=3, cversion=3), node('/a/ids', cversion=20),
                  node('/a/locks', num_children=1, cversion=41), node('/a/locks/l-0000000020', ephemeral_owner=9),
                  node('/a/new', cversion=6))
    copy = snap(node('/a', num_children=2, cversion=2), node('/a/ids'), node('/a/locks'))
    plan = Plan()
    plan.create('/a/new')           # a parent the plan creates: counted from 0
    assert _counters.add_counter_raises(plan, source, copy, 'all') == 2
    assert sorted((op.path, op.target, op.current) for op in plan.counter_raises) == [('/a/ids', 10, 0), ('/a/new', 3, 0)]
    plan = Plan()
    assert _counters.add_counter_raises(plan, source, copy, ['/a/lock*']) == 1      # named: lock parents too
    assert [(op.path, op.target, op.current) for op in plan.counter_raises] == [('/a/locks', 21, 0)]


@pytest.mark.parametrize('value, expected', [(None, 'sequential'), ('sequential', 'sequential'), ('all', 'all'),
                                             (['/a/*', '/b', '/a/*'], ['/a/*', '/b'])])
def test_normalize_counters(value, expected):
    assert _counters.normalize_counters(value) == expected


@pytest.mark.parametrize('value, message', [('everything', 'must be sequential or all'), ([], 'non-empty list'),
                                            (['a/b'], r'counters\[0\] must be an absolute path glob'), (5, 'must be sequential')])
def test_normalize_counters_refuses(value, message):
    with pytest.raises(ConfigError, match=message):
        _counters.normalize_counters(value)


def test_counter_stream_notes_the_parents_the_scope_carries():
    stream = _counters.CounterStream('all', lambda path: path.startswith('/a'))
    stream.note(['/a/ids/id-0000000001', '/a/ids/id-0000000002', '/a', '/other/x'])
    assert stream.take() == {'/a/ids'} and stream.pending == set()
    globbed = _counters.CounterStream(['/a/ids'], lambda path: True)
    globbed.note(['/a/ids/x', '/a/queue/y'])
    assert globbed.pending == {'/a/ids'}
    default = _counters.CounterStream(None, lambda path: True)
    default.note(['/a/ids/x'])
    assert not default.active and default.pending == set()
