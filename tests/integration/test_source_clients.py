# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who still uses the source (_clients.py, zk_sync_info client_report, the gate of migrate.yml) against real servers.

An "application" connects from another loopback address (127.0.0.2, bound
as the client's source address) to the source while a real sync daemon
leads a task on it: the application is listed with its host and session,
the daemon's sessions are not. The gate (playbooks/tasks/check_source_clients.yml)
refuses while the application is connected, passes once it has gone, and
with zk_migration_wait_for_clients_gone passes when it leaves during the
wait. Watches show when wchc is whitelisted, and a member whose whitelist
lacks cons says which setting to change. 3.4.13 answers the same.
"""

import socket
import threading

import pytest
from kazoo.client import KazooClient
from kazoo.handlers.threading import SequentialThreadingHandler

from ansible_collections.zookeeper.migration.plugins.module_utils import _client
from ansible_collections.zookeeper.migration.plugins.module_utils._clients import clients_of, connection_count, list_clients
from ansible_collections.zookeeper.migration.plugins.module_utils._control import ControlStore

from tests.integration.ansible_runner import run_playbook
from tests.integration.sync_support import wait_for
from tests.harness.zkharness import free_port

pytestmark = pytest.mark.integration

APPLICATION_HOST = '127.0.0.2'


class FromAddress(SequentialThreadingHandler):
    """A kazoo handler whose connections leave from ``APPLICATION_HOST`` (another machine, as the server sees it)."""

    def create_connection(self, address, timeout=None, **_kwargs):
        return socket.create_connection(address, timeout, source_address=(APPLICATION_HOST, 0))


def application(cluster, hosts=None):
    client = KazooClient(hosts=hosts or cluster.hosts, handler=FromAddress(), timeout=10)
    client.start(timeout=15)
    return client


def session_id(client):
    return '0x%x' % client.client_id[0]


def test_the_application_is_listed_and_the_migration_is_not(sync_env):
    env = sync_env
    env.src.create(env.base + '/config', b'v', makepath=True)
    env.put_task()
    env.daemon('d1')
    env.streaming()
    daemon_sessions = wait_for(lambda: (env.status().get('details') or {}).get('sessions', {}).get('source'), timeout=20,
                               what='the leader to record its sessions')
    app = application(env.source)
    try:
        app.get(env.base + '/config', watch=lambda event: None)
        report = clients_of(env.store, 'src', {}, watches=True)
        assert APPLICATION_HOST in report['hosts'], report
        listed = report['hosts'][APPLICATION_HOST]
        assert listed['sessions'] == 1 and listed['session_ids'] == [session_id(app)]
        assert env.base + '/config' in listed['watches']
        every = [session for entry in report['hosts'].values() for session in entry['session_ids']]
        assert not set(daemon_sessions) & set(every), (daemon_sessions, every)
        assert report['complete'] is True and report['members'] and all('sessions' in found for found in report['members'].values())
        # the test's own clients come from 127.0.0.1: an allow-list leaves known hosts out
        allowed = clients_of(env.store, 'src', {}, allow=['127.0.0.1/32'])
        assert list(allowed['hosts']) == [APPLICATION_HOST] and allowed['clients'] == 1
    finally:
        app.stop()
        app.close()
    gone = clients_of(env.store, 'src', {}, allow=['127.0.0.1'])
    assert gone['clients'] == 0 and gone['hosts'] == {}


def gate(env, **extra):
    variables = {'control': {'hosts': env.destination.host_list, 'root': env.root, 'allow_open_acl': True}, 'credentials': {},
                 'zk_migration_source': {'name': 'src'}, 'zk_migration_client_allow': ['127.0.0.1']}
    variables.update(extra)
    return run_playbook('source_clients_gate.yml', extra_vars=variables, timeout=300)


def test_the_gate_refuses_while_an_application_is_connected(sync_env):
    env = sync_env
    env.src.ensure_path(env.base)
    app = application(env.source)
    try:
        refused = gate(env)
        assert refused.rc != 0
        message = ' '.join(refused.task('Refuse to shut the source down while clients still use it')['msg'])
        assert 'still has 1 client session(s)' in message and APPLICATION_HOST in message, message
        overridden = gate(env, zk_migration_allow_connected_clients=True)
        assert overridden.rc == 0, overridden.output()
        # the application leaves during the wait (ansible-playbook starts in a few seconds, it polls every 5): the gate passes
        threading.Timer(15.0, lambda: (app.stop(), app.close())).start()
        waited = gate(env, zk_migration_wait_for_clients_gone=120)
        assert waited.rc == 0, waited.output()
        assert waited.task('List who still uses the source before it is shut down')['attempts'] >= 2
    finally:
        app.stop()
        app.close()
    assert gate(env).rc == 0


def test_a_member_without_cons_in_its_whitelist_says_so(zk_cluster_factory):
    cluster = zk_cluster_factory('no-cons', extra_config={'4lw.commands.whitelist': 'srvr,ruok'})
    spec = _client.ClusterSpec.from_dict({'name': 'no-cons', 'hosts': cluster.host_list})
    report = list_clients(spec)
    assert report['complete'] is False
    error = report['members'][cluster.host_list[0]]['error']
    assert '4lw.commands.whitelist' in error and 'AdminServer' in error


def test_watches_need_wchc_in_the_whitelist(zk_cluster_factory):
    cluster = zk_cluster_factory('no-wchc', extra_config={'4lw.commands.whitelist': 'srvr,cons'})
    app = application(cluster)
    try:
        app.ensure_path('/watched')
        app.get('/watched', watch=lambda event: None)
        spec = _client.ClusterSpec.from_dict({'name': 'no-wchc', 'hosts': cluster.host_list})
        report = list_clients(spec, watches=True)
        # the sessions are listed (cons answers), the watches are not, and the note says why
        assert report['complete'] is True and report['hosts'][APPLICATION_HOST]['watches'] == []
        assert any('wchc' in note and '4lw.commands.whitelist' in note for note in report['notes']), report['notes']
    finally:
        app.stop()
        app.close()


def test_a_down_member_is_reported_and_the_others_listed(zk_cluster_factory):
    cluster = zk_cluster_factory('clients-ensemble', size=3)
    # a follower goes down (a leader would take every session through an election); the application is on the others
    modes = [_client.parse_srvr(_client.four_letter_word(member, 'srvr')).get('mode') for member in cluster.host_list]
    down = modes.index('follower')
    app = application(cluster, hosts=','.join(member for index, member in enumerate(cluster.host_list) if index != down))
    try:
        cluster.nodes[down].stop()
        spec = _client.ClusterSpec.from_dict({'name': 'ensemble', 'hosts': cluster.host_list})
        report = list_clients(spec)
        assert report['complete'] is False and 'error' in report['members'][cluster.host_list[down]]
        assert report['hosts'][APPLICATION_HOST]['session_ids'] == [session_id(app)]
    finally:
        app.stop()
        app.close()


def test_a_34_source_answers_the_same(zk_34):
    app = application(zk_34)
    try:
        spec = _client.ClusterSpec.from_dict({'name': 'zk34', 'hosts': zk_34.host_list})
        report = list_clients(spec, watches=True)
        assert report['hosts'][APPLICATION_HOST]['session_ids'] == [session_id(app)], report
    finally:
        app.stop()
        app.close()


def test_a_tls_only_member_is_asked_over_tls(zk_tls):
    spec = _client.ClusterSpec.from_dict(zk_tls.client_spec())
    client = zk_tls.client()
    try:
        report = list_clients(spec)
        assert report['complete'] is True, report
        assert session_id(client) in [session for entry in report['hosts'].values() for session in entry['session_ids']]
    finally:
        client.stop()
        client.close()


@pytest.mark.parametrize('version', ['3.8', '3.9'])
def test_a_member_without_four_letter_words_is_read_from_its_admin_server(zk_cluster_factory, zk_client_factory, version):
    port = free_port('127.0.0.1')
    cluster = zk_cluster_factory('admin-%s' % version.replace('.', ''), version=version, extra_config={
        '4lw.commands.whitelist': 'srvr', 'admin.enableServer': 'true', 'admin.serverAddress': '127.0.0.1', 'admin.serverPort': port})
    control = zk_client_factory(cluster)
    store = ControlStore(control, '/zkm-admin', allow_open_acl=True)
    store.put_cluster({'name': 'src', 'hosts': cluster.host_list, 'admin_port': port})
    app = application(cluster)
    try:
        app.ensure_path('/watched')
        app.get('/watched', watch=lambda event: None)
        report = clients_of(store, 'src', {}, watches=True)
        member = cluster.host_list[0]
        # listed through the AdminServer: the application with its session and watches; the control store's own session is not
        assert report['complete'] is True and report['members'][member]['via'] == 'admin', report
        assert list(report['hosts']) == [APPLICATION_HOST], report['hosts']
        assert report['hosts'][APPLICATION_HOST]['session_ids'] == [session_id(app)]
        assert '/watched' in report['hosts'][APPLICATION_HOST]['watches']
        spec = _client.ClusterSpec.from_dict({'name': 'src', 'hosts': cluster.host_list})
        assert connection_count(spec, admin_port=port)[member]['connections'] >= 2
        # without the registered port, the member says which settings to change
        error = list_clients(spec)['members'][member]['error']
        assert '4lw.commands.whitelist' in error and 'admin_port' in error
    finally:
        app.stop()
        app.close()


def test_the_look_after_the_cutover_is_kept_in_the_cutover_record(cutover_env):
    env = cutover_env
    env.put_task()
    env.daemon('d1')
    env.in_sync()
    done = env.cutover().complete()
    first = done['cutover']['details']['after_cutover']
    # the cutover takes the first look, once its own sessions are closed; the daemon's are not counted
    assert APPLICATION_HOST not in first['source_hosts'] and first['observed_at'] >= done['cutover']['completed_at'], first
    assert set(first['destination_connections']) == set(env.destination.host_list)
    assert all(count >= 1 for count in first['destination_connections'].values()), first
    again = env.cutover().complete()
    assert again['changed'] is False and again['operations'] == [] and again['after_cutover']['observed_at'] == first['observed_at']
    assert again['after_cutover']['verification_at_cutover']['in_sync'] is True

    app = application(env.source)
    try:
        checked = env.cutover().complete(check_mode=True)
        assert checked['changed'] is True and checked['after_cutover']['source_hosts'][APPLICATION_HOST] == 1
        assert env.store.get_cutover(env.task)['details']['after_cutover'] == first     # check mode wrote nothing
        seen = env.cutover().complete()
        assert seen['changed'] is True and seen['source_clients']['hosts'][APPLICATION_HOST]['session_ids'] == [session_id(app)]
        kept = env.store.get_cutover(env.task)['details']['after_cutover']
        assert kept['source_hosts'][APPLICATION_HOST] == 1 and kept['observed_at'] > first['observed_at']
        # one more session from the same host: the same hosts, nothing recorded, the current count returned
        second = application(env.source)
        try:
            more = env.cutover().complete()
            assert more['changed'] is False and more['after_cutover']['source_hosts'][APPLICATION_HOST] == 2, more['after_cutover']
            assert env.store.get_cutover(env.task)['details']['after_cutover'] == kept
        finally:
            second.stop()
            second.close()
    finally:
        app.stop()
        app.close()
    gone = env.cutover().complete()
    assert gone['changed'] is True and APPLICATION_HOST not in env.store.get_cutover(env.task)['details']['after_cutover']['source_hosts']
