# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: zk_sync_task
short_description: Create, change, pause, stop or remove a sync task that the sync daemons run
version_added: 0.1.0
description:
  - Step 2 of a migration. Writes the task C(<control.root>/tasks/<name>) in the control store. It names
    the subtrees (O(paths), minus O(exclude)) of a registered O(source) cluster that the sync daemons
    copy to a registered O(destination) cluster, how (O(mode), O(initial), O(prune), O(sync_acl),
    O(acl_mode), O(conflict), O(node_types), O(max_write_rate), O(counters)) and whether they run it (O(state)).
    The daemons (role C(zookeeper.migration.sync_daemon)) pick the change up within seconds. One of
    them leads the task, makes the destination equal to the source (the initial sync), then keeps
    both in sync.
  - Before a task is created, or when what it copies changes, a preflight connects to both clusters
    with the identities the daemons use (the registrations and their named credentials) and refuses a
    source path that does not exist, and a migration identity that cannot read what it must copy (a
    node it may not read, or digest ACLs whose hashes the server hides from it). The preflight's
    snapshot and diff of both sides give the plan, RV(plan).
  - Also refused, by the control store, are a destination equal to the source (the same registration, or
    the same ensemble with overlapping trees) and a path that overlaps a path of another task on a
    shared cluster.
  - Returns the task as stored and its current status, written by the daemon that leads it. With
    O(wait), waits until the initial sync is done or the task is in sync.
  - After a completed cutover (M(zookeeper.migration.zk_cutover)) the task is left alone, so re-running
    the playbook does not restart syncing.
author:
  - zookeeper.migration contributors (@zookeeper-migration)
extends_documentation_fragment:
  - zookeeper.migration.zk
  - zookeeper.migration.zk.action_group
attributes:
  check_mode:
    support: full
    description:
      - Nothing is written. The preflight runs (it only reads) and RV(plan) tells how many znodes the
        initial sync would create, update and delete on each side.
      - When O(source) or O(destination) is not registered, check mode warns and reports what it would
        do instead of failing, since an earlier M(zookeeper.migration.zk_cluster) task of the same check
        run would have registered it.
  diff_mode:
    support: full
    description:
      - Shows the task spec before and after (specs hold no secrets).
options:
  name:
    description:
      - Name of the task. Letters, digits, C(.), C(_) and C(-); at most 128 characters.
    type: str
    required: true
  source:
    description:
      - Name of the registered source cluster (M(zookeeper.migration.zk_cluster)).
      - Required with O(state=running) and to create the task; left out with O(state=paused) or O(state=stopped), the stored value is kept.
    type: str
  destination:
    description:
      - Name of the registered destination cluster. Must not be the source.
      - Required with O(state=running) and to create the task; left out with O(state=paused) or O(state=stopped), the stored value is kept.
    type: str
  mode:
    description:
      - V(one_way) copies source changes to the destination; writes made on the destination are
        overwritten when their path is next reconciled.
      - V(bidirectional) also copies destination changes back to the source. See the notes for the risk.
      - Default V(one_way) when the task is created or O(state=running) is asked for. With O(state=paused) or O(state=stopped),
        an existing task keeps its stored value when the option is left out.
    type: str
    choices: [one_way, bidirectional]
  paths:
    description:
      - Absolute paths of the subtrees to sync (the same path on both sides). They must exist on the
        source and must not overlap each other. C(/) syncs everything; C(/zookeeper) and the control
        root are always left out.
      - Required with O(state=running) and to create the task; left out with O(state=paused) or O(state=stopped), the stored value is kept.
    type: list
    elements: str
  exclude:
    description:
      - Glob patterns on absolute paths (C(*) also matches C(/)); a matching znode and its subtree are not synced.
      - Default an empty list when the task is created or O(state=running) is asked for. With O(state=paused) or O(state=stopped),
        an existing task keeps its stored value when the option is left out.
    type: list
    elements: str
  initial:
    description:
      - The initial sync always makes the destination equal to the source (the source wins every difference).
      - V(union) also copies nodes that exist only on the destination back to the source, instead of
        leaving them alone.
      - Default V(source_wins) when the task is created or O(state=running) is asked for. With O(state=paused) or O(state=stopped),
        an existing task keeps its stored value when the option is left out.
    type: str
    choices: [source_wins, union]
  prune:
    description:
      - Delete, in the initial sync, destination nodes that do not exist on the source. Without it
        they are reported (RV(plan.leftovers)) and left alone. Ignored with O(initial=union).
      - Default V(false) when the task is created or O(state=running) is asked for. With O(state=paused) or O(state=stopped),
        an existing task keeps its stored value when the option is left out.
    type: bool
  sync_acl:
    description:
      - Copy ACLs (verbatim, or see O(acl_mode)). Copying digest ACLs needs a migration identity with
        ADMIN permission on every source node (or a superDigest identity). Without it the server hides
        the digest hashes and the preflight refuses the task.
      - Default V(true) when the task is created or O(state=running) is asked for. With O(state=paused) or O(state=stopped),
        an existing task keeps its stored value when the option is left out.
    type: bool
  acl_mode:
    description:
      - V(verbatim) copies ACLs as they are.
      - V(grant_migrator) adds the destination's migration identity (ALL) to every copied ACL, so the
        daemons keep access to nodes whose ACL would lock them out. Needs auth in the destination registration.
      - Default V(verbatim) when the task is created or O(state=running) is asked for. With O(state=paused) or O(state=stopped),
        an existing task keeps its stored value when the option is left out.
    type: str
    choices: [verbatim, grant_migrator]
  conflict:
    description:
      - Which side wins when both changed a node since it was last in sync (bidirectional tasks).
      - V(newest) compares modification times, which come from each cluster's own clock (mind clock skew).
      - Default V(source_wins) when the task is created or O(state=running) is asked for. With O(state=paused) or O(state=stopped),
        an existing task keeps its stored value when the option is left out.
    type: str
    choices: [source_wins, destination_wins, newest]
  node_types:
    description:
      - Destination paths to create as container or TTL nodes. Servers report container and TTL nodes
        as persistent, so they are copied as persistent unless declared here.
      - Default an empty list when the task is created or O(state=running) is asked for. With O(state=paused) or O(state=stopped),
        an existing task keeps its stored value when the option is left out.
    type: list
    elements: dict
    suboptions:
      pattern:
        description:
          - Glob on absolute destination paths.
        type: str
        required: true
      type:
        description:
          - The node type to create. V(ttl) needs C(extendedTypesEnabled) on the destination.
        type: str
        required: true
        choices: [container, ttl]
      ttl_ms:
        description:
          - Time to live in milliseconds, required with O(node_types[].type=ttl).
        type: int
  max_write_rate:
    description:
      - Writes per second the daemons may make for this task; 0 means unlimited.
      - Default V(0) when the task is created or O(state=running) is asked for. With O(state=paused) or O(state=stopped),
        an existing task keeps its stored value when the option is left out.
    type: int
  counters:
    description:
      - Whose sequential counters are carried to the destination, so that a sequential create there gets a suffix above
        every one the source handed out. A parent's counter is the suffix of its next sequential child.
      - V(sequential) carries the counters of parents holding persistent children with a 10-digit sequential suffix.
      - V(all) also carries those of every other persistent parent holding no ephemeral child, such as ID generators
        (sequential children created and deleted, none left) and drained queues. Lock and registration parents are
        left out (their ephemeral children are never copied).
      - A list of globs on absolute paths (C(*) also matches C(/)) carries the sequential parents' and those of every parent
        matching one, lock parents included.
      - Raising a counter by N takes N creates and N deletes of a throwaway child; RV(plan.counters) shows the cost. The
        daemons raise counters in the initial sync, within a batch of a child's create or delete on the source while
        streaming, and at every full reconcile. M(zookeeper.migration.zk_verify) reports the parents left behind
        (RV(zookeeper.migration.zk_verify#module:counts.counter_behind_persistent)).
      - Default V(sequential) when the task is created or O(state=running) is asked for. With O(state=paused) or O(state=stopped),
        an existing task keeps its stored value when the option is left out.
    type: raw
  state:
    description:
      - V(running) the daemons run the task; V(paused) its leader keeps the leadership but stops writing;
        V(stopped) no daemon runs it; V(absent) decommissions it.
      - "V(absent) stops the task and waits until no daemon leads it, deletes its fence and sync journal on both
        clusters (a cluster that is unreachable, such as a source already shut down, is reported and left alone),
        removes the migrator's grants from the destination ACLs when O(acl_mode=grant_migrator) added them (not on
        a frozen destination), and deletes the task with its status, baseline, election, cutover record and saved
        ACLs. The result's C(removed) counts what went."
      - After a completed cutover only V(stopped), V(paused) and V(absent) (with O(force)) are applied.
    type: str
    choices: [running, paused, stopped, absent]
    default: running
  force:
    description:
      - With O(state=absent), also remove a task that has a cutover record, with the record and the
        ACLs a freeze saved (what a rollback needs). Without it such a task is kept.
      - Saved ACLs of a side that is still frozen are what thaws it; O(state=absent) refuses to lose them, even with
        O(force), unless O(saved_acls_export) names a file to write them to first.
    type: bool
    default: false
  saved_acls_export:
    description:
      - With O(state=absent), a file on the host running the module where the saved ACLs of a frozen source or
        destination are written (JSON, mode 0600, since it holds digest hashes) before the task is removed.
      - Needed only when a side is still frozen.
    type: path
  wait:
    description:
      - V(none) returns once the task is written.
      - V(initial_sync) waits until the leading daemon has finished the initial sync.
      - V(in_sync) waits until the task is streaming with nothing left to reconcile (empty queue, zero lag).
      - Only a status the leader writes after this run counts, so a live leader is needed. Needs O(state=running).
    type: str
    choices: [none, initial_sync, in_sync]
    default: none
  wait_timeout:
    description:
      - How long O(wait) waits, in seconds, before the task fails (the task stays written).
    type: float
    default: 600
notes:
  - Bidirectional risk. With O(mode=bidirectional), every write made on the destination flows back to the
    source, including mistakes and test writes made there before the cutover, and deletes. Use it only
    while clients really write to both clusters, keep one writing side per sequential parent (both
    sides would hand out the same sequential names), and prefer V(one_way) until the clients move.
  - Only persistent znodes are synced. Ephemeral nodes, locks and service registrations are never
    copied nor deleted; clients recreate them on the new cluster.
  - Check mode across tasks. When O(source) or O(destination) is not registered yet in check mode, the
    task warns and reports what it would create instead of failing.
  - The preflight and RV(plan) read both trees (every znode and, with O(sync_acl), its ACL), which takes a
    while on large trees. It runs in check mode and when the task is created or what it copies changes;
    an unchanged task is not read again.
seealso:
  - module: zookeeper.migration.zk_cluster
  - module: zookeeper.migration.zk_sync_info
  - module: zookeeper.migration.zk_verify
  - module: zookeeper.migration.zk_cutover
'''

EXAMPLES = r'''
- name: Sync /config one way from the self-managed cluster to the managed one
  zookeeper.migration.zk_sync_task:
    name: app-config
    source: legacy
    destination: managed
    paths: [/config, /services/settings]
    exclude: ["/config/*/tmp"]
    wait: initial_sync
    wait_timeout: 3600

- name: Show what the initial sync of a new task would do
  zookeeper.migration.zk_sync_task:
    name: app-config
    source: legacy
    destination: managed
    paths: [/config]
  check_mode: true
  register: planned

- name: Print the plan
  ansible.builtin.debug:
    msg: "{{ planned.plan.destination.create }} to create, {{ planned.plan.destination.update }} to update"

- name: Pause the task during a maintenance window
  zookeeper.migration.zk_sync_task:
    name: app-config
    source: legacy
    destination: managed
    paths: [/config, /services/settings]
    exclude: ["/config/*/tmp"]
    state: paused

- name: Remove a task that was cut over, with its cutover record and saved ACLs
  zookeeper.migration.zk_sync_task:
    name: app-config
    state: absent
    force: true
'''

RETURN = r'''
task:
  description: The task spec as stored (or as it would be stored in check mode); null once removed.
  returned: always
  type: dict
  sample:
    name: app-config
    source: legacy
    destination: managed
    mode: one_way
    paths: [/config]
    exclude: []
    initial: source_wins
    prune: false
    sync_acl: true
    acl_mode: verbatim
    conflict: source_wins
    node_types: []
    max_write_rate: 0
    state: running
    direction_after_cutover: none
    schema_version: 1
status:
  description:
    - The task status written by the leading daemon (phase, nodes done and total, events each way,
      conflicts, lag, last error, heartbeat, leader, details); null before a daemon leads the task.
  returned: always
  type: dict
  sample: {"phase": "streaming", "nodes_done": 1200, "nodes_total": 1200, "lag_ms": 0.0, "leader": "sync1"}
removed:
  description:
    - With O(state=absent), what was removed. C(fence) (fence znodes), C(journal_entries) (sync journal entries on
      both clusters), C(grants) (destination ACLs the migrator's grants were removed from), C(control) (the task's
      control-store data).
  returned: when O(state=absent)
  type: dict
  sample: {"fence": 2, "journal_entries": 3, "grants": 0, "control": true}
saved_acls_export:
  description: With O(state=absent), the file the saved ACLs of a frozen side were written to, or null.
  returned: when O(state=absent)
  type: str
  sample: /var/lib/zk-migration/saved-acls-app-config.json
leader:
  description: The id of the daemon leading the task now, or null.
  returned: always
  type: str
  sample: sync1
cutover:
  description: The task's cutover record (M(zookeeper.migration.zk_cutover)), or null.
  returned: always
  type: dict
  sample: null
plan:
  description:
    - What the initial sync would do, from a snapshot and diff of both sides (the preflight). Null when
      the preflight did not run (an unchanged task outside check mode, an unregistered cluster in check mode).
  returned: always
  type: dict
  contains:
    source:
      description: Operations on the source (only O(initial=union) copies destination-only nodes back).
      type: dict
      sample: {"create": 0, "update": 0, "delete": 0, "set_acl": 0, "raise_counter": 0}
    destination:
      description:
        - Operations on the destination; C(raise_counter) counts parents whose sequential counter is
          raised so that new sequential names cannot collide with copied ones.
      type: dict
      sample: {"create": 1180, "update": 12, "delete": 0, "set_acl": 3, "raise_counter": 2}
    source_nodes:
      description: Persistent source znodes in scope.
      type: int
      sample: 1200
    destination_nodes:
      description: Persistent destination znodes in scope.
      type: int
      sample: 20
    in_sync:
      description: Whether both sides already match.
      type: bool
      sample: false
    leftovers:
      description: Destination-only znodes the initial sync leaves alone (no O(prune), no O(initial=union)).
      type: int
      sample: 0
    leftover_paths:
      description: The first of them.
      type: list
      elements: str
      sample: []
    ephemeral_skipped:
      description: Ephemeral znodes seen on each side, never synced.
      type: dict
      sample: {"source": 40, "destination": 0}
    skipped:
      description: Paths the copy leaves alone on purpose, with the reason.
      type: list
      elements: dict
      sample: []
    first_paths:
      description: The first paths of each kind of operation.
      type: dict
      sample: {"create": [/config/a], "update": [], "delete": [], "copy_back": []}
    counters:
      description:
        - The cost of carrying the sequential counters (O(counters), in C(scope)) in the initial sync; C(parents) whose
          counter is raised, the C(seq_bump_pairs) that takes (each a C(creates) and a C(deletes) of a throwaway child, in
          one multi), and the first such parents.
      type: dict
      sample: {"scope": "all", "parents": 2, "seq_bump_pairs": 412, "creates": 412, "deletes": 412, "first_paths": ["/app/ids"]}
operations:
  description: What was done (or would be done in check mode).
  returned: always
  type: list
  elements: str
  sample: ["create task app-config at /zookeeper-migration/tasks/app-config"]
cut_over:
  description: Whether the task has a completed cutover (then it is left alone, see O(state)).
  returned: always
  type: bool
  sample: false
msg:
  description: In check mode, when a cluster is not registered yet, what the task would do.
  returned: when a cluster is not registered in check mode
  type: str
  sample: would create task app-config syncing legacy to managed under /config
'''

from ansible_collections.zookeeper.migration.plugins.module_utils._module import ZkMigrationModule
from ansible_collections.zookeeper.migration.plugins.module_utils._client import connected
from ansible_collections.zookeeper.migration.plugins.module_utils._records import normalize_task_spec
from ansible_collections.zookeeper.migration.plugins.module_utils._registration import resolve_registered
from ansible_collections.zookeeper.migration.plugins.module_utils import _task
from ansible_collections.zookeeper.migration.plugins.module_utils._decommission import Decommission


def argument_spec():
    """The module's options: the shared ``control`` and ``credentials`` plus its own."""
    return ZkMigrationModule.generate_argspec(
        name=dict(type='str', required=True),
        source=dict(type='str'),
        destination=dict(type='str'),
        mode=dict(type='str', choices=['one_way', 'bidirectional']),
        paths=dict(type='list', elements='str'),
        exclude=dict(type='list', elements='str'),
        initial=dict(type='str', choices=['source_wins', 'union']),
        prune=dict(type='bool'),
        sync_acl=dict(type='bool'),
        acl_mode=dict(type='str', choices=['verbatim', 'grant_migrator']),
        conflict=dict(type='str', choices=['source_wins', 'destination_wins', 'newest']),
        node_types=dict(type='list', elements='dict', options=dict(
            pattern=dict(type='str', required=True),
            type=dict(type='str', required=True, choices=['container', 'ttl']),
            ttl_ms=dict(type='int'),
        )),
        max_write_rate=dict(type='int'),
        counters=dict(type='raw'),
        state=dict(type='str', choices=['running', 'paused', 'stopped', 'absent'], default='running'),
        force=dict(type='bool', default=False),
        saved_acls_export=dict(type='path'),
        wait=dict(type='str', choices=list(_task.WAIT_CHOICES), default='none'),
        wait_timeout=dict(type='float', default=600),
    )


def check_params(module):
    """Checks across options that the argument spec cannot express; fails the module."""
    params = module.params
    if params['wait'] != 'none' and params['state'] != 'running':
        module.fail_json(msg='wait=%s needs state=running: only a running task syncs' % params['wait'])
    if params['wait_timeout'] <= 0:
        module.fail_json(msg='wait_timeout must be a positive number of seconds')
    if (params['max_write_rate'] or 0) < 0:
        module.fail_json(msg='max_write_rate must be 0 (unlimited) or a positive number of writes per second')
    if params['force'] and params['state'] != 'absent':
        module.fail_json(msg='force only applies with state=absent')
    if params['saved_acls_export'] and params['state'] != 'absent':
        module.fail_json(msg='saved_acls_export only applies with state=absent')


def remove_task(module, store, result, credentials):
    """state=absent: decommission the task (``_decommission``)."""
    name = module.params['name']
    before = store.get_task(name)
    outcome = Decommission(store, name, credentials=credentials).run(force=module.params['force'],
                                                                     saved_acls_export=module.params['saved_acls_export'],
                                                                     check_mode=module.check_mode)
    for warning in outcome['warnings']:
        module.warn(warning)
    result.update(task=None, changed=outcome['changed'], removed=outcome['removed'],
                  saved_acls_export=outcome.get('saved_acls_export'))
    result['operations'].extend(outcome['operations'])
    if outcome['changed'] and module._diff:
        result['diff'] = {'before': before, 'after': {}}
    module.exit_json(**result)


def unregistered_clusters(store, spec):
    """Messages for the task's clusters that are not registered."""
    return ['the %s cluster %r' % (role, spec[role]) for role in ('source', 'destination') if store.get_cluster(spec[role]) is None]


def run_plan(module, store, spec, result):
    """The preflight: snapshot and diff both sides with the daemons' identities; sets result['plan']."""
    credentials = module.credentials
    source, _source_acl = resolve_registered(store, spec['source'], credentials, 'source')
    destination, destination_acl = resolve_registered(store, spec['destination'], credentials, 'destination')
    with connected(source) as source_client, connected(destination) as destination_client:
        result['plan'] = _task.plan_initial_sync(source_client, destination_client, spec, control_root=store.root,
                                                 migrator_acl=destination_acl)
    plan = result['plan']
    if plan['leftovers']:
        module.warn('task %s: %d znode(s) exist only on the destination (e.g. %s); the initial sync leaves them alone '
                    '(set prune to delete them, or initial=union to copy them to the source)'
                    % (spec['name'], plan['leftovers'], plan['leftover_paths'][0]))


def main():
    module = ZkMigrationModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        # pausing or stopping an existing task needs only its name (checked in main, where the store tells whether it exists)
        required_if=[('state', 'running', ['source', 'destination', 'paths'])],
    )
    check_params(module)
    params = module.params
    name = params['name']
    result = dict(changed=False, operations=[], task=None, status=None, leader=None, cutover=None, plan=None, cut_over=False)

    with module.engine_errors(**result):
        credentials = module.validated_credentials()
        with module.control_store('to manage sync tasks') as store:
            if params['state'] == 'absent':
                remove_task(module, store, result, credentials)

            desired = _task.desired_spec(params)
            current = store.get_task(name)
            # Pausing or stopping changes only what is given: the options left out keep their stored values.
            only = _task.given_fields(desired) if params['state'] in ('paused', 'stopped') else None
            if only is not None and current is None:
                missing = [field for field in ('source', 'destination', 'paths') if params[field] is None]
                if missing:
                    module.fail_json(msg='task %s does not exist, so state=%s creates it: %s %s required for that'
                                         % (name, params['state'], ', '.join(missing), 'is' if len(missing) == 1 else 'are'), **result)
                only = None
            # validate the options before anything else (a ConfigError names the field)
            desired_full = normalize_task_spec(_task.merge_spec(current if only else None, desired, only=only), root=store.root)
            record = store.get_cutover(name) if current is not None else None
            phase = _task.cutover_phase(record)
            result['cutover'] = record
            result['cut_over'] = phase in (_task.CUTOVER_COMPLETED, _task.CUTOVER_ROLLED_BACK_AFTER_COMPLETION)

            missing = unregistered_clusters(store, desired_full)
            if missing:
                message = '%s %s not registered in the control store at %s' % (' and '.join(missing), 'is' if len(missing) == 1 else 'are',
                                                                               store.root)
                if not module.check_mode:
                    module.fail_json(msg='%s: register %s with zookeeper.migration.zk_cluster first (registered clusters: %s)'
                                         % (message, 'it' if len(missing) == 1 else 'them', ', '.join(sorted(store.list_clusters())) or 'none'),
                                     **result)
                module.warn('%s; in check mode an earlier task of this run may only have reported that it would register %s. '
                            'The preflight and plan are skipped.' % (message, 'it' if len(missing) == 1 else 'them'))
                result['changed'] = current != desired_full
                result['task'] = desired_full
                result['msg'] = 'would %s task %s syncing %s to %s under %s' % (
                    'create' if current is None else 'update', name, desired_full['source'], desired_full['destination'],
                    ', '.join(desired_full['paths']))
                module.exit_json(**result)

            target, warnings = _task.target_spec(name, current, desired, record, only=only, root=store.root)
            for warning in warnings:
                module.warn(warning)

            # placement rules (overlaps, same ensemble) checked by the store without writing
            outcome = store.put_task(target, dry_run=True)
            free = phase in (_task.NO_CUTOVER, _task.CUTOVER_ENDED_BEFORE_COMPLETION)
            if free and (module.check_mode or (outcome.changed and _task.scope_changed(current, target))):
                run_plan(module, store, target, result)
            result['task'] = target
            after_zxid = _task.read_status(store, name)[1]
            if outcome.changed:
                result['changed'] = True
                result['operations'].append('%s task %s at %s' % ('create' if current is None else 'update', name, store.task_path(name)))
                if module._diff:
                    result['diff'] = {'before': current or {}, 'after': target}
                if not module.check_mode:
                    layout = store.ensure_root()
                    for warning in layout.get('warnings', []):
                        module.warn(warning)
                    written = store.put_task(target)
                    result['changed'] = written.changed
                    result['task'] = written.after
                    after_zxid = _task.node_zxid(store, store.task_path(name))
            if not module.check_mode and store.exists(store.task_path(name)):
                if params['wait'] != 'none' and phase == _task.CUTOVER_COMPLETED:
                    module.warn('task %s has a completed cutover and does not sync: wait=%s skipped' % (name, params['wait']))
                    result['status'] = _task.read_status(store, name)[0]
                elif params['wait'] != 'none':
                    result['operations'].append('wait for task %s: %s' % (name, params['wait']))
                    try:
                        result['status'] = _task.wait_for_status(store, name, params['wait'], params['wait_timeout'], after_zxid=after_zxid)
                    except _task.WaitTimeout as exc:
                        result['status'] = exc.status
                        result['leader'] = store.current_leader(name)
                        module.fail_json(msg=str(exc), **result)
                else:
                    result['status'] = _task.read_status(store, name)[0]
                result['leader'] = store.current_leader(name)
            elif current is not None:
                result['status'] = _task.read_status(store, name)[0]
                result['leader'] = store.current_leader(name)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
