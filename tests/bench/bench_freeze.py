# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of a cutover's freeze (plugins/module_utils/_freeze.py): what the write outage is made of.

In one run, against a real ZooKeeper 3.8 ensemble (3 nodes, started here
unless --hosts names one) loaded with --nodes znodes (fanout 10, open ACLs),
with a digest migration identity, it prints seconds and ratios against a
baseline measured in the same run:

* baseline: one read of the task's scope with ACLs (``scope_snapshot``), the
  figure ``estimate_outage`` builds its check-mode estimate on;
* the freeze: the original ACLs saved in the control store, batch by batch,
  then a setACL per node (pipelined), parents first;
* the proof: a throwaway identity's create refused, the migrator's read of a
  node it is not granted refused (two sessions' worth of round trips);
* the thaw: every saved ACL set back and read back;
* the estimate of the freeze part (``estimate_outage(...)['parts']['freeze']``)
  against the measured freeze;
* with ``--cutover`` (a second 3-node ensemble and a real sync daemon): a
  whole cutover with ``freeze_source`` of the same tree, its measured
  ``write_outage`` against the check-mode ``write_outage_estimate``.

Run::

    .venv/bin/python tests/bench/bench_freeze.py [--nodes 20000] [--hosts H:P,...] [--repeat 3] [--cutover]

Nothing is asserted: figures are for reading.
"""

import statistics
import time

# First: it makes the collection (ansible_collections.zookeeper.migration) and tests.harness importable.
from bench_common import argument_parser, close_clients, cluster_to_measure

from kazoo.client import KazooClient
from kazoo.security import OPEN_ACL_UNSAFE

from ansible_collections.zookeeper.migration.plugins.module_utils import _client, _control
from ansible_collections.zookeeper.migration.plugins.module_utils._cutover import Cutover, CutoverOptions, estimate_outage
from ansible_collections.zookeeper.migration.plugins.module_utils._freeze import Freezer, scope_snapshot

BASE = '/bench-freeze'
ROOT = '/zkm-bench-freeze'
TASK = 'bench-freeze'
MIGRATOR = ('migrator', 'migrator-pw')


class Report(object):
    def __init__(self):
        self.operations = []
        self.warnings = []


def load_tree(client, count):
    """About ``count`` znodes of 64 bytes under BASE (fanout 10), multis of 500 creates."""
    client.ensure_path(BASE)
    paths = []
    frontier = [BASE]
    while len(paths) < count:
        nxt = []
        for parent in frontier:
            for index in range(10):
                if len(paths) >= count:
                    break
                path = '%s/n%d' % (parent, index)
                paths.append(path)
                nxt.append(path)
        frontier = nxt
    for start in range(0, len(paths), 500):
        transaction = client.transaction()
        for path in paths[start:start + 500]:
            transaction.create(path, b'v' * 64, acl=OPEN_ACL_UNSAFE)
        transaction.commit()
    return len(paths) + 1


def delete_tree(client):
    if client.exists(BASE):
        client.delete(BASE, recursive=True)


def main():
    parser = argument_parser(__doc__, 20000, hosts_help='a running cluster to measure (connect string)')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--cutover', action='store_true', help='also time a whole cutover with a real daemon')
    args = parser.parse_args()
    with cluster_to_measure('bench-freeze', args.hosts, size=3) as (hosts, _pids):
        auth = [('digest', '%s:%s' % MIGRATOR)]
        client = KazooClient(hosts=hosts, auth_data=auth, timeout=30)
        client.start()
        control = KazooClient(hosts=hosts, auth_data=auth, timeout=30)   # the control store is the migrator's, as in production
        control.start()
        spec = {'paths': [BASE], 'exclude': []}
        connection = _client.ClusterSpec.from_dict({'name': 'bench', 'hosts': hosts.split(','),
                                                    'auth': {'scheme': 'digest', 'username': MIGRATOR[0],
                                                             'password': MIGRATOR[1]}})
        try:
            delete_tree(client)
            nodes = load_tree(client, args.nodes)
            store = _control.ControlStore(control, ROOT)
            store.ensure_root()
            # only the source is touched; the destination registration is never connected to
            store.put_cluster({'name': 'src', 'hosts': hosts.split(',')})
            store.put_cluster({'name': 'dst', 'hosts': ['127.0.0.1:9']})
            store.put_task({'name': TASK, 'source': 'src', 'destination': 'dst', 'paths': [BASE]})
            figures = dict((key, []) for key in ('read', 'freeze', 'prove', 'thaw', 'estimate'))
            for _round in range(args.repeat):
                store.put_cutover(TASK, {'task': TASK, 'state': 'started'})
                freezer = Freezer(store, TASK, 'source', 'bench', Report())
                started = time.monotonic()
                scope_snapshot(client, spec, ROOT, 'bench', with_acl=True)
                figures['read'].append(time.monotonic() - started)
                figures['estimate'].append(estimate_outage(nodes, figures['read'][-1], settle=0)['parts']['freeze'])
                started = time.monotonic()
                frozen = freezer.freeze(client, spec, ROOT)
                figures['freeze'].append(time.monotonic() - started)
                started = time.monotonic()
                freezer.prove(client, connection, spec)
                figures['prove'].append(time.monotonic() - started)
                started = time.monotonic()
                freezer.restore(client)
                figures['thaw'].append(time.monotonic() - started)
                store.delete_cutover(TASK)
            base = statistics.median(figures['read'])
            print('freeze of %d znodes (%d frozen), 3-node ensemble, median of %d rounds' % (nodes, frozen, args.repeat))
            print('%-44s %9s %9s %12s' % ('step', 'seconds', 'x read', 'znodes/s'))
            for key, label in (('read', 'baseline: one read of the scope with ACLs'), ('freeze', 'freeze (save ACLs, setACL each)'),
                               ('prove', 'proof (throwaway write, migrator read)'), ('thaw', 'thaw (setACL each, read back)'),
                               ('estimate', 'estimate of the freeze (check mode)')):
                value = statistics.median(figures[key])
                per_second = '%.0f' % (nodes / value) if key in ('read', 'freeze', 'thaw') else '-'
                print('%-44s %9.3f %9.2f %12s' % (label, value, value / base if base else 0, per_second))
            if args.cutover:
                bench_cutover(client, hosts, args.nodes)
        finally:
            try:
                delete_tree(client)
            finally:
                close_clients([client, control])


def bench_cutover(source_client, source_hosts, nodes):
    """A whole cutover with a frozen source: the measured write outage against the check-mode estimate."""
    import json
    import os
    import tempfile
    from bench_common import bench_cluster
    from tests.integration.sync_support import DaemonProcess, cleanup_daemons, wait_trees_equal
    from ansible_collections.zookeeper.migration.plugins.module_utils import _task

    delete_tree(source_client)
    load_tree(source_client, nodes)
    directory = tempfile.mkdtemp(prefix='bench-cutover-')
    credentials = {'migrator': {'type': 'digest', 'username': MIGRATOR[0], 'password': MIGRATOR[1]}}
    credentials_file = os.path.join(directory, 'credentials.json')
    with open(credentials_file, 'w') as handle:
        json.dump(credentials, handle)
    os.chmod(credentials_file, 0o600)
    destination = bench_cluster('bench-freeze-destination', size=3)
    destination.start()
    daemons = []
    try:
        target = KazooClient(hosts=destination.hosts, auth_data=[('digest', '%s:%s' % MIGRATOR)], timeout=30)
        target.start()
        store = _control.ControlStore(target, ROOT)
        store.ensure_root()
        auth = {'scheme': 'digest', 'credential': 'migrator'}
        store.put_cluster({'name': 'src', 'hosts': source_hosts.split(','), 'auth': auth})
        store.put_cluster({'name': 'dst', 'hosts': destination.host_list, 'auth': auth})
        store.put_task({'name': TASK, 'source': 'src', 'destination': 'dst', 'paths': [BASE]})
        daemon = DaemonProcess(directory, 'b1', {'hosts': destination.host_list, 'auth': auth}, ROOT, credentials_file=credentials_file)
        daemons.append(daemon)
        daemon.start()
        _task.wait_for_status(store, TASK, 'in_sync', 600)
        wait_trees_equal(source_client, target, BASE, timeout=120)
        options = CutoverOptions(drain_timeout=600)
        estimate = Cutover(store, TASK, credentials=credentials, options=options).complete(freeze_source=True, check_mode=True)
        started = time.monotonic()
        done = Cutover(store, TASK, credentials=credentials, options=options).complete(freeze_source=True)
        elapsed = time.monotonic() - started
        outage = done['write_outage']['seconds']
        guess = estimate['write_outage_estimate']
        print()
        print('cutover of %d znodes with freeze_source (one daemon, two 3-node ensembles)' % nodes)
        print('%-44s %9s' % ('', 'seconds'))
        print('%-44s %9.3f' % ('whole cutover (preflight to completed)', elapsed))
        print('%-44s %9.3f' % ('write outage, measured (write_outage)', outage))
        print('%-44s %9.3f   (%s; x measured %.2f)' % ('write outage, check-mode estimate', guess['seconds'],
                                                       ', '.join('%s %.1f' % item for item in sorted(guess['parts'].items())),
                                                       guess['seconds'] / outage if outage else 0))
        target.stop()
        target.close()
    finally:
        cleanup_daemons(daemons)
        destination.destroy()


if __name__ == '__main__':
    main()
