# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""take_snapshot(unreadable=[...]) against a real ZooKeeper server: znodes whose ACL denies READ are
listed and their subtrees skipped instead of failing the walk (zk_cluster's summary uses it), with
multiRead and with pipelined single reads alike."""

import pytest
from kazoo.security import ACL, Id, Permissions, make_digest_acl

from ansible_collections.zookeeper.migration.plugins.module_utils import _client
from ansible_collections.zookeeper.migration.plugins.module_utils import _errors as errors
from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import take_snapshot

pytestmark = pytest.mark.integration


@pytest.mark.parametrize('multi_read', [True, False], ids=['multiread', 'pipelined'])
def test_unreadable_znodes_are_listed_and_skipped(zk_auth, zk_path, multi_read):
    owner_only = [make_digest_acl('owner', 'owner-password', all=True)]
    all_but_read = [ACL(Permissions.ALL & ~Permissions.READ, Id('world', 'anyone'))] + owner_only
    with _client.connected(zk_auth.client_spec()) as admin:     # superDigest: creates what it then locks
        admin.create(zk_path + '/open/leaf', b'abc', makepath=True)
        admin.create(zk_path + '/open/private/inner', b'secret', makepath=True)
        admin.set_acls(zk_path + '/open/private', owner_only)
        admin.create(zk_path + '/locked/inner', b'x', makepath=True)
        admin.set_acls(zk_path + '/locked', all_but_read)
    with _client.connected(zk_auth.client_spec(auth=False)) as client:
        unreadable = []
        snapshot = take_snapshot(client, [zk_path], with_acl=False, multi_read=multi_read, cluster='digest', unreadable=unreadable)
        assert sorted(unreadable) == [zk_path + '/locked', zk_path + '/open/private']
        assert sorted(snapshot.nodes) == [zk_path, zk_path + '/open', zk_path + '/open/leaf']
        # without the list, the walk still fails on the first node it may not read
        with pytest.raises(errors.AuthFailedError):
            take_snapshot(client, [zk_path], with_acl=False, multi_read=multi_read, cluster='digest')
