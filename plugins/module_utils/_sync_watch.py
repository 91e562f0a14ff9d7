# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the sync engine learns of changes on ZooKeeper 3.4/3.5: per-node watches.

On 3.6+ persistent watches (``_protocol.add_watch``) and their inline events (``_protocol.InlineWatchEvents``) do it.

Private to zookeeper.migration; may change without notice. Every event only
names a path; the engine's queue (``_sync_queue``) coalesces them.
"""

import threading

try:
    from kazoo import exceptions as kazoo_exceptions
    from kazoo.protocol.states import EventType
except ImportError:
    kazoo_exceptions = EventType = None


# --------------------------------------------------------------------------
# Watches
# --------------------------------------------------------------------------

class _PerNodeWatcher(object):
    """One-shot kazoo watches on every node of a side (ZooKeeper 3.4/3.5 have no addWatch).

    A data watch (from getData) on every node reports its changes and its
    deletion; a child watch (from getChildren) on every node reports new
    children, which are then listed, queued and watched in turn. Watches
    fire once: reading a path again (the engine does, on every reconcile)
    re-arms it. After a reconnect the server has dropped them all: ``arm_tree``
    walks the subtrees again.
    """

    def __init__(self, client, roots, accept, on_path, log):
        self.client = client
        self.roots = list(roots)
        self.accept = accept
        self.on_path = on_path
        self.log = log
        self.lock = threading.Lock()
        self.children_armed = set()
        self.known_children = {}    # parent -> frozenset of names at its last listing
        self.active = True

    def stop(self):
        self.active = False

    def on_watch(self, event):
        if not self.active or event.type == EventType.NONE or event.path is None:
            return
        path = event.path
        if event.type == EventType.CHILD:
            with self.lock:
                self.children_armed.discard(path)
            self.list_children(path)
            return
        if event.type == EventType.DELETED:
            with self.lock:
                self.children_armed.discard(path)
                self.known_children.pop(path, None)
        if self.accept(path):
            self.on_path(path)

    def list_children(self, path):
        """List (and watch) the children of ``path``; queue each one (the reconcile read watches its data)."""
        with self.lock:
            if path in self.children_armed or not self.active:
                return
            self.children_armed.add(path)
        try:
            async_result = self.client.get_children_async(path, watch=self.on_watch)
        except Exception:  # pylint: disable=broad-except
            with self.lock:
                self.children_armed.discard(path)
            return

        def listed(result):
            try:
                children = result.get()
            except Exception:  # pylint: disable=broad-except
                with self.lock:
                    self.children_armed.discard(path)
                return
            names = frozenset(children)
            with self.lock:
                known = self.known_children.get(path, frozenset())
                self.known_children[path] = names
            prefix = path + '/' if path != '/' else '/'
            # only new names: a removed child reports itself through its own data watch
            for name in names - known:
                child = prefix + name
                if self.accept(child):
                    self.on_path(child)
        async_result.rawlink(listed)

    def arm_tree(self):
        """Watch every node under the roots (after start and every reconnect). Returns the number of nodes armed."""
        with self.lock:
            self.children_armed.clear()
            self.known_children.clear()
        client = self.client
        watch = self.on_watch
        count = 0
        pending = []
        for root in self.roots:
            pending.append(root)
        while pending:
            batch, pending = pending[:500], pending[500:]
            reads = [(path, client.get_async(path, watch=watch), client.get_children_async(path, watch=watch)) for path in batch]
            for path, data_result, children_result in reads:
                try:
                    data_result.get()
                except kazoo_exceptions.NoNodeError:
                    if path in self.roots:
                        client.exists_async(path, watch=watch)  # fires when the root is created
                    try:
                        children_result.get()
                    except Exception:  # pylint: disable=broad-except
                        pass
                    continue
                try:
                    children = children_result.get()
                except kazoo_exceptions.NoNodeError:
                    continue
                count += 1
                with self.lock:
                    self.children_armed.add(path)
                    self.known_children[path] = frozenset(children)
                prefix = path + '/' if path != '/' else '/'
                for name in children:
                    child = prefix + name
                    if self.accept(child):
                        pending.append(child)
        return count

    def watch_read(self, path, exists):
        """After a reconcile read with a data watch: make sure the node's children are watched too."""
        if exists and path not in self.children_armed:
            self.list_children(path)
        elif not exists and path in self.roots:
            try:
                self.client.exists_async(path, watch=self.on_watch)
            except Exception:  # pylint: disable=broad-except
                pass
