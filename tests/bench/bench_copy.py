# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of copy(), snapshot+diff and their baselines, all measured in one run (issue 3, item 6).

Starts a 3-node source and a 3-node destination ensemble (ZooKeeper 3.8, on
loopback, with the test harness), loads ~100k znodes of ~100 bytes into the
source (depth 3-4, sequential parents with gaps, digest ACLs on part of the
tree, some ACLs that deny the migrator CREATE), then measures and prints
znodes/s and ratios for:

  (a) the raw ceiling: multi creates of 500 ops, 8 in flight, of the same
      znodes into the destination (no reads, no planning);
  (b) ``copy()`` of the whole tree (snapshot both sides + diff + plan +
      apply), without and with ACL sync;
  (c) ``zk-shell cp`` of a 10k subset of the same tree;
  (d) snapshot of both sides + diff of 100k vs 100k, without and with ACLs.

and a PASS/MISS line per target of issue 3:

  copy without ACLs >= 0.6 x raw;  with ACLs >= 0.3 x raw;  both >= 50 x zk-shell;
  snapshot+diff >= 40,000 znodes/s without ACLs, >= 15,000 with.

Rates count source znodes: for (d), znodes compared per second (each one
read on both sides); the figure for znodes read on both sides is printed too.

Run:  make bench   (or)   .venv/bin/python tests/bench/bench_copy.py [--nodes 100000] [--zkshell-nodes 10000]

Nothing is asserted; the exit status is 0 even on a MISS (read the lines).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

# First: it makes the collection (ansible_collections.zookeeper.migration) and tests.harness importable.
from bench_common import REPO_ROOT, argument_parser, bench_cluster, close_clients, cpu_seconds, rate

from kazoo.security import ACL, Id, make_digest_acl, make_digest_acl_credential

from ansible_collections.zookeeper.migration.plugins.module_utils._apply import copy, snapshot_pair
from ansible_collections.zookeeper.migration.plugins.module_utils._client import connect
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import diff_snapshots
from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import take_snapshot

SOURCE_ROOT = '/bench'
PAYLOAD = 100
MIGRATOR_USER, MIGRATOR_PASSWORD = 'bench', 'bench-password'
APP_USER, APP_PASSWORD = 'app', 'app-password'
ZKSHELL = os.path.join(REPO_ROOT, '.venv', 'bin', 'zk-shell')


def digest_auth():
    return {'scheme': 'digest', 'username': MIGRATOR_USER, 'password': MIGRATOR_PASSWORD}


def migrator_acl_entries():
    return [(31, 'digest', make_digest_acl_credential(MIGRATOR_USER, MIGRATOR_PASSWORD))]


def tree_layout(total, apps=10):
    """Creates (path, data, acl-or-None, sequential) in parent-first order, ~``total`` znodes.

    /bench/app-NN/group-MMM/item-KKKK (depth 3 below /bench) and, under every
    tenth item, a leaf (depth 4). Groups 0-4 of each app hold sequential
    children (job-NNNNNNNNNN) instead of items. Apps 8 and 9 carry digest
    ACLs (migrator: all, world: read); the groups of app 7 carry an ACL that
    grants the migrator READ and ADMIN only, so their children need the deferred ACL.
    """
    per_app = total // apps
    groups = 50
    items = max(1, int((per_app - 1 - groups) / groups / 1.1))
    migrator = make_digest_acl(MIGRATOR_USER, MIGRATOR_PASSWORD, all=True)
    # READ and ADMIN but no CREATE: without ADMIN the server hides digest hashes from getACL (ZOOKEEPER-1392).
    migrator_read = make_digest_acl(MIGRATOR_USER, MIGRATOR_PASSWORD, read=True, admin=True)
    app_all = make_digest_acl(APP_USER, APP_PASSWORD, all=True)
    world_read = ACL(1, Id('world', 'anyone'))
    shared_acl = [migrator, world_read]
    locked_acl = [app_all, migrator_read]
    creates = [(SOURCE_ROOT, b'', None, False)]
    for app in range(apps):
        app_path = '%s/app-%02d' % (SOURCE_ROOT, app)
        app_acl = shared_acl if app >= 8 else None
        creates.append((app_path, b'a' * 20, app_acl, False))
        for group in range(groups):
            group_path = '%s/group-%03d' % (app_path, group)
            group_acl = locked_acl if app == 7 else app_acl
            creates.append((group_path, b'g' * 40, group_acl, False))
            for item in range(items):
                data = (b'%s:%d:%d:' % (group_path.encode(), item, app)).ljust(PAYLOAD, b'.')
                if group < 5:
                    creates.append((group_path + '/job-', data, app_acl, True))
                    continue
                item_path = '%s/item-%04d' % (group_path, item)
                creates.append((item_path, data, app_acl, False))
                if item % 10 == 0:
                    creates.append((item_path + '/leaf', data, app_acl, False))
    return creates


def load(client, creates, batch=500, in_flight=8):
    """Write ``creates`` with multis; returns the created paths (sequential names resolved)."""
    pending = []
    created = []

    def settle(result):
        items = result.get()
        errors = [item for item in items if isinstance(item, Exception) and type(item).__name__ != 'RolledBackError']
        if errors:
            raise RuntimeError('loading the benchmark tree failed: %r' % (errors[0],))
        created.extend(items)
    for start in range(0, len(creates), batch):
        txn = client.transaction()
        for path, data, acl, sequential in creates[start:start + batch]:
            txn.create(path, data, acl=acl, sequence=sequential)
        pending.append(txn.commit_async())
        if len(pending) >= in_flight:
            settle(pending.pop(0))
    for result in pending:
        settle(result)
    return created


def delete_tree(client, root, batch=500, in_flight=8):
    """Remove a big subtree quickly (children first, multis); not timed."""
    if client.exists(root) is None:
        return
    snapshot = take_snapshot(client, [root], with_acl=False, keep_data=False)
    paths = sorted(snapshot.nodes, key=lambda p: -p.count('/'))
    pending = []
    depth = None
    for start in range(0, len(paths), batch):
        chunk = paths[start:start + batch]
        if depth is not None and chunk[0].count('/') != depth:
            for result in pending:
                result.get()
            pending = []
        depth = chunk[-1].count('/')
        txn = client.transaction()
        for path in chunk:
            txn.delete(path)
        pending.append(txn.commit_async())
        if len(pending) >= in_flight:
            _check_multi(pending.pop(0).get())
    for result in pending:
        _check_multi(result.get())
    if client.exists(root) is not None:
        client.delete(root, recursive=True)


def _check_multi(results):
    errors = [item for item in results if isinstance(item, Exception) and type(item).__name__ not in ('RolledBackError', 'RuntimeInconsistency')]
    if errors:
        raise RuntimeError('a benchmark clean-up multi failed: %r' % (errors[0],))


def wait_idle(clusters, quiet=0.1, timeout=60.0, interval=1.0):
    """Wait until the servers are idle (after a big clean-up they write snapshots and
    roll transaction logs for seconds): below ``quiet`` cores of CPU over ``interval``.
    Each measurement then starts from idle servers, whatever ran before it."""
    pids = [node.pid for cluster in clusters for node in cluster.nodes if node.pid]
    deadline = time.monotonic() + timeout
    before = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(interval)
        after = cpu_seconds(pids)
        if before is None or after is None:
            return False    # a server is gone: there is no idleness to wait for (the figures will show it)
        if (after - before) / interval < quiet:
            return True
        before = after
    return False


def measure_raw(client, creates, prefix):
    """(a): the same znodes, multi creates of 500 ops with 8 in flight, nothing else."""
    renamed = [(prefix + path[len(SOURCE_ROOT):], data) for path, data in creates]
    client.ensure_path(prefix.rsplit('/', 1)[0] or '/')
    start = time.monotonic()
    pending = []
    for index in range(0, len(renamed), 500):
        txn = client.transaction()
        for path, data in renamed[index:index + 500]:
            txn.create(path, data)
        pending.append(txn.commit_async())
        if len(pending) >= 8:
            results = pending.pop(0).get()
            assert not isinstance(results[0], Exception), results[0]
    for result in pending:
        results = result.get()
        assert not isinstance(results[0], Exception), results[0]
    return time.monotonic() - start


def run_zkshell(source_member, dest_member, subset, target):
    """(c): zk-shell cp of ``subset`` (recursive, overwrite); returns (seconds, output)."""
    command = [ZKSHELL, '--run-once', 'cp zk://%s%s zk://%s%s true true' % (source_member, subset, dest_member, target)]
    start = time.monotonic()
    result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, check=False, timeout=3600)
    return time.monotonic() - start, result.returncode, result.stdout


def measure_snapshot_diff(src, dst, source_root, dest_root, with_acl):
    """(d): both sides walked at once (``snapshot_pair``, as ``copy()`` does), then diffed."""
    start = time.monotonic()
    source, destination = snapshot_pair(src, dst, [source_root], [dest_root], with_acl=with_acl, source_keep_data=False)
    read_done = time.monotonic()
    compare = ('data', 'acl', 'type', 'counters') if with_acl else ('data', 'type', 'counters')
    diff = diff_snapshots(source, destination, compare=compare, path_map={source_root: dest_root})
    end = time.monotonic()
    return {'seconds': end - start, 'source_read': source.elapsed, 'dest_read': destination.elapsed, 'read': read_done - start,
            'diff': end - read_done, 'source_nodes': len(source.nodes), 'dest_nodes': len(destination.nodes), 'in_sync': diff.in_sync,
            'diff_result': diff}


def figure(label, count, seconds, extra=''):
    print('%-46s: %7d znodes in %6.2fs = %8.0f znodes/s%s' % (label, count, seconds, rate(count, seconds), extra))


def verdict(ok):
    return 'PASS' if ok else 'MISS'


def main():
    parser = argument_parser(__doc__, nodes=100000, nodes_help='znodes in the source tree')
    parser.add_argument('--zkshell-nodes', type=int, default=10000, help='size of the subset zk-shell copies (one app, default 10000)')
    parser.add_argument('--repeat', type=int, default=2, help='rounds of (a), (b) and (d); the best round counts (default 2)')
    parser.add_argument('--skip-zkshell', action='store_true', help='do not run zk-shell (its rate is then unknown)')
    parser.add_argument('--keep', action='store_true', help='leave the clusters running and print their addresses (Ctrl-C to stop)')
    args = parser.parse_args()

    apps = max(1, args.nodes // args.zkshell_nodes)
    creates = tree_layout(args.nodes, apps=apps)
    base_dir = tempfile.mkdtemp(prefix='bench-copy-')
    print('bench_copy: starting a 3-node source and a 3-node destination ensemble (ZooKeeper 3.8) under %s' % base_dir)
    print('machine: %d CPUs, load average %.1f %.1f %.1f (other work on the machine skews every figure; ratios are measured '
          'in the same rounds)' % ((os.cpu_count() or 0,) + tuple(os.getloadavg())))
    source_cluster = bench_cluster('bench-source', size=3, base_dir=base_dir, heap='768m')
    dest_cluster = bench_cluster('bench-dest', size=3, base_dir=base_dir, heap='768m')
    src = dst = cleaner = None
    try:
        source_cluster.start()
        dest_cluster.start()
        spec_overrides = {'auth': digest_auth()}
        src = connect(dict(source_cluster.client_spec(), **spec_overrides))
        dst = connect(dict(dest_cluster.client_spec(), **spec_overrides))
        started = time.monotonic()
        # The application identity owns app-07's groups (the migrator may only read them).
        both = [('digest', '%s:%s' % (MIGRATOR_USER, MIGRATOR_PASSWORD)), ('digest', '%s:%s' % (APP_USER, APP_PASSWORD))]
        loader = source_cluster.client(auth_data=both)
        cleaner = dest_cluster.client(auth_data=both)
        load(loader, creates)
        # Gaps in the sequential parents: delete every 7th job, so counters run ahead of the children.
        loaded = take_snapshot(src, [SOURCE_ROOT], with_acl=False, keep_data=False)
        jobs = [path for path in loaded.nodes if '/job-' in path]
        txn_paths = jobs[::7]
        for start in range(0, len(txn_paths), 500):
            txn = loader.transaction()
            for path in txn_paths[start:start + 500]:
                txn.delete(path)
            txn.commit()
        loader.stop()
        loader.close()
        source_nodes = len(loaded.nodes) - len(txn_paths)
        acl_nodes = sum(1 for _p, _d, acl, _s in creates if acl)
        print('loaded %d znodes of ~%d bytes in %.1fs (%d sequential, %d deleted for gaps, %d with digest ACLs, %d apps)'
              % (source_nodes, PAYLOAD, time.monotonic() - started, len(jobs), len(txn_paths), acl_nodes, apps))
        source_full = take_snapshot(src, [SOURCE_ROOT], with_acl=False, keep_data=True)
        parent_first = sorted(source_full.nodes, key=lambda p: p.count('/'))
        raw_creates = [(path, source_full.nodes[path].data) for path in parent_first]
        del source_full

        # (a) and (b), interleaved in rounds so that each round's figures share
        # the machine's conditions; the best round of each counts.
        # An untimed round first: the servers run the full JIT of production, which
        # compiles the request paths during the first minute of load (the first
        # timed round ran at ~60% of the second's raw rate without it).
        measure_raw(dst, raw_creates, '/warmup' + SOURCE_ROOT)
        copy(src, dst, [(SOURCE_ROOT, '/warmup-copy')], sync_acl=True, migrator_acl=migrator_acl_entries())
        delete_tree(cleaner, '/warmup')
        delete_tree(cleaner, '/warmup-copy')
        raw_times, copy_times = [], {False: [], True: []}
        clusters = (source_cluster, dest_cluster)
        for round_number in range(1, args.repeat + 1):
            wait_idle(clusters)
            seconds = measure_raw(dst, raw_creates, '/raw' + SOURCE_ROOT)
            raw_times.append(seconds)
            figure('(a) raw multi creates (500 ops, 8 in flight) #%d' % round_number, len(raw_creates), seconds)
            delete_tree(cleaner, '/raw')
            for label, sync_acl in (('without ACLs', False), ('with ACLs', True)):
                target = '/copy-acl' if sync_acl else '/copy-noacl'
                wait_idle(clusters)
                result = copy(src, dst, [(SOURCE_ROOT, target)], sync_acl=sync_acl, migrator_acl=migrator_acl_entries())
                timings = result.timings
                copy_times[sync_acl].append(timings['total'])
                applied = result.applied.applied
                figure('(b) copy %s #%d' % (label, round_number), source_nodes, timings['total'],
                       '  [snapshots %.2fs (source %.2fs, destination %.2fs, at once), diff %.2fs, plan %.2fs, apply %.2fs; created %d, '
                       'ACLs set %d, counters raised %d (%d pairs)]'
                       % (timings['snapshots'], timings['snapshot_source'], timings['snapshot_destination'], timings['diff'], timings['plan'],
                          timings['apply'], applied['create'], applied['set_acl'], applied['raise_cversion'],
                          result.applied.seq_bump_pairs))
                if round_number == 1:
                    check = measure_snapshot_diff(src, dst, SOURCE_ROOT, target, with_acl=sync_acl)
                    print('    verified: %s %s the source (data, %scounters)'
                          % (target, 'matches' if check['in_sync'] else 'DOES NOT MATCH', 'ACLs, ' if sync_acl else ''))
                    if not check['in_sync']:
                        print('    differences: %s' % check['diff_result'].to_dict(max_paths=5))
                if sync_acl is False or round_number < args.repeat:
                    delete_tree(cleaner, target)
        raw_rate = rate(len(raw_creates), min(raw_times))

        # (c) zk-shell
        zkshell_rate = None
        subset = SOURCE_ROOT + '/app-00'
        subset_nodes = sum(1 for path in loaded.nodes if path == subset or path.startswith(subset + '/')) - sum(
            1 for path in txn_paths if path.startswith(subset + '/'))
        if not args.skip_zkshell:
            wait_idle(clusters)
            seconds, code, output = run_zkshell(source_cluster.host_list[0], dest_cluster.host_list[0], subset, '/zkshell/app-00')
            copied = take_snapshot(dst, ['/zkshell/app-00'], with_acl=False, keep_data=False).nodes if dst.exists('/zkshell/app-00') else {}
            failed = 'Copy failed' in output or code != 0 or len(copied) != subset_nodes
            zkshell_rate = rate(len(copied), seconds)
            figure('(c) zk-shell cp of %s' % subset, len(copied), seconds,
                   '  (INCOMPLETE: %d of %d copied; exit %d; output: %s)' % (len(copied), subset_nodes, code, output.strip()[-300:])
                   if failed else '')

        # (d) snapshot both sides + diff, 100k vs 100k (the copy with ACLs is the destination)
        snapshot_results = {}
        for label, with_acl in (('without ACLs', False), ('with ACLs', True)):
            best = None
            for round_number in range(1, args.repeat + 1):
                wait_idle(clusters)
                measured = measure_snapshot_diff(src, dst, SOURCE_ROOT, '/copy-acl', with_acl)
                figure('(d) snapshot+diff %s #%d (compared)' % (label, round_number), measured['source_nodes'], measured['seconds'],
                       '  [%.0f znodes/s read on both sides; walks %.2fs (source %.2fs, destination %.2fs, at once), diff %.2fs; '
                       'in sync: %s]'
                       % (rate(measured['source_nodes'] + measured['dest_nodes'], measured['seconds']), measured['read'],
                          measured['source_read'], measured['dest_read'], measured['diff'], measured['in_sync']))
                measured.pop('diff_result')
                if best is None or measured['seconds'] < best['seconds']:
                    best = measured
            snapshot_results[with_acl] = best

        print()
        print('load average at the end: %.1f %.1f %.1f' % os.getloadavg())
        print('targets (issue 3), ratios against the raw ceiling and zk-shell measured above:')
        no_acl_rate = rate(source_nodes, min(copy_times[False]))
        acl_rate = rate(source_nodes, min(copy_times[True]))
        print('best of %d round(s): raw %.0f znodes/s, copy without ACLs %.0f znodes/s, with ACLs %.0f znodes/s%s'
              % (args.repeat, raw_rate, no_acl_rate, acl_rate, ', zk-shell %.0f znodes/s' % zkshell_rate if zkshell_rate else ''))
        print('%s copy without ACLs >= 0.6x raw      : %.2fx' % (verdict(no_acl_rate >= 0.6 * raw_rate), no_acl_rate / raw_rate))
        print('%s copy with ACLs    >= 0.3x raw      : %.2fx' % (verdict(acl_rate >= 0.3 * raw_rate), acl_rate / raw_rate))
        if zkshell_rate:
            print('%s copy without ACLs >= 50x zk-shell  : %.0fx' % (verdict(no_acl_rate >= 50 * zkshell_rate), no_acl_rate / zkshell_rate))
            print('%s copy with ACLs    >= 50x zk-shell  : %.0fx' % (verdict(acl_rate >= 50 * zkshell_rate), acl_rate / zkshell_rate))
        else:
            print('MISS copy >= 50x zk-shell             : zk-shell not measured')
        plain = snapshot_results[False]
        with_acls = snapshot_results[True]
        plain_rate = rate(plain['source_nodes'], plain['seconds'])
        acl_diff_rate = rate(with_acls['source_nodes'], with_acls['seconds'])
        print('%s snapshot+diff without ACLs >= 40,000/s : %.0f znodes compared/s (%.0f znodes read/s on both sides)'
              % (verdict(plain_rate >= 40000), plain_rate, rate(plain['source_nodes'] + plain['dest_nodes'], plain['seconds'])))
        print('%s snapshot+diff with ACLs    >= 15,000/s : %.0f znodes compared/s (%.0f znodes read/s on both sides)'
              % (verdict(acl_diff_rate >= 15000), acl_diff_rate, rate(with_acls['source_nodes'] + with_acls['dest_nodes'], with_acls['seconds'])))
        if args.keep:
            print('source %s, destination %s; Ctrl-C to stop' % (source_cluster.hosts, dest_cluster.hosts))
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        close_clients((src, dst, cleaner))
        source_cluster.destroy()
        dest_cluster.destroy()
        shutil.rmtree(base_dir, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
