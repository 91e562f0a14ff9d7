# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Micro-benchmark of the request paths in plugins/module_utils/_protocol.py.

Measures, in one run and against baselines measured in the same run:

* ACL reads: kazoo ``get_acls_async`` (all requests issued, then collected)
  vs ``get_acls_pipelined`` at several windows;
* data+children reads: kazoo ``get_async`` + ``get_children_async`` vs
  ``read_pipelined`` (the path for servers without multiRead) vs
  ``multi_read_many`` (500 ops, 4 in flight);
* each of them with kazoo's default ``select`` (an epoll selector built and
  closed per call), with ``tune_client`` (``select.select``) and with
  ``_client._poll_select`` (the poll-based variant ``_client.connect`` uses).

Run (starts its own standalone 3.8 server, or pass --hosts)::

    .venv/bin/python tests/bench/bench_protocol.py [--nodes 10000] [--ensemble] [--hosts H:P]

Prints znodes (or ops) per second and ratios to the baseline. Nothing is
asserted: figures are for reading, not for passing.
"""

import collections
import functools
import time

# First: it makes the collection (ansible_collections.zookeeper.migration) and tests.harness importable.
from bench_common import argument_parser, close_clients, cluster_to_measure, cpu_seconds, rate

from kazoo.client import KazooClient

from ansible_collections.zookeeper.migration.plugins.module_utils import _protocol

try:
    from ansible_collections.zookeeper.migration.plugins.module_utils._client import _poll_select
except ImportError:  # _client.py not there (yet): skip that variant
    _poll_select = None

BASE = '/bench-protocol'


def load_tree(zk, count, fanout=100):
    """``count`` znodes of ~100 bytes under BASE, ``fanout`` per parent; returns their paths."""
    if zk.exists(BASE):
        zk.delete(BASE, recursive=True)
    zk.create(BASE)
    paths = []
    parents = ['%s/p%04d' % (BASE, i) for i in range((count + fanout - 1) // fanout)]
    txn = zk.transaction()
    for parent in parents:
        txn.create(parent, b'')
    txn.commit()
    payload = b'x' * 100
    pending = []
    for index in range(count):
        paths.append('%s/n%05d' % (parents[index // fanout], index))
    for start in range(0, len(paths), 500):
        txn = zk.transaction()
        for path in paths[start:start + 500]:
            txn.create(path, payload)
        pending.append(txn.commit_async())
        if len(pending) >= 8:
            pending.pop(0).get()
    for result in pending:
        result.get()
    return parents, paths


class Meter(object):
    """Wall rate, client CPU (this process, all threads) and server CPU (from /proc, when the pid is known) per item."""

    def __init__(self, server_pids):
        self.server_pids = server_pids

    def measure(self, func, count):
        server_before = cpu_seconds(self.server_pids) if self.server_pids else None
        cpu_before = time.process_time()
        start = time.perf_counter()
        func()
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu_before
        server = None
        if server_before is not None:
            server_after = cpu_seconds(self.server_pids)
            server = None if server_after is None else (server_after - server_before) / count * 1e6
        return rate(count, wall), cpu / count * 1e6, server


def windowed(calls, window=1000):
    """Run ``calls`` (functions returning a kazoo IAsyncResult) with ``window`` in flight; return their values."""
    results = []
    in_flight = collections.deque()
    for call in calls:
        if len(in_flight) >= window:
            results.append(in_flight.popleft().get())
        in_flight.append(call())
    while in_flight:
        results.append(in_flight.popleft().get())
    return results


def kazoo_acls(zk, paths):
    return windowed([functools.partial(zk.get_acls_async, path) for path in paths])


def kazoo_reads(zk, paths):
    calls = []
    for path in paths:
        calls.append(functools.partial(zk.get_async, path))
        calls.append(functools.partial(zk.get_children_async, path))
    return windowed(calls)


def make_client(hosts, variant):
    zk = KazooClient(hosts=hosts, timeout=10)
    if variant == 'select':
        _protocol.tune_client(zk)
    elif variant == 'poll':
        zk.handler.select = _poll_select
    zk.start()
    return zk


def main():
    parser = argument_parser(__doc__, nodes=10000,
                             hosts_help='connect string of a running 3.6+ server (default: start a standalone 3.8)')
    parser.add_argument('--server-pid', type=int, action='append', default=[], help='pid(s) of the server(s), for server CPU per item')
    parser.add_argument('--ensemble', action='store_true', help='start a 3-node ensemble instead of a standalone server')
    parser.add_argument('--rounds', type=int, default=3, help='each method runs once per round, methods interleaved')
    parser.add_argument('--variants', default='default,select,poll', help='select functions to compare (default,select,poll)')
    args = parser.parse_args()

    with cluster_to_measure('bench-protocol', args.hosts, size=3 if args.ensemble else 1) as (hosts, pids):
        run(hosts, args, Meter(pids or args.server_pid))


def run(hosts, args, meter):
    loader = KazooClient(hosts=hosts, timeout=10)
    loader.start()
    started = time.perf_counter()
    _parents, paths = load_tree(loader, args.nodes)
    print('loaded %d znodes in %.1fs (hosts %s)' % (len(paths), time.perf_counter() - started, hosts))
    read_ops = [op for path in paths for op in (('data', path), ('children', path))]
    variants = [v for v in args.variants.split(',') if v != 'poll' or _poll_select is not None]
    clients = dict((variant, make_client(hosts, variant)) for variant in variants)
    try:
        for zk in clients.values():
            assert _protocol.supports_multi_read(zk), 'multiRead needs ZooKeeper 3.6+'
            # Same answers both ways before timing anything.
            sample = paths[:50]
            pipelined = _protocol.get_acls_pipelined(zk, sample)
            assert [pipelined[p] for p in sample] == kazoo_acls(zk, sample)
            sample_ops = read_ops[:100]
            assert _protocol.multi_read(zk, sample_ops) == _protocol.read_pipelined(zk, sample_ops)

        methods = []
        for variant in variants:
            zk = clients[variant]
            methods += [
                ('ACL', 'kazoo get_acls_async, 1000 in flight', variant, functools.partial(kazoo_acls, zk, paths)),
                ('ACL', 'get_acls_pipelined window=250', variant, functools.partial(_protocol.get_acls_pipelined, zk, paths, window=250)),
                ('ACL', 'get_acls_pipelined window=1000', variant, functools.partial(_protocol.get_acls_pipelined, zk, paths, window=1000)),
                ('data+children', 'kazoo get+get_children async, 1000 in flight', variant, functools.partial(kazoo_reads, zk, paths)),
                ('data+children', 'read_pipelined window=1000', variant, functools.partial(_protocol.read_pipelined, zk, read_ops, window=1000)),
                ('data+children', 'multi_read_many 500 ops x 4 in flight', variant,
                 functools.partial(_protocol.multi_read_many, zk, read_ops, batch_size=500, window=4)),
                ('data+children', 'multi_read_many 500 ops x 8 in flight', variant,
                 functools.partial(_protocol.multi_read_many, zk, read_ops, batch_size=500, window=8)),
            ]
        measured = collections.defaultdict(list)
        for round_index in range(args.rounds):
            # Rotate the order each round so load drifts on this shared machine hit every method alike.
            shift = round_index % len(methods)
            for kind, method, variant, func in methods[shift:] + methods[:shift]:
                measured[(kind, method, variant)].append(meter.measure(func, len(paths)))
    finally:
        close_clients(clients.values())
        loader.delete(BASE, recursive=True)
        close_clients([loader])

    baselines = {}
    for kind, method, variant, _func in methods:
        if method.startswith('kazoo') and variant == 'default':
            baselines[kind] = max(rate for rate, _cpu, _server in measured[(kind, method, variant)])
    print()
    print('%d znodes, %d rounds; rate = best round, CPU = median round (microseconds per znode)' % (len(paths), args.rounds))
    print('%-14s %-45s %-8s %10s %7s %11s %11s' % ('reads', 'method', 'select', 'znodes/s', 'ratio', 'client CPU', 'server CPU'))
    for kind, method, variant, _func in methods:
        runs = measured[(kind, method, variant)]
        rate = max(r[0] for r in runs)
        cpu = sorted(r[1] for r in runs)[len(runs) // 2]
        servers = sorted(r[2] for r in runs if r[2] is not None)
        server = ('%9.1f' % servers[len(servers) // 2]) if servers else '      n/a'
        print('%-14s %-45s %-8s %10.0f %6.1fx %9.1f   %s' % (kind, method, variant, rate, rate / baselines[kind], cpu, server))
    print("\nratio: against the kazoo baseline of the same kind with kazoo's default select (an epoll selector per call), same run.")
    print('select: default = kazoo 2.11, select = tune_client (select.select), poll = _client._poll_select.')


if __name__ == '__main__':
    main()
