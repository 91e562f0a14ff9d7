# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zk_sync_task without ZooKeeper: the option checks it makes before connecting.

Module runs go through the real AnsibleModule argument handling (``patch_module_args``)
and stop before any connection is made. The task engine (_task.py) is tested in
tests/unit/plugins/module_utils/test_task.py.
"""

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.zookeeper.migration.plugins.modules import zk_sync_task


def run_module(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exited:
            zk_sync_task.main()
    return exited.value.code, json.loads(capsys.readouterr().out)


BASE = {'name': 't1', 'source': 'src', 'destination': 'dst', 'paths': ['/app'], 'control': {'hosts': ['127.0.0.1:1']}}


@pytest.mark.parametrize('extra, message', [
    ({'wait': 'in_sync', 'state': 'paused'}, 'wait=in_sync needs state=running'),
    ({'wait_timeout': 0}, 'wait_timeout must be a positive number of seconds'),
    ({'max_write_rate': -1}, 'max_write_rate must be 0 (unlimited)'),
    ({'force': True}, 'force only applies with state=absent'),
])
def test_option_checks_fail_before_connecting(extra, message, capsys):
    args = dict(BASE)
    args.update(extra)
    code, result = run_module(args, capsys)
    assert code == 1 and result['failed'] is True
    assert message in result['msg']


def test_source_destination_and_paths_are_required_unless_absent(capsys):
    code, result = run_module({'name': 't1', 'source': 'src', 'control': {'hosts': ['h:1']}}, capsys)
    assert code == 1 and 'destination' in result['msg'] and 'paths' in result['msg']


def test_control_is_required(capsys):
    args = dict(BASE)
    del args['control']
    code, result = run_module(args, capsys)
    assert code == 1 and 'control option is required to manage sync tasks' in result['msg']
