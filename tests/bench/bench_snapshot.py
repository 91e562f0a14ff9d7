# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of take_snapshot (plugins/module_utils/_snapshot.py): speed and memory.

In one run, against a real ZooKeeper 3.8 ensemble (3 nodes, started here
unless --hosts names one) loaded with --nodes znodes of ~100 bytes (depth 4,
sequential parents, ~10% under a digest ACL), it prints znodes/s and ratios
against a baseline measured in the same run:

* baseline: kazoo's own async get + get_children for every node (1000 in
  flight), on a 10k-node subtree;
* take_snapshot without ACLs: multiRead (500 ops x 4 in flight), through each
  member (leader and followers), and with kazoo's default select;
* take_snapshot with ACLs: one session; the default (it opens
  ``DEFAULT_ACL_SESSIONS`` more sessions for the ACL reads); ACL reads shared
  by 1, 2 and 4 sessions per member given as ``acl_clients``;
* the fallback for servers without multiRead (pipelined single reads), on
  the 10k subtree;
* memory: bytes per node of a real snapshot (data kept / hashes only) and
  of a synthetic 100k-node build (tracemalloc).

Run::

    .venv/bin/python tests/bench/bench_snapshot.py [--nodes 100000] [--hosts H:P,...] [--repeat 3]

Nothing is asserted: figures are for reading.
"""

import os
import statistics
import threading
import time
import tracemalloc

# First: it makes the collection (ansible_collections.zookeeper.migration) and tests.harness importable.
from bench_common import argument_parser, close_clients, cluster_to_measure, rate

from kazoo.security import make_acl, make_digest_acl

from ansible_collections.zookeeper.migration.plugins.module_utils import _client
from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import (
    DEFAULT_ACL_SESSIONS,
    Snapshot,
    SnapshotBuilder,
    take_snapshot,
)

BASE = '/bench-snapshot'


def load_tree(client, count):
    """About ``count`` znodes of ~100 bytes under BASE: BASE/aN/bM/<leaf>, depth 4.

    a0 holds sequential-style children (10-digit suffixes), a1 is under a
    digest ACL (plus world read), the rest is open. Loaded with multis of 500
    creates, 8 in flight. Returns the number of znodes created.
    """
    if client.exists(BASE):
        delete_tree(client)
    groups = 10
    per_parent = 500
    parents_per_group = max(1, count // (groups * per_parent))
    secured = [make_digest_acl('app', 'app-password', all=True), make_acl('world', 'anyone', read=True)]
    creates = [(BASE, b'', None)]
    for group in range(groups):
        acl = secured if group == 1 else None
        creates.append(('%s/a%d' % (BASE, group), b'', acl))
        for parent in range(parents_per_group):
            parent_path = '%s/a%d/b%03d' % (BASE, group, parent)
            creates.append((parent_path, b'', acl))
            for leaf in range(per_parent):
                name = 'item-%010d' % leaf if group == 0 else 'n%04d' % leaf
                payload = ('%s/%s ' % (parent_path, name)).encode().ljust(100, b'.')
                creates.append(('%s/%s' % (parent_path, name), payload, acl))
    pending = []
    for start in range(0, len(creates), 500):
        txn = client.transaction()
        for path, data, acl in creates[start:start + 500]:
            txn.create(path, data, acl=acl)
        pending.append(txn.commit_async())
        if len(pending) >= 8:
            _check(pending.pop(0).get())
    for result in pending:
        _check(result.get())
    return len(creates)


def _check(results):
    errors = [r for r in results if isinstance(r, Exception)]
    if errors:
        raise RuntimeError('loading failed: %r' % errors[:3])


def delete_tree(client):
    snapshot = take_snapshot(client, [BASE], with_acl=False, keep_data=False)
    paths = sorted(snapshot.nodes, key=lambda p: -p.count('/'))
    pending = []
    for start in range(0, len(paths), 500):
        txn = client.transaction()
        for path in paths[start:start + 500]:
            txn.delete(path)
        pending.append(txn.commit_async())
        if len(pending) >= 4:
            pending.pop(0).get()
    for result in pending:
        result.get()


def kazoo_baseline_walk(client, root, window=1000):
    """Every node's data and children through kazoo's per-request async API (the baseline)."""
    seen = 0
    queue = [root]
    while queue:
        batch, queue = queue[:window], queue[window:]
        data_results = [client.get_async(path) for path in batch]
        child_results = [client.get_children_async(path) for path in batch]
        for path, data_result, child_result in zip(batch, data_results, child_results):
            data_result.get()
            seen += 1
            prefix = path + '/'
            queue.extend(prefix + name for name in child_result.get())
    return seen


def snapshot_and_diff(source_client, dest_client, parallel):
    """Snapshot BASE through two clients (standing for source and destination) and diff them; returns the source snapshot."""
    from ansible_collections.zookeeper.migration.plugins.module_utils._diff import diff_snapshots
    results = {}

    def walk(name, client, keep_data):
        results[name] = take_snapshot(client, [BASE], with_acl=False, keep_data=keep_data)

    if parallel:
        worker = threading.Thread(target=walk, args=('destination', dest_client, False))
        worker.start()
        walk('source', source_client, True)
        worker.join()
    else:
        walk('source', source_client, True)
        walk('destination', dest_client, False)
    diff = diff_snapshots(results['source'], results['destination'], compare=('data', 'type', 'counters'))
    if diff.missing or diff.extra:
        raise RuntimeError('the two walks of one tree differ: %r' % diff)
    return results['source']


def timed(func, repeat):
    """(best, median) seconds of ``repeat`` runs and the last result."""
    times = []
    result = None
    for _run in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times), result


ROWS = []


def report(label, count, best, median, baseline_rate=None):
    best_rate = rate(count, best)
    ratio = ' %7.1fx' % (best_rate / baseline_rate) if baseline_rate else '        '
    line = '%-62s %8d znodes  best %8.0f/s  median %8.0f/s%s' % (label, count, best_rate, rate(count, median), ratio)
    ROWS.append(line)
    print(line, flush=True)
    return best_rate


def measure_memory(client, root, acl_clients=()):
    """Bytes per node retained by snapshots of ``root`` (real, with ACLs) and by a synthetic 100k build."""
    lines = []
    for keep_data in (True, False):
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        snapshot = take_snapshot(client, [root], with_acl=True, keep_data=keep_data, acl_clients=acl_clients)
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        per_node = (after - before) / len(snapshot.nodes)
        lines.append('memory: real snapshot with ACLs, keep_data=%-5s  %8d nodes  %6.0f bytes/node  (1M nodes ~ %4.0f MB)'
                     % (keep_data, len(snapshot.nodes), per_node, per_node * 1e6 / 2 ** 20))
        del snapshot
    lines.extend(synthetic_memory())
    return lines


def synthetic_memory(count=100000, data_size=100):
    """Bytes per node of ``count`` nodes built in memory through SnapshotBuilder (no server)."""
    from kazoo.protocol.states import ZnodeStat
    from kazoo.security import ACL, Id
    acl = [ACL(31, Id('world', 'anyone'))]
    lines = []
    for keep_data in (True, False):
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        snapshot = Snapshot(['/s'], with_acl=True, keep_data=keep_data)
        builder = SnapshotBuilder(snapshot, keep_data=keep_data)
        for index in range(count):
            path = '/s/p%03d/node-%07d' % (index // 1000, index)
            data = os.urandom(data_size)
            stat = ZnodeStat(4294967296 + index, 4294967296 + index, 1700000000000 + index, 1700000000000 + index,
                             index % 5, 0, 0, 0, data_size, 0, 4294967296 + index)
            builder.add(path, data, stat)
            builder.set_acl(snapshot.nodes[path], list(acl), None)
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        per_node = (after - before) / count
        lines.append('memory: synthetic build, %d-byte data, keep_data=%-5s %8d nodes  %6.0f bytes/node  (1M nodes ~ %4.0f MB)'
                     % (data_size, keep_data, count, per_node, per_node * 1e6 / 2 ** 20))
        del snapshot, builder
    return lines


def main():
    parser = argument_parser(__doc__, nodes=100000,
                             hosts_help='an existing cluster (comma-separated host:port); default: start a 3-node ensemble')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--keep', action='store_true', help='keep the loaded tree (with --hosts)')
    args = parser.parse_args()

    with cluster_to_measure('bench-snapshot', args.hosts, size=3) as (hosts, _server_pids):
        # The identity the digest-ACL'd part of the tree grants everything (it creates it).
        run({'name': 'bench-snapshot', 'hosts': hosts, 'auth': {'scheme': 'digest', 'username': 'app', 'password': 'app-password'}}, args)


def run(spec, args):
    modes = _client.member_modes(spec)
    print('cluster: %s' % ', '.join('%s=%s' % item for item in sorted(modes.items())))
    with _client.connected(spec) as client:
        started = time.perf_counter()
        total = load_tree(client, args.nodes)
        elapsed = time.perf_counter() - started
        print('loaded %d znodes in %.1fs (%.0f/s, multis of 500, 8 in flight)' % (total, elapsed, total / elapsed))
    sub_root = BASE + '/a2'
    members = _client.connect_members(spec)
    clients_by_mode = {}
    for member_client in members:
        info = _client.server_info(member_client)
        clients_by_mode.setdefault(info.get('mode', '?'), member_client)
    client = members[0]
    try:
        for member_client in members:
            member_client.sync('/')
        sub_count = len(take_snapshot(client, [sub_root], with_acl=False))
        best, median, seen = timed(lambda: kazoo_baseline_walk(client, sub_root), 1)
        base_rate = report('baseline: kazoo get_async+get_children_async, 1000 in flight', seen, best, median)
        report('take_snapshot fallback (no multiRead: pipelined reads), no ACL', sub_count,
               *timed(lambda: take_snapshot(client, [sub_root], with_acl=False, multi_read=False), args.repeat)[:2],
               baseline_rate=base_rate)
        for mode, member_client in sorted(clients_by_mode.items()):
            best, median, snap = timed(lambda c=member_client: take_snapshot(c, [BASE], with_acl=False), args.repeat)
            report('take_snapshot multiRead 500x4, no ACL, via the %s' % mode, len(snap), best, median, base_rate)
        best, median, snap = timed(lambda: take_snapshot(client, [BASE], with_acl=False, keep_data=False), args.repeat)
        report('take_snapshot multiRead 500x4, no ACL, hashes only', len(snap), best, median, base_rate)
        best, median, snap = timed(lambda: take_snapshot(client, [BASE], with_acl=False, in_flight=8), args.repeat)
        report('take_snapshot multiRead 500x8, no ACL', len(snap), best, median, base_rate)
        slow = _client.connect(spec, fast_select=False)
        try:
            best, median, snap = timed(lambda: take_snapshot(slow, [BASE], with_acl=False), args.repeat)
            report('take_snapshot multiRead 500x4, no ACL, kazoo default select', len(snap), best, median, base_rate)
        finally:
            close_clients([slow])
        other = members[1] if len(members) > 1 else client
        best, median, snap = timed(lambda: snapshot_and_diff(client, other, parallel=False), args.repeat)
        report('snapshot both sides + diff, no ACL, one after the other (same cluster twice)', len(snap), best, median, base_rate)
        best, median, snap = timed(lambda: snapshot_and_diff(client, other, parallel=True), args.repeat)
        report('snapshot both sides + diff, no ACL, both walks in parallel (same cluster twice)', len(snap), best, median, base_rate)
        best, median, snap = timed(lambda: take_snapshot(client, [BASE], with_acl=True, acl_sessions=0), args.repeat)
        report('take_snapshot with ACLs, 1 session', len(snap), best, median, base_rate)
        best, median, snap = timed(lambda: take_snapshot(client, [BASE], with_acl=True), args.repeat)
        report('take_snapshot with ACLs, default (%d more sessions of its own)' % DEFAULT_ACL_SESSIONS, len(snap), best, median, base_rate)
        extra = []
        try:
            for per_member in (1, 2, 4):
                while len(members) + len(extra) < per_member * len(members):
                    extra.extend(_client.connect_members(spec))
                helpers = members[1:] + extra
                best, median, snap = timed(lambda h=helpers: take_snapshot(client, [BASE], with_acl=True, acl_clients=h), args.repeat)
                report('take_snapshot with ACLs, ACL reads over %d sessions (%d per member)' % (len(helpers) + 1, per_member),
                       len(snap), best, median, base_rate)
            print('ratios: against the baseline of this run (kazoo per-request async walk)')
            for line in measure_memory(client, BASE, members[1:] + extra):
                print(line, flush=True)
        finally:
            close_clients(extra)
        if not args.keep:
            delete_tree(client)
    finally:
        close_clients(members)


if __name__ == '__main__':
    main()
