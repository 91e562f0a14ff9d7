# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End to end: playbooks/migrate.yml and rollback.yml on real systemd hosts and real ZooKeeper ensembles.

A 3-node source with a varied tree (nested configuration, binary and empty
data, sequential nodes, a digest-ACL'd node, ephemerals held by a live
client), a destination, and two daemon hosts (systemd-nspawn, offline
install from the wheelhouse). migrate.yml runs in bidirectional mode while
writers change both sides; the leader's host crashes mid-stream and the
other daemon takes over; a plain re-run only re-verifies and changes
nothing; the cutover runs with its explicit variable; an independent walk
of both trees compares them; a run after the cutover changes nothing and
restarts no daemon, and a second task keeps the daemons running through
the cutover; clients write on the destination; rollback.yml syncs it back,
freezes it, verifies and stops the task before thawing the source, so the
writes are on the source when it returns; clients write on the source and
those writes stay; decommission.yml removes the task, its fences and
journals, exporting the frozen destination's saved ACLs first.
"""

import json
import os
import random
import shutil
import threading
import time

import pytest

from tests.harness.hosts import HostSet
from tests.harness.migration_inventory import cluster_registration, wheelhouse_for, write_inventory
from tests.harness.zkharness import load_sample_tree
from tests.integration.ansible_runner import REPO_ROOT, run_playbook
from tests.integration.test_cutover_engine import acl_tuples
from tests.integration.sync_support import make_store, persistent_tree, tree_diff, wait_for, wait_trees_equal

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

MIGRATE = os.path.join(REPO_ROOT, 'playbooks', 'migrate.yml')
ROLLBACK = os.path.join(REPO_ROOT, 'playbooks', 'rollback.yml')
DECOMMISSION = os.path.join(REPO_ROOT, 'playbooks', 'decommission.yml')
# This module's own loopback addresses (molecule uses .21/.22, test_hosts .31-.35).
FIRST_ADDRESS = '127.0.0.41'
TASK = 'app-config'
ROOT = '/zookeeper-migration'
SERVICE = 'zookeeper-migration-sync'


class Writer(threading.Thread):
    """Creates, updates and deletes znodes under one subtree of one cluster until stopped."""

    def __init__(self, client, base, seed, rate=25.0):
        super(Writer, self).__init__(daemon=True)
        self.client = client
        self.base = base
        self.rng = random.Random(seed)
        self.interval = 1.0 / rate
        self.stopping = threading.Event()
        self.writes = 0
        self.errors = []

    def run(self):
        self.client.ensure_path(self.base)
        live = []
        while not self.stopping.is_set():
            try:
                roll = self.rng.random()
                if roll < 0.5 or len(live) < 5:
                    path = '%s/k-%05d' % (self.base, self.writes)
                    self.client.create(path, b'created %d' % self.writes)
                    live.append(path)
                elif roll < 0.85:
                    self.client.set(self.rng.choice(live), b'updated %d' % self.writes)
                else:
                    self.client.delete(live.pop(self.rng.randrange(len(live))))
                self.writes += 1
            except Exception as exc:  # pylint: disable=broad-except
                # a member may be leaving or a session moving: kazoo retries, we note and go on
                self.errors.append(repr(exc))
            self.stopping.wait(self.interval)

    def stop(self):
        self.stopping.set()
        self.join(30)


def acls_of(client, paths):
    """{path: ACL tuple in server order} of the given paths (the source's persistent nodes, not a walk)."""
    return dict((path, acl_tuples(client.get_acls(path)[0])) for path in paths)


# The first run deploys one host at a time (the default, a rolling deploy); the re-runs, where the deploy changes
# nothing, deploy both hosts at once to save time.
BOTH_AT_ONCE = {'zk_migration_deploy_serial': 2}


def recap_changed(run):
    return dict((host, counts.get('changed', 0)) for host, counts in run.recap().items())


def service_state(host):
    return host.ssh('systemctl is-active %s || true' % SERVICE).stdout.strip()


def test_migrate_and_rollback_playbooks_end_to_end(zk_cluster_factory, zk_client_factory, tmp_path):
    source = zk_cluster_factory('e2e-source', size=3, digest_auth=True)
    destination = zk_cluster_factory('e2e-destination', size=1, digest_auth=True)
    src = zk_client_factory(source)
    dst = zk_client_factory(destination)
    holder = zk_client_factory(source)
    sample = load_sample_tree(src, base='/app', services=3, ephemeral_holder=holder)
    assert sample['ephemeral'] == 6
    src.create('/app/empty', b'')
    src.create('/app/binary', bytes(range(256)) * 4)
    src.create('/app/odd name with spaces', b'\xff\x00odd')
    store = make_store(dst, ROOT)

    with HostSet('e2e', count=2, first_address=FIRST_ADDRESS) as hosts:
        by_name = dict((host.name, host) for host in hosts)
        wheelhouse = wheelhouse_for(hosts[0], REPO_ROOT)
        inventory = write_inventory(
            str(tmp_path / 'inventory'), list(hosts),
            cluster_registration('legacy', source.host_list), cluster_registration('target', destination.host_list),
            task=TASK, paths=['/app'], mode='bidirectional', wheelhouse_dir=wheelhouse,
            # both sides are written before the task exists: the initial sync copies each side's own nodes over
            extra_vars={'zk_migration_initial': 'union', 'zk_migration_initial_sync_timeout': 300,
                        # the harness's migration identity is the servers' super user: the freeze proof refuses it unless allowed
                        'zk_migration_allow_shared_identity': True})

        # writers on both sides while the daemons are deployed and the initial sync runs
        writers = [Writer(zk_client_factory(source), '/app/live-source', seed=1),
                   Writer(zk_client_factory(destination), '/app/live-destination', seed=2)]
        for writer in writers:
            writer.start()
        first = run_playbook(MIGRATE, inventory=inventory, timeout=900)
        assert first.rc == 0, first.output()
        assert first.task('Compare the source and the destination')['in_sync'] is True
        assert first.task('Cut over to the destination')['_status'] == 'skipped'   # no zk_migration_cutover: no cutover
        assert all(service_state(host) == 'active' for host in hosts)

        # the leader's host loses power mid-stream; the other daemon takes over
        leader = wait_for(lambda: store.current_leader(TASK), timeout=30, what='a leader of the task')
        standby = [name for name in by_name if name != leader][0]
        by_name[leader].crash()
        wait_for(lambda: (store.get_status(TASK) or {}).get('leader') == standby
                 and (store.get_status(TASK) or {}).get('phase') == 'streaming',
                 timeout=60, interval=0.5, what='%s leading the task after %s crashed' % (standby, leader))
        time.sleep(2)   # the writers go on against the new leader
        for writer in writers:
            writer.stop()
        assert all(writer.writes > 20 for writer in writers), [writer.writes for writer in writers]
        wait_trees_equal(src, dst, '/app', timeout=60)
        by_name[leader].start()

        # pausing through the playbook; a plain re-run then keeps it paused (and changes nothing)
        paused = run_playbook(MIGRATE, inventory=inventory, extra_vars=dict(BOTH_AT_ONCE, zk_migration_pause=True), timeout=900)
        assert paused.rc == 0, paused.output()
        assert paused.task('Create or update the sync task')['task']['state'] == 'paused'
        assert paused.task('Follow the initial sync')['_status'] == 'skipped'
        wait_for(lambda: (store.get_status(TASK) or {}).get('phase') == 'paused', timeout=30, what='the leader to pause')

        # a plain re-run: everything in place, only the verification runs again
        rerun = run_playbook(MIGRATE, inventory=inventory, extra_vars=BOTH_AT_ONCE, timeout=900)
        assert rerun.rc == 0, rerun.output()
        assert set(recap_changed(rerun).values()) == {0}, rerun.output()
        assert rerun.task('Compare the source and the destination')['in_sync'] is True
        assert all(service_state(host) == 'active' for host in hosts)
        assert store.get_task(TASK)['state'] == 'paused'

        # the documented entry points: a redeploy of one daemon host alone (--limit: the daemons of the others keep
        # leading), the verification alone, the sync step in check mode
        limited = run_playbook(MIGRATE, inventory=inventory, limit=hosts[0].name, timeout=600)
        assert limited.rc == 0, limited.output()
        assert recap_changed(limited) == {hosts[0].name: 0}, limited.output()
        verify_only = run_playbook(MIGRATE, inventory=inventory, tags=['verify'], timeout=600)
        assert verify_only.rc == 0 and verify_only.task('Compare the source and the destination')['in_sync'] is True, verify_only.output()
        assert set(recap_changed(verify_only)) == {'localhost'}, verify_only.output()
        sync_check = run_playbook(MIGRATE, inventory=inventory, tags=['sync'], check=True, timeout=600)
        assert sync_check.rc == 0 and sync_check.task('Create or update the sync task')['changed'] is False, sync_check.output()
        assert store.get_task(TASK)['state'] == 'paused'

        # high availability counts the daemon hosts deployed: with one of two reachable, nothing is synced
        ghost_inventory = str(tmp_path / 'ghost-inventory')
        shutil.copytree(inventory, ghost_inventory)
        with open(os.path.join(ghost_inventory, 'hosts.yml')) as handle:
            layout = json.load(handle)
        daemons = layout['all']['children']['zk_migration_daemons']['hosts']
        daemons['e2e-ghost'] = dict(daemons.pop(hosts[1].name), ansible_host='127.3.3.3')     # nothing listens there
        with open(os.path.join(ghost_inventory, 'hosts.yml'), 'w') as handle:
            json.dump(layout, handle)
        lonely = run_playbook(MIGRATE, inventory=ghost_inventory, extra_vars={'zk_migration_deploy_serial': 2}, timeout=600)
        assert lonely.rc != 0, lonely.output()
        assert 'only 1 sync daemon host(s) were deployed (%s of' % hosts[0].name in lonely.output(), lonely.output()
        assert 'Create or update the sync task' not in lonely.tasks(), lonely.output()
        assert store.get_task(TASK)['state'] == 'paused' and all(service_state(host) == 'active' for host in hosts)

        source_paths = sorted(persistent_tree(src, '/app'))
        acls_before = acls_of(src, source_paths)

        # another task runs on the same daemons: the cutover of this one must leave them running
        src.create('/other/key', b'another application', makepath=True)
        store.put_task({'name': 'other-app', 'source': 'legacy', 'destination': 'target', 'paths': ['/other']})
        wait_for(lambda: dst.exists('/other/key'), timeout=60, what='the other task to sync')

        # the cutover, asked for explicitly
        cutover = run_playbook(MIGRATE, inventory=inventory, extra_vars=dict(BOTH_AT_ONCE, zk_migration_cutover=True, zk_migration_resume=True),
                               timeout=900)
        assert cutover.rc == 0, cutover.output()
        result = cutover.task('Cut over to the destination')
        assert result['changed'] is True and result['cutover']['state'] == 'completed', result
        assert result['freeze_proof']['other_identity_can_write'] is False and result['write_outage']['seconds'] > 0
        assert 'other-app still use them' in cutover.task('Say why the sync daemons keep running')['msg']
        assert cutover.task('Stop the sync daemon')['_status'] == 'skipped'
        assert all(service_state(host) == 'active' for host in hosts)
        src.set('/other/key', b'the other task still syncs')
        wait_for(lambda: dst.get('/other/key')[0] == b'the other task still syncs', timeout=60, what='the other task to go on')

        # an independent comparison of both trees (plain kazoo reads)
        source_tree = persistent_tree(src, '/app')
        destination_tree = persistent_tree(dst, '/app')
        assert source_tree == destination_tree, tree_diff(source_tree, destination_tree)
        assert '/app/binary' in destination_tree and destination_tree['/app/binary'] == bytes(range(256)) * 4
        assert destination_tree['/app/odd name with spaces'] == b'\xff\x00odd'
        assert acls_of(dst, source_paths) == acls_before
        for service in range(3):
            instances = '/app/service-%d/instances' % service
            assert src.get_children(instances) and dst.get_children(instances) == []   # ephemerals never copied
            queue = '/app/service-%d/queue' % service
            assert dst.get(queue)[1].cversion >= src.get(queue)[1].cversion       # sequential counters kept
        assert acls_of(src, source_paths) != acls_before                          # the source is frozen

        # after the cutover a re-run detects it and changes nothing
        after = run_playbook(MIGRATE, inventory=inventory, timeout=600)
        assert after.rc == 0, after.output()
        assert set(recap_changed(after).values()) == {0}, after.output()
        assert 'was cut over at' in after.task('Say that the cutover is recorded')['msg']
        # who still uses each cluster: the source's clients (the test's own kazoo sessions) and the destination's per member
        users = after.task('Report who still uses each cluster')['msg']
        assert users[0].startswith('source legacy: ') and 'client session(s)' in users[0], users
        assert users[1].startswith('destination target, connections per member:') and destination.host_list[0] in users[1], users
        assert users[2] == 'verification at the cutover: in sync', users
        # the look is kept in the cutover record with the time it was taken (by the cutover; the re-run found the same)
        look = store.get_cutover(TASK)['details']['after_cutover']
        assert look['observed_at'] >= store.get_cutover(TASK)['completed_at'] and look['source_clients'] >= 1, look
        assert after.task('Look at who still uses the source after the cutover')['after_cutover']['observed_at'] == look['observed_at']
        assert after.task('Create or update the sync task')['_status'] == 'skipped'
        assert all(service_state(host) == 'active' for host in hosts)

        # clients moved to the destination write there; the way back is the mirror of the cutover
        dst.set('/app/service-0/config', b'changed on the new cluster')
        dst.create('/app/made-on-the-new-cluster', b'new')
        rollback = run_playbook(ROLLBACK, inventory=inventory, timeout=900)
        assert rollback.rc == 0, rollback.output()
        rolled = rollback.task('Roll the cutover back')
        assert rolled['changed'] is True and rolled['verify']['in_sync'] is True, rolled
        assert 'Move the clients back to the source now' in rollback.task('Say where the clients go')['msg']
        # when it returns, every destination write is on the source, which has its ACLs back; the task is stopped
        assert src.get('/app/service-0/config')[0] == b'changed on the new cluster'
        assert src.get('/app/made-on-the-new-cluster')[0] == b'new'
        assert acls_of(src, source_paths) == acls_before
        source_tree = persistent_tree(src, '/app')
        assert source_tree == persistent_tree(dst, '/app'), tree_diff(source_tree, persistent_tree(dst, '/app'))
        record = store.get_cutover(TASK)
        assert record['state'] == 'rolled_back' and record['details']['rollback']['state'] == 'completed'
        assert store.get_task(TASK)['state'] == 'stopped'
        # the clients are back on the source: their writes stay, nothing syncs over them
        src.set('/app/service-1/config', b'written to the old cluster')
        again = run_playbook(ROLLBACK, inventory=inventory, timeout=600)
        assert again.rc == 0, again.output()
        assert set(recap_changed(again).values()) == {0}, again.output()
        assert (store.get_status(TASK) or {}).get('phase') in ('stopped', 'cut_over')
        assert src.get('/app/service-1/config')[0] == b'written to the old cluster'
        assert dst.get('/app/service-1/config')[0] != b'written to the old cluster'   # never source -> destination again

        # the end: the task and its traces go; the other task keeps the daemons running
        decommission = run_playbook(DECOMMISSION, inventory=inventory, extra_vars={'zk_migration_report_dir': str(tmp_path / 'reports')},
                                    timeout=600)
        assert decommission.rc == 0, decommission.output()
        removed = decommission.task('Remove the task and what the migration left behind')
        assert removed['changed'] is True and removed['removed']['control'] is True, removed
        assert removed['saved_acls_export'] and os.path.exists(removed['saved_acls_export'])   # the frozen destination's ACLs
        assert store.get_task(TASK) is None and TASK not in store.list_tasks()
        for client in (src, dst):
            assert not client.exists('%s/fence/%s' % (ROOT, TASK)) and not client.exists('%s/journal/%s' % (ROOT, TASK))
        assert decommission.task('Stop the sync daemon')['_status'] == 'skipped'
        assert all(service_state(host) == 'active' for host in hosts)
        assert 'kept for other-app' in ' '.join(decommission.task('Show what was removed')['msg'])
        again = run_playbook(DECOMMISSION, inventory=inventory, extra_vars={'zk_migration_report_dir': str(tmp_path / 'reports')},
                             timeout=600)
        assert again.rc == 0 and set(recap_changed(again).values()) == {0}, again.output()
