# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model-based test of the bidirectional sync's decisions across leader changes (Hypothesis, stateful).

Two in-memory clusters (zxids, versions, mzxids) and a model of the engine
built from the pure functions the engine uses (``_sync_decide``): a sync
step reads a path on both sides and decides; its write lands later, only if
the target did not change meanwhile (the engine's writes are conditional),
atomically with a journal record on the cluster it writes; checkpoints copy
the baseline and the journal positions; a leader change throws the
in-memory baseline away (sometimes right after a write landed and before it
was accounted for) and restarts from the checkpoint plus ``replay``.

Users write disjoint key spaces (``s*`` only on the source, ``d*`` only on
the destination) with data from a tiny alphabet, so A -> B -> A and
delete + re-create with the same data happen often, and a shared key
written on both sides. Properties: in the disjoint spaces the sync never
decides a conflict and never changes a key on its owner's side; at the end
both sides hold what each owner last wrote, and shared keys are equal.

``ZKM_MODEL_NO_REPLAY=1`` makes a new leader start from the checkpoint
alone (the engine before the journal): the test then fails.
"""

import os

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ansible_collections.zookeeper.migration.plugins.module_utils._sync_baseline import data_hash64
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_decide import (
    COPY,
    DELETE,
    DESTINATION,
    DROP,
    IN_SYNC,
    POLICIES,
    SOURCE,
    JournalRecord,
    NodeState,
    decide,
    in_sync_value,
    other,
    replay,
    written_value,
)

REPLAY = os.environ.get('ZKM_MODEL_NO_REPLAY') != '1'
OWNED = {'s0': SOURCE, 's1': SOURCE, 'd0': DESTINATION, 'd1': DESTINATION}
KEYS = sorted(OWNED) + ['shared']
DATA = [b'A', b'B', b'']


class Cluster(object):
    """Just enough of a ZooKeeper data tree: one level of keys, zxids, versions."""

    def __init__(self):
        self.zxid = 0
        self.nodes = {}      # key -> [data, version, mzxid]

    def state(self, key):
        node = self.nodes.get(key)
        if node is None:
            return None
        return NodeState(data_hash64(node[0]), node[0], node[1], False, node[2], node[2])

    def write(self, key, data):
        self.zxid += 1
        node = self.nodes.get(key)
        self.nodes[key] = [data, 0 if node is None else node[1] + 1, self.zxid]

    def delete(self, key):
        self.zxid += 1
        self.nodes.pop(key, None)


class SyncModel(RuleBasedStateMachine):

    def __init__(self):
        super(SyncModel, self).__init__()
        self.clusters = {SOURCE: Cluster(), DESTINATION: Cluster()}
        self.owner_last = dict((key, None) for key in OWNED)     # what each owner last wrote (None: absent)
        self.policy = 'source_wins'
        self.epoch = 1
        self.counter = 0
        self.baseline = {}
        self.checkpoint = ({}, {SOURCE: 0, DESTINATION: 0})
        self.journal = {SOURCE: [], DESTINATION: []}            # [(seq, JournalRecord)]
        self.pending = []                                        # decided writes not yet landed
        self.disjoint_conflicts = []

    @rule(policy=st.sampled_from(POLICIES))
    def choose_policy(self, policy):
        self.policy = policy

    # -- users ---------------------------------------------------------------
    @rule(key=st.sampled_from(sorted(OWNED)), data=st.sampled_from(DATA), delete=st.booleans())
    def owner_writes(self, key, data, delete):
        cluster = self.clusters[OWNED[key]]
        if delete and key in cluster.nodes:
            cluster.delete(key)
            self.owner_last[key] = None
        else:
            cluster.write(key, data)
            self.owner_last[key] = data

    @rule(side=st.sampled_from([SOURCE, DESTINATION]), data=st.sampled_from(DATA), delete=st.booleans())
    def shared_write(self, side, data, delete):
        cluster = self.clusters[side]
        if delete and 'shared' in cluster.nodes:
            cluster.delete('shared')
        else:
            cluster.write('shared', data)

    # -- the leader ------------------------------------------------------------
    def _states(self, key):
        return dict((side, cluster.state(key)) for side, cluster in self.clusters.items())

    @rule(key=st.sampled_from(KEYS))
    def sync_reads_and_decides(self, key):
        if any(item[0] == key for item in self.pending):
            return           # the engine holds a path back while a write of it is in flight
        states = self._states(key)
        decision = decide(states, self.baseline.get(key), authority=SOURCE, bidirectional=True, policy=self.policy,
                          streaming=True, replica_watermark=0)
        if decision.conflict and key in OWNED:
            self.disjoint_conflicts.append((key, decision.reason))
        if decision.action == IN_SYNC:
            self.baseline[key] = in_sync_value(states)
        elif decision.action == DROP:
            self.baseline.pop(key, None)
        elif decision.action in (COPY, DELETE):
            target = decision.target
            origin_side = other(target)
            expected = states[target]
            self.pending.append((key, decision, target, expected, states[origin_side],
                                 written_value(decision, origin_side, states[origin_side])))

    def _land(self, item):
        """The conditional write and its journal record, atomically; False when the target changed since it was read."""
        key, decision, target, expected, origin, value = item
        current = self.clusters[target].state(key)
        if (current is None) != (expected is None) or (current is not None and current.version != expected.version):
            return False
        if decision.action == DELETE:
            self.clusters[target].delete(key)
        else:
            self.clusters[target].write(key, origin.data)
        self.counter += 1
        seq = len(self.journal[target]) + 1
        self.journal[target].append((seq, JournalRecord((self.epoch, self.counter), target, key, value)))
        return True

    @precondition(lambda self: self.pending)
    @rule(index=st.integers(min_value=0, max_value=3))
    def write_lands(self, index):
        item = self.pending.pop(index % len(self.pending))
        if self._land(item):
            key, value = item[0], item[5]
            if value is None:
                self.baseline.pop(key, None)
            else:
                self.baseline[key] = value

    @rule()
    def checkpoint_written(self):
        # every landed write is accounted for here (the engine accounts a side's writes in the order it sent them)
        self.checkpoint = (dict(self.baseline), dict((side, len(entries)) for side, entries in self.journal.items()))

    @rule(land_first=st.booleans())
    def leader_changes(self, land_first):
        if land_first and self.pending:
            self._land(self.pending[0])      # the old leader's last multi committed; it died before accounting for it
        self.pending = []
        entries, positions = self.checkpoint
        self.baseline = dict(entries)
        self.epoch += 1
        self.counter = 0
        if REPLAY:
            replay(self.baseline, [record for side, journal in self.journal.items() for seq, record in journal
                                   if seq > positions[side]])

    # -- properties ------------------------------------------------------------
    @invariant()
    def owners_writes_never_undone(self):
        for key, side in OWNED.items():
            node = self.clusters[side].nodes.get(key)
            held = None if node is None else node[0]
            assert held == self.owner_last[key], 'the sync changed %s on its owner side %s: %r, owner wrote %r' % (
                key, side, held, self.owner_last[key])

    @invariant()
    def no_conflict_in_disjoint_spaces(self):
        assert not self.disjoint_conflicts, self.disjoint_conflicts

    def teardown(self):
        # quiesce: no more user writes or faults; the leader reconciles every key until nothing is left to do
        for _round in range(6):
            for key in KEYS:
                self.sync_reads_and_decides(key)
            while self.pending:
                self.write_lands(0)
        for key in KEYS:
            src, dst = self.clusters[SOURCE].nodes.get(key), self.clusters[DESTINATION].nodes.get(key)
            assert (src and src[0]) == (dst and dst[0]) and (src is None) == (dst is None), 'not converged on %s' % key
            if key in OWNED:
                assert (src[0] if src else None) == self.owner_last[key], 'no resurrection, nothing lost: %s' % key


SyncModel.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None, derandomize=True, database=None,
                                       suppress_health_check=[HealthCheck.too_slow])
TestSyncModel = SyncModel.TestCase
