# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parts of the verification engine (_verify.py): option parsing, summaries, results, report files."""

import json
import os

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils import _verify
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import COMPARE_ALL, diff_snapshots
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError
from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import Node, Snapshot


def snapshot_of(*nodes):
    snapshot = Snapshot(roots=['/'])
    for node in nodes:
        snapshot.nodes[node.path] = node
    snapshot.recount()
    return snapshot


def test_normalize_compare_defaults_and_order():
    assert _verify.normalize_compare(None) == COMPARE_ALL
    assert _verify.normalize_compare([]) == COMPARE_ALL
    assert _verify.normalize_compare(['counters', 'data']) == ('data', 'counters')
    assert _verify.normalize_compare('acl, type') == ('acl', 'type')
    with pytest.raises(ConfigError) as error:
        _verify.normalize_compare(['data', 'mtime'])
    assert 'mtime' in str(error.value)


def test_path_pairs_forms():
    assert _verify.path_pairs('/a/') == [('/a', '/a')]
    assert _verify.path_pairs(['/a', ('/b', '/c'), {'source': '/d', 'destination': '/e'}, '/a']) == [
        ('/a', '/a'), ('/b', '/c'), ('/d', '/e')]
    with pytest.raises(ConfigError):
        _verify.path_pairs(['relative'])
    with pytest.raises(ConfigError):
        _verify.path_pairs([])


def test_summarize_groups_by_depth_and_flags_ephemeral_subtrees():
    snapshot = snapshot_of(
        Node('/'),
        Node('/config', data=b''),
        Node('/config/a', data=b'12345'),
        Node('/config/b', data=b'xyz'),
        Node('/services', data=b''),
        Node('/services/api', data=b''),
        Node('/services/api/host-1', data=b'10.0.0.1', ephemeral_owner=7),
        Node('/services/api/host-2', data=b'10.0.0.2', ephemeral_owner=7),
        Node('/services/api/host-3', data=b'10.0.0.3', ephemeral_owner=8),
        Node('/flag', data=b'1'),
    )
    summary = _verify.summarize_snapshot(snapshot, 1)
    by_path = dict((entry['path'], entry) for entry in summary['subtrees'])
    assert sorted(by_path) == ['/config', '/flag', '/services']
    assert by_path['/config'] == {'path': '/config', 'persistent': 3, 'ephemeral': 0, 'bytes': 8, 'ephemeral_share': 0.0,
                                  'kind': 'persistent'}
    assert by_path['/services']['ephemeral'] == 3 and by_path['/services']['persistent'] == 2
    assert by_path['/services']['kind'] == 'mostly_ephemeral'
    assert summary['suggested_paths'] == ['/config', '/flag']
    assert summary['total'] == {'persistent': 6, 'ephemeral': 3, 'bytes': 9}

    deeper = _verify.summarize_snapshot(snapshot, 2)
    paths = [entry['path'] for entry in deeper['subtrees']]
    assert paths == ['/config', '/config/a', '/config/b', '/flag', '/services', '/services/api']
    assert dict((e['path'], e['kind']) for e in deeper['subtrees'])['/services/api'] == 'mostly_ephemeral'
    with pytest.raises(ConfigError):
        _verify.summarize_snapshot(snapshot, 0)


def test_summary_is_truncated_to_its_limit():
    snapshot = snapshot_of(*[Node('/n%03d' % index, data=b'') for index in range(30)])
    summary = _verify.summarize_snapshot(snapshot, 1, max_subtrees=10)
    assert summary['truncated'] is True
    assert len(summary['subtrees']) == 10


def test_spot_compare_reasons():
    same = Node('/a', data=b'x', acl=((31, 'world', 'anyone'),))
    assert _verify._spot_compare(same, Node('/a', data=b'x', acl=((31, 'world', 'anyone'),)), COMPARE_ALL) is None
    assert 'data differs' in _verify._spot_compare(same, Node('/a', data=b'y', acl=((31, 'world', 'anyone'),)), COMPARE_ALL)
    assert _verify._spot_compare(same, Node('/a', data=b'y'), ('acl',)) is None
    assert _verify._spot_compare(same, Node('/a', data=b'x', acl=((1, 'world', 'anyone'),)), COMPARE_ALL) == 'ACL differs'
    assert _verify._spot_compare(same, None, COMPARE_ALL) == 'missing on the destination'
    assert _verify._spot_compare(None, same, COMPARE_ALL) == 'gone from the source'
    assert 'ephemeral on the destination' in _verify._spot_compare(same, Node('/a', data=b'x', ephemeral_owner=5), COMPARE_ALL)


def test_keep_persisting_drops_differences_that_were_not_there_at_first():
    source = snapshot_of(Node('/'), Node('/a', data=b'1'), Node('/b', data=b'1'))
    first_dest = snapshot_of(Node('/'), Node('/a', data=b'2'))
    second_dest = snapshot_of(Node('/'), Node('/a', data=b'1'), Node('/b', data=b'9'), Node('/c', data=b''))
    first = diff_snapshots(source, first_dest)          # /a data, /b missing
    second = diff_snapshots(source, second_dest)        # /b data, /c extra (new)
    kept = _verify.Verifier._keep_persisting(first, second)
    assert kept.data_mismatch == ['/b']                # /b differed both times (in different ways)
    assert kept.extra == []                            # /c appeared meanwhile: in flight, not reported
    assert kept.missing == []


def test_verify_result_dict_and_truncation():
    source = snapshot_of(Node('/'), *[Node('/m%d' % index, data=b'') for index in range(5)])
    destination = snapshot_of(Node('/'))
    diff = diff_snapshots(source, destination)
    result = _verify.VerifyResult(diff, [('/', '/')], COMPARE_ALL, [], 'src', 'dst')
    result.source_nodes = diff.source_persistent
    result.spot_mismatched = ['/m1']
    result.spot_details = {'/m1': 'missing on the destination'}
    result.nodes_read = 100
    result.read_elapsed = 0.5
    data = result.to_dict(max_diffs=2)
    assert data['in_sync'] is False
    assert data['counts']['missing'] == 5
    assert data['differences']['missing'] == ['/m0', '/m1']
    assert data['truncated'] is True
    assert data['spot_check']['details'] == {'/m1': 'missing on the destination'}
    assert data['rate'] == 200.0
    assert len(result.to_dict(max_diffs=None)['differences']['missing']) == 5
    json.dumps(data)


def test_write_report_is_atomic_and_checks_the_directory(tmp_path):
    target = tmp_path / 'report.json'
    written = _verify.write_report(str(target), {'in_sync': True})
    assert written == str(target)
    assert json.loads(target.read_text()) == {'in_sync': True}
    assert [name for name in os.listdir(str(tmp_path)) if name.startswith('.zk-verify-')] == []
    with pytest.raises(ConfigError) as error:
        _verify.write_report(str(tmp_path / 'missing-dir' / 'r.json'), {})
    assert 'does not exist' in str(error.value)
