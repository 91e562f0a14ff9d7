# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sync daemon on older servers and through cluster failures.

* A source on the real ZooKeeper 3.4.13 server: no addWatch, no multiRead,
  so the engine falls back to one-shot kazoo watches on every node and
  plain pipelined reads; one-way and bidirectional.
* One member of each 3-node cluster restarted while writes stream.
* Declared container and TTL paths created as such on the destination.
"""

import threading
import time

import pytest

from tests.integration.sync_support import SyncEnv, cleanup_daemons, persistent_tree, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def env_factory(zk_path, tmp_path, zk_client_factory):
    made = []

    def make(source, destination):
        src = zk_client_factory(source)
        dst = zk_client_factory(destination)
        src.ensure_path(zk_path)
        env = SyncEnv(source, destination, zk_path, tmp_path, src, dst)
        made.append(env)
        return env
    yield make
    for env in made:
        cleanup_daemons(env.daemons)
        print(env.logs())


@pytest.mark.parametrize('mode', ['one_way', 'bidirectional'])
def test_source_on_zookeeper_3_4(env_factory, zk_34, zk_dest, mode):
    env = env_factory(zk_34, zk_dest)
    src, dst, base = env.src, env.dst, env.base
    txn = src.transaction()
    for index in range(15):
        txn.create('%s/n%02d' % (base, index), b'v%d' % index)
    txn.commit()
    src.create(base + '/tree/a/b', b'deep', makepath=True)
    env.put_task(mode=mode)
    env.daemon('d1')
    status = env.streaming()
    assert status['details']['watch_mode']['source'] == 'per_node'
    if mode == 'bidirectional':
        assert status['details']['watch_mode']['destination'] == 'persistent_recursive'
    env.in_sync()
    # streaming through one-shot watches: updates, new nodes at any depth, deletes of leaves and subtrees
    src.set(base + '/n01', b'updated')
    src.create(base + '/tree/a/b/c/d', b'deeper', makepath=True)
    src.create(base + '/fresh', b'f')
    src.delete(base + '/n02')
    tree = env.in_sync()
    assert tree[base + '/tree/a/b/c/d'] == b'deeper'
    src.set(base + '/n01', b'updated twice')     # the watch was re-armed by the previous reconcile
    src.create(base + '/fresh/child', b'c')      # a child of a node created while streaming
    src.delete(base + '/tree', recursive=True)
    tree = env.in_sync()
    assert tree[base + '/n01'] == b'updated twice' and base + '/tree' not in tree
    if mode == 'bidirectional':
        dst.set(base + '/n03', b'from the destination')
        dst.create(base + '/dst-made/x', b'x', makepath=True)
        dst.delete(base + '/n04')
        tree = env.in_sync()
        assert tree[base + '/n03'] == b'from the destination'
        assert src.get(base + '/dst-made/x')[0] == b'x' and src.exists(base + '/n04') is None
    else:
        dst.set(base + '/n03', b'drift')
        time.sleep(0.5)
        assert src.get(base + '/n03')[0] == b'v3'
        dst.set(base + '/n03', b'v3')
    env.in_sync()


def test_member_restarts_in_both_clusters_mid_stream(env_factory, zk_cluster_factory):
    source = zk_cluster_factory('restart-src', size=3)
    destination = zk_cluster_factory('restart-dst', size=3)
    env = env_factory(source, destination)
    src, base = env.src, env.base
    for index in range(20):
        src.create('%s/k%02d' % (base, index), b'initial')
    env.put_task(mode='bidirectional')
    env.daemon('d1')
    env.streaming()
    env.in_sync()
    stop, written = threading.Event(), {}
    errors = []

    def writer():
        index = 0
        while not stop.is_set() and index < 600:
            key = '%s/k%02d' % (base, index % 20)
            value = ('w%05d' % index).encode()
            try:
                src.set(key, value)
                written[key] = value
            except Exception as exc:  # pylint: disable=broad-except
                errors.append(exc)   # the test client's own member may be the one restarted
                time.sleep(0.2)
            index += 1
            time.sleep(0.005)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.5)
        for cluster in (source, destination):
            leader = cluster.leader_index()
            cluster.kill_node(leader)          # the leader: the others must elect a new one
        time.sleep(1.0)
        for cluster in (source, destination):
            for index, node in enumerate(cluster.nodes):
                if not node.running:
                    cluster.start_node(index)
        cluster.wait_serving(30)
    finally:
        thread.join(60)
        stop.set()
    tree = env.in_sync(timeout=40)
    for key, value in written.items():
        assert tree[key] == value
    assert persistent_tree(env.dst, base) == tree


def test_declared_container_and_ttl_paths_on_the_destination(env_factory, zk_source, zk_ext):
    env = env_factory(zk_source, zk_ext)
    src, dst, base = env.src, env.dst, env.base
    src.create(base + '/locks/a/holder', b'', makepath=True)
    src.create(base + '/plain/a/holder', b'', makepath=True)
    src.create(base + '/leases/l1', b'lease', makepath=True)
    env.put_task(mode='one_way', node_types=[{'pattern': base + '/locks/*', 'type': 'container'},
                                             {'pattern': base + '/leases/*', 'type': 'ttl', 'ttl_ms': 1000}])
    env.daemon('d1')
    env.streaming()
    env.in_sync()
    # Clients cannot see the type; a container shows itself by vanishing once it has had
    # children and has none left (the server checks every second here).
    src.create(base + '/locks/b/holder', b'', makepath=True)     # created while streaming
    env.in_sync()
    for name in ('a', 'b'):
        dst.delete('%s/locks/%s/holder' % (base, name))
    dst.delete(base + '/plain/a/holder')
    wait_for(lambda: dst.exists(base + '/locks/a') is None and dst.exists(base + '/locks/b') is None, timeout=10,
             what='the emptied containers to be removed by the server')
    assert dst.exists(base + '/plain/a') is not None
    # a TTL node without children that nobody modifies goes once its TTL has passed
    wait_for(lambda: dst.exists(base + '/leases/l1') is None, timeout=10, what='the TTL node to expire on the destination')
    assert src.get(base + '/leases/l1')[0] == b'lease'
