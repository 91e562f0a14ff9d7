# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the daemon's config, logging, status table and CLI (no ZooKeeper needed)."""

import io
import json
import logging
import os

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError
from ansible_collections.zookeeper.migration.plugins.module_utils import _daemon, _registration


def minimal(**extra):
    config = {'daemon_id': 'host-a', 'control': {'hosts': ['127.0.0.1:2181']}}
    config.update(extra)
    return config


class TestValidateConfig(object):
    def test_minimal_config_gets_defaults(self):
        config = _daemon.validate_config(minimal())
        assert config['root'] == '/zookeeper-migration'
        assert config['metrics_address'] == '127.0.0.1:9464'
        assert config['log_level'] == 'INFO' and config['full_reconcile_interval'] == 300.0
        assert config['control']['hosts'] == ['127.0.0.1:2181'] and config['control']['auth']['scheme'] == 'none'

    def test_everything_set(self):
        config = _daemon.validate_config(minimal(root='/mig', credentials_file='/etc/creds.yml', metrics_address='0.0.0.0:9100',
                                                 log_level='debug', full_reconcile_interval=0, status_interval=1, checkpoint_interval=0.5,
                                                 batch_size=100, max_request_bytes=4194304, task_retry_delay=2,
                                                 control={'hosts': 'zk1:2181,zk2:2181', 'chroot': '/c', 'session_timeout': 6,
                                                          'auth': {'scheme': 'digest', 'username': 'mig', 'credential': 'migrator'}}))
        assert config['log_level'] == 'DEBUG' and config['full_reconcile_interval'] == 0.0
        assert config['control']['hosts'] == ['zk1:2181', 'zk2:2181'] and config['control']['chroot'] == '/c'

    def test_metrics_can_be_turned_off(self):
        assert _daemon.validate_config(minimal(metrics_address=None))['metrics_address'] is None
        assert _daemon.validate_config(minimal(metrics_address=''))['metrics_address'] is None

    @pytest.mark.parametrize('raw,message', [
        ({'control': {'hosts': ['h:1']}}, 'daemon_id is required'),
        (minimal(daemon_id='bad id!'), 'daemon_id'),
        ({'daemon_id': 'a'}, 'control is required'),
        (minimal(control={'hosts': []}), 'control'),
        (minimal(control={'hosts': ['h:1'], 'password': 'x'}), 'control'),
        (minimal(control={'hosts': ['h:1'], 'auth': {'scheme': 'digest', 'username': 'u', 'credential': 'c'}}), 'credentials_file'),
        (minimal(colour='blue'), 'unknown setting(s) colour'),
        (minimal(metrics_address='9464'), 'metrics_address'),
        (minimal(metrics_address='host:99999'), 'metrics_address'),
        (minimal(log_level='chatty'), 'log_level'),
        (minimal(batch_size=0), 'batch_size'),
        (minimal(batch_size=1.5), 'batch_size'),
        (minimal(status_interval='fast'), 'status_interval'),
        (minimal(full_reconcile_interval=-1), 'full_reconcile_interval'),
        (minimal(root='relative'), 'root'),
        (['not', 'a', 'mapping'], 'mapping'),
    ])
    def test_errors_name_the_setting(self, raw, message):
        with pytest.raises(ConfigError) as caught:
            _daemon.validate_config(raw)
        assert message in str(caught.value)

    def test_secrets_in_the_control_spec_are_refused_without_echoing_them(self):
        with pytest.raises(ConfigError) as caught:
            _daemon.validate_config(minimal(control={'hosts': ['h:1'], 'auth': {'scheme': 'digest', 'password': 'hunter2'}}))
        assert 'hunter2' not in str(caught.value)


class TestLoadConfig(object):
    def test_yaml_and_json(self, tmp_path):
        yaml_file = tmp_path / 'daemon.yml'
        yaml_file.write_text('daemon_id: a\ncontrol:\n  hosts: ["127.0.0.1:2181"]\nlog_level: WARNING\n')
        assert _daemon.load_config(str(yaml_file))['log_level'] == 'WARNING'
        json_file = tmp_path / 'daemon.json'
        json_file.write_text(json.dumps(minimal()))
        assert _daemon.load_config(str(json_file))['daemon_id'] == 'host-a'

    @pytest.mark.parametrize('text,message', [('', 'empty'), ('{"daemon_id": ', 'not valid JSON'),
                                              ('daemon_id: [unclosed\n', 'not valid YAML near line')])
    def test_unreadable_files(self, tmp_path, text, message):
        path = tmp_path / 'bad.yml'
        path.write_text(text)
        with pytest.raises(ConfigError) as caught:
            _daemon.load_config(str(path))
        assert message in str(caught.value) and str(path) in str(caught.value)

    def test_missing_file(self, tmp_path):
        with pytest.raises(ConfigError) as caught:
            _daemon.load_config(str(tmp_path / 'nope.yml'))
        assert 'cannot be read' in str(caught.value)

    def test_credentials_file_is_loaded_and_checked(self, tmp_path):
        creds = tmp_path / 'creds.yml'
        creds.write_text('migrator:\n  type: digest\n  username: mig\n  password: s3cret\n')
        os.chmod(str(creds), 0o600)
        config = _daemon.validate_config(minimal(credentials_file=str(creds),
                                                 control={'hosts': ['h:1'], 'auth': {'scheme': 'digest', 'credential': 'migrator'}}))
        store = _daemon.load_credentials(config)
        spec = _registration.resolve(config['control'], store)
        assert spec['auth'] == {'scheme': 'digest', 'username': 'mig', 'password': 's3cret'}
        os.chmod(str(creds), 0o644)
        with pytest.raises(ConfigError) as caught:
            _daemon.load_credentials(config)
        assert '0644' in str(caught.value) and 's3cret' not in str(caught.value)


def test_json_formatter_emits_one_object_per_line_with_context():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_daemon.JsonFormatter('host-a'))
    logger = logging.getLogger('zookeeper_migration.test_formatter')
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning('conflict on %s', '/a', extra={'task': 't1', 'path': '/a', 'event': 'conflict'})
        try:
            raise ValueError('boom')
        except ValueError:
            logger.exception('failed')
    finally:
        logger.removeHandler(handler)
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first['msg'] == 'conflict on /a' and first['level'] == 'warning' and first['daemon'] == 'host-a'
    assert (first['task'], first['path'], first['event']) == ('t1', '/a', 'conflict')
    assert first['ts'].endswith('Z')
    assert 'ValueError: boom' in second['exception']


def test_status_table():
    report = {'tasks': [{'name': 'orders', 'mode': 'bidirectional', 'state': 'running', 'leader': 'host-a',
                         'status': {'phase': 'streaming', 'nodes_done': 10, 'nodes_total': 10, 'events_source_to_destination': 5,
                                    'events_destination_to_source': 2, 'conflicts': 1, 'lag_ms': 3.0, 'heartbeat': 0, 'last_error': None}},
                        {'name': 'idle', 'mode': 'one_way', 'state': 'stopped', 'leader': None, 'status': None}],
              'daemons': {'host-a': {'hostname': 'a', 'metrics_address': '127.0.0.1:9464'}}}
    table = _daemon.format_status_table(report)
    lines = table.splitlines()
    assert lines[0].split()[:4] == ['TASK', 'MODE', 'STATE', 'PHASE']
    assert 'orders' in lines[1] and 'streaming' in lines[1] and '10/10' in lines[1] and '3ms' in lines[1]
    assert 'idle' in lines[2] and 'stopped' in lines[2]
    assert 'daemons alive: host-a (a, metrics 127.0.0.1:9464)' in table


def test_spec_key_changes_only_for_fields_that_restart_the_engine():
    spec = {'name': 't', 'source': 'a', 'destination': 'b', 'mode': 'one_way', 'paths': ['/x'], 'state': 'running'}
    key = _daemon._spec_key(spec)
    assert _daemon._spec_key(dict(spec, state='paused')) == key      # state is handled apart
    assert _daemon._spec_key(dict(spec, paths=['/x', '/y'])) != key
    assert _daemon._spec_key(dict(spec, conflict='newest')) != key


def test_cli_check_config_offline_and_bad_config(tmp_path, capsys):
    good = tmp_path / 'good.json'
    good.write_text(json.dumps(minimal(metrics_address=None)))
    assert _daemon.main(['check-config', '--config', str(good), '--offline']) == 0
    assert 'config: ok' in capsys.readouterr().out
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps({'daemon_id': 'x'}))
    assert _daemon.main(['check-config', '--config', str(bad), '--offline']) == 2
    assert 'control is required' in capsys.readouterr().err
    assert _daemon.main([]) == 2


def test_parse_address():
    assert _daemon.parse_address('127.0.0.1:9464') == ('127.0.0.1', 9464)
    assert _daemon.parse_address('[::1]:9464') == ('::1', 9464)
    with pytest.raises(ConfigError):
        _daemon.parse_address('localhost')


def test_control_acl_settings_fail_closed_by_default():
    config = _daemon.validate_config({'daemon_id': 'd1', 'control': {'hosts': ['127.0.0.1:2181']}})
    assert config['control_acl'] == {'allow_open_acl': False, 'world_read': False}
    assert 'allow_open_acl' not in config['control'] and 'world_read' not in config['control']
    assert config['control']['tls']['check_hostname'] is True      # on with verify, the default
    opened = _daemon.validate_config({'daemon_id': 'd1', 'control': {'hosts': ['127.0.0.1:2181'], 'allow_open_acl': True,
                                                                     'world_read': True}})
    assert opened['control_acl'] == {'allow_open_acl': True, 'world_read': True}
    with pytest.raises(ConfigError, match='control.allow_open_acl must be true or false'):
        _daemon.validate_config({'daemon_id': 'd1', 'control': {'hosts': ['127.0.0.1:2181'], 'allow_open_acl': 'yes'}})


# -- journald priorities -------------------------------------------------------------

def test_lines_carry_their_syslog_priority_only_on_the_journal():
    import io
    import logging as std_logging
    from ansible_collections.zookeeper.migration.plugins.module_utils import _daemon as daemon_module
    for environ, prefixed in (({'JOURNAL_STREAM': '8:12345'}, True), ({}, False)):
        stream = io.StringIO()
        handler = daemon_module.setup_logging('DEBUG', daemon_id='d1', stream=stream, environ=environ)
        try:
            log = std_logging.getLogger('zookeeper_migration.test')
            log.debug('d')
            log.info('i')
            log.warning('conflict on /a', extra={'task': 't'})
            log.error('e')
            log.critical('c')
        finally:
            std_logging.getLogger().removeHandler(handler)
        lines = stream.getvalue().splitlines()
        assert len(lines) == 5
        for line, priority, level in zip(lines, (7, 6, 4, 3, 2), ('debug', 'info', 'warning', 'error', 'critical')):
            if prefixed:
                assert line.startswith('<%d>{' % priority), line
                line = line[len('<%d>' % priority):]
            record = json.loads(line)    # the JSON fields are intact after the prefix
            assert record['level'] == level and record['daemon'] == 'd1'
        assert json.loads(lines[2][3:] if prefixed else lines[2])['task'] == 't'


def test_levels_between_the_named_ones_take_the_lower_priority():
    from ansible_collections.zookeeper.migration.plugins.module_utils import _daemon as daemon_module
    assert daemon_module.syslog_priority(25) == 6 and daemon_module.syslog_priority(35) == 4 and daemon_module.syslog_priority(1) == 7


def test_an_inherited_journal_stream_of_a_redirected_stdout_is_ignored(tmp_path):
    import os
    from ansible_collections.zookeeper.migration.plugins.module_utils import _daemon as daemon_module
    with open(str(tmp_path / 'log'), 'w') as stream:
        status = os.fstat(stream.fileno())
        assert daemon_module.writes_to_journal(stream, {'JOURNAL_STREAM': '%d:%d' % (status.st_dev, status.st_ino)}) is True
        # a parent's journal stream, inherited by a process whose stdout is this file
        assert daemon_module.writes_to_journal(stream, {'JOURNAL_STREAM': '%d:%d' % (status.st_dev, status.st_ino + 1)}) is False
        assert daemon_module.writes_to_journal(stream, {'JOURNAL_STREAM': 'garbage'}) is False
        assert daemon_module.writes_to_journal(stream, {}) is False
