# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the sync daemon (issue 5), every figure against a baseline of the same run.

Starts a 3-node source and a 3-node destination ensemble (ZooKeeper 3.8 on
loopback, the test harness), a real daemon process leading a one-way task
on ``/bench``, then measures and prints:

  (1) latency from a write on the source to its visibility on the
      destination at 1,000 writes/s (creates, then updates), p50/p99, against
      the raw watch-notification latency (a persistent watch on the source
      seeing the same writes) of the same run: target p99 <= 25 ms and
      <= 5 x raw p99;
  (2) sustained change rates (updates in 500-op multis at fixed rates):
      lag over each window and catch-up time once the writer stops, watch
      events the daemon received and paths per batch; the highest rate
      whose lag does not grow, against the raw multi-write ceiling into the
      destination of the same run: target >= 5,000/s;
  (3) memory: the daemon's resident memory with N tracked znodes and after
      each of four bulk loads adding M/4 (the slope is bytes per tracked
      znode; the steps show whether it is linear), its peak, and the
      baseline structure alone for 1M synthetic paths (tracemalloc, and the
      RSS of a fresh process): target <= 300 bytes/znode at 1M
      (``--memory-nodes 980000 --heap 1536m`` measures at 1M);
  (4) failover: a second daemon stands by; kill -9 the leader; time until a
      write on the source shows on the destination: target <= session
      timeout + 5 s.

Visibility on the destination is seen by a persistent recursive watch there
(same client library, same process as the raw watch), so both latencies
include the same client-side delivery cost.

Run:  .venv/bin/python tests/bench/bench_sync.py [--quick]
Nothing is asserted; the exit status is 0 even on a MISS (read the lines).
"""

import argparse
import gc
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc

from bench_common import COLLECTIONS_DIR, bench_cluster  # puts the collection and the repository on sys.path

from kazoo.protocol.serialization import SetData, Transaction  # noqa: E402

from ansible_collections.zookeeper.migration.plugins.module_utils import _control, _protocol
from ansible_collections.zookeeper.migration.plugins.module_utils._sync import Baseline, data_hash64  # noqa: E402

BASE = '/bench'
ROOT = '/zookeeper-migration'
TASK = 'bench'
DAEMON_MODULE = 'ansible_collections.zookeeper.migration.plugins.module_utils._daemon'
PAYLOAD = b'x' * 100


def percentile(values, fraction):
    if not values:
        return float('nan')
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def ms(seconds):
    return seconds * 1000.0


def verdict(ok):
    return 'PASS' if ok else 'MISS'


def rss_kib(pid, field='VmRSS'):
    with open('/proc/%d/status' % pid) as handle:
        for line in handle:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return 0


class Daemon(object):
    def __init__(self, directory, daemon_id, control_hosts, session_timeout, settings=None):
        self.daemon_id = daemon_id
        self.config = os.path.join(directory, daemon_id + '.json')
        self.log = os.path.join(directory, daemon_id + '.log')
        # the bench clusters have no authentication: an open control store, knowingly
        config = {'daemon_id': daemon_id, 'control': {'hosts': control_hosts, 'session_timeout': session_timeout, 'allow_open_acl': True},
                  'root': ROOT, 'metrics_address': None, 'status_interval': 0.5, 'checkpoint_interval': 1.0,
                  'full_reconcile_interval': 0, 'log_level': 'WARNING'}
        config.update(settings or {})
        with open(self.config, 'w') as handle:
            json.dump(config, handle)
        env = dict(os.environ, PYTHONPATH=COLLECTIONS_DIR)
        with open(self.log, 'ab') as log:
            self.process = subprocess.Popen([sys.executable, '-m', DAEMON_MODULE, 'run', '--config', self.config], env=env,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


class Recorder(object):
    """Arrival times of watch events by path, from a persistent recursive watch.

    The arrival is stamped on kazoo's connection thread, as the event is
    read off the socket (the daemon takes its events there too,
    ``_protocol.InlineWatchEvents``), not after kazoo's hand-off to its callback
    thread, which under load adds milliseconds of queueing to the figure.
    """

    def __init__(self, client, path):
        self.times = {}
        self.lock = threading.Lock()
        self.handle = _protocol.add_watch(client, path, self.on_event, recursive=True)
        self.inline = _protocol.InlineWatchEvents(client, [path], lambda _path: True, self.on_path, {'watch_events': 0})

    def on_path(self, path):
        now = time.monotonic()
        with self.lock:
            self.times.setdefault(path, now)

    def on_event(self, event):
        if event.path is not None:
            self.on_path(event.path)

    def reset(self):
        with self.lock:
            self.times = {}

    def get(self, path):
        with self.lock:
            return self.times.get(path)


def wait_until(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def status(store):
    try:
        return store.get_status(TASK) or {}
    except Exception:  # pylint: disable=broad-except
        return {}


def wait_streaming(store, timeout=120, leader=None):
    def ready():
        found = status(store)
        return found if found.get('phase') == 'streaming' and found.get('lag_ms', 1) == 0 and (
            leader is None or found.get('leader') == leader) and time.time() - found.get('heartbeat', 0) < 3 else None
    return wait_until(ready, timeout, 0.1)


def paced(count, rate, action):
    """Call ``action(i)`` ``count`` times at ``rate`` per second (absolute schedule, no drift)."""
    start = time.monotonic()
    for index in range(count):
        due = start + index / float(rate)
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        action(index)
    return time.monotonic() - start


# --------------------------------------------------------------------------
# (1) latency at 1,000 writes/s
# --------------------------------------------------------------------------

def writer_process(hosts, kind, count, rate, directory='lat'):
    """The 1,000 writes/s writer, run in a process of its own (``--writer``): prints {path: send time} as JSON.

    It writes ``count`` znodes ``BASE/<directory>/nNNNNNN`` (creates, or updates of them).

    CLOCK_MONOTONIC is system-wide on Linux, so its times compare with the
    watch arrival times the benchmark process records.
    """
    from kazoo.client import KazooClient
    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(10)
    _protocol.tune_client(client)
    sent = {}
    results = []

    def write(index):
        path = '%s/%s/n%06d' % (BASE, directory, index)
        sent[path] = time.monotonic()
        if kind == 'create':
            results.append(client.create_async(path, PAYLOAD))
        else:
            results.append(client.set_async(path, PAYLOAD + b'%d' % index))
    elapsed = paced(count, rate, write)
    for result in results:
        result.get()
    client.stop()
    client.close()
    sys.stdout.write(json.dumps({'elapsed': elapsed, 'sent': sent}))
    return 0


def run_writer(source, kind, writes, rate, directory='lat'):
    """``writer_process`` in a process of its own; its report ({'elapsed': s, 'sent': {path: time}})."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), '--writer', kind, '--writer-hosts', source.hosts,
                          '--writer-count', str(writes), '--writer-rate', str(rate), '--writer-dir', directory],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True, env=dict(os.environ, PYTHONPATH=COLLECTIONS_DIR))
    return json.loads(out.stdout)


def measure_latency(source, src_watch, dst_watch, writes, rate, warmup=10000, tag='p1'):
    """Creates, then updates, at ``rate``: arrival times of both watches against the send times.

    A warm-up round first (``warmup`` creates and updates of other znodes at
    the same rate, not measured): freshly started servers and daemon run
    their first thousands of such requests through the JVM's interpreter and
    compiler queue, which is not the steady state a long-running ensemble
    and daemon are in.
    """
    if warmup:
        for kind in ('create', 'update'):
            run_writer(source, kind, warmup, rate, directory='lat/warm-' + tag)
        wait_until(lambda: dst_watch.get('%s/lat/warm-%s/n%06d' % (BASE, tag, warmup - 1)) is not None, 30)
    results = {}
    for kind in ('create', 'update'):
        src_watch.reset()
        dst_watch.reset()
        report = run_writer(source, kind, writes, rate, directory='lat/' + tag)
        sent = report['sent']
        wait_until(lambda: all(dst_watch.get(p) is not None for p in list(sent)[-50:]), 30)
        time.sleep(0.5)
        raw = [src_watch.get(p) - t for p, t in sent.items() if src_watch.get(p) is not None]
        synced = [dst_watch.get(p) - t for p, t in sent.items() if dst_watch.get(p) is not None]
        results[kind] = {'rate': writes / report['elapsed'], 'raw': raw, 'sync': synced, 'missing': writes - len(synced)}
    return results


# --------------------------------------------------------------------------
# (2) sustained change rates
# --------------------------------------------------------------------------

def multi_updates(client, paths, rate, duration, ops_per_multi=500, window=4):
    """Update ``paths`` round-robin at ``rate`` changes/s in multis; returns (changes, elapsed, last value per path)."""
    chroot = client.chroot or ''
    start = time.monotonic()
    sent = 0
    pending = []
    cursor = 0
    last = {}
    while True:
        now = time.monotonic()
        if now - start >= duration:
            break
        due = int((now - start) * rate)
        if sent >= due:
            time.sleep(0.002)
            continue
        count = min(ops_per_multi, due - sent)
        requests = []
        for _index in range(count):
            path = paths[cursor % len(paths)]
            value = b'%s-%d' % (PAYLOAD[:60], sent)
            requests.append(SetData(chroot + path, value, -1))
            last[path] = value
            cursor += 1
            sent += 1
        result = client.handler.async_result()
        client._call(Transaction(requests), result)  # pylint: disable=protected-access
        pending.append(result)
        while len(pending) >= window:
            pending.pop(0).get()
    for result in pending:
        result.get()
    return sent, time.monotonic() - start, last


def measure_ceiling(client, paths, duration=4.0):
    """Raw multi-write ceiling into a cluster: set_data multis of 500 ops, 8 in flight, no pacing."""
    changes, elapsed, _last = multi_updates(client, paths, rate=10 ** 9, duration=duration, window=8)
    return changes / elapsed


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as handle:
        fields = handle.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf('SC_CLK_TCK'))


def measure_rates(store, writer, dst, keys, rates, window_seconds, daemon_pid):
    rows = []
    for rate in rates:
        found = status(store)
        before = found.get('events_source_to_destination', 0)
        details_before = found.get('details', {})
        lags = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                found = status(store)
                if found and time.time() - found.get('heartbeat', 0) < 2:
                    lags.append((time.monotonic(), found.get('lag_ms') or 0.0))
                stop.wait(0.25)
        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        cpu_before = cpu_seconds(daemon_pid)
        changes, elapsed, last = multi_updates(writer, keys, rate, window_seconds)
        ended = time.monotonic()
        cpu = cpu_seconds(daemon_pid) - cpu_before
        probe = random.sample(sorted(last), min(200, len(last)))

        def caught_up():
            values = [dst.get_async(path) for path in probe]
            return all(result.get()[0] == last[path] for path, result in zip(probe, values))
        caught = wait_until(caught_up, 120, 0.05)
        catch_up = time.monotonic() - ended if caught else float('inf')
        time.sleep(0.6)
        stop.set()
        sampler.join()
        found = status(store)
        after = found.get('events_source_to_destination', 0)
        details = found.get('details', {})
        batches = details.get('batches', 0) - details_before.get('batches', 0)
        window_lags = [lag for when, lag in lags if started <= when <= ended]
        half = len(window_lags) // 2
        first_half = max(window_lags[:half] or [0.0])
        second_half = max(window_lags[half:] or [0.0])
        grows = second_half > max(1000.0, 2 * first_half) or catch_up > 2.0
        rows.append({'target': rate, 'achieved': changes / elapsed, 'applied_writes': after - before,
                     'lag_max_ms': max(window_lags or [0.0]), 'lag_first_half_ms': first_half, 'lag_second_half_ms': second_half,
                     'catch_up_s': catch_up, 'keeps_up': not grows, 'cpu_us_per_change': cpu / max(1, changes) * 1e6,
                     'events_received': details.get('watch_events', 0) - details_before.get('watch_events', 0),
                     'batch_paths': (details.get('batch_paths', 0) - details_before.get('batch_paths', 0)) / float(max(1, batches)),
                     'read_sessions': details.get('read_sessions')})
    return rows


# --------------------------------------------------------------------------
# (3) memory
# --------------------------------------------------------------------------

def load_nodes(client, parent, count, batch=500, first=0):
    client.ensure_path(parent)
    chroot = client.chroot or ''
    from kazoo.protocol.serialization import Create
    from kazoo.security import OPEN_ACL_UNSAFE
    pending = []
    end = first + count
    for start in range(first, end, batch):
        requests = [Create(chroot + '%s/m%07d' % (parent, index), PAYLOAD, OPEN_ACL_UNSAFE, 0) for index in range(start, min(end, start + batch))]
        result = client.handler.async_result()
        client._call(Transaction(requests), result)  # pylint: disable=protected-access
        pending.append(result)
        while len(pending) >= 8:
            pending.pop(0).get()
    for result in pending:
        result.get()


def _synthetic_baseline(count):
    baseline = Baseline()
    for index in range(count):
        path = '/services/app-%03d/config/region-%02d/key-%07d' % (index % 500, index % 40, index)
        baseline.entries[path] = data_hash64(b'%d' % index)
    return baseline


def baseline_bytes_per_entry(count):
    """Size of a Baseline holding ``count`` entries with realistic paths (~46 characters): (tracemalloc, RSS) bytes per entry.

    tracemalloc counts the bytes asked for; the RSS growth of a fresh
    process (``--baseline-rss``) also counts the allocator's rounding.
    """
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    baseline = _synthetic_baseline(count)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    size = (after - before) / float(count)
    del baseline
    gc.collect()
    out = subprocess.run([sys.executable, os.path.abspath(__file__), '--baseline-rss', str(count)], stdout=subprocess.PIPE, check=True,
                         env=dict(os.environ, PYTHONPATH=COLLECTIONS_DIR))
    return size, float(out.stdout)


def baseline_rss_process(count):
    """``--baseline-rss``: print the RSS growth per entry of building a synthetic baseline in this fresh process."""
    before = rss_kib(os.getpid())
    baseline = _synthetic_baseline(count)
    sys.stdout.write('%.1f' % ((rss_kib(os.getpid()) - before) * 1024.0 / count))
    return 0 if baseline else 1


def settle_checkpoints(store, quiet=4.0, timeout=90.0):
    """Wait until no checkpoint has completed for ``quiet`` seconds (the last one after the load is written)."""
    deadline = time.monotonic() + timeout
    last = status(store).get('details', {}).get('checkpoints')
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        count = status(store).get('details', {}).get('checkpoints')
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


class MemorySampler(object):
    """Samples the daemon's RSS and status details once a second while the memory section runs.

    The timeline shows what a peak coincides with (queue depth, a full
    reconcile, checkpoints); with ``BENCH_SYNC_TIMELINE=file`` it is written
    there as JSON lines.
    """

    FIELDS = ('queue', 'tracked_paths', 'full_reconciles', 'checkpoints', 'watch_events', 'batches')

    def __init__(self, daemon_pid, store, interval=1.0):
        self.daemon_pid, self.store, self.interval = daemon_pid, store, interval
        self.samples = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name='memory-sampler')
        self.thread.daemon = True
        self.started = time.monotonic()

    def _run(self):
        while not self.done.wait(self.interval):
            found = status(self.store)
            details = found.get('details', {})
            sample = {'t': round(time.monotonic() - self.started, 1), 'rss_mib': round(rss_kib(self.daemon_pid) / 1024.0, 1),
                      'phase': found.get('phase'), 'lag_ms': found.get('lag_ms')}
            sample.update((field, details.get(field)) for field in self.FIELDS)
            self.samples.append(sample)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.done.set()
        self.thread.join(5.0)
        target = os.environ.get('BENCH_SYNC_TIMELINE')
        if target:
            with open(target, 'w') as handle:
                for sample in self.samples:
                    handle.write(json.dumps(sample) + '\n')
        return self.samples


def measure_memory(daemon_pid, store, writer, extra_nodes, steps=4):
    """Daemon RSS before and after ``extra_nodes`` creates streamed in (in ``steps`` bulk loads, to show whether it is linear)."""
    tracked_before = status(store).get('details', {}).get('tracked_paths', 0)
    reconciles_before = status(store).get('details', {}).get('full_reconciles', 0)
    gc.collect()
    time.sleep(1.0)
    rss_before = rss_kib(daemon_pid)
    points = [(tracked_before, rss_before)]
    loaded = 0
    sampler = MemorySampler(daemon_pid, store).start()
    for step in range(steps):
        count = extra_nodes * (step + 1) // steps - loaded
        load_nodes(writer, BASE + '/mem', count, first=loaded)
        loaded += count
        wait_until(lambda: status(store).get('details', {}).get('tracked_paths', 0) >= tracked_before + loaded
                   and status(store).get('lag_ms', 1) == 0, 900, 0.25)
        settle_checkpoints(store)
        points.append((status(store).get('details', {}).get('tracked_paths', 0), rss_kib(daemon_pid)))
    samples = sampler.stop()
    tracked_after, rss_after = points[-1]
    slopes = [(b[1] - a[1]) * 1024.0 / max(1, b[0] - a[0]) for a, b in zip(points, points[1:])]
    return {'tracked_before': tracked_before, 'tracked_after': tracked_after, 'rss_before_kib': rss_before, 'rss_after_kib': rss_after,
            'peak_kib': rss_kib(daemon_pid, 'VmHWM'), 'points': points, 'step_slopes': slopes,
            'full_reconciles': status(store).get('details', {}).get('full_reconciles', 0) - reconciles_before,
            'bytes_per_znode': (rss_after - rss_before) * 1024.0 / max(1, tracked_after - tracked_before),
            'peak_sample': max(samples, key=lambda sample: sample['rss_mib']) if samples else None,
            'max_queue': max([sample['queue'] or 0 for sample in samples] or [0])}


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description='Benchmark of the sync daemon (issue 5)')
    parser.add_argument('--latency-writes', type=int, default=5000)
    parser.add_argument('--latency-warmup', type=int, default=10000,
                        help='creates and updates at the same rate before the latency is measured (default 10000 each)')
    parser.add_argument('--rates', default='2500,5000,6000,7500,10000,20000')
    parser.add_argument('--window', type=float, default=8.0, help='seconds per sustained-rate window')
    parser.add_argument('--keys', type=int, default=20000)
    parser.add_argument('--memory-nodes', type=int, default=200000)
    parser.add_argument('--session-timeout', type=float, default=4.0)
    parser.add_argument('--keep-logs', help='copy the daemon logs into this directory at the end')
    parser.add_argument('--heap', default='512m', help='heap of each ZooKeeper server (give 1536m for a 1M-znode memory run)')
    parser.add_argument('--quick', action='store_true', help='smaller run (2,000 writes, 2 rates, 50k memory nodes)')
    parser.add_argument('--batch-size', type=int, help="the daemon's batch_size (its default when not given)")
    parser.add_argument('--only', default='latency,rates,memory,failover',
                        help='comma-separated sections to run (latency, rates, memory, failover)')
    parser.add_argument('--sync-journal', choices=('on', 'off', 'both'), default='on',
                        help="the daemon's sync journal; 'both' measures latency and rates without it, then with it, "
                             "in the same run, and prints the journal's cost (docs/performance.md)")
    parser.add_argument('--writer', choices=('create', 'update'), help=argparse.SUPPRESS)
    parser.add_argument('--writer-hosts', help=argparse.SUPPRESS)
    parser.add_argument('--writer-count', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--writer-rate', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--writer-dir', default='lat', help=argparse.SUPPRESS)
    parser.add_argument('--baseline-rss', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_rss:
        return baseline_rss_process(args.baseline_rss)
    if args.writer:
        return writer_process(args.writer_hosts, args.writer, args.writer_count, args.writer_rate, args.writer_dir)
    if args.quick:
        args.latency_writes, args.latency_warmup, args.rates, args.window, args.memory_nodes = 2000, 2000, '2500,6000', 5.0, 50000
    rates = [int(r) for r in args.rates.split(',')]
    sections = set(args.only.split(','))
    workdir = tempfile.mkdtemp(prefix='bench-sync-')
    print('machine: %d CPUs, load average %s (other work on the machine skews every figure)'
          % (os.cpu_count(), open('/proc/loadavg').read().split()[0]), flush=True)
    source = bench_cluster('bench-sync-src', size=3, heap=args.heap)
    destination = bench_cluster('bench-sync-dst', size=3, heap=args.heap)
    daemons = []
    try:
        print('starting a 3-node source and a 3-node destination (ZooKeeper 3.8)...', flush=True)
        source.start()
        destination.start()
        writer = source.client()
        src_reader = source.client()
        dst_reader = destination.client()
        for client in (writer, src_reader, dst_reader):
            _protocol.tune_client(client)
        store = _control.ControlStore(dst_reader, ROOT, allow_open_acl=True)   # unauthenticated bench clusters
        store.ensure_root()
        for name, cluster in (('src', source), ('dst', destination)):
            store.put_cluster({'name': name, 'hosts': cluster.host_list, 'session_timeout': args.session_timeout})
        writer.ensure_path(BASE + '/lat')
        writer.ensure_path(BASE + '/warm')
        writer.ensure_path(BASE + '/keys')
        keys = ['%s/keys/k%06d' % (BASE, index) for index in range(args.keys)]
        from kazoo.protocol.serialization import Create
        from kazoo.security import OPEN_ACL_UNSAFE
        for start in range(0, len(keys), 500):
            writer._call(Transaction([Create(k, PAYLOAD, OPEN_ACL_UNSAFE, 0) for k in keys[start:start + 500]]),  # pylint: disable=protected-access
                         writer.handler.async_result())
        writer.sync(BASE)
        store.put_task({'name': TASK, 'source': 'src', 'destination': 'dst', 'paths': [BASE], 'mode': 'one_way', 'sync_acl': False})
        settings = {'batch_size': args.batch_size} if args.batch_size else {}
        # 'both' alternates (off, on, off, on): the servers and the daemon code warm up over the run, and
        # alternating keeps that drift out of the comparison
        passes = {'on': [True], 'off': [False], 'both': [False, True, False, True]}[args.sync_journal]
        src_watch = Recorder(src_reader, BASE + '/lat')
        dst_watch = Recorder(dst_reader, BASE + '/lat')
        ceiling = measure_ceiling(dst_reader, _raw_keys(dst_reader, 5000)) if 'rates' in sections else None
        figures = {}
        for number, journal in enumerate(passes, 1):
            if daemons:
                daemons[-1].stop()      # a clean stop: the next daemon takes the task over from its checkpoint
            daemons.append(Daemon(workdir, 'bench-%d' % number, destination.host_list, args.session_timeout,
                                  dict(settings, sync_journal=journal)))
            started = time.monotonic()
            if not wait_streaming(store, leader='bench-%d' % number):
                raise SystemExit('the daemon did not reach streaming; log in %s' % daemons[-1].log)
            print('\n=== daemon bench-%d, sync journal %s: streaming after %.1fs (%d znodes)'
                  % (number, 'on' if journal else 'off', time.monotonic() - started, args.keys + 3), flush=True)
            figures.setdefault(journal, [])
            figures[journal].append({})
            if 'latency' in sections:
                tag = 'p%d' % number
                for directory in ('lat/' + tag, 'lat/warm-' + tag):
                    writer.ensure_path('%s/%s' % (BASE, directory))
                figures[journal][-1]['p99'] = report_latency(
                    measure_latency(source, src_watch, dst_watch, args.latency_writes, 1000, args.latency_warmup, tag), args.latency_writes)
            if 'rates' in sections:
                figures[journal][-1]['rate'] = report_rates(
                    ceiling, measure_rates(store, writer, dst_reader, keys, rates, args.window, daemons[-1].process.pid), args.window)
        if len(figures) == 2:
            report_journal_cost(figures[False], figures[True])
        if 'memory' in sections:
            report_memory(measure_memory(daemons[-1].process.pid, store, writer, args.memory_nodes), baseline_bytes_per_entry(1000000))
        if 'failover' in sections:
            daemons.append(Daemon(workdir, 'bench-standby', destination.host_list, args.session_timeout, settings))
            report_failover(measure_failover(store, daemons, writer, dst_reader), args.session_timeout)
    finally:
        for daemon in daemons:
            daemon.stop()
        if args.keep_logs:
            os.makedirs(args.keep_logs, exist_ok=True)
            for daemon in daemons:
                shutil.copy(daemon.log, args.keep_logs)
        for cluster in (source, destination):
            cluster.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report_latency(latency, writes):
    print('\n(1) latency source write -> visible on the destination, %d writes at 1,000/s' % writes)
    ok_latency = True
    for kind, row in latency.items():
        raw_p50, raw_p99 = ms(percentile(row['raw'], 0.5)), ms(percentile(row['raw'], 0.99))
        p50, p99 = ms(percentile(row['sync'], 0.5)), ms(percentile(row['sync'], 0.99))
        ratio = p99 / raw_p99 if raw_p99 else float('inf')
        ok = p99 <= 25.0 and ratio <= 5.0 and row['missing'] == 0
        ok_latency = ok_latency and ok
        print('  %-7s achieved %6.0f writes/s | raw watch p50 %6.2f ms p99 %6.2f ms | sync p50 %6.2f ms p99 %6.2f ms max %7.2f ms'
              ' | p99 ratio %.1fx | missing %d  %s'
              % (kind, row['rate'], raw_p50, raw_p99, p50, p99, ms(max(row['sync'] or [0])), ratio, row['missing'], verdict(ok)))
    print('  target: p99 <= 25 ms and <= 5x the raw watch p99  -> %s' % verdict(ok_latency))
    return dict((kind, ms(percentile(row['sync'], 0.99))) for kind, row in latency.items())


def report_rates(ceiling, rows, window):
    print('\n(2) sustained updates (500-op multis on the source), %.0fs per window; raw multi-write ceiling into the destination: %.0f/s'
          % (window, ceiling))
    best = 0
    for row in rows:
        if row['keeps_up']:
            best = max(best, row['achieved'])
        print('  target %6d/s achieved %7.0f/s | writes applied %7d | lag max %7.0f ms (1st half %6.0f, 2nd half %6.0f) | '
              'catch-up %.2fs | daemon CPU %3.0f us/change | events received %7d | %5.0f paths/batch | %s'
              % (row['target'], row['achieved'], row['applied_writes'], row['lag_max_ms'], row['lag_first_half_ms'],
                 row['lag_second_half_ms'], row['catch_up_s'], row['cpu_us_per_change'], row['events_received'], row['batch_paths'],
                 'keeps up' if row['keeps_up'] else 'lag grows'))
    if rows:
        print('  daemon read sessions: %s' % (rows[-1]['read_sessions'],))
    print('  highest rate without growing lag: %.0f changes/s = %.2fx the raw ceiling  -> %s (target >= 5,000/s)'
          % (best, best / ceiling if ceiling else 0, verdict(best >= 5000)))
    return {'best': best, 'cpu_us': dict((row['target'], row['cpu_us_per_change']) for row in rows)}


def report_journal_cost(off, on):
    """The sync journal's cost: the same measurements without it and with it, alternating, in one run (means of the passes)."""
    def mean(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else 0.0

    def ratio(before, after):
        return after / before if before else 0.0
    print('\n(5) sync journal cost (same run; %d passes without the journal and %d with it, alternating; means)' % (len(off), len(on)))
    for kind in sorted(off[0].get('p99') or {}):
        before, after = mean(p['p99'][kind] for p in off), mean(p['p99'][kind] for p in on)
        print('  latency p99 %-7s without %7.2f ms | with %7.2f ms | ratio %.2fx' % (kind, before, after, ratio(before, after)))
    if 'rate' in off[0]:
        before, after = mean(p['rate']['best'] for p in off), mean(p['rate']['best'] for p in on)
        print('  highest sustained rate without %7.0f/s | with %7.0f/s | ratio %.2fx' % (before, after, ratio(before, after)))
        for target in sorted(off[0]['rate']['cpu_us']):
            cpu_off = mean(p['rate']['cpu_us'].get(target) for p in off)
            cpu_on = mean(p['rate']['cpu_us'].get(target) for p in on)
            print('  daemon CPU at %6d/s target: without %5.0f us/change | with %5.0f us/change | ratio %.2fx'
                  % (target, cpu_off, cpu_on, ratio(cpu_off, cpu_on)))


def report_memory(memory, per_entry):
    print('\n(3) memory: daemon RSS %.0f MiB with %d tracked znodes, %.0f MiB with %d: %.0f bytes per tracked znode '
          '(peak RSS %.0f MiB)'
          % (memory['rss_before_kib'] / 1024.0, memory['tracked_before'], memory['rss_after_kib'] / 1024.0, memory['tracked_after'],
             memory['bytes_per_znode'], memory['peak_kib'] / 1024.0))
    if memory['full_reconciles']:
        print('  %d full reconcile(s) ran meanwhile (after a reconnect): each holds, for a moment, the names of the children '
              'of %s/mem (all the loaded znodes) on both sides' % (memory['full_reconciles'], BASE))
    print('  RSS after each bulk load (tracked znodes: MiB): %s; slope of each step: %s bytes per znode'
          % (', '.join('%d: %.0f' % (tracked, kib / 1024.0) for tracked, kib in memory['points']),
             ', '.join('%.0f' % slope for slope in memory['step_slopes'])))
    peak = memory['peak_sample']
    if peak:
        print('  highest RSS sampled: %.0f MiB at %.0fs, with %s tracked, %s queued, %s full reconcile(s), %s checkpoint(s); '
              'largest queue sampled: %d paths'
              % (peak['rss_mib'], peak['t'], peak['tracked_paths'], peak['queue'], peak['full_reconciles'], peak['checkpoints'],
                 memory['max_queue']))
    print('  baseline structure alone, 1M synthetic paths of ~46 characters: %.0f bytes per entry (tracemalloc), %.0f (RSS of a fresh '
          'process)' % per_entry)
    print('  target: <= 300 bytes per tracked znode  -> %s' % verdict(memory['bytes_per_znode'] <= 300))


def measure_failover(store, daemons, writer, dst):
    """Kill -9 the leader while a standby runs; seconds until a source write is visible on the destination again."""
    wait_until(lambda: len(store.list_daemons()) >= 2, 30)
    time.sleep(1.0)
    leader = status(store).get('leader')
    victim = [d for d in daemons if d.daemon_id == leader][0]
    probe = BASE + '/lat/failover'
    if writer.exists(probe) is None:
        writer.create(probe, b'0')
    wait_until(lambda: dst.exists(probe) is not None, 30)
    killed = time.monotonic()
    victim.kill()
    index = 0
    while time.monotonic() - killed < 120:
        index += 1
        value = b'%d' % index
        writer.set(probe, value)
        if wait_until(lambda: dst.exists(probe) is not None and dst.get(probe)[0] == value, 0.2, 0.01):
            break
    return time.monotonic() - killed


def report_failover(failover, session_timeout):
    target = session_timeout + 5.0
    print('\n(4) failover: leader killed with SIGKILL; a source write visible on the destination again after %.2fs '
          '(session timeout %.0fs + 5 s = %.0fs)  -> %s' % (failover, session_timeout, target, verdict(failover <= target)))


def _raw_keys(client, count):
    """Keys for the raw ceiling, outside the task's paths."""
    keys = ['/bench-raw/k%06d' % index for index in range(count)]
    client.ensure_path('/bench-raw')
    from kazoo.protocol.serialization import Create
    from kazoo.security import OPEN_ACL_UNSAFE
    results = []
    for start in range(0, count, 500):
        result = client.handler.async_result()
        client._call(Transaction([Create(k, PAYLOAD, OPEN_ACL_UNSAFE, 0) for k in keys[start:start + 500]]), result)  # pylint: disable=protected-access
        results.append(result)
    for result in results:
        result.get()
    return keys


if __name__ == '__main__':
    sys.exit(main())
