# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each role's meta/argument_specs.yml mirrors its defaults/main.yml exactly.

Ansible validates role arguments against argument_specs, while the values a
role runs with come from defaults: when the two drift apart, users read one
default and get another. Also checked: each default's Python type fits the
declared type, and every public variable the role's tasks, handlers and
templates use is declared (an undeclared one is an undocumented knob).
"""

import glob
import os
import re

import pytest
import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = sorted(
    os.path.basename(os.path.dirname(os.path.dirname(path)))
    for path in glob.glob(os.path.join(REPO_ROOT, 'roles', '*', 'meta', 'argument_specs.yml'))
)

# Argument spec type -> the Python types a default of that type may have.
TYPES = {
    'str': (str,),
    'path': (str,),
    'raw': (object,),
    'bool': (bool,),
    'int': (int,),
    'float': (int, float),
    'list': (list,),
    'dict': (dict,),
}


def _load(role, *parts):
    with open(os.path.join(REPO_ROOT, 'roles', role, *parts)) as handle:
        return yaml.safe_load(handle)


def _load_text(role, *parts):
    with open(os.path.join(REPO_ROOT, 'roles', role, *parts)) as handle:
        return handle.read()


def _options(role):
    specs = _load(role, 'meta', 'argument_specs.yml')['argument_specs']
    return specs['main']['options']


def _defaults(role):
    return _load(role, 'defaults', 'main.yml') or {}


def test_there_is_a_role_to_check():
    assert 'sync_daemon' in ROLES


@pytest.mark.parametrize('role', ROLES)
def test_argument_specs_declare_exactly_the_defaults(role):
    options, defaults = _options(role), _defaults(role)
    assert sorted(set(defaults) - set(options)) == [], 'defaults without an argument spec'
    assert sorted(set(options) - set(defaults)) == [], 'argument specs without a default in defaults/main.yml'


@pytest.mark.parametrize('role', ROLES)
def test_argument_spec_defaults_equal_the_defaults(role):
    options, defaults = _options(role), _defaults(role)
    mismatched = dict((name, {'argument_specs': spec.get('default', '<missing>'), 'defaults': defaults[name]})
                      for name, spec in options.items()
                      if name in defaults and spec.get('default', '<missing>') != defaults[name])
    assert mismatched == {}


@pytest.mark.parametrize('role', ROLES)
def test_defaults_have_the_declared_types(role):
    options, defaults = _options(role), _defaults(role)
    wrong = {}
    for name, spec in options.items():
        declared = spec.get('type', 'str')
        value = defaults.get(name)
        if isinstance(value, str) and '{{' in value:
            continue  # templated: its type is known only at run time
        allowed = TYPES[declared]
        if declared in ('int', 'float') and isinstance(value, bool):
            wrong[name] = '%s default is a bool' % declared
        elif not isinstance(value, allowed):
            wrong[name] = 'declared %s, default %r' % (declared, value)
        elif 'choices' in spec and value not in spec['choices']:
            wrong[name] = 'default %r not in choices %r' % (value, spec['choices'])
    assert wrong == {}


@pytest.mark.parametrize('role', ROLES)
def test_every_public_variable_used_is_declared(role):
    role_dir = os.path.join(REPO_ROOT, 'roles', role)
    used = set()
    pattern = re.compile(r'\b(%s_[a-z0-9_]+)' % re.escape(role))
    for path in glob.glob(os.path.join(role_dir, 'tasks', '*.yml')) + glob.glob(os.path.join(role_dir, 'handlers', '*.yml')) \
            + glob.glob(os.path.join(role_dir, 'templates', '*')):
        with open(path) as handle:
            for line in handle:
                if line.strip().startswith('tags:'):
                    continue  # tags are names, not variables
                used.update(pattern.findall(line))
    assert sorted(used - set(_options(role))) == []


@pytest.mark.parametrize('role', ROLES)
def test_secret_options_are_no_log(role):
    options = _options(role)
    secret = [name for name in options if re.search(r'(password|secret|credential|token)s?$', name)]
    assert secret, 'expected the credentials option to be found'
    assert [name for name in secret if options[name].get('no_log') is not True] == []


def test_the_daemon_settings_the_role_documents_are_the_daemons():
    """``sync_daemon_settings`` options are the daemon's config keys the role does not set itself, typed alike.

    The daemon's defaults (``_daemon.CONFIG_DEFAULTS``, the engine's from ``_sync.ENGINE_DEFAULTS``) are the one place
    they are written; a setting renamed or added there and not here (or the reverse) fails this test.
    """
    from ansible_collections.zookeeper.migration.plugins.module_utils import _daemon, _sync
    options = _load('sync_daemon', 'meta', 'argument_specs.yml')['argument_specs']['main']['options']['sync_daemon_settings']['options']
    template = _load_text('sync_daemon', 'templates', 'daemon.yml.j2')
    set_by_role = set(key for key in _daemon.CONFIG_KEYS if "'%s':" % key in template)
    assert set_by_role >= {'daemon_id', 'control', 'root', 'metrics_address', 'log_level'}
    # sync_journal: off only to measure the journal's cost (tests/bench); the role never turns the journal off
    assert set(options) == set(_daemon.CONFIG_KEYS) - set_by_role - {'sync_journal'}
    for key, spec in options.items():
        default = _daemon.CONFIG_DEFAULTS[key]
        if default is not None:
            assert isinstance(default, TYPES[spec['type']]), (key, spec['type'], default)
    for key, value in _sync.ENGINE_DEFAULTS.items():
        assert _daemon.CONFIG_DEFAULTS[key] == value, key
