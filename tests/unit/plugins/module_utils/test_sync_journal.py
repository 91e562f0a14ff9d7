# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sync journal (_sync_journal.py), its pure parts: entry names, the entry format, the order shared by both sides.

Writing, reading and truncating entries on real clusters: tests/integration/test_sync_journal.py.
"""

import collections
import json
import zlib

import pytest
from hypothesis import given, strategies as st

from ansible_collections.zookeeper.migration.plugins.module_utils import _sync_journal
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import SchemaError
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_decide import DESTINATION, SIDES, SOURCE, base_value

from tests.unit.plugins.module_utils.helpers import SETTINGS

Op = collections.namedtuple('Op', 'path')      # what the payload reads of a plan's operations
PATHS = st.text(st.characters(blacklist_categories=('Cs',), blacklist_characters='\x00'), min_size=1, max_size=30).map(lambda s: '/' + s)
VALUES = st.none() | st.builds(base_value, st.integers(0, 2 ** 60 - 1), st.integers(0, 2 ** 64 - 1), st.integers(0, 2 ** 64 - 1))


@pytest.mark.parametrize('name, seq', [
    ('j-0000000042', 42), ('j-0000000000', 0), ('j-9999999999', 9999999999),
    ('j-42', None), ('j-00000000042', None), ('x-0000000042', None), ('j-00000000a2', None), ('lock', None), ('', None),
])
def test_entry_seq_reads_only_journal_entry_names(name, seq):
    assert _sync_journal.entry_seq(name) == seq


@SETTINGS
@given(values=st.dictionaries(PATHS, VALUES, min_size=1, max_size=20), epoch=st.integers(0, 2 ** 63 - 1), side=st.sampled_from(SIDES),
       batches=st.integers(1, 3))
def test_an_entry_decodes_to_the_values_its_plan_wrote_in_the_leaders_order(values, epoch, side, batches):
    journal = _sync_journal.Journal('/zookeeper-migration/journal/t1/', None, epoch, _sync_journal.shared_order())
    assert journal.entry_prefix == '/zookeeper-migration/journal/t1/j-'
    plan = journal.plan_journal(values)
    ops = [Op(path) for path in values]
    for counter in range(1, batches + 1):
        records = _sync_journal.decode_entry(plan.payload(ops), side)
        assert [(r.order, r.side, r.path, r.value) for r in records] == [((epoch, counter), side, op.path, values[op.path]) for op in ops]
    assert len(plan.payload(ops)) <= plan.ENTRY_BYTES + sum(plan.op_bytes(op) for op in ops)


@pytest.mark.parametrize('data', [
    b'', b'not zlib', zlib.compress(b'not json'),
    zlib.compress(b'[]'), zlib.compress(b'"a string"'),
    zlib.compress(json.dumps({'v': 1, 'e': 1, 'n': 1}).encode()),
    zlib.compress(json.dumps({'v': 1, 'e': 1, 'n': 1, 'r': [['/a', 'x', 0, 0]]}).encode()),
    zlib.compress(json.dumps({'v': 1, 'e': 1, 'n': 1, 'r': [[]]}).encode()),
])
def test_a_corrupt_entry_is_a_schema_error(data):
    with pytest.raises(SchemaError, match='corrupt sync journal entry'):
        _sync_journal.decode_entry(data, SOURCE)


def test_an_entry_of_a_newer_format_is_refused_by_name():
    with pytest.raises(SchemaError, match='unknown format 2'):
        _sync_journal.decode_entry(zlib.compress(json.dumps({'v': 2, 'e': 1, 'n': 1, 'r': []}).encode()), DESTINATION)


def test_both_sides_share_one_order_that_a_restart_moves_past():
    order = _sync_journal.shared_order()
    source = _sync_journal.Journal('/j/t1', None, 7, order)
    destination = _sync_journal.Journal('/j/t1', None, 7, order)
    assert [source.next_order(), destination.next_order(), source.next_order()] == [1, 2, 3]
    order.skip_past(10)                 # the engine restarted within the leadership: after the records of the run before
    assert destination.next_order() == 11
    order.skip_past(5)                  # never back
    assert source.next_order() == 12
