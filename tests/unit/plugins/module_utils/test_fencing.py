# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of _fencing.py: the fence check's placement in a transaction."""


import pytest
from kazoo.client import KazooClient
from kazoo.protocol.serialization import CheckVersion, Create

from ansible_collections.zookeeper.migration.plugins.module_utils import _fencing
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError


def test_fence_check_goes_first_in_a_transaction():
    client = KazooClient(hosts='127.0.0.1:1/base')          # never started: transactions build offline
    txn = client.transaction()
    txn.create('/data/x', b'1')
    _fencing.fence_check(txn, '/zookeeper-migration', 'orders', 7)
    assert txn.operations[0] == CheckVersion('/base/zookeeper-migration/fence/orders', 7)
    assert txn.operations[1].path == '/base/data/x'


def test_fence_check_on_raw_ops():
    ops = [Create('/data/x', b'', [], 0)]
    _fencing.fence_check(ops, '/zookeeper-migration', 'orders', 3, chroot='/base')
    assert ops[0] == CheckVersion('/base/zookeeper-migration/fence/orders', 3)
    with pytest.raises(ConfigError, match='epoch'):
        _fencing.fence_check([], '/zookeeper-migration', 'orders', -1)
