# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exceptions of the migration engine: one class per failure kind.

This is a private module of the zookeeper.migration collection; it may change
without notice. Modules map each class to exactly one ``fail_json`` so an
operator sees one clear message per kind of failure, and the daemon turns
them into task status. Messages never include secrets.
"""


class ZkMigrationError(Exception):
    """Base class of every error the engine raises on purpose.

    ``path`` names the znode concerned where there is one; ``cluster`` names
    the cluster (its registered name or its connect string, never credentials).

    Each class says how an operator is told of it: ``title`` starts the
    module's failure message (``'<title>: <error>'``) and ``advice``, where
    set, ends it in parentheses.
    """

    kind = 'error'
    title = 'ZooKeeper migration error'
    advice = None

    def __init__(self, message, path=None, cluster=None):
        super(ZkMigrationError, self).__init__(message)
        self.message = message
        self.path = path
        self.cluster = cluster

    def __str__(self):
        parts = [self.message]
        if self.path is not None and self.path not in self.message:
            parts.append('(path %s)' % self.path)
        if self.cluster is not None and self.cluster not in self.message:
            parts.append('(cluster %s)' % self.cluster)
        return ' '.join(parts)

    def to_dict(self):
        """A JSON-friendly description, for module results and task status."""
        return {'kind': self.kind, 'message': str(self), 'path': self.path, 'cluster': self.cluster}


class ConfigError(ZkMigrationError):
    """Invalid user input: options, task specs, config or credentials files."""

    kind = 'config'
    title = 'Invalid configuration'


class SchemaError(ZkMigrationError):
    """A control-store record that is malformed or of a newer schema version."""

    kind = 'schema'
    title = 'Unreadable control-store record'


class ClusterUnreachableError(ZkMigrationError):
    """No member of the cluster could be reached, or the session was lost.

    ``failures`` maps each ``host:port`` tried to the reason it failed.
    """

    kind = 'unreachable'
    title = 'Cluster unreachable'

    def __init__(self, message, path=None, cluster=None, failures=None):
        super(ClusterUnreachableError, self).__init__(message, path=path, cluster=cluster)
        self.failures = dict(failures or {})

    def to_dict(self):
        result = super(ClusterUnreachableError, self).to_dict()
        result['failures'] = self.failures
        return result


class AuthFailedError(ZkMigrationError):
    """Authentication was refused, or the identity lacks a permission it needs."""

    kind = 'auth'
    title = 'Authentication or authorization failed'


class NoNodeError(ZkMigrationError):
    """A znode that must exist does not."""

    kind = 'no_node'
    title = 'Missing znode'


class NodeExistsError(ZkMigrationError):
    """A znode to be created exists already."""

    kind = 'node_exists'
    title = 'Znode already exists'


class NotEmptyError(ZkMigrationError):
    """A znode to be deleted still has children."""

    kind = 'not_empty'
    title = 'Znode not empty'


class TooLargeError(ZkMigrationError):
    """Data or a request exceeds what the server accepts (jute.maxbuffer)."""

    kind = 'too_large'
    title = 'Too large for the server'


class UnsupportedByServerError(ZkMigrationError):
    """The server lacks an operation (for example multiRead on ZooKeeper 3.4)."""

    kind = 'unsupported'
    title = 'Not supported by the server'


class VersionConflictError(ZkMigrationError):
    """A conditional write lost a race: the node changed since it was read."""

    kind = 'version_conflict'
    title = 'Concurrent change, nothing overwritten'
    advice = 're-run the task'


class FencedError(ZkMigrationError):
    """A write carried a stale fence epoch: another leader has taken over."""

    kind = 'fenced'
    title = 'Fenced'


class JournalError(ZkMigrationError):
    """The sync journal entry of a write multi could not be created (its parent gone): the multi was not applied."""

    kind = 'journal'
    title = 'Sync journal unavailable'
