# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of _inspect.py: the tree summary accounts for the znodes the identity may not read (inspect_cluster
itself connects: tests/integration/test_module_zk_cluster.py)."""

from ansible_collections.zookeeper.migration.plugins.module_utils import _inspect


def test_add_unreadable_counts_per_subtree_and_drops_suggestions():
    summary = {
        'depth': 1, 'truncated': False,
        'total': {'persistent': 4, 'ephemeral': 0, 'bytes': 9},
        'subtrees': [{'path': '/config', 'persistent': 3, 'ephemeral': 0, 'bytes': 9, 'ephemeral_share': 0.0, 'kind': 'persistent'},
                     {'path': '/services', 'persistent': 1, 'ephemeral': 0, 'bytes': 0, 'ephemeral_share': 0.0, 'kind': 'persistent'}],
        # a suggestion whose subtree entry was cut (truncated list) must not break the filter
        'suggested_paths': ['/config', '/services', '/cut'],
    }
    out = _inspect.add_unreadable(summary, ['/locked', '/config/private', '/config/other/deep', '/cut/x'])
    subtrees = dict((entry['path'], entry) for entry in out['subtrees'])
    assert subtrees['/config']['unreadable'] == 2 and subtrees['/config']['kind'] == 'persistent'
    assert subtrees['/services']['unreadable'] == 0
    assert subtrees['/locked'] == {'path': '/locked', 'persistent': 0, 'ephemeral': 0, 'bytes': 0, 'ephemeral_share': 0.0,
                                   'kind': 'unreadable', 'unreadable': 1}
    assert [entry['path'] for entry in out['subtrees']] == ['/config', '/cut', '/locked', '/services']
    assert out['suggested_paths'] == ['/services']
    assert out['total']['unreadable'] == 4
    assert out['unreadable_paths'] == ['/config/other/deep', '/config/private', '/cut/x', '/locked']


def test_add_unreadable_without_unreadable_znodes_changes_only_the_shape():
    summary = {'depth': 2, 'truncated': False, 'total': {'persistent': 1, 'ephemeral': 0, 'bytes': 0},
               'subtrees': [{'path': '/a/b', 'persistent': 1, 'ephemeral': 0, 'bytes': 0, 'ephemeral_share': 0.0, 'kind': 'persistent'}],
               'suggested_paths': ['/a/b']}
    out = _inspect.add_unreadable(summary, [])
    assert out['subtrees'][0]['unreadable'] == 0 and out['suggested_paths'] == ['/a/b']
    assert out['unreadable_paths'] == [] and out['total']['unreadable'] == 0
