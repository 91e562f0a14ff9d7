# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Nodes the sync creates without copying ACLs are never opened wider than their destination parent.

A real daemon syncs a task with ``sync_acl: false`` into a destination
subtree whose ACL gives world:anyone everything but ADMIN: what the bulk copy
and the stream create there, at any depth, takes that ACL, not the client
default world:anyone ALL.
"""

import pytest
from kazoo.security import ACL, OPEN_ACL_UNSAFE, Id

from tests.integration.sync_support import wait_for

pytestmark = pytest.mark.integration

NO_ADMIN = [ACL(15, Id('world', 'anyone'))]


def acl_of(client, path):
    return [(entry.perms, entry.id.scheme, entry.id.id) for entry in client.get_acls(path)[0]]


def test_creates_without_acl_sync_inherit_the_destination_parent(sync_env):
    env = sync_env
    env.dst.create(env.base, b'', acl=NO_ADMIN, makepath=True)
    env.src.create(env.base + '/copied/by-the-bulk-copy', b'1', acl=OPEN_ACL_UNSAFE, makepath=True)
    env.put_task(sync_acl=False)
    env.daemon('d1')
    env.streaming()
    env.src.create(env.base + '/streamed/a/b', b'2', acl=OPEN_ACL_UNSAFE, makepath=True)
    env.in_sync()
    wait_for(lambda: env.dst.exists(env.base + '/streamed/a/b'), timeout=20, what='the streamed create')
    for path in ('/copied', '/copied/by-the-bulk-copy', '/streamed', '/streamed/a', '/streamed/a/b'):
        assert acl_of(env.dst, env.base + path) == [(15, 'world', 'anyone')], path
    # the source keeps its own ACLs: nothing was copied either way
    assert acl_of(env.src, env.base + '/streamed/a/b') == [(31, 'world', 'anyone')]
