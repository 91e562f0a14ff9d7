# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The chaos run: a bidirectional task under faults, every acknowledged operation checked against a ledger.

Two 3-node ensembles, a bidirectional task led by one of two or three real
daemon processes, and writers on both clusters, each with a ledger of every
operation and its outcome (ok, failed with its error, or unknown after a
lost connection):

* a **source writer** owns ``<base>/src/kNNN`` and a **destination writer**
  ``<base>/dst/kNNN`` (disjoint key spaces: no key is ever written on both
  sides). Each keeps a model of its keys (the value it last wrote, absent,
  or uncertain after an operation whose outcome it never learnt) and reads
  the key on its own cluster before every operation: a value or absence
  that differs from its model is an **undone write** (lost, resurrected,
  reverted). A conditional write of its own that fails although it just
  read the key (bad version, exists, no node) means someone else wrote its
  key, which in a disjoint space can only be the sync: an undone write too.
* **shared writers** on both sides create, set and delete (conditionally)
  ``<base>/shared/kNN``: conflicts are expected there; after the run both
  sides must hold the same thing, and each key a value some writer wrote
  (or be absent where a delete was sent or nothing was ever written).

Faults, one every ``--fault-every`` seconds (+-30 %) in a seeded order:
kill -9 of the leading daemon (restarted a few seconds later), SIGSTOP of
the leader past the session timeout (its sessions expire; SIGCONT after),
SIGSTOP of a ZooKeeper server the leader is connected to past the session
timeout (the running daemon loses that connection, maybe its session), a
clean stop and start of the leader, and a restart of a member of either
ensemble, its leader included.

At the end the faults and writers stop, every process is thawed and
running, and the run waits for both trees to be equal. Pass: no undone
write, no conflict logged in the disjoint spaces, every key in a final
state its ledger allows on both clusters, trees equal, every writer got
operations through.

Run:  .venv/bin/python tests/harness/chaos.py run --duration 300 [--seed N] [--out FILE.json]
"""

import argparse
import calendar
import json
import logging
import os
import random
import shutil
import signal
import sys
import threading
import time
import traceback

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
DISJOINT_SPACES = (BASE + '/src', BASE + '/dst')
ROOT = '/zkm-chaos'
TASK = 'chaos'
FAULTS = ('kill_leader', 'freeze_leader', 'freeze_leader_server', 'restart_leader', 'restart_source_member',
          'restart_destination_member', 'restart_source_leader', 'restart_destination_leader')
ABSENT = ('absent',)
# The daemon tags no event on taking the lead: its log message is the only record of each leadership term.
LEADER_MESSAGE = 'this daemon is the leader now'


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


def _show(state):
    return 'absent' if state == ABSENT else state[1].decode('utf-8', 'replace')


class Writer(threading.Thread):
    """A thread with its own kazoo client sending ``step(path)`` for random keys at a steady rate, every operation in the ledger."""

    def __init__(self, name, cluster, base, keys, rate, seed, ledger):
        super(Writer, self).__init__(name='writer-%s' % name)
        self.daemon = True
        self.writer = name
        self.cluster = cluster
        self.base = base
        self.paths = ['%s/k%03d' % (base, index) for index in range(keys)]
        self.rate = rate
        self.rng = random.Random(seed)
        self.ledger = ledger
        self.stop_event = threading.Event()
        self.sequence = 0
        self.client = None
        self.crashed = None

    def run(self):
        from kazoo.exceptions import KazooException
        try:
            self.client = self.cluster.client(timeout=10.0)
            self.connected()
            interval = 1.0 / self.rate
            next_at = time.monotonic()
            while not self.stop_event.is_set():
                path = self.rng.choice(self.paths)
                try:
                    self.step(path)
                except KazooException as exc:    # the read before the operation failed: nothing was sent
                    self.ledger.add(writer=self.writer, op='read', path=path, outcome='error', error=type(exc).__name__)
                    self.stop_event.wait(0.2)
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self.stop_event.wait(delay)
                else:
                    next_at = time.monotonic()
        except Exception:  # pylint: disable=broad-except
            self.crashed = traceback.format_exc()    # a dead writer must fail the run, not thin it out unnoticed
        finally:
            if self.client is not None:
                self.client.stop()
                self.client.close()

    def connected(self):
        """Called once the client is up."""

    def next_value(self):
        self.sequence += 1
        return b'%s-%d' % (self.writer.encode(), self.sequence)

    def read(self, path):
        from kazoo.exceptions import NoNodeError
        try:
            data, stat = self.client.get(path)
            return ('value', data), stat
        except NoNodeError:
            return ABSENT, None

    def send(self, op, path, value, stat):
        """One conditional operation; returns ('ok' | 'failed' | 'unknown', error name)."""
        from kazoo.exceptions import BadVersionError, KazooException, NodeExistsError, NoNodeError
        try:
            if op == 'create':
                self.client.create(path, value, makepath=True)
            elif op == 'delete':
                self.client.delete(path, version=stat.version)
            else:
                self.client.set(path, value, version=stat.version)
        except (BadVersionError, NodeExistsError, NoNodeError) as exc:
            outcome = ('failed', type(exc).__name__)
        except KazooException as exc:
            outcome = ('unknown', type(exc).__name__)    # connection loss, expiry, timeout: sent, perhaps applied
        else:
            outcome = ('ok', None)
        entry = {'writer': self.writer, 'op': op, 'path': path, 'value': value.decode(), 'outcome': outcome[0]}
        if outcome[1]:
            entry['error'] = outcome[1]
        self.ledger.add(**entry)
        return outcome


class DisjointWriter(Writer):
    """Writes only its own key space on its own cluster and checks, before every operation, that nothing undid its writes."""

    def __init__(self, name, cluster, base, keys, rate, seed, ledger):
        super(DisjointWriter, self).__init__(name, cluster, base, keys, rate, seed, ledger)
        self.model = dict((path, ABSENT) for path in self.paths)   # path -> ABSENT | ('value', data) | ('uncertain', {states})
        self.undone = []
        # Set when a read might miss something already applied: see step().
        self.resync = threading.Event()

    def connected(self):
        from kazoo.protocol.states import KazooState
        # A new session carries no last-seen zxid: it may land on a member that has not applied this writer's last writes yet.
        self.client.add_listener(lambda state: self.resync.set() if state == KazooState.LOST else None)

    def step(self, path):
        if self.resync.is_set():
            # sync() makes the member this client reads from catch up with the ensemble's leader, so the read below sees
            # every write already applied, including one whose reply was lost (it may commit after the reconnection).
            self.resync.clear()
            try:
                self.client.sync(self.base)
            except Exception:
                self.resync.set()
                raise
        seen, stat = self.read(path)
        current = self.check(path, seen)
        value = self.next_value()
        if current == ABSENT:
            op, after = 'create', ('value', value)
        elif self.rng.random() < 0.25:
            op, after = 'delete', ABSENT
        else:
            op, after = 'set', ('value', value)
        outcome, error = self.send(op, path, value, stat)
        if outcome == 'ok':
            self.model[path] = after
        elif outcome == 'unknown':
            self.model[path] = ('uncertain', frozenset([current, after]))
            self.resync.set()
        else:
            # It read the key an instant ago and no one else writes this key space on this cluster: the sync wrote it.
            now = self.read(path)[0]
            self.undone.append({'t': round(time.time(), 3), 'writer': self.writer, 'path': path, 'kind': 'conditional_failed',
                                'op': op, 'error': error, 'expected': _show(current), 'seen': _show(now)})
            self.model[path] = now

    def check(self, path, seen):
        """Compare what the cluster holds with the model (an undone write when they differ); returns the state to go on from."""
        expected = self.model[path]
        candidates = expected[1] if expected[0] == 'uncertain' else frozenset([expected])
        if seen not in candidates:
            if seen == ABSENT:
                kind = 'lost'                   # a key it created or wrote is gone
            elif candidates == frozenset([ABSENT]):
                kind = 'resurrected'            # a key it deleted is back
            elif seen[1].startswith(self.writer.encode() + b'-'):
                kind = 'reverted'               # one of its own older values replaced its last one
            else:
                kind = 'foreign'                # a value it never wrote
            self.undone.append({'t': round(time.time(), 3), 'writer': self.writer, 'path': path, 'kind': kind,
                                'expected': sorted(_show(state) for state in candidates), 'seen': _show(seen)})
        self.model[path] = seen
        return seen

    def expected_final(self, path):
        """The states the key may end in: its acknowledged state, or either side of an unknown outcome."""
        state = self.model[path]
        return set(state[1]) if state[0] == 'uncertain' else {state}


class SharedWriter(Writer):
    """Writes a key space the other side's shared writer writes too (conflicts are expected there); ledger only."""

    def step(self, path):
        seen, stat = self.read(path)
        if seen == ABSENT:
            op = 'create'
        else:
            op = 'delete' if self.rng.random() < 0.2 else 'set'
        self.send(op, path, self.next_value(), stat)


def connected_ports(pid):
    """Remote ports of the established IPv4 TCP connections of process ``pid`` (read from /proc)."""
    inodes = set()
    fd_dir = '/proc/%d/fd' % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[len('socket:['):-1])
    ports = set()
    with open('/proc/%d/net/tcp' % pid) as handle:
        next(handle)                                    # the header line
        for line in handle:
            fields = line.split()                       # sl local rem state ... uid timeout inode
            if fields[3] == '01' and fields[9] in inodes:
                ports.add(int(fields[2].split(':')[1], 16))
    return ports


def _epoch(timestamp):
    """The daemon log's ``2026-12-05T10:07:16.705Z`` as seconds since the epoch."""
    whole, _dot, fraction = timestamp.rstrip('Z').partition('.')
    return calendar.timegm(time.strptime(whole, '%Y-%m-%dT%H:%M:%S')) + float('0.' + (fraction or '0'))


class ChaosRun(object):
    """One run: set-up, writers, faults, convergence, checks. ``run()`` returns the figures."""

    def __init__(self, duration=300.0, daemons=3, seed=None, rate=150, shared_rate=10, fault_every=15.0, shared=True,
                 policy='source_wins', output=None, faults=FAULTS, schedule=None, daemon_settings=None, log=print):
        self.duration = duration
        self.daemon_count = daemons
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.rate = rate
        self.shared_rate = shared_rate
        self.fault_every = fault_every
        self.shared = shared
        self.policy = policy
        self.faults = list(faults)
        self.schedule = list(schedule or ())     # faults in this order (cycling) instead of a seeded draw
        self.daemon_settings = dict(daemon_settings or {})
        self.output = output or os.path.join(REPO_ROOT, 'tests', 'output', 'chaos', time.strftime('%Y%m%dT%H%M%S'))
        self.log = log
        self.ledger = Ledger()
        self.fault_log = []
        self.leaders = []
        self.source = self.destination = None
        self.daemons = []
        self.writers = []
        self.clients = []
        self.started = None

    # -- set-up -----------------------------------------------------------------
    def start(self):
        os.makedirs(self.output, exist_ok=True)
        # Kept before starting, so that cleanup() destroys a cluster whose start failed half-way.
        self.source = ZkCluster('chaos-src', size=3)
        self.source.start()
        self.destination = ZkCluster('chaos-dst', size=3)
        self.destination.start()
        src, dst = self.source.client(), self.destination.client()
        self.clients = [src, dst]
        store = self.store = make_store(dst, ROOT)
        register_clusters(store, self.source, self.destination)
        for client in (src, dst):
            for space in ('src', 'dst', 'shared'):
                client.ensure_path('%s/%s' % (BASE, space))
        put_task(store, TASK, [BASE], mode='bidirectional', conflict=self.policy)
        settings = {'checkpoint_interval': 1.0, 'full_reconcile_interval': 30}
        settings.update(self.daemon_settings)
        for index in range(self.daemon_count):
            process = DaemonProcess(self.output, 'd%d' % (index + 1), {'hosts': self.destination.host_list}, ROOT, **settings)
            self.daemons.append(process.start())
        # The initial sync is source-authoritative by contract: writes start once the task streams.
        wait_streaming(store, TASK, timeout=60.0)
        self.writers = [DisjointWriter('src-writer', self.source, DISJOINT_SPACES[0], 200, self.rate, self.seed + 1, self.ledger),
                        DisjointWriter('dst-writer', self.destination, DISJOINT_SPACES[1], 200, self.rate, self.seed + 2, self.ledger)]
        if self.shared:
            self.writers += [SharedWriter('shared-src', self.source, BASE + '/shared', 20, self.shared_rate, self.seed + 3, self.ledger),
                             SharedWriter('shared-dst', self.destination, BASE + '/shared', 20, self.shared_rate, self.seed + 4,
                                          self.ledger)]

    def leader(self):
        status = task_status(self.store, TASK)
        if status.get('leader') and time.time() - status.get('heartbeat', 0) < 3.0:
            return status['leader']
        return None

    def wait_leader(self, timeout=20.0):
        """The leading daemon once one heartbeats (after an earlier fault the task may be between leaders); None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader:
                return leader
            time.sleep(0.2)
        return None

    def _daemon(self, daemon_id):
        return [daemon for daemon in self.daemons if daemon.daemon_id == daemon_id][0]

    # -- faults -------------------------------------------------------------------
    def inject(self, fault):
        started = time.time()
        if fault.startswith(('restart_source', 'restart_destination')):
            cluster = self.source if fault.startswith('restart_source') else self.destination
            index = cluster.leader_index() if fault.endswith('_leader') else self.rng.randrange(len(cluster.nodes))
            index = 0 if index is None else index
            detail = '%s node %d (%s)' % (cluster.name, index + 1, cluster.nodes[index].mode())
            cluster.stop_node(index)
            time.sleep(self.rng.uniform(1.0, 3.0))
            cluster.start_node(index)
        else:
            leader = self.wait_leader()
            if leader is None:
                self.fault_log.append({'t': round(started, 3), 'fault': fault, 'detail': 'no leader to hit', 'skipped': True})
                self.log('  %5.0fs fault %s skipped: no leader' % (started - self.started, fault))
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
            elif fault == 'freeze_leader_server':
                # The daemon keeps running but one of its servers answers nothing: its client must give up on it and
                # reconnect elsewhere, in time to keep the session or not; a frozen ensemble leader also costs an election.
                try:
                    ports = connected_ports(daemon.pid)
                except OSError:         # the daemon exited since it last heartbeat
                    ports = set()
                servers = [(cluster, index) for cluster in (self.source, self.destination)
                           for index, node in enumerate(cluster.nodes) if node.client_port in ports]
                if not servers:
                    self.fault_log.append({'t': round(started, 3), 'fault': fault, 'detail': '%s has no connection' % leader,
                                           'skipped': True})
                    return
                cluster, index = self.rng.choice(servers)
                detail = '%s -> %s node %d (%s)' % (leader, cluster.name, index + 1, cluster.nodes[index].mode())
                cluster.freeze_node(index)
                time.sleep(SESSION_TIMEOUT * 2)
                cluster.thaw_node(index)
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

    def leadership_terms(self):
        """(time, daemon) of every leadership term, from the daemons' logs (the status poll can miss a short one)."""
        terms = []
        for daemon in self.daemons:
            for record in daemon.log_records():
                if record.get('task') == TASK and LEADER_MESSAGE in record.get('msg', ''):
                    terms.append((round(_epoch(record['ts']), 3), daemon.daemon_id))
        return sorted(terms)

    # -- the run ------------------------------------------------------------------
    def run(self):
        stop_watch = threading.Event()
        figures = {'seed': self.seed, 'duration_s': self.duration, 'daemons': self.daemon_count, 'policy': self.policy,
                   'daemon_settings': self.daemon_settings}
        try:
            self.start()
            self.log('chaos run: seed %d, %.0fs, %d daemons, output %s' % (self.seed, self.duration, self.daemon_count, self.output))
            threading.Thread(target=self._watch_leaders, args=(stop_watch,), daemon=True).start()
            self.started = time.time()
            for writer in self.writers:
                writer.start()
            self.chaos()
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
        except BaseException:
            figures['error'] = traceback.format_exc()
            raise
        finally:
            stop_watch.set()
            self.save(figures)
            self.cleanup()
        return figures

    def chaos(self):
        """Faults until the duration is over; every fault heals before the next (and before this returns)."""
        order = []
        scheduled = list(self.schedule)
        next_fault = self.started + self.fault_every
        while time.time() < self.started + self.duration:
            if time.time() >= next_fault:
                if scheduled:
                    fault = scheduled.pop(0)
                    scheduled.append(fault)
                else:
                    if not order:
                        order = list(self.faults)     # each kind once per round, in a seeded order
                    fault = order.pop(self.rng.randrange(len(order)))
                self.inject(fault)
                if self.schedule:
                    next_fault = max(next_fault + self.fault_every, time.time() + 2.0)
                else:
                    next_fault = time.time() + self.fault_every * self.rng.uniform(0.7, 1.3)
            time.sleep(0.2)

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
        disjoint_writers = [w for w in self.writers if isinstance(w, DisjointWriter)]
        wrong = []
        for writer in disjoint_writers:
            for path in writer.paths:
                allowed = writer.expected_final(path)
                for side, tree in trees.items():
                    state = ('value', tree[path]) if path in tree else ABSENT
                    if state not in allowed:
                        wrong.append({'path': path, 'side': side, 'held': _show(state), 'expected': sorted(_show(s) for s in allowed)})
        wrong += self.check_shared(trees)
        conflicts = []
        for daemon in self.daemons:
            conflicts.extend(record for record in daemon.log_records() if record.get('event') == 'conflict')
        disjoint = [c for c in conflicts if any((c.get('path') or '') == space or (c.get('path') or '').startswith(space + '/')
                                                for space in DISJOINT_SPACES)]
        undone = sorted((u for w in disjoint_writers for u in w.undone), key=lambda u: u['t'])
        undone_by_kind = {}
        for entry in undone:
            undone_by_kind[entry['kind']] = undone_by_kind.get(entry['kind'], 0) + 1
        crashed = dict((w.writer, w.crashed) for w in self.writers if w.crashed)
        terms = self.leadership_terms()
        figures = {
            'operations': dict((w.writer, {'ok': self.ledger.count(writer=w.writer, outcome='ok'),
                                           'failed': self.ledger.count(writer=w.writer, outcome='failed'),
                                           'unknown': self.ledger.count(writer=w.writer, outcome='unknown'),
                                           'read_errors': self.ledger.count(writer=w.writer, outcome='error')})
                               for w in self.writers),
            'faults': len([f for f in self.fault_log if not f.get('skipped')]),
            'faults_skipped': len([f for f in self.fault_log if f.get('skipped')]),
            'leader_changes': max(0, len(terms) - 1),
            'leadership_terms': terms,
            'conflicts_total': len(conflicts),
            'conflicts_disjoint': len(disjoint),
            'undone_writes': len(undone),
            'undone_by_kind': undone_by_kind,
            'final_state_wrong': len(wrong),
            'writers_crashed': crashed,
            'examples': {'undone': undone[:20], 'wrong': wrong[:20], 'disjoint_conflicts': [c.get('msg') for c in disjoint[:20]]},
        }
        figures['passed'] = bool(not undone and not wrong and not disjoint and not crashed
                                 and all(row['ok'] > 0 for row in figures['operations'].values()))
        return figures

    def check_shared(self, trees):
        """Shared keys: each side holds a value some writer sent (ok or unknown), or nothing where that is possible."""
        values, deletes, acknowledged = {}, set(), set()
        with self.ledger.lock:
            for entry in self.ledger.entries:
                if not entry['writer'].startswith('shared') or entry['outcome'] not in ('ok', 'unknown'):
                    continue
                if entry['op'] == 'delete':
                    deletes.add(entry['path'])
                else:
                    values.setdefault(entry['path'], set()).add(entry['value'].encode())
                    if entry['outcome'] == 'ok':
                        acknowledged.add(entry['path'])
        wrong = []
        for writer in self.writers:
            if writer.writer != 'shared-src':      # both shared writers use the same paths: check them once
                continue
            for path in writer.paths:
                # absent is possible where a delete may have applied, or where no write was ever acknowledged
                absent_ok = path in deletes or path not in acknowledged
                for side, tree in trees.items():
                    if path in tree and tree[path] not in values.get(path, ()):
                        wrong.append({'path': path, 'side': side, 'held': _show(('value', tree[path])),
                                      'expected': 'one of the %d values written' % len(values.get(path, ()))})
                    elif path not in tree and not absent_ok:
                        wrong.append({'path': path, 'side': side, 'held': 'absent', 'expected': 'a value: written, never deleted'})
        return wrong

    def save(self, figures):
        figures['passed'] = bool(figures.get('passed') and figures.get('trees_equal') and 'error' not in figures)
        figures['fault_log'] = self.fault_log
        figures['leaders_seen_in_status'] = self.leaders
        figures['output'] = self.output
        os.makedirs(self.output, exist_ok=True)
        with open(os.path.join(self.output, 'figures.json'), 'w') as handle:
            json.dump(figures, handle, indent=2, sort_keys=True)
        with open(os.path.join(self.output, 'ledger.json'), 'w') as handle:
            json.dump(self.ledger.entries, handle)

    def cleanup(self):
        for writer in self.writers:
            writer.stop_event.set()
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
    lines = [
        'chaos run (seed %s, %ss, %s daemons, policy %s%s): %s' % (
            figures.get('seed'), figures.get('duration_s'), figures.get('daemons'), figures.get('policy'),
            ''.join(', %s=%s' % item for item in sorted(figures.get('daemon_settings', {}).items())),
            'PASS' if figures.get('passed') else 'FAIL'),
        '  operations: %s' % operations,
        '  faults %s (%s skipped), leader changes %s' % (figures.get('faults'), figures.get('faults_skipped'),
                                                         figures.get('leader_changes')),
        '  conflicts: %s in all, %s in the disjoint key spaces' % (figures.get('conflicts_total'), figures.get('conflicts_disjoint')),
        '  undone writes %s %s, keys in a wrong final state %s' % (
            figures.get('undone_writes'), figures.get('undone_by_kind', {}), figures.get('final_state_wrong')),
        '  trees equal %s, converged %ss after the writers stopped' % (figures.get('trees_equal'), figures.get('converge_s')),
    ]
    if figures.get('writers_crashed'):
        lines.append('  writers crashed: %s' % ', '.join(sorted(figures['writers_crashed'])))
    if figures.get('error'):
        lines.append('  run aborted: %s' % figures['error'].strip().splitlines()[-1])
    return '\n'.join(lines)


def _setting(text):
    """``key=value`` with a JSON value (``sync_journal=false``, ``checkpoint_interval=0.2``)."""
    key, sep, value = text.partition('=')
    if not sep:
        raise argparse.ArgumentTypeError('expected key=value, got %r' % text)
    try:
        return key, json.loads(value)
    except ValueError:
        raise argparse.ArgumentTypeError('%s: the value must be JSON (true, 0.5, "text"), got %r' % (key, value))


def main(argv=None):
    parser = argparse.ArgumentParser(description='Chaos run of a bidirectional sync task (see the module doc)')
    sub = parser.add_subparsers(dest='command', required=True)
    run = sub.add_parser('run')
    run.add_argument('--duration', type=float, default=300.0, help='seconds of writes and faults (default 300)')
    run.add_argument('--daemons', type=int, default=3)
    run.add_argument('--seed', type=int)
    run.add_argument('--rate', type=int, default=150, help='operations per second of each disjoint-space writer')
    run.add_argument('--shared-rate', type=int, default=10, help='operations per second of each shared-space writer')
    run.add_argument('--fault-every', type=float, default=15.0)
    run.add_argument('--faults', default=','.join(FAULTS), help='comma-separated kinds to draw from (default: all)')
    run.add_argument('--policy', default='source_wins', choices=('source_wins', 'destination_wins', 'newest'))
    run.add_argument('--no-shared', action='store_true', help='no shared key space')
    run.add_argument('--daemon-setting', type=_setting, action='append', default=[], metavar='KEY=JSON',
                     help='a daemon config setting for every daemon, e.g. sync_journal=false (repeatable)')
    run.add_argument('--out', help='also write the figures (JSON) here')
    run.add_argument('--output-dir', help='where the logs, ledger and figures go (default tests/output/chaos/<time>)')
    args = parser.parse_args(argv)
    faults = [name for name in args.faults.split(',') if name]
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        parser.error('unknown faults %s (known: %s)' % (', '.join(unknown), ', '.join(FAULTS)))
    # make or a supervisor stopping the run sends SIGTERM: unwind through the clean-up like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    chaos = ChaosRun(duration=args.duration, daemons=args.daemons, seed=args.seed, rate=args.rate, shared_rate=args.shared_rate,
                     fault_every=args.fault_every, shared=not args.no_shared, policy=args.policy, output=args.output_dir,
                     faults=faults, daemon_settings=dict(args.daemon_setting))
    # The kazoo clients' reconnection chatter (every fault causes some) goes to a file, not the terminal.
    os.makedirs(chaos.output, exist_ok=True)
    logging.basicConfig(filename=os.path.join(chaos.output, 'harness.log'), level=logging.INFO,
                        format='%(asctime)s %(levelname)s %(name)s %(threadName)s: %(message)s')
    figures = chaos.run()
    print(summary(figures))
    print('  details: %s' % os.path.join(chaos.output, 'figures.json'))
    if args.out:
        shutil.copy(os.path.join(chaos.output, 'figures.json'), args.out)
    return 0 if figures.get('passed') else 1


if __name__ == '__main__':
    sys.exit(main())
