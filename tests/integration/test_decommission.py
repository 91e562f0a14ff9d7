# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decommissioning a cut-over task (_decommission.py) against real ZooKeeper ensembles and a real sync daemon.

After a cutover with a frozen source and ``acl_mode: grant_migrator``:
nothing of the task is left under the control root, no fence or journal on
either cluster, no migrator grant the source did not have; the saved source
ACLs are exported first (refused otherwise), and a source already shut down
is reported, not an error.
"""

import os
import stat

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils import _fencing
from ansible_collections.zookeeper.migration.plugins.module_utils._decommission import Decommission, read_saved_acls
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError

from tests.integration.sync_support import cleanup_daemons
from tests.integration.test_cutover_engine import MIGRATOR, CutoverEnv, all_acls, digest_id, persistent_paths

pytestmark = pytest.mark.integration

MIGRATOR_ENTRY = (31, 'digest', digest_id(MIGRATOR))


def cut_over(env):
    env.put_task(acl_mode='grant_migrator')
    env.daemon('d1')
    env.in_sync()
    original = all_acls(env.src, env.app)
    done = env.cutover().complete(freeze_source=True)
    assert done['cutover']['state'] == 'completed', done
    return original


def leftovers(client, root, task):
    """What of ``task`` is still on a cluster: its fence, its journal."""
    return [path for path in (_fencing.fence_path(root, task), _fencing.journal_path(root, task)) if client.exists(path)]


@pytest.fixture
def env(cutover_env):
    return cutover_env


def test_decommission_leaves_nothing_behind(env, tmp_path):
    original = cut_over(env)
    destination_paths = persistent_paths(env.dst, env.app)
    assert leftovers(env.src, env.root, env.task) or leftovers(env.dst, env.root, env.task)
    assert any(MIGRATOR_ENTRY in acl for acl in all_acls(env.dst, env.app).values())
    decommission = Decommission(env.store, env.task, credentials=env.credentials)

    # a cutover record needs force; a frozen source needs its saved ACLs exported first
    with pytest.raises(ConfigError, match='force'):
        decommission.run()
    with pytest.raises(ConfigError, match='source of task .* is frozen: %d saved ACL' % len(persistent_paths(env.src, env.app))):
        decommission.run(force=True)
    export = str(tmp_path / 'saved-acls.json')
    planned = Decommission(env.store, env.task, credentials=env.credentials).run(force=True, saved_acls_export=export, check_mode=True)
    assert planned['changed'] is True and not os.path.exists(export) and env.store.get_task(env.task) is not None

    done = Decommission(env.store, env.task, credentials=env.credentials).run(force=True, saved_acls_export=export)
    assert done['changed'] is True, done
    assert stat.S_IMODE(os.stat(export).st_mode) == 0o600
    assert read_saved_acls(export)['source'] == dict((path, original[path]) for path in persistent_paths(env.src, env.app))
    # nothing of the task under the control root, on either cluster
    assert env.store.get_task(env.task) is None and env.task not in env.store.list_tasks()
    assert not env.control_client.exists(env.store.task_path(env.task))
    assert leftovers(env.src, env.root, env.task) == [] and leftovers(env.dst, env.root, env.task) == []
    assert done['removed']['fence'] >= 1 and done['removed']['control'] is True
    # the migrator keeps only the grants the source gave it
    after = all_acls(env.dst, env.app)
    assert sorted(after) == destination_paths
    for path, acl in after.items():
        assert (MIGRATOR_ENTRY in acl) == (MIGRATOR_ENTRY in original[path]), path
    assert done['removed']['grants'] == sum(1 for path in destination_paths if MIGRATOR_ENTRY not in original[path])
    # a re-run changes nothing
    again = Decommission(env.store, env.task, credentials=env.credentials).run(force=True, saved_acls_export=export)
    assert again['changed'] is False


def test_a_source_already_shut_down_is_reported(zk_cluster_factory, zk_dest, zk_path, tmp_path, zk_client_factory):
    source = zk_cluster_factory('decommission-source')
    env = CutoverEnv(source, zk_dest, zk_path, tmp_path, zk_client_factory)
    try:
        cut_over(env)
        cleanup_daemons(env.daemons)
        source.stop()
        done = Decommission(env.store, env.task, credentials=env.credentials).run(force=True,
                                                                                  saved_acls_export=str(tmp_path / 'acls.json'))
        assert done['changed'] is True and env.store.get_task(env.task) is None
        assert any('unreachable' in warning and 'src' in warning for warning in done['warnings']), done['warnings']
        assert leftovers(env.dst, env.root, env.task) == []
    finally:
        cleanup_daemons(env.daemons)
