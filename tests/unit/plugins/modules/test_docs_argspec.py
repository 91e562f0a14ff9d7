# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module's documented options (with its doc fragments) match its argument spec exactly.

ansible-test's validate-modules checks this too, but only in ``make sanity``;
this test fails in seconds and names the option that drifted.
"""

import copy
import glob
import importlib
import os

import pytest
import yaml

from ansible_collections.zookeeper.migration.plugins.doc_fragments import zk as zk_fragments
from ansible_collections.zookeeper.migration.plugins.module_utils import _module

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
MODULE_NAMES = sorted(os.path.basename(path)[:-3] for path in glob.glob(os.path.join(REPO_ROOT, 'plugins', 'modules', 'zk_*.py')))

FRAGMENTS = {
    'zookeeper.migration.zk': zk_fragments.ModuleDocFragment.DOCUMENTATION,
    'zookeeper.migration.zk.cluster': zk_fragments.ModuleDocFragment.CLUSTER,
    'zookeeper.migration.zk.action_group': zk_fragments.ModuleDocFragment.ACTION_GROUP,
}


def load_module(name):
    return importlib.import_module('ansible_collections.zookeeper.migration.plugins.modules.%s' % name)


def documented_options(module):
    """The module's options with its fragments merged, as Ansible merges them."""
    doc = yaml.safe_load(module.DOCUMENTATION)
    options = copy.deepcopy(doc.get('options') or {})
    attributes = copy.deepcopy(doc.get('attributes') or {})
    for fragment_name in doc.get('extends_documentation_fragment') or []:
        assert fragment_name in FRAGMENTS, 'unknown doc fragment %s' % fragment_name
        fragment = yaml.safe_load(FRAGMENTS[fragment_name])
        for key, value in (fragment.get('options') or {}).items():
            assert key not in options, 'option %s is documented both by the module and by %s' % (key, fragment_name)
            options[key] = value
        attributes.update(fragment.get('attributes') or {})
    return doc, options, attributes


def compare_options(documented, spec, where):
    """A list of the differences between documented options and an argument spec."""
    problems = []
    doc_names, spec_names = set(documented), set(spec)
    for name in sorted(doc_names - spec_names):
        problems.append('%s%s is documented but not in the argument spec' % (where, name))
    for name in sorted(spec_names - doc_names):
        problems.append('%s%s is in the argument spec but not documented' % (where, name))
    for name in sorted(doc_names & spec_names):
        doc, arg = documented[name], spec[name]
        label = where + name
        checks = (
            ('type', doc.get('type', 'str'), arg.get('type', 'str')),
            ('required', doc.get('required', False), arg.get('required', False)),
            ('default', doc.get('default'), arg.get('default')),
            ('choices', doc.get('choices'), arg.get('choices')),
            ('elements', doc.get('elements'), arg.get('elements')),
            ('aliases', doc.get('aliases'), arg.get('aliases')),
        )
        for what, doc_value, arg_value in checks:
            if doc_value != arg_value:
                problems.append('%s: %s documented as %r, argument spec says %r' % (label, what, doc_value, arg_value))
        if not doc.get('description'):
            problems.append('%s has no description' % label)
        if 'suboptions' in doc or 'options' in arg:
            problems.extend(compare_options(doc.get('suboptions') or {}, arg.get('options') or {}, label + '.'))
    return problems


@pytest.mark.parametrize('name', MODULE_NAMES)
def test_documented_options_match_argument_spec(name):
    module = load_module(name)
    _doc, options, _attributes = documented_options(module)
    problems = compare_options(options, module.argument_spec(), '')
    assert not problems, '\n'.join(problems)


@pytest.mark.parametrize('name', MODULE_NAMES)
def test_docs_are_complete(name):
    module = load_module(name)
    doc, _options, attributes = documented_options(module)
    assert doc['module'] == name
    assert doc.get('short_description')
    assert yaml.safe_load(module.EXAMPLES), 'EXAMPLES must hold at least one task'
    assert yaml.safe_load(module.RETURN), 'RETURN must document the return values'
    for attribute in ('check_mode', 'diff_mode', 'action_group'):
        assert attribute in attributes, 'attribute %s is not documented' % attribute
    assert attributes['action_group']['membership'] == ['zookeeper.migration.zk']


@pytest.mark.parametrize('name', MODULE_NAMES)
def test_module_is_in_the_action_group(name):
    with open(os.path.join(REPO_ROOT, 'meta', 'runtime.yml')) as stream:
        runtime = yaml.safe_load(stream)
    assert name in runtime['action_groups']['zk']


def _secret_options(spec, where=''):
    for name, option in spec.items():
        yield where + name, option
        if option.get('options'):
            yield from _secret_options(option['options'], where + name + '.')


@pytest.mark.parametrize('name', MODULE_NAMES)
def test_every_secret_option_is_no_log(name):
    spec = load_module(name).argument_spec()
    for path, option in _secret_options(spec):
        leaf = path.rsplit('.', 1)[-1]
        if leaf in ('password', 'key_password', 'credentials'):
            assert option.get('no_log') is True, '%s must be no_log' % path


def test_shared_options_are_the_same_in_every_module():
    shared = _module.ZkMigrationModule.generate_argspec()
    for name in MODULE_NAMES:
        spec = load_module(name).argument_spec()
        for option in shared:
            assert spec[option] == shared[option], '%s: option %s differs from the shared spec' % (name, option)
