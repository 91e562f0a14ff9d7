# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ZooKeeper 3.9.3 (Debian trixie's jars) as a source and as a destination, with a real sync daemon.

3.4.13 -> 3.9, 3.8 -> 3.9 and 3.9 -> 3.8: the initial copy and the stream
carry data, ACLs and sequential counters, and the independent verification
finds both trees equal; the client listing of the source works on 3.9.
"""

import pytest
from kazoo.security import ACL, OPEN_ACL_UNSAFE, Id

from ansible_collections.zookeeper.migration.plugins.module_utils import _client
from ansible_collections.zookeeper.migration.plugins.module_utils._clients import list_clients
from ansible_collections.zookeeper.migration.plugins.module_utils._verify import verify

from tests.integration.sync_support import SyncEnv, cleanup_daemons, persistent_tree, wait_for
from tests.integration.test_source_clients import APPLICATION_HOST, application, session_id

pytestmark = pytest.mark.integration

READ_ONLY = [ACL(1, Id('world', 'anyone')), ACL(30, Id('world', 'anyone'))]


@pytest.fixture(params=[('3.4', '3.9'), ('3.8', '3.9'), ('3.9', '3.8')], ids=lambda pair: '%s-to-%s' % pair)
def versions_env(request, zk_34, zk_39, zk_standalone, zk_path, tmp_path, zk_client_factory):
    clusters = {'3.4': zk_34, '3.9': zk_39, '3.8': zk_standalone}
    source, destination = clusters[request.param[0]], clusters[request.param[1]]
    src = zk_client_factory(source)
    dst = zk_client_factory(destination)
    src.ensure_path(zk_path)
    env = SyncEnv(source, destination, zk_path, tmp_path, src, dst)
    yield env
    cleanup_daemons(env.daemons)
    print(env.logs())


def test_migrate_between_versions(versions_env):
    env = versions_env
    base = env.base
    env.src.create(base + '/config/a', b'first', makepath=True)
    env.src.create(base + '/config/binary', bytes(range(256)))
    env.src.create(base + '/config/read-only', b'r', acl=READ_ONLY)
    env.src.create(base + '/queue', b'', acl=OPEN_ACL_UNSAFE)
    for index in range(5):
        env.src.create(base + '/queue/job-', b'%d' % index, sequence=True)
    env.put_task()
    env.daemon('d1')
    env.streaming(timeout=60)
    env.in_sync(timeout=60)
    # the stream, after the initial copy
    env.src.set(base + '/config/a', b'second')
    env.src.create(base + '/queue/job-', b'5', sequence=True)
    env.src.delete(base + '/config/binary')
    wait_for(lambda: persistent_tree(env.src, base) == persistent_tree(env.dst, base), timeout=30, what='the stream to land')
    outcome = verify(env.src, env.dst, [base], compare=('data', 'type', 'counters', 'acl'), source_name='src', destination_name='dst')
    assert outcome.in_sync, outcome.to_dict()
    assert env.dst.get(base + '/config/a')[0] == b'second'
    assert env.dst.create(base + '/queue/job-', b'', sequence=True) == base + '/queue/job-%010d' % 6


def test_the_clients_of_a_39_source(zk_39):
    app = application(zk_39)
    try:
        report = list_clients(_client.ClusterSpec.from_dict({'name': 'zk39', 'hosts': zk_39.host_list}), watches=True)
        assert report['hosts'][APPLICATION_HOST]['session_ids'] == [session_id(app)], report
    finally:
        app.stop()
        app.close()
