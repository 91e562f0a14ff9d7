# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sync journal: what each write multi brought its paths to, written in the same multi.

Private to zookeeper.migration; may change without notice.

Why: a new leader starts from the last baseline checkpoint. A path its
predecessor synced after that checkpoint then looks "changed on both sides"
(measured: acknowledged writes reverted, deletes resurrected). Every write
multi the engine sends therefore starts with the fence check and a create of
a sequential znode ``<root>/journal/<task>/j-NNNNNNNNNN`` on the cluster it
writes, holding the baseline value each written path was brought to
(``_apply.apply_plan(journal=)``). The multi is atomic: the entry exists
exactly when the writes committed, and a fenced (stale) leader can add none.
A new leader bumps the fences, loads the checkpoint and replays every entry
after the checkpoint's position on both clusters
(``_sync_decide.replay``) before it decides anything. A checkpoint records
the last entry it includes per side and then deletes the entries up to it,
in a fenced multi (a stale leader cannot truncate what a new leader has yet
to read).

Entry format: zlib-compressed JSON ``{"v": 1, "e": control epoch, "n":
batch counter, "r": [[path, hash, source mzxid, destination mzxid] or
[path] for a delete]}``.
"""

import itertools
import json
import threading
import zlib

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import SchemaError
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_decide import (
    DESTINATION,
    SOURCE,
    JournalRecord,
    base_hash,
    base_mzxid,
    base_value,
)

ENTRY_PREFIX = 'j-'
_FORMAT = 1


def entry_seq(name):
    """The sequence number of a journal entry's name (``j-0000000042`` -> 42), or None for anything else."""
    if not name.startswith(ENTRY_PREFIX) or len(name) != len(ENTRY_PREFIX) + 10 or not name[-10:].isdigit():
        return None
    return int(name[-10:])


class Journal(object):
    """The journal of one task on one cluster, as the engine's leader writes it.

    ``values`` maps each path of the plan about to be applied to the baseline
    value the write brings it to (None: deleted); ``plan_journal(values)``
    hands ``apply_plan`` the object it needs. ``order`` is shared by both
    sides' journals of one leader, so their entries merge in send order.
    """

    # Upper bound of an entry's bytes besides its records (JSON envelope, zlib header).
    ENTRY_BYTES = 96

    def __init__(self, parent, acl, control_epoch, order):
        self.parent = parent
        self.entry_prefix = parent.rstrip('/') + '/' + ENTRY_PREFIX
        self.acl = acl
        self.control_epoch = int(control_epoch or 0)
        self._order = order

    def plan_journal(self, values):
        return _PlanJournal(self, values)

    def next_order(self):
        return next(self._order)


class SharedOrder(object):
    """A thread-safe counter both sides' journals of one leader share (the second half of a record's order)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counter = itertools.count(1)

    def __next__(self):
        with self._lock:
            return next(self._counter)
    next = __next__

    def skip_past(self, value):
        """Go on above ``value``: an engine restarted within one leadership (same control epoch) must order its
        records after those of the run before it, which a later leader may still replay."""
        with self._lock:
            self._counter = itertools.count(max(int(value) + 1, next(self._counter)))


def shared_order():
    return SharedOrder()


class _PlanJournal(object):
    """What ``_apply.apply_plan(journal=)`` calls for one plan."""

    def __init__(self, journal, values):
        self.journal = journal
        self.values = values
        self.entry_prefix = journal.entry_prefix
        self.acl = journal.acl
        self.ENTRY_BYTES = journal.ENTRY_BYTES    # pylint: disable=invalid-name

    @staticmethod
    def op_bytes(op):
        """Upper bound of one record's bytes (before compression, which only shrinks paths that share prefixes)."""
        return 2 * len(op.path.encode('utf-8')) + 72

    def payload(self, ops):
        records = []
        values = self.values
        for op in ops:
            value = values.get(op.path)
            if value is None:
                records.append([op.path])
            else:
                records.append([op.path, base_hash(value), base_mzxid(value, SOURCE), base_mzxid(value, DESTINATION)])
        body = {'v': _FORMAT, 'e': self.journal.control_epoch, 'n': self.journal.next_order(), 'r': records}
        return zlib.compress(json.dumps(body, separators=(',', ':'), ensure_ascii=False).encode('utf-8'), 1)


def decode_entry(data, side):
    """The ``JournalRecord``\\ s of one entry's data; ``SchemaError`` when it is not a journal entry."""
    try:
        body = json.loads(zlib.decompress(data).decode('utf-8'))
        if not isinstance(body, dict):
            raise TypeError('a %s, not an object' % type(body).__name__)
        if body.get('v') != _FORMAT:
            raise SchemaError('sync journal entry of an unknown format %r (written by a newer version?)' % (body.get('v'),))
        order = (int(body['e']), int(body['n']))
        out = []
        for record in body['r']:
            if len(record) == 1:
                out.append(JournalRecord(order, side, record[0], None))
            else:
                out.append(JournalRecord(order, side, record[0], base_value(int(record[1]), int(record[2]), int(record[3]))))
        return out
    except (zlib.error, ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as exc:
        raise SchemaError('corrupt sync journal entry (%s)' % exc)


def read_entries(client, parent, after, side):
    """Entries of the journal at ``parent`` with a sequence number above ``after``: ``(last seq, [JournalRecord])``.

    Reads are pipelined (the journal of a busy task holds one entry per
    write multi since the last checkpoint: tens to hundreds).
    """
    from kazoo import exceptions as kazoo_exceptions   # pylint: disable=import-outside-toplevel
    try:
        names = client.get_children(parent)
    except kazoo_exceptions.NoNodeError:
        return after, []
    after = -1 if after is None else after
    wanted = sorted((seq, name) for seq, name in ((entry_seq(name), name) for name in names) if seq is not None and seq > after)
    pending = [(seq, client.get_async(parent.rstrip('/') + '/' + name)) for seq, name in wanted]
    records = []
    last = None if after < 0 else after
    for seq, async_result in pending:
        try:
            data, _stat = async_result.get()
        except kazoo_exceptions.NoNodeError:
            continue     # truncated meanwhile by a checkpoint (whose baseline holds it)
        records.extend(decode_entry(data, side))
        last = seq
    return last, records


def entries_up_to(client, parent, position):
    """Paths of the entries at ``parent`` with a sequence number up to ``position`` (what a checkpoint covers)."""
    from kazoo import exceptions as kazoo_exceptions   # pylint: disable=import-outside-toplevel
    try:
        names = client.get_children(parent)
    except kazoo_exceptions.NoNodeError:
        return []
    return sorted(parent.rstrip('/') + '/' + name for name in names if entry_seq(name) is not None and entry_seq(name) <= position)
