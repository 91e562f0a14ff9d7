# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sequential counters of parents with no sequential child left (issue 14), against real ZooKeeper servers.

An ID generator hands out IDs by creating and deleting sequential children;
a queue is drained empty. Neither leaves a child to copy, so a copy restarts
their sequence at 0000000000 unless the counter itself is carried
(``counters`` task option, ``_counters``). Checked: zk_verify's category
before and after, the check-mode cost, the initial sync, streaming (a full
reconcile is not what aligns them), both directions, and ``align_counters``.
"""

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils import _apply, _counters, _task
from ansible_collections.zookeeper.migration.plugins.module_utils._verify import verify
from tests.integration.sync_support import wait_for

pytestmark = pytest.mark.integration

CHURN = 300         # IDs handed out by the generator
QUEUE = 40          # items put in the queue, then all taken


def _suffix(path):
    return int(path[-10:])


def churn_ids(client, parent, count):
    """An ID generator: create a sequential child, delete it; returns the suffixes handed out."""
    client.ensure_path(parent)
    handed = []
    for _index in range(count):
        path = client.create(parent + '/id-', b'', sequence=True)
        client.delete(path)
        handed.append(_suffix(path))
    return handed


def drain_queue(client, parent, count):
    """A queue filled with ``count`` sequential items, then consumed: returns their suffixes."""
    client.ensure_path(parent)
    items = [client.create(parent + '/item-', b'job', sequence=True) for _index in range(count)]
    for item in items:
        client.delete(item)
    return [_suffix(item) for item in items]


def hold_lock(client, parent, churn):
    """A lock parent: ``churn`` ephemeral sequential acquisitions, the last one still held."""
    client.ensure_path(parent)
    for _index in range(churn):
        client.delete(client.create(parent + '/lock-', b'', ephemeral=True, sequence=True))
    return client.create(parent + '/lock-', b'', ephemeral=True, sequence=True)


def counter(client, path):
    stat = client.exists(path)
    return _counters.next_suffix(stat.cversion, stat.numChildren)


def next_name(client, parent, prefix='id-'):
    """Hand out one more sequential name on ``client`` (deleted again): its suffix."""
    path = client.create(parent + '/' + prefix, b'', sequence=True)
    client.delete(path)
    return _suffix(path)


def test_copy_verify_and_check_mode_cost(zk_source, zk_dest, zk_path, zk_client_factory):
    src = zk_client_factory(zk_source)
    dst = zk_client_factory(zk_dest)
    src.ensure_path(zk_path)
    ids = churn_ids(src, zk_path + '/ids', CHURN)
    queued = drain_queue(src, zk_path + '/queue', QUEUE)
    hold_lock(src, zk_path + '/locks/orders', 5)
    spec = {'name': 'counters', 'source': 'src', 'destination': 'dst', 'paths': [zk_path], 'exclude': [], 'initial': 'source_wins',
            'prune': False, 'sync_acl': False, 'acl_mode': 'verbatim', 'node_types': [], 'counters': 'sequential'}

    # the check-mode plan shows the cost of each scope: the default carries none of them
    costs = {}
    for scope in ('sequential', 'all', [zk_path + '/ids']):
        spec['counters'] = scope
        plan = _task.plan_initial_sync(src, dst, spec, source_name='src', destination_name='dst')
        costs[str(scope)] = plan['counters']
    assert costs['sequential']['parents'] == 0 and costs['sequential']['seq_bump_pairs'] == 0
    assert costs['all']['seq_bump_pairs'] == CHURN + QUEUE == costs['all']['creates'] == costs['all']['deletes']
    assert sorted(costs['all']['first_paths']) == [zk_path + '/ids', zk_path + '/queue']    # not the lock parent
    assert costs[str([zk_path + '/ids'])]['seq_bump_pairs'] == CHURN

    # today's copy: the trees match, the counters do not, and verify says so
    _apply.copy(src, dst, [zk_path])
    before = verify(src, dst, [zk_path])
    assert not before.in_sync
    assert sorted(before.diff.counter_behind_persistent) == [zk_path + '/ids', zk_path + '/queue']
    assert before.diff.counter_behind_ephemeral == [zk_path + '/locks/orders']      # information only
    assert before.diff.counter_versions[zk_path + '/ids'] == (CHURN, 0)
    assert next_name(dst, zk_path + '/ids') in ids          # an ID handed out again

    # align_counters (the cutover's final step) carries them, once
    aligned = _counters.align_counters(src, dst, dict(spec, counters='all'), source_name='src', destination_name='dst')
    assert aligned['parents'] == 2 and aligned['failures'] == []
    assert aligned['applied_pairs'] == aligned['seq_bump_pairs'] == CHURN + QUEUE - 1     # one ID was handed out again above
    after = verify(src, dst, [zk_path])
    assert after.in_sync, after.to_dict()
    assert after.diff.counter_behind_ephemeral == [zk_path + '/locks/orders']
    assert next_name(dst, zk_path + '/ids') > max(ids)
    assert next_name(dst, zk_path + '/queue', 'item-') > max(queued)
    again = _counters.align_counters(src, dst, dict(spec, counters='all'))
    assert again['parents'] == 0 and again['applied_pairs'] == 0


@pytest.mark.parametrize('mode', ['one_way', 'bidirectional'])
def test_initial_sync_carries_counters(sync_env, mode):
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    ids = churn_ids(src, base + '/ids', CHURN)
    queued = drain_queue(src, base + '/queue', QUEUE)
    env.put_task(mode=mode, counters='all')
    env.daemon('d1')
    env.streaming()
    env.in_sync()
    wait_for(lambda: counter(dst, base + '/ids') >= CHURN and counter(dst, base + '/queue') >= QUEUE,
             what='the destination counters raised by the initial sync')
    assert next_name(dst, base + '/ids') > max(ids)
    assert next_name(dst, base + '/queue', 'item-') > max(queued)


@pytest.mark.parametrize('mode', ['one_way', 'bidirectional'])
def test_streaming_aligns_counters_without_a_full_reconcile(sync_env, mode):
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    src.ensure_path(base + '/ids')
    src.ensure_path(base + '/queue')
    env.put_task(mode=mode, counters='all')
    env.daemon('d1', full_reconcile_interval=7 * 86400)
    env.streaming()
    env.in_sync()
    reconciles = env.status()['details']['full_reconciles']

    ids = churn_ids(src, base + '/ids', CHURN)
    queued = drain_queue(src, base + '/queue', QUEUE)
    wait_for(lambda: counter(dst, base + '/ids') >= counter(src, base + '/ids') and
             counter(dst, base + '/queue') >= counter(src, base + '/queue'),
             timeout=30, what='the destination counters raised while streaming')
    status = env.status()
    assert status['details']['full_reconciles'] == reconciles        # streaming did it, not a full reconcile
    assert status['details']['counters_raised']['parents'] >= 1
    assert verify(src, dst, [base]).diff.counter_behind_persistent == []
    assert next_name(dst, base + '/ids') > max(ids)
    assert next_name(dst, base + '/queue', 'item-') > max(queued)

    if mode == 'bidirectional':
        # the other way: IDs handed out on the destination are not handed out again on the source
        handed = churn_ids(dst, base + '/ids', 50)
        wait_for(lambda: counter(src, base + '/ids') >= counter(dst, base + '/ids'), timeout=30,
                 what='the source counter raised while streaming')
        assert next_name(src, base + '/ids') > max(handed)
    else:
        assert env.status()['events_destination_to_source'] == 0


def test_declared_globs_carry_only_their_parents(sync_env):
    env = sync_env
    src, dst, base = env.src, env.dst, env.base
    churn_ids(src, base + '/ids', 30)
    drain_queue(src, base + '/queue', 10)
    env.put_task(counters=[base + '/id*'])
    env.daemon('d1')
    env.streaming()
    env.in_sync()
    wait_for(lambda: counter(dst, base + '/ids') >= 30, what='the declared parent raised')
    behind = verify(src, dst, [base]).diff.counter_behind_persistent
    assert behind == [base + '/queue']
