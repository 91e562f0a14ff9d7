# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fencing: a task's epoch on every data cluster, checked in the same multi as each write.

A new leader bumps the fence epoch (``bump_fence``) on both clusters before
it writes; every write of the engine goes in a multi with a check of the
epoch it holds (``fence_check``/``commit_fenced``), so a stale leader's
writes fail with ``FencedError`` instead of landing. The bidirectional
journal lives beside the fence. See docs/architecture.md.

This is a private module of the zookeeper.migration collection; it may change
without notice.
"""

import json
import logging
import time
import traceback

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    ConfigError,
    FencedError,
    VersionConflictError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._records import (
    check_name,
    encode_record,
    FENCE,
    join_path,
    JOURNAL,
    normalize_root,
    SCHEMA_VERSION,
)
from ansible_collections.zookeeper.migration.plugins.module_utils import _protocol
from ansible_collections.zookeeper.migration.plugins.module_utils._control_acl import AclCreator, require_kazoo, world_access, zk_call
from ansible_collections.zookeeper.migration.plugins.module_utils._control import DEFAULT_CAS_RETRIES
LOG = logging.getLogger('zookeeper_migration.control')

try:
    from kazoo import exceptions as kazoo_exceptions
    HAS_KAZOO = True
    KAZOO_IMPORT_ERROR = None
except ImportError:
    HAS_KAZOO = False
    KAZOO_IMPORT_ERROR = traceback.format_exc()


def fence_path(root, task):
    """``<root>/fence/<task>``: the fence znode on a data cluster."""
    return join_path(normalize_root(root), FENCE, check_name(task, 'task name'))


def bump_fence(client, root, task, leader=None, acl=None, control_epoch=None):
    """Start a new fence epoch for ``task`` on a data cluster; returns it.

    The epoch is the fence znode's data version after our write, so every
    bump yields a larger one and writes checked against an older epoch fail.
    A new leader calls this on every cluster it writes to *before* writing.
    The znode is created (with its parents) if missing, with the migration
    identity's ACL (``data_cluster_acl``: ALL for the session's identities,
    no world access); a fence left by an earlier version with world access
    gets that ACL on its next bump.
    Deleting a fence znode while daemons run would reset its epoch: don't.

    ``control_epoch`` (the leader's election sequence, which grows with every
    leadership) is recorded in the fence, and a bump by a leader whose
    ``control_epoch`` is lower than the one recorded raises ``FencedError``:
    a leader that was frozen between winning its election and bumping, and
    thaws after a newer leader took over, must not fence that newer leader
    out. The check and the bump are one compare-and-set.
    """
    require_kazoo()
    path = fence_path(root, task)
    record = {'schema_version': SCHEMA_VERSION, 'task': task, 'leader': leader, 'bumped_at': time.time()}
    if control_epoch is not None:
        record['control_epoch'] = int(control_epoch)
    data = encode_record(record)
    creator = AclCreator(client, acl=acl, allow_open_acl=True)
    with zk_call(path, 'bumping the fence'):
        for _attempt in range(DEFAULT_CAS_RETRIES):
            try:
                current, stat = client.get(path)
            except kazoo_exceptions.NoNodeError:
                current = stat = None
            if stat is not None:
                recorded = _recorded_control_epoch(current)
                if control_epoch is not None and recorded is not None and recorded > control_epoch:
                    raise FencedError('task %r: a newer leader (control epoch %d > %d) has fenced this cluster; not bumping'
                                      % (task, recorded, control_epoch), path=path)
                try:
                    epoch = client.set(path, data, version=stat.version).version
                except (kazoo_exceptions.BadVersionError, kazoo_exceptions.NoNodeError):
                    continue
                _close_world_access(client, creator, path)
                return epoch
            _ensure_task_parents(client, creator, root, FENCE)
            try:
                creator.create(path, data)
            except kazoo_exceptions.NodeExistsError:
                pass
    raise VersionConflictError('could not bump the fence of task %r' % task, path=path)


def _recorded_control_epoch(data):
    try:
        value = json.loads((data or b'{}').decode('utf-8')).get('control_epoch')
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _close_world_access(client, creator, path):
    """Give ``path`` the creator's ACL when it grants world:anyone access the creator's does not (best effort)."""
    if creator.open:
        return
    try:
        acl, stat = client.get_acls(path)
        if world_access(acl) and not world_access(creator.acl):
            client.set_acls(path, creator.acl, version=stat.aversion)
    except (kazoo_exceptions.NoAuthError, kazoo_exceptions.BadVersionError, kazoo_exceptions.NoNodeError,
            kazoo_exceptions.InvalidACLError) as exc:
        LOG.warning('%s grants world:anyone access and its ACL could not be narrowed (%s)', path, type(exc).__name__)


def _ensure_task_parents(client, creator, root, kind):
    """Create ``<root>`` and ``<root>/<kind>`` (and missing ancestors) on a data cluster with the creator's ACL."""
    creator.ensure_parents(normalize_root(root))
    for parent in (normalize_root(root), join_path(normalize_root(root), kind)):
        try:
            creator.create(parent)
        except kazoo_exceptions.NodeExistsError:
            pass


def journal_path(root, task):
    """``<root>/journal/<task>``: the parent of the sync journal entries on a data cluster (see ``_sync_journal``)."""
    return join_path(normalize_root(root), JOURNAL, check_name(task, 'task name'))


def ensure_journal(client, root, task, acl=None):
    """Create the journal parent of ``task`` on a data cluster if missing; returns its ACL (the entries get it too)."""
    require_kazoo()
    path = journal_path(root, task)
    creator = AclCreator(client, acl=acl, allow_open_acl=True)
    with zk_call(path, 'creating the sync journal'):
        if client.exists(path) is None:
            _ensure_task_parents(client, creator, root, JOURNAL)
            try:
                creator.create(path)
            except kazoo_exceptions.NodeExistsError:
                pass
        return client.get_acls(path)[0]


def read_fence(client, root, task):
    """The current fence epoch of ``task`` on this cluster, or None if never bumped."""
    require_kazoo()
    path = fence_path(root, task)
    with zk_call(path, 'reading the fence'):
        stat = client.exists(path)
    return stat.version if stat is not None else None


def _chrooted(chroot, path):
    if not chroot:
        return path
    return chroot if path == '/' else chroot + path


def fence_check(txn_or_ops, root, task, epoch, chroot=None):
    """Put ``check(<root>/fence/<task>, version=epoch)`` FIRST in a write multi.

    ``txn_or_ops`` is a kazoo ``TransactionRequest`` (its client's chroot is
    applied) or a list of kazoo request objects for a raw ``Transaction``
    (pass ``chroot`` when that client has one). With the check first, a stale
    leader's multi fails whole and its result 0 is the fence failure; use
    ``raise_if_fenced`` or ``commit_fenced``. Returns ``txn_or_ops``.
    """
    require_kazoo()
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ConfigError('fence epoch must be a non-negative integer; got %r' % (epoch,))
    path = fence_path(root, task)
    if isinstance(txn_or_ops, list):
        txn_or_ops.insert(0, _protocol.check_version_op(_chrooted(chroot, path), epoch))
        return txn_or_ops
    if getattr(txn_or_ops, 'committed', False):
        raise ConfigError('fence_check needs an uncommitted transaction')
    txn_or_ops.operations.insert(0, _protocol.check_version_op(_chrooted(getattr(txn_or_ops.client, 'chroot', None), path), epoch))
    return txn_or_ops


def raise_if_fenced(results, root, task, epoch, index=0):
    """Raise FencedError if the fence check at ``index`` of a multi's results failed."""
    require_kazoo()
    result = results[index] if len(results) > index else None
    if isinstance(result, (kazoo_exceptions.BadVersionError, kazoo_exceptions.NoNodeError)):
        path = fence_path(root, task)
        raise FencedError('write refused: the fence of task %r moved past epoch %d (another leader has taken over)' % (task, epoch),
                          path=path)
    return results


def commit_fenced(txn, root, task, epoch):
    """Add the fence check to ``txn``, commit it, raise FencedError if fenced.

    Returns the results of the caller's own ops (the check's result removed);
    other failures are left in the results for the caller (``multi_failure``
    style: the failing op's exception, RolledBack/RuntimeInconsistency others).
    """
    fence_check(txn, root, task, epoch)
    with zk_call(fence_path(root, task), 'committing a fenced write'):
        results = txn.commit()
    raise_if_fenced(results, root, task, epoch)
    return results[1:]
