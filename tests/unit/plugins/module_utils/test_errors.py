# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's errors (_errors.py): one kind, title and advice per class; messages and ``to_dict`` hold only what they were given.

How a module turns them into one failure message each: test_module.py (``test_each_error_class_has_its_message``).
"""

import inspect
import json

import pytest
from hypothesis import assume, given, strategies as st

from ansible_collections.zookeeper.migration.plugins.module_utils import _errors
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ClusterUnreachableError, ZkMigrationError

from tests.unit.plugins.module_utils.helpers import SETTINGS

ERROR_CLASSES = sorted((cls for _name, cls in inspect.getmembers(_errors, inspect.isclass)
                        if issubclass(cls, ZkMigrationError) and cls.__module__ == _errors.__name__), key=lambda cls: cls.__name__)
KINDS = {
    'ZkMigrationError': 'error', 'ConfigError': 'config', 'SchemaError': 'schema', 'ClusterUnreachableError': 'unreachable',
    'AuthFailedError': 'auth', 'NoNodeError': 'no_node', 'NodeExistsError': 'node_exists', 'NotEmptyError': 'not_empty',
    'TooLargeError': 'too_large', 'UnsupportedByServerError': 'unsupported', 'VersionConflictError': 'version_conflict',
    'FencedError': 'fenced', 'JournalError': 'journal',
}
TEXT = st.text(st.characters(blacklist_categories=('Cs',)), max_size=30)


def test_every_error_class_is_listed_here():
    """A new class needs its kind here: the kind is what module results and the task status report (``error.kind``)."""
    assert sorted(cls.__name__ for cls in ERROR_CLASSES) == sorted(KINDS)


@pytest.mark.parametrize('cls', ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_each_class_has_its_own_kind_and_title(cls):
    assert cls.kind == KINDS[cls.__name__]
    assert isinstance(cls.title, str) and cls.title and not cls.title.endswith(('.', ':'))
    assert cls.advice is None or (isinstance(cls.advice, str) and cls.advice and not cls.advice.endswith('.'))
    if cls is not ZkMigrationError:
        assert issubclass(cls, ZkMigrationError)
        # its own, not the base class's: an operator tells the failures apart by their title
        assert 'kind' in vars(cls) and 'title' in vars(cls)


def test_kinds_and_titles_are_unique():
    assert len(set(cls.kind for cls in ERROR_CLASSES)) == len(ERROR_CLASSES)
    assert len(set(cls.title for cls in ERROR_CLASSES)) == len(ERROR_CLASSES)


def test_only_a_version_conflict_advises_a_re_run():
    assert dict((cls.__name__, cls.advice) for cls in ERROR_CLASSES if cls.advice) == {'VersionConflictError': 're-run the task'}


def test_the_message_names_the_path_and_cluster_once():
    assert str(_errors.NoNodeError('znode /a does not exist', path='/a', cluster='legacy')) == 'znode /a does not exist (cluster legacy)'
    assert str(_errors.NoNodeError('missing', path='/a', cluster='legacy')) == 'missing (path /a) (cluster legacy)'
    assert str(_errors.ConfigError('cluster legacy: bad hosts', cluster='legacy')) == 'cluster legacy: bad hosts'
    assert str(_errors.ConfigError('bad')) == 'bad'


@SETTINGS
@given(cls=st.sampled_from(ERROR_CLASSES), message=TEXT, path=st.none() | TEXT, cluster=st.none() | TEXT,
       secret=st.text(st.characters(blacklist_categories=('Cs',)), min_size=6, max_size=20))
def test_to_dict_holds_only_what_the_error_was_given(cls, message, path, cluster, secret):
    """Whatever a caller knew when it raised (a password, the exception it caught): only message, path and cluster come out."""
    assume(not any(secret in text for text in (message, path or '', cluster or '', cls.kind, cls.title)))
    with pytest.raises(ZkMigrationError) as caught:
        try:
            raise ValueError('auth failed for password=%s' % secret)
        except ValueError as exc:
            raise cls(message, path=path, cluster=cluster) from exc
    raised = caught.value
    described = raised.to_dict()
    expected = {'kind': cls.kind, 'message': str(raised), 'path': path, 'cluster': cluster}
    if cls is ClusterUnreachableError:
        expected['failures'] = {}
    assert described == expected
    assert secret not in json.dumps(described, ensure_ascii=False) and secret not in str(raised)
    assert str(raised).startswith(message)


@SETTINGS
@given(failures=st.dictionaries(st.sampled_from(['h1:2181', 'h2:2181', '[::1]:2181']), TEXT, max_size=3))
def test_unreachable_reports_a_copy_of_its_failures(failures):
    error = ClusterUnreachableError('cannot connect to cluster legacy', cluster='legacy', failures=failures)
    given_failures = dict(failures)
    failures['later:1'] = 'added after the error was raised'
    assert error.failures == given_failures and error.to_dict()['failures'] == given_failures
    assert ClusterUnreachableError('down').to_dict()['failures'] == {}
