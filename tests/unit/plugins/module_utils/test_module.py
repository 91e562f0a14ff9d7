# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module plumbing (_module.py) without ZooKeeper: spec helpers, secrets never returned nor logged, one message per error class.

Module runs here go through the real AnsibleModule argument handling
(``patch_module_args``) and stop before any connection is made. The modules'
own checks are in tests/unit/plugins/modules/test_zk_*.py.
"""

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.zookeeper.migration.plugins.module_utils import _module
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    AuthFailedError,
    ClusterUnreachableError,
    ConfigError,
    NoNodeError,
    SchemaError,
    VersionConflictError,
)
from ansible_collections.zookeeper.migration.plugins.modules import zk_cluster, zk_sync_info, zk_verify

from tests.unit.plugins.module_utils.helpers import SECRET, run_module


# -- spec helpers ------------------------------------------------------------

def test_prune_empty_drops_unset_suboptions():
    value = {'hosts': ['a:1'], 'auth': {'scheme': None, 'username': None}, 'tls': None, 'chroot': None, 'list': [{'x': None}]}
    assert _module.prune_empty(value) == {'hosts': ['a:1'], 'list': [{}]}


def test_cluster_spec_from_options_leaves_out_defaults_only_tls_and_auth():
    options = {
        'hosts': ['127.0.0.1:2181'], 'chroot': None, 'session_timeout': 10.0, 'connect_timeout': 10.0, 'root': '/x',
        'auth': {'scheme': 'digest', 'username': None, 'password': None, 'credential': None, 'mechanism': None,
                 'service': None, 'principal': None},
        'tls': {'enabled': None, 'ca_file': None, 'cert_file': None, 'key_file': None, 'key_password': None,
                'credential': None, 'verify': True, 'check_hostname': None},
    }
    spec = _module.cluster_spec_from_options(options, name='control')
    assert spec == {'hosts': ['127.0.0.1:2181'], 'session_timeout': 10.0, 'connect_timeout': 10.0, 'name': 'control'}


def test_cluster_spec_from_options_keeps_real_settings():
    options = {'hosts': ['h:1'], 'auth': {'scheme': 'digest', 'username': 'u', 'credential': 'c', 'password': None},
               'tls': {'enabled': True, 'ca_file': '/ca.pem', 'verify': False, 'check_hostname': False}}
    spec = _module.cluster_spec_from_options(options)
    assert spec['auth'] == {'scheme': 'digest', 'username': 'u', 'credential': 'c'}
    assert spec['tls'] == {'enabled': True, 'ca_file': '/ca.pem', 'verify': False, 'check_hostname': False}


def test_secrets_in_finds_nested_secrets_only():
    value = {'hosts': ['h'], 'auth': {'username': 'u', 'password': 'p1'}, 'tls': {'key_password': 'p2', 'ca_file': 'x'},
             'more': [{'password': 'p3'}], 'empty': {'password': ''}}
    assert sorted(_module.secrets_in(value)) == ['p1', 'p2', 'p3']


# -- secrets in raw options ---------------------------------------------------

def test_inline_secrets_in_raw_options_are_masked(capsys):
    args = {'source': {'hosts': ['127.0.0.1:1'], 'auth': {'scheme': 'digest', 'username': 'u', 'password': SECRET}},
            'destination': {'hosts': ['127.0.0.1:2']}, 'paths': ['/a']}
    with patch_module_args(args):
        module = _module.ZkMigrationModule(argument_spec=zk_verify.argument_spec(), supports_check_mode=True,
                                           raw_cluster_options=('source', 'destination'))
        assert SECRET in module.no_log_values
        with pytest.raises(SystemExit):
            module.exit_json(changed=False, echo=args['source'])
    out = capsys.readouterr().out
    assert SECRET not in out
    assert json.loads(out)['invocation']['module_args']['source']['hosts'] == ['127.0.0.1:1']


def test_credentials_option_is_never_returned(capsys):
    # The secrets of the no_log credentials option are masked wherever they appear.
    args = {'name': 'x', 'state': 'absent', 'credentials': {'c': {'type': 'digest', 'username': 'migrator-user', 'password': SECRET}}}
    code, result = run_module(zk_cluster, args, capsys)
    assert code == 1
    assert SECRET not in json.dumps(result)
    assert 'control option is required' in result['msg']


def test_credential_values_split_public_fields_from_secrets():
    credentials = {
        'digest': {'type': 'digest', 'username': 'migrator-user', 'password': SECRET},
        'kafka': {'type': 'sasl', 'mechanism': 'GSSAPI', 'service': 'zookeeper', 'principal': 'kafka/host@REALM', 'password': 'sasl-pw'},
        'tls': {'type': 'tls', 'key_password': 'key-pw'},
        'odd': {'type': 'digest', 'username': 'u', 'password': 'p', 'unknown': 'unknown-field', 'nested': {'deep': 'deep-value'}},
        'flat': 'a-string-entry',
        'numbers': {'type': 'digest', 'username': 42, 'password': 1234},
    }
    public, secret = _module.credential_values(credentials)
    assert public == {'digest', 'sasl', 'tls', 'migrator-user', 'GSSAPI', 'zookeeper', 'kafka/host@REALM', 'u'}
    assert secret == {SECRET, 'sasl-pw', 'key-pw', 'p', 'unknown-field', 'deep-value', 'a-string-entry', '42', '1234'}
    assert set(_module.PUBLIC_CREDENTIAL_FIELDS) == {'type', 'username', 'mechanism', 'service', 'principal'}


def _module_with(argument_spec=None, **kwargs):
    """A module on the current ``patch_module_args`` arguments (exit_json must run inside that context too)."""
    return _module.ZkMigrationModule(argument_spec=argument_spec or zk_sync_info.argument_spec(), supports_check_mode=True, **kwargs)


def test_only_credential_secrets_stay_masked(capsys):
    args = {'credentials': {'c': {'type': 'digest', 'username': 'migrator-user', 'password': SECRET},
                            't': {'type': 'tls', 'key_password': 'key-pw'}}}
    with patch_module_args(args):
        module = _module_with()
        assert {SECRET, 'key-pw'} <= module.no_log_values
        assert not {'digest', 'tls', 'migrator-user'} & module.no_log_values
        with pytest.raises(SystemExit):
            module.exit_json(changed=False, auth={'scheme': 'digest', 'username': 'migrator-user'}, echo='user migrator-user, password ' + SECRET)
    out = capsys.readouterr().out
    result = json.loads(out)
    assert SECRET not in out and 'key-pw' not in out
    assert result['auth'] == {'scheme': 'digest', 'username': 'migrator-user'}
    assert result['echo'] == 'user migrator-user, password ********'
    shown = result['invocation']['module_args']['credentials']
    assert shown['c']['type'] == 'digest' and shown['c']['username'] == 'migrator-user' and shown['t']['type'] == 'tls'


@pytest.mark.parametrize('args, raw', [
    # another credential's password
    ({'credentials': {'c': {'type': 'digest', 'username': 'shared-value', 'password': SECRET},
                      'd': {'type': 'digest', 'username': 'other', 'password': 'shared-value'}}}, ()),
    # the same credential's password
    ({'credentials': {'c': {'type': 'digest', 'username': 'shared-value', 'password': 'shared-value'}}}, ()),
    # a secret of another no_log option
    ({'credentials': {'c': {'type': 'digest', 'username': 'shared-value', 'password': SECRET}},
      'control': {'hosts': ['h:1'], 'auth': {'scheme': 'digest', 'username': 'x', 'password': 'shared-value'}}}, ()),
    # an inline secret of a raw cluster option
    ({'credentials': {'c': {'type': 'digest', 'username': 'shared-value', 'password': SECRET}},
      'source': {'hosts': ['h:1'], 'auth': {'scheme': 'digest', 'username': 'x', 'password': 'shared-value'}},
      'destination': {'hosts': ['h:2']}, 'paths': ['/a']}, ('source', 'destination')),
])
def test_a_public_credential_value_that_is_also_a_secret_stays_masked(args, raw, capsys):
    spec = zk_verify.argument_spec() if raw else zk_sync_info.argument_spec()
    with patch_module_args(args):
        module = _module_with(spec, raw_cluster_options=raw)
        assert 'shared-value' in module.no_log_values
        assert 'digest' not in module.no_log_values
        with pytest.raises(SystemExit):
            module.exit_json(changed=False, echo='shared-value', scheme='digest')
    out = capsys.readouterr().out
    assert 'shared-value' not in out and json.loads(out)['scheme'] == 'digest'


def test_invocation_log_still_leaves_out_the_whole_credentials_option(monkeypatch):
    logged = []
    monkeypatch.setattr(_module.ZkMigrationModule, 'log', lambda self, msg, log_args=None: logged.append((msg, log_args)))
    with patch_module_args({'credentials': {'c': {'type': 'digest', 'username': 'migrator-user', 'password': SECRET}}}):
        module = _module_with()
    assert logged, 'the invocation was not logged'
    msg, log_args = logged[0]
    assert log_args['credentials'] == 'NOT_LOGGING_PARAMETER'
    assert SECRET not in msg and 'migrator-user' not in msg
    assert 'migrator-user' not in module.no_log_values  # narrowed only after the invocation was logged


# -- error mapping -------------------------------------------------------------

@pytest.mark.parametrize('error, prefix', [
    (ClusterUnreachableError('cannot connect to cluster a: h:1: refused', failures={'h:1': 'refused'}), 'Cluster unreachable: '),
    (AuthFailedError('bad password'), 'Authentication or authorization failed: '),
    (ConfigError('hosts is empty'), 'Invalid configuration: '),
    (SchemaError('record is newer'), 'Unreadable control-store record: '),
    (NoNodeError('znode /a does not exist', path='/a'), 'Missing znode: '),
    (VersionConflictError('changed meanwhile'), 'Concurrent change, nothing overwritten: '),
])
def test_each_error_class_has_its_message(error, prefix, capsys):
    with patch_module_args({}):
        module = _module.ZkMigrationModule(argument_spec=zk_sync_info.argument_spec(), supports_check_mode=True)
        with pytest.raises(SystemExit):
            with module.engine_errors(changed=False):
                raise error
    result = json.loads(capsys.readouterr().out)
    assert result['failed'] is True
    assert result['msg'].startswith(prefix)
    assert result['error']['kind'] == error.kind
    if isinstance(error, ClusterUnreachableError):
        assert result['failures'] == {'h:1': 'refused'}


def test_bad_credentials_are_reported_without_the_secret(capsys):
    args = {'control': {'hosts': ['127.0.0.1:1']},
            'credentials': {'c': {'type': 'digest', 'username': 'u:x', 'password': SECRET}}}
    code, result = run_module(zk_sync_info, args, capsys)
    assert code == 1
    assert result['msg'].startswith('Invalid configuration: ')
    assert "credential 'c'" in result['msg']
    assert SECRET not in json.dumps(result)
