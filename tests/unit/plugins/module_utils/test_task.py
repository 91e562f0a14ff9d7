# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The task engine of zk_sync_task (_task.py) without ZooKeeper: the spec to store (merging, the cutover phases), the status
wait (against a fake control store and a fake clock).

The preflight and the initial sync plan read real clusters: tests/integration/test_module_zk_sync_task.py.
"""

import copy

import pytest
from hypothesis import assume, event, given, strategies as st

from ansible_collections.zookeeper.migration.plugins.module_utils import _records, _task
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError

from tests.unit.plugins.module_utils.helpers import SETTINGS


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


# --------------------------------------------------------------------------
# Properties of the spec to store: merge_spec, given_fields, desired_spec, scope_changed, target_spec
# --------------------------------------------------------------------------

# What each managed option may be set to (the module's values; None: left unset). Lists are fresh copies per example.
OPTION_VALUES = {
    'source': st.sampled_from(['src', 'legacy']),
    'destination': st.sampled_from(['dst', 'new']),
    'mode': st.sampled_from(_records.MODES),
    'paths': st.sampled_from([['/app'], ['/app', '/other'], ['/services/a']]).map(copy.deepcopy),
    'exclude': st.sampled_from([[], ['/app/tmp'], ['/app/tmp', '*.lock']]).map(copy.deepcopy),
    'initial': st.sampled_from(_records.INITIAL_POLICIES),
    'prune': st.booleans(),
    'sync_acl': st.booleans(),
    'acl_mode': st.sampled_from(_records.ACL_MODES),
    'conflict': st.sampled_from(_records.CONFLICT_POLICIES),
    'node_types': st.sampled_from([[], [{'pattern': '/app/locks/*', 'type': 'container', 'ttl_ms': None}],
                                   [{'pattern': '/app/ttl/*', 'type': 'ttl', 'ttl_ms': 5000}]]).map(copy.deepcopy),
    'max_write_rate': st.sampled_from([0, 100]),
    'counters': st.sampled_from(['sequential', 'all', ['/app/ids']]).map(copy.deepcopy),
    'state': st.sampled_from(_records.TASK_STATES),
}
NON_SCOPE_FIELDS = tuple(field for field in _task.MANAGED_FIELDS if field not in _task.SCOPE_FIELDS)


@st.composite
def stored_specs(draw, states=_records.TASK_STATES):
    """A task spec as the control store holds it (normalized, every field set)."""
    spec = dict((field, draw(values)) for field, values in OPTION_VALUES.items())
    spec.update(name='t1', state=draw(st.sampled_from(states)), direction_after_cutover=draw(st.sampled_from(_records.DIRECTIONS_AFTER_CUTOVER)))
    return _records.normalize_task_spec(spec)


@st.composite
def module_params(draw):
    """zk_sync_task's options: each managed one set or left unset (None), ``state`` always set (it has a default)."""
    values = dict((field, draw(st.none() | OPTION_VALUES[field])) for field in _task.MANAGED_FIELDS)
    values.update(name='t1', state=draw(OPTION_VALUES['state']))
    return values


def desired_like(spec, **changes):
    """What the module asks for when its options repeat ``spec`` (with ``changes``)."""
    return _task.desired_spec(dict(dict((field, spec[field]) for field in _task.MANAGED_FIELDS), name=spec['name'], **changes))


@st.composite
def records(draw, phases):
    """A cutover record whose ``cutover_phase`` is one of ``phases``."""
    record = {'state': draw(st.sampled_from(_records.CUTOVER_STATES)),
              'completed_at': draw(st.none() | st.floats(1.0, 2e9)),
              'direction_after_cutover': draw(st.sampled_from(_records.DIRECTIONS_AFTER_CUTOVER))}
    assume(_task.cutover_phase(record) in phases)
    return record


def changed_fields(before, after):
    return sorted(field for field in set(before) | set(after) if before.get(field) != after.get(field))


@SETTINGS
@given(params=module_params())
def test_desired_spec_holds_exactly_the_options_set(params):
    desired = _task.desired_spec(params)
    assert set(desired) == set(['name']) | set(field for field in _task.MANAGED_FIELDS if params[field] is not None)
    assert _task.given_fields(desired) == tuple(field for field in _task.MANAGED_FIELDS if field in desired)
    for entry in desired.get('node_types', []):
        assert None not in entry.values()
    # a copy: changing what was asked for does not change the spec
    for field in ('paths', 'exclude', 'node_types'):
        if desired.get(field):
            params[field].append('changed')
            assert desired[field][-1] != 'changed'


@SETTINGS
@given(current=stored_specs(), params=module_params(), only=st.lists(st.sampled_from(_task.MANAGED_FIELDS), min_size=1, unique=True).map(tuple))
def test_merge_spec_with_only_keeps_every_other_stored_field(current, params, only):
    """A pause or a stop (``only``: the fields given) changes those fields and nothing else; unset ones keep their stored value."""
    desired = _task.desired_spec(params)
    before = copy.deepcopy(current)
    merged = _task.merge_spec(current, desired, only=only)
    assert set(merged) == set(current)
    for field, value in current.items():
        if field in only and field in desired:
            assert merged[field] == desired[field], field
        else:
            assert merged[field] == value, field
    assert current == before, 'merge_spec changed the stored spec'
    merged['paths'].append('/changed')
    assert current['paths'] == before['paths'], 'the merged spec shares lists with the stored one'


@SETTINGS
@given(current=stored_specs(), params=module_params())
def test_merge_spec_takes_the_managed_fields_and_resets_unset_ones_to_their_defaults(current, params):
    """Without ``only`` an option left unset means its default, as when the task was created; other fields keep their value."""
    desired = _task.desired_spec(params)
    merged = _task.merge_spec(current, desired)
    for field in _task.MANAGED_FIELDS:
        if field in desired:
            assert merged[field] == desired[field]
        elif field in _records.TASK_DEFAULTS:
            assert merged[field] == _records.TASK_DEFAULTS[field]
        else:
            assert merged[field] == current[field]       # source, destination, paths: no default
    for field in set(current) - set(_task.MANAGED_FIELDS):
        assert merged[field] == current[field]           # name, schema_version, direction_after_cutover
    created = _task.merge_spec(None, desired)
    assert created == dict(_records.task_defaults(), **desired)


@SETTINGS
@given(before=stored_specs(), after=stored_specs())
def test_scope_changed_exactly_when_a_scope_field_differs(before, after):
    """Only what decides what the initial sync copies re-runs the preflight: state, rate and conflict policy never do."""
    assert _task.scope_changed(before, after) == any(before[field] != after[field] for field in _task.SCOPE_FIELDS)
    assert not _task.scope_changed(before, dict(before, **dict((field, after[field]) for field in NON_SCOPE_FIELDS)))
    assert _task.scope_changed(None, after)


@SETTINGS
@given(record=st.none() | records(phases=(_task.NO_CUTOVER, _task.CUTOVER_ENDED_BEFORE_COMPLETION)), current=st.none() | stored_specs(),
       params=module_params(), pause=st.booleans())
def test_without_a_cutover_the_desired_spec_is_merged_in(record, current, params, pause):
    if current is None:     # creating the task: the module requires these
        params.update(source=params['source'] or 'src', destination=params['destination'] or 'dst', paths=params['paths'] or ['/app'])
    desired = _task.desired_spec(params)
    only = _task.given_fields(desired) if pause and current is not None else None
    assert _task.target_spec('t1', current, desired, record, only=only) == (
        _records.normalize_task_spec(_task.merge_spec(current, desired, only=only)), [])


@SETTINGS
@given(record=records(phases=(_task.CUTOVER_RUNNING,)), current=stored_specs(), params=module_params(), same=st.booleans(),
       only=st.sampled_from(['none', 'given', 'state']))
def test_while_a_cutover_runs_any_change_is_refused(record, current, params, same, only):
    """target_spec raises ConfigError exactly when the normalized merged spec differs from the stored one; else it keeps it."""
    desired = desired_like(current, state=params['state']) if same else _task.desired_spec(params)
    only = {'none': None, 'given': _task.given_fields(desired), 'state': ('state',)}[only]
    merged = _records.normalize_task_spec(_task.merge_spec(current, desired, only=only))
    event('refused' if merged != current else 'kept')
    if merged != current:
        with pytest.raises(ConfigError) as refused:
            _task.target_spec('t1', current, desired, record, only=only)
        assert 'a cutover of task t1 is in progress (cutover state %s)' % record['state'] in str(refused.value)
    else:
        assert _task.target_spec('t1', current, desired, record, only=only) == (current, [])


def test_a_run_that_repeats_the_stored_spec_passes_during_a_cutover():
    current = _records.normalize_task_spec(_task.desired_spec(params()))
    for state in _task.CUTOVER_IN_PROGRESS:
        assert _task.target_spec('t1', current, desired_like(current), {'state': state, 'completed_at': None}) == (current, [])


@SETTINGS
@given(record=records(phases=(_task.CUTOVER_COMPLETED, _task.CUTOVER_ROLLED_BACK_AFTER_COMPLETION)), params=module_params(), data=st.data())
def test_after_a_completed_cutover_only_the_state_may_change(record, params, data):
    phase = _task.cutover_phase(record)
    # a completed cutover leaves its task stopped (a user may pause it); a rollback after completion may run it again
    current = data.draw(stored_specs(states=('stopped', 'paused') if phase == _task.CUTOVER_COMPLETED else _records.TASK_STATES))
    desired = _task.desired_spec(params)
    only = data.draw(st.sampled_from([None, _task.given_fields(desired)]))
    target, warnings = _task.target_spec('t1', current, desired, record, only=only)
    assert set(changed_fields(current, target)) <= set(['state'])
    if phase == _task.CUTOVER_COMPLETED:
        assert target['state'] != 'running', 'syncing restarted after a completed cutover'
    restarts = phase == _task.CUTOVER_COMPLETED and desired['state'] == 'running'
    assert target['state'] == (current['state'] if restarts else desired['state'])
    ignored = [field for field in _task.MANAGED_FIELDS if field != 'state' and field in desired and desired[field] != current[field]]
    ignored_warnings = [warning for warning in warnings if 'are not applied' in warning]
    event('%s: %s' % (phase, ', '.join(name for name, flag in (('changes ignored', ignored), ('restart refused', restarts)) if flag) or 'state applied'))
    assert len(ignored_warnings) == (1 if ignored else 0)
    if ignored:
        assert ignored_warnings[0].startswith('task t1 has a completed cutover: changes to %s are not applied' % ', '.join(ignored))
    assert len(warnings) - len(ignored_warnings) == (1 if restarts and current['state'] != 'running' else 0)
