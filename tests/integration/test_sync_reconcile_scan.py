# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The full reconcile's scan (``_sync_scan._ReconcileScan``) against real ZooKeeper servers.

The scan compares both trees parent by parent instead of holding a snapshot
of each: these tests build trees that differ in every way the full reconcile
must notice (data, one side only, ephemerals, deleted on both sides with
baseline entries under them, a parent wider than one read request, an
excluded subtree, sequential counters behind, ACLs) and check what it found.
"""

import pytest
from kazoo.security import ACL, Id, OPEN_ACL_UNSAFE, Permissions

from ansible_collections.zookeeper.migration.plugins.module_utils import _protocol
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_decide import base_hash, base_mzxid, base_value
from ansible_collections.zookeeper.migration.plugins.module_utils._sync import (
    DESTINATION,
    SOURCE,
    SyncEngine,
    _ReconcileScan,
    data_hash64,
)

pytestmark = pytest.mark.integration

READ_ONLY = [ACL(Permissions.READ, Id('world', 'anyone'))]


class _NoStore(object):
    """The scan never touches the control store; an engine needs one to be built."""


def _engine(src, dst, base, **spec):
    task = {'name': 'scan', 'source': 'src', 'destination': 'dst', 'paths': [base], 'mode': 'one_way', 'sync_acl': False}
    task.update(spec)
    engine = SyncEngine(task, {SOURCE: src, DESTINATION: dst}, _NoStore(), 'test')
    for side in engine.sides.values():
        side.multi_read = bool(_protocol.supports_multi_read(side.client))
    return engine


def _both(src, dst, path, data=b'same', **kwargs):
    src.create(path, data, makepath=True, **kwargs)
    dst.create(path, data, makepath=True, **kwargs)


def _scan(engine):
    scan = _ReconcileScan(engine, list(engine.baseline.entries))
    scan.run()
    return scan


@pytest.fixture
def trees(zk_source, zk_dest, zk_path, zk_client_factory):
    src = zk_client_factory(zk_source)
    dst = zk_client_factory(zk_dest)
    src.ensure_path(zk_path)
    dst.ensure_path(zk_path)
    return src, dst, zk_path


def test_scan_finds_every_kind_of_difference(trees, zk_client_factory, zk_source):
    src, dst, base = trees
    _both(src, dst, base + '/same')
    _both(src, dst, base + '/unrecorded')
    _both(src, dst, base + '/stale')
    _both(src, dst, base + '/deep/a/b/c', b'deep')
    src.create(base + '/differs', b'source')
    dst.create(base + '/differs', b'destination')
    src.create(base + '/src-only/child', b's', makepath=True)
    dst.create(base + '/dst-only', b'd')
    owner = zk_client_factory(zk_source)
    owner.create(base + '/ephemeral', b'e', ephemeral=True)
    src.create(base + '/excluded/x', b'source', makepath=True)
    dst.create(base + '/excluded/x', b'destination', makepath=True)
    # a parent wider than one round of reads (CHUNK * WINDOW = 2,000 children)
    src.create(base + '/wide', b'')
    dst.create(base + '/wide', b'')
    for side in (src, dst):
        for start in range(0, 2300, 500):
            txn = side.transaction()
            for index in range(start, min(2300, start + 500)):
                txn.create('%s/wide/w%05d' % (base, index), b'v%d' % index)
            assert not [r for r in txn.commit() if isinstance(r, Exception)]
    src.set(base + '/wide/w02250', b'changed')
    src.delete(base + '/wide/w00007')

    engine = _engine(src, dst, base, exclude=[base + '/excluded'])
    entries = engine.baseline.entries
    for path in (base, base + '/same', base + '/deep', base + '/deep/a', base + '/deep/a/b', base + '/wide'):
        entries[path] = data_hash64(src.get(path)[0])
    entries[base + '/deep/a/b/c'] = data_hash64(b'deep')
    entries[base + '/stale'] = data_hash64(b'what both held before')
    for index in range(2300):
        entries['%s/wide/w%05d' % (base, index)] = data_hash64(b'v%d' % index)
    # deleted on both sides since the last sync: a leaf, a whole subtree, a child of the wide parent
    entries[base + '/gone'] = data_hash64(b'x')
    entries[base + '/gone-tree'] = data_hash64(b'')
    entries[base + '/gone-tree/a'] = data_hash64(b'')
    entries[base + '/gone-tree/a/b'] = data_hash64(b'y')
    entries[base + '/wide/w09999'] = data_hash64(b'z')
    # only paths below it in the baseline, next to a name it starts ('gone-sub-1' sorts between 'gone-sub' and 'gone-sub/')
    entries[base + '/gone-sub/x'] = data_hash64(b'x')
    entries[base + '/gone-sub-1'] = data_hash64(b'x')
    entries[base + '/excluded/x'] = data_hash64(b'old')

    scan = _scan(engine)

    assert sorted(scan.queued) == sorted([base + '/differs', base + '/src-only', base + '/src-only/child', base + '/dst-only',
                                          base + '/wide/w02250', base + '/wide/w00007'])
    # equal paths are recorded with both sides' mzxids; those whose data hash was not the baseline's are these two
    equal = dict(scan.equal)
    assert dict((path, base_hash(value)) for path, value in equal.items() if entries.get(path) is None
                or base_hash(entries[path]) != base_hash(value)) == {base + '/unrecorded': data_hash64(b'same'),
                                                                     base + '/stale': data_hash64(b'same')}
    for path, value in equal.items():
        assert base_mzxid(value, SOURCE) == src.exists(path).mzxid and base_mzxid(value, DESTINATION) == dst.exists(path).mzxid
    assert sorted(scan.gone) == sorted([base + '/gone', base + '/gone-tree', base + '/gone-tree/a', base + '/gone-tree/a/b',
                                        base + '/wide/w09999', base + '/gone-sub/x', base + '/gone-sub-1'])
    assert scan.acl_fixes == [] and scan.counter_raises == {}
    assert scan.seen[SOURCE] > 2300 and scan.seen[DESTINATION] > 2300


def test_a_root_gone_from_both_sides_takes_its_baseline_with_it(trees):
    src, dst, base = trees
    engine = _engine(src, dst, base + '/task')
    engine.baseline.entries.update({base + '/task': 1, base + '/task/a': 2, base + '/task/a/b': 3, base + '/other': 4})
    scan = _scan(engine)
    assert sorted(scan.gone) == [base + '/task', base + '/task/a', base + '/task/a/b']
    assert scan.queued == [] and scan.equal == []


def test_scan_raises_sequential_counters_that_are_behind(trees):
    src, dst, base = trees
    _both(src, dst, base + '/queue', b'q')
    for _index in range(3):
        src.create(base + '/queue/item-', b'i', sequence=True)
    engine = _engine(src, dst, base)
    scan = _scan(engine)
    # the destination (the side this one-way task writes) must hand out item-0000000003 next, not item-0000000000
    assert scan.counter_raises == {DESTINATION: [(base + '/queue', 3, 0)]}
    assert sorted(scan.queued) == sorted(base + '/queue/' + name for name in src.get_children(base + '/queue'))


def test_scan_with_sync_acl_fixes_acls_of_equal_nodes_only(trees):
    src, dst, base = trees
    _both(src, dst, base + '/open')
    src.create(base + '/locked', b'same', acl=OPEN_ACL_UNSAFE)
    dst.create(base + '/locked', b'same', acl=READ_ONLY)
    src.create(base + '/locked-differs', b'source', acl=OPEN_ACL_UNSAFE)
    dst.create(base + '/locked-differs', b'destination', acl=READ_ONLY)
    engine = _engine(src, dst, base, sync_acl=True)
    engine.baseline.entries[base + '/open'] = base_value(data_hash64(b'same'), src.exists(base + '/open').mzxid,
                                                         dst.exists(base + '/open').mzxid)
    scan = _scan(engine)
    assert [(path, acl) for path, acl, _aversion in scan.acl_fixes] == [
        (base + '/locked', tuple((entry.perms, entry.id.scheme, entry.id.id) for entry in OPEN_ACL_UNSAFE))]
    assert scan.queued == [base + '/locked-differs']
    assert sorted(path for path, _value in scan.equal) == [base, base + '/locked']
