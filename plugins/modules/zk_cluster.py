# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: zk_cluster
short_description: Register a ZooKeeper cluster for migration, check it is reachable and summarize its tree
version_added: 0.1.0
description:
  - Step 1 of a migration. Registers (or updates, or removes) a cluster under
    C(<control.root>/clusters/<name>) in the control store, so that sync tasks
    (M(zookeeper.migration.zk_sync_task)), verification (M(zookeeper.migration.zk_verify)) and the
    sync daemons can refer to it by name.
  - Before registering, connects to the cluster and returns its server version and
    the mode of each member (standalone, leader, follower, observer). An unreachable
    cluster fails the task with the reason for each member, and nothing is registered.
  - With digest authentication, it also proves the password, which ZooKeeper itself accepts
    whatever it is at connect time. The password is proven when the server reports the user as
    its superDigest user (ZooKeeper 3.7 or later) or when an ACL in the tree names the user with
    the same password hash; a wrong password fails the task with C(wrong password for user X)
    when an ACL naming the user shows it (the hash hidden from this identity in an entry that
    grants ADMIN, or another hash). When nothing on the
    cluster names the user, the password cannot be proven and the task warns
    (RV(cluster.identity)). At most 2000 znodes are looked at.
  - With O(summarize), also walks the tree and returns its subtrees with their counts
    of persistent and ephemeral znodes and bytes, marking those that are mostly
    ephemeral (service registrations, locks, which this method does not migrate;
    clients recreate them on the new cluster) and those that hold persistent
    configuration, to help choose a sync task's paths.
  - A registration never holds a secret, only the name of the credential
    (O(auth.credential), O(tls.credential)) that the daemons look up in their
    credentials file and the modules in O(credentials).
author:
  - zookeeper.migration contributors (@zookeeper-migration)
extends_documentation_fragment:
  - zookeeper.migration.zk
  - zookeeper.migration.zk.cluster
  - zookeeper.migration.zk.action_group
attributes:
  check_mode:
    support: full
    description:
      - Nothing is written to the control store. Reachability is still checked and the
        summary still computed (both only read), and the result tells what would change.
  diff_mode:
    support: full
    description:
      - Shows the registration before and after (registrations hold no secrets).
options:
  name:
    description:
      - Name of the cluster in the control store, used by tasks and verification.
      - Letters, digits, C(.), C(_) and C(-); at most 128 characters.
    type: str
    required: true
  state:
    description:
      - V(present) registers the cluster or updates its registration.
      - V(absent) removes the registration. Refused while a sync task names the cluster.
    type: str
    choices: [present, absent]
    default: present
  description:
    description:
      - Free text stored with the registration.
    type: str
  admin_port:
    description:
      - The HTTP port of the members' AdminServer (C(admin.serverPort), ZooKeeper 3.5+, usually C(8080)), on the same
        host as each member's client port.
      - Read only where a member does not answer the four-letter words C(cons), C(wchc) or C(mntr) (not in
        C(4lw.commands.whitelist)), to list who still uses the cluster
        (M(zookeeper.migration.zk_sync_info) O(zookeeper.migration.zk_sync_info#module:client_report)).
      - Plain HTTP only; an AdminServer that forces HTTPS is not read (the report says so).
    type: int
  check_connectivity:
    description:
      - Connect to the cluster before registering it and return what was found.
      - When V(false), the cluster is registered without being contacted (for example
        when only the daemon hosts can reach it). O(summarize) still connects.
    type: bool
    default: true
  summarize:
    description:
      - When above 0, walk the cluster's tree and return its subtrees this many levels
        below C(/) with their counts of persistent and ephemeral znodes and bytes.
      - The walk reads every znode (it is not written to); C(/zookeeper) and the
        control root are left out.
      - A znode whose ACL denies this connection's identity READ does not fail the walk;
        it is reported (RV(summary.unreadable_paths), a count per subtree and in
        RV(summary.total)) with a warning, and what is below it is not counted.
    type: int
    default: 0
notes:
  - O(hosts) is required with O(state=present).
  - Check mode across tasks. In check mode nothing is registered, so a later
    M(zookeeper.migration.zk_verify) or M(zookeeper.migration.zk_sync_info) task of the same check run
    that names this cluster warns that it is not registered and reports what it would do
    instead of failing.
  - Auth in registrations. Registrations store O(auth.scheme), O(auth.username) and
    O(auth.credential); O(auth.credential) is required with O(auth). O(auth.password) may
    be given as well, to check connectivity with a secret that is not in O(credentials);
    it is never stored.
seealso:
  - module: zookeeper.migration.zk_sync_info
  - module: zookeeper.migration.zk_verify
'''

EXAMPLES = r'''
- name: Register source and destination, once the connection to the control ensemble is set
  module_defaults:
    group/zookeeper.migration.zk:
      control:
        hosts: "{{ destination_hosts }}"
        auth: {scheme: digest, credential: migrator}
      credentials: "{{ vault_zk_credentials }}"
  block:
    - name: Register the self-managed source cluster and show its largest subtrees
      zookeeper.migration.zk_cluster:
        name: legacy
        hosts: [zk1.example.com:2181, zk2.example.com:2181, zk3.example.com:2181]
        auth:
          scheme: digest
          credential: legacy-super
        summarize: 2
      register: legacy

    - name: Show the subtrees worth migrating
      ansible.builtin.debug:
        var: legacy.summary.suggested_paths

    - name: Register the managed destination (TLS)
      zookeeper.migration.zk_cluster:
        name: managed
        hosts: [mse-zk.example.com:2281]
        tls:
          ca_file: /etc/zk-migration/ca.pem
        auth:
          scheme: digest
          credential: migrator

- name: Remove a registration that no task uses any more
  zookeeper.migration.zk_cluster:
    name: old-staging
    state: absent
'''

RETURN = r'''
cluster:
  description:
    - What was found on the cluster (with O(check_connectivity), else only the registration's name and hosts).
  returned: when O(state=present)
  type: dict
  contains:
    name:
      description: Registered name.
      type: str
      sample: legacy
    hosts:
      description: Members as C(host:port).
      type: list
      elements: str
      sample: [zk1.example.com:2181]
    chroot:
      description: The chroot, or null.
      type: str
      sample: null
    server_version:
      description: ZooKeeper version reported by the members (null when the C(srvr) four-letter word is not whitelisted).
      type: str
      sample: 3.8.0
    members:
      description: Each member's mode (standalone, leader, follower, observer) or why it could not tell.
      type: dict
      sample: {"zk1.example.com:2181": {"mode": "follower", "version": "3.8.0", "error": null}}
    unreachable:
      description: Members that did not answer, with the reason. The cluster may still be usable.
      type: dict
      sample: {}
    capabilities:
      description: What the server supports, found by trying the operations (multiRead, persistent watches).
      type: dict
      sample: {"multi_read": true, "persistent_watches": true}
    identity:
      description:
        - Whether the digest password was proven, with O(check_connectivity). C(status) is V(proven),
          V(unproven) (nothing on the cluster names the user; a warning says so) or V(not_applicable)
          (no digest authentication); C(detail) says how. A wrong password fails the task instead.
      type: dict
      returned: with O(check_connectivity)
      sample: {"status": "proven", "detail": "the server recognises user super as its superDigest user"}
registration:
  description: The registration as stored (or as it would be stored in check mode). Never holds a secret.
  returned: when O(state=present)
  type: dict
  sample:
    name: legacy
    hosts: [zk1.example.com:2181]
    chroot: null
    auth: {scheme: digest, username: null, credential: legacy-super}
    tls: {enabled: false, verify: true, check_hostname: true, ca_file: null, cert_file: null, key_file: null, credential: null}
    session_timeout: 10.0
    connect_timeout: 10.0
    description: null
    schema_version: 1
operations:
  description: What was done (or would be done in check mode).
  returned: always
  type: list
  elements: str
  sample: ["create registration legacy at /zookeeper-migration/clusters/legacy"]
summary:
  description: The tree's subtrees, when O(summarize) is above 0.
  returned: when O(summarize) > 0 and O(state=present)
  type: dict
  contains:
    depth:
      description: The O(summarize) depth.
      type: int
      sample: 2
    total:
      description:
        - Counts over the whole tree (persistent, ephemeral, bytes of persistent data) and
          C(unreadable), the znodes this connection may not read (not counted in the others).
      type: dict
      sample: {"persistent": 1200, "ephemeral": 40, "bytes": 183000, "unreadable": 0}
    subtrees:
      description:
        - One entry per subtree, with C(path), C(persistent), C(ephemeral), C(bytes),
          C(ephemeral_share), C(unreadable) (znodes under it whose ACL denies this connection READ;
          what is below them is not counted) and C(kind) (V(persistent), V(mostly_ephemeral), or
          V(unreadable) when the subtree's top itself could not be read).
      type: list
      elements: dict
      sample: [{"path": "/services/api", "persistent": 3, "ephemeral": 12, "bytes": 20, "ephemeral_share": 0.8,
                "unreadable": 0, "kind": "mostly_ephemeral"}]
    suggested_paths:
      description:
        - The subtrees holding persistent configuration, candidates for a sync task's paths.
        - Subtrees with unreadable znodes are left out (a task must be able to read all it copies).
      type: list
      elements: str
      sample: [/config]
    unreadable_paths:
      description:
        - The znodes whose data or children this connection may not read (ACL without READ for its
          identity), sorted; at most 1000. The walk skips what is below them and goes on.
      type: list
      elements: str
      sample: [/services/locked]
    truncated:
      description: Whether the subtree list was cut (at most 1000 entries).
      type: bool
      sample: false
'''

from ansible_collections.zookeeper.migration.plugins.module_utils._module import (
    ZkMigrationModule,
    cluster_connection_spec,
    cluster_spec_from_options,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._registration import cluster_spec
from ansible_collections.zookeeper.migration.plugins.module_utils._client import ClusterSpec
from ansible_collections.zookeeper.migration.plugins.module_utils._inspect import inspect_cluster
from ansible_collections.zookeeper.migration.plugins.module_utils._records import normalize_cluster
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError


def registration_record(params):
    """The registration to store, from the module options (no secret ever)."""
    record = {
        'name': params['name'],
        'hosts': params['hosts'],
        'chroot': params['chroot'],
        'session_timeout': params['session_timeout'],
        'connect_timeout': params['connect_timeout'],
        'description': params['description'],
        'admin_port': params.get('admin_port'),
    }
    auth = params.get('auth')
    if auth and (auth.get('username') or auth.get('credential') or auth.get('password') or auth.get('scheme') != 'digest'):
        if not auth.get('credential'):
            raise ConfigError('auth: a registration names the credential the daemons use (auth.credential); '
                              'auth.password alone cannot be stored. Put the secret in the credentials option under a name '
                              'and set auth.credential to that name')
        record['auth'] = {'scheme': auth['scheme'], 'username': auth.get('username'), 'credential': auth['credential']}
    tls = params.get('tls')
    if tls:
        files = [tls.get(key) for key in ('ca_file', 'cert_file', 'key_file')]
        enabled = tls.get('enabled')
        if enabled is None:
            enabled = any(files) or bool(tls.get('credential'))
        record['tls'] = {'enabled': enabled, 'ca_file': tls.get('ca_file'), 'cert_file': tls.get('cert_file'),
                         'key_file': tls.get('key_file'), 'verify': tls.get('verify'), 'check_hostname': tls.get('check_hostname'),
                         'credential': tls.get('credential')}
        if tls.get('key_password') and not tls.get('credential') and enabled:
            raise ConfigError('tls: a registration names the credential holding the key passphrase (tls.credential); '
                              'tls.key_password alone cannot be stored')
    return normalize_cluster(record)


def connection_spec(params, record, credentials):
    """The ``ClusterSpec`` to reach the cluster now.

    Without inline secrets it is built from the registration and the named
    credentials, exactly as the sync daemons will build it, so a wrong
    credential name or type fails here rather than in the daemons. An inline
    ``auth.password`` or ``tls.key_password`` is used instead of the named
    credential for this check only.
    """
    auth = params.get('auth') or {}
    tls = params.get('tls') or {}
    if not auth.get('password') and not tls.get('key_password'):
        return cluster_spec(record, credentials)
    spec = cluster_spec_from_options(params, name=params['name'])
    if spec.get('auth') and spec['auth'].get('password'):
        spec['auth'].pop('credential', None)
    if spec.get('tls') and spec['tls'].get('key_password'):
        spec['tls'].pop('credential', None)
    return ClusterSpec.from_dict(spec, credentials=credentials)


def argument_spec():
    """The module's options: the shared ``control`` and ``credentials`` plus its own."""
    return ZkMigrationModule.generate_argspec(
        name=dict(type='str', required=True),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        description=dict(type='str'),
        check_connectivity=dict(type='bool', default=True),
        summarize=dict(type='int', default=0),
        admin_port=dict(type='int'),
        **cluster_connection_spec()
    )


def main():
    module = ZkMigrationModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_if=[('state', 'present', ['hosts'])],
    )
    params = module.params
    result = dict(changed=False, operations=[])
    if params['summarize'] < 0:
        module.fail_json(msg='summarize must be 0 (off) or a depth of 1 or more', **result)

    with module.engine_errors(**result):
        credentials = module.validated_credentials()
        _control, root = module.control_options(required_by='to register clusters')
        if params['state'] == 'absent':
            with module.control_store('to register clusters') as store:
                outcome = store.delete_cluster(params['name'], dry_run=module.check_mode)
            if outcome.changed:
                result['changed'] = True
                result['operations'].append('delete registration %s at %s' % (params['name'], store.cluster_path(params['name'])))
                if module._diff:
                    result['diff'] = {'before': outcome.before, 'after': {}}
            module.exit_json(**result)

        record = registration_record(params)
        result['registration'] = record
        result['cluster'] = {'name': record['name'], 'hosts': record['hosts'], 'chroot': record['chroot']}
        if params['check_connectivity'] or params['summarize']:
            spec = connection_spec(params, record, credentials)
            info, summary = inspect_cluster(spec, params['summarize'], root, prove=params['check_connectivity'])
            result['cluster'] = info
            if info.get('identity', {}).get('status') == 'unproven':
                module.warn('cluster %s: %s' % (record['name'], info['identity']['detail']))
            for address, reason in sorted(info['unreachable'].items()):
                module.warn('cluster %s: member %s did not answer (%s); the cluster is reachable through the other members'
                            % (record['name'], address, reason))
            if summary is not None:
                result['summary'] = summary
                if summary['unreadable_paths']:
                    module.warn('cluster %s: %d znode(s) whose ACL denies this connection READ are left out of the summary, with '
                                'what is below them (first: %s); a sync task cannot copy them with this identity'
                                % (record['name'], summary['total']['unreadable'], ', '.join(summary['unreadable_paths'][:3])))

        with module.control_store('to register clusters') as store:
            current = store.get_cluster(params['name'])
            path = store.cluster_path(params['name'])
            if current != record:
                result['changed'] = True
                if not module.check_mode:
                    layout = store.ensure_root()
                    for warning in layout.get('warnings', []):
                        module.warn(warning)
                    if layout.get('changed'):
                        result['operations'].append('create control root %s' % layout['root'])
                    outcome = store.put_cluster(record)
                    # compare-and-set: another writer may have stored the same record meanwhile
                    result['changed'] = outcome.changed or bool(layout.get('changed'))
                    current = outcome.before
                    result['registration'] = outcome.after
                if current != record:
                    result['operations'].append('%s registration %s at %s' % ('create' if current is None else 'update', record['name'], path))
            if result['changed'] and module._diff:
                result['diff'] = {'before': current or {}, 'after': record}
    module.exit_json(**result)


if __name__ == '__main__':
    main()
