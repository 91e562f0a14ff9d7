# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zk_cutover and the cutover engine's pure parts (_cutover.py) without ZooKeeper."""

import json

import pytest
from hypothesis import assume, given, strategies as st

from ansible.module_utils.testing import patch_module_args

from ansible_collections.zookeeper.migration.plugins.module_utils import _cutover
from ansible_collections.zookeeper.migration.plugins.module_utils import _freeze
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError
from ansible_collections.zookeeper.migration.plugins.modules import zk_cutover

MIGRATOR = (31, 'digest', 'migrator:abc=')


def run_module(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exited:
            zk_cutover.main()
    return exited.value.code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize('extra, message', [
    ({'drain_timeout': 0}, 'drain_timeout must be a positive number of seconds'),
    ({'state': 'rolled_back', 'freeze_source': True}, 'freeze_source applies to state=completed'),
])
def test_option_checks_fail_before_connecting(extra, message, capsys):
    args = {'task': 't1', 'control': {'hosts': ['127.0.0.1:1']}}
    args.update(extra)
    code, result = run_module(args, capsys)
    assert code == 1 and result['msg'].startswith(message) and result['changed'] is False


def test_control_is_required(capsys):
    code, result = run_module({'task': 't1'}, capsys)
    assert code == 1 and 'control option is required to cut over sync tasks' in result['msg']


def test_frozen_acl_keeps_read_and_adds_the_migrator_session():
    original = ((31, 'world', 'anyone'), (7, 'digest', 'app:h='), (4, 'ip', '10.0.0.1'), (1, 'sasl', 'reader'))
    assert _freeze.frozen_acl(original) == ((1, 'world', 'anyone'), (1, 'digest', 'app:h='), (1, 'sasl', 'reader'), (31, 'auth', ''))
    # no entry can read: only the migrator keeps access
    assert _freeze.frozen_acl(((6, 'world', 'anyone'),)) == ((31, 'auth', ''),)
    # duplicates collapse
    assert _freeze.frozen_acl(((3, 'world', 'anyone'), (1, 'world', 'anyone'))) == ((1, 'world', 'anyone'), (31, 'auth', ''))


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


def test_acl_conversions_keep_the_order():
    entries = ((1, 'world', 'anyone'), (31, 'digest', 'a:b='))
    assert _cutover.acl_tuples(_freeze.kazoo_acl(entries)) == entries
