# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sync daemon: runs the sync tasks of the control store, one leader per task.

This is a private module of the zookeeper.migration collection; it may change
without notice. Run it as::

    python -m ansible_collections.zookeeper.migration.plugins.module_utils._daemon run --config /etc/zookeeper-migration/daemon.yml
    python -m ansible_collections.zookeeper.migration.plugins.module_utils._daemon status --config FILE [--json]
    python -m ansible_collections.zookeeper.migration.plugins.module_utils._daemon check-config --config FILE [--offline]

What the process does (docs/daemon.md has the operator's view):

* reads and validates its config file (YAML or JSON) and the credentials
  file it names (secrets live only there, never in the control store);
* connects to the control ensemble, registers itself (an ephemeral znode
  under ``<root>/daemons``), and watches the task list;
* joins the election of every task that is not stopped; the leader of a
  task runs it (``_sync.SyncEngine``), the others stand by and take over
  when the leader's session ends;
* picks task changes up live (a changed spec restarts the task's engine;
  ``paused`` keeps the leadership and stops writing; ``stopped`` or a
  deleted task leaves the election);
* serves Prometheus metrics on ``/metrics`` and a health check on
  ``/healthz`` at ``metrics_address``;
* logs one JSON object per line on stdout (the journal keeps them);
* SIGHUP re-reads the credentials file (an invalid file is refused and the
  previous credentials stay); SIGTERM and SIGINT drain: every engine stops
  after its current batch, checkpoints its baseline, leaves its election;
  the process then exits 0.
"""

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    ConfigError,
    FencedError,
    NodeExistsError,
    ZkMigrationError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils import _client
from ansible_collections.zookeeper.migration.plugins.module_utils import _control
from ansible_collections.zookeeper.migration.plugins.module_utils import _credentials
from ansible_collections.zookeeper.migration.plugins.module_utils import _records
from ansible_collections.zookeeper.migration.plugins.module_utils import _registration
from ansible_collections.zookeeper.migration.plugins.module_utils import _sync

try:
    from kazoo.protocol.states import KazooState
    from kazoo.recipe.watchers import ChildrenWatch, DataWatch
    HAS_KAZOO = True
    KAZOO_IMPORT_ERROR = None
except ImportError:
    HAS_KAZOO = False
    KAZOO_IMPORT_ERROR = traceback.format_exc()

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    HAS_PROMETHEUS = True
    PROMETHEUS_IMPORT_ERROR = None
except ImportError:
    HAS_PROMETHEUS = False
    PROMETHEUS_IMPORT_ERROR = traceback.format_exc()

try:
    import yaml
    HAS_YAML = True
except ImportError:
    HAS_YAML = False

try:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
except ImportError:  # pragma: no cover - Python 3.9+ always has it
    BaseHTTPRequestHandler = object
    ThreadingHTTPServer = None


DAEMON_VERSION = '1.0.0'
LOG = logging.getLogger('zookeeper_migration.daemon')

CONFIG_DEFAULTS = {
    'root': _records.DEFAULT_ROOT,
    'credentials_file': None,
    'metrics_address': '127.0.0.1:9464',
    'log_level': 'INFO',
    'full_reconcile_interval': _sync.ENGINE_DEFAULTS['full_reconcile_interval'],
    'status_interval': _sync.ENGINE_DEFAULTS['status_interval'],
    'checkpoint_interval': _sync.ENGINE_DEFAULTS['checkpoint_interval'],
    'batch_size': _sync.ENGINE_DEFAULTS['batch_size'],
    'max_request_bytes': _sync.ENGINE_DEFAULTS['max_request_bytes'],
    'task_retry_delay': 5.0,
    # The sync journal (docs/daemon.md, "Failover"). Off only to measure its cost (tests/bench/bench_sync.py): without it a
    # new leader may revert writes synced since the last checkpoint.
    'sync_journal': True,
}
CONFIG_KEYS = frozenset(['daemon_id', 'control'] + list(CONFIG_DEFAULTS))
#: Settings of ``control`` that say how the control store is protected (``ControlStore`` options), not how to connect.
CONTROL_ACL_KEYS = ('allow_open_acl', 'world_read')
LOG_LEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR')
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------

def _number(config, key, minimum, maximum, integer=False):
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError('config: %s must be a number, got %r' % (key, value))
    if integer and int(value) != value:
        raise ConfigError('config: %s must be a whole number, got %r' % (key, value))
    if not minimum <= value <= maximum:
        raise ConfigError('config: %s must be between %s and %s, got %s' % (key, minimum, maximum, value))
    return int(value) if integer else float(value)


def parse_address(value, what='metrics_address'):
    """``host:port`` -> (host, port); ConfigError otherwise."""
    if not isinstance(value, str) or ':' not in value:
        raise ConfigError('config: %s must be "host:port" (e.g. 127.0.0.1:9464), got %r' % (what, value))
    host, _sep, port = value.rpartition(':')
    host = host.strip('[]')
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError('config: %s must be "host:port" with a port 0-65535, got %r' % (what, value))
    return host, int(port)


def validate_config(raw, source='config'):
    """Validate a config mapping and return it with defaults filled. Raises ConfigError naming the key."""
    if not isinstance(raw, dict):
        raise ConfigError('%s must be a mapping of settings, got %s' % (source, type(raw).__name__))
    unknown = sorted(set(raw) - CONFIG_KEYS, key=str)
    if unknown:
        raise ConfigError('%s: unknown setting(s) %s (known: %s)' % (source, ', '.join(map(str, unknown)), ', '.join(sorted(CONFIG_KEYS))))
    config = dict(CONFIG_DEFAULTS)
    config.update((key, value) for key, value in raw.items() if value is not None or key in ('credentials_file', 'metrics_address'))
    if 'daemon_id' not in raw or raw['daemon_id'] in (None, ''):
        raise ConfigError('%s: daemon_id is required (a name unique to this daemon, e.g. the host name)' % source)
    config['daemon_id'] = _records.check_name(raw['daemon_id'], '%s: daemon_id' % source)
    control = raw.get('control')
    if not isinstance(control, dict):
        raise ConfigError('%s: control is required: the control ensemble as {hosts: [...], chroot, auth: {scheme, credential}, tls: {...}}'
                          % source)
    record = dict(control)
    record.setdefault('name', 'control')
    # How the control store is protected (not part of the connection): it fails closed unless allow_open_acl.
    config['control_acl'] = {}
    for key in CONTROL_ACL_KEYS:
        value = record.pop(key, None)
        if value is not None and not isinstance(value, bool):
            raise ConfigError('%s: control.%s must be true or false, got %r' % (source, key, value))
        config['control_acl'][key] = bool(value)
    try:
        config['control'] = _records.normalize_cluster(record)
    except ConfigError as exc:
        raise ConfigError('%s: control: %s' % (source, exc.message))
    try:
        config['root'] = _records.normalize_root(config['root'])
    except ConfigError as exc:
        raise ConfigError('%s: root: %s' % (source, exc.message))
    path = config['credentials_file']
    if path is not None and (not isinstance(path, str) or not path):
        raise ConfigError('%s: credentials_file must be a file path' % source)
    needs_secret = config['control']['auth']['scheme'] != 'none' or config['control']['tls']['credential']
    if needs_secret and path is None:
        raise ConfigError('%s: control uses credential %r: set credentials_file' % (
            source, config['control']['auth']['credential'] or config['control']['tls']['credential']))
    if config['metrics_address'] in (None, '', False):
        config['metrics_address'] = None
    else:
        parse_address(config['metrics_address'])
    level = str(config['log_level']).upper()
    if level not in LOG_LEVELS:
        raise ConfigError('%s: log_level must be one of %s, got %r' % (source, ', '.join(LOG_LEVELS), config['log_level']))
    config['log_level'] = level
    config['full_reconcile_interval'] = _number(config, 'full_reconcile_interval', 0, 7 * 86400)
    config['status_interval'] = _number(config, 'status_interval', 0.1, 60)
    config['checkpoint_interval'] = _number(config, 'checkpoint_interval', 0.05, 600)
    config['batch_size'] = _number(config, 'batch_size', 1, 5000, integer=True)
    config['max_request_bytes'] = _number(config, 'max_request_bytes', 4096, 1 << 30, integer=True)
    config['task_retry_delay'] = _number(config, 'task_retry_delay', 0.1, 600)
    if not isinstance(config['sync_journal'], bool):
        raise ConfigError('%s: sync_journal must be true or false, got %r' % (source, config['sync_journal']))
    return config


def load_config(path):
    """Read and validate the config file (YAML, or JSON which YAML also reads)."""
    try:
        with open(path, 'rb') as handle:
            text = handle.read().decode('utf-8')
    except OSError as exc:
        raise ConfigError('config file %s cannot be read: %s' % (path, exc.strerror or exc))
    except UnicodeDecodeError:
        raise ConfigError('config file %s is not UTF-8 text' % path)
    stripped = text.strip()
    if stripped.startswith('{'):
        try:
            raw = json.loads(stripped)
        except ValueError as exc:
            raise ConfigError('config file %s is not valid JSON: %s' % (path, exc))
    elif HAS_YAML:
        try:
            raw = yaml.safe_load(stripped)
        except yaml.YAMLError as exc:
            mark = getattr(exc, 'problem_mark', None)
            where = ' near line %d, column %d' % (mark.line + 1, mark.column + 1) if mark is not None else ''
            raise ConfigError('config file %s is not valid YAML%s' % (path, where))
    else:
        raise ConfigError('config file %s is not JSON and PyYAML is not installed: write it as JSON or install PyYAML' % path)
    if raw is None:
        raise ConfigError('config file %s is empty' % path)
    return validate_config(raw, source='config file %s' % path)


def load_credentials(config):
    """The ``CredentialStore`` of the config's credentials file (None when it names none)."""
    if not config.get('credentials_file'):
        return None
    return _credentials.CredentialStore.from_file(config['credentials_file'])


# --------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------

#: syslog priorities of the log levels, for journald (``<N>`` line prefixes, see sd-daemon(3)).
SYSLOG_PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def syslog_priority(levelno):
    """The syslog priority of a logging level (levels between the named ones take the next lower name's)."""
    for level in sorted(SYSLOG_PRIORITIES, reverse=True):
        if levelno >= level:
            return SYSLOG_PRIORITIES[level]
    return 7


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, daemon, and task/path/event/cluster when given.

    With ``priority_prefix`` (stdout is the journal: systemd sets
    ``JOURNAL_STREAM``) each line starts with ``<N>``, the syslog priority of
    its level, which journald takes as the entry's priority and strips, so
    ``journalctl -p warning`` shows warnings and errors, JSON intact.
    """

    EXTRA_FIELDS = ('task', 'path', 'event', 'policy', 'cluster', 'side', 'epoch')

    def __init__(self, daemon_id=None, priority_prefix=False):
        super(JsonFormatter, self).__init__()
        self.daemon_id = daemon_id
        self.priority_prefix = priority_prefix

    def format(self, record):
        out = {
            'ts': time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(record.created)) + '.%03dZ' % record.msecs,
            'level': record.levelname.lower(),
            'logger': record.name,
            'msg': record.getMessage(),
        }
        if self.daemon_id:
            out['daemon'] = self.daemon_id
        for key in self.EXTRA_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out['exception'] = self.formatException(record.exc_info)
        line = json.dumps(out, default=str, sort_keys=False)
        if self.priority_prefix:
            return '<%d>%s' % (syslog_priority(record.levelno), line)
        return line


def writes_to_journal(stream, environ):
    """True when ``stream`` is the journal stream systemd connected (``JOURNAL_STREAM`` names its device and inode).

    A child whose stdout was redirected inherits the variable: its stream is
    then another file, which the device and inode tell (systemd.exec(5)). A
    stream without a file descriptor (a test's StringIO) trusts the variable.
    """
    value = environ.get('JOURNAL_STREAM')
    if not value:
        return False
    try:
        device, inode = (int(part) for part in value.split(':'))
    except ValueError:
        return False
    try:
        status = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return True
    return (status.st_dev, status.st_ino) == (device, inode)


def setup_logging(level='INFO', daemon_id=None, stream=None, environ=None):
    """JSON lines on stdout for our loggers; kazoo's own chatter only from WARNING up.

    Under systemd with stdout on the journal (``JOURNAL_STREAM`` set) each line
    carries its syslog priority for journald.
    """
    environ = os.environ if environ is None else environ
    stream = stream or sys.stdout
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(daemon_id, priority_prefix=writes_to_journal(stream, environ)))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level))
    logging.getLogger('kazoo').setLevel(logging.WARNING if level != 'DEBUG' else logging.INFO)
    return handler


# --------------------------------------------------------------------------
# Metrics and health
# --------------------------------------------------------------------------

class PrometheusMetrics(_sync.NullMetrics):
    """The engine's metrics on a private prometheus_client registry."""

    PHASES = ('initial_sync', 'streaming', 'paused', 'error', 'stopped', 'cut_over', 'standby')

    def __init__(self, daemon_id):
        self.registry = CollectorRegistry()
        self._children = {}
        labels = ['task']
        self.events = Counter('zkmigration_sync_events', 'Writes applied, per direction', labels + ['direction'], registry=self.registry)
        self.conflicts = Counter('zkmigration_sync_conflicts', 'Conflicts settled by the conflict policy', labels, registry=self.registry)
        self.errors = Counter('zkmigration_sync_errors', 'Failed writes or reads, by kind', labels + ['kind'], registry=self.registry)
        self.latency_seconds = Histogram('zkmigration_sync_latency_seconds', 'From the watch event to the write applied on the other side',
                                         labels, registry=self.registry,
                                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.lag = Gauge('zkmigration_sync_lag_seconds', 'Age of the oldest change not yet reconciled', labels, registry=self.registry)
        self.queue = Gauge('zkmigration_sync_queue_depth', 'Paths waiting to be reconciled', labels, registry=self.registry)
        self.tracked = Gauge('zkmigration_sync_tracked_paths', 'Paths in the sync baseline', labels, registry=self.registry)
        self.stuck = Gauge('zkmigration_sync_stuck_paths', 'Paths that keep failing, retried alone with a backoff', labels,
                           registry=self.registry)
        self.phase = Gauge('zkmigration_sync_phase', 'Current phase of the task on this daemon (1 for the current one)',
                           labels + ['phase'], registry=self.registry)
        self.leader = Gauge('zkmigration_task_leader', '1 when this daemon leads the task', labels, registry=self.registry)
        # the status' nodes_done/nodes_total/eta_seconds: copy plan operations during the initial sync, then paths in sync/tracked
        self.nodes_done = Gauge('zkmigration_sync_nodes_done', 'Progress: nodes done (initial sync: operations of the copy plan)', labels,
                                registry=self.registry)
        self.nodes_total = Gauge('zkmigration_sync_nodes_total', 'Progress: nodes in all (absent until the copy plan is known)', labels,
                                 registry=self.registry)
        self.eta = Gauge('zkmigration_sync_eta_seconds', 'Estimated seconds until nodes_done reaches nodes_total (absent when unknown)', labels,
                         registry=self.registry)
        self.full_reconcile_seconds = Histogram('zkmigration_full_reconcile_seconds', 'Duration of full reconciles', labels,
                                                registry=self.registry, buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 1800))
        self.info = Gauge('zkmigration_daemon_info', 'Daemon identity', ['daemon_id', 'version'], registry=self.registry)
        self.info.labels(daemon_id, DAEMON_VERSION).set(1)
        self.control_connected = Gauge('zkmigration_control_connected', '1 while the control session is connected', registry=self.registry)

    def _child(self, metric, *labels):
        # labels() looks the child up under a lock each time; latency is observed per path
        key = (id(metric),) + labels
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def event(self, task, direction, count=1):
        self._child(self.events, task, direction).inc(count)

    def conflict(self, task, count=1):
        self._child(self.conflicts, task).inc(count)

    def error(self, task, kind):
        self._child(self.errors, task, kind).inc()

    def latency(self, task, seconds):
        self._child(self.latency_seconds, task).observe(seconds)

    def gauges(self, task, lag_seconds, queue_depth, tracked, phase, stuck=0):
        self.lag.labels(task).set(lag_seconds)
        self.queue.labels(task).set(queue_depth)
        self.tracked.labels(task).set(tracked)
        self.stuck.labels(task).set(stuck)
        self.set_phase(task, phase)

    def progress(self, task, done, total, eta):
        self.nodes_done.labels(task).set(done)
        for gauge, value in ((self.nodes_total, total), (self.eta, eta)):
            if value is None:
                _remove_series(gauge, task)     # unknown: no series rather than a made-up number
            else:
                gauge.labels(task).set(value)

    def forget(self, task):
        """A deleted task: drop its series (a leader=0 left behind would read as a leaderless task)."""
        for metric in (self.events, self.conflicts, self.errors, self.latency_seconds):
            for key in [key for key in self._children if key[0] == id(metric) and key[1] == task]:
                del self._children[key]
                _remove_series(metric, *key[1:])
        for metric in (self.lag, self.queue, self.tracked, self.stuck, self.leader, self.nodes_done, self.nodes_total, self.eta,
                       self.full_reconcile_seconds):
            _remove_series(metric, task)
        for name in self.PHASES:
            _remove_series(self.phase, task, name)

    def set_phase(self, task, phase):
        for name in self.PHASES:
            self.phase.labels(task, name).set(1 if name == phase else 0)

    def set_leader(self, task, leading):
        self.leader.labels(task).set(1 if leading else 0)

    def full_reconcile(self, task, seconds):
        self.full_reconcile_seconds.labels(task).observe(seconds)

    def set_control_connected(self, connected):
        self.control_connected.set(1 if connected else 0)

    def render(self):
        return prometheus_client.generate_latest(self.registry), prometheus_client.CONTENT_TYPE_LATEST


def _remove_series(metric, *labels):
    try:
        metric.remove(*labels)
    except KeyError:        # older prometheus_client versions raise for a series they do not have
        pass


class _NullDaemonMetrics(_sync.NullMetrics):
    """Stand-in when prometheus_client is not installed (the health endpoint still works)."""

    def set_phase(self, task, phase):
        pass

    def set_leader(self, task, leading):
        pass

    def forget(self, task):
        pass

    def set_control_connected(self, connected):
        pass

    def render(self):
        return b'# prometheus_client is not installed on this daemon host\n', 'text/plain; charset=utf-8'


class _HttpHandler(BaseHTTPRequestHandler):
    daemon_ref = None

    def do_GET(self):  # pylint: disable=invalid-name
        daemon = self.daemon_ref
        path = self.path.split('?', 1)[0]
        if path == '/metrics':
            daemon.metrics.set_control_connected(daemon.control_connected())
            body, content_type = daemon.metrics.render()
            self._send(200, body, content_type)
        elif path in ('/healthz', '/health'):
            health = daemon.health()
            self._send(200 if health['status'] == 'ok' else 503, json.dumps(health, sort_keys=True).encode('utf-8'), 'application/json')
        else:
            self._send(404, b'not found: try /metrics or /healthz\n', 'text/plain; charset=utf-8')

    def _send(self, code, body, content_type):
        self.send_response(code)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass  # scrapes every few seconds would flood the journal


# --------------------------------------------------------------------------
# Task runners
# --------------------------------------------------------------------------

_RESTART_FIELDS = ('source', 'destination', 'mode', 'paths', 'exclude', 'initial', 'prune', 'sync_acl', 'acl_mode', 'conflict',
                   'node_types', 'max_write_rate', 'direction_after_cutover')


def _spec_key(spec):
    return None if spec is None else json.dumps(dict((k, spec.get(k)) for k in _RESTART_FIELDS), sort_keys=True, default=str)


class TaskRunner(object):
    """One task on this daemon: contend for its leadership; while leading, run its engine.

    The thread restarts the engine when the spec changes, writes a
    ``paused`` status while the task is paused, records errors (a cluster
    down, bad credentials) in the status and retries after a delay, and
    leaves the election when the task is stopped or deleted.
    """

    def __init__(self, daemon, name):
        self.daemon = daemon
        self.name = name
        self.spec = None
        self.spec_version = 0
        self.changed = threading.Event()
        self.stopping = threading.Event()
        self.election = None
        self.engine = None
        self.role = 'starting'
        self.last_error = None
        self.last_phase = None
        self.thread = threading.Thread(target=self._run, name='task-%s' % name)
        self.thread.daemon = True
        self.log = logging.getLogger('zookeeper_migration.daemon.task')

    # -- driven by the daemon's watches -------------------------------------
    def update_spec(self, spec):
        """A new spec (None: the task was deleted)."""
        old_key = _spec_key(self.spec)
        old_state = self.spec.get('state') if self.spec else None
        self.spec = spec
        self.spec_version += 1
        new_state = spec.get('state') if spec else None
        if spec is None or _spec_key(spec) != old_key or new_state != old_state:
            self.changed.set()
            engine = self.engine
            if engine is not None:
                engine.stop('spec_changed')
            election = self.election
            if election is not None and (spec is None or new_state == 'stopped') and not election.is_leader:
                election.cancel()

    def cutover_changed(self):
        """The cutover record changed: restart the engine, which reads the recorded direction."""
        self.log.info('task %s: its cutover record changed', self.name, extra={'task': self.name})
        self.changed.set()
        engine = self.engine
        if engine is not None:
            engine.stop('cutover_changed')

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.changed.set()
        engine = self.engine
        if engine is not None:
            engine.stop('shutdown')
        election = self.election
        if election is not None:
            try:
                election.cancel()
            except Exception:  # pylint: disable=broad-except
                pass

    def join(self, timeout):
        self.thread.join(timeout)
        return not self.thread.is_alive()

    # -- the thread ---------------------------------------------------------
    def _run(self):
        delay = self.daemon.config['task_retry_delay']
        while not self.stopping.is_set():
            spec = self.spec
            if spec is None or spec.get('state') == 'stopped':
                self.role = 'stopped' if spec is not None else 'deleted'
                self.daemon.metrics.set_leader(self.name, False)
                if spec is None:
                    self.daemon.metrics.forget(self.name)
                    return
                self.daemon.metrics.set_phase(self.name, 'stopped')
                self.changed.wait(5.0)
                self.changed.clear()
                continue
            try:
                self._contend_and_lead()
            except Exception as exc:  # pylint: disable=broad-except
                self.last_error = str(exc)
                self.log.warning('task %s: %s', self.name, exc, extra={'task': self.name})
                self.stopping.wait(delay)

    def _contend_and_lead(self):
        store = self.daemon.store
        election = store.election(self.name, self.daemon.daemon_id)
        self.election = election
        self.role = 'standby'
        self.daemon.metrics.set_phase(self.name, 'standby')
        try:
            acquired = False
            while not acquired and not self.stopping.is_set():
                spec = self.spec
                if spec is None or spec.get('state') == 'stopped':
                    return
                acquired = election.acquire(blocking=True)   # cancel() (stop, task stopped) makes it return False
            if not acquired:
                return
            self.role = 'leader'
            self.daemon.metrics.set_leader(self.name, True)
            self.log.info('task %s: this daemon is the leader now (election sequence %s, control epoch %s)', self.name,
                          election.sequence, election.epoch, extra={'task': self.name, 'epoch': election.epoch})
            self._lead(election)
        finally:
            self.daemon.metrics.set_leader(self.name, False)
            self.daemon.metrics.set_phase(self.name, 'standby')    # the task's phase is the leader's to report
            self.role = 'standby'
            self.engine = None
            self._release(election)
            self.election = None

    def _release(self, election):
        for _attempt in range(50):
            try:
                election.release()
                return
            except ZkMigrationError:
                # disconnected: the lock znode goes with the session anyway, or we delete it once back
                if self.daemon.control_client is None or self.daemon.control_client.state == KazooState.LOST:
                    return
                time.sleep(0.2)

    def _lead(self, election):
        delay = self.daemon.config['task_retry_delay']
        failures = 0
        while not self.stopping.is_set() and not election.leadership_lost.is_set():
            spec = self.spec
            if spec is None or spec.get('state') == 'stopped':
                self._write_status({'phase': 'stopped', 'last_error': None}, election)
                return
            self.changed.clear()
            cutover = self.daemon.store.get_cutover(self.name)
            if _sync.cutover_direction(cutover, spec) == 'none':
                self._idle(election, {'phase': 'cut_over', 'last_error': None}, 'the task was cut over: nothing to sync')
                continue
            if spec.get('state') == 'paused':
                self._idle(election, {'phase': 'paused', 'last_error': None}, 'paused')
                continue
            try:
                reason = self._run_engine(spec, election, cutover)
                failures = 0
                if reason == 'fenced':
                    return
            except FencedError:
                return
            except Exception as exc:  # pylint: disable=broad-except
                failures += 1
                self.last_error = str(exc)
                self.log.error('task %s: %s (retrying in %.0fs)', self.name, exc, min(delay * failures, 60), extra={'task': self.name},
                               exc_info=not isinstance(exc, ZkMigrationError))
                self._write_status({'phase': 'error', 'last_error': str(exc)[:2000]}, election)
                if self.changed.wait(min(delay * failures, 60)):
                    continue

    def _idle(self, election, status, why):
        """Lead without syncing (paused, cut over): keep the status fresh until something changes."""
        self.log.info('task %s: %s', self.name, why, extra={'task': self.name})
        self.daemon.metrics.set_phase(self.name, status['phase'])
        while not self.stopping.is_set() and not election.leadership_lost.is_set():
            self._write_status(status, election)
            if self.changed.wait(self.daemon.config['status_interval']):
                return

    def _write_status(self, fields, election):
        status = {'phase': fields['phase'], 'last_error': fields.get('last_error'), 'heartbeat': time.time(),
                  'leader': self.daemon.daemon_id}
        previous = None
        try:
            previous = self.daemon.store.get_status(self.name)
        except Exception:  # pylint: disable=broad-except
            pass
        if previous:
            for key in ('events_source_to_destination', 'events_destination_to_source', 'conflicts', 'nodes_done', 'nodes_total'):
                if previous.get(key) is not None:
                    status[key] = previous[key]
        self.last_phase = fields['phase']
        self.daemon.metrics.set_phase(self.name, fields['phase'])
        try:
            self.daemon.store.put_status(self.name, status, epoch=election.epoch)
        except Exception as exc:  # pylint: disable=broad-except
            self.log.warning('task %s: writing the status failed: %s', self.name, exc, extra={'task': self.name})

    def _run_engine(self, spec, election, cutover):
        daemon = self.daemon
        store = daemon.store
        clients = {}
        connections = {}
        migrator_acls = {}
        try:
            for side in _sync.SIDES:
                record = store.get_cluster(spec[side])
                if record is None:
                    raise ConfigError('task %s: its %s cluster %r is not registered' % (self.name, side, spec[side]))
                connection = connections[side] = _registration.resolve(record, daemon.credentials)
                migrator_acls[side] = _registration.migrator_acl(connection)
                clients[side] = _client.connect(connection)
            if election.leadership_lost.is_set() or self.changed.is_set():
                return 'restart'
            config = daemon.config
            options = _sync.EngineOptions(control_root=config['root'], full_reconcile_interval=config['full_reconcile_interval'],
                                          status_interval=config['status_interval'], checkpoint_interval=config['checkpoint_interval'],
                                          batch_size=config['batch_size'], max_request_bytes=config['max_request_bytes'],
                                          journal=config['sync_journal'])
            engine = _sync.SyncEngine(spec, clients, store, daemon.daemon_id, control_epoch=election.epoch, options=options,
                                      metrics=daemon.metrics, leadership_lost=election.leadership_lost, cutover=cutover,
                                      migrator_acls=migrator_acls, session_factory=_sync.member_session_factory(connections))
            self.engine = engine
            if self.changed.is_set() or self.stopping.is_set():
                return 'restart'
            reason = engine.run()
            self.last_error = engine.last_error
            self.log.info('task %s: engine stopped (%s)', self.name, reason, extra={'task': self.name})
            return reason
        finally:
            self.engine = None
            for client in clients.values():
                _client.stop_quietly(client)

    def describe(self):
        engine = self.engine
        out = {'role': self.role, 'state': self.spec.get('state') if self.spec else None, 'last_error': self.last_error}
        if engine is not None:
            out['phase'] = engine.phase
            out['queue'] = len(engine.queue)
            out['tracked_paths'] = len(engine.baseline)
        elif self.last_phase is not None and self.role == 'leader':
            out['phase'] = self.last_phase
        return out


# --------------------------------------------------------------------------
# The daemon
# --------------------------------------------------------------------------

class Daemon(object):
    """The process: control session, registration, task runners, HTTP endpoint, signals."""

    def __init__(self, config, credentials=None):
        self.config = config
        self.daemon_id = config['daemon_id']
        self.credentials = credentials
        self.control_client = None
        self.store = None
        self.runners = {}
        self.runners_lock = threading.Lock()
        self.shutdown_event = threading.Event()
        self.reload_event = threading.Event()
        self.http_server = None
        self.started_at = time.time()
        self._tasks_watch = None
        self._task_watches = {}
        self._registered = False
        self._reregister = threading.Event()
        self.metrics = PrometheusMetrics(self.daemon_id) if HAS_PROMETHEUS else _NullDaemonMetrics()
        self.log = LOG

    # -- lifecycle --------------------------------------------------------------
    def run(self):
        """Run until SIGTERM/SIGINT (or ``shutdown()``); returns the exit code."""
        self._install_signals()
        self._start_http()
        try:
            if not self._connect_control():
                return EXIT_OK
            self._register()
            self._watch_tasks()
            self.log.info('daemon %s running (control %s, root %s, metrics %s)', self.daemon_id,
                          ','.join(self.config['control']['hosts']), self.config['root'], self.config['metrics_address'] or 'off')
            next_poll = time.monotonic() + 15.0
            while not self.shutdown_event.wait(0.25):
                if self.reload_event.is_set():
                    self.reload_event.clear()
                    self._reload_credentials()
                if self._reregister.is_set() and self.control_connected():
                    self._reregister.clear()
                    self._register()
                    self._refresh_tasks()
                if time.monotonic() >= next_poll:
                    # a safety net under the watches (cheap: a few reads every 15 s)
                    next_poll = time.monotonic() + 15.0
                    if self.control_connected():
                        self._refresh_tasks()
            return EXIT_OK
        finally:
            self._shutdown()

    def shutdown(self):
        self.shutdown_event.set()

    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return

        def on_term(signum, _frame):
            self.log.info('signal %s: draining and exiting', signal.Signals(signum).name)
            self.shutdown_event.set()

        def on_hup(_signum, _frame):
            self.reload_event.set()
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        signal.signal(signal.SIGHUP, on_hup)

    def _start_http(self):
        address = self.config['metrics_address']
        if not address or ThreadingHTTPServer is None:
            return
        host, port = parse_address(address)
        handler = type('Handler', (_HttpHandler,), {'daemon_ref': self})
        try:
            self.http_server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise ConfigError('cannot serve metrics on %s: %s' % (address, exc.strerror or exc))
        self.http_server.daemon_threads = True
        thread = threading.Thread(target=self.http_server.serve_forever, name='http')
        thread.daemon = True
        thread.start()

    def _connect_control(self):
        """Connect to the control ensemble, retrying until it answers or we are told to stop."""
        delay = 1.0
        while not self.shutdown_event.is_set():
            try:
                spec = _registration.resolve(self.config['control'], self.credentials)
                self.control_client = _client.connect(spec)
                self.control_client.add_listener(self._control_state)
                # fails closed (ConfigError, the daemon exits) on an open control store unless control.allow_open_acl
                self.store = _control.ControlStore(self.control_client, self.config['root'], **self.config['control_acl'])
                self.store.ensure_root()
                return True
            except ConfigError:
                raise
            except ZkMigrationError as exc:
                if self.control_client is not None:
                    _client.stop_quietly(self.control_client)
                    self.control_client = None
                self.log.error('cannot use the control ensemble: %s (retrying in %.0fs)', exc, delay)
                self.shutdown_event.wait(delay)
                delay = min(delay * 2, 30.0)
        return False

    def control_connected(self):
        client = self.control_client
        return client is not None and client.state == KazooState.CONNECTED

    def _control_state(self, state):
        if state == KazooState.LOST:
            self._reregister.set()
        elif state == KazooState.SUSPENDED:
            self.log.warning('control session suspended: leaders stop writing until it is back')
        elif state == KazooState.CONNECTED and self._reregister.is_set():
            self.log.info('control session re-established')
        return False

    def _register(self):
        info = {'hostname': socket.gethostname(), 'pid': os.getpid(), 'version': DAEMON_VERSION,
                'metrics_address': self.config['metrics_address'], 'health_address': self.config['metrics_address'],
                'started_at': self.started_at}
        for attempt in range(100):
            try:
                self.store.register_daemon(self.daemon_id, info)
                self._registered = True
                return
            except NodeExistsError:
                # our previous process (kill -9, restart) until its session expires
                if attempt == 0:
                    self.log.warning('daemon id %s is still registered by an older session; waiting for it to expire', self.daemon_id)
                if self.shutdown_event.wait(1.0):
                    return
            except ZkMigrationError as exc:
                self.log.warning('registering the daemon failed: %s', exc)
                if self.shutdown_event.wait(1.0):
                    return
        self.store.register_daemon(self.daemon_id, info, replace=True)
        self._registered = True

    # -- tasks --------------------------------------------------------------------
    def _watch_tasks(self):
        tasks_dir = _records.join_path(self.config['root'], _records.TASKS)
        self._tasks_watch = ChildrenWatch(self.control_client, tasks_dir, self._on_task_list)

    def _on_task_list(self, names):
        if self.shutdown_event.is_set():
            return False
        for name in names:
            if name not in self._task_watches:
                # the entry exists before the watches: their first callback runs inside the DataWatch constructor
                entry = self._task_watches[name] = {'active': True}
                entry['spec'] = DataWatch(self.control_client, self.store.task_path(name), self._task_data_callback(name, entry))
                entry['cutover'] = DataWatch(self.control_client, self.store.cutover_path(name), self._cutover_callback(name, entry))
        for name in list(self._task_watches):
            if name not in names:
                self._task_watches.pop(name)['active'] = False
                self._set_spec(name, None)
        return True

    def _task_data_callback(self, name, entry):
        def callback(data, _stat):
            if self.shutdown_event.is_set() or not entry['active']:
                return False
            if data is None:
                self._set_spec(name, None)
                return True
            try:
                spec = self.store.decode_task(name, data)
            except ZkMigrationError as exc:
                self.log.error('task %s: its spec cannot be read: %s', name, exc, extra={'task': name})
                return True
            self._set_spec(name, spec)
            return True
        return callback

    def _cutover_callback(self, name, entry):
        state = {'seen': False, 'last': None}

        def callback(data, _stat):
            if self.shutdown_event.is_set() or not entry['active']:
                return False
            first = not state['seen']
            changed = data != state['last']
            state['seen'], state['last'] = True, data
            if not first and changed:
                with self.runners_lock:
                    runner = self.runners.get(name)
                if runner is not None:
                    runner.cutover_changed()
            return True
        return callback

    def _refresh_tasks(self):
        try:
            tasks = self.store.list_tasks()
        except ZkMigrationError as exc:
            self.log.warning('listing tasks failed: %s', exc)
            return
        for name, spec in tasks.items():
            runner = self.runners.get(name)
            if runner is None or _spec_key(runner.spec) != _spec_key(spec) or (runner.spec or {}).get('state') != spec.get('state'):
                self._set_spec(name, spec)
        for name in list(self.runners):
            if name not in tasks:
                self._set_spec(name, None)

    def _set_spec(self, name, spec):
        with self.runners_lock:
            if self.shutdown_event.is_set():
                return
            runner = self.runners.get(name)
            if runner is None:
                if spec is None:
                    return
                runner = TaskRunner(self, name)
                runner.update_spec(spec)
                self.runners[name] = runner
                self.log.info('task %s: joining its election (state %s)', name, spec.get('state'), extra={'task': name})
                runner.start()
                return
            if spec is None:
                self.log.info('task %s: deleted; leaving it', name, extra={'task': name})
                runner.update_spec(None)
                runner.stop()
                del self.runners[name]
                return
            runner.update_spec(spec)

    # -- signals ------------------------------------------------------------------
    def _reload_credentials(self):
        path = self.config.get('credentials_file')
        if not path:
            self.log.info('SIGHUP: no credentials_file configured, nothing to reload')
            return
        try:
            if self.credentials is None:
                self.credentials = _credentials.CredentialStore.from_file(path)
            else:
                before = dict((name, self.credentials.resolve(name)) for name in self.credentials.names())
                names = self.credentials.reload()
                after = dict((name, self.credentials.resolve(name)) for name in names)
                if before == after:
                    self.log.info('SIGHUP: credentials file re-read, nothing changed')
                    return
        except ConfigError as exc:
            self.log.error('SIGHUP: the credentials file was not reloaded, the previous credentials stay in use: %s', exc)
            return
        self.log.info('SIGHUP: credentials reloaded (%s); tasks reconnect with them', ', '.join(self.credentials.names()))
        with self.runners_lock:
            for runner in self.runners.values():
                runner.changed.set()          # also wakes a task waiting to retry after an error
                engine = runner.engine
                if engine is not None:
                    engine.stop('credentials_reloaded')

    def _shutdown(self):
        self.shutdown_event.set()
        with self.runners_lock:
            runners = list(self.runners.values())
        for runner in runners:
            runner.stop()
        deadline = time.monotonic() + 20.0
        for runner in runners:
            runner.join(max(0.1, deadline - time.monotonic()))
        if self.control_client is not None:
            if self._registered:
                try:
                    self.store.unregister_daemon(self.daemon_id)
                except Exception:  # pylint: disable=broad-except
                    pass
            _client.stop_quietly(self.control_client)
        if self.http_server is not None:
            self.http_server.shutdown()
            self.http_server.server_close()
        self.log.info('daemon %s stopped', self.daemon_id)

    # -- health -------------------------------------------------------------------
    def health(self):
        """The /healthz answer: ok while the control session is up; what each task does here."""
        connected = self.control_connected()
        with self.runners_lock:
            tasks = dict((name, runner.describe()) for name, runner in self.runners.items())
        status = 'ok' if connected and not self.shutdown_event.is_set() else 'unavailable'
        return {'status': status, 'daemon_id': self.daemon_id, 'version': DAEMON_VERSION, 'control_connected': connected,
                'uptime_seconds': round(time.time() - self.started_at, 1), 'tasks': tasks}


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def _connect_store(config):
    credentials = load_credentials(config)
    client = _client.connect(_registration.resolve(config['control'], credentials))
    try:
        store = _control.ControlStore(client, config['root'], **config['control_acl'])
        store.check_acls()
    except BaseException:
        _client.stop_quietly(client)
        raise
    return client, store


def _fmt_age(timestamp):
    if not timestamp:
        return '-'
    age = max(0.0, time.time() - timestamp)
    return '%.0fs ago' % age if age < 120 else '%.0fm ago' % (age / 60)


def collect_status(store):
    """Tasks with their status, leader and contenders, and the live daemons (for ``status``)."""
    tasks = []
    for name, spec in sorted(store.list_tasks().items()):
        try:
            status = store.get_status(name)
        except ZkMigrationError as exc:
            status = {'phase': 'unknown', 'last_error': str(exc)}
        tasks.append({'name': name, 'source': spec['source'], 'destination': spec['destination'], 'mode': spec['mode'],
                      'state': spec['state'], 'paths': spec['paths'], 'leader': store.current_leader(name),
                      'contenders': store.contenders(name), 'status': status,
                      'cutover': store.get_cutover(name)})
    return {'tasks': tasks, 'daemons': store.list_daemons()}


def format_status_table(report):
    """The human-readable table ``status`` prints."""
    headers = ['TASK', 'MODE', 'STATE', 'PHASE', 'LEADER', 'NODES', 'S->D', 'D->S', 'CONFLICTS', 'LAG', 'HEARTBEAT', 'LAST ERROR']
    rows = []
    for task in report['tasks']:
        status = task['status'] or {}
        total = status.get('nodes_total')
        nodes = '%s/%s' % (status.get('nodes_done', '-'), total if total is not None else '?') if status else '-'
        lag = status.get('lag_ms')
        rows.append([task['name'], task['mode'], task['state'], status.get('phase') or '-', task['leader'] or '-', nodes,
                     str(status.get('events_source_to_destination', '-')), str(status.get('events_destination_to_source', '-')),
                     str(status.get('conflicts', '-')), '-' if lag is None else '%.0fms' % lag, _fmt_age(status.get('heartbeat')),
                     (status.get('last_error') or '-')[:60]])
    widths = [max(len(str(row[i])) for row in [headers] + rows) for i in range(len(headers))]
    lines = ['  '.join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in [headers] + rows]
    if not rows:
        lines.append('(no tasks)')
    lines.append('')
    daemons = report['daemons']
    lines.append('daemons alive: %s' % (', '.join('%s (%s, metrics %s)' % (name, info.get('hostname'), info.get('metrics_address') or '-')
                                                  for name, info in sorted(daemons.items())) or 'none'))
    return '\n'.join(lines)


def cmd_status(config, as_json=False, out=None):
    out = out or sys.stdout
    client, store = _connect_store(config)
    try:
        report = collect_status(store)
    finally:
        _client.stop_quietly(client)
    if as_json:
        out.write(json.dumps(report, indent=2, sort_keys=True, default=str) + '\n')
    else:
        out.write(format_status_table(report) + '\n')
    return EXIT_OK


def cmd_check_config(config, offline=False, out=None):
    """Validate the config and credentials; unless ``offline``, connect to the control ensemble and read the root."""
    out = out or sys.stdout
    credentials = load_credentials(config)
    lines = ['config: ok (daemon_id %s, root %s, metrics %s)' % (config['daemon_id'], config['root'], config['metrics_address'] or 'off')]
    if credentials is not None:
        lines.append('credentials file: ok (%d credential(s): %s)' % (len(credentials), ', '.join(credentials.names()) or '-'))
    spec = _registration.resolve(config['control'], credentials)
    _client.ClusterSpec.from_dict(spec)
    if not offline:
        client = _client.connect(spec)
        try:
            exists = client.exists(config['root']) is not None
            lines.append('control ensemble: reachable (%s); control root %s %s' % (
                ','.join(config['control']['hosts']), config['root'], 'exists' if exists else 'does not exist yet (created on first run)'))
            # the daemon would refuse an unauthenticated session or an open control store: so does the check
            for warning in _control.ControlStore(client, config['root'], **config['control_acl']).check_acls():
                lines.append('warning: %s' % warning)
        finally:
            _client.stop_quietly(client)
    out.write('\n'.join(lines) + '\n')
    return EXIT_OK


def build_parser():
    parser = argparse.ArgumentParser(prog='zookeeper-migration-daemon', description='zookeeper.migration sync daemon')
    sub = parser.add_subparsers(dest='command')
    run = sub.add_parser('run', help='run the daemon (foreground; logs JSON lines on stdout)')
    run.add_argument('--config', required=True, help='the daemon config file (YAML or JSON)')
    status = sub.add_parser('status', help='tasks and their status from the control store')
    status.add_argument('--config', required=True)
    status.add_argument('--json', action='store_true', help='print JSON instead of a table')
    check = sub.add_parser('check-config', help='validate the config and credentials files (and reach the control ensemble)')
    check.add_argument('--config', required=True)
    check.add_argument('--offline', action='store_true', help='only validate the files, do not connect')
    return parser


def main(argv=None):
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    if not HAS_KAZOO:
        sys.stderr.write('error: the kazoo Python library is required: %s\n' % KAZOO_IMPORT_ERROR.strip().splitlines()[-1])
        return EXIT_FAILURE
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write('error: %s\n' % exc)
        return EXIT_CONFIG
    if args.command == 'check-config':
        try:
            return cmd_check_config(config, offline=args.offline)
        except ConfigError as exc:
            sys.stderr.write('error: %s\n' % exc)
            return EXIT_CONFIG
        except ZkMigrationError as exc:
            sys.stderr.write('error: %s\n' % exc)
            return EXIT_FAILURE
    if args.command == 'status':
        try:
            return cmd_status(config, as_json=args.json)
        except ZkMigrationError as exc:
            sys.stderr.write('error: %s\n' % exc)
            return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_FAILURE
    setup_logging(config['log_level'], config['daemon_id'])
    try:
        credentials = load_credentials(config)
        daemon = Daemon(config, credentials)
        return daemon.run()
    except ConfigError as exc:
        LOG.error('%s', exc)
        return EXIT_CONFIG
    except ZkMigrationError as exc:
        LOG.error('%s', exc)
        return EXIT_FAILURE


if __name__ == '__main__':
    raise SystemExit(main())
