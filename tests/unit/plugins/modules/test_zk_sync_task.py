# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zk_sync_task and its task engine (_task.py) without ZooKeeper: option checks, spec merging,
cutover phases and the status wait (against a fake control store and a fake clock).

Module runs go through the real AnsibleModule argument handling (``patch_module_args``)
and stop before any connection is made.
"""

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.zookeeper.migration.plugins.module_utils import _records, _task
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError
from ansible_collections.zookeeper.migration.plugins.modules import zk_sync_task


def run_module(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exited:
            zk_sync_task.main()
    return exited.value.code, json.loads(capsys.readouterr().out)


BASE = {'name': 't1', 'source': 'src', 'destination': 'dst', 'paths': ['/app'], 'control': {'hosts': ['127.0.0.1:1']}}


@pytest.mark.parametrize('extra, message', [
    ({'wait': 'in_sync', 'state': 'paused'}, 'wait=in_sync needs state=running'),
    ({'wait_timeout': 0}, 'wait_timeout must be a positive number of seconds'),
    ({'max_write_rate': -1}, 'max_write_rate must be 0 (unlimited)'),
    ({'force': True}, 'force only applies with state=absent'),
])
def test_option_checks_fail_before_connecting(extra, message, capsys):
    args = dict(BASE)
    args.update(extra)
    code, result = run_module(args, capsys)
    assert code == 1 and result['failed'] is True
    assert message in result['msg']


def test_source_destination_and_paths_are_required_unless_absent(capsys):
    code, result = run_module({'name': 't1', 'source': 'src', 'control': {'hosts': ['h:1']}}, capsys)
    assert code == 1 and 'destination' in result['msg'] and 'paths' in result['msg']


def test_control_is_required(capsys):
    args = dict(BASE)
    del args['control']
    code, result = run_module(args, capsys)
    assert code == 1 and 'control option is required to manage sync tasks' in result['msg']


def params(**overrides):
    values = dict((field, None) for field in _task.MANAGED_FIELDS)
    values.update(name='t1', source='src', destination='dst', paths=['/app'], exclude=[], mode='one_way', initial='source_wins',
                  prune=False, sync_acl=True, acl_mode='verbatim', conflict='source_wins', node_types=[], max_write_rate=0,
                  state='running')
    values.update(overrides)
    return values


def test_desired_spec_drops_unset_node_type_fields_and_validates():
    desired = _task.desired_spec(params(node_types=[{'pattern': '/app/locks/*', 'type': 'container', 'ttl_ms': None}]))
    assert desired['node_types'] == [{'pattern': '/app/locks/*', 'type': 'container'}]
    spec = _records.normalize_task_spec(_task.merge_spec(None, desired))
    assert spec['node_types'] == [{'pattern': '/app/locks/*', 'type': 'container', 'ttl_ms': None}]
    assert spec['direction_after_cutover'] == 'none'


def test_merge_spec_keeps_fields_the_module_does_not_manage():
    current = _records.normalize_task_spec(dict(_task.desired_spec(params()), direction_after_cutover='destination_to_source'))
    merged = _task.merge_spec(current, _task.desired_spec(params(state='paused', exclude=['/app/tmp'])))
    assert merged['direction_after_cutover'] == 'destination_to_source'
    assert merged['state'] == 'paused' and merged['exclude'] == ['/app/tmp']
    only_state = _task.merge_spec(current, _task.desired_spec(params(state='stopped', paths=['/other'])), only=('state',))
    assert only_state['state'] == 'stopped' and only_state['paths'] == ['/app']


def test_scope_changes_are_what_the_initial_sync_copies():
    spec = _records.normalize_task_spec(_task.desired_spec(params()))
    assert _task.scope_changed(None, spec)
    assert not _task.scope_changed(spec, dict(spec, state='paused', max_write_rate=10, conflict='newest'))
    assert _task.scope_changed(spec, dict(spec, exclude=['/app/x']))
    assert _task.scope_changed(spec, dict(spec, sync_acl=False))


@pytest.mark.parametrize('record, phase', [
    (None, _task.NO_CUTOVER),
    ({'state': 'frozen', 'completed_at': None}, _task.CUTOVER_RUNNING),
    ({'state': 'aborted', 'completed_at': None}, _task.CUTOVER_ENDED_BEFORE_COMPLETION),
    ({'state': 'rolled_back', 'completed_at': None, 'direction_after_cutover': 'none'}, _task.CUTOVER_ENDED_BEFORE_COMPLETION),
    ({'state': 'completed', 'completed_at': 5.0, 'direction_after_cutover': 'none'}, _task.CUTOVER_COMPLETED),
    ({'state': 'rolled_back', 'completed_at': 5.0, 'direction_after_cutover': 'destination_to_source'},
     _task.CUTOVER_ROLLED_BACK_AFTER_COMPLETION),
])
def test_cutover_phase(record, phase):
    assert _task.cutover_phase(record) == phase


@pytest.mark.parametrize('status, wait, reached', [
    (None, 'initial_sync', False),
    ({'phase': 'initial_sync', 'details': {}}, 'initial_sync', False),
    ({'phase': 'streaming', 'details': {'queue': 4}, 'lag_ms': 12.0}, 'initial_sync', True),
    ({'phase': 'streaming', 'details': {'queue': 4}, 'lag_ms': 12.0}, 'in_sync', False),
    ({'phase': 'streaming', 'details': {'queue': 0}, 'lag_ms': 0.0}, 'in_sync', True),
    ({'phase': 'error', 'details': {'queue': 0}, 'lag_ms': 0.0}, 'in_sync', False),
])
def test_status_reached(status, wait, reached):
    assert _task.status_reached(status, wait) is reached


# -- wait_for_status against a fake control store --------------------------------

class FakeStat(object):
    def __init__(self, mzxid):
        self.mzxid = mzxid


class FakeClient(object):
    """Serves a sequence of (status record, mzxid) for the status znode, one per read."""

    def __init__(self, statuses):
        self.statuses = list(statuses)

    def get(self, _path):
        status, zxid = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return _records.encode_record(dict(status, schema_version=1)), FakeStat(zxid)


class FakeStore(object):
    def __init__(self, statuses, leader='d1'):
        self.client = FakeClient(statuses)
        self.leader = leader

    def status_path(self, task):
        return '/root/tasks/%s/status' % task

    def current_leader(self, _task_name):
        return self.leader


class FakeClock(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def streaming(queue=0, lag=0.0, heartbeat=1.0):
    return {'phase': 'streaming', 'heartbeat': heartbeat, 'lag_ms': lag, 'details': {'queue': queue}}


def test_wait_ignores_statuses_written_before_the_change():
    store = FakeStore([(streaming(), 10), (streaming(), 10), (streaming(queue=3, lag=5.0), 11), (streaming(), 12)])
    clock = FakeClock()
    status = _task.wait_for_status(store, 't1', 'in_sync', 30, after_zxid=10, poll=1, clock=clock, sleep=clock.sleep)
    assert status['details']['queue'] == 0 and clock.now == 3


def test_wait_times_out_with_the_last_status_and_why():
    store = FakeStore([({'phase': 'error', 'heartbeat': 1.0, 'last_error': 'cluster src (source) unreachable'}, 20)], leader=None)
    clock = FakeClock()
    with pytest.raises(_task.WaitTimeout) as timed_out:
        _task.wait_for_status(store, 't1', 'initial_sync', 5, after_zxid=10, poll=1, clock=clock, sleep=clock.sleep)
    message = str(timed_out.value)
    assert "task 't1' did not reach the end of its initial sync within 5s" in message
    assert 'last error: cluster src (source) unreachable' in message and 'no daemon leads the task' in message
    assert timed_out.value.status['phase'] == 'error'


def test_wait_for_a_stale_status_says_it_was_not_updated():
    store = FakeStore([(streaming(), 10)])
    clock = FakeClock()
    with pytest.raises(_task.WaitTimeout, match='its status was not updated meanwhile'):
        _task.wait_for_status(store, 't1', 'in_sync', 2, after_zxid=10, poll=1, clock=clock, sleep=clock.sleep)


def test_wait_none_and_unknown():
    store = FakeStore([(streaming(), 10)])
    assert _task.wait_for_status(store, 't1', 'none', 1)['phase'] == 'streaming'
    with pytest.raises(ConfigError):
        _task.wait_for_status(store, 't1', 'forever', 1)
