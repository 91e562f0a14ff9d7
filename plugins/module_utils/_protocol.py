# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ZooKeeper requests kazoo 2.11 lacks, built on kazoo's own protocol layer.

This is a private module of the zookeeper.migration collection; it may change
without notice.

What is here and why
--------------------
* ``multi_read`` / ``multi_read_async`` / ``multi_read_many``: multiRead
  (opcode 22, ZooKeeper >= 3.6) reads the data or the children of hundreds of
  znodes in one round trip; kazoo's per-request path costs ~0.7 ms of client
  CPU per read, so batching is the only way to read a large tree fast.
* ``read_pipelined`` / ``get_acls_pipelined``: no multi carries getACL, and
  ZooKeeper < 3.6 has no multiRead at all. These keep a window of plain
  requests in flight and hand them to kazoo's connection thread in batches:
  one queue entry, one wake-up and one socket write per batch instead of per
  request, and no ``AsyncResult`` per request.
* ``add_watch``: persistent and persistent-recursive watches (addWatch,
  opcode 106, ZooKeeper >= 3.6), re-armed after every reconnect.
* ``create_container`` / ``create_ttl`` (opcodes 19 and 21) and op objects for
  kazoo transactions (``container_create_op`` / ``ttl_create_op``, or
  ``txn_create_container`` / ``txn_create_ttl`` which apply the chroot).
* ``supports_multi_read`` / ``supports_persistent_watches``: capability probes
  that send the operation itself (servers since 3.5 do not whitelist the
  ``envi`` four-letter word kazoo's ``server_version()`` needs).
* ``tune_client``: swaps the threading handler's ``select`` for a cheaper one.

How it hooks into kazoo
-----------------------
Every request here is a small class with kazoo's request interface (``type``,
``serialize()``, ``deserialize(buffer, offset)``) queued through
``KazooClient._call``, so it shares the session, the xid sequence, the auth
state and the reconnect logic of the client. Three hooks go further, each
installed once, on first use, on the one client (or class) that needs it:

* the connection's ``_read_watch_event`` is wrapped so that events for
  persistent watches reach their callbacks (kazoo only knows one-shot
  watches, which it pops after the first event); kazoo's own dispatch still
  runs afterwards;
* the connection's ``_send_request`` is wrapped so that a ``_RequestBatch``
  queue entry is written as many requests in one go (``read_pipelined``);
* kazoo's ``Transaction.deserialize`` (a class attribute, so for every
  client) is replaced by a superset that also parses the ``create2``-typed
  results servers send for container and TTL creates inside a multi; every
  result kazoo parsed before parses identically. It is installed only when
  one of the transaction op helpers is first used.

Servers older than 3.6 answer an unknown opcode with UNIMPLEMENTED and then
close the connection (checked against 3.4.13). kazoo reconnects with the same
session, but every request in flight at that moment fails with
``ConnectionLoss``: probe capabilities once, right after connecting, before
the client is shared. The probes wait until the client is connected again
before they return.

Errors: server answers are left as kazoo exceptions (callers translate them,
see ``_client.translate_error``), except an operation the server lacks, which
raises ``UnsupportedByServerError``, and bad arguments, ``ConfigError``.
"""

import logging
import select
import ssl
import struct
import threading
import time
import traceback
import uuid

try:
    from kazoo.exceptions import (
        EXCEPTIONS,
        AuthFailedError as KazooAuthFailedError,
        ConnectionClosedError,
        ConnectionDropped,
        ConnectionLoss,
        NoNodeError as KazooNoNodeError,
        NoWatcherError,
        SessionExpiredError,
        UnimplementedError,
    )
    from kazoo.handlers.utils import selector_select
    from kazoo.protocol.paths import _prefix_root
    from kazoo.protocol.serialization import (
        CheckVersion,
        GetACL,
        Transaction,
        Watch,
        multiheader_struct,
        read_string,
        stat_struct,
        write_buffer,
        write_string,
    )
    from kazoo.protocol.states import (
        EVENT_TYPE_MAP,
        Callback,
        EventType,
        KazooState,
        KeeperState,
        WatchedEvent,
        ZnodeStat,
    )
    from kazoo.security import OPEN_ACL_UNSAFE
    HAS_KAZOO = True
    KAZOO_IMPORT_ERROR = None
except ImportError:
    HAS_KAZOO = False
    KAZOO_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    ConfigError,
    UnsupportedByServerError,
    ZkMigrationError,
)


log = logging.getLogger(__name__)

# Opcodes (org.apache.zookeeper.ZooDefs.OpCode).
OP_CREATE = 1
OP_DELETE = 2
OP_GET_DATA = 4
OP_SET_DATA = 5
OP_GET_ACL = 6
OP_GET_CHILDREN = 8
OP_CHECK = 13
OP_MULTI = 14
OP_CREATE2 = 15
OP_REMOVE_WATCHES = 18
OP_CREATE_CONTAINER = 19
OP_CREATE_TTL = 21
OP_MULTI_READ = 22
OP_ADD_WATCH = 106
OP_WHO_AM_I = 107
OP_ERROR = -1

# CreateMode flags.
FLAG_SEQUENTIAL = 2
FLAG_CONTAINER = 4
FLAG_PERSISTENT_WITH_TTL = 5
FLAG_PERSISTENT_SEQUENTIAL_WITH_TTL = 6

# AddWatchMode and WatcherType (for removeWatches).
WATCH_MODE_PERSISTENT = 0
WATCH_MODE_PERSISTENT_RECURSIVE = 1
WATCHER_TYPE_ANY = 3

# EphemeralType.MAX_TTL: the TTL shares 40 bits of ephemeralOwner with a type tag.
MAX_TTL_MS = 0xFFFFFFFFFF

# Server event types (WatcherEvent.type).
_EVENT_NODE_CHILDREN_CHANGED = 4

_INT = struct.Struct('!i')
_LEN_XID = struct.Struct('!ii')
_STAT_SIZE = 68  # stat_struct.size, kept literal so the module imports without kazoo
_MAX_XID = 2147483647

# Attributes this module keeps on a KazooClient instance.
_CAPS_ATTR = '_zkm_capabilities'
_WATCHES_ATTR = '_zkm_persistent_watches'
_BATCH_SENDER_ATTR = '_zkm_batch_sender'

DEFAULT_PIPELINE_WINDOW = 1000
DEFAULT_MULTI_READ_BATCH = 500
DEFAULT_MULTI_READ_WINDOW = 4

_CAPABILITY_PROBE_TIMEOUT = 30.0
_OP_KINDS = {'data': OP_GET_DATA, 'children': OP_GET_CHILDREN, 'acl': OP_GET_ACL}


def _require_kazoo():
    if not HAS_KAZOO:
        raise ZkMigrationError('the kazoo Python library is required to talk to ZooKeeper but cannot be imported')


# --------------------------------------------------------------------------
# Serialisation helpers (pure functions; unit tested without a server)
# --------------------------------------------------------------------------

def _encode_acls(acl):
    """A jute ``vector<ACL>`` from kazoo ``ACL`` tuples."""
    parts = [_INT.pack(len(acl))]
    for entry in acl:
        parts.append(_INT.pack(entry.perms))
        parts.append(write_string(entry.id.scheme))
        parts.append(write_string(entry.id.id))
    return b''.join(parts)


def _encode_multi_header(op_type, done=False, err=-1):
    return multiheader_struct.pack(op_type, 1 if done else 0, err)


_MULTI_END = b'\xff\xff\xff\xff\x01\xff\xff\xff\xff'  # MultiHeader(-1, done=True, -1)


def _read_stat(buffer, offset):
    return ZnodeStat._make(stat_struct.unpack_from(buffer, offset)), offset + _STAT_SIZE


def _read_data(buffer, offset):
    """A jute ``buffer`` as bytes; a null buffer (length -1) reads as b''."""
    length = _INT.unpack_from(buffer, offset)[0]
    offset += 4
    if length <= 0:
        return b'', offset
    end = offset + length
    return bytes(buffer[offset:end]), end


def _read_children(buffer, offset):
    count = _INT.unpack_from(buffer, offset)[0]
    offset += 4
    children = []
    if count <= 0:
        return children, offset
    unpack = _INT.unpack_from
    append = children.append
    for _index in range(count):
        length = unpack(buffer, offset)[0]
        offset += 4
        end = offset + length
        append(buffer[offset:end].decode('utf-8'))
        offset = end
    return children, offset


def _error_instance(code):
    """The kazoo exception instance for a ZooKeeper error code."""
    try:
        return EXCEPTIONS[code]()
    except RuntimeError:  # kazoo's EXCEPTIONS raises for codes it does not know
        error = ZkMigrationError('ZooKeeper answered with unknown error code %d' % code)
        error.code = code
        return error


def parse_multi_read_response(buffer, offset=0, raw_stats=False):
    """Decode a MultiResponse to a multiRead: one slot per op.

    getData slots are ``(bytes, ZnodeStat)`` (with ``raw_stats``, the stat
    as a plain tuple in the same order: a walk of a million znodes reads
    them by index and spares the namedtuple), getChildren slots a list of
    child names, failed ops the kazoo exception instance (``NoNodeError()``).
    """
    results = []
    append = results.append
    header = multiheader_struct.unpack_from
    unpack_int = _INT.unpack_from
    unpack_stat = stat_struct.unpack_from
    make_stat = None if raw_stats else ZnodeStat._make
    while True:
        op_type, done, err = header(buffer, offset)
        offset += 9
        if done:
            return results
        if op_type == OP_GET_DATA:
            # inlined _read_data / _read_stat: this loop runs once per znode of a walk
            (length,) = unpack_int(buffer, offset)
            offset += 4
            if length > 0:
                data = bytes(buffer[offset:offset + length])
                offset += length
            else:
                data = b''
            stat = unpack_stat(buffer, offset)
            offset += _STAT_SIZE
            append((data, make_stat(stat) if make_stat is not None else stat))
        elif op_type == OP_GET_CHILDREN:
            children, offset = _read_children(buffer, offset)
            append(children)
        elif op_type == OP_ERROR:
            code = unpack_int(buffer, offset)[0]
            offset += 4
            append(_error_instance(code or err))
        else:
            raise ZkMigrationError('unexpected op type %d in a multiRead response' % op_type)


def parse_multi_response(buffer, offset=0):
    """Decode a MultiResponse to a write multi exactly as kazoo 2.11 does, plus ``create2`` results.

    Servers answer container and TTL creates inside a multi with a
    ``create2``-typed result (path and stat); kazoo's own parser does not
    know that type and misreads the rest of the response. Creates yield the
    created path (as kazoo's do), deletes and checks ``True``, setData the
    new ``ZnodeStat``, failed or rolled-back ops their kazoo exception.
    """
    results = []
    append = results.append
    header = multiheader_struct.unpack_from
    while True:
        op_type, done, _err = header(buffer, offset)
        offset += 9
        if done:
            return results
        if op_type == OP_CREATE:
            path, offset = read_string(buffer, offset)
            append(path)
        elif op_type == OP_CREATE2:
            path, offset = read_string(buffer, offset)
            offset += _STAT_SIZE
            append(path)
        elif op_type in (OP_DELETE, OP_CHECK):
            append(True)
        elif op_type == OP_SET_DATA:
            stat, offset = _read_stat(buffer, offset)
            append(stat)
        elif op_type == OP_ERROR:
            code = _INT.unpack_from(buffer, offset)[0]
            offset += 4
            append(_error_instance(code))
        else:
            raise ZkMigrationError('unexpected op type %d in a multi response' % op_type)


def _check_path(path):
    if not isinstance(path, str) or not path.startswith('/'):
        raise ConfigError('znode path must be an absolute string path, got %r' % (path,))


def _server_path(client, path):
    """``path`` as the server sees it (the client's chroot prefixed, as kazoo does)."""
    _check_path(path)
    if client.chroot:
        return _prefix_root(client.chroot, path)
    return path


# --------------------------------------------------------------------------
# Request classes (kazoo's request interface: type, serialize, deserialize)
# --------------------------------------------------------------------------

class MultiRead(object):
    """multiRead (opcode 22): getData/getChildren of many paths in one request.

    ``ops`` is a list of ``(opcode, server_path)`` with opcode 4 (getData) or
    8 (getChildren). No watches are set (kazoo could not route their events).
    """

    __slots__ = ('ops', 'raw_stats')
    type = OP_MULTI_READ

    def __init__(self, ops, raw_stats=False):
        self.ops = ops
        self.raw_stats = raw_stats

    def serialize(self):
        parts = []
        append = parts.append
        for op_type, path in self.ops:
            append(_encode_multi_header(op_type))
            append(write_string(path))
            append(b'\x00')  # watch = false
        append(_MULTI_END)
        return b''.join(parts)

    def deserialize(self, buffer, offset):
        return parse_multi_read_response(buffer, offset, self.raw_stats)

    def __repr__(self):
        return 'MultiRead(%d ops)' % len(self.ops)


class CreateContainer(object):
    """createContainer (opcode 19): CreateRequest with the CONTAINER flag; answers Create2Response.

    Usable on its own and as an op inside a kazoo transaction (the multi
    header carries opcode 19, which is how servers tell it from a create).
    """

    __slots__ = ('path', 'data', 'acl')
    type = OP_CREATE_CONTAINER
    flags = FLAG_CONTAINER

    def __init__(self, path, data, acl):
        self.path = path
        self.data = data
        self.acl = acl

    def serialize(self):
        return b''.join((write_string(self.path), write_buffer(self.data), _encode_acls(self.acl), _INT.pack(self.flags)))

    @staticmethod
    def deserialize(buffer, offset):
        path, offset = read_string(buffer, offset)
        return path

    def __repr__(self):
        return 'CreateContainer(%r)' % self.path


class CreateTTL(object):
    """createTTL (opcode 21): CreateTTLRequest (a CreateRequest plus ``long ttl``); answers Create2Response."""

    __slots__ = ('path', 'data', 'acl', 'flags', 'ttl')
    type = OP_CREATE_TTL

    def __init__(self, path, data, acl, ttl, sequential=False):
        self.path = path
        self.data = data
        self.acl = acl
        self.ttl = ttl
        self.flags = FLAG_PERSISTENT_SEQUENTIAL_WITH_TTL if sequential else FLAG_PERSISTENT_WITH_TTL

    def serialize(self):
        return b''.join((write_string(self.path), write_buffer(self.data), _encode_acls(self.acl),
                         _INT.pack(self.flags), struct.pack('!q', self.ttl)))

    @staticmethod
    def deserialize(buffer, offset):
        path, offset = read_string(buffer, offset)
        return path

    def __repr__(self):
        return 'CreateTTL(%r, ttl=%d)' % (self.path, self.ttl)


class AddWatch(object):
    """addWatch (opcode 106): AddWatchRequest {path, mode}; the answer carries no payload we need."""

    __slots__ = ('path', 'mode')
    type = OP_ADD_WATCH

    def __init__(self, path, mode):
        self.path = path
        self.mode = mode

    def serialize(self):
        return write_string(self.path) + _INT.pack(self.mode)

    @staticmethod
    def deserialize(buffer, offset):
        return True

    def __repr__(self):
        return 'AddWatch(%r, mode=%d)' % (self.path, self.mode)


class RemoveWatches(object):
    """removeWatches (opcode 18): RemoveWatchesRequest {path, type}."""

    __slots__ = ('path', 'watcher_type')
    type = OP_REMOVE_WATCHES

    def __init__(self, path, watcher_type=WATCHER_TYPE_ANY):
        self.path = path
        self.watcher_type = watcher_type

    def serialize(self):
        return write_string(self.path) + _INT.pack(self.watcher_type)

    @staticmethod
    def deserialize(buffer, offset):
        return True

    def __repr__(self):
        return 'RemoveWatches(%r, type=%d)' % (self.path, self.watcher_type)


class WhoAmI(object):
    """whoAmI (opcode 107, ZooKeeper >= 3.7): no request body; the answer is WhoAmIResponse
    {vector<ClientInfo {authScheme, user}>}, the identities the session authenticated as.

    A digest identity shows as ``('digest', user)`` (no hash); a session that
    authenticated as the server's superDigest user also shows ``('super', '')``.
    """

    __slots__ = ()
    type = OP_WHO_AM_I

    @staticmethod
    def serialize():
        return b''

    @staticmethod
    def deserialize(buffer, offset):
        count = _INT.unpack_from(buffer, offset)[0]
        offset += _INT.size
        identities = []
        for _index in range(max(count, 0)):
            scheme, offset = read_string(buffer, offset)
            user, offset = read_string(buffer, offset)
            identities.append((scheme, user or ''))
        return identities

    def __repr__(self):
        return 'WhoAmI()'


def call_async(client, request):
    """Send ``request`` on ``client``'s connection; returns the async result its reply settles."""
    async_result = client.handler.async_result()
    client._call(request, async_result)  # pylint: disable=protected-access
    return async_result


class EncodedMulti(object):
    """A multi request whose body was serialized up front (the wire format of kazoo's ``Transaction``).

    ``_apply`` encodes its write batches straight to bytes, once; the reply is
    parsed like any multi's (``parse_multi_response``, create2-typed results included).
    """

    __slots__ = ('body',)
    type = 14   # OpCode.multi

    def __init__(self, body):
        self.body = body

    def serialize(self):
        return self.body

    @staticmethod
    def deserialize(buffer, offset):
        return parse_multi_response(buffer, offset)

    @staticmethod
    def unchroot(client, response):
        return Transaction.unchroot(client, response)


def check_version_op(path, version):
    """A check-version op for a multi (``kazoo.client.TransactionRequest.operations`` or a raw op list)."""
    _require_kazoo()
    return CheckVersion(path, version)


# --------------------------------------------------------------------------
# Unknown opcodes on old servers
# --------------------------------------------------------------------------

_DROPS_ATTR = '_zkm_connection_drops'
_DROPS_LOCK = threading.Lock()
# How long an old server may take to close the connection after refusing an
# unknown opcode (it follows the answer within milliseconds; this is slack for
# a loaded machine).
_REFUSAL_CLOSE_GRACE = 2.0


def _drop_count(client):
    """How many times ``client`` lost its connection since this was first asked (installs the counter)."""
    with _DROPS_LOCK:
        counter = getattr(client, _DROPS_ATTR, None)
        if counter is None:
            counter = [0]
            setattr(client, _DROPS_ATTR, counter)

            def count_drops(state):
                if state != KazooState.CONNECTED:
                    counter[0] += 1
                return False

            client.add_listener(count_drops)
        return counter[0]


def _known_modern(client):
    """True when a probe already showed a 3.6+ server, which knows every opcode this module sends."""
    caps = getattr(client, _CAPS_ATTR, None) or {}
    return bool(caps.get('multi_read') or caps.get('persistent_watches'))


def _settle_after_refusal(client, drops_before, timeout=_CAPABILITY_PROBE_TIMEOUT):
    """Wait until ``client`` works again after the server answered UNIMPLEMENTED.

    A server that does not know the opcode (3.4/3.5 for opcodes 19, 21, 22,
    106) closes the connection right after that answer, though it may still
    answer a request or two first; kazoo then reconnects with the same
    session. A server that knows the opcode but refuses it (3.6+ creating a
    TTL node without extendedTypesEnabled) keeps the connection. So: wait
    for the drop (unless the server is known to be 3.6+), then for a round
    trip on the new connection.
    """
    deadline = time.monotonic() + timeout
    if not _known_modern(client):
        grace_end = min(deadline, time.monotonic() + _REFUSAL_CLOSE_GRACE)
        while _drop_count(client) == drops_before and time.monotonic() < grace_end:
            time.sleep(0.005)
        if _drop_count(client) == drops_before:
            return True  # the connection stayed up
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            log.warning('ZooKeeper client did not reconnect within %.0fs after the server refused an operation', timeout)
            return False
        try:
            client.exists_async('/').get(timeout=remaining)
            return True
        except ConnectionLoss:
            time.sleep(0.01)
        except Exception:  # pylint: disable=broad-except
            # Timeout, closed client, expired session: nothing more to wait for here.
            return client.connected


def _send_or_refuse(client, request, what, hint=None, timeout=None, on_refusal=None):
    """Send ``request`` and return its result; an unknown opcode raises ``UnsupportedByServerError``.

    ``on_refusal()`` runs first thing after a refusal (before the reconnect
    it may cause). After a refusal the client is usable again before this
    returns.
    """
    drops_before = _drop_count(client)
    async_result = call_async(client, request)
    try:
        return async_result.get(timeout=timeout)
    except UnimplementedError:
        if on_refusal is not None:
            on_refusal()
        _settle_after_refusal(client, drops_before)
        message = 'the ZooKeeper server does not support %s (it answered UNIMPLEMENTED)' % what
        if hint:
            message += '; ' + hint
        raise UnsupportedByServerError(message, path=getattr(request, 'path', None))


def _probe(client, name, request):
    """Send ``request`` once per client and remember whether the server knows its opcode."""
    caps = getattr(client, _CAPS_ATTR, None)
    if caps is None:
        caps = {}
        setattr(client, _CAPS_ATTR, caps)
    if name in caps:
        return caps[name]
    supported = None
    for _attempt in range(2):
        drops_before = _drop_count(client)
        try:
            call_async(client, request).get(timeout=_CAPABILITY_PROBE_TIMEOUT)
            supported = True
        except UnimplementedError:
            supported = False
            _settle_after_refusal(client, drops_before)
        except ConnectionLoss:
            # An old server may close the connection before its answer is read;
            # try once more on the new connection before concluding.
            _settle_after_refusal(client, drops_before)
            continue
        except (KazooAuthFailedError, SessionExpiredError, ConnectionClosedError):
            raise
        except Exception as exc:  # pylint: disable=broad-except
            # Any other server answer (no node, no auth, bad arguments) proves the opcode is known.
            if getattr(exc, 'code', None) is not None:
                supported = True
            else:
                raise
        break
    if supported is None:
        log.warning('capability probe %s lost the connection twice: treating the operation as unsupported', name)
        supported = False
    caps[name] = supported
    return supported


def who_am_i(client):
    """The identities the session of ``client`` authenticated as, ``[(scheme, user)]``; None when the server cannot say.

    Sends whoAmI (ZooKeeper >= 3.7) once per client: an older server refuses
    the opcode (3.4/3.5 close the connection; this returns once the client
    works again), which is remembered and answered with None from then on.
    """
    _require_kazoo()
    caps = getattr(client, _CAPS_ATTR, None)
    if caps is None:
        caps = {}
        setattr(client, _CAPS_ATTR, caps)
    if caps.get('who_am_i') is False:
        return None
    for _attempt in range(2):
        drops_before = _drop_count(client)
        try:
            identities = call_async(client, WhoAmI()).get(timeout=_CAPABILITY_PROBE_TIMEOUT)
        except UnimplementedError:
            _settle_after_refusal(client, drops_before)
            break
        except ConnectionLoss:
            _settle_after_refusal(client, drops_before)
            continue
        caps['who_am_i'] = True
        return identities
    caps['who_am_i'] = False
    return None


def supports_multi_read(client):
    """True when the server answers multiRead (opcode 22, ZooKeeper >= 3.6); probed once per client.

    Probing a 3.4/3.5 server makes it close the connection (kazoo
    reconnects; this returns once the client works again), so probe right
    after connecting, before other threads use the client.
    """
    _require_kazoo()
    return _probe(client, 'multi_read', MultiRead([(OP_GET_CHILDREN, _server_path(client, '/'))]))


def supports_persistent_watches(client):
    """True when the server answers addWatch (opcode 106, ZooKeeper >= 3.6); probed once per client.

    The probe watches a path that does not exist and removes the watch again.
    """
    _require_kazoo()
    probe_path = _server_path(client, '/zookeeper-migration-probe-%s' % uuid.uuid4().hex)
    supported = _probe(client, 'persistent_watches', AddWatch(probe_path, WATCH_MODE_PERSISTENT))
    if supported:
        try:
            call_async(client, RemoveWatches(probe_path)).get(timeout=_CAPABILITY_PROBE_TIMEOUT)
        except Exception:  # pylint: disable=broad-except
            pass  # the watch dies with the connection anyway
    return supported


# --------------------------------------------------------------------------
# multiRead
# --------------------------------------------------------------------------

def _multi_read_request(client, ops, raw_stats=False):
    encoded = []
    chroot = client.chroot
    for op in ops:
        try:
            kind, path = op
            opcode = _OP_KINDS[kind]
        except (KeyError, TypeError, ValueError):
            raise ConfigError("multiRead ops are ('data', path) or ('children', path) tuples, got %r" % (op,))
        if opcode == OP_GET_ACL:
            raise ConfigError('multiRead cannot read ACLs (use get_acls_pipelined): %r' % (op,))
        if chroot:
            path = _prefix_root(chroot, path)
        elif path[:1] != '/':
            _check_path(path)
        encoded.append((opcode, path))
    return MultiRead(encoded, raw_stats)


def multi_read_async(client, ops, raw_stats=False):
    """Send one multiRead for ``ops``; returns a kazoo ``IAsyncResult``.

    ``ops`` is a list of ``('data', path)`` / ``('children', path)``. The
    result's ``get()`` returns one slot per op: ``(bytes, ZnodeStat)`` for
    data (null data reads as ``b''``), a list of child names for children,
    or the kazoo exception instance of a failed op (``NoNodeError()``,
    ``NoAuthError()``), which is not raised. ``get()`` raises when the whole
    request fails (connection loss, ``UnimplementedError`` on ZooKeeper < 3.6).
    The reads are not atomic: each op sees the tree as the server had it then.
    The whole answer comes back as one packet (the server does not apply
    jute.maxbuffer to it, kazoo reads any size): bound a batch by the data
    sizes it may carry, not only by its number of ops. ``raw_stats``: stats
    as plain tuples (see ``parse_multi_read_response``).
    """
    _require_kazoo()
    request = _multi_read_request(client, ops, raw_stats)
    if not request.ops:
        async_result = client.handler.async_result()
        async_result.set([])
        return async_result
    return call_async(client, request)


def multi_read(client, ops):
    """``multi_read_async(client, ops).get()``: one slot per op (see there)."""
    return multi_read_async(client, ops).get()


def multi_read_many(client, ops, batch_size=DEFAULT_MULTI_READ_BATCH, window=DEFAULT_MULTI_READ_WINDOW):
    """Read any number of ``ops`` in multiReads of ``batch_size`` ops, ``window`` of them in flight.

    Returns one slot per op, as ``multi_read``. Raises the first whole-request
    failure after the requests in flight have settled.
    """
    if batch_size < 1 or window < 1:
        raise ConfigError('batch_size and window must be at least 1')
    results = [None] * len(ops)
    in_flight = []
    error = None
    for start in range(0, len(ops), batch_size):
        if len(in_flight) >= window:
            first, async_result = in_flight.pop(0)
            error = error or _collect(results, first, async_result)
            if error is not None:
                break
        in_flight.append((start, multi_read_async(client, ops[start:start + batch_size])))
    for first, async_result in in_flight:
        error = error or _collect(results, first, async_result)
    if error is not None:
        raise error
    return results


def _collect(results, first, async_result):
    try:
        slots = async_result.get()
    except Exception as exc:  # pylint: disable=broad-except
        return exc
    results[first:first + len(slots)] = slots
    return None


# --------------------------------------------------------------------------
# Buffered socket reads (watch events and pipelined replies in bulk)
# --------------------------------------------------------------------------

WATCH_EVENT = struct.Struct('>iii')    # type, state, path length (the path follows)
REPLY_HEADER = struct.Struct('>iqi')   # xid, zxid, err
REPLY_HEADER_SIZE = REPLY_HEADER.size
_MESSAGE_LENGTH = struct.Struct('>i')
_WATCH_XID = -1


class BufferedSocketReads(object):
    """kazoo's connection reads, served from large ``recv`` chunks.

    kazoo reads each message with two ``recv`` calls (its length, then its
    body), each after a ``poll``. This replaces the connection's ``_read``
    with one that fills a buffer with whatever the socket holds (up to
    256 KiB) and serves messages from it, and wraps the handler's ``select``
    so that a complete message waiting in the buffer counts as readable (the
    other descriptors are still polled, without waiting, so requests keep
    going out). The buffer belongs to one socket: a reconnect starts afresh.
    Installed once per client (``install``); nothing when kazoo's internals
    differ. ``take_watch_events`` and ``take_reply`` let a caller take the
    messages already buffered without a round of kazoo's loop each.
    """

    CHUNK = 256 * 1024

    def __init__(self, connection, handler):
        self.connection = connection
        self.sock = None
        self.data = b''
        self.pos = 0
        self.inner_select = handler.select

    @classmethod
    def install(cls, client):
        connection = getattr(client, '_connection', None)
        handler = getattr(client, 'handler', None)
        existing = getattr(connection, '_zkm_buffered_reads', None)
        if existing is not None:
            return existing
        if connection is None or handler is None or not hasattr(connection, '_read') or not hasattr(connection, '_socket_error_handling') \
                or getattr(handler, 'name', None) != 'sequential_threading_handler':
            return None
        reads = cls(connection, handler)
        connection._read = reads.read  # pylint: disable=protected-access
        handler.select = reads.select
        connection._zkm_buffered_reads = reads  # pylint: disable=protected-access
        return reads

    def _complete_message(self):
        """True when the current socket has a whole message in the buffer (or TLS data decrypted, not yet read)."""
        sock = self.sock
        if sock is not self.connection._socket:  # pylint: disable=protected-access
            return False
        available = len(self.data) - self.pos
        if available >= 4 and available >= 4 + _MESSAGE_LENGTH.unpack_from(self.data, self.pos)[0]:
            return True
        pending = getattr(sock, 'pending', None)
        return pending is not None and pending() > 0

    def select(self, rlist, wlist, xlist, timeout=None):
        sock = self.sock
        if sock is not None and rlist and sock in rlist and self._complete_message():
            readable, writable, other = self.inner_select(rlist, wlist, xlist, 0)
            if sock not in readable:
                readable = [sock] + list(readable)
            return readable, writable, other
        return self.inner_select(rlist, wlist, xlist, timeout)

    def read(self, length, timeout):
        connection = self.connection
        sock = connection._socket  # pylint: disable=protected-access
        if sock is not self.sock:
            self.sock, self.data, self.pos = sock, b'', 0
        if len(self.data) - self.pos >= length:
            start = self.pos
            self.pos = start + length
            return self.data[start:self.pos]
        with connection._socket_error_handling():  # pylint: disable=protected-access
            parts = [self.data[self.pos:]]
            have = len(parts[0])
            while have < length:
                if not (hasattr(sock, 'pending') and sock.pending() > 0):
                    if not self.inner_select([sock], [], [], timeout)[0]:
                        raise connection.handler.timeout_exception('socket time-out during read')
                try:
                    chunk = sock.recv(max(self.CHUNK, length - have))
                except ssl.SSLError as exc:
                    if exc.errno in (ssl.SSL_ERROR_WANT_READ, ssl.SSL_ERROR_WANT_WRITE):
                        continue
                    raise
                if not chunk:
                    self.data, self.pos = b'', 0
                    raise ConnectionDropped('socket connection broken')
                parts.append(chunk)
                have += len(chunk)
            data = b''.join(parts)
            self.data, self.pos = data, length
            return data[:length]

    def take_watch_events(self):
        """Messages (header and body) of the complete watch events at the head of the buffer, taken out of it."""
        out = []
        found = self.take_reply(_WATCH_XID)
        while found is not None:
            data, start = found
            out.append(data[start:self.pos])
            found = self.take_reply(_WATCH_XID)
        return out

    def take_reply(self, xid):
        """``(buffer, offset)`` of the complete message at the head of the buffer when its xid is ``xid``, else None.

        The message is taken out of the buffer (it ends at ``self.pos``); its
        header (``REPLY_HEADER``) starts at ``offset`` in ``buffer``, its body
        right after. Watch events carry the xid -1.
        """
        data = self.data
        pos = self.pos
        if len(data) - pos < 4 + REPLY_HEADER_SIZE or self.sock is not self.connection._socket:  # pylint: disable=protected-access
            return None
        (length,) = _MESSAGE_LENGTH.unpack_from(data, pos)
        if len(data) - pos - 4 < length or length < REPLY_HEADER_SIZE or _MESSAGE_LENGTH.unpack_from(data, pos + 4)[0] != xid:
            return None
        self.pos = pos + 4 + length
        return data, pos + 4


# --------------------------------------------------------------------------
# Pipelined single reads (ACLs; every read on servers without multiRead)
# --------------------------------------------------------------------------

class _RequestBatch(object):
    """One entry of kazoo's request queue standing for many requests.

    The wrapped ``_send_request`` recognises it and writes all its requests
    at once; kazoo's ``_read_response`` then matches each reply to its own
    pending entry as usual (xids in order), whose ``async_object`` is the
    lean ``_Slot`` of that request.
    """

    __slots__ = ('entries',)
    type = None

    def __init__(self, entries):
        self.entries = entries  # list of (request, frame_body, slot)

    # kazoo fails a queued entry through its async object (closed client,
    # connection lost before it was sent): fail every request it holds.
    def set_exception(self, exc):
        for _request, _body, slot in self.entries:
            slot.set_exception(exc)

    def set(self, value=None):  # never called: kazoo answers the requests, not the batch
        raise AssertionError('a request batch has no answer of its own')


class _Slot(object):
    """The async object of one pipelined request: stores its answer in the pipeline's result list."""

    __slots__ = ('pipeline', 'index', 'fired')

    def __init__(self, pipeline, index):
        self.pipeline = pipeline
        self.index = index
        self.fired = False

    # kazoo may fail an entry twice (its _call on a closing client does): count each request once.
    def set(self, value=None):
        if not self.fired:
            self.fired = True
            self.pipeline.complete(self.index, value, False)

    def set_exception(self, exc):
        if not self.fired:
            self.fired = True
            self.pipeline.complete(self.index, exc, True)


def _install_batch_sender(client):
    """Wrap the connection's ``_send_request`` so it can send a ``_RequestBatch`` in one write."""
    connection = client._connection  # pylint: disable=protected-access
    if getattr(connection, _BATCH_SENDER_ATTR, False):
        return True
    required = ('_send_request', '_write', '_read_sock', '_xid')
    if not all(hasattr(connection, name) for name in required) or not hasattr(client, '_pending'):
        return False
    original = connection._send_request  # pylint: disable=protected-access

    def send_request(read_timeout, connect_timeout):
        queue = client._queue  # pylint: disable=protected-access
        if queue and queue[0][0].__class__ is _RequestBatch:
            batch = queue.popleft()[0]
            connection._read_sock.recv(1)  # pylint: disable=protected-access
            pending = client._pending  # pylint: disable=protected-access
            xid = connection._xid  # pylint: disable=protected-access
            frames = []
            pack = _LEN_XID.pack
            for request, body, slot in batch.entries:
                xid = (xid % _MAX_XID) + 1
                frames.append(pack(len(body) + 4, xid))
                frames.append(body)
                pending.append((request, slot, xid))
            connection._xid = xid  # pylint: disable=protected-access
            # Pending entries go in before the write: if the write fails, kazoo
            # fails them all with ConnectionLoss like any request in flight.
            connection._write(b''.join(frames), connect_timeout)  # pylint: disable=protected-access
            return None
        return original(read_timeout, connect_timeout)

    connection._send_request = send_request  # pylint: disable=protected-access
    _install_slot_replies(client, connection)
    setattr(connection, _BATCH_SENDER_ATTR, True)
    return True


def _install_slot_replies(client, connection):
    """Answer pipelined requests from the read buffer in bulk, after kazoo's reader answered the first.

    kazoo handles one reply per round of its loop (a ``poll``, the message's
    header namedtuple, debug-log calls, the request's own parser). Once it
    has answered a pipelined request, the replies buffered right behind it
    that answer the next pending pipelined requests (same xids, in order)
    are parsed here and handed to their pipelines in one go. Anything else
    at the head of the buffer (a watch event, a ping, the reply of another
    request) stops the loop and goes back to kazoo. Without the buffered
    reader or kazoo's expected internals nothing is installed.
    """
    original = getattr(connection, '_read_response', None)
    reads = BufferedSocketReads.install(client)
    if original is None or reads is None:
        return
    pending = client._pending  # pylint: disable=protected-access
    unpack_header = REPLY_HEADER.unpack_from

    def read_response(header, buffer, offset):
        result = original(header, buffer, offset)
        answered = {}
        while pending:
            request, slot, xid = pending[0]
            if slot.__class__ is not _Slot:
                break
            found = reads.take_reply(xid)
            if found is None:
                break
            pending.popleft()
            data, start = found
            _xid, zxid, err = unpack_header(data, start)
            if zxid > 0:
                client.last_zxid = zxid
            if err:
                value, failed = _error_instance(err), True
            else:
                try:
                    value, failed = request.deserialize(data, start + REPLY_HEADER_SIZE), False
                except Exception as exc:  # pylint: disable=broad-except
                    value, failed = exc, True
            if not slot.fired:
                slot.fired = True
                answered.setdefault(slot.pipeline, []).append((slot.index, value, failed))
        for pipeline, answers in answered.items():
            pipeline.complete_many(answers)
        return result

    connection._read_response = read_response  # pylint: disable=protected-access


# Errors after which a pipeline stops: the session or connection failed, not one read.
_PIPELINE_FATAL = ()
if HAS_KAZOO:
    _PIPELINE_FATAL = (ConnectionLoss, SessionExpiredError, ConnectionClosedError, KazooAuthFailedError)


def _is_fatal(exc):
    """True for a failure of the connection or session (or of the client itself), False for one read's server error."""
    return isinstance(exc, _PIPELINE_FATAL) or getattr(exc, 'code', None) is None


class _Pipeline(object):
    """Keeps up to ``window`` requests in flight, refilled from kazoo's connection thread."""

    def __init__(self, client, entries, window):
        self.client = client
        self.entries = entries  # list of (request, frame_body)
        self.total = len(entries)
        self.window = window
        self.chunk = max(1, min(window // 4 or 1, 256))
        self.results = [None] * self.total
        self.next_index = 0
        self.outstanding = 0
        self.remaining = self.total
        self.error = None
        self.lock = threading.Lock()
        self.done = threading.Event()

    def run(self, timeout=None):
        if not self.total:
            return self.results
        with self.lock:
            batches = self._take_batches()
        for batch in batches:
            self.client._call(batch, batch)  # pylint: disable=protected-access
        if not self.done.wait(timeout):
            raise ZkMigrationError('pipelined reads did not finish within %ss (%d of %d answered)'
                                   % (timeout, self.total - self.remaining, self.total))
        if self.error is not None:
            raise self.error
        return self.results

    def _take_batches(self):
        """Batches to send now (called with the lock held)."""
        batches = []
        while self.error is None and self.next_index < self.total and self.outstanding + self.chunk <= self.window:
            start = self.next_index
            end = min(self.total, start + self.chunk)
            entries = self.entries
            batch = _RequestBatch([(entries[i][0], entries[i][1], _Slot(self, i)) for i in range(start, end)])
            self.next_index = end
            self.outstanding += end - start
            batches.append(batch)
        return batches

    def complete(self, index, value, failed):
        self.complete_many(((index, value, failed),))

    def complete_many(self, answers):
        """Store ``(index, value, failed)`` answers and send the requests that now fit the window."""
        # Runs in kazoo's connection thread (or the caller's, for a refused _call).
        results = self.results
        with self.lock:
            for index, value, failed in answers:
                results[index] = value
                if failed and self.error is None and _is_fatal(value):
                    self.error = value
            self.outstanding -= len(answers)
            self.remaining -= len(answers)
            if self.error is not None:
                finished = self.outstanding == 0
                batches = []
            else:
                finished = self.remaining == 0
                batches = self._take_batches()
        for batch in batches:
            self.client._call(batch, batch)  # pylint: disable=protected-access
        if finished:
            self.done.set()


def _encode_read(opcode, path):
    """The frame body (type + request) of a getData/getChildren/getACL request."""
    encoded = path.encode('utf-8')
    if opcode == OP_GET_ACL:
        return _LEN_XID.pack(opcode, len(encoded)) + encoded
    return _LEN_XID.pack(opcode, len(encoded)) + encoded + b'\x00'


class _PipelinedGetData(object):
    """A getData request whose answer reads like a multiRead slot (null data as b'')."""

    __slots__ = ('path',)
    type = OP_GET_DATA

    def __init__(self, path):
        self.path = path

    @staticmethod
    def deserialize(buffer, offset):
        data, offset = _read_data(buffer, offset)
        return data, ZnodeStat._make(stat_struct.unpack_from(buffer, offset))


class _PipelinedGetChildren(object):
    __slots__ = ('path',)
    type = OP_GET_CHILDREN

    def __init__(self, path):
        self.path = path

    @staticmethod
    def deserialize(buffer, offset):
        return _read_children(buffer, offset)[0]


# Parsed ACL vectors by their serialized bytes: most znodes of a tree share a
# few ACLs, so a reply's ACL is sliced and looked up instead of parsed into
# new namedtuples. Bounded: a tree with more distinct ACLs parses the rest.
_ACL_VECTORS = {}
_ACL_VECTORS_MAX = 4096


def parse_acl_reply(buffer, offset):
    """A getACL reply body as kazoo's ``GetACL.deserialize`` reads it: ``(acl_list, ZnodeStat)``, ACLs shared via a cache."""
    start = offset
    unpack_int = _INT.unpack_from
    (count,) = unpack_int(buffer, offset)
    if count < 0:
        return GetACL.deserialize(buffer, start)
    offset += 4
    for _entry in range(count):
        (length,) = unpack_int(buffer, offset + 4)           # perms, then the scheme's length
        offset += 8 + max(length, 0)
        (length,) = unpack_int(buffer, offset)               # the id's length
        offset += 4 + max(length, 0)
    key = buffer[start:offset]
    acl = _ACL_VECTORS.get(key)
    if acl is None:
        acl = tuple(GetACL.deserialize(buffer, start)[0])
        if len(_ACL_VECTORS) < _ACL_VECTORS_MAX:
            _ACL_VECTORS[key] = acl
    return list(acl), ZnodeStat._make(stat_struct.unpack_from(buffer, offset))


class _PipelinedGetACL(object):
    __slots__ = ('path',)
    type = OP_GET_ACL

    def __init__(self, path):
        self.path = path

    deserialize = staticmethod(parse_acl_reply)


_PIPELINED_CLASSES = {OP_GET_DATA: _PipelinedGetData, OP_GET_CHILDREN: _PipelinedGetChildren, OP_GET_ACL: _PipelinedGetACL}


def _kazoo_pipeline(client, ops, window):
    """The same reads through kazoo's public async API (when the batch sender cannot be installed)."""
    results = [None] * len(ops)
    calls = {'data': client.get_async, 'children': client.get_children_async, 'acl': client.get_acls_async}
    in_flight = []
    error = None
    for index, (kind, path) in enumerate(ops):
        if len(in_flight) >= window:
            first_index, first = in_flight.pop(0)
            error = error or _settle_slot(results, first_index, first)
        if error is not None:
            break
        in_flight.append((index, calls[kind](path)))
    for index, async_result in in_flight:
        error = error or _settle_slot(results, index, async_result)
    if error is not None:
        raise error
    for index, (kind, _path) in enumerate(ops):
        if kind == 'data' and isinstance(results[index], tuple) and results[index][0] is None:
            results[index] = (b'', results[index][1])
    return results


def _settle_slot(results, index, async_result):
    try:
        results[index] = async_result.get()
    except Exception as exc:  # pylint: disable=broad-except
        if _is_fatal(exc):
            return exc
        results[index] = exc
    return None


def read_pipelined(client, ops, window=DEFAULT_PIPELINE_WINDOW, timeout=None):
    """Plain getData/getChildren/getACL requests for ``ops``, ``window`` of them in flight.

    ``ops`` are ``('data' | 'children' | 'acl', path)`` tuples; slots read as
    in ``multi_read`` (``'acl'``: ``(acl_list, ZnodeStat)``), a failed read
    holds its kazoo exception instance. Works on every server version: the
    fallback for multiRead on ZooKeeper < 3.6, and the fast way to read ACLs
    (no multi carries getACL). Raises the connection or session error when
    the connection is lost midway (the answers read so far are dropped:
    rescan), ``ZkMigrationError`` after ``timeout`` seconds.
    """
    _require_kazoo()
    if window < 1:
        raise ConfigError('window must be at least 1')
    chroot = client.chroot
    entries = []
    for op in ops:
        try:
            kind, path = op
            opcode = _OP_KINDS[kind]
        except (KeyError, TypeError, ValueError):
            raise ConfigError("pipelined reads are ('data' | 'children' | 'acl', path) tuples, got %r" % (op,))
        if chroot:
            path = _prefix_root(chroot, path)
        elif path[:1] != '/':
            _check_path(path)
        entries.append((_PIPELINED_CLASSES[opcode](path), _encode_read(opcode, path)))
    if not _install_batch_sender(client):
        return _kazoo_pipeline(client, list(ops), window)
    return _Pipeline(client, entries, window).run(timeout)


def get_acls_pipelined(client, paths, window=DEFAULT_PIPELINE_WINDOW, timeout=None):
    """ACLs of many znodes: ``{path: (acl_list, ZnodeStat)}``, or the kazoo exception instance of a failed read.

    ``acl_list`` holds kazoo ``ACL`` tuples in server order. See
    ``read_pipelined`` for the window, errors and the connection-loss rule.

    Servers since 3.4.14/3.5.5 mask the hash of every digest entry (``user:x``)
    unless the reader has ADMIN permission on the node or is the super user
    (the CVE-2019-0201 fix): such an ACL cannot be copied verbatim. Check with
    ``acl_is_masked``.
    """
    paths = list(paths)
    slots = read_pipelined(client, [('acl', path) for path in paths], window=window, timeout=timeout)
    return dict(zip(paths, slots))


def acl_is_masked(acl):
    """True when ``acl`` (kazoo ``ACL`` tuples) has a digest entry whose hash the server masked as ``x``.

    A real digest id is ``user:<28-character base64 SHA-1>``, never ``user:x``.
    """
    for entry in acl:
        if entry.id.scheme == 'digest' and entry.id.id.endswith(':x'):
            return True
    return False


# --------------------------------------------------------------------------
# Client tuning
# --------------------------------------------------------------------------

def fast_select(rlist, wlist, xlist, timeout=None):
    """``select.select``, falling back to kazoo's selector for descriptors past FD_SETSIZE.

    kazoo's threading handler builds and closes an epoll selector on every
    call (several per request); ``select.select`` needs no kernel object.
    """
    try:
        return select.select(rlist, wlist, xlist, timeout)
    except ValueError:  # "filedescriptor out of range in select()"
        return selector_select(rlist, wlist, xlist, timeout)


def tune_client(client):
    """Make ``client``'s connection loop cheaper: ``fast_select`` instead of a per-call epoll selector.

    Applies only to kazoo's threading handler (gevent/eventlet handlers
    bring their own select); returns True when applied. Measured in
    tests/bench/bench_protocol.py. Safe to call more than once.
    """
    _require_kazoo()
    handler = client.handler
    if getattr(handler, 'name', None) != 'sequential_threading_handler':
        return False
    handler.select = fast_select
    return True


# --------------------------------------------------------------------------
# Container and TTL nodes
# --------------------------------------------------------------------------

_TTL_HINT = ('TTL nodes need ZooKeeper 3.5.3 or later started with zookeeper.extendedTypesEnabled=true '
             '(a system property, not a zoo.cfg setting)')
_CONTAINER_HINT = 'container nodes need ZooKeeper 3.5.1 or later'


def _check_create_args(path, data, acl, what):
    _check_path(path)
    if not isinstance(data, bytes):
        raise ConfigError('%s data must be bytes, got %s' % (what, type(data).__name__), path=path)
    if acl is not None and not isinstance(acl, (list, tuple)):
        raise ConfigError('%s acl must be a list of kazoo ACLs (pass ttl_ms by keyword), got %r' % (what, acl), path=path)


def _check_ttl(ttl_ms, path):
    if isinstance(ttl_ms, bool) or not isinstance(ttl_ms, int) or not 0 < ttl_ms <= MAX_TTL_MS:
        raise ConfigError('TTL must be an integer number of milliseconds between 1 and %d, got %r' % (MAX_TTL_MS, ttl_ms), path=path)


def _default_acl(client, acl):
    if acl is not None:
        return list(acl)
    return list(client.default_acl or OPEN_ACL_UNSAFE)


def _create_with_makepath(client, request, what, hint, makepath, path):
    try:
        created = _send_or_refuse(client, request, what, hint)
    except KazooNoNodeError:
        if not makepath:
            raise
        parent = path.rsplit('/', 1)[0] or '/'
        client.ensure_path(parent)
        created = _send_or_refuse(client, request, what, hint)
    return client.unchroot(created)


def create_container(client, path, data=b'', acl=None, makepath=False):
    """Create a container node (opcode 19); returns its path.

    The server deletes a container once it has had children and has none
    left (checked every ``znode.container.checkIntervalMs``, 1 min by
    default). ``makepath`` creates missing parents as persistent nodes.
    Raises ``UnsupportedByServerError`` on servers without containers, kazoo
    errors (``NodeExistsError``, ``NoNodeError``...) otherwise.
    """
    _require_kazoo()
    _check_create_args(path, data, acl, 'container')
    request = CreateContainer(_server_path(client, path), data, _default_acl(client, acl))
    return _create_with_makepath(client, request, 'container nodes (createContainer)', _CONTAINER_HINT, makepath, path)


def create_ttl(client, path, data=b'', acl=None, ttl_ms=None, sequential=False, makepath=False):
    """Create a persistent TTL node (opcode 21); returns its path (with the suffix when ``sequential``).

    The server deletes the node once it has had no children and no change
    for ``ttl_ms`` milliseconds. Raises ``UnsupportedByServerError`` when the
    server refuses TTL nodes (ZooKeeper < 3.5.3, or extendedTypesEnabled off:
    both answer UNIMPLEMENTED), ``ConfigError`` for a bad ``ttl_ms``.
    """
    _require_kazoo()
    _check_create_args(path, data, acl, 'TTL node')
    _check_ttl(ttl_ms, path)
    request = CreateTTL(_server_path(client, path), data, _default_acl(client, acl), ttl_ms, sequential=sequential)
    return _create_with_makepath(client, request, 'TTL nodes (createTTL)', _TTL_HINT, makepath, path)


_TRANSACTION_PATCH_LOCK = threading.Lock()


def install_transaction_extensions():
    """Make kazoo's ``Transaction`` parse ``create2``-typed multi results (see ``parse_multi_response``).

    Called by the transaction op helpers; idempotent. Affects every kazoo
    client in the process, identically for every response kazoo could parse.
    """
    _require_kazoo()
    with _TRANSACTION_PATCH_LOCK:
        if getattr(Transaction, '_zkm_extended', False):
            return
        # kazoo's own parser stays reachable (the unit tests compare both).
        Transaction._zkm_kazoo_deserialize = Transaction.__dict__['deserialize']  # pylint: disable=protected-access
        Transaction.deserialize = classmethod(lambda cls, buffer, offset: parse_multi_response(buffer, offset))
        Transaction._zkm_extended = True  # pylint: disable=protected-access


def container_create_op(path, data=b'', acl=None, chroot=None):
    """A createContainer op for ``kazoo.client.TransactionRequest.operations``.

    ``path`` is taken as the server sees it unless ``chroot`` is given (or
    use ``txn_create_container``, which takes the transaction's client's
    chroot). ``acl`` defaults to OPEN_ACL_UNSAFE. The op's result in
    ``commit()`` is the created path.
    """
    _require_kazoo()
    _check_create_args(path, data, acl, 'container')
    install_transaction_extensions()
    if chroot:
        path = _prefix_root(chroot, path)
    return CreateContainer(path, data, list(OPEN_ACL_UNSAFE if acl is None else acl))


def ttl_create_op(path, data=b'', acl=None, ttl_ms=None, sequential=False, chroot=None):
    """A createTTL op for ``kazoo.client.TransactionRequest.operations`` (see ``container_create_op``).

    A server refusing TTL nodes fails the whole multi; the op's slot holds
    kazoo's ``UnimplementedError``.
    """
    _require_kazoo()
    _check_create_args(path, data, acl, 'TTL node')
    _check_ttl(ttl_ms, path)
    install_transaction_extensions()
    if chroot:
        path = _prefix_root(chroot, path)
    return CreateTTL(path, data, list(OPEN_ACL_UNSAFE if acl is None else acl), ttl_ms, sequential=sequential)


def _append_op(txn, op):
    if txn.committed:
        raise ValueError('Transaction already committed')
    txn.operations.append(op)


def txn_create_container(txn, path, data=b'', acl=None):
    """Add a createContainer op to kazoo transaction ``txn`` (its client's chroot and default ACL apply)."""
    client = txn.client
    _append_op(txn, container_create_op(path, data, _default_acl(client, acl), chroot=client.chroot))


def txn_create_ttl(txn, path, data=b'', acl=None, ttl_ms=None, sequential=False):
    """Add a createTTL op to kazoo transaction ``txn`` (its client's chroot and default ACL apply)."""
    client = txn.client
    _append_op(txn, ttl_create_op(path, data, _default_acl(client, acl), ttl_ms, sequential=sequential, chroot=client.chroot))


# --------------------------------------------------------------------------
# Persistent watches
# --------------------------------------------------------------------------

class PersistentWatch(object):
    """A persistent (or persistent-recursive) watch; returned by ``add_watch``.

    Attributes: ``path`` (as the caller gave it), ``recursive``, ``armed``
    (True while the server holds the watch as far as we know), ``rearm_count``
    and ``last_error`` (the error of the last failed re-arm, if any).
    """

    def __init__(self, registry, path, server_path, callback, recursive, on_rearm):
        self._registry = registry
        self.path = path
        self.server_path = server_path
        self.callback = callback
        self.recursive = recursive
        self.on_rearm = on_rearm
        self.mode = WATCH_MODE_PERSISTENT_RECURSIVE if recursive else WATCH_MODE_PERSISTENT
        self.active = True
        self.armed = False
        self.rearm_count = 0
        self.last_error = None

    def _deliver(self, event):
        if self.active:
            self.callback(event)

    def _rearmed(self, event):
        if not self.active:
            return
        if self.on_rearm is not None:
            self.on_rearm(self)
        self.callback(event)

    def remove(self, timeout=10.0):
        """Stop delivering events and remove the server-side watch where that is safe.

        The server keeps one watch per path and connection; it is removed
        only when no other handle uses the path and kazoo holds no one-shot
        watch there (removeWatches would drop that too). Otherwise it stays
        until the next reconnect and its events are ignored.
        """
        self._registry.remove(self, timeout)

    def __repr__(self):
        return 'PersistentWatch(%r, recursive=%r, active=%r, armed=%r)' % (self.path, self.recursive, self.active, self.armed)


class _WatchRegistry(object):
    """The persistent watches of one client: dispatch of their events and re-arming after reconnects."""

    def __init__(self, client):
        self.client = client
        self.lock = threading.Lock()
        self.by_path = {}  # server path -> list of PersistentWatch
        self.recursive_paths = frozenset()
        self.last_state = client.state
        self.generation = 0  # bumped on every disconnect: a re-arm of an old connection is stale

    # -- installation ------------------------------------------------------
    def install(self):
        connection = self.client._connection  # pylint: disable=protected-access
        original = connection._read_watch_event  # pylint: disable=protected-access
        registry = self

        def read_watch_event(buffer, offset):
            if registry.by_path:
                registry.dispatch(buffer, offset)
            return original(buffer, offset)

        connection._read_watch_event = read_watch_event  # pylint: disable=protected-access
        self.client.add_listener(self.on_state)

    # -- events ------------------------------------------------------------
    def match(self, server_path, event_type):
        """Handles interested in an event of ``event_type`` on ``server_path`` (as the Java client decides)."""
        by_path = self.by_path
        matched = []
        for handle in by_path.get(server_path, ()):
            # Recursive watches get no child events, as in the Java client.
            if not (handle.recursive and event_type == _EVENT_NODE_CHILDREN_CHANGED):
                matched.append(handle)
        if event_type == _EVENT_NODE_CHILDREN_CHANGED or not self.recursive_paths:
            return matched
        parent = server_path
        while parent != '/':
            parent = parent.rsplit('/', 1)[0] or '/'
            if parent in self.recursive_paths:
                matched.extend(handle for handle in by_path.get(parent, ()) if handle.recursive)
        return matched

    def dispatch(self, buffer, offset):
        client = self.client
        watch = Watch.deserialize(buffer, offset)[0]
        event_type = EVENT_TYPE_MAP.get(watch.type)
        if event_type is None or client._stopped.is_set():  # pylint: disable=protected-access
            return
        handles = self.match(watch.path, watch.type)
        if not handles:
            return
        event = WatchedEvent(event_type, client._state, client.unchroot(watch.path))  # pylint: disable=protected-access
        for handle in handles:
            client.handler.dispatch_callback(Callback('watch', handle._deliver, (event,)))  # pylint: disable=protected-access

    # -- registration ------------------------------------------------------
    def _rebuild(self):
        self.recursive_paths = frozenset(path for path, handles in self.by_path.items() if any(h.recursive for h in handles))

    def add(self, handle):
        with self.lock:
            existing = self.by_path.get(handle.server_path, [])
            for other in existing:
                if other.recursive != handle.recursive:
                    raise ConfigError('a %s watch on %s exists already on this client; the server keeps one watch mode per path '
                                      'and connection, so mixing persistent and persistent-recursive watches on one path needs two clients'
                                      % ('recursive' if other.recursive else 'non-recursive', handle.path), path=handle.path)
            self.by_path[handle.server_path] = existing + [handle]
            self._rebuild()

    def discard(self, handle):
        with self.lock:
            handle.active = False
            handle.armed = False
            handles = [h for h in self.by_path.get(handle.server_path, []) if h is not handle]
            if handles:
                self.by_path[handle.server_path] = handles
            else:
                self.by_path.pop(handle.server_path, None)
            self._rebuild()
            return not handles

    def remove(self, handle, timeout):
        if not handle.active:
            return
        last_on_path = self.discard(handle)
        client = self.client
        if not last_on_path or not client.connected:
            return
        path = handle.server_path
        if client._data_watchers.get(path) or client._child_watchers.get(path):  # pylint: disable=protected-access
            return
        try:
            call_async(client, RemoveWatches(path)).get(timeout=timeout)
        except NoWatcherError:
            pass
        except Exception as exc:  # pylint: disable=broad-except
            # Connection trouble: the watch is gone with the connection anyway.
            log.debug('removeWatches(%s) failed: %r', path, exc)

    # -- reconnects --------------------------------------------------------
    def on_state(self, state):
        """kazoo connection listener (runs in the connection thread: must not block)."""
        previous, self.last_state = self.last_state, state
        if state != KazooState.CONNECTED:
            with self.lock:
                self.generation += 1
                for handles in self.by_path.values():
                    for handle in handles:
                        handle.armed = False
            return False
        if previous == KazooState.CONNECTED:
            return False
        self.rearm()
        return False

    def rearm(self):
        """Send addWatch again for every path; when all are back, tell each handle (the server dropped them)."""
        with self.lock:
            generation = self.generation
            requests = [(path, list(handles)) for path, handles in self.by_path.items() if handles]
        if not requests:
            return
        state = {'left': len(requests), 'failed': False}
        state_lock = threading.Lock()
        client = self.client

        def make_done(handles):
            def done(async_result):
                error = async_result.exception
                with state_lock:
                    state['left'] -= 1
                    if error is not None:
                        state['failed'] = True
                    last = state['left'] == 0
                for handle in handles:
                    handle.last_error = error
                if error is not None:
                    log.warning('re-arming the persistent watch on %s failed: %r (retried on the next reconnect)', handles[0].path, error)
                if last and not state['failed'] and generation == self.generation:
                    self._announce(requests)
            return done

        for path, handles in requests:
            async_result = client.handler.async_result()
            async_result.rawlink(make_done(handles))
            client._call(AddWatch(path, handles[0].mode), async_result)  # pylint: disable=protected-access

    def _announce(self, requests):
        client = self.client
        for _path, handles in requests:
            for handle in handles:
                if not handle.active:
                    continue
                handle.armed = True
                handle.rearm_count += 1
                event = WatchedEvent(EventType.NONE, KeeperState.CONNECTED, handle.path)
                client.handler.dispatch_callback(Callback('watch', handle._rearmed, (event,)))  # pylint: disable=protected-access


_REGISTRY_LOCK = threading.Lock()


def _registry(client):
    with _REGISTRY_LOCK:
        registry = getattr(client, _WATCHES_ATTR, None)
        if registry is None:
            registry = _WatchRegistry(client)
            registry.install()
            setattr(client, _WATCHES_ATTR, registry)
        return registry


def add_watch(client, path, callback, recursive=True, on_rearm=None, timeout=None):
    """Watch ``path`` persistently (``recursive``: the whole subtree) until ``remove()``; returns a ``PersistentWatch``.

    ``callback(event)`` gets a kazoo ``WatchedEvent`` for every change, on
    kazoo's watch thread (keep it short, as for kazoo watches): CREATED,
    DELETED and CHANGED for the path (and, when recursive, every node below);
    a non-recursive watch also gets CHILD for the path's children list.
    Events carry no data: read the node to learn its state.

    After every reconnect (same session or a new one) the server has
    forgotten the watch and changes in between were not reported: the watch
    is re-sent, and once the server holds it again ``callback`` gets
    ``WatchedEvent(type=EventType.NONE, state=KeeperState.CONNECTED, path)``
    (after ``on_rearm(handle)`` when given): rescan then. Raises
    ``UnsupportedByServerError`` on ZooKeeper < 3.6 (use one-shot kazoo
    watches there), ``ConfigError`` for bad arguments.
    """
    _require_kazoo()
    if not callable(callback):
        raise ConfigError('add_watch needs a callable callback, got %r' % (callback,))
    handle_registry = _registry(client)
    handle = PersistentWatch(handle_registry, path, _server_path(client, path), callback, bool(recursive), on_rearm)
    handle_registry.add(handle)
    try:
        # The handle must be gone before an old server's reconnect, or the
        # re-arm after that reconnect would send the refused request again.
        _send_or_refuse(client, AddWatch(handle.server_path, handle.mode), 'persistent watches (addWatch)',
                        'they need ZooKeeper 3.6 or later', timeout=timeout, on_refusal=lambda: handle_registry.discard(handle))
    except BaseException:
        handle_registry.discard(handle)
        raise
    handle.armed = True
    return handle


class InlineWatchEvents(object):
    """Take persistent-watch events for the task paths straight off kazoo's connection thread.

    ``add_watch`` arms and re-arms the watches and hands every event
    to kazoo's callback thread, one queue hand-off and thread switch per
    event. At thousands of events per second that hand-off is most of the
    client's cost, and replies to our reads wait behind the backlog on the
    same connection. This adapter wraps the connection's watch-event reader
    (outside ``add_watch``'s own wrapper) and, for CREATED / DELETED / CHANGED
    under the task paths, posts the path to the engine's queue and stops
    there. Anything else (other paths, paths with kazoo one-shot watchers, the
    re-arm notices) goes down the usual chain. Without the expected kazoo
    internals it installs nothing and ``add_watch``'s callbacks do the work.

    It also makes the connection read the socket in large chunks
    (``BufferedSocketReads``) and, after each event, takes the watch events
    already buffered behind it in one go: kazoo's loop otherwise costs three
    ``poll`` and two ``recv`` calls per message, which bounded one session to
    ~5-6k events/s on the 2-CPU test machine.
    """

    _EVENT_TYPES = (1, 2, 3)   # NodeCreated, NodeDeleted, NodeDataChanged

    def __init__(self, client, roots, accept, post, counters):
        self.active = False
        connection = getattr(client, '_connection', None)
        inner = getattr(connection, '_read_watch_event', None)
        if inner is None or not HAS_KAZOO:
            return
        chroot = client.chroot or ''
        prefixes = []
        for root in roots:
            server = chroot + root if root != '/' else (chroot or '/')
            prefixes.append((server, server.rstrip('/') + '/'))
        data_watchers = client._data_watchers    # pylint: disable=protected-access
        child_watchers = client._child_watchers  # pylint: disable=protected-access
        unchroot = client.unchroot
        event_types = self._EVENT_TYPES
        unpack_event = WATCH_EVENT.unpack_from
        event_size = WATCH_EVENT.size
        adapter = self

        def one_event(buffer, offset):
            if adapter.active:
                kind, _state, length = unpack_event(buffer, offset)
                if kind in event_types and length > 0:
                    start = offset + event_size
                    path = buffer[start:start + length].decode('utf-8')
                    if path not in data_watchers and path not in child_watchers:
                        for exact, prefix in prefixes:
                            if path == exact or path.startswith(prefix):
                                local = unchroot(path)
                                counters['watch_events'] += 1
                                if accept(local):
                                    post(local)
                                return None
            return inner(buffer, offset)

        reads = BufferedSocketReads.install(client)

        def read_watch_event(buffer, offset):
            one_event(buffer, offset)
            if reads is not None:
                # the watch events buffered right behind this one, without a round of kazoo's loop each
                for message in reads.take_watch_events():
                    one_event(message, REPLY_HEADER_SIZE)
            return None
        connection._read_watch_event = read_watch_event  # pylint: disable=protected-access
        self.active = True

    def stop(self):
        # The wrapper stays (others may have wrapped it since); inactive, it only passes events on.
        self.active = False
