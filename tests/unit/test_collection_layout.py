# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Consistency checks between the collection's metadata files.

galaxy.yml, meta/runtime.yml, the requirements files and tests/config.yml
each state part of one contract (what the collection is called, which
ansible-core it supports, which modules the ``zk`` action group covers,
which Python packages it needs). These tests catch them drifting apart, and
keep the unit tests mirroring plugins/ (one test file per module_utils file,
unless it is listed as tested against real servers only).
"""

import glob
import importlib
import os
import re

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
MODULE_NAME = re.compile(r'^zk_[a-z0-9_]+$')


def load_yaml(relative_path):
    """Parse a YAML file of the repository."""
    with open(os.path.join(REPO_ROOT, relative_path), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def read_requirements(relative_path, seen=None):
    """Return ``{normalized name: Requirement}`` of a requirements file, following ``-r`` includes."""
    seen = set() if seen is None else seen
    path = os.path.join(REPO_ROOT, relative_path)
    seen.add(os.path.normpath(path))
    requirements = {}
    with open(path, encoding='utf-8') as handle:
        for raw_line in handle:
            line = raw_line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                included = os.path.join(os.path.dirname(relative_path), line[3:].strip())
                assert os.path.normpath(os.path.join(REPO_ROOT, included)) not in seen, 'include loop at %s' % included
                for name, req in read_requirements(included, seen).items():
                    assert name not in requirements or str(requirements[name]) == str(req), (
                        '%s is required twice with different ranges: %s and %s' % (name, requirements[name], req))
                    requirements[name] = req
                continue
            req = Requirement(line)
            name = req.name.lower().replace('_', '-')
            assert name not in requirements, '%s listed twice in %s' % (name, relative_path)
            requirements[name] = req
    return requirements


def installed_modules():
    """Names of the module files under plugins/modules/ (without .py)."""
    modules_dir = os.path.join(REPO_ROOT, 'plugins', 'modules')
    if not os.path.isdir(modules_dir):
        return set()
    return {name[:-3] for name in os.listdir(modules_dir) if name.endswith('.py') and name != '__init__.py'}


def test_galaxy_identity_and_version():
    galaxy = load_yaml('galaxy.yml')
    assert (galaxy['namespace'], galaxy['name']) == ('zookeeper', 'migration')
    version = Version(galaxy['version'])
    assert str(version) == galaxy['version'], 'galaxy.yml version must be plain semver (x.y.z)'
    assert len(galaxy['version'].split('.')) == 3
    for key in ('repository', 'documentation', 'issues'):
        assert galaxy[key].startswith('https://'), '%s must be an https URL' % key


def test_every_declared_license_ships_its_text():
    galaxy = load_yaml('galaxy.yml')
    assert galaxy['license'], 'galaxy.yml must name a license'
    for license_id in galaxy['license']:
        assert os.path.isfile(os.path.join(REPO_ROOT, 'LICENSES', license_id + '.txt')), (
            'LICENSES/%s.txt is missing' % license_id)


def test_build_ignore_drops_test_and_ci_files_but_keeps_requirements():
    build_ignore = set(load_yaml('galaxy.yml')['build_ignore'])
    for required in ('tests', 'molecule', '.ci', '.venv', 'build', '.cache', '.ansible', 'Makefile'):
        assert required in build_ignore, '%s must be in galaxy.yml build_ignore' % required
    # Users install the daemon's and the controller's packages from these files.
    assert not {'requirements', 'requirements/*', 'requirements/daemon.txt'} & build_ignore


def test_requires_ansible_matches_controller_requirements():
    runtime = load_yaml('meta/runtime.yml')
    requires_ansible = SpecifierSet(runtime['requires_ansible'])
    minimum = [spec for spec in requires_ansible if spec.operator == '>=']
    assert len(minimum) == 1, 'requires_ansible needs exactly one lower bound'
    assert len(minimum[0].version.split('.')) == 3, "ansible-lint wants a three-part version, e.g. '>=2.16.0'"

    ansible_core = read_requirements('requirements/controller.txt')['ansible-core'].specifier
    lowest = Version(minimum[0].version)
    assert ansible_core.contains(lowest), (
        'requirements/controller.txt (%s) excludes the oldest ansible-core that meta/runtime.yml supports (%s)'
        % (ansible_core, lowest))
    assert not ansible_core.contains(Version('%d.%d.0' % (lowest.major, lowest.minor - 1))), (
        'requirements/controller.txt allows an ansible-core older than meta/runtime.yml supports')


def test_action_group_names_are_plain_module_names():
    group = load_yaml('meta/runtime.yml')['action_groups']['zk']
    assert group, 'the zk action group must list the modules'
    assert len(group) == len(set(group)), 'duplicate names in action_groups.zk'
    for name in group:
        assert MODULE_NAME.match(name), '%r is not a short module name (zk_...)' % name


def test_action_group_covers_exactly_the_modules():
    group = set(load_yaml('meta/runtime.yml')['action_groups']['zk'])
    modules = installed_modules()
    if not modules:
        pytest.skip('plugins/modules/ holds no module yet; checked once the first one exists')
    assert modules - group == set(), 'modules missing from action_groups.zk in meta/runtime.yml'
    assert group - modules == set(), 'action_groups.zk names modules that plugins/modules/ does not have'


def test_requirements_are_bounded_ranges():
    for relative_path in ('requirements/controller.txt', 'requirements/daemon.txt', 'requirements/test.txt'):
        for name, req in read_requirements(relative_path).items():
            operators = {spec.operator for spec in req.specifier}
            assert '==' not in operators and '===' not in operators, '%s pins %s; use a range' % (relative_path, name)
            assert operators & {'>=', '>', '~='}, '%s: %s needs a lower bound' % (relative_path, name)
            assert operators & {'<', '<=', '~='}, '%s: %s needs an upper bound' % (relative_path, name)


def test_test_requirements_include_controller_and_daemon():
    test_reqs = read_requirements('requirements/test.txt')
    for relative_path in ('requirements/controller.txt', 'requirements/daemon.txt'):
        for name, req in read_requirements(relative_path).items():
            assert name in test_reqs and str(test_reqs[name]) == str(req), (
                'requirements/test.txt must include %s from %s unchanged' % (name, relative_path))


def test_controller_and_daemon_agree_on_kazoo():
    controller = read_requirements('requirements/controller.txt')['kazoo']
    daemon = read_requirements('requirements/daemon.txt')['kazoo']
    assert controller.specifier == daemon.specifier, (
        'modules and the daemon share one engine; they must support the same kazoo versions')


def test_module_python_floor_is_declared():
    python_requires = SpecifierSet(load_yaml('tests/config.yml')['modules']['python_requires'])
    assert python_requires.contains('3.9')
    assert not python_requires.contains('3.8'), 'module code may use Python 3.9 syntax; do not claim 3.8'


def test_no_sanity_ignore_entries():
    sanity_dir = os.path.join(REPO_ROOT, 'tests', 'sanity')
    if not os.path.isdir(sanity_dir):
        return
    for name in os.listdir(sanity_dir):
        if name.startswith('ignore-') and name.endswith('.txt'):
            with open(os.path.join(sanity_dir, name), encoding='utf-8') as handle:
                entries = [line for line in handle if line.strip() and not line.lstrip().startswith('#')]
            assert entries == [], 'tests/sanity/%s must stay empty: fix the code instead' % name


def test_changelog_fragments_use_configured_sections():
    config = load_yaml('changelogs/config.yaml')
    sections = {key for key, _title in config['sections']}
    sections.update({config['prelude_section_name'], config['trivial_section_name']})
    fragments_dir = os.path.join(REPO_ROOT, 'changelogs', config['notesdir'])
    fragments = [name for name in os.listdir(fragments_dir) if name.endswith(('.yml', '.yaml'))]
    assert fragments, 'changelogs/fragments/ should describe the unreleased changes'
    for name in fragments:
        fragment = load_yaml(os.path.join('changelogs', config['notesdir'], name))
        assert isinstance(fragment, dict) and fragment, '%s is empty' % name
        unknown = set(fragment) - sections
        assert not unknown, '%s uses unknown sections %s' % (name, sorted(unknown))


def test_collection_imports_under_its_fqcn_from_this_checkout():
    """pytest, the modules and the daemon import the engine as ansible_collections.zookeeper.migration."""
    errors = importlib.import_module('ansible_collections.zookeeper.migration.plugins.module_utils._errors')
    assert os.path.realpath(errors.__file__).startswith(os.path.realpath(REPO_ROOT) + os.sep)


# Unit tests mirror plugins/: tests/unit/plugins/module_utils/test_<name>.py tests plugins/module_utils/_<name>.py (and only
# that), tests/unit/plugins/modules/test_<module>.py tests plugins/modules/<module>.py. A module whose behaviour needs a
# real ZooKeeper has no unit test file: it is listed here with the reason and its integration tests.
MODULE_UTILS_TESTED_BY_INTEGRATION_ONLY = {
    '_control': 'the control store is compare-and-set writes, ACLs and chunked records on a real ensemble: '
                'tests/integration/test_control.py',
    '_sync_watch': 'the per-node watcher arms and re-arms watches on a real server (ZooKeeper 3.4 sources): '
                   'tests/integration/test_sync_fallbacks.py',
}
# Unit test files of plugins/modules/ that cover every module rather than one.
MODULE_TESTS_OF_ALL_MODULES = ('test_docs_argspec.py',)


def python_names(relative_dir, pattern):
    """Names (without .py) of the files of a repository directory that match ``pattern``."""
    return sorted(os.path.basename(path)[:-3] for path in glob.glob(os.path.join(REPO_ROOT, relative_dir, pattern)))


def test_every_module_util_has_its_unit_tests_or_is_listed_as_integration_only():
    unit_tests = set(python_names('tests/unit/plugins/module_utils', 'test_*.py'))
    missing = [name for name in python_names('plugins/module_utils', '_*.py')
               if name != '__init__' and 'test' + name not in unit_tests and name not in MODULE_UTILS_TESTED_BY_INTEGRATION_ONLY]
    assert not missing, (
        'plugins/module_utils/%s.py: no tests/unit/plugins/module_utils/test_<name>.py. Write its unit tests, or (only when its '
        'behaviour needs a real ZooKeeper) list it in MODULE_UTILS_TESTED_BY_INTEGRATION_ONLY with its tests/integration/ tests'
        % '.py, '.join(missing))


@pytest.mark.parametrize('name', sorted(MODULE_UTILS_TESTED_BY_INTEGRATION_ONLY))
def test_an_integration_only_module_util_names_its_integration_tests(name):
    assert os.path.isfile(os.path.join(REPO_ROOT, 'plugins', 'module_utils', name + '.py')), '%s.py no longer exists: drop its entry' % name
    assert not os.path.isfile(os.path.join(REPO_ROOT, 'tests', 'unit', 'plugins', 'module_utils', 'test%s.py' % name)), (
        '%s has unit tests now: drop it from MODULE_UTILS_TESTED_BY_INTEGRATION_ONLY' % name)
    named = re.findall(r'tests/integration/test_\w+\.py', MODULE_UTILS_TESTED_BY_INTEGRATION_ONLY[name])
    assert named, 'the entry of %s must name its tests/integration/test_*.py files' % name
    for path in named:
        assert os.path.isfile(os.path.join(REPO_ROOT, path)), '%s (named for %s) does not exist' % (path, name)


def test_unit_test_files_mirror_the_plugin_files():
    """test_<name>.py in tests/unit/plugins/module_utils/ tests _<name>.py; in tests/unit/plugins/modules/, the module <name>."""
    module_utils = set(python_names('plugins/module_utils', '_*.py'))
    strays = ['tests/unit/plugins/module_utils/%s.py' % test for test in python_names('tests/unit/plugins/module_utils', 'test_*.py')
              if test[len('test'):] not in module_utils]
    modules = set(python_names('plugins/modules', '*.py'))
    strays += ['tests/unit/plugins/modules/%s.py' % test for test in python_names('tests/unit/plugins/modules', 'test_*.py')
               if test[len('test_'):] not in modules and test + '.py' not in MODULE_TESTS_OF_ALL_MODULES]
    assert not strays, ('%s: no plugin file of that name. Put each test in the file of the module (or module_utils file) whose '
                        'behaviour it asserts; shared helpers go in tests/unit/plugins/module_utils/helpers.py' % ', '.join(strays))
