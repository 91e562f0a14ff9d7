# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Elections: one leader per task among the sync daemons (a kazoo lock under the task).

This is a private module of the zookeeper.migration collection; it may change
without notice.
"""

import re
import threading
import traceback

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    ClusterUnreachableError,
    NoNodeError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._records import check_name, ELECTION, join_path, normalize_root, TASKS
from ansible_collections.zookeeper.migration.plugins.module_utils._control_acl import control_acl, require_kazoo, zk_call

try:
    from kazoo import exceptions as kazoo_exceptions
    from kazoo.protocol.states import KazooState
    from kazoo.recipe.lock import Lock as KazooLock
    HAS_KAZOO = True
    KAZOO_IMPORT_ERROR = None
except ImportError:
    HAS_KAZOO = False
    KAZOO_IMPORT_ERROR = traceback.format_exc()
    KazooLock = object  # lets the module import (and be documented) without kazoo


_LOCK_NODE_RE = re.compile(r'__lock__(-?\d{10})$')


def election_path(root, task):
    """``<root>/tasks/<task>/election``."""
    return join_path(normalize_root(root), TASKS, check_name(task, 'task name'), ELECTION)


class _AclClient(object):
    """A kazoo client seen through a proxy whose creates carry the control ACL.

    kazoo's Lock creates its contender znodes with the client's default ACL;
    the control root must stay closed, so the lock gets this proxy instead.
    """

    def __init__(self, client, acl):
        self._client = client
        self._acl = acl

    def __getattr__(self, name):
        return getattr(self._client, name)

    def create(self, path, value=b'', acl=None, ephemeral=False, sequence=False, makepath=False, include_data=False):
        """``client.create`` with the control ACL."""
        return self._client.create(path, value, acl=acl or self._acl, ephemeral=ephemeral, sequence=sequence,
                                   makepath=makepath, include_data=include_data)


class _TaskLock(KazooLock):
    """kazoo's Lock, creating only the election znode (never the task itself)."""

    def _ensure_path(self):
        try:
            self.client.create(self.path)
        except kazoo_exceptions.NodeExistsError:
            pass
        self.assured_path = True


class TaskElection(object):
    """One leader per task among the daemons, on the control ensemble.

    A kazoo Lock at ``<root>/tasks/<task>/election``; each contender's znode
    holds its daemon id, so ``current_leader`` can name the leader. Use
    ``acquire``/``release`` (or ``run(func)``). The leader must stop writing as
    soon as ``leadership_lost`` is set (the session was suspended or lost:
    another daemon may already lead), then ``release()`` and contend again.
    ``sequence`` (the contender znode's sequence number) grows with every new
    contender and can serve as a control-plane epoch.
    """

    def __init__(self, client, root, task, daemon_id, acl=None, allow_open_acl=False):
        require_kazoo()
        self.client = client
        self.root = normalize_root(root)
        self.task = check_name(task, 'task name')
        self.daemon_id = check_name(daemon_id, 'daemon id')
        self.path = election_path(self.root, self.task)
        acl_list = acl if acl is not None else control_acl(client, allow_open_acl=allow_open_acl)[0]
        self._lock = _TaskLock(_AclClient(client, acl_list), self.path, self.daemon_id)
        self.leadership_lost = threading.Event()
        self._listening = False
        self._epoch = self._epoch_of = None

    def __repr__(self):
        return 'TaskElection(task=%r, daemon_id=%r, leader=%r)' % (self.task, self.daemon_id, self.is_leader)

    def _state_listener(self, state):
        if state in (KazooState.SUSPENDED, KazooState.LOST) and self._lock.is_acquired:
            self.leadership_lost.set()
        return False

    def acquire(self, blocking=True, timeout=None):
        """Contend; True once this daemon leads. False when ``timeout`` passes or on ``cancel()``.

        Raises NoNodeError if the task does not exist (or is deleted while
        waiting).
        """
        if self._lock.is_acquired:
            if not self.leadership_lost.is_set():
                return True
            self.release()  # the session was suspended or lost while leading: contend afresh
        self.leadership_lost.clear()
        if not self._listening:
            self.client.add_listener(self._state_listener)
            self._listening = True
        try:
            with zk_call(self.path, 'contending for the task'):
                try:
                    return bool(self._lock.acquire(blocking=blocking, timeout=timeout))
                except kazoo_exceptions.LockTimeout:
                    return False
                except kazoo_exceptions.CancelledError:
                    return False
        except NoNodeError:
            raise NoNodeError('task %r does not exist (its election znode has no parent)' % self.task, path=self.path)

    def release(self):
        """Give up leadership (or a pending contention); safe to call when not leading.

        After a lost session there may be no connection to delete the
        contender znode with: the server removes it when the session expires,
        so leadership is dropped locally and False returned.
        """
        if self._listening:
            self.client.remove_listener(self._state_listener)
            self._listening = False
        try:
            with zk_call(self.path, 'leaving the election'):
                try:
                    return self._lock.release()
                except kazoo_exceptions.NoNodeError:
                    return False
        except ClusterUnreachableError:
            if not self.leadership_lost.is_set():
                raise
            self._lock.is_acquired = False
            self._lock.node = None
            return False

    def cancel(self):
        """Make a blocked ``acquire`` return False."""
        self._lock.cancel()

    def run(self, func, *args, **kwargs):
        """Block until elected, run ``func(*args, **kwargs)``, release; returns func's result (None if cancelled)."""
        if not self.acquire():
            return None
        try:
            return func(*args, **kwargs)
        finally:
            self.release()

    @property
    def is_leader(self):
        """True while this contender holds the lock and the session has not been suspended or lost since."""
        return bool(self._lock.is_acquired) and not self.leadership_lost.is_set() and self.client.state == KazooState.CONNECTED

    @property
    def sequence(self):
        """The sequence number of this contender's znode, or None."""
        node = self._lock.node
        match = _LOCK_NODE_RE.search(node) if node else None
        return int(match.group(1)) if match else None

    @property
    def epoch(self):
        """This leadership's control epoch: the contender znode's czxid (None when not contending).

        A zxid of the control ensemble, so it grows with every leadership,
        also across a task deleted and created again under the same name
        (whose election sequence starts at 0 again while the fences on the
        data clusters still record the old epochs).
        """
        node = self._lock.node
        if not node:
            return None
        if self._epoch_of != node:
            with zk_call(self.path, 'reading the election node'):
                stat = self.client.exists(join_path(self.path, node))
            self._epoch, self._epoch_of = (stat.czxid if stat is not None else None), node
        return self._epoch

    def contenders(self):
        """Daemon ids contending, leader first."""
        return contenders(self.client, self.root, self.task)


def contenders(client, root, task):
    """Daemon ids contending for ``task``, the leader first ([] if none or no task)."""
    require_kazoo()
    path = election_path(root, task)
    with zk_call(path, 'reading the election'):
        try:
            children = client.get_children(path)
        except kazoo_exceptions.NoNodeError:
            return []
        ordered = sorted((match.group(1), child) for child, match in ((c, _LOCK_NODE_RE.search(c)) for c in children) if match)
        out = []
        for _sequence, child in ordered:
            try:
                data, _stat = client.get(join_path(path, child))
            except kazoo_exceptions.NoNodeError:
                continue
            out.append((data or b'').decode('utf-8', 'replace'))
        return out


def current_leader(client, root, task):
    """The daemon id leading ``task`` now (the first contender), or None. Read-only."""
    found = contenders(client, root, task)
    return found[0] if found else None
