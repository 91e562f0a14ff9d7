# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cutover engine (_cutover.py) against real ZooKeeper ensembles and a real sync daemon process.

Both clusters are registered with a digest migration identity; the source
tree carries varied ACLs (open, app-only plus migrator, READ for everyone,
an ip entry) in a deliberate entry order, so "restored exactly" means the
same entries in the same order, read back with getACL on every node. The
``CutoverEnv`` here is also used by test_module_zk_cutover.py.
"""

import json
import os
import re

import pytest
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, OPEN_ACL_UNSAFE, Id, make_digest_acl, make_digest_acl_credential

from ansible_collections.zookeeper.migration.plugins.module_utils import _control
from ansible_collections.zookeeper.migration.plugins.module_utils._cutover import Cutover, CutoverError, CutoverOptions
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import AuthFailedError, ConfigError

from tests.integration.sync_support import DaemonProcess, persistent_tree, wait_for, wait_streaming

pytestmark = pytest.mark.integration

MIGRATOR = ('migrator', 'migrator-pw')
APP = ('app', 'app-pw')
CREDENTIALS = {'migrator': {'type': 'digest', 'username': MIGRATOR[0], 'password': MIGRATOR[1]}}
READ = 1


def digest_id(user):
    return make_digest_acl_credential(*user)


def acl_tuples(acl):
    return tuple((entry.perms, entry.id.scheme, entry.id.id) for entry in acl)


def all_acls(client, base, fallback=None):
    """{path: ACL tuple in server order} of every znode under ``base`` (plain kazoo walk).

    ``fallback``: another client (identity) for the nodes ``client`` may not read.
    """
    out = {}
    pending = [base]
    while pending:
        path = pending.pop()
        try:
            acl, _stat = client.get_acls(path)
            children = client.get_children(path)
        except NoAuthError:
            if fallback is None:
                raise
            acl, _stat = fallback.get_acls(path)
            children = fallback.get_children(path)
        out[path] = acl_tuples(acl)
        pending.extend(path.rstrip('/') + '/' + child for child in children)
    return out


def build_source(client, holder, app):
    """A configuration tree with varied ACLs (entry order chosen on purpose), a sequential queue and ephemerals."""
    migrator_all = make_digest_acl(MIGRATOR[0], MIGRATOR[1], all=True)
    app_all = make_digest_acl(APP[0], APP[1], all=True)
    world_read = ACL(READ, Id('world', 'anyone'))
    client.create(app, b'root', acl=OPEN_ACL_UNSAFE, makepath=True)
    client.create(app + '/config', b'{"v": 1}', acl=[world_read, migrator_all])
    for index in range(12):
        if index % 4 == 0:
            acl = OPEN_ACL_UNSAFE
        elif index % 4 == 1:
            acl = [app_all, migrator_all, world_read]
        elif index % 4 == 2:
            acl = [world_read, app_all, migrator_all]
        else:
            acl = [ACL(31, Id('ip', '127.0.0.1')), migrator_all]
        payload = bytes(range(index, index + 30)) if index % 3 == 0 else ('value-%d' % index).encode()
        client.create('%s/config/key-%02d' % (app, index), payload, acl=acl)
    client.create(app + '/queue', b'', acl=[migrator_all, world_read])
    jobs = [client.create(app + '/queue/job-', ('job %d' % index).encode(), sequence=True, acl=OPEN_ACL_UNSAFE) for index in range(4)]
    client.delete(jobs[1])   # the queue's sequential counter (4) is now above its number of children (3)
    client.create(app + '/services', b'', acl=OPEN_ACL_UNSAFE)
    for index in range(2):
        holder.create('%s/services/host-%d' % (app, index), b'10.0.0.%d' % index, ephemeral=True)


def write_credentials_file(path, mapping):
    with open(path, 'w') as handle:
        json.dump(mapping, handle)
    os.chmod(path, 0o600)
    return path


class CutoverEnv(object):
    """Registered clusters (digest migration identity), a task over ``<base>/app`` and daemons started on demand."""

    def __init__(self, source, destination, base, tmp_path, client_factory, migrator=MIGRATOR):
        self.migrator = migrator
        self.credentials = {'migrator': {'type': 'digest', 'username': migrator[0], 'password': migrator[1]}}
        self.source = source
        self.destination = destination
        self.base = base
        self.app = base + '/app'
        self.tmp_path = tmp_path
        self.src = client_factory(source, auth_data=[('digest', '%s:%s' % migrator)])
        self.dst = client_factory(destination, auth_data=[('digest', '%s:%s' % migrator)])
        self.src_app = client_factory(source, auth_data=[('digest', '%s:%s' % APP)])
        self.dst_app = client_factory(destination, auth_data=[('digest', '%s:%s' % APP)])
        self.holder = client_factory(source)
        # the control store is the migration identity's (its ACL), as in production: modules and daemons authenticate to it
        self.control_client = client_factory(destination, auth=False, auth_data=[('digest', '%s:%s' % migrator)])
        self.root = '/zkm' + re.sub(r'[^A-Za-z0-9_.-]+', '-', base)
        self.task = 'task-%s' % re.sub(r'[^A-Za-z0-9]+', '-', base.rsplit('/', 1)[1])[-60:].strip('-')
        self.store = _control.ControlStore(self.control_client, self.root)
        self.store.ensure_root()
        for name, cluster in (('src', source), ('dst', destination)):
            self.store.put_cluster({'name': name, 'hosts': cluster.host_list, 'session_timeout': 4.0, 'connect_timeout': 10.0,
                                    'auth': {'scheme': 'digest', 'credential': 'migrator'}})
        self.credentials_file = write_credentials_file(str(tmp_path / 'credentials.json'), self.credentials)
        self.daemons = []
        build_source(self.src, self.holder, self.app)

    def control(self):
        """The ``control`` option of the modules for this environment."""
        return dict(self.control_connection(), root=self.root)

    def control_connection(self):
        return {'hosts': self.destination.host_list, 'auth': {'scheme': 'digest', 'credential': 'migrator'}}

    def put_task(self, **fields):
        spec = {'name': self.task, 'source': 'src', 'destination': 'dst', 'paths': [self.app]}
        spec.update(fields)
        self.store.put_task(spec)
        return self.store.get_task(self.task)

    def daemon(self, daemon_id='d1'):
        process = DaemonProcess(str(self.tmp_path), daemon_id, self.control_connection(), self.root,
                                credentials_file=self.credentials_file)
        self.daemons.append(process)
        return process.start()

    def in_sync(self, timeout=30.0):
        """Wait until the task is streaming with an empty queue and both persistent trees (data) are equal."""
        wait_streaming(self.store, self.task, timeout=timeout)
        return wait_for(lambda: persistent_tree(self.src, self.app) == persistent_tree(self.dst, self.app), timeout=timeout,
                        what='both trees under %s to be equal' % self.app)

    def cutover(self, **options):
        options.setdefault('drain_timeout', 60.0)
        return Cutover(self.store, self.task, credentials=self.credentials, options=CutoverOptions(**options))

    def logs(self):
        return '\n'.join(daemon.tail(80) for daemon in self.daemons)


@pytest.fixture
def env(cutover_env):
    return cutover_env


def frozen_expected(original):
    """What a frozen node's ACL reads back as: READ of each original entry that had it, plus the migrator (ALL)."""
    entries = []
    for perms, scheme, ident in original:
        if perms & READ and (READ, scheme, ident) not in entries:
            entries.append((READ, scheme, ident))
    migrator = (31, 'digest', digest_id(MIGRATOR))
    return tuple(entries) + ((migrator,) if migrator not in entries else ())


def persistent_paths(client, base):
    return sorted(path for path in persistent_tree(client, base))


# --------------------------------------------------------------------------

def test_complete_with_freeze_then_rollback_after_completion(env):
    env.put_task()
    env.daemon('d1')
    env.in_sync()
    original = all_acls(env.src, env.app)
    destination_before = all_acls(env.dst, env.app)
    migrated = persistent_paths(env.src, env.app)
    assert len(migrated) == 1 + 1 + 12 + 1 + 3 + 1

    # check mode: the preflight runs, nothing changes
    planned = env.cutover().complete(freeze_source=True, check_mode=True)
    assert planned['changed'] is True and planned['frozen'] == len(migrated)
    assert env.store.get_cutover(env.task) is None and all_acls(env.src, env.app) == original
    assert env.store.get_task(env.task)['state'] == 'running'

    result = env.cutover().complete(freeze_source=True)
    assert result['changed'] is True, result
    assert result['frozen'] == len(migrated)
    assert result['verify']['in_sync'] is True and result['verify']['acl_checked'] is True
    # the daemon never copied a frozen ACL: the destination ACLs did not need a single fix
    assert result['acl_fixed'] == 0
    assert all_acls(env.dst, env.app) == destination_before
    record = env.store.get_cutover(env.task)
    assert record['state'] == 'completed' and record['source_frozen'] is True and record['completed_at']
    assert record['direction_after_cutover'] == 'none'
    spec = env.store.get_task(env.task)
    assert spec['state'] == 'stopped' and spec['sync_acl'] is True
    assert sorted(env.store.load_saved_acls(env.task)) == migrated
    assert env.store.load_saved_acls(env.task) == dict((path, original[path]) for path in migrated)

    # the source is read-only for everyone but the migrator; ephemerals were left alone
    frozen = all_acls(env.src, env.app)
    for path in migrated:
        assert frozen[path] == frozen_expected(original[path]), path
    for path in (env.app + '/services/host-0', env.app + '/services/host-1'):
        assert frozen[path] == original[path]
    with pytest.raises(NoAuthError):
        env.src_app.set(env.app + '/config/key-01', b'app write after the cutover')
    with pytest.raises(NoAuthError):
        env.holder.create(env.app + '/config/new', b'x')
    assert env.src_app.get(env.app + '/config/key-01')[0] == b'value-1'   # READ kept

    # the daemon stops syncing: a write on the destination stays there
    wait_for(lambda: (env.store.get_status(env.task) or {}).get('phase') in ('stopped', 'cut_over'), timeout=15,
             what='the daemon to stop the task')
    # re-running a completed cutover changes nothing
    again = env.cutover().complete(freeze_source=True)
    assert again['changed'] is False and again['operations'] == []
    assert env.store.get_cutover(env.task) == record

    # the cutover proved its freeze and measured the write outage
    assert result['freeze_proof']['probed'] is True and result['freeze_proof']['other_identity_can_write'] is False
    assert result['freeze_proof']['migrator_bypasses_acls'] is False
    assert result['write_outage']['seconds'] > 0 and record['details']['write_outage'] == result['write_outage']
    assert planned_outage(env)['seconds'] > 0

    # rollback after completion, the mirror of the cutover: the destination (the truth) is synced back, frozen,
    # drained and verified; the task stops; only then is the source thawed
    env.dst.set(env.app + '/config/key-04', b'written on the destination after the cutover')
    env.dst.create(env.app + '/config/made-on-destination', b'new', acl=[
        ACL(READ, Id('world', 'anyone')), make_digest_acl(APP[0], APP[1], all=True), make_digest_acl(MIGRATOR[0], MIGRATOR[1], all=True)])
    planned = env.cutover().rollback(check_mode=True)
    assert planned['changed'] is True and planned['restored'] == len(migrated) and planned['frozen'] == len(migrated) + 1
    assert all_acls(env.src, env.app) == frozen and env.store.get_task(env.task)['state'] == 'stopped'
    destination_original = all_acls(env.dst, env.app)
    rolled = env.cutover().rollback()
    assert rolled['changed'] is True, rolled
    # when it returns, every write made on the destination is on the source, which has its original ACLs back
    assert env.src.get(env.app + '/config/key-04')[0] == b'written on the destination after the cutover'
    assert env.src.get(env.app + '/config/made-on-destination')[0] == b'new'
    thawed = all_acls(env.src, env.app)
    assert dict((path, thawed[path]) for path in migrated) == dict((path, original[path]) for path in migrated)
    assert thawed[env.app + '/config/made-on-destination'] == destination_original[env.app + '/config/made-on-destination']
    assert rolled['verify']['in_sync'] is True and rolled['freeze_proof']['other_identity_can_write'] is False
    assert rolled['write_outage']['seconds'] > 0
    record = env.store.get_cutover(env.task)
    assert record['state'] == 'rolled_back' and record['direction_after_cutover'] == 'destination_to_source'
    assert record['completed_at'] and record['source_frozen'] is False and record['details']['rollback']['state'] == 'completed'
    assert env.store.load_saved_acls(env.task) == {}
    # the destination is frozen now, its originals saved for a decommission or a later restore
    assert env.store.load_saved_acls(env.task, side='destination') == dict(
        (path, destination_original[path]) for path in persistent_paths(env.dst, env.app))
    with pytest.raises(NoAuthError):
        env.dst_app.set(env.app + '/config/key-01', b'a late write on the destination')
    assert env.store.get_task(env.task)['state'] == 'stopped'
    # a client write on the source after the rollback survives: nothing syncs over it any more
    env.src_app.set(env.app + '/config/key-01', b'written on the source after the rollback')
    again = env.cutover().rollback()
    assert again['changed'] is False, again
    wait_for(lambda: (env.store.get_status(env.task) or {}).get('phase') in ('stopped', 'cut_over'), timeout=15,
             what='the daemon to stop the task')
    assert env.src.get(env.app + '/config/key-01')[0] == b'written on the source after the rollback'
    with pytest.raises(ConfigError, match='rolled back'):
        env.cutover().complete()


def planned_outage(env):
    """The check-mode estimate of a second freeze (the task is cut over, so plan a rollback instead)."""
    return env.cutover().rollback(check_mode=True)['write_outage_estimate']


def test_interrupted_cutover_rolled_back_before_completion(env, monkeypatch):
    env.put_task(mode='bidirectional')
    env.daemon('d1')
    env.in_sync()
    original = all_acls(env.src, env.app)
    migrated = persistent_paths(env.src, env.app)

    # the run dies right after the freeze and drain (a crash, not an error it could handle)
    def crash(self, *args, **kwargs):
        raise KeyboardInterrupt('simulated crash')
    monkeypatch.setattr(Cutover, '_wait_phase', crash)
    with pytest.raises(KeyboardInterrupt):
        env.cutover().complete(freeze_source=True)
    monkeypatch.undo()
    record = env.store.get_cutover(env.task)
    assert record['state'] == 'frozen' and record['source_frozen'] is True
    assert all_acls(env.src, env.app) != original
    assert sorted(env.store.load_saved_acls(env.task)) == migrated
    spec = env.store.get_task(env.task)
    assert spec['state'] == 'paused' and spec['sync_acl'] is False   # what the cutover had set, before it died

    rolled = env.cutover().rollback()
    assert rolled['changed'] is True and rolled['restored'] == len(migrated)
    assert all_acls(env.src, env.app) == original      # every node, entries in the same order
    record = env.store.get_cutover(env.task)
    assert record['state'] == 'rolled_back' and record['source_frozen'] is False and record['completed_at'] is None
    assert record['direction_after_cutover'] == 'none'
    spec = env.store.get_task(env.task)
    assert spec['state'] == 'running' and spec['sync_acl'] is True and spec['mode'] == 'bidirectional'
    # syncing resumes from the source (and, bidirectional, back)
    env.src.set(env.app + '/config/key-00', b'after the rollback')
    env.dst.create(env.app + '/config/from-destination', b'd', acl=OPEN_ACL_UNSAFE)
    wait_for(lambda: env.dst.get(env.app + '/config/key-00')[0] == b'after the rollback', timeout=30, what='source write synced')
    wait_for(lambda: env.src.exists(env.app + '/config/from-destination') is not None, timeout=30, what='destination write synced back')
    assert env.cutover().rollback()['changed'] is False
    # a new cutover can start from a rolled-back one
    result = env.cutover().complete(freeze_source=False)
    assert result['changed'] is True and env.store.get_cutover(env.task)['state'] == 'completed'
    acls = all_acls(env.src, env.app)
    assert all(acls[path] == acl for path, acl in original.items())


def test_interrupted_cutover_resumes_and_keeps_the_first_saved_acls(env, monkeypatch):
    env.put_task()
    env.daemon('d1')
    env.in_sync()
    original = all_acls(env.src, env.app)

    def crash(self, *args, **kwargs):
        raise KeyboardInterrupt('simulated crash')
    monkeypatch.setattr(Cutover, '_wait_phase', crash)
    with pytest.raises(KeyboardInterrupt):
        env.cutover().complete(freeze_source=True)
    monkeypatch.undo()
    # resumed without freeze_source: the source stays frozen, the saved originals stay the first ones
    result = env.cutover().complete(freeze_source=False)
    assert result['changed'] is True and any('interrupted cutover' in warning for warning in result['warnings'])
    record = env.store.get_cutover(env.task)
    assert record['state'] == 'completed' and record['source_frozen'] is True
    saved = env.store.load_saved_acls(env.task)
    assert all(saved[path] == original[path] for path in saved)
    assert env.store.get_task(env.task)['sync_acl'] is True
    env.cutover().rollback()
    assert all_acls(env.src, env.app) == original


def test_failed_final_verification_aborts_and_restores(env, monkeypatch):
    env.put_task()
    env.daemon('d1')
    env.in_sync()
    original = all_acls(env.src, env.app)
    real_verify = Cutover._verify_trees

    def verify_after_a_stray_write(self, reference_client, copy_client, *args):
        # a client writes to the destination while the task is paused: the verification must catch it
        copy_client.set(env.app + '/config/key-03', b'stray write on the destination')
        return real_verify(self, reference_client, copy_client, *args)
    monkeypatch.setattr(Cutover, '_verify_trees', verify_after_a_stray_write)
    with pytest.raises(CutoverError) as failed:
        env.cutover().complete(freeze_source=True)
    monkeypatch.undo()
    error = failed.value
    assert error.aborted is True
    assert 'final verification of task %s failed: 1 data_mismatch (first: %s/config/key-03)' % (env.task, env.app) in str(error)
    assert 'source ACLs restored' in str(error)
    assert error.report['differences']['data_mismatch'] == [env.app + '/config/key-03']
    assert all_acls(env.src, env.app) == original
    record = env.store.get_cutover(env.task)
    assert record['state'] == 'aborted' and record['source_frozen'] is False
    assert record['verify']['blocking'] == {'data_mismatch': 1}
    assert env.store.load_saved_acls(env.task) == {}
    spec = env.store.get_task(env.task)
    assert spec['state'] == 'running' and spec['sync_acl'] is True
    # syncing again: the one-way task puts the source's data back on the destination
    wait_for(lambda: env.dst.get(env.app + '/config/key-03')[0] == env.src.get(env.app + '/config/key-03')[0], timeout=30,
             what='the stray write to be overwritten by the source')


def test_preflight_refusals_change_nothing(env, zk_source, zk_client_factory):
    env.put_task()
    # no daemon yet: nobody leads the task
    with pytest.raises(CutoverError, match='no daemon leads task'):
        env.cutover(drain_timeout=2).complete()
    assert env.store.get_cutover(env.task) is None
    # a task that is not running
    env.store.update_task(env.task, lambda spec: spec.update(state='paused'))
    with pytest.raises(ConfigError, match='is paused: a cutover drains a running task'):
        env.cutover().complete()
    env.store.update_task(env.task, lambda spec: spec.update(state='running'))
    env.daemon('d1')
    env.in_sync()
    original = all_acls(env.src, env.app)
    # a node whose digest hashes the migrator cannot read (no ADMIN): its ACL could not be restored exactly
    masked = env.app + '/config/app-only-admin'
    env.src.create(masked, b'x', acl=[make_digest_acl(APP[0], APP[1], all=True), ACL(READ, Id('world', 'anyone'))])
    with pytest.raises(AuthFailedError, match='masked digest hashes'):
        env.cutover().complete(freeze_source=True)
    assert env.store.get_cutover(env.task) is None
    assert all_acls(env.src, env.app) == dict(original, **{masked: all_acls(env.src, masked)[masked]})
    env.src.delete(masked)
    # an anonymous source identity cannot keep its own rights in a frozen ACL
    env.store.put_cluster({'name': 'src', 'hosts': zk_source.host_list, 'session_timeout': 4.0})
    with pytest.raises(ConfigError, match='authenticated migration identity'):
        env.cutover().complete(freeze_source=True)
    assert env.store.get_cutover(env.task) is None and all_acls(env.src, env.app) == original
    assert env.store.get_task(env.task)['state'] == 'running'
    # rolling back what never happened
    outcome = env.cutover().rollback()
    assert outcome['changed'] is False and 'nothing to roll back' in outcome['msg']


def test_ids_handed_out_after_the_last_drain_are_carried(env, monkeypatch):
    """An ID generator churned on the source after the leader paused (no child left) is carried by the cutover itself."""
    ids = env.app + '/ids'
    env.src.create(ids, b'', acl=OPEN_ACL_UNSAFE)
    env.put_task(counters='all')
    env.daemon('d1')
    env.in_sync()
    real_pause = Cutover._pause

    def pause_then_hand_out_ids(self):
        real_pause(self)
        for _round in range(40):
            env.src.delete(env.src.create(ids + '/id-', b'', sequence=True))
    monkeypatch.setattr(Cutover, '_pause', pause_then_hand_out_ids)
    done = env.cutover().complete()
    assert done['cutover']['state'] == 'completed', done
    assert any('raise the sequential counters of' in operation for operation in done['operations']), done['operations']
    # the next ID on the destination is above every one the source handed out
    assert env.dst.create(ids + '/id-', b'', sequence=True) == ids + '/id-%010d' % 40
