# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zk_sync_info through a real ansible-playbook run against a real control store.

The control store is filled through the control plane's own API
(``_control.ControlStore``): two clusters, a task with a status record, a
cutover record, a live daemon (an ephemeral registration held by this test's
session) and that daemon leading the task's election.
"""

import time

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils._control import ControlStore
from ansible_collections.zookeeper.migration.plugins.module_utils._election import TaskElection

from tests.integration.ansible_runner import run_playbook
from tests.integration.test_module_zk_cluster import dead_address

pytestmark = pytest.mark.integration


def tree_state(client, base):
    state = {}
    pending = [base]
    while pending:
        path = pending.pop()
        data, stat = client.get(path)
        state[path] = (data, stat.version, stat.cversion, stat.aversion)
        pending.extend(path.rstrip('/') + '/' + child for child in client.get_children(path))
    return state


def test_zk_sync_info_sequence(zk_source, zk_dest, zk_client_factory, zk_path):
    control_client = zk_client_factory(zk_dest)
    daemon_client = zk_client_factory(zk_dest)
    control_root = zk_path + '/control'
    fresh_root = zk_path + '/fresh-control'
    store = ControlStore(control_client, control_root, allow_open_acl=True)
    store.put_cluster({'name': 'source', 'hosts': zk_source.host_list})
    store.put_cluster({'name': 'destination', 'hosts': zk_dest.host_list})
    store.put_task({'name': 'app', 'source': 'source', 'destination': 'destination', 'paths': ['/app']})
    store.put_task({'name': 'other', 'source': 'source', 'destination': 'destination', 'paths': ['/other'], 'state': 'paused'})
    heartbeat = time.time()
    store.put_status('app', {'phase': 'streaming', 'nodes_done': 120, 'nodes_total': 120, 'lag_ms': 3.5,
                             'heartbeat': heartbeat, 'leader': 'daemon-a'})
    store.put_cutover('app', {'state': 'completed', 'source_frozen': True, 'completed_at': heartbeat})
    daemon_store = ControlStore(daemon_client, control_root, allow_open_acl=True)
    daemon_store.register_daemon('daemon-a', {'version': '0.1.0', 'metrics_address': '127.0.0.1:9464'})
    election = TaskElection(daemon_client, control_root, 'app', 'daemon-a', allow_open_acl=True)
    assert election.acquire(timeout=10)
    before = tree_state(control_client, control_root)

    run = run_playbook('zk_sync_info.yml', extra_vars={
        'control': {'hosts': zk_dest.host_list, 'root': control_root, 'allow_open_acl': True},   # unauthenticated: open on purpose
        'fresh_root': fresh_root,
        'dead_hosts': [dead_address()],
    })
    after = tree_state(control_client, control_root)
    election.release()
    assert run.rc == 0, run.output()

    info = run.task('Info everything')
    assert info['changed'] is False and not info['failed']
    assert info['control'] == {'root': control_root, 'exists': True}
    assert sorted(info['clusters']) == ['destination', 'source']
    assert info['clusters']['source']['hosts'] == zk_source.host_list
    assert sorted(info['tasks']) == ['app', 'other']
    app = info['tasks']['app']
    assert app['spec']['paths'] == ['/app'] and app['spec']['source'] == 'source'
    assert app['phase'] == 'streaming' and app['status']['nodes_done'] == 120 and app['status']['lag_ms'] == 3.5
    assert 0 <= app['heartbeat_age'] < 600
    assert app['leader'] == 'daemon-a' and info['leaders'] == {'app': 'daemon-a', 'other': None}
    assert info['cutovers'] == {'app': app['cutover']}
    assert app['cutover']['state'] == 'completed' and app['cutover']['source_frozen'] is True
    other = info['tasks']['other']
    assert other['status'] is None and other['phase'] is None and other['heartbeat_age'] is None
    assert other['spec']['state'] == 'paused'
    assert sorted(info['daemons']) == ['daemon-a']
    assert info['daemons']['daemon-a']['metrics_address'] == '127.0.0.1:9464'
    assert info['not_found'] == {'tasks': [], 'clusters': []}
    again = run.task('Info everything again')
    assert again['changed'] is False and again['clusters'] == info['clusters']
    for name, task in again['tasks'].items():   # the same, except the heartbeat's age, which grows
        assert dict(task, heartbeat_age=None) == dict(info['tasks'][name], heartbeat_age=None)

    checked = run.task('Check mode info with names not registered yet')
    assert checked['changed'] is False and not checked['failed']
    assert sorted(checked['tasks']) == ['app'] and sorted(checked['clusters']) == ['source']
    assert checked['not_found'] == {'tasks': ['future-task'], 'clusters': ['future-cluster']}
    warnings = ' '.join(checked.get('warnings', []))
    assert "task 'future-task'" in warnings and "cluster 'future-cluster'" in warnings and 'check mode' in warnings

    plain = run.task('Info with names not registered')
    assert plain['failed'] is False and plain['tasks'] == {} and plain['clusters'] == {}
    assert plain['not_found'] == {'tasks': ['future-task'], 'clusters': ['future-cluster']}
    # no warning about the names outside check mode; only the open control store this test opted into is reported
    assert plain.get('warnings') and all('open (control.allow_open_acl is set)' in warning for warning in plain['warnings'])

    fresh = run.task('Info on a control root that does not exist yet')
    assert fresh['control'] == {'root': fresh_root, 'exists': False}
    assert fresh['clusters'] == {} and fresh['tasks'] == {} and fresh['daemons'] == {}
    assert control_client.exists(fresh_root) is None

    unreachable = run.task('Bad control ensemble unreachable')
    assert unreachable['failed'] is True and unreachable['msg'].startswith('Cluster unreachable: cannot connect to cluster control')
    missing = run.task('Bad control option missing')
    assert missing['failed'] is True and 'the control option is required' in missing['msg']

    assert after == before, 'zk_sync_info changed the control store'
