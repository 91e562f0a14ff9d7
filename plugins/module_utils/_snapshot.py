# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshots of ZooKeeper subtrees: ``Node``, ``Snapshot`` and ``take_snapshot()``.

This is a private module of the zookeeper.migration collection; it may change
without notice. The data model is the one in docs/architecture.md.

How the walk goes fast
----------------------
A breadth-first walk that keeps several requests in flight on one session
(ZooKeeper answers a session's requests in order, so replies are matched to
requests first-in first-out):

* On ZooKeeper 3.6+ each request is a multiRead (opcode 22) of up to
  ``batch`` getData/getChildren operations (``_protocol.multi_read_async``).
  On 3.4/3.5 it is single getData/getChildren requests, ``batch * in_flight``
  of them outstanding, written in batches (``_protocol.read_pipelined``).
* getChildren is only sent for nodes whose stat (from getData) says they have
  children. Most znodes are leaves, so this nearly halves the operations.
* ACLs cannot be read in a multi; they are read after the walk, one request
  per persistent node, pipelined (``_protocol.get_acls_pipelined``). The ACL
  reply's stat refreshes ``aversion`` so that ACL and ``aversion`` belong
  together. Ephemeral nodes are never copied, so their ACLs are not read.

The walk is not atomic (ZooKeeper has no snapshot read): a node deleted
between being listed and being read is skipped (``vanished_count``), never an
error; callers that need consistency arm watches before the walk, as the sync
engine does. A requested root that does not exist is an error.

Memory
------
A ``Node`` has ``__slots__``; ACL tuples are interned (most nodes share a few
ACLs); ``keep_data=False`` keeps only the 16-byte hash of each node's data.
See ``tests/bench/bench_snapshot.py`` for measured bytes per node.
"""

import fnmatch
import hashlib
import re
import threading
import time
import traceback
from collections import deque

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    AuthFailedError,
    ConfigError,
    NoNodeError,
    ZkMigrationError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._client import extra_sessions, stop_clients, translate_error

try:
    from kazoo import exceptions as kazoo_exceptions
    HAS_KAZOO = True
    KAZOO_IMPORT_ERROR = None
except ImportError:
    HAS_KAZOO = False
    KAZOO_IMPORT_ERROR = traceback.format_exc()

# multiRead and the pipelined single reads (ACLs, servers without multiRead).
from ansible_collections.zookeeper.migration.plugins.module_utils import _protocol
from ansible_collections.zookeeper.migration.plugins.module_utils import _records


DEFAULT_CONTROL_ROOT = _records.DEFAULT_ROOT
# ZooKeeper's own subtree (quotas, config): never part of a migration.
SYSTEM_ROOT = '/zookeeper'
DATA_HASH_SIZE = 16
# ACL reads are one request per znode, and a server answers one session's
# requests one at a time: from this many ACLs on, a snapshot reads them over
# more sessions (measured on 3-node 3.8 ensembles: ~9k ACLs/s on one
# session, ~14k/s on 12 over three members, on 2 CPUs).
DEFAULT_ACL_SESSIONS = 8
ACL_SESSIONS_MIN_NODES = 5000

# Operation kinds as _protocol spells them, so batches pass through unchanged.
_GET_DATA = 'data'
_GET_CHILDREN = 'children'


def hash_data(data):
    """The 16-byte blake2b digest the model uses to compare data without keeping it."""
    return hashlib.blake2b(data, digest_size=DATA_HASH_SIZE).digest()


EMPTY_DATA_HASH = hash_data(b'')
_blake2b = hashlib.blake2b


class Node(object):
    """One znode as seen in a snapshot (see docs/architecture.md for the fields).

    ``data`` is None when the snapshot keeps only hashes; ``acl`` is None
    when ACLs were not read (or for ephemeral nodes, whose ACLs are never read).
    """

    __slots__ = ('path', 'data', 'data_hash', 'acl', 'version', 'cversion', 'aversion', 'ephemeral_owner',
                 'num_children', 'data_length', 'mzxid', 'mtime')

    def __init__(self, path, data=None, data_hash=None, acl=None, version=0, cversion=0, aversion=0, ephemeral_owner=0,
                 num_children=0, data_length=None, mzxid=0, mtime=0):
        self.path = path
        self.data = data
        if data_hash is None:
            data_hash = hash_data(data) if data else EMPTY_DATA_HASH
        self.data_hash = data_hash
        self.acl = acl
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.ephemeral_owner = ephemeral_owner
        self.num_children = num_children
        self.data_length = len(data) if data_length is None and data is not None else (data_length or 0)
        self.mzxid = mzxid
        self.mtime = mtime

    @property
    def is_ephemeral(self):
        return self.ephemeral_owner != 0

    @property
    def name(self):
        """The last path component ('' for the root)."""
        return self.path.rsplit('/', 1)[1]

    @property
    def parent(self):
        """The parent's path (None for the root)."""
        if self.path == '/':
            return None
        return self.path.rsplit('/', 1)[0] or '/'

    def to_dict(self, with_data=False):
        """A JSON-friendly view (data only when asked, as text when it decodes, else hex)."""
        result = {'path': self.path, 'data_hash': self.data_hash.hex(), 'version': self.version, 'cversion': self.cversion,
                  'aversion': self.aversion, 'ephemeral_owner': self.ephemeral_owner, 'num_children': self.num_children,
                  'data_length': self.data_length, 'mzxid': self.mzxid, 'mtime': self.mtime,
                  'acl': [list(entry) for entry in self.acl] if self.acl is not None else None}
        if with_data and self.data is not None:
            try:
                result['data'] = self.data.decode('utf-8')
            except UnicodeDecodeError:
                result['data_hex'] = self.data.hex()
        return result

    def __repr__(self):
        return 'Node(%r, data_length=%d, version=%d, cversion=%d, aversion=%d, ephemeral_owner=%d, num_children=%d)' % (
            self.path, self.data_length, self.version, self.cversion, self.aversion, self.ephemeral_owner, self.num_children)

    def __eq__(self, other):
        if not isinstance(other, Node):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None


class Snapshot(object):
    """Every node seen under ``roots``, by absolute path (ephemerals included, flagged).

    Besides ``nodes`` and ``roots`` it records what the walk did:
    ``with_acl``/``keep_data`` (how it was taken), ``largest_data_length`` and
    ``largest_data_path`` (over persistent nodes, the ones a copy writes:
    check them against the destination's jute.maxbuffer), ``ephemeral_count``,
    ``excluded_count`` (subtrees cut by excludes, counted at their top),
    ``vanished_count`` (nodes deleted during the walk), ``multi_read``
    (whether multiRead was used) and ``elapsed`` seconds.
    """

    __slots__ = ('nodes', 'roots', 'with_acl', 'keep_data', 'largest_data_length', 'largest_data_path', 'ephemeral_count',
                 'excluded_count', 'vanished_count', 'multi_read', 'elapsed')

    def __init__(self, roots=(), nodes=None, with_acl=False, keep_data=True):
        self.nodes = nodes if nodes is not None else {}
        self.roots = list(roots)
        self.with_acl = with_acl
        self.keep_data = keep_data
        self.largest_data_length = 0
        self.largest_data_path = None
        self.ephemeral_count = 0
        self.excluded_count = 0
        self.vanished_count = 0
        self.multi_read = False
        self.elapsed = 0.0

    def persistent(self):
        """Iterate over the persistent nodes (also container/TTL nodes, which servers show as persistent)."""
        return (node for node in self.nodes.values() if not node.ephemeral_owner)

    def ephemerals(self):
        """Iterate over the ephemeral nodes (recorded, never copied)."""
        return (node for node in self.nodes.values() if node.ephemeral_owner)

    @property
    def persistent_count(self):
        return len(self.nodes) - self.ephemeral_count

    def __len__(self):
        return len(self.nodes)

    def __contains__(self, path):
        return path in self.nodes

    def __iter__(self):
        return iter(self.nodes.values())

    def get(self, path, default=None):
        return self.nodes.get(path, default)

    def recount(self):
        """Recompute the counters from ``nodes`` (after nodes were added or removed by hand)."""
        self.ephemeral_count = 0
        self.largest_data_length = 0
        self.largest_data_path = None
        for node in self.nodes.values():
            if node.ephemeral_owner:
                self.ephemeral_count += 1
            elif node.data_length > self.largest_data_length or self.largest_data_path is None:
                self.largest_data_length = node.data_length
                self.largest_data_path = node.path

    def summary(self):
        """Counters as a dict, for module results, status and logs."""
        return {'roots': list(self.roots), 'nodes': len(self.nodes), 'persistent': self.persistent_count,
                'ephemeral': self.ephemeral_count, 'excluded': self.excluded_count, 'vanished': self.vanished_count,
                'largest_data_length': self.largest_data_length, 'largest_data_path': self.largest_data_path,
                'with_acl': self.with_acl, 'multi_read': self.multi_read, 'elapsed': round(self.elapsed, 3)}

    def __repr__(self):
        return 'Snapshot(roots=%r, nodes=%d, ephemeral=%d, with_acl=%r)' % (self.roots, len(self.nodes), self.ephemeral_count, self.with_acl)


# --------------------------------------------------------------------------
# Paths and excludes
# --------------------------------------------------------------------------

def normalize_path(path, what='path'):
    """An absolute znode path without a trailing slash; ``ConfigError`` otherwise."""
    if not isinstance(path, str) or not path.startswith('/'):
        raise ConfigError('%s must be an absolute znode path starting with "/", got %r' % (what, path))
    if path != '/':
        path = path.rstrip('/') or '/'
    if '//' in path or any(part in ('.', '..') for part in path.split('/')[1:]):
        raise ConfigError('%s %r is not a valid znode path' % (what, path))
    return path


def _ancestors_and_self(path):
    yield path
    while path != '/':
        path = path.rsplit('/', 1)[0] or '/'
        yield path


class PathFilter(object):
    """Decides which paths a walk skips: ``exclude`` globs, ``/zookeeper`` and the control root.

    Globs use ``fnmatch`` on absolute paths (case-sensitive; ``*`` also
    matches "/"); a matching pattern excludes the node and its subtree.
    """

    __slots__ = ('fixed', 'regex', 'patterns')

    def __init__(self, exclude=(), control_root=DEFAULT_CONTROL_ROOT):
        if isinstance(exclude, str):
            exclude = [exclude]
        self.patterns = []
        self.fixed = set([SYSTEM_ROOT])
        if control_root:
            self.fixed.add(normalize_path(control_root, 'control_root'))
        globs = []
        for pattern in exclude or ():
            if not isinstance(pattern, str) or not pattern.startswith('/'):
                raise ConfigError('exclude patterns must be absolute paths or globs starting with "/", got %r' % (pattern,))
            pattern = pattern.rstrip('/') or '/'
            self.patterns.append(pattern)
            if any(char in pattern for char in '*?['):
                globs.append(fnmatch.translate(pattern))
            else:
                self.fixed.add(pattern)
        self.regex = re.compile('|'.join('(?:%s)' % glob for glob in globs)) if globs else None

    def matches(self, path):
        """True when ``path`` itself is excluded (its ancestors are not looked at)."""
        return path in self.fixed or (self.regex is not None and self.regex.match(path) is not None)

    def excluded(self, path):
        """True when ``path`` or one of its ancestors is excluded."""
        return any(self.matches(candidate) for candidate in _ancestors_and_self(path))


def normalize_roots(paths):
    if isinstance(paths, str):
        paths = [paths]
    roots = []
    for path in paths or ():
        path = normalize_path(path, 'snapshot path')
        if path not in roots:
            roots.append(path)
    if not roots:
        raise ConfigError('a snapshot needs at least one path')
    # A root inside another root is walked as part of it.
    covered = []
    for path in roots:
        if not any(other != path and (other == '/' or path.startswith(other + '/')) for other in roots):
            covered.append(path)
    return roots, covered


# --------------------------------------------------------------------------
# Readers: how batches of getData / getChildren reach the server
# --------------------------------------------------------------------------

class _MultiReadReader(object):
    """multiRead (opcode 22) requests through ``_protocol.multi_read_async``: one request per batch, several in flight."""

    multi_read = True

    def __init__(self, client, batch, in_flight):
        self.client = client
        self.per_request = batch
        self.window = in_flight

    def submit(self, ops):
        return _protocol.multi_read_async(self.client, ops, raw_stats=True)   # SnapshotBuilder.add reads stats by index

    @staticmethod
    def collect(handle):
        return handle.get()


class _PipelinedReader(object):
    """Single getData/getChildren requests through ``_protocol.read_pipelined`` (ZooKeeper 3.4/3.5).

    Each "request" of the walk is a wave of up to ``batch * in_flight`` reads
    sent with that many outstanding; the wave is read when it is collected.
    """

    multi_read = False

    def __init__(self, client, batch, in_flight):
        self.client = client
        self.per_request = batch * in_flight
        self.window = 1

    @staticmethod
    def submit(ops):
        return ops

    def collect(self, ops):
        return _protocol.read_pipelined(self.client, ops, window=min(len(ops), _protocol.DEFAULT_PIPELINE_WINDOW))


def _read_acls(client, paths, window):
    """ACL results for ``paths``: ``{path: (acl_list, stat) or the kazoo exception instance}``."""
    return _protocol.get_acls_pipelined(client, paths, window=window)


# --------------------------------------------------------------------------
# Building a snapshot
# --------------------------------------------------------------------------

class SnapshotBuilder(object):
    """Turns raw replies into ``Node`` objects; the walk feeds it (and the memory benchmark does too).

    Stats are indexed in ZooKeeper's Stat order (kazoo's ``ZnodeStat``
    namedtuple or a plain tuple): czxid, mzxid, ctime, mtime, version,
    cversion, aversion, ephemeralOwner, dataLength, numChildren, pzxid.
    """

    def __init__(self, snapshot, keep_data=True):
        self.snapshot = snapshot
        self.nodes = snapshot.nodes
        self.keep_data = keep_data
        self.acl_cache = {}

    def add(self, path, data, stat):
        """Record a node from a getData reply; returns its ``numChildren``."""
        node = Node.__new__(Node)
        node.path = path
        node.data = data if self.keep_data else None
        node.data_hash = _blake2b(data, digest_size=DATA_HASH_SIZE).digest() if data else EMPTY_DATA_HASH
        node.acl = None
        node.mzxid = stat[1]
        node.mtime = stat[3]
        node.version = stat[4]
        node.cversion = stat[5]
        node.aversion = stat[6]
        owner = node.ephemeral_owner = stat[7]
        length = node.data_length = stat[8]
        children = node.num_children = stat[9]
        self.nodes[path] = node
        snapshot = self.snapshot
        if owner:
            snapshot.ephemeral_count += 1
        elif length > snapshot.largest_data_length or snapshot.largest_data_path is None:
            snapshot.largest_data_length = length
            snapshot.largest_data_path = path
        return children

    def set_acl(self, node, acl_list, stat):
        """Attach an ACL (kazoo ``ACL`` objects or ``(perms, scheme, id)`` tuples) and its ``aversion``."""
        if acl_list and hasattr(acl_list[0], 'perms'):
            key = tuple((acl.perms, acl.id.scheme, acl.id.id) for acl in acl_list)
        else:
            key = tuple(tuple(entry) for entry in acl_list)
        node.acl = self.acl_cache.setdefault(key, key)
        if stat is not None:
            node.aversion = stat[6]

    def drop(self, path):
        """Forget a node that vanished during the walk."""
        node = self.nodes.pop(path, None)
        if node is not None and node.ephemeral_owner:
            self.snapshot.ephemeral_count -= 1
        self.snapshot.vanished_count += 1
        if node is not None and path == self.snapshot.largest_data_path:
            self.snapshot.recount()


def _is_no_node(exc):
    return HAS_KAZOO and isinstance(exc, kazoo_exceptions.NoNodeError)


def _is_no_auth(exc):
    return HAS_KAZOO and isinstance(exc, kazoo_exceptions.NoAuthError)


def raise_read_error(exc, path, cluster, hint='give the migration identity read access, or use a superDigest identity'):
    """Raise the engine error for a failed read of ``path``: NoAuth names the path and what to do (``hint``)."""
    if HAS_KAZOO and isinstance(exc, kazoo_exceptions.NoAuthError):
        raise AuthFailedError('not allowed to read znode %s: the ACL does not grant this connection\'s identity READ (%s)' % (path, hint),
                              path=path, cluster=cluster) from exc
    translated = translate_error(exc, path=path, cluster=cluster)
    if translated is exc:
        raise exc
    raise translated from exc


def take_snapshot(client, paths, exclude=(), with_acl=True, keep_data=True, control_root=DEFAULT_CONTROL_ROOT,
                  batch=500, in_flight=4, progress=None, multi_read=None, cluster=None, acl_clients=(), unreadable=None,
                  acl_sessions=DEFAULT_ACL_SESSIONS):
    """Walk the subtrees under ``paths`` and return a ``Snapshot``.

    * ``exclude``: fnmatch globs on absolute paths; a match excludes the node
      and its subtree. ``/zookeeper`` and ``control_root`` are always excluded.
    * ``with_acl``: read each persistent node's ACL (one request per node, pipelined).
    * ``keep_data``: keep data bytes (else only ``data_hash``).
    * ``batch``: operations per multiRead request; ``in_flight``: requests
      outstanding at once (without multiRead, ``batch * in_flight`` single
      reads are outstanding).
    * ``multi_read``: force multiRead on or off; None probes the server
      (``_protocol.supports_multi_read``).
    * ``progress``: called as ``progress(nodes_read, paths_queued)`` after each reply.
    * ``cluster``: a name for error messages.
    * ``acl_clients``: more started clients of the same cluster (same
      identity and chroot; ideally one per member, see
      ``_client.connect_members``) that share the ACL reads with ``client``,
      one thread each. A server answers one session's requests one at a time,
      so ACL reads (one request per node) scale with sessions and members.
    * ``acl_sessions``: without ``acl_clients``, when at least
      ``ACL_SESSIONS_MIN_NODES`` ACLs are to be read and ``client`` came from
      ``_client.connect``, that many more sessions of the same identity are
      opened over the members for the ACL reads and closed afterwards (0:
      never; best effort: the reads go on with the sessions that opened).
    * ``unreadable``: a list; when given, a node whose data or children this
      identity may not read is appended to it and its subtree skipped,
      instead of failing the walk (for summaries, never for a copy).

    Raises ``NoNodeError`` when a requested root does not exist,
    ``AuthFailedError`` when a node cannot be read for lack of permission,
    ``ClusterUnreachableError`` when the session is lost (take the snapshot
    again: a partial walk is never returned).
    """
    started = time.monotonic()
    if batch < 1 or in_flight < 1:
        raise ConfigError('batch and in_flight must be at least 1')
    roots, walk_roots = normalize_roots(paths)
    path_filter = PathFilter(exclude, control_root)
    if multi_read is None:
        multi_read = bool(_protocol.supports_multi_read(client))
    reader = _MultiReadReader(client, batch, in_flight) if multi_read else _PipelinedReader(client, batch, in_flight)
    window = reader.window
    per_request = reader.per_request

    snapshot = Snapshot(roots, with_acl=with_acl, keep_data=keep_data)
    snapshot.multi_read = multi_read
    builder = SnapshotBuilder(snapshot, keep_data=keep_data)
    root_set = set()
    data_queue = deque()
    for root in walk_roots:
        if path_filter.excluded(root):
            snapshot.excluded_count += 1
            continue
        root_set.add(root)
        data_queue.append(root)
    # The member this session reads from may lag the leader: sync first, so the
    # walk sees at least every write committed before it started, whoever made it.
    for root in sorted(root_set)[:1]:
        try:
            client.sync(root)
        except Exception as exc:  # pylint: disable=broad-except
            raise_read_error(exc, root, cluster)
    children_queue = deque()
    pending = deque()
    add = builder.add
    matches = path_filter.matches

    while data_queue or children_queue or pending:
        while len(pending) < window and (data_queue or children_queue):
            ops = []
            # Listing children first discovers work sooner and keeps the window full.
            while children_queue and len(ops) < per_request:
                ops.append((_GET_CHILDREN, children_queue.popleft()))
            while data_queue and len(ops) < per_request:
                ops.append((_GET_DATA, data_queue.popleft()))
            try:
                pending.append((ops, reader.submit(ops)))
            except Exception as exc:  # pylint: disable=broad-except
                raise_read_error(exc, ops[0][1], cluster)
        ops, handle = pending.popleft()
        try:
            results = reader.collect(handle)
        except ZkMigrationError:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            raise_read_error(exc, ops[0][1], cluster)
        for (kind, path), result in zip(ops, results):
            if isinstance(result, Exception):
                if _is_no_node(result):
                    if path in root_set and kind == _GET_DATA:
                        raise NoNodeError('snapshot path %s does not exist' % path, path=path, cluster=cluster)
                    if kind == _GET_DATA:
                        snapshot.vanished_count += 1
                    else:
                        builder.drop(path)
                    continue
                if unreadable is not None and _is_no_auth(result):
                    # a node is read once for data and, only if that worked, once for children
                    unreadable.append(path)
                    continue
                raise_read_error(result, path, cluster)
            if kind == _GET_DATA:
                data, stat = result
                if add(path, data if data is not None else b'', stat):
                    children_queue.append(path)
            else:
                prefix = path + '/' if path != '/' else '/'
                for name in result:
                    child = prefix + name
                    if matches(child):
                        snapshot.excluded_count += 1
                    else:
                        data_queue.append(child)
        if progress is not None:
            progress(len(snapshot.nodes), len(data_queue) + len(children_queue))

    if with_acl:
        helpers = list(acl_clients or ())
        opened = []
        if not helpers and acl_sessions and snapshot.persistent_count >= ACL_SESSIONS_MIN_NODES:
            opened = extra_sessions(client, acl_sessions)
        try:
            _add_acls([client] + helpers + opened, snapshot, builder, _protocol.DEFAULT_PIPELINE_WINDOW, cluster, progress)
        finally:
            stop_clients(opened)
    snapshot.elapsed = time.monotonic() - started
    return snapshot


def _read_acls_shared(clients, paths, window):
    """``_read_acls`` with the paths dealt out among ``clients``, one thread per extra client."""
    if len(clients) == 1:
        return _read_acls(clients[0], paths, window)
    shares = [paths[index::len(clients)] for index in range(len(clients))]
    outcomes = [None] * len(clients)

    def work(index):
        try:
            outcomes[index] = (True, _read_acls(clients[index], shares[index], window))
        except Exception as exc:  # pylint: disable=broad-except
            outcomes[index] = (False, exc)

    threads = [threading.Thread(target=work, args=(index,), name='zk-acl-reader-%d' % index) for index in range(1, len(clients))]
    for thread in threads:
        thread.daemon = True
        thread.start()
    work(0)
    for thread in threads:
        thread.join()
    results = {}
    for succeeded, value in outcomes:
        if not succeeded:
            raise value
        results.update(value)
    return results


def _add_acls(clients, snapshot, builder, window, cluster, progress, chunk=20000):
    """Read the ACL of every persistent node, in chunks (bounded memory for the replies).

    Extra clients first ``sync()`` so that their member has applied every
    change the walk saw: a node the walk read must not look deleted to a
    lagging follower.
    """
    paths = [node.path for node in snapshot.persistent()]
    nodes = snapshot.nodes
    if len(clients) > 1 and paths:
        for extra in clients[1:]:
            try:
                extra.sync(paths[0])
            except Exception as exc:  # pylint: disable=broad-except
                raise_read_error(exc, paths[0], cluster)
    done = 0
    for start in range(0, len(paths), chunk):
        part = paths[start:start + chunk]
        try:
            results = _read_acls_shared(clients, part, max(window, 1))
        except Exception as exc:  # pylint: disable=broad-except
            raise_read_error(exc, part[0], cluster)
        for path in part:
            result = results[path]
            if isinstance(result, Exception):
                if _is_no_node(result):
                    builder.drop(path)
                    continue
                raise_read_error(result, path, cluster)
            acl_list, stat = result
            builder.set_acl(nodes[path], acl_list, stat)
        done += len(part)
        if progress is not None:
            progress(len(nodes), len(paths) - done)
