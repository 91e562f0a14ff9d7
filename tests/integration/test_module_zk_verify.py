# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zk_verify through a real ansible-playbook run against real ZooKeeper ensembles.

The source tree is copied to the destination with the engine's own copy
(``_apply.copy``) twice: ``clean`` stays identical, ``dirty`` then gets one
difference of each kind planted by hand. One playbook run
(playbooks/zk_verify.yml) covers the sequence; afterwards both clusters must
be exactly as before: zk_verify never changes anything.
"""

import json
import os
import stat
from html.parser import HTMLParser

import pytest
from kazoo.security import READ_ACL_UNSAFE

from ansible_collections.zookeeper.migration.plugins.module_utils._apply import copy as copy_tree
from ansible_collections.zookeeper.migration.plugins.module_utils._control import ControlStore

from tests.integration.ansible_runner import run_playbook

pytestmark = pytest.mark.integration


def build_source(client, holder, base):
    """Configuration with binary and empty data, a sequential queue and a service with ephemeral instances."""
    client.create(base + '/config', b'', makepath=True)
    for index in range(12):
        payload = bytes(range(index, index + 40)) if index % 3 == 0 else ('value-%d' % index).encode()
        client.create('%s/config/key-%02d' % (base, index), payload if index % 5 else b'')
    client.create(base + '/queue', b'')
    for index in range(4):
        client.create(base + '/queue/item-', ('job %d' % index).encode(), sequence=True)
    client.create(base + '/services/api', b'', makepath=True)
    for index in range(3):
        holder.create('%s/services/api/host-%d' % (base, index), b'10.0.0.%d' % index, ephemeral=True)


def tree_state(client, base):
    """Every znode under ``base`` with data and the stat fields a write would change."""
    state = {}
    pending = [base]
    while pending:
        path = pending.pop()
        data, stat = client.get(path)
        acl, _acl_stat = client.get_acls(path)
        state[path] = (data, stat.version, stat.cversion, stat.aversion, stat.ephemeralOwner,
                       tuple((entry.perms, entry.id.scheme, entry.id.id) for entry in acl))
        pending.extend(path.rstrip('/') + '/' + child for child in client.get_children(path))
    return state


@pytest.fixture
def trees(zk_source, zk_dest, zk_client_factory, zk_path):
    source = zk_client_factory(zk_source)
    destination = zk_client_factory(zk_dest)
    source_holder = zk_client_factory(zk_source)
    destination_holder = zk_client_factory(zk_dest)
    clean, dirty = zk_path + '/clean', zk_path + '/dirty'
    build_source(source, source_holder, clean)
    build_source(source, source_holder, dirty)
    copy_tree(source, destination, [clean, dirty])

    # one difference of each kind under dirty
    destination.delete(dirty + '/config/key-01')                                  # missing
    destination.create(dirty + '/extra-node', b'left over')                       # extra
    destination.set(dirty + '/config/key-02', b'changed on the destination')      # data
    destination.set_acls(dirty + '/config/key-04', READ_ACL_UNSAFE)               # acl
    destination.delete(dirty + '/config/key-07')                                  # node type: ephemeral on the destination
    destination_holder.create(dirty + '/config/key-07', source.get(dirty + '/config/key-07')[0], ephemeral=True)
    # counter behind: the source's queue counter moves on; the destination gets the new item
    # by its exact name, so its counter lags behind.
    name = source.create(dirty + '/queue/item-', b'job 4', sequence=True)
    source.delete(source.create(dirty + '/queue/item-', b'throwaway', sequence=True))
    destination.create(name, b'job 4')
    # an ephemeral only on the source: skipped, never a difference
    source_holder.create(dirty + '/config/session-lock', b'', ephemeral=True)

    control_root = zk_path + '/control'
    store = ControlStore(destination, control_root, allow_open_acl=True)
    store.put_cluster({'name': 'source', 'hosts': zk_source.host_list})
    store.put_cluster({'name': 'destination', 'hosts': zk_dest.host_list})
    store.put_task({'name': 'app', 'source': 'source', 'destination': 'destination', 'paths': [clean]})
    return {'source': source, 'destination': destination, 'clean': clean, 'dirty': dirty, 'control_root': control_root,
            'queue_item': name}


def test_zk_verify_sequence(zk_source, zk_dest, zk_path, trees, tmp_path):
    source, destination = trees['source'], trees['destination']
    clean, dirty = trees['clean'], trees['dirty']
    before = (tree_state(source, zk_path), tree_state(destination, zk_path))
    extra_vars = {
        'control': {'hosts': zk_dest.host_list, 'root': trees['control_root'], 'allow_open_acl': True},   # unauthenticated: open on purpose
        'credentials': {},
        'source_hosts': zk_source.host_list,
        'destination_hosts': zk_dest.host_list,
        'clean': clean,
        'dirty': dirty,
        'missing_path': zk_path + '/does-not-exist',
        'clean_report': str(tmp_path / 'clean.json'),
        'dirty_report': str(tmp_path / 'dirty.json'),
    }
    run = run_playbook('zk_verify.yml', extra_vars=extra_vars)
    assert run.rc == 0, run.output()

    # a clean copy is in sync, by name, in check mode, by task and with inline specs
    for task in ('Verify clean tree by name', 'Verify clean tree in check mode', 'Verify clean tree by task',
                 'Verify clean tree with inline specs and no control store'):
        result = run.task(task)
        assert result['changed'] is False and not result['failed'], (task, result)
        assert result['in_sync'] is True, (task, result['counts'], result['differences'])
        counts = result['counts']
        assert counts['source_nodes'] == counts['destination_nodes'] == 1 + 1 + 12 + 1 + 4 + 2, (task, counts)
        assert counts['ephemeral_skipped'] == 3, (task, counts)
        assert result['paths'] == [{'source': clean, 'destination': clean}]
    named = run.task('Verify clean tree by name')
    assert named['source'] == 'source' and named['destination'] == 'destination'
    # 25 asked, 21 persistent znodes in scope: every one of them is re-read live
    assert named['spot_check']['checked'] == 21 and named['spot_check']['mismatched'] == 0
    assert named['rate'] > 0 and named['elapsed'] > 0
    clean_report = json.loads((tmp_path / 'clean.json').read_text())
    assert clean_report['in_sync'] is True and clean_report['counts'] == named['counts']
    assert run.task('Verify clean tree with inline specs and no control store')['destination'] == 'managed'

    # every planted difference is found, with its path
    dirty_result = run.task('Verify dirty tree reporting only')
    assert dirty_result['in_sync'] is False and dirty_result['changed'] is False and not dirty_result['failed']
    expected = {'missing': [dirty + '/config/key-01'], 'extra': [dirty + '/extra-node'],
                'data_mismatch': [dirty + '/config/key-02'], 'acl_mismatch': [dirty + '/config/key-04'],
                'type_mismatch': [dirty + '/config/key-07'], 'counter_behind': [dirty + '/queue']}
    for kind, paths in expected.items():
        assert dirty_result['differences'][kind] == paths, (kind, dirty_result['differences'])
        assert dirty_result['counts'][kind] == len(paths), kind
    # the source's service instances and its session lock; key-07 is a type mismatch, not skipped
    assert dirty_result['counts']['ephemeral_skipped'] == 3 + 1
    versions = dirty_result['counter_versions'][dirty + '/queue']
    assert versions['destination'] < versions['source']
    # settle re-read the differing paths; they are still different, so all stay reported
    assert dirty_result['settle']['method'] == 'reread' and dirty_result['settle']['settled'] == 0
    dirty_report = json.loads((tmp_path / 'dirty.json').read_text())
    assert dirty_report['differences']['missing'] == expected['missing']

    failed = run.task('Verify dirty tree')
    assert failed['failed'] is True and failed['changed'] is False
    assert failed['msg'].startswith('source source and destination destination differ: 1 missing (first: %s/config/key-01)' % dirty)
    for kind in expected:
        assert kind in failed['msg']

    narrow = run.task('Verify dirty tree comparing data and type only')
    assert narrow['compare'] == ['data', 'type']
    assert narrow['counts']['acl_mismatch'] == 0 and narrow['counts']['counter_behind'] == 0
    assert narrow['counts']['extra'] == 0 and narrow['counts']['data_mismatch'] == 1 and narrow['counts']['missing'] == 1

    # names that are not registered: a warning in check mode, a clear failure otherwise
    checked = run.task('Check mode verify unregistered cluster')
    assert checked['failed'] is False and checked['_status'] == 'skipped' and checked['in_sync'] is None
    assert checked['msg'] == 'would verify source against not-registered-yet under %s' % clean
    assert any('not-registered-yet' in warning for warning in checked.get('warnings', []))
    unregistered = run.task('Bad unregistered cluster')
    assert unregistered['failed'] is True
    assert "cluster 'not-registered-yet' (the destination) is not registered" in unregistered['msg']
    assert 'registered clusters: destination, source; tasks: app' in unregistered['msg']
    unknown_task = run.task('Bad unknown task')
    assert unknown_task['failed'] is True and "task 'no-such-task'" in unknown_task['msg']
    missing = run.task('Bad source path missing')
    assert missing['failed'] is True and missing['msg'].startswith('Missing znode: ')
    assert zk_path + '/does-not-exist' in missing['msg']
    typo = run.task('Bad inline spec with an unknown key')
    assert typo['failed'] is True and 'hostz' in typo['msg']

    # zk_verify changed nothing on either cluster
    after = (tree_state(source, zk_path), tree_state(destination, zk_path))
    assert after == before


REPORT_PLAYBOOK = '''
- name: Zk_verify reports
  hosts: localhost
  gather_facts: false
  vars:
    source_spec: {hosts: "{{ source_hosts }}"}
    destination_spec: {name: managed, hosts: "{{ destination_hosts }}"}
  tasks:
    - name: Verify dirty tree with a report directory
      zookeeper.migration.zk_verify:
        source: "{{ source_spec }}"
        destination: "{{ destination_spec }}"
        paths: ["{{ dirty }}"]
        fail_on_diff: false
        report_dir: "{{ report_dir }}"

    - name: Verify dirty tree with a report directory again
      zookeeper.migration.zk_verify:
        source: "{{ source_spec }}"
        destination: "{{ destination_spec }}"
        paths: ["{{ dirty }}"]
        report_dir: "{{ report_dir }}"
      ignore_errors: true  # noqa: ignore-errors (the trees differ on purpose; the test checks the failure)

    - name: Verify dirty tree with a report directory in check mode
      zookeeper.migration.zk_verify:
        source: "{{ source_spec }}"
        destination: "{{ destination_spec }}"
        paths: ["{{ dirty }}"]
        fail_on_diff: false
        report_dir: "{{ report_dir }}"
      check_mode: true
'''


class TableRows(HTMLParser):
    """The text of each table row of a page, as lists of cell texts."""

    def __init__(self, text):
        HTMLParser.__init__(self, convert_charrefs=True)
        self.rows = []
        self.cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == 'tr':
            self.rows.append([])
        elif tag in ('td', 'th'):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ('td', 'th') and self.cell is not None:
            self.rows[-1].append(' '.join(part.strip() for part in self.cell if part.strip()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def test_zk_verify_html_report(zk_source, zk_dest, trees, tmp_path):
    source, dirty = trees['source'], trees['dirty']
    hostile = dirty + '/config/<script>alert("x")&\''
    source.create(hostile, b'\x00\xffbinary')          # missing on the destination
    report_dir = tmp_path / 'reports'
    playbook = tmp_path / 'zk_verify_report.yml'
    playbook.write_text(REPORT_PLAYBOOK)
    run = run_playbook(str(playbook), extra_vars={'source_hosts': zk_source.host_list, 'destination_hosts': zk_dest.host_list,
                                                  'dirty': dirty, 'report_dir': str(report_dir)})
    assert run.rc == 0, run.output()

    first = run.task('Verify dirty tree with a report directory')
    assert first['in_sync'] is False and first['report_written'] is True and not first['failed']
    html_path, json_path = first['report_html'], first['report_json']
    assert os.path.dirname(html_path) == str(report_dir) and os.path.basename(html_path).startswith('source-managed-')
    assert html_path[:-len('.html')] == json_path[:-len('.json')]
    assert stat.S_IMODE(report_dir.stat().st_mode) == 0o700
    for path in (html_path, json_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    # a second run writes a second pair (a suffix when it is the same second); its failure names the page
    second = run.task('Verify dirty tree with a report directory again')
    assert second['failed'] is True and second['report_written'] is True
    assert second['report_html'] != html_path and os.path.exists(second['report_html']) and os.path.exists(html_path)
    assert second['msg'].endswith('(report: %s)' % second['report_html'])
    # check mode names the next pair and writes nothing
    checked = run.task('Verify dirty tree with a report directory in check mode')
    assert checked['report_written'] is False and not os.path.exists(checked['report_html'])
    assert checked['msg'] == 'check mode: would write the verification reports %s and %s' % (checked['report_html'], checked['report_json'])
    assert sorted(os.listdir(str(report_dir))) == sorted(os.path.basename(path) for path in (
        html_path, json_path, second['report_html'], second['report_json']))

    # the JSON beside it: every difference, both sides of each listed path
    report = json.loads(open(json_path).read())
    details = report['details']
    data_path, missing_path = dirty + '/config/key-02', dirty + '/config/key-01'
    data = details['data_mismatch'][data_path]
    assert data['source']['size'] == len(b'value-2') and data['destination']['size'] == len(b'changed on the destination')
    assert data['destination']['version'] == data['source']['version'] + 1
    assert data['source']['data_prefix'] == b'value-2'.hex()
    assert details['missing'][missing_path]['destination'] is None
    assert details['missing'][hostile]['source']['data_prefix'] == b'\x00\xffbinary'.hex()
    assert details['type_mismatch'][dirty + '/config/key-07']['destination']['ephemeral'] is True
    assert details['acl_mismatch'][dirty + '/config/key-04']['destination']['acl'] == [[1, 'world', 'anyone']]
    assert report['counter_versions'][dirty + '/queue']['destination'] < report['counter_versions'][dirty + '/queue']['source']

    # the page: the verdict, each differing path with both sides' sizes and versions, escaped
    with open(html_path, encoding='utf-8') as handle:
        page = handle.read()
    assert 'NOT IN SYNC' in page and '<script>' not in page and '&lt;script&gt;alert(&quot;x&quot;)&amp;&#x27;' in page
    rows = TableRows(page).rows
    for path in (missing_path, dirty + '/extra-node', data_path, dirty + '/config/key-04', dirty + '/config/key-07',
                 dirty + '/queue', hostile):
        assert any(row and row[0].startswith(path) for row in rows), path
    index = next(i for i, row in enumerate(rows) if row and row[0] == data_path)
    source_row, destination_row = rows[index], rows[index + 1]
    # path | side | type | data bytes | data (hex) | version | cversion | aversion | children | mtime | ACL
    assert source_row[1:4] == ['source', 'persistent', '7'] and source_row[4] == b'value-2'.hex()
    assert destination_row[:3] == ['destination', 'persistent', str(len(b'changed on the destination'))]
    assert source_row[5] == str(data['source']['version']) and destination_row[4] == str(data['destination']['version'])
    assert source_row[9].endswith(' UTC') and 'world:anyone:cdrwa' in source_row[10]
    missing_row = next(i for i, row in enumerate(rows) if row and row[0] == missing_path)
    assert rows[missing_row + 1] == ['destination', 'absent']
    queue = next(row for row in rows if row and row[0].startswith(dirty + '/queue'))
    assert 'sequential counter: source %d, destination %d' % (
        report['counter_versions'][dirty + '/queue']['source'], report['counter_versions'][dirty + '/queue']['destination']) in queue[0]
