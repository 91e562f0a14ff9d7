# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zk_sync_task through a real ansible-playbook run, real ZooKeeper ensembles and a real sync daemon.

playbooks/zk_sync_task.yml runs the whole sequence (check mode, create and
wait until in sync, re-run, change in check mode, pause, bad input, remove);
this test prepares the clusters, starts the daemon, and checks the control
store and both trees around the run: check mode and bad input write nothing.
"""

import pytest
from kazoo.security import ACL, Id, make_digest_acl

from tests.integration.ansible_runner import run_playbook
from tests.integration.test_cutover_engine import APP, CREDENTIALS, all_acls
from tests.integration.sync_support import persistent_tree

pytestmark = pytest.mark.integration


@pytest.fixture
def env(cutover_env):
    return cutover_env


def test_zk_sync_task_sequence(env):
    src, dst, store = env.src, env.dst, env.store
    other = env.base + '/other'
    src.create(other + '/a', b'a', makepath=True)
    app_all = make_digest_acl(APP[0], APP[1], all=True)
    noauth = env.base + '/noauth'
    src.create(noauth, b'', makepath=True)
    src.create(noauth + '/secret', b'only the app may read this', acl=[app_all])
    masked = env.base + '/masked'
    src.create(masked, b'', makepath=True)
    src.create(masked + '/app-admin', b'readable, but the app alone may see the ACL', acl=[app_all, ACL(1, Id('world', 'anyone'))])
    busy = env.base + '/busy'
    src.create(busy, b'', makepath=True)
    store.put_task({'name': 'busy', 'source': 'src', 'destination': 'dst', 'paths': [busy], 'state': 'stopped'})
    store.put_cutover('busy', {'state': 'frozen', 'source_frozen': True})
    busy_spec = store.get_task('busy')
    source_before = all_acls(src, env.base, fallback=env.src_app)
    env.daemon('d1')

    run = run_playbook('zk_sync_task.yml', extra_vars={
        'control': env.control(), 'credentials': CREDENTIALS, 'task': env.task, 'app': env.app, 'other': other,
        'missing_path': env.base + '/does-not-exist', 'noauth_path': noauth, 'masked_path': masked, 'busy_path': busy,
    })
    assert run.rc == 0, run.output()

    # check mode: the plan of the initial sync, nothing written
    planned = run.task('Create task in check mode')
    assert planned['changed'] is True and not planned['failed'], planned
    plan = planned['plan']
    assert plan['source_nodes'] == 19 and plan['destination_nodes'] == 0 and plan['in_sync'] is False
    # every persistent node is created; the two whose ACL forbids the migrator to create children get it set after
    # them, and the queue's sequential counter is raised
    assert plan['destination'] == {'create': 19, 'update': 0, 'delete': 0, 'set_acl': 2, 'raise_counter': 1}, plan
    assert plan['source'] == {'create': 0, 'update': 0, 'delete': 0, 'set_acl': 0, 'raise_counter': 0}
    assert plan['ephemeral_skipped'] == {'source': 2, 'destination': 0}
    assert planned['task']['paths'] == [env.app] and planned['task']['state'] == 'running'

    created = run.task('Create task')
    assert created['changed'] is True and not created['failed'], created
    assert created['operations'][0] == 'create task %s at %s' % (env.task, store.task_path(env.task))
    assert created['status']['phase'] == 'streaming' and created['leader'] == 'd1'
    assert created['plan']['destination']['create'] == 19     # the preflight ran before the task was written
    # the daemon made the destination equal to the source (data and ACLs)
    assert persistent_tree(dst, env.app) == persistent_tree(src, env.app)
    dest_acls = all_acls(dst, env.app)
    assert all(dest_acls[path] == acl for path, acl in all_acls(src, env.app).items() if path in dest_acls)

    rerun = run.task('Re-run task')
    assert rerun['changed'] is False and rerun['plan'] is None and rerun['operations'] == []

    change = run.task('Change task in check mode')
    assert change['changed'] is True and change['plan']['in_sync'] is True
    assert change['plan']['destination'] == {'create': 0, 'update': 0, 'delete': 0, 'set_acl': 0, 'raise_counter': 0}
    assert change['diff']['before']['exclude'] == [] and change['diff']['after']['exclude'] == [env.app + '/services']

    changed = run.task('Change task')
    assert changed['changed'] is True and changed['task']['max_write_rate'] == 500
    paused = run.task('Pause task')
    assert paused['changed'] is True and paused['task']['state'] == 'paused'
    assert paused['diff']['before']['state'] == 'running' and paused['diff']['after']['state'] == 'paused'
    # only the state changed: the options a minimal pause leaves out keep their stored values
    assert dict(paused['diff']['before'], state='paused') == paused['diff']['after']
    assert paused['task']['exclude'] == [env.app + '/services'] and paused['task']['max_write_rate'] == 500
    assert run.task('Re-run paused task')['changed'] is False
    stopped = run.task('Stop task')
    assert stopped['changed'] is True and stopped['task'] == dict(paused['task'], state='stopped')

    later = run.task('Check mode task with unregistered clusters')
    assert later['changed'] is True and not later['failed'] and later['plan'] is None
    assert later['msg'] == 'would create task later syncing registered-later to dst under %s' % env.app
    assert any("'registered-later'" in warning for warning in later['warnings'])

    messages = {
        'Bad missing source path': "does not exist on the source cluster 'src'",
        'Bad overlapping task': "overlaps path %r of task %r" % (env.app, env.task),
        'Bad destination equals source': "field 'destination' names the source cluster 'src'",
        'Bad unreadable path': "cannot read what the task must copy: not allowed to read znode %s/secret" % noauth,
        'Bad masked digest ACLs': 'hashes (ids read as "user:x") because the migration identity lacks ADMIN permission',
        'Bad unregistered cluster': "the source cluster 'registered-later' is not registered",
        'Bad wait on a paused task': 'wait=initial_sync needs state=running',
        'Bad pause of a task that does not exist': 'task bad-unknown-pause does not exist, so state=paused creates it: source, '
                                                   'destination, paths are required for that',
        'Bad change during a cutover': 'a cutover of task busy is in progress (cutover state frozen): the task cannot be changed now',
    }
    for task, expected in messages.items():
        result = run.task(task)
        assert result['changed'] is False and result['failed_when_result'] is False, (task, result)
        assert expected in result['msg'], (task, result['msg'])
    assert 'Missing znode' in run.task('Bad missing source path')['msg']
    assert run.task('Bad unreadable path')['msg'].startswith('Authentication or authorization failed')

    # nothing of the bad inputs nor of the check-mode tasks was written
    assert sorted(store.list_tasks()) == ['busy']    # the task was removed at the end, the others never written
    assert store.get_task('busy') == busy_spec
    for path in (other, noauth, masked, env.base + '/does-not-exist'):
        assert dst.exists(path) is None, path
    assert all_acls(src, env.base, fallback=env.src_app) == source_before

    assert run.task('Remove task in check mode')['changed'] is True
    removed = run.task('Remove task')
    assert removed['changed'] is True and removed['task'] is None
    assert run.task('Remove task again')['changed'] is False
