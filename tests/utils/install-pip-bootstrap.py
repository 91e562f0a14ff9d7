# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install our offline pip bootstrap where ansible-test looks for its cached get-pip script.

ansible-test (``_util/target/setup/requirements.py``) bootstraps pip into its
venvs with ``~/.ansible/test/cache/get_pip_<version>.py``, downloading it when
missing, which fails without internet access. The pip version comes from
``get_venv_packages()`` in ``_internal/python_requirements.py``; it differs
between ansible-core releases, so it is read from the installed ansible-test
rather than written down here. Run with the project venv's Python.

Usage: install-pip-bootstrap.py SCRIPT
"""

import os
import re
import shutil
import sys

import ansible_test


def bootstrap_pip_versions():
    """Return the pip versions the installed ansible-test bootstraps (e.g. ``['24.2']``)."""
    source_path = os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')
    with open(source_path, encoding='utf-8') as handle:
        source = handle.read()
    return sorted(set(re.findall(r"""\bpip=['"]([0-9][0-9.]*)['"]""", source)))


def main(script):
    """Copy ``script`` to every cache file name the installed ansible-test may look for."""
    versions = bootstrap_pip_versions()
    if not versions:
        sys.exit('cannot find which pip version ansible-test bootstraps: its source changed; update %s' % __file__)
    # The same expansion ansible-test uses, so HOME-less environments agree too.
    cache_dir = os.path.expanduser('~/.ansible/test/cache')
    os.makedirs(cache_dir, exist_ok=True)
    for version in versions:
        target = os.path.join(cache_dir, 'get_pip_%s.py' % version.replace('.', '_'))
        shutil.copyfile(script, target)
        print('ansible-test pip %s bootstrap: %s' % (version, target))


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
