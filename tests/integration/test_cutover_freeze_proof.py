# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A freeze that does not hold is caught: a server that skips ACL checks, a super-user migrator, applications
that authenticate as the migrator. Real ZooKeeper servers and a real sync daemon (``CutoverEnv``)."""

import pytest
from kazoo.exceptions import NoAuthError
from kazoo.security import CREATOR_ALL_ACL

from ansible_collections.zookeeper.migration.plugins.module_utils._cutover import CutoverError
from ansible_collections.zookeeper.migration.plugins.module_utils._freeze import FreezeError

from tests.integration.sync_support import cleanup_daemons
from tests.integration.test_cutover_engine import APP, MIGRATOR, CutoverEnv, all_acls, persistent_paths

pytestmark = pytest.mark.integration


@pytest.fixture
def make_env(zk_path, tmp_path, zk_client_factory):
    made = []

    def make(source, destination, migrator=MIGRATOR):
        environment = CutoverEnv(source, destination, zk_path, tmp_path, zk_client_factory, migrator=migrator)
        made.append(environment)
        environment.put_task()
        environment.daemon('d1')
        environment.in_sync()
        return environment
    yield make
    for environment in made:
        cleanup_daemons(environment.daemons)
        print(environment.logs())


def test_a_server_that_skips_acl_checks_fails_the_freeze_proof_and_the_cutover_aborts(make_env, zk_cluster_factory, zk_dest):
    source = zk_cluster_factory('skipacl', system_properties={'zookeeper.skipACL': 'yes'})
    env = make_env(source, zk_dest)
    original = all_acls(env.src, env.app)
    with pytest.raises(CutoverError) as failed:
        env.cutover().complete(freeze_source=True)
    error = failed.value
    assert error.aborted is True
    assert 'does not hold' in str(error) and 'zookeeper.skipACL=yes' in str(error) and 'source ACLs restored' in str(error)
    # everything the freeze did is undone, and the task syncs again
    assert all_acls(env.src, env.app) == original
    assert env.store.load_saved_acls(env.task) == {}
    record = env.store.get_cutover(env.task)
    assert record['state'] == 'aborted' and record['source_frozen'] is False and 'skipACL' in record['last_error']
    assert env.store.get_task(env.task)['state'] == 'running'
    # the probes left nothing behind
    assert not [path for path in persistent_paths(env.src, env.app) if 'zkm-freeze-probe' in path]
    assert not [child for child in env.src.get_children(env.app) if child.startswith('zkm-freeze-probe')]


def test_a_super_user_migrator_is_refused_unless_allowed(make_env, zk_auth, zk_cluster_factory):
    # the migrator is the super user on both clusters
    destination = zk_cluster_factory('digest-destination', digest_auth=True)
    env = make_env(zk_auth, destination, migrator=(zk_auth.super_user, zk_auth.super_password))
    original = all_acls(env.src, env.app)
    with pytest.raises(CutoverError) as failed:
        env.cutover().complete(freeze_source=True)
    assert 'super user' in str(failed.value) and 'allow_shared_identity' in str(failed.value)
    assert all_acls(env.src, env.app) == original and env.store.get_cutover(env.task)['state'] == 'aborted'

    done = env.cutover(allow_shared_identity=True).complete(freeze_source=True)
    assert done['changed'] is True and done['cutover']['state'] == 'completed'
    assert done['freeze_proof'] == {'probed': True, 'path': env.app, 'other_identity_can_write': False, 'migrator_bypasses_acls': True}
    assert any('super user' in warning for warning in done['warnings'])
    # the freeze holds for the applications' own identity
    with pytest.raises(NoAuthError):
        env.src_app.set(env.app + '/config/key-01', b'a write after the cutover')


def test_applications_that_authenticate_as_the_migrator_are_refused_before_anything_is_frozen(
        make_env, zk_source, zk_dest, zk_client_factory):
    env = make_env(zk_source, zk_dest)
    # a live application session authenticated as the migrator registers itself (CREATOR_ALL: its identity only)
    app_as_migrator = zk_client_factory(zk_source, auth_data=[('digest', '%s:%s' % MIGRATOR)])
    app_as_migrator.create(env.app + '/services/host-9', b'10.0.0.9', ephemeral=True, acl=CREATOR_ALL_ACL)
    original = all_acls(env.src, env.app, fallback=env.src)
    for check_mode in (True, False):
        with pytest.raises(FreezeError, match='authenticate as the migrator') as failed:
            env.cutover().complete(freeze_source=True, check_mode=check_mode)
        assert failed.value.path == env.app + '/services/host-9'
        assert env.store.get_cutover(env.task) is None and all_acls(env.src, env.app) == original
    assert env.store.get_task(env.task)['state'] == 'running'

    done = env.cutover(allow_shared_identity=True).complete(freeze_source=True)
    assert done['changed'] is True and any('allow_shared_identity' in warning for warning in done['warnings'])
    # the application with its own identity is stopped; the one sharing the migrator's is not: that is what was allowed
    with pytest.raises(NoAuthError):
        zk_client_factory(zk_source, auth_data=[('digest', '%s:%s' % APP)]).set(env.app + '/config/key-01', b'stopped')
    app_as_migrator.set(env.app + '/config/key-01', b'not stopped')
