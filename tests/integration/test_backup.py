# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Export and restore (_backup.py) against real ZooKeeper ensembles.

A tree with binary data, odd names, a 900 KB node, digest ACLs, a queue and an
ID generator whose children were all deleted is exported from the source and
restored into an empty subtree of the destination: data, node types,
counters and ACLs come back; a truncated or altered file is refused with
nothing written; check mode writes nothing; a second restore changes
nothing; restoring only the ACLs thaws a frozen tree; an export written
after a freeze carries the saved originals and restores them; a restore can
go elsewhere (into) and overwrite data that differs.
"""

import gzip
import os
import stat

import pytest
from kazoo.security import ACL, OPEN_ACL_UNSAFE, Id, make_digest_acl

from ansible_collections.zookeeper.migration.plugins.module_utils._backup import (
    export_scope,
    read_export,
    read_saved_acls,
    restore_export,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError
from ansible_collections.zookeeper.migration.plugins.module_utils._verify import verify

pytestmark = pytest.mark.integration

MIGRATOR = ('migrator', 'migrator-pw')


def acls(client, base):
    out = {}
    pending = [base]
    while pending:
        path = pending.pop()
        out[path] = [(entry.perms, entry.id.scheme, entry.id.id) for entry in client.get_acls(path)[0]]
        pending.extend(path.rstrip('/') + '/' + child for child in client.get_children(path))
    return out


@pytest.fixture
def clients(zk_source, zk_dest, zk_client_factory):
    auth = [('digest', '%s:%s' % MIGRATOR)]
    return zk_client_factory(zk_source, auth_data=auth), zk_client_factory(zk_dest, auth_data=auth), zk_client_factory(zk_source)


def build(src, holder, base):
    migrator_all = make_digest_acl(MIGRATOR[0], MIGRATOR[1], all=True)
    src.create(base, b'root', makepath=True)
    src.create(base + '/binary', bytes(range(256)) * 3)
    src.create(base + '/big', b'x' * (900 * 1024))
    src.create(base + '/odd name \u00e9\u4e2d', b'\xff\x00')
    src.create(base + '/secret', b'digest only', acl=[migrator_all, ACL(1, Id('world', 'anyone'))])
    src.create(base + '/queue', b'')
    for index in range(3):
        src.create(base + '/queue/job-', b'job %d' % index, sequence=True)
    src.create(base + '/ids', b'', acl=OPEN_ACL_UNSAFE)
    for _round in range(150):
        src.delete(src.create(base + '/ids/id-', b'', sequence=True))   # an ID generator: counter 150, no child left
    holder.create(base + '/session', b'', ephemeral=True)


def test_export_and_restore_round_trip(clients, zk_path, tmp_path):
    src, dst, holder = clients
    base = zk_path + '/app'
    build(src, holder, base)
    export = str(tmp_path / 'app.jsonl.gz')
    count = export_scope(src, [base], export, cluster='src')
    assert count == 1 + 6 + 3                     # the persistent nodes; the ephemeral one is listed, apart
    assert stat.S_IMODE(os.stat(export).st_mode) == 0o600
    header, records = read_export(export)
    assert header['paths'] == [base] and [r for r in records if r.get('e')][0]['p'] == base + '/session'
    kinds = dict((record['p'], record['k']) for record in records)
    assert kinds[base + '/queue/job-0000000002'] == 'persistent_sequential' and kinds[base + '/session'] == 'ephemeral'
    assert kinds[base + '/ids'] == 'persistent' and [r['c'] for r in records if r['p'] == base + '/ids'] == [150]

    dst.ensure_path(zk_path)
    planned = restore_export(dst, export, check_mode=True, cluster='dst')
    assert planned['changed'] is True and planned['created'] == 10 and dst.exists(base) is None
    done = restore_export(dst, export, cluster='dst')
    assert done['created'] == 10 and done['counters_raised'] >= 2
    outcome = verify(src, dst, [base], compare=('data', 'type', 'counters', 'acl'), source_name='src', destination_name='dst')
    summary = outcome.to_dict()
    assert outcome.in_sync, summary
    assert dst.exists(base + '/session') is None           # ephemerals are never restored
    assert acls(dst, base) == dict((path, acl) for path, acl in acls(src, base).items() if path != base + '/session')
    # the ID generator hands out a number above every one the source handed out
    assert dst.create(base + '/ids/id-', b'', sequence=True) == base + '/ids/id-%010d' % 150
    # a second restore changes nothing
    again = restore_export(dst, export, cluster='dst')
    assert again['changed'] is False and again['unchanged'] == 10


def test_a_damaged_export_is_refused_before_anything_is_written(clients, zk_path, tmp_path):
    src, dst, holder = clients
    base = zk_path + '/app'
    build(src, holder, base)
    export = str(tmp_path / 'app.jsonl.gz')
    export_scope(src, [base], export, cluster='src')
    with gzip.open(export, 'rb') as stream:
        lines = stream.read().splitlines(True)
    truncated = str(tmp_path / 'truncated.jsonl.gz')
    with gzip.open(truncated, 'wb') as stream:
        stream.writelines(lines[:-1])
    altered = str(tmp_path / 'altered.jsonl.gz')
    with gzip.open(altered, 'wb') as stream:
        stream.writelines(lines[:2] + [lines[2].replace(b'"p": "', b'"p": "/elsewhere')] + lines[3:])
    cut = str(tmp_path / 'cut.jsonl.gz')
    with open(export, 'rb') as source, open(cut, 'wb') as target:
        target.write(source.read()[:200])
    dst.ensure_path(zk_path)
    for path, message in ((truncated, 'truncated'), (altered, 'corrupt'), (cut, 'cannot read the export')):
        with pytest.raises(ConfigError, match=message):
            restore_export(dst, path, cluster='dst')
    assert dst.exists(base) is None


def test_restoring_only_the_acls_thaws_a_frozen_tree(clients, zk_path, tmp_path):
    src, _dst, holder = clients
    base = zk_path + '/app'
    build(src, holder, base)
    original = acls(src, base)
    export = str(tmp_path / 'app.jsonl.gz')
    export_scope(src, [base], export, cluster='src')
    frozen = [ACL(1, Id('world', 'anyone')), make_digest_acl(MIGRATOR[0], MIGRATOR[1], all=True)]
    for path in original:
        if path != base + '/session':
            src.set_acls(path, frozen)
    src.set(base + '/binary', b'changed since the export')
    done = restore_export(src, export, only_acls=True, cluster='src')
    assert done['acls_set'] == 10 and done['created'] == 0
    assert acls(src, base) == original
    assert src.get(base + '/binary')[0] == b'changed since the export'     # only the ACLs were touched
    assert restore_export(src, export, only_acls=True, cluster='src')['changed'] is False


def test_an_export_written_after_a_freeze_restores_the_saved_originals(clients, zk_path, tmp_path):
    """Written on a frozen tree, the nodes' ACLs are the frozen ones: the saved section is what a thaw and a restore use."""
    src, dst, holder = clients
    base = zk_path + '/app'
    build(src, holder, base)
    original = dict((path, tuple(acl)) for path, acl in acls(src, base).items() if path != base + '/session')
    frozen = [ACL(1, Id('world', 'anyone')), make_digest_acl(MIGRATOR[0], MIGRATOR[1], all=True)]
    for path in original:
        src.set_acls(path, frozen)
    export = str(tmp_path / 'frozen.jsonl.gz')
    export_scope(src, [base], export, cluster='src', saved_acls=original)
    assert read_saved_acls(export) == dict((path, tuple(tuple(entry) for entry in acl)) for path, acl in original.items())

    planned = restore_export(src, export, only_acls=True, check_mode=True, cluster='src')
    assert planned['changed'] is True and planned['acls_set'] == len(original)
    assert all(acl == [(1, 'world', 'anyone'), (31, 'digest', frozen[1].id.id)] for path, acl in acls(src, base).items()
               if path != base + '/session')          # check mode wrote nothing
    done = restore_export(src, export, only_acls=True, cluster='src')
    assert done['acls_set'] == len(original) and done['absent'] == 0
    assert dict((path, tuple(acl)) for path, acl in acls(src, base).items() if path != base + '/session') == original
    assert restore_export(src, export, only_acls=True, cluster='src')['changed'] is False

    # a restore elsewhere creates the nodes with their original ACLs, not the frozen ones
    dst.ensure_path(zk_path)
    restore_export(dst, export, cluster='dst')
    assert dict((path, tuple(acl)) for path, acl in acls(dst, base).items()) == original


def test_a_restore_into_another_path_and_overwrite(clients, zk_path, tmp_path):
    src, dst, holder = clients
    base = zk_path + '/app'
    build(src, holder, base)
    export = str(tmp_path / 'app.jsonl.gz')
    export_scope(src, [base], export, cluster='src')
    copy = zk_path + '/restored/app'
    with pytest.raises(ConfigError, match='does not exist on cluster dst'):
        restore_export(dst, export, into=copy, cluster='dst')
    assert dst.exists(zk_path) is None                    # refused before anything was written
    dst.ensure_path(zk_path + '/restored')
    done = restore_export(dst, export, into=copy, cluster='dst')
    assert done['created'] == 10 and done['paths']['created'][0] == copy
    outcome = verify(src, dst, [(base, copy)], compare=('data', 'type', 'counters', 'acl'), source_name='src', destination_name='dst')
    assert outcome.in_sync, outcome.to_dict()

    dst.set(copy + '/binary', b'changed on the copy')
    kept = restore_export(dst, export, into={base: copy}, cluster='dst')
    assert kept['changed'] is False and dst.get(copy + '/binary')[0] == b'changed on the copy'     # missing: existing data stays
    planned = restore_export(dst, export, into={base: copy}, mode='overwrite', check_mode=True, cluster='dst')
    assert planned['updated'] == 1 and dst.get(copy + '/binary')[0] == b'changed on the copy'
    done = restore_export(dst, export, into={base: copy}, mode='overwrite', cluster='dst')
    assert done['updated'] == 1 and done['paths']['updated'] == [copy + '/binary'] and done['created'] == 0
    assert dst.get(copy + '/binary')[0] == bytes(range(256)) * 3
    assert restore_export(dst, export, into={base: copy}, mode='overwrite', cluster='dst')['changed'] is False


def test_a_container_node_reads_as_persistent(clients, zk_path, tmp_path):
    """Servers show clients an ephemeralOwner of 0 for a container: it is exported, and restored, as persistent."""
    from ansible_collections.zookeeper.migration.plugins.module_utils._protocol import create_container
    src, dst, _holder = clients
    src.ensure_path(zk_path)
    create_container(src, zk_path + '/box', b'in a container')
    assert src.exists(zk_path + '/box').ephemeralOwner == 0
    export = str(tmp_path / 'box.jsonl.gz')
    assert export_scope(src, [zk_path], export, cluster='src') == 2
    record = [r for r in read_export(export)[1] if r['p'] == zk_path + '/box'][0]
    assert record['k'] == 'persistent' and not record.get('e')
    dst.ensure_path('/t')
    assert restore_export(dst, export, cluster='dst')['created'] == 2
    assert dst.get(zk_path + '/box')[0] == b'in a container'


def test_the_module_exports_and_restores_with_inline_connections(clients, zk_source, zk_dest, zk_path, tmp_path):
    from tests.integration.ansible_runner import run_playbook
    src, dst, holder = clients
    base = zk_path + '/app'
    build(src, holder, base)
    export = str(tmp_path / 'app.jsonl.gz')
    damaged = str(tmp_path / 'damaged.jsonl.gz')
    with open(damaged, 'wb') as target:
        target.write(b'\x1f\x8b not really gzip')
    auth = {'scheme': 'digest', 'credential': 'migrator'}
    dst.ensure_path(zk_path + '/restored')
    run = run_playbook('zk_backup_restore.yml', diff=True, extra_vars={
        'credentials': {'migrator': {'type': 'digest', 'username': MIGRATOR[0], 'password': MIGRATOR[1]}},
        'source': {'hosts': zk_source.host_list, 'auth': auth}, 'destination': {'hosts': zk_dest.host_list, 'auth': auth},
        'app': base, 'export': export, 'copy': zk_path + '/restored/app', 'damaged': damaged})
    assert run.rc == 0, run.output()
    assert run.task('Export')['changed'] is True and run.task('Export')['nodes'] == 10
    assert stat.S_IMODE(os.stat(export).st_mode) == 0o600
    planned = run.task('Restore in check mode')
    assert planned['changed'] is True and planned['created'] == 10 and planned['msg'].startswith('would restore')
    assert '%s: absent\n' % base in planned['diff']['before'] and '%s: created from the export\n' % base in planned['diff']['after']
    done = run.task('Restore')
    assert done['changed'] is True and done['created'] == 10 and done['ephemerals'] == 1 and done['counters_raised'] >= 2
    again = run.task('Restore again')
    assert again['changed'] is False and again['unchanged'] == 10 and again['diff'] == {'before': '', 'after': ''}
    copied = run.task('Restore a copy elsewhere')
    assert copied['changed'] is True and copied['created'] == 10 and copied['paths']['created'][0] == zk_path + '/restored/app'
    assert 'cannot read the export' in run.task('Bad damaged export')['msg']
    for target in (base, zk_path + '/restored/app'):
        outcome = verify(src, dst, [(base, target)], compare=('data', 'type', 'counters', 'acl'), source_name='src',
                         destination_name='dst')
        assert outcome.in_sync, outcome.to_dict()


def test_a_cutover_exports_before_freezing_and_the_export_thaws_the_source(cutover_env, tmp_path):
    from tests.integration.ansible_runner import run_playbook
    from tests.integration.test_cutover_engine import CREDENTIALS, all_acls
    env = cutover_env
    env.put_task()
    env.daemon('d1')
    env.in_sync()
    original = all_acls(env.src, env.app)
    backups = tmp_path / 'backups'
    backups.mkdir()
    done = env.cutover(backup_dir=str(backups)).complete(freeze_source=True)
    assert done['cutover']['state'] == 'completed' and done['backup'].startswith(str(backups))
    assert done['cutover']['details']['backup'] == done['backup']
    header, records = read_export(done['backup'])
    assert header['task'] == env.task and header['cluster'] == 'src'
    # the export holds the ACLs as they were before the freeze
    exported = dict((record['p'], [tuple(entry) for entry in record['a']]) for record in records if not record.get('e'))
    assert all(tuple(exported[path]) == acl for path, acl in original.items() if path in exported)
    assert all_acls(env.src, env.app) != original                        # frozen now
    damaged = str(tmp_path / 'damaged.jsonl.gz')
    with open(done['backup'], 'rb') as source, open(damaged, 'wb') as target:
        target.write(source.read()[:100])

    # the destination and the control store may be down: the thaw needs only the source and the file
    inline = {'hosts': env.source.host_list, 'auth': {'scheme': 'digest', 'credential': 'migrator'}}
    run = run_playbook('zk_backup.yml', extra_vars={
        'control': env.control(), 'credentials': CREDENTIALS, 'app': env.app, 'export': str(tmp_path / 'again.jsonl.gz'),
        'inline': inline, 'backup': done['backup'], 'damaged': damaged})
    assert run.rc == 0, run.output()
    checked = run.task('Export in check mode')
    assert checked['changed'] is True and checked['nodes'] == len(exported) and checked['msg'].startswith('would export')
    assert run.task('Export')['nodes'] == len(exported) and os.path.exists(str(tmp_path / 'again.jsonl.gz'))
    planned = run.task('Thaw in check mode')
    assert planned['changed'] is True and planned['acls_set'] == len(exported)
    thawed = run.task('Thaw from the cutover\'s export')
    assert thawed['changed'] is True and thawed['acls_set'] == len(exported)
    assert all_acls(env.src, env.app) == original
    assert run.task('Thaw again')['changed'] is False
    assert 'cannot read the export' in run.task('Bad damaged export')['msg']
