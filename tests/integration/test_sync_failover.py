# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bidirectional safety against real daemons and servers: leader changes, subtree conflicts, unreadable znodes.

The failover tests replay the two traces measured before the sync journal
existed (docs/daemon.md, "Failover"): a new leader that started from the
last checkpoint alone reverted an acknowledged update and resurrected an
acknowledged delete. The leader is frozen right after it synced a write,
the next write lands, and the leader is killed: whatever it did since the
checkpoint is known to its successor only through the journal.
"""

import time

import pytest
from kazoo.security import make_digest_acl

from tests.integration.sync_support import wait_for

pytestmark = pytest.mark.integration

# No periodic checkpoint or reconcile while a test runs: a successor knows only the initial sync's checkpoint.
NO_CHECKPOINT = {'checkpoint_interval': 600, 'full_reconcile_interval': 0}


def _conflict_lines(daemon):
    return [record for record in daemon.log_records() if record.get('event') == 'conflict']


def _hold(predicate, seconds=1.5, what='condition'):
    """``predicate`` stays true for ``seconds`` (a revert would show up within that time)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), what
        time.sleep(0.05)


def _hand_over(env, first, **settings):
    """Kill ``first`` (frozen) and start a successor; returns it once it streams."""
    first.kill()
    second = env.daemon('d2', **settings)
    env.streaming(leader='d2', timeout=30.0)
    return second


def test_successor_keeps_an_update_synced_after_the_checkpoint(sync_env):
    env = sync_env
    src, dst, key = env.src, env.dst, env.base + '/k'
    src.create(key, b'v1')
    env.put_task(mode='bidirectional')
    first = env.daemon('d1', **NO_CHECKPOINT)
    env.streaming(leader='d1')
    env.in_sync()
    dst.set(key, b'v2')
    wait_for(lambda: src.get(key)[0] == b'v2', what='v2 copied to the source')
    first.freeze()
    dst.set(key, b'v3')          # acknowledged on the destination; the frozen leader never sees it
    second = _hand_over(env, first, **NO_CHECKPOINT)
    wait_for(lambda: src.get(key)[0] == b'v3', timeout=10.0, what='v3 copied to the source by the successor')
    _hold(lambda: dst.get(key)[0] == b'v3' and src.get(key)[0] == b'v3', what='v3 kept on both sides')
    assert _conflict_lines(second) == []
    assert 'replayed' in second.log_text()


def test_successor_does_not_resurrect_a_delete_synced_after_the_checkpoint(sync_env):
    env = sync_env
    src, dst, key = env.src, env.dst, env.base + '/k'
    env.put_task(mode='bidirectional')
    first = env.daemon('d1', **NO_CHECKPOINT)
    env.streaming(leader='d1')
    dst.create(key, b'created on the destination')
    wait_for(lambda: src.exists(key) is not None, what='the create copied to the source')
    first.freeze()
    dst.delete(key)              # acknowledged; the frozen leader never sees it
    second = _hand_over(env, first, **NO_CHECKPOINT)
    wait_for(lambda: src.exists(key) is None, timeout=10.0, what='the delete copied to the source by the successor')
    _hold(lambda: dst.exists(key) is None and src.exists(key) is None, what='the key stays deleted on both sides')
    assert _conflict_lines(second) == []


def test_thawed_ex_leader_writes_nothing_and_does_not_fence_the_successor(sync_env):
    env = sync_env
    src, base = env.src, env.base
    env.put_task(mode='bidirectional')
    first = env.daemon('d1')
    env.streaming(leader='d1')
    first.freeze()
    time.sleep(6.0)              # past the 4 s session timeout: d1's sessions expire, d2 takes over
    second = env.daemon('d2')
    env.streaming(leader='d2', timeout=30.0)
    first.thaw()
    for index in range(20):
        src.create('%s/after-%02d' % (base, index), b'x')
    tree = env.in_sync(timeout=20.0)
    assert len([path for path in tree if '/after-' in path]) == 20
    time.sleep(2.0)
    assert env.status().get('leader') == 'd2', 'the thawed ex-leader took the task back or stopped the successor'
    assert 'fenced' not in second.log_text()


# --------------------------------------------------------------------------
# A subtree deleted on one side while a node under it changes on the other
# --------------------------------------------------------------------------

@pytest.mark.parametrize('policy', ['source_wins', 'destination_wins', 'newest'])
@pytest.mark.parametrize('deleting_side', ['source', 'destination'])
def test_subtree_delete_against_child_change_converges_with_one_conflict(sync_env, deleting_side, policy):
    env = sync_env
    base = env.base
    clients = {'source': env.src, 'destination': env.dst}
    deleting = clients[deleting_side]
    changing = clients['destination' if deleting_side == 'source' else 'source']
    env.src.create(base + '/a/b', b'before', makepath=True)
    env.src.create(base + '/a/c', b'sibling', makepath=True)
    env.put_task(mode='bidirectional', conflict=policy)
    daemon = env.daemon('d1')
    env.streaming(leader='d1')
    env.in_sync()
    daemon.freeze()               # both changes land before the leader sees either (well within the session timeout)
    deleting.delete(base + '/a', recursive=True)
    changing.set(base + '/a/b', b'changed')
    daemon.thaw()
    started = time.monotonic()
    tree = env.in_sync(timeout=5.0)
    converged = time.monotonic() - started
    change_wins = policy == 'newest' or policy != '%s_wins' % deleting_side
    if change_wins:
        assert tree.get(base + '/a/b') == b'changed'
        assert base + '/a/c' not in tree, 'the unchanged sibling stays deleted'
    else:
        assert base + '/a' not in tree and base + '/a/b' not in tree
    time.sleep(1.0)
    conflicts = _conflict_lines(daemon)
    assert len(conflicts) == 1, conflicts
    assert conflicts[0]['path'] == base + '/a'
    print('converged in %.2fs, conflict: %s' % (converged, conflicts[0]['msg']))


# --------------------------------------------------------------------------
# A znode the migrator cannot read
# --------------------------------------------------------------------------

@pytest.mark.parametrize('side', ['source', 'destination'])
def test_unreadable_znode_is_parked_and_every_other_path_keeps_syncing(sync_env, side):
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    owner, other = (src, dst) if side == 'source' else (dst, src)
    secret = base + '/secret'
    app_only = [make_digest_acl('app', 'app-password', all=True)]
    owner.ensure_path(base)
    owner.create(secret, b'the application\'s', acl=app_only)   # on one side only; the migrator cannot read it
    src.create(base + '/before', b'x')
    env.put_task(mode='bidirectional')
    env.daemon('d1')
    env.streaming(leader='d1', timeout=30.0)     # the initial sync ends despite it
    latencies = []
    for index in range(20):
        path = '%s/live-%02d' % (base, index)
        written = time.monotonic()
        src.create(path, b'v')
        wait_for(lambda p=path: dst.exists(p) is not None, timeout=5.0, interval=0.01, what='%s on the destination' % path)
        latencies.append(time.monotonic() - written)
    assert max(latencies) < 1.0, latencies
    dst.create(base + '/from-destination', b'w')
    wait_for(lambda: src.exists(base + '/from-destination') is not None, timeout=2.0, interval=0.01,
             what='a destination write on the source')

    def stuck():
        details = env.status().get('details') or {}
        return [entry for entry in details.get('stuck_paths') or () if entry['path'] == secret] or None
    entry = wait_for(stuck, timeout=15.0, what='the unreadable path listed in the status')[0]
    assert entry['kind'] == 'auth' and entry['failures'] >= 1
    assert other.exists(secret) is None
    assert (env.status().get('details') or {}).get('stuck_paths_count') == 1


def test_a_task_deleted_and_created_again_under_its_name_starts_and_replays_nothing_old(sync_env):
    """The fences and journals on the data clusters outlive a deleted task: its successor must neither be fenced out
    (its election starts again at sequence 0) nor replay the old task's journal."""
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    env.put_task(mode='bidirectional')
    first = env.daemon('d1', **NO_CHECKPOINT)
    env.streaming(leader='d1')
    first.stop()
    again = env.daemon('d1b', **NO_CHECKPOINT)      # a second leadership: the fences record a higher epoch
    env.streaming(leader='d1b')
    for index in range(5):
        dst.create('%s/old-%d' % (base, index), b'x')
    env.in_sync()          # copied to the source: journalled there, after the last checkpoint
    again.kill()
    env.store.delete_task(env.task, force=True)
    for index in range(5):
        src.delete('%s/old-%d' % (base, index))
    env.put_task(mode='bidirectional')
    second = env.daemon('d2')
    env.streaming(leader='d2', timeout=30.0)
    src.create(base + '/new', b'z')
    wait_for(lambda: dst.exists(base + '/new') is not None, timeout=10.0, what='the new task syncing')
    time.sleep(1.0)
    # only on the destination before the new task: leftovers, kept (the old task's journal would have had them deleted)
    assert [dst.exists('%s/old-%d' % (base, index)) is not None for index in range(5)] == [True] * 5
    assert 'fenced' not in second.log_text()
