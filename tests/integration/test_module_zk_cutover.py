# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zk_cutover through real ansible-playbook runs, real ZooKeeper ensembles and a real sync daemon.

playbooks/zk_cutover.yml is run one tag at a time so that the znodes can be
checked in between: check mode changes nothing (every source and destination
ACL, the task spec, no cutover record), the cutover freezes the source and
completes, a re-run changes nothing, bad input fails clearly and writes
nothing; in the second test a completed cutover is rolled back and every
source ACL reads back exactly as before the freeze.
"""

import pytest
from kazoo.exceptions import NoAuthError

from tests.integration.ansible_runner import run_playbook
from tests.integration.test_cutover_engine import CREDENTIALS, all_acls, frozen_expected, persistent_paths
from tests.integration.sync_support import persistent_tree

pytestmark = pytest.mark.integration


@pytest.fixture
def env(cutover_env):
    return cutover_env


def play(env, tags, **extra):
    extra_vars = {'control': env.control(), 'credentials': CREDENTIALS, 'task': env.task}
    extra_vars.update(extra)
    run = run_playbook('zk_cutover.yml', extra_vars=extra_vars, tags=tags)
    assert run.rc == 0, run.output()
    return run


def test_zk_cutover_completed_with_freeze(env):
    other = env.base + '/other'
    env.src.create(other + '/a', b'a', makepath=True)
    env.store.put_task({'name': 'paused-task', 'source': 'src', 'destination': 'dst', 'paths': [other], 'state': 'paused'})
    env.put_task()
    env.daemon('d1')
    env.in_sync()
    source_acls = all_acls(env.src, env.app)
    destination_acls = all_acls(env.dst, env.app)
    migrated = persistent_paths(env.src, env.app)
    spec = env.store.get_task(env.task)

    run = play(env, ['check'])
    checked = run.task('Cut over in check mode')
    assert checked['changed'] is True and not checked['failed'], checked
    assert checked['frozen'] == len(migrated) and checked['state'] is None
    assert 'freeze %d source znode(s) read-only, saving their ACLs first' % len(migrated) in checked['operations']
    assert checked['diff'] == {'before': {}, 'after': {'task': env.task, 'state': 'completed'}}
    later = run.task('Cut over a task created later in check mode')
    assert later['changed'] is True and not later['failed'] and later['msg'] == 'would cut over task created-later'
    assert any("'created-later' does not exist" in warning for warning in later['warnings'])
    # check mode changed nothing
    assert all_acls(env.src, env.app) == source_acls and all_acls(env.dst, env.app) == destination_acls
    assert env.store.get_cutover(env.task) is None and env.store.get_task(env.task) == spec

    env.src.set(env.app + '/config/key-02', b'last write before the cutover')
    run = play(env, ['complete'], paused_task='paused-task', app=env.app)
    done = run.task('Cut over')
    assert done['changed'] is True and not done['failed'], done
    assert done['state'] == 'completed' and done['frozen'] == len(migrated) and done['acl_fixed'] == 0
    assert done['verify']['in_sync'] is True and done['verify']['acl_checked'] is True
    assert done['diff']['before'] == {} and done['diff']['after']['state'] == 'completed'
    assert done['operations'][-1] == 'stop task %s and record the cutover as completed' % env.task
    assert done['msg'].startswith('task %s cut over (source frozen; writes refused for ' % env.task), done['msg']
    assert done['write_outage']['seconds'] > 0 and done['freeze_proof']['other_identity_can_write'] is False
    # the last write made it; the source is frozen, the destination kept the original ACLs
    assert env.dst.get(env.app + '/config/key-02')[0] == b'last write before the cutover'
    assert persistent_tree(env.dst, env.app) == persistent_tree(env.src, env.app)
    frozen = all_acls(env.src, env.app)
    assert all(frozen[path] == frozen_expected(source_acls[path]) for path in migrated)
    assert all_acls(env.dst, env.app) == destination_acls
    with pytest.raises(NoAuthError):
        env.src_app.set(env.app + '/config/key-01', b'too late')
    record = env.store.get_cutover(env.task)
    assert record['state'] == 'completed' and record['source_frozen'] is True
    assert env.store.get_task(env.task)['state'] == 'stopped'

    again = run.task('Cut over again')
    assert again['changed'] is False and again['operations'] == [] and again['state'] == 'completed'

    # re-running the playbook's sync task does not restart syncing
    resync = run.task('Re-run the sync task after the cutover')
    assert resync['changed'] is False and resync['cut_over'] is True and resync['task']['state'] == 'stopped'
    assert any('not set running, so syncing does not restart' in warning for warning in resync['warnings'])
    remove = run.task('Bad remove of a cut-over task without force')
    assert remove['changed'] is False and 'has a cutover record (state completed)' in remove['msg'] and 'force' in remove['msg']
    assert env.store.get_task(env.task)['state'] == 'stopped'

    unknown = run.task('Bad unknown task')
    assert unknown['changed'] is False and unknown['failed_when_result'] is False
    assert "task 'no-such-task' does not exist in the control store at %s: create it with zookeeper.migration.zk_sync_task first" \
        % env.root in unknown['msg']
    paused = run.task('Bad paused task')
    assert paused['changed'] is False and "task 'paused-task' is paused: a cutover drains a running task" in paused['msg']
    assert run.task('Bad freeze with rollback')['msg'].startswith('freeze_source applies to state=completed')
    assert run.task('Bad drain timeout')['msg'] == 'drain_timeout must be a positive number of seconds'
    # bad input wrote nothing
    assert env.store.get_cutover('paused-task') is None and env.store.get_task('paused-task')['state'] == 'paused'
    assert env.store.get_cutover(env.task) == record and all_acls(env.src, env.app) == frozen


def test_zk_cutover_rolled_back_restores_source_acls_exactly(env):
    env.put_task()
    env.daemon('d1')
    env.in_sync()
    before = all_acls(env.src, env.base)     # every node, the ephemeral ones and the base too
    migrated = persistent_paths(env.src, env.app)
    completed = env.cutover().complete(freeze_source=True)
    assert completed['changed'] is True and completed['frozen'] == len(migrated)
    frozen = all_acls(env.src, env.base)
    assert frozen != before
    record = env.store.get_cutover(env.task)

    run = play(env, ['rollback_check'])
    checked = run.task('Roll back in check mode')
    assert checked['changed'] is True and checked['restored'] == len(migrated)
    assert all_acls(env.src, env.base) == frozen and env.store.get_cutover(env.task) == record
    assert env.store.get_task(env.task)['state'] == 'stopped'

    # clients already moved to the destination wrote there: after the rollback that write flows back
    env.dst.set(env.app + '/config/key-06', b'written on the destination')
    run = play(env, ['rollback'])
    rolled = run.task('Roll back')
    assert rolled['changed'] is True and not rolled['failed'], rolled
    assert rolled['state'] == 'rolled_back' and rolled['restored'] == len(migrated)
    assert rolled['diff']['before']['state'] == 'completed' and rolled['diff']['after']['state'] == 'rolled_back'
    assert all_acls(env.src, env.base) == before          # exactly: same entries, same order, on every node
    # the write made on the destination is on the source when the module returns, not some time later
    assert env.src.get(env.app + '/config/key-06')[0] == b'written on the destination'
    record = env.store.get_cutover(env.task)
    assert record['direction_after_cutover'] == 'destination_to_source' and record['source_frozen'] is False
    assert env.store.load_saved_acls(env.task) == {}
    assert sorted(env.store.load_saved_acls(env.task, side='destination')) == migrated
    assert run.task('Roll back again')['changed'] is False
    assert env.store.get_task(env.task)['state'] == 'stopped'
