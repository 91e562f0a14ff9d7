# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of _control_acl.py: the ACLs of control znodes and the ACL option parser."""


import pytest
from kazoo.client import KazooClient

from ansible_collections.zookeeper.migration.plugins.module_utils import _control_acl
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError

SECRET = 'S3cr3t-Value-do-not-leak'


def test_acl_option_parsing():
    acl = _control_acl.parse_acl_option([{'scheme': 'digest', 'id': 'm:hash', 'perms': 'rwcda'}, {'scheme': 'world', 'id': 'anyone', 'perms': 'r'}])
    assert [(entry.perms, entry.id.scheme) for entry in acl] == [(31, 'digest'), (1, 'world')]
    assert not _control_acl.acl_is_open(acl)
    assert _control_acl.acl_is_open(_control_acl.parse_acl_option([{'scheme': 'world', 'id': 'anyone', 'perms': 'all'}]))
    with pytest.raises(ConfigError, match='perms letters'):
        _control_acl.parse_acl_option([{'scheme': 'world', 'id': 'anyone', 'perms': 'rx'}])


def test_control_acl_choice():
    anonymous = KazooClient(hosts='127.0.0.1:1')
    # fails closed: no identity, no control ACL, unless the open store is asked for
    with pytest.raises(ConfigError, match='control session is not authenticated.*control.allow_open_acl: true'):
        _control_acl.control_acl(anonymous)
    acl, is_open = _control_acl.control_acl(anonymous, allow_open_acl=True)
    assert is_open and [(a.perms, a.id.scheme, a.id.id) for a in acl] == [(31, 'world', 'anyone')]
    authed = KazooClient(hosts='127.0.0.1:1', auth_data=[('digest', 'm:' + SECRET)])
    acl, is_open = _control_acl.control_acl(authed)
    # the migration identity only: not world-readable by default
    assert not is_open and [(a.perms, a.id.scheme) for a in acl] == [(31, 'auth')]
    assert SECRET not in repr(acl)
    acl, is_open = _control_acl.control_acl(authed, world_readable=True)
    assert not is_open and [(a.perms, a.id.scheme) for a in acl] == [(31, 'auth'), (1, 'world')]
    acl = _control_acl.control_acl(anonymous, identity='sasl:migrator@EXAMPLE.COM')[0]
    assert [(a.id.scheme, a.id.id) for a in acl] == [('sasl', 'migrator@EXAMPLE.COM')]
    # fences and journals on data clusters: the migration identity only, or open where it has none
    assert [(a.perms, a.id.scheme) for a in _control_acl.data_cluster_acl(authed)[0]] == [(31, 'auth')]
    assert _control_acl.data_cluster_acl(anonymous) == (_control_acl.OPEN_ACL_UNSAFE, True)


def test_world_access():
    from kazoo.security import ACL, Id, Permissions
    world = Id('world', 'anyone')
    assert _control_acl.world_access([ACL(Permissions.ALL, Id('auth', ''))]) == ''
    assert _control_acl.world_access([ACL(Permissions.READ, world)]) == 'r'
    assert _control_acl.world_access([ACL(Permissions.READ, world)], world_read=True) == ''
    assert _control_acl.world_access([ACL(Permissions.READ | Permissions.WRITE, world)], world_read=True) == 'w'
    assert _control_acl.world_access([ACL(Permissions.ALL, world)]) == 'rwcda'
