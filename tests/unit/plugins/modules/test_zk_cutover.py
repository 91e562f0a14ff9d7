# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zk_cutover without ZooKeeper: the option checks it makes before connecting.

The cutover engine's pure parts are tested in tests/unit/plugins/module_utils/test_cutover.py.
"""

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.zookeeper.migration.plugins.modules import zk_cutover


def run_module(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exited:
            zk_cutover.main()
    return exited.value.code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize('extra, message', [
    ({'drain_timeout': 0}, 'drain_timeout must be a positive number of seconds'),
    ({'state': 'rolled_back', 'freeze_source': True}, 'freeze_source applies to state=completed'),
])
def test_option_checks_fail_before_connecting(extra, message, capsys):
    args = {'task': 't1', 'control': {'hosts': ['127.0.0.1:1']}}
    args.update(extra)
    code, result = run_module(args, capsys)
    assert code == 1 and result['msg'].startswith(message) and result['changed'] is False


def test_control_is_required(capsys):
    code, result = run_module({'task': 't1'}, capsys)
    assert code == 1 and 'control option is required to cut over sync tasks' in result['msg']
