# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: zk_backup
short_description: Export ZooKeeper subtrees to a portable file, or restore one into a cluster
version_added: 0.2.0
description:
  - "O(state=exported) writes the persistent znodes under O(paths) of a cluster to O(dest): data (binary-safe),
    ACLs in server order, and each parent's sequential counter, one JSON line per node in a gzip file with a
    checksum trailer. Each node records its kind (V(persistent), or V(persistent_sequential) when its name ends with
    the 10-digit suffix of a sequential create). Ephemeral znodes are listed, never restored. The file is written
    atomically with mode 0600: ACLs hold digest hashes. The format is described in the collection's docs/backup.md."
  - "O(state=restored) restores O(src) into a cluster: missing nodes are created parents first with their data and
    ACL, sequential counters are raised to at least the exported ones, and with O(mode=overwrite) the data of
    existing nodes that differ is set. Nothing is ever deleted, and the ACLs of existing nodes are left as they are.
    A truncated or altered file is refused before anything is written. O(into) restores somewhere else."
  - "O(only_acls=true) sets the exported ACLs on the existing nodes and does nothing else: it thaws a cluster a
    cutover froze, from the export M(zookeeper.migration.zk_cutover) wrote before freezing (O(zookeeper.migration.zk_cutover#module:backup_dir)),
    even while the other cluster and the control store are down. The ACLs are read back after they are set."
  - "When the export holds ACLs a freeze saved (a cutover's export written once the cluster was already frozen),
    those originals are what O(only_acls) sets and what created nodes get, rather than the frozen ACLs the nodes
    had when the export was read."
  - "One module with O(state) rather than an export and a restore module: both directions take the same cluster,
    connection options and file, and a play reads as the state it leaves behind (a file V(exported), a cluster
    V(restored))."
author:
  - zookeeper.migration contributors (@zookeeper-migration)
extends_documentation_fragment:
  - zookeeper.migration.zk
  - zookeeper.migration.zk.action_group
attributes:
  check_mode:
    support: full
    description:
      - An export reads the cluster and writes nothing; a restore reports the counts it would change.
  diff_mode:
    support: partial
    description:
      - A restore shows, for up to 100 znodes of each kind of change, what each was and what it becomes (V(absent)
        -> V(created), a differing data or ACL -> the export's, a counter below the export's -> raised). An export shows
        no diff.
options:
  cluster:
    description:
      - The cluster, as the name of a registration in the control store (needs O(control)), or as an inline
        connection (C(hosts), C(chroot), C(session_timeout), C(connect_timeout), C(auth), C(tls)), which needs
        no control store.
    type: raw
    required: true
  state:
    description:
      - V(exported) writes O(dest); V(restored) reads O(src).
    type: str
    choices: [exported, restored]
    default: exported
  paths:
    description:
      - Absolute paths of the subtrees to export. Required with O(state=exported).
    type: list
    elements: str
  exclude:
    description:
      - Glob patterns of paths left out of an export (with their subtrees).
    type: list
    elements: str
    default: []
  dest:
    description:
      - The file to write with O(state=exported) (its directory must exist).
    type: path
  src:
    description:
      - The export to restore with O(state=restored).
    type: path
  mode:
    description:
      - V(missing) creates what is missing; V(overwrite) also sets the data of existing nodes that differ.
    type: str
    choices: [missing, overwrite]
    default: missing
  acls:
    description:
      - Create missing nodes with their exported ACL (else with their parent's, and the migration identity's rights).
    type: bool
    default: true
  counters:
    description:
      - Raise sequential counters to at least the exported ones.
    type: bool
    default: true
  only_acls:
    description:
      - Set the original ACLs (the saved ones when the export holds them, else the exported ones) on the existing
        nodes, read them back, and do nothing else. Nodes in the export that do not exist are counted in RV(absent).
    type: bool
    default: false
  into:
    description:
      - Where a restore writes. A path is the new place of the export's only path (the export of V(/app) restored
        with O(into=/restored/app)); a dict maps exported path prefixes to new ones (the longest prefix wins; paths
        under no prefix are unchanged). By default the exported paths are restored where they were.
      - The parent of each restored subtree must exist.
    type: raw
notes:
  - The export reads every node's ACL with its digest hashes, which needs ADMIN on every node (or a super user).
  - Container and TTL nodes are exported and restored as persistent nodes (servers since 3.5.4 show clients an
    ephemeralOwner of 0 for them, as for persistent nodes).
  - A restore holds the nodes it writes in memory; the export holds the exported scope (with its data) while it writes.
seealso:
  - module: zookeeper.migration.zk_cutover
'''

EXAMPLES = r'''
- name: Export the application's configuration
  zookeeper.migration.zk_backup:
    cluster: legacy
    paths: [/app]
    dest: /srv/backups/app.jsonl.gz

- name: Thaw the old cluster from the export the cutover wrote, the new one being down
  zookeeper.migration.zk_backup:
    cluster:
      hosts: [zk1:2181, zk2:2181, zk3:2181]
      auth: {scheme: digest, credential: migrator}
    state: restored
    src: /srv/zk-migration-reports/app-config-legacy-20261205T120000Z.jsonl.gz
    only_acls: true

- name: Restore a copy beside the original, overwriting data that differs
  zookeeper.migration.zk_backup:
    cluster: legacy
    state: restored
    src: /srv/backups/app.jsonl.gz
    into: /restored/app
    mode: overwrite
'''

RETURN = r'''
nodes:
  description: Persistent znodes written to O(dest), or read from O(src).
  returned: always
  type: int
  sample: 1200
created:
  description: Znodes a restore created (or would create in check mode).
  returned: when O(state=restored)
  type: int
  sample: 0
updated:
  description: Znodes whose data a restore with O(mode=overwrite) set.
  returned: when O(state=restored)
  type: int
  sample: 0
unchanged:
  description: Znodes a restore left as they were.
  returned: when O(state=restored)
  type: int
  sample: 1200
acls_set:
  description: Znodes whose ACL O(only_acls) set (or would set in check mode).
  returned: when O(state=restored)
  type: int
  sample: 0
absent:
  description: Znodes of the export that O(only_acls) found missing on the cluster (left alone).
  returned: when O(state=restored)
  type: int
  sample: 0
ephemerals:
  description: Ephemeral znodes the export lists (never restored).
  returned: when O(state=restored)
  type: int
  sample: 4
saved_acls:
  description: ACLs a freeze had saved, held by the export.
  returned: when O(state=restored)
  type: int
  sample: 0
paths:
  description: Up to 100 paths (as restored, after O(into)) of each kind of change.
  returned: when O(state=restored)
  type: dict
  sample: {"created": ["/app/new"], "updated": [], "acls_set": [], "counters_raised": ["/app/ids"], "absent": []}
counters_raised:
  description: Parents whose sequential counter a restore raised.
  returned: when O(state=restored)
  type: int
  sample: 3
'''

from ansible_collections.zookeeper.migration.plugins.module_utils._module import (
    ZkMigrationModule,
    cluster_spec_from_options,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._registration import cluster_spec
from ansible_collections.zookeeper.migration.plugins.module_utils._client import ClusterSpec, connected
from ansible_collections.zookeeper.migration.plugins.module_utils._backup import export_scope, read_export, restore_export


def argument_spec():
    """The module's options: the shared ``control`` and ``credentials`` plus its own."""
    return ZkMigrationModule.generate_argspec(
        cluster=dict(type='raw', required=True),
        state=dict(type='str', choices=['exported', 'restored'], default='exported'),
        paths=dict(type='list', elements='str'),
        exclude=dict(type='list', elements='str', default=[]),
        dest=dict(type='path'),
        src=dict(type='path'),
        mode=dict(type='str', choices=['missing', 'overwrite'], default='missing'),
        acls=dict(type='bool', default=True),
        counters=dict(type='bool', default=True),
        only_acls=dict(type='bool', default=False),
        into=dict(type='raw'),
    )


def resolve(module, credentials):
    """The ``ClusterSpec`` of O(cluster): an inline connection, or a registration read from the control store."""
    value = module.params['cluster']
    if isinstance(value, dict):
        return ClusterSpec.from_dict(cluster_spec_from_options(value, name=value.get('name') or 'cluster'), credentials=credentials)
    with module.control_store('to look up the registered cluster %s' % value) as store:
        record = store.get_cluster(value)
        if record is None:
            module.fail_json(msg='cluster %r is not registered in the control store at %s (registered: %s)'
                                 % (value, store.root, ', '.join(sorted(store.list_clusters())) or 'none'))
        return cluster_spec(record, credentials)


DIFF_STATES = (
    ('created', 'absent', 'created from the export'),
    ('updated', 'data differs from the export', 'data from the export'),
    ('acls_set', 'ACL differs from the original', 'original ACL'),
    ('counters_raised', 'sequential counter below the export\'s', 'sequential counter raised to the export\'s'),
)


def restore_diff(paths):
    """``{'before', 'after'}`` of the paths a restore changes (each listed one's state, one line a path and change)."""
    before = []
    after = []
    for kind, was, becomes in DIFF_STATES:
        for path in paths.get(kind, ()):
            before.append('%s: %s\n' % (path, was))
            after.append('%s: %s\n' % (path, becomes))
    return {'before': ''.join(before), 'after': ''.join(after)}


def main():
    module = ZkMigrationModule(argument_spec=argument_spec(), supports_check_mode=True,
                               required_if=[('state', 'exported', ['paths', 'dest']), ('state', 'restored', ['src'])])
    params = module.params
    result = dict(changed=False, nodes=0)
    with module.engine_errors(**result):
        credentials = module.validated_credentials()
        spec = resolve(module, credentials)
        if params['state'] == 'exported':
            with connected(spec) as client:
                if module.check_mode:
                    from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import take_snapshot
                    result['nodes'] = take_snapshot(client, params['paths'], exclude=params['exclude'], with_acl=False,
                                                    keep_data=False, cluster=spec.name).persistent_count
                else:
                    result['nodes'] = export_scope(client, params['paths'], params['dest'], exclude=params['exclude'], cluster=spec.name)
            result['changed'] = True
            verb = 'would export' if module.check_mode else 'exported'
            result['msg'] = '%s %d znode(s) of %s to %s' % (verb, result['nodes'], spec.name, params['dest'])
            module.exit_json(**result)
        read_export(params['src'])      # a damaged file is refused before any connection
        with connected(spec) as client:
            outcome = restore_export(client, params['src'], mode=params['mode'], acls=params['acls'], counters=params['counters'],
                                     only_acls=params['only_acls'], check_mode=module.check_mode, cluster=spec.name,
                                     into=params['into'])
    result.update(outcome)
    result.pop('cluster', None)
    if module._diff:
        result['diff'] = restore_diff(outcome['paths'])
    result['msg'] = '%s %s into %s: %d created, %d updated, %d ACL(s) set, %d counter(s) raised' % (
        'would restore' if module.check_mode else 'restored', params['src'], spec.name, outcome['created'], outcome['updated'],
        outcome['acls_set'], outcome['counters_raised'])
    module.exit_json(**result)


if __name__ == '__main__':
    main()
