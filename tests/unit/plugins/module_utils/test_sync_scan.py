# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The full reconcile scan's pure parts (``_sync_scan``): children names held as one sorted string per listing.

The scan itself reads both clusters: tests/integration/test_sync_reconcile_scan.py.
"""

from ansible_collections.zookeeper.migration.plugins.module_utils import _sync_scan


class TestJoinedNames(object):
    def test_joined_names_split_back_sorted(self):
        names = ['m0000002', 'a', 'm0000001', 'a.b', 'z-\u00e9']
        joined = _sync_scan._join_sorted(list(names))
        assert isinstance(joined, str)
        assert list(_sync_scan._split_joined(joined)) == sorted(names)

    def test_an_empty_listing_yields_nothing(self):
        assert list(_sync_scan._split_joined(_sync_scan._join_sorted([]))) == []
        assert list(_sync_scan._split_joined(_sync_scan._join_sorted(['only']))) == ['only']
