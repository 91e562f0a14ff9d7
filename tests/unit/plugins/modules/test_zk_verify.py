# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zk_verify without ZooKeeper: option checks before connecting, the failure message naming the differences.

Module runs go through the real AnsibleModule argument handling (``patch_module_args``) and stop before any connection is made.
The verification engine is tested in tests/unit/plugins/module_utils/test_verify.py.
"""

from ansible_collections.zookeeper.migration.plugins.modules import zk_verify

from tests.unit.plugins.module_utils.helpers import run_module


def test_zk_verify_needs_clusters_or_a_task(capsys):
    code, result = run_module(zk_verify, {'paths': ['/a']}, capsys)
    assert code == 1
    assert 'task' in result['msg'] and 'source' in result['msg']


def test_zk_verify_refuses_a_task_with_clusters(capsys):
    code, result = run_module(zk_verify, {'task': 't', 'source': 'a', 'destination': 'b'}, capsys)
    assert code == 1
    assert 'mutually exclusive' in result['msg']


def test_zk_verify_refuses_an_unknown_compare_aspect(capsys):
    code, result = run_module(zk_verify, {'source': 'a', 'destination': 'b', 'compare': ['data', 'mtime']}, capsys)
    assert code == 1
    assert 'compare' in result['msg']


def test_zk_verify_with_names_needs_a_control_store(capsys):
    code, result = run_module(zk_verify, {'source': 'a', 'destination': {'hosts': ['127.0.0.1:1']}}, capsys)
    assert code == 1
    assert 'control option is required' in result['msg']


def test_zk_verify_refuses_a_source_of_the_wrong_type(capsys):
    code, result = run_module(zk_verify, {'source': ['a'], 'destination': 'b'}, capsys)
    assert code == 1
    assert 'registered cluster name or a dict' in result['msg']


def test_describe_differences_names_counts_and_first_paths():
    result = {'counts': {'source_nodes': 5, 'destination_nodes': 4, 'missing': 2, 'extra': 0, 'data_mismatch': 1,
                         'ephemeral_skipped': 3, 'spot_check_mismatch': 1},
              'differences': {'missing': ['/a', '/b'], 'data_mismatch': ['/c'], 'spot_check': ['/d']}}
    text = zk_verify.describe_differences(result)
    assert text == '2 missing (first: /a), 1 data_mismatch (first: /c), 1 spot_check_mismatch (first: /d)'
