# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of _files.py: a file is written whole or not at all, with its mode from the start."""

import os
import stat

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError
from ansible_collections.zookeeper.migration.plugins.module_utils._files import atomic_file


def test_a_new_file_appears_whole_with_its_mode(tmp_path):
    path = str(tmp_path / 'export.json')
    with atomic_file(path, 'the export') as stream:
        stream.write('{"a": 1}')
        # nothing at the target until the block ends
        assert not os.path.exists(path)
    with open(path) as handle:
        assert handle.read() == '{"a": 1}'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(str(tmp_path)) == ['export.json']


def test_a_failure_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / 'report.json')
    with atomic_file(path, 'the report', mode=0o644) as stream:
        stream.write('old')
    with pytest.raises(RuntimeError):
        with atomic_file(path, 'the report', mode=0o644) as stream:
            stream.write('half of the new')
            raise RuntimeError('disk full')
    with open(path) as handle:
        assert handle.read() == 'old'
    assert os.listdir(str(tmp_path)) == ['report.json']
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_binary_content_and_a_missing_directory(tmp_path):
    path = str(tmp_path / 'data.bin')
    with atomic_file(path, 'the export', binary=True) as stream:
        stream.write(bytes(range(256)))
    with open(path, 'rb') as handle:
        assert handle.read() == bytes(range(256))
    with pytest.raises(ConfigError) as caught:
        with atomic_file(str(tmp_path / 'absent' / 'x'), 'saved_acls_export'):
            pass
    assert 'saved_acls_export' in str(caught.value) and 'does not exist' in str(caught.value)
