# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reconcile queue (``_sync_queue``): coalescing, delays, waking up, and the full reconcile's mark (``drop_before``)."""

import threading
import time

from hypothesis import given, strategies as st

from ansible_collections.zookeeper.migration.plugins.module_utils._sync_queue import ReconcileQueue

from tests.unit.plugins.module_utils.helpers import SETTINGS


class TestReconcileQueue(object):
    def test_coalesces_and_keeps_first_enqueue_order(self):
        queue = ReconcileQueue()
        for path in ('/a', '/b', '/a', '/c', '/b'):
            queue.put(path)
        assert [path for path, _t in queue.take(10, timeout=0)] == ['/a', '/b', '/c']
        assert queue.take(10, timeout=0) == []

    def test_take_is_bounded(self):
        queue = ReconcileQueue()
        queue.put_many(['/%d' % i for i in range(10)])
        assert len(queue.take(4, timeout=0)) == 4 and len(queue) == 6

    def test_delayed_paths_wait_their_turn(self):
        queue = ReconcileQueue()
        queue.put('/later', delay=0.2)
        queue.put('/now')
        assert [p for p, _t in queue.take(10, timeout=0)] == ['/now']
        assert queue.take(10, timeout=0) == []
        assert [p for p, _t in queue.take(10, timeout=2.0)] == ['/later']

    def test_a_ready_path_is_not_also_delayed(self):
        queue = ReconcileQueue()
        queue.put('/a')
        queue.put('/a', delay=5)
        assert len(queue) == 1

    def test_drop_before_a_mark(self):
        queue = ReconcileQueue()
        queue.put('/old')
        queue.put('/old-delayed', delay=10)
        mark = queue.mark()
        queue.put('/new')
        assert queue.drop_before(mark) == 2
        assert [p for p, _t in queue.take(10, timeout=0)] == ['/new']

    def test_requeue_keeps_the_original_enqueue_time(self):
        queue = ReconcileQueue()
        queue.put('/a', since=time.monotonic() - 5)
        assert queue.oldest_age() >= 5

    def test_take_wakes_up_on_put_from_another_thread(self):
        queue = ReconcileQueue()
        timer = threading.Timer(0.05, queue.put, args=('/x',))
        timer.start()
        assert [p for p, _t in queue.take(1, timeout=5)] == ['/x']
        timer.join()


# --------------------------------------------------------------------------
# Marks with takes in between
# --------------------------------------------------------------------------

class TestQueueMarks(object):
    def test_drop_before_counts_only_what_is_still_waiting(self):
        queue = ReconcileQueue()
        queue.put_many(['/a', '/b', '/c'])
        assert [p for p, _t in queue.take(1, timeout=0)] == ['/a']
        mark = queue.mark()
        assert [p for p, _t in queue.take(1, timeout=0)] == ['/b']
        queue.put('/d')
        queue.put('/a')                 # taken before the mark, queued again after it: kept
        assert queue.drop_before(mark) == 1     # only /c
        assert [p for p, _t in queue.take(10, timeout=0)] == ['/d', '/a']

    def test_posted_events_keep_their_order_and_first_time(self):
        queue = ReconcileQueue()
        for path in ('/x', '/y', '/x', '/z', '/y'):
            queue.post(path)
        taken = queue.take(10, timeout=0)
        assert [p for p, _t in taken] == ['/x', '/y', '/z']
        assert taken[0][1] <= taken[1][1] <= taken[2][1]
        assert len(queue) == 0 and queue.oldest_age() == 0.0

    def test_a_mark_covers_posted_events_not_yet_drained(self):
        queue = ReconcileQueue()
        queue.post('/before')
        mark = queue.mark()
        queue.post('/after')
        assert queue.drop_before(mark) == 1
        assert [p for p, _t in queue.take(10, timeout=0)] == ['/after']


# --------------------------------------------------------------------------
# The full reconcile's mark
# --------------------------------------------------------------------------

def _paths(queue):
    return set(path for path, _first in queue.take(1000, timeout=0))


def test_an_event_after_the_mark_for_a_path_queued_before_it_survives_drop_before():
    queue = ReconcileQueue()
    queue.put('/queued-before-and-again')
    queue.put('/queued-before-only')
    mark = queue.mark()                      # the scan starts: it reads both paths...
    queue.post('/queued-before-and-again')   # ...and then a user writes this one
    queue.post('/new-after')
    queue.drop_before(mark)
    assert _paths(queue) == set(['/new-after', '/queued-before-and-again'])


@SETTINGS
@given(before=st.lists(st.sampled_from('abcdefgh'), unique=True), taken=st.integers(0, 8),
       after=st.lists(st.tuples(st.sampled_from('abcdefghij'), st.booleans())))
def test_drop_before_keeps_exactly_what_was_queued_after_the_mark(before, taken, after):
    """Whatever was queued before the mark, and whatever the worker took meanwhile: what was queued after it stays, the rest goes."""
    queue = ReconcileQueue()
    for path in before:
        queue.put('/' + path)
    mark = queue.mark()
    queue.take(taken, timeout=0) if taken else None
    for path, from_a_watch in after:
        (queue.post if from_a_watch else queue.put)('/' + path)
    queue.drop_before(mark)
    assert _paths(queue) == set('/' + path for path, _watch in after)
    # the last mark is closed: nothing is tracked any more
    assert not queue._queued_again      # pylint: disable=protected-access


def test_a_forgotten_mark_drops_nothing_and_stops_tracking():
    queue = ReconcileQueue()
    queue.put('/a')
    mark = queue.mark()
    queue.post('/a')
    queue.forget_mark(mark)
    assert [path for path, _first in queue.take(10, timeout=0)] == ['/a']
    assert not queue._queued_again      # pylint: disable=protected-access


def test_a_delayed_retry_after_the_mark_survives_drop_before():
    queue = ReconcileQueue()
    queue.put('/p', delay=60.0)          # a write of /p failed (missing parent): retry later
    mark = queue.mark()                  # a full reconcile starts
    queue.put('/p')                      # an event for /p
    assert _paths(queue) == set(['/p'])  # the worker reconciles /p: the merge leaves /p to it (touched)
    queue.put('/p', delay=60.0)          # its write fails again: retry later
    queue.drop_before(mark)
    assert len(queue) == 1               # the retry queued after the mark must survive
