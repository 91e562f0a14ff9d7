# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files the collection writes on the controller (exports, saved ACLs, reports): whole or not at all.

This is a private module of the zookeeper.migration collection; it may change
without notice.

``atomic_file`` writes into a temporary file in the target's directory,
fsyncs it, renames it over the target and fsyncs the directory: a reader
(or a crash) sees the old file or the new one, never half of one. Files
holding ACLs (digest hashes) are created mode 0600 from the start.
"""

import contextlib
import os
import tempfile

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError


def fsync_directory(directory):
    """Make a rename in ``directory`` durable (where the file system lets a directory be fsynced)."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass    # some file systems refuse fsync on a directory; the rename itself is atomic
    finally:
        os.close(handle)


@contextlib.contextmanager
def atomic_file(path, what, mode=0o600, binary=False, prefix='.zk-migration-'):
    """``with atomic_file(path, 'the export') as stream:`` write ``path`` whole or not at all.

    ``ConfigError`` (naming ``what``) when the directory does not exist or cannot be written in.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigError('cannot write %s %s: the directory %s does not exist' % (what, path, directory))
    try:
        handle, temporary = tempfile.mkstemp(prefix=prefix, dir=directory)
    except OSError as exc:
        raise ConfigError('cannot write %s in %s (%s)' % (what, directory, exc.strerror or exc))
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, 'wb' if binary else 'w') as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.rename(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    fsync_directory(directory)


__all__ = ['atomic_file', 'fsync_directory']
