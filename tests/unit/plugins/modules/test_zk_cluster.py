# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zk_cluster without ZooKeeper: the registration record it stores, option checks before connecting, the unreadable subtrees.

Module runs go through the real AnsibleModule argument handling (``patch_module_args``) and stop before any connection is made.
"""

import json

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError
from ansible_collections.zookeeper.migration.plugins.modules import zk_cluster

from tests.unit.plugins.module_utils.helpers import SECRET, run_module


def _cluster_params(**overrides):
    params = {'name': 'legacy', 'hosts': ['127.0.0.1:2181'], 'chroot': None, 'session_timeout': 10.0, 'connect_timeout': 10.0,
              'description': None, 'auth': None, 'tls': None}
    params.update(overrides)
    return params


def test_registration_record_holds_no_secret():
    params = _cluster_params(auth={'scheme': 'digest', 'username': 'super', 'password': SECRET, 'credential': 'legacy-super'},
                             tls={'enabled': None, 'ca_file': '/ca.pem', 'cert_file': None, 'key_file': None, 'key_password': None,
                                  'credential': None, 'verify': True})
    record = zk_cluster.registration_record(params)
    assert SECRET not in json.dumps(record)
    assert record['auth'] == {'scheme': 'digest', 'username': 'super', 'credential': 'legacy-super'}
    assert record['tls']['enabled'] is True and record['tls']['ca_file'] == '/ca.pem'


def test_registration_record_refuses_a_password_without_credential_name():
    params = _cluster_params(auth={'scheme': 'digest', 'username': 'super', 'password': SECRET, 'credential': None})
    with pytest.raises(ConfigError) as error:
        zk_cluster.registration_record(params)
    assert 'auth.credential' in str(error.value)
    assert SECRET not in str(error.value)


def test_registration_record_defaults_to_no_auth():
    record = zk_cluster.registration_record(_cluster_params())
    assert record['auth']['scheme'] == 'none'
    assert record['tls']['enabled'] is False


def test_zk_cluster_needs_hosts_when_present(capsys):
    code, result = run_module(zk_cluster, {'name': 'x', 'control': {'hosts': ['127.0.0.1:1']}}, capsys)
    assert code == 1
    assert 'hosts' in result['msg']


def test_zk_cluster_refuses_a_negative_summary_depth(capsys):
    code, result = run_module(zk_cluster, {'name': 'x', 'hosts': ['127.0.0.1:1'], 'summarize': -1,
                                           'control': {'hosts': ['127.0.0.1:1']}}, capsys)
    assert code == 1
    assert 'summarize' in result['msg']


def test_zk_cluster_refuses_a_bad_name_before_connecting(capsys):
    code, result = run_module(zk_cluster, {'name': 'no/slashes', 'hosts': ['127.0.0.1:1'], 'check_connectivity': False,
                                           'control': {'hosts': ['127.0.0.1:1'], 'connect_timeout': 0.5}}, capsys)
    assert code == 1
    assert result['msg'].startswith('Invalid configuration: ')
    assert 'no/slashes' in result['msg']
