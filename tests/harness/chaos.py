# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The chaos run: a bidirectional task under faults, every acknowledged operation checked against a ledger.

Two 3-node ensembles, a bidirectional task led by one of two or three real
daemon processes, and writers on both clusters, each with a ledger of every
operation and its outcome:

* a **source writer** owns ``<base>/src/kNNN`` and a **destination writer**
  ``<base>/dst/kNNN`` (disjoint key spaces: no key is ever written on both
  sides). Each keeps a model of its keys (the value it last wrote, absent,
  or uncertain after an operation whose outcome it never learnt) and reads
  the key on its own cluster before every operation: a value or absence that
  differs from its model is an **undone write** (reverted, resurrected or
  lost). A conditional write of its own that fails although it just read the
  key (bad version, exists, no node) means someone else wrote its key, which
  in a disjoint space can only be the sync: counted as interference.
* **shared writers** on both sides write ``<base>/shared/kNN``: after the
  run both sides must hold the same thing.

Faults, one every ``--fault-every`` seconds in a seeded order: kill -9 of
the leading daemon (restarted a few seconds later), SIGSTOP of the leader
past the session timeout (its sessions expire; SIGCONT afterwards), a clean
stop and restart of the leader, and a restart of a member of either
ensemble, its leader included.

At the end the faults stop, the writers stop, every process is thawed and
running, and the run waits for both trees to be equal. Pass: no undone
write, no interference, no conflict logged in the disjoint spaces, every
disjoint key as its writer last left it on both clusters, trees equal.

Run:  .venv/bin/python tests/harness/chaos.py run --duration 300 [--seed N] [--out FILE.json]
"""

import argparse
import json
import os
import random
import shutil
import sys
import threading
import time

if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from tests.conftest import _ensure_collection_importable  # noqa: E402  (puts the collection on sys.path)
    _ensure_collection_importable()

from tests.harness.zkharness import ZkCluster  # noqa: E402
from tests.integration.sync_support import (  # noqa: E402
    SESSION_TIMEOUT,
    DaemonProcess,
    make_store,
    persistent_tree,
    put_task,
    register_clusters,
    task_status,
    tree_diff,
    wait_streaming,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = '/chaos'
ROOT = '/zkm-chaos'
TASK = 'chaos'
FAULTS = ('kill_leader', 'freeze_leader', 'restart_leader', 'restart_source_member', 'restart_destination_member',
          'restart_source_leader', 'restart_destination_leader')


class Ledger(object):
    """Every operation a writer sent, with its outcome (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries = []

    def add(self, **entry):
        entry['t'] = round(time.time(), 3)
        with self.lock:
            self.entries.append(entry)

    def count(self, **match):
        with self.lock:
            return sum(1 for entry in self.entries if all(entry.get(k) == v for k, v in match.items()))


class DisjointWriter(threading.Thread):
    """Writes only its own key space on its own cluster and checks, before every operation, that nothing undid its writes."""

    ABSENT = ('absent',)

    def __init__(self, name, cluster, base, keys, rate, seed, ledger):
        super(DisjointWriter, self).__init__(name='writer-%s' % name)
        self.daemon = True
        self.writer = name
        self.cluster = cluster
        self.paths = ['%s/k%03d' % (base, index) for index in range(keys)]
        self.rate = rate
        self.rng = random.Random(seed)
        self.ledger = ledger
        self.model = dict((path, self.ABSENT) for path in self.paths)   # path -> ABSENT | ('value', data) | ('uncertain', {states})
        self.undone = []
        self.interference = []
        self.stop_event = threading.Event()
        self.sequence = 0
        self.client = None

    def run(self):
        from kazoo.exceptions import KazooException
        self.client = self.cluster.client(timeout=10.0)
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            path = self.rng.choice(self.paths)
            try:
                self.step(path)
            except KazooException as exc:
                self.ledger.add(writer=self.writer, op='read', path=path, outcome='error', error=type(exc).__name__)
                time.sleep(0.2)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop_event.wait(delay)
            else:
                next_at = time.monotonic()
        self.client.stop()
        self.client.close()

    def read(self, path):
        from kazoo.exceptions import NoNodeError
        try:
            data, stat = self.client.get(path)
            return ('value', data), stat
        except NoNodeError:
            return self.ABSENT, None

    def check(self, path, seen):
        """Compare what the cluster holds with the model; returns the state to go on from."""
        expected = self.model[path]
        if expected[0] == 'uncertain':
            if seen in expected[1]:
                self.model[path] = seen
                return seen
            self.undone.append({'path': path, 'expected': sorted(_show(s) for s in expected[1]), 'seen': _show(seen),
                                't': round(time.time(), 3)})
        elif seen != expected:
            self.undone.append({'path': path, 'expected': _show(expected), 'seen': _show(seen), 't': round(time.time(), 3)})
        self.model[path] = seen
        return seen

    def step(self, path):
        from kazoo.exceptions import BadVersionError, ConnectionLoss, NodeExistsError, NoNodeError, OperationTimeoutError, \
            SessionExpiredError
        seen, stat = self.read(path)
        current = self.check(path, seen)
        self.sequence += 1
        value = b'%s-%d' % (self.writer.encode(), self.sequence)
        if current == self.ABSENT:
            op, after = 'create', ('value', value)
        elif self.rng.random() < 0.25:
            op, after = 'delete', self.ABSENT
        else:
            op, after = 'set', ('value', value)
        try:
            if op == 'create':
                self.client.create(path, value, makepath=True)
            elif op == 'delete':
                self.client.delete(path, version=stat.version)
            else:
                self.client.set(path, value, version=stat.version)
        except (BadVersionError, NodeExistsError, NoNodeError) as exc:
            # it read the key an instant ago: only another writer (the sync) can have changed it since
            self.interference.append({'path': path, 'op': op, 'error': type(exc).__name__, 't': round(time.time(), 3)})
            self.ledger.add(writer=self.writer, op=op, path=path, value=value.decode(), outcome='failed', error=type(exc).__name__)
            self.model[path] = self.read(path)[0]       # counted once here; go on from what is there now
            return
        except (ConnectionLoss, OperationTimeoutError, SessionExpiredError) as exc:
            self.model[path] = ('uncertain', frozenset([current, after]))
            self.ledger.add(writer=self.writer, op=op, path=path, value=value.decode(), outcome='unknown', error=type(exc).__name__)
            return
        self.model[path] = after
        self.ledger.add(writer=self.writer, op=op, path=path, value=value.decode(), outcome='ok')

    def expected_final(self, path):
        """The states the key may end in: its acknowledged state, or either side of an unknown outcome."""
        state = self.model[path]
        return set(state[1]) if state[0] == 'uncertain' else {state}


class SharedWriter(threading.Thread):
    """Writes a key space both sides write (conflicts are expected there); ledger only."""

    def __init__(self, name, cluster, base, keys, rate, seed, ledger):
        super(SharedWriter, self).__init__(name='writer-%s' % name)
        self.daemon = True
        self.writer = name
        self.cluster = cluster
        self.paths = ['%s/k%02d' % (base, index) for index in range(keys)]
        self.rate = rate
        self.rng = random.Random(seed)
        self.ledger = ledger
        self.stop_event = threading.Event()

    def run(self):
        from kazoo.exceptions import KazooException, NoNodeError
        client = self.cluster.client(timeout=10.0)
        sequence = 0
        while not self.stop_event.wait(1.0 / self.rate):
            path = self.rng.choice(self.paths)
            sequence += 1
            value = b'%s-%d' % (self.writer.encode(), sequence)
            try:
                try:
                    client.set(path, value)
                    op = 'set'
                except NoNodeError:
                    client.create(path, value, makepath=True)
                    op = 'create'
                self.ledger.add(writer=self.writer, op=op, path=path, value=value.decode(), outcome='ok')
            except KazooException as exc:
                self.ledger.add(writer=self.writer, op='write', path=path, value=value.decode(), outcome='failed',
                                error=type(exc).__name__)
        client.stop()
        client.close()


def _show(state):
    return 'absent' if state[0] == 'absent' else state[1].decode('utf-8', 'replace') if isinstance(state[1], bytes) else str(state)


class ChaosRun(object):
    """One run: set-up, writers, faults, convergence, checks. ``run()`` returns the figures."""

    def __init__(self, duration=300.0, daemons=3, seed=None, rate=150, fault_every=15.0, shared=True, policy='source_wins',
                 output=None, faults=FAULTS, schedule=None, log=print):
        self.duration = duration
        self.daemon_count = daemons
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.rate = rate
        self.fault_every = fault_every
        self.shared = shared
        self.policy = policy
        self.faults = list(faults)
        self.schedule = list(schedule or ())     # faults in this order (cycling) instead of a seeded draw
        self.output = output or os.path.join(REPO_ROOT, 'tests', 'output', 'chaos', time.strftime('%Y%m%dT%H%M%S'))
        self.log = log
        self.ledger = Ledger()
        self.fault_log = []
        self.leaders = []
        self.source = self.destination = None
        self.daemons = []
        self.writers = []
        self.clients = []

    # -- set-up -----------------------------------------------------------------
    def start(self):
        os.makedirs(self.output, exist_ok=True)
        self.source = ZkCluster('chaos-src', size=3).start()
        self.destination = ZkCluster('chaos-dst', size=3).start()
        src, dst = self.source.client(), self.destination.client()
        self.clients = [src, dst]
        store = self.store = make_store(dst, ROOT)
        register_clusters(store, self.source, self.destination)
        for client in (src, dst):
            for space in ('src', 'dst', 'shared'):
                client.ensure_path('%s/%s' % (BASE, space))
        put_task(store, TASK, [BASE], mode='bidirectional', conflict=self.policy)
        for index in range(self.daemon_count):
            process = DaemonProcess(self.output, 'd%d' % (index + 1), {'hosts': self.destination.host_list}, ROOT,
                                    checkpoint_interval=1.0, full_reconcile_interval=30)
            self.daemons.append(process.start())
        wait_streaming(store, TASK, timeout=60.0)
        self.writers = [DisjointWriter('src-writer', self.source, BASE + '/src', 200, self.rate, self.seed + 1, self.ledger),
                        DisjointWriter('dst-writer', self.destination, BASE + '/dst', 200, self.rate, self.seed + 2, self.ledger)]
        if self.shared:
            self.writers += [SharedWriter('shared-src', self.source, BASE + '/shared', 20, 10, self.seed + 3, self.ledger),
                             SharedWriter('shared-dst', self.destination, BASE + '/shared', 20, 10, self.seed + 4, self.ledger)]

    def leader(self):
        status = task_status(self.store, TASK)
        if status.get('leader') and time.time() - status.get('heartbeat', 0) < 3.0:
            return status['leader']
        return None

    def _daemon(self, daemon_id):
        return [daemon for daemon in self.daemons if daemon.daemon_id == daemon_id][0]

    # -- faults -------------------------------------------------------------------
    def inject(self, fault):
        started = time.time()
        detail = None
        if fault.startswith(('restart_source', 'restart_destination')):
            cluster = self.source if fault.startswith('restart_source') else self.destination
            index = cluster.leader_index() if fault.endswith('_leader') else self.rng.randrange(len(cluster.nodes))
            index = 0 if index is None else index
            detail = '%s node %d (%s)' % (cluster.name, index + 1, cluster.nodes[index].mode())
            cluster.stop_node(index)
            time.sleep(self.rng.uniform(1.0, 3.0))
            cluster.start_node(index)
        else:
            leader = self.leader()
            if leader is None:
                self.fault_log.append({'t': round(started, 3), 'fault': fault, 'detail': 'no leader to hit: skipped'})
                return
            daemon = self._daemon(leader)
            detail = leader
            if fault == 'kill_leader':
                daemon.kill()
                time.sleep(self.rng.uniform(1.0, 4.0))
                daemon.start()
            elif fault == 'freeze_leader':
                daemon.freeze()
                time.sleep(SESSION_TIMEOUT * 2)       # past the session timeout: its sessions expire, another daemon leads
                daemon.thaw()
            elif fault == 'restart_leader':
                daemon.stop()
                daemon.start()
        self.fault_log.append({'t': round(started, 3), 'fault': fault, 'detail': detail, 'seconds': round(time.time() - started, 2)})
        self.log('  %5.0fs fault %s: %s' % (started - self.started, fault, detail))

    def _watch_leaders(self, stop):
        while not stop.wait(0.5):
            leader = self.leader()
            if leader and (not self.leaders or self.leaders[-1][1] != leader):
                self.leaders.append((round(time.time(), 3), leader))

    # -- the run ------------------------------------------------------------------
    def run(self):
        stop_watch = threading.Event()
        figures = {'seed': self.seed, 'duration_s': self.duration, 'daemons': self.daemon_count, 'policy': self.policy}
        try:
            self.start()
            self.log('chaos run: seed %d, %.0fs, %d daemons, output %s' % (self.seed, self.duration, self.daemon_count, self.output))
            watcher = threading.Thread(target=self._watch_leaders, args=(stop_watch,), daemon=True)
            watcher.start()
            self.started = time.time()
            for writer in self.writers:
                writer.start()
            order = list(self.faults)
            scheduled = list(self.schedule)
            next_fault = self.started + self.fault_every
            while time.time() < self.started + self.duration:
                if time.time() >= next_fault:
                    if self.schedule:
                        fault = scheduled.pop(0)
                        scheduled.append(fault)
                    else:
                        if not order:
                            order = list(self.faults)
                        fault = order.pop(self.rng.randrange(len(order)))
                    self.inject(fault)
                    if self.schedule:
                        next_fault = max(next_fault + self.fault_every, time.time() + 2.0)
                    else:
                        next_fault = time.time() + self.fault_every * self.rng.uniform(0.7, 1.3)
                time.sleep(0.2)
            for writer in self.writers:
                writer.stop_event.set()
            for writer in self.writers:
                writer.join(30)
            for daemon in self.daemons:
                daemon.thaw()
                if not daemon.alive():
                    daemon.start()
            figures.update(self.converge())
            stop_watch.set()
            figures.update(self.check())
        finally:
            stop_watch.set()
            self.save(figures)
            self.cleanup()
        return figures

    def converge(self, timeout=120.0):
        src, dst = self.clients
        started = time.monotonic()
        diff = None
        while time.monotonic() - started < timeout:
            try:
                diff = tree_diff(persistent_tree(src, BASE), persistent_tree(dst, BASE))
            except Exception as exc:  # pylint: disable=broad-except
                diff = 'read failed: %r' % (exc,)
            if not diff:
                return {'trees_equal': True, 'converge_s': round(time.monotonic() - started, 2)}
            time.sleep(0.5)
        return {'trees_equal': False, 'converge_s': None, 'tree_diff': str(diff)[:2000]}

    def check(self):
        src, dst = self.clients
        trees = {'source': persistent_tree(src, BASE), 'destination': persistent_tree(dst, BASE)}
        wrong = []
        for writer in self.writers:
            if not isinstance(writer, DisjointWriter):
                continue
            for path in writer.paths:
                allowed = writer.expected_final(path)
                for side, tree in trees.items():
                    state = ('value', tree[path]) if path in tree else DisjointWriter.ABSENT
                    if state not in allowed:
                        wrong.append({'path': path, 'side': side, 'held': _show(state), 'expected': sorted(_show(s) for s in allowed)})
        # shared space: both sides write it, the policy settles conflicts; whatever the sides end with must be a value
        # some writer wrote (nothing invented), and a key any write was acknowledged for must exist (shared writers never delete)
        written = {}
        with self.ledger.lock:
            for entry in self.ledger.entries:
                if entry['writer'].startswith('shared') and entry['outcome'] in ('ok', 'unknown'):
                    written.setdefault(entry['path'], set()).add(entry['value'].encode())
        for path, values in sorted(written.items()):
            for side, tree in trees.items():
                if tree.get(path) not in values:
                    wrong.append({'path': path, 'side': side, 'held': _show(('value', tree[path]) if path in tree else DisjointWriter.ABSENT),
                                  'expected': 'one of the %d values written' % len(values)})
        conflicts = []
        for daemon in self.daemons:
            conflicts.extend(record for record in daemon.log_records() if record.get('event') == 'conflict')
        disjoint = [c for c in conflicts if (c.get('path') or '').startswith((BASE + '/src', BASE + '/dst'))]
        undone = [u for w in self.writers if isinstance(w, DisjointWriter) for u in w.undone]
        interference = [i for w in self.writers if isinstance(w, DisjointWriter) for i in w.interference]
        figures = {
            'operations': dict((w.writer, {'ok': self.ledger.count(writer=w.writer, outcome='ok'),
                                           'failed': self.ledger.count(writer=w.writer, outcome='failed'),
                                           'unknown': self.ledger.count(writer=w.writer, outcome='unknown')}) for w in self.writers),
            'faults': len([f for f in self.fault_log if 'skipped' not in (f.get('detail') or '')]),
            'leader_changes': max(0, len(self.leaders) - 1),
            'conflicts_total': len(conflicts),
            'conflicts_disjoint': len(disjoint),
            'undone_writes': len(undone),
            'interference': len(interference),
            'final_state_wrong': len(wrong),
            'examples': {'undone': undone[:10], 'interference': interference[:10], 'wrong': wrong[:10],
                         'disjoint_conflicts': [c.get('msg') for c in disjoint[:10]]},
        }
        figures['passed'] = bool(not undone and not interference and not wrong and not disjoint)
        return figures

    def save(self, figures):
        figures['passed'] = bool(figures.get('passed') and figures.get('trees_equal'))
        figures['fault_log'] = self.fault_log
        figures['leaders'] = self.leaders
        os.makedirs(self.output, exist_ok=True)
        with open(os.path.join(self.output, 'figures.json'), 'w') as handle:
            json.dump(figures, handle, indent=2, sort_keys=True)
        with open(os.path.join(self.output, 'ledger.json'), 'w') as handle:
            json.dump(self.ledger.entries, handle)

    def cleanup(self):
        for daemon in self.daemons:
            try:
                daemon.kill()
            except Exception:  # pylint: disable=broad-except
                pass
        for client in self.clients:
            try:
                client.stop()
                client.close()
            except Exception:  # pylint: disable=broad-except
                pass
        for cluster in (self.source, self.destination):
            if cluster is not None:
                cluster.destroy(keep_logs_in=os.path.join(self.output, 'zk-logs'))


def summary(figures):
    """The figures as a few lines of text."""
    operations = ', '.join('%s %d ok/%d failed/%d unknown' % (name, row['ok'], row['failed'], row['unknown'])
                           for name, row in sorted(figures.get('operations', {}).items()))
    return '\n'.join([
        'chaos run (seed %s, %ss, %s daemons, policy %s): %s' % (figures.get('seed'), figures.get('duration_s'),
                                                                  figures.get('daemons'), figures.get('policy'),
                                                                  'PASS' if figures.get('passed') else 'FAIL'),
        '  operations: %s' % operations,
        '  faults %s, leader changes %s' % (figures.get('faults'), figures.get('leader_changes')),
        '  conflicts: %s in all, %s in the disjoint key spaces' % (figures.get('conflicts_total'), figures.get('conflicts_disjoint')),
        '  undone writes %s, interference %s, keys in a wrong final state %s' % (
            figures.get('undone_writes'), figures.get('interference'), figures.get('final_state_wrong')),
        '  trees equal %s, converged %ss after the writers stopped' % (figures.get('trees_equal'), figures.get('converge_s')),
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(description='Chaos run of a bidirectional sync task (see the module doc)')
    sub = parser.add_subparsers(dest='command', required=True)
    run = sub.add_parser('run')
    run.add_argument('--duration', type=float, default=300.0, help='seconds of writes and faults (default 300)')
    run.add_argument('--daemons', type=int, default=3)
    run.add_argument('--seed', type=int)
    run.add_argument('--rate', type=int, default=150, help='operations per second of each disjoint-space writer')
    run.add_argument('--fault-every', type=float, default=15.0)
    run.add_argument('--policy', default='source_wins', choices=('source_wins', 'destination_wins', 'newest'))
    run.add_argument('--no-shared', action='store_true', help='no shared key space')
    run.add_argument('--out', help='also write the figures (JSON) here')
    run.add_argument('--output-dir', help='where the logs, ledger and figures go (default tests/output/chaos/<time>)')
    args = parser.parse_args(argv)
    chaos = ChaosRun(duration=args.duration, daemons=args.daemons, seed=args.seed, rate=args.rate, fault_every=args.fault_every,
                     shared=not args.no_shared, policy=args.policy, output=args.output_dir)
    figures = chaos.run()
    print(summary(figures))
    print('  details: %s' % os.path.join(chaos.output, 'figures.json'))
    if args.out:
        shutil.copy(os.path.join(chaos.output, 'figures.json'), args.out)
    return 0 if figures.get('passed') else 1


if __name__ == '__main__':
    sys.exit(main())
