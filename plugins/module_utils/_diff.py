# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare two snapshots of a ZooKeeper subtree.

This is a private module of the zookeeper.migration collection; it may change
without notice.

``diff_snapshots(source, destination)`` reads two ``Snapshot`` objects (see
``_snapshot.py``; anything with a ``nodes`` dict of path -> node works) and
reports, with paths, what differs between the persistent znodes of both sides:

- ``missing``: on the source, not on the destination;
- ``extra``: on the destination only;
- ``data_mismatch``: data differs (compared by its hash, byte-exact);
- ``acl_mismatch``: ACLs differ as *sets* (ZooKeeper keeps entries in the
  order they were given, which carries no meaning);
- ``type_mismatch``: ephemeral on one side, persistent on the other;
- ``counter_behind``: a parent whose persistent children carry a 10-digit
  sequential suffix and whose destination sequential counter (the suffix of
  its next sequential child) is below the source's, so a new sequential
  create on the destination could collide with a copied name;
- ``counter_behind_persistent``: a persistent parent with no child left on
  the source whose destination counter is below the source's: an ID
  generator (sequential children created and deleted) or a drained queue. A
  sequential create there on the destination hands out a suffix the source
  already handed out.

Other lagging parents are listed apart in ``counter_behind_ephemeral``, as
information, not a difference: parents holding ephemeral children (locks,
service registrations: ephemeral creates count in the counter and are never
copied, so such parents are behind on almost every copy) and parents whose
own non-sequential children churned (each side's creates and deletes move
its counter; a name set that differs is already reported as missing or
extra).

The sequential counter is not the ``cversion`` clients see: the server keeps
a count of child creates (the suffix) and reports ``cversion = 2 * creates -
numChildren`` so that deletes count as changes too. Hence
``sequential_counter(node) = (cversion + numChildren) // 2`` (``numChildren``
with ephemerals: they were created too).

Ephemeral nodes are never differences: they are owned by client sessions and
never copied. They are counted apart (``ephemeral_skipped``). Nothing here
compares ``numChildren`` (it counts ephemerals), zxids, ctime or mtime
(per-cluster values a client cannot set).

Children the engine creates and deletes to raise a parent's ``cversion``
carry the reserved name prefix ``SEQ_BUMP_PREFIX``; they are ignored here.
"""

import re

# Name prefix of the throwaway children created and deleted (in the same
# multi) to raise a parent's cversion. Reserved: ignored by diff and verify.
SEQ_BUMP_PREFIX = 'zkmigration-seq-bump-'

# ZooKeeper appends the parent's create counter as %010d to sequential names.
_SEQUENTIAL_SUFFIX = re.compile(r'[0-9]{10}$')

COMPARE_ALL = ('data', 'acl', 'type', 'counters')
_KNOWN_COMPARE = frozenset(COMPARE_ALL)


def has_sequential_suffix(name):
    """True when a node name ends with the 10-digit suffix of a sequential create."""
    return _SEQUENTIAL_SUFFIX.search(name) is not None


def parent_of(path):
    """The parent path of an absolute znode path ('/' for top-level nodes)."""
    parent = path.rpartition('/')[0]
    return parent or '/'


def name_of(path):
    """The last component of an absolute znode path."""
    return path.rpartition('/')[2]


def is_seq_bump_node(path):
    """True for the engine's throwaway cversion-raising children."""
    return path.rpartition('/')[2].startswith(SEQ_BUMP_PREFIX)


def acl_equal(acl_a, acl_b):
    """Compare two ACLs (sequences of (perms, scheme, id)) as sets of entries."""
    if acl_a == acl_b:
        return True
    return frozenset(acl_tuples(acl_a)) == frozenset(acl_tuples(acl_b))


def is_redacted_acl(acl):
    """True when the server hid the digest hashes of ``acl`` (ids read back as ``user:x``).

    Since ZOOKEEPER-1392 (3.4.14, 3.5.5) a client without ADMIN permission on
    a node reads its digest ACL ids as ``user:x``. Such an ACL cannot be
    copied or compared: the migration identity needs ADMIN (or superDigest).
    """
    for entry in acl or ():
        if entry[1] == 'digest' and entry[2].endswith(':x'):
            return True
    return False


def acl_tuples(acl_list):
    """kazoo ``ACL`` objects (``ACL(perms, Id(scheme, id))``) or (perms, scheme, id) sequences -> a tuple of (perms, scheme, id)."""
    out = []
    for entry in acl_list or ():
        if hasattr(entry, 'perms'):
            out.append((entry.perms, entry.id.scheme, entry.id.id))
        else:
            out.append(tuple(entry))
    return tuple(out)


def sequential_counter(node):
    """The suffix ZooKeeper gives the next sequential child of ``node``.

    Clients see ``cversion = 2 * creates - numChildren``; the suffix is the
    count of creates, so it is ``(cversion + numChildren) // 2``.
    """
    return (node.cversion + node.num_children) // 2


def sequential_parents(snapshot):
    """Parents that have persistent children with a sequential suffix.

    Returns a dict mapping each such parent path to one more than the highest
    suffix among those children. Only these parents need their counter
    carried over: parents of ephemeral-only sequential children (service
    registrations, locks) churn their counter into the millions and their
    names are never copied.
    """
    parents = {}
    for path, node in snapshot.nodes.items():
        # Cheap string tests first (most names do not end in 10 digits); the
        # ASCII test keeps other scripts' digits out, as the server writes %010d.
        tail = path[-10:]
        if node.ephemeral_owner or not tail.isdigit() or not tail.isascii():
            continue
        head, _sep, name = path.rpartition('/')
        if len(name) < 10 or name.startswith(SEQ_BUMP_PREFIX):
            continue
        parent = head or '/'
        suffix = int(tail) + 1
        if parents.get(parent, -1) < suffix:
            parents[parent] = suffix
    return parents


def counter_target(node, highest_suffix_plus_one=0):
    """The sequential counter a copy of ``node`` must reach on the destination.

    The source's own counter, and never below one past every copied suffix
    (a source that was itself filled by a copy may hold names above its counter).
    """
    return max(sequential_counter(node), highest_suffix_plus_one)


class PathMap(object):
    """Translate paths between a source subtree and its destination subtree.

    Built from ``None`` (identity: every path keeps its name), a dict
    ``{source_prefix: destination_prefix}`` or a list of such pairs. The
    longest matching prefix wins; paths outside every prefix keep their name.
    """

    def __init__(self, mapping=None):
        if isinstance(mapping, PathMap):
            pairs = list(mapping.pairs)
        elif mapping is None:
            pairs = []
        elif isinstance(mapping, dict):
            pairs = list(mapping.items())
        else:
            pairs = [tuple(pair) for pair in mapping]
        self.pairs = [(_norm(src), _norm(dst)) for src, dst in pairs]
        self.identity = all(src == dst for src, dst in self.pairs)
        self._to_dest = sorted(self.pairs, key=lambda pair: -len(pair[0]))
        self._to_source = sorted(((dst, src) for src, dst in self.pairs), key=lambda pair: -len(pair[0]))

    def to_destination(self, path):
        """The destination path of a source path."""
        if self.identity:
            return path
        return _translate(path, self._to_dest)

    def to_source(self, path):
        """The source path of a destination path."""
        if self.identity:
            return path
        return _translate(path, self._to_source)


def _norm(path):
    if not path.startswith('/'):
        raise ValueError('path_map prefixes must be absolute paths, got %r' % (path,))
    return path.rstrip('/') or '/'


def _translate(path, pairs):
    for prefix, replacement in pairs:
        if prefix == '/':
            return path if replacement == '/' else (replacement + path if path != '/' else replacement)
        if path == prefix:
            return replacement
        if path.startswith(prefix) and path[len(prefix)] == '/':
            rest = path[len(prefix):]
            return rest if replacement == '/' else replacement + rest
    return path


class DiffResult(object):
    """What differs between a source and a destination snapshot.

    Path lists use source paths, except ``extra`` which holds destination
    paths (they have no source counterpart). ``counter_versions`` maps each
    path of ``counter_behind`` to ``(source_counter, destination_counter)``:
    the suffix each side would give its next sequential child.
    """

    CATEGORIES = ('missing', 'extra', 'data_mismatch', 'acl_mismatch', 'type_mismatch', 'counter_behind', 'counter_behind_persistent')

    def __init__(self, compare=COMPARE_ALL, path_map=None):
        self.compare = tuple(compare)
        self.path_map = path_map if isinstance(path_map, PathMap) else PathMap(path_map)
        self.missing = []
        self.extra = []
        self.data_mismatch = []
        self.acl_mismatch = []
        self.type_mismatch = []
        self.counter_behind = []
        self.counter_behind_persistent = []
        self.counter_behind_ephemeral = []     # information, not a difference (see the module docs)
        self.counter_versions = {}
        self.ephemeral_skipped = {'source': 0, 'destination': 0}
        self.compared = 0          # persistent source nodes also present (persistent) on the destination
        self.source_persistent = 0
        self.destination_persistent = 0
        self.acl_compared = 'acl' in self.compare
        self.source_sequential_parents = None   # sequential_parents(source), kept for plan_copy
        self.source_id = None
        # Nodes whose digest ACL ids the server hid ("user:x", no ADMIN permission):
        # their ACLs were compared as read, which cannot show a difference in the hashes.
        self.acl_redacted = {'source': 0, 'destination': 0}

    @property
    def counts(self):
        """Number of paths in each category."""
        return dict((name, len(getattr(self, name))) for name in self.CATEGORIES)

    @property
    def differences(self):
        """Total number of differences over every category."""
        return sum(len(getattr(self, name)) for name in self.CATEGORIES)

    @property
    def in_sync(self):
        """True when no compared aspect differs (ephemerals aside)."""
        return self.differences == 0

    def to_dict(self, max_paths=100):
        """A JSON-friendly summary listing at most ``max_paths`` sorted paths per category."""
        result = {
            'in_sync': self.in_sync,
            'compare': list(self.compare),
            'acl_compared': self.acl_compared,
            'acl_redacted': dict(self.acl_redacted),
            'counts': self.counts,
            'ephemeral_skipped': dict(self.ephemeral_skipped),
            'compared': self.compared,
            'source_persistent': self.source_persistent,
            'destination_persistent': self.destination_persistent,
            'truncated': False,
        }
        for name in self.CATEGORIES:
            paths = sorted(getattr(self, name))
            if max_paths is not None and len(paths) > max_paths:
                paths = paths[:max_paths]
                result['truncated'] = True
            result[name] = paths
        informational = sorted(self.counter_behind_ephemeral)
        result['counter_behind_ephemeral'] = informational[:max_paths] if max_paths is not None else informational
        listed = set(result['counter_behind']) | set(result['counter_behind_persistent']) | set(result['counter_behind_ephemeral'])
        result['counter_versions'] = dict(
            (path, {'source': versions[0], 'destination': versions[1]})
            for path, versions in self.counter_versions.items() if path in listed)
        return result

    def __repr__(self):
        return 'DiffResult(%s)' % ', '.join('%s=%d' % item for item in self.counts.items())


def diff_snapshots(source, destination, compare=COMPARE_ALL, path_map=None):
    """Compare two snapshots and return a ``DiffResult``.

    ``compare`` names the aspects to compare among 'data', 'acl', 'type' and
    'counters'; structure (missing/extra) is always compared. ACLs are only
    compared where both snapshots read them (``acl`` is not None).
    ``path_map`` translates source paths to destination paths (see
    ``PathMap``); by default both sides use the same paths.
    """
    compare = tuple(compare)
    unknown = set(compare) - _KNOWN_COMPARE
    if unknown:
        raise ValueError('unknown compare aspect(s) %s; known: %s' % (', '.join(sorted(unknown)), ', '.join(COMPARE_ALL)))
    result = DiffResult(compare, path_map)
    mapping = result.path_map
    check_data = 'data' in compare
    check_acl = 'acl' in compare
    check_type = 'type' in compare
    check_counters = 'counters' in compare
    lagging = []       # persistent parents whose destination counter is below the source's (classified below)
    acl_seen = False

    src_nodes = source.nodes
    dst_nodes = destination.nodes
    to_dest = None if mapping.identity else mapping.to_destination
    missing = result.missing
    data_mismatch = result.data_mismatch
    acl_mismatch = result.acl_mismatch
    type_mismatch = result.type_mismatch
    eph_src = eph_dst = 0
    persistent_src = compared = 0
    prefix = SEQ_BUMP_PREFIX
    redacted = {}      # id(acl) -> (acl, is redacted): snapshots intern ACL tuples

    for path, snode in src_nodes.items():
        if prefix in path and is_seq_bump_node(path):
            continue
        dnode = dst_nodes.get(to_dest(path) if to_dest else path)
        s_eph = snode.ephemeral_owner != 0
        if not s_eph:
            persistent_src += 1
        if dnode is None:
            if s_eph:
                eph_src += 1
            else:
                missing.append(path)
            continue
        d_eph = dnode.ephemeral_owner != 0
        if s_eph or d_eph:
            if s_eph and d_eph:
                eph_src += 1
                eph_dst += 1
            elif check_type:
                type_mismatch.append(path)
            continue
        compared += 1
        if check_counters and snode.cversion + snode.num_children > dnode.cversion + dnode.num_children:
            lagging.append(path)
        if check_data and (snode.data_hash != dnode.data_hash or snode.data_length != dnode.data_length):
            data_mismatch.append(path)
        if check_acl:
            sacl = snode.acl
            dacl = dnode.acl
            if sacl is not None and dacl is not None:
                acl_seen = True
                if sacl != dacl and not acl_equal(sacl, dacl):
                    acl_mismatch.append(path)
                for side, acl in (('source', sacl), ('destination', dacl)):
                    verdict = redacted.get(id(acl))
                    if verdict is None:
                        verdict = redacted[id(acl)] = (acl, is_redacted_acl(acl))
                    if verdict[1]:
                        result.acl_redacted[side] += 1

    to_source = None if mapping.identity else mapping.to_source
    extra = result.extra
    persistent_dst = 0
    for path, dnode in dst_nodes.items():
        if prefix in path and is_seq_bump_node(path):
            continue
        d_eph = dnode.ephemeral_owner != 0
        if not d_eph:
            persistent_dst += 1
        if (to_source(path) if to_source else path) in src_nodes:
            continue
        if d_eph:
            eph_dst += 1
        else:
            extra.append(path)

    result.source_sequential_parents = sequential_parents(source)
    result.source_id = id(source)
    if 'counters' in compare:
        for parent, above_suffixes in result.source_sequential_parents.items():
            snode = src_nodes.get(parent)
            dnode = dst_nodes.get(to_dest(parent) if to_dest else parent)
            if snode is None or dnode is None or dnode.ephemeral_owner or snode.ephemeral_owner:
                continue   # a missing parent is reported as missing; its counter is raised when it is created
            source_counter = counter_target(snode, above_suffixes)
            destination_counter = sequential_counter(dnode)
            if destination_counter < source_counter:
                result.counter_behind.append(parent)
                result.counter_versions[parent] = (source_counter, destination_counter)
        _classify_lagging(result, lagging, src_nodes, dst_nodes, to_dest)

    result.ephemeral_skipped = {'source': eph_src, 'destination': eph_dst}
    result.compared = compared
    result.source_persistent = persistent_src
    result.destination_persistent = persistent_dst
    result.acl_compared = check_acl and (acl_seen or compared == 0)
    return result


def ephemeral_parents(nodes, parents):
    """The paths of ``parents`` (paths of ``nodes``, a snapshot's dict) that hold an ephemeral child in ``nodes``.

    A parent with no child is not one of them (nothing tells what its
    children were: an ID generator and an idle lock parent look alike).
    """
    wanted = set(parent for parent in parents if nodes[parent].num_children)
    if not wanted:
        return set()
    found = set()
    for path, node in nodes.items():
        if node.ephemeral_owner and path != '/':
            parent = path.rpartition('/')[0] or '/'
            if parent in wanted:
                found.add(parent)
    return found


def _classify_lagging(result, lagging, src_nodes, dst_nodes, to_dest):
    """Sort the lagging parents that ``counter_behind`` left out into its persistent and ephemeral-holding siblings."""
    seen = set(result.counter_behind)
    sequential = result.source_sequential_parents or {}
    rest = [path for path in lagging if path not in seen and path not in sequential]
    if not rest:
        return
    holding_ephemerals = ephemeral_parents(src_nodes, rest)
    for path in rest:
        source_counter = sequential_counter(src_nodes[path])
        destination_counter = sequential_counter(dst_nodes[to_dest(path) if to_dest else path])
        if destination_counter >= source_counter:
            continue    # cannot happen (cversion + numChildren is twice the counter), kept for snapshots built by hand
        if path in holding_ephemerals or src_nodes[path].num_children:
            # Lock and registration parents, and parents whose own (non-sequential) children churned: their counter moves
            # with every child create and delete on each side, so a lag there is information, not a lost ID.
            result.counter_behind_ephemeral.append(path)
        else:
            # no child left on the source: an ID generator or a drained queue, whose next suffix must not go back
            result.counter_behind_persistent.append(path)
        result.counter_versions[path] = (source_counter, destination_counter)
