# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Elections (_election.py), the part that needs no server: where a task's election lives.

Leadership itself (contending, losing the session, the epoch, the contenders in order) is a kazoo lock on a real
ensemble: tests/integration/test_control.py and tests/integration/test_sync_failover.py.
"""

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils import _election, _records
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError


@pytest.mark.parametrize('root, task, path', [
    ('/zookeeper-migration', 't1', '/zookeeper-migration/tasks/t1/election'),
    ('/ops/migration/', 'orders.v2', '/ops/migration/tasks/orders.v2/election'),
    (_records.DEFAULT_ROOT, 'a-b_c', _records.DEFAULT_ROOT + '/tasks/a-b_c/election'),
])
def test_the_election_is_under_the_task(root, task, path):
    assert _election.election_path(root, task) == path


@pytest.mark.parametrize('root, task, message', [
    ('/zookeeper-migration', 'a/b', 'task name must be'),
    ('/zookeeper-migration', '', 'task name must be'),
    ('/zookeeper-migration', '../t1', 'task name must be'),
    ('/', 't1', 'control root must not be "/"'),
    ('/zookeeper/quota', 't1', 'control root must not be under /zookeeper'),
    ('relative', 't1', 'control root must be an absolute znode path'),
])
def test_a_bad_root_or_task_name_is_refused_before_any_read(root, task, message):
    with pytest.raises(ConfigError, match=message):
        _election.election_path(root, task)
