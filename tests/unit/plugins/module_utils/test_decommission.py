# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decommissioning a task (_decommission.py), its pure parts: the ACL without the migrator's grants, the saved-ACL export file.

Removing a task's traces from real clusters: tests/integration/test_decommission.py.
"""

import json
import os
import stat

import pytest
from hypothesis import given, strategies as st

from ansible_collections.zookeeper.migration.plugins.module_utils import _cutover, _decommission
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError

from tests.unit.plugins.module_utils.helpers import SETTINGS

MIGRATOR = (31, 'digest', 'migrator:abc=')
ENTRY = st.tuples(st.sampled_from([1, 3, 7, 31]), st.sampled_from(['world', 'digest', 'sasl', 'ip']), st.sampled_from(['anyone', 'a:x=', 'b']))
ACLS = st.lists(ENTRY, max_size=5, unique=True).map(tuple)
MIGRATORS = st.lists(ENTRY, min_size=1, max_size=2, unique=True).map(tuple)


def test_the_migrator_grant_goes_unless_the_source_had_it():
    app = (1, 'world', 'anyone')
    assert _decommission.without_migrator_grants((app, MIGRATOR), (MIGRATOR,)) == (app,)
    assert _decommission.without_migrator_grants((app, MIGRATOR), (MIGRATOR,), original=(app, MIGRATOR)) == (app, MIGRATOR)
    assert _decommission.without_migrator_grants([list(app), list(MIGRATOR)], [list(MIGRATOR)]) == (app,)   # lists, as JSON gives them
    # nothing would be left: None, the node keeps its ACL (ZooKeeper refuses an empty one)
    assert _decommission.without_migrator_grants((MIGRATOR,), (MIGRATOR,)) is None
    assert _decommission.without_migrator_grants((app,), None) == (app,)


@SETTINGS
@given(acl=ACLS, migrator=st.none() | MIGRATORS, original=st.none() | ACLS)
def test_without_migrator_grants_removes_only_what_the_migration_added(acl, migrator, original):
    kept = _decommission.without_migrator_grants(acl, migrator, original)
    granted = set(migrator or ()) - set(original or ())
    if kept is None:
        assert all(entry in granted for entry in acl)
        return
    assert kept == tuple(entry for entry in acl if entry not in granted) and kept != ()
    assert set(acl) & set(original or ()) <= set(kept)


@SETTINGS
@given(original=ACLS.filter(bool), migrator=MIGRATORS)
def test_the_destination_gets_back_the_source_acl_grant_migrator_extended(original, migrator):
    """What ``acl_mode: grant_migrator`` added to a synced node (``_cutover.destination_acl``) is exactly what goes."""
    synced = _cutover.destination_acl(original, 'grant_migrator', migrator)
    assert _decommission.without_migrator_grants(synced, migrator, original) == original


def test_saved_acls_round_trip_through_an_owner_only_file(tmp_path):
    path = str(tmp_path / 'saved.json')
    saved = {'source': {'/app': ((1, 'world', 'anyone'), MIGRATOR), '/app/x': ((31, 'digest', 'app:h='),)},
             'destination': {'/app': ((1, 'world', 'anyone'),)}}
    assert _decommission.write_saved_acls(path, 't1', ('legacy', 'new'), saved, now=lambda: 1234.5) == 3
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600          # digest hashes: readable by the owner only
    assert _decommission.read_saved_acls(path) == saved
    with open(path) as stream:
        document = json.load(stream)
    assert (document['task'], document['saved_at'], document['clusters']) == ('t1', 1234.5, {'source': 'legacy', 'destination': 'new'})
    assert os.listdir(str(tmp_path)) == ['saved.json']     # no temporary file left


def test_a_side_without_saved_acls_reads_back_empty(tmp_path):
    path = str(tmp_path / 'saved.json')
    assert _decommission.write_saved_acls(path, 't1', ('legacy', 'new'), {'source': {'/a': (MIGRATOR,)}}) == 1
    assert _decommission.read_saved_acls(path) == {'source': {'/a': (MIGRATOR,)}, 'destination': {}}


@pytest.mark.parametrize('content, message', [
    (None, 'cannot read the saved ACLs in'),
    ('not json', 'cannot read the saved ACLs in'),
    (json.dumps({'format': 'something else', 'version': 1, 'acls': {}}), 'is not a saved-ACL export of zookeeper.migration'),
    (json.dumps({'format': _decommission.EXPORT_FORMAT, 'version': 2, 'acls': {}}), 'is not a saved-ACL export of zookeeper.migration'),
    (json.dumps([1, 2]), 'is not a saved-ACL export of zookeeper.migration'),
])
def test_a_file_that_is_not_an_export_is_refused(tmp_path, content, message):
    path = tmp_path / 'saved.json'
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        _decommission.read_saved_acls(str(path))


def test_an_export_into_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(ConfigError, match='the directory .* does not exist'):
        _decommission.write_saved_acls(str(tmp_path / 'missing' / 'saved.json'), 't1', ('a', 'b'), {})
