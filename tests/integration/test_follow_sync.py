# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Following the initial sync (playbooks/tasks/follow_initial_sync.yml) stops fast when no live daemon leads the task.

Real ansible-playbook runs against a real control store: a task nobody
leads, and a task whose last status says ``streaming`` but was written long
ago by a daemon that is gone, both fail within zk_migration_leaderless_timeout
(not the hours of the initial sync timeout) and say why; a live daemon's
status ends the follow.
"""

import time

import pytest

from tests.integration.ansible_runner import run_playbook

pytestmark = pytest.mark.integration


def follow(env, **extra):
    variables = {'control': {'hosts': env.destination.host_list, 'root': env.root, 'allow_open_acl': True}, 'credentials': {},
                 'zk_migration_task': env.task, 'zk_migration_leaderless_timeout': 3}
    variables.update(extra)
    return run_playbook('follow_sync.yml', extra_vars=variables, timeout=300)


def test_no_leader_fails_fast(sync_env):
    env = sync_env
    env.put_task()
    started = time.monotonic()
    run = follow(env)
    assert run.rc != 0
    failed = run.task('Give up when no live daemon leads the task')
    assert failed['failed'] is True and 'No live sync daemon has led task %s' % env.task in failed['msg'], failed
    assert 'systemctl status zookeeper-migration-sync' in failed['msg']
    assert time.monotonic() - started < 240     # not the initial sync timeout (600 polls here); a bound, not a measurement


def test_a_stale_streaming_status_is_not_taken_for_done(sync_env):
    env = sync_env
    env.put_task()
    env.store.put_status(env.task, {'phase': 'streaming', 'leader': 'gone', 'heartbeat': time.time() - 3600})
    run = follow(env, zk_migration_stale_after=30)
    assert run.rc != 0
    shown = run.task('Show the progress')
    assert 'stale' in shown['msg'] and 's old: its daemon is gone or frozen' in shown['msg'], shown
    assert 'last status' in run.task('Give up when no live daemon leads the task')['msg']


def test_a_live_leader_ends_the_follow(sync_env):
    env = sync_env
    env.put_task()
    env.daemon('d1')
    env.streaming()
    run = follow(env)
    assert run.rc == 0, run.output()
    assert run.task('Give up when no live daemon leads the task')['_status'] == 'skipped'
