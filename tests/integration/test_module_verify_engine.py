# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verification engine behind zk_verify (_verify.py) against real ZooKeeper.

What a playbook cannot time precisely is tested here: a change made while
the engine waits to settle (the engine's ``sleep`` is replaced by one that
writes, as an in-flight sync would), a change between the snapshot and the
spot checks, missing roots, unreadable nodes and a ZooKeeper 3.4 source
(no multiRead).
"""

import pytest
from kazoo.security import make_digest_acl

from ansible_collections.zookeeper.migration.plugins.module_utils._apply import copy as copy_tree
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import AuthFailedError, NoNodeError
from ansible_collections.zookeeper.migration.plugins.module_utils._verify import Verifier, verify

pytestmark = pytest.mark.integration


def build(client, base, count=20):
    client.create(base + '/conf', b'', makepath=True)
    for index in range(count):
        client.create('%s/conf/k%02d' % (base, index), ('v%d' % index).encode())


@pytest.fixture
def pair(zk_source, zk_dest, zk_client_factory, zk_path):
    source = zk_client_factory(zk_source)
    destination = zk_client_factory(zk_dest)
    build(source, zk_path)
    copy_tree(source, destination, [zk_path])
    return source, destination


def test_settle_forgives_a_change_that_lands_during_the_delay(pair, zk_path):
    source, destination = pair
    destination.delete(zk_path + '/conf/k03')
    slept = []

    def sync_lands(seconds):
        slept.append(seconds)
        destination.create(zk_path + '/conf/k03', b'v3')     # what a running sync would do meanwhile

    result = Verifier(source, destination, [zk_path], settle=2, sleep=sync_lands).run()
    assert slept == [2.0]
    assert result.in_sync is True
    assert result.first_differences == 1
    assert result.settled == [zk_path + '/conf/k03']
    assert result.to_dict()['settle']['method'] == 'reread'


def test_settle_keeps_a_difference_that_stays(pair, zk_path):
    source, destination = pair
    destination.set(zk_path + '/conf/k04', b'stale')
    result = verify(source, destination, [zk_path], settle=0.2)
    assert result.in_sync is False
    assert result.diff.data_mismatch == [zk_path + '/conf/k04']
    assert result.settled == []


def test_settle_by_snapshot_ignores_differences_that_appear_meanwhile(pair, zk_path):
    source, destination = pair
    destination.delete(zk_path + '/conf/k05')
    destination.set(zk_path + '/conf/k06', b'stale')

    def meanwhile(_seconds):
        destination.create(zk_path + '/conf/k05', b'v5')      # carried over
        source.set(zk_path + '/conf/k07', b'new value')       # a new change, not carried over yet

    verifier = Verifier(source, destination, [zk_path], settle=1, sleep=meanwhile, recheck_read_limit=0)
    result = verifier.run()
    assert result.to_dict()['settle']['method'] == 'snapshot'
    assert result.diff.data_mismatch == [zk_path + '/conf/k06']   # k07 is in flight, k05 settled
    assert result.diff.missing == []
    assert result.settled == [zk_path + '/conf/k05']


def test_spot_check_reads_live_and_compares_bytes(pair, zk_path):
    source, destination = pair

    class ChangeAfterSnapshot(Verifier):
        """Changes a znode after the snapshots were taken, before the spot checks read it."""

        def _sample(self, source, exclude_paths):
            destination.set(zk_path + '/conf/k08', b'v8 changed after the snapshot')
            return [zk_path + '/conf/k08', zk_path + '/conf/k09']

    result = ChangeAfterSnapshot(source, destination, [zk_path], spot_check=2).run()
    assert result.diff.in_sync is True          # the snapshots agreed
    assert result.in_sync is False              # the live re-read did not
    assert result.spot_mismatched == [zk_path + '/conf/k08']
    assert result.spot_details[zk_path + '/conf/k08'].startswith('data differs')
    assert len(result.spot_checked) == 2


def test_spot_checks_pick_random_persistent_nodes(pair, zk_path):
    source, destination = pair
    result = verify(source, destination, [zk_path], spot_check=5)
    assert result.in_sync is True
    assert len(result.spot_checked) == 5 and len(set(result.spot_checked)) == 5
    assert all(path.startswith(zk_path) for path in result.spot_checked)


def test_missing_destination_root_is_all_missing_and_missing_source_root_fails(pair, zk_path):
    source, destination = pair
    result = verify(source, destination, [(zk_path, zk_path + '-nowhere')])
    assert result.counts['missing'] == 22 and result.counts['destination_nodes'] == 0
    with pytest.raises(NoNodeError) as error:
        verify(source, destination, [zk_path + '-nowhere'])
    assert zk_path + '-nowhere' in str(error.value)


def test_control_root_and_excludes_are_left_out(pair, zk_path):
    source, destination = pair
    destination.create(zk_path + '/conf/zookeeper-migration-root/clusters', b'', makepath=True)
    destination.create(zk_path + '/conf/cache-1', b'')
    result = verify(source, destination, [zk_path], control_root=zk_path + '/conf/zookeeper-migration-root',
                    exclude=[zk_path + '/conf/cache-*'])
    assert result.in_sync is True, result.to_dict()


def test_unreadable_node_fails_with_its_path(zk_auth, zk_client_factory, zk_path):
    admin = zk_client_factory(zk_auth)
    anonymous = zk_client_factory(zk_auth, auth=False)
    admin.create(zk_path + '/open', b'x', makepath=True)
    admin.create(zk_path + '/locked', b'secret', acl=[make_digest_acl('app', 'app-password', all=True)])
    with pytest.raises(AuthFailedError) as error:
        verify(anonymous, admin, [zk_path])
    assert error.value.path == zk_path + '/locked'
    assert verify(admin, admin, [(zk_path + '/open', zk_path + '/open')]).in_sync is True


def test_zookeeper_34_source_without_multi_read(zk_34, zk_dest, zk_client_factory, zk_path):
    old = zk_client_factory(zk_34)
    destination = zk_client_factory(zk_dest)
    build(old, zk_path, count=8)
    for index in range(3):
        old.create(zk_path + '/conf/seq-', b'', sequence=True)
    copy_tree(old, destination, [zk_path])
    result = verify(old, destination, [zk_path], spot_check=4)
    assert result.in_sync is True, result.to_dict()
    assert result.source_nodes == 1 + 1 + 8 + 3
    old.set(zk_path + '/conf/k01', b'changed on 3.4')
    assert verify(old, destination, [zk_path]).diff.data_mismatch == [zk_path + '/conf/k01']
