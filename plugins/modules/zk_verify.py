# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: zk_verify
short_description: Verify that the persistent znodes of two ZooKeeper clusters match
version_added: 0.1.0
description:
  - Step 3 of a migration. Compares the persistent znodes under O(paths) on a source and a
    destination cluster, namely structure (missing and extra znodes), data (byte-exact, by hash),
    ACLs (as sets of entries), node type (ephemeral on one side, persistent on the other) and
    sequential counters (a persistent parent whose destination sequential counter is behind the
    source's, so a new sequential create there could collide with a copied name or hand out an
    ID the source already handed out; RV(counts.counter_behind) for parents holding sequential
    children, RV(counts.counter_behind_persistent) for parents with no child left on the source,
    such as ID generators and drained queues).
  - Other parents with a counter behind, those holding ephemeral children (locks, registrations)
    and those whose own non-sequential children churned, are listed in RV(counter_behind_ephemeral),
    as information; they do not make RV(in_sync) false.
  - Ephemeral znodes are never differences (they belong to client sessions and are not
    migrated); they are counted in RV(counts.ephemeral_skipped).
  - Spot checks (O(spot_check)) re-read random znodes live from both sides and compare them
    byte for byte. O(settle) re-checks differing paths after a delay so that changes a running
    sync has not carried over yet are not reported as loss.
  - Never changes anything on either cluster; re-running it is the normal way to re-check.
  - With O(report_dir), each run also leaves a report people read, kept next to the earlier ones, a self-contained HTML
    page (verdict, counts per kind of difference, both sides of each differing path, counters, spot checks, settle,
    timings) and the JSON report beside it, named C(<task or source-destination>-<UTC time>.html) and C(.json).
  - Works with registered cluster names (looked up in the control store), with inline
    connection specs and without a control store, or with a sync task's name
    (O(task)), which supplies the clusters, paths and excludes.
author:
  - zookeeper.migration contributors (@zookeeper-migration)
extends_documentation_fragment:
  - zookeeper.migration.zk
  - zookeeper.migration.zk.action_group
attributes:
  check_mode:
    support: full
    description:
      - Runs the same in check mode (it only reads). When a cluster or task name is not in the
        control store, check mode warns, reports what it would verify and marks the task skipped
        instead of failing, since an earlier task of the same check run would have registered it.
      - In check mode O(report_dir) writes nothing (not even the directory); RV(report_html) and RV(report_json) name the
        files a run would write. O(report) is written in check mode too.
  diff_mode:
    support: none
    description:
      - Changes nothing, so there is no diff; the differences found are in RV(differences).
options:
  source:
    description:
      - The source cluster. Either the name of a registered cluster
        (M(zookeeper.migration.zk_cluster)) or an inline connection spec, a dict with C(hosts)
        (list of C(host:port)) and optionally C(name), C(chroot), C(session_timeout),
        C(connect_timeout), C(auth) (C(scheme), C(username), C(credential) or C(password)) and
        C(tls) (C(enabled), C(ca_file), C(cert_file), C(key_file), C(key_password) or
        C(credential), C(verify), C(check_hostname)).
      - Secrets given inline are masked in logs and results, but prefer naming a credential of O(credentials).
      - Required unless O(task) is given.
    type: raw
  destination:
    description:
      - The destination cluster, in the same forms as O(source).
      - Required unless O(task) is given.
    type: raw
  task:
    description:
      - Name of a sync task in the control store. Its source, destination, paths and excludes are
        verified (O(paths) replaces the task's paths, O(exclude) adds to its excludes).
      - Mutually exclusive with O(source) and O(destination).
    type: str
  paths:
    description:
      - Absolute paths of the subtrees to compare (the same path on both sides).
      - Default is the task's paths with O(task), else C(/).
      - A source path that does not exist fails the task; a destination path that does not exist
        makes everything under it missing.
    type: list
    elements: str
  exclude:
    description:
      - Glob patterns on absolute paths (C(*) also matches C(/)); a matching znode and its subtree
        are left out on both sides.
      - C(/zookeeper) and the control root (O(control.root)) are always left out.
    type: list
    elements: str
    default: []
  compare:
    description:
      - What to compare besides structure (missing and extra znodes, always compared).
      - V(data) byte-exact data, V(acl) ACLs, V(type) ephemeral vs persistent, V(counters)
        sequential counters of persistent parents.
    type: list
    elements: str
    choices: [data, acl, type, counters]
    default: [data, acl, type, counters]
  spot_check:
    description:
      - Number of random persistent source znodes re-read live from both sides and compared
        byte for byte after the snapshot comparison. V(0) turns spot checks off.
    type: int
    default: 20
  settle:
    description:
      - Seconds to wait before re-checking the paths that differ. Only differences that are
        still there afterwards are reported. V(0) reports the first comparison.
      - Use it while a sync task is running, so that in-flight changes are not reported as loss.
    type: float
    default: 0
  report:
    description:
      - Path of a JSON report to write on the host running the module, with every difference
        (not only the first O(max_diffs)), the counts and the timings.
      - Written in check mode too (it is the result of the verification, not a change to a cluster).
      - Its directory must exist. The file is replaced on each run; O(report_dir) keeps one report per run.
      - It also holds C(details), both sides of the first O(report_max_paths) paths of each kind (see O(report_dir)).
    type: path
  report_dir:
    description:
      - Directory on the host running the module where each run writes a new pair of reports,
        C(<stem>-<UTC time>.html) and C(<stem>-<UTC time>.json), the stem being the O(task) name or
        C(<source>-<destination>) (characters other than letters, digits, C(.), C(_) and C(-) become C(_)).
      - An existing file is never replaced; when the name is taken (two runs in the same second), the stem gets
        C(-2), C(-3)... Files are written atomically, mode C(0600); the directory is created, mode C(0700), when missing.
      - The HTML page is self-contained (inline CSS, no external asset, no script) and shows the verdict, the clusters,
        paths, task and time, the count of each kind of difference, each differing path with both sides' data size,
        the hex of the first O(report_data_prefix) bytes, version, cversion, aversion, children, mtime (UTC) and ACL,
        the sequential counters, spot checks, settle and timings. Every name is HTML-escaped; data is never shown raw.
      - The JSON report has every differing path (not only the listed ones) and the same C(details).
      - The details are read live from both sides right after the comparison (O(report_max_paths) paths per kind at
        most); when they cannot be read the reports say why and are written all the same.
      - Nothing is written in check mode.
    type: path
  report_max_paths:
    description:
      - How many paths of each kind of difference the HTML page lists with both sides' details (the rest is counted as
        "N more"; the JSON report lists every path, with details for these). Bounds the extra live reads too.
      - Applies to O(report) and O(report_dir).
    type: int
    default: 1000
  report_data_prefix:
    description:
      - How many leading bytes of each listed znode's data the reports show, as hex. V(0) shows sizes only, for data
        that may hold secrets (the files are mode C(0600) all the same).
    type: int
    default: 16
  max_diffs:
    description:
      - How many differing paths of each kind to return in RV(differences).
    type: int
    default: 100
  fail_on_diff:
    description:
      - Fail the task when the clusters differ. With V(false), differences are only reported
        (RV(in_sync) is V(false)).
    type: bool
    default: true
notes:
  - Node types. ZooKeeper shows container and TTL znodes to clients as persistent
    (C(ephemeralOwner) 0), so they are compared as persistent.
  - zxids, ctime and mtime are per cluster and are never compared; neither is C(numChildren),
    which counts ephemeral children.
seealso:
  - module: zookeeper.migration.zk_cluster
  - module: zookeeper.migration.zk_sync_info
'''

EXAMPLES = r'''
- name: Verify a running sync task, allowing 5 seconds for in-flight changes
  zookeeper.migration.zk_verify:
    task: app-config
    settle: 5
    spot_check: 200
    report_dir: "{{ playbook_dir }}/reports"
  register: verification

- name: Show where the report is
  ansible.builtin.debug:
    msg: "verification report: {{ verification.report_html }}"

- name: Verify two registered clusters under /app, reporting only
  zookeeper.migration.zk_verify:
    source: legacy
    destination: managed
    paths: [/app]
    exclude: ['/app/locks', '/app/*/leader-election']
    fail_on_diff: false
  register: verification

- name: Verify without a control store (inline connection specs)
  zookeeper.migration.zk_verify:
    source:
      hosts: [zk1.example.com:2181]
      auth: {scheme: digest, credential: legacy-super}
    destination:
      hosts: [mse-zk.example.com:2181]
      auth: {scheme: digest, credential: migrator}
    credentials: "{{ vault_zk_credentials }}"
    paths: [/config]
    compare: [data, type]
'''

RETURN = r'''
in_sync:
  description: True when nothing differs (after settling) and every spot check matched. Null when skipped in check mode.
  returned: always
  type: bool
  sample: true
counts:
  description: Counts of znodes and of each kind of difference.
  returned: when the verification ran
  type: dict
  contains:
    source_nodes:
      description: Persistent source znodes in scope.
      type: int
    destination_nodes:
      description: Persistent destination znodes in scope.
      type: int
    missing:
      description: On the source, not on the destination.
      type: int
    extra:
      description: On the destination only.
      type: int
    data_mismatch:
      description: Data differs.
      type: int
    acl_mismatch:
      description: ACLs differ (as sets).
      type: int
    type_mismatch:
      description: Ephemeral on one side, persistent on the other.
      type: int
    counter_behind:
      description: Parents holding persistent sequential children whose destination sequential counter is behind the source's.
      type: int
    counter_behind_persistent:
      description:
        - Persistent parents with no child left on the source whose destination sequential counter (the suffix its next
          sequential child gets) is behind the source's, such as ID generators (sequential children created and deleted)
          and drained queues. A sequential create there on the destination would hand out a suffix the source already handed out.
        - Carry them with the task option O(zookeeper.migration.zk_sync_task#module:counters).
      type: int
    counter_behind_ephemeral:
      description:
        - Information, not a difference (it does not make C(in_sync) false). Parents holding ephemeral children
          (locks, service registrations), or non-sequential children of their own that churned, with the destination
          counter behind the source's.
      type: int
    ephemeral_skipped:
      description: Ephemeral znodes seen on either side and left out of the comparison.
      type: int
    spot_check_mismatch:
      description: Spot-checked znodes whose live reads differed.
      type: int
  sample: {"source_nodes": 1200, "destination_nodes": 1200, "missing": 0, "extra": 0, "data_mismatch": 0, "acl_mismatch": 0,
           "type_mismatch": 0, "counter_behind": 0, "counter_behind_persistent": 0, "counter_behind_ephemeral": 2,
           "ephemeral_skipped": 42, "spot_check_mismatch": 0}
differences:
  description:
    - The first O(max_diffs) differing paths of each kind (C(missing), C(extra), C(data_mismatch),
      C(acl_mismatch), C(type_mismatch), C(counter_behind), C(counter_behind_persistent), C(spot_check)), sorted.
    - C(extra) holds destination paths, the others source paths.
  returned: when the verification ran
  type: dict
  sample: {"missing": ["/app/a"], "extra": [], "data_mismatch": [], "acl_mismatch": [], "type_mismatch": [],
           "counter_behind": [], "counter_behind_persistent": [], "spot_check": []}
counter_versions:
  description:
    - For each listed path of C(counter_behind), C(counter_behind_persistent) and RV(counter_behind_ephemeral), the sequential
      counter of each side, the suffix its next sequential child would get (C((cversion + numChildren\) / 2)).
  returned: when the verification ran
  type: dict
  sample: {"/app/queue": {"source": 15, "destination": 3}}
counter_behind_ephemeral:
  description:
    - Information, not a difference. The first O(max_diffs) parents holding ephemeral children (locks, service
      registrations), or non-sequential children that churned, whose destination counter is behind the source's.
      Ephemeral creates count in a parent's counter and are never copied, and each side's own creates and deletes
      move it, so such parents are behind on most copies.
  returned: when the verification ran
  type: list
  elements: str
  sample: ["/app/locks/orders"]
spot_check:
  description: Spot checks asked for, done and mismatched, with the reason of each mismatch.
  returned: when the verification ran
  type: dict
  sample: {"requested": 20, "checked": 20, "mismatched": 0, "details": {}}
settle:
  description:
    - The settle delay, how the differences were re-checked (C(reread) or C(snapshot)), how many
      differences the first comparison found and how many settled (matched on re-check).
  returned: when the verification ran
  type: dict
  sample: {"seconds": 5, "method": "reread", "first_differences": 3, "settled": 3, "settled_paths": ["/app/a"]}
truncated:
  description: Whether some kind of difference has more paths than O(max_diffs).
  returned: when the verification ran
  type: bool
  sample: false
elapsed:
  description: Seconds the verification took, settle delay included.
  returned: when the verification ran
  type: float
  sample: 1.72
rate:
  description: znodes read per second (both sides, settle delay excluded).
  returned: when the verification ran
  type: float
  sample: 41000.0
source:
  description: Name of the source cluster (registered name, or the inline spec's name or connect string).
  returned: always
  type: str
  sample: legacy
destination:
  description: Name of the destination cluster.
  returned: always
  type: str
  sample: managed
paths:
  description: The subtrees compared, as source and destination paths.
  returned: always
  type: list
  elements: dict
  sample: [{"source": "/app", "destination": "/app"}]
compare:
  description: The aspects compared.
  returned: when the verification ran
  type: list
  elements: str
  sample: [data, acl, type, counters]
exclude:
  description: The exclude patterns applied (the task's and O(exclude)).
  returned: when the verification ran
  type: list
  elements: str
  sample: [/app/locks]
report:
  description: Absolute path of the JSON report written, when O(report) is set.
  returned: when O(report) is set and the verification ran
  type: str
  sample: /srv/reports/verify.json
report_html:
  description:
    - Absolute path of the HTML report this run wrote in O(report_dir). In check mode, the path it would write (nothing is written).
  returned: when O(report_dir) is set and the verification ran
  type: str
  sample: /srv/reports/app-config-20261205T120000Z.html
report_json:
  description:
    - Absolute path of the JSON report written beside RV(report_html), with the same name stem. In check mode, the path it would write.
  returned: when O(report_dir) is set and the verification ran
  type: str
  sample: /srv/reports/app-config-20261205T120000Z.json
report_written:
  description: Whether RV(report_html) and RV(report_json) were written (V(false) in check mode).
  returned: when O(report_dir) is set and the verification ran
  type: bool
  sample: true
msg:
  description:
    - In check mode, when a name is not registered yet, what the task would verify (the task is then reported as skipped).
    - In check mode with O(report_dir), the reports a run would write.
  returned: when skipped in check mode, or in check mode with O(report_dir)
  type: str
  sample: would verify legacy against managed under /app
'''

import time

from ansible_collections.zookeeper.migration.plugins.module_utils._module import (
    DEFAULT_CONTROL_ROOT,
    ZkMigrationModule,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._registration import cluster_spec
from ansible_collections.zookeeper.migration.plugins.module_utils._client import ClusterSpec, connected
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import COMPARE_ALL, PathMap
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError, ZkMigrationError
from ansible_collections.zookeeper.migration.plugins.module_utils._verify import path_pairs, read_nodes, verify, write_report
from ansible_collections.zookeeper.migration.plugins.module_utils._verify_report import (
    collect_details,
    planned_paths,
    write_report as write_report_files,
)


def inline_spec(value, role, credentials):
    """A ``ClusterSpec`` from an inline connection dict (``role`` names it when it has no name)."""
    spec = dict(value)
    spec.setdefault('name', role)
    return ClusterSpec.from_dict(spec, credentials=credentials)


def lookup(module, store, params):
    """Resolve the clusters, paths and excludes; returns (source spec, destination spec, paths, exclude, missing names)."""
    credentials = module.credentials
    missing = []
    source = params['source']
    destination = params['destination']
    paths = params['paths']
    exclude = list(params['exclude'] or [])
    if params['task']:
        spec = store.get_task(params['task'])
        if spec is None:
            return None, None, paths or ['/'], exclude, ['task %r' % params['task']]
        source, destination = spec['source'], spec['destination']
        if not paths:
            paths = spec['paths']
        exclude = list(spec.get('exclude') or []) + [pattern for pattern in exclude if pattern not in spec.get('exclude', [])]
    specs = []
    for role, value in (('source', source), ('destination', destination)):
        if isinstance(value, dict):
            specs.append(inline_spec(value, role, credentials))
            continue
        record = store.get_cluster(value) if store is not None else None
        if record is None:
            missing.append('cluster %r (the %s)' % (value, role))
            specs.append(None)
            continue
        specs.append(cluster_spec(record, credentials))
    return specs[0], specs[1], paths or ['/'], exclude, missing


def registered_names(store):
    """'registered clusters: a, b; tasks: t' for messages about a name that is not registered."""
    if store is None or not store.exists():
        return 'nothing is registered there yet'
    clusters = sorted(store.list_clusters())
    tasks = sorted(store.list_tasks())
    return 'registered clusters: %s; tasks: %s' % (', '.join(clusters) or 'none', ', '.join(tasks) or 'none')


def describe_differences(result):
    """One line naming each kind of difference with its count and first path."""
    parts = []
    differences = result['differences']
    for kind, count in result['counts'].items():
        if kind in ('source_nodes', 'destination_nodes', 'ephemeral_skipped', 'counter_behind_ephemeral') or not count:
            continue
        key = 'spot_check' if kind == 'spot_check_mismatch' else kind
        first = differences.get(key) or []
        parts.append('%d %s%s' % (count, kind, ' (first: %s)' % first[0] if first else ''))
    return ', '.join(parts)


def add_details(report, params, source_client, destination_client, source_name, destination_name, pairs):
    """Both sides of the listed paths, read live, into ``report['details']`` (or why not into ``details_error``)."""
    mapping = PathMap(pairs)

    def reader(client, name):
        return lambda paths: read_nodes(client, paths, with_acl=True, keep_data=params['report_data_prefix'] > 0, cluster=name).nodes

    mark = time.monotonic()
    try:
        report['details'] = collect_details(report, reader(source_client, source_name), reader(destination_client, destination_name),
                                            to_destination=mapping.to_destination, to_source=mapping.to_source,
                                            limit=params['report_max_paths'], prefix=params['report_data_prefix'])
    except ZkMigrationError as exc:
        report['details_error'] = str(exc)
    report.setdefault('timings', {})['report_details'] = round(time.monotonic() - mark, 3)


def argument_spec():
    """The module's options: the shared ``control`` and ``credentials`` plus its own."""
    return ZkMigrationModule.generate_argspec(
        source=dict(type='raw'),
        destination=dict(type='raw'),
        task=dict(type='str'),
        paths=dict(type='list', elements='str'),
        exclude=dict(type='list', elements='str', default=[]),
        compare=dict(type='list', elements='str', choices=list(COMPARE_ALL), default=list(COMPARE_ALL)),
        spot_check=dict(type='int', default=20),
        settle=dict(type='float', default=0),
        report=dict(type='path'),
        report_dir=dict(type='path'),
        report_max_paths=dict(type='int', default=1000),
        report_data_prefix=dict(type='int', default=16),
        max_diffs=dict(type='int', default=100),
        fail_on_diff=dict(type='bool', default=True),
    )


def main():
    module = ZkMigrationModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_together=[('source', 'destination')],
        required_one_of=[('task', 'source')],
        mutually_exclusive=[('task', 'source'), ('task', 'destination')],
        raw_cluster_options=('source', 'destination'),
    )
    params = module.params
    result = dict(changed=False, in_sync=None)
    for option in ('spot_check', 'max_diffs', 'report_max_paths', 'report_data_prefix'):
        if params[option] < 0:
            module.fail_json(msg='%s must be 0 or more' % option, **result)
    if params['settle'] < 0:
        module.fail_json(msg='settle must be 0 or more seconds', **result)
    for option in ('source', 'destination'):
        value = params[option]
        if value is not None and not isinstance(value, (str, dict)):
            module.fail_json(msg='%s must be a registered cluster name or a dict connection spec (hosts, auth, tls, ...)' % option, **result)
        if isinstance(value, str) and not value:
            module.fail_json(msg='%s must not be empty' % option, **result)

    with module.engine_errors(**result):
        module.validated_credentials()
        control = module.control_options()
        root = control[1] if control else DEFAULT_CONTROL_ROOT
        needs_store = bool(params['task']) or any(isinstance(params[option], str) for option in ('source', 'destination'))
        if needs_store:
            with module.control_store('to look up registered clusters and tasks') as store:
                source, destination, paths, exclude, missing = lookup(module, store, params)
                known = registered_names(store) if missing else None
        else:
            source, destination, paths, exclude, missing = lookup(module, None, params)
            known = None
        pairs = path_pairs(paths)
        result['paths'] = [{'source': src, 'destination': dst} for src, dst in pairs]
        result['source'] = source.name if source is not None else params['source']
        result['destination'] = destination.name if destination is not None else params['destination']
        if missing:
            what = ' and '.join(missing)
            message = '%s %s not registered in the control store at %s' % (what, 'is' if len(missing) == 1 else 'are', root)
            if module.check_mode:
                module.warn('%s; in check mode an earlier task of this run may only have reported that it would create %s. '
                            'Verification skipped.' % (message, 'it' if len(missing) == 1 else 'them'))
                result['skipped'] = True
                result['msg'] = 'would verify %s against %s under %s' % (
                    result['source'] or params['task'], result['destination'] or params['task'], ', '.join(src for src, _dst in pairs))
                module.exit_json(**result)
            module.fail_json(msg='%s (%s): register %s with zookeeper.migration.zk_cluster (or zk_sync_task) first' % (
                message, known, 'it' if len(missing) == 1 else 'them'), **result)
        if source.connect_string(with_chroot=True) == destination.connect_string(with_chroot=True) and \
                any(src == dst for src, dst in pairs):
            raise ConfigError('source and destination are the same cluster and paths: there is nothing to compare')

        started = time.time()
        writes_reports = bool(params['report']) or (bool(params['report_dir']) and not module.check_mode)
        report = None
        with connected(source) as source_client, connected(destination) as destination_client:
            outcome = verify(source_client, destination_client, pairs, exclude=exclude, compare=params['compare'],
                             spot_check=params['spot_check'], settle=params['settle'], control_root=root,
                             source_name=source.name, destination_name=destination.name)
            if writes_reports:
                report = outcome.to_dict(max_diffs=None)
                report['started_at'] = started
                report['task'] = params['task']
                add_details(report, params, source_client, destination_client, source.name, destination.name, pairs)
        summary = outcome.to_dict(max_diffs=params['max_diffs'])
        for key in ('in_sync', 'counts', 'differences', 'counter_versions', 'counter_behind_ephemeral', 'spot_check', 'settle', 'truncated',
                    'elapsed', 'rate', 'compare', 'exclude'):
            result[key] = summary[key]
        if params['report']:
            result['report'] = write_report(params['report'], report)
        if params['report_dir']:
            stem = params['task'] or '%s-%s' % (result['source'], result['destination'])
            now = time.time()
            if module.check_mode:
                files = planned_paths(params['report_dir'], stem, now)
                result['msg'] = 'check mode: would write the verification reports %s and %s' % (files['html'], files['json'])
            else:
                files = write_report_files(params['report_dir'], stem, report, now, limit=params['report_max_paths'])
            result['report_html'] = files['html']
            result['report_json'] = files['json']
            result['report_written'] = not module.check_mode
    if not result['in_sync'] and params['fail_on_diff']:
        message = 'source %s and destination %s differ: %s' % (result['source'], result['destination'], describe_differences(result))
        if result.get('report_written'):
            message += ' (report: %s)' % result['report_html']
        module.fail_json(msg=message, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
