# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared documentation of the zookeeper.migration modules.

Every fragment here matches the argument spec built by
``plugins/module_utils/_module.py`` (``ZkMigrationModule.generate_argspec``
and the ``cluster_connection_spec()`` helper); a unit test checks that they
stay equal.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # The control store and the credentials, shared by every module of the collection.
    DOCUMENTATION = r'''
options:
  control:
    description:
      - The control ensemble, the ZooKeeper cluster that holds the migration's
        cluster registrations, sync tasks, task status, live daemons and cutover records
        under O(control.root).
      - Usually the destination cluster. Set it once for every module with
        C(module_defaults) and the action group C(group/zookeeper.migration.zk).
      - Required by modules that read or write the control store. M(zookeeper.migration.zk_verify)
        needs it only when O(zookeeper.migration.zk_verify#module:source) or
        O(zookeeper.migration.zk_verify#module:destination) name registered clusters.
    type: dict
    suboptions:
      hosts:
        description:
          - Members of the control ensemble as C(host:port) (port 2181 when omitted).
          - A load balancer endpoint in front of the ensemble is just one entry.
        type: list
        elements: str
        required: true
      chroot:
        description:
          - A chroot path on the control ensemble under which O(control.root) lives.
        type: str
      root:
        description:
          - The znode under which the migration keeps its records.
          - It is always excluded from sync and verification.
        type: str
        default: /zookeeper-migration
      session_timeout:
        description:
          - ZooKeeper session timeout in seconds.
        type: float
        default: 10.0
      connect_timeout:
        description:
          - How long to wait for a session, in seconds, before the control ensemble counts as unreachable.
        type: float
        default: 10.0
      auth:
        description:
          - How to authenticate to the control ensemble. See O(control.auth.credential).
        type: dict
        suboptions:
          scheme:
            description:
              - C(digest) sends C(username:password) (ZooKeeper digest authentication).
              - C(sasl) authenticates with SASL (needs the pure-sasl Python package).
            type: str
            choices: [digest, sasl]
            default: digest
          username:
            description:
              - User name. Taken from the named credential when omitted there.
            type: str
          password:
            description:
              - The password, inline. Prefer O(control.auth.credential) so the secret
                stays in the O(credentials) option, fed from vaulted variables.
              - Mutually exclusive with O(control.auth.credential).
            type: str
          credential:
            description:
              - Name of an entry of O(credentials) that holds C(username) and C(password).
              - Only this name is ever stored in the control store, never the secret.
            type: str
          mechanism:
            description:
              - SASL mechanism, with O(control.auth.scheme=sasl).
            type: str
            choices: [DIGEST-MD5, GSSAPI]
          service:
            description:
              - SASL service name, with O(control.auth.scheme=sasl).
            type: str
          principal:
            description:
              - SASL principal, with O(control.auth.scheme=sasl) and O(control.auth.mechanism=GSSAPI).
            type: str
      tls:
        description:
          - TLS settings for the control ensemble's secure client port.
        type: dict
        suboptions:
          enabled:
            description:
              - Use TLS. When omitted, TLS is on as soon as any of the file options is set.
            type: bool
          ca_file:
            description:
              - PEM file of the certificate authorities that sign the servers' certificates.
              - When given, only these are trusted; when omitted, the system's certificate authorities are.
            type: path
          cert_file:
            description:
              - PEM client certificate, for servers that require client authentication. Needs a key file.
            type: path
          key_file:
            description:
              - PEM private key of the client certificate.
            type: path
          key_password:
            description:
              - Passphrase of the private key, inline. Prefer a named credential.
            type: str
          credential:
            description:
              - Name of an entry of O(credentials) whose C(key_password) unlocks the private key.
            type: str
          verify:
            description:
              - Verify the server certificate against the certificate authorities.
            type: bool
            default: true
          check_hostname:
            description:
              - Check that the server certificate names the host connected to (a DNS name, or an IP
                address, which only matches an IP subjectAltName of the certificate).
              - When omitted, on whenever O(control.tls.verify) is on. Set V(false) only for servers
                whose certificates name other hosts; the certificate is still verified.
              - V(true) needs O(control.tls.verify).
            type: bool
      allow_open_acl:
        description:
          - Allow an open control store. By default the control store fails closed, and an
            unauthenticated control session (no O(control.auth), and no TLS client certificate), a
            server that refuses the ACL naming the session's identity, or control znodes that
            grant world:anyone more than O(control.world_read) allows are errors.
          - With V(true) these are accepted with a warning, and control znodes are created with
            world:anyone ALL when the session has no identity. Anyone who reaches the control
            ensemble can then change or remove registrations, tasks and fences. Only for tests
            and throwaway setups.
        type: bool
        default: false
      world_read:
        description:
          - Let anyone (world:anyone) read the control znodes the store creates, for monitoring
            without credentials.
          - Off by default. The control znodes list every synced path (the baseline) and hold the
            saved source ACLs of a cutover, with their digest hashes, which ZooKeeper itself only
            shows to clients with ADMIN permission.
          - With V(false), existing control znodes that world:anyone may read are refused
            (unless O(control.allow_open_acl)).
        type: bool
        default: false
  credentials:
    description:
      - Secrets keyed by credential name, usually fed from Ansible Vault variables
        (the same ones the sync_daemon role renders into each daemon's credentials file).
      - Each entry is a dict with a C(type) and the fields of that type. C(type=digest) needs C(username) and
        C(password); C(type=sasl) takes C(mechanism), C(username), C(password), C(service) and C(principal);
        C(type=tls) takes C(key_password) (the private key's passphrase). An entry without C(type), or with a
        field its type does not take, is refused with the entry's name.
      - Registrations and auth options refer to an entry by its name; secrets are never
        written to ZooKeeper, logged or returned.
    type: dict
requirements:
  - kazoo >= 2.10 (on the Ansible controller, or wherever the module runs)
notes:
  - The modules talk to ZooKeeper from where they run; run them on the controller
    (C(delegate_to=localhost) or a play on C(localhost)) unless the clusters are only
    reachable from a managed host.
'''

    # Connection options of one cluster, as top-level module options (zk_cluster).
    CLUSTER = r'''
options:
  hosts:
    description:
      - Members of the cluster as C(host:port) (port 2181 when omitted).
      - A load balancer endpoint in front of an ensemble is just one entry.
    type: list
    elements: str
  chroot:
    description:
      - A chroot path. The cluster is seen from this znode down, as its clients see it.
    type: str
  session_timeout:
    description:
      - ZooKeeper session timeout in seconds.
    type: float
    default: 10.0
  connect_timeout:
    description:
      - How long to wait for a session, in seconds, before the cluster counts as unreachable.
    type: float
    default: 10.0
  auth:
    description:
      - How to authenticate to the cluster.
      - For registrations use O(auth.credential) so that the daemons, which read only the
        credential name from the registration, can find the secret in their credentials file.
    type: dict
    suboptions:
      scheme:
        description:
          - C(digest) sends C(username:password) (ZooKeeper digest authentication).
          - C(sasl) authenticates with SASL (needs the pure-sasl Python package).
        type: str
        choices: [digest, sasl]
        default: digest
      username:
        description:
          - User name. Taken from the named credential when omitted there.
        type: str
      password:
        description:
          - The password, inline, to check connectivity when the named credential is not in
            O(credentials). It is used by this module only and never stored.
        type: str
      credential:
        description:
          - Name of an entry of O(credentials) that holds the secret (C(username) and C(password);
            for SASL also C(mechanism), C(service) and C(principal)).
          - Required with O(auth) when registering; the registration stores this name, never the secret.
        type: str
  tls:
    description:
      - TLS settings for the cluster's secure client port.
    type: dict
    suboptions:
      enabled:
        description:
          - Use TLS. When omitted, TLS is on as soon as any of the file options is set.
        type: bool
      ca_file:
        description:
          - PEM file of the certificate authorities that sign the servers' certificates.
          - When given, only these are trusted; when omitted, the system's certificate authorities are.
          - Registrations store the path; it must exist at the same path on every daemon host.
        type: path
      cert_file:
        description:
          - PEM client certificate, for servers that require client authentication. Needs a key file.
        type: path
      key_file:
        description:
          - PEM private key of the client certificate.
        type: path
      key_password:
        description:
          - Passphrase of the private key, inline. Used by this module only, never stored.
        type: str
      credential:
        description:
          - Name of an entry of O(credentials) whose C(key_password) unlocks the private key.
        type: str
      verify:
        description:
          - Verify the server certificate against the certificate authorities.
        type: bool
        default: true
      check_hostname:
        description:
          - Check that the server certificate names the host connected to (a DNS name, or an IP
            address, which only matches an IP subjectAltName of the certificate).
          - When omitted, on whenever O(tls.verify) is on. Set V(false) only for servers whose
            certificates name other hosts; the certificate is still verified.
          - Registrations store it; the sync daemons connect with the same setting.
          - V(true) needs O(tls.verify).
        type: bool
'''

    ACTION_GROUP = r'''
options: {}
attributes:
  action_group:
    description: Use C(group/zookeeper.migration.zk) in C(module_defaults) to set O(control) and O(credentials) once for every module.
    support: full
    membership:
      - zookeeper.migration.zk
'''
