# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The layering of plugins/, checked on the source (every import, top level or inside a function).

- Modules are thin shells: they never import kazoo.
- Only ``_module.py`` (the modules' shared helper) imports Ansible: the engine,
  the wire layer, the control plane and the daemon run without it.
- The connection layer (``_client.py``, ``_protocol.py``, ``_errors.py``, ``_hosts.py``) knows
  nothing of the control store's records or of the engine.
- Only the wire layer (``_client.py``, ``_protocol.py``) touches kazoo's
  internals: its request serialization, connection and handlers, and the
  private members of its objects.
- The control plane's records (``_records.py``) never talk to ZooKeeper.
"""

import ast
import os
import re

import pytest

PLUGINS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'plugins')
MODULE_UTILS = os.path.join(PLUGINS, 'module_utils')
PACKAGE = 'ansible_collections.zookeeper.migration.plugins.module_utils'

WIRE = {'_client.py', '_protocol.py'}
CONNECTION = WIRE | {'_errors.py', '_hosts.py'}
KAZOO_INTERNALS = ('kazoo.protocol.serialization', 'kazoo.protocol.connection', 'kazoo.protocol.paths', 'kazoo.handlers')


def _python_files(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith('.py') and name != '__init__.py')


def _source(directory, name):
    with open(os.path.join(directory, name)) as handle:
        return handle.read()


def imports_of(text):
    """Every module an import statement names (``from a import b`` gives ``a`` and ``a.b``)."""
    out = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update('%s.%s' % (node.module, alias.name) for alias in node.names)
    return out


def _named(imports, prefix):
    return sorted(name for name in imports if name == prefix or name.startswith(prefix + '.'))


def _siblings(imports):
    """The module_utils files an import set names (``_records``, ``_control``...)."""
    return sorted(set(name[len(PACKAGE) + 1:].split('.')[0] for name in imports if name.startswith(PACKAGE + '.')))


MODULES = _python_files(os.path.join(PLUGINS, 'modules'))
UTILS = _python_files(MODULE_UTILS)


def test_the_layout_is_what_the_rules_name():
    # a rule about files that do not exist any more would pass for nothing
    assert WIRE | CONNECTION | {'_module.py', '_records.py'} <= set(UTILS)
    assert len(MODULES) >= 5


@pytest.mark.parametrize('name', MODULES)
def test_modules_never_import_kazoo(name):
    assert _named(imports_of(_source(os.path.join(PLUGINS, 'modules'), name)), 'kazoo') == []


@pytest.mark.parametrize('name', [name for name in UTILS if name != '_module.py'])
def test_only_the_module_helper_imports_ansible(name):
    imports = imports_of(_source(MODULE_UTILS, name))
    assert _named(imports, 'ansible') == [], '%s imports Ansible: only _module.py may (the daemon runs without Ansible)' % name


@pytest.mark.parametrize('name', sorted(CONNECTION))
def test_the_connection_layer_knows_nothing_of_the_control_store_or_the_engine(name):
    siblings = set(_siblings(imports_of(_source(MODULE_UTILS, name))))
    allowed = {'_errors', '_hosts', '_protocol', '_client'}
    assert siblings <= allowed, '%s imports %s' % (name, sorted(siblings - allowed))


@pytest.mark.parametrize('name', [name for name in UTILS if name not in WIRE])
def test_only_the_wire_layer_touches_kazoo_internals(name):
    text = _source(MODULE_UTILS, name)
    internals = [found for prefix in KAZOO_INTERNALS for found in _named(imports_of(text), prefix)]
    assert internals == [], '%s imports kazoo internals %s: add a request class or helper to _protocol.py instead' % (name, internals)
    # reaching into another object's private members (kazoo's, or the wire layer's) is what the disable marks
    assert not re.search(r'pylint: disable=[\w,-]*protected-access', text), \
        '%s reaches into private members of another object: make them public where they are defined' % name


def test_the_records_never_talk_to_zookeeper():
    imports = imports_of(_source(MODULE_UTILS, '_records.py'))
    assert _named(imports, 'kazoo') == []
    assert set(_siblings(imports)) <= {'_errors', '_counters', '_hosts'}


def test_the_rules_see_an_import_inside_a_function():
    # the checks read every import statement, not only those at the top of a file
    text = 'def late():\n    from kazoo.protocol.serialization import Create\n    import ansible.module_utils.basic\n'
    assert _named(imports_of(text), 'kazoo.protocol.serialization') == [
        'kazoo.protocol.serialization', 'kazoo.protocol.serialization.Create']
    assert _named(imports_of(text), 'ansible') == ['ansible.module_utils.basic']
