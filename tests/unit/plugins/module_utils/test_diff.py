# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of diff_snapshots on hand-built snapshots."""

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils._diff import (
    SEQ_BUMP_PREFIX,
    PathMap,
    acl_equal,
    diff_snapshots,
    has_sequential_suffix,
    sequential_counter,
    sequential_parents,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import Node, Snapshot

OPEN = ((31, 'world', 'anyone'),)
APP = ((31, 'digest', 'app:hash='),)
READ_ALL = ((1, 'world', 'anyone'),)


def snap(*nodes):
    snapshot = Snapshot(['/a'], with_acl=True)
    for node in nodes:
        snapshot.nodes[node.path] = node
    snapshot.recount()
    return snapshot


def node(path, data=b'', acl=OPEN, version=0, cversion=0, aversion=0, ephemeral_owner=0, num_children=0):
    return Node(path, data=data, acl=acl, version=version, cversion=cversion, aversion=aversion,
                ephemeral_owner=ephemeral_owner, num_children=num_children)


def tree():
    return [node('/a', num_children=2), node('/a/b', b'x'), node('/a/c', b'y')]


def test_identical_trees_are_in_sync():
    diff = diff_snapshots(snap(*tree()), snap(*tree()))
    assert diff.in_sync
    assert diff.differences == 0
    assert diff.compared == 3
    assert diff.counts == {'missing': 0, 'extra': 0, 'data_mismatch': 0, 'acl_mismatch': 0, 'type_mismatch': 0, 'counter_behind': 0,
                           'counter_behind_persistent': 0}


def test_missing_and_extra():
    source = snap(*tree())
    destination = snap(node('/a'), node('/a/b', b'x'), node('/a/z'))
    diff = diff_snapshots(source, destination)
    assert diff.missing == ['/a/c']
    assert diff.extra == ['/a/z']
    assert not diff.in_sync


def test_data_compared_byte_exact_not_by_version_or_zxid():
    source = snap(node('/a', b'\x00\x01', version=5))
    destination = snap(node('/a', b'\x00\x01', version=0))
    destination.nodes['/a'].mzxid = 999
    destination.nodes['/a'].mtime = 12345
    assert diff_snapshots(source, destination).in_sync
    diff = diff_snapshots(source, snap(node('/a', b'\x00\x02')))
    assert diff.data_mismatch == ['/a']
    # Empty versus absent data: both empty, no difference.
    assert diff_snapshots(snap(node('/a', b'')), snap(node('/a', b''))).in_sync


def test_data_compared_by_hash_when_destination_keeps_no_data():
    source = snap(node('/a', b'payload'))
    destination = snap(node('/a', b'payload'))
    destination.nodes['/a'].data = None
    assert diff_snapshots(source, destination).in_sync


def test_acl_compared_as_sets():
    two = ((1, 'world', 'anyone'), (31, 'digest', 'app:hash='))
    swapped = (two[1], two[0])
    assert acl_equal(two, swapped)
    assert diff_snapshots(snap(node('/a', acl=two)), snap(node('/a', acl=swapped))).in_sync
    diff = diff_snapshots(snap(node('/a', acl=OPEN)), snap(node('/a', acl=APP)))
    assert diff.acl_mismatch == ['/a']
    # Not compared when asked not to, nor when one side did not read ACLs.
    assert diff_snapshots(snap(node('/a', acl=OPEN)), snap(node('/a', acl=APP)), compare=('data',)).in_sync
    assert diff_snapshots(snap(node('/a', acl=OPEN)), snap(node('/a', acl=None))).in_sync


def test_ephemerals_are_never_differences():
    source = snap(node('/a', num_children=2), node('/a/e1', ephemeral_owner=7), node('/a/both', ephemeral_owner=7))
    destination = snap(node('/a', num_children=2), node('/a/e2', ephemeral_owner=9), node('/a/both', ephemeral_owner=9))
    diff = diff_snapshots(source, destination)
    assert diff.in_sync
    assert diff.ephemeral_skipped == {'source': 2, 'destination': 2}
    assert diff.source_persistent == 1


def test_type_mismatch_ephemeral_against_persistent():
    source = snap(node('/a'), node('/a/x', ephemeral_owner=7), node('/a/y'))
    destination = snap(node('/a'), node('/a/x'), node('/a/y', ephemeral_owner=9))
    diff = diff_snapshots(source, destination)
    assert sorted(diff.type_mismatch) == ['/a/x', '/a/y']
    assert diff.missing == [] and diff.extra == []


def test_num_children_is_not_compared():
    # The source parent has ephemeral children that are never copied: numChildren differs, nothing else.
    source = snap(node('/a', num_children=3), node('/a/p'), node('/a/e1', ephemeral_owner=1), node('/a/e2', ephemeral_owner=1))
    destination = snap(node('/a', num_children=1), node('/a/p'))
    assert diff_snapshots(source, destination).in_sync


def test_sequential_suffix_detection():
    assert has_sequential_suffix('item-0000000012')
    assert has_sequential_suffix('0000000000')
    assert not has_sequential_suffix('item-000000012')
    assert not has_sequential_suffix('item-12345678901x')
    assert not has_sequential_suffix('item-\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669')  # Arabic-Indic digits


def test_sequential_counter_formula():
    # 20 creates, 10 deleted: clients see cversion 2*20-10 = 30 and 10 children; the next suffix is 20.
    assert sequential_counter(node('/q', cversion=30, num_children=10)) == 20
    assert sequential_counter(node('/q', cversion=0, num_children=0)) == 0


def test_counter_behind_only_for_parents_with_persistent_sequential_children():
    source = snap(
        node('/a', num_children=2, cversion=2),
        node('/a/q', num_children=2, cversion=40),          # 40 = 2*21 - 2: next suffix 21
        node('/a/q/item-0000000019'), node('/a/q/item-0000000020'),
        node('/a/svc', num_children=1, cversion=999999),     # ephemeral sequential only: never raised
        node('/a/svc/member-0000499999', ephemeral_owner=5),
    )
    destination = snap(
        node('/a', num_children=2, cversion=2),
        node('/a/q', num_children=2, cversion=2),            # next suffix 2
        node('/a/q/item-0000000019'), node('/a/q/item-0000000020'),
        node('/a/svc', num_children=0, cversion=0),
    )
    diff = diff_snapshots(source, destination)
    assert diff.counter_behind == ['/a/q']
    assert diff.counter_versions['/a/q'] == (21, 2)
    assert sequential_parents(source) == {'/a/q': 21}
    # Raw cversion may be lower on the destination while the counter is equal: not behind.
    source = snap(node('/a', num_children=1, cversion=1), node('/a/q', num_children=10, cversion=10),
                  *[node('/a/q/s%010d' % i) for i in range(10)])
    destination = snap(node('/a', num_children=1, cversion=1), node('/a/q', num_children=10, cversion=10),
                       *[node('/a/q/s%010d' % i) for i in range(10)])
    assert diff_snapshots(source, destination).in_sync


def test_counter_target_never_below_highest_copied_suffix():
    # A source filled by an earlier copy may hold names above its own counter.
    source = snap(node('/a', num_children=1, cversion=1), node('/a/job-0000000500'))
    destination = snap(node('/a', num_children=1, cversion=1), node('/a/job-0000000500'))
    diff = diff_snapshots(source, destination)
    assert diff.counter_behind == ['/a']
    assert diff.counter_versions['/a'] == (501, 1)


def test_seq_bump_children_are_ignored():
    leftover = node('/a/%sdeadbeef-0' % SEQ_BUMP_PREFIX)
    assert diff_snapshots(snap(node('/a')), snap(node('/a'), leftover)).in_sync
    assert diff_snapshots(snap(node('/a'), leftover), snap(node('/a'))).in_sync


def test_path_map_between_prefixes():
    source = snap(node('/a', num_children=1), node('/a/b', b'1'), node('/a/c', b'2'))
    destination = Snapshot(['/copy'])
    destination.nodes = {'/copy': node('/copy'), '/copy/b': node('/copy/b', b'changed'), '/copy/z': node('/copy/z')}
    diff = diff_snapshots(source, destination, path_map={'/a': '/copy'})
    assert diff.missing == ['/a/c']
    assert diff.data_mismatch == ['/a/b']
    assert diff.extra == ['/copy/z']
    mapping = PathMap([('/a', '/copy')])
    assert mapping.to_destination('/a/b/c') == '/copy/b/c'
    assert mapping.to_destination('/ab') == '/ab'
    assert mapping.to_source('/copy') == '/a'
    assert PathMap({'/': '/mirror'}).to_destination('/x/y') == '/mirror/x/y'
    assert PathMap({'/x': '/'}).to_destination('/x/y') == '/y'


def test_to_dict_truncates_and_sorts():
    source = snap(node('/a', num_children=5), *[node('/a/n%d' % i) for i in range(5, 0, -1)])
    destination = snap(node('/a'))
    result = diff_snapshots(source, destination).to_dict(max_paths=2)
    assert result['counts']['missing'] == 5
    assert result['missing'] == ['/a/n1', '/a/n2']
    assert result['truncated'] is True
    assert result['in_sync'] is False
    full = diff_snapshots(source, destination).to_dict(max_paths=None)
    assert len(full['missing']) == 5 and full['truncated'] is False


def test_unknown_compare_aspect_is_refused():
    with pytest.raises(ValueError, match='unknown compare'):
        diff_snapshots(snap(), snap(), compare=('data', 'zxid'))


def test_redacted_acls_are_counted():
    redacted = ((31, 'digest', 'app:x'),)
    diff = diff_snapshots(snap(node('/a', acl=redacted)), snap(node('/a', acl=redacted)))
    assert diff.in_sync
    assert diff.acl_redacted == {'source': 1, 'destination': 1}
    assert diff.to_dict()['acl_redacted'] == {'source': 1, 'destination': 1}


def test_id_generator_and_drained_queue_counters_are_differences():
    # Sequential children created and deleted: no child left, the source counter is 300 (cversion 600), the copy's 0.
    source = snap(node('/a', num_children=2, cversion=2), node('/a/ids', cversion=600), node('/a/queue', cversion=40))
    destination = snap(node('/a', num_children=2, cversion=2), node('/a/ids'), node('/a/queue'))
    diff = diff_snapshots(source, destination)
    assert not diff.in_sync
    assert diff.counter_behind == []
    assert sorted(diff.counter_behind_persistent) == ['/a/ids', '/a/queue']
    assert diff.counter_versions['/a/ids'] == (300, 0)
    assert diff.to_dict()['counter_versions']['/a/queue'] == {'source': 20, 'destination': 0}
    # at or above the source's: in sync; 'counters' not compared: not looked at
    raised = snap(node('/a', num_children=2, cversion=2), node('/a/ids', cversion=600), node('/a/queue', cversion=42))
    assert diff_snapshots(source, raised).in_sync
    assert diff_snapshots(source, destination, compare=('data', 'acl', 'type')).in_sync


def test_counters_of_parents_holding_ephemerals_are_information():
    # A lock parent: 500 creates, one holder left. Its counter on the copy is 0: reported apart, still in sync.
    source = snap(node('/a', num_children=1, cversion=999), node('/a/lock-0000000499', ephemeral_owner=7))
    destination = snap(node('/a'))
    diff = diff_snapshots(source, destination)
    assert diff.in_sync
    assert diff.counter_behind_ephemeral == ['/a'] and diff.counter_behind_persistent == []
    summary = diff.to_dict()
    assert summary['counter_behind_ephemeral'] == ['/a'] and summary['counter_versions']['/a'] == {'source': 500, 'destination': 0}
