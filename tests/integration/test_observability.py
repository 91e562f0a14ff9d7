# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shipped Grafana dashboard and Prometheus alert rules (extensions/observability).

The files are checked on their own (JSON structure, metric names against the
daemon's metric definitions, runbook links against docs/observability.md), then
against the real thing: two real daemon processes sync a task between the
real test clusters, a real Prometheus (Debian's ``prometheus``) scrapes them
every second with the alert rules loaded, and every query of every dashboard
panel runs through Prometheus' HTTP API. Grafana's server is not installable
here; what Grafana would send is the panel's expression with its variables
filled in, which is what the test sends.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from tests.harness.zkharness import free_port
from tests.integration.sync_support import REPO_ROOT, wait_for

pytestmark = pytest.mark.integration

OBSERVABILITY = os.path.join(REPO_ROOT, 'extensions', 'observability')
DASHBOARD = os.path.join(OBSERVABILITY, 'grafana', 'zookeeper-migration.json')
RULES = os.path.join(OBSERVABILITY, 'prometheus', 'zookeeper-migration.rules.yml')
RULES_TEST = os.path.join(OBSERVABILITY, 'prometheus', 'zookeeper-migration.rules.test.yml')
DAEMON_SOURCE = os.path.join(REPO_ROOT, 'plugins', 'module_utils', '_daemon.py')
DOC = os.path.join(REPO_ROOT, 'docs', 'observability.md')
JOB = 'zookeeper-migration'      # the scrape job the rules expect (docs/observability.md)

# Panels whose series exist as soon as a task runs on a live fleet: their queries must return data.
MUST_HAVE_DATA = {
    'Daemons up', 'Control sessions', 'Daemon versions', 'Daemons up over time',
    'Phase per task', 'Leader per task', 'Initial-sync progress', 'Nodes done / total',
    'Sync lag', 'Queue depth', 'Tracked paths', 'Stuck paths', 'Events applied, each way',
}
# Metrics a query may use that are Prometheus' own, not the daemon's.
PROMETHEUS_METRICS = {'up'}
PROMQL_WORDS = {
    'sum', 'max', 'min', 'count', 'avg', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless',
    'rate', 'irate', 'increase', 'delta', 'histogram_quantile', 'le', 'bool', 'offset', 'clamp_min', 'clamp_max', 'absent',
}


def _load_dashboard():
    with open(DASHBOARD) as handle:
        return json.load(handle)


def _load_rules():
    with open(RULES) as handle:
        return yaml.safe_load(handle)


def _query_panels(dashboard):
    return [panel for panel in dashboard['panels'] if panel['type'] != 'row']


def _daemon_metric_names():
    """{exported sample name} from the metric definitions in _daemon.py: Counter x -> x_total, Histogram x -> x_bucket/_sum/_count."""
    with open(DAEMON_SOURCE) as handle:
        source = handle.read()
    names = set()
    for kind, name in re.findall(r"\b(Counter|Gauge|Histogram)\(\s*'(zkmigration_\w+)'", source):
        if kind == 'Counter':
            names.add(name + '_total')
        elif kind == 'Histogram':
            names.update(name + suffix for suffix in ('_bucket', '_sum', '_count'))
        else:
            names.add(name)
    return names


def _metric_names(expr):
    """The metric names an expression selects (identifiers outside label matchers and strings, not PromQL words)."""
    stripped = re.sub(r'\{[^}]*\}', '', expr)                     # label matchers
    stripped = re.sub(r'"[^"]*"', '', stripped)                    # strings
    stripped = re.sub(r'\[[^\]]*\]', '', stripped)                 # ranges
    stripped = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', ' ', stripped)
    words = set(re.findall(r'[A-Za-z_:][A-Za-z0-9_:]*', stripped))
    return sorted(word for word in words if word not in PROMQL_WORDS and not word.startswith('$'))


def _fill(expr, task):
    """The expression as Grafana sends it for one task: a multi-value $task is a regex, its special characters escaped as
    Grafana's Prometheus data source does (a doubled backslash: PromQL strings take Go escapes)."""
    value = re.sub(r'([\\^$*+?.()|{}\[\]])', r'\\\\\1', task)
    return expr.replace('$__rate_interval', '1m').replace('$job', JOB).replace('$task', value)


def _api(port, path, **params):
    url = 'http://127.0.0.1:%d%s' % (port, path)
    if params:
        url += '?' + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read().decode('utf-8'))
    except urllib.error.HTTPError as exc:         # 400/422 on a bad query: the body says why
        return json.loads(exc.read().decode('utf-8'))


# --------------------------------------------------------------------------
# the files themselves
# --------------------------------------------------------------------------

def test_dashboard_structure():
    dashboard = _load_dashboard()
    assert 36 <= dashboard['schemaVersion'] <= 41
    assert dashboard['uid'] and dashboard['title']
    variables = dict((var['name'], var) for var in dashboard['templating']['list'])
    assert variables['datasource']['type'] == 'datasource' and variables['datasource']['query'] == 'prometheus'
    task = variables['task']
    assert task['type'] == 'query' and task['datasource']['uid'] == '${datasource}'
    assert task['query']['query'].startswith('label_values(') and task['query']['query'].endswith(', task)')
    assert task['multi'] and task['includeAll']
    ids = [panel['id'] for panel in dashboard['panels']]
    assert len(ids) == len(set(ids)), 'panel ids repeat: %s' % ids
    titles = [panel['title'] for panel in _query_panels(dashboard)]
    assert len(titles) == len(set(titles)), 'panel titles repeat: %s' % titles
    assert MUST_HAVE_DATA <= set(titles), 'panels the live test expects are gone: %s' % (MUST_HAVE_DATA - set(titles))
    for panel in _query_panels(dashboard):
        assert panel['datasource'] == {'type': 'prometheus', 'uid': '${datasource}'}, panel['title']
        assert panel['targets'], panel['title']
        assert set(panel['gridPos']) == {'h', 'w', 'x', 'y'} and panel['gridPos']['x'] + panel['gridPos']['w'] <= 24, panel['title']
        ref_ids = [target['refId'] for target in panel['targets']]
        assert len(ref_ids) == len(set(ref_ids)), panel['title']
        for target in panel['targets']:
            assert target['datasource'] == panel['datasource'], panel['title']
            assert target['expr'].strip(), panel['title']
            # every per-task panel follows the task picker
            if set(_metric_names(target['expr'])) - {'up', 'zkmigration_daemon_info', 'zkmigration_control_connected'}:
                assert 'task=~"$task"' in target['expr'], (panel['title'], target['expr'])


def test_dashboard_and_rules_use_only_exported_metrics():
    exported = _daemon_metric_names()
    # the gauges of issue 13.8 are among them (the parse works)
    assert {'zkmigration_sync_nodes_done', 'zkmigration_sync_nodes_total', 'zkmigration_sync_eta_seconds',
            'zkmigration_task_leader', 'zkmigration_sync_events_total', 'zkmigration_full_reconcile_seconds_bucket'} <= exported
    known = exported | PROMETHEUS_METRICS
    used = {}
    for panel in _query_panels(_load_dashboard()):
        for target in panel['targets']:
            for name in _metric_names(target['expr']):
                used.setdefault(name, []).append('panel %r' % panel['title'])
    for group in _load_rules()['groups']:
        for rule in group['rules']:
            for name in _metric_names(rule['expr']):
                used.setdefault(name, []).append('alert %s' % rule['alert'])
    unknown = dict((name, where) for name, where in used.items() if name not in known)
    assert not unknown, 'metrics the daemon does not export: %s' % unknown
    assert 'zkmigration_sync_nodes_done' in used and 'up' in used


def test_rules_annotations_and_runbooks():
    with open(DOC) as handle:
        doc = handle.read()
    anchors = set(re.sub(r'[^a-z0-9 _-]', '', line.lstrip('#').strip().lower()).replace(' ', '-')
                  for line in doc.splitlines() if line.startswith('#'))
    rules = [rule for group in _load_rules()['groups'] for rule in group['rules']]
    names = [rule['alert'] for rule in rules]
    assert len(names) == len(set(names))
    with open(RULES_TEST) as handle:
        tested = handle.read()
    for rule in rules:
        annotations = rule['annotations']
        assert annotations['summary'] and annotations['description'], rule['alert']
        assert rule['labels']['severity'] in ('warning', 'critical'), rule['alert']
        url = annotations['runbook_url']
        assert url.startswith('https://github.com/zookeeper-migration/zookeeper.migration/blob/main/docs/observability.md#'), url
        assert url.rsplit('#', 1)[1] in anchors, '%s: docs/observability.md has no heading for %s' % (rule['alert'], url)
        # the promtool tests evaluate each alert at least twice: once not firing, once firing
        assert tested.count('alertname: %s\n' % rule['alert']) >= 2, rule['alert']
        assert rule['alert'] in doc


def test_progress_gauges_and_forgotten_tasks():
    """The daemon's progress gauges follow the status (unknown total or ETA: no series), a deleted task's series go."""
    from ansible_collections.zookeeper.migration.plugins.module_utils import _daemon
    metrics = _daemon.PrometheusMetrics('d1')

    def samples():
        text = metrics.render()[0].decode()
        return dict((line.rsplit(' ', 1)[0], float(line.rsplit(' ', 1)[1])) for line in text.splitlines()
                    if line and not line.startswith('#') and 'task="t1"' in line)
    metrics.progress('t1', 0, None, None)
    assert samples() == {'zkmigration_sync_nodes_done{task="t1"}': 0.0}
    metrics.progress('t1', 250, 1000, 30.5)
    assert samples()['zkmigration_sync_nodes_total{task="t1"}'] == 1000.0
    assert samples()['zkmigration_sync_eta_seconds{task="t1"}'] == 30.5
    metrics.progress('t1', 1000, 1000, None)
    assert 'zkmigration_sync_eta_seconds{task="t1"}' not in samples()
    metrics.gauges('t1', 0.5, 3, 1000, 'streaming', 0)
    metrics.set_leader('t1', True)
    metrics.event('t1', 'source_to_destination', 5)
    metrics.error('t1', 'auth')
    metrics.latency('t1', 0.01)
    metrics.full_reconcile('t1', 2.0)
    metrics.set_phase('t2', 'standby')
    assert samples()['zkmigration_sync_phase{phase="streaming",task="t1"}'] == 1.0
    metrics.forget('t1')
    assert samples() == {}
    assert 'zkmigration_sync_phase{phase="standby",task="t2"} 1.0' in metrics.render()[0].decode()
    metrics.forget('never-seen')
    metrics.event('t1', 'source_to_destination')     # a task created again under the same name counts from zero
    assert samples()['zkmigration_sync_events_total{direction="source_to_destination",task="t1"}'] == 1.0


# --------------------------------------------------------------------------
# against a live Prometheus scraping live daemons
# --------------------------------------------------------------------------

def _prometheus_binary():
    binary = shutil.which('prometheus') or ('/usr/bin/prometheus' if os.access('/usr/bin/prometheus', os.X_OK) else None)
    if binary is None:
        pytest.fail('the prometheus binary is not installed: run `make deps` (it installs the Debian package prometheus, '
                    'which also provides promtool)', pytrace=False)
    return binary


class _Prometheus(object):
    """A real Prometheus server on 127.0.0.1 scraping the given targets every second, with the shipped rules."""

    def __init__(self, directory, targets):
        self.binary = _prometheus_binary()
        self.port = free_port()
        self.directory = directory
        self.config_path = os.path.join(directory, 'prometheus.yml')
        self.log_path = os.path.join(directory, 'prometheus.log')
        config = {
            'global': {'scrape_interval': '1s', 'scrape_timeout': '1s', 'evaluation_interval': '1s'},
            'rule_files': [RULES],
            'scrape_configs': [{'job_name': JOB, 'static_configs': [{'targets': list(targets)}]}],
        }
        with open(self.config_path, 'w') as handle:
            yaml.safe_dump(config, handle)
        self.process = None

    def start(self):
        log = open(self.log_path, 'ab')
        try:
            self.process = subprocess.Popen(
                [self.binary, '--config.file=%s' % self.config_path, '--storage.tsdb.path=%s' % os.path.join(self.directory, 'tsdb'),
                 '--web.listen-address=127.0.0.1:%d' % self.port, '--log.level=warn'],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        wait_for(self._ready, timeout=20, interval=0.2, what='prometheus ready on port %d' % self.port)
        return self

    def _ready(self):
        assert self.process.poll() is None, 'prometheus exited (%s)\n%s' % (self.process.returncode, self.log())
        try:
            with urllib.request.urlopen('http://127.0.0.1:%d/-/ready' % self.port, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def api(self, path, **params):
        return _api(self.port, path, **params)

    def query(self, expr):
        return self.api('/api/v1/query', query=expr)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log(self):
        try:
            with open(self.log_path, 'rb') as handle:
                return handle.read().decode('utf-8', 'replace')[-4000:]
        except OSError:
            return ''


@pytest.mark.timeout(120)
def test_dashboard_queries_and_rules_on_a_live_fleet(sync_env, tmp_path):
    binary_check = _prometheus_binary()       # fail first, before starting daemons, when it is missing
    assert binary_check
    env = sync_env
    src, base = env.src, env.base
    txn = src.transaction()
    for index in range(40):
        txn.create('%s/n%03d' % (base, index), b'value %d' % index)
    assert not [r for r in txn.commit() if isinstance(r, Exception)]
    ports = [free_port(), free_port()]
    env.put_task(mode='one_way')
    env.daemon('d1', metrics_port=ports[0])
    env.daemon('d2', metrics_port=ports[1])
    env.streaming()
    env.in_sync()

    # every metric family the dashboard and rules use is exported by a live daemon (HELP/TYPE lines, even without samples)
    scraped = set()
    for port in ports:
        text = urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=5).read().decode()
        for name, kind in re.findall(r'^# TYPE (\S+) (\S+)$', text, re.M):
            if kind == 'counter':
                scraped.add(name if name.endswith('_total') else name + '_total')   # TYPE names x_total (or x before 0.20)
            elif kind == 'histogram':
                scraped.update(name + suffix for suffix in ('_bucket', '_sum', '_count'))
            else:
                scraped.add(name)
    assert _daemon_metric_names() <= scraped, 'defined but not exported: %s' % (_daemon_metric_names() - scraped)

    prometheus = _Prometheus(str(tmp_path), ['127.0.0.1:%d' % port for port in ports])
    try:
        prometheus.start()
        started = time.monotonic()

        def scraped_both():
            result = prometheus.query('up{job="%s"} == 1' % JOB)
            return result.get('status') == 'success' and len(result['data']['result']) == 2
        wait_for(scraped_both, timeout=20, interval=0.2, what='both daemons scraped')

        # changes after the first scrapes: the events counter rises between two samples
        for index in range(10):
            src.set('%s/n%03d' % (base, index), b'changed %d' % index)
        env.in_sync()

        dashboard = _load_dashboard()
        empty = []
        for panel in _query_panels(dashboard):
            for target in panel['targets']:
                expr = _fill(target['expr'], env.task)
                assert '$' not in expr, 'a variable the test does not fill in: %s' % expr

                def answer():
                    result = prometheus.query(expr)
                    if result.get('status') != 'success':
                        raise ValueError('panel %r: the query is refused: %s\n%s' % (panel['title'], expr, result))
                    if panel['title'] in MUST_HAVE_DATA and not result['data']['result']:
                        return None
                    return result
                try:
                    result = wait_for(answer, timeout=15, interval=0.5, what='data for panel %r' % panel['title'])
                except AssertionError:
                    empty.append((panel['title'], expr))
                    continue
                if panel['title'] in MUST_HAVE_DATA and '$task' in target['expr']:
                    tasks = set(series['metric'].get('task') for series in result['data']['result'])
                    assert tasks == {env.task}, (panel['title'], result['data']['result'])
        assert not empty, 'panels without data on a live fleet:\n%s\n%s' % ('\n'.join('%r: %s' % item for item in empty), env.logs())

        # what the panels show for this task: one leader of the two daemons, streaming, fully in sync
        leader = prometheus.query(_fill('zkmigration_task_leader{task=~"$task"} == 1', env.task))['data']['result']
        assert len(leader) == 1
        phases = prometheus.query(_fill('zkmigration_sync_phase{task=~"$task"} == 1', env.task))['data']['result']
        assert sorted(series['metric']['phase'] for series in phases) == ['standby', 'streaming']
        progress = [p for p in _query_panels(dashboard) if p['title'] == 'Initial-sync progress'][0]['targets'][0]['expr']
        ratio = wait_for(lambda: [series for series in prometheus.query(_fill(progress, env.task))['data']['result']
                                  if float(series['value'][1]) == 1.0],
                         timeout=15, interval=0.5, what='progress 100%')
        assert ratio

        # every rule group loaded and evaluated without error; a healthy fleet raises no alert
        expected_groups = [group['name'] for group in _load_rules()['groups']]

        def rules_ok():
            groups = prometheus.api('/api/v1/rules')['data']['groups']
            rules = [rule for group in groups for rule in group['rules']]
            if sorted(group['name'] for group in groups) != sorted(expected_groups):
                return None
            if any(rule['health'] != 'ok' for rule in rules):
                bad = [(rule['name'], rule['health'], rule.get('lastError')) for rule in rules if rule['health'] != 'ok']
                assert all(health == 'unknown' for _name, health, _error in bad), bad
                return None
            return groups
        groups = wait_for(rules_ok, timeout=15, interval=0.5, what='every rule evaluated')
        assert sum(len(group['rules']) for group in groups) == sum(len(group['rules']) for group in _load_rules()['groups'])
        active = [(alert['labels'], alert['state']) for alert in prometheus.api('/api/v1/alerts')['data']['alerts']]
        assert not active, active
        elapsed = time.monotonic() - started
        print('prometheus part: %.1fs' % elapsed)
    except BaseException:
        print(prometheus.log())
        raise
    finally:
        prometheus.stop()
