# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of _backup.py: node and saved-ACL lines, the file (round trip, checks), node kinds and ``into``.

Nothing here touches ZooKeeper; tests/integration/test_backup.py restores into real servers.
"""

import gzip
import os
import shutil
import stat
import tempfile

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.zookeeper.migration.plugins.module_utils import _backup
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None)

# znode names: any text but '/' and the NUL ZooKeeper refuses, not '.' or '..'
NAME = st.text(st.characters(blacklist_characters='/\x00', blacklist_categories=('Cs',)), min_size=1, max_size=12).filter(
    lambda name: name not in ('.', '..'))
PATH = st.lists(NAME, min_size=1, max_size=4).map(lambda names: '/' + '/'.join(names))
ENTRY = st.tuples(st.integers(min_value=0, max_value=31), st.sampled_from(['world', 'digest', 'ip', 'sasl', 'x509']),
                  st.text(max_size=40))
ACL = st.lists(ENTRY, max_size=4).map(tuple)
NODE = st.tuples(PATH, st.binary(max_size=2048), ACL, st.integers(min_value=0, max_value=2 ** 31 - 1), st.booleans())


@pytest.fixture
def workdir():
    directory = tempfile.mkdtemp(prefix='zk-backup-unit-')
    yield directory
    shutil.rmtree(directory)


@SETTINGS
@given(NODE)
def test_a_node_line_round_trips_any_bytes_and_name(node):
    path, data, acl, counter, ephemeral = node
    record = _backup.encode_node(path, data, acl, None, counter, ephemeral)
    assert _backup.decode_node(record) == (path, data, acl, _backup.node_kind(path, ephemeral), counter, ephemeral)


@SETTINGS
@given(PATH, ACL)
def test_a_saved_acl_line_round_trips(path, acl):
    assert _backup.decode_saved_acl(_backup.encode_saved_acl(path, acl)) == (path, acl)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(st.lists(NODE, max_size=8, unique_by=lambda node: node[0]), st.dictionaries(PATH, ACL, max_size=4))
def test_a_file_round_trips_nodes_and_saved_acls(nodes, saved):
    directory = tempfile.mkdtemp(prefix='zk-backup-unit-')
    try:
        target = os.path.join(directory, 'export.jsonl.gz')
        header = {'format': _backup.FORMAT, 'version': _backup.VERSION, 'cluster': 'c', 'paths': ['/'], 'created_at': 1.5}
        records = (_backup.encode_node(path, data, acl, None, counter, ephemeral) for path, data, acl, counter, ephemeral in nodes)
        assert _backup.write_export(target, header, records, saved_acls=saved) == len(nodes)
        read_header, read_records = _backup.read_export(target)
        assert read_header == header
        assert [_backup.decode_node(record) for record in read_records] == [
            (path, data, acl, _backup.node_kind(path, ephemeral), counter, ephemeral) for path, data, acl, counter, ephemeral in nodes]
        assert _backup.read_saved_acls(target) == saved
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
        assert os.listdir(directory) == ['export.jsonl.gz']          # no temporary file left behind
    finally:
        shutil.rmtree(directory)


def test_node_kinds_follow_the_sequential_suffix():
    assert _backup.node_kind('/q/job-0000000007') == 'persistent_sequential'
    assert _backup.node_kind('/q/0000000007') == 'persistent_sequential'
    assert _backup.node_kind('/q/job-000000007') == 'persistent'           # nine digits: not a sequential create's suffix
    assert _backup.node_kind('/locks/lock-0000000001', ephemeral=True) == 'ephemeral_sequential'
    assert _backup.node_kind('/session', ephemeral=True) == 'ephemeral'


def _write(workdir, name, lines):
    target = os.path.join(workdir, name)
    with gzip.open(target, 'wb') as stream:
        stream.writelines(lines)
    return target


def _valid(workdir):
    target = os.path.join(workdir, 'good.jsonl.gz')
    header = {'format': _backup.FORMAT, 'version': _backup.VERSION, 'cluster': 'c', 'paths': ['/a'], 'created_at': 0}
    _backup.write_export(target, header, [_backup.encode_node('/a', b'\x00\xff', ((31, 'world', 'anyone'),))],
                         saved_acls={'/a': ((31, 'digest', 'u:h='),)})
    with gzip.open(target, 'rb') as stream:
        return target, stream.read().splitlines(True)


def test_damaged_files_are_refused_with_the_reason(workdir):
    good, lines = _valid(workdir)
    assert _backup.check_export(good)[1]['saved_acls'] == 1
    cases = {
        'truncated': (_write(workdir, 'truncated', lines[:-1]), 'truncated'),
        'header only': (_write(workdir, 'header', lines[:1]), 'empty or truncated'),
        'empty': (_write(workdir, 'empty', []), 'empty or truncated'),
        'altered': (_write(workdir, 'altered', [lines[0], lines[1].replace(b'"/a"', b'"/b"')] + lines[2:]), 'corrupt'),
        'a line dropped': (_write(workdir, 'dropped', [lines[0]] + lines[2:]), 'corrupt'),
        'other format': (_write(workdir, 'other', [b'{"format": "something else", "version": 1}\n'] + lines[1:]),
                         'not an export of zookeeper.migration'),
        'newer version': (_write(workdir, 'newer', [lines[0].replace(b'"version": 2', b'"version": 9')] + lines[1:]),
                          'not an export of zookeeper.migration'),
        'not JSON': (_write(workdir, 'json', [b'\x89PNG\r\n'] + lines[1:]), 'not JSON lines'),
    }
    plain = os.path.join(workdir, 'plain')
    with open(plain, 'wb') as stream:
        stream.writelines(lines)
    cases['not gzip'] = (plain, 'cannot read the export')
    cut = os.path.join(workdir, 'cut')
    with open(good, 'rb') as source, open(cut, 'wb') as target:
        target.write(source.read()[:40])
    cases['gzip cut short'] = (cut, 'cannot read the export')
    cases['missing'] = (os.path.join(workdir, 'nothing-here'), 'cannot read the export')
    for _what, (target, message) in sorted(cases.items()):
        with pytest.raises(ConfigError, match=message):
            _backup.read_export(target)


def test_a_version_1_file_still_reads(workdir):
    """Files written before the saved-ACL section (no saved_acls in the trailer) stay readable."""
    import hashlib
    import json
    header = (json.dumps({'format': _backup.FORMAT, 'version': 1, 'cluster': 'c', 'paths': ['/a'], 'created_at': 0},
                         sort_keys=True) + '\n').encode()
    node = (json.dumps({'p': '/a', 'd': '', 'a': [[31, 'world', 'anyone']], 'k': 'persistent', 'c': 3}, sort_keys=True) + '\n').encode()
    trailer = (json.dumps({'end': True, 'nodes': 1, 'sha256': hashlib.sha256(header + node).hexdigest()}) + '\n').encode()
    target = _write(workdir, 'v1', [header, node, trailer])
    assert _backup.read_export(target)[1] == [json.loads(node)]
    assert _backup.read_saved_acls(target) == {}


def test_write_refuses_a_missing_directory_and_leaves_nothing_on_failure(workdir):
    with pytest.raises(ConfigError, match='does not exist'):
        _backup.write_export(os.path.join(workdir, 'no', 'such.jsonl.gz'), {}, [])

    def broken():
        yield _backup.encode_node('/a', b'', ())
        raise RuntimeError('the walk failed')
    with pytest.raises(RuntimeError):
        _backup.write_export(os.path.join(workdir, 'x.jsonl.gz'), {}, broken())
    assert os.listdir(workdir) == []


def test_into_maps_prefixes():
    mapped = _backup.path_mapping('/restored/app', ['/app'])
    assert [mapped(p) for p in ('/app', '/app/a/b', '/apple', '/other')] == ['/restored/app', '/restored/app/a/b', '/apple', '/other']
    mapped = _backup.path_mapping({'/': '/copy', '/a/b': '/elsewhere'}, ['/'])
    assert [mapped(p) for p in ('/', '/a', '/a/b', '/a/b/c')] == ['/copy', '/copy/a', '/elsewhere', '/elsewhere/c']
    mapped = _backup.path_mapping({'/app': '/'}, ['/app'])
    assert [mapped(p) for p in ('/app', '/app/x')] == ['/', '/x']
    assert _backup.path_mapping(None, ['/a'])('/a/b') == '/a/b'
    with pytest.raises(ConfigError, match='one path'):
        _backup.path_mapping('/x', ['/a', '/b'])
    for bad in ({'/a': 'relative'}, {'/a/': '/b'}, {'/a': '/b//c'}, ['/a']):
        with pytest.raises(ConfigError):
            _backup.path_mapping(bad, ['/a'])


def test_malformed_lines_are_config_errors():
    for record in ({'d': ''}, {'p': 'relative', 'd': '', 'a': []}, {'p': '/a', 'd': '!!', 'a': []},
                   {'p': '/a', 'd': '', 'a': [['31', 'world', 'anyone']]}, {'p': '/a', 'd': '', 'a': [[31, 'world']]}):
        with pytest.raises(ConfigError, match='malformed'):
            _backup.decode_node(record)
    with pytest.raises(ConfigError, match='malformed'):
        _backup.decode_saved_acl({'s': '/a', 'a': 'x'})
