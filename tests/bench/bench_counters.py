# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What carrying counters (task option ``counters: all``) costs the sync daemon per event, against ``sequential`` in the same run.

One daemon runs two tasks on one source and one destination (single-node
ZooKeeper 3.8 clusters): ``seq`` (``counters: sequential``, the default) and
``all`` (``counters: all``), each on its own subtree of ``--keys`` keys under
one parent. Passes alternate between them (seq, all, seq, all, ...): a burst
of ``--updates`` setData on the keys, timed from the first write until every
destination value matches, with the daemon's CPU seconds over the pass. With
``all`` each batch also reads the parents of its paths on both sides (the
keys' parent here: one stat per side and batch). Last, an ID generator
churned ``--churn`` times (create + delete of a sequential child, no child
left) under ``all``: the time until the destination counter is aligned.

    .venv/bin/python tests/bench/bench_counters.py [--passes 3] [--updates 20000]
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import bench_cluster, cpu_seconds, argument_parser  # noqa: E402

from ansible_collections.zookeeper.migration.plugins.module_utils import _control, _counters
from tests.integration.sync_support import DaemonProcess  # noqa: E402

ROOT = '/zkm-bench-counters'


def wait_until(predicate, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def counter(client, path):
    stat = client.exists(path)
    return _counters.next_suffix(stat.cversion, stat.numChildren)


def burst(client, keys, updates, tag):
    """``updates`` setData over ``keys`` in multis of 500; returns the last value of each key."""
    last = {}
    txn = client.transaction()
    for index in range(updates):
        path = keys[index % len(keys)]
        value = ('%s-%d' % (tag, index)).encode()
        txn.set_data(path, value)
        last[path] = value
        if (index + 1) % 500 == 0:
            txn.commit()
            txn = client.transaction()
    txn.commit()
    return last


def destination_matches(client, last):
    pending = [(path, client.get_async(path)) for path in last]
    return all(result.get()[0] == last[path] for path, result in pending)


def churn(client, parent, count):
    """An ID generator: create + delete of a sequential child, ``count`` times (250 pairs per multi, names predicted)."""
    done = 0
    while done < count:
        txn = client.transaction()
        start = counter(client, parent)
        step = min(250, count - done)
        for index in range(step):
            txn.create(parent + '/id-', b'', sequence=True)
            txn.delete('%s/id-%010d' % (parent, start + index))
        results = txn.commit()
        assert not [r for r in results if isinstance(r, Exception)], results[:3]
        done += step


def main():
    parser = argument_parser(__doc__, 0)
    parser.add_argument('--keys', type=int, default=2000)
    parser.add_argument('--updates', type=int, default=20000)
    parser.add_argument('--passes', type=int, default=3, help='passes per scope, alternating')
    parser.add_argument('--churn', type=int, default=5000)
    args = parser.parse_args()
    print('machine: %d CPUs, load average %s (other work on the machine skews every figure)'
          % (os.cpu_count(), open('/proc/loadavg').read().split()[0]), flush=True)
    source = bench_cluster('bench-counters-src', size=1)
    destination = bench_cluster('bench-counters-dst', size=1)
    workdir = tempfile.mkdtemp(prefix='bench-counters-')
    daemon = None
    try:
        source.start()
        destination.start()
        src, dst = source.client(), destination.client()
        store = _control.ControlStore(dst, ROOT, allow_open_acl=True)     # unauthenticated bench clusters
        store.ensure_root()
        for name, cluster in (('src', source), ('dst', destination)):
            store.put_cluster({'name': name, 'hosts': cluster.host_list, 'session_timeout': 6})
        keys = {}
        for scope in ('seq', 'all'):
            base = '/bench-%s' % scope
            keys[scope] = ['%s/cfg/k%05d' % (base, index) for index in range(args.keys)]
            src.ensure_path(base + '/cfg')
            src.ensure_path(base + '/ids')
            txn = src.transaction()
            for path in keys[scope]:
                txn.create(path, b'0')
            txn.commit()
            store.put_task({'name': scope, 'source': 'src', 'destination': 'dst', 'paths': [base],
                            'counters': 'sequential' if scope == 'seq' else 'all'})
        daemon = DaemonProcess(workdir, 'd1', {'hosts': destination.host_list}, ROOT, full_reconcile_interval=7 * 86400).start()
        for scope in ('seq', 'all'):
            if not wait_until(lambda: (store.get_status(scope) or {}).get('phase') == 'streaming', 120, 0.2):
                raise SystemExit('task %s never streamed:\n%s' % (scope, daemon.tail()))
        burst(src, keys['seq'], args.keys, 'warm')
        burst(src, keys['all'], args.keys, 'warm')
        time.sleep(2)
        rows = {'seq': [], 'all': []}
        for number in range(args.passes):
            for scope in ('seq', 'all'):
                cpu = cpu_seconds([daemon.pid])
                started = time.monotonic()
                last = burst(src, keys[scope], args.updates, 'p%d' % number)
                if not wait_until(lambda: destination_matches(dst, last), 300, 0.05):
                    raise SystemExit('pass %d of %s did not converge:\n%s' % (number, scope, daemon.tail()))
                seconds = time.monotonic() - started
                rows[scope].append((seconds, cpu_seconds([daemon.pid]) - cpu))
                print('pass %d %-3s: %d updates in %.2fs (%.0f/s), daemon CPU %.2fs (%.1f us per update)'
                      % (number, scope, args.updates, seconds, args.updates / seconds, rows[scope][-1][1],
                         rows[scope][-1][1] / args.updates * 1e6), flush=True)
        print('\nmeans over %d passes each (alternating, same run):' % args.passes)
        for scope in ('seq', 'all'):
            seconds = sum(row[0] for row in rows[scope]) / len(rows[scope])
            cpu = sum(row[1] for row in rows[scope]) / len(rows[scope])
            print('  counters: %-10s %.0f updates/s, daemon CPU %.1f us per update'
                  % ('sequential' if scope == 'seq' else 'all', args.updates / seconds, cpu / args.updates * 1e6))
        started = time.monotonic()
        churn(src, '/bench-all/ids', args.churn)
        wrote = time.monotonic() - started
        target = counter(src, '/bench-all/ids')
        aligned = wait_until(lambda: counter(dst, '/bench-all/ids') >= target, 120, 0.02)
        print('\nID generator churned %d times in %.2fs; destination counter aligned %.2fs after the last churn (%s); status %s'
              % (args.churn, wrote, time.monotonic() - started - wrote, 'yes' if aligned else 'NO',
                 (store.get_status('all') or {}).get('details', {}).get('counters_raised')))
        store.client.stop()
    finally:
        if daemon is not None:
            daemon.kill()
        source.destroy()
        destination.destroy()


if __name__ == '__main__':
    main()
