# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests on every supported ansible-core (``make matrix``: 2.16 and newer).

The module tests feed arguments to ``AnsibleModule`` with
``ansible.module_utils.testing.patch_module_args``, which ansible-core 2.19
introduced. On older releases this provides the same context manager under
the same name, the way 2.19 implements it (the JSON arguments in
``basic._ANSIBLE_ARGS``), so the tests are written once, against the current
API; this file goes when 2.18 is no longer supported.
"""

import contextlib
import json
import sys
import types

import pytest

try:
    import ansible.module_utils.testing  # noqa: F401  (ansible-core 2.19 and newer)
except ImportError:
    import ansible.module_utils
    from ansible.module_utils import basic

    @contextlib.contextmanager
    def patch_module_args(args=None):
        """Expose ``args`` to the AnsibleModule instances created within this context."""
        if not isinstance(args, (dict, type(None))):
            raise TypeError('The `args` arg must be a dict or None.')
        encoded = json.dumps({'ANSIBLE_MODULE_ARGS': args or {}}).encode('utf-8')
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(basic, '_ANSIBLE_ARGS', encoded)
            yield

    testing = types.ModuleType('ansible.module_utils.testing')
    testing.__doc__ = 'patch_module_args for ansible-core before 2.19 (tests/unit/conftest.py).'
    testing.patch_module_args = patch_module_args
    sys.modules['ansible.module_utils.testing'] = testing
    ansible.module_utils.testing = testing
