# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of _freeze.py: the frozen ACL, ACL conversions, and the sign that applications share the migrator's identity."""

from hypothesis import given, strategies as st

from ansible_collections.zookeeper.migration.plugins.module_utils import _freeze
from ansible_collections.zookeeper.migration.plugins.module_utils._diff import acl_tuples

MIGRATOR = (31, 'digest', 'migrator:m=')
ENTRY = st.tuples(st.integers(min_value=1, max_value=31), st.sampled_from(['world', 'digest', 'sasl', 'ip']),
                  st.sampled_from(['anyone', 'app:a=', 'migrator:m=', '10.0.0.1']))


@given(st.lists(ENTRY, max_size=5).map(tuple))
def test_a_frozen_acl_lets_only_the_migrator_write(original):
    frozen = _freeze.frozen_acl(original)
    assert frozen[-1] == _freeze.MIGRATOR_AUTH_ENTRY
    assert all(perms == _freeze.PERM_READ for perms, _scheme, _ident in frozen[:-1])
    # who could read still can; nobody else gains anything
    readers = set((scheme, ident) for perms, scheme, ident in original if perms & _freeze.PERM_READ)
    assert set((scheme, ident) for _perms, scheme, ident in frozen[:-1]) == readers


def test_nodes_created_by_the_migrators_identity_are_a_shared_identity():
    nodes = [
        ('/app/a', ((31, 'digest', 'migrator:m='),), False),                             # CREATOR_ALL of a session authenticated as the migrator
        ('/app/b', ((31, 'digest', 'app:a='), (31, 'digest', 'migrator:m=')), False),    # the migrator granted beside the application
        ('/app/c', ((1, 'world', 'anyone'), (31, 'digest', 'migrator:m=')), False),      # granted to the migrator, readable by all
        ('/app/d', ((31, 'world', 'anyone'),), False),
        ('/app/e', ((1, 'world', 'anyone'), (31, 'digest', 'migrator:m=')), True),       # a live application session as the migrator
        ('/app/f', ((31, 'digest', 'app:a='),), True),
    ]
    assert _freeze.shared_identity_paths(nodes, (MIGRATOR,)) == ['/app/a', '/app/e']
    assert _freeze.shared_identity_paths(nodes, None) == []


@given(path=st.sampled_from(['/a', '/b']), acl=st.lists(ENTRY, max_size=4).map(tuple), ephemeral=st.booleans())
def test_another_writer_clears_the_sign(path, acl, ephemeral):
    """A node that another identity may write (or that names another identity, when persistent) never shows sharing."""
    other = (31, 'digest', 'app:a=')
    assert _freeze.shared_identity_paths([(path, acl + (other,), ephemeral)], (MIGRATOR,)) == []
    if _freeze.shared_identity_paths([(path, acl, ephemeral)], (MIGRATOR,)):
        writers = set((scheme, ident) for perms, scheme, ident in acl if perms & 14)
        assert writers <= {('digest', 'migrator:m=')}


def test_frozen_acl_keeps_read_and_adds_the_migrator_session():
    original = ((31, 'world', 'anyone'), (7, 'digest', 'app:h='), (4, 'ip', '10.0.0.1'), (1, 'sasl', 'reader'))
    assert _freeze.frozen_acl(original) == ((1, 'world', 'anyone'), (1, 'digest', 'app:h='), (1, 'sasl', 'reader'), (31, 'auth', ''))
    # no entry can read: only the migrator keeps access
    assert _freeze.frozen_acl(((6, 'world', 'anyone'),)) == ((31, 'auth', ''),)
    # duplicates collapse
    assert _freeze.frozen_acl(((3, 'world', 'anyone'), (1, 'world', 'anyone'))) == ((1, 'world', 'anyone'), (31, 'auth', ''))


def test_acl_conversions_keep_the_order():
    entries = ((1, 'world', 'anyone'), (31, 'digest', 'a:b='))
    assert acl_tuples(_freeze.kazoo_acl(entries)) == entries
