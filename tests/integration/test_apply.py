# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""apply_plan() against real ZooKeeper: failing multis, conditional writes, fencing, counters, limits."""

import pytest
from kazoo.client import KazooClient

from ansible_collections.zookeeper.migration.plugins.module_utils._apply import Op, Plan, apply_plan, plan_copy, request_bytes
from ansible_collections.zookeeper.migration.plugins.module_utils._client import connect
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import SEQ_BUMP_PREFIX, diff_snapshots
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    FencedError,
    NodeExistsError,
    TooLargeError,
    VersionConflictError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import Snapshot, take_snapshot

pytestmark = pytest.mark.integration


@pytest.fixture
def engine_client():
    made = []

    def make(cluster, hosts=None):
        spec = cluster.client_spec()
        if hosts is not None:
            spec['hosts'] = hosts
        client = connect(spec)
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()
        client.close()


def build(client, root, fanout, depth, data=b'd' * 50):
    """A tree of fanout**1 + ... + fanout**depth nodes under ``root`` (created here), written with multis."""
    client.ensure_path(root)
    level = [root]
    creates = []
    for _level in range(depth):
        nxt = ['%s/n%d' % (parent, i) for parent in level for i in range(fanout)]
        creates.extend(nxt)
        level = nxt
    for start in range(0, len(creates), 500):
        txn = client.transaction()
        for path in creates[start:start + 500]:
            txn.create(path, data)
        assert not [r for r in txn.commit() if isinstance(r, Exception)]
    return [root] + creates


def plan_for(source_client, dest_client, source_root, dest_root, **kwargs):
    source = take_snapshot(source_client, [source_root])
    if dest_client.exists(dest_root) is not None:
        destination = take_snapshot(dest_client, [dest_root])
    else:
        destination = Snapshot([dest_root], with_acl=True)
    diff = diff_snapshots(source, destination, path_map={source_root: dest_root})
    return plan_copy(source, destination, diff, **kwargs)


def test_failing_multi_is_reported_with_the_exact_path(zk_source, zk_dest, zk_path, engine_client):
    src = engine_client(zk_source)
    dst = engine_client(zk_dest)
    paths = build(src, zk_path, fanout=6, depth=3)          # 259 nodes
    dst.ensure_path(zk_path + '/n2')
    plan = plan_for(src, dst, zk_path, zk_path)
    # Between plan and apply, someone creates one of the planned nodes on the destination.
    intruder = zk_path + '/n2/n4'
    dst.create(intruder, b'not ours')
    with pytest.raises(NodeExistsError) as caught:
        apply_plan(dst, plan, max_batch_ops=20, in_flight=4)
    error = caught.value
    assert error.path == intruder
    assert 'create of %s failed' % intruder in str(error)
    result = error.result
    assert result.failures[0]['path'] == intruder and result.failures[0]['op'] == 'create'
    not_applied = set(path for _kind, path in result.not_applied)
    assert intruder in not_applied
    # Whatever was reported applied exists; whatever was not does not (the intruder aside): nothing half-done.
    for path in paths:
        if path in (zk_path, zk_path + '/n2'):
            continue
        exists = dst.exists(path) is not None
        assert exists == (path not in not_applied or path == intruder), path
    assert dst.get(intruder)[0] == b'not ours'
    assert result.applied['create'] + len([k for k, _p in result.not_applied if k == 'create']) == len(plan.creates)
    # A fresh plan completes the copy around the intruder.
    dst.delete(intruder)
    apply_plan(dst, plan_for(src, dst, zk_path, zk_path))
    assert diff_snapshots(take_snapshot(src, [zk_path]), take_snapshot(dst, [zk_path])).in_sync


def test_conditional_update_losing_a_race_is_not_an_overwrite(zk_standalone, zk_path, engine_client):
    client = engine_client(zk_standalone)
    client.create(zk_path + '/src/config', b'new value', makepath=True)
    client.create(zk_path + '/dst/config', b'old value', makepath=True)
    plan = plan_for(client, client, zk_path + '/src', zk_path + '/dst')
    assert [op.kind for op in plan.updates] == ['set_data']
    # A user writes the destination after the plan read it.
    client.set(zk_path + '/dst/config', b'user wrote this')
    with pytest.raises(VersionConflictError) as caught:
        apply_plan(client, plan)
    assert caught.value.path == zk_path + '/dst/config'
    assert client.get(zk_path + '/dst/config')[0] == b'user wrote this'


def test_conditional_delete_and_acl_losing_a_race(zk_standalone, zk_path, engine_client):
    client = engine_client(zk_standalone)
    client.create(zk_path + '/victim', b'v0', makepath=True)
    stat = client.exists(zk_path + '/victim')
    plan = Plan()
    plan.delete(zk_path + '/victim', expected_version=stat.version)
    client.set(zk_path + '/victim', b'v1')
    with pytest.raises(VersionConflictError):
        apply_plan(client, plan)
    assert client.get(zk_path + '/victim')[0] == b'v1'
    plan = Plan()
    plan.set_acl(zk_path + '/victim', [(31, 'world', 'anyone')], expected_aversion=stat.aversion)
    client.set_acls(zk_path + '/victim', client.get_acls(zk_path + '/victim')[0])   # bumps aversion
    with pytest.raises(VersionConflictError) as caught:
        apply_plan(client, plan)
    assert caught.value.path == zk_path + '/victim'


def test_fence_stops_a_stale_writer(zk_standalone, zk_path, engine_client):
    client = engine_client(zk_standalone)
    fence = zk_path + '/fence'
    client.create(fence, b'', makepath=True)
    client.set(fence, b'epoch 1')
    epoch = client.exists(fence).version
    plan = Plan()
    plan.create(zk_path + '/written', b'by the leader')
    result = apply_plan(client, plan, fence=(fence, epoch))
    assert result.applied['create'] == 1
    # A new leader bumps the fence: the old one's writes fail as a whole.
    client.set(fence, b'epoch 2')
    plan = Plan()
    plan.create(zk_path + '/stale', b'by the old leader')
    plan.set_data(zk_path + '/written', b'overwritten?')
    plan.set_acl(zk_path + '/written', [(1, 'world', 'anyone')])
    with pytest.raises(FencedError) as caught:
        apply_plan(client, plan, fence=(fence, epoch))
    assert caught.value.path == fence
    assert client.exists(zk_path + '/stale') is None
    assert client.get(zk_path + '/written')[0] == b'by the leader'
    assert len(caught.value.result.not_applied) == 3


def test_counter_raise_is_exact_on_a_real_server(zk_standalone, zk_path, engine_client):
    client = engine_client(zk_standalone)
    parent = zk_path + '/queue'
    client.create(parent, makepath=True)
    for _job in range(3):
        client.create(parent + '/job-', sequence=True)
    plan = Plan()
    plan.raise_cversion(parent, 1003)
    result = apply_plan(client, plan, max_batch_ops=200)
    assert result.seq_bump_pairs == 1000
    stat = client.exists(parent)
    assert (stat.cversion + stat.numChildren) // 2 == 1003
    assert stat.cversion == 2 * 1003 - 3          # what clients see: deletes count as changes too
    assert client.create(parent + '/job-', sequence=True).endswith('%010d' % 1003)
    assert not [c for c in client.get_children(parent) if c.startswith(SEQ_BUMP_PREFIX)]
    # Already there: nothing to do.
    assert apply_plan(client, plan).seq_bump_pairs == 0


def test_request_limit_is_exact_through_a_follower(zk_dest, zk_path, engine_client):
    leader = zk_dest.leader_index()
    follower = [i for i in range(len(zk_dest.nodes)) if i != leader][0]
    client = engine_client(zk_dest, hosts=[zk_dest.host_list[follower]])
    client.ensure_path(zk_path)
    path = zk_path + '/at-the-limit'
    fits = 0xfffff - request_bytes([Op('create', path, data=b'').size])
    plan = Plan()
    plan.create(path, b'\x01' * (fits + 1))
    with pytest.raises(TooLargeError) as caught:
        apply_plan(client, plan)
    assert caught.value.path == path
    assert client.exists(path) is None
    plan = Plan()
    plan.create(path, b'\x01' * fits)
    apply_plan(client, plan)
    assert client.exists(path).dataLength == fits


def test_apply_through_a_chroot(zk_standalone, zk_path, engine_client):
    client = engine_client(zk_standalone)
    client.ensure_path(zk_path + '/chrooted/fence')
    rooted = KazooClient(**dict(zk_standalone.kazoo_args(), hosts=zk_standalone.hosts + zk_path + '/chrooted'))
    rooted.start()
    try:
        plan = Plan()
        plan.create('/a', b'1')
        plan.create('/a/b', b'2')
        plan.raise_cversion('/a', 5)
        plan.set_acl('/a/b', [(31, 'world', 'anyone')], 0)
        result = apply_plan(rooted, plan, fence=('/fence', 0))
        assert result.ok
    finally:
        rooted.stop()
        rooted.close()
    assert client.get(zk_path + '/chrooted/a/b')[0] == b'2'
    stat = client.exists(zk_path + '/chrooted/a')
    assert (stat.cversion + stat.numChildren) // 2 == 5
