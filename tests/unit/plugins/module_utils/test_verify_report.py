# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTML verification report (_verify_report.py): every category, escaping, binary data, the cap, files.

Pages are parsed back with ``html.parser``: only the renderer's own tags may
appear, and every path must come back as text (escaped, never as markup).
"""

import datetime
import errno
import json
import os
import stat
import tempfile
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.zookeeper.migration.plugins.module_utils import _verify_report as report
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError

NOW = datetime.datetime(2026, 12, 5, 12, 0, 0, tzinfo=datetime.timezone.utc)
STARTED = (NOW - datetime.timedelta(seconds=3)).timestamp()
ALLOWED_TAGS = {'html', 'head', 'meta', 'title', 'style', 'body', 'h1', 'h2', 'p', 'table', 'tr', 'th', 'td', 'ul', 'li', 'a',
                'br', 'span'}
HOSTILE = ['/app/<script>alert(1)</script>', '/app/"quoted" & \'single\'', '/app/</td></table><img src=x onerror=alert(1)>',
           '/app/tab\there', '/app/new\nline', '/app/&amp;already', '/app/\u00e9t\u00e9-\u65e5\u672c']


class Node(object):
    """The attributes of ``_snapshot.Node`` that the report reads."""

    def __init__(self, data=b'', version=0, cversion=0, aversion=0, ephemeral_owner=0, num_children=0, mtime=0, acl=None):
        self.data = data
        self.data_length = len(data)
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.ephemeral_owner = ephemeral_owner
        self.num_children = num_children
        self.mtime = mtime
        self.acl = acl


class Page(HTMLParser):
    """Tags and text chunks of a page."""

    def __init__(self, text):
        HTMLParser.__init__(self, convert_charrefs=True)
        self.tags = []
        self.chunks = []
        self.in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.in_style = tag == 'style'

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        self.in_style = False

    def handle_data(self, data):
        if not self.in_style:
            self.chunks.append(data)

    @property
    def text(self):
        # display() never yields \x00: a path found in this string lies within one text chunk
        return '\x00'.join(self.chunks)


def assert_safe(page_text, paths):
    page = Page(page_text)
    tags = set(tag for tag, _attrs in page.tags)
    assert tags <= ALLOWED_TAGS, tags - ALLOWED_TAGS
    for _tag, attrs in page.tags:
        assert not any(name.startswith('on') for name in attrs), attrs
    for path in paths:
        assert report.display(path) in page.text, path
    return page


def base_result(**changes):
    result = {
        'in_sync': False,
        'task': 'app-config',
        'source': 'legacy',
        'destination': 'managed',
        'paths': [{'source': '/app', 'destination': '/app'}],
        'exclude': ['/app/locks'],
        'compare': ['data', 'acl', 'type', 'counters'],
        'acl_compared': True,
        'counts': {'source_nodes': 10, 'destination_nodes': 10, 'missing': 0, 'extra': 0, 'data_mismatch': 0, 'acl_mismatch': 0,
                   'type_mismatch': 0, 'counter_behind': 0, 'counter_behind_persistent': 0, 'counter_behind_ephemeral': 0,
                   'ephemeral_skipped': 2, 'spot_check_mismatch': 0},
        'differences': dict((key, []) for key, _count, _title, _about in report.CATEGORIES),
        'counter_versions': {},
        'counter_behind_ephemeral': [],
        'spot_check': {'requested': 20, 'checked': 10, 'mismatched': 0, 'details': {}},
        'settle': {'seconds': 0, 'method': None, 'first_differences': 0, 'settled': 0, 'settled_paths': []},
        'truncated': False,
        'elapsed': 0.42,
        'rate': 1234.5,
        'nodes_read': 40,
        'timings': {'snapshot_source': 0.1, 'snapshot_destination': 0.12, 'diff': 0.01},
        'started_at': STARTED,
    }
    result.update(changes)
    return result


def with_differences(result, category, paths):
    result['differences'][category] = list(paths)
    count_key = dict((key, count) for key, count, _title, _about in report.CATEGORIES + report.INFORMATION)[category]
    result['counts'][count_key] = len(paths)
    result['in_sync'] = False
    return result


def every_category_result():
    """One path of each kind, with the details the module would read."""
    result = base_result()
    paths = {
        'missing': '/app/missing', 'extra': '/app/extra', 'data_mismatch': '/app/data', 'acl_mismatch': '/app/acl',
        'type_mismatch': '/app/type', 'counter_behind': '/app/queue', 'counter_behind_persistent': '/app/ids',
        'spot_check': '/app/spot',
    }
    for category, path in paths.items():
        with_differences(result, category, [path])
    result['counter_behind_ephemeral'] = ['/app/locks-parent']
    result['counts']['counter_behind_ephemeral'] = 1
    result['counter_versions'] = {'/app/queue': {'source': 15, 'destination': 3}, '/app/ids': {'source': 900, 'destination': 7},
                                  '/app/locks-parent': {'source': 77, 'destination': 2}}
    result['spot_check'] = {'requested': 20, 'checked': 10, 'mismatched': 1,
                            'details': {'/app/spot': 'data differs (3 bytes on the source, 4 on the destination)'}}
    result['settle'] = {'seconds': 5, 'method': 'reread', 'first_differences': 12, 'settled': 3, 'settled_paths': ['/app/a', '/app/b', '/app/c']}
    world = [(31, 'world', 'anyone')]
    digest = [(31, 'digest', 'migrator:0Tq5u7hMT1bKj3HFsMsB4RclDro='), (1, 'world', 'anyone')]
    source = {
        '/app/missing': Node(b'abc', version=2, mtime=1764936000123, acl=world),
        '/app/data': Node(b'\x00\x01\xffsecret-ish payload', version=4, mtime=1764936000000, acl=world),
        '/app/acl': Node(b'x', acl=digest),
        '/app/type': Node(b't'),
        '/app/queue': Node(b'', cversion=26, num_children=4, acl=world),
        '/app/ids': Node(b'', cversion=1800, acl=world),
        '/app/spot': Node(b'one', acl=world),
        '/app/locks-parent': Node(b'', cversion=150, num_children=4, acl=world),
    }
    destination = {
        '/app/extra': Node(b'left over', version=1, acl=world),
        '/app/data': Node(b'changed', version=9, mtime=1764939600000, acl=world),
        '/app/acl': Node(b'x', acl=[(1, 'world', 'anyone')]),
        '/app/type': Node(b't', ephemeral_owner=0x1234),
        '/app/queue': Node(b'', cversion=2, num_children=4, acl=world),
        '/app/ids': Node(b'', cversion=14, acl=world),
        '/app/spot': Node(b'four', acl=world),
        '/app/locks-parent': Node(b'', cversion=0, num_children=4, acl=world),
    }
    result['details'] = report.collect_details(result, reader(source), reader(destination))
    return result, paths


def reader(nodes, calls=None):
    def read(paths):
        if calls is not None:
            calls.append(list(paths))
        return dict((path, nodes[path]) for path in paths if path in nodes)
    return read


# --------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------

def test_every_category_is_rendered_with_both_sides():
    result, paths = every_category_result()
    page_text = report.render_html(result, NOW)
    page = assert_safe(page_text, list(paths.values()) + ['/app/locks-parent'])
    text = page.text
    assert 'NOT IN SYNC' in text and '<p class="verdict not-in-sync">NOT IN SYNC</p>' in page_text
    for key, count_key, title, _about in report.CATEGORIES + report.INFORMATION:
        assert '%s: 1' % title in text, title
        assert count_key in text
        assert '<h2 id="%s">' % key in page_text
    # header: clusters, paths, task, when
    for value in ('app-config', 'legacy', 'managed', '/app/locks', '2026-12-05 11:59:57 UTC', '2026-12-05 12:00:00 UTC', '0.42 s'):
        assert value in text, value
    # both sides' size, version, mtime (UTC) and ACL of a differing path
    assert '2025-12-05 12:00:00.000 UTC' in text and '2025-12-05 13:00:00.000 UTC' in text
    assert '0001ff7365637265742d697368207061 ...' in text          # 16 bytes of hex, then more
    assert '6368616e676564' in text                               # b'changed' in full: 7 bytes
    assert 'secret-ish' not in text
    assert 'digest:migrator:0Tq5u7hMT1bKj3HFsMsB4RclDro=:cdrwa' in text and 'world:anyone:r' in text
    assert 'absent' in text and 'ephemeral' in text
    # counters, spot checks, settle, timings
    assert 'sequential counter: source 15, destination 3' in text
    assert 'sequential counter: source 900, destination 7' in text
    assert 'spot check: data differs (3 bytes on the source, 4 on the destination)' in text
    assert 'reread' in text and '/app/b' in text
    assert 'snapshot_destination' in text and '0.12 s' in text and '1234.5 znodes/s' in text
    # nothing loaded from elsewhere, nothing run
    assert '<script' not in page_text and 'src=' not in page_text and 'http://' not in page_text and 'https://' not in page_text
    assert "default-src 'none'" in page_text


def test_in_sync_page():
    result = base_result(in_sync=True)
    page_text = report.render_html(result, NOW)
    text = assert_safe(page_text, []).text
    assert '<p class="verdict in-sync">IN SYNC</p>' in page_text and 'NOT IN SYNC' not in text
    assert text.count('None.') == len(report.CATEGORIES) + len(report.INFORMATION)


def test_differing_values_are_marked_but_per_cluster_ones_are_not():
    result, _paths = every_category_result()
    rows = report.render_html(result, NOW).split('<tr>')
    data_rows = [row for row in rows if '6368616e676564' in row]
    assert data_rows and 'class="num differs"' in data_rows[0]       # size 20 vs 7
    # versions and mtimes are per cluster: never marked
    assert not any('differs">9<' in row or 'differs">2025-12-05' in row for row in rows)


def test_mapped_paths_show_both_names():
    result = with_differences(base_result(paths=[{'source': '/old', 'destination': '/new'}]), 'data_mismatch', ['/old/a'])
    result['details'] = report.collect_details(result, reader({'/old/a': Node(b'1')}), reader({'/new/a': Node(b'2')}),
                                               to_destination=lambda path: '/new' + path[4:], to_source=lambda path: '/old' + path[4:])
    text = assert_safe(report.render_html(result, NOW), ['/old/a', '/new/a']).text
    assert '/old -> /new' in text and 'destination /new/a' in text


@pytest.mark.parametrize('hostile', HOSTILE)
def test_hostile_names_are_escaped(hostile):
    result = base_result(task=hostile, source='<b>src</b>', destination='"dst"')
    for category in ('missing', 'extra', 'data_mismatch'):
        with_differences(result, category, [hostile])
    result['counter_behind_ephemeral'] = [hostile]
    result['exclude'] = [hostile]
    result['details'] = report.collect_details(result, reader({hostile: Node(b'<script>alert(1)</script>')}),
                                               reader({hostile: Node(b'"\'<>&')}))
    page_text = report.render_html(result, NOW)
    page = assert_safe(page_text, [hostile, '<b>src</b>', '"dst"'])
    assert [tag for tag, _attrs in page.tags].count('b') == 0
    assert '<script>' not in page_text and '<img' not in page_text and '"dst"' not in page_text
    assert '&lt;script&gt;' in page_text or 'script' not in hostile
    # data is hex, never raw: the destination's quotes and brackets do not appear as such
    assert '22273c3e26' in page.text


def test_control_characters_and_lone_surrogates_are_shown_not_written():
    path = '/app/bell\x07-esc\x1b-del\x7f-\udc80'
    result = with_differences(base_result(), 'missing', [path])
    page_text = report.render_html(result, NOW)
    page_text.encode('utf-8')     # a lone surrogate would make this raise
    text = assert_safe(page_text, [path]).text
    assert '/app/bell\\x07-esc\\x1b-del\\x7f-\\udc80' in text


def test_binary_data_shows_size_and_prefix_only():
    data = bytes(range(256)) * 4
    result = with_differences(base_result(), 'data_mismatch', ['/bin'])
    result['details'] = report.collect_details(result, reader({'/bin': Node(data)}), reader({'/bin': Node(b'')}))
    page_text = report.render_html(result, NOW)
    text = assert_safe(page_text, ['/bin']).text
    assert '1024' in text and '000102030405060708090a0b0c0d0e0f ...' in text and '(empty)' in text
    assert '101112' not in text      # nothing past the prefix
    assert result['details']['data_mismatch']['/bin']['source'] == dict(
        size=1024, version=0, cversion=0, aversion=0, num_children=0, ephemeral=False, mtime=0, acl=None,
        data_prefix='000102030405060708090a0b0c0d0e0f')


def test_no_data_prefix_shows_sizes_only():
    result = with_differences(base_result(), 'data_mismatch', ['/secret'])
    result['details'] = report.collect_details(result, reader({'/secret': Node(b'password=hunter2')}),
                                               reader({'/secret': Node(b'password=other')}), prefix=0)
    page_text = report.render_html(result, NOW)
    assert 'data (first bytes, hex)' not in page_text
    assert 'hunter2'.encode().hex() not in page_text and '70617373' not in page_text
    assert '>16<' in page_text and '>14<' in page_text
    assert 'data_prefix' not in result['details']['data_mismatch']['/secret']['source']


def test_the_cap_lists_the_first_paths_and_counts_the_rest():
    paths = ['/app/node-%05d' % index for index in range(2500)]
    result = with_differences(base_result(), 'missing', paths)
    result['details'] = report.collect_details(result, reader(dict((path, Node(b'v')) for path in paths)), reader({}))
    assert len(result['details']['missing']) == report.MAX_PATHS
    page_text = report.render_html(result, NOW)
    text = assert_safe(page_text, paths[:report.MAX_PATHS]).text
    assert '/app/node-00999' in text and '/app/node-01000' not in text
    assert '1500 more not listed here' in text
    assert len(page_text) < 2500 * 1000    # bounded (about 1 KB per listed path)
    small = report.render_html(result, NOW, limit=10)
    assert '2490 more not listed here' in small and '/app/node-00010' not in small and len(small) < 30000


def test_collect_details_reads_in_chunks_each_path_once():
    paths = ['/p/%d' % index for index in range(600)]
    result = with_differences(base_result(), 'data_mismatch', paths)
    with_differences(result, 'acl_mismatch', paths[:10])
    with_differences(result, 'extra', ['/p/extra'])
    calls = []
    details = report.collect_details(result, reader(dict((path, Node(b'x')) for path in paths), calls),
                                     reader({'/p/extra': Node(b'y')}, calls), chunk=256)
    assert [len(call) for call in calls] == [256, 256, 89, 256, 256, 89]     # 600 + /p/extra per side, 601 paths
    assert details['extra']['/p/extra']['source'] is None and details['extra']['/p/extra']['destination']['size'] == 1
    assert details['acl_mismatch']['/p/3']['destination'] is None


# --------------------------------------------------------------------------
# Hypothesis: arbitrary names and bytes never break the page
# --------------------------------------------------------------------------

names = st.text(min_size=1, max_size=30).map(lambda text: '/' + text)


@settings(max_examples=150, deadline=None)
@given(paths=st.lists(names, min_size=1, max_size=8, unique=True), data=st.binary(max_size=64),
       task=st.text(max_size=20), limit=st.integers(min_value=0, max_value=10))
def test_arbitrary_names_and_bytes_never_break_the_page(paths, data, task, limit):
    result = base_result(task=task or None, source=task, exclude=paths[:2])
    categories = [key for key, _count, _title, _about in report.CATEGORIES]
    for index, path in enumerate(paths):
        with_differences(result, categories[index % len(categories)], result['differences'][categories[index % len(categories)]] + [path])
    result['details'] = report.collect_details(result, reader(dict((path, Node(data)) for path in paths)), reader({}), limit=limit)
    page_text = report.render_html(result, NOW, limit=limit)
    page_text.encode('utf-8')
    listed = [path for key in categories for path in sorted(result['differences'][key])[:limit]]
    page = assert_safe(page_text, listed + paths[:2] + ([task] if task else []))
    if data and listed:
        assert data[:report.DATA_PREFIX].hex() in page.text


@settings(max_examples=25, deadline=None)
@given(stem=st.text(max_size=40), paths=st.lists(names, min_size=1, max_size=4))
def test_arbitrary_stems_make_plain_file_names(stem, paths):
    result = with_differences(base_result(), 'missing', paths)
    with tempfile.TemporaryDirectory() as directory:
        written = report.write_report(directory, stem, result, NOW)
        for path in written.values():
            assert os.path.dirname(path) == directory
            name = os.path.basename(path)
            assert name.startswith(report.safe_stem(stem) + '-20261205T120000Z') and not name.startswith('.')
        with open(written['html'], encoding='utf-8') as handle:
            assert_safe(handle.read(), paths)
        with open(written['json'], encoding='utf-8') as handle:
            assert json.load(handle)['differences']['missing'] == paths


# --------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------

def test_write_report_files_modes_and_json(tmp_path):
    result, _paths = every_category_result()
    directory = tmp_path / 'reports' / 'nested'
    old_umask = os.umask(0o022)
    try:
        written = report.write_report(str(directory), 'app-config', result, NOW)
    finally:
        os.umask(old_umask)
    assert written == {'html': str(directory / 'app-config-20261205T120000Z.html'),
                       'json': str(directory / 'app-config-20261205T120000Z.json')}
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in written.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads((directory / 'app-config-20261205T120000Z.json').read_text()) == json.loads(json.dumps(result))
    assert (directory / 'app-config-20261205T120000Z.html').read_text().startswith('<!DOCTYPE html>')
    assert sorted(os.listdir(str(directory))) == ['app-config-20261205T120000Z.html', 'app-config-20261205T120000Z.json']


def test_existing_directory_keeps_its_mode(tmp_path):
    directory = tmp_path / 'shared'
    directory.mkdir()
    directory.chmod(0o750)
    report.write_report(str(directory), 'x', base_result(), NOW)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o750


def test_two_reports_in_the_same_second_never_overwrite(tmp_path):
    first = report.write_report(str(tmp_path), 'app', base_result(in_sync=False), NOW)
    assert first['html'] == str(tmp_path / 'app-20261205T120000Z.html')
    second = report.write_report(str(tmp_path), 'app', base_result(in_sync=True), NOW)
    third = report.write_report(str(tmp_path), 'app', base_result(in_sync=True), NOW + datetime.timedelta(microseconds=5))
    assert second == {'html': str(tmp_path / 'app-20261205T120000Z-2.html'), 'json': str(tmp_path / 'app-20261205T120000Z-2.json')}
    assert third['html'].endswith('app-20261205T120000Z-3.html')
    assert 'NOT IN SYNC' in (tmp_path / 'app-20261205T120000Z.html').read_text()
    assert '>IN SYNC<' in (tmp_path / 'app-20261205T120000Z-2.html').read_text()
    # a file someone else left with the name: both files move on to the next free name, the stranger is untouched
    (tmp_path / 'other-20261205T120000Z.json').write_text('theirs')
    moved = report.write_report(str(tmp_path), 'other', base_result(), NOW)
    assert moved['html'].endswith('other-20261205T120000Z-2.html') and moved['json'].endswith('other-20261205T120000Z-2.json')
    assert (tmp_path / 'other-20261205T120000Z.json').read_text() == 'theirs'
    assert not (tmp_path / 'other-20261205T120000Z.html').exists()
    assert not [name for name in os.listdir(str(tmp_path)) if name.startswith('.')]


def test_a_name_taken_between_check_and_write_is_not_overwritten(tmp_path, monkeypatch):
    (tmp_path / 'app-20261205T120000Z.html').write_text('theirs')
    monkeypatch.setattr(report.os.path, 'lexists', lambda path: False)     # the race: the check saw nothing
    written = report.write_report(str(tmp_path), 'app', base_result(), NOW)
    assert written['html'].endswith('app-20261205T120000Z-2.html')
    assert (tmp_path / 'app-20261205T120000Z.html').read_text() == 'theirs'
    assert not (tmp_path / 'app-20261205T120000Z.json').exists()      # the first name's JSON was taken back
    assert not [name for name in os.listdir(str(tmp_path)) if name.startswith('.')]


def test_without_hard_links_the_name_is_reserved(tmp_path, monkeypatch):
    def no_link(source, target):
        raise OSError(errno.EPERM, 'Operation not permitted')
    monkeypatch.setattr(report.os, 'link', no_link)
    report.write_report(str(tmp_path), 'app', base_result(in_sync=False), NOW)
    second = report.write_report(str(tmp_path), 'app', base_result(in_sync=True), NOW)
    assert second['html'].endswith('-2.html')
    assert 'NOT IN SYNC' in (tmp_path / 'app-20261205T120000Z.html').read_text()
    for path in second.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_planned_paths_write_nothing(tmp_path):
    directory = tmp_path / 'not-yet'
    planned = report.planned_paths(str(directory), 'task/with spaces', NOW)
    assert planned == {'html': str(directory / 'task_with_spaces-20261205T120000Z.html'),
                       'json': str(directory / 'task_with_spaces-20261205T120000Z.json')}
    assert not directory.exists()
    written = report.write_report(str(directory), 'task/with spaces', base_result(), NOW)
    assert written == planned
    assert report.planned_paths(str(directory), 'task/with spaces', NOW)['html'].endswith('-2.html')


def test_a_file_where_the_directory_should_be(tmp_path):
    (tmp_path / 'file').write_text('')
    with pytest.raises(ConfigError, match='not a directory'):
        report.write_report(str(tmp_path / 'file'), 'app', base_result(), NOW)


def test_a_directory_that_cannot_be_written(tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, 'Permission denied')
    monkeypatch.setattr(report.tempfile, 'mkstemp', refused)
    with pytest.raises(ConfigError, match='report_dir: cannot write in .*Permission denied'):
        report.write_report(str(tmp_path), 'app', base_result(), NOW)
    assert os.listdir(str(tmp_path)) == []


def test_values():
    assert report.safe_stem('../../etc/passwd') == 'etc_passwd'
    assert report.safe_stem('') == 'verify' and report.safe_stem('...') == 'verify'
    assert report.safe_stem('legacy-managed') == 'legacy-managed'
    assert report.utc_stamp(0) == '19700101T000000Z'
    assert report.utc_stamp(datetime.datetime(2026, 1, 2, 3, 4, 5)) == '20260102T030405Z'
    assert report.mtime_text(1764936000123) == '2025-12-05 12:00:00.123 UTC'
    assert report.perms_text(31) == 'cdrwa' and report.perms_text(1) == 'r' and report.perms_text(0) == '-'
    assert report.acl_text([(3, 'ip', '10.0.0.0/8'), {'perms': 16, 'scheme': 'sasl', 'id': 'zk'}]) == ['ip:10.0.0.0/8:rw', 'sasl:zk:a']
    assert report.display('a\x00b\udc80') == 'a\\x00b\\udc80'
