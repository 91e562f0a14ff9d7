# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the sync engine's pure parts: the decision table, the baseline, the queue."""

import threading
import time

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import SchemaError
from ansible_collections.zookeeper.migration.plugins.module_utils import _sync
from ansible_collections.zookeeper.migration.plugins.module_utils._sync import (
    COPY,
    DELETE,
    DESTINATION,
    DROP,
    IN_SYNC,
    LEFTOVER,
    SKIP,
    SOURCE,
    Baseline,
    NodeState,
    ReconcileQueue,
    decide,
)


def node(data, ephemeral=False, mtime=1000, mzxid=100):
    return NodeState(_sync.data_hash64(data), data, 3, ephemeral, mtime, mzxid)


H0 = _sync.data_hash64(b'base')


def states(src, dst):
    return {SOURCE: src, DESTINATION: dst}


# --------------------------------------------------------------------------
# decide: the contract in docs/daemon.md, one case per row
# --------------------------------------------------------------------------

class TestDecideCommon(object):
    def test_absent_on_both_sides_forgets_the_baseline(self):
        assert decide(states(None, None), H0).action == DROP

    def test_equal_data_records_the_baseline(self):
        decision = decide(states(node(b'x'), node(b'x')), None)
        assert decision.action == IN_SYNC and decision.new_hash == _sync.data_hash64(b'x')

    @pytest.mark.parametrize('bidirectional', [False, True])
    @pytest.mark.parametrize('src_eph,dst', [(True, None), (True, b'p'), (False, 'eph')])
    def test_ephemerals_are_never_touched(self, bidirectional, src_eph, dst):
        src = node(b'e', ephemeral=src_eph)
        dst_node = node(b'd', ephemeral=True) if dst == 'eph' else (node(dst) if dst else None)
        decision = decide(states(src, dst_node), H0, bidirectional=bidirectional)
        assert decision.action == SKIP

    def test_only_on_the_source_never_synced_is_created(self):
        for bidirectional in (False, True):
            decision = decide(states(node(b'new'), None), None, bidirectional=bidirectional)
            assert (decision.action, decision.target, decision.conflict) == (COPY, DESTINATION, False)


class TestDecideOneWay(object):
    def test_source_change_is_copied(self):
        decision = decide(states(node(b'new'), node(b'base')), H0)
        assert (decision.action, decision.target, decision.conflict) == (COPY, DESTINATION, False)

    def test_destination_drift_is_overwritten_from_the_source(self):
        decision = decide(states(node(b'base'), node(b'drift')), H0)
        assert (decision.action, decision.target) == (COPY, DESTINATION)

    def test_both_changed_source_wins_and_counts_a_conflict(self):
        decision = decide(states(node(b's'), node(b'd')), H0)
        assert (decision.action, decision.target, decision.conflict) == (COPY, DESTINATION, True)

    def test_source_delete_of_a_synced_node_deletes_the_destination(self):
        decision = decide(states(None, node(b'base')), H0)
        assert (decision.action, decision.target) == (DELETE, DESTINATION)

    def test_source_delete_wins_over_a_destination_change(self):
        decision = decide(states(None, node(b'changed')), H0)
        assert (decision.action, decision.target) == (DELETE, DESTINATION)

    def test_destination_delete_of_a_synced_node_is_repaired(self):
        decision = decide(states(node(b'base'), None), H0)
        assert (decision.action, decision.target) == (COPY, DESTINATION)

    def test_destination_only_never_synced_is_left_alone(self):
        decision = decide(states(None, node(b'old', mzxid=5)), None, replica_watermark=10)
        assert decision.action == LEFTOVER
        decision = decide(states(None, node(b'new', mzxid=50)), None, replica_watermark=10)
        assert decision.action == LEFTOVER     # one-way never copies back

    def test_destination_only_is_deleted_with_prune(self):
        decision = decide(states(None, node(b'old')), None, prune=True)
        assert (decision.action, decision.target) == (DELETE, DESTINATION)

    def test_union_copies_destination_only_back(self):
        decision = decide(states(None, node(b'old')), None, union=True)
        assert (decision.action, decision.target) == (COPY, SOURCE)

    def test_rollback_direction_copies_from_the_destination(self):
        decision = decide(states(node(b'base'), node(b'new')), H0, authority=DESTINATION)
        assert (decision.action, decision.target) == (COPY, SOURCE)
        decision = decide(states(node(b'base'), None), H0, authority=DESTINATION)
        assert (decision.action, decision.target) == (DELETE, SOURCE)


class TestDecideBidirectional(object):
    def decide(self, src, dst, base=H0, **kwargs):
        kwargs.setdefault('bidirectional', True)
        return decide(states(src, dst), base, **kwargs)

    def test_change_on_either_side_flows_to_the_other(self):
        assert (self.decide(node(b'new'), node(b'base')).target, self.decide(node(b'base'), node(b'new')).target) == (DESTINATION, SOURCE)

    def test_delete_on_either_side_of_a_synced_node_propagates(self):
        decision = self.decide(None, node(b'base'))
        assert (decision.action, decision.target, decision.conflict) == (DELETE, DESTINATION, False)
        decision = self.decide(node(b'base'), None)
        assert (decision.action, decision.target, decision.conflict) == (DELETE, SOURCE, False)

    def test_new_node_on_the_destination_flows_to_the_source(self):
        decision = self.decide(None, node(b'new', mzxid=50), base=None, replica_watermark=10)
        assert (decision.action, decision.target) == (COPY, SOURCE)

    def test_destination_leftover_from_before_the_task_is_not_pushed_to_the_source(self):
        decision = self.decide(None, node(b'old', mzxid=5), base=None, replica_watermark=10)
        assert decision.action == LEFTOVER

    @pytest.mark.parametrize('policy,winner', [('source_wins', DESTINATION), ('destination_wins', SOURCE)])
    def test_both_changed_follows_the_policy(self, policy, winner):
        decision = self.decide(node(b's'), node(b'd'), policy=policy)
        assert (decision.action, decision.target, decision.conflict) == (COPY, winner, True)

    def test_newest_picks_the_later_mtime(self):
        decision = self.decide(node(b's', mtime=2000), node(b'd', mtime=1000), policy='newest')
        assert decision.target == DESTINATION and decision.conflict
        decision = self.decide(node(b's', mtime=1000), node(b'd', mtime=2000), policy='newest')
        assert decision.target == SOURCE and decision.conflict

    @pytest.mark.parametrize('policy,action,target', [('source_wins', COPY, DESTINATION), ('destination_wins', DELETE, SOURCE),
                                                      ('newest', COPY, DESTINATION)])
    def test_changed_on_the_source_deleted_on_the_destination(self, policy, action, target):
        decision = self.decide(node(b'changed'), None, policy=policy)
        assert (decision.action, decision.target, decision.conflict) == (action, target, True)

    @pytest.mark.parametrize('policy,action,target', [('source_wins', DELETE, DESTINATION), ('destination_wins', COPY, SOURCE),
                                                      ('newest', COPY, SOURCE)])
    def test_deleted_on_the_source_changed_on_the_destination(self, policy, action, target):
        decision = self.decide(None, node(b'changed'), policy=policy)
        assert (decision.action, decision.target, decision.conflict) == (action, target, True)

    def test_created_on_both_sides_differently_is_a_conflict_once_streaming(self):
        decision = self.decide(node(b's'), node(b'd'), base=None, policy='destination_wins')
        assert (decision.action, decision.target, decision.conflict) == (COPY, SOURCE, True)

    def test_initial_sync_is_source_authoritative_without_conflicts(self):
        for src, dst in ((node(b's'), node(b'd')), (node(b'changed'), None)):
            decision = self.decide(src, dst, streaming=False, policy='destination_wins')
            assert (decision.action, decision.target, decision.conflict) == (COPY, DESTINATION, False)
        decision = self.decide(node(b's'), node(b'd'), base=None, streaming=False, policy='destination_wins')
        assert (decision.action, decision.target, decision.conflict) == (COPY, DESTINATION, False)

    def test_echo_of_our_own_write_is_a_no_op(self):
        # we copied b'new' to the destination and recorded it: the echo event finds both sides equal
        assert self.decide(node(b'new'), node(b'new'), base=_sync.data_hash64(b'new')).action == IN_SYNC


# --------------------------------------------------------------------------
# Baseline
# --------------------------------------------------------------------------

class TestBaseline(object):
    def test_round_trip_with_meta_and_unicode_paths(self):
        baseline = Baseline({'/a': 1, u'/ünï/cödé': (1 << 64) - 1, '/' + 'x' * 1000: 0}, {'initial_done': True, 'watermarks': {'source': 5}})
        copy = Baseline.decode(baseline.encode())
        assert copy.entries == baseline.entries and copy.meta == baseline.meta

    def test_dirty_only_on_real_changes(self):
        baseline = Baseline()
        baseline.set('/a', 1)
        assert baseline.dirty
        baseline.dirty = False
        baseline.set('/a', 1)
        baseline.discard('/missing')
        assert not baseline.dirty
        baseline.discard('/a')
        assert baseline.dirty and '/a' not in baseline

    @pytest.mark.parametrize('blob', [b'', b'not a baseline', Baseline({'/a': 1}).encode()[:-3], b'ZKMB\x01\x00\x00\x00\x05[1,2]'])
    def test_corrupt_or_foreign_blobs_are_refused(self, blob):
        with pytest.raises(SchemaError):
            Baseline.decode(blob)

    def test_hash64_matches_snapshot_hashes(self):
        from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import hash_data
        for data in (b'', b'x', bytes(range(256)) * 10):
            assert _sync.hash64(hash_data(data)) == _sync.data_hash64(data)


# --------------------------------------------------------------------------
# ReconcileQueue
# --------------------------------------------------------------------------

class TestReconcileQueue(object):
    def test_coalesces_and_keeps_first_enqueue_order(self):
        queue = ReconcileQueue()
        for path in ('/a', '/b', '/a', '/c', '/b'):
            queue.put(path)
        assert [path for path, _t in queue.take(10, timeout=0)] == ['/a', '/b', '/c']
        assert queue.take(10, timeout=0) == []

    def test_take_is_bounded(self):
        queue = ReconcileQueue()
        queue.put_many(['/%d' % i for i in range(10)])
        assert len(queue.take(4, timeout=0)) == 4 and len(queue) == 6

    def test_delayed_paths_wait_their_turn(self):
        queue = ReconcileQueue()
        queue.put('/later', delay=0.2)
        queue.put('/now')
        assert [p for p, _t in queue.take(10, timeout=0)] == ['/now']
        assert queue.take(10, timeout=0) == []
        assert [p for p, _t in queue.take(10, timeout=2.0)] == ['/later']

    def test_a_ready_path_is_not_also_delayed(self):
        queue = ReconcileQueue()
        queue.put('/a')
        queue.put('/a', delay=5)
        assert len(queue) == 1

    def test_drop_before_a_mark(self):
        queue = ReconcileQueue()
        queue.put('/old')
        queue.put('/old-delayed', delay=10)
        mark = queue.mark()
        queue.put('/new')
        assert queue.drop_before(mark) == 2
        assert [p for p, _t in queue.take(10, timeout=0)] == ['/new']

    def test_requeue_keeps_the_original_enqueue_time(self):
        queue = ReconcileQueue()
        queue.put('/a', since=time.monotonic() - 5)
        assert queue.oldest_age() >= 5

    def test_take_wakes_up_on_put_from_another_thread(self):
        queue = ReconcileQueue()
        timer = threading.Timer(0.05, queue.put, args=('/x',))
        timer.start()
        assert [p for p, _t in queue.take(1, timeout=5)] == ['/x']
        timer.join()


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def test_node_type_rules_first_match_wins():
    rules = _sync.NodeTypeRules([{'pattern': '/a/locks/*', 'type': 'container'}, {'pattern': '/a/*', 'type': 'ttl', 'ttl_ms': 5000}])
    assert rules.match('/a/locks/x') == ('container', None)
    assert rules.match('/a/other') == ('ttl', 5000)
    assert rules.match('/b') == ('persistent', None)


def test_acl_tuple_accepts_kazoo_acls_and_tuples():
    from kazoo.security import ACL, Id
    assert _sync.acl_tuple([ACL(31, Id('world', 'anyone'))]) == ((31, 'world', 'anyone'),)
    assert _sync.acl_tuple([(1, 'digest', 'u:h')]) == ((1, 'digest', 'u:h'),)
    assert _sync.acl_tuple(None) is None


class _FakeClock(object):
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def monotonic(self):
        return self.now

    def wait(self, seconds):
        self.slept.append(seconds)
        self.now += seconds
        return False


def test_rate_limiter_paces_writes(monkeypatch):
    clock = _FakeClock()
    monkeypatch.setattr(_sync.time, 'monotonic', clock.monotonic)
    limiter = _sync._RateLimiter(100)
    for _batch in range(10):
        limiter.acquire(50, stop_event=clock)
    # 500 writes at 100/s with one second of burst: about 4 seconds of waiting
    assert 3.9 <= sum(clock.slept) <= 4.1
    unlimited = _sync._RateLimiter(0)
    unlimited.acquire(10 ** 6, stop_event=clock)
    assert 3.9 <= sum(clock.slept) <= 4.1
