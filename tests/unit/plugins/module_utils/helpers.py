# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by several unit test files (pytest collects no test here).

Test files import it as ``tests.unit.plugins.module_utils.helpers`` (tests/conftest.py puts the checkout on sys.path).
"""

import json

import pytest
from hypothesis import settings

#: Hypothesis settings of the property tests that share them (the sync engine's, _task's, _cutover's...): the same
#: examples on every run, no example database.
SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None)

#: An inline secret the module tests pass in options: it must never come back in a result, a message or a log.
SECRET = 'inline-s3cret-value'


def run_module(module, args, capsys):
    """Run ``module.main()`` with ``args``; returns (exit code, parsed JSON result)."""
    # imported here: the engine's tests that use this file for SETTINGS need no AnsibleModule test support
    from ansible.module_utils.testing import patch_module_args
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exited:
            module.main()
    out = capsys.readouterr().out
    return exited.value.code, json.loads(out)
