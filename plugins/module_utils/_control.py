# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control store: cluster registry, task specs and status, cutover records, saved ACLs, baselines and daemons.

``ControlStore`` reads and writes the records of ``_records`` under the
control root, compare-and-set, validated on the way in and out. A record
written by a newer collection (higher schema_version) is refused with
SchemaError rather than misread. Fencing is in ``_fencing``, elections in
``_election``, credentials in ``_credentials``.

This is a private module of the zookeeper.migration collection; it may change
without notice.

Layout under the control root (default ``/zookeeper-migration``) on the
control ensemble::

    <root>                                  marker record (schema_version, kind)
    <root>/clusters/<name>                  cluster registration (no secrets)
    <root>/tasks                            its data version serialises task writes
    <root>/tasks/<name>                     task spec
    <root>/tasks/<name>/status              written by the task's leader
    <root>/tasks/<name>/election            kazoo lock contenders (one leader per task)
    <root>/tasks/<name>/baseline            manifest; children hold the chunks
    <root>/tasks/<name>/cutover             cutover record; children acl-NNNNNNNNNN
                                            hold the saved source ACLs in chunks
    <root>/daemons/<id>                     ephemeral: live daemons
    <root>/fence/<task>                     on every data cluster: the fence epoch

Every record is JSON with ``schema_version``; it is validated when written and
when read. A record written by a newer collection (higher schema_version) is
refused with SchemaError rather than misread.
"""

import binascii
import copy
import hashlib
import logging
import os
import random
import socket
import threading
import time
import traceback
import zlib
from collections import namedtuple

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    ConfigError,
    FencedError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    SchemaError,
    TooLargeError,
    VersionConflictError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._records import (
    BASELINE,
    check_name,
    check_task_placement,
    CLUSTERS,
    CUTOVER,
    DAEMONS,
    decode_record,
    DEFAULT_ROOT,
    ELECTION,
    encode_record,
    FENCE,
    join_path,
    normalize_blob_manifest,
    normalize_cluster,
    normalize_cutover,
    normalize_daemon_info,
    normalize_path,
    normalize_root,
    normalize_root_marker,
    normalize_saved_acl_chunk,
    normalize_status,
    normalize_task_spec,
    ROOT_KIND,
    SAVED_ACL_PREFIX,
    saved_acl_prefix,
    SCHEMA_VERSION,
    STATUS,
    TASKS,
    validated_record,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._control_acl import (
    acl_is_open,
    acl_to_list,
    AclCreator,
    multi_failure,
    OPEN_ROOT_WARNING,
    require_kazoo,
    translate_kazoo_error,
    world_access,
    zk_call,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._election import contenders, current_leader, election_path, TaskElection

try:
    from kazoo import exceptions as kazoo_exceptions
    HAS_KAZOO = True
    KAZOO_IMPORT_ERROR = None
except ImportError:
    HAS_KAZOO = False
    KAZOO_IMPORT_ERROR = traceback.format_exc()


LOG = logging.getLogger('zookeeper_migration.control')

#: Largest record or chunk written into one znode. Half of ZooKeeper's default
#: jute.maxbuffer (0xfffff): a request near the limit is refused (the server
#: drops the connection), and managed services keep the default.
DEFAULT_MAX_NODE_BYTES = 512 * 1024
#: Compare-and-set retries before giving up (each retry re-reads the record).
DEFAULT_CAS_RETRIES = 64

PutResult = namedtuple('PutResult', ['changed', 'before', 'after'])
PutResult.__doc__ = """Outcome of a put, update or delete: ``changed`` and the record ``before``/``after`` (None where absent)."""


class ControlStore(object):
    """Records of the control plane under ``root`` on a connected kazoo client.

    ``identity``/``acl``/``world_read`` choose the ACL of every znode the
    store creates (see ``control_acl``). The store fails closed: an
    unauthenticated session, a refused ``auth`` ACL and control znodes that
    grant world:anyone more than ``world_read`` allows (``check_acls``) are
    errors unless ``allow_open_acl``. Reads and writes validate records;
    updates are compare-and-set on znode versions and retried on races, so two
    writers never lose each other's change. Write methods take ``dry_run`` and
    return a ``PutResult`` (changed, before, after) for idempotent modules.
    """

    def __init__(self, client, root=DEFAULT_ROOT, identity=None, acl=None, world_read=False, allow_open_acl=False,
                 max_node_bytes=DEFAULT_MAX_NODE_BYTES, cas_retries=DEFAULT_CAS_RETRIES):
        require_kazoo()
        self.client = client
        self.root = normalize_root(root)
        self.max_node_bytes = int(max_node_bytes)
        self.cas_retries = int(cas_retries)
        self.world_read = bool(world_read)
        self.allow_open_acl = bool(allow_open_acl)
        self._creator = AclCreator(client, identity=identity, acl=acl, world_readable=self.world_read,
                                   allow_open_acl=self.allow_open_acl)
        self._layout_checked = False
        self._layout_lock = threading.Lock()

    def __repr__(self):
        return 'ControlStore(root=%r)' % self.root

    # -- paths ---------------------------------------------------------------
    def cluster_path(self, name):
        """Znode of a cluster registration."""
        return join_path(self.root, CLUSTERS, check_name(name, 'cluster name'))

    def task_path(self, name):
        """Znode of a task spec."""
        return join_path(self.root, TASKS, check_name(name, 'task name'))

    def status_path(self, task):
        """Znode of a task's status."""
        return join_path(self.task_path(task), STATUS)

    def election_path(self, task):
        """Znode under which a task's election contenders live."""
        return election_path(self.root, task)

    def baseline_path(self, task):
        """Znode of a task's baseline manifest (its children hold the chunks)."""
        return join_path(self.task_path(task), BASELINE)

    def cutover_path(self, task):
        """Znode of a task's cutover record (its children hold saved source ACLs)."""
        return join_path(self.task_path(task), CUTOVER)

    def daemon_path(self, daemon_id):
        """Ephemeral znode of a live daemon."""
        return join_path(self.root, DAEMONS, check_name(daemon_id, 'daemon id'))

    @property
    def acl(self):
        """The ACL the store puts on the znodes it creates (kazoo ACL list)."""
        return list(self._creator.acl)

    @property
    def is_open(self):
        """True when the znodes the store creates can be changed by anyone."""
        return self._creator.open

    # -- low level -----------------------------------------------------------
    def _encode(self, record, path):
        data = encode_record(record)
        if len(data) > self.max_node_bytes:
            raise TooLargeError('record for %s is %d bytes, over the %d-byte limit per znode' % (path, len(data), self.max_node_bytes),
                                path=path)
        return data

    def _read(self, path, normalizer, watch=None):
        """(record, stat) or (None, None) when the znode does not exist."""
        with zk_call(path, 'reading'):
            try:
                data, stat = self.client.get(path, watch=watch)
            except kazoo_exceptions.NoNodeError:
                return None, None
        return decode_record(data, path, normalizer), stat

    def _children(self, path):
        with zk_call(path, 'listing'):
            try:
                return sorted(self.client.get_children(path))
            except kazoo_exceptions.NoNodeError:
                return []

    def _commit(self, txn, path, action):
        """Commit a transaction; return None on success or the failing (index, kazoo exception)."""
        with zk_call(path, action):
            results = txn.commit()
        return multi_failure(results)

    def _backoff(self, attempt):
        time.sleep(min(0.2, 0.002 * (2 ** min(attempt, 7))) * random.random())

    def session_id(self):
        """This store's ZooKeeper session id as ``0x...`` (as ``cons`` shows it), or None before a session exists."""
        client_id = getattr(self.client, 'client_id', None)
        return '0x%x' % client_id[0] if client_id and client_id[0] else None

    # -- layout --------------------------------------------------------------
    def ensure_root(self):
        """Create the control layout if missing and report how it is protected.

        Returns a dict: ``root``, ``changed`` (something was created),
        ``open`` (the root can be changed by anyone), ``acl`` (the root's
        actual ACL), ``warnings`` (operator-readable; set when open).
        Raises SchemaError when the root exists but is not a control root of
        this schema (or a newer one), AuthFailedError when the client may not
        create what is missing.
        """
        changed = False
        marker = encode_record({'schema_version': SCHEMA_VERSION, 'kind': ROOT_KIND, 'created_at': time.time()})
        with zk_call(self.root, 'creating the control root'):
            try:
                data, root_stat = self.client.get(self.root)
            except kazoo_exceptions.NoNodeError:
                data = None
                self._creator.ensure_parents(self.root)
                try:
                    self._creator.create(self.root, marker)
                    changed = True
                except kazoo_exceptions.NodeExistsError:
                    data, root_stat = self.client.get(self.root)
            if data is not None:
                if data == b'':
                    # a root made by hand (e.g. to give it an ACL first): adopt it
                    self.client.set(self.root, marker, version=root_stat.version)
                    changed = True
                else:
                    decode_record(data, self.root, normalize_root_marker)
            # create only what is missing: a complete layout needs no write permission
            present = set(self.client.get_children(self.root))
            for child in (CLUSTERS, TASKS, DAEMONS, FENCE):
                if child in present:
                    continue
                try:
                    self._creator.create(join_path(self.root, child))
                    changed = True
                except kazoo_exceptions.NodeExistsError:
                    pass
            actual_acl, _acl_stat = self.client.get_acls(self.root)
        warnings = self.check_acls()
        self._layout_checked = True
        is_open = acl_is_open(actual_acl)
        if is_open:
            warnings.insert(0, OPEN_ROOT_WARNING % self.root)
        for warning in warnings:
            LOG.warning(warning)
        return {'root': self.root, 'changed': changed, 'open': is_open, 'acl': acl_to_list(actual_acl), 'warnings': warnings}

    def control_paths(self):
        """The control znodes whose ACLs ``check_acls`` looks at: the root, its children, theirs, and each task's children."""
        paths = []

        def children(path):
            try:
                return sorted(self.client.get_children(path))
            except (kazoo_exceptions.NoNodeError, kazoo_exceptions.NoAuthError):
                return []

        with zk_call(self.root, 'listing the control store'):
            if self.client.exists(self.root) is None:
                return paths
            paths.append(self.root)
            for child in children(self.root):
                child_path = join_path(self.root, child)
                paths.append(child_path)
                for grandchild in children(child_path):
                    node = join_path(child_path, grandchild)
                    paths.append(node)
                    if child == TASKS:
                        paths.extend(join_path(node, name) for name in children(node))
        return paths

    def check_acls(self):
        """Refuse a control store whose znodes grant world:anyone more than allowed; returns warnings.

        Allowed: nothing, or READ with ``world_read``. Looks at the root, the
        layout (``clusters``, ``tasks``, ``daemons``, ``fence``, ...), every
        registration, task, daemon and fence under them and each task's
        children (status, election, baseline, cutover). Anything wider
        raises ``ConfigError`` listing the znodes and what world may do
        there, unless ``allow_open_acl`` (then a warning). Znodes this
        identity may not read the ACL of are left alone.
        """
        too_open = []
        with zk_call(self.root, 'checking the control store ACLs'):
            for path in self.control_paths():
                try:
                    acl, _stat = self.client.get_acls(path)
                except (kazoo_exceptions.NoNodeError, kazoo_exceptions.NoAuthError):
                    continue
                extra = world_access(acl, self.world_read)
                if extra:
                    too_open.append((path, extra))
        if not too_open:
            return []
        listed = ', '.join('%s (world:anyone %s)' % item for item in too_open[:20])
        if len(too_open) > 20:
            listed += ' and %d more' % (len(too_open) - 20)
        allowed = 'READ (control.world_read)' if self.world_read else 'nothing (control.world_read is off)'
        if not self.allow_open_acl:
            raise ConfigError('the control store under %s is open: %d control znode(s) grant world:anyone more than %s: %s. '
                              'Anyone who reaches the control ensemble could read or change them (a znode made by someone else '
                              'before the migration is suspect). Remove them or give them the migration identity\'s ACL, '
                              'set control.world_read: true if world READ is wanted, or control.allow_open_acl: true to '
                              'accept an open control store' % (self.root, len(too_open), allowed, listed), path=too_open[0][0])
        return ['the control store under %s is open (control.allow_open_acl is set): %s' % (self.root, listed)]

    def _ensure_layout(self):
        if self._layout_checked:
            return
        with self._layout_lock:
            if not self._layout_checked:
                self.ensure_root()

    # -- generic compare-and-set -------------------------------------------
    def _cas(self, path, normalizer, mutate, create_if_missing=False, dry_run=False, guard=None):
        """Read-modify-write of one record with version checks, retried on races.

        ``mutate(record_or_None)`` returns the new record (or None to leave
        the record as it is; mutating its argument in place also works).
        ``guard(current)`` may raise before anything is written.
        """
        for attempt in range(self.cas_retries):
            current, stat = self._read(path, normalizer)
            if current is None and not create_if_missing:
                raise NoNodeError('%s does not exist' % path, path=path)
            proposal = copy.deepcopy(current)
            returned = mutate(proposal)
            proposal = returned if returned is not None else proposal
            if proposal is None:
                return PutResult(False, current, current)
            new = validated_record(proposal, path, normalizer)
            if guard is not None:
                guard(current, new)
            if new == current:
                return PutResult(False, current, current)
            if dry_run:
                return PutResult(True, current, new)
            data = self._encode(new, path)
            with zk_call(path, 'writing'):
                try:
                    if stat is None:
                        self._creator.create(path, data)
                    else:
                        self.client.set(path, data, version=stat.version)
                    return PutResult(True, current, new)
                except (kazoo_exceptions.BadVersionError, kazoo_exceptions.NodeExistsError):
                    pass
                except kazoo_exceptions.NoNodeError:
                    if stat is None:  # the parent is missing
                        raise
            self._backoff(attempt)
        raise VersionConflictError('gave up updating %s after %d attempts: it keeps changing under us' % (path, self.cas_retries),
                                   path=path)

    # -- clusters ------------------------------------------------------------
    def get_cluster(self, name):
        """The cluster registration ``name`` or None."""
        return self._read(self.cluster_path(name), normalize_cluster)[0]

    def list_clusters(self):
        """All cluster registrations: {name: record}."""
        out = {}
        for name in self._children(join_path(self.root, CLUSTERS)):
            record = self._read(join_path(self.root, CLUSTERS, name), normalize_cluster)[0]
            if record is not None:
                if record['name'] != name:
                    raise SchemaError('control record %s names cluster %r' % (self.cluster_path(name), record['name']))
                out[name] = record
        return out

    def put_cluster(self, record, dry_run=False):
        """Create or update a cluster registration; PutResult tells whether it changed."""
        new = normalize_cluster(record)
        if not dry_run:  # check mode must not even create the control root
            self._ensure_layout()
        return self._cas(self.cluster_path(new['name']), normalize_cluster, lambda _current: copy.deepcopy(new),
                         create_if_missing=True, dry_run=dry_run)

    def delete_cluster(self, name, force=False, dry_run=False):
        """Delete a cluster registration. Refused while a task names it, unless ``force``."""
        path = self.cluster_path(name)
        tasks_dir = join_path(self.root, TASKS)
        for attempt in range(self.cas_retries):
            current, stat = self._read(path, normalize_cluster)
            if current is None:
                return PutResult(False, None, None)
            with zk_call(tasks_dir, 'reading'):
                _data, tasks_stat = self.client.get(tasks_dir)
            users = sorted(task for task, spec in self.list_tasks().items() if name in (spec['source'], spec['destination']))
            if users and not force:
                raise ConfigError('cluster %r is used by task%s %s: delete those tasks first (or force)'
                                  % (name, 's' if len(users) > 1 else '', ', '.join(users)))
            if dry_run:
                return PutResult(True, current, None)
            txn = self.client.transaction()
            txn.check(tasks_dir, tasks_stat.version)  # no task was written meanwhile
            txn.delete(path, version=stat.version)
            failure = self._commit(txn, path, 'deleting the cluster')
            if failure is None:
                return PutResult(True, current, None)
            if not isinstance(failure[1], (kazoo_exceptions.BadVersionError, kazoo_exceptions.NoNodeError)):
                raise translate_kazoo_error(failure[1], path, 'deleting the cluster')
            self._backoff(attempt)
        raise VersionConflictError('gave up deleting %s: it keeps changing' % path, path=path)

    # -- tasks ---------------------------------------------------------------
    def _normalize_task(self, record, error=ConfigError):
        return normalize_task_spec(record, root=self.root, error=error)

    def decode_task(self, name, data):
        """Validate task ``name``'s raw znode data (e.g. read by a watch); SchemaError if malformed."""
        return decode_record(data, self.task_path(name), self._normalize_task)

    def get_task(self, name):
        """The task spec ``name`` or None."""
        return self._read(self.task_path(name), self._normalize_task)[0]

    def list_tasks(self):
        """All task specs: {name: spec}."""
        out = {}
        for name in self._children(join_path(self.root, TASKS)):
            spec = self._read(join_path(self.root, TASKS, name), self._normalize_task)[0]
            if spec is not None:
                if spec['name'] != name:
                    raise SchemaError('control record %s names task %r' % (self.task_path(name), spec['name']))
                out[name] = spec
        return out

    def put_task(self, spec, dry_run=False):
        """Create or update a task spec (validated, placement-checked); PutResult tells whether it changed."""
        new = normalize_task_spec(spec, root=self.root)
        return self._write_task(new['name'], lambda _current: copy.deepcopy(new), create=True, dry_run=dry_run)

    def update_task(self, name, mutate_fn, dry_run=False):
        """Compare-and-set update of task ``name``.

        ``mutate_fn(spec)`` gets a copy of the current spec and returns the new
        one (or changes it in place and returns None). It may be called more
        than once: on a race the spec is re-read and ``mutate_fn`` re-applied,
        so concurrent writers never lose each other's change.
        """
        return self._write_task(check_name(name, 'task name'), mutate_fn, create=False, dry_run=dry_run)

    def _write_task(self, name, mutate_fn, create, dry_run):
        """Every task write goes through one multi that also checks and bumps
        the data version of ``<root>/tasks`` and checks the versions of the
        source and destination registrations: the placement checks (overlaps)
        then hold against concurrent writers, which retry.

        A dry run only reads: it does not even create the control root, and
        a missing root or ``<root>/tasks`` reads as an empty registry."""
        if not dry_run:  # check mode must not even create the control root
            self._ensure_layout()
        path = self.task_path(name)
        tasks_dir = join_path(self.root, TASKS)
        for attempt in range(self.cas_retries):
            with zk_call(tasks_dir, 'reading'):
                try:
                    _data, tasks_stat = self.client.get(tasks_dir)
                except kazoo_exceptions.NoNodeError:
                    if not dry_run:
                        raise
                    tasks_stat = None
            current, stat = self._read(path, self._normalize_task)
            if current is None and not create:
                raise NoNodeError('task %r does not exist' % name, path=path)
            proposal = copy.deepcopy(current)
            returned = mutate_fn(proposal)
            proposal = returned if returned is not None else proposal
            new = self._normalize_task(proposal)
            if new['name'] != name:
                raise ConfigError('task %r: a task cannot be renamed (got name %r)' % (name, new['name']))
            if new == current:
                return PutResult(False, current, current)
            cluster_stats = {}
            clusters = {}
            for cluster_name in self._children(join_path(self.root, CLUSTERS)):
                record, cstat = self._read(join_path(self.root, CLUSTERS, cluster_name), normalize_cluster)
                if record is not None:
                    clusters[cluster_name] = record
                    cluster_stats[cluster_name] = cstat
            others = self.list_tasks()
            others.pop(name, None)
            check_task_placement(new, clusters, others)
            if dry_run:
                return PutResult(True, current, new)
            data = self._encode(new, path)
            txn = self.client.transaction()
            txn.set_data(tasks_dir, b'', version=tasks_stat.version)
            for cluster_name in sorted(set((new['source'], new['destination']))):
                txn.check(join_path(self.root, CLUSTERS, cluster_name), cluster_stats[cluster_name].version)
            if stat is None:
                self._creator.transaction_create(txn, path, data)
                self._creator.transaction_create(txn, join_path(path, ELECTION))
            else:
                txn.set_data(path, data, version=stat.version)
            failure = self._commit(txn, path, 'writing the task')
            if failure is None:
                return PutResult(True, current, new)
            exc = failure[1]
            if isinstance(exc, kazoo_exceptions.InvalidACLError) and self._creator.fall_back_open(path):
                continue
            if not isinstance(exc, (kazoo_exceptions.BadVersionError, kazoo_exceptions.NodeExistsError, kazoo_exceptions.NoNodeError)):
                raise translate_kazoo_error(exc, path, 'writing the task')
            self._backoff(attempt)
        raise VersionConflictError('gave up writing task %r after %d attempts: the control store keeps changing' % (name, self.cas_retries),
                                   path=path)

    def delete_task(self, name, force=False, dry_run=False):
        """Delete a task with its status, election, baseline and cutover data.

        Refused when the task has a cutover record (the record and the saved
        source ACLs are what a rollback needs) unless ``force``.
        """
        path = self.task_path(name)
        current = self.get_task(name)
        if current is None:
            return PutResult(False, None, None)
        cutover = self.get_cutover(name)
        if cutover is not None and not force:
            raise ConfigError('task %r has a cutover record (state %s) and saved source ACLs; they are kept until removed '
                              'explicitly: delete the task with force to remove them too' % (name, cutover['state']))
        if dry_run:
            return PutResult(True, current, None)
        self._delete_tree(path, bump=join_path(self.root, TASKS))
        return PutResult(True, current, None)

    def _delete_tree(self, path, bump=None):
        """Delete ``path`` and everything below it, children first; retried
        while others add children (election contenders, status)."""
        for attempt in range(self.cas_retries):
            with zk_call(path, 'deleting'):
                try:
                    self._delete_children(path)
                    if bump is not None:
                        _data, bump_stat = self.client.get(bump)
                        txn = self.client.transaction()
                        txn.set_data(bump, b'', version=bump_stat.version)
                        txn.delete(path)
                        failure = multi_failure(txn.commit())
                        if failure is None:
                            return
                        if isinstance(failure[1], kazoo_exceptions.NoNodeError) and failure[0] == 1:
                            return
                        if not isinstance(failure[1], (kazoo_exceptions.BadVersionError, kazoo_exceptions.NotEmptyError)):
                            raise translate_kazoo_error(failure[1], path, 'deleting')
                    else:
                        self.client.delete(path)
                        return
                except kazoo_exceptions.NoNodeError:
                    return
                except kazoo_exceptions.NotEmptyError:
                    pass
            self._backoff(attempt)
        raise NotEmptyError('could not delete %s: children keep appearing' % path, path=path)

    def _delete_children(self, path):
        for child in self.client.get_children(path):
            child_path = join_path(path, child)
            try:
                self._delete_children(child_path)
                self.client.delete(child_path)
            except kazoo_exceptions.NoNodeError:
                pass

    # -- status --------------------------------------------------------------
    def get_status(self, task):
        """The task's status record or None (no leader has written one yet)."""
        return self._read(self.status_path(task), normalize_status)[0]

    def put_status(self, task, status, epoch=None):
        """Write the task status (the leader, every few seconds).

        With ``epoch``, a status already written by a leader of a higher
        epoch is not overwritten: FencedError instead (a stale leader).
        """
        new = normalize_status(status)
        if epoch is not None:
            new['epoch'] = epoch
        return self.update_status(task, lambda _current: copy.deepcopy(new), epoch=epoch)

    def update_status(self, task, mutate_fn, epoch=None):
        """Compare-and-set update of the status (``mutate_fn(status_or_None)`` returns the new one)."""
        path = self.status_path(task)

        def guard(current, _new):
            if epoch is not None and current is not None and current.get('epoch') is not None and current['epoch'] > epoch:
                raise FencedError('task %r status belongs to a newer leader (epoch %d > %d): this daemon is no longer the leader'
                                  % (task, current['epoch'], epoch), path=path)
        try:
            return self._cas(path, normalize_status, mutate_fn, create_if_missing=True, guard=guard)
        except NoNodeError:
            raise NoNodeError('task %r does not exist: cannot write its status' % task, path=self.task_path(task))

    # -- cutover -------------------------------------------------------------
    def get_cutover(self, task):
        """The task's cutover record or None."""
        return self._read(self.cutover_path(task), normalize_cutover)[0]

    def put_cutover(self, task, record, dry_run=False):
        """Create or replace the cutover record of ``task``."""
        new = dict(record)
        new.setdefault('task', task)
        new = normalize_cutover(new)
        if new['task'] != task:
            raise ConfigError('cutover record names task %r, not %r' % (new['task'], task))
        return self.update_cutover(task, lambda _current: copy.deepcopy(new), dry_run=dry_run)

    def update_cutover(self, task, mutate_fn, dry_run=False):
        """Compare-and-set update of the cutover record (``mutate_fn(record_or_None)``)."""
        if self.get_task(task) is None:
            raise NoNodeError('task %r does not exist' % task, path=self.task_path(task))
        return self._cas(self.cutover_path(task), normalize_cutover, mutate_fn, create_if_missing=True, dry_run=dry_run)

    def delete_cutover(self, task):
        """Remove the cutover record and the saved ACLs (explicit cleanup only)."""
        current = self.get_cutover(task)
        if current is None:
            return PutResult(False, None, None)
        self._delete_tree(self.cutover_path(task))
        return PutResult(True, current, None)

    def save_source_acls(self, task, entries, side='source'):
        """Append saved ACLs of ``side`` (``source`` or ``destination``) to the cutover record of ``task`` (before a freeze batch).

        ``entries`` is an iterable of ``(path, acl)``, ``acl`` being kazoo ACLs or
        ``(perms, scheme, id)`` tuples. Entries are packed into chunk znodes
        under the cutover record, each under ``max_node_bytes``, so thousands of
        paths fit. Chunks are only appended: when a freeze is retried, a path
        saved twice keeps its *first* (original) ACL in ``load_saved_acls``.
        Returns the number of chunks written.
        """
        cutover = self.cutover_path(task)
        if self.get_cutover(task) is None:
            raise NoNodeError('task %r has no cutover record: write it before saving source ACLs' % task, path=cutover)
        normalized = []
        for path, acl in entries:
            path = normalize_path(path, 'saved ACL path')
            normalized.append([path, [[e['perms'], e['scheme'], e['id']] for e in acl_to_list(acl)]])
        chunks = []
        current, size = [], 0
        overhead = len(encode_record({'schema_version': SCHEMA_VERSION, 'entries': [], 'saved_at': time.time()}))
        for entry in normalized:
            entry_size = len(encode_record(entry)) + 1
            if overhead + entry_size > self.max_node_bytes:
                raise TooLargeError('the ACL of %s alone is larger than a chunk (%d bytes)' % (entry[0], self.max_node_bytes), path=entry[0])
            if current and overhead + size + entry_size > self.max_node_bytes:
                chunks.append(current)
                current, size = [], 0
            current.append(entry)
            size += entry_size
        if current:
            chunks.append(current)
        for chunk in chunks:
            data = self._encode({'schema_version': SCHEMA_VERSION, 'entries': chunk, 'saved_at': time.time()}, cutover)
            with zk_call(cutover, 'saving source ACLs'):
                self._creator.create(join_path(cutover, saved_acl_prefix(side)), data, sequence=True)
        return len(chunks)

    def load_saved_acls(self, task, side='source'):
        """{path: ((perms, scheme, id), ...)} saved for ``task`` on ``side``, first-saved entry winning."""
        cutover = self.cutover_path(task)
        prefix = saved_acl_prefix(side)
        out = {}
        for child in self._children(cutover):
            if not child.startswith(prefix):
                continue
            record = self._read(join_path(cutover, child), normalize_saved_acl_chunk)[0]
            if record is None:
                continue
            for path, acl in record['entries']:
                if path not in out:
                    out[path] = tuple(tuple(entry) for entry in acl)
        return out

    def clear_saved_acls(self, task, side='source'):
        """Delete the saved ACL chunks of ``side`` (after the ACLs were restored); returns how many."""
        cutover = self.cutover_path(task)
        prefix = saved_acl_prefix(side)
        removed = 0
        for child in self._children(cutover):
            if child.startswith(prefix):
                with zk_call(cutover, 'clearing saved ACLs'):
                    try:
                        self.client.delete(join_path(cutover, child))
                        removed += 1
                    except kazoo_exceptions.NoNodeError:
                        pass
        return removed

    # -- baseline (chunked blob) ----------------------------------------------
    def put_baseline(self, task, data, epoch=None, compress=True):
        """Checkpoint the task's sync baseline (opaque bytes), chunked under the znode limit.

        A new generation of chunks is written first, then the manifest is
        switched to it with a version check, then the old chunks go: a reader
        always sees one whole generation. With ``epoch``, a baseline written by
        a leader of a higher epoch is not overwritten (FencedError).
        Returns the new generation number.
        """
        path = self.baseline_path(task)
        if not isinstance(data, bytes):
            raise ConfigError('baseline data must be bytes')
        payload = zlib.compress(data, 6) if compress else data
        for attempt in range(self.cas_retries):
            manifest, stat = self._read(path, normalize_blob_manifest)
            if manifest is None:
                empty = {'schema_version': SCHEMA_VERSION, 'generation': 0, 'chunks': 0, 'prefix': None, 'size': 0,
                         'sha256': hashlib.sha256(b'').hexdigest(), 'encoding': 'raw', 'epoch': None, 'written_at': None}
                with zk_call(path, 'creating the baseline'):
                    try:
                        self._creator.create(path, encode_record(empty))
                    except kazoo_exceptions.NodeExistsError:
                        pass
                    except kazoo_exceptions.NoNodeError:
                        raise NoNodeError('task %r does not exist: cannot write its baseline' % task, path=self.task_path(task))
                continue
            if epoch is not None and manifest['epoch'] is not None and manifest['epoch'] > epoch:
                raise FencedError('task %r baseline belongs to a newer leader (epoch %d > %d)' % (task, manifest['epoch'], epoch), path=path)
            generation = manifest['generation'] + 1
            # a token per writer: two writers racing for one generation never share chunk names
            prefix = 'g%010d-%s-' % (generation, binascii.hexlify(os.urandom(4)).decode('ascii'))
            names = []
            with zk_call(path, 'writing the baseline'):
                for index in range(0, max(1, len(payload)), self.max_node_bytes):
                    name = '%s%06d' % (prefix, index // self.max_node_bytes)
                    chunk = payload[index:index + self.max_node_bytes]
                    try:
                        self._creator.create(join_path(path, name), chunk)
                    except kazoo_exceptions.NodeExistsError:  # left by an interrupted attempt
                        self.client.set(join_path(path, name), chunk)
                    names.append(name)
                new = {'schema_version': SCHEMA_VERSION, 'generation': generation, 'chunks': len(names), 'prefix': prefix, 'size': len(data),
                       'sha256': hashlib.sha256(data).hexdigest(), 'encoding': 'zlib' if compress else 'raw',
                       'epoch': epoch if epoch is not None else manifest['epoch'], 'written_at': time.time()}
                try:
                    self.client.set(path, encode_record(new), version=stat.version)
                except kazoo_exceptions.BadVersionError:
                    self._delete_chunks(path, keep_prefix=None, only_prefix=prefix)
                    self._backoff(attempt)
                    continue
                self._delete_chunks(path, keep_prefix=prefix)
            return generation
        raise VersionConflictError('gave up writing the baseline of %r: it keeps changing' % task, path=path)

    def _delete_chunks(self, path, keep_prefix=None, only_prefix=None):
        for child in self.client.get_children(path):
            if keep_prefix is not None and child.startswith(keep_prefix):
                continue
            if only_prefix is not None and not child.startswith(only_prefix):
                continue
            try:
                self.client.delete(join_path(path, child))
            except kazoo_exceptions.NoNodeError:
                pass

    def get_baseline(self, task):
        """The task's last checkpointed baseline (bytes) or None."""
        path = self.baseline_path(task)
        for _attempt in range(self.cas_retries):
            manifest, _stat = self._read(path, normalize_blob_manifest)
            if manifest is None or manifest['generation'] == 0:
                return None
            prefix = manifest['prefix']
            if not prefix:
                raise SchemaError('baseline manifest of task %r names no chunk prefix' % task, path=path)
            parts = []
            try:
                with zk_call(path, 'reading the baseline'):
                    for index in range(manifest['chunks']):
                        parts.append(self.client.get(join_path(path, '%s%06d' % (prefix, index)))[0] or b'')
            except NoNodeError:
                continue  # replaced by a newer generation while we read: read again
            payload = b''.join(parts)
            try:
                data = zlib.decompress(payload) if manifest['encoding'] == 'zlib' else payload
            except zlib.error as exc:
                raise SchemaError('baseline of task %r is corrupt (%s)' % (task, exc), path=path)
            if len(data) != manifest['size'] or hashlib.sha256(data).hexdigest() != manifest['sha256']:
                raise SchemaError('baseline of task %r is corrupt: size or sha256 does not match its manifest' % task, path=path)
            return data
        raise VersionConflictError('gave up reading the baseline of %r: it keeps changing' % task, path=path)

    # -- daemons and elections -------------------------------------------------
    def register_daemon(self, daemon_id, info, replace=False):
        """Register this process as a live daemon (ephemeral znode); see ``register_daemon``."""
        self._ensure_layout()
        return register_daemon(self.client, self.root, daemon_id, info, replace=replace, creator=self._creator)

    def unregister_daemon(self, daemon_id):
        """Remove this daemon's registration (on clean shutdown)."""
        return unregister_daemon(self.client, self.root, daemon_id)

    def list_daemons(self):
        """{daemon_id: record} of the daemons alive now."""
        return list_daemons(self.client, self.root)

    def election(self, task, daemon_id):
        """A ``TaskElection`` for ``task`` with the store's ACL."""
        return TaskElection(self.client, self.root, task, daemon_id, acl=self.acl, allow_open_acl=self.allow_open_acl)

    def current_leader(self, task):
        """The daemon id leading ``task`` now, or None."""
        return current_leader(self.client, self.root, task)

    def contenders(self, task):
        """The daemon ids in ``task``'s election, leader first."""
        return contenders(self.client, self.root, task)

    def exists(self, path=None):
        """True when ``path`` (default: the control root) exists in the control store."""
        path = path or self.root
        with zk_call(path, 'reading'):
            return self.client.exists(path) is not None

    def describe_task(self, name):
        """Everything about one task for reports: spec, status, leader, contenders, cutover, saved ACL count."""
        spec = self.get_task(name)
        if spec is None:
            return None
        saved = [c for c in self._children(self.cutover_path(name)) if c.startswith(SAVED_ACL_PREFIX)]
        return {
            'spec': spec,
            'status': self.get_status(name),
            'leader': self.current_leader(name),
            'contenders': contenders(self.client, self.root, name),
            'cutover': self.get_cutover(name),
            'saved_acl_chunks': len(saved),
        }


# ---------------------------------------------------------------------------
# Daemon registrations
# ---------------------------------------------------------------------------

def register_daemon(client, root, daemon_id, info, replace=False, acl=None, creator=None, allow_open_acl=False):
    """Register a live daemon as an ephemeral ``<root>/daemons/<id>``; returns its path.

    ``info`` holds the non-secret facts others read (hostname, pid, version,
    metrics/health address, tasks led). Calling it again on the same session
    updates the record. A registration left by another live session (a
    duplicate daemon id, or the previous process of this daemon whose
    session has not expired yet) raises NodeExistsError unless ``replace``.
    """
    require_kazoo()
    root = normalize_root(root)
    record = dict(info or {})
    record['daemon_id'] = check_name(daemon_id, 'daemon id')
    record.setdefault('hostname', socket.gethostname())
    record.setdefault('pid', os.getpid())
    record['registered_at'] = time.time()
    data = encode_record(normalize_daemon_info(record))
    path = join_path(root, DAEMONS, daemon_id)
    creator = creator or AclCreator(client, acl=acl, allow_open_acl=allow_open_acl)
    for _attempt in range(DEFAULT_CAS_RETRIES):
        with zk_call(path, 'registering the daemon'):
            try:
                creator.create(path, data, ephemeral=True, makepath=True)
                return path
            except kazoo_exceptions.NodeExistsError:
                pass
            try:
                _old, stat = client.get(path)
            except kazoo_exceptions.NoNodeError:
                continue
            if stat.ephemeralOwner == client.client_id[0]:
                client.set(path, data)
                return path
            if not replace:
                raise NodeExistsError('daemon id %r is already registered by another live session (a second daemon with this id, '
                                      'or the previous process whose session has not expired yet)' % daemon_id, path=path)
            try:
                client.delete(path, version=stat.version)
            except (kazoo_exceptions.NoNodeError, kazoo_exceptions.BadVersionError):
                pass
    raise VersionConflictError('could not register daemon %r: its znode keeps changing' % daemon_id, path=path)


def unregister_daemon(client, root, daemon_id):
    """Delete the daemon's registration if this session owns it; True if deleted."""
    require_kazoo()
    path = join_path(normalize_root(root), DAEMONS, check_name(daemon_id, 'daemon id'))
    with zk_call(path, 'unregistering the daemon'):
        try:
            _data, stat = client.get(path)
            if stat.ephemeralOwner != client.client_id[0]:
                return False
            client.delete(path, version=stat.version)
            return True
        except (kazoo_exceptions.NoNodeError, kazoo_exceptions.BadVersionError):
            return False


def list_daemons(client, root):
    """{daemon_id: record} for every live daemon under ``<root>/daemons``."""
    require_kazoo()
    base = join_path(normalize_root(root), DAEMONS)
    out = {}
    with zk_call(base, 'listing daemons'):
        try:
            names = sorted(client.get_children(base))
        except kazoo_exceptions.NoNodeError:
            return out
        for name in names:
            path = join_path(base, name)
            try:
                data, _stat = client.get(path)
            except kazoo_exceptions.NoNodeError:
                continue  # went away while we listed
            out[name] = decode_record(data, path, normalize_daemon_info)
    return out
