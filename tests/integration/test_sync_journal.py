# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sync journal against a real server: entries written in the same multi as the writes they describe."""

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils import _apply, _fencing, _sync_journal
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import FencedError
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_decide import SOURCE, base_value, replay

pytestmark = pytest.mark.integration


@pytest.fixture
def journal_env(zk_standalone, zk_path, zk_client_factory):
    client = zk_client_factory(zk_standalone)
    root = zk_path + '/control'
    client.ensure_path(zk_path + '/data')
    epoch = _fencing.bump_fence(client, root, 'task', leader='d1', control_epoch=5)
    acl = _apply.acl_tuple(_fencing.ensure_journal(client, root, 'task'))
    journal = _sync_journal.Journal(_fencing.journal_path(root, 'task'), acl, 5, _sync_journal.shared_order())
    return client, root, zk_path + '/data', (_fencing.fence_path(root, 'task'), epoch), journal


def test_every_committed_multi_leaves_one_entry_with_its_records(journal_env):
    client, root, data, fence, journal = journal_env
    plan = _apply.Plan()
    values = {}
    for index in range(30):
        path = '%s/n%02d' % (data, index)
        plan.create(path, b'v%d' % index)
        values[path] = base_value(index + 1, 100 + index, 0)
    # multis of ~10 operations: three entries
    result = _apply.apply_plan(client, plan, fence=fence, journal=journal.plan_journal(values), max_batch_ops=10)
    assert result.ok and len(result.journal_seqs) == 3
    last, records = _sync_journal.read_entries(client, journal.parent, None, SOURCE)
    assert last == max(result.journal_seqs)
    entries = {}
    replay(entries, records)
    assert entries == values
    assert sorted(set(record.order for record in records)) == [(5, 1), (5, 2), (5, 3)]
    # a delete is journalled as such; entries after a position only
    plan = _apply.Plan()
    plan.delete(data + '/n00')
    result = _apply.apply_plan(client, plan, fence=fence, journal=journal.plan_journal({data + '/n00': None}))
    _last, records = _sync_journal.read_entries(client, journal.parent, last, SOURCE)
    assert [(record.path, record.value) for record in records] == [(data + '/n00', None)]
    assert _sync_journal.entries_up_to(client, journal.parent, last) and len(_sync_journal.entries_up_to(client, journal.parent, last)) == 3


def test_a_failed_multi_leaves_no_entry(journal_env):
    client, _root, data, fence, journal = journal_env
    client.create(data + '/taken', b'x')
    plan = _apply.Plan()
    plan.create(data + '/free', b'y')
    plan.create(data + '/taken', b'z')            # fails the multi: NodeExists
    result = _apply.apply_plan(client, plan, fence=fence, continue_on_error=True, journal=journal.plan_journal({}))
    assert not result.ok and result.journal_seqs == []
    assert client.exists(data + '/free') is None
    assert _sync_journal.read_entries(client, journal.parent, None, SOURCE) == (None, [])


def test_a_stale_leader_can_neither_write_nor_journal(journal_env):
    client, root, data, fence, journal = journal_env
    _fencing.bump_fence(client, root, 'task', leader='d2', control_epoch=6)     # a newer leader
    plan = _apply.Plan()
    plan.create(data + '/late', b'stale')
    result = _apply.apply_plan(client, plan, fence=fence, continue_on_error=True, journal=journal.plan_journal({}))
    assert [failure['kind'] for failure in result.failures] == ['fenced']
    assert client.exists(data + '/late') is None
    assert _sync_journal.read_entries(client, journal.parent, None, SOURCE) == (None, [])
    # and, thawed, it may not bump the fence over the newer leader
    with pytest.raises(FencedError):
        _fencing.bump_fence(client, root, 'task', leader='d1', control_epoch=5)


def test_a_missing_journal_parent_fails_the_multi_clearly(journal_env):
    client, _root, data, fence, journal = journal_env
    client.delete(journal.parent)
    plan = _apply.Plan()
    plan.create(data + '/x', b'x')
    result = _apply.apply_plan(client, plan, fence=fence, continue_on_error=True, journal=journal.plan_journal({}))
    assert [failure['kind'] for failure in result.failures] == ['journal']
    assert client.exists(data + '/x') is None
