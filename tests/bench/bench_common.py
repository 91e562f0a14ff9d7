# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the benchmarks of this directory share: imports, command line, the cluster measured, clients, figures.

A benchmark runs as a script (``.venv/bin/python tests/bench/bench_x.py``),
so this directory is first on ``sys.path``; importing this module before
anything of the collection makes ``ansible_collections.zookeeper.migration``
(a link to this checkout under ``.cache/collections``) and ``tests`` importable.
"""

import argparse
import contextlib
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS_DIR = os.path.join(REPO_ROOT, '.cache', 'collections')
COLLECTION_LINK = os.path.join(COLLECTIONS_DIR, 'ansible_collections', 'zookeeper', 'migration')
if not os.path.exists(COLLECTION_LINK):
    os.makedirs(os.path.dirname(COLLECTION_LINK), exist_ok=True)
    os.symlink(REPO_ROOT, COLLECTION_LINK)
for _path in (COLLECTIONS_DIR, REPO_ROOT):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from tests.harness.zkharness import SERVER_JVM_FLAGS, TEST_JVM_FLAGS, ZkCluster  # noqa: E402


def bench_cluster(name, size=3, **options):
    """A harness cluster (not started) whose servers run as in production (``SERVER_JVM_FLAGS``: full JIT, the JVM's collector).

    The test suite's servers trade steady-state speed for start-up time; a
    benchmark measures the steady state. ``ZK_BENCH_JVM=test`` in the
    environment runs the test suite's flags instead, for comparison, and
    ``ZK_BENCH_JVM="-XX:... -XX:..."`` any other flags.
    """
    chosen = os.environ.get('ZK_BENCH_JVM', '').strip()
    flags = TEST_JVM_FLAGS if chosen == 'test' else chosen.split() if chosen.startswith('-') else SERVER_JVM_FLAGS
    return ZkCluster(name, size=size, jvm_flags=flags, **options)


def argument_parser(doc, nodes, nodes_help='znodes in the tree the benchmark loads', hosts_help=None):
    """The benchmark's command line: its docstring as help, ``--nodes`` (default ``nodes``) and, given ``hosts_help``, ``--hosts``.

    ``--hosts`` names a running cluster to measure instead of one started
    here (see ``cluster_to_measure``).
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--nodes', type=int, default=nodes, help='%s (default %d)' % (nodes_help, nodes))
    if hosts_help:
        parser.add_argument('--hosts', help=hosts_help)
    return parser


@contextlib.contextmanager
def cluster_to_measure(name, hosts=None, size=1):
    """``with cluster_to_measure(name, args.hosts, size) as (hosts, server_pids):`` the cluster a benchmark measures.

    With ``hosts`` (a connect string) that running cluster, left as it is;
    its server pids are unknown here (an empty list). Without it a fresh
    ``size``-node ZooKeeper 3.8 cluster of the test harness, destroyed when
    the block ends, whatever happened in it (also on Ctrl-C).
    """
    if hosts:
        yield hosts, []
        return
    cluster = bench_cluster(name, size=size)
    try:
        cluster.start()
        yield cluster.hosts, [node.pid for node in cluster.nodes]
    finally:
        cluster.destroy()


def close_clients(clients):
    """Stop and close each started kazoo client of ``clients``; ``None`` stands for one never made."""
    for client in clients:
        if client is not None:
            client.stop()
            client.close()


def cpu_seconds(pids):
    """CPU seconds (user + system) the processes ``pids`` have used so far; None when one of them cannot be read."""
    ticks = 0
    for pid in pids:
        try:
            with open('/proc/%d/stat' % pid) as handle:
                fields = handle.read().rsplit(')', 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])      # utime + stime
        except (OSError, ValueError, IndexError):
            return None
    return ticks / float(os.sysconf('SC_CLK_TCK'))


def rate(count, seconds):
    """``count`` per second (infinite for no time at all)."""
    return count / seconds if seconds > 0 else float('inf')
