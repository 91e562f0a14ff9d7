# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the sync engine's own pure parts (``_sync``): data sessions' members, the write rate limiter.

The engine's building blocks have their own files: test_sync_decide.py (the decisions, and the model of the sync across
leader changes), test_sync_baseline.py, test_sync_queue.py, test_sync_scan.py; the engine itself runs against real
servers in tests/integration/test_sync_*.py.
"""

from ansible_collections.zookeeper.migration.plugins.module_utils import _sync


# --------------------------------------------------------------------------
# Data sessions: which configured member a peer address is
# --------------------------------------------------------------------------

class TestMemberAt(object):
    def test_matches_by_port_and_resolved_address(self):
        hosts = ['127.0.0.1:2181', 'localhost:2182', '127.0.0.1:2183']
        assert _sync._member_at(hosts, ('127.0.0.1', 2182)) == 'localhost:2182'
        assert _sync._member_at(hosts, ('127.0.0.1', 2183)) == '127.0.0.1:2183'
        assert _sync._member_at(hosts, ('127.0.0.1', 9999)) is None
        assert _sync._member_at(hosts, ('10.9.9.9', 2181)) is None


# --------------------------------------------------------------------------
# The write rate limiter
# --------------------------------------------------------------------------

class _FakeClock(object):
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def monotonic(self):
        return self.now

    def wait(self, seconds):
        self.slept.append(seconds)
        self.now += seconds
        return False


def test_rate_limiter_paces_writes(monkeypatch):
    clock = _FakeClock()
    monkeypatch.setattr(_sync.time, 'monotonic', clock.monotonic)
    limiter = _sync._RateLimiter(100)
    for _batch in range(10):
        limiter.acquire(50, stop_event=clock)
    # 500 writes at 100/s with one second of burst: about 4 seconds of waiting
    assert 3.9 <= sum(clock.slept) <= 4.1
    unlimited = _sync._RateLimiter(0)
    unlimited.acquire(10 ** 6, stop_event=clock)
    assert 3.9 <= sum(clock.slept) <= 4.1
