# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sync engine's queue of paths to reconcile. Private to zookeeper.migration; may change without notice."""

import heapq
import threading
import time
from collections import deque


class ReconcileQueue(object):
    """A coalescing queue of paths to reconcile, with delayed re-queues.

    A path queued again while it waits is not duplicated (it keeps its first
    enqueue time, which the lag is measured from). ``take`` hands out paths
    in first-queued order; ``put(path, delay=s)`` parks a path until then
    (a write that failed for a reason that needs time, e.g. a missing parent).
    Thread-safe: watch threads put, the worker takes.

    Memory: a backlog of hundreds of thousands of paths is normal while a
    bulk load streams in, so a waiting path costs one dict entry (path ->
    enqueue time) and one deque slot; the order of the deque is the queue
    order, and counters of what went in and came out of it stand for
    sequence numbers (``mark``).
    """

    def __init__(self):
        self._ready = {}                # path -> enqueue monotonic time; exactly the paths in _order
        self._order = deque()           # ready paths, first queued first
        self._appended = 0              # paths ever appended to _order
        self._taken = 0                 # paths ever taken off the head of _order
        self._delayed = []              # heap of (due, sequence, path, first_time)
        self._delayed_paths = {}
        self._cond = threading.Condition()
        self._seq = 0
        # Watch events land here without a lock (deque appends are atomic):
        # kazoo's connection thread delivers thousands per second.
        self._inbox = deque()
        self._waiting = False
        # Paths queued again while they already waited, since the oldest mark still open: a full reconcile
        # that drops what was queued before its mark must keep these (the event came after the scan's reads).
        self._marks_open = 0
        self._queued_again = set()

    def post(self, path):
        """Queue ``path`` from a watch event: lock-free unless the worker sleeps and must be woken."""
        self._inbox.append((path, time.monotonic()))
        if self._waiting:
            with self._cond:
                self._cond.notify()

    def _add(self, path, first):
        if path not in self._ready:
            self._ready[path] = first
            self._order.append(path)
            self._appended += 1
        elif self._marks_open:
            self._queued_again.add(path)

    def _pop(self):
        path = self._order.popleft()
        self._taken += 1
        return path, self._ready.pop(path)

    def _drain_inbox(self):
        inbox = self._inbox
        add = self._add
        while inbox:
            path, first = inbox.popleft()
            add(path, first)

    def put(self, path, delay=0.0, since=None):
        """Queue ``path`` (now, or after ``delay`` seconds); ``since`` keeps an older enqueue time."""
        now = time.monotonic()
        with self._cond:
            self._seq += 1
            if delay > 0:
                due = now + delay
                if path in self._ready:
                    return
                known = self._delayed_paths.get(path)
                if known is not None and known <= due:
                    if self._marks_open:
                        self._queued_again.add(path)     # the earlier entry now stands for this retry too
                    return
                self._delayed_paths[path] = due
                heapq.heappush(self._delayed, (due, self._seq, path, since if since is not None else now))
                self._cond.notify()
                return
            self._add(path, since if since is not None else now)
            self._cond.notify()

    def put_many(self, paths):
        now = time.monotonic()
        with self._cond:
            add = self._add
            for path in paths:
                add(path, now)
            self._cond.notify()

    def appended_count(self):
        """How many paths were ever queued (ready), inbox included."""
        with self._cond:
            self._drain_inbox()
            return self._appended

    def taken_count(self):
        """How many queued paths were ever taken (or dropped) off the queue."""
        return self._taken

    def delayed_count(self, excluding=None):
        """How many paths wait for a delayed re-queue (not counting those in ``excluding``)."""
        with self._cond:
            if not excluding:
                return len(self._delayed_paths)     # the heap may also hold superseded entries of a path
            return sum(1 for path in self._delayed_paths if path not in excluding)

    def mark(self):
        """A mark: ``drop_before(mark)`` later drops what was queued before this call (and not queued again since).

        Every mark must be closed by one ``drop_before`` or ``forget_mark``.
        """
        with self._cond:
            self._drain_inbox()
            self._seq += 1
            self._marks_open += 1
            return (self._appended, self._seq)

    def forget_mark(self, _mark):
        """Close a mark without dropping anything (its full reconcile failed)."""
        with self._cond:
            self._close_mark()

    def _close_mark(self):
        self._marks_open = max(0, self._marks_open - 1)
        if not self._marks_open:
            self._queued_again = set()

    def drop_before(self, mark):
        """Forget paths queued before ``mark`` (a full reconcile has covered them); returns how many.

        A path queued before the mark and queued again after it is kept (moved
        to the back): the event behind the second put may postdate the
        reconcile's read of that path.
        """
        appended, seq = mark
        with self._cond:
            self._drain_inbox()
            stale = 0
            again = []
            while self._taken < appended and self._order:
                path, first = self._pop()
                if path in self._queued_again:
                    again.append((path, first))
                else:
                    stale += 1
            for path, first in again:
                self._add(path, first)
            kept = [item for item in self._delayed if item[1] >= seq or item[2] in self._queued_again]
            self._close_mark()
            dropped = stale + len(self._delayed) - len(kept)
            heapq.heapify(kept)
            self._delayed = kept
            due_of = {}
            for due, _seq, path, _first in kept:
                due_of[path] = min(due, due_of.get(path, due))
            self._delayed_paths = due_of
            return dropped

    def _promote(self, now):
        delayed = self._delayed
        while delayed and delayed[0][0] <= now:
            due, _seq, path, first = heapq.heappop(delayed)
            if self._delayed_paths.get(path) == due:
                del self._delayed_paths[path]
                self._add(path, first)

    def take(self, max_items, timeout=None):
        """Up to ``max_items`` ``(path, enqueue_time)`` pairs; waits up to ``timeout`` seconds for the first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                self._drain_inbox()
                self._promote(now)
                if self._ready:
                    out = []
                    pop = self._pop
                    for _index in range(min(max_items, len(self._ready))):
                        out.append(pop())
                    return out
                wait = None if deadline is None else deadline - now
                if self._delayed:
                    until_due = self._delayed[0][0] - now
                    wait = until_due if wait is None else min(wait, until_due)
                if wait is not None and wait <= 0:
                    return []
                # Set before the last look at the inbox: a post() after it sees the flag and notifies.
                self._waiting = True
                self._drain_inbox()
                if self._ready:
                    self._waiting = False
                    continue
                self._cond.wait(wait)
                self._waiting = False

    def wake(self):
        """Make a waiting ``take`` return (used on stop)."""
        with self._cond:
            self._cond.notify_all()

    def oldest_age(self):
        """Seconds since the oldest ready path was queued (0 when none is ready)."""
        with self._cond:
            self._drain_inbox()
            if not self._ready:
                return 0.0
            first = min(self._ready.values()) if len(self._ready) < 4096 else self._ready[self._order[0]]
            return max(0.0, time.monotonic() - first)

    def __len__(self):
        with self._cond:
            self._drain_inbox()
            return len(self._ready) + len(self._delayed_paths)

    def ready_count(self):
        with self._cond:
            self._drain_inbox()
            return len(self._ready)
