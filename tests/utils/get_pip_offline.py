# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the ``get-pip.py`` bootstrap script that ansible-test downloads.

ansible-test creates its sanity venvs with ``--without-pip`` and then runs a
pip bootstrap script it downloads from ci-files.testing.ansible.com, which
this machine (and CI) cannot reach. Before downloading, it looks for a cached
copy at ``~/.ansible/test/cache/get_pip_<version>.py`` (for ansible-core 2.19:
``get_pip_24_2.py``); ``make sanity`` installs this file there.

ansible-test runs the cached script through its ``quiet_pip.py`` wrapper
(``runpy`` with ``run_name='__main__'``, so ``sys.argv[1:]`` holds the
arguments) with arguments like::

    --disable-pip-version-check pip==24.2 --no-setuptools --no-wheel

We do what get-pip.py would: put pip into the running interpreter with its
own ``ensurepip`` (no network), then ``pip install`` the requested packages
from the configured package index so the exact pip version ansible-test
expects is the one installed. Output is shown only when a step fails.
"""

import re
import subprocess
import sys

# get-pip.py options that plain ``pip install`` does not know.
GET_PIP_ONLY_OPTIONS = ('--no-setuptools', '--no-wheel')


def run_quietly(command):
    """Run ``command``; show its output only when it fails, then raise."""
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout.decode('utf-8', 'replace'))
        raise subprocess.CalledProcessError(result.returncode, command)


def main(argv):
    """Bootstrap pip into ``sys.executable`` and install the packages in ``argv``.

    Like get-pip.py, ``--no-setuptools`` leaves setuptools out: Python 3.11's
    ensurepip installs it along with pip, so it is removed again.
    """
    pip_args = [arg for arg in argv if arg not in GET_PIP_ONLY_OPTIONS]
    requested = [re.split(r'[<>=!~\[;\s]', arg, maxsplit=1)[0].lower() for arg in pip_args if not arg.startswith('-')]
    run_quietly([sys.executable, '-m', 'ensurepip', '--default-pip'])
    run_quietly([sys.executable, '-m', 'pip', 'install', '--quiet'] + pip_args)
    if '--no-setuptools' in argv and 'setuptools' not in requested:
        run_quietly([sys.executable, '-m', 'pip', 'uninstall', '--quiet', '--yes', 'setuptools'])


if __name__ == '__main__':
    try:
        main(sys.argv[1:])
    except subprocess.CalledProcessError as ex:
        sys.stderr.write('pip bootstrap failed: %s\n' % ex)
        sys.exit(ex.returncode or 1)
