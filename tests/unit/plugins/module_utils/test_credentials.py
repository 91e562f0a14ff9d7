# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of _credentials.py: the credentials model: file checks, redaction, reload and resolution."""

import json
import logging
import os

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils import _credentials
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError


SECRET = 'S3cr3t-Value-do-not-leak'


KEY_SECRET = 'Key-Passphrase-do-not-leak'


def _write(tmp_path, text, mode=0o600, name='credentials.yml'):
    path = tmp_path / name
    path.write_text(text)
    os.chmod(str(path), mode)
    return str(path)


GOOD_YAML = """
migrator:
  type: digest
  username: migrator
  password: "%s"
kerberos:
  type: sasl
  mechanism: GSSAPI
  principal: migrator@EXAMPLE.COM
md5:
  type: sasl
  mechanism: digest-md5
  username: svc
  password: "%s"
client-key:
  type: tls
  key_password: "%s"
""" % (SECRET, SECRET, KEY_SECRET)


def test_load_credentials_yaml(tmp_path):
    creds = _credentials.load_credentials(_write(tmp_path, GOOD_YAML))
    assert sorted(creds) == ['client-key', 'kerberos', 'md5', 'migrator']
    assert creds['migrator'].username == 'migrator' and creds['migrator'].password == SECRET
    assert creds['md5'].mechanism == 'DIGEST-MD5'
    assert creds['client-key'].key_password == KEY_SECRET
    text = repr(creds) + str(creds['migrator']) + repr(creds['client-key'])
    assert SECRET not in text and KEY_SECRET not in text and '<redacted>' in text
    assert creds['migrator'].describe() == {'name': 'migrator', 'type': 'digest', 'username': 'migrator'}


def test_load_credentials_json(tmp_path):
    data = {'migrator': {'type': 'digest', 'username': 'm', 'password': SECRET}}
    creds = _credentials.load_credentials(_write(tmp_path, json.dumps(data), mode=0o400, name='c.json'))
    assert creds['migrator'].password == SECRET


def test_empty_credentials_file_is_an_empty_set(tmp_path):
    assert _credentials.load_credentials(_write(tmp_path, '')) == {}


@pytest.mark.parametrize('mode', [0o644, 0o640, 0o604, 0o660, 0o666])
def test_credentials_file_mode_refused(tmp_path, mode):
    path = _write(tmp_path, GOOD_YAML, mode=mode)
    with pytest.raises(ConfigError) as err:
        _credentials.load_credentials(path)
    assert ('mode %04o' % mode) in str(err.value) and 'chmod 600' in str(err.value)
    assert SECRET not in str(err.value)


@pytest.mark.skipif(os.geteuid() != 0, reason='changing a file owner needs root')
def test_credentials_file_owner_refused(tmp_path):
    path = _write(tmp_path, GOOD_YAML)
    os.chown(path, 65534, -1)
    with pytest.raises(ConfigError, match='owned by uid 65534'):
        _credentials.load_credentials(path)


def test_credentials_file_missing_or_not_a_file(tmp_path):
    with pytest.raises(ConfigError, match='does not exist'):
        _credentials.load_credentials(str(tmp_path / 'nope.yml'))
    with pytest.raises(ConfigError, match='not a regular file'):
        _credentials.load_credentials(str(tmp_path))


@pytest.mark.parametrize('text, message', [
    ('migrator:\n  type: digest\n  username: m\n', "field 'password' is required"),
    ('migrator:\n  type: digest\n  password: "%s"\n' % SECRET, "field 'username' is required"),
    ('migrator:\n  type: kerberos5\n  password: "%s"\n' % SECRET, "field 'type' is not a known type"),
    ('migrator:\n  username: m\n  password: "%s"\n' % SECRET, "field 'type' is missing"),
    ('migrator:\n  type: digest\n  username: m\n  password: "%s"\n  passwd: "%s"\n' % (SECRET, SECRET), "unknown field 'passwd'"),
    ('migrator:\n  type: digest\n  username: m\n  password: 12345\n', "must be a string (quote it in YAML)"),
    ('migrator:\n  type: digest\n  username: "m:x"\n  password: "%s"\n' % SECRET, 'must not contain ":"'),
    ('k:\n  type: tls\n', "field 'key_password' is required"),
    ('s:\n  type: sasl\n  mechanism: PLAIN\n  username: u\n  password: "%s"\n' % SECRET, "field 'mechanism' must be one of"),
    ('s:\n  type: sasl\n  mechanism: DIGEST-MD5\n  username: u\n', "field 'password' is required"),
    ('migrator: "%s"\n' % SECRET, 'must be a mapping, got str'),
    ('- "%s"\n' % SECRET, 'must be a mapping of credential name'),
    ('migrator:\n  type: digest\n  password: "%s\n  bad: [\n' % SECRET, 'not valid YAML near line'),
    ('{"migrator": {"type": "digest", "password": "%s",}}' % SECRET, 'not valid JSON near line'),
])
def test_credentials_errors_never_show_secrets(tmp_path, caplog, text, message):
    caplog.set_level(logging.DEBUG)
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        _credentials.load_credentials(path)
    assert message in str(err.value)
    assert path in str(err.value)
    assert SECRET not in str(err.value) and SECRET not in repr(err.value)
    assert SECRET not in json.dumps(err.value.to_dict())
    assert '12345' not in str(err.value)
    assert SECRET not in caplog.text


def test_credential_store_reload_and_resolve(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    path = _write(tmp_path, GOOD_YAML)
    store = _credentials.CredentialStore.from_file(path)
    assert store.resolve('migrator').password == SECRET
    assert 'migrator' in store and len(store) == 4
    assert SECRET not in repr(store) and KEY_SECRET not in str(store) and 'migrator' in repr(store)
    with pytest.raises(ConfigError, match="credential 'nobody' is not defined"):
        store.resolve('nobody')
    with pytest.raises(ConfigError, match='is of type digest, but type tls'):
        store.resolve('migrator', 'tls')
    # rotate the secret: reload (what the daemon does on SIGHUP) picks it up
    rotated = GOOD_YAML.replace(SECRET, SECRET + '-2')
    with open(path, 'w') as handle:
        handle.write(rotated)
    assert store.reload() == ['client-key', 'kerberos', 'md5', 'migrator']
    assert store.resolve('migrator').password == SECRET + '-2'
    # a broken file keeps the previous credentials in force
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match='mode 0644'):
        store.reload()
    assert store.resolve('migrator').password == SECRET + '-2'
    assert SECRET not in caplog.text and KEY_SECRET not in caplog.text


def test_credential_store_from_module_option():
    store = _credentials.CredentialStore.from_mapping({'migrator': {'type': 'digest', 'username': 'm', 'password': SECRET}})
    assert store.resolve('migrator').password == SECRET
    assert SECRET not in repr(store)
    assert len(_credentials.CredentialStore.from_mapping(None)) == 0
    with pytest.raises(ConfigError) as err:
        _credentials.CredentialStore.from_mapping({'migrator': {'type': 'digest', 'password': SECRET}})
    assert 'credentials option' in str(err.value) and SECRET not in str(err.value)
