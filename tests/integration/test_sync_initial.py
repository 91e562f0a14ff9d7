# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Initial sync options (leftovers, union, prune) and the direction after a cutover, with a real daemon."""

import threading
import time

import pytest

from tests.integration.sync_support import persistent_tree, wait_for

pytestmark = pytest.mark.integration


def _prepare(env):
    """Both sides differ before the task: source-only, destination-only (leftover) and differing nodes."""
    env.src.create(env.base + '/shared', b'source version')
    env.src.create(env.base + '/source-only/child', b's', makepath=True)
    env.dst.create(env.base + '/shared', b'destination version', makepath=True)
    env.dst.create(env.base + '/leftover/child', b'old', makepath=True)


@pytest.mark.parametrize('mode', ['one_way', 'bidirectional'])
def test_destination_leftovers_are_reported_not_synced(sync_env, mode):
    env = sync_env
    _prepare(env)
    env.put_task(mode=mode)
    env.daemon('d1')
    status = env.streaming()
    time.sleep(0.5)
    src_tree = persistent_tree(env.src, env.base)
    dst_tree = persistent_tree(env.dst, env.base)
    # source-authoritative: the destination got the source's data; its leftovers stay where they are
    assert dst_tree[env.base + '/shared'] == b'source version'
    assert dst_tree[env.base + '/source-only/child'] == b's'
    assert dst_tree[env.base + '/leftover/child'] == b'old'
    assert env.base + '/leftover' not in src_tree
    status = wait_for(lambda: env.status() if env.status()['details'].get('leftovers') == 2 else None, what='2 leftovers reported')
    assert env.base + '/leftover/child' in status['details']['leftover_sample']
    assert status['conflicts'] == 0
    # a node created on the destination after the task started is new, not a leftover
    env.dst.create(env.base + '/made-later', b'new')
    time.sleep(1.0)
    assert (env.src.exists(env.base + '/made-later') is not None) == (mode == 'bidirectional')


def test_union_copies_destination_leftovers_to_the_source(sync_env):
    env = sync_env
    _prepare(env)
    env.put_task(mode='bidirectional', initial='union')
    env.daemon('d1')
    env.streaming()
    tree = env.in_sync()
    assert tree[env.base + '/leftover/child'] == b'old'
    assert tree[env.base + '/shared'] == b'source version'


def test_prune_deletes_destination_leftovers(sync_env):
    env = sync_env
    _prepare(env)
    env.put_task(mode='one_way', prune=True)
    env.daemon('d1')
    env.streaming()
    tree = env.in_sync()
    assert env.base + '/leftover' not in tree and tree[env.base + '/source-only/child'] == b's'


def test_after_a_cutover_the_task_syncs_only_in_its_recorded_direction(sync_env):
    env = sync_env
    env.src.create(env.base + '/a', b'0')
    env.put_task(mode='bidirectional')
    env.daemon('d1')
    env.streaming()
    env.in_sync()
    # a completed cutover that keeps syncing back to the source (the rollback path)
    env.store.put_cutover(env.task, {'state': 'completed', 'completed_at': time.time(), 'direction_after_cutover': 'destination_to_source'})
    wait_for(lambda: env.status().get('details', {}).get('direction') == 'destination_to_source', what='the direction switched')
    env.dst.set(env.base + '/a', b'from the destination')
    env.dst.create(env.base + '/new-on-destination', b'n')
    wait_for(lambda: env.src.exists(env.base + '/new-on-destination') is not None, what='destination change copied to the source')
    env.src.set(env.base + '/a', b'written on the old source')
    env.src.create(env.base + '/new-on-source', b'x')
    time.sleep(1.0)
    assert env.dst.get(env.base + '/a')[0] == b'from the destination'
    assert env.dst.exists(env.base + '/new-on-source') is None
    # a completed cutover with no direction: nothing syncs any more
    env.store.put_cutover(env.task, {'state': 'completed', 'completed_at': time.time(), 'direction_after_cutover': 'none'})
    wait_for(lambda: env.status().get('phase') == 'cut_over', what='phase cut_over')
    env.dst.set(env.base + '/a', b'after the cutover')
    time.sleep(1.0)
    assert env.src.get(env.base + '/a')[0] == b'written on the old source'
    env.store.delete_cutover(env.task)


def test_a_frozen_source_never_has_its_acls_copied(sync_env):
    """A cutover record with source_frozen keeps the frozen ACLs off the destination, whatever sync_acl says."""
    from kazoo.security import make_acl, OPEN_ACL_UNSAFE
    env = sync_env
    env.src.create(env.base + '/a', b'0')
    env.put_task(mode='one_way', sync_acl=True)
    env.daemon('d1')
    env.streaming()
    env.in_sync()
    assert env.dst.get_acls(env.base + '/a')[0] == OPEN_ACL_UNSAFE
    # shaped like what a freeze leaves on the source: read for anyone, everything for one identity only
    # (here the loopback address, as this test cluster has no authenticated identity)
    frozen = [make_acl('world', 'anyone', read=True), make_acl('ip', '127.0.0.1', all=True)]
    env.store.put_cutover(env.task, {'state': 'frozen', 'started_at': time.time(), 'source_frozen': True})
    wait_for(lambda: env.status().get('details', {}).get('acl_sync') == 'suspended (source_frozen)',
             what='ACL sync suspended by the cutover record')
    env.src.set_acls(env.base + '/a', frozen)
    env.src.set(env.base + '/a', b'data still flows')
    wait_for(lambda: env.dst.get(env.base + '/a')[0] == b'data still flows', what='the data change synced')
    time.sleep(1.0)
    assert env.dst.get_acls(env.base + '/a')[0] == OPEN_ACL_UNSAFE      # the frozen ACL stayed on the source
    env.store.delete_cutover(env.task)
    env.src.set_acls(env.base + '/a', OPEN_ACL_UNSAFE)


def test_initial_sync_ends_while_writers_keep_writing(sync_env):
    """Live writes during the initial sync are streaming work: the task reaches streaming while they go on."""
    env = sync_env
    for index in range(50):
        env.src.create('%s/n%03d' % (env.base, index), b'x', makepath=True)
    stopping = threading.Event()
    written = []

    def write():
        env.src.ensure_path(env.base + '/live')
        while not stopping.is_set():
            env.src.create('%s/live/k-%06d' % (env.base, len(written)), b'live')
            written.append(1)
            stopping.wait(0.005)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        env.put_task(mode='one_way')
        env.daemon('d1')
        env.streaming(timeout=60)
        at_streaming = len(written)
        # reached while the writer still writes: it goes on writing after
        wait_for(lambda: len(written) > at_streaming + 20, what='the writer writing on after streaming began')
        assert at_streaming > 0 and writer.is_alive()
    finally:
        stopping.set()
        writer.join(10)
    env.in_sync(timeout=60)
