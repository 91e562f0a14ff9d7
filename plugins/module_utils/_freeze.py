# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Freezing one side of a task read-only by ACL, proving the freeze holds, and thawing it exactly.

This is a private module of the zookeeper.migration collection; it may change
without notice.

A cutover freezes the source; a rollback after a completed cutover freezes
the destination (the mirror image). Either way:

* **Freeze** (``Freezer.freeze``): every persistent znode in the task's scope,
  parents first, in batches. The original ACLs of a batch are saved in the
  control store (per side) *before* its setACL requests are sent. The frozen
  ACL keeps each original entry's READ and adds ``auth`` ALL, which the
  server expands to the identity of the migrator's session.
* **Proof** (``Freezer.prove``): an ACL freeze does not hold against a
  server run with ``zookeeper.skipACL=yes``, nor against clients that use
  the migrator's own identity, nor when that identity is a super user
  (``superDigest``). After freezing, a session with a throwaway digest
  identity tries to create a node under the frozen scope (it must be
  refused), and the migrator checks that it cannot read a probe node whose
  ACL names only that throwaway identity (a super user or a server that
  skips ACLs can). Before freezing (``Freezer.check``), nodes whose original
  ACL gives write rights only to the migrator's identity show that the
  applications use it too.
* **Thaw** (``Freezer.restore``): the saved ACLs (or the targets a rollback
  computed from the other side) are put back and read back; the saved copies
  are cleared only when every node reads back as wanted.
"""

import binascii
import os
from collections import deque

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    AuthFailedError,
    ConfigError,
    ZkMigrationError,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._client import (
    AuthSpec,
    ClusterSpec,
    connected,
    translate_error,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import acl_tuples, is_redacted_acl

try:
    from kazoo import exceptions as kazoo_exceptions
    from kazoo.security import ACL, Id, make_digest_acl_credential
    HAS_KAZOO = True
except ImportError:
    HAS_KAZOO = False

PERM_READ = 1
PERM_WRITE = 2
PERM_CREATE = 4
PERM_DELETE = 8
PERM_ALL = 31
#: The entry the server expands to every identity the session authenticated with.
MIGRATOR_AUTH_ENTRY = (PERM_ALL, 'auth', '')
SET_ACL_WINDOW = 128
DEFAULT_FREEZE_BATCH = 500
PROBE_PREFIX = 'zkm-freeze-probe-'


class FreezeError(ZkMigrationError):
    """A freeze that does not hold (a write passed it) or cannot be proven safe."""

    kind = 'freeze'


def frozen_acl(original):
    """The read-only ACL that replaces ``original`` ((perms, scheme, id) tuples) during a freeze.

    Every original entry keeps only its READ bit (entries without READ go);
    ``auth`` ALL is added, which the server expands to the identities of the
    migrator's session, so the migrator keeps write and ADMIN rights.
    """
    entries = []
    for perms, scheme, ident in original or ():
        if perms & PERM_READ:
            entry = (PERM_READ, scheme, ident)
            if entry not in entries:
                entries.append(entry)
    entries.append(MIGRATOR_AUTH_ENTRY)
    return tuple(entries)


def kazoo_acl(entries):
    """(perms, scheme, id) tuples -> kazoo ``ACL`` objects, in the same order."""
    return [ACL(perms, Id(scheme, ident)) for perms, scheme, ident in entries]


def shared_identity_paths(nodes, migrator_acl):
    """Paths that show the applications authenticate as the migrator: ``[(path, acl, ephemeral)]`` -> sorted paths.

    ZooKeeper does not record who created a node, but ``CREATOR_ALL_ACL``
    (what most clients use) records the creating session's identity. An
    ephemeral node is always an application's (the migration never creates
    one on a cluster it freezes), so one whose writers are only the
    migrator's identity proves an application session uses it; a persistent
    node whose ACL names nothing but the migrator was created the same way.
    A freeze keeps the migrator's rights, so it would not stop them.
    """
    identities = set((scheme, ident) for _perms, scheme, ident in migrator_acl or ())
    if not identities:
        return []
    out = []
    for path, acl, ephemeral in nodes:
        named = set((scheme, ident) for _perms, scheme, ident in acl or ())
        writers = set((scheme, ident) for perms, scheme, ident in acl or () if perms & (PERM_WRITE | PERM_CREATE | PERM_DELETE))
        if (ephemeral and writers and writers <= identities) or (not ephemeral and named and named <= identities):
            out.append(path)
    return sorted(out)


def set_acls_pipelined(client, items, window=SET_ACL_WINDOW):
    """setACL for many znodes, ``window`` requests in flight: ``{path: ZnodeStat or kazoo exception}``.

    ``items`` are ``(path, acl_tuples, version)``; -1 sets unconditionally.
    A lost connection raises (the outcome of the requests in flight is then unknown).
    """
    results = {}
    pending = deque()
    items = list(items)
    index = 0
    while index < len(items) or pending:
        while index < len(items) and len(pending) < window:
            path, acl, version = items[index]
            index += 1
            pending.append((path, client.set_acls_async(path, kazoo_acl(acl), version)))
        path, handle = pending.popleft()
        try:
            results[path] = handle.get()
        except (kazoo_exceptions.NoNodeError, kazoo_exceptions.BadVersionError, kazoo_exceptions.NoAuthError,
                kazoo_exceptions.InvalidACLError) as exc:
            results[path] = exc
    return results


def scope_snapshot(client, spec, control_root, cluster, with_acl=True):
    """The task's scope on one cluster (no data), for freezing and for ACL checks."""
    from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import take_snapshot
    return take_snapshot(client, spec['paths'], exclude=spec['exclude'], with_acl=with_acl, keep_data=False,
                         control_root=control_root, cluster=cluster)


def acl_error(exc, path, cluster, doing):
    """A kazoo ACL-write failure as the collection's error."""
    if isinstance(exc, kazoo_exceptions.NoAuthError):
        return AuthFailedError('%s %s: the migration identity lacks ADMIN permission on it (setACL refused)' % (doing, path),
                               path=path, cluster=cluster)
    if isinstance(exc, kazoo_exceptions.InvalidACLError):
        return ConfigError('%s %s: the server refused the ACL (an "auth" entry needs an authenticated session)' % (doing, path),
                           path=path, cluster=cluster)
    return translate_error(exc, path=path, cluster=cluster)


def _token(size=8):
    return binascii.hexlify(os.urandom(size)).decode('ascii')


class Freezer(object):
    """Freeze, prove and thaw one ``side`` (``source`` or ``destination``) of ``task``.

    ``report`` is the run's ``operations`` list, ``warnings`` list and
    ``result`` dict holder (the ``Cutover``), which this class appends to.
    """

    def __init__(self, store, task, side, cluster, report, batch=DEFAULT_FREEZE_BATCH):
        if not HAS_KAZOO:
            raise ConfigError('freezing needs the kazoo Python library')
        self.store = store
        self.task = task
        self.side = side
        self.cluster = cluster
        self.report = report
        self.batch = batch

    def saved(self):
        return self.store.load_saved_acls(self.task, side=self.side)

    def _set_acls(self, client, items):
        try:
            return set_acls_pipelined(client, items)
        except Exception as exc:  # pylint: disable=broad-except
            raise translate_error(exc, path=items[0][0] if items else None, cluster=self.cluster)

    # -- before --------------------------------------------------------------
    def check(self, client, connection, snapshot, migrator_acl=None, allow_shared_identity=False, migrator_added=()):
        """Refuse a freeze that could not be undone exactly, would lock the migrator out, or would not stop the applications.

        ``migrator_added`` holds identities a sync added to the ACLs on this
        side (``acl_mode: grant_migrator``), which are not a sign of sharing.
        """
        authenticated = bool(getattr(client, 'auth_data', None)) or bool(connection.tls and connection.tls.cert_file)
        if not authenticated:
            raise ConfigError('freezing the %s needs an authenticated migration identity on cluster %s (auth in its registration): '
                              'the frozen ACLs keep the rights of that identity only, and an anonymous connection would lock itself '
                              'out of the nodes it must restore' % (self.side, connection.name))
        masked = sorted(node.path for node in snapshot.persistent() if is_redacted_acl(node.acl))
        if masked:
            raise AuthFailedError('freezing the %s: the ACLs of %d node(s), e.g. %s, were read with masked digest hashes (user:x): the '
                                  'migration identity lacks ADMIN on them, so their original ACLs could not be saved and restored '
                                  'exactly. Give it ADMIN (or a superDigest identity) on cluster %s'
                                  % (self.side, len(masked), ', '.join(masked[:5]), connection.name),
                                  path=masked[0], cluster=connection.name)
        if migrator_added:
            return
        # a snapshot holds the ACLs of persistent nodes only; the ephemerals' are the best evidence, read them here
        ephemeral = [(path, acl, True) for path, acl, _aversion in self.read_acls(client, [node.path for node in snapshot.ephemerals()])]
        shared = shared_identity_paths([(node.path, node.acl, False) for node in snapshot.persistent()] + ephemeral, migrator_acl)
        if shared and not allow_shared_identity:
            raise FreezeError('freezing the %s: %d node(s), e.g. %s, can be written only by the migration identity: the applications '
                              'authenticate as the migrator, and a freeze keeps the migrator\'s rights, so it would not stop them. '
                              'Give the migration its own identity (auth in the registration of %s), or set allow_shared_identity '
                              'if the applications are stopped' % (self.side, len(shared), ', '.join(shared[:3]), connection.name),
                              path=shared[0], cluster=connection.name)
        if shared:
            self.report.warnings.append('%d %s node(s), e.g. %s, are written by the migration identity: the freeze does not stop '
                                        'clients that use it (allow_shared_identity)' % (len(shared), self.side, shared[0]))

    # -- freeze --------------------------------------------------------------
    def freeze(self, client, spec, control_root):
        """Freeze every persistent node in scope, parents first, saving each batch's original ACLs first; returns the count.

        A second pass (and a third) freezes the nodes created while the
        previous one ran, until a pass finds none (a frozen parent lets no
        one but the migrator create children).
        """
        saved = self.saved()
        frozen = set()
        snapshot = scope_snapshot(client, spec, control_root, self.cluster, with_acl=True)
        todo = [(node.path, node.acl, node.aversion) for node in snapshot.persistent()]
        del snapshot
        for attempt in range(3):
            if attempt:
                snapshot = scope_snapshot(client, spec, control_root, self.cluster, with_acl=False)
                todo = self.read_acls(client, [node.path for node in snapshot.persistent() if node.path not in frozen])
            if not todo:
                break
            todo.sort(key=lambda item: (item[0].count('/'), item[0]))
            for start in range(0, len(todo), self.batch):
                frozen.update(self._freeze_batch(client, todo[start:start + self.batch], saved))
        return len(frozen)

    def read_acls(self, client, paths):
        """[(path, ACL tuples, aversion)] of ``paths`` (nodes gone meanwhile left out)."""
        from ansible_collections.zookeeper.migration.plugins.module_utils._protocol import get_acls_pipelined
        try:
            found = get_acls_pipelined(client, paths)
        except Exception as exc:  # pylint: disable=broad-except
            raise translate_error(exc, cluster=self.cluster)
        out = []
        for path in paths:
            outcome = found[path]
            if isinstance(outcome, kazoo_exceptions.NoNodeError):
                continue
            if isinstance(outcome, Exception):
                raise translate_error(outcome, path=path, cluster=self.cluster)
            out.append((path, acl_tuples(outcome[0]), outcome[1].aversion))
        return out

    def _freeze_batch(self, client, batch, saved):
        """Save the originals not saved yet, then set the frozen ACLs of one batch; returns the paths frozen."""
        new = [(path, acl) for path, acl, _aversion in batch if path not in saved]
        for path, acl in new:
            if is_redacted_acl(acl):
                raise AuthFailedError('freezing the %s: the ACL of %s was read with masked digest hashes (user:x); its original '
                                      'cannot be saved exactly' % (self.side, path), path=path, cluster=self.cluster)
        if new:
            self.store.save_source_acls(self.task, new, side=self.side)     # before any setACL of the batch
            for path, acl in new:
                saved[path] = tuple(acl)
        fresh = set(path for path, _acl in new)
        # a node saved now is set only if its ACL is still the one saved; one saved by an earlier run is frozen from that original
        items = [(path, frozen_acl(saved[path]), aversion if path in fresh else -1) for path, _acl, aversion in batch]
        results = self._set_acls(client, items)
        done = []
        retry = []
        for path, _acl, _version in items:
            outcome = results[path]
            if isinstance(outcome, kazoo_exceptions.BadVersionError):
                retry.append(path)
            elif isinstance(outcome, kazoo_exceptions.NoNodeError):
                continue   # deleted meanwhile: nothing to freeze
            elif isinstance(outcome, Exception):
                raise acl_error(outcome, path, self.cluster, 'freezing')
            else:
                done.append(path)
        if retry:
            # the ACL changed between our read and our setACL: the value read first stays the saved original
            self.report.warnings.append('the ACL of %d %s node(s) changed while the freeze ran (e.g. %s); the ACL read before the '
                                        'change is the one saved for a restore' % (len(retry), self.side, retry[0]))
            again = self._set_acls(client, [(path, frozen_acl(saved[path]), -1) for path in retry])
            for path in retry:
                if isinstance(again[path], kazoo_exceptions.NoNodeError):
                    continue
                if isinstance(again[path], Exception):
                    raise acl_error(again[path], path, self.cluster, 'freezing')
                done.append(path)
        return done

    # -- proof ---------------------------------------------------------------
    def prove(self, client, connection, spec, allow_shared_identity=False):
        """Show that the freeze holds: a throwaway identity cannot write, and the migrator does not bypass ACLs.

        Raises ``FreezeError`` when a write passed (the server skips ACL
        checks) or, unless ``allow_shared_identity``, when the migrator reads
        a node its identity is not granted (a super user). Returns what was
        found.
        """
        top = self._probe_parent(client, spec)
        if top is None:
            self.report.warnings.append('no persistent node of the task\'s paths exists on the %s: the freeze was not probed' % self.side)
            return {'probed': False}
        user = PROBE_PREFIX + _token(4)
        password = _token(16)
        bypass = self._migrator_bypasses_acls(client, top, user, password)
        wrote = self._throwaway_write_passes(connection, top, user, password)
        found = {'probed': True, 'path': top, 'other_identity_can_write': wrote, 'migrator_bypasses_acls': bypass}
        if wrote:
            raise FreezeError('the freeze of the %s does not hold: a session with a throwaway identity created a node under %s on '
                              'cluster %s. The server does not check ACLs (zookeeper.skipACL=yes): remove that setting, or stop '
                              'the applications some other way' % (self.side, top, self.cluster), path=top, cluster=self.cluster)
        if bypass and not allow_shared_identity:
            raise FreezeError('the migration identity on cluster %s reads a node whose ACL does not name it: it is a super user '
                              '(superDigest). Applications that authenticate as a super user still write to the frozen %s. Use '
                              'a dedicated migration identity, or set allow_shared_identity if no application uses it'
                              % (self.cluster, self.side), path=top, cluster=self.cluster)
        if bypass:
            self.report.warnings.append('the migration identity on cluster %s is a super user: clients that use it are not stopped by '
                                        'the freeze (allow_shared_identity)' % self.cluster)
        self.report.operations.append('prove the freeze of the %s: a write by another identity was refused' % self.side)
        return found

    def _probe_parent(self, client, spec):
        for path in spec['paths']:
            try:
                stat = client.exists(path)
            except Exception as exc:  # pylint: disable=broad-except
                raise translate_error(exc, path=path, cluster=self.cluster)
            if stat is not None and not stat.ephemeralOwner:
                return path
        return None

    def _migrator_bypasses_acls(self, client, top, user, password):
        """Create an ephemeral node only ``user`` may read, and see whether the migrator reads it anyway."""
        probe = '%s/%s%s' % (top.rstrip('/'), PROBE_PREFIX, _token(6))
        acl = [ACL(PERM_ALL, Id('digest', make_digest_acl_credential(user, password)))]
        try:
            client.create(probe, b'', acl=acl, ephemeral=True)
        except Exception as exc:  # pylint: disable=broad-except
            raise translate_error(exc, path=probe, cluster=self.cluster)
        try:
            try:
                client.get(probe)
                return True
            except kazoo_exceptions.NoAuthError:
                return False
        finally:
            try:
                client.delete(probe)
            except Exception:  # pylint: disable=broad-except
                pass    # ephemeral: it goes with the session anyway

    def _throwaway_write_passes(self, connection, top, user, password):
        """Open a session as a throwaway digest identity and try to create a node under ``top``."""
        other = ClusterSpec(connection.hosts, name=connection.name, chroot=connection.chroot, session_timeout=connection.session_timeout,
                            connect_timeout=connection.connect_timeout, auth=AuthSpec('digest', username=user, password=password),
                            tls=connection.tls)
        probe = '%s/%s%s' % (top.rstrip('/'), PROBE_PREFIX, _token(6))
        with connected(other) as client:
            try:
                client.create(probe, b'', ephemeral=True)
            except kazoo_exceptions.NoAuthError:
                return False
            except Exception as exc:  # pylint: disable=broad-except
                raise translate_error(exc, path=probe, cluster=self.cluster)
            try:
                client.delete(probe)
            except Exception:  # pylint: disable=broad-except
                pass
            return True

    # -- thaw ----------------------------------------------------------------
    def restore(self, client, targets=None):
        """Put every saved ACL back (or ``targets[path]`` where given), check by reading back, then clear the saved copies.

        Returns the number of nodes set.
        """
        saved = self.saved()
        wanted = dict(saved)
        wanted.update(targets or {})
        if not wanted:
            return 0
        paths = sorted(wanted, key=lambda path: (path.count('/'), path))
        results = self._set_acls(client, [(path, wanted[path], -1) for path in paths])
        restored = [path for path in paths if not isinstance(results[path], Exception)]
        for path in paths:
            outcome = results[path]
            if isinstance(outcome, Exception) and not isinstance(outcome, kazoo_exceptions.NoNodeError):
                raise acl_error(outcome, path, self.cluster, 'restoring the ACL of')
        from ansible_collections.zookeeper.migration.plugins.module_utils._protocol import get_acls_pipelined
        try:
            readback = get_acls_pipelined(client, restored)
        except Exception as exc:  # pylint: disable=broad-except
            raise translate_error(exc, cluster=self.cluster)
        wrong = [path for path in restored
                 if not isinstance(readback[path], Exception) and acl_tuples(readback[path][0]) != tuple(wanted[path])]
        if wrong:
            raise FreezeError('restoring %s ACLs: %d node(s) read back with another ACL than the one set, e.g. %s (changed by '
                              'someone else meanwhile?); the saved ACLs are kept' % (self.side, len(wrong), wrong[0]),
                              path=wrong[0], cluster=self.cluster)
        if saved:
            self.store.clear_saved_acls(self.task, side=self.side)
        return len(restored)


__all__ = ['Freezer', 'FreezeError', 'frozen_acl', 'kazoo_acl', 'set_acls_pipelined', 'shared_identity_paths', 'scope_snapshot',
           'acl_error', 'MIGRATOR_AUTH_ENTRY']
