# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test harness itself, against real ZooKeeper servers."""

import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, AuthFailedError as KazooAuthFailedError
from kazoo.security import make_digest_acl

from tests.harness.zkharness import ZkCluster, load_sample_tree, port_is_free, four_letter_word

pytestmark = pytest.mark.integration


def _wait(predicate, timeout=30.0, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError('condition not met within %ss' % timeout)


def test_ensemble_survives_leader_kill(zk_cluster_factory, zk_client_factory):
    cluster = zk_cluster_factory('failover', size=3)
    client = zk_client_factory(cluster)
    client.create('/kept', b'before the crash', makepath=True)
    old_leader = cluster.leader_index()
    assert old_leader is not None

    cluster.kill_node(old_leader)
    assert not cluster.nodes[old_leader].running

    def leader_other_than_old():
        index = cluster.leader_index()
        return index if index is not None and index != old_leader else None

    new_leader = _wait(leader_other_than_old)
    assert new_leader != old_leader
    survivor_hosts = ','.join(node.address for i, node in enumerate(cluster.nodes) if i != old_leader)
    fresh = KazooClient(hosts=survivor_hosts, timeout=10)
    fresh.start(timeout=15)
    try:
        assert fresh.get('/kept')[0] == b'before the crash'
        fresh.create('/written-after', b'x')
    finally:
        fresh.stop()
        fresh.close()

    cluster.start_node(old_leader)
    assert cluster.nodes[old_leader].mode() == 'follower'
    rejoined = KazooClient(hosts=cluster.nodes[old_leader].address, timeout=10)
    rejoined.start(timeout=15)
    try:
        rejoined.sync('/')
        assert rejoined.exists('/written-after') is not None
    finally:
        rejoined.stop()
        rejoined.close()


def test_digest_auth_server(zk_auth, zk_client_factory, zk_path):
    admin = zk_client_factory(zk_auth)  # connects as the super identity
    admin.create(zk_path + '/locked', b'secret', makepath=True, acl=[make_digest_acl('app', 'app-pw', all=True)])
    assert admin.get(zk_path + '/locked')[0] == b'secret'  # super reads past any ACL

    anonymous = zk_client_factory(zk_auth, auth=False)
    with pytest.raises(NoAuthError):
        anonymous.get(zk_path + '/locked')

    app = zk_client_factory(zk_auth, auth=False, auth_data=[('digest', 'app:app-pw')])
    assert app.get(zk_path + '/locked')[0] == b'secret'

    impostor = zk_client_factory(zk_auth, auth=False, auth_data=[('digest', 'app:wrong')])
    with pytest.raises(NoAuthError):
        impostor.get(zk_path + '/locked')


def test_unknown_auth_scheme_is_refused(zk_auth):
    # The server closes the session on an auth packet of a scheme it does not know.
    client = KazooClient(hosts=zk_auth.hosts, timeout=5, auth_data=[('nosuchscheme', 'x')])
    try:
        # Depending on timing the refusal surfaces in start() or in the first request.
        with pytest.raises(KazooAuthFailedError):
            client.start(timeout=5)
            client.get('/')
    finally:
        client.stop()
        client.close()


def test_tls_server(zk_tls, zk_client_factory, zk_path):
    client = zk_client_factory(zk_tls)
    client.create(zk_path, b'over tls', makepath=True)
    assert client.get(zk_path)[0] == b'over tls'
    # The advertised address is the TLS port; a plain-text client gets nothing there.
    plain = KazooClient(hosts=zk_tls.hosts, timeout=3, connection_retry={'max_tries': 1}, command_retry={'max_tries': 1})
    with pytest.raises(Exception):
        plain.start(timeout=3)
    plain.stop()
    plain.close()


def test_zookeeper_34_server(zk_34, zk_client_factory, zk_path):
    assert 'Zookeeper version: 3.4.13' in four_letter_word('127.0.0.1', zk_34.nodes[0].client_port, 'srvr')
    client = zk_client_factory(zk_34)
    client.ensure_path(zk_path)
    txn = client.transaction()
    txn.create(zk_path + '/a', b'1')
    txn.create(zk_path + '/b', b'2')
    assert txn.commit() == [zk_path + '/a', zk_path + '/b']
    assert sorted(client.get_children(zk_path)) == ['a', 'b']


def test_extended_types_flag_reaches_server(zk_ext):
    # The server's own environment report carries the system property we pass.
    assert 'Mode: standalone' in four_letter_word('127.0.0.1', zk_ext.nodes[0].client_port, 'srvr')
    command = ' '.join(zk_ext.nodes[0].command())
    assert '-Dzookeeper.extendedTypesEnabled=true' in command
    assert '-Dznode.container.checkIntervalMs=1000' in command


def test_sample_tree_loader(zk_standalone, zk_client_factory, zk_path):
    client = zk_client_factory(zk_standalone)
    holder = zk_client_factory(zk_standalone)
    summary = load_sample_tree(client, base=zk_path, ephemeral_holder=holder)
    assert summary['ephemeral'] == 6
    queue = client.get_children(zk_path + '/service-0/queue')
    assert len(queue) == 15 and all(len(name) == len('item-') + 10 for name in queue)
    instance = client.exists(zk_path + '/service-1/instances/host-0')
    assert instance.ephemeralOwner == holder.client_id[0]
    assert client.get(zk_path + '/service-0/config/key-000')[0] == b''


def test_cluster_teardown_frees_ports_and_files(tmp_path):
    cluster = ZkCluster('teardown', base_dir=str(tmp_path)).start()
    port = cluster.nodes[0].client_port
    assert not port_is_free(port)
    cluster.destroy(keep_logs_in=str(tmp_path / 'logs'))
    assert port_is_free(port)
    assert (tmp_path / 'logs' / 'teardown' / 'node1-server.log').exists()
    assert not (tmp_path / 'teardown').exists()


def test_frozen_member_stops_answering(zk_cluster_factory):
    cluster = zk_cluster_factory('freeze', size=1)
    assert cluster.nodes[0].mode() == 'standalone'
    cluster.freeze_node(0)
    try:
        assert cluster.nodes[0].mode() is None
    finally:
        cluster.thaw_node(0)
    assert _wait(cluster.nodes[0].mode) == 'standalone'
