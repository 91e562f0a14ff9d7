# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cutover engine's pure parts (_cutover.py) without ZooKeeper: ACLs on both sides, the outage estimate, the verification
summary that blocks a cutover, the options.

A cutover itself freezes, drains and verifies real clusters: tests/integration/test_cutover_engine.py.
"""

import pytest
from hypothesis import assume, given, strategies as st

from ansible_collections.zookeeper.migration.plugins.module_utils import _cutover
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError

from tests.unit.plugins.module_utils.helpers import SETTINGS

MIGRATOR = (31, 'digest', 'migrator:abc=')


def test_destination_acl_adds_the_migrator_only_with_grant_migrator():
    original = ((1, 'world', 'anyone'),)
    assert _cutover.destination_acl(original) == original
    assert _cutover.destination_acl(original, 'grant_migrator', (MIGRATOR,)) == ((1, 'world', 'anyone'), MIGRATOR)
    assert _cutover.destination_acl(original + (MIGRATOR,), 'grant_migrator', (MIGRATOR,)) == original + (MIGRATOR,)
    assert _cutover.destination_acl(original, 'grant_migrator', None) == original


ENTRY = st.tuples(st.sampled_from([1, 3, 7, 31]), st.sampled_from(['world', 'digest', 'sasl', 'ip']), st.sampled_from(['anyone', 'a:x=', 'b']))


@given(original=st.lists(ENTRY, max_size=4, unique=True).map(tuple), migrator=st.lists(ENTRY, min_size=1, max_size=2, unique=True).map(tuple))
def test_a_rollback_gives_the_source_back_the_acl_it_had(original, migrator):
    """source_acl_from_destination inverts destination_acl: a round trip through grant_migrator returns the original."""
    assume(original)
    synced = _cutover.destination_acl(original, 'grant_migrator', migrator)
    assert _cutover.source_acl_from_destination(synced, 'grant_migrator', migrator, original) == original
    assert _cutover.source_acl_from_destination(synced, 'verbatim', migrator, original) == synced


def test_a_node_made_on_the_destination_loses_only_the_migrator_grant():
    acl = ((1, 'world', 'anyone'), MIGRATOR)
    assert _cutover.source_acl_from_destination(acl, 'grant_migrator', (MIGRATOR,), None) == ((1, 'world', 'anyone'),)
    # an ACL that names only the migrator is kept rather than emptied (ZooKeeper refuses an empty ACL)
    assert _cutover.source_acl_from_destination((MIGRATOR,), 'grant_migrator', (MIGRATOR,), None) == (MIGRATOR,)


def test_the_outage_estimate_grows_with_the_read_time():
    small = _cutover.estimate_outage(10, 0.1, settle=1.0)
    large = _cutover.estimate_outage(1000, 10.0, settle=1.0)
    assert small['seconds'] == pytest.approx(sum(small['parts'].values()), abs=0.01)
    assert large['seconds'] > small['seconds'] and large['nodes'] == 1000 and set(large['parts']) == {'freeze', 'drain', 'verify'}


class FakeVerifyResult(object):
    def __init__(self, counts, differences):
        self.counts = counts
        self.differences = differences

    def to_dict(self, max_diffs=100):
        return {'counts': self.counts, 'differences': self.differences, 'elapsed': 0.5, 'spot_check': {'checked': 3, 'mismatched': 0}}


def test_summary_blocks_on_loss_not_on_destination_extras():
    counts = {'missing': 0, 'extra': 2, 'data_mismatch': 0, 'acl_mismatch': 0, 'type_mismatch': 0, 'counter_behind': 0,
              'spot_check_mismatch': 0}
    summary = _cutover.summarize_verification(FakeVerifyResult(counts, {'extra': ['/a/x', '/a/y']}), [], acl_checked=True)
    assert summary['in_sync'] is True and summary['blocking'] == {} and summary['counts']['acl_mismatch'] == 0

    counts = dict(counts, missing=1, data_mismatch=2)
    differences = {'missing': ['/a/m'], 'data_mismatch': ['/a/d1', '/a/d2'], 'spot_check': []}
    summary = _cutover.summarize_verification(FakeVerifyResult(counts, differences), ['/a/acl'], acl_checked=True)
    assert summary['in_sync'] is False
    assert summary['blocking'] == {'missing': 1, 'data_mismatch': 2, 'acl_mismatch': 1}
    assert _cutover.describe_blocking(summary) == '1 acl_mismatch (first: /a/acl), 2 data_mismatch (first: /a/d1), 1 missing (first: /a/m)'
    assert 'spot_check' not in summary['differences']


def test_acl_differences_are_ignored_when_acls_are_not_synced():
    counts = {'missing': 0, 'data_mismatch': 0}
    summary = _cutover.summarize_verification(FakeVerifyResult(counts, {}), ['/a/acl'], acl_checked=False)
    assert summary['in_sync'] is True and 'acl_mismatch' not in summary['counts']


def test_options_are_checked():
    with pytest.raises(ConfigError):
        _cutover.CutoverOptions(drain_timeout=0)
    with pytest.raises(ConfigError):
        _cutover.CutoverOptions(freeze_batch=0)
    assert _cutover.CutoverOptions(drain_timeout=5, verify=False).verify is False


# --------------------------------------------------------------------------
# Properties of the pure helpers
# --------------------------------------------------------------------------

ACLS = st.lists(ENTRY, max_size=5, unique=True).map(tuple)
MIGRATORS = st.lists(ENTRY, min_size=1, max_size=2, unique=True).map(tuple)


@SETTINGS
@given(original=ACLS, migrator=MIGRATORS, acl_mode=st.sampled_from(['verbatim', 'grant_migrator']))
def test_destination_acl_keeps_the_source_entries_in_order_and_adds_each_missing_migrator_entry_once(original, migrator, acl_mode):
    acl = _cutover.destination_acl(original, acl_mode, migrator)
    assert acl[:len(original)] == original
    added = acl[len(original):]
    if acl_mode == 'verbatim':
        assert added == ()
    else:
        assert added == tuple(entry for entry in migrator if entry not in original)
    assert len(set(acl)) == len(acl)


@SETTINGS
@given(acl=ACLS, migrator=MIGRATORS, original=st.none() | ACLS, acl_mode=st.sampled_from(['verbatim', 'grant_migrator']))
def test_a_rollback_removes_only_migrator_grants_and_never_empties_an_acl(acl, migrator, original, acl_mode):
    restored = _cutover.source_acl_from_destination(acl, acl_mode, migrator, original)
    if acl_mode == 'verbatim':
        assert restored == acl
        return
    granted = set(migrator) - set(original or ())
    kept = tuple(entry for entry in acl if entry not in granted)
    # ZooKeeper refuses an empty ACL: an ACL of migrator grants only is kept whole
    assert restored == (kept or acl)
    assert set(entry for entry in acl if entry in set(original or ())) <= set(restored)


@SETTINGS
@given(nodes=st.integers(0, 10 ** 7), reads=st.lists(st.floats(0.0, 3600.0), min_size=2, max_size=2).map(sorted),
       settle=st.floats(0.0, 60.0), status_interval=st.floats(0.0, 10.0))
def test_the_outage_estimate_is_the_sum_of_its_parts_and_grows_with_the_read_time(nodes, reads, settle, status_interval):
    shorter, longer = (_cutover.estimate_outage(nodes, read, settle=settle, status_interval=status_interval) for read in reads)
    for estimate in (shorter, longer):
        assert set(estimate['parts']) == {'freeze', 'drain', 'verify'} and estimate['nodes'] == nodes
        assert all(part >= 0 for part in estimate['parts'].values())
        assert estimate['seconds'] == pytest.approx(sum(estimate['parts'].values()), abs=0.01)
        assert estimate['read_seconds'] >= 0.001        # a read is never free
        assert estimate['parts']['verify'] >= round(settle, 3) - 0.001
        assert estimate['parts']['drain'] >= round(2 * status_interval, 3) - 0.001
    assert longer['seconds'] >= shorter['seconds']


COUNT_KINDS = ('missing', 'extra', 'data_mismatch', 'type_mismatch', 'counter_behind', 'counter_behind_persistent', 'spot_check_mismatch',
               'ephemeral_skipped')


@SETTINGS
@given(counts=st.fixed_dictionaries(dict((kind, st.integers(0, 3)) for kind in COUNT_KINDS)),
       acl_paths=st.lists(st.sampled_from(['/a/x', '/a/y', '/b', '/c/d']), unique=True), acl_checked=st.booleans(), max_paths=st.integers(1, 3))
def test_exactly_the_blocking_kinds_block_a_cutover(counts, acl_paths, acl_checked, max_paths):
    """Loss (missing, data, type, counters behind, spot checks) blocks; a destination extra or an unsynced ACL never does."""
    differences = dict((kind if kind != 'spot_check_mismatch' else 'spot_check', ['/p/%s/%d' % (kind, index) for index in range(count)])
                       for kind, count in counts.items() if kind != 'ephemeral_skipped')
    summary = _cutover.summarize_verification(FakeVerifyResult(counts, differences), acl_paths, acl_checked, max_paths=max_paths)
    all_counts = dict(counts, acl_mismatch=len(acl_paths)) if acl_checked else counts
    expected = dict((kind, count) for kind, count in all_counts.items() if count and kind in _cutover.BLOCKING_KINDS)
    assert summary['blocking'] == expected and summary['in_sync'] == (not expected)
    assert not set(summary['blocking']) & {'extra', 'counter_behind_persistent', 'ephemeral_skipped'}
    assert ('acl_mismatch' in summary['counts']) == acl_checked and summary['acl_checked'] == acl_checked
    if acl_checked and acl_paths:
        assert summary['differences']['acl_mismatch'] == sorted(acl_paths)[:max_paths]
    assert all(paths for paths in summary['differences'].values())
    described = _cutover.describe_blocking(summary)
    assert [part.split(' ')[1] for part in described.split(', ') if part] == sorted(expected)     # one part per kind, by name
    for kind, count in expected.items():
        first = summary['differences'].get('spot_check' if kind == 'spot_check_mismatch' else kind)
        assert '%d %s%s' % (count, kind, ' (first: %s)' % first[0] if first else '') in described


def test_a_summary_without_a_verification_is_the_acl_check_alone():
    summary = _cutover.summarize_verification(None, ['/b', '/a'], acl_checked=True)
    assert summary['blocking'] == {'acl_mismatch': 2} and summary['differences'] == {'acl_mismatch': ['/a', '/b']}
    assert _cutover.describe_blocking(summary) == '2 acl_mismatch (first: /a)'
    assert _cutover.summarize_verification(None, [], acl_checked=False)['in_sync'] is True


def test_a_cutover_error_says_whether_it_was_undone_and_keeps_its_report_out_of_to_dict():
    error = _cutover.CutoverError('final verification failed', path='/a', report={'blocking': {'missing': 1}})
    assert error.to_dict() == {'kind': 'cutover', 'message': 'final verification failed (path /a)', 'path': '/a', 'cluster': None,
                               'aborted': False}
    error.aborted = True
    assert error.to_dict()['aborted'] is True and error.report == {'blocking': {'missing': 1}}
